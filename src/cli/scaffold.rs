//! `phlo plugin new NAME --kind resource|asset-type|check|hook`: writes a plugin crate that
//! compiles and passes its test, and wires it into the workspace — a member, a workspace
//! dependency, a cargo feature (also in `full`), the facade's link line and its `FEATURES`
//! entry. Nothing is written when a check fails.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use phlo_core::capability::is_snake_case;
use phlo_core::diagnostic::{Code, Diagnostic};
use toml_edit::{Array, DocumentMut, InlineTable, Item, Value};

use super::Outcome;

/// The kind of plugin to scaffold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Kind {
    /// A resource provider serving a capability of its own.
    Resource,
    /// An asset type instantiated from phlo.yaml.
    AssetType,
    /// A quality-check kind.
    Check,
    /// A hook provider.
    Hook,
}

#[derive(Debug, clap::Args)]
pub(crate) struct NewArgs {
    /// The plugin's name, lower snake_case (also its config section and `type:`).
    name: String,
    /// What kind of plugin.
    #[arg(long, value_enum)]
    kind: Kind,
    /// The phlo workspace to add it to (default: the current directory or a parent).
    #[arg(long, value_name = "DIR")]
    workspace: Option<PathBuf>,
}

/// The marker line after which the facade's link list starts.
const LINK_MARKER: &str = "// ---- the link list: one line per plugin crate ----";

fn refuse(message: impl Into<String>, help: impl Into<String>) -> Outcome {
    Outcome::from_diagnostics(Diagnostic::error(Code::Scaffold, message).with_help(help).into())
}

fn camel(name: &str) -> String {
    name.split('_')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let mut c = p.chars();
            c.next().map(|f| f.to_ascii_uppercase().to_string() + c.as_str()).unwrap_or_default()
        })
        .collect()
}

/// The workspace root: `start` or the nearest parent with a `[workspace]` Cargo.toml and the
/// facade's link list.
fn find_workspace(start: &Path) -> Option<PathBuf> {
    let start = std::fs::canonicalize(start).ok()?;
    start.ancestors().find(|d| is_phlo_workspace(d)).map(Path::to_path_buf)
}

fn is_phlo_workspace(dir: &Path) -> bool {
    let manifest = std::fs::read_to_string(dir.join("Cargo.toml")).unwrap_or_default();
    let lib = std::fs::read_to_string(dir.join("src/lib.rs")).unwrap_or_default();
    manifest.contains("[workspace]") && lib.contains(LINK_MARKER) && lib.contains("pub const FEATURES")
}

/// What is generated for one plugin.
struct Plan {
    name: String,
    folder: String,
    crate_name: String,
    feature: String,
    kind: Kind,
}

impl Plan {
    fn new(name: &str, kind: Kind) -> Self {
        let (dir, prefix, feature) = match kind {
            Kind::Hook => ("hooks", "phlo-hook", "hook"),
            _ => ("plugins", "phlo-plugin", "plugin"),
        };
        let dashed = name.replace('_', "-");
        Self {
            name: name.to_string(),
            folder: format!("{dir}/{name}"),
            crate_name: format!("{prefix}-{dashed}"),
            feature: format!("{feature}-{dashed}"),
            kind,
        }
    }

    fn ident(&self) -> String {
        self.crate_name.replace('-', "_")
    }

    fn fill(&self, template: &str) -> String {
        template
            .replace("{{name}}", &self.name)
            .replace("{{Camel}}", &camel(&self.name))
            .replace("{{crate}}", &self.crate_name)
    }

    fn manifest(&self) -> String {
        let description = match self.kind {
            Kind::Resource => format!("phlo resource provider `{}`", self.name),
            Kind::AssetType => format!("phlo asset type `{}`", self.name),
            Kind::Check => format!("phlo check kind `{}`", self.name),
            Kind::Hook => format!("phlo hook provider `{}`", self.name),
        };
        let dev = match self.kind {
            Kind::AssetType => "\n[dev-dependencies]\ntokio = { workspace = true, features = [\"rt\", \"macros\"] }\n",
            _ => "",
        };
        format!(
            "[package]\nname = \"{}\"\ndescription = \"{description}\"\nversion.workspace = true\nedition.workspace = true\n\
             rust-version.workspace = true\nlicense.workspace = true\nauthors.workspace = true\n\n\
             [dependencies]\nphlo-core.workspace = true\nserde.workspace = true\nschemars.workspace = true\n{dev}\n\
             [lints]\nworkspace = true\n",
            self.crate_name
        )
    }

