//! Tests of time-window partitions.
use chrono::TimeZone;

use super::*;
use crate::spec::partition::PartitionSpec;

fn utc(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, m, d, h, min, 0).unwrap()
}

fn later() -> DateTime<Utc> {
    utc(2100, 1, 1, 0, 0)
}

fn part(g: Granularity, start: &str, end: Option<&str>, tz: Option<&str>) -> TimePartitions {
    TimePartitions::new(g, start, end, tz).unwrap()
}

#[test]
fn keys_and_ranges_per_granularity() {
    let d = PartitionSpec::Time(part(Granularity::Daily, "2024-02-27", Some("2024-03-02"), None));
    assert_eq!(
        d.range("2024-02-27", "2024-03-01", later()).unwrap(),
        ["2024-02-27", "2024-02-28", "2024-02-29", "2024-03-01"]
    );
    let h = PartitionSpec::Time(part(Granularity::Hourly, "2024-01-01T22:00", None, None));
    assert_eq!(
        h.range("2024-01-01-23:00", "2024-01-02-01:00", later()).unwrap(),
        ["2024-01-01-23:00", "2024-01-02-00:00", "2024-01-02-01:00"]
    );
    // weeks start on Sunday unless told otherwise
    let w = PartitionSpec::Time(part(Granularity::Weekly, "2024-01-07", None, None));
    assert_eq!(w.range("2024-01-14", "2024-01-28", later()).unwrap(), ["2024-01-14", "2024-01-21", "2024-01-28"]);
    assert!(w.check_key("2024-01-15", later()).is_err());
    let m = PartitionSpec::Time(part(Granularity::Monthly, "2023-11-01", None, None));
    assert_eq!(m.range("2023-12-01", "2024-02-01", later()).unwrap(), ["2023-12-01", "2024-01-01", "2024-02-01"]);
}

#[test]
fn the_end_bounds_and_partial_windows_are_dropped() {
    let now = utc(2024, 3, 15, 10, 30);
    let long = part(Granularity::Daily, "2024-01-01", Some("2030-01-01"), None);
    assert_eq!(long.latest(now).as_deref(), Some("2024-03-14"));
    assert_eq!(long.keys(now).len(), 74);
    let cut = part(Granularity::Daily, "2024-01-01", Some("2024-01-05T12:00"), None);
    assert_eq!(cut.keys(later()), ["2024-01-01", "2024-01-02", "2024-01-03", "2024-01-04"]);
    assert!(PartitionSpec::Time(cut).to_string().contains("until 2024-01-05 12:00"));
    let open = part(Granularity::Daily, "2024-01-01", None, None);
    assert_eq!(open.keys(utc(2024, 1, 3, 12, 0)), ["2024-01-01", "2024-01-02"]);
    assert_eq!(open.keys(utc(2024, 1, 1, 12, 0)), Vec::<String>::new());
    assert_eq!(open.latest(utc(2024, 1, 1, 12, 0)), None);
    // the window in progress is not a partition yet
    let e = open.check_key("2024-01-03", utc(2024, 1, 3, 12, 0)).unwrap_err();
    assert!(matches!(e, PartitionError::NotComplete { .. }), "{e}");
    assert!(open.check_key("2024-01-02", utc(2024, 1, 3, 12, 0)).is_ok());
}

#[test]
fn end_offset_moves_the_last_partition() {
    let now = utc(2024, 3, 15, 10, 30);
    let with = |k: i32, end: Option<&str>| {
        let o = WindowOptions { end_offset: k, ..WindowOptions::default() };
        TimePartitions::with_options(Granularity::Daily, "2024-01-01", end, None, o).unwrap()
    };
    assert_eq!(with(1, None).latest(now).as_deref(), Some("2024-03-15"));
    assert_eq!(with(1, None).keys(now).len(), 75);
    assert_eq!(with(-1, None).latest(now).as_deref(), Some("2024-03-13"));
    // never past the end
    assert_eq!(with(1, Some("2024-01-05")).keys(later()).len(), 4);
    assert_eq!(with(1, None).latest(utc(2024, 1, 1, 5, 0)).as_deref(), Some("2024-01-01"));
}

