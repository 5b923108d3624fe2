//! `phlo assets list|graph` and graph validation, end to end.

use std::fmt::Write as _;

use crate::cli::{json, phlo, phlo_in};

#[test]
fn graph_errors_are_all_reported_with_locations() {
    let run = phlo("graph-errors", &["validate"]);
    assert_eq!(run.code, 3, "{}", run.stderr);
    insta::assert_snapshot!("graph-errors", run.stderr);
}

#[test]
fn bad_partitions_are_located() {
    let run = phlo("bad-partitions", &["validate"]);
    assert_eq!(run.code, 3, "{}", run.stderr);
    insta::assert_snapshot!("bad-partitions", run.stderr);
}

#[test]
fn a_cycle_of_50_is_printed_in_full() {
    let dir = tempfile::tempdir().unwrap();
    let mut yaml = String::from("assets:\n");
    for i in 0..50 {
        writeln!(yaml, "  c{i:02}:\n    type: echo\n    deps: [c{:02}]", (i + 49) % 50).unwrap();
    }
    std::fs::write(dir.path().join("phlo.yaml"), yaml).unwrap();
    let run = phlo_in(dir.path(), &["validate"], &[]);
    assert_eq!(run.code, 3, "{}", run.stderr);
    let path: Vec<String> = (0..50).map(|i| format!("c{i:02}")).chain(["c00".to_string()]).collect();
    assert!(run.stderr.contains(&format!("dependency cycle: {}", path.join(" → "))), "{}", run.stderr);
    assert!(run.stderr.contains("phlo.yaml:2:3"), "{}", run.stderr);
}

#[test]
fn assets_list_json_rows() {
    let run = phlo("graph-ok", &["assets", "list", "--json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let rows = json(&run);
    let rows = rows.as_array().unwrap();
    let keys: Vec<&str> = rows.iter().map(|r| r["key"].as_str().unwrap()).collect();
    assert_eq!(
        keys,
        [
            "echo.greetings",
            "echo.numbers",
            "echo.summary",
            "marts.revenue",
            "publish.report",
            "raw.orders",
            "raw.regions",
            "staging.orders",
            "vendor.feed"
        ]
    );
    let orders = rows.iter().find(|r| r["key"] == "raw.orders").unwrap();
    for field in ["key", "group", "kind", "deps", "partitions", "provider"] {
        assert!(orders.get(field).is_some(), "missing {field}");
    }
    assert_eq!(orders["partitions"], "daily from 2024-01-01 until 2024-02-01 (Europe/Paris)");
    assert_eq!(orders["checks"], serde_json::json!(["not_null_id", "row_count"]));
    assert_eq!(orders["provider"], "echo");
    let feed = rows.iter().find(|r| r["key"] == "vendor.feed").unwrap();
    assert_eq!((feed["external"].as_bool(), feed["provider"].as_str()), (Some(true), Some("phlo.yaml")));
}

#[test]
fn assets_list_table_and_selection() {
    let run = phlo("graph-ok", &["assets", "list", "--select", "+marts.revenue and not kind:ingestion"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    insta::assert_snapshot!("assets-list-selected", run.stdout);
}

#[test]
fn assets_graph_formats() {
    let run = phlo("graph-ok", &["assets", "graph", "--select", "@staging.orders"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    insta::assert_snapshot!("assets-graph-mermaid", run.stdout);
    let run = phlo("graph-ok", &["assets", "graph", "--format", "dot", "--select", "raw.orders+1"]);
    insta::assert_snapshot!("assets-graph-dot", run.stdout);
    let run = phlo("graph-ok", &["assets", "graph", "--format", "json", "-s", "2+publish.report"]);
    let v = json(&run);
    assert_eq!(v["nodes"].as_array().unwrap().len(), 3);
    assert_eq!(
        v["edges"],
        serde_json::json!([
            {"from": "marts.revenue", "to": "publish.report", "inferred": false},
            {"from": "staging.orders", "to": "marts.revenue", "inferred": false}
        ])
    );
}

#[test]
fn selection_errors_exit_2_and_point_at_the_column() {
    for (sel, needle) in [
        ("+", "--select:1:1"),
        ("tag:", "--select:1:1"),
        ("raw.* and", "--select:1:10"),
        ("(raw.* or marts.*", "--select:1:1"),
        ("raw.orders)", "--select:1:11"),
        ("kind:batch", "--select:1:6"),
    ] {
        let run = phlo("graph-ok", &["assets", "list", "--select", sel]);
        assert_eq!(run.code, 2, "{sel}: {}", run.stderr);
        assert!(run.stderr.contains("PHLO-E040") && run.stderr.contains(needle), "{sel}: {}", run.stderr);
    }
    let run = phlo("graph-ok", &["assets", "list", "--select", "nothing.*"]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("error[PHLO-E041]: the selection `nothing.*` matches no asset"), "{}", run.stderr);
    let run = phlo("graph-ok", &["assets", "list", "--select", "raw.ordrs"]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("did you mean `raw.orders`?"), "{}", run.stderr);
}
