//! The guarantees of `docs/guarantees.md`, each on a real project: a real SQLite warehouse,
//! real `phlo` processes, `kill -9`. Every test here is one of the examples the guarantees
//! page names.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::cli::{Run, json, phlo_in};

fn project(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (path, text) in files {
        let p = dir.path().join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
    dir
}

fn run(dir: &Path, args: &[&str]) -> Run {
    let mut all = vec!["run", "--json"];
    all.extend_from_slice(args);
    phlo_in(dir, &all, &[("PHLO_LOG", "off")])
}

fn status_of<'a>(report: &'a Value, key: &str) -> &'a str {
    report["assets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["key"] == key)
        .map_or("absent", |a| a["status"].as_str().unwrap())
}

fn warehouse(dir: &Path) -> rusqlite::Connection {
    rusqlite::Connection::open(dir.join(".phlo/warehouse.db")).unwrap()
}

fn count(dir: &Path, table: &str) -> i64 {
    warehouse(dir).query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0)).unwrap()
}

fn runs(dir: &Path) -> Vec<Value> {
    let out = phlo_in(dir, &["runs", "list", "--json"], &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    json(&out).as_array().unwrap().clone()
}

const GATED: &str = "
assets:
  raw.a:
    type: csv
    path: a.csv
    checks:
      - {type: row_count, min: 10}
  m.b:
    type: sql
    sql: SELECT id FROM raw_a
";

/// A failed blocking check is evaluated again by `--from-failure`, on the data as it stands,
/// before anything downstream runs: the gate holds and the run stays failed.
#[test]
fn a_failed_gate_is_not_walked_around_by_from_failure() {
    let dir = project(&[("phlo.yaml", GATED), ("a.csv", "id\n1\n2\n")]);
    let first = run(dir.path(), &[]);
    assert_eq!(first.code, 4, "{}", first.stderr);
    let report = json(&first);
    assert_eq!(status_of(&report, "m.b"), "skipped");
    let resumed = run(dir.path(), &["--from-failure"]);
    assert_eq!(resumed.code, 4, "the gate still fails: {}\n{}", resumed.stdout, resumed.stderr);
    let again = json(&resumed);
    assert_eq!(again["run_id"], report["run_id"]);
    assert_eq!(status_of(&again, "m.b"), "skipped", "{again:#}");
    let check = &again["checks"][0];
    assert_eq!((check["name"].as_str(), check["passed"].as_bool()), (Some("row_count"), Some(false)), "{again:#}");
    // raw.a's write of this run stands: the check was evaluated on it, nothing was loaded twice
    let raw = again["assets"].as_array().unwrap().iter().find(|a| a["key"] == "raw.a").unwrap();
    assert_eq!(raw["metadata"]["committed_by_attempt"], 1, "{raw:#}");
    assert_eq!(count(dir.path(), "raw_a"), 2);
    let listed = runs(dir.path());
    assert_eq!(listed[0]["status"], "failed", "{listed:#?}");
    assert_eq!(listed.len(), 1);

    // the gate passes once the data is right in the warehouse: then downstream runs
    let c = warehouse(dir.path());
    for i in 3..=12 {
        c.execute("INSERT INTO raw_a (id) VALUES (?1)", [i]).unwrap();
    }
    let fixed = run(dir.path(), &["--from-failure"]);
    assert_eq!(fixed.code, 0, "{}\n{}", fixed.stdout, fixed.stderr);
    assert_eq!(status_of(&json(&fixed), "m.b"), "succeeded");
    assert_eq!(runs(dir.path())[0]["status"], "succeeded");
    assert_eq!(count(dir.path(), "m_b"), 12);
}

/// A blocking check that could not run cannot vouch for the data: a resume evaluates it
/// again, and a run whose gate still cannot run is never "succeeded".
#[test]
fn a_gate_that_could_not_run_is_evaluated_again() {
    let yaml = "
assets:
  ctl:
    external: true
  raw.a:
    type: csv
    path: a.csv
    checks:
      - {type: sql, name: against_ctl, query: 'SELECT * FROM raw_a WHERE id > (SELECT max(n) FROM ctl)'}
  m.b:
    type: sql
    sql: SELECT id FROM raw_a
";
    let dir = project(&[("phlo.yaml", yaml), ("a.csv", "id\n1\n2\n")]);
    let first = run(dir.path(), &[]);
    assert_eq!(first.code, 4, "{}", first.stderr);
    assert_eq!(json(&first)["checks"][0]["outcome"], "could_not_run", "{}", first.stdout);
    let resumed = run(dir.path(), &["--from-failure"]);
    assert_eq!(resumed.code, 4, "{}", resumed.stdout);
    assert_eq!(runs(dir.path())[0]["status"], "failed");
    warehouse(dir.path()).execute_batch("CREATE TABLE ctl (n INTEGER); INSERT INTO ctl VALUES (5);").unwrap();
    let fixed = run(dir.path(), &["--from-failure"]);
    assert_eq!(fixed.code, 0, "{}\n{}", fixed.stdout, fixed.stderr);
    assert_eq!(status_of(&json(&fixed), "m.b"), "succeeded");
}

/// One run id, several processes (what every step of an external orchestrator is): the run's
/// status is what all of them did together, and `--from-failure` finds it.
#[test]
fn one_run_id_across_processes_is_folded() {
    let yaml = "
assets:
  ops.a:
    type: command
    program: sh
    args: ['-c', 'test -f ok']
  ops.b:
    type: command
    program: sh
    args: ['-c', 'true']
";
    let dir = project(&[("phlo.yaml", yaml)]);
    let a = run(dir.path(), &["--select", "ops.a", "--run-id", "R1"]);
    assert_eq!(a.code, 4);
    let b = run(dir.path(), &["--select", "ops.b", "--run-id", "R1"]);
    assert_eq!(b.code, 0, "{}", b.stderr);
    let listed = runs(dir.path());
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["status"], "failed", "a failed in this run: {listed:#?}");
    std::fs::write(dir.path().join("ok"), "").unwrap();
    let resumed = run(dir.path(), &["--from-failure"]);
    assert_eq!(resumed.code, 0, "{}", resumed.stderr);
    let report = json(&resumed);
    assert_eq!(report["run_id"], "R1");
    assert_eq!(status_of(&report, "ops.a"), "succeeded");
    assert_eq!(status_of(&report, "ops.b"), "absent", "ops.b completed earlier: {report:#}");
    assert_eq!(runs(dir.path())[0]["status"], "succeeded");
}

