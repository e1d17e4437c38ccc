//! A YAML document as a tree of nodes that remember where they came from.
//!
//! Built from the event stream of `granit-parser` (the parser under `serde-saphyr`), so every
//! scalar keeps its source text and style (`8.10` stays `8.10`; typing is done later against the
//! schema) and every node its line and column. Anchors and aliases are expanded (with a budget
//! against alias bombs) and `<<` merge keys are applied. Never panics on any input.

use crate::diag::{Diagnostic, Span};
use serde_saphyr::granit_parser::{Event, Parser, ScalarStyle, Span as PSpan};
use std::collections::HashMap;

/// Maximum number of nodes after alias expansion.
const NODE_BUDGET: usize = 100_000;

#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    pub kind: Kind,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Kind {
    Scalar(Scalar),
    Seq(Vec<Node>),
    Map(Vec<Entry>),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Scalar {
    /// The value after escape processing.
    pub text: String,
    /// Plain (unquoted, not a block scalar): its type is inferred (`true`, `42`, `null`).
    pub plain: bool,
    /// `!!str` and the like: the core-schema tag suffix, if any.
    pub tag: Option<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    pub key: Node,
    pub value: Node,
}

impl Node {
    pub fn scalar(text: impl Into<String>, plain: bool, span: Span) -> Node {
        Node {
            kind: Kind::Scalar(Scalar {
                text: text.into(),
                plain,
                tag: None,
            }),
            span,
        }
    }
    /// A plain empty scalar, `~` or `null` (any case).
    pub fn is_null(&self) -> bool {
        match &self.kind {
            Kind::Scalar(s) => s.is_null(),
            _ => false,
        }
    }
    /// The key's text, when this node is a scalar.
    pub fn as_str(&self) -> Option<&str> {
        match &self.kind {
            Kind::Scalar(s) => Some(&s.text),
            _ => None,
        }
    }
    /// A short description for messages: `a list`, `a mapping`, `the number 5`, ...
    pub fn describe(&self) -> String {
        match &self.kind {
            Kind::Seq(_) => "a list".into(),
            Kind::Map(_) => "a mapping".into(),
            Kind::Scalar(s) if s.is_null() => "no value".into(),
            Kind::Scalar(s) => {
                let shown: String = s.text.chars().take(40).collect();
                if !s.plain {
                    format!("the string \"{shown}\"")
                } else if s.text.parse::<i64>().is_ok() {
                    format!("the number {shown}")
                } else if matches!(s.text.as_str(), "true" | "false" | "True" | "False") {
                    format!("the boolean {shown}")
                } else {
                    format!("`{shown}`")
                }
            }
        }
    }
    fn count(&self) -> usize {
        match &self.kind {
            Kind::Scalar(_) => 1,
            Kind::Seq(items) => 1 + items.iter().map(Node::count).sum::<usize>(),
            Kind::Map(entries) => {
                1 + entries
                    .iter()
                    .map(|e| e.key.count() + e.value.count())
                    .sum::<usize>()
            }
        }
    }
}

impl Scalar {
    pub fn is_null(&self) -> bool {
        self.tag.is_none()
            && self.plain
            && matches!(self.text.as_str(), "" | "~" | "null" | "Null" | "NULL")
    }
}

/// Converts a parser span to ours (columns 1-based, length on the first line).
fn span_of(source: usize, s: &PSpan, text_lines: &[&str]) -> Span {
    let line = s.start.line();
    let col = s.start.col() + 1;
    let len = if s.end.line() == line && s.end.col() > s.start.col() {
        s.end.col() - s.start.col()
    } else {
        let line_len = text_lines
            .get(line.wrapping_sub(1))
            .map(|l| l.chars().count())
            .unwrap_or(0);
        line_len.saturating_sub(col - 1)
    };
    Span::new(source, line, col, len)
}

enum Frame {
    Seq {
        span: Span,
        items: Vec<Node>,
        anchor: usize,
    },
    Map {
        span: Span,
        entries: Vec<Entry>,
        key: Option<Node>,
        anchor: usize,
    },
}

