//! Tests of the generic diff and the data-loss guard, with the real kind specs.

use super::*;
use crate::test_support::{observed_as, r, scope, tags, tcp_rule, web_asg};
use moodlestack_model::{Kind, Observed, Resource, Value};
use std::collections::BTreeMap;

fn vpc() -> Resource {
    Resource::new("net.vpc", Kind::Vpc)
        .with("cidr_block", "10.0.0.0/16")
        .with("enable_dns_hostnames", true)
        .with("enable_dns_support", true)
        .with("tags", tags("net.vpc"))
}

fn subnet(z: &str, cidr: &str) -> Resource {
    let id = format!("net.subnet.private.{z}");
    Resource::new(id.as_str(), Kind::Subnet)
        .with("vpc_id", Value::reference("net.vpc", "id"))
        .with("cidr_block", cidr)
        .with("availability_zone", format!("eu-west-1{z}"))
        .with("map_public_ip_on_launch", false)
        .with("tags", tags(&id))
}

fn target_group(delay: i64) -> Resource {
    Resource::new("lb.tg", Kind::TargetGroup)
        .with("name", "demo-tg")
        .with("vpc_id", Value::reference("net.vpc", "id"))
        .with("protocol", "HTTP")
        .with("port", 80i64)
        .with("target_type", "instance")
        .with("health_check_path", "/login/index.php")
        .with("deregistration_delay", delay)
        .with("tags", tags("lb.tg"))
}

fn launch_template(user_data: &str) -> Resource {
    Resource::new("web.lt", Kind::LaunchTemplate)
        .with("name", "demo-web")
        .with("image_id", "ami-1")
        .with("instance_type", "t3.small")
        .with("user_data", user_data)
        .with("http_tokens", "required")
        .with("tags", tags("web.lt"))
}

fn stable_lt(user_data: &str) -> Resource {
    let mut r = launch_template(user_data);
    r.id = "stable.lt".into();
    r.fields.insert("name".into(), Value::str("demo-stable"));
    r
}

fn asg(desired_capacity: i64) -> Resource {
    web_asg(
        6,
        desired_capacity,
        &["net.subnet.private.a", "net.subnet.private.b"],
    )
}

fn instance() -> Resource {
    Resource::new("stable.instance", Kind::Instance)
        .with("launch_template_id", Value::reference("stable.lt", "id"))
        .with(
            "launch_template_version",
            Value::reference("stable.lt", "version"),
        )
        .with("subnet_id", Value::reference("net.subnet.private.a", "id"))
        .with("http_tokens", "required")
        .with("tags", tags("stable.instance"))
}

fn db(engine: &str) -> Resource {
    Resource::new("db.instance", Kind::DbInstance)
        .with("identifier", "demo-db")
        .with("engine", engine)
        .with("engine_version", "8.0.39")
        .with("instance_class", "db.t4g.medium")
        .with("allocated_storage", 20i64)
        .with("multi_az", true)
        .with("backup_retention_period", 7i64)
        .with("tags", tags("db.instance"))
}

fn fs() -> Resource {
    Resource::new("files.fs", Kind::EfsFileSystem)
        .with("creation_token", "demo-files")
        .with("performance_mode", "generalPurpose")
        .with("throughput_mode", "elastic")
        .with("encrypted", true)
        .with("tags", tags("files.fs"))
}

fn mount(z: &str) -> Resource {
    Resource::new(format!("files.mount.{z}"), Kind::EfsMountTarget)
        .with("file_system_id", Value::reference("files.fs", "id"))
        .with(
            "subnet_id",
            Value::reference(format!("net.subnet.private.{z}"), "id"),
        )
        .with("security_group_ids", Value::strs(["sg-efs"]))
}

fn untagged(r: &Resource, physical: &str, known: &[(&str, &str)]) -> Observed {
    let mut o = observed_as(r, physical, known, &[]);
    o.id = moodlestack_model::ObservedId::Untagged(physical.to_string());
    o
}

const KNOWN: &[(&str, &str)] = &[
    ("net.vpc", "vpc-1"),
    ("net.subnet.private.a", "subnet-a"),
    ("net.subnet.private.b", "subnet-b"),
    ("files.fs", "fs-1"),
    ("web.lt", "lt-web"),
    ("stable.lt", "lt-stable"),
    ("lb.alb", "arn:alb"),
];

/// The physical id of `id`: the one in KNOWN, so references to it resolve consistently.
fn phys(id: &str) -> String {
    KNOWN
        .iter()
        .find(|k| k.0 == id)
        .map_or_else(|| format!("phys-{id}"), |k| k.1.to_string())
}

/// `r` as observed, consistent with KNOWN.
fn obs(r: &Resource) -> Observed {
    observed_as(r, &phys(r.id.as_str()), KNOWN, &[])
}

/// `r` as observed under `physical`, launched from template version `version`.
fn launched_from(r: &Resource, physical: &str, version: &str) -> Observed {
    let mut o = observed_as(r, physical, KNOWN, &[]);
    o.fields
        .insert("launch_template_version".into(), Value::str(version));
    o
}

