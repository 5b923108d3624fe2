//! The `phlo` command line: clap parses, one module per verb renders. No logic a library
//! user would need lives here.

mod assets;
mod capabilities;
mod claims;
mod export;
mod hooks;
mod plugins;
mod render;
mod run;
mod runs;
mod scaffold;
mod schedule;
mod schema;
mod status;
mod validate;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use phlo_core::diagnostic::{Code, Diagnostic, Diagnostics};
use phlo_core::project::{LoadOptions, Project};

/// phlo — a plugin core for data pipelines.
#[derive(Debug, Parser)]
#[command(name = "phlo", version, about, long_about = None)]
pub struct Cli {
    /// Project directory (holding phlo.yaml or phlo.toml); the current directory by default.
    #[arg(long, global = true, value_name = "DIR")]
    project: Option<PathBuf>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Materialize assets: the whole graph, a selection, a partition or a range of them.
    Run(run::Args),
    /// Inspect compiled plugins.
    #[command(subcommand)]
    Plugins(PluginsCommand),
    /// Write a new plugin crate into this workspace.
    #[command(subcommand)]
    Plugin(PluginCommand),
    /// Inspect the project's assets, their graph and their history (`phlo asset …` works too).
    #[command(subcommand, alias = "asset")]
    Assets(AssetsCommand),
    /// Inspect the hook bus.
    #[command(subcommand)]
    Hooks(HooksCommand),
    /// Inspect the project's schedules.
    #[command(subcommand)]
    Schedule(ScheduleCommand),
    /// Show how every capability requirement resolves, and why.
    Capabilities(capabilities::Args),
    /// Check the project file, plugins and capability resolution; report every problem.
    Validate(validate::Args),
    /// Write definitions for an external engine with a rendering adapter (`phlo export dagster --out DIR`).
    Export(export::Args),
    /// The run history: past runs, their steps, check results and events.
    #[command(subcommand)]
    Runs(RunsCommand),
    /// Print the JSON Schema of phlo.yaml, including every compiled plugin's config.
    Schema(schema::Args),
    /// Each asset fresh, or stale with the reason: never materialized, code changed, an
    /// upstream changed, its source changed, a check failed.
    Status(status::Args),
}

#[derive(Debug, Subcommand)]
enum AssetsCommand {
    /// List assets: key, kind, group, deps, partitions, provider.
    List(assets::ListArgs),
    /// Print the asset graph as Mermaid, DOT or JSON.
    Graph(assets::GraphArgs),
    /// List an asset's partitions at now (or `--at`), with their windows in local time and UTC.
    Partitions(assets::PartitionsArgs),
    /// An asset's materializations across runs, newest first: status, rows, duration, error.
    History(runs::HistoryArgs),
}

#[derive(Debug, Subcommand)]
enum RunsCommand {
    /// List runs, newest first: id, status, start, duration, steps.
    List(runs::ListArgs),
    /// One run: its steps with their errors and durations, its check results.
    Show(runs::ShowArgs),
    /// Every event of one run, as the hooks saw them (JSON lines).
    Events(runs::EventsArgs),
    /// The whole output of a run's `command` steps (`.phlo/logs/RUN/STEP.log`): one step's,
    /// or every step's one after the other.
    Logs(runs::LogsArgs),
    /// Delete old runs: beyond the newest N (`--keep`), or older than an age (`--older-than 30d`).
    Prune(runs::PruneArgs),
}

#[derive(Debug, Subcommand)]
enum ScheduleCommand {
    /// List schedules with their next fire times.
    List(schedule::ListArgs),
    /// Start runs on time, in the foreground (or once, now, with --once).
    Run(schedule::RunArgs),
}

#[derive(Debug, Subcommand)]
enum HooksCommand {
    /// The effective hook table: for each event type, its handlers in run order.
    List(hooks::ListArgs),
}

#[derive(Debug, Subcommand)]
enum PluginCommand {
    /// Scaffold a plugin crate (resource, asset type, check kind or hook) and wire its
    /// cargo feature and link line into the facade.
    New(scaffold::NewArgs),
}

#[derive(Debug, Subcommand)]
enum PluginsCommand {
    /// List compiled plugins with what they provide and whether they are ready.
    List(plugins::ListArgs),
    /// Show everything about one plugin.
    Info(plugins::InfoArgs),
}

/// What a verb hands back: the exit code and the diagnostics to print on stderr.
pub(crate) struct Outcome {
    code: u8,
    diagnostics: Diagnostics,
}

impl Outcome {
    fn ok() -> Self {
        Self { code: 0, diagnostics: Diagnostics::new() }
    }

    fn from_diagnostics(diagnostics: Diagnostics) -> Self {
        Self { code: u8::try_from(diagnostics.exit_code()).unwrap_or(1), diagnostics }
    }
}

/// Runs the command line and returns the process exit code (ARCHITECTURE §9).
pub fn main() -> ExitCode {
    // most commands live for milliseconds: zeroing a 2 MB transparent huge page for each of
    // the few kilobytes an allocator arena holds would be much of their cost
    #[cfg(target_os = "linux")]
    let _ = nix::sys::prctl::set_thp_disable(true);
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    init_tracing();
    let outcome = std::panic::catch_unwind(|| run(&cli)).unwrap_or_else(|payload| {
        let msg = phlo_core::plugin::panic_message(payload.as_ref());
        Outcome {
            code: 1,
            diagnostics: Diagnostic::error(Code::Internal, format!("internal error: {msg}"))
                .with_help("this is a bug in phlo; please report it with the command you ran")
                .into(),
        }
    });
    let mut stderr = std::io::stderr().lock();
    let _ = render::write_diagnostics(&mut stderr, &outcome.diagnostics);
    let _ = stderr.flush();
    ExitCode::from(outcome.code)
}

