//! Recording: how events get from the threads that emit them into the store.
//!
//! Each thread appends the events it records to its own buffer (one body per run, encoded
//! against the thread's lane, see `runs_log.rs`), under a lock no other thread takes except
//! the writer: recording shares nothing between the run's threads. The writer takes every
//! buffer at once — it holds all of their locks together, so an event is never written in a
//! later batch than an event recorded after it — joins each run's bodies into one row of the
//! event log, and commits the batch: at once for a run's start and end, and for a step's
//! start, end or skip within [`COMMIT_WITHIN`] (group commit). Within one batch the records
//! of two threads are not in the order they were recorded in; the fold orders one step's
//! events by attempt (see `runs_fold.rs`) and `phlo runs events` by time.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError, Weak};
use std::time::{Duration, Instant};

use phlo_core::execution::StoreError;
use phlo_core::hooks::{Event, EventPayload, Status};
use rusqlite::{Connection, OptionalExtension, params};

use super::log::{Lane, encode};
use super::{RunHistory, failed, fold, open};

/// How long a step boundary may wait to be committed with the ones after it (group commit):
/// a run of many short steps commits once per this interval instead of once per step.
pub const COMMIT_WITHIN: Duration = Duration::from_millis(20);

/// A thread wakes the writer when this many of its events wait.
pub(crate) const BATCH: usize = 4096;

/// A thread with this many events waiting commits them itself (the writer is behind).
pub(crate) const BACKLOG: usize = 4 * BATCH;

/// The WAL is checkpointed (in the background) after a commit leaves it with this many pages
/// (4 MB); the connections themselves never checkpoint, not even when closed. What a process
/// leaves in the WAL, every process that opens the store next reads through (SQLite recovers
/// it): kept this small, that costs a few milliseconds.
pub(crate) const CHECKPOINT_PAGES: u32 = 1000;

/// What the recording threads and the writer share.
pub(crate) struct Shared {
    /// Opened on first use (loading or validating a project writes nothing); held while a
    /// batch is written.
    pub(crate) conn: Mutex<Option<Connection>>,
    /// The buffer of every thread that recorded an event.
    buffers: Mutex<Vec<Arc<Buffer>>>,
    /// The writer's own state; wakes it.
    writer: Mutex<Writer>,
    wake: Condvar,
    /// Whether `error` holds the writer's last failure (read by every event, written rarely).
    failing: AtomicBool,
    /// The writer's last failure, reported by the next event recorded.
    error: Mutex<Option<StoreError>>,
    /// The thread that checkpoints the WAL in the background (see [`CHECKPOINT_PAGES`]).
    checkpointer: Mutex<Option<Checkpointer>>,
    /// The pages in the WAL after the writer's last commit (SQLite's WAL hook says).
    wal_pages: Arc<AtomicU32>,
}

struct Writer {
    /// Whether the writer thread is running.
    started: bool,
    /// Bodies already written, kept for their memory (a large run fills many).
    spare: Vec<Vec<u8>>,
}

/// One thread's events not yet written.
#[derive(Default)]
pub(crate) struct Buffer {
    waiting: Mutex<Waiting>,
}

#[derive(Default)]
struct Waiting {
    /// One body per run (and one for events without a run).
    logs: Vec<Log>,
    /// Runs that start or end with them.
    edges: Vec<(Arc<str>, RunEdge)>,
    /// How many events wait.
    len: usize,
    /// When the oldest boundary event waiting arrived.
    since: Option<Instant>,
}

/// The waiting records of one run (or of events without a run), from one thread.
struct Log {
    run: Option<Arc<str>>,
    body: Vec<u8>,
    count: i64,
    lane: Lane,
}

impl Waiting {
    /// The log of `run` (started if none).
    fn log_of(&mut self, run: Option<&Arc<str>>, spare: impl FnOnce() -> Vec<u8>) -> &mut Log {
        let same = |l: &Log| match (&l.run, run) {
            (Some(a), Some(b)) => Arc::ptr_eq(a, b) || a == b,
            (a, b) => a.is_none() && b.is_none(),
        };
        let at = match self.logs.iter().position(same) {
            Some(at) => at,
            None => {
                self.logs.push(Log { run: run.cloned(), body: spare(), count: 0, lane: Lane::new() });
                self.logs.len() - 1
            }
        };
        &mut self.logs[at]
    }
}

/// A thread with its own connection that checkpoints the WAL when told to, so that neither
/// the writer nor a run's end waits for a large checkpoint.
struct Checkpointer {
    due: std::sync::mpsc::SyncSender<()>,
    thread: std::thread::JoinHandle<()>,
}

