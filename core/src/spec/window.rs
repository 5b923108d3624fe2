//! Time-window partitions whose keys are Dagster's.
//!
//! Windows run from one wall-clock boundary to the next, in the spec's timezone: every hour,
//! every midnight, every `week_start` midnight (Sunday by default), or every `month_day`
//! midnight (the 1st by default). A boundary in a daylight-saving gap or overlap means what
//! [`crate::spec::localtime`] says: a day, week or month starts once (at the jump in a gap, at
//! the first midnight in an overlap); hours exist only when they are real, and the repeated
//! hour of an autumn change is two windows, the second keyed with its UTC offset
//! (`2024-10-27-02:00+0100`), as Dagster names it.
//!
//! The partitions at an instant `now` are the **complete** windows: those that start at or
//! after `start` and end by both `now` and `end` (exclusive, a window it cuts is dropped).
//! `end_offset` moves the last one: `1` adds the window in progress, `-1` leaves out the
//! last complete one; never past `end`.
//!
//! ```
//! use chrono::{TimeZone, Utc};
//! use phlo_core::spec::partition::{Granularity, TimePartitions};
//! let p = TimePartitions::new(Granularity::Daily, "2024-01-01", Some("2030-01-01"), None).unwrap();
//! let now = Utc.with_ymd_and_hms(2024, 3, 15, 10, 30, 0).unwrap();
//! assert_eq!(p.latest(now).as_deref(), Some("2024-03-14")); // the last complete day
//! assert_eq!(p.keys(now).len(), 74);
//! ```

use chrono::{DateTime, Datelike, Duration, Months, NaiveDate, NaiveDateTime, NaiveTime, Timelike, Utc, Weekday};
use chrono_tz::Tz;
use serde::Serialize;

use super::localtime::{Instants, Rule, is_fixed_offset, local_of, offset_at, parse_wall_clock, resolve_with};
use super::partition::{Granularity, PartitionError};

/// How windows are anchored and how many count as partitions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct WindowOptions {
    /// First day of a weekly window (Sunday by default, as Dagster).
    #[serde(serialize_with = "weekday_name")]
    pub week_start: Weekday,
    /// Day of the month a monthly window starts on, 1 to 28 (1 by default).
    pub month_day: u32,
    /// Windows added to (or, negative, removed from) the complete ones; `1` includes the
    /// window in progress.
    pub end_offset: i32,
}

impl Default for WindowOptions {
    fn default() -> Self {
        Self { week_start: Weekday::Sun, month_day: 1, end_offset: 0 }
    }
}

fn weekday_name<S: serde::Serializer>(d: &Weekday, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(weekday_str(*d))
}

/// The lowercase English name of a weekday.
pub fn weekday_str(d: Weekday) -> &'static str {
    ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"][d.num_days_from_monday() as usize]
}

/// Time-window partitions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TimePartitions {
    /// Window length.
    pub granularity: Granularity,
    /// Start of the first window (wall-clock time in `timezone`).
    pub start: NaiveDateTime,
    /// Exclusive end (wall-clock time), if bounded.
    pub end: Option<NaiveDateTime>,
    /// Timezone of the windows.
    #[serde(serialize_with = "tz_name")]
    pub timezone: Tz,
    /// Anchors and end offset.
    #[serde(flatten)]
    pub options: WindowOptions,
}

fn tz_name<S: serde::Serializer>(tz: &Tz, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(tz.name())
}

/// One window: its key and its instants.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Window {
    /// The partition key.
    pub key: String,
    /// First instant.
    pub start: DateTime<Utc>,
    /// First instant after it.
    pub end: DateTime<Utc>,
}

/// A window boundary: when, and the wall-clock time it was named by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Tick {
    at: DateTime<Utc>,
    local: NaiveDateTime,
    /// The second occurrence of a repeated wall-clock time.
    second: bool,
}

fn parse_datetime(value: &str) -> Result<NaiveDateTime, PartitionError> {
    parse_wall_clock(value).ok_or_else(|| PartitionError::BadDate {
        value: value.to_string(),
        expected: "`2024-01-31` or `2024-01-31T13:00`",
    })
}

