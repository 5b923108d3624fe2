//! `phlo runs list|show|events`: the project's run history, from its run store.

use std::io::{self, Write};
use std::path::Path;
use std::sync::Arc;

use phlo_core::diagnostic::{Code, Diagnostic};
use phlo_core::execution::{RunDetail, RunStore, StoreError};

use super::render::Table;
use super::{Outcome, load, write_json};

#[derive(Debug, clap::Args)]
pub(crate) struct ListArgs {
    /// Only runs with this status: running, succeeded, failed, cancelled, interrupted.
    #[arg(long, value_name = "S", value_parser = ["running", "succeeded", "failed", "cancelled", "interrupted"])]
    status: Option<String>,
    /// At most this many runs, newest first.
    #[arg(long, value_name = "N", default_value_t = 20)]
    limit: usize,
    /// One JSON document.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Args)]
pub(crate) struct ShowArgs {
    /// The run's id (`phlo runs list` shows them).
    run_id: String,
    /// One JSON document.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Args)]
#[group(required = true, multiple = true)]
pub(crate) struct PruneArgs {
    /// Keep the newest N runs.
    #[arg(long, value_name = "N")]
    keep: Option<usize>,
    /// Delete runs that started longer ago than this (`30d`, `12h`).
    #[arg(long, value_name = "AGE", value_parser = parse_age)]
    older_than: Option<std::time::Duration>,
}

fn parse_age(s: &str) -> Result<std::time::Duration, String> {
    phlo_core::config::parse_duration(s).ok_or_else(|| format!("`{s}` is not an age: write `30d`, `12h`, `90m`"))
}

#[derive(Debug, clap::Args)]
pub(crate) struct EventsArgs {
    /// The run's id.
    run_id: String,
}

pub(crate) fn store_error(e: StoreError) -> Outcome {
    let mut d = Diagnostic::error(Code::RunStore, e.message);
    if let Some(h) = e.help {
        d = d.with_help(h);
    }
    Outcome::from_diagnostics(d.into())
}

/// The project's run store, with the runs whose process is gone marked `interrupted`.
fn open(dir: &Path) -> Result<Arc<dyn RunStore>, Outcome> {
    open_with_project(dir).map(|(store, _)| store)
}

/// [`open`], for a command about one run: an unknown run is its error.
fn open_run(dir: &Path, run_id: &str) -> Result<Arc<dyn RunStore>, Outcome> {
    let store = open(dir)?;
    match store.run(run_id) {
        Ok(Some(_)) => Ok(store),
        Ok(None) => Err(unknown_run(&*store, run_id)),
        Err(e) => Err(store_error(e)),
    }
}

/// [`open`], with the project.
pub(crate) fn open_with_project(dir: &Path) -> Result<(Arc<dyn RunStore>, phlo_core::project::Project), Outcome> {
    let project = load(dir, true, Default::default())?;
    if project.diagnostics.has_errors() {
        return Err(Outcome::from_diagnostics(project.diagnostics));
    }
    let store = match project.run_store() {
        Ok(Some(s)) => s,
        Ok(None) => {
            return Err(Outcome::from_diagnostics(
                Diagnostic::error(Code::RunStore, "no run store: nothing in this build provides `run_store`")
                    .with_help(
                        "build with the `plugin-sqlite` feature (on by default), which records runs in `.phlo/runs.db`",
                    )
                    .into(),
            ));
        }
        Err(d) => return Err(Outcome::from_diagnostics(d)),
    };
    super::run::interrupt_dead(dir, store.as_ref())?;
    Ok((store, project))
}

/// Tells which runs were found dead and marked `interrupted`.
pub(crate) fn say_interrupted(ids: &[String]) {
    for id in ids {
        eprintln!(
            "run {id} was interrupted (its process ended without finishing it); `phlo runs show {id}` shows what it completed"
        );
    }
}

pub(crate) fn list<W: Write>(dir: &Path, args: &ListArgs, out: &mut W) -> io::Result<Outcome> {
    let store = match open(dir) {
        Ok(s) => s,
        Err(o) => return Ok(o),
    };
    let runs = match store.runs(args.status.as_deref(), args.limit) {
        Ok(r) => r,
        Err(e) => return Ok(store_error(e)),
    };
    if args.json {
        write_json(out, &runs)?;
        return Ok(Outcome::ok());
    }
    if runs.is_empty() {
        writeln!(
            out,
            "no runs recorded yet{}",
            args.status.as_ref().map(|s| format!(" with status {s}")).unwrap_or_default()
        )?;
        return Ok(Outcome::ok());
    }
    let mut t = Table::new(vec!["RUN", "STATUS", "STARTED", "DURATION", "STEPS", "SELECTION"]);
    for r in &runs {
        let counts: Vec<String> = r.summary.iter().filter(|(_, n)| **n > 0).map(|(k, n)| format!("{n} {k}")).collect();
        t.row(vec![
            r.run_id.clone(),
            r.status.clone(),
            r.started_at.clone(),
            r.duration_ms.map_or_else(|| String::from("-"), |d| format!("{d} ms")),
            if counts.is_empty() { r.steps.to_string() } else { counts.join(", ") },
            r.selection.clone().unwrap_or_else(|| String::from("*")),
        ]);
    }
    t.write(out)?;
    Ok(Outcome::ok())
}

pub(crate) fn unknown_run(store: &dyn RunStore, run_id: &str) -> Outcome {
    let latest: Vec<String> = store.runs(None, 5).unwrap_or_default().into_iter().map(|r| r.run_id).collect();
    let help = if latest.is_empty() {
        String::from("no run is recorded yet: `phlo run` records one")
    } else {
        format!("the latest runs: {} (`phlo runs list` shows more)", latest.join(", "))
    };
    Outcome::from_diagnostics(
        Diagnostic::error(Code::UnknownRun, format!("no run `{run_id}` in the run store")).with_help(help).into(),
    )
}

pub(crate) fn show<W: Write>(dir: &Path, args: &ShowArgs, out: &mut W) -> io::Result<Outcome> {
    let store = match open(dir) {
        Ok(s) => s,
        Err(o) => return Ok(o),
    };
    let detail = match store.run(&args.run_id) {
        Ok(Some(r)) => r,
        Ok(None) => return Ok(unknown_run(&*store, &args.run_id)),
        Err(e) => return Ok(store_error(e)),
    };
    if args.json {
        write_json(out, &detail)?;
        return Ok(Outcome::ok());
    }
    let RunDetail { run, steps, checks } = detail;
    writeln!(
        out,
        "run {} — {}\nstarted {} by {} (pid {}){}\nselection: {}\n",
        run.run_id,
        run.status,
        run.started_at,
        run.started_by,
        run.pid,
        match (&run.ended_at, run.duration_ms) {
            (Some(e), Some(d)) => format!(", ended {e} after {d} ms"),
            (Some(e), None) => format!(", ended {e}"),
            _ => String::new(),
        },
        run.selection.as_deref().unwrap_or("*"),
    )?;
    let mut t = Table::new(vec!["ASSET", "PARTITION", "STATUS", "ATTEMPTS", "DURATION", "NOTE"]);
    for s in &steps {
        let note = match (&s.error, s.metadata.get("row_count")) {
            (Some(e), _) => e.clone(),
            (None, Some(rows)) => format!("{rows} rows"),
            _ => String::new(),
        };
        t.row(vec![
            s.asset_key.clone(),
            s.partition.clone().unwrap_or_else(|| String::from("-")),
            s.status.clone(),
            s.attempts.to_string(),
            s.duration_ms.map_or_else(|| String::from("-"), |d| format!("{d} ms")),
            note,
        ]);
    }
    t.write(out)?;
    if !checks.is_empty() {
        writeln!(out)?;
        let mut c = Table::new(vec!["CHECK", "ASSET", "RESULT", "FOUND"]);
        for k in &checks {
            let n = |f: &str| k.result.get(f).and_then(serde_json::Value::as_u64).unwrap_or(0);
            c.row(vec![
                k.name.clone(),
                k.asset_key.clone(),
                if k.passed { String::from("passed") } else { String::from("failed") },
                format!("{}/{} rows", n("violations"), n("total")),
            ]);
        }
        c.write(out)?;
        for k in checks.iter().filter(|k| !k.passed) {
            if let Some(samples) =
                k.result.get("samples").and_then(serde_json::Value::as_array).filter(|s| !s.is_empty())
            {
                writeln!(out, "\n{} on {}, e.g.", k.name, k.asset_key)?;
                for s in samples {
                    writeln!(out, "  {s}")?;
                }
            }
        }
    }
    Ok(Outcome::ok())
}

pub(crate) fn events<W: Write>(dir: &Path, args: &EventsArgs, out: &mut W) -> io::Result<Outcome> {
    let store = match open_run(dir, &args.run_id) {
        Ok(s) => s,
        Err(o) => return Ok(o),
    };
    let events = match store.events(&args.run_id) {
        Ok(e) => e,
        Err(e) => return Ok(store_error(e)),
    };
    for e in events {
        writeln!(out, "{e}")?;
    }
    Ok(Outcome::ok())
}

#[derive(Debug, clap::Args)]
pub(crate) struct LogsArgs {
    /// The run's id.
    run_id: String,
    /// One step: its asset key (with `.PARTITION` for a partitioned one, as the file is
    /// named); all the run's logs when left out.
    step: Option<String>,
}

/// The log files of a run, by name without `.log`, in name order.
fn run_logs(dir: &Path, run_id: &str) -> Vec<(String, std::path::PathBuf)> {
    let Ok(entries) = std::fs::read_dir(dir.join(".phlo/logs").join(run_id)) else { return Vec::new() };
    let mut logs: Vec<(String, std::path::PathBuf)> = entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_str()?.strip_suffix(".log")?.to_string();
            Some((name, e.path()))
        })
        .collect();
    logs.sort();
    logs
}

