//! Partitions: time windows (hourly, daily, weekly, monthly) or a static list of keys.
//!
//! Time windows start at `start` and step by their granularity, in the spec's timezone;
//! `end` (exclusive) bounds them, otherwise the last window is the last one that has
//! begun. Keys are the window's start: `2024-03-01` (daily, weekly, monthly) or
//! `2024-03-01-13:00` (hourly).
//!
//! ```
//! use phlo_core::spec::partition::{Granularity, PartitionSpec, TimePartitions};
//! let p = PartitionSpec::Time(TimePartitions::new(Granularity::Daily, "2024-01-01", Some("2024-01-05"), None).unwrap());
//! assert_eq!(p.range("2024-01-02", "2024-01-04").unwrap(), ["2024-01-02", "2024-01-03", "2024-01-04"]);
//! assert!(p.range("2024-01-02", "2024-01-09").is_err());
//! ```

use std::fmt;

use chrono::{Datelike, Duration, Months, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Timelike};
use chrono_tz::Tz;
use serde::Serialize;

/// How long a time window is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Granularity {
    /// One hour.
    Hourly,
    /// One day.
    Daily,
    /// Seven days.
    Weekly,
    /// One calendar month.
    Monthly,
}

impl Granularity {
    /// The lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Granularity::Hourly => "hourly",
            Granularity::Daily => "daily",
            Granularity::Weekly => "weekly",
            Granularity::Monthly => "monthly",
        }
    }

    fn key_format(self) -> &'static str {
        match self {
            Granularity::Hourly => "%Y-%m-%d-%H:%M",
            _ => "%Y-%m-%d",
        }
    }

    fn step(self, t: NaiveDateTime, n: u32) -> Option<NaiveDateTime> {
        match self {
            Granularity::Hourly => t.checked_add_signed(Duration::hours(i64::from(n))),
            Granularity::Daily => t.checked_add_signed(Duration::days(i64::from(n))),
            Granularity::Weekly => t.checked_add_signed(Duration::weeks(i64::from(n))),
            Granularity::Monthly => t.checked_add_months(Months::new(n)),
        }
    }
}

/// Why a partition definition or key is not valid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PartitionError {
    /// A start or end that is not a date.
    #[error("`{value}` is not a date or date-time (expected {expected})")]
    BadDate {
        /// The text.
        value: String,
        /// What would have been accepted.
        expected: &'static str,
    },
    /// A start that is not on a window boundary.
    #[error("{granularity} partitions must start {boundary}, but `{value}` does not")]
    Unaligned {
        /// The granularity.
        granularity: &'static str,
        /// Where windows must start.
        boundary: &'static str,
        /// The start.
        value: String,
    },
    /// An end at or before the start.
    #[error("the end `{end}` is not after the start `{start}`")]
    EndBeforeStart {
        /// The start.
        start: String,
        /// The end.
        end: String,
    },
    /// An unknown IANA timezone.
    #[error("`{0}` is not a known IANA timezone (e.g. `UTC`, `Europe/Paris`, `America/New_York`)")]
    BadTimezone(String),
    /// A static list that is empty or repeats a key.
    #[error("{0}")]
    BadStaticKeys(String),
    /// A key that is not one of the partitions.
    #[error("`{key}` is not a partition of this asset ({expected})")]
    UnknownKey {
        /// The key.
        key: String,
        /// What keys look like.
        expected: String,
    },
    /// A range whose end comes before its start.
    #[error("the range `{from}..{to}` is empty: `{to}` comes before `{from}`")]
    EmptyRange {
        /// Range start.
        from: String,
        /// Range end.
        to: String,
    },
    /// Partition keys asked of an unpartitioned asset.
    #[error("the asset is not partitioned")]
    NotPartitioned,
}

