//! Plugins: one [`PluginDescriptor`] per provider, registered at compile time.
//!
//! A plugin crate depends on `phlo-core` only and submits its descriptors with
//! [`submit_plugin!`](crate::submit_plugin). A descriptor holds only `'static` data and
//! `fn` pointers; nothing is constructed until it is used.
//!
//! ```
//! use std::sync::Arc;
//! use phlo_core::plugin::{Factory, PluginContext, PluginDescriptor, PluginError, PluginMetadata, ResourceProvider};
//!
//! struct Memory;
//! impl ResourceProvider for Memory {}
//!
//! fn create(_: &PluginContext) -> Result<Arc<dyn ResourceProvider>, PluginError> {
//!     Ok(Arc::new(Memory))
//! }
//!
//! phlo_core::submit_plugin! {
//!     PluginDescriptor::new("memory_store", env!("CARGO_PKG_NAME"), Factory::Resource(create))
//!         .with_metadata(PluginMetadata::new(env!("CARGO_PKG_VERSION"), "Tables in memory")
//!             .provides(&["table_store:memory"]))
//! }
//! ```

pub mod registry;

use std::any::Any;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use schemars::JsonSchema;
use serde::Serialize;
use serde::de::DeserializeOwned;

pub use registry::{PluginEntry, PluginFilter, PluginStatus, Registry, RegistryBuilder, RegistryError};

use crate::capability::Capability;
use crate::config::Node;
use crate::config::de::from_node;
use crate::diagnostic::{Diagnostics, SourceFile};
use crate::spec::{AssetKind, AssetSpec};

/// The role a plugin plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PluginKind {
    /// Supplies asset specs and asset types.
    AssetProvider,
    /// Supplies resources (capabilities such as `table_store:sqlite`).
    ResourceProvider,
    /// Supplies quality-check kinds.
    QualityCheckProvider,
    /// Subscribes hooks to lifecycle events.
    HookProvider,
    /// Executes the asset graph (in-process or on an orchestrator).
    OrchestratorAdapter,
}

impl PluginKind {
    /// Every kind, in display order.
    pub const ALL: [PluginKind; 5] = [
        PluginKind::AssetProvider,
        PluginKind::ResourceProvider,
        PluginKind::QualityCheckProvider,
        PluginKind::HookProvider,
        PluginKind::OrchestratorAdapter,
    ];

    /// The snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            PluginKind::AssetProvider => "asset_provider",
            PluginKind::ResourceProvider => "resource_provider",
            PluginKind::QualityCheckProvider => "quality_check_provider",
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

/// What a plugin says about itself. All fields are `'static` so descriptors are constants.
#[derive(Debug, Clone, Copy)]
pub struct PluginMetadata {
    /// Version of the plugin (usually `env!("CARGO_PKG_VERSION")`).
    pub version: &'static str,
    /// One line on what it does.
    pub description: &'static str,
    /// Who wrote it.
    pub author: &'static str,
    /// Where to read more.
    pub homepage: &'static str,
    /// SPDX license.
    pub license: &'static str,
    /// Search tags.
    pub tags: &'static [&'static str],
    /// Capabilities it cannot work without (`type` or `type:name`); enforced.
    pub requires: &'static [&'static str],
    /// Capabilities it uses when present.
    pub optional: &'static [&'static str],
    /// Capabilities it provides (`type:name`).
    pub provides: &'static [&'static str],
}

impl PluginMetadata {
    /// Metadata with a version and a description; the rest empty.
    pub const fn new(version: &'static str, description: &'static str) -> Self {
        Self {
            version,
            description,
            author: "",
            homepage: "",
            license: "",
            tags: &[],
            requires: &[],
            optional: &[],
            provides: &[],
        }
    }

    /// Sets the author.
    pub const fn author(mut self, author: &'static str) -> Self {
        self.author = author;
        self
    }

    /// Sets the homepage.
    pub const fn homepage(mut self, homepage: &'static str) -> Self {
        self.homepage = homepage;
        self
    }

    /// Sets the license.
    pub const fn license(mut self, license: &'static str) -> Self {
        self.license = license;
        self
    }

