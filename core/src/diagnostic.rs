//! Diagnostics: what went wrong, where, how to fix it, and a stable code.
//!
//! Every error a user can cause is a [`Diagnostic`]. Phases collect them into
//! [`Diagnostics`] instead of stopping at the first, so a user fixes a file in one pass.
//! The binary renders them (see `phlo`'s `cli::render`); libraries only build them.
//!
//! ```
//! use phlo_core::diagnostic::{Code, Diagnostic};
//! let d = Diagnostic::error(Code::UnknownKey, "unknown key `nmae`").with_help("did you mean `name`?");
//! assert_eq!(d.code.as_str(), "PHLO-E003");
//! assert_eq!(d.code.exit_code(), 2);
//! ```

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use serde::Serialize;

/// A source file that diagnostics can point into.
#[derive(Debug)]
pub struct SourceFile {
    /// Path as the user should see it (relative to the working directory when possible).
    pub path: PathBuf,
    /// The whole text.
    pub text: String,
}

impl SourceFile {
    /// Wraps a file's path and text.
    pub fn new(path: impl Into<PathBuf>, text: impl Into<String>) -> Arc<Self> {
        Arc::new(Self { path: path.into(), text: text.into() })
    }

    /// The text of 1-based line `line`, without its newline.
    pub fn line_text(&self, line: u32) -> Option<&str> {
        self.text.lines().nth(line.checked_sub(1)? as usize)
    }

    /// Converts a byte offset into a 1-based (line, column); the column counts characters.
    pub fn line_col(&self, offset: usize) -> (u32, u32) {
        let offset = offset.min(self.text.len());
        let before = &self.text[..floor_char_boundary(&self.text, offset)];
        let line = before.matches('\n').count() as u32 + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let col = before[line_start..].chars().count() as u32 + 1;
        (line, col)
    }
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// A 1-based position in a source file, with the length of the marked text (in characters).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize)]
pub struct Span {
    /// 1-based line; 0 means "unknown".
    pub line: u32,
    /// 1-based column, in characters.
    pub col: u32,
    /// How many characters to underline (at least 1 when rendered).
    pub len: u32,
}

impl Span {
    /// A span at `line:col` underlining `len` characters.
    pub const fn new(line: u32, col: u32, len: u32) -> Self {
        Self { line, col, len }
    }

    /// Whether the position is known.
    pub const fn is_known(&self) -> bool {
        self.line > 0
    }
}

/// Where a diagnostic points: a file and a span in it.
#[derive(Debug, Clone)]
pub struct Location {
    /// The file.
    pub source: Arc<SourceFile>,
    /// The place in it.
    pub span: Span,
}

impl Location {
    /// `file:line:col`.
    pub fn display(&self) -> String {
        if self.span.is_known() {
            format!("{}:{}:{}", self.source.path.display(), self.span.line, self.span.col)
        } else {
            self.source.path.display().to_string()
        }
    }
}

/// How bad a diagnostic is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Stops the command.
    Error,
    /// Reported; the command goes on.
    Warning,
}

/// The broad class of a problem; it decides the process exit code (ARCHITECTURE §9).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Category {
    /// A bug in phlo (exit 1).
    Internal,
    /// Command-line usage or configuration (exit 2).
    Config,
    /// Plugins, capabilities or the asset graph (exit 3).
    Plugin,
    /// What went wrong while a run did its work (the run exits 4).
    Run,
}

