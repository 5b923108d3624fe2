//! `phlo run`: prepare the run, hand it to the orchestrator adapter on a tokio runtime,
//! show progress on a terminal, print the summary (or one JSON document).

use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, IsTerminal, Write};
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use phlo_core::diagnostic::{Code, Diagnostic, Diagnostics};
use phlo_core::execution::RunStore;
use phlo_core::execution::{AssetStatus, PartitionRequest, RunOptions, RunReport, RunStatus};
use phlo_core::hooks::{EventType, Observed};
use phlo_core::plugin::{DynAdapter, Instance, PluginKind};

use super::render::Table;
use super::{Outcome, load, parse_tag, write_json};

#[derive(Debug, Clone, clap::Args)]
pub(crate) struct Args {
    /// Only these assets (selection language).
    #[arg(long, short = 's', value_name = "SEL")]
    select: Option<String>,
    /// Run partitioned assets for this partition key.
    #[arg(long, value_name = "KEY", conflicts_with = "partition_range")]
    partition: Option<String>,
    /// A backfill: every partition from A to B, both included.
    #[arg(long, value_name = "A..B")]
    partition_range: Option<String>,
    /// Most assets running at once (default: `executor.concurrency`, else the CPU count).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    concurrency: Option<u32>,
    /// A run tag (repeatable), e.g. `phlo/capability/table_store=sqlite`.
    #[arg(long = "tag", value_name = "KEY=VALUE", value_parser = parse_tag)]
    tags: Vec<(String, String)>,
    /// Seed of the retry jitter, to reproduce a run's delays.
    #[arg(long)]
    seed: Option<u64>,
    /// Print one JSON document instead of progress and a summary.
    #[arg(long)]
    json: bool,
    /// When another run of this project is going, fail at once instead of waiting for it.
    #[arg(long)]
    no_wait: bool,
    /// Evaluate "now" at this instant: which partitions are complete, which is the latest.
    /// RFC 3339 (`2024-03-15T10:30:00Z`) or a UTC date-time (`2024-03-15T10:30`).
    #[arg(long, value_name = "TIMESTAMP", value_parser = super::parse_at)]
    at: Option<chrono::DateTime<chrono::Utc>>,
    /// The run's id, when an external orchestrator owns the run (e.g. Dagster's run id).
    #[arg(long, value_name = "ID", value_parser = parse_run_id)]
    run_id: Option<String>,
    /// Make exactly one attempt per step, numbered N, with no retries inside: for an external
    /// orchestrator that retries itself (Dagster's retry number + 1).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1000))]
    attempt: Option<u32>,
    /// Finish an earlier run: its failed, skipped, interrupted and never-started steps, with
    /// its selection, partitions and tags, under its run id; its succeeded steps stay as they are.
    #[arg(long, value_name = "RUN_ID", conflicts_with_all = ["select", "partition", "partition_range", "run_id", "at", "from_failure"])]
    resume: Option<String>,
    /// `--resume` the latest run that failed or was interrupted.
    #[arg(long, conflicts_with_all = ["select", "partition", "partition_range", "run_id", "at"])]
    from_failure: bool,
    /// Leave out assets whose code and inputs (upstream data versions, observed sources) equal
    /// those of their last success; they are reported as `skipped_unchanged`.
    #[arg(long)]
    skip_unchanged: bool,
}

/// What `--resume` takes from the stored run.
struct Resume {
    run_id: String,
    selection: Option<String>,
    partitions: Option<PartitionRequest>,
    at: Option<chrono::DateTime<chrono::Utc>>,
    tags: BTreeMap<String, String>,
    done: BTreeSet<(String, Option<String>)>,
}

