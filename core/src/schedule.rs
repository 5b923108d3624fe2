//! Cron schedules with crontab semantics.
//!
//! The `cron` crate reads 6–7 fields (with seconds) and numbers weekdays from 1 = Sunday;
//! users write crontab lines. This wrapper takes the standard 5 fields (minute, hour,
//! day of month, month, day of week) and the `@daily`-style macros, with crontab's
//! meaning: weekday 0 and 7 are Sunday, 1–5 Monday to Friday, and when both the day of
//! month and the day of week are restricted a day matching *either* fires.
//!
//! ```
//! use phlo_core::schedule::CronSchedule;
//! use chrono::{TimeZone, Utc};
//! let weekdays = CronSchedule::parse("30 6 * * 1-5", None).unwrap();
//! let saturday = Utc.with_ymd_and_hms(2026, 11, 21, 12, 0, 0).unwrap();
//! let next = weekdays.next_after(saturday).unwrap();
//! assert_eq!(next, Utc.with_ymd_and_hms(2026, 11, 23, 6, 30, 0).unwrap()); // Monday
//! ```

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Duration, NaiveDateTime, Utc};
use chrono_tz::Tz;

use crate::spec::localtime::{Instants, Rule, changes_near, is_fixed_offset, local_of, resolve_with};
use crate::spec::partition::parse_timezone;

/// Why a cron line is not valid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CronError {
    /// Not 5 fields.
    #[error("`{line}` has {found} field(s); a cron line has 5: minute hour day-of-month month day-of-week")]
    FieldCount {
        /// The line.
        line: String,
        /// How many fields it has.
        found: usize,
    },
    /// A field that does not parse or is out of range.
    #[error("the {field} field `{value}` is not valid: {reason}")]
    Field {
        /// Which field.
        field: &'static str,
        /// Its text.
        value: String,
        /// What is wrong.
        reason: String,
    },
    /// A macro phlo does not know (`@reboot` makes no sense for a schedule).
    #[error("`{0}` is not a schedule macro (use @hourly, @daily, @weekly, @monthly or @yearly)")]
    Macro(String),
    /// An unknown timezone.
    #[error("{0}")]
    Timezone(String),
}

struct FieldSpec {
    name: &'static str,
    min: u32,
    max: u32,
    names: &'static [&'static str],
}

const MINUTE: FieldSpec = FieldSpec { name: "minute", min: 0, max: 59, names: &[] };
const HOUR: FieldSpec = FieldSpec { name: "hour", min: 0, max: 23, names: &[] };
const DOM: FieldSpec = FieldSpec { name: "day-of-month", min: 1, max: 31, names: &[] };
const MONTH: FieldSpec = FieldSpec {
    name: "month",
    min: 1,
    max: 12,
    names: &["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"],
};
/// Crontab weekdays: 0–7 with 0 and 7 both Sunday.
const DOW: FieldSpec =
    FieldSpec { name: "day-of-week", min: 0, max: 7, names: &["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"] };
const DAY_NAMES: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];

impl FieldSpec {
    fn value(&self, text: &str, whole: &str) -> Result<u32, CronError> {
        let err = |reason: String| CronError::Field { field: self.name, value: whole.to_string(), reason };
        let upper = text.to_ascii_uppercase();
        if let Some(i) = self.names.iter().position(|n| *n == upper) {
            // names are 0-based for weekdays, 1-based for months
            return Ok(if self.min == 0 { i as u32 } else { i as u32 + 1 });
        }
        let n: u32 = text.parse().map_err(|_| {
            if self.names.is_empty() {
                err(format!("`{text}` is not a number"))
            } else {
                err(format!("`{text}` is not a number or a name ({})", self.names.join(", ")))
            }
        })?;
        if n < self.min || n > self.max {
            return Err(err(format!("{n} is outside {}–{}", self.min, self.max)));
        }
        Ok(n)
    }

