//! `sql` models, `export` files and `command` steps.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use phlo_core::data::{
    Cell, ModelTarget, OnSchemaChange, PARTITION_COLUMN, QueryEngine, Rows, Written, quote_ident, table_name,
};
use phlo_core::diagnostic::Code;
use phlo_core::plugin::{AssetTypeContext, PluginError};
use phlo_core::spec::{AssetSpec, MaterializeResult, PartitionSpec, RunContext, RunError};
use schemars::JsonSchema;
use serde::Deserialize;

/// The keys of a `type: sql` asset.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SqlConfig {
    /// A `SELECT` whose result becomes the table. Never `${}`-expanded. For a partitioned
    /// asset, `{partition}` is replaced by the partition key and the rows land tagged with a
    /// `partition_key` column (re-running a partition replaces its rows).
    pub sql: String,
    /// The table (default: the asset key with `.` → `_`).
    #[serde(default)]
    pub table: Option<String>,
    /// For a partitioned model whose SQL does not depend on the partition: every partition
    /// gets the same rows, on purpose (otherwise not using `{partition}` is an error).
    #[serde(default)]
    pub ignore_partition: bool,
    /// Whether phlo reads the SQL when the project loads (default true): syntax errors are
    /// reported then, and the tables it reads become dependencies. `false` skips this for SQL
    /// phlo's parser does not understand; list `deps:` yourself then.
    #[serde(default = "yes")]
    pub analyze: bool,
    /// For a partitioned model: what a partition whose SELECT has other columns than the
    /// table does — `fail` (the default: the partition fails naming the columns, nothing is
    /// written) or `append_new_columns` (new columns are added to the table; columns the
    /// SELECT lacks are null in this partition). Columns are always matched by name.
    #[serde(default)]
    pub on_schema_change: OnSchemaChange,
}

fn yes() -> bool {
    true
}

/// The keys of a `type: export` asset.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExportConfig {
    /// The file written, relative to the project (`.csv` or `.json`).
    pub path: String,
    /// A query to export (never `${}`-expanded) …
    #[serde(default)]
    pub query: Option<String>,
    /// … or a table to export whole.
    #[serde(default)]
    pub table: Option<String>,
    /// As for `sql` models: whether phlo reads the query when the project loads.
    #[serde(default = "yes")]
    pub analyze: bool,
}

/// The keys of a `type: command` asset.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CommandConfig {
    /// The program (found on `PATH` unless a path).
    pub program: String,
    /// Its arguments.
    #[serde(default)]
    pub args: Vec<String>,
    /// Extra environment variables.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Working directory, relative to the project (default: the project).
    #[serde(default)]
    pub cwd: Option<String>,
}

fn engine(ctx: &RunContext) -> Result<Arc<dyn QueryEngine>, RunError> {
    ctx.capability::<dyn QueryEngine>()
}

