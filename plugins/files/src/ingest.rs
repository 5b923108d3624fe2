//! `csv` and `jsonl` ingestion.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, NaiveDate};
use phlo_core::data::{Cell, Column, DataType, Rows, TableStore, table_name};
use phlo_core::plugin::{AssetTypeContext, PluginError};
use phlo_core::spec::{AssetSpec, MaterializeResult, RunContext, RunError};
use schemars::JsonSchema;
use serde::Deserialize;

/// How rows reach the table.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Replace the table (all or nothing).
    #[default]
    Replace,
    /// Append to it (created when missing; columns must match).
    Append,
}

/// The keys of a `type: csv` asset.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CsvConfig {
    /// The file, relative to the project.
    pub path: String,
    /// The table (default: the asset key with `.` → `_`).
    #[serde(default)]
    pub table: Option<String>,
    /// `replace` (default) or `append`.
    #[serde(default)]
    pub mode: Mode,
    /// The field delimiter, one character.
    #[serde(default = "comma")]
    pub delimiter: String,
    /// Declared column types (`integer`, `real`, `text`, `boolean`, `date`, `timestamp`);
    /// other columns are inferred from their values.
    #[serde(default)]
    pub columns: BTreeMap<String, DataType>,
}

fn comma() -> String {
    String::from(",")
}

/// The keys of a `type: jsonl` asset.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct JsonlConfig {
    /// The file, relative to the project: one JSON object per line.
    pub path: String,
    /// The table (default: the asset key with `.` → `_`).
    #[serde(default)]
    pub table: Option<String>,
    /// `replace` (default) or `append`.
    #[serde(default)]
    pub mode: Mode,
}

/// What a load needs, captured when the asset is built.
#[derive(Debug, Clone)]
struct Load {
    path: PathBuf,
    display: String,
    table: String,
    mode: Mode,
}

pub(crate) fn table_store(ctx: &RunContext) -> Result<Arc<dyn TableStore>, RunError> {
    ctx.capability::<dyn TableStore>()
}

fn write(ctx: &RunContext, load: &Load, rows: &Rows) -> Result<MaterializeResult, RunError> {
    let store = table_store(ctx)?;
    let n = match load.mode {
        Mode::Replace => store.write_until(&load.table, rows, true, &ctx.stop_signal()),
        Mode::Append => store.write_until(&load.table, rows, false, &ctx.stop_signal()),
    }
    .map_err(|e| RunError::new(e.message))?;
    Ok(MaterializeResult::new().with_row_count(n).with_metadata("table", load.table.as_str()))
}

/// Runs blocking work off the async workers when a tokio runtime is there.
/// An input error gets the input code unless it has a more precise one.
fn input_failed(e: RunError) -> RunError {
    if e.code.is_some() { e } else { e.with_code(phlo_core::diagnostic::Code::InputFailed) }
}

pub(crate) async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T, RunError> {
    match tokio::runtime::Handle::try_current() {
        Ok(h) => h.spawn_blocking(f).await.map_err(|e| RunError::new(format!("the load stopped: {e}"))),
        Err(_) => Ok(f()),
    }
}

#[expect(clippy::needless_pass_by_value, reason = "asset types receive their config by value")]
pub(crate) fn build_csv(cfg: CsvConfig, ctx: &AssetTypeContext) -> Result<AssetSpec, PluginError> {
    let delimiter = match cfg.delimiter.as_bytes() {
        [d] => *d,
        _ => {
            return Err(PluginError::with_help(
                format!("`delimiter: {:?}` is not one ASCII character", cfg.delimiter),
                "write e.g. `delimiter: \";\"`",
            ));
        }
    };
    let load = Load {
        path: ctx.project_dir.join(&cfg.path),
        display: cfg.path.clone(),
        table: cfg.table.clone().unwrap_or_else(|| table_name(&ctx.key)),
        mode: cfg.mode,
    };
    let declared = cfg.columns.clone();
    Ok(AssetSpec::new(ctx.key.as_str())
        .with_description(format!("{} loaded into `{}`", cfg.path, load.table))
        .with_metadata("table", load.table.as_str())
        .with_metadata("path", cfg.path.as_str())
        .with_run(move |rc: RunContext| {
            let (load, declared) = (load.clone(), declared.clone());
            async move {
                let l = load.clone();
                let stop = rc.stop_signal();
                let rows = blocking(move || read_csv_until(&l.path, &l.display, delimiter, &declared, &*stop))
                    .await?
                    .map_err(input_failed)?;
                let ctx = rc.clone();
                blocking(move || write(&ctx, &load, &rows)).await?
            }
        }))
}