/// Asserts that `c` has a note containing `text`.
#[track_caller]
fn assert_note(c: &Change, text: &str) {
    assert!(
        c.notes.iter().any(|n| n.text.contains(text)),
        "{:?}",
        c.notes
    );
}

fn change<'a>(p: &'a Plan, id: &str) -> &'a Change {
    p.changes
        .iter()
        .find(|c| c.id.as_str() == id)
        .unwrap_or_else(|| panic!("no change for {id}"))
}

fn field<'a>(c: &'a Change, name: &str) -> &'a FieldChange {
    c.fields
        .iter()
        .find(|f| f.field == name)
        .unwrap_or_else(|| panic!("{}: no field {name}", c.id))
}

/// `c` is an update of `name` alone, from `old` to `new`, in place.
#[track_caller]
fn assert_updates_only(c: &Change, name: &str, old: Value, new: Value) {
    assert_eq!(c.action, Action::Update, "{}", c.id);
    assert_eq!(
        c.fields,
        vec![FieldChange {
            field: name.into(),
            old: Some(old),
            new: Some(new),
            forces_replacement: false,
            delta: None,
        }]
    );
}

/// The names of the fields `c` changes, in order.
fn field_names(c: &Change) -> Vec<&str> {
    c.fields.iter().map(|f| f.field.as_str()).collect()
}

fn order(p: &Plan) -> Vec<&str> {
    p.changes.iter().map(|c| c.id.as_str()).collect()
}

#[test]
fn nothing_observed_creates_everything_in_dependency_order() {
    let desired = vec![
        subnet("b", "10.0.2.0/24"),
        subnet("a", "10.0.1.0/24"),
        vpc(),
    ];
    let p = plan(&scope(), &desired, &[]).unwrap();
    assert_eq!(
        order(&p),
        ["net.vpc", "net.subnet.private.a", "net.subnet.private.b"]
    );
    assert!(p.changes.iter().all(|c| c.action == Action::Create));
    let sub = change(&p, "net.subnet.private.a");
    assert_eq!(
        field(sub, "vpc_id").new,
        Some(Value::Unknown),
        "a new VPC's id is known after apply"
    );
    assert_eq!(
        field(sub, "cidr_block").new,
        Some(Value::str("10.0.1.0/24"))
    );
    assert!(sub
        .fields
        .iter()
        .all(|f| f.old.is_none() && !f.forces_replacement));
    assert_eq!(
        sub.desired.as_ref(),
        Some(&desired[1]),
        "desired keeps its references"
    );
    assert_eq!(
        p.summary,
        Summary {
            create: 3,
            ..Summary::default()
        }
    );
    assert_eq!(p.format_version, FORMAT_VERSION);
    assert_eq!((p.stack.as_str(), p.region.as_str()), ("demo", "eu-west-1"));
}

#[test]
fn matching_observation_is_no_change_and_resolves_references() {
    let desired = vec![vpc(), subnet("a", "10.0.1.0/24"), target_group(30)];
    let observed: Vec<Observed> = desired.iter().map(obs).collect();
    let p = plan(&scope(), &desired, &observed).unwrap();
    assert!(!p.has_changes(), "{p:#?}");
    assert_eq!(
        p.summary,
        Summary {
            unchanged: 3,
            ..Summary::default()
        }
    );
    assert!(p
        .changes
        .iter()
        .all(|c| c.current.is_some() && c.fields.is_empty()));
}

#[test]
fn drifted_deregistration_delay_is_an_in_place_update() {
    let desired = vec![vpc(), target_group(30)];
    let mut observed: Vec<Observed> = desired.iter().map(obs).collect();
    // Someone changed it in the console.
    observed[1]
        .fields
        .insert("deregistration_delay".into(), Value::Int(300));
    let p = plan(&scope(), &desired, &observed).unwrap();
    let tg = change(&p, "lb.tg");
    assert_updates_only(tg, "deregistration_delay", Value::Int(300), Value::Int(30));
    assert_eq!(p.summary.update, 1);
    assert_eq!(p.summary.unchanged, 1);
}

/// The plan for subnet a moving from 10.0.1.0/24 to 10.0.9.0/24.
fn subnet_cidr_change() -> Plan {
    let desired = vec![vpc(), subnet("a", "10.0.9.0/24")];
    let observed = vec![
        observed_as(&vpc(), "vpc-1", KNOWN, &[]),
        observed_as(&subnet("a", "10.0.1.0/24"), "subnet-a", KNOWN, &[]),
    ];
    plan(&scope(), &desired, &observed).unwrap()
}

#[test]
fn subnet_cidr_change_forces_replacement() {
    let p = subnet_cidr_change();
    let sub = change(&p, "net.subnet.private.a");
    assert_eq!(sub.action, Action::Replace);
    assert_eq!(sub.replacement_reasons(), ["cidr_block"]);
    assert_eq!(
        field(sub, "cidr_block").old,
        Some(Value::str("10.0.1.0/24"))
    );
    assert_eq!(change(&p, "net.vpc").action, Action::NoOp);
}

