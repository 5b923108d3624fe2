//! Check kinds compiled to SQL, each a plugin with its own typed config, run through the
//! asset's resolved `query_engine` against its table (`table:` in the check, else the
//! asset's table).
//!
//! | kind | keys | a violation is |
//! | --- | --- | --- |
//! | `not_null` | `column` | a row whose column is null |
//! | `unique` | `column` | a row whose (non-null) value appears more than once |
//! | `accepted_values` | `column`, `values` | a row whose value is not listed |
//! | `range` | `column`, `min`, `max` | a row below `min` or above `max` |
//! | `row_count` | `min`, `max` | the table having too few or too many rows |
//! | `freshness` | `column`, `max_age` (`24h`) | the newest timestamp being older than that |
//! | `sql` | `query` | a row the query returns |
//!
//! An unknown key, a missing key or a wrong type is an error when the project loads, with
//! its `file:line:col`. A check that cannot be evaluated (a missing column, a broken query)
//! reports "could not run", never "failed".

use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use phlo_core::config::parse_duration;
use phlo_core::data::{Cell, QueryEngine, quote_ident};
use phlo_core::plugin::{CheckContext, CheckKind, Plugin, PluginError};
use phlo_core::spec::{Finding, MAX_SAMPLES_SQL, RunContext, TableRef};
use schemars::JsonSchema;
use serde::Deserialize;

/// Check kinds of this crate.
pub const KINDS: &[&str] = &["not_null", "unique", "accepted_values", "range", "row_count", "freshness", "sql"];

fn count(ctx: &RunContext, engine: &dyn QueryEngine, sql: &str) -> Result<u64, String> {
    let rows = engine.query_until(sql, &ctx.stop_signal()).map_err(stopped)?;
    match rows.rows.first().and_then(|r| r.first()) {
        Some(Cell::Int(n)) => Ok(u64::try_from(*n).unwrap_or(0)),
        Some(Cell::Null) | None => Ok(0),
        Some(other) => Err(format!("expected a count, got `{other}`")),
    }
}

/// A check's query stopped by its stop signal (a timeout, Ctrl-C) says so.
fn stopped(e: phlo_core::data::DataError) -> String {
    if e.interrupted {
        String::from("the check was stopped before it finished (a timeout or a cancelled run)")
    } else {
        e.message
    }
}

fn samples(ctx: &RunContext, engine: &dyn QueryEngine, sql: &str) -> Vec<serde_json::Value> {
    engine
        .query_until(&format!("{sql} LIMIT {MAX_SAMPLES_SQL}"), &ctx.stop_signal())
        .map(|r| (0..r.len()).map(|i| r.row_json(i)).collect())
        .unwrap_or_default()
}

fn engine(ctx: &RunContext) -> Result<std::sync::Arc<dyn QueryEngine>, String> {
    ctx.capability::<dyn QueryEngine>().map_err(|e| e.message)
}

/// Why a check's query failed, with the table's columns when a column or the table is
/// missing (the usual reason a check cannot run).
fn explain(engine: &dyn QueryEngine, table: &str, message: String) -> String {
    if message.contains("no such column") {
        match engine.query(&format!("SELECT * FROM {table} LIMIT 0")) {
            Ok(rows) => {
                let names: Vec<&str> = rows.columns.iter().map(|c| c.name.as_str()).collect();
                format!("{message}; {table} has the columns {}", names.join(", "))
            }
            Err(_) => message,
        }
    } else if message.contains("no such table") {
        format!("{message}; the check reads {table} (set `table:` on the check to read another)")
    } else {
        message
    }
}

/// The rows a check reads: a table (quoted) — and, for a check of one partition of an asset
/// whose table tags its partitions, only that partition's rows.
#[derive(Debug)]
struct Scope {
    table: String,
    partition_column: Option<String>,
    /// The check's `table:`, when it reads another table than its asset's.
    other: Option<String>,
}

impl Scope {
    /// The check's `table:`, else the asset's own table (read per partition).
    fn of(own: Option<&String>, ctx: &CheckContext) -> Self {
        match own {
            Some(t) => Scope { table: quote_ident(t), partition_column: None, other: Some(t.clone()) },
            None => {
                Scope { table: quote_ident(&ctx.table), partition_column: ctx.partition_column.clone(), other: None }
            }
        }
    }