/// Time-window partitions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TimePartitions {
    /// Window length.
    pub granularity: Granularity,
    /// Start of the first window (local time in `timezone`).
    pub start: NaiveDateTime,
    /// Exclusive end, if bounded.
    pub end: Option<NaiveDateTime>,
    /// Timezone of the windows.
    #[serde(serialize_with = "tz_name")]
    pub timezone: Tz,
}

fn tz_name<S: serde::Serializer>(tz: &Tz, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(tz.name())
}

fn parse_datetime(value: &str) -> Result<NaiveDateTime, PartitionError> {
    let v = value.trim();
    if let Ok(d) = NaiveDate::parse_from_str(v, "%Y-%m-%d") {
        return Ok(d.and_time(NaiveTime::MIN));
    }
    for fmt in ["%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d-%H:%M"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(v, fmt) {
            return Ok(t);
        }
    }
    Err(PartitionError::BadDate { value: value.to_string(), expected: "`2024-01-31` or `2024-01-31T13:00`" })
}

/// Parses an IANA timezone name.
///
/// # Errors
/// [`PartitionError::BadTimezone`].
pub fn parse_timezone(name: &str) -> Result<Tz, PartitionError> {
    name.parse::<Tz>().map_err(|_| PartitionError::BadTimezone(name.to_string()))
}

