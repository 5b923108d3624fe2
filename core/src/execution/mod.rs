//! What an orchestrator adapter is asked to run, and what it reports.
//!
//! [`Project::prepare_run`](crate::project::Project::prepare_run) turns a loaded project
//! and the user's options (selection, partitions, concurrency, tags) into a [`RunRequest`]:
//! the graph, the selected assets, every asset's bound capabilities (checks are built into
//! the specs) and the hook bus. An adapter executes it and returns a [`RunReport`]. Nothing
//! here depends on an async runtime.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::capability::CapabilityMap;
use crate::graph::AssetGraph;
use crate::hooks::HookBus;
pub use crate::spec::CancelToken;
use crate::spec::Severity;

/// Which partitions a run covers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PartitionRequest {
    /// One partition key.
    Key(String),
    /// A backfill: every key from the first to the second, both included.
    Range(String, String),
}

/// The capabilities bound to each asset.
#[derive(Default)]
pub struct RunResources {
    per_asset: HashMap<String, Arc<CapabilityMap>>,
}

impl std::fmt::Debug for RunResources {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunResources").field("assets", &self.per_asset.len()).finish()
    }
}

impl RunResources {
    /// The capabilities of `asset` (empty when it requires none).
    pub fn for_asset(&self, asset: &str) -> Arc<CapabilityMap> {
        self.per_asset.get(asset).cloned().unwrap_or_default()
    }

    /// Sets the capabilities of `asset`.
    pub fn insert(&mut self, asset: &str, capabilities: CapabilityMap) {
        self.per_asset.insert(asset.to_string(), Arc::new(capabilities));
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
    /// Resolved capabilities per asset.
    pub resources: Arc<RunResources>,
    /// Cancels the run.
    pub cancel: CancelToken,
    /// Seed of the retry jitter: the same seed gives the same delays.
    pub seed: u64,
    /// The instant the run is evaluated at: which partitions are complete ("latest").
    pub now: DateTime<Utc>,
    /// Set when an external orchestrator retries: each step makes exactly this one attempt,
    /// numbered so (its retry policy is the orchestrator's).
    pub attempt: Option<u32>,
    /// Steps (asset key, partition) an earlier attempt of this run completed: left out, and
    /// their dependents run as if they had just succeeded (`phlo run --resume`).
    pub done: Arc<std::collections::BTreeSet<(String, Option<String>)>>,
    /// Partitions chosen per asset, replacing `partitions` for those assets: `stale()` runs
    /// every stale partition of a partitioned asset.
    pub partition_keys: HashMap<u32, Vec<String>>,
    /// The data versions the run reads and produces, when a run store records them; with
    /// `skip_unchanged`, steps whose versions equal their last success are left out (`phlo
    /// run --skip-unchanged`).
    pub versions: Option<Arc<Versions>>,
}

impl PartitionRequest {
    /// `KEY` or `FIRST..LAST`, as `--partition` / `--partition-range` take them.
    pub fn to_arg(&self) -> String {
        match self {
            PartitionRequest::Key(k) => k.clone(),
            PartitionRequest::Range(a, b) => format!("{a}..{b}"),
        }
    }

