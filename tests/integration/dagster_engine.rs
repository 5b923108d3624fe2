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

    // the schedules, with their time zone; a tick of one over a partitioned asset runs the
    // last complete window, as phlo's own scheduler does
    let schedules = seen["schedules"].as_array().unwrap();
    let nightly = schedules.iter().find(|s| s["name"] == "nightly").expect("nightly");
    assert_eq!((nightly["cron"].as_str(), nightly["timezone"].as_str()), (Some("0 2 * * *"), Some("Europe/Paris")));
    assert_eq!(nightly["partition_keys"], serde_json::json!([phlo_keys.last().unwrap()]), "{nightly}");
    let report = schedules.iter().find(|s| s["name"] == "weekday_report").expect("weekday_report");
    assert_eq!(report["cron"], "30 6 * * 1-5", "{report}");
    assert_eq!(report.get("error"), None, "{report}");
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

/// Runs `code` in the reference venv with the exported module loaded as `m`; returns its stdout.
fn with_module(out_dir: &Path, code: &str) -> String {
    let script = format!(
        "import importlib.util, json, sys, warnings\nwarnings.filterwarnings('ignore')\n\
         spec = importlib.util.spec_from_file_location('m', sys.argv[1])\nm = importlib.util.module_from_spec(spec)\n\
         spec.loader.exec_module(m)\n{code}\n"
    );
    let run = Command::new(python()).arg("-c").arg(script).arg(out_dir.join("definitions.py")).output().unwrap();
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    String::from_utf8(run.stdout).unwrap()
}

/// Text a user wrote reaches Dagster verbatim and is never Python source.
#[test]
fn hostile_text_survives_export_verbatim() {
    let dir = tempfile::tempdir().unwrap();
    let description =
        "He said \"hi\" \\ {x} ''' \"\"\" end\nsecond line: ünïcødé ✓ __import__('os').system('touch pwned')";
    let yaml = format!(
        "assets:\n  raw.café:\n    type: echo\n    description: {}\n    tags: {{team: \"a\\\"b'c{{d}}\"}}\n  raw.b:\n    type: echo\n    deps: [raw.café]\n",
        serde_json::to_string(description).unwrap()
    );
    std::fs::write(dir.path().join("phlo.yaml"), yaml).unwrap();
    let out_dir = dir.path().join("dagster");
    let run = phlo_in(dir.path(), &["export", "dagster", "--out", out_dir.to_str().unwrap()], &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let seen = with_module(
        &out_dir,
        "specs = {a.key.to_user_string(): a for a in m._assets if hasattr(a, 'key')}\n\
         out = {}\n\
         for d in m.defs.resolve_all_asset_specs():\n    out[d.key.to_user_string()] = {'description': d.description, 'tags': dict(d.tags), 'phlo_tags': d.metadata['phlo/tags'].value, 'deps': [x.asset_key.to_user_string() for x in d.deps]}\n\
         print(json.dumps(out))",
    );
    let seen: Value = serde_json::from_str(seen.trim()).unwrap();
    // `raw.café` is Dagster's `raw/caf_e9` (Dagster names are ASCII)
    assert_eq!(seen["raw/caf_e9"]["description"], description, "{seen}");
    // a tag Dagster cannot hold as a tag is kept, verbatim, in the metadata
    assert_eq!(seen["raw/caf_e9"]["phlo_tags"]["team"], "a\"b'c{d}", "{seen}");
    assert_eq!(seen["raw/caf_e9"]["tags"].get("team"), None, "{seen}");
    assert_eq!(seen["raw/b"]["deps"], serde_json::json!(["raw/caf_e9"]), "{seen}");
    assert!(!dir.path().join("pwned").exists() && !out_dir.join("pwned").exists());
    // the module's source is the fixed text: no project text in it
    let source = std::fs::read_to_string(out_dir.join("definitions.py")).unwrap();
    assert!(!source.contains("café") && !source.contains("He said"));
}

#[test]
fn export_errors_are_located_and_the_output_directory_is_protected() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("phlo.yaml"), "assets:\n  raw.a-b:\n    type: echo\n  raw.a_b:\n    type: echo\n")
        .unwrap();
    let run = phlo_in(dir.path(), &["export", "dagster", "--out", "out"], &[]);
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(
        run.stderr.contains("error[PHLO-E080]") && run.stderr.contains("both become Dagster step `raw__a_b`"),
        "{}",
        run.stderr
    );

    std::fs::write(
        dir.path().join("phlo.yaml"),
        "assets:\n  raw.a:\n    type: echo\n    retries: {max: 3, delay: 1s, backoff: exponential}\n",
    )
    .unwrap();
    let run = phlo_in(dir.path(), &["export", "dagster", "--out", "out"], &[]);
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(run.stderr.contains("asset `raw.a`, field `retries.backoff`"), "{}", run.stderr);

    std::fs::write(dir.path().join("phlo.yaml"), "assets:\n  raw.a:\n    type: echo\n").unwrap();
    std::fs::create_dir_all(dir.path().join("out")).unwrap();
    std::fs::write(dir.path().join("out/notes.txt"), "mine").unwrap();
    let run = phlo_in(dir.path(), &["export", "dagster", "--out", "out"], &[]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("error[PHLO-E081]") && run.stderr.contains("--force"), "{}", run.stderr);
    let run = phlo_in(dir.path(), &["export", "dagster", "--out", "out", "--force"], &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(std::fs::read_to_string(dir.path().join("out/notes.txt")).unwrap(), "mine");
    let run = phlo_in(dir.path(), &["export", "local", "--out", "out2"], &[]);
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(run.stderr.contains("executes runs"), "{}", run.stderr);
    let run = phlo_in(dir.path(), &["plugins", "list", "--json", "--kind", "orchestrator_adapter"], &[]);
    let shapes: Vec<(String, String)> = json(&run)
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["name"].as_str().unwrap().to_string(), r["shape"].as_str().unwrap().to_string()))
        .collect();
    assert!(
        shapes.contains(&("dagster".into(), "renders".into())) && shapes.contains(&("local".into(), "executes".into()))
    );
}