impl TimePartitions {
    /// Checks and builds time partitions. `timezone` defaults to UTC.
    ///
    /// # Errors
    /// A bad date, a start off the window boundary, an end not after the start, an unknown timezone.
    pub fn new(
        granularity: Granularity,
        start: &str,
        end: Option<&str>,
        timezone: Option<&str>,
    ) -> Result<Self, PartitionError> {
        let timezone = timezone.map_or(Ok(Tz::UTC), parse_timezone)?;
        let s = parse_datetime(start)?;
        let (aligned, boundary) = match granularity {
            Granularity::Hourly => (s.minute() == 0 && s.second() == 0, "on the hour"),
            Granularity::Daily | Granularity::Weekly => (s.time() == NaiveTime::MIN, "at midnight"),
            Granularity::Monthly => {
                (s.time() == NaiveTime::MIN && s.day() <= 28, "at midnight on day 1 to 28 of a month")
            }
        };
        if !aligned {
            return Err(PartitionError::Unaligned {
                granularity: granularity.as_str(),
                boundary,
                value: start.to_string(),
            });
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
        Ok(Self { granularity, start: s, end: e, timezone })
    }

    /// The key of the window starting at `t`.
    pub fn key_of(&self, t: NaiveDateTime) -> String {
        t.format(self.granularity.key_format()).to_string()
    }

    fn nth(&self, n: u32) -> Option<NaiveDateTime> {
        self.granularity.step(self.start, n)
    }

    /// The index of the window that `key` names.
    ///
    /// # Errors
    /// When `key` is not the start of one of the windows.
    pub fn index_of(&self, key: &str) -> Result<u32, PartitionError> {
        let unknown = || PartitionError::UnknownKey {
            key: key.to_string(),
            expected: format!(
                "{} windows from {}{}; keys look like `{}`",
                self.granularity.as_str(),
                self.key_of(self.start),
                self.end.map(|e| format!(" until {}", self.key_of(e))).unwrap_or_default(),
                self.key_of(self.start)
            ),
        };
        let t = NaiveDateTime::parse_from_str(key, self.granularity.key_format())
            .or_else(|_| NaiveDate::parse_from_str(key, "%Y-%m-%d").map(|d| d.and_time(NaiveTime::MIN)))
            .map_err(|_| unknown())?;
        if t < self.start || self.end.is_some_and(|e| t >= e) {
            return Err(unknown());
        }
        let approx = match self.granularity {
            Granularity::Hourly => (t - self.start).num_hours(),
            Granularity::Daily => (t - self.start).num_days(),
            Granularity::Weekly => (t - self.start).num_weeks(),
            Granularity::Monthly => {
                i64::from(t.year() - self.start.year()) * 12 + i64::from(t.month()) - i64::from(self.start.month())
            }
        };
        let n = u32::try_from(approx).map_err(|_| unknown())?;
        if self.nth(n) == Some(t) { Ok(n) } else { Err(unknown()) }
    }

    /// The window `[start, end)` of a key, in the spec's timezone.
    ///
    /// # Errors
    /// When `key` is not one of the windows.
    pub fn window(&self, key: &str) -> Result<(chrono::DateTime<Tz>, chrono::DateTime<Tz>), PartitionError> {
        let n = self.index_of(key)?;
        let (a, b) = (self.nth(n), self.nth(n + 1));
        let local = |t: Option<NaiveDateTime>| {
            t.and_then(|t| self.timezone.from_local_datetime(&t).earliest()).ok_or_else(|| PartitionError::UnknownKey {
                key: key.to_string(),
                expected: String::from("a window that exists in the timezone"),
            })
        };
        Ok((local(a)?, local(b)?))
    }

    /// The last window begun at `now` (or the last before `end`), computed directly.
    pub fn latest(&self, now: chrono::DateTime<chrono::Utc>) -> Option<String> {
        let limit = self.end.unwrap_or_else(|| now.with_timezone(&self.timezone).naive_local());
        let begun = |t: NaiveDateTime| t < limit || (self.end.is_none() && t == limit);
        let approx = match self.granularity {
            Granularity::Hourly => (limit - self.start).num_hours(),
            Granularity::Daily => (limit - self.start).num_days(),
            Granularity::Weekly => (limit - self.start).num_weeks(),
            Granularity::Monthly => {
                i64::from(limit.year() - self.start.year()) * 12 + i64::from(limit.month())
                    - i64::from(self.start.month())
            }
        };
        // the estimate is exact or one too high; step back until the window has begun
        let mut n = u32::try_from(approx.max(0)).unwrap_or(u32::MAX - 1).saturating_add(1);
        loop {
            if let Some(t) = self.nth(n)
                && begun(t)
            {
                return Some(self.key_of(t));
            }
            if n == 0 {
                return None;
            }
            n -= 1;
        }
    }

    /// Every key from the start up to `end`, or up to the last window begun at `now`.
    pub fn keys(&self, now: chrono::DateTime<chrono::Utc>) -> Vec<String> {
        let limit = self.end.unwrap_or_else(|| now.with_timezone(&self.timezone).naive_local());
        let mut out = Vec::new();
        let mut n = 0;
        while let Some(t) = self.nth(n) {
            if t >= limit && !(self.end.is_none() && t == limit) {
                break;
            }
            out.push(self.key_of(t));
            n += 1;
        }
        out
    }
}

/// How an asset is partitioned.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum PartitionSpec {
    /// Not partitioned.
    #[default]
    None,
    /// Time windows.
    Time(TimePartitions),
    /// A fixed list of keys.
    Static {
        /// The keys, in order.
        keys: Vec<String>,
    },
}

impl PartitionSpec {
    /// A static list; keys must be non-empty, unique, without `..`.
    ///
    /// # Errors
    /// [`PartitionError::BadStaticKeys`].
    pub fn static_keys(keys: Vec<String>) -> Result<Self, PartitionError> {
        if keys.is_empty() {
            return Err(PartitionError::BadStaticKeys(String::from("a static partition list needs at least one key")));
        }
        for (i, k) in keys.iter().enumerate() {
            if k.is_empty() || k.contains("..") || k.trim() != k {
                return Err(PartitionError::BadStaticKeys(format!(
                    "static partition key `{k}` is empty, has surrounding spaces or contains `..`"
                )));
            }
            if keys[..i].contains(k) {
                return Err(PartitionError::BadStaticKeys(format!("static partition key `{k}` is listed twice")));
            }
        }
        Ok(PartitionSpec::Static { keys })
    }

    /// Whether the asset is partitioned.
    pub fn is_partitioned(&self) -> bool {
        !matches!(self, PartitionSpec::None)
    }

