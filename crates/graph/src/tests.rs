//! Unit tests of the graph builder on inline stacks. The user-data renderer is a stand-in that
//! embeds every endpoint the way the templates do (verbatim), so the tests see the same
//! references the real templates produce; `tests/snapshots.rs` covers the real renderer.

use super::*;
use moodlestack_model::{spec, Kind, Ref, Resource, ResourceId, Segment, Value, TAG_ID, TAG_STACK};
use std::collections::{BTreeMap, BTreeSet};

const MINIMAL: &str = r#"
name: demo
region: eu-west-1
database: {}
load_balancer: {}
moodle:
  wwwroot: http://moodle.example.org
  admin_email: admin@example.org
"#;

pub(crate) fn stack(extra: &str) -> Stack {
    // `extra` replaces top-level sections of MINIMAL (later keys win is not YAML; merge by hand).
    let mut doc: serde_json::Value = serde_saphyr::from_str(MINIMAL).unwrap();
    let over: serde_json::Value = if extra.trim().is_empty() {
        serde_json::json!({})
    } else {
        serde_saphyr::from_str(extra).unwrap()
    };
    for (k, v) in over.as_object().unwrap() {
        doc[k] = v.clone();
    }
    serde_json::from_value(doc).unwrap()
}

fn image() -> Image {
    Image {
        image_id: "ami-0123456789abcdef0".into(),
        architecture: "x86_64".into(),
        root_device_name: "/dev/sda1".into(),
        account_id: "123456789012".into(),
    }
}

/// Embeds every endpoint value verbatim, like the real templates.
fn fake_user_data(_: &Stack, role: Role, e: &Endpoints) -> Result<String, RenderError> {
    Ok(format!(
        "#!/bin/bash\nROLE={role:?}\nREGION={}\nDB='{}:{}' SECRET={}\nREDIS={}:{} AUTH={}\nEFS={}\n",
        e.region,
        e.db_host,
        e.db_port,
        e.db_secret_arn,
        e.redis_host,
        e.redis_port,
        e.redis_auth_secret_arn.clone().unwrap_or_default(),
        e.efs_id
    ))
}

fn graph(extra: &str) -> Vec<Resource> {
    build_with(&stack(extra), &image(), &fake_user_data).unwrap()
}

/// `r`'s field `field` refers to the attribute `attr` of `target`.
#[track_caller]
fn assert_ref(r: &Resource, field: &str, target: &str, attr: &str) {
    assert_eq!(
        r.fields[field],
        Value::reference(target, attr),
        "{} {field}",
        r.id
    );
}

fn find<'a>(g: &'a [Resource], id: &str) -> &'a Resource {
    g.iter()
        .find(|r| r.id.as_str() == id)
        .unwrap_or_else(|| panic!("{id} not in graph"))
}

/// Asserts each (resource, field, value).
#[track_caller]
fn assert_fields(g: &[Resource], want: &[(&str, &str, Value)]) {
    for (id, field, value) in want {
        assert_eq!(&find(g, id).fields[*field], value, "{id}.{field}");
    }
}

fn ids(g: &[Resource]) -> Vec<&str> {
    g.iter().map(|r| r.id.as_str()).collect()
}

fn ingress(g: &[Resource], sg: &str) -> Vec<BTreeMap<String, Value>> {
    find(g, sg).fields["ingress"]
        .as_list()
        .unwrap()
        .iter()
        .map(|r| r.as_map().unwrap().clone())
        .collect()
}

fn ports(g: &[Resource], sg: &str) -> BTreeSet<i64> {
    ingress(g, sg)
        .iter()
        .map(|r| r["from_port"].as_i64().unwrap())
        .collect()
}

/// Every invariant of a built graph: unique ids, references resolve inside the graph, each
/// resource comes after everything it depends on (so there is no cycle), field names belong to
/// the kind, tags on every taggable resource.
fn assert_well_formed(g: &[Resource], stack_name: &str) {
    let mut seen: BTreeSet<&ResourceId> = BTreeSet::new();
    for r in g {
        for d in r.deps() {
            assert!(
                seen.contains(&d),
                "{} depends on {d}, which is not before it",
                r.id
            );
        }
        assert!(seen.insert(&r.id), "{} twice", r.id);
        let kind = spec(r.kind);
        for f in r.fields.keys() {
            assert!(
                kind.field(f).is_some(),
                "{}: {f} is not a field of {}",
                r.id,
                kind.name
            );
        }
        if kind.field("tags").is_some() {
            let tags = r.fields["tags"]
                .as_map()
                .unwrap_or_else(|| panic!("{} has no tags", r.id));
            assert_eq!(tags[TAG_STACK], Value::str(stack_name));
            assert_eq!(tags[TAG_ID], Value::str(r.id.as_str()));
            assert_eq!(
                tags["Name"],
                Value::str(format!("{stack_name}-{}", r.id.as_str().replace('.', "-")))
            );
        }
    }
    // Tiers never go down except for same-tier dependencies (security group sources).
    for w in g.windows(2) {
        let (a, b) = (spec(w[0].kind).tier, spec(w[1].kind).tier);
        assert!(
            a <= b || w[1].deps().contains(&w[0].id),
            "{} before {}",
            w[0].id,
            w[1].id
        );
    }
}

