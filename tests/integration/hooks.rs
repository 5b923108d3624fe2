//! The hook bus wired from a project: built-in hooks end to end, overrides from phlo.yaml,
//! `phlo hooks list`.

use std::sync::{Arc, Mutex};

use phlo_core::hooks::{AssetEvent, Correlation, Event, EventPayload, RunEvent, Status};
use phlo_core::project::Project;
use phlo_core::project::bus_for_project;
use tracing_subscriber::util::SubscriberInitExt;

use crate::cli::{json, phlo};
use crate::fixture;

#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Buffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn lifecycle() -> Vec<Event> {
    let c = Correlation::run("run-42");
    let a = c.clone().with_asset("raw.orders");
    let end = AssetEvent { status: Some(Status::Succeeded), duration_ms: Some(7), ..AssetEvent::default() };
    vec![
        Event::new(EventPayload::RunStart(RunEvent { assets: 1, ..RunEvent::default() }), c.clone()),
        Event::new(EventPayload::IngestionStart(AssetEvent::default()), a.clone()),
        Event::new(EventPayload::LineageEdges { edges: vec![("vendor.feed".into(), "raw.orders".into())] }, a.clone()),
        Event::new(EventPayload::IngestionEnd(end), a),
        Event::new(
            EventPayload::RunEnd(RunEvent {
                status: Some(Status::Succeeded),
                duration_ms: Some(9),
                summary: [("succeeded".to_string(), 1)].into(),
                ..RunEvent::default()
            }),
            c,
        ),
    ]
}

#[test]
fn console_and_jsonl_hooks_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(fixture("hooks").join("phlo.yaml"), dir.path().join("phlo.yaml")).unwrap();
    let project = Project::load(dir.path(), &phlo::load_options()).unwrap();
    assert!(!project.diagnostics.has_errors(), "{}", project.diagnostics);
    let bus = bus_for_project(&project).unwrap();

    let buffer = Buffer::default();
    let writer = buffer.clone();
    let guard = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .without_time()
        .with_target(false)
        .with_level(false)
        .with_ansi(false)
        .finish()
        .set_default();
    for e in lifecycle() {
        bus.emit_event(e).unwrap();
    }
    drop(guard);

    let console = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
    let lines: Vec<&str> = console.lines().map(str::trim).collect();
    assert_eq!(
        lines,
        [
            "run run-42 started: 1 asset(s)",
            "▶ raw.orders (ingestion)",
            "lineage: vendor.feed → raw.orders",
            "✔ raw.orders in 7 ms",
            "run run-42 succeeded in 9 ms: 1 succeeded",
        ]
    );

    let log = std::fs::read_to_string(dir.path().join("out/events.jsonl")).unwrap();
    let types: Vec<String> = log
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["type"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(types, ["run.start", "ingestion.start", "lineage.edges", "ingestion.end", "run.end"]);
}

#[test]
fn hooks_list_shows_the_effective_order_with_overrides() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(fixture("hooks").join("phlo.yaml"), dir.path().join("phlo.yaml")).unwrap();
    let run = crate::cli::phlo_in(dir.path(), &["hooks", "list", "--json"], &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let rows = json(&run);
    let run_start: Vec<(String, i64, String)> = rows
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["event"] == "run.start")
        .map(|r| {
            (
                r["plugin"].as_str().unwrap().to_string(),
                r["priority"].as_i64().unwrap(),
                r["failure_policy"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    // the run store records first; console's priority (5) and policy (raise) come from
    // phlo.yaml and put it before jsonl
    assert_eq!(
        run_start,
        [
            ("sqlite_runs".into(), -100, "raise".into()),
            ("console".into(), 5, "raise".into()),
            ("jsonl".into(), 10, "raise".into())
        ]
    );
    assert!(!dir.path().join("out").exists(), "listing hooks must not write the event log");

    let run = phlo("ok", &["hooks", "list"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.starts_with("EVENT"), "{}", run.stdout);
}

#[test]
fn a_disabled_hook_is_not_on_the_bus_and_bad_hook_config_is_located() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("phlo.yaml"), "hooks:\n  console:\n    enabled: false\n  jsonl:\n    pth: x\n")
        .unwrap();
    let run = crate::cli::phlo_in(dir.path(), &["validate"], &[]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("phlo.yaml:5:5") && run.stderr.contains("did you mean `path`?"), "{}", run.stderr);

    std::fs::write(dir.path().join("phlo.yaml"), "hooks:\n  console:\n    enabled: false\n").unwrap();
    let run = crate::cli::phlo_in(dir.path(), &["hooks", "list", "--json"], &[]);
    let rows = json(&run);
    assert!(rows.as_array().unwrap().iter().all(|r| r["plugin"] != "console"));
}
