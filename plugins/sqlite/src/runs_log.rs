//! The event log's encoding. The events of steps — the bulk of a large run — are compact
//! binary records; every other event is its JSON. Decoding gives each event back as the JSON
//! value the hooks saw (`serde_json::to_value` of the event), which the tests check for every
//! kind of event.

use std::collections::BTreeMap;

use phlo_core::hooks::{AssetEvent, Event, EventId, EventPayload, EventType, Status};
use serde_json::{Map, Value, json};

use super::fold::{Change, StepState, Versions, change_of};

const JSON: u8 = 0;
const STEP: u8 = 1;
const SKIP: u8 = 2;
const LINEAGE: u8 = 3;

/// A length or count: 7 bits per byte, low bits first.
fn put_len(out: &mut Vec<u8>, mut n: usize) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    put_len(out, s.len());
    out.extend_from_slice(s.as_bytes());
}

fn put_opt(out: &mut Vec<u8>, s: Option<&str>) {
    match s {
        None => out.push(0),
        Some(s) => {
            out.push(1);
            put_str(out, s);
        }
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

/// The part every compact record starts with: type, id, time, producer, version, tags and
/// correlation (the run id is the row's).
fn header(e: &Event, out: &mut Vec<u8>) {
    out.push(e.event_type as u8);
    out.extend_from_slice(&e.id.0.to_le_bytes());
    out.extend_from_slice(&e.timestamp.timestamp_nanos_opt().unwrap_or(0).to_le_bytes());
    put_str(out, &e.producer);
    put_len(out, e.version as usize);
    put_len(out, e.tags.len());
    for (k, v) in &e.tags {
        put_str(out, k);
        put_str(out, v);
    }
    put_len(out, e.correlation.attempt as usize);
    put_opt(out, e.correlation.asset_key.as_deref());
    put_opt(out, e.correlation.partition.as_deref());
    put_opt(out, e.correlation.check_name.as_deref());
}

fn asset_event(a: &AssetEvent, out: &mut Vec<u8>) {
    put_opt(out, a.group.as_deref());
    out.push(status_code(a.status));
    match a.duration_ms {
        None => out.push(0),
        Some(d) => {
            out.push(1);
            put_len(out, d as usize);
        }
    }
    if a.metrics.is_empty() {
        put_str(out, "");
    } else {
        put_str(out, &serde_json::to_string(&a.metrics).unwrap_or_default());
    }
    put_opt(out, a.error.as_deref());
    match &a.versions {
        None => out.push(0),
        Some(v) => {
            out.push(1);
            put_opt(out, v.code.as_deref());
            put_str(out, &v.data);
            put_opt(out, v.source.as_deref());
            put_len(out, v.inputs.len());
            for (k, d) in &v.inputs {
                put_str(out, k);
                put_str(out, d);
            }
        }
    }
}

/// Appends one event to a log body: compact for the events of steps of a run, JSON for the
/// others.
pub(crate) fn encode(e: &Event, out: &mut Vec<u8>) {
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
            header(e, out);
            asset_event(a, out);
        }
        EventPayload::AssetSkipped { reason, failed_upstream, unchanged_since } if compact => {
            out.push(SKIP);
            header(e, out);
            put_str(out, reason);
            put_opt(out, failed_upstream.as_deref());
            put_opt(out, unchanged_since.as_deref());
        }
        EventPayload::LineageEdges { edges } if compact => {
            out.push(LINEAGE);
            header(e, out);
            put_len(out, edges.len());
            for (from, to) in edges {
                put_str(out, from);
                put_str(out, to);
            }
        }
        _ => {
            out.push(JSON);
            put_str(out, &e.to_json_line());
        }
    }
}

