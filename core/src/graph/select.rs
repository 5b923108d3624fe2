//! The selection language, one parser for every verb (`run`, `assets list`, schedules,
//! hook filters).
//!
//! | selector | selects |
//! | --- | --- |
//! | `raw.orders` | that asset |
//! | `raw.*`, `*.orders`, `raw.ord?rs` | keys matching the glob (`*` any text, `?` one character) |
//! | `+key` / `2+key` | the asset and its ancestors (all / up to 2 levels) |
//! | `key+` / `key+1` | the asset and its descendants (all / 1 level) |
//! | `@key` | the asset, its descendants, and every ancestor of those |
//! | `group:x`, `tag:k=v`, `tag:k`, `kind:ingestion` | by group, tag, kind |
//! | `roots()`, `sinks()` | assets without deps / without dependents |
//! | `stale()` | assets `phlo status` calls stale (needs the run store) |
//! | `a and b`, `a or b`, `not a`, `( … )` | intersection, union, complement; `a b` means `a or b` |
//!
//! Graph operators apply to any selector: `+tag:nightly` selects the tagged assets and
//! everything upstream of them.
//!
//! ```
//! use phlo_core::graph::Selection;
//! assert!(Selection::parse("+marts.revenue and not tag:pii=true").is_ok());
//! let e = Selection::parse("raw.* and").unwrap_err();
//! assert_eq!(e.column, 10);
//! ```

use std::fmt;

use petgraph::Direction;

use super::AssetGraph;
use crate::diagnostic::{Code, Diagnostic, SourceFile, Span, did_you_mean};
use crate::spec::AssetKind;

/// A selection that does not parse, or that selects nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct SelectError {
    /// What is wrong.
    pub message: String,
    /// 1-based column in the selection text (0: the whole text).
    pub column: u32,
    /// How many characters to mark.
    pub len: u32,
    /// How to fix it.
    pub help: Option<String>,
    /// `true`: the text parsed but matched nothing.
    pub empty: bool,
}

impl SelectError {
    fn at(column: usize, len: usize, message: impl Into<String>) -> Self {
        Self { message: message.into(), column: column as u32, len: len.max(1) as u32, help: None, empty: false }
    }

    fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    /// The diagnostic, pointing into the selection text (shown as the file `--select`).
    pub fn to_diagnostic(&self, text: &str) -> Diagnostic {
        let code = if self.empty { Code::SelectionEmpty } else { Code::SelectionSyntax };
        let mut d = Diagnostic::error(code, self.message.clone());
        if self.column > 0 {
            d = d.at(&SourceFile::new("--select", text), Span::new(1, self.column, self.len));
        }
        if let Some(h) = &self.help {
            d = d.with_help(h.clone());
        }
        d
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Base {
    Key(String),
    Glob(String),
    Group(String),
    Tag(String, Option<String>),
    Kind(AssetKind),
    Roots,
    Sinks,
    Stale,
}

#[derive(Debug, Clone, PartialEq)]
enum Expr {
    Term {
        base: Base,
        up: Option<Option<u32>>,
        down: Option<Option<u32>>,
        at: bool,
        column: usize,
        len: usize,
    },
    /// n-ary, so that a long list of terms is a flat vector, not a deep tree.
    And(Vec<Expr>),
    Or(Vec<Expr>),
    Not(Box<Expr>),
}

/// How deeply parentheses and `not` may nest: deeper input is a located error, never a
/// stack overflow.
pub const MAX_NESTING: usize = 100;

/// A parsed selection.
#[derive(Debug, Clone, PartialEq)]
pub struct Selection {
    text: String,
    expr: Expr,
}

impl fmt::Display for Selection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Word(String),
    Open,
    Close,
    Func(&'static str),
}

fn tokenize(text: &str) -> Vec<(Tok, usize, usize)> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '(' || c == ')' {
            out.push((if c == '(' { Tok::Open } else { Tok::Close }, i + 1, 1));
            i += 1;
        } else {
            let start = i;
            while i < chars.len() && !chars[i].is_whitespace() && chars[i] != '(' && chars[i] != ')' {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            let func = match word.as_str() {
                "roots" => Some("roots"),
                "sinks" => Some("sinks"),
                "stale" => Some("stale"),
                _ => None,
            };
            if let Some(f) = func
                && chars.get(i) == Some(&'(')
                && chars.get(i + 1) == Some(&')')
            {
                out.push((Tok::Func(f), start + 1, i + 2 - start));
                i += 2;
            } else {
                out.push((Tok::Word(word), start + 1, i - start));
            }
        }
    }
    out
}

struct Parser {
    toks: Vec<(Tok, usize, usize)>,
    pos: usize,
    end: usize,
    depth: usize,
}

impl Parser {
    fn peek(&self) -> Option<&(Tok, usize, usize)> {
        self.toks.get(self.pos)
    }

