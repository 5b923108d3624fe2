//! Reading one `assets.<key>` entry: the keys every asset has, its partitions, retries,
//! timeout and checks. The type-specific keys stay a [`Node`] for the asset type to read.

use std::sync::Arc;

use super::{
    AssetCommon, AssetDecl, CHECK_COMMON_KEYS, CheckCommon, CheckDecl, Key, Node, PartitionsConfig, RetriesConfig,
    Spanned, Value, parse_duration, split_common,
};
use crate::diagnostic::{Code, Diagnostic, Diagnostics, SourceFile};
use crate::spec::ASSET_COMMON_KEYS;

/// The longest asset key.
pub const MAX_KEY_LEN: usize = 200;

/// Why `key` is not a valid asset key: dot-separated segments of letters, digits, `_` and `-`
/// (`raw.orders`, `marts.daily-revenue`), at most [`MAX_KEY_LEN`] characters.
pub fn key_problem(key: &str) -> Option<String> {
    if key.is_empty() {
        return Some(String::from("an asset key cannot be empty"));
    }
    if key.chars().count() > MAX_KEY_LEN {
        return Some(format!("an asset key has at most {MAX_KEY_LEN} characters"));
    }
    if let Some(c) = key.chars().find(|c| !(c.is_alphanumeric() || matches!(c, '_' | '-' | '.'))) {
        return Some(format!("`{c}` cannot be part of an asset key"));
    }
    if key.split('.').any(str::is_empty) {
        return Some(String::from("an asset key cannot start or end with `.`, nor hold `..`"));
    }
    // keys the selection language (and the command line) could never name
    if matches!(key, "and" | "or" | "not") {
        return Some(format!("`{key}` is a word of the selection language, so `--select {key}` could not name it"));
    }
    if key.starts_with('-') {
        return Some(String::from(
            "an asset key cannot start with `-` (`--select -x` would read as an option on the command line)",
        ));
    }
    None
}

pub(super) fn read_asset(
    key: &Key,
    node: &Node,
    source: &Arc<SourceFile>,
    diags: &mut Diagnostics,
) -> Option<AssetDecl> {
    if let Some(problem) = key_problem(&key.name) {
        diags.push(
            Diagnostic::error(Code::InvalidValue, format!("`{}` is not a valid asset key: {problem}", key.name))
                .at(source, key.span)
                .with_help("keys are dot-separated segments of letters, digits, `_` and `-`, e.g. `raw.orders`"),
        );
    }
    let (common, config) = match split_common::<AssetCommon>(node, source, ASSET_COMMON_KEYS) {
        Ok(parts) => parts,
        Err(d) => {
            diags.extend(d);
            if let Some(t) = node.get("timeout")
                && let Some(text) = t.as_str()
                && parse_duration(text).is_none()
            {
                diags.push(bad_duration(source, text, t.span));
            }
            // keep the type so its own keys are still checked in the same pass
            let asset_type =
                node.get("type").and_then(|t| Some(Spanned { value: t.as_str()?.to_string(), span: t.span }));
            let rest = node
                .as_map()
                .unwrap_or_default()
                .iter()
                .filter(|(k, _)| !ASSET_COMMON_KEYS.contains(&k.name.as_str()))
                .cloned()
                .collect();
            return Some(AssetDecl {
                key: key.clone(),
                common: AssetCommon { asset_type, ..AssetCommon::default() },
                timeout: None,
                partitions: crate::spec::PartitionSpec::None,
                retry: None,
                checks: Vec::new(),
                config: Node { value: Value::Map(rest), span: node.span, expanded: false },
                valid: false,
            });
        }
    };
    let before = diags.len();
    if common.asset_type.is_none() && !common.external {
        diags.push(
            Diagnostic::error(Code::InvalidValue, format!("asset `{}` has no `type`", key.name))
                .at(source, key.span)
                .with_help("add `type: <asset type>` (see `phlo plugins list`), or `external: true` for an asset produced outside phlo"),
        );
    }
    let timeout = match &common.timeout {
        Some(t) => match parse_duration(&t.value) {
            Some(d) => Some(d),
            None => {
                diags.push(bad_duration(source, &t.value, t.span));
                None
            }
        },
        None => None,
    };
    let partitions = match &common.partitions {
        Some(p) => read_partitions(p, source, diags),
        None => crate::spec::PartitionSpec::None,
    };
    let retry = common.retries.as_ref().and_then(|r| read_retry(r, source, diags));
    // a broken check entry is reported and left out; the asset and its other checks are
    // still built, so their own keys are checked in the same pass
    let valid = diags.len() == before;
    let checks = node.get("checks").map(|c| read_checks(&key.name, c, source, diags)).unwrap_or_default();
    Some(AssetDecl { key: key.clone(), common, timeout, partitions, retry, checks, config, valid })
}

