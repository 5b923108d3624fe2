//! Reading a log body back: each record as borrowed fields ([`Record`]), then as the JSON
//! the hooks saw ([`decode`]) or as what it changes in the folded tables ([`changes`]).

use super::*;

/// The common part of a compact record.
struct Header<'a> {
    event_type: EventType,
    /// `None`: the one [`Event::work_id`] derives.
    id: Option<EventId>,
    nanos: i64,
    producer: &'a str,
    version: u32,
    tags: Vec<(&'a str, &'a str)>,
    attempt: u32,
    key: Option<&'a str>,
    partition: Option<&'a str>,
    check: Option<&'a str>,
}

struct StepVersions<'a> {
    code: Option<&'a str>,
    data: &'a str,
    source: Option<&'a str>,
    inputs: Vec<(&'a str, &'a str)>,
}

enum Payload<'a> {
    Step {
        group: Option<&'a str>,
        status: u8,
        duration_ms: Option<u64>,
        metrics: &'a str,
        error: Option<&'a str>,
        versions: Option<StepVersions<'a>>,
    },
    Skip {
        reason: &'a str,
        failed_upstream: Option<&'a str>,
        unchanged_since: Option<&'a str>,
    },
    Lineage(Vec<(&'a str, &'a str)>),
}

// a record is used at once, never stored: not boxed (a box per record would be an allocation)
#[allow(clippy::large_enum_variant)]
enum Record<'a> {
    Json(&'a str),
    Compact(Header<'a>, Payload<'a>),
}

/// What a thread's records in this body wrote before.
#[derive(Default)]
struct ReadLane<'a> {
    strings: Vec<&'a str>,
    last_nanos: i64,
}

/// The records of one body, in order.
struct Records<'a> {
    bytes: &'a [u8],
    at: usize,
    lanes: Vec<ReadLane<'a>>,
    slots: HashMap<u64, usize>,
    /// The current record's lane (`None`: a record of the first format, strings in full).
    lane: Option<usize>,
}

