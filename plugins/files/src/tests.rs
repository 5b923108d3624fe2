use std::sync::{Arc, Mutex};
use std::time::Duration;

use phlo_core::capability::CapabilityMap;
use phlo_core::config::{Format, read_str};
use phlo_core::data::{Cell, QueryEngine, TableStore};
use phlo_core::plugin::{AssetTypeContext, Factory, PluginError, PluginKind, compiled_descriptors};
use phlo_core::spec::{MaterializeResult, RunContext, RunError};
use phlo_plugin_sqlite::Warehouse;

struct Env {
    dir: tempfile::TempDir,
    warehouse: Arc<Warehouse>,
    logs: Arc<Mutex<Vec<String>>>,
}

impl Env {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let warehouse = Arc::new(Warehouse::new(dir.path().join("w.db"), Duration::from_secs(1)));
        Self { dir, warehouse, logs: Arc::default() }
    }

    fn file(&self, name: &str, text: &str) {
        let p = self.dir.path().join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    /// A context of a new run each time (a run id writes a step once).
    fn ctx(&self, asset: &str) -> RunContext {
        static RUNS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let run = format!("r{}", RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
        let mut ctx = RunContext::new(run.as_str(), asset, None, 1);
        ctx.capabilities = Arc::new(
            CapabilityMap::new()
                .with::<dyn TableStore>(Arc::clone(&self.warehouse) as Arc<dyn TableStore>)
                .with::<dyn QueryEngine>(Arc::clone(&self.warehouse) as Arc<dyn QueryEngine>),
        );
        let logs = Arc::clone(&self.logs);
        ctx.log_sink = Some(Arc::new(move |_: &RunContext, level: &str, m: &str| {
            logs.lock().unwrap().push(format!("{level}: {m}"));
        }));
        ctx
    }

    /// Builds the asset declared by `yaml` (one entry under `assets:`) and runs it.
    async fn run(&self, yaml: &str) -> Result<MaterializeResult, RunError> {
        let spec = self.build(yaml).unwrap_or_else(|e| panic!("build failed: {e}"));
        let key = spec.key.to_string();
        spec.run.expect("a run function").0.run(self.ctx(&key)).await
    }

    fn build(&self, yaml: &str) -> Result<phlo_core::spec::AssetSpec, PluginError> {
        let (config, diags) = read_str("phlo.yaml", Format::Yaml, yaml, &|_| None, &|_, _, _| false);
        assert!(!diags.has_errors(), "{diags}");
        let config = config.unwrap();
        let decl = &config.assets[0];
        let t = decl.common.asset_type.as_ref().unwrap();
        let d = compiled_descriptors()
            .into_iter()
            .find(|d| d.kind() == PluginKind::AssetType && d.name == t.value)
            .expect("an asset type of this crate");
        let Factory::AssetType { build, .. } = d.factory else { unreachable!("an asset type") };
        let ctx = AssetTypeContext {
            key: decl.key.name.clone(),
            project_dir: self.dir.path().to_path_buf(),
            partitions: decl.partitions.clone(),
            deps: decl.common.deps.iter().map(|d| d.value.clone()).collect(),
            ..AssetTypeContext::default()
        };
        build(&decl.config, &config.source, &ctx)
    }

    fn query(&self, sql: &str) -> Vec<Vec<Cell>> {
        self.warehouse.query(sql).unwrap().rows
    }
}

fn err(r: Result<MaterializeResult, RunError>) -> RunError {
    r.expect_err("the run should fail")
}

#[tokio::test]
async fn csv_infers_types_and_loads_a_table() {
    let env = Env::new();
    env.file(
        "data/orders.csv",
        "id,customer,amount,paid,day\n1,ada,9.5,true,2024-01-01\n2,bob,10,false,2024-01-02\n3,,,,\n",
    );
    let r = env.run("assets:\n  raw.orders:\n    type: csv\n    path: data/orders.csv\n").await.unwrap();
    assert_eq!(r.row_count(), Some(3));
    let cols = env.warehouse.describe("raw_orders").unwrap().unwrap();
    let types: Vec<&str> = cols.iter().map(|c| c.data_type.as_str()).collect();
    assert_eq!(types, ["integer", "text", "real", "boolean", "date"]);
    assert_eq!(env.query("SELECT sum(amount), count(customer) FROM raw_orders")[0], [Cell::Real(19.5), Cell::Int(2)]);
}

#[tokio::test]
async fn csv_declared_types_append_and_a_custom_table() {
    let env = Env::new();
    env.file("a.csv", "id;code\n1;007\n");
    let yaml = "assets:\n  raw.codes:\n    type: csv\n    path: a.csv\n    delimiter: ';'\n    table: codes\n    mode: append\n    columns: {code: text}\n";
    env.run(yaml).await.unwrap();
    env.run(yaml).await.unwrap();
    assert_eq!(env.query("SELECT code FROM codes"), [vec![Cell::Text("007".into())], vec![Cell::Text("007".into())]]);
}

#[tokio::test]
async fn bad_csv_files_name_the_file_line_and_column_and_write_nothing() {
    let env = Env::new();
    env.file("ok.csv", "id,amount\n1,2\n");
    env.run("assets:\n  t:\n    type: csv\n    path: ok.csv\n").await.unwrap();

    env.file("ragged.csv", "id,amount\n1,2\n3\n");
    let e = err(env.run("assets:\n  t:\n    type: csv\n    path: ragged.csv\n").await);
    assert_eq!(e.message, "ragged.csv:3: the row has 1 field(s), the header has 2");
    assert!(!e.retryable);

    env.file("bad_number.csv", "id,amount\n1,2\n2,two\n");
    let e =
        err(env.run("assets:\n  t:\n    type: csv\n    path: bad_number.csv\n    columns: {amount: integer}\n").await);
    assert_eq!(e.message, "bad_number.csv:3:2: `two` is not a valid integer for column `amount`");

    env.file("empty.csv", "");
    let e = err(env.run("assets:\n  t:\n    type: csv\n    path: empty.csv\n").await);
    assert!(e.message.contains("`empty.csv` is empty"), "{}", e.message);

    // a missing file is an error when the project loads, unless an upstream step writes it
    let e = env.build("assets:\n  t:\n    type: csv\n    path: missing.csv\n").unwrap_err();
    assert!(e.to_string().contains("`missing.csv` cannot be read"), "{e}");
    let e = err(env.run("assets:\n  t:\n    type: csv\n    path: missing.csv\n    deps: [up]\n").await);
    assert!(e.message.starts_with("cannot read `missing.csv`"), "{}", e.message);

    // the table written by the good load is untouched
    assert_eq!(env.query("SELECT * FROM t"), [vec![Cell::Int(1), Cell::Int(2)]]);
}

#[tokio::test]
async fn jsonl_loads_objects_and_reports_bad_lines() {
    let env = Env::new();
    env.file("e.jsonl", "{\"id\": 1, \"kind\": \"click\", \"v\": 1.5}\n\n{\"id\": 2, \"kind\": \"view\"}\n");
    let r = env.run("assets:\n  raw.events:\n    type: jsonl\n    path: e.jsonl\n").await.unwrap();
    assert_eq!(r.row_count(), Some(2));
    assert_eq!(
        env.query("SELECT id, kind, v FROM raw_events WHERE id = 2")[0],
        [Cell::Int(2), Cell::Text("view".into()), Cell::Null]
    );
    env.file("bad.jsonl", "{\"id\": 1}\n{\"id\": \n");
    let e = err(env.run("assets:\n  raw.events:\n    type: jsonl\n    path: bad.jsonl\n").await);
    assert!(e.message.starts_with("bad.jsonl:2:"), "{}", e.message);
}

#[tokio::test]
async fn sql_models_materialize_and_report_sqlites_errors() {
    let env = Env::new();
    env.file("o.csv", "id,amount\n1,2\n2,3\n");
    env.run("assets:\n  raw.o:\n    type: csv\n    path: o.csv\n").await.unwrap();
    let r = env
        .run("assets:\n  marts.total:\n    type: sql\n    sql: SELECT sum(amount) AS total FROM raw_o;\n")
        .await
        .unwrap();
    assert_eq!(r.row_count(), Some(1));
    assert_eq!(env.query("SELECT total FROM marts_total")[0], [Cell::Int(5)]);

    // a syntax error is found when the asset is built; with `analyze: false`, the engine says it
    let e = env.build("assets:\n  marts.bad:\n    type: sql\n    sql: SELEC 1\n").unwrap_err();
    assert!(e.to_string().starts_with("the SQL is not valid: "), "{e}");
    let e = err(env.run("assets:\n  marts.bad:\n    type: sql\n    sql: SELEC 1\n    analyze: false\n").await);
    assert!(e.message.contains("the SQL of `marts.bad` failed") && e.message.contains("syntax error"), "{}", e.message);
    let e = err(env.run("assets:\n  marts.bad:\n    type: sql\n    sql: SELECT * FROM nowhere\n").await);
    assert!(e.message.contains("no such table: nowhere"), "{}", e.message);
    // a failed model leaves the previous table in place and no staging table behind
    assert_eq!(env.query("SELECT count(*) FROM sqlite_master WHERE name LIKE '__phlo_new_%'")[0], [Cell::Int(0)]);
}

#[tokio::test]
async fn exports_write_csv_and_json_atomically() {
    let env = Env::new();
    env.file("o.csv", "id,amount\n1,2.5\n2,3\n");
    env.run("assets:\n  raw.o:\n    type: csv\n    path: o.csv\n").await.unwrap();
    env.run("assets:\n  publish.o:\n    type: export\n    path: out/o.csv\n    table: raw_o\n").await.unwrap();
    assert_eq!(std::fs::read_to_string(env.dir.path().join("out/o.csv")).unwrap(), "id,amount\n1,2.5\n2,3.0\n");
    env.run(
        "assets:\n  publish.j:\n    type: export\n    path: out/o.json\n    query: SELECT id FROM raw_o WHERE id > 1\n",
    )
    .await
    .unwrap();
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(env.dir.path().join("out/o.json")).unwrap()).unwrap();
    assert_eq!(v, serde_json::json!([{"id": 2}]));
    // keys keep the query's column order, not the alphabet
    env.run("assets:\n  publish.k:\n    type: export\n    path: out/k.json\n    query: SELECT amount AS zeta, id AS alpha FROM raw_o WHERE id = 1\n")
        .await
        .unwrap();
    let text = std::fs::read_to_string(env.dir.path().join("out/k.json")).unwrap();
    assert!(text.find("zeta").unwrap() < text.find("alpha").unwrap(), "{text}");
    let leftovers: Vec<_> = std::fs::read_dir(env.dir.path().join("out"))
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().contains("phlo-tmp"))
        .collect();
    assert!(leftovers.is_empty());
    assert!(env.build("assets:\n  p:\n    type: export\n    path: out/o.xlsx\n    table: raw_o\n").is_err());
    assert!(env.build("assets:\n  p:\n    type: export\n    path: out/o.csv\n").is_err());
}

