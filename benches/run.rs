//! The local adapter. Targets: 100,000 no-op assets in a layered DAG, concurrency 8, one
//! counting synchronous hook: ≤ 300 ms in total (≤ 3 µs per asset, events included);
//! 400 independent assets that each await a 20 ms sleep, concurrency 40: ≤ 1.25 × 0.2 s.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};

/// The allocator the `phlo` binary runs with.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
use phlo_core::execution::{CancelToken, RunRequest, RunResources, RunStatus, RunStore};
use phlo_core::graph::{AssetGraph, AssetNode};
use phlo_core::hooks::{Event, FailurePolicy, HookBus, HookRegistration};
use phlo_core::plugin::OrchestratorAdapter;
use phlo_core::spec::{AssetSpec, MaterializeResult, RunContext};

#[path = "support/layered.rs"]
mod layered;

fn request(graph: &Arc<AssetGraph>, concurrency: usize, counter: &Arc<AtomicU64>) -> RunRequest {
    let c = Arc::clone(counter);
    let mut bus = HookBus::builder();
    bus.register(HookRegistration::new("bench", "count", move |_: &Event| {
        c.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }))
    .unwrap();
    RunRequest {
        run_id: "bench".into(),
        graph: Arc::clone(graph),
        selected: (0..graph.len() as u32).collect(),
        selection: None,
        partitions: None,
        concurrency,
        tags: BTreeMap::new(),
        bus: Arc::new(bus.freeze(None).unwrap()),
        resources: Arc::new(RunResources::default()),
        cancel: CancelToken::new(),
        seed: 1,
        now: chrono::Utc::now(),
        attempt: None,
        done: Default::default(),
        partition_keys: Default::default(),
        versions: None,
    }
}

fn recorded_request(
    graph: &Arc<AssetGraph>,
    concurrency: usize,
    counter: &Arc<AtomicU64>,
    store: Arc<dyn RunStore>,
) -> RunRequest {
    let c = Arc::clone(counter);
    let mut bus = HookBus::builder();
    bus.register(
        HookRegistration::new("sqlite_runs", "record_run", move |e: &Event| store.record(e).map_err(Into::into))
            .priority(phlo_core::project::RUN_STORE_PRIORITY)
            .policy(FailurePolicy::Raise),
    )
    .unwrap();
    bus.register(HookRegistration::new("bench", "count", move |_: &Event| {
        c.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }))
    .unwrap();
    let mut req = request(graph, concurrency, counter);
    req.bus = Arc::new(bus.freeze(None).unwrap());
    // a recorded run tracks data versions, as `phlo run` does with a run store
    req.versions = Some(Arc::new(phlo_core::execution::Versions::new(Default::default(), false, graph.len())));
    req
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let adapter = phlo_adapter_local::LocalAdapter;
    let counter = Arc::new(AtomicU64::new(0));

    let nodes: Vec<AssetNode> = layered::dag(100, 1000)
        .into_iter()
        .map(|mut n| {
            n.spec = n.spec.with_run(|_ctx: RunContext| async { Ok(MaterializeResult::new()) });
            n
        })
        .collect();
    let (graph, errors) = AssetGraph::build(nodes);
    assert!(errors.is_empty());
    let graph = Arc::new(graph);
    let mut g = c.benchmark_group("run");
    g.sample_size(10).measurement_time(Duration::from_secs(30));
    g.bench_function("100k no-op assets, concurrency 8, one counting hook", |b| {
        b.iter_batched(
            || request(&graph, 8, &counter),
            |req| {
                let report = rt.block_on(adapter.execute(req));
                assert_eq!(report.status, RunStatus::Succeeded);
                assert_eq!(report.assets.len(), 100_000);
                report
            },
            BatchSize::PerIteration,
        );
    });

    // the same run recorded in the run store (a fresh `.phlo/runs.db` per run): every event
    // written by the synchronous recording hook, committed at every step boundary
    g.bench_function("100k no-op assets, concurrency 8, recorded in the run store (sqlite_runs)", |b| {
        b.iter_batched(
            || {
                let dir = tempfile::tempdir().unwrap();
                let store: Arc<dyn RunStore> =
                    Arc::new(phlo_plugin_sqlite::runs::RunHistory::new(dir.path().join("runs.db")));
                (recorded_request(&graph, 8, &counter, store), dir)
            },
            |(req, dir)| {
                let report = rt.block_on(adapter.execute(req));
                assert_eq!(report.status, RunStatus::Succeeded);
                (report, dir)
            },
            BatchSize::PerIteration,
        );
    });

    // the part of the recorded run's cost that is not the store: data versions tracked
    g.bench_function("100k no-op assets, concurrency 8, data versions tracked, not recorded", |b| {
        b.iter_batched(
            || {
                let mut req = request(&graph, 8, &counter);
                req.versions =
                    Some(Arc::new(phlo_core::execution::Versions::new(Default::default(), false, graph.len())));
                req
            },
            |req| rt.block_on(adapter.execute(req)),
            BatchSize::PerIteration,
        );
    });

    // what the recorded run leaves for later: the first command that reads its steps folds
    // its event log into steps and materializations (`phlo runs show`, `phlo status`)
    g.bench_function("first read of a recorded 100k run (folds its event log)", |b| {
        b.iter_batched(
            || {
                let dir = tempfile::tempdir().unwrap();
                let store: Arc<dyn RunStore> =
                    Arc::new(phlo_plugin_sqlite::runs::RunHistory::new(dir.path().join("runs.db")));
                let report = rt.block_on(adapter.execute(recorded_request(&graph, 8, &counter, Arc::clone(&store))));
                assert_eq!(report.status, RunStatus::Succeeded);
                (store, dir)
            },
            |(store, dir)| {
                let detail = store.run("bench").unwrap().unwrap();
                assert_eq!(detail.steps.len(), 100_000);
                (store, dir)
            },
            BatchSize::PerIteration,
        );
    });

    let sleepers: Vec<AssetNode> = (0..400)
        .map(|i| {
            let spec = AssetSpec::new(format!("s{i:03}")).with_run(|_ctx: RunContext| async {
                tokio::time::sleep(Duration::from_millis(20)).await;
                Ok(MaterializeResult::new())
            });
            AssetNode::new(spec, "bench")
        })
        .collect();
    let (sleep_graph, _) = AssetGraph::build(sleepers);
    let sleep_graph = Arc::new(sleep_graph);
    g.bench_function("400 × 20 ms sleeps, concurrency 40 (ideal 200 ms)", |b| {
        b.iter_batched(
            || request(&sleep_graph, 40, &counter),
            |req| rt.block_on(adapter.execute(req)),
            BatchSize::PerIteration,
        );
    });
    g.finish();
    assert!(counter.load(Ordering::Relaxed) > 0);
}

criterion_group!(benches, bench);
criterion_main!(benches);
