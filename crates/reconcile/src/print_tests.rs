//! Snapshots of the text and JSON plan for a small hand-built graph, and the JSON round trip.

use super::*;
use crate::diff;
use crate::test_support::{observed_as, tags, tcp_rule, web_asg};
use moodlestack_model::{Kind, Observed, Ref, Resource, Scope, Value};

const KNOWN: &[(&str, &str)] = &[
    ("net.vpc", "vpc-0a1"),
    ("net.subnet.private.a", "subnet-0a"),
    ("web.lt", "lt-0web"),
    ("db.instance", "demo-db.abc.eu-west-1.rds.amazonaws.com"),
];

fn observed(r: &Resource, physical: &str, extra_attrs: &[(&str, &str)]) -> Observed {
    observed_as(r, physical, KNOWN, extra_attrs)
}

fn user_data(version: &str) -> Value {
    let mut lines: Vec<String> = vec!["#!/bin/bash".into(), "set -euo pipefail".into()];
    lines.extend((0..30).map(|i| format!("echo step {i}")));
    lines.push(format!("MOODLE_VERSION={version}"));
    Value::Interpolated(vec![
        moodlestack_model::Segment::Lit(format!("{}\nDB_HOST=", lines.join("\n"))),
        moodlestack_model::Segment::Ref(Ref::new("db.instance", "endpoint")),
        moodlestack_model::Segment::Lit("\n".into()),
    ])
}

/// A small stack where every kind of change happens once: the VPC is unchanged, a subnet is
/// replaced (cidr), the target group drifted (in place), the web launch template gets new
/// user-data and the group follows, a security group is new, and an old one is deleted.
fn example() -> Plan {
    let vpc = Resource::new("net.vpc", Kind::Vpc)
        .with("cidr_block", "10.0.0.0/16")
        .with("enable_dns_hostnames", true)
        .with("tags", tags("net.vpc"));
    let subnet = Resource::new("net.subnet.private.a", Kind::Subnet)
        .with("vpc_id", Value::reference("net.vpc", "id"))
        .with("cidr_block", "10.0.16.0/20")
        .with("availability_zone", "eu-west-1a")
        .with("tags", tags("net.subnet.private.a"));
    let sg = Resource::new("sg.web", Kind::SecurityGroup)
        .with("vpc_id", Value::reference("net.vpc", "id"))
        .with("group_name", "demo-web")
        .with("description", "web nodes")
        .with(
            "ingress",
            Value::List(vec![tcp_rule(80, "cidr", Value::str("10.0.0.0/16"))]),
        )
        .with("tags", tags("sg.web"));
    let tg = Resource::new("lb.tg", Kind::TargetGroup)
        .with("name", "demo-tg")
        .with("vpc_id", Value::reference("net.vpc", "id"))
        .with("port", 80i64)
        .with("deregistration_delay", 30i64)
        .with("health_check_path", "/login/index.php")
        .with("tags", tags("lb.tg"));
    let db = Resource::new("db.instance", Kind::DbInstance)
        .with("identifier", "demo-db")
        .with("instance_class", "db.t4g.medium")
        .with("tags", tags("db.instance"));
    let lt = Resource::new("web.lt", Kind::LaunchTemplate)
        .with("name", "demo-web")
        .with("image_id", "ami-0123")
        .with("user_data", user_data("4.5.1"))
        .with(
            "security_group_ids",
            Value::List(vec![Value::reference("sg.web", "id")]),
        )
        .with("tags", tags("web.lt"));
    let asg = web_asg(4, 2, &["net.subnet.private.a"]);
    let desired = vec![
        vpc.clone(),
        subnet.clone(),
        sg.clone(),
        tg.clone(),
        db.clone(),
        lt.clone(),
        asg.clone(),
    ];

    let mut o_subnet = observed(&subnet, "subnet-0a", &[]);
    o_subnet
        .fields
        .insert("cidr_block".into(), Value::str("10.0.0.0/20"));
    if let Some(Value::Map(t)) = o_subnet.fields.get_mut("tags") {
        t.insert("Name".into(), Value::str("demo-private-a"));
    }
    let mut o_tg = observed(
        &tg,
        "arn:aws:elasticloadbalancing:eu-west-1:1:targetgroup/demo-tg/1",
        &[],
    );
    o_tg.fields
        .insert("deregistration_delay".into(), Value::Int(300));
    if let Some(Value::Map(t)) = o_tg.fields.get_mut("tags") {
        t.insert("Owner".into(), Value::str("someone else"));
    }
    let mut lt_old = lt.clone();
    lt_old.fields.insert("user_data".into(), user_data("4.5.0"));
    let mut o_lt = observed(&lt_old, "lt-0web", &[("version", "3")]);
    o_lt.fields
        .insert("security_group_ids".into(), Value::strs(["sg-0old"]));
    let mut o_asg = observed(&asg, "demo-web", &[]);
    o_asg
        .fields
        .insert("launch_template_version".into(), Value::str("3"));
    o_asg
        .fields
        .insert("desired_capacity".into(), Value::Int(3));
    let old_sg = Resource::new("sg.old", Kind::SecurityGroup).with("group_name", "demo-old");
    let observed = vec![
        observed(&vpc, "vpc-0a1", &[]),
        o_subnet,
        o_tg,
        observed(
            &db,
            "demo-db",
            &[("endpoint", "demo-db.abc.eu-west-1.rds.amazonaws.com")],
        ),
        o_lt,
        o_asg,
        observed(&old_sg, "sg-0old", &[]),
    ];
    diff::plan(
        &Scope {
            stack: "demo".into(),
            region: "eu-west-1".into(),
        },
        &desired,
        &observed,
    )
    .unwrap()
}

