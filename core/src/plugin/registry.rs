//! The registry: every provider of this process, built once, constructed lazily.
//!
//! * Deterministic: entries are sorted by (kind, name, crate) — `inventory`'s order changes
//!   between builds.
//! * A duplicate name within a kind is an error naming both crates.
//! * `plugins.allow` / `plugins.deny` filter by name; deny wins.
//! * A factory that errors or panics is recorded and the rest load; with `strict` the
//!   first such failure is returned as an error.
//! * [`RegistryBuilder`] registers providers by hand (tests, embedders) with the same checks.
//!
//! ```
//! use phlo_core::plugin::{NoConfig, Plugin, PluginContext, PluginError, PluginKind, Registry, Resource};
//! struct Mem;
//! impl Plugin for Mem { const NAME: &'static str = "mem"; const DESCRIPTION: &'static str = "Memory"; type Config = NoConfig; }
//! impl Resource for Mem {
//!     fn create(_: NoConfig, _: &PluginContext) -> Result<Self, PluginError> { Ok(Mem) }
//! }
//!
//! let registry = Registry::builder()
//!     .register(phlo_core::descriptor!(resource Mem, provides: []))
//!     .build()
//!     .unwrap();
//! assert!(registry.is_available(PluginKind::ResourceProvider, "mem"));
//! assert!(registry.get_or_create(PluginKind::ResourceProvider, "mem").is_ok());
//! ```

use std::collections::HashMap;
use std::ops::Deref;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use serde::Serialize;

use super::{Instance, PluginContext, PluginDescriptor, PluginError, PluginKind, compiled_descriptors};
use crate::capability::resolver::ProviderIndexError;
use crate::capability::{
    Capability, CapabilityResolver, CapabilityType, ProviderEntry, Requirement, RequirementError, is_snake_case,
};
use crate::diagnostic::{Code, Diagnostic, SourceFile};
use crate::source::Node;

/// Which plugins a project lets in.
#[derive(Debug, Clone, Default)]
pub struct PluginFilter {
    /// When set, only these plugin names are enabled.
    pub allow: Option<Vec<String>>,
    /// These plugin names are disabled (wins over `allow`).
    pub deny: Vec<String>,
    /// A failing factory is an error instead of a recorded failure.
    pub strict: bool,
}

impl PluginFilter {
    /// Why `name` is disabled, or `None` when it is enabled.
    pub fn disabled_reason(&self, name: &str) -> Option<&'static str> {
        if self.deny.iter().any(|d| d == name) {
            Some("listed in plugins.deny")
        } else if self.allow.as_ref().is_some_and(|a| !a.iter().any(|x| x == name)) {
            Some("not listed in plugins.allow")
        } else {
            None
        }
    }
}

/// A problem with the set of registered plugins.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum RegistryError {
    /// Two plugins of one kind share a name.
    #[error("two {kind} plugins are named `{name}`: one in crate `{}`, one in crate `{}`", crates[0], crates[1])]
    DuplicateName {
        /// The kind.
        kind: PluginKind,
        /// The shared name.
        name: String,
        /// Both crates, sorted.
        crates: [String; 2],
    },
    /// A plugin name that is not lower snake_case.
    #[error("plugin name `{name}` (crate `{crate_name}`) is not lower snake_case")]
    BadName {
        /// The name.
        name: String,
        /// The crate.
        crate_name: String,
    },
    /// A `requires` / `optional` / `provides` entry that does not parse.
    #[error("plugin `{plugin}` (crate `{crate_name}`) declares a malformed capability in `{field}`: {error}")]
    MalformedCapability {
        /// The plugin.
        plugin: String,
        /// Its crate.
        crate_name: String,
        /// `requires`, `optional` or `provides`.
        field: &'static str,
        /// What is wrong.
        error: RequirementError,
    },
    /// Two enabled plugins provide the same capability, or one provides a malformed one.
    #[error("{0}")]
    Capability(ProviderIndexError),
    /// No plugin of that kind and name.
    #[error("no {kind} named `{name}`")]
    NotFound {
        /// The kind.
        kind: PluginKind,
        /// The name.
        name: String,
    },
    /// The plugin is disabled by `plugins.allow` / `plugins.deny`.
    #[error("{kind} `{name}` is disabled ({reason})")]
    Disabled {
        /// The kind.
        kind: PluginKind,
        /// The name.
        name: String,
        /// Why.
        reason: &'static str,
    },
    /// The plugin's factory failed or panicked.
    #[error("{kind} `{name}` (crate `{crate_name}`) failed to load: {error}")]
    Failed {
        /// The kind.
        kind: PluginKind,
        /// The name.
        name: String,
        /// The crate.
        crate_name: String,
        /// What went wrong.
        error: PluginError,
    },
}