    fn lib(&self) -> String {
        self.fill(match self.kind {
            Kind::Resource => RESOURCE,
            Kind::AssetType => ASSET_TYPE,
            Kind::Check => CHECK,
            Kind::Hook => HOOK,
        })
    }

    fn feature_hint(&self) -> String {
        let (caps, types) = match self.kind {
            Kind::Resource => (format!("\"{0}:{0}\"", self.name), String::new()),
            Kind::AssetType => (String::new(), format!("\"{}\"", self.name)),
            _ => (String::new(), String::new()),
        };
        format!(
            "    FeatureHint {{\n        feature: \"{f}\",\n        crate_name: \"{c}\",\n        enabled: cfg!(feature = \"{f}\"),\n        \
             plugins: &[\"{n}\"],\n        capabilities: &[{caps}],\n        asset_types: &[{types}],\n    }},\n",
            f = self.feature,
            c = self.crate_name,
            n = self.name,
        )
    }
}

/// Adds the crate to the root manifest.
fn wire_manifest(text: &str, plan: &Plan) -> Result<String, String> {
    let mut doc: DocumentMut = text.parse().map_err(|e| format!("the root Cargo.toml does not parse: {e}"))?;
    let ws = doc.get_mut("workspace").and_then(Item::as_table_like_mut).ok_or("no [workspace] table")?;
    let members = ws.get_mut("members").and_then(Item::as_array_mut).ok_or("no `workspace.members` array")?;
    members.push(plan.folder.as_str());
    let deps = ws.get_mut("dependencies").and_then(Item::as_table_like_mut).ok_or("no [workspace.dependencies]")?;
    let mut dep = InlineTable::new();
    dep.insert("path", plan.folder.as_str().into());
    dep.insert("version", "0.1.0".into());
    deps.insert(&plan.crate_name, Item::Value(Value::InlineTable(dep)));

    let features = doc.get_mut("features").and_then(Item::as_table_like_mut).ok_or("no [features] table")?;
    let mut enables = Array::new();
    enables.push(format!("dep:{}", plan.crate_name));
    features.insert(&plan.feature, Item::Value(Value::Array(enables)));
    if let Some(full) = features.get_mut("full").and_then(Item::as_array_mut) {
        full.push(plan.feature.as_str());
    }
    let deps = doc.get_mut("dependencies").and_then(Item::as_table_like_mut).ok_or("no [dependencies] table")?;
    let mut dep = InlineTable::new();
    dep.insert("workspace", true.into());
    dep.insert("optional", true.into());
    deps.insert(&plan.crate_name, Item::Value(Value::InlineTable(dep)));
    Ok(doc.to_string())
}

/// Adds the link line (kept sorted, as rustfmt wants) and the `FEATURES` entry.
fn wire_facade(text: &str, plan: &Plan) -> Result<String, String> {
    let start = text.find(LINK_MARKER).ok_or("no link-list marker in src/lib.rs")? + LINK_MARKER.len() + 1;
    let end = start + text[start..].find("\n\n").ok_or("the link list does not end with a blank line")? + 1;
    // the list is pairs of `#[cfg(feature = "…")]` and `use … as _;`; anything else is refused
    // rather than reordered into something that no longer compiles
    let mut links: Vec<(String, String)> = Vec::new();
    for pair in text[start..end].lines().collect::<Vec<_>>().chunks(2) {
        match pair {
            [attr, line]
                if attr.starts_with("#[cfg(feature = ") && line.starts_with("use ") && line.ends_with(" as _;") =>
            {
                links.push(((*line).to_string(), (*attr).to_string()));
            }
            other => return Err(format!("the link list holds lines `phlo plugin new` does not understand: {other:?}")),
        }
    }
    links.push((format!("use {} as _;", plan.ident()), format!("#[cfg(feature = \"{}\")]", plan.feature)));
    links.sort();
    let block: String = links.iter().map(|(line, attr)| format!("{attr}\n{line}\n")).collect();
    let mut out = format!("{}{block}{}", &text[..start], &text[end..]);

    let features = out.find("pub const FEATURES").ok_or("no `FEATURES` table in src/lib.rs")?;
    let close = features + out[features..].find("\n];").ok_or("the `FEATURES` table does not end with `];`")? + 1;
    out.insert_str(close, &plan.feature_hint());
    Ok(out)
}

