use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use phlo_core::execution::{
    AssetStatus, CancelToken, PartitionRequest, RunReport, RunRequest, RunResources, RunStatus,
};
use phlo_core::graph::{AssetGraph, AssetNode};
use phlo_core::hooks::testkit::RecordingHook;
use phlo_core::hooks::{EventPayload, EventType, FailurePolicy, HookBus, HookRegistration};
use phlo_core::spec::{
    AssetKind, AssetSpec, Backoff, CheckFn, CheckRun, CheckSpec, Finding, MaterializeResult, PartitionSpec,
    RetryPolicy, RunContext, RunError, Severity, TimePartitions,
};

use crate::executor::execute;

fn ok_asset(key: &str, deps: &[&str]) -> AssetSpec {
    let mut s =
        AssetSpec::new(key).with_run(|_ctx: RunContext| async { Ok(MaterializeResult::new().with_row_count(1)) });
    for d in deps {
        s = s.with_dep(*d);
    }
    s
}

fn failing(key: &str, deps: &[&str]) -> AssetSpec {
    let mut s = AssetSpec::new(key).with_run(|_ctx: RunContext| async { Err(RunError::permanent("boom")) });
    for d in deps {
        s = s.with_dep(*d);
    }
    s
}

struct Setup {
    specs: Vec<AssetSpec>,
    concurrency: usize,
    partitions: Option<PartitionRequest>,
    hooks: Vec<HookRegistration>,
    seed: u64,
    cancel: CancelToken,
}

impl Setup {
    fn new(specs: Vec<AssetSpec>) -> Self {
        Self { specs, concurrency: 4, partitions: None, hooks: Vec::new(), seed: 7, cancel: CancelToken::new() }
    }

    async fn run(self) -> (RunReport, Arc<RecordingHook>) {
        let (graph, errors) = AssetGraph::build(self.specs.into_iter().map(|s| AssetNode::new(s, "test")).collect());
        assert!(errors.is_empty(), "{errors:?}");
        let recorder = RecordingHook::new();
        let mut bus = HookBus::builder();
        bus.register(recorder.registration("test", "recorder").priority(1_000)).unwrap();
        for h in self.hooks {
            bus.register(h).unwrap();
        }
        let req = RunRequest {
            run_id: "run-1".into(),
            selected: (0..graph.len() as u32).collect(),
            graph: Arc::new(graph),
            selection: None,
            partitions: self.partitions,
            concurrency: self.concurrency,
            tags: BTreeMap::new(),
            bus: Arc::new(bus.freeze(None).unwrap()),
            resources: Arc::new(RunResources::default()),
            cancel: self.cancel,
            seed: self.seed,
            now: chrono::Utc::now(),
            attempt: None,
            done: Default::default(),
            partition_keys: Default::default(),
            versions: None,
        };
        (execute(req).await, recorder)
    }
}

fn status_of(r: &RunReport, key: &str) -> AssetStatus {
    r.assets.iter().find(|a| a.key == key).unwrap_or_else(|| panic!("no outcome for {key}")).status
}

