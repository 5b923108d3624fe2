//! Plugins: one trait per kind, one macro call per plugin.
//!
//! Every plugin implements [`Plugin`] (its name, description and typed `Config`, each
//! written once) and the trait of its kind:
//!
//! | kind | trait | `Config` is read from |
//! | --- | --- | --- |
//! | resource provider | [`Resource`] | `resources.<name>` |
//! | asset type | [`AssetType`] | each `assets.<key>: {type: <name>, …}` entry |
//! | asset provider | [`AssetProvider`] | nothing (an empty mapping) |
//! | quality-check kind | [`CheckKind`] | each `checks: [{type: <name>, …}]` entry |
//! | hook provider | [`HookProvider`] | `hooks.<name>` |
//! | orchestrator adapter | [`OrchestratorAdapter`] | nothing (an empty mapping) |
//!
//! [`register!`](crate::register) derives the descriptor from the trait and submits it;
//! phlo reads and checks the config with `file:line:col` before the plugin sees it typed.
//!
//! ```
//! use std::sync::Arc;
//! use phlo_core::plugin::{Plugin, PluginContext, PluginError, Resource};
//!
//! pub trait Clock: Send + Sync { fn now(&self) -> i64; }
//! phlo_core::capability!(dyn Clock = "clock");
//!
//! #[derive(serde::Deserialize, schemars::JsonSchema, Default)]
//! #[serde(default, deny_unknown_fields)]
//! pub struct FixedConfig { /// The time it always is.
//!     pub at: i64 }
//!
//! pub struct Fixed(i64);
//! impl Plugin for Fixed { const NAME: &'static str = "fixed"; const DESCRIPTION: &'static str = "A stopped clock"; type Config = FixedConfig; }
//! impl Resource for Fixed {
//!     fn create(config: FixedConfig, _: &PluginContext) -> Result<Self, PluginError> { Ok(Fixed(config.at)) }
//! }
//! impl Clock for Fixed { fn now(&self) -> i64 { self.0 } }
//!
//! phlo_core::register!(resource Fixed, provides: [dyn Clock]);
//! ```

mod context;
pub mod registry;

use std::any::Any;
use std::fmt;

use std::sync::Arc;

use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

pub use context::{AssetTypeContext, CheckContext, PluginContext, path_in_project};
pub use registry::{PluginEntry, PluginFilter, PluginStatus, Registry, RegistryBuilder, RegistryError};

use crate::capability::{CapabilityType, Served};
pub use crate::diagnostic::panic_message;
use crate::diagnostic::{Diagnostics, SourceFile};
use crate::execution::{RunReport, RunRequest};
use crate::hooks::HookRegistration;
use crate::source::{Node, from_node};
use crate::spec::{AssetKind, AssetSpec, BoxFuture, CheckFn, CheckRun, Finding, RunContext};

/// The role a plugin plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PluginKind {
    /// An asset type that phlo.yaml instantiates (`type: csv`).
    AssetType,
    /// Supplies asset specs written in code.
    AssetProvider,
    /// Supplies resources (capabilities such as `table_store:sqlite`).
    ResourceProvider,
    /// A quality-check kind (`type: not_null` in `checks:`).
    QualityCheck,
    /// Subscribes hooks to lifecycle events.
    HookProvider,
    /// Executes the asset graph (in-process or on an orchestrator).
    OrchestratorAdapter,
}

impl PluginKind {
    /// Every kind, in display order.
    pub const ALL: [PluginKind; 6] = [
        PluginKind::AssetType,
        PluginKind::AssetProvider,
        PluginKind::ResourceProvider,
        PluginKind::QualityCheck,
        PluginKind::HookProvider,
        PluginKind::OrchestratorAdapter,
    ];

