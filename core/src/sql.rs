//! Understanding SQL before it runs — a model's, an export's, a check's query: one statement
//! that reads rows, parsed with `sqlparser`'s SQLite dialect; the tables it reads, with their
//! positions, so that phlo can infer dependencies and report unknown tables where they are
//! written; the columns it returns and names. Asset types and check kinds share it.
//!
//! ```
//! let tables = phlo_core::sql::tables_read("WITH r AS (SELECT * FROM raw_orders) SELECT * FROM r", "sql").unwrap();
//! assert_eq!(tables.iter().map(|t| t.name.as_str()).collect::<Vec<_>>(), ["raw_orders"]);
//! ```

use std::collections::HashSet;
use std::ops::ControlFlow;

use crate::plugin::PluginError;
use crate::spec::partition::PLACEHOLDERS;
use crate::spec::{ColumnRefs, Columns, TableRef};
use sqlparser::ast::{Expr, ObjectNamePart, Query, SelectItem, SetExpr, Statement, TableFactor, Visit, Visitor};
use sqlparser::dialect::SQLiteDialect;
use sqlparser::parser::{Parser, ParserError};

/// Before parsing, each placeholder a model may use is replaced by a number of the same
/// length, which reads as a literal inside quotes and outside, and keeps every position.
fn neutral(sql: &str) -> String {
    PLACEHOLDERS.iter().fold(sql.to_string(), |s, p| s.replace(p, &"1".repeat(p.len())))
}

/// Collects the tables a statement reads (not the names of its CTEs, not table-valued
/// functions such as `json_each(…)`).
struct Reads {
    tables: Vec<TableRef>,
    /// The CTE names in scope: one set per enclosing query (a CTE name shadows a table only
    /// inside the query that defines it).
    ctes: Vec<HashSet<String>>,
    /// How many queries (subqueries and CTEs included).
    queries: usize,
    /// Whether every `FROM` item is a plain table.
    plain: bool,
    columns: ColumnRefs,
}

impl Default for Reads {
    fn default() -> Self {
        Self { tables: Vec::new(), ctes: Vec::new(), queries: 0, plain: true, columns: ColumnRefs::default() }
    }
}

/// Names that read as columns but are SQLite's own.
const BUILTIN_NAMES: &[&str] =
    &["rowid", "oid", "_rowid_", "current_date", "current_time", "current_timestamp", "true", "false", "null"];

impl Visitor for Reads {
    type Break = ();

