//! The `sqlite_runs` resource provider: the project's run store (`run_store:sqlite_runs`) in
//! a SQLite file, `.phlo/runs.db` by default. WAL mode; a typed schema with numbered
//! migrations (`PRAGMA user_version`) and phlo's application id, so that a foreign or newer
//! file is refused instead of being written to — never recreated silently.
//!
//! ```yaml
//! resources:
//!   sqlite_runs:
//!     path: .phlo/runs.db   # relative to the project; the default
//! ```
//!
//! Events are prepared by the thread that emits them (serialised, their rows extracted) and
//! written in transactions: at once for a run's start and end, and for a step's start, end or
//! skip within [`COMMIT_WITHIN`] (20 ms), together with whatever came in that time (group
//! commit: a run of 100,000 short steps would otherwise write its pages 200,000 times). A
//! batch writes the event log as one row per run, and each step once, in its latest state. A process killed at any point leaves the store consistent: every
//! step recorded as finished is finished, a step recorded as running is marked interrupted,
//! and at most the last 20 ms of events are missing (their steps run again on resume).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use phlo_core::execution::{RunStore, StoreError};
use phlo_core::hooks::{Event, EventPayload, Status, StepVersions};
use phlo_core::plugin::{Plugin, PluginContext, PluginError, Resource};
use rusqlite::{Connection, params};
use schemars::JsonSchema;
use serde::Deserialize;

/// `resources.sqlite_runs` in phlo.yaml.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct RunsConfig {
    /// The run store's file, relative to the project (created with its directories).
    pub path: String,
}

impl Default for RunsConfig {
    fn default() -> Self {
        Self { path: String::from(".phlo/runs.db") }
    }
}

/// `PRAGMA application_id` of a phlo run store ("phlo").
pub const APPLICATION_ID: i64 = 0x7068_6C6F;

/// The migrations, in order: migration `i` brings the schema to version `i + 1`.
const MIGRATIONS: &[&str] = &[
    "
CREATE TABLE runs (
    run_id      TEXT PRIMARY KEY,
    status      TEXT NOT NULL,
    selection   TEXT,
    partitions  TEXT,
    evaluated_at TEXT,
    tags        TEXT NOT NULL DEFAULT '{}',
    steps       INTEGER NOT NULL DEFAULT 0,
    started_by  TEXT NOT NULL DEFAULT '',
    pid         INTEGER NOT NULL DEFAULT 0,
    started_at  TEXT NOT NULL,
    ended_at    TEXT,
    duration_ms INTEGER,
    summary     TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX runs_by_start ON runs (started_at);
CREATE TABLE steps (
    run_id      TEXT NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
    asset_key   TEXT NOT NULL,
    partition   TEXT NOT NULL DEFAULT '',
    status      TEXT NOT NULL,
    attempts    INTEGER NOT NULL DEFAULT 0,
    started_at  TEXT,
    duration_ms INTEGER,
    error       TEXT,
    metadata    TEXT NOT NULL DEFAULT '{}',
    PRIMARY KEY (run_id, asset_key, partition)
);
CREATE INDEX steps_by_asset ON steps (asset_key);
CREATE TABLE checks (
    run_id      TEXT NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
    asset_key   TEXT NOT NULL,
    partition   TEXT NOT NULL DEFAULT '',
    name        TEXT NOT NULL,
    passed      INTEGER NOT NULL,
    result      TEXT NOT NULL
);
CREATE INDEX checks_by_run ON checks (run_id);
CREATE TABLE events (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id      TEXT,
    count       INTEGER NOT NULL,
    body        TEXT NOT NULL
);
CREATE INDEX events_by_run ON events (run_id, seq);
",
    "
ALTER TABLE steps ADD COLUMN code_version TEXT;
ALTER TABLE steps ADD COLUMN data_version TEXT;
ALTER TABLE steps ADD COLUMN source_version TEXT;
ALTER TABLE steps ADD COLUMN inputs TEXT;
CREATE INDEX checks_by_step ON checks (run_id, asset_key, partition);
CREATE TABLE materializations (
    asset_key     TEXT NOT NULL,
    partition     TEXT NOT NULL DEFAULT '',
    run_id        TEXT NOT NULL,
    at            TEXT NOT NULL,
    code_version  TEXT,
    data_version  TEXT,
    source_version TEXT,
    inputs        TEXT NOT NULL DEFAULT '{}',
    failed_checks TEXT NOT NULL DEFAULT '[]',
    PRIMARY KEY (asset_key, partition)
) WITHOUT ROWID;
",
];

/// The schema version this build writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// The run store.
pub struct RunHistory {
    path: PathBuf,
    shared: Arc<Shared>,
}

/// How long a step boundary may wait to be committed with the ones after it (group commit):
/// a run of many short steps commits once per this interval instead of once per step.
pub const COMMIT_WITHIN: Duration = Duration::from_millis(20);

/// What the recording threads and the writer share.
pub(crate) struct Shared {
    /// Opened on first use (loading or validating a project writes nothing); held while a
    /// batch is written.
    conn: Mutex<Option<Connection>>,
    /// Events not yet written, already prepared.
    pending: Mutex<Pending>,
    /// Wakes the writer.
    wake: Condvar,
}

pub(crate) struct Pending {
    events: Vec<Prepared>,
    /// When the oldest boundary event waiting arrived.
    waiting_since: Option<Instant>,
    /// Whether the writer thread is running.
    flusher: bool,
    /// The writer's last failure, reported by the next event recorded.
    error: Option<StoreError>,
}

impl std::fmt::Debug for RunHistory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunHistory").field("path", &self.path).finish_non_exhaustive()
    }
}