#[test]
fn new_vpc_makes_subnet_vpc_id_unknown_and_replaces_the_subnet() {
    // The VPC is gone (or its replacement is planned): everything in it follows.
    let desired = vec![vpc(), subnet("a", "10.0.1.0/24")];
    let observed = vec![observed_as(
        &subnet("a", "10.0.1.0/24"),
        "subnet-a",
        KNOWN,
        &[],
    )];
    let p = plan(&scope(), &desired, &observed).unwrap();
    assert_eq!(change(&p, "net.vpc").action, Action::Create);
    let sub = change(&p, "net.subnet.private.a");
    assert_eq!(sub.action, Action::Replace);
    let f = field(sub, "vpc_id");
    assert_eq!(
        (f.old.clone(), f.new.clone()),
        (Some(Value::str("vpc-1")), Some(Value::Unknown))
    );
    assert!(f.forces_replacement);
}

#[test]
fn launch_template_user_data_change_rolls_out_to_the_group_and_the_stable_instance() {
    let desired = vec![
        vpc(),
        subnet("a", "10.0.1.0/24"),
        subnet("b", "10.0.2.0/24"),
        launch_template("#!/bin/sh\necho v2\n"),
        stable_lt("#!/bin/sh\necho stable v2\n"),
        asg(2),
        instance(),
    ];
    let mut observed: Vec<Observed> = vec![
        observed_as(&vpc(), "vpc-1", KNOWN, &[]),
        observed_as(&subnet("a", "10.0.1.0/24"), "subnet-a", KNOWN, &[]),
        observed_as(&subnet("b", "10.0.2.0/24"), "subnet-b", KNOWN, &[]),
        observed_as(
            &launch_template("#!/bin/sh\necho v1\n"),
            "lt-web",
            KNOWN,
            &[("version", "3")],
        ),
        observed_as(
            &stable_lt("#!/bin/sh\necho stable v1\n"),
            "lt-stable",
            KNOWN,
            &[("version", "1")],
        ),
    ];
    observed.push(launched_from(&asg(2), "demo-web", "3"));
    observed.push(launched_from(&instance(), "i-1", "1"));

    let p = plan(&scope(), &desired, &observed).unwrap();
    let lt = change(&p, "web.lt");
    assert_eq!(lt.action, Action::Update);
    assert_eq!(lt.fields.len(), 1);
    assert_note(lt, "rollout: new launch template version");

    let g = change(&p, "web.asg");
    assert_eq!(g.action, Action::Update, "{g:#?}");
    let v = field(g, "launch_template_version");
    assert_eq!(
        (v.old.clone(), v.new.clone()),
        (Some(Value::str("3")), Some(Value::Unknown))
    );
    assert!(field(g, "launch_template_version").new == Some(Value::Unknown));
    assert_eq!(
        g.fields.len(),
        1,
        "the template id does not change with a new version"
    );
    assert!(g.notes.iter().any(|n| n
        .text
        .contains("starts an instance refresh (new instances first, healthy capacity 100-200%)")));

    let i = change(&p, "stable.instance");
    assert_eq!(i.action, Action::Replace);
    assert_eq!(i.replacement_reasons(), ["launch_template_version"]);
    assert!(i.notes.iter().any(|n| n.text.starts_with("rollout")));
    // Dependency order: the templates before their users.
    let pos = |id: &str| order(&p).iter().position(|x| *x == id).unwrap();
    assert!(pos("web.lt") < pos("web.asg"));
    assert!(pos("stable.lt") < pos("stable.instance"));
}

#[test]
fn foreign_tags_and_aws_defaults_never_diff() {
    let desired = vec![vpc()];
    let mut o = observed_as(&vpc(), "vpc-1", KNOWN, &[]);
    if let Some(Value::Map(t)) = o.fields.get_mut("tags") {
        t.insert("CostCenter".into(), Value::str("42"));
        t.insert("aws:cloudformation:stack-name".into(), Value::str("other"));
    }
    let p = plan(&scope(), &desired, &[o.clone()]).unwrap();
    assert!(!p.has_changes());

    // A tag the stack sets that someone changed does diff.
    if let Some(Value::Map(t)) = o.fields.get_mut("tags") {
        t.insert("Name".into(), Value::str("renamed"));
    }
    let p = plan(&scope(), &desired, &[o]).unwrap();
    let c = change(&p, "net.vpc");
    assert_eq!(c.action, Action::Update);
    assert_eq!(c.fields[0].field, "tags");
}

#[test]
fn sets_ignore_order_including_lists_of_maps() {
    let rule = |port: i64, src: &str| tcp_rule(port, "source_group_id", Value::str(src));
    let sg = Resource::new("sg.db", Kind::SecurityGroup)
        .with("vpc_id", "vpc-1")
        .with("group_name", "demo-db")
        .with("description", "database")
        .with(
            "ingress",
            Value::List(vec![rule(3306, "sg-web"), rule(3306, "sg-stable")]),
        );
    let mut o = observed_as(&sg, "sg-db", KNOWN, &[]);
    o.fields.insert(
        "ingress".into(),
        Value::List(vec![rule(3306, "sg-stable"), rule(3306, "sg-web")]),
    );
    let p = plan(&scope(), std::slice::from_ref(&sg), &[o.clone()]).unwrap();
    assert!(!p.has_changes());

    o.fields.insert(
        "ingress".into(),
        Value::List(vec![rule(3306, "sg-stable"), rule(22, "sg-web")]),
    );
    let p = plan(&scope(), &[sg], &[o]).unwrap();
    assert_eq!(change(&p, "sg.db").action, Action::Update);
}