pub(crate) fn build_sql(cfg: SqlConfig, ctx: &AssetTypeContext) -> Result<AssetSpec, PluginError> {
    let sql = cfg.sql.trim().trim_end_matches(';').to_string();
    if sql.is_empty() {
        return Err(PluginError::invalid("sql", "`sql` is empty", "write the SELECT whose result becomes the table"));
    }
    check_placeholders(&cfg, ctx)?;
    let (reads, columns, column_refs) = if cfg.analyze {
        phlo_core::sql::analyze_all(&cfg.sql, "sql")?
    } else {
        (Vec::new(), phlo_core::spec::Columns::Unknown, None)
    };
    let partitions = Arc::new(ctx.partitions.clone());
    let on_schema_change = cfg.on_schema_change;
    if on_schema_change != OnSchemaChange::Fail && !ctx.partitions.is_partitioned() {
        return Err(PluginError::invalid(
            "on_schema_change",
            "`on_schema_change` applies to partitioned models only (a model without partitions replaces its whole table)",
            "remove it, or add `partitions:` to the asset",
        ));
    }
    let table = cfg.table.unwrap_or_else(|| table_name(&ctx.key));
    let t = table.clone();
    let at = ctx.location("sql").map(|l| format!(" ({l})")).unwrap_or_default();
    let mut spec = AssetSpec::new(ctx.key.as_str());
    spec.reads = reads;
    spec.reads_field = cfg.analyze.then(|| String::from("sql"));
    spec.column_refs = column_refs;
    // a partitioned model's table also holds the partition column phlo adds
    if ctx.partitions.is_partitioned() {
        spec.partition_column = Some(String::from(PARTITION_COLUMN));
    }
    spec.columns = match (columns, ctx.partitions.is_partitioned()) {
        (phlo_core::spec::Columns::Known(mut c), true) => {
            c.push(String::from(PARTITION_COLUMN));
            phlo_core::spec::Columns::Known(c)
        }
        (phlo_core::spec::Columns::AllOf(t, mut c), true) => {
            c.push(String::from(PARTITION_COLUMN));
            phlo_core::spec::Columns::AllOf(t, c)
        }
        (c, _) => c,
    };
    Ok(spec
        .with_description(format!("SQL model materialized as `{table}`"))
        .with_metadata("table", table.as_str())
        .with_run(move |rc: RunContext| {
            let (sql, table, at, partitions) = (sql.clone(), t.clone(), at.clone(), Arc::clone(&partitions));
            async move {
                crate::ingest::blocking(move || {
                    materialize_model(&rc, &sql, &table, &at, &partitions, on_schema_change)
                })
                .await?
            }
        }))
}

/// `{partition}`, `{partition_start}` and `{partition_end}` are used where they mean
/// something: a placeholder without partitions would stay literal text, and a partitioned
/// model that never uses one would write the same rows into every partition.
fn check_placeholders(cfg: &SqlConfig, ctx: &AssetTypeContext) -> Result<(), PluginError> {
    let used = phlo_core::spec::partition::check_placeholders(&cfg.sql, &ctx.partitions, &ctx.key)
        .map_err(|(message, help)| PluginError::invalid("sql", message, help))?;
    match &ctx.partitions {
        p if p.is_partitioned() && used.is_empty() && !cfg.ignore_partition => Err(PluginError::invalid(
            "sql",
            format!(
                "asset `{}` is partitioned but its SQL never uses `{{partition}}`: every partition would get the same rows",
                ctx.key
            ),
            "filter by it (`WHERE day = '{partition}'`, or `{partition_start}` / `{partition_end}` for the window), or say \
             `ignore_partition: true` if every partition should hold the same rows",
        )),
        _ => Ok(()),
    }
}

/// Where a SQLite error about a table that does not exist names an asset key instead of its
/// table (`raw.orders` for `raw_orders`), says so.
fn table_hint(message: &str) -> String {
    let Some(rest) = message.split("no such table: ").nth(1) else { return String::new() };
    let name: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_' || *c == '.').collect();
    if name.contains('.') {
        format!(" (the table of asset `{name}` is `{}`)", table_name(&name))
    } else {
        String::new()
    }
}

/// Builds a model's table: the user's SELECT is checked on its own first, so an error points
/// into the user's SQL (and `at`, where phlo.yaml writes it), never into the statements phlo
/// wraps around it; then it is
/// materialized in a staging table and swapped in, in one transaction that the attempt's stop
/// signal can interrupt (the old table is then left as it was).
fn materialize_model(
    rc: &RunContext,
    sql: &str,
    table: &str,
    at: &str,
    partitions: &PartitionSpec,
    on_schema_change: OnSchemaChange,
) -> Result<MaterializeResult, RunError> {
    let engine = engine(rc)?;
    let stop = rc.stop_signal();
    let fail = |e: phlo_core::data::DataError| {
        if e.interrupted {
            RunError::new(format!("the SQL of `{}` was stopped", rc.asset))
        } else {
            let hint = table_hint(&e.message);
            RunError::permanent(format!("the SQL of `{}`{at} failed: {}{hint}", rc.asset, e.message))
                .with_code(Code::SqlFailed)
        }
    };
    let body = match &rc.partition {
        Some(p) => phlo_core::spec::partition::fill_placeholders(sql, partitions, p)
            .map_err(|e| RunError::permanent(e.to_string()))?,
        None => sql.to_string(),
    };
    // the SELECT alone: errors carry positions in what the user wrote
    engine.validate(&body).map_err(fail)?;
    // a partitioned model replaces its partition's rows, tagged `partition_key`; the write
    // happens once per run step
    let partition = rc.partition.as_deref().map(|p| (PARTITION_COLUMN, p));
    let step = rc.step_mark();
    let written = match engine.committed(&step).map_err(fail)? {
        Some(c) => Written::Already(c),
        None => {
            let into = ModelTarget { partition, step: Some(&step), on_schema_change };
            engine.materialize(table, &body, &into, &stop).map_err(fail)?
        }
    };
    let result = MaterializeResult::new().with_written(&written).with_metadata("table", table);
    match engine.version(table, partition).map_err(fail)? {
        Some(v) => Ok(result.with_data_version(v)),
        None => Ok(result),
    }
}

