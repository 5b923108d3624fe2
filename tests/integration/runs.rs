//! Runs that never lie, on real work: a real SQLite warehouse file and real child processes.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::cli::{json, phlo_in};

/// A SELECT that takes many seconds: a recursive count to a billion.
const SLOW_SQL: &str =
    "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1000000000) SELECT max(i) AS m FROM n";

fn project(dir: &Path, yaml: &str) {
    std::fs::write(dir.join("phlo.yaml"), yaml).unwrap();
}

/// Starts `phlo run ARGS` in `dir` and returns once the run's event log holds `starts` asset
/// start events (its work is running).
#[cfg(unix)]
fn start_run(dir: &Path, args: &[&str], starts: usize) -> std::process::Child {
    let child = Command::new(assert_cmd::cargo::cargo_bin("phlo"))
        .args(args)
        .env("PHLO_LOG", "off")
        .current_dir(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let log = dir.join(".phlo/events.jsonl");
    while !std::fs::read_to_string(&log).is_ok_and(|t| t.matches("\"transform.start\"").count() >= starts) {
        assert!(started.elapsed() < Duration::from_secs(20), "the run did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    child
}

fn asset<'a>(v: &'a Value, key: &str) -> &'a Value {
    v["assets"].as_array().unwrap().iter().find(|a| a["key"] == key).unwrap_or_else(|| panic!("no {key} in {v}"))
}

/// A 10 s SQL model under `timeout: 1s` fails after about a second, its statement is
/// interrupted, and the table it replaces is left as it was.
#[test]
fn a_slow_model_is_stopped_at_its_timeout_and_its_table_is_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let yaml = |sql: &str, timeout: &str| {
        format!(
            "assets:\n  marts.slow:\n    type: sql\n    sql: \"{sql}\"\n    {timeout}\n  publish.out:\n    type: export\n    table: marts_slow\n    path: out.csv\n    deps: [marts.slow]\n"
        )
    };
    // first a quick version of the model: the table holds one row, 42
    project(dir.path(), &yaml("SELECT 42 AS m", ""));
    let run = phlo_in(dir.path(), &["run", "--json"], &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(std::fs::read_to_string(dir.path().join("out.csv")).unwrap(), "m\n42\n");

    project(dir.path(), &yaml(SLOW_SQL, "timeout: 1s"));
    let t0 = Instant::now();
    let run = phlo_in(dir.path(), &["run", "--json"], &[]);
    let took = t0.elapsed();
    assert_eq!(run.code, 4, "{}", run.stderr);
    assert!(took < Duration::from_secs(5), "the run took {took:?}");
    let v = json(&run);
    assert_eq!(asset(&v, "marts.slow")["status"], "failed");
    assert_eq!(asset(&v, "marts.slow")["error"], "timed out after 1.0 s");
    assert_eq!(asset(&v, "marts.slow")["code"], "PHLO-E101");
    assert_eq!(asset(&v, "publish.out")["status"], "skipped");
    assert_eq!(asset(&v, "publish.out")["code"], "PHLO-E104");

    // the old table is intact: exporting it again gives the same row
    project(
        dir.path(),
        &yaml("SELECT 42 AS m", "").replace(
            "  marts.slow:\n    type: sql\n    sql: \"SELECT 42 AS m\"\n    \n",
            "  marts.slow:\n    external: true\n",
        ),
    );
    let run = phlo_in(dir.path(), &["run", "--select", "publish.out", "--json"], &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(std::fs::read_to_string(dir.path().join("out.csv")).unwrap(), "m\n42\n");
}

/// `sleep 30` under `timeout: 1s, retries: 1`: both attempts are killed with their process
/// group, never overlap, and the process exits within a few seconds with nothing left behind.
#[cfg(unix)]
#[test]
fn a_command_that_times_out_is_killed_with_everything_it_started() {
    let dir = tempfile::tempdir().unwrap();
    let marker = format!("phlo-test-{}", std::process::id());
    // a shell that starts a grandchild holding the pipes: only a group kill ends both
    project(
        dir.path(),
        &format!(
            "assets:\n  ops.slow:\n    type: command\n    program: sh\n    args: ['-c', 'echo started; sleep 30; : {marker}']\n    timeout: 1s\n    retries: {{max: 1, delay: 0s}}\n"
        ),
    );
    let t0 = Instant::now();
    let run = phlo_in(dir.path(), &["run", "--json"], &[]);
    let took = t0.elapsed();
    assert_eq!(run.code, 4, "{}", run.stderr);
    assert!(took < Duration::from_secs(6), "the run took {took:?}");
    let v = json(&run);
    assert_eq!(asset(&v, "ops.slow")["attempts"], 2);
    assert_eq!(asset(&v, "ops.slow")["error"], "timed out after 1.0 s");
    // both attempts ran one after the other: two start events, each after the previous end
    let log = std::fs::read_to_string(dir.path().join(".phlo/events.jsonl")).unwrap();
    let types: Vec<String> = log
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|e| e["correlation"]["asset_key"] == "ops.slow")
        .map(|e| e["type"].as_str().unwrap().to_string())
        .filter(|t| t.starts_with("transform."))
        .collect();
    assert_eq!(types, ["transform.start", "transform.end", "transform.start", "transform.end"]);
    let left = Command::new("pgrep").args(["-f", &marker]).output().unwrap();
    assert!(left.stdout.is_empty(), "processes left behind: {}", String::from_utf8_lossy(&left.stdout));
}

/// Ctrl-C during a long model: the statement is interrupted, the run ends `cancelled` with
/// exit code 130 within a couple of seconds, and the model's table is unchanged.
#[cfg(unix)]
#[test]
fn ctrl_c_during_a_long_model_leaves_its_table_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let yaml = |sql: &str| {
        format!(
            "assets:\n  marts.slow:\n    type: sql\n    sql: \"{sql}\"\n  publish.out:\n    type: export\n    table: marts_slow\n    path: out.csv\n    deps: [marts.slow]\n"
        )
    };
    project(dir.path(), &yaml("SELECT 7 AS m"));
    assert_eq!(phlo_in(dir.path(), &["run"], &[]).code, 0);
    project(dir.path(), &yaml(SLOW_SQL));
    // (the first run's start event is in the log too)
    let mut child = start_run(dir.path(), &["run", "--select", "marts.slow", "--json"], 2);
    std::thread::sleep(Duration::from_millis(500));
    let t0 = Instant::now();
    assert!(Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap().success());
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(t0.elapsed() < Duration::from_secs(10), "the run did not stop");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(t0.elapsed() < Duration::from_secs(3), "stopping took {:?}", t0.elapsed());
    assert_eq!(status.code(), Some(130));
    let out = child.wait_with_output().unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(asset(&v, "marts.slow")["status"], "cancelled");
    assert_eq!(asset(&v, "marts.slow")["code"], "PHLO-E103");
    // the table still holds the quick model's row
    project(
        dir.path(),
        "assets:\n  marts.slow:\n    external: true\n  publish.out:\n    type: export\n    table: marts_slow\n    path: out.csv\n",
    );
    assert_eq!(phlo_in(dir.path(), &["run"], &[]).code, 0);
    assert_eq!(std::fs::read_to_string(dir.path().join("out.csv")).unwrap(), "m\n7\n");
}