pub(crate) fn logs<W: Write>(dir: &Path, args: &LogsArgs, out: &mut W) -> io::Result<Outcome> {
    if let Err(o) = open_run(dir, &args.run_id) {
        return Ok(o);
    }
    let logs = run_logs(dir, &args.run_id);
    let chosen: Vec<&(String, std::path::PathBuf)> = match &args.step {
        None => logs.iter().collect(),
        Some(step) => logs.iter().filter(|(name, _)| name == step).collect(),
    };
    if chosen.is_empty() {
        let names: Vec<&str> = logs.iter().map(|(n, _)| n.as_str()).collect();
        // with logs there, only a step that has none chose nothing
        let (what, help) = if names.is_empty() {
            (
                format!("run `{}` has no step logs", args.run_id),
                String::from("only `command` steps write logs (`.phlo/logs/RUN/STEP.log`)"),
            )
        } else {
            (
                format!("run `{}` has no log for `{}`", args.run_id, args.step.as_deref().unwrap_or_default()),
                format!("its logs: {}", names.join(", ")),
            )
        };
        return Ok(Outcome::from_diagnostics(Diagnostic::error(Code::UnknownRun, what).with_help(help).into()));
    }
    let several = chosen.len() > 1;
    for (name, path) in chosen {
        if several {
            writeln!(out, "=== {name} ===")?;
        }
        let mut f = std::fs::File::open(path)?;
        io::copy(&mut f, out)?;
    }
    Ok(Outcome::ok())
}

