//! Data versions and staleness: what each materialization was made from, and whether an
//! asset is still what its code and inputs would make it.
//!
//! Every successful step records three versions (the run store keeps the latest per asset
//! and partition as a [`Materialization`]):
//! - its **code version**: the asset's `code_version`, else a fingerprint of its definition
//!   in phlo.yaml (type, settings, deps, partitions) — a changed SQL text is a new version;
//! - the **data versions of its inputs**: each upstream asset's data version at that moment;
//! - its own **data version**: what the table store says of the data written (row count and
//!   a content hash), else one per materialization (`run:<run id>`), so that a downstream
//!   asset sees that it was rebuilt;
//!
//! and, for an asset that reads from outside (a file), the **source version** its type
//! observes (a hash of the files). An asset is *unchanged* when its code version, input
//! versions and source version equal those of its last success — `phlo run
//! --skip-unchanged` leaves it out — and *stale* when one differs, an upstream is stale, a
//! check of its last materialization failed, or it was never materialized (`phlo status`,
//! the selection function `stale()`).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use dashmap::DashMap;
use serde::Serialize;

use crate::graph::AssetGraph;
use crate::hooks::InputVersions;
use crate::spec::AssetSpec;

/// The latest successful materialization of an asset (partition), as the run store keeps it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Materialization {
    /// The run that made it.
    pub run_id: String,
    /// When it ended (RFC 3339).
    pub at: String,
    /// Its code version.
    pub code_version: Option<String>,
    /// Its data version.
    pub data_version: Option<String>,
    /// The version of what it read from outside, when its type observes it.
    pub source_version: Option<String>,
    /// Each upstream asset's data version when it ran.
    pub inputs: BTreeMap<String, String>,
    /// The checks of severity `error` of that materialization that did not pass.
    pub failed_checks: Vec<String>,
}

/// Materializations by asset key, then partition (`None` for an unpartitioned asset).
pub type Stored = HashMap<String, BTreeMap<Option<String>, Materialization>>;

/// The versions a run works with: what the store holds for the assets it may read, and what
/// its own steps produce (shared by its workers, keyed by graph node).
#[derive(Debug, Default)]
pub struct Versions {
    stored: Stored,
    /// What unpartitioned steps produced, one slot per graph node (no lock, no hashing):
    /// a version their store reported, or `None` for the run's own (see [`Versions::produced`]).
    slots: Box<[std::sync::OnceLock<Option<Arc<str>>>]>,
    /// What other steps produced (partitions, or nodes beyond the slots).
    produced: DashMap<(u32, Option<String>), Option<Arc<str>>>,
    /// The graph nodes whose unpartitioned step this process runs, one bit each (see
    /// [`Versions::will_run`]): such a step writes nothing that other threads then read.
    runs_here: std::sync::OnceLock<Box<[u64]>>,
    /// `--skip-unchanged`: steps whose versions equal their last success do not run.
    pub skip_unchanged: bool,
}

/// The inputs of one step.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Inputs {
    /// Upstream key → its data version.
    pub versions: InputVersions,
    /// Upstream assets whose data version is not known (never materialized, external).
    pub unknown: Vec<String>,
}

impl Inputs {
    /// Whether these are exactly the inputs a materialization recorded.
    fn same_as(&self, recorded: &BTreeMap<String, String>) -> bool {
        self.versions.len() == recorded.len()
            && self.versions.iter().zip(recorded).all(|((k, v), (rk, rv))| k.as_str() == rk && &**v == rv.as_str())
    }
}

/// Combines several versions into one (the partitions of an upstream that a step reads whole).
fn combine<'a>(parts: impl Iterator<Item = (&'a str, &'a str)>) -> String {
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    for (p, v) in parts {
        h.update(p.as_bytes());
        h.update(&[0]);
        h.update(v.as_bytes());
        h.update(&[0]);
    }
    format!("parts:{:016x}", h.digest())
}

/// Whether `dep`'s partition `p` is read by a step of `asset` for partition `p` (the two are
/// partitioned alike), rather than all of `dep`'s partitions.
fn alike(dep: &AssetSpec, asset: &AssetSpec) -> bool {
    dep.partitions == asset.partitions
}