    /// Sets the tags.
    pub const fn tags(mut self, tags: &'static [&'static str]) -> Self {
        self.tags = tags;
        self
    }

    /// Sets the required capabilities.
    pub const fn requires(mut self, requires: &'static [&'static str]) -> Self {
        self.requires = requires;
        self
    }

    /// Sets the optional capabilities.
    pub const fn optional(mut self, optional: &'static [&'static str]) -> Self {
        self.optional = optional;
        self
    }

    /// Sets the provided capabilities.
    pub const fn provides(mut self, provides: &'static [&'static str]) -> Self {
        self.provides = provides;
        self
    }
}

/// Reads a config section as its typed config: the section, its file, keys allowed beside it.
pub type ConfigCheck = fn(&Node, &Arc<SourceFile>, &[&str]) -> Result<(), Diagnostics>;

/// A typed config section: its JSON Schema, a checker that reads it with positions, and
/// the fields that `${VAR}` expansion must leave alone.
#[derive(Clone, Copy)]
pub struct ConfigSpec {
    /// The JSON Schema of the section (shown by `phlo schema`).
    pub schema: fn() -> schemars::Schema,
    /// Reads the section as the typed config; `extra_keys` are other keys allowed beside it
    /// (used for did-you-mean).
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
    /// The spec of config type `T`.
    pub const fn of<T: DeserializeOwned + JsonSchema>() -> Self {
        Self { schema: schema_of::<T>, check: check_of::<T>, no_expand: &[] }
    }

    /// Marks fields that `${VAR}` expansion leaves alone (SQL, query parameters).
    pub const fn no_expand(mut self, fields: &'static [&'static str]) -> Self {
        self.no_expand = fields;
        self
    }
}

/// An error from a plugin: its factory, its config, or its work.
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
}

/// What a factory gets: its name, the project directory and its config section.
#[derive(Debug, Clone)]
pub struct PluginContext {
    /// The plugin's name.
    pub name: String,
    /// The project directory (paths in configs are relative to it).
    pub project_dir: PathBuf,
    /// The plugin's config section (`resources.<name>` or `hooks.<name>`), if any.
    pub config: Option<Node>,
    /// The file the config came from.
    pub source: Option<Arc<SourceFile>>,
}

impl PluginContext {
    /// A context with no config (tests, embedders).
    pub fn new(name: impl Into<String>, project_dir: impl Into<PathBuf>) -> Self {
        Self { name: name.into(), project_dir: project_dir.into(), config: None, source: None }
    }

    /// Reads the config section as `T`; an absent section reads as an empty mapping, so
    /// `#[serde(default)]` fields get their defaults.
    ///
    /// # Errors
    /// [`PluginError::Config`] with positioned diagnostics.
    pub fn config<T: DeserializeOwned>(&self) -> Result<T, PluginError> {
        let empty = Node::empty_map();
        let node = self.config.as_ref().unwrap_or(&empty);
        let source = self.source.clone().unwrap_or_else(|| SourceFile::new("<no project file>", ""));
        from_node(node, &source, &[]).map_err(PluginError::Config)
    }

    /// Resolves a path relative to the project directory.
    pub fn project_path(&self, path: impl AsRef<Path>) -> PathBuf {
        self.project_dir.join(path)
    }
}

/// What an asset type's `build` gets: the asset key and its type-specific config.
#[derive(Debug, Clone)]
pub struct AssetTypeContext {
    /// The asset key from phlo.yaml.
    pub key: String,
    /// The project directory.
    pub project_dir: PathBuf,
    /// The type-specific keys of the asset's entry.
    pub config: Node,
    /// The project file.
    pub source: Arc<SourceFile>,
}

impl AssetTypeContext {
    /// Reads the type-specific config as `T`.
    ///
    /// # Errors
    /// [`PluginError::Config`] with positioned diagnostics.
    pub fn config<T: DeserializeOwned>(&self) -> Result<T, PluginError> {
        from_node(&self.config, &self.source, &[]).map_err(PluginError::Config)
    }
}