/// `--from-failure` takes the newest failure no later run superseded: a later run that
/// completed the failed steps leaves nothing to resume; a cancelled run is resumable.
#[test]
fn from_failure_skips_superseded_failures() {
    let yaml = "
assets:
  ops.a:
    type: command
    program: sh
    args: ['-c', 'test -f ok']
";
    let dir = project(&[("phlo.yaml", yaml)]);
    assert_eq!(run(dir.path(), &[]).code, 4);
    std::fs::write(dir.path().join("ok"), "").unwrap();
    assert_eq!(run(dir.path(), &[]).code, 0);
    let nothing = run(dir.path(), &["--from-failure"]);
    assert_eq!(nothing.code, 0, "{}", nothing.stderr);
    assert!(nothing.stderr.contains("no failed, cancelled or interrupted run left to resume"), "{}", nothing.stderr);
    assert_eq!(runs(dir.path()).len(), 2, "nothing ran");
}

/// The `ctl` table's `n` sets how long the slow check of `raw.a` counts (a recursive CTE).
const SLOW_APPEND: &str = "
assets:
  ctl:
    external: true
  raw.a:
    type: csv
    path: a.csv
    mode: append
    checks:
      - type: sql
        name: slow
        query: >-
          WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < (SELECT n FROM ctl))
          SELECT * FROM raw_a WHERE (SELECT count(*) FROM c) < 0
";

