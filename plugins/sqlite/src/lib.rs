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

/// Writes the batches of `source` into `table` (replacing it through a staging table, or
/// appending to it) inside `tx`, one prepared statement reused for every row.
fn write_in(
    tx: &rusqlite::Transaction<'_>,
    table: &str,
    columns: &[Column],
    source: &mut dyn RowBatches,
    replace: bool,
) -> Result<(u64, Option<String>), DataError> {
    let target = quote_ident(table);
    let declared: Vec<String> = columns
        .iter()
        .map(|c| {
            format!("{} {}{}", quote_ident(&c.name), sql_type(c.data_type), if c.nullable { "" } else { " NOT NULL" })
        })
        .collect();
    let staging = if replace { quote_ident(&format!("__phlo_new_{table}")) } else { target.clone() };
    if replace {
        tx.execute_batch(&format!("DROP TABLE IF EXISTS {staging}; CREATE TABLE {staging} ({});", declared.join(", ")))
            .map_err(|e| sql_err(&format!("cannot create table `{table}`"), &e))?;
    } else {
        tx.execute_batch(&format!("CREATE TABLE IF NOT EXISTS {target} ({});", declared.join(", ")))
            .map_err(|e| sql_err(&format!("cannot create table `{table}`"), &e))?;
        let existing = describe_in(tx, table)?.unwrap_or_default();
        let names = |cols: &[Column]| {
            let mut v = cols.iter().map(|c| c.name.clone()).collect::<Vec<_>>();
            v.sort();
            v
        };
        // columns are matched by name: the same set, in any order
        if names(&existing) != names(columns) {
            let list = |cols: &[Column]| cols.iter().map(|c| c.name.as_str()).collect::<Vec<_>>().join(", ");
            return Err(DataError::new(format!(
                "cannot append to `{table}`: it has columns ({}), the rows have ({})",
                list(&existing),
                list(columns)
            )));
        }
    }
    let (n, as_given) = insert_many(tx, &staging, columns, source, &|i| format!("row {i} of `{table}`"))?;
    if replace {
        tx.execute_batch(&format!("DROP TABLE IF EXISTS {target}; ALTER TABLE {staging} RENAME TO {target};"))
            .map_err(|e| sql_err(&format!("cannot replace table `{table}`"), &e))?;
    }
    // the table holds exactly the rows the source hashed: its version without reading it
    let version = match (replace && as_given, source.digest()) {
        (true, Some(d)) if d.count() == n => describe_in(tx, table)?.map(|cols| d.version(&cols)),
        _ => None,
    };
    Ok((n, version))
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

/// Whether SQLite keeps `cell` as given in a column declared as `t` (its type affinity
/// converts nothing): then the value read back hashes as the cell does.
fn kept_as_given(cell: &Cell, t: DataType) -> bool {
    match (cell, t) {
        (Cell::Null | Cell::Blob(_), _) | (Cell::Text(_), DataType::Text) => true,
        (Cell::Int(_), DataType::Integer | DataType::Boolean | DataType::Date | DataType::Timestamp) => true,
        (Cell::Bool(_), DataType::Integer | DataType::Boolean) => true,
        (Cell::Real(r), DataType::Real) => !r.is_nan(),
        // NUMERIC affinity converts text only when it reads as a number
        (Cell::Text(v), DataType::Boolean | DataType::Date | DataType::Timestamp) => !numeric_literal(v),
        _ => false,
    }
}

/// Whether text is a well-formed integer or real literal (what NUMERIC affinity converts),
/// allowing surrounding spaces; conservative: `true` whenever in doubt.
fn numeric_literal(v: &str) -> bool {
    let b = v.trim_matches(|c: char| c.is_ascii_whitespace()).as_bytes();
    let mut i = usize::from(matches!(b.first(), Some(b'+' | b'-')));
    let digits = |i: &mut usize| {
        let start = *i;
        while b.get(*i).is_some_and(u8::is_ascii_digit) {
            *i += 1;
        }
        *i - start
    };
    let mut n = digits(&mut i);
    if b.get(i) == Some(&b'.') {
        i += 1;
        n += digits(&mut i);
    }
    if n == 0 {
        return false;
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        if digits(&mut i) == 0 {
            return false;
        }
    }
    i == b.len()
}

/// Rows per multi-row `INSERT`: fewer statement runs per row, within SQLite's limit on
/// parameters.
fn rows_per_insert(width: usize) -> usize {
    (32_000 / width.max(1)).clamp(1, 64)
}

/// Inserts `source`'s rows into `target` (quoted), several rows per statement; a statement
/// that fails is rolled back by SQLite and its rows are inserted one by one, so the error
/// names the row. Also says whether every value was kept as given ([`kept_as_given`]).
fn insert_many(
    tx: &rusqlite::Transaction<'_>,
    target: &str,
    columns: &[Column],
    source: &mut dyn RowBatches,
    what: &dyn Fn(u64) -> String,
) -> Result<(u64, bool), DataError> {
    let width = columns.len();
    let k = rows_per_insert(width);
    let names = columns.iter().map(|c| quote_ident(&c.name)).collect::<Vec<_>>().join(", ");
    let row = format!("({})", vec!["?"; width].join(", "));
    let prepare = |rows: usize| {
        tx.prepare(&format!("INSERT INTO {target} ({names}) VALUES {}", vec![row.as_str(); rows].join(", ")))
            .map_err(|e| sql_err(&format!("cannot insert into {target}"), &e))
    };
    let (mut many, mut one) = (prepare(k)?, prepare(1)?);
    let types: Vec<DataType> = columns.iter().map(|c| c.data_type).collect();
    let mut batch = Vec::new();
    let (mut n, mut as_given) = (0u64, true);
    while source.next_batch(&mut batch)? {
        for chunk in batch.chunks(k) {
            if chunk.len() == k {
                let mut p = 1;
                for row in chunk {
                    for (i, cell) in row.iter().enumerate() {
                        as_given &= types.get(i).is_some_and(|t| kept_as_given(cell, *t));
                        many.raw_bind_parameter(p, Bind(cell)).map_err(|e| sql_err(&what(n + 1), &e))?;
                        p += 1;
                    }
                }
                if many.raw_execute().is_ok() {
                    n += k as u64;
                    continue;
                }
            }
            for row in chunk {
                n += 1;
                for (i, cell) in row.iter().enumerate() {
                    as_given &= types.get(i).is_some_and(|t| kept_as_given(cell, *t));
                    one.raw_bind_parameter(i + 1, Bind(cell)).map_err(|e| sql_err(&what(n), &e))?;
                }
                one.raw_execute().map_err(|e| sql_err(&what(n), &e))?;
            }
        }
    }
    Ok((n, as_given))
}

/// Upserts `rows` into `table` by the `keys` columns: the table is created when missing,
/// columns the rows add are added, and a unique index on the keys is kept.
fn merge_in(
    tx: &rusqlite::Transaction<'_>,
    table: &str,
    columns: &[Column],
    source: &mut dyn RowBatches,
    keys: &[String],
) -> Result<u64, DataError> {
    let target = quote_ident(table);
    let mut batch = Vec::new();
    // no records: nothing to merge, whatever their columns would have been
    if !source.next_batch(&mut batch)? {
        return Ok(0);
    }
    let mut key_at = Vec::with_capacity(keys.len());
    for k in keys {
        let Some(i) = columns.iter().position(|c| &c.name == k) else {
            return Err(DataError::new(format!(
                "cannot merge into `{table}`: the records have no key column `{k}` (they have {})",
                columns.iter().map(|c| c.name.as_str()).collect::<Vec<_>>().join(", ")
            )));
        };
        key_at.push((i, k));
    }
    let declared: Vec<String> =
        columns.iter().map(|c| format!("{} {}", quote_ident(&c.name), sql_type(c.data_type))).collect();
    tx.execute_batch(&format!("CREATE TABLE IF NOT EXISTS {target} ({});", declared.join(", ")))
        .map_err(|e| sql_err(&format!("cannot create table `{table}`"), &e))?;
    let existing = describe_in(tx, table)?.unwrap_or_default();
    for c in columns.iter().filter(|c| !existing.iter().any(|e| e.name == c.name)) {
        tx.execute_batch(&format!(
            "ALTER TABLE {target} ADD COLUMN {} {};",
            quote_ident(&c.name),
            sql_type(c.data_type)
        ))
        .map_err(|e| sql_err(&format!("cannot add column `{}` to `{table}`", c.name), &e))?;
    }
    let key_list = keys.iter().map(|k| quote_ident(k)).collect::<Vec<_>>().join(", ");
    tx.execute_batch(&format!(
        "CREATE UNIQUE INDEX IF NOT EXISTS {} ON {target} ({key_list});",
        quote_ident(&format!("__phlo_key_{table}"))
    ))
    .map_err(|e| {
        sql_err(&format!("cannot merge into `{table}`: its rows are not unique by ({})", keys.join(", ")), &e)
    })?;
    let names = columns.iter().map(|c| quote_ident(&c.name)).collect::<Vec<_>>().join(", ");
    let placeholders = vec!["?"; columns.len()].join(", ");
    let updates: Vec<String> = columns
        .iter()
        .filter(|c| !keys.contains(&c.name))
        .map(|c| format!("{0} = excluded.{0}", quote_ident(&c.name)))
        .collect();
    let on_conflict =
        if updates.is_empty() { String::from("DO NOTHING") } else { format!("DO UPDATE SET {}", updates.join(", ")) };
    let mut stmt = tx
        .prepare(&format!(
            "INSERT INTO {target} ({names}) VALUES ({placeholders}) ON CONFLICT ({key_list}) {on_conflict}"
        ))
        .map_err(|e| sql_err(&format!("cannot merge into `{table}`"), &e))?;
    let mut n = 0u64;
    loop {
        for row in &batch {
            n += 1;
            if let Some((_, k)) = key_at.iter().find(|(i, _)| matches!(row.get(*i), None | Some(Cell::Null))) {
                return Err(DataError::new(format!("cannot merge into `{table}`: record {n} has no `{k}`")));
            }
            let what = || format!("record {n} of `{table}`");
            for (i, cell) in row.iter().enumerate() {
                stmt.raw_bind_parameter(i + 1, Bind(cell)).map_err(|e| sql_err(&what(), &e))?;
            }
            stmt.raw_execute().map_err(|e| sql_err(&what(), &e))?;
        }
        if !source.next_batch(&mut batch)? {
            return Ok(n);
        }
    }
}

/// Where incremental state lives, next to the data it describes.
const STATE_TABLE: &str = "_phlo_state";

fn set_state_in(tx: &rusqlite::Transaction<'_>, key: &str, value: &str) -> Result<(), DataError> {
    tx.execute_batch(&format!(
        "CREATE TABLE IF NOT EXISTS {STATE_TABLE} (key TEXT PRIMARY KEY, value TEXT NOT NULL, updated_at TEXT NOT NULL);"
    ))
    .map_err(|e| sql_err("cannot create the state table", &e))?;
    tx.execute(
        &format!(
            "INSERT INTO {STATE_TABLE} (key, value, updated_at) VALUES (?1, ?2, ?3)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at"
        ),
        rusqlite::params![key, value, chrono::Utc::now().to_rfc3339()],
    )
    .map_err(|e| sql_err("cannot write the state", &e))?;
    Ok(())
}

/// Where the warehouse records the run steps whose writes it committed (see [`StepMark`]).
const STEPS_TABLE: &str = "_phlo_steps";

/// The step's committed write, if any (the table may not exist yet).
fn committed_in(conn: &Connection, step: &StepMark) -> Result<Option<Committed>, DataError> {
    if describe_in(conn, STEPS_TABLE)?.is_none() {
        return Ok(None);
    }
    conn.query_row(
        &format!(
            "SELECT attempt, rows, committed_at FROM {STEPS_TABLE} WHERE run_id = ?1 AND asset = ?2 AND partition = ?3"
        ),
        rusqlite::params![step.run_id, step.asset, step.partition.as_deref().unwrap_or("")],
        |r| {
            Ok(Committed {
                attempt: r.get::<_, i64>(0)?.max(0) as u32,
                rows: r.get::<_, i64>(1)?.max(0) as u64,
                at: r.get(2)?,
            })
        },
    )
    .optional()
    .map_err(|e| sql_err("cannot read the committed steps", &e))
}

/// Records that `step` wrote `rows`, inside the write's transaction.
fn mark_in(tx: &rusqlite::Transaction<'_>, step: &StepMark, rows: u64) -> Result<(), DataError> {
    tx.execute_batch(&format!(
        "CREATE TABLE IF NOT EXISTS {STEPS_TABLE} (run_id TEXT NOT NULL, asset TEXT NOT NULL, partition TEXT NOT NULL,
           attempt INTEGER NOT NULL, rows INTEGER NOT NULL, committed_at TEXT NOT NULL,
           PRIMARY KEY (run_id, asset, partition)) WITHOUT ROWID;"
    ))
    .map_err(|e| sql_err("cannot create the committed steps table", &e))?;
    tx.execute(
        &format!("INSERT INTO {STEPS_TABLE} (run_id, asset, partition, attempt, rows, committed_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)"),
        rusqlite::params![
            step.run_id,
            step.asset,
            step.partition.as_deref().unwrap_or(""),
            step.attempt,
            i64::try_from(rows).unwrap_or(i64::MAX),
            chrono::Utc::now().to_rfc3339()
        ],
    )
    .map_err(|e| sql_err("cannot record the committed step", &e))?;
    Ok(())
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

#[cfg(test)]
mod tests;