#[tokio::test]
async fn the_exact_event_order_of_a_small_run() {
    let mut s = Setup::new(vec![
        ok_asset("raw.orders", &[]).with_kind(AssetKind::Ingestion),
        ok_asset("staging.orders", &["raw.orders"]),
        ok_asset("publish.report", &["staging.orders"]).with_kind(AssetKind::Publish),
    ]);
    s.concurrency = 1;
    let (report, rec) = s.run().await;
    assert_eq!(report.status, RunStatus::Succeeded);
    assert_eq!(
        rec.lines(),
        [
            "run.start",
            "ingestion.start raw.orders",
            "ingestion.end raw.orders",
            "transform.start staging.orders",
            "lineage.edges staging.orders",
            "transform.end staging.orders",
            "publish.start publish.report",
            "lineage.edges publish.report",
            "publish.end publish.report",
            "run.end",
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_diamond_and_a_wide_graph_succeed() {
    let mut specs = vec![ok_asset("a", &[]), ok_asset("b", &["a"]), ok_asset("c", &["a"]), ok_asset("d", &["b", "c"])];
    specs.extend((0..50).map(|i| ok_asset(&format!("w{i:02}"), &["a"])));
    let (report, rec) = Setup::new(specs).run().await;
    assert_eq!(report.status, RunStatus::Succeeded);
    assert_eq!(report.assets.len(), 54);
    let lines = rec.lines();
    let pos = |l: &str| lines.iter().position(|x| x == l).unwrap();
    assert!(pos("transform.end b") < pos("transform.start d") && pos("transform.end c") < pos("transform.start d"));
}

#[tokio::test]
async fn a_failure_skips_its_downstream_naming_the_upstream() {
    let (report, rec) =
        Setup::new(vec![failing("a", &[]), ok_asset("b", &["a"]), ok_asset("c", &["b"]), ok_asset("other", &[])])
            .run()
            .await;
    assert_eq!(report.status, RunStatus::Failed);
    assert!(report.has_failures());
    assert_eq!(
        (status_of(&report, "a"), status_of(&report, "b"), status_of(&report, "c"), status_of(&report, "other")),
        (AssetStatus::Failed, AssetStatus::Skipped, AssetStatus::Skipped, AssetStatus::Succeeded)
    );
    let skipped: Vec<_> = rec
        .events()
        .into_iter()
        .filter_map(|e| match e.payload {
            EventPayload::AssetSkipped { failed_upstream, .. } => {
                Some((e.correlation.asset_key.unwrap().to_string(), failed_upstream.unwrap().to_string()))
            }
            _ => None,
        })
        .collect();
    assert_eq!(skipped, [("b".to_string(), "a".to_string()), ("c".to_string(), "a".to_string())]);
    assert_eq!(report.assets.iter().find(|a| a.key == "a").unwrap().error.as_deref(), Some("boom"));
}

/// Fails `failures` times, then succeeds; records the (virtual) time of every attempt.
fn flaky(key: &str, failures: u32, times: Arc<Mutex<Vec<(u32, tokio::time::Instant)>>>) -> AssetSpec {
    let calls = Arc::new(AtomicU32::new(0));
    AssetSpec::new(key).with_run(move |ctx: RunContext| {
        let calls = Arc::clone(&calls);
        let times = Arc::clone(&times);
        async move {
            times.lock().unwrap().push((ctx.attempt, tokio::time::Instant::now()));
            if calls.fetch_add(1, Ordering::SeqCst) < failures {
                Err(RunError::new("flaky"))
            } else {
                Ok(MaterializeResult::new())
            }
        }
    })
}

async fn retry_gaps(seed: u64, jitter: f64) -> (Vec<u32>, Vec<Duration>, Vec<u32>) {
    let times = Arc::new(Mutex::new(Vec::new()));
    let policy =
        RetryPolicy::new(3).with_delay(Duration::from_secs(1)).with_backoff(Backoff::Exponential).with_jitter(jitter);
    let mut s = Setup::new(vec![flaky("f", 2, Arc::clone(&times)).with_retry(policy)]);
    s.seed = seed;
    let (report, rec) = s.run().await;
    assert_eq!(report.status, RunStatus::Succeeded);
    assert_eq!(report.assets[0].attempts, 3);
    let t = times.lock().unwrap().clone();
    let attempts: Vec<u32> = t.iter().map(|(a, _)| *a).collect();
    let gaps: Vec<Duration> = t.windows(2).map(|w| w[1].1 - w[0].1).collect();
    let start_attempts: Vec<u32> = rec
        .events()
        .iter()
        .filter(|e| e.event_type == EventType::TransformStart)
        .map(|e| e.correlation.attempt)
        .collect();
    (attempts, gaps, start_attempts)
}

#[tokio::test(start_paused = true)]
async fn retries_carry_attempt_numbers_and_delays_are_reproducible() {
    let (attempts, gaps, starts) = retry_gaps(7, 0.0).await;
    assert_eq!(attempts, [1, 2, 3]);
    assert_eq!(starts, [1, 2, 3]);
    assert_eq!(gaps, [Duration::from_secs(1), Duration::from_secs(2)]);
    let a = retry_gaps(42, 0.5).await.1;
    let b = retry_gaps(42, 0.5).await.1;
    let c = retry_gaps(43, 0.5).await.1;
    assert_eq!(a, b, "the same seed gives the same delays");
    assert_ne!(a, c);
    assert!(a.iter().zip([1.0, 2.0]).all(|(g, base)| (g.as_secs_f64() - base).abs() <= base * 0.5 + 1e-3));
}

#[tokio::test]
async fn a_permanent_error_is_not_retried() {
    let (report, _) = Setup::new(vec![failing("a", &[]).with_retry(RetryPolicy::new(5))]).run().await;
    assert_eq!(report.assets[0].attempts, 1);
}

#[tokio::test(start_paused = true)]
async fn a_timeout_stops_the_attempt_and_says_when_the_work_would_not_stop() {
    // work that watches its attempt's token stops at the timeout
    let stops = AssetSpec::new("stops")
        .with_run(|ctx: RunContext| async move {
            tokio::select! {
                () = tokio::time::sleep(Duration::from_secs(10)) => Ok(MaterializeResult::new()),
                () = ctx.cancel.cancelled() => Err(RunError::new("stopped")),
            }
        })
        .with_timeout(Duration::from_millis(100));
    // work that ignores it is abandoned after the grace period, and the report says so
    let deaf = AssetSpec::new("deaf")
        .with_run(|_ctx: RunContext| async {
            tokio::time::sleep(Duration::from_secs(10)).await;
            Ok(MaterializeResult::new())
        })
        .with_timeout(Duration::from_millis(100));
    let (report, _) = Setup::new(vec![stops, deaf]).run().await;
    let error = |k: &str| report.assets.iter().find(|a| a.key == k).unwrap().error.clone().unwrap();
    assert_eq!(report.assets.iter().filter(|a| a.status == AssetStatus::Failed).count(), 2);
    assert_eq!(error("stops"), "timed out after 100 ms");
    assert!(error("deaf").contains("did not stop within 2.0 s"), "{}", error("deaf"));
}

#[tokio::test(start_paused = true)]
async fn a_retry_never_overlaps_the_attempt_that_timed_out() {
    let running = Arc::new(AtomicUsize::new(0));
    let overlapped = Arc::new(AtomicUsize::new(0));
    let (r, o) = (Arc::clone(&running), Arc::clone(&overlapped));
    let slow = AssetSpec::new("slow")
        .with_run(move |ctx: RunContext| {
            let (r, o) = (Arc::clone(&r), Arc::clone(&o));
            async move {
                if r.fetch_add(1, Ordering::SeqCst) > 0 {
                    o.fetch_add(1, Ordering::SeqCst);
                }
                // takes a while to notice the stop, like a statement between checks
                ctx.cancel.cancelled().await;
                tokio::time::sleep(Duration::from_millis(300)).await;
                r.fetch_sub(1, Ordering::SeqCst);
                Err::<MaterializeResult, _>(RunError::new("stopped"))
            }
        })
        .with_timeout(Duration::from_millis(100))
        .with_retry(RetryPolicy::new(2).with_delay(Duration::ZERO));
    let (report, _) = Setup::new(vec![slow]).run().await;
    assert_eq!(report.assets[0].attempts, 3);
    assert_eq!(overlapped.load(Ordering::SeqCst), 0, "an attempt started while the previous one still ran");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancellation_stops_new_work_and_tells_running_assets() {
    let cancel = CancelToken::new();
    let c = cancel.clone();
    let waiter = AssetSpec::new("a").with_run(move |ctx: RunContext| {
        let c = c.clone();
        async move {
            c.cancel(); // as Ctrl-C would
            ctx.cancel.cancelled().await;
            Err(RunError::new("stopped on request"))
        }
    });
    let mut s = Setup::new(vec![waiter, ok_asset("b", &["a"]), ok_asset("c", &["b"])]);
    s.cancel = cancel;
    s.concurrency = 1;
    let (report, rec) = s.run().await;
    assert_eq!(report.status, RunStatus::Cancelled);
    assert_eq!(status_of(&report, "a"), AssetStatus::Cancelled);
    assert_eq!(status_of(&report, "b"), AssetStatus::Cancelled);
    assert!(!rec.lines().iter().any(|l| l.starts_with("transform.start b")));
    assert_eq!(rec.types().last(), Some(&EventType::RunEnd));
}

/// A built check that always finds 3 violations out of 10.
struct Fails;
impl CheckRun for Fails {
    fn evaluate(&self, _: &RunContext) -> Result<Finding, String> {
        Ok(Finding::new(3, 10))
    }
}

/// A check of kind `fails`, built.
fn failing_check(name: &str) -> CheckSpec {
    let mut c = CheckSpec::new(name, "fails");
    c.run = Some(CheckFn(Arc::new(Fails)));
    c
}

#[tokio::test]
async fn blocking_error_checks_gate_downstream_and_warn_checks_do_not() {
    let mut warn = failing_check("soft");
    warn.severity = Severity::Warn;
    warn.blocking = false;
    let hard = failing_check("hard");
    let s = Setup::new(vec![
        ok_asset("warned", &[]).with_check(warn),
        ok_asset("after_warned", &["warned"]),
        ok_asset("blocked", &[]).with_check(hard),
        ok_asset("after_blocked", &["blocked"]),
        ok_asset("unknown_kind", &[]).with_check(CheckSpec::new("mystery", "no_such_kind")),
    ]);
    let (report, rec) = s.run().await;
    assert_eq!(status_of(&report, "after_warned"), AssetStatus::Succeeded);
    assert_eq!(status_of(&report, "blocked"), AssetStatus::Succeeded);
    assert_eq!(status_of(&report, "after_blocked"), AssetStatus::Skipped);
    assert_eq!(report.status, RunStatus::Failed);
    let outcomes: BTreeMap<String, String> =
        report.checks.iter().map(|c| (c.name.clone(), c.outcome.clone())).collect();
    assert_eq!(outcomes["mystery"], "could_not_run");
    assert_eq!(outcomes["soft"], "failed");
    assert!(rec.lines().iter().any(|l| l == "quality.result blocked"));
}

#[tokio::test]
async fn a_partition_range_runs_one_node_per_partition() {
    let daily = PartitionSpec::Time(
        TimePartitions::new(phlo_core::spec::Granularity::Daily, "2024-01-01", None, None).unwrap(),
    );
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s2 = Arc::clone(&seen);
    let part = AssetSpec::new("raw.events").with_partitions(daily.clone()).with_run(move |ctx: RunContext| {
        s2.lock().unwrap().push(ctx.partition.unwrap());
        async { Ok(MaterializeResult::new()) }
    });
    let down = ok_asset("staging.events", &["raw.events"]).with_partitions(daily);
    let mut s = Setup::new(vec![part, down, ok_asset("unpartitioned", &[])]);
    s.partitions = Some(PartitionRequest::Range("2024-01-02".into(), "2024-01-04".into()));
    s.concurrency = 1;
    let (report, rec) = s.run().await;
    assert_eq!(report.status, RunStatus::Succeeded);
    assert_eq!(*seen.lock().unwrap(), ["2024-01-02", "2024-01-03", "2024-01-04"]);
    assert_eq!(report.assets.len(), 7);
    assert!(rec.lines().contains(&"transform.end staging.events [2024-01-03]".to_string()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrency_is_never_exceeded() {
    let (now, max) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let specs: Vec<AssetSpec> = (0..24).map(|i| counted(&format!("a{i:02}"), &[], &now, &max)).collect();
    let mut s = Setup::new(specs);
    s.concurrency = 3;
    let (report, _) = s.run().await;
    assert_eq!(report.status, RunStatus::Succeeded);
    assert_eq!(max.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn a_raise_hook_failure_fails_the_step_it_belongs_to() {
    let hook = HookRegistration::new("guard", "no_b", |e: &phlo_core::hooks::Event| {
        if e.correlation.asset_key.as_deref() == Some("b") { Err("b is frozen".into()) } else { Ok(()) }
    })
    .events([EventType::TransformStart])
    .policy(FailurePolicy::Raise);
    let mut s = Setup::new(vec![ok_asset("a", &[]), ok_asset("b", &["a"]), ok_asset("c", &["b"])]);
    s.hooks.push(hook);
    let (report, _) = s.run().await;
    assert_eq!(status_of(&report, "b"), AssetStatus::Failed);
    assert!(report.assets.iter().find(|a| a.key == "b").unwrap().error.as_deref().unwrap().contains("b is frozen"));
    assert_eq!(status_of(&report, "c"), AssetStatus::Skipped);
}

#[tokio::test]
async fn an_asset_without_a_run_function_fails_with_the_fix() {
    let (report, _) = Setup::new(vec![AssetSpec::new("bare")]).run().await;
    assert!(report.assets[0].error.as_deref().unwrap().contains("declare it `external: true`"));
}

#[tokio::test]
async fn a_panicking_run_function_fails_its_asset_only() {
    let boom = AssetSpec::new("boom").with_run(|_ctx: RunContext| async { panic!("division by zero") });
    let (report, _) = Setup::new(vec![boom, ok_asset("after", &["boom"]), ok_asset("other", &[])]).run().await;
    let b = report.assets.iter().find(|a| a.key == "boom").unwrap();
    assert_eq!(
        (b.status, b.error.as_deref()),
        (AssetStatus::Failed, Some("the run function panicked: division by zero"))
    );
    assert_eq!(status_of(&report, "after"), AssetStatus::Skipped);
    assert_eq!(status_of(&report, "other"), AssetStatus::Succeeded);
}

/// What a node of a random DAG does.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Behaviour {
    Ok,
    Fails,
    Panics,
    /// Sleeps past its timeout, watching its stop token or not.
    TimesOut {
        cooperative: bool,
    },
    /// Succeeds, but a blocking `error` check finds violations.
    BlockingCheckFails,
    /// Succeeds, but its blocking check panics (so it could not run, which blocks too).
    CheckPanics,
    /// Succeeds, but a hook panics on its end event under the given policy.
    HookPanics(FailurePolicy),
}

struct PanickingCheck;
impl CheckRun for PanickingCheck {
    fn evaluate(&self, _: &RunContext) -> Result<Finding, String> {
        panic!("check exploded")
    }
}

fn behaviour() -> impl proptest::strategy::Strategy<Value = Behaviour> {
    use proptest::prelude::*;
    prop_oneof![
        4 => Just(Behaviour::Ok),
        1 => Just(Behaviour::Fails),
        1 => Just(Behaviour::Panics),
        1 => any::<bool>().prop_map(|cooperative| Behaviour::TimesOut { cooperative }),
        1 => Just(Behaviour::BlockingCheckFails),
        1 => Just(Behaviour::CheckPanics),
        1 => prop_oneof![Just(FailurePolicy::Ignore), Just(FailurePolicy::Log), Just(FailurePolicy::Raise)]
            .prop_map(Behaviour::HookPanics),
    ]
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]

    /// Random DAGs with random failures, panics, timeouts, failing blocking checks and
    /// panicking hooks: every node is in the report exactly once, and its status is what
    /// the rules say — skips propagate exactly, no further.
    #[test]
    fn every_step_is_accounted_for_and_skips_propagate_exactly(
        behaviours in proptest::collection::vec(behaviour(), 1..10),
        dep_bits in proptest::collection::vec(proptest::prelude::any::<u16>(), 10),
        concurrency in 1usize..4,
    ) {
        let n = behaviours.len();
        let key = |i: usize| format!("n{i}");
        let mut specs = Vec::new();
        let mut hooks = Vec::new();
        let mut deps_of: Vec<Vec<usize>> = Vec::new();
        for (i, b) in behaviours.iter().enumerate() {
            let deps: Vec<usize> = (0..i).filter(|d| dep_bits[i] & (1 << d) != 0).collect();
            let mut s = match b {
                Behaviour::Fails => AssetSpec::new(key(i)).with_run(|_: RunContext| async { Err(RunError::permanent("boom")) }),
                Behaviour::Panics => AssetSpec::new(key(i)).with_run(|_: RunContext| async {
                    panic!("asset exploded");
                    #[allow(unreachable_code)]
                    Ok(MaterializeResult::new())
                }),
                Behaviour::TimesOut { cooperative } => {
                    let cooperative = *cooperative;
                    AssetSpec::new(key(i))
                        .with_run(move |ctx: RunContext| async move {
                            if cooperative {
                                tokio::select! {
                                    () = tokio::time::sleep(Duration::from_secs(60)) => {}
                                    () = ctx.cancel.cancelled() => return Err(RunError::new("stopped")),
                                }
                            } else {
                                tokio::time::sleep(Duration::from_secs(60)).await;
                            }
                            Ok(MaterializeResult::new())
                        })
                        .with_timeout(Duration::from_millis(50))
                }
                _ => ok_asset(&key(i), &[]),
            };
            match b {
                Behaviour::BlockingCheckFails => s = s.with_check(failing_check("hard")),
                Behaviour::CheckPanics => {
                    let mut c = CheckSpec::new("wild", "panics");
                    c.run = Some(CheckFn(Arc::new(PanickingCheck)));
                    s = s.with_check(c);
                }
                Behaviour::HookPanics(policy) => hooks.push(
                    HookRegistration::new("test", format!("panics_{i}"), |_: &phlo_core::hooks::Event| -> Result<(), phlo_core::hooks::HookFailure> {
                        panic!("hook exploded")
                    })
                    .events([EventType::TransformEnd])
                    .assets([key(i)])
                    .policy(*policy),
                ),
                _ => {}
            }
            for &d in &deps {
                s = s.with_dep(key(d));
            }
            deps_of.push(deps);
            specs.push(s);
        }
        let mut setup = Setup::new(specs);
        setup.concurrency = concurrency;
        setup.hooks = hooks;
        let rt = tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap();
        let (report, _) = rt.block_on(setup.run());

        // the rules, in topological (index) order
        let mut expected: Vec<AssetStatus> = Vec::new();
        let mut blocks: Vec<bool> = Vec::new();
        for (i, b) in behaviours.iter().enumerate() {
            let gated = deps_of[i].iter().any(|&d| expected[d] != AssetStatus::Succeeded || blocks[d]);
            let status = if gated {
                AssetStatus::Skipped
            } else {
                match b {
                    Behaviour::Fails | Behaviour::Panics | Behaviour::TimesOut { .. } => AssetStatus::Failed,
                    Behaviour::HookPanics(FailurePolicy::Raise) => AssetStatus::Failed,
                    _ => AssetStatus::Succeeded,
                }
            };
            blocks.push(status == AssetStatus::Succeeded && matches!(b, Behaviour::BlockingCheckFails | Behaviour::CheckPanics));
            expected.push(status);
        }
        proptest::prop_assert_eq!(report.assets.len(), n, "{:?}", report.assets);
        for (i, want) in expected.iter().enumerate() {
            let rows: Vec<_> = report.assets.iter().filter(|a| a.key == key(i)).collect();
            proptest::prop_assert_eq!(rows.len(), 1, "{} appears {} times", key(i), rows.len());
            proptest::prop_assert_eq!(rows[0].status, *want, "{} ({:?}): {:?}", key(i), behaviours[i], rows[0]);
            if *want == AssetStatus::Skipped {
                proptest::prop_assert!(rows[0].error.as_deref().is_some_and(|e| e.contains('`')), "{:?}", rows[0]);
            }
        }
        let any_failed = expected.contains(&AssetStatus::Failed) || blocks.iter().any(|b| *b);
        proptest::prop_assert_eq!(report.status == RunStatus::Failed, any_failed);
        proptest::prop_assert_eq!(report.has_failures(), any_failed);
    }
}

#[tokio::test(start_paused = true)]
async fn log_lines_carry_their_asset_attempt_and_tags() {
    let calls = Arc::new(AtomicU32::new(0));
    let spec = AssetSpec::new("logger")
        .with_tag("team", "data")
        .with_retry(RetryPolicy::new(1).with_delay(Duration::from_millis(10)))
        .with_run(move |ctx: RunContext| {
            let calls = Arc::clone(&calls);
            async move {
                ctx.log("info", &format!("attempt {} here", ctx.attempt));
                if calls.fetch_add(1, Ordering::SeqCst) == 0 {
                    Err(RunError::new("once"))
                } else {
                    Ok(MaterializeResult::new())
                }
            }
        });
    let (report, rec) = Setup::new(vec![spec, ok_asset("quiet", &[])]).run().await;
    assert_eq!(report.status, RunStatus::Succeeded);
    let logs: Vec<(String, u32, String, Option<String>)> = rec
        .events()
        .into_iter()
        .filter_map(|e| match &e.payload {
            EventPayload::TelemetryLog { message, .. } if !message.contains("retrying") => Some((
                e.correlation.asset_key.as_deref().unwrap_or_default().to_string(),
                e.correlation.attempt,
                message.clone(),
                e.tags.get("team").cloned(),
            )),
            _ => None,
        })
        .collect();
    let data = Some(String::from("data"));
    assert_eq!(
        logs,
        [
            ("logger".into(), 1, "attempt 1 here".into(), data.clone()),
            ("logger".into(), 2, "attempt 2 here".into(), data)
        ]
    );
    assert!(rec.events().iter().all(|e| e.correlation.run_id.as_deref() == Some("run-1")));
}

/// Steps that count how many run at once.
fn counted(key: &str, deps: &[&str], now: &Arc<AtomicUsize>, max: &Arc<AtomicUsize>) -> AssetSpec {
    let (now, max) = (Arc::clone(now), Arc::clone(max));
    let mut s = AssetSpec::new(key).with_run(move |_ctx: RunContext| {
        let (now, max) = (Arc::clone(&now), Arc::clone(&max));
        async move {
            let n = now.fetch_add(1, Ordering::SeqCst) + 1;
            max.fetch_max(n, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(5)).await;
            now.fetch_sub(1, Ordering::SeqCst);
            Ok(MaterializeResult::new())
        }
    });
    for d in deps {
        s = s.with_dep(*d);
    }
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_workers_wake_when_a_step_unblocks_many() {
    // while `root` runs, three workers have nothing to do; its success readies eight steps,
    // which then run four at a time
    let (now, max) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let mut specs = vec![counted("root", &[], &now, &max)];
    specs.extend((0..8).map(|i| counted(&format!("fan{i}"), &["root"], &now, &max)));
    let mut s = Setup::new(specs);
    s.concurrency = 4;
    let (report, _) = tokio::time::timeout(Duration::from_secs(10), s.run()).await.expect("the run ends");
    assert_eq!(report.status, RunStatus::Succeeded);
    assert_eq!(report.assets.len(), 9);
    assert_eq!(max.load(Ordering::SeqCst), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_while_workers_wait_ends_the_run() {
    let cancel = CancelToken::new();
    let c = cancel.clone();
    let slow = AssetSpec::new("slow").with_run(move |ctx: RunContext| {
        let c = c.clone();
        async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            c.cancel();
            ctx.cancel.cancelled().await;
            Err(RunError::new("stopped on request"))
        }
    });
    let mut specs = vec![slow];
    specs.extend((0..5).map(|i| ok_asset(&format!("after{i}"), &["slow"])));
    let mut s = Setup::new(specs);
    s.cancel = cancel;
    s.concurrency = 4;
    let (report, rec) = tokio::time::timeout(Duration::from_secs(10), s.run()).await.expect("the run ends");
    assert_eq!(report.status, RunStatus::Cancelled);
    assert_eq!(report.assets.len(), 6);
    assert!(report.assets.iter().all(|a| a.status == AssetStatus::Cancelled), "{:?}", report.assets);
    assert_eq!(rec.types().last(), Some(&EventType::RunEnd));
}

#[tokio::test]
async fn concurrency_zero_still_runs_every_step_one_at_a_time() {
    let (now, max) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let mut s = Setup::new((0..3).map(|i| counted(&format!("a{i}"), &[], &now, &max)).collect());
    s.concurrency = 0;
    let (report, _) = s.run().await;
    assert_eq!(report.status, RunStatus::Succeeded);
    assert_eq!(max.load(Ordering::SeqCst), 1);
}
