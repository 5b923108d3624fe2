//! Loading a project: every phase, every diagnostic, before anything runs.
//!
//! parse → expand → shape (see [`crate::config`]) → registry (allow/deny/strict, duplicate
//! names) → plugin configs → construct plugins → assets → capability resolution →
//! readiness. Each phase adds to one [`Diagnostics`]; a phase that cannot run without the
//! previous one's result stops the load, everything else goes on.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Serialize;

use crate::capability::resolver::{ENV_DEFAULTS, PreparedInputs, parse_env_defaults};
use crate::capability::{Requirement, ResolutionInputs, ResolutionReport};
use crate::config::{self, AssetDecl, CheckDecl, Format, ProjectConfig, Spanned};
use crate::diagnostic::{Code, Diagnostic, Diagnostics, SourceFile, Span, did_you_mean, panic_message};
use crate::graph::{AssetGraph, AssetNode, GraphError};
use crate::plugin::{
    AssetTypeContext, CheckContext, Factory, Instance, PluginEntry, PluginError, PluginFilter, PluginKind, Registry,
    RegistryBuilder, compiled_descriptors,
};
use crate::source::Node;
use crate::spec::{AssetKey, AssetSpec, CheckSpec};

mod run;

pub use run::bus_for_project;

/// The capability bindings of one asset: capability type → the resource provider bound.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AssetBinding {
    /// The capability type (`table_store`).
    pub cap_type: String,
    /// The resource provider plugin bound to it.
    pub provider: String,
}

/// Which cargo feature of the `phlo` package adds which plugins. The facade owns the list
/// (it is the one place that knows the features); errors use it to say what to enable.
#[derive(Debug, Clone, Copy)]
pub struct FeatureHint {
    /// The cargo feature, e.g. `plugin-echo`.
    pub feature: &'static str,
    /// The plugin crate it links.
    pub crate_name: &'static str,
    /// Whether this build has it on (`cfg!(feature = "…")`); only features that are off are
    /// suggested.
    pub enabled: bool,
    /// Plugin names the feature adds.
    pub plugins: &'static [&'static str],
    /// Capabilities the feature adds.
    pub capabilities: &'static [&'static str],
    /// Asset types the feature adds.
    pub asset_types: &'static [&'static str],
}

/// Reads an environment variable.
pub type EnvLookup = Box<dyn Fn(&str) -> Option<String>>;

/// How to load a project.
pub struct LoadOptions {
    /// Run tags (`phlo/capability/<type>=<name>` picks providers).
    pub run_tags: BTreeMap<String, String>,
    /// Reads environment variables (for `${VAR}` and `PHLO_DEFAULT_CAPABILITIES`).
    pub env: EnvLookup,
    /// What each cargo feature adds.
    pub feature_hints: &'static [FeatureHint],
    /// Fail when the directory has no project file (otherwise: an empty project).
    pub require_file: bool,
    /// Registers providers; defaults to every compiled one.
    pub registry: fn(RegistryBuilder) -> RegistryBuilder,
}

impl Default for LoadOptions {
    fn default() -> Self {
        Self {
            run_tags: BTreeMap::new(),
            env: Box::new(|name| std::env::var(name).ok()),
            feature_hints: &[],
            require_file: true,
            registry: RegistryBuilder::with_compiled,
        }
    }
}

impl std::fmt::Debug for LoadOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadOptions").field("run_tags", &self.run_tags).finish_non_exhaustive()
    }
}

/// Whether a plugin can be used, and why not.
#[derive(Debug, Clone, Serialize)]
pub struct PluginReadiness {
    /// The plugin.
    pub name: String,
    /// Its kind.
    pub kind: PluginKind,
    /// Enabled, constructed, and every required capability resolves to a ready provider.
    pub ready: bool,
    /// Required capabilities that do not resolve (or resolve to a provider that is not ready).
    pub missing: Vec<String>,
    /// Why it is not ready, in words.
    pub reason: Option<String>,
}

/// A loaded, checked project.
#[derive(Debug)]
pub struct Project {
    /// The project directory.
    pub dir: PathBuf,
    /// The project file.
    pub config: ProjectConfig,
    /// The providers.
    pub registry: Registry,
    /// Every asset and the edges between them (shared with runs, never copied).
    pub graph: Arc<AssetGraph>,
    /// Every requirement and its binding.
    pub report: ResolutionReport,
    /// The resolved capabilities of each asset, for runs.
    pub bindings: HashMap<AssetKey, Vec<AssetBinding>>,
    /// Readiness per enabled plugin, in registry order.
    pub readiness: Vec<PluginReadiness>,
    /// Everything found, sorted.
    pub diagnostics: Diagnostics,
}