    /// The snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            PluginKind::AssetType => "asset_type",
            PluginKind::AssetProvider => "asset_provider",
            PluginKind::ResourceProvider => "resource_provider",
            PluginKind::QualityCheck => "quality_check",
            PluginKind::HookProvider => "hook_provider",
            PluginKind::OrchestratorAdapter => "orchestrator_adapter",
        }
    }
}

impl fmt::Display for PluginKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A config for plugins that take none: `{}` and nothing else.
#[derive(Debug, Clone, Copy, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NoConfig {}

/// What every plugin declares, once. The kind's trait says what it does.
pub trait Plugin: Send + Sync + Sized + 'static {
    /// Unique within its kind; lower snake_case. It is also the key of its config section,
    /// the `type:` of an asset type or check kind, and the `name` of capabilities it provides.
    const NAME: &'static str;
    /// One line on what it does.
    const DESCRIPTION: &'static str;
    /// Its typed config. phlo reads it with positions and refuses unknown keys itself (with a
    /// did-you-mean), `#[serde(deny_unknown_fields)]` or not.
    /// Doc comments of its fields become the JSON Schema that editors show.
    type Config: DeserializeOwned + JsonSchema;
    /// Top-level config fields never `${}`-expanded (SQL, templates).
    const NO_EXPAND: &'static [&'static str] = &[];
    /// Who wrote it (default: the crate's `authors`).
    const AUTHOR: &'static str = "";
    /// Its SPDX license (default: the crate's `license`).
    const LICENSE: &'static str = "";
    /// Search tags.
    const TAGS: &'static [&'static str] = &[];
}

/// A resource provider: built once from `resources.<NAME>`, it serves the capability types
/// its [`register!`](crate::register) line lists as `<type>:<NAME>`.
pub trait Resource: Plugin {
    /// Builds the resource (open nothing expensive here: `validate` builds it too).
    ///
    /// # Errors
    /// The resource cannot be set up from this config.
    fn create(config: Self::Config, ctx: &PluginContext) -> Result<Self, PluginError>;

    /// Checks connectivity cheaply (`phlo validate --probe`).
    ///
    /// # Errors
    /// What the probe found wrong.
    fn probe(&self) -> Result<(), PluginError> {
        Ok(())
    }
}

/// An asset type: builds an asset from an `assets.<key>: {type: <NAME>, …}` entry.
pub trait AssetType: Plugin {
    /// The kind its assets have unless the entry sets `kind:`.
    const KIND: AssetKind;

    /// Builds the spec from the entry's typed config (phlo then applies the keys every
    /// asset has: deps, group, checks, …).
    ///
    /// # Errors
    /// A config that is well-formed but unusable (a located error is made of it).
    fn build(config: Self::Config, ctx: &AssetTypeContext) -> Result<AssetSpec, PluginError>;
}

/// An asset provider: assets written in code.
pub trait AssetProvider: Plugin {
    /// Builds the provider.
    ///
    /// # Errors
    /// The provider cannot be set up.
    fn create(config: Self::Config, ctx: &PluginContext) -> Result<Self, PluginError>;

    /// The assets it defines.
    ///
    /// # Errors
    /// When it cannot list them.
    fn assets(&self) -> Result<Vec<AssetSpec>, PluginError>;
}

/// A quality-check kind: `checks: [{type: <NAME>, …}]` on an asset. Each check entry is
/// read as `Config` and built once when the project loads; it runs after its asset
/// materialized.
pub trait CheckKind: Plugin {
    /// Builds one check from its typed config.
    ///
    /// # Errors
    /// A config that is well-formed but unusable (e.g. `range` with neither `min` nor `max`).
    fn build(config: Self::Config, ctx: &CheckContext) -> Result<Self, PluginError>;

    /// Evaluates the check on the asset just materialized.
    ///
    /// # Errors
    /// Why the check could not run (distinct from finding problems).
    fn evaluate(&self, ctx: &RunContext) -> Result<Finding, String>;

