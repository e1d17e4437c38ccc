//! Structural checking against the JSON Schema generated from the model: unknown keys (with the
//! closest known key), wrong types, missing required keys, unknown enum values. Produces the JSON
//! value serde then turns into a [`crate::Stack`], and the map from field path to source span.
//!
//! Using the generated schema means the checker, the schema editors see and the model can never
//! disagree.

use crate::diag::{closest, Diagnostic, Span};
use crate::yaml::{Kind, Node};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// Where each field of the stack was given: path (`web.instance_types[1]`) -> spans.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PathMap {
    entries: BTreeMap<String, Located>,
}

/// The spans of one field: its key (absent for list items and the root) and its value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Located {
    pub key: Option<Span>,
    pub value: Span,
}

impl PathMap {
    pub fn insert(&mut self, path: String, key: Option<Span>, value: Span) {
        self.entries.insert(path, Located { key, value });
    }
    /// The spans of exactly this path, if it was given.
    pub fn get(&self, path: &str) -> Option<Located> {
        self.entries.get(path).copied()
    }
    /// True when the path was given in the input (file or override).
    pub fn given(&self, path: &str) -> bool {
        self.entries.contains_key(path)
    }
    /// The value span of `path`, or the key of its nearest given ancestor (a defaulted field is
    /// reported at the section that would hold it).
    pub fn locate(&self, path: &str) -> Option<Span> {
        if let Some(l) = self.entries.get(path) {
            return Some(l.value);
        }
        let mut p = path;
        loop {
            if let Some(l) = self.entries.get(p) {
                return Some(l.key.unwrap_or(l.value));
            }
            if p.is_empty() {
                return None;
            }
            p = parent(p);
        }
    }
    /// The key span of `path` if given, else [`PathMap::locate`].
    pub fn locate_key(&self, path: &str) -> Option<Span> {
        match self.entries.get(path) {
            Some(Located { key: Some(k), .. }) => Some(*k),
            _ => self.locate(path),
        }
    }
    pub fn paths(&self) -> impl Iterator<Item = &str> {
        self.entries.keys().map(String::as_str)
    }
}

/// `a.b[1]` -> `a.b`, `a.b` -> `a`, `a` -> ``.
pub fn parent(path: &str) -> &str {
    match path.rfind(['.', '[']) {
        Some(i) => &path[..i],
        None => "",
    }
}

pub fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// The outcome of checking the tree against the schema.
pub struct Checked {
    pub value: Option<Value>,
    pub paths: PathMap,
    pub diagnostics: Vec<Diagnostic>,
}

/// Checks `root` against `schema` (the root schema, with `$defs`).
pub fn check(root: &Node, schema: &Value) -> Checked {
    let mut c = Checker {
        root: schema,
        paths: PathMap::default(),
        diags: Vec::new(),
    };
    c.paths.insert(String::new(), None, root.span);
    let value = c.node(root, schema, "", None);
    Checked {
        value,
        paths: c.paths,
        diagnostics: c.diags,
    }
}

struct Checker<'s> {
    root: &'s Value,
    paths: PathMap,
    diags: Vec<Diagnostic>,
}

/// Follows `$ref`s (`#/definitions/Name` or `#/$defs/Name`) and single-element `allOf`s (how
/// draft-07 attaches a description to a reference) to the schema that describes the value.
pub fn resolve<'s>(root: &'s Value, mut schema: &'s Value) -> &'s Value {
    for _ in 0..16 {
        if let Some(Value::Array(all)) = schema.get("allOf") {
            if all.len() == 1 {
                schema = &all[0];
                continue;
            }
        }
        let Some(r) = schema.get("$ref").and_then(Value::as_str) else {
            return schema;
        };
        let found = if let Some(name) = r.strip_prefix("#/definitions/") {
            root.get("definitions").and_then(|d| d.get(name))
        } else if let Some(name) = r.strip_prefix("#/$defs/") {
            root.get("$defs").and_then(|d| d.get(name))
        } else {
            None
        };
        match found {
            Some(s) => schema = s,
            None => return schema,
        }
    }
    schema
}