impl Project {
    /// Loads the project in `dir`.
    ///
    /// # Errors
    /// When a phase that the rest depends on fails (the file cannot be parsed, the
    /// registry is inconsistent): all diagnostics found so far.
    pub fn load(dir: &Path, options: &LoadOptions) -> Result<Project, Diagnostics> {
        let mut diags = Diagnostics::new();

        // Phase 1–3: the file.
        let config = match config::find_project_file(dir) {
            Ok((path, format)) => read_config(&display_path(&path), format, options, &mut diags)?,
            Err(d) if options.require_file => return Err(d.into()),
            Err(_) => ProjectConfig::empty(display_path(&dir.join("phlo.yaml"))),
        };
        let source = Arc::clone(&config.source);

        // Phase 4: the registry.
        let mut builder = (options.registry)(Registry::builder())
            .filter(filter_of(&config))
            .project_dir(dir)
            .source(Arc::clone(&source));
        for (key, node) in &config.resources {
            builder = builder.plugin_config(PluginKind::ResourceProvider, &key.name, node.clone());
        }
        for h in &config.hooks {
            builder = builder.plugin_config(PluginKind::HookProvider, &h.name.name, h.config.clone());
        }
        let registry = match builder.build() {
            Ok(r) => r,
            Err(errors) => {
                diags.extend(errors.iter().map(|e| e.to_diagnostic()));
                diags.sort();
                return Err(diags);
            }
        };
        check_allow_deny(&config, &registry, &mut diags);

        // Phase 5: plugin config sections.
        check_plugin_sections(&config, &registry, options.feature_hints, &mut diags);

        // Phase 6: construct.
        match registry.load_all() {
            Ok(failures) => {
                for f in failures {
                    // a config the check phase already reported needs no second report
                    if let crate::plugin::RegistryError::Failed { error: PluginError::Config(_), .. } = &f
                        && diags.has_errors()
                    {
                        continue;
                    }
                    let mut d = f.to_diagnostic();
                    d.severity = crate::diagnostic::Severity::Warning;
                    diags.push(d.with_note("the plugin is skipped; set `plugins.strict: true` to make this an error"));
                }
            }
            Err(e) => diags.push(e.to_diagnostic()),
        }

        // Phase 7: assets.
        let graph = Arc::new(collect_assets(&config, &registry, dir, options.feature_hints, &mut diags));

        // Phase 8–9: capabilities and readiness.
        let mut inputs = ResolutionInputs {
            run_tags: options.run_tags.clone(),
            config_defaults: config.capabilities.defaults.clone(),
            source: Some(Arc::clone(&source)),
            feature_hints: options
                .feature_hints
                .iter()
                .filter(|h| !h.enabled)
                .flat_map(|h| h.capabilities.iter().map(|c| ((*c).to_string(), h.feature.to_string())))
                .collect(),
            ..ResolutionInputs::default()
        };
        if let Some(text) = (options.env)(ENV_DEFAULTS).filter(|t| !t.trim().is_empty()) {
            match parse_env_defaults(&text) {
                Ok(m) => inputs.env_defaults = m,
                Err(d) => diags.push(d),
            }
        }
        let prepared = inputs.prepare();
        let (report, readiness, bindings) = resolve_all(&config, &registry, graph.nodes(), &prepared, &mut diags);

        diags.sort();
        Ok(Project { dir: dir.to_path_buf(), config, registry, graph, report, bindings, readiness, diagnostics: diags })
    }

    /// The readiness row of a plugin.
    pub fn readiness_of(&self, kind: PluginKind, name: &str) -> Option<&PluginReadiness> {
        self.readiness.iter().find(|r| r.kind == kind && r.name == name)
    }
}

/// The path as a user should read it: relative to the working directory when inside it,
/// without `./`.
fn display_path(path: &Path) -> PathBuf {
    let path = if path.is_absolute() {
        std::env::current_dir().ok().and_then(|cwd| path.strip_prefix(&cwd).ok().map(Path::to_path_buf))
    } else {
        None
    }
    .unwrap_or_else(|| path.to_path_buf());
    path.components().filter(|c| !matches!(c, std::path::Component::CurDir)).collect()
}

