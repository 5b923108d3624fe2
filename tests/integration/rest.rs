//! The REST source (`type: rest`) against a real HTTP server on loopback, started by each
//! test: every pagination style, retries after 429 (honouring `Retry-After`) and 500, a
//! refused credential, a malformed page, a slow server, incremental runs, a substream over 50
//! parents, located errors at validate, probes — and a secret that never leaks.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::cli::{json as json_of, phlo_in};

#[path = "../../benches/support/http_server.rs"]
pub(crate) mod server;
use server::{Reply, Request, Server};

/// `n` records with ids from `first`.
fn records(first: u64, n: u64) -> Vec<Value> {
    (first..first + n).map(|i| json!({"id": i, "name": format!("item {i}"), "price": i as f64 * 1.5})).collect()
}

fn project(dir: &Path, yaml: &str) {
    std::fs::write(dir.join("phlo.yaml"), yaml).unwrap();
}

fn count(dir: &Path, sql: &str) -> i64 {
    let c = rusqlite::Connection::open(dir.join(".phlo/warehouse.db")).unwrap();
    c.query_row(sql, [], |r| r.get(0)).unwrap()
}

fn asset_yaml(url: &str, extra: &str) -> String {
    format!("assets:\n  raw.items:\n    type: rest\n    base_url: {url}\n    endpoint: /items\n{extra}")
}

