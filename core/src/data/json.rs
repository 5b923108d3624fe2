//! JSON records as typed rows: a column's type is decided by all its values, and no value
//! loses a digit. Records in memory ([`rows_from_json`]) or streaming, typed as they pass
//! ([`JsonTyping`]); JSON Lines are typed and converted straight from their bytes, without
//! building a JSON value per record.

use super::{Cell, Column, DataType, Rows};

/// JSON records (objects) as typed rows: columns in the order their fields first appear, a
/// field missing from a record is null. A column's type is decided by all its values, and no
/// value loses a digit: `integer` when every number is a 64-bit integer; `real` when numbers
/// mix and every one is exact as a double (an integer beyond 2^53 is not); `boolean` when all
/// are booleans; otherwise `text`, numbers kept as written (`18446744073709551615`), arrays
/// and objects as their JSON.
pub fn rows_from_json(records: &[serde_json::Map<String, serde_json::Value>]) -> Rows {
    let mut typing = JsonTyping::default();
    for r in records {
        typing.see(r);
    }
    let columns = typing.columns();
    let rows = records
        .iter()
        .map(|r| {
            let mut row = Vec::with_capacity(typing.names.len());
            typing.row(r, &mut row);
            row
        })
        .collect();
    Rows { columns, rows }
}

/// A JSON value as a cell of a column of type `t`.
fn json_cell(v: Option<serde_json::Value>, t: DataType) -> Cell {
    use serde_json::Value;
    match (v, t) {
        (None | Some(Value::Null), _) => Cell::Null,
        (Some(Value::Bool(b)), DataType::Boolean) => Cell::Bool(b),
        (Some(Value::Number(x)), DataType::Integer) => x.as_i64().map_or(Cell::Null, Cell::Int),
        (Some(Value::Number(x)), DataType::Real) => x.as_f64().map_or(Cell::Null, Cell::Real),
        (Some(Value::String(s)), _) => Cell::Text(s),
        (Some(v), _) => Cell::Text(v.to_string()),
    }
}

/// A JSON value as a cell that keeps what [`settle`] needs to give the cell [`json_cell`]
/// would give once its column's type is known (records held before they are all seen).
pub fn provisional(v: serde_json::Value) -> Cell {
    use serde_json::Value;
    match v {
        Value::Null => Cell::Null,
        Value::Bool(b) => Cell::Bool(b),
        Value::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => Cell::Int(i),
            // beyond 64 signed bits: its column is text, and this its digits
            (None, Some(u), _) => Cell::Text(u.to_string()),
            (None, None, Some(f)) => Cell::Real(f),
            _ => Cell::Text(n.to_string()),
        },
        Value::String(s) => Cell::Text(s),
        other => Cell::Text(other.to_string()),
    }
}

/// A [`provisional`] cell in a column of type `t`: exactly the cell [`json_cell`] gives.
pub fn settle(cell: Cell, t: DataType) -> Cell {
    match (cell, t) {
        #[expect(clippy::cast_precision_loss, reason = "a real column holds only integers a double keeps exactly")]
        (Cell::Int(i), DataType::Real) => Cell::Real(i as f64),
        (Cell::Int(i), DataType::Text) => Cell::Text(i.to_string()),
        (Cell::Real(f), DataType::Text) => {
            Cell::Text(serde_json::Number::from_f64(f).map_or_else(|| f.to_string(), |n| n.to_string()))
        }
        (Cell::Bool(b), DataType::Text) => Cell::Text(b.to_string()),
        (cell, _) => cell,
    }
}

/// What the values of one JSON field have been so far.
#[derive(Debug, Clone, Copy, Default)]
struct JsonSeen {
    ints: u64,
    reals: u64,
    bools: u64,
    other: u64,
    inexact: bool,
}

/// The typing of [`rows_from_json`], one record at a time, for records that stream (a JSON
/// Lines file read twice: once to [`see`](Self::see) every record, once to convert each with
/// [`row`](Self::row)).
#[derive(Debug, Clone, Default)]
pub struct JsonTyping {
    names: Vec<String>,
    index: rustc_hash::FxHashMap<String, usize>,
    seen: Vec<JsonSeen>,
    types: Vec<DataType>,
}

