//! `phlo plugins list --json` as a whole process (target ≤ 10 ms median), and
//! `phlo validate` on the quickstart.

use std::path::PathBuf;
use std::process::Command;

use criterion::{Criterion, criterion_group, criterion_main};

fn run(args: &[&str]) {
    let out = Command::new(env!("CARGO_BIN_EXE_phlo"))
        .args(args)
        .current_dir(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples/quickstart"))
        .output()
        .expect("run phlo");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("process");
    g.sample_size(50);
    g.bench_function("phlo plugins list --json", |b| b.iter(|| run(&["plugins", "list", "--json"])));
    g.bench_function("phlo validate (quickstart)", |b| b.iter(|| run(&["validate"])));
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