/// The slow-append project with its check counting to `n`, and `phlo ARGS` in the background
/// once `raw.a`'s rows are committed and its slow check runs.
#[cfg(unix)]
fn slow_check_running(n: u64, args: &[&str], stdout: std::process::Stdio) -> (tempfile::TempDir, std::process::Child) {
    let dir = project(&[("phlo.yaml", SLOW_APPEND), ("a.csv", "id\n1\n2\n")]);
    std::fs::create_dir_all(dir.path().join(".phlo")).unwrap();
    warehouse(dir.path())
        .execute_batch(&format!("CREATE TABLE ctl (n INTEGER); INSERT INTO ctl VALUES ({n});"))
        .unwrap();
    let child = std::process::Command::new(assert_cmd::cargo::cargo_bin("phlo"))
        .args(args)
        .env("PHLO_LOG", "off")
        .current_dir(dir.path())
        .stdout(stdout)
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    while warehouse(dir.path()).query_row("SELECT count(*) FROM raw_a", [], |r| r.get::<_, i64>(0)).ok() != Some(2) {
        assert!(t0.elapsed() < Duration::from_secs(30), "raw.a was never written");
        std::thread::sleep(Duration::from_millis(10));
    }
    std::thread::sleep(Duration::from_millis(150));
    (dir, child)
}

/// Sets up the slow-append project, runs it, and kills it with SIGKILL once `raw.a`'s rows
/// are committed (while its slow check runs): the run is interrupted after its write.
#[cfg(unix)]
fn killed_after_commit() -> (tempfile::TempDir, String) {
    let (dir, mut child) = slow_check_running(100_000_000, &["run"], std::process::Stdio::null());
    child.kill().unwrap();
    child.wait().unwrap();
    // the check is quick from now on
    warehouse(dir.path()).execute("UPDATE ctl SET n = 10", []).unwrap();
    let listed = runs(dir.path());
    assert_eq!(listed[0]["status"], "interrupted", "{listed:#?}");
    (dir, listed[0]["run_id"].as_str().unwrap().to_string())
}

/// An append whose rows committed before the process was killed is not appended again by
/// `--from-failure`: the write and the record that it happened commit together.
#[cfg(unix)]
#[test]
fn a_committed_append_is_not_repeated_after_kill_9() {
    let (dir, id) = killed_after_commit();
    let resumed = run(dir.path(), &["--from-failure"]);
    assert_eq!(resumed.code, 0, "{}\n{}", resumed.stdout, resumed.stderr);
    let report = json(&resumed);
    assert_eq!(report["run_id"], id.as_str());
    assert_eq!(count(dir.path(), "raw_a"), 2, "appended once: {report:#}");
    assert_eq!(report["checks"][0]["passed"], true);
    assert_eq!(runs(dir.path())[0]["status"], "succeeded");
    // a new run is a new story: it appends
    assert_eq!(run(dir.path(), &[]).code, 0);
    assert_eq!(count(dir.path(), "raw_a"), 4);
}

/// Two `--resume` of one run at the same time: one finishes the run, the other waits for it
/// and then finds nothing left; the rows are appended once.
#[cfg(unix)]
#[test]
fn concurrent_resumes_apply_a_write_once() {
    let (dir, id) = killed_after_commit();
    let spawn = || {
        std::process::Command::new(assert_cmd::cargo::cargo_bin("phlo"))
            .args(["run", "--resume", &id])
            .env("PHLO_LOG", "off")
            .current_dir(dir.path())
            .output()
            .unwrap()
    };
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(spawn);
        let b = s.spawn(spawn);
        (a.join().unwrap(), b.join().unwrap())
    });
    for out in [&a, &b] {
        assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    }
    assert_eq!(count(dir.path(), "raw_a"), 2);
    assert_eq!(runs(dir.path())[0]["status"], "succeeded");
}

const PEOPLE: &str = "region,id,name\neu,1,ada\neu,2,\nus,3,grace\n";

