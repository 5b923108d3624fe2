//! Data in, data out, exactly: CSV read strictly, on real files and a real SQLite warehouse.
//! Every input either loads exactly or is an error at its place, and nothing is written then.

use std::path::Path;

use crate::cli::{json, phlo_in};

fn project(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (path, text) in files {
        std::fs::write(dir.path().join(path), text).unwrap();
    }
    dir
}

const CSV_ASSET: &str = "assets:\n  raw.a:\n    type: csv\n    path: a.csv\n";

fn table_exists(dir: &Path) -> bool {
    let Ok(c) = rusqlite::Connection::open(dir.join(".phlo/warehouse.db")) else { return false };
    c.query_row("SELECT count(*) FROM sqlite_master WHERE name = 'raw_a'", [], |r| r.get::<_, i64>(0)).unwrap_or(0) > 0
}

/// The error of `raw.a` in a run's JSON report (the run must fail).
fn load_error(dir: &Path) -> String {
    let out = phlo_in(dir, &["run", "--json", "--select", "raw.a"], &[]);
    assert_eq!(out.code, 4, "{}\n{}", out.stdout, out.stderr);
    let report = json(&out);
    let a = report["assets"].as_array().unwrap().iter().find(|a| a["key"] == "raw.a").unwrap().clone();
    a["error"].as_str().unwrap().to_string()
}

/// A quote missing its close swallows the next rows into one value: an error where it
/// opened, never "2 rows, succeeded".
#[test]
fn a_quoted_value_that_swallows_rows_is_an_error_where_it_opened() {
    let dir =
        project(&[("phlo.yaml", CSV_ASSET), ("a.csv", "id,name,x\n1,\"ok\",1.5\n2,\"broken,2.5\n3,\"fine\",3.5\n")]);
    let e = load_error(dir.path());
    assert!(e.starts_with("a.csv:3:3: the quoted value opened here runs over 1 line break(s)"), "{e}");
    assert!(e.contains("a closing quote is probably missing on line 3"), "{e}");
    assert!(!table_exists(dir.path()), "nothing is written");
}

