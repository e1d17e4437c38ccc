//! Focused emulator tests of what the kind contract (`contract.rs`) does not cover: adoption of
//! half-made resources after a crash, requests checked on the wire, rule/route/association
//! specifics, RDS parameters and protection, untaggable kinds matched by identity, instance
//! refreshes, resources that are not the stack's, AMI and parameter lookups, and the lease.
//! Each builds on the contract's [`World`] and rows, except the checks of an existing network
//! (`network.existing`), which run the binary's `plan` on a VPC made with a plain client.
//!
//! The tests of EC2, IAM, SSM, Secrets Manager and STS take the emulator as an argument and run
//! on both (`on_both!` at the end): `aws_special::moto::<test>` and
//! `aws_special::localstack::<test>`; the others run on moto only (`aws_special::<test>`).

use crate::contract::{
    is_name_taken, mismatches, resource, route, rule, str_map, tags, World, STACK,
};
use crate::harness::Backend;
use moodlestack_model::{
    Cloud, CloudError, DeleteOptions, Fields, Kind, Observed, Readiness, Resource, Value, Want,
};
use std::collections::BTreeMap;
use std::time::Duration;

fn count(w: &World, op: &str) -> u64 {
    w.cloud
        .stats()
        .snapshot()
        .iter()
        .filter(|r| r.operation == op)
        .map(|r| r.count)
        .sum()
}

/// The last request that carried `action` (query protocol, URL-decoded).
fn sent(w: &World, action: &str) -> String {
    let reqs = w.wire.requests();
    let r = reqs
        .iter()
        .rfind(|r| r.starts_with(&format!("Action={action}&")));
    r.unwrap_or_else(|| panic!("no {action} sent")).clone()
}

/// Resource `id` of `kind` with fields `f`.
fn want(id: &str, kind: Kind, f: &Fields) -> Resource {
    Resource::with_fields(id, kind, f.clone())
}

async fn create(w: &World, id: &str, kind: Kind, f: &Fields) -> Observed {
    let o = w.cloud.create(&w.scope, &want(id, kind, f)).await;
    let o = o.unwrap_or_else(|e| panic!("create {id}: {e}"));
    w.ready(&o).await
}

async fn update(w: &World, o: &Observed, f: &Fields, changed: &[&str]) -> Observed {
    let changed: Vec<String> = changed.iter().map(|s| s.to_string()).collect();
    let u = w.cloud.update(&w.scope, o, f, &changed).await;
    u.unwrap_or_else(|e| panic!("update {} {changed:?}: {e}", o.id))
}

/// Observes with `desired` and returns what is under `id`, checked to show `f` (but the fields
/// the emulator does not report: `Gap::Unreported`).
async fn shows(w: &World, id: &str, kind: Kind, f: &Fields) -> Observed {
    let o = w
        .observed(kind, id, &physical_of(w, id, kind, f).await, f)
        .await;
    let unreported = w.unreported(kind);
    assert_eq!(mismatches(f, &o, &unreported), Vec::<String>::new(), "{id}");
    o
}

async fn physical_of(w: &World, id: &str, kind: Kind, f: &Fields) -> String {
    let all = w.observe(&[resource(id, kind, f)]).await;
    let o = all.iter().find(|o| o.kind == kind && o.id == id);
    o.unwrap_or_else(|| panic!("{id} not observed: {all:?}"))
        .physical_id
        .clone()
}

/// Makes `row` through moodlestack when `made` (a physical id) already has the stack's tags: it
/// is adopted, not made again.
/// Waits out the emulator's eventual consistency (MOODLESTACK_EMULATOR_CONSISTENCY_MS, 500 ms by
/// default), as a rerun after a crash does.
pub(crate) async fn settle() {
    let ms = std::env::var("MOODLESTACK_EMULATOR_CONSISTENCY_MS")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(500);
    tokio::time::sleep(Duration::from_millis(ms + 100)).await;
}

