//! Phase 8–9 of loading: every requirement of every plugin and asset resolved once, the
//! report, the per-asset bindings runs use, and plugin readiness (a fixpoint over "constructed
//! and every required binding is ready").

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use super::{AssetBinding, PluginReadiness};
use crate::capability::resolver::PreparedInputs;
use crate::capability::{Requirement, ResolutionReport};
use crate::config::{ProjectConfig, Spanned};
use crate::diagnostic::{Code, Diagnostic, Diagnostics};
use crate::graph::AssetNode;
use crate::plugin::{PluginEntry, PluginKind, Registry};
use crate::spec::AssetKey;

struct Requirer<'a> {
    label: Arc<str>,
    plugin: Option<(PluginKind, &'a str)>,
    requirements: Vec<(Requirement, bool)>,
    overrides: Option<&'a BTreeMap<String, Spanned<String>>>,
}

pub(super) fn resolve_all(
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

/// The project's own requirement: `run_store` (optional), where runs are recorded. Resolved
/// by the same rules as every other (`capabilities.defaults`, the only provider, …) and shown
/// in the resolution report; nothing providing it means runs are not recorded, which `phlo
/// runs` says.
pub(super) fn run_store(
    registry: &Registry,
    prepared: &PreparedInputs,
    report: &mut ResolutionReport,
    diags: &mut Diagnostics,
) -> Option<String> {
    if registry.resolver().providers_of("run_store").is_empty() {
        return None;
    }
    let q = Requirement::of_type("run_store").ok()?.optional(true);
    let result = registry.resolver().resolve(&q, None, prepared);
    report.record(&q, &Arc::from("project (run history)"), &result, prepared);
    report.sort();
    match result {
        Ok(b) => Some(b.plugin.to_string()),
        Err(e) => {
            diags.push(e.to_diagnostic("the project (run history)", false, prepared));
            None
        }
    }
}
