//! End to end, through the `moodlestack` binary, against the emulator: for the demo and the
//! production stack, plan (only creates) -> apply -> plan clean -> drift made with plain AWS
//! clients -> plan shows exactly those drifts -> apply repairs -> plan clean -> the stack file
//! changes -> plan shows in-place updates and a rollout -> apply -> destroy leaves nothing tagged
//! with the stack. End states are checked with plain SDK clients, not only through moodlestack.

use crate::harness::Emulator;
use serde_json::Value as J;
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::Duration;

/// moto's built-in Ubuntu x86_64 image (root device /dev/sda1).
pub(crate) const AMI: &str = "ami-785db401";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs the binary against the emulator; returns (exit code, stdout, stderr).
pub(crate) fn ms(emu: &Emulator, args: &[&str]) -> (i32, String, String) {
    let out: Output = Command::new(env!("CARGO_BIN_EXE_moodlestack"))
        .args(args)
        .args(["--color", "never"])
        .envs(emu.env())
        .current_dir(repo())
        .output()
        .expect("run moodlestack");
    let code = out.status.code().unwrap_or(-1);
    (
        code,
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

/// Runs and asserts the exit code, showing both streams on failure.
pub(crate) fn ms_ok(emu: &Emulator, args: &[&str], want: i32) -> String {
    let (code, out, err) = ms(emu, args);
    assert_eq!(
        code, want,
        "moodlestack {args:?} exited {code}\n--- stdout\n{out}\n--- stderr\n{err}"
    );
    out
}

/// The plan as JSON: (id, action, changed field names) of every change that is not a no-op.
fn plan_changes(emu: &Emulator, args: &[&str]) -> BTreeSet<(String, String, Vec<String>)> {
    let mut full = vec!["plan", "--json"];
    full.extend_from_slice(args);
    let (code, out, err) = ms(emu, &full);
    assert!(
        code == 0 || code == 2,
        "plan failed ({code}):\n{err}\n{out}"
    );
    let plan: J = serde_json::from_str(&out).unwrap_or_else(|e| panic!("plan JSON: {e}\n{out}"));
    plan["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .filter(|c| c["action"] != "no_op")
        .map(|c| {
            let mut fields: Vec<String> = c["fields"]
                .as_array()
                .map(|f| {
                    f.iter()
                        .map(|f| f["field"].as_str().unwrap_or("").to_string())
                        .collect()
                })
                .unwrap_or_default();
            fields.sort();
            (
                c["id"].as_str().unwrap_or("").to_string(),
                c["action"].as_str().unwrap_or("").to_string(),
                fields,
            )
        })
        .collect()
}

#[derive(Clone)]
pub(crate) struct Clients {
    ec2: aws_sdk_ec2::Client,
    pub(crate) rds: aws_sdk_rds::Client,
    efs: aws_sdk_efs::Client,
    cache: aws_sdk_elasticache::Client,
    elb: aws_sdk_elasticloadbalancingv2::Client,
    asg: aws_sdk_autoscaling::Client,
    iam: aws_sdk_iam::Client,
    secrets: aws_sdk_secretsmanager::Client,
    pub(crate) ssm: aws_sdk_ssm::Client,
    pub(crate) s3: aws_sdk_s3::Client,
    backup: aws_sdk_backup::Client,
    logs: aws_sdk_cloudwatchlogs::Client,
    cloudwatch: aws_sdk_cloudwatch::Client,
    sns: aws_sdk_sns::Client,
    kms: aws_sdk_kms::Client,
}

pub(crate) async fn clients(emu: &Emulator) -> Clients {
    let c = emu.sdk_config().await;
    Clients {
        ec2: aws_sdk_ec2::Client::new(&c),
        rds: aws_sdk_rds::Client::new(&c),
        efs: aws_sdk_efs::Client::new(&c),
        cache: aws_sdk_elasticache::Client::new(&c),
        elb: aws_sdk_elasticloadbalancingv2::Client::new(&c),
        asg: aws_sdk_autoscaling::Client::new(&c),
        iam: aws_sdk_iam::Client::new(&c),
        secrets: aws_sdk_secretsmanager::Client::new(&c),
        ssm: aws_sdk_ssm::Client::new(&c),
        backup: aws_sdk_backup::Client::new(&c),
        logs: aws_sdk_cloudwatchlogs::Client::new(&c),
        cloudwatch: aws_sdk_cloudwatch::Client::new(&c),
        sns: aws_sdk_sns::Client::new(&c),
        kms: aws_sdk_kms::Client::new(&c),
        // The emulator has no per-bucket host names.
        s3: aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::config::Builder::from(&c)
                .force_path_style(true)
                .build(),
        ),
    }
}

impl Clients {
    /// The tags of `bucket`, by key.
    pub(crate) async fn bucket_tags(&self, bucket: &str) -> BTreeMap<String, String> {
        let out = self.s3.get_bucket_tagging().bucket(bucket).send().await;
        let tags = out.unwrap_or_else(|e| panic!("GetBucketTagging {bucket}: {e:?}"));
        let pairs = tags.tag_set().iter();
        pairs
            .map(|t| (t.key().to_string(), t.value().to_string()))
            .collect()
    }
}

/// The stack's code bucket (the emulator's account is 123456789012).
fn code_bucket(stack: &str) -> String {
    format!("{stack}-{}-123456789012-code", crate::harness::REGION)
}

fn stack_filter(stack: &str) -> aws_sdk_ec2::types::Filter {
    aws_sdk_ec2::types::Filter::builder()
        .name("tag:moodlestack:stack")
        .values(stack)
        .build()
}

/// The stack's stable instances that are pending or running.
async fn running_stable(c: &Clients, stack: &str) -> Vec<String> {
    let filter = |name: &str, value: &[&str]| {
        let mut f = aws_sdk_ec2::types::Filter::builder().name(name);
        for v in value {
            f = f.values(*v);
        }
        f.build()
    };
    let out = c
        .ec2
        .describe_instances()
        .filters(stack_filter(stack))
        .filters(filter("tag:moodlestack:id", &["stable.instance"]))
        .filters(filter("instance-state-name", &["pending", "running"]))
        .send()
        .await
        .unwrap();
    out.reservations()
        .iter()
        .flat_map(|r| r.instances())
        .filter_map(|i| i.instance_id().map(str::to_string))
        .collect()
}

/// What the stable node's scripts log during an upgrade to `to` that fails once and succeeds on
/// systemd's retry: the lines of `docs/upgrading.md`, which `moodle.rs` makes the real scripts
/// print against real Moodle 4.5.5 (and checks that `apply` reads them as here).
fn upgrade_lines(to: &str) -> Vec<String> {
    [
        "moodle-install-upgrade: database: pending",
        "moodle-install-upgrade: maintenance mode on for the upgrade",
        "moodle-install-upgrade: UPGRADE FAILED: the site stays in maintenance mode (503 \
         everywhere). Fix it, then systemctl restart moodle-install-upgrade, or moodlestack rollback",
        "moodle-install-upgrade: database: pending",
        "moodle-install-upgrade: maintenance mode on for the upgrade",
        "moodle-install-upgrade: database: current",
        "moodle-install-upgrade: maintenance mode off",
        "moodle-smoke-test: health check /moodlestack-health: ok (200 serving)",
        "moodle-smoke-test: login page: ok (200)",
        "moodle-smoke-test: cron run: ok",
    ]
    .iter()
    .map(|l| l.to_string())
    .chain([format!("moodle-smoke-test: passed ({to})")])
    .collect()
}

/// Plays the new stable node's part of an upgrade on the emulator, where no node boots: once a
/// stable instance other than `old` runs, its CloudWatch agent's stream in the stack's
/// `install-upgrade` group gets [`upgrade_lines`]. Returns the node's id.
async fn play_the_stable_node(c: Clients, stack: String, old: Vec<String>, to: &str) -> String {
    let deadline = std::time::Instant::now() + Duration::from_secs(300);
    let node = loop {
        if let Some(id) = running_stable(&c, &stack)
            .await
            .into_iter()
            .find(|i| !old.contains(i))
        {
            break id;
        }
        assert!(std::time::Instant::now() < deadline, "no new stable node");
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    let group = format!("/moodlestack/{stack}/install-upgrade");
    c.logs
        .create_log_stream()
        .log_group_name(&group)
        .log_stream_name(&node)
        .send()
        .await
        .unwrap();
    let now = i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap();
    let mut put = c
        .logs
        .put_log_events()
        .log_group_name(&group)
        .log_stream_name(&node);
    for (i, line) in upgrade_lines(to).into_iter().enumerate() {
        put = put.log_events(
            aws_sdk_cloudwatchlogs::types::InputLogEvent::builder()
                .timestamp(now + i64::try_from(i).unwrap())
                .message(line)
                .build()
                .unwrap(),
        );
    }
    put.send().await.unwrap();
    node
}

/// The apply after a code change from `from` to `to` followed the stable node `node`: after the
/// apply's report, each of its lines as it came, the failed attempt as a note, and the result.
fn assert_upgrade_followed(out: &str, err: &str, node: &str, from: &str, to: &str) {
    let header =
        format!("Moodle upgrade {from} -> {to}: the stable node {node} upgrades the database now.");
    let at = |what: &str| {
        out.find(what)
            .unwrap_or_else(|| panic!("`{what}` not in the apply's output:\n{out}\n{err}"))
    };
    assert!(at("Apply complete") < at(&header), "{out}");
    let mut last = at(&header);
    for line in upgrade_lines(to) {
        let shown = format!("{node} stable install-upgrade {line}");
        let i = out[last..]
            .find(&shown)
            .unwrap_or_else(|| panic!("`{shown}` not (in order) in:\n{out}"));
        last += i;
    }
    assert!(
        err.contains("note: this attempt failed on the stable node; the site stays in maintenance"),
        "{err}"
    );
    assert!(
        out[last..].contains(&format!(
            "Upgrade to {to} done: the database is upgraded, maintenance mode is off and the \
             smoke test passed on the stable node {node}."
        )),
        "{out}"
    );
}

/// The EC2 id of the resource whose `moodlestack:id` tag is `id`.
pub(crate) async fn ec2_id(c: &Clients, stack: &str, id: &str) -> String {
    let tags = c
        .ec2
        .describe_tags()
        .filters(
            aws_sdk_ec2::types::Filter::builder()
                .name("key")
                .values("moodlestack:id")
                .build(),
        )
        .filters(
            aws_sdk_ec2::types::Filter::builder()
                .name("value")
                .values(id)
                .build(),
        )
        .send()
        .await
        .unwrap();
    let mut found = Vec::new();
    for t in tags.tags() {
        let rid = t.resource_id().unwrap().to_string();
        let all = c
            .ec2
            .describe_tags()
            .filters(
                aws_sdk_ec2::types::Filter::builder()
                    .name("resource-id")
                    .values(&rid)
                    .build(),
            )
            .send()
            .await
            .unwrap();
        if all
            .tags()
            .iter()
            .any(|t| t.key() == Some("moodlestack:stack") && t.value() == Some(stack))
        {
            found.push(rid);
        }
    }
    found.sort();
    found.dedup();
    assert_eq!(
        found.len(),
        1,
        "{id}: expected one EC2 resource, found {found:?}"
    );
    found.remove(0)
}

async fn target_group_arn(c: &Clients, stack: &str) -> String {
    let tgs = c
        .elb
        .describe_target_groups()
        .names(format!("{stack}-web"))
        .send()
        .await
        .unwrap();
    tgs.target_groups()[0]
        .target_group_arn()
        .unwrap()
        .to_string()
}

async fn load_balancer_arn(c: &Clients, stack: &str) -> String {
    let lbs = c
        .elb
        .describe_load_balancers()
        .names(format!("{stack}-alb"))
        .send()
        .await
        .unwrap();
    lbs.load_balancers()[0]
        .load_balancer_arn()
        .unwrap()
        .to_string()
}

/// Whether IAM knows the role named `name`.
async fn role_exists(c: &Clients, name: &str) -> bool {
    c.iam.get_role().role_name(name).send().await.is_ok()
}

async fn dereg_delay(c: &Clients, tg: &str) -> String {
    let attrs = c
        .elb
        .describe_target_group_attributes()
        .target_group_arn(tg)
        .send()
        .await
        .unwrap();
    attrs
        .attributes()
        .iter()
        .find(|a| a.key() == Some("deregistration_delay.timeout_seconds"))
        .and_then(|a| a.value())
        .unwrap_or_default()
        .to_string()
}

async fn asg(c: &Clients, stack: &str) -> Option<aws_sdk_autoscaling::types::AutoScalingGroup> {
    let out = c
        .asg
        .describe_auto_scaling_groups()
        .auto_scaling_group_names(format!("{stack}-web"))
        .send()
        .await
        .unwrap();
    out.auto_scaling_groups().first().cloned()
}

/// The default version of the web launch template.
async fn web_lt_default_version(c: &Clients, stack: &str) -> i64 {
    let lt = c
        .ec2
        .describe_launch_templates()
        .launch_template_names(format!("{stack}-web"))
        .send()
        .await
        .unwrap();
    lt.launch_templates()[0].default_version_number().unwrap()
}

/// The stack's standalone database instance (`{stack}-db`), as RDS describes it.
async fn db_instance(c: &Clients, stack: &str) -> aws_sdk_rds::types::DbInstance {
    let out = c
        .rds
        .describe_db_instances()
        .db_instance_identifier(format!("{stack}-db"))
        .send()
        .await
        .unwrap();
    out.db_instances()[0].clone()
}

/// A database instance's tags, by key.
fn db_tags(db: &aws_sdk_rds::types::DbInstance) -> BTreeMap<&str, &str> {
    let tags = db.tag_list().iter();
    tags.filter_map(|t| Some((t.key()?, t.value()?))).collect()
}

/// The ARN of a database instance's RDS-managed master secret.
fn master_secret(db: &aws_sdk_rds::types::DbInstance) -> String {
    let secret = db.master_user_secret().and_then(|s| s.secret_arn());
    secret.expect("a managed master secret").to_string()
}

/// The master secret of `restored`, a standalone database restored from a snapshot, as the stack
/// `args` serves it: RDS manages it in a new secret (a restore cannot ask for one: moodlestack
/// turns it on once the instance is available), not `before`'s, Secrets Manager holds it, and
/// `outputs` names it.
async fn restored_secret(
    emu: &Emulator,
    c: &Clients,
    args: &[String],
    restored: &aws_sdk_rds::types::DbInstance,
    before: &aws_sdk_rds::types::DbInstance,
) -> String {
    let secret = master_secret(restored);
    assert_ne!(secret, master_secret(before), "a new master secret");
    let held = c.secrets.describe_secret().secret_id(&secret).send().await;
    let held = held.unwrap_or_else(|e| panic!("DescribeSecret {secret}: {e:?}"));
    assert_eq!(held.deleted_date(), None, "{held:?}");
    let out = ms_ok(emu, &cmd(&["outputs", "--json"], args), 0);
    let outputs: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(outputs["db_secret_arn"], secret.as_str(), "{out}");
    secret
}

/// A plan's changes by logical id: (action, changed fields).
type ById<'a> = std::collections::BTreeMap<&'a str, (&'a str, &'a Vec<String>)>;

/// `id` is planned as an update whose changed fields include `fields`.
fn assert_updates(by_id: &ById<'_>, id: &str, fields: &[&str]) {
    let (action, changed) = by_id.get(id).unwrap_or_else(|| panic!("{id} changes"));
    assert_eq!(*action, "update", "{id}");
    for f in fields {
        assert!(changed.contains(&f.to_string()), "{id} {f}: {changed:?}");
    }
}

/// Drift made behind moodlestack's back, with plain clients.
/// Resources that carry the stack's tag but are not the stack's: a bastion's Elastic IP tagged
/// `moodlestack:stack` (no `moodlestack:id`), and an untagged listener somebody added to the
/// stack's load balancer. Their physical ids: the address's, the listener's.
async fn make_foreign(c: &Clients, stack: &str) -> [String; 2] {
    let tag = |k: &str, v: &str| aws_sdk_ec2::types::Tag::builder().key(k).value(v).build();
    let eip = c
        .ec2
        .allocate_address()
        .domain(aws_sdk_ec2::types::DomainType::Vpc)
        .tag_specifications(
            aws_sdk_ec2::types::TagSpecification::builder()
                .resource_type(aws_sdk_ec2::types::ResourceType::ElasticIp)
                .tags(tag("moodlestack:stack", stack))
                .tags(tag("Name", "bastion"))
                .build(),
        )
        .send()
        .await
        .unwrap();
    let listener = c
        .elb
        .create_listener()
        .load_balancer_arn(load_balancer_arn(c, stack).await)
        .port(8080)
        .protocol(aws_sdk_elasticloadbalancingv2::types::ProtocolEnum::Http)
        .default_actions(
            aws_sdk_elasticloadbalancingv2::types::Action::builder()
                .r#type(aws_sdk_elasticloadbalancingv2::types::ActionTypeEnum::Forward)
                .target_group_arn(target_group_arn(c, stack).await)
                .build(),
        )
        .send()
        .await
        .unwrap();
    [
        eip.allocation_id().unwrap().to_string(),
        listener.listeners()[0].listener_arn().unwrap().to_string(),
    ]
}

/// The mixed instances policy of the stack's group as read back, ready to resend (moto drops
/// the policy of a group updated without one; AWS keeps it, and wants the template by id or by
/// name, not both, as describe reports it).
async fn resendable_policy(
    c: &Clients,
    stack: &str,
) -> aws_sdk_autoscaling::types::MixedInstancesPolicy {
    let group = asg(c, stack).await.expect("asg");
    let mut policy = group
        .mixed_instances_policy()
        .cloned()
        .expect("mixed instances policy");
    if let Some(lt) = policy.launch_template.as_mut() {
        if let Some(spec) = lt.launch_template_specification.as_mut() {
            spec.launch_template_name = None;
        }
    }
    policy
}

/// What moves the stack's web fleet, read with plain clients: its scaling policies as (name,
/// type, metric, target, warm-up, scale-in disabled), its scheduled actions as (name,
/// recurrence, time zone, min, max, desired) and its lifecycle hooks as (name, transition,
/// heartbeat timeout, default result, whether it has a notification target or role).
#[allow(clippy::type_complexity)]
async fn scaling_of(
    c: &Clients,
    stack: &str,
) -> (
    Vec<(String, String, String, f64, i32, bool)>,
    Vec<(String, String, String, i32, i32, i32)>,
    Vec<(String, String, i32, String, bool)>,
) {
    let group = format!("{stack}-web");
    let policies = c
        .asg
        .describe_policies()
        .auto_scaling_group_name(&group)
        .send()
        .await
        .unwrap();
    let policies = policies
        .scaling_policies()
        .iter()
        .map(|p| {
            let tt = p.target_tracking_configuration();
            (
                p.policy_name().unwrap_or_default().to_string(),
                p.policy_type().unwrap_or_default().to_string(),
                tt.and_then(|t| t.predefined_metric_specification())
                    .and_then(|m| m.predefined_metric_type())
                    .map(|m| m.as_str().to_string())
                    .unwrap_or_default(),
                tt.and_then(|t| t.target_value()).unwrap_or_default(),
                p.estimated_instance_warmup().unwrap_or_default(),
                tt.and_then(|t| t.disable_scale_in()).unwrap_or(false),
            )
        })
        .collect();
    let actions = c
        .asg
        .describe_scheduled_actions()
        .auto_scaling_group_name(&group)
        .send()
        .await
        .unwrap();
    let mut actions: Vec<_> = actions
        .scheduled_update_group_actions()
        .iter()
        .map(|a| {
            (
                a.scheduled_action_name().unwrap_or_default().to_string(),
                a.recurrence().unwrap_or_default().to_string(),
                a.time_zone().unwrap_or_default().to_string(),
                a.min_size().unwrap_or(-1),
                a.max_size().unwrap_or(-1),
                a.desired_capacity().unwrap_or(-1),
            )
        })
        .collect();
    actions.sort();
    let hooks = c
        .asg
        .describe_lifecycle_hooks()
        .auto_scaling_group_name(&group)
        .send()
        .await
        .unwrap();
    let hooks = hooks
        .lifecycle_hooks()
        .iter()
        .map(|h| {
            (
                h.lifecycle_hook_name().unwrap_or_default().to_string(),
                h.lifecycle_transition().unwrap_or_default().to_string(),
                h.heartbeat_timeout().unwrap_or_default(),
                h.default_result().unwrap_or_default().to_string(),
                h.notification_target_arn().is_some() || h.role_arn().is_some(),
            )
        })
        .collect();
    (policies, actions, hooks)
}

/// The exam-week schedule of `stacks/production.yaml`, as `scaling_of` reads it (-1: no max,
/// the group keeps its own).
fn exam_weeks() -> Vec<(String, String, String, i32, i32, i32)> {
    let tz = "Europe/Madrid".to_string();
    vec![
        (
            "exam-morning".into(),
            "30 6 * JAN,JUN MON-FRI".into(),
            tz.clone(),
            6,
            -1,
            6,
        ),
        (
            "exam-night".into(),
            "0 22 * JAN,JUN MON-FRI".into(),
            tz,
            2,
            -1,
            2,
        ),
    ]
}

async fn make_drift(c: &Clients, stack: &str) {
    // The target group's deregistration delay.
    let tg = target_group_arn(c, stack).await;
    c.elb
        .modify_target_group_attributes()
        .target_group_arn(&tg)
        .attributes(
            aws_sdk_elasticloadbalancingv2::types::TargetGroupAttribute::builder()
                .key("deregistration_delay.timeout_seconds")
                .value("5")
                .build(),
        )
        .send()
        .await
        .unwrap();
    // A rule of the web security group (HTTP from the ALB's group).
    let web_sg = ec2_id(c, stack, "sg.web").await;
    let alb_sg = ec2_id(c, stack, "sg.alb").await;
    let rules = c
        .ec2
        .describe_security_group_rules()
        .filters(
            aws_sdk_ec2::types::Filter::builder()
                .name("group-id")
                .values(&web_sg)
                .build(),
        )
        .send()
        .await
        .unwrap();
    let rule = rules
        .security_group_rules()
        .iter()
        .find(|r| {
            r.is_egress() == Some(false)
                && r.from_port() == Some(80)
                && r.referenced_group_info().and_then(|g| g.group_id()) == Some(alb_sg.as_str())
        })
        .and_then(|r| r.security_group_rule_id())
        .expect("the web group admits HTTP from the ALB's group")
        .to_string();
    c.ec2
        .revoke_security_group_ingress()
        .group_id(&web_sg)
        .security_group_rule_ids(rule)
        .send()
        .await
        .unwrap();
    // The group's max (the update resends the mixed instances policy: see resendable_policy).
    let policy = resendable_policy(c, stack).await;
    c.asg
        .update_auto_scaling_group()
        .auto_scaling_group_name(format!("{stack}-web"))
        .mixed_instances_policy(policy)
        .max_size(9)
        .send()
        .await
        .unwrap();
    // The database CPU alarm's threshold (PutMetricAlarm rewrites the whole alarm: the rest is
    // sent as it is).
    set_alarm_threshold(c, &format!("{stack}-db-cpu"), 99.0).await;
    // A tag of the VPC.
    let vpc = ec2_id(c, stack, "net.vpc").await;
    c.ec2
        .delete_tags()
        .resources(&vpc)
        .tags(aws_sdk_ec2::types::Tag::builder().key("Name").build())
        .send()
        .await
        .unwrap();
    // A resource tagged with the stack that the stack does not declare.
    c.ec2
        .create_security_group()
        .group_name(format!("{stack}-stray"))
        .description("made outside moodlestack")
        .vpc_id(&vpc)
        .tag_specifications(
            aws_sdk_ec2::types::TagSpecification::builder()
                .resource_type(aws_sdk_ec2::types::ResourceType::SecurityGroup)
                .tags(
                    aws_sdk_ec2::types::Tag::builder()
                        .key("moodlestack:stack")
                        .value(stack)
                        .build(),
                )
                .tags(
                    aws_sdk_ec2::types::Tag::builder()
                        .key("moodlestack:id")
                        .value("sg.stray")
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap();
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// The command line `head` followed by `args`.
/// `destroy` as the tests run it: no questions, no final snapshot, the data stores too.
pub(crate) const DESTROY: [&str; 4] = [
    "destroy",
    "--auto-approve",
    "--skip-final-snapshot",
    "--allow-data-loss",
];

/// Owned arguments from string literals.
pub(crate) fn owned(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| (*s).to_string()).collect()
}

fn cmd<'a>(head: &[&'a str], args: &'a [String]) -> Vec<&'a str> {
    let mut v = head.to_vec();
    v.extend(strs(args));
    v
}

/// The ids `id` reads from `items` (those that have one).
fn ids<T>(items: &[T], id: impl Fn(&T) -> Option<&str>) -> Vec<String> {
    items
        .iter()
        .filter_map(|x| id(x).map(str::to_string))
        .collect()
}

/// The names `name` reads from `items` that start with `{stack}-`.
fn named<T>(items: &[T], stack: &str, name: impl Fn(&T) -> Option<&str>) -> Vec<String> {
    let prefix = format!("{stack}-");
    ids(items, name)
        .into_iter()
        .filter(|n| n.starts_with(&prefix))
        .collect()
}

/// Nothing tagged with `stack` is left in any service.
pub(crate) async fn assert_nothing_left(c: &Clients, stack: &str) {
    // Every EC2 kind, described with the stack's tag filter (moto keeps the tags of deleted
    // resources in DescribeTags, so that call cannot tell what is left).
    let e = &c.ec2;
    let f = || stack_filter(stack);
    let mut left: Vec<String> = Vec::new();
    let r = e.describe_vpcs().filters(f()).send().await.unwrap();
    left.extend(ids(r.vpcs(), |x| x.vpc_id()));
    let r = e.describe_subnets().filters(f()).send().await.unwrap();
    left.extend(ids(r.subnets(), |x| x.subnet_id()));
    let r = e
        .describe_internet_gateways()
        .filters(f())
        .send()
        .await
        .unwrap();
    left.extend(ids(r.internet_gateways(), |x| x.internet_gateway_id()));
    let r = e.describe_route_tables().filters(f()).send().await.unwrap();
    left.extend(ids(r.route_tables(), |x| x.route_table_id()));
    let r = e
        .describe_security_groups()
        .filters(f())
        .send()
        .await
        .unwrap();
    left.extend(ids(r.security_groups(), |x| x.group_id()));
    let r = e.describe_addresses().filters(f()).send().await.unwrap();
    left.extend(ids(r.addresses(), |x| x.allocation_id()));
    let r = e
        .describe_launch_templates()
        .filters(f())
        .send()
        .await
        .unwrap();
    left.extend(ids(r.launch_templates(), |x| x.launch_template_id()));
    // Deleted NAT gateways and terminated instances stay describable for a while on AWS too.
    let r = e.describe_nat_gateways().filter(f()).send().await.unwrap();
    left.extend(ids(r.nat_gateways(), |x| {
        x.nat_gateway_id()
            .filter(|_| x.state() != Some(&aws_sdk_ec2::types::NatGatewayState::Deleted))
    }));
    let r = e.describe_instances().filters(f()).send().await.unwrap();
    let instances: Vec<_> = r
        .reservations()
        .iter()
        .flat_map(|r| r.instances())
        .collect();
    left.extend(ids(&instances, |i| {
        i.instance_id().filter(|_| {
            i.state().and_then(|s| s.name())
                != Some(&aws_sdk_ec2::types::InstanceStateName::Terminated)
        })
    }));
    let dbs = c.rds.describe_db_instances().send().await.unwrap();
    left.extend(ids(dbs.db_instances(), |d| {
        d.db_instance_identifier()
            .filter(|_| d.tag_list().iter().any(|t| t.value() == Some(stack)))
    }));
    let fss = c.efs.describe_file_systems().send().await.unwrap();
    left.extend(ids(fss.file_systems(), |f| {
        Some(f.file_system_id()).filter(|_| f.tags().iter().any(|t| t.value() == stack))
    }));
    let rgs = c.cache.describe_replication_groups().send().await.unwrap();
    left.extend(named(rgs.replication_groups(), stack, |r| {
        r.replication_group_id()
    }));
    let lbs = c.elb.describe_load_balancers().send().await.unwrap();
    left.extend(named(lbs.load_balancers(), stack, |l| {
        l.load_balancer_name()
    }));
    let tgs = c.elb.describe_target_groups().send().await.unwrap();
    left.extend(named(tgs.target_groups(), stack, |t| t.target_group_name()));
    let node = format!("{stack}-{}-node", crate::harness::REGION);
    let found = [
        (
            asg(c, stack).await.is_some(),
            format!("{stack}-web (auto scaling group)"),
        ),
        (role_exists(c, &node).await, format!("{node} (IAM role)")),
        (
            role_exists(c, &format!("{stack}-{}-backup", crate::harness::REGION)).await,
            format!("{stack}-{}-backup (IAM role)", crate::harness::REGION),
        ),
        (
            c.iam
                .get_instance_profile()
                .instance_profile_name(&node)
                .send()
                .await
                .is_ok(),
            format!("{node} (instance profile)"),
        ),
    ];
    left.extend(found.into_iter().filter(|(f, _)| *f).map(|(_, what)| what));
    let vaults = c.backup.list_backup_vaults().send().await.unwrap();
    left.extend(named(vaults.backup_vault_list(), stack, |v| {
        v.backup_vault_name()
    }));
    let plans = c.backup.list_backup_plans().send().await.unwrap();
    left.extend(named(plans.backup_plans_list(), stack, |p| {
        p.backup_plan_name()
    }));
    let groups = log_groups(c, stack).await;
    left.extend(ids(&groups, |g| g.log_group_name()));
    let alarms = c
        .cloudwatch
        .describe_alarms()
        .alarm_name_prefix(format!("{stack}-"))
        .send()
        .await
        .unwrap();
    left.extend(ids(alarms.metric_alarms(), |a| a.alarm_name()));
    let topics = c.sns.list_topics().send().await.unwrap();
    left.extend(ids(topics.topics(), |t| {
        t.topic_arn()
            .filter(|a| a.ends_with(&format!(":{stack}-alerts")))
    }));
    let dashboards = c
        .cloudwatch
        .list_dashboards()
        .dashboard_name_prefix(format!("moodlestack-{stack}"))
        .send()
        .await
        .unwrap();
    left.extend(ids(dashboards.dashboard_entries(), |d| {
        d.dashboard_name()
            .filter(|n| *n == format!("moodlestack-{stack}"))
    }));
    let aliases = c.kms.list_aliases().send().await.unwrap();
    left.extend(ids(aliases.aliases(), |a| {
        a.alias_name()
            .filter(|n| n.starts_with(&format!("alias/moodlestack/{stack}/")))
    }));
    let buckets = c.s3.list_buckets().send().await.unwrap();
    left.extend(ids(buckets.buckets(), |b| {
        b.name().filter(|n| n.starts_with(&format!("{stack}-")))
    }));
    let secrets = c.secrets.list_secrets().send().await.unwrap();
    left.extend(ids(secrets.secret_list(), |s| {
        s.name()
            .filter(|_| s.tags().iter().any(|t| t.value() == Some(stack)))
    }));
    if c.ssm
        .get_parameter()
        .name(format!("/moodlestack/{stack}/lease"))
        .send()
        .await
        .is_ok()
    {
        left.push("the apply lease".into());
    }
    assert!(
        left.is_empty(),
        "destroy left resources tagged with {stack}: {left:?}"
    );
}

/// The metric alarm `name`, as a plain client sees it.
async fn alarm(c: &Clients, name: &str) -> aws_sdk_cloudwatch::types::MetricAlarm {
    let out = c
        .cloudwatch
        .describe_alarms()
        .alarm_names(name)
        .send()
        .await
        .unwrap();
    out.metric_alarms()
        .first()
        .unwrap_or_else(|| panic!("alarm {name} exists"))
        .clone()
}

/// Rewrites the alarm `name` with another threshold, everything else as it is (drift).
async fn set_alarm_threshold(c: &Clients, name: &str, threshold: f64) {
    let a = alarm(c, name).await;
    c.cloudwatch
        .put_metric_alarm()
        .alarm_name(name)
        .set_alarm_description(a.alarm_description().map(str::to_string))
        .set_namespace(a.namespace().map(str::to_string))
        .set_metric_name(a.metric_name().map(str::to_string))
        .set_dimensions(Some(a.dimensions().to_vec()))
        .set_statistic(a.statistic().cloned())
        .set_period(a.period())
        .set_evaluation_periods(a.evaluation_periods())
        .set_datapoints_to_alarm(a.datapoints_to_alarm())
        .threshold(threshold)
        .set_comparison_operator(a.comparison_operator().cloned())
        .set_treat_missing_data(a.treat_missing_data().map(str::to_string))
        .set_alarm_actions(Some(a.alarm_actions().to_vec()))
        .set_ok_actions(Some(a.ok_actions().to_vec()))
        .send()
        .await
        .unwrap();
}

/// The alarms every stack has (`<stack>-<what>`); the demo and production run MySQL (the
/// free-storage alarm) with a fleet minimum above 0.
const ALARMS: &[&str] = &[
    "alb-5xx",
    "cron-heartbeat",
    "db-connections",
    "db-cpu",
    "db-free-storage",
    "db-memory",
    "efs-throughput",
    "fleet-below-min",
    "fpm-max-children",
    "redis-evictions",
    "redis-memory",
    "response-time",
    "slow-requests",
    "unhealthy-hosts",
];

/// Checks with plain clients what observability the stack has: the six log groups with their
/// retention and the stack's KMS key, the two metric filters, every alarm notifying the topic
/// (itself encrypted with that key), the topic's e-mail subscriptions and the dashboard.
pub(crate) async fn assert_observability(
    c: &Clients,
    stack: &str,
    retention: i32,
    emails: &[&str],
) {
    let key = c
        .kms
        .describe_key()
        .key_id(format!("alias/moodlestack/{stack}/observability"))
        .send()
        .await
        .expect("the stack's KMS key has its alias");
    let key = key.key_metadata().unwrap();
    let key_arn = key.arn().unwrap().to_string();
    assert_eq!(
        key.key_state(),
        Some(&aws_sdk_kms::types::KeyState::Enabled)
    );
    let mut seen: Vec<(String, Option<i32>, Option<String>)> = log_groups(c, stack)
        .await
        .iter()
        .map(|g| {
            (
                g.log_group_name().unwrap().to_string(),
                g.retention_in_days(),
                g.kms_key_id().map(str::to_string),
            )
        })
        .collect();
    seen.sort();
    let mut want: Vec<(String, Option<i32>, Option<String>)> = [
        "apache-access",
        "apache-error",
        "boot",
        "cron",
        "install-upgrade",
        "php-fpm",
        "php-fpm-slow",
    ]
    .iter()
    .map(|s| {
        (
            format!("/moodlestack/{stack}/{s}"),
            Some(retention),
            Some(key_arn.clone()),
        )
    })
    .collect();
    want.sort();
    assert_eq!(seen, want, "log groups (name, retention, KMS key)");
    let namespace = format!("Moodlestack/{stack}");
    for (source, metric) in [
        ("php-fpm", "FpmMaxChildrenReached"),
        ("php-fpm-slow", "SlowRequests"),
    ] {
        let filters = c
            .logs
            .describe_metric_filters()
            .log_group_name(format!("/moodlestack/{stack}/{source}"))
            .send()
            .await
            .unwrap();
        let found: Vec<(&str, &str)> = filters
            .metric_filters()
            .iter()
            .flat_map(|f| f.metric_transformations())
            .map(|t| (t.metric_namespace(), t.metric_name()))
            .collect();
        assert_eq!(
            found,
            vec![(namespace.as_str(), metric)],
            "{source} filters"
        );
    }
    let topics = c.sns.list_topics().send().await.unwrap();
    let topic = topics
        .topics()
        .iter()
        .filter_map(|t| t.topic_arn())
        .find(|a| a.ends_with(&format!(":{stack}-alerts")))
        .expect("the alert topic exists")
        .to_string();
    let attrs = c
        .sns
        .get_topic_attributes()
        .topic_arn(&topic)
        .send()
        .await
        .unwrap();
    assert_eq!(
        attrs.attributes().and_then(|a| a.get("KmsMasterKeyId")),
        Some(&key_arn),
        "the topic is encrypted with the stack's key"
    );
    let subs = c
        .sns
        .list_subscriptions_by_topic()
        .topic_arn(&topic)
        .send()
        .await
        .unwrap();
    let mut endpoints: Vec<(&str, &str)> = subs
        .subscriptions()
        .iter()
        .map(|s| (s.protocol().unwrap(), s.endpoint().unwrap()))
        .collect();
    endpoints.sort();
    let mut want_subs: Vec<(&str, &str)> = emails.iter().map(|e| ("email", *e)).collect();
    want_subs.sort();
    assert_eq!(endpoints, want_subs, "subscriptions");
    let alarms = c
        .cloudwatch
        .describe_alarms()
        .alarm_name_prefix(format!("{stack}-"))
        .send()
        .await
        .unwrap();
    let mut names: Vec<String> = Vec::new();
    for a in alarms.metric_alarms() {
        let name = a.alarm_name().unwrap();
        assert_eq!(
            a.alarm_actions(),
            std::slice::from_ref(&topic),
            "{name} notifies the topic"
        );
        assert_eq!(
            a.ok_actions(),
            std::slice::from_ref(&topic),
            "{name} says when it is OK"
        );
        names.push(name.trim_start_matches(&format!("{stack}-")).to_string());
    }
    names.sort();
    assert_eq!(names, ALARMS, "the stack's alarms");
    let heartbeat = alarm(c, &format!("{stack}-cron-heartbeat")).await;
    assert_eq!(
        (
            heartbeat.namespace(),
            heartbeat.metric_name(),
            heartbeat.treat_missing_data()
        ),
        (
            Some(namespace.as_str()),
            Some("CronHeartbeat"),
            Some("breaching")
        ),
        "a missing cron heartbeat is an alarm"
    );
    let dashboard = c
        .cloudwatch
        .get_dashboard()
        .dashboard_name(format!("moodlestack-{stack}"))
        .send()
        .await
        .expect("the dashboard exists");
    let body: J = serde_json::from_str(dashboard.dashboard_body().unwrap()).unwrap();
    let widgets = body["widgets"].as_array().expect("widgets");
    let text = body.to_string();
    assert!(widgets.len() >= 8, "{text}");
    for metric in [
        "TargetResponseTime",
        "GroupInServiceInstances",
        "CronHeartbeat",
    ] {
        assert!(
            text.contains(metric),
            "the dashboard shows {metric}: {text}"
        );
    }
    assert!(!text.contains("@@ref:"), "references resolved: {text}");
}

/// The stack's backup plan as a plain client sees it: (rule name, vault, schedule, time zone,
/// retention days) and the selection's resources, sorted; the vault's `moodlestack:id` tag.
async fn backup_of(
    c: &Clients,
    stack: &str,
) -> (
    (String, String, String, String, i64),
    Vec<String>,
    Option<String>,
) {
    let vault = format!("{stack}-backups");
    let arn = c
        .backup
        .describe_backup_vault()
        .backup_vault_name(&vault)
        .send()
        .await
        .unwrap()
        .backup_vault_arn()
        .unwrap()
        .to_string();
    let tags = c
        .backup
        .list_tags()
        .resource_arn(&arn)
        .send()
        .await
        .unwrap();
    let vault_id = tags.tags().and_then(|t| t.get("moodlestack:id")).cloned();
    let plans = c.backup.list_backup_plans().send().await.unwrap();
    let plan_id = plans
        .backup_plans_list()
        .iter()
        .find(|p| p.backup_plan_name() == Some(&format!("{stack}-backup")))
        .and_then(|p| p.backup_plan_id())
        .expect("the backup plan exists")
        .to_string();
    let plan = c
        .backup
        .get_backup_plan()
        .backup_plan_id(&plan_id)
        .send()
        .await
        .unwrap();
    let rule = &plan.backup_plan().unwrap().rules()[0];
    let rule = (
        rule.rule_name().to_string(),
        rule.target_backup_vault_name().to_string(),
        rule.schedule_expression().unwrap_or_default().to_string(),
        rule.schedule_expression_timezone()
            .unwrap_or_default()
            .to_string(),
        rule.lifecycle()
            .and_then(|l| l.delete_after_days())
            .unwrap_or(0),
    );
    let selections = c
        .backup
        .list_backup_selections()
        .backup_plan_id(&plan_id)
        .send()
        .await
        .unwrap();
    let selections = selections.backup_selections_list();
    assert_eq!(selections.len(), 1, "{selections:?}");
    let selection = c
        .backup
        .get_backup_selection()
        .backup_plan_id(&plan_id)
        .selection_id(selections[0].selection_id().unwrap())
        .send()
        .await
        .unwrap();
    let mut resources = selection.backup_selection().unwrap().resources().to_vec();
    resources.sort();
    (rule, resources, vault_id)
}

/// The snapshots of the stack's database (`{stack}-db`), every type (automated, manual, final).
async fn db_snapshots(c: &Clients, stack: &str) -> Vec<aws_sdk_rds::types::DbSnapshot> {
    let out = c.rds.describe_db_snapshots();
    let out = out
        .db_instance_identifier(format!("{stack}-db"))
        .send()
        .await;
    out.unwrap().db_snapshots().to_vec()
}

/// The stack's code versions' database snapshots: identifier -> tags.
async fn code_snapshots(c: &Clients, stack: &str) -> BTreeMap<String, BTreeMap<String, String>> {
    db_snapshots(c, stack)
        .await
        .iter()
        .filter(|s| {
            s.db_snapshot_identifier()
                .is_some_and(|i| i.starts_with(&format!("{stack}-code-")))
        })
        .map(|s| {
            (
                s.db_snapshot_identifier().unwrap().to_string(),
                s.tag_list()
                    .iter()
                    .filter_map(|t| Some((t.key()?.to_string(), t.value()?.to_string())))
                    .collect(),
            )
        })
        .collect()
}

/// When the DB snapshot `id` was taken.
async fn snapshot_time(c: &Clients, id: &str) -> aws_sdk_rds::primitives::DateTime {
    let out = c.rds.describe_db_snapshots().db_snapshot_identifier(id);
    let out = out.send().await.unwrap();
    out.db_snapshots()[0]
        .snapshot_create_time()
        .copied()
        .unwrap()
}

/// Every recovery point in the stack's vault: (ARN, status, resource, tags).
async fn vault_points(
    c: &Clients,
    stack: &str,
) -> Vec<(String, String, String, BTreeMap<String, String>)> {
    let points = c
        .backup
        .list_recovery_points_by_backup_vault()
        .backup_vault_name(format!("{stack}-backups"))
        .send()
        .await
        .unwrap();
    let mut out = Vec::new();
    for p in points.recovery_points() {
        let arn = p.recovery_point_arn().unwrap().to_string();
        let tags: BTreeMap<String, String> = c
            .backup
            .list_tags()
            .resource_arn(&arn)
            .send()
            .await
            .unwrap()
            .tags()
            .map(|t| t.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default();
        let status = p
            .status()
            .map(|s| s.as_str().to_string())
            .unwrap_or_default();
        let resource = p.resource_arn().unwrap_or_default().to_string();
        out.push((arn, status, resource, tags));
    }
    out
}

/// The stack's on-demand recovery points in its vault (the code versions' backups of moodledata,
/// released ones included), by their name (`moodlestack:name`): (ARN, status, resource, tags).
async fn code_backups(
    c: &Clients,
    stack: &str,
) -> BTreeMap<String, (String, String, String, BTreeMap<String, String>)> {
    vault_points(c, stack)
        .await
        .into_iter()
        .filter_map(|p| Some((p.3.get("moodlestack:name")?.clone(), p)))
        .collect()
}

/// The whole life of one stack.
async fn lifecycle(stack_file: &str, stack: &str, extra: &[&str]) {
    let emu = Emulator::start();
    let c = clients(&emu).await;
    let mut base: Vec<String> = vec![stack_file.into(), "--name".into(), stack.into()];
    base.extend(extra.iter().map(|s| s.to_string()));
    if stack_file.contains("production") {
        let cert = emu.import_certificate();
        base.extend([
            "--set".into(),
            format!("load_balancer.certificate_arn={cert}"),
        ]);
    }
    let args = |more: &[&str]| -> Vec<String> {
        let mut v = base.clone();
        v.extend(more.iter().map(|s| s.to_string()));
        v
    };

    // 1. A fresh plan creates everything and nothing else.
    let first = plan_changes(&emu, &strs(&args(&[])));
    assert!(first.len() > 25, "expected the whole stack, got {first:?}");
    assert!(
        first.iter().all(|(_, action, _)| action == "create"),
        "{first:?}"
    );
    // The same plan for a pull request: Markdown, one table row per change.
    let md = ms_ok(&emu, &cmd(&["plan", "--format", "markdown"], &args(&[])), 0);
    assert!(
        md.starts_with(&format!(
            "### moodlestack plan: `{stack}` (eu-west-1)\n\n**Plan: {} to create,",
            first.len()
        )),
        "{md}"
    );
    assert!(md.contains("| + | `net.vpc` | vpc | create |"), "{md}");
    assert_eq!(md.matches("\n| + | `").count(), first.len(), "{md}");
    let a = args(&["--detailed-exitcode"]);
    let plan_args = cmd(&["plan"], &a);
    ms_ok(&emu, &plan_args, 2);

    // 2. Apply, then the plan is clean.
    let a = args(&[]);
    let apply_args = cmd(&["apply", "--auto-approve"], &a);
    let (code, out, err) = ms(&emu, &cmd(&["apply", "--auto-approve", "--stats"], &a));
    assert_eq!(code, 0, "{out}\n{err}");
    // The code bucket is tagged by CreateBucket itself (the emulator's `s3-create-bucket-tags`
    // behaviour applies them as AWS does): the after-create tagging is only for an S3 that
    // dropped them.
    let stats = format!("{out}{err}");
    assert!(stats.contains("S3:CreateBucket"), "{stats}");
    assert!(!stats.contains("S3:PutBucketTagging"), "{stats}");
    ms_ok(&emu, &plan_args, 0);
    let tg = target_group_arn(&c, stack).await;
    let group = asg(&c, stack).await.expect("the auto scaling group exists");
    assert!(
        group.capacity_rebalance().unwrap_or(false),
        "capacity rebalancing is on"
    );
    let lb_attrs = c
        .elb
        .describe_load_balancer_attributes()
        .load_balancer_arn(load_balancer_arn(&c, stack).await)
        .send()
        .await
        .unwrap();
    assert!(
        lb_attrs.attributes().iter().any(|a| a.key()
            == Some("routing.http.drop_invalid_header_fields.enabled")
            && a.value() == Some("true")),
        "the ALB drops invalid header fields: {:?}",
        lb_attrs.attributes()
    );
    // The ALB's deletion protection follows the database's (on in production, off in the demo).
    let protected = stack_file.contains("production").to_string();
    assert!(
        lb_attrs.attributes().iter().any(
            |a| a.key() == Some("deletion_protection.enabled") && a.value() == Some(&protected)
        ),
        "the ALB's deletion protection is {protected}: {:?}",
        lb_attrs.attributes()
    );

    // The code bucket: tagged from its creation, closed to the public. The stable node puts the
    // code artefact there (tests/integration/node_code.rs runs that step); one is put here so
    // that destroy has to empty the bucket.
    let bucket = code_bucket(stack);
    let tags = c.bucket_tags(&bucket).await;
    assert_eq!(
        tags.get("moodlestack:id").map(String::as_str),
        Some("code.bucket"),
        "{tags:?}"
    );
    let pab =
        c.s3.get_public_access_block()
            .bucket(&bucket)
            .send()
            .await
            .unwrap();
    let pab = pab.public_access_block_configuration().unwrap();
    assert_eq!(
        (
            pab.block_public_acls(),
            pab.ignore_public_acls(),
            pab.block_public_policy(),
            pab.restrict_public_buckets()
        ),
        (Some(true), Some(true), Some(true), Some(true))
    );
    c.s3.put_object()
        .bucket(&bucket)
        .key("code/moodle-v4.5.5-forcedcache-test.tar.gz")
        .body(aws_sdk_s3::primitives::ByteStream::from_static(b"artefact"))
        .send()
        .await
        .unwrap();

    // Observability: log groups (retention, the stack's key), metric filters, every alarm
    // wired to the topic, the e-mail subscriptions and the dashboard.
    let (retention, emails) = if stack_file.contains("production") {
        (90, vec!["moodle-ops@example.org", "oncall@example.org"])
    } else {
        (30, vec!["ops@example.org"])
    };
    assert_observability(&c, stack, retention, &emails).await;

    // Backups: the vault, the plan's rule (the default schedule, daily at 03:00 UTC, as AWS
    // Backup's cron; 35 days) and its selection of exactly the database and the file system.
    let (rule, resources, vault_id) = backup_of(&c, stack).await;
    assert_eq!(
        rule,
        (
            "scheduled".to_string(),
            format!("{stack}-backups"),
            "cron(0 3 * * ? *)".to_string(),
            if stack_file.contains("production") {
                "Europe/Madrid"
            } else {
                "Etc/UTC"
            }
            .to_string(),
            35
        )
    );
    assert_eq!(vault_id.as_deref(), Some("backup.vault"));
    let db_arn = db_instance(&c, stack)
        .await
        .db_instance_arn()
        .unwrap()
        .to_string();
    let fs = c.efs.describe_file_systems().send().await.unwrap();
    let fs_arn = fs
        .file_systems()
        .iter()
        .find(|f| f.tags().iter().any(|t| t.value() == stack))
        .and_then(|f| f.file_system_arn())
        .unwrap()
        .to_string();
    let mut want = vec![db_arn.clone(), fs_arn.clone()];
    want.sort();
    assert_eq!(resources, want);
    // The snapshot of the first code version: taken before any node, tagged with it.
    let snaps = code_snapshots(&c, stack).await;
    let first = format!("{stack}-code-v4-5-5-php8-3");
    assert_eq!(snaps.keys().collect::<Vec<_>>(), [&first], "{snaps:?}");
    assert_eq!(snaps[&first]["moodlestack:code"], "v4.5.5 php8.3");
    assert_eq!(snaps[&first]["moodlestack:code-before"], "none");
    assert_eq!(snaps[&first]["moodlestack:id"], "db.snapshot");
    // The backup of moodledata for the first code version: an on-demand recovery point in the
    // stack's vault, completed before any node (apply waited for it), tagged with the version.
    let backups = code_backups(&c, stack).await;
    assert_eq!(backups.keys().collect::<Vec<_>>(), [&first], "{backups:?}");
    let (point, status, resource, tags) = &backups[&first];
    let point = point.clone();
    assert_eq!((status.as_str(), resource), ("COMPLETED", &fs_arn));
    assert_eq!(tags["moodlestack:code"], "v4.5.5 php8.3");
    assert_eq!(tags["moodlestack:code-before"], "none");
    assert_eq!(tags["moodlestack:id"], "files.backup");
    let (_, json, err) = ms(&emu, &cmd(&["backups", "--json"], &args(&[])));
    let listed: serde_json::Value =
        serde_json::from_str(&json).unwrap_or_else(|e| panic!("{e}: {json}{err}"));
    let listed = listed.as_array().expect("a list");
    let find = |id: &str| listed.iter().find(|p| p["id"] == id).cloned();
    let files = find(&point).unwrap_or_else(|| panic!("no recovery point {point}: {listed:?}"));
    assert_eq!(
        (
            &files["data"],
            &files["source"],
            &files["resource"],
            &files["status"]
        ),
        (
            &serde_json::json!("files"),
            &serde_json::json!("aws backup (on demand)"),
            &serde_json::json!(fs_arn),
            &serde_json::json!("COMPLETED")
        )
    );
    let db = find(&first).unwrap_or_else(|| panic!("no snapshot {first}: {listed:?}"));
    assert_eq!(
        (&db["data"], &db["source"], &db["resource"]),
        (
            &serde_json::json!("database"),
            &serde_json::json!("rds snapshot (manual)"),
            &serde_json::json!(format!("{stack}-db"))
        )
    );
    let text = ms_ok(&emu, &cmd(&["backups"], &args(&[])), 0);
    assert!(text.contains(&point) && text.contains(&first), "{text}");

    // The fleet's scaling, as plain clients see it: exactly what the stack file says.
    let production = stack_file.contains("production");
    let (policies, actions, hooks) = scaling_of(&c, stack).await;
    assert_eq!(
        policies,
        [(
            format!("{stack}-web-tracking"),
            "TargetTrackingScaling".to_string(),
            "ASGAverageCPUUtilization".to_string(),
            50.0,
            420,
            false
        )]
    );
    assert_eq!(actions, if production { exam_weeks() } else { vec![] });
    assert_eq!(
        hooks,
        [(
            format!("{stack}-web-drain"),
            "autoscaling:EC2_INSTANCE_TERMINATING".to_string(),
            300,
            "CONTINUE".to_string(),
            false
        )]
    );
    // The scaler and the schedule move the group behind moodlestack's back: the policy raises
    // the desired capacity; in production the exam-morning action holds the minimum at 6. The
    // next plan shows no change.
    let group_name = format!("{stack}-web");
    if production {
        c.asg
            .update_auto_scaling_group()
            .auto_scaling_group_name(&group_name)
            .mixed_instances_policy(resendable_policy(&c, stack).await)
            .min_size(6)
            .desired_capacity(7)
            .send()
            .await
            .unwrap();
    } else {
        c.asg
            .set_desired_capacity()
            .auto_scaling_group_name(&group_name)
            .desired_capacity(2)
            .send()
            .await
            .unwrap();
    }
    let moved = asg(&c, stack).await.expect("asg");
    let want_desired = if production { 7 } else { 2 };
    assert_eq!(moved.desired_capacity(), Some(want_desired));
    ms_ok(&emu, &plan_args, 0);

    // 3. Drift behind moodlestack's back shows exactly, and apply repairs it; what is not the
    // stack's is listed and left alone.
    let before_delay = dereg_delay(&c, &tg).await;
    make_drift(&c, stack).await;
    let foreign = make_foreign(&c, stack).await;
    // What was just made behind moodlestack's back shows in EC2's describes after a moment.
    crate::aws_special::settle().await;
    let (_, json, _) = ms(&emu, &cmd(&["plan", "--json"], &args(&[])));
    let plan: serde_json::Value = serde_json::from_str(&json).unwrap();
    let mut ignored: Vec<String> = plan["ignored"]
        .as_array()
        .expect("the plan lists what it leaves alone")
        .iter()
        .map(|o| o["physical_id"].as_str().unwrap().to_string())
        .collect();
    ignored.sort();
    let mut want = foreign.to_vec();
    want.sort();
    assert_eq!(ignored, want);
    let (_, text, _) = ms(&emu, &cmd(&["plan"], &args(&[])));
    assert!(
        text.contains(&format!(
            "Left alone: 2 resources tagged moodlestack:stack={stack} without moodlestack:id"
        )) && text.contains(&format!("  elastic_ip {} (Name: bastion)", foreign[0])),
        "{text}"
    );
    let drift = plan_changes(&emu, &strs(&args(&[])));
    let ids: BTreeSet<(String, String)> = drift
        .iter()
        .map(|(id, action, _)| (id.clone(), action.clone()))
        .collect();
    let want: BTreeSet<(String, String)> = [
        ("lb.tg", "update"),
        ("sg.web", "update"),
        ("web.asg", "update"),
        ("net.vpc", "update"),
        ("alarm.db_cpu", "update"),
        ("sg.stray", "delete"),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    assert_eq!(ids, want, "drift plan: {drift:?}");
    for (id, _, fields) in &drift {
        let want_fields: &[&str] = match id.as_str() {
            "lb.tg" => &["deregistration_delay"],
            "sg.web" => &["ingress"],
            "web.asg" => &["max_size"],
            "net.vpc" => &["tags"],
            "alarm.db_cpu" => &["threshold"],
            _ => &[],
        };
        assert_eq!(
            fields,
            &want_fields
                .iter()
                .map(|s| s.to_string())
                .collect::<Vec<_>>(),
            "{id}"
        );
    }
    ms_ok(&emu, &apply_args, 0);
    ms_ok(&emu, &plan_args, 0);
    assert_eq!(
        dereg_delay(&c, &tg).await,
        before_delay,
        "deregistration delay repaired"
    );
    let group = asg(&c, stack).await.expect("asg");
    assert_ne!(group.max_size(), Some(9), "max repaired");
    assert_eq!(
        alarm(&c, &format!("{stack}-db-cpu")).await.threshold(),
        Some(80.0),
        "the alarm's threshold repaired"
    );
    let sgs = c
        .ec2
        .describe_security_groups()
        .filters(stack_filter(stack))
        .send()
        .await
        .unwrap();
    assert!(
        sgs.security_groups()
            .iter()
            .all(|g| g.group_name() != Some(&format!("{stack}-stray"))),
        "the stray security group is deleted"
    );

    // 4. The stack file changes: web max, instance types, a database parameter, the PHP version;
    // for production also the Redis node type and replicas at once, the database storage (which
    // the emulator's storage autoscaling may have grown meanwhile) and an engine minor upgrade.
    let new_max = if production { 12 } else { 5 };
    let max_set = format!("web.max={new_max}");
    let mut more = vec![
        "--set",
        &max_set,
        "--set",
        "web.scaling.target=60",
        "--set",
        "web.instance_types=[m6i.large, c6i.large, t3.large, m5.large]",
        "--set",
        "database.parameters.long_query_time=3",
        "--set",
        "moodle.php_version=8.2",
    ];
    // An engine minor upgrade: the next minor of what the database runs now (the emulator's
    // automatic minor upgrades may already have raised it past the stack's release line).
    let next_minor = if production {
        let db = db_instance(&c, stack).await;
        let now = db.engine_version().unwrap().to_string();
        let (line, minor) = now.rsplit_once('.').expect("a minor version");
        format!("{line}.{}", minor.parse::<u32>().unwrap() + 1)
    } else {
        String::new()
    };
    let engine_set = format!("database.version={next_minor}");
    if !production {
        // The demo starts on MySQL 8.0 (see demo_stack_lifecycle): a major upgrade, whose new
        // parameter group (family mysql8.4) is created before the old one is deleted.
        more.extend(["--set", "database.version=8.4"]);
    }
    if production {
        more.extend([
            "--set",
            "cache.node_type=cache.r7g.xlarge",
            "--set",
            "cache.replicas=2",
            "--set",
            "database.storage_gb=400",
            "--set",
            &engine_set,
        ]);
    }
    let change = args(&more);
    let changed = plan_changes(&emu, &strs(&change));
    let by_id: ById<'_> = changed
        .iter()
        .map(|(id, a, f)| (id.as_str(), (a.as_str(), f)))
        .collect();
    if production {
        assert_updates(&by_id, "cache.redis", &["node_type", "num_cache_clusters"]);
        assert_updates(
            &by_id,
            "db.instance",
            &["allocated_storage", "engine_version"],
        );
    }
    assert_updates(
        &by_id,
        "web.asg",
        &["max_size", "instance_types", "launch_template_version"],
    );
    // A new target value is an in-place update of the policy, and nothing else of it.
    assert_eq!(
        by_id.get("web.scaling"),
        Some(&("update", &vec!["target_value".to_string()])),
        "{changed:?}"
    );
    let parameter_group = if production { "update" } else { "replace" };
    for (id, action) in [
        ("web.lt", "update"),
        ("stable.lt", "update"),
        ("stable.instance", "replace"),
        ("db.parameter_group", parameter_group),
        // A new PHP version is a new code version: a new snapshot before any node changes.
        ("db.snapshot", "replace"),
        // And a new backup of moodledata.
        ("files.backup", "replace"),
    ] {
        assert_eq!(by_id.get(id).map(|x| x.0), Some(action), "{changed:?}");
    }
    if !production {
        assert_updates(
            &by_id,
            "db.instance",
            &["engine_version", "parameter_group_name"],
        );
    }
    assert!(by_id["web.lt"].1.contains(&"user_data".to_string()));
    assert!(
        changed.iter().all(|(id, a, _)| a != "delete"
            && (a != "replace"
                || id == "stable.instance"
                || id == "db.snapshot"
                || id == "files.backup"
                || (!production && id == "db.parameter_group"))),
        "only the stable instance, the code version's snapshot and backup (and on a major \
         upgrade the parameter group) are replaced: {changed:?}"
    );
    let (_, text, _) = ms(&emu, &cmd(&["plan"], &change));
    assert!(
        text.contains("instance refresh"),
        "the plan says a rollout starts:\n{text}"
    );
    // The plan says it is a Moodle upgrade, from which code version to which, and its steps.
    assert!(
        text.contains(
            "Moodle upgrade: v4.5.5 php8.3 -> v4.5.5 php8.2. In order: (1) this \
             snapshot of the database is taken and waited for, before any node changes"
        ),
        "the plan names the upgrade:\n{text}"
    );

    let version_before = web_lt_default_version(&c, stack).await;
    // No node boots on the emulator: the new stable node's upgrade lines are played into its log
    // stream, and apply follows them.
    let player = tokio::spawn(play_the_stable_node(
        c.clone(),
        stack.to_string(),
        running_stable(&c, stack).await,
        "v4.5.5 php8.2",
    ));
    let (code, out, err) =
        tokio::task::block_in_place(|| ms(&emu, &cmd(&["apply", "--auto-approve"], &change)));
    assert_eq!(code, 0, "{out}\n{err}");
    let node = player.await.unwrap();
    assert_upgrade_followed(&out, &err, &node, "v4.5.5 php8.3", "v4.5.5 php8.2");
    // Progress goes to one stream (which one does not matter here).
    let applied = if err.contains("db.snapshot") {
        err
    } else {
        out
    };
    // The snapshot was available before either launch template changed (and so before any
    // node): the executor's own report, in the order things happened.
    let at = |what: &str| {
        applied
            .find(what)
            .unwrap_or_else(|| panic!("`{what}` not in the apply's output:\n{applied}"))
    };
    let snapshot_done = at("db.snapshot (db_snapshot): replaced");
    let backup_done = at("files.backup (backup_recovery_point): replaced");
    for lt in [
        "web.lt (launch_template): update...",
        "stable.lt (launch_template): update...",
    ] {
        assert!(
            snapshot_done < at(lt),
            "{lt} before the snapshot:\n{applied}"
        );
        assert!(
            backup_done < at(lt),
            "{lt} before moodledata's backup:\n{applied}"
        );
    }
    // And as AWS recorded it: the new snapshot, tagged with both code versions, before the web
    // launch template's new version; the first version's snapshot released, not deleted.
    let snaps = code_snapshots(&c, stack).await;
    let second = format!("{stack}-code-v4-5-5-php8-2");
    assert_eq!(snaps.len(), 2, "{snaps:?}");
    assert_eq!(snaps[&second]["moodlestack:code"], "v4.5.5 php8.2");
    assert_eq!(snaps[&second]["moodlestack:code-before"], "v4.5.5 php8.3");
    assert_eq!(snaps[&second]["moodlestack:id"], "db.snapshot");
    assert!(
        applied.contains("db.snapshot (db_snapshot): old one released (kept in AWS)"),
        "{applied}"
    );
    assert!(
        !snaps[&first].contains_key("moodlestack:id")
            && snaps[&first]["moodlestack:stack"] == stack,
        "the first snapshot is kept, released from the stack: {snaps:?}"
    );
    let snapshot_time = snapshot_time(&c, &second).await;
    let lt_versions = c
        .ec2
        .describe_launch_template_versions()
        .launch_template_name(format!("{stack}-web"))
        .versions("$Default")
        .send()
        .await
        .unwrap();
    let lt_time = *lt_versions.launch_template_versions()[0]
        .create_time()
        .unwrap();
    // (EC2 reports whole seconds: compared at that resolution.)
    assert!(
        snapshot_time.secs() <= lt_time.secs(),
        "the snapshot ({snapshot_time}) before the launch template version ({lt_time})"
    );
    // Moodledata's backup for the new version: its backup job COMPLETED before the launch
    // template's new version, the recovery point tagged with both versions, the first one kept
    // (released from the stack).
    let backups = code_backups(&c, stack).await;
    assert_eq!(backups.len(), 2, "{backups:?}");
    let (new_point, status, _, tags) = &backups[&second];
    assert_eq!(status, "COMPLETED");
    assert_eq!(tags["moodlestack:code"], "v4.5.5 php8.2");
    assert_eq!(tags["moodlestack:code-before"], "v4.5.5 php8.3");
    assert_eq!(tags["moodlestack:id"], "files.backup");
    let (_, status, _, tags) = &backups[&first];
    assert!(
        status == "COMPLETED"
            && !tags.contains_key("moodlestack:id")
            && tags["moodlestack:stack"] == stack,
        "the first backup is kept, released from the stack: {backups:?}"
    );
    assert!(
        applied.contains("files.backup (backup_recovery_point): old one released (kept in AWS)"),
        "{applied}"
    );
    let jobs = c
        .backup
        .list_backup_jobs()
        .by_backup_vault_name(format!("{stack}-backups"))
        .send()
        .await
        .unwrap();
    let job = jobs
        .backup_jobs()
        .iter()
        .find(|j| j.recovery_point_arn() == Some(new_point.as_str()))
        .unwrap_or_else(|| panic!("no backup job made {new_point}: {jobs:?}"));
    assert_eq!(
        job.state(),
        Some(&aws_sdk_backup::types::BackupJobState::Completed)
    );
    let job_done = job.completion_date().expect("a completed job's time");
    assert!(
        job_done.secs() <= lt_time.secs(),
        "moodledata's backup job ({job_done}) completed before the launch template version \
         ({lt_time})"
    );
    ms_ok(&emu, &cmd(&["plan", "--detailed-exitcode"], &change), 0);
    if production {
        let rg = c
            .cache
            .describe_replication_groups()
            .replication_group_id(format!("{stack}-redis"))
            .send()
            .await
            .unwrap();
        let rg = &rg.replication_groups()[0];
        assert_eq!(rg.cache_node_type(), Some("cache.r7g.xlarge"));
        assert_eq!(rg.member_clusters().len(), 3, "a primary and two replicas");
        let db = db_instance(&c, stack).await;
        let storage = db.allocated_storage().unwrap_or(0);
        assert!(storage >= 400, "the storage grew to the stack's: {storage}");
        let version = db.engine_version().unwrap();
        assert!(
            moodlestack_model::version_satisfies(version, &next_minor),
            "the engine runs {next_minor} or a later minor: {version}"
        );
    }

    // End state, read with plain clients.
    let group = asg(&c, stack).await.expect("asg");
    assert_eq!(group.max_size(), Some(new_max));
    // The desired capacity the scaler set was never touched.
    assert_eq!(group.desired_capacity(), Some(want_desired));
    let (policies, actions, hooks) = scaling_of(&c, stack).await;
    assert_eq!(
        policies.iter().map(|p| p.3).collect::<Vec<_>>(),
        [60.0],
        "the target value is updated in place: {policies:?}"
    );
    assert_eq!(actions, if production { exam_weeks() } else { vec![] });
    assert_eq!(hooks.len(), 1, "{hooks:?}");
    let policy = group
        .mixed_instances_policy()
        .expect("mixed instances policy");
    let types: Vec<&str> = policy
        .launch_template()
        .unwrap()
        .overrides()
        .iter()
        .filter_map(|o| o.instance_type())
        .collect();
    assert_eq!(types, ["m6i.large", "c6i.large", "t3.large", "m5.large"]);
    let version_after = web_lt_default_version(&c, stack).await;
    assert!(
        version_after > version_before,
        "a new launch template version is the default"
    );
    let user_data = web_user_data_sent(&c, stack, version_after).await;
    let user_data = user_data.as_str();
    // Sent gzip-compressed (cloud-init unpacks it on the node).
    let raw =
        base64::Engine::decode(&base64::engine::general_purpose::STANDARD, user_data).unwrap();
    assert_eq!(raw[..2], [0x1f, 0x8b], "user-data is gzip-compressed");
    let user_data = moodlestack_model::user_data::decode(user_data).unwrap();
    assert!(
        user_data.contains("php8.2-fpm"),
        "the new version installs PHP 8.2"
    );
    let refreshes = c
        .asg
        .describe_instance_refreshes()
        .auto_scaling_group_name(format!("{stack}-web"))
        .send()
        .await
        .unwrap();
    assert!(
        !refreshes.instance_refreshes().is_empty(),
        "an instance refresh was started"
    );
    let prefs = refreshes.instance_refreshes()[0].preferences();
    assert_eq!(
        (
            prefs.and_then(|p| p.min_healthy_percentage()),
            prefs.and_then(|p| p.max_healthy_percentage())
        ),
        (Some(100), Some(200)),
        "new instances first: the fleet never drops below its size"
    );
    let params = c
        .rds
        .describe_db_parameters()
        .db_parameter_group_name(format!("{stack}-mysql8-4"))
        .send()
        .await
        .unwrap();
    assert!(
        params
            .parameters()
            .iter()
            .any(|p| p.parameter_name() == Some("long_query_time")
                && p.parameter_value() == Some("3")),
        "the database parameter is set"
    );
    if !production {
        let db = db_instance(&c, stack).await;
        assert!(
            db.engine_version().unwrap().starts_with("8.4"),
            "{:?}",
            db.engine_version()
        );
        let groups: Vec<&str> = db
            .db_parameter_groups()
            .iter()
            .filter_map(|g| g.db_parameter_group_name())
            .collect();
        assert_eq!(groups, [format!("{stack}-mysql8-4").as_str()]);
        let old = c
            .rds
            .describe_db_parameter_groups()
            .db_parameter_group_name(format!("{stack}-mysql8-0"))
            .send()
            .await;
        // AWS answers DBParameterGroupNotFound; moto an empty list.
        assert!(
            old.as_ref()
                .map_or(true, |o| o.db_parameter_groups().is_empty()),
            "the 8.0 parameter group is gone: {old:?}"
        );
    }

    // 5. Without --allow-data-loss, destroy refuses to lift deletion protection (production:
    // the database's and the load balancer's, which follows it).
    if production {
        let (code, _, err) = ms(&emu, &cmd(&["destroy", "--auto-approve"], &change));
        assert_eq!(code, 1, "{err}");
        for id in ["db.instance", "lb.alb"] {
            assert!(
                err.lines()
                    .any(|l| l.contains(id) && l.contains("deletion protection is on")),
                "{id}: {err}"
            );
        }
    }
    // Destroy leaves nothing of the stack, and the bastion's address where it was (the extra
    // listener went with the load balancer).
    let out = ms_ok(&emu, &cmd(&DESTROY, &change), 0);
    assert!(
        out.contains(&format!(
            "Left alone: 1 resource tagged moodlestack:stack={stack}"
        )),
        "{out}"
    );
    let eips = c
        .ec2
        .describe_addresses()
        .allocation_ids(&foreign[0])
        .send()
        .await
        .unwrap();
    assert_eq!(eips.addresses().len(), 1, "the foreign address is kept");
    c.ec2
        .release_address()
        .allocation_id(&foreign[0])
        .send()
        .await
        .unwrap();
    assert_nothing_left(&c, stack).await;
    let (policies, actions, hooks) = scaling_of(&c, stack).await;
    assert!(
        policies.is_empty() && actions.is_empty() && hooks.is_empty(),
        "destroy removes the scaling: {policies:?} {actions:?} {hooks:?}"
    );
    let after = plan_changes(&emu, &strs(&change));
    assert!(
        after.iter().all(|(_, a, _)| a == "create"),
        "after destroy only creates: {after:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_stack_lifecycle() {
    // Created on MySQL 8.0, upgraded to 8.4 in step 4.
    lifecycle(
        "stacks/demo.yaml",
        "e2e-demo",
        &["--set", "database.version=8.0"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn production_stack_lifecycle() {
    lifecycle(
        "stacks/production.yaml",
        "e2e-prod",
        &["--set", &format!("ami.id={AMI}")],
    )
    .await;
}

/// Aurora MySQL with the default version (`8.0`: the minor AWS picks): apply, a clean plan once
/// the emulator reports the picked minor and once more after its automatic minor upgrade, then
/// destroy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aurora_with_the_default_version_plans_clean_after_aws_picks_the_minor() {
    let emu = Emulator::start();
    let c = clients(&emu).await;
    let stack = "e2e-aurora";
    let args = owned(&[
        "stacks/demo.yaml",
        "--name",
        stack,
        "--set",
        "database.engine=aurora-mysql",
        "--set",
        "database.version=8.0",
    ]);
    ms_ok(&emu, &cmd(&["apply", "--auto-approve"], &args), 0);
    let version = || async {
        let d = c
            .rds
            .describe_db_clusters()
            .db_cluster_identifier(format!("{stack}-db"))
            .send()
            .await
            .unwrap();
        d.db_clusters()[0].engine_version().unwrap().to_string()
    };
    // The emulator reports the picked minor, then an automatic upgrade of it, each after a
    // moment (MOODLESTACK_EMULATOR_DELAY_MS); neither is a change.
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..3 {
        seen.insert(version().await);
        ms_ok(&emu, &cmd(&["plan", "--detailed-exitcode"], &args), 0);
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    seen.insert(version().await);
    assert!(
        seen.iter().any(|v| v.starts_with("8.0.mysql_aurora.3.")),
        "the cluster reports a full Aurora MySQL 3 version: {seen:?}"
    );
    ms_ok(&emu, &cmd(&DESTROY, &args), 0);
    assert_nothing_left(&c, stack).await;
}

/// One stack name in two regions of one account: IAM is global, so the node role carries the
/// region in its name. Both stacks apply and plan clean; destroying one leaves the other intact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_stack_name_in_two_regions() {
    let emu = Emulator::start();
    let c = clients(&emu).await;
    let stack = "two-regions";
    let eu = owned(&["stacks/demo.yaml", "--name", stack]);
    let mut us = eu.clone();
    us.extend(owned(&[
        "--set",
        "region=us-east-1",
        "--set",
        "network.zones=[us-east-1a, us-east-1b]",
    ]));
    for args in [&eu, &us] {
        ms_ok(&emu, &cmd(&["apply", "--auto-approve"], args), 0);
    }
    for args in [&eu, &us] {
        ms_ok(&emu, &cmd(&["plan", "--detailed-exitcode"], args), 0);
    }
    for region in ["eu-west-1", "us-east-1"] {
        assert!(
            role_exists(&c, &format!("{stack}-{region}-node")).await,
            "the {region} stack has its own role"
        );
    }
    ms_ok(&emu, &cmd(&DESTROY, &us), 0);
    assert!(
        role_exists(&c, &format!("{stack}-eu-west-1-node")).await,
        "destroying us-east-1 left eu-west-1's role"
    );
    ms_ok(&emu, &cmd(&["plan", "--detailed-exitcode"], &eu), 0);
    ms_ok(&emu, &cmd(&DESTROY, &eu), 0);
    assert_nothing_left(&c, stack).await;
}

/// A node role named as before the region was in the name (`<stack>-node`) is found by its tags
/// and replaced by the new one, not left behind; destroy leaves nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_node_role_of_an_earlier_version_is_replaced() {
    let emu = Emulator::start();
    let c = clients(&emu).await;
    let stack = "legacy-iam";
    let args = owned(&["stacks/demo.yaml", "--name", stack]);
    // What an earlier version made: the role's logical id and tags, the old name.
    let legacy = format!("{stack}-node");
    let tag = |k: &str, v: &str| {
        aws_sdk_iam::types::Tag::builder()
            .key(k)
            .value(v)
            .build()
            .unwrap()
    };
    c.iam
        .create_role()
        .role_name(&legacy)
        .assume_role_policy_document(
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#,
        )
        .tags(tag("moodlestack:stack", stack))
        .tags(tag("moodlestack:id", "iam.role"))
        .send()
        .await
        .unwrap();
    let changes = plan_changes(&emu, &strs(&args));
    let role: Vec<_> = changes
        .iter()
        .filter(|(id, _, _)| id == "iam.role")
        .collect();
    assert!(
        role.len() == 1 && role[0].1 == "replace" && role[0].2.contains(&"role_name".to_string()),
        "the old role is planned as replaced by the new name: {role:?}"
    );
    ms_ok(&emu, &cmd(&["apply", "--auto-approve"], &args), 0);
    assert!(!role_exists(&c, &legacy).await, "the old role is gone");
    ms_ok(&emu, &cmd(&["plan", "--detailed-exitcode"], &args), 0);
    ms_ok(&emu, &cmd(&DESTROY, &args), 0);
    assert_nothing_left(&c, stack).await;
}

/// The web launch template's user data at version `version`, decoded.
async fn web_user_data(c: &Clients, stack: &str, version: i64) -> String {
    moodlestack_model::user_data::decode(&web_user_data_sent(c, stack, version).await).unwrap()
}

/// The web launch template's user data at version `version`, as sent (base64 of gzip).
async fn web_user_data_sent(c: &Clients, stack: &str, version: i64) -> String {
    let data = c
        .ec2
        .describe_launch_template_versions()
        .launch_template_name(format!("{stack}-web"))
        .versions(version.to_string())
        .send()
        .await
        .unwrap();
    data.launch_template_versions()[0]
        .launch_template_data()
        .and_then(|d| d.user_data())
        .expect("user data")
        .to_string()
}

/// The stack's file system (moodledata) as a plain client sees it: the one tagged
/// `moodlestack:stack=<stack>`, with its tags.
async fn file_system(
    c: &Clients,
    stack: &str,
) -> (
    aws_sdk_efs::types::FileSystemDescription,
    BTreeMap<String, String>,
) {
    let all = c.efs.describe_file_systems().send().await.unwrap();
    let fs = all
        .file_systems()
        .iter()
        .find(|f| {
            f.tags()
                .iter()
                .any(|t| t.key() == "moodlestack:stack" && t.value() == stack)
        })
        .unwrap_or_else(|| panic!("stack {stack} has a file system"))
        .clone();
    let tags = fs
        .tags()
        .iter()
        .map(|t| (t.key().to_string(), t.value().to_string()))
        .collect();
    (fs, tags)
}

/// The mount targets of the file system `fs_id` (their subnets, sorted).
async fn mount_target_subnets(c: &Clients, fs_id: &str) -> Vec<String> {
    let out = c.efs.describe_mount_targets().file_system_id(fs_id);
    let out = out.send().await.unwrap();
    let mut subnets: Vec<String> = out
        .mount_targets()
        .iter()
        .map(|m| m.subnet_id().to_string())
        .collect();
    subnets.sort();
    subnets
}

/// The restore jobs that made the file system `fs_arn`, as (recovery point, status).
async fn restores_into(c: &Clients, fs_arn: &str) -> Vec<(String, String)> {
    let jobs = c.backup.list_restore_jobs().send().await.unwrap();
    jobs.restore_jobs()
        .iter()
        .filter(|j| j.created_resource_arn() == Some(fs_arn))
        .map(|j| {
            (
                j.recovery_point_arn().unwrap_or_default().to_string(),
                j.status()
                    .map(|s| s.as_str().to_string())
                    .unwrap_or_default(),
            )
        })
        .collect()
}

/// The EFS recovery points of the stack's vault: (ARN, creation time, status), oldest first.
async fn efs_points(c: &Clients, stack: &str) -> Vec<(String, i64, String)> {
    let out = c.backup.list_recovery_points_by_backup_vault();
    let out = out.backup_vault_name(format!("{stack}-backups"));
    let out = out.send().await.unwrap();
    let mut points: Vec<(String, i64, String)> = out
        .recovery_points()
        .iter()
        .filter(|p| p.resource_type() == Some("EFS"))
        .map(|p| {
            (
                p.recovery_point_arn().unwrap_or_default().to_string(),
                p.creation_date().map_or(0, |d| d.secs()),
                p.status()
                    .map(|s| s.as_str().to_string())
                    .unwrap_or_default(),
            )
        })
        .collect();
    points.sort_by_key(|p| p.1);
    points
}

/// Apply v4.5.5, upgrade to v4.5.6, roll back. Refused without --allow-data-loss (nothing
/// changes); with it, plain clients see the database restored from the snapshot taken before the
/// upgrade (a new instance of the same name and endpoint, tagged with that snapshot, made after
/// it, with a new master secret; the upgraded one kept as its final snapshot), moodledata
/// restored from that upgrade's backup (a new file system made by a restore job, tagged with
/// it, with its mount targets; the upgraded one deleted), and the launch
/// templates back on v4.5.5 (a plan of the stack at v4.5.5 finds nothing to change).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollback_restores_the_pre_upgrade_database_and_the_previous_code() {
    let emu = Emulator::start();
    let c = clients(&emu).await;
    let stack = "e2e-rollback";
    let v1 = owned(&["stacks/demo.yaml", "--name", stack]);
    let mut v2 = v1.clone();
    v2.extend(owned(&["--set", "moodle.git_ref=v4.5.6"]));
    ms_ok(&emu, &cmd(&["apply", "--auto-approve"], &v1), 0);
    // No node boots on the emulator: the upgrade is not followed (the lifecycle tests follow one).
    let out = ms_ok(
        &emu,
        &cmd(&["apply", "--auto-approve", "--upgrade-timeout", "0s"], &v2),
        0,
    );
    assert!(
        out.contains("(not followed: --upgrade-timeout 0s)"),
        "{out}"
    );
    let upgraded = db_instance(&c, stack).await;
    let lt_upgraded = web_lt_default_version(&c, stack).await;
    assert!(web_user_data(&c, stack, lt_upgraded)
        .await
        .contains("v4.5.6"));
    let snapshot = format!("{stack}-code-v4-5-6-php8-3");
    // That upgrade's backup of moodledata: the recovery point named like the snapshot.
    let (fs_upgraded, _) = file_system(&c, stack).await;
    let mounts_upgraded = mount_target_subnets(&c, fs_upgraded.file_system_id()).await;
    assert!(!mounts_upgraded.is_empty());
    let point = code_backups(&c, stack).await[&snapshot].0.clone();

    // Without consent: the plan says what would happen, and nothing changes.
    let (code, out, err) = ms(&emu, &cmd(&["rollback", "--auto-approve"], &v2));
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(
        out.contains(&format!(
            "Rollback of stack `{stack}` from v4.5.6 php8.3 to v4.5.5 php8.3"
        )) && out.contains(&format!(
            "the database is replaced by a new one of the same name restored from snapshot \
             {snapshot} (RestoreDBInstanceFromDBSnapshot, then ModifyDBInstance for its managed \
             master password)"
        )),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "moodledata is restored from that upgrade's backup of it, {point}"
        )) && out.contains(&format!(
            "moodledata is replaced by a new file system restored from recovery point {point}"
        )),
        "{out}"
    );
    assert!(
        err.contains("--allow-data-loss")
            && err.contains("files.fs")
            && err.contains("db.instance"),
        "{err}"
    );
    assert_eq!(
        db_instance(&c, stack).await.instance_create_time(),
        upgraded.instance_create_time()
    );
    assert_eq!(
        file_system(&c, stack).await.0.file_system_id(),
        fs_upgraded.file_system_id(),
        "moodledata untouched without consent"
    );
    assert_eq!(web_lt_default_version(&c, stack).await, lt_upgraded);

    // With it.
    let (code, out, err) = ms(
        &emu,
        &cmd(
            &[
                "rollback",
                "--auto-approve",
                "--allow-data-loss",
                "--upgrade-timeout",
                "0s",
            ],
            &v2,
        ),
    );
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("Rolled back to v4.5.5 php8.3"), "{out}");
    let restored = db_instance(&c, stack).await;
    let tags = db_tags(&restored);
    assert_eq!(
        tags.get("moodlestack:restored-from"),
        Some(&snapshot.as_str())
    );
    assert_eq!(tags.get("moodlestack:id"), Some(&"db.instance"));
    let taken = snapshot_time(&c, &snapshot).await;
    let made = *restored.instance_create_time().unwrap();
    assert!(
        made.secs() >= taken.secs() && made != *upgraded.instance_create_time().unwrap(),
        "a new instance ({made}), made after the snapshot ({taken})"
    );
    assert_eq!(
        restored.endpoint().and_then(|e| e.address()),
        upgraded.endpoint().and_then(|e| e.address()),
        "the same endpoint"
    );
    let secret = master_secret;
    let restored_secret = restored_secret(&emu, &c, &v1, &restored, &upgraded).await;
    // The upgraded instance's secret went with it (RDS deletes a managed secret with its
    // instance): the nodes could not read it.
    let gone = c.secrets.describe_secret().secret_id(secret(&upgraded));
    let gone = gone.send().await;
    assert!(
        gone.as_ref().map_or(true, |s| s.deleted_date().is_some()),
        "{gone:?}"
    );
    // moodledata: a new file system, made by a restore job of that upgrade's backup, tagged with
    // it, with its mount targets; the upgraded one is gone (the consent above).
    let (fs, fs_tags) = file_system(&c, stack).await;
    assert_ne!(fs.file_system_id(), fs_upgraded.file_system_id());
    assert_eq!(fs.creation_token(), fs_upgraded.creation_token());
    assert_eq!(fs_tags.get("moodlestack:restored-from"), Some(&point));
    assert_eq!(
        fs_tags.get("moodlestack:id").map(String::as_str),
        Some("files.fs")
    );
    let fs_arn = fs.file_system_arn().unwrap();
    assert_eq!(
        restores_into(&c, fs_arn).await,
        [(point.clone(), "COMPLETED".to_string())]
    );
    assert_eq!(
        mount_target_subnets(&c, fs.file_system_id()).await,
        mounts_upgraded,
        "a mount target in each zone, as before"
    );
    let old = c.efs.describe_file_systems();
    let old = old
        .file_system_id(fs_upgraded.file_system_id())
        .send()
        .await;
    assert!(
        old.as_ref()
            .map_or(true, |o| o.file_systems().iter().all(|f| {
                f.life_cycle_state() == &aws_sdk_efs::types::LifeCycleState::Deleted
            })),
        "the upgraded file system is deleted: {old:?}"
    );
    let finals = db_snapshots(&c, stack).await;
    assert!(
        finals.iter().any(|s| s
            .db_snapshot_identifier()
            .is_some_and(|i| i.starts_with(&format!("{stack}-db-final-")))),
        "the upgraded database is kept as its final snapshot: {finals:?}"
    );
    // The nodes' launch templates: v4.5.5 again, reading the restored database's secret.
    let lt_rolled_back = web_lt_default_version(&c, stack).await;
    assert!(lt_rolled_back > lt_upgraded);
    let user_data = web_user_data(&c, stack, lt_rolled_back).await;
    assert!(
        user_data.contains("v4.5.5") && !user_data.contains("v4.5.6"),
        "the web nodes run v4.5.5 again"
    );
    assert!(user_data.contains(&restored_secret));
    // The stack at v4.5.5 (the file as it was) is what runs: nothing to change.
    ms_ok(&emu, &cmd(&["plan", "--detailed-exitcode"], &v1), 0);

    // Upgrading to v4.5.6 again takes a new snapshot and a new backup of the database and
    // moodledata as they are now, not the first attempt's (released by the rollback): the
    // snapshot under a name of its own, named by its tag.
    ms_ok(
        &emu,
        &cmd(&["apply", "--auto-approve", "--upgrade-timeout", "0s"], &v2),
        0,
    );
    let again = format!("{snapshot}-2");
    let snaps = code_snapshots(&c, stack).await;
    assert_eq!(snaps[&again]["moodlestack:id"], "db.snapshot", "{snaps:?}");
    assert_eq!(snaps[&again]["moodlestack:name"], snapshot);
    assert_eq!(snaps[&again]["moodlestack:code"], "v4.5.6 php8.3");
    assert_eq!(snaps[&again]["moodlestack:code-before"], "v4.5.5 php8.3");
    assert!(
        !snaps[&snapshot].contains_key("moodlestack:id"),
        "the first attempt's snapshot stays released: {snaps:?}"
    );
    let taken_again = snapshot_time(&c, &again).await;
    assert!(
        taken_again.secs() >= made.secs(),
        "of the restored database"
    );
    let of_version: Vec<(String, bool)> = vault_points(&c, stack)
        .await
        .into_iter()
        .filter(|(_, _, _, tags)| tags.get("moodlestack:name") == Some(&snapshot))
        .map(|(arn, _, _, tags)| (arn, tags.contains_key("moodlestack:id")))
        .collect();
    assert_eq!(
        of_version.iter().filter(|(_, ours)| *ours).count(),
        1,
        "one backup of moodledata for v4.5.6 is the stack's: {of_version:?}"
    );
    assert_eq!(
        of_version.len(),
        2,
        "a new backup, the first attempt's kept: {of_version:?}"
    );
    // The stack plans clean at v4.5.6 (the suffixed snapshot is its `db.snapshot`), and a
    // rollback now restores the new snapshot.
    ms_ok(&emu, &cmd(&["plan", "--detailed-exitcode"], &v2), 0);
    let (_, out, _) = ms(&emu, &cmd(&["rollback", "--auto-approve"], &v2));
    assert!(
        out.contains(&format!("restored from snapshot {again} ")),
        "{out}"
    );
    ms_ok(&emu, &cmd(&DESTROY, &v1), 0);
    assert_nothing_left(&c, stack).await;
}

/// Apply the demo stack, clone it. A clone named like its source is refused. Plain clients see
/// the clone's database restored from the source's newest snapshot (its own instance, tagged with
/// the clone's stack and that snapshot, made after it, with its own endpoint and master secret),
/// its moodledata restored from the source's newest backup of it (its own file system, made by a
/// restore job of that recovery point, tagged with it, with its mount targets) and the clone's
/// nodes with their own wwwroot and `$CFG->noemailever`; the clone plans clean
/// with the overrides it printed. Destroying the clone leaves the source as it was: the same
/// database and file system, every snapshot and recovery point, and a plan with no changes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clone_restores_the_source_snapshot_and_destroying_it_leaves_the_source() {
    let emu = Emulator::start();
    let c = clients(&emu).await;
    let source = "e2e-source";
    let copy = "e2e-copy";
    let src = owned(&["stacks/demo.yaml", "--name", source]);
    ms_ok(&emu, &cmd(&["apply", "--auto-approve"], &src), 0);
    let source_db = db_instance(&c, source).await;
    let snapshot_ids = |all: &[aws_sdk_rds::types::DbSnapshot]| {
        let mut ids = ids(all, |s| s.db_snapshot_identifier());
        ids.sort();
        ids
    };
    let snapshots = snapshot_ids(&db_snapshots(&c, source).await);
    let tagged = code_snapshots(&c, source).await;
    let clone = |name: &'static str| {
        owned(&[
            "clone",
            "stacks/demo.yaml",
            "--source-name",
            source,
            "--name",
            name,
            "--auto-approve",
            "--set",
            "web.max=1",
        ])
    };

    let (code, out, err) = ms(&emu, &strs(&clone(source)));
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(
        err.contains("is the source stack's name") && err.contains("fix: pass another name"),
        "{err}"
    );

    // The newest available snapshot of the source's database, as RDS lists it.
    let newest = db_snapshots(&c, source)
        .await
        .into_iter()
        .filter(|s| s.status() == Some("available"))
        .max_by_key(|s| s.snapshot_create_time().map(|t| t.secs()))
        .expect("the source has a snapshot");
    let snapshot = newest.db_snapshot_identifier().unwrap().to_string();
    // The source's moodledata and its newest completed EFS recovery point, as AWS Backup lists it.
    let (source_fs, _) = file_system(&c, source).await;
    let source_points = efs_points(&c, source).await;
    let point = source_points
        .iter()
        .filter(|p| p.2 == "COMPLETED")
        .max_by_key(|p| p.1)
        .expect("the source has a backup of moodledata")
        .0
        .clone();
    let out = ms_ok(&emu, &strs(&clone(copy)), 0);
    assert!(
        out.contains(&format!(
            "moodledata is a new file system restored from the source's newest backup of it, \
             {point}"
        )),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "Clone of stack `{source}` as `{copy}` in {}",
            crate::harness::REGION
        )) && out.contains(&format!("restored from snapshot {snapshot}")),
        "{out}"
    );
    assert!(
        out.contains(&format!("Cloned `{source}` as `{copy}`")),
        "{out}"
    );

    let restored = db_instance(&c, copy).await;
    let tags = db_tags(&restored);
    assert_eq!(tags.get("moodlestack:stack"), Some(&copy));
    assert_eq!(tags.get("moodlestack:id"), Some(&"db.instance"));
    assert_eq!(
        tags.get("moodlestack:restored-from"),
        Some(&snapshot.as_str())
    );
    let made = restored.instance_create_time().unwrap().secs();
    assert!(made >= newest.snapshot_create_time().unwrap().secs());
    assert_ne!(
        restored.endpoint().and_then(|e| e.address()),
        source_db.endpoint().and_then(|e| e.address())
    );
    let secret = master_secret;
    let copy_args = owned(&["stacks/demo.yaml", "--name", copy]);
    let restored_secret = restored_secret(&emu, &c, &copy_args, &restored, &source_db).await;
    let user_data = web_user_data(&c, copy, web_lt_default_version(&c, copy).await).await;
    assert!(
        user_data.contains("$CFG->noemailever = true;")
            && user_data.contains(&format!("'http://{copy}.moodlestack.test'"))
            && user_data.contains(&restored_secret),
        "the clone's config.php: no e-mail, its own wwwroot, its own database"
    );
    assert_eq!(asg(&c, copy).await.unwrap().max_size(), Some(1), "--set");
    // moodledata: its own file system, made by a restore job of the source's newest backup,
    // tagged with the clone and that backup, with its mount targets.
    let (fs, fs_tags) = file_system(&c, copy).await;
    assert_ne!(fs.file_system_id(), source_fs.file_system_id());
    assert_eq!(fs.creation_token(), format!("{copy}-moodledata"));
    assert_eq!(
        fs_tags.get("moodlestack:stack").map(String::as_str),
        Some(copy)
    );
    assert_eq!(
        fs_tags.get("moodlestack:id").map(String::as_str),
        Some("files.fs")
    );
    assert_eq!(fs_tags.get("moodlestack:restored-from"), Some(&point));
    assert_eq!(
        restores_into(&c, fs.file_system_arn().unwrap()).await,
        [(point.clone(), "COMPLETED".to_string())]
    );
    assert_eq!(
        mount_target_subnets(&c, fs.file_system_id()).await.len(),
        mount_target_subnets(&c, source_fs.file_system_id())
            .await
            .len()
    );
    assert!(!mount_target_subnets(&c, fs.file_system_id())
        .await
        .is_empty());
    assert!(
        user_data.contains(fs.file_system_id()),
        "the clone's nodes mount its own file system"
    );
    assert!(code_snapshots(&c, copy)
        .await
        .contains_key(&format!("{copy}-code-v4-5-5-php8-3")));
    // The clone with the overrides it printed: nothing to change.
    let line = out
        .lines()
        .skip_while(|l| !l.starts_with("Cloned "))
        .nth(1)
        .expect("the overrides line");
    let mut again = owned(&["plan", "--detailed-exitcode", "stacks/demo.yaml"]);
    again.extend(
        line.split_whitespace()
            .map(|s| s.trim_matches('\'').to_string()),
    );
    ms_ok(&emu, &strs(&again), 0);

    ms_ok(&emu, &cmd(&DESTROY, &copy_args), 0);
    assert_nothing_left(&c, copy).await;
    let after = db_instance(&c, source).await;
    assert_eq!(
        after.instance_create_time(),
        source_db.instance_create_time()
    );
    assert_eq!(secret(&after), secret(&source_db));
    assert_eq!(snapshot_ids(&db_snapshots(&c, source).await), snapshots);
    assert_eq!(code_snapshots(&c, source).await, tagged);
    assert_eq!(
        file_system(&c, source).await.0.file_system_id(),
        source_fs.file_system_id(),
        "the source's moodledata is untouched"
    );
    assert_eq!(efs_points(&c, source).await, source_points);
    ms_ok(&emu, &cmd(&["plan", "--detailed-exitcode"], &src), 0);
    ms_ok(&emu, &cmd(&DESTROY, &src), 0);
    assert_nothing_left(&c, source).await;
}

