//! Asset specs: what an asset is, what it depends on and what it needs.
//!
//! Asset providers return [`AssetSpec`]s; declarative assets in phlo.yaml become specs
//! through the asset type they name.
//!
//! ```
//! use phlo_core::spec::{AssetKind, AssetSpec};
//! let spec = AssetSpec::new("marts.revenue")
//!     .with_kind(AssetKind::Transform)
//!     .with_dep("staging.orders")
//!     .with_requirement("query_engine");
//! assert_eq!(spec.deps, ["staging.orders"]);
//! ```

pub mod check;
pub mod localtime;
pub mod partition;
pub mod retry;
pub mod run;
pub mod window;

use std::collections::BTreeMap;
use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use check::{
    CheckFn, CheckOutcome, CheckResult, CheckRun, CheckSpec, Finding, MAX_SAMPLES, MAX_SAMPLES_SQL, Severity, Threshold,
};
pub use partition::{Granularity, PartitionError, PartitionSpec, TimePartitions};
pub use retry::{Backoff, RetryPolicy};
pub use run::{
    AssetRun, BoxFuture, CancelToken, DepTables, EventSink, LogSink, MaterializeResult, ObserveFn, ProbeFn, RunContext,
    RunError, RunFn, SourceRequest,
};

use crate::source::Spanned;

/// The keys every `assets.<key>` entry of phlo.yaml has beside its type's own config.
pub const ASSET_COMMON_KEYS: &[&str] = &[
    "type",
    "deps",
    "group",
    "description",
    "kind",
    "tags",
    "metadata",
    "partitions",
    "retries",
    "timeout",
    "checks",
    "external",
    "requires",
    "capability_overrides",
    "code_version",
];

/// What kind of work an asset is; it decides which lifecycle events it emits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum AssetKind {
    /// Brings data in (`ingestion.start` / `ingestion.end`).
    Ingestion,
    /// Derives data from other assets (`transform.start` / `transform.end`).
    #[default]
    Transform,
    /// Sends data out (`publish.start` / `publish.end`).
    Publish,
    /// Anything else.
    Other,
}

impl AssetKind {
    /// The lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            AssetKind::Ingestion => "ingestion",
            AssetKind::Transform => "transform",
            AssetKind::Publish => "publish",
            AssetKind::Other => "other",
        }
    }
}

/// An asset key such as `raw.orders`: a string that keeps up to 24 bytes inline, so most
/// keys and deps need no allocation of their own.
pub type AssetKey = compact_str::CompactString;

/// One asset: a table, file or model that phlo materializes.
#[derive(Debug, Clone, Default, Serialize)]
pub struct AssetSpec {
    /// Dotted key, e.g. `raw.orders`.
    pub key: AssetKey,
    /// Group for display and selection (`group:x`).
    pub group: Option<String>,
    /// What the asset holds.
    pub description: Option<String>,
    /// Kind of work.
    pub kind: AssetKind,
    /// Free-form tags (`tag:k=v` selects on them).
    pub tags: BTreeMap<String, String>,
    /// Static metadata shown in listings.
    pub metadata: BTreeMap<String, serde_json::Value>,
    /// Keys of the assets this one reads.
    pub deps: Vec<AssetKey>,
    /// Capability requirements (`type` or `type:name`), checked before anything runs.
    pub requires: Vec<String>,
    /// Per-asset provider choices: capability type → provider name.
    pub capability_overrides: BTreeMap<String, Spanned<String>>,
    /// Declared but produced outside phlo (deps on it are not errors; it never runs).
    pub external: bool,
    /// Version of the code that produces it.
    pub code_version: Option<String>,
    /// How the asset is partitioned.
    pub partitions: PartitionSpec,
    /// The column of its table that tags each row with its partition key, when the asset
    /// writes its partitions into one table (a partitioned SQL model: `partition_key`);
    /// checks of one partition read only that partition's rows through it.
    pub partition_column: Option<String>,
    /// Materializes it (none for external assets and for specs only listed).
    #[serde(skip)]
    pub run: Option<RunFn>,
    /// Observes its source (what it reads from outside phlo): `--skip-unchanged` and
    /// `phlo status` compare the version with the last materialization's.
    #[serde(skip)]
    pub observe: Option<ObserveFn>,
    /// Its dependencies' tables, filled when the project is loaded.
    #[serde(skip)]
    pub dep_tables: DepTables,
    /// What keeps it from running in this environment though its definition is sound — a
    /// secret whose variable is not set here — as (config key, message, fix): `phlo validate`
    /// reports them as errors and a run that selects the asset refuses to start, while
    /// commands and runs that do not use it go on.
    #[serde(skip)]
    pub unresolved: Vec<(String, String, String)>,
    /// Checks its source is reachable with its credentials (`phlo validate --probe`).
    #[serde(skip)]
    pub probe: Option<ProbeFn>,
    /// Longest one attempt may take.
    pub timeout: Option<Duration>,
    /// How failed attempts are retried.
    pub retry: RetryPolicy,
    /// Quality checks run after it.
    pub checks: Vec<CheckSpec>,
    /// The tables its SQL reads, as the asset type found them: phlo infers dependencies from
    /// them and reports a table no asset writes.
    pub reads: Vec<TableRef>,
    /// The config key holding that SQL (`sql`, `query`), to locate errors.
    pub reads_field: Option<String>,
    /// The deps phlo added because the SQL reads their tables (a subset of `deps`).
    pub inferred_deps: Vec<AssetKey>,
    /// The columns of what it writes, when they can be known before it runs.
    pub columns: Columns,
    /// The columns its SQL names, when the SQL is simple enough to resolve them (one SELECT
    /// over plain tables).
    pub column_refs: Option<ColumnRefs>,
}

