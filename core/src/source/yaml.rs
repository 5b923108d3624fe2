//! `phlo.yaml` into a [`Node`] tree, straight from the YAML parser's events.
//!
//! The events come from `granit-parser` (serde-saphyr's own parser layer, re-exported by it);
//! the tree is built here in one pass with an explicit stack, so a project of 100,000 assets
//! costs little more than the parse itself. The rules:
//!
//! - **Scalars** follow the YAML 1.2 core schema with strict booleans: a plain `~`, `null` or
//!   nothing is null; `true`/`false` (also `True`, `TRUE`, …) are booleans — `yes`, `on`, `y`
//!   stay strings; decimal, `0x`, `0o` and `0b` integers that fit 64 bits are integers
//!   (`00123` stays a string, a decimal too long for 64 bits is a number); decimal and
//!   exponent forms and `.inf`/`.nan` are numbers. Quoted and block scalars are strings.
//! - **Tags** `!!str`, `!!int`, `!!float`, `!!bool`, `!!null`, `!!map`, `!!seq` and `!` are
//!   honoured (a value that does not read as its tag is an error); any other tag is an error
//!   rather than being silently dropped.
//! - **Keys** are scalars and keep their text as written (`0x10` stays `0x10`); a collection
//!   as a key is an error.
//! - **Anchors, aliases and merge keys** (`<<: *base`, `<<: [*a, *b]`) work: an alias copies
//!   the anchored value with its positions; keys written in a mapping win over merged ones,
//!   and an earlier merged mapping over a later one. Copies are budgeted, so an alias bomb is
//!   a located error, and so is nesting deeper than [`MAX_YAML_DEPTH`], through aliases too.
//! - A file holds one document.

use std::sync::Arc;

use serde_saphyr::granit_parser::{Event, Marker, Options, Parser, ScalarStyle, Tag};

use super::node::{Key, Node, Value};
use crate::diagnostic::{Code, Diagnostic, Diagnostics, SourceFile, Span};

/// How deeply a YAML project file may nest.
pub const MAX_YAML_DEPTH: usize = 32;

/// How many values aliases may copy in one file (a project of 100,000 assets merging a
/// ten-key default copies ~1.1 million).
pub const MAX_ALIAS_COPIES: usize = 4_000_000;

/// Parses YAML text into a [`Node`] tree. An empty document is an empty mapping.
///
/// # Errors
/// A located syntax error (`PHLO-E002`).
pub fn parse_yaml(source: &Arc<SourceFile>) -> Result<Node, Diagnostics> {
    let empty = || Node { value: Value::Map(Vec::new()), span: Span::new(1, 1, 1), expanded: false };
    if source.text.trim().is_empty() {
        return Ok(empty());
    }
    match build(&source.text) {
        Ok(Some(Node { value: Value::Null, .. }) | None) => Ok(empty()),
        Ok(Some(node)) => Ok(node),
        Err(YamlError { message, span, help }) => {
            Err(Diagnostic::error(Code::Syntax, format!("invalid YAML: {message}"))
                .at(source, span)
                .with_help(help.unwrap_or_else(|| {
                    "fix the YAML syntax at this position (indentation, quoting, `:` after keys)".to_string()
                }))
                .into())
        }
    }
}

struct YamlError {
    message: String,
    span: Span,
    help: Option<String>,
}

fn error(message: impl Into<String>, span: Span) -> YamlError {
    YamlError { message: message.into(), span, help: None }
}

fn at(m: &Marker, len: usize) -> Span {
    Span::new(u32::try_from(m.line()).unwrap_or(u32::MAX), u32::try_from(m.col() + 1).unwrap_or(u32::MAX), len as u32)
}

/// An open collection.
enum Frame {
    Seq {
        items: Vec<Node>,
        span: Span,
        anchor: usize,
        height: usize,
    },
    Map {
        entries: Vec<(Key, Node)>,
        span: Span,
        anchor: usize,
        height: usize,
        /// The key whose value comes next.
        key: Option<Key>,
        /// That key is a plain `<<`.
        merge: bool,
        /// Values merged into this mapping, in order.
        merges: Vec<Node>,
    },
}

/// A finished value with the height of its tree (1 for a scalar), for the depth rule.
struct Done {
    node: Node,
    height: usize,
}

