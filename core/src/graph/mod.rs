//! The asset graph: every asset of a project and the edges between them.
//!
//! Built from all providers' specs plus declarative assets. Every problem is collected
//! before anything is reported: duplicate keys (naming both providers), deps on unknown
//! assets (unless the dep is declared `external`), and cycles, each printed in full
//! (`a → b → c → a`). Nodes are numbered in key order, so the topological order — the
//! smallest key first among the ready — never depends on how providers were registered.
//!
//! ```
//! use phlo_core::graph::{AssetGraph, AssetNode};
//! use phlo_core::spec::AssetSpec;
//! let (graph, errors) = AssetGraph::build(vec![
//!     AssetNode::new(AssetSpec::new("b").with_dep("a"), "p"),
//!     AssetNode::new(AssetSpec::new("a"), "p"),
//! ]);
//! assert!(errors.is_empty());
//! let order: Vec<&str> = graph.topological_order().unwrap().iter().map(|&i| graph.key(i)).collect();
//! assert_eq!(order, ["a", "b"]);
//! ```

pub mod select;

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::hash::BuildHasher;
use std::sync::Arc;

use hashbrown::HashTable;
use petgraph::Direction;
use petgraph::graph::{DiGraph, NodeIndex};
use rustc_hash::FxBuildHasher;
use serde::Serialize;

pub use select::{SelectError, Selection, glob_match};

use crate::diagnostic::{Code, Diagnostic, did_you_mean};
use crate::spec::AssetSpec;

/// An asset of the project and who defined it.
#[derive(Debug, Clone, Serialize)]
pub struct AssetNode {
    /// The spec.
    pub spec: AssetSpec,
    /// The plugin that defined it (for declarative assets: the plugin offering the type;
    /// `phlo.yaml` for external assets declared there). Shared by all its assets.
    pub provider: Arc<str>,
    /// The asset type, for declarative assets.
    pub asset_type: Option<Arc<str>>,
}

impl AssetNode {
    /// A node for a spec from `provider`.
    pub fn new(spec: AssetSpec, provider: impl Into<Arc<str>>) -> Self {
        Self { spec, provider: provider.into(), asset_type: None }
    }

    /// Where the asset was defined, for messages: `echo` (an asset provider) or
    /// `phlo.yaml (type echo)`.
    pub fn origin(&self) -> String {
        match &self.asset_type {
            Some(t) => format!("phlo.yaml (type {t})"),
            None => self.provider.to_string(),
        }
    }
}

/// A problem with the graph.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GraphError {
    /// Two providers define the same key.
    #[error("asset `{key}` is defined twice: by `{}` and by `{}`", providers[0], providers[1])]
    DuplicateKey {
        /// The key.
        key: String,
        /// Both providers, in key-sort order of definition.
        providers: [String; 2],
    },
    /// A dep on an asset nobody defines.
    #[error("asset `{asset}` (from `{provider}`) depends on `{dep}`, which no provider defines")]
    UnknownDep {
        /// The asset.
        asset: String,
        /// Its provider.
        provider: String,
        /// The missing dep.
        dep: String,
        /// A close existing key.
        suggestion: Option<String>,
    },
    /// A cycle, as the keys along it (the first repeated at the end).
    #[error("dependency cycle: {}", path.join(" → "))]
    Cycle {
        /// `a, b, c, a`.
        path: Vec<String>,
    },
}

impl GraphError {
    /// The diagnostic, with the fix.
    pub fn to_diagnostic(&self) -> Diagnostic {
        match self {
            GraphError::DuplicateKey { .. } => Diagnostic::error(Code::DuplicateAsset, self.to_string())
                .with_help("rename one of them, or disable one provider with `plugins.deny`"),
            GraphError::UnknownDep { dep, suggestion, .. } => {
                let help = match suggestion {
                    Some(s) => format!("did you mean `{s}`?"),
                    None => format!(
                        "define `{dep}`, or declare it produced outside phlo:\n  assets:\n    {dep}:\n      external: true"
                    ),
                };
                Diagnostic::error(Code::UnknownDep, self.to_string()).with_help(help)
            }
            GraphError::Cycle { path } => {
                let help = if path.len() == 2 {
                    format!("an asset cannot depend on itself: remove `{}` from its own deps", path[0])
                } else {
                    format!("remove one of the {} dependencies along the cycle", path.len() - 1)
                };
                Diagnostic::error(Code::Cycle, self.to_string()).with_help(help)
            }
        }
    }
}