/// `database.restore_from`: the database (the standalone instance, or the Aurora cluster whose
/// snapshots are cluster snapshots) is restored from that snapshot and says so in its tag; Aurora's
/// members are made in the cluster (they name it, so a restored cluster replaces them) and carry
/// neither; without it, nothing is restored.
#[test]
fn a_restored_database_names_its_snapshot_on_the_instance_or_the_cluster() {
    for (engine, db, members) in [
        ("mysql", "db.instance", &[][..]),
        (
            "aurora-mysql",
            "db.cluster",
            &["db.instance.1", "db.instance.2"][..],
        ),
    ] {
        let snapshot = "demo-code-v4-5-6-php8-3";
        let g = graph(&format!(
            "database:\n  engine: {engine}\n  restore_from: {snapshot}\n"
        ));
        let restored = find(&g, db);
        assert_eq!(
            restored.fields["restore_from"],
            Value::str(snapshot),
            "{engine}"
        );
        assert_eq!(
            restored.fields["tags"].as_map().unwrap()["moodlestack:restored-from"],
            Value::str(snapshot)
        );
        for m in members {
            let member = find(&g, m);
            assert_eq!(
                member.fields["cluster_identifier"],
                Value::reference(db, "id")
            );
            assert!(!member.fields.contains_key("restore_from"), "{m}");
        }
        let plain = graph(&format!("database:\n  engine: {engine}\n"));
        let db = find(&plain, db);
        assert!(!db.fields.contains_key("restore_from"), "{engine}");
        assert!(!db.fields["tags"]
            .as_map()
            .unwrap()
            .contains_key("moodlestack:restored-from"));
    }
}

/// `files.restore_from`: the file system is made by a restore of that recovery point with the
/// backup role (so it waits for the role) and says so in its tag; without it, neither.
#[test]
fn a_restored_file_system_waits_for_the_backup_role_and_names_its_recovery_point() {
    let point = "arn:aws:backup:eu-west-1:123456789012:recovery-point:1";
    let g = graph(&format!("files:\n  restore_from: {point}\n"));
    let fs = find(&g, "files.fs");
    assert_eq!(fs.fields["restore_from"], Value::str(point));
    assert_eq!(
        fs.fields["restore_role_arn"],
        Value::reference("backup.role", "arn")
    );
    assert!(fs.deps().iter().any(|d| d.as_str() == "backup.role"));
    assert_eq!(
        fs.fields["tags"].as_map().unwrap()["moodlestack:restored-from"],
        Value::str(point)
    );
    let role = g
        .iter()
        .position(|r| r.id.as_str() == "backup.role")
        .unwrap();
    let at = g.iter().position(|r| r.id.as_str() == "files.fs").unwrap();
    assert!(role < at, "the role is made before the restore");
    let plain = graph("");
    let fs = find(&plain, "files.fs");
    assert!(!fs.fields.contains_key("restore_from") && !fs.fields.contains_key("restore_role_arn"));
    assert!(!fs.fields["tags"]
        .as_map()
        .unwrap()
        .contains_key("moodlestack:restored-from"));
}

#[test]
fn backups_and_the_code_version_snapshot() {
    let g = graph("");
    let find = |id: &str| g.iter().find(|r| r.id.as_str() == id).expect(id);
    let plan = find("backup.plan");
    assert_eq!(plan.fields["schedule"], Value::str("cron(0 3 * * ? *)"));
    assert_eq!(plan.fields["schedule_time_zone"], Value::str("Etc/UTC"));
    assert_eq!(plan.fields["retention_days"], Value::Int(35));
    assert_ref(plan, "vault_name", "backup.vault", "id");
    let selection = find("backup.selection");
    assert_eq!(
        selection.fields["resources"],
        Value::List(vec![
            Value::reference("db.instance", "arn"),
            Value::reference("files.fs", "arn"),
        ])
    );
    assert!(!selection.fields.contains_key("tags"), "untaggable");
    // The snapshot is named after the code version and waited for by both launch templates.
    let snapshot = find("db.snapshot");
    assert_eq!(
        snapshot.fields["identifier"],
        Value::str("demo-code-v4-5-5-php8-3")
    );
    assert_eq!(
        snapshot.fields["tags"].as_map().unwrap()["moodlestack:code"],
        Value::str("v4.5.5 php8.3")
    );
    // Moodledata's backup, named like the snapshot, into the stack's vault by its role.
    let backup = find("files.backup");
    assert_eq!(backup.fields["name"], Value::str("demo-code-v4-5-5-php8-3"));
    let tags = backup.fields["tags"].as_map().unwrap();
    assert_eq!(tags["moodlestack:code"], Value::str("v4.5.5 php8.3"));
    assert_ref(backup, "resource_arn", "files.fs", "arn");
    assert_ref(backup, "vault_name", "backup.vault", "id");
    assert_ref(backup, "iam_role_arn", "backup.role", "arn");
    for lt in ["web.lt", "stable.lt"] {
        for before in ["db.snapshot", "files.backup"] {
            assert!(
                find(lt).deps().iter().any(|d| d.as_str() == before),
                "{lt} waits for {before}"
            );
        }
    }
    // Aurora: the cluster is snapshotted and backed up.
    let g = graph("database:\n  engine: aurora-mysql\n");
    let find = |id: &str| g.iter().find(|r| r.id.as_str() == id).expect(id);
    assert_ref(
        find("db.snapshot"),
        "db_cluster_identifier",
        "db.cluster",
        "id",
    );
    assert!(find("backup.selection").fields["resources"]
        .as_list()
        .unwrap()
        .contains(&Value::reference("db.cluster", "arn")));
    // Off: no backup resources (the snapshot stays: it is the upgrade's).
    let g = graph("backup:\n  enabled: false\n");
    assert!(g.iter().all(|r| !r.id.as_str().starts_with("backup.")));
    assert!(g.iter().all(|r| r.id.as_str() != "files.backup"));
    let find = |id: &str| g.iter().find(|r| r.id.as_str() == id).expect(id);
    assert!(find("web.lt")
        .deps()
        .iter()
        .all(|d| d.as_str() != "files.backup"));
    assert!(g.iter().any(|r| r.id.as_str() == "db.snapshot"));
}

