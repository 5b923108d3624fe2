use std::sync::Arc;

use phlo_core::data::{OnSchemaChange, StopSignal};
use phlo_core::plugin::Registry;

use super::*;

fn rows() -> Rows {
    let mut r = Rows::new(vec![
        Column::new("id", DataType::Integer),
        Column::new("name", DataType::Text),
        Column::new("amount", DataType::Real),
        Column::new("paid", DataType::Boolean),
        Column::new("day", DataType::Date),
    ]);
    r.rows.push(vec![
        Cell::Int(1),
        Cell::Text("ada".into()),
        Cell::Real(9.5),
        Cell::Bool(true),
        Cell::Text("2024-01-01".into()),
    ]);
    r.rows.push(vec![Cell::Int(2), Cell::Null, Cell::Real(1.25), Cell::Bool(false), Cell::Text("2024-01-02".into())]);
    r
}

fn warehouse(dir: &std::path::Path) -> Warehouse {
    Warehouse::new(dir.join("nested/warehouse.db"), Duration::from_secs(1))
}

#[test]
fn replace_describe_query_on_a_real_file() {
    let dir = tempfile::tempdir().unwrap();
    let w = warehouse(dir.path());
    assert_eq!(w.replace("raw.orders", &rows()).unwrap(), 2);
    assert!(dir.path().join("nested/warehouse.db").is_file());
    let cols = w.describe("raw.orders").unwrap().unwrap();
    let types: Vec<DataType> = cols.iter().map(|c| c.data_type).collect();
    assert_eq!(types, [DataType::Integer, DataType::Text, DataType::Real, DataType::Boolean, DataType::Date]);
    let q = w.query("SELECT id, name, paid, amount * 2 AS doubled FROM \"raw.orders\" ORDER BY id").unwrap();
    assert_eq!(q.rows[0], [Cell::Int(1), Cell::Text("ada".into()), Cell::Bool(true), Cell::Real(19.0)]);
    assert_eq!(q.rows[1][1], Cell::Null);
    assert_eq!(q.columns[3].data_type, DataType::Real);
    assert_eq!(w.describe("nope").unwrap(), None);
    // the journal is in WAL mode
    let file = rusqlite::Connection::open(dir.path().join("nested/warehouse.db")).unwrap();
    let mode: String = file.query_row("PRAGMA journal_mode", [], |r| r.get(0)).unwrap();
    assert_eq!(mode, "wal");
}

#[test]
fn replace_is_all_or_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let w = warehouse(dir.path());
    w.replace("t", &rows()).unwrap();
    let mut bad = rows();
    bad.columns[0].nullable = false;
    bad.rows.push(vec![Cell::Null, Cell::Null, Cell::Null, Cell::Null, Cell::Null]);
    let e = w.replace("t", &bad).unwrap_err();
    assert!(e.message.contains("row 3 of `t`") && e.message.contains("NOT NULL"), "{e}");
    // the old table is intact and no staging table is left
    assert_eq!(w.query("SELECT count(*) FROM t").unwrap().rows[0][0], Cell::Int(2));
    let tables = w.query("SELECT name FROM sqlite_master WHERE type = 'table'").unwrap();
    assert_eq!(tables.rows, [vec![Cell::Text("t".into())]]);
}

#[test]
fn append_checks_columns() {
    let dir = tempfile::tempdir().unwrap();
    let w = warehouse(dir.path());
    w.append("t", &rows()).unwrap();
    w.append("t", &rows()).unwrap();
    assert_eq!(w.query("SELECT count(*) FROM t").unwrap().rows[0][0], Cell::Int(4));
    let other = Rows::new(vec![Column::new("x", DataType::Integer)]);
    let e = w.append("t", &other).unwrap_err();
    assert!(e.message.contains("it has columns (id, name, amount, paid, day), the rows have (x)"), "{e}");
}

#[test]
fn sql_errors_carry_sqlites_message() {
    let dir = tempfile::tempdir().unwrap();
    let w = warehouse(dir.path());
    let e = w.query("SELEC 1").unwrap_err();
    assert!(e.message.contains("syntax error"), "{e}");
    let e = w.query("SELECT \"misspelt\" FROM sqlite_master").unwrap_err();
    assert!(e.message.contains("no such column: \"misspelt\""), "{e}");
    let e = w.query("SELECT * FROM missing_table").unwrap_err();
    assert!(e.message.contains("no such table: missing_table"), "{e}");
}

