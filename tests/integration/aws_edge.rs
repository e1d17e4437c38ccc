//! Emulator tests of the AWS service modules elbv2, autoscaling, iam and secrets (aws_edge).
//!
//! Each test starts its own moto server, drives moodlestack's `AwsCloud` through the `Cloud`
//! trait (create -> observe shows exactly the desired fields -> update in place -> observe ->
//! delete -> poll Gone) and checks end states with plain aws-sdk clients.

use crate::harness::{Emulator, REGION};
use moodlestack_aws::AwsCloud;
use moodlestack_model::{
    spec, Cloud, Compare, DeleteOptions, Kind, Observed, Readiness, Resource, Scope, Value, Want,
};
use std::collections::BTreeMap;

const STACK: &str = "edge";

fn scope() -> Scope {
    Scope {
        stack: STACK.into(),
        region: REGION.into(),
    }
}

fn tags(id: &str) -> Value {
    Value::Map(BTreeMap::from([
        (
            "Name".to_string(),
            Value::str(format!("{STACK}-{}", id.replace('.', "-"))),
        ),
        ("moodlestack:stack".to_string(), Value::str(STACK)),
        ("moodlestack:id".to_string(), Value::str(id)),
    ]))
}

fn sorted(v: &Value) -> Value {
    match v {
        Value::List(l) => {
            let mut l = l.clone();
            l.sort_by_key(|a| serde_json::to_string(a).unwrap());
            Value::List(l)
        }
        other => other.clone(),
    }
}

/// Asserts that `observed` shows exactly the desired fields the way the diff compares them: every
/// field of the kind is reported, sets compare unordered, subset maps on the desired keys.
fn assert_no_diff(desired: &Resource, observed: &Observed) {
    assert_eq!(desired.kind, observed.kind);
    let spec = spec(desired.kind);
    for f in spec.fields {
        let Some(want) = desired.fields.get(f.name) else {
            continue;
        };
        let got = observed.fields.get(f.name).unwrap_or_else(|| {
            panic!(
                "{} {}: field {} not observed; observed {:?}",
                desired.kind, desired.id, f.name, observed.fields
            )
        });
        match f.compare {
            Compare::Exact => assert_eq!(
                got, want,
                "{} {}: field {}",
                desired.kind, desired.id, f.name
            ),
            Compare::Set => {
                assert_eq!(
                    sorted(got),
                    sorted(want),
                    "{} {}: field {}",
                    desired.kind,
                    desired.id,
                    f.name
                )
            }
            Compare::Subset => {
                let (g, w) = (got.as_map().unwrap(), want.as_map().unwrap());
                for (k, v) in w {
                    assert_eq!(
                        g.get(k),
                        Some(v),
                        "{} {}: field {} key {k}",
                        desired.kind,
                        desired.id,
                        f.name
                    );
                }
            }
        }
    }
    for name in observed.fields.keys() {
        assert!(
            spec.field(name).is_some(),
            "{}: observed unknown field {name}",
            desired.kind
        );
    }
}

fn find<'a>(all: &'a [Observed], id: &str) -> &'a Observed {
    all.iter()
        .find(|o| o.id.to_string() == id)
        .unwrap_or_else(|| {
            panic!(
                "{id} not observed; observed {:?}",
                all.iter().map(|o| o.id.to_string()).collect::<Vec<_>>()
            )
        })
}

async fn create(cloud: &AwsCloud, r: &Resource) -> Observed {
    cloud
        .create(&scope(), &r.id, r.kind, &r.fields)
        .await
        .unwrap_or_else(|e| panic!("create {}: {e}", r.id))
}

async fn update(cloud: &AwsCloud, current: &Observed, r: &Resource, changed: &[&str]) -> Observed {
    let changed: Vec<String> = changed.iter().map(|s| s.to_string()).collect();
    cloud
        .update(&scope(), current, &r.fields, &changed)
        .await
        .unwrap_or_else(|e| panic!("update {} {changed:?}: {e}", r.id))
}

async fn wait_ready(cloud: &AwsCloud, o: &Observed) -> Observed {
    for _ in 0..50 {
        match cloud.poll(&scope(), o, Want::Ready).await.expect("poll") {
            Readiness::Ready(o) => return o,
            Readiness::Pending(_) => {
                tokio::time::sleep(std::time::Duration::from_millis(100)).await
            }
            other => panic!("{}: {other:?}", o.id),
        }
    }
    panic!("{} never became ready", o.id)
}

