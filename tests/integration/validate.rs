//! `phlo validate` finds what a run would hit, each mistake once, located.

use serde_json::Value;

use crate::cli::{json, phlo_in};

/// A project directory with these files (`phlo.yaml` among them).
pub fn project(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in files {
        let p = dir.path().join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
    dir
}

/// A diagnostic as `(code, line, column, message)`.
pub type Diag = (String, u64, u64, String);

/// `phlo validate --json` in `dir`: its exit code, diagnostics and JSON document.
pub fn validate(dir: &tempfile::TempDir) -> (i32, Vec<Diag>, Value) {
    let run = phlo_in(dir.path(), &["validate", "--json"], &[]);
    let v = json(&run);
    let diags = v["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["code"].as_str().unwrap_or_default().to_string(),
                d["line"].as_u64().unwrap_or(0),
                d["column"].as_u64().unwrap_or(0),
                d["message"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    (run.code, diags, v)
}

#[test]
fn two_assets_writing_one_table_is_an_error_naming_both() {
    let dir = project(&[
        ("data/a.csv", "id\n1\n"),
        (
            "phlo.yaml",
            "assets:\n  raw.orders:\n    type: csv\n    path: data/a.csv\n  raw_orders:\n    type: csv\n    path: data/a.csv\n  \
             other:\n    type: sql\n    sql: SELECT 1 AS x\n    table: RAW_ORDERS\n",
        ),
    ]);
    let (code, diags, _) = validate(&dir);
    assert_eq!(code, 3);
    let collisions: Vec<_> = diags.iter().filter(|d| d.0 == "PHLO-E035").collect();
    assert_eq!(collisions.len(), 2, "{diags:#?}");
    assert_eq!((collisions[0].1, collisions[0].2), (5, 3));
    assert_eq!(collisions[0].3, "assets `raw.orders` and `raw_orders` both write table `raw_orders`");
    assert_eq!(collisions[1].3, "assets `raw.orders` and `other` both write table `RAW_ORDERS`");
}

#[test]
fn an_entry_with_an_error_still_defines_its_key() {
    // `raw.stocks` has a typo inside it; its dependent must not report it missing (nor suggest
    // another asset)
    let dir = project(&[
        ("data/s.csv", "id\n1\n"),
        (
            "phlo.yaml",
            "assets:\n  raw.airports:\n    type: csv\n    path: data/s.csv\n  raw.stocks:\n    type: csv\n    pth: data/s.csv\n  \
             daily:\n    type: sql\n    deps: [raw.stocks]\n    sql: SELECT 1 AS x\n  broken:\n    type: csv\n    \
             path: data/s.csv\n    delimiter: ';;'\n  uses_broken:\n    type: sql\n    deps: [broken]\n    sql: SELECT 1 AS y\n",
        ),
    ]);
    let (code, diags, _) = validate(&dir);
    assert_eq!(code, 2, "{diags:#?}");
    assert!(diags.iter().all(|d| d.0 != "PHLO-E031"), "no follow-on unknown-dependency errors: {diags:#?}");
    assert!(diags.iter().any(|d| d.0 == "PHLO-E003" && d.1 == 7), "{diags:#?}");
    // an unusable value is reported at the value, as a configuration error
    assert!(diags.iter().any(|d| d.0 == "PHLO-E004" && d.1 == 15 && d.3.contains("`delimiter: \";;\"`")), "{diags:#?}");
}