    /// The latest partition that has begun at `now` (the last static key for static lists).
    pub fn latest(&self, now: chrono::DateTime<chrono::Utc>) -> Option<String> {
        match self {
            PartitionSpec::None => None,
            PartitionSpec::Time(t) => t.latest(now),
            PartitionSpec::Static { keys } => keys.last().cloned(),
        }
    }

    /// Checks that `key` is one of the partitions.
    ///
    /// # Errors
    /// [`PartitionError::UnknownKey`] or [`PartitionError::NotPartitioned`].
    pub fn check_key(&self, key: &str) -> Result<(), PartitionError> {
        match self {
            PartitionSpec::None => Err(PartitionError::NotPartitioned),
            PartitionSpec::Time(t) => t.index_of(key).map(drop),
            PartitionSpec::Static { keys } => {
                if keys.iter().any(|k| k == key) {
                    Ok(())
                } else {
                    Err(PartitionError::UnknownKey {
                        key: key.to_string(),
                        expected: format!("one of {}", keys.join(", ")),
                    })
                }
            }
        }
    }

    /// Every key from `from` to `to`, both included (a backfill).
    ///
    /// # Errors
    /// Either end is not a partition, or `to` comes before `from`.
    pub fn range(&self, from: &str, to: &str) -> Result<Vec<String>, PartitionError> {
        match self {
            PartitionSpec::None => Err(PartitionError::NotPartitioned),
            PartitionSpec::Time(t) => {
                let (a, b) = (t.index_of(from)?, t.index_of(to)?);
                if b < a {
                    return Err(PartitionError::EmptyRange { from: from.to_string(), to: to.to_string() });
                }
                Ok((a..=b).filter_map(|n| t.nth(n)).map(|x| t.key_of(x)).collect())
            }
            PartitionSpec::Static { keys } => {
                self.check_key(from)?;
                self.check_key(to)?;
                let a = keys.iter().position(|k| k == from).unwrap_or(0);
                let b = keys.iter().position(|k| k == to).unwrap_or(0);
                if b < a {
                    return Err(PartitionError::EmptyRange { from: from.to_string(), to: to.to_string() });
                }
                Ok(keys[a..=b].to_vec())
            }
        }
    }
}