    /// The values the field selects; `*` (and `*/n`) cover the whole range (0–6 for weekdays).
    fn expand(&self, field: &str) -> Result<BTreeSet<u32>, CronError> {
        let err = |reason: String| CronError::Field { field: self.name, value: field.to_string(), reason };
        let top = if self.name == DOW.name { 6 } else { self.max };
        let mut out = BTreeSet::new();
        for item in field.split(',') {
            let (range, step) = match item.split_once('/') {
                Some((r, s)) => {
                    let step: u32 = s.parse().map_err(|_| err(format!("step `{s}` is not a number")))?;
                    if step == 0 {
                        return Err(err(String::from("a step of 0 never advances")));
                    }
                    (r, step)
                }
                None => (item, 1),
            };
            let (lo, hi) = if range == "*" {
                (self.min, top)
            } else if let Some((a, b)) = range.split_once('-') {
                let (a, b) = (self.value(a, field)?, self.value(b, field)?);
                if a > b {
                    return Err(err(format!("the range `{range}` runs backwards")));
                }
                (a, b)
            } else if range.is_empty() {
                return Err(err(String::from("an empty list item")));
            } else {
                let v = self.value(range, field)?;
                (v, if item.contains('/') { top } else { v })
            };
            out.extend((lo..=hi).step_by(step as usize));
        }
        Ok(out)
    }
}

/// A crontab line in a timezone.
#[derive(Debug, Clone)]
pub struct CronSchedule {
    line: String,
    timezone: Tz,
    /// One schedule, or two when day-of-month and day-of-week are both restricted (either
    /// fires); each is evaluated on wall-clock time (a naive time written as UTC).
    schedules: Vec<cron::Schedule>,
    /// What a wall-clock time in a DST gap or overlap means for this line.
    rule: Rule,
    /// No day matches (`0 0 30 2 *`): the line never fires.
    never: bool,
}

impl fmt::Display for CronSchedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.line)
    }
}

fn macro_line(m: &str) -> Result<&'static str, CronError> {
    Ok(match m {
        "@yearly" | "@annually" => "0 0 1 1 *",
        "@monthly" => "0 0 1 * *",
        "@weekly" => "0 0 * * 0",
        "@daily" | "@midnight" => "0 0 * * *",
        "@hourly" => "0 * * * *",
        other => return Err(CronError::Macro(other.to_string())),
    })
}

/// A field that repeats over its range (`*`, `*/15`, `0-30/10`) rather than naming fixed values.
fn repeats(field: &str) -> bool {
    field.starts_with('*') || field.contains('/')
}

/// The longest month of each month number (February: 29, in leap years).
const MONTH_DAYS: [u32; 12] = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

impl CronSchedule {
    /// Parses a 5-field crontab line (or `@daily`, …) in `timezone` (UTC when `None`).
    ///
    /// # Errors
    /// A [`CronError`] naming the field at fault.
    pub fn parse(line: &str, timezone: Option<&str>) -> Result<Self, CronError> {
        let timezone =
            timezone.map_or(Ok(Tz::UTC), |t| parse_timezone(t).map_err(|e| CronError::Timezone(e.to_string())))?;
        let trimmed = line.trim();
        let expanded = if trimmed.starts_with('@') { macro_line(trimmed)? } else { trimmed };
        let fields: Vec<&str> = expanded.split_whitespace().collect();
        let [minute, hour, dom, month, dow] = fields.as_slice() else {
            return Err(CronError::FieldCount { line: trimmed.to_string(), found: fields.len() });
        };
        MINUTE.expand(minute)?;
        HOUR.expand(hour)?;
        let days_of_month = DOM.expand(dom)?;
        let months = MONTH.expand(month)?;
        let days: BTreeSet<u32> = DOW.expand(dow)?.into_iter().map(|d| d % 7).collect();
        let dow_text = if *dow == "*" {
            String::from("*")
        } else {
            days.iter().map(|d| DAY_NAMES[*d as usize]).collect::<Vec<_>>().join(",")
        };
        let build = |dom: &str, dow: &str| -> Result<cron::Schedule, CronError> {
            cron::Schedule::from_str(&format!("0 {minute} {hour} {dom} {month} {dow}")).map_err(|e| CronError::Field {
                field: "line",
                value: trimmed.to_string(),
                reason: {
                    let m = e.to_string();
                    if m.trim().is_empty() { String::from("the cron parser rejected it") } else { m }
                },
            })
        };
        let either = *dom != "*" && *dow != "*";
        let schedules = if either {
            // crontab: a day matching either restriction fires
            vec![build(dom, "*")?, build("*", &dow_text)?]
        } else {
            vec![build(dom, &dow_text)?]
        };
        // a restricted day of month that no listed month has, with no weekday to fire instead
        let never = !either
            && *dom != "*"
            && !months.iter().any(|m| days_of_month.iter().any(|d| *d <= MONTH_DAYS[*m as usize - 1]));
        let rule = Rule { jump: !repeats(hour), once: !repeats(hour) && !repeats(minute) };
        Ok(Self { line: trimmed.to_string(), timezone, schedules, rule, never })
    }