/// The columns a SQL statement names, and the tables they can come from.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ColumnRefs {
    /// `(name or alias, table)` of every table in `FROM`/`JOIN`.
    pub tables: Vec<(String, String)>,
    /// Names given in the SELECT list (`expr AS name`), which `ORDER BY` may use.
    pub aliases: Vec<String>,
    /// Every column named: `(qualifier, column, line, column number)` inside the SQL.
    pub refs: Vec<(Option<String>, String, u32, u32)>,
}

/// What phlo knows of an asset's columns before it runs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub enum Columns {
    /// Not knowable before it runs (a JSON Lines file, an expression without a name).
    #[default]
    Unknown,
    /// These columns (a CSV header, a SELECT list).
    Known(Vec<String>),
    /// All the columns of a table (`SELECT * FROM t`), then these.
    AllOf(String, Vec<String>),
}

/// A table named in an asset's SQL.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TableRef {
    /// The name as written, parts joined with `.`: `raw_orders`, `main.raw_orders`, `raw.orders`.
    pub name: String,
    /// Line and column of the name inside the SQL (1-based; 0 when unknown).
    pub line: u32,
    /// See `line`.
    pub column: u32,
}

impl AssetSpec {
    /// A spec with a key and defaults for everything else.
    pub fn new(key: impl Into<AssetKey>) -> Self {
        Self { key: key.into(), ..Self::default() }
    }

    /// Sets the kind.
    #[must_use]
    pub fn with_kind(mut self, kind: AssetKind) -> Self {
        self.kind = kind;
        self
    }

    /// Sets the group.
    #[must_use]
    pub fn with_group(mut self, group: impl Into<String>) -> Self {
        self.group = Some(group.into());
        self
    }

    /// Sets the description.
    #[must_use]
    pub fn with_description(mut self, description: impl Into<String>) -> Self {
        self.description = Some(description.into());
        self
    }

    /// Adds a dependency.
    #[must_use]
    pub fn with_dep(mut self, key: impl Into<AssetKey>) -> Self {
        self.deps.push(key.into());
        self
    }

    /// Adds a capability requirement (`type` or `type:name`).
    #[must_use]
    pub fn with_requirement(mut self, requirement: impl Into<String>) -> Self {
        self.requires.push(requirement.into());
        self
    }

    /// Requires the capability type `C` (any provider; the resolver picks one).
    #[must_use]
    pub fn require<C: ?Sized + crate::capability::CapabilityType>(mut self) -> Self {
        self.requires.push(C::NAME.to_string());
        self
    }

    /// Adds a tag.
    #[must_use]
    pub fn with_tag(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.tags.insert(key.into(), value.into());
        self
    }

    /// Sets the run function.
    #[must_use]
    pub fn with_run(mut self, run: impl AssetRun + 'static) -> Self {
        self.run = Some(RunFn(std::sync::Arc::new(run)));
        self
    }

    /// Sets how its source is probed (see [`ProbeFn`]).
    #[must_use]
    pub fn with_probe(mut self, probe: impl Fn() -> Result<String, String> + Send + Sync + 'static) -> Self {
        self.probe = Some(ProbeFn(std::sync::Arc::new(probe)));
        self
    }

    /// Sets how its source is observed (see [`ObserveFn`]).
    #[must_use]
    pub fn with_observe(
        mut self,
        observe: impl Fn(Option<&str>) -> Result<String, String> + Send + Sync + 'static,
    ) -> Self {
        self.observe = Some(ObserveFn(std::sync::Arc::new(observe)));
        self
    }

    /// Sets the partitions.
    #[must_use]
    pub fn with_partitions(mut self, partitions: PartitionSpec) -> Self {
        self.partitions = partitions;
        self
    }

    /// Sets the retry policy.
    #[must_use]
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// Sets the per-attempt timeout.
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Adds a check.
    #[must_use]
    pub fn with_check(mut self, check: CheckSpec) -> Self {
        self.checks.push(check);
        self
    }

    /// Marks the asset external: produced outside phlo, never run.
    #[must_use]
    pub fn external(mut self) -> Self {
        self.external = true;
        self
    }

    /// Adds a metadata entry.
    #[must_use]
    pub fn with_metadata(mut self, key: impl Into<String>, value: impl Into<serde_json::Value>) -> Self {
        self.metadata.insert(key.into(), value.into());
        self
    }
}
