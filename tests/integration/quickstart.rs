//! The quickstart, run as a user would: the warehouse and the report hold the right numbers,
//! computed here independently from the CSV files.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::Duration;

use phlo_core::data::{Cell, QueryEngine};
use phlo_plugin_sqlite::Warehouse;

use crate::cli::{json, phlo_in};

pub fn copy_quickstart(to: &Path) {
    let from = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/quickstart");
    std::fs::copy(from.join("phlo.yaml"), to.join("phlo.yaml")).unwrap();
    std::fs::create_dir_all(to.join("data")).unwrap();
    for f in ["customers.csv", "products.csv", "orders.csv"] {
        std::fs::copy(from.join("data").join(f), to.join("data").join(f)).unwrap();
    }
}

fn read_csv(path: &Path) -> Vec<HashMap<String, String>> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    lines.map(|l| header.iter().map(|h| h.to_string()).zip(l.split(',').map(str::to_string)).collect()).collect()
}

#[test]
fn the_quickstart_runs_green_but_for_the_deliberate_warning_and_holds_the_right_numbers() {
    let dir = tempfile::tempdir().unwrap();
    copy_quickstart(dir.path());
    let run = phlo_in(dir.path(), &["run", "--json"], &[("PHLO_LOG", "off")]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let report = json(&run);
    assert_eq!(report["status"], "succeeded");
    let failed_checks: Vec<(&str, &str)> = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["passed"] == false)
        .map(|c| (c["name"].as_str().unwrap(), c["severity"].as_str().unwrap()))
        .collect();
    assert_eq!(failed_checks, [("range_lifetime_value", "warn")]);

    // independent computation from the CSV files
    let orders = read_csv(&dir.path().join("data/orders.csv"));
    let prices: HashMap<String, f64> = read_csv(&dir.path().join("data/products.csv"))
        .into_iter()
        .map(|p| (p["product_id"].clone(), p["price"].parse().unwrap()))
        .collect();
    let kept: Vec<&HashMap<String, String>> =
        orders.iter().filter(|o| o["status"] == "paid" || o["status"] == "shipped").collect();
    let mut by_day: BTreeMap<String, f64> = BTreeMap::new();
    for o in &kept {
        let amount = (o["quantity"].parse::<f64>().unwrap() * prices[&o["product_id"]] * 100.0).round() / 100.0;
        *by_day.entry(o["order_date"].clone()).or_default() += amount;
    }
    let total: f64 = by_day.values().sum();

    let w = Warehouse::new(dir.path().join(".phlo/warehouse.db"), Duration::from_secs(1));
    let one = |sql: &str| w.query(sql).unwrap().rows[0][0].clone();
    assert_eq!(one("SELECT count(*) FROM raw_orders"), Cell::Int(4000));
    assert_eq!(one("SELECT count(*) FROM staging_orders"), Cell::Int(kept.len() as i64));
    let Cell::Real(revenue) = one("SELECT sum(revenue) FROM marts_daily_revenue") else { panic!() };
    assert!((revenue - total).abs() < 0.05, "{revenue} vs {total}");
    assert_eq!(one("SELECT count(*) FROM marts_daily_revenue"), Cell::Int(by_day.len() as i64));
    let Cell::Real(first_day) = one("SELECT revenue FROM marts_daily_revenue WHERE day = '2024-01-01'") else {
        panic!()
    };
    assert!((first_day - by_day["2024-01-01"]).abs() < 0.01);

    // the latest partition of the partitioned mart
    let Cell::Int(categories) =
        one("SELECT count(*) FROM marts_category_revenue_daily WHERE partition_key = '2024-03-31'")
    else {
        panic!()
    };
    assert!(categories > 0);

    // the report on disk: a header and one line per day
    let report_csv = std::fs::read_to_string(dir.path().join(".phlo/reports/daily_revenue.csv")).unwrap();
    assert!(report_csv.starts_with("day,orders,revenue\n2024-01-01,"), "{report_csv}");
    assert_eq!(report_csv.lines().count(), by_day.len() + 1);

    // a backfill of the partitioned mart
    let run = phlo_in(
        dir.path(),
        &["run", "--select", "marts.category_revenue_daily", "--partition-range", "2024-01-01..2024-01-07", "--json"],
        &[("PHLO_LOG", "off")],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(json(&run)["assets"].as_array().unwrap().len(), 7);
    assert_eq!(one("SELECT count(DISTINCT partition_key) FROM marts_category_revenue_daily"), Cell::Int(8));
}

#[test]
fn a_broken_input_fails_its_asset_skips_downstream_and_exits_4() {
    let dir = tempfile::tempdir().unwrap();
    copy_quickstart(dir.path());
    std::fs::write(dir.path().join("data/products.csv"), "product_id,name,category,price\n1,x,books,abc\n").unwrap();
    let run = phlo_in(dir.path(), &["run", "--json"], &[("PHLO_LOG", "off")]);
    assert_eq!(run.code, 4, "{}", run.stderr);
    let v = json(&run);
    let status = |k: &str| v["assets"].as_array().unwrap().iter().find(|a| a["key"] == k).unwrap()["status"].clone();
    assert_eq!(status("raw.products"), "failed");
    assert_eq!(status("staging.orders"), "skipped");
    assert_eq!(status("publish.revenue_report"), "skipped");
    assert_eq!(status("raw.orders"), "succeeded");
    let err = v["assets"].as_array().unwrap().iter().find(|a| a["key"] == "raw.products").unwrap()["error"].clone();
    assert_eq!(err, "data/products.csv:2:4: `abc` is not a valid real for column `price`");
}

/// On a terminal (a pseudo-terminal made by `script`), `phlo run` draws a progress bar next to
/// the console lines and still prints the summary.
#[cfg(unix)]
#[test]
fn a_terminal_gets_a_progress_bar() {
    if std::process::Command::new("script").arg("--version").output().is_err() {
        eprintln!("`script` (util-linux) is not installed; skipping");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    copy_quickstart(dir.path());
    let phlo = assert_cmd::cargo::cargo_bin("phlo");
    let out = std::process::Command::new("script")
        .args(["-qec", &format!("{} run", phlo.display()), "/dev/null"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    // the quickstart's 8 assets and the 3 of the `echo` example plugin (these tests build it in)
    assert!(text.contains("/11 "), "no progress bar in: {text}");
    assert!(text.contains("▶ raw.orders (ingestion)"), "{text}");
    assert!(text.contains("11 succeeded, 0 failed, 0 skipped"), "{text}");
}
