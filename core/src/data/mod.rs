//! Capability traits that cross plugin boundaries: where tables live ([`TableStore`]) and
//! how they are queried ([`QueryEngine`]), with the typed rows both exchange.
//!
//! A resource provider declares that it serves them (`provides: [dyn TableStore]`); an
//! asset that requires them asks its run context by type:
//!
//! ```
//! use std::sync::Arc;
//! use phlo_core::data::QueryEngine;
//! use phlo_core::spec::{RunContext, RunError};
//! fn engine(ctx: &RunContext) -> Result<Arc<dyn QueryEngine>, RunError> {
//!     ctx.capability::<dyn QueryEngine>()
//! }
//! ```

use std::fmt;

use serde::Serialize;

pub mod batches;
pub mod digest;
mod json;

pub use json::{JsonTyping, LineError, provisional, rows_from_json, settle};

/// The type of a column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, serde::Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum DataType {
    /// 64-bit integers.
    Integer,
    /// 64-bit floats.
    Real,
    /// UTF-8 text.
    Text,
    /// `true` / `false`.
    Boolean,
    /// A calendar date, `YYYY-MM-DD`.
    Date,
    /// A UTC timestamp, RFC 3339.
    Timestamp,
}

impl DataType {
    /// The lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            DataType::Integer => "integer",
            DataType::Real => "real",
            DataType::Text => "text",
            DataType::Boolean => "boolean",
            DataType::Date => "date",
            DataType::Timestamp => "timestamp",
        }
    }
}

/// One value.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Cell {
    /// No value.
    Null,
    /// An integer (also booleans as 0/1 in stores without booleans).
    Int(i64),
    /// A float.
    Real(f64),
    /// Text (dates and timestamps are text in their canonical form).
    Text(String),
    /// A boolean.
    Bool(bool),
    /// Bytes (SQLite's BLOB): base64 in JSON, `\x` and hex digits as text.
    Blob(#[serde(serialize_with = "blob_base64")] Vec<u8>),
}

fn blob_base64<S: serde::Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
    use base64::Engine as _;
    s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(bytes))
}

/// A real as text that reads back as a real: `7770.0`, never `7770` (as SQLite's CLI,
/// pandas and dbt write it); the shortest text that reads back as the same number.
pub fn real_text(r: f64) -> String {
    if r.is_finite() {
        let t = format!("{r:?}");
        // `{:?}` writes `1e300` for large ones: keep them readable as reals everywhere
        if t.contains(['.', 'e', 'E']) { t } else { format!("{t}.0") }
    } else if r.is_nan() {
        String::from("NaN")
    } else if r > 0.0 {
        String::from("Infinity")
    } else {
        String::from("-Infinity")
    }
}

/// A decimal number's text as (negative, significant digits, exponent): `0.0120` and `1.2e-2`
/// are both `(false, "12", -1)` (the value is `0.12 × 10^-1`); `None` for text that is not a
/// plain decimal number.
fn decimal(text: &str) -> Option<(bool, String, i64)> {
    let (negative, rest) = match text.as_bytes().first()? {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    let (mantissa, exponent) = match rest.find(['e', 'E']) {
        Some(i) => (&rest[..i], rest[i + 1..].parse::<i64>().ok()?),
        None => (rest, 0),
    };
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if whole.is_empty() && fraction.is_empty() || !(whole.bytes().chain(fraction.bytes()).all(|b| b.is_ascii_digit())) {
        return None;
    }
    let digits: String = whole.chars().chain(fraction.chars()).collect();
    let leading = digits.len() - digits.trim_start_matches('0').len();
    let significant = digits.trim_start_matches('0').trim_end_matches('0').to_string();
    if significant.is_empty() {
        return Some((false, String::new(), 0));
    }
    let point = i64::try_from(whole.len()).ok()? - i64::try_from(leading).ok()? + exponent;
    Some((negative, significant, point))
}

/// `text` as a real, only when no digit is lost: the shortest decimal that reads back as the
/// same double is the number written (`1.5`, `0.1`, `7770`; never `12345678901234567.5`, nor
/// `9007199254740993`, which a double cannot hold). Text that must keep every digit is
/// stored as text.
pub fn exact_real(text: &str) -> Option<f64> {
    let f = text.parse::<f64>().ok().filter(|f| f.is_finite())?;
    let written = decimal(text)?;
    let shortest = decimal(&format!("{f:e}"))?;
    (written == shortest).then_some(f)
}

impl fmt::Display for Cell {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Cell::Null => Ok(()),
            Cell::Int(i) => write!(f, "{i}"),
            Cell::Real(r) => f.write_str(&real_text(*r)),
            Cell::Text(t) => f.write_str(t),
            Cell::Bool(b) => write!(f, "{b}"),
            Cell::Blob(b) => {
                f.write_str("\\x")?;
                for byte in b {
                    write!(f, "{byte:02x}")?;
                }
                Ok(())
            }
        }
    }
}

