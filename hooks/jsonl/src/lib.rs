//! The `jsonl` hook: every event appended to a file as one JSON line, written out per
//! event. Its failure policy is `raise` by default — a step whose events cannot be recorded
//! fails instead of losing them.
//!
//! ```yaml
//! hooks:
//!   jsonl:
//!     path: .phlo/events.jsonl   # relative to the project; the default
//! ```

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use phlo_core::hooks::{Event, FailurePolicy, HookFailure, HookRegistration};
use phlo_core::plugin::{HookProvider, Plugin, PluginContext, PluginError};
use schemars::JsonSchema;
use serde::Deserialize;

/// `hooks.jsonl` in phlo.yaml.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct JsonlConfig {
    /// The file, relative to the project directory (created with its directories).
    pub path: String,
    /// Start a new file on every process start instead of appending.
    pub truncate: bool,
}

impl Default for JsonlConfig {
    fn default() -> Self {
        Self { path: String::from(".phlo/events.jsonl"), truncate: false }
    }
}

/// The `jsonl` hook provider.
#[derive(Debug)]
pub struct Jsonl {
    path: PathBuf,
    truncate: bool,
    /// Opened on the first event: listing or validating a project writes nothing.
    file: Arc<Mutex<Option<File>>>,
}

fn open(path: &Path, truncate: bool) -> Result<File, String> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| {
            format!(
                "cannot create the directory `{}` for the event log: {e} (set `hooks.jsonl.path` to a writable location)",
                dir.display()
            )
        })?;
    }
    OpenOptions::new().create(true).write(true).append(!truncate).truncate(truncate).open(path).map_err(|e| {
        format!("cannot open the event log `{}`: {e} (set `hooks.jsonl.path` to a writable file)", path.display())
    })
}

impl Plugin for Jsonl {
    const NAME: &'static str = "jsonl";
    const DESCRIPTION: &'static str = "Every event appended to a JSON Lines file";
    type Config = JsonlConfig;
    const TAGS: &'static [&'static str] = &["hook", "audit"];
}

impl HookProvider for Jsonl {
    fn create(config: JsonlConfig, ctx: &PluginContext) -> Result<Self, PluginError> {
        if config.path.trim().is_empty() {
            return Err(PluginError::with_help(
                "`hooks.jsonl.path` is empty",
                "give a file path, e.g. `.phlo/events.jsonl`",
            ));
        }
        Ok(Jsonl {
            path: ctx.project_path("path", &config.path)?,
            truncate: config.truncate,
            file: Arc::new(Mutex::new(None)),
        })
    }

    fn hooks(&self) -> Vec<HookRegistration> {
        let file = Arc::clone(&self.file);
        let path = self.path.clone();
        let truncate = self.truncate;
        vec![
            HookRegistration::new("jsonl", "append", move |e: &Event| -> Result<(), HookFailure> {
                let mut line = e.to_json_line();
                line.push('\n');
                let mut guard = file.lock().unwrap_or_else(PoisonError::into_inner);
                if guard.is_none() {
                    *guard = Some(open(&path, truncate)?);
                }
                let f = guard.as_mut().expect("opened above");
                // one write per line: concurrent readers never see half an event
                f.write_all(line.as_bytes())
                    .and_then(|()| f.flush())
                    .map_err(|err| format!("cannot append to `{}`: {err}", path.display()).into())
            })
            .priority(10)
            .policy(FailurePolicy::Raise),
        ]
    }
}

phlo_core::register!(hook_provider Jsonl);

#[cfg(test)]
mod tests {
    use phlo_core::config::{Format, node};
    use phlo_core::diagnostic::SourceFile;
    use phlo_core::hooks::{AssetEvent, Correlation, EventPayload, HookBus, HookError};
    use phlo_core::plugin::{Instance, PluginKind, Registry};

    use super::*;

    fn bus_in(dir: &std::path::Path, yaml: &str) -> Result<HookBus, phlo_core::plugin::RegistryError> {
        bus_with(dir, yaml, false)
    }

    fn bus_with(
        dir: &std::path::Path,
        yaml: &str,
        allow_outside: bool,
    ) -> Result<HookBus, phlo_core::plugin::RegistryError> {
        let src = SourceFile::new("phlo.yaml", yaml);
        let node = node::parse(&src, Format::Yaml).unwrap();
        let registry = Registry::builder()
            .register(phlo_core::descriptor!(hook_provider Jsonl))
            .project_dir(dir)
            .allow_outside_project(allow_outside)
            .plugin_config(PluginKind::HookProvider, "jsonl", node)
            .source(src)
            .build()
            .unwrap();
        let Instance::Hooks(p) = registry.get_or_create(PluginKind::HookProvider, "jsonl")? else { panic!() };
        let mut bus = HookBus::builder();
        for r in p.hooks() {
            bus.register(r).unwrap();
        }
        Ok(bus.freeze(None).unwrap())
    }

    fn event(asset: &str) -> Event {
        Event::new(EventPayload::IngestionStart(AssetEvent::default()), Correlation::run("r1").with_asset(asset))
    }

    #[test]
    fn every_event_is_one_json_line_and_lines_append() {
        let dir = tempfile::tempdir().unwrap();
        let bus = bus_in(dir.path(), "path: logs/run.jsonl\n").unwrap();
        bus.emit_event(event("a")).unwrap();
        bus.emit_event(event("b")).unwrap();
        // written out per event: readable before the bus is dropped
        let text = std::fs::read_to_string(dir.path().join("logs/run.jsonl")).unwrap();
        let lines: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[1]["type"], "ingestion.start");
        assert_eq!(lines[1]["correlation"]["asset_key"], "b");
        drop(bus);
        let bus = bus_in(dir.path(), "path: logs/run.jsonl\n").unwrap();
        bus.emit_event(event("c")).unwrap();
        assert_eq!(std::fs::read_to_string(dir.path().join("logs/run.jsonl")).unwrap().lines().count(), 3);
    }

    #[test]
    fn nothing_is_written_until_the_first_event() {
        let dir = tempfile::tempdir().unwrap();
        let _bus = bus_in(dir.path(), "{}").unwrap();
        assert!(!dir.path().join(".phlo").exists());
    }

    #[test]
    fn an_unwritable_path_raises_with_a_fix() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("blocker"), "a file, not a directory").unwrap();
        let bus = bus_in(dir.path(), "path: blocker/events.jsonl\n").unwrap();
        let e = bus.emit_event(event("a")).unwrap_err();
        assert!(e.to_string().contains("cannot create the directory"), "{e}");
        assert!(e.to_string().contains("set `hooks.jsonl.path` to a writable location"), "{e}");
        assert!(bus_in(dir.path(), "path: ''\n").is_err());
    }

    #[cfg(unix)]
    #[test]
    fn a_failed_write_raises() {
        let dir = tempfile::tempdir().unwrap();
        // outside the project: refused unless the project allows it
        let e = bus_in(dir.path(), "path: /dev/full\n").expect_err("refused");
        assert!(e.to_string().contains("`/dev/full` is outside the project directory"), "{e}");
        let bus = bus_with(dir.path(), "path: /dev/full\n", true).unwrap();
        let e = bus.emit_event(event("a")).unwrap_err();
        assert!(
            matches!(&e, HookError::Raised { plugin, hook, .. } if &**plugin == "jsonl" && &**hook == "append"),
            "{e}"
        );
        assert!(e.to_string().contains("cannot append to `/dev/full`"), "{e}");
    }
}
