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
    /// How many upcoming fire times to show per schedule (1 to 1000).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u16).range(1..=1000))]
    next: u16,
    /// Print JSON rows instead of a table.
    #[arg(long)]
    json: bool,
    /// List the fire times after this instant instead of now: RFC 3339
    /// (`2024-03-31T00:30:00Z`) or a UTC date-time (`2024-03-31T00:30`).
    #[arg(long, value_name = "TIMESTAMP", value_parser = super::parse_at)]
    at: Option<chrono::DateTime<Utc>>,
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
    let now = args.at.unwrap_or_else(Utc::now);
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
                    .upcoming(now, usize::from(args.next))
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
            let next = match (r.enabled, r.next.first()) {
                (false, _) => String::from("disabled"),
                (true, None) => String::from("never"),
                (true, Some(n)) => n.clone(),
            };
            t.row(vec![
                r.name.clone(),
                r.cron.clone(),
                r.timezone.clone(),
                r.select.clone().unwrap_or_else(|| String::from("all")),
                next,
            ]);
            // the further fire times, one per line under the first
            for n in r.next.iter().skip(1) {
                t.row(vec![String::new(), String::new(), String::new(), String::new(), n.clone()]);
            }
        }
        t.write(out)?;
    }
    let mut d = phlo_core::diagnostic::Diagnostics::new();
    d.extend(project.diagnostics.iter().filter(|x| x.is_error()).cloned());
    Ok(Outcome::from_diagnostics(d))
}

#[derive(Debug, clap::Args)]
pub(crate) struct RunArgs {
    /// Start every enabled schedule's run once, now, wait for them, and exit (for an
    /// external scheduler or a test); without it, run in the foreground and start runs on time.
    #[arg(long)]
    once: bool,
    /// Only this schedule.
    #[arg(long, value_name = "NAME")]
    only: Option<String>,
    /// With --once: run as if the tick were at this instant (which partitions are complete).
    #[arg(long, value_name = "TIMESTAMP", requires = "once", value_parser = super::parse_at)]
    at: Option<chrono::DateTime<Utc>>,
}

/// The partition a tick runs: `{date}` (the tick's day), `{yesterday}`, `{hour}`
/// (`YYYY-MM-DD-HH:00`, with the UTC offset in the second copy of a repeated hour, as
/// hourly keys are), in the schedule's timezone; other text is kept.
pub(crate) fn partition_for(template: &str, tick: chrono::DateTime<Utc>, tz: chrono_tz::Tz) -> String {
    use chrono::Timelike;
    use phlo_core::spec::localtime::{Instants, resolve};
    let local = tick.with_timezone(&tz);
    let yesterday = local.date_naive().pred_opt().unwrap_or_else(|| local.date_naive());
    let mut hour = local.format("%Y-%m-%d-%H:00").to_string();
    let top = local.naive_local().with_minute(0).and_then(|t| t.with_second(0)).unwrap_or(local.naive_local());
    if let Instants::Two(_, second) = resolve(tz, top, false)
        && tick >= second
    {
        hour.push_str(&local.format("%z").to_string());
    }
    template
        .replace("{date}", &local.format("%Y-%m-%d").to_string())
        .replace("{yesterday}", &yesterday.format("%Y-%m-%d").to_string())
        .replace("{hour}", &hour)
}

struct Job {
    name: String,
    cron: CronSchedule,
    select: Option<String>,
    partition: Option<String>,
}