/// SQL errors point into the user's SQL (never phlo's wrapper), a `--` comment at the end
/// of a model works, and a table named like an asset key gets a hint. (`validate` reports
/// both mistakes before anything runs; `analyze: false` leaves them to the engine, as here.)
#[test]
fn model_errors_speak_about_the_users_sql() {
    let dir = tempfile::tempdir().unwrap();
    let yaml = |analyze: &str| {
        format!(
            "assets:\n  raw.weather:\n    type: sql\n    sql: \"SELECT 1 AS t -- one row\"\n  staging.weather:\n    type: sql\n    sql: SELECT * FROM raw.weather\n    deps: [raw.weather]\n{analyze}  \
             staging.typo:\n    type: sql\n    sql: |\n      SELECT t\n      FROM raw_weather\n      WHER t > 0\n    deps: [raw.weather]\n{analyze}"
        )
    };
    project(dir.path(), &yaml(""));
    let run = phlo_in(dir.path(), &["validate"], &[]);
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(
        run.stderr.contains("error[PHLO-E036]: asset `staging.weather` reads `raw.weather`, which is an asset key")
    );
    assert!(run.stderr.contains("phlo.yaml:14:"), "{}", run.stderr);
    assert!(!run.stderr.contains("PHLO-W037"), "one mistake, one message: {}", run.stderr);
    project(dir.path(), &yaml("    analyze: false\n"));
    let run = phlo_in(dir.path(), &["run", "--json"], &[]);
    assert_eq!(run.code, 4, "{}", run.stderr);
    let v = json(&run);
    assert_eq!(asset(&v, "raw.weather")["status"], "succeeded", "a trailing comment works");
    let error = asset(&v, "staging.weather")["error"].as_str().unwrap().to_string();
    assert!(error.contains("no such table: raw.weather"), "{error}");
    assert!(error.contains("the table of asset `raw.weather` is `raw_weather`"), "{error}");
    assert!(!error.contains("__phlo_new"), "{error}");
    assert!(!error.contains("CREATE TABLE"), "{error}");
    let error = asset(&v, "staging.typo")["error"].as_str().unwrap().to_string();
    assert_eq!(
        error,
        "the SQL of `staging.typo` (phlo.yaml:13:7) failed: near \"t\": syntax error (line 3, column 6 of the SQL)"
    );
    assert_eq!(asset(&v, "staging.typo")["code"], "PHLO-E110");
}

