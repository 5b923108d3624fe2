//! An asset provider: assets written in code (`echo.greetings`, `echo.numbers`,
//! `echo.summary`), each requiring the crate's [`EchoStore`](crate::EchoStore).

use phlo_core::plugin::{AssetProvider, NoConfig, Plugin, PluginContext, PluginError};
use phlo_core::spec::{AssetKind, AssetSpec, RunContext};

use crate::{EchoStore, store};

/// The `echo` asset provider: three assets of its own.
pub struct EchoAssets;
impl Plugin for EchoAssets {
    const NAME: &'static str = "echo";
    const DESCRIPTION: &'static str = "Example assets: greetings, numbers and a summary";
    type Config = NoConfig;
}
impl AssetProvider for EchoAssets {
    fn create(_: NoConfig, _: &PluginContext) -> Result<Self, PluginError> {
        Ok(EchoAssets)
    }
    fn assets(&self) -> Result<Vec<AssetSpec>, PluginError> {
        let asset = |key: &str| AssetSpec::new(key).with_group("echo").require::<dyn EchoStore>();
        Ok(vec![
            asset("echo.greetings").with_kind(AssetKind::Ingestion).with_run(|ctx: RunContext| async move {
                store(&ctx, ["hello", "bonjour", "hola", "hallo"].map(String::from).to_vec())
            }),
            asset("echo.numbers")
                .with_kind(AssetKind::Ingestion)
                .with_run(|ctx: RunContext| async move { store(&ctx, (1..=100).map(|n| n.to_string()).collect()) }),
            asset("echo.summary").with_dep("echo.greetings").with_dep("echo.numbers").with_run(
                |ctx: RunContext| async move {
                    let s = ctx.capability::<dyn EchoStore>()?;
                    let count = |t: &str| s.get(t).map_or(0, |r| r.len());
                    store(
                        &ctx,
                        vec![format!("{} greetings, {} numbers", count("echo.greetings"), count("echo.numbers"))],
                    )
                },
            ),
        ])
    }
}
phlo_core::register!(asset_provider EchoAssets);
