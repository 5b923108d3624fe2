//! The capability resolver: binds requirements to providers and explains every decision.
//!
//! A bare `type` resolves by the first rule that applies:
//! 1. run tag `phlo/capability/<type>=<name>`;
//! 2. the asset's `capability_overrides[type]`;
//! 3. env `PHLO_DEFAULT_CAPABILITIES` (a JSON object `{"type": "name"}`);
//! 4. phlo.yaml `capabilities.defaults.<type>`;
//! 5. the sole provider of that type;
//! 6. otherwise an error: *missing* or *ambiguous*.
//!
//! A rule that names a provider that does not exist is an error, never a silent fall
//! through to the next rule. `type:name` binds exactly that provider.
//!
//! ```
//! use phlo_core::capability::{CapabilityResolver, ProviderEntry, ResolutionInputs, Requirement, Rule};
//! let resolver = CapabilityResolver::new([
//!     ProviderEntry::new("table_store:sqlite", "sqlite"),
//!     ProviderEntry::new("table_store:memory", "memory"),
//! ]).unwrap();
//! let mut inputs = ResolutionInputs::default();
//! inputs.config_defaults.insert("table_store".into(), phlo_core::config::Spanned::unlocated("sqlite".into()));
//! let prepared = inputs.prepare();
//! let b = resolver.resolve(&Requirement::parse("table_store").unwrap(), None, &prepared).unwrap();
//! assert_eq!((b.name, b.rule), ("sqlite", Rule::ConfigDefault));
//! ```

use std::collections::{BTreeMap, HashMap};

use rustc_hash::FxHashMap;
use std::fmt;
use std::sync::Arc;

use serde::Serialize;

use super::{Capability, Requirement, RequirementError};
use crate::diagnostic::{Code, Diagnostic, Location, SourceFile, Span};
use crate::source::Spanned;

/// The run-tag prefix that picks a provider for one run: `phlo/capability/<type>=<name>`.
pub const RUN_TAG_PREFIX: &str = "phlo/capability/";
/// The environment variable holding default providers as a JSON object.
pub const ENV_DEFAULTS: &str = "PHLO_DEFAULT_CAPABILITIES";

/// One capability offered by one plugin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderEntry {
    /// `type:name` as declared.
    pub capability: String,
    /// The plugin that provides it.
    pub plugin: String,
}

impl ProviderEntry {
    /// A provider entry.
    pub fn new(capability: impl Into<String>, plugin: impl Into<String>) -> Self {
        Self { capability: capability.into(), plugin: plugin.into() }
    }
}

/// The rule that decided a binding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Rule {
    /// The requirement named the provider (`type:name`).
    Explicit,
    /// Run tag `phlo/capability/<type>`.
    RunTag,
    /// The asset's `capability_overrides`.
    AssetOverride,
    /// `PHLO_DEFAULT_CAPABILITIES`.
    EnvDefault,
    /// `capabilities.defaults` in the project file.
    ConfigDefault,
    /// The only provider of the type.
    SoleProvider,
}

