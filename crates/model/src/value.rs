//! Field values: plain data, plus references to attributes of other resources that are only
//! known once those resources exist.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The managed properties of one resource, by canonical field name (see [`crate::kind::spec`]).
pub type Fields = BTreeMap<String, Value>;

/// A reference to an attribute of another resource of the same stack, e.g. `net.vpc` / `id` or
/// `db.instance` / `endpoint`. Resolved from the observed attributes of that resource; unknown
/// ("known after apply") while it does not exist yet.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Ref {
    /// The referenced resource.
    pub resource: crate::ResourceId,
    /// The attribute of it ([`crate::KindSpec::attrs`]).
    pub attr: String,
}

impl Ref {
    /// A reference to `attr` of `resource`.
    pub fn new(resource: impl Into<crate::ResourceId>, attr: &str) -> Self {
        Ref {
            resource: resource.into(),
            attr: attr.to_string(),
        }
    }
}

impl std::fmt::Display for Ref {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.resource, self.attr)
    }
}

/// One piece of an interpolated string: literal text or a reference.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Segment {
    /// Literal text.
    Lit(String),
    /// A reference, replaced by the attribute's value.
    Ref(Ref),
}

/// A field value.
///
/// Serialized as plain JSON for the data variants; `Ref` as `{"ref": "db.instance.endpoint"}`,
/// `Interpolated` as `{"interpolated": [...]}` and `Unknown` as `{"unknown": true}` (the JSON plan
/// documents these shapes).
#[derive(Clone, Debug, PartialEq, Default)]
pub enum Value {
    #[default]
    /// No value.
    Null,
    /// A boolean.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A string.
    Str(String),
    /// A list.
    List(Vec<Value>),
    /// A map with string keys.
    Map(BTreeMap<String, Value>),
    /// An attribute of another resource.
    Ref(Ref),
    /// A string built from literals and references (rendered user-data that embeds endpoints).
    Interpolated(Vec<Segment>),
    /// Known only after apply (a reference to a resource that does not exist yet, or whose
    /// attribute changes when it is updated).
    Unknown,
}

