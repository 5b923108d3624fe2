//! The real-engine test of the Dagster adapter: the quickstart, exported with
//! `phlo export dagster`, validated by `dagster definitions validate` and materialized by
//! Dagster (pinned by `tests/engines/setup-python.sh`) on an ephemeral instance, every step
//! running this build's `phlo` through Dagster Pipes. What Dagster recorded must equal what
//! a local `phlo run` does: the same assets in dependency order, the same check results, the
//! same warehouse tables, the same partition keys; and a failing asset fails the Dagster run
//! without running its downstream.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::cli::{json, phlo_in};

fn python() -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let out = Command::new("bash")
        .arg(root.join("tests/engines/setup-python.sh"))
        .current_dir(&root)
        .output()
        .expect("run tests/engines/setup-python.sh");
    assert!(out.status.success(), "setup-python.sh failed: {}", String::from_utf8_lossy(&out.stderr));
    root.join(String::from_utf8(out.stdout).unwrap().trim())
}

fn quickstart_copy() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    crate::quickstart::copy_quickstart(dir.path());
    dir
}

/// Exports `project`, validates the module with Dagster, materializes everything and
/// returns what Dagster recorded.
fn on_dagster(project: &Path, partition: &str) -> Value {
    let out_dir = project.join("dagster");
    let run = phlo_in(project, &["export", "dagster", "--out", out_dir.to_str().unwrap()], &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let py = python();
    let dagster = py.parent().unwrap().join("dagster");
    let validate = Command::new(&dagster)
        .args(["definitions", "validate", "-f", "definitions.py"])
        .current_dir(&out_dir)
        .output()
        .unwrap();
    assert!(validate.status.success(), "dagster definitions validate: {}", String::from_utf8_lossy(&validate.stderr));
    let report = project.join("dagster-report.json");
    let drive = Command::new(&py)
        .arg(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/engines/dagster/drive.py"))
        .arg(&out_dir)
        .arg(partition)
        .arg(project.join(".phlo/warehouse.db"))
        .arg(&report)
        .env("PHLO_BIN", env!("CARGO_BIN_EXE_phlo"))
        .env("PHLO_LOG", "off")
        .output()
        .unwrap();
    assert!(drive.status.success(), "drive.py: {}", String::from_utf8_lossy(&drive.stderr));
    serde_json::from_str(&std::fs::read_to_string(report).unwrap()).unwrap()
}

fn dagster_key(phlo_key: &str) -> String {
    phlo_key.replace('.', "/")
}

#[test]
fn the_quickstart_on_dagster_equals_a_local_run() {
    // the local run: every asset, the partitioned one at its latest partition
    let local = quickstart_copy();
    let run = phlo_in(local.path(), &["run", "--json"], &[("PHLO_LOG", "off")]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let report = json(&run);
    let partition = report["assets"]
        .as_array()
        .unwrap()
        .iter()
        .find_map(|a| a["partition"].as_str())
        .expect("the quickstart has a partitioned asset")
        .to_string();

    let remote = quickstart_copy();
    let seen = on_dagster(remote.path(), &partition);
    let runs = seen["runs"].as_array().unwrap();
    assert!(runs.iter().all(|r| r["success"] == true), "{seen}");

    // every asset materialized once, with phlo's metadata
    let materialized: BTreeSet<String> = runs
        .iter()
        .flat_map(|r| r["materialized"].as_array().unwrap())
        .map(|m| m["key"].as_str().unwrap().to_string())
        .collect();
    let local_assets: BTreeSet<String> =
        report["assets"].as_array().unwrap().iter().map(|a| dagster_key(a["key"].as_str().unwrap())).collect();
    assert_eq!(materialized, local_assets);
    let orders = runs[0]["materialized"].as_array().unwrap().iter().find(|m| m["key"] == "raw/orders").unwrap();
    assert_eq!(orders["metadata"]["row_count"], 4000, "{orders}");
    assert_eq!(orders["metadata"]["table"], "raw_orders");
    // Dagster's run id is phlo's
    assert_eq!(orders["metadata"]["phlo_run_id"], runs[0]["run_id"], "{orders}");

    // in dependency order: each step after the steps of its deps
    let steps: Vec<&str> = runs[0]["steps"].as_array().unwrap().iter().map(|s| s.as_str().unwrap()).collect();
    let doc: Value =
        serde_json::from_str(&std::fs::read_to_string(remote.path().join("dagster/phlo_project.json")).unwrap())
            .unwrap();
    for a in doc["assets"].as_array().unwrap() {
        let Some(at) = steps.iter().position(|s| *s == a["op_name"]) else { continue };
        for d in a["deps"].as_array().unwrap() {
            let dep = doc["assets"].as_array().unwrap().iter().find(|x| x["key"] == *d).unwrap();
            if let Some(before) = steps.iter().position(|s| *s == dep["op_name"]) {
                assert!(before < at, "{} ran before its dep {}", a["key"], d);
            }
        }
    }

    // the same check results
    let dagster_checks: BTreeSet<(String, String, bool)> = runs
        .iter()
        .flat_map(|r| r["checks"].as_array().unwrap())
        .map(|c| {
            (c["asset"].as_str().unwrap().into(), c["name"].as_str().unwrap().into(), c["passed"].as_bool().unwrap())
        })
        .collect();
    let local_checks: BTreeSet<(String, String, bool)> = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                dagster_key(c["asset"].as_str().unwrap()),
                c["name"].as_str().unwrap().into(),
                c["passed"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(dagster_checks, local_checks);

    // the same warehouse
    let local_seen = on_dagster_tables(local.path());
    assert_eq!(seen["tables"], local_seen, "the warehouses differ");

    // the same partition keys
    let keys = phlo_in(remote.path(), &["assets", "partitions", "marts.category_revenue_daily", "--json"], &[]);
    let phlo_keys: Vec<String> =
        json(&keys).as_array().unwrap().iter().map(|r| r["key"].as_str().unwrap().to_string()).collect();
    assert_eq!(seen["partition_keys"]["marts/category_revenue_daily"], serde_json::json!(phlo_keys));
}

/// The tables of a project's warehouse, dumped as `drive.py` dumps them.
fn on_dagster_tables(project: &Path) -> Value {
    let out = project.join("tables.json");
    let dump = Command::new(python())
        .arg(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/engines/dagster/drive.py"))
        .args(["--dump"])
        .arg(project.join(".phlo/warehouse.db"))
        .arg(&out)
        .output()
        .unwrap();
    assert!(dump.status.success(), "{}", String::from_utf8_lossy(&dump.stderr));
    serde_json::from_str(&std::fs::read_to_string(out).unwrap()).unwrap()
}

#[test]
fn a_failing_asset_fails_the_dagster_run_and_its_downstream_does_not_run() {
    let project = quickstart_copy();
    let yaml = std::fs::read_to_string(project.path().join("phlo.yaml")).unwrap();
    // SQLite's abs() of the smallest integer raises "integer overflow" when the model runs
    let broken = yaml.replace(
        "round(sum(amount), 2) AS revenue\n      FROM staging_orders GROUP BY order_date",
        "abs(-9223372036854775808) AS revenue\n      FROM staging_orders GROUP BY order_date",
    );
    assert_ne!(broken, yaml);
    std::fs::write(project.path().join("phlo.yaml"), broken).unwrap();
    let seen = on_dagster(project.path(), "2024-03-31");
    let first = &seen["runs"][0];
    assert_eq!(first["success"], false, "{seen}");
    assert_eq!(first["failed_steps"], serde_json::json!(["marts__daily_revenue"]), "{seen}");
    let steps: Vec<&str> = first["steps"].as_array().unwrap().iter().map(|s| s.as_str().unwrap()).collect();
    assert!(!steps.contains(&"publish__revenue_report"), "the downstream ran: {steps:?}");
    assert!(steps.contains(&"marts__customer_lifetime_value"), "an unrelated asset did not run: {steps:?}");
}
