//! The event log's encoding. The events of steps — the bulk of a large run — are compact
//! binary records; every other event is its JSON. Decoding gives each event back as the JSON
//! value the hooks saw (`serde_json::to_value` of the event), which the tests check for every
//! kind of event.
//!
//! A compact record is written by one thread against its *lane*: the strings it already
//! wrote into the same body (asset keys, the producer, data versions, lineage ends) are
//! written again as their number in the lane, and its timestamps as the difference from its
//! previous one. A lane starts empty in every body (a body is decoded on its own): when the
//! writer takes a thread's records, it empties the thread's lane (keeping its memory). Bodies
//! written by earlier versions are still read: records 1–3 (every string and id in full), and
//! records whose id [`Event::work_id`] derives and was left out (deriving it to check cost
//! the run's threads more than writing its 16 bytes).

use std::collections::{BTreeMap, HashMap};
use std::hash::Hasher;
use std::sync::atomic::{AtomicU32, Ordering};

use phlo_core::hooks::{AssetEvent, Correlation, Event, EventId, EventPayload, EventType, Status};
use phlo_core::spec::AssetKey;
use rustc_hash::FxHashMap;
use serde_json::{Map, Value, json};

use super::fold::{Change, StepState, Versions, change_of};

const JSON: u8 = 0;
// records of earlier versions: read, no longer written
const STEP_V1: u8 = 1;
const SKIP_V1: u8 = 2;
const LINEAGE_V1: u8 = 3;
const STEP: u8 = 4;
const SKIP: u8 = 5;
const LINEAGE: u8 = 6;

/// The id of a record's id is the one [`Event::work_id`] derives (and is left out): written
/// by earlier versions, still read.
const DERIVED_ID: u8 = 1;

static SLOTS: AtomicU32 = AtomicU32::new(0);

/// What one thread already wrote into one body.
pub(crate) struct Lane {
    slot: u32,
    /// The strings written, by hash: their number (a collision is written again, as new).
    by_hash: FxHashMap<u64, u32>,
    /// The strings written, one after the other (kept between bodies: no allocation per string).
    text: String,
    /// Where each string is in `text`.
    spans: Vec<(u32, u32)>,
    /// The string last written in each role ([`PRODUCER`], [`KEY`], [`VERSION`]): a step's
    /// events repeat their producer, asset key and data versions, compared before hashing.
    last: [u32; 3],
    last_nanos: i64,
}

/// A string's role, for [`Lane::last`]: a producer, an asset key, a data version.
const PRODUCER: usize = 0;
const KEY: usize = 1;
const VERSION: usize = 2;
/// No string written yet in a role.
const NONE: u32 = u32::MAX;

impl Lane {
    pub(crate) fn new() -> Self {
        Self {
            slot: SLOTS.fetch_add(1, Ordering::Relaxed),
            by_hash: FxHashMap::default(),
            text: String::new(),
            spans: Vec::new(),
            last: [NONE; 3],
            last_nanos: 0,
        }
    }

    /// Starts over for another body (keeping its memory).
    pub(crate) fn reset(&mut self) {
        self.by_hash.clear();
        self.text.clear();
        self.spans.clear();
        self.last = [NONE; 3];
        self.last_nanos = 0;
    }
}