/// Polls `seen` until EC2 lists what was just made (the emulator's eventual consistency), as a
/// script would with `aws ec2 wait`.
async fn listed<F, Fut>(seen: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !seen().await {
        assert!(std::time::Instant::now() < deadline, "never listed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn adopt(w: &World, row: &'static str, made: &str) {
    let o = w.make(row).await;
    assert_eq!(o.physical_id, made, "adopted, not made again");
}

fn set(f: &mut Fields, k: &str, v: impl Into<Value>) {
    f.insert(k.to_string(), v.into());
}

fn ec2(w: &World) -> aws_sdk_ec2::Client {
    aws_sdk_ec2::Client::new(&w.cfg)
}

/// The security group `id`, described.
async fn security_group(w: &World, id: &str) -> aws_sdk_ec2::types::SecurityGroup {
    let d = ec2(w).describe_security_groups().group_ids(id).send().await;
    d.unwrap().security_groups()[0].clone()
}

/// The route table `id`, described.
async fn route_table(w: &World, id: &str) -> aws_sdk_ec2::types::RouteTable {
    let d = ec2(w)
        .describe_route_tables()
        .route_table_ids(id)
        .send()
        .await;
    d.unwrap().route_tables()[0].clone()
}

// ---------------------------------------------------------------------------------------------
// EC2

/// Observe sends one describe per kind, whatever the number of resources, filtered by the
/// stack's tag on the server side.
async fn ec2_observe_sends_one_describe_per_kind(backend: Backend) {
    let w = World::on(backend).await;
    for row in [
        "vpc",
        "subnet",
        "internet_gateway",
        "route_table",
        "security_group",
    ] {
        w.make(row).await;
    }
    let before: BTreeMap<String, u64> = w
        .cloud
        .stats()
        .snapshot()
        .iter()
        .map(|r| (r.operation.clone(), r.count))
        .collect();
    w.wire.clear();
    assert!(w.observe(&[]).await.len() >= 5);
    for op in [
        "DescribeSubnets",
        "DescribeVpcs",
        "DescribeInternetGateways",
        "DescribeSecurityGroups",
        "DescribeInstances",
        "DescribeNatGateways",
        "DescribeRouteTables",
        "DescribeAddresses",
        "DescribeLaunchTemplates",
    ] {
        let was = before.get(op).copied().unwrap_or(0);
        assert_eq!(count(&w, op) - was, 1, "{op}");
    }
    let r = sent(&w, "DescribeSubnets");
    assert!(
        r.contains("=tag:moodlestack:stack&") && r.contains(&format!("={STACK}")),
        "{r}"
    );
}

/// Rules: a source-group rule, the default egress left alone, a description changed alone in
/// place, a rule dropped.
async fn ec2_security_group_rules(backend: Backend) {
    let w = World::on(backend).await;
    let sg = w.make("security_group").await;
    let mut f = w.desired("security_group");
    let g = &security_group(&w, &sg.physical_id).await;
    assert_eq!(
        g.ip_permissions()[0].user_id_group_pairs()[0].group_id(),
        Some(w.fx.sgs[0].as_str())
    );
    assert_eq!(
        g.ip_permissions_egress().len(),
        1,
        "egress stays the AWS default"
    );
    let rule = |port: i64, desc: &str| rule(port, "cidr", "203.0.113.0/24", desc);
    let http = f["ingress"].as_list().unwrap()[0].clone();
    set(
        &mut f,
        "ingress",
        Value::List(vec![http.clone(), rule(22, "ssh")]),
    );
    let sg = update(&w, &sg, &f, &["ingress"]).await;
    // A description alone changes in place (moto applies it to CIDR rules only).
    set(
        &mut f,
        "ingress",
        Value::List(vec![http.clone(), rule(22, "ssh, office")]),
    );
    let sg = update(&w, &sg, &f, &["ingress"]).await;
    assert_eq!(count(&w, "UpdateSecurityGroupRuleDescriptionsIngress"), 1);
    shows(&w, "sg.web", Kind::SecurityGroup, &f).await;
    set(&mut f, "ingress", Value::List(vec![http]));
    update(&w, &sg, &f, &["ingress"]).await;
    let perms = security_group(&w, &sg.physical_id)
        .await
        .ip_permissions()
        .to_vec();
    assert_eq!(perms.len(), 1, "{perms:?}");
    assert_eq!(perms[0].from_port(), Some(80));
}

/// An Elastic IP for a NAT gateway (created with an idempotency token), a private table routing
/// through it, the local route kept, and a subnet moving from one table to another.
async fn ec2_nat_routes_and_associations(backend: Backend) {
    let w = World::on(backend).await;
    let nat = w.make("nat_gateway").await;
    let eip = w.make("elastic_ip").await;
    assert!(sent(&w, "CreateNatGateway").contains("ClientToken="));
    let d = ec2(&w)
        .describe_addresses()
        .allocation_ids(&eip.physical_id)
        .send()
        .await;
    let d = d.unwrap();
    assert_eq!(
        d.addresses()[0].public_ip(),
        eip.attrs.get("public_ip").map(String::as_str)
    );
    assert_eq!(d.addresses()[0].domain().map(|d| d.as_str()), Some("vpc"));

    let public = w.make("route_table").await;
    let mut pf = w.desired("route_table");
    let route = |key: &str, target: &str| route("0.0.0.0/0", key, target);
    let mut f = Fields::from([
        ("vpc_id".into(), Value::str(&w.fx.vpc)),
        (
            "routes".into(),
            Value::List(vec![route("nat_gateway_id", &nat.physical_id)]),
        ),
        ("subnet_ids".into(), Value::strs([&w.fx.subnets[1]])),
        ("tags".into(), tags(STACK, "net.rt.private.a", &[])),
    ]);
    let private = create(&w, "net.rt.private.a", Kind::RouteTable, &f).await;
    shows(&w, "net.rt.private.a", Kind::RouteTable, &f).await;
    assert!(route_table(&w, &private.physical_id)
        .await
        .routes()
        .iter()
        .any(|r| r.gateway_id() == Some("local")));

    // The default route moves to the internet gateway: the NAT route goes, the local one stays.
    let igw = w.make("internet_gateway").await;
    set(
        &mut f,
        "routes",
        Value::List(vec![route("gateway_id", &igw.physical_id)]),
    );
    let private = update(&w, &private, &f, &["routes"]).await;
    let table = route_table(&w, &private.physical_id).await;
    let routes = table.routes();
    let non_local: Vec<_> = routes
        .iter()
        .filter(|r| r.gateway_id() != Some("local"))
        .collect();
    assert_eq!(non_local.len(), 1, "{non_local:?}");
    assert_eq!(routes.len(), 2, "the local route stays: {routes:?}");

    // A subnet associated with another table moves to this one.
    set(
        &mut pf,
        "subnet_ids",
        Value::strs([&w.fx.subnets[0], &w.fx.subnets[1]]),
    );
    update(&w, &public, &pf, &["subnet_ids"]).await;
    let all = w.observe(&[]).await;
    let private = all.iter().find(|o| o.id == "net.rt.private.a").unwrap();
    assert_eq!(
        private.fields["subnet_ids"],
        Value::strs(Vec::<String>::new())
    );

    // The gateway's delete detaches it from the VPC its observation names, without a read. Moved
    // to another VPC since: that detach finds it not attached, EC2 refuses the delete while it
    // is attached elsewhere (DependencyViolation), and the delete reads where, detaches it there
    // and deletes it.
    let other = ec2(&w)
        .create_vpc()
        .cidr_block("10.99.0.0/16")
        .send()
        .await
        .unwrap();
    let other = other.vpc().and_then(|v| v.vpc_id()).unwrap().to_string();
    let (gw, vpc) = (igw.physical_id.as_str(), w.fx.vpc.as_str());
    ec2(&w)
        .detach_internet_gateway()
        .internet_gateway_id(gw)
        .vpc_id(vpc)
        .send()
        .await
        .unwrap();
    ec2(&w)
        .attach_internet_gateway()
        .internet_gateway_id(gw)
        .vpc_id(&other)
        .send()
        .await
        .unwrap();
    assert_eq!(igw.fields["vpc_id"], Value::str(vpc));
    w.delete(&igw, &DeleteOptions::default()).await;
    let left = ec2(&w).describe_internet_gateways().send().await.unwrap();
    assert!(
        left.internet_gateways()
            .iter()
            .all(|g| g.internet_gateway_id() != Some(gw)),
        "{left:?}"
    );
    ec2(&w).delete_vpc().vpc_id(&other).send().await.unwrap();
}

/// The tags a create of the stack's resource `id` puts on it (the production rule,
/// [`moodlestack_model::identity_tags`]), for a resource of type `rt` made here by hand: what a
/// create interrupted after AWS made the resource leaves.
fn ours(
    w: &World,
    rt: aws_sdk_ec2::types::ResourceType,
    id: &str,
) -> aws_sdk_ec2::types::TagSpecification {
    use aws_sdk_ec2::types::{Tag, TagSpecification};
    let spec = TagSpecification::builder().resource_type(rt);
    moodlestack_model::identity_tags(&w.scope, &id)
        .into_iter()
        .fold(spec, |spec, (k, v)| {
            spec.tags(Tag::builder().key(k).value(v).build())
        })
        .build()
}

/// An internet gateway of the stack's `net.igw` attached nowhere (a create interrupted between
/// CreateInternetGateway and its attach), once EC2 lists it. EC2 lists a new resource only after
/// a moment (the emulator's eventual consistency); a rerun after a crash waits for that before it
/// reads the stack (`execute::settle_after_crash`, end to end in
/// `faults::a_killed_apply_is_rerun_at_once_and_converges`).
async fn detached_gateway(w: &World) -> String {
    let made = ec2(w)
        .create_internet_gateway()
        .tag_specifications(ours(
            w,
            aws_sdk_ec2::types::ResourceType::InternetGateway,
            "net.igw",
        ))
        .send()
        .await
        .unwrap();
    let igw = made
        .internet_gateway()
        .and_then(|g| g.internet_gateway_id());
    let igw = igw.unwrap().to_string();
    listed(|| async {
        let d = ec2(w).describe_internet_gateways();
        d.internet_gateway_ids(&igw).send().await.is_ok()
    })
    .await;
    igw
}

/// A detached gateway of the stack, deleted a moment ago, is still listed by EC2 (on moto, the
/// emulator's `ec2-deletes-linger`): neither a retried create, which looks for a gateway left
/// detached to attach it, nor the plan's create (`create_absent`), which does not look, takes it.
/// Each makes a new gateway. (Seen in `faults::a_killed_apply_is_rerun_at_once_and_converges`: the
/// rerun replaced a gateway the killed run left detached, and its create attached the deleted
/// one: `InvalidInternetGatewayID.NotFound`.)
async fn ec2_a_gateway_deleted_a_moment_ago_is_not_attached(backend: Backend) {
    let w = World::on(backend).await;
    let want = resource(
        "net.igw",
        Kind::InternetGateway,
        &w.desired("internet_gateway"),
    );
    for planned in [false, true] {
        let old = detached_gateway(&w).await;
        ec2(&w)
            .delete_internet_gateway()
            .internet_gateway_id(&old)
            .send()
            .await
            .unwrap();
        let created = if planned {
            w.cloud.create_absent(&w.scope, &want).await
        } else {
            w.cloud.create(&w.scope, &want).await
        };
        let new = created.unwrap_or_else(|e| panic!("planned={planned}: {e}"));
        assert_ne!(new.physical_id, old, "planned={planned}: a new gateway");
        assert_eq!(new.fields["vpc_id"], Value::str(&w.fx.vpc));
        w.delete(&new, &DeleteOptions::default()).await;
    }
}

/// A create interrupted after AWS made the resource (the tags are on the create call, so it is
/// already the stack's) is adopted and finished: the gateway attached, the routes and the
/// association added. A name taken by a template that is not the stack's is refused.
async fn ec2_interrupted_creates_are_adopted_and_finished(backend: Backend) {
    use aws_sdk_ec2::types::ResourceType;
    let w = World::on(backend).await;
    let igw = detached_gateway(&w).await;
    adopt(&w, "internet_gateway", &igw).await;
    let d = ec2(&w).describe_internet_gateways().send().await.unwrap();
    assert_eq!(d.internet_gateways().len(), 1);
    assert_eq!(
        d.internet_gateways()[0].attachments()[0].vpc_id(),
        Some(w.fx.vpc.as_str())
    );

    let made = ec2(&w)
        .create_route_table()
        .vpc_id(&w.fx.vpc)
        .tag_specifications(ours(&w, ResourceType::RouteTable, "net.rt.public"))
        .send()
        .await
        .unwrap();
    let made = made.route_table().and_then(|t| t.route_table_id());
    let rt = made.unwrap().to_string();
    listed(|| async {
        let d = ec2(&w).describe_route_tables();
        d.route_table_ids(&rt).send().await.is_ok()
    })
    .await;
    adopt(&w, "route_table", &rt).await;
    shows(
        &w,
        "net.rt.public",
        Kind::RouteTable,
        &w.desired("route_table"),
    )
    .await;

    // A launch template name taken by a template that is not the stack's.
    let data = aws_sdk_ec2::types::RequestLaunchTemplateData::builder()
        .image_id(&w.fx.image)
        .build();
    ec2(&w)
        .create_launch_template()
        .launch_template_name("ct-web")
        .launch_template_data(data)
        .send()
        .await
        .unwrap();
    w.make("instance_profile").await;
    let err = w
        .cloud
        .create(
            &w.scope,
            &want(
                "web.lt",
                Kind::LaunchTemplate,
                &w.desired("launch_template"),
            ),
        )
        .await
        .unwrap_err();
    assert!(is_name_taken(&err), "{err:?}");
}

/// A launch template update makes a new default version with the full data (not a diff from a
/// source version) and a new content hash; instances are launched with a 64-character token.
async fn ec2_launch_template_versions_and_instance_token(backend: Backend) {
    let w = World::on(backend).await;
    let lt = w.make("launch_template").await;
    assert!(sent(&w, "CreateLaunchTemplate").contains("ClientToken="));
    assert_eq!(lt.attrs.get("version").map(String::as_str), Some("1"));
    assert_eq!(lt.attrs.get("name").map(String::as_str), Some("ct-web"));
    let hash =
        |o: &Observed| o.fields["tags"].as_map().unwrap()["moodlestack:content-hash"].clone();
    let hash1 = hash(&lt);
    let mut f = w.desired("launch_template");
    set(&mut f, "root_volume_size", 30);
    let lt = update(&w, &lt, &f, &["root_volume_size"]).await;
    assert_eq!(lt.attrs.get("version").map(String::as_str), Some("2"));
    assert!(!sent(&w, "CreateLaunchTemplateVersion").contains("SourceVersion"));
    // moto keeps DescribeLaunchTemplates' tags as they were at creation; DescribeTags shows the
    // CreateTags that followed the data.
    let filter = |k: &str, v: &str| {
        aws_sdk_ec2::types::Filter::builder()
            .name(k)
            .values(v)
            .build()
    };
    let t = ec2(&w)
        .describe_tags()
        .filters(filter("resource-id", &lt.physical_id))
        .filters(filter("key", "moodlestack:content-hash"))
        .send()
        .await
        .unwrap();
    assert_ne!(
        hash1,
        Value::str(t.tags()[0].value().unwrap()),
        "the hash follows the data"
    );
    let d = ec2(&w)
        .describe_launch_templates()
        .launch_template_ids(&lt.physical_id)
        .send()
        .await;
    assert_eq!(
        d.unwrap().launch_templates()[0].default_version_number(),
        Some(2)
    );
    let d = ec2(&w)
        .describe_launch_template_versions()
        .launch_template_id(&lt.physical_id)
        .versions("2")
        .send()
        .await
        .unwrap();
    let data = d.launch_template_versions()[0]
        .launch_template_data()
        .unwrap();
    assert_eq!(
        data.image_id(),
        Some(w.fx.image.as_str()),
        "version 2 has the full data"
    );
    let tokens = data.metadata_options().and_then(|m| m.http_tokens());
    assert_eq!(tokens.map(|t| t.as_str()), Some("required"));
    let profile = f["instance_profile_arn"].as_str().unwrap();
    assert_eq!(
        data.iam_instance_profile().and_then(|p| p.arn()),
        Some(profile)
    );
    let ebs = data.block_device_mappings()[0].ebs().unwrap();
    assert_eq!((ebs.volume_size(), ebs.encrypted()), (Some(30), Some(true)));

    // An instance from version 2: the run request carries a 64-character idempotency token.
    let mut inf = w.desired("instance");
    set(&mut inf, "launch_template_version", "2");
    create(&w, "stable.instance", Kind::Instance, &inf).await;
    shows(&w, "stable.instance", Kind::Instance, &inf).await;
    let run = sent(&w, "RunInstances");
    let token = run
        .split("ClientToken=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap();
    assert_eq!(token.len(), 64, "{run}");
}

// ---------------------------------------------------------------------------------------------
// RDS, EFS, ElastiCache

/// 25 parameters go in two Modify calls (at most 20 each), applied `pending-reboot` (moto
/// reports no ApplyType; that method is valid for static and dynamic parameters alike); a
/// repeated create sets them again; a parameter set outside the stack does not show; an update
/// sends only what changed.
async fn parameter_batches(row: &'static str, modify: &str) {
    let w = World::new().await;
    let rds = aws_sdk_rds::Client::new(&w.cfg);
    let mut f = w.desired(row);
    let name = f["name"].as_str().unwrap().to_string();
    let mut params: BTreeMap<String, Value> = (0..24)
        .map(|i| (format!("moodle_param_{i:02}"), Value::str(i.to_string())))
        .collect();
    params.insert("max_allowed_packet".into(), Value::str("67108864"));
    set(&mut f, "parameters", Value::Map(params.clone()));
    let kind = w.row(row).kind;
    let id = w.row(row).id;
    let created = w.cloud.create(&w.scope, &want(id, kind, &f)).await.unwrap();
    assert_eq!(count(&w, modify), 2, "25 parameters in batches of 20");
    assert_eq!(created.fields["parameters"], f["parameters"]);
    let again = w.cloud.create(&w.scope, &want(id, kind, &f)).await.unwrap();
    assert_eq!(again.fields["parameters"], f["parameters"]);

    let plain = if kind == Kind::DbParameterGroup {
        let r = rds
            .describe_db_parameters()
            .db_parameter_group_name(&name)
            .send()
            .await;
        r.unwrap().parameters().to_vec()
    } else {
        let r = rds
            .describe_db_cluster_parameters()
            .db_cluster_parameter_group_name(&name);
        r.send().await.unwrap().parameters().to_vec()
    };
    let p = plain
        .iter()
        .find(|p| p.parameter_name() == Some("max_allowed_packet"))
        .unwrap();
    assert_eq!(p.parameter_value(), Some("67108864"));
    assert_eq!(p.apply_method().map(|m| m.as_str()), Some("pending-reboot"));

    let extra = aws_sdk_rds::types::Parameter::builder()
        .parameter_name("wait_timeout")
        .parameter_value("100")
        .apply_method(aws_sdk_rds::types::ApplyMethod::Immediate)
        .build();
    if kind == Kind::DbParameterGroup {
        let r = rds
            .modify_db_parameter_group()
            .db_parameter_group_name(&name);
        r.parameters(extra).send().await.unwrap();
    } else {
        let r = rds
            .modify_db_cluster_parameter_group()
            .db_cluster_parameter_group_name(&name);
        r.parameters(extra).send().await.unwrap();
    }
    let o = shows(&w, id, kind, &f).await;
    assert!(!o.fields["parameters"]
        .as_map()
        .unwrap()
        .contains_key("wait_timeout"));

    let before = count(&w, modify);
    params.insert("max_allowed_packet".into(), Value::str("268435456"));
    params.insert("innodb_lock_wait_timeout".into(), Value::str("120"));
    set(&mut f, "parameters", Value::Map(params));
    update(&w, &o, &f, &["parameters"]).await;
    assert_eq!(
        count(&w, modify) - before,
        1,
        "only the two changed values are sent"
    );
    shows(&w, id, kind, &f).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rds_parameter_group_batches_and_apply_method() {
    parameter_batches("db_parameter_group", "ModifyDBParameterGroup").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rds_cluster_parameter_group_batches_and_apply_method() {
    parameter_batches(
        "db_cluster_parameter_group",
        "ModifyDBClusterParameterGroup",
    )
    .await;
}

/// The instance is created with a password RDS generates and keeps (none is ever sent), its
/// changes are applied immediately, deletion protection refuses a delete that does not lift
/// it, and a final snapshot is taken when asked for.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rds_instance_password_protection_and_final_snapshot() {
    let w = World::new().await;
    let rds = aws_sdk_rds::Client::new(&w.cfg);
    w.make("db_instance").await;
    let c = sent(&w, "CreateDBInstance");
    for p in [
        "ManageMasterUserPassword=true",
        "StorageType=gp3",
        "MaxAllocatedStorage=100",
    ] {
        assert!(c.contains(p), "{p}: {c}");
    }
    assert!(
        c.contains("PubliclyAccessible=false") && c.contains("MultiAZ=true"),
        "{c}"
    );
    let mut f = w.desired("db_instance");
    let o = shows(&w, "db.instance", Kind::DbInstance, &f).await;
    assert_eq!(o.attrs["port"], "3306");
    let secrets = aws_sdk_secretsmanager::Client::new(&w.cfg);
    secrets
        .describe_secret()
        .secret_id(&o.attrs["secret_arn"])
        .send()
        .await
        .unwrap();

    set(&mut f, "deletion_protection", true);
    let o = update(&w, &o, &f, &["deletion_protection"]).await;
    assert!(sent(&w, "ModifyDBInstance").contains("ApplyImmediately=true"));
    let err = w
        .cloud
        .delete(&w.scope, &o, &DeleteOptions::default())
        .await;
    assert!(err.is_err(), "a protected instance was deleted");
    let d = rds
        .describe_db_instances()
        .db_instance_identifier("ct-db")
        .send()
        .await;
    assert_eq!(d.unwrap().db_instances().len(), 1, "still there");

    let opts = DeleteOptions {
        final_snapshot_id: Some("ct-db-final-1".into()),
        lift_deletion_protection: true,
    };
    w.delete(&o, &opts).await;
    let snaps = rds
        .describe_db_snapshots()
        .db_snapshot_identifier("ct-db-final-1")
        .send()
        .await;
    assert_eq!(
        snaps.unwrap().db_snapshots().len(),
        1,
        "final snapshot taken"
    );
    let all = w.wire.requests().join("\n");
    assert!(!all.contains("&MasterUserPassword="), "a password was sent");
}

/// An Aurora member has no storage, backup or credential fields of its own and is deleted
/// without a snapshot; the protected cluster needs the protection lifted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rds_aurora_member_and_protected_cluster() {
    let w = World::new().await;
    let cluster = w.make("db_cluster").await;
    let mut pg = w.desired("db_parameter_group");
    set(&mut pg, "name", "ct-aurora-mysql8-0");
    set(&mut pg, "family", "aurora-mysql8.0");
    create(&w, "db.parameter_group", Kind::DbParameterGroup, &pg).await;
    let mut mf = Fields::from([
        ("identifier".into(), Value::str("ct-db-1")),
        ("engine".into(), Value::str("aurora-mysql")),
        (
            "engine_version".into(),
            Value::str("8.0.mysql_aurora.3.08.0"),
        ),
        ("instance_class".into(), Value::str("db.r7g.large")),
        ("cluster_identifier".into(), Value::str("ct-db")),
        ("db_subnet_group_name".into(), Value::str("ct-db")),
        (
            "parameter_group_name".into(),
            Value::str("ct-aurora-mysql8-0"),
        ),
        ("publicly_accessible".into(), Value::Bool(false)),
        ("tags".into(), tags(STACK, "db.instance.1", &[])),
    ]);
    let member = create(&w, "db.instance.1", Kind::DbInstance, &mf).await;
    assert!(member.attrs.contains_key("endpoint"));
    let m = shows(&w, "db.instance.1", Kind::DbInstance, &mf).await;
    for absent in [
        "allocated_storage",
        "backup_retention_period",
        "master_username",
    ] {
        assert!(
            !m.fields.contains_key(absent),
            "{absent} reported for a member"
        );
    }
    set(&mut mf, "instance_class", "db.r7g.xlarge");
    update(&w, &m, &mf, &["instance_class"]).await;
    let m = shows(&w, "db.instance.1", Kind::DbInstance, &mf).await;

    let mut cf = w.desired("db_cluster");
    set(&mut cf, "deletion_protection", true);
    let c = update(&w, &cluster, &cf, &["deletion_protection"]).await;
    shows(&w, "db.cluster", Kind::DbCluster, &cf).await;
    let opts = DeleteOptions {
        final_snapshot_id: Some("ignored".into()),
        lift_deletion_protection: false,
    };
    w.delete(&m, &opts).await;
    let err = w
        .cloud
        .delete(&w.scope, &c, &DeleteOptions::default())
        .await;
    assert!(err.is_err(), "a protected cluster was deleted");
    let lift = DeleteOptions {
        final_snapshot_id: None,
        lift_deletion_protection: true,
    };
    w.delete(&c, &lift).await;
}

/// Mount targets cannot be tagged: two of them, in two zones, are told apart by their identity
/// fields; the file system waits for them on delete (a retryable error).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn efs_mount_targets_by_identity_and_delete_order() {
    let w = World::new().await;
    let fs = w.make("efs_file_system").await;
    let mut mounts = Vec::new();
    for (i, zone) in ["a", "b"].iter().enumerate() {
        let mut f = w.desired("efs_mount_target");
        set(&mut f, "subnet_id", w.fx.subnets[i].as_str());
        let id = format!("files.mount.{zone}");
        let m = create(&w, &id, Kind::EfsMountTarget, &f).await;
        mounts.push((m, f));
    }
    let all = w.observe(&[]).await;
    for (m, f) in &mounts {
        let o = all.iter().find(|o| o.physical_id == m.physical_id).unwrap();
        assert_eq!(o.id.to_string(), format!("untagged:{}", m.physical_id));
        assert_eq!(mismatches(f, o, &[]), Vec::<String>::new());
    }
    let err = w
        .cloud
        .delete(&w.scope, &fs, &DeleteOptions::default())
        .await;
    assert!(err.unwrap_err().is_retryable());
    for (m, _) in &mounts {
        w.delete(m, &DeleteOptions::default()).await;
    }
    w.delete(&fs, &DeleteOptions::default()).await;
    let efs = aws_sdk_efs::Client::new(&w.cfg);
    let d = efs.describe_file_systems().send().await.unwrap();
    assert!(d.file_systems().is_empty());
}

/// The AUTH token reaches ElastiCache and nothing moodlestack reports; the replica count grows
/// in place.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn elasticache_auth_token_and_replica_count() {
    let w = World::new().await;
    let rg = w.make("cache_replication_group").await;
    assert_eq!(rg.attrs["port"], "6379");
    let secrets = aws_sdk_secretsmanager::Client::new(&w.cfg);
    let token = secrets
        .get_secret_value()
        .secret_id(w.make("secret").await.physical_id)
        .send()
        .await
        .unwrap();
    let token = token.secret_string().unwrap().to_string();
    let ec = aws_sdk_elasticache::Client::new(&w.cfg);
    let plain = ec
        .describe_replication_groups()
        .replication_group_id("ct-redis")
        .send()
        .await;
    assert_eq!(
        plain.unwrap().replication_groups()[0].auth_token_enabled(),
        Some(true)
    );
    let mut f = w.desired("cache_replication_group");
    let o = shows(&w, "cache.redis", Kind::CacheReplicationGroup, &f).await;
    assert!(!format!("{o:?}{rg:?}").contains(&token), "the token leaked");
    set(&mut f, "num_cache_clusters", 3);
    update(&w, &o, &f, &["num_cache_clusters"]).await;
    shows(&w, "cache.redis", Kind::CacheReplicationGroup, &f).await;
}

// ---------------------------------------------------------------------------------------------
// Secrets Manager, IAM, ELBv2, Auto Scaling

/// Secrets Manager generates the value (32 characters, no punctuation); a delete skips the
/// recovery window, so the name is free again at once.
async fn secret_value_is_generated_and_deleted_for_good(backend: Backend) {
    let w = World::on(backend).await;
    let s = w.make("secret").await;
    assert_eq!(s.attrs["id"], s.attrs["arn"]);
    let plain = aws_sdk_secretsmanager::Client::new(&w.cfg);
    let v = plain
        .get_secret_value()
        .secret_id(&s.physical_id)
        .send()
        .await
        .unwrap();
    let v = v.secret_string().unwrap();
    assert_eq!(v.len(), 32);
    assert!(
        v.chars().all(|c| c.is_ascii_alphanumeric()),
        "punctuation in {v}"
    );
    w.delete(&s, &DeleteOptions::default()).await;
    let listed = plain
        .list_secrets()
        .include_planned_deletion(true)
        .send()
        .await
        .unwrap();
    assert!(listed
        .secret_list()
        .iter()
        .all(|x| x.name() != Some("ct/redis-auth")));
}

/// Deleting a role detaches its policies and takes it out of its instance profile first: what
/// its observation saw at once, and what it did not (a profile holding it, an inline policy put
/// since) after IAM refuses with `DeleteConflict`.
async fn iam_role_delete_leaves_the_profile_empty(backend: Backend) {
    let w = World::on(backend).await;
    let profile = w.make("instance_profile").await;
    let role = w.make("iam_role").await;
    assert!(
        role.attrs["arn"].ends_with(":role/moodlestack/ct-node"),
        "{:?}",
        role.attrs
    );
    let iam = aws_sdk_iam::Client::new(&w.cfg);
    iam.put_role_policy()
        .role_name("ct-node")
        .policy_name("put-since")
        .policy_document(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:ListBucket","Resource":"*"}]}"#)
        .send()
        .await
        .unwrap();
    w.delete(&role, &DeleteOptions::default()).await;
    let gone = iam.get_role().role_name("ct-node").send().await;
    assert!(gone.is_err(), "the role is deleted: {gone:?}");
    let p = iam
        .get_instance_profile()
        .instance_profile_name("ct-node")
        .send()
        .await;
    assert!(p.unwrap().instance_profile().unwrap().roles().is_empty());
    w.delete(&profile, &DeleteOptions::default()).await;
}

/// Listeners cannot be tagged: two on one load balancer are told apart by (load balancer,
/// port); the HTTPS one changes its policy and action in place.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listeners_tagged_and_https() {
    let w = World::new().await;
    let alb = w.make("load_balancer").await;
    assert_eq!(alb.status, "active");
    assert!(!alb.attrs["dns_name"].is_empty() && !alb.attrs["zone_id"].is_empty());
    let http = w.make("listener").await;
    let cert = w.emu.import_certificate();
    let mut https = Fields::from([
        ("load_balancer_arn".into(), Value::str(&alb.attrs["arn"])),
        ("port".into(), Value::Int(443)),
        ("protocol".into(), Value::str("HTTPS")),
        ("certificate_arn".into(), Value::str(&cert)),
        (
            "ssl_policy".into(),
            Value::str("ELBSecurityPolicy-TLS13-1-2-2021-06"),
        ),
        (
            "default_action".into(),
            w.desired("listener")["default_action"].clone(),
        ),
    ]);
    let l443 = create(&w, "lb.listener.https", Kind::Listener, &https).await;
    let all = w.observe(&[]).await;
    // Listeners carry the stack's tags: found under their logical ids.
    for (o, f, id) in [
        (&http, w.desired("listener"), "lb.listener.http"),
        (&l443, https.clone(), "lb.listener.https"),
    ] {
        let found = all.iter().find(|x| x.physical_id == o.physical_id).unwrap();
        assert_eq!(found.id.to_string(), id);
        assert_eq!(mismatches(&f, found, &[]), Vec::<String>::new());
    }
    set(
        &mut https,
        "ssl_policy",
        "ELBSecurityPolicy-TLS13-1-2-Res-2021-06",
    );
    let redirect = [("type", "redirect"), ("protocol", "HTTPS"), ("port", "443")];
    set(
        &mut https,
        "default_action",
        str_map(&[
            redirect[0],
            redirect[1],
            redirect[2],
            ("status_code", "HTTP_301"),
        ]),
    );
    update(&w, &l443, &https, &["ssl_policy", "default_action"]).await;
    let all = w.observe(&[]).await;
    let found = all
        .iter()
        .find(|x| x.physical_id == l443.physical_id)
        .unwrap();
    assert_eq!(mismatches(&https, found, &[]), Vec::<String>::new());
}

/// Every tag but `moodlestack:id` propagates to the instances; the desired capacity is never
/// sent after creation; a new launch template version starts an instance refresh (healthy 100-200 %, Standby replaced),
/// and a second one while it runs is refused before anything changes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn autoscaling_capacity_tags_and_instance_refresh() {
    let w = World::new().await;
    let group = w.make("auto_scaling_group").await;
    let asg = aws_sdk_autoscaling::Client::new(&w.cfg);
    let d = asg
        .describe_auto_scaling_groups()
        .auto_scaling_group_names("ct-web")
        .send()
        .await;
    let d = d.unwrap();
    for t in d.auto_scaling_groups()[0].tags() {
        let want = t.key() != Some("moodlestack:id");
        assert_eq!(t.propagate_at_launch(), Some(want), "{t:?}");
    }
    let r = asg
        .set_desired_capacity()
        .auto_scaling_group_name("ct-web")
        .desired_capacity(3);
    r.send().await.unwrap();
    let mut f = w.desired("auto_scaling_group");
    set(&mut f, "max_size", 6);
    let group = update(&w, &group, &f, &["max_size"]).await;
    set(&mut f, "desired_capacity", 3);
    shows(&w, "web.asg", Kind::AutoScalingGroup, &f).await;
    let refreshes = || async {
        let r = asg
            .describe_instance_refreshes()
            .auto_scaling_group_name("ct-web")
            .send()
            .await;
        r.unwrap().instance_refreshes().to_vec()
    };
    assert!(
        refreshes().await.is_empty(),
        "no rollout without a new version"
    );

    let lt = w.make("launch_template").await;
    let mut lf = w.desired("launch_template");
    set(&mut lf, "instance_type", "t3.large");
    let lt = update(&w, &lt, &lf, &["instance_type"]).await;
    set(
        &mut f,
        "launch_template_version",
        lt.attrs["version"].as_str(),
    );
    let rolled = update(&w, &group, &f, &["launch_template_version"]).await;
    let r = refreshes().await;
    assert_eq!(r.len(), 1, "{r:?}");
    let prefs = r[0].preferences();
    assert_eq!(prefs.and_then(|p| p.min_healthy_percentage()), Some(100));
    assert_eq!(prefs.and_then(|p| p.max_healthy_percentage()), Some(200));
    assert_eq!(
        prefs.and_then(|p| p.standby_instances()),
        Some(&aws_sdk_autoscaling::types::StandbyInstances::Terminate)
    );
    let mut back = f.clone();
    set(&mut back, "launch_template_version", "1");
    let err = w
        .cloud
        .update(
            &w.scope,
            &rolled,
            &back,
            &["launch_template_version".into()],
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("InstanceRefreshInProgress"), "{err:?}");
    shows(&w, "web.asg", Kind::AutoScalingGroup, &f).await;

    // A rollout that ends unfinished (here cancelled by hand; on AWS also Failed or rolled back
    // when new nodes stay unhealthy): the wait after the update fails with the reason and what
    // to do, and the next observation shows the version as not rolled out, so the next plan
    // rolls it out again instead of calling the stack up to date.
    asg.cancel_instance_refresh()
        .auto_scaling_group_name("ct-web")
        .send()
        .await
        .unwrap();
    match w.cloud.poll(&w.scope, &rolled, Want::Ready).await.unwrap() {
        Readiness::Failed {
            status,
            fix: Some(fix),
        } => {
            assert!(
                status.starts_with("instance refresh ") && status.contains(" Cancelled: "),
                "{status}"
            );
            assert!(fix.contains("run apply again"), "{fix}");
        }
        other => panic!("{other:?}"),
    }
    let id = physical_of(&w, "web.asg", Kind::AutoScalingGroup, &f).await;
    let o = w.observed(Kind::AutoScalingGroup, "web.asg", &id, &f).await;
    let version = o.fields["launch_template_version"].as_str().unwrap();
    assert!(
        version.starts_with(&format!(
            "{} (not rolled out: instance refresh ",
            lt.attrs["version"]
        )) && version.ends_with(" Cancelled)"),
        "{version}"
    );
    // Rolling out again starts a new refresh, and a finished one leaves the version as it is.
    update(&w, &group, &f, &["launch_template_version"]).await;
    assert_eq!(refreshes().await.len(), 2);
}