fn partitioned(model_sql: &str, extra: &str) -> String {
    format!(
        "
assets:
  raw.people:
    type: csv
    path: people.csv
  m.by_region:
    type: sql
    partitions:
      static: [eu, us]
    sql: \"{model_sql}\"{extra}
    checks:
      - {{type: row_count, max: 2}}
      - {{type: not_null, column: name, blocking: false}}
      - {{type: unique, column: id, blocking: false}}
      - {{type: sql, name: no_grace, blocking: false, query: \"SELECT * FROM m_by_region WHERE partition_key = '{{partition}}' AND name = 'grace'\"}}
"
    )
}

fn check<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["checks"].as_array().unwrap().iter().find(|c| c["name"] == name).unwrap_or_else(|| panic!("{report:#}"))
}

/// A check of one partition sees that partition's rows only — every kind, and `{partition}`
/// in a `sql` check's query — whatever other partitions hold.
#[test]
fn checks_of_a_partition_see_only_its_rows() {
    let sql = "SELECT id, name FROM raw_people WHERE region = '{partition}'";
    let dir = project(&[("phlo.yaml", &partitioned(sql, "")), ("people.csv", PEOPLE)]);
    let us = run(dir.path(), &["--partition", "us"]);
    assert_eq!(us.code, 0, "{}", us.stderr);
    let us = json(&us);
    assert_eq!(check(&us, "not_null_name")["passed"], true, "{us:#}");
    assert_eq!(check(&us, "no_grace")["passed"], false, "{{partition}} is filled: {us:#}");
    let eu = json(&run(dir.path(), &["--partition", "eu"]));
    assert_eq!(check(&eu, "row_count")["metadata"]["row_count"], 2, "{eu:#}");
    assert_eq!(check(&eu, "not_null_name")["violations"], 1);
    assert_eq!(check(&eu, "no_grace")["passed"], true, "grace is in us, not eu");
    // us again, with eu's rows in the table: the same findings as before
    let again = json(&run(dir.path(), &["--partition", "us"]));
    for name in ["row_count", "not_null_name", "unique_id", "no_grace"] {
        assert_eq!(check(&again, name)["passed"], check(&us, name)["passed"], "{name}: {again:#}");
        assert_eq!(check(&again, name)["total"], check(&us, name)["total"], "{name}: {again:#}");
    }
}

/// A `sql` check on a model whose partitions share a table must name its partition; an
/// unknown placeholder is an error when the project loads.
#[test]
fn a_partitioned_sql_check_must_use_its_partition() {
    let sql = "SELECT id, name FROM raw_people WHERE region = '{partition}'";
    let unscoped = partitioned(sql, "").replace("WHERE partition_key = '{partition}' AND name", "WHERE name");
    let dir = project(&[("phlo.yaml", &unscoped), ("people.csv", PEOPLE)]);
    let out = phlo_in(dir.path(), &["validate"], &[]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("never uses `{partition}`") && out.stderr.contains("phlo.yaml:"), "{}", out.stderr);
    let misspelt = partitioned(sql, "").replace("= '{partition}' AND name", "= '{partiton}' AND name");
    std::fs::write(dir.path().join("phlo.yaml"), misspelt).unwrap();
    let out = phlo_in(dir.path(), &["validate"], &[]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("`{partiton}` is not a placeholder"), "{}", out.stderr);
}

/// Partitions of a model are written by column name: reordering the SELECT list between two
/// partitions keeps every value under its column; a changed column set fails the partition
/// (nothing written) unless the asset says `on_schema_change: append_new_columns`.
#[test]
fn partitioned_models_write_by_column_name() {
    let first = "SELECT '{partition}' AS region, id, name FROM raw_people WHERE region = '{partition}'";
    let dir = project(&[("phlo.yaml", &partitioned(first, "")), ("people.csv", PEOPLE)]);
    assert_eq!(run(dir.path(), &["--partition", "eu"]).code, 0);
    let reordered = "SELECT '{partition}' AS region, name, id FROM raw_people WHERE region = '{partition}'";
    std::fs::write(dir.path().join("phlo.yaml"), partitioned(reordered, "")).unwrap();
    assert_eq!(run(dir.path(), &["--partition", "us"]).code, 0);
    let (id, name): (i64, String) = warehouse(dir.path())
        .query_row("SELECT id, name FROM m_by_region WHERE partition_key = 'us'", [], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap();
    assert_eq!((id, name.as_str()), (3, "grace"));

    let added = "SELECT '{partition}' AS region, id, name, 1 AS flag FROM raw_people WHERE region = '{partition}'";
    std::fs::write(dir.path().join("phlo.yaml"), partitioned(added, "")).unwrap();
    let out = run(dir.path(), &["--partition", "eu"]);
    assert_eq!(out.code, 4);
    let report = json(&out);
    let model = report["assets"].as_array().unwrap().iter().find(|a| a["key"] == "m.by_region").unwrap();
    let error = model["error"].as_str().unwrap_or_default();
    assert!(error.contains("adds `flag`") && error.contains("on_schema_change"), "{report:#}");
    assert_eq!(count(dir.path(), "m_by_region"), 3, "nothing written");
    std::fs::write(dir.path().join("phlo.yaml"), partitioned(added, "\n    on_schema_change: append_new_columns"))
        .unwrap();
    assert_eq!(run(dir.path(), &["--partition", "eu"]).code, 0);
    let flags: i64 = warehouse(dir.path()).query_row("SELECT count(flag) FROM m_by_region", [], |r| r.get(0)).unwrap();
    assert_eq!(flags, 2, "the new column holds eu's values, null for us");
}

/// An asset's `timeout` covers its checks: a check still running at the deadline is stopped
/// (its statement interrupted) and the step fails as timed out.
#[test]
fn a_timeout_covers_the_checks() {
    let yaml = SLOW_APPEND.replace("    mode: append\n", "    mode: append\n    timeout: 1s\n");
    let dir = project(&[("phlo.yaml", &yaml), ("a.csv", "id\n1\n2\n")]);
    std::fs::create_dir_all(dir.path().join(".phlo")).unwrap();
    warehouse(dir.path()).execute_batch("CREATE TABLE ctl (n INTEGER); INSERT INTO ctl VALUES (1000000000);").unwrap();
    let t0 = Instant::now();
    let out = run(dir.path(), &[]);
    let took = t0.elapsed();
    assert_eq!(out.code, 4, "{}", out.stderr);
    assert!(took < Duration::from_secs(5), "took {took:?}");
    let report = json(&out);
    let raw = report["assets"].as_array().unwrap().iter().find(|a| a["key"] == "raw.a").unwrap();
    assert_eq!(raw["status"], "failed");
    assert_eq!(raw["code"], "PHLO-E101", "{raw:#}");
    assert!(raw["error"].as_str().unwrap().contains("while its check `slow` ran"), "{raw:#}");
    assert_eq!(check(&report, "slow")["outcome"], "could_not_run");
}

/// Ctrl-C while a check runs stops it: the run ends cancelled (exit 130) within seconds, and
/// `--from-failure` finishes that cancelled run (its append is not repeated).
#[cfg(unix)]
#[test]
fn ctrl_c_stops_a_running_check() {
    let (dir, child) = slow_check_running(1_000_000_000, &["run", "--json"], std::process::Stdio::piped());
    let signalled = Instant::now();
    std::process::Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    let out = child.wait_with_output().unwrap();
    let took = signalled.elapsed();
    assert_eq!(out.status.code(), Some(130));
    assert!(took < Duration::from_secs(3), "stopped after {took:?}");
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["status"], "cancelled");
    assert_eq!(status_of(&report, "raw.a"), "cancelled", "{report:#}");
    warehouse(dir.path()).execute("UPDATE ctl SET n = 10", []).unwrap();
    let resumed = run(dir.path(), &["--from-failure"]);
    assert_eq!(resumed.code, 0, "{}", resumed.stderr);
    assert_eq!(json(&resumed)["run_id"], report["run_id"], "the cancelled run is the one resumed");
    assert_eq!(count(dir.path(), "raw_a"), 2);
}

/// A `command` asset ends when its program exits: a background child it left (in its group,
/// or detached into a session of its own) neither holds the run nor outlives it, and a
/// program that exited 0 before the timeout is a success.
#[cfg(target_os = "linux")]
#[test]
fn a_command_ends_when_its_program_exits() {
    let yaml = "
assets:
  ops.bg:
    type: command
    program: sh
    args: ['-c', 'sleep 15 & echo started']
    timeout: 2s
  ops.detached:
    type: command
    program: sh
    args: ['-c', 'setsid sh -c \"sleep 30; echo late > late.txt\" > /dev/null 2>&1 < /dev/null & echo $PHLO_RUN_ID/$PHLO_ASSET/$PHLO_ATTEMPT']
";
    let dir = project(&[("phlo.yaml", yaml)]);
    let t0 = Instant::now();
    let out = run(dir.path(), &["--run-id", "R7"]);
    let took = t0.elapsed();
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert!(took < Duration::from_secs(4), "the run waited for a background child: {took:?}");
    let report = json(&out);
    assert_eq!(status_of(&report, "ops.bg"), "succeeded", "{report:#}");
    // nothing the steps started is still running
    let left = std::process::Command::new("pgrep").args(["-f", "sleep 30"]).output().unwrap();
    assert!(String::from_utf8_lossy(&left.stdout).trim().is_empty(), "a detached child outlived the run");
    let events = phlo_in(dir.path(), &["runs", "events", "R7"], &[]);
    assert!(events.stdout.contains("R7/ops.detached/1"), "the step is in its environment: {}", events.stdout);
}

/// A data version includes the table's columns: renaming a column upstream makes the
/// downstream stale, and `--skip-unchanged` rebuilds it.
#[test]
fn a_renamed_column_is_a_new_data_version() {
    let yaml = |alias: &str| {
        format!(
            "
assets:
  raw.a:
    type: csv
    path: a.csv
  m.b:
    type: sql
    sql: SELECT id AS {alias} FROM raw_a
  m.c:
    type: sql
    sql: SELECT * FROM m_b
"
        )
    };
    let dir = project(&[("phlo.yaml", &yaml("a")), ("a.csv", "id\n1\n2\n")]);
    assert_eq!(run(dir.path(), &[]).code, 0);
    std::fs::write(dir.path().join("phlo.yaml"), yaml("customer_id")).unwrap();
    // m.b's code changed; run it alone: its rows are the same values under another name
    assert_eq!(run(dir.path(), &["--select", "m.b"]).code, 0);
    let status = json(&phlo_in(dir.path(), &["status", "--json"], &[]));
    let c = status.as_array().unwrap().iter().find(|r| r["key"] == "m.c").unwrap();
    assert_eq!(c["freshness"], "stale", "{c:#}");
    let skipped = json(&run(dir.path(), &["--skip-unchanged", "--select", "m.c"]));
    assert_eq!(status_of(&skipped, "m.c"), "succeeded", "{skipped:#}");
    let cols: String = warehouse(dir.path())
        .query_row("SELECT group_concat(name) FROM pragma_table_info('m_c')", [], |r| r.get(0))
        .unwrap();
    assert_eq!(cols, "customer_id");
}

/// A step resumed after a fix records its versions as a fresh one does: `status` says fresh.
#[test]
fn a_resumed_step_is_fresh() {
    let yaml = "
assets:
  raw.a:
    type: csv
    path: a.csv
  m.b:
    type: sql
    sql: SELECT id FROM raw_a
  m.c:
    type: sql
    sql: SELECT id, abs(-9223372036854775808) AS x FROM m_b
";
    let dir = project(&[("phlo.yaml", yaml), ("a.csv", "id\n1\n2\n")]);
    assert_eq!(run(dir.path(), &[]).code, 4);
    std::fs::write(dir.path().join("phlo.yaml"), yaml.replace("abs(-9223372036854775808)", "1")).unwrap();
    assert_eq!(run(dir.path(), &["--from-failure"]).code, 0);
    let status = json(&phlo_in(dir.path(), &["status", "--json"], &[]));
    for key in ["raw.a", "m.b", "m.c"] {
        let row = status.as_array().unwrap().iter().find(|r| r["key"] == key).unwrap();
        assert_eq!(row["freshness"], "fresh", "{row:#}");
    }
    let again = json(&run(dir.path(), &["--skip-unchanged"]));
    assert_eq!(status_of(&again, "m.c"), "skipped_unchanged", "{again:#}");
}

/// A check that reads another asset's table makes that asset a dependency: the check never
/// races it on a fresh warehouse; a table no asset writes is an error at its place.
#[test]
fn tables_a_check_reads_are_dependencies() {
    let yaml = "
assets:
  raw.a:
    type: csv
    path: a.csv
    checks:
      - {type: sql, name: in_b, query: 'SELECT * FROM raw_a WHERE id NOT IN (SELECT id FROM raw_b)'}
      - {type: row_count, min: 1, table: raw_b}
  raw.b:
    type: csv
    path: b.csv
";
    let dir = project(&[("phlo.yaml", yaml), ("a.csv", "id\n1\n2\n"), ("b.csv", "id\n1\n2\n3\n")]);
    let graph = json(&phlo_in(dir.path(), &["assets", "graph", "--format", "json"], &[]));
    let edges = graph["edges"].as_array().unwrap();
    assert!(edges.iter().any(|e| e["from"] == "raw.b" && e["to"] == "raw.a" && e["inferred"] == true), "{graph:#}");
    for _ in 0..3 {
        std::fs::remove_dir_all(dir.path().join(".phlo")).ok();
        let out = run(dir.path(), &["--concurrency", "4"]);
        assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    }
    let typo = yaml.replace("FROM raw_b)", "FROM raw_bb)");
    std::fs::write(dir.path().join("phlo.yaml"), typo).unwrap();
    let out = phlo_in(dir.path(), &["validate"], &[]);
    assert_eq!(out.code, 3, "{}", out.stderr);
    assert!(out.stderr.contains("reads table `raw_bb`, which no asset writes"), "{}", out.stderr);
    assert!(out.stderr.contains("phlo.yaml:7:93"), "located at the table in the query: {}", out.stderr);
}

/// `status` judges a partitioned asset partition by partition, and `stale()` runs every stale
/// partition — not only the latest — so the asset becomes fresh; partitions never
/// materialized are missing, not stale.
#[test]
fn stale_selects_every_stale_partition() {
    let yaml = "
assets:
  raw.people:
    type: csv
    path: people.csv
  m.by_region:
    type: sql
    partitions:
      static: [eu, us, apac]
    sql: \"SELECT id, name FROM raw_people WHERE region = '{partition}'\"
";
    let dir = project(&[("phlo.yaml", yaml), ("people.csv", PEOPLE)]);
    assert_eq!(run(dir.path(), &["--partition", "us"]).code, 0);
    let row = |dir: &Path| {
        let status = json(&phlo_in(dir, &["status", "--json"], &[]));
        status.as_array().unwrap().iter().find(|r| r["key"] == "m.by_region").unwrap().clone()
    };
    let r = row(dir.path());
    assert_eq!(r["freshness"], "fresh", "{r:#}");
    assert_eq!(r["missing_partitions"], 2);
    assert_eq!(run(dir.path(), &["--partition-range", "eu..apac"]).code, 0);
    // the source changes: every partition reads it, every partition is stale
    std::fs::write(dir.path().join("people.csv"), format!("{PEOPLE}apac,4,linus\n")).unwrap();
    assert_eq!(run(dir.path(), &["--select", "raw.people"]).code, 0);
    let r = row(dir.path());
    assert_eq!(r["freshness"], "stale");
    assert_eq!(r["stale_partitions"], serde_json::json!(["eu", "us", "apac"]), "{r:#}");
    let text = phlo_in(dir.path(), &["status"], &[]);
    assert!(text.stdout.contains("stale (3 partition(s), 3 stale)"), "{}", text.stdout);
    let stale = json(&run(dir.path(), &["--select", "stale()"]));
    let ran: Vec<&str> = stale["assets"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["key"] == "m.by_region")
        .map(|a| a["partition"].as_str().unwrap())
        .collect();
    assert_eq!(ran, ["eu", "us", "apac"], "{stale:#}");
    let r = row(dir.path());
    assert_eq!(r["freshness"], "fresh", "{r:#}");
    assert_eq!(r["stale_partitions"], serde_json::json!([]));
    let apac: i64 = warehouse(dir.path())
        .query_row("SELECT count(*) FROM m_by_region WHERE partition_key = 'apac'", [], |r| r.get(0))
        .unwrap();
    assert_eq!(apac, 1);
}
