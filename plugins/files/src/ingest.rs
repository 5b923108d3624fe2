//! `csv` and `jsonl` ingestion.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use phlo_core::data::batches::{self, BatchBuilder};
use phlo_core::data::{
    Column, Commit, DataType, JsonTyping, LineError, Rows, TableStore, WriteMode, Written, table_name,
};

use crate::delimited::{CsvFormat, Encoding, check_format, plan_csv};
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
    /// The file, relative to the project; a `*` or `?` in its last part loads every matching
    /// file of that directory (same columns, in name order) into the one table.
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
    /// The quote character, one character (default `"`).
    #[serde(default = "double_quote")]
    pub quote: String,
    /// Whether the first line names the columns (default true; else `column_1`, `column_2`, …).
    #[serde(default = "yes")]
    pub header: bool,
    /// `utf-8` (default) or `latin-1`.
    #[serde(default)]
    pub encoding: Encoding,
    /// Values read as null (default: empty, `NA`, `N/A`, `n/a`, `NULL`, `null`, `NaN`, `nan`,
    /// `#N/A`, `<NA>`). Giving the list replaces the default.
    #[serde(default)]
    pub null_values: Option<Vec<String>>,
    /// How dates are written, as a chrono format (default `%Y-%m-%d`), e.g. `%d/%m/%Y`.
    #[serde(default)]
    pub date_format: Option<String>,
    /// How timestamps are written, as a chrono format (default RFC 3339), e.g.
    /// `%Y-%m-%d %H:%M:%S` (read as UTC) or `%d/%m/%Y %H:%M %z`.
    #[serde(default)]
    pub timestamp_format: Option<String>,
}

fn comma() -> String {
    String::from(",")
}

fn double_quote() -> String {
    String::from("\"")
}

fn yes() -> bool {
    true
}

/// One ASCII character of a CSV setting.
fn one_char(key: &str, value: &str, example: &str) -> Result<u8, PluginError> {
    match value.as_bytes() {
        [c] if c.is_ascii() && *c != b'\n' && *c != b'\r' => Ok(*c),
        _ => Err(PluginError::invalid(
            key,
            format!("`{key}: {value:?}` is not one ASCII character"),
            format!("write e.g. `{key}: {example}`"),
        )),
    }
}