/// Text after a closing quote is an error at that character, not a value glued together.
#[test]
fn text_after_a_closing_quote_is_an_error() {
    let dir = project(&[("phlo.yaml", CSV_ASSET), ("a.csv", "id,name\n1,\"abc\"def\n")]);
    let e = load_error(dir.path());
    assert!(e.starts_with("a.csv:2:8: `d` follows the closing quote of a value (opened at column 3)"), "{e}");
    // a quote written twice inside a quoted value is one quote
    std::fs::write(dir.path().join("a.csv"), "id,name\n1,\"say \"\"hi\"\"\"\n").unwrap();
    let out = phlo_in(dir.path(), &["run", "--select", "raw.a"], &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
}

/// Header names must name the columns: a duplicate or an empty one is an error when the
/// project loads, naming the file.
#[test]
fn duplicate_or_empty_header_names_are_load_errors() {
    for (csv, says) in [
        ("id,name,id\n1,a,2\n", "the header names `id` twice (columns 1 and 3)"),
        ("id,,x\n1,a,2\n", "a.csv:1:2: column 2 of the header has no name"),
    ] {
        let dir = project(&[("phlo.yaml", CSV_ASSET), ("a.csv", csv)]);
        let out = phlo_in(dir.path(), &["validate"], &[]);
        assert_eq!(out.code, 2, "{csv}: {}", out.stderr);
        assert!(out.stderr.contains(says) && out.stderr.contains("phlo.yaml:4:"), "{csv}: {}", out.stderr);
    }
}

/// A file that does not exist is a `validate` error at its path, unless an upstream step
/// writes it (`deps:`), and then the run says so if it is still missing.
#[test]
fn a_missing_input_file_is_a_validate_error() {
    let dir = project(&[("phlo.yaml", CSV_ASSET)]);
    let out = phlo_in(dir.path(), &["validate"], &[]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("`a.csv` cannot be read") && out.stderr.contains("phlo.yaml:4:11"), "{}", out.stderr);
    assert!(out.stderr.contains("list that asset in `deps:`"), "{}", out.stderr);
    let produced = "assets:
  ops.make:
    type: command
    program: sh
    args: ['-c', 'printf \"id\\n1\\n\" > a.csv']
  raw.a:
    type: csv
    path: a.csv
    deps: [ops.make]
";
    std::fs::write(dir.path().join("phlo.yaml"), produced).unwrap();
    assert_eq!(phlo_in(dir.path(), &["validate"], &[]).code, 0);
    let out = phlo_in(dir.path(), &["run"], &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(table_exists(dir.path()));
}

/// SQL that phlo runs for exports, checks and models may only read: an export that would copy
/// the warehouse out of the project or delete rows fails, and nothing is written or deleted.
#[test]
fn exports_and_checks_run_read_only_sql() {
    let yaml = "assets:
  raw.a:
    type: csv
    path: a.csv
  publish.copy:
    type: export
    path: out.csv
    analyze: false
    deps: [raw.a]
    query: \"VACUUM INTO '../copy.db'\"
  publish.gone:
    type: export
    path: gone.csv
    analyze: false
    deps: [raw.a]
    query: DELETE FROM raw_a RETURNING *
";
    let dir = project(&[("phlo.yaml", yaml), ("a.csv", "id\n1\n2\n")]);
    let out = phlo_in(dir.path(), &["run", "--json"], &[]);
    assert_eq!(out.code, 4, "{}", out.stderr);
    let report = json(&out);
    for key in ["publish.copy", "publish.gone"] {
        let a = report["assets"].as_array().unwrap().iter().find(|a| a["key"] == key).unwrap();
        assert_eq!(a["status"], "failed", "{a:#}");
        assert!(a["error"].as_str().unwrap().contains("refused"), "{a:#}");
    }
    assert!(!dir.path().parent().unwrap().join("copy.db").exists(), "nothing copied out of the project");
    let c = rusqlite::Connection::open(dir.path().join(".phlo/warehouse.db")).unwrap();
    let n: i64 = c.query_row("SELECT count(*) FROM raw_a", [], |r| r.get(0)).unwrap();
    assert_eq!(n, 2, "nothing deleted");
    // a check's query must read rows: a statement that writes is an error when the project loads
    let check = "assets:
  raw.a:
    type: csv
    path: a.csv
    checks:
      - {type: sql, query: 'DELETE FROM raw_a'}
";
    std::fs::write(dir.path().join("phlo.yaml"), check).unwrap();
    let out = phlo_in(dir.path(), &["validate"], &[]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("is not a query"), "{}", out.stderr);
}

/// Exports are faithful: a REAL stays a REAL (`7770.0`), NULL and the empty text read back
/// apart (CSV: empty and `""`; JSON: `null` and `""`), bytes are hex in CSV and base64 in JSON.
#[test]
fn exports_keep_reals_nulls_empty_text_and_bytes_apart() {
    let yaml = "assets:
  m.v:
    type: sql
    sql: \"SELECT 7770.0 AS r, 1.5 AS h, NULL AS n, '' AS e, x'6869ff' AS b, 3 AS i, 'a,\\\"b' AS q\"
  publish.csv:
    type: export
    path: out.csv
    table: m_v
  publish.json:
    type: export
    path: out.json
    table: m_v
";
    let dir = project(&[("phlo.yaml", yaml)]);
    let out = phlo_in(dir.path(), &["run"], &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let csv = std::fs::read_to_string(dir.path().join("out.csv")).unwrap();
    assert_eq!(csv, "r,h,n,e,b,i,q\n7770.0,1.5,,\"\",\\x6869ff,3,\"a,\"\"b\"\n");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("out.json")).unwrap()).unwrap();
    assert_eq!(
        json,
        serde_json::json!([{"r": 7770.0, "h": 1.5, "n": null, "e": "", "b": "aGn/", "i": 3, "q": "a,\"b"}])
    );
    let raw = std::fs::read_to_string(dir.path().join("out.json")).unwrap();
    assert!(raw.contains("\"r\": 7770.0"), "{raw}");
}

/// Numbers keep every digit: a decimal a double cannot hold, an integer beyond 64 bits, or an
/// integer beyond 2^53 beside reals makes its column text, stored as written.
#[test]
fn numbers_keep_every_digit() {
    let yaml = "assets:
  raw.c:
    type: csv
    path: c.csv
  raw.j:
    type: jsonl
    path: j.jsonl
";
    let dir = project(&[
        ("phlo.yaml", yaml),
        ("c.csv", "big,ok,mixed\n12345678901234567.5,1.5,1\n1.25,2,2.5\n"),
        (
            "j.jsonl",
            "{\"u\": 18446744073709551615, \"m\": 9007199254740993, \"r\": 1.5, \"i\": 9007199254740993}\n\
             {\"u\": 1, \"m\": 0.5, \"r\": 2, \"i\": 1}\n",
        ),
    ]);
    let out = phlo_in(dir.path(), &["run"], &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let c = rusqlite::Connection::open(dir.path().join(".phlo/warehouse.db")).unwrap();
    let text = |sql: &str| -> (String, String) {
        c.query_row(sql, [], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))).unwrap()
    };
    assert_eq!(
        text("SELECT CAST(big AS TEXT), typeof(big) FROM raw_c LIMIT 1"),
        ("12345678901234567.5".into(), "text".into())
    );
    assert_eq!(text("SELECT CAST(ok AS TEXT), typeof(ok) FROM raw_c LIMIT 1"), ("1.5".into(), "real".into()));
    assert_eq!(
        text("SELECT CAST(u AS TEXT), typeof(u) FROM raw_j ORDER BY rowid LIMIT 1"),
        ("18446744073709551615".into(), "text".into())
    );
    assert_eq!(
        text("SELECT CAST(m AS TEXT), typeof(m) FROM raw_j ORDER BY rowid LIMIT 1"),
        ("9007199254740993".into(), "text".into())
    );
    assert_eq!(
        text("SELECT CAST(i AS TEXT), typeof(i) FROM raw_j ORDER BY rowid LIMIT 1"),
        ("9007199254740993".into(), "integer".into())
    );
    assert_eq!(
        text("SELECT CAST(r AS TEXT), typeof(r) FROM raw_j ORDER BY rowid LIMIT 1"),
        ("1.5".into(), "real".into())
    );
}

