//! Folding the event log into what `phlo runs show`, `phlo asset history` and `phlo status`
//! read: each step in its latest state, each check result, each asset's latest
//! materialization. A run only appends its events (cheap, durable at every step boundary);
//! the first command that reads steps folds every event not folded yet, in one transaction,
//! so what it reads is exactly what the events say.

use std::collections::HashMap;
use std::path::Path;

use phlo_core::execution::StoreError;
use rusqlite::{OptionalExtension, params};
use serde_json::Value;

use super::failed;

/// What one event changes in the folded tables.
#[derive(Debug, PartialEq)]
pub(crate) enum Change {
    Step { key: String, partition: String, state: StepState },
    Check { key: String, partition: String, name: String, passed: bool, result: String },
}

/// A succeeded step's versions, and when it ended.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Versions {
    pub(crate) code: Option<String>,
    pub(crate) data: Option<String>,
    pub(crate) source: Option<String>,
    pub(crate) inputs: String,
    pub(crate) at: String,
}

/// A step's state after an event (later events of one step replace earlier ones).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct StepState {
    pub(crate) status: String,
    pub(crate) attempts: u32,
    pub(crate) started_at: Option<String>,
    pub(crate) duration_ms: Option<i64>,
    pub(crate) error: Option<String>,
    pub(crate) metadata: String,
    pub(crate) versions: Option<Versions>,
}

fn text(v: &Value) -> Option<String> {
    v.as_str().map(str::to_string)
}

/// `2026-12-01T10:16:17.39Z` as the store writes instants (`+00:00`).
fn instant(v: &Value) -> Option<String> {
    let t = chrono::DateTime::parse_from_rfc3339(v.as_str()?).ok()?;
    Some(t.to_utc().to_rfc3339())
}

/// What an event (as its JSON) changes: the step it starts, ends or skips, or a check result.
pub(crate) fn change_of(e: &Value) -> Option<(String, Change)> {
    let c = &e["correlation"];
    let run = text(&c["run_id"])?;
    let key = text(&c["asset_key"]).unwrap_or_default();
    let partition = text(&c["partition"]).unwrap_or_default();
    let attempts = c["attempt"].as_u64().unwrap_or(1) as u32;
    let p = &e["payload"];
    let kind = e["type"].as_str()?;
    let state = match kind {
        "ingestion.start" | "transform.start" | "publish.start" => StepState {
            status: String::from("running"),
            attempts,
            started_at: instant(&e["timestamp"]),
            duration_ms: None,
            error: None,
            metadata: String::from("{}"),
            versions: None,
        },
        "ingestion.end" | "transform.end" | "publish.end" => {
            let status = text(&p["status"]).unwrap_or_else(|| String::from("failed"));
            let v = &p["versions"];
            let versions = (status == "succeeded" && v.is_object()).then(|| Versions {
                code: text(&v["code"]),
                data: text(&v["data"]),
                source: text(&v["source"]),
                inputs: v["inputs"].to_string(),
                at: instant(&e["timestamp"]).unwrap_or_default(),
            });
            StepState {
                status,
                attempts,
                started_at: None,
                duration_ms: p["duration_ms"].as_i64(),
                error: text(&p["error"]),
                metadata: if p["metrics"].is_object() { p["metrics"].to_string() } else { String::from("{}") },
                versions,
            }
        }
        "asset.skipped" => {
            let since = text(&p["unchanged_since"]);
            StepState {
                status: String::from(if since.is_some() { "skipped_unchanged" } else { "skipped" }),
                attempts: 0,
                started_at: None,
                duration_ms: None,
                error: text(&p["reason"]),
                metadata: since
                    .map_or_else(|| String::from("{}"), |r| serde_json::json!({ "unchanged_since": r }).to_string()),
                versions: None,
            }
        }
        "quality.result" => {
            let key = if key.is_empty() { text(&p["asset"]).unwrap_or_default() } else { key };
            let passed = p["outcome"]["status"].as_str() == Some("passed");
            let name = text(&p["check"]).unwrap_or_default();
            return Some((run, Change::Check { key, partition, name, passed, result: p.to_string() }));
        }
        _ => return None,
    };
    Some((run, Change::Step { key, partition, state }))
}

/// The error for an event log that cannot be decoded.
pub(crate) fn unreadable(path: &Path, e: &str) -> StoreError {
    StoreError::with_help(
        format!("the run store `{}` holds an unreadable event log: {e}", path.display()),
        "phlo never rewrites it on its own: restore a copy, or move the file aside",
    )
}

/// Whether events wait to be folded (a cheap read).
pub(crate) fn behind(conn: &rusqlite::Connection) -> rusqlite::Result<bool> {
    let folded: i64 = conn.query_row("SELECT value FROM meta WHERE key = 'folded'", [], |r| r.get(0))?;
    let last: Option<i64> = conn.query_row("SELECT max(seq) FROM events", [], |r| r.get(0)).optional()?.flatten();
    Ok(last.is_some_and(|l| l > folded))
}