/// A column.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Column {
    /// Its name.
    pub name: String,
    /// Its type.
    pub data_type: DataType,
    /// Whether it may hold nulls.
    pub nullable: bool,
}

impl Column {
    /// A nullable column.
    pub fn new(name: impl Into<String>, data_type: DataType) -> Self {
        Self { name: name.into(), data_type, nullable: true }
    }
}

/// Typed rows: a schema and the values, row by row.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Rows {
    /// The columns.
    pub columns: Vec<Column>,
    /// The values; every row has one cell per column.
    pub rows: Vec<Vec<Cell>>,
}

impl Rows {
    /// Rows with these columns and no data.
    pub fn new(columns: Vec<Column>) -> Self {
        Self { columns, rows: Vec::new() }
    }

    /// How many rows.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// A row as a JSON object (for check samples and exports).
    pub fn row_json(&self, i: usize) -> serde_json::Value {
        let mut m = serde_json::Map::new();
        for (c, v) in self.columns.iter().zip(&self.rows[i]) {
            m.insert(c.name.clone(), serde_json::to_value(v).unwrap_or(serde_json::Value::Null));
        }
        serde_json::Value::Object(m)
    }
}

/// An error from a store or an engine, with the engine's own message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct DataError {
    /// What went wrong (the engine's message included).
    pub message: String,
    /// The work was stopped by its [`StopSignal`] (a timeout or a cancelled run); nothing
    /// was written.
    pub interrupted: bool,
}

impl DataError {
    /// An error with a message.
    pub fn new(message: impl Into<String>) -> Self {
        Self { message: message.into(), interrupted: false }
    }

    /// The work was stopped by its stop signal.
    pub fn interrupted(message: impl Into<String>) -> Self {
        Self { message: message.into(), interrupted: true }
    }
}

/// Says whether running work must stop (its attempt timed out or the run was cancelled).
/// Engines check it while a statement runs and abandon the statement, writing nothing.
pub type StopSignal = std::sync::Arc<dyn Fn() -> bool + Send + Sync>;

/// How rows are written to a table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteMode {
    /// The table becomes these rows.
    Replace,
    /// The rows are added.
    Append,
    /// Upsert by these key columns: a row whose key is in the table replaces that row.
    Merge(Vec<String>),
}

/// One run step's identity in the store it writes to: the run, the asset and the partition.
/// A write that carries it records it in the same transaction as its rows, and a second write
/// with the same mark is not applied: a step's effect on the warehouse happens once per run,
/// whatever resumes, retries, crashes or concurrent processes do (the attempt that wrote is
/// kept for the report).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepMark {
    /// The run's id (shared by every attempt and process of the run).
    pub run_id: String,
    /// The asset key.
    pub asset: String,
    /// The partition key, if any.
    pub partition: Option<String>,
    /// The attempt writing.
    pub attempt: u32,
}

/// What a step's earlier attempt committed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Committed {
    /// The attempt that wrote.
    pub attempt: u32,
    /// The rows it wrote.
    pub rows: u64,
    /// When (RFC 3339).
    pub at: String,
}

