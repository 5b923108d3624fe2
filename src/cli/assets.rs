//! `phlo assets list`, `phlo assets graph` and `phlo assets partitions`.

use std::collections::BTreeSet;
use std::io::{self, Write};
use std::path::Path;

use phlo_core::diagnostic::Diagnostics;
use phlo_core::graph::{AssetGraph, Selection};
use phlo_core::project::Project;
use serde::Serialize;

use super::render::{Table, join_or_dash};
use super::{Outcome, load, write_json};

#[derive(Debug, clap::Args)]
pub(crate) struct ListArgs {
    /// Only these assets (selection language, e.g. `+marts.revenue`, `tag:pii`, `raw.*`).
    #[arg(long, short = 's', value_name = "SEL")]
    select: Option<String>,
    /// Print JSON rows instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum GraphFormat {
    /// A Mermaid flowchart (renders on GitHub and in most Markdown viewers).
    Mermaid,
    /// Graphviz DOT.
    Dot,
    /// `{nodes, edges}` as JSON.
    Json,
}

#[derive(Debug, clap::Args)]
pub(crate) struct GraphArgs {
    /// Only these assets and the edges between them.
    #[arg(long, short = 's', value_name = "SEL")]
    select: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = GraphFormat::Mermaid)]
    format: GraphFormat,
}

/// Loads the project and applies `--select`; stops on selection errors.
fn selected(dir: &Path, select: Option<&str>) -> Result<(Project, Vec<u32>), Outcome> {
    let project = load(dir, false, Default::default())?;
    let chosen = match select {
        None => (0..project.graph.len() as u32).collect(),
        Some(text) => match Selection::parse(text).and_then(|s| s.select(&project.graph)) {
            Ok(v) => v,
            Err(e) => return Err(Outcome::from_diagnostics(e.to_diagnostic(text).into())),
        },
    };
    Ok((project, chosen))
}

/// Errors of the project (warnings are `phlo validate`'s business).
fn errors_of(project: &Project) -> Outcome {
    let mut d = Diagnostics::new();
    d.extend(project.diagnostics.iter().filter(|d| d.is_error()).cloned());
    Outcome::from_diagnostics(d)
}

#[derive(Serialize)]
struct Row<'a> {
    key: &'a str,
    group: Option<&'a str>,
    kind: &'static str,
    deps: &'a [phlo_core::spec::AssetKey],
    partitions: String,
    provider: &'a str,
    asset_type: Option<&'a str>,
    description: Option<&'a str>,
    external: bool,
    tags: &'a std::collections::BTreeMap<String, String>,
    requires: &'a [String],
    checks: Vec<&'a str>,
    /// `--json` only: the columns with the types phlo chose (read from the warehouse once
    /// the asset has been materialized; before, the names it knows with no type).
    #[serde(skip_serializing_if = "Option::is_none")]
    columns: Option<Vec<ColumnRow>>,
}

#[derive(Serialize)]
struct ColumnRow {
    name: String,
    #[serde(rename = "type")]
    data_type: Option<&'static str>,
}

/// An asset's columns: as its table holds them, when it has one already; else the names its
/// spec knows (a CSV header, a SELECT list), untyped.
fn columns_of(project: &phlo_core::project::Project, node: &phlo_core::graph::AssetNode) -> Vec<ColumnRow> {
    let spec = &node.spec;
    let table = spec.metadata.get("table").and_then(serde_json::Value::as_str);
    if let Some(table) = table {
        let (caps, _) = project.capabilities_of(&spec.key);
        if let Some(store) = caps.get::<dyn phlo_core::data::TableStore>()
            && let Ok(Some(cols)) = store.describe(table)
        {
            return cols
                .into_iter()
                .map(|c| ColumnRow { name: c.name, data_type: Some(c.data_type.as_str()) })
                .collect();
        }
    }
    match &spec.columns {
        phlo_core::spec::Columns::Known(names) => {
            names.iter().map(|n| ColumnRow { name: n.clone(), data_type: None }).collect()
        }
        _ => Vec::new(),
    }
}

