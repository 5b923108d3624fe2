//! The hook bus: a synchronous lane of ordered handlers and an observer lane.
//!
//! * **Synchronous lane.** Handlers run in the emitting thread, in `(priority, plugin,
//!   hook)` order (lower priority first), from per-event-type tables built once when the
//!   bus is frozen: an emit indexes one table and never sorts or inspects types. Filters
//!   (asset keys or a selection, tags) are AND-ed with the type. A handler's error or panic
//!   goes through its failure policy — `ignore`, `log` (default), `raise` (stop and return
//!   the error to the emitting step) — and becomes a `hook.errored` event. Re-entrant emits
//!   are allowed up to a bounded depth.
//! * **Observer lane.** After the handlers, the event goes to async subscribers through
//!   `async-broadcast` in overflow mode: publishing never waits, a lagging subscriber is
//!   told how many events it lost. With no subscriber it costs one atomic load.
//!
//! ```
//! use std::sync::Arc;
//! use std::sync::atomic::{AtomicUsize, Ordering};
//! use phlo_core::hooks::{Correlation, Event, EventPayload, EventType, HookBus, HookRegistration, RunEvent};
//!
//! let seen = Arc::new(AtomicUsize::new(0));
//! let counter = Arc::clone(&seen);
//! let mut bus = HookBus::builder();
//! bus.register(
//!     HookRegistration::new("my_plugin", "count_runs", move |_: &Event| {
//!         counter.fetch_add(1, Ordering::Relaxed);
//!         Ok(())
//!     })
//!     .events([EventType::RunStart]),
//! ).unwrap();
//! let bus = bus.freeze(None).unwrap();
//! bus.emit_event(Event::new(EventPayload::RunStart(RunEvent::default()), Correlation::run("r1"))).unwrap();
//! assert_eq!(seen.load(Ordering::Relaxed), 1);
//! ```

use std::cell::Cell;
use std::error::Error as StdError;
use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use rustc_hash::{FxHashMap, FxHashSet};
use serde::Serialize;

use super::event::{Event, EventPayload, EventType};
use crate::graph::{AssetGraph, Selection};
use crate::spec::AssetKey;
use schemars::JsonSchema;
use serde::Deserialize;

/// What a hook does when its handler fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum FailurePolicy {
    /// Say nothing and go on.
    Ignore,
    /// Log the failure and go on.
    #[default]
    Log,
    /// Fail the step that emitted the event.
    Raise,
}

/// What a handler returns on failure: any error (it is kept as the source of a `raise`).
pub type HookFailure = Box<dyn StdError + Send + Sync>;

/// Handles events. Closures `Fn(&Event) -> Result<(), HookFailure>` are hooks.
pub trait Hook: Send + Sync {
    /// Called for every event that passes the registration's filters.
    ///
    /// # Errors
    /// Any failure; the registration's policy decides what it does.
    fn on_event(&self, event: &Event) -> Result<(), HookFailure>;
}

impl<F> Hook for F
where
    F: Fn(&Event) -> Result<(), HookFailure> + Send + Sync,
{
    fn on_event(&self, event: &Event) -> Result<(), HookFailure> {
        self(event)
    }
}

/// Default priority of a hook (lower runs first).
pub const DEFAULT_PRIORITY: i32 = 100;
/// Default bound on nested emits from handlers.
pub const DEFAULT_MAX_DEPTH: u32 = 8;
/// Default capacity of the observer lane.
pub const DEFAULT_OBSERVER_CAPACITY: usize = 1024;

/// Which events a registration sees: types, asset keys or a selection, tags — all AND-ed;
/// an empty part passes everything.
#[derive(Debug, Clone, Default)]
pub struct HookFilter {
    /// Event types (none: all).
    pub event_types: Vec<EventType>,
    /// Asset keys; an event matches when its asset (or an end of one of its lineage edges) is listed.
    pub asset_keys: Vec<AssetKey>,
    /// A selection, resolved against the asset graph when the bus is frozen.
    pub selection: Option<Selection>,
    /// Tags that must all be present with these values (an event without tags fails).
    pub tags: Vec<(String, String)>,
}

