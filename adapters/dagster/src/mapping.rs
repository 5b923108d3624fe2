//! phlo → Dagster: the JSON document `definitions.py` reads. Each field either maps exactly
//! or is an error naming the asset (or schedule) and the field.

use std::collections::BTreeMap;

use chrono::Timelike;
use phlo_core::execution::ExportRequest;
use phlo_core::plugin::PluginError;
use phlo_core::spec::partition::{Granularity, PartitionSpec, TimePartitions};
use phlo_core::spec::{AssetSpec, Backoff, Severity};
use serde::Serialize;
use serde_json::{Value, json};

/// The document's format version (`definitions.py` refuses another).
pub const FORMAT: u32 = 1;

fn unsupported(asset: &str, field: &str, why: impl std::fmt::Display) -> PluginError {
    PluginError::msg(format!("asset `{asset}`, field `{field}`: {why}"))
}

/// Dagster's name for one part of a key (Dagster names are `[A-Za-z0-9_]+`): `-` becomes
/// `_`, any other character outside that set `_` and its code point in hex (`é` → `_e9`).
pub fn dagster_part(part: &str) -> String {
    let mut out = String::with_capacity(part.len());
    for c in part.chars() {
        match c {
            'A'..='Z' | 'a'..='z' | '0'..='9' | '_' => out.push(c),
            '-' => out.push('_'),
            other => out.push_str(&format!("_{:x}", u32::from(other))),
        }
    }
    out
}

/// Whether Dagster accepts `text` in an asset tag: at most 63 of `[A-Za-z0-9_.-]` (a key
/// may have one `prefix/`).
fn tag_text_ok(text: &str, is_key: bool) -> bool {
    let part_ok =
        |p: &str| p.len() <= 63 && p.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    match text.split_once('/') {
        Some((prefix, name)) if is_key => !prefix.is_empty() && !name.is_empty() && part_ok(prefix) && part_ok(name),
        Some(_) => false,
        None => (!is_key || !text.is_empty()) && part_ok(text),
    }
}

/// Dagster's asset key path of a phlo key: its `.`-separated parts, each a Dagster name.
pub fn dagster_path(key: &str) -> Vec<String> {
    key.split('.').map(dagster_part).collect()
}

/// Dagster's name for an asset's step: the path joined by `__`. Deterministic; two keys
/// with one name (or one path) are an export error.
pub fn op_name(key: &str) -> String {
    dagster_path(key).join("__")
}

/// The partitions of each asset, mapped once per distinct definition (a large project has
/// a few, shared by thousands of assets).
#[derive(Default)]
struct PartitionsCache(Vec<(PartitionSpec, Value)>);

impl PartitionsCache {
    fn get(&mut self, key: &str, p: &PartitionSpec) -> Result<Value, PluginError> {
        if let Some((_, v)) = self.0.iter().find(|(q, _)| q == p) {
            return Ok(v.clone());
        }
        let v = partitions(key, p)?;
        if self.0.len() < 64 {
            self.0.push((p.clone(), v.clone()));
        }
        Ok(v)
    }
}

fn partitions(key: &str, p: &PartitionSpec) -> Result<Value, PluginError> {
    Ok(match p {
        PartitionSpec::None => Value::Null,
        PartitionSpec::Static { keys } => json!({"kind": "static", "keys": keys}),
        PartitionSpec::Time(t) => time_partitions(key, t)?,
    })
}

fn time_partitions(key: &str, t: &TimePartitions) -> Result<Value, PluginError> {
    // Dagster reads `start`/`end` with the definition's own format
    let fmt = |x: chrono::NaiveDateTime| match t.granularity {
        Granularity::Hourly => x.format("%Y-%m-%d-%H:%M").to_string(),
        _ => x.format("%Y-%m-%d").to_string(),
    };
    let end = match t.end {
        None => Value::Null,
        Some(e) => {
            let exact = match t.granularity {
                Granularity::Hourly => e.minute() == 0 && e.second() == 0,
                _ => e.time() == chrono::NaiveTime::MIN,
            };
            if !exact {
                return Err(unsupported(
                    key,
                    "partitions.end",
                    format!(
                        "Dagster reads a {} end as a {}; `{}` is inside a window (end on a window boundary: the partial window is not a partition anyway)",
                        t.granularity.as_str(),
                        if t.granularity == Granularity::Hourly { "date and hour" } else { "date" },
                        e.format("%Y-%m-%d %H:%M")
                    ),
                ));
            }
            Value::String(fmt(e))
        }
    };
    let day_offset = match t.granularity {
        Granularity::Weekly => t.options.week_start.num_days_from_sunday(),
        Granularity::Monthly => t.options.month_day,
        _ => 0,
    };
    Ok(json!({
        "kind": t.granularity.as_str(),
        "start": fmt(t.start),
        "end": end,
        "timezone": t.timezone.name(),
        "end_offset": t.options.end_offset,
        "day_offset": day_offset,
    }))
}