impl Versions {
    /// Versions over what the store holds, for a graph of `nodes` assets.
    pub fn new(stored: Stored, skip_unchanged: bool, nodes: usize) -> Self {
        let slots = (0..nodes).map(|_| std::sync::OnceLock::new()).collect();
        Self { stored, slots, produced: DashMap::new(), runs_here: std::sync::OnceLock::new(), skip_unchanged }
    }

    /// The stored materialization of a step, if any.
    pub fn stored(&self, key: &str, partition: Option<&str>) -> Option<&Materialization> {
        let parts = self.stored.get(key)?;
        match partition {
            None => parts.get(&None),
            Some(p) => parts.iter().find(|(k, _)| k.as_deref() == Some(p)).map(|(_, m)| m),
        }
    }

    /// Declares, before any of them starts, the graph nodes whose unpartitioned step this
    /// process runs, and whose dependents it starts only once they succeeded (or were kept
    /// as unchanged). A dependent then reads the run's own data version for such a node
    /// unless [`Versions::produced`] gave it another, so a step that reports none writes
    /// nothing. Once per run: a later call is ignored and returns false.
    pub fn will_run(&self, nodes: impl IntoIterator<Item = u32>) -> bool {
        let mut bits = vec![0u64; self.slots.len().div_ceil(64)].into_boxed_slice();
        for n in nodes {
            if let Some(word) = bits.get_mut(n as usize / 64) {
                *word |= 1 << (n % 64);
            }
        }
        self.runs_here.set(bits).is_ok()
    }

    /// Whether node `asset`'s unpartitioned step runs in this process ([`Versions::will_run`]).
    fn runs_here(&self, asset: u32) -> bool {
        self.runs_here
            .get()
            .and_then(|bits| bits.get(asset as usize / 64))
            .is_some_and(|word| word & (1 << (asset % 64)) != 0)
    }

    /// Records the data version a step of this run (node `asset`) produced, or kept when it
    /// was unchanged: `None` for the run's own version (`run:<run id>`, given to a step whose
    /// store reports none).
    pub fn produced(&self, asset: u32, partition: Option<&str>, version: Option<Arc<str>>) {
        if partition.is_none() && version.is_none() && self.runs_here(asset) {
            return;
        }
        if partition.is_none()
            && let Some(slot) = self.slots.get(asset as usize)
            && slot.set(version.clone()).is_ok()
        {
            return;
        }
        self.produced.insert((asset, partition.map(str::to_string)), version);
    }

    /// This thread's copy of a run's own data version. The steps of a run read each other's
    /// versions on every thread: a copy per thread keeps one reference count from being
    /// fought over by all of them.
    pub fn run_version(run: &str) -> Arc<str> {
        thread_local! {
            static COPY: std::cell::RefCell<Option<Arc<str>>> = const { std::cell::RefCell::new(None) };
        }
        let fresh = || Arc::<str>::from(run);
        COPY.try_with(|c| {
            let mut c = c.borrow_mut();
            match &*c {
                Some(v) if **v == *run => Arc::clone(v),
                _ => Arc::clone(c.insert(fresh())),
            }
        })
        .unwrap_or_else(|_| fresh())
    }

    /// What this run produced for a step, if it ran (or was kept) already; `run` is the
    /// run's own version.
    fn produced_for(&self, asset: u32, partition: Option<&str>, run: &str) -> Option<Arc<str>> {
        let version = |v: &Option<Arc<str>>| v.as_ref().map_or_else(|| Self::run_version(run), Arc::clone);
        if partition.is_none() {
            if let Some(v) = self.slots.get(asset as usize).and_then(|s| s.get()) {
                return Some(version(v));
            }
            if self.runs_here(asset) {
                return Some(Self::run_version(run));
            }
        }
        if self.produced.is_empty() {
            return None;
        }
        self.produced.get(&(asset, partition.map(str::to_string))).map(|v| version(v.value()))
    }