fn run_ok(dir: &Path) -> Value {
    let out = phlo_in(dir, &["run", "--select", "raw.*", "--json"], &[]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    json_of(&out)
}

/// How a test server answers, given the server's own URL.
type Answer = dyn Fn(&Request, &str) -> Reply + Send + Sync;

/// 25 records, 10 per page, each pagination style: all 25 arrive, once each.
#[test]
fn every_pagination_style_reads_every_page() {
    let page = |req: &Request, skip: u64| -> Vec<Value> {
        let _ = req;
        records(skip + 1, 10.min(25u64.saturating_sub(skip)))
    };
    let styles: Vec<(&str, Box<Answer>)> = vec![
        (
            "    pagination: {style: page_number, param: p, page_size_param: size, page_size: 10}\n",
            Box::new(move |r, _| {
                let p: u64 = r.param("p").unwrap().parse().unwrap();
                assert_eq!(r.param("size"), Some("10"));
                Reply::json(json!(page(r, (p - 1) * 10)).to_string())
            }),
        ),
        (
            "    pagination: {style: offset, limit: 10}\n    records: /data\n",
            Box::new(move |r, _| {
                let o: u64 = r.param("offset").unwrap().parse().unwrap();
                Reply::json(json!({"data": page(r, o)}).to_string())
            }),
        ),
        (
            "    pagination: {style: cursor, param: after, cursor: /meta/next}\n    records: /items\n",
            Box::new(move |r, _| {
                let o: u64 = r.param("after").map_or(0, |a| a.parse().unwrap());
                let next = if o + 10 < 25 { json!((o + 10).to_string()) } else { Value::Null };
                Reply::json(json!({"items": page(r, o), "meta": {"next": next}}).to_string())
            }),
        ),
        (
            "    pagination: {style: next_url, next: /next}\n    records: /results\n",
            Box::new(move |r, _| {
                let o: u64 = r.param("from").map_or(0, |a| a.parse().unwrap());
                let next = if o + 10 < 25 { json!(format!("/items?from={}", o + 10)) } else { Value::Null };
                Reply::json(json!({"results": page(r, o), "next": next}).to_string())
            }),
        ),
        (
            "    pagination: {style: link_header}\n",
            Box::new(move |r, base| {
                let o: u64 = r.param("from").map_or(0, |a| a.parse().unwrap());
                let reply = Reply::json(json!(page(r, o)).to_string());
                if o + 10 < 25 {
                    reply.with_header(
                        "Link",
                        &format!("<{base}/items?from={}>; rel=\"next\", <{base}/items?from=20>; rel=\"last\"", o + 10),
                    )
                } else {
                    reply
                }
            }),
        ),
    ];
    for (yaml, handler) in styles {
        let base = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let b = std::sync::Arc::clone(&base);
        let server = Server::start(move |r| handler(r, &b.lock().unwrap()));
        *base.lock().unwrap() = server.url.clone();
        let dir = tempfile::tempdir().unwrap();
        project(dir.path(), &asset_yaml(&server.url, yaml));
        let report = run_ok(dir.path());
        assert_eq!(report["assets"][0]["metadata"]["row_count"], 25, "{yaml}{report:#}");
        assert_eq!(report["assets"][0]["metadata"]["pages"], 3, "{yaml}");
        assert_eq!(count(dir.path(), "SELECT count(DISTINCT id) FROM raw_items"), 25, "{yaml}");
        assert_eq!(count(dir.path(), "SELECT sum(id) FROM raw_items"), (1..=25).sum::<i64>(), "{yaml}");
    }
}

/// A 429 with `Retry-After: 1` is waited out, a 500 is retried; the events say so.
#[test]
fn throttling_and_server_errors_are_retried() {
    let hits = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let h = std::sync::Arc::clone(&hits);
    let server = Server::start(move |_: &Request| match h.fetch_add(1, std::sync::atomic::Ordering::SeqCst) {
        0 => Reply::status(429, "slow down").with_header("Retry-After", "1"),
        1 => Reply::status(500, "oops"),
        _ => Reply::json(json!(records(1, 3)).to_string()),
    });
    let dir = tempfile::tempdir().unwrap();
    project(
        dir.path(),
        &format!("hooks:\n  jsonl:\n    path: .phlo/events.jsonl\n{}", asset_yaml(&server.url, "    backoff: 50ms\n")),
    );
    let t0 = Instant::now();
    let report = run_ok(dir.path());
    assert!(t0.elapsed() >= Duration::from_secs(1), "Retry-After was not honoured");
    assert_eq!(report["assets"][0]["metadata"]["row_count"], 3);
    let events = std::fs::read_to_string(dir.path().join(".phlo/events.jsonl")).unwrap();
    let id = report["run_id"].as_str().unwrap();
    let stored = phlo_in(dir.path(), &["runs", "events", id], &[]).stdout;
    for log in [&events, &stored] {
        let statuses: Vec<u64> = log
            .lines()
            .filter(|l| l.contains("\"source.request\""))
            .map(|l| serde_json::from_str::<Value>(l).unwrap()["payload"]["status"].as_u64().unwrap())
            .collect();
        assert_eq!(statuses, [429, 500, 200]);
    }
}

/// 401: the run fails at once (no retry) with a clear error; a malformed page fails naming
/// the page, and nothing is written; a slow server times out.
#[test]
fn refusals_bad_pages_and_slow_servers_fail_clearly() {
    let refused = Server::start(|_: &Request| Reply::status(401, "no"));
    let dir = tempfile::tempdir().unwrap();
    project(dir.path(), &asset_yaml(&refused.url, "    auth: {bearer: env:PHLO_TEST_TOKEN}\n"));
    let out = phlo_in(dir.path(), &["run"], &[("PHLO_TEST_TOKEN", "tok-abcdef-123")]);
    assert_eq!(out.code, 4, "{}", out.stderr);
    assert!(out.stdout.contains("401 Unauthorized") && out.stdout.contains("check `auth`"), "{}", out.stdout);
    assert_eq!(refused.requests().len(), 1, "a refusal is not retried");

    let bad = Server::start(|r: &Request| match r.param("page") {
        Some("2") => Reply::json("{\"data\": [ {\"id\": 3,"),
        _ => Reply::json(json!({"data": records(1, 2)}).to_string()),
    });
    let dir = tempfile::tempdir().unwrap();
    project(dir.path(), &asset_yaml(&bad.url, "    records: /data\n    pagination: {style: page_number}\n"));
    let out = phlo_in(dir.path(), &["run"], &[]);
    assert_eq!(out.code, 4);
    assert!(out.stdout.contains("page 2 of `raw.items`") && out.stdout.contains("is not JSON"), "{}", out.stdout);
    let c = rusqlite::Connection::open(dir.path().join(".phlo/warehouse.db")).unwrap();
    let tables: i64 =
        c.query_row("SELECT count(*) FROM sqlite_master WHERE name = 'raw_items'", [], |r| r.get(0)).unwrap();
    assert_eq!(tables, 0, "nothing was written");

    let slow = Server::start(|_: &Request| Reply::json("[]").after(Duration::from_secs(3)));
    let dir = tempfile::tempdir().unwrap();
    project(
        dir.path(),
        &asset_yaml(&slow.url, "    request_timeout: 300ms\n    request_retries: 1\n    backoff: 10ms\n"),
    );
    let t0 = Instant::now();
    let out = phlo_in(dir.path(), &["run"], &[]);
    assert_eq!(out.code, 4);
    assert!(out.stdout.contains("timed out after 300 ms"), "{}", out.stdout);
    assert!(t0.elapsed() < Duration::from_secs(3), "{:?}", t0.elapsed());
    assert_eq!(slow.requests().len(), 2, "one retry");
}

/// An incremental asset sends the highest cursor seen on its next run, and fetches only the
/// new records; they are merged by key.
#[test]
fn an_incremental_second_run_fetches_only_new_records() {
    let data = std::sync::Arc::new(std::sync::Mutex::new(vec![
        json!({"id": 1, "v": "a", "updated_at": "2024-01-01T10:00:00Z"}),
        json!({"id": 2, "v": "b", "updated_at": "2024-01-02T10:00:00Z"}),
    ]));
    let d = std::sync::Arc::clone(&data);
    let server = Server::start(move |r: &Request| {
        let since = r.param("since").unwrap_or("").to_string();
        let rows: Vec<Value> =
            d.lock().unwrap().iter().filter(|x| x["updated_at"].as_str().unwrap() > since.as_str()).cloned().collect();
        Reply::json(json!(rows).to_string())
    });
    let dir = tempfile::tempdir().unwrap();
    project(
        dir.path(),
        &asset_yaml(
            &server.url,
            "    primary_key: [id]\n    incremental: {cursor_field: updated_at, param: since, initial: '2000-01-01'}\n",
        ),
    );
    let first = run_ok(dir.path());
    assert_eq!(first["assets"][0]["metadata"]["row_count"], 2);
    assert_eq!(server.requests()[0].param("since"), Some("2000-01-01"));
    data.lock().unwrap().push(json!({"id": 3, "v": "c", "updated_at": "2024-01-03T10:00:00Z"}));
    data.lock().unwrap()[0] = json!({"id": 1, "v": "a2", "updated_at": "2024-01-04T10:00:00Z"});
    let second = run_ok(dir.path());
    assert_eq!(server.requests()[1].param("since"), Some("2024-01-02T10:00:00Z"));
    assert_eq!(second["assets"][0]["metadata"]["row_count"], 2, "only the new and changed records");
    assert_eq!(count(dir.path(), "SELECT count(*) FROM raw_items"), 3);
    assert_eq!(count(dir.path(), "SELECT count(*) FROM raw_items WHERE id = 1 AND v = 'a2'"), 1);
    // the next run sends the cursor the second one committed
    let third = phlo_in(dir.path(), &["run", "--json"], &[]);
    assert_eq!(third.code, 0);
    assert_eq!(server.requests()[2].param("since"), Some("2024-01-04T10:00:00Z"));
}

/// A child endpoint per parent record: 50 repositories, 2 issues each, 4 at a time.
#[test]
fn a_substream_runs_once_per_parent() {
    let server = Server::start(|r: &Request| {
        if r.path == "/repos" {
            return Reply::json(
                json!((0..50).map(|i| json!({"name": format!("repo-{i}")})).collect::<Vec<_>>()).to_string(),
            );
        }
        let name = r.path.trim_start_matches("/repos/").trim_end_matches("/issues").to_string();
        Reply::json(json!([{"number": 1, "repo": name}, {"number": 2, "repo": name}]).to_string())
            .after(Duration::from_millis(20))
    });
    let dir = tempfile::tempdir().unwrap();
    let url = &server.url;
    project(
        dir.path(),
        &format!(
            "assets:\n  raw.repos:\n    type: rest\n    base_url: {url}\n    endpoint: /repos\n  raw.issues:\n    type: rest\n    base_url: {url}\n    parent: raw.repos\n    endpoint: /repos/{{parent.name}}/issues\n    concurrency: 4\n    primary_key: [parent_name, number]\n"
        ),
    );
    let t0 = Instant::now();
    let report = run_ok(dir.path());
    let issues = report["assets"].as_array().unwrap().iter().find(|a| a["key"] == "raw.issues").unwrap().clone();
    assert_eq!(issues["metadata"]["row_count"], 100, "{report:#}");
    assert_eq!(count(dir.path(), "SELECT count(DISTINCT parent_name) FROM raw_issues"), 50);
    assert_eq!(count(dir.path(), "SELECT count(*) FROM raw_issues WHERE parent_name = repo"), 100);
    // 50 × 20 ms one at a time is 1 s; four at a time well under
    assert!(t0.elapsed() < Duration::from_secs(10));
    let graph = phlo_in(dir.path(), &["assets", "list", "--json"], &[]).stdout;
    assert!(graph.contains("raw.repos"), "{graph}");
}

/// Bad input is a located error at validate: an unknown template field, an invalid JSON
/// pointer, an unresolvable secret; a probe checks the credentials.
#[test]
fn bad_rest_configs_are_located_errors_and_probes_check_credentials() {
    let dir = tempfile::tempdir().unwrap();
    for (extra, expect) in [
        ("    params: {q: '{owner}'}\n", "`{owner}` is no field"),
        ("    records: data\n", "is not a JSON pointer"),
        ("    auth: {bearer: env:PHLO_TEST_SURELY_UNSET}\n", "`PHLO_TEST_SURELY_UNSET` is not set"),
        (
            "    auth: {api_key: {name: key, value: file:missing.txt, in: query}}\n",
            "cannot read the file `missing.txt`",
        ),
        ("    pagination: {style: cursor}\n", "needs `cursor`"),
        ("    headers: {'Bad Name': x}\n", "`Bad Name` is not a header name"),
    ] {
        project(dir.path(), &asset_yaml("http://127.0.0.1:9", extra));
        let out = phlo_in(dir.path(), &["validate"], &[]);
        assert_ne!(out.code, 0, "{extra}");
        assert!(out.stderr.contains(expect), "{extra}: {}", out.stderr);
        assert!(out.stderr.contains("phlo.yaml:"), "located: {}", out.stderr);
    }
    project(dir.path(), &asset_yaml("'http://exa mple.com'", ""));
    let out = phlo_in(dir.path(), &["validate"], &[]);
    assert!(out.stderr.contains("is not an http(s) URL") && out.stderr.contains("phlo.yaml:4:"), "{}", out.stderr);
    // every mistake of one entry at once
    project(
        dir.path(),
        &asset_yaml(
            "http://127.0.0.1:9",
            "    params: {q: '{owner}'}\n    records: data\n    auth: {bearer: env:PHLO_TEST_SURELY_UNSET}\n",
        ),
    );
    let out = phlo_in(dir.path(), &["validate"], &[]);
    assert!(out.stderr.contains("3 error(s)"), "{}", out.stderr);
    let refused = Server::start(|r: &Request| {
        if r.header("authorization") == Some("Bearer good-token-1") {
            Reply::json("{}")
        } else {
            Reply::status(401, "")
        }
    });
    project(dir.path(), &asset_yaml(&refused.url, "    auth: {bearer: env:PHLO_TEST_TOKEN}\n    probe: /health\n"));
    let bad = phlo_in(dir.path(), &["validate", "--probe"], &[("PHLO_TEST_TOKEN", "bad-token-1")]);
    assert_ne!(bad.code, 0);
    assert!(bad.stderr.contains("probe of asset `raw.items` failed") && bad.stderr.contains("401"), "{}", bad.stderr);
    let good = phlo_in(dir.path(), &["validate", "--probe"], &[("PHLO_TEST_TOKEN", "good-token-1")]);
    assert_eq!(good.code, 0, "{}", good.stderr);
    assert!(
        good.stdout.contains("probe OK: asset raw.items: GET ") && good.stdout.contains("/health"),
        "{}",
        good.stdout
    );
    assert_eq!(refused.requests().last().unwrap().path, "/health");
}

/// A secret sent in a request that fails — the server echoes the request back in its error
/// — appears in no output (text, JSON, events, run history) and in no file of the project.
#[test]
fn a_secret_never_leaks() {
    const SECRET: &str = "sk-LEAKCHECK-7f3a9c2e1b";
    let server = Server::start(|r: &Request| {
        let echo = format!("bad request {} with {}", r.target, r.header("x-api-key").unwrap_or("-"));
        if r.param("page") == Some("2") {
            Reply::status(400, &echo)
        } else {
            Reply::json(json!(records(1, 2)).to_string())
        }
    });
    let dir = tempfile::tempdir().unwrap();
    project(
        dir.path(),
        &format!(
            "hooks:\n  console: {{}}\n  jsonl:\n    path: .phlo/events.jsonl\n{}    auth: {{api_key: {{name: token, value: env:PHLO_TEST_KEY, in: query}}}}\n    headers: {{X-Api-Key: 'env:PHLO_TEST_KEY'}}\n    pagination: {{style: page_number}}\n",
            asset_yaml(&server.url, "")
        ),
    );
    let env = [("PHLO_TEST_KEY", SECRET)];
    let mut outputs = Vec::new();
    for args in [
        &["run"][..],
        &["run", "--json"],
        &["validate"],
        &["validate", "--json"],
        &["assets", "list", "--json"],
        &["runs", "list", "--json"],
        &["status", "--json"],
    ] {
        let out = phlo_in(dir.path(), args, &env);
        outputs.push((args.join(" "), out.stdout + &out.stderr));
    }
    let id =
        json_of(&phlo_in(dir.path(), &["runs", "list", "--json"], &env))[0]["run_id"].as_str().unwrap().to_string();
    for args in [&["runs", "show", id.as_str(), "--json"][..], &["runs", "events", id.as_str()]] {
        let out = phlo_in(dir.path(), args, &env);
        outputs.push((args.join(" "), out.stdout + &out.stderr));
    }
    // the run log has the requests (with the key masked)
    let log = std::fs::read_to_string(dir.path().join(".phlo/events.jsonl")).unwrap();
    assert!(log.contains("\"source.request\"") && log.contains("token=***"), "{log}");
    // the request really carried the secret, and failed
    assert!(server.requests().iter().any(|r| r.param("token") == Some(SECRET)));
    assert!(outputs[0].1.contains("400"), "{}", outputs[0].1);
    for (what, text) in &outputs {
        assert!(!text.contains(SECRET), "`phlo {what}` printed the secret:\n{text}");
    }
    for p in written_files(dir.path()) {
        let bytes = std::fs::read(&p).unwrap();
        let found = bytes.windows(SECRET.len()).any(|w| w == SECRET.as_bytes());
        assert!(!found, "{} holds the secret", p.display());
    }
}

/// Every file under `dir` but the project file: what phlo wrote.
fn written_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let (mut todo, mut out) = (vec![dir.to_path_buf()], Vec::new());
    while let Some(p) = todo.pop() {
        if p.is_dir() {
            todo.extend(std::fs::read_dir(&p).unwrap().map(|e| e.unwrap().path()));
        } else if p.file_name().is_some_and(|n| n != "phlo.yaml") {
            out.push(p);
        }
    }
    out
}

