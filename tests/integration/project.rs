//! Loading projects with hand-registered plugins (the builder API): resolution,
//! readiness, factory failures, duplicates — everything `phlo validate` reports.

use std::path::Path;
use std::sync::Arc;

use phlo_core::diagnostic::{Code, Severity};
use phlo_core::plugin::{
    AssetProvider, Factory, PluginContext, PluginDescriptor, PluginError, PluginKind, PluginMetadata, RegistryBuilder,
    ResourceProvider,
};
use phlo_core::project::{LoadOptions, Project};
use phlo_core::spec::AssetSpec;

struct Store;
impl ResourceProvider for Store {}

fn store(_: &PluginContext) -> Result<Arc<dyn ResourceProvider>, PluginError> {
    Ok(Arc::new(Store))
}
fn exploding(_: &PluginContext) -> Result<Arc<dyn ResourceProvider>, PluginError> {
    panic!("the warehouse exploded")
}

struct Shop;
impl AssetProvider for Shop {
    fn assets(&self) -> Result<Vec<AssetSpec>, PluginError> {
        Ok(vec![
            AssetSpec::new("shop.orders").with_requirement("table_store"),
            AssetSpec::new("shop.revenue").with_dep("shop.orders"),
        ])
    }
}
fn shop(_: &PluginContext) -> Result<Arc<dyn AssetProvider>, PluginError> {
    Ok(Arc::new(Shop))
}

const fn res(name: &'static str, provides: &'static [&'static str]) -> PluginDescriptor {
    PluginDescriptor::new(name, "test-plugins", Factory::Resource(store))
        .with_metadata(PluginMetadata::new("1.0.0", "test store").provides(provides))
}

fn two_stores(b: RegistryBuilder) -> RegistryBuilder {
    b.register(res("mem_a", &["table_store:a"]))
        .register(res("mem_b", &["table_store:b"]))
        .register(PluginDescriptor::new("shop", "test-plugins", Factory::Asset(shop)))
}

fn project(
    yaml: &str,
    registry: fn(RegistryBuilder) -> RegistryBuilder,
    strict_env: bool,
) -> (tempfile::TempDir, Result<Project, phlo_core::diagnostic::Diagnostics>) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("phlo.yaml"), yaml).unwrap();
    let options = LoadOptions {
        registry,
        env: Box::new(move |name| if strict_env { None } else { std::env::var(name).ok() }),
        ..LoadOptions::default()
    };
    let p = Project::load(dir.path(), &options);
    (dir, p)
}

fn codes(p: &Project) -> Vec<(Code, Severity)> {
    p.diagnostics.iter().map(|d| (d.code, d.severity)).collect()
}

#[test]
fn two_providers_and_no_default_is_ambiguous_and_says_how_to_settle_it() {
    let (_d, p) = project("name: t\n", two_stores, true);
    let p = p.unwrap();
    assert_eq!(codes(&p), [(Code::AmbiguousCapability, Severity::Error)]);
    let d = p.diagnostics.iter().next().unwrap();
    assert!(
        d.message.contains("`table_store` is offered by 2 providers (table_store:a, table_store:b)"),
        "{}",
        d.message
    );
    assert!(d.message.contains("required by asset shop.orders"), "{}", d.message);
    assert_eq!(
        d.help.as_deref(),
        Some("choose one in phlo.yaml:\n  capabilities:\n    defaults:\n      table_store: a")
    );
    assert_eq!(p.diagnostics.exit_code(), 3);
}

#[test]
fn a_default_settles_the_ambiguity() {
    let (_d, p) = project("capabilities:\n  defaults:\n    table_store: b\n", two_stores, true);
    let p = p.unwrap();
    assert!(p.diagnostics.is_empty(), "{}", p.diagnostics);
    let row = &p.report.rows.iter().find(|r| &*r.required_by == "asset shop.orders").unwrap();
    assert_eq!(row.resolved_to.as_deref(), Some("table_store:b"));
    assert_eq!(row.provider.as_deref(), Some("mem_b"));
}

#[test]
fn an_asset_override_beats_the_project_default() {
    fn reg(b: RegistryBuilder) -> RegistryBuilder {
        b.register(res("mem_a", &["table_store:a"])).register(res("mem_b", &["table_store:b"]))
    }
    let (_d, p) = project(
        "capabilities:\n  defaults:\n    table_store: b\nassets:\n  ext:\n    external: true\n    requires: [table_store]\n    capability_overrides:\n      table_store: a\n",
        reg,
        true,
    );
    let p = p.unwrap();
    assert!(p.diagnostics.is_empty(), "{}", p.diagnostics);
    let row = &p.report.rows[0];
    assert_eq!(
        (row.resolved_to.as_deref(), row.rule.map(|r| r.as_str())),
        (Some("table_store:a"), Some("asset_override"))
    );
}

