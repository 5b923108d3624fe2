//! Lifecycle events: a typed payload in an envelope (id, version, timestamp, tags,
//! correlation). Every event serialises to JSON with stable field names.
//!
//! Ids of retryable work (ingestion, transform, publish, quality, lineage, skips) are
//! derived from the event type and the correlation (run, asset, partition, attempt, check):
//! the same work gives the same id, so consumers can de-duplicate replays.
//!
//! ```
//! use phlo_core::hooks::{Correlation, Event, EventPayload, EventType, AssetEvent};
//! let c = Correlation::run("run-1").with_asset("raw.orders").with_partition("2024-01-01");
//! let a = Event::new(EventPayload::IngestionStart(AssetEvent::default()), c.clone());
//! let b = Event::new(EventPayload::IngestionStart(AssetEvent::default()), c);
//! assert_eq!(a.event_type(), EventType::IngestionStart);
//! assert_eq!(a.id, b.id);
//! ```

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::spec::{AssetKey, CheckResult};

/// Version of the event JSON format.
pub const EVENT_VERSION: u32 = 1;

macro_rules! event_types {
    ($( $(#[$doc:meta])* $variant:ident = $name:literal, retryable: $retry:literal; )*) => {
        /// The kind of an event; its name is phlo's (`ingestion.start`, …).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        #[repr(u8)]
        #[non_exhaustive]
        pub enum EventType {
            $( $(#[$doc])* $variant, )*
        }

        impl EventType {
            /// Every type, in declaration order (`t as usize` indexes it).
            pub const ALL: &'static [EventType] = &[$(EventType::$variant),*];

            /// The dotted name.
            pub const fn as_str(self) -> &'static str {
                match self { $( EventType::$variant => $name, )* }
            }

            /// Whether the event describes retryable work (its id is deterministic).
            pub const fn is_retryable_work(self) -> bool {
                match self { $( EventType::$variant => $retry, )* }
            }
        }
    };
}

event_types! {
    /// A service is about to start.
    ServicePreStart = "service.pre_start", retryable: false;
    /// A service started.
    ServicePostStart = "service.post_start", retryable: false;
    /// A service is about to stop.
    ServicePreStop = "service.pre_stop", retryable: false;
    /// A service stopped.
    ServicePostStop = "service.post_stop", retryable: false;
    /// A run begins.
    RunStart = "run.start", retryable: false;
    /// A run ended.
    RunEnd = "run.end", retryable: false;
    /// An ingestion asset starts.
    IngestionStart = "ingestion.start", retryable: true;
    /// An ingestion asset ended.
    IngestionEnd = "ingestion.end", retryable: true;
    /// A transform asset starts.
    TransformStart = "transform.start", retryable: true;
    /// A transform asset ended.
    TransformEnd = "transform.end", retryable: true;
    /// A publish asset starts.
    PublishStart = "publish.start", retryable: true;
    /// A publish asset ended.
    PublishEnd = "publish.end", retryable: true;
    /// An asset was not run (an upstream failed, or a blocking check failed).
    AssetSkipped = "asset.skipped", retryable: true;
    /// A quality check finished.
    QualityResult = "quality.result", retryable: true;
    /// Data flowed along edges.
    LineageEdges = "lineage.edges", retryable: true;
    /// A request to an outside system (an HTTP call of a REST source): method, URL without
    /// secrets, status, duration, bytes.
    SourceRequest = "source.request", retryable: false;
    /// A measurement.
    TelemetryMetric = "telemetry.metric", retryable: false;
    /// A log line.
    TelemetryLog = "telemetry.log", retryable: false;
    /// A hook handler failed.
    HookErrored = "hook.errored", retryable: false;
}

impl EventType {
    /// How many event types there are.
    pub const COUNT: usize = EventType::ALL.len();

    /// The type with this dotted name.
    pub fn parse(name: &str) -> Option<EventType> {
        EventType::ALL.iter().copied().find(|t| t.as_str() == name)
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for EventType {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// What an event is about: run, attempt, asset, partition, check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Correlation {
    /// The run (shared: every event of a run carries it).
    pub run_id: Option<Arc<str>>,
    /// 1 for the first attempt, 2 for the first retry, …
    pub attempt: u32,
    /// The asset.
    pub asset_key: Option<AssetKey>,
    /// The partition.
    pub partition: Option<String>,
    /// The quality check.
    pub check_name: Option<String>,
}

impl Default for Correlation {
    fn default() -> Self {
        Self { run_id: None, attempt: 1, asset_key: None, partition: None, check_name: None }
    }
}

impl Correlation {
    /// The correlation of a run.
    pub fn run(run_id: impl Into<Arc<str>>) -> Self {
        Self { run_id: Some(run_id.into()), ..Self::default() }
    }

    /// Adds the asset.
    #[must_use]
    pub fn with_asset(mut self, key: impl Into<AssetKey>) -> Self {
        self.asset_key = Some(key.into());
        self
    }

    /// Adds the partition.
    #[must_use]
    pub fn with_partition(mut self, partition: impl Into<String>) -> Self {
        self.partition = Some(partition.into());
        self
    }

    /// Sets the attempt (at least 1).
    #[must_use]
    pub fn with_attempt(mut self, attempt: u32) -> Self {
        self.attempt = attempt.max(1);
        self
    }

    /// Adds the check.
    #[must_use]
    pub fn with_check(mut self, check: impl Into<String>) -> Self {
        self.check_name = Some(check.into());
        self
    }
}

/// How a step ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// It worked.
    Succeeded,
    /// It failed.
    Failed,
    /// It was cancelled.
    Cancelled,
    /// It was skipped.
    Skipped,
}

/// `<kind>.start` / `<kind>.end` of an asset.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct AssetEvent {
    /// The asset's group.
    pub group: Option<String>,
    /// How it ended (`*.end` only).
    pub status: Option<Status>,
    /// How long it took, in milliseconds (`*.end` only).
    pub duration_ms: Option<u64>,
    /// What it reported (row counts, …).
    pub metrics: BTreeMap<String, serde_json::Value>,
    /// The error, when it failed.
    pub error: Option<String>,
    /// What the materialization was made from and what it made (`*.end` of a success).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub versions: Option<Box<StepVersions>>,
}

/// The versions of one materialization (see `phlo status`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct StepVersions {
    /// The asset's code version (its `code_version`, else its definition's fingerprint).
    pub code: Option<String>,
    /// The version of the data it wrote.
    pub data: Arc<str>,
    /// The version of what it read from outside phlo, when its type observes it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Each upstream asset's data version it read.
    pub inputs: InputVersions,
}

/// Upstream asset → the data version a step read, in key order; serialised as a JSON object.
/// A sorted list rather than a map: a step reads a few inputs, and a run builds one per step.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InputVersions(Vec<(AssetKey, Arc<str>)>);

impl InputVersions {
    /// Room for `n` inputs.
    pub fn with_capacity(n: usize) -> Self {
        Self(Vec::with_capacity(n))
    }

    /// Sets the version of `key` (in key order; a key given twice keeps the last version).
    pub fn insert(&mut self, key: AssetKey, version: Arc<str>) {
        match self.0.binary_search_by(|(k, _)| k.as_str().cmp(key.as_str())) {
            Ok(at) => self.0[at].1 = version,
            Err(at) => self.0.insert(at, (key, version)),
        }
    }

    /// The version read of `key`.
    pub fn get(&self, key: &str) -> Option<&Arc<str>> {
        self.0.binary_search_by(|(k, _)| k.as_str().cmp(key)).ok().map(|at| &self.0[at].1)
    }

    /// The inputs, in key order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&AssetKey, &Arc<str>)> + '_ {
        self.0.iter().map(|(k, v)| (k, v))
    }

    /// How many inputs.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl FromIterator<(AssetKey, Arc<str>)> for InputVersions {
    fn from_iter<I: IntoIterator<Item = (AssetKey, Arc<str>)>>(iter: I) -> Self {
        let mut v = Self::default();
        for (k, d) in iter {
            v.insert(k, d);
        }
        v
    }
}

impl Serialize for InputVersions {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.iter().map(|(k, v)| (k.as_str(), &**v)))
    }
}

