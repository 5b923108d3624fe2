//! The executor: drives the [`Scheduler`] on tokio with bounded concurrency, runs each
//! asset with its retry policy and timeout, runs its checks, and emits the lifecycle
//! events in order: `run.start`; per asset `<kind>.start`, `quality.result`…,
//! `lineage.edges`, `<kind>.end` (or `asset.skipped`); `run.end`.

use std::collections::BTreeMap;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use futures_util::FutureExt;
use phlo_core::diagnostic::Code;
use phlo_core::execution::versions::Inputs;
use phlo_core::execution::{AssetOutcome, AssetStatus, CheckRow, PartitionRequest, RunReport, RunRequest, RunStatus};
use phlo_core::execution::{Materialization, Versions};
use phlo_core::hooks::{
    AssetEvent, Correlation, Event, EventPayload, EventType, HookError, RunEvent, Status, StepVersions,
};
use phlo_core::spec::LogSink;
use phlo_core::spec::{AssetKind, AssetSpec, CheckOutcome, CheckResult, MaterializeResult, RunContext, RunError};
use tokio::sync::Notify;
use tokio::task::JoinSet;

use crate::scheduler::Scheduler;

/// How long a timed-out attempt may take to stop before it is abandoned.
pub(crate) const STOP_GRACE: Duration = Duration::from_secs(2);

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

pub(crate) fn end_payload(kind: AssetKind, e: AssetEvent) -> EventPayload {
    match kind {
        AssetKind::Ingestion => EventPayload::IngestionEnd(e),
        AssetKind::Publish => EventPayload::PublishEnd(e),
        AssetKind::Transform | AssetKind::Other => EventPayload::TransformEnd(e),
    }
}

/// Everything the workers of one run share.
pub(crate) struct Shared {
    pub(crate) req: RunRequest,
    /// The run id, shared by every event's correlation.
    pub(crate) run_id: Arc<str>,
    /// One log sink for every attempt of the run (it reads which one from the context).
    log_sink: LogSink,
    /// One event sink for every attempt of the run.
    event_sink: phlo_core::spec::EventSink,
    /// The data version of a step whose asset reports none: one per run (`run:<id>`).
    run_version: Arc<str>,
    /// The steps, numbered in run order.
    nodes: Vec<Node>,
    /// What is decided so far; workers hold the lock only to record a step and pick the next.
    state: Mutex<RunState>,
    /// Wakes idle workers: a step became ready, the run ended, or it was cancelled.
    wake: Notify,
}

struct RunState {
    scheduler: Scheduler,
    /// One final outcome per step, by step number: the report does not depend on timing.
    outcomes: Vec<Option<AssetOutcome>>,
    check_rows: Vec<CheckRow>,
    /// A hook raised on a run-level event (`run.start`, `asset.skipped`).
    failed_run: bool,
    /// The run's token was seen cancelled: nothing new starts.
    cancelled: bool,
    /// Workers waiting for a step to become ready.
    idle: usize,
}

impl Shared {
    fn new(req: RunRequest, nodes: Vec<Node>, scheduler: Scheduler) -> Arc<Shared> {
        let mut outcomes = Vec::with_capacity(nodes.len());
        outcomes.resize_with(nodes.len(), || None);
        let state =
            RunState { scheduler, outcomes, check_rows: Vec::new(), failed_run: false, cancelled: false, idle: 0 };
        Arc::new_cyclic(|me: &Weak<Shared>| {
            let me = me.clone();
            let me_too = me.clone();
            let log_sink: LogSink = Arc::new(move |ctx: &RunContext, level: &str, message: &str| {
                let Some(shared) = me.upgrade() else { return };
                let payload = EventPayload::TelemetryLog { level: level.to_string(), message: message.to_string() };
                shared.emit_for(ctx, payload);
            });
            let event_sink: phlo_core::spec::EventSink = Arc::new(move |ctx: &RunContext, request| {
                let Some(shared) = me_too.upgrade() else { return };
                shared.emit_for(ctx, EventPayload::SourceRequest(Box::new(request)));
            });
            Shared {
                run_id: req.run_id.as_str().into(),
                run_version: Arc::from(format!("run:{}", req.run_id)),
                req,
                log_sink,
                event_sink,
                nodes,
                state: Mutex::new(state),
                wake: Notify::new(),
            }
        })
    }

