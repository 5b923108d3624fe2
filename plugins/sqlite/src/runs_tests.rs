//! The run store on a real SQLite file: recording from many threads, an empty file, what a
//! batch keeps, and a run that starts again under its id (resume).

use std::sync::Arc;

use phlo_core::execution::RunStore;
use phlo_core::hooks::{AssetEvent, Correlation, Event, EventPayload, RunEvent, Status};

use super::RunHistory;

fn start(run: &Correlation, assets: usize) -> Event {
    Event::new(EventPayload::RunStart(RunEvent { assets, ..RunEvent::default() }), run.clone())
}

/// A run's end as the executor emits it: with the attempt's counts, and how many steps an
/// earlier attempt completed.
fn end_with(run: &Correlation, status: Status, counts: &[(&str, u64)], resumed_done: usize) -> Event {
    let summary = counts.iter().map(|(k, n)| ((*k).to_string(), *n)).collect();
    Event::new(
        EventPayload::RunEnd(RunEvent {
            status: Some(status),
            duration_ms: Some(5),
            summary,
            resumed_done,
            ..RunEvent::default()
        }),
        run.clone(),
    )
}

fn end(run: &Correlation, status: Status) -> Event {
    end_with(run, status, &[], 0)
}

fn step(run: &Correlation, key: &str, status: Option<Status>) -> Event {
    let c = run.clone().with_asset(key);
    match status {
        None => Event::new(EventPayload::TransformStart(AssetEvent::default()), c),
        Some(s) => Event::new(
            EventPayload::TransformEnd(AssetEvent { status: Some(s), duration_ms: Some(1), ..AssetEvent::default() }),
            c,
        ),
    }
}

#[test]
fn events_from_many_threads_are_all_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(RunHistory::new(dir.path().join("runs.db")));
    let run = Correlation::run("r1");
    store.record(&start(&run, 400)).unwrap();
    std::thread::scope(|s| {
        for t in 0..4 {
            let store = Arc::clone(&store);
            let run = run.clone();
            s.spawn(move || {
                for i in 0..100 {
                    let key = format!("a.t{t}_{i}");
                    store.record(&step(&run, &key, None)).unwrap();
                    store.record(&step(&run, &key, Some(Status::Succeeded))).unwrap();
                }
            });
        }
    });
    store.record(&end_with(&run, Status::Succeeded, &[("succeeded", 400)], 0)).unwrap();
    let detail = store.run("r1").unwrap().unwrap();
    assert_eq!(detail.steps.len(), 400);
    assert!(detail.steps.iter().all(|s| s.status == "succeeded" && s.started_at.is_some()));
    assert_eq!(detail.run.summary.get("succeeded"), Some(&400));
    assert_eq!(store.events("r1").unwrap().len(), 802, "every event, once");
}

/// Many threads write into bodies the writer takes while they write (each thread's shared
/// strings start over in each body): every event reads back exactly as it was recorded.
#[test]
fn events_read_back_as_recorded_across_batches_and_threads() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(RunHistory::new(dir.path().join("runs.db")));
    let run = Correlation::run("r2");
    let first = start(&run, 12_000);
    store.record(&first).unwrap();
    let recorded: Vec<Vec<serde_json::Value>> = std::thread::scope(|s| {
        let threads: Vec<_> = (0..3)
            .map(|_| {
                let (store, run) = (Arc::clone(&store), run.clone());
                s.spawn(move || {
                    let mut mine = Vec::new();
                    for i in 0..4_000 {
                        // keys repeat across threads and batches
                        let key = format!("a.k{}", i % 97);
                        for e in [step(&run, &key, None), step(&run, &key, Some(Status::Succeeded))] {
                            store.record(&e).unwrap();
                            mine.push(serde_json::to_value(&e).unwrap());
                        }
                    }
                    mine
                })
            })
            .collect();
        threads.into_iter().map(|t| t.join().unwrap()).collect()
    });
    let last = end_with(&run, Status::Succeeded, &[("succeeded", 12_000)], 0);
    store.record(&last).unwrap();
    let read = store.events("r2").unwrap();
    assert_eq!(read.len(), 24_002);
    assert_eq!(read[0], serde_json::to_value(&first).unwrap());
    assert_eq!(read[24_001], serde_json::to_value(&last).unwrap());
    // each thread's events, in its order
    let mut at = [0usize; 3];
    for e in &read[1..24_001] {
        let t =
            (0..3).find(|&t| recorded[t].get(at[t]) == Some(e)).expect("an event no thread recorded, or out of order");
        at[t] += 1;
    }
    assert_eq!(at, [8_000; 3]);
}

#[test]
fn an_empty_file_becomes_a_run_store() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("runs.db");
    std::fs::write(&path, b"").unwrap();
    let store = RunHistory::new(path);
    assert!(store.runs(None, 10).unwrap().is_empty());
}