fn read_partitions(
    p: &Spanned<PartitionsConfig>,
    source: &Arc<SourceFile>,
    diags: &mut Diagnostics,
) -> crate::spec::PartitionSpec {
    use crate::spec::partition::{Granularity, PartitionError, PartitionSpec, TimePartitions, WindowOptions};
    let (granularity, w) = match &p.value {
        PartitionsConfig::Hourly(w) => (Granularity::Hourly, w),
        PartitionsConfig::Daily(w) => (Granularity::Daily, w),
        PartitionsConfig::Weekly(w) => (Granularity::Weekly, w),
        PartitionsConfig::Monthly(w) => (Granularity::Monthly, w),
        PartitionsConfig::Static(keys) => {
            return PartitionSpec::static_keys(keys.clone()).unwrap_or_else(|e| {
                diags.push(Diagnostic::error(Code::InvalidPartitions, e.to_string()).at(source, p.span));
                PartitionSpec::None
            });
        }
    };
    let mut options = WindowOptions::default();
    let mut bad = |span: crate::diagnostic::Span, message: String, help: &str| {
        diags.push(Diagnostic::error(Code::InvalidPartitions, message).at(source, span).with_help(help));
    };
    let wrong_kind = |field: &str, kind: &str| format!("`{field}` applies to {kind} partitions only");
    if let Some(d) = &w.week_start {
        if granularity != Granularity::Weekly {
            bad(d.span, wrong_kind("week_start", "weekly"), "remove it");
            return PartitionSpec::None;
        }
        let Some(day) = parse_weekday(&d.value) else {
            bad(d.span, format!("`{}` is not a day of the week", d.value), "write `sunday`, `monday`, … `saturday`");
            return PartitionSpec::None;
        };
        options.week_start = day;
    }
    if let Some(m) = &w.month_day {
        if granularity != Granularity::Monthly {
            bad(m.span, wrong_kind("month_day", "monthly"), "remove it");
            return PartitionSpec::None;
        }
        options.month_day = m.value;
    }
    if let Some(o) = &w.end_offset {
        if o.value.unsigned_abs() > 10_000 {
            bad(
                o.span,
                format!("end_offset {} is outside -10000..10000", o.value),
                "`1` includes the window in progress",
            );
            return PartitionSpec::None;
        }
        options.end_offset = o.value;
    }
    let result = TimePartitions::with_options(
        granularity,
        &w.start.value,
        w.end.as_ref().map(|e| e.value.as_str()),
        w.timezone.as_ref().map(|t| t.value.as_str()),
        options,
    );
    match result {
        Ok(t) => PartitionSpec::Time(t),
        Err(e) => {
            let (span, help) = match &e {
                PartitionError::BadTimezone(_) => (
                    w.timezone.as_ref().map_or(p.span, |t| t.span),
                    String::from("use an IANA name such as `UTC` or `Europe/Paris`"),
                ),
                PartitionError::EndBeforeStart { .. } => (
                    w.end.as_ref().map_or(p.span, |t| t.span),
                    String::from("the end is exclusive and must come after the start"),
                ),
                PartitionError::BadDate { value, .. } if w.end.as_ref().is_some_and(|x| &x.value == value) => {
                    (w.end.as_ref().map_or(p.span, |t| t.span), String::from("write the date as `2024-01-31`"))
                }
                PartitionError::BadOption(_) => {
                    (w.month_day.as_ref().map_or(p.span, |t| t.span), String::from("use a day from 1 to 28"))
                }
                PartitionError::Unaligned { first, .. } => {
                    let day =
                        chrono::NaiveDate::parse_from_str(w.start.value.trim().get(..10).unwrap_or(""), "%Y-%m-%d");
                    let next = &first[..10.min(first.len())];
                    let help = match (granularity, day) {
                        (Granularity::Weekly, Ok(d)) => format!(
                            "start on a window boundary (e.g. `{next}`), or set `week_start: {}`",
                            crate::spec::window::weekday_str(chrono::Datelike::weekday(&d))
                        ),
                        (Granularity::Monthly, Ok(d)) if chrono::Datelike::day(&d) <= 28 => format!(
                            "start on a window boundary (e.g. `{next}`), or set `month_day: {}`",
                            chrono::Datelike::day(&d)
                        ),
                        (Granularity::Monthly, _) => {
                            format!("start on a window boundary, e.g. `{next}` (month_day is 1 to 28)")
                        }
                        _ => format!("start on a window boundary, e.g. `{first}`"),
                    };
                    (w.start.span, help)
                }
                _ => (w.start.span, String::from("write the start as `2024-01-31` (or `2024-01-31T06:00` for hourly)")),
            };
            diags.push(Diagnostic::error(Code::InvalidPartitions, e.to_string()).at(source, span).with_help(help));
            PartitionSpec::None
        }
    }
}

