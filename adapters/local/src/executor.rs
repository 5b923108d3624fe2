//! The executor: drives the [`Scheduler`] on tokio with bounded concurrency, runs each
//! asset with its retry policy and timeout, runs its checks, and emits the lifecycle
//! events in order: `run.start`; per asset `<kind>.start`, `quality.result`…,
//! `lineage.edges`, `<kind>.end` (or `asset.skipped`); `run.end`.

use std::collections::BTreeMap;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use futures_util::FutureExt;
use phlo_core::diagnostic::Code;
use phlo_core::execution::{AssetOutcome, AssetStatus, CheckRow, PartitionRequest, RunReport, RunRequest, RunStatus};
use phlo_core::hooks::{AssetEvent, Correlation, Event, EventPayload, HookError, RunEvent, Status};
use phlo_core::spec::LogSink;
use phlo_core::spec::{AssetKind, AssetSpec, CheckOutcome, CheckResult, MaterializeResult, RunContext, RunError};
use tokio::task::JoinSet;

use crate::scheduler::Scheduler;

/// How long a timed-out attempt may take to stop before it is abandoned.
const STOP_GRACE: Duration = Duration::from_secs(2);

/// One unit of work: an asset, or one partition of it.
#[derive(Debug, Clone)]
struct Node {
    asset: u32,
    partition: Option<String>,
}

/// What a node's task reports back.
struct Finished {
    node: usize,
    status: AssetStatus,
    attempts: u32,
    duration: Duration,
    error: Option<String>,
    metadata: BTreeMap<String, serde_json::Value>,
    checks: Vec<CheckResult>,
    /// A blocking check failed: downstream is gated as if the asset failed.
    blocked: bool,
    /// The stable code of the error.
    code: Option<Code>,
}

/// splitmix64: a small seeded generator, so retry jitter can be reproduced.
fn splitmix(state: &mut u64) -> f64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64
}