impl Plugin for RunHistory {
    const NAME: &'static str = "sqlite_runs";
    const DESCRIPTION: &'static str = "The run store: every run, step, check result and event in a SQLite file";
    type Config = RunsConfig;
    const TAGS: &'static [&'static str] = &["runs", "history", "sqlite"];
}

impl Resource for RunHistory {
    fn create(config: RunsConfig, ctx: &PluginContext) -> Result<Self, PluginError> {
        if config.path.trim().is_empty() {
            return Err(PluginError::with_help(
                "`resources.sqlite_runs.path` is empty",
                "give a file path, e.g. `.phlo/runs.db`",
            ));
        }
        Ok(RunHistory::new(ctx.project_path("path", &config.path)?))
    }

    fn probe(&self) -> Result<(), PluginError> {
        self.with_conn(|_| Ok(())).map_err(|e| PluginError::msg(e.to_string()))
    }
}

phlo_core::register!(resource RunHistory, provides: [dyn RunStore]);

fn failed(path: &Path, e: &rusqlite::Error) -> StoreError {
    let text = e.to_string();
    if matches!(e.sqlite_error_code(), Some(rusqlite::ErrorCode::NotADatabase | rusqlite::ErrorCode::DatabaseCorrupt)) {
        return StoreError::with_help(
            format!("the run store `{}` is damaged or not a database: {text}", path.display()),
            "phlo never recreates it on its own: move the file aside (runs are then recorded in a new one) or restore a copy",
        );
    }
    StoreError::with_help(
        format!("the run store `{}`: {text}", path.display()),
        "check that `.phlo/` is writable and that no other program holds the file",
    )
}

impl RunHistory {
    /// A run store in `path` (opened on first use).
    pub fn new(path: PathBuf) -> Self {
        let pending = Pending { events: Vec::new(), waiting_since: None, flusher: false, error: None };
        Self {
            path,
            shared: Arc::new(Shared { conn: Mutex::new(None), pending: Mutex::new(pending), wake: Condvar::new() }),
        }
    }

    fn with_conn<T>(&self, f: impl FnOnce(&mut Connection) -> Result<T, StoreError>) -> Result<T, StoreError> {
        // what this process recorded is read back
        flush(&self.path, &self.shared)?;
        let mut conn = self.shared.conn.lock().unwrap_or_else(PoisonError::into_inner);
        if conn.is_none() {
            *conn = Some(open(&self.path)?);
        }
        f(conn.as_mut().expect("opened above"))
    }

