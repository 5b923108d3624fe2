//! The hook bus: typed lifecycle events, ordered synchronous handlers, async observers.
//!
//! * [`event`] — the event model (`ingestion.start`, `quality.result`, …);
//! * [`bus`] — registrations, filters, failure policies, the observer lane;
//! * [`testkit`] — a recording hook for tests.
//!
//! Hook providers (plugins of kind hook provider) return [`HookRegistration`]s; phlo.yaml
//! `hooks.<provider>: {enabled, priority, failure_policy, …}` overrides their defaults, and
//! `phlo_core::project::bus_for_project` builds the frozen bus.

pub mod bus;
pub mod event;
pub mod testkit;

pub use bus::{
    DEFAULT_PRIORITY, FailurePolicy, Hook, HookBus, HookBusBuilder, HookError, HookFailure, HookFilter,
    HookRegistration, HookRow, Observed, Observer,
};
pub use event::{
    AssetEvent, Correlation, EVENT_VERSION, Event, EventId, EventPayload, EventType, InputVersions, RunEvent,
    ServiceEvent, SourceRequest, Status, StepVersions,
};

#[cfg(test)]
mod tests;
