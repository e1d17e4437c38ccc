//! Emulator tests of the EC2 and SSM modules (aws_ec2): every EC2 kind through the `Cloud` trait
//! (create -> observe shows exactly the desired fields -> update in place -> observe -> delete ->
//! poll Gone), end states checked with a plain SDK client, the requests checked on the wire (tags
//! on the create call itself, one describe per kind), AMI and parameter lookups, and the lease.

use crate::harness::{Emulator, REGION};
use moodlestack_aws::AwsCloud;
use moodlestack_model::{
    spec, Cloud, CloudError, Compare, DeleteOptions, Fields, Kind, Observed, Readiness, ResourceId,
    Scope, Value, Want,
};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const STACK: &str = "ec2test";

// ------------------------------------------------------------------------------ test plumbing

/// A TCP proxy in front of the emulator that keeps every byte the SDK sends, so the tests can
/// check the requests themselves (which action carried which parameters).
struct Wire {
    endpoint: String,
    sent: Arc<Mutex<Vec<u8>>>,
}

impl Wire {
    async fn start(target: &str) -> Wire {
        let target = target.trim_start_matches("http://").to_string();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let sent = Arc::new(Mutex::new(Vec::new()));
        let log = sent.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let server = TcpStream::connect(&target).await.unwrap();
                let log = log.clone();
                tokio::spawn(async move {
                    let (mut cr, mut cw) = client.into_split();
                    let (mut sr, mut sw) = server.into_split();
                    let up = async move {
                        let mut buf = vec![0u8; 65536];
                        loop {
                            let n = match cr.read(&mut buf).await {
                                Ok(0) | Err(_) => break,
                                Ok(n) => n,
                            };
                            log.lock().unwrap().extend_from_slice(&buf[..n]);
                            if sw.write_all(&buf[..n]).await.is_err() {
                                break;
                            }
                        }
                        let _ = sw.shutdown().await;
                    };
                    let down = async move {
                        let _ = tokio::io::copy(&mut sr, &mut cw).await;
                    };
                    tokio::join!(up, down);
                });
            }
        });
        Wire { endpoint, sent }
    }

    /// Query-protocol request bodies sent so far (`Action=...&...`), URL-decoded.
    fn requests(&self) -> Vec<String> {
        let raw = String::from_utf8_lossy(&self.sent.lock().unwrap()).to_string();
        raw.split("Action=")
            .skip(1)
            .map(|r| {
                let body = r.split("POST /").next().unwrap_or(r);
                format!("Action={}", decode(body))
            })
            .collect()
    }

    /// The actions sent so far (EC2 `Action=`; JSON services by their `X-Amz-Target`).
    fn actions(&self) -> Vec<String> {
        self.requests()
            .iter()
            .map(|r| {
                r["Action=".len()..]
                    .split('&')
                    .next()
                    .unwrap_or_default()
                    .to_string()
            })
            .collect()
    }

    fn clear(&self) {
        self.sent.lock().unwrap().clear();
    }
}

fn decode(s: &str) -> String {
    let mut out = Vec::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => {
                let hex = std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(v) => {
                        out.push(v);
                        i += 3;
                    }
                    Err(_) => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).to_string()
}

async fn config_for(endpoint: &str) -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new(REGION))
        .endpoint_url(endpoint)
        .credentials_provider(aws_sdk_ec2::config::Credentials::new(
            "testing",
            "testing",
            None,
            None,
            "moodlestack-tests",
        ))
        .load()
        .await
}

struct Env {
    _emu: Emulator,
    wire: Wire,
    cloud: AwsCloud,
    ec2: aws_sdk_ec2::Client,
    scope: Scope,
}

async fn env() -> Env {
    let emu = Emulator::start();
    let wire = Wire::start(&emu.endpoint).await;
    let cloud = AwsCloud::from_config(&config_for(&wire.endpoint).await);
    let ec2 = aws_sdk_ec2::Client::new(&emu.sdk_config().await);
    let scope = Scope {
        stack: STACK.into(),
        region: REGION.into(),
    };
    Env {
        _emu: emu,
        wire,
        cloud,
        ec2,
        scope,
    }
}

fn tags(id: &str) -> Value {
    Value::Map(BTreeMap::from([
        ("moodlestack:stack".to_string(), Value::str(STACK)),
        ("moodlestack:id".to_string(), Value::str(id)),
        ("Name".to_string(), Value::str(format!("{STACK}-{id}"))),
    ]))
}

fn fields(id: &str, pairs: Vec<(&str, Value)>) -> Fields {
    let mut f: Fields = pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
    f.insert("tags".into(), tags(id));
    f
}

fn s(v: &str) -> Value {
    Value::str(v)
}

/// The fields of `desired` that `observed` does not match, by the kind's comparison rules.
fn diff(kind: Kind, desired: &Fields, observed: &Observed) -> Vec<String> {
    let sorted = |l: &[Value]| {
        let mut v: Vec<String> = l.iter().map(|x| x.to_json().to_string()).collect();
        v.sort();
        v
    };
    let mut out = Vec::new();
    for (name, want) in desired {
        let fs = spec(kind)
            .field(name)
            .unwrap_or_else(|| panic!("{kind} has no field {name}"));
        let have = observed.fields.get(name);
        let same = match (fs.compare, want, have) {
            (_, _, None) => false,
            (Compare::Set, Value::List(w), Some(Value::List(h))) => sorted(w) == sorted(h),
            (Compare::Subset, Value::Map(w), Some(Value::Map(h))) => {
                w.iter().all(|(k, v)| h.get(k) == Some(v))
            }
            (_, w, Some(h)) => w == h,
        };
        if !same {
            out.push(format!(
                "{name}: want {} have {}",
                want.display_short(),
                have.map(Value::display_short).unwrap_or_default()
            ));
        }
    }
    for name in observed.fields.keys() {
        assert!(
            spec(kind).field(name).is_some(),
            "{kind} observed an unknown field {name}"
        );
    }
    out
}