impl Shared {
    pub(crate) fn new() -> Self {
        Self {
            conn: Mutex::new(None),
            buffers: Mutex::new(Vec::new()),
            writer: Mutex::new(Writer { started: false, spare: Vec::new() }),
            wake: Condvar::new(),
            failing: AtomicBool::new(false),
            error: Mutex::new(None),
            checkpointer: Mutex::new(None),
            wal_pages: Arc::new(AtomicU32::new(0)),
        }
    }

    /// Whether the writer's last commit left the WAL with [`CHECKPOINT_PAGES`] or more: due
    /// for a checkpoint, and emptied on close when the checkpointer could not keep up (a
    /// process that writes without pause).
    pub(crate) fn wal_is_large(&self) -> bool {
        self.wal_pages.load(Ordering::Relaxed) >= CHECKPOINT_PAGES
    }

    /// Joins the checkpointer (the store is being closed).
    pub(crate) fn stop_checkpointer(&self) {
        let checkpointer = self.checkpointer.lock().unwrap_or_else(PoisonError::into_inner).take();
        if let Some(c) = checkpointer {
            drop(c.due);
            let _ = c.thread.join();
        }
    }
}

/// Whether the event starts or ends a step or a run: the store is made durable there (a
/// step that started is recorded as running, so a killed run shows what it was doing).
fn boundary(e: &Event) -> bool {
    matches!(
        e.payload,
        EventPayload::RunStart(_)
            | EventPayload::RunEnd(_)
            | EventPayload::IngestionStart(_)
            | EventPayload::TransformStart(_)
            | EventPayload::PublishStart(_)
            | EventPayload::IngestionEnd(_)
            | EventPayload::TransformEnd(_)
            | EventPayload::PublishEnd(_)
            | EventPayload::AssetSkipped { .. }
    )
}

impl RunHistory {
    /// Runs `f` on this thread's buffer for this store (made and registered on its first
    /// event).
    fn with_buffer<R>(&self, f: impl FnOnce(&Buffer) -> R) -> R {
        thread_local! {
            /// The thread's buffer in each store it recorded into. A store is known by its
            /// address: the `Weak` keeps that memory from being reused by another store.
            static BUFFERS: std::cell::RefCell<Vec<(Weak<Shared>, Arc<Buffer>)>> =
                const { std::cell::RefCell::new(Vec::new()) };
        }
        let mine = Arc::as_ptr(&self.shared);
        let mut f = Some(f);
        let done = BUFFERS.try_with(|b| {
            let mut b = b.borrow_mut();
            let at = match b.iter().position(|(s, _)| std::ptr::eq(s.as_ptr(), mine)) {
                Some(at) => at,
                None => {
                    b.retain(|(s, _)| s.strong_count() > 0);
                    b.push((Arc::downgrade(&self.shared), self.register()));
                    b.len() - 1
                }
            };
            f.take().map(|f| f(&b[at].1))
        });
        match (done, f) {
            (Ok(Some(r)), _) => r,
            // the thread is being torn down: a buffer of its own for this event
            (_, Some(f)) => f(&self.register()),
            (_, None) => unreachable!("`f` runs once: it returned or it is still here"),
        }
    }

    fn register(&self) -> Arc<Buffer> {
        let buffer = Arc::new(Buffer::default());
        self.shared.buffers.lock().unwrap_or_else(PoisonError::into_inner).push(Arc::clone(&buffer));
        self.start_writer();
        buffer
    }

    /// Records one event in this thread's buffer (see the module's documentation).
    pub(crate) fn record_event(&self, event: &Event) -> Result<(), StoreError> {
        if self.shared.failing.load(Ordering::Relaxed) {
            let error = self.shared.error.lock().unwrap_or_else(PoisonError::into_inner).take();
            self.shared.failing.store(false, Ordering::Relaxed);
            if let Some(e) = error {
                return Err(e);
            }
        }
        let edge = edge_of(event);
        let (wake, flush_now) = self.with_buffer(|buffer| {
            let mut w = buffer.waiting.lock().unwrap_or_else(PoisonError::into_inner);
            let log = w.log_of(event.correlation.run_id.as_ref(), || self.spare());
            if log.body.capacity() == 0 {
                log.body = self.spare();
            }
            encode(event, &mut log.lane, &mut log.body);
            log.count += 1;
            // the run's id is cloned only for its start and end: every thread cloning it
            // for every event would fight over its reference count
            if let (Some(edge), Some(run)) = (edge, &log.run) {
                let run = Arc::clone(run);
                w.edges.push((run, edge));
            }
            w.len += 1;
            if boundary(event) && w.since.is_none() {
                w.since = Some(Instant::now());
            }
            // a run's start and end are committed at once, by this thread; a step's boundary
            // by the writer, with the ones that follow within COMMIT_WITHIN
            let edge = matches!(event.payload, EventPayload::RunStart(_) | EventPayload::RunEnd(_));
            (w.len == BATCH, edge || w.len >= BACKLOG)
        });
        if flush_now {
            flush(&self.path, &self.shared)
        } else {
            if wake {
                self.shared.wake.notify_one();
            }
            Ok(())
        }
    }

