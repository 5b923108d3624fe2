//! Loading projects with hand-registered plugins (the builder API): resolution,
//! readiness, factory failures, duplicates — everything `phlo validate` reports.

use phlo_core::diagnostic::{Code, Severity};
use phlo_core::plugin::{
    AssetProvider, CheckContext, CheckKind, NoConfig, Plugin, PluginContext, PluginDescriptor, PluginError, PluginKind,
    RegistryBuilder, Resource,
};
use phlo_core::project::{LoadOptions, Project};
use phlo_core::spec::{AssetSpec, Finding, RunContext};

// capability types of these tests
trait Table: Send + Sync {}
phlo_core::capability!(dyn Table = "table_store");
trait Queue: Send + Sync {}
phlo_core::capability!(dyn Queue = "queue");
trait Secrets: Send + Sync {}
phlo_core::capability!(dyn Secrets = "secrets");
trait Lake: Send + Sync {}
phlo_core::capability!(dyn Lake = "lake");
trait Cache: Send + Sync {}
phlo_core::capability!(dyn Cache = "cache");
trait Vault: Send + Sync {}
phlo_core::capability!(dyn Vault = "vault");

/// A resource plugin type named `$name` whose `create` returns `$create`.
macro_rules! resource {
    ($ty:ident, $name:literal) => {
        resource!($ty, $name, Ok($ty));
    };
    ($ty:ident, $name:literal, $create:expr) => {
        struct $ty;
        impl Plugin for $ty {
            const NAME: &'static str = $name;
            const DESCRIPTION: &'static str = "test store";
            type Config = NoConfig;
        }
        impl Resource for $ty {
            fn create(_: NoConfig, _: &PluginContext) -> Result<Self, PluginError> {
                $create
            }
        }
        impl Table for $ty {}
        impl Queue for $ty {}
        impl Secrets for $ty {}
    };
}
resource!(MemA, "mem_a");
resource!(MemB, "mem_b");
resource!(Mem, "mem");
resource!(Calm, "calm");
resource!(Idle, "idle");
resource!(Base, "base");
resource!(Named, "store");
resource!(Wild, "wild", panic!("the warehouse exploded"));

/// An asset provider type named `$name` listing `$assets`.
macro_rules! assets {
    ($ty:ident, $name:literal, $assets:expr) => {
        struct $ty;
        impl Plugin for $ty {
            const NAME: &'static str = $name;
            const DESCRIPTION: &'static str = "test assets";
            type Config = NoConfig;
        }
        impl AssetProvider for $ty {
            fn create(_: NoConfig, _: &PluginContext) -> Result<Self, PluginError> {
                Ok($ty)
            }
            fn assets(&self) -> Result<Vec<AssetSpec>, PluginError> {
                Ok($assets)
            }
        }
    };
}
assets!(
    Shop,
    "shop",
    vec![AssetSpec::new("shop.orders").require::<dyn Table>(), AssetSpec::new("shop.revenue").with_dep("shop.orders"),]
);
assets!(Needy, "needy", vec![AssetSpec::new("needy.x")]);
assets!(OtherShop, "other_shop", vec![AssetSpec::new("shop.orders")]);
assets!(
    CheckedShop,
    "shop",
    vec![
        AssetSpec::new("a")
            .with_check(phlo_core::spec::CheckSpec::new("ids", "not_null").with_config(serde_json::json!({}))),
        AssetSpec::new("b").with_check(phlo_core::spec::CheckSpec::new("odd", "no_such_kind")),
    ]
);

fn tested(mut d: PluginDescriptor) -> PluginDescriptor {
    d.crate_name = "test-plugins";
    d
}

fn two_stores(b: RegistryBuilder) -> RegistryBuilder {
    b.register(tested(phlo_core::descriptor!(resource MemA, provides: [dyn Table])))
        .register(tested(phlo_core::descriptor!(resource MemB, provides: [dyn Table])))
        .register(tested(phlo_core::descriptor!(asset_provider Shop)))
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
        d.message.contains("`table_store` is offered by 2 providers (table_store:mem_a, table_store:mem_b)"),
        "{}",
        d.message
    );
    assert!(d.message.contains("required by asset shop.orders"), "{}", d.message);
    assert_eq!(
        d.help.as_deref(),
        Some("choose one in phlo.yaml:\n  capabilities:\n    defaults:\n      table_store: mem_a")
    );
    assert_eq!(p.diagnostics.exit_code(), 3);
}

#[test]
fn a_default_settles_the_ambiguity() {
    let (_d, p) = project("capabilities:\n  defaults:\n    table_store: mem_b\n", two_stores, true);
    let p = p.unwrap();
    assert!(p.diagnostics.is_empty(), "{}", p.diagnostics);
    let row = &p.report.rows.iter().find(|r| &*r.required_by == "asset shop.orders").unwrap();
    assert_eq!(row.resolved_to.as_deref(), Some("table_store:mem_b"));
    assert_eq!(row.provider.as_deref(), Some("mem_b"));
}

