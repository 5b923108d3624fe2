//! Conformance of phlo's time with real references: next cron fire times against croniter
//! and Dagster, time-window partitions (keys, windows, latest, counts) against Dagster,
//! across the daylight-saving changes of five time zones. The references are the pinned
//! Python packages `tests/engines/setup-python.sh` installs; `tests/engines/time_reference.py`
//! asks them. Every difference must be one of the deliberate choices the README lists
//! (`explain` names them); any other fails the test.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use chrono::{DateTime, Duration, TimeZone, Utc};
use chrono_tz::Tz;
use phlo_core::schedule::CronSchedule;
use phlo_core::spec::localtime::{Instants, local_of, offset_at, resolve};
use phlo_core::spec::partition::{Granularity, TimePartitions, WindowOptions};
use serde_json::{Value, json};

const ZONES: [&str; 5] = ["UTC", "Europe/Paris", "America/New_York", "Australia/Lord_Howe", "Asia/Kolkata"];

const EXPRESSIONS: [&str; 36] = [
    "*/15 * * * *",
    "0 * * * *",
    "30 * * * *",
    "*/20 2 * * *",
    "0 */2 * * *",
    "30 2 * * *",
    "0 2 * * *",
    "0 3 * * *",
    "0 1 * * *",
    "15 1 * * *",
    "30 1 * * *",
    "0 0 * * *",
    "45 23 * * *",
    "0,30 2 * * *",
    "0 1-3 * * *",
    "*/30 0-4 * * *",
    "0 2 * * 0",
    "30 2 * * sun",
    "0 0 * * 1-5",
    "0 12 * * 6,0",
    "0 0 13 * 5",
    "0 0 1 * *",
    "0 2 31 3 *",
    "@hourly",
    "@daily",
    "@weekly",
    "@monthly",
    "5 4 * * *",
    "0 0 29 2 *",
    "0 0 */2 * 1",
    "*/45 * * * *",
    "0 22 * * 1-5",
    "10,40 * * * *",
    "0 */3 * * *",
    "2 */4 * * *",
    "* 2 * * *",
];

fn python() -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let out = Command::new("bash")
        .arg(root.join("tests/engines/setup-python.sh"))
        .current_dir(&root)
        .stderr(Stdio::inherit())
        .output()
        .expect("run tests/engines/setup-python.sh");
    assert!(out.status.success(), "tests/engines/setup-python.sh failed (it needs PyPI)");
    root.join(String::from_utf8(out.stdout).unwrap().trim())
}