#[cfg(unix)]
#[tokio::test]
async fn commands_log_stdout_and_fail_with_the_stderr_tail() {
    let env = Env::new();
    let r = env
        .run("assets:\n  ops.hello:\n    type: command\n    program: sh\n    args: ['-c', 'echo one; echo two; echo \"$GREETING\"']\n    env: {GREETING: hi}\n")
        .await
        .unwrap();
    assert_eq!(r.metadata["stdout_lines"], 3);
    assert_eq!(*env.logs.lock().unwrap(), ["info: one", "info: two", "info: hi"]);
    let e = err(env
        .run("assets:\n  ops.fail:\n    type: command\n    program: sh\n    args: ['-c', 'echo oops >&2; exit 3']\n")
        .await);
    let shown = e.message.strip_prefix("`sh` failed with exit code 3: oops (the whole output is in ").unwrap();
    let shown = shown.strip_suffix(')').unwrap();
    assert!(shown.starts_with(".phlo/logs/") && shown.ends_with("/ops.fail.log"), "{shown}");
    // the whole output, stdout and stderr as they came, is in the step's log
    let log = std::fs::read_to_string(env.dir.path().join(shown)).unwrap();
    assert_eq!(log, "--- phlo: `sh` for ops.fail, attempt 1 ---\noops\n");
    // a long output: the first and last lines as events, a line saying how many were cut
    env.logs.lock().unwrap().clear();
    let r = env
        .run("assets:\n  ops.long:\n    type: command\n    program: sh\n    args: ['-c', 'seq 1 1000; head -c 5000 /dev/zero | tr \"\\\\0\" x']\n")
        .await
        .unwrap();
    assert_eq!(r.metadata["stdout_lines"], 1001);
    let logs = env.logs.lock().unwrap().clone();
    assert_eq!(logs.len(), 20 + 1 + 20, "{logs:?}");
    assert_eq!((logs[0].as_str(), logs[19].as_str()), ("info: 1", "info: 20"));
    assert!(
        logs[20].starts_with("info: … 961 line(s) not shown here; the whole output is in .phlo/logs/"),
        "{}",
        logs[20]
    );
    assert_eq!(logs[39], "info: 1000");
    assert!(logs[40].ends_with(" … [3000 more bytes]") && logs[40].len() < 2_100, "{}", &logs[40][..60]);
    let e = err(env.run("assets:\n  ops.none:\n    type: command\n    program: definitely-not-a-program-phlo\n").await);
    assert!(e.message.starts_with("cannot start `definitely-not-a-program-phlo`"), "{}", e.message);
}

