//! `phlo export dagster` of a generated 10,000-asset project as a whole process (target
//! ≤ 200 ms), beside `phlo validate` of the same project (the load both pay).

use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};

#[path = "support/process.rs"]
mod process;
use process::run_in;

/// `n` assets: echo sources and SQL-free chains of daily-partitioned echo assets with a
/// check, a group and tags (what the export maps).
fn generated(n: usize) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let mut yaml = String::from("assets:\n");
    for i in 0..n {
        yaml.push_str(&format!(
            "  g{}.a{i}:\n    type: echo\n    group: g{}\n    tags: {{team: t{}}}\n    description: asset {i}\n",
            i % 50,
            i % 50,
            i % 7
        ));
        if i % 2 == 1 {
            yaml.push_str(&format!(
                "    deps: [g{}.a{}]\n    partitions:\n      daily: {{start: 2024-01-01}}\n",
                (i - 1) % 50,
                i - 1
            ));
        }
    }
    std::fs::write(dir.path().join("phlo.yaml"), yaml).expect("write phlo.yaml");
    dir
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("export");
    g.sample_size(10).measurement_time(Duration::from_secs(15));
    let dir = generated(10_000);
    g.bench_function("phlo validate, 10000 assets", |b| b.iter(|| run_in(dir.path(), &["validate"])));
    g.bench_function("phlo export dagster, 10000 assets", |b| {
        b.iter(|| run_in(dir.path(), &["export", "dagster", "--out", "out", "--force"]));
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