impl CsvConfig {
    /// The file's format, checked.
    fn format(&self) -> Result<CsvFormat, PluginError> {
        let delimiter = one_char("delimiter", &self.delimiter, "\";\"")?;
        let quote = one_char("quote", &self.quote, "\"'\"")?;
        if delimiter == quote {
            return Err(PluginError::invalid(
                "quote",
                format!("`delimiter` and `quote` are both {:?}", self.delimiter),
                "use different characters",
            ));
        }
        for (key, f) in [("date_format", &self.date_format), ("timestamp_format", &self.timestamp_format)] {
            if let Some(f) = f {
                check_format(f).map_err(|e| PluginError::invalid(key, format!("`{key}`: {e}"), "e.g. `%d/%m/%Y`"))?;
            }
        }
        let mut format = CsvFormat {
            delimiter,
            quote,
            header: self.header,
            encoding: self.encoding,
            date_format: self.date_format.clone(),
            timestamp_format: self.timestamp_format.clone(),
            declared: self.columns.clone(),
            ..CsvFormat::default()
        };
        if let Some(nulls) = &self.null_values {
            format.null_values.clone_from(nulls);
        }
        Ok(format)
    }
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

/// Writes a load's rows as they are read, once per run step: `produce` reads and converts
/// them on a thread of its own, handing full batches to `emit`, while this thread writes them
/// in one transaction — both cores busy, a few batches in memory. An error on either side
/// writes nothing; a step whose write an earlier attempt of the run committed (a resume, a
/// retry, a second process) writes nothing again.
fn stream_write<P>(ctx: &RunContext, load: &Load, columns: &[Column], produce: P) -> Result<MaterializeResult, RunError>
where
    P: FnOnce(&mut dyn FnMut(&mut BatchBuilder) -> Result<(), RunError>) -> Result<(), RunError> + Send,
{
    let store = table_store(ctx)?;
    let mode = match load.mode {
        Mode::Replace => WriteMode::Replace,
        Mode::Append => WriteMode::Append,
    };
    let step = ctx.step_mark();
    let commit = Commit { state: None, step: Some(&step) };
    let stop = ctx.stop_signal();
    let written = std::thread::scope(|s| {
        let (tx, mut rx) = batches::channel::<RunError>();
        s.spawn(move || {
            let mut emit = |b: &mut BatchBuilder| b.flush(&tx).map_err(|_| RunError::new("the write stopped reading"));
            if let Err(e) = produce(&mut emit) {
                tx.fail(e);
            }
        });
        // the receiver is dropped when this returns, so a producer blocked on a full channel
        // sees the writer gone and ends before the scope joins it
        store
            .write_batches(&load.table, columns, &mut rx, &mode, &commit, &stop)
            .map_err(|e| rx.take_failure().map_or_else(|| RunError::new(e.message), input_failed))
    })?;
    finish(store.as_ref(), load, &written)
}

/// The result of a load: its rows and the version of what the table holds now (an append
/// adds to what was there).
fn finish(store: &dyn TableStore, load: &Load, written: &Written) -> Result<MaterializeResult, RunError> {
    let result = MaterializeResult::new().with_written(written).with_metadata("table", load.table.as_str());
    if let Written::Versioned { .. } = written {
        return Ok(result);
    }
    match store.version(&load.table, None).map_err(|e| RunError::new(e.message))? {
        Some(v) => Ok(result.with_data_version(v)),
        None => Ok(result),
    }
}

/// The step's write, when an earlier attempt of this run committed it: the files are not
/// read again.
fn already(ctx: &RunContext, load: &Load) -> Result<Option<MaterializeResult>, RunError> {
    let store = table_store(ctx)?;
    match store.committed(&ctx.step_mark()).map_err(|e| RunError::new(e.message))? {
        Some(c) => finish(store.as_ref(), load, &Written::Already(c)).map(Some),
        None => Ok(None),
    }
}

/// The version of a load's source: a hash of its files' names and contents (a glob's files
/// in name order), so that `--skip-unchanged` and `phlo status` see a changed file.
fn source_version(path: &Path, display: &str) -> Result<String, String> {
    use std::io::Read;
    let files = crate::delimited::expand_path(path, display).map_err(|e| e.message)?;
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    let mut buf = vec![0u8; 1 << 16];
    for (p, shown) in files {
        h.update(shown.as_bytes());
        h.update(&[0]);
        let mut f = std::fs::File::open(&p).map_err(|e| format!("cannot read `{shown}`: {e}"))?;
        loop {
            let n = f.read(&mut buf).map_err(|e| format!("cannot read `{shown}`: {e}"))?;
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
        }
    }
    Ok(format!("files-{:032x}", h.digest128()))
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
    let format = Arc::new(cfg.format()?);
    let load = Load {
        path: ctx.project_path("path", &cfg.path)?,
        display: cfg.path.clone(),
        table: cfg.table.clone().unwrap_or_else(|| table_name(&ctx.key)),
        mode: cfg.mode,
    };
    let mut spec = AssetSpec::new(ctx.key.as_str());
    // the file must be there when the project loads, unless an upstream step produces it
    let files = match crate::delimited::expand_path(&load.path, &load.display) {
        Ok(files) => files,
        Err(_) if !ctx.deps.is_empty() => Vec::new(),
        Err(e) => return Err(missing_input(&load, &e)),
    };
    if let Some((p, _)) = files.first().filter(|(p, _)| !p.exists() && ctx.deps.is_empty()) {
        let e = RunError::permanent(format!("`{}` does not exist", p.display()));
        return Err(missing_input(&load, &e));
    }
    // the columns, from the (first) file when it is there already
    if let Some(columns) = files.into_iter().next().and_then(|(p, _)| crate::delimited::header_columns(&p, &format)) {
        if format.header {
            crate::delimited::check_header(&load.display, &columns)
                .map_err(|e| PluginError::invalid("path", e.message, "name every column once in the header line"))?;
        }
        spec.columns = phlo_core::spec::Columns::Known(columns);
    }
    Ok(spec
        .with_description(format!("{} loaded into `{}`", cfg.path, load.table))
        .with_metadata("table", load.table.as_str())
        .with_metadata("path", cfg.path.as_str())
        .with_observe({
            let (path, display) = (load.path.clone(), load.display.clone());
            move |_| source_version(&path, &display)
        })
        .with_run(move |rc: RunContext| {
            let (load, format) = (load.clone(), Arc::clone(&format));
            async move {
                let l = load.clone();
                let stop = rc.stop_signal();
                let (c, ld) = (rc.clone(), load.clone());
                if let Some(done) = blocking(move || already(&c, &ld)).await?? {
                    return Ok(done);
                }
                let ctx = rc.clone();
                blocking(move || {
                    let files = crate::delimited::expand_path(&l.path, &l.display).map_err(input_failed)?;
                    let plan = plan_csv(&files, &format, &*stop).map_err(input_failed)?;
                    let columns = plan.columns.clone();
                    stream_write(&ctx, &load, &columns, |emit| {
                        plan.convert(&format, &*stop, &mut BatchBuilder::new(columns.len()), emit)
                    })
                })
                .await?
            }
        }))
}

/// A load whose input is not there when the project loads.
fn missing_input(load: &Load, e: &RunError) -> PluginError {
    PluginError::invalid(
        "path",
        format!("`{}` cannot be read: {}", load.display, e.message),
        "fix the path (relative to phlo.yaml); if an upstream step writes the file, list that asset in `deps:`",
    )
}

#[expect(clippy::needless_pass_by_value, reason = "asset types receive their config by value")]
pub(crate) fn build_jsonl(cfg: JsonlConfig, ctx: &AssetTypeContext) -> Result<AssetSpec, PluginError> {
    let load = Load {
        path: ctx.project_path("path", &cfg.path)?,
        display: cfg.path.clone(),
        table: cfg.table.clone().unwrap_or_else(|| table_name(&ctx.key)),
        mode: cfg.mode,
    };
    if !load.path.exists() && ctx.deps.is_empty() {
        let e = RunError::permanent(format!("`{}` does not exist", load.path.display()));
        return Err(missing_input(&load, &e));
    }
    let mut spec = AssetSpec::new(ctx.key.as_str());
    if let Some(fields) = jsonl_fields(&load.path) {
        spec.columns = phlo_core::spec::Columns::Known(fields);
    }
    Ok(spec
        .with_description(format!("{} loaded into `{}`", cfg.path, load.table))
        .with_metadata("table", load.table.as_str())
        .with_metadata("path", cfg.path.as_str())
        .with_observe({
            let (path, display) = (load.path.clone(), load.display.clone());
            move |_| source_version(&path, &display)
        })
        .with_run(move |rc: RunContext| {
            let load = load.clone();
            async move {
                let l = load.clone();
                let stop = rc.stop_signal();
                let (c, ld) = (rc.clone(), load.clone());
                if let Some(done) = blocking(move || already(&c, &ld)).await?? {
                    return Ok(done);
                }
                let ctx = rc.clone();
                blocking(move || {
                    let mut typing = scan_jsonl(&l.path, &l.display, &*stop).map_err(input_failed)?;
                    let columns = typing.columns();
                    stream_write(&ctx, &load, &columns, |emit| {
                        convert_jsonl(&l.path, &l.display, &typing, &*stop, &mut BatchBuilder::new(columns.len()), emit)
                    })
                })
                .await?
            }
        }))
}

/// The largest JSON Lines file whose fields are read when the project loads.
const FIELDS_SCAN_LIMIT: u64 = 16 << 20;

/// The fields of a JSON Lines file (its columns), in first-seen order — when the file is there
/// already, reads as objects, and is small enough to scan when the project loads.
fn jsonl_fields(path: &Path) -> Option<Vec<String>> {
    if std::fs::metadata(path).ok()?.len() > FIELDS_SCAN_LIMIT {
        return None;
    }
    let text = std::fs::read_to_string(path).ok()?;
    let mut names: Vec<String> = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let serde_json::Value::Object(map) = serde_json::from_str(line).ok()? else { return None };
        for k in map.keys() {
            if !names.contains(k) {
                names.push(k.clone());
            }
        }
    }
    Some(names)
}