#[tokio::test]
async fn partitioned_sql_models_replace_their_partition_only() {
    let env = Env::new();
    env.file("o.csv", "id,day,amount\n1,2024-01-01,2\n2,2024-01-01,3\n3,2024-01-02,4\n");
    env.run("assets:\n  raw.o:\n    type: csv\n    path: o.csv\n").await.unwrap();
    let spec = env
        .build("assets:\n  daily.total:\n    type: sql\n    partitions:\n      daily: {start: 2024-01-01}\n    sql: SELECT day, sum(amount) AS total FROM raw_o WHERE day = '{partition}' GROUP BY day\n")
        .unwrap();
    let run = spec.run.unwrap();
    for day in ["2024-01-01", "2024-01-02", "2024-01-01"] {
        let mut ctx = env.ctx("daily.total");
        ctx.partition = Some(day.to_string());
        let r = run.0.run(ctx).await.unwrap();
        assert_eq!(r.row_count(), Some(1));
    }
    assert_eq!(
        env.query("SELECT partition_key, total FROM daily_total ORDER BY partition_key"),
        [vec![Cell::Text("2024-01-01".into()), Cell::Int(5)], vec![Cell::Text("2024-01-02".into()), Cell::Int(4)]]
    );
}

#[test]
fn a_long_load_looks_at_its_stop_signal_between_batches() {
    let env = Env::new();
    let mut text = String::from("id,v\n");
    for i in 0..20_000 {
        text.push_str(&format!("{i},{}\n", i * 2));
    }
    env.file("big.csv", &text);
    let path = env.dir.path().join("big.csv");
    let all = crate::read_csv_until(&path, "big.csv", &crate::CsvFormat::default(), &|| false).unwrap();
    assert_eq!(all.len(), 20_000);
    let e = crate::read_csv_until(&path, "big.csv", &crate::CsvFormat::default(), &|| true).unwrap_err();
    assert_eq!(e.message, "the load of `big.csv` was stopped");
}