#[test]
fn default_stack_has_the_whole_topology() {
    let g = graph("");
    assert_well_formed(&g, "demo");
    let expected = [
        "net.vpc",
        "net.igw",
        "net.subnet.public.a",
        "net.subnet.private.a",
        "net.subnet.public.b",
        "net.subnet.private.b",
        "net.eip.nat.a",
        "net.nat.a",
        "net.rt.public",
        "net.rt.private.a",
        "net.rt.private.b",
        "sg.alb",
        "sg.web",
        "sg.stable",
        "sg.db",
        "sg.cache",
        "sg.efs",
        "cache.auth",
        "iam.role",
        "iam.profile",
        "db.subnet_group",
        "db.parameter_group",
        "db.instance",
        "files.fs",
        "files.mount.a",
        "files.mount.b",
        "cache.subnet_group",
        "cache.redis",
        "web.lt",
        "stable.lt",
        "stable.instance",
        "web.asg",
        "web.scaling",
        "web.drain",
        "lb.alb",
        "lb.tg",
        "observe.key",
        "logs.apache_access",
        "logs.apache_error",
        "logs.php_fpm",
        "logs.php_fpm_slow",
        "logs.cron",
        "logs.boot",
        "logs.install_upgrade",
        "logs.filter.fpm_max_children",
        "logs.filter.slow_requests",
        "alerts.topic",
        "alarm.alb_5xx",
        "alarm.response_time",
        "alarm.unhealthy_hosts",
        "alarm.fleet_below_min",
        "alarm.db_cpu",
        "alarm.db_free_storage",
        "alarm.db_memory",
        "alarm.db_connections",
        "alarm.redis_memory",
        "alarm.redis_evictions",
        "alarm.efs_throughput",
        "alarm.cron_heartbeat",
        "alarm.fpm_max_children",
        "alarm.slow_requests",
        "observe.dashboard",
        "lb.listener.http",
        "code.bucket",
        "db.snapshot",
        "backup.vault",
        "backup.plan",
        "backup.role",
        "backup.selection",
        "files.backup",
    ];
    let got: BTreeSet<&str> = ids(&g).into_iter().collect();
    assert_eq!(got, expected.into_iter().collect::<BTreeSet<_>>());

    assert_fields(
        &g,
        &[
            ("net.vpc", "enable_dns_hostnames", Value::Bool(true)),
            ("net.vpc", "enable_dns_support", Value::Bool(true)),
            (
                "net.subnet.public.a",
                "map_public_ip_on_launch",
                true.into(),
            ),
            (
                "net.subnet.private.b",
                "map_public_ip_on_launch",
                false.into(),
            ),
            ("net.subnet.private.b", "cidr_block", "10.0.32.0/20".into()),
            (
                "net.subnet.public.b",
                "availability_zone",
                "eu-west-1b".into(),
            ),
        ],
    );
    // The NAT waits for the internet gateway.
    assert!(find(&g, "net.nat.a").deps().contains(&"net.igw".into()));
    // The public route table sends 0.0.0.0/0 to the IGW, for the public subnets.
    let rt = find(&g, "net.rt.public");
    assert_eq!(
        rt.fields["routes"],
        Value::List(vec![Value::Map(BTreeMap::from([
            ("destination_cidr".into(), "0.0.0.0/0".into()),
            ("gateway_id".into(), Value::reference("net.igw", "id")),
        ]))])
    );
    assert_eq!(
        rt.fields["subnet_ids"],
        Value::List(vec![
            Value::reference("net.subnet.public.a", "id"),
            Value::reference("net.subnet.public.b", "id")
        ])
    );
    // Single NAT: both private route tables use the NAT of the first zone.
    for z in ["a", "b"] {
        let routes = find(&g, &format!("net.rt.private.{z}")).fields["routes"].clone();
        assert_eq!(
            routes.refs(),
            vec![&Ref::new("net.nat.a", "id")],
            "zone {z}"
        );
    }
}

