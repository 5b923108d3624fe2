//! The run history (`run_store`, SQLite `.phlo/runs.db` by default): what a run records,
//! `phlo runs list|show|events`, a run killed with SIGKILL, and a store phlo must not touch.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::cli::{json, phlo_in};
use crate::quickstart::copy_quickstart;

/// `phlo run` in `dir`, in the background, its output discarded.
fn spawn_run(dir: &Path) -> std::process::Child {
    std::process::Command::new(assert_cmd::cargo::cargo_bin("phlo"))
        .arg("run")
        .env("PHLO_LOG", "off")
        .current_dir(dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap()
}

fn latest_run(dir: &Path) -> Value {
    let runs = json(&phlo_in(dir, &["runs", "list", "--json"], &[]));
    runs[0].clone()
}

/// A quickstart run is in the store as it happened: every step with its outcome and rows,
/// every check result, and exactly the events the hooks saw (the JSON Lines log's).
#[test]
fn a_run_is_recorded_as_it_happened() {
    let dir = tempfile::tempdir().unwrap();
    copy_quickstart(dir.path());
    let run = phlo_in(dir.path(), &["run", "--json"], &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let report = json(&run);
    let listed = latest_run(dir.path());
    assert_eq!(listed["run_id"], report["run_id"]);
    assert_eq!(listed["status"], "succeeded");
    let succeeded = report["assets"].as_array().unwrap().iter().filter(|a| a["status"] == "succeeded").count();
    assert_eq!(listed["summary"]["succeeded"], succeeded);
    let id = report["run_id"].as_str().unwrap();
    let shown = json(&phlo_in(dir.path(), &["runs", "show", id, "--json"], &[]));
    let steps = shown["steps"].as_array().unwrap();
    assert_eq!(steps.len(), report["assets"].as_array().unwrap().len());
    for a in report["assets"].as_array().unwrap() {
        let s = steps.iter().find(|s| s["asset_key"] == a["key"] && s["partition"] == a["partition"]).unwrap();
        assert_eq!(s["status"], a["status"], "{a}");
        assert_eq!(s["metadata"]["row_count"], a["metadata"]["row_count"], "{a}");
    }
    let checks = shown["checks"].as_array().unwrap();
    assert_eq!(checks.len(), report["checks"].as_array().unwrap().len());
    let failed: Vec<&Value> = checks.iter().filter(|c| c["passed"] == false).collect();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0]["name"], "range_lifetime_value");
    assert!(!failed[0]["result"]["samples"].as_array().unwrap().is_empty(), "samples are kept");

    let events = phlo_in(dir.path(), &["runs", "events", id], &[]);
    assert_eq!(events.code, 0);
    let stored: Vec<Value> = events.stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let logged: Vec<Value> = std::fs::read_to_string(dir.path().join(".phlo/events.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // the same events; two assets running side by side may reach the two hooks in either order
    let by_id = |mut v: Vec<Value>| {
        v.sort_by_key(|e| e["id"].to_string());
        v
    };
    assert_eq!(stored.len(), logged.len());
    assert_eq!(by_id(stored.clone()), by_id(logged), "the store holds what the hooks saw");
    assert_eq!(stored[0]["type"], "run.start");
    assert_eq!(stored.last().unwrap()["type"], "run.end");

    let text = phlo_in(dir.path(), &["runs", "show", id], &[]);
    assert!(text.stdout.contains("range_lifetime_value") && text.stdout.contains("4000 rows"), "{}", text.stdout);
    let text = phlo_in(dir.path(), &["runs", "list"], &[]);
    assert!(text.stdout.contains(id) && text.stdout.contains(&format!("{succeeded} succeeded")), "{}", text.stdout);
}

/// An unknown run id is an error naming the latest ids; an empty store says so.
#[test]
fn an_unknown_run_id_names_the_latest() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("phlo.yaml"), "assets:\n  ops.a:\n    type: command\n    program: 'true'\n")
        .unwrap();
    let none = phlo_in(dir.path(), &["runs", "list"], &[]);
    assert_eq!(none.code, 0);
    assert!(none.stdout.contains("no runs recorded yet"), "{}", none.stdout);
    let run = phlo_in(dir.path(), &["run", "--json"], &[]);
    let id = json(&run)["run_id"].as_str().unwrap().to_string();
    let missing = phlo_in(dir.path(), &["runs", "show", "nope"], &[]);
    assert_eq!(missing.code, 2);
    assert!(missing.stderr.contains("PHLO-E091") && missing.stderr.contains(&id), "{}", missing.stderr);
    assert_eq!(phlo_in(dir.path(), &["runs", "events", "nope"], &[]).code, 2);
}