/// The time part of hourly keys.
const HOURS: [&str; 24] = [
    "00:00", "01:00", "02:00", "03:00", "04:00", "05:00", "06:00", "07:00", "08:00", "09:00", "10:00", "11:00",
    "12:00", "13:00", "14:00", "15:00", "16:00", "17:00", "18:00", "19:00", "20:00", "21:00", "22:00", "23:00",
];

/// One hour later, for whole-second times (cheaper than adding a `Duration`).
fn plus_hour(t: NaiveDateTime) -> NaiveDateTime {
    match t.hour() {
        23 => t.date().succ_opt().map_or(t, |d| d.and_hms_opt(0, t.minute(), t.second()).unwrap_or(t)),
        h => t.with_hour(h + 1).unwrap_or(t),
    }
}

/// Writes `n` as `width` zero-padded digits at `at`.
fn put_num(buf: &mut [u8], at: usize, n: u32, width: usize) {
    let mut v = n;
    for i in (at..at + width).rev() {
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
    }
}

impl TimePartitions {
    /// Checks and builds time partitions with the default anchors. `timezone` defaults to UTC.
    ///
    /// # Errors
    /// A bad date, a start off the window boundary, an end not after the start, an unknown timezone.
    pub fn new(
        granularity: Granularity,
        start: &str,
        end: Option<&str>,
        timezone: Option<&str>,
    ) -> Result<Self, PartitionError> {
        Self::with_options(granularity, start, end, timezone, WindowOptions::default())
    }

    /// Checks and builds time partitions.
    ///
    /// # Errors
    /// As [`TimePartitions::new`], and a month day outside 1–28.
    pub fn with_options(
        granularity: Granularity,
        start: &str,
        end: Option<&str>,
        timezone: Option<&str>,
        options: WindowOptions,
    ) -> Result<Self, PartitionError> {
        let timezone = timezone.map_or(Ok(Tz::UTC), super::partition::parse_timezone)?;
        if !(1..=28).contains(&options.month_day) {
            return Err(PartitionError::BadOption(format!(
                "month_day {} is outside 1–28 (every month must have the day, so windows follow each other)",
                options.month_day
            )));
        }
        let s = parse_datetime(start)?;
        if !(1..=9999).contains(&s.year()) {
            return Err(PartitionError::BadDate { value: start.to_string(), expected: "a year from 1 to 9999" });
        }
        let e = end.map(parse_datetime).transpose()?;
        if let Some(e) = e
            && e <= s
        {
            return Err(PartitionError::EndBeforeStart {
                start: start.to_string(),
                end: end.unwrap_or("").to_string(),
            });
        }
        let t = Self { granularity, start: s, end: e, timezone, options };
        if t.floor_local(s) != s {
            let boundary = match granularity {
                Granularity::Hourly => String::from("on the hour"),
                Granularity::Daily => String::from("at midnight"),
                Granularity::Weekly => format!(
                    "at midnight on a {} (week_start; `{start}` is a {})",
                    weekday_str(options.week_start),
                    weekday_str(s.weekday())
                ),
                Granularity::Monthly => format!("at midnight on day {} of a month (month_day)", options.month_day),
            };
            return Err(PartitionError::Unaligned {
                granularity: granularity.as_str(),
                boundary,
                value: start.to_string(),
                first: t.key_of_local(t.next_local(t.floor_local(s)), false),
            });
        }
        Ok(t)
    }

    fn rule(&self) -> Rule {
        // hours repeat: only real ones, both copies of a repeated one; days, weeks and
        // months start once
        let fixed = self.granularity != Granularity::Hourly;
        Rule { jump: fixed, once: fixed }
    }

    /// The greatest window boundary at or before the wall-clock time `t`.
    fn floor_local(&self, t: NaiveDateTime) -> NaiveDateTime {
        let day = t.date();
        match self.granularity {
            Granularity::Hourly => day.and_hms_opt(t.hour(), 0, 0).unwrap_or(t),
            Granularity::Daily => day.and_time(NaiveTime::MIN),
            Granularity::Weekly => {
                let back =
                    (7 + t.weekday().num_days_from_monday() - self.options.week_start.num_days_from_monday()) % 7;
                (day - Duration::days(i64::from(back))).and_time(NaiveTime::MIN)
            }
            Granularity::Monthly => {
                let first = day.with_day(self.options.month_day).unwrap_or(day);
                let d = if day.day() >= self.options.month_day {
                    first
                } else {
                    first.checked_sub_months(Months::new(1)).unwrap_or(first)
                };
                d.and_time(NaiveTime::MIN)
            }
        }
    }

