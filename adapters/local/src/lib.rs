//! The `local` orchestrator adapter: runs the asset graph in-process on tokio.
//!
//! A [`scheduler::Scheduler`] (a plain data structure: in-degree counters and a ready
//! queue in a deterministic order) decides what may run; the [`executor`] runs it with
//! bounded concurrency, retries with seeded jitter, per-asset timeouts, cooperative
//! cancellation, checks that gate downstream assets, and every lifecycle event in order.
//! The tokio runtime belongs to the binary: [`LocalAdapter::execute`] returns a future.

pub mod executor;
pub mod scheduler;

use std::sync::Arc;

use phlo_core::execution::{RunReport, RunRequest};
use phlo_core::plugin::{Factory, OrchestratorAdapter, PluginContext, PluginDescriptor, PluginError, PluginMetadata};
use phlo_core::spec::BoxFuture;

/// The in-process adapter.
#[derive(Debug, Default)]
pub struct LocalAdapter;

impl OrchestratorAdapter for LocalAdapter {
    fn execute(&self, request: RunRequest) -> BoxFuture<'static, RunReport> {
        Box::pin(executor::execute(request))
    }
}

fn create(_: &PluginContext) -> Result<Arc<dyn OrchestratorAdapter>, PluginError> {
    Ok(Arc::new(LocalAdapter))
}

/// The `local` orchestrator adapter (the default).
pub const LOCAL: PluginDescriptor = PluginDescriptor::new("local", env!("CARGO_PKG_NAME"), Factory::Adapter(create))
    .with_metadata(
        PluginMetadata::new(env!("CARGO_PKG_VERSION"), "Runs the asset graph in-process on tokio")
            .author("phlo developers")
            .license("Apache-2.0")
            .tags(&["adapter", "executor"]),
    );

phlo_core::submit_plugin!(LOCAL);

#[cfg(test)]
mod tests;