/// A length or count: 7 bits per byte, low bits first.
fn put_len(out: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    put_len(out, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

/// An optional string, not shared: 0, or its length + 1 and its bytes.
fn put_opt_str(out: &mut Vec<u8>, s: Option<&str>) {
    match s {
        None => out.push(0),
        Some(s) => {
            put_len(out, s.len() as u64 + 1);
            out.extend_from_slice(s.as_bytes());
        }
    }
}

/// A string shared in the lane: `2n + 1` for the lane's `n`th string, or `2 × length` and
/// its bytes for a new one (which becomes the lane's next). `shift` 1 makes room for 0 as
/// "none". `role`: the string is first compared with the last one written in that role.
fn put_sym_code(out: &mut Vec<u8>, lane: &mut Lane, s: &str, shift: u64, role: Option<usize>) {
    let same = |lane: &Lane, n: u32| {
        let (at, len) = lane.spans[n as usize];
        lane.text.as_bytes().get(at as usize..(at + len) as usize) == Some(s.as_bytes())
    };
    if let Some(r) = role {
        let n = lane.last[r];
        if n != NONE && same(lane, n) {
            put_len(out, ((u64::from(n) << 1) | 1) + shift);
            return;
        }
    }
    let hash = {
        let mut h = rustc_hash::FxHasher::default();
        h.write(s.as_bytes());
        h.finish()
    };
    let n = match lane.by_hash.get(&hash) {
        Some(&n) if same(lane, n) => {
            put_len(out, ((u64::from(n) << 1) | 1) + shift);
            n
        }
        _ => {
            let n = lane.spans.len() as u32;
            lane.spans.push((lane.text.len() as u32, s.len() as u32));
            lane.text.push_str(s);
            lane.by_hash.insert(hash, n);
            put_len(out, ((s.len() as u64) << 1) + shift);
            out.extend_from_slice(s.as_bytes());
            n
        }
    };
    if let Some(r) = role {
        lane.last[r] = n;
    }
}

fn put_sym(out: &mut Vec<u8>, lane: &mut Lane, s: &str) {
    put_sym_code(out, lane, s, 0, None);
}

/// A string in a role (see [`Lane::last`]).
fn put_role(out: &mut Vec<u8>, lane: &mut Lane, s: &str, role: usize) {
    put_sym_code(out, lane, s, 0, Some(role));
}

fn put_opt_sym(out: &mut Vec<u8>, lane: &mut Lane, s: Option<&str>) {
    put_opt_role(out, lane, s, None);
}

fn put_opt_role(out: &mut Vec<u8>, lane: &mut Lane, s: Option<&str>, role: Option<usize>) {
    match s {
        None => out.push(0),
        Some(s) => put_sym_code(out, lane, s, 1, role),
    }
}

fn status_code(s: Option<Status>) -> u8 {
    match s {
        None => 0,
        Some(Status::Succeeded) => 1,
        Some(Status::Failed) => 2,
        Some(Status::Cancelled) => 3,
        Some(Status::Skipped) => 4,
    }
}

/// The part every compact record starts with: lane, type, id, time, producer, version, tags
/// and correlation (the run id is the row's).
fn header(e: &Event, edges: &[(AssetKey, AssetKey)], lane: &mut Lane, out: &mut Vec<u8>, ids: Ids) {
    put_len(out, u64::from(lane.slot));
    out.push(e.event_type as u8);
    let derived = ids == Ids::LeaveOutDerived && Event::work_id(e.event_type, &e.correlation, edges) == Some(e.id);
    out.push(if derived { DERIVED_ID } else { 0 });
    if !derived {
        out.extend_from_slice(&e.id.0.to_le_bytes());
    }
    let nanos = e.timestamp.timestamp_nanos_opt().unwrap_or(0);
    let delta = nanos.wrapping_sub(lane.last_nanos);
    lane.last_nanos = nanos;
    put_len(out, ((delta << 1) ^ (delta >> 63)) as u64);
    put_role(out, lane, &e.producer, PRODUCER);
    put_len(out, u64::from(e.version));
    put_len(out, e.tags.len() as u64);
    for (k, v) in &e.tags {
        put_sym(out, lane, k);
        put_sym(out, lane, v);
    }
    put_len(out, u64::from(e.correlation.attempt));
    put_opt_role(out, lane, e.correlation.asset_key.as_deref(), Some(KEY));
    put_opt_sym(out, lane, e.correlation.partition.as_deref());
    put_opt_str(out, e.correlation.check_name.as_deref());
}

fn asset_event(a: &AssetEvent, lane: &mut Lane, out: &mut Vec<u8>) {
    put_opt_sym(out, lane, a.group.as_deref());
    out.push(status_code(a.status));
    put_len(out, a.duration_ms.map_or(0, |d| d.saturating_add(1)));
    if a.metrics.is_empty() {
        put_str(out, "");
    } else {
        put_str(out, &serde_json::to_string(&a.metrics).unwrap_or_default());
    }
    put_opt_str(out, a.error.as_deref());
    match &a.versions {
        None => out.push(0),
        Some(v) => {
            out.push(1);
            put_opt_sym(out, lane, v.code.as_deref());
            put_role(out, lane, &v.data, VERSION);
            put_opt_sym(out, lane, v.source.as_deref());
            put_len(out, v.inputs.len() as u64);
            for (k, d) in v.inputs.iter() {
                put_sym(out, lane, k);
                put_role(out, lane, d, VERSION);
            }
        }
    }
}

/// How a compact record writes its event's id.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Ids {
    /// Every id in full.
    Full,
    /// An id that [`Event::work_id`] derives is left out (as earlier versions wrote).
    #[cfg_attr(not(test), allow(dead_code))]
    LeaveOutDerived,
}

/// Appends one event to a log body: compact for the events of steps of a run, JSON for the
/// others.
pub(crate) fn encode(e: &Event, lane: &mut Lane, out: &mut Vec<u8>) {
    encode_with(e, lane, out, Ids::Full);
}

/// As [`encode`], leaving out the ids that [`Event::work_id`] derives, as earlier versions
/// wrote (read still).
#[cfg(test)]
pub(crate) fn encode_leaving_out_work_ids(e: &Event, lane: &mut Lane, out: &mut Vec<u8>) {
    encode_with(e, lane, out, Ids::LeaveOutDerived);
}

fn encode_with(e: &Event, lane: &mut Lane, out: &mut Vec<u8>, ids: Ids) {
    let compact = e.correlation.run_id.is_some();
    match &e.payload {
        EventPayload::IngestionStart(a)
        | EventPayload::IngestionEnd(a)
        | EventPayload::TransformStart(a)
        | EventPayload::TransformEnd(a)
        | EventPayload::PublishStart(a)
        | EventPayload::PublishEnd(a)
            if compact =>
        {
            out.push(STEP);
            header(e, &[], lane, out, ids);
            asset_event(a, lane, out);
        }
        EventPayload::AssetSkipped { reason, failed_upstream, unchanged_since } if compact => {
            out.push(SKIP);
            header(e, &[], lane, out, ids);
            put_sym(out, lane, reason);
            put_opt_sym(out, lane, failed_upstream.as_deref());
            put_opt_sym(out, lane, unchanged_since.as_deref());
        }
        EventPayload::LineageEdges { edges } if compact => {
            out.push(LINEAGE);
            header(e, edges, lane, out, ids);
            put_len(out, edges.len() as u64);
            for (from, to) in edges {
                put_sym(out, lane, from);
                put_role(out, lane, to, KEY);
            }
        }
        _ => {
            out.push(JSON);
            put_str(out, &e.to_json_line());
        }
    }
}

#[path = "runs_log_read.rs"]
mod read;

pub(crate) use read::{changes, decode};

#[cfg(test)]
#[path = "runs_log_tests.rs"]
mod tests;
