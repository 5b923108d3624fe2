//! From a loaded project to what an adapter runs: the hook bus and the run request.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::Project;
use crate::capability::CapabilityMap;
use crate::diagnostic::{Code, Diagnostic, Diagnostics};
use crate::execution::versions::{AssetFreshness, Freshness, Stored, Versions, staleness};
use crate::execution::{
    CancelToken, PartitionRequest, RunOptions, RunRequest, RunResources, RunStore, StoreError, new_run_id,
};
use crate::graph::Selection;
use crate::hooks::{Event, FailurePolicy, HookBus, HookFailure, HookRegistration};
use crate::plugin::{Instance, PluginKind};
use crate::spec::AssetSpec;

/// The priority of the run store's recording hook: before every hook a plugin registers
/// with a priority above -100 (lower runs first).
pub const RUN_STORE_PRIORITY: i32 = -100;

/// Builds the project's bus: every enabled, ready hook provider's registrations, with the
/// overrides of `hooks.<provider>` in phlo.yaml applied.
///
/// # Errors
/// Duplicate hook names, or a selection filter that does not resolve.
pub fn bus_for_project(project: &Project) -> Result<HookBus, Diagnostics> {
    let mut builder = HookBus::builder();
    let mut diags = Diagnostics::new();
    for entry in project.registry.list().iter().filter(|e| e.kind() == PluginKind::HookProvider && e.is_enabled()) {
        let section = project.config.hooks.iter().find(|h| h.name.name == entry.name());
        if section.is_some_and(|s| !s.common.enabled) {
            continue;
        }
        if project.readiness_of(entry.kind(), entry.name()).is_some_and(|r| !r.ready) {
            continue; // reported by the project load
        }
        let Ok(Instance::Hooks(provider)) = project.registry.get_or_create(PluginKind::HookProvider, entry.name())
        else {
            continue; // a failed factory was reported by the project load
        };
        for mut reg in provider.hooks() {
            reg.plugin = entry.name().into();
            if let Some(s) = section {
                if let Some(p) = s.common.priority {
                    reg.priority = p;
                }
                if let Some(p) = s.common.failure_policy {
                    reg.policy = p;
                }
            }
            if let Err(e) = builder.register(reg) {
                diags.push(
                    Diagnostic::error(Code::HookSetup, e.to_string())
                        .with_help("give each hook of a plugin its own name"),
                );
            }
        }
    }
    // the run store records every event first (lower runs first), synchronously: what the
    // hooks saw is what the store holds; an event it cannot record fails the step
    match (project.run_store(), &project.run_store) {
        (Ok(Some(store)), Some(provider)) => {
            let reg =
                HookRegistration::new(provider.as_str(), "record_run", move |e: &Event| -> Result<(), HookFailure> {
                    store.record(e).map_err(Into::into)
                })
                .priority(RUN_STORE_PRIORITY)
                .policy(FailurePolicy::Raise);
            if let Err(e) = builder.register(reg) {
                diags.push(Diagnostic::error(Code::HookSetup, e.to_string()));
            }
        }
        (Err(d), _) => diags.extend(d),
        _ => {}
    }
    if diags.has_errors() {
        return Err(diags);
    }
    builder.freeze(Some(&project.graph)).map_err(|e| {
        Diagnostics::from(
            Diagnostic::error(Code::HookSetup, e.to_string())
                .with_help("fix the hook's selection filter (see `phlo assets list` for the keys)"),
        )
    })
}

impl Project {
    /// The project's run store, served by its provider; `None` when nothing provides
    /// `run_store` (runs are then not recorded).
    ///
    /// # Errors
    /// The provider cannot be created.
    pub fn run_store(&self) -> Result<Option<Arc<dyn RunStore>>, Diagnostics> {
        let Some(provider) = &self.run_store else { return Ok(None) };
        let served = match self.registry.get_or_create(PluginKind::ResourceProvider, provider) {
            Ok(Instance::Resource(object)) => self
                .registry
                .get(PluginKind::ResourceProvider, provider)
                .and_then(|e| e.descriptor().provides.iter().find(|p| p.cap_type == "run_store"))
                .and_then(|p| (p.serve)(&object))
                .and_then(|s| s.get::<dyn RunStore>())
                .ok_or_else(|| format!("plugin `{provider}` does not serve `run_store`")),
            Ok(_) => Err(format!("plugin `{provider}` is not a resource provider")),
            Err(e) => Err(e.to_string()),
        };
        served.map(Some).map_err(|e| {
            Diagnostics::from(
                Diagnostic::error(
                    Code::PluginFailed,
                    format!("the run store `run_store:{provider}` could not be created: {e}"),
                )
                .with_help(format!("check `resources.{provider}` in phlo.yaml")),
            )
        })
    }

    /// Builds a run request: the selection, partitions, every selected asset's capabilities
    /// served by their providers, and the hook bus. The project must have loaded without
    /// errors.
    ///
    /// # Errors
    /// A selection that does not parse or matches nothing (exit 2); a partition that a
    /// selected asset does not have (exit 3); resources that cannot be created; hooks that
    /// cannot be set up.
    pub fn prepare_run(&self, options: &RunOptions) -> Result<RunRequest, Diagnostics> {
        prepare_run(self, options)
    }