fn read_config(
    path: &Path,
    format: Format,
    options: &LoadOptions,
    diags: &mut Diagnostics,
) -> Result<ProjectConfig, Diagnostics> {
    let descriptors = compiled_descriptors();
    // A section whose plugin is not compiled in is left unexpanded: which of its fields are
    // no-expand is unknown, and the section is reported as unknown anyway.
    let no_expand = |section: &str, entry: &str, field: &str| -> bool {
        let kind = match section {
            "assets" => PluginKind::AssetType,
            "resources" => PluginKind::ResourceProvider,
            "hooks" => PluginKind::HookProvider,
            "checks" => PluginKind::QualityCheck,
            _ => return false,
        };
        match descriptors.iter().find(|d| d.kind() == kind && d.name == entry) {
            Some(d) => d.config.no_expand.contains(&field),
            // an asset without a known type: expand only the keys every asset has
            None if kind == PluginKind::AssetType => !config::ASSET_COMMON_KEYS.contains(&field),
            None => true,
        }
    };
    let (config, found) = config::read_file(path, format, &*options.env, &no_expand).map_err(Diagnostics::from)?;
    diags.extend(found);
    config.ok_or_else(|| std::mem::take(diags))
}

fn filter_of(config: &ProjectConfig) -> PluginFilter {
    let names = |v: &[Spanned<String>]| v.iter().map(|s| s.value.clone()).collect::<Vec<_>>();
    PluginFilter {
        allow: config.plugins.allow.as_deref().map(names),
        deny: names(&config.plugins.deny),
        strict: config.plugins.strict,
    }
}

fn check_allow_deny(config: &ProjectConfig, registry: &Registry, diags: &mut Diagnostics) {
    let source = &config.source;
    let known: BTreeSet<&str> = registry.list().iter().map(PluginEntry::name).collect();
    let allow = config.plugins.allow.as_deref().unwrap_or_default();
    for (list, name) in [(allow, "allow"), (config.plugins.deny.as_slice(), "deny")] {
        for item in list {
            if !known.contains(item.value.as_str()) {
                let help = match did_you_mean(&item.value, known.iter().copied()) {
                    Some(s) => format!("did you mean `{s}`?"),
                    None => "see `phlo plugins list` for the compiled plugins".to_string(),
                };
                diags.push(
                    Diagnostic::warning(
                        Code::UnknownPluginName,
                        format!("`plugins.{name}` names `{}`, which is not compiled in", item.value),
                    )
                    .at(source, item.span)
                    .with_help(help),
                );
            }
        }
    }
    for d in &config.plugins.deny {
        if let Some(a) = allow.iter().find(|a| a.value == d.value) {
            diags.push(
                Diagnostic::warning(
                    Code::AllowDenyConflict,
                    format!("plugin `{}` is both allowed and denied; deny wins", d.value),
                )
                .at(source, d.span)
                .with_note(format!("allowed at {}:{}:{}", source.path.display(), a.span.line, a.span.col))
                .with_help("remove it from one of the two lists"),
            );
        }
    }
}

fn feature_for(hints: &[FeatureHint], pick: impl Fn(&FeatureHint) -> bool) -> Option<&'static str> {
    hints.iter().find(|h| !h.enabled && pick(h)).map(|h| h.feature)
}

fn unknown_entry(
    source: &Arc<SourceFile>,
    span: crate::diagnostic::Span,
    what: &str,
    name: &str,
    candidates: &[&str],
    feature: Option<&str>,
) -> Diagnostic {
    let mut help = match did_you_mean(name, candidates.iter().copied()) {
        Some(s) => format!("did you mean `{s}`?"),
        None if candidates.is_empty() => format!("no {what} is compiled in"),
        None => format!("compiled-in {what}s: {}", candidates.join(", ")),
    };
    if let Some(f) = feature {
        help = format!("enable the cargo feature `{f}` (cargo build --features {f}); {help}");
    }
    Diagnostic::error(Code::UnknownPlugin, format!("unknown {what} `{name}`")).at(source, span).with_help(help)
}

