//! The function that materializes an asset, and what it returns.
//!
//! A run function is any `Fn(RunContext) -> impl Future<Output = Result<MaterializeResult,
//! RunError>>`; libraries stay runtime-agnostic (the executor owns the tokio runtime).
//!
//! ```
//! use phlo_core::spec::{AssetSpec, MaterializeResult, RunContext, RunError};
//! let spec = AssetSpec::new("raw.orders").with_run(|ctx: RunContext| async move {
//!     if ctx.partition.as_deref() == Some("1999-12-31") {
//!         return Err(RunError::permanent("no data before 2000"));
//!     }
//!     Ok(MaterializeResult::new().with_row_count(42))
//! });
//! assert!(spec.run.is_some());
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use serde::Serialize;

use crate::capability::{CapabilityMap, CapabilityType};

/// Cooperative cancellation: set once, seen by every clone.
#[derive(Clone, Default)]
pub struct CancelToken {
    inner: Arc<CancelInner>,
}

#[derive(Default)]
struct CancelInner {
    flag: std::sync::atomic::AtomicBool,
    event: event_listener::Event,
    /// Tokens cancelled with this one ([`CancelToken::child`]).
    children: std::sync::Mutex<Vec<std::sync::Weak<CancelInner>>>,
}

impl CancelInner {
    fn cancel(&self) {
        self.flag.store(true, std::sync::atomic::Ordering::SeqCst);
        self.event.notify(usize::MAX);
        let children = std::mem::take(&mut *self.children.lock().unwrap_or_else(std::sync::PoisonError::into_inner));
        for c in children.iter().filter_map(std::sync::Weak::upgrade) {
            c.cancel();
        }
    }
}

impl fmt::Debug for CancelToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CancelToken").field("cancelled", &self.is_cancelled()).finish()
    }
}

impl CancelToken {
    /// A token that is not cancelled.
    pub fn new() -> Self {
        Self::default()
    }

    /// Cancels: running work is told to stop, nothing new starts. Its children are
    /// cancelled too.
    pub fn cancel(&self) {
        self.inner.cancel();
    }

    /// A token cancelled when this one is — or on its own (an attempt's timeout) without
    /// cancelling this one.
    pub fn child(&self) -> CancelToken {
        let child = CancelToken::new();
        {
            let mut children = self.inner.children.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            // forget finished children now and then, so a long run's list stays short
            if children.len() >= 64 && children.len().is_power_of_two() {
                children.retain(|c| c.strong_count() > 0);
            }
            children.push(Arc::downgrade(&child.inner));
        }
        if self.is_cancelled() {
            child.cancel();
        }
        child
    }