impl RegistryError {
    /// The diagnostic for this error.
    pub fn to_diagnostic(&self) -> Diagnostic {
        let (code, help) = match self {
            RegistryError::DuplicateName { .. } => (
                Code::DuplicatePlugin,
                "rename one of them, or build without one of the two crates (disable its cargo feature)",
            ),
            RegistryError::BadName { .. } => {
                (Code::DuplicatePlugin, "plugin names are lower snake_case: a-z, 0-9, `_`")
            }
            RegistryError::MalformedCapability { .. } => {
                (Code::MalformedRequirement, "write capabilities as `type` or `type:name`, both lower snake_case")
            }
            RegistryError::Capability(ProviderIndexError::Duplicate { .. }) => {
                (Code::DuplicatePlugin, "disable one of the two with `plugins.deny` in phlo.yaml")
            }
            RegistryError::Capability(ProviderIndexError::Malformed { .. }) => {
                (Code::MalformedRequirement, "capability type names are lower snake_case")
            }
            RegistryError::NotFound { .. } => (Code::UnknownPlugin, "see `phlo plugins list` for what is compiled in"),
            RegistryError::Disabled { .. } => {
                (Code::UnknownPlugin, "remove it from `plugins.deny` or add it to `plugins.allow`")
            }
            RegistryError::Failed { .. } => {
                (Code::PluginFailed, "fix the plugin's configuration, or disable it with `plugins.deny` in phlo.yaml")
            }
        };
        let mut d = Diagnostic::error(code, self.to_string()).with_help(help);
        if let RegistryError::Failed { error: PluginError::Config(diags), .. } = self
            && let Some(first) = diags.iter().next()
        {
            d = Diagnostic::error(code, self.head())
                .at_location(first.location.clone())
                .with_help(first.help.clone().unwrap_or_else(|| help.to_string()))
                .with_note(first.message.clone());
        }
        d
    }

    fn head(&self) -> String {
        match self {
            RegistryError::Failed { kind, name, crate_name, .. } => {
                format!("{kind} `{name}` (crate `{crate_name}`) failed to load: invalid configuration")
            }
            other => other.to_string(),
        }
    }
}

enum Desc {
    Static(&'static PluginDescriptor),
    Owned(Box<PluginDescriptor>),
}

impl Deref for Desc {
    type Target = PluginDescriptor;
    fn deref(&self) -> &PluginDescriptor {
        match self {
            Desc::Static(d) => d,
            Desc::Owned(d) => d,
        }
    }
}

/// The state of one entry, for listings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "state", content = "reason")]
pub enum PluginStatus {
    /// Disabled by the project's allow/deny lists.
    Disabled(String),
    /// Enabled; not constructed yet.
    NotLoaded,
    /// Constructed.
    Loaded,
    /// Its factory failed or panicked.
    Failed(String),
}

/// One registered provider.
pub struct PluginEntry {
    desc: Desc,
    disabled: Option<&'static str>,
    context: PluginContext,
    instance: OnceLock<Result<Instance, PluginError>>,
}

impl std::fmt::Debug for PluginEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginEntry")
            .field("name", &self.desc.name)
            .field("kind", &self.desc.kind())
            .field("crate", &self.desc.crate_name)
            .field("status", &self.status())
            .finish()
    }
}

impl PluginEntry {
    /// The descriptor.
    pub fn descriptor(&self) -> &PluginDescriptor {
        &self.desc
    }

    /// The name.
    pub fn name(&self) -> &str {
        self.desc.name
    }

    /// The kind.
    pub fn kind(&self) -> PluginKind {
        self.desc.kind()
    }

    /// Whether allow/deny let it in.
    pub fn is_enabled(&self) -> bool {
        self.disabled.is_none()
    }

    /// Where it stands now.
    pub fn status(&self) -> PluginStatus {
        if let Some(r) = self.disabled {
            return PluginStatus::Disabled(r.to_string());
        }
        match self.instance.get() {
            None => PluginStatus::NotLoaded,
            Some(Ok(_)) => PluginStatus::Loaded,
            Some(Err(e)) => PluginStatus::Failed(e.to_string()),
        }
    }