impl JsonTyping {
    /// Takes a record's fields and values into account.
    pub fn see(&mut self, record: &serde_json::Map<String, serde_json::Value>) {
        use serde_json::Value;
        let exact = |x: &serde_json::Number| match (x.as_i64(), x.as_f64()) {
            (Some(i), _) => i.unsigned_abs() <= 1 << 53,
            (None, Some(_)) => x.is_f64(),
            _ => false,
        };
        for (k, v) in record {
            let i = self.column_of(k);
            let s = &mut self.seen[i];
            match v {
                Value::Null => {}
                Value::Bool(_) => s.bools += 1,
                Value::Number(x) if x.is_i64() => {
                    s.ints += 1;
                    s.inexact |= !exact(x);
                }
                Value::Number(x) => {
                    s.reals += 1;
                    s.inexact |= !exact(x);
                }
                _ => s.other += 1,
            }
        }
        self.types.clear();
    }

    /// Takes in what another typing saw, as if its records came after this one's.
    pub fn merge(&mut self, other: &JsonTyping) {
        for (name, seen) in other.names.iter().zip(&other.seen) {
            let i = self.column_of(name);
            let s = &mut self.seen[i];
            s.ints += seen.ints;
            s.reals += seen.reals;
            s.bools += seen.bools;
            s.other += seen.other;
            s.inexact |= seen.inexact;
        }
        self.types.clear();
    }

    /// How many fields were seen.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// Whether no field was seen.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// The fields seen, in first-seen order.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// The column of a field seen, by its name.
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.index.get(name).copied()
    }

    /// The columns: fields in first-seen order, typed by every value seen.
    pub fn columns(&mut self) -> Vec<Column> {
        self.decide();
        self.names.iter().zip(&self.types).map(|(n, t)| Column::new(n.clone(), *t)).collect()
    }

    fn decide(&mut self) {
        if self.types.len() == self.names.len() {
            return;
        }
        self.types = self
            .seen
            .iter()
            .map(|s| match (s.ints, s.reals, s.bools, s.other) {
                (0, 0, 0, 0) => DataType::Text,
                (_, 0, 0, 0) => DataType::Integer,
                (_, _, 0, 0) if !s.inexact => DataType::Real,
                (0, 0, _, 0) => DataType::Boolean,
                _ => DataType::Text,
            })
            .collect();
    }

    /// A record as a row of the columns (a field it lacks is null), into `out`; call
    /// [`columns`](Self::columns) first.
    pub fn row(&self, record: &serde_json::Map<String, serde_json::Value>, out: &mut Vec<Cell>) {
        out.clear();
        for (n, t) in self.names.iter().zip(&self.types) {
            out.push(json_cell(record.get(n).cloned(), *t));
        }
    }
}

/// A JSON Lines line that is not an object: `NotObject`; malformed JSON: `Json`.
#[derive(Debug)]
pub enum LineError {
    /// The line is valid JSON but not an object.
    NotObject,
    /// The line is not JSON (serde's message, with its column).
    Json(serde_json::Error),
}

/// Whether a line's first non-blank byte opens an object.
fn opens_object(line: &[u8]) -> bool {
    line.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{')
}

fn parse_line<'de, T: serde::de::DeserializeSeed<'de>>(line: &'de [u8], seed: T) -> Result<T::Value, LineError> {
    if !opens_object(line) {
        // valid JSON of another kind, or not JSON at all: say which
        return match serde_json::from_slice::<serde::de::IgnoredAny>(line) {
            Ok(_) => Err(LineError::NotObject),
            Err(e) => Err(LineError::Json(e)),
        };
    }
    let mut de = serde_json::Deserializer::from_slice(line);
    let value = seed.deserialize(&mut de).map_err(LineError::Json)?;
    de.end().map_err(LineError::Json)?;
    Ok(value)
}

/// What one value is, for typing, without keeping it.
struct Kind<'a>(&'a mut JsonSeen);

