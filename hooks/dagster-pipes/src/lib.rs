//! The `dagster_pipes` hook: when a Dagster step launched `phlo` through Dagster Pipes (the
//! `DAGSTER_PIPES_CONTEXT` and `DAGSTER_PIPES_MESSAGES` environment variables are set), phlo's
//! lifecycle events become Pipes messages: `opened` at the run's start, a
//! `report_asset_materialization` (with rows, table, duration and partition as metadata) for
//! each asset that succeeded, a `report_asset_check` for each check result, a `log` for each
//! log line and failure, `closed` at the run's end. Without those variables it registers
//! nothing.
//!
//! The protocol (version 0.1): each variable holds base64 of zlib of a JSON object; the
//! context's is `{"path": FILE}` (a JSON file) or `{"data": {...}}`, the messages' is
//! `{"path": FILE}` (JSON lines appended) or `{"stdio": "stderr" | "stdout"}`.

use std::fs::OpenOptions;
use std::io::{Read, Write};
use std::sync::{Arc, Mutex, PoisonError};

use base64::Engine;
use phlo_core::hooks::{Event, EventPayload, FailurePolicy, HookFailure, HookRegistration, Status};
use phlo_core::plugin::{HookProvider, NoConfig, Plugin, PluginContext, PluginError};
use serde_json::{Map, Value, json};

/// The environment variable holding the context parameters.
pub const CONTEXT_ENV: &str = "DAGSTER_PIPES_CONTEXT";
/// The environment variable holding the message-writer parameters.
pub const MESSAGES_ENV: &str = "DAGSTER_PIPES_MESSAGES";

/// Decodes a Pipes parameter: base64, then zlib, then JSON.
///
/// # Errors
/// A value that is not base64 of zlib of a JSON object.
pub fn decode_param(value: &str) -> Result<Map<String, Value>, String> {
    let compressed =
        base64::engine::general_purpose::STANDARD.decode(value.trim()).map_err(|e| format!("not base64: {e}"))?;
    let mut text = String::new();
    flate2::read::ZlibDecoder::new(&compressed[..])
        .read_to_string(&mut text)
        .map_err(|e| format!("not zlib-compressed text: {e}"))?;
    match serde_json::from_str(&text) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(String::from("not a JSON object")),
        Err(e) => Err(format!("not JSON: {e}")),
    }
}

/// Encodes a Pipes parameter (the inverse of [`decode_param`]).
pub fn encode_param(value: &Value) -> String {
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    let _ = z.write_all(value.to_string().as_bytes());
    base64::engine::general_purpose::STANDARD.encode(z.finish().unwrap_or_default())
}

/// Where messages go (a file is opened once, when the hook is created).
#[derive(Debug)]
enum Sink {
    File(std::fs::File),
    Stderr,
    Stdout,
}

/// The `dagster_pipes` hook provider.
#[derive(Debug)]
pub struct DagsterPipes {
    sink: Option<Arc<Mutex<Sink>>>,
    /// The Pipes context, when launched by Dagster.
    pub context: Option<Map<String, Value>>,
}

impl Plugin for DagsterPipes {
    const NAME: &'static str = "dagster_pipes";
    const DESCRIPTION: &'static str =
        "Reports materializations, check results and logs to Dagster when a Dagster step runs phlo (Pipes)";
    type Config = NoConfig;
    const TAGS: &'static [&'static str] = &["hook", "dagster", "pipes"];
}

fn read_context(params: &Map<String, Value>) -> Result<Map<String, Value>, String> {
    if let Some(Value::String(path)) = params.get("path") {
        let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read the context file `{path}`: {e}"))?;
        return match serde_json::from_str(&text) {
            Ok(Value::Object(m)) => Ok(m),
            _ => Err(format!("the context file `{path}` is not a JSON object")),
        };
    }
    if let Some(Value::Object(data)) = params.get("data") {
        return Ok(data.clone());
    }
    Err(String::from("the context parameters have neither `path` nor `data`"))
}

