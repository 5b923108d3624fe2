use std::collections::BTreeSet;

use proptest::prelude::*;

use super::*;
use crate::spec::AssetKind;

fn node(key: &str, deps: &[&str]) -> AssetNode {
    let mut spec = AssetSpec::new(key);
    for d in deps {
        spec = spec.with_dep(*d);
    }
    AssetNode::new(spec, "test")
}

fn build(nodes: Vec<AssetNode>) -> (AssetGraph, Vec<GraphError>) {
    AssetGraph::build(nodes)
}

fn keys(g: &AssetGraph, idx: &[u32]) -> Vec<String> {
    idx.iter().map(|&i| g.key(i).to_string()).collect()
}

#[test]
fn cycles_of_length_1_2_and_50_are_printed_in_full() {
    let (_, e) = build(vec![node("a", &["a"])]);
    assert_eq!(e, [GraphError::Cycle { path: vec!["a".into(), "a".into()] }]);

    let (_, e) = build(vec![node("a", &["b"]), node("b", &["a"]), node("c", &["a"])]);
    assert_eq!(e[0].to_string(), "dependency cycle: a → b → a");

    let n = 50;
    let nodes: Vec<AssetNode> = (0..n)
        .map(|i| {
            let dep = format!("k{:02}", (i + n - 1) % n);
            node(&format!("k{i:02}"), &[dep.as_str()])
        })
        .collect();
    let (g, e) = build(nodes);
    assert!(g.topological_order().is_none());
    let GraphError::Cycle { path } = &e[0] else { panic!("{e:?}") };
    assert_eq!(path.len(), 51);
    assert_eq!((path[0].as_str(), path[1].as_str(), path[50].as_str()), ("k00", "k01", "k00"));
}

#[test]
fn every_cycle_is_reported() {
    let (_, e) =
        build(vec![node("a", &["b"]), node("b", &["a"]), node("x", &["y"]), node("y", &["x"]), node("z", &[])]);
    assert_eq!(e.len(), 2);
}

#[test]
fn unknown_deps_and_duplicates_are_all_reported() {
    let mut dup = node("raw.orders", &[]);
    dup.provider = "other_plugin".into();
    let (g, e) =
        build(vec![node("raw.orders", &[]), dup, node("staging.orders", &["raw.ordrs", "raw.nothing_like_it"])]);
    assert_eq!(g.len(), 2);
    let text: Vec<String> = e.iter().map(ToString::to_string).collect();
    assert_eq!(
        text,
        [
            "asset `raw.orders` is defined twice: by `test` and by `other_plugin`",
            "asset `staging.orders` (from `test`) depends on `raw.ordrs`, which no provider defines",
            "asset `staging.orders` (from `test`) depends on `raw.nothing_like_it`, which no provider defines",
        ]
    );
    assert_eq!(e[1].to_diagnostic().help.as_deref(), Some("did you mean `raw.orders`?"));
    assert!(e[2].to_diagnostic().help.unwrap().contains("external: true"));
}

#[test]
fn external_assets_satisfy_deps() {
    let ext = AssetNode::new(AssetSpec::new("vendor.feed").external(), "phlo.yaml");
    let (g, e) = build(vec![node("raw.feed", &["vendor.feed"]), ext]);
    assert!(e.is_empty());
    assert_eq!(keys(&g, g.topological_order().unwrap()), ["vendor.feed", "raw.feed"]);
}

#[test]
fn topological_order_is_deterministic_smallest_key_first() {
    let nodes = || vec![node("d", &["b", "c"]), node("c", &["a"]), node("b", &["a"]), node("a", &[]), node("e", &[])];
    let (g, _) = build(nodes());
    assert_eq!(keys(&g, g.topological_order().unwrap()), ["a", "b", "c", "d", "e"]);
    let mut reversed = nodes();
    reversed.reverse();
    let (g2, _) = build(reversed);
    assert_eq!(g.topological_order(), g2.topological_order());
}

fn shop() -> AssetGraph {
    let mut n = vec![
        node("raw.orders", &[]),
        node("raw.customers", &[]),
        node("staging.orders", &["raw.orders"]),
        node("staging.customers", &["raw.customers"]),
        node("marts.revenue", &["staging.orders"]),
        node("marts.ltv", &["staging.orders", "staging.customers"]),
        node("publish.report", &["marts.revenue"]),
    ];
    n[0].spec.kind = AssetKind::Ingestion;
    n[1].spec.kind = AssetKind::Ingestion;
    n[4].spec.group = Some("finance".into());
    n[5].spec.tags.insert("pii".into(), "true".into());
    n[6].spec.kind = AssetKind::Publish;
    build(n).0
}

fn sel(g: &AssetGraph, text: &str) -> Vec<String> {
    match Selection::parse(text).unwrap().select(g) {
        Ok(v) => keys(g, &v),
        Err(e) => vec![format!("error: {e}")],
    }
}

