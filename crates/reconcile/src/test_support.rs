//! What the diff, printer and executor tests share: the stack they run in, its tags, and the
//! observed form of a declared resource.

use moodlestack_model::{spec, Fields, Kind, Lifecycle, Observed, Ref, Resource, Scope, Value};
use std::collections::BTreeMap;

/// The stack every test runs in.
pub fn scope() -> Scope {
    Scope {
        stack: "demo".into(),
        region: "eu-west-1".into(),
    }
}

/// The tags moodlestack gives `id` in the `demo` stack.
pub fn tags(id: &str) -> Value {
    Value::Map(BTreeMap::from([
        ("moodlestack:stack".to_string(), Value::str("demo")),
        ("moodlestack:id".to_string(), Value::str(id)),
        ("Name".to_string(), Value::str(format!("demo-{id}"))),
    ]))
}

/// A declared resource with its tags (for kinds that have them).
pub fn r(id: &str, kind: Kind) -> Resource {
    let res = Resource::new(id, kind);
    if spec(kind).taggable() {
        res.with("tags", tags(id))
    } else {
        res
    }
}

/// A reference to `attr` of `id`.
pub fn rf(id: &str, attr: &str) -> Value {
    Value::reference(id, attr)
}

/// An ingress rule for TCP `port` from `source` (`source_group_id` or `cidr`) = `from`.
pub fn tcp_rule(port: i64, source: &str, from: Value) -> Value {
    Value::Map(BTreeMap::from([
        ("protocol".to_string(), Value::str("tcp")),
        ("from_port".to_string(), Value::Int(port)),
        ("to_port".to_string(), Value::Int(port)),
        (source.to_string(), from),
    ]))
}

/// The web auto scaling group on the web launch template's version: at least 2 instances,
/// `desired_capacity`, at most `max_size`, in the subnets `subnets`.
pub fn web_asg(max_size: i64, desired_capacity: i64, subnets: &[&str]) -> Resource {
    Resource::new("web.asg", Kind::AutoScalingGroup)
        .with("name", "demo-web")
        .with("launch_template_id", rf("web.lt", "id"))
        .with("launch_template_version", rf("web.lt", "version"))
        .with("min_size", 2i64)
        .with("max_size", max_size)
        .with("desired_capacity", desired_capacity)
        .with(
            "subnet_ids",
            Value::List(subnets.iter().map(|s| rf(s, "id")).collect()),
        )
        .with("tags", tags("web.asg"))
}

/// The observed form of `r`: its fields resolved with `known` (refs -> values), the given
/// physical id, and attrs `id` (plus `extra`). References `known` lacks stay unresolved.
pub fn observed_as(
    r: &Resource,
    physical: &str,
    known: &[(&str, &str)],
    extra: &[(&str, &str)],
) -> Observed {
    let lookup = |rf: &Ref| {
        known
            .iter()
            .find(|(id, _)| *id == rf.resource.as_str())
            .map(|(_, v)| v.to_string())
    };
    let fields: Fields = r
        .fields
        .iter()
        .map(|(k, v)| (k.clone(), v.resolve(&lookup)))
        .collect();
    let mut attrs = BTreeMap::from([("id".to_string(), physical.to_string())]);
    attrs.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    Observed {
        id: r.id.clone().into(),
        kind: r.kind,
        physical_id: physical.to_string(),
        fields,
        attrs,
        status: "available".into(),
        lifecycle: Lifecycle::Ready,
    }
}
