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

mod command;
mod delimited;
mod ingest;
mod outputs;
mod strict;

use phlo_core::data::{QueryEngine, TableStore};
use phlo_core::plugin::{AssetType, AssetTypeContext, Plugin, PluginError};
use phlo_core::spec::{AssetKind, AssetSpec};

pub use delimited::{
    CsvFormat, DEFAULT_NULL_VALUES, Encoding, expand_path, read_csv, read_csv_files_until, read_csv_until,
};
pub use ingest::{CsvConfig, JsonlConfig, Mode, read_jsonl};
pub use outputs::{CommandConfig, ExportConfig, SqlConfig};

/// Declares an asset type of this crate: its unit type, name, description, config, kind and
/// build function.
macro_rules! asset_type {
    ($ty:ident, $name:literal, $description:literal, $config:ty, $kind:ident, $build:path $(, no_expand: $ne:expr)?) => {
        #[doc = $description]
        #[derive(Debug)]
        pub struct $ty;
        impl Plugin for $ty {
            const NAME: &'static str = $name;
            const DESCRIPTION: &'static str = $description;
            type Config = $config;
            $(const NO_EXPAND: &'static [&'static str] = $ne;)?
            const TAGS: &'static [&'static str] = &["files", "sql"];
        }
        impl AssetType for $ty {
            const KIND: AssetKind = AssetKind::$kind;
            fn build(config: $config, ctx: &AssetTypeContext) -> Result<AssetSpec, PluginError> {
                $build(config, ctx)
            }
        }
    };
}

asset_type!(CsvFile, "csv", "A CSV file of the project loaded into a table", CsvConfig, Ingestion, ingest::build_csv);
asset_type!(
    JsonlFile,
    "jsonl",
    "A JSON Lines file of the project loaded into a table",
    JsonlConfig,
    Ingestion,
    ingest::build_jsonl
);
asset_type!(SqlModel, "sql", "A SELECT materialized as a table", SqlConfig, Transform, outputs::build_sql, no_expand: &["sql"]);
asset_type!(Export, "export", "A query or table written to a CSV or JSON file, atomically", ExportConfig, Publish, outputs::build_export, no_expand: &["query"]);
asset_type!(
    Command,
    "command",
    "A program run with arguments, environment and working directory",
    CommandConfig,
    Other,
    outputs::build_command
);

phlo_core::register!(asset_type CsvFile, requires: [dyn TableStore]);
phlo_core::register!(asset_type JsonlFile, requires: [dyn TableStore]);
phlo_core::register!(asset_type SqlModel, requires: [dyn QueryEngine]);
phlo_core::register!(asset_type Export, requires: [dyn QueryEngine]);
phlo_core::register!(asset_type Command);

#[cfg(test)]
mod tests;
