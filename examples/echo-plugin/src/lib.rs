//! The reference phlo plugin: everything a plugin crate does, in one small file.
//!
//! * an **asset provider** `echo` with three assets of its own (`echo.greetings`,
//!   `echo.numbers`, `echo.summary`), all requiring the `echo_store` capability;
//! * a **resource provider** `echo_store` providing `echo_store:echo`, configured by
//!   `resources.echo_store` in phlo.yaml;
//! * an **asset type** `echo` that phlo.yaml instantiates:
//!
//! ```yaml
//! assets:
//!   demo.rows:
//!     type: echo
//!     rows: 25
//!     seed: 7
//!     template: "row ${n}"   # never ${}-expanded: the field is marked no-expand
//! ```
//!
//! The crate depends on `phlo-core` only and is linked into `phlo` by the cargo feature
//! `plugin-echo`.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use phlo_core::capability::Capability;
use phlo_core::plugin::{
    AssetProvider, AssetType, AssetTypeContext, ConfigSpec, Factory, PluginContext, PluginDescriptor, PluginError,
    PluginMetadata, Resource, ResourceProvider,
};
use phlo_core::spec::{AssetKind, AssetSpec, MaterializeResult, RunContext, RunError};
use schemars::JsonSchema;
use serde::Deserialize;

/// The capability this crate provides.
pub const ECHO_STORE: &str = "echo_store:echo";

const fn metadata(description: &'static str) -> PluginMetadata {
    PluginMetadata::new(env!("CARGO_PKG_VERSION"), description)
        .author("phlo developers")
        .license("Apache-2.0")
        .tags(&["example", "reference"])
}

// ---------------------------------------------------------------- resource provider

/// `resources.echo_store` in phlo.yaml.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct EchoStoreConfig {
    /// Prefix of every stored table name.
    pub prefix: String,
    /// Most rows one table may hold.
    pub capacity: u32,
}

impl Default for EchoStoreConfig {
    fn default() -> Self {
        Self { prefix: String::from("echo"), capacity: 100_000 }
    }
}

/// An in-memory table store: table name → rows.
#[derive(Debug, Default)]
pub struct EchoStore {
    config: EchoStoreConfig,
    tables: Mutex<BTreeMap<String, Vec<String>>>,
}

impl EchoStore {
    /// Replaces a table.
    ///
    /// # Errors
    /// When the rows exceed the configured capacity.
    pub fn put(&self, table: &str, rows: Vec<String>) -> Result<(), PluginError> {
        if rows.len() > self.config.capacity as usize {
            return Err(PluginError::with_help(
                format!("{} rows exceed the echo store's capacity of {}", rows.len(), self.config.capacity),
                "raise `resources.echo_store.capacity`",
            ));
        }
        let name = format!("{}.{table}", self.config.prefix);
        self.tables.lock().unwrap_or_else(std::sync::PoisonError::into_inner).insert(name, rows);
        Ok(())
    }

    /// A copy of a table's rows.
    pub fn get(&self, table: &str) -> Option<Vec<String>> {
        let name = format!("{}.{table}", self.config.prefix);
        self.tables.lock().unwrap_or_else(std::sync::PoisonError::into_inner).get(&name).cloned()
    }
}

struct EchoStoreProvider {
    store: Arc<EchoStore>,
}

impl ResourceProvider for EchoStoreProvider {
    fn resource(&self, capability: &Capability) -> Result<Resource, PluginError> {
        if capability.to_string() == ECHO_STORE {
            Ok(Arc::clone(&self.store) as Resource)
        } else {
            Err(PluginError::msg(format!("echo_store does not serve `{capability}`")))
        }
    }
}

fn create_store(ctx: &PluginContext) -> Result<Arc<dyn ResourceProvider>, PluginError> {
    let config: EchoStoreConfig = ctx.config()?;
    Ok(Arc::new(EchoStoreProvider { store: Arc::new(EchoStore { config, tables: Mutex::default() }) }))
}