impl Rule {
    /// A short phrase for tables.
    pub fn as_str(self) -> &'static str {
        match self {
            Rule::Explicit => "explicit",
            Rule::RunTag => "run_tag",
            Rule::AssetOverride => "asset_override",
            Rule::EnvDefault => "env_default",
            Rule::ConfigDefault => "config_default",
            Rule::SoleProvider => "sole_provider",
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Everything outside the providers that can choose one: run tags, env, project defaults.
#[derive(Debug, Clone, Default)]
pub struct ResolutionInputs {
    /// Run tags (only `phlo/capability/…` ones matter here).
    pub run_tags: BTreeMap<String, String>,
    /// Parsed `PHLO_DEFAULT_CAPABILITIES`.
    pub env_defaults: BTreeMap<String, String>,
    /// `capabilities.defaults` from the project file.
    pub config_defaults: BTreeMap<String, Spanned<String>>,
    /// The project file, for pointing at `capabilities.defaults` entries.
    pub source: Option<Arc<SourceFile>>,
    /// Which cargo feature adds a capability (`table_store:sqlite` → `plugin-sqlite`).
    pub feature_hints: Vec<(String, String)>,
}

/// Reads `PHLO_DEFAULT_CAPABILITIES` text.
///
/// # Errors
/// A diagnostic when the text is not a JSON object of strings.
pub fn parse_env_defaults(text: &str) -> Result<BTreeMap<String, String>, Diagnostic> {
    serde_json::from_str::<BTreeMap<String, String>>(text).map_err(|e| {
        Diagnostic::error(Code::InvalidEnvDefaults, format!("{ENV_DEFAULTS} is not a JSON object of strings: {e}"))
            .with_help(format!("set it like {ENV_DEFAULTS}='{{\"table_store\": \"sqlite\"}}', or unset it"))
    })
}

/// Where a choosing rule came from, for errors and explanations.
#[derive(Debug, Clone)]
struct Choice {
    name: String,
    rule: Rule,
    span: Span,
}

/// What the tags and defaults say about one capability type.
#[derive(Debug, Clone, Default)]
struct Choices {
    tag: Option<Choice>,
    default: Option<Choice>,
}

/// [`ResolutionInputs`] merged into one lookup per type, done once per project.
#[derive(Debug, Clone, Default)]
pub struct PreparedInputs {
    choices: FxHashMap<String, Choices>,
    written_at: FxHashMap<String, Arc<str>>,
    source: Option<Arc<SourceFile>>,
    hints: HashMap<String, String>,
}

impl ResolutionInputs {
    /// Merges the inputs for fast lookups: env defaults win over project defaults.
    pub fn prepare(&self) -> PreparedInputs {
        let mut choices: FxHashMap<String, Choices> = FxHashMap::default();
        for (k, v) in &self.run_tags {
            if let Some(t) = k.strip_prefix(RUN_TAG_PREFIX) {
                choices.entry(t.to_string()).or_default().tag =
                    Some(Choice { name: v.clone(), rule: Rule::RunTag, span: Span::default() });
            }
        }
        for (t, v) in &self.config_defaults {
            choices.entry(t.clone()).or_default().default =
                Some(Choice { name: v.value.clone(), rule: Rule::ConfigDefault, span: v.span });
        }
        // "where it was written", once per type instead of once per requirement
        let mut written_at = FxHashMap::default();
        if let Some(src) = &self.source {
            for (t, v) in self.config_defaults.iter().filter(|(_, v)| v.span.is_known()) {
                written_at.insert(t.clone(), Arc::from(Location { source: Arc::clone(src), span: v.span }.display()));
            }
        }
        for (t, v) in &self.env_defaults {
            choices.entry(t.clone()).or_default().default =
                Some(Choice { name: v.clone(), rule: Rule::EnvDefault, span: Span::default() });
        }
        PreparedInputs {
            choices,
            written_at,
            source: self.source.clone(),
            hints: self.feature_hints.iter().cloned().collect(),
        }
    }
}

/// A resolved requirement.
#[derive(Debug, Clone, Copy)]
pub struct Binding<'r> {
    /// The capability type.
    pub cap_type: &'r str,
    /// The chosen provider's capability name.
    pub name: &'r str,
    /// The plugin that provides it.
    pub plugin: &'r str,
    /// The rule that decided.
    pub rule: Rule,
    provided: &'r Provided,
}

impl<'r> Binding<'r> {
    fn new(cap_type: &'r str, p: &'r Provided, rule: Rule) -> Self {
        Binding { cap_type, name: &p.name, plugin: &p.plugin, rule, provided: p }
    }

    /// `type:name` of the chosen provider.
    pub fn capability(&self) -> &'r str {
        &self.provided.capability
    }
}

/// A requirement that did not resolve.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ResolveError {
    /// No provider matches.
    #[error("no provider offers `{requirement}`")]
    Missing {
        /// The requirement as written.
        requirement: String,
        /// Capabilities of the same type that do exist.
        available: Vec<String>,
        /// The cargo feature that would add it, when known.
        feature: Option<String>,
    },
    /// Several providers and no rule chooses.
    #[error("`{cap_type}` is offered by {} providers ({}) and nothing chooses one", candidates.len(), candidates.join(", "))]
    Ambiguous {
        /// The type.
        cap_type: String,
        /// `type:name` of each candidate.
        candidates: Vec<String>,
    },
    /// A tag, override or default names a provider that does not exist.
    #[error("{} names `{name}`, but no plugin provides `{cap_type}:{name}`", origin(*rule, cap_type))]
    UnknownProvider {
        /// The type.
        cap_type: String,
        /// The configured name.
        name: String,
        /// Which rule named it.
        rule: Rule,
        /// Where it was written (when in the project file).
        span: Span,
        /// Names of the providers of that type that do exist.
        available: Vec<String>,
        /// The cargo feature that would add it, when known.
        feature: Option<String>,
    },
}