#[test]
fn a_path_that_cannot_be_created_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("blocker"), "a file").unwrap();
    let w = Warehouse::new(dir.path().join("blocker/w.db"), Duration::from_secs(1));
    let e = QueryEngine::probe(&w).unwrap_err();
    assert!(e.message.contains("cannot create the warehouse directory"), "{e}");
}

#[test]
fn the_provider_serves_both_capabilities_from_one_warehouse() {
    let dir = tempfile::tempdir().unwrap();
    let r = Registry::builder()
        .register(phlo_core::descriptor!(resource Warehouse, provides: [dyn TableStore, dyn QueryEngine]))
        .project_dir(dir.path())
        .build()
        .unwrap();
    assert!(!dir.path().join(".phlo").exists(), "nothing is opened before use");
    let store = r.capability::<dyn TableStore>("sqlite").unwrap();
    store.replace("t", &rows()).unwrap();
    let engine = r.capability::<dyn QueryEngine>("sqlite").unwrap();
    assert_eq!(engine.query("SELECT count(*) FROM t").unwrap().rows[0][0], Cell::Int(2));
    r.probe("sqlite").unwrap();
    assert!(dir.path().join(".phlo/warehouse.db").is_file());
}

/// A statement that runs for many seconds: a recursive count to a billion.
const SLOW: &str = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1000000000) \
                    SELECT max(i) AS m FROM n";

#[test]
fn a_stop_signal_interrupts_a_running_statement_and_nothing_changes() {
    let dir = tempfile::tempdir().unwrap();
    let w = Arc::new(warehouse(dir.path()));
    w.replace("t", &rows()).unwrap();
    let flag = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let f = Arc::clone(&flag);
    let stop: StopSignal = Arc::new(move || f.load(std::sync::atomic::Ordering::Relaxed));
    let setter = {
        let flag = Arc::clone(&flag);
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(200));
            flag.store(true, std::sync::atomic::Ordering::Relaxed);
        })
    };
    let t0 = std::time::Instant::now();
    let e = w
        .execute_until(&format!("DROP TABLE t; CREATE TABLE t AS {SLOW};"), &stop)
        .expect_err("the statement is stopped");
    setter.join().unwrap();
    assert!(e.interrupted, "{e}");
    assert!(t0.elapsed() < Duration::from_secs(2), "stopped after {:?}", t0.elapsed());
    // the transaction rolled back: the old table is intact
    assert_eq!(w.query("SELECT count(*) FROM t").unwrap().rows[0][0], Cell::Int(2));
    // and the connection works normally afterwards, without the signal
    assert_eq!(w.query("SELECT 1").unwrap().rows[0][0], Cell::Int(1));
    let e = w.query_until(SLOW, &stop).expect_err("already stopped");
    assert!(e.interrupted);
}