pub(crate) fn run<W: Write>(dir: &Path, args: &RunArgs, out: &mut W) -> io::Result<Outcome> {
    use phlo_core::diagnostic::{Code, Diagnostic};
    use phlo_core::execution::{PartitionRequest, RunOptions, RunStatus};

    let project = match load(dir, true, Default::default()) {
        Ok(p) => p,
        Err(o) => return Ok(o),
    };
    if project.diagnostics.has_errors() {
        return Ok(Outcome::from_diagnostics(project.diagnostics));
    }
    let mut jobs = Vec::new();
    for (name, s) in &project.config.schedules {
        if !s.enabled || args.only.as_ref().is_some_and(|o| o != name) {
            continue;
        }
        let Ok(cron) = CronSchedule::parse(&s.cron.value, s.timezone.as_ref().map(|t| t.value.as_str())) else {
            continue;
        };
        jobs.push(Job {
            name: name.clone(),
            cron,
            select: s.select.as_ref().map(|x| x.value.clone()),
            partition: s.partition.clone(),
        });
    }
    if jobs.is_empty() {
        let what = args
            .only
            .as_ref()
            .map_or_else(|| String::from("no enabled schedule"), |o| format!("no enabled schedule `{o}`"));
        return Ok(Outcome::from_diagnostics(
            Diagnostic::error(Code::InvalidSchedule, format!("the project has {what}"))
                .with_help("add `schedules.<name>: {cron: \"0 2 * * *\"}` to phlo.yaml (see `phlo schedule list`)")
                .into(),
        ));
    }
    let adapter = match super::run::adapter_of(&project) {
        Ok(a) => a,
        Err(o) => return Ok(o),
    };
    let runtime = match super::run::runtime() {
        Ok(r) => r,
        Err(o) => return Ok(o),
    };
    let project = std::sync::Arc::new(project);
    let start_run = |job: &Job, tick: chrono::DateTime<Utc>| {
        let options = RunOptions {
            done: Default::default(),
            select: job.select.clone(),
            partitions: job
                .partition
                .as_ref()
                .map(|t| PartitionRequest::Key(partition_for(t, tick, job.cron.timezone()))),
            tags: [(String::from("phlo/schedule"), job.name.clone())].into(),
            // partitioned assets without a template run their last complete window at the tick
            at: Some(tick),
            ..RunOptions::default()
        };
        let dir = dir.to_path_buf();
        project.prepare_run(&options).map(|req| {
            let (run_id, steps) = (req.run_id.clone(), req.steps());
            // (an adapter's future does nothing until it is polled)
            let run = adapter.execute(req);
            async move {
                // like `phlo run`: the run's steps are claimed (a live run holding one is
                // waited for, off the async workers) and held for the run
                let claim =
                    tokio::task::spawn_blocking(move || super::claims::claim(&dir, &run_id, &steps, false)).await;
                match claim {
                    Ok(Ok(claim)) => {
                        let report = run.await;
                        drop(claim);
                        Ok(report)
                    }
                    Ok(Err(outcome)) => Err(outcome.diagnostics.to_string()),
                    Err(e) => Err(e.to_string()),
                }
            }
        })
    };
    let mut lines: Vec<String> = Vec::new();
    let mut failed = false;
    runtime.block_on(async {
        if args.once {
            let now = args.at.unwrap_or_else(Utc::now);
            for job in &jobs {
                match start_run(job, now) {
                    Ok(fut) => match fut.await {
                        Ok(report) => {
                            failed |= report.status != RunStatus::Succeeded;
                            let status = format!("{:?}", report.status).to_lowercase();
                            lines.push(format!("schedule {}: run {} {status}", job.name, report.run_id));
                        }
                        Err(e) => {
                            failed = true;
                            lines.push(format!("schedule {}: not started: {}", job.name, e.trim()));
                        }
                    },
                    Err(d) => {
                        failed = true;
                        lines.push(format!("schedule {}: not started: {}", job.name, d.to_string().trim()));
                    }
                }
            }
            return;
        }
        // Foreground loop: sleep to the next tick; a schedule whose previous run is still
        // going when its next tick comes is not started twice.
        let mut running: std::collections::HashMap<String, tokio::task::JoinHandle<()>> = Default::default();
        let mut after = Utc::now();
        loop {
            let Some((tick, _)) =
                jobs.iter().filter_map(|j| j.cron.next_after(after).map(|t| (t, j))).min_by_key(|(t, _)| *t)
            else {
                return;
            };
            let wait = (tick - Utc::now()).to_std().unwrap_or_default();
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                _ = tokio::signal::ctrl_c() => {
                    eprintln!("stopping the scheduler; runs in progress are abandoned");
                    return;
                }
            }
            for job in jobs.iter().filter(|j| j.cron.next_after(after) == Some(tick)) {
                if running.get(&job.name).is_some_and(|h| !h.is_finished()) {
                    note(&format!("schedule {}: previous run still going at {tick}; this tick is skipped", job.name));
                    continue;
                }
                match start_run(job, tick) {
                    Ok(fut) => {
                        let name = job.name.clone();
                        note(&format!("schedule {name}: starting a run for the tick at {tick}"));
                        running.insert(
                            name.clone(),
                            tokio::spawn(async move {
                                match fut.await {
                                    Ok(report) => {
                                        note(&format!("schedule {name}: run {} {:?}", report.run_id, report.status));
                                    }
                                    Err(e) => note(&format!("schedule {name}: not started: {}", e.trim())),
                                }
                            }),
                        );
                    }
                    Err(d) => note(&format!("schedule {}: not started: {}", job.name, d.to_string().trim())),
                }
            }
            after = tick;
        }
    });
    for l in lines {
        writeln!(out, "{l}")?;
    }
    Ok(Outcome { code: if failed { 4 } else { 0 }, diagnostics: Default::default() })
}

/// A line on stderr for the operator of the foreground scheduler.
fn note(line: &str) {
    eprintln!("{line}");
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn partition_templates_use_the_schedules_timezone() {
        let tick = Utc.with_ymd_and_hms(2026, 3, 1, 23, 30, 0).unwrap();
        let paris: chrono_tz::Tz = "Europe/Paris".parse().unwrap();
        assert_eq!(partition_for("{date}", tick, paris), "2026-03-02");
        assert_eq!(partition_for("{yesterday}", tick, paris), "2026-03-01");
        assert_eq!(partition_for("{hour}", tick, chrono_tz::Tz::UTC), "2026-03-01-23:00");
        assert_eq!(partition_for("eu", tick, paris), "eu");
        // the two 02:00 hours of the autumn change in Paris: 00:xx and 01:xx UTC
        let first = Utc.with_ymd_and_hms(2024, 10, 27, 0, 15, 0).unwrap();
        let second = Utc.with_ymd_and_hms(2024, 10, 27, 1, 15, 0).unwrap();
        assert_eq!(partition_for("{hour}", first, paris), "2024-10-27-02:00");
        assert_eq!(partition_for("{hour}", second, paris), "2024-10-27-02:00+0100");
    }
}
