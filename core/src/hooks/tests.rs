use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use super::testkit::RecordingHook;
use super::*;
use crate::graph::{AssetGraph, AssetNode, Selection};
use crate::spec::AssetSpec;

fn asset_event(t: EventType, asset: &str) -> Event {
    let payload = match t {
        EventType::IngestionStart => EventPayload::IngestionStart(AssetEvent::default()),
        EventType::TransformStart => EventPayload::TransformStart(AssetEvent::default()),
        _ => EventPayload::IngestionEnd(AssetEvent::default()),
    };
    Event::new(payload, Correlation::run("r1").with_asset(asset))
}

fn run_start() -> Event {
    Event::new(EventPayload::RunStart(RunEvent::default()), Correlation::run("r1"))
}

/// A hook that appends its name to a shared log.
fn logging(log: &Arc<Mutex<Vec<String>>>, plugin: &str, name: &str) -> HookRegistration {
    let log = Arc::clone(log);
    let label = format!("{plugin}/{name}");
    HookRegistration::new(plugin, name, move |_: &Event| {
        log.lock().unwrap().push(label.clone());
        Ok(())
    })
}

#[derive(Debug, thiserror::Error, PartialEq)]
#[error("the warehouse is read-only")]
struct ReadOnly;

#[test]
fn order_is_priority_then_plugin_then_hook_whatever_the_registration_order() {
    let log = Arc::new(Mutex::new(Vec::new()));
    let regs = vec![
        logging(&log, "zeta", "a").priority(100),
        logging(&log, "alpha", "b").priority(100),
        logging(&log, "alpha", "a").priority(100),
        logging(&log, "omega", "x").priority(5),
        logging(&log, "beta", "y").priority(200),
    ];
    for rotation in 0..regs.len() {
        log.lock().unwrap().clear();
        let mut b = HookBus::builder();
        let mut rotated = regs.clone();
        rotated.rotate_left(rotation);
        for r in rotated {
            b.register(r).unwrap();
        }
        b.freeze(None).unwrap().emit_event(run_start()).unwrap();
        assert_eq!(*log.lock().unwrap(), ["omega/x", "alpha/a", "alpha/b", "zeta/a", "beta/y"]);
    }
}

#[test]
fn raise_propagates_the_original_error_and_names_the_hook() {
    let mut b = HookBus::builder();
    b.register(
        HookRegistration::new("warehouse", "guard", |_: &Event| Err(Box::new(ReadOnly) as HookFailure))
            .policy(FailurePolicy::Raise),
    )
    .unwrap();
    let err = b.freeze(None).unwrap().emit_event(run_start()).unwrap_err();
    assert_eq!(err.to_string(), "hook `guard` of plugin `warehouse` failed on `run.start`: the warehouse is read-only");
    let HookError::Raised { source, .. } = err else { panic!() };
    assert_eq!(source.downcast_ref::<ReadOnly>(), Some(&ReadOnly));
}

#[test]
fn a_raise_between_two_log_handlers_stops_the_rest_and_every_failure_is_reported() {
    let log = Arc::new(Mutex::new(Vec::new()));
    let errored = RecordingHook::new();
    let l1 = Arc::clone(&log);
    let l3 = Arc::clone(&log);
    let mut b = HookBus::builder();
    b.register(
        HookRegistration::new("p", "first", move |_: &Event| {
            l1.lock().unwrap().push("first");
            Err("first failed".into())
        })
        .events([EventType::RunStart])
        .priority(1),
    )
    .unwrap();
    b.register(
        HookRegistration::new("p", "second", |_: &Event| Err("second failed".into()))
            .events([EventType::RunStart])
            .priority(2)
            .policy(FailurePolicy::Raise),
    )
    .unwrap();
    b.register(
        HookRegistration::new("p", "third", move |_: &Event| {
            l3.lock().unwrap().push("third");
            Ok(())
        })
        .events([EventType::RunStart])
        .priority(3),
    )
    .unwrap();
    b.register(errored.registration("audit", "errors").events([EventType::HookErrored])).unwrap();
    let bus = b.freeze(None).unwrap();
    let err = bus.emit_event(run_start()).unwrap_err();
    assert!(matches!(&err, HookError::Raised { hook, .. } if hook == "second"));
    assert_eq!(*log.lock().unwrap(), ["first"]);
    let reported: Vec<(String, String)> = errored
        .events()
        .iter()
        .map(|e| match &e.payload {
            EventPayload::HookErrored { hook, error, .. } => (hook.clone(), error.clone()),
            _ => unreachable!(),
        })
        .collect();
    assert_eq!(reported, [("first".into(), "first failed".into()), ("second".into(), "second failed".into())]);
}