    fn next_local(&self, t: NaiveDateTime) -> NaiveDateTime {
        match self.granularity {
            Granularity::Hourly => t + Duration::hours(1),
            Granularity::Daily => t + Duration::days(1),
            Granularity::Weekly => t + Duration::weeks(1),
            Granularity::Monthly => t.checked_add_months(Months::new(1)).unwrap_or(t),
        }
    }

    fn prev_local(&self, t: NaiveDateTime) -> NaiveDateTime {
        match self.granularity {
            Granularity::Hourly => t - Duration::hours(1),
            Granularity::Daily => t - Duration::days(1),
            Granularity::Weekly => t - Duration::weeks(1),
            Granularity::Monthly => t.checked_sub_months(Months::new(1)).unwrap_or(t),
        }
    }

    /// The key of the window named by wall-clock time `t` (its second occurrence carries
    /// the UTC offset).
    fn key_of_local(&self, t: NaiveDateTime, second: bool) -> String {
        // `YYYY-MM-DD`, `-HH:MM` for hours, `+HHMM` for a repeated hour's second copy
        let mut buf = *b"0000-00-00-00:00+0000";
        put_num(&mut buf, 0, t.year().clamp(0, 9999) as u32, 4);
        put_num(&mut buf, 5, t.month(), 2);
        put_num(&mut buf, 8, t.day(), 2);
        let mut len = 10;
        if self.granularity == Granularity::Hourly {
            put_num(&mut buf, 11, t.hour(), 2);
            put_num(&mut buf, 14, t.minute(), 2);
            len = 16;
            if second {
                let off = self.resolve_local(t).last().map_or(0, |at| offset_at(self.timezone, *at));
                buf[16] = if off < 0 { b'-' } else { b'+' };
                put_num(&mut buf, 17, off.unsigned_abs() / 3600, 2);
                put_num(&mut buf, 19, off.unsigned_abs() % 3600 / 60, 2);
                len = 21;
            }
        }
        // only ASCII digits and separators were written
        std::str::from_utf8(&buf[..len]).map(str::to_owned).unwrap_or_default()
    }

    fn resolve_local(&self, t: NaiveDateTime) -> Vec<DateTime<Utc>> {
        match resolve_with(self.timezone, t, self.rule()) {
            Instants::None => vec![],
            Instants::One(x) => vec![x],
            Instants::Two(x, y) => vec![x, y],
        }
    }