#[test]
fn a_missing_phlo_binary_is_a_clear_dagster_failure() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("phlo.yaml"), "assets:\n  raw.a:\n    type: echo\n").unwrap();
    let out_dir = dir.path().join("dagster");
    assert_eq!(phlo_in(dir.path(), &["export", "dagster", "--out", out_dir.to_str().unwrap()], &[]).code, 0);
    let run = Command::new(python())
        .arg(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/engines/dagster/drive.py"))
        .arg(&out_dir)
        .arg("-")
        .arg(dir.path().join("none.db"))
        .arg(dir.path().join("report.json"))
        .env("PHLO_BIN", "/nonexistent/phlo")
        .output()
        .unwrap();
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let seen: Value = serde_json::from_str(&std::fs::read_to_string(dir.path().join("report.json")).unwrap()).unwrap();
    assert_eq!(seen["runs"][0]["success"], false);
    let all = String::from_utf8_lossy(&run.stdout).to_string() + &String::from_utf8_lossy(&run.stderr);
    assert!(all.contains("the phlo binary `/nonexistent/phlo` is not found"), "{all}");
}

/// What an asset logs reaches Dagster's event log through Pipes.
#[test]
fn phlo_log_lines_reach_dagsters_event_log() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("phlo.yaml"),
        "assets:\n  ops.greet:\n    type: command\n    program: sh\n    args: ['-c', 'echo hello-from-phlo']\n",
    )
    .unwrap();
    let seen = on_dagster(dir.path(), "-");
    assert_eq!(seen["runs"][0]["success"], true, "{seen}");
    let logs: Vec<&str> = seen["logs"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
    assert!(logs.iter().any(|l| l.contains("hello-from-phlo")), "{logs:?}");
}

