//! `phlo.yaml` / `phlo.toml`: one model, read in phases that collect every error.
//!
//! 1. **parse** the file into a [`Node`] tree with positions (YAML with strict booleans,
//!    duplicate keys reported with both positions);
//! 2. **expand** `${VAR}` / `${VAR:-default}` everywhere except no-expand fields;
//! 3. **shape**: read each section into its typed model; unknown keys get a did-you-mean.
//!    Sections and entries are read independently, so one bad asset does not hide the next.
//!
//! Plugin sections (`resources.<provider>`, `hooks.<name>`, the type-specific keys of
//! `assets.<key>`) are kept as [`Node`]s here and checked against each plugin's typed
//! config by [`crate::project`].
//!
//! ```
//! use phlo_core::config::{Format, read_str};
//! let (config, diags) = read_str("phlo.yaml", Format::Yaml, "name: shop\nplugins:\n  strict: true\n", &|_| None, &|_, _, _| false);
//! assert!(diags.is_empty());
//! assert!(config.unwrap().plugins.strict);
//! ```

mod asset;

pub use crate::source::{de, env, node};

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use crate::source::{Format, Key, Node, Spanned, Value, from_node};

use crate::diagnostic::{Code, Diagnostic, Diagnostics, SourceFile, did_you_mean};
pub use crate::hooks::FailurePolicy;
use crate::spec::AssetKind;

/// File names searched for in a project directory, in order.
pub const PROJECT_FILES: &[(&str, Format)] =
    &[("phlo.yaml", Format::Yaml), ("phlo.yml", Format::Yaml), ("phlo.toml", Format::Toml)];

/// The top-level keys of a project file.
pub const TOP_LEVEL_KEYS: &[&str] =
    &["name", "plugins", "capabilities", "resources", "hooks", "assets", "executor", "schedules", "paths"];

/// `plugins:` — which compiled plugins a project uses.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct PluginsSection {
    /// Only these plugins are enabled (by name). Omit to enable every compiled plugin.
    pub allow: Option<Vec<Spanned<String>>>,
    /// These plugins are disabled, even if allowed (deny wins).
    pub deny: Vec<Spanned<String>>,
    /// A plugin that fails to load stops the command instead of being skipped.
    pub strict: bool,
}

/// `capabilities:` — how requirements choose among providers.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct CapabilitiesSection {
    /// Default provider per capability type, e.g. `table_store: sqlite`.
    pub defaults: BTreeMap<String, Spanned<String>>,
}

/// The keys every `hooks.<name>` entry has beside the hook's own config.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct HookCommon {
    /// Whether the hook runs at all.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Lower runs first; overrides the hook's default (100).
    pub priority: Option<i32>,
    /// What a failure of this hook does: `ignore`, `log` or `raise`.
    pub failure_policy: Option<FailurePolicy>,
}

fn yes() -> bool {
    true
}

/// Keys of [`HookCommon`].
pub const HOOK_COMMON_KEYS: &[&str] = &["enabled", "priority", "failure_policy"];

/// One `hooks.<name>` entry.
#[derive(Debug, Clone)]
pub struct HookSection {
    /// The hook's name and where it is written.
    pub name: Key,
    /// `enabled`, `priority`, `failure_policy`.
    pub common: HookCommon,
    /// The hook's own keys.
    pub config: Node,
}