#[test]
fn an_asset_override_beats_the_project_default() {
    fn reg(b: RegistryBuilder) -> RegistryBuilder {
        b.register(phlo_core::descriptor!(resource MemA, provides: [dyn Table]))
            .register(phlo_core::descriptor!(resource MemB, provides: [dyn Table]))
    }
    let (_d, p) = project(
        "capabilities:\n  defaults:\n    table_store: mem_b\nassets:\n  ext:\n    external: true\n    requires: [table_store]\n    capability_overrides:\n      table_store: mem_a\n",
        reg,
        true,
    );
    let p = p.unwrap();
    assert!(p.diagnostics.is_empty(), "{}", p.diagnostics);
    let row = &p.report.rows[0];
    assert_eq!(
        (row.resolved_to.as_deref(), row.rule.map(|r| r.as_str())),
        (Some("table_store:mem_a"), Some("asset_override"))
    );
}

#[test]
fn a_panicking_factory_is_recorded_and_what_uses_it_fails() {
    fn reg(b: RegistryBuilder) -> RegistryBuilder {
        b.register(phlo_core::descriptor!(resource Wild, provides: [dyn Table]))
            .register(phlo_core::descriptor!(resource Calm, provides: [dyn Queue]))
            .register(phlo_core::descriptor!(asset_provider Shop))
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
        let mut other = phlo_core::descriptor!(resource Named, provides: []);
        other.crate_name = "other-crate";
        b.register(tested(phlo_core::descriptor!(resource Named, provides: [dyn Table]))).register(other)
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
        b.register(phlo_core::descriptor!(asset_provider Needy, requires: [dyn Lake], optional: [dyn Cache]))
            .register(phlo_core::descriptor!(resource Mem, provides: [dyn Table]))
            // a store nobody uses, which needs something missing: only a warning
            .register(phlo_core::descriptor!(resource Idle, provides: [dyn Secrets], requires: [dyn Vault]))
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
        b.register(phlo_core::descriptor!(resource Base, provides: [dyn Table], requires: [dyn Vault]))
            .register(phlo_core::descriptor!(asset_provider Shop))
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
        b.register(phlo_core::descriptor!(resource Mem, provides: [dyn Table]))
    }
    let (_d, p) = project("resources:\n  mem:\n    anything: 1\n  nope: {}\nexecutor:\n  adapter: dagstr\n", reg, true);
    let p = p.unwrap();
    let text = p.diagnostics.to_string();
    assert!(text.contains("phlo.yaml:6:12: [PHLO-E007] unknown orchestrator adapter `dagstr`"), "{text}");
    assert!(text.contains("phlo.yaml:3:5: [PHLO-E003] unknown key `anything`"), "{text}");
    assert!(text.contains("unknown resource provider `nope`"), "{text}");
}

#[test]
fn the_compiled_echo_plugin_loads_through_inventory() {
    // (`kv`, README's example resource compiled into this test binary, needs a `path`)
    let (_d, p) = project(
        "plugins:\n  deny: [kv]\nassets:\n  x:\n    type: echo\n    rows: 2\n",
        RegistryBuilder::with_compiled,
        true,
    );
    let p = p.unwrap();
    assert!(p.diagnostics.is_empty(), "{}", p.diagnostics);
    let keys: Vec<&str> = p.graph.nodes().iter().map(|a| a.spec.key.as_str()).collect();
    assert_eq!(keys, ["echo.greetings", "echo.numbers", "echo.summary", "x"]);
    let x = p.graph.nodes().iter().find(|a| a.spec.key == "x").unwrap();
    assert_eq!((&*x.provider, x.asset_type.as_deref()), ("echo", Some("echo")));
    assert_eq!(x.spec.requires, ["echo_store"]);
}

#[test]
fn the_same_key_from_two_plugins_names_both() {
    fn reg(b: RegistryBuilder) -> RegistryBuilder {
        b.register(phlo_core::descriptor!(resource Mem, provides: [dyn Table]))
            .register(phlo_core::descriptor!(asset_provider Shop))
            .register(phlo_core::descriptor!(asset_provider OtherShop))
    }
    let (_d, p) = project("name: t\n", reg, true);
    let p = p.unwrap();
    let d = p.diagnostics.iter().find(|d| d.code == Code::DuplicateAsset).expect("a duplicate error");
    assert_eq!(d.message, "asset `shop.orders` is defined twice: by `other_shop` and by `shop`");
    assert_eq!(p.diagnostics.exit_code(), 3);
}

/// A check kind `not_null` that finds nothing; its column is required.
#[derive(serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct NotNull {
    column: String,
}
impl Plugin for NotNull {
    const NAME: &'static str = "not_null";
    const DESCRIPTION: &'static str = "test check";
    type Config = NotNull;
}
impl CheckKind for NotNull {
    fn build(config: NotNull, _: &CheckContext) -> Result<Self, PluginError> {
        Ok(config)
    }
    fn evaluate(&self, _: &RunContext) -> Result<Finding, String> {
        Ok(Finding::new(u64::from(self.column.is_empty()), 1))
    }
}

#[test]
fn checks_of_unknown_kinds_and_bad_configs_are_errors() {
    fn reg(b: RegistryBuilder) -> RegistryBuilder {
        b.register(phlo_core::descriptor!(asset_provider CheckedShop)).register(phlo_core::descriptor!(check NotNull))
    }
    let (_d, p) = project("name: t\n", reg, true);
    let p = p.unwrap();
    let text = p.diagnostics.to_string();
    assert_eq!(codes(&p), [(Code::InvalidValue, Severity::Error), (Code::UnknownCheckKind, Severity::Error)], "{text}");
    assert!(text.contains("missing required key `column`"), "{text}");
    assert!(text.contains("asset `b`: unknown check kind `no_such_kind`"), "{text}");
    assert_eq!(p.diagnostics.exit_code(), 3);
}