/// `rate_limit: 20` spaces requests 50 ms apart: 11 pages take at least half a second.
#[test]
fn the_rate_limit_spaces_requests() {
    let server = Server::start(|r: &Request| {
        let p: u64 = r.param("page").and_then(|p| p.parse().ok()).unwrap_or(1);
        Reply::json(json!(if p <= 10 { records(p, 1) } else { Vec::new() }).to_string())
    });
    let dir = tempfile::tempdir().unwrap();
    project(dir.path(), &asset_yaml(&server.url, "    rate_limit: 20\n    pagination: {style: page_number}\n"));
    let t0 = Instant::now();
    let report = run_ok(dir.path());
    assert_eq!(report["assets"][0]["metadata"]["pages"], 11);
    assert!(t0.elapsed() >= Duration::from_millis(500), "{:?}", t0.elapsed());
}

/// A misspelt `cursor_field` is an error naming the fields there are, not a silent reload of
/// every record on every run.
#[test]
fn a_cursor_field_no_record_has_is_an_error() {
    let server = Server::start(|_: &Request| Reply::json(json!(records(1, 3)).to_string()));
    let dir = tempfile::tempdir().unwrap();
    project(dir.path(), &asset_yaml(&server.url, "    incremental: {cursor_field: updated, param: since}\n"));
    let out = phlo_in(dir.path(), &["run"], &[]);
    assert_eq!(out.code, 4, "{}", out.stderr);
    assert!(out.stdout.contains("no record has the incremental `cursor_field` `updated`"), "{}", out.stdout);
    assert!(out.stdout.contains("id, name, price"), "{}", out.stdout);
}

