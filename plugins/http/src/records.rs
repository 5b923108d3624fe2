//! Records: JSON values to a table's rows, JSON pointers, and `{…}` templates.

use serde_json::Value;

/// Checks a JSON pointer (RFC 6901): empty, or `/`-separated tokens with `~0`/`~1` escapes.
pub(crate) fn check_pointer(p: &str) -> Result<(), String> {
    if p.is_empty() {
        return Ok(());
    }
    if !p.starts_with('/') {
        return Err(format!(
            "`{p}` is not a JSON pointer: it starts with `/` (e.g. `/data`), or is empty for the whole body"
        ));
    }
    let mut chars = p.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '~' && !matches!(chars.next(), Some('0' | '1')) {
            return Err(format!("`{p}` is not a JSON pointer: `~` is written `~0`, and `/` inside a name `~1`"));
        }
    }
    Ok(())
}

/// The parts of a template: literal text and `{name}` placeholders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Part {
    Text(String),
    Field(String),
}

/// Splits a template; `{{` and `}}` are literal braces. An unclosed `{` is an error.
pub(crate) fn parse_template(t: &str) -> Result<Vec<Part>, String> {
    let mut parts = Vec::new();
    let mut text = String::new();
    let mut chars = t.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '{' if chars.peek() == Some(&'{') => {
                chars.next();
                text.push('{');
            }
            '}' if chars.peek() == Some(&'}') => {
                chars.next();
                text.push('}');
            }
            '{' => {
                let mut name = String::new();
                loop {
                    match chars.next() {
                        Some('}') => break,
                        Some(c) => name.push(c),
                        None => return Err(format!("`{{{name}` is never closed in `{t}`")),
                    }
                }
                if !text.is_empty() {
                    parts.push(Part::Text(std::mem::take(&mut text)));
                }
                parts.push(Part::Field(name.trim().to_string()));
            }
            c => text.push(c),
        }
    }
    if !text.is_empty() {
        parts.push(Part::Text(text));
    }
    Ok(parts)
}

/// The placeholders a template may use: `{parent.FIELD}` with a parent, `{partition}`,
/// `{partition_start}`, `{partition_end}` when partitioned.
pub(crate) fn check_fields(parts: &[Part], has_parent: bool, partitioned: bool) -> Result<(), String> {
    for p in parts {
        let Part::Field(f) = p else { continue };
        match f.as_str() {
            "partition" | "partition_start" | "partition_end" if partitioned => {}
            "partition" | "partition_start" | "partition_end" => {
                return Err(format!("`{{{f}}}` names the partition, and this asset is not partitioned"));
            }
            _ if f.starts_with("parent.") && f.len() > 7 => {
                if !has_parent {
                    return Err(format!(
                        "`{{{f}}}` names a field of the parent record, and this asset has no `parent`"
                    ));
                }
            }
            _ => {
                return Err(format!(
                    "`{{{f}}}` is no field a template knows: use `{{parent.FIELD}}` (with `parent:`), `{{partition}}`, \
                     `{{partition_start}}` or `{{partition_end}}`"
                ));
            }
        }
    }
    Ok(())
}

/// Fills a template; `lookup` gives each field's value (or why not).
pub(crate) fn fill(parts: &[Part], lookup: &dyn Fn(&str) -> Result<String, String>) -> Result<String, String> {
    let mut out = String::new();
    for p in parts {
        match p {
            Part::Text(t) => out.push_str(t),
            Part::Field(f) => out.push_str(&lookup(f)?),
        }
    }
    Ok(out)
}