fn check_plugin_sections(config: &ProjectConfig, registry: &Registry, hints: &[FeatureHint], diags: &mut Diagnostics) {
    let source = &config.source;
    let names_of = |kind: PluginKind| -> Vec<&str> {
        registry.list().iter().filter(|e| e.kind() == kind && e.is_enabled()).map(PluginEntry::name).collect()
    };
    let sections =
        config.resources.iter().map(|(k, n)| (PluginKind::ResourceProvider, "resource provider", k, n, &[][..])).chain(
            config
                .hooks
                .iter()
                .map(|h| (PluginKind::HookProvider, "hook", &h.name, &h.config, config::HOOK_COMMON_KEYS)),
        );
    for (kind, what, key, node, extra) in sections {
        let entry = registry.get(kind, &key.name).filter(|e| e.is_enabled());
        match entry {
            None => {
                let feature = feature_for(hints, |h| h.plugins.contains(&key.name.as_str()));
                diags.push(unknown_entry(source, key.span, what, &key.name, &names_of(kind), feature));
            }
            Some(e) => {
                if let Err(d) = (e.descriptor().config.check)(node, source, extra) {
                    diags.extend(d);
                }
            }
        }
    }
    if let Some(adapter) = &config.executor.adapter
        && registry.get(PluginKind::OrchestratorAdapter, &adapter.value).is_none_or(|e| !e.is_enabled())
    {
        let feature = feature_for(hints, |h| h.plugins.contains(&adapter.value.as_str()));
        diags.push(unknown_entry(
            source,
            adapter.span,
            "orchestrator adapter",
            &adapter.value,
            &names_of(PluginKind::OrchestratorAdapter),
            feature,
        ));
    }
    for a in &config.assets {
        let Some(t) = &a.common.asset_type else { continue };
        match registry.enabled(PluginKind::AssetType, &t.value) {
            Some(at) => {
                if let Err(d) = (at.descriptor().config.check)(&a.config, source, config::ASSET_COMMON_KEYS) {
                    diags.extend(d);
                }
            }
            None => {
                let types: Vec<&str> = registry.names(PluginKind::AssetType).collect();
                let feature = feature_for(hints, |h| h.asset_types.contains(&t.value.as_str()));
                diags.push(unknown_entry(source, t.span, "asset type", &t.value, &types, feature));
            }
        }
    }
}

fn collect_assets(
    config: &ProjectConfig,
    registry: &Registry,
    dir: &Path,
    hints: &[FeatureHint],
    diags: &mut Diagnostics,
) -> AssetGraph {
    let mut assets: Vec<AssetNode> = Vec::new();
    for e in registry.list().iter().filter(|e| e.kind() == PluginKind::AssetProvider && e.is_enabled()) {
        let Ok(Instance::Assets(p)) = registry.get_or_create(PluginKind::AssetProvider, e.name()) else { continue };
        let listed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| p.assets()))
            .unwrap_or_else(|payload| Err(PluginError::Panicked(panic_message(payload.as_ref()))));
        match listed {
            Ok(specs) => {
                let source = SourceFile::new(format!("<asset provider `{}`>", e.name()), "");
                for mut spec in specs {
                    let checks = std::mem::take(&mut spec.checks);
                    let decls = checks
                        .into_iter()
                        .map(|c| CheckDecl { config: Node::from_json(&c.config), spec: c, kind_span: Span::default() })
                        .collect::<Vec<_>>();
                    build_checks(&mut spec, &decls, registry, &source, hints, diags);
                    assets.push(AssetNode::new(spec, e.name()));
                }
            }
            Err(err) => diags.push(
                Diagnostic::error(
                    Code::PluginFailed,
                    format!("asset provider `{}` failed to list its assets: {err}", e.name()),
                )
                .with_help("fix the plugin, or disable it with `plugins.deny`"),
            ),
        }
    }
    let mut decls: HashMap<&str, &AssetDecl> = HashMap::new();
    for decl in config.assets.iter().filter(|d| d.valid) {
        decls.insert(decl.key.name.as_str(), decl);
        if let Some(a) = declarative_asset(decl, config, registry, dir, hints, diags) {
            assets.push(a);
        }
    }
    let (graph, errors) = AssetGraph::build(assets);
    for e in errors {
        // point into phlo.yaml where the asset is declared there
        let span = match &e {
            GraphError::DuplicateKey { key, .. } => decls.get(key.as_str()).map(|d| d.key.span),
            GraphError::UnknownDep { asset, dep, .. } => decls
                .get(asset.as_str())
                .map(|d| d.common.deps.iter().find(|x| &x.value == dep).map_or(d.key.span, |x| x.span)),
            GraphError::Cycle { path } => path.iter().find_map(|k| decls.get(k.as_str()).map(|d| d.key.span)),
        };
        let mut d = e.to_diagnostic();
        if let Some(span) = span {
            d = d.at(&config.source, span);
        }
        diags.push(d);
    }
    graph
}

