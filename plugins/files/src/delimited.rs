//! Reading CSV (and other delimited) files like a careful loader: strict quoting, values that
//! keep their meaning (`00123`, `+33…` and over-long digit strings stay text), configurable
//! null markers, date and timestamp formats, quote character, encoding and header.

use std::collections::BTreeMap;
use std::path::Path;

use chrono::{DateTime, NaiveDate, NaiveDateTime};
use phlo_core::data::{Cell, Column, DataType, Rows};
use phlo_core::spec::RunError;
use schemars::JsonSchema;
use serde::Deserialize;

use crate::strict::{Broken, StrictRead};
use phlo_core::data::batches::BatchBuilder;

/// The text encoding of a file.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
pub enum Encoding {
    /// UTF-8 (the default); a byte sequence that is not UTF-8 is an error naming its place.
    #[default]
    #[serde(rename = "utf-8", alias = "utf8", alias = "UTF-8")]
    Utf8,
    /// ISO-8859-1: every byte is the character of the same number.
    #[serde(rename = "latin-1", alias = "latin1", alias = "iso-8859-1", alias = "ISO-8859-1")]
    Latin1,
}

/// The markers read as null when `null_values` is not given.
pub const DEFAULT_NULL_VALUES: &[&str] = &["", "NA", "N/A", "n/a", "NULL", "null", "NaN", "nan", "#N/A", "<NA>"];

/// How a delimited file is written.
#[derive(Debug, Clone)]
pub struct CsvFormat {
    /// The field delimiter.
    pub delimiter: u8,
    /// The quote character (a quote inside a quoted field is written twice).
    pub quote: u8,
    /// Whether the first line names the columns (else they are `column_1`, `column_2`, …).
    pub header: bool,
    /// The text encoding.
    pub encoding: Encoding,
    /// Values read as null, compared exactly.
    pub null_values: Vec<String>,
    /// A chrono format for dates (default ISO `YYYY-MM-DD`).
    pub date_format: Option<String>,
    /// A chrono format for timestamps (default RFC 3339); without an offset (`%z`) the time is UTC.
    pub timestamp_format: Option<String>,
    /// Declared column types; others are inferred.
    pub declared: BTreeMap<String, DataType>,
}

impl Default for CsvFormat {
    fn default() -> Self {
        Self {
            delimiter: b',',
            quote: b'"',
            header: true,
            encoding: Encoding::Utf8,
            null_values: DEFAULT_NULL_VALUES.iter().map(|s| (*s).to_string()).collect(),
            date_format: None,
            timestamp_format: None,
            declared: BTreeMap::new(),
        }
    }
}

/// Whether a chrono format string is usable; `Err` says what is wrong with it.
pub fn check_format(format: &str) -> Result<(), String> {
    use chrono::format::{Item, StrftimeItems};
    if format.is_empty() {
        return Err(String::from("the format is empty"));
    }
    match StrftimeItems::new(format).position(|i| matches!(i, Item::Error)) {
        Some(_) => Err(format!("`{format}` is not a valid format (see chrono's strftime specifiers, e.g. `%d/%m/%Y`)")),
        None => Ok(()),
    }
}

impl CsvFormat {
    fn date(&self, v: &str) -> Option<NaiveDate> {
        match &self.date_format {
            None => iso_date(v),
            Some(f) => NaiveDate::parse_from_str(v, f).ok(),
        }
    }

    /// The timestamp as RFC 3339 UTC text.
    fn timestamp(&self, v: &str) -> Option<String> {
        let utc = match &self.timestamp_format {
            None => DateTime::parse_from_rfc3339(v).ok()?.to_utc(),
            Some(f) => match DateTime::parse_from_str(v, f) {
                Ok(t) => t.to_utc(),
                Err(_) => NaiveDateTime::parse_from_str(v, f).ok()?.and_utc(),
            },
        };
        Some(utc.to_rfc3339())
    }
}