impl Env {
    async fn observe(&self) -> Vec<Observed> {
        self.cloud.observe(&self.scope, &[]).await.unwrap()
    }

    async fn observed(&self, id: &str) -> Observed {
        let all = self.observe().await;
        all.into_iter()
            .find(|o| o.id.to_string() == id)
            .unwrap_or_else(|| panic!("{id} not observed"))
    }

    /// Creates, waits until ready, and checks that observe shows exactly the desired fields.
    async fn create(&self, id: &str, kind: Kind, f: &Fields) -> Observed {
        let created = self
            .cloud
            .create(&self.scope, &ResourceId::from(id), kind, f)
            .await
            .unwrap();
        assert_eq!(created.kind, kind);
        assert_eq!(created.id.to_string(), id);
        self.wait(&created).await;
        let o = self.observed(id).await;
        assert_eq!(o.physical_id, created.physical_id);
        assert_eq!(
            diff(kind, f, &o),
            Vec::<String>::new(),
            "{id} right after create"
        );
        assert_eq!(o.attrs.get("id"), Some(&o.physical_id));
        o
    }

    async fn wait(&self, o: &Observed) -> Observed {
        for _ in 0..50 {
            match self.cloud.poll(&self.scope, o, Want::Ready).await.unwrap() {
                Readiness::Ready(r) => return r,
                Readiness::Pending(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                other => panic!("{} did not become ready: {other:?}", o.id),
            }
        }
        panic!("{} still pending", o.id)
    }

    /// Updates the listed fields, then checks observe shows every desired field.
    async fn update(&self, current: &Observed, f: &Fields, changed: &[&str]) -> Observed {
        let changed: Vec<String> = changed.iter().map(|s| s.to_string()).collect();
        let updated = self
            .cloud
            .update(&self.scope, current, f, &changed)
            .await
            .unwrap();
        assert_eq!(updated.physical_id, current.physical_id);
        let o = self.observed(&current.id.to_string()).await;
        assert_eq!(
            diff(current.kind, f, &o),
            Vec::<String>::new(),
            "{} after update",
            current.id
        );
        o
    }

    /// Deletes, then polls until Gone; observe no longer reports it.
    async fn delete(&self, o: &Observed) {
        self.cloud
            .delete(&self.scope, o, &DeleteOptions::default())
            .await
            .unwrap();
        let mut gone = false;
        for _ in 0..50 {
            match self.cloud.poll(&self.scope, o, Want::Gone).await.unwrap() {
                Readiness::Gone => {
                    gone = true;
                    break;
                }
                Readiness::Pending(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                other => panic!("{} while deleting: {other:?}", o.id),
            }
        }
        assert!(gone, "{} not gone", o.id);
        assert!(self
            .observe()
            .await
            .iter()
            .all(|x| x.physical_id != o.physical_id));
        // A second delete of something already gone is fine.
        self.cloud
            .delete(&self.scope, o, &DeleteOptions::default())
            .await
            .unwrap();
    }

    /// The request that carried `action`, checked to hold the stack's tags and no separate
    /// tagging call for the same resource.
    fn assert_tagged_on_create(&self, action: &str, id: &str) {
        let reqs = self.wire.requests();
        let create: Vec<&String> = reqs
            .iter()
            .filter(|r| r.starts_with(&format!("Action={action}&")))
            .collect();
        assert!(!create.is_empty(), "no {action} sent");
        let r = create.last().unwrap();
        assert!(
            r.contains("TagSpecification.1.ResourceType="),
            "{action} without tags: {r}"
        );
        assert!(
            r.contains("=moodlestack:stack&") && r.contains(&format!("={STACK}")),
            "{r}"
        );
        assert!(
            r.contains("=moodlestack:id&") && r.contains(&format!("={id}")),
            "{r}"
        );
    }
}

async fn vpc(env: &Env) -> (Observed, Fields) {
    let f = fields(
        "net.vpc",
        vec![
            ("cidr_block", s("10.20.0.0/16")),
            ("enable_dns_hostnames", Value::Bool(true)),
            ("enable_dns_support", Value::Bool(true)),
        ],
    );
    (env.create("net.vpc", Kind::Vpc, &f).await, f)
}

async fn subnet(env: &Env, id: &str, vpc_id: &str, cidr: &str, az: &str, public: bool) -> Observed {
    let f = fields(
        id,
        vec![
            ("vpc_id", s(vpc_id)),
            ("cidr_block", s(cidr)),
            ("availability_zone", s(az)),
            ("map_public_ip_on_launch", Value::Bool(public)),
        ],
    );
    env.create(id, Kind::Subnet, &f).await
}

// ---------------------------------------------------------------------------------- the tests

#[tokio::test]
async fn ec2_vpc_subnet_and_internet_gateway() {
    let env = env().await;
    let (vpc, mut vf) = vpc(&env).await;
    env.assert_tagged_on_create("CreateVpc", "net.vpc");
    // Plain client: tags and DNS attributes are there.
    let d = env
        .ec2
        .describe_vpcs()
        .vpc_ids(&vpc.physical_id)
        .send()
        .await
        .unwrap();
    let t: BTreeMap<_, _> = d.vpcs()[0]
        .tags()
        .iter()
        .map(|t| (t.key().unwrap(), t.value().unwrap()))
        .collect();
    assert_eq!(t.get("moodlestack:id"), Some(&"net.vpc"));
    let h = env
        .ec2
        .describe_vpc_attribute()
        .vpc_id(&vpc.physical_id)
        .attribute(aws_sdk_ec2::types::VpcAttributeName::EnableDnsHostnames)
        .send()
        .await
        .unwrap();
    assert_eq!(h.enable_dns_hostnames().and_then(|v| v.value()), Some(true));

    // A repeated create (a crash before the answer was recorded) adopts the first VPC.
    let again = env
        .cloud
        .create(&env.scope, &"net.vpc".into(), Kind::Vpc, &vf)
        .await
        .unwrap();
    assert_eq!(again.physical_id, vpc.physical_id);
    let tagged = env
        .ec2
        .describe_vpcs()
        .filters(
            aws_sdk_ec2::types::Filter::builder()
                .name("tag:moodlestack:id")
                .values("net.vpc")
                .build(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(
        tagged.vpcs().len(),
        1,
        "a repeated create made a second VPC"
    );

    // In place: DNS hostnames and tags.
    vf.insert("enable_dns_hostnames".into(), Value::Bool(false));
    let mut t = tags("net.vpc").as_map().unwrap().clone();
    t.insert("team".into(), s("blue"));
    vf.insert("tags".into(), Value::Map(t));
    let vpc = env
        .update(&vpc, &vf, &["enable_dns_hostnames", "tags"])
        .await;
    vf.insert("enable_dns_support".into(), Value::Bool(false));
    let vpc = env.update(&vpc, &vf, &["enable_dns_support"]).await;
    let d = env
        .ec2
        .describe_vpc_attribute()
        .vpc_id(&vpc.physical_id)
        .attribute(aws_sdk_ec2::types::VpcAttributeName::EnableDnsSupport)
        .send()
        .await
        .unwrap();
    assert_eq!(d.enable_dns_support().and_then(|v| v.value()), Some(false));

    let public = subnet(
        &env,
        "net.subnet.public.a",
        &vpc.physical_id,
        "10.20.0.0/24",
        "eu-west-1a",
        true,
    )
    .await;
    env.assert_tagged_on_create("CreateSubnet", "net.subnet.public.a");
    let private = subnet(
        &env,
        "net.subnet.private.b",
        &vpc.physical_id,
        "10.20.10.0/24",
        "eu-west-1b",
        false,
    )
    .await;
    let mut pf = fields(
        "net.subnet.private.b",
        vec![
            ("vpc_id", s(&vpc.physical_id)),
            ("cidr_block", s("10.20.10.0/24")),
            ("availability_zone", s("eu-west-1b")),
            ("map_public_ip_on_launch", Value::Bool(true)),
        ],
    );
    let private = env
        .update(&private, &pf, &["map_public_ip_on_launch"])
        .await;
    let d = env
        .ec2
        .describe_subnets()
        .subnet_ids(&private.physical_id)
        .send()
        .await
        .unwrap();
    assert_eq!(d.subnets()[0].map_public_ip_on_launch(), Some(true));
    pf.insert("map_public_ip_on_launch".into(), Value::Bool(false));
    let private = env
        .update(&private, &pf, &["map_public_ip_on_launch"])
        .await;

    let gf = fields("net.igw", vec![("vpc_id", s(&vpc.physical_id))]);
    let igw = env.create("net.igw", Kind::InternetGateway, &gf).await;
    env.assert_tagged_on_create("CreateInternetGateway", "net.igw");
    let d = env
        .ec2
        .describe_internet_gateways()
        .internet_gateway_ids(&igw.physical_id)
        .send()
        .await
        .unwrap();
    assert_eq!(
        d.internet_gateways()[0].attachments()[0].vpc_id(),
        Some(vpc.physical_id.as_str())
    );

    // Nothing was tagged after the fact.
    let creates_then_tags: Vec<String> = env.wire.actions();
    let tag_calls = creates_then_tags
        .iter()
        .filter(|a| *a == "CreateTags")
        .count();
    assert_eq!(
        tag_calls, 1,
        "only the tag update calls CreateTags: {creates_then_tags:?}"
    );

    // Observe: one describe per kind, whatever the number of resources.
    env.wire.clear();
    let all = env.observe().await;
    let mut ids: Vec<String> = all.iter().map(|o| o.id.to_string()).collect();
    ids.sort();
    assert_eq!(
        ids,
        [
            "net.igw",
            "net.subnet.private.b",
            "net.subnet.public.a",
            "net.vpc"
        ]
    );
    let actions = env.wire.actions();
    for a in [
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
        assert_eq!(
            actions.iter().filter(|x| *x == a).count(),
            1,
            "{a} in {actions:?}"
        );
    }
    let filtered = env.wire.requests();
    let subnets_req = filtered
        .iter()
        .find(|r| r.starts_with("Action=DescribeSubnets&"))
        .unwrap();
    assert!(
        subnets_req.contains("=tag:moodlestack:stack&")
            && subnets_req.contains(&format!("={STACK}")),
        "{subnets_req}"
    );

    env.delete(&igw).await;
    let d = env
        .ec2
        .describe_internet_gateways()
        .filters(
            aws_sdk_ec2::types::Filter::builder()
                .name("tag:moodlestack:stack")
                .values(STACK)
                .build(),
        )
        .send()
        .await
        .unwrap();
    assert!(d.internet_gateways().is_empty());
    env.delete(&public).await;
    env.delete(&private).await;
    env.delete(&vpc).await;
    let d = env
        .ec2
        .describe_vpcs()
        .filters(
            aws_sdk_ec2::types::Filter::builder()
                .name("tag:moodlestack:stack")
                .values(STACK)
                .build(),
        )
        .send()
        .await
        .unwrap();
    assert!(d.vpcs().is_empty());
}

fn rule(from: i64, source_kind: &str, source: &str, desc: &str) -> Value {
    Value::Map(BTreeMap::from([
        ("protocol".to_string(), s("tcp")),
        ("from_port".to_string(), Value::Int(from)),
        ("to_port".to_string(), Value::Int(from)),
        ("description".to_string(), s(desc)),
        (source_kind.to_string(), s(source)),
    ]))
}

#[tokio::test]
async fn ec2_security_groups() {
    let env = env().await;
    let (vpc, _) = vpc(&env).await;
    let sg = |id: &str, name: &str, ingress: Vec<Value>| {
        fields(
            id,
            vec![
                ("vpc_id", s(&vpc.physical_id)),
                ("group_name", s(name)),
                ("description", s(&format!("{name} group"))),
                ("ingress", Value::List(ingress)),
            ],
        )
    };
    let alb_f = sg(
        "sg.alb",
        "ec2test-alb",
        vec![
            rule(80, "cidr", "0.0.0.0/0", "http"),
            rule(443, "cidr", "0.0.0.0/0", "https"),
        ],
    );
    let alb = env.create("sg.alb", Kind::SecurityGroup, &alb_f).await;
    env.assert_tagged_on_create("CreateSecurityGroup", "sg.alb");
    let mut web_f = sg(
        "sg.web",
        "ec2test-web",
        vec![rule(
            80,
            "source_group_id",
            &alb.physical_id,
            "http from the load balancer",
        )],
    );
    let web = env.create("sg.web", Kind::SecurityGroup, &web_f).await;

    // Plain client: the source-group rule and the default egress.
    let d = env
        .ec2
        .describe_security_groups()
        .group_ids(&web.physical_id)
        .send()
        .await
        .unwrap();
    let g = &d.security_groups()[0];
    assert_eq!(g.ip_permissions().len(), 1);
    assert_eq!(
        g.ip_permissions()[0].user_id_group_pairs()[0].group_id(),
        Some(alb.physical_id.as_str())
    );
    assert_eq!(
        g.ip_permissions_egress().len(),
        1,
        "egress stays the AWS default"
    );

    // In place: add an SSH rule, change a description, then drop the SSH rule again.
    web_f.insert(
        "ingress".into(),
        Value::List(vec![
            rule(
                80,
                "source_group_id",
                &alb.physical_id,
                "http from the load balancer",
            ),
            rule(22, "cidr", "203.0.113.0/24", "ssh from the office"),
        ]),
    );
    let web = env.update(&web, &web_f, &["ingress"]).await;
    // A description alone changes in place (UpdateSecurityGroupRuleDescriptionsIngress; moto
    // applies it to CIDR rules only, so the test changes a CIDR rule's).
    web_f.insert(
        "ingress".into(),
        Value::List(vec![
            rule(
                80,
                "source_group_id",
                &alb.physical_id,
                "http from the load balancer",
            ),
            rule(22, "cidr", "203.0.113.0/24", "ssh from the head office"),
        ]),
    );
    let web = env.update(&web, &web_f, &["ingress"]).await;
    assert!(env
        .wire
        .actions()
        .iter()
        .any(|a| a == "UpdateSecurityGroupRuleDescriptionsIngress"));
    web_f.insert(
        "ingress".into(),
        Value::List(vec![rule(
            80,
            "source_group_id",
            &alb.physical_id,
            "http from the load balancer",
        )]),
    );
    let web = env.update(&web, &web_f, &["ingress"]).await;
    let d = env
        .ec2
        .describe_security_groups()
        .group_ids(&web.physical_id)
        .send()
        .await
        .unwrap();
    let perms = d.security_groups()[0].ip_permissions();
    assert_eq!(perms.len(), 1, "{perms:?}");
    assert_eq!(perms[0].from_port(), Some(80));

    // A group of the same name that is not the stack's: a clear error, nothing adopted.
    env.ec2
        .create_security_group()
        .group_name("ec2test-stable")
        .description("someone else's")
        .vpc_id(&vpc.physical_id)
        .send()
        .await
        .unwrap();
    let err = env
        .cloud
        .create(
            &env.scope,
            &"sg.stable".into(),
            Kind::SecurityGroup,
            &sg("sg.stable", "ec2test-stable", vec![]),
        )
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("already exists") && matches!(err, CloudError::NameTaken { .. }),
        "{err}"
    );

    // A repeated create adopts (no duplicate group, no error).
    let again = env
        .cloud
        .create(&env.scope, &"sg.alb".into(), Kind::SecurityGroup, &alb_f)
        .await
        .unwrap();
    assert_eq!(again.physical_id, alb.physical_id);

    env.delete(&web).await;
    env.delete(&alb).await;
}

#[tokio::test]
async fn ec2_elastic_ip_nat_gateway_and_route_tables() {
    let env = env().await;
    let (vpc, _) = vpc(&env).await;
    let pub_a = subnet(
        &env,
        "net.subnet.public.a",
        &vpc.physical_id,
        "10.20.0.0/24",
        "eu-west-1a",
        true,
    )
    .await;
    let priv_a = subnet(
        &env,
        "net.subnet.private.a",
        &vpc.physical_id,
        "10.20.10.0/24",
        "eu-west-1a",
        false,
    )
    .await;
    let priv_b = subnet(
        &env,
        "net.subnet.private.b",
        &vpc.physical_id,
        "10.20.11.0/24",
        "eu-west-1b",
        false,
    )
    .await;
    let igw = env
        .create(
            "net.igw",
            Kind::InternetGateway,
            &fields("net.igw", vec![("vpc_id", s(&vpc.physical_id))]),
        )
        .await;

    let eip = env
        .create(
            "net.eip.nat.a",
            Kind::ElasticIp,
            &fields("net.eip.nat.a", vec![]),
        )
        .await;
    env.assert_tagged_on_create("AllocateAddress", "net.eip.nat.a");
    let ip = eip.attrs.get("public_ip").expect("public_ip attr");
    let d = env
        .ec2
        .describe_addresses()
        .allocation_ids(&eip.physical_id)
        .send()
        .await
        .unwrap();
    assert_eq!(d.addresses()[0].public_ip(), Some(ip.as_str()));
    assert_eq!(d.addresses()[0].domain().map(|d| d.as_str()), Some("vpc"));

    let nf = fields(
        "net.nat.a",
        vec![
            ("subnet_id", s(&pub_a.physical_id)),
            ("allocation_id", s(&eip.physical_id)),
        ],
    );
    let nat = env.create("net.nat.a", Kind::NatGateway, &nf).await;
    env.assert_tagged_on_create("CreateNatGateway", "net.nat.a");
    assert!(env
        .wire
        .requests()
        .iter()
        .any(|r| r.starts_with("Action=CreateNatGateway&") && r.contains("ClientToken=")));
    let again = env
        .cloud
        .create(&env.scope, &"net.nat.a".into(), Kind::NatGateway, &nf)
        .await
        .unwrap();
    assert_eq!(
        again.physical_id, nat.physical_id,
        "a repeated create returns the first gateway"
    );
    let d = env.ec2.describe_nat_gateways().send().await.unwrap();
    assert_eq!(d.nat_gateways().len(), 1);
    // Tags change in place (every other field of a NAT gateway forces replacement).
    let mut nf2 = nf.clone();
    let mut t = tags("net.nat.a").as_map().unwrap().clone();
    t.insert("cost-center".into(), s("42"));
    nf2.insert("tags".into(), Value::Map(t));
    let nat = env.update(&nat, &nf2, &["tags"]).await;

    let route = |dest: &str, key: &str, target: &str| {
        Value::Map(BTreeMap::from([
            ("destination_cidr".to_string(), s(dest)),
            (key.to_string(), s(target)),
        ]))
    };
    let mut public_f = fields(
        "net.rt.public",
        vec![
            ("vpc_id", s(&vpc.physical_id)),
            (
                "routes",
                Value::List(vec![route("0.0.0.0/0", "gateway_id", &igw.physical_id)]),
            ),
            ("subnet_ids", Value::strs([pub_a.physical_id.as_str()])),
        ],
    );
    let public = env
        .create("net.rt.public", Kind::RouteTable, &public_f)
        .await;
    env.assert_tagged_on_create("CreateRouteTable", "net.rt.public");
    let mut private_f = fields(
        "net.rt.private.a",
        vec![
            ("vpc_id", s(&vpc.physical_id)),
            (
                "routes",
                Value::List(vec![route("0.0.0.0/0", "nat_gateway_id", &nat.physical_id)]),
            ),
            ("subnet_ids", Value::strs([priv_a.physical_id.as_str()])),
        ],
    );
    let private = env
        .create("net.rt.private.a", Kind::RouteTable, &private_f)
        .await;
    let d = env
        .ec2
        .describe_route_tables()
        .route_table_ids(&private.physical_id)
        .send()
        .await
        .unwrap();
    let t = &d.route_tables()[0];
    assert!(t
        .routes()
        .iter()
        .any(|r| r.nat_gateway_id() == Some(nat.physical_id.as_str())));
    assert!(
        t.routes().iter().any(|r| r.gateway_id() == Some("local")),
        "the local route stays"
    );

    // In place: another route, then the default route moved to the internet gateway; subnets
    // added and removed.
    private_f.insert(
        "routes".into(),
        Value::List(vec![
            route("0.0.0.0/0", "nat_gateway_id", &nat.physical_id),
            route("192.168.0.0/16", "gateway_id", &igw.physical_id),
        ]),
    );
    private_f.insert(
        "subnet_ids".into(),
        Value::strs([priv_a.physical_id.as_str(), priv_b.physical_id.as_str()]),
    );
    let private = env
        .update(&private, &private_f, &["routes", "subnet_ids"])
        .await;
    private_f.insert(
        "routes".into(),
        Value::List(vec![route("0.0.0.0/0", "gateway_id", &igw.physical_id)]),
    );
    private_f.insert(
        "subnet_ids".into(),
        Value::strs([priv_b.physical_id.as_str()]),
    );
    let private = env
        .update(&private, &private_f, &["routes", "subnet_ids"])
        .await;
    let d = env
        .ec2
        .describe_route_tables()
        .route_table_ids(&private.physical_id)
        .send()
        .await
        .unwrap();
    let t = &d.route_tables()[0];
    let non_local: Vec<_> = t
        .routes()
        .iter()
        .filter(|r| r.gateway_id() != Some("local"))
        .collect();
    assert_eq!(non_local.len(), 1, "{non_local:?}");
    assert_eq!(non_local[0].gateway_id(), Some(igw.physical_id.as_str()));

    // A subnet associated with another table moves to this one.
    public_f.insert(
        "subnet_ids".into(),
        Value::strs([pub_a.physical_id.as_str(), priv_b.physical_id.as_str()]),
    );
    let public = env.update(&public, &public_f, &["subnet_ids"]).await;
    let private = env.observed("net.rt.private.a").await;
    assert_eq!(
        private.fields["subnet_ids"],
        Value::strs(Vec::<String>::new())
    );

    env.delete(&public).await;
    env.delete(&private).await;
    env.delete(&nat).await;
    let d = env
        .ec2
        .describe_nat_gateways()
        .nat_gateway_ids(&nat.physical_id)
        .send()
        .await
        .unwrap();
    assert!(d
        .nat_gateways()
        .iter()
        .all(|n| n.state().map(|s| s.as_str()) == Some("deleted")));
    env.delete(&eip).await;
    let d = env.ec2.describe_addresses().send().await.unwrap();
    assert!(d.addresses().is_empty());
}

/// An instance profile and an AMI, made with plain clients.
async fn profile_and_image(env: &Env) -> (String, String) {
    let iam = aws_sdk_iam::Client::new(&env._emu.sdk_config().await);
    iam.create_role()
        .role_name("ec2test-node")
        .assume_role_policy_document(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#)
        .send()
        .await
        .unwrap();
    let p = iam
        .create_instance_profile()
        .instance_profile_name("ec2test-node")
        .send()
        .await
        .unwrap();
    iam.add_role_to_instance_profile()
        .instance_profile_name("ec2test-node")
        .role_name("ec2test-node")
        .send()
        .await
        .unwrap();
    let arn = p.instance_profile().unwrap().arn().to_string();
    let images = env
        .ec2
        .describe_images()
        .owners("amazon")
        .send()
        .await
        .unwrap();
    let image = images
        .images()
        .iter()
        .find(|i| i.architecture().map(|a| a.as_str()) == Some("x86_64"))
        .and_then(|i| i.image_id())
        .unwrap()
        .to_string();
    (arn, image)
}

#[tokio::test]
async fn ec2_launch_template_and_instance() {
    let env = env().await;
    let (vpc, _) = vpc(&env).await;
    let sub = subnet(
        &env,
        "net.subnet.private.a",
        &vpc.physical_id,
        "10.20.10.0/24",
        "eu-west-1a",
        false,
    )
    .await;
    let sgf = fields(
        "sg.web",
        vec![
            ("vpc_id", s(&vpc.physical_id)),
            ("group_name", s("ec2test-web")),
            ("description", s("web")),
            ("ingress", Value::List(vec![])),
        ],
    );
    let sg = env.create("sg.web", Kind::SecurityGroup, &sgf).await;
    let (profile, image) = profile_and_image(&env).await;

    let user_data_v1 = "#!/bin/bash\necho 'db=@host' > /etc/moodle\n";
    let mut lf = fields(
        "web.lt",
        vec![
            ("name", s("ec2test-web")),
            ("image_id", s(&image)),
            ("instance_type", s("t3.medium")),
            ("instance_profile_arn", s(&profile)),
            ("security_group_ids", Value::strs([sg.physical_id.as_str()])),
            ("user_data", s(user_data_v1)),
            ("http_tokens", s("required")),
            ("root_device_name", s("/dev/sda1")),
            ("root_volume_size", Value::Int(20)),
            ("root_volume_type", s("gp3")),
            ("root_volume_encrypted", Value::Bool(true)),
        ],
    );
    let lt = env.create("web.lt", Kind::LaunchTemplate, &lf).await;
    env.assert_tagged_on_create("CreateLaunchTemplate", "web.lt");
    assert_eq!(lt.attrs.get("version").map(String::as_str), Some("1"));
    assert_eq!(
        lt.attrs.get("name").map(String::as_str),
        Some("ec2test-web")
    );
    let hash1 = lt.fields["tags"].as_map().unwrap()["moodlestack:content-hash"].clone();
    let req = env
        .wire
        .requests()
        .into_iter()
        .find(|r| r.starts_with("Action=CreateLaunchTemplate&"))
        .unwrap();
    assert!(req.contains("ClientToken="), "{req}");

    // Update: a new version with the full data, made the default; observe reads it back.
    let user_data_v2 = "#!/bin/bash\necho 'db=other' > /etc/moodle\n";
    lf.insert("user_data".into(), s(user_data_v2));
    lf.insert("root_volume_size".into(), Value::Int(30));
    lf.insert("instance_type".into(), s("t3.large"));
    let lt = env
        .update(
            &lt,
            &lf,
            &["user_data", "root_volume_size", "instance_type"],
        )
        .await;
    assert_eq!(lt.attrs.get("version").map(String::as_str), Some("2"));
    // The content hash tag follows the data. (moto keeps DescribeLaunchTemplates' Tags as they
    // were at creation; CreateTags shows in DescribeTags, which is checked here.)
    let t = env
        .ec2
        .describe_tags()
        .filters(
            aws_sdk_ec2::types::Filter::builder()
                .name("resource-id")
                .values(&lt.physical_id)
                .build(),
        )
        .filters(
            aws_sdk_ec2::types::Filter::builder()
                .name("key")
                .values("moodlestack:content-hash")
                .build(),
        )
        .send()
        .await
        .unwrap();
    let hash2 = s(t.tags()[0].value().unwrap());
    assert_ne!(hash1, hash2, "the content hash tag follows the data");
    let sent = env.wire.requests();
    let v = sent
        .iter()
        .find(|r| r.starts_with("Action=CreateLaunchTemplateVersion&"))
        .unwrap();
    assert!(!v.contains("SourceVersion"), "{v}");
    let d = env
        .ec2
        .describe_launch_templates()
        .launch_template_ids(&lt.physical_id)
        .send()
        .await
        .unwrap();
    assert_eq!(d.launch_templates()[0].default_version_number(), Some(2));
    let d = env
        .ec2
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
        Some(image.as_str()),
        "version 2 carries the full data"
    );
    assert_eq!(
        data.metadata_options()
            .and_then(|m| m.http_tokens())
            .map(|t| t.as_str()),
        Some("required")
    );
    assert_eq!(
        data.iam_instance_profile().and_then(|p| p.arn()),
        Some(profile.as_str())
    );
    let ebs = data.block_device_mappings()[0].ebs().unwrap();
    assert_eq!((ebs.volume_size(), ebs.encrypted()), (Some(30), Some(true)));

    // The instance, from version 2.
    let inf = fields(
        "stable.instance",
        vec![
            ("launch_template_id", s(&lt.physical_id)),
            ("launch_template_version", s("2")),
            ("subnet_id", s(&sub.physical_id)),
            ("instance_profile_arn", s(&profile)),
            ("http_tokens", s("required")),
        ],
    );
    let inst = env.create("stable.instance", Kind::Instance, &inf).await;
    env.assert_tagged_on_create("RunInstances", "stable.instance");
    assert!(inst.attrs.contains_key("private_ip"));
    let again = env
        .cloud
        .create(&env.scope, &"stable.instance".into(), Kind::Instance, &inf)
        .await
        .unwrap();
    assert_eq!(
        again.physical_id, inst.physical_id,
        "a repeated create returns the first instance"
    );
    let d = env
        .ec2
        .describe_instances()
        .filters(
            aws_sdk_ec2::types::Filter::builder()
                .name("tag:moodlestack:id")
                .values("stable.instance")
                .build(),
        )
        .send()
        .await
        .unwrap();
    let instances: Vec<_> = d
        .reservations()
        .iter()
        .flat_map(|r| r.instances())
        .collect();
    assert_eq!(instances.len(), 1, "no duplicate instance");
    let i = instances[0];
    assert_eq!(
        i.metadata_options()
            .and_then(|m| m.http_tokens())
            .map(|t| t.as_str()),
        Some("required")
    );
    assert_eq!(
        i.iam_instance_profile().and_then(|p| p.arn()),
        Some(profile.as_str())
    );
    let run = env
        .wire
        .requests()
        .into_iter()
        .find(|r| r.starts_with("Action=RunInstances&"))
        .unwrap();
    let token = run
        .split("ClientToken=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap()
        .to_string();
    assert_eq!(token.len(), 64, "{run}");

    // Tags update in place.
    let mut inf2 = inf.clone();
    let mut t = tags("stable.instance").as_map().unwrap().clone();
    t.insert("team".into(), s("blue"));
    inf2.insert("tags".into(), Value::Map(t));
    let inst = env.update(&inst, &inf2, &["tags"]).await;

    env.delete(&inst).await;
    let d = env
        .ec2
        .describe_instances()
        .instance_ids(&inst.physical_id)
        .send()
        .await
        .unwrap();
    let state = d.reservations()[0].instances()[0]
        .state()
        .and_then(|s| s.name())
        .map(|s| s.as_str().to_string());
    assert_eq!(state.as_deref(), Some("terminated"));
    // Replaced (delete, then create) from version 1: a new instance, the terminated one is
    // neither adopted nor observed.
    let mut inf1 = inf.clone();
    inf1.insert("launch_template_version".into(), s("1"));
    let replacement = env.create("stable.instance", Kind::Instance, &inf1).await;
    assert_ne!(replacement.physical_id, inst.physical_id);
    assert_eq!(
        replacement.fields["launch_template_version"],
        s("1"),
        "launched from the version asked for"
    );
    env.delete(&replacement).await;
    env.delete(&lt).await;
    let d = env.ec2.describe_launch_templates().send().await.unwrap();
    assert!(d.launch_templates().is_empty());
}

#[tokio::test]
async fn ec2_image_and_parameters() {
    let env = env().await;
    let (_, image) = profile_and_image(&env).await;
    let info = env
        .cloud
        .image(&image)
        .await
        .unwrap()
        .expect("the image exists");
    assert_eq!(info.image_id, image);
    assert_eq!(info.architecture, "x86_64");
    assert!(info.root_device_name.starts_with("/dev/"), "{info:?}");
    assert_eq!(
        env.cloud.image("ami-0123456789abcdef0").await.unwrap(),
        None
    );

    // A public parameter (moto serves Amazon Linux's; `/aws/` names cannot be written).
    let public = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-6.1-x86_64";
    let ami = env.cloud.resolve_parameter(public).await.unwrap();
    assert!(ami.starts_with("ami-"), "{ami}");
    let ssm = aws_sdk_ssm::Client::new(&env._emu.sdk_config().await);
    let name = "/ec2test/image";
    ssm.put_parameter()
        .name(name)
        .value(&image)
        .r#type(aws_sdk_ssm::types::ParameterType::String)
        .send()
        .await
        .unwrap();
    assert_eq!(env.cloud.resolve_parameter(name).await.unwrap(), image);
    let err = env
        .cloud
        .resolve_parameter("/no/such/parameter")
        .await
        .unwrap_err();
    assert!(matches!(err, CloudError::NotFound(_)), "{err}");
    assert!(err.to_string().contains("/no/such/parameter"), "{err}");
}

#[tokio::test]
async fn ssm_lease_two_owners_expiry_and_release() {
    let env = env().await;
    let ssm = aws_sdk_ssm::Client::new(&env._emu.sdk_config().await);
    let scope = &env.scope;
    let name = moodlestack_stack::Names::for_stack_name(STACK).lease_parameter();
    let hour = Duration::from_secs(3600);

    let a = env
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
    let t = ssm
        .list_tags_for_resource()
        .resource_type(aws_sdk_ssm::types::ResourceTypeForTagging::Parameter)
        .resource_id(&name)
        .send()
        .await
        .unwrap();
    assert!(t
        .tag_list()
        .iter()
        .any(|t| t.key() == "moodlestack:stack" && t.value() == STACK));

    // The holder renews: same acquired_at, a later expiry; the parameter keeps its tags.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let renewed = env
        .cloud
        .acquire_lease(scope, "ann@box pid 1", hour)
        .await
        .unwrap();
    assert_eq!(renewed.acquired_at, a.acquired_at);
    assert!(renewed.expires_at > a.expires_at, "{renewed:?} {a:?}");
    let t = ssm
        .list_tags_for_resource()
        .resource_type(aws_sdk_ssm::types::ResourceTypeForTagging::Parameter)
        .resource_id(&name)
        .send()
        .await
        .unwrap();
    assert!(t.tag_list().iter().any(|t| t.key() == "moodlestack:stack"));
    let a = renewed;

    // A second owner is refused, told who holds it.
    let err = env
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
    env.cloud
        .release_lease(scope, "bob@box pid 2")
        .await
        .unwrap();
    assert!(env
        .cloud
        .acquire_lease(scope, "bob@box pid 2", hour)
        .await
        .is_err());
    // The holder releases; the other can take it.
    env.cloud
        .release_lease(scope, "ann@box pid 1")
        .await
        .unwrap();
    assert!(ssm.get_parameter().name(&name).send().await.is_err());
    env.cloud
        .acquire_lease(scope, "bob@box pid 2", Duration::from_secs(1))
        .await
        .unwrap();

    // Bob's lease expires; several takers race: exactly one wins, the others are told who.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let racers: Vec<_> = (0..6)
        .map(|i| {
            let cloud = env.cloud.clone();
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
    env.cloud.release_lease(scope, &winner.owner).await.unwrap();
    env.cloud.release_lease(scope, &winner.owner).await.unwrap();
}

fn plain_tags(id: &str) -> aws_sdk_ec2::types::TagSpecification {
    let spec = aws_sdk_ec2::types::TagSpecification::builder();
    let spec = match id {
        "net.igw" => spec.resource_type(aws_sdk_ec2::types::ResourceType::InternetGateway),
        _ => spec.resource_type(aws_sdk_ec2::types::ResourceType::RouteTable),
    };
    spec.tags(
        aws_sdk_ec2::types::Tag::builder()
            .key("moodlestack:stack")
            .value(STACK)
            .build(),
    )
    .tags(
        aws_sdk_ec2::types::Tag::builder()
            .key("moodlestack:id")
            .value(id)
            .build(),
    )
    .build()
}

/// A create interrupted after AWS made the resource (tags are on the create call, so it is
/// already the stack's) is adopted and finished: the gateway attached, the routes and the
/// association added. A name taken by something else is an error naming the fix.
#[tokio::test]
async fn ec2_interrupted_creates_are_adopted_and_finished() {
    let env = env().await;
    let (vpc, _) = vpc(&env).await;
    let sub = subnet(
        &env,
        "net.subnet.public.a",
        &vpc.physical_id,
        "10.20.0.0/24",
        "eu-west-1a",
        true,
    )
    .await;

    // The gateway exists (with the stack's tags) but was never attached.
    let made = env
        .ec2
        .create_internet_gateway()
        .tag_specifications(plain_tags("net.igw"))
        .send()
        .await
        .unwrap();
    let igw_id = made
        .internet_gateway()
        .unwrap()
        .internet_gateway_id()
        .unwrap()
        .to_string();
    let gf = fields("net.igw", vec![("vpc_id", s(&vpc.physical_id))]);
    let igw = env.create("net.igw", Kind::InternetGateway, &gf).await;
    assert_eq!(igw.physical_id, igw_id, "adopted, not made again");
    let d = env.ec2.describe_internet_gateways().send().await.unwrap();
    assert_eq!(d.internet_gateways().len(), 1);
    assert_eq!(
        d.internet_gateways()[0].attachments()[0].vpc_id(),
        Some(vpc.physical_id.as_str())
    );

    // The route table exists but has neither its route nor its subnet.
    let made = env
        .ec2
        .create_route_table()
        .vpc_id(&vpc.physical_id)
        .tag_specifications(plain_tags("net.rt.public"))
        .send()
        .await
        .unwrap();
    let rt_id = made
        .route_table()
        .unwrap()
        .route_table_id()
        .unwrap()
        .to_string();
    let route = Value::Map(BTreeMap::from([
        ("destination_cidr".to_string(), s("0.0.0.0/0")),
        ("gateway_id".to_string(), s(&igw.physical_id)),
    ]));
    let rf = fields(
        "net.rt.public",
        vec![
            ("vpc_id", s(&vpc.physical_id)),
            ("routes", Value::List(vec![route])),
            ("subnet_ids", Value::strs([sub.physical_id.as_str()])),
        ],
    );
    let rt = env.create("net.rt.public", Kind::RouteTable, &rf).await;
    assert_eq!(rt.physical_id, rt_id, "adopted, not made again");

    // In-place tag update of a kind whose other fields force replacement.
    let mut rf2 = rf.clone();
    let mut t = tags("net.rt.public").as_map().unwrap().clone();
    t.insert("team".into(), s("blue"));
    rf2.insert("tags".into(), Value::Map(t));
    let rt = env.update(&rt, &rf2, &["tags"]).await;
    // A field that forces replacement is refused by update, naming the field.
    let mut rf3 = rf2.clone();
    rf3.insert("vpc_id".into(), s("vpc-other"));
    let err = env
        .cloud
        .update(&env.scope, &rt, &rf3, &["vpc_id".to_string()])
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("vpc_id") && err.to_string().contains("in place"),
        "{err}"
    );

    // A launch template name taken by a template that is not the stack's.
    env.ec2
        .create_launch_template()
        .launch_template_name("ec2test-web")
        .launch_template_data(
            aws_sdk_ec2::types::RequestLaunchTemplateData::builder()
                .image_id("ami-12345678")
                .build(),
        )
        .send()
        .await
        .unwrap();
    let lf = fields(
        "web.lt",
        vec![
            ("name", s("ec2test-web")),
            ("image_id", s("ami-12345678")),
            ("instance_type", s("t3.small")),
            (
                "instance_profile_arn",
                s("arn:aws:iam::123456789012:instance-profile/x"),
            ),
            ("security_group_ids", Value::strs(Vec::<String>::new())),
            ("user_data", s("#!/bin/sh\n")),
            ("http_tokens", s("required")),
            ("root_device_name", s("/dev/xvda")),
            ("root_volume_size", Value::Int(8)),
            ("root_volume_type", s("gp3")),
            ("root_volume_encrypted", Value::Bool(true)),
        ],
    );
    let err = env
        .cloud
        .create(&env.scope, &"web.lt".into(), Kind::LaunchTemplate, &lf)
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("already exists") && matches!(err, CloudError::NameTaken { .. }),
        "{err}"
    );

    env.delete(&rt).await;
    env.delete(&igw).await;
}