fn seed_for(seed: u64, key: &str, partition: Option<&str>) -> u64 {
    let mut h = seed ^ 0xcbf2_9ce4_8422_2325;
    for b in key.bytes().chain(partition.unwrap_or("").bytes()) {
        h = (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
    }
    h
}

fn start_payload(kind: AssetKind) -> EventPayload {
    match kind {
        AssetKind::Ingestion => EventPayload::IngestionStart(AssetEvent::default()),
        AssetKind::Publish => EventPayload::PublishStart(AssetEvent::default()),
        AssetKind::Transform | AssetKind::Other => EventPayload::TransformStart(AssetEvent::default()),
    }
}

fn end_payload(kind: AssetKind, e: AssetEvent) -> EventPayload {
    match kind {
        AssetKind::Ingestion => EventPayload::IngestionEnd(e),
        AssetKind::Publish => EventPayload::PublishEnd(e),
        AssetKind::Transform | AssetKind::Other => EventPayload::TransformEnd(e),
    }
}

struct Shared {
    req: RunRequest,
    /// The run id, shared by every event's correlation.
    run_id: Arc<str>,
    /// One log sink for every attempt of the run (it reads which one from the context).
    log_sink: LogSink,
}

impl Shared {
    fn new(req: RunRequest) -> Arc<Shared> {
        Arc::new_cyclic(|me: &Weak<Shared>| {
            let me = me.clone();
            let log_sink: LogSink = Arc::new(move |ctx: &RunContext, level: &str, message: &str| {
                let Some(shared) = me.upgrade() else { return };
                let graph = &shared.req.graph;
                let spec = graph.index_of(&ctx.asset).map(|i| &graph.node(i).spec);
                let mut c = Correlation::run(Arc::clone(&shared.run_id))
                    .with_asset(ctx.asset.as_str())
                    .with_attempt(ctx.attempt);
                if let Some(p) = &ctx.partition {
                    c = c.with_partition(p.clone());
                }
                let payload = EventPayload::TelemetryLog { level: level.to_string(), message: message.to_string() };
                let _ = shared.emit(payload, c, spec);
            });
            Shared { run_id: req.run_id.as_str().into(), req, log_sink }
        })
    }

    fn correlation(&self, spec: &AssetSpec, partition: Option<&str>, attempt: u32) -> Correlation {
        let mut c = Correlation::run(Arc::clone(&self.run_id)).with_asset(spec.key.clone()).with_attempt(attempt);
        if let Some(p) = partition {
            c = c.with_partition(p);
        }
        c
    }

    /// Emits an event of the run; an event nobody receives is not built.
    fn emit(&self, payload: EventPayload, correlation: Correlation, spec: Option<&AssetSpec>) -> Result<(), HookError> {
        if !self.req.bus.wants(payload.event_type()) {
            return Ok(());
        }
        let mut tags = self.req.tags.clone();
        if let Some(s) = spec {
            tags.extend(s.tags.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        self.req.bus.emit_event(Event::new(payload, correlation).with_tags(tags))
    }
}

/// Runs a request to the end.
pub async fn execute(req: RunRequest) -> RunReport {
    let started_at = chrono::Utc::now();
    let t0 = Instant::now();
    let graph = Arc::clone(&req.graph);

    // Nodes, numbered in run order (topological position, then partition): every selected,
    // non-external asset, once or per partition. The report lists them in this order.
    let mut is_selected = vec![false; graph.len()];
    for &a in &req.selected {
        is_selected[a as usize] = true;
    }
    let selected: Vec<u32> = match graph.topological_order() {
        Some(order) => order.iter().copied().filter(|&a| is_selected[a as usize]).collect(),
        None => req.selected.clone(),
    };
    let mut nodes: Vec<Node> = Vec::with_capacity(selected.len());
    let mut by_asset: Vec<Vec<usize>> = vec![Vec::new(); graph.len()];
    for &a in &selected {
        let spec = &graph.node(a).spec;
        if spec.external {
            continue;
        }
        let keys: Vec<Option<String>> = match (&req.partitions, spec.partitions.is_partitioned()) {
            (_, false) => vec![None],
            (None, true) => vec![spec.partitions.latest(chrono::Utc::now())],
            (Some(PartitionRequest::Key(k)), true) => vec![Some(k.clone())],
            (Some(PartitionRequest::Range(x, y)), true) => {
                spec.partitions.range(x, y).unwrap_or_default().into_iter().map(Some).collect()
            }
        };
        for k in keys {
            by_asset[a as usize].push(nodes.len());
            nodes.push(Node { asset: a, partition: k });
        }
    }
    let mut edges = Vec::new();
    for (dep, asset) in graph.edges() {
        let (upstream, downstream) = (&by_asset[dep as usize], &by_asset[asset as usize]);
        if upstream.is_empty() || downstream.is_empty() {
            continue;
        }
        // identity mapping between assets partitioned alike; otherwise all of the dep
        let alike = graph.node(dep).spec.partitions == graph.node(asset).spec.partitions;
        for &i in downstream {
            for &d in upstream {
                if !alike || nodes[i].partition.is_none() || nodes[d].partition == nodes[i].partition {
                    edges.push((d, i));
                }
            }
        }
    }
    let mut scheduler = Scheduler::new(nodes.len(), &edges);
    let shared = Shared::new(req);
    // one final outcome per node, by node number: the report does not depend on timing
    let mut outcomes: Vec<Option<AssetOutcome>> = Vec::with_capacity(nodes.len());
    outcomes.resize_with(nodes.len(), || None);
    let mut check_rows: Vec<CheckRow> = Vec::new();
    let mut failed_run = false;

    let run_correlation = Correlation::run(Arc::clone(&shared.run_id));
    let run_start = EventPayload::RunStart(RunEvent {
        selection: shared.req.selection.clone(),
        assets: nodes.len(),
        ..RunEvent::default()
    });
    if let Err(e) = shared.emit(run_start, run_correlation.clone(), None) {
        // a `raise` hook on run.start fails the run before anything starts
        for i in scheduler.cancel_pending() {
            outcomes[i] = Some(outcome(&graph, &nodes[i], AssetStatus::Cancelled, Some(e.to_string())));
        }
        failed_run = true;
    }

    // each task says which node it ran, and catches its own panics: a step whose check, hook
    // or executor code panicked is still accounted for
    let mut tasks: JoinSet<(usize, std::thread::Result<Finished>)> = JoinSet::new();
    let mut cancelled = false;
    // one waiter on the run's token for the whole run (not one per finished step)
    let stop = shared.req.cancel.cancelled();
    tokio::pin!(stop);
    loop {
        if !cancelled && shared.req.cancel.is_cancelled() {
            cancelled = true;
            for i in scheduler.cancel_pending() {
                let why = Some(String::from("the run was cancelled"));
                outcomes[i] = Some(outcome(&graph, &nodes[i], AssetStatus::Cancelled, why));
            }
        }
        while !cancelled && scheduler.running() < shared.req.concurrency {
            let Some(i) = scheduler.start_next() else { break };
            let s = Arc::clone(&shared);
            let node = nodes[i].clone();
            // boxed: the task's state is ~1 KB, and spawning moves a pointer instead of copying it
            tasks.spawn(Box::pin(async move { (i, AssertUnwindSafe(run_node(s, i, node)).catch_unwind().await) }));
        }
        if scheduler.is_done() && tasks.is_empty() {
            break;
        }
        let joined = tokio::select! {
            biased;
            j = tasks.join_next() => j,
            () = &mut stop, if !cancelled => continue,
        };
        // `Err`: the task was stopped from outside (the runtime is shutting down); its node is
        // reported as cancelled below
        let Some(Ok((i, result))) = joined else {
            if joined.is_none() {
                break;
            }
            continue;
        };
        let f = match result {
            Ok(f) => f,
            Err(panic) => {
                let why = format!("panicked: {}", phlo_core::plugin::panic_message(panic.as_ref()));
                let spec = &graph.node(nodes[i].asset).spec;
                let end = AssetEvent {
                    group: spec.group.clone(),
                    status: Some(Status::Failed),
                    error: Some(why.clone()),
                    ..AssetEvent::default()
                };
                let c = shared.correlation(spec, nodes[i].partition.as_deref(), 1);
                if let Err(h) = shared.emit(end_payload(spec.kind, end), c, Some(spec)) {
                    tracing_free_log(&h.to_string());
                }
                Finished {
                    node: i,
                    status: AssetStatus::Failed,
                    attempts: 1,
                    duration: Duration::ZERO,
                    error: Some(why),
                    metadata: BTreeMap::new(),
                    checks: Vec::new(),
                    blocked: false,
                    code: Some(Code::RunPanicked),
                }
            }
        };
        let node = &nodes[f.node];
        for r in &f.checks {
            check_rows.push(CheckRow {
                asset: r.asset.clone(),
                partition: node.partition.clone(),
                name: r.check.clone(),
                passed: r.passed(),
                outcome: match &r.outcome {
                    CheckOutcome::Passed => "passed".into(),
                    CheckOutcome::Failed => "failed".into(),
                    CheckOutcome::CouldNotRun(_) => "could_not_run".into(),
                },
                severity: r.severity,
                blocking: r.blocking,
                violations: r.violations,
                total: r.total,
                error: match &r.outcome {
                    CheckOutcome::CouldNotRun(e) => Some(e.clone()),
                    _ => None,
                },
                samples: r.samples.clone(),
                metadata: r.metadata.clone(),
            });
        }
        let key = graph.key(node.asset);
        match f.status {
            AssetStatus::Succeeded if !f.blocked => scheduler.succeed(f.node),
            AssetStatus::Cancelled => scheduler.cancelled(f.node),
            _ => {
                let reason = if f.blocked {
                    format!("a blocking check of `{key}` failed")
                } else {
                    format!("upstream asset `{key}` failed")
                };
                for s in scheduler.fail(f.node) {
                    let sn = &nodes[s];
                    let spec = &graph.node(sn.asset).spec;
                    let c = shared.correlation(spec, sn.partition.as_deref(), 1);
                    let payload =
                        EventPayload::AssetSkipped { reason: reason.clone(), failed_upstream: Some(key.into()) };
                    if let Err(e) = shared.emit(payload, c, Some(spec)) {
                        failed_run = true;
                        tracing_free_log(&e.to_string());
                    }
                    outcomes[s] = Some(outcome(&graph, sn, AssetStatus::Skipped, Some(reason.clone())));
                }
            }
        }
        outcomes[f.node] = Some(AssetOutcome {
            key: key.to_string(),
            partition: node.partition.clone(),
            status: f.status,
            attempts: f.attempts,
            duration_ms: f.duration.as_millis() as u64,
            error: f.error,
            code: f.code,
            metadata: f.metadata,
        });
    }
    // a node without an outcome never finished: its task was stopped from outside
    let outcomes: Vec<AssetOutcome> = outcomes
        .into_iter()
        .enumerate()
        .map(|(i, o)| {
            o.unwrap_or_else(|| {
                let why = Some(String::from("its task was stopped before it finished"));
                outcome(&graph, &nodes[i], AssetStatus::Cancelled, why)
            })
        })
        .collect();

    let count = |s: AssetStatus| outcomes.iter().filter(|o| o.status == s).count() as u64;
    let blocked = check_rows.iter().any(CheckRow::blocks);
    let status = if cancelled {
        RunStatus::Cancelled
    } else if failed_run || count(AssetStatus::Failed) > 0 || blocked {
        RunStatus::Failed
    } else {
        RunStatus::Succeeded
    };
    let duration_ms = t0.elapsed().as_millis() as u64;
    let mut summary = BTreeMap::new();
    for (name, s) in [
        ("succeeded", AssetStatus::Succeeded),
        ("failed", AssetStatus::Failed),
        ("skipped", AssetStatus::Skipped),
        ("cancelled", AssetStatus::Cancelled),
    ] {
        let n = count(s);
        if n > 0 {
            summary.insert(name.to_string(), n);
        }
    }
    let end = EventPayload::RunEnd(RunEvent {
        selection: shared.req.selection.clone(),
        assets: nodes.len(),
        status: Some(match status {
            RunStatus::Succeeded => Status::Succeeded,
            RunStatus::Failed => Status::Failed,
            RunStatus::Cancelled => Status::Cancelled,
        }),
        duration_ms: Some(duration_ms),
        summary,
    });
    let status = match shared.emit(end, run_correlation, None) {
        Ok(()) => status,
        Err(_) if status == RunStatus::Cancelled => status,
        Err(_) => RunStatus::Failed,
    };
    RunReport {
        run_id: shared.req.run_id.clone(),
        status,
        started_at,
        duration_ms,
        assets: outcomes,
        checks: check_rows,
    }
}

/// The executor logs through the hook bus; this is for the rare error with nowhere to go.
fn tracing_free_log(message: &str) {
    eprintln!("phlo: {message}");
}

fn outcome(
    graph: &phlo_core::graph::AssetGraph,
    node: &Node,
    status: AssetStatus,
    error: Option<String>,
) -> AssetOutcome {
    AssetOutcome {
        key: graph.key(node.asset).to_string(),
        partition: node.partition.clone(),
        status,
        attempts: 0,
        duration_ms: 0,
        code: match status {
            AssetStatus::Cancelled => Some(Code::RunCancelled),
            AssetStatus::Skipped => Some(Code::UpstreamFailed),
            AssetStatus::Failed => Some(Code::RunFailed),
            AssetStatus::Succeeded => None,
        },
        error,
        metadata: BTreeMap::new(),
    }
}

async fn run_node(shared: Arc<Shared>, index: usize, node: Node) -> Finished {
    let graph = Arc::clone(&shared.req.graph);
    let spec = &graph.node(node.asset).spec;
    let partition = node.partition.as_deref();
    let t0 = Instant::now();
    let mut rng = seed_for(shared.req.seed, &spec.key, partition);
    let resources = shared.req.resources.for_asset(&spec.key);
    let finished = |status, attempts, error: Option<String>, metadata, checks, blocked, code| Finished {
        node: index,
        status,
        attempts,
        duration: t0.elapsed(),
        error,
        metadata,
        checks,
        blocked,
        code,
    };
    // a `raise` hook failed on one of the asset's events: the step fails with the hook's error
    let raised = |e: &HookError, attempt: u32, metadata, checks| {
        finished(AssetStatus::Failed, attempt, Some(e.to_string()), metadata, checks, false, Some(Code::HookRaised))
    };

    let max_attempts = spec.retry.max_retries.saturating_add(1);
    let mut attempt = 0;
    let result: MaterializeResult = loop {
        attempt += 1;
        let correlation = shared.correlation(spec, partition, attempt);
        if let Err(e) = shared.emit(start_payload(spec.kind), correlation.clone(), Some(spec)) {
            return raised(&e, attempt, BTreeMap::new(), Vec::new());
        }
        let mut ctx = RunContext::new(shared.req.run_id.clone(), spec.key.as_str(), node.partition.clone(), attempt);
        ctx.tags = shared.req.tags.clone();
        ctx.capabilities = Arc::clone(&resources);
        ctx.log_sink = Some(Arc::clone(&shared.log_sink));
        let attempt_start = if attempt == 1 { t0 } else { Instant::now() };
        // the attempt's own token, cancelled by its timeout or when the run is cancelled;
        // without a timeout only the run cancels it, so the run's token serves
        let stop = if spec.timeout.is_some() { shared.req.cancel.child() } else { shared.req.cancel.clone() };
        ctx.cancel = stop.clone();
        let outcome: Result<MaterializeResult, RunError> = match &spec.run {
            None => Err(RunError::permanent(format!(
                "asset `{}` has no run function; declare it `external: true` if it is produced outside phlo",
                spec.key
            ))),
            Some(run) => {
                // polled in place, a panic caught at every poll: a panic becomes this attempt's
                // error, and no task is spawned per attempt
                let mut work = AssertUnwindSafe(run.0.run(ctx)).catch_unwind();
                let joined = match spec.timeout {
                    Some(limit) => match tokio::time::timeout(limit, &mut work).await {
                        Ok(j) => Ok(j),
                        Err(_) => {
                            // tell the work to stop, and wait for it: an attempt never overlaps
                            // the next one, and the target is left as it was
                            stop.cancel();
                            let stopped = tokio::time::timeout(STOP_GRACE, &mut work).await.is_ok();
                            // not stopped: dropped (abandoned) here
                            drop(work);
                            Err(stopped)
                        }
                    },
                    None => Ok((&mut work).await),
                };
                match joined {
                    Ok(Ok(r)) => r,
                    Ok(Err(panic)) => Err(RunError::permanent(format!(
                        "the run function panicked: {}",
                        phlo_core::plugin::panic_message(panic.as_ref())
                    ))
                    .with_code(Code::RunPanicked)),
                    Err(true) => {
                        Err(RunError::new(format!("timed out after {}", humanize(spec.timeout.unwrap_or_default())))
                            .with_code(Code::RunTimeout))
                    }
                    Err(false) => Err(RunError::new(format!(
                        "timed out after {} and did not stop within {} (its work may still be running)",
                        humanize(spec.timeout.unwrap_or_default()),
                        humanize(STOP_GRACE)
                    ))
                    .with_code(Code::RunTimeout)),
                }
            }
        };
        match outcome {
            Ok(r) => break r,
            Err(e) => {
                let cancelled = shared.req.cancel.is_cancelled();
                let retry = e.retryable && attempt < max_attempts && !cancelled;
                let end = AssetEvent {
                    group: spec.group.clone(),
                    status: Some(if cancelled { Status::Cancelled } else { Status::Failed }),
                    duration_ms: Some(attempt_start.elapsed().as_millis() as u64),
                    error: Some(e.message.clone()),
                    ..AssetEvent::default()
                };
                let emitted = shared.emit(end_payload(spec.kind, end), correlation.clone(), Some(spec));
                if !retry {
                    let status = if cancelled { AssetStatus::Cancelled } else { AssetStatus::Failed };
                    let error = match emitted {
                        Ok(()) => e.message,
                        Err(h) => format!("{}; and {h}", e.message),
                    };
                    let code = if cancelled { Code::RunCancelled } else { e.code.unwrap_or(Code::RunFailed) };
                    return finished(status, attempt, Some(error), BTreeMap::new(), Vec::new(), false, Some(code));
                }
                let delay = spec.retry.delay_before(attempt, splitmix(&mut rng));
                let log = EventPayload::TelemetryLog {
                    level: String::from("warn"),
                    message: format!("attempt {attempt} failed ({}); retrying in {}", e.message, humanize(delay)),
                };
                let _ = shared.emit(log, correlation, Some(spec));
                tokio::select! {
                    () = tokio::time::sleep(delay) => {}
                    () = shared.req.cancel.cancelled() => {
                        return finished(AssetStatus::Cancelled, attempt, Some(String::from("cancelled while waiting to retry")), BTreeMap::new(), Vec::new(), false, Some(Code::RunCancelled));
                    }
                }
            }
        }
    };

    // Checks, after the asset.
    let correlation = shared.correlation(spec, partition, attempt);
    let mut checks = Vec::new();
    let mut blocked = false;
    for check in &spec.checks {
        let mut ctx = RunContext::new(shared.req.run_id.clone(), spec.key.as_str(), node.partition.clone(), attempt);
        ctx.capabilities = Arc::clone(&resources);
        ctx.cancel = shared.req.cancel.clone();
        // checks query the warehouse: off the async workers
        let owned = check.clone();
        let result = match tokio::task::spawn_blocking(move || owned.evaluate(&ctx)).await {
            Ok(r) => r,
            Err(e) => CheckResult::could_not_run(check, &spec.key, format!("the check stopped: {e}")),
        };
        blocked |= result.blocks();
        let emitted = shared.emit(
            EventPayload::QualityResult(Box::new(result.clone())),
            correlation.clone().with_check(check.name.clone()),
            Some(spec),
        );
        checks.push(result);
        if let Err(e) = emitted {
            return raised(&e, attempt, BTreeMap::new(), checks);
        }
    }

    let deps: Vec<(phlo_core::spec::AssetKey, phlo_core::spec::AssetKey)> =
        spec.deps.iter().map(|d| (d.clone(), spec.key.clone())).collect();
    if !deps.is_empty()
        && let Err(e) = shared.emit(EventPayload::LineageEdges { edges: deps }, correlation.clone(), Some(spec))
    {
        return raised(&e, attempt, result.metadata, checks);
    }
    let duration = t0.elapsed();
    let end = AssetEvent {
        group: spec.group.clone(),
        status: Some(Status::Succeeded),
        duration_ms: Some(duration.as_millis() as u64),
        metrics: result.metadata.clone(),
        error: None,
    };
    if let Err(e) = shared.emit(end_payload(spec.kind, end), correlation, Some(spec)) {
        return raised(&e, attempt, result.metadata, checks);
    }
    Finished {
        node: index,
        status: AssetStatus::Succeeded,
        attempts: attempt,
        duration,
        error: None,
        metadata: result.metadata,
        checks,
        blocked,
        code: None,
    }
}

fn humanize(d: Duration) -> String {
    if d.as_millis() < 1000 { format!("{} ms", d.as_millis()) } else { format!("{:.1} s", d.as_secs_f64()) }
}