#[test]
fn a_panicking_factory_is_recorded_and_what_uses_it_fails() {
    fn reg(b: RegistryBuilder) -> RegistryBuilder {
        b.register(
            PluginDescriptor::new("wild", "test-plugins", Factory::Resource(exploding))
                .with_metadata(PluginMetadata::new("1", "").provides(&["table_store:wild"])),
        )
        .register(res("calm", &["queue:calm"]))
        .register(PluginDescriptor::new("shop", "test-plugins", Factory::Asset(shop)))
    }
    let (_d, p) = project("name: t\n", reg, true);
    let p = p.unwrap();
    assert_eq!(
        codes(&p),
        [(Code::PluginFailed, Severity::Warning), (Code::PluginNotReady, Severity::Error)],
        "{}",
        p.diagnostics
    );
    assert!(p.diagnostics.to_string().contains("panicked: the warehouse exploded"));
    assert!(p.readiness_of(PluginKind::ResourceProvider, "calm").unwrap().ready);
    assert!(!p.readiness_of(PluginKind::ResourceProvider, "wild").unwrap().ready);

    let (_d, p) = project("plugins:\n  strict: true\n", reg, true);
    let p = p.unwrap();
    assert!(codes(&p).contains(&(Code::PluginFailed, Severity::Error)), "{}", p.diagnostics);
    assert_eq!(p.diagnostics.exit_code(), 3);
}

#[test]
fn duplicate_plugin_names_name_both_crates() {
    fn reg(b: RegistryBuilder) -> RegistryBuilder {
        b.register(res("store", &["table_store:a"])).register(PluginDescriptor::new(
            "store",
            "other-crate",
            Factory::Resource(store),
        ))
    }
    let (_d, p) = project("name: t\n", reg, true);
    let diags = p.unwrap_err();
    let d = diags.iter().next().unwrap();
    assert_eq!(d.code, Code::DuplicatePlugin);
    assert!(d.message.contains("one in crate `other-crate`, one in crate `test-plugins`"), "{}", d.message);
    assert_eq!(diags.exit_code(), 3);
}

#[test]
fn requires_is_enforced() {
    fn reg(b: RegistryBuilder) -> RegistryBuilder {
        b.register(
            PluginDescriptor::new("needy", "test-plugins", Factory::Asset(shop))
                .with_metadata(PluginMetadata::new("1", "").requires(&["lake"]).optional(&["cache"])),
        )
        .register(res("mem", &["table_store:mem"]))
        // a store nobody uses, which needs something missing: only a warning
        .register(
            PluginDescriptor::new("idle", "test-plugins", Factory::Resource(store))
                .with_metadata(PluginMetadata::new("1", "").requires(&["vault"]).provides(&["secrets:idle"])),
        )
    }
    let (_d, p) = project("name: t\n", reg, true);
    let p = p.unwrap();
    let needy = p.readiness_of(PluginKind::AssetProvider, "needy").unwrap();
    assert!(!needy.ready);
    assert_eq!(needy.missing, ["lake"]);
    let mut c = codes(&p);
    c.sort();
    assert_eq!(
        c,
        [
            (Code::MissingCapability, Severity::Error),
            (Code::MissingCapability, Severity::Warning),
            (Code::OptionalCapabilityMissing, Severity::Warning),
        ],
        "{}",
        p.diagnostics
    );
    assert!(!p.readiness_of(PluginKind::ResourceProvider, "idle").unwrap().ready);
    assert!(p.readiness_of(PluginKind::ResourceProvider, "mem").unwrap().ready);
}

#[test]
fn readiness_propagates_through_bindings() {
    fn reg(b: RegistryBuilder) -> RegistryBuilder {
        b.register(
            PluginDescriptor::new("base", "test-plugins", Factory::Resource(store))
                .with_metadata(PluginMetadata::new("1", "").requires(&["vault"]).provides(&["table_store:base"])),
        )
        .register(PluginDescriptor::new("shop", "test-plugins", Factory::Asset(shop)))
    }
    let (_d, p) = project("name: t\n", reg, true);
    let p = p.unwrap();
    let text = p.diagnostics.to_string();
    assert!(
        text.contains("plugin `base` is not ready, so what is bound to it cannot use it: asset shop.orders"),
        "{text}"
    );
    assert!(text.contains("no provider offers `vault` (required by plugin base)"), "{text}");
    assert_eq!(p.diagnostics.exit_code(), 3);
}

