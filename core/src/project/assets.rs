//! Phase 7 of loading: the assets — those asset providers list in code and those phlo.yaml
//! declares through an asset type — with their checks built by their kinds, into the graph.

use rustc_hash::FxHashMap as HashMap;
use std::path::Path;
use std::sync::Arc;

use super::{FeatureHint, feature_for, unknown_entry};
use crate::config::{self, AssetDecl, CheckDecl, ProjectConfig};
use crate::data::table_name;
use crate::diagnostic::{Code, Diagnostic, Diagnostics, SourceFile, Span, did_you_mean, panic_message};
use crate::graph::{AssetGraph, AssetNode, GraphError};
use crate::plugin::{AssetTypeContext, CheckContext, Factory, Instance, PluginError, PluginKind, Registry};
use crate::source::Node;
use crate::spec::{AssetKey, AssetSpec, CheckSpec, Columns, TableRef};

/// From how many declared assets the building is shared among the cores.
const PARALLEL_FROM: usize = 2_000;

pub(super) fn collect_assets(
    config: &ProjectConfig,
    registry: &Registry,
    dir: &Path,
    hints: &[FeatureHint],
    diags: &mut Diagnostics,
) -> AssetGraph {
    let mut assets: Vec<AssetNode> = Vec::new();
    for e in registry.list().iter().filter(|e| e.kind() == PluginKind::AssetProvider && e.is_enabled()) {
        let Ok(Instance::Assets(p)) = registry.get_or_create(PluginKind::AssetProvider, e.name()) else { continue };
        let listed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| p.assets()))
            .unwrap_or_else(|payload| Err(PluginError::Panicked(panic_message(payload.as_ref()))));
        match listed {
            Ok(specs) => {
                let source = SourceFile::new(format!("<asset provider `{}`>", e.name()), "");
                for mut spec in specs {
                    let checks = std::mem::take(&mut spec.checks);
                    let decls = checks
                        .into_iter()
                        .map(|c| {
                            // a check written in code without settings reads as an empty mapping
                            let config =
                                if c.config.is_null() { Node::empty_map() } else { Node::from_json(&c.config) };
                            CheckDecl { config, spec: c, kind_span: Span::default() }
                        })
                        .collect::<Vec<_>>();
                    build_checks(&mut spec, &decls, registry, &source, hints, diags);
                    assets.push(AssetNode::new(spec, e.name()));
                }
            }
            Err(err) => diags.push(
                Diagnostic::error(
                    Code::PluginFailed,
                    format!("asset provider `{}` failed to list its assets: {err}", e.name()),
                )
                .with_help("fix the plugin, or disable it with `plugins.deny`"),
            ),
        }
    }
    let decls: HashMap<&str, &AssetDecl> = config.assets.iter().map(|d| (d.key.name.as_str(), d)).collect();
    // each declared asset is built on its own (its type's config, SQL, header), so large
    // projects build them on every core; the order of the result stays the file's
    let seen = &*diags;
    let build_part = |part: &[AssetDecl], seen: &Diagnostics| {
        let mut found = Diagnostics::new();
        let mut built = Vec::with_capacity(part.len());
        for decl in part {
            let node =
                if decl.valid { declarative_asset(decl, config, registry, dir, hints, seen, &mut found) } else { None };
            // an entry with an error (already reported) still defines its key and deps: one
            // mistake gives one error, not a follow-on "unknown dependency" downstream
            built.push(node.unwrap_or_else(|| {
                let mut spec = AssetSpec::new(&decl.key.name);
                spec.deps.extend(decl.common.deps.iter().map(|d| d.value.as_str().into()));
                AssetNode::new(spec, "phlo.yaml")
            }));
        }
        (built, found)
    };
    let parts = crate::par::map_chunks(&config.assets, PARALLEL_FROM, |part| build_part(part, seen));
    assets.reserve(config.assets.len());
    for (built, found) in parts {
        assets.extend(built);
        diags.extend(found);
    }
    table_collisions(&assets, &decls, config, diags);
    infer_deps(&mut assets, &decls, config, diags);
    // each asset learns its dependencies' tables (a `table:` setting included)
    let tables: HashMap<&str, String> = assets.iter().map(|a| (a.spec.key.as_str(), table_of(&a.spec))).collect();
    for a in &assets {
        let own = a.spec.deps.iter().filter_map(|d| tables.get(d.as_str()).map(|t| (d.to_string(), t.clone())));
        a.spec.dep_tables.fill(own.collect());
    }
    check_columns(&mut assets, &decls, config, diags);
    let (graph, errors) = AssetGraph::build(assets);
    for e in errors {
        // point into phlo.yaml where the asset is declared there
        let span = match &e {
            GraphError::DuplicateKey { key, .. } => decls.get(key.as_str()).map(|d| d.key.span),
            GraphError::UnknownDep { asset, dep, .. } => decls
                .get(asset.as_str())
                .map(|d| d.common.deps.iter().find(|x| &x.value == dep).map_or(d.key.span, |x| x.span)),
            GraphError::Cycle { path } => path.iter().find_map(|k| decls.get(k.as_str()).map(|d| d.key.span)),
        };
        let mut d = e.to_diagnostic();
        if let Some(span) = span {
            d = d.at(&config.source, span);
        }
        diags.push(d);
    }
    graph
}