/// One handler subscribed to the bus.
#[derive(Clone)]
pub struct HookRegistration {
    /// The plugin that registered it (set by the bus for hook providers).
    pub plugin: Arc<str>,
    /// The hook's name, unique within its plugin.
    pub name: Arc<str>,
    /// Lower runs first.
    pub priority: i32,
    /// What a failure does.
    pub policy: FailurePolicy,
    /// Which events it sees.
    pub filter: HookFilter,
    /// The handler.
    pub handler: Arc<dyn Hook>,
}

impl fmt::Debug for HookRegistration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HookRegistration")
            .field("plugin", &self.plugin)
            .field("name", &self.name)
            .field("priority", &self.priority)
            .field("policy", &self.policy)
            .field("filter", &self.filter)
            .finish_non_exhaustive()
    }
}

impl HookRegistration {
    /// A registration with the default priority, the `log` policy and no filter.
    pub fn new(plugin: impl Into<Arc<str>>, name: impl Into<Arc<str>>, handler: impl Hook + 'static) -> Self {
        Self {
            plugin: plugin.into(),
            name: name.into(),
            priority: DEFAULT_PRIORITY,
            policy: FailurePolicy::Log,
            filter: HookFilter::default(),
            handler: Arc::new(handler),
        }
    }

    /// Sets the priority.
    #[must_use]
    pub fn priority(mut self, priority: i32) -> Self {
        self.priority = priority;
        self
    }

    /// Sets the failure policy.
    #[must_use]
    pub fn policy(mut self, policy: FailurePolicy) -> Self {
        self.policy = policy;
        self
    }

    /// Only these event types.
    #[must_use]
    pub fn events(mut self, types: impl IntoIterator<Item = EventType>) -> Self {
        self.filter.event_types.extend(types);
        self
    }

    /// Only events about these assets.
    #[must_use]
    pub fn assets<K: Into<AssetKey>>(mut self, keys: impl IntoIterator<Item = K>) -> Self {
        self.filter.asset_keys.extend(keys.into_iter().map(Into::into));
        self
    }

    /// Only events about the assets a selection picks.
    #[must_use]
    pub fn select(mut self, selection: Selection) -> Self {
        self.filter.selection = Some(selection);
        self
    }

    /// Only events carrying this tag.
    #[must_use]
    pub fn tag(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.filter.tags.push((key.into(), value.into()));
        self
    }
}

/// An error from the bus.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum HookError {
    /// A `raise` hook failed; the emitting step must fail. `source` is the hook's own error.
    Raised {
        /// The plugin.
        plugin: String,
        /// The hook.
        hook: String,
        /// The event it failed on.
        event: EventType,
        /// The hook's error (also what [`std::error::Error::source`] returns).
        source: Arc<dyn StdError + Send + Sync>,
    },
    /// Handlers emitted events from inside handlers too deeply.
    TooDeep {
        /// The refused event.
        event: EventType,
        /// The depth reached.
        depth: u32,
        /// The limit.
        limit: u32,
    },
    /// Two registrations with the same plugin and hook name.
    Duplicate {
        /// The plugin.
        plugin: String,
        /// The hook.
        hook: String,
    },
    /// A hook's selection does not resolve against the asset graph.
    Selection {
        /// The plugin.
        plugin: String,
        /// The hook.
        hook: String,
        /// The selection error.
        error: String,
    },
}

impl fmt::Display for HookError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HookError::Raised { plugin, hook, event, source } => {
                write!(f, "hook `{hook}` of plugin `{plugin}` failed on `{event}`: {source}")
            }
            HookError::TooDeep { event, depth, limit } => write!(
                f,
                "`{event}` emitted at nesting depth {depth}: handlers re-emit events in a loop (limit {limit})"
            ),
            HookError::Duplicate { plugin, hook } => {
                write!(f, "hook `{hook}` of plugin `{plugin}` is registered twice")
            }
            HookError::Selection { plugin, hook, error } => write!(f, "hook `{hook}` of plugin `{plugin}`: {error}"),
        }
    }
}

impl StdError for HookError {
    /// The hook's own error, as it returned it (`downcast_ref` reaches its type).
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        match self {
            HookError::Raised { source, .. } => Some(&**source as &(dyn StdError + 'static)),
            _ => None,
        }
    }
}

#[derive(Debug)]
struct PanicError(String);

impl fmt::Display for PanicError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "panicked: {}", self.0)
    }
}