/// The keys every `assets.<key>` entry has beside its type's config.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct AssetCommon {
    /// The asset type that builds this asset (offered by a plugin, e.g. `echo`, `csv`, `sql`).
    #[serde(rename = "type")]
    pub asset_type: Option<Spanned<String>>,
    /// Keys of the assets this one reads.
    pub deps: Vec<Spanned<String>>,
    /// Group for display and selection.
    pub group: Option<String>,
    /// What the asset holds.
    pub description: Option<String>,
    /// `ingestion`, `transform`, `publish` or `other`; defaults to the type's kind.
    pub kind: Option<AssetKind>,
    /// Free-form tags.
    pub tags: BTreeMap<String, String>,
    /// Static metadata.
    pub metadata: BTreeMap<String, serde_json::Value>,
    /// Partitioning of the asset: `daily: {start: 2024-01-01}` (also `hourly`, `weekly`,
    /// `monthly`, with optional `end` and `timezone`) or `static: [eu, us]`.
    pub partitions: Option<Spanned<PartitionsConfig>>,
    /// Retries after a failed attempt: a count (`3`) or a policy
    /// (`{max: 3, delay: 10s, backoff: exponential, jitter: 0.1, max_delay: 5m}`).
    pub retries: Option<RetriesConfig>,
    /// Longest a run may take, e.g. `30s`, `5m`, `1h`.
    pub timeout: Option<Spanned<String>>,
    /// Quality checks run after the asset: `{type: not_null, column: id, severity: warn}`.
    pub checks: Vec<serde_json::Map<String, serde_json::Value>>,
    /// Produced outside phlo: other assets may depend on it; it never runs.
    pub external: bool,
    /// Extra capability requirements (`type` or `type:name`).
    pub requires: Vec<Spanned<String>>,
    /// Provider choice for this asset only: capability type → provider name.
    pub capability_overrides: BTreeMap<String, Spanned<String>>,
    /// Version of the code that produces it.
    pub code_version: Option<String>,
}

/// `partitions:` of an asset.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum PartitionsConfig {
    /// One partition per hour.
    Hourly(TimeWindowConfig),
    /// One partition per day.
    Daily(TimeWindowConfig),
    /// One partition per week (from `week_start`, Sunday by default).
    Weekly(TimeWindowConfig),
    /// One partition per calendar month.
    Monthly(TimeWindowConfig),
    /// A fixed list of keys.
    Static(Vec<String>),
}

/// The window settings of time partitions.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TimeWindowConfig {
    /// First window's start: `2024-01-01` or `2024-01-01T06:00`.
    pub start: Spanned<String>,
    /// Exclusive end; omit for windows up to now.
    #[serde(default)]
    pub end: Option<Spanned<String>>,
    /// IANA timezone of the windows (UTC when omitted).
    #[serde(default)]
    pub timezone: Option<Spanned<String>>,
    /// Weekly windows: the day they start on (`sunday` when omitted, as Dagster).
    #[serde(default)]
    pub week_start: Option<Spanned<String>>,
    /// Monthly windows: the day of the month they start on, 1 to 28 (1 when omitted).
    #[serde(default)]
    pub month_day: Option<Spanned<u32>>,
    /// Partitions are the complete windows; `1` adds the window in progress, `-1` leaves
    /// out the last complete one (0 when omitted, as Dagster's `end_offset`).
    #[serde(default)]
    pub end_offset: Option<Spanned<i32>>,
}

/// `retries:` of an asset: a count or a full policy.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum RetriesConfig {
    /// Retries after the first attempt, without delay.
    Count(u32),
    /// A full policy.
    Policy(RetryConfig),
}

/// A full retry policy.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RetryConfig {
    /// Retries after the first attempt.
    pub max: u32,
    /// Base delay before a retry, e.g. `10s`.
    #[serde(default)]
    pub delay: Option<Spanned<String>>,
    /// `fixed`, `linear` or `exponential`.
    #[serde(default)]
    pub backoff: crate::spec::Backoff,
    /// Random spread as a fraction of the delay (0.0–1.0).
    #[serde(default)]
    pub jitter: f64,
    /// Upper bound on any delay, e.g. `5m`.
    #[serde(default)]
    pub max_delay: Option<Spanned<String>>,
}

