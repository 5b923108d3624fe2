//! The `console` hook: one human-readable line per lifecycle step, through `tracing`
//! (target `phlo::console`), so it lands wherever the binary's subscriber writes.
//!
//! ```yaml
//! hooks:
//!   console:
//!     verbose: true      # also lineage edges and metrics
//! ```

use std::fmt::Write as _;

use phlo_core::hooks::{
    AssetEvent, Event, EventPayload, EventType, FailurePolicy, HookFailure, HookRegistration, RunEvent, Status,
};
use phlo_core::plugin::{HookProvider, Plugin, PluginContext, PluginError};
use phlo_core::spec::{CheckOutcome, Severity};
use schemars::JsonSchema;
use serde::Deserialize;

/// `hooks.console` in phlo.yaml.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct ConsoleConfig {
    /// Also print lineage edges and metrics.
    pub verbose: bool,
}

/// How important a line is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineLevel {
    /// Normal progress.
    Info,
    /// Something to look at (a failed warn check, a skipped asset).
    Warn,
    /// A failure.
    Error,
}

fn asset_label(e: &Event) -> String {
    let mut s = e.correlation.asset_key.as_deref().unwrap_or("?").to_string();
    if let Some(p) = &e.correlation.partition {
        let _ = write!(s, " [{p}]");
    }
    s
}

fn ms(d: Option<u64>) -> String {
    match d {
        Some(ms) if ms >= 10_000 => format!("{:.1} s", ms as f64 / 1000.0),
        Some(ms) => format!("{ms} ms"),
        None => String::from("?"),
    }
}

fn metrics(m: &std::collections::BTreeMap<String, serde_json::Value>) -> String {
    m.iter().map(|(k, v)| format!(" {k}={v}")).collect()
}

fn start_line(kind: &str, e: &Event) -> String {
    let attempt = e.correlation.attempt;
    let retry = if attempt > 1 { format!(", attempt {attempt}") } else { String::new() };
    format!("▶ {} ({kind}{retry})", asset_label(e))
}

fn end_line(e: &Event, a: &AssetEvent) -> (LineLevel, String) {
    match a.status {
        Some(Status::Failed) => (
            LineLevel::Error,
            format!(
                "✘ {} failed after {}: {}",
                asset_label(e),
                ms(a.duration_ms),
                a.error.as_deref().unwrap_or("unknown error")
            ),
        ),
        Some(Status::Cancelled) => {
            (LineLevel::Warn, format!("■ {} cancelled after {}", asset_label(e), ms(a.duration_ms)))
        }
        _ => (LineLevel::Info, format!("✔ {} in {}{}", asset_label(e), ms(a.duration_ms), metrics(&a.metrics))),
    }
}

fn run_end_line(e: &Event, r: &RunEvent) -> (LineLevel, String) {
    let summary: Vec<String> = r.summary.iter().map(|(k, v)| format!("{v} {k}")).collect();
    let status = r.status.unwrap_or(Status::Succeeded);
    let level = match status {
        Status::Succeeded => LineLevel::Info,
        Status::Cancelled | Status::Skipped => LineLevel::Warn,
        Status::Failed => LineLevel::Error,
    };
    let word = match status {
        Status::Succeeded => "succeeded",
        Status::Failed => "failed",
        Status::Cancelled => "was cancelled",
        Status::Skipped => "skipped",
    };
    let run = e.correlation.run_id.as_deref().unwrap_or("?");
    (level, format!("run {run} {word} in {}: {}", ms(r.duration_ms), summary.join(", ")))
}

