//! The resource provider of README "Adding a plugin crate", exactly as printed there, used
//! through a project: typed config with positions, a capability served by type, a probe.

use phlo_core::plugin::{Plugin, PluginContext, PluginError, RegistryBuilder, Resource};
use phlo_core::project::{LoadOptions, Project};

/// The capability: `requires: [key_value]` in phlo.yaml, `dyn KeyValue` in code.
pub trait KeyValue: Send + Sync {
    /// The value of `key`.
    fn get(&self, key: &str) -> Option<String>;
}
phlo_core::capability!(dyn KeyValue = "key_value");

// ---- README: begin
#[derive(serde::Deserialize, schemars::JsonSchema)]
pub struct Kv {
    /// The file, relative to the project.
    pub path: std::path::PathBuf,
}
impl Plugin for Kv {
    const NAME: &'static str = "kv";
    const DESCRIPTION: &'static str = "Values from a key=value file";
    type Config = Kv; // the config is the resource
}
impl Resource for Kv {
    fn create(config: Kv, ctx: &PluginContext) -> Result<Self, PluginError> {
        Ok(Kv { path: ctx.project_path("path", config.path)? })
    }
    fn probe(&self) -> Result<(), PluginError> {
        std::fs::metadata(&self.path).map(drop).map_err(|e| PluginError::msg(format!("{}: {e}", self.path.display())))
    }
}
impl KeyValue for Kv {
    fn get(&self, key: &str) -> Option<String> {
        let text = std::fs::read_to_string(&self.path).ok()?;
        text.lines().find_map(|l| l.strip_prefix(key)?.strip_prefix('=').map(Into::into))
    }
}
phlo_core::register!(resource Kv, provides: [dyn KeyValue]);
// ---- README: end

fn load(dir: &std::path::Path, yaml: &str) -> Project {
    std::fs::write(dir.join("phlo.yaml"), yaml).unwrap();
    let options = LoadOptions {
        registry: |b: RegistryBuilder| b.register(phlo_core::descriptor!(resource Kv, provides: [dyn KeyValue])),
        ..LoadOptions::default()
    };
    Project::load(dir, &options).unwrap()
}

#[test]
fn the_readme_resource_is_at_most_25_lines_and_works() {
    let text = include_str!("readme_plugin.rs");
    let snippet = text.split("// ---- README: begin\n").nth(1).unwrap().split("// ---- README: end").next().unwrap();
    assert!(snippet.lines().count() <= 25, "{} lines", snippet.lines().count());

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("settings.txt"), "region=eu\n").unwrap();
    let p = load(
        dir.path(),
        "resources:\n  kv:\n    path: settings.txt\nassets:\n  x:\n    external: true\n    requires: [key_value]\n",
    );
    assert!(p.diagnostics.is_empty(), "{}", p.diagnostics);
    assert_eq!(p.registry.capability::<dyn KeyValue>("kv").unwrap().get("region").as_deref(), Some("eu"));
    p.registry.probe("kv").unwrap();

    let p = load(dir.path(), "resources:\n  kv:\n    paht: settings.txt\n");
    let text = p.diagnostics.to_string();
    assert!(text.contains("phlo.yaml:3:5: [PHLO-E003] unknown key `paht`"), "{text}");
    assert!(text.contains("did you mean `path`?"), "{text}");
}
