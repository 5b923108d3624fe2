//! The guarantees of `docs/guarantees.md` as a model-based test: `proptest` draws a small
//! project (a CSV load in `replace` or `append` mode whose `not_null` check is blocking or a
//! warning, a SQL model over it, a model partitioned by a static list) and a sequence of
//! operations — run, run one partition, break or fix the data, `kill -9` at a random moment,
//! `--from-failure`, `--skip-unchanged`, two runs at once — performs each on a real project
//! with real `phlo` processes, and after every one compares the warehouse, the run history
//! and `phlo status` with a reference model of what must be true:
//!
//! - **gates**: a model is never built from data its upstream's blocking check rejects, and
//!   a run that exits 0 has every blocking check passing on the data as it stands;
//! - **exactly once**: the loaded table holds each run's rows once (an append is never
//!   repeated by a resume, a kill or a second process), and a replace holds the file's rows;
//! - **history**: the run each command made is recorded with the status its exit code says;
//! - **partitions**: a partition's rows are those its SQL selects, whatever other
//!   partitions hold, and a partition's check sees only them;
//! - **versions**: after a run that succeeded with nothing changed since, `status` says fresh.
//!
//! `PHLO_MODEL_CASES` sets how many projects are drawn (8 by default, for CI).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::Value;

#[derive(Debug, Clone)]
struct Shape {
    append: bool,
    blocking: bool,
}

#[derive(Debug, Clone)]
enum Op {
    Run,
    RunPartition(&'static str),
    /// The CSV gets a row whose `v` is empty (null), or loses it.
    SetData {
        bad: bool,
        rows: u8,
    },
    Kill {
        after_ms: u64,
    },
    FromFailure,
    SkipUnchanged,
    TwoAtOnce,
    /// `m.s`'s SQL fails when it runs (an integer overflow), or works again.
    SetModel {
        broken: bool,
    },
    /// An external orchestrator's run: one `phlo run --select KEY --run-id ID` per asset, in
    /// dependency order, a step's downstream left out when it fails.
    Orchestrated,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => Just(Op::Run),
        1 => prop::sample::select(vec!["a", "b"]).prop_map(Op::RunPartition),
        2 => (any::<bool>(), 1u8..5).prop_map(|(bad, rows)| Op::SetData { bad, rows }),
        1 => (0u64..400).prop_map(|after_ms| Op::Kill { after_ms }),
        2 => Just(Op::FromFailure),
        1 => Just(Op::SkipUnchanged),
        1 => Just(Op::TwoAtOnce),
        1 => any::<bool>().prop_map(|broken| Op::SetModel { broken }),
        1 => Just(Op::Orchestrated),
    ]
}

fn yaml(shape: &Shape, broken: bool) -> String {
    let ok = if broken { "abs(-9223372036854775808) > 0" } else { "1" };
    format!(
        "
executor:
  concurrency: 2
assets:
  raw.r:
    type: csv
    path: r.csv
    mode: {mode}
    columns: {{id: integer, v: integer}}
    null_values: ['']
    checks:
      - {{type: not_null, column: v, {gate}}}
  m.s:
    type: sql
    # takes ~0.1 s (a count to 300,000), so that a kill can land while it runs
    sql: >-
      SELECT id, v FROM raw_r WHERE (WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c
      WHERE x < 300000) SELECT count(*) FROM c) > 0 AND {ok}
  m.p:
    type: sql
    partitions:
      static: [a, b]
    sql: \"SELECT id, v FROM raw_r WHERE (id % 2 = 0) = ('{{partition}}' = 'a')\"
    checks:
      - {{type: row_count, max: 1000}}
      - {{type: not_null, column: v, severity: warn}}
",
        mode = if shape.append { "append" } else { "replace" },
        gate = if shape.blocking { "blocking: true" } else { "severity: warn" },
    )
}