/// A whole number as a data team means it: no leading `+`, no leading zeros (`007` is a code,
/// not 7), and within 64 bits.
fn plain_int(v: &str) -> Option<i64> {
    let digits = v.strip_prefix('-').unwrap_or(v);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) || (digits.len() > 1 && digits.starts_with('0'))
    {
        return None;
    }
    v.parse().ok()
}

/// A decimal number: as [`plain_int`] for the integer part; a digit string too long for 64
/// bits is not a number (it is an identifier that would lose digits), nor is a decimal with
/// more digits than a double holds (`12345678901234567.5`).
fn plain_real(v: &str) -> Option<f64> {
    let unsigned = v.strip_prefix('-').unwrap_or(v);
    let int_part = unsigned.split(['.', 'e', 'E']).next().unwrap_or("");
    if !unsigned.starts_with(|c: char| c.is_ascii_digit() || c == '.')
        || (int_part.len() > 1 && int_part.starts_with('0'))
        || unsigned.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    // only when no digit is lost; otherwise the column is text
    phlo_core::data::exact_real(v)
}

/// A `YYYY-MM-DD` date, checked without a format parser (this runs once per value).
fn iso_date(v: &str) -> Option<NaiveDate> {
    let b = v.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        b[r].iter().try_fold(0u32, |acc, c| c.is_ascii_digit().then(|| acc * 10 + u32::from(c - b'0')))
    };
    NaiveDate::from_ymd_opt(i32::try_from(num(0..4)?).ok()?, num(5..7)?, num(8..10)?)
}

/// Which types a column's values so far allow.
#[derive(Debug, Clone, Copy)]
struct Candidates {
    int: bool,
    real: bool,
    boolean: bool,
    date: bool,
    timestamp: bool,
}

impl Candidates {
    const ALL: Candidates = Candidates { int: true, real: true, boolean: true, date: true, timestamp: true };

    fn see(&mut self, v: &str, format: &CsvFormat) {
        // a candidate once ruled out is never tested again; an integer is a real, a date not
        if self.int {
            self.int = plain_int(v).is_some();
            if self.int {
                self.boolean = false;
                self.date = false;
                self.timestamp = false;
                return;
            }
        }
        if self.real {
            // an integer joins reals only when a double holds it exactly
            self.real =
                plain_real(v).is_some() || plain_int(v).is_some_and(|_| phlo_core::data::exact_real(v).is_some());
        }
        if self.boolean {
            self.boolean = v.eq_ignore_ascii_case("true") || v.eq_ignore_ascii_case("false");
        }
        if self.date {
            self.date = format.date(v).is_some();
        }
        if self.timestamp {
            self.timestamp = format.timestamp(v).is_some();
        }
    }

    fn pick(self, seen_any: bool) -> DataType {
        match self {
            _ if !seen_any => DataType::Text,
            Candidates { int: true, .. } => DataType::Integer,
            Candidates { real: true, .. } => DataType::Real,
            Candidates { boolean: true, .. } => DataType::Boolean,
            Candidates { date: true, .. } => DataType::Date,
            Candidates { timestamp: true, .. } => DataType::Timestamp,
            _ => DataType::Text,
        }
    }
}

/// A non-null value as a cell of type `t`.
fn convert(v: &str, t: DataType, format: &CsvFormat) -> Option<Cell> {
    Some(match t {
        DataType::Integer => Cell::Int(v.parse().ok()?),
        DataType::Real => Cell::Real(v.parse::<f64>().ok().filter(|f| f.is_finite())?),
        DataType::Boolean => match v.to_ascii_lowercase().as_str() {
            "true" => Cell::Bool(true),
            "false" => Cell::Bool(false),
            _ => return None,
        },
        // an ISO date is its own canonical form
        DataType::Date if format.date_format.is_none() => Cell::Text(iso_date(v).map(|_| v.to_string())?),
        DataType::Date => Cell::Text(format.date(v)?.format("%Y-%m-%d").to_string()),
        DataType::Timestamp => Cell::Text(format.timestamp(v)?),
        DataType::Text => Cell::Text(v.to_string()),
    })
}