#[test]
fn a_run_started_again_keeps_its_story() {
    let dir = tempfile::tempdir().unwrap();
    let store = RunHistory::new(dir.path().join("runs.db"));
    let run = Correlation::run("r1");
    store.record(&start(&run, 2)).unwrap();
    store.record(&step(&run, "a.x", Some(Status::Succeeded))).unwrap();
    store.record(&step(&run, "a.y", Some(Status::Failed))).unwrap();
    store.record(&end_with(&run, Status::Failed, &[("succeeded", 1), ("failed", 1)], 0)).unwrap();
    assert_eq!(store.runs(None, 10).unwrap()[0].summary.get("failed"), Some(&1));
    // the resume: one step left, one done before
    let restart = RunEvent { assets: 1, resumed_done: 1, ..RunEvent::default() };
    store.record(&Event::new(EventPayload::RunStart(restart), run.clone())).unwrap();
    assert_eq!(store.runs(None, 10).unwrap()[0].status, "running");
    store.record(&step(&run, "a.y", Some(Status::Succeeded))).unwrap();
    store.record(&end_with(&run, Status::Succeeded, &[("succeeded", 1)], 1)).unwrap();
    let runs = store.runs(None, 10).unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].status, "succeeded");
    assert_eq!(runs[0].steps, 2, "the run's own count, not the resume's");
    assert_eq!(runs[0].duration_ms, Some(10), "both attempts");
    assert_eq!(runs[0].summary.get("succeeded"), Some(&2));
    assert_eq!(store.events("r1").unwrap().len(), 7, "both attempts' events");
}

#[test]
fn a_running_run_is_interrupted_with_its_running_steps() {
    let dir = tempfile::tempdir().unwrap();
    let store = RunHistory::new(dir.path().join("runs.db"));
    let run = Correlation::run("r1");
    store.record(&start(&run, 2)).unwrap();
    store.record(&step(&run, "a.x", Some(Status::Succeeded))).unwrap();
    store.record(&step(&run, "a.y", None)).unwrap();
    // a live run is left as it is
    assert!(store.interrupt_stale(&|id| id == "r1").unwrap().is_empty());
    assert_eq!(store.interrupt_stale(&|_| false).unwrap(), vec![String::from("r1")]);
    let detail = store.run("r1").unwrap().unwrap();
    assert_eq!(detail.run.status, "interrupted");
    let status: Vec<(&str, &str)> = detail.steps.iter().map(|s| (s.asset_key.as_str(), s.status.as_str())).collect();
    assert_eq!(status, [("a.x", "succeeded"), ("a.y", "interrupted")]);
    assert!(store.interrupt_stale(&|_| false).unwrap().is_empty());
}

/// A store written by the first schema (before data versions) is migrated in place: its runs
/// stay, and a success recorded now keeps the asset's latest materialization with versions.
#[test]
fn a_first_schema_store_is_migrated_and_keeps_its_runs() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("runs.db");
    {
        let c = rusqlite::Connection::open(&path).unwrap();
        c.execute_batch(super::MIGRATIONS[0]).unwrap();
        c.execute_batch(&format!("PRAGMA application_id = {}; PRAGMA user_version = 1;", super::APPLICATION_ID))
            .unwrap();
        c.execute(
            "INSERT INTO runs (run_id, status, started_at) VALUES ('old', 'succeeded', '2026-01-01T00:00:00+00:00')",
            [],
        )
        .unwrap();
    }
    let store = RunHistory::new(path.clone());
    assert_eq!(store.runs(None, 10).unwrap()[0].run_id, "old");
    let run = Correlation::run("new");
    store.record(&start(&run, 1)).unwrap();
    let versions = phlo_core::hooks::StepVersions {
        code: Some(String::from("def:1")),
        data: std::sync::Arc::from("3r-abc"),
        source: None,
        inputs: Default::default(),
    };
    let done = AssetEvent {
        status: Some(Status::Succeeded),
        duration_ms: Some(1),
        versions: Some(Box::new(versions)),
        ..AssetEvent::default()
    };
    store.record(&Event::new(EventPayload::TransformEnd(done), run.clone().with_asset("a.x"))).unwrap();
    store.record(&end(&run, Status::Succeeded)).unwrap();
    let m = store.materializations(None).unwrap();
    let latest = &m["a.x"][&None];
    assert_eq!((latest.run_id.as_str(), latest.data_version.as_deref()), ("new", Some("3r-abc")));
    let version: i64 =
        rusqlite::Connection::open(&path).unwrap().query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap();
    assert_eq!(version, super::SCHEMA_VERSION);
}