/// A run killed with SIGKILL is found dead by the next command and marked `interrupted`;
/// what it finished stays finished.
#[cfg(unix)]
#[test]
fn a_killed_run_is_marked_interrupted_and_keeps_its_finished_steps() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("phlo.yaml"),
        "assets:\n  ops.quick:\n    type: command\n    program: 'true'\n  ops.slow:\n    type: command\n    program: sleep\n    args: ['30']\n    deps: [ops.quick]\n",
    )
    .unwrap();
    let mut child = spawn_run(dir.path());
    let log = dir.path().join(".phlo/events.jsonl");
    let started = Instant::now();
    while !std::fs::read_to_string(&log)
        .is_ok_and(|t| t.lines().any(|l| l.contains("transform.start") && l.contains("ops.slow")))
    {
        assert!(started.elapsed() < Duration::from_secs(20), "the run did not reach ops.slow");
        std::thread::sleep(Duration::from_millis(50));
    }
    // a step's start is committed within 20 ms (group commit)
    std::thread::sleep(Duration::from_millis(200));
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let run = latest_run(dir.path());
    assert_eq!(run["status"], "interrupted", "{run}");
    let id = run["run_id"].as_str().unwrap();
    let shown = json(&phlo_in(dir.path(), &["runs", "show", id, "--json"], &[]));
    let status =
        |k: &str| shown["steps"].as_array().unwrap().iter().find(|s| s["asset_key"] == k).unwrap()["status"].clone();
    assert_eq!(status("ops.quick"), "succeeded");
    assert_eq!(status("ops.slow"), "interrupted");
    // the next run says what it found, and records itself
    let next = phlo_in(dir.path(), &["run", "--select", "ops.quick"], &[]);
    assert_eq!(next.code, 0, "{}", next.stderr);
    assert_eq!(latest_run(dir.path())["status"], "succeeded");
}

/// A damaged file, another program's database, or a store from a newer phlo: a clear error,
/// and the file is left exactly as it was.
#[test]
fn a_store_phlo_must_not_touch_is_refused_and_left_alone() {
    let project = "assets:\n  ops.a:\n    type: command\n    program: 'true'\n";
    type Make = Box<dyn Fn(&Path)>;
    let cases: Vec<(&str, Make, &str)> = vec![
        ("damaged", Box::new(|p: &Path| std::fs::write(p, vec![0x42u8; 8192]).unwrap()), "damaged or not a database"),
        (
            "foreign",
            Box::new(|p: &Path| {
                let c = rusqlite::Connection::open(p).unwrap();
                c.execute_batch("CREATE TABLE invoices (id INTEGER); INSERT INTO invoices VALUES (1);").unwrap();
            }),
            "is not a phlo run store",
        ),
        (
            "newer",
            Box::new(|p: &Path| {
                let c = rusqlite::Connection::open(p).unwrap();
                c.execute_batch("PRAGMA application_id = 1885891695; PRAGMA user_version = 99;").unwrap();
            }),
            "schema version 99, written by a newer phlo",
        ),
    ];
    for (name, make, says) in cases {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("phlo.yaml"), project).unwrap();
        std::fs::create_dir(dir.path().join(".phlo")).unwrap();
        let db = dir.path().join(".phlo/runs.db");
        make(&db);
        let before = std::fs::read(&db).unwrap();
        for args in [&["run"][..], &["runs", "list"][..]] {
            let r = phlo_in(dir.path(), args, &[]);
            assert_eq!(r.code, 3, "{name} {args:?}: {}", r.stderr);
            assert!(r.stderr.contains("PHLO-E090") && r.stderr.contains(says), "{name}: {}", r.stderr);
        }
        assert_eq!(std::fs::read(&db).unwrap(), before, "{name}: the file is untouched");
        assert!(!dir.path().join(".phlo/runs.db-wal").exists() || name == "newer", "{name}");
    }
}