    /// Whether it was cancelled.
    pub fn is_cancelled(&self) -> bool {
        self.inner.flag.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Completes when the token is cancelled.
    pub async fn cancelled(&self) {
        loop {
            if self.is_cancelled() {
                return;
            }
            let listener = self.inner.event.listen();
            if self.is_cancelled() {
                return;
            }
            listener.await;
        }
    }

    /// Blocks this thread until `deadline` or until the token is cancelled, whichever comes
    /// first (woken by the cancellation itself, no polling); `true` when it was cancelled.
    pub fn wait_until(&self, deadline: std::time::Instant) -> bool {
        use event_listener::Listener as _;
        loop {
            if self.is_cancelled() {
                return true;
            }
            let listener = self.inner.event.listen();
            if self.is_cancelled() {
                return true;
            }
            if listener.wait_deadline(deadline).is_none() {
                return self.is_cancelled();
            }
        }
    }
}

/// A boxed, sendable future.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What a run function knows about the work it is asked to do.
#[derive(Clone, Default)]
#[non_exhaustive]
pub struct RunContext {
    /// The run this attempt belongs to (shared by every attempt of the run).
    pub run_id: Arc<str>,
    /// The asset key.
    pub asset: crate::spec::AssetKey,
    /// The partition, for partitioned assets.
    pub partition: Option<String>,
    /// 1 for the first attempt, 2 for the first retry, …
    pub attempt: u32,
    /// The run's tags.
    pub tags: BTreeMap<String, String>,
    /// The asset's resolved capabilities.
    pub capabilities: Arc<CapabilityMap>,
    /// Set when this attempt must stop: it timed out, or the run was cancelled. Long work
    /// checks it (or hands [`RunContext::stop_signal`] to the engine doing it) and stops,
    /// leaving its target as it was.
    pub cancel: CancelToken,
    /// When this attempt's `timeout` ends, if it has one: work that cannot be interrupted
    /// while it waits (a blocking HTTP request) limits its own wait to it.
    pub deadline: Option<std::time::Instant>,
    /// Where [`RunContext::log`] lines go (the executor emits them as `telemetry.log`).
    pub log_sink: Option<LogSink>,
    /// Where [`RunContext::request`] reports go (the executor emits them on the run's bus).
    pub event_sink: Option<EventSink>,
}

/// Receives the requests a run function reports (the executor emits each as a
/// `source.request` event), with the context that says which asset, partition and attempt
/// made them.
pub type EventSink = Arc<dyn Fn(&RunContext, SourceRequest) + Send + Sync>;

/// `source.request`: one request to an outside system, for auditing. Never holds a secret:
/// the URL has its secret query values masked, and no header is recorded.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct SourceRequest {
    /// `GET`, `POST`, …
    pub method: String,
    /// The URL, secret values masked (`***`).
    pub url: String,
    /// The response status, when one came.
    pub status: Option<u16>,
    /// How long the request took.
    pub duration_ms: u64,
    /// Bytes of the response body.
    pub bytes: u64,
    /// 1 for the first try of this request, 2 for its first retry, …
    pub try_number: u32,
    /// Why it failed (no response, a timeout), secrets masked.
    pub error: Option<String>,
}

/// Receives the log lines of a run function: `(context, level, message)`. One sink can serve
/// every attempt of a run; the context says which asset, partition and attempt logged.
pub type LogSink = Arc<dyn Fn(&RunContext, &str, &str) + Send + Sync>;

impl RunContext {
    /// A context for one attempt.
    pub fn new(
        run_id: impl Into<Arc<str>>,
        asset: impl Into<crate::spec::AssetKey>,
        partition: Option<String>,
        attempt: u32,
    ) -> Self {
        Self { run_id: run_id.into(), asset: asset.into(), partition, attempt, ..Self::default() }
    }

    /// The capability of type `C` bound to this asset (`ctx.capability::<dyn TableStore>()`).
    ///
    /// # Errors
    /// A permanent [`RunError`] when the asset did not require `C` (the message names the
    /// asset and the `requires:` entry to add).
    pub fn capability<C: ?Sized + CapabilityType>(&self) -> Result<Arc<C>, RunError> {
        self.capabilities.get::<C>().ok_or_else(|| {
            RunError::permanent(
                crate::capability::NotRequired { asset: self.asset.to_string(), cap_type: C::NAME }.to_string(),
            )
        })
    }

    /// Whether this attempt must stop (a timeout, or the run was cancelled).
    pub fn is_cancelled(&self) -> bool {
        self.cancel.is_cancelled()
    }

    /// This step's mark for the warehouse: a write carrying it is applied once per run step
    /// (see [`StepMark`](crate::data::StepMark)).
    pub fn step_mark(&self) -> crate::data::StepMark {
        crate::data::StepMark {
            run_id: self.run_id.to_string(),
            asset: self.asset.to_string(),
            partition: self.partition.clone(),
            attempt: self.attempt,
        }
    }

    /// The attempt's stop signal, for engines that check it while a statement runs
    /// (`engine.execute_until(sql, &ctx.stop_signal())`).
    pub fn stop_signal(&self) -> crate::data::StopSignal {
        let token = self.cancel.clone();
        Arc::new(move || token.is_cancelled())
    }

