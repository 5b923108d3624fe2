//! Writing rows into the warehouse, inside a write transaction: a replace through a staging
//! table, an append, a merge by key — each streaming its source's batches through prepared
//! statements — and what commits with them: the step's mark and an incremental state entry.

use phlo_core::data::batches::RowBatches;
use phlo_core::data::{Cell, Column, Committed, DataError, DataType, StepMark, quote_ident};
use rusqlite::{Connection, OptionalExtension};

use crate::{Bind, describe_in, sql_err, sql_type};

/// Writes the batches of `source` into `table` (replacing it through a staging table, or
/// appending to it) inside `tx`, one prepared statement reused for every row.
pub(crate) fn write_in(
    tx: &rusqlite::Transaction<'_>,
    table: &str,
    columns: &[Column],
    source: &mut dyn RowBatches,
    replace: bool,
) -> Result<(u64, Option<String>), DataError> {
    let target = quote_ident(table);
    let declared: Vec<String> = columns
        .iter()
        .map(|c| {
            format!("{} {}{}", quote_ident(&c.name), sql_type(c.data_type), if c.nullable { "" } else { " NOT NULL" })
        })
        .collect();
    let staging = if replace { quote_ident(&format!("__phlo_new_{table}")) } else { target.clone() };
    if replace {
        tx.execute_batch(&format!("DROP TABLE IF EXISTS {staging}; CREATE TABLE {staging} ({});", declared.join(", ")))
            .map_err(|e| sql_err(&format!("cannot create table `{table}`"), &e))?;
    } else {
        tx.execute_batch(&format!("CREATE TABLE IF NOT EXISTS {target} ({});", declared.join(", ")))
            .map_err(|e| sql_err(&format!("cannot create table `{table}`"), &e))?;
        let existing = describe_in(tx, table)?.unwrap_or_default();
        let names = |cols: &[Column]| {
            let mut v = cols.iter().map(|c| c.name.clone()).collect::<Vec<_>>();
            v.sort();
            v
        };
        // columns are matched by name: the same set, in any order
        if names(&existing) != names(columns) {
            let list = |cols: &[Column]| cols.iter().map(|c| c.name.as_str()).collect::<Vec<_>>().join(", ");
            return Err(DataError::new(format!(
                "cannot append to `{table}`: it has columns ({}), the rows have ({})",
                list(&existing),
                list(columns)
            )));
        }
    }
    let (n, as_given) = insert_many(tx, &staging, columns, source, &|i| format!("row {i} of `{table}`"))?;
    if replace {
        tx.execute_batch(&format!("DROP TABLE IF EXISTS {target}; ALTER TABLE {staging} RENAME TO {target};"))
            .map_err(|e| sql_err(&format!("cannot replace table `{table}`"), &e))?;
    }
    // the table holds exactly the rows the source hashed: its version without reading it
    let version = match (replace && as_given, source.digest()) {
        (true, Some(d)) if d.count() == n => describe_in(tx, table)?.map(|cols| d.version(&cols)),
        _ => None,
    };
    Ok((n, version))
}

/// Whether SQLite keeps `cell` as given in a column declared as `t` (its type affinity
/// converts nothing): then the value read back hashes as the cell does.
fn kept_as_given(cell: &Cell, t: DataType) -> bool {
    match (cell, t) {
        (Cell::Null | Cell::Blob(_), _) | (Cell::Text(_), DataType::Text) => true,
        (Cell::Int(_), DataType::Integer | DataType::Boolean | DataType::Date | DataType::Timestamp) => true,
        (Cell::Bool(_), DataType::Integer | DataType::Boolean) => true,
        (Cell::Real(r), DataType::Real) => !r.is_nan(),
        // NUMERIC affinity converts text only when it reads as a number
        (Cell::Text(v), DataType::Boolean | DataType::Date | DataType::Timestamp) => !numeric_literal(v),
        _ => false,
    }
}

/// Whether text is a well-formed integer or real literal (what NUMERIC affinity converts),
/// allowing surrounding spaces; conservative: `true` whenever in doubt.
pub(crate) fn numeric_literal(v: &str) -> bool {
    let b = v.trim_matches(|c: char| c.is_ascii_whitespace()).as_bytes();
    let mut i = usize::from(matches!(b.first(), Some(b'+' | b'-')));
    let digits = |i: &mut usize| {
        let start = *i;
        while b.get(*i).is_some_and(u8::is_ascii_digit) {
            *i += 1;
        }
        *i - start
    };
    let mut n = digits(&mut i);
    if b.get(i) == Some(&b'.') {
        i += 1;
        n += digits(&mut i);
    }
    if n == 0 {
        return false;
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        if digits(&mut i) == 0 {
            return false;
        }
    }
    i == b.len()
}