#[test]
fn panics_are_caught_and_follow_the_policy() {
    let after = Arc::new(AtomicUsize::new(0));
    let a = Arc::clone(&after);
    let mut b = HookBus::builder();
    b.register(
        HookRegistration::new("p", "boom", |_: &Event| -> Result<(), HookFailure> { panic!("kaboom") })
            .events([EventType::RunStart])
            .priority(1),
    )
    .unwrap();
    b.register(
        HookRegistration::new("p", "after", move |_: &Event| {
            a.fetch_add(1, Ordering::Relaxed);
            Ok(())
        })
        .events([EventType::RunStart])
        .priority(2),
    )
    .unwrap();
    let bus = b.freeze(None).unwrap();
    bus.emit_event(run_start()).unwrap();
    assert_eq!(after.load(Ordering::Relaxed), 1, "a `log` panic does not stop the others");

    let mut b = HookBus::builder();
    b.register(
        HookRegistration::new("p", "boom", |_: &Event| -> Result<(), HookFailure> { panic!("kaboom") })
            .policy(FailurePolicy::Raise),
    )
    .unwrap();
    let err = b.freeze(None).unwrap().emit_event(run_start()).unwrap_err();
    assert_eq!(err.to_string(), "hook `boom` of plugin `p` failed on `run.start`: panicked: kaboom");
}

#[test]
fn filters_by_type_asset_and_tags_are_anded() {
    let by_type = RecordingHook::new();
    let by_asset = RecordingHook::new();
    let by_tag = RecordingHook::new();
    let all = RecordingHook::new();
    let mut b = HookBus::builder();
    b.register(by_type.registration("t", "type").events([EventType::TransformStart])).unwrap();
    b.register(by_asset.registration("t", "asset").assets(["raw.orders"])).unwrap();
    b.register(by_tag.registration("t", "tag").tag("team", "finance").events([EventType::IngestionStart])).unwrap();
    b.register(all.registration("t", "all")).unwrap();
    let bus = b.freeze(None).unwrap();

    bus.emit_event(asset_event(EventType::IngestionStart, "raw.orders")).unwrap();
    bus.emit_event(asset_event(EventType::TransformStart, "staging.orders")).unwrap();
    let tagged = asset_event(EventType::IngestionStart, "raw.customers")
        .with_tags(BTreeMap::from([("team".to_string(), "finance".to_string())]));
    bus.emit_event(tagged).unwrap();
    // an event without any tags fails the tag filter cleanly
    bus.emit_event(run_start()).unwrap();

    assert_eq!(by_type.lines(), ["transform.start staging.orders"]);
    assert_eq!(by_asset.lines(), ["ingestion.start raw.orders"]);
    assert_eq!(by_tag.lines(), ["ingestion.start raw.customers"]);
    assert_eq!(all.types().len(), 4);
}

#[test]
fn an_asset_filter_matches_lineage_edges_and_rejects_events_without_assets() {
    let rec = RecordingHook::new();
    let mut b = HookBus::builder();
    b.register(rec.registration("t", "lineage").assets(["raw.orders"])).unwrap();
    let bus = b.freeze(None).unwrap();
    bus.emit_event(Event::new(
        EventPayload::LineageEdges { edges: vec![("raw.orders".into(), "staging.orders".into())] },
        Correlation::run("r"),
    ))
    .unwrap();
    bus.emit_event(run_start()).unwrap();
    rec.assert_types(&[EventType::LineageEdges]);
}

#[test]
fn a_selection_filter_resolves_against_the_graph() {
    let (graph, _) = AssetGraph::build(vec![
        AssetNode::new(AssetSpec::new("raw.orders"), "p"),
        AssetNode::new(AssetSpec::new("staging.orders").with_dep("raw.orders"), "p"),
        AssetNode::new(AssetSpec::new("other"), "p"),
    ]);
    let rec = RecordingHook::new();
    let mut b = HookBus::builder();
    b.register(rec.registration("t", "sel").select(Selection::parse("raw.orders+").unwrap())).unwrap();
    let bus = b.freeze(Some(&graph)).unwrap();
    for a in ["raw.orders", "staging.orders", "other"] {
        bus.emit_event(asset_event(EventType::IngestionStart, a)).unwrap();
    }
    assert_eq!(rec.lines(), ["ingestion.start raw.orders", "ingestion.start staging.orders"]);

    let mut b = HookBus::builder();
    b.register(RecordingHook::new().registration("t", "sel").select(Selection::parse("nothing.*").unwrap())).unwrap();
    assert!(matches!(b.freeze(Some(&graph)), Err(HookError::Selection { .. })));
}