async fn delete_and_wait_gone(cloud: &AwsCloud, o: &Observed) {
    cloud
        .delete(&scope(), o, &DeleteOptions::default())
        .await
        .unwrap_or_else(|e| panic!("delete {}: {e}", o.id));
    for _ in 0..50 {
        match cloud.poll(&scope(), o, Want::Gone).await.expect("poll") {
            Readiness::Gone => {
                // Deleting again is fine: already gone.
                cloud
                    .delete(&scope(), o, &DeleteOptions::default())
                    .await
                    .expect("second delete is Ok");
                return;
            }
            Readiness::Pending(_) => {
                tokio::time::sleep(std::time::Duration::from_millis(100)).await
            }
            other => panic!("{}: {other:?}", o.id),
        }
    }
    panic!("{} was never gone", o.id)
}

// ---------------------------------------------------------------------------------------------
// Secrets Manager

#[tokio::test]
async fn secret_create_observe_update_delete() {
    let emu = Emulator::start();
    let config = emu.sdk_config().await;
    let cloud = AwsCloud::from_config(&config);
    let plain = aws_sdk_secretsmanager::Client::new(&config);

    let mut desired = Resource::new("cache.auth", Kind::Secret)
        .with("name", "edge/redis-auth")
        .with("description", "Redis AUTH token of stack edge")
        .with("tags", tags("cache.auth"));
    let created = create(&cloud, &desired).await;
    assert!(
        created.attrs["arn"].starts_with("arn:aws:secretsmanager:"),
        "{:?}",
        created.attrs
    );
    assert_eq!(created.attrs["id"], created.attrs["arn"]);

    // Another stack's secret is never observed.
    plain
        .create_secret()
        .name("other/thing")
        .secret_string("x")
        .tags(
            aws_sdk_secretsmanager::types::Tag::builder()
                .key("moodlestack:stack")
                .value("other")
                .build(),
        )
        .send()
        .await
        .unwrap();

    let all = cloud
        .observe(&scope(), std::slice::from_ref(&desired))
        .await
        .unwrap();
    assert_eq!(
        all.iter().filter(|o| o.kind == Kind::Secret).count(),
        1,
        "{all:?}"
    );
    let observed = find(&all, "cache.auth");
    assert_no_diff(&desired, observed);

    // The value was generated by Secrets Manager: 32 characters, no punctuation.
    let value = plain
        .get_secret_value()
        .secret_id(&created.physical_id)
        .send()
        .await
        .unwrap();
    let value = value.secret_string().unwrap();
    assert_eq!(value.len(), 32);
    assert!(
        value.chars().all(|c| c.is_ascii_alphanumeric()),
        "the value has punctuation"
    );

    // A crash between create and observe: creating again adopts the same secret.
    let again = create(&cloud, &desired).await;
    assert_eq!(again.physical_id, created.physical_id);

    // Updates in place: description and tags.
    desired
        .fields
        .insert("description".into(), Value::str("rotated description"));
    let mut t = desired.fields["tags"].as_map().unwrap().clone();
    t.insert("team".into(), Value::str("moodle"));
    desired.fields.insert("tags".into(), Value::Map(t));
    let updated = update(&cloud, observed, &desired, &["description", "tags"]).await;
    assert_no_diff(&desired, &updated);
    let all = cloud
        .observe(&scope(), std::slice::from_ref(&desired))
        .await
        .unwrap();
    assert_no_diff(&desired, find(&all, "cache.auth"));
    let d = plain
        .describe_secret()
        .secret_id(&created.physical_id)
        .send()
        .await
        .unwrap();
    assert_eq!(d.description(), Some("rotated description"));
    assert!(d
        .tags()
        .iter()
        .any(|t| t.key() == Some("team") && t.value() == Some("moodle")));

    // A secret with our name that is not ours is refused, with the way out.
    let foreign = Resource::new("cache.auth", Kind::Secret).with("name", "other/thing");
    let err = cloud
        .create(&scope(), &foreign.id, foreign.kind, &foreign.fields)
        .await
        .unwrap_err();
    assert!(
        matches!(err, moodlestack_model::CloudError::NameTaken { .. }),
        "{err}"
    );

    delete_and_wait_gone(&cloud, &updated).await;
    let all = cloud
        .observe(&scope(), std::slice::from_ref(&desired))
        .await
        .unwrap();
    assert!(all.iter().all(|o| o.kind != Kind::Secret), "{all:?}");
    // Deleted without a recovery window: the name is free again at once.
    let listed = plain
        .list_secrets()
        .include_planned_deletion(true)
        .send()
        .await
        .unwrap();
    assert!(listed
        .secret_list()
        .iter()
        .all(|s| s.name() != Some("edge/redis-auth")));
}