impl<'de> serde::de::DeserializeSeed<'de> for Kind<'_> {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for Kind<'_> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        self.0.bools += 1;
        Ok(())
    }
    fn visit_i64<E>(self, v: i64) -> Result<(), E> {
        self.0.ints += 1;
        self.0.inexact |= v.unsigned_abs() > 1 << 53;
        Ok(())
    }
    fn visit_u64<E>(self, v: u64) -> Result<(), E> {
        // beyond i64: an integer a 64-bit column cannot hold (serde_json's `is_i64` is false)
        if v <= i64::MAX.unsigned_abs() {
            self.0.ints += 1;
            self.0.inexact |= v > 1 << 53;
            Ok(())
        } else {
            self.0.reals += 1;
            self.0.inexact = true;
            Ok(())
        }
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        self.0.reals += 1;
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        self.0.other += 1;
        Ok(())
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
        self.0.other += 1;
        Ok(())
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while map.next_entry::<serde::de::IgnoredAny, serde::de::IgnoredAny>()?.is_some() {}
        self.0.other += 1;
        Ok(())
    }
}

/// A record's fields, seen into a typing.
struct See<'a>(&'a mut JsonTyping);

impl<'de> serde::de::DeserializeSeed<'de> for See<'_> {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> serde::de::Visitor<'de> for See<'_> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON object")
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let t = self.0;
        let mut at = 0;
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            // records mostly repeat one order of fields: the field at this place is first guess
            let i = match t.names.get(at) {
                Some(n) if *n == *key => at,
                _ => t.column_of(&key),
            };
            at += 1;
            map.next_value_seed(Kind(&mut t.seen[i]))?;
        }
        t.types.clear();
        Ok(())
    }
}

/// One value as a cell of a column of a type, converted as [`json_cell`] converts it, without
/// building a JSON value (except for arrays and objects, kept as their JSON text).
struct CellSeed(DataType);

impl<'de> serde::de::DeserializeSeed<'de> for CellSeed {
    type Value = Cell;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Cell, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for CellSeed {
    type Value = Cell;
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_unit<E>(self) -> Result<Cell, E> {
        Ok(Cell::Null)
    }
    fn visit_bool<E>(self, v: bool) -> Result<Cell, E> {
        Ok(match self.0 {
            DataType::Boolean => Cell::Bool(v),
            _ => Cell::Text(v.to_string()),
        })
    }
    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Cell, E> {
        Ok(match self.0 {
            DataType::Integer => Cell::Int(v),
            #[expect(clippy::cast_precision_loss, reason = "a real column holds only integers a double keeps exactly")]
            DataType::Real => Cell::Real(v as f64),
            _ => Cell::Text(v.to_string()),
        })
    }
    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Cell, E> {
        match i64::try_from(v) {
            Ok(i) => self.visit_i64(i),
            Err(_) => Ok(json_cell(Some(serde_json::Value::from(v)), self.0)),
        }
    }
    fn visit_f64<E>(self, v: f64) -> Result<Cell, E> {
        Ok(json_cell(serde_json::Number::from_f64(v).map(serde_json::Value::Number), self.0))
    }
    fn visit_str<E>(self, v: &str) -> Result<Cell, E> {
        Ok(Cell::Text(v.to_string()))
    }
    fn visit_string<E>(self, v: String) -> Result<Cell, E> {
        Ok(Cell::Text(v))
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, seq: A) -> Result<Cell, A::Error> {
        let v: serde_json::Value = serde::Deserialize::deserialize(serde::de::value::SeqAccessDeserializer::new(seq))?;
        Ok(json_cell(Some(v), self.0))
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<Cell, A::Error> {
        let v: serde_json::Value = serde::Deserialize::deserialize(serde::de::value::MapAccessDeserializer::new(map))?;
        Ok(json_cell(Some(v), self.0))
    }
}

/// A record's fields, converted into a row of known columns.
struct Fill<'a> {
    typing: &'a JsonTyping,
    row: &'a mut Vec<Cell>,
}

impl<'de> serde::de::DeserializeSeed<'de> for Fill<'_> {
    type Value = bool;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> serde::de::Visitor<'de> for Fill<'_> {
    type Value = bool;
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON object")
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<bool, A::Error> {
        let mut known = true;
        let mut at = 0;
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            let t = self.typing;
            let found = match t.names.get(at) {
                Some(n) if *n == *key => Some(at),
                _ => t.index.get(key.as_ref()).copied(),
            };
            at += 1;
            match found {
                Some(i) => {
                    self.row[i] = map.next_value_seed(CellSeed(t.types[i]))?;
                }
                None => {
                    map.next_value::<serde::de::IgnoredAny>()?;
                    known = false;
                }
            }
        }
        Ok(known)
    }
}

