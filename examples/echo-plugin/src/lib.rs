//! The reference phlo plugin crate: a capability type [`EchoStore`], a resource `echo`
//! serving it (`resources.echo`), an asset type `echo` (`{type: echo, rows: 25}`), a check
//! kind `echo_rows` (`{type: echo_rows, min: 10}`) and a hook `echo` (`hooks.echo.log`).
//! `assets.rs` adds an asset provider with assets of its own (`echo.greetings`, …).
use phlo_core::hooks::{Event, HookRegistration};
use phlo_core::plugin::*;
use phlo_core::spec::{AssetKind, AssetSpec, Finding, MaterializeResult, RunContext, RunError};
use schemars::JsonSchema;
use serde::Deserialize;
use std::{collections::BTreeMap, io::Write, sync::Mutex, sync::PoisonError};

/// Where echo rows live (the capability this crate defines): `put` replaces a table, `get`
/// copies one.
pub trait EchoStore: Send + Sync {
    fn put(&self, table: &str, rows: Vec<String>) -> Result<(), String>;
    fn get(&self, table: &str) -> Option<Vec<String>>;
}
phlo_core::capability!(dyn EchoStore = "echo_store");

/// `resources.echo` in phlo.yaml.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MemoryConfig {
    /// Most rows one table may hold (default 100000).
    pub capacity: Option<u32>,
}

/// An in-memory [`EchoStore`].
pub struct Memory(u32, Mutex<BTreeMap<String, Vec<String>>>);
impl Plugin for Memory {
    const NAME: &'static str = "echo";
    const DESCRIPTION: &'static str = "An in-memory table store for examples and tests";
    type Config = MemoryConfig;
}
impl Resource for Memory {
    fn create(config: MemoryConfig, _: &PluginContext) -> Result<Self, PluginError> {
        Ok(Memory(config.capacity.unwrap_or(100_000), Mutex::default()))
    }
    fn probe(&self) -> Result<(), PluginError> {
        (self.0 > 0).then_some(()).ok_or_else(|| PluginError::with_help("capacity is 0", "raise it"))
    }
}
impl EchoStore for Memory {
    fn put(&self, table: &str, rows: Vec<String>) -> Result<(), String> {
        if rows.len() > self.0 as usize {
            return Err(format!("{} rows exceed the echo store's capacity of {}", rows.len(), self.0));
        }
        self.1.lock().unwrap_or_else(PoisonError::into_inner).insert(table.into(), rows);
        Ok(())
    }
    fn get(&self, table: &str) -> Option<Vec<String>> {
        self.1.lock().unwrap_or_else(PoisonError::into_inner).get(table).cloned()
    }
}
phlo_core::register!(resource Memory, provides: [dyn EchoStore]);

/// The keys of an `assets.<key>: {type: echo, …}` entry.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct EchoConfig {
    /// How many rows the asset produces (default 10).
    pub rows: Option<u32>,
    /// Seed of the generator: the same seed gives the same rows.
    pub seed: u64,
    /// Row text (default `row ${n}: ${value}`): the row number and a seeded number; never `${}`-expanded.
    pub template: Option<String>,
}
/// The rows of an echo asset: deterministic per seed.
pub fn generate(c: &EchoConfig) -> Vec<String> {
    let template = c.template.as_deref().unwrap_or("row ${n}: ${value}");
    let value = |n: u64| ((c.seed ^ n).wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 54).to_string();
    (0..c.rows.unwrap_or(10))
        .map(|n| template.replace("${n}", &n.to_string()).replace("${value}", &value(n.into())))
        .collect()
}
pub(crate) fn store(ctx: &RunContext, rows: Vec<String>) -> Result<MaterializeResult, RunError> {
    let n = rows.len() as u64;
    ctx.capability::<dyn EchoStore>()?.put(&ctx.asset, rows).map_err(RunError::permanent)?;
    Ok(MaterializeResult::new().with_row_count(n))
}

/// The `echo` asset type: rows generated from a template and a seed.
pub struct EchoRows;
impl Plugin for EchoRows {
    const NAME: &'static str = "echo";
    const DESCRIPTION: &'static str = "Rows generated from a template and a seed";
    type Config = EchoConfig;
    const NO_EXPAND: &'static [&'static str] = &["template"];
}
impl AssetType for EchoRows {
    const KIND: AssetKind = AssetKind::Ingestion;
    fn build(c: EchoConfig, ctx: &AssetTypeContext) -> Result<AssetSpec, PluginError> {
        let spec = AssetSpec::new(ctx.key.as_str()).with_group("echo").with_metadata("rows", c.rows.unwrap_or(10));
        Ok(spec.with_run(move |run: RunContext| std::future::ready(store(&run, generate(&c)))))
    }
}
phlo_core::register!(asset_type EchoRows, requires: [dyn EchoStore]);

/// `{type: echo_rows, min: N}`: the asset's echo table has at least `min` rows.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EchoRowsCheck {
    /// The fewest rows allowed.
    pub min: u64,
}
impl Plugin for EchoRowsCheck {
    const NAME: &'static str = "echo_rows";
    const DESCRIPTION: &'static str = "An echo table having fewer than `min` rows";
    type Config = EchoRowsCheck;
}
impl CheckKind for EchoRowsCheck {
    fn build(config: EchoRowsCheck, _: &CheckContext) -> Result<Self, PluginError> {
        Ok(config)
    }
    fn evaluate(&self, ctx: &RunContext) -> Result<Finding, String> {
        let rows = ctx.capability::<dyn EchoStore>().map_err(|e| e.message)?.get(&ctx.asset).map_or(0, |r| r.len());
        Ok(Finding::new(u64::from((rows as u64) < self.min), 1).with_metadata("rows", rows))
    }
}
phlo_core::register!(check EchoRowsCheck, requires: [dyn EchoStore]);

/// `hooks.echo`: `{log: path}` appends `<event type> <asset>` lines to that file.
#[derive(Default, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct EchoHook {
    /// The file, relative to the project (no log when unset).
    pub log: Option<std::path::PathBuf>,
}
impl Plugin for EchoHook {
    const NAME: &'static str = "echo";
    const DESCRIPTION: &'static str = "One line per event in a file";
    type Config = EchoHook;
}
impl HookProvider for EchoHook {
    fn create(c: EchoHook, ctx: &PluginContext) -> Result<Self, PluginError> {
        Ok(EchoHook { log: c.log.map(|p| ctx.project_path("log", p)).transpose()? })
    }
    fn hooks(&self) -> Vec<HookRegistration> {
        let Some(path) = self.log.clone() else { return Vec::new() };
        vec![HookRegistration::new("echo", "log", move |e: &Event| {
            let mut f = std::fs::OpenOptions::new().create(true).append(true).open(&path)?;
            Ok(writeln!(f, "{} {}", e.event_type, e.correlation.asset_key.as_deref().unwrap_or("-"))?)
        })]
    }
}
phlo_core::register!(hook_provider EchoHook);

pub mod assets;
#[cfg(test)]
mod tests;