pub(crate) fn new<W: Write>(args: &NewArgs, out: &mut W) -> io::Result<Outcome> {
    if !is_snake_case(&args.name) {
        return Ok(refuse(
            format!("`{}` is not a plugin name", args.name),
            "plugin names are lower snake_case: a letter, then a-z, 0-9 or `_` (e.g. `my_store`)",
        ));
    }
    let start = args.workspace.clone().unwrap_or_else(|| PathBuf::from("."));
    let Some(root) = find_workspace(&start) else {
        return Ok(refuse(
            format!("`{}` is not inside a phlo workspace", start.display()),
            "run it in the phlo repository (a Cargo.toml with [workspace] and the facade's src/lib.rs), or pass --workspace DIR",
        ));
    };
    let plan = Plan::new(&args.name, args.kind);
    let dir = root.join(&plan.folder);
    let manifest_path = root.join("Cargo.toml");
    let facade_path = root.join("src/lib.rs");
    let manifest = std::fs::read_to_string(&manifest_path)?;
    let facade = std::fs::read_to_string(&facade_path)?;
    if dir.exists() || manifest.contains(&format!("\"{}\"", plan.crate_name)) || facade.contains(&plan.feature) {
        return Ok(refuse(
            format!("`{}` already exists (folder `{}`, crate `{}`)", plan.name, plan.folder, plan.crate_name),
            "choose another name",
        ));
    }
    let wired = wire_manifest(&manifest, &plan).and_then(|m| Ok((m, wire_facade(&facade, &plan)?)));
    let (manifest, facade) = match wired {
        Ok(w) => w,
        Err(e) => {
            return Ok(refuse(
                format!("cannot wire the plugin into the workspace: {e}"),
                "restore the workspace's Cargo.toml and src/lib.rs from git, or pass --workspace DIR",
            ));
        }
    };
    std::fs::create_dir_all(dir.join("src"))?;
    std::fs::write(dir.join("Cargo.toml"), plan.manifest())?;
    std::fs::write(dir.join("src/lib.rs"), plan.lib())?;
    std::fs::write(&manifest_path, manifest)?;
    std::fs::write(&facade_path, facade)?;
    // the templates are laid out for short names; rustfmt settles the rest
    let formatted = std::process::Command::new("rustfmt")
        .args(["--edition", "2024", "--config-path"])
        .arg(root.join("rustfmt.toml"))
        .arg(dir.join("src/lib.rs"))
        .status();
    if !formatted.is_ok_and(|s| s.success()) {
        writeln!(out, "note: rustfmt did not run; run `cargo fmt --all` before committing")?;
    }
    writeln!(out, "created {} (crate `{}`, feature `{}`, in `full`)", plan.folder, plan.crate_name, plan.feature)?;
    writeln!(out, "  test it:  cargo test -p {}", plan.crate_name)?;
    writeln!(out, "  use it:   cargo run --features {} -- plugins list", plan.feature)?;
    Ok(Outcome::ok())
}

const RESOURCE: &str = r#"//! The `{{name}}` resource provider: `resources.{{name}}` in phlo.yaml; assets that
//! `require: [{{name}}]` get its [`{{Camel}}Api`].

use phlo_core::plugin::{Plugin, PluginContext, PluginError, Resource};
use schemars::JsonSchema;
use serde::Deserialize;

/// What the resource offers to the assets that require the `{{name}}` capability.
pub trait {{Camel}}Api: Send + Sync {
    /// Says hello (replace with what the resource does).
    fn greet(&self, who: &str) -> String;
}
phlo_core::capability!(dyn {{Camel}}Api = "{{name}}");