/// Resources with the stack's names that no stack made (untagged) are never observed, and
/// creating over them is refused. (Another stack's are covered by every row of the contract.)
async fn untagged_resources_with_the_stacks_names_are_left_alone(backend: Backend) {
    let w = World::on(backend).await;
    let iam = aws_sdk_iam::Client::new(&w.cfg);
    let r = iam.create_role().role_name("ct-node");
    let r = r.assume_role_policy_document(crate::contract::ASSUME_EC2);
    r.send().await.unwrap();
    // LocalStack has no RDS (its RDS calls go to a moto server that has not its subnets).
    if backend == Backend::Moto {
        let rds = aws_sdk_rds::Client::new(&w.cfg);
        rds.create_db_subnet_group()
            .db_subnet_group_name("ct-foreign")
            .db_subnet_group_description("not ours")
            .set_subnet_ids(Some(w.fx.subnets[..2].to_vec()))
            .send()
            .await
            .unwrap();
    }
    let role = w.row("iam_role");
    let role = resource(role.id, role.kind, &w.desired("iam_role"));
    let all = w.observe(std::slice::from_ref(&role)).await;
    assert!(all.is_empty(), "{all:?}");
    let err = w.cloud.create(&w.scope, &role).await;
    assert!(is_name_taken(&err.unwrap_err()));
}

