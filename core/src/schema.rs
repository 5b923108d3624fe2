//! The JSON Schema of `phlo.yaml`, including every compiled plugin's config section, so
//! editors can complete and check the file (`phlo schema`).

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde_json::{Map, Value, json};

use crate::config::{
    AssetCommon, CapabilitiesSection, CheckCommon, ExecutorSection, HookCommon, PathsSection, PluginsSection,
    ScheduleSection,
};
use crate::plugin::{PluginKind, Registry};

/// The shape of a project file, before plugins add their sections.
#[derive(JsonSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct ProjectFile {
    /// The project's name.
    name: Option<String>,
    /// Which compiled plugins the project uses.
    plugins: Option<PluginsSection>,
    /// How requirements choose among providers.
    capabilities: Option<CapabilitiesSection>,
    /// Config of resource providers, by provider name.
    resources: Option<BTreeMap<String, Map<String, Value>>>,
    /// Hooks, by hook name.
    hooks: Option<BTreeMap<String, HookCommon>>,
    /// Declarative assets, by asset key.
    assets: Option<BTreeMap<String, AssetCommon>>,
    /// How runs execute.
    executor: Option<ExecutorSection>,
    /// Cron schedules, by name.
    schedules: Option<BTreeMap<String, ScheduleSection>>,
    /// Where the project's files may be.
    paths: Option<PathsSection>,
}

/// Merges a sub-schema's `$defs` into the root's and returns it without them.
fn hoist(root_defs: &mut Map<String, Value>, schema: schemars::Schema) -> Value {
    let mut v = schema.to_value();
    if let Some(obj) = v.as_object_mut() {
        if let Some(Value::Object(defs)) = obj.remove("$defs") {
            for (k, d) in defs {
                root_defs.entry(k).or_insert(d);
            }
        }
        obj.remove("$schema");
    }
    v
}

/// An object schema with the properties of `a` and `b` (and their `required` lists).
fn merge_objects(a: &Value, b: &Value) -> Value {
    let mut props = Map::new();
    let mut required: Vec<Value> = Vec::new();
    for s in [a, b] {
        if let Some(p) = s.get("properties").and_then(Value::as_object) {
            props.extend(p.clone());
        }
        if let Some(r) = s.get("required").and_then(Value::as_array) {
            required.extend(r.iter().cloned());
        }
    }
    let mut out = json!({ "type": "object", "properties": props, "additionalProperties": false });
    if let Some(d) = b.get("description").or_else(|| a.get("description")) {
        out["description"] = d.clone();
    }
    if !required.is_empty() {
        out["required"] = Value::Array(required);
    }
    out
}

/// The JSON Schema of a project file for this registry's enabled plugins.
pub fn project_schema(registry: &Registry) -> Value {
    let base =
        schemars::generate::SchemaSettings::draft2020_12().into_generator().into_root_schema_for::<ProjectFile>();
    let mut root = base.to_value();
    let mut defs = root.get("$defs").and_then(Value::as_object).cloned().unwrap_or_default();
    root["title"] = json!("phlo project file (phlo.yaml / phlo.toml)");

    let hook_common = defs.get("HookCommon").cloned().unwrap_or_else(|| json!({}));
    let asset_common = defs.get("AssetCommon").cloned().unwrap_or_else(|| json!({}));

    let check_common = hoist(
        &mut defs,
        schemars::generate::SchemaSettings::draft2020_12().into_generator().into_root_schema_for::<CheckCommon>(),
    );
    let mut resources = Map::new();
    let mut hooks = Map::new();
    let mut asset_variants = Vec::new();
    let mut check_variants = Vec::new();
    for e in registry.list().iter().filter(|e| e.is_enabled()) {
        let d = e.descriptor();
        let config = hoist(&mut defs, (d.config.schema)());
        let described = |mut s: Value| {
            s["description"] = json!(format!("{} (plugin `{}`)", d.metadata.description, d.name));
            s
        };
        match e.kind() {
            PluginKind::ResourceProvider => {
                resources.insert(d.name.to_string(), described(merge_objects(&json!({}), &config)));
            }
            PluginKind::HookProvider => {
                hooks.insert(d.name.to_string(), described(merge_objects(&hook_common, &config)));
            }
            PluginKind::AssetType => {
                let mut s = merge_objects(&asset_common, &config);
                s["properties"]["type"] = json!({ "const": d.name, "description": d.metadata.description });
                s["required"] = json!(["type"]);
                s["title"] = json!(format!("asset type `{}`", d.name));
                asset_variants.push(s);
            }
            PluginKind::QualityCheck => {
                let mut s = merge_objects(&check_common, &config);
                s["properties"]["type"] = json!({ "const": d.name, "description": d.metadata.description });
                let mut required = vec![json!("type")];
                required.extend(config.get("required").and_then(Value::as_array).cloned().unwrap_or_default());
                s["required"] = Value::Array(required);
                s["title"] = json!(format!("check kind `{}`", d.name));
                check_variants.push(s);
            }
            _ => {}
        }
    }
    for v in &mut asset_variants {
        v["properties"]["checks"] = json!({
            "description": "Quality checks run after the asset, each `{type: <check kind>, …}`.",
            "type": "array", "items": { "anyOf": check_variants },
        });
    }
    let mut external = merge_objects(&asset_common, &json!({}));
    external["properties"]["checks"] = json!({ "type": "array", "items": { "anyOf": check_variants } });
    external["properties"]["external"] = json!({ "const": true });
    external["required"] = json!(["external"]);
    external["title"] = json!("external asset");
    asset_variants.push(external);

    let props = root["properties"].as_object_mut().expect("schemars emits properties for a struct");
    props.insert(
        "resources".into(),
        json!({ "description": "Config of resource providers, by provider name.", "type": "object",
                "properties": resources, "additionalProperties": false }),
    );
    props.insert(
        "hooks".into(),
        json!({ "description": "Hooks, by hook name.", "type": "object",
                "properties": hooks, "additionalProperties": false }),
    );
    props.insert(
        "assets".into(),
        json!({ "description": "Declarative assets, by asset key.", "type": "object",
                "additionalProperties": { "anyOf": asset_variants } }),
    );
    root["$defs"] = Value::Object(defs);
    root
}