fn ask_references(cases: &Value) -> Value {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut child = Command::new(python())
        .arg(root.join("tests/engines/time_reference.py"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start the reference script");
    child.stdin.take().unwrap().write_all(cases.to_string().as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "the reference script failed");
    serde_json::from_slice(&out.stdout).expect("reference JSON")
}

/// The offset changes of `tz` in 2024 and 2025.
fn transitions(tz: Tz) -> Vec<DateTime<Utc>> {
    let mut out = Vec::new();
    let mut t = Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap();
    let end = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
    let step = Duration::minutes(15);
    while t < end {
        if offset_at(tz, t) != offset_at(tz, t + step) {
            out.push(t + step);
        }
        t += step;
    }
    out
}

fn ts(t: DateTime<Utc>) -> i64 {
    t.timestamp()
}

fn at(secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(secs, 0).unwrap()
}

/// Which copy of a repeated wall-clock time `t` is in `tz`: `Some(false)` first,
/// `Some(true)` second, `None` when its wall-clock time happens once.
fn copy_of(tz: Tz, t: DateTime<Utc>) -> Option<bool> {
    match resolve(tz, local_of(tz, t), false) {
        Instants::Two(a, b) if t == a || t == b => Some(t == b),
        _ => None,
    }
}

/// The other occurrence of a repeated wall-clock time.
fn other_copy(tz: Tz, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
    match resolve(tz, local_of(tz, t), false) {
        Instants::Two(a, b) if t == a => Some(b),
        Instants::Two(a, b) if t == b => Some(a),
        _ => None,
    }
}

struct Fields {
    minute_repeats: bool,
    hour_repeats: bool,
}

fn fields(expr: &str) -> Fields {
    let f = fields_of(expr);
    let repeats = |x: &str| x.starts_with('*') || x.contains('/');
    Fields { minute_repeats: repeats(f[0]), hour_repeats: repeats(f[1]) }
}

/// Whether wall-clock time `t` in `tz` is one the expression names.
fn names(expr: &str, tz: Tz, t: DateTime<Utc>) -> bool {
    let wall = local_of(tz, t).and_utc();
    CronSchedule::parse(expr, None).unwrap().next_after(wall - Duration::seconds(1)) == Some(wall)
}

/// Whether `tz` moves its clocks by 30 minutes within 3 hours of `t` (Lord Howe).
fn half_hour_change_near(tz: Tz, t: DateTime<Utc>) -> bool {
    let h = Duration::hours(3);
    (offset_at(tz, t - h) - offset_at(tz, t + h)).abs() == 1800
}

/// A spring-forward jump: the clocks of `tz` move ahead at `t`.
fn is_jump(tz: Tz, t: DateTime<Utc>) -> bool {
    offset_at(tz, t - Duration::seconds(1)) < offset_at(tz, t)
}

/// The deliberate difference (README, "Time") a tick that phlo and a reference disagree
/// on shows, if any. `extra` is in the reference's list and not phlo's; otherwise the
/// reverse. `theirs` is the reference's whole list for the case.
fn explain(
    reference: &str,
    (expr, tz, start): (&str, Tz, DateTime<Utc>),
    f: &Fields,
    t: DateTime<Utc>,
    extra: bool,
    theirs: &[i64],
) -> Option<&'static str> {
    let fixed = !f.minute_repeats && !f.hour_repeats;
    let hour_star = fields_of(expr)[1] == "*";
    if reference == "dagster" && theirs.iter().any(|x| !names(expr, tz, at(*x))) {
        return Some("Dagster fires at wall-clock times the line does not name after a 30-minute change");
    }
    if reference == "dagster" && !extra && copy_of(tz, t).is_none() && half_hour_change_near(tz, t) {
        return Some("Dagster skips a real time the line names near a 30-minute change");
    }
    if extra && f.hour_repeats && is_jump(tz, t) && !names(expr, tz, t) {
        return Some("croniter and Dagster fire an every-N-hours line at the jump for an hour the clocks skip");
    }
    match (reference, extra, copy_of(tz, t)?) {
        ("croniter", true, true) if fixed => Some("croniter fires a fixed time twice in an autumn overlap"),
        // Dagster fires in the second copy only unless the hour field is `*`; phlo fires a
        // fixed time in the first copy (as cron), a repeating field in both (as croniter)
        ("dagster", true, true) if !hour_star => {
            let first = other_copy(tz, t)?;
            (first <= start || fixed).then_some("Dagster fires only in the second copy of a repeated hour")
        }
        ("dagster", false, false) if !hour_star => Some("Dagster fires only in the second copy of a repeated hour"),
        _ => None,
    }
}

fn fields_of(expr: &str) -> Vec<&str> {
    match expr {
        "@hourly" => "0 * * * *",
        "@daily" => "0 0 * * *",
        "@weekly" => "0 0 * * 0",
        "@monthly" => "0 0 1 * *",
        other => other,
    }
    .split_whitespace()
    .collect()
}

#[test]
fn cron_and_partitions_agree_with_croniter_and_dagster() {
    let zones: Vec<Tz> = ZONES.iter().map(|z| z.parse().unwrap()).collect();
    let paris: Tz = "Europe/Paris".parse().unwrap();
    let offsets = [-26 * 60, -180, -61, -30, 0, 1, 30, 61, 180].map(Duration::minutes);
    let mut cron_cases = Vec::new();
    for &tz in &zones {
        let mut changes = transitions(tz);
        if changes.is_empty() {
            changes = transitions(paris);
        }
        let mut starts: Vec<DateTime<Utc>> =
            changes.iter().flat_map(|c| offsets.iter().map(move |o| *c + *o)).collect();
        starts.extend(changes.iter().map(|c| *c - Duration::seconds(1)));
        starts.push(Utc.with_ymd_and_hms(2024, 6, 15, 12, 34, 56).unwrap());
        starts.push(Utc.with_ymd_and_hms(2024, 12, 31, 23, 59, 59).unwrap());
        for expr in EXPRESSIONS {
            for s in &starts {
                cron_cases.push((expr, tz, *s));
            }
        }
    }
    let part_cases = partition_cases(&zones);
    let input = json!({
        "cron": cron_cases.iter().map(|(e, tz, s)| json!({"expr": e, "tz": tz.name(), "start": ts(*s), "n": 6})).collect::<Vec<_>>(),
        "partitions": part_cases.iter().map(|c| c.json.clone()).collect::<Vec<_>>(),
    });
    let answers = ask_references(&input);

    let mut explained: BTreeMap<&'static str, usize> = BTreeMap::new();
    let mut unexplained = Vec::new();
    let mut groups: BTreeMap<String, usize> = BTreeMap::new();
    let mut compared = 0usize;
    for ((expr, tz, start), answer) in cron_cases.iter().zip(answers["cron"].as_array().unwrap()) {
        let ours: Vec<i64> =
            CronSchedule::parse(expr, Some(tz.name())).unwrap().upcoming(*start, 6).into_iter().map(ts).collect();
        let f = fields(expr);
        for reference in ["croniter", "dagster"] {
            let theirs: Vec<i64> = answer[reference].as_array().unwrap().iter().map(|v| v.as_i64().unwrap()).collect();
            compared += 1;
            // compare up to the shorter horizon
            let horizon = *ours.last().unwrap_or(&i64::MAX).min(theirs.last().unwrap_or(&i64::MAX));
            for (t, extra) in theirs
                .iter()
                .filter(|t| **t <= horizon && !ours.contains(t))
                .map(|t| (*t, true))
                .chain(ours.iter().filter(|t| **t <= horizon && !theirs.contains(t)).map(|t| (*t, false)))
            {
                match explain(reference, (expr, *tz, *start), &f, at(t), extra, &theirs) {
                    Some(why) => *explained.entry(why).or_default() += 1,
                    None => {
                        *groups.entry(format!("{reference} {expr} {tz} extra={extra}")).or_default() += 1;
                        unexplained.push(format!(
                            "{reference}: `{expr}` in {tz} after {start}: {} {} (phlo {:?}, {reference} {:?})",
                            if extra { "fires at" } else { "does not fire at" },
                            at(t).with_timezone(tz).to_rfc3339(),
                            ours.iter()
                                .map(|t| at(*t).with_timezone(tz).format("%m-%d %H:%M%z").to_string())
                                .collect::<Vec<_>>(),
                            theirs
                                .iter()
                                .map(|t| at(*t).with_timezone(tz).format("%m-%d %H:%M%z").to_string())
                                .collect::<Vec<_>>(),
                        ));
                    }
                }
            }
        }
    }
    for (case, answer) in part_cases.iter().zip(answers["partitions"].as_array().unwrap()) {
        compared += 1;
        match compare_partitions(case, answer) {
            Ok(None) => {}
            Ok(Some(why)) => *explained.entry(why).or_default() += 1,
            Err(problem) => unexplained.push(problem),
        }
    }
    eprintln!("time conformance: {compared} comparisons; deliberate differences: {explained:?}");
    for (g, n) in &groups {
        eprintln!("  unexplained: {g}: {n}");
    }
    assert!(
        unexplained.is_empty(),
        "{} unexplained difference(s) with the references:\n{}",
        unexplained.len(),
        unexplained.iter().take(40).cloned().collect::<Vec<_>>().join("\n")
    );
}

struct PartitionCase {
    json: Value,
    ours: Result<TimePartitions, String>,
    now: DateTime<Utc>,
}

fn partition_cases(zones: &[Tz]) -> Vec<PartitionCase> {
    let paris: Tz = "Europe/Paris".parse().unwrap();
    let mut out = Vec::new();
    let mut add =
        |kind: Granularity, start: &str, end: Option<&str>, tz: Tz, opts: WindowOptions, now: DateTime<Utc>| {
            let json = json!({
                "kind": kind.as_str(), "start": start, "end": end, "tz": tz.name(),
                "week_start": phlo_core::spec::window::weekday_str(opts.week_start),
                "month_day": opts.month_day, "end_offset": opts.end_offset, "now": ts(now),
            });
            let ours = TimePartitions::with_options(kind, start, end, Some(tz.name()), opts).map_err(|e| e.to_string());
            out.push(PartitionCase { json, ours, now });
        };
    for &tz in zones {
        let mut changes = transitions(tz);
        if changes.is_empty() {
            changes = transitions(paris);
        }
        for change in changes.iter().take(2) {
            let day = local_of(tz, *change).date();
            let nows: Vec<DateTime<Utc>> = [-120, -61, -30, 0, 30, 61, 120, 24 * 60]
                .iter()
                .map(|m| *change + Duration::minutes(*m))
                .chain([*change + Duration::days(3)])
                .collect();
            let before = |days: i64| (day - Duration::days(days)).format("%Y-%m-%d").to_string();
            let hour_start = format!("{}T00:00", before(1));
            let hour_ends = [format!("{}T00:00", before(-2)), format!("{}T05:00", before(-1))];
            for now in &nows {
                for k in [0, 1, -1] {
                    let o = WindowOptions { end_offset: k, ..WindowOptions::default() };
                    add(Granularity::Hourly, &hour_start, None, tz, o, *now);
                    for e in &hour_ends {
                        add(Granularity::Hourly, &hour_start, Some(e), tz, o, *now);
                    }
                    add(Granularity::Daily, &before(10), None, tz, o, *now);
                    add(Granularity::Daily, &before(10), Some(&before(-20)), tz, o, *now);
                }
                for (ws, start) in [(chrono::Weekday::Sun, "2024-01-07"), (chrono::Weekday::Wed, "2024-01-03")] {
                    let o = WindowOptions { week_start: ws, ..WindowOptions::default() };
                    add(Granularity::Weekly, start, None, tz, o, *now);
                    add(Granularity::Weekly, start, Some("2024-09-01"), tz, o, *now);
                }
                for (md, start) in [(1, "2024-01-01"), (15, "2024-01-15")] {
                    let o = WindowOptions { month_day: md, ..WindowOptions::default() };
                    add(Granularity::Monthly, start, None, tz, o, *now);
                }
            }
        }
    }
    out
}

/// `Ok(None)` when phlo and Dagster agree, `Ok(Some(why))` for a deliberate difference,
/// `Err(what)` otherwise.
fn compare_partitions(case: &PartitionCase, answer: &Value) -> Result<Option<&'static str>, String> {
    let what = || case.json.to_string();
    let t = match (&case.ours, answer.get("error")) {
        (Ok(t), None) => t,
        (Err(e), Some(theirs)) => return Err(format!("{}: both refuse it: phlo {e}; Dagster {theirs}", what())),
        (Ok(_), Some(e)) => return Err(format!("{}: Dagster refuses it ({e}), phlo accepts it", what())),
        (Err(e), None) => return Err(format!("{}: phlo refuses it ({e}), Dagster accepts it", what())),
    };
    let theirs: Vec<String> =
        answer["keys"].as_array().unwrap().iter().map(|k| k.as_str().unwrap().to_string()).collect();
    let windows: Vec<(i64, i64)> = answer["windows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| (w[0].as_i64().unwrap(), w[1].as_i64().unwrap()))
        .collect();
    let ours = t.windows(case.now);
    let our_keys: Vec<String> = ours.iter().map(|w| w.key.clone()).collect();
    let our_windows: Vec<(i64, i64)> = ours.iter().map(|w| (ts(w.start), ts(w.end))).collect();
    if our_keys != theirs || our_windows != windows {
        // Dagster's hourly windows leave the wall-clock hour after a 30-minute change
        let off_hour = |x: i64| local_of(t.timezone, at(x)).format("%M").to_string() != "00";
        if t.granularity == Granularity::Hourly && windows.iter().any(|(a, b)| off_hour(*a) || off_hour(*b)) {
            return Ok(Some("Dagster's hourly windows leave the hour after a 30-minute change"));
        }
        // ... and near one, Dagster counts one hour more as complete (its last window is
        // still in progress, or ends off the hour)
        if t.granularity == Granularity::Hourly
            && half_hour_change_near(t.timezone, case.now)
            && theirs.len() == our_keys.len() + 1
            && theirs.starts_with(&our_keys)
            && windows.starts_with(&our_windows)
        {
            return Ok(Some("Dagster counts one more hourly window as complete near a 30-minute change"));
        }
        let first = (0..our_keys.len().max(theirs.len()))
            .find(|i| our_keys.get(*i) != theirs.get(*i) || our_windows.get(*i) != windows.get(*i))
            .unwrap_or(0);
        let around = |v: &[String], w: &[(i64, i64)]| {
            (first.saturating_sub(1)..(first + 2).min(v.len()))
                .map(|i| format!("{} {:?}", v[i], w.get(i).map(|(a, b)| (at(*a), at(*b)))))
                .collect::<Vec<_>>()
        };
        return Err(format!(
            "{}: differ from #{first} ({} vs {} keys)\n  phlo    {:?}\n  Dagster {:?}",
            what(),
            our_keys.len(),
            theirs.len(),
            around(&our_keys, &our_windows),
            around(&theirs, &windows)
        ));
    }
    if t.latest(case.now) != theirs.last().cloned() || t.keys(case.now) != theirs {
        return Err(format!("{}: latest or keys differ from the windows", what()));
    }
    Ok(None)
}
