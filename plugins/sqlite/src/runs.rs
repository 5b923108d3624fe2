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
use phlo_core::hooks::{Event, EventPayload, Status};
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
    "
CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
INSERT INTO meta (key, value) SELECT 'folded', coalesce(max(seq), 0) FROM events;
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
    /// The thread that checkpoints the WAL in the background (see [`CHECKPOINT_EVERY`]).
    checkpointer: Mutex<Option<Checkpointer>>,
}

/// A thread with its own connection that checkpoints the WAL when told to, so that neither
/// the writer nor a run's end waits for a large checkpoint.
struct Checkpointer {
    due: std::sync::mpsc::SyncSender<()>,
    thread: std::thread::JoinHandle<()>,
}

/// The WAL is checkpointed (in the background) each time this many bytes of event log were
/// committed since the last time; the connections themselves never checkpoint until closed.
pub(crate) const CHECKPOINT_EVERY: usize = 4 << 20;

pub(crate) struct Pending {
    /// The records waiting, one growing body per run (in the order they came).
    logs: Vec<Log>,
    /// Runs that start or end with them.
    edges: Vec<(Arc<str>, RunEdge)>,
    /// How many events wait.
    len: usize,
    /// When the oldest boundary event waiting arrived.
    waiting_since: Option<Instant>,
    /// Whether the writer thread is running.
    flusher: bool,
    /// The writer's last failure, reported by the next event recorded.
    error: Option<StoreError>,
    /// Bodies already written, kept for their memory (a large run fills many).
    spare: Vec<Vec<u8>>,
    /// Bytes of event log committed since the WAL was last checkpointed.
    unchecked: usize,
}

/// The waiting records of one run (or of events without a run).
pub(crate) struct Log {
    run: Option<Arc<str>>,
    body: Vec<u8>,
    count: i64,
    /// Unique in the process: the body a lane's records were written for.
    number: u64,
}

impl Pending {
    /// The body of `run`'s waiting records (started if none): its index and number (see
    /// `runs_log.rs`: a record written against a lane belongs to one body).
    pub(crate) fn body_of(&mut self, run: Option<&Arc<str>>) -> (usize, u64) {
        let same = |l: &Log| match (&l.run, run) {
            (Some(a), Some(b)) => Arc::ptr_eq(a, b) || a == b,
            (a, b) => a.is_none() && b.is_none(),
        };
        if let Some(i) = self.logs.iter().position(same) {
            return (i, self.logs[i].number);
        }
        let body = self.spare.pop().unwrap_or_else(|| Vec::with_capacity(1 << 16));
        let number = log::new_body();
        self.logs.push(Log { run: run.cloned(), body, count: 0, number });
        (self.logs.len() - 1, number)
    }

    /// Appends an encoded record to the body at `at` (and the run edge it carries).
    pub(crate) fn push(&mut self, at: usize, record: &[u8], edge: Option<RunEdge>) {
        let log = &mut self.logs[at];
        log.body.extend_from_slice(record);
        log.count += 1;
        self.len += 1;
        // the run's id is cloned only for its start and end: every thread cloning it for
        // every event would fight over its reference count
        if let Some(edge) = edge
            && let Some(run) = &log.run
        {
            self.edges.push((Arc::clone(run), edge));
        }
    }
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
        let pending = Pending {
            logs: Vec::new(),
            edges: Vec::new(),
            len: 0,
            waiting_since: None,
            flusher: false,
            error: None,
            spare: Vec::new(),
            unchecked: 0,
        };
        let shared = Shared {
            conn: Mutex::new(None),
            pending: Mutex::new(pending),
            wake: Condvar::new(),
            checkpointer: Mutex::new(None),
        };
        Self { path, shared: Arc::new(shared) }
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

