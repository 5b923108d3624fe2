//! `phlo hooks list [--json]`: the effective hook table per event type.

use std::io::{self, Write};
use std::path::Path;

use phlo_core::project::bus_for_project;

use super::render::{Table, join_or_dash};
use super::{Outcome, load, write_json};

#[derive(Debug, clap::Args)]
pub(crate) struct ListArgs {
    /// Print JSON rows instead of a table.
    #[arg(long)]
    json: bool,
}

pub(crate) fn list<W: Write>(dir: &Path, args: &ListArgs, out: &mut W) -> io::Result<Outcome> {
    let project = match load(dir, false, Default::default()) {
        Ok(p) => p,
        Err(o) => return Ok(o),
    };
    let bus = match bus_for_project(&project) {
        Ok(b) => b,
        Err(d) => return Ok(Outcome::from_diagnostics(d)),
    };
    let rows = bus.rows();
    if args.json {
        write_json(out, &rows)?;
        return Ok(Outcome::ok());
    }
    if rows.is_empty() {
        writeln!(
            out,
            "no hooks are registered (enable a hook feature such as `hook-console`, or check `hooks.<name>.enabled`)"
        )?;
        return Ok(Outcome::ok());
    }
    let mut t = Table::new(vec!["EVENT", "ORDER", "PLUGIN", "HOOK", "PRIORITY", "POLICY", "ASSETS", "TAGS"]);
    for r in &rows {
        t.row(vec![
            r.event.to_string(),
            r.order.to_string(),
            r.plugin.clone(),
            r.hook.clone(),
            r.priority.to_string(),
            format!("{:?}", r.failure_policy).to_lowercase(),
            join_or_dash(&r.assets),
            join_or_dash(&r.tags),
        ]);
    }
    t.write(out)?;
    Ok(Outcome::ok())
}