// ---------------------------------------------------------------------------------------------
// IAM

const ASSUME_EC2: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
const SSM_CORE: &str = "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore";
const CW_AGENT: &str = "arn:aws:iam::aws:policy/CloudWatchAgentServerPolicy";

fn canonical(s: &str) -> String {
    serde_json::from_str::<serde_json::Value>(s)
        .unwrap()
        .to_string()
}

fn inline(statement_resource: &str) -> Value {
    let doc = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":["secretsmanager:GetSecretValue"],"Resource":"{statement_resource}"}}]}}"#
    );
    Value::Map(BTreeMap::from([(
        "read-db-secret".to_string(),
        Value::str(canonical(&doc)),
    )]))
}

#[tokio::test]
async fn iam_role_and_instance_profile() {
    let emu = Emulator::start();
    let config = emu.sdk_config().await;
    let cloud = AwsCloud::from_config(&config);
    let iam = aws_sdk_iam::Client::new(&config);

    let mut role = Resource::new("iam.role", Kind::IamRole)
        .with("role_name", "edge-node")
        .with("path", "/moodlestack/")
        .with("assume_role_policy", canonical(ASSUME_EC2))
        .with("managed_policy_arns", Value::strs([SSM_CORE]))
        .with(
            "inline_policies",
            inline("arn:aws:secretsmanager:eu-west-1:123456789012:secret:edge-db-*"),
        )
        .with("tags", tags("iam.role"));
    let profile = Resource::new("iam.profile", Kind::InstanceProfile)
        .with("name", "edge-node")
        .with("path", "/moodlestack/")
        .with("role_name", "edge-node")
        .with("tags", tags("iam.profile"));
    let desired = vec![role.clone(), profile.clone()];

    let created_role = create(&cloud, &role).await;
    assert_eq!(created_role.attrs["id"], "edge-node");
    assert!(
        created_role.attrs["arn"].ends_with(":role/moodlestack/edge-node"),
        "{:?}",
        created_role.attrs
    );
    assert_no_diff(&role, &created_role);
    let created_profile = create(&cloud, &profile).await;
    assert!(created_profile.attrs["arn"].ends_with(":instance-profile/moodlestack/edge-node"));
    assert_no_diff(&profile, &wait_ready(&cloud, &created_profile).await);

    let all = cloud.observe(&scope(), &desired).await.unwrap();
    assert_eq!(all.len(), 2, "{all:?}");
    assert_no_diff(&role, find(&all, "iam.role"));
    assert_no_diff(&profile, find(&all, "iam.profile"));

    // Crash and re-run: both creates adopt what exists.
    assert_eq!(
        create(&cloud, &role).await.attrs["arn"],
        created_role.attrs["arn"]
    );
    assert_eq!(
        create(&cloud, &profile).await.attrs["arn"],
        created_profile.attrs["arn"]
    );

    // Updates in place: trust policy, managed policies (one attached, one detached), inline
    // policies, tags.
    let trust = ASSUME_EC2.replace("ec2.amazonaws.com", "ssm.amazonaws.com");
    role.fields
        .insert("assume_role_policy".into(), Value::str(canonical(&trust)));
    role.fields
        .insert("managed_policy_arns".into(), Value::strs([CW_AGENT]));
    role.fields.insert(
        "inline_policies".into(),
        inline("arn:aws:secretsmanager:eu-west-1:123456789012:secret:edge-other-*"),
    );
    let mut t = role.fields["tags"].as_map().unwrap().clone();
    t.insert("team".into(), Value::str("moodle"));
    role.fields.insert("tags".into(), Value::Map(t));
    let current = find(&all, "iam.role").clone();
    let updated = update(
        &cloud,
        &current,
        &role,
        &[
            "assume_role_policy",
            "managed_policy_arns",
            "inline_policies",
            "tags",
        ],
    )
    .await;
    assert_no_diff(&role, &updated);
    let all = cloud
        .observe(&scope(), &[role.clone(), profile.clone()])
        .await
        .unwrap();
    assert_no_diff(&role, find(&all, "iam.role"));

    let attached = iam
        .list_attached_role_policies()
        .role_name("edge-node")
        .send()
        .await
        .unwrap();
    let arns: Vec<_> = attached
        .attached_policies()
        .iter()
        .filter_map(|p| p.policy_arn())
        .collect();
    assert_eq!(arns, [CW_AGENT]);

    // Deleting the role detaches its policies and takes it out of the instance profile first.
    delete_and_wait_gone(&cloud, &updated).await;
    let p = iam
        .get_instance_profile()
        .instance_profile_name("edge-node")
        .send()
        .await
        .unwrap();
    assert!(p.instance_profile().unwrap().roles().is_empty());
    delete_and_wait_gone(&cloud, &created_profile).await;
    assert!(iam.get_role().role_name("edge-node").send().await.is_err());
    assert!(iam
        .get_instance_profile()
        .instance_profile_name("edge-node")
        .send()
        .await
        .is_err());
    let all = cloud.observe(&scope(), &desired).await.unwrap();
    assert!(all.is_empty(), "{all:?}");
}