    fn create(&self) -> &Result<Instance, PluginError> {
        self.instance.get_or_init(|| match catch_unwind(AssertUnwindSafe(|| self.desc.factory.create(&self.context))) {
            Ok(r) => r,
            Err(payload) => Err(PluginError::Panicked(super::panic_message(payload.as_ref()))),
        })
    }

    fn failure(&self, error: &PluginError) -> RegistryError {
        RegistryError::Failed {
            kind: self.kind(),
            name: self.desc.name.to_string(),
            crate_name: self.desc.crate_name.to_string(),
            error: error.clone(),
        }
    }
}

/// Registers providers and checks them; [`Registry::builder`] makes one.
#[derive(Default)]
pub struct RegistryBuilder {
    descs: Vec<Desc>,
    filter: PluginFilter,
    project_dir: PathBuf,
    allow_outside_project: bool,
    configs: HashMap<(PluginKind, String), Node>,
    source: Option<Arc<SourceFile>>,
}

impl std::fmt::Debug for RegistryBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryBuilder").field("plugins", &self.descs.len()).finish_non_exhaustive()
    }
}

impl RegistryBuilder {
    /// Adds every descriptor compiled into this binary.
    #[must_use]
    pub fn with_compiled(mut self) -> Self {
        self.descs.extend(compiled_descriptors().into_iter().map(Desc::Static));
        self
    }

    /// Adds a descriptor by hand.
    #[must_use]
    pub fn register(mut self, descriptor: PluginDescriptor) -> Self {
        self.descs.push(Desc::Owned(Box::new(descriptor)));
        self
    }

    /// Adds a `'static` descriptor by hand.
    #[must_use]
    pub fn register_static(mut self, descriptor: &'static PluginDescriptor) -> Self {
        self.descs.push(Desc::Static(descriptor));
        self
    }

    /// Sets the allow/deny/strict filter.
    #[must_use]
    pub fn filter(mut self, filter: PluginFilter) -> Self {
        self.filter = filter;
        self
    }

    /// Whether plugin paths may leave the project directory (`paths.allow_outside_project`).
    #[must_use]
    pub fn allow_outside_project(mut self, allow: bool) -> Self {
        self.allow_outside_project = allow;
        self
    }

    /// The directory plugin paths are relative to.
    #[must_use]
    pub fn project_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.project_dir = dir.into();
        self
    }

    /// Hands a plugin its config section.
    #[must_use]
    pub fn plugin_config(mut self, kind: PluginKind, name: &str, node: Node) -> Self {
        self.configs.insert((kind, name.to_string()), node);
        self
    }

    /// The file config sections came from.
    #[must_use]
    pub fn source(mut self, source: Arc<SourceFile>) -> Self {
        self.source = Some(source);
        self
    }

    /// Checks and freezes the registry.
    ///
    /// # Errors
    /// Every problem found: duplicate names (naming both crates), malformed names or
    /// capabilities, capabilities or asset types provided twice.
    pub fn build(mut self) -> Result<Registry, Vec<RegistryError>> {
        self.descs.sort_by(|a, b| (a.kind(), a.name, a.crate_name).cmp(&(b.kind(), b.name, b.crate_name)));
        let mut errors = Vec::new();
        for pair in self.descs.windows(2) {
            if pair[0].kind() == pair[1].kind() && pair[0].name == pair[1].name {
                errors.push(RegistryError::DuplicateName {
                    kind: pair[0].kind(),
                    name: pair[0].name.to_string(),
                    crates: [pair[0].crate_name.to_string(), pair[1].crate_name.to_string()],
                });
            }
        }
        for d in &self.descs {
            if !is_snake_case(d.name) {
                errors.push(RegistryError::BadName { name: d.name.to_string(), crate_name: d.crate_name.to_string() });
            }
            for (field, list) in [("requires", d.metadata.requires), ("optional", d.metadata.optional)] {
                for r in list {
                    if let Err(error) = Requirement::parse(r) {
                        errors.push(RegistryError::MalformedCapability {
                            plugin: d.name.to_string(),
                            crate_name: d.crate_name.to_string(),
                            field,
                            error,
                        });
                    }
                }
            }
            for c in d.capabilities() {
                if let Err(error) = Capability::parse(&c) {
                    errors.push(RegistryError::MalformedCapability {
                        plugin: d.name.to_string(),
                        crate_name: d.crate_name.to_string(),
                        field: "provides",
                        error,
                    });
                }
            }
        }

        let entries: Vec<PluginEntry> = self
            .descs
            .into_iter()
            .map(|desc| {
                let config = self.configs.remove(&(desc.kind(), desc.name.to_string()));
                PluginEntry {
                    disabled: self.filter.disabled_reason(desc.name),
                    context: PluginContext {
                        name: desc.name.to_string(),
                        project_dir: self.project_dir.clone(),
                        allow_outside_project: self.allow_outside_project,
                        config,
                        source: self.source.clone(),
                    },
                    desc,
                    instance: OnceLock::new(),
                }
            })
            .collect();

        let providers = entries
            .iter()
            .filter(|e| e.is_enabled())
            .flat_map(|e| e.desc.capabilities().map(|c| ProviderEntry::new(c, e.desc.name)).collect::<Vec<_>>());
        let resolver = match CapabilityResolver::new(providers) {
            Ok(r) => r,
            Err(e) => {
                // malformed entries were already reported above
                if matches!(e, ProviderIndexError::Duplicate { .. }) {
                    errors.push(RegistryError::Capability(e));
                }
                CapabilityResolver::default()
            }
        };
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(Registry { entries, resolver, strict: self.filter.strict })
    }
}