type Reader = csv::Reader<StrictRead>;

/// A reader of `path`; `strict` checks its quoting as it reads (see [`crate::strict`]).
fn reader(path: &Path, display: &str, format: &CsvFormat, strict: bool) -> Result<(Reader, Broken), RunError> {
    let file = StrictRead::open(path, display, format.delimiter, format.quote, strict)
        .map_err(|e| RunError::permanent(format!("cannot read `{display}`: {e}")))?;
    let broken = file.broken();
    let r = csv::ReaderBuilder::new()
        .delimiter(format.delimiter)
        .quote(format.quote)
        .has_headers(false)
        .flexible(false)
        .buffer_capacity(1 << 16)
        .from_reader(file);
    Ok((r, broken))
}

fn io_message(e: &csv::Error) -> String {
    match e.kind() {
        csv::ErrorKind::Io(io) => io.to_string(),
        _ => e.to_string(),
    }
}

fn record_error(display: &str, e: &csv::Error, width: usize, broken: &Broken) -> RunError {
    // the strict scan refused the bytes before the parser saw them
    if let Some(e) = broken.borrow_mut().take() {
        return e;
    }
    let line = e.position().map_or(0, csv::Position::line);
    let message = match e.kind() {
        csv::ErrorKind::UnequalLengths { len, .. } => {
            format!("{display}:{line}: the row has {len} field(s), the header has {width}")
        }
        _ => format!("{display}:{line}: {}", io_message(e)),
    };
    RunError::permanent(message)
}

/// Reads the next record as text in the file's encoding, reusing `rec`'s buffers.
fn read_text(
    r: &mut Reader,
    broken: &Broken,
    rec: &mut csv::StringRecord,
    format: &CsvFormat,
    display: &str,
    width: usize,
) -> Result<bool, RunError> {
    let mut bytes = std::mem::take(rec).into_byte_record();
    if !r.read_byte_record(&mut bytes).map_err(|e| record_error(display, &e, width, broken))? {
        return Ok(false);
    }
    *rec = match format.encoding {
        Encoding::Utf8 => csv::StringRecord::from_byte_record(bytes).map_err(|e| {
            let (field, valid_up_to) = (e.utf8_error().field(), e.utf8_error().valid_up_to());
            let line = e.into_byte_record().position().map_or(0, csv::Position::line);
            RunError::permanent(format!(
                "{display}:{line}:{}: the value is not UTF-8 (invalid byte at offset {}); if the file is ISO-8859-1, \
                 say `encoding: latin-1`",
                field + 1,
                valid_up_to
            ))
        })?,
        Encoding::Latin1 => {
            let mut text = csv::StringRecord::with_capacity(bytes.as_slice().len() * 2, bytes.len());
            for field in &bytes {
                text.push_field(&field.iter().map(|&b| char::from(b)).collect::<String>());
            }
            text.set_position(bytes.position().cloned());
            text
        }
    };
    Ok(true)
}

/// The null markers, with a quick test that rules most values out by length.
struct Nulls<'a> {
    values: &'a [String],
    /// Bit `n` is set when a marker has `n` bytes (bit 63: 63 or more).
    lengths: u64,
}

impl<'a> Nulls<'a> {
    fn new(values: &'a [String]) -> Self {
        Self { values, lengths: values.iter().fold(0, |m, v| m | 1 << v.len().min(63)) }
    }

    fn contains(&self, v: &str) -> bool {
        self.lengths & (1 << v.len().min(63)) != 0 && self.values.iter().any(|n| n == v)
    }
}

/// Records read between two looks at the stop signal.
pub(crate) const STOP_CHECK_EVERY: usize = 8192;

fn stopped(display: &str) -> RunError {
    RunError::new(format!("the load of `{display}` was stopped"))
}