    /// Starts the thread that commits waiting boundaries — once [`COMMIT_WITHIN`] has passed
    /// since the oldest, or when many are waiting — off the run's threads; it ends with the
    /// store. A failure is reported by the next event recorded.
    fn start_flusher(&self, pending: &mut Pending) {
        if pending.flusher {
            return;
        }
        pending.flusher = true;
        let weak = Arc::downgrade(&self.shared);
        let path = self.path.clone();
        let spawned = std::thread::Builder::new().name("phlo-run-store".into()).spawn(move || {
            loop {
                let Some(shared) = weak.upgrade() else { return };
                let due = {
                    let p = shared.pending.lock().unwrap_or_else(PoisonError::into_inner);
                    let (p, _) = shared.wake.wait_timeout(p, COMMIT_WITHIN / 2).unwrap_or_else(PoisonError::into_inner);
                    p.events.len() >= BATCH || p.waiting_since.is_some_and(|t| t.elapsed() >= COMMIT_WITHIN)
                };
                if due && let Err(e) = flush(&path, &shared) {
                    shared.pending.lock().unwrap_or_else(PoisonError::into_inner).error = Some(e);
                }
            }
        });
        if spawned.is_err() {
            pending.flusher = false;
        }
    }
}

impl Drop for RunHistory {
    fn drop(&mut self) {
        // what is still waiting is written (an error has no one left to hear it)
        let _ = flush(&self.path, &self.shared);
    }
}

/// Events waiting for the writer beyond this many are committed by the thread that records
/// the next one (the writer is behind); at a quarter of it the writer is woken at once.
pub(crate) const BACKLOG: usize = 4 * BATCH;

/// The writer is woken when this many events wait.
pub(crate) const BATCH: usize = 4096;

/// Writes the waiting events in one transaction. The connection is held from taking the
/// batch to committing it, so batches are written in the order they were recorded.
pub(crate) fn flush(path: &Path, shared: &Shared) -> Result<(), StoreError> {
    let mut conn = shared.conn.lock().unwrap_or_else(PoisonError::into_inner);
    let batch = {
        let mut p = shared.pending.lock().unwrap_or_else(PoisonError::into_inner);
        p.waiting_since = None;
        std::mem::take(&mut p.events)
    };
    if batch.is_empty() {
        return Ok(());
    }
    if conn.is_none() {
        *conn = Some(open(path)?);
    }
    let conn = conn.as_mut().expect("opened above");
    // the write lock at once: a busy store (another run) is waited for, never half-written
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(|e| failed(path, &e))?;
    write(&tx, &batch).map_err(|err| failed(path, &err))?;
    tx.commit().map_err(|e| failed(path, &e))
}