/// `resources.{{name}}` in phlo.yaml.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct {{Camel}}Config {
    /// The first word of a greeting (default `hello`).
    pub greeting: Option<String>,
}

/// The resource.
#[derive(Debug)]
pub struct {{Camel}} {
    greeting: String,
}

impl Plugin for {{Camel}} {
    const NAME: &'static str = "{{name}}";
    const DESCRIPTION: &'static str = "The {{name}} resource";
    type Config = {{Camel}}Config;
}

impl Resource for {{Camel}} {
    fn create(config: {{Camel}}Config, _: &PluginContext) -> Result<Self, PluginError> {
        Ok(Self { greeting: config.greeting.unwrap_or_else(|| String::from("hello")) })
    }

    fn probe(&self) -> Result<(), PluginError> {
        if self.greeting.trim().is_empty() {
            return Err(PluginError::with_help("the greeting is empty", "set `resources.{{name}}.greeting`"));
        }
        Ok(())
    }
}

impl {{Camel}}Api for {{Camel}} {
    fn greet(&self, who: &str) -> String {
        format!("{} {who}", self.greeting)
    }
}

phlo_core::register!(resource {{Camel}}, provides: [dyn {{Camel}}Api]);

#[cfg(test)]
mod tests {
    use phlo_core::plugin::Registry;

    use super::*;

    #[test]
    fn serves_its_capability_and_probes() {
        let registry = Registry::builder()
            .register(phlo_core::descriptor!(resource {{Camel}}, provides: [dyn {{Camel}}Api]))
            .build()
            .unwrap();
        assert_eq!(registry.capability::<dyn {{Camel}}Api>("{{name}}").unwrap().greet("ada"), "hello ada");
        registry.probe("{{name}}").unwrap();
    }
}
"#;

const ASSET_TYPE: &str = r#"//! The `{{name}}` asset type: `assets.<key>: {type: {{name}}, rows: 3}` in phlo.yaml.

use phlo_core::plugin::{AssetType, AssetTypeContext, Plugin, PluginError};
use phlo_core::spec::{AssetKind, AssetSpec, MaterializeResult, RunContext};
use schemars::JsonSchema;
use serde::Deserialize;

/// The keys of an `assets.<key>: {type: {{name}}, …}` entry.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct {{Camel}}Config {
    /// How many rows the asset reports (replace with what the asset needs).
    pub rows: u64,
}

/// The asset type.
#[derive(Debug)]
pub struct {{Camel}};

impl Plugin for {{Camel}} {
    const NAME: &'static str = "{{name}}";
    const DESCRIPTION: &'static str = "The {{name}} asset type";
    type Config = {{Camel}}Config;
}

impl AssetType for {{Camel}} {
    const KIND: AssetKind = AssetKind::Ingestion;

    fn build(config: {{Camel}}Config, ctx: &AssetTypeContext) -> Result<AssetSpec, PluginError> {
        let rows = config.rows;
        Ok(AssetSpec::new(ctx.key.as_str()).with_metadata("rows", rows).with_run(move |_: RunContext| async move {
            Ok(MaterializeResult::new().with_row_count(rows))
        }))
    }
}

phlo_core::register!(asset_type {{Camel}});

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn builds_and_runs_an_asset() {
        let ctx = AssetTypeContext { key: String::from("demo.{{name}}"), ..AssetTypeContext::default() };
        let spec = <{{Camel}} as AssetType>::build({{Camel}}Config { rows: 3 }, &ctx).unwrap();
        let run = spec.run.expect("a run function");
        let result = run.0.run(RunContext::new("r", "demo.{{name}}", None, 1)).await.unwrap();
        assert_eq!(result.row_count(), Some(3));
    }
}
"#;

const CHECK: &str = r#"//! The `{{name}}` check kind: `checks: [{type: {{name}}, max: 100}]` on an asset.

use phlo_core::data::{Cell, QueryEngine, quote_ident};
use phlo_core::plugin::{CheckContext, CheckKind, Plugin, PluginError};
use phlo_core::spec::{Finding, RunContext};
use schemars::JsonSchema;
use serde::Deserialize;