/// Folds every event not folded yet, inside `tx` (which holds the write lock).
pub(crate) fn fold(tx: &rusqlite::Transaction<'_>, path: &Path) -> Result<(), StoreError> {
    let err = |e: rusqlite::Error| failed(path, &e);
    let folded: i64 = tx.query_row("SELECT value FROM meta WHERE key = 'folded'", [], |r| r.get(0)).map_err(err)?;
    let mut changes: Vec<(String, Change)> = Vec::new();
    // the row each change came from
    let mut rows_of: Vec<i64> = Vec::new();
    let mut last = folded;
    {
        let mut q = tx.prepare("SELECT seq, run_id, body FROM events WHERE seq > ?1 ORDER BY seq").map_err(err)?;
        let mut rows = q.query([folded]).map_err(err)?;
        while let Some(row) = rows.next().map_err(err)? {
            last = row.get(0).map_err(err)?;
            let run: Option<String> = row.get(1).map_err(err)?;
            match row.get_ref(2).map_err(err)? {
                rusqlite::types::ValueRef::Blob(b) => {
                    super::log::changes(b, run.as_deref(), &mut changes).map_err(|e| unreadable(path, &e))?;
                }
                rusqlite::types::ValueRef::Text(t) => {
                    for line in String::from_utf8_lossy(t).lines() {
                        let v: Value = serde_json::from_str(line).map_err(|e| unreadable(path, &e.to_string()))?;
                        changes.extend(change_of(&v));
                    }
                }
                _ => {}
            }
            rows_of.resize(changes.len(), last);
        }
    }
    apply(tx, &changes, &rows_of).map_err(err)?;
    tx.execute("UPDATE meta SET value = ?1 WHERE key = 'folded'", [last]).map_err(err)?;
    Ok(())
}

/// Where an event stands in its step's story: its attempt, then start before end (or skip).
fn rank(s: &StepState) -> (u32, bool) {
    (s.attempts, s.status != "running")
}

/// Writes folded changes: check results first (a success's failed checks are looked up),
/// then each step once in its latest state, and the latest materialization of each success.
///
/// A later row of the log is later in time. Within one row (one batch) each recording
/// thread's records follow one another, so a step's end may come before its start: there
/// the one of the later attempt, or the end of the same attempt, is the step's state.
fn apply(tx: &rusqlite::Transaction<'_>, changes: &[(String, Change)], rows_of: &[i64]) -> rusqlite::Result<()> {
    for (run, c) in changes {
        if let Change::Check { key, partition, name, passed, result } = c {
            tx.prepare_cached(
                "INSERT INTO checks (run_id, asset_key, partition, name, passed, result) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?
            .execute(params![run, key, partition, name, passed, result])?;
        }
    }
    let mut steps: Vec<(&str, &str, &str, StepState, i64)> = Vec::new();
    let mut index: HashMap<(&str, &str, &str), usize> = HashMap::new();
    for ((run, c), &row) in changes.iter().zip(rows_of) {
        let Change::Step { key, partition, state } = c else { continue };
        let id = (run.as_str(), key.as_str(), partition.as_str());
        match index.get(&id) {
            Some(&i) => {
                let (_, _, _, old, old_row) = &mut steps[i];
                if row != *old_row || rank(state) >= rank(old) {
                    let mut new = state.clone();
                    new.attempts = new.attempts.max(old.attempts);
                    new.started_at = new.started_at.or_else(|| old.started_at.clone());
                    *old = new;
                    *old_row = row;
                } else if state.started_at.is_some() && (state.attempts == old.attempts || old.started_at.is_none()) {
                    // the start of the step's latest attempt, written after its end
                    old.started_at.clone_from(&state.started_at);
                }
            }
            None => {
                index.insert(id, steps.len());
                steps.push((id.0, id.1, id.2, state.clone(), row));
            }
        }
    }
    for (run, key, partition, s, _) in &steps {
        let v = s.versions.as_ref();
        let (code, data, source, inputs) = (
            v.and_then(|v| v.code.as_deref()),
            v.and_then(|v| v.data.as_deref()),
            v.and_then(|v| v.source.as_deref()),
            v.map(|v| v.inputs.as_str()),
        );
        tx.prepare_cached(
            "INSERT INTO steps (run_id, asset_key, partition, status, attempts, started_at, duration_ms, error, metadata,
                                code_version, data_version, source_version, inputs)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)
             ON CONFLICT (run_id, asset_key, partition) DO UPDATE SET status = excluded.status,
               attempts = max(steps.attempts, excluded.attempts),
               started_at = coalesce(excluded.started_at, steps.started_at),
               duration_ms = excluded.duration_ms, error = excluded.error, metadata = excluded.metadata,
               code_version = excluded.code_version, data_version = excluded.data_version,
               source_version = excluded.source_version, inputs = excluded.inputs",
        )?
        .execute(params![
            run,
            key,
            partition,
            s.status,
            s.attempts,
            s.started_at,
            s.duration_ms,
            s.error,
            s.metadata,
            code,
            data,
            source,
            inputs
        ])?;
        // the asset's latest success, kept when its runs are pruned; with the error-severity
        // checks of that materialization that did not pass (a warning does not make it stale)
        if let Some(v) = v {
            tx.prepare_cached(
                "INSERT OR REPLACE INTO materializations
                   (asset_key, partition, run_id, at, code_version, data_version, source_version, inputs, failed_checks)
                 VALUES (?2, ?3, ?1, ?4, ?5, ?6, ?7, ?8,
                   (SELECT json_group_array(name) FROM checks
                     WHERE run_id = ?1 AND asset_key = ?2 AND partition = ?3 AND passed = 0
                       AND json_extract(result, '$.severity') = 'error'))",
            )?
            .execute(params![run, key, partition, v.at, code, data, source, inputs])?;
        }
    }
    Ok(())
}