    /// Calls `f` with each boundary from the one named by `from` (a boundary) on, in time
    /// order, until it returns false.
    fn for_each_tick(&self, from: NaiveDateTime, mut f: impl FnMut(Tick) -> bool) {
        let tz = self.timezone;
        let fixed_offset = is_fixed_offset(tz);
        let rule = self.rule();
        // second occurrences come after every first one of the same overlap: hold them back
        let mut held: std::collections::VecDeque<Tick> = Default::default();
        // every tick emitted is later than the one before (a boundary in a gap moved to the
        // jump may meet the next one: one window)
        let mut last: Option<DateTime<Utc>> = None;
        let mut emit = |t: Tick, last: &mut Option<DateTime<Utc>>| {
            if last.is_some_and(|l| t.at <= l) {
                return true;
            }
            *last = Some(t.at);
            f(t)
        };
        // hours: while the offset stays the same, the next boundary is one hour later (one
        // offset lookup instead of a wall-clock resolution); `steady` is the last boundary
        // and its offset when that holds
        let hourly = self.granularity == Granularity::Hourly && !fixed_offset;
        let mut steady: Option<(DateTime<Utc>, i32)> = None;
        // after a change, wall-clock times are resolved one by one until this instant
        let mut slow_until: Option<DateTime<Utc>> = None;
        let mut c = from;
        loop {
            if let Some((at, off)) = steady {
                let next = plus_hour(at.naive_utc()).and_utc();
                if offset_at(tz, next) == off {
                    if !emit(Tick { at: next, local: c, second: false }, &mut last) {
                        return;
                    }
                    steady = Some((next, off));
                    c = plus_hour(c);
                    continue;
                }
                // the offset changes: resolve wall-clock times again from a little earlier
                // (a repeated hour's second copies follow), skipping what was emitted
                steady = None;
                slow_until = Some(next + Duration::hours(4));
                c = self.floor_local(c - Duration::hours(4));
            }
            let resolved = if fixed_offset { Instants::One(c.and_utc()) } else { resolve_with(tz, c, rule) };
            let (first, second) = match resolved {
                Instants::None => (None, None),
                Instants::One(x) => (Some(x), None),
                Instants::Two(x, y) => (Some(x), Some(y)),
            };
            if let Some(x) = first {
                while let Some(h) = held.front().copied().filter(|h| h.at < x) {
                    held.pop_front();
                    if !emit(h, &mut last) {
                        return;
                    }
                }
                if !emit(Tick { at: x, local: c, second: false }, &mut last) {
                    return;
                }
                if hourly && second.is_none() && held.is_empty() && last == Some(x) && slow_until.is_none_or(|u| x >= u)
                {
                    steady = Some((x, offset_at(tz, x)));
                }
            }
            if let Some(y) = second {
                held.push_back(Tick { at: y, local: c, second: true });
            }
            let n = self.next_local(c);
            if n <= c || n.year() > 9999 {
                for h in held {
                    if !emit(h, &mut last) {
                        return;
                    }
                }
                return;
            }
            c = n;
        }
    }

    fn first_tick(&self) -> Option<Tick> {
        let mut out = None;
        self.for_each_tick(self.start, |t| {
            out = Some(t);
            false
        });
        out
    }

    /// The last boundary at or before `at`.
    fn tick_at_or_before(&self, at: DateTime<Utc>) -> Option<Tick> {
        // start a few boundaries back (an overlap can put a later wall-clock time earlier)
        let mut c = self.floor_local(local_of(self.timezone, at) - Duration::hours(3));
        for _ in 0..2 {
            c = self.prev_local(c);
        }
        let c = c.max(self.start);
        let mut best = None;
        self.for_each_tick(c, |t| {
            if t.at > at {
                return false;
            }
            best = Some(t);
            true
        });
        best
    }

    /// The boundary after `tick`.
    fn tick_after(&self, tick: Tick) -> Option<Tick> {
        let mut c = self.floor_local(tick.local - Duration::hours(3));
        c = self.prev_local(c).max(self.start);
        let mut out = None;
        self.for_each_tick(c, |t| {
            if t.at > tick.at {
                out = Some(t);
                return false;
            }
            true
        });
        out
    }

    fn end_tick(&self) -> Option<DateTime<Utc>> {
        // the end is an instant; windows must end by it
        self.end.map(|e| match resolve_with(self.timezone, e, Rule { jump: true, once: true }) {
            Instants::One(x) | Instants::Two(x, _) => x,
            Instants::None => e.and_utc(),
        })
    }

    /// The start of the last partition at `now`, or `None` when there is none yet: the last
    /// complete window at `now` moved by `end_offset` windows, and at most the last window
    /// that ends by `end` (as Dagster).
    fn last_tick(&self, now: DateTime<Utc>) -> Option<Tick> {
        let first = self.first_tick()?;
        // the boundary that ends the last complete window, and that window
        let closing = self.tick_at_or_before(now)?;
        let mut last = self.tick_before(closing);
        let k = self.options.end_offset;
        for _ in 0..k.max(0) {
            match last.map_or(Some(first), |l| self.tick_after(l)) {
                Some(c) => last = Some(c),
                None => break,
            }
        }
        for _ in 0..(-k).max(0) {
            last = last.and_then(|l| self.tick_before(l));
        }
        if let Some(end) = self.end_tick() {
            let cap = self.tick_at_or_before(end).and_then(|c| self.tick_before(c));
            last = match (last, cap) {
                (Some(l), Some(c)) => Some(if c.at < l.at { c } else { l }),
                _ => None,
            };
        }
        last.filter(|l| l.at >= first.at)
    }