/// One batch holds each thread's records one after the other: a step whose end was recorded
/// by one thread and whose start by another may have its end first in the row. The fold
/// orders them by attempt, and `runs events` by time.
#[test]
fn a_step_whose_end_comes_first_in_its_row_is_folded_by_attempt() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("runs.db");
    let store = RunHistory::new(path.clone());
    let run = Correlation::run("r1");
    store.record(&start(&run, 1)).unwrap();
    let (start_a1, end_a1) = (step(&run, "m.x", None), step(&run, "m.x", Some(Status::Failed)));
    let retry = run.clone().with_attempt(2);
    let (start_a2, end_a2) = (step(&retry, "m.x", None), step(&retry, "m.x", Some(Status::Succeeded)));
    // thread B's lane (the retry) written before thread A's (the first attempt)
    let (mut a, mut b, mut body) = (super::log::Lane::new(), super::log::Lane::new(), Vec::new());
    for e in [&start_a2, &end_a2] {
        super::log::encode(e, &mut b, &mut body);
    }
    for e in [&start_a1, &end_a1] {
        super::log::encode(e, &mut a, &mut body);
    }
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute("INSERT INTO events (run_id, count, body) VALUES ('r1', 4, ?1)", [&body]).unwrap();
    }
    store.record(&end(&run, Status::Succeeded)).unwrap();
    let detail = store.run("r1").unwrap().unwrap();
    assert_eq!(detail.steps.len(), 1);
    let s = &detail.steps[0];
    assert_eq!((s.status.as_str(), s.attempts), ("succeeded", 2));
    assert_eq!(s.started_at.as_deref(), Some(start_a2.timestamp.to_rfc3339().as_str()));
    let types: Vec<String> =
        store.events("r1").unwrap().iter().map(|e| e["type"].as_str().unwrap().to_string()).collect();
    let want = ["run.start", "transform.start", "transform.end", "transform.start", "transform.end", "run.end"];
    assert_eq!(types, want);
    let attempts: Vec<u64> =
        store.events("r1").unwrap().iter().map(|e| e["correlation"]["attempt"].as_u64().unwrap()).collect();
    assert_eq!(attempts, [1, 1, 1, 2, 2, 1]);
}

/// A closing store leaves what the WAL holds for the next process that writes, which
/// checkpoints it in the background: nothing is lost either way.
#[test]
fn what_a_closed_store_left_in_the_wal_is_kept_and_checkpointed_by_the_next_writer() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("runs.db");
    let record = |id: &str| {
        let store = RunHistory::new(path.clone());
        let run = Correlation::run(id);
        store.record(&start(&run, 1)).unwrap();
        store.record(&step(&run, "a.x", None)).unwrap();
        store.record(&step(&run, "a.x", Some(Status::Succeeded))).unwrap();
        store.record(&end(&run, Status::Succeeded)).unwrap();
    };
    record("r1");
    let wal = dir.path().join("runs.db-wal");
    assert!(std::fs::metadata(&wal).map_or(0, |m| m.len()) > 0, "closing did not checkpoint: the WAL holds r1");
    // read back through the WAL
    let detail = RunHistory::new(path.clone()).run("r1").unwrap().expect("r1 is kept");
    assert_eq!(detail.steps.len(), 1);

    // the next process that writes checkpoints r1 into the main file
    record("r2");
    let copy = dir.path().join("copy.db");
    std::fs::copy(&path, &copy).unwrap();
    let main_file_only = RunHistory::new(copy);
    let detail = main_file_only.run("r1").unwrap().expect("r1 is in the main file, without the WAL");
    assert_eq!(detail.steps.len(), 1);
}

/// A process that writes without pause outruns the background checkpointer: closing then
/// empties the WAL, so the next process does not read through a large one.
#[test]
fn a_store_closed_after_writing_without_pause_leaves_a_small_wal() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("runs.db");
    let store = RunHistory::new(path.clone());
    for i in 0..3000 {
        // a run's start and end are each committed at once
        let run = Correlation::run(format!("r{i}"));
        store.record(&start(&run, 1)).unwrap();
        store.record(&step(&run, "a.x", None)).unwrap();
        store.record(&step(&run, "a.x", Some(Status::Succeeded))).unwrap();
        store.record(&end(&run, Status::Succeeded)).unwrap();
    }
    drop(store);
    let c = rusqlite::Connection::open(&path).unwrap();
    let (log, checkpointed): (i64, i64) =
        c.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| Ok((r.get(1)?, r.get(2)?))).unwrap();
    assert!(log <= i64::from(super::record::CHECKPOINT_PAGES), "{log} pages left in the WAL");
    assert!(checkpointed <= log);
    assert_eq!(RunHistory::new(path).runs(None, 5000).unwrap().len(), 3000);
}