    fn is_word(&self, w: &str) -> bool {
        matches!(self.peek(), Some((Tok::Word(x), _, _)) if x == w)
    }

    fn or(&mut self) -> Result<Expr, SelectError> {
        let mut terms = vec![self.and()?];
        loop {
            if self.is_word("or") {
                self.pos += 1;
                terms.push(self.operand("or")?);
            } else if matches!(self.peek(), Some((Tok::Word(_) | Tok::Open | Tok::Func(_), _, _))) {
                // juxtaposition is a union, as in dbt: `a b` = `a or b`
                terms.push(self.and()?);
            } else {
                return Ok(if terms.len() == 1 { terms.remove(0) } else { Expr::Or(terms) });
            }
        }
    }

    /// One level deeper (a `(` or a `not` at `col`).
    fn deeper(&mut self, col: usize, len: usize) -> Result<(), SelectError> {
        self.depth += 1;
        if self.depth > MAX_NESTING {
            return Err(SelectError::at(col, len, format!("the selection nests more than {MAX_NESTING} levels deep"))
                .help("remove redundant parentheses or `not`s"));
        }
        Ok(())
    }

    fn operand(&mut self, after: &str) -> Result<Expr, SelectError> {
        match self.peek() {
            None => Err(SelectError::at(self.end, 1, format!("expected a selector after `{after}`"))
                .help(format!("complete it, e.g. `{after} tag:nightly`, or remove `{after}`"))),
            Some(_) => self.and(),
        }
    }

    fn and(&mut self) -> Result<Expr, SelectError> {
        let mut terms = vec![self.not()?];
        while self.is_word("and") {
            self.pos += 1;
            if self.peek().is_none() {
                return Err(SelectError::at(self.end, 1, "expected a selector after `and`")
                    .help("complete it, e.g. `a and tag:nightly`, or remove `and`"));
            }
            terms.push(self.not()?);
        }
        Ok(if terms.len() == 1 { terms.remove(0) } else { Expr::And(terms) })
    }

    fn not(&mut self) -> Result<Expr, SelectError> {
        if let Some((Tok::Word(w), col, len)) = self.peek()
            && w == "not"
        {
            let (col, len) = (*col, *len);
            self.pos += 1;
            if self.peek().is_none() {
                return Err(SelectError::at(self.end, 1, "expected a selector after `not`"));
            }
            self.deeper(col, len)?;
            let inner = self.not()?;
            self.depth -= 1;
            return Ok(Expr::Not(Box::new(inner)));
        }
        self.primary()
    }

