//! The REST source end to end (target ≥ 50,000 records/s): `phlo run` as a whole process
//! reads 100 pages of 1,000 JSON records each from a real HTTP server on loopback and writes
//! them to the SQLite warehouse (replace), and the same merged by primary key.

use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};

#[path = "support/process.rs"]
mod process;
#[path = "support/http_server.rs"]
mod server;

const PAGES: u64 = 100;
const PER_PAGE: u64 = 1_000;

fn bench(c: &mut Criterion) {
    // the pages are made once; the server only sends them
    let pages: Vec<Vec<u8>> = (0..PAGES)
        .map(|p| {
            let records: Vec<serde_json::Value> = (0..PER_PAGE)
                .map(|i| {
                    let id = p * PER_PAGE + i;
                    serde_json::json!({
                        "id": id, "name": format!("customer {id}"), "country": "NL",
                        "balance": id as f64 * 0.25, "active": id.is_multiple_of(3), "updated_at": "2024-03-01T10:00:00Z"
                    })
                })
                .collect();
            serde_json::to_vec(&serde_json::json!({ "data": records })).unwrap()
        })
        .collect();
    let srv = server::Server::start(move |r: &server::Request| {
        let page: usize = r.param("page").and_then(|p| p.parse().ok()).unwrap_or(1);
        match pages.get(page - 1) {
            Some(body) => server::Reply::json(body.clone()),
            None => server::Reply::json("{\"data\": []}"),
        }
    });
    let mut g = c.benchmark_group("rest");
    g.sample_size(10).measurement_time(Duration::from_secs(20)).throughput(Throughput::Elements(PAGES * PER_PAGE));
    for (name, extra) in [("replace", ""), ("merge by id", "    primary_key: [id]\n")] {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("phlo.yaml"),
            format!(
                "assets:\n  raw.customers:\n    type: rest\n    base_url: {}\n    endpoint: /customers\n    records: /data\n    pagination: {{style: page_number, page_size_param: per_page, page_size: {PER_PAGE}}}\n{extra}",
                srv.url
            ),
        )
        .unwrap();
        g.bench_function(format!("100 pages × 1,000 records to SQLite, {name} (whole process)"), |b| {
            b.iter(|| process::run_in(dir.path(), &["run", "--select", "raw.customers"]));
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
