//! SQL models computing side by side: 8 independent models of ~200 ms CPU each at
//! `--concurrency 8` on a 2-core machine (target ≤ 1.3 × the ideal of 8 × 200 ms / 2 cores),
//! as whole `phlo run` processes on a real SQLite warehouse file; and one such model alone,
//! the unit of the ideal.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};

/// A SELECT that keeps one core busy for about 200 ms on the reference machine.
const MODEL: &str =
    "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1300000) SELECT max(i) AS m FROM n";

fn project(dir: &Path, models: usize) {
    let mut yaml = String::from("assets:\n");
    for i in 0..models {
        yaml.push_str(&format!("  marts.m{i}:\n    type: sql\n    sql: \"{MODEL}\"\n"));
    }
    std::fs::write(dir.join("phlo.yaml"), yaml).unwrap();
}

fn run(dir: &Path, concurrency: &str) {
    let out = Command::new(env!("CARGO_BIN_EXE_phlo"))
        .args(["run", "--json", "--concurrency", concurrency])
        .env("PHLO_LOG", "off")
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

fn bench(c: &mut Criterion) {
    let one = tempfile::tempdir().unwrap();
    project(one.path(), 1);
    let eight = tempfile::tempdir().unwrap();
    project(eight.path(), 8);
    let mut g = c.benchmark_group("models");
    g.sample_size(10).measurement_time(Duration::from_secs(20));
    g.bench_function("1 model (the unit)", |b| b.iter(|| run(one.path(), "1")));
    g.bench_function("8 independent models, concurrency 8", |b| b.iter(|| run(eight.path(), "8")));
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