/// The run `--resume` / `--from-failure` names, or why there is nothing to do.
fn resume_of(store: Option<&Arc<dyn RunStore>>, args: &Args) -> Result<Option<Resume>, Outcome> {
    if args.resume.is_none() && !args.from_failure {
        return Ok(None);
    }
    let Some(store) = store else {
        return Err(Outcome::from_diagnostics(
            Diagnostic::error(
                Code::RunStore,
                "--resume needs the run store, and nothing in this build provides `run_store`",
            )
            .with_help("build with the `plugin-sqlite` feature (on by default)")
            .into(),
        ));
    };
    let id = match &args.resume {
        Some(id) => id.clone(),
        None => match latest_unresolved(&**store)? {
            Some(id) => id,
            None => {
                return Err(Outcome {
                    code: 0,
                    diagnostics: Diagnostic::warning(
                        Code::UnknownRun,
                        "no failed, cancelled or interrupted run left to resume",
                    )
                    .with_help(
                        "`phlo runs list` shows the runs; a later run that completed their steps supersedes them",
                    )
                    .into(),
                });
            }
        },
    };
    let Some(detail) = store.run(&id).map_err(super::runs::store_error)? else {
        return Err(super::runs::unknown_run(&**store, &id));
    };
    // a run still going (its process is live: dead ones were marked interrupted) is waited
    // for when its steps are claimed, and read again then
    // complete: succeeded with no blocking check that blocks; every other step runs again (a
    // committed write is not applied twice, and its checks are evaluated again)
    let done = detail.complete_steps();
    let unfinished = detail.steps.len() - done.len();
    if detail.run.status == "succeeded" && unfinished == 0 {
        return Err(Outcome {
            code: 0,
            diagnostics: Diagnostic::warning(Code::UnknownRun, format!("run {id} succeeded: nothing to resume"))
                .with_help("`phlo run` starts a new run")
                .into(),
        });
    }
    let at = detail
        .run
        .evaluated_at
        .as_deref()
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.to_utc());
    // a run several processes shared (one per step, as an external orchestrator runs them) was
    // started with several selections: the resume covers every asset any of them recorded
    let recorded: BTreeSet<&str> = detail.steps.iter().map(|s| s.asset_key.as_str()).collect();
    let selection = match &detail.run.selection {
        Some(sel) if !recorded.is_empty() => {
            Some(format!("({sel}) or {}", recorded.into_iter().collect::<Vec<_>>().join(" or ")))
        }
        other => other.clone(),
    };
    Ok(Some(Resume {
        run_id: id,
        selection,
        partitions: detail.run.partitions.as_deref().map(PartitionRequest::from_arg),
        at,
        tags: detail.run.tags,
        done,
    }))
}

/// The newest run that failed, was cancelled or was interrupted and whose failure no later
/// run superseded — a later run supersedes it when it completed every step the earlier one
/// left unfinished.
fn latest_unresolved(store: &dyn RunStore) -> Result<Option<String>, Outcome> {
    let runs = store.runs(None, 1000).map_err(super::runs::store_error)?;
    let unresolved = |s: &str| matches!(s, "failed" | "interrupted" | "cancelled");
    if !runs.iter().any(|r| unresolved(&r.status)) {
        return Ok(None);
    }
    // steps completed by runs newer than the one looked at
    let mut completed_later: BTreeSet<(String, Option<String>)> = BTreeSet::new();
    for r in runs {
        if r.status == "running" {
            continue;
        }
        let Some(detail) = store.run(&r.run_id).map_err(super::runs::store_error)? else { continue };
        let complete = detail.complete_steps();
        if unresolved(&r.status) {
            let left: Vec<_> = detail
                .steps
                .iter()
                .map(|s| (s.asset_key.clone(), s.partition.clone()))
                .filter(|k| !complete.contains(k))
                .collect();
            // steps it never recorded (cancelled or killed before they started) are unknown here
            let never_started = (detail.steps.len() as u64) < detail.run.steps;
            if never_started || left.is_empty() || left.iter().any(|k| !completed_later.contains(k)) {
                return Ok(Some(r.run_id));
            }
        }
        completed_later.extend(complete);
    }
    Ok(None)
}

fn parse_run_id(s: &str) -> Result<String, String> {
    if !s.is_empty() && s.len() <= 128 && s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')) {
        Ok(s.to_string())
    } else {
        Err(format!("`{s}` is not a run id (1 to 128 of A-Z, a-z, 0-9, `-`, `_`, `.`)"))
    }
}

/// The progress bar, when one is drawn: log lines are printed around it.
pub(crate) static PROGRESS: OnceLock<ProgressBar> = OnceLock::new();

fn partitions(args: &Args) -> Result<Option<PartitionRequest>, Outcome> {
    if let Some(k) = &args.partition {
        return Ok(Some(PartitionRequest::Key(k.clone())));
    }
    match args.partition_range.as_deref().map(|r| r.split_once("..")) {
        None => Ok(None),
        Some(Some((a, b))) if !a.is_empty() && !b.is_empty() => Ok(Some(PartitionRequest::Range(a.into(), b.into()))),
        Some(_) => Err(Outcome::from_diagnostics(
            Diagnostic::error(
                Code::InvalidPartitions,
                "--partition-range takes FIRST..LAST, e.g. 2024-01-01..2024-01-31",
            )
            .into(),
        )),
    }
}

