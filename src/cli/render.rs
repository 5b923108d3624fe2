//! The one renderer for diagnostics, and plain text tables.

use std::io::{self, IsTerminal, Write};

use phlo_core::diagnostic::{Diagnostic, Diagnostics, Severity};
use serde::Serialize;

struct Style {
    color: bool,
}

impl Style {
    fn paint(&self, code: &str, text: &str) -> String {
        if self.color { format!("\x1b[{code}m{text}\x1b[0m") } else { text.to_string() }
    }
}

/// Writes every diagnostic, then a count line when there is more than one.
pub(crate) fn write_diagnostics<W: Write>(out: &mut W, diags: &Diagnostics) -> io::Result<()> {
    let style = Style { color: io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none() };
    for d in diags {
        write_one(out, d, &style)?;
    }
    let errors = diags.iter().filter(|d| d.is_error()).count();
    let warnings = diags.len() - errors;
    if diags.len() > 1 {
        writeln!(out, "{} error(s), {} warning(s)", errors, warnings)?;
    }
    Ok(())
}

fn write_one<W: Write>(out: &mut W, d: &Diagnostic, style: &Style) -> io::Result<()> {
    let (word, color) = match d.severity {
        Severity::Error => ("error", "1;31"),
        Severity::Warning => ("warning", "1;33"),
    };
    writeln!(out, "{}: {}", style.paint(color, &format!("{word}[{}]", d.code)), d.message)?;
    if let Some(loc) = &d.location {
        writeln!(out, "  --> {}", loc.display())?;
        if loc.span.is_known()
            && let Some(line) = loc.source.line_text(loc.span.line)
        {
            let n = loc.span.line.to_string();
            let pad = " ".repeat(n.len());
            let caret_at = line.chars().take(loc.span.col.saturating_sub(1) as usize).count();
            let prefix: String = line.chars().take(caret_at).map(|c| if c == '\t' { '\t' } else { ' ' }).collect();
            let width = (loc.span.len.max(1) as usize).min(line.chars().count().saturating_sub(caret_at).max(1));
            writeln!(out, " {pad} |")?;
            writeln!(out, " {n} | {line}")?;
            let label = d.label.as_deref().map(|l| format!(" {l}")).unwrap_or_default();
            writeln!(out, " {pad} | {prefix}{}", style.paint(color, &format!("{}{label}", "^".repeat(width))))?;
        }
    }
    for note in &d.notes {
        writeln!(out, "   = note: {note}")?;
    }
    if let Some(help) = &d.help {
        let mut lines = help.lines();
        if let Some(first) = lines.next() {
            writeln!(out, "   = {}: {first}", style.paint("1;36", "help"))?;
        }
        for l in lines {
            writeln!(out, "           {l}")?;
        }
    }
    writeln!(out)
}

/// A diagnostic as JSON, for `--json` outputs.
#[derive(Serialize)]
pub(crate) struct JsonDiagnostic {
    code: &'static str,
    severity: Severity,
    message: String,
    file: Option<String>,
    line: Option<u32>,
    column: Option<u32>,
    help: Option<String>,
    notes: Vec<String>,
}

impl From<&Diagnostic> for JsonDiagnostic {
    fn from(d: &Diagnostic) -> Self {
        let known = d.location.as_ref().filter(|l| l.span.is_known());
        Self {
            code: d.code.as_str(),
            severity: d.severity,
            message: d.message.clone(),
            file: d.location.as_ref().map(|l| l.source.path.display().to_string()),
            line: known.map(|l| l.span.line),
            column: known.map(|l| l.span.col),
            help: d.help.clone(),
            notes: d.notes.clone(),
        }
    }
}

/// A left-aligned text table.
pub(crate) struct Table {
    header: Vec<&'static str>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub(crate) fn new(header: Vec<&'static str>) -> Self {
        Self { header, rows: Vec::new() }
    }

    pub(crate) fn row(&mut self, row: Vec<String>) {
        self.rows.push(row);
    }

    pub(crate) fn write<W: Write>(&self, out: &mut W) -> io::Result<()> {
        let mut widths: Vec<usize> = self.header.iter().map(|h| h.chars().count()).collect();
        for r in &self.rows {
            for (i, c) in r.iter().enumerate() {
                widths[i] = widths[i].max(c.chars().count());
            }
        }
        let line = |cells: Vec<&str>| -> String {
            let last = cells.len() - 1;
            cells
                .iter()
                .enumerate()
                .map(|(i, c)| if i == last { (*c).to_string() } else { format!("{c:<w$}", w = widths[i]) })
                .collect::<Vec<_>>()
                .join("  ")
                .trim_end()
                .to_string()
        };
        writeln!(out, "{}", line(self.header.clone()))?;
        for r in &self.rows {
            writeln!(out, "{}", line(r.iter().map(String::as_str).collect()))?;
        }
        Ok(())
    }
}

/// `a, b, c` or `-` for nothing.
pub(crate) fn join_or_dash(items: &[String]) -> String {
    if items.is_empty() { String::from("-") } else { items.join(", ") }
}