    /// Logs a line as a `telemetry.log` event of this asset (`level`: debug, info, warn, error).
    pub fn log(&self, level: &str, message: &str) {
        if let Some(sink) = &self.log_sink {
            sink(self, level, message);
        }
    }

    /// Reports a request to an outside system: a `source.request` event of this asset on the
    /// run's hook bus.
    pub fn request(&self, request: SourceRequest) {
        if let Some(sink) = &self.event_sink {
            sink(self, request);
        }
    }
}

impl fmt::Debug for RunContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RunContext")
            .field("run_id", &self.run_id)
            .field("asset", &self.asset)
            .field("partition", &self.partition)
            .field("attempt", &self.attempt)
            .finish_non_exhaustive()
    }
}

/// Why a run failed, and whether trying again could help.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct RunError {
    /// What happened.
    pub message: String,
    /// Whether the retry policy may try again (`false`: "do not retry").
    pub retryable: bool,
    /// The stable code of the failure (reports show `PHLO-E100` when none is set).
    pub code: Option<crate::diagnostic::Code>,
}

impl RunError {
    /// A failure the retry policy may retry.
    pub fn new(message: impl Into<String>) -> Self {
        Self { message: message.into(), retryable: true, code: None }
    }

    /// A failure that retrying cannot fix (bad input, a missing file).
    pub fn permanent(message: impl Into<String>) -> Self {
        Self { message: message.into(), retryable: false, code: None }
    }

    /// Sets the failure's stable code (`Code::SqlFailed`, …).
    #[must_use]
    pub fn with_code(mut self, code: crate::diagnostic::Code) -> Self {
        self.code = Some(code);
        self
    }
}

/// What a successful run reports.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct MaterializeResult {
    /// Metadata about what was produced (`row_count`, paths, …).
    pub metadata: BTreeMap<String, serde_json::Value>,
    /// A version of the data, when the asset can tell (a hash, a snapshot id).
    pub data_version: Option<String>,
}

impl MaterializeResult {
    /// An empty result.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records the row count.
    #[must_use]
    pub fn with_row_count(self, rows: u64) -> Self {
        self.with_metadata("row_count", rows)
    }

    /// Records what a write did: its row count and, when an earlier attempt of the same run
    /// step had committed it (nothing written now), `committed_by_attempt`.
    #[must_use]
    pub fn with_written(self, written: &crate::data::Written) -> Self {
        let r = self.with_row_count(written.rows());
        match written {
            crate::data::Written::Rows(_) => r,
            crate::data::Written::Versioned { version, .. } => r.with_data_version(version.as_str()),
            crate::data::Written::Already(c) => {
                r.with_metadata("committed_by_attempt", c.attempt).with_metadata("committed_at", c.at.as_str())
            }
        }
    }

    /// Adds a metadata entry.
    #[must_use]
    pub fn with_metadata(mut self, key: impl Into<String>, value: impl Into<serde_json::Value>) -> Self {
        self.metadata.insert(key.into(), value.into());
        self
    }

    /// Sets the data version.
    #[must_use]
    pub fn with_data_version(mut self, version: impl Into<String>) -> Self {
        self.data_version = Some(version.into());
        self
    }

    /// The row count, when recorded.
    pub fn row_count(&self) -> Option<u64> {
        self.metadata.get("row_count").and_then(serde_json::Value::as_u64)
    }
}

/// Materializes an asset. The future runs on the executor's async workers: blocking work
/// (files, SQL, programs) belongs on a blocking thread (`tokio::task::spawn_blocking`), and a
/// timeout or cancellation is noticed when the future yields — long work watches
/// [`RunContext::cancel`] or hands [`RunContext::stop_signal`] to its engine.
pub trait AssetRun: Send + Sync {
    /// Runs one attempt.
    fn run(&self, ctx: RunContext) -> BoxFuture<'static, Result<MaterializeResult, RunError>>;
}