impl<'de> Deserialize<'de> for RetriesConfig {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = RetriesConfig;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a number of retries or a retry policy mapping")
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<RetriesConfig, E> {
                u32::try_from(v).map(RetriesConfig::Count).map_err(|_| E::custom(format!("{v} retries is too many")))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<RetriesConfig, E> {
                u64::try_from(v)
                    .map_err(|_| E::custom(format!("retries must not be negative, found {v}")))
                    .and_then(|v| self.visit_u64(v))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<RetriesConfig, A::Error> {
                RetryConfig::deserialize(serde::de::value::MapAccessDeserializer::new(map)).map(RetriesConfig::Policy)
            }
        }
        d.deserialize_any(V)
    }
}

/// The keys every check entry has beside its kind's own settings.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct CheckCommon {
    /// The check kind (`not_null`, `unique`, `accepted_values`, `range`, `row_count`, `freshness`, `sql`).
    #[serde(rename = "type")]
    pub kind: Option<Spanned<String>>,
    /// Unique among the asset's checks. Defaults to the kind and its column
    /// (`not_null_id`), numbered when that is taken (`range_price_2`).
    pub name: Option<Spanned<String>>,
    /// `info`, `warn` or `error` (default).
    pub severity: Option<crate::spec::Severity>,
    /// Whether a failure gates downstream assets (default: true for `error` checks).
    pub blocking: Option<bool>,
    /// What the check is for.
    pub description: Option<String>,
    /// Passes with at most this many violating rows (default 0).
    pub max_violations: Option<u64>,
    /// Passes with at most this fraction of violating rows (0.0–1.0).
    pub max_rate: Option<f64>,
}

/// Keys of [`CheckCommon`].
pub const CHECK_COMMON_KEYS: &[&str] =
    &["type", "name", "severity", "blocking", "description", "max_violations", "max_rate"];

pub use crate::spec::ASSET_COMMON_KEYS;

/// One `assets.<key>` entry.
#[derive(Debug, Clone)]
pub struct AssetDecl {
    /// The asset key and where it is written.
    pub key: Key,
    /// The keys every asset has.
    pub common: AssetCommon,
    /// Parsed `timeout`.
    pub timeout: Option<Duration>,
    /// Parsed `partitions`.
    pub partitions: crate::spec::PartitionSpec,
    /// Parsed `retries`.
    pub retry: Option<crate::spec::RetryPolicy>,
    /// Parsed `checks` (built by their kinds when the project loads).
    pub checks: Vec<CheckDecl>,
    /// The type-specific keys.
    pub config: Node,
    /// False when the common keys had errors (already reported): the type-specific keys are
    /// still checked, but no asset is built from the entry.
    pub valid: bool,
}

/// One entry of an asset's `checks:`, its common keys read; its kind's own keys are read
/// with the kind's typed config when the project loads.
#[derive(Debug, Clone)]
pub struct CheckDecl {
    /// The check without its built kind (`run` is `None`).
    pub spec: crate::spec::CheckSpec,
    /// Where `type:` is written.
    pub kind_span: crate::diagnostic::Span,
    /// The kind's own keys.
    pub config: Node,
}

/// `executor:` — how runs execute.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct ExecutorSection {
    /// The orchestrator adapter (`local` unless set).
    pub adapter: Option<Spanned<String>>,
    /// Most assets running at once.
    pub concurrency: Option<u32>,
}

/// `paths:` — where the project's files may be.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct PathsSection {
    /// Let paths in the project file (data, exports, command directories, the warehouse) leave
    /// the project directory: absolute paths and `..`. Off by default.
    pub allow_outside_project: bool,
}

/// One `schedules.<name>` entry.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ScheduleSection {
    /// A crontab line (5 fields), e.g. `0 6 * * 1-5`.
    pub cron: Spanned<String>,
    /// Which assets a tick runs (selection language); all when omitted.
    #[serde(default)]
    pub select: Option<Spanned<String>>,
    /// IANA timezone of the cron line; UTC when omitted.
    #[serde(default)]
    pub timezone: Option<Spanned<String>>,
    /// Partition to run, e.g. `{date}` for the tick's day.
    #[serde(default)]
    pub partition: Option<String>,
    /// Whether the schedule fires.
    #[serde(default = "yes")]
    pub enabled: bool,
}