#[expect(clippy::needless_pass_by_value, reason = "asset types receive their config by value")]
pub(crate) fn build_jsonl(cfg: JsonlConfig, ctx: &AssetTypeContext) -> Result<AssetSpec, PluginError> {
    let load = Load {
        path: ctx.project_dir.join(&cfg.path),
        display: cfg.path.clone(),
        table: cfg.table.clone().unwrap_or_else(|| table_name(&ctx.key)),
        mode: cfg.mode,
    };
    Ok(AssetSpec::new(ctx.key.as_str())
        .with_description(format!("{} loaded into `{}`", cfg.path, load.table))
        .with_metadata("table", load.table.as_str())
        .with_metadata("path", cfg.path.as_str())
        .with_run(move |rc: RunContext| {
            let load = load.clone();
            async move {
                let l = load.clone();
                let stop = rc.stop_signal();
                let rows = blocking(move || read_jsonl(&l.path, &l.display, &*stop)).await?.map_err(input_failed)?;
                let ctx = rc.clone();
                blocking(move || write(&ctx, &load, &rows)).await?
            }
        }))
}

/// Which types a column's values so far allow.
#[derive(Debug, Clone, Copy)]
struct Candidates {
    int: bool,
    real: bool,
    boolean: bool,
    date: bool,
    timestamp: bool,
}

impl Candidates {
    const ALL: Candidates = Candidates { int: true, real: true, boolean: true, date: true, timestamp: true };

    fn see(&mut self, v: &str) {
        if v.is_empty() {
            return;
        }
        // a candidate once ruled out is never tested again; an integer is a real, a date not
        if self.int {
            self.int = v.parse::<i64>().is_ok();
            if self.int {
                self.boolean = false;
                self.date = false;
                self.timestamp = false;
                return;
            }
        }
        if self.real {
            self.real = v.parse::<f64>().is_ok_and(f64::is_finite);
        }
        if self.boolean {
            self.boolean = v.eq_ignore_ascii_case("true") || v.eq_ignore_ascii_case("false");
        }
        if self.date {
            self.date = iso_date(v).is_some();
        }
        if self.timestamp {
            self.timestamp = DateTime::parse_from_rfc3339(v).is_ok();
        }
    }

    fn pick(self, seen_any: bool) -> DataType {
        match self {
            _ if !seen_any => DataType::Text,
            Candidates { int: true, .. } => DataType::Integer,
            Candidates { real: true, .. } => DataType::Real,
            Candidates { boolean: true, .. } => DataType::Boolean,
            Candidates { date: true, .. } => DataType::Date,
            Candidates { timestamp: true, .. } => DataType::Timestamp,
            _ => DataType::Text,
        }
    }
}

/// A `YYYY-MM-DD` date, checked without a format parser (this runs once per value).
fn iso_date(v: &str) -> Option<NaiveDate> {
    let b = v.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        b[r].iter().try_fold(0u32, |acc, c| c.is_ascii_digit().then(|| acc * 10 + u32::from(c - b'0')))
    };
    NaiveDate::from_ymd_opt(i32::try_from(num(0..4)?).ok()?, num(5..7)?, num(8..10)?)
}