// ---------------------------------------------------------------------------------------------
// AMI and parameter lookups, the lease (no kind)

async fn ec2_image_and_parameters(backend: Backend) {
    let w = World::on(backend).await;
    let image = w.fx.image.clone();
    let info = w
        .cloud
        .image(&image)
        .await
        .unwrap()
        .expect("the image exists");
    assert_eq!(info.image_id, image);
    assert_eq!(info.architecture, "x86_64");
    assert!(info.root_device_name.starts_with("/dev/"), "{info:?}");
    assert_eq!(w.cloud.image("ami-0123456789abcdef0").await.unwrap(), None);

    // A public parameter (moto serves Amazon Linux's; `/aws/` names cannot be written).
    let public = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-6.1-x86_64";
    let ami = w.cloud.resolve_parameter(public).await.unwrap();
    assert!(ami.starts_with("ami-"), "{ami}");
    let ssm = aws_sdk_ssm::Client::new(&w.cfg);
    let name = "/ec2test/image";
    ssm.put_parameter()
        .name(name)
        .value(&image)
        .r#type(aws_sdk_ssm::types::ParameterType::String)
        .send()
        .await
        .unwrap();
    assert_eq!(w.cloud.resolve_parameter(name).await.unwrap(), image);
    let err = w
        .cloud
        .resolve_parameter("/no/such/parameter")
        .await
        .unwrap_err();
    assert!(matches!(err, CloudError::NotFound(_)), "{err}");
    assert!(err.to_string().contains("/no/such/parameter"), "{err}");
}

