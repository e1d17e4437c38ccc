//! Executor tests against the in-memory fake, on tokio's paused clock.

use super::*;
use crate::fake::{CrashPoint, FakeCloud, Op};
use crate::test_support::{r, rf, scope, tags, tcp_rule};
use moodlestack_model::{Segment, Value};
use std::collections::BTreeMap;

/// A small but realistic stack: network, security groups, database, file system with a mount
/// target, load balancer with a listener, launch template (user-data embeds the database
/// endpoint) and auto scaling group.
fn desired() -> Vec<Resource> {
    vec![
        r("net.vpc", Kind::Vpc)
            .with("cidr_block", "10.0.0.0/16")
            .with("enable_dns_hostnames", true)
            .with("enable_dns_support", true),
        r("net.subnet.private.a", Kind::Subnet)
            .with("vpc_id", rf("net.vpc", "id"))
            .with("cidr_block", "10.0.0.0/20")
            .with("availability_zone", "eu-west-1a"),
        r("net.subnet.private.b", Kind::Subnet)
            .with("vpc_id", rf("net.vpc", "id"))
            .with("cidr_block", "10.0.16.0/20")
            .with("availability_zone", "eu-west-1b"),
        security_group("sg.alb", "demo-alb", "load balancer", None),
        security_group("sg.web", "demo-web", "web nodes", Some((80, "sg.alb"))),
        security_group("sg.db", "demo-db", "database", Some((3306, "sg.web"))),
        r("db.subnet_group", Kind::DbSubnetGroup)
            .with("name", "demo-db")
            .with("description", "database subnets")
            .with("subnet_ids", private_subnets()),
        r("db.instance", Kind::DbInstance)
            .with("identifier", "demo-db")
            .with("engine", "mysql")
            .with("instance_class", "db.t4g.micro")
            .with("allocated_storage", 20)
            .with("port", 3306)
            .with("deletion_protection", false)
            .with("db_subnet_group_name", rf("db.subnet_group", "id"))
            .with(
                "vpc_security_group_ids",
                Value::List(vec![rf("sg.db", "id")]),
            ),
        r("files.fs", Kind::EfsFileSystem)
            .with("creation_token", "demo-moodledata")
            .with("encrypted", true),
        r("files.mount.a", Kind::EfsMountTarget)
            .with("file_system_id", rf("files.fs", "id"))
            .with("subnet_id", rf("net.subnet.private.a", "id"))
            .with("security_group_ids", Value::List(vec![rf("sg.web", "id")])),
        r("lb.alb", Kind::LoadBalancer)
            .with("name", "demo")
            .with("scheme", "internet-facing")
            .with("subnet_ids", private_subnets())
            .with("security_group_ids", Value::List(vec![rf("sg.alb", "id")])),
        r("lb.listener.http", Kind::Listener)
            .with("load_balancer_arn", rf("lb.alb", "arn"))
            .with("port", 80)
            .with("protocol", "HTTP"),
        r("web.lt", Kind::LaunchTemplate)
            .with("name", "demo-web")
            .with("image_id", "ami-0123456789abcdef0")
            .with("instance_type", "t3.small")
            .with("security_group_ids", Value::List(vec![rf("sg.web", "id")]))
            .with(
                "user_data",
                Value::Interpolated(vec![
                    Segment::Lit("#!/bin/sh\nDB=".into()),
                    Segment::Ref(Ref::new("db.instance", "endpoint")),
                    Segment::Lit("\nFS=".into()),
                    Segment::Ref(Ref::new("files.fs", "id")),
                    Segment::Lit("\n".into()),
                ]),
            ),
        r("web.asg", Kind::AutoScalingGroup)
            .with("name", "demo-web")
            .with("launch_template_id", rf("web.lt", "id"))
            .with("launch_template_version", rf("web.lt", "version"))
            .with("min_size", 2)
            .with("max_size", 4)
            .with("desired_capacity", 2)
            .with("subnet_ids", private_subnets()),
        r("stable.instance", Kind::Instance)
            .with("launch_template_id", rf("web.lt", "id"))
            .with("launch_template_version", rf("web.lt", "version"))
            .with("subnet_id", rf("net.subnet.private.a", "id"))
            .with("http_tokens", "required"),
    ]
}

/// A security group of [`desired`]'s VPC; `from` is the (port, group) whose members it lets in
/// over TCP (none: it lets nothing in).
fn security_group(id: &str, name: &str, description: &str, from: Option<(i64, &str)>) -> Resource {
    let ingress = from.map(|(port, group)| tcp_rule(port, "source_group_id", rf(group, "id")));
    r(id, Kind::SecurityGroup)
        .with("vpc_id", rf("net.vpc", "id"))
        .with("group_name", name)
        .with("description", description)
        .with("ingress", Value::List(ingress.into_iter().collect()))
}

/// Both private subnets of [`desired`], by reference.
fn private_subnets() -> Value {
    Value::List(vec![
        rf("net.subnet.private.a", "id"),
        rf("net.subnet.private.b", "id"),
    ])
}

/// The database of [`desired`] on its own: in the subnet group `g`, with no security groups.
fn lone_db() -> Resource {
    desired()[7]
        .clone()
        .with("db_subnet_group_name", "g")
        .with("vpc_security_group_ids", Value::List(vec![]))
}

fn opts() -> Options {
    Options {
        owner: "tester@ci pid 1".into(),
        ..Options::default()
    }
}

/// [`opts`] with `--allow-data-loss`.
fn allowing_data_loss() -> Options {
    Options {
        allow_data_loss: true,
        ..opts()
    }
}

/// A fake cloud with latencies on the poll schedule (0, 50, 150, 350, 750, 1550, 3150, 6350,
/// 12750, 25550, 40550 ms...), so that a resource is seen ready the moment it is.
fn slow_fake() -> FakeCloud {
    let fake = FakeCloud::new();
    let ms = Duration::from_millis;
    for (kind, l) in [
        (Kind::Vpc, ms(350)),
        (Kind::Subnet, ms(750)),
        (Kind::SecurityGroup, ms(150)),
        (Kind::DbSubnetGroup, ms(50)),
        (Kind::DbInstance, ms(25_550)),
        (Kind::EfsFileSystem, ms(1_550)),
        (Kind::EfsMountTarget, ms(6_350)),
        (Kind::LoadBalancer, ms(12_750)),
        (Kind::Listener, ms(50)),
        (Kind::LaunchTemplate, ms(0)),
        (Kind::AutoScalingGroup, ms(3_150)),
    ] {
        fake.set_latency(kind, l);
    }
    fake
}

async fn fresh_plan(fake: &FakeCloud, desired: &[Resource]) -> Plan {
    let observed = fake.observe(&scope(), desired).await.expect("observe");
    crate::diff::plan(&scope(), desired, &observed).expect("diff")
}

/// Applies from a fresh observation; returns the report.
async fn converge(fake: &FakeCloud, desired: &[Resource], o: &Options) -> Report {
    let plan = fresh_plan(fake, desired).await;
    apply(fake, &scope(), &plan, o).await.expect("apply starts")
}

/// A fake cloud converged to `desired` with the default options.
async fn converged(desired: &[Resource]) -> FakeCloud {
    let fake = FakeCloud::new();
    assert!(converge(&fake, desired, &opts()).await.is_success());
    fake
}

/// Destroys what `fake` holds of `desired`, observed first; the call log starts at the destroy.
async fn destroyed(fake: &FakeCloud, desired: &[Resource], o: &Options) -> Report {
    let observed = fake.observe(&scope(), desired).await.unwrap();
    fake.clear_log();
    destroy(fake, &scope(), &observed, desired, o)
        .await
        .unwrap()
}

/// Converges `fake` to `desired` with the default options: a success, and the result matches.
async fn assert_converges(fake: &FakeCloud, desired: &[Resource]) {
    let report = converge(fake, desired, &opts()).await;
    assert!(report.is_success(), "{report}");
    assert_converged(fake, desired).await;
}

/// Every declared resource exists exactly once, nothing else of the stack exists, and a fresh
/// plan has no changes.
async fn assert_converged(fake: &FakeCloud, desired: &[Resource]) {
    let problems = read_back(fake, &scope(), desired).await.expect("read back");
    assert!(problems.is_empty(), "read-back: {problems:#?}");
    let resources = fake.resources();
    let mut tagged: BTreeMap<String, usize> = BTreeMap::new();
    let mut untagged: BTreeMap<Kind, usize> = BTreeMap::new();
    for (id, kind, _) in &resources {
        if id.as_str().starts_with("untagged:") {
            *untagged.entry(*kind).or_default() += 1;
        } else {
            *tagged.entry(id.to_string()).or_default() += 1;
        }
    }
    let mut want_tagged: BTreeMap<String, usize> = BTreeMap::new();
    let mut want_untagged: BTreeMap<Kind, usize> = BTreeMap::new();
    for d in desired {
        if spec(d.kind).taggable() {
            want_tagged.insert(d.id.to_string(), 1);
        } else {
            *want_untagged.entry(d.kind).or_default() += 1;
        }
    }
    assert_eq!(
        tagged, want_tagged,
        "duplicates or leaks among tagged resources"
    );
    assert_eq!(
        untagged, want_untagged,
        "duplicates or leaks among untagged resources"
    );
}

