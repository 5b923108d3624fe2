//! The `local` orchestrator adapter: runs the asset graph in-process on tokio.
//!
//! A [`scheduler::Scheduler`] (a plain data structure: in-degree counters and a ready
//! queue in a deterministic order) decides what may run; the [`executor`] runs it with
//! bounded concurrency, retries with seeded jitter, per-asset timeouts, cooperative
//! cancellation, checks that gate downstream assets, and every lifecycle event in order.
//! The tokio runtime belongs to the binary: [`LocalAdapter::execute`] returns a future.

mod checks;
pub mod executor;
pub mod scheduler;

use phlo_core::execution::{RunReport, RunRequest};
use phlo_core::plugin::{NoConfig, OrchestratorAdapter, Plugin, PluginContext, PluginError};
use phlo_core::spec::BoxFuture;

/// The in-process adapter.
#[derive(Debug, Default)]
pub struct LocalAdapter;

impl Plugin for LocalAdapter {
    const NAME: &'static str = "local";
    const DESCRIPTION: &'static str = "Runs the asset graph in-process on tokio";
    type Config = NoConfig;
    const TAGS: &'static [&'static str] = &["adapter", "executor"];
}

impl OrchestratorAdapter for LocalAdapter {
    fn create(_: NoConfig, _: &PluginContext) -> Result<Self, PluginError> {
        Ok(LocalAdapter)
    }

    fn execute(&self, request: RunRequest) -> BoxFuture<'static, RunReport> {
        Box::pin(executor::execute(request))
    }
}

phlo_core::register!(adapter LocalAdapter);

#[cfg(test)]
mod tests;