/// Reads a body back.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self.at.checked_add(n).filter(|e| *e <= self.bytes.len()).ok_or("the event log is cut short")?;
        let s = &self.bytes[self.at..end];
        self.at = end;
        Ok(s)
    }

    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }

    fn len(&mut self) -> Result<usize, String> {
        let mut n: u64 = 0;
        for shift in (0..64).step_by(7) {
            let b = self.u8()?;
            n |= u64::from(b & 0x7f) << shift;
            if b < 0x80 {
                return usize::try_from(n).map_err(|_| String::from("a length too large"));
            }
        }
        Err(String::from("a length too long in the event log"))
    }

    fn u64(&mut self) -> Result<u64, String> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().map_err(|_| "bad u64")?))
    }

    fn str(&mut self) -> Result<&'a str, String> {
        let n = self.len()?;
        std::str::from_utf8(self.take(n)?).map_err(|e| e.to_string())
    }

    fn opt_str(&mut self) -> Result<Option<&'a str>, String> {
        Ok(match self.u8()? {
            0 => None,
            _ => Some(self.str()?),
        })
    }

    fn opt(&mut self) -> Result<Value, String> {
        Ok(match self.u8()? {
            0 => Value::Null,
            _ => Value::from(self.str()?),
        })
    }
}

fn status_value(code: u8) -> Value {
    let s = match code {
        1 => Status::Succeeded,
        2 => Status::Failed,
        3 => Status::Cancelled,
        4 => Status::Skipped,
        _ => return Value::Null,
    };
    serde_json::to_value(s).unwrap_or(Value::Null)
}

fn decode_header(r: &mut Reader<'_>, run_id: Option<&str>) -> Result<Map<String, Value>, String> {
    let t = r.u8()? as usize;
    let event_type = *EventType::ALL.get(t).ok_or("an unknown event type in the event log")?;
    let id = EventId(u128::from_le_bytes(r.take(16)?.try_into().map_err(|_| "bad id")?));
    let nanos = r.u64()? as i64;
    let timestamp = chrono::DateTime::from_timestamp_nanos(nanos);
    let producer = r.str()?;
    let version = r.len()? as u32;
    let mut tags = Map::new();
    for _ in 0..r.len()? {
        let k = r.str()?;
        tags.insert(k.to_string(), Value::from(r.str()?));
    }
    let attempt = r.len()? as u32;
    let correlation = json!({
        "run_id": run_id,
        "attempt": attempt,
        "asset_key": r.opt()?,
        "partition": r.opt()?,
        "check_name": r.opt()?,
    });
    let mut m = Map::new();
    m.insert(String::from("id"), Value::from(id.to_string()));
    m.insert(String::from("version"), Value::from(version));
    m.insert(String::from("type"), serde_json::to_value(event_type).map_err(|e| e.to_string())?);
    m.insert(String::from("timestamp"), serde_json::to_value(timestamp).map_err(|e| e.to_string())?);
    m.insert(String::from("producer"), Value::from(producer));
    m.insert(String::from("tags"), Value::Object(tags));
    m.insert(String::from("correlation"), correlation);
    Ok(m)
}

/// Every event of a log body, as the JSON the hooks saw. `run_id` is the row's.
pub(crate) fn decode(body: &[u8], run_id: Option<&str>) -> Result<Vec<Value>, String> {
    let mut r = Reader { bytes: body, at: 0 };
    let mut out = Vec::new();
    while r.at < body.len() {
        match r.u8()? {
            JSON => {
                let text = r.str()?;
                out.push(serde_json::from_str(text).map_err(|e| e.to_string())?);
            }
            STEP => {
                let mut m = decode_header(&mut r, run_id)?;
                let mut p = Map::new();
                p.insert(String::from("group"), r.opt()?);
                p.insert(String::from("status"), status_value(r.u8()?));
                let duration = if r.u8()? == 1 { Value::from(r.len()? as u64) } else { Value::Null };
                p.insert(String::from("duration_ms"), duration);
                let metrics = r.str()?;
                let metrics = if metrics.is_empty() {
                    json!({})
                } else {
                    serde_json::from_str(metrics).map_err(|e| e.to_string())?
                };
                p.insert(String::from("metrics"), metrics);
                p.insert(String::from("error"), r.opt()?);
                if r.u8()? == 1 {
                    let code = r.opt()?;
                    let data = r.str()?;
                    let mut v = Map::new();
                    v.insert(String::from("code"), code);
                    v.insert(String::from("data"), Value::from(data));
                    let source = r.opt()?;
                    if !source.is_null() {
                        v.insert(String::from("source"), source);
                    }
                    let mut inputs = BTreeMap::new();
                    for _ in 0..r.len()? {
                        let k = r.str()?;
                        inputs.insert(k.to_string(), Value::from(r.str()?));
                    }
                    v.insert(String::from("inputs"), Value::Object(inputs.into_iter().collect()));
                    p.insert(String::from("versions"), Value::Object(v));
                }
                m.insert(String::from("payload"), Value::Object(p));
                out.push(Value::Object(m));
            }
            SKIP => {
                let mut m = decode_header(&mut r, run_id)?;
                let mut p = Map::new();
                p.insert(String::from("reason"), Value::from(r.str()?));
                p.insert(String::from("failed_upstream"), r.opt()?);
                let unchanged = r.opt()?;
                if !unchanged.is_null() {
                    p.insert(String::from("unchanged_since"), unchanged);
                }
                m.insert(String::from("payload"), Value::Object(p));
                out.push(Value::Object(m));
            }
            LINEAGE => {
                let mut m = decode_header(&mut r, run_id)?;
                let mut edges = Vec::new();
                for _ in 0..r.len()? {
                    let from = r.str()?;
                    edges.push(json!([from, r.str()?]));
                }
                m.insert(String::from("payload"), json!({ "edges": edges }));
                out.push(Value::Object(m));
            }
            other => return Err(format!("an unknown record ({other}) in the event log")),
        }
    }
    Ok(out)
}