/// Removes the log directories of runs the store no longer has; returns how many.
fn prune_logs(dir: &Path, store: &dyn RunStore) -> usize {
    let Ok(entries) = std::fs::read_dir(dir.join(".phlo/logs")) else { return 0 };
    let mut removed = 0;
    for e in entries.flatten() {
        let Some(run_id) = e.file_name().to_str().map(str::to_string) else { continue };
        if matches!(store.run(&run_id), Ok(None)) && std::fs::remove_dir_all(e.path()).is_ok() {
            removed += 1;
        }
    }
    removed
}

pub(crate) fn prune<W: Write>(dir: &Path, args: &PruneArgs, out: &mut W) -> io::Result<Outcome> {
    let store = match open(dir) {
        Ok(s) => s,
        Err(o) => return Ok(o),
    };
    let before =
        args.older_than.and_then(|age| chrono::Duration::from_std(age).ok()).map(|age| chrono::Utc::now() - age);
    match store.prune(args.keep, before) {
        Ok(n) => {
            let logs = prune_logs(dir, &*store);
            writeln!(out, "pruned {n} run(s)")?;
            if logs > 0 {
                writeln!(out, "removed the logs of {logs} run(s)")?;
            }
            Ok(Outcome::ok())
        }
        Err(e) => Ok(store_error(e)),
    }
}

