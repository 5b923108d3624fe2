//! `phlo schema`: the JSON Schema of phlo.yaml for this build's plugins.

use std::io::{self, Write};
use std::path::Path;

use super::{Outcome, load, write_json};

#[derive(Debug, clap::Args)]
pub(crate) struct Args {}

pub(crate) fn run<W: Write>(dir: &Path, _args: &Args, out: &mut W) -> io::Result<Outcome> {
    let project = match load(dir, false, Default::default()) {
        Ok(p) => p,
        Err(o) => return Ok(o),
    };
    write_json(out, &phlo_core::schema::project_schema(&project.registry))?;
    Ok(Outcome::ok())
}