/// Rows as CSV (RFC 4180): a header line, then one line per row. NULL is an empty field and
/// the empty text is `""`, so the two read back apart (PostgreSQL's `COPY … CSV` and DuckDB
/// write them so); reals keep a decimal point (`7770.0`); bytes are `\x` and hex digits.
fn csv_text(rows: &Rows) -> Result<Vec<u8>, RunError> {
    fn field(out: &mut Vec<u8>, text: &str, quote_empty: bool) {
        let needs = (quote_empty && text.is_empty()) || text.contains([',', '"', '\n', '\r']);
        if needs {
            out.push(b'"');
            out.extend_from_slice(text.replace('"', "\"\"").as_bytes());
            out.push(b'"');
        } else {
            out.extend_from_slice(text.as_bytes());
        }
    }
    let mut out = Vec::new();
    for (i, c) in rows.columns.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        field(&mut out, &c.name, true);
    }
    out.push(b'\n');
    for r in &rows.rows {
        for (i, cell) in r.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            match cell {
                Cell::Null => {}
                Cell::Text(t) => field(&mut out, t, true),
                other => field(&mut out, &other.to_string(), false),
            }
        }
        out.push(b'\n');
    }
    Ok(out)
}

/// One row as a JSON object whose keys are in the query's column order.
struct OrderedRow<'a> {
    columns: &'a [phlo_core::data::Column],
    values: serde_json::Value,
}

impl serde::Serialize for OrderedRow<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = s.serialize_map(Some(self.columns.len()))?;
        for c in self.columns {
            map.serialize_entry(&c.name, self.values.get(&c.name).unwrap_or(&serde_json::Value::Null))?;
        }
        map.end()
    }
}

fn json_text(rows: &Rows) -> Result<Vec<u8>, RunError> {
    let objects: Vec<OrderedRow<'_>> =
        (0..rows.len()).map(|i| OrderedRow { columns: &rows.columns, values: rows.row_json(i) }).collect();
    let mut out = serde_json::to_vec_pretty(&objects).map_err(|e| RunError::new(e.to_string()))?;
    out.push(b'\n');
    Ok(out)
}