/// Parses one YAML document. Returns the root (None when the input is empty or unreadable) and
/// every problem found (syntax errors stop the parse; duplicate keys do not).
pub fn parse(text: &str, source: usize) -> (Option<Node>, Vec<Diagnostic>) {
    let lines: Vec<&str> = text.lines().collect();
    let mut diags = Vec::new();
    let mut parser = Parser::new_from_str(text);
    let mut stack: Vec<Frame> = Vec::new();
    let mut anchors: HashMap<usize, Node> = HashMap::new();
    let mut root: Option<Node> = None;
    let mut documents = 0usize;
    let mut budget = 0usize;

    loop {
        let (event, pspan) = match parser.next_event() {
            None => break,
            Some(Ok(ev)) => ev,
            Some(Err(e)) => {
                let m = e.marker();
                let info = e.info();
                let info = if info.is_empty() {
                    "invalid YAML".to_string()
                } else {
                    info
                };
                diags.push(Diagnostic::error(
                    format!("YAML syntax error: {info}"),
                    Some(Span::new(source, m.line(), m.col() + 1, 1)),
                    "fix the YAML syntax here (check the indentation, that `key: value` has a \
                     space after the colon, and quote values that contain `: `, `#`, `{` or `[`)",
                ));
                return (None, diags);
            }
        };
        let span = span_of(source, &pspan, &lines);
        let completed: Option<Node> = match event {
            Event::StreamStart | Event::StreamEnd | Event::DocumentEnd => None,
            Event::DocumentStart(..) => {
                documents += 1;
                if documents > 1 {
                    diags.push(Diagnostic::error(
                        "a stack file holds exactly one YAML document, this is a second one",
                        Some(span),
                        "remove the second document (from this `---` on), or move it to its own \
                         stack file",
                    ));
                    return (root, diags);
                }
                None
            }
            Event::Alias(id) => match anchors.get(&id) {
                Some(node) => {
                    budget += node.count();
                    let mut node = node.clone();
                    node.span = span;
                    Some(node)
                }
                None => {
                    diags.push(Diagnostic::error(
                        "this alias refers to an anchor that is not defined before it",
                        Some(span),
                        "define the anchor (`&name`) before using the alias (`*name`)",
                    ));
                    return (None, diags);
                }
            },
            Event::UnresolvedAlias(name) => {
                diags.push(Diagnostic::error(
                    format!("alias `*{name}` refers to an anchor that is not defined before it"),
                    Some(span),
                    format!("define `&{name}` before using `*{name}`"),
                ));
                return (None, diags);
            }
            Event::Anchor(..) => None,
            #[allow(unreachable_patterns)]
            Event::Scalar(value, style, anchor, tag) => {
                let tag = tag.and_then(|t| t.core_suffix().map(str::to_string));
                let kind = Kind::Scalar(Scalar {
                    text: value.into_owned(),
                    plain: style == ScalarStyle::Plain,
                    tag,
                });
                Some(complete(kind, span, anchor, &mut budget, &mut anchors))
            }
            Event::SequenceStart(_, anchor, _) => {
                stack.push(Frame::Seq {
                    span,
                    items: Vec::new(),
                    anchor,
                });
                None
            }
            Event::MappingStart(_, anchor, _) => {
                stack.push(Frame::Map {
                    span,
                    entries: Vec::new(),
                    key: None,
                    anchor,
                });
                None
            }
            Event::SequenceEnd => match stack.pop() {
                Some(Frame::Seq {
                    span,
                    items,
                    anchor,
                }) => Some(complete(
                    Kind::Seq(items),
                    span,
                    anchor,
                    &mut budget,
                    &mut anchors,
                )),
                _ => None,
            },
            Event::MappingEnd => match stack.pop() {
                Some(Frame::Map {
                    span,
                    entries,
                    anchor,
                    ..
                }) => {
                    let kind = Kind::Map(merge_and_check(entries, &mut diags));
                    Some(complete(kind, span, anchor, &mut budget, &mut anchors))
                }
                _ => None,
            },
            _ => None,
        };
        if budget > NODE_BUDGET {
            diags.push(Diagnostic::error(
                format!("the document expands to more than {NODE_BUDGET} values (aliases)"),
                Some(span),
                "write the values out instead of nesting aliases",
            ));
            return (None, diags);
        }
        if let Some(node) = completed {
            match stack.last_mut() {
                None => root = Some(node),
                Some(Frame::Seq { items, .. }) => items.push(node),
                Some(Frame::Map { entries, key, .. }) => match key.take() {
                    None => *key = Some(node),
                    Some(k) => entries.push(Entry {
                        key: k,
                        value: node,
                    }),
                },
            }
        }
    }
    (root, diags)
}

/// Applies `<<` merge keys (explicit keys win, then earlier merges) and reports duplicate keys.
/// A node just completed: counted against the budget and, when it has an anchor (not 0),
/// remembered for the aliases that follow.
fn complete(
    kind: Kind,
    span: Span,
    anchor: usize,
    budget: &mut usize,
    anchors: &mut HashMap<usize, Node>,
) -> Node {
    *budget += 1;
    let node = Node { kind, span };
    if anchor != 0 {
        anchors.insert(anchor, node.clone());
    }
    node
}

