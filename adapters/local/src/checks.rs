//! A step's checks, after its asset materialized: each evaluated off the async workers,
//! within the attempt's `timeout` and stopped by it or by Ctrl-C (their queries are
//! interrupted), each result emitted as `quality.result`.

use std::sync::Arc;
use std::time::Instant;

use phlo_core::capability::CapabilityMap;
use phlo_core::diagnostic::Code;
use phlo_core::execution::AssetStatus;
use phlo_core::hooks::{AssetEvent, Correlation, EventPayload, HookError, Status};
use phlo_core::spec::{AssetSpec, CheckOutcome, CheckResult, RunContext};

use crate::executor::{STOP_GRACE, Shared, end_payload, humanize};

/// The step whose checks run.
pub(crate) struct Step<'a> {
    pub(crate) spec: &'a AssetSpec,
    pub(crate) partition: Option<String>,
    pub(crate) attempt: u32,
    /// When the attempt that materialized started: its timeout covers its checks.
    pub(crate) started: Instant,
    pub(crate) resources: &'a Arc<CapabilityMap>,
}

/// How a step's checks ended.
pub(crate) enum Checked {
    /// Every check ran; whether one blocks downstream.
    Done { checks: Vec<CheckResult>, blocked: bool },
    /// The timeout or Ctrl-C stopped a check: the step ends so (its end event is emitted).
    Stopped { status: AssetStatus, code: Code, message: String, checks: Vec<CheckResult> },
    /// A `raise` hook failed on a result.
    Raised(HookError, Vec<CheckResult>),
}

pub(crate) async fn run_checks(shared: &Shared, step: &Step<'_>, correlation: &Correlation) -> Checked {
    let spec = step.spec;
    let mut checks = Vec::new();
    let mut blocked = false;
    if spec.checks.is_empty() {
        // (no token is made: a clone shared by every thread costs on runs of many tiny steps)
        return Checked::Done { checks, blocked };
    }
    let deadline = spec.timeout.map(|t| tokio::time::Instant::from_std(step.started + t));
    let stop = if deadline.is_some() { shared.req.cancel.child() } else { shared.req.cancel.clone() };
    for check in &spec.checks {
        let mut ctx =
            RunContext::new(Arc::clone(&shared.run_id), spec.key.clone(), step.partition.clone(), step.attempt);
        ctx.capabilities = Arc::clone(step.resources);
        ctx.cancel = stop.clone();
        // checks query the warehouse: off the async workers
        let owned = check.clone();
        let mut work = tokio::task::spawn_blocking(move || owned.evaluate(&ctx));
        let joined = match deadline {
            Some(at) => match tokio::time::timeout_at(at, &mut work).await {
                Ok(j) => Some(j),
                Err(_) => {
                    // tell the check to stop, and wait for it (its statement is interrupted)
                    stop.cancel();
                    tokio::time::timeout(STOP_GRACE, &mut work).await.ok()
                }
            },
            None => Some((&mut work).await),
        };
        let mut found = match joined {
            Some(Ok(r)) => r,
            Some(Err(e)) => CheckResult::could_not_run(check, &spec.key, format!("the check stopped: {e}")),
            None => CheckResult::could_not_run(check, &spec.key, "the check did not stop when told to"),
        };
        let result_correlation = correlation.clone().with_check(check.name.clone());
        // stopped: by the timeout, or the run was cancelled; what it found cannot vouch for anything
        let why_stopped = if shared.req.cancel.is_cancelled() {
            Some((AssetStatus::Cancelled, Status::Cancelled, Code::RunCancelled, String::from("the run was cancelled")))
        } else if stop.is_cancelled() {
            let limit = humanize(spec.timeout.unwrap_or_default());
            Some((AssetStatus::Failed, Status::Failed, Code::RunTimeout, format!("timed out after {limit}")))
        } else {
            None
        };
        if let Some((status, event_status, code, why)) = why_stopped {
            let message = format!("{why} while its check `{}` ran", check.name);
            if found.passed() || !matches!(found.outcome, CheckOutcome::CouldNotRun(_)) {
                found = CheckResult::could_not_run(check, &spec.key, message.clone());
            }
            let _ = shared.emit(EventPayload::QualityResult(Box::new(found.clone())), result_correlation, Some(spec));
            checks.push(found);
            let end = AssetEvent {
                group: spec.group.clone(),
                status: Some(event_status),
                duration_ms: Some(step.started.elapsed().as_millis() as u64),
                error: Some(message.clone()),
                ..AssetEvent::default()
            };
            let _ = shared.emit(end_payload(spec.kind, end), correlation.clone(), Some(spec));
            return Checked::Stopped { status, code, message, checks };
        }
        blocked |= found.blocks();
        let emitted = shared.emit(EventPayload::QualityResult(Box::new(found.clone())), result_correlation, Some(spec));
        checks.push(found);
        if let Err(e) = emitted {
            return Checked::Raised(e, checks);
        }
    }
    Checked::Done { checks, blocked }
}