/// The asset graph: nodes in key order, edges from a dep to the asset that reads it.
#[derive(Debug, Clone, Default)]
pub struct AssetGraph {
    nodes: Vec<AssetNode>,
    graph: DiGraph<(), (), u32>,
    /// key → node index, hashing keys stored in `nodes` (no second copy of the keys).
    table: HashTable<u32>,
    /// Kahn order, smallest key first among the ready; `None` when there is a cycle.
    order: Option<Vec<u32>>,
}

fn hash_key(key: &str) -> u64 {
    FxBuildHasher.hash_one(key)
}

impl AssetGraph {
    /// Builds the graph and checks it. The graph is returned even when there are errors
    /// (duplicates keep their first definition, unknown deps have no edge).
    pub fn build(nodes: Vec<AssetNode>) -> (AssetGraph, Vec<GraphError>) {
        let mut errors = Vec::new();
        // sort an index by key, then move each node once (a node is large: sorting the nodes
        // themselves moved each of them many times)
        let mut order: Vec<u32> = (0..nodes.len() as u32).collect();
        order.sort_by(|&a, &b| nodes[a as usize].spec.key.cmp(&nodes[b as usize].spec.key));
        let mut slots: Vec<Option<AssetNode>> = nodes.into_iter().map(Some).collect();
        let mut nodes: Vec<AssetNode> =
            order.iter().filter_map(|&i| slots.get_mut(i as usize).and_then(Option::take)).collect();
        drop(slots);
        // duplicates: keep the first, report each extra one with the first's provider
        let mut write = 0;
        for read in 0..nodes.len() {
            if write > 0 && nodes[write - 1].spec.key == nodes[read].spec.key {
                errors.push(GraphError::DuplicateKey {
                    key: nodes[read].spec.key.to_string(),
                    providers: [nodes[write - 1].origin(), nodes[read].origin()],
                });
            } else {
                nodes.swap(write, read);
                write += 1;
            }
        }
        nodes.truncate(write);

        let n = nodes.len();
        let mut table = HashTable::with_capacity(n);
        for (i, node) in nodes.iter().enumerate() {
            table.insert_unique(hash_key(&node.spec.key), i as u32, |&j| hash_key(&nodes[j as usize].spec.key));
        }
        let edges: usize = nodes.iter().map(|n| n.spec.deps.len()).sum();
        let mut graph = DiGraph::<(), (), u32>::with_capacity(n, edges);
        for _ in 0..n {
            graph.add_node(());
        }
        let lookup = |key: &str| table.find(hash_key(key), |&j| nodes[j as usize].spec.key == key).copied();
        let mut seen: Vec<u32> = Vec::new();
        let mut unknown: Vec<(usize, String)> = Vec::new();
        for (i, node) in nodes.iter().enumerate() {
            seen.clear();
            for dep in &node.spec.deps {
                match lookup(dep) {
                    Some(j) if !seen.contains(&j) => {
                        seen.push(j);
                        graph.add_edge(NodeIndex::new(j as usize), NodeIndex::new(i), ());
                    }
                    Some(_) => {}
                    None => unknown.push((i, dep.to_string())),
                }
            }
        }
        for (i, dep) in unknown {
            let suggestion = if n <= 100_000 {
                did_you_mean(&dep, nodes.iter().map(|n| n.spec.key.as_str())).map(str::to_string)
            } else {
                None
            };
            errors.push(GraphError::UnknownDep {
                asset: nodes[i].spec.key.to_string(),
                provider: nodes[i].origin(),
                dep,
                suggestion,
            });
        }

        let mut g = AssetGraph { nodes, graph, table, order: None };
        match g.kahn() {
            Ok(order) => g.order = Some(order),
            Err(()) => errors.extend(g.cycles().into_iter().map(|path| GraphError::Cycle { path })),
        }
        (g, errors)
    }

