//! The `quality` provider: check kinds compiled to SQL and run through the asset's resolved
//! `query_engine` against its table (`table:` in the check, else the asset's table).
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
//! A check that cannot be evaluated (a missing column, a broken query) reports "could not
//! run", never "failed".

use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use phlo_core::config::parse_duration;
use phlo_core::data::{Cell, QueryEngine, quote_ident, table_name};
use phlo_core::plugin::{Factory, PluginContext, PluginDescriptor, PluginError, PluginMetadata, QualityCheckProvider};
use phlo_core::spec::{BoxFuture, CheckResult, CheckSpec, MAX_SAMPLES_SQL, RunContext};
use serde::Deserialize;

/// Check kinds this provider runs.
pub const KINDS: &[&str] = &["not_null", "unique", "accepted_values", "range", "row_count", "freshness", "sql"];

#[derive(Debug, Deserialize)]
struct Keys {
    #[serde(default)]
    column: Option<String>,
    #[serde(default)]
    table: Option<String>,
    #[serde(default)]
    values: Vec<serde_json::Value>,
    #[serde(default)]
    min: Option<f64>,
    #[serde(default)]
    max: Option<f64>,
    #[serde(default)]
    max_age: Option<String>,
    #[serde(default)]
    query: Option<String>,
}

fn literal(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => format!("'{}'", s.replace('\'', "''")),
        serde_json::Value::Bool(b) => i32::from(*b).to_string(),
        serde_json::Value::Null => String::from("NULL"),
        other => other.to_string(),
    }
}

fn count(engine: &dyn QueryEngine, sql: &str) -> Result<u64, String> {
    let rows = engine.query(sql).map_err(|e| e.message)?;
    match rows.rows.first().and_then(|r| r.first()) {
        Some(Cell::Int(n)) => Ok(u64::try_from(*n).unwrap_or(0)),
        Some(Cell::Null) | None => Ok(0),
        Some(other) => Err(format!("expected a count, got `{other}`")),
    }
}

fn samples(engine: &dyn QueryEngine, sql: &str) -> Vec<serde_json::Value> {
    engine
        .query(&format!("{sql} LIMIT {MAX_SAMPLES_SQL}"))
        .map(|r| (0..r.len()).map(|i| r.row_json(i)).collect())
        .unwrap_or_default()
}

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