fn csv_yaml(path: &str, extra: &str) -> String {
    format!("assets:\n  raw.t:\n    type: csv\n    path: {path}\n{extra}")
}

#[tokio::test]
async fn an_unterminated_quote_is_an_error_at_the_quote_and_nothing_is_written() {
    let env = Env::new();
    env.file("good.csv", "id,note\n1,a\n");
    env.run(&csv_yaml("good.csv", "    table: t\n")).await.unwrap();
    // the quote in line 3 swallows the rest of the file into one value: 1 row instead of 4
    env.file("bad.csv", "id,note\n1,a\n2,\"oops\n3,c\n4,d\n5,e\n");
    let e = err(env.run(&csv_yaml("bad.csv", "    table: t\n")).await);
    assert!(e.message.starts_with("bad.csv:3:3: this quote is never closed"), "{}", e.message);
    assert_eq!(env.query("SELECT count(*) FROM t")[0], [Cell::Int(1)], "the table keeps its rows");
    // in the first column the record comes up short: still the quote is named
    env.file("first.csv", "id,note\n1,a\n\"2,b\n3,c\n");
    let e = err(env.run(&csv_yaml("first.csv", "    table: t\n")).await);
    assert!(e.message.starts_with("first.csv:3:1: this quote is never closed"), "{}", e.message);
    // quoted values over several lines, and quotes written twice, are fine
    env.file("multi.csv", "id,note\n1,\"two\nlines\"\n2,\"say \"\"hi\"\"\"\n");
    env.run(&csv_yaml("multi.csv", "    table: t\n")).await.unwrap();
    assert_eq!(
        env.query("SELECT note FROM t ORDER BY id"),
        [vec![Cell::Text("two\nlines".into())], vec![Cell::Text("say \"hi\"".into())]]
    );
}