/// Header names must name the columns: none empty, none twice.
pub(crate) fn check_header(display: &str, names: &[String]) -> Result<(), RunError> {
    for (i, n) in names.iter().enumerate() {
        if n.trim().is_empty() {
            return Err(RunError::permanent(format!(
                "{display}:1:{}: column {} of the header has no name; every column needs one (or say `header: false`)",
                i + 1,
                i + 1
            ))
            .with_code(phlo_core::diagnostic::Code::InputFailed));
        }
        if let Some(j) = names[..i].iter().position(|m| m == n) {
            return Err(RunError::permanent(format!(
                "{display}:1: the header names `{n}` twice (columns {} and {}); each column needs a name of its own",
                j + 1,
                i + 1
            ))
            .with_code(phlo_core::diagnostic::Code::InputFailed));
        }
    }
    Ok(())
}

/// The columns of a file, from its first line (`None` when it cannot be read yet).
pub(crate) fn header_columns(path: &Path, format: &CsvFormat) -> Option<Vec<String>> {
    let (mut r, broken) = reader(path, "", format, false).ok()?;
    let mut record = csv::StringRecord::new();
    if !read_text(&mut r, &broken, &mut record, format, "", 0).ok()? {
        return None;
    }
    Some(if format.header {
        record.iter().map(str::to_string).collect()
    } else {
        (1..=record.len()).map(|i| format!("column_{i}")).collect()
    })
}

/// Reads a delimited file: a first pass infers the types of undeclared columns, a second
/// converts. Any bad row is an error naming `file:line:column` (`display` is the path as the
/// user wrote it), and nothing is returned.
///
/// # Errors
/// A missing, empty or malformed file, or a value that does not fit its column's type.
pub fn read_csv(path: &Path, display: &str, format: &CsvFormat) -> Result<Rows, RunError> {
    read_csv_until(path, display, format, &|| false)
}

/// [`read_csv`] that gives up, between batches of records, as soon as `stop` says so.
///
/// # Errors
/// As `read_csv`, and a stop.
pub fn read_csv_until(
    path: &Path,
    display: &str,
    format: &CsvFormat,
    stop: &dyn Fn() -> bool,
) -> Result<Rows, RunError> {
    read_csv_files_until(&[(path.to_path_buf(), display.to_string())], format, stop)
}

/// One file of a load: where its data starts.
#[derive(Debug)]
struct Part<'a> {
    path: &'a Path,
    display: &'a str,
    data_start: csv::Position,
}

impl Part<'_> {
    /// A reader at the file's first data record.
    fn open(&self, format: &CsvFormat, strict: bool) -> Result<(Reader, Broken), RunError> {
        let (mut r, broken) = reader(self.path, self.display, format, strict)?;
        r.seek(self.data_start.clone())
            .map_err(|e| RunError::permanent(format!("cannot read `{}`: {e}", self.display)))?;
        Ok((r, broken))
    }
}

/// A load read once: its files' headers checked, their quoting checked and the types of the
/// undeclared columns inferred from every value. [`CsvPlan::convert`] then reads the rows.
#[derive(Debug)]
pub struct CsvPlan<'a> {
    parts: Vec<Part<'a>>,
    headers: Vec<String>,
    /// The table's columns.
    pub columns: Vec<Column>,
    /// The data records counted (0 when every column is declared and nothing was inferred).
    pub records: usize,
    /// Whether the first pass read the data (and checked its quoting).
    scanned: bool,
}