/// `PHLO_PIPES_CLIENT` picks the Pipes client where Dagster runs: the container clients load
/// (dagster-docker's and dagster-k8s's own), and a wrong setting fails when Dagster loads the
/// code location, saying what to set.
#[test]
fn container_clients_are_chosen_at_load_and_wrong_settings_fail_there() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("phlo.yaml"), "assets:\n  raw.a:\n    type: echo\n").unwrap();
    let out_dir = dir.path().join("dagster");
    assert_eq!(phlo_in(dir.path(), &["export", "dagster", "--out", out_dir.to_str().unwrap()], &[]).code, 0);
    let dagster = python().parent().unwrap().join("dagster");
    let validate = |env: &[(&str, &str)]| {
        let mut cmd = Command::new(&dagster);
        cmd.args(["definitions", "validate", "-f", "definitions.py"]).current_dir(&out_dir);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = cmd.output().unwrap();
        (out.status.success(), String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr))
    };
    for client in ["docker", "k8s"] {
        let (ok, text) = validate(&[
            ("PHLO_PIPES_CLIENT", client),
            ("PHLO_PIPES_IMAGE", "registry.example/shop-phlo:1"),
            ("PHLO_PIPES_FORWARD_ENV", "HOME"),
        ]);
        assert!(ok, "{client}: {text}");
        let (ok, text) = validate(&[("PHLO_PIPES_CLIENT", client)]);
        assert!(!ok && text.contains("set PHLO_PIPES_IMAGE"), "{client}: {text}");
    }
    let (ok, text) = validate(&[("PHLO_PIPES_CLIENT", "podman")]);
    assert!(!ok && text.contains("PHLO_PIPES_CLIENT is 'podman'"), "{text}");
    let (ok, text) = validate(&[
        ("PHLO_PIPES_CLIENT", "docker"),
        ("PHLO_PIPES_IMAGE", "x"),
        ("PHLO_PIPES_FORWARD_ENV", "PHLO_TEST_SURELY_UNSET"),
    ]);
    assert!(!ok && text.contains("PHLO_TEST_SURELY_UNSET"), "{text}");
    assert!(validate(&[]).0, "the subprocess client is the default");
}

/// The protocol the container clients speak — the context in `DAGSTER_PIPES_CONTEXT` itself,
/// messages in the process's output read by dagster-docker's log reader (as dagster-k8s reads
/// a pod's) — works with the real `phlo`: the materialization with its metadata and the check
/// result reach Dagster. (No container runtime here: `phlo` runs as the container would.)
#[test]
fn the_container_protocol_reports_through_dagsters_log_reader() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("data")).unwrap();
    std::fs::write(dir.path().join("data/people.csv"), "id,name\n1,a\n2,b\n").unwrap();
    std::fs::write(
        dir.path().join("phlo.yaml"),
        "assets:\n  raw.people:\n    type: csv\n    path: data/people.csv\n    checks:\n      - {type: not_null, column: id}\n",
    )
    .unwrap();
    let report = dir.path().join("seen.json");
    let run = Command::new(python())
        .arg(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/engines/dagster/container_protocol.py"))
        .arg(env!("CARGO_BIN_EXE_phlo"))
        .arg(dir.path())
        .arg("raw.people")
        .arg(&report)
        .env("PHLO_LOG", "off")
        .output()
        .unwrap();
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let seen: Value = serde_json::from_str(&std::fs::read_to_string(report).unwrap()).unwrap();
    assert_eq!(seen["success"], true, "{seen:#}\n{}", String::from_utf8_lossy(&run.stdout));
    assert_eq!(seen["materialized"][0]["key"], "raw/people");
    assert_eq!(seen["materialized"][0]["metadata"]["row_count"], 2);
    assert_eq!(seen["materialized"][0]["metadata"]["table"], "raw_people");
    assert_eq!(seen["checks"], serde_json::json!([{"name": "not_null_id", "passed": true}]));
}