fn retry(spec: &AssetSpec) -> Result<Value, PluginError> {
    let r = &spec.retry;
    if r.max_retries == 0 {
        return Ok(Value::Null);
    }
    let key = spec.key.as_str();
    let backoff = match r.backoff {
        Backoff::Fixed => Value::Null,
        Backoff::Linear => Value::String(String::from("LINEAR")),
        Backoff::Exponential => {
            return Err(unsupported(
                key,
                "retries.backoff",
                "Dagster's exponential backoff waits (2^n - 1) × delay (1, 3, 7 …), phlo's 2^(n-1) × delay (1, 2, 4 …); use `linear` or `fixed`, or keep this asset on the local adapter",
            ));
        }
    };
    let jitter = if r.jitter == 0.0 {
        Value::Null
    } else if r.jitter == 1.0 && r.backoff == Backoff::Fixed {
        // Dagster's PLUS_MINUS: delay ± delay, phlo's jitter 1.0 on a fixed delay
        Value::String(String::from("PLUS_MINUS"))
    } else {
        return Err(unsupported(
            key,
            "retries.jitter",
            format!(
                "Dagster's jitter is ±delay (phlo's `jitter: 1.0` with a fixed delay) or 0…delay; `{}` has no equivalent",
                r.jitter
            ),
        ));
    };
    if r.max_delay.is_some() {
        return Err(unsupported(key, "retries.max_delay", "Dagster's retry policy has no maximum delay"));
    }
    Ok(json!({
        "max_retries": r.max_retries,
        "delay": r.delay.as_secs_f64(),
        "backoff": backoff,
        "jitter": jitter,
    }))
}

fn checks(spec: &AssetSpec) -> Vec<Value> {
    spec.checks
        .iter()
        .map(|c| {
            json!({
                "name": c.name,
                "severity": match c.severity { Severity::Warn => "WARN", _ => "ERROR" },
                "blocking": c.blocking,
                "description": c.description,
            })
        })
        .collect()
}

/// The document `definitions.py` reads (serialized as it is, without an intermediate JSON
/// tree: a 10,000-asset project's document is ~3 MB).
#[derive(Serialize)]
pub struct Document<'a> {
    format: u32,
    phlo_version: &'a str,
    project_name: Option<&'a str>,
    project_dir: std::borrow::Cow<'a, str>,
    assets: Vec<AssetRecord<'a>>,
    schedules: Vec<Value>,
}

impl Document<'_> {
    /// The document as JSON with one asset (and one schedule) per line: half the size of
    /// indented JSON, and a re-export's diff shows which assets changed.
    ///
    /// # Errors
    /// A value serde cannot write (none is expected).
    pub fn to_json_lines(&self) -> Result<String, serde_json::Error> {
        // a record is ~300 bytes; sized up front, a large document is written without regrowing
        let mut buf = Vec::with_capacity(1024 + 384 * self.assets.len() + 256 * self.schedules.len());
        buf.extend_from_slice(b"{\"format\":");
        serde_json::to_writer(&mut buf, &self.format)?;
        for (name, value) in [("phlo_version", Some(self.phlo_version)), ("project_name", self.project_name)] {
            buf.extend_from_slice(format!(",\"{name}\":").as_bytes());
            serde_json::to_writer(&mut buf, &value)?;
        }
        buf.extend_from_slice(b",\"project_dir\":");
        serde_json::to_writer(&mut buf, &self.project_dir)?;
        write_lines(&mut buf, "schedules", &self.schedules)?;
        write_lines(&mut buf, "assets", &self.assets)?;
        buf.extend_from_slice(b"}\n");
        // serde_json writes UTF-8
        Ok(String::from_utf8(buf).unwrap_or_default())
    }
}