/// A numeric cursor is stored as a number and compared as one: after 999 comes 1000, and the
/// run after that asks for records after 1000 (as text, "1000" < "999" and the cursor stuck).
#[test]
fn a_numeric_cursor_compares_as_a_number() {
    let data =
        std::sync::Arc::new(std::sync::Mutex::new(vec![json!({"id": 1, "seq": 998}), json!({"id": 2, "seq": 999})]));
    let d = std::sync::Arc::clone(&data);
    let server = Server::start(move |r: &Request| {
        let since: i64 = r.param("after").map_or(0, |a| a.parse().unwrap());
        let rows: Vec<Value> =
            d.lock().unwrap().iter().filter(|x| x["seq"].as_i64().unwrap() > since).cloned().collect();
        Reply::json(json!(rows).to_string())
    });
    let dir = tempfile::tempdir().unwrap();
    project(
        dir.path(),
        &asset_yaml(&server.url, "    write: append\n    incremental: {cursor_field: seq, param: after}\n"),
    );
    run_ok(dir.path());
    data.lock().unwrap().push(json!({"id": 3, "seq": 1000}));
    run_ok(dir.path());
    assert_eq!(server.requests()[1].param("after"), Some("999"));
    let third = run_ok(dir.path());
    assert_eq!(server.requests()[2].param("after"), Some("1000"), "the cursor advanced past 999");
    assert_eq!(third["assets"][0]["metadata"]["row_count"], 0);
    assert_eq!(count(dir.path(), "SELECT count(*) FROM raw_items"), 3, "nothing appended twice");
}