/// A project file, read and shaped.
#[derive(Debug, Clone)]
pub struct ProjectConfig {
    /// The file.
    pub source: Arc<SourceFile>,
    /// `name:`.
    pub name: Option<Spanned<String>>,
    /// `plugins:`.
    pub plugins: PluginsSection,
    /// `capabilities:`.
    pub capabilities: CapabilitiesSection,
    /// `resources.<provider>` sections, unchecked until the provider is known.
    pub resources: Vec<(Key, Node)>,
    /// `hooks.<name>` sections.
    pub hooks: Vec<HookSection>,
    /// `assets.<key>` entries.
    pub assets: Vec<AssetDecl>,
    /// `executor:`.
    pub executor: ExecutorSection,
    /// `schedules.<name>`.
    pub schedules: BTreeMap<String, ScheduleSection>,
    /// `paths:`.
    pub paths: PathsSection,
}

impl ProjectConfig {
    /// An empty project (no file).
    pub fn empty(path: impl Into<PathBuf>) -> Self {
        Self {
            source: SourceFile::new(path, ""),
            name: None,
            plugins: PluginsSection::default(),
            capabilities: CapabilitiesSection::default(),
            resources: Vec::new(),
            hooks: Vec::new(),
            assets: Vec::new(),
            executor: ExecutorSection::default(),
            schedules: BTreeMap::new(),
            paths: PathsSection::default(),
        }
    }
}

/// Finds the project file in `dir`.
///
/// # Errors
/// `PHLO-E001` when there is none, or when both a YAML and a TOML file exist.
pub fn find_project_file(dir: &Path) -> Result<(PathBuf, Format), Diagnostic> {
    let found: Vec<(PathBuf, Format)> =
        PROJECT_FILES.iter().map(|(n, f)| (dir.join(n), *f)).filter(|(p, _)| p.is_file()).collect();
    match found.as_slice() {
        [] => Err(Diagnostic::error(
            Code::ProjectFile,
            format!("no phlo.yaml, phlo.yml or phlo.toml in `{}`", dir.display()),
        )
        .with_help("create phlo.yaml in the project directory, or pass --project DIR")),
        [one] => Ok(one.clone()),
        [a, b, ..] => Err(Diagnostic::error(
            Code::ProjectFile,
            format!("`{}` has both `{}` and `{}`", dir.display(), file_name(&a.0), file_name(&b.0)),
        )
        .with_help("keep one project file and delete the other")),
    }
}

fn file_name(p: &Path) -> String {
    p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
}

/// Which fields must not be `${}`-expanded: `(section, entry, field)` where `entry` is the
/// provider or hook name for `resources` / `hooks`, the asset type for `assets`, and the
/// check kind for `checks` (an entry of an asset's `checks:`).
pub type NoExpand<'a> = dyn Fn(&str, &str, &str) -> bool + 'a;

/// Reads a project file from disk.
///
/// # Errors
/// `PHLO-E001` when the file cannot be read.
pub fn read_file(
    path: &Path,
    format: Format,
    lookup: &dyn Fn(&str) -> Option<String>,
    no_expand: &NoExpand<'_>,
) -> Result<(Option<ProjectConfig>, Diagnostics), Diagnostic> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        Diagnostic::error(Code::ProjectFile, format!("cannot read `{}`: {e}", path.display()))
            .with_help("check that the file exists and is readable UTF-8 text")
    })?;
    Ok(read_str(path, format, &text, lookup, no_expand))
}