    fn primary(&mut self) -> Result<Expr, SelectError> {
        let Some((tok, col, len)) = self.peek().cloned() else {
            return Err(SelectError::at(self.end, 1, "expected a selector"));
        };
        self.pos += 1;
        match tok {
            Tok::Open => {
                if matches!(self.peek(), Some((Tok::Close, _, _))) {
                    return Err(SelectError::at(col, 2, "empty parentheses"));
                }
                self.deeper(col, 1)?;
                let inner = self.or()?;
                self.depth -= 1;
                match self.peek() {
                    Some((Tok::Close, _, _)) => {
                        self.pos += 1;
                        Ok(inner)
                    }
                    _ => Err(SelectError::at(col, 1, "`(` is never closed").help("add a `)`")),
                }
            }
            Tok::Close => Err(SelectError::at(col, 1, "unexpected `)`").help("remove it, or add the `(` it closes")),
            Tok::Func(f) => Ok(Expr::Term {
                base: match f {
                    "roots" => Base::Roots,
                    "stale" => Base::Stale,
                    _ => Base::Sinks,
                },
                up: None,
                down: None,
                at: false,
                column: col,
                len,
            }),
            Tok::Word(w) if matches!(w.as_str(), "and" | "or") => {
                Err(SelectError::at(col, len, format!("expected a selector before `{w}`")))
            }
            Tok::Word(w) => term(&w, col, len),
        }
    }
}

fn digits_prefix(s: &str) -> (&str, &str) {
    let end = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    s.split_at(end)
}

fn term(word: &str, col: usize, len: usize) -> Result<Expr, SelectError> {
    let mut rest = word;
    let mut offset = 0;
    let mut at = false;
    let mut up = None;
    if let Some(r) = rest.strip_prefix('@') {
        at = true;
        rest = r;
        offset += 1;
    } else {
        let (digits, after) = digits_prefix(rest);
        if let Some(r) = after.strip_prefix('+') {
            up = Some(if digits.is_empty() { None } else { Some(parse_depth(digits, col)?) });
            offset += digits.len() + 1;
            rest = r;
        }
    }
    let mut down = None;
    if let Some(plus) = rest.rfind('+') {
        let depth = &rest[plus + 1..];
        if depth.chars().all(|c| c.is_ascii_digit()) && (plus > 0 || !depth.is_empty() || rest.len() == 1) {
            down = Some(if depth.is_empty() { None } else { Some(parse_depth(depth, col)?) });
            rest = &rest[..plus];
        }
    }
    let base_col = col + offset;
    if rest.is_empty() {
        return Err(SelectError::at(col, len, format!("`{word}` has no selector to apply the graph operator to"))
            .help("write a key after `+` or `@`, e.g. `+marts.revenue`"));
    }
    if at && down.is_some() {
        return Err(SelectError::at(col, len, "`@` already includes descendants; drop the trailing `+`"));
    }
    let base = if let Some(v) = rest.strip_prefix("group:") {
        if v.is_empty() {
            return Err(SelectError::at(base_col, 6, "expected a group name after `group:`"));
        }
        Base::Group(v.to_string())
    } else if let Some(v) = rest.strip_prefix("tag:") {
        match v.split_once('=') {
            _ if v.is_empty() => {
                return Err(SelectError::at(base_col, 4, "expected `key=value` or `key` after `tag:`")
                    .help("e.g. `tag:owner=finance`"));
            }
            Some(("", _)) => return Err(SelectError::at(base_col + 4, 1, "the tag key is empty")),
            Some((k, val)) => Base::Tag(k.to_string(), Some(val.to_string())),
            None => Base::Tag(v.to_string(), None),
        }
    } else if let Some(v) = rest.strip_prefix("kind:") {
        let kinds = ["ingestion", "transform", "publish", "other"];
        let kind = match v {
            "ingestion" => AssetKind::Ingestion,
            "transform" => AssetKind::Transform,
            "publish" => AssetKind::Publish,
            "other" => AssetKind::Other,
            _ => {
                let e = SelectError::at(base_col + 5, v.chars().count(), format!("unknown kind `{v}`"));
                return Err(match did_you_mean(v, kinds) {
                    Some(s) => e.help(format!("did you mean `{s}`?")),
                    None => e.help("kinds are ingestion, transform, publish, other"),
                });
            }
        };
        Base::Kind(kind)
    } else if rest.contains(['*', '?']) {
        Base::Glob(rest.to_string())
    } else if let Some(bad) = rest.chars().find(|c| !(c.is_alphanumeric() || "._-/".contains(*c))) {
        let at_col = base_col + rest.chars().position(|c| c == bad).unwrap_or(0);
        return Err(SelectError::at(at_col, 1, format!("unexpected `{bad}` in `{word}`")));
    } else {
        Base::Key(rest.to_string())
    };
    Ok(Expr::Term { base, up, down, at, column: col, len })
}

fn parse_depth(d: &str, col: usize) -> Result<u32, SelectError> {
    d.parse().map_err(|_| SelectError::at(col, d.len(), format!("depth `{d}` is too large")))
}

/// Matches `*` (any text) and `?` (one character).
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

impl Selection {
    /// Parses a selection.
    ///
    /// # Errors
    /// A [`SelectError`] pointing at the column.
    pub fn parse(text: &str) -> Result<Self, SelectError> {
        let toks = tokenize(text);
        if toks.is_empty() {
            return Err(SelectError::at(0, 0, "the selection is empty").help("select with a key, e.g. `raw.orders`"));
        }
        let mut p = Parser { toks, pos: 0, end: text.chars().count() + 1, depth: 0 };
        let expr = p.or()?;
        if let Some((tok, col, len)) = p.peek() {
            return Err(match tok {
                Tok::Close => SelectError::at(*col, *len, "unexpected `)`").help("remove it, or add the `(` it closes"),
                _ => SelectError::at(*col, *len, "unexpected text"),
            });
        }
        Ok(Self { text: text.to_string(), expr })
    }