/// Writes `bytes` to `path` through a temporary file in the same directory and a rename:
/// readers see the old file or the new one, never half of one.
fn write_atomically(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or_else(|| std::path::Path::new("."));
    std::fs::create_dir_all(dir)?;
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = dir.join(format!(".{name}.phlo-tmp-{}", std::process::id()));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[expect(clippy::needless_pass_by_value, reason = "asset types receive their config by value")]
pub(crate) fn build_export(cfg: ExportConfig, ctx: &AssetTypeContext) -> Result<AssetSpec, PluginError> {
    let query = match (&cfg.query, &cfg.table) {
        (Some(q), None) => q.trim().trim_end_matches(';').to_string(),
        (None, Some(t)) => format!("SELECT * FROM {}", quote_ident(t)),
        _ => {
            return Err(PluginError::with_help(
                "an export takes `query:` or `table:` (one of the two)",
                "e.g. `table: marts_daily_revenue`",
            ));
        }
    };
    let json = match std::path::Path::new(&cfg.path).extension().and_then(|e| e.to_str()) {
        Some("csv") => false,
        Some("json") => true,
        _ => {
            return Err(PluginError::invalid(
                "path",
                format!("`{}` is neither a .csv nor a .json file", cfg.path),
                "name the file `….csv` or `….json`",
            ));
        }
    };
    let path: PathBuf = ctx.project_path("path", &cfg.path)?;
    let display = cfg.path.clone();
    let mut spec = AssetSpec::new(ctx.key.as_str());
    match (&cfg.query, &cfg.table) {
        (Some(q), _) if cfg.analyze => {
            spec.reads = phlo_core::sql::tables_read(q, "query")?;
            spec.reads_field = Some(String::from("query"));
        }
        (_, Some(t)) => {
            spec.reads = vec![phlo_core::spec::TableRef { name: t.clone(), line: 0, column: 0 }];
            spec.reads_field = Some(String::from("table"));
        }
        _ => {}
    }
    Ok(spec.with_description(format!("exported to {}", cfg.path)).with_metadata("path", cfg.path.as_str()).with_run(
        move |rc: RunContext| {
            let (query, path, display) = (query.clone(), path.clone(), display.clone());
            let work = crate::ingest::blocking(move || {
                let rows = engine(&rc)?.query_until(&query, &rc.stop_signal()).map_err(|e| {
                    let hint = table_hint(&e.message);
                    RunError::permanent(format!("the export query of `{}` failed: {e}{hint}", rc.asset))
                        .with_code(Code::SqlFailed)
                })?;
                let bytes = if json { json_text(&rows)? } else { csv_text(&rows)? };
                write_atomically(&path, &bytes).map_err(|e| RunError::new(format!("cannot write `{display}`: {e}")))?;
                Ok(MaterializeResult::new()
                    .with_row_count(rows.len() as u64)
                    .with_metadata("path", display.as_str())
                    .with_data_version(format!("bytes-{:032x}", xxhash_rust::xxh3::xxh3_128(&bytes))))
            });
            async move { work.await? }
        },
    ))
}

/// The log file of a command step: its asset key, and its partition when it has one (made
/// safe as a file name).
fn log_name(step: &phlo_core::data::StepMark) -> String {
    let safe = |s: &str| {
        s.chars().map(|c| if c.is_ascii_alphanumeric() || "._-".contains(c) { c } else { '_' }).collect::<String>()
    };
    match &step.partition {
        Some(p) => format!("{}.{}.log", safe(&step.asset), safe(p)),
        None => format!("{}.log", safe(&step.asset)),
    }
}

pub(crate) fn build_command(cfg: CommandConfig, ctx: &AssetTypeContext) -> Result<AssetSpec, PluginError> {
    let cwd = ctx.project_path("cwd", cfg.cwd.as_deref().unwrap_or("."))?;
    let logs = ctx.project_dir.join(".phlo/logs");
    Ok(AssetSpec::new(ctx.key.as_str()).with_description(format!("runs `{}`", cfg.program)).with_run(
        move |rc: RunContext| {
            let (cfg, cwd, logs) = (cfg.clone(), cwd.clone(), logs.clone());
            async move {
                let program = cfg.program.clone();
                let step = rc.step_mark();
                let log = crate::command::LogFile {
                    path: logs.join(&*rc.run_id).join(log_name(&step)),
                    shown: format!(".phlo/logs/{}/{}", rc.run_id, log_name(&step)),
                };
                let emit = |line: &str| rc.log("info", line);
                let done = crate::command::run_program(&cfg, &cwd, &step, &rc.cancel, &log, &emit)
                    .await
                    .map_err(|e| RunError::permanent(e).with_code(Code::CommandFailed))?;
                if done.stopped {
                    return Err(RunError::new(format!("`{program}` was stopped (with every process it started)")));
                }
                if !done.status.success() {
                    let code =
                        done.status.code().map_or_else(|| String::from("a signal"), |c| format!("exit code {c}"));
                    return Err(RunError::new(format!(
                        "`{program}` failed with {code}: {} (the whole output is in {})",
                        done.stderr_tail.join("\n"),
                        log.shown
                    ))
                    .with_code(Code::CommandFailed));
                }
                Ok(MaterializeResult::new()
                    .with_metadata("stdout_lines", done.stdout_lines)
                    .with_metadata("log", log.shown.as_str()))
            }
        },
    ))
}