/// Keys the selection language cannot name are load errors with a fix; `--partition` on a
/// selection without a partitioned asset is a usage error, never ignored.
#[test]
fn unselectable_keys_and_unused_partitions_are_errors() {
    for key in ["or", "and", "not", "-x"] {
        let yaml = format!("assets:\n  '{key}':\n    type: sql\n    sql: SELECT 1 AS x\n");
        let dir = project(&[("phlo.yaml", &yaml)]);
        let out = phlo_in(dir.path(), &["validate"], &[]);
        assert_eq!(out.code, 2, "{key}: {}", out.stderr);
        assert!(
            out.stderr.contains("is not a valid asset key") && out.stderr.contains("phlo.yaml:2:"),
            "{key}: {}",
            out.stderr
        );
    }
    let dir = project(&[("phlo.yaml", "assets:\n  m.a:\n    type: sql\n    sql: SELECT 1 AS x\n")]);
    let out = phlo_in(dir.path(), &["run", "--select", "m.a", "--partition", "2024-01-01"], &[]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr.contains("PHLO-E043") && out.stderr.contains("no selected asset is partitioned"),
        "{}",
        out.stderr
    );
    let out = phlo_in(dir.path(), &["run", "--select", "m.a", "--partition-range", "a..b"], &[]);
    assert_eq!(out.code, 2, "{}", out.stderr);
}

/// Dependencies inferred from SQL are exact: a CTE name shadows a table only inside the
/// query that defines it, SQLite's own tables are neither dependencies nor errors, and a
/// model reading its own table is a cycle.
#[test]
fn sql_dependencies_follow_scopes_system_tables_and_cycles() {
    let yaml = "assets:
  raw.a:
    type: csv
    path: a.csv
  m.scoped:
    type: sql
    sql: SELECT a.id FROM raw_a a JOIN (WITH raw_a AS (SELECT 1 AS id) SELECT id FROM raw_a) s ON s.id = a.id
  m.system:
    type: sql
    sql: SELECT count(*) AS n FROM sqlite_master
";
    let dir = project(&[("phlo.yaml", yaml), ("a.csv", "id\n1\n")]);
    let graph = json(&phlo_in(dir.path(), &["assets", "graph", "--format", "json"], &[]));
    let edges: Vec<(String, String)> = graph["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["from"].as_str().unwrap().to_string(), e["to"].as_str().unwrap().to_string()))
        .filter(|(_, to)| to.starts_with("m."))
        .collect();
    assert_eq!(edges, [(String::from("raw.a"), String::from("m.scoped"))], "{graph:#}");
    assert_eq!(phlo_in(dir.path(), &["run"], &[]).code, 0);
    let own = format!("{yaml}  m.own:\n    type: sql\n    sql: SELECT * FROM m_own\n");
    std::fs::write(dir.path().join("phlo.yaml"), own).unwrap();
    let out = phlo_in(dir.path(), &["validate"], &[]);
    assert_eq!(out.code, 3, "{}", out.stderr);
    assert!(out.stderr.contains("reads its own table `m_own`: a cycle `m.own → m.own`"), "{}", out.stderr);
    assert!(out.stderr.contains("phlo.yaml:13:"), "{}", out.stderr);
}

/// The type phlo chose for each column is visible in `assets list --json`: read from the
/// warehouse once loaded (a decimal that would lose digits stays text), names only before —
/// and listing creates no warehouse.
#[test]
fn assets_list_shows_the_column_types_chosen() {
    let dir = project(&[
        ("a.csv", "id,amount,code,big\n1,1.5,007,12345678901234567.5\n2,3,008,1\n"),
        ("phlo.yaml", "assets:\n  raw.a:\n    type: csv\n    path: a.csv\n"),
    ]);
    let columns = |dir: &Path| {
        let listed = json(&phlo_in(dir, &["assets", "list", "--json"], &[]));
        let a = listed.as_array().unwrap().iter().find(|a| a["key"] == "raw.a").unwrap().clone();
        a["columns"].clone()
    };
    assert_eq!(
        columns(dir.path()),
        serde_json::json!([
            {"name": "id", "type": null}, {"name": "amount", "type": null},
            {"name": "code", "type": null}, {"name": "big", "type": null}
        ])
    );
    assert!(!dir.path().join(".phlo").exists(), "listing wrote nothing");
    assert_eq!(phlo_in(dir.path(), &["run"], &[]).code, 0);
    assert_eq!(
        columns(dir.path()),
        serde_json::json!([
            {"name": "id", "type": "integer"}, {"name": "amount", "type": "real"},
            {"name": "code", "type": "text"}, {"name": "big", "type": "text"}
        ])
    );
}