fn declarative_asset(
    decl: &AssetDecl,
    config: &ProjectConfig,
    registry: &Registry,
    dir: &Path,
    hints: &[FeatureHint],
    diags: &mut Diagnostics,
) -> Option<AssetNode> {
    let c = &decl.common;
    let (mut spec, provider, type_name) = if c.external && c.asset_type.is_none() {
        (AssetSpec::new(&decl.key.name), String::from("phlo.yaml"), None)
    } else {
        let t = c.asset_type.as_ref()?;
        let entry = registry.enabled(PluginKind::AssetType, &t.value)?;
        let Factory::AssetType { kind, build } = entry.descriptor().factory else { return None };
        let locations = decl
            .config
            .as_map()
            .unwrap_or_default()
            .iter()
            .filter(|(_, v)| v.span.line > 0)
            .map(|(k, v)| (k.name.clone(), format!("{}:{}:{}", config.source.path.display(), v.span.line, v.span.col)))
            .collect();
        let ctx = AssetTypeContext { key: decl.key.name.clone(), project_dir: dir.to_path_buf(), locations };
        let built =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| build(&decl.config, &config.source, &ctx)))
                .unwrap_or_else(|payload| Err(PluginError::Panicked(panic_message(payload.as_ref()))));
        match built {
            Ok(mut spec) => {
                spec.key = decl.key.name.as_str().into();
                spec.kind = kind;
                spec.requires.extend(entry.descriptor().metadata.requires.iter().map(|r| (*r).to_string()));
                (spec, entry.name().to_string(), Some(entry.name().to_string()))
            }
            Err(PluginError::Config(d)) => {
                // the config check phase read the same keys; report only what it did not
                let key = |x: &Diagnostic| (x.code, x.message.clone(), x.location.as_ref().map(|l| l.span));
                let seen: Vec<_> = diags.iter().map(key).collect();
                diags.extend(d.into_iter().filter(|x| !seen.contains(&key(x))));
                return None;
            }
            Err(e) => {
                diags.push(
                    Diagnostic::error(
                        Code::PluginFailed,
                        format!("asset type `{}` could not build `{}`: {e}", entry.name(), decl.key.name),
                    )
                    .at(&config.source, decl.key.span),
                );
                return None;
            }
        }
    };
    if let Some(k) = c.kind {
        spec.kind = k;
    }
    spec.deps.extend(c.deps.iter().map(|d| d.value.as_str().into()));
    if c.group.is_some() {
        spec.group.clone_from(&c.group);
    }
    if c.description.is_some() {
        spec.description.clone_from(&c.description);
    }
    spec.tags.extend(c.tags.clone());
    spec.metadata.extend(c.metadata.clone());
    spec.requires.extend(c.requires.iter().map(|r| r.value.clone()));
    spec.capability_overrides.extend(c.capability_overrides.clone());
    spec.external = c.external;
    if c.code_version.is_some() {
        spec.code_version.clone_from(&c.code_version);
    }
    if decl.partitions.is_partitioned() {
        spec.partitions = decl.partitions.clone();
    }
    if let Some(r) = decl.retry {
        spec.retry = r;
    }
    if decl.timeout.is_some() {
        spec.timeout = decl.timeout;
    }
    // a check that cannot be built is reported and left out; the asset stays in the graph so
    // that its dependents do not report it missing
    build_checks(&mut spec, &decl.checks, registry, &config.source, hints, diags);
    Some(AssetNode { spec, provider: provider.into(), asset_type: type_name.map(Into::into) })
}