    /// The text as written.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The selected nodes, in key order.
    ///
    /// # Errors
    /// An exact key that is no asset (with a did-you-mean), or a selection that matches nothing.
    pub fn select(&self, graph: &AssetGraph) -> Result<Vec<u32>, SelectError> {
        self.select_with(graph, None)
    }

    /// Whether the selection uses `stale()`, which needs the run store's view of the assets.
    pub fn uses_stale(&self) -> bool {
        fn walk(e: &Expr) -> bool {
            match e {
                Expr::Term { base, .. } => *base == Base::Stale,
                Expr::And(t) | Expr::Or(t) => t.iter().any(walk),
                Expr::Not(a) => walk(a),
            }
        }
        walk(&self.expr)
    }

    /// [`Selection::select`], with `stale[i]` saying whether node `i` is stale (for `stale()`).
    ///
    /// # Errors
    /// As [`Selection::select`]; `stale()` without `stale`.
    pub fn select_with(&self, graph: &AssetGraph, stale: Option<&[bool]>) -> Result<Vec<u32>, SelectError> {
        let mask = eval(&self.expr, graph, stale)?;
        let selected: Vec<u32> = mask.iter().enumerate().filter(|(_, m)| **m).map(|(i, _)| i as u32).collect();
        if selected.is_empty() {
            let mut e = SelectError::at(0, 0, format!("the selection `{}` matches no asset", self.text));
            e.empty = true;
            return Err(e.help("see `phlo assets list` for the keys, groups and tags"));
        }
        Ok(selected)
    }