/// A page whose records are null (an error body) fails the step naming the page, and a
/// replace table keeps its rows.
#[test]
fn a_page_with_null_records_fails_and_writes_nothing() {
    let calls = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
    let c = std::sync::Arc::clone(&calls);
    let server = Server::start(move |_: &Request| {
        if c.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0 {
            Reply::json(json!({"data": records(1, 3)}).to_string())
        } else {
            Reply::json(json!({"data": null, "error": "quota exceeded"}).to_string())
        }
    });
    let dir = tempfile::tempdir().unwrap();
    project(dir.path(), &asset_yaml(&server.url, "    records: /data\n"));
    run_ok(dir.path());
    let out = phlo_in(dir.path(), &["run", "--select", "raw.*", "--json"], &[]);
    assert_eq!(out.code, 4, "{}", out.stderr);
    let report = json_of(&out);
    let error = report["assets"][0]["error"].as_str().unwrap().to_string();
    assert!(error.contains("page 1") && error.contains("is null") && error.contains("/error"), "{error}");
    assert_eq!(count(dir.path(), "SELECT count(*) FROM raw_items"), 3, "the table keeps its rows");
}

/// Pagination that comes back to a URL (A → B → A) is an error at once, not requests until
/// the timeout; so is an API that ignores the page number (the same page again).
#[test]
fn pagination_that_circles_is_an_error() {
    let server = Server::start(|r: &Request| {
        let (id, next) = match r.param("p") {
            None => (0, "/items?p=a"),
            Some("a") => (1, "/items?p=b"),
            _ => (2, "/items?p=a"),
        };
        Reply::json(json!({"results": records(id, 1), "next": next}).to_string())
    });
    let dir = tempfile::tempdir().unwrap();
    project(
        dir.path(),
        &asset_yaml(&server.url, "    pagination: {style: next_url, next: /next}\n    records: /results\n"),
    );
    let t0 = Instant::now();
    let out = phlo_in(dir.path(), &["run", "--select", "raw.*", "--json"], &[]);
    assert_eq!(out.code, 4, "{}", out.stderr);
    let error = json_of(&out)["assets"][0]["error"].as_str().unwrap().to_string();
    assert!(error.contains("goes round in a circle") && error.contains("which was page 2"), "{error}");
    assert!(server.requests().len() <= 3, "{} requests", server.requests().len());
    assert!(t0.elapsed() < Duration::from_secs(5));

    let same = Server::start(|_: &Request| Reply::json(json!(records(1, 10)).to_string()));
    project(dir.path(), &asset_yaml(&same.url, "    pagination: {style: page_number, param: page}\n"));
    let out = phlo_in(dir.path(), &["run", "--select", "raw.*", "--json"], &[]);
    assert_eq!(out.code, 4, "{}", out.stderr);
    let error = json_of(&out)["assets"][0]["error"].as_str().unwrap().to_string();
    assert!(error.contains("is the same as page 1"), "{error}");
}