/// Builds an asset's checks with their kinds' typed configs and adds the kinds' required
/// capabilities to the asset. A check that cannot be built is reported and left out.
fn build_checks(
    spec: &mut AssetSpec,
    decls: &[CheckDecl],
    registry: &Registry,
    source: &Arc<SourceFile>,
    hints: &[FeatureHint],
    diags: &mut Diagnostics,
) {
    let table = spec
        .metadata
        .get("table")
        .and_then(serde_json::Value::as_str)
        .map_or_else(|| crate::data::table_name(&spec.key), str::to_string);
    for decl in decls {
        let mut check: CheckSpec = decl.spec.clone();
        let located = |d: Diagnostic| if decl.kind_span.line > 0 { d.at(source, decl.kind_span) } else { d };
        let Some(entry) = registry.enabled(PluginKind::QualityCheck, &check.kind) else {
            let kinds: Vec<&str> = registry.names(PluginKind::QualityCheck).collect();
            let feature = feature_for(hints, |h| h.plugins.contains(&check.kind.as_str()));
            let mut d = unknown_entry(source, decl.kind_span, "check kind", &check.kind, &kinds, feature);
            d.code = Code::UnknownCheckKind;
            d.message = format!("asset `{}`: unknown check kind `{}`", spec.key, check.kind);
            if decl.kind_span.line == 0 {
                d.location = None;
            }
            diags.push(d);
            continue;
        };
        let Factory::Check(build) = entry.descriptor().factory else { continue };
        let location = (decl.kind_span.line > 0)
            .then(|| format!("{}:{}:{}", source.path.display(), decl.kind_span.line, decl.kind_span.col));
        let ctx =
            CheckContext { asset: spec.key.to_string(), table: table.clone(), name: check.name.clone(), location };
        let built = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            build(&decl.config, source, config::CHECK_COMMON_KEYS, &ctx)
        }))
        .unwrap_or_else(|payload| Err(PluginError::Panicked(panic_message(payload.as_ref()))));
        match built {
            Ok(run) => {
                check.run = Some(run);
                check.location.clone_from(&ctx.location);
                for r in entry.descriptor().metadata.requires {
                    if !spec.requires.iter().any(|x| x == r || x.split(':').next() == Some(r)) {
                        spec.requires.push((*r).to_string());
                    }
                }
                spec.checks.push(check);
            }
            Err(PluginError::Config(d)) => diags.extend(d),
            Err(PluginError::Failed { message, help }) => {
                let mut d = located(Diagnostic::error(
                    Code::InvalidValue,
                    format!("check `{}` of asset `{}`: {message}", check.name, spec.key),
                ));
                if let Some(h) = help {
                    d = d.with_help(h);
                }
                diags.push(d);
            }
            Err(e) => {
                diags.push(located(Diagnostic::error(
                    Code::PluginFailed,
                    format!(
                        "check kind `{}` could not build check `{}` of asset `{}`: {e}",
                        check.kind, check.name, spec.key
                    ),
                )));
            }
        }
    }
}

struct Requirer<'a> {
    label: Arc<str>,
    plugin: Option<(PluginKind, &'a str)>,
    requirements: Vec<(Requirement, bool)>,
    overrides: Option<&'a BTreeMap<String, Spanned<String>>>,
}