fn warehouse_count(dir: &Path, sql: &str) -> i64 {
    let c = rusqlite::Connection::open(dir.join(".phlo/warehouse.db")).unwrap();
    c.query_row(sql, [], |r| r.get(0)).unwrap()
}

/// The quickstart with a model that fails at run time: `--from-failure`, after the fix, runs
/// the failed model and what it held up — nothing that had succeeded (a marker row written
/// into upstream tables survives) — under the same run id, and the store says so.
#[test]
fn from_failure_recomputes_only_the_failed_part() {
    let dir = tempfile::tempdir().unwrap();
    copy_quickstart(dir.path());
    let yaml = dir.path().join("phlo.yaml");
    let good = std::fs::read_to_string(&yaml).unwrap();
    // marts.daily_revenue's SELECT (the first of two alike)
    let broken = good.replacen(
        "round(sum(amount), 2) AS revenue",
        "round(sum(amount), 2) AS revenue, json('{not json') AS broken",
        1,
    );
    assert_ne!(good, broken);
    std::fs::write(&yaml, &broken).unwrap();
    let first = phlo_in(dir.path(), &["run", "--json"], &[]);
    assert_eq!(first.code, 4, "{}", first.stderr);
    let first = json(&first);
    let id = first["run_id"].as_str().unwrap().to_string();
    let status_in = |report: &Value, k: &str| {
        report["assets"].as_array().unwrap().iter().find(|a| a["key"] == k).map(|a| a["status"].clone())
    };
    assert_eq!(status_in(&first, "marts.daily_revenue"), Some(Value::from("failed")));
    assert_eq!(status_in(&first, "publish.revenue_report"), Some(Value::from("skipped")));
    // markers: a recomputed upstream table would lose them
    let c = rusqlite::Connection::open(dir.path().join(".phlo/warehouse.db")).unwrap();
    c.execute_batch(
        "INSERT INTO raw_orders (order_id) VALUES (-1); INSERT INTO staging_orders (order_id) VALUES (-1);",
    )
    .unwrap();
    drop(c);

    std::fs::write(&yaml, &good).unwrap();
    let resumed = phlo_in(dir.path(), &["run", "--from-failure", "--json"], &[]);
    assert_eq!(resumed.code, 0, "{}", resumed.stderr);
    assert!(resumed.stderr.contains(&format!("resuming run {id}")), "{}", resumed.stderr);
    let resumed = json(&resumed);
    assert_eq!(resumed["run_id"], id.as_str(), "the same run, a new attempt");
    let ran: BTreeSet<&str> =
        resumed["assets"].as_array().unwrap().iter().map(|a| a["key"].as_str().unwrap()).collect();
    assert_eq!(ran, BTreeSet::from(["marts.daily_revenue", "publish.revenue_report"]), "{first:#}\n{resumed:#}");
    assert_eq!(warehouse_count(dir.path(), "SELECT count(*) FROM raw_orders WHERE order_id = -1"), 1);
    assert_eq!(warehouse_count(dir.path(), "SELECT count(*) FROM staging_orders WHERE order_id = -1"), 1);
    assert!(warehouse_count(dir.path(), "SELECT count(*) FROM marts_daily_revenue") > 0);

    let runs = json(&phlo_in(dir.path(), &["runs", "list", "--json"], &[]));
    assert_eq!(runs.as_array().unwrap().len(), 1, "one story: {runs:#}");
    assert_eq!(runs[0]["status"], "succeeded");
    let steps = json(&phlo_in(dir.path(), &["runs", "show", &id, "--json"], &[]))["steps"].clone();
    assert!(steps.as_array().unwrap().iter().all(|s| s["status"] == "succeeded"), "{steps:#}");
    assert_eq!(steps.as_array().unwrap().len(), first["assets"].as_array().unwrap().len());
    // the events of both attempts are the run's: raw.orders started once, the model twice
    let events = phlo_in(dir.path(), &["runs", "events", &id], &[]).stdout;
    let starts = |k: &str| {
        events.lines().filter(|l| l.contains(".start\"") && l.contains(&format!("\"asset_key\":\"{k}\""))).count()
    };
    assert_eq!(starts("raw.orders"), 1);
    assert_eq!(starts("marts.daily_revenue"), 2);

    let again = phlo_in(dir.path(), &["run", "--resume", &id], &[]);
    assert_eq!(again.code, 0);
    assert!(again.stderr.contains("succeeded: nothing to resume"), "{}", again.stderr);
    let unknown = phlo_in(dir.path(), &["run", "--resume", "nope"], &[]);
    assert_eq!(unknown.code, 2);
    assert!(unknown.stderr.contains("PHLO-E091") && unknown.stderr.contains(&id), "{}", unknown.stderr);
}

