//! The run store's side of `RunHistory`: recording events, and what `phlo runs`, `phlo
//! asset history` and `phlo status` read back.

use phlo_core::execution::versions::Stored;
use phlo_core::execution::{Materialization, RunDetail, RunStore, StoreError, StoredCheck, StoredRun, StoredStep};
use phlo_core::hooks::Event;
use rusqlite::{OptionalExtension, params};

use super::{RunHistory, failed};

fn json_of(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or(serde_json::Value::Null)
}

fn stored_run(r: &rusqlite::Row<'_>) -> rusqlite::Result<StoredRun> {
    let tags: String = r.get(3)?;
    let summary: String = r.get(10)?;
    Ok(StoredRun {
        run_id: r.get(0)?,
        status: r.get(1)?,
        selection: r.get(2)?,
        partitions: r.get(11)?,
        evaluated_at: r.get(12)?,
        tags: serde_json::from_str(&tags).unwrap_or_default(),
        steps: r.get::<_, i64>(4)?.max(0) as u64,
        started_by: r.get(5)?,
        pid: r.get::<_, i64>(6)?.max(0) as u32,
        started_at: r.get(7)?,
        ended_at: r.get(8)?,
        duration_ms: r.get::<_, Option<i64>>(9)?.map(|d| d.max(0) as u64),
        summary: serde_json::from_str(&summary).unwrap_or_default(),
    })
}

/// A step from `asset_key, partition, status, attempts, started_at, duration_ms, error,
/// metadata, code_version, data_version`, starting at column `at`.
fn stored_step(r: &rusqlite::Row<'_>, at: usize) -> rusqlite::Result<StoredStep> {
    let partition: String = r.get(at + 1)?;
    Ok(StoredStep {
        asset_key: r.get(at)?,
        partition: (!partition.is_empty()).then_some(partition),
        status: r.get(at + 2)?,
        attempts: r.get::<_, i64>(at + 3)?.max(0) as u32,
        started_at: r.get(at + 4)?,
        duration_ms: r.get::<_, Option<i64>>(at + 5)?.map(|d| d.max(0) as u64),
        error: r.get(at + 6)?,
        metadata: json_of(&r.get::<_, String>(at + 7)?),
        code_version: r.get(at + 8)?,
        data_version: r.get(at + 9)?,
    })
}

const RUN_COLUMNS: &str = "run_id, status, selection, tags, steps, started_by, pid, started_at, ended_at, duration_ms, \
     summary, partitions, evaluated_at";

impl RunStore for RunHistory {
    fn record(&self, event: &Event) -> Result<(), StoreError> {
        self.record_event(event)
    }

    fn interrupt_stale(&self, live: &dyn Fn(&str) -> bool) -> Result<Vec<String>, StoreError> {
        let path = self.path.clone();
        self.with_conn(|conn| {
            let tx = conn
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                .map_err(|e| failed(&path, &e))?;
            let ids: Vec<String> = {
                let mut q =
                    tx.prepare("SELECT run_id FROM runs WHERE status = 'running'").map_err(|e| failed(&path, &e))?;
                let all: Vec<String> =
                    q.query_map([], |r| r.get(0)).and_then(Iterator::collect).map_err(|e| failed(&path, &e))?;
                all.into_iter().filter(|id| !live(id)).collect()
            };
            if !ids.is_empty() {
                // their steps are in the event log: fold it before marking the running ones
                super::fold::fold(&tx, &path)?;
            }
            let now = chrono::Utc::now().to_rfc3339();
            for id in &ids {
                tx.execute("UPDATE runs SET status = 'interrupted', ended_at = ?2 WHERE run_id = ?1", params![id, now])
                    .and_then(|_| {
                        tx.execute(
                            "UPDATE steps SET status = 'interrupted' WHERE run_id = ?1 AND status = 'running'",
                            params![id],
                        )
                    })
                    .map_err(|e| failed(&path, &e))?;
            }
            tx.commit().map_err(|e| failed(&path, &e))?;
            Ok(ids)
        })
    }

    fn runs(&self, status: Option<&str>, limit: usize) -> Result<Vec<StoredRun>, StoreError> {
        let path = self.path.clone();
        self.with_conn(|conn| {
            let sql = format!(
                "SELECT {RUN_COLUMNS} FROM runs WHERE (?1 IS NULL OR status = ?1) ORDER BY started_at DESC, rowid DESC LIMIT ?2"
            );
            let mut q = conn.prepare_cached(&sql).map_err(|e| failed(&path, &e))?;
            q.query_map(params![status, i64::try_from(limit).unwrap_or(i64::MAX)], stored_run)
                .and_then(Iterator::collect)
                .map_err(|e| failed(&path, &e))
        })
    }

    fn run(&self, run_id: &str) -> Result<Option<RunDetail>, StoreError> {
        let path = self.path.clone();
        self.with_folded(|conn| {
            let err = |e: rusqlite::Error| failed(&path, &e);
            let sql = format!("SELECT {RUN_COLUMNS} FROM runs WHERE run_id = ?1");
            let Some(run) = conn.query_row(&sql, [run_id], stored_run).optional().map_err(err)? else {
                return Ok(None);
            };
            let mut q = conn
                .prepare(
                    "SELECT asset_key, partition, status, attempts, started_at, duration_ms, error, metadata,
                            code_version, data_version
                     FROM steps WHERE run_id = ?1 ORDER BY asset_key, partition",
                )
                .map_err(err)?;
            let steps = q.query_map([run_id], |r| stored_step(r, 0)).and_then(Iterator::collect).map_err(err)?;
            let mut q = conn
                .prepare(
                    "SELECT asset_key, partition, name, passed, result FROM checks WHERE run_id = ?1 ORDER BY rowid",
                )
                .map_err(err)?;
            let checks = q
                .query_map([run_id], |r| {
                    let partition: String = r.get(1)?;
                    Ok(StoredCheck {
                        asset_key: r.get(0)?,
                        partition: (!partition.is_empty()).then_some(partition),
                        name: r.get(2)?,
                        passed: r.get(3)?,
                        result: json_of(&r.get::<_, String>(4)?),
                    })
                })
                .and_then(Iterator::collect)
                .map_err(err)?;
            Ok(Some(RunDetail { run, steps, checks }))
        })
    }