/// A failed blocking check: the summary counts it, the console and `--json` show its sample
/// rows, a row count shows its bounds, and a check that could not run says why.
#[test]
fn failed_checks_are_counted_and_show_their_rows() {
    let dir = tempfile::tempdir().unwrap();
    project(
        dir.path(),
        "assets:\n  raw.r:\n    type: sql\n    sql: SELECT 1 AS id, -5 AS v UNION ALL SELECT 2, 7\n    analyze: false\n    checks:\n      \
         - {type: range, column: v, min: 0}\n      - {type: row_count, min: 10, severity: warn}\n      \
         - {type: not_null, column: nope, severity: info}\n  marts.r:\n    type: sql\n    sql: SELECT * FROM raw_r\n    deps: [raw.r]\n",
    );
    let run = phlo_in(dir.path(), &["run"], &[]);
    assert_eq!(run.code, 4, "{}", run.stderr);
    assert!(run.stdout.contains("; 3 check(s) failed, 1 of them blocking"), "{}", run.stdout);
    assert!(run.stdout.contains("range_v on raw.r: 1 of 2 rows, e.g.\n  {\"id\":1,\"v\":-5}"), "{}", run.stdout);
    assert!(run.stdout.contains("2 rows (min 10)"), "{}", run.stdout);
    assert!(
        run.stdout.contains("not_null_nope on raw.r could not run: SQLite: no such column: \"nope\"")
            && run.stdout.contains("\"raw_r\" has the columns id, v (the check is at phlo.yaml:9:16)"),
        "{}",
        run.stdout
    );
    let run = phlo_in(dir.path(), &["run", "--json"], &[]);
    let v = json(&run);
    let range = v["checks"].as_array().unwrap().iter().find(|c| c["name"] == "range_v").unwrap();
    assert_eq!(range["samples"], serde_json::json!([{"id": 1, "v": -5}]));
    assert_eq!(asset(&v, "marts.r")["status"], "skipped");
}