    /// Reads [`PartitionRequest::to_arg`]'s text back.
    pub fn from_arg(text: &str) -> Self {
        match text.split_once("..") {
            Some((a, b)) if !a.is_empty() && !b.is_empty() => PartitionRequest::Range(a.into(), b.into()),
            _ => PartitionRequest::Key(text.to_string()),
        }
    }
}

/// What a rendering adapter renders: the project, resolved.
#[derive(Debug, Clone)]
pub struct ExportRequest {
    /// The project's name (`name:`), if any.
    pub project_name: Option<String>,
    /// The project directory, absolute.
    pub project_dir: std::path::PathBuf,
    /// The project's assets.
    pub graph: Arc<AssetGraph>,
    /// Enabled and disabled schedules, in name order.
    pub schedules: Vec<ScheduleExport>,
    /// The phlo version that exports.
    pub phlo_version: String,
}

/// One schedule, resolved for export.
#[derive(Debug, Clone, Serialize)]
pub struct ScheduleExport {
    /// Its name.
    pub name: String,
    /// The crontab line (macros expanded by the engine as by phlo).
    pub cron: String,
    /// IANA timezone.
    pub timezone: String,
    /// The selected asset keys, in key order.
    pub assets: Vec<String>,
    /// The partition template, if any (`{yesterday}`).
    pub partition: Option<String>,
    /// Whether it fires.
    pub enabled: bool,
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
    /// It did not run: its code and inputs equal those of its last success
    /// (`--skip-unchanged`); its data is that success's.
    SkippedUnchanged,
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
    /// The stable code of that error (`PHLO-E101` for a timeout, …; see docs/errors.md).
    pub code: Option<crate::diagnostic::Code>,
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
    /// Why it could not run, when it could not.
    pub error: Option<String>,
    /// Up to 5 violating rows.
    pub samples: Vec<serde_json::Value>,
    /// What else the check reported (`row_count`, its bounds, `newest`, …).
    pub metadata: BTreeMap<String, serde_json::Value>,
}

impl CheckRow {
    /// Whether this check failed the run: a blocking `error` check that did not pass
    /// (a check that could not run cannot vouch for the data either).
    pub fn blocks(&self) -> bool {
        !self.passed && self.blocking && self.severity == Severity::Error
    }
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
        self.assets.iter().any(|a| a.status == AssetStatus::Failed) || self.checks.iter().any(CheckRow::blocks)
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
    /// `--at`: evaluate "now" at this instant (which partitions are complete); else the clock.
    pub at: Option<DateTime<Utc>>,
    /// `--run-id`: the run's id, given by an external orchestrator (else a fresh one).
    pub run_id: Option<String>,
    /// `--attempt`: one attempt per step, numbered so (an external orchestrator retries).
    pub attempt: Option<u32>,
    /// `--resume`: the steps an earlier attempt of this run completed.
    pub done: std::collections::BTreeSet<(String, Option<String>)>,
    /// `--skip-unchanged`: leave out steps whose code and input versions equal their last
    /// success's (needs the run store).
    pub skip_unchanged: bool,
}

/// The steps a run makes of one asset: one for an unpartitioned asset (`None`); for a
/// partitioned one its latest complete partition without a request, else the requested key
/// or every key of the requested range.
pub fn step_partitions(
    spec: &crate::spec::AssetSpec,
    partitions: Option<&PartitionRequest>,
    now: DateTime<Utc>,
) -> Vec<Option<String>> {
    match (partitions, spec.partitions.is_partitioned()) {
        (_, false) => vec![None],
        (None, true) => vec![spec.partitions.latest(now)],
        (Some(PartitionRequest::Key(k)), true) => vec![Some(k.clone())],
        (Some(PartitionRequest::Range(x, y)), true) => {
            spec.partitions.range(x, y, now).unwrap_or_default().into_iter().map(Some).collect()
        }
    }
}

impl RunRequest {
    /// The partitions node `asset` runs for in this run (`[None]` when it is not partitioned).
    pub fn partitions_of(&self, asset: u32) -> Vec<Option<String>> {
        let spec = &self.graph.node(asset).spec;
        match self.partition_keys.get(&asset) {
            Some(keys) if spec.partitions.is_partitioned() => keys.iter().cloned().map(Some).collect(),
            _ => step_partitions(spec, self.partitions.as_ref(), self.now),
        }
    }

    /// Every step of the run that is not done already: (asset key, partition), external
    /// assets left out.
    pub fn steps(&self) -> Vec<(String, Option<String>)> {
        let mut out = Vec::new();
        for &a in &self.selected {
            let spec = &self.graph.node(a).spec;
            if spec.external {
                continue;
            }
            for p in self.partitions_of(a) {
                let step = (spec.key.to_string(), p);
                if !self.done.contains(&step) {
                    out.push(step);
                }
            }
        }
        out
    }
}

/// A fresh run id: time-ordered and unique enough for one machine.
pub fn new_run_id() -> String {
    let now = Utc::now();
    let rand = crate::hooks::Event::id_for(crate::hooks::EventType::RunStart, &crate::hooks::Correlation::default());
    format!("{}-{}", now.format("%Y%m%dT%H%M%S"), &rand.to_string()[..8])
}

pub mod store;
pub mod versions;
pub use store::{RunDetail, RunStore, StoreError, StoredCheck, StoredRun, StoredStep};
pub use versions::{Materialization, Versions};
