//! Runs of one project side by side: each run claims its steps (asset × partition) for as long
//! as it runs, and a run whose steps overlap a live run's waits for it (or, with `--no-wait`,
//! fails at once naming it). Runs of disjoint selections go at the same time.
//!
//! A claim is a file `.phlo/claims/<run id>.<pid>.json` naming the run and its steps, held
//! with the operating system's lock: a killed run releases it, so a claim whose file is not
//! locked is dead (removed by the next run). Claims are taken and inspected while holding
//! `.phlo/run.lock` for a moment only, so two runs never both claim one step.

use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use phlo_core::diagnostic::{Code, Diagnostic};
use serde::{Deserialize, Serialize};

use super::Outcome;

/// What a claim file holds.
#[derive(Debug, Serialize, Deserialize)]
struct ClaimDoc {
    run_id: String,
    pid: u32,
    started_at: String,
    steps: Vec<(String, Option<String>)>,
}

/// A live run's claim on its steps; released when dropped (or when the process ends).
pub(crate) struct Claim {
    file: File,
    path: PathBuf,
}

impl Drop for Claim {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
        let _ = self.file.unlock();
    }
}

fn failed(path: &Path, e: &std::io::Error) -> Outcome {
    Outcome::from_diagnostics(
        Diagnostic::error(Code::RunLocked, format!("cannot use `{}`: {e}", path.display()))
            .with_help("make `.phlo/` in the project writable")
            .into(),
    )
}

/// Holds `.phlo/run.lock` while claims are inspected or taken (a moment).
struct Admission(File);

impl Admission {
    fn take(dir: &Path) -> Result<Admission, Outcome> {
        let path = dir.join(".phlo/run.lock");
        let claims = dir.join(".phlo/claims");
        std::fs::create_dir_all(&claims).map_err(|e| failed(&claims, &e))?;
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| failed(&path, &e))?;
        file.lock().map_err(|e| failed(&path, &e))?;
        Ok(Admission(file))
    }
}

impl Drop for Admission {
    fn drop(&mut self) {
        let _ = self.0.unlock();
    }
}

/// The live claims (their files held by a live process), with an open handle on each; dead
/// claims are removed. The caller holds the admission lock.
fn live_claims(dir: &Path) -> Vec<(ClaimDoc, PathBuf)> {
    let Ok(entries) = std::fs::read_dir(dir.join(".phlo/claims")) else { return Vec::new() };
    let mut out = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().is_none_or(|e| e != "json") {
            continue;
        }
        let Ok(mut file) = OpenOptions::new().read(true).write(true).open(&path) else { continue };
        match file.try_lock() {
            Ok(()) => {
                // nobody holds it: its run is gone
                let _ = std::fs::remove_file(&path);
                let _ = file.unlock();
            }
            Err(std::fs::TryLockError::WouldBlock) => {
                let mut text = String::new();
                if file.read_to_string(&mut text).is_ok()
                    && let Ok(doc) = serde_json::from_str::<ClaimDoc>(&text)
                {
                    out.push((doc, path));
                }
            }
            Err(std::fs::TryLockError::Error(_)) => {}
        }
    }
    out
}

/// The ids of the runs going now in this project (any process).
pub(crate) fn live_runs(dir: &Path) -> Result<HashSet<String>, Outcome> {
    let _admission = Admission::take(dir)?;
    Ok(live_claims(dir).into_iter().map(|(doc, _)| doc.run_id).collect())
}

/// Claims `steps` for `run_id`: at once when no live run holds one of them; else after
/// waiting for the runs that do (a message says which), or not at all with `no_wait`.
pub(crate) fn claim(
    dir: &Path,
    run_id: &str,
    steps: &[(String, Option<String>)],
    no_wait: bool,
) -> Result<Claim, Outcome> {
    let mine: HashSet<&(String, Option<String>)> = steps.iter().collect();
    loop {
        let admission = Admission::take(dir)?;
        let conflict = live_claims(dir).into_iter().find_map(|(doc, path)| {
            let shared: Vec<String> = doc
                .steps
                .iter()
                .filter(|s| mine.contains(s))
                .take(3)
                .map(|(k, p)| p.as_ref().map_or_else(|| k.clone(), |p| format!("{k} [{p}]")))
                .collect();
            (!shared.is_empty()).then_some((doc, path, shared))
        });
        let Some((other, path, shared)) = conflict else {
            let path = dir.join(format!(".phlo/claims/{run_id}.{}.json", std::process::id()));
            let mut file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(true)
                .open(&path)
                .map_err(|e| failed(&path, &e))?;
            file.lock().map_err(|e| failed(&path, &e))?;
            let doc = ClaimDoc {
                run_id: run_id.to_string(),
                pid: std::process::id(),
                started_at: chrono::Utc::now().to_rfc3339(),
                steps: steps.to_vec(),
            };
            let text = serde_json::to_vec(&doc).unwrap_or_default();
            file.write_all(&text).and_then(|()| file.flush()).map_err(|e| failed(&path, &e))?;
            drop(admission);
            return Ok(Claim { file, path });
        };
        let holder = format!("run {} (pid {}, started {})", other.run_id, other.pid, other.started_at);
        let what = format!("{}{}", shared.join(", "), if shared.len() == 3 { ", …" } else { "" });
        if no_wait {
            return Err(Outcome::from_diagnostics(
                Diagnostic::error(Code::RunLocked, format!("{holder} is running steps this run needs: {what}"))
                    .with_help("wait for it to finish (run again without --no-wait to wait), or select other assets")
                    .into(),
            ));
        }
        drop(admission);
        eprintln!("waiting for {holder} to finish: it holds {what} (--no-wait to fail instead)");
        // blocks until that run releases its claim (ends or is killed), then looks again
        if let Ok(file) = OpenOptions::new().read(true).open(&path)
            && file.lock_shared().is_ok()
        {
            let _ = file.unlock();
        }
    }
}
