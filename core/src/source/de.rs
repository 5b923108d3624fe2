//! Typed views of a [`Node`]: a serde `Deserializer` whose errors carry the position of the
//! value that caused them, and which collects *every* unknown key of a struct (with a
//! did-you-mean) instead of stopping at the first.
//!
//! Plugin configs are plain `#[derive(Deserialize, JsonSchema)]` structs; they are read
//! through [`from_node`], so their errors point at `phlo.yaml:line:col` too. (Avoid
//! `#[serde(flatten)]` in config types: it hides the field list that unknown-key checks use.)

use std::cell::RefCell;
use std::fmt;
use std::sync::Arc;

use schemars::JsonSchema;
use serde::de::{self, DeserializeOwned, DeserializeSeed, IntoDeserializer, Visitor};
use serde::{Deserialize, Deserializer};

use super::node::{Key, Node, Value};
use crate::diagnostic::{Code, Diagnostic, Diagnostics, SourceFile, Span, did_you_mean};

/// An error found while reading a typed value out of a [`Node`].
#[derive(Debug, Clone, PartialEq)]
pub struct NodeError {
    /// Which problem.
    pub code: Code,
    /// What is wrong.
    pub message: String,
    /// Where (unknown until the failing node is known).
    pub span: Span,
    /// How to fix it.
    pub help: Option<String>,
}

impl NodeError {
    /// Turns the error into a diagnostic pointing into `source`.
    pub fn into_diagnostic(self, source: &Arc<SourceFile>) -> Diagnostic {
        let mut d = Diagnostic::error(self.code, self.message);
        if self.span.is_known() {
            d = d.at(source, self.span);
        } else {
            d.location = Some(crate::diagnostic::Location { source: Arc::clone(source), span: self.span });
        }
        if let Some(h) = self.help {
            d = d.with_help(h);
        }
        d
    }
}

impl fmt::Display for NodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.message)
    }
}

impl std::error::Error for NodeError {}

impl de::Error for NodeError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Self { code: Code::InvalidValue, message: msg.to_string(), span: Span::default(), help: None }
    }

    fn missing_field(field: &'static str) -> Self {
        Self {
            code: Code::InvalidValue,
            message: format!("missing required key `{field}`"),
            span: Span::default(),
            help: Some(format!("add `{field}: …` here")),
        }
    }
}

/// Reads `T` from `node`. Every unknown key and every wrongly typed value is reported
/// (the read goes on with a placeholder after each); an error a type's own `Deserialize`
/// returns (a missing required key, a custom check) stops that struct.
///
/// # Errors
/// All problems found, as diagnostics pointing into `source`.
pub fn from_node<T: DeserializeOwned>(
    node: &Node,
    source: &Arc<SourceFile>,
    extra_keys: &[&str],
) -> Result<T, Diagnostics> {
    let errors = RefCell::new(Vec::new());
    let ctx = Ctx { errors: &errors, extra_keys, depth: 0 };
    let result = T::deserialize(NodeDe { node, ctx: &ctx });
    let mut found = errors.into_inner();
    match result {
        Ok(v) if found.is_empty() => return Ok(v),
        Ok(_) => {}
        Err(e) if e.code == Code::Internal && e.message.is_empty() => {} // already recorded
        Err(e) => found.push(e),
    }
    found.sort_by_key(|e| e.span);
    found.dedup();
    let mut diags = Diagnostics::new();
    diags.extend(found.into_iter().map(|e| e.into_diagnostic(source)));
    Err(diags)
}

/// An error that was recorded already: it stops the read without being reported twice.
fn reported() -> NodeError {
    NodeError { code: Code::Internal, message: String::new(), span: Span::default(), help: None }
}

struct Ctx<'a> {
    errors: &'a RefCell<Vec<NodeError>>,
    /// Extra did-you-mean candidates for the outermost struct (e.g. the common asset keys).
    extra_keys: &'a [&'a str],
    depth: usize,
}