#[tokio::test]
async fn iam_role_of_another_stack_is_not_adopted() {
    let emu = Emulator::start();
    let config = emu.sdk_config().await;
    let cloud = AwsCloud::from_config(&config);
    let iam = aws_sdk_iam::Client::new(&config);
    iam.create_role()
        .role_name("edge-node")
        .assume_role_policy_document(ASSUME_EC2)
        .send()
        .await
        .unwrap();
    let role = Resource::new("iam.role", Kind::IamRole)
        .with("role_name", "edge-node")
        .with("path", "/")
        .with("assume_role_policy", canonical(ASSUME_EC2))
        .with("managed_policy_arns", Value::strs(Vec::<String>::new()))
        .with("inline_policies", Value::Map(BTreeMap::new()))
        .with("tags", tags("iam.role"));
    // Untagged: not the stack's, so not observed, and creating over it is refused.
    assert!(cloud
        .observe(&scope(), std::slice::from_ref(&role))
        .await
        .unwrap()
        .is_empty());
    let err = cloud
        .create(&scope(), &role.id, role.kind, &role.fields)
        .await
        .unwrap_err();
    assert!(
        matches!(err, moodlestack_model::CloudError::NameTaken { .. }),
        "{err}"
    );
}

// ---------------------------------------------------------------------------------------------
// Network scaffolding made with the plain EC2 client (the ec2 module is not under test here).

struct Net {
    vpc: String,
    subnets: Vec<String>,
    sgs: Vec<String>,
}

async fn network(config: &aws_config::SdkConfig) -> Net {
    let ec2 = aws_sdk_ec2::Client::new(config);
    let vpc = ec2
        .create_vpc()
        .cidr_block("10.20.0.0/16")
        .send()
        .await
        .unwrap();
    let vpc = vpc.vpc().unwrap().vpc_id().unwrap().to_string();
    let mut subnets = Vec::new();
    for (i, az) in ["a", "b", "c"].iter().enumerate() {
        let s = ec2
            .create_subnet()
            .vpc_id(&vpc)
            .cidr_block(format!("10.20.{i}.0/24"))
            .availability_zone(format!("{REGION}{az}"))
            .send()
            .await
            .unwrap();
        subnets.push(s.subnet().unwrap().subnet_id().unwrap().to_string());
    }
    let mut sgs = Vec::new();
    for name in ["edge-alb", "edge-alb2"] {
        let sg = ec2
            .create_security_group()
            .group_name(name)
            .description(name)
            .vpc_id(&vpc)
            .send()
            .await
            .unwrap();
        sgs.push(sg.group_id().unwrap().to_string());
    }
    Net { vpc, subnets, sgs }
}

// ---------------------------------------------------------------------------------------------
// ELBv2

fn redirect_to_https() -> Value {
    Value::Map(BTreeMap::from([
        ("type".to_string(), Value::str("redirect")),
        ("protocol".to_string(), Value::str("HTTPS")),
        ("port".to_string(), Value::str("443")),
        ("status_code".to_string(), Value::str("HTTP_301")),
    ]))
}

fn forward_to(tg: &str) -> Value {
    Value::Map(BTreeMap::from([
        ("type".to_string(), Value::str("forward")),
        ("target_group_arn".to_string(), Value::str(tg)),
    ]))
}

