//! The records of a request series, held until the series ends: in memory while they are
//! few, then in a temporary file (unlinked at once on Unix, so a killed process leaves
//! nothing behind) — a series of any length costs one page and a few megabytes. Each record
//! is typed as it arrives, and the incremental cursor is followed, so the write that follows
//! streams the records once.

use std::io::{BufRead, BufReader, BufWriter, Seek, SeekFrom, Write};

use phlo_core::data::JsonTyping;
use phlo_core::spec::RunError;
use serde_json::{Map, Value};

use crate::records::cursor_after;

type Record = Map<String, Value>;

/// Page bytes held in memory before the records go to a file.
const SPILL_BYTES: usize = 4 << 20;

/// The records of one series.
pub(crate) struct Spool {
    memory: Vec<Record>,
    /// Page bytes whose records are in `memory`.
    held: usize,
    file: Option<BufWriter<std::fs::File>>,
    /// The file to remove when done (where an open file cannot be unlinked).
    remove: Option<std::path::PathBuf>,
    records: u64,
    pub(crate) typing: JsonTyping,
    /// The incremental cursor field, and the highest value seen in it.
    cursor_field: Option<String>,
    pub(crate) cursor: Option<Value>,
    pub(crate) cursor_seen: bool,
    /// The fields of the first record (for an error message).
    pub(crate) first_fields: Option<Vec<String>>,
}

fn spool_error(e: &std::io::Error) -> RunError {
    RunError::new(format!("cannot hold the records in a temporary file ({}): {e}", std::env::temp_dir().display()))
}

impl Spool {
    pub(crate) fn new(cursor_field: Option<&str>) -> Self {
        Self {
            memory: Vec::new(),
            held: 0,
            file: None,
            remove: None,
            records: 0,
            typing: JsonTyping::default(),
            cursor_field: cursor_field.map(str::to_string),
            cursor: None,
            cursor_seen: false,
            first_fields: None,
        }
    }

    /// How many records it holds.
    pub(crate) fn len(&self) -> u64 {
        self.records
    }

    /// Whether the records are in a file (the series was large).
    #[cfg(test)]
    pub(crate) fn spilled(&self) -> bool {
        self.file.is_some()
    }

    /// Notes that a page of `bytes` arrived (its records follow): past the memory budget, the
    /// records held so far go to a file.
    pub(crate) fn page(&mut self, bytes: usize) -> Result<(), RunError> {
        self.held += bytes;
        if self.file.is_none() && self.held > SPILL_BYTES {
            let (file, remove) = temp_file().map_err(|e| spool_error(&e))?;
            self.remove = remove;
            let mut file = BufWriter::with_capacity(1 << 16, file);
            for r in self.memory.drain(..) {
                write_record(&mut file, &r).map_err(|e| spool_error(&e))?;
            }
            self.memory = Vec::new();
            self.file = Some(file);
        }
        Ok(())
    }

    pub(crate) fn push(&mut self, record: Record) -> Result<(), RunError> {
        self.typing.see(&record);
        if self.first_fields.is_none() {
            self.first_fields = Some(record.keys().cloned().collect());
        }
        if let Some(v) = self.cursor_field.as_ref().and_then(|f| record.get(f)).filter(|v| !v.is_null()) {
            self.cursor_seen = true;
            if self.cursor.as_ref().is_none_or(|c| cursor_after(v, c)) {
                self.cursor = Some(v.clone());
            }
        }
        self.records += 1;
        match &mut self.file {
            Some(f) => write_record(f, &record).map_err(|e| spool_error(&e)),
            None => {
                self.memory.push(record);
                Ok(())
            }
        }
    }

    /// Hands every record to `f`, in arrival order, consuming the spool.
    pub(crate) fn drain(mut self, f: &mut dyn FnMut(Record) -> Result<(), RunError>) -> Result<(), RunError> {
        let Some(file) = self.file.take() else {
            return std::mem::take(&mut self.memory).into_iter().try_for_each(f);
        };
        let mut file = file.into_inner().map_err(|e| spool_error(e.error()))?;
        file.seek(SeekFrom::Start(0)).map_err(|e| spool_error(&e))?;
        let mut reader = BufReader::with_capacity(1 << 16, file);
        let mut line = Vec::new();
        loop {
            line.clear();
            if reader.read_until(b'\n', &mut line).map_err(|e| spool_error(&e))? == 0 {
                return Ok(());
            }
            let record: Record = serde_json::from_slice(&line)
                .map_err(|e| RunError::new(format!("the temporary file of the records is damaged: {e}")))?;
            f(record)?;
        }
    }
}

fn write_record(file: &mut impl Write, record: &Record) -> std::io::Result<()> {
    serde_json::to_writer(&mut *file, record)?;
    file.write_all(b"\n")
}

/// A new temporary file, already unlinked where the system allows it (Unix); elsewhere its
/// path, to remove when the spool is dropped.
fn temp_file() -> std::io::Result<(std::fs::File, Option<std::path::PathBuf>)> {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let path = std::env::temp_dir().join(format!("phlo-rest-{}-{n}.jsonl", std::process::id()));
    let file = std::fs::OpenOptions::new().read(true).write(true).create_new(true).open(&path)?;
    if cfg!(unix) {
        // an open file keeps its data once unlinked
        std::fs::remove_file(&path)?;
        return Ok((file, None));
    }
    Ok((file, Some(path)))
}

impl Drop for Spool {
    fn drop(&mut self) {
        if let Some(path) = self.remove.take() {
            self.file = None;
            let _ = std::fs::remove_file(path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(i: u64) -> Record {
        let mut m = Map::new();
        m.insert("id".into(), Value::from(i));
        m.insert("pad".into(), Value::from("x".repeat(200)));
        m
    }

    #[test]
    fn records_come_back_in_order_from_memory_or_a_file() {
        for (pages, spills) in [(2usize, false), (200, true)] {
            let mut s = Spool::new(Some("id"));
            let mut n = 0;
            for _ in 0..pages {
                s.page(100_000).unwrap();
                for _ in 0..400 {
                    s.push(record(n)).unwrap();
                    n += 1;
                }
            }
            assert_eq!(s.spilled(), spills);
            assert_eq!(s.len(), n);
            assert_eq!(s.cursor, Some(Value::from(n - 1)));
            let mut back = Vec::new();
            s.drain(&mut |r| {
                back.push(r["id"].as_u64().unwrap());
                Ok(())
            })
            .unwrap();
            assert_eq!(back, (0..n).collect::<Vec<_>>());
        }
    }
}
