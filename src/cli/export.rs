//! `phlo export ADAPTER --out DIR`: definitions for an external engine, written by a
//! rendering orchestrator adapter (e.g. `dagster`).

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use phlo_core::diagnostic::{Code, Diagnostic};
use phlo_core::execution::{ExportRequest, ScheduleExport};
use phlo_core::graph::Selection;
use phlo_core::plugin::{Instance, PluginKind};

use super::{Outcome, load};

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The rendering adapter, e.g. `dagster` (`phlo plugins list --kind orchestrator_adapter`).
    adapter: String,
    /// The directory to write into (created if missing).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Write into a directory that already has files (files of the same name are replaced).
    #[arg(long)]
    force: bool,
}

fn fail(code: Code, message: String, help: &str) -> Outcome {
    Outcome::from_diagnostics(Diagnostic::error(code, message).with_help(help).into())
}

pub(crate) fn run<W: Write>(dir: &Path, args: &Args, out: &mut W) -> io::Result<Outcome> {
    let project = match load(dir, true, Default::default()) {
        Ok(p) => p,
        Err(o) => return Ok(o),
    };
    if project.diagnostics.has_errors() {
        return Ok(Outcome::from_diagnostics(project.diagnostics));
    }
    let adapter = match project.registry.get_or_create(PluginKind::OrchestratorAdapter, &args.adapter) {
        Ok(Instance::Adapter(a)) if a.renders() => a,
        Ok(Instance::Adapter(_)) => {
            return Ok(fail(
                Code::ExportFailed,
                format!("orchestrator adapter `{}` executes runs; it renders nothing to export", args.adapter),
                "export with a rendering adapter such as `dagster` (`phlo plugins list` shows each adapter's shape)",
            ));
        }
        _ => {
            return Ok(fail(
                Code::UnknownPlugin,
                format!("orchestrator adapter `{}` is not available", args.adapter),
                "build with its feature (e.g. `adapter-dagster`, in `full`); `phlo plugins list` shows what is compiled",
            ));
        }
    };
    let graph = std::sync::Arc::clone(&project.graph);
    let mut schedules = Vec::new();
    for (name, s) in &project.config.schedules {
        let assets: Vec<String> = match &s.select {
            None => (0..graph.len() as u32).map(|i| graph.node(i).spec.key.to_string()).collect(),
            Some(sel) => match Selection::parse(&sel.value).and_then(|x| x.select(&graph)) {
                Ok(ids) => ids.iter().map(|&i| graph.node(i).spec.key.to_string()).collect(),
                Err(e) => {
                    let d = e.to_diagnostic(&sel.value).at(&project.config.source, sel.span);
                    return Ok(Outcome::from_diagnostics(d.into()));
                }
            },
        };
        schedules.push(ScheduleExport {
            name: name.clone(),
            cron: s.cron.value.clone(),
            timezone: s.timezone.as_ref().map_or_else(|| String::from("UTC"), |t| t.value.clone()),
            assets,
            partition: s.partition.clone(),
            enabled: s.enabled,
        });
    }
    let request = ExportRequest {
        project_name: project.config.name.as_ref().map(|n| n.value.clone()),
        project_dir: std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf()),
        graph,
        schedules,
        phlo_version: env!("CARGO_PKG_VERSION").to_string(),
    };
    let files = match adapter.render(&request) {
        Ok(f) => f,
        Err(e) => {
            return Ok(fail(
                Code::ExportFailed,
                format!("`{}` cannot export this project: {e}", args.adapter),
                "change the field it names, or run this asset with the local adapter",
            ));
        }
    };
    let existing = std::fs::read_dir(&args.out).map_or(0, Iterator::count);
    if existing > 0 && !args.force {
        return Ok(fail(
            Code::ExportOutput,
            format!("`{}` already has {existing} file(s)", args.out.display()),
            "export into an empty or new directory, or pass --force to replace the exported files",
        ));
    }
    for f in &files {
        let path = args.out.join(&f.path);
        let written =
            path.parent().map_or(Ok(()), std::fs::create_dir_all).and_then(|()| std::fs::write(&path, &f.contents));
        if let Err(e) = written {
            return Ok(fail(
                Code::ExportOutput,
                format!("cannot write `{}`: {e}", path.display()),
                "choose a writable --out directory",
            ));
        }
    }
    writeln!(out, "exported {} asset(s) for {} into {}", request.graph.len(), args.adapter, args.out.display())?;
    for f in &files {
        writeln!(out, "  {}", f.path)?;
    }
    super::validate::leave(Some(project));
    Ok(Outcome::ok())
}
