//! Cross-crate integration tests and CLI end-to-end tests, in one binary.

// Link the facade, and with it every plugin crate its features enable.
use phlo as _;

mod bounded;
mod cli;
mod dagster_engine;
mod data;
mod graph;
mod guarantees;
mod history;
mod hooks;
mod hostile;
mod model;
mod project;
mod quickstart;
mod readme_plugin;
mod rest;
mod runs;
mod time;
mod time_conformance;
mod validate;
mod versions;

use std::path::PathBuf;

/// A fixture project directory under `tests/fixtures`.
pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}
