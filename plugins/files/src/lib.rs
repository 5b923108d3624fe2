//! Asset types for files and SQL, instantiated from phlo.yaml:
//!
//! * `csv` / `jsonl` (ingestion): read a file of the project into a table through the
//!   resolved `table_store`; declared or inferred column types; `mode: replace | append`;
//!   a bad row names the file, line and column, and nothing is half-written;
//! * `sql` (transform): a `SELECT` materialized as a table through `query_engine` (the `sql`
//!   field is never `${}`-expanded);
//! * `export` (publish): a query or table written to a CSV or JSON file, atomically;
//! * `command`: runs a program; a non-zero exit fails the asset with its stderr tail, and
//!   stdout lines become `telemetry.log` events.
//!
//! Tables are named after the asset key with `.` → `_` (`raw.orders` → `raw_orders`)
//! unless `table:` says otherwise.

mod ingest;
mod outputs;

use std::sync::Arc;

use phlo_core::plugin::{
    AssetProvider, AssetType, ConfigSpec, Factory, PluginContext, PluginDescriptor, PluginError, PluginMetadata,
};
use phlo_core::spec::AssetKind;

pub use ingest::{CsvConfig, JsonlConfig, Mode, read_csv};
pub use outputs::{CommandConfig, ExportConfig, SqlConfig};

struct Files;
impl AssetProvider for Files {}

fn create(_: &PluginContext) -> Result<Arc<dyn AssetProvider>, PluginError> {
    Ok(Arc::new(Files))
}

const TYPES: &[AssetType] = &[
    AssetType {
        name: "csv",
        description: "A CSV file of the project loaded into a table",
        kind: AssetKind::Ingestion,
        config: ConfigSpec::of::<CsvConfig>(),
        requires: &["table_store"],
        build: ingest::build_csv,
    },
    AssetType {
        name: "jsonl",
        description: "A JSON Lines file of the project loaded into a table",
        kind: AssetKind::Ingestion,
        config: ConfigSpec::of::<JsonlConfig>(),
        requires: &["table_store"],
        build: ingest::build_jsonl,
    },
    AssetType {
        name: "sql",
        description: "A SELECT materialized as a table",
        kind: AssetKind::Transform,
        config: ConfigSpec::of::<SqlConfig>().no_expand(&["sql"]),
        requires: &["query_engine"],
        build: outputs::build_sql,
    },
    AssetType {
        name: "export",
        description: "A query or table written to a CSV or JSON file, atomically",
        kind: AssetKind::Publish,
        config: ConfigSpec::of::<ExportConfig>().no_expand(&["query"]),
        requires: &["query_engine"],
        build: outputs::build_export,
    },
    AssetType {
        name: "command",
        description: "A program run with arguments, environment and working directory",
        kind: AssetKind::Other,
        config: ConfigSpec::of::<CommandConfig>(),
        requires: &[],
        build: outputs::build_command,
    },
];

/// The `files` asset provider (asset types only; it defines no assets of its own).
pub const FILES: PluginDescriptor = PluginDescriptor::new("files", env!("CARGO_PKG_NAME"), Factory::Asset(create))
    .with_metadata(
        PluginMetadata::new(env!("CARGO_PKG_VERSION"), "csv, jsonl, sql, export and command asset types")
            .author("phlo developers")
            .license("Apache-2.0")
            .tags(&["files", "sql", "ingestion"]),
    )
    .with_asset_types(TYPES);

phlo_core::submit_plugin!(FILES);

#[cfg(test)]
mod tests;
