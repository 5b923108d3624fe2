//! Quality checks: what to check ([`CheckSpec`]) and what was found ([`CheckResult`]).
//!
//! Severity and blocking are separate: an `error` check that is `blocking` gates the
//! assets downstream when it fails; a `warn` check never does. "The check could not run"
//! (a missing column, a broken query) is an outcome of its own, distinct from "the check
//! found problems".

use std::collections::BTreeMap;

use serde::Serialize;

use super::run::RunContext;

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

/// What a check found: violating rows out of the rows examined, with a few samples.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Finding {
    /// Violating rows.
    pub violations: u64,
    /// Rows examined.
    pub total: u64,
    /// Up to a few violating rows.
    pub samples: Vec<serde_json::Value>,
    /// Anything else worth reporting (`row_count`, `newest`, …).
    pub metadata: BTreeMap<String, serde_json::Value>,
}

impl Finding {
    /// `violations` out of `total`.
    pub fn new(violations: u64, total: u64) -> Self {
        Self { violations, total, ..Self::default() }
    }

    /// Adds sample rows (at most [`MAX_SAMPLES`] are kept).
    #[must_use]
    pub fn with_samples(mut self, samples: impl IntoIterator<Item = serde_json::Value>) -> Self {
        self.samples = samples.into_iter().take(MAX_SAMPLES).collect();
        self
    }

    /// Adds a metadata entry.
    #[must_use]
    pub fn with_metadata(mut self, key: impl Into<String>, value: impl Into<serde_json::Value>) -> Self {
        self.metadata.insert(key.into(), value.into());
        self
    }
}

/// A built check: its kind's typed config, ready to run after the asset materialized.
/// `Err` means the check could not run (a missing column, a broken query) — never that it
/// found problems.
pub trait CheckRun: Send + Sync {
    /// Evaluates the check for one asset (partition).
    ///
    /// # Errors
    /// Why the check could not be evaluated.
    fn evaluate(&self, ctx: &RunContext) -> Result<Finding, String>;

    /// The tables the check reads besides its asset's own, each with the config key it is
    /// written in: they become dependencies of the asset (the check runs after them), and one
    /// no asset writes is an error when the project loads.
    fn reads(&self) -> Vec<(&'static str, crate::spec::TableRef)> {
        Vec::new()
    }
}

/// A shared, built check.
#[derive(Clone)]
pub struct CheckFn(pub std::sync::Arc<dyn CheckRun>);

impl std::fmt::Debug for CheckFn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CheckFn")
    }
}

impl PartialEq for CheckFn {
    fn eq(&self, other: &Self) -> bool {
        std::sync::Arc::ptr_eq(&self.0, &other.0)
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
    /// The kind's own settings (`column: id`, …), as written.
    pub config: serde_json::Value,
    /// The check built from its kind's typed config (set when the project loads).
    #[serde(skip)]
    pub run: Option<CheckFn>,
    /// Where it is written (`phlo.yaml:12:9`), for messages at run time.
    pub location: Option<String>,
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
            run: None,
            location: None,
        }
    }

    /// Sets the kind's own settings (read with the kind's typed config when the project loads).
    #[must_use]
    pub fn with_config(mut self, config: serde_json::Value) -> Self {
        self.config = config;
        self
    }

    /// Runs the built check and judges its finding by this spec's threshold. A panic inside
    /// the check is caught and reported as "could not run".
    pub fn evaluate(&self, ctx: &RunContext) -> CheckResult {
        let Some(run) = &self.run else {
            return CheckResult::could_not_run(self, &ctx.asset, format!("the `{}` check was never built", self.kind));
        };
        let found = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run.0.evaluate(ctx)))
            .unwrap_or_else(|p| Err(format!("the check panicked: {}", crate::diagnostic::panic_message(p.as_ref()))));
        match found {
            Ok(f) => {
                let mut r = CheckResult::from_counts(self, &ctx.asset, f.violations, f.total).with_samples(f.samples);
                r.metadata = f.metadata;
                r
            }
            Err(e) => match &self.location {
                Some(at) => CheckResult::could_not_run(self, &ctx.asset, format!("{e} (the check is at {at})")),
                None => CheckResult::could_not_run(self, &ctx.asset, e),
            },
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