struct Builder {
    stack: Vec<Frame>,
    /// Anchored values by the parser's anchor id.
    anchors: Vec<Option<(Node, usize, usize)>>,
    copies: usize,
    root: Option<Node>,
}

fn build(text: &str) -> Result<Option<Node>, YamlError> {
    let options = {
        let mut o = Options::default();
        o.flow_nesting_limit = MAX_YAML_DEPTH;
        o.block_nesting_limit = MAX_YAML_DEPTH;
        o
    };
    let mut parser = Parser::new_from_str_with_options(text, options);
    let mut b = Builder { stack: Vec::new(), anchors: Vec::new(), copies: 0, root: None };
    let mut documents = 0usize;
    while let Some(next) = parser.next_event() {
        let (event, span) = next.map_err(|e| {
            let message = e.info();
            error(if message.is_empty() { e.to_string() } else { message }, at(e.marker(), 1))
        })?;
        let here = at(&span.start, 1);
        match event {
            Event::DocumentStart(..) => {
                documents += 1;
                if documents > 1 {
                    return Err(YamlError {
                        message: "a second YAML document (`---`) in the project file".into(),
                        span: here,
                        help: Some("a project file holds one document: remove the `---` and merge the two".into()),
                    });
                }
            }
            Event::Scalar(value, style, anchor, tag) => {
                let tag_span = span.tag_start.as_ref().map_or(here, |m| at(m, 1));
                if anchor == 0
                    && let Some(Frame::Map { key: key @ None, merge, .. }) = b.stack.last_mut()
                {
                    // a key keeps its text as written; a plain, untagged `<<` merges
                    check_tag(tag.as_deref(), "str", tag_span)?;
                    *merge = style == ScalarStyle::Plain && tag.is_none() && value == "<<";
                    let len = value.chars().count().max(1) as u32;
                    *key = Some(Key { name: value.into_owned(), span: Span { len, ..here } });
                    continue;
                }
                let node = scalar(&value, style, tag.as_deref(), here, tag_span)?;
                b.finish(Done { node, height: 1 }, anchor)?;
            }
            Event::SequenceStart(_, anchor, tag) => {
                check_tag(tag.as_deref(), "seq", span.tag_start.as_ref().map_or(here, |m| at(m, 1)))?;
                b.open(Frame::Seq { items: Vec::new(), span: here, anchor, height: 1 }, here)?;
            }
            Event::MappingStart(_, anchor, tag) => {
                check_tag(tag.as_deref(), "map", span.tag_start.as_ref().map_or(here, |m| at(m, 1)))?;
                let frame = Frame::Map {
                    entries: Vec::new(),
                    span: here,
                    anchor,
                    height: 1,
                    key: None,
                    merge: false,
                    merges: Vec::new(),
                };
                b.open(frame, here)?;
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let Some(frame) = b.stack.pop() else { continue };
                let (done, anchor) = close(frame)?;
                b.finish(done, anchor)?;
            }
            Event::Alias(id) => {
                let Some(Some((node, size, height))) = b.anchors.get(id) else {
                    return Err(error("an alias to an anchor that is not defined before it", at(&span.start, 1)));
                };
                b.copies += size;
                if b.copies > MAX_ALIAS_COPIES {
                    return Err(YamlError {
                        message: format!("aliases copy more than {MAX_ALIAS_COPIES} values"),
                        span: here,
                        help: Some("write the values out, or alias smaller parts".into()),
                    });
                }
                if b.stack.len() + height > MAX_YAML_DEPTH + 1 {
                    return Err(deeper(here));
                }
                let done = Done { node: node.clone(), height: *height };
                b.finish(done, 0)?;
            }
            _ => {}
        }
    }
    Ok(b.root)
}

fn collection_key(span: Span) -> YamlError {
    YamlError {
        message: "a mapping key must be a plain value, not a list or a mapping".into(),
        span,
        help: Some("use a text key, e.g. `name: …`".into()),
    }
}

fn deeper(span: Span) -> YamlError {
    YamlError {
        message: format!("the file nests more than {MAX_YAML_DEPTH} levels deep"),
        span,
        help: Some("a project file nests a handful of levels; flatten this value".into()),
    }
}

