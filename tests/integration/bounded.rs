//! Flat memory, in CI-sized form: every reader streams. A whole `phlo run` process's peak RSS
//! (its own, taken by `wait4` in a Python wrapper) stays under [`CEILING_MB`] while it loads
//! inputs that it could not hold under that ceiling (a CSV or JSON Lines file of ~30 MB is
//! 150–250 MB as rows in memory), a command prints 67 MB, and a REST series brings 60 MB.
//! `benches/side_by_side.py --memory` measures the same at full size (1 GB files).
//! Also: a long series stops at the default `max_pages`, and a stream that breaks late writes
//! nothing.

use std::io::Write;
use std::path::Path;

use serde_json::Value;

use crate::cli::phlo_in;

use crate::rest::server::{Reply, Server};

/// The most a `phlo run` process may hold at its peak, in MB.
const CEILING_MB: f64 = 64.0;

/// Runs `phlo run` in `dir`; its exit code and peak RSS in MB.
fn peak_rss(dir: &Path) -> (i32, f64, String) {
    let wrapper = "import os, subprocess, sys\n\
                   p = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)\n\
                   err = p.stderr.read()\n\
                   _, status, usage = os.wait4(p.pid, 0)\n\
                   sys.stderr.write(err.decode(errors='replace'))\n\
                   print(usage.ru_maxrss)\n\
                   sys.exit(os.waitstatus_to_exitcode(status))\n";
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg(wrapper)
        .arg(assert_cmd::cargo::cargo_bin("phlo"))
        .args(["run", "--project"])
        .arg(dir)
        .output()
        .expect("python3 runs");
    let kb: f64 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap_or(f64::MAX);
    eprintln!("peak RSS of `phlo run` in {}: {:.1} MB", dir.display(), kb / 1024.0);
    (out.status.code().unwrap_or(-1), kb / 1024.0, String::from_utf8_lossy(&out.stderr).into_owned())
}

fn write_orders_csv(path: &Path, rows: u64) {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    writeln!(f, "order_id,customer_id,product_id,quantity,order_date,status").unwrap();
    for i in 0..rows {
        writeln!(f, "{i},{},{},{},2024-02-{:02},paid", i * 31 % 5000, i * 17 % 300, 1 + i % 5, 1 + i * 7 % 28).unwrap();
    }
}

fn count(dir: &Path, table: &str) -> i64 {
    let c = rusqlite::Connection::open(dir.join(".phlo/warehouse.db")).unwrap();
    c.query_row(&format!("SELECT count(*) FROM \"{table}\""), [], |r| r.get(0)).unwrap()
}

#[test]
fn csv_and_json_lines_loads_hold_a_few_batches_not_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let rows = 800_000;
    write_orders_csv(&dir.path().join("orders.csv"), rows);
    {
        let mut f = std::io::BufWriter::new(std::fs::File::create(dir.path().join("events.jsonl")).unwrap());
        for i in 0..400_000u64 {
            writeln!(f, r#"{{"id":{i},"kind":"click","page":"/p/{}","score":{}.5,"ok":true}}"#, i % 977, i % 100)
                .unwrap();
        }
    }
    let size = |f: &str| std::fs::metadata(dir.path().join(f)).unwrap().len() as f64 / 1e6;
    assert!(size("orders.csv") > 22.0 && size("events.jsonl") > 22.0);
    for (kind, file, table, n) in
        [("csv", "orders.csv", "raw_orders", rows as i64), ("jsonl", "events.jsonl", "raw_events", 400_000)]
    {
        let key = table.replace('_', ".");
        std::fs::write(
            dir.path().join("phlo.yaml"),
            format!("assets:\n  {key}:\n    type: {kind}\n    path: {file}\n"),
        )
        .unwrap();
        let (code, peak, err) = peak_rss(dir.path());
        assert_eq!(code, 0, "{err}");
        assert_eq!(count(dir.path(), table), n);
        assert!(peak < CEILING_MB, "{kind}: {:.0} MB loaded with a peak RSS of {peak:.1} MB", size(file));
    }
}

#[test]
fn a_chatty_command_keeps_its_output_in_its_log_not_in_memory() {
    let dir = tempfile::tempdir().unwrap();
    // 64 MB in 1 MB lines, and a last line of 3 MB without a line break
    std::fs::write(
        dir.path().join("phlo.yaml"),
        "assets:\n  ops.chatty:\n    type: command\n    program: sh\n    args: ['-c', 'i=0; while [ $i -lt 64 ]; do \
         head -c 1048575 /dev/zero | tr \"\\\\0\" a; echo; i=$((i+1)); done; head -c 3000000 /dev/zero | tr \"\\\\0\" \
         b']\n",
    )
    .unwrap();
    let (code, peak, err) = peak_rss(dir.path());
    assert_eq!(code, 0, "{err}");
    assert!(peak < CEILING_MB, "a command printing 67 MB: peak RSS {peak:.1} MB");
    let runs = phlo_in(dir.path(), &["runs", "list", "--json"], &[]);
    let run_id = serde_json::from_str::<Value>(&runs.stdout).unwrap()[0]["run_id"].as_str().unwrap().to_string();
    let log = dir.path().join(format!(".phlo/logs/{run_id}/ops.chatty.log"));
    assert_eq!(std::fs::metadata(&log).unwrap().len(), 64 * 1_048_576 + 3_000_000 + 45, "the whole output");
    // the events carry an excerpt: every line cut to 2,000 bytes, saying by how much
    let events = phlo_in(dir.path(), &["runs", "events", &run_id], &[]);
    assert!(events.stdout.len() < 200_000, "{} bytes of events", events.stdout.len());
    assert!(events.stdout.contains("… [1046575 more bytes]") && events.stdout.contains("… [2998000 more bytes]"));
    assert!(events.stdout.contains("… 25 line(s) not shown here; the whole output is in .phlo/logs/"));
}