    /// The other table it reads, for the asset's dependencies.
    fn reads(&self) -> Vec<(&'static str, TableRef)> {
        self.other.iter().map(|t| ("table", TableRef { name: t.clone(), line: 0, column: 0 })).collect()
    }

    /// What to read `FROM` for this run's partition.
    fn source(&self, ctx: &RunContext) -> String {
        match (&self.partition_column, &ctx.partition) {
            (Some(column), Some(key)) => {
                format!("(SELECT * FROM {} WHERE {} = '{}')", self.table, quote_ident(column), key.replace('\'', "''"))
            }
            _ => self.table.clone(),
        }
    }
}

/// Rows of the scope violating `condition` (given the source it reads), out of all its rows,
/// with samples.
fn by_rows(ctx: &RunContext, scope: &Scope, condition: impl Fn(&str) -> String) -> Result<Finding, String> {
    let engine = engine(ctx)?;
    let table = &scope.table;
    let source = scope.source(ctx);
    let total = count(ctx, engine.as_ref(), &format!("SELECT count(*) FROM {source}"))
        .map_err(|e| explain(engine.as_ref(), table, e))?;
    let bad = format!("SELECT * FROM {source} WHERE {}", condition(&source));
    let violations = count(ctx, engine.as_ref(), &format!("SELECT count(*) FROM ({bad})"))
        .map_err(|e| explain(engine.as_ref(), table, e))?;
    let mut f = Finding::new(violations, total);
    if violations > 0 {
        f = f.with_samples(samples(ctx, engine.as_ref(), &bad));
    }
    Ok(f)
}

/// Declares a check kind: its unit of state, name, description, config and build.
macro_rules! kind {
    ($ty:ident, $name:literal, $doc:literal, $config:ty $(, no_expand: $ne:expr)?) => {
        #[doc = $doc]
        #[derive(Debug)]
        pub struct $ty {
            scope: Scope,
            condition: String,
        }
        impl Plugin for $ty {
            const NAME: &'static str = $name;
            const DESCRIPTION: &'static str = $doc;
            type Config = $config;
            $(const NO_EXPAND: &'static [&'static str] = $ne;)?
            const TAGS: &'static [&'static str] = &["quality", "sql"];
        }
        phlo_core::register!(check $ty, requires: [dyn QueryEngine]);
    };
}

/// `{type: not_null | unique, column: …}`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ColumnConfig {
    /// The column checked.
    pub column: String,
    /// The table checked, if not the asset's own.
    #[serde(default)]
    pub table: Option<String>,
}

kind!(NotNull, "not_null", "Rows whose column is null", ColumnConfig);
impl CheckKind for NotNull {
    fn reads(&self) -> Vec<(&'static str, TableRef)> {
        self.scope.reads()
    }
    fn build(c: ColumnConfig, ctx: &CheckContext) -> Result<Self, PluginError> {
        Ok(Self { scope: Scope::of(c.table.as_ref(), ctx), condition: format!("{} IS NULL", quote_ident(&c.column)) })
    }
    fn evaluate(&self, ctx: &RunContext) -> Result<Finding, String> {
        by_rows(ctx, &self.scope, |_| self.condition.clone())
    }
}

kind!(Unique, "unique", "Rows whose non-null value appears more than once", ColumnConfig);
impl CheckKind for Unique {
    fn reads(&self) -> Vec<(&'static str, TableRef)> {
        self.scope.reads()
    }
    fn build(c: ColumnConfig, ctx: &CheckContext) -> Result<Self, PluginError> {
        // the condition holds the column; the rows it is unique among are the scope's
        Ok(Self { scope: Scope::of(c.table.as_ref(), ctx), condition: quote_ident(&c.column) })
    }
    fn evaluate(&self, ctx: &RunContext) -> Result<Finding, String> {
        let col = &self.condition;
        by_rows(ctx, &self.scope, |source| {
            format!("{col} IN (SELECT {col} FROM {source} WHERE {col} IS NOT NULL GROUP BY {col} HAVING count(*) > 1)")
        })
    }
}

/// A value of an `accepted_values` list.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum Literal {
    /// A boolean (stored as 0/1).
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A number.
    Real(f64),
    /// Text.
    Text(String),
}