/// The types a schema admits (`type` as a string or a list).
fn types(schema: &Value) -> Vec<&str> {
    match schema.get("type") {
        Some(Value::String(t)) => vec![t.as_str()],
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

/// The allowed values of a string enum (`enum` or `oneOf` of `const`s).
pub fn enum_values(schema: &Value) -> Option<Vec<String>> {
    if let Some(Value::Array(values)) = schema.get("enum") {
        return Some(
            values
                .iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect(),
        );
    }
    if let Some(Value::Array(alts)) = schema.get("oneOf") {
        let consts: Vec<String> = alts
            .iter()
            .filter_map(|a| a.get("const").and_then(Value::as_str).map(str::to_string))
            .collect();
        if consts.len() == alts.len() {
            return Some(consts);
        }
    }
    None
}

/// The non-null alternative of an `anyOf: [X, null]` (an `Option`), and whether null is allowed.
fn split_nullable(schema: &Value) -> (Option<&Value>, bool) {
    if let Some(Value::Array(alts)) = schema.get("anyOf").or_else(|| schema.get("oneOf")) {
        let non_null: Vec<&Value> = alts
            .iter()
            .filter(|a| a.get("type").and_then(Value::as_str) != Some("null"))
            .collect();
        let nullable = non_null.len() < alts.len();
        if non_null.len() == 1 {
            return (Some(non_null[0]), nullable);
        }
    }
    (None, types(schema).contains(&"null"))
}

fn display_path(path: &str) -> String {
    if path.is_empty() {
        "the stack file".into()
    } else {
        format!("`{path}`")
    }
}

/// The first sentence of a schema description, for fixes.
fn hint(schema: &Value) -> String {
    let d = schema
        .get("description")
        .and_then(Value::as_str)
        .unwrap_or("");
    let d = d.replace('\n', " ");
    // The first sentence (not cut at `e.g.` or `i.e.`), without its period.
    let mut end = d.len();
    for (i, _) in d.match_indices(". ") {
        if !d[..i].ends_with("e.g") && !d[..i].ends_with("i.e") {
            end = i;
            break;
        }
    }
    d[..end].trim_end_matches('.').to_string()
}

impl<'s> Checker<'s> {
    fn err(&mut self, path: &str, message: String, span: Span, fix: String) {
        let mut d = Diagnostic::error(message, Some(span), fix);
        d.paths.push(path.to_string());
        self.diags.push(d);
    }

    /// The error for `node` at `path` not being `wanted` ("`path` must be `wanted`, found ...").
    fn mistyped(&mut self, path: &str, node: &Node, wanted: &str, fix: String) {
        let message = format!(
            "{} must be {wanted}, found {}",
            display_path(path),
            node.describe()
        );
        self.err(path, message, node.span, fix);
    }

    fn node(
        &mut self,
        node: &Node,
        schema: &'s Value,
        path: &str,
        key: Option<Span>,
    ) -> Option<Value> {
        self.paths.insert(path.to_string(), key, node.span);
        if schema == &Value::Bool(true) || schema.as_object().is_some_and(|o| o.is_empty()) {
            return Some(free(node));
        }
        let resolved = resolve(self.root, schema);
        if let Some(values) = enum_values(resolved) {
            return self.enumeration(node, &values, path);
        }
        let (inner, nullable) = split_nullable(resolved);
        if nullable && node.is_null() {
            return Some(Value::Null);
        }
        if let Some(inner) = inner {
            return self.node(node, inner, path, key);
        }
        let ts: Vec<&str> = types(resolved)
            .into_iter()
            .filter(|t| *t != "null")
            .collect();
        match ts.as_slice() {
            ["object"] => self.object(node, resolved, path, key),
            ["array"] => self.array(node, resolved, path),
            [single] => self.scalar(node, &[single], path),
            [] => Some(free(node)),
            many => {
                let many: Vec<&str> = many.to_vec();
                self.scalar(node, &many, path)
            }
        }
    }

    fn enumeration(&mut self, node: &Node, values: &[String], path: &str) -> Option<Value> {
        let list = values
            .iter()
            .map(|v| format!("`{v}`"))
            .collect::<Vec<_>>()
            .join(", ");
        match &node.kind {
            Kind::Scalar(s) if !s.is_null() && values.iter().any(|v| v == &s.text) => {
                Some(Value::String(s.text.clone()))
            }
            Kind::Scalar(s) if !s.is_null() => {
                let fix = match closest(&s.text, values.iter().map(String::as_str)) {
                    Some(c) => format!("did you mean `{c}`? The allowed values are {list}"),
                    None => format!("use one of {list}"),
                };
                self.err(
                    path,
                    format!(
                        "{} is `{}`, which is not an allowed value",
                        display_path(path),
                        s.text
                    ),
                    node.span,
                    fix,
                );
                None
            }
            _ => {
                self.mistyped(
                    path,
                    node,
                    &format!("one of {list}"),
                    format!("write one of {list}"),
                );
                None
            }
        }
    }

    fn object(
        &mut self,
        node: &Node,
        schema: &'s Value,
        path: &str,
        key: Option<Span>,
    ) -> Option<Value> {
        let Kind::Map(entries) = &node.kind else {
            let fix = if node.is_null() {
                format!(
                    "add the keys of {} below it, or remove the empty key",
                    display_path(path)
                )
            } else {
                format!(
                    "write {} as `key: value` lines indented below it",
                    display_path(path)
                )
            };
            self.mistyped(path, node, "a mapping of keys to values", fix);
            return None;
        };
        static EMPTY: std::sync::OnceLock<Map<String, Value>> = std::sync::OnceLock::new();
        let props = schema
            .get("properties")
            .and_then(Value::as_object)
            .unwrap_or_else(|| EMPTY.get_or_init(Map::new));
        let additional = schema.get("additionalProperties");
        let mut out = Map::new();
        let mut ok = true;
        for entry in entries {
            let Some(k) = entry.key.as_str().filter(|_| !entry.key.is_null()) else {
                self.err(
                    path,
                    format!(
                        "keys in {} must be names, found {}",
                        display_path(path),
                        entry.key.describe()
                    ),
                    entry.key.span,
                    "use a plain name as the key".into(),
                );
                ok = false;
                continue;
            };
            let child = join(path, k);
            if let Some(prop) = props.get(k) {
                match self.node(&entry.value, prop, &child, Some(entry.key.span)) {
                    Some(v) => {
                        out.insert(k.to_string(), v);
                    }
                    None => {
                        // Dropped: serde uses the default, validation skips this path.
                        if schema
                            .get("required")
                            .and_then(Value::as_array)
                            .is_some_and(|r| r.iter().any(|x| x == k))
                        {
                            ok = false;
                        }
                    }
                }
            } else {
                match additional {
                    Some(Value::Bool(false)) => {
                        self.paths
                            .insert(child.clone(), Some(entry.key.span), entry.value.span);
                        let fix = match closest(k, props.keys().map(String::as_str)) {
                            Some(c) => format!("did you mean `{c}`?"),
                            None => {
                                let mut keys: Vec<&str> =
                                    props.keys().map(String::as_str).collect();
                                keys.sort();
                                format!(
                                    "remove it; the keys of {} are {}",
                                    display_path(path),
                                    keys.iter()
                                        .map(|k| format!("`{k}`"))
                                        .collect::<Vec<_>>()
                                        .join(", ")
                                )
                            }
                        };
                        let where_ = if path.is_empty() {
                            "at the top level".to_string()
                        } else {
                            format!("in `{path}`")
                        };
                        self.err(
                            &child,
                            format!("unknown key `{k}` {where_}"),
                            entry.key.span,
                            fix,
                        );
                    }
                    Some(s) => {
                        // A bad entry is dropped; the others are kept and checked further.
                        if let Some(v) = self.node(&entry.value, s, &child, Some(entry.key.span)) {
                            out.insert(k.to_string(), v);
                        }
                    }
                    None => {
                        out.insert(k.to_string(), free(&entry.value));
                    }
                }
            }
        }
        if let Some(Value::Array(required)) = schema.get("required") {
            for r in required.iter().filter_map(Value::as_str) {
                if !entries.iter().any(|e| e.key.as_str() == Some(r)) {
                    let h = props.get(r).map(hint).unwrap_or_default();
                    let h = if h.is_empty() {
                        String::new()
                    } else {
                        format!(" ({h})")
                    };
                    let where_ = if path.is_empty() {
                        "at the top level".to_string()
                    } else {
                        format!("under `{path}`")
                    };
                    self.err(
                        &join(path, r),
                        format!("missing required key `{}`", join(path, r)),
                        key.unwrap_or(Span {
                            len: 1,
                            ..node.span
                        }),
                        format!("add `{r}:` {where_}{h}"),
                    );
                    ok = false;
                }
            }
        }
        ok.then_some(Value::Object(out))
    }

    fn array(&mut self, node: &Node, schema: &'s Value, path: &str) -> Option<Value> {
        let Kind::Seq(items) = &node.kind else {
            self.mistyped(
                path,
                node,
                "a list",
                "write a list, e.g. `[a, b, c]` or one `- item` per line".into(),
            );
            return None;
        };
        let item_schema = schema.get("items").unwrap_or(&Value::Bool(true));
        let mut out = Vec::new();
        let mut ok = true;
        for (i, item) in items.iter().enumerate() {
            match self.node(item, item_schema, &format!("{path}[{i}]"), None) {
                Some(v) => out.push(v),
                None => ok = false,
            }
        }
        ok.then_some(Value::Array(out))
    }

    fn scalar(&mut self, node: &Node, allowed: &[&str], path: &str) -> Option<Value> {
        let names: Vec<&str> = allowed
            .iter()
            .map(|t| match *t {
                "string" => "a string",
                "integer" => "a whole number",
                "number" => "a number",
                "boolean" if allowed.len() == 1 => "true or false",
                "boolean" => "a boolean",
                other => other,
            })
            .collect();
        let wanted = match names.split_last() {
            Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
            _ => names.join(""),
        };
        let Kind::Scalar(s) = &node.kind else {
            let fix = format!(
                "write a single value ({wanted}) after `{}:`",
                last_key(path)
            );
            self.mistyped(path, node, &wanted, fix);
            return None;
        };
        if s.is_null() {
            self.err(
                path,
                format!("{} has no value", display_path(path)),
                node.span,
                format!(
                    "write {wanted} after `{}:`, or remove the key to use the default",
                    last_key(path)
                ),
            );
            return None;
        }
        let forced_str = s.tag.as_deref() == Some("str");
        if allowed.len() > 1 {
            // Several scalar types (free-form settings): infer like YAML's core schema.
            let v = if forced_str || !s.plain {
                Value::String(s.text.clone())
            } else {
                infer(&s.text)
            };
            let kind = match &v {
                Value::String(_) => "string",
                Value::Bool(_) => "boolean",
                Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
                Value::Number(_) => "number",
                _ => "null",
            };
            if allowed.contains(&kind) || (kind == "integer" && allowed.contains(&"number")) {
                return Some(v);
            }
            self.mistyped(path, node, &wanted, format!("write {wanted}"));
            return None;
        }
        match allowed[0] {
            "string" => Some(Value::String(s.text.clone())),
            "integer" => {
                let parsed = if s.plain && !forced_str {
                    parse_int(&s.text)
                } else {
                    None
                };
                match parsed {
                    Some(n) => Some(Value::from(n)),
                    None => {
                        let fix = if !s.plain && parse_int(&s.text).is_some() {
                            format!("remove the quotes: `{}: {}`", last_key(path), s.text)
                        } else if s.text.parse::<f64>().is_ok() {
                            "write a whole number (no decimals)".to_string()
                        } else {
                            format!("write a whole number, e.g. `{}: 2`", last_key(path))
                        };
                        self.mistyped(path, node, "a whole number", fix);
                        None
                    }
                }
            }
            "number" => match s
                .text
                .parse::<f64>()
                .ok()
                .filter(|f| f.is_finite() && s.plain)
            {
                Some(f) => serde_json::Number::from_f64(f).map(Value::Number),
                None => {
                    self.mistyped(
                        path,
                        node,
                        "a number",
                        "write a number without quotes".into(),
                    );
                    None
                }
            },
            "boolean" => match (s.plain && !forced_str, s.text.as_str()) {
                (true, "true" | "True" | "TRUE") => Some(Value::Bool(true)),
                (true, "false" | "False" | "FALSE") => Some(Value::Bool(false)),
                (_, t) => {
                    let fix = match t.to_lowercase().as_str() {
                        "yes" | "on" | "y" => format!("write `{}: true`", last_key(path)),
                        "no" | "off" | "n" => format!("write `{}: false`", last_key(path)),
                        _ => format!(
                            "write `{}: true` or `{}: false`",
                            last_key(path),
                            last_key(path)
                        ),
                    };
                    self.mistyped(path, node, "true or false", fix);
                    None
                }
            },
            _ => Some(free(node)),
        }
    }
}

fn last_key(path: &str) -> &str {
    let p = path.rsplit('.').next().unwrap_or(path);
    match p.find('[') {
        Some(i) => &p[..i],
        None => p,
    }
}

/// A YAML 1.2 core-schema integer: decimal, `0x`, `0o`, with an optional sign.
fn parse_int(text: &str) -> Option<i64> {
    let (neg, body) = match text.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let n = if let Some(h) = body.strip_prefix("0x") {
        i64::from_str_radix(h, 16).ok()?
    } else if let Some(o) = body.strip_prefix("0o") {
        i64::from_str_radix(o, 8).ok()?
    } else if !body.is_empty() && body.bytes().all(|b| b.is_ascii_digit()) {
        body.parse::<i64>().ok()?
    } else {
        return None;
    };
    Some(if neg { -n } else { n })
}

/// Core-schema typing of a plain scalar.
fn infer(text: &str) -> Value {
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return Value::Null,
        "true" | "True" | "TRUE" => return Value::Bool(true),
        "false" | "False" | "FALSE" => return Value::Bool(false),
        _ => {}
    }
    if let Some(n) = parse_int(text) {
        return Value::from(n);
    }
    let looks_numeric = text.bytes().any(|b| b.is_ascii_digit())
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'+' | b'e' | b'E'));
    if looks_numeric {
        if let Some(n) = text
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
        {
            return Value::Number(n);
        }
    }
    Value::String(text.to_string())
}