impl Builder {
    fn open(&mut self, frame: Frame, span: Span) -> Result<(), YamlError> {
        if self.stack.len() >= MAX_YAML_DEPTH {
            return Err(deeper(span));
        }
        if let Some(Frame::Map { key: None, .. }) = self.stack.last() {
            return Err(collection_key(span));
        }
        self.stack.push(frame);
        Ok(())
    }

    /// Hands a finished value to its parent (or makes it the document), remembering it under
    /// its anchor.
    fn finish(&mut self, done: Done, anchor: usize) -> Result<(), YamlError> {
        if anchor != 0 {
            if self.anchors.len() <= anchor {
                self.anchors.resize_with(anchor + 1, || None);
            }
            self.anchors[anchor] = Some((done.node.clone(), size(&done.node), done.height));
        }
        match self.stack.last_mut() {
            None => self.root = Some(done.node),
            Some(Frame::Seq { items, height, .. }) => {
                *height = (*height).max(done.height + 1);
                items.push(done.node);
            }
            Some(Frame::Map { entries, height, key, merge, merges, .. }) => match key.take() {
                // an anchored or aliased key: its value as text
                None => {
                    let name = match done.node.value {
                        Value::Str(s) => s,
                        Value::Null => String::new(),
                        Value::Int(i) => i.to_string(),
                        Value::Float(f) => f.to_string(),
                        Value::Bool(b) => b.to_string(),
                        Value::Seq(_) | Value::Map(_) => return Err(collection_key(done.node.span)),
                    };
                    *merge = false;
                    *key = Some(Key { name, span: done.node.span });
                }
                Some(k) => {
                    *height = (*height).max(done.height + 1);
                    if std::mem::take(merge) {
                        merges.push(done.node);
                    } else {
                        entries.push((k, done.node));
                    }
                }
            },
        }
        Ok(())
    }
}

fn close(frame: Frame) -> Result<(Done, usize), YamlError> {
    Ok(match frame {
        Frame::Seq { items, span, anchor, height } => {
            (Done { node: Node { value: Value::Seq(items), span, expanded: false }, height }, anchor)
        }
        Frame::Map { mut entries, span, anchor, height, key, merges, .. } => {
            if let Some(k) = key {
                // a key without a value (`{a}`, `? a`) reads as `a: null`
                entries.push((k, Node { value: Value::Null, span, expanded: false }));
            }
            for m in merges {
                merge(&mut entries, m)?;
            }
            (Done { node: Node { value: Value::Map(entries), span, expanded: false }, height }, anchor)
        }
    })
}

/// Adds the entries of a merged mapping (or of each mapping of a list, the first winning)
/// that the mapping does not have yet.
fn merge(entries: &mut Vec<(Key, Node)>, merged: Node) -> Result<(), YamlError> {
    let span = merged.span;
    let sources = match merged.value {
        Value::Map(m) => vec![m],
        Value::Seq(items) => items
            .into_iter()
            .map(|n| match n.value {
                Value::Map(m) => Ok(m),
                _ => Err(merge_error(n.span)),
            })
            .collect::<Result<_, _>>()?,
        _ => return Err(merge_error(span)),
    };
    let mut present: rustc_hash::FxHashSet<String> = entries.iter().map(|(k, _)| k.name.clone()).collect();
    for source in sources {
        for (k, v) in source {
            if present.insert(k.name.clone()) {
                entries.push((k, v));
            }
        }
    }
    Ok(())
}

fn merge_error(span: Span) -> YamlError {
    YamlError {
        message: "`<<` merges a mapping or a list of mappings".into(),
        span,
        help: Some("write `<<: *name` with an anchored mapping, or `<<: [*a, *b]`".into()),
    }
}

/// The number of values in a tree.
fn size(node: &Node) -> usize {
    let mut n = 0;
    let mut stack = vec![node];
    while let Some(x) = stack.pop() {
        n += 1;
        match &x.value {
            Value::Seq(items) => stack.extend(items),
            Value::Map(entries) => stack.extend(entries.iter().map(|(_, v)| v)),
            _ => {}
        }
    }
    n
}

