//! `${VAR}` and `${VAR:-default}` expansion in configuration strings.
//!
//! Expansion runs on the [`Node`] tree before any section is read, so a value that came
//! from the environment still has its `file:line:col`. `$${` writes a literal `${`. Fields a
//! plugin marks *no-expand* (SQL text, query parameters) are left exactly as written.
//!
//! ```
//! use phlo_core::config::env::expand_str;
//! let env = |name: &str| (name == "HOME").then(|| "/home/ada".to_string());
//! assert_eq!(expand_str("${HOME}/data", &env).unwrap(), "/home/ada/data");
//! assert_eq!(expand_str("${MISSING:-fallback}", &env).unwrap(), "fallback");
//! assert_eq!(expand_str("$${literal}", &env).unwrap(), "${literal}");
//! assert_eq!(expand_str("${DATA:-${HOME}/data}", &env).unwrap(), "/home/ada/data");
//! ```

use std::sync::Arc;

use super::node::{Node, Value};
use crate::diagnostic::{Code, Diagnostic, Diagnostics, SourceFile};

/// Why a string could not be expanded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExpandError {
    /// `${NAME}` with `NAME` unset and no default.
    #[error("environment variable `{0}` is not set")]
    Undefined(String),
    /// `${` without a closing `}`.
    #[error("`${{` is not closed by `}}`")]
    Unclosed,
    /// A name that is not `[A-Za-z_][A-Za-z0-9_]*`.
    #[error("`{0}` is not a valid environment variable name")]
    BadName(String),
    /// Defaults nested more than [`MAX_DEFAULT_NESTING`] levels deep.
    #[error("`${{…:-…}}` defaults nest more than {MAX_DEFAULT_NESTING} levels deep")]
    TooDeep,
}

/// How deeply `${A:-${B:-…}}` defaults may nest.
pub const MAX_DEFAULT_NESTING: usize = 8;

/// The index in `tail` (the text after a `${`) of the `}` that closes it, skipping nested
/// `${…}`.
fn closing_brace(tail: &str) -> Option<usize> {
    let bytes = tail.as_bytes();
    let (mut depth, mut i) = (0usize, 0usize);
    while i < bytes.len() {
        if bytes[i] == b'$' && bytes.get(i + 1) == Some(&b'{') {
            depth += 1;
            i += 2;
            continue;
        }
        if bytes[i] == b'}' {
            if depth == 0 {
                return Some(i);
            }
            depth -= 1;
        }
        i += 1;
    }
    None
}

