//! The `sqlite` resource provider: a SQLite warehouse file serving `table_store:sqlite` and
//! `query_engine:sqlite`. WAL mode, one writer (a mutex around one connection), opened on
//! first use so listing or validating a project writes nothing.
//!
//! ```yaml
//! resources:
//!   sqlite:
//!     path: .phlo/warehouse.db   # relative to the project; the default
//! ```

use std::path::PathBuf;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use phlo_core::data::batches::{InMemory, RowBatches};
use phlo_core::data::digest::{Digest, Stored};
use phlo_core::data::{
    Cell, Column, Commit, Committed, DataError, DataType, ModelTarget, QueryEngine, Rows, StepMark, StopSignal,
    TableStore, WriteMode, Written, partition_swap_sql, quote_ident,
};
use phlo_core::plugin::{Plugin, PluginContext, PluginError, Resource};
use rusqlite::ToSql;
use rusqlite::config::DbConfig;
use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{Connection, OptionalExtension};
use schemars::JsonSchema;

use readonly::{read_only, refuse_writes};
use serde::Deserialize;

/// `resources.sqlite` in phlo.yaml.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct SqliteConfig {
    /// The database file, relative to the project (created with its directories).
    pub path: String,
    /// How long a statement waits for a lock held by another process, in milliseconds.
    pub busy_timeout_ms: u64,
}

impl Default for SqliteConfig {
    fn default() -> Self {
        Self { path: String::from(".phlo/warehouse.db"), busy_timeout_ms: 5_000 }
    }
}

/// The warehouse: one connection, opened on first use.
pub struct Warehouse {
    path: PathBuf,
    busy_timeout: Duration,
    /// Idle connections; a session takes one (or opens one) and gives it back. Readers run
    /// side by side (WAL); writers take `writer` first.
    idle: Mutex<Vec<Connection>>,
    /// Serialises this process's writes, so that they queue here instead of timing out on
    /// SQLite's lock.
    writer: Mutex<()>,
    /// Whether the file is known to be in WAL mode (a property of the file, set once).
    wal: Mutex<bool>,
}

impl std::fmt::Debug for Warehouse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Warehouse").field("path", &self.path).finish_non_exhaustive()
    }
}

fn err(context: &str, e: impl std::fmt::Display) -> DataError {
    DataError::new(format!("{context}: {e}"))
}

/// `err`, except that an interrupted statement says it was stopped.
fn sql_err(context: &str, e: &rusqlite::Error) -> DataError {
    match e {
        _ if e.sqlite_error_code() == Some(rusqlite::ErrorCode::OperationInterrupted) => {
            DataError::interrupted(format!("{context}: stopped (the attempt timed out or the run was cancelled)"))
        }
        _ if e.sqlite_error_code() == Some(rusqlite::ErrorCode::DatabaseBusy) => DataError::new(format!(
            "{context}: the warehouse stayed locked by another process for longer than `resources.sqlite.busy_timeout_ms` \
             (another program writing to it?)"
        )),
        // the statement and offset are the caller's composed SQL, not what a user wrote
        rusqlite::Error::SqlInputError { msg, .. } => DataError::new(format!("{context}: {msg}")),
        _ => err(context, e),
    }
}

fn sql_type(t: DataType) -> &'static str {
    match t {
        DataType::Integer => "INTEGER",
        DataType::Real => "REAL",
        DataType::Text => "TEXT",
        DataType::Boolean => "BOOLEAN",
        DataType::Date => "DATE",
        DataType::Timestamp => "TIMESTAMP",
    }
}

fn data_type(declared: &str) -> DataType {
    let d = declared.to_ascii_uppercase();
    match d.as_str() {
        "BOOLEAN" | "BOOL" => DataType::Boolean,
        "DATE" => DataType::Date,
        "TIMESTAMP" | "DATETIME" => DataType::Timestamp,
        _ if d.contains("INT") => DataType::Integer,
        _ if d.contains("REAL") || d.contains("FLOA") || d.contains("DOUB") || d.contains("NUM") => DataType::Real,
        _ => DataType::Text,
    }
}