/// `{type: accepted_values, column: …, values: [...]}`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AcceptedValuesConfig {
    /// The column checked.
    pub column: String,
    /// The values allowed (nulls are never violations).
    pub values: Vec<Literal>,
    /// The table checked, if not the asset's own.
    #[serde(default)]
    pub table: Option<String>,
}

kind!(AcceptedValues, "accepted_values", "Rows whose value is not in a list", AcceptedValuesConfig);
impl CheckKind for AcceptedValues {
    fn reads(&self) -> Vec<(&'static str, TableRef)> {
        self.scope.reads()
    }
    fn build(c: AcceptedValuesConfig, ctx: &CheckContext) -> Result<Self, PluginError> {
        if c.values.is_empty() {
            return Err(PluginError::with_help("`values` is empty", "list the accepted values: `values: [a, b]`"));
        }
        let list: Vec<String> = c
            .values
            .iter()
            .map(|v| match v {
                Literal::Bool(b) => i32::from(*b).to_string(),
                Literal::Int(i) => i.to_string(),
                Literal::Real(r) => r.to_string(),
                Literal::Text(s) => format!("'{}'", s.replace('\'', "''")),
            })
            .collect();
        let col = quote_ident(&c.column);
        let condition = format!("{col} IS NOT NULL AND {col} NOT IN ({})", list.join(", "));
        Ok(Self { scope: Scope::of(c.table.as_ref(), ctx), condition })
    }
    fn evaluate(&self, ctx: &RunContext) -> Result<Finding, String> {
        by_rows(ctx, &self.scope, |_| self.condition.clone())
    }
}

/// `{type: range, column: …, min: …, max: …}` (at least one bound).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RangeConfig {
    /// The column checked.
    pub column: String,
    /// The smallest value allowed.
    #[serde(default)]
    pub min: Option<f64>,
    /// The largest value allowed.
    #[serde(default)]
    pub max: Option<f64>,
    /// The table checked, if not the asset's own.
    #[serde(default)]
    pub table: Option<String>,
}

fn bounds<T: Copy + PartialOrd + std::fmt::Display>(min: Option<T>, max: Option<T>) -> Result<(), PluginError> {
    match (&min, &max) {
        (None, None) => Err(PluginError::with_help("it has neither `min` nor `max`", "add `min:`, `max:` or both")),
        (Some(a), Some(b)) if a > b => {
            Err(PluginError::with_help(format!("`min: {a}` is greater than `max: {b}`"), "swap them"))
        }
        _ => Ok(()),
    }
}

kind!(Range, "range", "Rows whose value is below `min` or above `max`", RangeConfig);
impl CheckKind for Range {
    fn reads(&self) -> Vec<(&'static str, TableRef)> {
        self.scope.reads()
    }
    fn build(c: RangeConfig, ctx: &CheckContext) -> Result<Self, PluginError> {
        bounds(c.min, c.max)?;
        let col = quote_ident(&c.column);
        let parts: Vec<String> = [c.min.map(|m| format!("{col} < {m:?}")), c.max.map(|m| format!("{col} > {m:?}"))]
            .into_iter()
            .flatten()
            .collect();
        Ok(Self { scope: Scope::of(c.table.as_ref(), ctx), condition: parts.join(" OR ") })
    }
    fn evaluate(&self, ctx: &RunContext) -> Result<Finding, String> {
        by_rows(ctx, &self.scope, |_| self.condition.clone())
    }
}

/// `{type: row_count, min: …, max: …}` (at least one bound).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RowCountConfig {
    /// The fewest rows allowed.
    #[serde(default)]
    pub min: Option<u64>,
    /// The most rows allowed.
    #[serde(default)]
    pub max: Option<u64>,
    /// The table checked, if not the asset's own.
    #[serde(default)]
    pub table: Option<String>,
}

/// Row count: the table has between `min` and `max` rows.
#[derive(Debug)]
pub struct RowCount {
    scope: Scope,
    min: Option<u64>,
    max: Option<u64>,
}
impl Plugin for RowCount {
    const NAME: &'static str = "row_count";
    const DESCRIPTION: &'static str = "The table having fewer than `min` or more than `max` rows";
    type Config = RowCountConfig;
    const TAGS: &'static [&'static str] = &["quality", "sql"];
}
phlo_core::register!(check RowCount, requires: [dyn QueryEngine]);