/// The YAML core schema name of a tag (`str` for `!!str`), `Some("")` for the non-specific
/// `!`, `None` for any other tag.
fn core_name(tag: &Tag) -> Option<&str> {
    if tag.original() == "!" {
        return Some("");
    }
    tag.core_suffix()
}

fn unsupported_tag(tag: &Tag, span: Span) -> YamlError {
    YamlError {
        message: format!("the YAML tag `{}` is not supported", tag.original()),
        span,
        help: Some("remove the tag: phlo reads plain YAML values (`!!str` makes a value text)".into()),
    }
}

fn check_tag(tag: Option<&Tag>, expected: &str, span: Span) -> Result<(), YamlError> {
    match tag {
        None => Ok(()),
        Some(t) => match core_name(t) {
            Some(name) if name.is_empty() || name == expected => Ok(()),
            _ => Err(unsupported_tag(t, span)),
        },
    }
}

fn scalar(text: &str, style: ScalarStyle, tag: Option<&Tag>, span: Span, tag_span: Span) -> Result<Node, YamlError> {
    let plain = style == ScalarStyle::Plain;
    let value = match tag {
        None if plain => plain_value(text),
        None => Value::Str(text.to_string()),
        Some(t) => {
            let wrong = |what: &str| error(format!("`{text}` is not {what}, as its tag `{}` says", t.original()), span);
            match core_name(t) {
                Some("" | "str") => Value::Str(text.to_string()),
                Some("null") if is_null(text) => Value::Null,
                Some("null") => return Err(wrong("null")),
                Some("bool") => bool_of(text).map(Value::Bool).ok_or_else(|| wrong("a boolean"))?,
                Some("int") => int_of(text).map(Value::Int).ok_or_else(|| wrong("a 64-bit integer"))?,
                Some("float") => match int_of(text) {
                    Some(i) => Value::Float(i as f64),
                    None => float_of(text).map(Value::Float).ok_or_else(|| wrong("a number"))?,
                },
                _ => return Err(unsupported_tag(t, tag_span)),
            }
        }
    };
    let len = match &value {
        Value::Str(s) => s.chars().count(),
        _ => text.chars().count(),
    };
    Ok(Node { value, span: Span { len: len.max(1) as u32, ..span }, expanded: false })
}

fn is_null(text: &str) -> bool {
    matches!(text, "" | "~" | "null" | "Null" | "NULL")
}

fn bool_of(text: &str) -> Option<bool> {
    match text {
        "true" | "True" | "TRUE" => Some(true),
        "false" | "False" | "FALSE" => Some(false),
        _ => None,
    }
}

