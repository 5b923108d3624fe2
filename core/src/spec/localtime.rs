//! Wall-clock times in a timezone, and what they mean across daylight-saving changes.
//!
//! A local date-time names zero, one or two instants: zero in a spring-forward gap
//! (`2024-03-31 02:30` in Europe/Paris), two in an autumn overlap (`2024-10-27 02:30`
//! happens at 00:30 UTC and again at 01:30 UTC). Schedules and partitions both decide what
//! such a time means with [`resolve`], so that they agree with each other:
//!
//! * a **fixed** time (a cron job whose minute and hour are fixed, a daily window's
//!   midnight) names one instant: in a gap, the jump (the first instant after it); in an
//!   overlap, the first occurrence;
//! * a **repeating** time (a job running every hour, an hourly window) names every real
//!   instant: nothing in a gap, both occurrences in an overlap.
//!
//! ```
//! use chrono::{NaiveDate, TimeZone, Utc};
//! use phlo_core::spec::localtime::{Instants, resolve};
//! let paris: chrono_tz::Tz = "Europe/Paris".parse().unwrap();
//! let gap = NaiveDate::from_ymd_opt(2024, 3, 31).unwrap().and_hms_opt(2, 30, 0).unwrap();
//! let jump = Utc.with_ymd_and_hms(2024, 3, 31, 1, 0, 0).unwrap(); // 03:00 CEST
//! assert_eq!(resolve(paris, gap, true), Instants::One(jump));
//! assert_eq!(resolve(paris, gap, false), Instants::None);
//! ```

use chrono::{DateTime, Duration, NaiveDateTime, Offset, TimeZone, Utc};
use chrono_tz::Tz;

/// The instants a local date-time names (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Instants {
    /// None (a repeating time in a gap).
    None,
    /// One.
    One(DateTime<Utc>),
    /// Two, earlier first (a repeating time in an overlap).
    Two(DateTime<Utc>, DateTime<Utc>),
}

/// The instants `local` names in `tz`, for a fixed (`true`) or repeating time (see the module
/// documentation).
pub fn resolve(tz: Tz, local: NaiveDateTime, fixed: bool) -> Instants {
    resolve_with(tz, local, Rule { jump: fixed, once: fixed })
}

/// What a wall-clock time means in a gap and in an overlap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    /// In a gap, the jump (else nothing).
    pub jump: bool,
    /// In an overlap, the first occurrence only (else both).
    pub once: bool,
}

/// The instants `local` names in `tz` under `rule`.
pub fn resolve_with(tz: Tz, local: NaiveDateTime, rule: Rule) -> Instants {
    use chrono::LocalResult;
    match tz.offset_from_local_datetime(&local) {
        LocalResult::Single(o) => Instants::One(utc_of(local, o.fix().local_minus_utc())),
        LocalResult::Ambiguous(a, b) => {
            let (x, y) = (utc_of(local, a.fix().local_minus_utc()), utc_of(local, b.fix().local_minus_utc()));
            let (x, y) = if x <= y { (x, y) } else { (y, x) };
            if rule.once { Instants::One(x) } else { Instants::Two(x, y) }
        }
        LocalResult::None if rule.jump => jump_after(tz, local).map_or(Instants::None, Instants::One),
        LocalResult::None => Instants::None,
    }
}

fn utc_of(local: NaiveDateTime, offset_secs: i32) -> DateTime<Utc> {
    (local - Duration::seconds(i64::from(offset_secs))).and_utc()
}

/// The wall-clock time of `t` in `tz`.
pub fn local_of(tz: Tz, t: DateTime<Utc>) -> NaiveDateTime {
    t.with_timezone(&tz).naive_local()
}

/// The UTC offset of `tz` at `t`, in seconds.
pub fn offset_at(tz: Tz, t: DateTime<Utc>) -> i32 {
    tz.offset_from_utc_datetime(&t.naive_utc()).fix().local_minus_utc()
}

/// The first instant whose wall-clock time is after `local`, a time inside a gap: the jump.
fn jump_after(tz: Tz, local: NaiveDateTime) -> Option<DateTime<Utc>> {
    // every instant in [lo, hi] reads earlier / later than `local`: offsets are within ±1 day
    let at = |secs: i64| DateTime::<Utc>::from_timestamp(secs, 0);
    let mut lo = (local - Duration::hours(26)).and_utc().timestamp();
    let mut hi = (local + Duration::hours(26)).and_utc().timestamp();
    if local_of(tz, at(hi)?) <= local {
        return None;
    }
    // wall-clock time only moves forward around a gap: bisect to the second
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if local_of(tz, at(mid)?) > local { hi = mid } else { lo = mid }
    }
    at(hi)
}

/// Whether the wall clock of `tz` changes offset between `t - span` and `t + span`.
pub fn changes_near(tz: Tz, t: DateTime<Utc>, span: Duration) -> bool {
    offset_at(tz, t - span) != offset_at(tz, t + span)
}