#[test]
fn selection_semantics() {
    let g = shop();
    assert_eq!(sel(&g, "raw.*"), ["raw.customers", "raw.orders"]);
    assert_eq!(sel(&g, "+marts.revenue"), ["marts.revenue", "raw.orders", "staging.orders"]);
    assert_eq!(sel(&g, "1+marts.revenue"), ["marts.revenue", "staging.orders"]);
    assert_eq!(sel(&g, "staging.orders+"), ["marts.ltv", "marts.revenue", "publish.report", "staging.orders"]);
    assert_eq!(sel(&g, "staging.orders+1"), ["marts.ltv", "marts.revenue", "staging.orders"]);
    assert_eq!(
        sel(&g, "@staging.orders"),
        [
            "marts.ltv",
            "marts.revenue",
            "publish.report",
            "raw.customers",
            "raw.orders",
            "staging.customers",
            "staging.orders"
        ]
    );
    assert_eq!(sel(&g, "group:finance"), ["marts.revenue"]);
    assert_eq!(sel(&g, "tag:pii=true"), ["marts.ltv"]);
    assert_eq!(sel(&g, "tag:pii"), ["marts.ltv"]);
    assert_eq!(sel(&g, "kind:publish"), ["publish.report"]);
    assert_eq!(sel(&g, "roots()"), ["raw.customers", "raw.orders"]);
    assert_eq!(sel(&g, "sinks()"), ["marts.ltv", "publish.report"]);
    assert_eq!(sel(&g, "marts.* and not tag:pii"), ["marts.revenue"]);
    assert_eq!(sel(&g, "raw.orders raw.customers"), ["raw.customers", "raw.orders"]);
    assert_eq!(sel(&g, "(raw.* or marts.*) and sinks()"), ["marts.ltv"]);
    assert_eq!(
        sel(&g, "+tag:pii"),
        ["marts.ltv", "raw.customers", "raw.orders", "staging.customers", "staging.orders"]
    );
}

#[test]
fn selections_that_match_nothing_are_errors() {
    let g = shop();
    let e = Selection::parse("nope.*").unwrap().select(&g).unwrap_err();
    assert!(e.empty);
    assert_eq!(e.to_diagnostic("nope.*").code, Code::SelectionEmpty);
    let e = Selection::parse("marts.revenu").unwrap().select(&g).unwrap_err();
    assert_eq!(e.help.as_deref(), Some("did you mean `marts.revenue`?"));
    assert_eq!(e.to_diagnostic("marts.revenu").code, Code::SelectionSyntax);
}

// ---------------------------------------------------------------- properties

/// A random DAG: node i may depend on any j < i.
fn dag() -> impl Strategy<Value = Vec<Vec<usize>>> {
    (1usize..40).prop_flat_map(|n| {
        (0..n)
            .map(|i| {
                proptest::collection::vec(0..i.max(1), 0..4.min(i + 1))
                    .prop_map(move |d| if i == 0 { vec![] } else { d })
            })
            .collect::<Vec<_>>()
    })
}

fn graph_of(deps: &[Vec<usize>], shuffle: u64) -> AssetGraph {
    let mut nodes: Vec<AssetNode> = deps
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let names: Vec<String> = d.iter().map(|j| format!("n{j:03}")).collect();
            node(&format!("n{i:03}"), &names.iter().map(String::as_str).collect::<Vec<_>>())
        })
        .collect();
    let len = nodes.len();
    nodes.rotate_left((shuffle as usize) % len);
    AssetGraph::build(nodes).0
}

/// Ancestors computed independently: a fixpoint over the dep lists.
fn naive_ancestors(deps: &[Vec<usize>], of: usize) -> BTreeSet<usize> {
    let mut set: BTreeSet<usize> = deps[of].iter().copied().collect();
    loop {
        let more: BTreeSet<usize> = set.iter().flat_map(|&a| deps[a].iter().copied()).collect();
        let before = set.len();
        set.extend(more);
        if set.len() == before {
            return set;
        }
    }
}

proptest! {
    #[test]
    fn topological_order_respects_every_edge(deps in dag(), shuffle in any::<u64>()) {
        let g = graph_of(&deps, shuffle);
        let order = g.topological_order().expect("a DAG has an order");
        prop_assert_eq!(order.len(), g.len());
        let mut pos = vec![0; g.len()];
        for (p, &i) in order.iter().enumerate() {
            pos[i as usize] = p;
        }
        for (a, b) in g.edges() {
            prop_assert!(pos[a as usize] < pos[b as usize]);
        }
        // and it does not depend on the order the nodes came in
        let g2 = graph_of(&deps, shuffle.wrapping_add(7));
        prop_assert_eq!(g.topological_order(), g2.topological_order());
    }

    #[test]
    fn plus_key_and_key_plus_are_ancestors_and_descendants(deps in dag(), pick in any::<usize>()) {
        let g = graph_of(&deps, 0);
        let k = pick % deps.len();
        let key = format!("n{k:03}");
        let up: BTreeSet<String> = sel(&g, &format!("+{key}")).into_iter().collect();
        let mut want: BTreeSet<String> = naive_ancestors(&deps, k).into_iter().map(|a| format!("n{a:03}")).collect();
        want.insert(key.clone());
        prop_assert_eq!(up, want);

        let down: BTreeSet<String> = sel(&g, &format!("{key}+")).into_iter().collect();
        let mut want: BTreeSet<String> = (0..deps.len())
            .filter(|&d| naive_ancestors(&deps, d).contains(&k))
            .map(|d| format!("n{d:03}"))
            .collect();
        want.insert(key);
        prop_assert_eq!(down, want);
    }

    #[test]
    fn reported_cycles_are_real(edges in proptest::collection::vec((0usize..12, 0usize..12), 1..30)) {
        let mut deps = vec![Vec::new(); 12];
        for (a, b) in &edges {
            deps[*b].push(*a);
        }
        let g = graph_of(&deps, 0);
        let (_, errors) = AssetGraph::build(g.nodes().to_vec());
        let has_cycle = g.topological_order().is_none();
        let cycles: Vec<&Vec<String>> = errors.iter().filter_map(|e| match e { GraphError::Cycle { path } => Some(path), _ => None }).collect();
        prop_assert_eq!(has_cycle, !cycles.is_empty());
        for path in cycles {
            prop_assert_eq!(path.first(), path.last());
            for w in path.windows(2) {
                let (from, to) = (g.index_of(&w[0]).unwrap(), g.index_of(&w[1]).unwrap());
                prop_assert!(g.dependents_of(from).contains(&to), "{} → {} is not an edge", w[0], w[1]);
            }
        }
    }
}