#[test]
fn text_plan() {
    let p = example();
    assert_eq!(
        (
            p.summary.create,
            p.summary.update,
            p.summary.replace,
            p.summary.delete,
            p.summary.unchanged
        ),
        (1, 3, 1, 1, 2)
    );
    insta::assert_snapshot!(text(&p, false));
}

#[test]
fn text_plan_is_colored_only_when_asked() {
    let p = example();
    assert!(!text(&p, false).contains('\x1b'));
    let colored = text(&p, true);
    assert!(colored.contains("\x1b[32m+\x1b[0m"), "{colored}");
    assert!(
        colored.contains("\x1b[31m# forces replacement\x1b[0m"),
        "{colored}"
    );
}

#[test]
fn no_changes_says_so() {
    let vpc = Resource::new("net.vpc", Kind::Vpc).with("cidr_block", "10.0.0.0/16");
    let p = diff::plan(
        &Scope {
            stack: "demo".into(),
            region: "eu-west-1".into(),
        },
        std::slice::from_ref(&vpc),
        &[observed(&vpc, "vpc-0a1", &[])],
    )
    .unwrap();
    assert_eq!(
        text(&p, false),
        "No changes. Stack `demo` (eu-west-1) matches its stack file: 1 resource up to date.\n"
    );
}

#[test]
fn json_plan() {
    insta::assert_snapshot!(json(&example()));
}

#[test]
fn json_round_trip() {
    let p = example();
    let back = read_json(&json(&p)).unwrap();
    assert_eq!(back, p);
}

#[test]
fn reading_a_plan_of_another_format_version_fails_with_the_fix() {
    let mut v: serde_json::Value = serde_json::from_str(&json(&example())).unwrap();
    v["format_version"] = serde_json::json!(99);
    let err = read_json(&v.to_string()).unwrap_err();
    let fix = moodlestack_model::Hint::hint(&err).unwrap_or_default();
    let err = err.to_string();
    assert!(
        err.contains("format version 99") && fix.contains("moodlestack plan"),
        "{err} / {fix}"
    );
    let err = read_json("{").unwrap_err().to_string();
    assert!(err.contains("not a moodlestack plan file"), "{err}");
}

#[test]
fn line_diff_shows_changed_runs() {
    let a = ["a", "b", "c", "d"];
    let b = ["a", "B", "c", "d", "e"];
    assert_eq!(
        line_diff(&a, &b),
        vec![(false, "b"), (true, "B"), (true, "e")]
    );
}

#[test]
fn markdown_plan() {
    let md = markdown(&example());
    insta::assert_snapshot!(md);
    // No data loss in the example: no caution block; the details hold the text form's blocks.
    assert!(!md.contains("[!CAUTION]"));
    let text = text(&example(), false);
    let first_block = text.split("\n\n").nth(1).unwrap();
    assert!(md.contains(first_block), "{first_block}");
}

#[test]
fn markdown_puts_data_loss_first() {
    let fs = Resource::new("files.fs", Kind::EfsFileSystem)
        .with("creation_token", "demo-moodledata")
        .with("tags", tags("files.fs"));
    let p = diff::plan(
        &Scope {
            stack: "demo".into(),
            region: "eu-west-1".into(),
        },
        &[],
        &[observed(&fs, "fs-0abc", &[])],
    )
    .unwrap();
    let md = markdown(&p);
    let caution = md.find("> [!CAUTION]").expect(&md);
    let table = md
        .find("| - | `files.fs` | efs_file_system | delete |")
        .expect(&md);
    assert!(caution < table, "{md}");
    assert!(md.contains("> - `files.fs` (efs_file_system): "), "{md}");
}

#[test]
fn markdown_without_changes_and_long_details_cut_to_fit() {
    let vpc = Resource::new("net.vpc", Kind::Vpc).with("cidr_block", "10.0.0.0/16");
    let scope = Scope {
        stack: "demo".into(),
        region: "eu-west-1".into(),
    };
    let p = diff::plan(
        &scope,
        std::slice::from_ref(&vpc),
        &[observed(&vpc, "vpc-0a1", &[])],
    )
    .unwrap();
    assert_eq!(
        markdown(&p),
        "### moodlestack plan: `demo` (eu-west-1)\n\n**No changes.** The stack matches its stack \
         file: 1 resource up to date.\n"
    );
    // Hundreds of new resources: the details stop before GitHub's 65,536-character limit.
    let many: Vec<Resource> = (0..2000)
        .map(|i| {
            Resource::new(format!("net.subnet.{i}").as_str(), Kind::Subnet)
                .with("cidr_block", format!("10.{}.{}.0/24", i / 250, i % 250))
                .with("availability_zone", "eu-west-1a")
        })
        .collect();
    let md = markdown(&diff::plan(&scope, &many, &[]).unwrap());
    let details = &md[md.find("<details>").unwrap()..];
    assert!(details.len() < 61_000, "{}", details.len());
    assert!(details.contains("cut to fit a comment"));
    assert!(details.ends_with("```\n\n</details>\n"));
}
