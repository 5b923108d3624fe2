//! The hook bus: typed lifecycle events, ordered synchronous handlers, async observers.
//!
//! * [`event`] — the event model (`ingestion.start`, `quality.result`, …);
//! * [`bus`] — registrations, filters, failure policies, the observer lane;
//! * [`testkit`] — a recording hook for tests.
//!
//! Hook providers (plugins of kind hook provider) return [`HookRegistration`]s; phlo.yaml
//! `hooks.<provider>: {enabled, priority, failure_policy, …}` overrides their defaults, and
//! [`bus_for_project`] builds the frozen bus.

pub mod bus;
pub mod event;
pub mod testkit;

pub use bus::{
    DEFAULT_PRIORITY, Hook, HookBus, HookBusBuilder, HookError, HookFailure, HookFilter, HookRegistration, HookRow,
    Observed, Observer,
};
pub use event::{
    AssetEvent, Correlation, EVENT_VERSION, Event, EventId, EventPayload, EventType, RunEvent, ServiceEvent, Status,
};

pub use crate::config::FailurePolicy;
use crate::diagnostic::{Code, Diagnostic, Diagnostics};
use crate::plugin::{Instance, PluginKind};
use crate::project::Project;

/// Builds the project's bus: every enabled, ready hook provider's registrations, with the
/// overrides of `hooks.<provider>` in phlo.yaml applied.
///
/// # Errors
/// Duplicate hook names, or a selection filter that does not resolve.
pub fn bus_for_project(project: &Project) -> Result<HookBus, Diagnostics> {
    let mut builder = HookBus::builder();
    let mut diags = Diagnostics::new();
    for entry in project.registry.list().iter().filter(|e| e.kind() == PluginKind::HookProvider && e.is_enabled()) {
        let section = project.config.hooks.iter().find(|h| h.name.name == entry.name());
        if section.is_some_and(|s| !s.common.enabled) {
            continue;
        }
        if project.readiness_of(entry.kind(), entry.name()).is_some_and(|r| !r.ready) {
            continue; // reported by the project load
        }
        let Ok(Instance::Hook(provider)) = project.registry.get_or_create(PluginKind::HookProvider, entry.name())
        else {
            continue; // a failed factory was reported by the project load
        };
        for mut reg in provider.hooks() {
            reg.plugin = entry.name().into();
            if let Some(s) = section {
                if let Some(p) = s.common.priority {
                    reg.priority = p;
                }
                if let Some(p) = s.common.failure_policy {
                    reg.policy = p;
                }
            }
            if let Err(e) = builder.register(reg) {
                diags.push(
                    Diagnostic::error(Code::HookSetup, e.to_string())
                        .with_help("give each hook of a plugin its own name"),
                );
            }
        }
    }
    if diags.has_errors() {
        return Err(diags);
    }
    builder.freeze(Some(&project.graph)).map_err(|e| {
        Diagnostics::from(
            Diagnostic::error(Code::HookSetup, e.to_string())
                .with_help("fix the hook's selection filter (see `phlo assets list` for the keys)"),
        )
    })
}

#[cfg(test)]
mod tests;
