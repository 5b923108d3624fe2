//! The run store (capability `run_store`): every lifecycle event of every run, recorded by a
//! synchronous hook as the hooks see it, and what the events add up to — runs, their steps
//! (asset × partition) and check results — for `phlo runs`.
//!
//! A provider records each [`Event`] in order and makes what it holds durable at every step
//! boundary (an asset's end or skip, a run's start and end): a process killed at any point
//! leaves every finished step recorded. A run that was recorded as running but whose process
//! is gone is marked `interrupted` by [`RunStore::interrupt_stale`], which the next run (or
//! `phlo runs`) calls with the runs that are live (their claims held).

use serde::Serialize;

use crate::hooks::Event;

/// What went wrong with the store, for the user: the store's file, the problem, the fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct StoreError {
    /// What is wrong (names the store's file).
    pub message: String,
    /// How to fix it.
    pub help: Option<String>,
}

impl StoreError {
    /// An error without advice.
    pub fn new(message: impl Into<String>) -> Self {
        Self { message: message.into(), help: None }
    }

    /// An error with advice.
    pub fn with_help(message: impl Into<String>, help: impl Into<String>) -> Self {
        Self { message: message.into(), help: Some(help.into()) }
    }
}

/// One run as stored.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoredRun {
    /// Its id.
    pub run_id: String,
    /// `running`, `succeeded`, `failed`, `cancelled` or `interrupted`.
    pub status: String,
    /// The selection it was started with.
    pub selection: Option<String>,
    /// The partitions it was started with: a key or `FIRST..LAST` (none: each asset's latest).
    pub partitions: Option<String>,
    /// The instant it was evaluated at (RFC 3339): which partitions were complete.
    pub evaluated_at: Option<String>,
    /// Its run tags.
    pub tags: std::collections::BTreeMap<String, String>,
    /// How many asset × partition steps it covers.
    pub steps: u64,
    /// Who started it, and where: `user@host`, process id.
    pub started_by: String,
    /// The process that ran it.
    pub pid: u32,
    /// When it started (RFC 3339).
    pub started_at: String,
    /// When it ended, if it did.
    pub ended_at: Option<String>,
    /// How long it took, if it ended.
    pub duration_ms: Option<u64>,
    /// Count of steps per outcome.
    pub summary: std::collections::BTreeMap<String, u64>,
}

/// One asset × partition step of a run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoredStep {
    /// The asset.
    pub asset_key: String,
    /// The partition, if any.
    pub partition: Option<String>,
    /// `running`, `succeeded`, `failed`, `skipped`, `cancelled` or `interrupted`.
    pub status: String,
    /// Attempts made.
    pub attempts: u32,
    /// When it started.
    pub started_at: Option<String>,
    /// How long it took.
    pub duration_ms: Option<u64>,
    /// The error, when it failed; the reason, when it was skipped.
    pub error: Option<String>,
    /// What it reported (row counts, the table, …).
    pub metadata: serde_json::Value,
    /// Its code version, when it succeeded.
    pub code_version: Option<String>,
    /// The version of the data it wrote, when it succeeded.
    pub data_version: Option<String>,
}

/// One check result of a run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoredCheck {
    /// The asset.
    pub asset_key: String,
    /// The partition, if any.
    pub partition: Option<String>,
    /// The check's name.
    pub name: String,
    /// Whether it passed.
    pub passed: bool,
    /// The whole result as the `quality.result` event carried it (severity, counts, samples).
    pub result: serde_json::Value,
}

/// One run with its steps (in key order) and check results (in the order they came).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunDetail {
    /// The run.
    pub run: StoredRun,
    /// Its asset × partition steps.
    pub steps: Vec<StoredStep>,
    /// Its check results.
    pub checks: Vec<StoredCheck>,
}

/// A step (asset key, partition).
pub type StepKey = (String, Option<String>);

impl StoredCheck {
    /// Whether this result gates downstream: a blocking `error` check that did not pass
    /// (one that could not run cannot vouch for the data either).
    pub fn blocks(&self) -> bool {
        !self.passed && self.result["blocking"] == serde_json::Value::Bool(true) && self.result["severity"] == "error"
    }
}