#[tokio::test]
async fn codes_phone_numbers_and_long_digit_strings_stay_text_and_na_is_null() {
    let env = Env::new();
    env.file(
        "c.csv",
        "zip,phone,card,amount,score\n00123,+33612345678,12345678901234567890,1.5,NA\n10001,+14155550100,98765432109876543210,NA,3\n",
    );
    env.run(&csv_yaml("c.csv", "")).await.unwrap();
    let types: Vec<String> =
        env.warehouse.describe("raw_t").unwrap().unwrap().iter().map(|c| c.data_type.as_str().to_string()).collect();
    assert_eq!(types, ["text", "text", "text", "real", "integer"]);
    assert_eq!(
        env.query("SELECT zip, phone, card, amount, score FROM raw_t ORDER BY zip")[0],
        [
            Cell::Text("00123".into()),
            Cell::Text("+33612345678".into()),
            Cell::Text("12345678901234567890".into()),
            Cell::Real(1.5),
            Cell::Null
        ]
    );
    // the null markers are configurable: here `NA` is a value
    env.run(&csv_yaml("c.csv", "    null_values: ['']\n")).await.unwrap();
    assert_eq!(env.query("SELECT score FROM raw_t ORDER BY zip")[0], [Cell::Text("NA".into())]);
}

#[tokio::test]
async fn dates_and_timestamps_in_other_formats_are_read_when_said() {
    let env = Env::new();
    env.file("d.csv", "day,at\n31/01/2024,31/01/2024 13:45\n01/02/2024,01/02/2024 00:00\n");
    // without a format they are text
    env.run(&csv_yaml("d.csv", "")).await.unwrap();
    let types = |env: &Env| -> Vec<String> {
        env.warehouse.describe("raw_t").unwrap().unwrap().iter().map(|c| c.data_type.as_str().to_string()).collect()
    };
    assert_eq!(types(&env), ["text", "text"]);
    env.run(&csv_yaml("d.csv", "    date_format: '%d/%m/%Y'\n    timestamp_format: '%d/%m/%Y %H:%M'\n")).await.unwrap();
    assert_eq!(types(&env), ["date", "timestamp"]);
    assert_eq!(
        env.query("SELECT day, at FROM raw_t ORDER BY day")[0],
        [Cell::Text("2024-01-31".into()), Cell::Text("2024-01-31T13:45:00+00:00".into())]
    );
    // a declared date that does not match says which format is expected
    env.file("bad.csv", "day\n2024-01-31\n31/01/2024\n");
    let e = err(env.run(&csv_yaml("bad.csv", "    columns: {day: date}\n")).await);
    assert_eq!(
        e.message,
        "bad.csv:3:1: `31/01/2024` is not a valid date for column `day` (dates are read as YYYY-MM-DD; say another \
         with `date_format`)"
    );
}

#[tokio::test]
async fn quote_header_and_encoding_options() {
    let env = Env::new();
    env.file("q.csv", "id;note\n1;'a;b'\n");
    env.run(&csv_yaml("q.csv", "    delimiter: ';'\n    quote: \"'\"\n")).await.unwrap();
    assert_eq!(env.query("SELECT note FROM raw_t")[0], [Cell::Text("a;b".into())]);

    env.file("h.csv", "1,ada\n2,bob\n");
    env.run(&csv_yaml("h.csv", "    header: false\n")).await.unwrap();
    assert_eq!(
        env.query("SELECT column_1, column_2 FROM raw_t ORDER BY 1")[1],
        [Cell::Int(2), Cell::Text("bob".into())]
    );

    let latin1: &[u8] = b"city\nS\xe3o Paulo\n";
    std::fs::write(env.dir.path().join("l.csv"), latin1).unwrap();
    let e = err(env.run(&csv_yaml("l.csv", "")).await);
    assert!(e.message.starts_with("l.csv:2:1: the value is not UTF-8"), "{}", e.message);
    assert!(e.message.contains("encoding: latin-1"), "{}", e.message);
    env.run(&csv_yaml("l.csv", "    encoding: latin-1\n")).await.unwrap();
    assert_eq!(env.query("SELECT city FROM raw_t")[0], [Cell::Text("São Paulo".into())]);
}

#[test]
fn unusable_csv_settings_are_build_errors() {
    let env = Env::new();
    for (extra, expected) in [
        ("    quote: \"''\"\n", "`quote: \"''\"` is not one ASCII character"),
        ("    delimiter: '\"'\n", "`delimiter` and `quote` are both"),
        ("    date_format: '%Q'\n", "`date_format`: `%Q` is not a valid format"),
        ("    timestamp_format: ''\n", "`timestamp_format`: the format is empty"),
    ] {
        let e = env.build(&csv_yaml("x.csv", extra)).expect_err(extra);
        assert!(e.to_string().contains(expected), "{extra}: {e}");
    }
}