/// The tags of the SSM parameter `name`.
async fn parameter_tags(ssm: &aws_sdk_ssm::Client, name: &str) -> Vec<aws_sdk_ssm::types::Tag> {
    let t = ssm
        .list_tags_for_resource()
        .resource_type(aws_sdk_ssm::types::ResourceTypeForTagging::Parameter)
        .resource_id(name)
        .send()
        .await
        .unwrap();
    t.tag_list().to_vec()
}

async fn ssm_lease_two_owners_expiry_and_release(backend: Backend) {
    let w = World::on(backend).await;
    let ssm = aws_sdk_ssm::Client::new(&w.cfg);
    let scope = &w.scope;
    let name = moodlestack_stack::Names::for_stack(STACK, crate::harness::REGION).lease_parameter();
    let hour = Duration::from_secs(3600);

    let a = w
        .cloud
        .acquire_lease(scope, "ann@box pid 1", hour)
        .await
        .unwrap();
    assert_eq!(a.owner, "ann@box pid 1");
    assert!(a.expires_at >= a.acquired_at + 3600);
    let stored = ssm.get_parameter().name(&name).send().await.unwrap();
    let v: serde_json::Value =
        serde_json::from_str(stored.parameter().unwrap().value().unwrap()).unwrap();
    assert_eq!(v["owner"], "ann@box pid 1");
    assert_eq!(v["expires_at"], a.expires_at);
    assert!(parameter_tags(&ssm, &name)
        .await
        .iter()
        .any(|t| t.key() == "moodlestack:stack" && t.value() == STACK));

    // The holder renews: same acquired_at, a later expiry; the parameter keeps its tags.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let renewed = w
        .cloud
        .acquire_lease(scope, "ann@box pid 1", hour)
        .await
        .unwrap();
    assert_eq!(renewed.acquired_at, a.acquired_at);
    assert!(renewed.expires_at > a.expires_at, "{renewed:?} {a:?}");
    assert!(parameter_tags(&ssm, &name)
        .await
        .iter()
        .any(|t| t.key() == "moodlestack:stack"));
    let a = renewed;

    // A second owner is refused, told who holds it.
    let err = w
        .cloud
        .acquire_lease(scope, "bob@box pid 2", hour)
        .await
        .unwrap_err();
    match &err {
        CloudError::LeaseHeld(info) => assert_eq!(info, &a),
        other => panic!("{other}"),
    }
    assert!(err.to_string().contains("ann@box pid 1"), "{err}");
    // Releasing someone else's lease does nothing.
    w.cloud.release_lease(scope, "bob@box pid 2").await.unwrap();
    assert!(w
        .cloud
        .acquire_lease(scope, "bob@box pid 2", hour)
        .await
        .is_err());
    // The holder releases; the other can take it.
    w.cloud.release_lease(scope, "ann@box pid 1").await.unwrap();
    assert!(ssm.get_parameter().name(&name).send().await.is_err());
    w.cloud
        .acquire_lease(scope, "bob@box pid 2", Duration::from_secs(1))
        .await
        .unwrap();

    // Bob's lease expires; several takers race: exactly one wins, the others are told who.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let racers: Vec<_> = (0..6)
        .map(|i| {
            let cloud = w.cloud.clone();
            let scope = scope.clone();
            tokio::spawn(async move {
                cloud
                    .acquire_lease(&scope, &format!("racer{i}@box pid {i}"), hour)
                    .await
            })
        })
        .collect();
    let mut results = Vec::new();
    for r in racers {
        results.push(r.await.unwrap());
    }
    let winners: Vec<_> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
    assert_eq!(winners.len(), 1, "{results:?}");
    let winner = winners[0].clone();
    for r in &results {
        if let Err(e) = r {
            assert!(matches!(e, CloudError::LeaseHeld(_)), "{e}");
        }
    }
    let stored = ssm.get_parameter().name(&name).send().await.unwrap();
    let v: serde_json::Value =
        serde_json::from_str(stored.parameter().unwrap().value().unwrap()).unwrap();
    assert_eq!(v["owner"], winner.owner.as_str());
    // No takeover claim is left behind.
    let all = ssm.describe_parameters().send().await.unwrap();
    let names: Vec<_> = all.parameters().iter().filter_map(|p| p.name()).collect();
    assert_eq!(names, [name.as_str()], "{names:?}");
    w.cloud.release_lease(scope, &winner.owner).await.unwrap();
    w.cloud.release_lease(scope, &winner.owner).await.unwrap();
}