#[test]
fn ssh_is_open_only_to_admin_cidrs() {
    let g = graph("");
    for sg in [
        "sg.web",
        "sg.stable",
        "sg.alb",
        "sg.db",
        "sg.cache",
        "sg.efs",
    ] {
        assert!(
            !ports(&g, sg).contains(&22),
            "{sg} opens SSH without admin_cidrs"
        );
    }
    let g = graph("network:\n  admin_cidrs: [203.0.113.0/24, 198.51.100.7/32]\n");
    for sg in ["sg.web", "sg.stable"] {
        let ssh: Vec<_> = ingress(&g, sg)
            .into_iter()
            .filter(|r| r["from_port"] == Value::Int(22))
            .collect();
        let cidrs: Vec<&str> = ssh.iter().map(|r| r["cidr"].as_str().unwrap()).collect();
        assert_eq!(cidrs, ["203.0.113.0/24", "198.51.100.7/32"], "{sg}");
        assert!(ssh.iter().all(|r| !r.contains_key("source_group_id")));
    }
    for sg in ["sg.alb", "sg.db", "sg.cache", "sg.efs"] {
        assert!(!ports(&g, sg).contains(&22), "{sg} must never open SSH");
    }
}

#[test]
fn security_groups_are_least_privilege() {
    let g = graph("");
    let alb = ingress(&g, "sg.alb");
    assert_eq!(
        ports(&g, "sg.alb"),
        BTreeSet::from([80]),
        "443 only with a certificate"
    );
    assert!(alb.iter().all(|r| r["cidr"] == Value::str("0.0.0.0/0")));
    for sg in ["sg.web", "sg.stable"] {
        let rules = ingress(&g, sg);
        assert_eq!(rules.len(), 1, "{sg}");
        assert_eq!(rules[0]["from_port"], Value::Int(80));
        assert_eq!(
            rules[0]["source_group_id"],
            Value::reference("sg.alb", "id")
        );
    }
    for (sg, port) in [("sg.db", 3306), ("sg.cache", 6379), ("sg.efs", 2049)] {
        let rules = ingress(&g, sg);
        let sources: Vec<&Value> = rules.iter().map(|r| &r["source_group_id"]).collect();
        assert_eq!(
            sources,
            [
                &Value::reference("sg.web", "id"),
                &Value::reference("sg.stable", "id")
            ],
            "{sg}"
        );
        assert!(rules.iter().all(|r| r["from_port"] == Value::Int(port)
            && r["to_port"] == Value::Int(port)
            && r["protocol"] == Value::str("tcp")
            && !r.contains_key("cidr")));
    }
    // Every rule says what it is for.
    for r in g.iter().filter(|r| r.kind == Kind::SecurityGroup) {
        for rule in ingress(&g, r.id.as_str()) {
            assert!(
                !rule["description"].as_str().unwrap().is_empty(),
                "{}",
                r.id
            );
        }
    }
}

#[test]
fn postgres_opens_5432_not_3306() {
    let g = graph("database:\n  engine: postgres\n");
    assert_eq!(ports(&g, "sg.db"), BTreeSet::from([5432]));
    let db = find(&g, "db.instance");
    assert_eq!(db.fields["port"], Value::Int(5432));
    assert_eq!(db.fields["engine"], "postgres".into());
    assert_eq!(
        find(&g, "db.parameter_group").fields["family"],
        "postgres16".into()
    );
    let lt = find(&g, "web.lt");
    // The literal port reaches user-data.
    let Value::Interpolated(segs) = &lt.fields["user_data"] else {
        panic!("not interpolated")
    };
    assert!(segs
        .iter()
        .any(|s| matches!(s, Segment::Lit(l) if l.contains(":5432'"))));
}

#[test]
fn per_zone_nat_gives_a_nat_and_a_private_route_per_zone() {
    let g = graph(
        "network:\n  zones: [eu-west-1a, eu-west-1b, eu-west-1c]\n  nat_gateways: per-zone\n",
    );
    assert_well_formed(&g, "demo");
    for z in ["a", "b", "c"] {
        let nat = find(&g, &format!("net.nat.{z}"));
        assert_eq!(
            nat.fields["subnet_id"],
            Value::reference(format!("net.subnet.public.{z}"), "id")
        );
        assert_eq!(
            nat.fields["allocation_id"],
            Value::reference(format!("net.eip.nat.{z}"), "id")
        );
        let rt = find(&g, &format!("net.rt.private.{z}"));
        assert_eq!(
            rt.fields["routes"].refs(),
            vec![&Ref::new(format!("net.nat.{z}"), "id")]
        );
        assert_eq!(
            rt.fields["subnet_ids"],
            Value::List(vec![Value::reference(
                format!("net.subnet.private.{z}"),
                "id"
            )])
        );
        find(&g, &format!("files.mount.{z}"));
    }
    assert_eq!(g.iter().filter(|r| r.kind == Kind::NatGateway).count(), 3);
}

#[test]
fn no_nat_means_no_default_route() {
    let g = graph("network:\n  nat_gateways: none\n");
    assert_well_formed(&g, "demo");
    assert!(!g
        .iter()
        .any(|r| matches!(r.kind, Kind::NatGateway | Kind::ElasticIp)));
    for z in ["a", "b"] {
        assert_eq!(
            find(&g, &format!("net.rt.private.{z}")).fields["routes"],
            Value::List(vec![])
        );
    }
}