    /// The data version node `dep` has for a step of `asset` in `partition`: produced by this
    /// run (`run` is its own version), else stored; all of its partitions combined when the
    /// step reads them all.
    fn version_of(
        &self,
        graph: &AssetGraph,
        dep: u32,
        asset: &AssetSpec,
        partition: Option<&str>,
        run: &str,
    ) -> Option<Arc<str>> {
        // produced by this run for no partition: `dep` is unpartitioned (its definition, in
        // another thread's cache, need not be read)
        if let Some(v) = self.produced_for(dep, None, run) {
            return Some(v);
        }
        let spec = &graph.node(dep).spec;
        let key = spec.key.as_str();
        let one = |p: Option<&str>| {
            self.produced_for(dep, p, run)
                .or_else(|| self.stored(key, p).and_then(|m| m.data_version.as_deref()).map(Arc::from))
        };
        if !spec.partitions.is_partitioned() {
            return one(None);
        }
        if partition.is_some() && alike(spec, asset) {
            return one(partition);
        }
        let mut all: BTreeMap<String, String> = self
            .stored
            .get(key)
            .into_iter()
            .flatten()
            .filter_map(|(p, m)| Some((p.clone()?, m.data_version.clone()?)))
            .collect();
        for e in &self.produced {
            if e.key().0 == dep
                && let Some(p) = &e.key().1
            {
                all.insert(p.clone(), e.value().as_deref().unwrap_or(run).to_string());
            }
        }
        (!all.is_empty()).then(|| Arc::from(combine(all.iter().map(|(p, v)| (p.as_str(), v.as_str())))))
    }

    /// The data versions of the upstream assets of node `asset`'s step for `partition`, in
    /// run `run` (its own data version, `run:<run id>`).
    pub fn inputs(&self, graph: &AssetGraph, asset: u32, partition: Option<&str>, run: &str) -> Inputs {
        let spec = &graph.node(asset).spec;
        let mut inputs = Inputs { versions: InputVersions::with_capacity(spec.deps.len()), unknown: Vec::new() };
        for d in graph.deps_unordered(asset) {
            match self.version_of(graph, d, spec, partition, run) {
                Some(v) => {
                    inputs.versions.insert(graph.node(d).spec.key.clone(), v);
                }
                None => inputs.unknown.push(graph.key(d).to_string()),
            }
        }
        inputs
    }

    /// The last success of a step when running it again would change nothing: the same code
    /// version, every input at the same data version, the same source version (an asset
    /// with no upstream must have one: otherwise what it reads may have changed), and no
    /// failed check.
    pub fn unchanged(
        &self,
        spec: &AssetSpec,
        partition: Option<&str>,
        inputs: &Inputs,
        source: Option<&str>,
    ) -> Option<&Materialization> {
        let last = self.stored(&spec.key, partition)?;
        let code = spec.code_version.as_deref()?;
        let same = last.code_version.as_deref() == Some(code)
            && inputs.unknown.is_empty()
            && inputs.same_as(&last.inputs)
            && last.failed_checks.is_empty()
            && last.data_version.is_some()
            && (source.is_some() || !inputs.versions.is_empty())
            && last.source_version.as_deref() == source;
        same.then_some(last)
    }
}

/// Whether an asset is what its code and inputs would make it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Freshness {
    /// Its last materialization is up to date.
    Fresh,
    /// It would change if it ran: see the reasons.
    Stale,
    /// phlo cannot tell (an asset without a code version).
    Unknown,
    /// Produced outside phlo.
    External,
}

/// One asset in `phlo status`.
#[derive(Debug, Clone, Serialize)]
pub struct AssetFreshness {
    /// The asset.
    pub key: String,
    /// Fresh, stale, unknown or external.
    pub freshness: Freshness,
    /// Why it is stale (or unknown), most important first.
    pub reasons: Vec<String>,
    /// Its partitions that were materialized (partitioned assets).
    pub partitions: Option<usize>,
    /// Its materialized partitions that are stale, for one of the reasons, in key order
    /// (partitioned assets); `stale()` runs every one of them.
    pub stale_partitions: Option<Vec<String>>,
    /// How many of its partitions at now were never materialized (partitioned assets): they
    /// are missing, not stale — a backfill (`--partition-range`) fills them.
    pub missing_partitions: Option<usize>,
    /// Its latest materialization (the newest partition's, for a partitioned asset).
    pub last: Option<Materialization>,
}