/// An asset type that phlo.yaml instantiates with `assets.<key>: {type: <name>, …}`.
#[derive(Debug, Clone, Copy)]
pub struct AssetType {
    /// The `type:` value.
    pub name: &'static str,
    /// One line on what it does.
    pub description: &'static str,
    /// The kind its assets have unless the entry sets `kind:`.
    pub kind: AssetKind,
    /// The type-specific config.
    pub config: ConfigSpec,
    /// Capabilities every asset of this type requires.
    pub requires: &'static [&'static str],
    /// Builds the spec from the entry (phlo then applies the common keys: deps, group, …).
    pub build: fn(&AssetTypeContext) -> Result<AssetSpec, PluginError>,
}

/// Supplies asset specs.
pub trait AssetProvider: Send + Sync {
    /// The assets this provider defines in code.
    ///
    /// # Errors
    /// When the provider cannot list its assets.
    fn assets(&self) -> Result<Vec<AssetSpec>, PluginError> {
        Ok(Vec::new())
    }
}

/// A resource handed to assets: downcast it to the capability's trait object or type.
pub type Resource = Arc<dyn Any + Send + Sync>;

/// Supplies resources for the capabilities its descriptor `provides`.
pub trait ResourceProvider: Send + Sync {
    /// The resource for one of the provided capabilities.
    ///
    /// # Errors
    /// When the resource cannot be created (e.g. a database cannot be opened).
    fn resource(&self, capability: &Capability) -> Result<Resource, PluginError> {
        Err(PluginError::msg(format!("this provider does not serve `{capability}`")))
    }

    /// Checks connectivity cheaply (`phlo validate --probe`).
    ///
    /// # Errors
    /// What the probe found wrong.
    fn probe(&self) -> Result<(), PluginError> {
        Ok(())
    }
}

/// Supplies quality-check kinds and runs them.
pub trait QualityCheckProvider: Send + Sync {
    /// The check kinds this provider runs (`not_null`, `unique`, …).
    fn check_kinds(&self) -> Vec<&'static str>;

    /// Runs one check of one of its kinds after the asset materialized. `ctx` carries the
    /// asset's resolved resources (e.g. its `query_engine`). A check that cannot be
    /// evaluated returns [`crate::spec::CheckResult::could_not_run`], never a failure.
    fn run_check(
        &self,
        spec: &crate::spec::CheckSpec,
        ctx: crate::spec::RunContext,
    ) -> crate::spec::BoxFuture<'static, crate::spec::CheckResult>;
}

impl fmt::Debug for dyn QualityCheckProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "QualityCheckProvider({:?})", self.check_kinds())
    }
}

/// Subscribes hooks to lifecycle events.
pub trait HookProvider: Send + Sync {
    /// The hooks to register (the bus sets their plugin name; phlo.yaml may override their
    /// priority and failure policy).
    fn hooks(&self) -> Vec<crate::hooks::HookRegistration>;
}

/// Executes the asset graph.
pub trait OrchestratorAdapter: Send + Sync {
    /// Runs a prepared request to the end (or until it is cancelled), emitting every
    /// lifecycle event on the request's bus.
    fn execute(
        &self,
        request: crate::execution::RunRequest,
    ) -> crate::spec::BoxFuture<'static, crate::execution::RunReport>;
}

/// Builds a provider. The variant decides the plugin's kind.
#[derive(Clone, Copy)]
pub enum Factory {
    /// An asset provider.
    Asset(fn(&PluginContext) -> Result<Arc<dyn AssetProvider>, PluginError>),
    /// A resource provider.
    Resource(fn(&PluginContext) -> Result<Arc<dyn ResourceProvider>, PluginError>),
    /// A quality-check provider.
    Quality(fn(&PluginContext) -> Result<Arc<dyn QualityCheckProvider>, PluginError>),
    /// A hook provider.
    Hook(fn(&PluginContext) -> Result<Arc<dyn HookProvider>, PluginError>),
    /// An orchestrator adapter.
    Adapter(fn(&PluginContext) -> Result<Arc<dyn OrchestratorAdapter>, PluginError>),
}

impl Factory {
    /// The kind of plugin this factory builds.
    pub const fn kind(&self) -> PluginKind {
        match self {
            Factory::Asset(_) => PluginKind::AssetProvider,
            Factory::Resource(_) => PluginKind::ResourceProvider,
            Factory::Quality(_) => PluginKind::QualityCheckProvider,
            Factory::Hook(_) => PluginKind::HookProvider,
            Factory::Adapter(_) => PluginKind::OrchestratorAdapter,
        }
    }

