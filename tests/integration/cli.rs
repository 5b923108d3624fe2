//! The `phlo` binary, run as a user would: exit codes, stdout, rendered diagnostics.

use std::path::Path;

use assert_cmd::Command;
use serde_json::Value;

use crate::fixture;

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

pub fn phlo_in(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut cmd = Command::cargo_bin("phlo").unwrap();
    cmd.current_dir(dir).args(args).env("NO_COLOR", "1").env_remove("PHLO_DEFAULT_CAPABILITIES");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    }
}

pub fn phlo(fixture_name: &str, args: &[&str]) -> Run {
    phlo_in(&fixture(fixture_name), args, &[])
}

pub fn json(run: &Run) -> Value {
    serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}\n{}", run.stdout, run.stderr))
}

/// Every bad input renders located diagnostics with a code, and exits with the right code.
#[test]
fn bad_inputs_render_diagnostics() {
    for (name, code) in [
        ("yaml-syntax", 2),
        ("toml-syntax", 2),
        ("unknown-keys", 2),
        ("wrong-types", 2),
        ("duplicate-keys", 2),
        ("malformed-requirements", 3),
        ("missing-default-provider", 3),
        ("undefined-env", 2),
        ("both-files", 2),
        ("plugin-config", 3),
        ("bad-checks", 3),
    ] {
        let run = phlo(name, &["validate"]);
        assert_eq!(run.code, code, "{name}: {}", run.stderr);
        assert!(!run.stderr.contains("panicked"), "{name}: {}", run.stderr);
        insta::assert_snapshot!(name, format!("exit code: {}\n\n{}", run.code, run.stderr));
    }
}