fn open(path: &Path) -> Result<Connection, StoreError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| {
            StoreError::with_help(
                format!("cannot create `{}` for the run store: {e}", dir.display()),
                "make the project directory writable, or set `resources.sqlite_runs.path`",
            )
        })?;
    }
    let conn = Connection::open(path).map_err(|e| failed(path, &e))?;
    conn.busy_timeout(Duration::from_secs(10)).map_err(|e| failed(path, &e))?;
    let read = |pragma: &str| conn.query_row(&format!("PRAGMA {pragma}"), [], |r| r.get::<_, i64>(0));
    let app = read("application_id").map_err(|e| failed(path, &e))?;
    let version = read("user_version").map_err(|e| failed(path, &e))?;
    let tables: i64 = conn
        .query_row("SELECT count(*) FROM sqlite_master WHERE type = 'table'", [], |r| r.get(0))
        .map_err(|e| failed(path, &e))?;
    if app != APPLICATION_ID && (app != 0 || tables > 0) {
        return Err(StoreError::with_help(
            format!("`{}` is not a phlo run store (another program's database)", path.display()),
            "point `resources.sqlite_runs.path` at another file; phlo does not write into it",
        ));
    }
    if version > SCHEMA_VERSION {
        return Err(StoreError::with_help(
            format!(
                "the run store `{}` has schema version {version}, written by a newer phlo; this phlo reads up to version {SCHEMA_VERSION}",
                path.display()
            ),
            "use the newer phlo, or point `resources.sqlite_runs.path` at another file",
        ));
    }
    conn.pragma_update(None, "journal_mode", "WAL").map_err(|e| failed(path, &e))?;
    // NORMAL in WAL mode: a committed step survives the process being killed; a power loss
    // may lose the last commits but never leaves the file inconsistent
    conn.pragma_update(None, "synchronous", "NORMAL").map_err(|e| failed(path, &e))?;
    conn.pragma_update(None, "foreign_keys", true).map_err(|e| failed(path, &e))?;
    // checkpoint the WAL every ~16 MB instead of every 4 MB: a checkpoint syncs the file, and a
    // large run commits at every step boundary
    conn.pragma_update(None, "wal_autocheckpoint", 4000).map_err(|e| failed(path, &e))?;
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(usize::try_from(version).unwrap_or(0)) {
        let migrate = format!(
            "BEGIN IMMEDIATE; {sql}; PRAGMA application_id = {APPLICATION_ID}; PRAGMA user_version = {}; COMMIT;",
            i + 1
        );
        if let Err(e) = conn.execute_batch(&migrate) {
            let _ = conn.execute_batch("ROLLBACK");
            return Err(failed(path, &e));
        }
    }
    Ok(conn)
}

fn status_word(s: Option<Status>) -> &'static str {
    match s {
        Some(Status::Succeeded) => "succeeded",
        Some(Status::Failed) | None => "failed",
        Some(Status::Cancelled) => "cancelled",
        Some(Status::Skipped) => "skipped",
    }
}

/// An event ready to be written: its JSON line and what it changes, prepared by the thread
/// that emitted it (outside the store's lock).
struct Prepared {
    run: Option<String>,
    line: String,
    change: Option<Change>,
}

/// What one event changes besides the event log.
enum Change {
    RunStart {
        selection: Option<String>,
        partitions: Option<String>,
        evaluated_at: Option<String>,
        tags: String,
        steps: i64,
        at: String,
    },
    RunEnd {
        status: &'static str,
        at: String,
        duration_ms: i64,
    },
    Step {
        key: String,
        partition: String,
        state: StepState,
    },
    Check {
        key: String,
        partition: String,
        name: String,
        passed: bool,
        result: String,
    },
}

/// A step's state after an event (later events of one step in a batch replace earlier ones).
#[derive(Clone)]
struct StepState {
    status: &'static str,
    attempts: u32,
    started_at: Option<String>,
    duration_ms: Option<i64>,
    error: Option<String>,
    metadata: String,
    /// A success's versions, and when it ended.
    versions: Option<(Box<StepVersions>, String)>,
}