fn parse_weekday(text: &str) -> Option<chrono::Weekday> {
    use chrono::Weekday::*;
    let t = text.trim().to_ascii_lowercase();
    [Sun, Mon, Tue, Wed, Thu, Fri, Sat]
        .into_iter()
        .find(|d| crate::spec::window::weekday_str(*d) == t || crate::spec::window::weekday_str(*d)[..3] == t)
}

fn read_retry(
    r: &RetriesConfig,
    source: &Arc<SourceFile>,
    diags: &mut Diagnostics,
) -> Option<crate::spec::RetryPolicy> {
    use crate::spec::RetryPolicy;
    match r {
        RetriesConfig::Count(n) => Some(RetryPolicy::new(*n)),
        RetriesConfig::Policy(p) => {
            let mut policy = RetryPolicy::new(p.max).with_backoff(p.backoff).with_jitter(p.jitter);
            let mut ok = true;
            for (field, value) in [("delay", &p.delay), ("max_delay", &p.max_delay)] {
                let Some(v) = value else { continue };
                match parse_duration(&v.value) {
                    Some(d) if field == "delay" => policy = policy.with_delay(d),
                    Some(d) => policy = policy.with_max_delay(d),
                    None => {
                        diags.push(bad_duration(source, &v.value, v.span));
                        ok = false;
                    }
                }
            }
            ok.then_some(policy)
        }
    }
}

fn read_checks(asset: &str, node: &Node, source: &Arc<SourceFile>, diags: &mut Diagnostics) -> Vec<CheckDecl> {
    use crate::spec::{CheckSpec, Severity, Threshold};
    let Some(items) = (match &node.value {
        Value::Seq(items) => Some(items),
        _ => None,
    }) else {
        return Vec::new(); // the type error was reported while reading the common keys
    };
    let mut out: Vec<CheckDecl> = Vec::new();
    // explicit names first, so that a default name never takes one a user wrote
    let explicit: Vec<&str> = items.iter().filter_map(|i| i.get("name").and_then(Node::as_str)).collect();
    for item in items {
        let (common, rest) = match split_common::<CheckCommon>(item, source, CHECK_COMMON_KEYS) {
            Ok(parts) => parts,
            Err(d) => {
                diags.extend(d);
                continue;
            }
        };
        let Some(kind) = common.kind.clone() else {
            diags.push(
                Diagnostic::error(Code::InvalidValue, format!("a check of asset `{asset}` has no `type`"))
                    .at(source, item.span)
                    .with_help(
                        "add `type: not_null` (or another check kind; `phlo plugins list --kind quality_check`)",
                    ),
            );
            continue;
        };
        let name = match &common.name {
            Some(n) if out.iter().any(|c| c.spec.name == n.value) => {
                diags.push(
                    Diagnostic::error(
                        Code::InvalidValue,
                        format!("asset `{asset}` has two checks named `{}`", n.value),
                    )
                    .at(source, n.span)
                    .with_help("check names are unique within an asset; rename one of them"),
                );
                continue;
            }
            Some(n) => n.value.clone(),
            None => {
                // the kind and its column, numbered when taken: `range_price`, `range_price_2`
                let base = match rest.get("column").and_then(Node::as_str) {
                    Some(c) => format!("{}_{c}", kind.value),
                    None => kind.value.clone(),
                };
                let taken = |n: &str| explicit.contains(&n) || out.iter().any(|c| c.spec.name == n);
                let mut name = base.clone();
                let mut i = 2;
                while taken(&name) {
                    name = format!("{base}_{i}");
                    i += 1;
                }
                name
            }
        };
        let threshold = match (common.max_violations, common.max_rate) {
            (Some(_), Some(_)) => {
                diags.push(
                    Diagnostic::error(Code::InvalidValue, "a check takes `max_violations` or `max_rate`, not both")
                        .at(source, item.span),
                );
                continue;
            }
            (_, Some(r)) if !(0.0..=1.0).contains(&r) => {
                diags.push(
                    Diagnostic::error(Code::InvalidValue, format!("`max_rate: {r}` is not between 0 and 1"))
                        .at(source, item.span),
                );
                continue;
            }
            (_, Some(r)) => Threshold::MaxRate(r),
            (Some(m), None) => Threshold::MaxViolations(m),
            (None, None) => Threshold::default(),
        };
        let severity = common.severity.unwrap_or(Severity::Error);
        let mut spec = CheckSpec::new(name, kind.value.clone()).with_config(rest.to_json());
        spec.severity = severity;
        spec.blocking = common.blocking.unwrap_or(severity == Severity::Error);
        spec.threshold = threshold;
        spec.description = common.description;
        out.push(CheckDecl { spec, kind_span: kind.span, config: rest });
    }
    out
}

fn bad_duration(source: &Arc<SourceFile>, text: &str, span: crate::diagnostic::Span) -> Diagnostic {
    Diagnostic::error(Code::InvalidValue, format!("`{text}` is not a duration"))
        .at(source, span)
        .with_help("write a number with a unit, at most 10 years: `500ms`, `30s`, `5m`, `2h`, `7d`")
}
