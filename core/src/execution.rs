//! What an orchestrator adapter is asked to run, and what it reports.
//!
//! [`prepare`] turns a loaded project and the user's options (selection, partitions,
//! concurrency, tags) into a [`RunRequest`]: the graph, the selected assets, every asset's
//! resolved resources, the quality providers and the hook bus. An adapter executes it and
//! returns a [`RunReport`]. Nothing here depends on an async runtime.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::capability::Capability;
use crate::diagnostic::{Code, Diagnostic, Diagnostics};
use crate::graph::{AssetGraph, Selection};
use crate::hooks::{HookBus, bus_for_project};
use crate::plugin::{Instance, PluginKind, QualityCheckProvider, Resource};
use crate::project::Project;
use crate::spec::Severity;

/// Cooperative cancellation: set once, seen by every clone.
#[derive(Clone, Default)]
pub struct CancelToken {
    inner: Arc<CancelInner>,
}

#[derive(Default)]
struct CancelInner {
    flag: AtomicBool,
    event: event_listener::Event,
}

impl std::fmt::Debug for CancelToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CancelToken").field("cancelled", &self.is_cancelled()).finish()
    }
}

impl CancelToken {
    /// A token that is not cancelled.
    pub fn new() -> Self {
        Self::default()
    }

    /// Cancels: running work is told to stop, nothing new starts.
    pub fn cancel(&self) {
        self.inner.flag.store(true, Ordering::SeqCst);
        self.inner.event.notify(usize::MAX);
    }

    /// Whether it was cancelled.
    pub fn is_cancelled(&self) -> bool {
        self.inner.flag.load(Ordering::SeqCst)
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
}

/// Which partitions a run covers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PartitionRequest {
    /// One partition key.
    Key(String),
    /// A backfill: every key from the first to the second, both included.
    Range(String, String),
}

/// Resources per asset: capability type → resource.
#[derive(Default)]
pub struct RunResources {
    per_asset: HashMap<String, Arc<BTreeMap<String, Resource>>>,
}

impl std::fmt::Debug for RunResources {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunResources").field("assets", &self.per_asset.len()).finish()
    }
}

impl RunResources {
    /// Resources for `asset` (empty when it requires none).
    pub fn for_asset(&self, asset: &str) -> Arc<BTreeMap<String, Resource>> {
        self.per_asset.get(asset).cloned().unwrap_or_default()
    }

    /// Adds a resource (tests and embedders).
    pub fn insert(&mut self, asset: &str, cap_type: &str, resource: Resource) {
        let entry = self.per_asset.entry(asset.to_string()).or_default();
        Arc::make_mut(entry).insert(cap_type.to_string(), resource);
    }
}

/// Everything an adapter needs to run.
#[derive(Debug)]
pub struct RunRequest {
    /// The run's id.
    pub run_id: String,
    /// The project's assets.
    pub graph: Arc<AssetGraph>,
    /// The nodes to run, in key order.
    pub selected: Vec<u32>,
    /// The selection text, for events and reports.
    pub selection: Option<String>,
    /// Partitions, for partitioned assets.
    pub partitions: Option<PartitionRequest>,
    /// Most assets running at once.
    pub concurrency: usize,
    /// Run tags.
    pub tags: BTreeMap<String, String>,
    /// The hook bus.
    pub bus: Arc<HookBus>,
    /// Resolved resources per asset.
    pub resources: Arc<RunResources>,
    /// Quality providers, for the assets' checks.
    pub quality: Vec<Arc<dyn QualityCheckProvider>>,
    /// Cancels the run.
    pub cancel: CancelToken,
    /// Seed of the retry jitter: the same seed gives the same delays.
    pub seed: u64,
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Every asset succeeded and no blocking check failed.
    Succeeded,
    /// An asset failed or a blocking check failed.
    Failed,
    /// It was cancelled.
    Cancelled,
}

/// How one asset (partition) ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AssetStatus {
    /// It ran and succeeded.
    Succeeded,
    /// It failed (after its retries).
    Failed,
    /// It did not run: an upstream failed or a blocking check failed.
    Skipped,
    /// The run was cancelled before or while it ran.
    Cancelled,
}

/// One asset (partition) in the report.
#[derive(Debug, Clone, Serialize)]
pub struct AssetOutcome {
    /// The asset.
    pub key: String,
    /// The partition.
    pub partition: Option<String>,
    /// How it ended.
    pub status: AssetStatus,
    /// Attempts made (0 when it never ran).
    pub attempts: u32,
    /// Time spent, all attempts included.
    pub duration_ms: u64,
    /// The error, or why it was skipped.
    pub error: Option<String>,
    /// What the run function reported.
    pub metadata: BTreeMap<String, serde_json::Value>,
}

/// One check in the report.
#[derive(Debug, Clone, Serialize)]
pub struct CheckRow {
    /// The asset.
    pub asset: String,
    /// The partition.
    pub partition: Option<String>,
    /// The check.
    pub name: String,
    /// Whether it passed.
    pub passed: bool,
    /// `passed`, `failed` or `could_not_run`.
    pub outcome: String,
    /// Its severity.
    pub severity: Severity,
    /// Whether it is blocking.
    pub blocking: bool,
    /// Violating rows.
    pub violations: u64,
    /// Rows examined.
    pub total: u64,
}

