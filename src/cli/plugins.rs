//! `phlo plugins list` and `phlo plugins info NAME`.

use std::io::{self, Write};
use std::path::Path;

use phlo_core::diagnostic::{Code, Diagnostic, did_you_mean};
use phlo_core::plugin::{Factory, PluginEntry, PluginKind, PluginStatus};
use phlo_core::project::Project;
use serde::Serialize;

use super::render::{Table, join_or_dash};
use super::{Outcome, load, write_json};

#[derive(Debug, clap::Args)]
pub(crate) struct ListArgs {
    /// Only plugins of this kind (asset_type, asset_provider, resource_provider,
    /// quality_check, hook_provider, orchestrator_adapter).
    #[arg(long, value_parser = parse_kind)]
    kind: Option<PluginKind>,
    /// Print JSON rows instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Args)]
pub(crate) struct InfoArgs {
    /// The plugin's name.
    name: String,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

fn parse_kind(s: &str) -> Result<PluginKind, String> {
    PluginKind::ALL.into_iter().find(|k| k.as_str() == s).ok_or_else(|| {
        let names: Vec<&str> = PluginKind::ALL.iter().map(|k| k.as_str()).collect();
        format!("unknown kind `{s}`; kinds are {}", names.join(", "))
    })
}

#[derive(Serialize)]
struct Row {
    name: String,
    kind: PluginKind,
    version: &'static str,
    #[serde(rename = "crate")]
    crate_name: &'static str,
    description: &'static str,
    provides: Vec<String>,
    requires: Vec<String>,
    optional: Vec<String>,
    enabled: bool,
    ready: bool,
    missing: Vec<String>,
    status: PluginStatus,
    reason: Option<String>,
    /// For asset types: the kind of their assets.
    #[serde(skip_serializing_if = "Option::is_none")]
    asset_kind: Option<&'static str>,
    /// For orchestrator adapters: `executes` (runs in-process) or `renders` (`phlo export`).
    #[serde(skip_serializing_if = "Option::is_none")]
    shape: Option<&'static str>,
}

fn strings(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_string()).collect()
}

fn row(project: &Project, e: &PluginEntry) -> Row {
    let d = e.descriptor();
    let readiness = project.readiness_of(e.kind(), e.name());
    let status = e.status();
    Row {
        name: e.name().to_string(),
        kind: e.kind(),
        version: d.metadata.version,
        crate_name: d.crate_name,
        description: d.metadata.description,
        provides: d.capabilities().collect(),
        requires: strings(d.metadata.requires),
        optional: strings(d.metadata.optional),
        enabled: e.is_enabled(),
        ready: readiness.is_some_and(|r| r.ready),
        missing: readiness.map(|r| r.missing.clone()).unwrap_or_default(),
        reason: match &status {
            PluginStatus::Disabled(why) => Some(why.clone()),
            _ => readiness.and_then(|r| r.reason.clone()),
        },
        status,
        asset_kind: match d.factory {
            Factory::AssetType { kind, .. } => Some(kind.as_str()),
            _ => None,
        },
        shape: d.adapter_shape(),
    }
}

pub(crate) fn list<W: Write>(dir: &Path, args: &ListArgs, out: &mut W) -> io::Result<Outcome> {
    let project = match load(dir, false, Default::default()) {
        Ok(p) => p,
        Err(o) => return Ok(o),
    };
    let rows: Vec<Row> = project
        .registry
        .list()
        .iter()
        .filter(|e| args.kind.is_none_or(|k| e.kind() == k))
        .map(|e| row(&project, e))
        .collect();
    if args.json {
        write_json(out, &rows)?;
    } else if rows.is_empty() {
        writeln!(out, "no plugins are compiled in (enable cargo features such as `plugin-sqlite`)")?;
    } else {
        let mut t = Table::new(vec!["NAME", "KIND", "VERSION", "CRATE", "PROVIDES", "REQUIRES", "READY"]);
        for r in &rows {
            let ready = match (&r.status, r.ready) {
                (PluginStatus::Disabled(_), _) => String::from("disabled"),
                (PluginStatus::Failed(_), _) => String::from("failed"),
                (_, true) => String::from("yes"),
                (_, false) => format!("no (missing {})", join_or_dash(&r.missing)),
            };
            t.row(vec![
                r.name.clone(),
                r.shape.map_or_else(|| r.kind.to_string(), |s| format!("{} ({s})", r.kind)),
                r.version.to_string(),
                r.crate_name.to_string(),
                join_or_dash(&r.provides),
                join_or_dash(&r.requires),
                ready,
            ]);
        }
        t.write(out)?;
        if args.kind.is_none() {
            // secret resolvers register with `secret_resolver!` (no config, always on)
            let schemes: Vec<String> = phlo_core::secret::resolvers()
                .iter()
                .map(|r| format!("`{}:` ({}, {})", r.scheme, r.description, r.crate_name))
                .collect();
            writeln!(out, "\nsecret resolvers: {}", schemes.join("; "))?;
        }
    }
    Ok(Outcome::ok())
}

#[derive(Serialize)]
struct Info {
    #[serde(flatten)]
    row: Row,
    author: &'static str,
    license: &'static str,
    tags: Vec<String>,
    config_schema: serde_json::Value,
}

pub(crate) fn info<W: Write>(dir: &Path, args: &InfoArgs, out: &mut W) -> io::Result<Outcome> {
    let project = match load(dir, false, Default::default()) {
        Ok(p) => p,
        Err(o) => return Ok(o),
    };
    let matches: Vec<&PluginEntry> = project.registry.find(&args.name).collect();
    if matches.is_empty() {
        let names: Vec<&str> = project.registry.list().iter().map(PluginEntry::name).collect();
        let help = match did_you_mean(&args.name, names.iter().copied()) {
            Some(s) => format!("did you mean `{s}`?"),
            None => String::from("see `phlo plugins list` for the compiled plugins"),
        };
        return Ok(Outcome::from_diagnostics(
            Diagnostic::error(Code::UnknownPlugin, format!("no plugin named `{}` is compiled in", args.name))
                .with_help(help)
                .into(),
        ));
    }
    let infos: Vec<Info> = matches
        .iter()
        .map(|e| {
            let d = e.descriptor();
            Info {
                row: row(&project, e),
                author: d.metadata.author,
                license: d.metadata.license,
                tags: strings(d.metadata.tags),
                config_schema: (d.config.schema)().to_value(),
            }
        })
        .collect();
    if args.json {
        if let [one] = infos.as_slice() {
            write_json(out, one)?;
        } else {
            write_json(out, &infos)?;
        }
        return Ok(Outcome::ok());
    }
    for (i, info) in infos.iter().enumerate() {
        if i > 0 {
            writeln!(out)?;
        }
        write_info(out, info)?;
    }
    Ok(Outcome::ok())
}

fn write_info<W: Write>(out: &mut W, info: &Info) -> io::Result<()> {
    let r = &info.row;
    writeln!(out, "{} ({})", r.name, r.kind)?;
    let field = |out: &mut W, k: &str, v: &str| -> io::Result<()> {
        if v.is_empty() { Ok(()) } else { writeln!(out, "  {k:<12} {v}") }
    };
    field(out, "description", r.description)?;
    field(out, "version", r.version)?;
    field(out, "crate", r.crate_name)?;
    field(out, "author", info.author)?;
    field(out, "license", info.license)?;
    field(out, "tags", &info.tags.join(", "))?;
    field(out, "provides", &join_or_dash(&r.provides))?;
    field(out, "requires", &join_or_dash(&r.requires))?;
    field(out, "optional", &join_or_dash(&r.optional))?;
    let status = match &r.status {
        PluginStatus::Disabled(why) => format!("disabled ({why})"),
        PluginStatus::Failed(why) => format!("failed to load: {why}"),
        PluginStatus::Loaded | PluginStatus::NotLoaded if r.ready => String::from("ready"),
        _ => format!("not ready: {}", r.reason.clone().unwrap_or_default()),
    };
    field(out, "status", &status)?;
    if let Some(shape) = r.shape {
        field(out, "shape", shape)?;
    }
    if let Some(kind) = r.asset_kind {
        field(out, "asset kind", kind)?;
    }
    if info.config_schema.get("properties").and_then(|p| p.as_object()).is_some_and(|p| !p.is_empty()) {
        writeln!(out, "  config:")?;
        write_schema_fields(out, &info.config_schema)?;
    }
    Ok(())
}

fn write_schema_fields<W: Write>(out: &mut W, schema: &serde_json::Value) -> io::Result<()> {
    let Some(props) = schema.get("properties").and_then(|p| p.as_object()) else { return Ok(()) };
    for (name, p) in props {
        // `Option<T>` fields are `[T, "null"]`: show T
        let ty = match p.get("type") {
            Some(serde_json::Value::String(t)) => t.clone(),
            Some(serde_json::Value::Array(ts)) => {
                ts.iter().filter_map(|t| t.as_str()).filter(|t| *t != "null").collect::<Vec<_>>().join(" or ")
            }
            _ => String::from("value"),
        };
        let default = p.get("default").filter(|d| !d.is_null()).map(|d| format!(" (default {d})")).unwrap_or_default();
        let desc = p.get("description").and_then(|d| d.as_str()).unwrap_or("").replace('\n', " ");
        writeln!(out, "    {name}: {ty}{default}  {desc}")?;
    }
    Ok(())
}