impl fmt::Display for PartitionSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PartitionSpec::None => f.write_str("-"),
            PartitionSpec::Time(t) => {
                write!(f, "{} from {}", t.granularity.as_str(), t.key_of(t.start))?;
                if let Some(e) = t.end {
                    write!(f, " until {}", t.key_of(e))?;
                }
                if t.timezone != Tz::UTC {
                    write!(f, " ({})", t.timezone.name())?;
                }
                Ok(())
            }
            PartitionSpec::Static { keys } => write!(f, "static [{}]", keys.join(", ")),
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;

    use super::*;

    fn daily(start: &str, end: Option<&str>) -> TimePartitions {
        TimePartitions::new(Granularity::Daily, start, end, None).unwrap()
    }

    #[test]
    fn keys_and_ranges_per_granularity() {
        let d = PartitionSpec::Time(daily("2024-02-27", Some("2024-03-02")));
        assert_eq!(
            d.range("2024-02-27", "2024-03-01").unwrap(),
            ["2024-02-27", "2024-02-28", "2024-02-29", "2024-03-01"]
        );
        let h = PartitionSpec::Time(TimePartitions::new(Granularity::Hourly, "2024-01-01T22:00", None, None).unwrap());
        assert_eq!(
            h.range("2024-01-01-23:00", "2024-01-02-01:00").unwrap(),
            ["2024-01-01-23:00", "2024-01-02-00:00", "2024-01-02-01:00"]
        );
        let w = PartitionSpec::Time(TimePartitions::new(Granularity::Weekly, "2024-01-01", None, None).unwrap());
        assert_eq!(w.range("2024-01-08", "2024-01-22").unwrap(), ["2024-01-08", "2024-01-15", "2024-01-22"]);
        assert!(w.check_key("2024-01-09").is_err());
        let m = PartitionSpec::Time(TimePartitions::new(Granularity::Monthly, "2023-11-01", None, None).unwrap());
        assert_eq!(m.range("2023-12-01", "2024-02-01").unwrap(), ["2023-12-01", "2024-01-01", "2024-02-01"]);
    }

    #[test]
    fn keys_until_now_or_end() {
        let t = daily("2024-01-01", Some("2024-01-04"));
        assert_eq!(t.keys(Utc::now()), ["2024-01-01", "2024-01-02", "2024-01-03"]);
        let open = daily("2024-01-01", None);
        let now = Utc.with_ymd_and_hms(2024, 1, 3, 12, 0, 0).unwrap();
        assert_eq!(open.keys(now), ["2024-01-01", "2024-01-02", "2024-01-03"]);
    }

    #[test]
    fn latest_agrees_with_the_full_key_list() {
        let now = Utc.with_ymd_and_hms(2024, 3, 15, 10, 30, 0).unwrap();
        for (g, start, end) in [
            (Granularity::Hourly, "2024-03-14T00:00", None),
            (Granularity::Daily, "2024-01-01", None),
            (Granularity::Daily, "2024-01-01", Some("2024-02-01")),
            (Granularity::Weekly, "2024-01-03", None),
            (Granularity::Monthly, "2023-05-01", None),
            (Granularity::Monthly, "2023-05-15", Some("2024-01-15")),
            (Granularity::Daily, "2024-06-01", None),
        ] {
            let t = TimePartitions::new(g, start, end, None).unwrap();
            assert_eq!(t.latest(now), t.keys(now).pop(), "{g:?} {start} {end:?}");
        }
    }

    #[test]
    fn windows_are_in_the_timezone() {
        let t = TimePartitions::new(Granularity::Daily, "2024-03-30", None, Some("Europe/Paris")).unwrap();
        let (a, b) = t.window("2024-03-31").unwrap();
        // the day DST starts is 23 hours long
        assert_eq!((b - a).num_hours(), 23);
    }

    #[test]
    fn bad_definitions() {
        assert!(matches!(
            TimePartitions::new(Granularity::Daily, "2024-13-01", None, None),
            Err(PartitionError::BadDate { .. })
        ));
        assert!(matches!(
            TimePartitions::new(Granularity::Daily, "2024-01-05", Some("2024-01-01"), None),
            Err(PartitionError::EndBeforeStart { .. })
        ));
        assert!(matches!(
            TimePartitions::new(Granularity::Daily, "2024-01-01", None, Some("Mars/Olympus")),
            Err(PartitionError::BadTimezone(_))
        ));
        assert!(matches!(
            TimePartitions::new(Granularity::Hourly, "2024-01-01T10:30", None, None),
            Err(PartitionError::Unaligned { .. })
        ));
        assert!(matches!(
            TimePartitions::new(Granularity::Monthly, "2024-01-31", None, None),
            Err(PartitionError::Unaligned { .. })
        ));
        assert!(PartitionSpec::static_keys(vec![]).is_err());
        assert!(PartitionSpec::static_keys(vec!["a".into(), "a".into()]).is_err());
    }

    #[test]
    fn bad_keys_and_ranges() {
        let d = PartitionSpec::Time(daily("2024-01-01", Some("2024-02-01")));
        assert!(d.check_key("2023-12-31").is_err());
        assert!(d.check_key("2024-02-01").is_err());
        assert!(d.check_key("yesterday").is_err());
        assert!(matches!(d.range("2024-01-05", "2024-01-02"), Err(PartitionError::EmptyRange { .. })));
        let s = PartitionSpec::static_keys(vec!["eu".into(), "us".into(), "apac".into()]).unwrap();
        assert_eq!(s.range("us", "apac").unwrap(), ["us", "apac"]);
        assert!(s.range("apac", "eu").is_err());
        assert!(PartitionSpec::None.check_key("x").is_err());
    }
}