/// [`desired`] with `field` of `id` set to `value`.
fn desired_with(id: &str, field: &str, value: Value) -> Vec<Resource> {
    with_field(desired(), id, field, value)
}

/// `resources` with `field` of `id` set to `value`.
fn with_field(mut resources: Vec<Resource>, id: &str, field: &str, value: Value) -> Vec<Resource> {
    for d in &mut resources {
        if d.id.as_str() == id {
            d.fields.insert(field.into(), value.clone());
        }
    }
    resources
}

/// The change `plan` makes to `id`.
fn change_of<'p>(plan: &'p Plan, id: &str) -> &'p crate::plan::Change {
    plan.changes.iter().find(|c| c.id.as_str() == id).unwrap()
}

/// The action `plan` takes for `id`.
fn action_of(plan: &Plan, id: &str) -> Action {
    change_of(plan, id).action
}

/// The actions `plan` takes for `ids`, in order.
fn actions_of(plan: &Plan, ids: &[&str]) -> Vec<Action> {
    ids.iter().map(|id| action_of(plan, id)).collect()
}

/// Gives the stack's lease to another user (`alice@laptop pid 4242`) for half an hour.
async fn lease_to_alice(fake: &FakeCloud) {
    fake.acquire_lease(
        &scope(),
        "alice@laptop pid 4242",
        Duration::from_secs(30 * 60),
    )
    .await
    .unwrap();
}

/// Applies `plan` with the default options (a success); the calls it made.
async fn applied(fake: &FakeCloud, plan: &Plan) -> Vec<crate::fake::Call> {
    fake.clear_log();
    let report = apply(fake, &scope(), plan, &opts()).await.unwrap();
    assert!(report.is_success(), "{report}");
    fake.log()
}

fn index_of(log: &[crate::fake::Call], op: Op, id: &str) -> Option<usize> {
    log.iter().position(|c| c.op == op && c.id == id)
}

#[tokio::test(start_paused = true)]
async fn creates_wait_for_their_dependencies_to_be_ready() {
    let fake = slow_fake();
    let desired = desired();
    let report = converge(&fake, &desired, &opts()).await;
    assert!(report.is_success(), "{report}");
    assert_eq!(report.done().count(), desired.len());
    let log = fake.log();
    for d in &desired {
        let created = index_of(&log, Op::Create, d.id.as_str()).expect("created");
        for dep in d.deps() {
            let ready = index_of(&log, Op::PollReady, dep.as_str())
                .unwrap_or_else(|| panic!("{dep} never seen ready"));
            assert!(ready < created, "{} created before {dep} was ready", d.id);
            assert!(log[ready].at <= log[created].at);
        }
    }
    // The launch template's user-data embeds the database endpoint, known only once ready.
    let lt = &fake.fields_of("web.lt")[0];
    let ud = lt["user_data"].as_str().unwrap();
    assert!(
        ud.contains("DB=demo-db.c") && ud.contains(".rds.amazonaws.com"),
        "{ud}"
    );
    assert_converged(&fake, &desired).await;
}

/// Longest path through the declared graph, weighting each resource by its kind's latency.
fn critical_path(desired: &[Resource], fake: &FakeCloud) -> Duration {
    let by_id: HashMap<&ResourceId, &Resource> = desired.iter().map(|d| (&d.id, d)).collect();
    fn finish(
        id: &ResourceId,
        by_id: &HashMap<&ResourceId, &Resource>,
        fake: &FakeCloud,
        memo: &mut HashMap<ResourceId, Duration>,
    ) -> Duration {
        if let Some(d) = memo.get(id) {
            return *d;
        }
        let r = by_id[id];
        let start = r
            .deps()
            .iter()
            .map(|d| finish(d, by_id, fake, memo))
            .max()
            .unwrap_or_default();
        let f = start + fake.latency(r.kind);
        memo.insert(id.clone(), f);
        f
    }
    let mut memo = HashMap::new();
    desired
        .iter()
        .map(|d| finish(&d.id, &by_id, fake, &mut memo))
        .max()
        .unwrap()
}

#[tokio::test(start_paused = true)]
async fn makespan_equals_the_critical_path() {
    let fake = slow_fake();
    let desired = desired();
    let plan = fresh_plan(&fake, &desired).await;
    let t0 = Instant::now();
    let report = apply(&fake, &scope(), &plan, &opts()).await.unwrap();
    let makespan = t0.elapsed();
    assert!(report.is_success(), "{report}");
    let cp = critical_path(&desired, &fake);
    if makespan != cp {
        for c in fake.log() {
            eprintln!("{:?} {:?} {}", c.at, c.op, c.id);
        }
    }
    // vpc 0.35 + subnet 0.75 + db subnet group 0.05 + db 25.55 + lt 0 + asg 3.15
    assert_eq!(cp, Duration::from_millis(29_850));
    assert_eq!(makespan, cp);
    // Several resources were in flight at once.
    assert!(
        fake.max_in_flight() >= 4,
        "max in flight {}",
        fake.max_in_flight()
    );
}

#[tokio::test(start_paused = true)]
async fn parallelism_bounds_the_changes_in_flight() {
    let desired = desired();
    for parallelism in [2, 1] {
        let fake = slow_fake();
        let o = Options {
            parallelism,
            ..opts()
        };
        let t0 = Instant::now();
        let report = converge(&fake, &desired, &o).await;
        assert!(report.is_success(), "{report}");
        assert_eq!(fake.max_in_flight(), parallelism);
        assert!(t0.elapsed() > critical_path(&desired, &fake));
    }
}

/// A create the cloud calls settled (its API answers once the resource is usable, with a full
/// read of it) is not polled, nor is a settled delete; a pending one still is, and other kinds
/// are polled as before. Each poll saved is a round on a chain of dependent steps.
#[tokio::test(start_paused = true)]
async fn settled_creates_and_deletes_are_not_polled() {
    let fake = FakeCloud::new();
    fake.set_settled(Kind::IamRole);
    fake.set_settled(Kind::InstanceProfile);
    fake.set_latency(Kind::InstanceProfile, Duration::from_secs(3));
    let desired = vec![
        r("iam.role", Kind::IamRole).with("role_name", "node"),
        r("iam.profile", Kind::InstanceProfile)
            .with("name", "node")
            .with("role_name", rf("iam.role", "id")),
        r("net.vpc", Kind::Vpc).with("cidr_block", "10.0.0.0/16"),
    ];
    assert_converges(&fake, &desired).await;
    let ops = |id: &str| -> Vec<Op> {
        fake.log()
            .iter()
            .filter(|c| c.id == id)
            .map(|c| c.op)
            .collect()
    };
    assert_eq!(ops("iam.role"), [Op::Create]);
    // Created pending (3 s): polled until ready although the kind is settled when ready.
    assert_eq!(ops("iam.profile").first(), Some(&Op::Create));
    assert_eq!(ops("iam.profile").last(), Some(&Op::PollReady));
    assert_eq!(ops("net.vpc"), [Op::Create, Op::PollReady]);

    fake.set_latency(Kind::InstanceProfile, Duration::ZERO);
    let report = destroyed(&fake, &desired, &opts()).await;
    assert!(report.is_success(), "{report}");
    assert_eq!(ops("iam.role"), [Op::Delete]);
    assert_eq!(ops("iam.profile"), [Op::Delete]);
    assert_eq!(ops("net.vpc"), [Op::Delete, Op::PollGone]);
    assert!(fake.resources().is_empty());
}

#[tokio::test(start_paused = true)]
async fn polling_starts_fast_and_backs_off() {
    let fake = FakeCloud::new();
    fake.set_latency(Kind::DbInstance, Duration::from_secs(600));
    let desired = vec![
        r("db.subnet_group", Kind::DbSubnetGroup).with("name", "g"),
        lone_db(),
    ];
    let report = converge(&fake, &desired, &opts()).await;
    assert!(report.is_success(), "{report}");
    let polls: Vec<Duration> = fake
        .log()
        .iter()
        .filter(|c| c.id == "db.instance" && c.op != Op::Create)
        .map(|c| c.at)
        .collect();
    let created = fake
        .log()
        .iter()
        .find(|c| c.op == Op::Create && c.id == "db.instance")
        .unwrap()
        .at;
    // First look at once, then 50 ms, 100 ms, ... capped at 15 s.
    assert_eq!(polls[0] - created, Duration::ZERO);
    assert_eq!(polls[1] - polls[0], Duration::from_millis(50));
    assert_eq!(polls[2] - polls[1], Duration::from_millis(100));
    let gaps: Vec<Duration> = polls.windows(2).map(|w| w[1] - w[0]).collect();
    assert!(gaps.iter().all(|g| *g <= Duration::from_secs(15)));
    assert_eq!(*gaps.last().unwrap(), Duration::from_secs(15));
    // 10 minutes at <= 15 s once backed off: about 50 polls, not thousands.
    assert!(polls.len() < 60, "{} polls", polls.len());
}