    /// A body for a new log: one the writer wrote and cleared, or a new one.
    fn spare(&self) -> Vec<u8> {
        let spare = self.shared.writer.lock().unwrap_or_else(PoisonError::into_inner).spare.pop();
        spare.unwrap_or_else(|| Vec::with_capacity(1 << 16))
    }

    /// Starts the thread that commits waiting boundaries — once [`COMMIT_WITHIN`] has passed
    /// since the oldest, or when many are waiting — off the run's threads; it ends with the
    /// store. A failure is reported by the next event recorded.
    fn start_writer(&self) {
        let mut writer = self.shared.writer.lock().unwrap_or_else(PoisonError::into_inner);
        if writer.started {
            return;
        }
        let weak = Arc::downgrade(&self.shared);
        let path = self.path.clone();
        let spawned = std::thread::Builder::new().name("phlo-run-store".into()).spawn(move || {
            loop {
                let Some(shared) = weak.upgrade() else { return };
                {
                    let w = shared.writer.lock().unwrap_or_else(PoisonError::into_inner);
                    drop(shared.wake.wait_timeout(w, COMMIT_WITHIN / 2).unwrap_or_else(PoisonError::into_inner));
                }
                if due(&shared)
                    && let Err(e) = flush(&path, &shared)
                {
                    *shared.error.lock().unwrap_or_else(PoisonError::into_inner) = Some(e);
                    shared.failing.store(true, Ordering::Relaxed);
                }
            }
        });
        writer.started = spawned.is_ok();
    }
}

/// Whether a batch is due: many events wait in a buffer, or a boundary has waited
/// [`COMMIT_WITHIN`].
fn due(shared: &Shared) -> bool {
    let buffers = shared.buffers.lock().unwrap_or_else(PoisonError::into_inner).clone();
    buffers.iter().any(|b| {
        let w = b.waiting.lock().unwrap_or_else(PoisonError::into_inner);
        w.len >= BATCH || w.since.is_some_and(|t| t.elapsed() >= COMMIT_WITHIN)
    })
}

/// One run's records of a batch, every thread's joined.
pub(crate) struct Batch {
    run: Option<Arc<str>>,
    body: Vec<u8>,
    count: i64,
}

/// Takes every thread's waiting events at once: the writer holds every buffer's lock
/// together, so a batch holds everything recorded before anything it leaves out.
fn take(shared: &Shared) -> (Vec<Batch>, Vec<(Arc<str>, RunEdge)>) {
    let mut buffers = shared.buffers.lock().unwrap_or_else(PoisonError::into_inner);
    // threads gone, with nothing left: forgotten
    buffers.retain(|b| Arc::strong_count(b) > 1 || b.waiting.lock().unwrap_or_else(PoisonError::into_inner).len > 0);
    let mut held: Vec<_> = buffers.iter().map(|b| b.waiting.lock().unwrap_or_else(PoisonError::into_inner)).collect();
    let (mut batches, mut edges) = (Vec::<Batch>::new(), Vec::new());
    for w in &mut held {
        w.len = 0;
        w.since = None;
        edges.append(&mut w.edges);
        // a log kept for its thread's next records, with its lane's memory; one that had
        // none since the last time is let go (its run may have ended)
        w.logs.retain_mut(|log| {
            if log.count == 0 {
                return false;
            }
            let (body, count) = (std::mem::take(&mut log.body), std::mem::take(&mut log.count));
            log.lane.reset();
            match batches.iter_mut().find(|b| b.run == log.run) {
                Some(b) => {
                    b.body.extend_from_slice(&body);
                    b.count += count;
                    recycle(shared, body);
                }
                None => batches.push(Batch { run: log.run.clone(), body, count }),
            }
            true
        });
    }
    (batches, edges)
}

/// Keeps a written body's memory for another log.
fn recycle(shared: &Shared, mut body: Vec<u8>) {
    let mut writer = shared.writer.lock().unwrap_or_else(PoisonError::into_inner);
    if writer.spare.len() < 16 {
        body.clear();
        writer.spare.push(body);
    }
}