#[tokio::test]
async fn load_balancer_target_group_and_listeners() {
    let emu = Emulator::start();
    let config = emu.sdk_config().await;
    let cloud = AwsCloud::from_config(&config);
    let elb = aws_sdk_elasticloadbalancingv2::Client::new(&config);
    let net = network(&config).await;
    let cert = emu.import_certificate();

    let mut tg = Resource::new("lb.tg", Kind::TargetGroup)
        .with("name", "edge-web")
        .with("vpc_id", net.vpc.as_str())
        .with("protocol", "HTTP")
        .with("port", 80)
        .with("target_type", "instance")
        .with("health_check_path", "/login/index.php")
        .with("health_check_interval", 30)
        .with("healthy_threshold", 2)
        .with("unhealthy_threshold", 3)
        .with("health_check_matcher", "200-399")
        .with("deregistration_delay", 30)
        .with("tags", tags("lb.tg"));
    let mut alb = Resource::new("lb.alb", Kind::LoadBalancer)
        .with("name", "edge-alb")
        .with("scheme", "internet-facing")
        .with("subnet_ids", Value::strs(net.subnets[..2].to_vec()))
        .with("security_group_ids", Value::strs([net.sgs[0].clone()]))
        .with("idle_timeout", 120)
        .with("tags", tags("lb.alb"));

    let tg_o = create(&cloud, &tg).await;
    assert_no_diff(&tg, &wait_ready(&cloud, &tg_o).await);
    let alb_o = create(&cloud, &alb).await;
    let alb_o = wait_ready(&cloud, &alb_o).await;
    assert_eq!(alb_o.status, "active");
    assert!(
        !alb_o.attrs["dns_name"].is_empty() && !alb_o.attrs["zone_id"].is_empty(),
        "{:?}",
        alb_o.attrs
    );
    assert_no_diff(&alb, &alb_o);
    let (alb_arn, tg_arn) = (alb_o.attrs["arn"].clone(), tg_o.attrs["arn"].clone());

    let http = Resource::new("lb.listener.http", Kind::Listener)
        .with("load_balancer_arn", alb_arn.as_str())
        .with("port", 80)
        .with("protocol", "HTTP")
        .with("default_action", redirect_to_https());
    let mut https = Resource::new("lb.listener.https", Kind::Listener)
        .with("load_balancer_arn", alb_arn.as_str())
        .with("port", 443)
        .with("protocol", "HTTPS")
        .with("certificate_arn", cert.as_str())
        .with("ssl_policy", "ELBSecurityPolicy-TLS13-1-2-2021-06")
        .with("default_action", forward_to(&tg_arn));
    let http_o = create(&cloud, &http).await;
    assert_no_diff(&http, &http_o);
    let https_o = create(&cloud, &https).await;
    assert_no_diff(&https, &wait_ready(&cloud, &https_o).await);

    // Another stack's load balancer with a name we do not ask for is never observed.
    let desired = vec![tg.clone(), alb.clone(), http.clone(), https.clone()];
    let all = cloud.observe(&scope(), &desired).await.unwrap();
    assert_eq!(all.len(), 4, "{all:?}");
    assert_no_diff(&tg, find(&all, "lb.tg"));
    assert_no_diff(&alb, find(&all, "lb.alb"));
    // Listeners are untagged: matched by (load_balancer_arn, port).
    let listener = |port: i64| {
        all.iter()
            .find(|o| o.kind == Kind::Listener && o.fields.get("port") == Some(&Value::Int(port)))
            .unwrap_or_else(|| panic!("no listener on {port}: {all:?}"))
    };
    assert_eq!(
        listener(80).id.to_string(),
        format!("untagged:{}", http_o.physical_id)
    );
    assert_no_diff(&http, listener(80));
    assert_no_diff(&https, listener(443));

    // Crash and re-run: creates converge on what exists.
    assert_eq!(create(&cloud, &alb).await.physical_id, alb_o.physical_id);
    assert_eq!(create(&cloud, &tg).await.physical_id, tg_o.physical_id);
    assert_eq!(
        create(&cloud, &https).await.physical_id,
        https_o.physical_id
    );

    // Updates in place.
    alb.fields.insert("idle_timeout".into(), Value::Int(300));
    alb.fields
        .insert("subnet_ids".into(), Value::strs(net.subnets.clone()));
    alb.fields
        .insert("security_group_ids".into(), Value::strs(net.sgs.clone()));
    let mut t = alb.fields["tags"].as_map().unwrap().clone();
    t.insert("team".into(), Value::str("moodle"));
    alb.fields.insert("tags".into(), Value::Map(t));
    let alb_u = update(
        &cloud,
        find(&all, "lb.alb"),
        &alb,
        &["idle_timeout", "subnet_ids", "security_group_ids", "tags"],
    )
    .await;
    assert_no_diff(&alb, &alb_u);

    tg.fields
        .insert("health_check_path".into(), Value::str("/health.php"));
    tg.fields
        .insert("health_check_interval".into(), Value::Int(15));
    tg.fields.insert("healthy_threshold".into(), Value::Int(3));
    tg.fields
        .insert("unhealthy_threshold".into(), Value::Int(5));
    tg.fields
        .insert("health_check_matcher".into(), Value::str("200"));
    tg.fields
        .insert("deregistration_delay".into(), Value::Int(10));
    let tg_u = update(
        &cloud,
        find(&all, "lb.tg"),
        &tg,
        &[
            "health_check_path",
            "health_check_interval",
            "healthy_threshold",
            "unhealthy_threshold",
            "health_check_matcher",
            "deregistration_delay",
        ],
    )
    .await;
    assert_no_diff(&tg, &tg_u);

    https.fields.insert(
        "ssl_policy".into(),
        Value::str("ELBSecurityPolicy-TLS13-1-2-Res-2021-06"),
    );
    https
        .fields
        .insert("default_action".into(), redirect_to_https());
    let https_u = update(
        &cloud,
        listener(443),
        &https,
        &["ssl_policy", "default_action"],
    )
    .await;
    assert_no_diff(&https, &https_u);

    let desired = vec![tg.clone(), alb.clone(), http.clone(), https.clone()];
    let all = cloud.observe(&scope(), &desired).await.unwrap();
    assert_no_diff(&tg, find(&all, "lb.tg"));
    assert_no_diff(&alb, find(&all, "lb.alb"));
    let l443 = all
        .iter()
        .find(|o| o.kind == Kind::Listener && o.fields.get("port") == Some(&Value::Int(443)))
        .unwrap();
    assert_no_diff(&https, l443);

    // The plain client sees the same.
    let attrs = elb
        .describe_load_balancer_attributes()
        .load_balancer_arn(&alb_arn)
        .send()
        .await
        .unwrap();
    let idle = attrs
        .attributes()
        .iter()
        .find(|a| a.key() == Some("idle_timeout.timeout_seconds"));
    assert_eq!(idle.and_then(|a| a.value()), Some("300"));
    let attrs = elb
        .describe_target_group_attributes()
        .target_group_arn(&tg_arn)
        .send()
        .await
        .unwrap();
    let delay = attrs
        .attributes()
        .iter()
        .find(|a| a.key() == Some("deregistration_delay.timeout_seconds"));
    assert_eq!(delay.and_then(|a| a.value()), Some("10"));
    let tgs = elb
        .describe_target_groups()
        .target_group_arns(&tg_arn)
        .send()
        .await
        .unwrap();
    assert_eq!(
        tgs.target_groups()[0].health_check_path(),
        Some("/health.php")
    );

    // Delete in reverse order; each poll ends Gone.
    for id in ["lb.listener.https", "lb.listener.http"] {
        let o = match id {
            "lb.listener.https" => &https_u,
            _ => &http_o,
        };
        delete_and_wait_gone(&cloud, o).await;
    }
    delete_and_wait_gone(&cloud, &alb_u).await;
    delete_and_wait_gone(&cloud, &tg_u).await;
    let all = cloud.observe(&scope(), &desired).await.unwrap();
    assert!(all.is_empty(), "{all:?}");
    let lbs = elb.describe_load_balancers().send().await.unwrap();
    assert!(lbs.load_balancers().is_empty());
    let tgs = elb.describe_target_groups().send().await.unwrap();
    assert!(tgs.target_groups().is_empty());
}