pub(crate) fn list<W: Write>(dir: &Path, args: &ListArgs, out: &mut W) -> io::Result<Outcome> {
    let (project, chosen) = match selected(dir, args.select.as_deref()) {
        Ok(x) => x,
        Err(o) => return Ok(o),
    };
    let rows: Vec<Row<'_>> = chosen
        .iter()
        .map(|&i| {
            let n = project.graph.node(i);
            Row {
                key: &n.spec.key,
                group: n.spec.group.as_deref(),
                kind: n.spec.kind.as_str(),
                deps: &n.spec.deps,
                partitions: n.spec.partitions.to_string(),
                provider: &n.provider,
                asset_type: n.asset_type.as_deref(),
                description: n.spec.description.as_deref(),
                external: n.spec.external,
                tags: &n.spec.tags,
                requires: &n.spec.requires,
                checks: n.spec.checks.iter().map(|c| c.name.as_str()).collect(),
                columns: args.json.then(|| columns_of(&project, n)),
            }
        })
        .collect();
    if args.json {
        write_json(out, &rows)?;
    } else if rows.is_empty() {
        writeln!(out, "the project has no assets")?;
    } else {
        let mut t = Table::new(vec!["KEY", "KIND", "GROUP", "DEPS", "PARTITIONS", "PROVIDER"]);
        for r in &rows {
            t.row(vec![
                r.key.to_string(),
                if r.external { String::from("external") } else { r.kind.to_string() },
                r.group.unwrap_or("-").to_string(),
                join_or_dash(&r.deps.iter().map(ToString::to_string).collect::<Vec<_>>()),
                r.partitions.clone(),
                r.provider.to_string(),
            ]);
        }
        t.write(out)?;
    }
    Ok(errors_of(&project))
}

pub(crate) fn graph<W: Write>(dir: &Path, args: &GraphArgs, out: &mut W) -> io::Result<Outcome> {
    let (project, chosen) = match selected(dir, args.select.as_deref()) {
        Ok(x) => x,
        Err(o) => return Ok(o),
    };
    let g = &project.graph;
    let inside: BTreeSet<u32> = chosen.iter().copied().collect();
    let mut edges: Vec<(u32, u32)> = g.edges().filter(|(a, b)| inside.contains(a) && inside.contains(b)).collect();
    edges.sort_unstable();
    match args.format {
        GraphFormat::Mermaid => write_mermaid(out, g, &chosen, &edges)?,
        GraphFormat::Dot => write_dot(out, g, &chosen, &edges)?,
        GraphFormat::Json => {
            #[derive(Serialize)]
            struct Node<'a> {
                key: &'a str,
                kind: &'static str,
                group: Option<&'a str>,
                provider: &'a str,
                external: bool,
            }
            #[derive(Serialize)]
            struct Edge<'a> {
                from: &'a str,
                to: &'a str,
                /// Added because the SQL of `to` reads the table of `from`.
                inferred: bool,
            }
            #[derive(Serialize)]
            struct Doc<'a> {
                nodes: Vec<Node<'a>>,
                edges: Vec<Edge<'a>>,
            }
            let doc = Doc {
                nodes: chosen
                    .iter()
                    .map(|&i| {
                        let n = g.node(i);
                        Node {
                            key: &n.spec.key,
                            kind: n.spec.kind.as_str(),
                            group: n.spec.group.as_deref(),
                            provider: &n.provider,
                            external: n.spec.external,
                        }
                    })
                    .collect(),
                edges: edges
                    .iter()
                    .map(|&(a, b)| Edge { from: g.key(a), to: g.key(b), inferred: inferred(g, a, b) })
                    .collect(),
            };
            write_json(out, &doc)?;
        }
    }
    Ok(errors_of(&project))
}

/// Whether the edge `a → b` was inferred from the SQL of `b`.
fn inferred(g: &AssetGraph, a: u32, b: u32) -> bool {
    g.node(b).spec.inferred_deps.iter().any(|k| k == g.key(a))
}

fn write_mermaid<W: Write>(out: &mut W, g: &AssetGraph, nodes: &[u32], edges: &[(u32, u32)]) -> io::Result<()> {
    writeln!(out, "flowchart LR")?;
    for &i in nodes {
        let n = g.node(i);
        let label = n.spec.key.replace('"', "#quot;");
        let shape = if n.spec.external { format!("n{i}[/\"{label}\"/]") } else { format!("n{i}[\"{label}\"]") };
        writeln!(out, "    {shape}")?;
    }
    for &(a, b) in edges {
        // dotted: inferred from the SQL
        let arrow = if inferred(g, a, b) { "-.->" } else { "-->" };
        writeln!(out, "    n{a} {arrow} n{b}")?;
    }
    Ok(())
}