    /// The tables the check reads besides its asset's own (its `table:`, the tables of its
    /// query), each with the config key it is written in: they become the asset's
    /// dependencies, and a table no asset writes is an error when the project loads.
    fn reads(&self) -> Vec<(&'static str, crate::spec::TableRef)> {
        Vec::new()
    }
}

/// A hook provider: handlers for lifecycle events, configured by `hooks.<NAME>`.
pub trait HookProvider: Plugin {
    /// Builds the provider.
    ///
    /// # Errors
    /// The provider cannot be set up from this config.
    fn create(config: Self::Config, ctx: &PluginContext) -> Result<Self, PluginError>;

    /// The hooks to register (the bus sets their plugin name; phlo.yaml may override their
    /// priority and failure policy).
    fn hooks(&self) -> Vec<HookRegistration>;
}

/// An orchestrator adapter, of one of two shapes: it **executes** the asset graph
/// in-process (`local`), or it **renders** definitions for an external engine (`dagster`),
/// whose steps then run `phlo` for one asset each.
pub trait OrchestratorAdapter: Plugin {
    /// Whether it renders definitions (`phlo export NAME`) rather than executing runs.
    const RENDERS: bool = false;

    /// Builds the adapter.
    ///
    /// # Errors
    /// The adapter cannot be set up.
    fn create(config: Self::Config, ctx: &PluginContext) -> Result<Self, PluginError>;

    /// Runs a prepared request to the end (or until it is cancelled), emitting every
    /// lifecycle event on the request's bus. A rendering adapter is never asked to.
    fn execute(&self, request: RunRequest) -> BoxFuture<'static, RunReport>;

    /// Renders the project for the external engine: the files to write, relative to the
    /// output directory.
    ///
    /// # Errors
    /// Something the engine cannot express, naming the asset and the field.
    fn render(&self, request: &crate::execution::ExportRequest) -> Result<Vec<RenderedFile>, PluginError> {
        let _ = request;
        Err(PluginError::msg(format!("orchestrator adapter `{}` executes runs; it renders nothing", Self::NAME)))
    }
}

/// A file a rendering adapter writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedFile {
    /// Path relative to the output directory.
    pub path: String,
    /// Its contents.
    pub contents: String,
}

/// An error from a plugin: its config, or its work.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum PluginError {
    /// The plugin's config section is invalid.
    #[error("invalid configuration:\n{0}")]
    Config(Diagnostics),
    /// The plugin failed with a message.
    #[error("{message}")]
    Failed {
        /// What happened.
        message: String,
        /// How to fix it.
        help: Option<String>,
    },
    /// The plugin panicked.
    #[error("panicked: {0}")]
    Panicked(String),
    /// A value of the plugin's config is unusable (phlo points at the key).
    #[error("{message}")]
    Invalid {
        /// The config key whose value is wrong.
        key: String,
        /// Line and column inside the value (1-based), when the plugin knows them.
        at: Option<(u32, u32)>,
        /// What is wrong with it.
        message: String,
        /// How to fix it.
        help: Option<String>,
    },
    /// Several values are unusable: each is reported (an asset type reports every mistake
    /// of an entry at once).
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Several(Vec<PluginError>),
}

impl PluginError {
    /// A failure with a message.
    pub fn msg(message: impl Into<String>) -> Self {
        PluginError::Failed { message: message.into(), help: None }
    }

    /// A failure with a message and a fix.
    pub fn with_help(message: impl Into<String>, help: impl Into<String>) -> Self {
        PluginError::Failed { message: message.into(), help: Some(help.into()) }
    }

    /// The value of config key `key` is unusable: phlo reports it at that key, as a
    /// configuration error.
    pub fn invalid(key: impl Into<String>, message: impl Into<String>, help: impl Into<String>) -> Self {
        PluginError::Invalid { key: key.into(), at: None, message: message.into(), help: Some(help.into()) }
    }

