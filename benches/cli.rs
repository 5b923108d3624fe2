//! `phlo plugins list --json` as a whole process (target ≤ 10 ms median), `phlo validate` on
//! the quickstart, and `phlo validate` on generated projects of 10,000 and 100,000 declarative
//! assets (target: 100,000 in ≤ 2 s; loading must scale linearly).

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

fn bench(c: &mut Criterion) {
    let quickstart = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples/quickstart");
    let mut g = c.benchmark_group("process");
    g.sample_size(50);
    g.bench_function("phlo plugins list --json", |b| b.iter(|| run_in(&quickstart, &["plugins", "list", "--json"])));
    g.bench_function("phlo validate (quickstart)", |b| b.iter(|| run_in(&quickstart, &["validate"])));
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
