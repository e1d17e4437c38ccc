//! Diagnostics: problems found in a stack file (or a `--set`/`--name` argument), each with a
//! location, a source snippet with a caret, and a sentence naming the fix.

use std::fmt::Write as _;

/// Where a piece of input came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SourceKind {
    /// A stack file; its name is the path as given.
    File,
    /// A command-line argument (`--set path=value`, `--name NAME`); its name and text are the
    /// argument as typed.
    Argument,
}

/// One input text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Source {
    pub name: String,
    pub text: String,
    pub kind: SourceKind,
}

/// Every input of one load: the stack file first, then one entry per override argument.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Sources(pub Vec<Source>);

impl Sources {
    pub fn add(&mut self, source: Source) -> usize {
        self.0.push(source);
        self.0.len() - 1
    }
    pub fn get(&self, id: usize) -> Option<&Source> {
        self.0.get(id)
    }
}

/// A location: `line` and `column` are 1-based and count characters; `len` is the number of
/// characters the caret underlines (at least 1, on `line`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Span {
    pub source: usize,
    pub line: usize,
    pub column: usize,
    pub len: usize,
}

impl Span {
    pub fn new(source: usize, line: usize, column: usize, len: usize) -> Span {
        Span {
            source,
            line: line.max(1),
            column: column.max(1),
            len: len.max(1),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    Error,
    Warning,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        }
    }
}

/// One problem.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    pub severity: Severity,
    /// What is wrong (one sentence, names the field).
    pub message: String,
    /// Where (None: the problem has no place in any input, e.g. the file cannot be read).
    pub span: Option<Span>,
    /// How to fix it (one sentence).
    pub fix: String,
    /// The stack fields the problem is about (`web.instance_types[1]`), used to drop follow-up
    /// problems about fields that already have a structural error.
    pub paths: Vec<String>,
}

impl Diagnostic {
    pub fn error(message: impl Into<String>, span: Option<Span>, fix: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Error,
            message: message.into(),
            span,
            fix: fix.into(),
            paths: Vec::new(),
        }
    }
    pub fn warning(message: impl Into<String>, span: Option<Span>, fix: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Warning,
            ..Diagnostic::error(message, span, fix)
        }
    }
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    /// `file:line:column`, or the argument as typed (with its column) for command-line overrides.
    pub fn location(&self, sources: &Sources) -> String {
        match self.span {
            None => sources.get(0).map(|s| s.name.clone()).unwrap_or_default(),
            Some(span) => match sources.get(span.source) {
                Some(s) if s.kind == SourceKind::File => {
                    format!("{}:{}:{}", s.name, span.line, span.column)
                }
                Some(s) => format!("argument `{}` (column {})", s.name, span.column),
                None => String::new(),
            },
        }
    }

    /// The diagnostic as text: header, location, snippet with caret, fix.
    pub fn render(&self, sources: &Sources, color: bool) -> String {
        let paint = |code: &str, s: &str| {
            if color {
                format!("\x1b[{code}m{s}\x1b[0m")
            } else {
                s.to_string()
            }
        };
        let sev_color = match self.severity {
            Severity::Error => "1;31",
            Severity::Warning => "1;33",
        };
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{}{}",
            paint(sev_color, self.severity.as_str()),
            paint("1", &format!(": {}", self.message))
        );
        let source = self
            .span
            .and_then(|s| sources.get(s.source).map(|src| (s, src)));
        match source {
            Some((span, src)) => {
                let line_text = src.text.lines().nth(span.line - 1).unwrap_or("");
                let line_text: String = line_text
                    .chars()
                    .map(|c| if c == '\t' { ' ' } else { c })
                    .collect();
                let number = if src.kind == SourceKind::File {
                    span.line.to_string()
                } else {
                    String::new()
                };
                let width = number.len().max(1);
                let pad = " ".repeat(width);
                let _ = writeln!(
                    out,
                    "{pad}{} {}",
                    paint("1;34", "-->"),
                    self.location(sources)
                );
                let _ = writeln!(out, "{pad} {}", paint("1;34", "|"));
                let _ = writeln!(
                    out,
                    "{} {} {}",
                    paint("1;34", &format!("{number:>width$}")),
                    paint("1;34", "|"),
                    line_text.trim_end()
                );
                let line_chars = line_text.chars().count();
                let start = span.column.saturating_sub(1);
                let len = if start >= line_chars {
                    1
                } else {
                    span.len.min(line_chars - start).max(1)
                };
                let _ = writeln!(
                    out,
                    "{pad} {} {}{}",
                    paint("1;34", "|"),
                    " ".repeat(start),
                    paint(sev_color, &"^".repeat(len))
                );
            }
            None => {
                if let Some(src) = sources.get(0) {
                    let _ = writeln!(out, " {} {}", paint("1;34", "-->"), src.name);
                }
            }
        }
        if !self.fix.is_empty() {
            let pad = match self
                .span
                .and_then(|s| sources.get(s.source).map(|src| (s, src)))
            {
                Some((s, src)) if src.kind == SourceKind::File => {
                    " ".repeat(s.line.to_string().len())
                }
                _ => " ".to_string(),
            };
            let _ = writeln!(out, "{pad} {} {}", paint("1;36", "= fix:"), self.fix);
        }
        out
    }
}