    /// As [`PluginError::invalid`], at `(line, column)` inside the value (e.g. a SQL syntax
    /// error): phlo turns it into a position in the project file.
    pub fn invalid_at(
        key: impl Into<String>,
        at: Option<(u32, u32)>,
        message: impl Into<String>,
        help: impl Into<String>,
    ) -> Self {
        PluginError::Invalid { key: key.into(), at, message: message.into(), help: Some(help.into()) }
    }
}

/// Reads a config section as its typed config: the section, its file, and the keys allowed
/// beside it.
pub type ConfigCheck = fn(&Node, &Arc<SourceFile>, &[&str]) -> Result<(), Diagnostics>;

/// Builds a check from its entry: the kind's own keys, their file, the keys every check
/// has, and the check's context.
pub type CheckBuild = fn(&Node, &Arc<SourceFile>, &[&str], &CheckContext) -> Result<CheckFn, PluginError>;

/// A typed config section: its JSON Schema, a checker that reads it with positions, and
/// the fields that `${VAR}` expansion must leave alone.
#[derive(Clone, Copy)]
pub struct ConfigSpec {
    /// The JSON Schema of the section (shown by `phlo schema`).
    pub schema: fn() -> schemars::Schema,
    /// Reads the section as the typed config; the `&[&str]` are other keys allowed beside
    /// it (used for did-you-mean).
    pub check: ConfigCheck,
    /// Top-level fields of the section that are never `${}`-expanded.
    pub no_expand: &'static [&'static str],
}

impl fmt::Debug for ConfigSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConfigSpec").field("no_expand", &self.no_expand).finish_non_exhaustive()
    }
}

fn schema_of<T: JsonSchema>() -> schemars::Schema {
    schemars::generate::SchemaSettings::draft2020_12().into_generator().into_root_schema_for::<T>()
}

fn check_of<T: DeserializeOwned>(node: &Node, source: &Arc<SourceFile>, extra: &[&str]) -> Result<(), Diagnostics> {
    from_node::<T>(node, source, extra).map(drop)
}

impl ConfigSpec {
    /// The spec of plugin `P`'s config.
    pub const fn of<P: Plugin>() -> Self {
        Self { schema: schema_of::<P::Config>, check: check_of::<P::Config>, no_expand: P::NO_EXPAND }
    }
}

/// What a plugin says about itself. All fields are `'static` so descriptors are constants.
#[derive(Debug, Clone, Copy)]
pub struct PluginMetadata {
    /// Version of the plugin's crate.
    pub version: &'static str,
    /// One line on what it does.
    pub description: &'static str,
    /// Who wrote it.
    pub author: &'static str,
    /// SPDX license.
    pub license: &'static str,
    /// Search tags.
    pub tags: &'static [&'static str],
    /// Capability types it cannot work without; enforced (for asset types and check kinds:
    /// required by every asset that uses them).
    pub requires: &'static [&'static str],
    /// Capability types it uses when present.
    pub optional: &'static [&'static str],
}

/// A capability type a resource serves, and how to serve it from the resource.
#[derive(Clone, Copy)]
pub struct Provided {
    /// The capability type (`table_store`); the capability is `<type>:<plugin name>`.
    pub cap_type: &'static str,
    /// Turns the resource into the capability's `Arc<dyn Trait>`.
    pub serve: fn(&Arc<dyn Any + Send + Sync>) -> Option<Served>,
}

impl fmt::Debug for Provided {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.cap_type)
    }
}

impl Provided {
    /// Capability type `C`, served by `serve` (written by [`register!`](crate::register)).
    pub const fn new<C: ?Sized + CapabilityType>(serve: fn(&Arc<dyn Any + Send + Sync>) -> Option<Served>) -> Self {
        Self { cap_type: C::NAME, serve }
    }
}