// ---------------------------------------------------------------------------------------------
// An existing network (`network.existing`), checked at plan time through the binary

/// A VPC and subnets made with a plain EC2 client, as a network team would have made them.
struct Network {
    emu: crate::harness::Emulator,
    ec2: aws_sdk_ec2::Client,
    /// The VPC the stacks name (10.30.0.0/16), and another one (10.40.0.0/16).
    vpc: String,
    other_vpc: String,
    public_a: String,
    public_b: String,
    private_a: String,
    private_b: String,
    /// A second private subnet in eu-west-1a.
    private_a2: String,
    /// A subnet of the other VPC, in eu-west-1b.
    other_b: String,
    dir: std::path::PathBuf,
}

impl Network {
    async fn new(name: &str) -> Network {
        let emu = crate::harness::Emulator::start();
        let ec2 = aws_sdk_ec2::Client::new(&emu.sdk_config().await);
        let vpc = |cidr: &'static str| {
            let ec2 = ec2.clone();
            async move {
                let v = ec2.create_vpc().cidr_block(cidr).send().await.unwrap();
                v.vpc().unwrap().vpc_id().unwrap().to_string()
            }
        };
        let (main, other) = (vpc("10.30.0.0/16").await, vpc("10.40.0.0/16").await);
        let subnet = |vpc: String, cidr: &'static str, zone: &'static str| {
            let ec2 = ec2.clone();
            async move {
                let s = ec2
                    .create_subnet()
                    .vpc_id(vpc)
                    .cidr_block(cidr)
                    .availability_zone(zone)
                    .send()
                    .await
                    .unwrap();
                s.subnet().unwrap().subnet_id().unwrap().to_string()
            }
        };
        let dir =
            std::env::temp_dir().join(format!("moodlestack-network-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let n = Network {
            public_a: subnet(main.clone(), "10.30.0.0/24", "eu-west-1a").await,
            public_b: subnet(main.clone(), "10.30.1.0/24", "eu-west-1b").await,
            private_a: subnet(main.clone(), "10.30.16.0/20", "eu-west-1a").await,
            private_b: subnet(main.clone(), "10.30.32.0/20", "eu-west-1b").await,
            private_a2: subnet(main.clone(), "10.30.48.0/20", "eu-west-1a").await,
            other_b: subnet(other.clone(), "10.40.0.0/24", "eu-west-1b").await,
            vpc: main,
            other_vpc: other,
            emu,
            ec2,
            dir,
        };
        // Like `aws ec2 wait subnet-available` in a script that builds the network first: EC2
        // lists new resources only after a moment (the emulator's eventual consistency).
        let subnets = [
            &n.public_a,
            &n.public_b,
            &n.private_a,
            &n.private_b,
            &n.private_a2,
            &n.other_b,
        ];
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            let s = n.ec2.describe_subnets();
            let s = s.set_subnet_ids(Some(subnets.iter().map(|s| s.to_string()).collect()));
            let v = n.ec2.describe_vpcs().vpc_ids(&n.vpc).vpc_ids(&n.other_vpc);
            if s.send().await.is_ok() && v.send().await.is_ok() {
                break n;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the network never showed"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// (enableDnsSupport, enableDnsHostnames) of `vpc`, read with a plain client.
    async fn dns(&self, vpc: &str) -> (bool, bool) {
        use aws_sdk_ec2::types::VpcAttributeName as A;
        let get = |a: A| {
            self.ec2
                .describe_vpc_attribute()
                .vpc_id(vpc)
                .attribute(a)
                .send()
        };
        let s = get(A::EnableDnsSupport).await.unwrap();
        let h = get(A::EnableDnsHostnames).await.unwrap();
        (
            s.enable_dns_support().unwrap().value().unwrap(),
            h.enable_dns_hostnames().unwrap().value().unwrap(),
        )
    }

    async fn enable_dns_hostnames(&self) {
        let on = aws_sdk_ec2::types::AttributeBooleanValue::builder()
            .value(true)
            .build();
        self.ec2
            .modify_vpc_attribute()
            .vpc_id(&self.vpc)
            .enable_dns_hostnames(on)
            .send()
            .await
            .unwrap();
    }

    /// Writes `<file>.yaml`: the demo stack on the VPC the stacks name, with these subnets.
    fn stack(&self, file: &str, public: [&str; 2], private: [&str; 2]) -> String {
        let demo = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("stacks/demo.yaml"),
        )
        .unwrap();
        let made = "network:\n  cidr: 10.20.0.0/16\n  zones: [eu-west-1a, eu-west-1b]\n  \
                    nat_gateways: single\n";
        assert!(demo.contains(made), "stacks/demo.yaml's network changed");
        let existing = format!(
            "network:\n  existing:\n    vpc_id: {}\n    public_subnet_ids: [{}, {}]\n    \
             private_subnet_ids:\n      - {}\n      - {}\n",
            self.vpc, public[0], public[1], private[0], private[1]
        );
        let path = self.dir.join(format!("{file}.yaml"));
        std::fs::write(&path, demo.replace(made, &existing)).unwrap();
        path.display().to_string()
    }

    /// Runs the binary against `endpoint`: (exit code, stdout, stderr).
    fn run(&self, endpoint: &str, args: &[&str]) -> (i32, String, String) {
        run_at(&self.emu, endpoint, args)
    }

    /// `moodlestack <args>` as a transcript with the temporary directory and the ids moto chose
    /// redacted (the carets keep the length of the real ids).
    fn transcript(&self, args: &[&str]) -> (i32, String) {
        let (code, out, err) = self.run(&self.emu.endpoint, args);
        let mut text = format!("$ moodlestack {}\nexit {code}\n{out}{err}", args.join(" "));
        for (id, label) in [
            (&self.dir.display().to_string(), "[TMP]"),
            (&self.vpc, "[vpc]"),
            (&self.other_vpc, "[other-vpc]"),
            (&self.public_a, "[public-a]"),
            (&self.public_b, "[public-b]"),
            (&self.private_a2, "[private-a2]"),
            (&self.private_a, "[private-a]"),
            (&self.private_b, "[private-b]"),
            (&self.other_b, "[other-b]"),
        ] {
            text = text.replace(id.as_str(), label);
        }
        (code, text)
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Each problem of an existing network is refused by `plan` (and `apply`, before any change)
/// with the field of the stack file it is about and the fix.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn existing_network_problems_are_refused_at_plan_time() {
    let n = Network::new("problems").await;
    // moto makes a VPC as AWS does: DNS support on, DNS hostnames off (not the default VPC).
    assert_eq!(n.dns(&n.vpc).await, (true, false));
    let (pa, pb) = (n.public_a.as_str(), n.public_b.as_str());
    let (qa, qb) = (n.private_a.as_str(), n.private_b.as_str());

    let stack = n.stack("dns-hostnames-off", [pa, pb], [qa, qb]);
    let (code, report) = n.transcript(&["plan", &stack]);
    assert_eq!(code, 1, "{report}");
    insta::assert_snapshot!("existing_network_dns_hostnames_off", report);

    n.enable_dns_hostnames().await;
    assert_eq!(n.dns(&n.vpc).await, (true, true));

    let stack = n.stack("subnet-in-another-vpc", [pa, pb], [qa, &n.other_b]);
    let (code, report) = n.transcript(&["plan", &stack]);
    assert_eq!(code, 1, "{report}");
    insta::assert_snapshot!("existing_network_subnet_in_another_vpc", report);

    let stack = n.stack(
        "two-private-subnets-in-one-zone",
        [pa, pb],
        [qa, &n.private_a2],
    );
    let (code, report) = n.transcript(&["plan", &stack]);
    assert_eq!(code, 1, "{report}");
    insta::assert_snapshot!("existing_network_two_private_subnets_in_one_zone", report);

    let stack = n.stack("missing-subnet", [pa, "subnet-0123456789abcdef0"], [qa, qb]);
    let (code, report) = n.transcript(&["plan", &stack]);
    assert_eq!(code, 1, "{report}");
    insta::assert_snapshot!("existing_network_missing_subnet", report);

    // apply refuses with the same report before it changes anything (no lease, no resource).
    let (code, applied) = n.transcript(&["apply", "--auto-approve", &stack]);
    assert_eq!(code, 1, "{applied}");
    let body = |t: &str| t.split_once("\nexit 1\n").unwrap().1.to_string();
    assert_eq!(body(&applied), body(&report));
    crate::e2e::assert_nothing_left(&crate::e2e::clients(&n.emu).await, "demo").await;
}

/// A correct existing network plans: nothing of `net.*`, the stack's resources in the given
/// subnets, and the network's describes in the first round, beside the AMI lookup and the
/// stack's lists (no round of their own).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_correct_existing_network_plans_in_the_first_round() {
    let n = Network::new("good").await;
    n.enable_dns_hostnames().await;
    let stack = n.stack(
        "good",
        [&n.public_a, &n.public_b],
        [&n.private_a, &n.private_b],
    );
    let log = n.dir.join("requests.jsonl");
    let proxy = crate::harness::FaultProxy::start(
        &n.emu.endpoint,
        // 1 s, not 100 ms: on a loaded machine (a load average of 9 on 2 cores sent the first
        // round over 0.45 s) the first answer must not come back before every request of the
        // first round has been sent (a wave ends at the first answers).
        &["--latency-ms", "1000", "--log", log.to_str().unwrap()],
    );
    let (code, out, err) = n.run(&proxy.url, &["plan", "--json", &stack]);
    assert_eq!(code, 0, "{out}\n{err}");
    let plan: serde_json::Value = serde_json::from_str(&out).unwrap();
    let changes = plan["changes"].as_array().unwrap();
    let ids: Vec<&str> = changes.iter().map(|c| c["id"].as_str().unwrap()).collect();
    assert!(ids.iter().all(|id| !id.starts_with("net.")), "{ids:?}");
    assert!(changes.iter().all(|c| c["action"] == "create"), "{ids:?}");
    let subnet_of = |id: &str| {
        let c = changes.iter().find(|c| c["id"] == id).unwrap();
        c["desired"]["fields"]["subnet_id"].clone()
    };
    assert_eq!(subnet_of("files.mount.1"), n.private_a.as_str());
    assert_eq!(subnet_of("files.mount.2"), n.private_b.as_str());

    // The first round (wave, as `localstack/faults.py rounds` counts them) is the AMI lookup
    // and the network's three describes side by side.
    let entries: Vec<serde_json::Value> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let mut reqs: Vec<(f64, f64, String)> = entries
        .iter()
        .map(|e| {
            let start = e["start"].as_f64().unwrap();
            let end = e["end"].as_f64().unwrap().max(start);
            (start, end, e["action"].as_str().unwrap_or("").to_string())
        })
        .collect();
    reqs.sort_by(|a, b| a.0.total_cmp(&b.0));
    let begin = reqs[0].0;
    let barrier = reqs
        .iter()
        .filter(|r| r.0 <= begin && r.1 >= begin)
        .map(|r| r.1)
        .fold(begin, f64::max);
    let first: Vec<&str> = reqs
        .iter()
        .filter(|r| r.0 < barrier)
        .map(|r| r.2.as_str())
        .collect();
    let count = |action: &str| first.iter().filter(|a| **a == action).count();
    for (action, n) in [
        // The network's describes (and the stack's own list of subnets: none of `net.*` here).
        ("DescribeSubnets", 2),
        ("DescribeVpcAttribute", 2),
        // The account, for the code bucket's name.
        ("GetCallerIdentity", 1),
        // The stack's lease: did a run stop a moment ago (execute::settle_after_crash)?
        ("GetParameter", 1),
        // The AMI's facts (the stack names its AMI).
        ("DescribeImages", 1),
        // The stack's lists, which wait for none of the above (common::names_graph).
        ("DescribeSecurityGroups", 1),
        ("DescribeDBInstances", 1),
        ("DescribeFileSystems", 1),
    ] {
        assert_eq!(
            count(action),
            n,
            "{action} in the first round: {first:?}\n{reqs:?}"
        );
    }
}

/// Runs the binary with `emu`'s credentials against `endpoint` (the emulator or a proxy in front
/// of it): (exit code, stdout, stderr).
fn run_at(emu: &crate::harness::Emulator, endpoint: &str, args: &[&str]) -> (i32, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_moodlestack"))
        .args(args)
        .args(["--color", "never"])
        .envs(emu.env())
        .env("AWS_ENDPOINT_URL", endpoint)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run moodlestack");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

// ---------------------------------------------------------------------------------------------
// The tests that run on both emulators.

/// The scaling policy, scheduled actions and drain hook are read with one request each per
/// group, sent with the group list (by the group's deterministic name: no round of their own), a plan
/// after apply is empty, tracking ALB requests names the stack's load balancer and target group
/// (an in-place update), and `web.scaling.enabled: false` removes the policy and nothing else.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scaling_is_read_once_per_group_and_can_be_turned_off() {
    let emu = crate::harness::Emulator::start();
    let dir = std::env::temp_dir().join(format!("moodlestack-scaling-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let run = |endpoint: &str, args: &[&str]| run_at(&emu, endpoint, args);
    let base = ["stacks/demo.yaml", "--name", "scale"];
    let with = |more: &[&'static str]| -> Vec<&str> {
        let mut v: Vec<&str> = base.to_vec();
        v.extend_from_slice(more);
        v
    };
    let (code, out, err) = run(
        &emu.endpoint,
        &[&["apply", "--auto-approve"][..], &base].concat(),
    );
    assert_eq!(code, 0, "{out}\n{err}");

    // A plan through a proxy that delays each request by 300 ms (a slow round trip: requests the
    // code sends together overlap on the wire even on a busy machine) and logs it.
    let log = dir.join("requests.jsonl");
    let proxy = crate::harness::FaultProxy::start(
        &emu.endpoint,
        &["--latency-ms", "300", "--log", log.to_str().unwrap()],
    );
    let (code, out, err) = run(
        &proxy.url,
        &[&["plan", "--detailed-exitcode"][..], &base].concat(),
    );
    assert_eq!(code, 0, "the plan after apply is empty:\n{out}\n{err}");
    let reqs: Vec<(f64, f64, String)> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .map(|e| {
            let start = e["start"].as_f64().unwrap();
            (
                start,
                e["end"].as_f64().unwrap().max(start),
                e["action"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    let of = |action: &str| -> Vec<&(f64, f64, String)> {
        reqs.iter().filter(|r| r.2 == action).collect()
    };
    let groups = of("DescribeAutoScalingGroups");
    assert_eq!(groups.len(), 1, "one group list: {reqs:?}");
    // One read of each kind per group, whatever the stack declares: three requests per plan,
    // each on the wire while the group list is (no round of their own after it).
    for action in [
        "DescribePolicies",
        "DescribeScheduledActions",
        "DescribeLifecycleHooks",
    ] {
        let found = of(action);
        assert_eq!(found.len(), 1, "one {action} per group: {reqs:?}");
        assert!(
            found[0].0 < groups[0].1,
            "{action} goes out with the group list, not after it: {reqs:?}"
        );
    }
    drop(proxy);

    // Tracking ALB requests per target: an in-place update of the policy, whose resource label
    // names the stack's load balancer and target group as CloudWatch does; the next plan is empty.
    let requests = with(&[
        "--set",
        "web.scaling.metric=requests",
        "--set",
        "web.scaling.target=900",
    ]);
    let (code, out, err) = run(
        &emu.endpoint,
        &[&["apply", "--auto-approve"][..], &requests].concat(),
    );
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(
        out.contains("web.scaling (scaling_policy)") && out.contains("updated in place"),
        "{out}"
    );
    let cfg = emu.sdk_config().await;
    let asg = aws_sdk_autoscaling::Client::new(&cfg);
    let elb = aws_sdk_elasticloadbalancingv2::Client::new(&cfg);
    let lb = elb
        .describe_load_balancers()
        .names("scale-alb")
        .send()
        .await
        .unwrap();
    let tg = elb
        .describe_target_groups()
        .names("scale-web")
        .send()
        .await
        .unwrap();
    // `app/<name>/<id>` and `targetgroup/<name>/<id>`: the resource parts of the two ARNs.
    let lb_arn = lb.load_balancers()[0].load_balancer_arn().unwrap();
    let tg_arn = tg.target_groups()[0].target_group_arn().unwrap();
    let label = format!(
        "{}/{}",
        lb_arn.split_once(":loadbalancer/").unwrap().1,
        tg_arn.rsplit_once(':').unwrap().1
    );
    let policies = asg
        .describe_policies()
        .auto_scaling_group_name("scale-web")
        .send()
        .await
        .unwrap();
    let tt = policies.scaling_policies()[0]
        .target_tracking_configuration()
        .unwrap();
    let metric = tt.predefined_metric_specification().unwrap();
    assert_eq!(
        (
            metric.predefined_metric_type().map(|m| m.as_str()),
            metric.resource_label(),
            tt.target_value()
        ),
        (
            Some("ALBRequestCountPerTarget"),
            Some(label.as_str()),
            Some(900.0)
        )
    );
    assert!(label.starts_with("app/scale-alb/") && label.contains("/targetgroup/scale-web/"));
    let (code, out, err) = run(
        &emu.endpoint,
        &[&["plan", "--detailed-exitcode"][..], &requests].concat(),
    );
    assert_eq!(code, 0, "{out}\n{err}");

    // Turning target tracking off deletes the policy; the schedule and the hook stay.
    let off = with(&["--set", "web.scaling.enabled=false"]);
    let (code, out, err) = run(&emu.endpoint, &[&["plan", "--json"][..], &off].concat());
    assert_eq!(code, 0, "{err}");
    let plan: serde_json::Value = serde_json::from_str(&out).unwrap();
    let changes: Vec<(String, String)> = plan["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["action"] != "no_op")
        .map(|c| {
            (
                c["id"].as_str().unwrap().to_string(),
                c["action"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    // Untaggable, no longer declared: named by its physical id (group/policy).
    assert_eq!(
        changes,
        [(
            "untagged:scale-web/scale-web-tracking".to_string(),
            "delete".to_string()
        )],
        "{out}"
    );
    let (code, out, err) = run(
        &emu.endpoint,
        &[&["apply", "--auto-approve"][..], &off].concat(),
    );
    assert_eq!(code, 0, "{out}\n{err}");
    let c = crate::e2e::clients(&emu).await;
    let policies = asg
        .describe_policies()
        .auto_scaling_group_name("scale-web")
        .send()
        .await
        .unwrap();
    assert!(policies.scaling_policies().is_empty(), "{policies:?}");
    let hooks = asg
        .describe_lifecycle_hooks()
        .auto_scaling_group_name("scale-web")
        .send()
        .await
        .unwrap();
    assert_eq!(hooks.lifecycle_hooks().len(), 1, "{hooks:?}");
    let (code, out, err) = run(
        &emu.endpoint,
        &[&["plan", "--detailed-exitcode"][..], &off].concat(),
    );
    assert_eq!(code, 0, "{out}\n{err}");
    let (code, out, err) = run(&emu.endpoint, &[&crate::e2e::DESTROY[..], &off].concat());
    assert_eq!(code, 0, "{out}\n{err}");
    crate::e2e::assert_nothing_left(&c, "scale").await;
    std::fs::remove_dir_all(&dir).ok();
}

/// `on_both!(test, ...)`: each `async fn test(backend: Backend)` above becomes two tests,
/// `moto::test` and `localstack::test`.
macro_rules! on_both {
    ($($name:ident),* $(,)?) => {
        mod moto {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(crate::harness::Backend::Moto).await;
                }
            )*
        }
        mod localstack {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(crate::harness::Backend::LocalStack).await;
                }
            )*
        }
    };
}

on_both!(
    ec2_observe_sends_one_describe_per_kind,
    ec2_security_group_rules,
    ec2_nat_routes_and_associations,
    ec2_interrupted_creates_are_adopted_and_finished,
    ec2_a_gateway_deleted_a_moment_ago_is_not_attached,
    ec2_launch_template_versions_and_instance_token,
    secret_value_is_generated_and_deleted_for_good,
    iam_role_delete_leaves_the_profile_empty,
    untagged_resources_with_the_stacks_names_are_left_alone,
    ec2_image_and_parameters,
    ssm_lease_two_owners_expiry_and_release,
);