/// What a write did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Written {
    /// It wrote this many rows.
    Rows(u64),
    /// It wrote this many rows and knows the version of the table it left (a replace whose
    /// rows were hashed as they streamed; see [`digest`]).
    Versioned {
        /// The rows written.
        rows: u64,
        /// The table's data version.
        version: String,
    },
    /// Nothing: its step was committed before (by this attempt's predecessor).
    Already(Committed),
}

impl Written {
    /// The rows the step's write holds, whichever attempt made it.
    pub fn rows(&self) -> u64 {
        match self {
            Written::Rows(n) | Written::Versioned { rows: n, .. } => *n,
            Written::Already(c) => c.rows,
        }
    }
}

/// What a write commits together with its rows.
#[derive(Debug, Clone, Copy, Default)]
pub struct Commit<'a> {
    /// A state entry (`key`, `value`) that advances only with the rows (an incremental cursor).
    pub state: Option<(&'a str, &'a str)>,
    /// The step writing: recorded with the rows; an already recorded step writes nothing.
    pub step: Option<&'a StepMark>,
}

/// Where tables live.
pub trait TableStore: Send + Sync {
    /// Creates `table` (replacing it if it exists) with `rows`, all or nothing.
    ///
    /// # Errors
    /// The store refused (nothing is written).
    fn replace(&self, table: &str, rows: &Rows) -> Result<u64, DataError>;

    /// Appends `rows` to `table`, creating it when missing, all or nothing.
    ///
    /// # Errors
    /// The store refused, or the columns do not match (nothing is written).
    fn append(&self, table: &str, rows: &Rows) -> Result<u64, DataError>;

    /// [`replace`](Self::replace) or [`append`](Self::append) that gives up, writing nothing,
    /// as soon as `stop` says so. The default cannot be stopped once started.
    ///
    /// # Errors
    /// As `replace` / `append`; [`DataError::interrupted`] when stopped.
    fn write_until(&self, table: &str, rows: &Rows, replace: bool, stop: &StopSignal) -> Result<u64, DataError> {
        if stop() {
            return Err(DataError::interrupted(format!("the write of `{table}` was stopped")));
        }
        if replace { self.replace(table, rows) } else { self.append(table, rows) }
    }

    /// Writes `rows` to `table` as `mode` says, all or nothing, stopping (writing nothing) as
    /// soon as `stop` says so; in the same transaction it sets `commit.state` (an incremental
    /// cursor, see [`TableStore::state`]) and records `commit.step`, so that the state advances
    /// and the step counts as written only if the rows are committed. A write whose step is
    /// already recorded as committed is not applied again: it returns
    /// [`Written::Already`] (a resumed, retried or concurrent attempt of the same run step).
    /// The default writes without state or step and cannot merge.
    ///
    /// # Errors
    /// As `write_until`; a store that cannot merge or keep state says so.
    fn write_rows(
        &self,
        table: &str,
        rows: &Rows,
        mode: &WriteMode,
        commit: &Commit<'_>,
        stop: &StopSignal,
    ) -> Result<Written, DataError> {
        match (mode, commit.state) {
            (WriteMode::Replace, None) => self.write_until(table, rows, true, stop).map(Written::Rows),
            (WriteMode::Append, None) => self.write_until(table, rows, false, stop).map(Written::Rows),
            _ => Err(DataError::new("this table store cannot merge rows by key or keep incremental state")),
        }
    }

    /// [`write_rows`](Self::write_rows) for rows that stream: `source` is drained inside the
    /// write's one transaction, batch by batch, so the rows are never all in memory. An error
    /// from `source` rolls the write back. `Replace` and `Append` stream; the default (and
    /// `Merge`) gathers the rows first.
    ///
    /// # Errors
    /// As `write_rows`, and `source`'s error (nothing is written).
    fn write_batches(
        &self,
        table: &str,
        columns: &[Column],
        source: &mut dyn batches::RowBatches,
        mode: &WriteMode,
        commit: &Commit<'_>,
        stop: &StopSignal,
    ) -> Result<Written, DataError> {
        let mut rows = Rows::new(columns.to_vec());
        let mut batch = Vec::new();
        while source.next_batch(&mut batch)? {
            rows.rows.append(&mut batch);
        }
        self.write_rows(table, &rows, mode, commit, stop)
    }