/// The keys of a `{type: {{name}}, …}` check.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct {{Camel}}Config {
    /// The most rows the asset's table may hold (replace with what the check needs).
    pub max: u64,
}

/// The check, built from its config.
#[derive(Debug)]
pub struct {{Camel}} {
    table: String,
    max: u64,
}

impl Plugin for {{Camel}} {
    const NAME: &'static str = "{{name}}";
    const DESCRIPTION: &'static str = "The asset's table having more than `max` rows";
    type Config = {{Camel}}Config;
}

impl CheckKind for {{Camel}} {
    fn build(config: {{Camel}}Config, ctx: &CheckContext) -> Result<Self, PluginError> {
        Ok(Self { table: quote_ident(&ctx.table), max: config.max })
    }

    fn evaluate(&self, ctx: &RunContext) -> Result<Finding, String> {
        let engine = ctx.capability::<dyn QueryEngine>().map_err(|e| e.message)?;
        let rows = engine.query(&format!("SELECT count(*) FROM {}", self.table)).map_err(|e| e.message)?;
        let n = match rows.rows.first().and_then(|r| r.first()) {
            Some(Cell::Int(n)) => u64::try_from(*n).unwrap_or(0),
            other => return Err(format!("expected a count, got {other:?}")),
        };
        Ok(Finding::new(u64::from(n > self.max), 1).with_metadata("rows", n))
    }
}

phlo_core::register!(check {{Camel}}, requires: [dyn QueryEngine]);

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use phlo_core::capability::CapabilityMap;
    use phlo_core::data::{Column, DataError, DataType, Rows};

    use super::*;

    /// An engine whose every table has 5 rows.
    struct Five;
    impl QueryEngine for Five {
        fn query(&self, _: &str) -> Result<Rows, DataError> {
            let mut rows = Rows::new(vec![Column::new("count", DataType::Integer)]);
            rows.rows.push(vec![Cell::Int(5)]);
            Ok(rows)
        }
        fn execute(&self, _: &str) -> Result<u64, DataError> {
            Ok(0)
        }
        fn probe(&self) -> Result<(), DataError> {
            Ok(())
        }
    }

    #[test]
    fn finds_a_table_over_its_maximum() {
        let ctx = CheckContext::new("a", "a", "{{name}}");
        let mut run = RunContext::new("r", "a", None, 1);
        run.capabilities = Arc::new(CapabilityMap::new().with::<dyn QueryEngine>(Arc::new(Five)));
        let over = {{Camel}}::build({{Camel}}Config { max: 4 }, &ctx).unwrap();
        assert_eq!(over.evaluate(&run).unwrap().violations, 1);
        let within = {{Camel}}::build({{Camel}}Config { max: 5 }, &ctx).unwrap();
        assert_eq!(within.evaluate(&run).unwrap().violations, 0);
    }
}
"#;

const HOOK: &str = r#"//! The `{{name}}` hook provider: counts lifecycle events (`hooks.{{name}}` in phlo.yaml).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use phlo_core::hooks::{Event, FailurePolicy, HookRegistration};
use phlo_core::plugin::{HookProvider, Plugin, PluginContext, PluginError};
use schemars::JsonSchema;
use serde::Deserialize;

/// `hooks.{{name}}` in phlo.yaml (beside `enabled`, `priority` and `failure_policy`).
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct {{Camel}}Config {
    /// Count only the events of this asset (all when unset).
    pub asset: Option<String>,
}

/// The hook provider.
#[derive(Debug)]
pub struct {{Camel}} {
    asset: Option<String>,
    seen: Arc<AtomicU64>,
}

impl {{Camel}} {
    /// Events counted so far.
    pub fn seen(&self) -> u64 {
        self.seen.load(Ordering::Relaxed)
    }
}

impl Plugin for {{Camel}} {
    const NAME: &'static str = "{{name}}";
    const DESCRIPTION: &'static str = "Counts lifecycle events";
    type Config = {{Camel}}Config;
}

impl HookProvider for {{Camel}} {
    fn create(config: {{Camel}}Config, _: &PluginContext) -> Result<Self, PluginError> {
        Ok(Self { asset: config.asset, seen: Arc::default() })
    }

