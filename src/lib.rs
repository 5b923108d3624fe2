//! phlo: a compile-time plugin core for data pipelines.
//!
//! This facade is the one file that knows which plugin crates exist: each is an optional
//! dependency behind a cargo feature and is linked by one `use … as _;` line below. (A
//! crate nothing references is not linked, and its `inventory::submit!` registrations
//! silently vanish; the `unused_crate_dependencies` guard and the test at the bottom keep
//! the list honest.)
//!
//! The command line lives in [`cli`]; libraries embedding phlo use [`phlo_core`] and
//! [`load_options`].
#![cfg_attr(not(test), deny(unused_crate_dependencies))]

pub mod cli;

pub use phlo_core;
use phlo_core::project::{FeatureHint, LoadOptions};

// the `phlo` binary's allocator (src/main.rs), not used by the library itself
use mimalloc as _;

// ---- the link list: one line per plugin crate ----
#[cfg(feature = "adapter-dagster")]
use phlo_adapter_dagster as _;
#[cfg(feature = "adapter-local")]
use phlo_adapter_local as _;
#[cfg(feature = "hook-console")]
use phlo_hook_console as _;
#[cfg(feature = "adapter-dagster")]
use phlo_hook_dagster_pipes as _;
#[cfg(feature = "hook-jsonl")]
use phlo_hook_jsonl as _;
#[cfg(feature = "plugin-echo")]
use phlo_plugin_echo as _;
#[cfg(feature = "plugin-files")]
use phlo_plugin_files as _;
#[cfg(feature = "plugin-http")]
use phlo_plugin_http as _;
#[cfg(feature = "plugin-quality")]
use phlo_plugin_quality as _;
#[cfg(feature = "plugin-sqlite")]
use phlo_plugin_sqlite as _;

/// What each plugin feature of this package adds, for "enable feature X" hints. Keep it in
/// step with the link list above (the tests check both directions).
pub const FEATURES: &[FeatureHint] = &[
    FeatureHint {
        feature: "adapter-dagster",
        crate_name: "phlo-adapter-dagster",
        enabled: cfg!(feature = "adapter-dagster"),
        plugins: &["dagster"],
        capabilities: &[],
        asset_types: &[],
    },
    FeatureHint {
        feature: "adapter-dagster",
        crate_name: "phlo-hook-dagster-pipes",
        enabled: cfg!(feature = "adapter-dagster"),
        plugins: &["dagster_pipes"],
        capabilities: &[],
        asset_types: &[],
    },
    FeatureHint {
        feature: "adapter-local",
        crate_name: "phlo-adapter-local",
        enabled: cfg!(feature = "adapter-local"),
        plugins: &["local"],
        capabilities: &[],
        asset_types: &[],
    },
    FeatureHint {
        feature: "plugin-echo",
        crate_name: "phlo-plugin-echo",
        enabled: cfg!(feature = "plugin-echo"),
        plugins: &["echo", "echo_rows"],
        capabilities: &["echo_store:echo"],
        asset_types: &["echo"],
    },
    FeatureHint {
        feature: "plugin-sqlite",
        crate_name: "phlo-plugin-sqlite",
        enabled: cfg!(feature = "plugin-sqlite"),
        plugins: &["sqlite", "sqlite_runs"],
        capabilities: &["table_store:sqlite", "query_engine:sqlite", "run_store:sqlite_runs"],
        asset_types: &[],
    },
    FeatureHint {
        feature: "plugin-files",
        crate_name: "phlo-plugin-files",
        enabled: cfg!(feature = "plugin-files"),
        plugins: &["csv", "jsonl", "sql", "export", "command"],
        capabilities: &[],
        asset_types: &["csv", "jsonl", "sql", "export", "command"],
    },
    FeatureHint {
        feature: "plugin-http",
        crate_name: "phlo-plugin-http",
        enabled: cfg!(feature = "plugin-http"),
        plugins: &["rest"],
        capabilities: &[],
        asset_types: &["rest"],
    },
    FeatureHint {
        feature: "plugin-quality",
        crate_name: "phlo-plugin-quality",
        enabled: cfg!(feature = "plugin-quality"),
        plugins: &["not_null", "unique", "accepted_values", "range", "row_count", "freshness", "sql"],
        capabilities: &[],
        asset_types: &[],
    },
    FeatureHint {
        feature: "hook-console",
        crate_name: "phlo-hook-console",
        enabled: cfg!(feature = "hook-console"),
        plugins: &["console"],
        capabilities: &[],
        asset_types: &[],
    },
    FeatureHint {
        feature: "hook-jsonl",
        crate_name: "phlo-hook-jsonl",
        enabled: cfg!(feature = "hook-jsonl"),
        plugins: &["jsonl"],
        capabilities: &[],
        asset_types: &[],
    },
];