/// A node as JSON with core-schema typing (for free-form values).
pub fn free(node: &Node) -> Value {
    match &node.kind {
        Kind::Scalar(s) if s.plain && s.tag.as_deref() != Some("str") => infer(&s.text),
        Kind::Scalar(s) => Value::String(s.text.clone()),
        Kind::Seq(items) => Value::Array(items.iter().map(free).collect()),
        Kind::Map(entries) => Value::Object(
            entries
                .iter()
                .map(|e| {
                    (
                        e.key.as_str().unwrap_or_default().to_string(),
                        free(&e.value),
                    )
                })
                .collect(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reference_of_the_schema_resolves() {
        fn walk(root: &Value, v: &Value, n: &mut usize) {
            match v {
                Value::Object(o) => {
                    if o.contains_key("$ref") {
                        let r = resolve(root, v);
                        assert!(r.get("$ref").is_none() && r.get("allOf").is_none(), "{v}");
                        *n += 1;
                    }
                    o.values().for_each(|c| walk(root, c, n));
                }
                Value::Array(a) => a.iter().for_each(|c| walk(root, c, n)),
                _ => {}
            }
        }
        let schema = crate::json_schema();
        let mut n = 0;
        walk(schema, schema, &mut n);
        assert!(n >= 10, "only {n} references");
    }

    #[test]
    fn parents_and_ints() {
        assert_eq!(parent("web.instance_types[1]"), "web.instance_types");
        assert_eq!(parent("web.max"), "web");
        assert_eq!(parent("web"), "");
        assert_eq!(parse_int("-12"), Some(-12));
        assert_eq!(parse_int("0x10"), Some(16));
        assert_eq!(parse_int("1.5"), None);
        assert_eq!(parse_int(""), None);
        assert_eq!(infer("8.3"), serde_json::json!(8.3));
        assert_eq!(infer("abc"), serde_json::json!("abc"));
    }
}