fn origin(rule: Rule, cap_type: &str) -> String {
    match rule {
        Rule::RunTag => format!("run tag `{RUN_TAG_PREFIX}{cap_type}`"),
        Rule::AssetOverride => format!("`capability_overrides.{cap_type}`"),
        Rule::EnvDefault => format!("`{ENV_DEFAULTS}` (key `{cap_type}`)"),
        Rule::ConfigDefault => format!("`capabilities.defaults.{cap_type}`"),
        Rule::Explicit | Rule::SoleProvider => format!("the requirement `{cap_type}`"),
    }
}

#[derive(Debug, Clone)]
struct Provided {
    name: Arc<str>,
    plugin: Arc<str>,
    /// `type:name`, built once.
    capability: Arc<str>,
}

/// Binds requirements to providers. Built once from every provider's `provides`.
#[derive(Debug, Clone, Default)]
pub struct CapabilityResolver {
    /// type → providers sorted by name (registration order never matters).
    by_type: FxHashMap<String, Vec<Provided>>,
}

impl CapabilityResolver {
    /// Indexes providers.
    ///
    /// # Errors
    /// A malformed `provides` string, or the same capability provided twice (naming both plugins).
    pub fn new(providers: impl IntoIterator<Item = ProviderEntry>) -> Result<Self, ProviderIndexError> {
        let mut by_type: FxHashMap<String, Vec<Provided>> = FxHashMap::default();
        for p in providers {
            let cap = Capability::parse(&p.capability)
                .map_err(|error| ProviderIndexError::Malformed { plugin: p.plugin.clone(), error })?;
            let list = by_type.entry(cap.cap_type().to_string()).or_default();
            if let Some(existing) = list.iter().find(|e| &*e.name == cap.name()) {
                let mut plugins = [existing.plugin.to_string(), p.plugin];
                plugins.sort();
                return Err(ProviderIndexError::Duplicate { capability: cap.to_string(), plugins });
            }
            list.push(Provided {
                name: Arc::from(cap.name()),
                plugin: Arc::from(p.plugin.as_str()),
                capability: Arc::from(cap.to_string().as_str()),
            });
        }
        for list in by_type.values_mut() {
            list.sort_by(|a, b| a.name.cmp(&b.name));
        }
        Ok(Self { by_type })
    }

    /// Every capability type that has a provider, sorted.
    pub fn types(&self) -> Vec<&str> {
        let mut v: Vec<&str> = self.by_type.keys().map(String::as_str).collect();
        v.sort_unstable();
        v
    }

    /// `type:name` of every provider of `cap_type`, sorted.
    pub fn providers_of(&self, cap_type: &str) -> Vec<String> {
        self.by_type
            .get(cap_type)
            .map(|l| l.iter().map(|p| format!("{cap_type}:{}", p.name)).collect())
            .unwrap_or_default()
    }