/// Observes an asset's source: its current source version, or why it cannot be read.
pub type Observe<'a> = &'a dyn Fn(&AssetSpec, Option<&str>) -> Option<Result<String, String>>;

/// The freshness of every asset, in topological order (the graph's key order when it has a
/// cycle): compares what the store holds with the project as it is now. A partitioned asset
/// is judged partition by partition — each of its partitions at `now` — and lists the ones
/// that are stale.
pub fn staleness(
    graph: &AssetGraph,
    stored: Stored,
    observe: Observe<'_>,
    now: chrono::DateTime<chrono::Utc>,
) -> Vec<AssetFreshness> {
    let order: Vec<u32> = graph.topological_order().map_or_else(|| (0..graph.len() as u32).collect(), <[u32]>::to_vec);
    let mut state: Vec<Option<Freshness>> = vec![None; graph.len()];
    // the stale partitions of each partitioned asset decided so far
    let mut stale_parts: Vec<Option<std::collections::HashSet<String>>> = vec![None; graph.len()];
    let versions = Versions::new(stored, false, 0);
    let stored = &versions.stored;
    let mut out = Vec::with_capacity(order.len());
    for i in order {
        let spec = &graph.node(i).spec;
        if spec.external {
            state[i as usize] = Some(Freshness::External);
            out.push(AssetFreshness {
                key: spec.key.to_string(),
                freshness: Freshness::External,
                reasons: Vec::new(),
                partitions: None,
                stale_partitions: None,
                missing_partitions: None,
                last: None,
            });
            continue;
        }
        let parts = stored.get(spec.key.as_str());
        let mut reasons: Vec<String> = Vec::new();
        let mut unknown = false;
        let add = |r: String, reasons: &mut Vec<String>| {
            if !reasons.contains(&r) {
                reasons.push(r);
            }
        };
        // why one materialization (of one partition) is stale, added to `reasons`
        let mut judge = |p: Option<&str>, m: &Materialization, reasons: &mut Vec<String>| {
            match (&spec.code_version, &m.code_version) {
                (None, _) => unknown = true,
                (Some(now), Some(then)) if now == then => {}
                _ => add(String::from("code changed"), reasons),
            }
            for name in &m.failed_checks {
                add(format!("check `{name}` failed"), reasons);
            }
            for d in graph.deps_of(i) {
                let dep = &graph.node(d).spec;
                match state[d as usize] {
                    Some(Freshness::External) => continue,
                    Some(Freshness::Stale) => {
                        // a partition read from the same partition upstream: stale with it
                        let own = match (&stale_parts[d as usize], p) {
                            (Some(parts), Some(p)) if alike(dep, spec) => parts.contains(p),
                            _ => true,
                        };
                        if own {
                            add(format!("upstream `{}` is stale", dep.key), reasons);
                            continue;
                        }
                    }
                    _ => {}
                }
                let now = versions.version_of(graph, d, spec, p, "");
                if now.is_none() || m.inputs.get(dep.key.as_str()).map(String::as_str) != now.as_deref() {
                    add(format!("upstream `{}` changed", dep.key), reasons);
                }
            }
            match observe(spec, p) {
                Some(Ok(v)) if m.source_version.as_deref() == Some(v.as_str()) => {}
                Some(Ok(_)) => add(String::from("its source changed"), reasons),
                Some(Err(e)) => add(format!("its source cannot be read: {e}"), reasons),
                None => {}
            }
        };
        let mut stale_keys: Option<Vec<String>> = None;
        let mut missing_keys: Option<usize> = None;
        if spec.partitions.is_partitioned() {
            // every partition at `now` that was materialized is fresh or stale on its own; one
            // never materialized is missing (as Dagster calls it), which a backfill fills
            let keys = spec.partitions.keys(now);
            let mut stale = Vec::new();
            let mut missing = 0usize;
            for k in &keys {
                let Some(m) = parts.and_then(|ps| ps.get(&Some(k.clone()))) else {
                    missing += 1;
                    continue;
                };
                let mut own = Vec::new();
                judge(Some(k), m, &mut own);
                if !own.is_empty() {
                    stale.push(k.clone());
                }
                for r in own {
                    add(r, &mut reasons);
                }
            }
            if missing == keys.len() {
                add(String::from("never materialized"), &mut reasons);
            } else if !stale.is_empty() {
                reasons.insert(0, format!("{} of {} partitions stale", stale.len(), keys.len() - missing));
            }
            stale_parts[i as usize] = Some(stale.iter().cloned().collect());
            stale_keys = Some(stale);
            missing_keys = Some(missing);
        } else {
            match parts.and_then(|ps| ps.get(&None)) {
                None => add(String::from("never materialized"), &mut reasons),
                Some(m) => judge(None, m, &mut reasons),
            }
        }
        let freshness = if !reasons.is_empty() {
            Freshness::Stale
        } else if unknown {
            reasons.push(String::from("no code_version: phlo cannot tell whether its code changed"));
            Freshness::Unknown
        } else {
            Freshness::Fresh
        };
        state[i as usize] = Some(freshness);
        let last = parts.and_then(|p| p.values().max_by(|a, b| a.at.cmp(&b.at))).cloned();
        out.push(AssetFreshness {
            key: spec.key.to_string(),
            freshness,
            reasons,
            partitions: spec.partitions.is_partitioned().then(|| parts.map_or(0, BTreeMap::len)),
            stale_partitions: stale_keys,
            missing_partitions: missing_keys,
            last,
        });
    }
    out
}