#[tokio::test]
async fn load_balancers_of_other_stacks_are_not_observed() {
    let emu = Emulator::start();
    let config = emu.sdk_config().await;
    let cloud = AwsCloud::from_config(&config);
    let elb = aws_sdk_elasticloadbalancingv2::Client::new(&config);
    let net = network(&config).await;
    // Same name, tagged with another stack.
    elb.create_load_balancer()
        .name("edge-alb")
        .set_subnets(Some(net.subnets[..2].to_vec()))
        .tags(
            aws_sdk_elasticloadbalancingv2::types::Tag::builder()
                .key("moodlestack:stack")
                .value("other")
                .build(),
        )
        .send()
        .await
        .unwrap();
    let alb = Resource::new("lb.alb", Kind::LoadBalancer)
        .with("name", "edge-alb")
        .with("scheme", "internet-facing")
        .with("subnet_ids", Value::strs(net.subnets[..2].to_vec()))
        .with("security_group_ids", Value::strs([net.sgs[0].clone()]))
        .with("idle_timeout", 60)
        .with("tags", tags("lb.alb"));
    // Names that do not exist are fine too.
    let tg = Resource::new("lb.tg", Kind::TargetGroup).with("name", "edge-web");
    let all = cloud.observe(&scope(), &[alb.clone(), tg]).await.unwrap();
    assert!(all.is_empty(), "{all:?}");
    let err = cloud
        .create(&scope(), &alb.id, alb.kind, &alb.fields)
        .await
        .unwrap_err();
    assert!(
        matches!(err, moodlestack_model::CloudError::NameTaken { .. }),
        "{err}"
    );
}

