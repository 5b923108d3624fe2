//! Rows that stream: a reader fills batches on one thread while a store writes them on
//! another, so a load uses both cores and holds a few batches, never the whole input.
//!
//! A producer (a CSV parser, a REST pager) gets a [`BatchSender`] and sends full batches,
//! getting back emptied buffers to refill; a [`TableStore::write_batches`] call on the other
//! side drains the [`BatchReceiver`] inside its one transaction. An error from the producer
//! ends the write (nothing is committed) and is kept, whole, for the caller
//! ([`BatchReceiver::take_failure`]): a parse error keeps its `file:line:column` and its code.
//!
//! [`TableStore::write_batches`]: super::TableStore::write_batches

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

use super::digest::Digest;
use super::{Cell, DataError};

/// Rows per batch: large enough that the channel costs nothing per row, small enough that a
/// few batches in flight stay a few megabytes.
pub const BATCH_ROWS: usize = 4096;

/// Batches in flight between the producer and the writer (besides the one each holds).
const DEPTH: usize = 4;

/// A source of row batches, drained by a store's [`write_batches`](super::TableStore::write_batches).
pub trait RowBatches {
    /// Replaces `batch` with the next rows (each row one cell per column); `false` when there
    /// are no more. `batch` may come back holding an earlier batch's rows: the source reuses
    /// its buffers.
    ///
    /// # Errors
    /// The source failed: the write must not commit.
    fn next_batch(&mut self, batch: &mut Vec<Vec<Cell>>) -> Result<bool, DataError>;

    /// The digest of every row delivered so far, when the source hashed them (see
    /// [`digest`](super::digest)); `None` when it did not.
    fn digest(&self) -> Option<&Digest> {
        None
    }
}

/// Rows already in memory, handed over [`BATCH_ROWS`] at a time (each batch a copy: a few
/// megabytes beside the rows, never a second copy of them all).
#[derive(Debug)]
pub struct InMemory<'a> {
    rest: &'a [Vec<Cell>],
}

impl<'a> InMemory<'a> {
    /// The rows as a source.
    pub fn new(rows: &'a [Vec<Cell>]) -> Self {
        Self { rest: rows }
    }
}

impl RowBatches for InMemory<'_> {
    fn next_batch(&mut self, batch: &mut Vec<Vec<Cell>>) -> Result<bool, DataError> {
        if self.rest.is_empty() {
            return Ok(false);
        }
        let (now, later) = self.rest.split_at(self.rest.len().min(BATCH_ROWS));
        batch.clear();
        batch.extend_from_slice(now);
        self.rest = later;
        Ok(true)
    }
}

/// What travels from producer to writer: a batch with its rows' digest (when the producer
/// hashed them), or the producer's error.
type Message<E> = Result<(Vec<Vec<Cell>>, Option<Digest>), E>;

/// The producing end of a [`channel`].
#[derive(Debug)]
pub struct BatchSender<E> {
    tx: SyncSender<Message<E>>,
    back: Receiver<Vec<Vec<Cell>>>,
    /// Batches sent and not yet taken by the writer.
    in_flight: Arc<AtomicUsize>,
}

/// The writer has stopped reading (it failed, or was stopped): the producer should return.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriterGone;

impl<E> BatchSender<E> {
    /// Sends a full batch and returns an empty buffer to fill next (a buffer the writer is
    /// done with, when one is back). The batch's rows are hashed for the table's data version
    /// by whichever side has time: here while the writer has batches waiting (this thread is
    /// ahead), by the writer when it is waiting for rows.
    ///
    /// # Errors
    /// [`WriterGone`] when the writer stopped reading.
    pub fn send(&self, batch: Vec<Vec<Cell>>) -> Result<Vec<Vec<Cell>>, WriterGone> {
        // the writer waits for rows: hand them over now, it hashes them
        let digest = (self.in_flight.load(Ordering::Acquire) > 0).then(|| {
            let mut digest = Digest::default();
            batch.iter().for_each(|row| digest.add_row(row));
            digest
        });
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        if self.tx.send(Ok((batch, digest))).is_err() {
            return Err(WriterGone);
        }
        Ok(self.back.try_recv().unwrap_or_else(|_| Vec::with_capacity(BATCH_ROWS)))
    }

    /// Ends the stream with an error: the writer commits nothing and the caller gets `e` from
    /// [`BatchReceiver::take_failure`].
    pub fn fail(self, e: E) {
        let _ = self.tx.send(Err(e));
    }
}

/// The writing end of a [`channel`]: a [`RowBatches`] source.
#[derive(Debug)]
pub struct BatchReceiver<E> {
    rx: Receiver<Message<E>>,
    back: SyncSender<Vec<Vec<Cell>>>,
    failure: Option<E>,
    digest: Digest,
    in_flight: Arc<AtomicUsize>,
}