/// Writes the waiting events in one transaction. The connection is held from taking the
/// batch to committing it, so batches are written in the order they were recorded.
pub(crate) fn flush(path: &Path, shared: &Shared) -> Result<(), StoreError> {
    let mut conn = shared.conn.lock().unwrap_or_else(PoisonError::into_inner);
    let (batches, edges) = take(shared);
    if batches.is_empty() {
        return Ok(());
    }
    if conn.is_none() {
        let mut opened = open(path)?;
        let pages = Arc::clone(&shared.wal_pages);
        opened
            .wal_hook(Some(move |_: &mut rusqlite::hooks::Wal, n: std::ffi::c_int| {
                pages.store(u32::try_from(n).unwrap_or(0), Ordering::Relaxed);
                Ok(())
            }))
            .map_err(|e| failed(path, &e))?;
        *conn = Some(opened);
        // what earlier processes left in the WAL (a closing connection does not checkpoint);
        // a store without a WAL to read through starts no checkpointer
        let mut wal = path.as_os_str().to_owned();
        wal.push("-wal");
        if std::fs::metadata(&wal).is_ok_and(|m| m.len() > 0) {
            checkpoint_soon(path, shared);
        }
    }
    let conn = conn.as_mut().expect("opened above");
    // the write lock at once: a busy store (another run) is waited for, never half-written
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(|e| failed(path, &e))?;
    write(&tx, &batches, &edges, path)?;
    tx.commit().map_err(|e| failed(path, &e))?;
    for b in batches {
        recycle(shared, b.body);
    }
    if shared.wal_is_large() {
        checkpoint_soon(path, shared);
    }
    Ok(())
}

/// Asks the checkpointer (started on first use) to checkpoint the WAL.
fn checkpoint_soon(path: &Path, shared: &Shared) {
    let mut slot = shared.checkpointer.lock().unwrap_or_else(PoisonError::into_inner);
    if slot.is_none() {
        let Ok(conn) = Connection::open(path) else { return };
        let _ = conn.set_db_config(rusqlite::config::DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, true);
        let (due, wait) = std::sync::mpsc::sync_channel::<()>(1);
        let spawned = std::thread::Builder::new().name("phlo-run-store-checkpoint".into()).spawn(move || {
            let _ = conn.busy_timeout(Duration::from_secs(10));
            // PASSIVE: as much as the readers allow, never blocking the writer; a failure is
            // harmless (the WAL is checkpointed by the next one, or when the store is closed)
            while wait.recv().is_ok() {
                let _ = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
            }
        });
        let Ok(thread) = spawned else { return };
        *slot = Some(Checkpointer { due, thread });
    }
    if let Some(c) = slot.as_ref() {
        // full: a checkpoint is already due
        let _ = c.due.try_send(());
    }
}

fn status_word(s: Option<Status>) -> &'static str {
    match s {
        Some(Status::Succeeded) => "succeeded",
        Some(Status::Failed) | None => "failed",
        Some(Status::Cancelled) => "cancelled",
        Some(Status::Skipped) => "skipped",
    }
}

/// A run's start or end: written to `runs` with the events, so that `phlo runs list` and a
/// run's liveness need no folding.
pub(crate) enum RunEdge {
    Start {
        selection: Option<String>,
        partitions: Option<String>,
        evaluated_at: Option<String>,
        tags: String,
        steps: i64,
        at: String,
    },
    End {
        status: &'static str,
        at: String,
        duration_ms: i64,
        /// The attempt's own counts; `None` for a resumed run, whose counts cover every
        /// attempt (folded from its steps).
        summary: Option<String>,
    },
}

/// What an event changes in `runs` at once: a run's start or end.
pub(crate) fn edge_of(e: &Event) -> Option<RunEdge> {
    e.correlation.run_id.as_ref()?;
    match &e.payload {
        EventPayload::RunStart(r) => Some(RunEdge::Start {
            selection: r.selection.clone(),
            partitions: r.partitions.clone(),
            evaluated_at: r.evaluated_at.map(|t| t.to_rfc3339()),
            tags: serde_json::to_string(&e.tags).unwrap_or_default(),
            steps: (r.assets + r.resumed_done) as i64,
            at: e.timestamp.to_rfc3339(),
        }),
        EventPayload::RunEnd(r) => Some(RunEdge::End {
            status: status_word(r.status),
            at: e.timestamp.to_rfc3339(),
            duration_ms: r.duration_ms.map_or(0, |d| d as i64),
            summary: (r.resumed_done == 0).then(|| serde_json::to_string(&r.summary).unwrap_or_default()),
        }),
        _ => None,
    }
}

