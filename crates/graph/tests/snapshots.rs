//! The desired graph of the shipped stacks (`stacks/demo.yaml`, `stacks/production.yaml`), built
//! with the real user-data renderer and a fixed image, as snapshots. User-data is redacted to the
//! references it embeds (its text is covered by the render crate's own snapshots, so a template
//! change does not churn these); other interpolated values (IAM policies) are shown with their
//! markers.

use moodlestack_graph::{build, marker, Image};
use moodlestack_model::{Resource, Segment, Value};
use moodlestack_stack::{instance_types, load_file, LoadOptions, Stack};
use std::path::PathBuf;

fn load(name: &str) -> Stack {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../stacks")
        .join(name);
    load_file(&path, &LoadOptions::default()).unwrap_or_else(|e| panic!("{e}"))
}

/// A fixed image of the architecture of the stack's web instance types.
fn image(stack: &Stack) -> Image {
    let arch = stack
        .web
        .instance_types
        .first()
        .and_then(|t| instance_types::lookup(t))
        .map(|t| t.arch.as_str())
        .unwrap_or("x86_64");
    Image {
        image_id: "ami-0123456789abcdef0".into(),
        architecture: arch.into(),
        root_device_name: "/dev/sda1".into(),
        account_id: "123456789012".into(),
    }
}

/// The text of an interpolated value with each reference written as its marker.
fn with_markers(segs: &[Segment]) -> String {
    segs.iter()
        .map(|s| match s {
            Segment::Lit(l) => l.clone(),
            Segment::Ref(r) => marker(r.resource.as_str(), &r.attr),
        })
        .collect()
}

fn view_value(field: &str, v: &Value) -> serde_json::Value {
    match v {
        Value::Interpolated(_) if field == "user_data" => {
            // The text belongs to the render crate's snapshots; here only what it references.
            let mut refs: Vec<String> = v.refs().iter().map(|r| r.to_string()).collect();
            refs.sort();
            refs.dedup();
            serde_json::json!({ "redacted": "rendered by moodlestack-render", "refs": refs })
        }
        Value::Interpolated(segs) => serde_json::json!({ "interpolated": with_markers(segs) }),
        Value::Map(m) => serde_json::Value::Object(
            m.iter()
                .map(|(k, v)| (k.clone(), view_value(k, v)))
                .collect(),
        ),
        Value::List(l) => serde_json::Value::Array(l.iter().map(|v| view_value("", v)).collect()),
        other => other.to_json(),
    }
}

/// One single-key object per resource, in creation order: `"<id> (<kind>)": fields`, with the
/// ordering-only dependencies under `(after)`.
fn view(graph: &[Resource]) -> serde_json::Value {
    serde_json::Value::Array(
        graph
            .iter()
            .map(|r| {
                let mut fields: serde_json::Map<String, serde_json::Value> = r
                    .fields
                    .iter()
                    .map(|(k, v)| (k.clone(), view_value(k, v)))
                    .collect();
                if !r.extra_deps.is_empty() {
                    fields.insert("(after)".into(), serde_json::json!(r.extra_deps));
                }
                serde_json::json!({ format!("{} ({})", r.id, r.kind): fields })
            })
            .collect(),
    )
}

fn graph_of(file: &str) -> (Stack, Vec<Resource>) {
    let stack = load(file);
    let g = build(&stack, &image(&stack)).unwrap_or_else(|e| panic!("{file}: {e}"));
    (stack, g)
}

#[test]
fn demo_graph() {
    let (_, g) = graph_of("demo.yaml");
    insta::assert_json_snapshot!("demo", view(&g));
}

#[test]
fn production_graph() {
    let (_, g) = graph_of("production.yaml");
    insta::assert_json_snapshot!("production", view(&g));
}

/// The real templates copy the endpoint markers verbatim: the user-data of both launch templates
/// references the database, the cache and the file system, and resolving the references gives
/// a script that contains the resolved values.
#[test]
fn real_user_data_references_the_endpoints() {
    for file in ["demo.yaml", "production.yaml"] {
        let (stack, g) = graph_of(file);
        let db = if stack.database.engine.is_aurora() {
            "db.cluster"
        } else {
            "db.instance"
        };
        for lt in ["web.lt", "stable.lt"] {
            let r = g.iter().find(|r| r.id.as_str() == lt).unwrap();
            let ud = &r.fields["user_data"];
            let Value::Interpolated(_) = ud else {
                panic!("{file} {lt}: user_data has no refs")
            };
            let refs: Vec<String> = ud.refs().iter().map(|r| r.to_string()).collect();
            for want in [
                format!("{db}.endpoint"),
                format!("{db}.secret_arn"),
                "cache.redis.primary_endpoint".into(),
                "files.fs.id".into(),
            ] {
                assert!(refs.contains(&want), "{file} {lt}: no {want} in {refs:?}");
            }
            if stack.cache.auth {
                assert!(refs.contains(&"cache.auth.arn".to_string()), "{file} {lt}");
            }
            let resolved = ud.resolve(&|r| Some(format!("RESOLVED-{}-{}", r.resource, r.attr)));
            let text = resolved.as_str().unwrap();
            assert!(text.starts_with("#!"), "{file} {lt}: not a script");
            assert!(!text.contains("@@ref:"), "{file} {lt}: marker left");
            assert!(text.contains("RESOLVED-files.fs-id"), "{file} {lt}");
        }
    }
}