/// Records read between two looks at the stop signal.
const STOP_CHECK_EVERY: usize = crate::delimited::STOP_CHECK_EVERY;

fn stopped(display: &str) -> RunError {
    RunError::new(format!("the load of `{display}` was stopped"))
}

/// What is done with each line of a JSON Lines file: its bytes and its number.
type OnLine<'a> = dyn FnMut(&[u8], usize) -> Result<(), RunError> + 'a;

/// Reads a JSON Lines file's lines one by one (blank ones skipped), each with its number;
/// returns how many objects and lines there were.
fn each_jsonl(
    path: &Path,
    display: &str,
    stop: &dyn Fn() -> bool,
    f: &mut OnLine<'_>,
) -> Result<(usize, usize), RunError> {
    each_jsonl_in(path, display, (0, u64::MAX, 0), stop, f)
}

/// [`each_jsonl`] over the bytes `from..to` of the file (starting at a line), whose first line
/// is number `before + 1`.
fn each_jsonl_in(
    path: &Path,
    display: &str,
    (from, to, before): (u64, u64, usize),
    stop: &dyn Fn() -> bool,
    f: &mut OnLine<'_>,
) -> Result<(usize, usize), RunError> {
    use std::io::{BufRead, Read, Seek};
    let read_err = |e: std::io::Error| RunError::permanent(format!("cannot read `{display}`: {e}"));
    let mut file = std::fs::File::open(path).map_err(read_err)?;
    file.seek(std::io::SeekFrom::Start(from)).map_err(read_err)?;
    let mut reader = std::io::BufReader::with_capacity(1 << 16, file.take(to.saturating_sub(from)));
    let (mut line, mut i, mut objects) = (Vec::new(), before, 0usize);
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line).map_err(read_err)? == 0 {
            break;
        }
        i += 1;
        if i.is_multiple_of(STOP_CHECK_EVERY) && stop() {
            return Err(stopped(display));
        }
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        objects += 1;
        f(&line, i)?;
    }
    Ok((objects, i - before))
}