/// `run.start` / `run.end`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RunEvent {
    /// The selection the run was started with.
    pub selection: Option<String>,
    /// How many assets (× partitions) the run covers.
    pub assets: usize,
    /// How it ended (`run.end` only).
    pub status: Option<Status>,
    /// How long it took (`run.end` only).
    pub duration_ms: Option<u64>,
    /// Count per outcome (`run.end` only).
    pub summary: BTreeMap<String, u64>,
    /// The partitions asked for: a key, or `FIRST..LAST` (none: each asset's latest).
    pub partitions: Option<String>,
    /// The instant the run is evaluated at (which partitions are complete).
    pub evaluated_at: Option<DateTime<Utc>>,
    /// Steps this attempt leaves out because an earlier attempt of the same run completed
    /// them (`phlo run --resume`).
    pub resumed_done: usize,
}

pub use crate::spec::SourceRequest;

/// `service.*`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ServiceEvent {
    /// The service.
    pub service: String,
    /// Free-form details.
    pub metadata: BTreeMap<String, serde_json::Value>,
}

/// The typed content of an event.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
#[non_exhaustive]
pub enum EventPayload {
    /// `service.pre_start`.
    ServicePreStart(ServiceEvent),
    /// `service.post_start`.
    ServicePostStart(ServiceEvent),
    /// `service.pre_stop`.
    ServicePreStop(ServiceEvent),
    /// `service.post_stop`.
    ServicePostStop(ServiceEvent),
    /// `run.start`.
    RunStart(RunEvent),
    /// `run.end`.
    RunEnd(RunEvent),
    /// `ingestion.start`.
    IngestionStart(AssetEvent),
    /// `ingestion.end`.
    IngestionEnd(AssetEvent),
    /// `transform.start`.
    TransformStart(AssetEvent),
    /// `transform.end`.
    TransformEnd(AssetEvent),
    /// `publish.start`.
    PublishStart(AssetEvent),
    /// `publish.end`.
    PublishEnd(AssetEvent),
    /// `asset.skipped`.
    AssetSkipped {
        /// Why.
        reason: String,
        /// The upstream asset whose failure caused the skip.
        failed_upstream: Option<AssetKey>,
        /// Skipped as unchanged (`--skip-unchanged`): the run whose materialization stands.
        #[serde(skip_serializing_if = "Option::is_none")]
        unchanged_since: Option<String>,
    },
    /// `quality.result`.
    QualityResult(Box<CheckResult>),
    /// `lineage.edges`.
    LineageEdges {
        /// `(source, target)` pairs.
        edges: Vec<(AssetKey, AssetKey)>,
    },
    /// `source.request`.
    SourceRequest(Box<SourceRequest>),
    /// `telemetry.metric`.
    TelemetryMetric {
        /// The metric.
        name: String,
        /// Its value.
        value: f64,
        /// Its unit.
        unit: Option<String>,
    },
    /// `telemetry.log`.
    TelemetryLog {
        /// `debug`, `info`, `warn`, `error`.
        level: String,
        /// The line.
        message: String,
    },
    /// `hook.errored`.
    HookErrored {
        /// The hook's plugin.
        plugin: String,
        /// The hook.
        hook: String,
        /// The event the hook failed on.
        failed_event: EventType,
        /// The failed event's id.
        failed_event_id: String,
        /// What went wrong.
        error: String,
        /// The policy that applied.
        policy: super::bus::FailurePolicy,
    },
}

