//! CSV ingestion into SQLite (target ≥ 500,000 rows/s for a 1,000,000-row, 6-column file)
//! and the quickstart end to end as a whole `phlo run` process.

use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use phlo_core::data::TableStore;
use phlo_plugin_sqlite::Warehouse;

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

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("orders.csv");
    let rows = 1_000_000;
    write_orders(&csv, rows);
    let warehouse = Warehouse::new(dir.path().join("w.db"), Duration::from_secs(5));

    let mut g = c.benchmark_group("ingest");
    g.sample_size(10).measurement_time(Duration::from_secs(40)).throughput(Throughput::Elements(rows));
    g.bench_function("csv 1M rows x 6 columns into sqlite (read + infer + replace)", |b| {
        b.iter(|| {
            let data =
                phlo_plugin_files::read_csv(&csv, "orders.csv", &phlo_plugin_files::CsvFormat::default()).unwrap();
            assert_eq!(data.len() as u64, rows);
            warehouse.replace("raw_orders", &data).unwrap()
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