/// Reads a project from text. Returns the config when it could be shaped at all, and every
/// diagnostic found.
pub fn read_str(
    path: impl Into<PathBuf>,
    format: Format,
    text: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    no_expand: &NoExpand<'_>,
) -> (Option<ProjectConfig>, Diagnostics) {
    let source = SourceFile::new(path, text);
    let mut root = match node::parse(&source, format) {
        Ok(n) => n,
        Err(d) => return (None, d),
    };
    let mut diags = Diagnostics::new();
    let Some(_) = root.as_map() else {
        diags.push(
            Diagnostic::error(
                Code::InvalidValue,
                format!("the project file must be a mapping, found {}", root.value.describe()),
            )
            .at(&source, root.span)
            .with_help("start the file with top-level keys such as `name:` and `assets:`"),
        );
        return (None, diags);
    };

    // Which asset type each entry names, read before expansion (types are never variables).
    let asset_types: BTreeMap<String, String> = root
        .get("assets")
        .and_then(Node::as_map)
        .map(|m| m.iter().filter_map(|(k, v)| Some((k.name.clone(), v.get("type")?.as_str()?.to_string()))).collect())
        .unwrap_or_default();
    // ... and which check kind each check entry names: (asset key, index) → kind
    let check_kinds: BTreeMap<(String, String), String> =
        root.get("assets")
            .and_then(Node::as_map)
            .into_iter()
            .flatten()
            .flat_map(|(k, v)| {
                let items = match v.get("checks").map(|c| &c.value) {
                    Some(Value::Seq(items)) => items.as_slice(),
                    _ => &[],
                };
                items.iter().enumerate().filter_map(move |(i, c)| {
                    Some(((k.name.clone(), i.to_string()), c.get("type")?.as_str()?.to_string()))
                })
            })
            .collect();
    let skip = |path: &[&str]| match path {
        ["assets", key, "checks", index, field, ..] => check_kinds
            .get(&((*key).to_string(), (*index).to_string()))
            .is_some_and(|kind| no_expand("checks", kind, field)),
        [section @ ("resources" | "hooks"), entry, field, ..] => no_expand(section, entry, field),
        ["assets", key, field, ..] => asset_types.get(*key).is_some_and(|t| no_expand("assets", t, field)),
        _ => false,
    };
    diags.extend(env::expand_tree(&mut root, &source, lookup, &skip));

    let mut config = ProjectConfig::empty(source.path.clone());
    config.source = Arc::clone(&source);
    for (key, value) in root.as_map().unwrap_or_default() {
        let mut read = |diags: &mut Diagnostics| -> Result<(), Diagnostics> {
            match key.name.as_str() {
                "name" => config.name = from_node(value, &source, &[])?,
                "plugins" => config.plugins = from_node(value, &source, &[])?,
                "capabilities" => config.capabilities = from_node(value, &source, &[])?,
                "executor" => {
                    config.executor = from_node(value, &source, &[])?;
                    if config.executor.concurrency == Some(0)
                        && let Some(c) = value.get("concurrency")
                    {
                        diags.push(
                            Diagnostic::error(Code::InvalidValue, "`concurrency: 0` would run nothing")
                                .at(&source, c.span)
                                .with_help("give the most assets running at once, at least 1"),
                        );
                    }
                }
                "paths" => config.paths = from_node(value, &source, &[])?,
                "resources" => {
                    config.resources = map_entries(value, &source, "resources")?.to_vec();
                }
                "hooks" => {
                    for (name, node) in map_entries(value, &source, "hooks")? {
                        match split_common::<HookCommon>(node, &source, HOOK_COMMON_KEYS) {
                            Ok((common, rest)) => {
                                config.hooks.push(HookSection { name: name.clone(), common, config: rest });
                            }
                            Err(d) => diags.extend(d),
                        }
                    }
                }
                "assets" => {
                    // each entry is read on its own: large projects read them on every core
                    let entries = map_entries(value, &source, "assets")?;
                    let parts = crate::par::map_chunks(entries, 2_000, |part| {
                        let mut found = Diagnostics::new();
                        let decls: Vec<_> = part
                            .iter()
                            .filter_map(|(name, node)| asset::read_asset(name, node, &source, &mut found))
                            .collect();
                        (decls, found)
                    });
                    config.assets.reserve(entries.len());
                    for (decls, found) in parts {
                        config.assets.extend(decls);
                        diags.extend(found);
                    }
                }
                "schedules" => {
                    for (name, node) in map_entries(value, &source, "schedules")? {
                        match from_node::<ScheduleSection>(node, &source, &[]) {
                            Ok(s) => {
                                check_schedule(&s, &source, diags);
                                config.schedules.insert(name.name.clone(), s);
                            }
                            Err(d) => diags.extend(d),
                        }
                    }
                }
                other => {
                    let help = match did_you_mean(other, TOP_LEVEL_KEYS.iter().copied()) {
                        Some(s) => format!("did you mean `{s}`?"),
                        None => format!("top-level keys are {}", TOP_LEVEL_KEYS.join(", ")),
                    };
                    return Err(Diagnostic::error(Code::UnknownKey, format!("unknown key `{other}`"))
                        .at(&source, key.span)
                        .with_help(help)
                        .into());
                }
            }
            Ok(())
        };
        if let Err(d) = read(&mut diags) {
            diags.extend(d);
        }
    }
    check_capability_names(&config, &mut diags);
    (Some(config), diags)
}