/// The `echo_store` resource provider.
pub const ECHO_STORE_PROVIDER: PluginDescriptor =
    PluginDescriptor::new("echo_store", env!("CARGO_PKG_NAME"), Factory::Resource(create_store))
        .with_metadata(metadata("An in-memory table store for examples and tests").provides(&[ECHO_STORE]))
        .with_config(ConfigSpec::of::<EchoStoreConfig>());

phlo_core::submit_plugin!(ECHO_STORE_PROVIDER);

// ---------------------------------------------------------------- asset provider + asset type

/// The type-specific keys of an `assets.<key>: {type: echo, …}` entry.
#[derive(Debug, Clone, Deserialize, JsonSchema, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct EchoAssetConfig {
    /// How many rows the asset produces (at most 1,000,000).
    pub rows: u32,
    /// Seed of the row generator: the same seed gives the same rows.
    pub seed: u64,
    /// Row text; `${n}` is the row number and `${value}` a seeded random number.
    /// Never `${}`-expanded from the environment.
    pub template: String,
}

impl Default for EchoAssetConfig {
    fn default() -> Self {
        Self { rows: 10, seed: 0, template: String::from("row ${n}: ${value}") }
    }
}

/// Most rows an echo asset may produce.
pub const MAX_ROWS: u32 = 1_000_000;

/// The rows an echo asset produces: deterministic for a given config.
pub fn generate(config: &EchoAssetConfig) -> Vec<String> {
    // xorshift64*: small, deterministic, good enough for example data
    let mut state = config.seed ^ 0x9E37_79B9_7F4A_7C15;
    (0..config.rows)
        .map(|n| {
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            let value = state.wrapping_mul(0x2545_F491_4F6C_DD1D) % 1000;
            config.template.replace("${n}", &n.to_string()).replace("${value}", &value.to_string())
        })
        .collect()
}

/// The store bound to this asset's `echo_store` requirement.
fn store(ctx: &RunContext) -> Result<Arc<EchoStore>, RunError> {
    ctx.resource::<EchoStore>("echo_store")
        .ok_or_else(|| RunError::permanent("no `echo_store` resource is bound to this asset"))
}

/// Stores `rows` as the asset's table and reports the row count.
fn materialize(ctx: &RunContext, rows: Vec<String>) -> Result<MaterializeResult, RunError> {
    let n = rows.len() as u64;
    let table = match &ctx.partition {
        Some(p) => format!("{}[{p}]", ctx.asset),
        None => ctx.asset.clone(),
    };
    store(ctx)?.put(&table, rows).map_err(|e| RunError::permanent(e.to_string()))?;
    Ok(MaterializeResult::new().with_row_count(n))
}

fn build_echo(ctx: &AssetTypeContext) -> Result<AssetSpec, PluginError> {
    let config: EchoAssetConfig = ctx.config()?;
    if config.rows > MAX_ROWS {
        return Err(PluginError::with_help(
            format!("`rows: {}` is more than an echo asset can produce ({MAX_ROWS})", config.rows),
            format!("use at most {MAX_ROWS} rows"),
        ));
    }
    let description = format!("{} echoed rows (seed {})", config.rows, config.seed);
    let (rows, seed) = (config.rows, config.seed);
    Ok(AssetSpec::new(ctx.key.as_str())
        .with_group("echo")
        .with_description(description)
        .with_metadata("rows", rows)
        .with_metadata("seed", seed)
        .with_run(move |run: RunContext| {
            let config = config.clone();
            async move { materialize(&run, generate(&config)) }
        }))
}

const ECHO_TYPE: AssetType = AssetType {
    name: "echo",
    description: "Rows generated from a template and a seed",
    kind: AssetKind::Ingestion,
    config: ConfigSpec::of::<EchoAssetConfig>().no_expand(&["template"]),
    requires: &["echo_store"],
    build: build_echo,
};