/// What the records of a body change in the folded tables, read straight from the binary
/// records (JSON records through their JSON): for folding a large run quickly.
pub(crate) fn changes(body: &[u8], run_id: Option<&str>, out: &mut Vec<(String, Change)>) -> Result<(), String> {
    let mut r = Reader { bytes: body, at: 0 };
    while r.at < body.len() {
        let tag = r.u8()?;
        if tag == JSON {
            let v: Value = serde_json::from_str(r.str()?).map_err(|e| e.to_string())?;
            out.extend(change_of(&v));
            continue;
        }
        if !matches!(tag, STEP | SKIP | LINEAGE) {
            return Err(format!("an unknown record ({tag}) in the event log"));
        }
        // the header: what a step needs of it
        let t = r.u8()? as usize;
        let event_type = *EventType::ALL.get(t).ok_or("an unknown event type in the event log")?;
        r.take(16)?;
        let nanos = r.u64()? as i64;
        r.str()?;
        r.len()?;
        for _ in 0..r.len()? {
            r.str()?;
            r.str()?;
        }
        let attempts = r.len()? as u32;
        let key = r.opt_str()?.unwrap_or_default().to_string();
        let partition = r.opt_str()?.unwrap_or_default().to_string();
        r.opt_str()?;
        let at = || chrono::DateTime::from_timestamp_nanos(nanos).to_rfc3339();
        let state = match tag {
            STEP => {
                let _group = r.opt_str()?;
                let status = r.u8()?;
                let duration_ms = if r.u8()? == 1 { Some(r.len()? as i64) } else { None };
                let metrics = r.str()?;
                let error = r.opt_str()?.map(str::to_string);
                let versions = if r.u8()? == 1 {
                    let code = r.opt_str()?.map(str::to_string);
                    let data = Some(r.str()?.to_string());
                    let source = r.opt_str()?.map(str::to_string);
                    let mut inputs = Map::new();
                    for _ in 0..r.len()? {
                        let k = r.str()?;
                        inputs.insert(k.to_string(), Value::from(r.str()?));
                    }
                    Some(Versions { code, data, source, inputs: Value::Object(inputs).to_string(), at: at() })
                } else {
                    None
                };
                let starts = matches!(
                    event_type,
                    EventType::IngestionStart | EventType::TransformStart | EventType::PublishStart
                );
                if starts {
                    StepState {
                        status: String::from("running"),
                        attempts,
                        started_at: Some(at()),
                        duration_ms: None,
                        error: None,
                        metadata: String::from("{}"),
                        versions: None,
                    }
                } else {
                    let status = status_value(status).as_str().unwrap_or("failed").to_string();
                    StepState {
                        versions: versions.filter(|_| status == "succeeded"),
                        status,
                        attempts,
                        started_at: None,
                        duration_ms,
                        error,
                        metadata: if metrics.is_empty() { String::from("{}") } else { metrics.to_string() },
                    }
                }
            }
            SKIP => {
                let reason = r.str()?.to_string();
                r.opt_str()?;
                let since = r.opt_str()?;
                StepState {
                    status: String::from(if since.is_some() { "skipped_unchanged" } else { "skipped" }),
                    attempts: 0,
                    started_at: None,
                    duration_ms: None,
                    error: Some(reason),
                    metadata: since.map_or_else(|| String::from("{}"), |s| json!({ "unchanged_since": s }).to_string()),
                    versions: None,
                }
            }
            _ => {
                for _ in 0..r.len()? {
                    r.str()?;
                    r.str()?;
                }
                continue;
            }
        };
        if let Some(run) = run_id {
            out.push((run.to_string(), Change::Step { key, partition, state }));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use phlo_core::hooks::{Correlation, RunEvent, StepVersions};

    use super::*;

    #[test]
    fn every_event_decodes_to_what_the_hooks_saw() {
        let run = Correlation::run("r-1");
        let step = run.clone().with_asset("raw.orders").with_partition("2024-01-01").with_attempt(2);
        let versions = StepVersions {
            code: Some(String::from("def:1")),
            data: Arc::from("3r-abc"),
            source: Some(String::from("files-1")),
            inputs: [("raw.a".into(), Arc::from("run:x"))].into_iter().collect(),
        };
        let mut metrics = BTreeMap::new();
        metrics.insert(String::from("row_count"), json!(3));
        metrics.insert(String::from("table"), json!("raw_orders"));
        let events = vec![
            Event::new(EventPayload::RunStart(RunEvent { assets: 2, ..RunEvent::default() }), run.clone()),
            Event::new(EventPayload::IngestionStart(AssetEvent::default()), step.clone()),
            Event::new(
                EventPayload::IngestionEnd(AssetEvent {
                    group: Some(String::from("raw")),
                    status: Some(Status::Succeeded),
                    duration_ms: Some(12),
                    metrics,
                    error: None,
                    versions: Some(Box::new(versions)),
                }),
                step.clone(),
            )
            .with_tags([(String::from("team"), String::from("data"))].into_iter().collect()),
            Event::new(
                EventPayload::TransformEnd(AssetEvent {
                    status: Some(Status::Failed),
                    error: Some(String::from("boom \"quoted\" ✘")),
                    ..AssetEvent::default()
                }),
                run.clone().with_asset("m.x"),
            ),
            Event::new(
                EventPayload::AssetSkipped {
                    reason: String::from("upstream failed"),
                    failed_upstream: Some("m.x".into()),
                    unchanged_since: None,
                },
                run.clone().with_asset("m.y"),
            ),
            Event::new(
                EventPayload::AssetSkipped {
                    reason: String::from("unchanged"),
                    failed_upstream: None,
                    unchanged_since: Some(String::from("r-0")),
                },
                run.clone().with_asset("m.z"),
            ),
            Event::new(
                EventPayload::LineageEdges {
                    edges: vec![("raw.a".into(), "m.x".into()), ("raw.b".into(), "m.x".into())],
                },
                run.with_asset("m.x"),
            ),
            Event::new(EventPayload::TelemetryLog { level: String::from("info"), message: String::from("hi") }, step),
            Event::new(EventPayload::PublishStart(AssetEvent::default()), Correlation::default().with_asset("p.q")),
        ];
        let mut body = Vec::new();
        for e in &events {
            encode(e, &mut body);
        }
        let decoded = decode(&body, Some("r-1")).unwrap();
        assert_eq!(decoded.len(), events.len());
        for (e, d) in events.iter().zip(&decoded) {
            let mut expected = serde_json::to_value(e).unwrap();
            // an event without a run keeps its own (null) run id
            if e.correlation.run_id.is_none() {
                expected["correlation"]["run_id"] = Value::Null;
            }
            assert_eq!(d, &expected, "{}", e.event_type);
        }
        assert!(decode(&body[..body.len() - 3], Some("r-1")).is_err(), "a cut body is an error, not a panic");
        // folding straight from the records changes what folding their JSON changes
        let mut direct = Vec::new();
        changes(&body, Some("r-1"), &mut direct).unwrap();
        let via_json: Vec<(String, Change)> = decoded.iter().filter_map(change_of).collect();
        assert_eq!(direct, via_json);
        assert!(direct.len() >= 5);
    }
}