impl CheckKind for RowCount {
    fn reads(&self) -> Vec<(&'static str, TableRef)> {
        self.scope.reads()
    }
    fn build(c: RowCountConfig, ctx: &CheckContext) -> Result<Self, PluginError> {
        bounds(c.min, c.max)?;
        Ok(Self { scope: Scope::of(c.table.as_ref(), ctx), min: c.min, max: c.max })
    }
    fn evaluate(&self, ctx: &RunContext) -> Result<Finding, String> {
        let n = count(ctx, engine(ctx)?.as_ref(), &format!("SELECT count(*) FROM {}", self.scope.source(ctx)))?;
        let outside = self.min.is_some_and(|m| n < m) || self.max.is_some_and(|m| n > m);
        let mut f = Finding::new(u64::from(outside), 1).with_metadata("row_count", n);
        if let Some(m) = self.min {
            f = f.with_metadata("min", m);
        }
        if let Some(m) = self.max {
            f = f.with_metadata("max", m);
        }
        Ok(f)
    }
}

/// `{type: freshness, column: …, max_age: 24h}`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FreshnessConfig {
    /// A date or timestamp column.
    pub column: String,
    /// How old the newest value may be: `90s`, `30m`, `24h`, `7d`.
    pub max_age: String,
    /// The table checked, if not the asset's own.
    #[serde(default)]
    pub table: Option<String>,
}

/// Freshness: the newest value of a column is at most `max_age` old.
#[derive(Debug)]
pub struct Freshness {
    scope: Scope,
    column: String,
    max_age: Duration,
}
impl Plugin for Freshness {
    const NAME: &'static str = "freshness";
    const DESCRIPTION: &'static str = "The newest date or timestamp of a column being older than `max_age`";
    type Config = FreshnessConfig;
    const TAGS: &'static [&'static str] = &["quality", "sql"];
}
phlo_core::register!(check Freshness, requires: [dyn QueryEngine]);

fn parse_time(cell: &Cell) -> Option<DateTime<Utc>> {
    let Cell::Text(t) = cell else { return None };
    DateTime::parse_from_rfc3339(t)
        .map(|d| d.to_utc())
        .ok()
        .or_else(|| {
            NaiveDate::parse_from_str(t, "%Y-%m-%d").ok().and_then(|d| d.and_hms_opt(0, 0, 0)).map(|d| d.and_utc())
        })
        .or_else(|| chrono::NaiveDateTime::parse_from_str(t, "%Y-%m-%d %H:%M:%S").ok().map(|d| d.and_utc()))
}

impl CheckKind for Freshness {
    fn reads(&self) -> Vec<(&'static str, TableRef)> {
        self.scope.reads()
    }
    fn build(c: FreshnessConfig, ctx: &CheckContext) -> Result<Self, PluginError> {
        let max_age =
            parse_duration(&c.max_age).filter(|d| chrono::Duration::from_std(*d).is_ok()).ok_or_else(|| {
                PluginError::with_help(
                    format!("`max_age: {}` is not a duration", c.max_age),
                    "write e.g. `24h`, `30m` or `7d`",
                )
            })?;
        Ok(Self { scope: Scope::of(c.table.as_ref(), ctx), column: quote_ident(&c.column), max_age })
    }
    fn evaluate(&self, ctx: &RunContext) -> Result<Finding, String> {
        let engine = engine(ctx)?;
        let newest = engine
            .query_until(&format!("SELECT max({}) FROM {}", self.column, self.scope.source(ctx)), &ctx.stop_signal())
            .map_err(stopped)?;
        let cell = newest.rows.first().and_then(|r| r.first()).cloned().unwrap_or(Cell::Null);
        let stale = match parse_time(&cell) {
            Some(t) => (Utc::now() - t).to_std().unwrap_or_default() > self.max_age,
            None if cell == Cell::Null => true,
            None => return Err(format!("`{cell}` in {} is not a date or timestamp", self.column)),
        };
        Ok(Finding::new(u64::from(stale), 1).with_metadata("newest", cell.to_string()))
    }
}

/// `{type: sql, query: …}`: the rows the query returns are the violations.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SqlCheckConfig {
    /// A SELECT whose rows are violations (never `${}`-expanded).
    pub query: String,
}