struct EchoAssets;

impl AssetProvider for EchoAssets {
    fn assets(&self) -> Result<Vec<AssetSpec>, PluginError> {
        Ok(vec![
            AssetSpec::new("echo.greetings")
                .with_kind(AssetKind::Ingestion)
                .with_group("echo")
                .with_description("A few greetings")
                .with_requirement("echo_store")
                .with_run(|ctx: RunContext| async move {
                    materialize(&ctx, ["hello", "bonjour", "hola", "hallo"].map(String::from).to_vec())
                }),
            AssetSpec::new("echo.numbers")
                .with_kind(AssetKind::Ingestion)
                .with_group("echo")
                .with_description("Numbers 1 to 100")
                .with_requirement("echo_store")
                .with_run(
                    |ctx: RunContext| async move { materialize(&ctx, (1..=100).map(|n| n.to_string()).collect()) },
                ),
            AssetSpec::new("echo.summary")
                .with_kind(AssetKind::Transform)
                .with_group("echo")
                .with_description("One line per upstream table")
                .with_dep("echo.greetings")
                .with_dep("echo.numbers")
                .with_requirement("echo_store")
                .with_run(|ctx: RunContext| async move {
                    let s = store(&ctx)?;
                    let lines = ["echo.greetings", "echo.numbers"]
                        .iter()
                        .map(|t| {
                            let n = s
                                .get(t)
                                .map(|rows| rows.len())
                                .ok_or_else(|| RunError::new(format!("`{t}` is not materialized")))?;
                            Ok(format!("{t}: {n} rows"))
                        })
                        .collect::<Result<Vec<_>, RunError>>()?;
                    materialize(&ctx, lines)
                }),
        ])
    }
}

fn create_assets(_: &PluginContext) -> Result<Arc<dyn AssetProvider>, PluginError> {
    Ok(Arc::new(EchoAssets))
}

/// The `echo` asset provider (its own assets and the `echo` asset type).
pub const ECHO_ASSET_PROVIDER: PluginDescriptor =
    PluginDescriptor::new("echo", env!("CARGO_PKG_NAME"), Factory::Asset(create_assets))
        .with_metadata(metadata("Example assets and the `echo` asset type").requires(&["echo_store"]))
        .with_asset_types(&[ECHO_TYPE]);

phlo_core::submit_plugin!(ECHO_ASSET_PROVIDER);

#[cfg(test)]
mod tests {
    use std::path::Path;

    use phlo_core::config::{Format, read_str};
    use phlo_core::diagnostic::SourceFile;
    use phlo_core::plugin::{Instance, PluginKind, Registry};

    use super::*;

    fn registry() -> Registry {
        Registry::builder().register(ECHO_ASSET_PROVIDER).register(ECHO_STORE_PROVIDER).build().unwrap()
    }

    #[test]
    fn both_descriptors_are_registered_through_inventory() {
        let names: Vec<_> = phlo_core::plugin::compiled_descriptors().iter().map(|d| (d.kind(), d.name)).collect();
        assert!(names.contains(&(PluginKind::AssetProvider, "echo")), "{names:?}");
        assert!(names.contains(&(PluginKind::ResourceProvider, "echo_store")), "{names:?}");
    }

    #[test]
    fn the_provider_lists_three_assets_with_a_diamond_free_dag() {
        let r = registry();
        let Instance::Asset(p) = r.get_or_create(PluginKind::AssetProvider, "echo").unwrap() else { panic!() };
        let assets = p.assets().unwrap();
        let keys: Vec<_> = assets.iter().map(|a| a.key.as_str()).collect();
        assert_eq!(keys, ["echo.greetings", "echo.numbers", "echo.summary"]);
        assert_eq!(assets[2].deps, ["echo.greetings", "echo.numbers"]);
    }

