//! Time as a user sees it: schedules across daylight-saving changes, partitions at an
//! instant (`--at`), scheduled runs of weekly and monthly partitions.

use std::path::Path;

use crate::cli::{json, phlo_in};

fn project(yaml: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("phlo.yaml"), yaml).unwrap();
    dir
}

fn next_times(dir: &Path, at: &str, n: &str, name: &str) -> Vec<String> {
    let run = phlo_in(dir, &["schedule", "list", "--json", "--next", n, "--at", at], &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let rows = json(&run);
    let row = rows.as_array().unwrap().iter().find(|r| r["name"] == name).unwrap().clone();
    row["next"].as_array().unwrap().iter().map(|t| t.as_str().unwrap().to_string()).collect()
}

/// The quickstart's nightly job at 02:00 Paris runs on the day the clocks skip 02:00.
#[test]
fn the_quickstart_nightly_schedule_runs_on_the_spring_forward_day() {
    let dir = tempfile::tempdir().unwrap();
    crate::quickstart::copy_quickstart(dir.path());
    let next = next_times(dir.path(), "2027-03-27T12:00:00Z", "2", "nightly");
    assert_eq!(next, ["2027-03-28T03:00:00+02:00", "2027-03-29T02:00:00+02:00"]);
}

/// Every quarter hour fires in both copies of the repeated hour; asked from inside it, no
/// fire time is in the past and a fixed time that already fired does not fire again.
#[test]
fn the_repeated_hour_of_the_autumn_change() {
    let dir = project(
        "schedules:\n  quarter:\n    cron: '*/15 * * * *'\n    timezone: Europe/Paris\n  nightly:\n    cron: '30 2 * * *'\n    timezone: Europe/Paris\n",
    );
    let next = next_times(dir.path(), "2024-10-27T00:50:00Z", "4", "quarter");
    assert_eq!(
        next,
        [
            "2024-10-27T02:00:00+01:00",
            "2024-10-27T02:15:00+01:00",
            "2024-10-27T02:30:00+01:00",
            "2024-10-27T02:45:00+01:00"
        ]
    );
    // 02:20 in the second copy: 02:30 already fired in the first
    let next = next_times(dir.path(), "2024-10-27T01:20:00Z", "1", "nightly");
    assert_eq!(next, ["2024-10-28T02:30:00+01:00"]);
    let next = next_times(dir.path(), "2024-10-27T01:20:00Z", "1", "quarter");
    assert_eq!(next, ["2024-10-27T02:30:00+01:00"]);
}

#[test]
fn schedule_list_prints_every_next_time_and_warns_of_a_line_that_never_fires() {
    let dir = project("schedules:\n  daily:\n    cron: '0 6 * * *'\n  never:\n    cron: '0 0 30 2 *'\n");
    let run = phlo_in(dir.path(), &["schedule", "list", "--next", "3", "--at", "2024-01-01T00:00:00Z"], &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    for day in ["2024-01-01T06:00:00Z", "2024-01-02T06:00:00Z", "2024-01-03T06:00:00Z"] {
        assert!(run.stdout.contains(day), "{day} missing:\n{}", run.stdout);
    }
    assert!(run.stdout.contains("never"), "{}", run.stdout);
    let run = phlo_in(dir.path(), &["validate"], &[]);
    assert!(run.stderr.contains("warning[PHLO-W042]: the cron line `0 0 30 2 *` never fires"), "{}", run.stderr);
    assert!(run.stderr.contains("phlo.yaml:5:11"), "{}", run.stderr);
}

const PARTITIONED: &str = "assets:
  h.paris:
    type: echo
    partitions:
      hourly: {start: 2024-10-27T00:00, end: 2024-10-27T05:00, timezone: Europe/Paris}
  w.sales:
    type: echo
    partitions:
      weekly: {start: 2024-01-07}
  m.books:
    type: echo
    partitions:
      monthly: {start: 2024-01-15, month_day: 15}
  d.cut:
    type: echo
    partitions:
      daily: {start: 2024-01-01, end: 2024-01-05T12:00}
schedules:
  weekly:
    cron: '0 1 * * 1'
    select: w.sales
  monthly:
    cron: '0 1 16 * *'
    select: m.books
";

#[test]
fn assets_partitions_lists_keys_with_their_windows() {
    let dir = project(PARTITIONED);
    let run = phlo_in(dir.path(), &["assets", "partitions", "h.paris", "--json", "--at", "2030-01-01T00:00:00Z"], &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let rows = json(&run);
    let keys: Vec<&str> = rows.as_array().unwrap().iter().map(|r| r["key"].as_str().unwrap()).collect();
    assert_eq!(
        keys,
        [
            "2024-10-27-00:00",
            "2024-10-27-01:00",
            "2024-10-27-02:00",
            "2024-10-27-02:00+0100",
            "2024-10-27-03:00",
            "2024-10-27-04:00"
        ]
    );
    assert_eq!(rows[3]["start"], "2024-10-27T02:00:00+01:00");
    assert_eq!(rows[3]["start_utc"], "2024-10-27T01:00:00Z");
    assert_eq!(rows[3]["end_utc"], "2024-10-27T02:00:00Z");
    // the table, and an end inside a window: the partial day is not a partition
    let run = phlo_in(dir.path(), &["assets", "partitions", "d.cut", "--at", "2030-01-01T00:00:00Z"], &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains("2024-01-04") && !run.stdout.contains("2024-01-05 "), "{}", run.stdout);
    let run = phlo_in(dir.path(), &["assets", "list"], &[]);
    assert!(run.stdout.contains("until 2024-01-05 12:00"), "{}", run.stdout);
    let run = phlo_in(dir.path(), &["assets", "partitions", "nope.x"], &[]);
    assert_eq!(run.code, 2, "{}", run.stderr);
}

/// A run without `--partition` takes each asset's last complete window at `--at`; a
/// schedule without a template takes it at the tick.
#[test]
fn runs_and_ticks_take_the_last_complete_window() {
    let dir = project(PARTITIONED);
    let run = phlo_in(
        dir.path(),
        &["run", "--json", "--select", "w.sales", "--at", "2024-03-15T10:00:00Z"],
        &[("PHLO_LOG", "off")],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    // the week from Sunday 3 March to Sunday 10 March
    assert_eq!(json(&run)["assets"][0]["partition"], "2024-03-03", "{}", run.stdout);
    let run = phlo_in(
        dir.path(),
        &["schedule", "run", "--once", "--only", "monthly", "--at", "2024-03-16T01:00:00Z"],
        &[("PHLO_LOG", "off")],
    );
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let log = std::fs::read_to_string(dir.path().join(".phlo/events.jsonl")).unwrap();
    assert!(log.contains("\"partition\":\"2024-02-15\""), "{log}");
    // the window in progress is not a partition yet
    let run = phlo_in(
        dir.path(),
        &["run", "--select", "w.sales", "--partition", "2024-03-10", "--at", "2024-03-15T10:00:00Z"],
        &[],
    );
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(run.stderr.contains("is not complete: it ends at 2024-03-17T00:00:00+00:00"), "{}", run.stderr);
    let run = phlo_in(dir.path(), &["run", "--at", "yesterday"], &[]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("is not a time"), "{}", run.stderr);
}

#[test]
fn a_week_that_does_not_start_on_week_start_is_located() {
    let dir = project("assets:\n  w:\n    type: echo\n    partitions:\n      weekly: {start: 2024-01-01}\n");
    let run = phlo_in(dir.path(), &["validate"], &[]);
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(run.stderr.contains("at midnight on a sunday (week_start; `2024-01-01` is a monday)"), "{}", run.stderr);
    assert!(run.stderr.contains("phlo.yaml:5:23"), "{}", run.stderr);
    assert!(run.stderr.contains("or set `week_start: monday`"), "{}", run.stderr);
    let dir = project(
        "assets:\n  w:\n    type: echo\n    partitions:\n      daily: {start: 2024-01-01, week_start: monday}\n",
    );
    let run = phlo_in(dir.path(), &["validate"], &[]);
    assert!(run.stderr.contains("`week_start` applies to weekly partitions only"), "{}", run.stderr);
}