/// A YAML 1.2 integer that fits 64 bits: decimal without a redundant leading zero, or
/// `0x`/`0o`/`0b` digits, with an optional sign.
fn int_of(text: &str) -> Option<i64> {
    let (negative, rest) = match text.as_bytes().first()? {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    let (radix, digits) = match rest.get(..2) {
        Some("0x" | "0X") => (16, &rest[2..]),
        Some("0o" | "0O") => (8, &rest[2..]),
        Some("0b" | "0B") => (2, &rest[2..]),
        _ => (10, rest),
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    if radix == 10 && digits.len() > 1 && digits.starts_with('0') {
        return None;
    }
    let magnitude = u64::from_str_radix(digits, radix).ok()?;
    if negative { 0i64.checked_sub_unsigned(magnitude) } else { i64::try_from(magnitude).ok() }
}

/// A YAML 1.2 number: `[-+]?(.digits|digits(.digits?)?)([eE][-+]?digits)?`, `.inf`, `.nan`.
fn float_of(text: &str) -> Option<f64> {
    let unsigned = text.strip_prefix(['-', '+']).unwrap_or(text);
    let negative = text.starts_with('-');
    match unsigned {
        ".inf" | ".Inf" | ".INF" => return Some(if negative { f64::NEG_INFINITY } else { f64::INFINITY }),
        ".nan" | ".NaN" | ".NAN" if unsigned.len() == text.len() => return Some(f64::NAN),
        _ => {}
    }
    let bytes = unsigned.as_bytes();
    let mut i = 0;
    let digits = |i: &mut usize| {
        let start = *i;
        while *i < bytes.len() && bytes[*i].is_ascii_digit() {
            *i += 1;
        }
        *i - start
    };
    let mut mantissa = digits(&mut i);
    if i < bytes.len() && bytes[i] == b'.' {
        i += 1;
        mantissa += digits(&mut i);
    }
    if mantissa == 0 {
        return None;
    }
    if i < bytes.len() && matches!(bytes[i], b'e' | b'E') {
        i += 1;
        if i < bytes.len() && matches!(bytes[i], b'-' | b'+') {
            i += 1;
        }
        if digits(&mut i) == 0 {
            return None;
        }
    }
    if i != bytes.len() {
        return None;
    }
    text.parse().ok()
}

/// The value of a plain, untagged scalar.
fn plain_value(text: &str) -> Value {
    if is_null(text) {
        return Value::Null;
    }
    if let Some(b) = bool_of(text) {
        return Value::Bool(b);
    }
    let first = text.as_bytes()[0];
    if !(first.is_ascii_digit() || matches!(first, b'-' | b'+' | b'.')) {
        return Value::Str(text.to_string());
    }
    if let Some(i) = int_of(text) {
        return Value::Int(i);
    }
    // a decimal with a redundant leading zero (`00123`, a code) stays text
    let digits = text.strip_prefix(['-', '+']).unwrap_or(text);
    if digits.len() > 1 && digits.starts_with('0') && digits.bytes().all(|c| c.is_ascii_digit()) {
        return Value::Str(text.to_string());
    }
    float_of(text).map_or_else(|| Value::Str(text.to_string()), Value::Float)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn yaml(text: &str) -> Result<Node, Diagnostic> {
        parse_yaml(&SourceFile::new("phlo.yaml", text)).map_err(|d| d.iter().next().unwrap().clone())
    }

    fn value(text: &str) -> Value {
        yaml(&format!("v: {text}\n")).unwrap().get("v").unwrap().value.clone()
    }

    fn error_at(text: &str) -> (String, u32, u32) {
        let d = yaml(text).unwrap_err();
        let span = d.location.as_ref().unwrap().span;
        (d.message, span.line, span.col)
    }

    #[test]
    fn scalars_follow_the_core_schema_with_strict_booleans() {
        assert_eq!(value("~"), Value::Null);
        assert_eq!(value("null"), Value::Null);
        assert_eq!(value(""), Value::Null);
        assert_eq!(value("'null'"), Value::Str("null".into()));
        assert_eq!(value("True"), Value::Bool(true));
        assert_eq!(value("yes"), Value::Str("yes".into()));
        assert_eq!(value("on"), Value::Str("on".into()));
        assert_eq!(value("-12"), Value::Int(-12));
        assert_eq!(value("+7"), Value::Int(7));
        assert_eq!(value("0x1f"), Value::Int(31));
        assert_eq!(value("0o17"), Value::Int(15));
        assert_eq!(value("00123"), Value::Str("00123".into()));
        assert_eq!(value("-9223372036854775808"), Value::Int(i64::MIN));
        assert_eq!(value("99999999999999999999999"), Value::Float(1e23));
        assert_eq!(value("1.5"), Value::Float(1.5));
        assert_eq!(value("1e3"), Value::Float(1000.0));
        assert_eq!(value(".5"), Value::Float(0.5));
        assert_eq!(value("-.inf"), Value::Float(f64::NEG_INFINITY));
        assert!(matches!(value(".nan"), Value::Float(f) if f.is_nan()));
        assert_eq!(value("1e309"), Value::Float(f64::INFINITY));
        for text in ["inf", "nan", "1e", "1.2.3", "1_000", "0x", "12abc", "-x", "+33612345678x", "1:30"] {
            assert_eq!(value(text), Value::Str(text.into()), "{text}");
        }
        assert_eq!(value("'12'"), Value::Str("12".into()));
        assert_eq!(value("|\n  a\n  b\n"), Value::Str("a\nb\n".into()));
    }

    #[test]
    fn tags_are_honoured_or_refused() {
        assert_eq!(value("!!str 12"), Value::Str("12".into()));
        assert_eq!(value("! 12"), Value::Str("12".into()));
        assert_eq!(value("!!int '12'"), Value::Int(12));
        assert_eq!(value("!!float 2"), Value::Float(2.0));
        assert_eq!(value("!!bool 'true'"), Value::Bool(true));
        let (message, line, col) = error_at("a: 1\nv: !!int twelve\n");
        assert!(message.contains("`twelve` is not a 64-bit integer"), "{message}");
        assert_eq!((line, col), (2, 10));
        let (message, line, col) = error_at("v: !!binary aGk=\n");
        assert!(message.contains("tag `!!binary` is not supported"), "{message}");
        assert_eq!((line, col), (1, 4));
        assert!(error_at("v: !Ref x\n").0.contains("`!Ref`"));
        assert!(error_at("v: !custom {a: 1}\n").0.contains("`!custom`"));
        assert_eq!(
            value("!!seq [1]"),
            Value::Seq(vec![Node { value: Value::Int(1), span: Span::new(1, 11, 1), expanded: false }])
        );
    }

    #[test]
    fn keys_keep_their_text_and_positions() {
        let n = yaml("0x10: a\n~: b\n'q': c\n1.0: d\n").unwrap();
        let keys: Vec<_> =
            n.as_map().unwrap().iter().map(|(k, _)| (k.name.as_str(), k.span.line, k.span.col)).collect();
        assert_eq!(keys, vec![("0x10", 1, 1), ("~", 2, 1), ("q", 3, 1), ("1.0", 4, 1)]);
        let (message, line, _) = error_at("a: 1\n? [x, y]\n: 2\n");
        assert!(message.contains("mapping key must be a plain value"), "{message}");
        assert_eq!(line, 2);
    }

    #[test]
    fn anchors_aliases_and_merge_keys() {
        let n = yaml("base: &b\n  type: sql\n  group: g\nx:\n  <<: *b\n  group: mine\n  '<<': kept\ny: *b\nz:\n  <<: [{a: 1}, {a: 2, b: 3}]\n").unwrap();
        let x = n.get("x").unwrap();
        assert_eq!(x.get("group").unwrap().value, Value::Str("mine".into()), "a written key wins over a merged one");
        assert_eq!(x.get("type").unwrap().value, Value::Str("sql".into()));
        assert_eq!(x.get("type").unwrap().span.line, 2, "a merged value keeps where it was written");
        assert_eq!(x.get("<<").unwrap().value, Value::Str("kept".into()), "a quoted `<<` is a key");
        assert_eq!(n.get("y").unwrap(), n.get("base").unwrap());
        let z = n.get("z").unwrap();
        assert_eq!(
            (z.get("a").unwrap().value.clone(), z.get("b").unwrap().value.clone()),
            (Value::Int(1), Value::Int(3))
        );
        let (message, line, _) = error_at("a: &s x\nb:\n  <<: *s\n");
        assert!(message.contains("`<<` merges a mapping"), "{message}");
        assert_eq!(line, 1, "at the merged value");
        let (message, line, col) = error_at("a: 1\nb: *nope\n");
        assert!(message.contains("nope") || message.contains("anchor"), "{message}");
        assert_eq!((line, col), (2, 4));
    }

    #[test]
    fn alias_bombs_and_deep_nesting_are_located_errors() {
        let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..9 {
            let p = i - 1;
            text.push_str(&format!(
                "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
            ));
        }
        let (message, line, _) = error_at(&text);
        assert!(message.contains("aliases copy more than"), "{message}");
        assert!(line > 1);

        let deep = format!("v: {}1{}\n", "[".repeat(40), "]".repeat(40));
        assert!(error_at(&deep).1 == 1);
        let deep = format!("a: &a {}1{}\nb: {}*a{}\n", "[".repeat(20), "]".repeat(20), "[".repeat(20), "]".repeat(20));
        let (message, line, _) = error_at(&deep);
        assert!(message.contains("nests more than 32 levels"), "{message}");
        assert_eq!(line, 2);
    }

    #[test]
    fn one_document_per_file() {
        let (message, line, _) = error_at("a: 1\n---\nb: 2\n");
        assert!(message.contains("second YAML document"), "{message}");
        assert_eq!(line, 2);
        assert!(yaml("---\na: 1\n").is_ok());
        assert!(yaml("---\n...\n").unwrap().as_map().unwrap().is_empty());
    }
}
