//! CSV quoting read as strictly as Python's `csv` with `strict=True`: a closing quote must end
//! its value (the next byte is the delimiter, a line break or the end of the file), and a quote
//! opened must be closed. The check rides on the bytes as the CSV parser reads them — a
//! [`Read`] adapter — so it costs no extra pass over the file, and it sees every byte before
//! the parser turns it into a record: a record is never accepted before its quoting is checked.
//!
//! The usual cause of text after a closing quote is a quote missing earlier, so that a quoted
//! value swallowed line breaks and the rows after them: the error then points where that
//! value opened.

use std::cell::RefCell;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::rc::Rc;

use phlo_core::diagnostic::Code;
use phlo_core::spec::RunError;

#[derive(Debug, Clone, Copy, PartialEq)]
enum State {
    FieldStart,
    Unquoted,
    Quoted,
    /// A quote inside a quoted value: it closes the value, or doubles as `""`.
    QuoteSeen,
}

/// Where the scan of a file found its quoting broken, kept for the reader's caller (the CSV
/// parser only sees an I/O error).
pub(crate) type Broken = Rc<RefCell<Option<RunError>>>;

/// A file whose bytes are checked for strict quoting as they are read.
pub(crate) struct StrictRead {
    file: std::fs::File,
    path: PathBuf,
    display: String,
    delimiter: u8,
    quote: u8,
    /// Whether to check (a second pass over a checked file does not).
    on: bool,
    state: State,
    /// The offset of the next byte read, and of the quote that opened the current value.
    base: u64,
    opened: u64,
    broken: Broken,
}

impl StrictRead {
    pub(crate) fn open(path: &Path, display: &str, delimiter: u8, quote: u8, on: bool) -> std::io::Result<Self> {
        Ok(Self {
            file: std::fs::File::open(path)?,
            path: path.to_path_buf(),
            display: display.to_string(),
            delimiter,
            quote,
            on,
            state: State::FieldStart,
            base: 0,
            opened: 0,
            broken: Broken::default(),
        })
    }

    /// The slot where a quoting error is left.
    pub(crate) fn broken(&self) -> Broken {
        Rc::clone(&self.broken)
    }

    fn fail(&self, e: RunError) -> std::io::Error {
        let message = e.message.clone();
        *self.broken.borrow_mut() = Some(e);
        std::io::Error::new(std::io::ErrorKind::InvalidData, message)
    }

    fn scan(&mut self, buf: &[u8]) -> Result<(), RunError> {
        let (d, q) = (self.delimiter, self.quote);
        let n = buf.len();
        // most data has no quote at all: a chunk without one only moves the field state
        if matches!(self.state, State::FieldStart | State::Unquoted) && memchr::memchr(q, buf).is_none() {
            let last = buf[n - 1];
            self.state = if last == d || last == b'\n' || last == b'\r' { State::FieldStart } else { State::Unquoted };
            self.base += n as u64;
            return Ok(());
        }
        let mut state = self.state;
        let mut i = 0;
        while i < n {
            if state == State::Quoted {
                // jump over the quoted text: only a quote changes this state
                match memchr::memchr(q, &buf[i..]) {
                    Some(k) => {
                        state = State::QuoteSeen;
                        i += k + 1;
                    }
                    None => i = n,
                }
                continue;
            }
            let b = buf[i];
            let newline = b == b'\n' || b == b'\r';
            state = match state {
                State::FieldStart | State::Unquoted if newline || b == d => State::FieldStart,
                State::FieldStart if b == q => {
                    self.opened = self.base + i as u64;
                    State::Quoted
                }
                State::FieldStart | State::Unquoted => State::Unquoted,
                State::Quoted if b == q => State::QuoteSeen,
                State::Quoted => State::Quoted,
                State::QuoteSeen if b == q => State::Quoted,
                State::QuoteSeen if b == d || newline => State::FieldStart,
                State::QuoteSeen => {
                    return Err(after_quote(&self.path, &self.display, self.opened, self.base + i as u64, b));
                }
            };
            i += 1;
        }
        self.state = state;
        self.base += n as u64;
        Ok(())
    }
}

impl Read for StrictRead {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.file.read(buf)?;
        if !self.on {
            return Ok(n);
        }
        if n == 0 {
            if self.state == State::Quoted {
                self.on = false;
                let (line, col) = place(&self.path, self.opened);
                return Err(self.fail(
                    RunError::permanent(format!(
                        "{}:{line}:{col}: this quote is never closed, so the rest of the file would be read as one \
                         value; close it, or write a quote inside a quoted value twice (`\"\"`)",
                        self.display
                    ))
                    .with_code(Code::InputFailed),
                ));
            }
            return Ok(0);
        }
        match self.scan(&buf[..n]) {
            Ok(()) => Ok(n),
            Err(e) => {
                self.on = false;
                Err(self.fail(e))
            }
        }
    }
}

impl Seek for StrictRead {
    fn seek(&mut self, pos: SeekFrom) -> std::io::Result<u64> {
        let at = self.file.seek(pos)?;
        // the reader seeks to the start of a record only
        self.base = at;
        self.state = State::FieldStart;
        Ok(at)
    }
}

/// The line and column (in characters) of byte `offset` of a file.
fn place(path: &Path, offset: u64) -> (u64, u64) {
    let mut head = Vec::new();
    if let Ok(f) = std::fs::File::open(path) {
        let _ = f.take(offset).read_to_end(&mut head);
    }
    let mut line = 1u64;
    let mut line_start = 0usize;
    for (i, &b) in head.iter().enumerate() {
        if b == b'\n' || (b == b'\r' && head.get(i + 1) != Some(&b'\n')) {
            line += 1;
            line_start = i + 1;
        }
    }
    let col = head[line_start..].iter().filter(|&&b| b & 0xC0 != 0x80).count() as u64 + 1;
    (line, col)
}

/// The error for `b` (at byte `at`) after the closing quote of a value opened at byte `opened`.
fn after_quote(path: &Path, display: &str, opened: u64, at: u64, b: u8) -> RunError {
    let (line, col) = place(path, at);
    let (open_line, open_col) = place(path, opened);
    let shown =
        if b.is_ascii_graphic() || b == b' ' { format!("`{}`", char::from(b)) } else { format!("byte 0x{b:02x}") };
    let message = if open_line == line {
        format!(
            "{display}:{line}:{col}: {shown} follows the closing quote of a value (opened at column {open_col}); a \
             quoted value ends at its closing quote — quote the whole value, and write a quote inside it twice (`\"\"`)"
        )
    } else {
        format!(
            "{display}:{open_line}:{open_col}: the quoted value opened here runs over {} line break(s) and closes at \
             line {line}, column {}, where {shown} follows it: a closing quote is probably missing on line {open_line}, \
             and the rows after it were read into this value",
            line - open_line,
            col.saturating_sub(1)
        )
    };
    RunError::permanent(message).with_code(Code::InputFailed)
}