    fn kahn(&self) -> Result<Vec<u32>, ()> {
        let n = self.nodes.len();
        let mut indegree: Vec<u32> = vec![0; n];
        for e in self.graph.raw_edges() {
            indegree[e.target().index()] += 1;
        }
        let mut ready: BinaryHeap<Reverse<u32>> =
            (0..n as u32).filter(|&i| indegree[i as usize] == 0).map(Reverse).collect();
        let mut order = Vec::with_capacity(n);
        while let Some(Reverse(i)) = ready.pop() {
            order.push(i);
            for next in self.graph.neighbors_directed(NodeIndex::new(i as usize), Direction::Outgoing) {
                let d = &mut indegree[next.index()];
                *d -= 1;
                if *d == 0 {
                    ready.push(Reverse(next.index() as u32));
                }
            }
        }
        if order.len() == n { Ok(order) } else { Err(()) }
    }

    /// Every cycle, one per strongly connected component, as a full path.
    fn cycles(&self) -> Vec<Vec<String>> {
        let mut out = Vec::new();
        for scc in petgraph::algo::kosaraju_scc(&self.graph) {
            let self_loop = scc.len() == 1 && self.graph.contains_edge(scc[0], scc[0]);
            if scc.len() < 2 && !self_loop {
                continue;
            }
            let start = *scc.iter().min().expect("non-empty component");
            let path = if self_loop {
                vec![start, start]
            } else {
                let mut members = vec![false; self.nodes.len()];
                for v in &scc {
                    members[v.index()] = true;
                }
                self.cycle_through(start, &members)
            };
            out.push(path.into_iter().map(|v| self.nodes[v.index()].spec.key.to_string()).collect());
        }
        out.sort();
        out
    }

    /// The shortest path `start → … → start` inside one component (breadth-first).
    fn cycle_through(&self, start: NodeIndex<u32>, members: &[bool]) -> Vec<NodeIndex<u32>> {
        let mut parent: Vec<Option<NodeIndex<u32>>> = vec![None; self.nodes.len()];
        let mut queue = VecDeque::new();
        let mut succ: Vec<NodeIndex<u32>> = self.graph.neighbors_directed(start, Direction::Outgoing).collect();
        succ.sort();
        for s in succ {
            if members[s.index()] && parent[s.index()].is_none() {
                parent[s.index()] = Some(start);
                queue.push_back(s);
            }
        }
        while let Some(v) = queue.pop_front() {
            if v == start {
                break;
            }
            let mut next: Vec<NodeIndex<u32>> = self.graph.neighbors_directed(v, Direction::Outgoing).collect();
            next.sort();
            for w in next {
                if members[w.index()] && parent[w.index()].is_none() {
                    parent[w.index()] = Some(v);
                    queue.push_back(w);
                }
            }
        }
        let mut path = vec![start];
        let mut v = parent[start.index()].expect("a strongly connected component has a cycle through every node");
        while v != start {
            path.push(v);
            v = parent[v.index()].expect("every node on the path has a parent");
        }
        path.push(start);
        path.reverse();
        path
    }

    /// How many assets.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Every node, in key order (node `i` is `nodes()[i]`).
    pub fn nodes(&self) -> &[AssetNode] {
        &self.nodes
    }

    /// Node `i`.
    pub fn node(&self, i: u32) -> &AssetNode {
        &self.nodes[i as usize]
    }

    /// Node `i`'s key.
    pub fn key(&self, i: u32) -> &str {
        &self.nodes[i as usize].spec.key
    }