/// The project's orchestrator adapter (`executor.adapter`, else `local`).
pub(crate) fn adapter_of(project: &phlo_core::project::Project) -> Result<Arc<dyn DynAdapter>, Outcome> {
    let name = project.config.executor.adapter.as_ref().map_or("local", |a| a.value.as_str());
    match project.registry.get_or_create(PluginKind::OrchestratorAdapter, name) {
        Ok(Instance::Adapter(a)) if a.renders() => Err(Outcome::from_diagnostics(
            Diagnostic::error(
                Code::UnknownPlugin,
                format!(
                    "orchestrator adapter `{name}` renders definitions for another engine; it does not run them here"
                ),
            )
            .with_help(format!("`phlo export {name} --out DIR` writes them; or set `executor.adapter: local`"))
            .into(),
        )),
        Ok(Instance::Adapter(a)) => Ok(a),
        _ => Err(Outcome::from_diagnostics(
            Diagnostic::error(Code::UnknownPlugin, format!("orchestrator adapter `{name}` is not available"))
                .with_help("build with the `adapter-local` feature (on by default), or set `executor.adapter`")
                .into(),
        )),
    }
}

/// The tokio runtime runs belong to (the binary owns it, per ARCHITECTURE §1).
pub(crate) fn runtime() -> Result<tokio::runtime::Runtime, Outcome> {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().map_err(|e| Outcome {
        code: 1,
        diagnostics: Diagnostic::error(Code::Internal, format!("cannot start the runtime: {e}")).into(),
    })
}

pub(crate) fn run<W: Write>(dir: &Path, args: &Args, out: &mut W) -> io::Result<Outcome> {
    let mut tags: BTreeMap<String, String> = args.tags.iter().cloned().collect();
    let project = match load(dir, true, tags.clone()) {
        Ok(p) => p,
        Err(o) => return Ok(o),
    };
    if project.diagnostics.has_errors() {
        return Ok(Outcome::from_diagnostics(project.diagnostics));
    }
    let store = match project.run_store() {
        Ok(s) => s,
        Err(d) => return Ok(Outcome::from_diagnostics(d)),
    };
    // a resume reads the stored run once the runs that died are marked interrupted
    if (args.resume.is_some() || args.from_failure)
        && let Some(store) = &store
        && let Err(o) = interrupt_dead(dir, store.as_ref())
    {
        return Ok(o);
    }
    let resume = match resume_of(store.as_ref(), args) {
        Ok(r) => r,
        Err(o) => return Ok(o),
    };
    if let Some(r) = &resume {
        for (k, v) in &r.tags {
            tags.entry(k.clone()).or_insert_with(|| v.clone());
        }
        eprintln!("resuming run {}: {} step(s) completed earlier stay as they are", r.run_id, r.done.len());
    }
    let adapter = match adapter_of(&project) {
        Ok(a) => a,
        Err(o) => return Ok(o),
    };
    let partitions = match partitions(args) {
        Ok(p) => p,
        Err(o) => return Ok(o),
    };
    let options = match resume {
        Some(r) => RunOptions {
            select: r.selection,
            partitions: r.partitions,
            concurrency: args.concurrency.map(|c| c as usize),
            tags,
            seed: args.seed,
            at: r.at,
            run_id: Some(r.run_id),
            attempt: args.attempt,
            done: r.done,
            skip_unchanged: args.skip_unchanged,
        },
        None => RunOptions {
            select: args.select.clone(),
            partitions,
            concurrency: args.concurrency.map(|c| c as usize),
            tags,
            seed: args.seed,
            at: args.at,
            run_id: args.run_id.clone(),
            attempt: args.attempt,
            done: BTreeSet::new(),
            skip_unchanged: args.skip_unchanged,
        },
    };
    let resuming = args.resume.is_some() || args.from_failure;
    let mut request = match project.prepare_run(&options) {
        Ok(r) => r,
        Err(d) => return Ok(Outcome::from_diagnostics(d)),
    };
    let warnings = project.diagnostics;
    // the run's steps are its own while it runs: a live run holding one of them is waited
    // for. A resume claims every step of the run, then reads again which are complete: a
    // resume of the same run that went first has finished them by then
    let mut claimed = request.steps();
    if resuming {
        claimed.extend(request.done.iter().cloned());
    }
    let _claim = match super::claims::claim(dir, &request.run_id, &claimed, args.no_wait) {
        Ok(c) => c,
        Err(o) => return Ok(o),
    };
    if let Some(store) = &store
        && let Err(o) = interrupt_dead(dir, store.as_ref())
    {
        return Ok(o);
    }
    if resuming {
        let again = Args { resume: Some(request.run_id.clone()), from_failure: false, ..args.clone() };
        match resume_of(store.as_ref(), &again) {
            Ok(Some(r)) => request.done = Arc::new(r.done),
            Ok(None) => {}
            Err(o) => return Ok(o),
        }
    }
    let runtime = match runtime() {
        Ok(r) => r,
        Err(o) => return Ok(o),
    };
    let show_progress = !args.json && io::stderr().is_terminal();
    let report = runtime.block_on(async move {
        let cancel = request.cancel.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                cancel.cancel();
                if let Some(p) = PROGRESS.get() {
                    p.println("cancelling: running assets are asked to stop (Ctrl-C again to abort)");
                } else {
                    eprintln!("cancelling: running assets are asked to stop (Ctrl-C again to abort)");
                }
                if tokio::signal::ctrl_c().await.is_ok() {
                    std::process::exit(130);
                }
            }
        });
        let total = request.selected.len() as u64;
        let progress = show_progress.then(|| spawn_progress(&request.bus, total));
        let report = adapter.execute(request).await;
        if let Some(p) = progress {
            p.abort();
        }
        if let Some(p) = PROGRESS.get() {
            p.finish_and_clear();
        }
        report
    });
    // work abandoned after its timeout (a hung request, a statement that ignored the stop)
    // must not hold the process after the run ended and reported it
    runtime.shutdown_background();
    if args.json {
        write_json(out, &report)?;
    } else {
        write_summary(out, &report)?;
    }
    let code = match report.status {
        RunStatus::Cancelled => 130,
        _ if report.has_failures() => 4,
        RunStatus::Failed => 4,
        RunStatus::Succeeded => 0,
    };
    let mut diags = Diagnostics::new();
    diags.extend(warnings);
    Ok(Outcome { code, diagnostics: diags })
}