/// The erased asset provider.
pub trait DynAssetProvider: Send + Sync {
    /// See [`AssetProvider::assets`].
    ///
    /// # Errors
    /// When the provider cannot list its assets.
    fn assets(&self) -> Result<Vec<AssetSpec>, PluginError>;
}
impl<P: AssetProvider> DynAssetProvider for P {
    fn assets(&self) -> Result<Vec<AssetSpec>, PluginError> {
        AssetProvider::assets(self)
    }
}

/// The erased hook provider.
pub trait DynHookProvider: Send + Sync {
    /// See [`HookProvider::hooks`].
    fn hooks(&self) -> Vec<HookRegistration>;
}
impl<P: HookProvider> DynHookProvider for P {
    fn hooks(&self) -> Vec<HookRegistration> {
        HookProvider::hooks(self)
    }
}

/// The erased orchestrator adapter.
pub trait DynAdapter: Send + Sync {
    /// See [`OrchestratorAdapter::RENDERS`].
    fn renders(&self) -> bool;
    /// See [`OrchestratorAdapter::execute`].
    fn execute(&self, request: RunRequest) -> BoxFuture<'static, RunReport>;
    /// See [`OrchestratorAdapter::render`].
    ///
    /// # Errors
    /// As [`OrchestratorAdapter::render`].
    fn render(&self, request: &crate::execution::ExportRequest) -> Result<Vec<RenderedFile>, PluginError>;
}
impl<P: OrchestratorAdapter> DynAdapter for P {
    fn renders(&self) -> bool {
        P::RENDERS
    }
    fn execute(&self, request: RunRequest) -> BoxFuture<'static, RunReport> {
        OrchestratorAdapter::execute(self, request)
    }
    fn render(&self, request: &crate::execution::ExportRequest) -> Result<Vec<RenderedFile>, PluginError> {
        OrchestratorAdapter::render(self, request)
    }
}

struct Check<K>(K);
impl<K: CheckKind> CheckRun for Check<K> {
    fn evaluate(&self, ctx: &RunContext) -> Result<Finding, String> {
        self.0.evaluate(ctx)
    }

    fn reads(&self) -> Vec<(&'static str, crate::spec::TableRef)> {
        self.0.reads()
    }
}

/// A resource, constructed.
pub type ResourceObject = Arc<dyn Any + Send + Sync>;

/// How to build a plugin of each kind (derived from its traits by the descriptor's const
/// constructors).
#[derive(Clone, Copy)]
#[non_exhaustive]
pub enum Factory {
    /// A resource provider: its constructor and its probe.
    Resource {
        /// Reads the config and builds the resource.
        create: fn(&PluginContext) -> Result<ResourceObject, PluginError>,
        /// Probes a resource built by `create`.
        probe: fn(&ResourceObject) -> Result<(), PluginError>,
    },
    /// An asset type.
    AssetType {
        /// The default kind of its assets.
        kind: AssetKind,
        /// Reads an entry's config (with positions) and builds the spec.
        build: fn(&Node, &Arc<SourceFile>, &AssetTypeContext) -> Result<AssetSpec, PluginError>,
    },
    /// An asset provider.
    Assets(fn(&PluginContext) -> Result<Arc<dyn DynAssetProvider>, PluginError>),
    /// A quality-check kind: reads a check entry (the `&[&str]` are the common check keys)
    /// and builds it.
    Check(CheckBuild),
    /// A hook provider.
    Hooks(fn(&PluginContext) -> Result<Arc<dyn DynHookProvider>, PluginError>),
    /// An orchestrator adapter.
    Adapter {
        /// Builds it.
        create: fn(&PluginContext) -> Result<Arc<dyn DynAdapter>, PluginError>,
        /// Whether it renders definitions rather than executing runs.
        renders: bool,
    },
}