    fn pre_visit_expr(&mut self, expr: &Expr) -> ControlFlow<()> {
        let at = |i: &sqlparser::ast::Ident| {
            (u32::try_from(i.span.start.line).unwrap_or(0), u32::try_from(i.span.start.column).unwrap_or(0))
        };
        match expr {
            Expr::Identifier(i) if !BUILTIN_NAMES.contains(&i.value.to_lowercase().as_str()) => {
                let (l, c) = at(i);
                self.columns.refs.push((None, i.value.clone(), l, c));
            }
            Expr::CompoundIdentifier(parts) if parts.len() == 2 => {
                let (l, c) = at(&parts[1]);
                self.columns.refs.push((Some(parts[0].value.clone()), parts[1].value.clone(), l, c));
            }
            _ => {}
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_query(&mut self, query: &Query) -> ControlFlow<()> {
        self.queries += 1;
        let names = query.with.iter().flat_map(|w| &w.cte_tables).map(|c| c.alias.name.value.to_lowercase()).collect();
        self.ctes.push(names);
        ControlFlow::Continue(())
    }

    fn post_visit_query(&mut self, _: &Query) -> ControlFlow<()> {
        self.ctes.pop();
        ControlFlow::Continue(())
    }

    fn pre_visit_table_factor(&mut self, factor: &TableFactor) -> ControlFlow<()> {
        match factor {
            TableFactor::Table { name, args: None, alias, .. } => {
                let table = name.to_string();
                let shown = alias.as_ref().map_or_else(|| table.clone(), |a| a.name.value.clone());
                self.columns.tables.push((shown, table));
            }
            _ => self.plain = false,
        }
        if let TableFactor::Table { name, args: None, .. } = factor {
            let idents: Vec<_> = name
                .0
                .iter()
                .filter_map(|p| match p {
                    ObjectNamePart::Identifier(i) => Some(i),
                    ObjectNamePart::Function(_) => None,
                })
                .collect();
            if let Some(first) = idents.first() {
                let start = first.span.start;
                let name = idents.iter().map(|i| i.value.as_str()).collect::<Vec<_>>().join(".");
                let lower = name.to_lowercase();
                // a CTE of an enclosing query, or SQLite's own tables: not a table of the project
                let cte = idents.len() == 1 && self.ctes.iter().any(|scope| scope.contains(&lower));
                let system = idents.last().is_some_and(|t| {
                    let t = t.value.to_lowercase();
                    t.starts_with("sqlite_") || t.starts_with("pragma_")
                });
                if !cte && !system {
                    self.tables.push(TableRef {
                        name,
                        line: u32::try_from(start.line).unwrap_or(0),
                        column: u32::try_from(start.column).unwrap_or(0),
                    });
                }
            }
        }
        ControlFlow::Continue(())
    }
}

/// The columns a query returns, when its SELECT list names them all (`a`, `t.a`, `x AS a`),
/// or `*` over one table.
fn output_columns(body: &SetExpr) -> Columns {
    let select = match body {
        SetExpr::Select(s) => s,
        SetExpr::Query(q) => return output_columns(&q.body),
        SetExpr::SetOperation { left, .. } => return output_columns(left),
        _ => return Columns::Unknown,
    };
    let mut names = Vec::new();
    let mut all_of: Option<String> = None;
    for item in &select.projection {
        match item {
            SelectItem::UnnamedExpr(Expr::Identifier(i)) => names.push(i.value.clone()),
            SelectItem::UnnamedExpr(Expr::CompoundIdentifier(parts)) => match parts.last() {
                Some(i) => names.push(i.value.clone()),
                None => return Columns::Unknown,
            },
            SelectItem::ExprWithAlias { alias, .. } => names.push(alias.value.clone()),
            SelectItem::Wildcard(_) if all_of.is_none() && names.is_empty() => match select.from.as_slice() {
                [one] if one.joins.is_empty() => match &one.relation {
                    TableFactor::Table { name, args: None, .. } => all_of = Some(name.to_string()),
                    _ => return Columns::Unknown,
                },
                _ => return Columns::Unknown,
            },
            _ => return Columns::Unknown,
        }
    }
    match all_of {
        Some(t) => Columns::AllOf(t, names),
        None => Columns::Known(names),
    }
}

/// Parses `sql` (the value of config key `field`) as one statement that returns rows, and
/// returns the tables it reads.
///
/// # Errors
/// A syntax error (at its line and column inside the SQL), several statements, or a statement
/// that does not return rows.
pub fn tables_read(sql: &str, field: &str) -> Result<Vec<TableRef>, PluginError> {
    analyze(sql, field).map(|(tables, _)| tables)
}

/// As [`tables_read`], with the columns the query returns.
///
/// # Errors
/// As [`tables_read`].
pub fn analyze(sql: &str, field: &str) -> Result<(Vec<TableRef>, Columns), PluginError> {
    analyze_all(sql, field).map(|(t, c, _)| (t, c))
}

/// As [`analyze`], with the columns the SQL names when they can be resolved (one SELECT over
/// plain tables).
///
/// # Errors
/// As [`tables_read`].
pub fn analyze_all(sql: &str, field: &str) -> Result<(Vec<TableRef>, Columns, Option<ColumnRefs>), PluginError> {
    let text = neutral(sql);
    let statements = Parser::parse_sql(&SQLiteDialect {}, &text).map_err(|e| {
        let message = match e {
            ParserError::TokenizerError(m) | ParserError::ParserError(m) => m,
            ParserError::RecursionLimitExceeded => String::from("the SQL nests too deeply"),
        };
        let (message, at) = crate::diagnostic::split_position(&message);
        let position = at.map(|(l, c)| format!(" (line {l}, column {c} of the SQL)")).unwrap_or_default();
        PluginError::invalid_at(
            field,
            at,
            format!("the SQL is not valid: {message}{position}"),
            "fix the SQL; if your engine accepts it, say `analyze: false` to skip phlo's reading of it (then list \
             its `deps:` yourself)",
        )
    })?;
    match statements.as_slice() {
        [] => Err(PluginError::invalid(field, format!("`{field}` holds no statement"), "write one SELECT")),
        [Statement::Query(q)] if !matches!(*q.body, SetExpr::Insert(_) | SetExpr::Update(_) | SetExpr::Delete(_)) => {
            let mut reads = Reads::default();
            let _ = statements.visit(&mut reads);
            let columns = output_columns(&q.body);
            let refs = (reads.queries == 1 && reads.plain && !reads.columns.tables.is_empty()).then(|| {
                let mut refs = reads.columns;
                if let SetExpr::Select(select) = &*q.body {
                    refs.aliases = select
                        .projection
                        .iter()
                        .filter_map(|i| match i {
                            SelectItem::ExprWithAlias { alias, .. } => Some(alias.value.clone()),
                            _ => None,
                        })
                        .collect();
                }
                refs
            });
            Ok((reads.tables, columns, refs))
        }
        [_] => Err(PluginError::invalid(
            field,
            format!("`{field}` is not a query: it must be one SELECT (or WITH … SELECT, VALUES) that reads rows"),
            "write the SELECT whose rows become the table",
        )),
        _ => Err(PluginError::invalid(
            field,
            format!("`{field}` holds {} statements; it must be one SELECT", statements.len()),
            "keep one SELECT (a `;` inside a `--` comment or a string is fine)",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(sql: &str) -> Vec<String> {
        tables_read(sql, "sql").unwrap_or_else(|e| panic!("{sql}: {e}")).into_iter().map(|t| t.name).collect()
    }

    #[test]
    fn the_tables_a_query_reads() {
        assert_eq!(names("SELECT * FROM raw_orders"), ["raw_orders"]);
        assert_eq!(
            names(
                "SELECT o.id FROM raw_orders o JOIN raw_customers c ON c.id = o.customer_id WHERE o.id IN (SELECT id FROM flagged)"
            ),
            ["raw_orders", "raw_customers", "flagged"]
        );
        assert_eq!(
            names("WITH recent AS (SELECT * FROM raw_orders WHERE day > '2024-01-01') SELECT count(*) FROM recent"),
            ["raw_orders"]
        );
        assert_eq!(names("SELECT value FROM raw_events, json_each(raw_events.payload)"), ["raw_events"]);
        assert_eq!(names("SELECT * FROM main.raw_orders"), ["main.raw_orders"]);
        assert_eq!(names("SELECT 1 AS x"), Vec::<String>::new());
        assert_eq!(names("SELECT * FROM t WHERE day = '{partition}' -- the day\n"), ["t"]);
        // a CTE shadows a table only inside the query that defines it
        assert_eq!(
            names("SELECT * FROM a JOIN (WITH a AS (SELECT 1 AS x) SELECT x FROM a) s ON 1"),
            ["a"],
            "the outer `a` is the table"
        );
        assert_eq!(names("WITH a AS (SELECT 1) SELECT * FROM (SELECT * FROM a)"), Vec::<String>::new());
        // SQLite's own tables are neither dependencies nor unknown tables
        assert_eq!(
            names("SELECT name FROM sqlite_master UNION SELECT name FROM main.sqlite_schema"),
            Vec::<String>::new()
        );
    }

    #[test]
    fn the_columns_a_query_returns() {
        let cols = |sql: &str| analyze(sql, "sql").unwrap().1;
        let known = |c: &[&str]| Columns::Known(c.iter().map(|s| (*s).to_string()).collect());
        assert_eq!(cols("SELECT a, t.b, count(*) AS n FROM t"), known(&["a", "b", "n"]));
        assert_eq!(cols("SELECT a FROM t UNION ALL SELECT b FROM u"), known(&["a"]));
        assert_eq!(cols("SELECT * FROM raw_orders"), Columns::AllOf("raw_orders".into(), Vec::new()));
        assert_eq!(cols("SELECT *, 1 AS one FROM t"), Columns::AllOf("t".into(), vec!["one".into()]));
        assert_eq!(cols("SELECT a + 1 FROM t"), Columns::Unknown);
        assert_eq!(cols("SELECT * FROM t JOIN u ON t.id = u.id"), Columns::Unknown);
        assert_eq!(cols("VALUES (1)"), Columns::Unknown);
    }

    #[test]
    fn sqlite_idioms_parse() {
        for sql in [
            "SELECT strftime('%Y-%m', day) AS month, sum(amount) FROM o GROUP BY 1 ORDER BY 1 LIMIT 10 OFFSET 5",
            "SELECT a || '-' || b, CAST(x AS REAL), CASE WHEN y IS NULL THEN 0 ELSE y END FROM t",
            "SELECT id, row_number() OVER (PARTITION BY c ORDER BY d) AS n FROM t",
            "SELECT * FROM t WHERE name GLOB 'a*' AND code LIKE 'x%' AND v BETWEEN 1 AND 2",
            "SELECT json_extract(payload, '$.a') FROM t",
            "SELECT coalesce(a, b), ifnull(c, 0), iif(d > 0, 1, 0) FROM t",
            "SELECT DISTINCT a FROM t UNION ALL SELECT a FROM u",
            "VALUES (1, 'a'), (2, 'b')",
            "SELECT \"quoted col\" FROM [bracketed table]",
            "SELECT count(*) FILTER (WHERE x > 1) FROM t",
        ] {
            tables_read(sql, "sql").unwrap_or_else(|e| panic!("{sql}: {e}"));
        }
    }

    #[test]
    fn errors_say_where() {
        let e = tables_read("SELECT a,\n  FROM t", "sql").unwrap_err();
        let PluginError::Invalid { at, message, .. } = e else { panic!("{e}") };
        assert_eq!(at.map(|(line, _)| line), Some(2), "{message}");
        assert!(message.starts_with("the SQL is not valid: "), "{message}");
        let e = tables_read("SELECT 1; SELECT 2", "sql").unwrap_err();
        assert!(e.to_string().contains("holds 2 statements"), "{e}");
        let e = tables_read("DELETE FROM t", "sql").unwrap_err();
        assert!(e.to_string().contains("is not a query"), "{e}");
        let deep = format!("SELECT {}1{}", "(".repeat(5000), ")".repeat(5000));
        let e = tables_read(&deep, "sql").unwrap_err();
        assert!(e.to_string().contains("nests too deeply"), "{e}");
    }
}
