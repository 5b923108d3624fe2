//! `phlo plugins list --json` as a whole process (target ≤ 10 ms median), `phlo validate` on
//! the quickstart, and `phlo validate` on generated projects of 10,000 and 100,000 declarative
//! assets (target: 100,000 in ≤ 2 s; loading must scale linearly), `phlo runs list` over
//! 10,000 stored runs (target ≤ 50 ms), and `phlo status` on the quickstart after a run
//! (target ≤ 20 ms).

use std::path::PathBuf;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};

#[path = "support/process.rs"]
mod process;
use process::run_in;

/// A project of `n` assets: a third CSV loads, a third SQL models reading the load before
/// them, a third exports of the model before them.
fn generated(n: usize) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let mut yaml = String::from("assets:\n");
    for i in 0..n {
        let text = match i % 3 {
            0 => format!("  raw.t{i}:\n    type: csv\n    path: data/t{i}.csv\n"),
            1 => format!(
                "  staging.t{i}:\n    type: sql\n    sql: SELECT id, amount * 2 AS double FROM raw_t{}\n",
                i - 1
            ),
            _ => format!("  publish.t{i}:\n    type: export\n    table: staging_t{}\n    path: out/t{i}.csv\n", i - 1),
        };
        yaml.push_str(&text);
    }
    std::fs::write(dir.path().join("phlo.yaml"), yaml).expect("write phlo.yaml");
    dir
}

/// A project whose run store holds `n` finished runs of 10 steps each.
fn with_history(n: usize) -> tempfile::TempDir {
    use phlo_core::execution::RunStore;
    use phlo_core::hooks::{AssetEvent, Correlation, Event, EventPayload, RunEvent, Status};
    let dir = tempfile::tempdir().expect("a temporary directory");
    std::fs::write(dir.path().join("phlo.yaml"), "assets:\n  ops.a:\n    type: command\n    program: 'true'\n")
        .expect("write phlo.yaml");
    let store = phlo_plugin_sqlite::runs::RunHistory::new(dir.path().join(".phlo/runs.db"));
    for i in 0..n {
        let run = Correlation::run(format!("20261201T{i:06}-bench"));
        let event = |p: EventPayload, c: &Correlation| Event::new(p, c.clone());
        store.record(&event(EventPayload::RunStart(RunEvent { assets: 10, ..RunEvent::default() }), &run)).unwrap();
        for s in 0..10 {
            let step = run.clone().with_asset(format!("ops.a{s}").as_str());
            let end = AssetEvent { status: Some(Status::Succeeded), duration_ms: Some(1), ..AssetEvent::default() };
            store.record(&event(EventPayload::TransformStart(AssetEvent::default()), &step)).unwrap();
            store.record(&event(EventPayload::TransformEnd(end), &step)).unwrap();
        }
        let end =
            RunEvent { assets: 10, status: Some(Status::Succeeded), duration_ms: Some(12), ..RunEvent::default() };
        store.record(&event(EventPayload::RunEnd(end), &run)).unwrap();
    }
    dir
}

/// Copies a project (its files, not its `.phlo/`).
fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    for entry in std::fs::read_dir(from).expect("read the project") {
        let entry = entry.expect("an entry");
        let name = entry.file_name();
        if name == ".phlo" {
            continue;
        }
        let target = to.join(&name);
        if entry.file_type().expect("a file type").is_dir() {
            std::fs::create_dir_all(&target).expect("create a directory");
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).expect("copy a file");
        }
    }
}

fn bench(c: &mut Criterion) {
    let quickstart = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples/quickstart");
    let mut g = c.benchmark_group("process");
    g.sample_size(50);
    g.bench_function("phlo plugins list --json", |b| b.iter(|| run_in(&quickstart, &["plugins", "list", "--json"])));
    g.bench_function("phlo validate (quickstart)", |b| b.iter(|| run_in(&quickstart, &["validate"])));
    g.finish();

    // the quickstart after one run: status compares every asset, observing its CSV files
    let materialized = tempfile::tempdir().expect("a temporary directory");
    copy_dir(&quickstart, materialized.path());
    run_in(materialized.path(), &["run"]);
    let mut g = c.benchmark_group("status");
    g.sample_size(50);
    g.bench_function("phlo status (quickstart, materialized)", |b| b.iter(|| run_in(materialized.path(), &["status"])));
    g.finish();

    let history = with_history(10_000);
    let mut g = c.benchmark_group("runs");
    g.sample_size(30);
    g.bench_function("phlo runs list, 10000 stored runs", |b| b.iter(|| run_in(history.path(), &["runs", "list"])));
    g.finish();

    let mut g = c.benchmark_group("load");
    g.sample_size(10).measurement_time(Duration::from_secs(20));
    for n in [10_000, 100_000] {
        let dir = generated(n);
        g.bench_function(format!("phlo validate, {n} declarative assets"), |b| {
            b.iter(|| run_in(dir.path(), &["validate"]));
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