impl Value {
    /// A string value.
    pub fn str(s: impl Into<String>) -> Value {
        Value::Str(s.into())
    }
    /// A list of strings.
    pub fn strs<I, S>(items: I) -> Value
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Value::List(items.into_iter().map(|s| Value::Str(s.into())).collect())
    }
    /// A reference to `attr` of `resource`.
    pub fn reference(resource: impl Into<crate::ResourceId>, attr: &str) -> Value {
        Value::Ref(Ref::new(resource, attr))
    }
    /// The string, if this is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }
    /// The integer, if this is one.
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            _ => None,
        }
    }
    /// The boolean, if this is one.
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }
    /// The items, if this is a list.
    pub fn as_list(&self) -> Option<&[Value]> {
        match self {
            Value::List(l) => Some(l),
            _ => None,
        }
    }
    /// The entries, if this is a map.
    pub fn as_map(&self) -> Option<&BTreeMap<String, Value>> {
        match self {
            Value::Map(m) => Some(m),
            _ => None,
        }
    }
    /// True when the value contains no reference, interpolation or unknown part.
    pub fn is_concrete(&self) -> bool {
        match self {
            Value::Ref(_) | Value::Interpolated(_) | Value::Unknown => false,
            Value::List(l) => l.iter().all(Value::is_concrete),
            Value::Map(m) => m.values().all(Value::is_concrete),
            _ => true,
        }
    }
    /// Every reference this value contains (dependencies of the resource that holds it).
    pub fn refs(&self) -> Vec<&Ref> {
        let mut out = Vec::new();
        self.collect_refs(&mut out);
        out
    }
    fn collect_refs<'a>(&'a self, out: &mut Vec<&'a Ref>) {
        match self {
            Value::Ref(r) => out.push(r),
            Value::Interpolated(segs) => out.extend(segs.iter().filter_map(|s| match s {
                Segment::Ref(r) => Some(r),
                Segment::Lit(_) => None,
            })),
            Value::List(l) => l.iter().for_each(|v| v.collect_refs(out)),
            Value::Map(m) => m.values().for_each(|v| v.collect_refs(out)),
            _ => {}
        }
    }
    /// Replace references by the values `lookup` knows; a reference it does not know makes the
    /// enclosing value [`Value::Unknown`] (for an interpolated string: the whole string).
    pub fn resolve(&self, lookup: &dyn Fn(&Ref) -> Option<String>) -> Value {
        match self {
            Value::Ref(r) => lookup(r).map(Value::Str).unwrap_or(Value::Unknown),
            Value::Interpolated(segs) => {
                let mut s = String::new();
                for seg in segs {
                    match seg {
                        Segment::Lit(l) => s.push_str(l),
                        Segment::Ref(r) => match lookup(r) {
                            Some(v) => s.push_str(&v),
                            None => return Value::Unknown,
                        },
                    }
                }
                Value::Str(s)
            }
            Value::List(l) => Value::List(l.iter().map(|v| v.resolve(lookup)).collect()),
            Value::Map(m) => Value::Map(
                m.iter()
                    .map(|(k, v)| (k.clone(), v.resolve(lookup)))
                    .collect(),
            ),
            other => other.clone(),
        }
    }
    /// Short, single-line rendering for plan output: long strings are shown by length and hash.
    pub fn display_short(&self) -> String {
        match self {
            Value::Str(s) if s.len() > 80 || s.contains('\n') => {
                format!(
                    "<{} bytes, sha256:{}>",
                    s.len(),
                    &sha256_hex(s.as_bytes())[..12]
                )
            }
            Value::Unknown => "(known after apply)".to_string(),
            Value::Interpolated(_) => "(known after apply)".to_string(),
            Value::Ref(r) => format!("(known after apply: {r})"),
            other => serde_json::to_string(&other.to_json()).unwrap_or_default(),
        }
    }
    /// The JSON form used by the plan file and `--json`.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::json;
        match self {
            Value::Null => serde_json::Value::Null,
            Value::Bool(b) => json!(b),
            Value::Int(i) => json!(i),
            Value::Str(s) => json!(s),
            Value::List(l) => serde_json::Value::Array(l.iter().map(Value::to_json).collect()),
            Value::Map(m) => {
                serde_json::Value::Object(m.iter().map(|(k, v)| (k.clone(), v.to_json())).collect())
            }
            Value::Ref(r) => json!({ "ref": r.to_string() }),
            Value::Interpolated(segs) => json!({ "interpolated": segs }),
            Value::Unknown => json!({ "unknown": true }),
        }
    }
    /// Inverse of [`Value::to_json`].
    pub fn from_json(v: &serde_json::Value) -> Value {
        use serde_json::Value as J;
        match v {
            J::Null => Value::Null,
            J::Bool(b) => Value::Bool(*b),
            J::Number(n) => Value::Int(n.as_i64().unwrap_or_default()),
            J::String(s) => Value::Str(s.clone()),
            J::Array(a) => Value::List(a.iter().map(Value::from_json).collect()),
            J::Object(o) => {
                if o.len() == 1 {
                    if let Some(J::String(r)) = o.get("ref") {
                        if let Some((res, attr)) = r.rsplit_once('.') {
                            return Value::Ref(Ref::new(res, attr));
                        }
                    }
                    if o.get("unknown") == Some(&J::Bool(true)) {
                        return Value::Unknown;
                    }
                    if let Some(segs) = o.get("interpolated") {
                        if let Ok(segs) = serde_json::from_value(segs.clone()) {
                            return Value::Interpolated(segs);
                        }
                    }
                }
                Value::Map(
                    o.iter()
                        .map(|(k, v)| (k.clone(), Value::from_json(v)))
                        .collect(),
                )
            }
        }
    }
}

impl Serialize for Value {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.to_json().serialize(s)
    }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        serde_json::Value::deserialize(d).map(|j| Value::from_json(&j))
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::Str(s.to_string())
    }
}
impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::Str(s)
    }
}
impl From<i64> for Value {
    fn from(i: i64) -> Self {
        Value::Int(i)
    }
}
impl From<bool> for Value {
    fn from(b: bool) -> Self {
        Value::Bool(b)
    }
}

/// Lower-case hex SHA-256 of `bytes` (content hashes of launch template data, plan digests).
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(bytes);
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolve_replaces_known_refs_and_marks_unknown_ones() {
        let v = Value::Interpolated(vec![
            Segment::Lit("host=".into()),
            Segment::Ref(Ref::new("db.instance", "endpoint")),
        ]);
        let known = |r: &Ref| (r.attr == "endpoint").then(|| "db.example".to_string());
        assert_eq!(v.resolve(&known), Value::str("host=db.example"));
        let none = |_: &Ref| None;
        assert_eq!(v.resolve(&none), Value::Unknown);
        assert_eq!(v.refs().len(), 1);
    }

    #[test]
    fn json_round_trip_keeps_refs_and_unknowns() {
        let v = Value::List(vec![
            Value::reference("net.vpc", "id"),
            Value::Unknown,
            Value::Int(3),
            Value::str("x"),
        ]);
        let j = serde_json::to_string(&v).unwrap();
        assert_eq!(j, r#"[{"ref":"net.vpc.id"},{"unknown":true},3,"x"]"#);
        assert_eq!(serde_json::from_str::<Value>(&j).unwrap(), v);
    }
}
