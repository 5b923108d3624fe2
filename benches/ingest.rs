//! Ingestion into SQLite as `phlo run` does it, whole processes: a 1,000,000-row, 6-column
//! CSV file and the same records as JSON Lines (streamed: two passes, parse and insert on two
//! threads; targets: CSV ≤ 0.6 × `sqlite3 .import` — see `side_by_side.py` — and JSON Lines
//! ≤ 1.5 × CSV), and the quickstart end to end.

use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};

fn write_orders(path: &Path, rows: u64) {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    writeln!(f, "order_id,customer_id,product_id,quantity,order_date,status").unwrap();
    let statuses = ["paid", "shipped", "cancelled", "refunded"];
    for i in 0..rows {
        let day = 1 + (i * 7 % 28);
        writeln!(
            f,
            "{i},{},{},{},2024-02-{day:02},{}",
            i * 31 % 5000,
            i * 17 % 300,
            1 + i % 5,
            statuses[(i % 4) as usize]
        )
        .unwrap();
    }
}

fn write_orders_jsonl(path: &Path, rows: u64) {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let statuses = ["paid", "shipped", "cancelled", "refunded"];
    for i in 0..rows {
        writeln!(
            f,
            r#"{{"order_id":{i},"customer_id":{},"product_id":{},"quantity":{},"order_date":"2024-02-{:02}","status":"{}"}}"#,
            i * 31 % 5000,
            i * 17 % 300,
            1 + i % 5,
            1 + (i * 7 % 28),
            statuses[(i % 4) as usize]
        )
        .unwrap();
    }
}

/// `phlo run` in `dir`, checked.
fn phlo_run(dir: &Path) {
    let out = Command::new(env!("CARGO_BIN_EXE_phlo"))
        .args(["run", "--json"])
        .env("PHLO_LOG", "off")
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let rows = 1_000_000;
    write_orders(&dir.path().join("orders.csv"), rows);
    write_orders_jsonl(&dir.path().join("orders.jsonl"), rows);
    let csv = dir.path().join("csv");
    let jsonl = dir.path().join("jsonl");
    for (project, kind) in [(&csv, "csv"), (&jsonl, "jsonl")] {
        std::fs::create_dir_all(project).unwrap();
        std::fs::rename(dir.path().join(format!("orders.{kind}")), project.join(format!("orders.{kind}"))).unwrap();
        std::fs::write(
            project.join("phlo.yaml"),
            format!("assets:\n  raw.orders:\n    type: {kind}\n    path: orders.{kind}\n"),
        )
        .unwrap();
    }

    let mut g = c.benchmark_group("ingest");
    g.sample_size(10).measurement_time(Duration::from_secs(20)).throughput(Throughput::Elements(rows));
    g.bench_function("csv 1M rows x 6 columns into sqlite (phlo run, whole process)", |b| b.iter(|| phlo_run(&csv)));
    g.bench_function("jsonl 1M records x 6 fields into sqlite (phlo run, whole process)", |b| {
        b.iter(|| phlo_run(&jsonl));
    });
    // the reader alone, in memory (the library function; runs stream instead)
    let file = csv.join("orders.csv");
    g.bench_function("csv 1M rows x 6 columns read into memory (read_csv)", |b| {
        b.iter(|| {
            let data =
                phlo_plugin_files::read_csv(&file, "orders.csv", &phlo_plugin_files::CsvFormat::default()).unwrap();
            assert_eq!(data.len() as u64, rows);
        });
    });
    g.finish();

    // The quickstart end to end, warm: a fresh copy per iteration is not needed (runs replace).
    let project = tempfile::tempdir().unwrap();
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/quickstart");
    std::fs::copy(src.join("phlo.yaml"), project.path().join("phlo.yaml")).unwrap();
    std::fs::create_dir_all(project.path().join("data")).unwrap();
    for f in ["customers.csv", "products.csv", "orders.csv"] {
        std::fs::copy(src.join("data").join(f), project.path().join("data").join(f)).unwrap();
    }
    let mut g = c.benchmark_group("quickstart");
    g.sample_size(20);
    g.bench_function("phlo run (whole process, 12 assets, 14 checks)", |b| {
        b.iter(|| {
            let out = Command::new(env!("CARGO_BIN_EXE_phlo"))
                .args(["run", "--json"])
                .env("PHLO_LOG", "off")
                .current_dir(project.path())
                .output()
                .unwrap();
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        });
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
