//! A test kit for hook and plugin authors: a hook that records what it sees, and helpers
//! to assert on it.
//!
//! ```
//! use phlo_core::hooks::testkit::RecordingHook;
//! use phlo_core::hooks::{Correlation, Event, EventPayload, EventType, HookBus, RunEvent};
//!
//! let recorder = RecordingHook::new();
//! let mut bus = HookBus::builder();
//! bus.register(recorder.registration("tests", "recorder")).unwrap();
//! let bus = bus.freeze(None).unwrap();
//! bus.emit_event(Event::new(EventPayload::RunStart(RunEvent::default()), Correlation::run("r"))).unwrap();
//! recorder.assert_types(&[EventType::RunStart]);
//! ```

use std::sync::{Arc, Mutex, PoisonError};

use super::bus::{HookFailure, HookRegistration};
use super::event::{Event, EventType};

/// Records every event it receives, in order.
#[derive(Debug, Default)]
pub struct RecordingHook {
    events: Mutex<Vec<Event>>,
}

impl RecordingHook {
    /// A new, shared recorder.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// A registration (priority 100, policy `log`, no filter) feeding this recorder.
    pub fn registration(self: &Arc<Self>, plugin: &str, name: &str) -> HookRegistration {
        let me = Arc::clone(self);
        HookRegistration::new(plugin, name, move |e: &Event| -> Result<(), HookFailure> {
            me.events.lock().unwrap_or_else(PoisonError::into_inner).push(e.clone());
            Ok(())
        })
    }

    /// Every event received so far.
    pub fn events(&self) -> Vec<Event> {
        self.events.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// The types received so far.
    pub fn types(&self) -> Vec<EventType> {
        self.events.lock().unwrap_or_else(PoisonError::into_inner).iter().map(|e| e.event_type).collect()
    }

    /// `type asset` lines, e.g. `ingestion.start raw.orders` (handy in snapshots).
    pub fn lines(&self) -> Vec<String> {
        self.events
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|e| match (&e.correlation.asset_key, &e.correlation.partition) {
                (Some(a), Some(p)) => format!("{} {a} [{p}]", e.event_type),
                (Some(a), None) => format!("{} {a}", e.event_type),
                _ => e.event_type.to_string(),
            })
            .collect()
    }

    /// The first event of a type.
    pub fn find(&self, t: EventType) -> Option<Event> {
        self.events.lock().unwrap_or_else(PoisonError::into_inner).iter().find(|e| e.event_type == t).cloned()
    }

    /// Forgets what was recorded.
    pub fn clear(&self) {
        self.events.lock().unwrap_or_else(PoisonError::into_inner).clear();
    }

    /// Panics unless exactly these types were received, in this order.
    #[track_caller]
    pub fn assert_types(&self, expected: &[EventType]) {
        let got = self.types();
        assert_eq!(got, expected, "events received (left) differ from those expected (right)");
    }
}
