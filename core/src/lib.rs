//! phlo-core: the framework every phlo crate depends on.
//!
//! Modules in layer order: each imports only from the ones listed before it (a test keeps
//! it so; `docs/architecture.md` explains why).
//!
//! * [`diagnostic`] — errors with a location, a fix and a stable code;
//! * [`source`] — the positioned syntax tree of config files, typed reading, `${VAR}`;
//! * [`capability`] — capabilities, requirements, the resolver, typed capability traits;
//! * [`data`] — `TableStore` and `QueryEngine`, the capability traits for tables and SQL;
//! * [`spec`] — asset specs, partitions, retry policies, checks, run functions;
//! * [`graph`] — the asset graph and the selection language;
//! * [`schedule`] — cron schedules;
//! * [`hooks`] — lifecycle events and the hook bus;
//! * [`execution`] — run requests and reports;
//! * [`plugin`] — one trait per plugin kind, descriptors and the registry;
//! * [`config`] — the `phlo.yaml` / `phlo.toml` model;
//! * [`schema`] — the JSON Schema of the project file;
//! * [`project`] — loading a project through every phase, and preparing runs.
//!
//! Plugin crates depend on this crate only and register with [`register!`].

pub mod capability;
pub mod config;
pub mod data;
pub mod diagnostic;
pub mod execution;
pub mod graph;
pub mod hooks;
pub mod par;
pub mod plugin;
pub mod project;
pub mod schedule;
pub mod schema;
pub mod secret;
pub mod source;
pub mod spec;
pub mod sql;

/// Re-exported so plugin crates need no direct dependency on `inventory`.
pub use inventory;

/// The order of the layers, lowest first: a module may import only from itself and the
/// modules before it. `docs/architecture.md` explains the order; [`layering`]'s test keeps it.
pub const LAYERS: &[&str] = &[
    "par",
    "diagnostic",
    "secret",
    "source",
    "capability",
    "data",
    "spec",
    "graph",
    "schedule",
    "hooks",
    "execution",
    "plugin",
    "sql",
    "config",
    "schema",
    "project",
];

#[cfg(test)]
mod layering {
    use std::path::Path;

    /// Every `crate::<module>` path in the code (comments aside) of a file under `src/`.
    fn imports(text: &str) -> Vec<String> {
        let mut out = Vec::new();
        for line in text.lines() {
            let code = line.split("//").next().unwrap_or("");
            let mut rest = code;
            while let Some(i) = rest.find("crate::") {
                let after = &rest[i + "crate::".len()..];
                let before = &rest[..i];
                // `$crate::` in macros is the same crate; `phlo_crate::` is not ours
                let preceded_ok = before.is_empty() || !before.ends_with(|c: char| c.is_alphanumeric() || c == '_');
                if preceded_ok {
                    if let Some(group) = after.strip_prefix('{') {
                        let end = group.find('}').unwrap_or(group.len());
                        out.extend(
                            group[..end].split(',').map(|p| p.trim().split("::").next().unwrap_or("").to_string()),
                        );
                    } else {
                        let name: String = after.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
                        out.push(name);
                    }
                }
                rest = after;
            }
        }
        out.retain(|m| !m.is_empty());
        out
    }

    fn files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                files(&p, out);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }

    #[test]
    fn no_module_imports_from_a_layer_above_it() {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut all = Vec::new();
        files(&src, &mut all);
        let rank = |m: &str| super::LAYERS.iter().position(|l| *l == m);
        let mut violations = Vec::new();
        for path in all {
            let rel = path.strip_prefix(&src).unwrap();
            let module =
                rel.components().next().unwrap().as_os_str().to_string_lossy().trim_end_matches(".rs").to_string();
            if module == "lib" {
                continue;
            }
            let own = rank(&module).unwrap_or_else(|| panic!("module `{module}` is missing from LAYERS"));
            for m in imports(&std::fs::read_to_string(&path).unwrap()) {
                if let Some(r) = rank(&m)
                    && r > own
                {
                    violations.push(format!(
                        "{} imports `crate::{m}` (layer {r}) from layer {own} `{module}`",
                        rel.display()
                    ));
                }
            }
        }
        assert!(violations.is_empty(), "imports from a layer above:\n{}", violations.join("\n"));
    }

    #[test]
    fn the_scanner_sees_grouped_and_plain_paths() {
        let found =
            imports("use crate::{plugin::X, spec};\nlet x = crate::graph::Y; // crate::project\n$crate::hooks::Z");
        assert_eq!(found, ["plugin", "spec", "graph", "hooks"]);
    }
}