/// Rows per multi-row `INSERT`: fewer statement runs per row, within SQLite's limit on
/// parameters.
fn rows_per_insert(width: usize) -> usize {
    (32_000 / width.max(1)).clamp(1, 64)
}

/// Inserts `source`'s rows into `target` (quoted), several rows per statement; a statement
/// that fails is rolled back by SQLite and its rows are inserted one by one, so the error
/// names the row. Also says whether every value was kept as given ([`kept_as_given`]).
fn insert_many(
    tx: &rusqlite::Transaction<'_>,
    target: &str,
    columns: &[Column],
    source: &mut dyn RowBatches,
    what: &dyn Fn(u64) -> String,
) -> Result<(u64, bool), DataError> {
    let width = columns.len();
    let k = rows_per_insert(width);
    let names = columns.iter().map(|c| quote_ident(&c.name)).collect::<Vec<_>>().join(", ");
    let row = format!("({})", vec!["?"; width].join(", "));
    let prepare = |rows: usize| {
        tx.prepare(&format!("INSERT INTO {target} ({names}) VALUES {}", vec![row.as_str(); rows].join(", ")))
            .map_err(|e| sql_err(&format!("cannot insert into {target}"), &e))
    };
    let (mut many, mut one) = (prepare(k)?, prepare(1)?);
    let types: Vec<DataType> = columns.iter().map(|c| c.data_type).collect();
    let mut batch = Vec::new();
    let (mut n, mut as_given) = (0u64, true);
    while source.next_batch(&mut batch)? {
        for chunk in batch.chunks(k) {
            if chunk.len() == k {
                let mut p = 1;
                for row in chunk {
                    for (i, cell) in row.iter().enumerate() {
                        as_given &= types.get(i).is_some_and(|t| kept_as_given(cell, *t));
                        many.raw_bind_parameter(p, Bind(cell)).map_err(|e| sql_err(&what(n + 1), &e))?;
                        p += 1;
                    }
                }
                if many.raw_execute().is_ok() {
                    n += k as u64;
                    continue;
                }
            }
            for row in chunk {
                n += 1;
                for (i, cell) in row.iter().enumerate() {
                    as_given &= types.get(i).is_some_and(|t| kept_as_given(cell, *t));
                    one.raw_bind_parameter(i + 1, Bind(cell)).map_err(|e| sql_err(&what(n), &e))?;
                }
                one.raw_execute().map_err(|e| sql_err(&what(n), &e))?;
            }
        }
    }
    Ok((n, as_given))
}

/// Upserts `rows` into `table` by the `keys` columns: the table is created when missing,
/// columns the rows add are added, and a unique index on the keys is kept.
pub(crate) fn merge_in(
    tx: &rusqlite::Transaction<'_>,
    table: &str,
    columns: &[Column],
    source: &mut dyn RowBatches,
    keys: &[String],
) -> Result<u64, DataError> {
    let target = quote_ident(table);
    let mut batch = Vec::new();
    // no records: nothing to merge, whatever their columns would have been
    if !source.next_batch(&mut batch)? {
        return Ok(0);
    }
    let mut key_at = Vec::with_capacity(keys.len());
    for k in keys {
        let Some(i) = columns.iter().position(|c| &c.name == k) else {
            return Err(DataError::new(format!(
                "cannot merge into `{table}`: the records have no key column `{k}` (they have {})",
                columns.iter().map(|c| c.name.as_str()).collect::<Vec<_>>().join(", ")
            )));
        };
        key_at.push((i, k));
    }
    let declared: Vec<String> =
        columns.iter().map(|c| format!("{} {}", quote_ident(&c.name), sql_type(c.data_type))).collect();
    tx.execute_batch(&format!("CREATE TABLE IF NOT EXISTS {target} ({});", declared.join(", ")))
        .map_err(|e| sql_err(&format!("cannot create table `{table}`"), &e))?;
    let existing = describe_in(tx, table)?.unwrap_or_default();
    for c in columns.iter().filter(|c| !existing.iter().any(|e| e.name == c.name)) {
        tx.execute_batch(&format!(
            "ALTER TABLE {target} ADD COLUMN {} {};",
            quote_ident(&c.name),
            sql_type(c.data_type)
        ))
        .map_err(|e| sql_err(&format!("cannot add column `{}` to `{table}`", c.name), &e))?;
    }
    let key_list = keys.iter().map(|k| quote_ident(k)).collect::<Vec<_>>().join(", ");
    tx.execute_batch(&format!(
        "CREATE UNIQUE INDEX IF NOT EXISTS {} ON {target} ({key_list});",
        quote_ident(&format!("__phlo_key_{table}"))
    ))
    .map_err(|e| {
        sql_err(&format!("cannot merge into `{table}`: its rows are not unique by ({})", keys.join(", ")), &e)
    })?;
    let names = columns.iter().map(|c| quote_ident(&c.name)).collect::<Vec<_>>().join(", ");
    let placeholders = vec!["?"; columns.len()].join(", ");
    let updates: Vec<String> = columns
        .iter()
        .filter(|c| !keys.contains(&c.name))
        .map(|c| format!("{0} = excluded.{0}", quote_ident(&c.name)))
        .collect();
    let on_conflict =
        if updates.is_empty() { String::from("DO NOTHING") } else { format!("DO UPDATE SET {}", updates.join(", ")) };
    let mut stmt = tx
        .prepare(&format!(
            "INSERT INTO {target} ({names}) VALUES ({placeholders}) ON CONFLICT ({key_list}) {on_conflict}"
        ))
        .map_err(|e| sql_err(&format!("cannot merge into `{table}`"), &e))?;
    let mut n = 0u64;
    loop {
        for row in &batch {
            n += 1;
            if let Some((_, k)) = key_at.iter().find(|(i, _)| matches!(row.get(*i), None | Some(Cell::Null))) {
                return Err(DataError::new(format!("cannot merge into `{table}`: record {n} has no `{k}`")));
            }
            let what = || format!("record {n} of `{table}`");
            for (i, cell) in row.iter().enumerate() {
                stmt.raw_bind_parameter(i + 1, Bind(cell)).map_err(|e| sql_err(&what(), &e))?;
            }
            stmt.raw_execute().map_err(|e| sql_err(&what(), &e))?;
        }
        if !source.next_batch(&mut batch)? {
            return Ok(n);
        }
    }
}