impl EventPayload {
    /// The event type of this payload.
    pub fn event_type(&self) -> EventType {
        match self {
            EventPayload::ServicePreStart(_) => EventType::ServicePreStart,
            EventPayload::ServicePostStart(_) => EventType::ServicePostStart,
            EventPayload::ServicePreStop(_) => EventType::ServicePreStop,
            EventPayload::ServicePostStop(_) => EventType::ServicePostStop,
            EventPayload::RunStart(_) => EventType::RunStart,
            EventPayload::RunEnd(_) => EventType::RunEnd,
            EventPayload::IngestionStart(_) => EventType::IngestionStart,
            EventPayload::IngestionEnd(_) => EventType::IngestionEnd,
            EventPayload::TransformStart(_) => EventType::TransformStart,
            EventPayload::TransformEnd(_) => EventType::TransformEnd,
            EventPayload::PublishStart(_) => EventType::PublishStart,
            EventPayload::PublishEnd(_) => EventType::PublishEnd,
            EventPayload::AssetSkipped { .. } => EventType::AssetSkipped,
            EventPayload::QualityResult(_) => EventType::QualityResult,
            EventPayload::LineageEdges { .. } => EventType::LineageEdges,
            EventPayload::SourceRequest(_) => EventType::SourceRequest,
            EventPayload::TelemetryMetric { .. } => EventType::TelemetryMetric,
            EventPayload::TelemetryLog { .. } => EventType::TelemetryLog,
            EventPayload::HookErrored { .. } => EventType::HookErrored,
        }
    }
}