impl StdError for PanicError {}

/// Collects registrations; [`HookBusBuilder::freeze`] builds the bus.
pub struct HookBusBuilder {
    registrations: Vec<HookRegistration>,
    max_depth: u32,
    capacity: usize,
}

impl fmt::Debug for HookBusBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HookBusBuilder").field("registrations", &self.registrations).finish_non_exhaustive()
    }
}

impl Default for HookBusBuilder {
    fn default() -> Self {
        Self { registrations: Vec::new(), max_depth: DEFAULT_MAX_DEPTH, capacity: DEFAULT_OBSERVER_CAPACITY }
    }
}

impl HookBusBuilder {
    /// Adds a registration.
    ///
    /// # Errors
    /// [`HookError::Duplicate`] when the plugin already registered a hook of that name.
    pub fn register(&mut self, registration: HookRegistration) -> Result<&mut Self, HookError> {
        if self.registrations.iter().any(|r| r.plugin == registration.plugin && r.name == registration.name) {
            return Err(HookError::Duplicate {
                plugin: registration.plugin.to_string(),
                hook: registration.name.to_string(),
            });
        }
        self.registrations.push(registration);
        Ok(self)
    }

    /// Bounds nested emits (default 8).
    pub fn max_depth(&mut self, depth: u32) -> &mut Self {
        self.max_depth = depth.max(1);
        self
    }

    /// Sets how many events the observer lane holds before lagging subscribers lose the oldest.
    pub fn observer_capacity(&mut self, capacity: usize) -> &mut Self {
        self.capacity = capacity.max(1);
        self
    }

    /// Freezes the bus: sorts every registration into its per-type tables and resolves
    /// selections against `graph`.
    ///
    /// # Errors
    /// A selection that does not resolve (or a selection with no graph to resolve it on).
    pub fn freeze(self, graph: Option<&AssetGraph>) -> Result<HookBus, HookError> {
        let mut regs = self.registrations;
        regs.sort_by(|a, b| (a.priority, &a.plugin, &a.name).cmp(&(b.priority, &b.plugin, &b.name)));
        let mut entries = Vec::with_capacity(regs.len());
        for r in &regs {
            let mut keys: Option<FxHashSet<AssetKey>> =
                (!r.filter.asset_keys.is_empty()).then(|| r.filter.asset_keys.iter().cloned().collect());
            if let Some(sel) = &r.filter.selection {
                let selection_error = |error: String| HookError::Selection {
                    plugin: r.plugin.to_string(),
                    hook: r.name.to_string(),
                    error,
                };
                let graph = graph
                    .ok_or_else(|| selection_error("a selection filter needs the project's asset graph".into()))?;
                let picked = sel.select(graph).map_err(|e| selection_error(e.to_string()))?;
                let set = keys.get_or_insert_with(FxHashSet::default);
                set.extend(picked.iter().map(|&i| graph.node(i).spec.key.clone()));
            }
            entries.push(Entry {
                plugin: Arc::clone(&r.plugin),
                name: Arc::clone(&r.name),
                policy: r.policy,
                assets: keys,
                tags: r.filter.tags.clone().into_boxed_slice(),
                handler: Arc::clone(&r.handler),
            });
        }
        let mut tables: Vec<Table> = Vec::with_capacity(EventType::COUNT);
        for t in EventType::ALL {
            let table: Vec<Entry> = regs
                .iter()
                .zip(&entries)
                .filter(|(r, _)| r.filter.event_types.is_empty() || r.filter.event_types.contains(t))
                .map(|(_, e)| e.clone())
                .collect();
            tables.push(Table::new(table));
        }
        let (mut sender, receiver) = async_broadcast::broadcast(self.capacity);
        sender.set_overflow(true);
        sender.set_await_active(false);
        Ok(HookBus {
            tables,
            registrations: regs,
            sender,
            inactive: receiver.deactivate(),
            subscribers: Arc::new(AtomicUsize::new(0)),
            max_depth: self.max_depth,
        })
    }
}

/// One hash of a tag's key and value.
#[inline]
fn tag_hash(key: &str, value: &str) -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = rustc_hash::FxBuildHasher.build_hasher();
    h.write(key.as_bytes());
    h.write_u8(0xff);
    h.write(value.as_bytes());
    h.finish()
}