#[test]
fn a_reworded_description_never_replaces_a_group_in_use() {
    // AWS cannot change these descriptions, and a security group or parameter group in use
    // cannot be deleted: a new moodlestack version's wording must not plan a replacement.
    let sg = Resource::new("sg.db", Kind::SecurityGroup)
        .with("vpc_id", "vpc-1")
        .with("group_name", "demo-db")
        .with("description", "database");
    let mut o = observed_as(&sg, "sg-db", KNOWN, &[]);
    o.fields.insert(
        "description".into(),
        Value::str("demo database (old wording)"),
    );
    let pg = Resource::new("db.parameter_group", Kind::DbParameterGroup)
        .with("name", "demo-mysql8-4")
        .with("family", "mysql8.4")
        .with("description", "Moodle-tuned mysql8.4 parameters");
    let mut po = observed_as(&pg, "demo-mysql8-4", KNOWN, &[]);
    po.fields
        .insert("description".into(), Value::str("old wording"));
    let p = plan(&scope(), &[sg, pg], &[o, po]).unwrap();
    assert!(!p.has_changes(), "{:?}", p.changes);
}

#[test]
fn desired_capacity_is_set_at_creation_only() {
    let desired = vec![
        vpc(),
        subnet("a", "10.0.1.0/24"),
        subnet("b", "10.0.2.0/24"),
        launch_template("x"),
        asg(2),
    ];
    let p = plan(&scope(), &desired, &[]).unwrap();
    assert_eq!(
        field(change(&p, "web.asg"), "desired_capacity").new,
        Some(Value::Int(2))
    );

    let mut observed: Vec<Observed> = desired[..4]
        .iter()
        .map(|r| {
            observed_as(
                r,
                KNOWN
                    .iter()
                    .find(|k| k.0 == r.id.as_str())
                    .map_or("x", |k| k.1),
                KNOWN,
                &[("version", "1")],
            )
        })
        .collect();
    observed.push(launched_from(&asg(7), "demo-web", "1"));
    let p = plan(&scope(), &desired, &observed).unwrap();
    assert!(
        !p.has_changes(),
        "autoscaling owns the desired capacity: {:#?}",
        change(&p, "web.asg")
    );
}

#[test]
fn a_managed_field_the_observation_lacks_is_a_change() {
    let mut o = observed_as(&target_group(30), "arn:tg", KNOWN, &[]);
    o.fields.remove("health_check_path");
    let p = plan(
        &scope(),
        &[vpc(), target_group(30)],
        &[observed_as(&vpc(), "vpc-1", KNOWN, &[]), o],
    )
    .unwrap();
    let tg = change(&p, "lb.tg");
    assert_eq!(tg.action, Action::Update);
    assert_eq!(field(tg, "health_check_path").old, None);
}

#[test]
fn untagged_mount_targets_are_matched_by_identity_and_strays_deleted() {
    let desired = vec![
        vpc(),
        subnet("a", "10.0.1.0/24"),
        subnet("b", "10.0.2.0/24"),
        fs(),
        mount("a"),
        mount("b"),
    ];
    let mut observed: Vec<Observed> = desired[..4].iter().map(obs).collect();
    observed.push(untagged(&mount("a"), "fsmt-a", KNOWN));
    // One in a subnet the stack no longer uses.
    let mut stray = untagged(&mount("b"), "fsmt-old", KNOWN);
    stray
        .fields
        .insert("subnet_id".into(), Value::str("subnet-old"));
    observed.push(stray);
    let p = plan(&scope(), &desired, &observed).unwrap();

    let a = change(&p, "files.mount.a");
    assert_eq!(a.action, Action::NoOp);
    let cur = a.current.as_ref().unwrap();
    assert_eq!(
        (cur.id.to_string(), cur.physical_id.as_str()),
        ("files.mount.a".to_string(), "fsmt-a")
    );
    assert_eq!(change(&p, "files.mount.b").action, Action::Create);
    let stray = change(&p, "untagged:fsmt-old");
    assert_eq!(stray.action, Action::Delete);
    assert_eq!(order(&p).last(), Some(&"untagged:fsmt-old"));
    assert_eq!(
        p.summary,
        Summary {
            create: 1,
            delete: 1,
            unchanged: 5,
            ..Summary::default()
        }
    );
}