#[tokio::test(start_paused = true)]
async fn a_resource_that_never_gets_ready_times_out() {
    let fake = FakeCloud::new();
    fake.set_latency(Kind::Vpc, Duration::from_secs(3600));
    let desired = vec![desired()[0].clone()];
    let report = converge(&fake, &desired, &opts()).await;
    let e = report.entry("net.vpc").unwrap();
    match &e.outcome {
        Outcome::Failed { error } => assert!(
            error.contains("did not become ready within 5m00s"),
            "{error}"
        ),
        o => panic!("{o:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn retryable_errors_are_retried() {
    let fake = FakeCloud::new();
    fake.throttle("net.vpc", 3);
    let desired = vec![desired()[0].clone()];
    assert_converges(&fake, &desired).await;
    fake.throttle("net.subnet.private.a", 100);
    let desired = self::desired()[..2].to_vec();
    let report = converge(&fake, &desired, &opts()).await;
    let e = report.entry("net.subnet.private.a").unwrap();
    assert!(
        matches!(&e.outcome, Outcome::Failed { error } if error.contains("Throttling")),
        "{e:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_failure_skips_dependents_and_lets_siblings_finish() {
    let fake = slow_fake();
    fake.fail_create(
        "db.subnet_group",
        "subnets must span two availability zones",
    );
    let desired = desired();
    let report = converge(&fake, &desired, &opts()).await;
    assert!(!report.is_success());
    let failed: Vec<&str> = report.failed().map(|e| e.id.as_str()).collect();
    assert_eq!(failed, ["db.subnet_group"]);
    assert!(matches!(
        &report.entry("db.subnet_group").unwrap().outcome,
        Outcome::Failed { error } if error.contains("subnets must span two availability zones")
    ));
    let mut skipped: Vec<&str> = report.not_attempted().map(|e| e.id.as_str()).collect();
    skipped.sort();
    assert_eq!(
        skipped,
        ["db.instance", "stable.instance", "web.asg", "web.lt"]
    );
    assert!(matches!(
        &report.entry("db.instance").unwrap().outcome,
        Outcome::NotAttempted { reason } if reason == "depends on db.subnet_group, which failed"
    ));
    let mut done: Vec<&str> = report.done().map(|e| e.id.as_str()).collect();
    done.sort();
    assert_eq!(
        done,
        [
            "files.fs",
            "files.mount.a",
            "lb.alb",
            "lb.listener.http",
            "net.subnet.private.a",
            "net.subnet.private.b",
            "net.vpc",
            "sg.alb",
            "sg.db",
            "sg.web"
        ]
    );
    // Nothing that depends on the failure was called.
    assert!(fake
        .log()
        .iter()
        .all(|c| c.id != "db.instance" && c.id != "web.lt"));
    let text = report.to_string();
    assert!(text.starts_with("Failed after "), "{text}");
    assert!(
        text.contains("10 done, 1 failed, 4 not attempted"),
        "{text}"
    );
    // The lease was released even though the apply failed.
    assert_eq!(fake.lease("demo"), None);

    // A resource that ends `failed`: the same, found by polling.
    let fake = FakeCloud::new();
    fake.fail_ready("files.fs", "error");
    let report = converge(&fake, &desired, &opts()).await;
    let failed: Vec<&str> = report.failed().map(|e| e.id.as_str()).collect();
    assert_eq!(failed, ["files.fs"]);
    let mut skipped: Vec<&str> = report.not_attempted().map(|e| e.id.as_str()).collect();
    skipped.sort();
    assert_eq!(
        skipped,
        ["files.mount.a", "stable.instance", "web.asg", "web.lt"]
    );
}

/// Mutating calls a clean apply of `desired` makes.
async fn clean_call_count(desired: &[Resource]) -> usize {
    let fake = slow_fake();
    let report = converge(&fake, desired, &opts()).await;
    assert!(report.is_success(), "{report}");
    fake.mutating_calls()
}

#[tokio::test(start_paused = true)]
async fn crash_at_every_call_then_rerun_converges() {
    let desired = desired();
    let n = clean_call_count(&desired).await;
    assert_eq!(n, desired.len());
    for point in [CrashPoint::BeforeCall, CrashPoint::AfterCall] {
        for k in 1..=n {
            let fake = slow_fake();
            fake.crash_at(k, point);
            let report = converge(&fake, &desired, &opts()).await;
            assert!(
                !report.is_success(),
                "k={k} {point:?}: the crash must fail the run"
            );
            assert!(fake.crashed());
            // The process is gone: its lease (not renewed any more) expires within a minute.
            tokio::time::advance(crate::execute::LEASE_TTL + Duration::from_secs(1)).await;
            fake.recover();
            let o = Options {
                owner: "tester@ci pid 2".into(),
                ..opts()
            };
            let report = converge(&fake, &desired, &o).await;
            assert!(
                report.is_success(),
                "k={k} {point:?}: rerun failed:\n{report}"
            );
            assert_converged(&fake, &desired).await;
        }
    }
}

/// Crash-and-rerun for a plan with updates, a replace and a delete on an existing stack.
#[tokio::test(start_paused = true)]
async fn crash_during_an_update_then_rerun_converges() {
    let before = desired();
    let mut after = desired();
    // In-place update of the database class; the LT gets new user-data -> new version -> the ASG
    // update; subnet b changes CIDR (replace), dropping the load balancer and its listener.
    after.retain(|d| !d.id.as_str().starts_with("lb."));
    let after = with_field(
        after,
        "db.instance",
        "instance_class",
        Value::str("db.t4g.small"),
    );
    let after = with_field(after, "web.lt", "instance_type", Value::str("t3.medium"));
    let o = allowing_data_loss();
    let count = {
        let fake = slow_fake();
        assert!(converge(&fake, &before, &o).await.is_success());
        let base = fake.mutating_calls();
        let plan = fresh_plan(&fake, &after).await;
        let report = apply(&fake, &scope(), &plan, &o).await.unwrap();
        assert!(report.is_success(), "{report}");
        assert_converged(&fake, &after).await;
        assert_eq!(
            fake.fields_of("web.asg")[0]["launch_template_version"],
            Value::str("2")
        );
        fake.mutating_calls() - base
    };
    assert!(count >= 5, "{count}");
    for point in [CrashPoint::BeforeCall, CrashPoint::AfterCall] {
        for k in 1..=count {
            let fake = slow_fake();
            assert!(converge(&fake, &before, &o).await.is_success());
            fake.crash_at(k, point);
            let report = converge(&fake, &after, &o).await;
            assert!(!report.is_success());
            tokio::time::advance(Duration::from_secs(31 * 60)).await;
            fake.recover();
            let report = converge(
                &fake,
                &after,
                &Options {
                    owner: "other@ci pid 9".into(),
                    ..o.clone()
                },
            )
            .await;
            assert!(report.is_success(), "k={k} {point:?}:\n{report}");
            assert_converged(&fake, &after).await;
        }
    }
}

#[tokio::test(start_paused = true)]
async fn a_replace_deletes_then_creates_and_dependents_follow() {
    let fake = converged(&desired()).await;
    // Same name (the group moves to another VPC): the old one goes first.
    let after = desired_with("sg.alb", "vpc_id", Value::str("vpc-other"));
    let plan = fresh_plan(&fake, &after).await;
    assert_eq!(
        actions_of(&plan, &["sg.alb", "sg.web", "lb.alb"]),
        [Action::Replace, Action::Update, Action::Update]
    );
    let log = applied(&fake, &plan).await;
    let gone = index_of(&log, Op::PollGone, "sg.alb").unwrap();
    let created = index_of(&log, Op::Create, "sg.alb").unwrap();
    let ready = index_of(&log, Op::PollReady, "sg.alb").unwrap();
    assert!(gone < created);
    for user in ["sg.web", "lb.alb"] {
        assert!(
            ready < index_of(&log, Op::Update, user).unwrap(),
            "{user} updated too early"
        );
    }
    // The users now name the new group.
    let new_id = fake
        .resources()
        .into_iter()
        .find(|(id, _, _)| id.as_str() == "sg.alb")
        .unwrap()
        .2;
    assert_eq!(
        fake.fields_of("lb.alb")[0]["security_group_ids"],
        Value::List(vec![Value::str(&new_id)])
    );
    assert_converged(&fake, &after).await;
}

/// A parent replaced delete-first (its name is deterministic) whose dependents are replaced with
/// it, delete-first too (they name the parent, which a replacement makes unknown): an Aurora
/// cluster restored from a snapshot and its member instances. The old members go first, then the
/// old cluster, then the restored cluster is made, then the new members in it.
#[tokio::test(start_paused = true)]
async fn a_replaced_parent_goes_after_its_replaced_dependents_and_comes_back_before_them() {
    let cluster = r("db.cluster", Kind::DbCluster)
        .with("identifier", "demo-db")
        .with("engine", "aurora-mysql")
        .with("deletion_protection", false);
    let member = |i: usize| {
        r(&format!("db.instance.{i}"), Kind::DbInstance)
            .with("identifier", format!("demo-db-{i}"))
            .with("engine", "aurora-mysql")
            .with("instance_class", "db.r7g.large")
            .with("cluster_identifier", rf("db.cluster", "id"))
    };
    let before = vec![cluster.clone(), member(1), member(2)];
    let fake = converged(&before).await;
    let after = with_field(
        before,
        "db.cluster",
        "restore_from",
        Value::str("demo-snap"),
    );
    let plan = fresh_plan(&fake, &after).await;
    for id in ["db.cluster", "db.instance.1", "db.instance.2"] {
        assert_eq!(action_of(&plan, id), Action::Replace, "{id}");
    }
    fake.clear_log();
    let o = allowing_data_loss();
    let report = apply(&fake, &scope(), &plan, &o).await.unwrap();
    assert!(report.is_success(), "{report}");
    let log = fake.log();
    let at = |op: Op, id: &str| index_of(&log, op, id).unwrap_or_else(|| panic!("{op:?} {id}"));
    for m in ["db.instance.1", "db.instance.2"] {
        assert!(
            at(Op::PollGone, m) < at(Op::Delete, "db.cluster"),
            "{m} gone first"
        );
        assert!(
            at(Op::PollReady, "db.cluster") < at(Op::Create, m),
            "{m} made in the new one"
        );
    }
    assert!(at(Op::PollGone, "db.cluster") < at(Op::Create, "db.cluster"));
    assert_converged(&fake, &after).await;
}

/// A parameter group of a new engine family has a new name: it is created first, the database
/// moves to it, and only then is the old one (which RDS will not delete while in use) deleted.
/// A security group renamed likewise; one whose name stays is deleted first.
#[tokio::test(start_paused = true)]
async fn a_renamed_parameter_group_is_created_before_the_old_one_is_deleted() {
    let with_group = |name: &str, family: &str| {
        let mut d = desired();
        d.push(
            r("db.parameter_group", Kind::DbParameterGroup)
                .with("name", name)
                .with("family", family)
                .with("description", "moodle tuning"),
        );
        with_field(
            d,
            "db.instance",
            "parameter_group_name",
            rf("db.parameter_group", "id"),
        )
    };
    let before = with_group("demo-mysql8-0", "mysql8.0");
    let fake = converged(&before).await;
    let after = with_group("demo-mysql8-4", "mysql8.4");
    let plan = fresh_plan(&fake, &after).await;
    assert_eq!(action_of(&plan, "db.parameter_group"), Action::Replace);
    let pg = change_of(&plan, "db.parameter_group");
    assert!(
        pg.notes.iter().any(|n| n.text.contains("created first")),
        "{:?}",
        pg.notes
    );
    let log = applied(&fake, &plan).await;
    let created = index_of(&log, Op::Create, "db.parameter_group").unwrap();
    let moved = index_of(&log, Op::Update, "db.instance").unwrap();
    let deleted = index_of(&log, Op::Delete, "db.parameter_group").unwrap();
    assert!(created < moved && moved < deleted, "{log:#?}");
    assert_converged(&fake, &after).await;

    // Renamed security group: created first too (same name: a_replace_deletes_then_creates...).
    let renamed = with_field(
        after.clone(),
        "sg.alb",
        "group_name",
        Value::str("demo-alb-2"),
    );
    let plan = fresh_plan(&fake, &renamed).await;
    let sg = change_of(&plan, "sg.alb");
    assert_eq!(sg.action, Action::Replace);
    assert!(crate::diff::creates_first(sg));
    let log = applied(&fake, &plan).await;
    let created = index_of(&log, Op::Create, "sg.alb").unwrap();
    let deleted = index_of(&log, Op::Delete, "sg.alb").unwrap();
    for user in ["sg.web", "lb.alb"] {
        let moved = index_of(&log, Op::Update, user).unwrap();
        assert!(created < moved && moved < deleted, "{user}: {log:#?}");
    }
    assert_converged(&fake, &renamed).await;
}

/// An untagged resource whose identity changes is deleted and a new one created.
#[tokio::test(start_paused = true)]
async fn a_moved_mount_target_is_recreated() {
    let fake = converged(&desired()).await;
    let after = desired_with(
        "files.mount.a",
        "subnet_id",
        rf("net.subnet.private.b", "id"),
    );
    assert_converges(&fake, &after).await;
}

#[tokio::test(start_paused = true)]
async fn data_loss_is_refused_without_the_flag() {
    let fake = converged(&desired()).await;
    let after: Vec<Resource> = desired()
        .into_iter()
        .filter(|d| d.id.as_str() != "files.mount.a" && d.id.as_str() != "files.fs")
        .collect();
    let after = with_field(after, "web.lt", "user_data", Value::str("#!/bin/sh\n"));
    let plan = fresh_plan(&fake, &after).await;
    let calls = fake.mutating_calls();
    let err = apply(&fake, &scope(), &plan, &opts()).await.unwrap_err();
    // (The fake numbers ids in creation order, which the kinds' ready timeouts steer.)
    let (_, _, fs) = fake
        .resources()
        .into_iter()
        .find(|(_, k, _)| *k == Kind::EfsFileSystem)
        .unwrap();
    assert!(
        err.to_string().contains(&format!(
            "files.fs (AWS::EFS::FileSystem, {fs}): delete: the stack no longer declares it"
        )),
        "{err}"
    );
    assert_eq!(fake.mutating_calls(), calls);
    let o = allowing_data_loss();
    let report = apply(&fake, &scope(), &plan, &o).await.unwrap();
    assert!(report.is_success(), "{report}");
    // The mount target went before its file system.
    let log = fake.log();
    let fs_delete = index_of(&log, Op::Delete, "files.fs").unwrap();
    let mt_gone = log
        .iter()
        .position(|c| c.op == Op::PollGone && c.kind == Some(Kind::EfsMountTarget))
        .unwrap();
    assert!(mt_gone < fs_delete);
    assert_converged(&fake, &after).await;
}

#[tokio::test(start_paused = true)]
async fn the_lease_is_exclusive_expires_and_is_released() {
    let fake = FakeCloud::new();
    let desired = desired();
    lease_to_alice(&fake).await;
    let plan = fresh_plan(&fake, &desired).await;
    let err = apply(&fake, &scope(), &plan, &opts()).await.unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("alice@laptop pid 4242"), "{msg}");
    assert!(matches!(err, ExecError::Lease(CloudError::LeaseHeld(_))));
    assert_eq!(
        fake.mutating_calls(),
        0,
        "nothing mutated while the lease is held"
    );
    // Expired: taken over.
    tokio::time::advance(Duration::from_secs(31 * 60)).await;
    let report = apply(&fake, &scope(), &plan, &opts()).await.unwrap();
    assert!(report.is_success(), "{report}");
    // Released after the apply; taken before the first mutating call.
    assert_eq!(fake.lease("demo"), None);
    let log = fake.log();
    let acquired = log
        .iter()
        .rposition(|c| c.op == Op::AcquireLease && c.id == "tester@ci pid 1")
        .unwrap();
    let first_mutation = log
        .iter()
        .position(|c| matches!(c.op, Op::Create | Op::Update | Op::Delete))
        .unwrap();
    assert!(acquired < first_mutation);
    // Released after the last mutating call (the read-back goes out beside the release).
    let released = log.iter().rposition(|c| c.op == Op::ReleaseLease).unwrap();
    let last_mutation = log
        .iter()
        .rposition(|c| matches!(c.op, Op::Create | Op::Update | Op::Delete))
        .unwrap();
    assert!(released > last_mutation);
    assert!(log[released..].iter().all(|c| !matches!(
        c.op,
        Op::Create | Op::Update | Op::Delete | Op::AcquireLease
    )));
    assert!(
        report.observed_after.is_some(),
        "read back beside the release"
    );
    // No changes: no lease at all.
    let plan = fresh_plan(&fake, &desired).await;
    assert!(!plan.has_changes());
    fake.clear_log();
    let report = apply(&fake, &scope(), &plan, &opts()).await.unwrap();
    assert!(report.is_success() && report.entries.is_empty());
    assert!(fake.log().iter().all(|c| c.op != Op::AcquireLease));
}

#[tokio::test(start_paused = true)]
async fn the_lease_of_a_process_gone_from_this_host_is_taken_over_at_once() {
    let fake = FakeCloud::new();
    let desired = desired();
    // This host's owner string with a pid no process has.
    let own = crate::execute::lease_owner();
    let (host_part, _) = own.rsplit_once(" pid ").unwrap();
    let gone = format!("{host_part} pid 4000000000");
    assert!(crate::execute::holder_is_gone(&gone));
    assert!(!crate::execute::holder_is_gone(&own), "this process runs");
    assert!(!crate::execute::holder_is_gone(
        "ann@another-host pid 4000000000"
    ));
    fake.acquire_lease(&scope(), &gone, crate::execute::LEASE_TTL)
        .await
        .unwrap();
    let plan = fresh_plan(&fake, &desired).await;
    let report = apply(&fake, &scope(), &plan, &opts()).await.unwrap();
    assert!(report.is_success(), "{report}");
    let log = fake.log();
    let broken = log
        .iter()
        .position(|c| c.op == Op::BreakLease && c.id == gone);
    let first_mutation = log
        .iter()
        .position(|c| matches!(c.op, Op::Create | Op::Update | Op::Delete));
    assert!(broken.is_some() && broken < first_mutation, "{log:?}");
}

#[tokio::test(start_paused = true)]
async fn a_lease_left_by_a_run_on_another_host_is_waited_out() {
    let fake = FakeCloud::new();
    let desired = desired();
    // A run on another host took the lease and died: nobody renews it.
    fake.acquire_lease(&scope(), "ci@runner-7 pid 4242", crate::execute::LEASE_TTL)
        .await
        .unwrap();
    let plan = fresh_plan(&fake, &desired).await;
    let started = tokio::time::Instant::now();
    let report = apply(&fake, &scope(), &plan, &opts()).await.unwrap();
    assert!(report.is_success(), "{report}");
    let waited = started.elapsed();
    assert!(
        waited >= crate::execute::LEASE_TTL && waited < crate::execute::LEASE_TTL * 2,
        "waited {waited:?}"
    );

    // A live holder renews its lease: the apply stops waiting and is refused at once.
    fake.acquire_lease(&scope(), "ann@laptop pid 7", crate::execute::LEASE_TTL)
        .await
        .unwrap();
    let renewer = {
        let fake = fake.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(20)).await;
            fake.acquire_lease(&scope(), "ann@laptop pid 7", crate::execute::LEASE_TTL)
                .await
                .unwrap();
        })
    };
    let mut changed = desired.clone();
    changed.pop();
    let plan = fresh_plan(&fake, &changed).await;
    let started = tokio::time::Instant::now();
    let err = apply(&fake, &scope(), &plan, &opts()).await.unwrap_err();
    renewer.await.unwrap();
    assert!(
        matches!(err, ExecError::Lease(CloudError::LeaseHeld(_))),
        "{err}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test(start_paused = true)]
async fn a_long_apply_renews_its_lease() {
    let fake = FakeCloud::new();
    fake.set_latency(Kind::DbInstance, Duration::from_secs(35 * 60));
    let desired = vec![lone_db()];
    let plan = fresh_plan(&fake, &desired).await;
    let watcher = {
        let fake = fake.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(32 * 60)).await;
            fake.lease("demo")
        })
    };
    let report = apply(&fake, &scope(), &plan, &opts()).await.unwrap();
    assert!(report.is_success(), "{report}");
    let lease = watcher.await.unwrap().expect("still held after 32 minutes");
    assert!(lease.expires_at > fake.now_unix() - 3 * 60);
}