fn convert(v: &str, t: DataType) -> Option<Cell> {
    if v.is_empty() {
        return Some(Cell::Null);
    }
    Some(match t {
        DataType::Integer => Cell::Int(v.parse().ok()?),
        DataType::Real => Cell::Real(v.parse::<f64>().ok().filter(|f| f.is_finite())?),
        DataType::Boolean => match v.to_ascii_lowercase().as_str() {
            "true" => Cell::Bool(true),
            "false" => Cell::Bool(false),
            _ => return None,
        },
        DataType::Date => {
            iso_date(v)?;
            Cell::Text(v.to_string())
        }
        DataType::Timestamp => Cell::Text(DateTime::parse_from_rfc3339(v).ok()?.to_utc().to_rfc3339()),
        DataType::Text => Cell::Text(v.to_string()),
    })
}

fn reader(path: &Path, display: &str, delimiter: u8) -> Result<csv::Reader<std::fs::File>, RunError> {
    csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .has_headers(true)
        .from_path(path)
        .map_err(|e| RunError::permanent(format!("cannot read `{display}`: {}", io_message(&e))))
}

fn io_message(e: &csv::Error) -> String {
    match e.kind() {
        csv::ErrorKind::Io(io) => io.to_string(),
        _ => e.to_string(),
    }
}

fn record_error(display: &str, e: &csv::Error) -> RunError {
    let line = e.position().map_or(0, csv::Position::line);
    let message = match e.kind() {
        csv::ErrorKind::UnequalLengths { expected_len, len, .. } => {
            format!("{display}:{line}: the row has {len} field(s), the header has {expected_len}")
        }
        csv::ErrorKind::Utf8 { err, .. } => format!("{display}:{line}: field {} is not UTF-8", err.field() + 1),
        _ => format!("{display}:{line}: {}", io_message(e)),
    };
    RunError::permanent(message)
}

/// Reads a CSV file: a first pass infers the types of undeclared columns, a second
/// converts. Any bad row is an error naming `file:line:column` (`display` is the path as
/// the user wrote it).
///
/// # Errors
/// A missing, empty or malformed file, or a value that does not fit its column's type.
pub fn read_csv(
    path: &Path,
    display: &str,
    delimiter: u8,
    declared: &BTreeMap<String, DataType>,
) -> Result<Rows, RunError> {
    read_csv_until(path, display, delimiter, declared, &|| false)
}

/// Records read between two looks at the stop signal.
const STOP_CHECK_EVERY: usize = 8192;

fn stopped(display: &str) -> RunError {
    RunError::new(format!("the load of `{display}` was stopped"))
}

/// [`read_csv`] that gives up, between batches of records, as soon as `stop` says so.
///
/// # Errors
/// As `read_csv`, and a stop.
pub fn read_csv_until(
    path: &Path,
    display: &str,
    delimiter: u8,
    declared: &BTreeMap<String, DataType>,
    stop: &dyn Fn() -> bool,
) -> Result<Rows, RunError> {
    let mut r = reader(path, display, delimiter)?;
    let headers: Vec<String> = r.headers().map_err(|e| record_error(display, &e))?.iter().map(str::to_string).collect();
    if headers.is_empty() || headers.iter().all(String::is_empty) {
        return Err(RunError::permanent(format!("`{display}` is empty: expected a header line naming the columns")));
    }
    if let Some(unknown) = declared.keys().find(|k| !headers.contains(k)) {
        return Err(RunError::permanent(format!(
            "`columns.{unknown}` is declared but `{display}` has no such column (it has {})",
            headers.join(", ")
        )));
    }
    let mut candidates = vec![Candidates::ALL; headers.len()];
    let mut seen = vec![false; headers.len()];
    let mut record = csv::StringRecord::new();
    let mut count = 0usize;
    if declared.len() < headers.len() {
        while r.read_record(&mut record).map_err(|e| record_error(display, &e))? {
            count += 1;
            if count.is_multiple_of(STOP_CHECK_EVERY) && stop() {
                return Err(stopped(display));
            }
            for (i, v) in record.iter().enumerate() {
                if !declared.contains_key(&headers[i]) {
                    candidates[i].see(v);
                    seen[i] |= !v.is_empty();
                }
            }
        }
        r = reader(path, display, delimiter)?;
        r.headers().map_err(|e| record_error(display, &e))?;
    }
    let columns: Vec<Column> = headers
        .iter()
        .enumerate()
        .map(|(i, h)| Column::new(h, declared.get(h).copied().unwrap_or_else(|| candidates[i].pick(seen[i]))))
        .collect();
    let mut rows = Rows { columns, rows: Vec::with_capacity(count) };
    while r.read_record(&mut record).map_err(|e| record_error(display, &e))? {
        if rows.rows.len() % STOP_CHECK_EVERY == STOP_CHECK_EVERY - 1 && stop() {
            return Err(stopped(display));
        }
        let line = record.position().map_or(0, csv::Position::line);
        let mut row = Vec::with_capacity(headers.len());
        for (i, v) in record.iter().enumerate() {
            let t = rows.columns[i].data_type;
            row.push(convert(v, t).ok_or_else(|| {
                RunError::permanent(format!(
                    "{display}:{line}:{}: `{v}` is not a valid {} for column `{}`",
                    i + 1,
                    t.as_str(),
                    headers[i]
                ))
            })?);
        }
        rows.rows.push(row);
    }
    Ok(rows)
}