/// Whether `tz` never changes its offset (UTC and fixed-offset zones): every local time
/// names exactly one instant.
pub fn is_fixed_offset(tz: Tz) -> bool {
    matches!(tz, Tz::UTC | Tz::Etc__UTC | Tz::Etc__GMT | Tz::GMT | Tz::Etc__Universal | Tz::Etc__Zulu)
}

/// Parses a wall-clock date-time as phlo.yaml and the command line write it: a date
/// (`2024-03-31`, midnight) or a date and time (`2024-03-31T03:30`, `2024-03-31 03:30:15`,
/// `2024-03-31-03:30` as hourly keys spell it).
pub fn parse_wall_clock(text: &str) -> Option<NaiveDateTime> {
    let t = text.trim();
    if let Ok(d) = chrono::NaiveDate::parse_from_str(t, "%Y-%m-%d") {
        return Some(d.and_time(chrono::NaiveTime::MIN));
    }
    ["%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d-%H:%M"]
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(t, f).ok())
}

/// Parses an instant given on the command line: RFC 3339 (`2024-03-31T01:30:00Z`,
/// `2024-03-31T03:30:00+02:00`), or a local date-time or date read in `tz`
/// (`2024-03-31T03:30`, `2024-03-31`), which must name exactly one instant.
///
/// # Errors
/// Text that is not a time, or a local time that does not exist or happens twice in `tz`.
pub fn parse_instant(text: &str, tz: Tz) -> Result<DateTime<Utc>, String> {
    let t = text.trim();
    if let Ok(x) = DateTime::parse_from_rfc3339(t) {
        return Ok(x.with_timezone(&Utc));
    }
    let local = parse_wall_clock(t).ok_or_else(|| {
        format!("`{text}` is not a time (use RFC 3339 like `2024-03-31T01:30:00Z`, or `2024-03-31T03:30` in {tz})")
    })?;
    match tz.from_local_datetime(&local) {
        chrono::LocalResult::Single(x) => Ok(x.with_timezone(&Utc)),
        chrono::LocalResult::Ambiguous(a, b) => Err(format!(
            "`{text}` happens twice in {tz} ({} and {}); give the offset, e.g. `{}`",
            a.to_rfc3339(),
            b.to_rfc3339(),
            a.to_rfc3339()
        )),
        chrono::LocalResult::None => Err(format!("`{text}` does not exist in {tz} (the clocks jump over it)")),
    }
}

#[cfg(test)]
mod tests {
    use chrono::NaiveDate;

    use super::*;

    fn naive(y: i32, m: u32, d: u32, h: u32, min: u32) -> NaiveDateTime {
        NaiveDate::from_ymd_opt(y, m, d).unwrap().and_hms_opt(h, min, 0).unwrap()
    }

    #[test]
    fn gaps_overlaps_and_plain_times() {
        let paris: Tz = "Europe/Paris".parse().unwrap();
        let u = |h, m| Utc.with_ymd_and_hms(2024, 10, 27, h, m, 0).unwrap();
        let fall = naive(2024, 10, 27, 2, 30);
        assert_eq!(resolve(paris, fall, false), Instants::Two(u(0, 30), u(1, 30)));
        assert_eq!(resolve(paris, fall, true), Instants::One(u(0, 30)));
        assert_eq!(resolve(paris, naive(2024, 10, 27, 4, 0), true), Instants::One(u(3, 0)));
        // Lord Howe moves its clocks by 30 minutes
        let lh: Tz = "Australia/Lord_Howe".parse().unwrap();
        let jump = resolve(lh, naive(2024, 10, 6, 2, 10), true);
        assert_eq!(jump, Instants::One(Utc.with_ymd_and_hms(2024, 10, 5, 15, 30, 0).unwrap()));
        assert_eq!(local_of(lh, Utc.with_ymd_and_hms(2024, 10, 5, 15, 30, 0).unwrap()), naive(2024, 10, 6, 2, 30));
    }

    #[test]
    fn instants_on_the_command_line() {
        let ny: Tz = "America/New_York".parse().unwrap();
        assert_eq!(
            parse_instant("2024-03-10T12:00:00Z", ny).unwrap(),
            Utc.with_ymd_and_hms(2024, 3, 10, 12, 0, 0).unwrap()
        );
        assert_eq!(parse_instant("2024-01-01", ny).unwrap(), Utc.with_ymd_and_hms(2024, 1, 1, 5, 0, 0).unwrap());
        assert!(parse_instant("2024-03-10T02:30", ny).unwrap_err().contains("does not exist"));
        assert!(parse_instant("2024-11-03T01:30", ny).unwrap_err().contains("happens twice"));
        assert!(parse_instant("yesterday", ny).unwrap_err().contains("is not a time"));
    }
}