fn sink_of(params: &Map<String, Value>) -> Result<Sink, String> {
    match (params.get("path"), params.get("stdio")) {
        (Some(Value::String(p)), _) => OpenOptions::new()
            .create(true)
            .append(true)
            .open(p)
            .map(Sink::File)
            .map_err(|e| format!("cannot open the messages file `{p}`: {e}")),
        (_, Some(Value::String(s))) if s == "stderr" => Ok(Sink::Stderr),
        (_, Some(Value::String(s))) if s == "stdout" => Ok(Sink::Stdout),
        _ => Err(format!(
            "unsupported message parameters {}: phlo writes to a file (`path`) or `stdio`",
            Value::Object(params.clone())
        )),
    }
}

impl HookProvider for DagsterPipes {
    fn create(_: NoConfig, _: &PluginContext) -> Result<Self, PluginError> {
        let (ctx, msgs) = match (std::env::var(CONTEXT_ENV), std::env::var(MESSAGES_ENV)) {
            (Ok(c), Ok(m)) => (c, m),
            (Err(_), Err(_)) => return Ok(DagsterPipes { sink: None, context: None }),
            (Ok(_), Err(_)) | (Err(_), Ok(_)) => {
                return Err(PluginError::with_help(
                    format!("only one of `{CONTEXT_ENV}` and `{MESSAGES_ENV}` is set"),
                    "a Dagster Pipes client sets both; unset both to run without Dagster",
                ));
            }
        };
        let bad = |what: &str, e: String| {
            PluginError::with_help(
                format!("`{what}` is set but cannot be read: {e}"),
                "phlo was launched by a Dagster Pipes client with parameters it does not understand; unset the variable to run without Dagster",
            )
        };
        let context = decode_param(&ctx).and_then(|p| read_context(&p)).map_err(|e| bad(CONTEXT_ENV, e))?;
        let sink = decode_param(&msgs).and_then(|p| sink_of(&p)).map_err(|e| bad(MESSAGES_ENV, e))?;
        Ok(DagsterPipes { sink: Some(Arc::new(Mutex::new(sink))), context: Some(context) })
    }

    fn hooks(&self) -> Vec<HookRegistration> {
        let Some(sink) = self.sink.clone() else { return Vec::new() };
        // the step's one asset, as Dagster spells it (phlo runs one asset per step)
        let single = self.context.as_ref().and_then(|c| match c.get("asset_keys") {
            Some(Value::Array(keys)) if keys.len() == 1 => keys[0].as_str().map(str::to_string),
            _ => None,
        });
        vec![
            HookRegistration::new("dagster_pipes", "report", move |e: &Event| -> Result<(), HookFailure> {
                let Some((method, params)) = message_of(e, single.as_deref()) else { return Ok(()) };
                let line =
                    json!({"__dagster_pipes_version": "0.1", "method": method, "params": params}).to_string() + "\n";
                let mut guard = sink.lock().unwrap_or_else(PoisonError::into_inner);
                let written = match &mut *guard {
                    // one write per message: Dagster's reader never sees half a line
                    Sink::File(f) => f.write_all(line.as_bytes()).and_then(|()| f.flush()),
                    Sink::Stderr => std::io::stderr().write_all(line.as_bytes()),
                    Sink::Stdout => std::io::stdout().write_all(line.as_bytes()),
                };
                written.map_err(|err| format!("cannot write a Dagster Pipes message: {err}").into())
            })
            // what Dagster is told is what happened: a message that cannot be written fails
            .policy(FailurePolicy::Raise),
        ]
    }
}

/// Dagster's spelling of an asset key when the context does not name the step's one asset:
/// its parts joined by `/`.
pub fn dagster_key(key: &str) -> String {
    key.replace('.', "/")
}

fn infer(v: &Value) -> Value {
    json!({"raw_value": v, "type": "__infer__"})
}