    /// Whether `step`'s write is committed in this store (by [`TableStore::write_rows`] or
    /// [`QueryEngine::materialize`]), and by which attempt; `None` when it is not, or when the
    /// store does not record steps.
    ///
    /// # Errors
    /// The store cannot be read.
    fn committed(&self, step: &StepMark) -> Result<Option<Committed>, DataError> {
        let _ = step;
        Ok(None)
    }

    /// A state entry written by [`TableStore::write_rows`] (an incremental cursor), or
    /// `None` when there is none.
    ///
    /// # Errors
    /// The store cannot be read.
    fn state(&self, key: &str) -> Result<Option<String>, DataError> {
        let _ = key;
        Ok(None)
    }

    /// The columns of `table`, or `None` when it does not exist.
    ///
    /// # Errors
    /// The store cannot be read.
    fn describe(&self, table: &str) -> Result<Option<Vec<Column>>, DataError>;

    /// The version of the data in `table` — or in its rows of one partition, `(column,
    /// key)` — that changes when the rows do (a count and a content hash); `None` when the
    /// store cannot tell. Recorded with each materialization (see `phlo status`).
    ///
    /// # Errors
    /// The store cannot be read.
    fn version(&self, table: &str, partition: Option<(&str, &str)>) -> Result<Option<String>, DataError> {
        let _ = (table, partition);
        Ok(None)
    }

    /// Checks connectivity cheaply.
    ///
    /// # Errors
    /// What is wrong.
    fn probe(&self) -> Result<(), DataError>;
}

crate::capability!(dyn TableStore = "table_store");

/// Runs SQL.
pub trait QueryEngine: Send + Sync {
    /// Runs a query and returns its rows.
    ///
    /// # Errors
    /// The engine's error (syntax, unknown table, …).
    fn query(&self, sql: &str) -> Result<Rows, DataError>;

    /// Runs a statement and returns the number of rows it changed.
    ///
    /// # Errors
    /// The engine's error.
    fn execute(&self, sql: &str) -> Result<u64, DataError>;

    /// Checks that `sql` is one statement this engine can run — syntax, tables, columns —
    /// without running it. Errors point into `sql` itself (line and column), so callers
    /// can report them against what the user wrote. The default accepts everything.
    ///
    /// # Errors
    /// What is wrong with the statement.
    fn validate(&self, sql: &str) -> Result<(), DataError> {
        let _ = sql;
        Ok(())
    }