/// The CSV: `rows` good rows, and one whose `v` is null when `bad`.
fn csv(bad: bool, rows: u8) -> (String, i64, i64) {
    let mut text = String::from("id,v\n");
    for i in 0..rows {
        text.push_str(&format!("{i},{}\n", i * 10));
    }
    if bad {
        text.push_str("99,\n");
    }
    let n = i64::from(rows) + i64::from(bad);
    // how many rows land in partition a (even ids)
    let even = (0..rows).filter(|i| i % 2 == 0).count() as i64;
    (text, n, even)
}

/// What must be true, as far as the model knows it.
#[derive(Debug, Default)]
struct Model {
    /// Rows of the CSV now; whether it holds a null `v`.
    file_rows: i64,
    file_bad: bool,
    /// Expected rows of `raw_r` (none: the table does not exist yet).
    raw_rows: Option<i64>,
    /// Whether `raw_r` holds a null `v` (an appended bad batch stays).
    raw_bad: bool,
    /// Runs whose load committed, by id (a resume of one of them must not load again).
    committed: std::collections::BTreeSet<String>,
    /// Nothing changed since a run that succeeded covering every asset.
    settled: bool,
    /// Whether `m.s` fails when it runs.
    model_broken: bool,
    /// Bumped when the file changes; each run's value when it started.
    epoch: u32,
    started_in: std::collections::BTreeMap<String, u32>,
    /// Orchestrated runs so far (their ids).
    orchestrated: u32,
}

struct Phlo<'a> {
    dir: &'a Path,
}