#[test]
fn aurora_gives_a_cluster_and_members() {
    let g = graph("database:\n  engine: aurora-mysql\n  instance_class: db.r7g.large\n");
    assert_well_formed(&g, "demo");
    assert!(!ids(&g).contains(&"db.instance"));
    let cluster = find(&g, "db.cluster");
    assert_eq!(cluster.fields["engine"], "aurora-mysql".into());
    assert_eq!(cluster.fields["storage_encrypted"], true.into());
    assert_ref(
        cluster,
        "cluster_parameter_group_name",
        "db.cluster_parameter_group",
        "id",
    );
    let cpg = find(&g, "db.cluster_parameter_group");
    assert_eq!(cpg.fields["family"], "aurora-mysql8.0".into());
    assert_eq!(cpg.fields["name"], "demo-aurora-mysql8-0-cluster".into());
    let params = cpg.fields["parameters"].as_map().unwrap();
    assert_eq!(params["character_set_server"], "utf8mb4".into());
    assert!(!params.contains_key("innodb_io_capacity"));
    for i in [1, 2] {
        let m = find(&g, &format!("db.instance.{i}"));
        assert_ref(m, "cluster_identifier", "db.cluster", "id");
        assert_eq!(m.fields["identifier"], Value::str(format!("demo-db-{i}")));
        assert_eq!(m.fields["instance_class"], "db.r7g.large".into());
        for absent in [
            "allocated_storage",
            "master_username",
            "backup_retention_period",
        ] {
            assert!(!m.fields.contains_key(absent), "member has {absent}");
        }
    }
    // Secrets and endpoints come from the cluster.
    let role = find(&g, "iam.role");
    assert!(role.deps().contains(&"db.cluster".into()));
    let ud = find(&g, "web.lt").fields["user_data"].refs();
    assert!(ud.contains(&&Ref::new("db.cluster", "endpoint")));
    assert!(ud.contains(&&Ref::new("db.cluster", "secret_arn")));

    let g = graph("database:\n  engine: aurora-mysql\n  multi_az: false\n");
    assert!(ids(&g).contains(&"db.instance.1"));
    assert!(!ids(&g).contains(&"db.instance.2"));
}

#[test]
fn https_listener_only_with_a_certificate() {
    let g = graph("");
    assert!(!ids(&g).contains(&"lb.listener.https"));
    let http = find(&g, "lb.listener.http");
    assert_eq!(
        http.fields["default_action"].as_map().unwrap()["type"],
        "forward".into()
    );
    assert!(!http.fields.contains_key("certificate_arn"));

    let cert = "arn:aws:acm:eu-west-1:123456789012:certificate/abc";
    let g = graph(&format!("load_balancer:\n  certificate_arn: {cert}\n"));
    assert_well_formed(&g, "demo");
    let http = find(&g, "lb.listener.http").fields["default_action"]
        .as_map()
        .unwrap()
        .clone();
    assert_eq!(http["type"], "redirect".into());
    assert_eq!(http["protocol"], "HTTPS".into());
    assert_eq!(http["port"], "443".into());
    assert_eq!(http["status_code"], "HTTP_301".into());
    let https = find(&g, "lb.listener.https");
    assert_eq!(https.fields["certificate_arn"], cert.into());
    assert_eq!(https.fields["ssl_policy"], TLS_POLICY_FOR_TESTS.into());
    assert_eq!(
        https.fields["default_action"].as_map().unwrap()["target_group_arn"],
        Value::reference("lb.tg", "arn")
    );
    assert_eq!(ports(&g, "sg.alb"), BTreeSet::from([80, 443]));
}

const TLS_POLICY_FOR_TESTS: &str = "ELBSecurityPolicy-TLS13-1-2-2021-06";

#[test]
fn iam_policy_names_only_the_stacks_secrets() {
    let g = graph("");
    let role = find(&g, "iam.role");
    let policies = role.fields["inline_policies"].as_map().unwrap();
    assert_eq!(policies.keys().collect::<Vec<_>>(), ["demo-eu-west-1-node"]);
    let policy = &policies["demo-eu-west-1-node"];
    let refs: BTreeSet<String> = policy.refs().iter().map(|r| r.to_string()).collect();
    assert_eq!(
        refs,
        BTreeSet::from([
            "db.instance.secret_arn".to_string(),
            "cache.auth.arn".to_string(),
            "files.fs.arn".to_string(),
            "code.bucket.arn".to_string()
        ])
    );
    // Resolved, the document is canonical JSON that grants exactly these ARNs.
    let lookup = |r: &Ref| Some(format!("arn:test:{}", r));
    let text = policy.resolve(&lookup);
    let text = text.as_str().unwrap();
    let doc: serde_json::Value = serde_json::from_str(text).unwrap();
    assert_eq!(build::canonical_json(&doc), text, "not canonical");
    let stmts = doc["Statement"].as_array().unwrap();
    // Secrets, EFS, code artefacts, drain (2), logs, the stack's metrics.
    assert_eq!(stmts.len(), 7);
    use serde_json::json;
    // Each statement's actions and resources.
    let grants = [
        // The watcher completes the drain hook's action on the stack's group and nothing else.
        (
            4,
            json!(["autoscaling:CompleteLifecycleAction"]),
            json!(
                "arn:aws:autoscaling:eu-west-1:*:autoScalingGroup:*:autoScalingGroupName/demo-web"
            ),
        ),
        (
            0,
            json!(["secretsmanager:GetSecretValue"]),
            json!(["arn:test:db.instance.secret_arn", "arn:test:cache.auth.arn"]),
        ),
        (
            1,
            json!([
                "elasticfilesystem:ClientMount",
                "elasticfilesystem:ClientWrite"
            ]),
            json!(["arn:test:files.fs.arn"]),
        ),
        // Code artefacts: read and put (never listed, never deleted) under the bucket's code/
        // only.
        (
            2,
            json!(["s3:GetObject", "s3:PutObject"]),
            json!(["arn:test:code.bucket.arn/code/*"]),
        ),
        // The one wildcard resource is the drain permission, scoped by the stack's tag.
        (3, json!(["autoscaling:EnterStandby"]), json!("*")),
    ];
    for (i, action, resource) in grants {
        assert_eq!(stmts[i]["Action"], action, "statement {i}");
        assert_eq!(stmts[i]["Resource"], resource, "statement {i}");
    }
    assert_eq!(
        stmts[3]["Condition"],
        serde_json::json!({"StringEquals": {"aws:ResourceTag/moodlestack:stack": "demo"}})
    );
    for s in &stmts[..2] {
        assert!(!s.to_string().contains('*'), "no wildcard: {s}");
    }
    assert_eq!(
        role.fields["assume_role_policy"],
        Value::str(
            r#"{"Statement":[{"Action":"sts:AssumeRole","Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"}}],"Version":"2012-10-17"}"#
        )
    );
    assert_eq!(
        role.fields["managed_policy_arns"],
        Value::strs(["arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore"])
    );

    // Without Redis AUTH there is no auth secret, and the policy does not name one.
    let g = graph("cache:\n  auth: false\n");
    assert!(!ids(&g).contains(&"cache.auth"));
    let policy = &find(&g, "iam.role").fields["inline_policies"]
        .as_map()
        .unwrap()["demo-eu-west-1-node"];
    let refs: Vec<String> = policy.refs().iter().map(|r| r.to_string()).collect();
    assert_eq!(
        refs,
        ["db.instance.secret_arn", "files.fs.arn", "code.bucket.arn"]
    );
    assert!(!find(&g, "cache.redis")
        .fields
        .contains_key("auth_token_secret_arn"));
}