macro_rules! codes {
    ($( $(#[$doc:meta])* $variant:ident = $code:literal, $category:ident; )*) => {
        /// Stable diagnostic codes. Each has a paragraph in `docs/errors.md`.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        #[non_exhaustive]
        pub enum Code {
            $( $(#[$doc])* $variant, )*
        }

        impl Code {
            /// Every code, in order.
            pub const ALL: &'static [Code] = &[$(Code::$variant),*];

            /// The stable text of the code, e.g. `PHLO-E003`.
            pub const fn as_str(self) -> &'static str {
                match self { $( Code::$variant => $code, )* }
            }

            /// The class of problem.
            pub const fn category(self) -> Category {
                match self { $( Code::$variant => Category::$category, )* }
            }
        }
    };
}

codes! {
    /// Something inside phlo went wrong.
    Internal = "PHLO-E000", Internal;
    /// The project file is missing or cannot be read.
    ProjectFile = "PHLO-E001", Config;
    /// The file is not valid YAML or TOML.
    Syntax = "PHLO-E002", Config;
    /// A key that the section does not have.
    UnknownKey = "PHLO-E003", Config;
    /// A value of the wrong type or out of range.
    InvalidValue = "PHLO-E004", Config;
    /// The same key twice in one mapping.
    DuplicateKey = "PHLO-E005", Config;
    /// `${VAR}` names an unset variable and gives no default.
    UndefinedVariable = "PHLO-E006", Config;
    /// A config section names a plugin, asset type or hook that is not compiled in.
    UnknownPlugin = "PHLO-E007", Plugin;
    /// Two plugins of one kind share a name.
    DuplicatePlugin = "PHLO-E010", Plugin;
    /// A plugin's factory returned an error or panicked.
    PluginFailed = "PHLO-E011", Plugin;
    /// A plugin is named in both `plugins.allow` and `plugins.deny`.
    AllowDenyConflict = "PHLO-W012", Config;
    /// `plugins.allow` or `plugins.deny` names a plugin that is not compiled in.
    UnknownPluginName = "PHLO-W013", Config;
    /// A requirement string is malformed.
    MalformedRequirement = "PHLO-E020", Plugin;
    /// No provider offers a required capability.
    MissingCapability = "PHLO-E021", Plugin;
    /// Several providers offer a capability and nothing chooses one.
    AmbiguousCapability = "PHLO-E022", Plugin;
    /// A run tag, override, env default or `capabilities.defaults` names an absent provider.
    UnknownProvider = "PHLO-E023", Plugin;
    /// A plugin's required capabilities do not resolve, so it is not ready.
    PluginNotReady = "PHLO-E024", Plugin;
    /// An optional capability does not resolve.
    OptionalCapabilityMissing = "PHLO-W025", Plugin;
    /// A check's `type` names no compiled, enabled check kind.
    UnknownCheckKind = "PHLO-E027", Plugin;
    /// `phlo validate --probe`: a resource provider's probe failed.
    ProbeFailed = "PHLO-E028", Plugin;
    /// `PHLO_DEFAULT_CAPABILITIES` is not a JSON object of strings.
    InvalidEnvDefaults = "PHLO-E026", Config;
    /// Two assets share a key.
    DuplicateAsset = "PHLO-E030", Plugin;
    /// An asset depends on a key nobody defines.
    UnknownDep = "PHLO-E031", Plugin;
    /// The assets' dependencies form a cycle.
    Cycle = "PHLO-E032", Plugin;
    /// A partition definition or key is not valid.
    InvalidPartitions = "PHLO-E033", Plugin;
    /// Two assets write the same table.
    TableCollision = "PHLO-E035", Plugin;
    /// An asset's SQL reads a table that no asset writes.
    UnknownTable = "PHLO-E036", Plugin;
    /// An explicit dependency that the asset's SQL does not read.
    UnreadDep = "PHLO-W037", Plugin;
    /// A check names a column the asset does not have.
    UnknownColumn = "PHLO-E038", Plugin;
    /// A check names a column of an asset whose columns are not known before it runs.
    ColumnsUnknown = "PHLO-W039", Plugin;
    /// A schedule's cron line or timezone is not valid.
    InvalidSchedule = "PHLO-E034", Config;
    /// A schedule whose cron line can never fire (`0 0 30 2 *`).
    ScheduleNeverFires = "PHLO-W042", Config;
    /// A selection does not parse, or names an asset that does not exist.
    SelectionSyntax = "PHLO-E040", Config;
    /// A selection matches no asset.
    SelectionEmpty = "PHLO-E041", Config;
    /// `--partition` / `--partition-range` on a selection without a partitioned asset.
    PartitionsUnused = "PHLO-E043", Config;
    /// Hooks cannot be set up (duplicate names, a selection filter that does not resolve).
    HookSetup = "PHLO-E050", Plugin;
    /// `phlo plugin new` cannot scaffold the crate (bad name, not a phlo workspace, taken).
    Scaffold = "PHLO-E060", Config;
    /// Another run of the project is going and `--no-wait` was given (or the lock cannot be taken).
    RunLocked = "PHLO-E070", Plugin;
    /// A rendering adapter cannot express part of the project (names the asset and field).
    ExportFailed = "PHLO-E080", Plugin;
    /// The export's output directory is not usable (has other files, cannot be written).
    ExportOutput = "PHLO-E081", Config;
    /// The run store cannot be used: damaged, another program's file, from a newer phlo,
    /// not writable, or not compiled in.
    RunStore = "PHLO-E090", Plugin;
    /// No stored run has this id.
    UnknownRun = "PHLO-E091", Config;
    /// An asset's work failed (a plugin's error without a more precise code).
    RunFailed = "PHLO-E100", Run;
    /// An attempt ran past its `timeout` and was stopped.
    RunTimeout = "PHLO-E101", Run;
    /// An asset's work panicked.
    RunPanicked = "PHLO-E102", Run;
    /// The run was cancelled (Ctrl-C) before or while the asset ran.
    RunCancelled = "PHLO-E103", Run;
    /// The asset did not run: an upstream failed or a blocking check of one failed.
    UpstreamFailed = "PHLO-E104", Run;
    /// A `raise` hook failed on one of the asset's events.
    HookRaised = "PHLO-E105", Run;
    /// A model's or an export's SQL failed.
    SqlFailed = "PHLO-E110", Run;
    /// A `command` could not start or exited with an error.
    CommandFailed = "PHLO-E111", Run;
    /// An input file (CSV, JSON Lines) could not be read or holds a bad row.
    InputFailed = "PHLO-E112", Run;
}

impl Code {
    /// The exit code a command ends with when this is its worst error.
    pub const fn exit_code(self) -> i32 {
        match self.category() {
            Category::Internal => 1,
            Category::Config => 2,
            Category::Plugin => 3,
            Category::Run => 4,
        }
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Code {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// One problem: what, where, how to fix it.
#[derive(Debug, Clone)]
pub struct Diagnostic {
    /// Stable code.
    pub code: Code,
    /// Error or warning.
    pub severity: Severity,
    /// What happened, in one sentence.
    pub message: String,
    /// Where, when the problem is in a file.
    pub location: Option<Location>,
    /// Text under the underline in the snippet (e.g. "expected a boolean").
    pub label: Option<String>,
    /// How to fix it.
    pub help: Option<String>,
    /// Further context (e.g. "first defined at phlo.yaml:3:3").
    pub notes: Vec<String>,
}

impl Diagnostic {
    /// A new error.
    pub fn error(code: Code, message: impl Into<String>) -> Self {
        Self {
            code,
            severity: Severity::Error,
            message: message.into(),
            location: None,
            label: None,
            help: None,
            notes: Vec::new(),
        }
    }

    /// A new warning.
    pub fn warning(code: Code, message: impl Into<String>) -> Self {
        Self { severity: Severity::Warning, ..Self::error(code, message) }
    }

    /// Points the diagnostic at a place in a file.
    #[must_use]
    pub fn at(mut self, source: &Arc<SourceFile>, span: Span) -> Self {
        self.location = Some(Location { source: Arc::clone(source), span });
        self
    }

    /// Points the diagnostic at an optional location.
    #[must_use]
    pub fn at_location(mut self, location: Option<Location>) -> Self {
        if location.is_some() {
            self.location = location;
        }
        self
    }

    /// Adds a label under the marked text.
    #[must_use]
    pub fn with_label(mut self, label: impl Into<String>) -> Self {
        self.label = Some(label.into());
        self
    }

    /// Says how to fix it.
    #[must_use]
    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    /// Adds a note.
    #[must_use]
    pub fn with_note(mut self, note: impl Into<String>) -> Self {
        self.notes.push(note.into());
        self
    }

    /// Whether it stops the command.
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    fn sort_key(&self) -> (String, Span, Code) {
        match &self.location {
            Some(l) => (l.source.path.display().to_string(), l.span, self.code),
            None => (String::from("\u{10ffff}"), Span::default(), self.code),
        }
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(loc) = &self.location {
            write!(f, "{}: ", loc.display())?;
        }
        write!(f, "[{}] {}", self.code, self.message)?;
        if let Some(help) = &self.help {
            write!(f, " (help: {help})")?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostic {}

/// A set of diagnostics collected by one or more phases.
#[derive(Debug, Clone, Default)]
pub struct Diagnostics(Vec<Diagnostic>);

impl Diagnostics {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one.
    pub fn push(&mut self, d: Diagnostic) {
        self.0.push(d);
    }

    /// Adds many.
    pub fn extend(&mut self, ds: impl IntoIterator<Item = Diagnostic>) {
        self.0.extend(ds);
    }

    /// Whether any of them is an error.
    pub fn has_errors(&self) -> bool {
        self.0.iter().any(Diagnostic::is_error)
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// How many.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// All of them, in the order they were added.
    pub fn iter(&self) -> std::slice::Iter<'_, Diagnostic> {
        self.0.iter()
    }

    /// Sorts by file, position, then code, so output does not depend on phase order.
    pub fn sort(&mut self) {
        self.0.sort_by_cached_key(Diagnostic::sort_key);
    }

    /// The exit code for the worst error: the highest of the errors' codes, or 0.
    pub fn exit_code(&self) -> i32 {
        self.0.iter().filter(|d| d.is_error()).map(|d| d.code.exit_code()).max().unwrap_or(0)
    }

    /// Takes the diagnostics out.
    pub fn into_vec(self) -> Vec<Diagnostic> {
        self.0
    }
}

impl IntoIterator for Diagnostics {
    type Item = Diagnostic;
    type IntoIter = std::vec::IntoIter<Diagnostic>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl<'a> IntoIterator for &'a Diagnostics {
    type Item = &'a Diagnostic;
    type IntoIter = std::slice::Iter<'a, Diagnostic>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl From<Diagnostic> for Diagnostics {
    fn from(d: Diagnostic) -> Self {
        Self(vec![d])
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for d in &self.0 {
            writeln!(f, "{d}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostics {}

/// Splits a parser's message ending in ` at Line: 3, Column: 7` (the form `sqlparser` uses)
/// into the message and the 1-based position.
pub fn split_position(message: &str) -> (String, Option<(u32, u32)>) {
    let Some((text, at)) = message.rsplit_once(" at Line: ") else { return (message.to_string(), None) };
    let mut parts = at.split(", Column: ");
    let line = parts.next().and_then(|l| l.trim().parse().ok());
    let column = parts.next().and_then(|c| c.trim().parse().ok());
    match (line, column) {
        (Some(l), Some(c)) => (text.to_string(), Some((l, c))),
        _ => (message.to_string(), None),
    }
}

/// The closest candidate to `word` by edit distance, when it is close enough to be a likely typo.
pub fn did_you_mean<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let mut best: Option<(f64, &str)> = None;
    for c in candidates {
        // Jaro-Winkler favours shared prefixes; one edit (two in longer words) catches short
        // typos it scores low (`mn` → `min`)
        let edits = strsim::osa_distance(word, c);
        let close = edits <= 1 || (edits == 2 && word.chars().count() >= 6);
        let score = if close { strsim::jaro_winkler(word, c).max(0.85) } else { strsim::jaro_winkler(word, c) };
        if score > 0.8 && best.is_none_or(|(s, _)| score > s) {
            best = Some((score, c));
        }
    }
    best.map(|(_, c)| c)
}

/// The text of a caught panic (`panic!("…")` payloads are `&str` or `String`).
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| String::from("(non-text panic payload)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_counts_characters() {
        let f = SourceFile::new("x.yaml", "a: 1\nbé: 2\n");
        assert_eq!(f.line_col(0), (1, 1));
        assert_eq!(f.line_col(5), (2, 1));
        assert_eq!(f.line_col(8), (2, 3));
        assert_eq!(f.line_text(2), Some("bé: 2"));
    }

    #[test]
    fn exit_code_is_the_worst_error() {
        let mut ds = Diagnostics::new();
        assert_eq!(ds.exit_code(), 0);
        ds.push(Diagnostic::warning(Code::AllowDenyConflict, "w"));
        assert_eq!(ds.exit_code(), 0);
        ds.push(Diagnostic::error(Code::UnknownKey, "k"));
        assert_eq!(ds.exit_code(), 2);
        ds.push(Diagnostic::error(Code::MissingCapability, "m"));
        assert_eq!(ds.exit_code(), 3);
    }

    #[test]
    fn codes_are_unique() {
        let mut seen = std::collections::HashSet::new();
        for c in Code::ALL {
            assert!(seen.insert(c.as_str()), "{c} twice");
        }
    }

    #[test]
    fn every_code_is_documented() {
        let doc = include_str!("../../docs/errors.md");
        for c in Code::ALL {
            assert!(doc.contains(&format!("## {} ", c.as_str())), "{c} has no section in docs/errors.md");
        }
    }

    #[test]
    fn suggestions() {
        assert_eq!(did_you_mean("nmae", ["name", "plugins"]), Some("name"));
        assert_eq!(did_you_mean("zzz", ["name", "plugins"]), None);
    }
}