/// Marks the runs the store calls running whose process is gone (no live claim) as
/// interrupted, and says so.
pub(crate) fn interrupt_dead(dir: &Path, store: &dyn RunStore) -> Result<(), Outcome> {
    let live = super::claims::live_runs(dir)?;
    match store.interrupt_stale(&|id| live.contains(id)) {
        Ok(ids) => {
            super::runs::say_interrupted(&ids);
            Ok(())
        }
        Err(e) => Err(super::runs::store_error(e)),
    }
}

fn spawn_progress(bus: &Arc<phlo_core::hooks::HookBus>, total: u64) -> tokio::task::JoinHandle<()> {
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template("{spinner} [{bar:30}] {pos}/{len} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.enable_steady_tick(Duration::from_millis(120));
    let _ = PROGRESS.set(bar.clone());
    let mut observer = bus.subscribe();
    let running: Arc<Mutex<BTreeSet<String>>> = Arc::default();
    tokio::spawn(async move {
        let (mut failed, mut skipped) = (0u64, 0u64);
        while let Some(o) = observer.recv().await {
            let Observed::Event(e) = o else { continue };
            let key = e.correlation.asset_key.as_deref().unwrap_or("").to_string();
            let mut r = running.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            match e.event_type {
                EventType::IngestionStart | EventType::TransformStart | EventType::PublishStart => {
                    r.insert(key);
                }
                EventType::IngestionEnd | EventType::TransformEnd | EventType::PublishEnd => {
                    r.remove(&key);
                    let failed_now = matches!(
                        &e.payload,
                        phlo_core::hooks::EventPayload::IngestionEnd(a)
                            | phlo_core::hooks::EventPayload::TransformEnd(a)
                            | phlo_core::hooks::EventPayload::PublishEnd(a)
                            if a.status != Some(phlo_core::hooks::Status::Succeeded)
                    );
                    failed += u64::from(failed_now);
                    bar.inc(1);
                }
                EventType::AssetSkipped => {
                    skipped += 1;
                    bar.inc(1);
                }
                _ => {}
            }
            let current: Vec<&str> = r.iter().take(3).map(String::as_str).collect();
            bar.set_message(format!(
                "running {} [{}]{}{}",
                r.len(),
                current.join(", "),
                if failed > 0 { format!(" · {failed} failed") } else { String::new() },
                if skipped > 0 { format!(" · {skipped} skipped") } else { String::new() },
            ));
        }
    })
}

fn write_summary<W: Write>(out: &mut W, report: &RunReport) -> io::Result<()> {
    let mut t = Table::new(vec!["ASSET", "PARTITION", "STATUS", "ATTEMPTS", "DURATION", "NOTE"]);
    let mut rows: Vec<_> = report.assets.iter().collect();
    rows.sort_by(|a, b| (&a.key, &a.partition).cmp(&(&b.key, &b.partition)));
    for a in rows {
        let note = match (&a.error, a.metadata.get("row_count")) {
            (Some(e), _) => match a.code {
                Some(code) => format!("[{code}] {e}"),
                None => e.clone(),
            },
            (None, Some(rows)) => format!("{rows} rows"),
            (None, None) => String::new(),
        };
        t.row(vec![
            a.key.clone(),
            a.partition.clone().unwrap_or_else(|| String::from("-")),
            serde_json::to_value(a.status).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default(),
            a.attempts.to_string(),
            format!("{} ms", a.duration_ms),
            note,
        ]);
    }
    t.write(out)?;
    if !report.checks.is_empty() {
        writeln!(out)?;
        let mut c = Table::new(vec!["CHECK", "ASSET", "RESULT", "SEVERITY", "BLOCKING", "FOUND"]);
        for r in &report.checks {
            c.row(vec![
                r.name.clone(),
                r.asset.clone(),
                r.outcome.clone(),
                format!("{:?}", r.severity).to_lowercase(),
                r.blocking.to_string(),
                found(r),
            ]);
        }
        c.write(out)?;
        // what the failing checks found, row by row
        for r in report.checks.iter().filter(|r| !r.passed) {
            match &r.error {
                Some(e) => writeln!(out, "\n{} on {} could not run: {e}", r.name, r.asset)?,
                None if !r.samples.is_empty() => {
                    writeln!(out, "\n{} on {}: {} of {} rows, e.g.", r.name, r.asset, r.violations, r.total)?;
                    for s in &r.samples {
                        writeln!(out, "  {s}")?;
                    }
                }
                None => {}
            }
        }
    }
    let count = |s: AssetStatus| report.assets.iter().filter(|a| a.status == s).count();
    let failed_checks = report.checks.iter().filter(|c| !c.passed).count();
    let blocking = report.checks.iter().filter(|c| c.blocks()).count();
    writeln!(
        out,
        "\nrun {} {} in {} ms: {} succeeded, {} failed, {} skipped{}",
        report.run_id,
        match report.status {
            RunStatus::Succeeded => "succeeded",
            RunStatus::Failed => "failed",
            RunStatus::Cancelled => "was cancelled",
        },
        report.duration_ms,
        count(AssetStatus::Succeeded),
        count(AssetStatus::Failed),
        count(AssetStatus::Skipped),
        match count(AssetStatus::Cancelled) {
            0 => String::new(),
            n => format!(", {n} cancelled"),
        } + &match count(AssetStatus::SkippedUnchanged) {
            0 => String::new(),
            n => format!(", {n} unchanged (not run: --skip-unchanged)"),
        } + &match (failed_checks, blocking) {
            (0, _) => String::new(),
            (n, 0) => format!("; {n} check(s) failed, none blocking"),
            (n, b) => format!("; {n} check(s) failed, {b} of them blocking"),
        }
    )
}

/// What a check found, in words: violating rows of the rows examined, or for a row count the
/// count and its bounds.
fn found(r: &phlo_core::execution::CheckRow) -> String {
    if r.error.is_some() {
        return String::from("-");
    }
    match r.metadata.get("row_count") {
        Some(n) => {
            let bound = |k: &str| r.metadata.get(k).map(ToString::to_string);
            match (bound("min"), bound("max")) {
                (Some(a), Some(b)) => format!("{n} rows (allowed {a}..{b})"),
                (Some(a), None) => format!("{n} rows (min {a})"),
                (None, Some(b)) => format!("{n} rows (max {b})"),
                (None, None) => format!("{n} rows"),
            }
        }
        None => format!("{}/{} rows", r.violations, r.total),
    }
}