/// The fingerprint of an asset's definition, its code version when it declares none.
pub fn fingerprint(parts: &[&[u8]]) -> String {
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    for p in parts {
        h.update(&(p.len() as u64).to_le_bytes());
        h.update(p);
    }
    format!("def:{:016x}", h.digest())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::AssetNode;

    /// `raw.a` → `m.b`, with a stored materialization of `raw.a`.
    fn setup() -> (AssetGraph, Stored) {
        let a = AssetSpec::new("raw.a");
        let mut b = AssetSpec::new("m.b");
        b.deps = vec!["raw.a".into()];
        let (graph, errors) = AssetGraph::build(vec![AssetNode::new(a, "t"), AssetNode::new(b, "t")]);
        assert!(errors.is_empty());
        let mut stored = Stored::new();
        let m = Materialization { data_version: Some(String::from("stored-v")), ..Materialization::default() };
        stored.entry(String::from("raw.a")).or_default().insert(None, m);
        (graph, stored)
    }

    fn input(v: &Versions, graph: &AssetGraph) -> Option<String> {
        let b = graph.index_of("m.b").unwrap();
        v.inputs(graph, b, None, "run:r1").versions.get("raw.a").map(|d| d.to_string())
    }

    #[test]
    fn a_step_run_here_gives_its_dependents_the_runs_version_unless_it_reported_one() {
        let (graph, stored) = setup();
        let a = graph.index_of("raw.a").unwrap();
        // run here, no version of its own: nothing written, the dependents read the run's
        let v = Versions::new(stored.clone(), false, graph.len());
        assert!(v.will_run([a, graph.index_of("m.b").unwrap()]));
        assert!(!v.will_run([a]), "declared once per run");
        v.produced(a, None, None);
        assert_eq!(input(&v, &graph).as_deref(), Some("run:r1"));
        // a version its store reported wins
        let v = Versions::new(stored.clone(), false, graph.len());
        v.will_run([a]);
        v.produced(a, None, Some(Arc::from("table-v")));
        assert_eq!(input(&v, &graph).as_deref(), Some("table-v"));
        // not run here (completed by an earlier attempt, or not selected): what the store holds
        let v = Versions::new(stored.clone(), false, graph.len());
        v.will_run([graph.index_of("m.b").unwrap()]);
        assert_eq!(input(&v, &graph).as_deref(), Some("stored-v"));
        // nothing declared: each step's version is recorded one by one
        let v = Versions::new(stored, false, graph.len());
        assert_eq!(input(&v, &graph).as_deref(), Some("stored-v"));
        v.produced(a, None, None);
        assert_eq!(input(&v, &graph).as_deref(), Some("run:r1"));
    }
}