#[test]
fn latest_agrees_with_the_full_key_list() {
    for now in [utc(2024, 3, 15, 10, 30), utc(2024, 3, 31, 1, 30), utc(2024, 10, 27, 1, 30)] {
        for (g, start, end, tz) in [
            (Granularity::Hourly, "2024-03-14T00:00", None, Some("Europe/Paris")),
            (Granularity::Hourly, "2024-10-26T00:00", None, Some("Europe/Paris")),
            (Granularity::Daily, "2024-01-01", None, None),
            (Granularity::Daily, "2024-01-01", Some("2024-02-01"), Some("America/New_York")),
            (Granularity::Weekly, "2024-01-07", None, None),
            (Granularity::Monthly, "2023-05-01", None, Some("Australia/Lord_Howe")),
        ] {
            let t = part(g, start, end, tz);
            assert_eq!(t.latest(now), t.keys(now).pop(), "{g:?} {start} {end:?} at {now}");
            let w = t.windows(now);
            assert_eq!(w.iter().map(|w| w.key.clone()).collect::<Vec<_>>(), t.keys(now));
            assert!(w.windows(2).all(|p| p[0].end == p[1].start && p[0].start < p[0].end));
            assert!(w.iter().all(|x| x.end <= now));
        }
    }
}

#[test]
fn hours_across_daylight_saving_changes() {
    let spring = part(Granularity::Hourly, "2024-03-30T23:00", Some("2024-03-31T05:00"), Some("Europe/Paris"));
    assert_eq!(
        spring.keys(later()),
        ["2024-03-30-23:00", "2024-03-31-00:00", "2024-03-31-01:00", "2024-03-31-03:00", "2024-03-31-04:00"]
    );
    assert!(spring.check_key("2024-03-31-02:00", later()).is_err());
    let fall = part(Granularity::Hourly, "2024-10-27T01:00", Some("2024-10-27T04:00"), Some("Europe/Paris"));
    assert_eq!(
        fall.keys(later()),
        ["2024-10-27-01:00", "2024-10-27-02:00", "2024-10-27-02:00+0100", "2024-10-27-03:00"]
    );
    let (a, b) = fall.window("2024-10-27-02:00+0100").unwrap();
    assert_eq!((a.with_timezone(&Utc), b.with_timezone(&Utc)), (utc(2024, 10, 27, 1, 0), utc(2024, 10, 27, 2, 0)));
    assert!(fall.check_key("2024-10-27-02:00+0200", later()).is_err());
    // the day DST starts is 23 hours long, the day it ends 25
    let d = part(Granularity::Daily, "2024-03-30", None, Some("Europe/Paris"));
    let (a, b) = d.window("2024-03-31").unwrap();
    assert_eq!((b - a).num_hours(), 23);
    let (a, b) = d.window("2024-10-27").unwrap();
    assert_eq!((b - a).num_hours(), 25);
}

#[test]
fn anchors_and_bad_definitions() {
    let o = WindowOptions { week_start: Weekday::Wed, ..WindowOptions::default() };
    let w = TimePartitions::with_options(Granularity::Weekly, "2024-01-03", None, None, o).unwrap();
    assert_eq!(w.keys(utc(2024, 2, 1, 0, 0)), ["2024-01-03", "2024-01-10", "2024-01-17", "2024-01-24"]);
    let o = WindowOptions { month_day: 15, ..WindowOptions::default() };
    let m = TimePartitions::with_options(Granularity::Monthly, "2024-01-15", None, None, o).unwrap();
    assert_eq!(m.keys(utc(2024, 6, 1, 0, 0)), ["2024-01-15", "2024-02-15", "2024-03-15", "2024-04-15"]);
    let bad = |g, s: &str| TimePartitions::new(g, s, None, None).unwrap_err();
    let e = bad(Granularity::Weekly, "2024-01-01");
    assert!(e.to_string().contains("sunday") && e.to_string().contains("2024-01-07"), "{e}");
    assert!(matches!(bad(Granularity::Monthly, "2024-01-15"), PartitionError::Unaligned { .. }));
    assert!(matches!(bad(Granularity::Hourly, "2024-01-01T10:30"), PartitionError::Unaligned { .. }));
    assert!(matches!(bad(Granularity::Daily, "2024-13-01"), PartitionError::BadDate { .. }));
    let o = WindowOptions { month_day: 31, ..WindowOptions::default() };
    assert!(TimePartitions::with_options(Granularity::Monthly, "2024-01-31", None, None, o).is_err());
    assert!(matches!(
        TimePartitions::new(Granularity::Daily, "2024-01-05", Some("2024-01-01"), None),
        Err(PartitionError::EndBeforeStart { .. })
    ));
    assert!(matches!(
        TimePartitions::new(Granularity::Daily, "2024-01-01", None, Some("Mars/Olympus")),
        Err(PartitionError::BadTimezone(_))
    ));
}

