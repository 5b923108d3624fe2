//! `phlo schedule list [--json]`: the project's schedules and their next fire times.

use std::io::{self, Write};
use std::path::Path;

use chrono::{SecondsFormat, Utc};
use phlo_core::schedule::CronSchedule;
use serde::Serialize;

use super::render::Table;
use super::{Outcome, load, write_json};

#[derive(Debug, clap::Args)]
pub(crate) struct ListArgs {
    /// How many upcoming fire times to show per schedule.
    #[arg(long, default_value_t = 3)]
    next: usize,
    /// Print JSON rows instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Serialize)]
struct Row {
    name: String,
    cron: String,
    timezone: String,
    select: Option<String>,
    partition: Option<String>,
    enabled: bool,
    next: Vec<String>,
}

pub(crate) fn list<W: Write>(dir: &Path, args: &ListArgs, out: &mut W) -> io::Result<Outcome> {
    let project = match load(dir, true, Default::default()) {
        Ok(p) => p,
        Err(o) => return Ok(o),
    };
    let now = Utc::now();
    let mut rows = Vec::new();
    for (name, s) in &project.config.schedules {
        // invalid lines were reported by the load (PHLO-E034) and are listed without times
        let parsed = CronSchedule::parse(&s.cron.value, s.timezone.as_ref().map(|t| t.value.as_str())).ok();
        rows.push(Row {
            name: name.clone(),
            cron: s.cron.value.clone(),
            timezone: s.timezone.as_ref().map_or_else(|| String::from("UTC"), |t| t.value.clone()),
            select: s.select.as_ref().map(|x| x.value.clone()),
            partition: s.partition.clone(),
            enabled: s.enabled,
            next: match (&parsed, s.enabled) {
                (Some(c), true) => c
                    .upcoming(now, args.next)
                    .iter()
                    .map(|t| t.with_timezone(&c.timezone()).to_rfc3339_opts(SecondsFormat::Secs, true))
                    .collect(),
                _ => Vec::new(),
            },
        });
    }
    if args.json {
        write_json(out, &rows)?;
    } else if rows.is_empty() {
        writeln!(out, "the project has no schedules (add `schedules.<name>: {{cron: …}}` to phlo.yaml)")?;
    } else {
        let mut t = Table::new(vec!["NAME", "CRON", "TIMEZONE", "SELECT", "NEXT"]);
        for r in &rows {
            let next = if r.enabled {
                r.next.first().cloned().unwrap_or_else(|| String::from("-"))
            } else {
                String::from("disabled")
            };
            t.row(vec![
                r.name.clone(),
                r.cron.clone(),
                r.timezone.clone(),
                r.select.clone().unwrap_or_else(|| String::from("all")),
                next,
            ]);
        }
        t.write(out)?;
    }
    let mut d = phlo_core::diagnostic::Diagnostics::new();
    d.extend(project.diagnostics.iter().filter(|x| x.is_error()).cloned());
    Ok(Outcome::from_diagnostics(d))
}