/// Expands one string with `lookup`.
///
/// # Errors
/// An unset variable without a default, an unclosed `${`, or an invalid name.
pub fn expand_str(s: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Result<String, ExpandError> {
    expand_at(s, lookup, 0)
}

/// A default is itself expanded: `${DATA_DIR:-${HOME}/data}`.
fn expand_at(s: &str, lookup: &dyn Fn(&str) -> Option<String>, depth: usize) -> Result<String, ExpandError> {
    if depth > MAX_DEFAULT_NESTING {
        return Err(ExpandError::TooDeep);
    }
    if !s.contains('$') {
        return Ok(s.to_string());
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i..];
        if let Some(tail) = after.strip_prefix("$${") {
            out.push_str("${");
            rest = tail;
        } else if let Some(tail) = after.strip_prefix("${") {
            let end = closing_brace(tail).ok_or(ExpandError::Unclosed)?;
            let inner = &tail[..end];
            let (name, default) = match inner.split_once(":-") {
                Some((n, d)) => (n, Some(d)),
                None => (inner, None),
            };
            let valid = name.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !valid {
                return Err(ExpandError::BadName(name.to_string()));
            }
            match (lookup(name).filter(|v| !v.is_empty() || default.is_none()), default) {
                (Some(v), _) => out.push_str(&v),
                (None, Some(d)) => out.push_str(&expand_at(d, lookup, depth + 1)?),
                (None, None) => return Err(ExpandError::Undefined(name.to_string())),
            }
            rest = &tail[end + 1..];
        } else {
            out.push('$');
            rest = &after[1..];
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// Expands every string in `node` except under the paths for which `skip(path)` is true
/// (`path` is the list of mapping keys from the root, with the index of each sequence item).
/// All failures are reported.
pub fn expand_tree(
    node: &mut Node,
    source: &Arc<SourceFile>,
    lookup: &dyn Fn(&str) -> Option<String>,
    skip: &dyn Fn(&[&str]) -> bool,
) -> Diagnostics {
    let mut diags = Diagnostics::new();
    let mut path = Vec::new();
    walk(node, &mut path, source, lookup, skip, &mut diags);
    diags
}

/// One step of the path to a value: a mapping key, or a sequence index.
enum Segment<'a> {
    Key(&'a str),
    Index(usize),
}

/// Walks the whole tree; `skip` is asked only about the strings that hold `${` (for each
/// mapping key on their path), so a large file costs one pass and no allocation per value.
fn walk<'a>(
    node: &'a mut Node,
    path: &mut Vec<Segment<'a>>,
    source: &Arc<SourceFile>,
    lookup: &dyn Fn(&str) -> Option<String>,
    skip: &dyn Fn(&[&str]) -> bool,
    diags: &mut Diagnostics,
) {
    match &mut node.value {
        Value::Str(s) => {
            if !s.contains("${") || skipped(path, skip) {
                return;
            }
            match expand_str(s, lookup) {
                Ok(v) => {
                    *s = v;
                    node.expanded = true;
                }
                Err(e) => {
                    let help = match &e {
                        ExpandError::Undefined(n) => {
                            format!("set `{n}` in the environment, or give a default: `${{{n}:-value}}`")
                        }
                        ExpandError::Unclosed => "close it with `}`, or write `$${` for a literal `${`".into(),
                        ExpandError::BadName(_) => "variable names are letters, digits and `_`".into(),
                        ExpandError::TooDeep => "flatten the defaults".into(),
                    };
                    let code = if matches!(e, ExpandError::Undefined(_)) {
                        Code::UndefinedVariable
                    } else {
                        Code::InvalidValue
                    };
                    diags.push(Diagnostic::error(code, e.to_string()).at(source, node.span).with_help(help));
                }
            }
        }
        Value::Seq(items) => {
            // a sequence item's segment is its index: `checks`, `0`, `query`
            for (i, item) in items.iter_mut().enumerate() {
                path.push(Segment::Index(i));
                walk(item, path, source, lookup, skip, diags);
                path.pop();
            }
        }
        Value::Map(entries) => {
            for entry in entries.iter_mut() {
                let (k, v) = (&entry.0, &mut entry.1);
                path.push(Segment::Key(k.name.as_str()));
                walk(v, path, source, lookup, skip, diags);
                path.pop();
            }
        }
        _ => {}
    }
}

/// Whether `skip` is true for the path up to one of its mapping keys.
fn skipped(path: &[Segment<'_>], skip: &dyn Fn(&[&str]) -> bool) -> bool {
    let indices: Vec<String> =
        path.iter().map(|s| if let Segment::Index(i) = s { i.to_string() } else { String::new() }).collect();
    let texts: Vec<&str> = path
        .iter()
        .zip(&indices)
        .map(|(s, i)| match s {
            Segment::Key(k) => *k,
            Segment::Index(_) => i.as_str(),
        })
        .collect();
    (1..=texts.len()).any(|n| matches!(path[n - 1], Segment::Key(_)) && skip(&texts[..n]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::node::{Format, parse};

    fn env(name: &str) -> Option<String> {
        match name {
            "DB" => Some("/tmp/w.db".into()),
            "EMPTY" => Some(String::new()),
            "N" => Some("8".into()),
            _ => None,
        }
    }

    #[test]
    fn expands_with_defaults_and_escapes() {
        assert_eq!(expand_str("a ${DB} b", &env).unwrap(), "a /tmp/w.db b");
        assert_eq!(expand_str("${NOPE:-x}", &env).unwrap(), "x");
        assert_eq!(expand_str("${EMPTY:-x}", &env).unwrap(), "x");
        assert_eq!(expand_str("${EMPTY}", &env).unwrap(), "");
        assert_eq!(expand_str("$5 and $${X}", &env).unwrap(), "$5 and ${X}");
        assert_eq!(expand_str("${NOPE}", &env), Err(ExpandError::Undefined("NOPE".into())));
        assert_eq!(expand_str("${DB", &env), Err(ExpandError::Unclosed));
        assert_eq!(expand_str("${1x}", &env), Err(ExpandError::BadName("1x".into())));
    }

    #[test]
    fn defaults_may_hold_variables_and_nest() {
        assert_eq!(expand_str("${NOPE:-${DB}}", &env).unwrap(), "/tmp/w.db");
        assert_eq!(expand_str("${NOPE:-${NADA:-${N}x}}/y", &env).unwrap(), "8x/y");
        assert_eq!(expand_str("${DB:-${NOPE}}", &env).unwrap(), "/tmp/w.db", "an unused default is not looked up");
        assert_eq!(expand_str("${NOPE:-$${lit}}", &env).unwrap(), "${lit}");
        assert_eq!(expand_str("${NOPE:-${ALSO_NOPE}}", &env), Err(ExpandError::Undefined("ALSO_NOPE".into())));
        assert_eq!(expand_str("${NOPE:-${DB}", &env), Err(ExpandError::Unclosed));
        let deep = format!("{}x{}", "${A:-".repeat(10_000), "}".repeat(10_000));
        assert_eq!(expand_str(&deep, &env), Err(ExpandError::TooDeep));
    }

    #[test]
    fn tree_expansion_skips_no_expand_paths_and_reports_every_failure() {
        let src = SourceFile::new(
            "phlo.yaml",
            "a: ${DB}\nsql: select '${NOPE}'\nn: ${N}\nlist:\n  - ${NOPE}\n  - ${ALSO_NOPE}\n",
        );
        let mut node = parse(&src, Format::Yaml).unwrap();
        let diags = expand_tree(&mut node, &src, &env, &|p| p == ["sql"]);
        assert_eq!(node.get("a").unwrap().as_str(), Some("/tmp/w.db"));
        assert_eq!(node.get("sql").unwrap().as_str(), Some("select '${NOPE}'"));
        assert!(node.get("n").unwrap().expanded);
        let v: Vec<_> = diags.iter().map(|d| (d.code, d.location.as_ref().unwrap().span.line)).collect();
        assert_eq!(v, vec![(Code::UndefinedVariable, 5), (Code::UndefinedVariable, 6)]);
    }
}
