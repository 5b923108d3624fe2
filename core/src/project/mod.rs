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

use crate::capability::resolver::{ENV_DEFAULTS, parse_env_defaults};
use crate::capability::{ResolutionInputs, ResolutionReport};
use crate::config::{self, Format, ProjectConfig, Spanned};
use crate::diagnostic::{Code, Diagnostic, Diagnostics, SourceFile, did_you_mean};
use crate::graph::AssetGraph;
use crate::plugin::{
    PluginEntry, PluginError, PluginFilter, PluginKind, Registry, RegistryBuilder, compiled_descriptors,
};
use crate::spec::AssetKey;

mod assets;
mod resolve;
mod run;

pub use run::{RUN_STORE_PRIORITY, bus_for_project};

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
    /// The provider of the project's `run_store` (run history), when one resolves.
    pub run_store: Option<String>,
    /// Everything found, sorted.
    pub diagnostics: Diagnostics,
    /// Errors that only matter to a command that uses their asset (a secret not set in this
    /// environment), by asset: `validate` reports them all, `run` those of its selection.
    pub deferred: Vec<(AssetKey, Diagnostic)>,
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
            .allow_outside_project(config.paths.allow_outside_project)
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
        let graph = Arc::new(assets::collect_assets(&config, &registry, dir, options.feature_hints, &mut diags));
        let deferred = assets::deferred(&config, &graph);

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
        let (mut report, readiness, bindings) =
            resolve::resolve_all(&config, &registry, graph.nodes(), &prepared, &mut diags);
        let run_store = resolve::run_store(&registry, &prepared, &mut report, &mut diags);

        diags.sort();
        Ok(Project {
            dir: dir.to_path_buf(),
            config,
            registry,
            graph,
            report,
            bindings,
            readiness,
            run_store,
            diagnostics: diags,
            deferred,
        })
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