impl Ctx<'_> {
    fn child(&self) -> Ctx<'_> {
        Ctx { errors: self.errors, extra_keys: self.extra_keys, depth: self.depth + 1 }
    }

    fn record(&self, e: NodeError) {
        self.errors.borrow_mut().push(e);
    }
}

struct NodeDe<'a, 'c> {
    node: &'a Node,
    ctx: &'a Ctx<'c>,
}

impl NodeDe<'_, '_> {
    fn locate<T>(&self, r: Result<T, NodeError>) -> Result<T, NodeError> {
        r.map_err(|mut e| {
            if !e.span.is_known() {
                e.span = self.node.span;
            }
            e
        })
    }

    fn found(&self) -> String {
        match &self.node.value {
            Value::Str(s) => format!("the string `{s}`"),
            Value::Int(i) => format!("the integer {i}"),
            Value::Float(f) => format!("the number {f}"),
            Value::Bool(b) => format!("the boolean {b}"),
            v => v.describe().to_string(),
        }
    }

    fn type_error(&self, expected: &str) -> NodeError {
        NodeError {
            code: Code::InvalidValue,
            message: format!("expected {expected}, found {}", self.found()),
            span: self.node.span,
            help: None,
        }
    }

    /// Numbers and booleans that came from `${VAR}` expansion are strings; read them as
    /// the type the field asks for.
    fn scalar(&self) -> Value {
        match &self.node.value {
            Value::Str(s) if self.node.expanded => {
                let s = s.trim();
                if s == "true" || s == "false" {
                    Value::Bool(s == "true")
                } else if let Ok(i) = s.parse::<i64>() {
                    Value::Int(i)
                } else {
                    s.parse::<f64>().map_or_else(|_| self.node.value.clone(), Value::Float)
                }
            }
            v => v.clone(),
        }
    }

    fn visit_value<'de, V: Visitor<'de>>(&self, value: &Value, visitor: V) -> Result<V::Value, NodeError> {
        match value {
            Value::Null => visitor.visit_unit(),
            Value::Bool(b) => visitor.visit_bool(*b),
            Value::Int(i) => visitor.visit_i64(*i),
            Value::Float(f) => visitor.visit_f64(*f),
            Value::Str(s) => visitor.visit_str(s),
            Value::Seq(items) => visitor.visit_seq(SeqDe { items: items.iter(), ctx: self.ctx }),
            Value::Map(entries) => {
                visitor.visit_map(MapDe { entries: entries.iter(), value: None, fields: None, ctx: self.ctx })
            }
        }
    }

    /// An integer in `[min, max]`; otherwise the error is recorded and 0 stands in.
    fn integer<'de, V: Visitor<'de>>(self, min: i128, max: i128, visitor: V) -> Result<V::Value, NodeError> {
        let ok = match self.scalar() {
            Value::Int(i) if i128::from(i) >= min && i128::from(i) <= max => Some(i),
            Value::Int(_) => {
                let range = if min == 0 && max >= i128::from(u32::MAX) {
                    String::from("a non-negative integer")
                } else {
                    format!("an integer from {min} to {max}")
                };
                let mut e = self.type_error(&range);
                e.message = format!("{} is out of range: expected {range}", self.found());
                self.ctx.record(e);
                None
            }
            _ => {
                self.ctx.record(self.type_error("an integer"));
                None
            }
        };
        let r = match ok {
            Some(i) if min < 0 => visitor.visit_i64(i),
            Some(i) => visitor.visit_u64(i as u64),
            None if min < 0 => visitor.visit_i64(0),
            None => visitor.visit_u64(0),
        };
        self.locate(r)
    }

    fn float<'de, V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, NodeError> {
        let r = match self.scalar() {
            Value::Int(i) => visitor.visit_f64(i as f64),
            Value::Float(f) => visitor.visit_f64(f),
            _ => {
                self.ctx.record(self.type_error("a number"));
                visitor.visit_f64(0.0)
            }
        };
        self.locate(r)
    }

    fn empty_map<'de, V: Visitor<'de>>(
        &self,
        visitor: V,
        fields: Option<&'static [&'static str]>,
    ) -> Result<V::Value, NodeError> {
        visitor.visit_map(MapDe { entries: [].iter(), value: None, fields, ctx: self.ctx })
    }
}

