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

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::config::Spanned;

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

/// One asset: a table, file or model that phlo materializes.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct AssetSpec {
    /// Dotted key, e.g. `raw.orders`.
    pub key: String,
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
    pub deps: Vec<String>,
    /// Capability requirements (`type` or `type:name`), checked before anything runs.
    pub requires: Vec<String>,
    /// Per-asset provider choices: capability type → provider name.
    pub capability_overrides: BTreeMap<String, Spanned<String>>,
    /// Declared but produced outside phlo (deps on it are not errors; it never runs).
    pub external: bool,
    /// Version of the code that produces it.
    pub code_version: Option<String>,
}

impl AssetSpec {
    /// A spec with a key and defaults for everything else.
    pub fn new(key: impl Into<String>) -> Self {
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
    pub fn with_dep(mut self, key: impl Into<String>) -> Self {
        self.deps.push(key.into());
        self
    }

    /// Adds a capability requirement (`type` or `type:name`).
    #[must_use]
    pub fn with_requirement(mut self, requirement: impl Into<String>) -> Self {
        self.requires.push(requirement.into());
        self
    }

    /// Adds a tag.
    #[must_use]
    pub fn with_tag(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.tags.insert(key.into(), value.into());
        self
    }

    /// Adds a metadata entry.
    #[must_use]
    pub fn with_metadata(mut self, key: impl Into<String>, value: impl Into<serde_json::Value>) -> Self {
        self.metadata.insert(key.into(), value.into());
        self
    }
}