fn prepare(e: &Event) -> Prepared {
    let run = e.correlation.run_id.as_deref().map(str::to_string);
    let line = e.to_json_line();
    let key = || e.correlation.asset_key.as_ref().map(|k| k.as_str().to_string()).unwrap_or_default();
    let partition = || e.correlation.partition.clone().unwrap_or_default();
    let at = || e.timestamp.to_rfc3339();
    let step = |state| Some(Change::Step { key: key(), partition: partition(), state });
    let change = match &e.payload {
        _ if run.is_none() => None,
        EventPayload::RunStart(r) => Some(Change::RunStart {
            selection: r.selection.clone(),
            partitions: r.partitions.clone(),
            evaluated_at: r.evaluated_at.map(|t| t.to_rfc3339()),
            tags: serde_json::to_string(&e.tags).unwrap_or_default(),
            steps: (r.assets + r.resumed_done) as i64,
            at: at(),
        }),
        EventPayload::RunEnd(r) => Some(Change::RunEnd {
            status: status_word(r.status),
            at: at(),
            duration_ms: r.duration_ms.map_or(0, |d| d as i64),
        }),
        EventPayload::IngestionStart(_) | EventPayload::TransformStart(_) | EventPayload::PublishStart(_) => {
            step(StepState {
                status: "running",
                attempts: e.correlation.attempt,
                started_at: Some(at()),
                duration_ms: None,
                error: None,
                metadata: String::from("{}"),
                versions: None,
            })
        }
        EventPayload::IngestionEnd(a) | EventPayload::TransformEnd(a) | EventPayload::PublishEnd(a) => {
            step(StepState {
                status: status_word(a.status),
                attempts: e.correlation.attempt,
                started_at: None,
                duration_ms: a.duration_ms.map(|d| d as i64),
                error: a.error.clone(),
                metadata: serde_json::to_string(&a.metrics).unwrap_or_default(),
                versions: a.versions.clone().filter(|_| a.status == Some(Status::Succeeded)).map(|v| (v, at())),
            })
        }
        EventPayload::AssetSkipped { reason, unchanged_since, .. } => step(StepState {
            status: if unchanged_since.is_some() { "skipped_unchanged" } else { "skipped" },
            attempts: 0,
            started_at: None,
            duration_ms: None,
            error: Some(reason.clone()),
            metadata: unchanged_since
                .as_ref()
                .map_or_else(|| String::from("{}"), |r| serde_json::json!({ "unchanged_since": r }).to_string()),
            versions: None,
        }),
        EventPayload::QualityResult(c) => Some(Change::Check {
            key: e.correlation.asset_key.as_ref().map_or_else(|| c.asset.clone(), |k| k.as_str().to_string()),
            partition: partition(),
            name: c.check.clone(),
            passed: matches!(c.outcome, phlo_core::spec::CheckOutcome::Passed),
            result: serde_json::to_string(c).unwrap_or_default(),
        }),
        _ => None,
    };
    Prepared { run, line, change }
}