/// A 128-bit event id, written as 32 hex digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EventId(pub u128);

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:032x}", self.0)
    }
}

impl Serialize for EventId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// The input of an event id: length-prefixed fields, hashed with XXH3-128 (a specified
/// algorithm, stable across builds, platforms and versions: ids are persisted by consumers).
struct IdInput<'a>(&'a mut Vec<u8>);

impl IdInput<'_> {
    fn bytes(&mut self, bytes: &[u8]) {
        self.0.extend_from_slice(bytes);
    }

    fn field(&mut self, s: Option<&str>) {
        match s {
            Some(s) => {
                self.0.push(1);
                self.0.extend_from_slice(&(s.len() as u64).to_le_bytes());
                self.0.extend_from_slice(s.as_bytes());
            }
            None => self.0.push(0),
        }
    }

    /// Hashes what `write` puts in, in a buffer the thread reuses.
    fn hash(write: impl Fn(&mut IdInput<'_>)) -> EventId {
        thread_local! {
            static BUFFER: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
        }
        let run = |buf: &mut Vec<u8>| {
            buf.clear();
            write(&mut IdInput(buf));
            EventId(xxhash_rust::xxh3::xxh3_128(buf))
        };
        // the buffer is unavailable only while the thread is being torn down
        BUFFER
            .try_with(|cell| cell.try_borrow_mut().ok().map(|mut buf| run(&mut buf)))
            .ok()
            .flatten()
            .unwrap_or_else(|| run(&mut Vec::new()))
    }
}

static SEQUENCE: AtomicU64 = AtomicU64::new(0);

/// One lifecycle event.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Event {
    /// Unique (or, for retryable work, deterministic) id.
    pub id: EventId,
    /// [`EVENT_VERSION`].
    pub version: u32,
    /// `ingestion.start`, …
    #[serde(rename = "type")]
    pub event_type: EventType,
    /// When it happened (UTC).
    pub timestamp: DateTime<Utc>,
    /// Who produced it (`phlo`, a plugin name).
    pub producer: Cow<'static, str>,
    /// Free-form tags (run tags, asset tags).
    pub tags: BTreeMap<String, String>,
    /// What it is about.
    pub correlation: Correlation,
    /// The typed content.
    pub payload: EventPayload,
}

impl Event {
    /// An event produced by phlo, now.
    pub fn new(payload: EventPayload, correlation: Correlation) -> Self {
        let event_type = payload.event_type();
        let id = match &payload {
            // two checks of one step, or two lineage reports of one step, are two events even
            // when the producer did not name the check in the correlation
            EventPayload::QualityResult(r) if correlation.check_name.is_none() => {
                Self::derive_id(event_type, &correlation, Some(&r.check), &[])
            }
            EventPayload::LineageEdges { edges } => Self::derive_id(event_type, &correlation, None, edges),
            _ => Self::id_for(event_type, &correlation),
        };
        Self {
            id,
            version: EVENT_VERSION,
            event_type,
            timestamp: Utc::now(),
            producer: Cow::Borrowed("phlo"),
            tags: BTreeMap::new(),
            correlation,
            payload,
        }
    }

    /// The id an event of this type and correlation gets: derived from them for retryable
    /// work, unique otherwise.
    pub fn id_for(event_type: EventType, c: &Correlation) -> EventId {
        Self::derive_id(event_type, c, None, &[])
    }

    /// The id [`Event::new`] gives an event of retryable work with this type, correlation and
    /// (for `lineage.edges`) edges; `None` for other events, whose ids are unique. A reader of
    /// stored events can omit such an id and derive it back.
    pub fn work_id(event_type: EventType, c: &Correlation, edges: &[(AssetKey, AssetKey)]) -> Option<EventId> {
        if !event_type.is_retryable_work() || (event_type == EventType::QualityResult && c.check_name.is_none()) {
            return None;
        }
        Some(Self::derive_id(event_type, c, None, edges))
    }