impl Factory {
    /// The kind of plugin this factory builds.
    pub const fn kind(&self) -> PluginKind {
        match self {
            Factory::Resource { .. } => PluginKind::ResourceProvider,
            Factory::AssetType { .. } => PluginKind::AssetType,
            Factory::Assets(_) => PluginKind::AssetProvider,
            Factory::Check(_) => PluginKind::QualityCheck,
            Factory::Hooks(_) => PluginKind::HookProvider,
            Factory::Adapter { .. } => PluginKind::OrchestratorAdapter,
        }
    }

    fn create(&self, ctx: &PluginContext) -> Result<Instance, PluginError> {
        Ok(match self {
            Factory::Resource { create, .. } => Instance::Resource(create(ctx)?),
            Factory::Assets(f) => Instance::Assets(f(ctx)?),
            Factory::Hooks(f) => Instance::Hooks(f(ctx)?),
            Factory::Adapter { create, .. } => Instance::Adapter(create(ctx)?),
            Factory::AssetType { .. } | Factory::Check(_) => Instance::Stateless,
        })
    }
}

impl fmt::Debug for Factory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Factory({})", self.kind())
    }
}

/// A constructed plugin, shared.
#[derive(Clone)]
pub enum Instance {
    /// A resource (its capabilities are served through the descriptor's [`Provided`]).
    Resource(ResourceObject),
    /// An asset provider.
    Assets(Arc<dyn DynAssetProvider>),
    /// A hook provider.
    Hooks(Arc<dyn DynHookProvider>),
    /// An orchestrator adapter.
    Adapter(Arc<dyn DynAdapter>),
    /// Asset types and check kinds: nothing to construct (they build per use).
    Stateless,
}

impl fmt::Debug for Instance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self {
            Instance::Resource(_) => "resource",
            Instance::Assets(_) => "assets",
            Instance::Hooks(_) => "hooks",
            Instance::Adapter(_) => "adapter",
            Instance::Stateless => "stateless",
        };
        write!(f, "Instance({what})")
    }
}

/// Everything the registry knows about one plugin. Built by [`register!`](crate::register)
/// (or the const constructors below) from the plugin's traits.
#[derive(Debug)]
pub struct PluginDescriptor {
    /// Unique within its kind; lower snake_case.
    pub name: &'static str,
    /// The crate that registered it.
    pub crate_name: &'static str,
    /// Metadata.
    pub metadata: PluginMetadata,
    /// Its typed config.
    pub config: ConfigSpec,
    /// Capability types it serves (resource providers only).
    pub provides: &'static [Provided],
    /// Builds it.
    pub factory: Factory,
}

fn create_resource<R: Resource>(ctx: &PluginContext) -> Result<ResourceObject, PluginError> {
    Ok(Arc::new(R::create(ctx.read::<R::Config>()?, ctx)?))
}

fn probe_resource<R: Resource>(object: &ResourceObject) -> Result<(), PluginError> {
    object.downcast_ref::<R>().map_or_else(|| Err(PluginError::msg("not this plugin's resource")), R::probe)
}

fn build_asset_type<T: AssetType>(
    node: &Node,
    source: &Arc<SourceFile>,
    ctx: &AssetTypeContext,
) -> Result<AssetSpec, PluginError> {
    let config = from_node::<T::Config>(node, source, crate::spec::ASSET_COMMON_KEYS).map_err(PluginError::Config)?;
    T::build(config, ctx)
}

fn create_assets<P: AssetProvider>(ctx: &PluginContext) -> Result<Arc<dyn DynAssetProvider>, PluginError> {
    Ok(Arc::new(P::create(ctx.read::<P::Config>()?, ctx)?))
}

fn build_check<K: CheckKind>(
    node: &Node,
    source: &Arc<SourceFile>,
    extra: &[&str],
    ctx: &CheckContext,
) -> Result<CheckFn, PluginError> {
    let config = from_node::<K::Config>(node, source, extra).map_err(PluginError::Config)?;
    Ok(CheckFn(Arc::new(Check(K::build(config, ctx)?))))
}