/// Writes a batch: runs that start first, then the event log (one row per run and batch),
/// and runs that end last.
fn write(
    tx: &rusqlite::Transaction<'_>,
    batches: &[Batch],
    edges: &[(Arc<str>, RunEdge)],
    path: &Path,
) -> Result<(), StoreError> {
    let err = |e: rusqlite::Error| failed(path, &e);
    for (run, edge) in edges {
        let RunEdge::Start { selection, partitions, evaluated_at, tags, steps, at } = edge else { continue };
        let user = std::env::var("USER").or_else(|_| std::env::var("USERNAME")).unwrap_or_default();
        let who = if user.is_empty() { hostname() } else { format!("{user}@{}", hostname()) };
        // a resumed run (same id) is running again; its story, steps and counts go on
        tx.prepare_cached(
            "INSERT INTO runs (run_id, status, selection, partitions, evaluated_at, tags, steps, started_by, pid, started_at)
             VALUES (?1, 'running', ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
             ON CONFLICT (run_id) DO UPDATE SET status = 'running', ended_at = NULL, pid = excluded.pid,
               starts = runs.starts + 1",
        )
        .and_then(|mut q| {
            q.execute(params![&**run, selection, partitions, evaluated_at, tags, steps, who, std::process::id(), at])
        })
        .map_err(err)?;
    }
    // the event log: one row per run and batch
    for b in batches {
        tx.prepare_cached("INSERT INTO events (run_id, count, body) VALUES (?1, ?2, ?3)")
            .and_then(|mut q| q.execute(params![b.run.as_deref(), b.count, b.body]))
            .map_err(err)?;
    }
    for (run, edge) in edges {
        let RunEdge::End { status, at, duration_ms, summary } = edge else { continue };
        let starts: i64 = tx
            .prepare_cached("SELECT starts FROM runs WHERE run_id = ?1")
            .and_then(|mut q| q.query_row([&**run], |r| r.get(0)))
            .optional()
            .map_err(err)?
            .unwrap_or(1);
        let (status, summary) = match summary {
            Some(s) if starts <= 1 => (*status, s.clone()),
            _ => {
                // a run started more than once (resumed, or one process per step under an
                // external orchestrator's run id) is what all of them did together
                fold::fold(tx, path)?;
                folded(tx, run, status).map_err(err)?
            }
        };
        // the duration is the sum of the attempts'
        tx.prepare_cached(
            "UPDATE runs SET status = ?2, ended_at = ?3, duration_ms = coalesce(duration_ms, 0) + ?4, summary = ?5
             WHERE run_id = ?1",
        )
        .and_then(|mut q| q.execute(params![&**run, status, at, duration_ms, summary]))
        .map_err(err)?;
    }
    Ok(())
}

/// The status and counts of a run started more than once, from every attempt's steps and
/// the latest result of every check: `failed` when a step did not complete or a blocking
/// check's latest result blocks; otherwise what this attempt says (`succeeded`, or
/// `cancelled` / `failed` for reasons of its own).
fn folded(
    tx: &rusqlite::Transaction<'_>,
    run: &str,
    attempt: &'static str,
) -> rusqlite::Result<(&'static str, String)> {
    let counts: Vec<(String, i64)> = tx
        .prepare_cached("SELECT status, count(*) FROM steps WHERE run_id = ?1 GROUP BY status")?
        .query_map([run], |row| Ok((row.get(0)?, row.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    let incomplete = counts.iter().any(|(s, n)| *n > 0 && !matches!(s.as_str(), "succeeded" | "skipped_unchanged"));
    let gated: i64 = tx
        .prepare_cached(
            "SELECT count(*) FROM checks c
          WHERE c.run_id = ?1 AND c.passed = 0
            AND json_extract(c.result, '$.blocking') = 1 AND json_extract(c.result, '$.severity') = 'error'
            AND c.rowid = (SELECT max(l.rowid) FROM checks l WHERE l.run_id = c.run_id
                             AND l.asset_key = c.asset_key AND l.partition = c.partition AND l.name = c.name)",
        )?
        .query_row([run], |r| r.get(0))?;
    let status = match attempt {
        "cancelled" => "cancelled",
        _ if incomplete || gated > 0 => "failed",
        other => other,
    };
    let summary: std::collections::BTreeMap<String, i64> = counts.into_iter().collect();
    Ok((status, serde_json::to_string(&summary).unwrap_or_default()))
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .or_else(|_| std::env::var("HOSTNAME"))
        .unwrap_or_else(|_| String::from("localhost"))
}