/// Merging upserts by key and adds new columns; the state advances only with a committed
/// write; a table whose rows are not unique by the key is refused with nothing changed; the
/// data version follows the rows, not their order.
#[test]
fn merge_state_and_versions_on_a_real_file() {
    let dir = tempfile::tempdir().unwrap();
    let w = warehouse(dir.path());
    let never: StopSignal = Arc::new(|| false);
    let key = WriteMode::Merge(vec![String::from("id")]);
    let state = |v| Commit { state: Some(("rest:t", v)), step: None };
    assert_eq!(w.write_rows("t", &rows(), &key, &state("c1"), &never).unwrap(), Written::Rows(2));
    let mut more = Rows::new(vec![Column::new("id", DataType::Integer), Column::new("extra", DataType::Text)]);
    more.rows.push(vec![Cell::Int(2), Cell::Text("new".into())]);
    more.rows.push(vec![Cell::Int(3), Cell::Text("x".into())]);
    w.write_rows("t", &more, &key, &state("c2"), &never).unwrap();
    let q = w.query("SELECT id, name, extra FROM t ORDER BY id").unwrap();
    assert_eq!(q.rows.len(), 3);
    assert_eq!(q.rows[1], vec![Cell::Int(2), Cell::Null, Cell::Text("new".into())]);
    assert_eq!(w.state("rest:t").unwrap().as_deref(), Some("c2"));
    // a record without its key: refused, and the state stays
    let mut bad = Rows::new(vec![Column::new("id", DataType::Integer)]);
    bad.rows.push(vec![Cell::Null]);
    assert!(w.write_rows("t", &bad, &key, &state("c3"), &never).is_err());
    assert_eq!(w.state("rest:t").unwrap().as_deref(), Some("c2"));
    // duplicates already in a table: no unique key, nothing changes
    w.append("dup", &rows()).unwrap();
    w.append("dup", &rows()).unwrap();
    let e = w.write_rows("dup", &rows(), &key, &Commit::default(), &never).unwrap_err();
    assert!(e.message.contains("not unique by (id)"), "{}", e.message);
    // the version is the rows', whatever their order
    let mut reversed = rows();
    reversed.rows.reverse();
    w.replace("a", &rows()).unwrap();
    w.replace("b", &reversed).unwrap();
    let (va, vb) = (TableStore::version(&w, "a", None).unwrap(), TableStore::version(&w, "b", None).unwrap());
    assert!(va.as_deref().is_some_and(|v| v.starts_with("2r-")), "{va:?}");
    assert_eq!(va, vb);
    w.append("b", &more).unwrap_err();
    assert_eq!(TableStore::version(&w, "missing", None).unwrap(), None);
}

fn mark(run: &str, attempt: u32) -> StepMark {
    StepMark { run_id: run.into(), asset: "raw.a".into(), partition: None, attempt }
}

/// A run step's write is applied once: a second attempt of the same step (a resume, a retry,
/// another process) writes nothing and is told which attempt committed; another run appends.
#[test]
fn a_step_writes_once_per_run() {
    let dir = tempfile::tempdir().unwrap();
    let w = warehouse(dir.path());
    let never: StopSignal = Arc::new(|| false);
    assert_eq!(TableStore::committed(&w, &mark("r1", 1)).unwrap(), None, "no steps table yet");
    let first = mark("r1", 1);
    let commit = Commit { state: None, step: Some(&first) };
    assert_eq!(w.write_rows("t", &rows(), &WriteMode::Append, &commit, &never).unwrap(), Written::Rows(2));
    let second = mark("r1", 2);
    let again = w.write_rows("t", &rows(), &WriteMode::Append, &Commit { state: None, step: Some(&second) }, &never);
    match again.unwrap() {
        Written::Already(c) => assert_eq!((c.attempt, c.rows), (1, 2)),
        other => panic!("written again: {other:?}"),
    }
    assert_eq!(w.query("SELECT count(*) FROM t").unwrap().rows[0][0], Cell::Int(2), "not appended twice");
    assert_eq!(TableStore::committed(&w, &second).unwrap().map(|c| c.attempt), Some(1));
    let other_run = mark("r2", 1);
    w.write_rows("t", &rows(), &WriteMode::Append, &Commit { state: None, step: Some(&other_run) }, &never).unwrap();
    assert_eq!(w.query("SELECT count(*) FROM t").unwrap().rows[0][0], Cell::Int(4), "another run appends");
    // a write that fails records nothing: the next attempt writes
    let mut bad = Rows::new(vec![Column::new("other", DataType::Integer)]);
    bad.rows.push(vec![Cell::Int(1)]);
    let third = mark("r3", 1);
    assert!(w.write_rows("t", &bad, &WriteMode::Append, &Commit { state: None, step: Some(&third) }, &never).is_err());
    assert_eq!(TableStore::committed(&w, &third).unwrap(), None);
    // a model's step too
    let model = StepMark { asset: "m".into(), ..mark("r1", 1) };
    let into = ModelTarget { step: Some(&model), ..ModelTarget::default() };
    assert_eq!(w.materialize("m", "SELECT 1 AS x", &into, &never).unwrap(), Written::Rows(1));
    let model2 = StepMark { attempt: 2, ..model.clone() };
    let into = ModelTarget { step: Some(&model2), ..ModelTarget::default() };
    assert!(matches!(
        w.materialize("m", "SELECT 1 AS x UNION ALL SELECT 2", &into, &never).unwrap(),
        Written::Already(_)
    ));
    assert_eq!(w.query("SELECT count(*) FROM m").unwrap().rows[0][0], Cell::Int(1));
}