    fn find<'r>(&'r self, cap_type: &str, name: &str) -> Option<(&'r str, &'r Provided)> {
        let (t, list) = self.by_type.get_key_value(cap_type)?;
        find_in(list, name).map(|p| (t.as_str(), p))
    }

    fn available_names(&self, cap_type: &str) -> Vec<String> {
        self.by_type.get(cap_type).map(|l| l.iter().map(|p| p.name.to_string()).collect()).unwrap_or_default()
    }

    /// Resolves one requirement. `overrides` are the asset's `capability_overrides`.
    ///
    /// # Errors
    /// [`ResolveError`] when nothing matches, several match, or a rule names an absent provider.
    pub fn resolve<'r>(
        &'r self,
        req: &Requirement,
        overrides: Option<&BTreeMap<String, Spanned<String>>>,
        inputs: &PreparedInputs,
    ) -> Result<Binding<'r>, ResolveError> {
        let cap_type = req.cap_type();
        if let Some(name) = req.name() {
            return match self.find(cap_type, name) {
                Some((t, p)) => Ok(Binding::new(t, p, Rule::Explicit)),
                None => Err(ResolveError::Missing {
                    requirement: req.to_string(),
                    available: self.providers_of(cap_type),
                    feature: inputs.hints.get(&req.to_string()).cloned(),
                }),
            };
        }
        let providers = self.by_type.get_key_value(cap_type);
        let choices = inputs.choices.get(cap_type);
        let override_choice = overrides.filter(|o| !o.is_empty()).and_then(|o| o.get(cap_type));
        let choice = match (choices.and_then(|c| c.tag.as_ref()), override_choice) {
            (Some(tag), _) => Some((tag.name.as_str(), tag.rule, tag.span)),
            (None, Some(o)) => Some((o.value.as_str(), Rule::AssetOverride, o.span)),
            (None, None) => choices.and_then(|c| c.default.as_ref()).map(|d| (d.name.as_str(), d.rule, d.span)),
        };
        if let Some((name, rule, span)) = choice {
            return match providers.and_then(|(t, list)| find_in(list, name).map(|p| (t, p))) {
                Some((t, p)) => Ok(Binding::new(t, p, rule)),
                None => Err(ResolveError::UnknownProvider {
                    cap_type: cap_type.to_string(),
                    name: name.to_string(),
                    rule,
                    span,
                    available: self.available_names(cap_type),
                    feature: inputs.hints.get(&format!("{cap_type}:{name}")).cloned(),
                }),
            };
        }
        match providers {
            Some((t, list)) if list.len() == 1 => Ok(Binding::new(t, &list[0], Rule::SoleProvider)),
            Some((_, list)) if list.len() > 1 => Err(ResolveError::Ambiguous {
                cap_type: cap_type.to_string(),
                candidates: list.iter().map(|p| format!("{cap_type}:{}", p.name)).collect(),
            }),
            _ => {
                let prefix = format!("{cap_type}:");
                let mut feature: Vec<&String> =
                    inputs.hints.iter().filter(|(c, _)| c.starts_with(&prefix)).map(|(_, f)| f).collect();
                feature.sort();
                Err(ResolveError::Missing {
                    requirement: cap_type.to_string(),
                    available: Vec::new(),
                    feature: feature.first().map(|f| (*f).clone()),
                })
            }
        }
    }
}

fn find_in<'r>(list: &'r [Provided], name: &str) -> Option<&'r Provided> {
    // lists are short (a handful of providers per type): a scan beats a binary search
    list.iter().find(|p| &*p.name == name)
}

/// A problem with the providers themselves.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProviderIndexError {
    /// A `provides` entry that is not `type:name`.
    #[error("plugin `{plugin}` declares a malformed capability: {error}")]
    Malformed {
        /// The plugin.
        plugin: String,
        /// What is wrong.
        error: RequirementError,
    },
    /// Two plugins provide the same capability.
    #[error("`{capability}` is provided by two plugins: `{}` and `{}`", plugins[0], plugins[1])]
    Duplicate {
        /// `type:name`.
        capability: String,
        /// Both plugins, sorted.
        plugins: [String; 2],
    },
}

