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

#[test]
fn a_models_dependencies_are_inferred_from_its_sql() {
    // `daily` reads `raw_orders` without listing it in `deps`: a run must build it first
    let dir = project(&[
        ("data/orders.csv", "id,amount\n1,9.5\n2,10\n"),
        (
            "phlo.yaml",
            "assets:\n  daily:\n    type: sql\n    sql: |\n      WITH o AS (SELECT * FROM raw_orders)\n      SELECT count(*) AS n, \
             sum(amount) AS total FROM o\n  raw.orders:\n    type: csv\n    path: data/orders.csv\n",
        ),
    ]);
    let (code, diags, _) = validate(&dir);
    assert_eq!(code, 0, "{diags:#?}");
    let graph = phlo_in(dir.path(), &["assets", "graph", "--format", "json"], &[]);
    let v = json(&graph);
    let edges: Vec<&Value> = v["edges"].as_array().unwrap().iter().filter(|e| e["to"] == "daily").collect();
    assert_eq!(edges, [&serde_json::json!({"from": "raw.orders", "to": "daily", "inferred": true})]);
    let mermaid = phlo_in(dir.path(), &["assets", "graph"], &[]);
    assert!(mermaid.stdout.contains("-.->"), "{}", mermaid.stdout);
    // every run, in order: never "no such table", never last run's rows
    let run = phlo_in(dir.path(), &["run", "--json"], &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let v = json(&run);
    let keys: Vec<&str> = v["assets"].as_array().unwrap().iter().map(|a| a["key"].as_str().unwrap()).collect();
    let pos = |k: &str| keys.iter().position(|x| *x == k).unwrap();
    assert!(pos("raw.orders") < pos("daily"), "{keys:?}");
    let daily = v["assets"].as_array().unwrap().iter().find(|a| a["key"] == "daily").unwrap();
    assert_eq!(daily["status"], "succeeded");
}

#[test]
fn unknown_tables_and_syntax_errors_are_located_inside_the_sql() {
    let dir = project(&[
        ("data/orders.csv", "id\n1\n"),
        (
            "phlo.yaml",
            "assets:\n  raw.orders:\n    type: csv\n    path: data/orders.csv\n  typo:\n    type: sql\n    sql: |\n      SELECT *\n      \
             FROM raw_ordrs\n  dotted:\n    type: sql\n    sql: SELECT * FROM raw.orders\n  broken:\n    type: sql\n    sql: |\n      \
             SELECT id,\n        FROM raw_orders\n  unread:\n    type: sql\n    deps: [raw.orders]\n    sql: SELECT 1 AS x\n  \
             nowhere:\n    type: sql\n    sql: SELECT * FROM weather_feed\n",
        ),
    ]);
    let (code, diags, _) = validate(&dir);
    assert_eq!(code, 3, "{diags:#?}");
    let find = |code: &str, needle: &str| {
        diags
            .iter()
            .find(|d| d.0 == code && d.3.contains(needle))
            .unwrap_or_else(|| panic!("{code} {needle}: {diags:#?}"))
    };
    // the unknown table, at its own line and column in phlo.yaml, with a did-you-mean
    let typo = find("PHLO-E036", "reads table `raw_ordrs`");
    assert_eq!((typo.1, typo.2), (9, 12));
    // an asset key where its table is meant
    let dotted = find("PHLO-E036", "`raw.orders`, which is an asset key");
    assert_eq!((dotted.1, dotted.2), (12, 24));
    // a syntax error, in the block's second line
    let broken = find("PHLO-E004", "the SQL is not valid");
    assert_eq!(broken.1, 17);
    // a table nobody writes: the fix says how to declare it
    find("PHLO-E036", "reads table `weather_feed`, which no asset writes");
    // an explicit dep the SQL never reads is a warning
    let unread = find("PHLO-W037", "lists `raw.orders` in `deps`");
    assert_eq!(unread.1, 20);
    let v = validate(&dir).2;
    let helps: Vec<&str> = v["diagnostics"].as_array().unwrap().iter().filter_map(|d| d["help"].as_str()).collect();
    assert!(helps.contains(&"did you mean `raw_orders`?"), "{helps:#?}");
    assert!(helps.contains(&"the table of asset `raw.orders` is `raw_orders`: write `FROM raw_orders`"), "{helps:#?}");
}

#[test]
fn bad_keys_concurrency_and_counts_are_located_errors() {
    let dir = project(&[(
        "phlo.yaml",
        "assets:\n  \"raw orders\":\n    type: sql\n    sql: SELECT 1 AS x\n  \"\":\n    type: sql\n    sql: SELECT 2 AS x\n  \
         ../secret:\n    type: sql\n    sql: SELECT 3 AS x\n  ok.key-1:\n    type: sql\n    sql: SELECT 4 AS x\nexecutor:\n  \
         concurrency: 0\n",
    )]);
    let (code, diags, _) = validate(&dir);
    assert_eq!(code, 2, "{diags:#?}");
    let at = |line: u64| diags.iter().find(|d| d.1 == line).unwrap_or_else(|| panic!("line {line}: {diags:#?}"));
    assert_eq!(at(2).3, "`raw orders` is not a valid asset key: ` ` cannot be part of an asset key");
    assert_eq!(at(5).3, "`` is not a valid asset key: an asset key cannot be empty");
    assert_eq!(at(8).3, "`../secret` is not a valid asset key: `/` cannot be part of an asset key");
    assert_eq!((at(15).2, at(15).3.as_str()), (16, "`concurrency: 0` would run nothing"));
    assert!(diags.iter().all(|d| !d.3.contains("ok.key-1")), "{diags:#?}");
    // counts on the command line are bounded
    let run = phlo_in(dir.path(), &["schedule", "list", "--next", "1000000000"], &[]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("1000000000 is not in 1..=1000"), "{}", run.stderr);
}

#[test]
fn deep_or_long_selections_are_errors_or_work() {
    let dir = project(&[(
        "phlo.yaml",
        "assets:\n  a:\n    type: sql\n    sql: SELECT 1 AS x\nschedules:\n  deep:\n    cron: '0 2 * * *'\n    select: \"((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((a))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))\"\n",
    )]);
    let (code, diags, _) = validate(&dir);
    assert_eq!(code, 2, "{diags:#?}");
    assert!(diags.iter().any(|d| d.3.contains("nests more than 100 levels deep") && d.1 == 8), "{diags:#?}");
    let deep = format!("{}a{}", "(".repeat(5000), ")".repeat(5000));
    let run = phlo_in(dir.path(), &["assets", "list", "--select", &deep], &[]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("nests more than 100 levels deep"), "{}", run.stderr);
    let ok = project(&[("phlo.yaml", "assets:\n  a:\n    type: sql\n    sql: SELECT 1 AS x\n")]);
    let long = vec!["a"; 3000].join(" or ");
    let run = phlo_in(ok.path(), &["assets", "list", "--select", &long], &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
}

#[test]
fn paths_stay_inside_the_project_unless_it_says_otherwise() {
    let yaml = "assets:\n  raw.s:\n    type: csv\n    path: ../secret.csv\n  raw.e:\n    type: jsonl\n    path: /etc/hosts\n  \
                publish.x:\n    type: export\n    table: raw_s\n    path: data/../../outside.csv\n  tool:\n    type: command\n    \
                program: 'true'\n    cwd: ..\n  fine:\n    type: csv\n    path: data/./x/../in.csv\nresources:\n  sqlite:\n    \
                path: /tmp/elsewhere.db\n";
    let dir = project(&[("phlo.yaml", yaml)]);
    let (code, diags, _) = validate(&dir);
    assert_ne!(code, 0, "{diags:#?}");
    let outside: Vec<(u64, &str)> = diags
        .iter()
        .filter(|d| d.3.contains("is outside the project directory"))
        .map(|d| (d.1, d.3.as_str()))
        .collect();
    assert_eq!(outside.iter().map(|o| o.0).filter(|l| *l > 0).collect::<Vec<_>>(), [4, 7, 11, 15], "{diags:#?}");
    assert!(outside.iter().any(|o| o.1.contains("`/tmp/elsewhere.db`")), "the warehouse too: {diags:#?}");
    assert!(diags.iter().all(|d| !(d.3.contains("in.csv") && d.3.contains("outside"))), "{diags:#?}");
    let v = validate(&dir).2;
    let help = v["diagnostics"].as_array().unwrap().iter().find_map(|d| d["help"].as_str()).unwrap().to_string();
    assert!(help.contains("paths: {allow_outside_project: true}"), "{help}");
    // the project may opt out (the files must still be there, or be written upstream)
    let opted = yaml.replace("path: ../secret.csv\n", "path: ../secret.csv\n    deps: [tool]\n");
    let dir = project(&[
        ("phlo.yaml", &format!("{opted}paths:\n  allow_outside_project: true\n")),
        ("data/in.csv", "id\n1\n"),
        ("data/x/keep", ""),
    ]);
    let (code, diags, _) = validate(&dir);
    assert!(diags.iter().all(|d| !d.3.contains("outside the project")), "{diags:#?}");
    assert_eq!(code, 0, "{diags:#?}");
}

#[test]
fn checks_name_columns_the_asset_has() {
    let dir = project(&[
        ("data/orders.csv", "order_id,amount,status\n1,9.5,paid\n"),
        ("data/events.jsonl", "{\"id\": 1}\n"),
        (
            "phlo.yaml",
            "assets:\n  raw.orders:\n    type: csv\n    path: data/orders.csv\n    checks:\n      - {type: not_null, column: order_id}\n      \
             - {type: not_null, column: ammount}\n  staging.orders:\n    type: sql\n    sql: SELECT *, amount * 2 AS double FROM raw_orders\n    \
             checks:\n      - {type: range, column: double, min: 0}\n      - {type: unique, column: id}\n  marts.x:\n    type: sql\n    \
             sql: SELECT amount + 1 FROM raw_orders\n    checks:\n      - {type: not_null, column: y}\n  raw.events:\n    type: jsonl\n    \
             path: data/events.jsonl\n    checks:\n      - {type: unique, column: id}\n      - {type: unique, column: ident}\n",
        ),
    ]);
    let (code, diags, v) = validate(&dir);
    assert_eq!(code, 3, "{diags:#?}");
    let of = |code: &str| diags.iter().filter(|d| d.0 == code).map(|d| (d.1, d.3.as_str())).collect::<Vec<_>>();
    assert_eq!(
        of("PHLO-E038"),
        [
            (7, "check `not_null_ammount` of asset `raw.orders` names column `ammount`, which the asset does not have"),
            (13, "check `unique_id` of asset `staging.orders` names column `id`, which the asset does not have"),
            (24, "check `unique_ident` of asset `raw.events` names column `ident`, which the asset does not have"),
        ]
    );
    let helps: Vec<&str> = v["diagnostics"].as_array().unwrap().iter().filter_map(|d| d["help"].as_str()).collect();
    assert!(helps.contains(&"did you mean `amount`? (it has order_id, amount, status)"), "{helps:#?}");
    assert!(helps.contains(&"it has order_id, amount, status, double"), "{helps:#?}");
    // not knowable before the run: said, not silent (the JSON Lines file's fields are read)
    let warned: Vec<u64> = of("PHLO-W039").iter().map(|d| d.0).collect();
    assert_eq!(warned, [18], "{diags:#?}");
}

#[test]
fn a_sql_checks_query_is_parsed_when_the_project_loads() {
    let dir = project(&[(
        "phlo.yaml",
        "assets:\n  m:\n    type: sql\n    sql: SELECT 1 AS x\n    checks:\n      - type: sql\n        query: |\n          SELECT *\n          \
         FROM m WHERE x > > 1\n",
    )]);
    let (code, diags, _) = validate(&dir);
    assert_eq!(code, 2, "{diags:#?}");
    let d = diags.iter().find(|d| d.0 == "PHLO-E004").unwrap_or_else(|| panic!("{diags:#?}"));
    assert!(d.3.starts_with("check `sql` of asset `m`: the query is not valid SQL: "), "{d:?}");
    assert_eq!(d.1, 9, "at the query's second line: {d:?}");
}

#[test]
fn a_model_naming_a_column_its_tables_lack_is_an_error_at_the_name() {
    let dir = project(&[
        ("data/o.csv", "order_id,amount,status\n1,9.5,paid\n"),
        ("data/c.csv", "id,name\n1,a\n"),
        (
            "phlo.yaml",
            "assets:\n  raw.o:\n    type: csv\n    path: data/o.csv\n  raw.c:\n    type: csv\n    path: data/c.csv\n  m:\n    type: sql\n    \
             sql: |\n      SELECT o.order_id, o.ammount, c.name AS who, status\n      FROM raw_o o JOIN raw_c c ON c.id = o.order_id\n      \
             WHERE stauts = 'paid' ORDER BY who\n  fine:\n    type: sql\n    sql: SELECT order_id, rowid FROM raw_o WHERE order_id IN \
             (SELECT id FROM raw_c WHERE nope = 1)\n",
        ),
    ]);
    let (code, diags, _) = validate(&dir);
    assert_eq!(code, 3, "{diags:#?}");
    let found: Vec<(u64, u64, &str)> =
        diags.iter().filter(|d| d.0 == "PHLO-E038").map(|d| (d.1, d.2, d.3.as_str())).collect();
    assert_eq!(
        found,
        [
            (11, 28, "the SQL of asset `m` names column `ammount`, which `raw_o` does not have"),
            (13, 13, "the SQL of asset `m` names column `stauts`, which none of `raw_o`, `raw_c` has"),
        ],
        "subqueries are not resolved (no error for `fine`): {diags:#?}"
    );
}