#[test]
fn compute_uses_the_image_and_imdsv2() {
    let g = graph("");
    for (lt, sg, ty) in [
        ("web.lt", "sg.web", "m6i.large"),
        ("stable.lt", "sg.stable", "m6i.large"),
    ] {
        let f = &find(&g, lt).fields;
        assert_eq!(f["image_id"], "ami-0123456789abcdef0".into());
        assert_eq!(f["root_device_name"], "/dev/sda1".into());
        assert_eq!(f["instance_type"], ty.into());
        assert_eq!(f["http_tokens"], "required".into());
        assert_eq!(f["root_volume_encrypted"], true.into());
        assert_eq!(f["root_volume_type"], "gp3".into());
        assert_eq!(f["root_volume_size"], Value::Int(30));
        assert_eq!(
            f["security_group_ids"],
            Value::List(vec![Value::reference(sg, "id")])
        );
        assert_eq!(
            f["instance_profile_arn"],
            Value::reference("iam.profile", "arn")
        );
        let refs: BTreeSet<String> = f["user_data"]
            .refs()
            .iter()
            .map(|r| r.to_string())
            .collect();
        assert_eq!(
            refs,
            BTreeSet::from(
                [
                    "db.instance.endpoint",
                    "db.instance.secret_arn",
                    "cache.redis.primary_endpoint",
                    "cache.auth.arn",
                    "files.fs.id"
                ]
                .map(String::from)
            ),
            "{lt}"
        );
    }
    let stable = find(&g, "stable.instance");
    assert_ref(stable, "launch_template_version", "stable.lt", "version");
    assert_ref(stable, "subnet_id", "net.subnet.private.a", "id");
    // Nodes boot only once EFS is mountable and the private subnets route to the internet.
    for node in ["stable.instance", "web.asg"] {
        let deps = find(&g, node).deps();
        for d in [
            "files.mount.a",
            "files.mount.b",
            "net.rt.private.a",
            "net.rt.public",
        ] {
            assert!(deps.contains(&d.into()), "{node} does not wait for {d}");
        }
    }
    let asg = &find(&g, "web.asg").fields;
    assert_eq!(
        asg["launch_template_version"],
        Value::reference("web.lt", "version")
    );
    assert_eq!(asg["desired_capacity"], asg["min_size"]);
    assert_eq!(asg["health_check_type"], "ELB".into());
    assert_eq!(
        asg["target_group_arns"],
        Value::List(vec![Value::reference("lb.tg", "arn")])
    );
    assert_eq!(
        asg["instance_types"],
        Value::strs(["m6i.large", "c6i.xlarge", "m5.large", "t3.large"])
    );

    // An arm64 image with x86 instance types is refused with the fix.
    let arm = Image {
        architecture: "arm64".into(),
        ..image()
    };
    let e = build_with(&stack(""), &arm, &fake_user_data)
        .unwrap_err()
        .to_string();
    assert!(e.contains("web.instance_types: m6i.large is x86_64"), "{e}");
}

