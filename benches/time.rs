//! Time. Targets: the next fire time of a cron line ≤ 2 µs per tick (in UTC and in a
//! timezone with daylight saving, across a change); listing 1,000,000 hourly partition
//! keys ≤ 200 ms.

use std::hint::black_box;

use chrono::{DateTime, Duration, TimeZone, Utc};
use criterion::{Criterion, criterion_group, criterion_main};
use phlo_core::schedule::CronSchedule;
use phlo_core::spec::partition::{Granularity, TimePartitions};

fn ticks(s: &CronSchedule, from: DateTime<Utc>, n: usize) -> DateTime<Utc> {
    let mut t = from;
    for _ in 0..n {
        t = s.next_after(t).unwrap();
    }
    t
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("cron");
    // 1,000 ticks per iteration: the figure per tick is the time / 1,000
    let autumn = Utc.with_ymd_and_hms(2024, 10, 26, 12, 0, 0).unwrap();
    for (line, tz) in [
        ("*/15 * * * *", "UTC"),
        ("*/15 * * * *", "Europe/Paris"),
        ("0 2 * * *", "Europe/Paris"),
        ("30 6 * * 1-5", "America/New_York"),
        ("0 0 13 * 5", "UTC"),
    ] {
        let s = CronSchedule::parse(line, Some(tz)).unwrap();
        g.bench_function(format!("1000 ticks/{line}/{tz}"), |b| b.iter(|| black_box(ticks(&s, autumn, 1000))));
    }
    g.finish();

    let mut g = c.benchmark_group("partitions");
    g.sample_size(10);
    let start = Utc.with_ymd_and_hms(2000, 1, 1, 0, 0, 0).unwrap();
    let now = start + Duration::hours(1_000_000);
    for tz in ["UTC", "Europe/Paris"] {
        let p = TimePartitions::new(Granularity::Hourly, "2000-01-01T00:00", None, Some(tz)).unwrap();
        g.bench_function(format!("1M hourly keys/{tz}"), |b| b.iter(|| black_box(p.keys(now).len())));
    }
    let p = TimePartitions::new(Granularity::Daily, "2000-01-01", None, Some("Europe/Paris")).unwrap();
    g.bench_function("latest daily/Europe/Paris", |b| b.iter(|| black_box(p.latest(now))));
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