/// The line for an event, or `None` when the console stays quiet about it.
pub fn format_line(e: &Event, verbose: bool) -> Option<(LineLevel, String)> {
    Some(match &e.payload {
        EventPayload::RunStart(r) => {
            let run = e.correlation.run_id.as_deref().unwrap_or("?");
            let sel = r.selection.as_deref().map(|s| format!(" (selection: {s})")).unwrap_or_default();
            (LineLevel::Info, format!("run {run} started: {} asset(s){sel}", r.assets))
        }
        EventPayload::RunEnd(r) => run_end_line(e, r),
        EventPayload::IngestionStart(_) => (LineLevel::Info, start_line("ingestion", e)),
        EventPayload::TransformStart(_) => (LineLevel::Info, start_line("transform", e)),
        EventPayload::PublishStart(_) => (LineLevel::Info, start_line("publish", e)),
        EventPayload::IngestionEnd(a) | EventPayload::TransformEnd(a) | EventPayload::PublishEnd(a) => end_line(e, a),
        EventPayload::AssetSkipped { reason, unchanged_since: Some(_), .. } => {
            (LineLevel::Info, format!("= {} skipped, unchanged: {reason}", asset_label(e)))
        }
        EventPayload::AssetSkipped { reason, failed_upstream, .. } => {
            let because = failed_upstream.as_deref().map(|u| format!(" (upstream `{u}`)")).unwrap_or_default();
            (LineLevel::Warn, format!("⏭ {} skipped: {reason}{because}", asset_label(e)))
        }
        EventPayload::QualityResult(r) => {
            let counts = format!("{}/{} rows", r.violations, r.total);
            match &r.outcome {
                CheckOutcome::Passed => {
                    (LineLevel::Info, format!("  ✔ check {} on {} passed ({counts})", r.check, r.asset))
                }
                CheckOutcome::Failed => {
                    let level = if r.severity == Severity::Error { LineLevel::Error } else { LineLevel::Warn };
                    let blocking = if r.blocks() { ", blocks downstream" } else { "" };
                    let sev = match r.severity {
                        Severity::Info => "info",
                        Severity::Warn => "warn",
                        Severity::Error => "error",
                    };
                    (level, format!("  ✘ check {} on {} failed ({sev}{blocking}): {counts}", r.check, r.asset))
                }
                CheckOutcome::CouldNotRun(why) => {
                    (LineLevel::Error, format!("  ✘ check {} on {} could not run: {why}", r.check, r.asset))
                }
            }
        }
        EventPayload::LineageEdges { edges } if verbose => {
            let list: Vec<String> = edges.iter().map(|(a, b)| format!("{a} → {b}")).collect();
            (LineLevel::Info, format!("  lineage: {}", list.join(", ")))
        }
        EventPayload::TelemetryMetric { name, value, unit } if verbose => (
            LineLevel::Info,
            format!("  metric {name} = {value}{}", unit.as_deref().map(|u| format!(" {u}")).unwrap_or_default()),
        ),
        EventPayload::TelemetryLog { level, message } => {
            let l = match level.as_str() {
                "error" => LineLevel::Error,
                "warn" | "warning" => LineLevel::Warn,
                "debug" | "trace" if !verbose => return None,
                _ => LineLevel::Info,
            };
            (l, format!("  {} │ {message}", asset_label(e)))
        }
        EventPayload::HookErrored { plugin, hook, failed_event, error, .. } => (
            LineLevel::Warn,
            format!("warning: hook `{hook}` of plugin `{plugin}` failed on `{failed_event}`: {error}"),
        ),
        EventPayload::ServicePreStart(s)
        | EventPayload::ServicePostStart(s)
        | EventPayload::ServicePreStop(s)
        | EventPayload::ServicePostStop(s) => {
            if !verbose {
                return None;
            }
            (LineLevel::Info, format!("service {} {}", s.service, e.event_type.as_str().trim_start_matches("service.")))
        }
        _ => return None,
    })
}

/// The `console` hook provider.
#[derive(Debug)]
pub struct Console {
    verbose: bool,
}

impl Plugin for Console {
    const NAME: &'static str = "console";
    const DESCRIPTION: &'static str = "Human-readable lifecycle lines through tracing";
    type Config = ConsoleConfig;
    const TAGS: &'static [&'static str] = &["hook", "logging"];
}

impl HookProvider for Console {
    fn create(config: ConsoleConfig, _: &PluginContext) -> Result<Self, PluginError> {
        Ok(Console { verbose: config.verbose })
    }

    fn hooks(&self) -> Vec<HookRegistration> {
        let verbose = self.verbose;
        let reg = HookRegistration::new("console", "lines", move |e: &Event| -> Result<(), HookFailure> {
            if let Some((level, line)) = format_line(e, verbose) {
                match level {
                    LineLevel::Info => tracing::info!(target: "phlo::console", "{line}"),
                    LineLevel::Warn => tracing::warn!(target: "phlo::console", "{line}"),
                    LineLevel::Error => tracing::error!(target: "phlo::console", "{line}"),
                }
            }
            Ok(())
        })
        .priority(200)
        .policy(FailurePolicy::Log);
        // without `verbose`, the bus does not even call the hook for types it ignores
        vec![if verbose { reg } else { reg.events(QUIET_TYPES.iter().copied()) }]
    }
}