/// Reads the files of a load (a `path` glob's, in order) once: their headers, their quoting
/// and the types of undeclared columns, inferred over all of them.
///
/// # Errors
/// A missing, empty or malformed file, a broken quote (`file:line:column`), a file whose
/// columns differ from the first's, a declared column no file has; a stop.
pub fn plan_csv<'a>(
    files: &'a [(std::path::PathBuf, String)],
    format: &CsvFormat,
    stop: &dyn Fn() -> bool,
) -> Result<CsvPlan<'a>, RunError> {
    let mut record = csv::StringRecord::new();
    let mut parts: Vec<Part<'_>> = Vec::with_capacity(files.len());
    let mut headers: Option<Vec<String>> = None;
    for (path, display) in files {
        let (mut r, broken) = reader(path, display, format, true)?;
        if !read_text(&mut r, &broken, &mut record, format, display, 0)? || record.iter().all(str::is_empty) {
            return Err(RunError::permanent(format!(
                "`{display}` is empty: expected a header line naming the columns"
            )));
        }
        let these: Vec<String> = if format.header {
            record.iter().map(str::to_string).collect()
        } else {
            (1..=record.len()).map(|i| format!("column_{i}")).collect()
        };
        check_header(display, &these)?;
        match &headers {
            Some(first) if *first != these => {
                return Err(RunError::permanent(format!(
                    "`{display}` has the columns {}, but `{}` has {}: the files of one asset share their columns",
                    these.join(", "),
                    parts[0].display,
                    first.join(", ")
                )));
            }
            Some(_) => {}
            None => headers = Some(these),
        }
        // without a header the first line is data: the data pass starts at the top
        let data_start = if format.header { r.position().clone() } else { csv::Position::new() };
        parts.push(Part { path, display, data_start });
    }
    let (Some(headers), Some(first)) = (headers, parts.first()) else {
        return Err(RunError::permanent(String::from("no file to read")));
    };
    let width = headers.len();
    if let Some(unknown) = format.declared.keys().find(|k| !headers.contains(k)) {
        return Err(RunError::permanent(format!(
            "`columns.{unknown}` is declared but `{}` has no such column (it has {})",
            first.display,
            headers.join(", ")
        )));
    }
    let declared: Vec<Option<DataType>> = headers.iter().map(|h| format.declared.get(h).copied()).collect();
    let nulls = Nulls::new(&format.null_values);

    let mut candidates = vec![Candidates::ALL; width];
    let mut seen = vec![false; width];
    let mut count = 0usize;
    let scanned = declared.iter().any(Option::is_none);
    if scanned {
        // one file open at a time (a glob may match thousands); each is checked strictly as
        // it is read (its header was, when it was opened above)
        for part in &parts {
            let (mut r, broken) = part.open(format, true)?;
            while read_text(&mut r, &broken, &mut record, format, part.display, width)? {
                count += 1;
                if count.is_multiple_of(STOP_CHECK_EVERY) && stop() {
                    return Err(stopped(part.display));
                }
                for (i, v) in record.iter().enumerate() {
                    if declared[i].is_none() && !nulls.contains(v) {
                        candidates[i].see(v, format);
                        seen[i] = true;
                    }
                }
            }
        }
    }
    let columns: Vec<Column> = headers
        .iter()
        .enumerate()
        .map(|(i, h)| Column::new(h, declared[i].unwrap_or_else(|| candidates[i].pick(seen[i]))))
        .collect();
    Ok(CsvPlan { parts, headers, columns, records: count, scanned })
}

impl CsvPlan<'_> {
    /// Reads the rows, converted to the plan's column types, into `batch`, handing it to
    /// `emit` whenever it is full (and once at the end, when rows are left).
    ///
    /// # Errors
    /// A value that does not fit its column's type (`file:line:column`), a row of the wrong
    /// width, a broken quote (when the plan did not read the data), `emit`'s error; a stop.
    pub fn convert(
        &self,
        format: &CsvFormat,
        stop: &dyn Fn() -> bool,
        batch: &mut BatchBuilder,
        emit: &mut dyn FnMut(&mut BatchBuilder) -> Result<(), RunError>,
    ) -> Result<(), RunError> {
        let width = self.headers.len();
        let nulls = Nulls::new(&format.null_values);
        let mut record = csv::StringRecord::new();
        let mut count = 0usize;
        for part in &self.parts {
            let display = part.display;
            let (mut r, broken) = part.open(format, !self.scanned)?;
            while read_text(&mut r, &broken, &mut record, format, display, width)? {
                count += 1;
                if count.is_multiple_of(STOP_CHECK_EVERY) && stop() {
                    return Err(stopped(display));
                }
                let row = batch.row();
                for (i, v) in record.iter().enumerate() {
                    let t = self.columns[i].data_type;
                    let cell = if nulls.contains(v) { Some(Cell::Null) } else { convert(v, t, format) };
                    match cell {
                        Some(cell) => row.push(cell),
                        None => {
                            let line = record.position().map_or(0, csv::Position::line);
                            return Err(bad_value(display, line, i, v, t, &self.headers[i], format));
                        }
                    }
                }
                if batch.is_full() {
                    emit(batch)?;
                }
            }
        }
        if !batch.is_empty() {
            emit(batch)?;
        }
        Ok(())
    }
}