#[tokio::test(start_paused = true)]
async fn an_apply_that_loses_its_lease_stops_starting_work() {
    let fake = FakeCloud::new();
    // The VPC comes first and takes 35 minutes; its subnets wait for it.
    fake.set_latency(Kind::Vpc, Duration::from_secs(35 * 60));
    let desired = desired()[..3].to_vec();
    let plan = fresh_plan(&fake, &desired).await;
    let thief = {
        let fake = fake.clone();
        tokio::spawn(async move {
            // Between two renewals (every 20 seconds), someone takes the stack over.
            tokio::time::sleep(Duration::from_secs(12 * 60)).await;
            fake.release_lease(&scope(), &opts().owner).await.unwrap();
            fake.acquire_lease(
                &scope(),
                "intruder@elsewhere pid 9",
                Duration::from_secs(3600),
            )
            .await
            .unwrap();
        })
    };
    let report = apply(&fake, &scope(), &plan, &opts()).await.unwrap();
    thief.await.unwrap();
    assert!(!report.is_success(), "{report}");
    // The subnets were never started: nothing mutates once the lease is someone else's.
    let created: Vec<_> = fake
        .log()
        .iter()
        .filter(|c| c.op == Op::Create)
        .map(|c| c.id.clone())
        .collect();
    assert_eq!(created.len(), 1, "only the VPC was created: {created:?}");
    // The intruder's lease is left alone.
    assert_eq!(
        fake.lease("demo").unwrap().owner,
        "intruder@elsewhere pid 9"
    );
}