/// Writes a batch: runs that start first, then the event log (one row per run and batch),
/// steps (each once, in its latest state), checks, and runs that end last (their counts
/// cover the steps just written).
fn write(tx: &rusqlite::Transaction<'_>, batch: &[Prepared]) -> rusqlite::Result<()> {
    for p in batch {
        let (Some(run), Some(Change::RunStart { selection, partitions, evaluated_at, tags, steps, at })) =
            (&p.run, &p.change)
        else {
            continue;
        };
        let user = std::env::var("USER").or_else(|_| std::env::var("USERNAME")).unwrap_or_default();
        let who = if user.is_empty() { hostname() } else { format!("{user}@{}", hostname()) };
        // a resumed run (same id) is running again; its story, steps and counts go on
        tx.prepare_cached(
            "INSERT INTO runs (run_id, status, selection, partitions, evaluated_at, tags, steps, started_by, pid, started_at)
             VALUES (?1, 'running', ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
             ON CONFLICT (run_id) DO UPDATE SET status = 'running', ended_at = NULL, pid = excluded.pid",
        )?
        .execute(params![run, selection, partitions, evaluated_at, tags, steps, who, std::process::id(), at])?;
    }
    // the event log: the lines of each run in order, one row per run
    let mut logs: Vec<(Option<&str>, Vec<&str>)> = Vec::new();
    for p in batch {
        match logs.iter_mut().find(|(r, _)| *r == p.run.as_deref()) {
            Some((_, lines)) => lines.push(&p.line),
            None => logs.push((p.run.as_deref(), vec![&p.line])),
        }
    }
    for (run, lines) in logs {
        tx.prepare_cached("INSERT INTO events (run_id, count, body) VALUES (?1, ?2, ?3)")?.execute(params![
            run,
            lines.len() as i64,
            lines.join("\n")
        ])?;
    }
    for p in batch {
        if let (Some(run), Some(Change::Check { key, partition, name, passed, result })) = (&p.run, &p.change) {
            tx.prepare_cached(
                "INSERT INTO checks (run_id, asset_key, partition, name, passed, result) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?
            .execute(params![run, key, partition, name, passed, result])?;
        }
    }
    let mut steps: Vec<(&str, &str, &str, StepState)> = Vec::new();
    let mut index: std::collections::HashMap<(&str, &str, &str), usize> = std::collections::HashMap::new();
    for p in batch {
        let (Some(run), Some(Change::Step { key, partition, state })) = (&p.run, &p.change) else { continue };
        let id = (run.as_str(), key.as_str(), partition.as_str());
        match index.get(&id) {
            Some(&i) => {
                let old = &steps[i].3;
                let mut new = state.clone();
                new.attempts = new.attempts.max(old.attempts);
                new.started_at = new.started_at.or_else(|| old.started_at.clone());
                steps[i].3 = new;
            }
            None => {
                index.insert(id, steps.len());
                steps.push((id.0, id.1, id.2, state.clone()));
            }
        }
    }
    for (run, key, partition, s) in &steps {
        let v = s.versions.as_ref().map(|(v, _)| v);
        let inputs = v.map(|v| serde_json::to_string(&v.inputs).unwrap_or_default());
        let (code, data, source) =
            (v.and_then(|v| v.code.as_deref()), v.map(|v| &*v.data), v.and_then(|v| v.source.as_deref()));
        tx.prepare_cached(
            "INSERT INTO steps (run_id, asset_key, partition, status, attempts, started_at, duration_ms, error, metadata,
                                code_version, data_version, source_version, inputs)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)
             ON CONFLICT (run_id, asset_key, partition) DO UPDATE SET status = excluded.status,
               attempts = max(steps.attempts, excluded.attempts),
               started_at = coalesce(excluded.started_at, steps.started_at),
               duration_ms = excluded.duration_ms, error = excluded.error, metadata = excluded.metadata,
               code_version = excluded.code_version, data_version = excluded.data_version,
               source_version = excluded.source_version, inputs = excluded.inputs",
        )?
        .execute(params![
            run,
            key,
            partition,
            s.status,
            s.attempts,
            s.started_at,
            s.duration_ms,
            s.error,
            s.metadata,
            code,
            data,
            source,
            inputs
        ])?;
        // the asset's latest success, kept when its runs are pruned; with the error-severity
        // checks of that materialization that did not pass (a warning does not make it stale)
        if let Some((_, at)) = &s.versions {
            tx.prepare_cached(
                "INSERT OR REPLACE INTO materializations
                   (asset_key, partition, run_id, at, code_version, data_version, source_version, inputs, failed_checks)
                 VALUES (?2, ?3, ?1, ?4, ?5, ?6, ?7, ?8,
                   (SELECT json_group_array(name) FROM checks
                     WHERE run_id = ?1 AND asset_key = ?2 AND partition = ?3 AND passed = 0
                       AND json_extract(result, '$.severity') = 'error'))",
            )?
            .execute(params![run, key, partition, at, code, data, source, inputs])?;
        }
    }
    for p in batch {
        let (Some(run), Some(Change::RunEnd { status, at, duration_ms })) = (&p.run, &p.change) else { continue };
        // the counts of the whole run, over every attempt (a resume ran only part of it); the
        // duration is the sum of the attempts'
        let counts: Vec<(String, i64)> = {
            let mut q = tx.prepare_cached("SELECT status, count(*) FROM steps WHERE run_id = ?1 GROUP BY status")?;
            q.query_map([run], |row| Ok((row.get(0)?, row.get(1)?)))?.collect::<Result<_, _>>()?
        };
        let summary: std::collections::BTreeMap<String, i64> = counts.into_iter().collect();
        tx.prepare_cached(
            "UPDATE runs SET status = ?2, ended_at = ?3, duration_ms = coalesce(duration_ms, 0) + ?4, summary = ?5
             WHERE run_id = ?1",
        )?
        .execute(params![
            run,
            status,
            at,
            duration_ms,
            serde_json::to_string(&summary).unwrap_or_default()
        ])?;
    }
    Ok(())
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .or_else(|_| std::env::var("HOSTNAME"))
        .unwrap_or_else(|_| String::from("localhost"))
}

#[path = "runs_store.rs"]
mod store;

#[cfg(test)]
#[path = "runs_tests.rs"]
mod tests;
