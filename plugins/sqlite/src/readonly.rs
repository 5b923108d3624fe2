//! SQL that phlo runs for checks, exports and a model's SELECT may only read: an authorizer
//! refuses what would write, attach, copy or load, naming it, and a statement SQLite marks
//! as writing (VACUUM, which the authorizer is not asked about) is refused before it runs.

use std::sync::{Mutex, PoisonError};

use phlo_core::data::DataError;
use rusqlite::Connection;

use super::err;

/// Pragmas that only read (a table's columns, its indexes, settings read without a value).
const READ_PRAGMAS: &[&str] = &[
    "table_info",
    "table_xinfo",
    "table_list",
    "index_list",
    "index_info",
    "index_xinfo",
    "foreign_key_list",
    "collation_list",
    "function_list",
    "module_list",
    "pragma_list",
    "database_list",
];

/// Pragmas that read a setting when given no value (with one, they set it).
const SETTING_PRAGMAS: &[&str] = &[
    "journal_mode",
    "user_version",
    "application_id",
    "page_size",
    "page_count",
    "freelist_count",
    "encoding",
    "foreign_keys",
    "synchronous",
    "busy_timeout",
    "schema_version",
    "data_version",
    "compile_options",
    "integrity_check",
    "quick_check",
];

/// Runs `f` with an authorizer on the connection that lets statements only read: SELECT,
/// reading columns, functions (not `load_extension`), recursive CTEs and read-only pragmas.
/// Anything else — ATTACH, VACUUM INTO, DML, DDL, transactions, pragma writes — is refused
/// when the statement is prepared, naming what was refused. Checks, exports and a model's
/// SELECT go through here: SQL phlo runs for them cannot change or copy anything.
pub(crate) fn read_only<T>(
    conn: &mut Connection,
    f: impl FnOnce(&mut Connection) -> Result<T, DataError>,
) -> Result<T, DataError> {
    use rusqlite::hooks::{AuthAction, Authorization};
    let refused: std::sync::Arc<Mutex<Option<String>>> = std::sync::Arc::default();
    let seen = std::sync::Arc::clone(&refused);
    conn.authorizer(Some(move |ctx: rusqlite::hooks::AuthContext<'_>| {
        let why = match ctx.action {
            AuthAction::Select | AuthAction::Read { .. } | AuthAction::Recursive => return Authorization::Allow,
            AuthAction::Function { function_name } if !function_name.eq_ignore_ascii_case("load_extension") => {
                return Authorization::Allow;
            }
            AuthAction::Pragma { pragma_name, pragma_value }
                if READ_PRAGMAS.iter().any(|p| p.eq_ignore_ascii_case(pragma_name))
                    || (pragma_value.is_none()
                        && SETTING_PRAGMAS.iter().any(|p| p.eq_ignore_ascii_case(pragma_name))) =>
            {
                return Authorization::Allow;
            }
            AuthAction::Function { function_name } => format!("the function `{function_name}`"),
            AuthAction::Attach { filename } => format!("ATTACH of `{filename}`"),
            AuthAction::Detach { .. } => String::from("DETACH"),
            AuthAction::Insert { table_name } => format!("INSERT into `{table_name}`"),
            AuthAction::Update { table_name, .. } => format!("UPDATE of `{table_name}`"),
            AuthAction::Delete { table_name } => format!("DELETE from `{table_name}`"),
            AuthAction::Pragma { pragma_name, .. } => format!("PRAGMA {pragma_name}"),
            AuthAction::Transaction { .. } | AuthAction::Savepoint { .. } => String::from("a transaction"),
            other => format!("{other:?}"),
        };
        let mut slot = seen.lock().unwrap_or_else(PoisonError::into_inner);
        slot.get_or_insert(why);
        Authorization::Deny
    }))
    .map_err(|e| err("cannot watch the statement", e))?;
    let out = f(conn);
    let reset = conn.authorizer(None::<fn(rusqlite::hooks::AuthContext<'_>) -> Authorization>);
    if let Err(e) = reset {
        return Err(err("cannot stop watching the statement", e));
    }
    match (out, refused.lock().unwrap_or_else(PoisonError::into_inner).take()) {
        (Err(_), Some(what)) => Err(DataError::new(format!(
            "{what} is refused: SQL that phlo runs for a check, an export or a model may only read \
             (one SELECT); a model writes its own table and nothing else"
        ))),
        (out, _) => out,
    }
}

/// SQL that changes the database (VACUUM, which the authorizer is not asked about, included)
/// is refused before it runs.
pub(crate) fn refuse_writes(stmt: &rusqlite::Statement<'_>) -> Result<(), DataError> {
    if stmt.readonly() {
        Ok(())
    } else {
        Err(DataError::new(
            "the statement writes, and is refused: SQL that phlo runs for a check, an export or a model may only \
             read (one SELECT); a model writes its own table and nothing else",
        ))
    }
}