    fn tick_before(&self, tick: Tick) -> Option<Tick> {
        if tick.at <= self.first_tick()?.at {
            return None;
        }
        self.tick_at_or_before(tick.at - Duration::seconds(1))
    }

    /// The latest partition at `now`: the last complete window (see the module documentation).
    pub fn latest(&self, now: DateTime<Utc>) -> Option<String> {
        self.last_tick(now).map(|t| self.key_of_local(t.local, t.second))
    }

    /// Every partition at `now`, with its window.
    pub fn windows(&self, now: DateTime<Utc>) -> Vec<Window> {
        let Some(last) = self.last_tick(now) else { return Vec::new() };
        let mut out = Vec::new();
        let mut prev: Option<Tick> = None;
        self.for_each_tick(self.start, |t| {
            if let Some(p) = prev {
                out.push(Window { key: self.key_of_local(p.local, p.second), start: p.at, end: t.at });
                if p.at >= last.at {
                    return false;
                }
            }
            prev = Some(t);
            true
        });
        out
    }

    /// Every partition key at `now`.
    pub fn keys(&self, now: DateTime<Utc>) -> Vec<String> {
        let Some(last) = self.last_tick(now) else { return Vec::new() };
        let span = (last.local - self.start).num_hours().max(0) as usize;
        let per = match self.granularity {
            Granularity::Hourly => 1,
            Granularity::Daily => 24,
            Granularity::Weekly => 24 * 7,
            Granularity::Monthly => 24 * 28,
        };
        let mut out = Vec::with_capacity((span / per + 2).min(1 << 24));
        // hours of one day share its date: format it once
        let mut day: Option<(NaiveDate, String)> = None;
        self.for_each_tick(self.start, |t| {
            let date = t.local.date();
            if self.granularity != Granularity::Hourly || t.second || t.local.minute() != 0 {
                out.push(self.key_of_local(t.local, t.second));
            } else {
                let prefix = match &mut day {
                    Some((d, prefix)) if *d == date => prefix,
                    slot => {
                        let mut p = self.key_of_local(t.local, false);
                        p.truncate(11);
                        &mut slot.insert((date, p)).1
                    }
                };
                let mut k = String::with_capacity(16);
                k.push_str(prefix);
                k.push_str(HOURS[t.local.hour() as usize % 24]);
                out.push(k);
            }
            t.at < last.at
        });
        out
    }

    /// The boundary a key names, if it names one.
    fn tick_of(&self, key: &str) -> Option<Tick> {
        let (text, offset) = match self.granularity {
            Granularity::Hourly if key.len() == 21 => (&key[..16], Some(&key[16..])),
            _ => (key, None),
        };
        let local = match self.granularity {
            Granularity::Hourly => NaiveDateTime::parse_from_str(text, "%Y-%m-%d-%H:%M").ok()?,
            _ => NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()?.and_time(NaiveTime::MIN),
        };
        if self.floor_local(local) != local {
            return None;
        }
        let at = self.resolve_local(local);
        let tick = match (at.as_slice(), offset) {
            ([x, ..], None) => Tick { at: *x, local, second: false },
            ([_, y], Some(_)) => Tick { at: *y, local, second: true },
            _ => return None,
        };
        // only the canonical spelling names the window
        (self.key_of_local(tick.local, tick.second) == key).then_some(tick)
    }

    fn unknown(&self, key: &str, now: DateTime<Utc>) -> PartitionError {
        let last = self.latest(now).map_or_else(|| String::from("none complete yet"), |l| format!("the latest is {l}"));
        PartitionError::UnknownKey {
            key: key.to_string(),
            expected: format!(
                "{} windows from {}{}; {last}; keys look like `{}`",
                self.granularity.as_str(),
                self.key_of_local(self.start, false),
                self.end.map(|e| format!(" until {}", e.format("%Y-%m-%d %H:%M"))).unwrap_or_default(),
                self.key_of_local(self.start, false)
            ),
        }
    }