/// Renders every diagnostic (errors first, in input order) and a summary line.
pub fn render_report(diagnostics: &[Diagnostic], sources: &Sources, color: bool) -> String {
    let mut sorted: Vec<&Diagnostic> = diagnostics.iter().collect();
    sorted.sort_by_key(|d| {
        (
            d.severity,
            d.span
                .map(|s| (s.source, s.line, s.column))
                .unwrap_or((0, 0, 0)),
        )
    });
    let mut out = String::new();
    for d in &sorted {
        out.push_str(&d.render(sources, color));
        out.push('\n');
    }
    let errors = diagnostics.iter().filter(|d| d.is_error()).count();
    let warnings = diagnostics.len() - errors;
    let name = sources.get(0).map(|s| s.name.as_str()).unwrap_or("stack");
    let plural = |n: usize, w: &str| {
        if n == 1 {
            format!("1 {w}")
        } else {
            format!("{n} {w}s")
        }
    };
    if errors > 0 {
        let _ = write!(out, "{name}: {}", plural(errors, "error"));
        if warnings > 0 {
            let _ = write!(out, ", {}", plural(warnings, "warning"));
        }
        out.push('\n');
    } else if warnings > 0 {
        let _ = writeln!(out, "{name}: {}", plural(warnings, "warning"));
    }
    out
}

/// Edit distance (characters) where insertions, deletions, substitutions and transpositions of
/// two neighbours each count 1 (optimal string alignment), so `mni` is 1 from `min`.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut v = (d[i - 1][j - 1] + cost)
                .min(d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                v = v.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = v;
        }
    }
    d[a.len()][b.len()]
}

/// The candidate closest to `word` when it is close enough to be a plausible typo.
pub fn closest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let limit = (word.chars().count() / 3).max(2);
    candidates
        .into_iter()
        .map(|c| (edit_distance(&word.to_lowercase(), &c.to_lowercase()), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, c)| (*d, c.len()))
        .map(|(_, c)| c)
}

/// The candidate closest to `word`, however far (for closed lists such as instance types).
pub fn nearest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (edit_distance(&word.to_lowercase(), &c.to_lowercase()), c))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distance_and_suggestions() {
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("mni", "min"), 1);
        assert_eq!(closest("mni", ["max", "min"]), Some("min"));
        assert_eq!(
            closest("instance_type", ["instance_types", "min", "max"]),
            Some("instance_types")
        );
        assert_eq!(closest("zzzzzz", ["min", "max"]), None);
        assert_eq!(
            nearest("m6i.huge", ["m6i.large", "t3.micro"]),
            Some("m6i.large")
        );
    }

    #[test]
    fn renders_a_caret_under_the_span() {
        let mut sources = Sources::default();
        sources.add(Source {
            name: "s.yaml".into(),
            text: "web:\n  max: -1\n".into(),
            kind: SourceKind::File,
        });
        let d = Diagnostic::error("bad", Some(Span::new(0, 2, 8, 2)), "fix it");
        assert_eq!(
            d.render(&sources, false),
            "error: bad\n --> s.yaml:2:8\n  |\n2 |   max: -1\n  |        ^^\n  = fix: fix it\n"
        );
    }
}
