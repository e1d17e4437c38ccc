//! `--name NAME` and `--set path=value`: applied to the parsed tree before any checking, so an
//! overridden value is checked like any other and its problems point at the argument.

use crate::diag::{closest, Diagnostic, Source, SourceKind, Sources, Span};
use crate::structure::resolve;
use crate::yaml::{self, Entry, Kind, Node};
use serde_json::Value;

#[derive(Clone, Debug, PartialEq, Eq)]
enum Segment {
    Key(String),
    Index(usize),
}

/// Splits `web.instance_types[1]` into segments. `Err` names what is wrong.
fn split_path(path: &str) -> Result<Vec<Segment>, String> {
    let mut out = Vec::new();
    for part in path.split('.') {
        let (name, mut rest) = match part.find('[') {
            Some(i) => (&part[..i], &part[i..]),
            None => (part, ""),
        };
        if name.is_empty() {
            return Err(format!("the path `{path}` has an empty segment"));
        }
        out.push(Segment::Key(name.to_string()));
        while !rest.is_empty() {
            let Some(end) = rest.find(']') else {
                return Err(format!("the path `{path}` has a `[` without `]`"));
            };
            let index = rest[1..end]
                .parse::<usize>()
                .map_err(|_| format!("`{}` in `{path}` is not a list index", &rest[..=end]))?;
            out.push(Segment::Index(index));
            rest = &rest[end + 1..];
            if !rest.is_empty() && !rest.starts_with('[') {
                return Err(format!("unexpected `{rest}` in the path `{path}`"));
            }
        }
    }
    Ok(out)
}

/// Every path the schema knows (lists as `name[0]`), for suggestions.
pub fn known_paths(schema: &Value) -> Vec<String> {
    let mut out = Vec::new();
    collect_paths(schema, schema, "", &mut out, 0);
    out
}

fn collect_paths(root: &Value, schema: &Value, path: &str, out: &mut Vec<String>, depth: usize) {
    if depth > 8 {
        return;
    }
    let s = resolve(root, schema);
    let s = match s.get("anyOf").and_then(Value::as_array) {
        Some(alts) => alts
            .iter()
            .find(|a| a.get("type").and_then(Value::as_str) != Some("null"))
            .map(|a| resolve(root, a))
            .unwrap_or(s),
        None => s,
    };
    if let Some(props) = s.get("properties").and_then(Value::as_object) {
        for (k, v) in props {
            let p = if path.is_empty() {
                k.clone()
            } else {
                format!("{path}.{k}")
            };
            out.push(p.clone());
            collect_paths(root, v, &p, out, depth + 1);
        }
    }
    if let Some(items) = s.get("items") {
        if resolve(root, items).get("properties").is_some() {
            collect_paths(root, items, &format!("{path}[0]"), out, depth + 1);
        }
    }
}

/// Checks that `segments` name a field of the schema; `Err` is the message and the fix.
fn check_against_schema(
    schema: &Value,
    path: &str,
    segments: &[Segment],
) -> Result<(), (String, String)> {
    let mut s = schema;
    let mut walked = String::new();
    for seg in segments {
        let mut r = resolve(schema, s);
        if let Some(alts) = r.get("anyOf").and_then(Value::as_array) {
            if let Some(a) = alts
                .iter()
                .find(|a| a.get("type").and_then(Value::as_str) != Some("null"))
            {
                r = resolve(schema, a);
            }
        }
        match seg {
            Segment::Key(k) => {
                let props = r.get("properties").and_then(Value::as_object);
                let additional = r.get("additionalProperties");
                if let Some(p) = props.and_then(|p| p.get(k)) {
                    s = p;
                } else if let Some(a) = additional.filter(|a| **a != Value::Bool(false)) {
                    s = a;
                } else {
                    let all = known_paths(schema);
                    let fix = match closest(path, all.iter().map(String::as_str)) {
                        Some(c) => format!("did you mean `{c}`?"),
                        None if props.is_some() => {
                            let keys: Vec<String> = props
                                .into_iter()
                                .flat_map(|p| p.keys())
                                .map(|k| format!("`{}`", crate::structure::join(&walked, k)))
                                .collect();
                            format!("use one of {}", keys.join(", "))
                        }
                        None => format!("`{walked}` has no fields; set it as a whole"),
                    };
                    return Err((format!("`--set {path}`: there is no field `{path}`"), fix));
                }
                walked = crate::structure::join(&walked, k);
            }
            Segment::Index(i) => {
                if r.get("type").and_then(Value::as_str) != Some("array") {
                    return Err((
                        format!("`--set {path}`: `{walked}` is not a list"),
                        format!("remove `[{i}]` from the path"),
                    ));
                }
                s = r.get("items").unwrap_or(&Value::Bool(true));
                walked = format!("{walked}[{i}]");
            }
        }
    }
    Ok(())
}