#[test]
fn a_handler_that_keeps_re_emitting_gets_an_error_not_a_stack_overflow() {
    let cell: Arc<OnceLock<Arc<HookBus>>> = Arc::new(OnceLock::new());
    let c = Arc::clone(&cell);
    let calls = Arc::new(AtomicUsize::new(0));
    let n = Arc::clone(&calls);
    let mut b = HookBus::builder();
    b.register(
        HookRegistration::new("loop", "again", move |e: &Event| {
            n.fetch_add(1, Ordering::Relaxed);
            c.get().expect("bus set").emit_event(e.clone())?;
            Ok(())
        })
        .events([EventType::RunStart])
        .policy(FailurePolicy::Raise),
    )
    .unwrap();
    let bus = Arc::new(b.freeze(None).unwrap());
    cell.set(Arc::clone(&bus)).unwrap();
    let err = bus.emit_event(run_start()).unwrap_err();
    assert_eq!(calls.load(Ordering::Relaxed), 8);
    // the outermost error is the hook's, carrying the depth error as its source chain
    assert!(err.to_string().contains("re-emit events in a loop (limit 8)"), "{err}");
}

#[test]
fn duplicate_registrations_are_refused() {
    let mut b = HookBus::builder();
    b.register(RecordingHook::new().registration("p", "h")).unwrap();
    let e = b.register(RecordingHook::new().registration("p", "h")).unwrap_err();
    assert_eq!(e.to_string(), "hook `h` of plugin `p` is registered twice");
}

#[test]
fn a_lagging_observer_counts_its_losses_and_the_pipeline_does_not_wait() {
    let mut b = HookBus::builder();
    b.observer_capacity(4);
    let bus = b.freeze(None).unwrap();
    let mut slow = bus.subscribe();
    let mut fast = bus.subscribe();
    for i in 0..10 {
        let e = Event::new(
            EventPayload::TelemetryMetric { name: "n".into(), value: f64::from(i), unit: None },
            Correlation::default(),
        );
        bus.emit_event(e).unwrap(); // never blocks, although nobody reads
    }
    assert_eq!(slow.try_recv(), Some(Observed::Lost(6)));
    let values: Vec<f64> = std::iter::from_fn(|| slow.try_recv())
        .map(|o| match o {
            Observed::Event(e) => match &e.payload {
                EventPayload::TelemetryMetric { value, .. } => *value,
                _ => unreachable!(),
            },
            Observed::Lost(n) => panic!("lost {n} again"),
        })
        .collect();
    assert_eq!(values, [6.0, 7.0, 8.0, 9.0]);
    assert!(matches!(fast.try_recv(), Some(Observed::Lost(6))));
    drop(fast);
    drop(slow);
    // with no subscribers left, emitting costs nothing on the observer lane and still works
    bus.emit_event(run_start()).unwrap();
}

#[test]
fn the_effective_table_lists_each_type_in_order() {
    let mut b = HookBus::builder();
    b.register(RecordingHook::new().registration("b", "late").priority(300)).unwrap();
    b.register(RecordingHook::new().registration("a", "early").priority(1).events([EventType::RunEnd]).tag("k", "v"))
        .unwrap();
    let bus = b.freeze(None).unwrap();
    let rows: Vec<(EventType, usize, String)> =
        bus.rows().into_iter().filter(|r| r.event == EventType::RunEnd).map(|r| (r.event, r.order, r.hook)).collect();
    assert_eq!(rows, [(EventType::RunEnd, 1, "early".into()), (EventType::RunEnd, 2, "late".into())]);
    assert_eq!(bus.rows().len(), EventType::COUNT + 1);
}

#[test]
fn a_raised_hook_error_keeps_its_cause() {
    #[derive(Debug)]
    struct Quota(u32);
    impl std::fmt::Display for Quota {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "quota of {} exceeded", self.0)
        }
    }
    impl std::error::Error for Quota {}
    let mut b = HookBus::builder();
    b.register(
        HookRegistration::new("p", "h", |_: &Event| Err(Box::new(Quota(3)) as crate::hooks::HookFailure))
            .policy(FailurePolicy::Raise),
    )
    .unwrap();
    let bus = b.freeze(None).unwrap();
    let e = bus.emit_event(Event::new(EventPayload::RunStart(RunEvent::default()), Correlation::run("r"))).unwrap_err();
    let cause = std::error::Error::source(&e).expect("a source");
    assert_eq!(cause.downcast_ref::<Quota>().map(|q| q.0), Some(3));
    assert!(e.to_string().ends_with("quota of 3 exceeded"), "{e}");
}