#[test]
fn a_valid_project_validates() {
    let run = phlo("ok", &["validate"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let line = run.stdout.trim();
    assert!(
        line.starts_with("phlo.yaml: ok — 6 assets, ") && line.ends_with(" plugins, 6 requirements resolved"),
        "{line}"
    );
    let run = phlo("ok-toml", &["validate"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.starts_with("phlo.toml: ok — 4 assets"), "{}", run.stdout);
}

#[test]
fn validate_json_lists_every_diagnostic() {
    let run = phlo("unknown-keys", &["validate", "--json"]);
    assert_eq!(run.code, 2);
    let v = json(&run);
    assert_eq!(v["ok"], false);
    let diags = v["diagnostics"].as_array().unwrap();
    assert_eq!(diags.len(), 6, "{diags:#?}");
    assert_eq!(diags[0]["code"], "PHLO-E003");
    assert_eq!(diags[0]["file"], "phlo.yaml");
    assert_eq!((diags[0]["line"].as_u64(), diags[0]["column"].as_u64()), (Some(1), Some(1)));
    assert_eq!(diags[0]["help"], "did you mean `name`?");
}

#[test]
fn plugins_list_json_rows() {
    let run = phlo("ok", &["plugins", "list", "--json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let rows = json(&run);
    let rows = rows.as_array().unwrap();
    let names: Vec<&str> = rows.iter().map(|r| r["name"].as_str().unwrap()).collect();
    // sorted by kind, then name
    let kinds: Vec<&str> = rows.iter().map(|r| r["kind"].as_str().unwrap()).collect();
    let mut sorted = kinds.clone();
    sorted.sort_by_key(|k| {
        ["asset_type", "asset_provider", "resource_provider", "quality_check", "hook_provider", "orchestrator_adapter"]
            .iter()
            .position(|x| x == k)
    });
    assert_eq!(kinds, sorted);
    for name in ["echo", "echo_rows", "sqlite", "csv", "sql", "not_null", "range", "console", "jsonl", "local"] {
        assert!(names.contains(&name), "{name} missing from {names:?}");
    }
    let echo = rows.iter().find(|r| r["name"] == "echo" && r["kind"] == "asset_type").unwrap();
    for field in ["name", "kind", "version", "crate", "provides", "requires", "ready", "missing"] {
        assert!(echo.get(field).is_some(), "missing field {field}");
    }
    assert_eq!(echo["crate"], "phlo-plugin-echo");
    assert_eq!(echo["requires"], serde_json::json!(["echo_store"]));
    assert_eq!(echo["asset_kind"], "ingestion");
    assert_eq!(echo["ready"], true);
    let store = rows.iter().find(|r| r["name"] == "echo" && r["kind"] == "resource_provider").unwrap();
    assert_eq!(store["provides"], serde_json::json!(["echo_store:echo"]));
    let check = rows.iter().find(|r| r["name"] == "range").unwrap();
    assert_eq!(
        (&check["kind"], &check["requires"]),
        (&serde_json::json!("quality_check"), &serde_json::json!(["query_engine"]))
    );
}

#[test]
fn plugins_list_works_without_a_project_and_filters_by_kind() {
    let dir = tempfile::tempdir().unwrap();
    let run = phlo_in(dir.path(), &["plugins", "list"], &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.starts_with("NAME"), "{}", run.stdout);
    assert!(run.stdout.contains("sqlite           resource_provider"), "{}", run.stdout);
    assert!(!run.stdout.contains("no (missing"), "{}", run.stdout);
    let run = phlo_in(dir.path(), &["plugins", "list", "--kind", "resource_provider", "--json"], &[]);
    assert_eq!(json(&run).as_array().unwrap().len(), 3, "echo, sqlite and sqlite_runs");
    let run = phlo_in(dir.path(), &["plugins", "list", "--kind", "resource"], &[]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("kinds are asset_type, asset_provider"), "{}", run.stderr);
}

#[test]
fn denied_plugins_are_listed_as_disabled_and_their_users_fail() {
    let run = phlo("allow-and-deny", &["plugins", "list", "--json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let rows = json(&run);
    let echo = rows.as_array().unwrap().iter().find(|r| r["name"] == "echo").unwrap();
    assert_eq!(echo["enabled"], false);
    assert_eq!(echo["status"]["reason"], "listed in plugins.deny");
    let sqlite = rows.as_array().unwrap().iter().find(|r| r["name"] == "sqlite").unwrap();
    assert_eq!(sqlite["status"]["reason"], "not listed in plugins.allow");
    let run = phlo("allow-and-deny", &["validate"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    insta::assert_snapshot!("allow-and-deny", run.stderr);
}

#[test]
fn plugins_info() {
    let run = phlo("ok", &["plugins", "info", "echo"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    for kind in ["asset_type", "asset_provider", "resource_provider", "hook_provider"] {
        assert!(run.stdout.contains(&format!("echo ({kind})")), "{}", run.stdout);
    }
    assert!(run.stdout.contains("rows: integer  How many rows the asset produces (default 10)."), "{}", run.stdout);
    assert!(run.stdout.contains("provides     echo_store:echo"), "{}", run.stdout);
    let run = phlo("ok", &["plugins", "info", "echo_rows", "--json"]);
    let v = json(&run);
    assert_eq!(v["kind"], "quality_check");
    assert_eq!(v["requires"], serde_json::json!(["echo_store"]));
    assert!(v["config_schema"]["properties"]["min"].is_object());
    let run = phlo("ok", &["plugins", "info", "echo_row"]);
    assert_eq!(run.code, 3);
    assert!(run.stderr.contains("did you mean `echo_rows`?"), "{}", run.stderr);
}

#[test]
fn capabilities_report() {
    let run = phlo("ok", &["capabilities", "--json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let rows = json(&run);
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 6, "five of the assets and the project's run_store");
    for field in ["requirement", "required_by", "resolved_to", "rule", "error"] {
        assert!(rows[0].get(field).is_some(), "missing field {field}");
    }
    let row = rows.iter().find(|r| r["required_by"] == "asset demo.rows").unwrap();
    assert_eq!(row["resolved_to"], "echo_store:echo");
    assert_eq!(row["rule"], "config_default");
    assert!(row["explanation"].as_str().unwrap().contains("phlo.yaml:4:17"), "{row}");

    let run = phlo("ok", &["capabilities", "--explain"]);
    insta::assert_snapshot!("capabilities-explain", run.stdout);
}

#[test]
fn capability_precedence_through_the_cli() {
    let dir = fixture("ok");
    // env beats phlo.yaml
    let run = phlo_in(&dir, &["capabilities", "--json"], &[("PHLO_DEFAULT_CAPABILITIES", r#"{"echo_store":"echo"}"#)]);
    assert_eq!(json(&run)[0]["rule"], "env_default");
    // a run tag beats env, and naming an absent provider is an error, not a fallback
    let run = phlo_in(
        &dir,
        &["capabilities", "--tag", "phlo/capability/echo_store=iceberg"],
        &[("PHLO_DEFAULT_CAPABILITIES", r#"{"echo_store":"echo"}"#)],
    );
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(run.stderr.contains("run tag `phlo/capability/echo_store` names `iceberg`"), "{}", run.stderr);
    assert!(run.stdout.contains("UNRESOLVED"), "{}", run.stdout);
    // malformed env is a config error
    let run = phlo_in(&dir, &["validate"], &[("PHLO_DEFAULT_CAPABILITIES", "table_store=sqlite")]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("PHLO-E026"), "{}", run.stderr);
    // a malformed --tag is a usage error
    let run = phlo_in(&dir, &["capabilities", "--tag", "nonsense"], &[]);
    assert_eq!(run.code, 2);
}

#[test]
fn env_expansion_with_defaults() {
    let run = phlo("undefined-env", &["validate"]);
    assert!(run.stderr.contains("`PHLO_TEST_UNSET_NAME` is not set"), "{}", run.stderr);
    let run = phlo_in(&fixture("undefined-env"), &["validate"], &[("PHLO_TEST_UNSET_NAME", "set")]);
    assert_eq!(run.code, 0, "{}", run.stderr);
}

#[test]
fn schema_includes_every_compiled_plugin() {
    let dir = tempfile::tempdir().unwrap();
    let run = phlo_in(dir.path(), &["schema"], &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let v = json(&run);
    assert!(v["properties"]["resources"]["properties"]["echo"]["properties"]["capacity"].is_object(), "{v:#}");
    let variants = v["properties"]["assets"]["additionalProperties"]["anyOf"].as_array().unwrap();
    let echo = variants.iter().find(|s| s["properties"]["type"]["const"] == "echo").unwrap();
    assert!(echo["properties"]["rows"].is_object());
    assert!(echo["properties"]["deps"].is_object());
    // every check kind has its own keys, beside the keys every check has
    let checks = echo["properties"]["checks"]["items"]["anyOf"].as_array().unwrap();
    let range = checks.iter().find(|s| s["properties"]["type"]["const"] == "range").unwrap();
    assert!(range["properties"]["min"].is_object() && range["properties"]["severity"].is_object(), "{range:#}");
    assert_eq!(range["additionalProperties"], false);
    assert_eq!(range["required"], serde_json::json!(["type", "column"]));
    assert!(v["$defs"]["PluginsSection"]["properties"]["strict"].is_object(), "{v:#}");
}

#[test]
fn usage_errors_and_missing_projects() {
    let dir = tempfile::tempdir().unwrap();
    let run = phlo_in(dir.path(), &["validate"], &[]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("error[PHLO-E001]: no phlo.yaml, phlo.yml or phlo.toml"), "{}", run.stderr);
    let run = phlo_in(dir.path(), &["frobnicate"], &[]);
    assert_eq!(run.code, 2);
    let run = phlo_in(dir.path(), &["--version"], &[]);
    assert_eq!(run.code, 0);
    let run = phlo_in(dir.path(), &["--project", "does/not/exist", "validate"], &[]);
    assert_eq!(run.code, 2);
}

#[test]
fn schedule_list_shows_next_fire_times_and_bad_lines_are_located() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("phlo.yaml"),
        "schedules:\n  weekdays:\n    cron: '30 6 * * 1-5'\n    timezone: Europe/Paris\n  off:\n    cron: '@hourly'\n    enabled: false\n",
    )
    .unwrap();
    let run = phlo_in(dir.path(), &["schedule", "list", "--json", "--next", "5"], &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let rows = json(&run);
    let weekdays = rows.as_array().unwrap().iter().find(|r| r["name"] == "weekdays").unwrap();
    let next: Vec<&str> = weekdays["next"].as_array().unwrap().iter().map(|t| t.as_str().unwrap()).collect();
    assert_eq!(next.len(), 5);
    for t in &next {
        let day = chrono::DateTime::parse_from_rfc3339(t).unwrap();
        use chrono::{Datelike, Timelike};
        assert!(day.weekday().number_from_monday() <= 5, "{t} is not Monday to Friday");
        assert_eq!((day.hour(), day.minute()), (6, 30), "{t}");
    }
    let off = rows.as_array().unwrap().iter().find(|r| r["name"] == "off").unwrap();
    assert_eq!(off["next"], serde_json::json!([]));

    std::fs::write(dir.path().join("phlo.yaml"), "schedules:\n  bad:\n    cron: '0 6 * * 8'\n").unwrap();
    let run = phlo_in(dir.path(), &["validate"], &[]);
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains("error[PHLO-E034]: the day-of-week field `8` is not valid: 8 is outside 0–7"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("phlo.yaml:3:11"), "{}", run.stderr);
}

#[test]
fn run_the_quickstart_json_document_and_event_log() {
    let dir = tempfile::tempdir().unwrap();
    crate::quickstart::copy_quickstart(dir.path());
    let run = phlo_in(dir.path(), &["run", "--json"], &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let v = json(&run);
    for field in ["run_id", "status", "started_at", "duration_ms", "assets", "checks"] {
        assert!(v.get(field).is_some(), "missing {field}");
    }
    assert_eq!(v["status"], "succeeded");
    let assets = v["assets"].as_array().unwrap();
    // the quickstart's 8 assets and the 3 of the `echo` example plugin (these tests build it in)
    assert_eq!(assets.len(), 11);
    for a in assets {
        for field in ["key", "partition", "status", "attempts", "duration_ms", "error"] {
            assert!(a.get(field).is_some(), "missing assets[].{field}");
        }
    }
    let report = assets.iter().find(|a| a["key"] == "marts.daily_revenue").unwrap();
    assert_eq!(report["metadata"]["row_count"], 91);
    // the jsonl hook wrote the run's events, in order
    let log = std::fs::read_to_string(dir.path().join(".phlo/events.jsonl")).unwrap();
    let types: Vec<String> =
        log.lines().map(|l| serde_json::from_str::<Value>(l).unwrap()["type"].as_str().unwrap().to_string()).collect();
    assert_eq!(types.first().map(String::as_str), Some("run.start"));
    assert_eq!(types.last().map(String::as_str), Some("run.end"));
    assert_eq!(types.iter().filter(|t| t.ends_with(".end") && *t != "run.end").count(), 11);
    assert!(types.iter().any(|t| t == "quality.result") && types.iter().any(|t| t == "lineage.edges"));
    // the console hook printed lifecycle lines on stderr
    assert!(run.stderr.contains("▶ raw.orders (ingestion)"), "{}", run.stderr);
}

#[test]
fn run_exit_codes_selection_and_partitions() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("phlo.yaml"),
        "assets:\n  a.part:\n    type: echo\n    rows: 2\n    partitions:\n      daily: {start: 2024-01-01, end: 2024-02-01}\n  a.big:\n    type: echo\n    rows: 5\n\
         resources:\n  echo:\n    capacity: 3\n",
    )
    .unwrap();
    // a.big exceeds the store's capacity: the run fails with exit code 4
    let run = phlo_in(dir.path(), &["run", "--select", "a.big", "--json"], &[]);
    assert_eq!(run.code, 4, "{}", run.stderr);
    let v = json(&run);
    assert_eq!(v["status"], "failed");
    assert!(v["assets"][0]["error"].as_str().unwrap().contains("capacity of 3"), "{v:#}");
    // without --partition a partitioned asset runs its latest partition
    let run = phlo_in(dir.path(), &["run", "--select", "a.part", "--json"], &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(json(&run)["assets"][0]["partition"], "2024-01-31");
    let run = phlo_in(dir.path(), &["run", "--select", "a.part", "--partition", "2023-12-31"], &[]);
    assert_eq!(run.code, 3, "{}", run.stderr);
    let run =
        phlo_in(dir.path(), &["run", "-s", "a.part", "--partition-range", "2024-01-02..2024-01-04", "--json"], &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let v = json(&run);
    let parts: Vec<&str> = v["assets"].as_array().unwrap().iter().map(|a| a["partition"].as_str().unwrap()).collect();
    assert_eq!(parts, ["2024-01-02", "2024-01-03", "2024-01-04"]);
    // selection errors are usage errors
    let run = phlo_in(dir.path(), &["run", "--select", "nothing.*"], &[]);
    assert_eq!(run.code, 2);
    // a project with errors does not run
    std::fs::write(dir.path().join("phlo.yaml"), "assets:\n  x:\n    type: echo\n    deps: [missing]\n").unwrap();
    let run = phlo_in(dir.path(), &["run"], &[]);
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(run.stdout.is_empty());
}

#[test]
fn schedule_run_once_starts_every_schedule_now() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("phlo.yaml"),
        "assets:\n  d.part:\n    type: echo\n    partitions:\n      daily: {start: 2020-01-01}\nschedules:\n  daily_part:\n    cron: '@daily'\n    select: d.part\n    partition: '{yesterday}'\n  all:\n    cron: '0 6 * * 1-5'\n",
    )
    .unwrap();
    let run = phlo_in(dir.path(), &["schedule", "run", "--once", "--only", "daily_part"], &[("PHLO_LOG", "off")]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stdout.starts_with("schedule daily_part: run ") && run.stdout.trim_end().ends_with("succeeded"),
        "{}",
        run.stdout
    );
    let log = std::fs::read_to_string(dir.path().join(".phlo/events.jsonl")).unwrap();
    let yesterday = (chrono::Utc::now() - chrono::Duration::days(1)).format("%Y-%m-%d").to_string();
    assert!(log.contains(&format!("\"partition\":\"{yesterday}\"")), "{log}");
    assert!(log.contains("\"phlo/schedule\":\"daily_part\""), "{log}");
    let run = phlo_in(dir.path(), &["schedule", "run", "--once", "--only", "nope"], &[]);
    assert_eq!(run.code, 2);
}

#[test]
fn run_tags_choose_providers_at_run_time() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(fixture("../../examples/quickstart/phlo.yaml"), dir.path().join("phlo.yaml")).unwrap();
    let run = phlo_in(dir.path(), &["run", "--tag", "phlo/capability/echo_store=iceberg"], &[]);
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(run.stderr.contains("run tag `phlo/capability/echo_store` names `iceberg`"), "{}", run.stderr);
    assert!(!dir.path().join(".phlo/events.jsonl").exists(), "nothing runs when resolution fails");
}

#[test]
fn validate_probe_reaches_every_bound_resource() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("phlo.yaml"),
        "assets:\n  x:\n    external: true\n    requires: [table_store, echo_store]\n",
    )
    .unwrap();
    let run = phlo_in(dir.path(), &["validate", "--probe"], &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains("probe OK: sqlite") && run.stdout.contains("probe OK: echo"), "{}", run.stdout);
    assert!(dir.path().join(".phlo/warehouse.db").is_file());

    std::fs::write(dir.path().join("blocker"), "a file").unwrap();
    std::fs::write(
        dir.path().join("phlo.yaml"),
        "resources:\n  sqlite:\n    path: blocker/w.db\nassets:\n  x:\n    external: true\n    requires: [table_store]\n",
    )
    .unwrap();
    let run = phlo_in(dir.path(), &["validate", "--probe"], &[]);
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(
        run.stderr.contains("PHLO-E028") && run.stderr.contains("cannot create the warehouse directory"),
        "{}",
        run.stderr
    );
    // without --probe nothing is opened
    let run = phlo_in(dir.path(), &["validate"], &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
}

/// Ctrl-C as a user presses it: the running command is stopped, nothing new starts, the run
/// ends `cancelled` with exit code 130.
#[cfg(unix)]
#[test]
fn sigint_cancels_a_run() {
    use std::time::{Duration, Instant};
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("phlo.yaml"),
        "assets:\n  ops.slow:\n    type: command\n    program: sleep\n    args: ['30']\n  ops.after:\n    type: command\n    program: 'true'\n    deps: [ops.slow]\n",
    )
    .unwrap();
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("phlo"))
        .args(["run", "--json"])
        .env("PHLO_LOG", "off")
        .current_dir(dir.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // wait until the slow command is running (its start event is in the log), then a moment
    // more for the signal handler
    let started = Instant::now();
    let log = dir.path().join(".phlo/events.jsonl");
    while !std::fs::read_to_string(&log).is_ok_and(|t| t.contains("\"transform.start\"")) {
        assert!(started.elapsed() < Duration::from_secs(20), "the run did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(300));
    let t0 = Instant::now();
    assert!(std::process::Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap().success());
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(t0.elapsed() < Duration::from_secs(15), "the run did not stop");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(t0.elapsed() < Duration::from_secs(10));
    assert_eq!(status.code(), Some(130));
    let out = child.wait_with_output().unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["status"], "cancelled");
    let status_of = |k: &str| v["assets"].as_array().unwrap().iter().find(|a| a["key"] == k).unwrap()["status"].clone();
    assert_eq!(status_of("ops.slow"), "cancelled");
    assert_eq!(status_of("ops.after"), "cancelled");
}

#[test]
fn plugin_new_refuses_bad_names_and_foreign_directories() {
    let dir = tempfile::tempdir().unwrap();
    let run = phlo_in(dir.path(), &["plugin", "new", "My-Store", "--kind", "resource"], &[]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("error[PHLO-E060]: `My-Store` is not a plugin name"), "{}", run.stderr);
    let run = phlo_in(dir.path(), &["plugin", "new", "my_store", "--kind", "resource"], &[]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("is not inside a phlo workspace"), "{}", run.stderr);
    let run = phlo_in(dir.path(), &["plugin", "new", "my_store", "--kind", "widget"], &[]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(std::fs::read_dir(dir.path()).unwrap().next().is_none(), "nothing is written");
}

#[test]
fn the_query_of_a_sql_check_is_never_expanded() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("phlo.yaml"),
        "assets:\n  raw.t:\n    type: echo\n    rows: 3\n    checks:\n      - {type: echo_rows, min: 1}\n  \
         staging.t:\n    type: sql\n    sql: SELECT 1 AS x\n    checks:\n      - {type: sql, query: \"SELECT 1 AS v WHERE '${HOME}' <> '$' || '{HOME}'\"}\n",
    )
    .unwrap();
    let run = phlo_in(dir.path(), &["run", "--json"], &[("HOME", "/home/someone")]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let v = json(&run);
    let sql = v["checks"].as_array().unwrap().iter().find(|c| c["name"] == "sql").unwrap();
    // the literal `${HOME}` reached SQLite (an expanded query would find one violation)
    assert_eq!(sql["outcome"], "passed", "{sql}");
}