    /// The window of `key`, whether or not it is complete yet.
    ///
    /// # Errors
    /// When `key` names no window at or after the start.
    pub fn window(&self, key: &str) -> Result<(DateTime<Tz>, DateTime<Tz>), PartitionError> {
        let unknown = || PartitionError::UnknownKey {
            key: key.to_string(),
            expected: format!(
                "{} windows; keys look like `{}`",
                self.granularity.as_str(),
                self.key_of_local(self.start, false)
            ),
        };
        let t = self.tick_of(key).filter(|t| t.local >= self.start).ok_or_else(unknown)?;
        let n = self.tick_after(t).ok_or_else(unknown)?;
        Ok((t.at.with_timezone(&self.timezone), n.at.with_timezone(&self.timezone)))
    }

    /// Checks that `key` is a partition at `now`.
    ///
    /// # Errors
    /// [`PartitionError::UnknownKey`], or [`PartitionError::NotComplete`] for a window that
    /// has not ended (or not begun).
    pub fn check_key(&self, key: &str, now: DateTime<Utc>) -> Result<(), PartitionError> {
        self.position(key, now).map(drop)
    }

    fn position(&self, key: &str, now: DateTime<Utc>) -> Result<Tick, PartitionError> {
        let t = self.tick_of(key).ok_or_else(|| self.unknown(key, now))?;
        let first = self.first_tick().ok_or_else(|| self.unknown(key, now))?;
        if t.at < first.at {
            return Err(self.unknown(key, now));
        }
        match self.last_tick(now) {
            Some(l) if t.at <= l.at => Ok(t),
            _ => {
                let end = self.tick_after(t).map(|n| n.at);
                if let (Some(e), Some(n)) = (self.end_tick(), end)
                    && n > e
                {
                    return Err(self.unknown(key, now));
                }
                Err(PartitionError::NotComplete {
                    key: key.to_string(),
                    ends: end.map_or_else(String::new, |e| e.with_timezone(&self.timezone).to_rfc3339()),
                    now: now.with_timezone(&self.timezone).to_rfc3339(),
                })
            }
        }
    }

    /// Every key from `from` to `to`, both included, at `now`.
    ///
    /// # Errors
    /// Either end is not a partition at `now`, or `to` comes before `from`.
    pub fn range(&self, from: &str, to: &str, now: DateTime<Utc>) -> Result<Vec<String>, PartitionError> {
        let (a, b) = (self.position(from, now)?, self.position(to, now)?);
        if b.at < a.at {
            return Err(PartitionError::EmptyRange { from: from.to_string(), to: to.to_string() });
        }
        let mut out = Vec::new();
        let c = self.floor_local(a.local - Duration::hours(3));
        self.for_each_tick(c.max(self.start), |t| {
            if t.at >= a.at {
                out.push(self.key_of_local(t.local, t.second));
            }
            t.at < b.at
        });
        Ok(out)
    }

    /// The start as a key-like text, and the end with its time when it has one.
    pub fn describe(&self) -> String {
        let mut s = format!("{} from {}", self.granularity.as_str(), self.key_of_local(self.start, false));
        if let Some(e) = self.end {
            let text = if e.time() == NaiveTime::MIN {
                e.format("%Y-%m-%d").to_string()
            } else {
                e.format("%Y-%m-%d %H:%M").to_string()
            };
            s.push_str(&format!(" until {text}"));
        }
        match self.granularity {
            Granularity::Weekly if self.options.week_start != Weekday::Sun => {
                s.push_str(&format!(", weeks from {}", weekday_str(self.options.week_start)));
            }
            Granularity::Monthly if self.options.month_day != 1 => {
                s.push_str(&format!(", months from day {}", self.options.month_day));
            }
            _ => {}
        }
        if self.options.end_offset != 0 {
            s.push_str(&format!(", end_offset {}", self.options.end_offset));
        }
        if self.timezone != Tz::UTC {
            s.push_str(&format!(" ({})", self.timezone.name()));
        }
        s
    }
}

#[cfg(test)]
#[path = "window_tests.rs"]
mod tests;