impl JsonTyping {
    /// The column of a field, added when new.
    fn column_of(&mut self, name: &str) -> usize {
        if let Some(&i) = self.index.get(name) {
            return i;
        }
        self.index.insert(name.to_string(), self.names.len());
        self.names.push(name.to_string());
        self.seen.push(JsonSeen::default());
        self.names.len() - 1
    }

    /// [`see`](Self::see) for a JSON Lines line, read straight from its bytes.
    ///
    /// # Errors
    /// The line is not a JSON object.
    pub fn see_line(&mut self, line: &[u8]) -> Result<(), LineError> {
        parse_line(line, See(self))
    }

    /// [`row`](Self::row) for a JSON Lines line, read straight from its bytes; `Ok(false)`
    /// when it has a field that is not a column. Call [`columns`](Self::columns) first.
    ///
    /// # Errors
    /// The line is not a JSON object.
    pub fn row_line(&self, line: &[u8], out: &mut Vec<Cell>) -> Result<bool, LineError> {
        out.clear();
        out.resize(self.names.len(), Cell::Null);
        parse_line(line, Fill { typing: self, row: out })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_typed_and_converted_as_records_are() {
        let lines = [
            r#"{"id": 1, "big": 18446744073709551615, "v": 1.5, "ok": true, "tags": ["a"], "name": "a\"b"}"#,
            r#"{"id": 9007199254740993, "v": 2, "ok": null, "extra": {"k": 1}, "name": null}"#,
            r#"{"id": -3, "big": 1, "v": 1e300, "ok": false, "name": "é"}"#,
        ];
        let records: Vec<serde_json::Map<String, serde_json::Value>> =
            lines.iter().map(|l| serde_json::from_str(l).unwrap()).collect();
        let expected = rows_from_json(&records);
        let mut typing = JsonTyping::default();
        for l in lines {
            typing.see_line(l.as_bytes()).unwrap();
        }
        // the same columns and values; a line's columns come in the file's order (a parsed
        // record's in its map's)
        let columns = typing.columns();
        assert_eq!(
            columns.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(),
            ["id", "big", "v", "ok", "tags", "name", "extra"]
        );
        let by_name = |cols: &[Column], row: &[Cell]| -> std::collections::BTreeMap<String, (DataType, Cell)> {
            cols.iter().zip(row).map(|(c, v)| (c.name.clone(), (c.data_type, v.clone()))).collect()
        };
        let mut row = Vec::new();
        for (l, want) in lines.iter().zip(&expected.rows) {
            assert!(typing.row_line(l.as_bytes(), &mut row).unwrap());
            assert_eq!(by_name(&columns, &row), by_name(&expected.columns, want));
        }
        assert!(matches!(typing.see_line(b"[1, 2]"), Err(LineError::NotObject)));
        assert!(matches!(typing.see_line(b"{\"a\": }"), Err(LineError::Json(_))));
        assert!(matches!(typing.see_line(b"{\"a\": 1} x"), Err(LineError::Json(_))));
        assert!(!typing.row_line(br#"{"new": 1}"#, &mut row).unwrap());
        // provisional cells settle into the cells a record would give
        let types: Vec<DataType> = expected.columns.iter().map(|c| c.data_type).collect();
        for (record, want) in records.iter().zip(&expected.rows) {
            for ((c, t), w) in expected.columns.iter().zip(&types).zip(want) {
                let got = record.get(&c.name).cloned().map_or(Cell::Null, |v| settle(provisional(v), *t));
                assert_eq!(&got, w, "{}", c.name);
            }
        }
    }
}