/// Reads a JSON Lines file: one object per line; columns are the keys in first-seen order.
pub(crate) fn read_jsonl(path: &Path, display: &str, stop: &dyn Fn() -> bool) -> Result<Rows, RunError> {
    let text =
        std::fs::read_to_string(path).map_err(|e| RunError::permanent(format!("cannot read `{display}`: {e}")))?;
    let mut objects = Vec::new();
    let mut names: Vec<String> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if i % STOP_CHECK_EVERY == STOP_CHECK_EVERY - 1 && stop() {
            return Err(stopped(display));
        }
        if line.trim().is_empty() {
            continue;
        }
        let v: serde_json::Value = serde_json::from_str(line)
            .map_err(|e| RunError::permanent(format!("{display}:{}:{}: {e}", i + 1, e.column())))?;
        let serde_json::Value::Object(map) = v else {
            return Err(RunError::permanent(format!("{display}:{}:1: expected a JSON object", i + 1)));
        };
        for k in map.keys() {
            if !names.contains(k) {
                names.push(k.clone());
            }
        }
        objects.push(map);
    }
    if objects.is_empty() {
        return Err(RunError::permanent(format!("`{display}` has no JSON objects")));
    }
    let types: Vec<DataType> = names
        .iter()
        .map(|n| {
            let vals: Vec<&serde_json::Value> =
                objects.iter().filter_map(|o| o.get(n)).filter(|v| !v.is_null()).collect();
            if !vals.is_empty() && vals.iter().all(|v| v.is_i64()) {
                DataType::Integer
            } else if !vals.is_empty() && vals.iter().all(|v| v.is_number()) {
                DataType::Real
            } else if !vals.is_empty() && vals.iter().all(|v| v.is_boolean()) {
                DataType::Boolean
            } else {
                DataType::Text
            }
        })
        .collect();
    let rows = objects
        .iter()
        .map(|o| {
            names
                .iter()
                .zip(&types)
                .map(|(n, t)| match (o.get(n), t) {
                    (None | Some(serde_json::Value::Null), _) => Cell::Null,
                    (Some(v), DataType::Integer) => v.as_i64().map_or(Cell::Null, Cell::Int),
                    (Some(v), DataType::Real) => v.as_f64().map_or(Cell::Null, Cell::Real),
                    (Some(v), DataType::Boolean) => v.as_bool().map_or(Cell::Null, Cell::Bool),
                    (Some(serde_json::Value::String(s)), _) => Cell::Text(s.clone()),
                    (Some(v), _) => Cell::Text(v.to_string()),
                })
                .collect()
        })
        .collect();
    let columns = names.into_iter().zip(types).map(|(n, t)| Column::new(n, t)).collect();
    Ok(Rows { columns, rows })
}