    fn create(&self, ctx: &PluginContext) -> Result<Instance, PluginError> {
        Ok(match self {
            Factory::Asset(f) => Instance::Asset(f(ctx)?),
            Factory::Resource(f) => Instance::Resource(f(ctx)?),
            Factory::Quality(f) => Instance::Quality(f(ctx)?),
            Factory::Hook(f) => Instance::Hook(f(ctx)?),
            Factory::Adapter(f) => Instance::Adapter(f(ctx)?),
        })
    }
}

impl fmt::Debug for Factory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Factory({})", self.kind())
    }
}

/// A constructed provider, shared.
#[derive(Clone)]
pub enum Instance {
    /// An asset provider.
    Asset(Arc<dyn AssetProvider>),
    /// A resource provider.
    Resource(Arc<dyn ResourceProvider>),
    /// A quality-check provider.
    Quality(Arc<dyn QualityCheckProvider>),
    /// A hook provider.
    Hook(Arc<dyn HookProvider>),
    /// An orchestrator adapter.
    Adapter(Arc<dyn OrchestratorAdapter>),
}

impl fmt::Debug for Instance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self {
            Instance::Asset(_) => PluginKind::AssetProvider,
            Instance::Resource(_) => PluginKind::ResourceProvider,
            Instance::Quality(_) => PluginKind::QualityCheckProvider,
            Instance::Hook(_) => PluginKind::HookProvider,
            Instance::Adapter(_) => PluginKind::OrchestratorAdapter,
        };
        write!(f, "Instance({kind})")
    }
}

/// Everything the registry knows about one provider.
#[derive(Debug)]
pub struct PluginDescriptor {
    /// Unique within its kind; lower snake_case.
    pub name: &'static str,
    /// The crate that registered it (`env!("CARGO_PKG_NAME")`).
    pub crate_name: &'static str,
    /// Metadata.
    pub metadata: PluginMetadata,
    /// Its config section (`resources.<name>` / `hooks.<name>`), if it takes one.
    pub config: Option<ConfigSpec>,
    /// Asset types it offers (asset providers only).
    pub asset_types: &'static [AssetType],
    /// Builds it.
    pub factory: Factory,
}

impl PluginDescriptor {
    /// A descriptor with empty metadata, no config and no asset types.
    pub const fn new(name: &'static str, crate_name: &'static str, factory: Factory) -> Self {
        Self { name, crate_name, metadata: PluginMetadata::new("0.0.0", ""), config: None, asset_types: &[], factory }
    }

    /// Sets the metadata.
    pub const fn with_metadata(mut self, metadata: PluginMetadata) -> Self {
        self.metadata = metadata;
        self
    }

    /// Sets the config section's spec.
    pub const fn with_config(mut self, config: ConfigSpec) -> Self {
        self.config = Some(config);
        self
    }

    /// Sets the asset types.
    pub const fn with_asset_types(mut self, asset_types: &'static [AssetType]) -> Self {
        self.asset_types = asset_types;
        self
    }

    /// The plugin's kind.
    pub const fn kind(&self) -> PluginKind {
        self.factory.kind()
    }
}

inventory::collect!(PluginDescriptor);

/// Registers a [`PluginDescriptor`] at compile time. Plugin crates call this instead of
/// depending on `inventory` themselves.
#[macro_export]
macro_rules! submit_plugin {
    ($descriptor:expr) => {
        $crate::inventory::submit! { $descriptor }
    };
}

/// The text of a caught panic (`panic!("…")` payloads are `&str` or `String`).
pub fn panic_message(payload: &(dyn Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| String::from("(non-text panic payload)"))
}

/// Every descriptor linked into this binary, in an order that does not depend on the build.
pub fn compiled_descriptors() -> Vec<&'static PluginDescriptor> {
    let mut v: Vec<&'static PluginDescriptor> = inventory::iter::<PluginDescriptor>.into_iter().collect();
    v.sort_by(|a, b| (a.kind(), a.name, a.crate_name).cmp(&(b.kind(), b.name, b.crate_name)));
    v
}