struct Done {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Phlo<'_> {
    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(assert_cmd::cargo::cargo_bin("phlo"));
        c.args(args).current_dir(self.dir).env("PHLO_LOG", "off").env("NO_COLOR", "1");
        c
    }

    fn run(&self, args: &[&str]) -> Done {
        let out = self.cmd(args).stdin(Stdio::null()).output().unwrap();
        Done {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    fn query(&self, sql: &str) -> Option<i64> {
        let c = rusqlite::Connection::open(self.dir.join(".phlo/warehouse.db")).ok()?;
        c.query_row(sql, [], |r| r.get(0)).ok()
    }

    fn raw_rows(&self) -> Option<i64> {
        self.query("SELECT count(*) FROM raw_r")
    }

    fn runs(&self) -> Vec<Value> {
        let out = self.run(&["runs", "list", "--json"]);
        assert_eq!(out.code, 0, "{}", out.stderr);
        serde_json::from_str::<Value>(&out.stdout).unwrap().as_array().unwrap().clone()
    }

    fn status_of(&self, run_id: &str) -> String {
        self.runs()
            .iter()
            .find(|r| r["run_id"] == run_id)
            .map_or_else(String::new, |r| r["status"].as_str().unwrap_or_default().to_string())
    }
}

/// The id a `--json` run reports.
fn run_id(out: &Done) -> Option<String> {
    serde_json::from_str::<Value>(&out.stdout).ok()?["run_id"].as_str().map(str::to_string)
}

/// Whether a run's report shows `raw.r` loaded by this very attempt (not committed earlier).
fn loaded_now(out: &Done) -> bool {
    let Ok(report) = serde_json::from_str::<Value>(&out.stdout) else { return false };
    report["assets"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|a| a["key"] == "raw.r" && a["status"] == "succeeded" && a["metadata"]["committed_by_attempt"].is_null())
}

fn rows_loaded(model: &Model, shape: &Shape) -> Option<i64> {
    Some(if shape.append { model.raw_rows.unwrap_or(0) + model.file_rows } else { model.file_rows })
}

/// Applies a successful load of the file to the model.
fn load(model: &mut Model, shape: &Shape) {
    model.raw_rows = rows_loaded(model, shape);
    model.raw_bad = if shape.append { model.raw_bad || model.file_bad } else { model.file_bad };
}

/// The invariants that hold after every operation.
fn invariants(p: &Phlo<'_>, model: &Model, shape: &Shape, step: &str) {
    // exactly once: the load table holds what the model says
    assert_eq!(p.raw_rows(), model.raw_rows, "{step}: raw_r rows");
    let raw_nulls = p.query("SELECT count(*) FROM raw_r WHERE v IS NULL").unwrap_or(0);
    assert_eq!(raw_nulls > 0, model.raw_bad, "{step}: raw_r nulls");
    if shape.blocking {
        // gates: nothing downstream was built from rows the blocking check rejects
        for t in ["m_s", "m_p"] {
            let nulls = p.query(&format!("SELECT count(*) FROM {t} WHERE v IS NULL")).unwrap_or(0);
            assert_eq!(nulls, 0, "{step}: {t} was built from data its gate rejects");
        }
    }
    // partitions: each partition holds exactly the rows its SQL selects from some load,
    // never another partition's
    for (k, even) in [("a", 0), ("b", 1)] {
        let wrong =
            p.query(&format!("SELECT count(*) FROM m_p WHERE partition_key = '{k}' AND id % 2 != {even}")).unwrap_or(0);
        assert_eq!(wrong, 0, "{step}: partition {k} holds another partition's rows");
    }
}

/// After a command that made a run: its history says what its exit code says.
fn recorded(p: &Phlo<'_>, out: &Done, step: &str) {
    let Some(id) = run_id(out) else { return };
    let want = match out.code {
        0 => "succeeded",
        4 => "failed",
        130 => "cancelled",
        _ => return,
    };
    assert_eq!(p.status_of(&id), want, "{step}: run {id} exited {}\n{}", out.code, out.stderr);
}

fn apply(p: &Phlo<'_>, model: &mut Model, shape: &Shape, op: &Op, step: &str) {
    let gate_fails = |m: &Model| shape.blocking && m.raw_bad;
    match op {
        Op::SetData { bad, rows } => {
            let (text, n, _) = csv(*bad, *rows);
            std::fs::write(p.dir.join("r.csv"), text).unwrap();
            model.file_rows = n;
            model.file_bad = *bad;
            model.settled = false;
            model.epoch += 1;
        }
        Op::Run | Op::RunPartition(_) | Op::SkipUnchanged => {
            let args: Vec<&str> = match op {
                Op::RunPartition(k) => vec!["run", "--json", "--partition", k],
                Op::SkipUnchanged => vec!["run", "--json", "--skip-unchanged"],
                _ => vec!["run", "--json"],
            };
            let before = p.raw_rows();
            let out = p.run(&args);
            assert!(matches!(out.code, 0 | 4), "{step}: exit {}\n{}", out.code, out.stderr);
            if loaded_now(&out) {
                load(model, shape);
                model.committed.insert(run_id(&out).unwrap());
            } else {
                // --skip-unchanged left the load out: the table is as it was
                assert!(matches!(op, Op::SkipUnchanged), "{step}: raw.r did not load\n{}", out.stdout);
                assert_eq!(p.raw_rows(), before, "{step}");
            }
            assert_eq!(
                out.code == 4,
                gate_fails(model) || model.model_broken,
                "{step}: exit {}\n{}",
                out.code,
                out.stdout
            );
            recorded(p, &out, step);
            if let Some(id) = run_id(&out) {
                model.started_in.insert(id, model.epoch);
            }
            // partitions: partition a's check sees only its rows (the null `v` is in b's)
            if matches!(op, Op::RunPartition("a")) && !gate_fails(model) {
                let report: Value = serde_json::from_str(&out.stdout).unwrap();
                let check = report["checks"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|c| c["asset"] == "m.p" && c["name"] == "not_null_v")
                    .unwrap_or_else(|| panic!("{step}: {report:#}"));
                assert_eq!(check["passed"], true, "{step}: partition a's check saw b's rows: {check:#}");
            }
            model.settled = out.code == 0 && !matches!(op, Op::RunPartition(_));
        }
        Op::Orchestrated => {
            model.orchestrated += 1;
            let id = format!("orch-{}", model.orchestrated);
            let one = |key: &str| p.run(&["run", "--json", "--select", key, "--run-id", &id]);
            let load_step = one("raw.r");
            assert!(loaded_now(&load_step), "{step}: the load step loads\n{}", load_step.stdout);
            load(model, shape);
            model.committed.insert(id.clone());
            assert_eq!(load_step.code == 4, gate_fails(model), "{step}: {}", load_step.stdout);
            let mut failed = load_step.code == 4;
            if !failed {
                // independent branches: one failing does not stop the other
                let s = one("m.s");
                assert_eq!(s.code == 4, model.model_broken, "{step}: {}", s.stdout);
                let p_step = one("m.p");
                assert_eq!(p_step.code, 0, "{step}: {}", p_step.stdout);
                failed = s.code == 4;
            }
            // history: the run is what all its processes did together
            let want = if failed { "failed" } else { "succeeded" };
            assert_eq!(p.status_of(&id), want, "{step}: run {id}");
            model.started_in.insert(id, model.epoch);
            model.settled = false;
        }
        Op::SetModel { broken } => {
            std::fs::write(p.dir.join("phlo.yaml"), yaml(shape, *broken)).unwrap();
            model.model_broken = *broken;
            model.settled = false;
        }
        Op::Kill { after_ms } => {
            let mut child = p.cmd(&["run"]).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
            std::thread::sleep(Duration::from_millis(*after_ms));
            let _ = child.kill();
            let status = child.wait().unwrap();
            // the load committed or it did not: the model learns which from the table itself,
            // and then never accepts it twice
            // (a replace of the same file leaves the same rows: nothing to learn then)
            let now = p.raw_rows();
            let nulls = p.query("SELECT count(*) FROM raw_r WHERE v IS NULL").unwrap_or(0) > 0;
            if (now, nulls) != (model.raw_rows, model.raw_bad) {
                assert_eq!(now, rows_loaded(model, shape), "{step}: a killed run left a partial load");
                load(model, shape);
                let runs = p.runs();
                let id = runs.first().and_then(|r| r["run_id"].as_str()).unwrap().to_string();
                model.committed.insert(id);
            }
            if let Some(id) = p.runs().first().and_then(|r| r["run_id"].as_str()) {
                model.started_in.entry(id.to_string()).or_insert(model.epoch);
            }
            model.settled = status.success() && !gate_fails(model) && !model.model_broken;
        }
        Op::FromFailure => {
            let out = p.run(&["run", "--json", "--from-failure"]);
            let resumed = out
                .stderr
                .lines()
                .find_map(|l| l.strip_prefix("resuming run "))
                .map(|rest| rest.split(':').next().unwrap_or_default().to_string());
            match resumed {
                None => {
                    assert_eq!(out.code, 0, "{step}: {}", out.stderr);
                    assert!(out.stderr.contains("nothing to resume") || out.stderr.contains("left to resume"));
                }
                Some(id) => {
                    assert!(matches!(out.code, 0 | 4), "{step}: exit {}\n{}", out.code, out.stderr);
                    assert_eq!(run_id(&out).as_deref(), Some(id.as_str()), "{step}: resumed under its id");
                    if loaded_now(&out) {
                        // exactly once: only a run whose load never committed loads on resume
                        assert!(!model.committed.contains(&id), "{step}: run {id} loaded twice\n{}", out.stdout);
                        load(model, shape);
                        model.committed.insert(id.clone());
                    }
                    // gates: a resumed run succeeds only if the gate passes on the data as it is
                    if out.code == 0 {
                        assert!(!gate_fails(model), "{step}: the resume walked around a failing gate");
                    }
                    recorded(p, &out, step);
                    // versions: the newest run, finished with nothing changed since it began,
                    // leaves every asset fresh — resumed steps record versions as fresh ones do
                    let newest = p.runs().first().and_then(|r| r["run_id"].as_str().map(str::to_string));
                    model.settled = out.code == 0
                        && newest.as_deref() == Some(id.as_str())
                        && model.started_in.get(&id) == Some(&model.epoch);
                }
            }
        }
        Op::TwoAtOnce => {
            let spawn = || p.cmd(&["run", "--json"]).stdin(Stdio::null()).output().unwrap();
            let (a, b) = std::thread::scope(|s| {
                let a = s.spawn(spawn);
                let b = s.spawn(spawn);
                (a.join().unwrap(), b.join().unwrap())
            });
            for out in [a, b] {
                let out = Done {
                    code: out.status.code().unwrap_or(-1),
                    stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
                    stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
                };
                assert!(matches!(out.code, 0 | 4), "{step}: exit {}\n{}", out.code, out.stderr);
                assert!(loaded_now(&out), "{step}: each run loads once\n{}", out.stdout);
                load(model, shape);
                model.committed.insert(run_id(&out).unwrap());
                model.started_in.insert(run_id(&out).unwrap(), model.epoch);
                recorded(p, &out, step);
            }
            model.settled = !gate_fails(model) && !model.model_broken;
        }
    }
    invariants(p, model, shape, step);
    // versions: nothing changed since a full run succeeded — every asset is fresh
    if model.settled {
        let out = p.run(&["status", "--json"]);
        let rows: Value = serde_json::from_str(&out.stdout).unwrap();
        for key in ["raw.r", "m.s"] {
            let row = rows.as_array().unwrap().iter().find(|r| r["key"] == key).unwrap();
            assert_eq!(row["freshness"], "fresh", "{step}: {row:#}");
        }
    }
}

#[cfg(unix)]
#[test]
fn runs_history_and_warehouse_follow_the_model() {
    let cases = std::env::var("PHLO_MODEL_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(8);
    let mut runner = TestRunner::new(Config { cases, failure_persistence: None, ..Config::default() });
    let strategy = (any::<bool>(), any::<bool>(), prop::collection::vec(op(), 1..9));
    runner
        .run(&strategy, |(append, blocking, ops)| {
            replay(&Shape { append, blocking }, &ops);
            Ok(())
        })
        .unwrap();
}

/// Performs `ops` on a fresh project of `shape`, checking the model after each.
fn replay(shape: &Shape, ops: &[Op]) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("phlo.yaml"), yaml(shape, false)).unwrap();
    let (text, n, _) = csv(false, 2);
    std::fs::write(dir.path().join("r.csv"), text).unwrap();
    let mut model = Model { file_rows: n, ..Model::default() };
    let p = Phlo { dir: dir.path() };
    for (i, op) in ops.iter().enumerate() {
        apply(&p, &mut model, shape, op, &format!("{shape:?} op {i} {op:?} of {ops:?}"));
    }
}