#[test]
fn existing_network_declares_no_net_resources() {
    let g = graph(
        "network:\n  existing:\n    vpc_id: vpc-1\n    public_subnet_ids: [subnet-p1, subnet-p2]\n    private_subnet_ids: [subnet-q1, subnet-q2]\n",
    );
    assert_well_formed(&g, "demo");
    assert!(
        g.iter().all(|r| !r.id.as_str().starts_with("net.")),
        "{:?}",
        ids(&g)
    );
    assert_fields(
        &g,
        &[
            ("sg.web", "vpc_id", "vpc-1".into()),
            ("lb.tg", "vpc_id", "vpc-1".into()),
            (
                "lb.alb",
                "subnet_ids",
                Value::strs(["subnet-p1", "subnet-p2"]),
            ),
            (
                "web.asg",
                "subnet_ids",
                Value::strs(["subnet-q1", "subnet-q2"]),
            ),
            ("files.mount.2", "subnet_id", "subnet-q2".into()),
            ("stable.instance", "subnet_id", "subnet-q1".into()),
        ],
    );
}

#[test]
fn extra_tags_reach_every_resource() {
    let g = graph("tags:\n  team: elearning\n");
    for r in &g {
        if let Some(tags) = r.fields.get("tags") {
            assert_eq!(
                tags.as_map().unwrap()["team"],
                "elearning".into(),
                "{}",
                r.id
            );
        } else {
            assert!(
                matches!(
                    r.kind,
                    Kind::Listener
                        | Kind::EfsMountTarget
                        | Kind::ScalingPolicy
                        | Kind::ScheduledAction
                        | Kind::LifecycleHook
                        | Kind::BackupSelection
                        | Kind::MetricFilter
                        | Kind::SnsSubscription
                        | Kind::Dashboard
                ),
                "{}",
                r.id
            );
        }
    }
}

#[test]
fn database_instance_fields() {
    let g = graph("");
    let f = &find(&g, "db.instance").fields;
    assert!(!f.contains_key("max_allocated_storage"));
    assert_eq!(f["storage_encrypted"], true.into());
    assert_eq!(f["publicly_accessible"], false.into());
    assert_eq!(f["storage_type"], "gp3".into());
    assert_eq!(f["multi_az"], true.into());
    assert_eq!(f["deletion_protection"], true.into());
    assert_eq!(
        f["parameter_group_name"],
        Value::reference("db.parameter_group", "id")
    );
    let pg = &find(&g, "db.parameter_group").fields;
    assert_eq!(pg["name"], "demo-mysql8-4".into());
    assert_eq!(
        pg["parameters"].as_map().unwrap()["character_set_server"],
        "utf8mb4".into()
    );

    let g = graph("database:\n  max_storage_gb: 200\n  parameters:\n    max_connections: '500'\n");
    assert_eq!(
        find(&g, "db.instance").fields["max_allocated_storage"],
        Value::Int(200)
    );
    let pg = &find(&g, "db.parameter_group").fields;
    assert_eq!(
        pg["parameters"].as_map().unwrap()["max_connections"],
        "500".into()
    );
}

#[test]
fn cache_fields() {
    let g = graph("cache:\n  replicas: 2\n");
    let f = &find(&g, "cache.redis").fields;
    assert_eq!(f["num_cache_clusters"], Value::Int(3));
    assert_eq!(f["automatic_failover"], true.into());
    assert_eq!(f["multi_az"], true.into());
    assert_eq!(f["at_rest_encryption"], true.into());
    assert_eq!(f["transit_encryption"], true.into());
    assert_eq!(
        f["auth_token_secret_arn"],
        Value::reference("cache.auth", "arn")
    );
    assert_eq!(f["replication_group_id"], "demo-redis".into());
}

#[test]
fn broken_user_data_markers_are_reported() {
    let escaping = |s: &Stack, r: Role, e: &Endpoints| {
        fake_user_data(s, r, e)
            .map(|t| t.replace("@@ref:db.instance:endpoint@@", "@@ref:db.instance:endpoint"))
    };
    let e = build_with(&stack(""), &image(), &escaping)
        .unwrap_err()
        .to_string();
    assert!(e.contains("web.lt user_data"), "{e}");
}

/// `n` letters that gzip cannot shrink much (the user-data limit is on the compressed size).
fn noise(n: usize) -> String {
    let mut x: u64 = 7;
    (0..n)
        .map(|_| {
            x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            char::from(b'a' + (x >> 59) as u8 % 26)
        })
        .collect()
}

#[test]
fn user_data_over_the_ec2_limit_is_refused() {
    let big = |s: &Stack, r: Role, e: &Endpoints| {
        fake_user_data(s, r, e).map(|t| format!("{t}# {}\n", noise(28 * 1024)))
    };
    let e = build_with(&stack(""), &image(), &big).unwrap_err();
    let fix = moodlestack_model::Hint::hint(&e).unwrap_or_default();
    let e = e.to_string();
    assert!(e.contains("web.lt: the rendered user-data is about"), "{e}");
    assert!(fix.contains("moodle.config"), "{fix}");
    // Just under the limit (with room for the references) passes.
    let fits = |s: &Stack, r: Role, e: &Endpoints| {
        fake_user_data(s, r, e).map(|t| format!("{t}# {}\n", noise(18 * 1024)))
    };
    build_with(&stack(""), &image(), &fits).unwrap();
}

