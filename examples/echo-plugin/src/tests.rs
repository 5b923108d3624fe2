use std::sync::Arc;

use phlo_core::capability::CapabilityMap;
use phlo_core::config::{Format, node};
use phlo_core::diagnostic::SourceFile;
use phlo_core::plugin::{Factory, PluginKind, Registry, compiled_descriptors};

use super::*;

fn descriptor(kind: PluginKind, name: &str) -> &'static PluginDescriptor {
    compiled_descriptors().into_iter().find(|d| d.kind() == kind && d.name == name).expect("registered")
}

#[test]
fn every_kind_is_registered_through_inventory() {
    for kind in
        [PluginKind::ResourceProvider, PluginKind::AssetType, PluginKind::AssetProvider, PluginKind::HookProvider]
    {
        descriptor(kind, "echo");
    }
    descriptor(PluginKind::QualityCheck, "echo_rows");
    let d = descriptor(PluginKind::ResourceProvider, "echo");
    assert_eq!(d.capabilities().collect::<Vec<_>>(), ["echo_store:echo"]);
    assert_eq!(descriptor(PluginKind::AssetType, "echo").metadata.requires, ["echo_store"]);
    assert_eq!(d.crate_name, "phlo-plugin-echo");
}

/// A registry with the store configured by `yaml` (its `resources.echo` section).
fn store_registry(yaml: &str) -> Registry {
    let src = SourceFile::new("phlo.yaml", yaml);
    let node = node::parse(&src, Format::Yaml).unwrap();
    Registry::builder()
        .register(phlo_core::descriptor!(resource Memory, provides: [dyn EchoStore]))
        .plugin_config(PluginKind::ResourceProvider, "echo", node)
        .source(src)
        .build()
        .unwrap()
}

#[test]
fn the_store_serves_its_capability_honours_capacity_and_probes() {
    let r = store_registry("capacity: 2\n");
    let store = r.capability::<dyn EchoStore>("echo").unwrap();
    store.put("t", vec!["a".into()]).unwrap();
    assert_eq!(store.get("t").unwrap(), ["a"]);
    let e = store.put("t", vec!["a".into(), "b".into(), "c".into()]).unwrap_err();
    assert!(e.contains("capacity of 2"), "{e}");
    r.probe("echo").unwrap();
    let e = store_registry("capacity: 0\n").probe("echo").unwrap_err();
    assert!(e.to_string().contains("capacity is 0"), "{e}");
}

#[test]
fn a_bad_store_config_fails_the_factory_with_a_position() {
    let r = store_registry("capacty: 2\n");
    let e = r.get_or_create(PluginKind::ResourceProvider, "echo").unwrap_err();
    let d = e.to_diagnostic();
    assert_eq!(d.location.unwrap().display(), "phlo.yaml:1:1");
    assert!(d.help.unwrap().contains("did you mean `capacity`"));
}

fn build(yaml: &str) -> Result<AssetSpec, PluginError> {
    let src = SourceFile::new("phlo.yaml", yaml);
    let node = node::parse(&src, Format::Yaml).unwrap();
    let Factory::AssetType { build, .. } = descriptor(PluginKind::AssetType, "echo").factory else { unreachable!() };
    build(&node, &src, &AssetTypeContext { key: "demo.rows".into(), ..AssetTypeContext::default() })
}

#[test]
fn the_echo_type_builds_a_spec_from_typed_config_and_rejects_bad_config() {
    let spec = build("rows: 3\nseed: 7\ntemplate: '${n}'\n").unwrap();
    assert_eq!(spec.key, "demo.rows");
    assert_eq!(spec.metadata["rows"], 3);
    let PluginError::Config(d) = build("rows: lots\n").unwrap_err() else { panic!() };
    assert!(d.to_string().contains("phlo.yaml:1:7"), "{d}");
}

#[tokio::test]
async fn assets_materialize_into_the_store_and_the_check_counts_rows() {
    let r = store_registry("{}");
    let caps = CapabilityMap::new().with(r.capability::<dyn EchoStore>("echo").unwrap());
    let caps = Arc::new(caps);
    let ctx = |key: &str| {
        let mut ctx = RunContext::new("r", key, None, 1);
        ctx.capabilities = Arc::clone(&caps);
        ctx
    };
    let assets = AssetProvider::assets(&assets::EchoAssets).unwrap();
    let keys: Vec<_> = assets.iter().map(|a| a.key.as_str()).collect();
    assert_eq!(keys, ["echo.greetings", "echo.numbers", "echo.summary"]);
    for a in &assets {
        a.run.as_ref().unwrap().0.run(ctx(&a.key)).await.unwrap();
    }
    let store = r.capability::<dyn EchoStore>("echo").unwrap();
    assert_eq!(store.get("echo.summary").unwrap(), ["4 greetings, 100 numbers"]);
    assert_eq!(EchoRowsCheck { min: 100 }.evaluate(&ctx("echo.numbers")).unwrap().violations, 0);
    assert_eq!(EchoRowsCheck { min: 101 }.evaluate(&ctx("echo.numbers")).unwrap().violations, 1);
    // without a bound store, asking for it is an error naming the missing `requires:`
    let e = store_into_unbound().await;
    assert!(e.contains("does not require it: add `requires: [echo_store]`"), "{e}");
}

async fn store_into_unbound() -> String {
    let ctx = RunContext::new("r", "demo.rows", None, 1);
    store(&ctx, vec![]).unwrap_err().message
}

#[test]
fn the_hook_logs_one_line_per_event_when_asked() {
    let dir = tempfile::tempdir().unwrap();
    let config = EchoHook { log: Some("events.log".into()) };
    let hook = <EchoHook as HookProvider>::create(config, &PluginContext::new("echo", dir.path())).unwrap();
    let mut bus = phlo_core::hooks::HookBus::builder();
    for r in HookProvider::hooks(&hook) {
        bus.register(r).unwrap();
    }
    let bus = bus.freeze(None).unwrap();
    let correlation = phlo_core::hooks::Correlation::run("r1").with_asset("a");
    bus.emit_event(Event::new(phlo_core::hooks::EventPayload::RunStart(Default::default()), correlation)).unwrap();
    assert_eq!(std::fs::read_to_string(dir.path().join("events.log")).unwrap(), "run.start a\n");
    assert!(HookProvider::hooks(&EchoHook::default()).is_empty());
}

#[test]
fn generation_is_deterministic_per_seed() {
    let a = EchoConfig { rows: Some(5), seed: 1, ..Default::default() };
    let b = EchoConfig { rows: Some(5), seed: 2, ..Default::default() };
    assert_eq!(generate(&a), generate(&a));
    assert_ne!(generate(&a), generate(&b));
    assert!(generate(&a)[4].starts_with("row 4: "));
}