impl<'a> Records<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Self { bytes, at: 0, lanes: Vec::new(), slots: HashMap::new(), lane: None }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self.at.checked_add(n).filter(|e| *e <= self.bytes.len()).ok_or("the event log is cut short")?;
        let s = &self.bytes[self.at..end];
        self.at = end;
        Ok(s)
    }

    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }

    fn varint(&mut self) -> Result<u64, String> {
        let mut n: u64 = 0;
        for shift in (0..64).step_by(7) {
            let b = self.u8()?;
            n |= u64::from(b & 0x7f) << shift;
            if b < 0x80 {
                return Ok(n);
            }
        }
        Err(String::from("a number too long in the event log"))
    }

    fn len(&mut self) -> Result<usize, String> {
        usize::try_from(self.varint()?).map_err(|_| String::from("a length too large in the event log"))
    }

    fn u32(&mut self) -> Result<u32, String> {
        u32::try_from(self.varint()?).map_err(|_| String::from("a number too large in the event log"))
    }

    fn bytes_str(&mut self, n: usize) -> Result<&'a str, String> {
        std::str::from_utf8(self.take(n)?).map_err(|e| e.to_string())
    }

    /// A string in full: its length, its bytes.
    fn str(&mut self) -> Result<&'a str, String> {
        let n = self.len()?;
        self.bytes_str(n)
    }

    /// An optional string not shared: a flag and the string (first format), or its length + 1.
    fn opt_str(&mut self) -> Result<Option<&'a str>, String> {
        if self.lane.is_none() {
            return Ok(match self.u8()? {
                0 => None,
                _ => Some(self.str()?),
            });
        }
        match self.len()? {
            0 => Ok(None),
            n => self.bytes_str(n - 1).map(Some),
        }
    }

    /// A string shared in the lane (see `put_sym_code`), from its code.
    fn sym_of(&mut self, code: u64) -> Result<&'a str, String> {
        let lane = self.lane.ok_or("a shared string outside a lane")?;
        if code & 1 == 1 {
            let n = usize::try_from(code >> 1).map_err(|_| "a string number too large")?;
            return self.lanes[lane].strings.get(n).copied().ok_or_else(|| String::from("an unknown shared string"));
        }
        let n = usize::try_from(code >> 1).map_err(|_| "a length too large")?;
        let s = self.bytes_str(n)?;
        self.lanes[lane].strings.push(s);
        Ok(s)
    }

    fn sym(&mut self) -> Result<&'a str, String> {
        if self.lane.is_none() {
            return self.str();
        }
        let code = self.varint()?;
        self.sym_of(code)
    }

    fn opt_sym(&mut self) -> Result<Option<&'a str>, String> {
        if self.lane.is_none() {
            return self.opt_str();
        }
        match self.varint()? {
            0 => Ok(None),
            code => self.sym_of(code - 1).map(Some),
        }
    }

    fn header(&mut self, compact: bool) -> Result<Header<'a>, String> {
        self.lane = None;
        if compact {
            let slot = self.varint()?;
            let next = self.lanes.len();
            let lane = *self.slots.entry(slot).or_insert(next);
            if lane == next {
                self.lanes.push(ReadLane::default());
            }
            self.lane = Some(lane);
        }
        let t = self.u8()? as usize;
        let event_type = *EventType::ALL.get(t).ok_or("an unknown event type in the event log")?;
        let (id, nanos) = match self.lane {
            None => {
                let id = EventId(u128::from_le_bytes(self.take(16)?.try_into().map_err(|_| "bad id")?));
                let nanos = i64::from_le_bytes(self.take(8)?.try_into().map_err(|_| "bad time")?);
                (Some(id), nanos)
            }
            Some(lane) => {
                let derived = self.u8()? & DERIVED_ID != 0;
                let id = if derived {
                    None
                } else {
                    Some(EventId(u128::from_le_bytes(self.take(16)?.try_into().map_err(|_| "bad id")?)))
                };
                let z = self.varint()?;
                let delta = ((z >> 1) as i64) ^ -((z & 1) as i64);
                let nanos = self.lanes[lane].last_nanos.wrapping_add(delta);
                self.lanes[lane].last_nanos = nanos;
                (id, nanos)
            }
        };
        let producer = self.sym()?;
        let version = self.u32()?;
        let mut tags = Vec::new();
        for _ in 0..self.len()? {
            tags.push((self.sym()?, self.sym()?));
        }
        let attempt = self.u32()?;
        let key = self.opt_sym()?;
        let partition = self.opt_sym()?;
        let check = self.opt_str()?;
        Ok(Header { event_type, id, nanos, producer, version, tags, attempt, key, partition, check })
    }

    fn pairs(&mut self) -> Result<Vec<(&'a str, &'a str)>, String> {
        let n = self.len()?;
        let mut out = Vec::with_capacity(n.min(1024));
        for _ in 0..n {
            out.push((self.sym()?, self.sym()?));
        }
        Ok(out)
    }

    fn step(&mut self) -> Result<Payload<'a>, String> {
        let group = self.opt_sym()?;
        let status = self.u8()?;
        let duration_ms = match self.lane {
            None => match self.u8()? {
                0 => None,
                _ => Some(self.varint()?),
            },
            Some(_) => self.varint()?.checked_sub(1),
        };
        let metrics = self.str()?;
        let error = self.opt_str()?;
        let versions = match self.u8()? {
            0 => None,
            _ => Some(StepVersions {
                code: self.opt_sym()?,
                data: self.sym()?,
                source: self.opt_sym()?,
                inputs: self.pairs()?,
            }),
        };
        Ok(Payload::Step { group, status, duration_ms, metrics, error, versions })
    }

    fn next_record(&mut self) -> Option<Result<Record<'a>, String>> {
        if self.at >= self.bytes.len() {
            return None;
        }
        let record = (|| {
            let tag = self.u8()?;
            let compact = matches!(tag, STEP | SKIP | LINEAGE);
            let header = match tag {
                JSON => return Ok(Record::Json(self.str()?)),
                STEP | SKIP | LINEAGE | STEP_V1 | SKIP_V1 | LINEAGE_V1 => self.header(compact)?,
                other => return Err(format!("an unknown record ({other}) in the event log")),
            };
            let payload = match tag {
                STEP | STEP_V1 => self.step()?,
                SKIP | SKIP_V1 => Payload::Skip {
                    reason: self.sym()?,
                    failed_upstream: self.opt_sym()?,
                    unchanged_since: self.opt_sym()?,
                },
                _ => Payload::Lineage(self.pairs()?),
            };
            Ok(Record::Compact(header, payload))
        })();
        if record.is_err() {
            // nothing more is read after a bad record
            self.at = self.bytes.len();
        }
        Some(record)
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

fn opt(s: Option<&str>) -> Value {
    s.map_or(Value::Null, Value::from)
}

fn object(pairs: &[(&str, &str)]) -> Value {
    let sorted: BTreeMap<&str, &str> = pairs.iter().copied().collect();
    Value::Object(sorted.into_iter().map(|(k, v)| (k.to_string(), Value::from(v))).collect())
}

