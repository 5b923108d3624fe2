use std::sync::Arc;
use std::time::Duration;

use phlo_core::capability::CapabilityMap;
use phlo_core::config::Node;
use phlo_core::data::{Cell, Column, DataType, QueryEngine, Rows, TableStore};
use phlo_core::diagnostic::SourceFile;
use phlo_core::plugin::{CheckContext, Factory, PluginError, PluginKind, compiled_descriptors};
use phlo_core::spec::{CheckFn, CheckOutcome, CheckSpec, RunContext, Severity, Threshold};
use phlo_plugin_sqlite::Warehouse;

/// Builds a check of `kind` from `config` as the project loader does.
fn build(kind: &str, config: &serde_json::Value) -> Result<CheckFn, PluginError> {
    let d = compiled_descriptors()
        .into_iter()
        .find(|d| d.kind() == PluginKind::QualityCheck && d.name == kind)
        .unwrap_or_else(|| panic!("no check kind `{kind}`"));
    let Factory::Check(build) = d.factory else { unreachable!() };
    let ctx = CheckContext::new("raw.orders", "raw_orders", kind);
    build(&Node::from_json(config), &SourceFile::new("test", ""), &[], &ctx)
}

fn ctx(w: &Arc<Warehouse>) -> RunContext {
    let mut ctx = RunContext::new("r", "raw.orders", None, 1);
    ctx.capabilities = Arc::new(CapabilityMap::new().with::<dyn QueryEngine>(Arc::clone(w) as Arc<dyn QueryEngine>));
    ctx
}

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
    spec.run = Some(build(kind, &config).unwrap_or_else(|e| panic!("{e}")));
    spec.evaluate(&ctx(w))
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
    spec.run = Some(build("not_null", &serde_json::json!({"column": "id"})).unwrap());
    spec.threshold = Threshold::MaxRate(0.25);
    spec.severity = Severity::Warn;
    let r = spec.evaluate(&ctx(&w));
    assert!(r.passed(), "1/5 = 20% is within 25%: {r:?}");
}

#[tokio::test]
async fn a_check_on_a_missing_column_could_not_run() {
    let (_d, w) = setup();
    let r = check(&w, "not_null", serde_json::json!({"column": "nope"})).await;
    let CheckOutcome::CouldNotRun(why) = &r.outcome else { panic!("{r:?}") };
    assert!(why.contains("no such column") && why.contains("nope"), "{why}");
    let r = check(&w, "not_null", serde_json::json!({"column": "id", "table": "missing"})).await;
    assert!(matches!(r.outcome, CheckOutcome::CouldNotRun(_)));
}

/// The message of a config error, flattened.
fn config_error(kind: &str, config: &serde_json::Value) -> String {
    match build(kind, config) {
        Err(PluginError::Config(d)) => d
            .iter()
            .map(|d| format!("{} | {}", d.message, d.help.clone().unwrap_or_default()))
            .collect::<Vec<_>>()
            .join("\n"),
        Err(e) => e.to_string(),
        Ok(_) => panic!("`{kind}` with {config} should not build"),
    }
}

#[test]
fn misspelt_missing_and_mistyped_keys_are_errors_not_passing_checks() {
    let e = config_error("range", &serde_json::json!({"column": "v", "mn": 0, "max": 100}));
    assert!(e.contains("`mn`") && e.contains("did you mean `min`"), "{e}");
    let e = config_error("row_count", &serde_json::json!({"minimum": 100}));
    assert!(e.contains("`minimum`"), "{e}");
    let e = config_error("not_null", &serde_json::json!({}));
    assert!(e.contains("column"), "{e}");
    let e = config_error("range", &serde_json::json!({"column": "v", "min": "zero"}));
    assert!(e.contains("expected a number, found the string `zero`"), "{e}");
    let e = config_error("range", &serde_json::json!({"column": "v"}));
    assert!(e.contains("neither `min` nor `max`"), "{e}");
    let e = config_error("range", &serde_json::json!({"column": "v", "min": 5, "max": 1}));
    assert!(e.contains("greater than"), "{e}");
    let e = config_error("freshness", &serde_json::json!({"column": "at", "max_age": "soon"}));
    assert!(e.contains("not a duration"), "{e}");
    let e = config_error("accepted_values", &serde_json::json!({"column": "s", "values": []}));
    assert!(e.contains("`values` is empty"), "{e}");
}

#[tokio::test]
async fn a_range_over_a_negative_value_fails() {
    let (_d, w) = setup();
    let r = check(&w, "range", serde_json::json!({"column": "amount", "min": 0, "max": 100})).await;
    assert_eq!((r.violations, r.outcome.clone()), (1, CheckOutcome::Failed));
    let r = check(&w, "row_count", serde_json::json!({"min": 100})).await;
    assert_eq!(r.outcome, CheckOutcome::Failed);
    assert_eq!(r.metadata["row_count"], 5);
}