    fn state(&self) -> std::sync::MutexGuard<'_, RunState> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn correlation(&self, spec: &AssetSpec, partition: Option<&str>, attempt: u32) -> Correlation {
        let mut c = Correlation::run(Arc::clone(&self.run_id)).with_asset(spec.key.clone()).with_attempt(attempt);
        if let Some(p) = partition {
            c = c.with_partition(p);
        }
        c
    }

    /// Emits an event a run function reported, correlated with its attempt.
    fn emit_for(&self, ctx: &RunContext, payload: EventPayload) {
        let graph = &self.req.graph;
        let spec = graph.index_of(&ctx.asset).map(|i| &graph.node(i).spec);
        let mut c = Correlation::run(Arc::clone(&self.run_id)).with_asset(ctx.asset.as_str()).with_attempt(ctx.attempt);
        if let Some(p) = &ctx.partition {
            c = c.with_partition(p.clone());
        }
        let _ = self.emit(payload, c, spec);
    }

    /// Emits an event of the run; an event nobody receives is not built.
    pub(crate) fn emit(
        &self,
        payload: EventPayload,
        correlation: Correlation,
        spec: Option<&AssetSpec>,
    ) -> Result<(), HookError> {
        if !self.req.bus.wants(payload.event_type()) {
            return Ok(());
        }
        let mut tags = self.req.tags.clone();
        if let Some(s) = spec {
            tags.extend(s.tags.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        self.req.bus.emit_event(Event::new(payload, correlation).with_tags(tags))
    }

    /// Cancels every step not yet started.
    fn cancel_pending(&self, st: &mut RunState, why: &str) {
        st.cancelled = true;
        for i in st.scheduler.cancel_pending() {
            st.outcomes[i] = Some(outcome(&self.req.graph, &self.nodes[i], AssetStatus::Cancelled, Some(why.into())));
        }
    }

    /// Records a finished step: its checks, its outcome, and the steps it unblocks or skips.
    fn record(&self, st: &mut RunState, f: Finished) {
        let graph = &self.req.graph;
        let node = &self.nodes[f.node];
        for r in &f.checks {
            st.check_rows.push(CheckRow {
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
            AssetStatus::Succeeded | AssetStatus::SkippedUnchanged if !f.blocked => st.scheduler.succeed(f.node),
            AssetStatus::Cancelled => st.scheduler.cancelled(f.node),
            _ => {
                let reason = if f.blocked {
                    format!("a blocking check of `{key}` failed")
                } else {
                    format!("upstream asset `{key}` failed")
                };
                for s in st.scheduler.fail(f.node) {
                    let sn = &self.nodes[s];
                    let spec = &graph.node(sn.asset).spec;
                    let c = self.correlation(spec, sn.partition.as_deref(), 1);
                    let payload = EventPayload::AssetSkipped {
                        reason: reason.clone(),
                        failed_upstream: Some(key.into()),
                        unchanged_since: None,
                    };
                    if let Err(e) = self.emit(payload, c, Some(spec)) {
                        st.failed_run = true;
                        tracing_free_log(&e.to_string());
                    }
                    st.outcomes[s] = Some(outcome(graph, sn, AssetStatus::Skipped, Some(reason.clone())));
                }
            }
        }
        st.outcomes[f.node] = Some(AssetOutcome {
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

    /// Step `index` is left out as unchanged (`--skip-unchanged`): its last success stands,
    /// and its data version is that success's for the steps after it.
    fn unchanged(&self, index: usize, spec: &AssetSpec, last: &Materialization, versions: &Versions) -> Finished {
        let node = &self.nodes[index];
        let data = last.data_version.clone().unwrap_or_default();
        versions.produced(node.asset, node.partition.as_deref(), Some(Arc::from(data.as_str())));
        let reason = format!("its code and inputs are those of its last success, in run {}", last.run_id);
        let payload = EventPayload::AssetSkipped {
            reason: reason.clone(),
            failed_upstream: None,
            unchanged_since: Some(last.run_id.clone()),
        };
        let emitted = self.emit(payload, self.correlation(spec, node.partition.as_deref(), 1), Some(spec));
        let mut metadata = BTreeMap::new();
        metadata.insert(String::from("data_version"), serde_json::Value::from(data));
        metadata.insert(String::from("unchanged_since"), serde_json::Value::from(last.run_id.as_str()));
        let (status, error, code) = match emitted {
            Ok(()) => (AssetStatus::SkippedUnchanged, Some(reason), None),
            Err(e) => (AssetStatus::Failed, Some(e.to_string()), Some(Code::HookRaised)),
        };
        Finished {
            node: index,
            status,
            attempts: 0,
            duration: Duration::ZERO,
            error,
            metadata,
            checks: Vec::new(),
            blocked: false,
            code,
        }
    }

    /// Step `i`'s work panicked outside its guarded run function (a check, a hook, the
    /// executor itself): the step failed, and says why.
    fn panicked(&self, i: usize, panic: &(dyn std::any::Any + Send)) -> Finished {
        let why = format!("panicked: {}", phlo_core::plugin::panic_message(panic));
        let node = &self.nodes[i];
        let spec = &self.req.graph.node(node.asset).spec;
        let end = AssetEvent {
            group: spec.group.clone(),
            status: Some(Status::Failed),
            error: Some(why.clone()),
            ..AssetEvent::default()
        };
        let c = self.correlation(spec, node.partition.as_deref(), 1);
        if let Err(h) = self.emit(end_payload(spec.kind, end), c, Some(spec)) {
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
}

/// One of the run's `concurrency` workers: records the step it finished, takes the next
/// ready one (lowest number first) and runs it in place, until nothing is left. Steps are not
/// spawned one task each; a finished step unblocks its dependents without a round trip
/// through a coordinator.
async fn worker(shared: Arc<Shared>) {
    let mut finished: Option<Finished> = None;
    let mut was_idle = false;
    loop {
        let notified = shared.wake.notified();
        tokio::pin!(notified);
        let (next, cancelled) = {
            let mut st = shared.state();
            if was_idle {
                st.idle -= 1;
                was_idle = false;
            }
            if let Some(f) = finished.take() {
                shared.record(&mut st, f);
            }
            if !st.cancelled && shared.req.cancel.is_cancelled() {
                shared.cancel_pending(&mut st, "the run was cancelled");
                shared.wake.notify_waiters();
            }
            let next = if st.cancelled { None } else { st.scheduler.start_next() };
            if st.scheduler.is_done() {
                shared.wake.notify_waiters();
                return;
            }
            // idle workers found nothing ready: wake them when there is
            if st.idle > 0 && st.scheduler.ready() > 0 {
                shared.wake.notify_waiters();
            }
            if next.is_none() {
                // registered before the lock is released: a wake-up in between is not lost
                notified.as_mut().enable();
                st.idle += 1;
                was_idle = true;
            }
            (next, st.cancelled)
        };
        match next {
            Some(i) => {
                let node = &shared.nodes[i];
                finished = Some(match AssertUnwindSafe(run_node(&shared, i, node)).catch_unwind().await {
                    Ok(f) => f,
                    Err(panic) => shared.panicked(i, panic.as_ref()),
                });
            }
            None if cancelled => notified.await,
            None => {
                tokio::select! {
                    () = &mut notified => {}
                    () = shared.req.cancel.cancelled() => {}
                }
            }
        }
    }
}

/// Runs a request to the end.
pub async fn execute(req: RunRequest) -> RunReport {
    let started_at = chrono::Utc::now();
    let t0 = Instant::now();
    let graph = Arc::clone(&req.graph);

    // Steps, numbered in run order (topological position, then partition): every selected,
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
    let mut resumed_done = 0usize;
    let mut by_asset: Vec<Vec<usize>> = vec![Vec::new(); graph.len()];
    for &a in &selected {
        let spec = &graph.node(a).spec;
        if spec.external {
            continue;
        }
        for k in req.partitions_of(a) {
            // completed by an earlier attempt of this run (`--resume`): left out; its
            // dependents have no edge from it and run as if it had just succeeded
            if !req.done.is_empty() && req.done.contains(&(spec.key.as_str().to_string(), k.clone())) {
                resumed_done += 1;
                continue;
            }
            by_asset[a as usize].push(nodes.len());
            nodes.push(Node { asset: a, partition: k });
        }
    }
    // the steps run here, declared to the data versions: a step that reports no version of
    // its own then writes none for its dependents to read
    if let Some(v) = &req.versions {
        v.will_run(nodes.iter().filter(|n| n.partition.is_none()).map(|n| n.asset));
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
    let scheduler = Scheduler::new(nodes.len(), &edges);
    let workers = req.concurrency.clamp(1, nodes.len().max(1));
    let shared = Shared::new(req, nodes, scheduler);
    let step_count = shared.nodes.len();

    let run_correlation = Correlation::run(Arc::clone(&shared.run_id));
    let run_start = EventPayload::RunStart(RunEvent {
        selection: shared.req.selection.clone(),
        assets: step_count,
        partitions: shared.req.partitions.as_ref().map(PartitionRequest::to_arg),
        evaluated_at: Some(shared.req.now),
        resumed_done,
        ..RunEvent::default()
    });
    if let Err(e) = shared.emit(run_start, run_correlation.clone(), None) {
        // a `raise` hook on run.start fails the run before anything starts
        let mut st = shared.state();
        shared.cancel_pending(&mut st, &e.to_string());
        st.failed_run = true;
    }

    let mut pool = JoinSet::new();
    for _ in 0..workers {
        pool.spawn(worker(Arc::clone(&shared)));
    }
    while let Some(joined) = pool.join_next().await {
        if let Err(e) = joined {
            // a worker died outside a step's guarded work (a bug in the executor): the others
            // must not wait for its step forever
            tracing_free_log(&format!("a run worker stopped: {e}"));
            let mut st = shared.state();
            shared.cancel_pending(&mut st, "a run worker stopped");
            st.failed_run = true;
            shared.wake.notify_waiters();
            drop(st);
            pool.abort_all();
        }
    }

    let (outcomes, check_rows, failed_run, cancelled) = {
        let mut st = shared.state();
        let outcomes = std::mem::take(&mut st.outcomes);
        (outcomes, std::mem::take(&mut st.check_rows), st.failed_run, st.cancelled && shared.req.cancel.is_cancelled())
    };
    // a step without an outcome never finished: its worker was stopped
    let outcomes: Vec<AssetOutcome> = outcomes
        .into_iter()
        .enumerate()
        .map(|(i, o)| {
            o.unwrap_or_else(|| {
                let why = Some(String::from("its worker was stopped before it finished"));
                outcome(&graph, &shared.nodes[i], AssetStatus::Failed, why)
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
        ("skipped_unchanged", AssetStatus::SkippedUnchanged),
    ] {
        let n = count(s);
        if n > 0 {
            summary.insert(name.to_string(), n);
        }
    }
    let end = EventPayload::RunEnd(RunEvent {
        selection: shared.req.selection.clone(),
        assets: step_count,
        status: Some(match status {
            RunStatus::Succeeded => Status::Succeeded,
            RunStatus::Failed => Status::Failed,
            RunStatus::Cancelled => Status::Cancelled,
        }),
        duration_ms: Some(duration_ms),
        summary,
        partitions: shared.req.partitions.as_ref().map(PartitionRequest::to_arg),
        evaluated_at: Some(shared.req.now),
        resumed_done,
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
            AssetStatus::Succeeded | AssetStatus::SkippedUnchanged => None,
        },
        error,
        metadata: BTreeMap::new(),
    }
}

async fn run_node(shared: &Shared, index: usize, node: &Node) -> Finished {
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

    // what the step reads: its upstream's data versions, and its source when its type
    // observes one (recorded with its materialization; equal to the last success's, the step
    // is left out with --skip-unchanged)
    let mut inputs = Inputs::default();
    let mut source = None;
    if let Some(versions) = &shared.req.versions {
        inputs = versions.inputs(&graph, node.asset, partition, &shared.run_version);
        if let Some(o) = spec.observe.clone() {
            let p = node.partition.clone();
            source = tokio::task::spawn_blocking(move || (o.0)(p.as_deref())).await.ok().and_then(Result::ok);
        }
        if versions.skip_unchanged
            && let Some(last) = versions.unchanged(spec, partition, &inputs, source.as_deref())
        {
            return shared.unchanged(index, spec, last, versions);
        }
    }

    // an external orchestrator that retries asks for exactly one attempt, numbered by it
    let (mut attempt, max_attempts) = match shared.req.attempt {
        Some(n) => (n.max(1) - 1, n.max(1)),
        None => (0, spec.retry.max_retries.saturating_add(1)),
    };
    // when the attempt that succeeded started: its timeout covers its checks too
    let mut started: Instant;
    let result: MaterializeResult = loop {
        attempt += 1;
        let correlation = shared.correlation(spec, partition, attempt);
        if let Err(e) = shared.emit(start_payload(spec.kind), correlation.clone(), Some(spec)) {
            return raised(&e, attempt, BTreeMap::new(), Vec::new());
        }
        let mut ctx = RunContext::new(Arc::clone(&shared.run_id), spec.key.clone(), node.partition.clone(), attempt);
        ctx.tags = shared.req.tags.clone();
        ctx.capabilities = Arc::clone(&resources);
        ctx.log_sink = Some(Arc::clone(&shared.log_sink));
        ctx.event_sink = Some(Arc::clone(&shared.event_sink));
        let attempt_start = if attempt == 1 { t0 } else { Instant::now() };
        started = attempt_start;
        // the attempt's own token, cancelled by its timeout or when the run is cancelled;
        // without a timeout only the run cancels it, so the run's token serves
        let stop = if spec.timeout.is_some() { shared.req.cancel.child() } else { shared.req.cancel.clone() };
        ctx.cancel = stop.clone();
        ctx.deadline = spec.timeout.map(|t| attempt_start + t);
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

    // Checks, after the asset, within the attempt's timeout and stopped by it or by Ctrl-C
    let correlation = shared.correlation(spec, partition, attempt);
    let step =
        crate::checks::Step { spec, partition: partition.map(str::to_string), attempt, started, resources: &resources };
    let (checks, blocked) = match crate::checks::run_checks(shared, &step, &correlation).await {
        crate::checks::Checked::Done { checks, blocked } => (checks, blocked),
        crate::checks::Checked::Stopped { status, code, message, checks } => {
            return finished(status, attempt, Some(message), result.metadata, checks, false, Some(code));
        }
        crate::checks::Checked::Raised(e, checks) => return raised(&e, attempt, BTreeMap::new(), checks),
    };

    if !spec.deps.is_empty()
        && shared.req.bus.wants(EventType::LineageEdges)
        && let Err(e) = shared.emit(
            EventPayload::LineageEdges { edges: spec.deps.iter().map(|d| (d.clone(), spec.key.clone())).collect() },
            correlation.clone(),
            Some(spec),
        )
    {
        return raised(&e, attempt, result.metadata, checks);
    }
    let duration = t0.elapsed();
    // its data version: the store's, else one per materialization (its dependents see that
    // it was rebuilt)
    let versions = shared.req.versions.as_ref().map(|v| {
        let data: Arc<str> = match &result.data_version {
            Some(d) => {
                let d = Arc::from(d.as_str());
                v.produced(node.asset, partition, Some(Arc::clone(&d)));
                d
            }
            None => {
                v.produced(node.asset, partition, None);
                Versions::run_version(&shared.run_version)
            }
        };
        Box::new(StepVersions { code: spec.code_version.clone(), data, source, inputs: inputs.versions })
    });
    let end = AssetEvent {
        group: spec.group.clone(),
        status: Some(Status::Succeeded),
        duration_ms: Some(duration.as_millis() as u64),
        metrics: result.metadata.clone(),
        error: None,
        versions,
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

pub(crate) fn humanize(d: Duration) -> String {
    if d.as_millis() < 1000 { format!("{} ms", d.as_millis()) } else { format!("{:.1} s", d.as_secs_f64()) }
}
