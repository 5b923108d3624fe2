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
//! Each thread records the events it emits into its own buffer (see `runs_record.rs`); they
//! are written in transactions: at once for a run's start and end, and for a step's start,
//! end or skip within [`COMMIT_WITHIN`] (20 ms), together with whatever came in that time
//! (group commit: a run of 100,000 short steps would otherwise write its pages 200,000
//! times). A batch writes the event log as one row per run; steps, checks and
//! materializations are folded from it by the first command that reads them. A process
//! killed at any point leaves the store consistent: every step recorded as finished is
//! finished, a step recorded as running is marked interrupted, and at most the last 20 ms of
//! events are missing (their steps run again on resume).

use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError};
use std::time::Duration;

use phlo_core::execution::{RunStore, StoreError};
use phlo_core::plugin::{Plugin, PluginContext, PluginError, Resource};
use rusqlite::Connection;
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
    // how many processes or attempts started the run (a resume, each step of an external
    // orchestrator): a run started more than once has its status folded from every one
    "
ALTER TABLE runs ADD COLUMN starts INTEGER NOT NULL DEFAULT 1;
",
];

/// The schema version this build writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// The run store.
pub struct RunHistory {
    path: PathBuf,
    shared: Arc<Shared>,
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
        Self { path, shared: Arc::new(Shared::new()) }
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
}

impl Drop for RunHistory {
    fn drop(&mut self) {
        // what is still waiting is written (an error has no one left to hear it)
        let _ = flush(&self.path, &self.shared);
        // closed here, by the thread that drops the store, not by whichever thread lets go of
        // it last. What the WAL still holds is checkpointed by the next process that writes,
        // unless it is large: every process that opens the store reads through what the WAL
        // holds, so a WAL that the checkpointer could not keep small is emptied here
        self.shared.stop_checkpointer();
        let conn = self.shared.conn.lock().unwrap_or_else(PoisonError::into_inner).take();
        if let Some(conn) = conn
            && self.shared.wal_is_large()
        {
            let _ = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
        }
    }
}

/// The size the WAL's file is cut back to after a checkpoint (bytes).
const WAL_SIZE_LIMIT: i64 = 16 << 20;

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
    // a checkpoint syncs the file: never on the committing thread nor by a closing
    // connection (a run's end would wait for it), but by the checkpointer, in the background
    // (what a process leaves in the WAL is checkpointed by the next one that writes)
    conn.pragma_update(None, "wal_autocheckpoint", 0).map_err(|e| failed(path, &e))?;
    conn.set_db_config(rusqlite::config::DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, true)
        .map_err(|e| failed(path, &e))?;
    // the WAL's file is cut back to this size when it is reused after a checkpoint
    conn.pragma_update(None, "journal_size_limit", WAL_SIZE_LIMIT).map_err(|e| failed(path, &e))?;
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

#[path = "runs_fold.rs"]
mod fold;

#[path = "runs_log.rs"]
mod log;

#[path = "runs_record.rs"]
mod record;

#[path = "runs_store.rs"]
mod store;

pub use record::COMMIT_WITHIN;
use record::{Shared, flush};

#[cfg(test)]
#[path = "runs_tests.rs"]
mod tests;