phlo_core::register!(hook_provider Console);

/// Every event type the console prints without `verbose`.
pub const QUIET_TYPES: &[EventType] = &[
    EventType::RunStart,
    EventType::RunEnd,
    EventType::IngestionStart,
    EventType::IngestionEnd,
    EventType::TransformStart,
    EventType::TransformEnd,
    EventType::PublishStart,
    EventType::PublishEnd,
    EventType::AssetSkipped,
    EventType::QualityResult,
    EventType::TelemetryLog,
    EventType::HookErrored,
];

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    use phlo_core::hooks::{Correlation, HookBus};
    use phlo_core::plugin::{Instance, PluginKind, Registry};
    use phlo_core::spec::{CheckResult, CheckSpec};

    use super::*;

    fn ev(payload: EventPayload) -> Event {
        Event::new(payload, Correlation::run("r1").with_asset("raw.orders").with_partition("2024-01-01"))
    }

    #[test]
    fn lines_for_the_lifecycle() {
        let line = |e: Event| format_line(&e, false).map(|(_, l)| l);
        assert_eq!(
            line(ev(EventPayload::IngestionStart(AssetEvent::default()))).unwrap(),
            "▶ raw.orders [2024-01-01] (ingestion)"
        );
        let end = AssetEvent {
            status: Some(Status::Succeeded),
            duration_ms: Some(120),
            metrics: [("row_count".to_string(), serde_json::Value::from(1000))].into(),
            ..AssetEvent::default()
        };
        assert_eq!(
            line(ev(EventPayload::IngestionEnd(end))).unwrap(),
            "✔ raw.orders [2024-01-01] in 120 ms row_count=1000"
        );
        let failed = AssetEvent {
            status: Some(Status::Failed),
            duration_ms: Some(3),
            error: Some("boom".into()),
            ..AssetEvent::default()
        };
        let (level, l) = format_line(&ev(EventPayload::TransformEnd(failed)), false).unwrap();
        assert_eq!((level, l.as_str()), (LineLevel::Error, "✘ raw.orders [2024-01-01] failed after 3 ms: boom"));
        let skipped = EventPayload::AssetSkipped {
            reason: "an upstream asset failed".into(),
            failed_upstream: Some("a".into()),
            unchanged_since: None,
        };
        assert!(line(ev(skipped)).unwrap().contains("skipped: an upstream asset failed (upstream `a`)"));
        let mut spec = CheckSpec::new("not_null_id", "not_null");
        spec.severity = Severity::Warn;
        let r = CheckResult::from_counts(&spec, "raw.orders", 3, 10);
        let (level, l) = format_line(&ev(EventPayload::QualityResult(Box::new(r))), false).unwrap();
        assert_eq!(
            (level, l.as_str()),
            (LineLevel::Warn, "  ✘ check not_null_id on raw.orders failed (warn): 3/10 rows")
        );
        let lineage = EventPayload::LineageEdges { edges: vec![("a".into(), "b".into())] };
        assert_eq!(line(ev(lineage.clone())), None);
        assert_eq!(format_line(&ev(lineage), true).unwrap().1, "  lineage: a → b");
        let run_end = RunEvent {
            status: Some(Status::Failed),
            duration_ms: Some(12_345),
            summary: [("failed".to_string(), 1), ("succeeded".to_string(), 4)].into(),
            ..RunEvent::default()
        };
        assert_eq!(line(ev(EventPayload::RunEnd(run_end))).unwrap(), "run r1 failed in 12.3 s: 1 failed, 4 succeeded");
    }

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl Write for Buffer {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn lines_go_through_tracing() {
        let buffer = Buffer::default();
        let writer = buffer.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .without_time()
            .with_target(false)
            .with_ansi(false)
            .finish();
        let registry = Registry::builder().register(phlo_core::descriptor!(hook_provider Console)).build().unwrap();
        let Instance::Hooks(p) = registry.get_or_create(PluginKind::HookProvider, "console").unwrap() else { panic!() };
        let mut bus = HookBus::builder();
        for r in p.hooks() {
            bus.register(r).unwrap();
        }
        let bus = bus.freeze(None).unwrap();
        tracing::subscriber::with_default(subscriber, || {
            bus.emit_event(ev(EventPayload::IngestionStart(AssetEvent::default()))).unwrap();
        });
        let out = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
        assert!(out.contains("▶ raw.orders [2024-01-01] (ingestion)"), "{out}");
    }
}
