//! Running the `phlo` binary as a whole process, for the benches that time commands.

use std::path::Path;
use std::process::Command;

/// Runs `phlo ARGS` in `dir`; panics with its stderr when it fails.
pub fn run_in(dir: &Path, args: &[&str]) {
    let out = Command::new(env!("CARGO_BIN_EXE_phlo")).args(args).current_dir(dir).output().expect("run phlo");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}