/// Sequences that found bugs, or that each guarantee's rule must pass, replayed as they are.
#[cfg(unix)]
#[test]
fn known_sequences_follow_the_model() {
    let sequences: &[(bool, bool, &[Op])] = &[
        // a failed gate resumed: the load is not repeated, the gate still fails
        (true, true, &[Op::SetData { bad: true, rows: 2 }, Op::Run, Op::FromFailure, Op::FromFailure]),
        // killed, then resumed: the append lands once
        (true, true, &[Op::Kill { after_ms: 150 }, Op::FromFailure, Op::Run]),
        // killed at moments across a run, each resumed: loads once, and resumed steps are fresh
        (
            true,
            true,
            &[
                Op::Kill { after_ms: 20 },
                Op::FromFailure,
                Op::Kill { after_ms: 45 },
                Op::FromFailure,
                Op::Kill { after_ms: 70 },
                Op::FromFailure,
                Op::Kill { after_ms: 100 },
                Op::FromFailure,
            ],
        ),
        // a model that fails, fixed and resumed: it runs under the run's id and is fresh
        (false, true, &[Op::SetModel { broken: true }, Op::Run, Op::SetModel { broken: false }, Op::FromFailure]),
        // one run id across processes: a failed step keeps the run failed
        (
            false,
            false,
            &[Op::SetModel { broken: true }, Op::Orchestrated, Op::SetModel { broken: false }, Op::FromFailure],
        ),
        // partition a's check beside b's bad row
        (true, false, &[Op::SetData { bad: true, rows: 3 }, Op::RunPartition("b"), Op::RunPartition("a")]),
    ];
    for (append, blocking, ops) in sequences {
        let shape = Shape { append: *append, blocking: *blocking };
        replay(&shape, ops);
    }
}