/// Models compute side by side: an unrelated quick model does not wait behind a slow one
/// (each works on a connection of its own; only the short swap-in is serialised).
#[test]
fn a_quick_model_does_not_wait_behind_a_slow_one() {
    let dir = tempfile::tempdir().unwrap();
    project(
        dir.path(),
        "assets:\n  a.slow:\n    type: sql\n    sql: \"WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2000000) SELECT max(i) AS m FROM n\"\n  \
         b.fast:\n    type: sql\n    sql: SELECT 1 AS x\n",
    );
    let run = phlo_in(dir.path(), &["run", "--select", "a.slow or b.fast", "--concurrency", "4", "--json"], &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let v = json(&run);
    let ms = |k: &str| asset(&v, k)["duration_ms"].as_u64().unwrap();
    assert!(ms("b.fast") * 3 < ms("a.slow"), "fast {} ms, slow {} ms", ms("b.fast"), ms("a.slow"));
}

/// Two `phlo run` processes on one project: the second waits, saying for which run, or
/// with `--no-wait` fails at once naming it; never a bare "database is locked".
#[cfg(unix)]
#[test]
fn a_second_run_waits_for_the_first_or_fails_at_once() {
    let dir = tempfile::tempdir().unwrap();
    project(
        dir.path(),
        "assets:\n  ops.slow:\n    type: command\n    program: sleep\n    args: ['2']\n  marts.x:\n    type: sql\n    sql: SELECT 1 AS x\n",
    );
    let first = start_run(dir.path(), &["run", "--json"], 1);
    let run = phlo_in(dir.path(), &["run", "--select", "marts.x", "--no-wait"], &[]);
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(run.stderr.contains("error[PHLO-E070]: run "), "{}", run.stderr);
    assert!(run.stderr.contains(&format!("(pid {}", first.id())), "{}", run.stderr);
    let run = phlo_in(dir.path(), &["run", "--select", "marts.x"], &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stderr.contains("waiting for run "), "{}", run.stderr);
    let out = first.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

/// `phlo schedule run --once` waits like `phlo run` for a live run that holds its assets.
#[cfg(unix)]
#[test]
fn a_scheduled_run_waits_for_a_running_one() {
    let dir = tempfile::tempdir().unwrap();
    project(
        dir.path(),
        "assets:\n  ops.slow:\n    type: command\n    program: sleep\n    args: ['2']\n  marts.x:\n    type: sql\n    sql: SELECT 1 AS x\n\
         schedules:\n  nightly:\n    cron: \"0 2 * * *\"\n    select: marts.x\n",
    );
    let first = start_run(dir.path(), &["run"], 1);
    let run = phlo_in(dir.path(), &["schedule", "run", "--once"], &[]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert!(run.stderr.contains("waiting for run "), "{}", run.stderr);
    assert!(run.stdout.contains("schedule nightly: run ") && run.stdout.contains(" succeeded"), "{}", run.stdout);
    assert!(first.wait_with_output().unwrap().status.success());
}

/// Runs of disjoint selections go side by side in two processes and are both recorded in
/// full; a run needing a step a live run holds waits or, with `--no-wait`, fails naming it.
#[cfg(unix)]
#[test]
fn runs_of_disjoint_selections_go_side_by_side() {
    let dir = tempfile::tempdir().unwrap();
    project(
        dir.path(),
        "assets:\n  ops.slow:\n    type: command\n    program: sleep\n    args: ['2']\n  marts.x:\n    type: sql\n    sql: SELECT 1 AS x\n",
    );
    let first = start_run(dir.path(), &["run", "--select", "ops.slow", "--json"], 1);
    let second = phlo_in(dir.path(), &["run", "--select", "marts.x", "--no-wait", "--json"], &[]);
    assert_eq!(second.code, 0, "disjoint: no waiting\n{}", second.stderr);
    let held = phlo_in(dir.path(), &["run", "--select", "ops.slow", "--no-wait"], &[]);
    assert_eq!(held.code, 3, "{}", held.stderr);
    assert!(held.stderr.contains("PHLO-E070") && held.stderr.contains("ops.slow"), "{}", held.stderr);
    // while the first is running, the store shows it running, not interrupted
    let listed = crate::cli::json(&phlo_in(dir.path(), &["runs", "list", "--json"], &[]));
    assert!(listed.as_array().unwrap().iter().any(|r| r["status"] == "running"), "{listed:#}");
    let out = first.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let listed = crate::cli::json(&phlo_in(dir.path(), &["runs", "list", "--json"], &[]));
    let runs = listed.as_array().unwrap();
    assert_eq!(runs.len(), 2, "{listed:#}");
    for r in runs {
        assert_eq!(r["status"], "succeeded", "{listed:#}");
        let shown =
            crate::cli::json(&phlo_in(dir.path(), &["runs", "show", r["run_id"].as_str().unwrap(), "--json"], &[]));
        let steps = shown["steps"].as_array().unwrap();
        assert_eq!(steps.len(), 1, "{shown:#}");
        assert_eq!(steps[0]["status"], "succeeded");
    }
}