/// The Pipes message an event becomes, if any; `single` is the step's one asset as Dagster
/// names it.
pub fn message_of(e: &Event, single: Option<&str>) -> Option<(&'static str, Value)> {
    let name = |k: &str| single.map_or_else(|| dagster_key(k), str::to_string);
    let asset = e.correlation.asset_key.as_ref().map(|k| name(k.as_str()));
    match &e.payload {
        EventPayload::RunStart(_) => Some(("opened", json!({"extras": {}}))),
        EventPayload::RunEnd(_) => Some(("closed", json!({}))),
        EventPayload::IngestionEnd(a) | EventPayload::TransformEnd(a) | EventPayload::PublishEnd(a) => {
            if a.status == Some(Status::Succeeded) {
                let mut metadata: Map<String, Value> = a.metrics.iter().map(|(k, v)| (k.clone(), infer(v))).collect();
                if let Some(ms) = a.duration_ms {
                    metadata.insert(String::from("duration_ms"), infer(&json!(ms)));
                }
                if let Some(p) = &e.correlation.partition {
                    metadata.insert(String::from("partition"), infer(&json!(p)));
                }
                if let Some(run) = &e.correlation.run_id {
                    metadata.insert(String::from("phlo_run_id"), infer(&json!(run.as_ref())));
                }
                Some((
                    "report_asset_materialization",
                    json!({
                        "asset_key": asset,
                        "data_version": a.versions.as_ref().map(|v| &*v.data),
                        "metadata": metadata
                    }),
                ))
            } else {
                let why = a.error.clone().unwrap_or_else(|| String::from("failed"));
                Some(("log", json!({"message": format!("{}: {why}", asset.unwrap_or_default()), "level": "ERROR"})))
            }
        }
        EventPayload::QualityResult(r) => {
            let passed = matches!(r.outcome, phlo_core::spec::CheckOutcome::Passed);
            // the outcome as phlo's reports spell it: `{"status": "failed"}`, `{"status": "error", "error": …}`
            let outcome = serde_json::to_value(&r.outcome).unwrap_or(Value::Null);
            let mut metadata = json!({
                "violations": infer(&json!(r.violations)),
                "total": infer(&json!(r.total)),
                "rate": infer(&json!(r.rate)),
                "outcome": infer(&outcome["status"]),
            });
            if let Some(error) = outcome.get("error") {
                metadata["error"] = infer(error);
            }
            Some((
                "report_asset_check",
                json!({
                    "asset_key": name(&r.asset),
                    "check_name": r.check,
                    "passed": passed,
                    "severity": if r.severity == phlo_core::spec::Severity::Warn { "WARN" } else { "ERROR" },
                    "metadata": metadata,
                }),
            ))
        }
        EventPayload::TelemetryLog { level, message } => {
            let level = match level.as_str() {
                "debug" => "DEBUG",
                "warn" | "warning" => "WARNING",
                "error" => "ERROR",
                _ => "INFO",
            };
            Some(("log", json!({"message": message, "level": level})))
        }
        EventPayload::AssetSkipped { reason, .. } => Some((
            "log",
            json!({"message": format!("{} skipped: {reason}", asset.unwrap_or_default()), "level": "WARNING"}),
        )),
        _ => None,
    }
}

phlo_core::register!(hook_provider DagsterPipes);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_round_trip_and_bad_ones_are_named() {
        let v = json!({"path": "/tmp/x.json"});
        let decoded = decode_param(&encode_param(&v)).unwrap();
        assert_eq!(Value::Object(decoded), v);
        assert!(decode_param("not base64 !").unwrap_err().contains("not base64"));
        let plain = base64::engine::general_purpose::STANDARD.encode(b"{}");
        assert!(decode_param(&plain).unwrap_err().contains("zlib"));
        assert!(sink_of(&decode_param(&encode_param(&json!({"s3": "x"}))).unwrap()).is_err());
    }
}
