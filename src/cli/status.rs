//! `phlo status`: each asset fresh, or stale with the reason, from the run store's latest
//! materializations compared with the project as it is now.

use std::io::{self, Write};
use std::path::Path;

use phlo_core::execution::versions::Freshness;
use phlo_core::graph::Selection;

use super::render::Table;
use super::runs::{open_with_project, short_version, store_error};
use super::{Outcome, write_json};

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Only these assets (selection language; `stale()` works here too).
    #[arg(long, short = 's', value_name = "SEL")]
    select: Option<String>,
    /// Judge at this instant instead of now (which partitions exist): RFC 3339 or a UTC
    /// date-time.
    #[arg(long, value_name = "TIMESTAMP", value_parser = super::parse_at)]
    at: Option<chrono::DateTime<chrono::Utc>>,
    /// One JSON document.
    #[arg(long)]
    json: bool,
}

pub(crate) fn run<W: Write>(dir: &Path, args: &Args, out: &mut W) -> io::Result<Outcome> {
    let (store, project) = match open_with_project(dir) {
        Ok(s) => s,
        Err(o) => return Ok(o),
    };
    let mut rows = match project.staleness(store.as_ref(), args.at.unwrap_or_else(chrono::Utc::now)) {
        Ok(r) => r,
        Err(e) => return Ok(store_error(e)),
    };
    if let Some(text) = &args.select {
        let graph = &project.graph;
        let mut stale = vec![false; graph.len()];
        for r in rows.iter().filter(|r| r.freshness == Freshness::Stale) {
            if let Some(i) = graph.index_of(&r.key) {
                stale[i as usize] = true;
            }
        }
        let picked = match Selection::parse(text).and_then(|s| s.select_with(graph, Some(&stale))) {
            Ok(p) => p,
            Err(e) if e.empty => Vec::new(),
            Err(e) => return Ok(Outcome::from_diagnostics(e.to_diagnostic(text).into())),
        };
        let keep: std::collections::HashSet<&str> = picked.iter().map(|&i| graph.key(i)).collect();
        rows.retain(|r| keep.contains(r.key.as_str()));
    }
    if args.json {
        write_json(out, &rows)?;
        return Ok(Outcome::ok());
    }
    let mut t = Table::new(vec!["ASSET", "STATUS", "WHY", "LAST RUN", "DATA VERSION"]);
    for r in &rows {
        let word = serde_json::to_value(r.freshness).ok().and_then(|v| v.as_str().map(str::to_string));
        let word = word.unwrap_or_default();
        let status = match (r.partitions, &r.stale_partitions, r.missing_partitions) {
            (Some(n), stale, missing) => {
                let mut notes = vec![format!("{n} partition(s)")];
                if let Some(s) = stale.as_ref().filter(|s| !s.is_empty()) {
                    notes.push(format!("{} stale", s.len()));
                }
                if let Some(m) = missing.filter(|m| *m > 0) {
                    notes.push(format!("{m} missing"));
                }
                format!("{word} ({})", notes.join(", "))
            }
            _ => word,
        };
        t.row(vec![
            r.key.clone(),
            status,
            r.reasons.join("; "),
            r.last.as_ref().map_or_else(|| String::from("-"), |m| m.run_id.clone()),
            r.last.as_ref().and_then(|m| m.data_version.as_deref()).map_or_else(|| String::from("-"), short_version),
        ]);
    }
    t.write(out)?;
    let count = |f: Freshness| rows.iter().filter(|r| r.freshness == f).count();
    let (stale, unknown) = (count(Freshness::Stale), count(Freshness::Unknown));
    writeln!(
        out,
        "\n{} fresh, {stale} stale{}{}",
        count(Freshness::Fresh),
        if unknown > 0 { format!(", {unknown} unknown") } else { String::new() },
        if stale > 0 { "; `phlo run --select 'stale()'` rebuilds the stale ones" } else { "" }
    )?;
    Ok(Outcome::ok())
}