/// Test-local encoders, independent of phlo's: every form a secret can leak in.
fn leak_forms(secret: &str, basic_user: Option<&str>) -> Vec<String> {
    let percent = |upper: bool, plus: bool| -> String {
        secret
            .bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => char::from(b).to_string(),
                b' ' if plus => String::from("+"),
                _ if upper => format!("%{b:02X}"),
                _ => format!("%{b:02x}"),
            })
            .collect()
    };
    let json = serde_json::to_string(secret).unwrap();
    let mut forms = vec![
        secret.to_string(),
        percent(true, false),
        percent(false, false),
        percent(true, true),
        json.trim_matches('"').to_string(),
        json.trim_matches('"').replace('/', "\\/"),
    ];
    if let Some(user) = basic_user {
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let bytes = format!("{user}:{secret}").into_bytes();
        let mut b64 = String::new();
        for chunk in bytes.chunks(3) {
            let n = chunk.iter().enumerate().fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
            for i in 0..4 {
                if i <= chunk.len() {
                    b64.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]));
                } else {
                    b64.push('=');
                }
            }
        }
        forms.push(b64);
    }
    forms
}

/// The secret corpus: values holding `/ + = % & ? # " ' \ space` and non-ASCII, in query,
/// header, basic and bearer positions, each echoed back by the server in a failing answer —
/// and searched for, in every form, in every output and every file phlo wrote.
#[test]
fn secrets_leak_in_no_form() {
    let corpus = ["s3cr/et+val==", "p@ss w%rd&x?y#z", "q\"uo'te\\back-1", "ünïcødé ßecret"];
    let server = Server::start(|r: &Request| {
        let echo = format!(
            "refused {} auth={} key={}",
            r.target,
            r.header("authorization").unwrap_or("-"),
            r.header("x-api-key").unwrap_or("-")
        );
        Reply::status(400, &echo)
    });
    let positions = [
        ("query", "    auth: {api_key: {name: token, value: env:PHLO_TEST_SECRET, in: query}}\n", None),
        ("header", "    headers: {X-Api-Key: 'env:PHLO_TEST_SECRET'}\n", None),
        ("basic", "    auth: {basic: {username: admin, password: env:PHLO_TEST_SECRET}}\n", Some("admin")),
        ("bearer", "    auth: {bearer: env:PHLO_TEST_SECRET}\n", None),
    ];
    for secret in corpus {
        for (position, auth, user) in positions {
            let dir = tempfile::tempdir().unwrap();
            project(
                dir.path(),
                &format!(
                    "hooks:\n  jsonl:\n    path: .phlo/events.jsonl\n{}",
                    asset_yaml(&server.url, &format!("{auth}    params: {{q: 'a b'}}\n"))
                ),
            );
            let env = [("PHLO_TEST_SECRET", secret)];
            let mut outputs = Vec::new();
            for args in
                [&["run", "--select", "raw.*"][..], &["run", "--select", "raw.*", "--json"], &["validate", "--json"]]
            {
                let out = phlo_in(dir.path(), args, &env);
                outputs.push((args.join(" "), out.stdout + &out.stderr));
            }
            if !secret.is_ascii() && matches!(position, "header" | "bearer") {
                // a header carries visible ASCII only: refused where it is written, never sent
                assert!(outputs[0].1.contains("an HTTP header cannot carry"), "{position}: {}", outputs[0].1);
            } else {
                assert!(outputs[0].1.contains("400"), "{position}: {}", outputs[0].1);
                let id = json_of(&phlo_in(dir.path(), &["runs", "list", "--json"], &env))[0]["run_id"]
                    .as_str()
                    .unwrap()
                    .to_string();
                for args in [&["runs", "show", id.as_str(), "--json"][..], &["runs", "events", id.as_str()]] {
                    let out = phlo_in(dir.path(), args, &env);
                    outputs.push((args.join(" "), out.stdout + &out.stderr));
                }
            }
            let forms = leak_forms(secret, user);
            for (what, text) in &outputs {
                for f in &forms {
                    assert!(
                        !text.contains(f.as_str()),
                        "{position} {secret:?}: `phlo {what}` shows it as {f}:\n{text}"
                    );
                }
            }
            for p in written_files(dir.path()) {
                let bytes = std::fs::read(&p).unwrap();
                for f in &forms {
                    let found = bytes.windows(f.len()).any(|w| w == f.as_bytes());
                    assert!(!found, "{position} {secret:?}: {} holds it as {f}", p.display());
                }
            }
        }
    }
}

