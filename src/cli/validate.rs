//! `phlo validate [--json]`: every phase, every diagnostic, the exit code of the worst.

use std::io::{self, Write};
use std::path::Path;

use phlo_core::diagnostic::{Code, Diagnostic};
use phlo_core::plugin::PluginKind;
use serde::Serialize;

use super::render::JsonDiagnostic;
use super::{Outcome, load, write_json};

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Print a JSON document instead of text.
    #[arg(long)]
    json: bool,
    /// Also probe every resource provider the project binds (opens connections, files) and
    /// every asset source that can be probed (a REST API, with its credentials).
    #[arg(long)]
    probe: bool,
}

#[derive(Serialize)]
struct Report {
    ok: bool,
    exit_code: i32,
    project: String,
    assets: usize,
    plugins: usize,
    requirements: usize,
    diagnostics: Vec<JsonDiagnostic>,
}

pub(crate) fn run<W: Write>(dir: &Path, args: &Args, out: &mut W) -> io::Result<Outcome> {
    let (project, mut diagnostics) = match load(dir, true, Default::default()) {
        Ok(mut p) => {
            let mut d = std::mem::take(&mut p.diagnostics);
            // what keeps an asset from running here (an unset secret) is an error of validate
            d.extend(std::mem::take(&mut p.deferred).into_iter().map(|(_, diag)| diag));
            (Some(p), d)
        }
        Err(o) => (None, o.diagnostics),
    };
    let mut probes = Vec::new();
    if args.probe
        && let Some(p) = &project
    {
        let providers: std::collections::BTreeSet<&str> =
            p.report.rows.iter().filter_map(|r| r.provider.as_deref()).collect();
        for name in providers {
            if p.registry.get(PluginKind::ResourceProvider, name).is_none() {
                continue;
            }
            match p.registry.probe(name) {
                Ok(()) => probes.push(format!("probe OK: {name}")),
                Err(e) => diagnostics.push(
                    Diagnostic::error(Code::ProbeFailed, format!("probe of `{name}` failed: {e}"))
                        .with_help(format!("check `resources.{name}` in phlo.yaml")),
                ),
            }
        }
    }
    // assets that read from outside (a REST API) probe their source with their credentials
    if args.probe
        && let Some(p) = &project
    {
        for node in p.graph.nodes().iter().filter(|n| !n.spec.external && n.spec.unresolved.is_empty()) {
            let Some(probe) = &node.spec.probe else { continue };
            match (probe.0)() {
                Ok(what) => probes.push(format!("probe OK: asset {}: {what}", node.spec.key)),
                Err(e) => diagnostics.push(
                    Diagnostic::error(Code::ProbeFailed, format!("probe of asset `{}` failed: {e}", node.spec.key))
                        .with_help("check the asset's `base_url` and `auth` in phlo.yaml, and the secrets they name"),
                ),
            }
        }
    }
    diagnostics.sort();
    let code = diagnostics.exit_code();
    if args.json {
        let report = Report {
            ok: code == 0,
            exit_code: code,
            project: project.as_ref().map(|p| p.config.source.path.display().to_string()).unwrap_or_default(),
            assets: project.as_ref().map_or(0, |p| p.graph.len()),
            plugins: project.as_ref().map_or(0, |p| p.registry.list().iter().filter(|e| e.is_enabled()).count()),
            requirements: project.as_ref().map_or(0, |p| p.report.rows.len()),
            diagnostics: diagnostics.iter().map(JsonDiagnostic::from).collect(),
        };
        write_json(out, &report)?;
        leave(project);
        return Ok(Outcome { code: u8::try_from(code).unwrap_or(1), diagnostics: Default::default() });
    }
    for line in &probes {
        writeln!(out, "{line}")?;
    }
    if let (Some(p), 0) = (&project, code) {
        let warnings = diagnostics.len();
        writeln!(
            out,
            "{}: ok — {} assets, {} plugins, {} requirements resolved{}",
            p.config.source.path.display(),
            p.graph.len(),
            p.registry.list().iter().filter(|e| e.is_enabled()).count(),
            p.report.rows.iter().filter(|r| r.resolved_to.is_some()).count(),
            if warnings > 0 { format!(", {warnings} warning(s)") } else { String::new() }
        )?;
    }
    leave(project);
    Ok(Outcome::from_diagnostics(diagnostics))
}

/// `validate` (and `export`) read and write nothing more once they have reported, and the
/// process ends: the project's memory is left to the system instead of being freed piece by
/// piece (dropping a 100,000-asset project took ~0.8 s).
pub(crate) fn leave(project: Option<phlo_core::project::Project>) {
    std::mem::forget(project);
}