#[test]
fn listeners_are_tagged_and_an_untagged_one_is_adopted_by_port_or_left_alone() {
    let alb = Resource::new("lb.alb", Kind::LoadBalancer)
        .with("name", "demo-alb")
        .with("scheme", "internet-facing")
        .with("tags", tags("lb.alb"));
    let listener = |id: &str, port: i64| {
        Resource::new(id, Kind::Listener)
            .with("load_balancer_arn", Value::reference("lb.alb", "arn"))
            .with("port", port)
            .with("protocol", if port == 443 { "HTTPS" } else { "HTTP" })
            .with("tags", tags(id))
    };
    let desired = vec![
        alb.clone(),
        listener("lb.listener.http", 80),
        listener("lb.listener.https", 443),
    ];
    let known: &[(&str, &str)] = &[("lb.alb", "arn:alb")];
    // Listeners an earlier version created without tags.
    let legacy = |port: i64, arn: &str| {
        let mut o = untagged(&listener("x", port), arn, known);
        o.fields.remove("tags");
        o
    };
    let mut http = legacy(80, "arn:l80");
    http.fields.insert("protocol".into(), Value::str("HTTPS")); // drifted
    let observed = vec![
        observed_as(&alb, "arn:alb", known, &[("arn", "arn:alb")]),
        http,
        legacy(443, "arn:l443"),
        // Somebody's listener on the stack's load balancer, and one of the stack's that it no
        // longer declares.
        legacy(8080, "arn:l8080"),
        observed_as(&listener("lb.listener.old", 8443), "arn:l8443", known, &[]),
    ];
    let p = plan(&scope(), &desired, &observed).unwrap();
    let h = change(&p, "lb.listener.http");
    assert_eq!(h.action, Action::Update);
    assert_eq!(h.current.as_ref().unwrap().physical_id, "arn:l80");
    let fields = field_names(h);
    assert_eq!(fields, ["protocol", "tags"]);
    // Adopted and tagged, nothing else changes.
    let s = change(&p, "lb.listener.https");
    assert_eq!(s.action, Action::Update);
    assert!(s.view().only_tags());
    assert_eq!(change(&p, "lb.listener.old").action, Action::Delete);
    assert!(p
        .changes
        .iter()
        .all(|c| c.id.as_str() != "untagged:arn:l8080"));
    let ignored: Vec<&str> = p.ignored.iter().map(|o| o.physical_id.as_str()).collect();
    assert_eq!(ignored, ["arn:l8080"]);

    // A replaced load balancer: identities are unknown, so its listeners are created again; the
    // old untagged one goes with the old load balancer, never by itself.
    let mut alb2 = alb.clone();
    alb2.fields.insert("scheme".into(), Value::str("internal"));
    let desired = vec![alb2, listener("lb.listener.http", 80)];
    let p = plan(&scope(), &desired, &observed[..2]).unwrap();
    assert_eq!(change(&p, "lb.alb").action, Action::Replace);
    assert_eq!(change(&p, "lb.listener.http").action, Action::Create);
    assert_eq!(p.ignored.len(), 1);
    assert_eq!(p.summary.delete, 0);
}

#[test]
fn a_resource_with_the_stack_tag_but_no_id_is_reported_and_never_deleted() {
    // A bastion's security group tagged moodlestack:stack=demo for cost allocation.
    let mut bastion = untagged(
        &Resource::new("x", Kind::SecurityGroup)
            .with("group_name", "bastion")
            .with("vpc_id", "vpc-1"),
        "sg-bastion",
        KNOWN,
    );
    bastion.fields.insert(
        "tags".into(),
        Value::Map(BTreeMap::from([
            ("moodlestack:stack".to_string(), Value::str("demo")),
            ("Name".to_string(), Value::str("bastion")),
        ])),
    );
    let observed = vec![obs(&vpc()), bastion];
    let p = plan(&scope(), &[vpc()], &observed).unwrap();
    assert!(!p.has_changes());
    assert_eq!(p.summary.delete, 0);
    assert_eq!(p.ignored.len(), 1);
    assert_eq!(p.ignored[0].physical_id, "sg-bastion");
    let text = crate::print::text(&p, false);
    assert!(
        text.contains(
            "Left alone: 1 resource tagged moodlestack:stack=demo without moodlestack:id (not \
             created by moodlestack; never changed or deleted):\n  security_group sg-bastion \
             (Name: bastion)\n"
        ),
        "{text}"
    );
    // Without the stack declaring anything (destroy's view), it is still left alone.
    let p = plan(&scope(), &[], &observed).unwrap();
    assert_eq!(change(&p, "net.vpc").action, Action::Delete);
    assert_eq!(p.summary.delete, 1);
    assert_eq!(p.ignored.len(), 1);
}

#[test]
fn undeclared_resources_are_deleted_last_in_reverse_tier_order() {
    let desired = vec![vpc()];
    let observed = vec![
        observed_as(&vpc(), "vpc-1", KNOWN, &[]),
        observed_as(&subnet("a", "10.0.1.0/24"), "subnet-a", KNOWN, &[]), // tier 1
        observed_as(&asg(2), "demo-web", KNOWN, &[]),                     // tier 8
        observed_as(&launch_template("x"), "lt-web", KNOWN, &[]),         // tier 7
        observed_as(&subnet("b", "10.0.2.0/24"), "subnet-b", KNOWN, &[]), // tier 1
    ];
    let p = plan(&scope(), &desired, &observed).unwrap();
    assert_eq!(
        order(&p),
        [
            "net.vpc",
            "web.asg",
            "web.lt",
            "net.subnet.private.a",
            "net.subnet.private.b"
        ]
    );
    for c in &p.changes[1..] {
        assert_eq!(c.action, Action::Delete);
        assert!(c.desired.is_none() && c.current.is_some() && c.fields.is_empty());
    }
    assert_eq!(p.summary.delete, 4);
}