fn map_entries<'n>(node: &'n Node, source: &Arc<SourceFile>, section: &str) -> Result<&'n [(Key, Node)], Diagnostics> {
    match &node.value {
        Value::Map(m) => Ok(m),
        Value::Null => Ok(&[]),
        v => {
            Err(Diagnostic::error(Code::InvalidValue, format!("`{section}` must be a mapping, found {}", v.describe()))
                .at(source, node.span)
                .with_help(format!("write `{section}:` followed by indented `name: …` entries"))
                .into())
        }
    }
}

/// Splits an entry into the common keys (read as `C`) and the rest (a plugin's own config).
fn split_common<C: serde::de::DeserializeOwned>(
    node: &Node,
    source: &Arc<SourceFile>,
    common_keys: &[&str],
) -> Result<(C, Node), Diagnostics> {
    let entries = match &node.value {
        Value::Map(m) => m.as_slice(),
        Value::Null => &[],
        v => {
            return Err(Diagnostic::error(Code::InvalidValue, format!("expected a mapping, found {}", v.describe()))
                .at(source, node.span)
                .into());
        }
    };
    let (common, rest): (Vec<_>, Vec<_>) =
        entries.iter().cloned().partition(|(k, _)| common_keys.contains(&k.name.as_str()));
    let common_node = Node { value: Value::Map(common), span: node.span, expanded: false };
    let rest_node = Node { value: Value::Map(rest), span: node.span, expanded: false };
    let c = from_node::<C>(&common_node, source, &[])?;
    Ok((c, rest_node))
}

fn check_schedule(s: &ScheduleSection, source: &Arc<SourceFile>, diags: &mut Diagnostics) {
    use crate::schedule::{CronError, CronSchedule};
    match CronSchedule::parse(&s.cron.value, s.timezone.as_ref().map(|t| t.value.as_str())) {
        Ok(c) if c.never_fires() && s.enabled => diags.push(
            Diagnostic::warning(
                Code::ScheduleNeverFires,
                format!("the cron line `{}` never fires: no listed month has the day it names", s.cron.value),
            )
            .at(source, s.cron.span)
            .with_help("check the day-of-month and month fields (February has 29 days at most; April, June, September and November 30)"),
        ),
        Ok(_) => {}
        Err(e) => {
        let (span, help) = match &e {
            CronError::Timezone(_) => (
                s.timezone.as_ref().map_or(s.cron.span, |t| t.span),
                "use an IANA name such as `UTC` or `Europe/Paris`",
            ),
            _ => (
                s.cron.span,
                "write 5 fields — minute hour day-of-month month day-of-week — e.g. `30 6 * * 1-5`, or @hourly/@daily/@weekly/@monthly",
            ),
        };
        diags.push(Diagnostic::error(Code::InvalidSchedule, e.to_string()).at(source, span).with_help(help));
        }
    }
    if let Some(sel) = &s.select
        && let Err(e) = crate::graph::Selection::parse(&sel.value)
    {
        let at = if e.column > 0 { format!(" (column {} of the selection)", e.column) } else { String::new() };
        let mut d = Diagnostic::error(Code::SelectionSyntax, format!("{e}{at}")).at(source, sel.span);
        if let Some(h) = e.help {
            d = d.with_help(h);
        }
        diags.push(d);
    }
}