/// The log groups under the stack's prefix `/moodlestack/<stack>/`, as a plain client sees them.
async fn log_groups(c: &Clients, stack: &str) -> Vec<aws_sdk_cloudwatchlogs::types::LogGroup> {
    let req = c.logs.describe_log_groups();
    let req = req.log_group_name_prefix(format!("/moodlestack/{stack}/"));
    req.send().await.unwrap().log_groups().to_vec()
}

/// The stack's Aurora cluster (`{stack}-db`) and its member instances, as RDS describes them.
async fn aurora(
    c: &Clients,
    stack: &str,
) -> (
    aws_sdk_rds::types::DbCluster,
    Vec<aws_sdk_rds::types::DbInstance>,
) {
    let ident = format!("{stack}-db");
    let clusters = c.rds.describe_db_clusters().db_cluster_identifier(&ident);
    let clusters = clusters.send().await.unwrap().db_clusters().to_vec();
    assert_eq!(clusters.len(), 1, "one cluster {ident}: {clusters:?}");
    let all = c.rds.describe_db_instances().send().await.unwrap();
    let members = all.db_instances().iter().filter(|db| {
        db.db_cluster_identifier() == Some(ident.as_str())
            && db.db_instance_status() != Some("deleting")
    });
    (clusters[0].clone(), members.cloned().collect())
}