    fn history(&self, asset_key: &str, limit: usize) -> Result<Vec<(String, StoredStep)>, StoreError> {
        let path = self.path.clone();
        self.with_folded(|conn| {
            let mut q = conn
                .prepare_cached(
                    "SELECT s.run_id, s.asset_key, s.partition, s.status, s.attempts, s.started_at, s.duration_ms,
                            s.error, s.metadata, s.code_version, s.data_version
                     FROM steps s JOIN runs r ON r.run_id = s.run_id
                     WHERE s.asset_key = ?1 ORDER BY r.started_at DESC, s.partition DESC LIMIT ?2",
                )
                .map_err(|e| failed(&path, &e))?;
            q.query_map(params![asset_key, i64::try_from(limit).unwrap_or(i64::MAX)], |r| {
                Ok((r.get(0)?, stored_step(r, 1)?))
            })
            .and_then(Iterator::collect)
            .map_err(|e| failed(&path, &e))
        })
    }

    fn prune(&self, keep: Option<usize>, before: Option<chrono::DateTime<chrono::Utc>>) -> Result<usize, StoreError> {
        let path = self.path.clone();
        self.with_folded(|conn| {
            let err = |e: rusqlite::Error| failed(&path, &e);
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(err)?;
            // started_at is RFC 3339 in UTC: text order is time order
            let ids: Vec<String> = {
                let mut q = tx
                    .prepare("SELECT run_id, started_at FROM runs WHERE status != 'running' ORDER BY started_at DESC, rowid DESC")
                    .map_err(err)?;
                let rows: Vec<(String, String)> =
                    q.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).and_then(Iterator::collect).map_err(err)?;
                let cutoff = before.map(|b| b.to_rfc3339());
                rows.into_iter()
                    .enumerate()
                    .filter(|(i, (_, started))| {
                        keep.is_some_and(|k| *i >= k) || cutoff.as_ref().is_some_and(|c| started.as_str() < c.as_str())
                    })
                    .map(|(_, (id, _))| id)
                    .collect()
            };
            for id in &ids {
                tx.execute("DELETE FROM events WHERE run_id = ?1", [id]).map_err(err)?;
                tx.execute("DELETE FROM runs WHERE run_id = ?1", [id]).map_err(err)?;
            }
            tx.commit().map_err(err)?;
            Ok(ids.len())
        })
    }

    fn events(&self, run_id: &str) -> Result<Vec<serde_json::Value>, StoreError> {
        let path = self.path.clone();
        self.with_conn(|conn| {
            let err = |e: rusqlite::Error| failed(&path, &e);
            let mut q = conn.prepare("SELECT body FROM events WHERE run_id = ?1 ORDER BY seq").map_err(err)?;
            let mut rows = q.query([run_id]).map_err(err)?;
            let mut out = Vec::new();
            while let Some(row) = rows.next().map_err(err)? {
                match row.get_ref(0).map_err(err)? {
                    rusqlite::types::ValueRef::Blob(b) => {
                        let mut events =
                            super::log::decode(b, Some(run_id)).map_err(|e| super::fold::unreadable(&path, &e))?;
                        // a body holds each thread's records one after the other: in time order
                        // (stable: one thread's keep their order)
                        events.sort_by_cached_key(|e| {
                            e["timestamp"].as_str().and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                        });
                        out.extend(events);
                    }
                    rusqlite::types::ValueRef::Text(t) => {
                        out.extend(String::from_utf8_lossy(t).lines().map(json_of));
                    }
                    _ => {}
                }
            }
            Ok(out)
        })
    }

    fn materializations(&self, keys: Option<&[String]>) -> Result<Stored, StoreError> {
        let path = self.path.clone();
        self.with_folded(|conn| {
            let err = |e: rusqlite::Error| failed(&path, &e);
            let wanted = keys.map(|k| serde_json::to_string(k).unwrap_or_default());
            let mut q = conn
                .prepare_cached(
                    "SELECT asset_key, partition, run_id, at, code_version, data_version, source_version, inputs,
                            failed_checks
                     FROM materializations
                     WHERE ?1 IS NULL OR asset_key IN (SELECT value FROM json_each(?1))",
                )
                .map_err(err)?;
            let rows = q
                .query_map([wanted], |r| {
                    let partition: String = r.get(1)?;
                    let inputs: String = r.get(7)?;
                    let checks: String = r.get(8)?;
                    let m = Materialization {
                        run_id: r.get(2)?,
                        at: r.get(3)?,
                        code_version: r.get(4)?,
                        data_version: r.get(5)?,
                        source_version: r.get(6)?,
                        inputs: serde_json::from_str(&inputs).unwrap_or_default(),
                        failed_checks: serde_json::from_str(&checks).unwrap_or_default(),
                    };
                    Ok((r.get::<_, String>(0)?, (!partition.is_empty()).then_some(partition), m))
                })
                .map_err(err)?;
            let mut out = Stored::default();
            for row in rows {
                let (key, partition, m) = row.map_err(err)?;
                out.entry(key).or_default().insert(partition, m);
            }
            Ok(out)
        })
    }
}