fn merge_and_check(entries: Vec<Entry>, diags: &mut Vec<Diagnostic>) -> Vec<Entry> {
    let mut explicit: Vec<Entry> = Vec::new();
    let mut merged: Vec<Entry> = Vec::new();
    for entry in entries {
        let is_merge = matches!(&entry.key.kind, Kind::Scalar(s) if s.plain && s.text == "<<");
        if is_merge {
            match entry.value.kind {
                Kind::Map(m) => merged.extend(m),
                Kind::Seq(items) => {
                    for item in items {
                        match item.kind {
                            Kind::Map(m) => merged.extend(m),
                            _ => diags.push(Diagnostic::error(
                                "a `<<` merge list may only hold mappings",
                                Some(item.span),
                                "merge aliases of mappings only (`<<: [*a, *b]`)",
                            )),
                        }
                    }
                }
                _ => diags.push(Diagnostic::error(
                    "`<<` merges a mapping into this one, but its value is not a mapping",
                    Some(entry.value.span),
                    "give `<<` an alias of a mapping (`<<: *defaults`)",
                )),
            }
            continue;
        }
        if let Some(first) = explicit
            .iter()
            .find(|e| e.key.as_str() == entry.key.as_str())
        {
            if entry.key.as_str().is_some() {
                diags.push(Diagnostic::error(
                    format!(
                        "duplicate key `{}` (first given at line {})",
                        entry.key.as_str().unwrap_or_default(),
                        first.key.span.line
                    ),
                    Some(entry.key.span),
                    "keep only one of the two entries",
                ));
                continue;
            }
        }
        explicit.push(entry);
    }
    for m in merged {
        if !explicit.iter().any(|e| e.key.as_str() == m.key.as_str()) {
            explicit.push(m);
        }
    }
    explicit
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(text: &str) -> Node {
        let (node, diags) = parse(text, 0);
        assert!(diags.is_empty(), "{diags:?}");
        node.unwrap()
    }

    /// The entries of the mapping `n`.
    fn entries(n: &Node) -> &[Entry] {
        let Kind::Map(entries) = &n.kind else {
            panic!("not a mapping: {n:?}")
        };
        entries
    }

    #[test]
    fn keeps_scalar_text_and_positions() {
        let n = p("a:\n  b: 8.10\n  c: \"x\"\n");
        let inner = entries(&entries(&n)[0].value);
        assert_eq!(inner[0].value.as_str(), Some("8.10"));
        assert_eq!(
            (inner[0].value.span.line, inner[0].value.span.column),
            (2, 6)
        );
        assert_eq!(inner[0].value.span.len, 4);
        assert_eq!((inner[0].key.span.line, inner[0].key.span.column), (2, 3));
        let Kind::Scalar(c) = &inner[1].value.kind else {
            panic!()
        };
        assert!(!c.plain);
    }

    #[test]
    fn expands_aliases_and_merges() {
        let n = p("base: &b {x: 1, y: 2}\nother:\n  <<: *b\n  y: 3\n");
        let other = entries(&entries(&n)[1].value);
        let keys: Vec<_> = other
            .iter()
            .map(|e| (e.key.as_str(), e.value.as_str()))
            .collect();
        assert_eq!(keys, vec![(Some("y"), Some("3")), (Some("x"), Some("1"))]);
    }

    #[test]
    fn reports_syntax_errors_and_duplicates() {
        let (_, d) = parse("a: [1, 2\n", 0);
        assert_eq!(d.len(), 1);
        assert!(d[0].message.starts_with("YAML syntax error"));
        let (_, d) = parse("a: 1\nb: 2\na: 3\n", 0);
        assert_eq!(d[0].message, "duplicate key `a` (first given at line 1)");
        assert_eq!(d[0].span.map(|s| (s.line, s.column)), Some((3, 1)));
        let (_, d) = parse("a: 1\n---\nb: 2\n", 0);
        assert!(d[0].message.contains("one YAML document"));
    }

    #[test]
    fn alias_bombs_are_refused() {
        let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..8 {
            let prev = i - 1;
            text.push_str(&format!(
                "a{i}: &a{i} [*a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, \
                 *a{prev}, *a{prev}, *a{prev}, *a{prev}]\n"
            ));
        }
        let (_, d) = parse(&text, 0);
        assert!(d[0].message.contains("expands to more than"), "{d:?}");
    }
}
