use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use phlo_core::data::{Cell, Column, DataType, QueryEngine, Rows, TableStore};
use phlo_core::plugin::{QualityCheckProvider, Resource};
use phlo_core::spec::{CheckOutcome, CheckSpec, RunContext, Severity, Threshold};
use phlo_plugin_sqlite::Warehouse;

use super::Quality;

fn setup() -> (tempfile::TempDir, Arc<Warehouse>) {
    let dir = tempfile::tempdir().unwrap();
    let w = Arc::new(Warehouse::new(dir.path().join("w.db"), Duration::from_secs(1)));
    let mut rows = Rows::new(vec![
        Column::new("id", DataType::Integer),
        Column::new("status", DataType::Text),
        Column::new("amount", DataType::Real),
        Column::new("at", DataType::Timestamp),
    ]);
    let now = chrono::Utc::now();
    for (i, status, amount) in [(1, "paid", 10.0), (2, "paid", -5.0), (2, "refunded", 3.0), (4, "lost", 7.0)] {
        rows.rows.push(vec![Cell::Int(i), Cell::Text(status.into()), Cell::Real(amount), Cell::Text(now.to_rfc3339())]);
    }
    rows.rows.push(vec![Cell::Null, Cell::Null, Cell::Null, Cell::Null]);
    w.replace("raw_orders", &rows).unwrap();
    (dir, w)
}

async fn check(w: &Arc<Warehouse>, kind: &str, config: serde_json::Value) -> phlo_core::spec::CheckResult {
    let mut spec = CheckSpec::new(kind, kind);
    spec.config = config;
    let mut ctx = RunContext::new("r", "raw.orders", None, 1);
    let mut res: BTreeMap<String, Resource> = BTreeMap::new();
    res.insert("query_engine".into(), Arc::new(Arc::clone(w) as Arc<dyn QueryEngine>));
    ctx.resources = Arc::new(res);
    Quality.run_check(&spec, ctx).await
}

#[tokio::test]
async fn every_kind_counts_violations_with_samples() {
    let (_d, w) = setup();
    let r = check(&w, "not_null", serde_json::json!({"column": "id"})).await;
    assert_eq!((r.violations, r.total, r.outcome.clone()), (1, 5, CheckOutcome::Failed));
    assert_eq!(r.samples.len(), 1);
    let r = check(&w, "unique", serde_json::json!({"column": "id"})).await;
    assert_eq!(r.violations, 2);
    let r = check(&w, "accepted_values", serde_json::json!({"column": "status", "values": ["paid", "refunded"]})).await;
    assert_eq!(r.violations, 1);
    assert_eq!(r.samples[0]["status"], "lost");
    let r = check(&w, "range", serde_json::json!({"column": "amount", "min": 0})).await;
    assert_eq!(r.violations, 1);
    let r = check(&w, "row_count", serde_json::json!({"min": 1, "max": 10})).await;
    assert!(r.passed());
    let r = check(&w, "row_count", serde_json::json!({"min": 100})).await;
    assert!(!r.passed());
    let r = check(&w, "freshness", serde_json::json!({"column": "at", "max_age": "1h"})).await;
    assert!(r.passed(), "{r:?}");
    let r = check(&w, "sql", serde_json::json!({"query": "SELECT * FROM raw_orders WHERE amount > 9"})).await;
    assert_eq!(r.violations, 1);
}

#[tokio::test]
async fn thresholds_and_severity_apply() {
    let (_d, w) = setup();
    let mut spec = CheckSpec::new("ids", "not_null");
    spec.config = serde_json::json!({"column": "id"});
    spec.threshold = Threshold::MaxRate(0.25);
    spec.severity = Severity::Warn;
    let mut ctx = RunContext::new("r", "raw.orders", None, 1);
    let mut res: BTreeMap<String, Resource> = BTreeMap::new();
    res.insert("query_engine".into(), Arc::new(Arc::clone(&w) as Arc<dyn QueryEngine>));
    ctx.resources = Arc::new(res);
    let r = Quality.run_check(&spec, ctx).await;
    assert!(r.passed(), "1/5 = 20% is within 25%: {r:?}");
}

#[tokio::test]
async fn a_check_on_a_missing_column_could_not_run() {
    let (_d, w) = setup();
    let r = check(&w, "not_null", serde_json::json!({"column": "nope"})).await;
    let CheckOutcome::CouldNotRun(why) = &r.outcome else { panic!("{r:?}") };
    assert!(why.contains("no such column") && why.contains("nope"), "{why}");
    let r = check(&w, "range", serde_json::json!({"column": "amount"})).await;
    assert!(matches!(r.outcome, CheckOutcome::CouldNotRun(_)));
    let r = check(&w, "not_null", serde_json::json!({"column": "id", "table": "missing"})).await;
    assert!(matches!(r.outcome, CheckOutcome::CouldNotRun(_)));
}