// ---------------------------------------------------------------------------------------------
// Auto Scaling

async fn launch_template(config: &aws_config::SdkConfig, sg: &str) -> (String, String) {
    use aws_sdk_ec2::types::RequestLaunchTemplateData;
    let ec2 = aws_sdk_ec2::Client::new(config);
    let data = || {
        RequestLaunchTemplateData::builder()
            .image_id("ami-12c6146b")
            .instance_type(aws_sdk_ec2::types::InstanceType::from("t3.medium"))
            .security_group_ids(sg)
            .build()
    };
    let lt = ec2
        .create_launch_template()
        .launch_template_name("edge-web")
        .launch_template_data(data())
        .send()
        .await
        .unwrap();
    let id = lt
        .launch_template()
        .unwrap()
        .launch_template_id()
        .unwrap()
        .to_string();
    let v2 = ec2
        .create_launch_template_version()
        .launch_template_id(&id)
        .launch_template_data(data())
        .send()
        .await
        .unwrap();
    let v2 = v2
        .launch_template_version()
        .unwrap()
        .version_number()
        .unwrap()
        .to_string();
    (id, v2)
}

#[tokio::test]
async fn autoscaling_group_mixed_policy_updates_and_instance_refresh() {
    let emu = Emulator::start();
    let config = emu.sdk_config().await;
    let cloud = AwsCloud::from_config(&config);
    let asg = aws_sdk_autoscaling::Client::new(&config);
    let elb = aws_sdk_elasticloadbalancingv2::Client::new(&config);
    let net = network(&config).await;
    let (lt_id, v2) = launch_template(&config, &net.sgs[0]).await;
    let mut tg_arns = Vec::new();
    for name in ["edge-web", "edge-web2"] {
        let tg = elb
            .create_target_group()
            .name(name)
            .protocol(aws_sdk_elasticloadbalancingv2::types::ProtocolEnum::Http)
            .port(80)
            .vpc_id(&net.vpc)
            .send()
            .await
            .unwrap();
        tg_arns.push(
            tg.target_groups()[0]
                .target_group_arn()
                .unwrap()
                .to_string(),
        );
    }

    let mut group = Resource::new("web.asg", Kind::AutoScalingGroup)
        .with("name", "edge-web")
        .with("launch_template_id", lt_id.as_str())
        .with("launch_template_version", "1")
        .with("instance_types", Value::strs(["t3.medium", "t3a.medium"]))
        .with("min_size", 1)
        .with("max_size", 4)
        .with("desired_capacity", 2)
        .with("on_demand_base_capacity", 1)
        .with("on_demand_percentage_above_base", 25)
        .with("spot_allocation_strategy", "price-capacity-optimized")
        .with("capacity_rebalance", true)
        .with("subnet_ids", Value::strs(net.subnets[..2].to_vec()))
        .with("target_group_arns", Value::strs([tg_arns[0].clone()]))
        .with("health_check_type", "ELB")
        .with("health_check_grace_period", 300)
        .with("tags", tags("web.asg"));
    let created = create(&cloud, &group).await;
    assert_eq!(created.attrs["id"], "edge-web");
    assert!(
        created.attrs["arn"].starts_with("arn:aws:autoscaling:"),
        "{:?}",
        created.attrs
    );
    let ready = wait_ready(&cloud, &created).await;
    assert_no_diff(&group, &ready);

    let all = cloud
        .observe(&scope(), std::slice::from_ref(&group))
        .await
        .unwrap();
    assert_eq!(all.len(), 1, "{all:?}");
    assert_no_diff(&group, &all[0]);
    let d = asg
        .describe_auto_scaling_groups()
        .auto_scaling_group_names("edge-web")
        .send()
        .await
        .unwrap();
    let g = &d.auto_scaling_groups()[0];
    // Every tag but moodlestack:id propagates to the instances (they are the group's, not the
    // resource web.asg).
    for t in g.tags() {
        let want = t.key() != Some("moodlestack:id");
        assert_eq!(t.propagate_at_launch(), Some(want), "{t:?}");
    }
    assert_eq!(g.desired_capacity(), Some(2));

    // Crash and re-run: create adopts the group.
    assert_eq!(create(&cloud, &group).await.physical_id, "edge-web");

    // Updates in place: max size, instance types, distribution, subnets, target groups, health
    // check, tags. The desired capacity is never sent. (capacity_rebalance is left out: moto's
    // UpdateAutoScalingGroup ignores CapacityRebalance.)
    asg.set_desired_capacity()
        .auto_scaling_group_name("edge-web")
        .desired_capacity(3)
        .send()
        .await
        .unwrap();
    group.fields.insert("max_size".into(), Value::Int(6));
    group.fields.insert(
        "instance_types".into(),
        Value::strs(["t3.large", "m6i.large", "t3.medium"]),
    );
    group
        .fields
        .insert("on_demand_percentage_above_base".into(), Value::Int(50));
    group
        .fields
        .insert("subnet_ids".into(), Value::strs(net.subnets.clone()));
    group.fields.insert(
        "target_group_arns".into(),
        Value::strs([tg_arns[1].clone()]),
    );
    group
        .fields
        .insert("health_check_grace_period".into(), Value::Int(120));
    let mut t = group.fields["tags"].as_map().unwrap().clone();
    t.insert("team".into(), Value::str("moodle"));
    group.fields.insert("tags".into(), Value::Map(t));
    let updated = update(
        &cloud,
        &all[0],
        &group,
        &[
            "max_size",
            "instance_types",
            "on_demand_percentage_above_base",
            "subnet_ids",
            "target_group_arns",
            "health_check_grace_period",
            "tags",
        ],
    )
    .await;
    group
        .fields
        .insert("desired_capacity".into(), Value::Int(3));
    assert_no_diff(&group, &updated);
    let all = cloud
        .observe(&scope(), std::slice::from_ref(&group))
        .await
        .unwrap();
    assert_no_diff(&group, &all[0]);
    let refreshes = asg
        .describe_instance_refreshes()
        .auto_scaling_group_name("edge-web")
        .send()
        .await
        .unwrap();
    assert!(
        refreshes.instance_refreshes().is_empty(),
        "no rollout without a new version"
    );

    // A new launch template version: the group points at it and an instance refresh starts.
    group
        .fields
        .insert("launch_template_version".into(), Value::str(&v2));
    let rolled = update(&cloud, &all[0], &group, &["launch_template_version"]).await;
    assert_no_diff(&group, &rolled);
    let refreshes = asg
        .describe_instance_refreshes()
        .auto_scaling_group_name("edge-web")
        .send()
        .await
        .unwrap();
    let r = refreshes.instance_refreshes();
    assert_eq!(r.len(), 1, "{r:?}");
    assert_eq!(
        r[0].preferences().and_then(|p| p.min_healthy_percentage()),
        Some(90)
    );

    // A second rollout while that refresh runs is refused before anything changes.
    let mut again = group.clone();
    again
        .fields
        .insert("launch_template_version".into(), Value::str("1"));
    let err = cloud
        .update(
            &scope(),
            &rolled,
            &again.fields,
            &["launch_template_version".to_string()],
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("already running"), "{err}");
    let all = cloud
        .observe(&scope(), std::slice::from_ref(&group))
        .await
        .unwrap();
    assert_no_diff(&group, &all[0]);

    delete_and_wait_gone(&cloud, &rolled).await;
    let d = asg.describe_auto_scaling_groups().send().await.unwrap();
    assert!(d.auto_scaling_groups().is_empty());
    assert!(cloud
        .observe(&scope(), std::slice::from_ref(&group))
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn autoscaling_observe_keeps_only_the_stacks_groups() {
    let emu = Emulator::start();
    let config = emu.sdk_config().await;
    let cloud = AwsCloud::from_config(&config);
    let asg = aws_sdk_autoscaling::Client::new(&config);
    let net = network(&config).await;
    let (lt_id, _) = launch_template(&config, &net.sgs[0]).await;
    asg.create_auto_scaling_group()
        .auto_scaling_group_name("other-web")
        .launch_template(
            aws_sdk_autoscaling::types::LaunchTemplateSpecification::builder()
                .launch_template_id(&lt_id)
                .version("1")
                .build(),
        )
        .min_size(0)
        .max_size(1)
        .vpc_zone_identifier(net.subnets[0].clone())
        .tags(
            aws_sdk_autoscaling::types::Tag::builder()
                .resource_id("other-web")
                .resource_type("auto-scaling-group")
                .key("moodlestack:stack")
                .value("other")
                .propagate_at_launch(true)
                .build(),
        )
        .send()
        .await
        .unwrap();
    assert!(cloud.observe(&scope(), &[]).await.unwrap().is_empty());
}