    /// The capabilities bound to `key`, served by their providers (created on first use),
    /// and the bindings whose provider could not serve them, with why.
    pub fn capabilities_of(&self, key: &str) -> (CapabilityMap, Vec<(&super::AssetBinding, String)>) {
        let mut map = CapabilityMap::new();
        let mut failures = Vec::new();
        for b in self.bindings.get(key).map(Vec::as_slice).unwrap_or_default() {
            let served = match self.registry.get_or_create(PluginKind::ResourceProvider, &b.provider) {
                Ok(Instance::Resource(object)) => {
                    let entry = self.registry.get(PluginKind::ResourceProvider, &b.provider);
                    entry
                        .and_then(|e| e.descriptor().provides.iter().find(|p| p.cap_type == b.cap_type))
                        .and_then(|p| (p.serve)(&object))
                        .ok_or_else(|| format!("plugin `{}` does not serve `{}`", b.provider, b.cap_type))
                }
                Ok(_) => Err(format!("plugin `{}` is not a resource provider", b.provider)),
                Err(e) => Err(e.to_string()),
            };
            match served {
                Ok(s) => map.insert(s),
                Err(e) => failures.push((b, e)),
            }
        }
        (map, failures)
    }

    /// The freshness of every asset (`phlo status`, `stale()`): the store's latest
    /// materializations compared with the project as it is now (sources observed now).
    ///
    /// # Errors
    /// The store cannot be read.
    pub fn staleness(&self, store: &dyn RunStore, now: DateTime<Utc>) -> Result<Vec<AssetFreshness>, StoreError> {
        let stored = store.materializations(None)?;
        let observe = |spec: &AssetSpec, partition: Option<&str>| spec.observe.as_ref().map(|o| (o.0)(partition));
        Ok(staleness(&self.graph, stored, &observe, now))
    }
}