    /// A registry with the store configured by `yaml` (its `resources.echo_store` section).
    fn store_registry(yaml: &str) -> Registry {
        let src = SourceFile::new("phlo.yaml", yaml);
        let node = phlo_core::config::node::parse(&src, Format::Yaml).unwrap();
        Registry::builder()
            .register(ECHO_STORE_PROVIDER)
            .plugin_config(PluginKind::ResourceProvider, "echo_store", node)
            .source(src)
            .build()
            .unwrap()
    }

    #[test]
    fn the_store_serves_its_capability_and_honours_capacity() {
        let r = store_registry("capacity: 2\n");
        let Instance::Resource(p) = r.get_or_create(PluginKind::ResourceProvider, "echo_store").unwrap() else {
            panic!()
        };
        let store = p.resource(&Capability::parse(ECHO_STORE).unwrap()).unwrap().downcast::<EchoStore>().unwrap();
        store.put("t", vec!["a".into()]).unwrap();
        assert_eq!(store.get("t").unwrap(), ["a"]);
        let e = store.put("t", vec!["a".into(), "b".into(), "c".into()]).unwrap_err();
        assert!(e.to_string().contains("capacity of 2"));
        assert!(p.resource(&Capability::parse("table_store:echo").unwrap()).is_err());
    }

    #[test]
    fn a_bad_store_config_fails_the_factory_with_a_position() {
        let r = store_registry("capacty: 2\n");
        let e = r.get_or_create(PluginKind::ResourceProvider, "echo_store").unwrap_err();
        let d = e.to_diagnostic();
        assert_eq!(d.location.unwrap().display(), "phlo.yaml:1:1");
        assert!(d.help.unwrap().contains("did you mean `capacity`"));
    }

    fn build(yaml: &str) -> Result<AssetSpec, PluginError> {
        let (config, diags) = read_str("phlo.yaml", Format::Yaml, yaml, &|_| None, &|s, t, f| {
            s == "assets" && t == "echo" && ECHO_TYPE.config.no_expand.contains(&f)
        });
        assert!(diags.is_empty(), "{diags}");
        let config = config.unwrap();
        let decl = &config.assets[0];
        (ECHO_TYPE.build)(&AssetTypeContext {
            key: decl.key.name.clone(),
            project_dir: Path::new(".").to_path_buf(),
            config: decl.config.clone(),
            source: Arc::clone(&config.source),
        })
    }

    #[test]
    fn the_echo_type_builds_a_spec_from_typed_config() {
        let spec =
            build("assets:\n  demo.rows:\n    type: echo\n    rows: 3\n    seed: 7\n    template: '${n}'\n").unwrap();
        assert_eq!(spec.key, "demo.rows");
        assert_eq!(spec.metadata["rows"], 3);
        assert_eq!(spec.metadata["seed"], 7);
    }

    #[test]
    fn the_echo_type_rejects_bad_config() {
        let e = build("assets:\n  d:\n    type: echo\n    rows: lots\n").unwrap_err();
        let PluginError::Config(d) = e else { panic!("{e}") };
        assert!(d.to_string().contains("phlo.yaml:4:11"), "{d}");
        let e = build("assets:\n  d:\n    type: echo\n    rows: 2000000\n").unwrap_err();
        let PluginError::Failed { message, help } = e else { panic!("{e}") };
        assert!(message.contains("more than an echo asset can produce"), "{message}");
        assert_eq!(help.as_deref(), Some("use at most 1000000 rows"));
    }

    #[test]
    fn generation_is_deterministic_per_seed() {
        let a = EchoAssetConfig { rows: 5, seed: 1, ..Default::default() };
        let b = EchoAssetConfig { rows: 5, seed: 2, ..Default::default() };
        assert_eq!(generate(&a), generate(&a));
        assert_ne!(generate(&a), generate(&b));
        assert!(generate(&a)[4].starts_with("row 4: "));
    }
}