#[tokio::test]
async fn partition_placeholders_are_used_where_they_mean_something() {
    let env = Env::new();
    let build_err = |yaml: &str| env.build(yaml).expect_err(yaml).to_string();
    // a placeholder without partitions would stay literal text
    let e = build_err("assets:\n  m:\n    type: sql\n    sql: SELECT * FROM t WHERE day = '{partition}'\n");
    assert!(e.starts_with("`{partition}` is used, but asset `m` is not partitioned"), "{e}");
    // a partitioned model that ignores its partition writes the same rows everywhere
    let daily = "    partitions:\n      daily: {start: 2024-01-01, timezone: Europe/Paris}\n";
    let e = build_err(&format!("assets:\n  m:\n    type: sql\n{daily}    sql: SELECT 1 AS x\n"));
    assert!(e.contains("is partitioned but its SQL never uses `{partition}`"), "{e}");
    env.build(&format!("assets:\n  m:\n    type: sql\n{daily}    sql: SELECT 1 AS x\n    ignore_partition: true\n"))
        .unwrap();
    // typos are not silently literal
    let e = build_err(&format!("assets:\n  m:\n    type: sql\n{daily}    sql: SELECT '{{partiton}}' AS x\n"));
    assert!(e.starts_with("`{partiton}` is not a placeholder"), "{e}");
    // window bounds in the asset's timezone
    env.file("e.csv", "id,at\n1,2024-03-30T23:30:00+01:00\n2,2024-03-31T12:00:00+02:00\n3,2024-04-01T00:30:00+02:00\n");
    env.run("assets:\n  raw.e:\n    type: csv\n    path: e.csv\n    columns: {at: text}\n").await.unwrap();
    let spec = env
        .build(&format!(
            "assets:\n  w:\n    type: sql\n{daily}    sql: SELECT '{{partition_start}}' AS s, '{{partition_end}}' AS e, count(*) AS n FROM raw_e WHERE at >= '{{partition_start}}' AND at < '{{partition_end}}'\n"
        ))
        .unwrap();
    let mut ctx = env.ctx("w");
    ctx.partition = Some(String::from("2024-03-31"));
    spec.run.unwrap().0.run(ctx).await.unwrap();
    assert_eq!(
        env.query("SELECT s, e, n FROM w")[0],
        [Cell::Text("2024-03-31T00:00:00+01:00".into()), Cell::Text("2024-04-01T00:00:00+02:00".into()), Cell::Int(1)]
    );
    // static partitions have no window
    let e = build_err(
        "assets:\n  m:\n    type: sql\n    partitions:\n      static: [eu, us]\n    sql: SELECT '{partition_start}' AS x\n",
    );
    assert!(e.starts_with("`{partition_start}` needs time partitions"), "{e}");
}

#[tokio::test]
async fn a_path_glob_loads_every_matching_file_into_one_table() {
    let env = Env::new();
    env.file("data/sales-2024-01.csv", "id,amount\n1,2\n2,3\n");
    env.file("data/sales-2024-02.csv", "id,amount\n3,4.5\n");
    env.file("data/notes.txt", "not a csv\n");
    let r = env.run(&csv_yaml("data/sales-*.csv", "")).await.unwrap();
    assert_eq!(r.row_count(), Some(3));
    // types are inferred over every file: 4.5 makes the column real
    assert_eq!(env.query("SELECT sum(amount) FROM raw_t")[0], [Cell::Real(9.5)]);
    // a file with other columns is named, with the first file's
    env.file("data/sales-2024-03.csv", "id,total\n4,1\n");
    let e = err(env.run(&csv_yaml("data/sales-*.csv", "")).await);
    assert_eq!(
        e.message,
        "`data/sales-2024-03.csv` has the columns id, total, but `data/sales-2024-01.csv` has id, amount: the files of one \
         asset share their columns"
    );
    std::fs::remove_file(env.dir.path().join("data/sales-2024-03.csv")).unwrap();
    // an error in the second file names that file
    env.file("data/sales-2024-02.csv", "id,amount\n3,\"4.5\n");
    let e = err(env.run(&csv_yaml("data/sales-*.csv", "")).await);
    assert!(e.message.starts_with("data/sales-2024-02.csv:2:3: this quote is never closed"), "{}", e.message);
    let e = env.build(&csv_yaml("data/none-*.csv", "")).unwrap_err();
    assert!(e.to_string().contains("no file matches `data/none-*.csv`"), "{e}");
}