/// Runs one check; `Err` means "could not run".
fn evaluate(spec: &CheckSpec, asset: &str, engine: &dyn QueryEngine) -> Result<CheckResult, String> {
    let keys: Keys =
        serde_json::from_value(if spec.config.is_null() { serde_json::json!({}) } else { spec.config.clone() })
            .map_err(|e| format!("bad keys for a `{}` check: {e}", spec.kind))?;
    let table = quote_ident(&keys.table.clone().unwrap_or_else(|| table_name(asset)));
    let column =
        || keys.column.as_deref().map(quote_ident).ok_or_else(|| format!("a `{}` check needs `column:`", spec.kind));
    let total = || count(engine, &format!("SELECT count(*) FROM {table}"));
    let by_rows = |condition: String| -> Result<CheckResult, String> {
        let total = total()?;
        let bad = format!("SELECT * FROM {table} WHERE {condition}");
        let violations = count(engine, &format!("SELECT count(*) FROM ({bad})"))?;
        let mut r = CheckResult::from_counts(spec, asset, violations, total);
        if violations > 0 {
            r = r.with_samples(samples(engine, &bad));
        }
        Ok(r)
    };
    match spec.kind.as_str() {
        "not_null" => by_rows(format!("{} IS NULL", column()?)),
        "unique" => {
            let c = column()?;
            by_rows(format!("{c} IN (SELECT {c} FROM {table} WHERE {c} IS NOT NULL GROUP BY {c} HAVING count(*) > 1)"))
        }
        "accepted_values" => {
            if keys.values.is_empty() {
                return Err(String::from("an `accepted_values` check needs `values: [...]`"));
            }
            let list: Vec<String> = keys.values.iter().map(literal).collect();
            by_rows(format!("{c} IS NOT NULL AND {c} NOT IN ({})", list.join(", "), c = column()?))
        }
        "range" => {
            let c = column()?;
            let mut parts = Vec::new();
            if let Some(min) = keys.min {
                parts.push(format!("{c} < {min}"));
            }
            if let Some(max) = keys.max {
                parts.push(format!("{c} > {max}"));
            }
            if parts.is_empty() {
                return Err(String::from("a `range` check needs `min:` and/or `max:`"));
            }
            by_rows(parts.join(" OR "))
        }
        "row_count" => {
            let n = total()? as f64;
            let outside = keys.min.is_some_and(|m| n < m) || keys.max.is_some_and(|m| n > m);
            let mut r = CheckResult::from_counts(spec, asset, u64::from(outside), 1);
            r.metadata.insert("row_count".into(), serde_json::json!(n as u64));
            Ok(r)
        }
        "freshness" => {
            let c = column()?;
            let age = keys.max_age.as_deref().ok_or("a `freshness` check needs `max_age:` (e.g. `24h`)")?;
            let max_age = parse_duration(age).ok_or_else(|| format!("`max_age: {age}` is not a duration"))?;
            let newest = engine.query(&format!("SELECT max({c}) FROM {table}")).map_err(|e| e.message)?;
            let cell = newest.rows.first().and_then(|r| r.first()).cloned().unwrap_or(Cell::Null);
            let stale = match parse_time(&cell) {
                Some(t) => (Utc::now() - t).to_std().unwrap_or_default() > max_age,
                None if cell == Cell::Null => true,
                None => return Err(format!("`{cell}` in {c} is not a date or timestamp")),
            };
            let mut r = CheckResult::from_counts(spec, asset, u64::from(stale), 1);
            r.metadata.insert("newest".into(), serde_json::json!(cell.to_string()));
            Ok(r)
        }
        "sql" => {
            let q = keys.query.as_deref().ok_or("a `sql` check needs `query:` (its rows are the violations)")?;
            let q = q.trim().trim_end_matches(';');
            let violations = count(engine, &format!("SELECT count(*) FROM ({q})"))?;
            let total = total().unwrap_or(violations);
            let mut r = CheckResult::from_counts(spec, asset, violations, total.max(violations));
            if violations > 0 {
                r = r.with_samples(samples(engine, q));
            }
            Ok(r)
        }
        other => Err(format!("`{other}` is not a check kind of the quality provider")),
    }
}

struct Quality;

impl QualityCheckProvider for Quality {
    fn check_kinds(&self) -> Vec<&'static str> {
        KINDS.to_vec()
    }

    fn run_check(&self, spec: &CheckSpec, ctx: RunContext) -> BoxFuture<'static, CheckResult> {
        let spec = spec.clone();
        Box::pin(async move {
            let Some(engine) = ctx.resource::<Arc<dyn QueryEngine>>("query_engine") else {
                return CheckResult::could_not_run(&spec, &ctx.asset, "no `query_engine` is bound to this asset");
            };
            match evaluate(&spec, &ctx.asset, engine.as_ref().as_ref()) {
                Ok(r) => r,
                Err(e) => CheckResult::could_not_run(&spec, &ctx.asset, e),
            }
        })
    }
}

fn create(_: &PluginContext) -> Result<Arc<dyn QualityCheckProvider>, PluginError> {
    Ok(Arc::new(Quality))
}

/// The `quality` provider.
pub const QUALITY: PluginDescriptor =
    PluginDescriptor::new("quality", env!("CARGO_PKG_NAME"), Factory::Quality(create)).with_metadata(
        PluginMetadata::new(env!("CARGO_PKG_VERSION"), "Data checks compiled to SQL")
            .author("phlo developers")
            .license("Apache-2.0")
            .tags(&["quality", "sql"]),
    );

phlo_core::submit_plugin!(QUALITY);

#[cfg(test)]
mod tests;
