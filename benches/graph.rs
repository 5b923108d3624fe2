//! The asset graph on a layered DAG where each asset depends on up to 3 assets of the
//! previous layer. Targets: 10,000 assets build + validate + topological order ≤ 10 ms;
//! 1,000,000 ≤ 1.5 s; `+key` on a sink of the 1,000,000 graph ≤ 200 ms.
//! (Peak memory of the 1,000,000 build: `cargo bench --bench graph_memory`.)

use std::hint::black_box;
use std::time::Duration;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use phlo_core::graph::{AssetGraph, AssetNode, Selection};

#[path = "support/layered.rs"]
mod layered;

fn build_checked(nodes: Vec<AssetNode>) -> AssetGraph {
    let (g, errors) = AssetGraph::build(nodes);
    assert!(errors.is_empty());
    assert!(g.topological_order().is_some());
    g
}

fn bench(c: &mut Criterion) {
    let small = layered::dag(100, 100);
    c.bench_function("graph build+validate+toposort 10k", |b| {
        b.iter_batched(|| small.clone(), |n| black_box(build_checked(n)), BatchSize::LargeInput);
    });

    let big = layered::dag(1000, 1000);
    let mut g = c.benchmark_group("1M");
    g.sample_size(10).measurement_time(Duration::from_secs(30));
    g.bench_function("graph build+validate+toposort 1M", |b| {
        b.iter_batched(|| big.clone(), |n| black_box(build_checked(n)), BatchSize::PerIteration);
    });
    let graph = build_checked(big);
    let sink = layered::key(999, 500);
    let sel = Selection::parse(&format!("+{sink}")).unwrap();
    g.bench_function("+key on a sink of 1M", |b| {
        b.iter(|| {
            let v = sel.select(&graph).unwrap();
            assert!(v.len() > 1000);
            v
        });
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