fn write_lines<T: Serialize>(buf: &mut Vec<u8>, name: &str, items: &[T]) -> Result<(), serde_json::Error> {
    buf.extend_from_slice(format!(",\n\"{name}\":[").as_bytes());
    for (i, item) in items.iter().enumerate() {
        buf.extend_from_slice(if i == 0 { b"\n" } else { b",\n" });
        serde_json::to_writer(&mut *buf, item)?;
    }
    buf.extend_from_slice(if items.is_empty() { b"]" } else { b"\n]" });
    Ok(())
}

/// One asset of the [`Document`].
#[derive(Serialize)]
struct AssetRecord<'a> {
    key: &'a str,
    path: Vec<String>,
    op_name: String,
    deps: Vec<String>,
    group: Option<&'a str>,
    kind: &'a str,
    asset_type: Option<&'a str>,
    tags: BTreeMap<&'a String, &'a String>,
    phlo_tags: &'a BTreeMap<String, String>,
    description: Option<&'a str>,
    code_version: Option<&'a str>,
    external: bool,
    partitions: Value,
    checks: Vec<Value>,
    retry: Value,
    timeout_seconds: Option<f64>,
}

/// Builds the document `definitions.py` reads.
///
/// # Errors
/// The first asset or schedule field Dagster cannot express, or two keys with one step name.
pub fn document(req: &ExportRequest) -> Result<Document<'_>, PluginError> {
    let graph = &req.graph;
    let mut names: BTreeMap<String, String> = BTreeMap::new();
    let mut assets = Vec::with_capacity(graph.len());
    let mut cache = PartitionsCache::default();
    for i in 0..graph.len() as u32 {
        let node = graph.node(i);
        let spec = &node.spec;
        let key = spec.key.as_str();
        let op = op_name(key);
        if let Some(other) = names.insert(op.clone(), key.to_string()) {
            return Err(PluginError::msg(format!(
                "assets `{other}` and `{key}` both become Dagster step `{op}` (Dagster names allow only A-Z, a-z, 0-9 and _); rename one"
            )));
        }
        let mut deps: Vec<String> = spec.deps.iter().map(ToString::to_string).collect();
        for d in &spec.inferred_deps {
            if !deps.iter().any(|x| x == d.as_str()) {
                deps.push(d.to_string());
            }
        }
        assets.push(AssetRecord {
            key,
            path: dagster_path(key),
            op_name: op,
            deps,
            group: spec.group.as_deref(),
            kind: spec.kind.as_str(),
            asset_type: node.asset_type.as_deref(),
            // tags Dagster accepts are Dagster tags; every tag, verbatim, is also metadata
            tags: spec.tags.iter().filter(|(k, v)| tag_text_ok(k, true) && tag_text_ok(v, false)).collect(),
            phlo_tags: &spec.tags,
            description: spec.description.as_deref(),
            code_version: spec.code_version.as_deref(),
            external: spec.external,
            partitions: cache.get(key, &spec.partitions)?,
            checks: checks(spec),
            retry: retry(spec)?,
            timeout_seconds: spec.timeout.map(|d| d.as_secs_f64()),
        });
    }
    let mut schedules = Vec::new();
    for s in &req.schedules {
        // one Dagster run has one partition definition
        let defs: Vec<&PartitionSpec> = s
            .assets
            .iter()
            .filter_map(|k| graph.index_of(k))
            .map(|i| &graph.node(i).spec)
            .filter(|spec| !spec.external && spec.partitions.is_partitioned())
            .map(|spec| &spec.partitions)
            .collect();
        if defs.windows(2).any(|w| w[0] != w[1]) {
            return Err(PluginError::msg(format!(
                "schedule `{}`, field `select`: it selects assets with different partitions, which one Dagster run cannot hold; split it into one schedule per partitioning",
                s.name
            )));
        }
        let partitioned = !defs.is_empty();
        if s.partition.is_some() && !partitioned {
            return Err(PluginError::msg(format!(
                "schedule `{}`, field `partition`: none of its assets is partitioned",
                s.name
            )));
        }
        schedules.push(json!({
            "name": s.name,
            "cron": s.cron,
            "timezone": s.timezone,
            "assets": s.assets,
            "partition": s.partition,
            "partitioned": partitioned,
            "enabled": s.enabled,
        }));
    }
    Ok(Document {
        format: FORMAT,
        phlo_version: &req.phlo_version,
        project_name: req.project_name.as_deref(),
        project_dir: req.project_dir.to_string_lossy(),
        assets,
        schedules,
    })
}