#[test]
fn ties_in_dependency_order_go_by_tier_then_id() {
    // Independent resources: tier 0 (vpc, fs) before tier 1 (tg) before tier 7 (lt).
    let desired = vec![launch_template("x"), target_group(30), fs(), vpc()];
    let p = plan(&scope(), &desired, &[]).unwrap();
    assert_eq!(order(&p), ["files.fs", "net.vpc", "lb.tg", "web.lt"]);
}

#[test]
fn update_of_a_referenced_resource_keeps_unchanged_attrs_known() {
    // A template update changes `version`, not `id`: the group's template id stays known.
    let desired = vec![
        vpc(),
        subnet("a", "10.0.1.0/24"),
        subnet("b", "10.0.2.0/24"),
        launch_template("new"),
        asg(2),
    ];
    let mut observed: Vec<Observed> = desired[..3].iter().map(obs).collect();
    observed.push(observed_as(
        &launch_template("old"),
        "lt-web",
        KNOWN,
        &[("version", "4")],
    ));
    observed.push(launched_from(&asg(2), "demo-web", "4"));
    let p = plan(&scope(), &desired, &observed).unwrap();
    let g = change(&p, "web.asg");
    assert_eq!(field_names(g), ["launch_template_version"]);
}

#[test]
fn database_updates_say_they_apply_immediately_and_restart() {
    let mut o = observed_as(&db("mysql"), "demo-db", KNOWN, &[]);
    o.fields
        .insert("instance_class".into(), Value::str("db.t4g.small"));
    let p = plan(&scope(), &[db("mysql")], &[o]).unwrap();
    let c = change(&p, "db.instance");
    assert_eq!(c.action, Action::Update);
    assert_note(c, "applied immediately");
    assert_note(c, "Multi-AZ fails over");
    assert!(guard(&p, false).is_ok(), "an in-place update loses no data");
}

/// `database.restore_from` on an Aurora cluster: the cluster is replaced by a restore of the
/// cluster snapshot, its member with it (it names the cluster), each saying so; both need
/// `--allow-data-loss`.
#[test]
fn an_aurora_restore_replaces_the_cluster_and_its_members_saying_so() {
    let cluster = r("db.cluster", Kind::DbCluster).with("identifier", "demo-db");
    let member = r("db.instance.1", Kind::DbInstance)
        .with("identifier", "demo-db-1")
        .with("cluster_identifier", Value::reference("db.cluster", "id"));
    let known = [("db.cluster", "demo-db")];
    let observed = [
        observed_as(&cluster, "demo-db", &known, &[]),
        observed_as(&member, "demo-db-1", &known, &[]),
    ];
    let restored = cluster.with("restore_from", "demo-code-v4-5-6-php8-3");
    let p = plan(&scope(), &[restored, member], &observed).unwrap();
    let c = change(&p, "db.cluster");
    assert_eq!(c.action, Action::Replace);
    assert_note(
        c,
        "restored from cluster snapshot demo-code-v4-5-6-php8-3 (RestoreDBClusterFromSnapshot",
    );
    let m = change(&p, "db.instance.1");
    assert_eq!(m.action, Action::Replace);
    assert_note(m, "an Aurora cluster member, replaced with its cluster");
    let err = guard(&p, false).unwrap_err().to_string();
    assert!(
        err.contains("db.cluster") && err.contains("db.instance.1"),
        "{err}"
    );
}

#[test]
fn static_parameter_changes_note_a_pending_reboot() {
    let pg = |threads: &str, packet: &str| {
        Resource::new("db.parameter_group", Kind::DbParameterGroup)
            .with("name", "demo-mysql80")
            .with("family", "mysql8.0")
            .with(
                "parameters",
                Value::Map(BTreeMap::from([
                    ("innodb_read_io_threads".to_string(), Value::str(threads)),
                    ("max_allowed_packet".to_string(), Value::str(packet)),
                ])),
            )
    };
    let mut o = observed_as(&pg("4", "1024"), "demo-mysql80", KNOWN, &[]);
    if let Some(Value::Map(m)) = o.fields.get_mut("parameters") {
        m.insert("some_aws_default".into(), Value::str("1"));
    }
    // Dynamic only: no reboot note.
    let p = plan(&scope(), &[pg("4", "2048")], std::slice::from_ref(&o)).unwrap();
    let c = change(&p, "db.parameter_group");
    assert_eq!(c.action, Action::Update);
    assert!(c.notes.is_empty(), "{:?}", c.notes);
    // Static: reboot pending, naming it.
    let p = plan(&scope(), &[pg("8", "1024")], &[o]).unwrap();
    let notes = &change(&p, "db.parameter_group").notes;
    assert!(
        notes
            .iter()
            .any(|n| n.text.starts_with("reboot pending")
                && n.text.contains("innodb_read_io_threads")),
        "{notes:?}"
    );
}