#[tokio::test(start_paused = true)]
async fn destroy_deletes_everything_in_reverse_order_and_nothing_else() {
    let fake = slow_fake();
    let desired = desired();
    assert!(converge(&fake, &desired, &opts()).await.is_success());
    // Another stack's VPC and an untagged security group stay untouched.
    let other = BTreeMap::from([(
        "tags".to_string(),
        Value::Map(BTreeMap::from([(
            "moodlestack:stack".to_string(),
            Value::str("other"),
        )])),
    )]);
    fake.insert_foreign(Kind::Vpc, "vpc-other", other);
    fake.insert_foreign(Kind::SecurityGroup, "sg-handmade", BTreeMap::new());
    let observed = fake.observe(&scope(), &desired).await.unwrap();
    assert_eq!(observed.len(), desired.len());

    // Refused without --allow-data-loss: the file system holds data no snapshot keeps.
    let o = Options {
        final_snapshot_id: Some("demo-db-final-1".into()),
        ..opts()
    };
    let err = destroy(&fake, &scope(), &observed, &desired, &o)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("files.fs"), "{err}");
    assert_eq!(fake.deletes().len(), 0);

    let o = Options {
        allow_data_loss: true,
        ..o
    };
    fake.clear_log();
    let report = destroy(&fake, &scope(), &observed, &desired, &o)
        .await
        .unwrap();
    assert!(report.is_success(), "{report}");
    assert_eq!(report.done().count(), desired.len());
    // Only the foreign resources remain.
    let left: Vec<String> = fake.resources().into_iter().map(|(_, _, p)| p).collect();
    assert_eq!(left, ["sg-handmade", "vpc-other"]);
    // Every resource is gone before anything it uses is deleted.
    let log = fake.log();
    for d in &desired {
        if !spec(d.kind).taggable() {
            continue; // untagged: checked below
        }
        let gone = index_of(&log, Op::PollGone, d.id.as_str()).expect("deleted and gone");
        for dep in d.delete_deps() {
            let deleted = index_of(&log, Op::Delete, dep.as_str()).unwrap();
            assert!(gone < deleted, "{dep} deleted before {} was gone", d.id);
        }
    }
    let mt_gone = log
        .iter()
        .position(|c| c.op == Op::PollGone && c.kind == Some(Kind::EfsMountTarget))
        .unwrap();
    assert!(mt_gone < index_of(&log, Op::Delete, "files.fs").unwrap());
    assert!(mt_gone < index_of(&log, Op::Delete, "net.subnet.private.a").unwrap());
    let listener_gone = log
        .iter()
        .position(|c| c.op == Op::PollGone && c.kind == Some(Kind::Listener))
        .unwrap();
    assert!(listener_gone < index_of(&log, Op::Delete, "lb.alb").unwrap());
    // The database took its final snapshot; protection lifted only because of the flag.
    let deleted_with = |id: &str| {
        let (_, options) = fake
            .deletes()
            .into_iter()
            .find(|(d, _)| d.as_str() == id)
            .unwrap();
        options
    };
    let db = deleted_with("db.instance");
    assert_eq!(db.final_snapshot_id.as_deref(), Some("demo-db-final-1"));
    assert!(db.lift_deletion_protection);
    assert_eq!(
        deleted_with("net.vpc"),
        DeleteOptions {
            final_snapshot_id: None,
            lift_deletion_protection: true
        }
    );
    // Observing again finds nothing.
    assert!(fake.observe(&scope(), &desired).await.unwrap().is_empty());
}