/// A compact record as the JSON of its event.
fn to_json(h: &Header<'_>, payload: &Payload<'_>, run_id: Option<&str>) -> Result<Value, String> {
    let id = match h.id {
        Some(id) => id,
        None => {
            let correlation = Correlation {
                run_id: run_id.map(Into::into),
                attempt: h.attempt,
                asset_key: h.key.map(AssetKey::from),
                partition: h.partition.map(str::to_string),
                check_name: h.check.map(str::to_string),
            };
            let edges: Vec<(AssetKey, AssetKey)> = match payload {
                Payload::Lineage(edges) => {
                    edges.iter().map(|(a, b)| (AssetKey::from(*a), AssetKey::from(*b))).collect()
                }
                _ => Vec::new(),
            };
            Event::work_id(h.event_type, &correlation, &edges).ok_or("an event without an id in the event log")?
        }
    };
    let payload = match payload {
        Payload::Step { group, status, duration_ms, metrics, error, versions } => {
            let mut p = Map::new();
            p.insert(String::from("group"), opt(*group));
            p.insert(String::from("status"), status_value(*status));
            p.insert(String::from("duration_ms"), duration_ms.map_or(Value::Null, Value::from));
            let metrics = if metrics.is_empty() {
                json!({})
            } else {
                serde_json::from_str(metrics).map_err(|e| e.to_string())?
            };
            p.insert(String::from("metrics"), metrics);
            p.insert(String::from("error"), opt(*error));
            if let Some(v) = versions {
                let mut m = Map::new();
                m.insert(String::from("code"), opt(v.code));
                m.insert(String::from("data"), Value::from(v.data));
                if let Some(source) = v.source {
                    m.insert(String::from("source"), Value::from(source));
                }
                m.insert(String::from("inputs"), object(&v.inputs));
                p.insert(String::from("versions"), Value::Object(m));
            }
            Value::Object(p)
        }
        Payload::Skip { reason, failed_upstream, unchanged_since } => {
            let mut p = Map::new();
            p.insert(String::from("reason"), Value::from(*reason));
            p.insert(String::from("failed_upstream"), opt(*failed_upstream));
            if let Some(since) = unchanged_since {
                p.insert(String::from("unchanged_since"), Value::from(*since));
            }
            Value::Object(p)
        }
        Payload::Lineage(edges) => json!({ "edges": edges.iter().map(|(a, b)| json!([a, b])).collect::<Vec<_>>() }),
    };
    let tags: BTreeMap<&str, &str> = h.tags.iter().copied().collect();
    Ok(json!({
        "id": id.to_string(),
        "version": h.version,
        "type": h.event_type,
        "timestamp": chrono::DateTime::from_timestamp_nanos(h.nanos),
        "producer": h.producer,
        "tags": tags,
        "correlation": {
            "run_id": run_id,
            "attempt": h.attempt,
            "asset_key": h.key,
            "partition": h.partition,
            "check_name": h.check,
        },
        "payload": payload,
    }))
}

/// Every event of a log body, as the JSON the hooks saw. `run_id` is the row's.
pub(crate) fn decode(body: &[u8], run_id: Option<&str>) -> Result<Vec<Value>, String> {
    let mut records = Records::new(body);
    let mut out = Vec::new();
    while let Some(record) = records.next_record() {
        out.push(match record? {
            Record::Json(text) => serde_json::from_str(text).map_err(|e| e.to_string())?,
            Record::Compact(h, p) => to_json(&h, &p, run_id)?,
        });
    }
    Ok(out)
}

/// What the records of a body change in the folded tables, read straight from the binary
/// records (JSON records through their JSON): for folding a large run quickly.
pub(crate) fn changes(body: &[u8], run_id: Option<&str>, out: &mut Vec<(String, Change)>) -> Result<(), String> {
    let mut records = Records::new(body);
    while let Some(record) = records.next_record() {
        let (h, payload) = match record? {
            Record::Json(text) => {
                let v: Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
                out.extend(change_of(&v));
                continue;
            }
            Record::Compact(h, p) => (h, p),
        };
        let at = || chrono::DateTime::from_timestamp_nanos(h.nanos).to_rfc3339();
        let state = match payload {
            Payload::Step { .. }
                if matches!(
                    h.event_type,
                    EventType::IngestionStart | EventType::TransformStart | EventType::PublishStart
                ) =>
            {
                StepState {
                    status: String::from("running"),
                    attempts: h.attempt,
                    started_at: Some(at()),
                    duration_ms: None,
                    error: None,
                    metadata: String::from("{}"),
                    versions: None,
                }
            }
            Payload::Step { status, duration_ms, metrics, error, versions, .. } => {
                let status = status_value(status).as_str().unwrap_or("failed").to_string();
                let versions = versions.filter(|_| status == "succeeded").map(|v| Versions {
                    code: v.code.map(str::to_string),
                    data: Some(v.data.to_string()),
                    source: v.source.map(str::to_string),
                    inputs: object(&v.inputs).to_string(),
                    at: at(),
                });
                StepState {
                    versions,
                    status,
                    attempts: h.attempt,
                    started_at: None,
                    duration_ms: duration_ms.map(|d| d as i64),
                    error: error.map(str::to_string),
                    metadata: if metrics.is_empty() { String::from("{}") } else { metrics.to_string() },
                }
            }
            Payload::Skip { reason, unchanged_since, .. } => StepState {
                status: String::from(if unchanged_since.is_some() { "skipped_unchanged" } else { "skipped" }),
                attempts: 0,
                started_at: None,
                duration_ms: None,
                error: Some(reason.to_string()),
                metadata: unchanged_since
                    .map_or_else(|| String::from("{}"), |s| json!({ "unchanged_since": s }).to_string()),
                versions: None,
            },
            Payload::Lineage(_) => continue,
        };
        if let Some(run) = run_id {
            let (key, partition) = (h.key.unwrap_or_default().to_string(), h.partition.unwrap_or_default().to_string());
            out.push((run.to_string(), Change::Step { key, partition, state }));
        }
    }
    Ok(())
}
