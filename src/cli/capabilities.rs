//! `phlo capabilities [--explain] [--json] [--tag K=V]…`: the resolution report.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::path::Path;

use phlo_core::diagnostic::Diagnostics;

use super::render::Table;
use super::{Outcome, load, parse_tag, write_json};

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Say for every requirement which rule decided, and where that rule was written.
    #[arg(long)]
    explain: bool,
    /// Print JSON rows instead of a table.
    #[arg(long)]
    json: bool,
    /// A run tag, e.g. `phlo/capability/table_store=sqlite` (repeatable).
    #[arg(long = "tag", value_name = "KEY=VALUE", value_parser = parse_tag)]
    tags: Vec<(String, String)>,
}

pub(crate) fn run<W: Write>(dir: &Path, args: &Args, out: &mut W) -> io::Result<Outcome> {
    let tags: BTreeMap<String, String> = args.tags.iter().cloned().collect();
    let project = match load(dir, false, tags) {
        Ok(p) => p,
        Err(o) => return Ok(o),
    };
    let rows = &project.report.rows;
    if args.json {
        write_json(out, rows)?;
    } else if rows.is_empty() {
        writeln!(out, "nothing in this project requires a capability")?;
    } else {
        let mut header = vec!["REQUIREMENT", "REQUIRED BY", "RESOLVED TO", "PROVIDER", "RULE"];
        if args.explain {
            header.push("WHY");
        }
        let mut t = Table::new(header);
        for r in rows {
            let req = if r.optional { format!("{} (optional)", r.requirement) } else { r.requirement.clone() };
            let mut cells = vec![
                req,
                r.required_by.to_string(),
                r.resolved_to.as_deref().unwrap_or("UNRESOLVED").to_string(),
                r.provider.as_deref().unwrap_or("-").to_string(),
                r.rule.map_or_else(|| String::from("-"), |x| x.to_string()),
            ];
            if args.explain {
                cells.push(r.error.clone().unwrap_or_else(|| r.explanation()));
            }
            t.row(cells);
        }
        t.write(out)?;
    }
    // Only resolution problems matter here; `phlo validate` reports the rest.
    let mut diags = Diagnostics::new();
    diags.extend(
        project.diagnostics.into_iter().filter(|d| {
            d.code.as_str() >= "PHLO-E020" && d.code.as_str() < "PHLO-E030" || d.code.as_str() == "PHLO-W025"
        }),
    );
    Ok(Outcome::from_diagnostics(diags))
}