/// The frozen set of providers of one process or project.
pub struct Registry {
    entries: Vec<PluginEntry>,
    resolver: CapabilityResolver,
    strict: bool,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry").field("entries", &self.entries).finish_non_exhaustive()
    }
}

impl Registry {
    /// Starts a registry by hand.
    pub fn builder() -> RegistryBuilder {
        RegistryBuilder::default()
    }

    /// Every entry, sorted by (kind, name, crate), disabled ones included.
    pub fn list(&self) -> &[PluginEntry] {
        &self.entries
    }

    /// The entry of that kind and name.
    pub fn get(&self, kind: PluginKind, name: &str) -> Option<&PluginEntry> {
        // entries are sorted by (kind, name, crate) and names are unique per kind
        self.entries.binary_search_by(|e| (e.kind(), e.desc.name).cmp(&(kind, name))).ok().map(|i| &self.entries[i])
    }

    /// Entries with this name, of any kind.
    pub fn find(&self, name: &str) -> impl Iterator<Item = &PluginEntry> {
        self.entries.iter().filter(move |e| e.desc.name == name)
    }

    /// Whether the plugin exists, is enabled, and has not failed to construct.
    pub fn is_available(&self, kind: PluginKind, name: &str) -> bool {
        self.get(kind, name).is_some_and(|e| e.is_enabled() && !matches!(e.instance.get(), Some(Err(_))))
    }

    /// The shared instance, constructed on first use.
    ///
    /// # Errors
    /// Not found, disabled, or the factory failed (the failure is remembered).
    pub fn get_or_create(&self, kind: PluginKind, name: &str) -> Result<Instance, RegistryError> {
        let entry = self.get(kind, name).ok_or_else(|| RegistryError::NotFound { kind, name: name.to_string() })?;
        if let Some(reason) = entry.disabled {
            return Err(RegistryError::Disabled { kind, name: name.to_string(), reason });
        }
        entry.create().clone().map_err(|e| entry.failure(&e))
    }

    /// Constructs every enabled plugin. Failures are recorded and returned; the rest load.
    ///
    /// # Errors
    /// In strict mode, the first failure.
    pub fn load_all(&self) -> Result<Vec<RegistryError>, RegistryError> {
        let mut failures = Vec::new();
        for e in self.entries.iter().filter(|e| e.is_enabled()) {
            if let Err(err) = e.create() {
                let f = e.failure(err);
                if self.strict {
                    return Err(f);
                }
                failures.push(f);
            }
        }
        Ok(failures)
    }

    /// Whether factory failures are errors.
    pub fn is_strict(&self) -> bool {
        self.strict
    }

    /// The resolver over every enabled provider's capabilities.
    pub fn resolver(&self) -> &CapabilityResolver {
        &self.resolver
    }

    /// The capability `C` served by resource provider `provider` (constructed on first use).
    ///
    /// # Errors
    /// Not found, disabled, failed, or the provider does not serve `C`.
    pub fn capability<C: ?Sized + CapabilityType>(&self, provider: &str) -> Result<Arc<C>, RegistryError> {
        let kind = PluginKind::ResourceProvider;
        let Instance::Resource(object) = self.get_or_create(kind, provider)? else {
            return Err(RegistryError::NotFound { kind, name: provider.to_string() });
        };
        let entry =
            self.get(kind, provider).ok_or_else(|| RegistryError::NotFound { kind, name: provider.to_string() })?;
        entry
            .desc
            .provides
            .iter()
            .find(|p| p.cap_type == C::NAME)
            .and_then(|p| (p.serve)(&object))
            .and_then(|s| s.get::<C>())
            .ok_or_else(|| RegistryError::NotFound { kind, name: format!("{}:{provider}", C::NAME) })
    }