/// A policy document only names what it grants access to, and AWS keeps a role whose policy
/// names deleted resources: a destroy deletes the database and the file system that the node
/// role's policy names without waiting for the role to go (which waits for its instance
/// profile, its launch templates and its instances on AWS).
#[tokio::test(start_paused = true)]
async fn a_destroy_does_not_wait_for_a_policy_that_only_names_a_resource() {
    let policy = Value::Interpolated(vec![
        Segment::Lit("{\"Resource\":[\"".into()),
        Segment::Ref(Ref::new("db.instance", "arn")),
        Segment::Lit("\",\"".into()),
        Segment::Ref(Ref::new("files.fs", "arn")),
        Segment::Lit("\"]}".into()),
    ]);
    let mut desired = desired();
    desired.push(
        r("iam.role", Kind::IamRole)
            .with("role_name", "demo-node")
            .with(
                "inline_policies",
                Value::Map(BTreeMap::from([("demo-node".to_string(), policy)])),
            ),
    );
    let fake = slow_fake();
    fake.set_latency(Kind::IamRole, Duration::from_secs(60));
    assert!(converge(&fake, &desired, &opts()).await.is_success());
    let role = desired.last().unwrap();
    assert!(role.deps().iter().any(|d| d.as_str() == "db.instance"));
    assert!(role.delete_deps().is_empty(), "{:?}", role.delete_deps());

    let report = destroyed(&fake, &desired, &allowing_data_loss()).await;
    assert!(report.is_success(), "{report}");
    let log = fake.log();
    let role_gone = index_of(&log, Op::PollGone, "iam.role").expect("the role is gone");
    for named in ["db.instance", "files.fs"] {
        let deleted = index_of(&log, Op::Delete, named).expect("deleted");
        assert!(deleted < role_gone, "{named} waited for the role");
    }
    assert!(fake.observe(&scope(), &desired).await.unwrap().is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_destroy_under_a_lease_taken_first_observes_once_and_releases_it() {
    let fake = FakeCloud::new();
    let desired = desired();
    assert!(converge(&fake, &desired, &opts()).await.is_success());
    fake.clear_log();
    // The lease first, then the one observation the destroy works from.
    let (lease, lifted) = take_lease(&fake, &scope(), &opts()).await.unwrap();
    assert_eq!(lease.owner, "tester@ci pid 1");
    assert_eq!(lifted, None);
    assert_eq!(fake.lease("demo").unwrap().owner, "tester@ci pid 1");
    let observed = fake.observe(&scope(), &desired).await.unwrap();
    let o = Options {
        held: Some(lease),
        ..allowing_data_loss()
    };
    let report = destroy(&fake, &scope(), &observed, &desired, &o)
        .await
        .unwrap();
    assert!(report.is_success(), "{report}");
    assert_eq!(
        report.observed_after,
        Some(vec![]),
        "read back beside the release"
    );
    assert_eq!(fake.lease("demo"), None, "released at the end");
    let log = fake.log();
    let ops = |op: Op| log.iter().filter(|c| c.op == op).count();
    assert_eq!(ops(Op::AcquireLease), 1, "not taken again");
    let acquired = log.iter().position(|c| c.op == Op::AcquireLease).unwrap();
    let first_delete = log.iter().position(|c| c.op == Op::Delete).unwrap();
    assert_eq!(
        log[acquired..first_delete]
            .iter()
            .filter(|c| c.op == Op::Observe)
            .count(),
        1,
        "one observation between the lease and the first delete: no re-check"
    );
    // Held by someone else: take_lease refuses, nothing is deleted.
    assert!(converge(&fake, &desired, &opts()).await.is_success());
    lease_to_alice(&fake).await;
    let err = take_lease(&fake, &scope(), &opts()).await.unwrap_err();
    assert!(
        matches!(err, ExecError::Lease(CloudError::LeaseHeld(_))),
        "{err}"
    );
}

#[tokio::test(start_paused = true)]
async fn destroy_refuses_a_protected_database_without_the_flag() {
    let desired = vec![lone_db().with("deletion_protection", true)];
    let fake = converged(&desired).await;
    let observed = fake.observe(&scope(), &desired).await.unwrap();
    for (final_snapshot_id, refusal) in [
        (Some("snap"), "deletion protection is on"),
        (None, "--skip-final-snapshot"),
    ] {
        let o = Options {
            final_snapshot_id: final_snapshot_id.map(str::to_string),
            ..opts()
        };
        let err = destroy(&fake, &scope(), &observed, &desired, &o)
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains(refusal), "{err}");
    }
    let o = Options {
        final_snapshot_id: Some("snap".into()),
        allow_data_loss: true,
        ..opts()
    };
    let report = destroy(&fake, &scope(), &observed, &desired, &o)
        .await
        .unwrap();
    assert!(report.is_success(), "{report}");
    assert!(fake.resources().is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_saved_plan_is_refused_after_drift() {
    let fake = converged(&desired()).await;
    let changed = desired_with("db.instance", "instance_class", Value::str("db.t4g.large"));
    let saved = fresh_plan(&fake, &changed).await;
    let json = serde_json::to_string(&saved).unwrap();
    let saved: Plan = serde_json::from_str(&json).unwrap();
    // Unchanged world: accepted.
    let observed = fake.observe(&scope(), &changed).await.unwrap();
    check_saved_plan(&saved, &observed).unwrap();
    // Someone changes the security group rules by hand.
    fake.drift("sg.web", "ingress", Value::List(vec![]));
    let observed = fake.observe(&scope(), &changed).await.unwrap();
    let err = check_saved_plan(&saved, &observed).unwrap_err().to_string();
    assert!(err.contains("sg.web") && err.contains("ingress"), "{err}");
    // A resource that appeared.
    let fake2 = fake.clone();
    fake2.insert_foreign(
        Kind::Vpc,
        "vpc-new",
        BTreeMap::from([(
            "tags".to_string(),
            Value::Map(BTreeMap::from([
                ("moodlestack:stack".to_string(), Value::str("demo")),
                ("moodlestack:id".to_string(), Value::str("net.vpc2")),
            ])),
        )]),
    );
    let observed = fake.observe(&scope(), &changed).await.unwrap();
    let err = check_saved_plan(&saved, &observed).unwrap_err().to_string();
    assert!(err.contains("vpc-new"), "{err}");
}

#[tokio::test(start_paused = true)]
async fn cancel_stops_starting_work_and_releases_the_lease() {
    let fake = slow_fake();
    let desired = desired();
    let plan = fresh_plan(&fake, &desired).await;
    let o = opts();
    let cancel = o.cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(2)).await;
        cancel.cancel();
    });
    let report = apply(&fake, &scope(), &plan, &o).await.unwrap();
    assert!(report.interrupted);
    assert!(!report.is_success());
    assert!(report.done().count() >= 4);
    assert!(report
        .entry("db.instance")
        .is_some_and(|e| matches!(e.outcome, Outcome::NotAttempted { .. })));
    assert_eq!(fake.lease("demo"), None);
    // A rerun converges.
    assert_converges(&fake, &desired).await;
}

/// Rollout: new user-data -> a new launch template version; the group points at it; the stable
/// instance is replaced from it, and its old copy keeps running until the new version exists.
#[tokio::test(start_paused = true)]
async fn rollout_writes_a_new_version_and_replaces_the_stable_instance() {
    let fake = slow_fake();
    fake.set_latency(Kind::Instance, Duration::from_millis(1_550));
    assert!(converge(&fake, &desired(), &opts()).await.is_success());
    let after = desired_with("web.lt", "user_data", Value::str("#!/bin/sh\necho v2\n"));
    let plan = fresh_plan(&fake, &after).await;
    assert_eq!(
        actions_of(&plan, &["web.lt", "web.asg", "stable.instance"]),
        [Action::Update, Action::Update, Action::Replace]
    );

    // The launch template update fails: the stable instance is left alone.
    fake.fail_update("web.lt", "user data too large");
    let report = apply(&fake, &scope(), &plan, &opts()).await.unwrap();
    assert!(!report.is_success());
    assert!(fake
        .log()
        .iter()
        .all(|c| !(c.id == "stable.instance" && c.op == Op::Delete)));
    assert_eq!(fake.fields_of("stable.instance").len(), 1);

    let fake = slow_fake();
    fake.set_latency(Kind::Instance, Duration::from_millis(1_550));
    assert!(converge(&fake, &desired(), &opts()).await.is_success());
    fake.clear_log();
    let report = converge(&fake, &after, &opts()).await;
    assert!(report.is_success(), "{report}");
    let log = fake.log();
    let lt_ready = index_of(&log, Op::PollReady, "web.lt").unwrap();
    let old_deleted = index_of(&log, Op::Delete, "stable.instance").unwrap();
    let new_created = index_of(&log, Op::Create, "stable.instance").unwrap();
    assert!(lt_ready < old_deleted && old_deleted < new_created);
    assert!(lt_ready < index_of(&log, Op::Update, "web.asg").unwrap());
    assert_eq!(
        fake.fields_of("web.asg")[0]["launch_template_version"],
        Value::str("2")
    );
    assert_eq!(
        fake.fields_of("stable.instance")[0]["launch_template_version"],
        Value::str("2")
    );
    assert_converged(&fake, &after).await;
}

/// Destroy crashed at every call, then run again: nothing of the stack is left.
#[tokio::test(start_paused = true)]
async fn crash_during_destroy_then_rerun_leaves_nothing() {
    let desired = desired();
    let o = Options {
        allow_data_loss: true,
        final_snapshot_id: Some("demo-db-final-1".into()),
        ..opts()
    };
    for point in [CrashPoint::BeforeCall, CrashPoint::AfterCall] {
        for k in 1..=desired.len() {
            let fake = slow_fake();
            assert!(converge(&fake, &desired, &o).await.is_success());
            fake.crash_at(k, point);
            let observed = fake.observe(&scope(), &desired).await.unwrap();
            let report = destroy(&fake, &scope(), &observed, &desired, &o)
                .await
                .unwrap();
            assert!(!report.is_success());
            tokio::time::advance(Duration::from_secs(31 * 60)).await;
            fake.recover();
            let observed = fake.observe(&scope(), &desired).await.unwrap();
            let report = destroy(&fake, &scope(), &observed, &desired, &o)
                .await
                .unwrap();
            assert!(report.is_success(), "k={k} {point:?}:\n{report}");
            assert!(
                fake.resources().is_empty(),
                "k={k} {point:?}: {:?}",
                fake.resources()
            );
        }
    }
}

