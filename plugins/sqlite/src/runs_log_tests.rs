use std::sync::Arc;

use phlo_core::hooks::{Correlation, RunEvent, StepVersions};

use super::*;

/// One of each kind of event, with and without a run, tags, versions and a partition.
fn events() -> Vec<Event> {
    let run = Correlation::run("r-1");
    let step = run.clone().with_asset("raw.orders").with_partition("2024-01-01").with_attempt(2);
    let versions = StepVersions {
        code: Some(String::from("def:1")),
        data: Arc::from("3r-abc"),
        source: Some(String::from("files-1")),
        inputs: [("raw.a".into(), Arc::from("run:x")), ("raw.b".into(), Arc::from("run:x"))].into_iter().collect(),
    };
    let mut metrics = BTreeMap::new();
    metrics.insert(String::from("row_count"), json!(3));
    metrics.insert(String::from("table"), json!("raw_orders"));
    let mut custom_id = Event::new(EventPayload::TransformStart(AssetEvent::default()), run.clone().with_asset("m.w"));
    custom_id.id = EventId(0x1234_5678_9abc_def0);
    vec![
        Event::new(EventPayload::RunStart(RunEvent { assets: 2, ..RunEvent::default() }), run.clone()),
        Event::new(EventPayload::IngestionStart(AssetEvent::default()), step.clone()),
        Event::new(
            EventPayload::IngestionEnd(AssetEvent {
                group: Some(String::from("raw")),
                status: Some(Status::Succeeded),
                duration_ms: Some(12),
                metrics,
                error: None,
                versions: Some(Box::new(versions)),
            }),
            step.clone(),
        )
        .with_tags([(String::from("team"), String::from("data"))].into_iter().collect()),
        Event::new(
            EventPayload::TransformEnd(AssetEvent {
                status: Some(Status::Failed),
                duration_ms: Some(0),
                error: Some(String::from("boom \"quoted\" ✘")),
                ..AssetEvent::default()
            }),
            run.clone().with_asset("m.x"),
        )
        .with_producer("my_plugin")
        .with_tags([(String::from("team"), String::from("data"))].into_iter().collect()),
        Event::new(
            EventPayload::AssetSkipped {
                reason: String::from("upstream failed"),
                failed_upstream: Some("m.x".into()),
                unchanged_since: None,
            },
            run.clone().with_asset("m.y"),
        ),
        Event::new(
            EventPayload::AssetSkipped {
                reason: String::from("unchanged"),
                failed_upstream: None,
                unchanged_since: Some(String::from("r-0")),
            },
            run.clone().with_asset("m.z"),
        ),
        Event::new(
            EventPayload::LineageEdges { edges: vec![("raw.a".into(), "m.x".into()), ("raw.b".into(), "m.x".into())] },
            run.clone().with_asset("m.x"),
        ),
        custom_id,
        Event::new(EventPayload::TelemetryLog { level: String::from("info"), message: String::from("hi") }, step),
        Event::new(EventPayload::PublishStart(AssetEvent::default()), Correlation::default().with_asset("p.q")),
        Event::new(EventPayload::PublishEnd(AssetEvent::default()), run.with_asset("m.x").with_check("c")),
    ]
}

fn expected(e: &Event) -> Value {
    serde_json::to_value(e).unwrap()
}

/// The events written by one thread into one body, by `encode` or as earlier versions wrote
/// them.
fn body_by(events: &[Event], write: fn(&Event, &mut Lane, &mut Vec<u8>)) -> Vec<u8> {
    let mut lane = Lane::new();
    let mut body = Vec::new();
    for e in events {
        write(e, &mut lane, &mut body);
    }
    body
}

fn one_body(events: &[Event]) -> Vec<u8> {
    body_by(events, encode)
}

#[test]
fn bodies_that_left_out_derived_ids_are_still_read() {
    let events = events();
    // as earlier versions wrote it: ids that `Event::work_id` derives left out
    let (full, derived) = (one_body(&events), body_by(&events, encode_leaving_out_work_ids));
    assert!(
        derived.len() < full.len(),
        "{} bytes with derived ids left out, {} with every id",
        derived.len(),
        full.len()
    );
    let want: Vec<Value> = events.iter().map(expected).collect();
    assert_eq!(decode(&derived, Some("r-1")).unwrap(), want);
    assert_eq!(decode(&full, Some("r-1")).unwrap(), want);
    let (mut a, mut b) = (Vec::new(), Vec::new());
    changes(&derived, Some("r-1"), &mut a).unwrap();
    changes(&full, Some("r-1"), &mut b).unwrap();
    assert_eq!(a, b);
}