/// The table an asset writes: its `table` metadata, else the naming rule.
fn table_of(spec: &AssetSpec) -> String {
    spec.metadata.get("table").and_then(serde_json::Value::as_str).map_or_else(|| table_name(&spec.key), str::to_string)
}

/// Where `(line, column)` of a value's text is in the file, for a value starting at `value`:
/// a block scalar (`|`, `>`) starts on the next line at its indentation; a quoted or plain
/// scalar at its first character.
pub(crate) fn position_in_value(source: &SourceFile, value: Span, line: u32, column: u32) -> Span {
    // only the lines around the value are read (this runs once per located diagnostic)
    let line_at = |n: u32| n.checked_sub(1).and_then(|i| source.text.lines().nth(i as usize));
    let Some(first) = line_at(value.line) else { return value };
    let lead = first.chars().nth(value.col.saturating_sub(1) as usize);
    if matches!(lead, Some('|' | '>')) {
        let file_line = value.line + line;
        let indent = source
            .text
            .lines()
            .skip(value.line as usize)
            .find(|l| !l.trim().is_empty())
            .map_or(0, |l| l.chars().take_while(|c| *c == ' ').count() as u32);
        return Span::new(file_line, indent + column, 1);
    }
    // the value may also start at its first content line, below `key: |`
    let above = line_at(value.line.saturating_sub(1)).map_or("", str::trim_end);
    if ["|", "|-", "|+", ">", ">-", ">+"].iter().any(|m| above.ends_with(m)) {
        return Span::new(value.line + line.saturating_sub(1), value.col + column.saturating_sub(1), 1);
    }
    let quoted = u32::from(matches!(lead, Some('"' | '\'')));
    if line <= 1 {
        Span::new(value.line, value.col + quoted + column.saturating_sub(1), 1)
    } else {
        Span::new(value.line + line - 1, column, 1)
    }
}

/// The problems that keep assets from running in this environment (`AssetSpec::unresolved`),
/// each located at its key in phlo.yaml: errors for `validate` and for runs that select them.
pub(crate) fn deferred(config: &ProjectConfig, graph: &AssetGraph) -> Vec<(AssetKey, Diagnostic)> {
    let mut out = Vec::new();
    for node in graph.nodes() {
        let spec = &node.spec;
        for (key, message, help) in &spec.unresolved {
            let decl = config.assets.iter().find(|d| d.key.name == spec.key.as_str());
            let mut d =
                Diagnostic::error(Code::InvalidValue, format!("asset `{}`: {message}", spec.key)).with_help(help);
            if let Some(decl) = decl {
                d = d.at(&config.source, decl.config.get(key).map_or(decl.key.span, |v| v.span));
            }
            out.push((spec.key.clone(), d));
        }
    }
    out
}