/// Appends match columns by name; partitions of a model too, and a changed column set is an
/// error naming the columns unless `append_new_columns` says to add them.
#[test]
fn columns_are_matched_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let w = warehouse(dir.path());
    let never: StopSignal = Arc::new(|| false);
    let two = |a: &str, b: &str| {
        let mut r = Rows::new(vec![Column::new(a, DataType::Text), Column::new(b, DataType::Text)]);
        r.rows.push(vec![Cell::Text(format!("{a}-value")), Cell::Text(format!("{b}-value"))]);
        r
    };
    w.append("t", &two("id", "name")).unwrap();
    w.append("t", &two("name", "id")).unwrap();
    let q = w.query("SELECT id, name FROM t").unwrap();
    for r in &q.rows {
        assert_eq!(r, &vec![Cell::Text("id-value".into()), Cell::Text("name-value".into())]);
    }
    let part = |key: &'static str, policy| ModelTarget {
        partition: Some(("partition_key", key)),
        step: None,
        on_schema_change: policy,
    };
    w.materialize("p", "SELECT 1 AS id, 'eu-name' AS name", &part("eu", OnSchemaChange::Fail), &never).unwrap();
    w.materialize("p", "SELECT 'us-name' AS name, 2 AS id", &part("us", OnSchemaChange::Fail), &never).unwrap();
    let q = w.query("SELECT partition_key, id, name FROM p ORDER BY id").unwrap();
    assert_eq!(q.rows[1], vec![Cell::Text("us".into()), Cell::Int(2), Cell::Text("us-name".into())]);
    let e =
        w.materialize("p", "SELECT 3 AS id, 'x' AS label", &part("apac", OnSchemaChange::Fail), &never).unwrap_err();
    assert!(e.message.contains("adds `label`") && e.message.contains("lacks `name`"), "{}", e.message);
    assert_eq!(w.query("SELECT count(*) FROM p").unwrap().rows[0][0], Cell::Int(2), "nothing written");
    w.materialize("p", "SELECT 3 AS id, 'x' AS label", &part("apac", OnSchemaChange::AppendNewColumns), &never)
        .unwrap();
    let q = w.query("SELECT id, name, label FROM p WHERE partition_key = 'apac'").unwrap();
    assert_eq!(q.rows, vec![vec![Cell::Int(3), Cell::Null, Cell::Text("x".into())]]);
    let e = w
        .materialize("p", "SELECT 4 AS id, 'k' AS partition_key", &part("eu", OnSchemaChange::Fail), &never)
        .unwrap_err();
    assert!(e.message.contains("partition key"), "{}", e.message);
}