/// A JSON value as template text: strings as they are, numbers and booleans written out.
pub(crate) fn text_of(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// The records of a page: the array at `pointer` (the body when empty). A page without
/// that array is an error naming what is there.
pub(crate) fn records_of(body: &mut Value, pointer: &str) -> Result<Vec<Value>, String> {
    if let Some(Value::Array(a)) = body.pointer_mut(pointer) {
        return Ok(std::mem::take(a));
    }
    match body.pointer(pointer) {
        // a page whose records are null is an answer without records — often an error body
        // (`{"data": null, "error": "quota exceeded"}`): never "0 rows"
        Some(Value::Null) => {
            let keys = match body {
                Value::Object(m) => {
                    format!(" (the body has {})", m.keys().map(|k| format!("/{k}")).collect::<Vec<_>>().join(", "))
                }
                _ => String::new(),
            };
            Err(format!(
                "`records: {}` is null, not an array of records{keys}",
                if pointer.is_empty() { "(the body)" } else { pointer }
            ))
        }
        Some(other) => Err(format!(
            "`records: {}` points at {}, not an array of records",
            if pointer.is_empty() { "(the body)" } else { pointer },
            kind(other)
        )),
        None => {
            let keys = match body {
                Value::Object(m) => {
                    format!(" (the body has {})", m.keys().map(|k| format!("/{k}")).collect::<Vec<_>>().join(", "))
                }
                _ => String::new(),
            };
            Err(format!("the response has nothing at `{pointer}`{keys}"))
        }
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Orders two cursor values by their JSON type: numbers as numbers (integers exactly), RFC
/// 3339 timestamps as instants (whatever their offsets), anything else as text.
pub(crate) fn cursor_after(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_i64(), y.as_i64(), x.as_u64(), y.as_u64()) {
            (Some(i), Some(j), _, _) => i > j,
            (_, _, Some(i), Some(j)) => i > j,
            (Some(_), None, _, Some(_)) => false,
            (None, Some(_), Some(_), _) => true,
            _ => x.as_f64().unwrap_or(f64::NAN) > y.as_f64().unwrap_or(f64::NAN),
        },
        (Value::String(x), Value::String(y)) => {
            match (chrono::DateTime::parse_from_rfc3339(x), chrono::DateTime::parse_from_rfc3339(y)) {
                (Ok(i), Ok(j)) => i > j,
                _ => x > y,
            }
        }
        _ => text_of(a).unwrap_or_default() > text_of(b).unwrap_or_default(),
    }
}

/// A stored cursor read back with its JSON type (`1000` a number, `"2024-…"` a string); a
/// cursor stored as bare text by an earlier phlo (or an `initial` written as text) is a
/// number when it reads as one, else text.
pub(crate) fn stored_cursor(text: &str) -> Value {
    match serde_json::from_str::<Value>(text) {
        Ok(v @ (Value::Number(_) | Value::String(_))) => v,
        _ => Value::String(text.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use phlo_core::data::{Cell, DataType};

    use super::*;

    #[test]
    fn templates_and_pointers() {
        let t = parse_template("/repos/{parent.name}/issues?x={{y}}").unwrap();
        assert_eq!(t[1], Part::Field(String::from("parent.name")));
        assert!(check_fields(&t, true, false).is_ok());
        assert!(check_fields(&t, false, false).unwrap_err().contains("no `parent`"));
        let bad = parse_template("/x/{owner}").unwrap();
        assert!(check_fields(&bad, true, true).unwrap_err().contains("`{owner}` is no field"));
        assert!(parse_template("/x/{open").is_err());
        assert!(check_pointer("/data/items").is_ok());
        assert!(check_pointer("data").is_err());
        assert!(check_pointer("/a~2").is_err());
        let filled = fill(&t, &|f| Ok(f.to_uppercase())).unwrap();
        assert_eq!(filled, "/repos/PARENT.NAME/issues?x={y}");
    }

    #[test]
    fn records_become_typed_columns() {
        let recs: Vec<serde_json::Map<String, Value>> =
            serde_json::from_str(r#"[{"id":1,"n":1.5,"ok":true,"tags":["a"]},{"id":2,"n":2,"extra":"x","ok":null}]"#)
                .unwrap();
        let rows = phlo_core::data::rows_from_json(&recs);
        let types: Vec<(String, DataType)> = rows.columns.iter().map(|c| (c.name.clone(), c.data_type)).collect();
        assert_eq!(
            types,
            [
                (String::from("id"), DataType::Integer),
                (String::from("n"), DataType::Real),
                (String::from("ok"), DataType::Boolean),
                (String::from("tags"), DataType::Text),
                (String::from("extra"), DataType::Text),
            ]
        );
        assert_eq!(rows.rows[0][3], Cell::Text(String::from("[\"a\"]")));
        assert_eq!(rows.rows[1][4], Cell::Text(String::from("x")));
    }
}