/// Where a table read is written: at its place inside the SQL value when known, else the
/// value, else `fallback` (the check's `type:` or the asset's key).
fn locate_read(
    d: Diagnostic,
    r: &TableRef,
    fallback: Option<crate::diagnostic::Span>,
    value: Option<&crate::source::Node>,
    config: &ProjectConfig,
) -> Diagnostic {
    match (value, fallback) {
        (Some(v), _) if r.line > 0 => d.at(&config.source, position_in_value(&config.source, v.span, r.line, r.column)),
        (Some(v), _) => d.at(&config.source, v.span),
        (None, Some(span)) => d.at(&config.source, span),
        (None, None) => d,
    }
}

/// Every asset's table and key, to resolve the tables an asset reads.
struct TableLookup<'a> {
    tables: &'a HashMap<String, AssetKey>,
    keys: &'a HashMap<String, AssetKey>,
    asset: &'a AssetKey,
}

impl TableLookup<'_> {
    /// The asset that writes the table `r` names becomes a dependency (`inferred`); an asset
    /// key written where its table is meant, or a table no asset writes, is an error.
    fn resolve(
        &self,
        r: &TableRef,
        own_ok: bool,
        inferred: &mut Vec<AssetKey>,
        named: &mut Vec<AssetKey>,
        report: &mut dyn FnMut(Diagnostic),
    ) {
        let (tables, keys, asset) = (self.tables, self.keys, self.asset);
        let parts: Vec<&str> = r.name.split('.').collect();
        let table = match parts.as_slice() {
            [t] => Some(*t),
            [schema, t] if schema.eq_ignore_ascii_case("main") || schema.eq_ignore_ascii_case("temp") => Some(*t),
            _ => None,
        };
        match table.and_then(|t| tables.get(&t.to_lowercase())) {
            // a check reads its asset's table; a model reading its own would read what it
            // replaces — a cycle
            Some(k) if k == asset && own_ok => {}
            Some(k) if k == asset => report(
                Diagnostic::error(
                    Code::Cycle,
                    format!("asset `{asset}` reads its own table `{}`: a cycle `{asset} → {asset}`", r.name),
                )
                .with_help("a model's SELECT builds its table; read the tables upstream of it instead"),
            ),
            Some(k) => {
                if !inferred.contains(k) {
                    inferred.push(k.clone());
                }
            }
            None => {
                let d = match keys.get(&r.name.to_lowercase()) {
                    // `FROM raw.orders`: the asset key, where its table is meant
                    Some(k) => {
                        // the mistake is reported here; the dep it meant is not "unread"
                        named.push(k.clone());
                        let t = tables.iter().find(|(_, v)| *v == k).map_or_else(|| table_name(k), |(t, _)| t.clone());
                        Diagnostic::error(
                            Code::UnknownTable,
                            format!("asset `{asset}` reads `{}`, which is an asset key, not a table", r.name),
                        )
                        .with_help(format!("the table of asset `{k}` is `{t}`: write `FROM {t}`"))
                    }
                    None => {
                        let names: Vec<&str> =
                            tables.keys().map(String::as_str).chain(keys.values().map(|k| k.as_str())).collect();
                        let help = match did_you_mean(&r.name.to_lowercase(), names) {
                            Some(s) => format!("did you mean `{s}`?"),
                            None => format!(
                                "no asset writes it; if another tool does, declare it:\n  assets:\n    {}:\n      external: true",
                                r.name
                            ),
                        };
                        Diagnostic::error(
                            Code::UnknownTable,
                            format!("asset `{asset}` reads table `{}`, which no asset writes", r.name),
                        )
                        .with_help(help)
                    }
                };
                report(d);
            }
        }
    }
}