/// Queries (checks, exports) and a model's SELECT may only read: writing, attaching,
/// copying the file or loading an extension is refused by name, and nothing changes.
#[test]
fn queries_may_only_read() {
    let dir = tempfile::tempdir().unwrap();
    let w = warehouse(dir.path());
    w.replace("t", &rows()).unwrap();
    let copy = dir.path().join("copy.db");
    for (sql, says) in [
        (format!("VACUUM INTO '{}'", copy.display()), "refused"),
        (String::from("ATTACH 'other.db' AS o"), "ATTACH of `other.db` is refused"),
        (String::from("DELETE FROM t RETURNING *"), "DELETE from `t` is refused"),
        (String::from("INSERT INTO t (id) VALUES (9) RETURNING id"), "INSERT into `t` is refused"),
        (String::from("CREATE TABLE u AS SELECT 1"), "refused"),
        (String::from("PRAGMA user_version = 3"), "PRAGMA user_version is refused"),
        (String::from("SELECT load_extension('x')"), "the function `load_extension` is refused"),
    ] {
        let e = w.query(&sql).unwrap_err();
        assert!(e.message.contains(says), "{sql}: {}", e.message);
        let e = QueryEngine::validate(&w, &sql).expect_err(&sql);
        assert!(e.message.contains("refused"), "{sql}: {}", e.message);
    }
    assert!(!copy.exists(), "nothing copied");
    assert_eq!(w.query("SELECT count(*) FROM t").unwrap().rows[0][0], Cell::Int(2), "nothing deleted");
    // reading stays possible: CTEs, recursive ones, table-valued functions, pragma functions
    for sql in [
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 3) SELECT count(*) FROM c",
        "SELECT value FROM json_each('[1,2]')",
        "SELECT name FROM pragma_table_info('t')",
        "SELECT count(*) FROM t WHERE name LIKE 'a%'",
    ] {
        w.query(sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
    // and the connection writes as before afterwards
    w.append("t", &rows()).unwrap();
    assert_eq!(w.query("SELECT count(*) FROM t").unwrap().rows[0][0], Cell::Int(4));
}

/// Streams `rows` through a real channel from a producer thread, as a load does.
fn stream(w: &Warehouse, table: &str, rows: &Rows, fail_after: Option<usize>) -> Result<Written, DataError> {
    use phlo_core::data::batches::{BatchBuilder, channel};
    let never: StopSignal = Arc::new(|| false);
    std::thread::scope(|s| {
        let (tx, mut rx) = channel::<String>();
        s.spawn(move || {
            let mut b = BatchBuilder::new(rows.columns.len());
            for (i, r) in rows.rows.iter().enumerate() {
                if Some(i) == fail_after {
                    tx.fail(format!("data.csv:{}:1: broken", i + 2));
                    return;
                }
                b.row().extend(r.iter().cloned());
                if b.is_full() && b.flush(&tx).is_err() {
                    return;
                }
            }
            let _ = b.flush(&tx);
        });
        w.write_batches(table, &rows.columns, &mut rx, &WriteMode::Replace, &Commit::default(), &never)
    })
}

fn many(n: i64) -> Rows {
    let mut r = rows();
    r.rows = (0..n)
        .map(|i| {
            vec![
                Cell::Int(i),
                if i % 7 == 0 { Cell::Null } else { Cell::Text(format!("name {i}")) },
                Cell::Real(i as f64 / 4.0),
                Cell::Bool(i % 2 == 0),
                Cell::Text(format!("2024-01-{:02}", 1 + i % 28)),
            ]
        })
        .collect();
    r
}

#[test]
fn a_streamed_replace_knows_the_version_that_reading_the_table_gives() {
    let dir = tempfile::tempdir().unwrap();
    let w = warehouse(dir.path());
    // more rows than a batch, and a count that is not a multiple of a multi-row insert
    let data = many(10_007);
    let Written::Versioned { rows, version } = stream(&w, "t", &data, None).unwrap() else {
        panic!("a streamed replace of values kept as given knows its version")
    };
    assert_eq!(rows, 10_007);
    assert_eq!(Some(version), TableStore::version(&w, "t", None).unwrap());
    assert_eq!(w.query("SELECT count(*), sum(id) FROM t").unwrap().rows[0], [Cell::Int(10_007), Cell::Int(50_065_021)]);

    // a value SQLite converts (an integer into a REAL column) is not hashed as given: the
    // version is then read from the table
    let mut converted = many(3);
    converted.rows[1][2] = Cell::Int(5);
    assert!(matches!(stream(&w, "u", &converted, None).unwrap(), Written::Rows(3)));
    assert!(numeric_literal(" 12 ") && numeric_literal("-1.5e3") && numeric_literal(".5"));
    assert!(
        !numeric_literal("2024-01-01") && !numeric_literal("0x10") && !numeric_literal("") && !numeric_literal("1e")
    );
}

#[test]
fn a_stream_that_fails_writes_nothing_and_a_bad_row_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let w = warehouse(dir.path());
    stream(&w, "t", &many(5), None).unwrap();
    let before = TableStore::version(&w, "t", None).unwrap();
    let e = stream(&w, "t", &many(20_000), Some(9_000)).unwrap_err();
    assert_eq!(e.message, "data.csv:9002:1: broken");
    assert_eq!(TableStore::version(&w, "t", None).unwrap(), before);
    // a row the table refuses, inside a multi-row insert, is named exactly
    let mut bad = many(1_000);
    bad.columns[0].nullable = false;
    bad.rows[700][0] = Cell::Null;
    let e = stream(&w, "t", &bad, None).unwrap_err();
    assert!(e.message.contains("row 701 of `t`") && e.message.contains("NOT NULL"), "{e}");
    assert_eq!(TableStore::version(&w, "t", None).unwrap(), before);
}