    /// Replaces `table` with the rows of `select` — or, with `partition: Some((column, key))`,
    /// replaces the rows of that partition, tagged in `column` — all or nothing, stopping
    /// (and changing nothing) as soon as `stop` says so. Returns the rows written. With a
    /// `step`, the step is recorded as committed in the same transaction, and a step already
    /// committed is not applied again ([`Written::Already`]). The default composes
    /// [`execute_until`](Self::execute_until) and records no step; engines override it to
    /// compute outside their write lock.
    ///
    /// # Errors
    /// The engine's error; [`DataError::interrupted`] when stopped.
    fn materialize(
        &self,
        table: &str,
        select: &str,
        into: &ModelTarget<'_>,
        stop: &StopSignal,
    ) -> Result<Written, DataError> {
        let target = quote_ident(table);
        let staging = quote_ident(&format!("__phlo_new_{table}"));
        let (sql, count) = match into.partition {
            None => (
                format!(
                    "DROP TABLE IF EXISTS {staging};\nCREATE TABLE {staging} AS {select}\n;\n\
                     DROP TABLE IF EXISTS {target};\nALTER TABLE {staging} RENAME TO {target};"
                ),
                format!("SELECT count(*) FROM {target}"),
            ),
            Some((column, key)) => {
                self.execute_until(
                    &format!("DROP TABLE IF EXISTS {staging};\nCREATE TABLE {staging} AS {select}\n;"),
                    stop,
                )?;
                let names = |sql: &str| -> Result<Vec<String>, DataError> {
                    Ok(self.query_until(sql, stop)?.columns.into_iter().map(|c| c.name).collect())
                };
                let new = names(&format!("SELECT * FROM {staging} LIMIT 0"))?;
                let existing = names(&format!("SELECT * FROM {target} LIMIT 0")).ok();
                let swap =
                    partition_swap_sql(table, column, key, &staging, existing.as_deref(), &new, into.on_schema_change)?;
                (
                    format!("{swap}\nDROP TABLE {staging};"),
                    format!(
                        "SELECT count(*) FROM {target} WHERE {} = '{}'",
                        quote_ident(column),
                        key.replace('\'', "''")
                    ),
                )
            }
        };
        self.execute_until(&sql, stop)?;
        match self.query_until(&count, stop)?.rows.first().and_then(|r| r.first()) {
            Some(Cell::Int(n)) => Ok(Written::Rows(u64::try_from(*n).unwrap_or(0))),
            _ => Ok(Written::Rows(0)),
        }
    }

    /// As [`TableStore::committed`], for the steps this engine materializes.
    ///
    /// # Errors
    /// The engine cannot be read.
    fn committed(&self, step: &StepMark) -> Result<Option<Committed>, DataError> {
        let _ = step;
        Ok(None)
    }

    /// [`query`](Self::query) that stops as soon as `stop` says so. The default cannot be
    /// stopped once started.
    ///
    /// # Errors
    /// The engine's error; [`DataError::interrupted`] when stopped.
    fn query_until(&self, sql: &str, stop: &StopSignal) -> Result<Rows, DataError> {
        if stop() {
            return Err(DataError::interrupted("the query was stopped"));
        }
        self.query(sql)
    }

    /// [`execute`](Self::execute) that stops — rolling back, so nothing changes — as soon as
    /// `stop` says so. The default cannot be stopped once started.
    ///
    /// # Errors
    /// The engine's error; [`DataError::interrupted`] when stopped.
    fn execute_until(&self, sql: &str, stop: &StopSignal) -> Result<u64, DataError> {
        if stop() {
            return Err(DataError::interrupted("the statement was stopped"));
        }
        self.execute(sql)
    }

    /// As [`TableStore::version`], for the tables this engine writes.
    ///
    /// # Errors
    /// The engine cannot read the table.
    fn version(&self, table: &str, partition: Option<(&str, &str)>) -> Result<Option<String>, DataError> {
        let _ = (table, partition);
        Ok(None)
    }

    /// Checks connectivity cheaply.
    ///
    /// # Errors
    /// What is wrong.
    fn probe(&self) -> Result<(), DataError>;
}

crate::capability!(dyn QueryEngine = "query_engine");

/// The column in which a table that holds several partitions (a partitioned SQL model's)
/// tags each row with its partition key.
pub const PARTITION_COLUMN: &str = "partition_key";

/// The table an asset is stored in unless it says otherwise: its key with `.` → `_`
/// (`raw.orders` → `raw_orders`), so SQL can name it without quoting.
pub fn table_name(asset_key: &str) -> String {
    asset_key.replace('.', "_")
}

/// What a partitioned model does when a partition's SELECT has other columns than its table
/// (`on_schema_change`, as dbt's option of that name for incremental models).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum OnSchemaChange {
    /// The partition fails, naming the columns added and missing; nothing is written.
    #[default]
    Fail,
    /// Columns the SELECT adds are added to the table (null in the other partitions);
    /// columns it lacks are null in this partition's rows.
    AppendNewColumns,
}