#[test]
fn events_of_different_checks_or_lineage_reports_of_one_step_have_different_ids() {
    use crate::spec::{CheckResult, CheckSpec};
    let c = Correlation::run("r").with_asset("a").with_attempt(1);
    let result = |name: &str| {
        EventPayload::QualityResult(Box::new(CheckResult::from_counts(&CheckSpec::new(name, "not_null"), "a", 0, 1)))
    };
    let x = Event::new(result("ids"), c.clone());
    let y = Event::new(result("names"), c.clone());
    assert_ne!(x.id, y.id);
    // retryable work keeps deterministic ids: the same check of the same attempt, the same id
    assert_eq!(x.id, Event::new(result("ids"), c.clone()).id);
    let edges = |from: &str| EventPayload::LineageEdges { edges: vec![(from.into(), "a".into())] };
    assert_ne!(Event::new(edges("u"), c.clone()).id, Event::new(edges("v"), c.clone()).id);
    assert_eq!(Event::new(edges("u"), c.clone()).id, Event::new(edges("u"), c).id);
}

#[test]
fn input_versions_are_kept_in_key_order_and_serialise_as_an_object() {
    let v: InputVersions = [("raw.b", "v2"), ("raw.a", "v1"), ("raw.c", "v3"), ("raw.b", "v4")]
        .into_iter()
        .map(|(k, d)| (crate::spec::AssetKey::from(k), Arc::from(d)))
        .collect();
    assert_eq!(v.len(), 3);
    assert_eq!(v.iter().map(|(k, d)| format!("{k}={d}")).collect::<Vec<_>>(), ["raw.a=v1", "raw.b=v4", "raw.c=v3"]);
    assert_eq!(v.get("raw.b").map(|d| &**d), Some("v4"));
    assert_eq!(v.get("raw.d"), None);
    assert_eq!(serde_json::to_string(&v).unwrap(), r#"{"raw.a":"v1","raw.b":"v4","raw.c":"v3"}"#);
    assert!(InputVersions::default().is_empty());
}

#[test]
fn indexed_filters_run_exactly_the_matching_handlers_in_priority_order() {
    let log = Arc::new(Mutex::new(Vec::new()));
    let mut b = HookBus::builder();
    // priorities interleave the index's three lists: by asset, by tag, unfiltered
    b.register(logging(&log, "p", "tag_finance").priority(10).tag("team", "finance")).unwrap();
    b.register(logging(&log, "p", "orders_and_lineage").priority(20).assets(["raw.orders", "staging.orders"])).unwrap();
    b.register(logging(&log, "p", "everything").priority(30)).unwrap();
    b.register(logging(&log, "p", "orders_finance").priority(40).assets(["raw.orders"]).tag("team", "finance"))
        .unwrap();
    b.register(logging(&log, "p", "tag_ops").priority(50).tag("team", "ops")).unwrap();
    b.register(logging(&log, "p", "other_asset").priority(60).assets(["raw.customers"])).unwrap();
    b.register(logging(&log, "p", "two_tags").priority(70).tag("team", "finance").tag("env", "prod")).unwrap();
    let bus = b.freeze(None).unwrap();
    let tags = |pairs: &[(&str, &str)]| pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    let run = |e: Event| {
        log.lock().unwrap().clear();
        bus.emit_event(e).unwrap();
        log.lock().unwrap().iter().map(|s| s.trim_start_matches("p/").to_string()).collect::<Vec<_>>()
    };
    assert_eq!(
        run(asset_event(EventType::IngestionStart, "raw.orders").with_tags(tags(&[("team", "finance")]))),
        ["tag_finance", "orders_and_lineage", "everything", "orders_finance"]
    );
    assert_eq!(
        run(asset_event(EventType::IngestionStart, "raw.orders")
            .with_tags(tags(&[("team", "finance"), ("env", "prod")]))),
        ["tag_finance", "orders_and_lineage", "everything", "orders_finance", "two_tags"]
    );
    assert_eq!(run(asset_event(EventType::IngestionStart, "raw.customers")), ["everything", "other_asset"]);
    // a lineage edge between two keys of one handler runs it once
    let edge = Event::new(
        EventPayload::LineageEdges { edges: vec![("raw.orders".into(), "staging.orders".into())] },
        Correlation::run("r1"),
    );
    assert_eq!(run(edge), ["orders_and_lineage", "everything"]);
    assert_eq!(run(run_start().with_tags(tags(&[("team", "ops")]))), ["everything", "tag_ops"]);
}