/// The handlers of one event type, in run order, indexed so that an emit touches only those
/// that can accept it: handlers filtered by asset key are found by the event's assets, those
/// filtered by tags (and not by asset) by the event's tags; the rest are always candidates.
struct Table {
    entries: Box<[Entry]>,
    /// Whether every entry is a candidate for every event (no index needed).
    flat: bool,
    always: Box<[u32]>,
    by_asset: FxHashMap<AssetKey, Vec<u32>>,
    /// A hash of a tag's key and value → entries (a collision only adds a candidate: each
    /// checks its whole filter).
    by_tag: FxHashMap<u64, Vec<u32>>,
}

impl Table {
    fn new(entries: Vec<Entry>) -> Self {
        let mut always = Vec::new();
        let mut by_asset = FxHashMap::<AssetKey, Vec<u32>>::default();
        let mut by_tag = FxHashMap::<u64, Vec<u32>>::default();
        for (i, e) in entries.iter().enumerate() {
            let i = u32::try_from(i).unwrap_or(u32::MAX);
            match (&e.assets, e.tags.first()) {
                (Some(keys), _) => keys.iter().for_each(|k| by_asset.entry(k.clone()).or_default().push(i)),
                (None, Some((k, v))) => by_tag.entry(tag_hash(k, v)).or_default().push(i),
                (None, None) => always.push(i),
            }
        }
        Self {
            flat: by_asset.is_empty() && by_tag.is_empty(),
            entries: entries.into_boxed_slice(),
            always: always.into_boxed_slice(),
            by_asset,
            by_tag,
        }
    }

    fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The entries that may accept `event`, in run order (each still checks its whole filter).
    fn candidates(&self, event: &Event, out: &mut Vec<u32>) {
        out.extend_from_slice(&self.always);
        if !self.by_asset.is_empty() {
            event.concerns(|k| {
                if let Some(v) = self.by_asset.get(k) {
                    out.extend_from_slice(v);
                }
                false
            });
        }
        if !self.by_tag.is_empty() {
            for (k, v) in &event.tags {
                if let Some(found) = self.by_tag.get(&tag_hash(k, v)) {
                    out.extend_from_slice(found);
                }
            }
        }
        out.sort_unstable();
        out.dedup();
    }
}

#[derive(Clone)]
struct Entry {
    plugin: Arc<str>,
    name: Arc<str>,
    policy: FailurePolicy,
    assets: Option<FxHashSet<AssetKey>>,
    tags: Box<[(String, String)]>,
    handler: Arc<dyn Hook>,
}

impl Entry {
    #[inline]
    fn accepts(&self, event: &Event) -> bool {
        if let Some(keys) = &self.assets
            && !event.concerns(|k| keys.contains(k))
        {
            return false;
        }
        self.tags.iter().all(|(k, v)| event.tags.get(k).is_some_and(|x| x == v))
    }
}

thread_local! {
    static DEPTH: Cell<u32> = const { Cell::new(0) };
}

/// The frozen bus.
pub struct HookBus {
    tables: Vec<Table>,
    registrations: Vec<HookRegistration>,
    sender: async_broadcast::Sender<Arc<Event>>,
    inactive: async_broadcast::InactiveReceiver<Arc<Event>>,
    subscribers: Arc<AtomicUsize>,
    max_depth: u32,
}

impl fmt::Debug for HookBus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HookBus").field("registrations", &self.registrations).finish_non_exhaustive()
    }
}

impl HookBus {
    /// Starts a bus.
    pub fn builder() -> HookBusBuilder {
        HookBusBuilder::default()
    }

    /// A bus with no hooks (events only reach observers).
    pub fn empty() -> HookBus {
        HookBusBuilder::default().freeze(None).unwrap_or_else(|_| unreachable!("an empty bus has no selection"))
    }

    /// Every registration, in run order.
    pub fn registrations(&self) -> &[HookRegistration] {
        &self.registrations
    }

    /// The registrations that see events of type `t`, in run order.
    pub fn table(&self, t: EventType) -> impl Iterator<Item = &HookRegistration> {
        self.registrations.iter().filter(move |r| r.filter.event_types.is_empty() || r.filter.event_types.contains(&t))
    }