/// Where incremental state lives, next to the data it describes.
pub(crate) const STATE_TABLE: &str = "_phlo_state";

pub(crate) fn set_state_in(tx: &rusqlite::Transaction<'_>, key: &str, value: &str) -> Result<(), DataError> {
    tx.execute_batch(&format!(
        "CREATE TABLE IF NOT EXISTS {STATE_TABLE} (key TEXT PRIMARY KEY, value TEXT NOT NULL, updated_at TEXT NOT NULL);"
    ))
    .map_err(|e| sql_err("cannot create the state table", &e))?;
    tx.execute(
        &format!(
            "INSERT INTO {STATE_TABLE} (key, value, updated_at) VALUES (?1, ?2, ?3)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at"
        ),
        rusqlite::params![key, value, chrono::Utc::now().to_rfc3339()],
    )
    .map_err(|e| sql_err("cannot write the state", &e))?;
    Ok(())
}

/// Where the warehouse records the run steps whose writes it committed (see [`StepMark`]).
const STEPS_TABLE: &str = "_phlo_steps";

/// The step's committed write, if any (the table may not exist yet).
pub(crate) fn committed_in(conn: &Connection, step: &StepMark) -> Result<Option<Committed>, DataError> {
    if describe_in(conn, STEPS_TABLE)?.is_none() {
        return Ok(None);
    }
    conn.query_row(
        &format!(
            "SELECT attempt, rows, committed_at FROM {STEPS_TABLE} WHERE run_id = ?1 AND asset = ?2 AND partition = ?3"
        ),
        rusqlite::params![step.run_id, step.asset, step.partition.as_deref().unwrap_or("")],
        |r| {
            Ok(Committed {
                attempt: r.get::<_, i64>(0)?.max(0) as u32,
                rows: r.get::<_, i64>(1)?.max(0) as u64,
                at: r.get(2)?,
            })
        },
    )
    .optional()
    .map_err(|e| sql_err("cannot read the committed steps", &e))
}

/// Records that `step` wrote `rows`, inside the write's transaction.
pub(crate) fn mark_in(tx: &rusqlite::Transaction<'_>, step: &StepMark, rows: u64) -> Result<(), DataError> {
    tx.execute_batch(&format!(
        "CREATE TABLE IF NOT EXISTS {STEPS_TABLE} (run_id TEXT NOT NULL, asset TEXT NOT NULL, partition TEXT NOT NULL,
           attempt INTEGER NOT NULL, rows INTEGER NOT NULL, committed_at TEXT NOT NULL,
           PRIMARY KEY (run_id, asset, partition)) WITHOUT ROWID;"
    ))
    .map_err(|e| sql_err("cannot create the committed steps table", &e))?;
    tx.execute(
        &format!("INSERT INTO {STEPS_TABLE} (run_id, asset, partition, attempt, rows, committed_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)"),
        rusqlite::params![
            step.run_id,
            step.asset,
            step.partition.as_deref().unwrap_or(""),
            step.attempt,
            i64::try_from(rows).unwrap_or(i64::MAX),
            chrono::Utc::now().to_rfc3339()
        ],
    )
    .map_err(|e| sql_err("cannot record the committed step", &e))?;
    Ok(())
}