#[test]
fn bad_keys_and_ranges() {
    let d = PartitionSpec::Time(part(Granularity::Daily, "2024-01-01", Some("2024-02-01"), None));
    for k in ["2023-12-31", "2024-02-01", "yesterday", "2024-1-05", " 2024-01-05"] {
        assert!(d.check_key(k, later()).is_err(), "{k}");
    }
    assert!(matches!(d.range("2024-01-05", "2024-01-02", later()), Err(PartitionError::EmptyRange { .. })));
    let s = PartitionSpec::static_keys(vec!["eu".into(), "us".into(), "apac".into()]).unwrap();
    assert_eq!(s.range("us", "apac", later()).unwrap(), ["us", "apac"]);
    assert!(s.range("apac", "eu", later()).is_err());
    assert!(PartitionSpec::None.check_key("x", later()).is_err());
    assert!(PartitionSpec::static_keys(vec![]).is_err());
    assert!(PartitionSpec::static_keys(vec!["a".into(), "a".into()]).is_err());
}

mod properties {
    use proptest::prelude::*;

    use super::*;

    const ZONES: [&str; 8] = [
        "UTC",
        "Europe/Paris",
        "America/New_York",
        "Australia/Lord_Howe",
        "Asia/Kolkata",
        "America/Havana",
        "Pacific/Apia",
        "America/Sao_Paulo",
    ];

    fn granularity() -> impl Strategy<Value = Granularity> {
        prop::sample::select(vec![Granularity::Hourly, Granularity::Daily, Granularity::Weekly, Granularity::Monthly])
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

        /// Whatever the zone (gaps at midnight, a skipped day, 30-minute changes), the
        /// anchors, the end and the instant: keys, windows, latest, lookups and ranges agree.
        #[test]
        fn keys_windows_latest_and_lookups_agree(
            g in granularity(),
            zone in prop::sample::select(ZONES.to_vec()),
            start_day in 0i64..(40 * 365),
            start_hour in 0u32..24,
            len_hours in 1i64..(24 * 120),
            end_hours in prop::option::of(1i64..(24 * 200)),
            week_start in 0u8..7,
            month_day in 1u32..=28,
            end_offset in -3i32..=3,
        ) {
            let day = NaiveDate::from_ymd_opt(1990, 1, 1).unwrap() + Duration::days(start_day);
            let mut start = day.and_hms_opt(start_hour, 0, 0).unwrap();
            let options = WindowOptions {
                week_start: [Weekday::Sun, Weekday::Mon, Weekday::Tue, Weekday::Wed, Weekday::Thu, Weekday::Fri, Weekday::Sat]
                    [usize::from(week_start)],
                month_day,
                end_offset,
            };
            // align the start the way the user is told to
            let probe = TimePartitions::with_options(g, &start.format("%Y-%m-%dT%H:%M").to_string(), None, Some(zone), options);
            if let Err(PartitionError::Unaligned { first, .. }) = &probe {
                let text = if first.len() > 10 { first.clone() } else { format!("{first}-00:00") };
                start = NaiveDateTime::parse_from_str(&text, "%Y-%m-%d-%H:%M").unwrap();
            }
            let end = end_hours.map(|h| (start + Duration::hours(h)).format("%Y-%m-%dT%H:%M").to_string());
            let p = TimePartitions::with_options(g, &start.format("%Y-%m-%dT%H:%M").to_string(), end.as_deref(), Some(zone), options).unwrap();
            let now = (start + Duration::hours(len_hours)).and_utc();
            let windows = p.windows(now);
            let keys = p.keys(now);
            prop_assert_eq!(windows.iter().map(|w| &w.key).collect::<Vec<_>>(), keys.iter().collect::<Vec<_>>());
            prop_assert_eq!(p.latest(now), keys.last().cloned());
            for pair in windows.windows(2) {
                prop_assert_eq!(pair[0].end, pair[1].start);
            }
            for w in &windows {
                prop_assert!(w.start < w.end, "{:?}", w);
                let (a, b) = p.window(&w.key).unwrap();
                prop_assert_eq!((a.with_timezone(&Utc), b.with_timezone(&Utc)), (w.start, w.end));
                prop_assert!(p.check_key(&w.key, now).is_ok(), "{}", w.key);
            }
            if end_offset <= 0 {
                prop_assert!(windows.iter().all(|w| w.end <= now));
            }
            if let (Some(first), Some(last)) = (keys.first(), keys.last()) {
                prop_assert_eq!(p.range(first, last, now).unwrap(), keys.clone());
            }
            // no duplicate keys
            let unique: std::collections::BTreeSet<&String> = keys.iter().collect();
            prop_assert_eq!(unique.len(), keys.len());
        }
    }
}