    /// Emits an event: the handlers of its type in order, then the observers.
    ///
    /// # Errors
    /// A `raise` hook failed ([`HookError::Raised`], carrying the hook's own error), or
    /// handlers re-emitted past the depth limit ([`HookError::TooDeep`]).
    #[inline]
    pub fn emit(&self, event: &Arc<Event>) -> Result<(), HookError> {
        let table = &self.tables[event.event_type as usize];
        if !table.is_empty() {
            self.dispatch(table, event).map_err(|e| *e)?;
        }
        if self.subscribers.load(Ordering::Relaxed) > 0 {
            // overflow mode: never waits; the oldest event is dropped for laggards
            let _ = self.sender.try_broadcast(Arc::clone(event));
        }
        Ok(())
    }

    /// Emits an event given by value.
    ///
    /// # Errors
    /// As [`HookBus::emit`].
    pub fn emit_event(&self, event: Event) -> Result<(), HookError> {
        let table = &self.tables[event.event_type as usize];
        if !table.is_empty() {
            self.dispatch(table, &event).map_err(|e| *e)?;
        }
        if self.subscribers.load(Ordering::Relaxed) > 0 {
            // shared only when an observer listens
            let _ = self.sender.try_broadcast(Arc::new(event));
        }
        Ok(())
    }

    /// Whether an event of type `t` would reach anyone (a handler or an observer): producers
    /// skip building events nobody receives.
    #[inline]
    pub fn wants(&self, t: EventType) -> bool {
        !self.tables[t as usize].is_empty() || self.subscribers.load(Ordering::Relaxed) > 0
    }

    /// Errors are boxed here: the common path returns one pointer, not a wide enum.
    #[inline]
    fn dispatch(&self, table: &Table, event: &Event) -> Result<(), Box<HookError>> {
        DEPTH.with(|d| {
            let depth = d.get();
            if depth >= self.max_depth {
                return Err(Box::new(HookError::TooDeep {
                    event: event.event_type,
                    depth: depth + 1,
                    limit: self.max_depth,
                }));
            }
            d.set(depth + 1);
            let result = self.run_handlers(table, event);
            d.set(depth);
            result
        })
    }

    #[inline]
    fn run_handlers(&self, table: &Table, event: &Event) -> Result<(), Box<HookError>> {
        if table.flat {
            for entry in &table.entries {
                self.run_one(entry, event)?;
            }
            return Ok(());
        }
        let mut picked = Vec::new();
        table.candidates(event, &mut picked);
        picked.iter().filter_map(|&i| table.entries.get(i as usize)).try_for_each(|entry| self.run_one(entry, event))
    }

    /// Runs one handler, if its filter accepts the event.
    #[inline(always)]
    fn run_one(&self, entry: &Entry, event: &Event) -> Result<(), Box<HookError>> {
        {
            if !entry.accepts(event) {
                return Ok(());
            }
            let failure: HookFailure = match catch_unwind(AssertUnwindSafe(|| entry.handler.on_event(event))) {
                Ok(Ok(())) => return Ok(()),
                Ok(Err(e)) => e,
                Err(payload) => Box::new(PanicError(crate::diagnostic::panic_message(payload.as_ref()))),
            };
            let source: Arc<dyn StdError + Send + Sync> = Arc::from(failure);
            self.report_failure(entry, event, &source);
            if entry.policy == FailurePolicy::Raise {
                return Err(Box::new(HookError::Raised {
                    plugin: entry.plugin.to_string(),
                    hook: entry.name.to_string(),
                    event: event.event_type,
                    source,
                }));
            }
        }
        Ok(())
    }