    /// [`RunHistory::with_conn`] after folding the events not folded yet into steps, checks
    /// and materializations (see `runs_fold.rs`).
    fn with_folded<T>(&self, f: impl FnOnce(&mut Connection) -> Result<T, StoreError>) -> Result<T, StoreError> {
        let path = self.path.clone();
        self.with_conn(|conn| {
            if fold::behind(conn).map_err(|e| failed(&path, &e))? {
                let tx = conn
                    .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                    .map_err(|e| failed(&path, &e))?;
                fold::fold(&tx, &path)?;
                tx.commit().map_err(|e| failed(&path, &e))?;
            }
            f(conn)
        })
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
                    p.len >= BATCH || p.waiting_since.is_some_and(|t| t.elapsed() >= COMMIT_WITHIN)
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
        // closed here, by the thread that drops the store, not by whichever thread lets go of
        // it last: closing checkpoints what the WAL still holds, and the caller waits for it
        let checkpointer = self.shared.checkpointer.lock().unwrap_or_else(PoisonError::into_inner).take();
        if let Some(c) = checkpointer {
            drop(c.due);
            let _ = c.thread.join();
        }
        drop(self.shared.conn.lock().unwrap_or_else(PoisonError::into_inner).take());
    }
}

/// Asks the checkpointer (started on first use) to checkpoint the WAL.
fn checkpoint_soon(path: &Path, shared: &Shared) {
    let mut slot = shared.checkpointer.lock().unwrap_or_else(PoisonError::into_inner);
    if slot.is_none() {
        let Ok(conn) = Connection::open(path) else { return };
        let (due, wait) = std::sync::mpsc::sync_channel::<()>(1);
        let spawned = std::thread::Builder::new().name("phlo-run-store-checkpoint".into()).spawn(move || {
            let _ = conn.busy_timeout(Duration::from_secs(10));
            // PASSIVE: as much as the readers allow, never blocking the writer; a failure is
            // harmless (the WAL is checkpointed by the next one, or when the store is closed)
            while wait.recv().is_ok() {
                let _ = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
            }
        });
        let Ok(thread) = spawned else { return };
        *slot = Some(Checkpointer { due, thread });
    }
    if let Some(c) = slot.as_ref() {
        // full: a checkpoint is already due
        let _ = c.due.try_send(());
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
    let (logs, edges) = {
        let mut p = shared.pending.lock().unwrap_or_else(PoisonError::into_inner);
        p.waiting_since = None;
        p.len = 0;
        (std::mem::take(&mut p.logs), std::mem::take(&mut p.edges))
    };
    if logs.is_empty() {
        return Ok(());
    }
    if conn.is_none() {
        *conn = Some(open(path)?);
    }
    let conn = conn.as_mut().expect("opened above");
    // the write lock at once: a busy store (another run) is waited for, never half-written
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(|e| failed(path, &e))?;
    write(&tx, &logs, &edges, path)?;
    tx.commit().map_err(|e| failed(path, &e))?;
    let mut p = shared.pending.lock().unwrap_or_else(PoisonError::into_inner);
    for mut l in logs {
        p.unchecked += l.body.len();
        if p.spare.len() < 4 {
            l.body.clear();
            p.spare.push(l.body);
        }
    }
    if p.unchecked >= CHECKPOINT_EVERY {
        p.unchecked = 0;
        drop(p);
        checkpoint_soon(path, shared);
    }
    Ok(())
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
    // a checkpoint syncs the file: not on the committing thread (a run's end would wait for
    // it) but by the checkpointer, in the background, and by the connection's close
    conn.pragma_update(None, "wal_autocheckpoint", 0).map_err(|e| failed(path, &e))?;
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

/// A run's start or end: written to `runs` with the events, so that `phlo runs list` and a
/// run's liveness need no folding.
pub(crate) enum RunEdge {
    Start {
        selection: Option<String>,
        partitions: Option<String>,
        evaluated_at: Option<String>,
        tags: String,
        steps: i64,
        at: String,
    },
    End {
        status: &'static str,
        at: String,
        duration_ms: i64,
        /// The attempt's own counts; `None` for a resumed run, whose counts cover every
        /// attempt (folded from its steps).
        summary: Option<String>,
    },
}

/// What an event changes in `runs` at once: a run's start or end.
pub(crate) fn edge_of(e: &Event) -> Option<RunEdge> {
    e.correlation.run_id.as_ref()?;
    match &e.payload {
        EventPayload::RunStart(r) => Some(RunEdge::Start {
            selection: r.selection.clone(),
            partitions: r.partitions.clone(),
            evaluated_at: r.evaluated_at.map(|t| t.to_rfc3339()),
            tags: serde_json::to_string(&e.tags).unwrap_or_default(),
            steps: (r.assets + r.resumed_done) as i64,
            at: e.timestamp.to_rfc3339(),
        }),
        EventPayload::RunEnd(r) => Some(RunEdge::End {
            status: status_word(r.status),
            at: e.timestamp.to_rfc3339(),
            duration_ms: r.duration_ms.map_or(0, |d| d as i64),
            summary: (r.resumed_done == 0).then(|| serde_json::to_string(&r.summary).unwrap_or_default()),
        }),
        _ => None,
    }
}

/// Writes a batch: runs that start first, then the event log (one row per run and batch),
/// and runs that end last.
fn write(
    tx: &rusqlite::Transaction<'_>,
    logs: &[Log],
    edges: &[(Arc<str>, RunEdge)],
    path: &Path,
) -> Result<(), StoreError> {
    let err = |e: rusqlite::Error| failed(path, &e);
    for (run, edge) in edges {
        let RunEdge::Start { selection, partitions, evaluated_at, tags, steps, at } = edge else { continue };
        let user = std::env::var("USER").or_else(|_| std::env::var("USERNAME")).unwrap_or_default();
        let who = if user.is_empty() { hostname() } else { format!("{user}@{}", hostname()) };
        // a resumed run (same id) is running again; its story, steps and counts go on
        tx.prepare_cached(
            "INSERT INTO runs (run_id, status, selection, partitions, evaluated_at, tags, steps, started_by, pid, started_at)
             VALUES (?1, 'running', ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
             ON CONFLICT (run_id) DO UPDATE SET status = 'running', ended_at = NULL, pid = excluded.pid",
        )
        .and_then(|mut q| {
            q.execute(params![&**run, selection, partitions, evaluated_at, tags, steps, who, std::process::id(), at])
        })
        .map_err(err)?;
    }
    // the event log: one row per run and batch
    for l in logs {
        tx.prepare_cached("INSERT INTO events (run_id, count, body) VALUES (?1, ?2, ?3)")
            .and_then(|mut q| q.execute(params![l.run.as_deref(), l.count, l.body]))
            .map_err(err)?;
    }
    for (run, edge) in edges {
        let RunEdge::End { status, at, duration_ms, summary } = edge else { continue };
        let summary = match summary {
            Some(s) => s.clone(),
            None => {
                // a resumed run counts every attempt's steps
                fold::fold(tx, path)?;
                let counts: Vec<(String, i64)> = tx
                    .prepare_cached("SELECT status, count(*) FROM steps WHERE run_id = ?1 GROUP BY status")
                    .and_then(|mut q| q.query_map([&**run], |row| Ok((row.get(0)?, row.get(1)?)))?.collect())
                    .map_err(err)?;
                let summary: std::collections::BTreeMap<String, i64> = counts.into_iter().collect();
                serde_json::to_string(&summary).unwrap_or_default()
            }
        };
        // the duration is the sum of the attempts'
        tx.prepare_cached(
            "UPDATE runs SET status = ?2, ended_at = ?3, duration_ms = coalesce(duration_ms, 0) + ?4, summary = ?5
             WHERE run_id = ?1",
        )
        .and_then(|mut q| q.execute(params![&**run, status, at, duration_ms, summary]))
        .map_err(err)?;
    }
    Ok(())
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .or_else(|_| std::env::var("HOSTNAME"))
        .unwrap_or_else(|_| String::from("localhost"))
}

#[path = "runs_fold.rs"]
mod fold;

#[path = "runs_log.rs"]
mod log;

#[path = "runs_store.rs"]
mod store;

#[cfg(test)]
#[path = "runs_tests.rs"]
mod tests;