impl ResolveError {
    /// The diagnostic for this error, saying how to fix it. `required_by` says who asked.
    pub fn to_diagnostic(&self, required_by: &str, optional: bool, inputs: &PreparedInputs) -> Diagnostic {
        let code = match self {
            ResolveError::Missing { .. } => Code::MissingCapability,
            ResolveError::Ambiguous { .. } => Code::AmbiguousCapability,
            ResolveError::UnknownProvider { .. } => Code::UnknownProvider,
        };
        let message = format!("{self} (required by {required_by})");
        let mut d = if optional {
            Diagnostic::warning(Code::OptionalCapabilityMissing, format!("optional capability: {message}"))
        } else {
            Diagnostic::error(code, message)
        };
        match self {
            ResolveError::Missing { available, feature, requirement } => {
                d = match (feature, available.is_empty()) {
                    (Some(f), _) => d.with_help(format!(
                        "enable the cargo feature `{f}` (cargo build --features {f}) to add a provider of `{requirement}`"
                    )),
                    (None, false) => d.with_help(format!(
                        "use one of the providers that exist: {}",
                        available.iter().map(|a| format!("`{a}`")).collect::<Vec<_>>().join(", ")
                    )),
                    (None, true) => d.with_help(format!(
                        "add a plugin crate that provides `{requirement}:<name>` (see `phlo plugins list`)"
                    )),
                };
            }
            ResolveError::Ambiguous { cap_type, candidates } => {
                let first = candidates[0].split_once(':').map_or("", |(_, n)| n);
                d = d
                    .with_help(format!(
                        "choose one in phlo.yaml:\n  capabilities:\n    defaults:\n      {cap_type}: {first}"
                    ))
                    .with_note(format!(
                        "or for one run: --tag {RUN_TAG_PREFIX}{cap_type}={first}, or name it in the requirement: `{cap_type}:{first}`"
                    ));
            }
            ResolveError::UnknownProvider { cap_type, available, feature, span, rule, .. } => {
                if *rule == Rule::ConfigDefault
                    && let Some(src) = &inputs.source
                    && span.is_known()
                {
                    d = d.at(src, *span);
                }
                let names = available.iter().map(|a| format!("`{a}`")).collect::<Vec<_>>().join(", ");
                d = match (feature, available.is_empty()) {
                    (Some(f), _) => {
                        d.with_help(format!("enable the cargo feature `{f}`, or pick a provider that exists"))
                    }
                    (None, false) => d.with_help(format!("providers of `{cap_type}` that exist: {names}")),
                    (None, true) => d.with_help(format!(
                        "no plugin provides any `{cap_type}`; remove the setting or add a plugin that does"
                    )),
                };
            }
        }
        d
    }
}

/// One row of a [`ResolutionReport`].
#[derive(Debug, Clone)]
pub struct RequirementRow {
    /// The requirement as written.
    pub requirement: String,
    /// Who asked (`plugin echo`, `asset raw.orders`).
    pub required_by: Arc<str>,
    /// Whether it is optional.
    pub optional: bool,
    /// `type:name` it bound to, or `None`.
    pub resolved_to: Option<Arc<str>>,
    /// The providing plugin.
    pub provider: Option<Arc<str>>,
    /// The rule that decided.
    pub rule: Option<Rule>,
    /// The error, when it did not resolve.
    pub error: Option<String>,
    /// Where a `capabilities.defaults` entry that decided was written.
    written_at: Option<Arc<str>>,
}

impl RequirementRow {
    /// The decision in words (built on demand: reports are cheap to make).
    pub fn explanation(&self) -> String {
        let (Some(cap), Some(rule)) = (&self.resolved_to, self.rule) else { return String::from("unresolved") };
        let (t, n) = cap.split_once(':').unwrap_or((cap, ""));
        match rule {
            Rule::Explicit => format!("the requirement names `{cap}`"),
            Rule::RunTag => format!("run tag `{RUN_TAG_PREFIX}{t}={n}`"),
            Rule::AssetOverride => format!("the asset's `capability_overrides.{t}`"),
            Rule::EnvDefault => format!("`{ENV_DEFAULTS}` sets `{t}` to `{n}`"),
            Rule::ConfigDefault => match &self.written_at {
                Some(at) => format!("`capabilities.defaults.{t}: {n}` ({at})"),
                None => format!("`capabilities.defaults.{t}: {n}`"),
            },
            Rule::SoleProvider => format!("`{cap}` is the only provider of `{t}`"),
        }
    }
}

impl Serialize for RequirementRow {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Row<'a> {
            requirement: &'a str,
            required_by: &'a str,
            optional: bool,
            resolved_to: Option<&'a str>,
            provider: Option<&'a str>,
            rule: Option<Rule>,
            explanation: String,
            error: Option<&'a str>,
        }
        Row {
            requirement: &self.requirement,
            required_by: &self.required_by,
            optional: self.optional,
            resolved_to: self.resolved_to.as_deref(),
            provider: self.provider.as_deref(),
            rule: self.rule,
            explanation: self.explanation(),
            error: self.error.as_deref(),
        }
        .serialize(s)
    }
}