/// Where a model's rows go.
#[derive(Debug, Clone, Copy, Default)]
pub struct ModelTarget<'a> {
    /// `(column, key)`: only that partition's rows are replaced, tagged with `key` in `column`.
    pub partition: Option<(&'a str, &'a str)>,
    /// The step writing: recorded with the rows; an already recorded step writes nothing.
    pub step: Option<&'a StepMark>,
    /// What a partition whose columns differ from the table's does.
    pub on_schema_change: OnSchemaChange,
}

/// The statements that replace one partition of `table` with the rows of `source` (a quoted
/// table name), tagged with `key` in `column`. Columns are matched **by name**, never by
/// position: `existing` (the table's columns, `None` when it does not exist yet) and `new`
/// (the source's) must hold the same names in any order, unless `policy` allows new ones.
///
/// # Errors
/// The column sets differ and `policy` is `fail`, or the source has a column named `column`.
pub fn partition_swap_sql(
    table: &str,
    column: &str,
    key: &str,
    source: &str,
    existing: Option<&[String]>,
    new: &[String],
    policy: OnSchemaChange,
) -> Result<String, DataError> {
    if new.iter().any(|c| c == column) {
        return Err(DataError::new(format!(
            "the SELECT has a column named `{column}`, which holds the partition key of `{table}`; rename it"
        )));
    }
    let target = quote_ident(table);
    let (qcol, qkey) = (quote_ident(column), key.replace('\'', "''"));
    let mut sql = String::new();
    match existing {
        None => sql.push_str(&format!("CREATE TABLE {target} AS SELECT '' AS {qcol}, * FROM {source} WHERE 0;\n")),
        Some(existing) => {
            let had: Vec<&String> = existing.iter().filter(|c| *c != column).collect();
            let added: Vec<&String> = new.iter().filter(|c| !had.contains(c)).collect();
            let missing: Vec<&String> = had.iter().copied().filter(|c| !new.contains(c)).collect();
            if !added.is_empty() || !missing.is_empty() {
                let list = |v: &[&String]| v.iter().map(|c| format!("`{c}`")).collect::<Vec<_>>().join(", ");
                let mut what = Vec::new();
                if !added.is_empty() {
                    what.push(format!("adds {}", list(&added)));
                }
                if !missing.is_empty() {
                    what.push(format!("lacks {}", list(&missing)));
                }
                if policy == OnSchemaChange::Fail {
                    return Err(DataError::new(format!(
                        "the columns changed: partition `{key}`'s SELECT {} compared with the table `{table}` \
                         (on_schema_change: fail); set `on_schema_change: append_new_columns` on the asset to \
                         add new columns, or drop the table to rebuild every partition",
                        what.join(" and ")
                    )));
                }
                for c in added {
                    sql.push_str(&format!("ALTER TABLE {target} ADD COLUMN {};\n", quote_ident(c)));
                }
            }
        }
    }
    let names = new.iter().map(|c| quote_ident(c)).collect::<Vec<_>>().join(", ");
    sql.push_str(&format!(
        "DELETE FROM {target} WHERE {qcol} = '{qkey}';\n\
         INSERT INTO {target} ({qcol}, {names}) SELECT '{qkey}', {names} FROM {source};"
    ));
    Ok(sql)
}

/// Quotes an SQL identifier (`"name"`, inner quotes doubled).
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reals_are_exact_or_not_reals() {
        for (text, exact) in [
            ("1.5", true),
            ("0.1", true),
            ("-0.0120", true),
            ("1e3", true),
            ("7770", true),
            ("7770.0", true),
            ("12345678901234567.5", false),
            ("9007199254740993", false),
            ("9007199254740992", true),
            ("18446744073709551615", false),
            ("0.30000000000000004", true),
            ("0.300000000000000004", false),
            ("abc", false),
            ("1e400", false),
        ] {
            assert_eq!(exact_real(text).is_some(), exact, "{text}");
        }
        assert_eq!(real_text(7770.0), "7770.0");
        assert_eq!(real_text(1.5), "1.5");
        assert_eq!(real_text(1e300), "1e300");
    }
}