    fn derive_id(
        event_type: EventType,
        c: &Correlation,
        check: Option<&str>,
        edges: &[(AssetKey, AssetKey)],
    ) -> EventId {
        IdInput::hash(|h| {
            h.bytes(event_type.as_str().as_bytes());
            h.field(c.run_id.as_deref());
            h.field(c.asset_key.as_deref());
            h.field(c.partition.as_deref());
            h.field(check.or(c.check_name.as_deref()));
            h.bytes(&c.attempt.to_le_bytes());
            for (a, b) in edges {
                h.field(Some(a));
                h.field(Some(b));
            }
            if !event_type.is_retryable_work() {
                let nanos = Utc::now().timestamp_nanos_opt().unwrap_or_default();
                h.bytes(&nanos.to_le_bytes());
                h.bytes(&SEQUENCE.fetch_add(1, Ordering::Relaxed).to_le_bytes());
                h.bytes(&std::process::id().to_le_bytes());
            }
        })
    }

    /// The event's type.
    pub fn event_type(&self) -> EventType {
        self.event_type
    }

    /// Adds tags.
    #[must_use]
    pub fn with_tags(mut self, tags: BTreeMap<String, String>) -> Self {
        self.tags = tags;
        self
    }

    /// Sets the producer.
    #[must_use]
    pub fn with_producer(mut self, producer: impl Into<Cow<'static, str>>) -> Self {
        self.producer = producer.into();
        self
    }

    /// Whether the event concerns `key` (its asset, or an end of one of its lineage edges).
    pub fn concerns(&self, mut matches: impl FnMut(&str) -> bool) -> bool {
        if let Some(k) = &self.correlation.asset_key
            && matches(k)
        {
            return true;
        }
        match &self.payload {
            EventPayload::LineageEdges { edges } => edges.iter().any(|(a, b)| matches(a) || matches(b)),
            _ => false,
        }
    }

    /// The event as one line of JSON.
    pub fn to_json_line(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|e| format!("{{\"error\":\"cannot serialise event: {e}\"}}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_phlos() {
        let names: Vec<&str> = EventType::ALL.iter().map(|t| t.as_str()).collect();
        assert_eq!(names.len(), 19);
        assert!(names.contains(&"service.pre_start") && names.contains(&"hook.errored"));
        assert_eq!(EventType::parse("lineage.edges"), Some(EventType::LineageEdges));
        assert_eq!(EventType::parse("lineage"), None);
        for (i, t) in EventType::ALL.iter().enumerate() {
            assert_eq!(*t as usize, i);
        }
    }

    #[test]
    fn ids_are_deterministic_for_retryable_work_only() {
        let c = Correlation::run("r").with_asset("a").with_partition("p").with_attempt(2);
        let id = |t: EventType, c: &Correlation| Event::id_for(t, c);
        assert_eq!(id(EventType::TransformEnd, &c), id(EventType::TransformEnd, &c));
        assert_ne!(id(EventType::TransformEnd, &c), id(EventType::TransformStart, &c));
        assert_ne!(id(EventType::TransformEnd, &c), id(EventType::TransformEnd, &c.clone().with_attempt(3)));
        assert_ne!(id(EventType::TransformEnd, &c), id(EventType::TransformEnd, &c.clone().with_partition("q")));
        assert_ne!(id(EventType::RunStart, &c), id(EventType::RunStart, &c));
        // a fixed value: ids must not change between versions of phlo
        let fixed = Correlation::run("run-1").with_asset("raw.orders");
        // XXH3-128 of the documented input (docs/hooks.md), as the reference xxHash computes it
        assert_eq!(id(EventType::IngestionStart, &fixed).to_string(), "2f5fe24f4ececa78d6306ce7fe9aa2e7");
    }

    #[test]
    fn events_serialise_with_stable_field_names() {
        let e = Event::new(
            EventPayload::AssetSkipped {
                reason: "upstream failed".into(),
                failed_upstream: Some("raw.orders".into()),
                unchanged_since: None,
            },
            Correlation::run("r1").with_asset("staging.orders"),
        );
        let v: serde_json::Value = serde_json::from_str(&e.to_json_line()).unwrap();
        assert_eq!(v["type"], "asset.skipped");
        assert_eq!(v["version"], 1);
        assert_eq!(v["correlation"]["run_id"], "r1");
        assert_eq!(v["correlation"]["attempt"], 1);
        assert_eq!(v["correlation"]["asset_key"], "staging.orders");
        assert_eq!(v["payload"]["failed_upstream"], "raw.orders");
        assert_eq!(v["id"].as_str().unwrap().len(), 32);
        assert!(v["timestamp"].as_str().unwrap().ends_with('Z'));
    }
}