/// Log lines (the `console` hook's among them) go to stderr; `PHLO_LOG` sets the level
/// (`error`, `warn`, `info` — the default —, `debug`, `trace`, `off`).
fn init_tracing() {
    use std::io::IsTerminal;
    use tracing_subscriber::filter::LevelFilter;
    let level = match std::env::var("PHLO_LOG").unwrap_or_default().to_ascii_lowercase().as_str() {
        "off" => LevelFilter::OFF,
        "error" => LevelFilter::ERROR,
        "warn" | "warning" => LevelFilter::WARN,
        "debug" => LevelFilter::DEBUG,
        "trace" => LevelFilter::TRACE,
        _ => LevelFilter::INFO,
    };
    let _ = tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(|| LineWriter(Vec::new()))
        .with_ansi(std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none())
        .without_time()
        .with_target(false)
        .with_level(false)
        .try_init();
}

/// Buffers one log line and prints it on stderr, around the progress bar when one is drawn.
struct LineWriter(Vec<u8>);

impl Write for LineWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for LineWriter {
    fn drop(&mut self) {
        let write = || {
            let _ = std::io::stderr().lock().write_all(&self.0);
        };
        match run::PROGRESS.get() {
            Some(bar) => bar.suspend(write),
            None => write(),
        }
    }
}

fn run(cli: &Cli) -> Outcome {
    let dir = cli.project.clone().unwrap_or_else(|| PathBuf::from("."));
    let mut out = std::io::stdout().lock();
    let result = match &cli.command {
        Command::Run(a) => run::run(&dir, a, &mut out),
        Command::Plugins(PluginsCommand::List(a)) => plugins::list(&dir, a, &mut out),
        Command::Plugins(PluginsCommand::Info(a)) => plugins::info(&dir, a, &mut out),
        Command::Plugin(PluginCommand::New(a)) => scaffold::new(a, &mut out),
        Command::Assets(AssetsCommand::List(a)) => assets::list(&dir, a, &mut out),
        Command::Assets(AssetsCommand::Graph(a)) => assets::graph(&dir, a, &mut out),
        Command::Assets(AssetsCommand::Partitions(a)) => assets::partitions(&dir, a, &mut out),
        Command::Assets(AssetsCommand::History(a)) => runs::history(&dir, a, &mut out),
        Command::Hooks(HooksCommand::List(a)) => hooks::list(&dir, a, &mut out),
        Command::Schedule(ScheduleCommand::List(a)) => schedule::list(&dir, a, &mut out),
        Command::Schedule(ScheduleCommand::Run(a)) => schedule::run(&dir, a, &mut out),
        Command::Capabilities(a) => capabilities::run(&dir, a, &mut out),
        Command::Validate(a) => validate::run(&dir, a, &mut out),
        Command::Export(a) => export::run(&dir, a, &mut out),
        Command::Runs(RunsCommand::List(a)) => runs::list(&dir, a, &mut out),
        Command::Runs(RunsCommand::Show(a)) => runs::show(&dir, a, &mut out),
        Command::Runs(RunsCommand::Events(a)) => runs::events(&dir, a, &mut out),
        Command::Runs(RunsCommand::Logs(a)) => runs::logs(&dir, a, &mut out),
        Command::Runs(RunsCommand::Prune(a)) => runs::prune(&dir, a, &mut out),
        Command::Schema(a) => schema::run(&dir, a, &mut out),
        Command::Status(a) => status::run(&dir, a, &mut out),
    };
    let _ = out.flush();
    result.unwrap_or_else(|e| match e.kind() {
        // the reader went away (`phlo … | head`): nothing left to say
        std::io::ErrorKind::BrokenPipe => Outcome::ok(),
        _ => Outcome {
            code: 1,
            diagnostics: Diagnostic::error(Code::Internal, format!("cannot write output: {e}")).into(),
        },
    })
}

/// Loads the project for a verb. `require_file`: whether a missing project file is an error.
pub(crate) fn load(dir: &Path, require_file: bool, run_tags: BTreeMap<String, String>) -> Result<Project, Outcome> {
    let options = LoadOptions { require_file, run_tags, ..crate::load_options() };
    Project::load(dir, &options).map_err(Outcome::from_diagnostics)
}

/// Parses `k=v` for `--tag`.
fn parse_tag(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("`{s}` is not KEY=VALUE (e.g. phlo/capability/table_store=sqlite)")),
    }
}

/// `--at`: an instant, RFC 3339 or a date-time read as UTC.
fn parse_at(s: &str) -> Result<chrono::DateTime<chrono::Utc>, String> {
    phlo_core::spec::localtime::parse_instant(s, chrono_tz::Tz::UTC)
}

fn write_json<W: Write>(out: &mut W, value: &impl serde::Serialize) -> std::io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, value)?;
    writeln!(out)
}