/// The tables an asset's SQL and its checks read become its dependencies (explicit `deps`
/// stay, and one that the SQL never reads is a warning); a table no asset writes is an error.
fn infer_deps(
    assets: &mut [AssetNode],
    decls: &HashMap<&str, &AssetDecl>,
    config: &ProjectConfig,
    diags: &mut Diagnostics,
) {
    // every asset's table: `table:` metadata, else the naming rule (external assets included)
    let mut tables: HashMap<String, AssetKey> = HashMap::default();
    for a in assets.iter() {
        tables.entry(table_of(&a.spec).to_lowercase()).or_insert_with(|| a.spec.key.clone());
    }
    let keys: HashMap<String, AssetKey> =
        assets.iter().map(|a| (a.spec.key.as_str().to_lowercase(), a.spec.key.clone())).collect();
    for a in assets.iter_mut() {
        let decl = decls.get(a.spec.key.as_str());
        let mut inferred: Vec<AssetKey> = Vec::new();
        let mut named: Vec<AssetKey> = Vec::new();
        let lookup = TableLookup { tables: &tables, keys: &keys, asset: &a.spec.key };
        // what the asset's SQL reads (a model's `sql`, an export's `query`)
        let field = a.spec.reads_field.clone();
        let value = field.as_deref().and_then(|f| decl.and_then(|d| d.config.get(f)));
        if field.is_some() {
            for r in &a.spec.reads {
                let located = |d: Diagnostic| locate_read(d, r, decl.map(|d| d.key.span), value, config);
                lookup.resolve(r, false, &mut inferred, &mut named, &mut |d| diags.push(located(d)));
            }
        }
        // what its checks read besides its own table: they run after those tables are written
        for check in &a.spec.checks {
            let Some(run) = &check.run else { continue };
            let check_decl = decl.and_then(|d| d.checks.iter().find(|c| c.spec.name == check.name));
            for (key, r) in run.0.reads() {
                let at = check_decl.map(|c| c.kind_span).or(decl.map(|d| d.key.span));
                let value = check_decl.and_then(|c| c.config.get(key));
                let located = |d: Diagnostic| locate_read(d, &r, at, value, config);
                lookup.resolve(&r, true, &mut inferred, &mut named, &mut |d| diags.push(located(d)));
            }
        }
        // explicit deps the SQL never reads: kept (an ordering may be meant), but said
        if let Some(decl) = decl
            && field.is_some()
        {
            for dep in &decl.common.deps {
                let key = dep.value.as_str();
                if keys.contains_key(&key.to_lowercase())
                    && !inferred.iter().chain(&named).any(|k| k == key)
                    && value.is_some()
                {
                    diags.push(
                        Diagnostic::warning(
                            Code::UnreadDep,
                            format!(
                                "asset `{}` lists `{key}` in `deps` but its SQL does not read its table",
                                a.spec.key
                            ),
                        )
                        .with_help("remove it, or keep it if only the order matters")
                        .at(&config.source, dep.span),
                    );
                }
            }
        }
        for k in inferred {
            if !a.spec.deps.contains(&k) {
                a.spec.deps.push(k.clone());
                a.spec.inferred_deps.push(k);
            }
        }
    }
}