fn write_dot<W: Write>(out: &mut W, g: &AssetGraph, nodes: &[u32], edges: &[(u32, u32)]) -> io::Result<()> {
    let quote = |s: &str| format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""));
    writeln!(out, "digraph assets {{")?;
    writeln!(out, "    rankdir=LR;")?;
    writeln!(out, "    node [shape=box];")?;
    for &i in nodes {
        let n = g.node(i);
        let style = if n.spec.external { " [style=dashed]" } else { "" };
        writeln!(out, "    {}{style};", quote(&n.spec.key))?;
    }
    for &(a, b) in edges {
        let style = if inferred(g, a, b) { " [style=dotted]" } else { "" };
        writeln!(out, "    {} -> {}{style};", quote(g.key(a)), quote(g.key(b)))?;
    }
    writeln!(out, "}}")
}

#[derive(Debug, clap::Args)]
pub(crate) struct PartitionsArgs {
    /// The asset key.
    key: String,
    /// Print JSON rows instead of a table.
    #[arg(long)]
    json: bool,
    /// Evaluate "now" at this instant: RFC 3339 (`2024-03-15T10:30:00Z`) or a UTC date-time.
    #[arg(long, value_name = "TIMESTAMP", value_parser = super::parse_at)]
    at: Option<chrono::DateTime<chrono::Utc>>,
}

#[derive(Serialize)]
struct PartitionRow {
    key: String,
    /// Window start and end in the partitions' timezone (RFC 3339).
    start: Option<String>,
    end: Option<String>,
    /// The same in UTC.
    start_utc: Option<String>,
    end_utc: Option<String>,
}

/// `phlo assets partitions KEY`: the asset's partitions at now (or `--at`), with windows.
pub(crate) fn partitions<W: Write>(dir: &Path, args: &PartitionsArgs, out: &mut W) -> io::Result<Outcome> {
    use chrono::SecondsFormat;
    use phlo_core::diagnostic::{Code, Diagnostic};
    use phlo_core::spec::PartitionSpec;
    let (project, chosen) = match selected(dir, Some(&args.key)) {
        Ok(x) => x,
        Err(o) => return Ok(o),
    };
    // the key itself, not a selection that happens to match one asset
    let Some(&i) =
        chosen.first().filter(|&&i| chosen.len() == 1 && project.graph.node(i).spec.key.as_str() == args.key)
    else {
        return Ok(Outcome::from_diagnostics(
            Diagnostic::error(Code::SelectionSyntax, format!("`{}` is not one asset key", args.key))
                .with_help("give one key, as `phlo assets list` shows it")
                .into(),
        ));
    };
    let spec = &project.graph.node(i).spec;
    let now = args.at.unwrap_or_else(chrono::Utc::now);
    let rows: Vec<PartitionRow> = match &spec.partitions {
        PartitionSpec::None => {
            return Ok(Outcome::from_diagnostics(
                Diagnostic::error(Code::InvalidPartitions, format!("asset `{}` is not partitioned", spec.key))
                    .with_help("add `partitions: {daily: {start: 2024-01-01}}` to its entry")
                    .into(),
            ));
        }
        PartitionSpec::Static { keys } => keys
            .iter()
            .map(|k| PartitionRow { key: k.clone(), start: None, end: None, start_utc: None, end_utc: None })
            .collect(),
        PartitionSpec::Time(t) => {
            let fmt = |x: chrono::DateTime<chrono::Utc>| {
                x.with_timezone(&t.timezone).to_rfc3339_opts(SecondsFormat::Secs, true)
            };
            let utc = |x: chrono::DateTime<chrono::Utc>| x.to_rfc3339_opts(SecondsFormat::Secs, true);
            t.windows(now)
                .into_iter()
                .map(|w| PartitionRow {
                    start: Some(fmt(w.start)),
                    end: Some(fmt(w.end)),
                    start_utc: Some(utc(w.start)),
                    end_utc: Some(utc(w.end)),
                    key: w.key,
                })
                .collect()
        }
    };
    if args.json {
        write_json(out, &rows)?;
    } else if rows.is_empty() {
        writeln!(
            out,
            "`{}` has no complete partition at {} ({}; `end_offset: 1` counts the window in progress)",
            spec.key,
            now.to_rfc3339_opts(SecondsFormat::Secs, true),
            spec.partitions
        )?;
    } else {
        let mut t = Table::new(vec!["KEY", "START", "END", "START (UTC)", "END (UTC)"]);
        let dash = || String::from("-");
        for r in rows {
            t.row(vec![
                r.key,
                r.start.unwrap_or_else(dash),
                r.end.unwrap_or_else(dash),
                r.start_utc.unwrap_or_else(dash),
                r.end_utc.unwrap_or_else(dash),
            ]);
        }
        t.write(out)?;
    }
    Ok(errors_of(&project))
}