    fn hooks(&self) -> Vec<HookRegistration> {
        let seen = Arc::clone(&self.seen);
        let registration = HookRegistration::new("{{name}}", "count", move |_: &Event| {
            seen.fetch_add(1, Ordering::Relaxed);
            Ok(())
        })
        .policy(FailurePolicy::Log);
        vec![match &self.asset {
            Some(key) => registration.assets([key.as_str()]),
            None => registration,
        }]
    }
}

phlo_core::register!(hook_provider {{Camel}});

#[cfg(test)]
mod tests {
    use phlo_core::hooks::{Correlation, EventPayload, HookBus, RunEvent};

    use super::*;

    #[test]
    fn counts_every_event() {
        let hook = <{{Camel}} as HookProvider>::create({{Camel}}Config::default(), &PluginContext::new("{{name}}", "."))
            .unwrap();
        let mut bus = HookBus::builder();
        for r in HookProvider::hooks(&hook) {
            bus.register(r).unwrap();
        }
        let bus = bus.freeze(None).unwrap();
        bus.emit_event(Event::new(EventPayload::RunStart(RunEvent::default()), Correlation::run("r1"))).unwrap();
        assert_eq!(hook.seen(), 1);
    }
}
"#;

#[cfg(test)]
mod tests {
    use super::*;

    const MANIFEST: &str = "[workspace]\nmembers = [\"core\"]\n\n[workspace.dependencies]\nphlo-core = { path = \"core\" }\n\n\
        [package]\nname = \"phlo\"\n\n[features]\ndefault = []\nfull = [\"plugin-a\"]\nplugin-a = [\"dep:phlo-plugin-a\"]\n\n\
        [dependencies]\nphlo-core.workspace = true\n";
    const FACADE: &str = "//! x\n\n// ---- the link list: one line per plugin crate ----\n#[cfg(feature = \"plugin-a\")]\nuse phlo_plugin_a as _;\n\n\
        pub const FEATURES: &[FeatureHint] = &[\n    FeatureHint {\n        feature: \"plugin-a\",\n    },\n];\n";

    #[test]
    fn wiring_adds_a_member_a_feature_a_link_line_and_a_hint() {
        let plan = Plan::new("my_store", Kind::Resource);
        let m = wire_manifest(MANIFEST, &plan).unwrap();
        assert!(m.contains("members = [\"core\", \"plugins/my_store\"]"), "{m}");
        assert!(m.contains("phlo-plugin-my-store = { path = \"plugins/my_store\", version = \"0.1.0\" }"), "{m}");
        assert!(m.contains("full = [\"plugin-a\", \"plugin-my-store\"]"), "{m}");
        assert!(m.contains("plugin-my-store = [\"dep:phlo-plugin-my-store\"]"), "{m}");
        assert!(m.contains("phlo-plugin-my-store = { workspace = true, optional = true }"), "{m}");
        let f = wire_facade(FACADE, &plan).unwrap();
        assert!(
            f.contains(
                "use phlo_plugin_a as _;\n#[cfg(feature = \"plugin-my-store\")]\nuse phlo_plugin_my_store as _;\n\n"
            ),
            "{f}"
        );
        assert!(f.contains("capabilities: &[\"my_store:my_store\"],\n        asset_types: &[],\n    },\n];"), "{f}");
        assert_eq!(camel("my_store"), "MyStore");
        assert_eq!(Plan::new("audit", Kind::Hook).folder, "hooks/audit");
        assert_eq!(Plan::new("audit", Kind::Hook).feature, "hook-audit");
    }

    #[test]
    fn a_broken_workspace_is_refused_without_writing() {
        let plan = Plan::new("x", Kind::Check);
        assert!(wire_manifest("[package]\nname = \"y\"\n", &plan).is_err());
        assert!(wire_facade("no marker here", &plan).is_err());
        let odd = FACADE.replace("use phlo_plugin_a as _;\n", "use phlo_plugin_a as _;\n// a comment\n");
        assert!(wire_facade(&odd, &plan).unwrap_err().contains("does not understand"));
    }
}