    /// The timezone the line is read in.
    pub fn timezone(&self) -> Tz {
        self.timezone
    }

    /// Whether the line can never fire (no month has the day it names, e.g. `0 0 30 2 *`).
    pub fn never_fires(&self) -> bool {
        self.never
    }

    /// The next wall-clock time after `local` that the line names.
    fn next_local(&self, local: NaiveDateTime) -> Option<NaiveDateTime> {
        let as_utc = local.and_utc();
        self.schedules.iter().filter_map(|s| s.after(&as_utc).next()).min().map(|d| d.naive_utc())
    }

    /// The first fire time strictly after `t`, with the daylight-saving rules of the README:
    /// a time in a spring-forward gap fires once at the jump when the hour is fixed; in an
    /// autumn overlap a fixed minute and hour fire once (the first time), a repeating
    /// minute or hour fires in both copies of the hour.
    pub fn next_after(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        if self.never {
            return None;
        }
        let tz = self.timezone;
        let mut local = local_of(tz, t);
        if is_fixed_offset(tz) {
            return self.next_local(local).map(|c| c.and_utc());
        }
        // near a change, a wall-clock time before `local` may name an instant after `t`
        // (its second occurrence): look from a little earlier
        if changes_near(tz, t, Duration::hours(3)) {
            local -= Duration::hours(3);
        }
        // the earliest second occurrence after `t` seen so far
        let mut second: Option<DateTime<Utc>> = None;
        loop {
            let Some(c) = self.next_local(local) else { return second };
            local = c;
            match resolve_with(tz, c, self.rule) {
                Instants::One(x) | Instants::Two(x, _) if x > t => {
                    return Some(second.map_or(x, |s| s.min(x)));
                }
                Instants::Two(_, y) if y > t && second.is_none() => second = Some(y),
                _ => {}
            }
        }
    }

