//! A format-neutral tree of configuration values, each with its position in the file.
//!
//! `phlo.yaml` and `phlo.toml` are both parsed into a [`Node`] first; every later phase
//! (environment expansion, typed sections, plugin configs) reads the tree, so a value's
//! `file:line:col` is never lost. YAML is read in [`super::yaml`], TOML here.

use std::sync::Arc;

use crate::diagnostic::{Code, Diagnostic, Diagnostics, SourceFile, Span};

/// One value in a configuration file.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// The value.
    pub value: Value,
    /// Where it is.
    pub span: Span,
    /// The value came out of `${VAR}` expansion (a string that typed fields may read as a
    /// number or boolean).
    pub expanded: bool,
}

/// A mapping key with its position.
#[derive(Debug, Clone, PartialEq)]
pub struct Key {
    /// The key's text.
    pub name: String,
    /// Where it is.
    pub span: Span,
}

/// The value of a [`Node`].
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `null`, `~` or nothing.
    Null,
    /// `true` / `false` only: YAML 1.1 words such as `yes` or `on` stay strings.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A floating-point number.
    Float(f64),
    /// A string (TOML datetimes are kept as their text).
    Str(String),
    /// A sequence.
    Seq(Vec<Node>),
    /// A mapping, in file order.
    Map(Vec<(Key, Node)>),
}

impl Value {
    /// What the value is, for messages: "a string", "a mapping", …
    pub fn describe(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Int(_) => "an integer",
            Value::Float(_) => "a number",
            Value::Str(_) => "a string",
            Value::Seq(_) => "a list",
            Value::Map(_) => "a mapping",
        }
    }
}

impl Node {
    /// A node without a known position (used for defaults).
    pub fn null() -> Self {
        Self { value: Value::Null, span: Span::default(), expanded: false }
    }

    /// An empty mapping without a known position.
    pub fn empty_map() -> Self {
        Self { value: Value::Map(Vec::new()), span: Span::default(), expanded: false }
    }

    /// The mapping entries, if this is a mapping.
    pub fn as_map(&self) -> Option<&[(Key, Node)]> {
        match &self.value {
            Value::Map(m) => Some(m),
            _ => None,
        }
    }

    /// The string, if this is a string.
    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The value under `key`, if this is a mapping that has it.
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.as_map()?.iter().find(|(k, _)| k.name == key).map(|(_, v)| v)
    }

    /// A tree from JSON, without positions (configs written in code rather than a file).
    pub fn from_json(value: &serde_json::Value) -> Self {
        use serde_json::Value as J;
        let value = match value {
            J::Null => Value::Null,
            J::Bool(b) => Value::Bool(*b),
            J::Number(n) => n.as_i64().map_or_else(|| Value::Float(n.as_f64().unwrap_or(f64::NAN)), Value::Int),
            J::String(s) => Value::Str(s.clone()),
            J::Array(items) => Value::Seq(items.iter().map(Node::from_json).collect()),
            J::Object(m) => Value::Map(
                m.iter().map(|(k, v)| (Key { name: k.clone(), span: Span::default() }, Node::from_json(v))).collect(),
            ),
        };
        Self { value, span: Span::default(), expanded: false }
    }

    /// Converts to JSON (for plugin configs handed over as `serde_json::Value`).
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match &self.value {
            Value::Null => J::Null,
            Value::Bool(b) => J::Bool(*b),
            Value::Int(i) => J::from(*i),
            Value::Float(f) => serde_json::Number::from_f64(*f).map_or(J::Null, J::Number),
            Value::Str(s) => J::String(s.clone()),
            Value::Seq(items) => J::Array(items.iter().map(Node::to_json).collect()),
            Value::Map(entries) => J::Object(entries.iter().map(|(k, v)| (k.name.clone(), v.to_json())).collect()),
        }
    }
}

/// The format of a configuration file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `phlo.yaml` / `phlo.yml`.
    Yaml,
    /// `phlo.toml`.
    Toml,
}