#[test]
fn plugin_config_sections_are_checked_against_the_plugin() {
    fn reg(b: RegistryBuilder) -> RegistryBuilder {
        b.register(res("mem", &["table_store:mem"]))
    }
    let (_d, p) = project("resources:\n  mem:\n    anything: 1\n  nope: {}\nexecutor:\n  adapter: dagstr\n", reg, true);
    let p = p.unwrap();
    let text = p.diagnostics.to_string();
    assert!(text.contains("phlo.yaml:6:12: [PHLO-E007] unknown orchestrator adapter `dagstr`"), "{text}");
    assert!(text.contains("resource provider `mem` takes no configuration"), "{text}");
    assert!(text.contains("unknown resource provider `nope`"), "{text}");
}

#[test]
fn the_compiled_echo_plugin_loads_through_inventory() {
    let (_d, p) = project("assets:\n  x:\n    type: echo\n    rows: 2\n", RegistryBuilder::with_compiled, true);
    let p = p.unwrap();
    assert!(p.diagnostics.is_empty(), "{}", p.diagnostics);
    let keys: Vec<&str> = p.graph.nodes().iter().map(|a| a.spec.key.as_str()).collect();
    assert_eq!(keys, ["echo.greetings", "echo.numbers", "echo.summary", "x"]);
    let x = p.graph.nodes().iter().find(|a| a.spec.key == "x").unwrap();
    assert_eq!((&*x.provider, x.asset_type.as_deref()), ("echo", Some("echo")));
    assert_eq!(x.spec.requires, ["echo_store"]);
    let _ = Path::new(".");
}

struct OtherShop;
impl AssetProvider for OtherShop {
    fn assets(&self) -> Result<Vec<AssetSpec>, PluginError> {
        Ok(vec![AssetSpec::new("shop.orders")])
    }
}
fn other_shop(_: &PluginContext) -> Result<Arc<dyn AssetProvider>, PluginError> {
    Ok(Arc::new(OtherShop))
}

#[test]
fn the_same_key_from_two_plugins_names_both() {
    fn reg(b: RegistryBuilder) -> RegistryBuilder {
        b.register(res("mem", &["table_store:mem"]))
            .register(PluginDescriptor::new("shop", "test-plugins", Factory::Asset(shop)))
            .register(PluginDescriptor::new("other_shop", "test-plugins", Factory::Asset(other_shop)))
    }
    let (_d, p) = project("name: t\n", reg, true);
    let p = p.unwrap();
    let d = p.diagnostics.iter().find(|d| d.code == Code::DuplicateAsset).expect("a duplicate error");
    assert_eq!(d.message, "asset `shop.orders` is defined twice: by `other_shop` and by `shop`");
    assert_eq!(p.diagnostics.exit_code(), 3);
}

struct CheckedShop;
impl AssetProvider for CheckedShop {
    fn assets(&self) -> Result<Vec<AssetSpec>, PluginError> {
        Ok(vec![
            AssetSpec::new("a").with_check(phlo_core::spec::CheckSpec::new("ids", "not_null")),
            AssetSpec::new("b").with_check(phlo_core::spec::CheckSpec::new("odd", "no_such_kind")),
        ])
    }
}
fn checked_shop(_: &PluginContext) -> Result<Arc<dyn AssetProvider>, PluginError> {
    Ok(Arc::new(CheckedShop))
}
struct NotNull;
impl phlo_core::plugin::QualityCheckProvider for NotNull {
    fn check_kinds(&self) -> Vec<&'static str> {
        vec!["not_null"]
    }
    fn run_check(
        &self,
        spec: &phlo_core::spec::CheckSpec,
        ctx: phlo_core::spec::RunContext,
    ) -> phlo_core::spec::BoxFuture<'static, phlo_core::spec::CheckResult> {
        let r = phlo_core::spec::CheckResult::from_counts(spec, &ctx.asset, 0, 1);
        Box::pin(async move { r })
    }
}
fn not_null(_: &PluginContext) -> Result<Arc<dyn phlo_core::plugin::QualityCheckProvider>, PluginError> {
    Ok(Arc::new(NotNull))
}

#[test]
fn checks_whose_kind_no_provider_runs_are_warned_about() {
    fn reg(b: RegistryBuilder) -> RegistryBuilder {
        b.register(PluginDescriptor::new("shop", "test-plugins", Factory::Asset(checked_shop)))
            .register(PluginDescriptor::new("quality", "test-plugins", Factory::Quality(not_null)))
    }
    let (_d, p) = project("name: t\n", reg, true);
    let p = p.unwrap();
    assert_eq!(codes(&p), [(Code::UnknownCheckKind, Severity::Warning)], "{}", p.diagnostics);
    assert!(p.diagnostics.to_string().contains("`no_such_kind` checks (on b)"));
}