impl<F, Fut> AssetRun for F
where
    F: Fn(RunContext) -> Fut + Send + Sync,
    Fut: Future<Output = Result<MaterializeResult, RunError>> + Send + 'static,
{
    fn run(&self, ctx: RunContext) -> BoxFuture<'static, Result<MaterializeResult, RunError>> {
        Box::pin(self(ctx))
    }
}

/// A shared run function.
#[derive(Clone)]
pub struct RunFn(pub Arc<dyn AssetRun>);

/// Observes what an asset reads from outside phlo (its files) for a partition: a version
/// that changes when that does (a content hash), or why it cannot be read. Blocking.
#[derive(Clone)]
pub struct ObserveFn(pub Arc<ObserveSource>);

/// The tables of an asset's dependencies (asset key → table), filled by the project loader
/// once every asset is built: a run function that reads an upstream asset's table (a REST
/// substream reads its parent's records) asks here instead of deriving the name from the key,
/// which a `table:` setting would make wrong.
#[derive(Clone, Default)]
pub struct DepTables(Arc<std::sync::OnceLock<BTreeMap<String, String>>>);

impl DepTables {
    /// The table of dependency `key`, once the project is loaded.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get().and_then(|m| m.get(key)).map(String::as_str)
    }

    /// Sets the tables (the loader does, once).
    pub fn fill(&self, tables: BTreeMap<String, String>) {
        let _ = self.0.set(tables);
    }
}

impl fmt::Debug for DepTables {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.0.get().into_iter().flatten()).finish()
    }
}

/// Checks that what an asset reads from is reachable and accepts its credentials
/// (`phlo validate --probe`): what was checked, or why it failed. Blocking.
#[derive(Clone)]
pub struct ProbeFn(pub Arc<ProbeCheck>);

/// The function inside a [`ProbeFn`].
pub type ProbeCheck = dyn Fn() -> Result<String, String> + Send + Sync;

impl fmt::Debug for ProbeFn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ProbeFn")
    }
}

/// The function inside an [`ObserveFn`]: partition in, source version (or why not) out.
pub type ObserveSource = dyn Fn(Option<&str>) -> Result<String, String> + Send + Sync;

impl fmt::Debug for ObserveFn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ObserveFn")
    }
}

impl fmt::Debug for RunFn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RunFn")
    }
}

#[cfg(test)]
mod tests {
    use super::CancelToken;

    #[test]
    fn a_child_is_cancelled_with_its_parent_but_not_the_other_way() {
        let run = CancelToken::new();
        let attempt = run.child();
        attempt.cancel();
        assert!(!run.is_cancelled());
        let next = run.child();
        let many: Vec<CancelToken> = (0..200).map(|_| run.child()).collect();
        run.cancel();
        assert!(next.is_cancelled() && many.iter().all(CancelToken::is_cancelled));
        assert!(run.child().is_cancelled(), "a child of a cancelled token starts cancelled");
    }

    #[test]
    fn a_blocking_wait_ends_at_its_deadline_or_at_once_when_cancelled() {
        use std::time::{Duration, Instant};
        let token = CancelToken::new();
        let started = Instant::now();
        assert!(!token.wait_until(started + Duration::from_millis(30)));
        assert!(started.elapsed() >= Duration::from_millis(30));
        let (waiter, canceller) = (token.child(), token.clone());
        let cancel_at = Instant::now();
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            canceller.cancel();
        });
        assert!(waiter.wait_until(cancel_at + Duration::from_secs(30)), "woken by the cancellation");
        assert!(cancel_at.elapsed() < Duration::from_secs(5));
        t.join().unwrap();
        assert!(token.wait_until(Instant::now() + Duration::from_secs(30)), "already cancelled: no wait");
    }
}