/// A SELECT whose rows are the violations.
#[derive(Debug)]
pub struct SqlCheck {
    scope: Scope,
    query: String,
    /// The tables the query reads.
    tables: Vec<TableRef>,
    /// The asset's partitions, for `{partition}`, `{partition_start}`, `{partition_end}`.
    partitions: phlo_core::spec::PartitionSpec,
}
impl Plugin for SqlCheck {
    const NAME: &'static str = "sql";
    const DESCRIPTION: &'static str = "A SELECT whose rows are the violations";
    type Config = SqlCheckConfig;
    const NO_EXPAND: &'static [&'static str] = &["query"];
    const TAGS: &'static [&'static str] = &["quality", "sql"];
}
phlo_core::register!(check SqlCheck, requires: [dyn QueryEngine]);

impl CheckKind for SqlCheck {
    fn build(c: SqlCheckConfig, ctx: &CheckContext) -> Result<Self, PluginError> {
        let query = c.query.trim().trim_end_matches(';').to_string();
        if query.is_empty() {
            return Err(PluginError::with_help("`query` is empty", "write a SELECT whose rows are the violations"));
        }
        // a syntax error is found when the project loads, at its place in the query
        let dialect = sqlparser::dialect::SQLiteDialect {};
        // placeholders read as numbers of their length: positions stay those of the query
        let neutral =
            phlo_core::spec::partition::PLACEHOLDERS.iter().fold(c.query, |q, p| q.replace(p, &"1".repeat(p.len())));
        match sqlparser::parser::Parser::parse_sql(&dialect, &neutral) {
            Ok(statements) if statements.len() == 1 => {}
            Ok(statements) => {
                return Err(PluginError::invalid(
                    "query",
                    format!("`query` holds {} statements; a check's query is one SELECT", statements.len()),
                    "keep one SELECT whose rows are the violations",
                ));
            }
            Err(e) => {
                let text = match e {
                    sqlparser::parser::ParserError::TokenizerError(m)
                    | sqlparser::parser::ParserError::ParserError(m) => m,
                    sqlparser::parser::ParserError::RecursionLimitExceeded => String::from("the SQL nests too deeply"),
                };
                let (message, at) = phlo_core::diagnostic::split_position(&text);
                let position = at.map(|(l, col)| format!(" (line {l}, column {col} of the query)")).unwrap_or_default();
                return Err(PluginError::invalid_at(
                    "query",
                    at,
                    format!("the query is not valid SQL: {message}{position}"),
                    "fix the query: a SELECT whose rows are the violations",
                ));
            }
        }
        // placeholders are filled per partition; one that could not be is an error now
        let used = phlo_core::spec::partition::check_placeholders(&query, &ctx.partitions, &ctx.asset)
            .map_err(|(message, help)| PluginError::invalid("query", message, help))?;
        if used.is_empty() && ctx.partition_column.is_some() {
            return Err(PluginError::invalid(
                "query",
                format!(
                    "asset `{}` holds its partitions in one table, but the query never uses `{{partition}}`: every \
                     partition's check would read every partition's rows",
                    ctx.asset
                ),
                "filter by it: `WHERE partition_key = '{partition}'` (or `{partition_start}` / `{partition_end}`)",
            ));
        }
        // only a query that reads rows; the tables it reads are the asset's dependencies
        let tables = phlo_core::sql::tables_read(&query, "query")?;
        Ok(Self { scope: Scope::of(None, ctx), query, tables, partitions: ctx.partitions.clone() })
    }
    fn reads(&self) -> Vec<(&'static str, TableRef)> {
        self.tables.iter().map(|t| ("query", t.clone())).collect()
    }
    fn evaluate(&self, ctx: &RunContext) -> Result<Finding, String> {
        let engine = engine(ctx)?;
        let query = match &ctx.partition {
            Some(key) => phlo_core::spec::partition::fill_placeholders(&self.query, &self.partitions, key)
                .map_err(|e| e.to_string())?,
            None => self.query.clone(),
        };
        let violations = count(ctx, engine.as_ref(), &format!("SELECT count(*) FROM ({query}\n)"))?;
        let total = count(ctx, engine.as_ref(), &format!("SELECT count(*) FROM {}", self.scope.source(ctx)))
            .unwrap_or(violations);
        let mut f = Finding::new(violations, total.max(violations));
        if violations > 0 {
            f = f.with_samples(samples(ctx, engine.as_ref(), &format!("SELECT * FROM ({query}\n)")));
        }
        Ok(f)
    }
}

#[cfg(test)]
mod tests;