/// Two applies planned from the same state: the second one, run after the first, refuses its
/// stale plan once it holds the lease (it would otherwise create duplicates).
#[tokio::test(start_paused = true)]
async fn a_stale_plan_is_refused_once_the_lease_is_held() {
    let fake = FakeCloud::new();
    let desired = desired();
    let first = fresh_plan(&fake, &desired).await;
    let second = fresh_plan(&fake, &desired).await;
    assert!(apply(&fake, &scope(), &first, &opts())
        .await
        .unwrap()
        .is_success());
    let calls = fake.mutating_calls();
    let o = Options {
        owner: "bob@ci pid 7".into(),
        ..opts()
    };
    let err = apply(&fake, &scope(), &second, &o).await.unwrap_err();
    assert!(matches!(err, ExecError::Stale { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("net.vpc (vpc, vpc-") && msg.contains("appeared"),
        "{msg}"
    );
    assert_eq!(fake.mutating_calls(), calls, "nothing mutated");
    assert_eq!(fake.lease("demo"), None, "lease released");
    assert_converged(&fake, &desired).await;

    // A saved plan (strict): any change of the observation refuses, even one the plan does not
    // touch; a fresh plan (the default) tolerates it.
    let mut changed = self::desired();
    changed[7]
        .fields
        .insert("instance_class".into(), Value::str("db.t4g.large"));
    let plan = fresh_plan(&fake, &changed).await;
    fake.drift("web.asg", "desired_capacity", Value::Int(3));
    let strict = Options {
        verify: Verify::SameObservation,
        ..opts()
    };
    let err = apply(&fake, &scope(), &plan, &strict).await.unwrap_err();
    assert!(
        err.to_string().contains("web.asg") && err.to_string().contains("desired_capacity changed"),
        "{err}"
    );
    assert_eq!(fake.mutating_calls(), calls);
    let report = apply(&fake, &scope(), &plan, &opts()).await.unwrap();
    assert!(report.is_success(), "{report}");

    // Destroy: a resource that appears after the listing.
    let calls = fake.mutating_calls();
    let observed = fake.observe(&scope(), &changed).await.unwrap();
    let extra = Resource::new("sg.extra", Kind::SecurityGroup)
        .with("vpc_id", Value::str("vpc-x"))
        .with("group_name", "demo-extra")
        .with("tags", tags("sg.extra"));
    fake.create(&scope(), &extra).await.unwrap();
    let calls = calls + 1;
    let o = allowing_data_loss();
    let err = destroy(&fake, &scope(), &observed, &changed, &o)
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("sg.extra (security_group, sg-")
            && err.to_string().contains("appeared"),
        "{err}"
    );
    assert_eq!(fake.mutating_calls(), calls);
}

/// With fewer slots than ready work, the slow chains start first: the database (40-minute
/// timeout) is not queued behind quick resources.
#[tokio::test(start_paused = true)]
async fn slow_chains_start_first_when_slots_are_scarce() {
    let fake = FakeCloud::new();
    let mut desired = vec![r("db.instance", Kind::DbInstance)
        .with("identifier", "demo-db")
        .with("db_subnet_group_name", "g")
        .with("vpc_security_group_ids", Value::List(vec![]))];
    for n in 0..5 {
        desired.insert(
            0,
            r(&format!("secret.{n}"), Kind::Secret).with("name", format!("demo-s{n}")),
        );
    }
    let o = Options {
        parallelism: 1,
        ..opts()
    };
    let report = converge(&fake, &desired, &o).await;
    assert!(report.is_success(), "{report}");
    let first = fake.log().into_iter().find(|c| c.op == Op::Create).unwrap();
    assert_eq!(first.id, "db.instance");
}

/// Read-back names a field that AWS did not take; fields that only follow from it are counted.
#[tokio::test(start_paused = true)]
async fn read_back_names_fields_that_did_not_take() {
    let desired = desired();
    let fake = converged(&desired).await;
    assert!(read_back(&fake, &scope(), &desired)
        .await
        .unwrap()
        .is_empty());
    fake.ignore_field("web.asg", "max_size");
    let after = desired_with("web.asg", "max_size", Value::Int(6));
    let report = converge(&fake, &after, &opts()).await;
    assert!(report.is_success(), "{report}");
    let problems = read_back(&fake, &scope(), &after).await.unwrap();
    assert_eq!(
        problems,
        ["web.asg (autoscaling_group): `max_size` is 4, want 6"]
    );

    // A replace-forcing field that did not take: its dependents' unknown values are counted.
    fake.ignore_field("net.vpc", "cidr_block");
    fake.drift("net.vpc", "cidr_block", Value::str("10.9.0.0/16"));
    let problems = read_back(&fake, &scope(), &after).await.unwrap();
    assert_eq!(
        problems[0],
        "net.vpc (vpc): `cidr_block` is \"10.9.0.0/16\", want \"10.0.0.0/16\""
    );
    assert!(
        problems.last().unwrap().starts_with("(and "),
        "{problems:?}"
    );
}

/// Unchanged resources are not polled when their observed attributes suffice; one still being
/// created (after a crash) is waited for.
#[tokio::test(start_paused = true)]
async fn unchanged_resources_are_read_only_when_needed() {
    let desired = desired();
    let fake = converged(&desired).await;
    // A replacement.
    let after = with_field(
        desired.clone(),
        "stable.instance",
        "http_tokens",
        Value::str("optional"),
    );
    fake.clear_log();
    assert!(converge(&fake, &after, &opts()).await.is_success());
    let polled: Vec<String> = fake
        .log()
        .into_iter()
        .filter(|c| matches!(c.op, Op::PollReady | Op::PollPending))
        .map(|c| c.id)
        .collect();
    assert_eq!(
        polled,
        ["stable.instance"],
        "only the changed resource is polled"
    );

    // The database is still being created when the run that created it crashed: the launch
    // template (whose user-data needs its endpoint) waits for it.
    let k = {
        let probe = FakeCloud::new();
        probe.set_latency(Kind::DbInstance, Duration::from_secs(600));
        assert!(converge(&probe, &desired, &opts()).await.is_success());
        let log = probe.log();
        let mutating = log
            .iter()
            .filter(|c| matches!(c.op, Op::Create | Op::Update | Op::Delete));
        1 + mutating.take_while(|c| c.id != "db.instance").count()
    };
    let fake = FakeCloud::new();
    fake.set_latency(Kind::DbInstance, Duration::from_secs(600));
    fake.crash_at(k, CrashPoint::AfterCall);
    let report = converge(&fake, &desired, &opts()).await;
    assert!(!report.is_success());
    fake.recover();
    let plan = fresh_plan(&fake, &desired).await;
    let db = change_of(&plan, "db.instance");
    assert_eq!(db.action, Action::NoOp);
    // The same owner takes its own leftover lease.
    let report = apply(&fake, &scope(), &plan, &opts()).await.unwrap();
    assert!(report.is_success(), "{report}");
    let log = fake.log();
    let created = index_of(&log, Op::Create, "web.lt").unwrap();
    let db_ready = log
        .iter()
        .rposition(|c| c.op == Op::PollReady && c.id == "db.instance")
        .unwrap();
    assert!(
        db_ready < created,
        "the launch template waited for the database"
    );
    assert_converged(&fake, &desired).await;
}

/// A destroy interrupted while the database was being deleted: the next destroy waits for it
/// instead of asking to delete it again.
#[tokio::test(start_paused = true)]
async fn destroy_waits_for_resources_already_being_deleted() {
    let fake = FakeCloud::new();
    let desired = desired();
    let o = Options {
        allow_data_loss: true,
        final_snapshot_id: Some("snap".into()),
        ..opts()
    };
    assert!(converge(&fake, &desired, &o).await.is_success());
    fake.set_latency(Kind::DbInstance, Duration::from_secs(300));
    let observed = fake.observe(&scope(), &desired).await.unwrap();
    let cancel = o.cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(60)).await;
        cancel.cancel();
    });
    let report = destroy(&fake, &scope(), &observed, &desired, &o)
        .await
        .unwrap();
    assert!(report.interrupted);
    let observed = fake.observe(&scope(), &desired).await.unwrap();
    let db = observed.iter().find(|r| r.id == "db.instance").unwrap();
    assert_eq!(db.status, "deleting");
    let o = Options {
        cancel: Cancel::new(),
        ..o
    };
    let report = destroy(&fake, &scope(), &observed, &desired, &o)
        .await
        .unwrap();
    assert!(report.is_success(), "{report}");
    let db_deletes = fake
        .log()
        .iter()
        .filter(|c| c.op == Op::Delete && c.id == "db.instance")
        .count();
    assert_eq!(db_deletes, 1, "the database was asked to be deleted once");
    assert!(fake.resources().is_empty());
}