/// Resolves `SELECT *` column lists through the tables they read, then checks that every
/// check's `column` is one the asset has — an error with the columns that exist when they are
/// known, a warning when they cannot be known before the asset runs.
fn check_columns(
    assets: &mut [AssetNode],
    decls: &HashMap<&str, &AssetDecl>,
    config: &ProjectConfig,
    diags: &mut Diagnostics,
) {
    let plain = |t: &str| {
        let t = t.to_lowercase();
        match t.split_once('.') {
            Some(("main" | "temp", rest)) => rest.to_string(),
            _ => t,
        }
    };
    let by_table: HashMap<String, usize> =
        assets.iter().enumerate().map(|(i, a)| (table_of(&a.spec).to_lowercase(), i)).collect();
    // each pass resolves the lists whose table's columns are settled; chains of `SELECT *`
    // longer than the passes (or cycles) stay unknown
    for _ in 0..64 {
        let mut changed = false;
        for i in 0..assets.len() {
            let Columns::AllOf(table, extra) = &assets[i].spec.columns else { continue };
            let resolved = match by_table.get(&plain(table)).map(|&j| &assets[j].spec.columns) {
                Some(Columns::Known(c)) => Some(Columns::Known(c.iter().chain(extra).cloned().collect())),
                Some(Columns::AllOf(..)) => None,
                Some(Columns::Unknown) | None => Some(Columns::Unknown),
            };
            if let Some(r) = resolved {
                assets[i].spec.columns = r;
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    for a in assets.iter_mut() {
        if matches!(a.spec.columns, Columns::AllOf(..)) {
            a.spec.columns = Columns::Unknown;
        }
    }
    sql_columns(assets, &by_table, decls, config, diags);
    for a in assets.iter_mut() {
        let Some(decl) = decls.get(a.spec.key.as_str()) else { continue };
        // unknowable columns are said for the asset types that could know them (a SELECT with
        // an unnamed expression, a JSON Lines file); a CSV file that cannot be read yet is
        // reported when it runs
        let say_unknown = matches!(a.asset_type.as_deref(), Some("sql" | "jsonl"));
        for check in &decl.checks {
            // a check that could not be built is already reported
            if check.config.get("table").is_some() || !a.spec.checks.iter().any(|c| c.name == check.spec.name) {
                continue;
            }
            let Some(value) = check.config.get("column") else { continue };
            let Some(column) = value.as_str() else { continue };
            let d = match &a.spec.columns {
                Columns::Known(cols) if cols.iter().any(|c| c.eq_ignore_ascii_case(column)) => continue,
                Columns::Known(cols) => {
                    let help = match did_you_mean(column, cols.iter().map(String::as_str)) {
                        Some(s) => format!("did you mean `{s}`? (it has {})", cols.join(", ")),
                        None => format!("it has {}", cols.join(", ")),
                    };
                    Diagnostic::error(
                        Code::UnknownColumn,
                        format!("check `{}` of asset `{}` names column `{column}`, which the asset does not have", check.spec.name, a.spec.key),
                    )
                    .with_help(help)
                }
                _ if !say_unknown => continue,
                _ => Diagnostic::warning(
                    Code::ColumnsUnknown,
                    format!(
                        "the columns of asset `{}` are not known before it runs: check `{}` on column `{column}` is verified when it runs",
                        a.spec.key, check.spec.name
                    ),
                )
                .with_help("declare the columns (`columns:` for files) or name every column of the SELECT (`expr AS name`)"),
            };
            diags.push(d.at(&config.source, value.span));
        }
    }
}

/// The columns a model's SQL names exist in the tables it reads, where all of those tables'
/// columns are known.
fn sql_columns(
    assets: &[AssetNode],
    by_table: &HashMap<String, usize>,
    decls: &HashMap<&str, &AssetDecl>,
    config: &ProjectConfig,
    diags: &mut Diagnostics,
) {
    for a in assets {
        let (Some(refs), Some(field)) = (&a.spec.column_refs, &a.spec.reads_field) else { continue };
        // every table read, with its known columns; otherwise nothing is checked
        let Some(tables) = refs
            .tables
            .iter()
            .map(|(shown, table)| match by_table.get(&table.to_lowercase()).map(|&j| &assets[j].spec.columns) {
                Some(Columns::Known(cols)) => Some((shown.as_str(), table.as_str(), cols)),
                _ => None,
            })
            .collect::<Option<Vec<_>>>()
        else {
            continue;
        };
        let has = |cols: &[String], c: &str| cols.iter().any(|x| x.eq_ignore_ascii_case(c));
        let value = decls.get(a.spec.key.as_str()).and_then(|d| d.config.get(field));
        for (qualifier, column, line, col) in &refs.refs {
            let (whose, cols): (String, Vec<&str>) = match qualifier {
                Some(q) => match tables.iter().find(|(s, t, _)| s.eq_ignore_ascii_case(q) || t.eq_ignore_ascii_case(q))
                {
                    Some((_, t, cols)) if !has(cols, column) => {
                        (format!("`{t}` does not have"), cols.iter().map(String::as_str).collect())
                    }
                    _ => continue,
                },
                None => {
                    if tables.iter().any(|(_, _, cols)| has(cols, column)) || has(&refs.aliases, column) {
                        continue;
                    }
                    let whose = match tables.as_slice() {
                        [(_, t, _)] => format!("`{t}` does not have"),
                        _ => format!(
                            "none of {} has",
                            tables.iter().map(|(_, t, _)| format!("`{t}`")).collect::<Vec<_>>().join(", ")
                        ),
                    };
                    (whose, tables.iter().flat_map(|(_, _, c)| c.iter().map(String::as_str)).collect())
                }
            };
            let mut help = match did_you_mean(column, cols.iter().copied()) {
                Some(s) => format!("did you mean `{s}`?"),
                None => format!("the columns are {}", cols.join(", ")),
            };
            if qualifier.is_none() {
                help.push_str(" (a string is written in single quotes)");
            }
            let mut d = Diagnostic::error(
                Code::UnknownColumn,
                format!("the SQL of asset `{}` names column `{column}`, which {whose}", a.spec.key),
            )
            .with_help(help);
            if let Some(v) = value {
                d = d.at(&config.source, position_in_value(&config.source, v.span, *line, *col));
            }
            diags.push(d);
        }
    }
}

/// Two assets writing one table would overwrite each other's rows on every run.
fn table_collisions(
    assets: &[AssetNode],
    decls: &HashMap<&str, &AssetDecl>,
    config: &ProjectConfig,
    diags: &mut Diagnostics,
) {
    // SQLite's table names are case-insensitive
    let mut writers: HashMap<String, &str> = HashMap::default();
    for a in assets {
        let Some(table) = a.spec.metadata.get("table").and_then(serde_json::Value::as_str) else { continue };
        let first = *writers.entry(table.to_lowercase()).or_insert(&a.spec.key);
        if first == a.spec.key {
            continue;
        }
        let mut d = Diagnostic::error(
            Code::TableCollision,
            format!("assets `{first}` and `{}` both write table `{table}`", a.spec.key),
        )
        .with_help("give one of them its own `table:` (each run would overwrite the other's rows)");
        if let Some(decl) = decls.get(a.spec.key.as_str()) {
            d = d.at(&config.source, decl.key.span);
        }
        diags.push(d);
    }
}

/// Builds one declared asset; `seen` holds what earlier phases reported (not repeated),
/// `diags` receives what this asset adds.
fn declarative_asset(
    decl: &AssetDecl,
    config: &ProjectConfig,
    registry: &Registry,
    dir: &Path,
    hints: &[FeatureHint],
    seen: &Diagnostics,
    diags: &mut Diagnostics,
) -> Option<AssetNode> {
    let c = &decl.common;
    let (mut spec, provider, type_name) = if c.external && c.asset_type.is_none() {
        (AssetSpec::new(&decl.key.name), String::from("phlo.yaml"), None)
    } else {
        let t = c.asset_type.as_ref()?;
        let entry = registry.enabled(PluginKind::AssetType, &t.value)?;
        let Factory::AssetType { kind, build } = entry.descriptor().factory else { return None };
        let locations = decl
            .config
            .as_map()
            .unwrap_or_default()
            .iter()
            .filter(|(_, v)| v.span.line > 0)
            .map(|(k, v)| (k.name.clone(), format!("{}:{}:{}", config.source.path.display(), v.span.line, v.span.col)))
            .collect();
        let ctx = AssetTypeContext {
            key: decl.key.name.clone(),
            project_dir: dir.to_path_buf(),
            locations,
            allow_outside_project: config.paths.allow_outside_project,
            partitions: decl.partitions.clone(),
            deps: decl.common.deps.iter().map(|d| d.value.clone()).collect(),
        };
        let built =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| build(&decl.config, &config.source, &ctx)))
                .unwrap_or_else(|payload| Err(PluginError::Panicked(panic_message(payload.as_ref()))));
        match built {
            Ok(mut spec) => {
                spec.key = decl.key.name.as_str().into();
                spec.kind = kind;
                spec.requires.extend(entry.descriptor().metadata.requires.iter().map(|r| (*r).to_string()));
                (spec, entry.name().to_string(), Some(entry.name().to_string()))
            }
            Err(PluginError::Config(d)) => {
                // the config check phase read the same keys; report only what it did not
                let key = |x: &Diagnostic| (x.code, x.message.clone(), x.location.as_ref().map(|l| l.span));
                let seen: Vec<_> = seen.iter().chain(diags.iter()).map(key).collect();
                diags.extend(d.into_iter().filter(|x| !seen.contains(&key(x))));
                return None;
            }
            Err(e @ (PluginError::Invalid { .. } | PluginError::Several(_))) => {
                let list = match e {
                    PluginError::Several(list) => list,
                    one => vec![one],
                };
                for e in list {
                    let PluginError::Invalid { key, at, message, help } = e else {
                        diags.push(
                            Diagnostic::error(Code::PluginFailed, format!("asset `{}`: {e}", decl.key.name))
                                .at(&config.source, decl.key.span),
                        );
                        continue;
                    };
                    // at the value of the key (inside it when the plugin says where), else at the asset
                    let span = decl.config.get(&key).map_or(decl.key.span, |v| match at {
                        Some((line, column)) => position_in_value(&config.source, v.span, line, column),
                        None => v.span,
                    });
                    let mut d = Diagnostic::error(Code::InvalidValue, format!("asset `{}`: {message}", decl.key.name))
                        .at(&config.source, span);
                    if let Some(h) = help {
                        d = d.with_help(h);
                    }
                    diags.push(d);
                }
                return None;
            }
            Err(e) => {
                diags.push(
                    Diagnostic::error(
                        Code::PluginFailed,
                        format!("asset type `{}` could not build `{}`: {e}", entry.name(), decl.key.name),
                    )
                    .at(&config.source, decl.key.span),
                );
                return None;
            }
        }
    };
    if let Some(k) = c.kind {
        spec.kind = k;
    }
    spec.deps.extend(c.deps.iter().map(|d| d.value.as_str().into()));
    if c.group.is_some() {
        spec.group.clone_from(&c.group);
    }
    if c.description.is_some() {
        spec.description.clone_from(&c.description);
    }
    spec.tags.extend(c.tags.clone());
    spec.metadata.extend(c.metadata.clone());
    spec.requires.extend(c.requires.iter().map(|r| r.value.clone()));
    spec.capability_overrides.extend(c.capability_overrides.clone());
    spec.external = c.external;
    if c.code_version.is_some() {
        spec.code_version.clone_from(&c.code_version);
    } else if spec.code_version.is_none() {
        // the definition is the code: a changed SQL text, path or option is a new version
        let deps: Vec<&str> = c.deps.iter().map(|d| d.value.as_str()).collect();
        spec.code_version = Some(crate::execution::versions::fingerprint(&[
            provider.as_bytes(),
            decl.config.to_json().to_string().as_bytes(),
            deps.join("\n").as_bytes(),
            serde_json::to_string(&decl.partitions).unwrap_or_default().as_bytes(),
        ]));
    }
    if decl.partitions.is_partitioned() {
        spec.partitions = decl.partitions.clone();
    }
    if let Some(r) = decl.retry {
        spec.retry = r;
    }
    if decl.timeout.is_some() {
        spec.timeout = decl.timeout;
    }
    // a check that cannot be built is reported and left out; the asset stays in the graph so
    // that its dependents do not report it missing
    build_checks(&mut spec, &decl.checks, registry, &config.source, hints, diags);
    Some(AssetNode { spec, provider: provider.into(), asset_type: type_name.map(Into::into) })
}

/// Builds an asset's checks with their kinds' typed configs and adds the kinds' required
/// capabilities to the asset. A check that cannot be built is reported and left out.
fn build_checks(
    spec: &mut AssetSpec,
    decls: &[CheckDecl],
    registry: &Registry,
    source: &Arc<SourceFile>,
    hints: &[FeatureHint],
    diags: &mut Diagnostics,
) {
    let table = table_of(spec);
    for decl in decls {
        let mut check: CheckSpec = decl.spec.clone();
        let located = |d: Diagnostic| if decl.kind_span.line > 0 { d.at(source, decl.kind_span) } else { d };
        let Some(entry) = registry.enabled(PluginKind::QualityCheck, &check.kind) else {
            let kinds: Vec<&str> = registry.names(PluginKind::QualityCheck).collect();
            let feature = feature_for(hints, |h| h.plugins.contains(&check.kind.as_str()));
            let mut d = unknown_entry(source, decl.kind_span, "check kind", &check.kind, &kinds, feature);
            d.code = Code::UnknownCheckKind;
            d.message = format!("asset `{}`: unknown check kind `{}`", spec.key, check.kind);
            if decl.kind_span.line == 0 {
                d.location = None;
            }
            diags.push(d);
            continue;
        };
        let Factory::Check(build) = entry.descriptor().factory else { continue };
        let location = (decl.kind_span.line > 0)
            .then(|| format!("{}:{}:{}", source.path.display(), decl.kind_span.line, decl.kind_span.col));
        let ctx = CheckContext {
            asset: spec.key.to_string(),
            table: table.clone(),
            name: check.name.clone(),
            location,
            partitions: spec.partitions.clone(),
            partition_column: spec.partition_column.clone(),
        };
        let built = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            build(&decl.config, source, config::CHECK_COMMON_KEYS, &ctx)
        }))
        .unwrap_or_else(|payload| Err(PluginError::Panicked(panic_message(payload.as_ref()))));
        match built {
            Ok(run) => {
                check.run = Some(run);
                check.location.clone_from(&ctx.location);
                for r in entry.descriptor().metadata.requires {
                    if !spec.requires.iter().any(|x| x == r || x.split(':').next() == Some(r)) {
                        spec.requires.push((*r).to_string());
                    }
                }
                spec.checks.push(check);
            }
            Err(PluginError::Config(d)) => diags.extend(d),
            Err(e @ (PluginError::Failed { .. } | PluginError::Invalid { .. })) => {
                let (message, help, at) = match e {
                    PluginError::Invalid { key, at, message, help } => {
                        // at the value of the key (inside it when the kind says where)
                        let span = decl.config.get(&key).map(|v| match at {
                            Some((line, column)) => position_in_value(source, v.span, line, column),
                            None => v.span,
                        });
                        (message, help, span)
                    }
                    PluginError::Failed { message, help } => (message, help, None),
                    _ => unreachable!("matched above"),
                };
                let d = Diagnostic::error(
                    Code::InvalidValue,
                    format!("check `{}` of asset `{}`: {message}", check.name, spec.key),
                );
                let mut d = match at {
                    Some(span) if span.line > 0 => d.at(source, span),
                    _ => located(d),
                };
                if let Some(h) = help {
                    d = d.with_help(h);
                }
                diags.push(d);
            }
            Err(e) => {
                diags.push(located(Diagnostic::error(
                    Code::PluginFailed,
                    format!(
                        "check kind `{}` could not build check `{}` of asset `{}`: {e}",
                        check.kind, check.name, spec.key
                    ),
                )));
            }
        }
    }
}