#[test]
fn every_reference_names_an_attribute_its_kind_reports() {
    for extra in [
        "",
        "database:\n  engine: aurora-mysql\n",
        "database:\n  engine: postgres\ncache:\n  auth: false\n",
        "load_balancer:\n  certificate_arn: arn:aws:acm:eu-west-1:1:certificate/x\n",
        "network:\n  nat_gateways: per-zone\n  admin_cidrs: [10.1.0.0/16]\n",
        "network:\n  existing:\n    vpc_id: vpc-1\n    public_subnet_ids: [subnet-p1, subnet-p2]\n    private_subnet_ids: [subnet-q1, subnet-q2]\n",
    ] {
        let g = graph(extra);
        assert_well_formed(&g, "demo");
        for r in &g {
            for v in r.fields.values() {
                for rf in v.refs() {
                    let target = find(&g, rf.resource.as_str());
                    assert!(
                        spec(target.kind).attrs.contains(&rf.attr.as_str()),
                        "{}: {rf} is not an attribute of a {} (stack: {extra:?})",
                        r.id,
                        target.kind
                    );
                }
            }
        }
    }
}

#[test]
fn the_fleet_scales_on_cpu_by_default_and_drains_on_scale_in() {
    let g = graph("");
    assert_well_formed(&g, "demo");
    let p = find(&g, "web.scaling");
    assert_eq!(p.kind, Kind::ScalingPolicy);
    assert_ref(p, "group_name", "web.asg", "id");
    assert_eq!(p.fields["name"], "demo-web-tracking".into());
    assert_eq!(p.fields["metric"], "ASGAverageCPUUtilization".into());
    assert_eq!(p.fields["resource_label"], "".into());
    assert_eq!(p.fields["target_value"], Value::Int(50));
    assert_eq!(p.fields["estimated_instance_warmup"], Value::Int(420));
    assert_eq!(p.fields["disable_scale_in"], Value::Bool(false));
    let h = find(&g, "web.drain");
    assert_eq!(h.kind, Kind::LifecycleHook);
    assert_eq!(h.fields["name"], "demo-web-drain".into());
    assert_eq!(
        h.fields["transition"],
        "autoscaling:EC2_INSTANCE_TERMINATING".into()
    );
    assert_eq!(h.fields["default_result"], "CONTINUE".into());
    // Without a schedule the group's sizes are plain numbers.
    let asg = find(&g, "web.asg");
    assert_eq!(asg.fields["min_size"], Value::Int(2));
    assert_eq!(asg.fields["max_size"], Value::Int(6));
}

#[test]
fn scaling_can_be_turned_off_or_track_requests() {
    let off = graph("web:\n  scaling:\n    enabled: false\n");
    assert!(off.iter().all(|r| r.id.as_str() != "web.scaling"));
    assert!(off.iter().any(|r| r.id.as_str() == "web.drain"));
    let g = graph("web:\n  scaling:\n    metric: requests\n    target: 900\n    scale_in: false\n");
    assert_well_formed(&g, "demo");
    let p = find(&g, "web.scaling");
    assert_eq!(p.fields["metric"], "ALBRequestCountPerTarget".into());
    assert_eq!(p.fields["target_value"], Value::Int(900));
    assert_eq!(p.fields["disable_scale_in"], Value::Bool(true));
    assert_eq!(
        p.fields["resource_label"],
        Value::Interpolated(vec![
            Segment::Ref(Ref::new("lb.alb", "arn_suffix")),
            Segment::Lit("/".into()),
            Segment::Ref(Ref::new("lb.tg", "arn_suffix")),
        ])
    );
}

#[test]
fn a_schedule_makes_one_action_each_and_its_sizes_acceptable_to_the_group() {
    let g = graph(
        "web:\n  min: 2\n  max: 10\n  schedule:\n    - {name: exam-start, recurrence: '0 6 * * 1', time_zone: Europe/Madrid, min: 6, max: 10, desired: 6}\n    - {name: exam-end, recurrence: '0 20 * * 5', time_zone: Europe/Madrid, min: 2, max: 8, desired: 2}\n",
    );
    assert_well_formed(&g, "demo");
    let a = find(&g, "web.schedule.exam-start");
    assert_eq!(a.kind, Kind::ScheduledAction);
    assert_eq!(a.fields["name"], "exam-start".into());
    assert_eq!(a.fields["recurrence"], "0 6 * * 1".into());
    assert_eq!(a.fields["time_zone"], "Europe/Madrid".into());
    assert_eq!(
        (
            &a.fields["min_size"],
            &a.fields["max_size"],
            &a.fields["desired_capacity"]
        ),
        (&Value::Int(6), &Value::Int(10), &Value::Int(6))
    );
    assert!(g.iter().any(|r| r.id.as_str() == "web.schedule.exam-end"));
    // The stack's own sizes first (what an update sends), then what the schedule sets.
    let asg = find(&g, "web.asg");
    assert_eq!(
        asg.fields["min_size"],
        Value::List(vec![Value::Int(2), Value::Int(6)])
    );
    assert_eq!(
        asg.fields["max_size"],
        Value::List(vec![Value::Int(10), Value::Int(8)])
    );
    // Actions without a max leave the group's max exact (and send none).
    let g = graph(
        "web:\n  schedule:\n    - {name: exams, recurrence: '0 6 * * 1', min: 4, desired: 4}\n",
    );
    let asg = find(&g, "web.asg");
    assert_eq!(asg.fields["max_size"], Value::Int(6));
    assert_eq!(
        asg.fields["min_size"],
        Value::List(vec![Value::Int(2), Value::Int(4)])
    );
    let a = find(&g, "web.schedule.exams");
    assert!(!a.fields.contains_key("max_size"));
    assert_eq!(a.fields["time_zone"], "Etc/UTC".into());
}
