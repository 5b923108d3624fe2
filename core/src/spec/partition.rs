//! Partitions: time windows (hourly, daily, weekly, monthly; see [`super::window`]) or a
//! static list of keys.
//!
//! ```
//! use chrono::{TimeZone, Utc};
//! use phlo_core::spec::partition::{Granularity, PartitionSpec, TimePartitions};
//! let p = PartitionSpec::Time(TimePartitions::new(Granularity::Daily, "2024-01-01", Some("2024-01-05"), None).unwrap());
//! let now = Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).unwrap();
//! assert_eq!(p.range("2024-01-02", "2024-01-04", now).unwrap(), ["2024-01-02", "2024-01-03", "2024-01-04"]);
//! assert!(p.range("2024-01-02", "2024-01-09", now).is_err());
//! ```

use std::fmt;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde::Serialize;

pub use super::window::{TimePartitions, Window, WindowOptions};

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
    #[error(
        "{granularity} partitions must start {boundary}, but `{value}` does not (the next window starts at {first})"
    )]
    Unaligned {
        /// The granularity.
        granularity: &'static str,
        /// Where windows must start.
        boundary: String,
        /// The start.
        value: String,
        /// The first window boundary after it.
        first: String,
    },
    /// A window option out of range.
    #[error("{0}")]
    BadOption(String),
    /// A key whose window has not ended at the time of the run.
    #[error("the window `{key}` is not complete: it ends at {ends}, and it is {now}")]
    NotComplete {
        /// The key.
        key: String,
        /// When its window ends.
        ends: String,
        /// The time the run is evaluated at.
        now: String,
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

/// Parses an IANA timezone name.
///
/// # Errors
/// [`PartitionError::BadTimezone`].
pub fn parse_timezone(name: &str) -> Result<Tz, PartitionError> {
    name.parse::<Tz>().map_err(|_| PartitionError::BadTimezone(name.to_string()))
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

    /// The latest partition at `now`: the last complete window (the last static key).
    pub fn latest(&self, now: DateTime<Utc>) -> Option<String> {
        match self {
            PartitionSpec::None => None,
            PartitionSpec::Time(t) => t.latest(now),
            PartitionSpec::Static { keys } => keys.last().cloned(),
        }
    }

    /// Every partition at `now` (the complete windows, every static key); none when not
    /// partitioned.
    pub fn keys(&self, now: DateTime<Utc>) -> Vec<String> {
        match self {
            PartitionSpec::None => Vec::new(),
            PartitionSpec::Time(t) => t.keys(now),
            PartitionSpec::Static { keys } => keys.clone(),
        }
    }

    /// Checks that `key` is one of the partitions at `now`.
    ///
    /// # Errors
    /// [`PartitionError::UnknownKey`], [`PartitionError::NotComplete`] or
    /// [`PartitionError::NotPartitioned`].
    pub fn check_key(&self, key: &str, now: DateTime<Utc>) -> Result<(), PartitionError> {
        match self {
            PartitionSpec::None => Err(PartitionError::NotPartitioned),
            PartitionSpec::Time(t) => t.check_key(key, now),
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

    /// Every key from `from` to `to`, both included (a backfill), at `now`.
    ///
    /// # Errors
    /// Either end is not a partition, or `to` comes before `from`.
    pub fn range(&self, from: &str, to: &str, now: DateTime<Utc>) -> Result<Vec<String>, PartitionError> {
        match self {
            PartitionSpec::None => Err(PartitionError::NotPartitioned),
            PartitionSpec::Time(t) => t.range(from, to, now),
            PartitionSpec::Static { keys } => {
                self.check_key(from, now)?;
                self.check_key(to, now)?;
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
            PartitionSpec::Time(t) => f.write_str(&t.describe()),
            PartitionSpec::Static { keys } => write!(f, "static [{}]", keys.join(", ")),
        }
    }
}

/// The placeholders SQL (a model, a check's query) may use for the partition it runs for:
/// the key, and a time window's bounds (RFC 3339, in the partitions' timezone, end exclusive).
pub const PLACEHOLDERS: &[&str] = &["{partition}", "{partition_start}", "{partition_end}"];

/// The placeholders `text` uses, after checking them: a misspelt one (`{partiton}`), one an
/// asset without partitions could never fill, or a window bound on a static list is an error
/// (a message and a fix), since it would stay literal text.
///
/// # Errors
/// `(message, help)` for the first placeholder that cannot be filled.
pub fn check_placeholders(
    text: &str,
    partitions: &PartitionSpec,
    asset: &str,
) -> Result<Vec<&'static str>, (String, String)> {
    let mut rest = text;
    while let Some(i) = rest.find("{parti") {
        let tail = &rest[i..];
        let end = tail.find('}').map_or(tail.len(), |e| e + 1);
        let word = &tail[..end];
        if !PLACEHOLDERS.contains(&word)
            && word.chars().skip(1).take_while(|c| *c != '}').all(|c| c.is_ascii_lowercase() || c == '_')
        {
            return Err((
                format!("`{word}` is not a placeholder"),
                String::from("use `{partition}`, `{partition_start}` or `{partition_end}`"),
            ));
        }
        rest = &tail[end.min(tail.len())..];
    }
    let used: Vec<&'static str> = PLACEHOLDERS.iter().copied().filter(|p| text.contains(p)).collect();
    match partitions {
        PartitionSpec::None if !used.is_empty() => Err((
            format!("`{}` is used, but asset `{asset}` is not partitioned (it would stay literal text)", used[0]),
            String::from("add `partitions:` to the asset, or remove the placeholder"),
        )),
        PartitionSpec::Static { .. } if used.iter().any(|p| *p != "{partition}") => Err((
            format!(
                "`{}` needs time partitions; asset `{asset}` has a static list",
                used.iter().find(|p| **p != "{partition}").unwrap_or(&"")
            ),
            String::from("use `{partition}`, the key itself"),
        )),
        _ => Ok(used),
    }
}

/// `sql` with the placeholders filled for partition `key`: the key (quotes doubled, for use
/// inside an SQL string literal) and, for time partitions, the window's bounds.
///
/// # Errors
/// `key` is not a partition of `partitions`.
pub fn fill_placeholders(sql: &str, partitions: &PartitionSpec, key: &str) -> Result<String, PartitionError> {
    let mut body = sql.replace("{partition}", &key.replace('\'', "''"));
    if let PartitionSpec::Time(t) = partitions
        && (body.contains("{partition_start}") || body.contains("{partition_end}"))
    {
        let (start, end) = t.window(key)?;
        body = body.replace("{partition_start}", &start.to_rfc3339()).replace("{partition_end}", &end.to_rfc3339());
    }
    Ok(body)
}