/// A REST series of 400 pages of 1,000 records (~60 MB), next-URL paginated.
fn big_series() -> Server {
    Server::start(|req| {
        let page: u64 = req.param("page").and_then(|p| p.parse().ok()).unwrap_or(1);
        let start = (page - 1) * 1_000;
        let recs: Vec<String> = (start..start + 1_000)
            .map(|i| format!(r#"{{"id":{i},"note":"{}","at":"2024-02-{:02}T10:00:00Z"}}"#, "x".repeat(100), 1 + i % 28))
            .collect();
        let next = if page < 400 { format!("\"/items?page={}\"", page + 1) } else { String::from("null") };
        Reply::json(format!(r#"{{"data":[{}],"next":{next}}}"#, recs.join(",")))
    })
}

#[test]
fn a_long_rest_series_is_held_on_disk_not_in_memory() {
    let server = big_series();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("phlo.yaml"),
        format!(
            "assets:\n  raw.items:\n    type: rest\n    base_url: {}/\n    endpoint: items\n    records: /data\n    \
             pagination: {{style: next_url, next: /next}}\n",
            server.url
        ),
    )
    .unwrap();
    let (code, peak, err) = peak_rss(dir.path());
    assert_eq!(code, 0, "{err}");
    assert_eq!(count(dir.path(), "raw_items"), 400_000);
    assert!(peak < CEILING_MB, "a 60 MB REST series: peak RSS {peak:.1} MB");
}

/// An API that always has a next page stops at the default `max_pages` (10,000) with an error,
/// and nothing is written.
#[test]
fn the_default_max_pages_stops_an_endless_series() {
    let server = Server::start(|req| {
        let page: u64 = req.param("page").and_then(|p| p.parse().ok()).unwrap_or(1);
        Reply::json(format!(r#"{{"data":[{{"id":{page}}}],"next":"/items?page={}"}}"#, page + 1))
    });
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("phlo.yaml"),
        format!(
            "assets:\n  raw.items:\n    type: rest\n    base_url: {}/\n    endpoint: items\n    records: /data\n    \
             pagination: {{style: next_url, next: /next}}\n    timeout: 10m\n",
            server.url
        ),
    )
    .unwrap();
    let out = phlo_in(dir.path(), &["run", "--select", "raw.items"], &[]);
    assert_eq!(out.code, 4, "{}", out.stdout);
    assert!(
        out.stdout.contains("read 10000 pages without reaching the end (the default `max_pages`)"),
        "{}",
        out.stdout
    );
    assert_eq!(server.requests().len(), 10_000);
    let c = rusqlite::Connection::open(dir.path().join(".phlo/warehouse.db")).unwrap();
    let tables: i64 =
        c.query_row("SELECT count(*) FROM sqlite_master WHERE name = 'raw_items'", [], |r| r.get(0)).unwrap();
    assert_eq!(tables, 0, "nothing written");
}

/// A broken quote in the last rows of a large file: an error at its line, nothing written
/// (the rows before it streamed into a transaction that is rolled back).
#[test]
fn a_break_at_the_end_of_a_large_file_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("orders.csv");
    write_orders_csv(&csv, 300_000);
    std::fs::OpenOptions::new()
        .append(true)
        .open(&csv)
        .unwrap()
        .write_all(b"300000,1,2,3,2024-02-01,\"pa\"id\n")
        .unwrap();
    std::fs::write(dir.path().join("phlo.yaml"), "assets:\n  raw.orders:\n    type: csv\n    path: orders.csv\n")
        .unwrap();
    let out = phlo_in(dir.path(), &["run", "--select", "raw.orders"], &[]);
    assert_eq!(out.code, 4);
    assert!(out.stdout.contains("orders.csv:300002:29: `i` follows the closing quote"), "{}", out.stdout);
    let c = rusqlite::Connection::open(dir.path().join(".phlo/warehouse.db")).unwrap();
    let tables: i64 =
        c.query_row("SELECT count(*) FROM sqlite_master WHERE name = 'raw_orders'", [], |r| r.get(0)).unwrap();
    assert_eq!(tables, 0, "nothing written");
}