/// Fault injection: a 50-asset run killed with SIGKILL at 20 moments spread over its length.
/// Every time the store is consistent (the next command marks the run interrupted, every step
/// has a final status), and `--resume` completes the run without running again any step the
/// store recorded as succeeded (each asset appends a line to its own trace file when it runs).
#[cfg(unix)]
#[test]
fn a_run_killed_at_any_moment_resumes_without_recomputing() {
    let mut yaml = String::from("executor:\n  concurrency: 2\nassets:\n");
    for i in 0..50 {
        let deps = match i {
            0 => String::new(),
            i if i % 5 == 0 => format!("\n    deps: [ops.a{}, ops.a{}]", i - 1, i - 5),
            i => format!("\n    deps: [ops.a{}]", i - 1),
        };
        yaml.push_str(&format!(
            "  ops.a{i}:\n    type: command\n    program: sh\n    args: ['-c', 'echo run >> trace/a{i}; sleep 0.01']{deps}\n"
        ));
    }
    let mut seed: u64 = 0x5eed;
    let mut resumed = 0;
    for trial in 0..20 {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("phlo.yaml"), &yaml).unwrap();
        std::fs::create_dir(dir.path().join("trace")).unwrap();
        // a moment between 0 and ~1.2 s (the run takes about that long here)
        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        let wait = Duration::from_millis(20 + (seed >> 33) % 1200);
        let mut child = spawn_run(dir.path());
        std::thread::sleep(wait);
        let _ = child.kill();
        child.wait().unwrap();
        std::thread::sleep(Duration::from_millis(50)); // orphaned commands finish their echo

        let list = phlo_in(dir.path(), &["runs", "list", "--json"], &[]);
        assert_eq!(list.code, 0, "trial {trial}: {}", list.stderr);
        let runs = json(&list);
        let Some(run) = runs.as_array().unwrap().first().cloned() else { continue }; // killed before it began
        let id = run["run_id"].as_str().unwrap().to_string();
        let shown = json(&phlo_in(dir.path(), &["runs", "show", &id, "--json"], &[]));
        // (builds with the echo plugin add its demo assets to every project)
        let steps: Vec<&Value> = shown["steps"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["asset_key"].as_str().unwrap().starts_with("ops."))
            .collect();
        assert!(
            steps
                .iter()
                .all(|s| ["succeeded", "failed", "skipped", "interrupted"].contains(&s["status"].as_str().unwrap())),
            "trial {trial}: {steps:#?}"
        );
        let done: Vec<String> = steps
            .iter()
            .filter(|s| s["status"] == "succeeded")
            .map(|s| s["asset_key"].as_str().unwrap().trim_start_matches("ops.").to_string())
            .collect();
        if run["status"] == "succeeded" {
            assert_eq!(done.len(), 50, "trial {trial}");
            continue;
        }
        assert_eq!(run["status"], "interrupted", "trial {trial}: {run}");
        let r = phlo_in(dir.path(), &["run", "--resume", &id], &[("PHLO_LOG", "off")]);
        assert_eq!(r.code, 0, "trial {trial}: {}", r.stderr);
        resumed += 1;
        assert_eq!(latest_run(dir.path())["status"], "succeeded", "trial {trial}");
        for i in 0..50 {
            let trace = std::fs::read_to_string(dir.path().join(format!("trace/a{i}"))).unwrap_or_default();
            let times = trace.lines().count();
            if done.contains(&format!("a{i}")) {
                assert_eq!(times, 1, "trial {trial}: a{i} had succeeded and ran again");
            } else {
                assert!(times >= 1, "trial {trial}: a{i} never ran");
            }
        }
    }
    assert!(resumed >= 10, "only {resumed} of 20 trials were cut mid-run: adjust the moments");
}