fn create_hooks<P: HookProvider>(ctx: &PluginContext) -> Result<Arc<dyn DynHookProvider>, PluginError> {
    Ok(Arc::new(P::create(ctx.read::<P::Config>()?, ctx)?))
}

fn create_adapter<P: OrchestratorAdapter>(ctx: &PluginContext) -> Result<Arc<dyn DynAdapter>, PluginError> {
    Ok(Arc::new(P::create(ctx.read::<P::Config>()?, ctx)?))
}

const fn metadata<P: Plugin>(site: Site) -> PluginMetadata {
    PluginMetadata {
        version: site.version,
        description: P::DESCRIPTION,
        author: if P::AUTHOR.is_empty() { site.authors } else { P::AUTHOR },
        license: if P::LICENSE.is_empty() { site.license } else { P::LICENSE },
        tags: P::TAGS,
        requires: site.requires,
        optional: site.optional,
    }
}

/// The parts of a descriptor that [`register!`](crate::register) writes at the plugin's
/// call site: its crate's name, version, authors and license, and the capability types it
/// lists.
#[derive(Debug, Clone, Copy)]
pub struct Site {
    /// `env!("CARGO_PKG_NAME")` of the plugin crate.
    pub crate_name: &'static str,
    /// `env!("CARGO_PKG_VERSION")` of the plugin crate.
    pub version: &'static str,
    /// `env!("CARGO_PKG_AUTHORS")` of the plugin crate.
    pub authors: &'static str,
    /// `env!("CARGO_PKG_LICENSE")` of the plugin crate.
    pub license: &'static str,
    /// Capability types required.
    pub requires: &'static [&'static str],
    /// Capability types used when present.
    pub optional: &'static [&'static str],
}

impl PluginDescriptor {
    const fn with<P: Plugin>(site: Site, factory: Factory, provides: &'static [Provided]) -> Self {
        Self {
            name: P::NAME,
            crate_name: site.crate_name,
            metadata: metadata::<P>(site),
            config: ConfigSpec::of::<P>(),
            provides,
            factory,
        }
    }

    /// The descriptor of resource provider `R`.
    pub const fn resource<R: Resource>(site: Site, provides: &'static [Provided]) -> Self {
        Self::with::<R>(site, Factory::Resource { create: create_resource::<R>, probe: probe_resource::<R> }, provides)
    }

    /// The descriptor of asset type `T`.
    pub const fn asset_type<T: AssetType>(site: Site) -> Self {
        Self::with::<T>(site, Factory::AssetType { kind: T::KIND, build: build_asset_type::<T> }, &[])
    }

    /// The descriptor of asset provider `P`.
    pub const fn asset_provider<P: AssetProvider>(site: Site) -> Self {
        Self::with::<P>(site, Factory::Assets(create_assets::<P>), &[])
    }

    /// The descriptor of check kind `K`.
    pub const fn check<K: CheckKind>(site: Site) -> Self {
        Self::with::<K>(site, Factory::Check(build_check::<K>), &[])
    }

    /// The descriptor of hook provider `P`.
    pub const fn hook_provider<P: HookProvider>(site: Site) -> Self {
        Self::with::<P>(site, Factory::Hooks(create_hooks::<P>), &[])
    }

    /// The descriptor of orchestrator adapter `P`.
    pub const fn adapter<P: OrchestratorAdapter>(site: Site) -> Self {
        Self::with::<P>(site, Factory::Adapter { create: create_adapter::<P>, renders: P::RENDERS }, &[])
    }

    /// For an orchestrator adapter, its shape: `executes` or `renders`.
    pub const fn adapter_shape(&self) -> Option<&'static str> {
        match self.factory {
            Factory::Adapter { renders: true, .. } => Some("renders"),
            Factory::Adapter { renders: false, .. } => Some("executes"),
            _ => None,
        }
    }

    /// The plugin's kind.
    pub const fn kind(&self) -> PluginKind {
        self.factory.kind()
    }

    /// The capabilities it provides, `<type>:<name>`.
    pub fn capabilities(&self) -> impl Iterator<Item = String> + '_ {
        self.provides.iter().map(|p| format!("{}:{}", p.cap_type, self.name))
    }
}

