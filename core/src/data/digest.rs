//! Data versions: a table's version is its row count and the sum of a 128-bit hash of each
//! row (XXH3 over each value's kind and bytes) — so the order of the rows does not matter —
//! plus a hash of its columns (names, types, nullability, order). A store computes it by
//! reading the table ([`Digest::add_values`]), or — for rows it has just written, when it
//! knows it stored every value as given — from the rows themselves, hashed by the producer
//! on its own thread ([`Digest::add_row`]): the same value gives the same hash either way.

use xxhash_rust::xxh3::Xxh3;

use super::{Cell, Column};

/// A value as a store holds it (a boolean is held as the integer 0 or 1).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Stored<'a> {
    /// No value.
    Null,
    /// An integer.
    Int(i64),
    /// A float.
    Real(f64),
    /// Text, as UTF-8 bytes.
    Text(&'a [u8]),
    /// Bytes.
    Blob(&'a [u8]),
}

impl<'a> Stored<'a> {
    /// A cell as it would be held by a store that keeps its kind.
    pub fn of(cell: &'a Cell) -> Self {
        match cell {
            Cell::Null => Stored::Null,
            Cell::Int(i) => Stored::Int(*i),
            Cell::Real(r) => Stored::Real(*r),
            Cell::Text(t) => Stored::Text(t.as_bytes()),
            Cell::Bool(b) => Stored::Int(i64::from(*b)),
            Cell::Blob(b) => Stored::Blob(b),
        }
    }
}

fn hash_value(h: &mut Xxh3, v: Stored<'_>) {
    match v {
        Stored::Null => h.update(&[0]),
        Stored::Int(v) => {
            h.update(&[1]);
            h.update(&v.to_le_bytes());
        }
        Stored::Real(v) => {
            h.update(&[2]);
            h.update(&v.to_bits().to_le_bytes());
        }
        Stored::Text(t) => {
            h.update(&[3]);
            h.update(&(t.len() as u64).to_le_bytes());
            h.update(t);
        }
        Stored::Blob(b) => {
            h.update(&[4]);
            h.update(&(b.len() as u64).to_le_bytes());
            h.update(b);
        }
    }
}

/// The running digest of a set of rows.
#[derive(Clone, Default)]
pub struct Digest {
    count: u64,
    sum: u128,
    h: Xxh3,
}

impl std::fmt::Debug for Digest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Digest").field("count", &self.count).field("sum", &self.sum).finish()
    }
}

impl Digest {
    /// Adds a row of cells.
    pub fn add_row(&mut self, row: &[Cell]) {
        self.add_values(row.iter().map(Stored::of));
    }

    /// Adds a row of stored values.
    pub fn add_values<'a>(&mut self, values: impl IntoIterator<Item = Stored<'a>>) {
        self.start_row();
        for v in values {
            self.value(v);
        }
        self.end_row();
    }

    /// Starts a row whose values follow ([`value`](Self::value), then
    /// [`end_row`](Self::end_row)): for values read one at a time.
    pub fn start_row(&mut self) {
        self.h.reset();
    }

    /// A value of the row started.
    pub fn value(&mut self, v: Stored<'_>) {
        hash_value(&mut self.h, v);
    }

    /// Ends the row started, adding it.
    pub fn end_row(&mut self) {
        self.sum = self.sum.wrapping_add(self.h.digest128());
        self.count += 1;
    }

    /// Adds the rows another digest counted.
    pub fn merge(&mut self, other: &Digest) {
        self.sum = self.sum.wrapping_add(other.sum);
        self.count += other.count;
    }

    /// The rows counted.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The version of a table holding exactly these rows, with these columns.
    pub fn version(&self, columns: &[Column]) -> String {
        let mut schema = Xxh3::new();
        for c in columns {
            schema.update(c.name.as_bytes());
            schema.update(&[0]);
            schema.update(c.data_type.as_str().as_bytes());
            schema.update(&[u8::from(c.nullable)]);
        }
        let sum = self.sum.wrapping_add(schema.digest128());
        format!("{}r-{sum:032x}", self.count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::DataType;

    #[test]
    fn the_order_of_rows_does_not_matter_and_the_columns_do() {
        let rows = [vec![Cell::Int(1), Cell::Text("a".into())], vec![Cell::Null, Cell::Bool(true)]];
        let cols = [Column::new("id", DataType::Integer), Column::new("name", DataType::Text)];
        let (mut a, mut b) = (Digest::default(), Digest::default());
        rows.iter().for_each(|r| a.add_row(r));
        rows.iter().rev().for_each(|r| b.add_row(r));
        assert_eq!(a.version(&cols), b.version(&cols));
        assert!(a.version(&cols).starts_with("2r-"));
        let renamed = [Column::new("id", DataType::Integer), Column::new("label", DataType::Text)];
        assert_ne!(a.version(&cols), a.version(&renamed));
        // a boolean is the integer a store holds
        let mut c = Digest::default();
        c.add_values([Stored::Int(1), Stored::Text(b"a")]);
        c.add_values([Stored::Null, Stored::Int(1)]);
        assert_eq!(a.version(&cols), c.version(&cols));
    }
}