/// Binds a cell without copying its text.
struct Bind<'a>(&'a Cell);

impl ToSql for Bind<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(match self.0 {
            Cell::Null => ValueRef::Null,
            Cell::Int(i) => ValueRef::Integer(*i),
            Cell::Real(r) => ValueRef::Real(*r),
            Cell::Text(t) => ValueRef::Text(t.as_bytes()),
            Cell::Blob(b) => ValueRef::Blob(b),
            Cell::Bool(b) => ValueRef::Integer(i64::from(*b)),
        }))
    }
}

impl Warehouse {
    /// A warehouse at `path` (nothing is opened yet).
    pub fn new(path: impl Into<PathBuf>, busy_timeout: Duration) -> Self {
        Self {
            path: path.into(),
            busy_timeout,
            idle: Mutex::new(Vec::new()),
            writer: Mutex::new(()),
            wal: Mutex::new(false),
        }
    }

    fn open(&self) -> Result<Connection, DataError> {
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| err(&format!("cannot create the warehouse directory `{}`", dir.display()), e))?;
        }
        let c = Connection::open(&self.path)
            .map_err(|e| err(&format!("cannot open the warehouse `{}`", self.path.display()), e))?;
        c.busy_timeout(self.busy_timeout).map_err(|e| err("cannot set the busy timeout", e))?;
        // "x" is an identifier, never a string: a misspelt column is an error, not a constant
        for flag in [DbConfig::SQLITE_DBCONFIG_DQS_DML, DbConfig::SQLITE_DBCONFIG_DQS_DDL] {
            c.set_db_config(flag, false).map_err(|e| err("cannot configure SQLite", e))?;
        }
        // WAL is a property of the file: switch once; switching needs the file to itself, so
        // another process switching at the same moment is waited for, like any lock
        let mut wal = self.wal.lock().unwrap_or_else(PoisonError::into_inner);
        if !*wal {
            let started = std::time::Instant::now();
            loop {
                match c.pragma_update(None, "journal_mode", "WAL") {
                    Ok(()) => break,
                    Err(e)
                        if e.sqlite_error_code() == Some(rusqlite::ErrorCode::DatabaseBusy)
                            && started.elapsed() < self.busy_timeout =>
                    {
                        std::thread::sleep(Duration::from_millis(20));
                    }
                    Err(e) => return Err(err("cannot switch to WAL mode", e)),
                }
            }
            *wal = true;
        }
        drop(wal);
        c.pragma_update(None, "synchronous", "NORMAL").map_err(|e| err("cannot set synchronous mode", e))?;
        // the last connection to close does not checkpoint (a sync of the file as the process
        // ends): what the WAL holds — at most the autocheckpoint's 1,000 pages — is read through
        // by the next process, and checkpointed by the next commit that fills it
        c.set_db_config(DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, true)
            .map_err(|e| err("cannot configure SQLite", e))?;
        // a WAL grown by a large write is cut back when it is next reused
        c.pragma_update(None, "journal_size_limit", 64_i64 << 20).map_err(|e| err("cannot configure SQLite", e))?;
        Ok(c)
    }

    /// Runs `f` on a connection of its own (readers run side by side); with a stop signal,
    /// SQLite checks it every few thousand virtual-machine steps and abandons the running
    /// statement when it says stop.
    fn session<T>(
        &self,
        stop: Option<&StopSignal>,
        f: impl FnOnce(&mut Connection) -> Result<T, DataError>,
    ) -> Result<T, DataError> {
        if stop.is_some_and(|s| s()) {
            return Err(DataError::interrupted("stopped before it started"));
        }
        let pooled = self.idle.lock().unwrap_or_else(PoisonError::into_inner).pop();
        let mut conn = match pooled {
            Some(c) => c,
            None => self.open()?,
        };
        if let Some(stop) = stop {
            let stop = std::sync::Arc::clone(stop);
            conn.progress_handler(4096, Some(move || stop())).map_err(|e| err("cannot watch the statement", e))?;
        }
        let result = f(&mut conn);
        let reset = if stop.is_some() { conn.progress_handler(0, None::<fn() -> bool>) } else { Ok(()) };
        // a connection left inside a transaction (a panic, an error mid-way) is not reused
        if reset.is_ok() && conn.is_autocommit() {
            self.idle.lock().unwrap_or_else(PoisonError::into_inner).push(conn);
        }
        result
    }

    /// `session` for work that writes: this process's writers take turns, and the write
    /// transaction is taken at once (`BEGIN IMMEDIATE`), so it never fails half-way on a
    /// lock held by another connection.
    fn write_session<T>(
        &self,
        stop: Option<&StopSignal>,
        f: impl FnOnce(&rusqlite::Transaction<'_>) -> Result<T, DataError>,
    ) -> Result<T, DataError> {
        let _turn = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
        self.session(stop, |conn| {
            let tx = conn
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                .map_err(|e| sql_err("cannot start a write transaction", &e))?;
            let out = f(&tx)?;
            tx.commit().map_err(|e| sql_err("cannot commit", &e))?;
            Ok(out)
        })
    }

    /// One step's write: `f` writes the rows inside the write transaction, which also sets
    /// `commit.state` and records `commit.step` — or writes nothing when the step is recorded
    /// as committed already (read inside the transaction: two attempts never both write).
    fn write_step(
        &self,
        commit: &Commit<'_>,
        stop: &StopSignal,
        f: impl FnOnce(&rusqlite::Transaction<'_>) -> Result<(u64, Option<String>), DataError>,
    ) -> Result<Written, DataError> {
        self.write_session(Some(stop), |tx| {
            if let Some(step) = commit.step
                && let Some(c) = committed_in(tx, step)?
            {
                return Ok(Written::Already(c));
            }
            let (n, version) = f(tx)?;
            if let Some((key, value)) = commit.state {
                set_state_in(tx, key, value)?;
            }
            if let Some(step) = commit.step {
                mark_in(tx, step, n)?;
            }
            Ok(match version {
                Some(version) => Written::Versioned { rows: n, version },
                None => Written::Rows(n),
            })
        })
    }

    fn write(&self, table: &str, rows: &Rows, replace: bool, stop: Option<&StopSignal>) -> Result<u64, DataError> {
        self.write_session(stop, |tx| {
            write_in(tx, table, &rows.columns, &mut InMemory::new(&rows.rows), replace).map(|w| w.0)
        })
    }
}

/// A value read from SQLite as the digest sees it.
fn stored(v: ValueRef<'_>) -> Stored<'_> {
    match v {
        ValueRef::Null => Stored::Null,
        ValueRef::Integer(v) => Stored::Int(v),
        ValueRef::Real(v) => Stored::Real(v),
        ValueRef::Text(t) => Stored::Text(t),
        ValueRef::Blob(b) => Stored::Blob(b),
    }
}

/// The columns of the model's scratch table (`temp.__phlo_model`).
fn describe_temp(conn: &Connection) -> Result<Option<Vec<Column>>, DataError> {
    let stmt = conn
        .prepare("SELECT * FROM temp.\"__phlo_model\" LIMIT 0")
        .map_err(|e| err("cannot describe the model's rows", e))?;
    let cols: Vec<Column> = stmt.columns().map(|c| Column::new(c.name(), DataType::Text)).collect();
    Ok(Some(cols))
}

fn describe_in(conn: &Connection, table: &str) -> Result<Option<Vec<Column>>, DataError> {
    let mut stmt = conn
        .prepare(&format!("PRAGMA table_info({})", quote_ident(table)))
        .map_err(|e| err(&format!("cannot describe `{table}`"), e))?;
    let cols: Vec<Column> = stmt
        .query_map([], |r| {
            let name: String = r.get(1)?;
            let declared: String = r.get(2)?;
            let notnull: i64 = r.get(3)?;
            Ok(Column { name, data_type: data_type(&declared), nullable: notnull == 0 })
        })
        .and_then(Iterator::collect)
        .map_err(|e| err(&format!("cannot describe `{table}`"), e))?;
    Ok((!cols.is_empty()).then_some(cols))
}

impl TableStore for Warehouse {
    fn replace(&self, table: &str, rows: &Rows) -> Result<u64, DataError> {
        self.write(table, rows, true, None)
    }

    fn append(&self, table: &str, rows: &Rows) -> Result<u64, DataError> {
        self.write(table, rows, false, None)
    }

    fn write_until(&self, table: &str, rows: &Rows, replace: bool, stop: &StopSignal) -> Result<u64, DataError> {
        self.write(table, rows, replace, Some(stop))
    }

    fn describe(&self, table: &str) -> Result<Option<Vec<Column>>, DataError> {
        // no warehouse yet, no table: looking creates nothing
        if !self.path.exists() {
            return Ok(None);
        }
        self.session(None, |conn| describe_in(conn, table))
    }

    fn write_rows(
        &self,
        table: &str,
        rows: &Rows,
        mode: &WriteMode,
        commit: &Commit<'_>,
        stop: &StopSignal,
    ) -> Result<Written, DataError> {
        self.write_batches(table, &rows.columns, &mut InMemory::new(&rows.rows), mode, commit, stop)
    }

    fn write_batches(
        &self,
        table: &str,
        columns: &[Column],
        source: &mut dyn RowBatches,
        mode: &WriteMode,
        commit: &Commit<'_>,
        stop: &StopSignal,
    ) -> Result<Written, DataError> {
        match mode {
            WriteMode::Replace => self.write_step(commit, stop, |tx| write_in(tx, table, columns, source, true)),
            WriteMode::Append => self.write_step(commit, stop, |tx| write_in(tx, table, columns, source, false)),
            WriteMode::Merge(keys) => {
                self.write_step(commit, stop, |tx| merge_in(tx, table, columns, source, keys).map(|n| (n, None)))
            }
        }
    }

    fn committed(&self, step: &StepMark) -> Result<Option<Committed>, DataError> {
        self.session(None, |conn| committed_in(conn, step))
    }

    fn state(&self, key: &str) -> Result<Option<String>, DataError> {
        self.session(None, |conn| {
            if describe_in(conn, STATE_TABLE)?.is_none() {
                return Ok(None);
            }
            conn.query_row(&format!("SELECT value FROM {STATE_TABLE} WHERE key = ?1"), [key], |r| r.get(0))
                .optional()
                .map_err(|e| sql_err("cannot read the state", &e))
        })
    }

    fn version(&self, table: &str, partition: Option<(&str, &str)>) -> Result<Option<String>, DataError> {
        self.session(None, |conn| version_in(conn, table, partition))
    }

    fn probe(&self) -> Result<(), DataError> {
        QueryEngine::probe(self)
    }
}

/// The version of a table's rows (of one partition): their count and the sum of a 128-bit
/// hash of each row (XXH3 over each value's type and bytes), so the order of the rows does
/// not matter, plus a hash of the table's columns (names, types, order); `None` when the
/// table does not exist.
fn version_in(conn: &Connection, table: &str, partition: Option<(&str, &str)>) -> Result<Option<String>, DataError> {
    let Some(columns) = describe_in(conn, table)? else {
        return Ok(None);
    };
    // the schema is part of the version: a renamed, retyped or moved column is a new version
    // even when every value stays the same
    let sql = match partition {
        None => format!("SELECT * FROM {}", quote_ident(table)),
        Some((column, _)) => format!("SELECT * FROM {} WHERE {} = ?1", quote_ident(table), quote_ident(column)),
    };
    let mut stmt = conn.prepare(&sql).map_err(|e| sql_err("SQLite", &e))?;
    let n = stmt.column_count();
    let mut rows = match partition {
        None => stmt.query([]),
        Some((_, key)) => stmt.query([key]),
    }
    .map_err(|e| sql_err("SQLite", &e))?;
    let mut digest = Digest::default();
    while let Some(r) = rows.next().map_err(|e| sql_err("SQLite", &e))? {
        digest.start_row();
        for i in 0..n {
            digest.value(stored(r.get_ref(i).map_err(|e| sql_err("SQLite", &e))?));
        }
        digest.end_row();
    }
    Ok(Some(digest.version(&columns)))
}

fn query_in(conn: &Connection, sql: &str) -> Result<Rows, DataError> {
    let mut stmt = conn.prepare(sql).map_err(|e| sql_err("SQLite", &e))?;
    refuse_writes(&stmt)?;
    let mut columns: Vec<Column> =
        stmt.columns().map(|c| Column::new(c.name(), c.decl_type().map_or(DataType::Text, data_type))).collect();
    let declared: Vec<bool> = stmt.columns().map(|c| c.decl_type().is_some()).collect();
    let n = columns.len();
    let mut out = Vec::new();
    let mut rows = stmt.query([]).map_err(|e| sql_err("SQLite", &e))?;
    while let Some(r) = rows.next().map_err(|e| sql_err("SQLite", &e))? {
        let mut row = Vec::with_capacity(n);
        for i in 0..n {
            let cell = match r.get_ref(i).map_err(|e| sql_err("SQLite", &e))? {
                ValueRef::Null => Cell::Null,
                ValueRef::Integer(v) if columns[i].data_type == DataType::Boolean => Cell::Bool(v != 0),
                ValueRef::Integer(v) => Cell::Int(v),
                ValueRef::Real(v) => Cell::Real(v),
                ValueRef::Text(t) => Cell::Text(String::from_utf8_lossy(t).into_owned()),
                ValueRef::Blob(b) => Cell::Blob(b.to_vec()),
            };
            // expressions have no declared type: take it from the first value
            if !declared[i] && out.is_empty() {
                columns[i].data_type = match &cell {
                    Cell::Int(_) => DataType::Integer,
                    Cell::Real(_) => DataType::Real,
                    _ => DataType::Text,
                };
            }
            row.push(cell);
        }
        out.push(row);
    }
    Ok(Rows { columns, rows: out })
}

/// Runs the statement(s) in the write transaction: all of them or none.
fn execute_in(tx: &rusqlite::Transaction<'_>, sql: &str) -> Result<u64, DataError> {
    tx.execute_batch(sql).map_err(|e| sql_err("SQLite", &e))?;
    Ok(tx.changes())
}

impl QueryEngine for Warehouse {
    fn query(&self, sql: &str) -> Result<Rows, DataError> {
        self.session(None, |conn| read_only(conn, |c| query_in(c, sql)))
    }

    fn execute(&self, sql: &str) -> Result<u64, DataError> {
        self.write_session(None, |tx| execute_in(tx, sql))
    }

    fn query_until(&self, sql: &str, stop: &StopSignal) -> Result<Rows, DataError> {
        self.session(Some(stop), |conn| read_only(conn, |c| query_in(c, sql)))
    }

    fn validate(&self, sql: &str) -> Result<(), DataError> {
        self.session(None, |conn| {
            read_only(conn, |conn| match conn.prepare(sql) {
                Ok(stmt) => refuse_writes(&stmt),
                Err(rusqlite::Error::SqlInputError { msg, offset, .. }) => {
                    let at = usize::try_from(offset).unwrap_or(0).min(sql.len());
                    let before = sql.get(..at).unwrap_or("");
                    let line = before.matches('\n').count() + 1;
                    let col = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
                    Err(DataError::new(format!("{msg} (line {line}, column {col} of the SQL)")))
                }
                Err(rusqlite::Error::MultipleStatement) => {
                    Err(DataError::new("it holds more than one statement; a model is one SELECT"))
                }
                Err(e) => Err(sql_err("SQLite", &e)),
            })
        })
    }

    fn execute_until(&self, sql: &str, stop: &StopSignal) -> Result<u64, DataError> {
        self.write_session(Some(stop), |tx| execute_in(tx, sql))
    }

    /// The SELECT is computed into a temporary table of this session's connection first —
    /// models compute side by side, holding no write lock — then swapped in with one short
    /// write transaction.
    fn materialize(
        &self,
        table: &str,
        select: &str,
        into: &ModelTarget<'_>,
        stop: &StopSignal,
    ) -> Result<Written, DataError> {
        let target = quote_ident(table);
        let scratch = "temp.\"__phlo_model\"";
        self.session(Some(stop), |conn| {
            conn.execute_batch(&format!(
                "DROP TABLE IF EXISTS {scratch};\nCREATE TEMP TABLE \"__phlo_model\" AS {select}\n;"
            ))
            .map_err(|e| sql_err("SQLite", &e))?;
            let written = {
                let _turn = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
                let tx = conn
                    .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                    .map_err(|e| sql_err("cannot start a write transaction", &e))?;
                if let Some(step) = into.step
                    && let Some(c) = committed_in(&tx, step)?
                {
                    drop(tx);
                    conn.execute_batch(&format!("DROP TABLE IF EXISTS {scratch};"))
                        .map_err(|e| sql_err("SQLite", &e))?;
                    return Ok(Written::Already(c));
                }
                // the table's columns are read inside the write transaction: what the swap
                // matches by name is what it writes into
                let swap = match into.partition {
                    None => format!(
                        "DROP TABLE IF EXISTS main.{target};\nCREATE TABLE main.{target} AS SELECT * FROM {scratch};"
                    ),
                    Some((column, key)) => {
                        let names =
                            |cols: Option<Vec<Column>>| cols.map(|c| c.into_iter().map(|c| c.name).collect::<Vec<_>>());
                        let existing = names(describe_in(&tx, table)?);
                        let new = names(describe_temp(&tx)?).unwrap_or_default();
                        // unqualified names: the connection's only temporary table is the scratch one
                        partition_swap_sql(
                            table,
                            column,
                            key,
                            scratch,
                            existing.as_deref(),
                            &new,
                            into.on_schema_change,
                        )?
                    }
                };
                tx.execute_batch(&swap).map_err(|e| sql_err(&format!("cannot replace `{table}`"), &e))?;
                let n: i64 = tx
                    .query_row(&format!("SELECT count(*) FROM {scratch}"), [], |r| r.get(0))
                    .map_err(|e| sql_err("SQLite", &e))?;
                let n = u64::try_from(n).unwrap_or(0);
                if let Some(step) = into.step {
                    mark_in(&tx, step, n)?;
                }
                tx.commit().map_err(|e| sql_err(&format!("cannot commit `{table}`"), &e))?;
                n
            };
            conn.execute_batch(&format!("DROP TABLE IF EXISTS {scratch};")).map_err(|e| sql_err("SQLite", &e))?;
            Ok(Written::Rows(written))
        })
    }

    fn committed(&self, step: &StepMark) -> Result<Option<Committed>, DataError> {
        self.session(None, |conn| committed_in(conn, step))
    }

    fn version(&self, table: &str, partition: Option<(&str, &str)>) -> Result<Option<String>, DataError> {
        self.session(None, |conn| version_in(conn, table, partition))
    }

    fn probe(&self) -> Result<(), DataError> {
        self.query("SELECT 1").map(drop)
    }
}

impl Plugin for Warehouse {
    const NAME: &'static str = "sqlite";
    const DESCRIPTION: &'static str = "A SQLite warehouse file (WAL, one writer)";
    type Config = SqliteConfig;
    const TAGS: &'static [&'static str] = &["warehouse", "sql"];
}

impl Resource for Warehouse {
    fn create(config: SqliteConfig, ctx: &PluginContext) -> Result<Self, PluginError> {
        if config.path.trim().is_empty() {
            return Err(PluginError::with_help(
                "`resources.sqlite.path` is empty",
                "give a file path, e.g. `.phlo/warehouse.db`",
            ));
        }
        Ok(Warehouse::new(ctx.project_path("path", &config.path)?, Duration::from_millis(config.busy_timeout_ms)))
    }

    fn probe(&self) -> Result<(), PluginError> {
        QueryEngine::probe(self).map_err(|e| PluginError::msg(e.to_string()))
    }
}

phlo_core::register!(resource Warehouse, provides: [dyn TableStore, dyn QueryEngine]);

mod readonly;
pub mod runs;
mod write;

#[cfg(test)]
use write::numeric_literal;
use write::{STATE_TABLE, committed_in, mark_in, merge_in, set_state_in, write_in};

#[cfg(test)]
mod tests;