    /// The next `n` fire times after `t`.
    pub fn upcoming(&self, t: DateTime<Utc>, n: usize) -> Vec<DateTime<Utc>> {
        let mut out = Vec::with_capacity(n);
        let mut at = t;
        while out.len() < n {
            let Some(next) = self.next_after(at) else { break };
            out.push(next);
            at = next;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use chrono::{Datelike, TimeZone, Timelike, Weekday};

    use super::*;

    fn at(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, d, h, min, 0).unwrap()
    }

    fn weekdays_of(line: &str) -> Vec<Weekday> {
        let s = CronSchedule::parse(line, None).unwrap();
        // a week starting on Sunday 2026-11-22
        s.upcoming(at(2026, 11, 21, 23, 59), 7)
            .into_iter()
            .take_while(|t| *t < at(2026, 11, 29, 0, 0))
            .map(|t| t.weekday())
            .collect()
    }

    /// Numeric weekdays mean what they mean in crontab.
    #[test]
    fn weekday_table() {
        use Weekday::*;
        for (line, want) in [
            ("0 0 * * 0", vec![Sun]),
            ("0 0 * * 7", vec![Sun]),
            ("0 0 * * 1", vec![Mon]),
            ("0 0 * * 1-5", vec![Mon, Tue, Wed, Thu, Fri]),
            ("0 0 * * 5-7", vec![Sun, Fri, Sat]),
            ("0 0 * * 6,0", vec![Sun, Sat]),
            ("0 0 * * SAT,SUN", vec![Sun, Sat]),
            ("0 0 * * mon-wed", vec![Mon, Tue, Wed]),
            ("0 0 * * */2", vec![Sun, Tue, Thu, Sat]),
            ("0 0 * * *", vec![Sun, Mon, Tue, Wed, Thu, Fri, Sat]),
        ] {
            assert_eq!(weekdays_of(line), want, "{line}");
        }
    }

    #[test]
    fn fields_macros_and_timezones() {
        let s = CronSchedule::parse("*/15 9-17 * * *", None).unwrap();
        assert_eq!(s.next_after(at(2026, 1, 1, 8, 59)).unwrap(), at(2026, 1, 1, 9, 0));
        assert_eq!(s.next_after(at(2026, 1, 1, 9, 0)).unwrap(), at(2026, 1, 1, 9, 15));
        let d = CronSchedule::parse("@daily", None).unwrap();
        assert_eq!(d.next_after(at(2026, 1, 1, 8, 0)).unwrap(), at(2026, 1, 2, 0, 0));
        let paris = CronSchedule::parse("0 6 * * *", Some("Europe/Paris")).unwrap();
        let next = paris.next_after(at(2026, 1, 1, 0, 0)).unwrap();
        assert_eq!((next.hour(), next.minute()), (5, 0)); // 06:00 CET
        let m = CronSchedule::parse("0 0 1 jan,jul *", None).unwrap();
        assert_eq!(m.next_after(at(2026, 2, 1, 0, 0)).unwrap(), at(2026, 7, 1, 0, 0));
    }

    #[test]
    fn day_of_month_or_day_of_week() {
        // the 13th, or any Friday
        let s = CronSchedule::parse("0 0 13 * 5", None).unwrap();
        let days: Vec<u32> = s.upcoming(at(2026, 11, 1, 0, 0), 4).iter().map(|t| t.day()).collect();
        assert_eq!(days, [6, 13, 20, 27]);
    }

    fn local_times(line: &str, tz: &str, from: DateTime<Utc>, n: usize) -> Vec<String> {
        let s = CronSchedule::parse(line, Some(tz)).unwrap();
        let zone = s.timezone();
        s.upcoming(from, n).iter().map(|t| t.with_timezone(&zone).format("%m-%d %H:%M%z").to_string()).collect()
    }

    /// The rules of the README's daylight-saving table, in Europe/Paris.
    #[test]
    fn daylight_saving_changes() {
        let spring = at(2024, 3, 30, 22, 0);
        // a fixed time in the gap fires once, at the jump
        assert_eq!(local_times("30 2 * * *", "Europe/Paris", spring, 2), ["03-31 03:00+0200", "04-01 02:30+0200"]);
        assert_eq!(local_times("0,30 2 * * *", "Europe/Paris", spring, 2), ["03-31 03:00+0200", "04-01 02:00+0200"]);
        assert_eq!(local_times("0 2 * * *", "Europe/Paris", at(2027, 3, 27, 12, 0), 1), ["03-28 03:00+0200"]);
        // a repeating minute under a fixed hour still fires once at the jump
        assert_eq!(local_times("*/20 2 * * *", "Europe/Paris", spring, 2), ["03-31 03:00+0200", "04-01 02:00+0200"]);
        // a repeating hour has no 02:xx that day
        assert_eq!(
            local_times("0 * * * *", "Europe/Paris", at(2024, 3, 30, 23, 30), 3),
            ["03-31 01:00+0100", "03-31 03:00+0200", "03-31 04:00+0200"]
        );
        let fall = at(2024, 10, 26, 23, 50);
        // a fixed time in the overlap fires once, the first time
        assert_eq!(local_times("30 2 * * *", "Europe/Paris", fall, 2), ["10-27 02:30+0200", "10-28 02:30+0100"]);
        // a repeating minute or hour fires in both copies of the hour
        let quarter = local_times("*/15 * * * *", "Europe/Paris", at(2024, 10, 26, 23, 59), 9);
        assert_eq!(
            quarter,
            [
                "10-27 02:00+0200",
                "10-27 02:15+0200",
                "10-27 02:30+0200",
                "10-27 02:45+0200",
                "10-27 02:00+0100",
                "10-27 02:15+0100",
                "10-27 02:30+0100",
                "10-27 02:45+0100",
                "10-27 03:00+0100"
            ]
        );
        assert_eq!(
            local_times("0 */2 * * *", "Europe/Paris", fall, 3),
            ["10-27 02:00+0200", "10-27 02:00+0100", "10-27 04:00+0100"]
        );
    }

    /// Asked from inside the repeated hour, the next fire time is never in the past.
    #[test]
    fn never_a_tick_in_the_past() {
        for line in ["30 2 * * *", "*/15 * * * *", "0 2 * * *", "*/20 2 * * *", "0 * * * *", "45 1 * * *"] {
            let s = CronSchedule::parse(line, Some("Europe/Paris")).unwrap();
            let mut t = at(2024, 10, 26, 23, 0);
            while t < at(2024, 10, 27, 3, 0) {
                let next = s.next_after(t).unwrap();
                assert!(next > t, "{line} after {t}: {next}");
                // and nothing was skipped: no tick between t and next
                let again = s.next_after(t + Duration::seconds(1)).unwrap();
                assert!(again == next || t + Duration::seconds(1) >= next, "{line} at {t}");
                t += Duration::minutes(7);
            }
        }
    }

    #[test]
    fn lines_that_never_fire() {
        for line in ["0 0 30 2 *", "0 0 31 4,6,9,11 *", "0 0 30,31 feb *"] {
            let s = CronSchedule::parse(line, None).unwrap();
            assert!(s.never_fires(), "{line}");
            assert_eq!(s.next_after(at(2024, 1, 1, 0, 0)), None);
        }
        for line in ["0 0 29 2 *", "0 0 30 2 1", "0 0 31 * *"] {
            assert!(!CronSchedule::parse(line, None).unwrap().never_fires(), "{line}");
        }
        let leap = CronSchedule::parse("0 0 29 2 *", None).unwrap();
        assert_eq!(leap.next_after(at(2024, 3, 1, 0, 0)), Some(at(2028, 2, 29, 0, 0)));
    }

    #[test]
    fn bad_lines_name_the_field() {
        let e = |l: &str| CronSchedule::parse(l, None).unwrap_err().to_string();
        assert!(e("0 6 * *").contains("has 4 field(s)"), "{}", e("0 6 * *"));
        assert!(e("0 0 0 0 0 0").contains("has 6 field(s)"));
        assert!(e("60 * * * *").contains("minute field `60`") && e("60 * * * *").contains("outside 0–59"));
        assert!(e("0 24 * * *").contains("hour field"));
        assert!(e("0 0 32 * *").contains("day-of-month field"));
        assert!(e("0 0 * 13 *").contains("month field"));
        assert!(e("0 0 * * 8").contains("day-of-week field `8`"));
        assert!(e("0 0 * * FUNDAY").contains("not a number or a name"));
        assert!(e("0 0 * * 5-1").contains("runs backwards"));
        assert!(e("*/0 * * * *").contains("step of 0"));
        assert!(e("@reboot").contains("not a schedule macro"));
        assert!(CronSchedule::parse("0 0 * * *", Some("Moon/Base")).is_err());
    }
}