/// Parses a file into a [`Node`] tree. Duplicate keys are all reported, each naming
/// where the key was first defined.
///
/// # Errors
/// Syntax errors (`PHLO-E002`) and duplicate keys (`PHLO-E005`), with positions.
pub fn parse(source: &Arc<SourceFile>, format: Format) -> Result<Node, Diagnostics> {
    let node = match format {
        Format::Yaml => super::yaml::parse_yaml(source)?,
        Format::Toml => parse_toml(source)?,
    };
    let mut diags = Diagnostics::new();
    check_duplicates(source, &node, &mut diags);
    if diags.has_errors() { Err(diags) } else { Ok(node) }
}

/// Reports keys repeated within a mapping, at any depth: linear in the size of the tree, and
/// iterative, so neither a mapping of 100,000 keys nor a deeply nested document is a problem.
fn check_duplicates(source: &Arc<SourceFile>, node: &Node, diags: &mut Diagnostics) {
    let mut stack: Vec<&Node> = vec![node];
    while let Some(node) = stack.pop() {
        match &node.value {
            Value::Map(entries) => {
                let mut first: std::collections::HashMap<&str, Span> =
                    std::collections::HashMap::with_capacity(entries.len());
                for (k, _) in entries {
                    if let Some(at) = first.get(k.name.as_str()) {
                        diags.push(
                            Diagnostic::error(Code::DuplicateKey, format!("duplicate key `{}`", k.name))
                                .at(source, k.span)
                                .with_label("defined again here")
                                .with_note(format!("first defined at {}:{}:{}", source.path.display(), at.line, at.col))
                                .with_help("remove one of the two entries or merge them"),
                        );
                    } else {
                        first.insert(&k.name, k.span);
                    }
                }
                stack.extend(entries.iter().rev().map(|(_, v)| v));
            }
            Value::Seq(items) => stack.extend(items.iter().rev()),
            _ => {}
        }
    }
}

// ---------------------------------------------------------------- TOML

fn parse_toml(source: &Arc<SourceFile>) -> Result<Node, Diagnostics> {
    match toml::de::DeTable::parse(&source.text) {
        Ok(table) => {
            let span = toml_span(source, &table.span());
            Ok(Node { value: toml_table(source, table.get_ref()), span, expanded: false })
        }
        Err(e) => {
            let span = e.span().map(|r| toml_span(source, &r)).unwrap_or_default();
            Err(Diagnostic::error(Code::Syntax, format!("invalid TOML: {}", e.message().trim()))
                .at(source, span)
                .with_help("fix the TOML syntax at this position")
                .into())
        }
    }
}

fn toml_span(source: &SourceFile, range: &std::ops::Range<usize>) -> Span {
    let (line, col) = source.line_col(range.start);
    let text = source.text.get(range.clone()).unwrap_or("");
    let len = text.lines().next().unwrap_or("").chars().count();
    Span::new(line, col, len.max(1) as u32)
}

fn toml_table(source: &SourceFile, table: &toml::de::DeTable<'_>) -> Value {
    Value::Map(
        table
            .iter()
            .map(|(k, v)| {
                let key = Key { name: k.get_ref().to_string(), span: toml_span(source, &k.span()) };
                (key, toml_node(source, v))
            })
            .collect(),
    )
}