fn resolve_all(
    config: &ProjectConfig,
    registry: &Registry,
    assets: &[AssetNode],
    prepared: &PreparedInputs,
    diags: &mut Diagnostics,
) -> (ResolutionReport, Vec<PluginReadiness>, HashMap<AssetKey, Vec<AssetBinding>>) {
    let resolver = registry.resolver();
    let mut requirers: Vec<Requirer<'_>> = Vec::new();
    // asset types and check kinds require on behalf of the assets that use them
    let per_asset = |k: PluginKind| matches!(k, PluginKind::AssetType | PluginKind::QualityCheck);
    for e in registry.list().iter().filter(|e| e.is_enabled() && !per_asset(e.kind())) {
        let m = &e.descriptor().metadata;
        let reqs = m
            .requires
            .iter()
            .map(|r| (r, false))
            .chain(m.optional.iter().map(|r| (r, true)))
            .filter_map(|(r, opt)| Requirement::parse(r).ok().map(|q| (q.optional(opt), opt)))
            .collect();
        requirers.push(Requirer {
            label: Arc::from(format!("plugin {}", e.name())),
            plugin: Some((e.kind(), e.name())),
            requirements: reqs,
            overrides: None,
        });
    }
    for a in assets {
        let mut reqs = Vec::new();
        for r in &a.spec.requires {
            match Requirement::parse(r) {
                Ok(q) => reqs.push((q, false)),
                // phlo.yaml requirements were reported with their position while reading
                Err(e) if a.asset_type.is_none() => diags.push(
                    Diagnostic::error(
                        Code::MalformedRequirement,
                        format!("asset `{}` (from `{}`): {e}", a.spec.key, a.provider),
                    )
                    .with_help("write requirements as `type` or `type:name`, both lower snake_case"),
                ),
                Err(_) => {}
            }
        }
        reqs.sort();
        reqs.dedup();
        requirers.push(Requirer {
            label: Arc::from(format!("asset {}", a.spec.key)),
            plugin: None,
            requirements: reqs,
            overrides: Some(&a.spec.capability_overrides),
        });
    }

    // Resolve everything once.
    let mut report = ResolutionReport::default();
    // one diagnostic per distinct failure, naming everyone it affects
    type Who<'a> = (String, Option<(PluginKind, &'a str)>);
    let mut failures: Vec<(crate::capability::ResolveError, bool, Vec<Who<'_>>)> = Vec::new();
    let mut bindings: Vec<Vec<Result<(PluginKind, &str), String>>> = Vec::new();
    let mut asset_bindings: HashMap<AssetKey, Vec<AssetBinding>> = HashMap::new();
    let plugin_requirers = requirers.iter().filter(|r| r.plugin.is_some()).count();
    for (i, r) in requirers.iter().enumerate() {
        let mut row = Vec::new();
        for (q, _) in &r.requirements {
            let result = resolver.resolve(q, r.overrides, prepared);
            report.record(q, &r.label, &result, prepared);
            if i >= plugin_requirers
                && let Ok(b) = &result
            {
                let key = &assets[i - plugin_requirers].spec.key;
                asset_bindings
                    .entry(key.clone())
                    .or_default()
                    .push(AssetBinding { cap_type: q.cap_type().to_string(), provider: b.plugin.to_string() });
            }
            row.push(match &result {
                Ok(b) => Ok((PluginKind::ResourceProvider, b.plugin)),
                Err(e) => Err(e.to_string()),
            });
            if let Err(e) = result {
                match failures.iter_mut().find(|(fe, opt, _)| *fe == e && *opt == q.is_optional()) {
                    Some((_, _, who)) => who.push((r.label.to_string(), r.plugin)),
                    None => failures.push((e, q.is_optional(), vec![(r.label.to_string(), r.plugin)])),
                }
            }
        }
        bindings.push(row);
    }
    report.sort();

    // The plugin that provides a capability (providers are looked up by plugin name of any kind).
    // (reversed so that, should two kinds share a name, the first in registry order wins)
    let providers: HashMap<&str, PluginKind> = registry
        .list()
        .iter()
        .rev()
        .filter(|e| e.is_enabled() && !e.descriptor().provides.is_empty())
        .map(|e| (e.name(), e.kind()))
        .collect();
    let provider_kind = |name: &str| providers.get(name).copied();

    // Readiness: a fixpoint over "constructed and every required binding is ready".
    let index: HashMap<(PluginKind, &str), usize> =
        requirers.iter().enumerate().filter_map(|(i, r)| r.plugin.map(|p| (p, i))).collect();
    let mut ready: Vec<bool> =
        requirers.iter().map(|r| r.plugin.is_none_or(|(k, n)| registry.is_available(k, n))).collect();
    loop {
        let mut changed = false;
        for i in 0..requirers.len() {
            if !ready[i] || requirers[i].plugin.is_none() {
                continue;
            }
            let ok = requirers[i].requirements.iter().zip(&bindings[i]).all(|((q, opt), b)| {
                *opt || q.is_optional()
                    || match b {
                        Ok((_, p)) => provider_kind(p).and_then(|k| index.get(&(k, *p))).is_none_or(|&j| ready[j]),
                        Err(_) => false,
                    }
            });
            if !ok {
                ready[i] = false;
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }

    // Which plugins are used: asset providers with assets, enabled hooks, the chosen adapter,
    // and whatever a used requirer is bound to.
    let mut used: BTreeSet<(PluginKind, &str)> = BTreeSet::new();
    for a in assets {
        if let Some(k) = provider_kind_of_asset(registry, &a.provider) {
            used.insert((k, &*a.provider));
        }
    }
    for h in &config.hooks {
        if h.common.enabled {
            used.insert((PluginKind::HookProvider, h.name.name.as_str()));
        }
    }
    for e in registry.list().iter().filter(|e| e.is_enabled() && e.kind() == PluginKind::HookProvider) {
        used.insert((e.kind(), e.name()));
    }
    let mut queue: Vec<usize> =
        requirers.iter().enumerate().filter(|(_, r)| r.plugin.is_none()).map(|(i, _)| i).collect();
    queue.extend(used.iter().filter_map(|p| index.get(p).copied()));
    let mut seen: BTreeSet<usize> = queue.iter().copied().collect();
    while let Some(i) = queue.pop() {
        for b in bindings[i].iter().flatten() {
            let p = b.1;
            if let Some(k) = provider_kind(p) {
                used.insert((k, p));
                if let Some(&j) = index.get(&(k, p))
                    && seen.insert(j)
                {
                    queue.push(j);
                }
            }
        }
    }

    for (e, optional, who) in failures {
        // a plugin's own requirement is an error only if the project uses the plugin
        let matters = who.iter().any(|(_, p)| p.is_none_or(|p| used.contains(&p)));
        let labels: Vec<&str> = who.iter().map(|(l, _)| l.as_str()).collect();
        let by = if labels.len() > 3 {
            format!("{}, and {} more", labels[..3].join(", "), labels.len() - 3)
        } else {
            labels.join(", ")
        };
        let mut d = e.to_diagnostic(&by, optional, prepared);
        if !matters {
            d.severity = crate::diagnostic::Severity::Warning;
            d = d.with_note("so the plugin is not ready; nothing in this project uses it");
        }
        diags.push(d);
    }

    let mut readiness = Vec::new();
    // provider that is not ready → (who is bound to it, whether any of them is used)
    let mut chained: BTreeMap<&str, (Vec<String>, bool)> = BTreeMap::new();
    for (i, r) in requirers.iter().enumerate() {
        let mut missing = Vec::new();
        let mut reasons = Vec::new();
        if let Some((kind, name)) = r.plugin
            && let Some(crate::plugin::PluginStatus::Failed(why)) = registry.get(kind, name).map(PluginEntry::status)
        {
            reasons.push(format!("failed to load: {why}"));
        }
        for ((q, opt), b) in r.requirements.iter().zip(&bindings[i]) {
            if *opt {
                continue;
            }
            match b {
                Err(e) => {
                    missing.push(q.to_string());
                    reasons.push(e.clone());
                }
                Ok((_, p)) => {
                    if let Some(k) = provider_kind(p)
                        && let Some(&j) = index.get(&(k, *p))
                        && !ready[j]
                    {
                        missing.push(q.to_string());
                        let used_here = r.plugin.is_none_or(|p| used.contains(&p));
                        let entry = chained.entry(*p).or_default();
                        entry.0.push(r.label.to_string());
                        entry.1 |= used_here;
                        reasons.push(format!("`{q}` is bound to plugin `{p}`, which is not ready"));
                    }
                }
            }
        }
        if let Some((kind, name)) = r.plugin {
            readiness.push(PluginReadiness {
                name: name.to_string(),
                kind,
                ready: ready[i],
                missing,
                reason: (!reasons.is_empty()).then(|| reasons.join("; ")),
            });
        }
    }
    // asset types and check kinds: ready when every capability they need has a provider
    // (which one is chosen per asset, where they are used)
    for e in registry.list().iter().filter(|e| e.is_enabled() && per_asset(e.kind())) {
        let missing: Vec<String> = e
            .descriptor()
            .metadata
            .requires
            .iter()
            .filter(|r| resolver.providers_of(r).is_empty())
            .map(|r| (*r).to_string())
            .collect();
        readiness.push(PluginReadiness {
            name: e.name().to_string(),
            kind: e.kind(),
            ready: missing.is_empty(),
            reason: (!missing.is_empty()).then(|| format!("no provider offers {}", missing.join(", "))),
            missing,
        });
    }
    for (p, (who, matters)) in chained {
        let d = Diagnostic::error(
            Code::PluginNotReady,
            format!("plugin `{p}` is not ready, so what is bound to it cannot use it: {}", who.join(", ")),
        )
        .with_help(format!("see `phlo plugins info {p}` for what it is missing"));
        diags.push(if matters { d } else { Diagnostic { severity: crate::diagnostic::Severity::Warning, ..d } });
    }
    (report, readiness, asset_bindings)
}

fn provider_kind_of_asset(registry: &Registry, provider: &str) -> Option<PluginKind> {
    registry.get(PluginKind::AssetProvider, provider).map(|_| PluginKind::AssetProvider)
}