    /// Probes resource provider `provider` (`phlo validate --probe`).
    ///
    /// # Errors
    /// Not found, disabled, failed to construct, or what the probe found wrong.
    pub fn probe(&self, provider: &str) -> Result<(), PluginError> {
        let kind = PluginKind::ResourceProvider;
        let object = match self.get_or_create(kind, provider) {
            Ok(Instance::Resource(object)) => object,
            Ok(_) => return Ok(()),
            Err(e) => return Err(PluginError::msg(e.to_string())),
        };
        let Some(entry) = self.get(kind, provider) else { return Ok(()) };
        let super::Factory::Resource { probe, .. } = entry.desc.factory else { return Ok(()) };
        catch_unwind(AssertUnwindSafe(|| probe(&object)))
            .unwrap_or_else(|p| Err(PluginError::Panicked(super::panic_message(p.as_ref()))))
    }

    /// The enabled plugin of this kind and name.
    pub fn enabled(&self, kind: PluginKind, name: &str) -> Option<&PluginEntry> {
        self.get(kind, name).filter(|e| e.is_enabled())
    }

    /// Names of the enabled plugins of a kind, sorted.
    pub fn names(&self, kind: PluginKind) -> impl Iterator<Item = &'static str> + '_ {
        self.entries.iter().filter(move |e| e.kind() == kind && e.is_enabled()).map(|e| e.desc.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugin::{AssetProvider, NoConfig, Plugin, Resource};
    use crate::spec::AssetSpec;

    trait Thing: Send + Sync {}
    crate::capability!(dyn Thing = "thing");

    macro_rules! resource {
        ($ty:ident, $name:literal, $create:expr) => {
            struct $ty;
            impl Plugin for $ty {
                const NAME: &'static str = $name;
                const DESCRIPTION: &'static str = "test";
                type Config = NoConfig;
            }
            impl Resource for $ty {
                fn create(_: NoConfig, _: &PluginContext) -> Result<Self, PluginError> {
                    $create
                }
            }
            impl Thing for $ty {}
        };
    }
    resource!(Good, "good", Ok(Good));
    resource!(Bad, "bad", Err(PluginError::msg("cannot open the warehouse")));
    resource!(Wild, "wild", panic!("boom in factory"));
    resource!(Store, "store", Ok(Store));
    resource!(BadName, "Bad-Name", Ok(BadName));

    struct Listing;
    impl Plugin for Listing {
        const NAME: &'static str = "store";
        const DESCRIPTION: &'static str = "test";
        type Config = NoConfig;
    }
    impl AssetProvider for Listing {
        fn create(_: NoConfig, _: &PluginContext) -> Result<Self, PluginError> {
            Ok(Listing)
        }
        fn assets(&self) -> Result<Vec<AssetSpec>, PluginError> {
            Ok(Vec::new())
        }
    }

    fn in_crate(mut d: PluginDescriptor, krate: &'static str) -> PluginDescriptor {
        d.crate_name = krate;
        d
    }

    #[test]
    fn duplicate_names_in_a_kind_name_both_crates() {
        let errs = Registry::builder()
            .register(in_crate(crate::descriptor!(resource Store, provides: []), "crate-b"))
            .register(in_crate(crate::descriptor!(resource Store, provides: []), "crate-a"))
            .register(in_crate(crate::descriptor!(asset_provider Listing), "crate-c"))
            .build()
            .unwrap_err();
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert_eq!(
            errs[0].to_string(),
            "two resource_provider plugins are named `store`: one in crate `crate-a`, one in crate `crate-b`"
        );
        assert_eq!(errs[0].to_diagnostic().code, Code::DuplicatePlugin);
    }

    #[test]
    fn failing_and_panicking_factories_are_recorded_and_the_rest_load() {
        let r = Registry::builder()
            .register(in_crate(crate::descriptor!(resource Good, provides: []), "c"))
            .register(in_crate(crate::descriptor!(resource Bad, provides: []), "c"))
            .register(in_crate(crate::descriptor!(resource Wild, provides: []), "c"))
            .build()
            .unwrap();
        let failures = r.load_all().unwrap();
        let names: Vec<String> = failures.iter().map(ToString::to_string).collect();
        assert_eq!(
            names,
            [
                "resource_provider `bad` (crate `c`) failed to load: cannot open the warehouse",
                "resource_provider `wild` (crate `c`) failed to load: panicked: boom in factory",
            ]
        );
        assert!(r.is_available(PluginKind::ResourceProvider, "good"));
        assert!(!r.is_available(PluginKind::ResourceProvider, "wild"));
        assert_eq!(r.get(PluginKind::ResourceProvider, "good").unwrap().status(), PluginStatus::Loaded);
        // the failure is remembered, the factory is not run again
        assert!(matches!(r.get_or_create(PluginKind::ResourceProvider, "wild"), Err(RegistryError::Failed { .. })));
    }

    #[test]
    fn strict_mode_turns_a_failure_into_an_error() {
        let r = Registry::builder()
            .register(crate::descriptor!(resource Good, provides: []))
            .register(crate::descriptor!(resource Wild, provides: []))
            .filter(PluginFilter { strict: true, ..Default::default() })
            .build()
            .unwrap();
        let e = r.load_all().unwrap_err();
        assert!(e.to_string().contains("panicked: boom in factory"));
        assert_eq!(e.to_diagnostic().code, Code::PluginFailed);
    }

    #[test]
    fn deny_wins_over_allow() {
        let filter =
            PluginFilter { allow: Some(vec!["good".into(), "bad".into()]), deny: vec!["bad".into()], strict: false };
        let r = Registry::builder()
            .register(crate::descriptor!(resource Good, provides: []))
            .register(crate::descriptor!(resource Bad, provides: []))
            .register(crate::descriptor!(resource Store, provides: []))
            .filter(filter)
            .build()
            .unwrap();
        assert!(r.is_available(PluginKind::ResourceProvider, "good"));
        assert!(!r.is_available(PluginKind::ResourceProvider, "bad"));
        assert!(!r.is_available(PluginKind::ResourceProvider, "store"));
        assert_eq!(
            r.get(PluginKind::ResourceProvider, "bad").unwrap().status(),
            PluginStatus::Disabled("listed in plugins.deny".into())
        );
        assert!(matches!(r.get_or_create(PluginKind::ResourceProvider, "store"), Err(RegistryError::Disabled { .. })));
        assert!(matches!(r.get_or_create(PluginKind::ResourceProvider, "nope"), Err(RegistryError::NotFound { .. })));
    }

    #[test]
    fn instances_are_shared_singletons_and_serve_their_capability_by_type() {
        let r = Registry::builder().register(crate::descriptor!(resource Good, provides: [dyn Thing])).build().unwrap();
        let (Instance::Resource(x), Instance::Resource(y)) = (
            r.get_or_create(PluginKind::ResourceProvider, "good").unwrap(),
            r.get_or_create(PluginKind::ResourceProvider, "good").unwrap(),
        ) else {
            panic!("wrong kind")
        };
        assert!(Arc::ptr_eq(&x, &y));
        let d = r.get(PluginKind::ResourceProvider, "good").unwrap().descriptor();
        assert_eq!(d.capabilities().collect::<Vec<_>>(), ["thing:good"]);
        assert!((d.provides[0].serve)(&x).unwrap().get::<dyn Thing>().is_some());
    }

    #[test]
    fn malformed_names_and_duplicate_capabilities_are_errors() {
        let errs = Registry::builder()
            .register(crate::descriptor!(resource BadName, provides: []))
            .register(in_crate(crate::descriptor!(resource Store, provides: [dyn Thing]), "a"))
            .register(in_crate(crate::descriptor!(resource Store, provides: [dyn Thing]), "b"))
            .build()
            .unwrap_err();
        let text: Vec<String> = errs.iter().map(ToString::to_string).collect();
        assert!(text.iter().any(|t| t.contains("`Bad-Name`")), "{text:?}");
        assert!(text.iter().any(|t| t.contains("two resource_provider plugins are named `store`")), "{text:?}");
    }

    #[test]
    fn denying_one_of_two_providers_settles_a_duplicate_capability() {
        let r = Registry::builder()
            .register(crate::descriptor!(resource Good, provides: [dyn Thing]))
            .register(crate::descriptor!(resource Store, provides: [dyn Thing]))
            .filter(PluginFilter { deny: vec!["store".into()], ..Default::default() })
            .build()
            .unwrap();
        assert_eq!(r.resolver().providers_of("thing"), ["thing:good"]);
    }
}