const BOOLISH: &[&str] = &["yes", "no", "on", "off", "y", "n", "True", "False", "TRUE", "FALSE", "Yes", "No"];

macro_rules! integers {
    ($($m:ident: $t:ty)*) => {$(
        fn $m<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, NodeError> {
            self.integer(i128::from(<$t>::MIN), i128::from(<$t>::MAX), visitor)
        }
    )*};
}

impl<'de> Deserializer<'de> for NodeDe<'_, '_> {
    type Error = NodeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, NodeError> {
        let r = self.visit_value(&self.node.value, visitor);
        self.locate(r)
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, NodeError> {
        match self.scalar() {
            Value::Bool(b) => self.locate(visitor.visit_bool(b)),
            other => {
                let mut e = self.type_error("a boolean (`true` or `false`)");
                if let Value::Str(s) = other
                    && BOOLISH.contains(&s.as_str())
                {
                    e.help = Some(format!(
                        "phlo reads booleans strictly: write `{}` instead of `{s}`",
                        matches!(s.to_ascii_lowercase().as_str(), "yes" | "on" | "y" | "true")
                    ));
                }
                self.ctx.record(e);
                visitor.visit_bool(false)
            }
        }
    }

    integers!(deserialize_i8: i8 deserialize_i16: i16 deserialize_i32: i32 deserialize_i64: i64
              deserialize_u8: u8 deserialize_u16: u16 deserialize_u32: u32 deserialize_u64: u64);

    fn deserialize_i128<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, NodeError> {
        self.integer(i128::from(i64::MIN), i128::from(i64::MAX), visitor)
    }

    fn deserialize_u128<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, NodeError> {
        self.integer(0, i128::from(i64::MAX), visitor)
    }

    fn deserialize_f32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, NodeError> {
        self.float(visitor)
    }

    fn deserialize_f64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, NodeError> {
        self.float(visitor)
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, NodeError> {
        match &self.node.value {
            Value::Str(s) => self.locate(visitor.visit_str(s)),
            _ => {
                self.ctx.record(self.type_error("a string"));
                visitor.visit_str("")
            }
        }
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, NodeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_char<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, NodeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, NodeError> {
        match &self.node.value {
            Value::Null => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, NodeError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, NodeError> {
        match &self.node.value {
            Value::Seq(_) => self.deserialize_any(visitor),
            _ => {
                let mut e = self.type_error("a list");
                if matches!(self.node.value, Value::Str(_)) {
                    e.help = Some(format!("write a list: `[{}]`", self.node.as_str().unwrap_or_default()));
                }
                self.ctx.record(e);
                visitor.visit_seq(SeqDe { items: [].iter(), ctx: self.ctx })
            }
        }
    }

    fn deserialize_tuple<V: Visitor<'de>>(self, _len: usize, visitor: V) -> Result<V::Value, NodeError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, NodeError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, NodeError> {
        match &self.node.value {
            Value::Map(_) => self.deserialize_any(visitor),
            Value::Null => self.locate(self.empty_map(visitor, None)),
            _ => {
                self.ctx.record(self.type_error("a mapping"));
                self.empty_map(visitor, None)
            }
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, NodeError> {
        if name == SPANNED_MARKER {
            return visitor.visit_map(SpannedDe { node: self.node, ctx: self.ctx, step: 0 });
        }
        let entries = match &self.node.value {
            Value::Map(entries) => entries.as_slice(),
            // An empty section (`plugins:` with nothing under it) reads as all defaults.
            Value::Null => &[],
            _ => {
                self.ctx.record(self.type_error("a mapping"));
                return Err(reported());
            }
        };
        let r = visitor.visit_map(MapDe { entries: entries.iter(), value: None, fields: Some(fields), ctx: self.ctx });
        self.locate(r)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, NodeError> {
        let r = match &self.node.value {
            Value::Str(s) if variants.contains(&s.as_str()) => visitor.visit_enum(s.as_str().into_deserializer()),
            Value::Str(s) => {
                let help = did_you_mean(s, variants.iter().copied()).map(|x| format!("did you mean `{x}`?"));
                self.ctx.record(NodeError {
                    code: Code::InvalidValue,
                    message: format!("unknown value `{s}`, expected one of {}", list(variants)),
                    span: self.node.span,
                    help,
                });
                // the first variant stands in (a unit variant for every enum phlo reads this way)
                let first: serde::de::value::StrDeserializer<'_, NodeError> = variants[0].into_deserializer();
                return visitor.visit_enum(first).map_err(|_| reported());
            }
            Value::Map(entries) if entries.len() == 1 && !variants.contains(&entries[0].0.name.as_str()) => {
                let key = &entries[0].0;
                let help = did_you_mean(&key.name, variants.iter().copied()).map(|x| format!("did you mean `{x}`?"));
                self.ctx.record(NodeError {
                    code: Code::UnknownKey,
                    message: format!("unknown key `{}`, expected one of {}", key.name, list(variants)),
                    span: key.span,
                    help,
                });
                return Err(reported());
            }
            Value::Map(entries) if entries.len() == 1 => {
                visitor.visit_enum(EnumDe { key: &entries[0].0, value: &entries[0].1, ctx: self.ctx })
            }
            _ => {
                self.ctx.record(self.type_error(&format!("one of {}", list(variants))));
                return Err(reported());
            }
        };
        self.locate(r)
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, NodeError> {
        self.deserialize_any(visitor)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, NodeError> {
        visitor.visit_unit()
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, NodeError> {
        self.deserialize_any(visitor)
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(self, _name: &'static str, visitor: V) -> Result<V::Value, NodeError> {
        self.deserialize_any(visitor)
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, NodeError> {
        self.deserialize_any(visitor)
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, NodeError> {
        self.deserialize_any(visitor)
    }
}

fn list(items: &[&str]) -> String {
    items.iter().map(|v| format!("`{v}`")).collect::<Vec<_>>().join(", ")
}

struct SeqDe<'a, 'c> {
    items: std::slice::Iter<'a, Node>,
    ctx: &'a Ctx<'c>,
}

impl<'de> de::SeqAccess<'de> for SeqDe<'_, '_> {
    type Error = NodeError;

    fn next_element_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<Option<T::Value>, NodeError> {
        match self.items.next() {
            Some(node) => seed.deserialize(NodeDe { node, ctx: &self.ctx.child() }).map(Some),
            None => Ok(None),
        }
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.items.len())
    }
}

struct MapDe<'a, 'c> {
    entries: std::slice::Iter<'a, (Key, Node)>,
    value: Option<&'a Node>,
    /// The struct's fields, when reading a struct: other keys are reported and skipped.
    fields: Option<&'static [&'static str]>,
    ctx: &'a Ctx<'c>,
}

impl<'de> de::MapAccess<'de> for MapDe<'_, '_> {
    type Error = NodeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, NodeError> {
        for (key, value) in self.entries.by_ref() {
            if let Some(fields) = self.fields
                && !fields.contains(&key.name.as_str())
            {
                let extra: &[&str] = if self.ctx.depth == 0 { self.ctx.extra_keys } else { &[] };
                let candidates = fields.iter().chain(extra.iter()).copied();
                let help = match did_you_mean(&key.name, candidates) {
                    Some(s) => format!("did you mean `{s}`?"),
                    None => format!("expected one of {}", list(fields)),
                };
                self.ctx.record(NodeError {
                    code: Code::UnknownKey,
                    message: format!("unknown key `{}`", key.name),
                    span: key.span,
                    help: Some(help),
                });
                continue;
            }
            self.value = Some(value);
            let r = seed.deserialize(key.name.as_str().into_deserializer()).map(Some);
            return r.map_err(|mut e: NodeError| {
                if !e.span.is_known() {
                    e.span = key.span;
                }
                e
            });
        }
        Ok(None)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, NodeError> {
        let node = self.value.take().ok_or_else(|| de::Error::custom("value requested before key"))?;
        seed.deserialize(NodeDe { node, ctx: &self.ctx.child() })
    }
}

struct EnumDe<'a, 'c> {
    key: &'a Key,
    value: &'a Node,
    ctx: &'a Ctx<'c>,
}

impl<'de> de::EnumAccess<'de> for EnumDe<'_, '_> {
    type Error = NodeError;
    type Variant = Self;

    fn variant_seed<V: DeserializeSeed<'de>>(self, seed: V) -> Result<(V::Value, Self), NodeError> {
        let v = seed.deserialize(self.key.name.as_str().into_deserializer()).map_err(|mut e: NodeError| {
            e.span = self.key.span;
            e
        })?;
        Ok((v, self))
    }
}

impl<'de> de::VariantAccess<'de> for EnumDe<'_, '_> {
    type Error = NodeError;

    fn unit_variant(self) -> Result<(), NodeError> {
        Ok(())
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, NodeError> {
        seed.deserialize(NodeDe { node: self.value, ctx: &self.ctx.child() })
    }

    fn tuple_variant<V: Visitor<'de>>(self, _len: usize, visitor: V) -> Result<V::Value, NodeError> {
        NodeDe { node: self.value, ctx: &self.ctx.child() }.deserialize_seq(visitor)
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, NodeError> {
        NodeDe { node: self.value, ctx: &self.ctx.child() }.deserialize_struct("", fields, visitor)
    }
}

// ---------------------------------------------------------------- Spanned

const SPANNED_MARKER: &str = "$phlo::Spanned";
const SPANNED_FIELDS: &[&str] = &["$span", "$value"];

/// A config value together with where it was written, for later diagnostics
/// (e.g. "`capabilities.defaults.table_store` names `iceberg`, which no plugin provides").
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Spanned<T> {
    /// The value.
    pub value: T,
    /// Where it was written (unknown for values that did not come from a file).
    pub span: Span,
}

impl<T> Spanned<T> {
    /// A value that was not read from a file.
    pub fn unlocated(value: T) -> Self {
        Self { value, span: Span::default() }
    }
}

impl<T> std::ops::Deref for Spanned<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.value
    }
}

impl<T: serde::Serialize> serde::Serialize for Spanned<T> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.value.serialize(s)
    }
}

impl<T: JsonSchema> JsonSchema for Spanned<T> {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        T::schema_name()
    }
    fn schema_id() -> std::borrow::Cow<'static, str> {
        T::schema_id()
    }
    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        T::json_schema(generator)
    }
    fn inline_schema() -> bool {
        T::inline_schema()
    }
}

fn pack(span: Span) -> u64 {
    (u64::from(span.line) << 40) | (u64::from(span.col & 0xF_FFFF) << 20) | u64::from(span.len & 0xF_FFFF)
}

fn unpack(v: u64) -> Span {
    Span::new((v >> 40) as u32, ((v >> 20) & 0xF_FFFF) as u32, (v & 0xF_FFFF) as u32)
}

struct SpannedDe<'a, 'c> {
    node: &'a Node,
    ctx: &'a Ctx<'c>,
    step: u8,
}

impl<'de> de::MapAccess<'de> for SpannedDe<'_, '_> {
    type Error = NodeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, NodeError> {
        match self.step {
            0 | 1 => seed.deserialize(SPANNED_FIELDS[usize::from(self.step)].into_deserializer()).map(Some),
            _ => Ok(None),
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, NodeError> {
        self.step += 1;
        if self.step == 1 {
            seed.deserialize(pack(self.node.span).into_deserializer())
        } else {
            seed.deserialize(NodeDe { node: self.node, ctx: self.ctx })
        }
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Spanned<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = Spanned<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a value")
            }
            fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<Spanned<T>, A::Error> {
                let mut span = Span::default();
                let mut value = None;
                while let Some(k) = map.next_key::<String>()? {
                    if k == SPANNED_FIELDS[0] {
                        span = unpack(map.next_value::<u64>()?);
                    } else {
                        value = Some(map.next_value::<T>()?);
                    }
                }
                value.map(|value| Spanned { value, span }).ok_or_else(|| de::Error::missing_field("$value"))
            }
        }
        d.deserialize_struct(SPANNED_MARKER, SPANNED_FIELDS, V(std::marker::PhantomData))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::node::{Format, parse};
    use std::collections::BTreeMap;

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Cfg {
        #[serde(default)]
        name: Option<String>,
        #[serde(default)]
        strict: bool,
        #[serde(default)]
        rows: u32,
        #[serde(default)]
        level: Option<Level>,
        #[serde(default)]
        tags: BTreeMap<String, String>,
        #[serde(default)]
        deps: Vec<Spanned<String>>,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(rename_all = "lowercase")]
    enum Level {
        Info,
        Warn,
    }

    fn read(text: &str) -> Result<Cfg, Diagnostics> {
        let src = SourceFile::new("phlo.yaml", text);
        let node = parse(&src, Format::Yaml)?;
        from_node(&node, &src, &[])
    }

    fn errors(text: &str) -> Vec<String> {
        read(text).unwrap_err().iter().map(|d| d.to_string()).collect()
    }

    #[test]
    fn reads_a_struct() {
        let c = read("name: x\nstrict: true\nrows: 3\nlevel: warn\ntags: {a: b}\ndeps: [p, q]\n").unwrap();
        assert_eq!(c.rows, 3);
        assert_eq!(c.level, Some(Level::Warn));
        assert_eq!(c.deps[1].value, "q");
        assert_eq!((c.deps[1].span.line, c.deps[1].span.col), (6, 11));
    }

    #[test]
    fn every_unknown_key_is_reported_with_a_suggestion() {
        let e = errors("nmae: x\nstrcit: true\nrows: 1\nzzzz: 1\n");
        assert_eq!(e.len(), 3, "{e:?}");
        assert!(e[0].contains("phlo.yaml:1:1") && e[0].contains("did you mean `name`"), "{e:?}");
        assert!(e[1].contains("phlo.yaml:2:1") && e[1].contains("did you mean `strict`"), "{e:?}");
        assert!(e[2].contains("expected one of"), "{e:?}");
    }

    #[test]
    fn type_errors_point_at_the_value() {
        let e = errors("rows: many\n");
        assert!(e[0].contains("phlo.yaml:1:7") && e[0].contains("expected an integer"), "{e:?}");
        let e = errors("rows: -1\n");
        assert!(e[0].contains("phlo.yaml:1:7") && e[0].contains("out of range"), "{e:?}");
        let e = errors("strict: yes\n");
        assert!(e[0].contains("phlo.yaml:1:9") && e[0].contains("write `true`"), "{e:?}");
        let e = errors("level: warning\n");
        assert!(e[0].contains("unknown value `warning`") && e[0].contains("did you mean `warn`"), "{e:?}");
        let e = errors("tags: [a]\n");
        assert!(e[0].contains("expected a mapping"), "{e:?}");
    }

    #[test]
    fn every_type_error_is_reported_not_just_the_first() {
        let e = errors("name: [x]\nstrict: on\nrows: -3\nlevel: loud\ntags: [a]\ndeps: p\n");
        assert_eq!(e.len(), 6, "{e:#?}");
        for (i, line) in e.iter().enumerate() {
            assert!(line.contains(&format!("phlo.yaml:{}:", i + 1)), "{line}");
        }
    }

    #[test]
    fn expanded_scalars_take_the_field_type() {
        let src = SourceFile::new("phlo.yaml", "rows: x\nstrict: x\n");
        let mut node = parse(&src, Format::Yaml).unwrap();
        if let Value::Map(entries) = &mut node.value {
            entries[0].1 = Node { value: Value::Str("12".into()), span: entries[0].1.span, expanded: true };
            entries[1].1 = Node { value: Value::Str("true".into()), span: entries[1].1.span, expanded: true };
        }
        let c: Cfg = from_node(&node, &src, &[]).unwrap();
        assert_eq!((c.rows, c.strict), (12, true));
    }
}