inventory::collect!(PluginDescriptor);

/// The descriptor of a plugin, derived from its traits (for hand-built registries; plugin
/// crates use [`register!`](crate::register), which also submits it).
///
/// `descriptor!(<kind> Type)` with `<kind>` one of `resource`, `asset_type`,
/// `asset_provider`, `check`, `hook_provider`, `adapter`; resources add
/// `provides: [dyn Trait, …]`; any kind may add `requires: [dyn Trait, …]` and
/// `optional: [dyn Trait, …]`.
#[macro_export]
macro_rules! descriptor {
    (@site $(requires: [$(dyn $($req:ident)::+),*])? $(optional: [$(dyn $($opt:ident)::+),*])?) => {
        $crate::plugin::Site {
            crate_name: env!("CARGO_PKG_NAME"),
            version: env!("CARGO_PKG_VERSION"),
            authors: env!("CARGO_PKG_AUTHORS"),
            license: env!("CARGO_PKG_LICENSE"),
            requires: const { &[$($(<dyn $($req)::+ as $crate::capability::CapabilityType>::NAME),*)?] },
            optional: const { &[$($(<dyn $($opt)::+ as $crate::capability::CapabilityType>::NAME),*)?] },
        }
    };
    (resource $ty:ty, provides: [$(dyn $($cap:ident)::+),* $(,)?]
        $(, requires: [$(dyn $($req:ident)::+),* $(,)?])? $(, optional: [$(dyn $($opt:ident)::+),* $(,)?])? $(,)?) => {
        $crate::plugin::PluginDescriptor::resource::<$ty>(
            $crate::descriptor!(@site $(requires: [$(dyn $($req)::+),*])? $(optional: [$(dyn $($opt)::+),*])?),
            const {
                &[$($crate::plugin::Provided::new::<dyn $($cap)::+>(|object| {
                    let typed: ::std::sync::Arc<$ty> = ::std::sync::Arc::clone(object).downcast::<$ty>().ok()?;
                    Some($crate::capability::Served::new::<dyn $($cap)::+>(typed))
                })),*]
            },
        )
    };
    ($kind:ident $ty:ty $(, requires: [$(dyn $($req:ident)::+),* $(,)?])? $(, optional: [$(dyn $($opt:ident)::+),* $(,)?])? $(,)?) => {
        $crate::plugin::PluginDescriptor::$kind::<$ty>(
            $crate::descriptor!(@site $(requires: [$(dyn $($req)::+),*])? $(optional: [$(dyn $($opt)::+),*])?),
        )
    };
}

/// Registers a plugin at compile time: one call per plugin, the descriptor derived from its
/// traits. Same syntax as [`descriptor!`](crate::descriptor):
///
/// ```ignore
/// phlo_core::register!(resource Warehouse, provides: [dyn TableStore, dyn QueryEngine]);
/// phlo_core::register!(asset_type CsvFile, requires: [dyn TableStore]);
/// phlo_core::register!(check NotNull, requires: [dyn QueryEngine]);
/// phlo_core::register!(hook_provider Console);
/// ```
#[macro_export]
macro_rules! register {
    ($($args:tt)*) => {
        $crate::inventory::submit! { $crate::descriptor!($($args)*) }
    };
}

/// Every descriptor linked into this binary, in an order that does not depend on the build.
pub fn compiled_descriptors() -> Vec<&'static PluginDescriptor> {
    let mut v: Vec<&'static PluginDescriptor> = inventory::iter::<PluginDescriptor>.into_iter().collect();
    v.sort_by(|a, b| (a.kind(), a.name, a.crate_name).cmp(&(b.kind(), b.name, b.crate_name)));
    v
}
