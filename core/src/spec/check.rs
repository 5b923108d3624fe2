//! Quality checks: what to check ([`CheckSpec`]) and what was found ([`CheckResult`]).
//!
//! Severity and blocking are separate: an `error` check that is `blocking` gates the
//! assets downstream when it fails; a `warn` check never does. "The check could not run"
//! (a missing column, a broken query) is an outcome of its own, distinct from "the check
//! found problems".

use std::collections::BTreeMap;

use serde::Serialize;

/// How serious a failing check is.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Default,
    Serialize,
    serde::Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// For information only.
    Info,
    /// Worth a look; never blocks.
    Warn,
    /// A real problem; blocks downstream when the check is blocking.
    #[default]
    Error,
}

/// When a check passes.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Threshold {
    /// At most this many violating rows.
    MaxViolations(u64),
    /// At most this fraction of rows violating (0.0–1.0).
    MaxRate(f64),
}

impl Default for Threshold {
    fn default() -> Self {
        Threshold::MaxViolations(0)
    }
}

impl Threshold {
    /// Whether `violations` out of `total` pass.
    pub fn passes(self, violations: u64, total: u64) -> bool {
        match self {
            Threshold::MaxViolations(m) => violations <= m,
            Threshold::MaxRate(r) => total == 0 || (violations as f64 / total as f64) <= r,
        }
    }
}

/// A check declared on an asset.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CheckSpec {
    /// Unique among the asset's checks.
    pub name: String,
    /// The check kind a quality provider runs (`not_null`, `unique`, `sql`, …).
    pub kind: String,
    /// How serious a failure is.
    pub severity: Severity,
    /// Whether a failure gates downstream assets (only for `error` severity).
    pub blocking: bool,
    /// When it passes.
    pub threshold: Threshold,
    /// What it checks.
    pub description: Option<String>,
    /// The kind's own settings (`column: id`, …).
    pub config: serde_json::Value,
}

impl CheckSpec {
    /// A blocking `error` check of `kind` that allows no violations.
    pub fn new(name: impl Into<String>, kind: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            kind: kind.into(),
            severity: Severity::Error,
            blocking: true,
            threshold: Threshold::default(),
            description: None,
            config: serde_json::Value::Null,
        }
    }
}

/// What happened when a check ran.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case", tag = "status", content = "error")]
pub enum CheckOutcome {
    /// Within the threshold.
    Passed,
    /// Found more problems than the threshold allows.
    Failed,
    /// Could not be evaluated (the error says why).
    CouldNotRun(String),
}

/// The result of one check on one asset (and partition).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CheckResult {
    /// The check's name.
    pub check: String,
    /// The asset checked.
    pub asset: String,
    /// What happened.
    pub outcome: CheckOutcome,
    /// The check's severity.
    pub severity: Severity,
    /// Whether the check is blocking.
    pub blocking: bool,
    /// Violating rows.
    pub violations: u64,
    /// Rows examined.
    pub total: u64,
    /// `violations / total` (0 when nothing was examined).
    pub rate: f64,
    /// The threshold applied.
    pub threshold: Threshold,
    /// Up to a few violating rows.
    pub samples: Vec<serde_json::Value>,
    /// Anything else the check reports.
    pub metadata: BTreeMap<String, serde_json::Value>,
}

/// Most sample rows a result keeps.
pub const MAX_SAMPLES: usize = 5;
/// [`MAX_SAMPLES`] for SQL `LIMIT` clauses.
pub const MAX_SAMPLES_SQL: u32 = 5;

impl CheckResult {
    /// A result from counts: passes or fails by the spec's threshold.
    pub fn from_counts(spec: &CheckSpec, asset: &str, violations: u64, total: u64) -> Self {
        let outcome =
            if spec.threshold.passes(violations, total) { CheckOutcome::Passed } else { CheckOutcome::Failed };
        Self {
            check: spec.name.clone(),
            asset: asset.to_string(),
            outcome,
            severity: spec.severity,
            blocking: spec.blocking,
            violations,
            total,
            rate: if total == 0 { 0.0 } else { violations as f64 / total as f64 },
            threshold: spec.threshold,
            samples: Vec::new(),
            metadata: BTreeMap::new(),
        }
    }

    /// A result for a check that could not run.
    pub fn could_not_run(spec: &CheckSpec, asset: &str, error: impl Into<String>) -> Self {
        Self { outcome: CheckOutcome::CouldNotRun(error.into()), ..Self::from_counts(spec, asset, 0, 0) }
    }

    /// Adds sample rows (at most [`MAX_SAMPLES`] are kept).
    #[must_use]
    pub fn with_samples(mut self, samples: impl IntoIterator<Item = serde_json::Value>) -> Self {
        self.samples = samples.into_iter().take(MAX_SAMPLES).collect();
        self
    }

    /// Whether the check passed.
    pub fn passed(&self) -> bool {
        self.outcome == CheckOutcome::Passed
    }

    /// Whether this result gates downstream assets: a blocking `error` check that did not
    /// pass (a check that could not run cannot vouch for the data either).
    pub fn blocks(&self) -> bool {
        self.blocking && self.severity == Severity::Error && !self.passed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severity_and_blocking_are_separate() {
        let mut spec = CheckSpec::new("ids", "not_null");
        let r = CheckResult::from_counts(&spec, "a", 2, 10);
        assert!(!r.passed() && r.blocks());
        assert!((r.rate - 0.2).abs() < 1e-9);
        spec.severity = Severity::Warn;
        assert!(!CheckResult::from_counts(&spec, "a", 2, 10).blocks());
        spec.severity = Severity::Error;
        spec.blocking = false;
        assert!(!CheckResult::from_counts(&spec, "a", 2, 10).blocks());
    }

    #[test]
    fn thresholds_and_could_not_run() {
        let mut spec = CheckSpec::new("ids", "not_null");
        spec.threshold = Threshold::MaxRate(0.25);
        assert!(CheckResult::from_counts(&spec, "a", 2, 10).passed());
        assert!(!CheckResult::from_counts(&spec, "a", 3, 10).passed());
        let r = CheckResult::could_not_run(&spec, "a", "no column `id`");
        assert_eq!(r.outcome, CheckOutcome::CouldNotRun("no column `id`".into()));
        assert!(r.blocks());
        let r = CheckResult::from_counts(&spec, "a", 9, 10).with_samples((0..9).map(serde_json::Value::from));
        assert_eq!(r.samples.len(), MAX_SAMPLES);
    }
}