    /// The node with this key.
    pub fn index_of(&self, key: &str) -> Option<u32> {
        self.table.find(hash_key(key), |&j| self.nodes[j as usize].spec.key == key).copied()
    }

    /// The assets `i` reads (its upstream neighbours), in key order.
    pub fn deps_of(&self, i: u32) -> Vec<u32> {
        self.neighbours(i, Direction::Incoming)
    }

    /// The assets `i` reads, in no particular order (no allocation).
    pub fn deps_unordered(&self, i: u32) -> impl Iterator<Item = u32> + '_ {
        self.graph.neighbors_directed(NodeIndex::new(i as usize), Direction::Incoming).map(|n| n.index() as u32)
    }

    /// The assets that read `i` (its downstream neighbours), in key order.
    pub fn dependents_of(&self, i: u32) -> Vec<u32> {
        self.neighbours(i, Direction::Outgoing)
    }

    fn neighbours(&self, i: u32, dir: Direction) -> Vec<u32> {
        let mut v: Vec<u32> =
            self.graph.neighbors_directed(NodeIndex::new(i as usize), dir).map(|n| n.index() as u32).collect();
        v.sort_unstable();
        v
    }

    /// Every edge as `(dep, asset)`.
    pub fn edges(&self) -> impl Iterator<Item = (u32, u32)> + '_ {
        self.graph.raw_edges().iter().map(|e| (e.source().index() as u32, e.target().index() as u32))
    }

    /// A topological order (smallest key first among the ready), or `None` if there is a cycle.
    pub fn topological_order(&self) -> Option<&[u32]> {
        self.order.as_deref()
    }

    /// Assets with no deps.
    pub fn roots(&self) -> Vec<u32> {
        (0..self.len() as u32)
            .filter(|&i| {
                self.graph.neighbors_directed(NodeIndex::new(i as usize), Direction::Incoming).next().is_none()
            })
            .collect()
    }

    /// Assets nothing depends on.
    pub fn sinks(&self) -> Vec<u32> {
        (0..self.len() as u32)
            .filter(|&i| {
                self.graph.neighbors_directed(NodeIndex::new(i as usize), Direction::Outgoing).next().is_none()
            })
            .collect()
    }

    /// Marks everything reachable from the marked nodes against (`Incoming`: ancestors) or
    /// along (`Outgoing`: descendants) the edges, at most `depth` steps (`None`: any).
    pub(crate) fn expand(&self, seeds: &[u32], dir: Direction, depth: Option<u32>, out: &mut [bool]) {
        let mut frontier: Vec<u32> = seeds.to_vec();
        let mut level = 0;
        let mut visited = vec![false; self.len()];
        for &s in seeds {
            visited[s as usize] = true;
        }
        while !frontier.is_empty() && depth.is_none_or(|d| level < d) {
            let mut next = Vec::new();
            for &v in &frontier {
                for w in self.graph.neighbors_directed(NodeIndex::new(v as usize), dir) {
                    let w = w.index();
                    if !visited[w] {
                        visited[w] = true;
                        out[w] = true;
                        next.push(w as u32);
                    }
                }
            }
            frontier = next;
            level += 1;
        }
    }

    /// All ancestors of `i` (not `i` itself), at most `depth` steps up.
    pub fn ancestors(&self, i: u32, depth: Option<u32>) -> Vec<u32> {
        self.reach(i, Direction::Incoming, depth)
    }

    /// All descendants of `i` (not `i` itself), at most `depth` steps down.
    pub fn descendants(&self, i: u32, depth: Option<u32>) -> Vec<u32> {
        self.reach(i, Direction::Outgoing, depth)
    }

    fn reach(&self, i: u32, dir: Direction, depth: Option<u32>) -> Vec<u32> {
        let mut mask = vec![false; self.len()];
        self.expand(&[i], dir, depth, &mut mask);
        mask.iter().enumerate().filter(|(_, m)| **m).map(|(i, _)| i as u32).collect()
    }
}

#[cfg(test)]
mod tests;