impl RunDetail {
    /// The latest result of each check of each step: a step run again (a resume, another
    /// attempt) evaluates its checks again, and only the latest result stands.
    pub fn latest_checks(&self) -> Vec<&StoredCheck> {
        let mut latest: std::collections::BTreeMap<(&str, Option<&str>, &str), &StoredCheck> =
            std::collections::BTreeMap::new();
        for c in &self.checks {
            latest.insert((c.asset_key.as_str(), c.partition.as_deref(), c.name.as_str()), c);
        }
        latest.into_values().collect()
    }

    /// The steps that are complete: they succeeded (or were left unchanged) **and** no
    /// latest result of their blocking checks blocks. A resume runs every other step again —
    /// a step whose write committed writes nothing twice, and its checks are evaluated again
    /// on the data as it stands, so a failed gate can never be walked around.
    pub fn complete_steps(&self) -> std::collections::BTreeSet<StepKey> {
        let gated: std::collections::BTreeSet<(&str, Option<&str>)> = self
            .latest_checks()
            .into_iter()
            .filter(|c| c.blocks())
            .map(|c| (c.asset_key.as_str(), c.partition.as_deref()))
            .collect();
        self.steps
            .iter()
            .filter(|s| matches!(s.status.as_str(), "succeeded" | "skipped_unchanged"))
            .filter(|s| !gated.contains(&(s.asset_key.as_str(), s.partition.as_deref())))
            .map(|s| (s.asset_key.clone(), s.partition.clone()))
            .collect()
    }
}

/// Where runs are kept. Implementations are shared by the run's threads.
pub trait RunStore: Send + Sync {
    /// Records one event (in the order the bus delivers them). Durable when it returns for
    /// the events that end a step or start or end a run.
    ///
    /// # Errors
    /// The store cannot be written.
    fn record(&self, event: &Event) -> Result<(), StoreError>;

    /// Marks runs recorded as running whose process is gone (`live` says no) as
    /// `interrupted`, with their unfinished steps; returns their ids.
    ///
    /// # Errors
    /// The store cannot be read or written.
    fn interrupt_stale(&self, live: &dyn Fn(&str) -> bool) -> Result<Vec<String>, StoreError>;

    /// Runs, newest first, optionally only those with `status`, at most `limit`.
    ///
    /// # Errors
    /// The store cannot be read.
    fn runs(&self, status: Option<&str>, limit: usize) -> Result<Vec<StoredRun>, StoreError>;

    /// One run with its steps and check results, or `None` when no run has this id.
    ///
    /// # Errors
    /// The store cannot be read.
    fn run(&self, run_id: &str) -> Result<Option<RunDetail>, StoreError>;

    /// Every event of a run, in order, as the hooks saw them (JSON).
    ///
    /// # Errors
    /// The store cannot be read.
    fn events(&self, run_id: &str) -> Result<Vec<serde_json::Value>, StoreError>;

    /// An asset's steps across runs, newest first, at most `limit`: each with its run id.
    ///
    /// # Errors
    /// The store cannot be read.
    fn history(&self, asset_key: &str, limit: usize) -> Result<Vec<(String, StoredStep)>, StoreError>;

    /// Deletes finished runs (with their steps, checks and events) beyond the newest `keep`,
    /// and those that started before `before`; a running run is never deleted. Returns how
    /// many were deleted.
    ///
    /// # Errors
    /// The store cannot be written.
    fn prune(&self, keep: Option<usize>, before: Option<chrono::DateTime<chrono::Utc>>) -> Result<usize, StoreError>;

    /// The latest successful materialization of every partition of these assets (all assets
    /// when `None`). Pruning runs keeps them.
    ///
    /// # Errors
    /// The store cannot be read.
    fn materializations(&self, keys: Option<&[String]>) -> Result<super::versions::Stored, StoreError>;
}

crate::capability!(dyn RunStore = "run_store");