    /// Whether one asset matches (for hook filters); graph operators are evaluated on `graph`.
    ///
    /// # Errors
    /// As [`Selection::select`], except that matching nothing is not an error.
    pub fn matches(&self, graph: &AssetGraph, key: &str) -> Result<bool, SelectError> {
        let mask = eval(&self.expr, graph, None)?;
        Ok(graph.index_of(key).is_some_and(|i| mask[i as usize]))
    }
}

fn eval(expr: &Expr, g: &AssetGraph, stale: Option<&[bool]>) -> Result<Vec<bool>, SelectError> {
    let n = g.len();
    Ok(match expr {
        Expr::And(terms) => {
            let mut mask = vec![true; n];
            for t in terms {
                mask.iter_mut().zip(eval(t, g, stale)?).for_each(|(m, x)| *m &= x);
            }
            mask
        }
        Expr::Or(terms) => {
            let mut mask = vec![false; n];
            for t in terms {
                mask.iter_mut().zip(eval(t, g, stale)?).for_each(|(m, x)| *m |= x);
            }
            mask
        }
        Expr::Not(a) => eval(a, g, stale)?.iter().map(|x| !x).collect(),
        Expr::Term { base, up, down, at, column, len } => {
            let mut mask = vec![false; n];
            match base {
                Base::Key(k) => match g.index_of(k) {
                    Some(i) => mask[i as usize] = true,
                    None => {
                        let e = SelectError::at(*column, *len, format!("no asset is named `{k}`"));
                        return Err(match did_you_mean(k, g.nodes().iter().map(|n| n.spec.key.as_str())) {
                            Some(s) => e.help(format!("did you mean `{s}`?")),
                            None => e.help("see `phlo assets list`; use a glob such as `raw.*` to match several"),
                        });
                    }
                },
                Base::Glob(p) => {
                    for (i, node) in g.nodes().iter().enumerate() {
                        mask[i] = glob_match(p, &node.spec.key);
                    }
                }
                Base::Group(x) => {
                    for (i, node) in g.nodes().iter().enumerate() {
                        mask[i] = node.spec.group.as_deref() == Some(x.as_str());
                    }
                }
                Base::Tag(k, v) => {
                    for (i, node) in g.nodes().iter().enumerate() {
                        mask[i] = node.spec.tags.get(k).is_some_and(|tv| v.as_ref().is_none_or(|v| v == tv));
                    }
                }
                Base::Kind(kind) => {
                    for (i, node) in g.nodes().iter().enumerate() {
                        mask[i] = node.spec.kind == *kind;
                    }
                }
                Base::Roots => {
                    for i in g.roots() {
                        mask[i as usize] = true;
                    }
                }
                Base::Sinks => {
                    for i in g.sinks() {
                        mask[i as usize] = true;
                    }
                }
                Base::Stale => match stale {
                    Some(s) => mask.iter_mut().zip(s).for_each(|(m, x)| *m = *x),
                    None => {
                        return Err(SelectError::at(
                            *column,
                            *len,
                            "`stale()` needs the run store's view of the assets, which is not available here",
                        )
                        .help("use it in `phlo run`, `phlo status` or `phlo assets list`"));
                    }
                },
            }
            let seeds: Vec<u32> = mask.iter().enumerate().filter(|(_, m)| **m).map(|(i, _)| i as u32).collect();
            if *at {
                let mut down_mask = mask.clone();
                g.expand(&seeds, Direction::Outgoing, None, &mut down_mask);
                let all_down: Vec<u32> =
                    down_mask.iter().enumerate().filter(|(_, m)| **m).map(|(i, _)| i as u32).collect();
                mask.clone_from(&down_mask);
                g.expand(&all_down, Direction::Incoming, None, &mut mask);
            } else {
                if let Some(depth) = up {
                    g.expand(&seeds, Direction::Incoming, *depth, &mut mask);
                }
                if let Some(depth) = down {
                    g.expand(&seeds, Direction::Outgoing, *depth, &mut mask);
                }
            }
            mask
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_whole_language() {
        for ok in [
            "raw.orders",
            "raw.*",
            "+marts.revenue",
            "2+marts.revenue",
            "raw.orders+",
            "raw.orders+1",
            "@staging.orders",
            "group:finance",
            "tag:owner=data-team",
            "tag:pii",
            "kind:ingestion",
            "roots()",
            "sinks()",
            "a and b or not c",
            "(a or b) and not (c or tag:x=y)",
            "a b c",
            "+tag:nightly+",
        ] {
            assert!(Selection::parse(ok).is_ok(), "{ok}: {:?}", Selection::parse(ok));
        }
    }

    fn err(text: &str) -> (u32, String) {
        let e = Selection::parse(text).unwrap_err();
        (e.column, e.message)
    }

    #[test]
    fn parse_errors_point_at_the_column() {
        assert_eq!(err("+").0, 1);
        assert!(err("+").1.contains("no selector"));
        assert_eq!(err("tag:"), (1, "expected `key=value` or `key` after `tag:`".into()));
        assert_eq!(err("a and"), (6, "expected a selector after `and`".into()));
        assert_eq!(err("(a or b"), (1, "`(` is never closed".into()));
        assert_eq!(err("a or b)"), (7, "unexpected `)`".into()));
        assert_eq!(err("kind:batch").0, 6);
        assert_eq!(err("a or"), (5, "expected a selector after `or`".into()));
        assert_eq!(err("not"), (4, "expected a selector after `not`".into()));
        assert_eq!(err("a,b").0, 2);
        assert_eq!(err("()").0, 1);
        assert!(Selection::parse("   ").is_err());
        assert_eq!(err("@a+").0, 1);
    }

    #[test]
    fn hostile_selections_are_errors_or_work_never_a_crash() {
        let deep = format!("{}a{}", "(".repeat(20_000), ")".repeat(20_000));
        let (col, message) = err(&deep);
        assert_eq!((col, message.as_str()), (101, "the selection nests more than 100 levels deep"));
        let nots = format!("{}a", "not ".repeat(20_000));
        assert_eq!(err(&nots).0, 401);
        // a long flat list is fine: it is not nested
        let long = vec!["a"; 50_000].join(" or ");
        assert!(Selection::parse(&long).is_ok());
        let long = vec!["a"; 50_000].join(" and ");
        assert!(Selection::parse(&long).is_ok());
        // 100 levels are allowed
        assert!(Selection::parse(&format!("{}a{}", "(".repeat(100), ")".repeat(100))).is_ok());
    }

    #[test]
    fn globs() {
        assert!(glob_match("raw.*", "raw.orders"));
        assert!(glob_match("*.orders", "staging.orders"));
        assert!(glob_match("r?w.*s", "raw.orders"));
        assert!(!glob_match("raw.*", "staging.raw"));
        assert!(glob_match("*", ""));
        assert!(!glob_match("a?", "a"));
    }
}