/// Parses `500ms`, `30s`, `5m`, `2h`, `1d` (or a bare number of seconds).
pub fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit() && c != '.').unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 = num.parse().ok()?;
    let secs = match unit.trim() {
        "ms" => n / 1000.0,
        "" | "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        "d" => n * 86400.0,
        _ => return None,
    };
    // beyond the bound (or too large for a `Duration`) is not a duration either: never a panic
    // nor a wait that cannot end
    (0.0..=MAX_DURATION_SECS).contains(&secs).then(|| Duration::try_from_secs_f64(secs).ok()).flatten()
}

/// The longest duration a project file may give (10 years): timeouts, retry delays, ages.
pub const MAX_DURATION_SECS: f64 = 10.0 * 365.0 * 86400.0;

fn check_capability_names(config: &ProjectConfig, diags: &mut Diagnostics) {
    use crate::capability::{Requirement, is_snake_case};
    let source = &config.source;
    for (t, v) in &config.capabilities.defaults {
        if let Err(e) = Requirement::of_type(t) {
            diags.push(
                Diagnostic::error(Code::MalformedRequirement, format!("capabilities.defaults: {e}")).at(source, v.span),
            );
        }
        if !is_snake_case(&v.value) {
            diags.push(
                Diagnostic::error(
                    Code::MalformedRequirement,
                    format!("provider name `{}` is not lower snake_case", v.value),
                )
                .at(source, v.span)
                .with_help("provider names are a-z, 0-9 and `_`, e.g. `sqlite`"),
            );
        }
    }
    for a in &config.assets {
        for r in &a.common.requires {
            if let Err(e) = Requirement::parse(&r.value) {
                diags.push(Diagnostic::error(Code::MalformedRequirement, e.to_string()).at(source, r.span));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> (Option<ProjectConfig>, Diagnostics) {
        let env = |n: &str| (n == "WAREHOUSE").then(|| "/data/w.db".to_string());
        read_str("phlo.yaml", Format::Yaml, text, &env, &|s, e, f| s == "assets" && e == "sql" && f == "sql")
    }

    fn messages(text: &str) -> Vec<String> {
        read(text).1.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn reads_every_section() {
        let (c, d) = read(
            "name: shop\nplugins:\n  allow: [echo]\n  deny: [x]\ncapabilities:\n  defaults:\n    table_store: sqlite\n\
             resources:\n  sqlite:\n    path: ${WAREHOUSE}\nhooks:\n  jsonl:\n    priority: 5\n    path: events.jsonl\n\
             assets:\n  raw.orders:\n    type: sql\n    deps: [raw.x]\n    timeout: 30s\n    sql: select '${NOT_EXPANDED}'\n\
             executor:\n  concurrency: 4\nschedules:\n  nightly:\n    cron: '0 2 * * *'\n",
        );
        assert!(d.is_empty(), "{d}");
        let c = c.unwrap();
        assert_eq!(c.name.unwrap().value, "shop");
        assert_eq!(c.capabilities.defaults["table_store"].span.line, 7);
        assert_eq!(c.resources[0].1.get("path").unwrap().as_str(), Some("/data/w.db"));
        assert_eq!(c.hooks[0].common.priority, Some(5));
        assert!(c.hooks[0].config.get("path").is_some() && c.hooks[0].config.get("priority").is_none());
        let a = &c.assets[0];
        assert_eq!(a.timeout, Some(Duration::from_secs(30)));
        assert_eq!(a.config.get("sql").unwrap().as_str(), Some("select '${NOT_EXPANDED}'"));
        assert_eq!(c.executor.concurrency, Some(4));
        assert_eq!(c.schedules["nightly"].cron.value, "0 2 * * *");
        let m = messages(
            "schedules:\n  a:\n    cron: '0 25 * * *'\n  b:\n    cron: '@daily'\n    timezone: Mars/Base\n  c:\n    cron: '@daily'\n    select: 'raw.* and'\n",
        );
        assert_eq!(m.len(), 3, "{m:#?}");
        assert!(m[0].contains("phlo.yaml:3:11") && m[0].contains("hour field"), "{m:#?}");
        assert!(m[1].contains("phlo.yaml:6:15") && m[1].contains("Mars/Base"), "{m:#?}");
        assert!(m[2].contains("phlo.yaml:9:13") && m[2].contains("column 10"), "{m:#?}");
    }

    #[test]
    fn all_errors_of_a_file_are_reported_together() {
        let m = messages(
            "nmae: shop\nplugins:\n  stric: true\nassets:\n  a:\n    type: echo\n    timeout: soon\n  b:\n    deps: x\n  c: {}\nexecutor:\n  concurrency: many\n",
        );
        assert!(m[0].contains("phlo.yaml:1:1") && m[0].contains("did you mean `name`"), "{m:#?}");
        assert!(m.iter().any(|x| x.contains("phlo.yaml:3:3") && x.contains("did you mean `strict`")), "{m:#?}");
        assert!(m.iter().any(|x| x.contains("phlo.yaml:7:14") && x.contains("not a duration")), "{m:#?}");
        assert!(m.iter().any(|x| x.contains("phlo.yaml:9:11") && x.contains("expected a list")), "{m:#?}");
        assert!(m.iter().any(|x| x.contains("asset `c` has no `type`")), "{m:#?}");
        assert!(m.iter().any(|x| x.contains("phlo.yaml:12:16")), "{m:#?}");
        assert_eq!(m.len(), 6, "{m:#?}");
    }

    #[test]
    fn undefined_variables_are_located() {
        let m = messages("resources:\n  sqlite:\n    path: ${NOPE}/w.db\n");
        assert!(m[0].contains("phlo.yaml:3:11") && m[0].contains("`NOPE` is not set"), "{m:?}");
    }

    #[test]
    fn a_non_mapping_file_is_an_error() {
        let m = messages("- a\n- b\n");
        assert!(m[0].contains("must be a mapping"), "{m:?}");
    }

    #[test]
    fn malformed_defaults_are_errors() {
        let m = messages("capabilities:\n  defaults:\n    Table-Store: sqlite\n    query_engine: Duck DB\n");
        assert_eq!(m.len(), 2, "{m:?}");
    }

    #[test]
    fn toml_reads_the_same_model() {
        let (c, d) = read_str(
            "phlo.toml",
            Format::Toml,
            "name = \"shop\"\n[capabilities.defaults]\ntable_store = \"sqlite\"\n[assets.\"raw.orders\"]\ntype = \"echo\"\nrows = 3\n",
            &|_| None,
            &|_, _, _| false,
        );
        assert!(d.is_empty(), "{d}");
        let c = c.unwrap();
        assert_eq!(c.capabilities.defaults["table_store"].span.line, 3);
        assert_eq!(c.assets[0].key.name, "raw.orders");
        assert_eq!(c.assets[0].config.get("rows").unwrap().value, Value::Int(3));
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration("2h"), Some(Duration::from_secs(7200)));
        assert_eq!(parse_duration("10"), Some(Duration::from_secs(10)));
        assert_eq!(parse_duration("soon"), None);
        assert_eq!(parse_duration("5 parsecs"), None);
        assert_eq!(parse_duration("99999999999999999999999d"), None);
        assert_eq!(parse_duration("3650d"), Some(Duration::from_secs(3650 * 86400)));
        assert_eq!(parse_duration("3651d"), None, "beyond 10 years");
    }
}