#[test]
fn a_run_that_stopped_a_moment_ago_is_given_time_to_show_what_it_created() {
    use crate::execute::{settle_after_crash, CREATE_PROPAGATION, LEASE_TTL};
    use moodlestack_model::LeaseInfo;
    let now = 1_800_000_000;
    let own = crate::execute::lease_owner();
    let (host_part, _) = own.rsplit_once(" pid ").unwrap();
    let lease = |owner: &str, expires_in: i64| LeaseInfo {
        owner: owner.to_string(),
        acquired_at: now - 300,
        expires_at: now.checked_add_signed(expires_in).unwrap(),
    };
    let gone = format!("{host_part} pid 4000000000");
    // No lease: nothing crashed.
    assert_eq!(settle_after_crash(None, LEASE_TTL, now), Duration::ZERO);
    // A live holder (this process; another host's unexpired lease): apply deals with it later.
    for live in [lease(&own, 55), lease("ann@another-host pid 7", 55)] {
        assert_eq!(
            settle_after_crash(Some(&live), LEASE_TTL, now),
            Duration::ZERO
        );
    }
    // Killed here a moment ago (renewed 5 s ago): it may have created something just now.
    assert_eq!(
        settle_after_crash(Some(&lease(&gone, 55)), LEASE_TTL, now),
        CREATE_PROPAGATION
    );
    // Last renewed 35 s ago: the renewal due 15 s ago never came, so it was gone by then and
    // what it made is listed by now.
    assert_eq!(
        settle_after_crash(Some(&lease(&gone, 25)), LEASE_TTL, now),
        Duration::ZERO
    );
    // Last renewed 24 s ago: gone 4 s ago at the latest, 6 s left.
    assert_eq!(
        settle_after_crash(Some(&lease(&gone, 36)), LEASE_TTL, now),
        Duration::from_secs(6)
    );
    // Another host's lease that expired unreleased long ago: nothing to wait for.
    assert_eq!(
        settle_after_crash(Some(&lease("ann@another-host pid 7", -1)), LEASE_TTL, now),
        Duration::ZERO
    );
}

/// What the fake lists of `kind` (its physical ids), in `observed`.
fn physical_of(observed: &[Observed], kind: Kind) -> Vec<String> {
    observed
        .iter()
        .filter(|o| o.kind == kind)
        .map(|o| o.physical_id.clone())
        .collect()
}

#[tokio::test(start_paused = true)]
async fn a_destroy_reads_again_until_aws_no_longer_lists_what_it_deleted() {
    let desired = desired();
    let fake = converged(&desired).await;
    let before = fake.observe(&scope(), &desired).await.unwrap();
    let vpc = physical_of(&before, Kind::Vpc);
    // EC2's describes list the deleted VPC for three more reads.
    let (report, notes) =
        destroyed_while_the_vpc_lingers(&fake, &desired, 3, allowing_data_loss()).await;
    assert_eq!(
        notes,
        [
            "AWS still lists 1 resource this run deleted (its describes lag behind its deletes): \
          reading the stack again until it does not"
        ]
    );
    assert!(report.deleted.contains(&(Kind::Vpc, vpc[0].clone())));
    assert_eq!(report.observed_after, Some(vec![]), "read until it is gone");
    let log = fake.log();
    let vpc_deleted = index_of(&log, Op::Delete, "net.vpc").expect("deleted");
    let reads = log[vpc_deleted..]
        .iter()
        .filter(|c| c.op == Op::Observe)
        .count();
    assert_eq!(reads, 4, "three reads listed the VPC, the fourth did not");
}

#[tokio::test(start_paused = true)]
async fn an_apply_that_replaces_a_group_reads_back_the_new_one_only() {
    let mut desired = desired();
    let fake = converged(&desired).await;
    let before = fake.observe(&scope(), &desired).await.unwrap();
    // A group's name cannot change in place: a new group replaces it. EC2's describes list the
    // old one beside it for two more reads (both carry `moodlestack:id` sg.alb).
    let i = desired
        .iter()
        .position(|d| d.id.as_str() == "sg.alb")
        .unwrap();
    desired[i] = security_group("sg.alb", "demo-alb-2", "load balancer", None);
    fake.linger(Kind::SecurityGroup, 2);
    let report = converge(&fake, &desired, &opts()).await;
    assert!(report.is_success(), "{report}");
    assert_eq!(report.entry("sg.alb").unwrap().action, Action::Replace);
    let after = report.observed_after.expect("read beside the release");
    let groups = |seen: &[Observed]| -> Vec<String> {
        seen.iter()
            .filter(|o| o.id.logical().is_some_and(|id| id.as_str() == "sg.alb"))
            .map(|o| o.physical_id.clone())
            .collect()
    };
    let (old, new) = (groups(&before), groups(&after));
    assert_eq!(new.len(), 1, "one sg.alb: {new:?}");
    assert_ne!(old, new, "the new group");
    assert!(report
        .deleted
        .contains(&(Kind::SecurityGroup, old[0].clone())));
    let problems = read_back_of(&scope(), &desired, &after).unwrap();
    assert!(problems.is_empty(), "{problems:#?}");
}

/// Destroys the stack of `desired` with `base` while its deleted VPC stays listed: the read after
/// the run stops waiting `secs` seconds in and keeps the listing (for destroy to report it as
/// left), with a note.
async fn assert_the_vpc_is_still_listed_after(base: Options, secs: u64) {
    let desired = desired();
    let fake = converged(&desired).await;
    let vpc = physical_of(&fake.observe(&scope(), &desired).await.unwrap(), Kind::Vpc);
    let (report, notes) = destroyed_while_the_vpc_lingers(&fake, &desired, usize::MAX, base).await;
    let after = report.observed_after.expect("read beside the release");
    assert_eq!(physical_of(&after, Kind::Vpc), vpc);
    let note = format!(
        "AWS still lists vpc {} {secs} s after this run deleted it",
        vpc[0]
    );
    assert!(notes.contains(&note), "{notes:#?}");
}

#[tokio::test(start_paused = true)]
async fn a_listing_that_outlasts_the_wait_is_reported() {
    assert_the_vpc_is_still_listed_after(allowing_data_loss(), 120).await;
}

#[tokio::test(start_paused = true)]
async fn ctrl_c_ends_the_wait_for_stale_listings() {
    let cancel = Cancel::new();
    let later = cancel.clone();
    // The deletes take no time on the fake: at 5 s the run waits for the VPC's listing.
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(5)).await;
        later.cancel();
    });
    let o = Options {
        cancel,
        ..allowing_data_loss()
    };
    assert_the_vpc_is_still_listed_after(o, 5).await;
}

#[tokio::test(start_paused = true)]
async fn a_resource_replaced_under_its_name_is_not_a_stale_listing() {
    let mut desired = desired();
    let fake = converged(&desired).await;
    // A new port replaces the database under the same identifier (delete, then create): what
    // RDS lists as `demo-db` afterwards is the new one.
    fake.linger(Kind::DbInstance, 2);
    let i = desired
        .iter()
        .position(|d| d.id.as_str() == "db.instance")
        .unwrap();
    desired[i] = desired[i].clone().with("port", 3307);
    let progress = Arc::new(Recorder::default());
    let o = Options {
        progress: progress.clone(),
        ..allowing_data_loss()
    };
    let report = converge(&fake, &desired, &o).await;
    assert!(report.is_success(), "{report}");
    assert_eq!(report.entry("db.instance").unwrap().action, Action::Replace);
    assert!(!report
        .deleted
        .contains(&(Kind::DbInstance, "demo-db".into())));
    assert_eq!(progress.notes(), Vec::<String>::new());
    let after = report.observed_after.expect("read beside the release");
    let problems = read_back_of(&scope(), &desired, &after).unwrap();
    assert!(problems.is_empty(), "{problems:#?}");
}

/// Destroys what `fake` holds of `desired` with `base` while its deleted VPC is listed by `reads`
/// more observations; the successful report and the notes of the run.
async fn destroyed_while_the_vpc_lingers(
    fake: &FakeCloud,
    desired: &[Resource],
    reads: usize,
    base: Options,
) -> (Report, Vec<String>) {
    fake.linger(Kind::Vpc, reads);
    let progress = Arc::new(Recorder::default());
    let o = Options {
        progress: progress.clone(),
        ..base
    };
    let report = destroyed(fake, desired, &o).await;
    assert!(report.is_success(), "{report}");
    (report, progress.notes())
}

/// Keeps every event.
#[derive(Default)]
struct Recorder(std::sync::Mutex<Vec<Event>>);

impl Recorder {
    /// The notes among the events.
    fn notes(&self) -> Vec<String> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter_map(|e| match e {
                Event::Note(n) => Some(n.clone()),
                _ => None,
            })
            .collect()
    }
}

impl Progress for Recorder {
    fn event(&self, event: &Event) {
        self.0.lock().unwrap().push(event.clone());
    }
}