#[test]
fn guard_refuses_database_replace_and_delete_naming_resource_and_field() {
    let o = observed_as(&db("mysql"), "demo-db", KNOWN, &[]);
    let p = plan(&scope(), &[db("postgres")], std::slice::from_ref(&o)).unwrap();
    let c = change(&p, "db.instance");
    assert_eq!(c.action, Action::Replace);
    assert!(c.notes.iter().any(|n| n.text.starts_with("holds data")));
    let err = guard(&p, false).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("db.instance"), "{msg}");
    assert!(
        msg.contains("`engine` (\"mysql\" -> \"postgres\")"),
        "{msg}"
    );
    assert!(
        moodlestack_model::Hint::hint(&err).is_some_and(|h| h.contains("--allow-data-loss")),
        "{msg}"
    );
    assert!(guard(&p, true).is_ok());

    // No longer declared: delete, refused too; the file system as well.
    let efs = observed_as(&fs(), "fs-1", KNOWN, &[]);
    let p = plan(&scope(), &[], &[o, efs]).unwrap();
    let err = guard(&p, false).unwrap_err();
    assert_eq!(err.refused.len(), 2, "{err}");
    assert!(err
        .refused
        .iter()
        .any(|r| r.starts_with("db.instance") && r.contains("delete")));
    assert!(err
        .refused
        .iter()
        .any(|r| r.starts_with("files.fs") && r.contains("fs-1")));
    assert!(guard(&p, true).is_ok());
}

#[test]
fn guard_passes_replacements_of_stateless_resources() {
    let p = subnet_cidr_change();
    assert_eq!(p.summary.replace, 1);
    assert!(guard(&p, false).is_ok());
}

#[test]
fn graph_errors_name_the_problem() {
    let s = scope();
    assert_eq!(
        plan(&s, &[subnet("a", "x")], &[]).unwrap_err(),
        DiffError::UnknownDependency {
            id: "net.subnet.private.a".into(),
            dep: "net.vpc".into()
        }
    );
    assert_eq!(
        plan(&s, &[vpc(), vpc()], &[]).unwrap_err(),
        DiffError::DuplicateDesired("net.vpc".into())
    );
    let mut bad = vpc();
    bad.fields.insert("colour".into(), Value::str("red"));
    assert!(
        matches!(plan(&s, &[bad], &[]).unwrap_err(), DiffError::UnknownField { field, .. } if field == "colour")
    );
    let a = Resource::new("a", Kind::Vpc).after("b");
    let b = Resource::new("b", Kind::Vpc).after("a");
    assert_eq!(
        plan(&s, &[a, b], &[]).unwrap_err(),
        DiffError::Cycle(vec!["a".into(), "b".into()])
    );
    let o = observed_as(&vpc(), "vpc-1", KNOWN, &[]);
    let o2 = observed_as(&vpc(), "vpc-2", KNOWN, &[]);
    let err = plan(&s, &[vpc()], &[o.clone(), o2]).unwrap_err();
    assert!(err.to_string().contains("vpc-1, vpc-2"), "{err}");
    let mut wrong = o;
    wrong.kind = Kind::Subnet;
    assert!(matches!(
        plan(&s, &[vpc()], &[wrong]).unwrap_err(),
        DiffError::KindMismatch { .. }
    ));
}

#[test]
fn observed_digest_is_order_independent_and_ignores_status() {
    let a = observed_as(&vpc(), "vpc-1", KNOWN, &[]);
    let b = observed_as(&fs(), "fs-1", KNOWN, &[]);
    let d1 = observed_digest(&[a.clone(), b.clone()]);
    assert_eq!(d1.len(), 64);
    assert_eq!(d1, observed_digest(&[b.clone(), a.clone()]));
    let mut busy = b.clone();
    busy.status = "updating".into();
    assert_eq!(d1, observed_digest(&[a.clone(), busy]));
    let sg = |ids: [&str; 2]| {
        observed_as(
            &Resource::new("sg.db", Kind::SecurityGroup).with("ingress", Value::strs(ids)),
            "sg-1",
            KNOWN,
            &[],
        )
    };
    assert_eq!(
        observed_digest(&[sg(["x", "y"])]),
        observed_digest(&[sg(["y", "x"])]),
        "sets are digested in canonical order"
    );
    let mut changed = b;
    changed
        .fields
        .insert("throughput_mode".into(), Value::str("bursting"));
    assert_ne!(d1, observed_digest(&[a.clone(), changed]));
    let p = plan(&scope(), &[vpc()], std::slice::from_ref(&a)).unwrap();
    assert_eq!(p.observed_digest, observed_digest(&[a]));
}

#[test]
fn differs_follows_the_compare_modes() {
    let l = |v: &[&str]| Value::strs(v.iter().copied());
    assert!(!differs(
        Compare::Set,
        &l(&["a", "b"]),
        Some(&l(&["b", "a"]))
    ));
    assert!(
        differs(Compare::Exact, &l(&["a", "b"]), Some(&l(&["b", "a"]))),
        "ordered lists keep order"
    );
    assert!(differs(Compare::Set, &l(&["a"]), Some(&l(&["a", "b"]))));
    assert!(differs(
        Compare::Exact,
        &Value::Unknown,
        Some(&Value::str("x"))
    ));
    assert!(differs(
        Compare::Set,
        &Value::List(vec![Value::Unknown]),
        Some(&l(&["x"]))
    ));
    assert!(
        !differs(Compare::Exact, &Value::Null, None),
        "an unreported field is null"
    );
    assert!(differs(Compare::Exact, &Value::Int(1), None));
}

