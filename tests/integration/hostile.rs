//! Hostile input: generated project files and selections — odd values, hostile nesting, bad
//! keys, broken SQL, paths, durations, crons — go through loading and selection. Every one
//! either works or is a diagnostic: never a panic, never an abort. 100,000 project files and
//! selections per run through reading and selection, and 2,500 through the whole project
//! load (`PHLO_HOSTILE_CASES` sets the first; the second is a 40th of it).

use phlo_core::config::{Format, read_str};
use phlo_core::graph::{AssetGraph, AssetNode, Selection};
use phlo_core::project::{LoadOptions, Project};
use phlo_core::spec::AssetSpec;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "0",
            "-1",
            "1",
            "8",
            "1e309",
            "99999999999999999999999",
            "''",
            "~",
            "true",
            "yes",
            "'${HOME}'",
            "'${A:-${B:-x}}'",
            "'${'",
            "'$${x}'",
            "'../x.csv'",
            "/etc/passwd",
            "'1e9h'",
            "'10s'",
            "'999999999999h'",
            "'0 0 30 2 *'",
            "'* * * * *'",
            "'0 2 * * *'",
            "'61 * * * *'",
            "[a, b]",
            "{a: 1}",
            "[]",
            "{}",
            "'SELECT * FROM raw_orders'",
            "'SELECT ('",
            "'SELECT 1 AS x'",
            "'{partition}'",
            "'{partiton}'",
            "'WITH x AS (SELECT 1) SELECT * FROM x'",
            "'SELECT * FROM raw.orders'",
            "data/a.csv",
            "out.json",
            "out.txt",
            "Europe/Paris",
            "Mars/Olympus",
            "{daily: {start: 2024-01-01}}",
            "{static: [eu, us]}",
            "{static: []}",
            "{hourly: {start: 2024-03-31, timezone: Europe/Paris}}",
            "[{type: not_null, column: id}]",
            "[{type: range, column: x, min: 5, max: 1}]",
            "[{type: nope}]",
            "&a [1]",
            "*a",
            "!!binary aGk=",
            "'((((((((((((((((((((a))))))))))))))))))))'",
            "'not not not a'",
            "'a and'",
            "sql",
            "csv",
            "export",
            "command",
            "jsonl",
            "echo",
        ])
        .prop_map(str::to_string),
        "[a-z_.{}()$ -]{0,16}".prop_map(|s| format!("'{}'", s.replace('\'', "''"))),
        (1usize..400).prop_map(|n| format!("'{}'", "(".repeat(n))),
        (1usize..300).prop_map(|n| format!("{}1{}", "[".repeat(n), "]".repeat(n))),
    ]
}

fn key() -> impl Strategy<Value = String> {
    prop::sample::select(vec![
        "type",
        "path",
        "sql",
        "deps",
        "partitions",
        "checks",
        "timeout",
        "retries",
        "table",
        "external",
        "columns",
        "delimiter",
        "quote",
        "null_values",
        "date_format",
        "timestamp_format",
        "header",
        "encoding",
        "query",
        "program",
        "args",
        "cwd",
        "analyze",
        "ignore_partition",
        "group",
        "tags",
        "requires",
        "kind",
        "junk",
        "rows",
    ])
    .prop_map(str::to_string)
}

fn asset_key() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec!["raw.orders", "a", "b", "staging.x", "''", "'../x'", "'a b'", "raw_orders", "'.'"])
            .prop_map(str::to_string),
        (190usize..260).prop_map(|n| "k".repeat(n)),
    ]
}

fn project_file() -> impl Strategy<Value = String> {
    let asset = (asset_key(), prop::collection::vec((key(), value()), 0..6));
    let assets = prop::collection::vec(asset, 0..5);
    let top = prop::collection::vec(
        (prop::sample::select(vec!["executor", "schedules", "paths", "plugins", "hooks", "resources", "nme"]), value()),
        0..3,
    );
    let schedule = prop::option::of((value(), value(), value()));
    (assets, top, schedule).prop_map(|(assets, top, schedule)| {
        let mut y = String::from("assets:\n");
        for (k, fields) in assets {
            y.push_str(&format!("  {k}:\n"));
            if fields.is_empty() {
                y.push_str("    external: true\n");
            }
            for (f, v) in fields {
                y.push_str(&format!("    {f}: {v}\n"));
            }
        }
        for (k, v) in top {
            y.push_str(&format!("{k}: {v}\n"));
        }
        if let Some((cron, select, tz)) = schedule {
            y.push_str(&format!("schedules:\n  s:\n    cron: {cron}\n    select: {select}\n    timezone: {tz}\n"));
        }
        y
    })
}

fn selection() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop::sample::select(vec![
            "(",
            ")",
            "not",
            "and",
            "or",
            "a",
            "b",
            "raw.*",
            "+a",
            "a+",
            "@a",
            "tag:x",
            "tag:x=y",
            "group:",
            "2+a",
            "a+3",
            "roots()",
            "sinks()",
            ",",
            "kind:transform",
            "kind:x",
            "*",
            "+",
            "@",
            "99999999999+a",
        ]),
        0..40,
    )
    .prop_map(|t| t.join(" "))
}

fn cases(default: u32) -> u32 {
    std::env::var("PHLO_HOSTILE_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// 100,000 generated project files through parsing, `${}` expansion and reading every
/// section, and as many selections through parsing and evaluation on a graph.
#[test]
fn generated_configs_and_selections_never_crash() {
    let graph = {
        let nodes = ["a", "b", "raw.orders"]
            .iter()
            .map(|k| AssetNode::new(AssetSpec::new(*k).with_tag("x", "y"), "test"))
            .collect::<Vec<_>>();
        AssetGraph::build(nodes).0
    };
    let lookup = |name: &str| (name == "HOME").then(|| String::from("/home/x"));
    let mut runner = TestRunner::new(Config { cases: cases(100_000), failure_persistence: None, ..Config::default() });
    runner
        .run(&(project_file(), selection()), |(yaml, sel)| {
            let _ = read_str("phlo.yaml", Format::Yaml, &yaml, &lookup, &|_, _, _| false);
            if let Ok(s) = Selection::parse(&sel) {
                let _ = s.select(&graph);
            }
            Ok(())
        })
        .unwrap();
}

/// Generated projects through the whole load — every compiled plugin building its assets,
/// SQL parsed, dependencies inferred, capabilities resolved — and selections on their graph.
#[test]
fn generated_projects_load_or_report() {
    let dir = tempfile::tempdir().unwrap();
    let options = LoadOptions {
        env: Box::new(|name| (name == "HOME").then(|| String::from("/home/x"))),
        ..LoadOptions::default()
    };
    let mut runner =
        TestRunner::new(Config { cases: cases(100_000) / 40, failure_persistence: None, ..Config::default() });
    runner
        .run(&(project_file(), selection()), |(yaml, sel)| {
            std::fs::write(dir.path().join("phlo.yaml"), &yaml).unwrap();
            let loaded = Project::load(dir.path(), &options);
            if let (Ok(project), Ok(s)) = (&loaded, Selection::parse(&sel)) {
                let _ = s.select(&project.graph);
            }
            Ok(())
        })
        .unwrap();
}