fn toml_node(source: &SourceFile, v: &toml::Spanned<toml::de::DeValue<'_>>) -> Node {
    use toml::de::DeValue;
    let span = toml_span(source, &v.span());
    let value = match v.get_ref() {
        DeValue::String(s) => Value::Str(s.to_string()),
        DeValue::Integer(i) => {
            let text = i.as_str().replace('_', "");
            let digits = text.trim_start_matches(['+', '-']);
            let neg = text.starts_with('-');
            let parsed = match i.radix() {
                10 => text.parse::<i64>().ok(),
                r => {
                    let body = digits.trim_start_matches("0x").trim_start_matches("0o").trim_start_matches("0b");
                    i64::from_str_radix(body, r).ok().map(|x| if neg { -x } else { x })
                }
            };
            parsed.map_or_else(|| Value::Str(text.clone()), Value::Int)
        }
        DeValue::Float(f) => {
            let text = f.as_str().replace('_', "");
            match text.as_str() {
                "inf" | "+inf" => Value::Float(f64::INFINITY),
                "-inf" => Value::Float(f64::NEG_INFINITY),
                "nan" | "+nan" | "-nan" => Value::Float(f64::NAN),
                t => t.parse::<f64>().map_or_else(|_| Value::Str(text.clone()), Value::Float),
            }
        }
        DeValue::Boolean(b) => Value::Bool(*b),
        DeValue::Datetime(d) => Value::Str(d.to_string()),
        DeValue::Array(items) => Value::Seq(items.iter().map(|i| toml_node(source, i)).collect()),
        DeValue::Table(t) => toml_table(source, t),
    };
    Node { value, span, expanded: false }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn yaml(text: &str) -> Result<Node, Diagnostics> {
        parse(&SourceFile::new("phlo.yaml", text), Format::Yaml)
    }

    #[test]
    fn yaml_values_and_positions() {
        let n = yaml("name: shop\nplugins:\n  strict: true\n  deny: [a, b]\nn: 3\nf: 1.5\nx: ~\n").unwrap();
        let name = n.get("name").unwrap();
        assert_eq!(name.value, Value::Str("shop".into()));
        assert_eq!((name.span.line, name.span.col), (1, 7));
        let strict = n.get("plugins").unwrap().get("strict").unwrap();
        assert_eq!(strict.value, Value::Bool(true));
        assert_eq!((strict.span.line, strict.span.col), (3, 11));
        assert_eq!(n.get("n").unwrap().value, Value::Int(3));
        assert_eq!(n.get("f").unwrap().value, Value::Float(1.5));
        assert_eq!(n.get("x").unwrap().value, Value::Null);
        let keys: Vec<_> =
            n.as_map().unwrap().iter().map(|(k, _)| (k.name.as_str(), k.span.line, k.span.col)).collect();
        assert_eq!(keys[1], ("plugins", 2, 1));
    }

    #[test]
    fn yaml_booleans_are_strict() {
        let n = yaml("a: yes\nb: on\nc: 'true'\nd: false\n").unwrap();
        assert_eq!(n.get("a").unwrap().value, Value::Str("yes".into()));
        assert_eq!(n.get("b").unwrap().value, Value::Str("on".into()));
        assert_eq!(n.get("c").unwrap().value, Value::Str("true".into()));
        assert_eq!(n.get("d").unwrap().value, Value::Bool(false));
    }

    #[test]
    fn yaml_duplicates_are_all_reported() {
        let e = yaml("a: 1\nb: 2\na: 3\nm:\n  x: 1\n  x: 2\n").unwrap_err();
        let v: Vec<_> = e.iter().map(|d| (d.code, d.location.as_ref().unwrap().span.line)).collect();
        assert_eq!(v, vec![(Code::DuplicateKey, 3), (Code::DuplicateKey, 6)]);
        assert!(e.iter().next().unwrap().notes[0].contains("phlo.yaml:1:1"));
    }

    #[test]
    fn yaml_syntax_error_has_a_position() {
        let e = yaml("a: [1, 2\nb: 3\n").unwrap_err();
        let d = e.iter().next().unwrap();
        assert_eq!(d.code, Code::Syntax);
        assert!(d.location.as_ref().unwrap().span.is_known(), "{d:?}");
    }

    #[test]
    fn empty_yaml_is_an_empty_map() {
        assert_eq!(yaml("").unwrap().as_map().unwrap().len(), 0);
        assert_eq!(yaml("# only a comment\n").unwrap().as_map().unwrap().len(), 0);
    }

    #[test]
    fn toml_values_and_positions() {
        let src = SourceFile::new(
            "phlo.toml",
            "name = \"shop\"\n[plugins]\nstrict = true\ndeny = [\"a\"]\n[x]\nn = 0x10\nf = 2.5\n",
        );
        let n = parse(&src, Format::Toml).unwrap();
        let strict = n.get("plugins").unwrap().get("strict").unwrap();
        assert_eq!(strict.value, Value::Bool(true));
        assert_eq!((strict.span.line, strict.span.col), (3, 10));
        assert_eq!(n.get("x").unwrap().get("n").unwrap().value, Value::Int(16));
        assert_eq!(n.get("x").unwrap().get("f").unwrap().value, Value::Float(2.5));
    }

    #[test]
    fn toml_syntax_error_has_a_position() {
        let src = SourceFile::new("phlo.toml", "name = \n");
        let e = parse(&src, Format::Toml).unwrap_err();
        let d = e.iter().next().unwrap();
        assert_eq!(d.code, Code::Syntax);
        assert_eq!(d.location.as_ref().unwrap().span.line, 1);
    }
}