#[derive(Debug, clap::Args)]
pub(crate) struct HistoryArgs {
    /// The asset key.
    key: String,
    /// At most this many steps, newest first.
    #[arg(long, value_name = "N", default_value_t = 20)]
    limit: usize,
    /// One JSON document.
    #[arg(long)]
    json: bool,
}

/// `phlo assets history KEY`: the asset's steps across runs, with their rows and errors.
pub(crate) fn history<W: Write>(dir: &Path, args: &HistoryArgs, out: &mut W) -> io::Result<Outcome> {
    let (store, project) = match open_with_project(dir) {
        Ok(s) => s,
        Err(o) => return Ok(o),
    };
    let rows = match store.history(&args.key, args.limit) {
        Ok(r) => r,
        Err(e) => return Ok(store_error(e)),
    };
    // an asset no longer in the project keeps its history; a key that never was is a mistake
    let graph = &project.graph;
    if rows.is_empty() && graph.index_of(&args.key).is_none() {
        let keys = graph.nodes().iter().map(|n| n.spec.key.as_str());
        let help = match phlo_core::diagnostic::did_you_mean(&args.key, keys) {
            Some(k) => format!("did you mean `{k}`? (`phlo assets list` shows the keys)"),
            None => String::from("`phlo assets list` shows the keys"),
        };
        return Ok(Outcome::from_diagnostics(
            Diagnostic::error(Code::SelectionSyntax, format!("no asset `{}` in this project", args.key))
                .with_help(help)
                .into(),
        ));
    }
    if args.json {
        let rows: Vec<_> = rows.iter().map(|(run, step)| serde_json::json!({"run_id": run, "step": step})).collect();
        write_json(out, &rows)?;
        return Ok(Outcome::ok());
    }
    if rows.is_empty() {
        writeln!(out, "asset `{}` has not run yet (or its runs were pruned)", args.key)?;
        return Ok(Outcome::ok());
    }
    let mut t = Table::new(vec!["RUN", "PARTITION", "STATUS", "ATTEMPTS", "DURATION", "ROWS", "DATA VERSION", "NOTE"]);
    for (run, s) in &rows {
        t.row(vec![
            run.clone(),
            s.partition.clone().unwrap_or_else(|| String::from("-")),
            s.status.clone(),
            s.attempts.to_string(),
            s.duration_ms.map_or_else(|| String::from("-"), |d| format!("{d} ms")),
            s.metadata.get("row_count").map_or_else(|| String::from("-"), ToString::to_string),
            s.data_version.as_deref().map_or_else(|| String::from("-"), short_version),
            s.error.clone().unwrap_or_default(),
        ]);
    }
    t.write(out)?;
    Ok(Outcome::ok())
}

/// A data or code version as tables show it: its first 16 characters after any prefix.
pub(crate) fn short_version(v: &str) -> String {
    let (kind, hash) = v.rsplit_once(['-', ':']).unwrap_or(("", v));
    let hash: String = hash.chars().take(12).collect();
    if kind.is_empty() { hash } else { format!("{kind}-{hash}") }
}