/// `runs prune` deletes old runs with their steps and events, by count or by age.
#[test]
fn prune_keeps_the_newest_runs() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("phlo.yaml"), "assets:\n  ops.a:\n    type: command\n    program: 'true'\n")
        .unwrap();
    let ids: Vec<String> = (0..3)
        .map(|_| json(&phlo_in(dir.path(), &["run", "--json"], &[]))["run_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(phlo_in(dir.path(), &["runs", "prune"], &[]).code, 2, "says what to prune by");
    let logs = dir.path().join(".phlo/logs");
    assert!(logs.join(&ids[0]).join("ops.a.log").is_file());
    let pruned = phlo_in(dir.path(), &["runs", "prune", "--keep", "1"], &[]);
    assert_eq!(pruned.stdout.trim(), "pruned 2 run(s)\nremoved the logs of 2 run(s)", "{}", pruned.stderr);
    // the logs of pruned runs went with them; the kept run's are there
    assert!(!logs.join(&ids[0]).exists() && !logs.join(&ids[1]).exists());
    let kept = phlo_in(dir.path(), &["runs", "logs", &ids[2], "ops.a"], &[]);
    assert!(kept.stdout.starts_with("--- phlo: `true` for ops.a, attempt 1 ---"), "{}", kept.stdout);
    let left = json(&phlo_in(dir.path(), &["runs", "list", "--json"], &[]));
    assert_eq!(left.as_array().unwrap().len(), 1);
    assert_eq!(left[0]["run_id"], ids[2].as_str());
    assert_eq!(phlo_in(dir.path(), &["runs", "events", &ids[0]], &[]).code, 2, "its events went with it");
    assert_eq!(phlo_in(dir.path(), &["runs", "prune", "--older-than", "10d"], &[]).stdout.trim(), "pruned 0 run(s)");
    assert_eq!(
        phlo_in(dir.path(), &["runs", "prune", "--older-than", "0s"], &[]).stdout.trim(),
        "pruned 1 run(s)\nremoved the logs of 1 run(s)"
    );
    assert_eq!(phlo_in(dir.path(), &["runs", "prune", "--older-than", "soon"], &[]).code, 2);
}

/// `phlo asset history KEY`: the asset's steps across runs, newest first, with their rows; a
/// key the project never had is an error with a suggestion.
#[test]
fn asset_history_lists_materializations_newest_first() {
    let dir = tempfile::tempdir().unwrap();
    copy_quickstart(dir.path());
    let ids: Vec<String> = (0..2)
        .map(|_| {
            let run = phlo_in(dir.path(), &["run", "--select", "raw.orders", "--json"], &[]);
            assert_eq!(run.code, 0, "{}", run.stderr);
            json(&run)["run_id"].as_str().unwrap().to_string()
        })
        .collect();
    let rows = json(&phlo_in(dir.path(), &["asset", "history", "raw.orders", "--json"], &[]));
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["run_id"], ids[1].as_str(), "newest first");
    assert_eq!(rows[0]["step"]["status"], "succeeded");
    assert_eq!(rows[0]["step"]["metadata"]["row_count"], 4000);
    let text = phlo_in(dir.path(), &["assets", "history", "raw.orders"], &[]).stdout;
    assert!(text.contains(&ids[0]) && text.contains("4000"), "{text}");
    let none = phlo_in(dir.path(), &["asset", "history", "marts.daily_revenue"], &[]);
    assert_eq!(none.code, 0);
    assert!(none.stdout.contains("has not run yet"), "{}", none.stdout);
    let typo = phlo_in(dir.path(), &["asset", "history", "raw.ordrs"], &[]);
    assert_eq!(typo.code, 2);
    assert!(typo.stderr.contains("did you mean `raw.orders`?"), "{}", typo.stderr);
}