/// Every requirement of a project with its binding and the reason for it.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ResolutionReport {
    /// The rows, sorted by who asked then requirement.
    pub rows: Vec<RequirementRow>,
}

impl ResolutionReport {
    /// Records one resolution result.
    pub fn record(
        &mut self,
        req: &Requirement,
        required_by: &Arc<str>,
        result: &Result<Binding<'_>, ResolveError>,
        inputs: &PreparedInputs,
    ) {
        let row = match result {
            Ok(b) => RequirementRow {
                requirement: req.to_string(),
                required_by: Arc::clone(required_by),
                optional: req.is_optional(),
                resolved_to: Some(Arc::clone(&b.provided.capability)),
                provider: Some(Arc::clone(&b.provided.plugin)),
                rule: Some(b.rule),
                error: None,
                written_at: if b.rule == Rule::ConfigDefault {
                    inputs.written_at.get(b.cap_type).cloned()
                } else {
                    None
                },
            },
            Err(e) => RequirementRow {
                requirement: req.to_string(),
                required_by: Arc::clone(required_by),
                optional: req.is_optional(),
                resolved_to: None,
                provider: None,
                rule: None,
                error: Some(e.to_string()),
                written_at: None,
            },
        };
        self.rows.push(row);
    }

    /// Sorts rows for stable output.
    pub fn sort(&mut self) {
        self.rows.sort_by(|a, b| (&a.required_by, &a.requirement).cmp(&(&b.required_by, &b.requirement)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolver() -> CapabilityResolver {
        CapabilityResolver::new([
            ProviderEntry::new("table_store:sqlite", "sqlite"),
            ProviderEntry::new("table_store:memory", "memory"),
            ProviderEntry::new("query_engine:sqlite", "sqlite"),
            ProviderEntry::new("echo_store:echo", "echo_store"),
        ])
        .unwrap()
    }

    fn req(s: &str) -> Requirement {
        Requirement::parse(s).unwrap()
    }

    fn spanned(s: &str) -> Spanned<String> {
        Spanned { value: s.to_string(), span: Span::new(4, 18, s.len() as u32) }
    }

    #[test]
    fn precedence_tag_override_env_config_sole() {
        let r = resolver();
        let mut inputs = ResolutionInputs::default();
        inputs.config_defaults.insert("table_store".into(), spanned("memory"));
        let overrides: BTreeMap<_, _> = [("table_store".to_string(), spanned("sqlite"))].into();

        let p = inputs.prepare();
        assert_eq!(r.resolve(&req("table_store"), None, &p).unwrap().rule, Rule::ConfigDefault);
        assert_eq!(r.resolve(&req("table_store"), None, &p).unwrap().name, "memory");

        inputs.env_defaults.insert("table_store".into(), "sqlite".into());
        let p = inputs.prepare();
        let b = r.resolve(&req("table_store"), None, &p).unwrap();
        assert_eq!((b.name, b.rule), ("sqlite", Rule::EnvDefault));

        inputs.env_defaults.insert("table_store".into(), "memory".into());
        let p = inputs.prepare();
        let b = r.resolve(&req("table_store"), Some(&overrides), &p).unwrap();
        assert_eq!((b.name, b.rule), ("sqlite", Rule::AssetOverride));

        inputs.run_tags.insert("phlo/capability/table_store".into(), "memory".into());
        let p = inputs.prepare();
        let b = r.resolve(&req("table_store"), Some(&overrides), &p).unwrap();
        assert_eq!((b.name, b.rule), ("memory", Rule::RunTag));

        let b = r.resolve(&req("query_engine"), None, &p).unwrap();
        assert_eq!((b.name, b.plugin, b.rule), ("sqlite", "sqlite", Rule::SoleProvider));
        let b = r.resolve(&req("table_store:sqlite"), None, &p).unwrap();
        assert_eq!((b.name, b.rule), ("sqlite", Rule::Explicit));
    }

    #[test]
    fn two_providers_and_no_default_is_ambiguous_with_the_fix() {
        let r = resolver();
        let p = ResolutionInputs::default().prepare();
        let e = r.resolve(&req("table_store"), None, &p).unwrap_err();
        assert_eq!(
            e,
            ResolveError::Ambiguous {
                cap_type: "table_store".into(),
                candidates: vec!["table_store:memory".into(), "table_store:sqlite".into()]
            }
        );
        let d = e.to_diagnostic("asset raw.orders", false, &p);
        assert_eq!(d.code, Code::AmbiguousCapability);
        assert!(d.help.unwrap().contains("defaults:\n      table_store: memory"));
    }

    #[test]
    fn a_default_naming_an_absent_provider_never_falls_back() {
        let r = resolver();
        let src = SourceFile::new("phlo.yaml", "x");
        let mut inputs = ResolutionInputs { source: Some(src), ..Default::default() };
        // even though query_engine has exactly one provider
        inputs.config_defaults.insert("query_engine".into(), spanned("trino"));
        inputs.feature_hints.push(("query_engine:trino".into(), "plugin-trino".into()));
        let p = inputs.prepare();
        let e = r.resolve(&req("query_engine"), None, &p).unwrap_err();
        assert!(matches!(&e, ResolveError::UnknownProvider { rule: Rule::ConfigDefault, name, .. } if name == "trino"));
        let d = e.to_diagnostic("plugin x", false, &p);
        assert_eq!(d.code, Code::UnknownProvider);
        assert_eq!(d.location.unwrap().display(), "phlo.yaml:4:18");
        assert!(d.help.unwrap().contains("plugin-trino"));
        assert!(d.message.contains("`capabilities.defaults.query_engine` names `trino`"), "{}", d.message);
    }

    #[test]
    fn missing_says_what_exists_and_which_feature_adds_it() {
        let r = resolver();
        let mut inputs = ResolutionInputs::default();
        inputs.feature_hints.push(("lake:iceberg".into(), "plugin-iceberg".into()));
        let p = inputs.prepare();
        let e = r.resolve(&req("lake"), None, &p).unwrap_err();
        assert_eq!(
            e,
            ResolveError::Missing {
                requirement: "lake".into(),
                available: vec![],
                feature: Some("plugin-iceberg".into())
            }
        );
        let e = r.resolve(&req("table_store:duckdb"), None, &p).unwrap_err();
        let d = e.to_diagnostic("asset a", false, &p);
        assert!(d.help.unwrap().contains("`table_store:memory`, `table_store:sqlite`"));
        let w = e.to_diagnostic("asset a", true, &p);
        assert_eq!((w.code, w.is_error()), (Code::OptionalCapabilityMissing, false));
    }

    #[test]
    fn duplicate_and_malformed_providers_are_errors() {
        let e =
            CapabilityResolver::new([ProviderEntry::new("a:b", "p2"), ProviderEntry::new("a:b", "p1")]).unwrap_err();
        assert_eq!(e.to_string(), "`a:b` is provided by two plugins: `p1` and `p2`");
        assert!(CapabilityResolver::new([ProviderEntry::new("a", "p")]).is_err());
    }

    #[test]
    fn env_defaults_must_be_an_object_of_strings() {
        assert_eq!(parse_env_defaults(r#"{"a":"b"}"#).unwrap()["a"], "b");
        assert_eq!(parse_env_defaults("[1]").unwrap_err().code, Code::InvalidEnvDefaults);
    }

    mod props {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            /// Resolution does not depend on the order providers were registered in.
            #[test]
            fn order_independent(names in proptest::collection::btree_set("[a-d]", 1..4), seed in any::<u64>()) {
                let mut entries: Vec<ProviderEntry> =
                    names.iter().map(|n| ProviderEntry::new(format!("t:{n}"), format!("p_{n}"))).collect();
                let a = CapabilityResolver::new(entries.clone()).unwrap();
                let k = (seed as usize) % entries.len();
                entries.rotate_left(k);
                entries.reverse();
                let b = CapabilityResolver::new(entries).unwrap();
                let p = ResolutionInputs::default().prepare();
                for r in ["t", "t:a", "t:b", "u"] {
                    let r = req(r);
                    let (x, y) = (a.resolve(&r, None, &p), b.resolve(&r, None, &p));
                    prop_assert_eq!(x.as_ref().map(|b| (b.capability(), b.plugin, b.rule)).map_err(Clone::clone), y.as_ref().map(|b| (b.capability(), b.plugin, b.rule)).map_err(Clone::clone));
                }
            }
        }
    }
}