#[test]
fn every_event_decodes_to_what_the_hooks_saw() {
    let events = events();
    let body = one_body(&events);
    let decoded = decode(&body, Some("r-1")).unwrap();
    assert_eq!(decoded.len(), events.len());
    for (e, d) in events.iter().zip(&decoded) {
        assert_eq!(d, &expected(e), "{}", e.event_type);
    }
    // folding straight from the records changes what folding their JSON changes
    let mut direct = Vec::new();
    changes(&body, Some("r-1"), &mut direct).unwrap();
    let via_json: Vec<(String, Change)> = decoded.iter().filter_map(change_of).collect();
    assert_eq!(direct, via_json);
    assert!(direct.len() >= 6);
}

#[test]
fn repeated_strings_are_written_once() {
    let run = Correlation::run("r-1");
    let (mut lane, mut body) = (Lane::new(), Vec::new());
    let start = Event::new(EventPayload::TransformStart(AssetEvent::default()), run.with_asset("m.long_key"));
    encode(&start, &mut lane, &mut body);
    let first = body.len();
    encode(&start, &mut lane, &mut body);
    let again = body.len() - first;
    assert!(again < first - "m.long_key".len() - "phlo".len(), "{again} bytes again vs {first} the first time");
    assert!(again <= 20 + 16, "a repeated step start takes {again} bytes (its id is 16)");
    let decoded = decode(&body, Some("r-1")).unwrap();
    assert_eq!(decoded, vec![expected(&start), expected(&start)]);
}

#[test]
fn threads_interleaving_in_one_body_decode_each_with_its_own_lane() {
    let events = events();
    let (mut a, mut b) = (Lane::new(), Lane::new());
    let mut body = Vec::new();
    // the same events from two threads, alternating: each lane's strings and times are its own
    for (i, e) in events.iter().chain(events.iter().rev()).enumerate() {
        encode(e, if i % 3 == 0 { &mut a } else { &mut b }, &mut body);
    }
    let decoded = decode(&body, Some("r-1")).unwrap();
    let want: Vec<Value> = events.iter().chain(events.iter().rev()).map(expected).collect();
    assert_eq!(decoded, want);
    // a lane starts over in another body: its records there decode on their own
    a.reset();
    let mut other = Vec::new();
    encode(&events[2], &mut a, &mut other);
    assert_eq!(decode(&other, Some("r-1")).unwrap(), vec![expected(&events[2])]);
}

#[test]
fn bodies_of_the_first_format_are_still_read() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data");
    let body = std::fs::read(format!("{dir}/event-log-v1.bin")).unwrap();
    let want: Vec<Value> =
        serde_json::from_str(&std::fs::read_to_string(format!("{dir}/event-log-v1.json")).unwrap()).unwrap();
    let decoded = decode(&body, Some("r-1")).unwrap();
    assert_eq!(decoded, want);
    let mut direct = Vec::new();
    changes(&body, Some("r-1"), &mut direct).unwrap();
    let via_json: Vec<(String, Change)> = decoded.iter().filter_map(change_of).collect();
    assert_eq!(direct, via_json);
    assert_eq!(direct.len(), 5);
}

#[test]
fn a_damaged_body_is_an_error_never_a_panic() {
    let events = events();
    let body = one_body(&events);
    for cut in 1..body.len() {
        let _ = decode(&body[..cut], Some("r-1"));
        let _ = changes(&body[..cut], Some("r-1"), &mut Vec::new());
    }
    assert!(decode(&body[..body.len() - 3], Some("r-1")).is_err(), "a cut body is an error");
    // every byte flipped: an error or some events, never a panic
    for i in 0..body.len() {
        let mut bad = body.clone();
        bad[i] ^= 0xA5;
        let _ = decode(&bad, Some("r-1"));
        let _ = changes(&bad, Some("r-1"), &mut Vec::new());
    }
    // a reference to a string the lane never wrote
    let mut lane = Lane::new();
    let mut one = Vec::new();
    encode_leaving_out_work_ids(&events[1], &mut lane, &mut one);
    let unknown = decode(&[&[STEP, 0, 1, DERIVED_ID, 0, 0x7f][..], &one[6..]].concat(), Some("r-1"));
    assert!(unknown.is_err());
}