#[test]
fn a_tags_only_update_changes_no_referenced_attribute_and_has_no_notes() {
    let desired = vec![
        vpc(),
        subnet("a", "10.0.1.0/24"),
        subnet("b", "10.0.2.0/24"),
        launch_template("same"),
        asg(2),
        db("mysql"),
    ];
    let mut observed: Vec<Observed> = desired[..3].iter().map(obs).collect();
    let mut lt = observed_as(
        &launch_template("same"),
        "lt-web",
        KNOWN,
        &[("version", "4")],
    );
    let mut d = observed_as(&db("mysql"), "demo-db", KNOWN, &[]);
    for o in [&mut lt, &mut d] {
        if let Some(Value::Map(t)) = o.fields.get_mut("tags") {
            t.insert("Name".into(), Value::str("renamed"));
        }
    }
    observed.push(lt);
    observed.push(d);
    observed.push(launched_from(&asg(2), &phys("web.asg"), "4"));
    let p = plan(&scope(), &desired, &observed).unwrap();
    assert_eq!(change(&p, "web.lt").action, Action::Update);
    assert!(change(&p, "web.lt").notes.is_empty());
    assert_eq!(
        change(&p, "web.asg").action,
        Action::NoOp,
        "no new version, no refresh"
    );
    assert_eq!(change(&p, "db.instance").action, Action::Update);
    assert!(change(&p, "db.instance").notes.is_empty());
}

#[test]
fn two_resources_with_one_logical_id_are_named_and_counted() {
    let a = observed_as(&vpc(), "vpc-1", &[], &[]);
    let b = observed_as(&vpc(), "vpc-2", &[], &[]);
    let err = plan(&scope(), &[vpc()], &[a, b]).unwrap_err();
    assert_eq!(
        err,
        DiffError::DuplicateObserved {
            id: "net.vpc".into(),
            physical: vec!["vpc-1".into(), "vpc-2".into()],
        }
    );
    assert!(
        err.to_string().starts_with(
            "2 resources in the cloud carry the tag moodlestack:id=net.vpc (vpc-1, vpc-2)"
        ),
        "{err}"
    );
}

/// The web fleet's scaling: the group (whose minimum a scheduled action may hold at 6) on its
/// network and launch template, and a target-tracking policy (untaggable, matched by group and
/// name).
fn scaled_fleet(target: i64) -> Vec<Resource> {
    let mut group = asg(2);
    group.fields.insert(
        "min_size".into(),
        Value::List(vec![Value::Int(2), Value::Int(6)]),
    );
    let policy = Resource::new("web.scaling", Kind::ScalingPolicy)
        .with("group_name", Value::reference("web.asg", "id"))
        .with("name", "demo-web-tracking")
        .with("metric", "ASGAverageCPUUtilization")
        .with("resource_label", "")
        .with("target_value", target)
        .with("estimated_instance_warmup", 420i64)
        .with("disable_scale_in", false);
    vec![
        vpc(),
        subnet("a", "10.0.1.0/24"),
        subnet("b", "10.0.2.0/24"),
        launch_template("x"),
        group,
        policy,
    ]
}

/// The fleet as observed: the policy scaled out to 5 and the exam-morning action holds the
/// group's minimum at 6.
fn scaled_out(desired: &[Resource]) -> Vec<Observed> {
    let mut observed: Vec<Observed> = desired[..4]
        .iter()
        .map(|r| observed_as(r, &phys(r.id.as_str()), KNOWN, &[("version", "1")]))
        .collect();
    let mut group = launched_from(&desired[4], "demo-web", "1");
    group
        .fields
        .insert("desired_capacity".into(), Value::Int(5));
    group.fields.insert("min_size".into(), Value::Int(6));
    observed.push(group);
    let physical = "demo-web/demo-web-tracking";
    let mut policy = untagged(&desired[5], physical, &[("web.asg", "demo-web")]);
    policy.attrs.insert("id".into(), physical.into());
    observed.push(policy);
    observed
}

#[test]
fn the_scalers_moving_the_group_is_no_change_and_a_new_target_is_in_place() {
    let desired = scaled_fleet(50);
    let observed = scaled_out(&desired);
    let p = plan(&scope(), &desired, &observed).unwrap();
    assert!(
        p.changes.iter().all(|c| c.action == Action::NoOp),
        "{:#?}",
        p.changes
    );

    // A minimum nothing of the stack sets is drift: back to web.min (the first value).
    let mut drifted = observed.clone();
    drifted[4].fields.insert("min_size".into(), Value::Int(4));
    let p = plan(&scope(), &desired, &drifted).unwrap();
    let g = change(&p, "web.asg");
    assert_eq!(g.action, Action::Update);
    assert_eq!(field_names(g), ["min_size"]);

    // A new target value: the same policy, updated in place.
    let p = plan(&scope(), &scaled_fleet(60), &observed).unwrap();
    let c = change(&p, "web.scaling");
    assert_updates_only(c, "target_value", Value::Int(50), Value::Int(60));
    assert_eq!(
        c.current.as_ref().map(|o| o.physical_id.as_str()),
        Some("demo-web/demo-web-tracking")
    );
}