/// A secret too short to mask is refused where it is written; a `file:` secret outside the
/// project is refused unless the project says so.
#[test]
fn short_and_outside_secrets_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    project(dir.path(), &asset_yaml("http://127.0.0.1:9", "    auth: {bearer: env:PHLO_TEST_SHORT}\n"));
    let out = phlo_in(dir.path(), &["validate"], &[("PHLO_TEST_SHORT", "abc")]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("fewer than 4 characters") && out.stderr.contains("phlo.yaml:"), "{}", out.stderr);
    project(dir.path(), &asset_yaml("http://127.0.0.1:9", "    auth: {bearer: 'file:../../../etc/hostname'}\n"));
    let out = phlo_in(dir.path(), &["validate"], &[]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("outside the project directory"), "{}", out.stderr);
}

/// `validate --probe` sends the source's parameters and headers, and an answer of 4xx fails
/// the probe; a run whose request hangs past the asset's timeout ends at the timeout, its
/// process not held by the request.
#[test]
fn probes_send_params_and_a_hung_request_does_not_hold_the_run() {
    let server = Server::start(|r: &Request| {
        if r.param("region") == Some("eu") && r.header("x-tenant") == Some("acme") {
            Reply::json("[]")
        } else {
            Reply::status(404, "no such tenant")
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let with = "    params: {region: eu}\n    headers: {X-Tenant: acme}\n    probe: /items\n";
    project(dir.path(), &asset_yaml(&server.url, with));
    let out = phlo_in(dir.path(), &["validate", "--probe"], &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    project(dir.path(), &asset_yaml(&server.url, "    probe: /items\n"));
    let out = phlo_in(dir.path(), &["validate", "--probe"], &[]);
    assert_ne!(out.code, 0, "{}", out.stderr);
    assert!(out.stderr.contains("answered 404"), "{}", out.stderr);

    let slow = Server::start(|_: &Request| Reply::json("[]").after(Duration::from_secs(20)));
    project(dir.path(), &asset_yaml(&slow.url, "    timeout: 1s\n    request_retries: 0\n"));
    let t0 = Instant::now();
    let out = phlo_in(dir.path(), &["run", "--select", "raw.*", "--json"], &[]);
    assert_eq!(out.code, 4, "{}", out.stderr);
    assert!(t0.elapsed() < Duration::from_secs(8), "the process waited {:?}", t0.elapsed());
    // the request itself stopped at the asset's timeout: the attempt ended, nothing left running
    let error = json_of(&out)["assets"][0]["error"].as_str().unwrap().to_string();
    assert!(error.contains("timed out") && !error.contains("did not stop"), "{error}");
}

/// A substream reads its parent's actual table — the one its `table:` names — never a table
/// derived from the parent's key.
#[test]
fn a_substream_reads_its_parents_own_table() {
    let server = Server::start(|r: &Request| {
        if r.path == "/repos" {
            return Reply::json(json!([{"name": "fresh-1"}, {"name": "fresh-2"}]).to_string());
        }
        let name = r.path.trim_start_matches("/repos/").trim_end_matches("/issues").to_string();
        Reply::json(json!([{"number": 1, "repo": name}]).to_string())
    });
    let dir = tempfile::tempdir().unwrap();
    project(
        dir.path(),
        &format!(
            "assets:\n  raw.repos:\n    type: rest\n    base_url: {url}\n    endpoint: /repos\n    table: repositories\n  \
             raw.issues:\n    type: rest\n    base_url: {url}\n    parent: raw.repos\n    endpoint: /repos/{{parent.name}}/issues\n",
            url = server.url
        ),
    );
    // a stale table under the derived name must not be read
    std::fs::create_dir_all(dir.path().join(".phlo")).unwrap();
    rusqlite::Connection::open(dir.path().join(".phlo/warehouse.db"))
        .unwrap()
        .execute_batch("CREATE TABLE raw_repos (name TEXT); INSERT INTO raw_repos VALUES ('stale');")
        .unwrap();
    run_ok(dir.path());
    assert_eq!(count(dir.path(), "SELECT count(*) FROM raw_issues WHERE repo LIKE 'fresh-%'"), 2);
    assert_eq!(count(dir.path(), "SELECT count(*) FROM raw_issues WHERE repo = 'stale'"), 0);
}

/// A secret not set in this environment keeps only its asset from running: `validate` says so
/// at its place, a run that selects it refuses to start, and every other command and run works.
#[test]
fn an_unset_secret_blocks_only_its_asset() {
    let dir = tempfile::tempdir().unwrap();
    let yaml = format!(
        "{}  m.other:\n    type: sql\n    sql: SELECT 1 AS x\n",
        asset_yaml("http://127.0.0.1:9", "    auth: {bearer: env:PHLO_TEST_SURELY_UNSET_TOKEN}\n")
    );
    project(dir.path(), &yaml);
    let out = phlo_in(dir.path(), &["validate"], &[]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("PHLO_TEST_SURELY_UNSET_TOKEN") && out.stderr.contains("phlo.yaml:"), "{}", out.stderr);
    for args in [
        &["run", "--select", "m.other"][..],
        &["assets", "list", "--json"],
        &["runs", "list"],
        &["status"],
        &["schedule", "list"],
    ] {
        let out = phlo_in(dir.path(), args, &[]);
        assert_eq!(out.code, 0, "{args:?}: {}", out.stderr);
    }
    let out = phlo_in(dir.path(), &["run", "--select", "raw.items"], &[]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("PHLO_TEST_SURELY_UNSET_TOKEN"), "{}", out.stderr);
    let out = phlo_in(dir.path(), &["run"], &[]);
    assert_eq!(out.code, 2, "the whole project selects it: {}", out.stderr);
}

/// URLs are resolved by RFC 3986, and a shape that would leave `base_url`'s path is an error
/// naming the URL it would request: `/airports` under `.../v1`, or `airports` under a base
/// that does not end with `/`.
#[test]
fn endpoints_resolve_by_rfc_3986_or_say_where_they_would_go() {
    let server = Server::start(|r: &Request| {
        if r.path == "/v1/airports" { Reply::json(json!(records(1, 2)).to_string()) } else { Reply::status(404, "") }
    });
    let dir = tempfile::tempdir().unwrap();
    let yaml = |base: &str, endpoint: &str| {
        format!("assets:\n  raw.items:\n    type: rest\n    base_url: {base}\n    endpoint: {endpoint}\n")
    };
    project(dir.path(), &yaml(&format!("{}/v1", server.url), "/airports"));
    let out = phlo_in(dir.path(), &["validate"], &[]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains(&format!("the request goes to `{}/airports`", server.url)), "{}", out.stderr);
    assert!(out.stderr.contains(&format!("base_url: {}/v1/", server.url)), "{}", out.stderr);
    project(dir.path(), &yaml(&format!("{}/v1", server.url), "airports"));
    let out = phlo_in(dir.path(), &["validate"], &[]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("does not end with `/`"), "{}", out.stderr);
    project(dir.path(), &yaml(&format!("{}/v1/", server.url), "airports"));
    let report = run_ok(dir.path());
    assert_eq!(report["assets"][0]["metadata"]["row_count"], 2, "{report:#}");
    assert!(server.requests().iter().all(|r| r.path == "/v1/airports"));
}
