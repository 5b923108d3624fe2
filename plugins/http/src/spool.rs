//! The records of a request series, held until the series ends: in memory while they are
//! few (as rows of provisional cells, a third of what JSON objects take), then in a temporary file (unlinked at once on Unix, so a killed process leaves
//! nothing behind) — a series of any length costs one page and a few megabytes. Each record
//! is typed as it arrives, and the incremental cursor is followed, so the write that follows
//! streams the records once.

use std::io::{BufReader, BufWriter, Read, Seek, SeekFrom, Write};

use phlo_core::data::batches::BatchBuilder;
use phlo_core::data::{Cell, DataType, JsonTyping, provisional, settle};
use phlo_core::spec::RunError;
use serde_json::{Map, Value};

use crate::records::cursor_after;

type Record = Map<String, Value>;

/// Page bytes whose records are held in memory before the records go to a file.
const SPILL_BYTES: usize = 8 << 20;

/// The records of one series.
pub(crate) struct Spool {
    /// Rows of provisional cells (see [`phlo_core::data::provisional`]), one per column seen
    /// when the record came (later columns are null).
    memory: Vec<Vec<Cell>>,
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
            // the rows held so far stay in memory; the records from here on go to the file
            file.flush().map_err(|e| spool_error(&e))?;
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
        let mut row = vec![Cell::Null; self.typing.len()];
        for (k, v) in record {
            if let Some(i) = self.typing.index_of(&k) {
                row[i] = provisional(v);
            }
        }
        match &mut self.file {
            Some(f) => write_row(f, &row).map_err(|e| spool_error(&e)),
            None => {
                self.memory.push(row);
                Ok(())
            }
        }
    }

    /// Converts every record, in arrival order, to a row of the final `typing`'s columns
    /// (`types`, from its `columns()`) in `batch`, handing full batches to `emit`; consumes
    /// the spool.
    pub(crate) fn drain(
        mut self,
        typing: &JsonTyping,
        types: &[DataType],
        batch: &mut BatchBuilder,
        emit: &mut dyn FnMut(&mut BatchBuilder) -> Result<(), RunError>,
    ) -> Result<(), RunError> {
        // the columns of this series, where they are among the final ones
        let at: Vec<Option<usize>> = self.typing.names().iter().map(|n| typing.index_of(n)).collect();
        for held in std::mem::take(&mut self.memory) {
            let row = batch.row();
            row.resize(types.len(), Cell::Null);
            place(held, &at, types, row);
            if batch.is_full() {
                emit(batch)?;
            }
        }
        let Some(file) = self.file.take() else { return Ok(()) };
        let mut file = file.into_inner().map_err(|e| spool_error(e.error()))?;
        file.seek(SeekFrom::Start(0)).map_err(|e| spool_error(&e))?;
        let mut reader = BufReader::with_capacity(1 << 16, file);
        let mut held = Vec::new();
        while read_row(&mut reader, &mut held).map_err(|e| spool_error(&e))? {
            let row = batch.row();
            row.resize(types.len(), Cell::Null);
            place(held.drain(..), &at, types, row);
            if batch.is_full() {
                emit(batch)?;
            }
        }
        Ok(())
    }
}

/// A held row's cells into `row`, each at its final column (`at`, by the series' own column),
/// settled to that column's type.
fn place(held: impl IntoIterator<Item = Cell>, at: &[Option<usize>], types: &[DataType], row: &mut [Cell]) {
    for (cell, i) in held.into_iter().zip(at) {
        if let Some(i) = *i {
            row[i] = settle(cell, types[i]);
        }
    }
}

/// A row of provisional cells in the file: its cell count, then each cell as a tag and its
/// bytes (little-endian numbers; text and bytes with their length).
fn write_row(file: &mut impl Write, row: &[Cell]) -> std::io::Result<()> {
    let len = |n: usize| u32::try_from(n).map_err(|_| std::io::Error::other("a value over 4 GB")).map(u32::to_le_bytes);
    file.write_all(&len(row.len())?)?;
    for cell in row {
        match cell {
            Cell::Null => file.write_all(&[0])?,
            Cell::Int(i) => {
                file.write_all(&[1])?;
                file.write_all(&i.to_le_bytes())?;
            }
            Cell::Real(r) => {
                file.write_all(&[2])?;
                file.write_all(&r.to_bits().to_le_bytes())?;
            }
            Cell::Text(t) => {
                file.write_all(&[3])?;
                file.write_all(&len(t.len())?)?;
                file.write_all(t.as_bytes())?;
            }
            Cell::Bool(b) => file.write_all(&[4, u8::from(*b)])?,
            Cell::Blob(b) => {
                file.write_all(&[5])?;
                file.write_all(&len(b.len())?)?;
                file.write_all(b)?;
            }
        }
    }
    Ok(())
}

/// Reads a row [`write_row`] wrote into `row`; `false` at the end of the file.
fn read_row(file: &mut impl Read, row: &mut Vec<Cell>) -> std::io::Result<bool> {
    let mut word = [0u8; 4];
    match file.read_exact(&mut word) {
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(false),
        other => other?,
    }
    let damaged = || std::io::Error::other("the temporary file of the records is damaged");
    let mut eight = [0u8; 8];
    let bytes = |file: &mut dyn Read| -> std::io::Result<Vec<u8>> {
        let mut n = [0u8; 4];
        file.read_exact(&mut n)?;
        let mut b = vec![0u8; u32::from_le_bytes(n) as usize];
        file.read_exact(&mut b)?;
        Ok(b)
    };
    row.clear();
    for _ in 0..u32::from_le_bytes(word) {
        let mut tag = [0u8; 1];
        file.read_exact(&mut tag)?;
        row.push(match tag[0] {
            0 => Cell::Null,
            1 => {
                file.read_exact(&mut eight)?;
                Cell::Int(i64::from_le_bytes(eight))
            }
            2 => {
                file.read_exact(&mut eight)?;
                Cell::Real(f64::from_bits(u64::from_le_bytes(eight)))
            }
            3 => Cell::Text(String::from_utf8(bytes(file)?).map_err(|_| damaged())?),
            4 => {
                file.read_exact(&mut tag)?;
                Cell::Bool(tag[0] != 0)
            }
            5 => Cell::Blob(bytes(file)?),
            _ => return Err(damaged()),
        });
    }
    Ok(true)
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
            let mut typing = s.typing.clone();
            let types: Vec<DataType> = typing.columns().iter().map(|c| c.data_type).collect();
            assert_eq!(types, [DataType::Integer, DataType::Text]);
            let mut back = Vec::new();
            let mut batch = BatchBuilder::new(2);
            let mut emit = |b: &mut BatchBuilder| {
                back.extend(b.take(Vec::new()).into_iter().map(|r| match r[0] {
                    Cell::Int(i) => u64::try_from(i).unwrap(),
                    _ => u64::MAX,
                }));
                Ok(())
            };
            s.drain(&typing, &types, &mut batch, &mut emit).unwrap();
            emit(&mut batch).unwrap();
            assert_eq!(back, (0..n).collect::<Vec<_>>());
        }
    }
}