/// Applies `--name` and every `--set` to `root` (a mapping). Each argument becomes a source in
/// `sources` so problems in its value point at it.
pub fn apply(
    root: &mut Node,
    name: Option<&str>,
    sets: &[String],
    schema: &Value,
    sources: &mut Sources,
) -> Vec<Diagnostic> {
    let mut diags = Vec::new();
    if let Some(name) = name {
        let arg = format!("--name {name}");
        let id = sources.add(Source {
            name: arg.clone(),
            text: arg,
            kind: SourceKind::Argument,
        });
        let span = Span::new(id, 1, 8, name.chars().count());
        let value = Node::scalar(name, false, span);
        if let Err(d) = set_at(
            root,
            &[Segment::Key("name".into())],
            value,
            Span::new(id, 1, 1, 6),
        ) {
            diags.push(d);
        }
    }
    for set in sets {
        let arg = format!("--set {set}");
        let id = sources.add(Source {
            name: arg.clone(),
            text: arg.clone(),
            kind: SourceKind::Argument,
        });
        let whole = Span::new(id, 1, 7, set.chars().count());
        let Some((path, value_text)) = set.split_once('=') else {
            diags.push(Diagnostic::error(
                format!("`--set {set}` has no `=`"),
                Some(whole),
                format!("write `--set PATH=VALUE`, e.g. `--set {set}=...`"),
            ));
            continue;
        };
        let path_span = Span::new(id, 1, 7, path.chars().count());
        let segments = match split_path(path) {
            Ok(s) => s,
            Err(e) => {
                diags.push(Diagnostic::error(
                    format!("`--set {set}`: {e}"),
                    Some(path_span),
                    "write the path as dotted keys with list indexes, e.g. `web.instance_types[0]`",
                ));
                continue;
            }
        };
        if let Err((message, fix)) = check_against_schema(schema, path, &segments) {
            diags.push(Diagnostic::error(message, Some(path_span), fix));
            continue;
        }
        // The value is YAML: a scalar or a flow collection (`[a, b]`, `{k: v}`).
        let offset = 7 + path.chars().count() + 1; // "--set " + path + "="
        let (parsed, mut problems) = yaml::parse(value_text, id);
        for p in &mut problems {
            if let Some(s) = &mut p.span {
                if s.line == 1 {
                    s.column += offset - 1;
                }
            }
            p.message = format!("`--set {set}`: {}", p.message);
        }
        if !problems.is_empty() {
            diags.extend(problems);
            continue;
        }
        let value_span = Span::new(id, 1, offset, value_text.chars().count());
        let mut value = parsed.unwrap_or_else(|| Node::scalar("", true, value_span));
        shift(&mut value, offset - 1);
        if value.is_null() {
            value.span = value_span;
        }
        if let Err(d) = set_at(root, &segments, value, path_span) {
            diags.push(d);
        }
    }
    diags
}

fn shift(node: &mut Node, by: usize) {
    if node.span.line == 1 {
        node.span.column += by;
    }
    match &mut node.kind {
        Kind::Scalar(_) => {}
        Kind::Seq(items) => items.iter_mut().for_each(|n| shift(n, by)),
        Kind::Map(entries) => entries.iter_mut().for_each(|e| {
            shift(&mut e.key, by);
            shift(&mut e.value, by);
        }),
    }
}

/// Puts `value` at `segments`, creating mappings on the way (their spans: `at`).
fn set_at(root: &mut Node, segments: &[Segment], value: Node, at: Span) -> Result<(), Diagnostic> {
    let mut cur = root;
    let mut walked = String::new();
    for (i, seg) in segments.iter().enumerate() {
        let last = i + 1 == segments.len();
        if cur.is_null() && matches!(seg, Segment::Key(_)) {
            *cur = Node {
                kind: Kind::Map(Vec::new()),
                span: at,
            };
        }
        match seg {
            Segment::Key(k) => {
                let described = cur.describe();
                let Kind::Map(entries) = &mut cur.kind else {
                    return Err(Diagnostic::error(
                        format!("cannot set `{k}` inside `{walked}`: the stack file gives it {described}"),
                        Some(at),
                        format!("set `{walked}` as a whole instead"),
                    ));
                };
                let pos = match entries
                    .iter()
                    .position(|e| e.key.as_str() == Some(k.as_str()))
                {
                    Some(p) => p,
                    None => {
                        let placeholder = Node {
                            kind: Kind::Map(Vec::new()),
                            span: at,
                        };
                        entries.push(Entry {
                            key: Node::scalar(k.clone(), true, at),
                            value: placeholder,
                        });
                        entries.len() - 1
                    }
                };
                walked = crate::structure::join(&walked, k);
                let entry = &mut entries[pos];
                if last {
                    entry.key.span = at;
                    entry.value = value;
                    return Ok(());
                }
                cur = &mut entry.value;
            }
            Segment::Index(idx) => {
                let Kind::Seq(items) = &mut cur.kind else {
                    return Err(Diagnostic::error(
                        format!("`{walked}` is not a list, so `[{idx}]` cannot be set"),
                        Some(at),
                        format!("set `{walked}` as a whole, e.g. `{walked}=[a, b]`"),
                    ));
                };
                if *idx > items.len() {
                    return Err(Diagnostic::error(
                        format!(
                            "`{walked}` has {} items, so `[{idx}]` does not exist",
                            items.len()
                        ),
                        Some(at),
                        format!("use an index up to {} (that one appends)", items.len()),
                    ));
                }
                if *idx == items.len() {
                    items.push(Node {
                        kind: Kind::Map(Vec::new()),
                        span: at,
                    });
                }
                walked = format!("{walked}[{idx}]");
                if last {
                    items[*idx] = value;
                    return Ok(());
                }
                cur = &mut items[*idx];
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_split() {
        assert_eq!(
            split_path("web.instance_types[1]").unwrap(),
            vec![
                Segment::Key("web".into()),
                Segment::Key("instance_types".into()),
                Segment::Index(1)
            ]
        );
        assert!(split_path("web..max").is_err());
        assert!(split_path("web.x[a]").is_err());
        assert!(split_path("web.x[1").is_err());
    }
}