impl<E: std::fmt::Display> RowBatches for BatchReceiver<E> {
    fn next_batch(&mut self, batch: &mut Vec<Vec<Cell>>) -> Result<bool, DataError> {
        match self.rx.recv() {
            Ok(Ok((mut next, digest))) => {
                self.in_flight.fetch_sub(1, Ordering::AcqRel);
                match digest {
                    Some(d) => self.digest.merge(&d),
                    None => next.iter().for_each(|row| self.digest.add_row(row)),
                }
                std::mem::swap(batch, &mut next);
                if next.capacity() > 0 {
                    let _ = self.back.try_send(next);
                }
                Ok(true)
            }
            Ok(Err(e)) => {
                let message = e.to_string();
                self.failure = Some(e);
                Err(DataError::new(message))
            }
            // the producer returned without an error: the stream is complete
            Err(_) => Ok(false),
        }
    }

    fn digest(&self) -> Option<&Digest> {
        Some(&self.digest)
    }
}

impl<E> BatchReceiver<E> {
    /// The producer's error, when the stream ended with one.
    pub fn take_failure(&mut self) -> Option<E> {
        self.failure.take()
    }
}

/// A bounded channel of row batches: the producer blocks when the writer is [`DEPTH`]
/// batches behind, so memory stays flat whatever the input's size.
pub fn channel<E>() -> (BatchSender<E>, BatchReceiver<E>) {
    let (tx, rx) = sync_channel(DEPTH);
    let (back_tx, back_rx) = sync_channel(DEPTH + 2);
    let in_flight = Arc::new(AtomicUsize::new(0));
    (
        BatchSender { tx, back: back_rx, in_flight: Arc::clone(&in_flight) },
        BatchReceiver { rx, back: back_tx, failure: None, digest: Digest::default(), in_flight },
    )
}

/// Fills a batch row by row, reusing the row buffers of a recycled batch.
#[derive(Debug)]
pub struct BatchBuilder {
    rows: Vec<Vec<Cell>>,
    filled: usize,
    width: usize,
}

impl BatchBuilder {
    /// A builder of rows of `width` cells.
    pub fn new(width: usize) -> Self {
        Self { rows: Vec::with_capacity(BATCH_ROWS), filled: 0, width }
    }

    /// The next row to fill, empty.
    pub fn row(&mut self) -> &mut Vec<Cell> {
        if self.filled == self.rows.len() {
            self.rows.push(Vec::with_capacity(self.width));
        }
        let row = &mut self.rows[self.filled];
        row.clear();
        self.filled += 1;
        row
    }

    /// Whether no row is filled.
    pub fn is_empty(&self) -> bool {
        self.filled == 0
    }

    /// Whether the batch is full.
    pub fn is_full(&self) -> bool {
        self.filled >= BATCH_ROWS
    }

    /// The filled rows, handed over; the builder continues with `recycled`'s buffers.
    pub fn take(&mut self, recycled: Vec<Vec<Cell>>) -> Vec<Vec<Cell>> {
        let mut out = std::mem::replace(&mut self.rows, recycled);
        out.truncate(self.filled);
        self.filled = 0;
        out
    }

    /// Sends the filled rows (if any) and continues with the buffer that comes back.
    ///
    /// # Errors
    /// [`WriterGone`] when the writer stopped reading.
    pub fn flush<E>(&mut self, tx: &BatchSender<E>) -> Result<(), WriterGone> {
        if self.filled == 0 {
            return Ok(());
        }
        let full = self.take(Vec::new());
        self.rows = tx.send(full)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_arrive_in_order_and_buffers_come_back() {
        let (tx, mut rx) = channel::<String>();
        let producer = std::thread::spawn(move || {
            let mut b = BatchBuilder::new(1);
            for i in 0..10_000 {
                b.row().push(Cell::Int(i));
                if b.is_full() {
                    b.flush(&tx).unwrap();
                }
            }
            b.flush(&tx).unwrap();
        });
        let (mut batch, mut seen) = (Vec::new(), Vec::new());
        while rx.next_batch(&mut batch).unwrap() {
            seen.extend(batch.iter().map(|r| r[0].clone()));
        }
        producer.join().unwrap();
        assert_eq!(seen, (0..10_000).map(Cell::Int).collect::<Vec<_>>());
    }

    #[test]
    fn a_failure_ends_the_stream_and_is_kept_whole() {
        let (tx, mut rx) = channel::<String>();
        std::thread::spawn(move || {
            let mut b = BatchBuilder::new(1);
            b.row().push(Cell::Int(1));
            b.flush(&tx).unwrap();
            tx.fail(String::from("data.csv:3:2: broken"));
        });
        let mut batch = Vec::new();
        assert!(rx.next_batch(&mut batch).unwrap());
        let e = rx.next_batch(&mut batch).unwrap_err();
        assert_eq!(e.message, "data.csv:3:2: broken");
        assert_eq!(rx.take_failure().as_deref(), Some("data.csv:3:2: broken"));
    }

    #[test]
    fn a_gone_writer_stops_the_producer() {
        let (tx, rx) = channel::<String>();
        drop(rx);
        let mut b = BatchBuilder::new(1);
        b.row().push(Cell::Null);
        assert_eq!(b.flush(&tx), Err(WriterGone));
    }
}