/// What a run did.
#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    /// The run's id.
    pub run_id: String,
    /// How it ended.
    pub status: RunStatus,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// How long it took.
    pub duration_ms: u64,
    /// Every asset (partition), in the order they finished.
    pub assets: Vec<AssetOutcome>,
    /// Every check result.
    pub checks: Vec<CheckRow>,
}

impl RunReport {
    /// Whether an asset failed or a blocking check failed (exit code 4).
    pub fn has_failures(&self) -> bool {
        self.assets.iter().any(|a| a.status == AssetStatus::Failed)
            || self.checks.iter().any(|c| !c.passed && c.blocking && c.severity == Severity::Error)
    }
}

/// The user's options for a run.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// `--select`.
    pub select: Option<String>,
    /// `--partition` / `--partition-range`.
    pub partitions: Option<PartitionRequest>,
    /// `--concurrency` (else `executor.concurrency`, else the number of CPUs).
    pub concurrency: Option<usize>,
    /// `--tag`.
    pub tags: BTreeMap<String, String>,
    /// Retry-jitter seed (else derived from the run id).
    pub seed: Option<u64>,
}

/// A fresh run id: time-ordered and unique enough for one machine.
pub fn new_run_id() -> String {
    let now = Utc::now();
    let rand = crate::hooks::Event::id_for(crate::hooks::EventType::RunStart, &crate::hooks::Correlation::default());
    format!("{}-{}", now.format("%Y%m%dT%H%M%S"), &rand.to_string()[..8])
}

/// Builds a run request from a loaded project. The project must have loaded without errors.
///
/// # Errors
/// A selection that does not parse or matches nothing (exit 2); a partition that a selected
/// asset does not have, or a partitioned asset without `--partition` (exit 3); resources that
/// cannot be created; hooks that cannot be set up.
pub fn prepare(project: &Project, options: &RunOptions) -> Result<RunRequest, Diagnostics> {
    let graph = &project.graph;
    let selected = match &options.select {
        Some(text) => Selection::parse(text)
            .and_then(|s| s.select(graph))
            .map_err(|e| Diagnostics::from(e.to_diagnostic(text)))?,
        None => (0..graph.len() as u32).collect(),
    };
    let mut diags = Diagnostics::new();
    for &i in &selected {
        let spec = &graph.node(i).spec;
        if spec.external || !spec.partitions.is_partitioned() {
            continue;
        }
        let check = match &options.partitions {
            // without --partition a run takes each partitioned asset's latest partition
            None if spec.partitions.latest(Utc::now()).is_none() => {
                Err(String::from("none of its partitions has begun yet; pass --partition KEY"))
            }
            None => Ok(()),
            Some(PartitionRequest::Key(k)) => spec.partitions.check_key(k).map_err(|e| e.to_string()),
            Some(PartitionRequest::Range(a, b)) => spec.partitions.range(a, b).map(drop).map_err(|e| e.to_string()),
        };
        if let Err(e) = check {
            diags.push(
                Diagnostic::error(Code::InvalidPartitions, format!("asset `{}`: {e}", spec.key))
                    .with_help(format!("its partitions: {}", spec.partitions)),
            );
        }
    }
    if diags.has_errors() {
        return Err(diags);
    }

    // Resources: every asset requirement that resolved, served by its provider.
    let mut resources = RunResources::default();
    for row in &project.report.rows {
        let (Some(asset), Some(cap), Some(provider)) =
            (row.required_by.strip_prefix("asset "), row.resolved_to.as_deref(), row.provider.as_deref())
        else {
            continue;
        };
        let Ok(capability) = Capability::parse(cap) else { continue };
        let served = match project.registry.get_or_create(PluginKind::ResourceProvider, provider) {
            Ok(Instance::Resource(p)) => p.resource(&capability).map_err(|e| e.to_string()),
            Ok(_) => continue, // a capability provided by another kind of plugin has no resource object
            Err(e) => Err(e.to_string()),
        };
        match served {
            Ok(r) => resources.insert(asset, capability.cap_type(), r),
            Err(e) => diags.push(
                Diagnostic::error(Code::PluginFailed, format!("`{cap}` for asset `{asset}` could not be created: {e}"))
                    .with_help(format!(
                        "check `resources.{provider}` in phlo.yaml (`phlo validate --probe` checks it)"
                    )),
            ),
        }
    }
    let mut quality = Vec::new();
    for e in project.registry.list().iter().filter(|e| e.kind() == PluginKind::QualityCheckProvider && e.is_enabled()) {
        if let Ok(Instance::Quality(q)) = project.registry.get_or_create(PluginKind::QualityCheckProvider, e.name()) {
            quality.push(q);
        }
    }
    let bus = match bus_for_project(project) {
        Ok(b) => Some(b),
        Err(d) => {
            diags.extend(d);
            None
        }
    };
    if diags.has_errors() {
        return Err(diags);
    }
    let run_id = new_run_id();
    let seed = options.seed.unwrap_or_else(|| {
        run_id.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3))
    });
    let concurrency = options
        .concurrency
        .or(project.config.executor.concurrency.map(|c| c as usize))
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(4, std::num::NonZero::get))
        .max(1);
    Ok(RunRequest {
        run_id,
        graph: Arc::clone(&project.graph),
        selected,
        selection: options.select.clone(),
        partitions: options.partitions.clone(),
        concurrency,
        tags: options.tags.clone(),
        bus: Arc::new(bus.unwrap_or_else(HookBus::empty)),
        resources: Arc::new(resources),
        quality,
        cancel: CancelToken::new(),
        seed,
    })
}
