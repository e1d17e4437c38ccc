//! The diff over the real desired graphs of the example stacks (`stacks/*.yaml`): a fresh account
//! plans every resource for creation, and a stack whose observation equals what was declared
//! plans nothing (no perpetual diff), with untaggable resources matched by identity.

use moodlestack_model::{spec, Fields, Observed, Ref, Resource, Scope};
use moodlestack_reconcile::{diff, print, Action};
use std::collections::BTreeMap;
use std::path::PathBuf;

fn graph(file: &str) -> (Scope, Vec<Resource>) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../stacks")
        .join(file);
    let stack = moodlestack_stack::load_file(&path, &Default::default())
        .unwrap_or_else(|e| panic!("{file}: {e}"));
    let image = moodlestack_graph::Image {
        image_id: "ami-0123456789abcdef0".into(),
        architecture: "x86_64".into(),
        root_device_name: "/dev/sda1".into(),
        account_id: "123456789012".into(),
    };
    let desired =
        moodlestack_graph::build(&stack, &image).unwrap_or_else(|e| panic!("{file}: {e}"));
    (
        Scope {
            stack: stack.name.clone(),
            region: stack.region.clone(),
        },
        desired,
    )
}

/// What observe would report once `desired` exists: every field resolved with fake physical
/// ids, tagged kinds by id, untaggable ones as `untagged:<physical id>`.
fn converged(desired: &[Resource]) -> Vec<Observed> {
    let attr = |r: &Ref| Some(format!("{}/{}", r.resource, r.attr));
    desired
        .iter()
        .map(|r| {
            let fields: Fields = r
                .fields
                .iter()
                .map(|(k, v)| (k.clone(), v.resolve(&attr)))
                .collect();
            let attrs: BTreeMap<String, String> = [
                "id",
                "arn",
                "name",
                "endpoint",
                "reader_endpoint",
                "port",
                "secret_arn",
                "dns_name",
                "zone_id",
                "primary_endpoint",
                "version",
                "public_ip",
                "private_ip",
                "ip_address",
            ]
            .iter()
            .chain(spec(r.kind).attrs)
            .map(|a| (a.to_string(), format!("{}/{a}", r.id)))
            .collect();
            let physical = format!("{}/id", r.id);
            let id = if spec(r.kind).taggable() {
                r.id.clone().into()
            } else {
                moodlestack_model::ObservedId::Untagged(physical.to_string())
            };
            Observed {
                id,
                kind: r.kind,
                physical_id: physical,
                fields,
                attrs,
                status: "available".into(),
                lifecycle: moodlestack_model::Lifecycle::Ready,
            }
        })
        .collect()
}

fn check(file: &str) {
    let (scope, desired) = graph(file);
    let fresh = diff::plan(&scope, &desired, &[]).unwrap_or_else(|e| panic!("{file}: {e}"));
    assert!(
        fresh.changes.iter().all(|c| c.action == Action::Create),
        "{file}"
    );
    assert_eq!(fresh.summary.create, desired.len());
    assert!(diff::guard(&fresh, false).is_ok(), "creating loses no data");
    // Every create lists every field the stack sets.
    for c in &fresh.changes {
        let d = c.desired.as_ref().unwrap();
        assert_eq!(c.fields.len(), d.fields.len(), "{file}: {}", c.id);
    }

    let observed = converged(&desired);
    let again = diff::plan(&scope, &desired, &observed).unwrap_or_else(|e| panic!("{file}: {e}"));
    let changed: Vec<String> = again
        .changes
        .iter()
        .filter(|c| c.action.is_change())
        .map(|c| format!("{} {:?} {:?}", c.id, c.action, c.fields))
        .collect();
    assert!(
        changed.is_empty(),
        "{file}: a converged stack must plan nothing:\n{}",
        changed.join("\n")
    );
    assert_eq!(
        print::text(&again, false),
        format!(
            "No changes. Stack `{}` ({}) matches its stack file: {} resources up to date.\n",
            scope.stack,
            scope.region,
            desired.len()
        )
    );
    // Untaggable resources were matched to their declared ids.
    assert!(again
        .changes
        .iter()
        .all(|c| !c.id.as_str().starts_with("untagged:")));
}

#[test]
fn demo_stack_plans_all_creates_then_nothing() {
    check("demo.yaml");
}

#[test]
fn production_stack_plans_all_creates_then_nothing() {
    check("production.yaml");
}

#[test]
fn dropping_the_nat_gateway_deletes_it_and_reroutes() {
    // The demo stack as it exists, then applied with `network.nat_gateways: none`.
    let (scope, before) = graph("demo.yaml");
    let observed = converged(&before);
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../stacks/demo.yaml");
    let options = moodlestack_stack::LoadOptions {
        name: None,
        set: vec!["network.nat_gateways=none".into()],
    };
    let stack = moodlestack_stack::load_file(&path, &options).unwrap();
    let image = moodlestack_graph::Image {
        image_id: "ami-0123456789abcdef0".into(),
        architecture: "x86_64".into(),
        root_device_name: "/dev/sda1".into(),
        account_id: "123456789012".into(),
    };
    let after = moodlestack_graph::build(&stack, &image).unwrap();
    let p = diff::plan(&scope, &after, &observed).unwrap();
    let deleted: Vec<&str> = p
        .changes
        .iter()
        .filter(|c| c.action == Action::Delete)
        .map(|c| c.id.as_str())
        .collect();
    assert_eq!(
        deleted,
        ["net.nat.a", "net.eip.nat.a"],
        "NAT (tier 2) before its EIP (tier 1)"
    );
    for rt in ["net.rt.private.a", "net.rt.private.b"] {
        let c = p.changes.iter().find(|c| c.id.as_str() == rt).unwrap();
        assert_eq!(c.action, Action::Update, "{rt}: routes change in place");
        assert_eq!(c.fields[0].field, "routes");
    }
    assert!(diff::guard(&p, false).is_ok());
}
