//! Data versions and staleness: `phlo status`, `stale()` and `phlo run --skip-unchanged` on the
//! quickstart, following changes to a model's SQL, to a source file, and to the data itself.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;

use crate::cli::{json, phlo_in};
use crate::quickstart::copy_quickstart;

/// Asset key → its freshness word, from `phlo status --json`.
fn status(dir: &Path) -> BTreeMap<String, (String, Vec<String>)> {
    let out = phlo_in(dir, &["status", "--json"], &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    json(&out)
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let reasons = r["reasons"].as_array().unwrap().iter().map(|x| x.as_str().unwrap().to_string()).collect();
            (r["key"].as_str().unwrap().to_string(), (r["freshness"].as_str().unwrap().to_string(), reasons))
        })
        .collect()
}

/// Asset key → status word in a run's JSON report.
fn outcomes(report: &Value) -> BTreeMap<String, String> {
    report["assets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| (a["key"].as_str().unwrap().to_string(), a["status"].as_str().unwrap().to_string()))
        .collect()
}

fn run(dir: &Path, args: &[&str]) -> Value {
    let mut all = vec!["run", "--json"];
    all.extend_from_slice(args);
    let out = phlo_in(dir, &all, &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    json(&out)
}

/// The quickstart's assets (an all-features build adds the echo plugin's demo assets).
fn quickstart_keys(s: &BTreeMap<String, (String, Vec<String>)>) -> Vec<&String> {
    s.keys().filter(|k| ["raw.", "staging.", "marts.", "publish."].iter().any(|p| k.starts_with(p))).collect()
}

#[test]
fn status_and_skip_unchanged_follow_code_sources_and_data() {
    let dir = tempfile::tempdir().unwrap();
    copy_quickstart(dir.path());
    let before = status(dir.path());
    for k in quickstart_keys(&before) {
        assert_eq!(before[k], (String::from("stale"), vec![String::from("never materialized")]), "{k}");
    }

    run(dir.path(), &[]);
    let after = status(dir.path());
    for k in quickstart_keys(&after) {
        assert_eq!(after[k].0, "fresh", "{k}: {:?}", after[k]);
    }

    // nothing changed: nothing runs, and the report says why each step did not
    let again = run(dir.path(), &["--skip-unchanged", "--select", "raw.* staging.* marts.* publish.*"]);
    let o = outcomes(&again);
    assert!(o.values().all(|s| s == "skipped_unchanged"), "{o:?}");
    assert_eq!(again["status"], "succeeded");

    // a model's SQL changes: it and what depends on it are stale, with the reason
    let yaml = dir.path().join("phlo.yaml");
    let text = std::fs::read_to_string(&yaml).unwrap();
    let edited = text.replacen("round(sum(amount), 2) AS revenue", "round(sum(amount), 2) AS revenue -- v2", 1);
    assert_ne!(text, edited);
    std::fs::write(&yaml, edited).unwrap();
    let s = status(dir.path());
    assert_eq!(s["marts.daily_revenue"], (String::from("stale"), vec![String::from("code changed")]));
    assert_eq!(
        s["publish.revenue_report"],
        (String::from("stale"), vec![String::from("upstream `marts.daily_revenue` is stale")])
    );
    assert_eq!(s["staging.orders"].0, "fresh");
    // stale() selects exactly those
    let rebuilt = run(dir.path(), &["--select", "stale()"]);
    let o = outcomes(&rebuilt);
    assert_eq!(o.keys().map(String::as_str).collect::<Vec<_>>(), ["marts.daily_revenue", "publish.revenue_report"]);
    assert!(o.values().all(|s| s == "succeeded"), "{o:?}");
    let s = status(dir.path());
    assert!(quickstart_keys(&s).iter().all(|k| s[*k].0 == "fresh"), "{s:?}");
    // nothing stale: nothing runs, and that is no error
    let none = phlo_in(dir.path(), &["run", "--select", "stale() and marts.*"], &[]);
    assert_eq!(none.code, 0, "{}", none.stderr);
    assert!(none.stderr.contains("nothing to run"), "{}", none.stderr);

    // a new customer without orders: the load runs again (its file changed), the staging model
    // runs (its input changed) and writes the same rows, so the marts are not run
    let csv = dir.path().join("data/customers.csv");
    let mut rows = std::fs::read_to_string(&csv).unwrap();
    rows.push_str("9999,New Person,GB,2024-01-01\n");
    std::fs::write(&csv, rows).unwrap();
    let s = status(dir.path());
    assert_eq!(s["raw.customers"], (String::from("stale"), vec![String::from("its source changed")]));
    assert_eq!(s["raw.orders"].0, "fresh");
    let partly = run(dir.path(), &["--skip-unchanged", "--select", "raw.* staging.* marts.* publish.*"]);
    let o = outcomes(&partly);
    assert_eq!(o["raw.customers"], "succeeded");
    assert_eq!(o["staging.orders"], "succeeded");
    for k in
        ["raw.orders", "raw.products", "marts.daily_revenue", "marts.customer_lifetime_value", "publish.revenue_report"]
    {
        assert_eq!(o[k], "skipped_unchanged", "{k}: {o:?}");
    }
    // the store says so, and the history shows the data versions
    let id = partly["run_id"].as_str().unwrap();
    let shown = json(&phlo_in(dir.path(), &["runs", "show", id, "--json"], &[]));
    let step = |k: &str| shown["steps"].as_array().unwrap().iter().find(|s| s["asset_key"] == k).unwrap().clone();
    assert_eq!(step("raw.orders")["status"], "skipped_unchanged");
    assert!(step("raw.customers")["data_version"].as_str().unwrap().starts_with("501r-"), "{shown:#}");
    let history = json(&phlo_in(dir.path(), &["asset", "history", "staging.orders", "--json"], &[]));
    let versions: Vec<&str> =
        history.as_array().unwrap().iter().filter_map(|h| h["step"]["data_version"].as_str()).collect();
    assert!(versions.len() >= 2 && versions[0] == versions[1], "same rows, same version: {history:#}");
}

/// A check of severity `error` that failed makes its asset stale; `stale()` without a run store
/// view (a hook filter) and `--skip-unchanged` are errors where they cannot work.
#[test]
fn a_failed_error_check_makes_the_asset_stale() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("phlo.yaml"),
        "assets:\n  marts.x:\n    type: sql\n    sql: SELECT 1 AS x UNION ALL SELECT NULL\n    checks:\n      - {type: not_null, column: x, blocking: false}\n",
    )
    .unwrap();
    let out = phlo_in(dir.path(), &["run", "--select", "marts.x"], &[]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    let s = status(dir.path());
    assert_eq!(s["marts.x"].0, "stale");
    assert!(s["marts.x"].1[0].starts_with("check `not_null"), "{:?}", s["marts.x"]);
    let skipped = run(dir.path(), &["--select", "marts.x", "--skip-unchanged"]);
    assert_eq!(outcomes(&skipped)["marts.x"], "succeeded", "a failed check is never skipped as unchanged");
    let bad = phlo_in(dir.path(), &["status", "--select", "stale( or"], &[]);
    assert_eq!(bad.code, 2, "{}", bad.stderr);
}