/// A value that is not of its column's type.
fn bad_value(display: &str, line: u64, i: usize, v: &str, t: DataType, header: &str, format: &CsvFormat) -> RunError {
    RunError::permanent(format!(
        "{display}:{line}:{}: `{v}` is not a valid {} for column `{header}`{}",
        i + 1,
        t.as_str(),
        match (t, &format.date_format, &format.timestamp_format) {
            (DataType::Date, None, _) => " (dates are read as YYYY-MM-DD; say another with `date_format`)",
            (DataType::Timestamp, _, None) => " (timestamps are read as RFC 3339; say another with `timestamp_format`)",
            _ => "",
        }
    ))
}

/// Reads several files with the same columns into one set of rows (a `path` glob), types
/// inferred over all of them; `(path, display)` pairs, in order.
///
/// # Errors
/// As `read_csv`; a file whose columns differ from the first's; a stop.
pub fn read_csv_files_until(
    files: &[(std::path::PathBuf, String)],
    format: &CsvFormat,
    stop: &dyn Fn() -> bool,
) -> Result<Rows, RunError> {
    let plan = plan_csv(files, format, stop)?;
    let mut rows = Rows { columns: plan.columns.clone(), rows: Vec::with_capacity(plan.records) };
    let mut batch = BatchBuilder::new(rows.columns.len());
    plan.convert(format, stop, &mut batch, &mut |b| {
        rows.rows.append(&mut b.take(Vec::new()));
        Ok(())
    })?;
    Ok(rows)
}

/// The files a `path` names: itself, or — when its last part holds `*`, `?` — the files of
/// its directory matching it, in name order. `display` is `path` as written.
///
/// # Errors
/// A pattern outside the last part, an unreadable directory, or no file matching.
pub fn expand_path(path: &Path, display: &str) -> Result<Vec<(std::path::PathBuf, String)>, RunError> {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    if !name.contains(['*', '?']) {
        return Ok(vec![(path.to_path_buf(), display.to_string())]);
    }
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    let shown_dir = display.rsplit_once('/').map_or("", |(d, _)| d);
    let entries = std::fs::read_dir(dir)
        .map_err(|e| RunError::permanent(format!("cannot read the directory of `{display}`: {e}")))?;
    let mut names: Vec<String> = entries
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| phlo_core::graph::glob_match(&name, n))
        .collect();
    names.sort();
    if names.is_empty() {
        return Err(RunError::permanent(format!("no file matches `{display}`")));
    }
    Ok(names
        .into_iter()
        .map(|n| {
            let shown = if shown_dir.is_empty() { n.clone() } else { format!("{shown_dir}/{n}") };
            (dir.join(&n), shown)
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_keep_their_meaning() {
        for v in ["0", "7", "-12", "9223372036854775807"] {
            assert!(plain_int(v).is_some(), "{v}");
        }
        for v in ["007", "+33612345678", "9223372036854775808", "12345678901234567890123", "1_000", "", "-"] {
            assert!(plain_int(v).is_none(), "{v}");
        }
        for v in ["0.5", "-1.25", "3e8", ".5", "12.0"] {
            assert!(plain_real(v).is_some(), "{v}");
        }
        for v in ["00.5", "+1.5", "inf", "NaN", "12345678901234567890123", "1.2.3"] {
            assert!(plain_real(v).is_none(), "{v}");
        }
    }

    #[test]
    fn formats_are_checked() {
        assert!(check_format("%d/%m/%Y").is_ok());
        assert!(check_format("%Q").is_err());
        assert!(check_format("").is_err());
    }
}