/// Aurora, end to end: apply at v4.5.5, upgrade to v4.5.6 (the cluster snapshot of the upgrade is
/// taken first), then `rollback`: refused without --allow-data-loss (nothing changes), then with
/// it plain clients see the cluster replaced by one restored from that cluster snapshot (tagged
/// with it, made after it, with a managed master secret of its own, the one the nodes read; the
/// upgraded cluster deleted with its deletion protection lifted, kept as its final snapshot), its
/// member made again in it, and a clean plan of the stack at v4.5.5. Then `clone`: a second
/// stack whose cluster is restored from the source's newest cluster snapshot, with its own
/// member and master secret; destroying it leaves the source's cluster as it was.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aurora_rollback_and_clone_restore_the_cluster_and_its_members() {
    let emu = Emulator::start();
    let c = clients(&emu).await;
    let stack = "e2e-aurora-rb";
    let aurora_sets = [
        "--set",
        "database.engine=aurora-mysql",
        "--set",
        "database.version=8.0",
        "--set",
        "database.deletion_protection=true",
    ];
    let mut v1 = owned(&["stacks/demo.yaml", "--name", stack]);
    v1.extend(owned(&aurora_sets));
    let mut v2 = v1.clone();
    v2.extend(owned(&["--set", "moodle.git_ref=v4.5.6"]));
    ms_ok(&emu, &cmd(&["apply", "--auto-approve"], &v1), 0);
    let upgrade = ["apply", "--auto-approve", "--upgrade-timeout", "0s"];
    ms_ok(&emu, &cmd(&upgrade, &v2), 0);
    let (upgraded, upgraded_members) = aurora(&c, stack).await;
    assert_eq!(upgraded_members.len(), 1, "{upgraded_members:?}");
    let snapshot = format!("{stack}-code-v4-5-6-php8-3");
    let taken = c.rds.describe_db_cluster_snapshots();
    let taken = taken.db_cluster_snapshot_identifier(&snapshot).send().await;
    let taken = taken.unwrap().db_cluster_snapshots()[0].clone();
    assert_eq!(
        taken.db_cluster_identifier(),
        Some(format!("{stack}-db").as_str())
    );

    let (code, out, err) = ms(&emu, &cmd(&["rollback", "--auto-approve"], &v2));
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(
        out.contains(&format!(
            "the Aurora cluster is replaced by a new one of the same name restored from cluster \
             snapshot {snapshot} (RestoreDBClusterFromSnapshot"
        )),
        "{out}"
    );
    assert!(
        err.contains("--allow-data-loss") && err.contains("db.cluster"),
        "{err}"
    );
    let (unchanged, _) = aurora(&c, stack).await;
    assert_eq!(
        unchanged.cluster_create_time(),
        upgraded.cluster_create_time()
    );

    let rollback = [
        "rollback",
        "--auto-approve",
        "--allow-data-loss",
        "--upgrade-timeout",
        "0s",
    ];
    let out = ms_ok(&emu, &cmd(&rollback, &v2), 0);
    assert!(out.contains("Rolled back to v4.5.5 php8.3"), "{out}");
    let (restored, members) = aurora(&c, stack).await;
    let tags_of = |cl: &aws_sdk_rds::types::DbCluster| -> BTreeMap<String, String> {
        let tags = cl.tag_list().iter();
        let pairs = tags.filter_map(|t| Some((t.key()?.to_string(), t.value()?.to_string())));
        pairs.collect()
    };
    let tags = tags_of(&restored);
    assert_eq!(tags["moodlestack:restored-from"], snapshot);
    assert_eq!(tags["moodlestack:id"], "db.cluster");
    let made = *restored.cluster_create_time().unwrap();
    assert!(
        made.secs() >= taken.snapshot_create_time().unwrap().secs()
            && Some(&made) != upgraded.cluster_create_time(),
        "a new cluster ({made}), made after the snapshot"
    );
    assert_eq!(restored.deletion_protection(), Some(true));
    let secret = |cl: &aws_sdk_rds::types::DbCluster| {
        let s = cl.master_user_secret().and_then(|s| s.secret_arn());
        s.expect("a managed master secret").to_string()
    };
    assert_ne!(secret(&restored), secret(&upgraded), "a new master secret");
    // Its member: made again in the restored cluster, after it.
    assert_eq!(members.len(), 1, "{members:?}");
    assert_eq!(
        members[0].db_instance_identifier(),
        upgraded_members[0].db_instance_identifier()
    );
    assert!(members[0].instance_create_time().unwrap().secs() >= made.secs());
    assert_ne!(
        members[0].instance_create_time(),
        upgraded_members[0].instance_create_time()
    );
    let listed: Vec<_> = ids(restored.db_cluster_members(), |m| {
        m.db_instance_identifier()
    });
    assert_eq!(listed, ids(&members, |m| m.db_instance_identifier()));
    // The upgraded cluster is gone, kept as its final snapshot.
    let finals = c.rds.describe_db_cluster_snapshots();
    let finals = finals
        .db_cluster_identifier(format!("{stack}-db"))
        .send()
        .await;
    let finals = ids(finals.unwrap().db_cluster_snapshots(), |s| {
        s.db_cluster_snapshot_identifier()
    });
    assert!(
        finals
            .iter()
            .any(|i| i.starts_with(&format!("{stack}-db-final-"))),
        "{finals:?}"
    );
    let user_data = web_user_data(&c, stack, web_lt_default_version(&c, stack).await).await;
    assert!(user_data.contains("v4.5.5") && user_data.contains(&secret(&restored)));
    ms_ok(&emu, &cmd(&["plan", "--detailed-exitcode"], &v1), 0);

    // A clone of the Aurora stack: its own cluster, restored from the source's newest cluster
    // snapshot.
    let copy = "e2e-aurora-copy";
    let newest = c.rds.describe_db_cluster_snapshots();
    let newest = newest
        .db_cluster_identifier(format!("{stack}-db"))
        .send()
        .await;
    let newest = newest.unwrap().db_cluster_snapshots().to_vec();
    let newest = newest
        .iter()
        .filter(|s| s.status() == Some("available"))
        .max_by_key(|s| s.snapshot_create_time().map(|t| t.secs()))
        .unwrap();
    let newest_id = newest.db_cluster_snapshot_identifier().unwrap();
    let mut clone = owned(&["clone", "stacks/demo.yaml", "--source-name", stack]);
    clone.extend(owned(&[
        "--name",
        copy,
        "--auto-approve",
        "--set",
        "web.max=1",
    ]));
    clone.extend(owned(&aurora_sets[..4]));
    let out = ms_ok(&emu, &strs(&clone), 0);
    assert!(
        out.contains(&format!("restored from snapshot {newest_id}")),
        "{out}"
    );
    let (cloned, cloned_members) = aurora(&c, copy).await;
    let tags = tags_of(&cloned);
    assert_eq!(tags["moodlestack:stack"], copy);
    assert_eq!(tags["moodlestack:restored-from"], newest_id);
    assert_eq!(cloned_members.len(), 1);
    assert_ne!(secret(&cloned), secret(&restored), "its own master secret");
    let mut copy_args = owned(&["stacks/demo.yaml", "--name", copy]);
    copy_args.extend(owned(&aurora_sets[..4]));
    ms_ok(&emu, &cmd(&DESTROY, &copy_args), 0);
    assert_nothing_left(&c, copy).await;
    let (after, _) = aurora(&c, stack).await;
    assert_eq!(after.cluster_create_time(), restored.cluster_create_time());
    assert_eq!(secret(&after), secret(&restored));
    ms_ok(&emu, &cmd(&DESTROY, &v1), 0);
    assert_nothing_left(&c, stack).await;
}