/// Options for [`phlo_core::project::Project::load`] with this build's feature hints.
pub fn load_options() -> LoadOptions {
    LoadOptions { feature_hints: FEATURES, ..LoadOptions::default() }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use phlo_core::plugin::PluginKind;

    use super::*;

    /// Every compiled plugin crate registered exactly the plugins its feature promises, and
    /// a feature that is off contributes nothing.
    #[test]
    fn every_compiled_plugin_crate_registered_its_descriptors() {
        let descriptors = phlo_core::plugin::compiled_descriptors();
        for hint in FEATURES {
            let names: BTreeSet<&str> =
                descriptors.iter().filter(|d| d.crate_name == hint.crate_name).map(|d| d.name).collect();
            let promised = if hint.enabled { hint.plugins.iter().copied().collect() } else { BTreeSet::new() };
            assert_eq!(names, promised, "feature `{}`", hint.feature);
        }
    }

    /// Every compiled descriptor belongs to some feature's crate.
    #[test]
    fn the_feature_table_covers_every_compiled_plugin() {
        for d in phlo_core::plugin::compiled_descriptors() {
            assert!(
                FEATURES.iter().any(|h| h.crate_name == d.crate_name && h.plugins.contains(&d.name)),
                "plugin `{}` of crate `{}` is missing from FEATURES",
                d.name,
                d.crate_name
            );
        }
    }

    /// The capabilities and asset types a feature promises are the ones its plugins declare.
    #[test]
    fn feature_hints_match_the_descriptors() {
        let descriptors = phlo_core::plugin::compiled_descriptors();
        for hint in FEATURES.iter().filter(|h| h.enabled) {
            let mine: Vec<_> = descriptors.iter().filter(|d| d.crate_name == hint.crate_name).collect();
            let caps: BTreeSet<String> = mine.iter().flat_map(|d| d.capabilities()).collect();
            let types: BTreeSet<&str> =
                mine.iter().filter(|d| d.kind() == PluginKind::AssetType).map(|d| d.name).collect();
            assert_eq!(caps, hint.capabilities.iter().map(|c| (*c).to_string()).collect(), "{}", hint.feature);
            assert_eq!(types, hint.asset_types.iter().copied().collect(), "{}", hint.feature);
        }
    }

    #[cfg(not(feature = "plugin-echo"))]
    #[test]
    fn echo_is_absent_without_its_feature() {
        assert!(!phlo_core::plugin::compiled_descriptors().iter().any(|d| d.name == "echo"));
    }

    /// A new project shows only its own assets: the default build defines none.
    #[cfg(all(feature = "default", not(feature = "plugin-echo")))]
    #[test]
    fn the_default_build_defines_no_assets_of_its_own() {
        let kinds: BTreeSet<PluginKind> = phlo_core::plugin::compiled_descriptors().iter().map(|d| d.kind()).collect();
        assert!(!kinds.contains(&PluginKind::AssetProvider), "{kinds:?}");
    }
}