    #[cold]
    fn report_failure(&self, entry: &Entry, event: &Event, error: &Arc<dyn StdError + Send + Sync>) {
        match entry.policy {
            FailurePolicy::Ignore => {}
            FailurePolicy::Log => tracing::warn!(
                plugin = %entry.plugin, hook = %entry.name, event = %event.event_type, "hook failed: {error}"
            ),
            FailurePolicy::Raise => tracing::error!(
                plugin = %entry.plugin, hook = %entry.name, event = %event.event_type, "hook failed: {error}"
            ),
        }
        // a failure while handling hook.errored is not reported again (no feedback loop)
        if event.event_type == EventType::HookErrored {
            return;
        }
        let errored = Event::new(
            EventPayload::HookErrored {
                plugin: entry.plugin.to_string(),
                hook: entry.name.to_string(),
                failed_event: event.event_type,
                failed_event_id: event.id.to_string(),
                error: error.to_string(),
                policy: entry.policy,
            },
            event.correlation.clone(),
        )
        .with_tags(event.tags.clone());
        if let Err(e) = self.emit(&Arc::new(errored)) {
            tracing::warn!("could not deliver hook.errored: {e}");
        }
    }

    /// A new observer: it receives every event emitted from now on, in order, and is told
    /// how many it lost when it falls behind by more than the lane's capacity.
    pub fn subscribe(&self) -> Observer {
        self.subscribers.fetch_add(1, Ordering::Relaxed);
        Observer { receiver: self.inactive.activate_cloned(), count: Arc::clone(&self.subscribers) }
    }
}

/// What an observer receives.
#[derive(Debug, Clone, PartialEq)]
pub enum Observed {
    /// The next event.
    Event(Arc<Event>),
    /// The observer fell behind and this many events were dropped before the next one.
    Lost(u64),
}

/// An async subscriber of the observer lane.
pub struct Observer {
    receiver: async_broadcast::Receiver<Arc<Event>>,
    count: Arc<AtomicUsize>,
}

impl fmt::Debug for Observer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Observer").field("pending", &self.receiver.len()).finish()
    }
}

impl Drop for Observer {
    fn drop(&mut self) {
        self.count.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Observer {
    /// Waits for the next event (or the count of lost ones). `None` when the bus is gone.
    pub async fn recv(&mut self) -> Option<Observed> {
        match self.receiver.recv_direct().await {
            Ok(e) => Some(Observed::Event(e)),
            Err(async_broadcast::RecvError::Overflowed(n)) => Some(Observed::Lost(n)),
            Err(async_broadcast::RecvError::Closed) => None,
        }
    }

    /// The next event if one is waiting, without blocking.
    pub fn try_recv(&mut self) -> Option<Observed> {
        match self.receiver.try_recv() {
            Ok(e) => Some(Observed::Event(e)),
            Err(async_broadcast::TryRecvError::Overflowed(n)) => Some(Observed::Lost(n)),
            Err(_) => None,
        }
    }

    /// Blocks the thread until the next event (for non-async consumers).
    pub fn recv_blocking(&mut self) -> Option<Observed> {
        match self.receiver.recv_blocking() {
            Ok(e) => Some(Observed::Event(e)),
            Err(async_broadcast::RecvError::Overflowed(n)) => Some(Observed::Lost(n)),
            Err(async_broadcast::RecvError::Closed) => None,
        }
    }
}

/// One row of the effective hook table, for `phlo hooks list`.
#[derive(Debug, Clone, Serialize)]
pub struct HookRow {
    /// The event type.
    pub event: EventType,
    /// 1-based position in that type's table.
    pub order: usize,
    /// The plugin.
    pub plugin: String,
    /// The hook.
    pub hook: String,
    /// Its priority.
    pub priority: i32,
    /// Its failure policy.
    pub failure_policy: FailurePolicy,
    /// Asset filter (keys, or the selection text).
    pub assets: Vec<String>,
    /// Tag filter, `k=v`.
    pub tags: Vec<String>,
}

impl HookBus {
    /// The effective table: for every event type, its handlers in run order.
    pub fn rows(&self) -> Vec<HookRow> {
        let mut rows = Vec::new();
        for &t in EventType::ALL {
            for (i, r) in self.table(t).enumerate() {
                let mut assets: Vec<String> = r.filter.asset_keys.iter().map(ToString::to_string).collect();
                if let Some(s) = &r.filter.selection {
                    assets.push(format!("select: {s}"));
                }
                rows.push(HookRow {
                    event: t,
                    order: i + 1,
                    plugin: r.plugin.to_string(),
                    hook: r.name.to_string(),
                    priority: r.priority,
                    failure_policy: r.policy,
                    assets,
                    tags: r.filter.tags.iter().map(|(k, v)| format!("{k}={v}")).collect(),
                });
            }
        }
        rows
    }
}