/// Where a file splits in two at a line break near its middle (`None`: too small to split).
fn midpoint(path: &Path) -> Option<u64> {
    use std::io::{Read, Seek};
    let len = std::fs::metadata(path).ok()?.len();
    if len < 8 << 20 {
        return None;
    }
    let mut f = std::fs::File::open(path).ok()?;
    f.seek(std::io::SeekFrom::Start(len / 2)).ok()?;
    let mut buf = vec![0u8; 1 << 20];
    let n = f.read(&mut buf).ok()?;
    memchr::memchr(b'\n', &buf[..n]).map(|i| len / 2 + i as u64 + 1)
}

/// A line that is not a JSON object, located.
fn bad_line(display: &str, line: usize, e: &LineError) -> RunError {
    match e {
        LineError::NotObject => RunError::permanent(format!("{display}:{line}:1: expected a JSON object")),
        LineError::Json(e) => RunError::permanent(format!("{display}:{line}:{}: {e}", e.column())),
    }
}

/// The first pass over a JSON Lines file: every record parsed, every field typed — the two
/// halves of a large file side by side, their typings merged in file order.
fn scan_jsonl(path: &Path, display: &str, stop: &(dyn Fn() -> bool + Sync)) -> Result<JsonTyping, RunError> {
    let scan = |range: (u64, u64, usize)| {
        let mut typing = JsonTyping::default();
        each_jsonl_in(path, display, range, stop, &mut |line, i| {
            typing.see_line(line).map_err(|e| bad_line(display, i, &e))
        })
        .map(|(objects, lines)| (typing, objects, lines))
    };
    let (typing, objects) = match midpoint(path) {
        None => scan((0, u64::MAX, 0)).map(|(t, o, _)| (t, o))?,
        Some(mid) => {
            let (first, second) = std::thread::scope(|s| {
                let second = s.spawn(|| scan((mid, u64::MAX, 0)));
                (scan((0, mid, 0)), second.join())
            });
            let (mut typing, objects, lines) = first?;
            let (rest, more) = match second {
                Ok(Ok((t, o, _))) => (t, o),
                // its line numbers start after the first half's: read it again to place the error
                _ => scan((mid, u64::MAX, lines)).map(|(t, o, _)| (t, o))?,
            };
            typing.merge(&rest);
            (typing, objects + more)
        }
    };
    if objects == 0 {
        return Err(RunError::permanent(format!("`{display}` has no JSON objects")));
    }
    Ok(typing)
}

/// The second pass: each record converted to a row of the first pass's columns.
fn convert_jsonl(
    path: &Path,
    display: &str,
    typing: &JsonTyping,
    stop: &dyn Fn() -> bool,
    batch: &mut BatchBuilder,
    emit: &mut dyn FnMut(&mut BatchBuilder) -> Result<(), RunError>,
) -> Result<(), RunError> {
    each_jsonl(path, display, stop, &mut |line, i| {
        if !typing.row_line(line, batch.row()).map_err(|e| bad_line(display, i, &e))? {
            return Err(RunError::permanent(format!(
                "{display}:{i}: this record has a field the first read of the file did not: the file changed \
                 while it was loaded"
            )));
        }
        if batch.is_full() { emit(batch) } else { Ok(()) }
    })?;
    if batch.is_empty() { Ok(()) } else { emit(batch) }
}

/// Reads a JSON Lines file: one object per line; columns are the keys in first-seen order,
/// typed as a REST source's records are (every digit kept).
///
/// # Errors
/// An unreadable file, a line that is not a JSON object (`file:line:column`), no object.
pub fn read_jsonl(path: &Path, display: &str, stop: &(dyn Fn() -> bool + Sync)) -> Result<Rows, RunError> {
    let mut typing = scan_jsonl(path, display, stop)?;
    let mut rows = Rows::new(typing.columns());
    let mut batch = BatchBuilder::new(rows.columns.len());
    convert_jsonl(path, display, &typing, stop, &mut batch, &mut |b| {
        rows.rows.append(&mut b.take(Vec::new()));
        Ok(())
    })?;
    Ok(rows)
}