/// Builds a run request from a loaded project. The project must have loaded without errors.
///
/// # Errors
/// A selection that does not parse or matches nothing (exit 2); a partition that a selected
/// asset does not have, or a partitioned asset without `--partition` (exit 3); resources that
/// cannot be created; hooks that cannot be set up.
fn prepare_run(project: &Project, options: &RunOptions) -> Result<RunRequest, Diagnostics> {
    let graph = &project.graph;
    let selection = match &options.select {
        Some(text) => Some(Selection::parse(text).map_err(|e| Diagnostics::from(e.to_diagnostic(text)))?),
        None => None,
    };
    let uses_stale = selection.as_ref().is_some_and(Selection::uses_stale);
    // the run store, when the run needs what it holds
    let store = match project.run_store()? {
        None if options.skip_unchanged || uses_stale => {
            let what = if uses_stale { "`stale()`" } else { "--skip-unchanged" };
            return Err(Diagnostic::error(
                Code::RunStore,
                format!("{what} needs the run store, and nothing in this build provides `run_store`"),
            )
            .with_help("build with the `sqlite` feature (on by default)")
            .into());
        }
        s => s,
    };
    let store_failed = |e: StoreError| {
        let mut d = Diagnostic::error(Code::RunStore, e.message);
        if let Some(h) = e.help {
            d = d.with_help(h);
        }
        Diagnostics::from(d)
    };
    let now = options.at.unwrap_or_else(Utc::now);
    // `stale()` runs every stale partition of a partitioned asset (unless partitions are given)
    let mut partition_keys: HashMap<u32, Vec<String>> = HashMap::new();
    let selected = match (&selection, &options.select) {
        (Some(sel), Some(text)) => {
            let stale = match (&store, uses_stale) {
                (Some(store), true) => {
                    let fresh = project.staleness(store.as_ref(), now).map_err(store_failed)?;
                    let mut mask = vec![false; graph.len()];
                    for f in fresh.iter().filter(|f| f.freshness == Freshness::Stale) {
                        if let Some(i) = graph.index_of(&f.key) {
                            mask[i as usize] = true;
                            if let (Some(keys), None) = (&f.stale_partitions, &options.partitions) {
                                partition_keys.insert(i, keys.clone());
                            }
                        }
                    }
                    Some(mask)
                }
                _ => None,
            };
            match sel.select_with(graph, stale.as_deref()) {
                Ok(s) => s,
                // nothing stale is good news, not a mistake: nothing to run
                Err(e) if e.empty && uses_stale => {
                    return Err(Diagnostic::warning(
                        e.to_diagnostic(text).code,
                        format!("nothing to run: no asset selected by `{text}` is stale"),
                    )
                    .with_help("`phlo status` shows each asset and why it is fresh or stale")
                    .into());
                }
                Err(e) => return Err(Diagnostics::from(e.to_diagnostic(text))),
            }
        }
        _ => (0..graph.len() as u32).collect(),
    };
    // the stored versions the run reads: upstream assets it does not run, and with
    // --skip-unchanged the ones it does
    let versions = match &store {
        Some(store) => {
            let mut chosen = vec![false; graph.len()];
            for &i in &selected {
                chosen[i as usize] = true;
            }
            // a resume reads the stored versions of the steps an earlier attempt completed
            let completed: std::collections::HashSet<&str> = options.done.iter().map(|(k, _)| k.as_str()).collect();
            let mut need: Vec<String> = Vec::new();
            let mut seen = vec![false; graph.len()];
            for &i in &selected {
                let wanted =
                    graph.deps_of(i).into_iter().filter(|&d| !chosen[d as usize] || completed.contains(graph.key(d)));
                let own = options.skip_unchanged.then_some(i);
                for j in wanted.chain(own) {
                    if !std::mem::replace(&mut seen[j as usize], true) {
                        need.push(graph.key(j).to_string());
                    }
                }
            }
            let stored = if need.is_empty() {
                Stored::default()
            } else {
                store.materializations(Some(&need)).map_err(store_failed)?
            };
            Some(Arc::new(Versions::new(stored, options.skip_unchanged, graph.len())))
        }
        None => None,
    };
    // only the selected assets' own partitions: a stale asset selected for another reason
    // (an ancestor of a stale one, `+stale()`) runs as usual
    partition_keys.retain(|i, keys| !keys.is_empty() && selected.contains(i));
    let mut diags = Diagnostics::new();
    // an asset that cannot run in this environment (a secret not set here) keeps a run that
    // selects it from starting; runs of other assets go on
    for (key, d) in &project.deferred {
        if graph.index_of(key).is_some_and(|i| selected.contains(&i)) {
            diags.push(d.clone());
        }
    }
    if diags.has_errors() {
        return Err(diags);
    }
    // partitions asked for where nothing has them would be silently ignored
    if let Some(p) = &options.partitions
        && !selected.iter().any(|&i| !graph.node(i).spec.external && graph.node(i).spec.partitions.is_partitioned())
    {
        return Err(Diagnostic::error(
            Code::PartitionsUnused,
            format!("partition `{}` was given, but no selected asset is partitioned", p.to_arg()),
        )
        .with_help("drop --partition / --partition-range, or select the partitioned assets it is meant for")
        .into());
    }
    for &i in &selected {
        let spec = &graph.node(i).spec;
        if spec.external || !spec.partitions.is_partitioned() {
            continue;
        }
        let check = match &options.partitions {
            // without --partition a run takes each partitioned asset's latest partition
            None if spec.partitions.latest(now).is_none() => {
                Err(String::from("none of its windows is complete yet; pass --partition KEY or set `end_offset: 1`"))
            }
            None => Ok(()),
            Some(PartitionRequest::Key(k)) => spec.partitions.check_key(k, now).map_err(|e| e.to_string()),
            Some(PartitionRequest::Range(a, b)) => {
                spec.partitions.range(a, b, now).map(drop).map_err(|e| e.to_string())
            }
        };
        if let Err(e) = check {
            diags.push(
                Diagnostic::error(Code::InvalidPartitions, format!("asset `{}`: {e}", spec.key))
                    .with_help(format!("its partitions: {}", spec.partitions)),
            );
        }
    }
    if diags.has_errors() {
        return Err(diags);
    }

    // Capabilities: every asset requirement that resolved, served by its provider.
    let mut resources = RunResources::default();
    for &i in &selected {
        let key = &graph.node(i).spec.key;
        let (map, failures) = project.capabilities_of(key);
        for (b, e) in failures {
            diags.push(
                Diagnostic::error(
                    Code::PluginFailed,
                    format!("`{}:{}` for asset `{key}` could not be created: {e}", b.cap_type, b.provider),
                )
                .with_help(format!(
                    "check `resources.{}` in phlo.yaml (`phlo validate --probe` checks it)",
                    b.provider
                )),
            );
        }
        resources.insert(key, map);
    }
    let bus = match bus_for_project(project) {
        Ok(b) => Some(b),
        Err(d) => {
            diags.extend(d);
            None
        }
    };
    if diags.has_errors() {
        return Err(diags);
    }
    let run_id = options.run_id.clone().unwrap_or_else(new_run_id);
    let seed = options.seed.unwrap_or_else(|| {
        run_id.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3))
    });
    let concurrency = options
        .concurrency
        .or(project.config.executor.concurrency.map(|c| c as usize))
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(4, std::num::NonZero::get))
        .max(1);
    Ok(RunRequest {
        run_id,
        graph: Arc::clone(&project.graph),
        selected,
        selection: options.select.clone(),
        partitions: options.partitions.clone(),
        concurrency,
        tags: options.tags.clone(),
        bus: Arc::new(bus.unwrap_or_else(HookBus::empty)),
        resources: Arc::new(resources),
        cancel: CancelToken::new(),
        seed,
        now,
        attempt: options.attempt,
        done: Arc::new(options.done.clone()),
        partition_keys,
        versions,
    })
}
