//! The builder: one method per tier of the stack (network, security groups, IAM, database, files,
//! cache, compute, load balancer).

use crate::interp::{interpolate, marker};
use crate::{marker_endpoints, GraphError, Image, UserDataFn};
use moodlestack_model::{Kind, Ref, Resource, Segment, Value, TAG_ID, TAG_STACK};
use moodlestack_render::Role;
use moodlestack_stack::{instance_types, Names, NatGateways, Stack};
use std::collections::BTreeMap;

mod observability;
pub use observability::{
    log_group_id, CRON_HEARTBEAT, FPM_MAX_CHILDREN, GROUP_METRICS, LOG_SOURCES, SLOW_REQUESTS,
};

/// The logical ids of the brief: constants, and functions for the per-zone / per-member ones.
pub mod ids {
    pub const VPC: &str = "net.vpc";
    pub const IGW: &str = "net.igw";
    pub const RT_PUBLIC: &str = "net.rt.public";
    pub const SG_ALB: &str = "sg.alb";
    pub const SG_WEB: &str = "sg.web";
    pub const SG_STABLE: &str = "sg.stable";
    pub const SG_DB: &str = "sg.db";
    pub const SG_CACHE: &str = "sg.cache";
    pub const SG_EFS: &str = "sg.efs";
    pub const IAM_ROLE: &str = "iam.role";
    pub const IAM_PROFILE: &str = "iam.profile";
    pub const CODE_BUCKET: &str = "code.bucket";
    pub const DB_SUBNET_GROUP: &str = "db.subnet_group";
    pub const DB_PARAMETER_GROUP: &str = "db.parameter_group";
    pub const DB_CLUSTER_PARAMETER_GROUP: &str = "db.cluster_parameter_group";
    pub const DB_CLUSTER: &str = "db.cluster";
    pub const DB_INSTANCE: &str = "db.instance";
    pub const FILES_FS: &str = "files.fs";
    pub const CACHE_SUBNET_GROUP: &str = "cache.subnet_group";
    pub const CACHE_AUTH: &str = "cache.auth";
    pub const CACHE_REDIS: &str = "cache.redis";
    pub const WEB_LT: &str = "web.lt";
    pub const STABLE_LT: &str = "stable.lt";
    pub const STABLE_INSTANCE: &str = "stable.instance";
    pub const WEB_ASG: &str = "web.asg";
    pub const WEB_SCALING: &str = "web.scaling";
    pub const WEB_DRAIN: &str = "web.drain";
    pub const LB_ALB: &str = "lb.alb";
    pub const LB_TG: &str = "lb.tg";
    pub const LB_LISTENER_HTTP: &str = "lb.listener.http";
    pub const LB_LISTENER_HTTPS: &str = "lb.listener.https";
    pub const DB_SNAPSHOT: &str = "db.snapshot";
    pub const BACKUP_VAULT: &str = "backup.vault";
    pub const BACKUP_PLAN: &str = "backup.plan";
    pub const BACKUP_SELECTION: &str = "backup.selection";
    pub const BACKUP_ROLE: &str = "backup.role";
    pub const FILES_BACKUP: &str = "files.backup";
    pub const OBSERVE_KEY: &str = "observe.key";
    pub const FILTER_FPM_MAX_CHILDREN: &str = "logs.filter.fpm_max_children";
    pub const FILTER_SLOW_REQUESTS: &str = "logs.filter.slow_requests";
    pub const ALERTS_TOPIC: &str = "alerts.topic";
    pub const DASHBOARD: &str = "observe.dashboard";

    pub fn subnet_public(z: &str) -> String {
        format!("net.subnet.public.{z}")
    }
    pub fn subnet_private(z: &str) -> String {
        format!("net.subnet.private.{z}")
    }
    pub fn eip_nat(z: &str) -> String {
        format!("net.eip.nat.{z}")
    }
    pub fn nat(z: &str) -> String {
        format!("net.nat.{z}")
    }
    pub fn rt_private(z: &str) -> String {
        format!("net.rt.private.{z}")
    }
    pub fn files_mount(z: &str) -> String {
        format!("files.mount.{z}")
    }
    pub fn db_member(index: usize) -> String {
        format!("db.instance.{index}")
    }
    pub fn web_schedule(name: &str) -> String {
        format!("web.schedule.{name}")
    }
    /// The subscription of the `index`th address of `observability.alert_emails`.
    pub fn alert_email(index: usize) -> String {
        format!("alerts.email.{index}")
    }
}

pub const REDIS_PORT: i64 = 6379;
const HTTP_PORT: i64 = 80;
const HTTPS_PORT: i64 = 443;
const NFS_PORT: i64 = 2049;
const SSH_PORT: i64 = 22;
const ANYWHERE: &str = "0.0.0.0/0";
/// Modern TLS policy: TLS 1.3 and 1.2 with forward-secret ciphers only (AWS's recommended policy
/// for new listeners).
pub const TLS_POLICY: &str = "ELBSecurityPolicy-TLS13-1-2-2021-06";
/// The ALB health check accepts redirects: the default path, the nodes' own `/moodlestack-health`,
/// answers 200 or 503, but a Moodle page set as `load_balancer.health_check_path` (such as
/// `/login/index.php`) answers a 303 to `wwwroot` when the request's host is not the site's (the
/// ALB checks the instance by IP); a broken node answers 5xx or not at all. Never 503: Apache
/// answers 503 when php-fpm is down (docs/nodes.md, "The health check and maintenance mode").
pub const HEALTH_CHECK_MATCHER: &str = "200-399";
/// Failed checks before a target is taken out of service.
const UNHEALTHY_THRESHOLD: i64 = 3;
/// Seconds a new web instance has to boot (packages, Moodle checkout, EFS mount) before the
/// ASG acts on ELB health checks.
const HEALTH_CHECK_GRACE_PERIOD: i64 = 900;
/// Seconds a terminating web node may spend in the drain lifecycle hook (Terminating:Wait) before
/// Auto Scaling goes on without it. Before the hook, the group has deregistered the node from the
/// target group and waited `load_balancer.deregistration_delay` for its requests; in the hook the
/// watcher (polling every 5 s) stops Apache gracefully (systemd bounds the stop at 90 s) and
/// completes the action, so 300 s leaves room. If it never does, the default result CONTINUE
/// terminates the node anyway.
pub const DRAIN_HOOK_TIMEOUT: i64 = 300;
/// The lifecycle transition the drain hook waits on.
pub const TERMINATING: &str = "autoscaling:EC2_INSTANCE_TERMINATING";

/// The resource whose attributes hold the database endpoint, port and master secret:
/// `db.cluster` for Aurora, `db.instance` otherwise.
pub fn db_endpoint_resource(stack: &Stack) -> &'static str {
    if stack.database.engine.is_aurora() {
        ids::DB_CLUSTER
    } else {
        ids::DB_INSTANCE
    }
}

/// The code version the nodes run, as the database snapshot's `moodlestack:code` tag names it:
/// the Moodle ref and the PHP version (`v4.5.5 php8.3`).
pub fn code_version(stack: &Stack) -> String {
    format!("{} php{}", stack.moodle.git_ref, stack.moodle.php_version)
}

/// The database `db` (the standalone instance, or the Aurora cluster), restored from `snapshot`
/// when the stack names one (`database.restore_from`: a new one replaces the current one), which
/// says so in its tag.
fn restored(db: Resource, snapshot: Option<&str>) -> Resource {
    let Some(snapshot) = snapshot else {
        return db;
    };
    let mut db = db.with("restore_from", snapshot);
    if let Some(Value::Map(tags)) = db.fields.get_mut("tags") {
        tags.insert(
            moodlestack_model::TAG_RESTORED_FROM.into(),
            Value::str(snapshot),
        );
    }
    db
}

fn id_ref(resource: &str) -> Value {
    Value::reference(resource, "id")
}

/// Subnets and the VPC: created by the stack (refs) or existing (literal ids).
struct Net {
    vpc: Value,
    /// (zone suffix, subnet id value), in zone order.
    public: Vec<(String, Value)>,
    private: Vec<(String, Value)>,
}

impl Net {
    fn public_ids(&self) -> Value {
        Value::List(self.public.iter().map(|(_, v)| v.clone()).collect())
    }
    fn private_ids(&self) -> Value {
        Value::List(self.private.iter().map(|(_, v)| v.clone()).collect())
    }
}

pub struct Builder<'a> {
    stack: &'a Stack,
    image: &'a Image,
    user_data: &'a UserDataFn,
    names: Names,
    zones: Vec<(String, String)>,
    out: Vec<Resource>,
}

impl<'a> Builder<'a> {
    pub fn new(
        stack: &'a Stack,
        image: &'a Image,
        user_data: &'a UserDataFn,
    ) -> Result<Self, GraphError> {
        let zones: Vec<(String, String)> = stack
            .zones()
            .into_iter()
            .map(|z| {
                let suffix = z
                    .chars()
                    .last()
                    .filter(char::is_ascii_lowercase)
                    .map(String::from)
                    .ok_or_else(|| {
                        GraphError::Invalid(format!(
                            "network.zones: `{z}` is not an availability zone name (e.g. \
                             `{}a`)",
                            stack.region
                        ))
                    })?;
                Ok((z, suffix))
            })
            .collect::<Result<_, GraphError>>()?;
        let mut suffixes: Vec<&str> = zones.iter().map(|(_, s)| s.as_str()).collect();
        suffixes.sort_unstable();
        suffixes.dedup();
        if suffixes.len() != zones.len() {
            return Err(GraphError::unbuildable(
                "network.zones: every zone must appear once",
                "list distinct zones",
            ));
        }
        check_image(stack, image)?;
        Ok(Builder {
            stack,
            image,
            user_data,
            names: Names::of(stack),
            zones,
            out: Vec::new(),
        })
    }

    pub fn build(mut self) -> Result<Vec<Resource>, GraphError> {
        let net = self.network()?;
        self.security_groups(&net);
        self.cache_auth_secret();
        self.code_bucket();
        self.iam();
        self.database(&net);
        self.files(&net);
        self.backup();
        self.cache(&net);
        self.logs();
        self.compute(&net)?;
        self.load_balancer(&net);
        self.alerts()?;
        Ok(self.out)
    }

    /// A resource of `kind` with its tags: the stack's extra tags, `Name`, and the identity tags.
    /// The description of a resource of this stack: "moodlestack <stack>: `what`".
    fn description(&self, what: &str) -> String {
        format!("moodlestack {}: {what}", self.stack.name)
    }

    /// A subnet group `name` of the private subnets, for the `what` service.
    fn subnet_group(&self, id: &str, kind: Kind, name: String, what: &str, net: &Net) -> Resource {
        self.res(id, kind)
            .with("name", name)
            .with("description", self.description(&format!("{what} subnets")))
            .with("subnet_ids", net.private_ids())
    }

    /// A (cluster) parameter group `name` of `family` holding `params`; `what` it holds is in
    /// its description.
    fn parameter_group(
        &self,
        id: &str,
        kind: Kind,
        name: String,
        family: &str,
        what: &str,
        params: BTreeMap<String, String>,
    ) -> Resource {
        let params = params.into_iter().map(|(k, v)| (k, Value::Str(v)));
        self.res(id, kind)
            .with("name", name)
            .with("family", family)
            .with(
                "description",
                self.description(&format!("Moodle-tuned {family} {what}")),
            )
            .with("parameters", Value::Map(params.collect()))
    }

    fn res(&self, id: &str, kind: Kind) -> Resource {
        let mut tags: BTreeMap<String, Value> = self
            .stack
            .tags
            .iter()
            .map(|(k, v)| (k.clone(), Value::str(v)))
            .collect();
        tags.insert("Name".into(), Value::str(self.names.name_tag(id)));
        tags.insert(TAG_STACK.into(), Value::str(&self.stack.name));
        tags.insert(TAG_ID.into(), Value::str(id));
        Resource::new(id, kind).with("tags", Value::Map(tags))
    }

    fn push(&mut self, r: Resource) {
        self.out.push(r);
    }

    // ---- network -------------------------------------------------------------------------

    fn network(&mut self) -> Result<Net, GraphError> {
        if let Some(existing) = &self.stack.network.existing {
            // Existing network: ids are literal. The subnets' zones are not known before AWS is
            // asked (`network.zones` is ignored with `existing`), so per-subnet resources (the
            // EFS mount targets) are numbered in list order: `files.mount.1`, `files.mount.2`.
            let lits = |v: &Vec<String>| -> Vec<(String, Value)> {
                v.iter()
                    .enumerate()
                    .map(|(i, s)| ((i + 1).to_string(), Value::str(s)))
                    .collect()
            };
            return Ok(Net {
                vpc: Value::str(&existing.vpc_id),
                public: lits(&existing.public_subnet_ids),
                private: lits(&existing.private_subnet_ids),
            });
        }
        let public_cidrs = self.stack.public_subnet_cidrs();
        let private_cidrs = self.stack.private_subnet_cidrs();
        if public_cidrs.len() != self.zones.len() || private_cidrs.len() != self.zones.len() {
            return Err(GraphError::unbuildable(
                format!(
                    "network: {} zones but {} public and {} private subnet CIDRs",
                    self.zones.len(),
                    public_cidrs.len(),
                    private_cidrs.len()
                ),
                "give one public and one private subnet per zone (or leave the subnets out to \
                 carve them from `network.cidr`)",
            ));
        }

        let vpc = self
            .res(ids::VPC, Kind::Vpc)
            .with("cidr_block", self.stack.network.cidr.as_str())
            .with("enable_dns_hostnames", true)
            .with("enable_dns_support", true);
        self.push(vpc);
        let igw = self
            .res(ids::IGW, Kind::InternetGateway)
            .with("vpc_id", id_ref(ids::VPC));
        self.push(igw);

        let zones = self.zones.clone();
        let mut net = Net {
            vpc: id_ref(ids::VPC),
            public: Vec::new(),
            private: Vec::new(),
        };
        for (i, (zone, z)) in zones.iter().enumerate() {
            for (public, cidr) in [(true, &public_cidrs[i]), (false, &private_cidrs[i])] {
                let id = if public {
                    ids::subnet_public(z)
                } else {
                    ids::subnet_private(z)
                };
                let subnet = self
                    .res(&id, Kind::Subnet)
                    .with("vpc_id", id_ref(ids::VPC))
                    .with("cidr_block", cidr.as_str())
                    .with("availability_zone", zone.as_str())
                    .with("map_public_ip_on_launch", public);
                self.push(subnet);
                let list = if public {
                    &mut net.public
                } else {
                    &mut net.private
                };
                list.push((z.clone(), id_ref(&id)));
            }
        }

        // NAT gateways: in the public subnet of their zone, after the internet gateway.
        let nat_zones: Vec<&String> = match self.stack.network.nat_gateways {
            NatGateways::None => vec![],
            NatGateways::Single => zones.iter().take(1).map(|(_, z)| z).collect(),
            NatGateways::PerZone => zones.iter().map(|(_, z)| z).collect(),
        };
        for z in &nat_zones {
            let eip = self.res(&ids::eip_nat(z), Kind::ElasticIp);
            self.push(eip);
            let nat = self
                .res(&ids::nat(z), Kind::NatGateway)
                .with("subnet_id", id_ref(&ids::subnet_public(z)))
                .with("allocation_id", id_ref(&ids::eip_nat(z)))
                .after(ids::IGW);
            self.push(nat);
        }

        let route = |target_field: &str, target: &str| {
            Value::Map(BTreeMap::from([
                ("destination_cidr".to_string(), Value::str(ANYWHERE)),
                (target_field.to_string(), id_ref(target)),
            ]))
        };
        let rt = self
            .res(ids::RT_PUBLIC, Kind::RouteTable)
            .with("vpc_id", id_ref(ids::VPC))
            .with("routes", Value::List(vec![route("gateway_id", ids::IGW)]))
            .with("subnet_ids", net.public_ids());
        self.push(rt);
        for (_, z) in &zones {
            let nat = match self.stack.network.nat_gateways {
                NatGateways::None => None,
                NatGateways::Single => nat_zones.first().map(|nz| ids::nat(nz)),
                NatGateways::PerZone => Some(ids::nat(z)),
            };
            let routes: Vec<Value> = nat.iter().map(|n| route("nat_gateway_id", n)).collect();
            let rt = self
                .res(&ids::rt_private(z), Kind::RouteTable)
                .with("vpc_id", id_ref(ids::VPC))
                .with("routes", Value::List(routes))
                .with(
                    "subnet_ids",
                    Value::List(vec![id_ref(&ids::subnet_private(z))]),
                );
            self.push(rt);
        }
        Ok(net)
    }

    // ---- security groups -----------------------------------------------------------------

    fn security_groups(&mut self, net: &Net) {
        let cidr_rule = |port: i64, cidr: &str, description: String| {
            rule(port, ("cidr", Value::str(cidr)), description)
        };
        let sg_rule = |port: i64, source: &str, description: String| {
            rule(port, ("source_group_id", id_ref(source)), description)
        };

        let mut alb = vec![cidr_rule(HTTP_PORT, ANYWHERE, "HTTP from anywhere".into())];
        if self.stack.https() {
            alb.push(cidr_rule(
                HTTPS_PORT,
                ANYWHERE,
                "HTTPS from anywhere".into(),
            ));
        }

        let node_rules = |what: &str| {
            let mut rules = vec![sg_rule(
                HTTP_PORT,
                ids::SG_ALB,
                "HTTP from the load balancer".into(),
            )];
            for cidr in &self.stack.network.admin_cidrs {
                rules.push(cidr_rule(
                    SSH_PORT,
                    cidr,
                    format!("SSH to the {what} from {cidr}"),
                ));
            }
            rules
        };
        let from_nodes = |port: i64, service: &str| {
            vec![
                sg_rule(port, ids::SG_WEB, format!("{service} from the web fleet")),
                sg_rule(
                    port,
                    ids::SG_STABLE,
                    format!("{service} from the stable instance"),
                ),
            ]
        };
        let db_service = if self.stack.database.engine.is_mysql_family() {
            "MySQL"
        } else {
            "PostgreSQL"
        };

        let groups = [
            (ids::SG_ALB, "alb", "Application Load Balancer", alb),
            (ids::SG_WEB, "web", "web fleet", node_rules("web fleet")),
            (
                ids::SG_STABLE,
                "stable",
                "stable instance",
                node_rules("stable instance"),
            ),
            (
                ids::SG_DB,
                "db",
                "database",
                from_nodes(self.stack.database.engine.port(), db_service),
            ),
            (
                ids::SG_CACHE,
                "cache",
                "Redis cache",
                from_nodes(REDIS_PORT, "Redis"),
            ),
            (
                ids::SG_EFS,
                "efs",
                "EFS mount targets",
                from_nodes(NFS_PORT, "NFS"),
            ),
        ];
        for (id, role, what, ingress) in groups {
            let sg = self
                .res(id, Kind::SecurityGroup)
                .with("vpc_id", net.vpc.clone())
                .with("group_name", self.names.security_group(role))
                .with("description", self.description(what))
                .with("ingress", Value::List(ingress));
            self.push(sg);
        }
    }

    // ---- IAM -----------------------------------------------------------------------------

    fn cache_auth_secret(&mut self) {
        if !self.stack.cache.auth {
            return;
        }
        let secret = self
            .res(ids::CACHE_AUTH, Kind::Secret)
            .with("name", self.names.redis_auth_secret())
            .with(
                "description",
                self.description("Redis AUTH token (generated)"),
            );
        self.push(secret);
    }

    /// The bucket of code artefacts: the stable node puts each code version there once, every
    /// node boots from it (docs/nodes.md).
    fn code_bucket(&mut self) {
        let bucket = self
            .res(ids::CODE_BUCKET, Kind::CodeBucket)
            .with("bucket", self.names.code_bucket(&self.image.account_id))
            .with("block_public_access", true);
        self.push(bucket);
    }

    fn iam(&mut self) {
        let assume = assume_role_policy("ec2.amazonaws.com");
        let mut secrets = vec![marker(db_endpoint_resource(self.stack), "secret_arn")];
        if self.stack.cache.auth {
            secrets.push(marker(ids::CACHE_AUTH, "arn"));
        }
        // Keys in sorted order (the canonical form: compact JSON, keys sorted).
        let policy = serde_json::json!({
            "Statement": [
                {
                    "Action": ["secretsmanager:GetSecretValue"],
                    "Effect": "Allow",
                    "Resource": secrets,
                    "Sid": "ReadStackSecrets",
                },
                {
                    "Action": [
                        "elasticfilesystem:ClientMount",
                        "elasticfilesystem:ClientWrite",
                    ],
                    "Effect": "Allow",
                    "Resource": [marker(ids::FILES_FS, "arn")],
                    "Sid": "MountMoodledata",
                },
                {
                    // The stable node puts a code version's artefact once (a conditional put:
                    // an existing one is never overwritten); every node reads it at boot.
                    "Action": ["s3:GetObject", "s3:PutObject"],
                    "Effect": "Allow",
                    "Resource": [format!("{}/code/*", marker(ids::CODE_BUCKET, "arn"))],
                    "Sid": "CodeArtefacts",
                },
                {
                    // The Spot watcher moves its own node to Standby before a reclaim; the
                    // group's ARN holds an id unknown at plan time, so the stack's tag scopes it.
                    "Action": ["autoscaling:EnterStandby"],
                    "Condition": {
                        "StringEquals": {"aws:ResourceTag/moodlestack:stack": self.stack.name},
                    },
                    "Effect": "Allow",
                    "Resource": "*",
                    "Sid": "DrainWebNode",
                },
                {
                    // The watcher completes the drain hook's lifecycle action on scale-in: the
                    // one action, on the stack's group alone (its ARN with the id wildcarded).
                    "Action": ["autoscaling:CompleteLifecycleAction"],
                    "Effect": "Allow",
                    "Resource": format!(
                        "arn:{}:autoscaling:{}:*:autoScalingGroup:*:autoScalingGroupName/{}",
                        moodlestack_model::cloud::partition(&self.stack.region),
                        self.stack.region,
                        self.names.autoscaling_group()
                    ),
                    "Sid": "CompleteWebDrain",
                },
                {
                    // The CloudWatch agent writes each node's stream into the stack's log
                    // groups (which the stack makes: no logs:CreateLogGroup).
                    "Action": [
                        "logs:CreateLogStream",
                        "logs:DescribeLogStreams",
                        "logs:PutLogEvents",
                    ],
                    "Effect": "Allow",
                    "Resource": format!(
                        "arn:{}:logs:{}:{}:log-group:{}*",
                        moodlestack_model::cloud::partition(&self.stack.region),
                        self.stack.region,
                        self.image.account_id,
                        self.names.log_group_prefix()
                    ),
                    "Sid": "ShipLogs",
                },
                {
                    // The cron heartbeat, into the stack's own namespace only.
                    "Action": ["cloudwatch:PutMetricData"],
                    "Condition": {
                        "StringEquals": {"cloudwatch:namespace": self.names.metric_namespace()},
                    },
                    "Effect": "Allow",
                    "Resource": "*",
                    "Sid": "PublishStackMetrics",
                },
            ],
            "Version": "2012-10-17",
        });
        let policy = interpolate(&canonical_json(&policy), "iam.role inline policy")
            .expect("markers written by the graph are well-formed");
        let role_name = self.names.node_role();
        let role = self
            .res(ids::IAM_ROLE, Kind::IamRole)
            .with("role_name", role_name.as_str())
            .with("path", "/")
            .with("assume_role_policy", assume)
            .with(
                "managed_policy_arns",
                Value::strs([format!(
                    "arn:{}:iam::aws:policy/AmazonSSMManagedInstanceCore",
                    moodlestack_model::cloud::partition(&self.stack.region)
                )]),
            )
            .with(
                "inline_policies",
                Value::Map(BTreeMap::from([(role_name.clone(), policy)])),
            );
        self.push(role);
        let profile = self
            .res(ids::IAM_PROFILE, Kind::InstanceProfile)
            .with("name", role_name)
            .with("path", "/")
            .with("role_name", id_ref(ids::IAM_ROLE));
        self.push(profile);
    }

    // ---- database ------------------------------------------------------------------------

    fn database(&mut self, net: &Net) {
        let db = &self.stack.database;
        let family = db.parameter_family();
        let engine = db.engine.rds_name();
        let subnet_group = self.subnet_group(
            ids::DB_SUBNET_GROUP,
            Kind::DbSubnetGroup,
            self.names.db_subnet_group(),
            "database",
            net,
        );
        self.push(subnet_group);

        let (instance_params, cluster_params) = if db.engine.is_aurora() {
            // Aurora: engine-wide settings live in the cluster parameter group; the storage I/O
            // tuning of the Moodle defaults does not apply to Aurora's storage layer (unless the
            // stack sets it explicitly).
            let mut p = db.effective_parameters();
            for k in AURORA_NOT_APPLICABLE {
                if !db.parameters.contains_key(*k) {
                    p.remove(*k);
                }
            }
            (BTreeMap::new(), Some(p))
        } else {
            (db.effective_parameters(), None)
        };
        let pg = self.parameter_group(
            ids::DB_PARAMETER_GROUP,
            Kind::DbParameterGroup,
            self.names.db_parameter_group(&family),
            &family,
            "parameters",
            instance_params,
        );
        self.push(pg);

        let sgs = Value::List(vec![id_ref(ids::SG_DB)]);
        if let Some(cluster_params) = cluster_params {
            let cpg = self.parameter_group(
                ids::DB_CLUSTER_PARAMETER_GROUP,
                Kind::DbClusterParameterGroup,
                self.names.db_cluster_parameter_group(&family),
                &family,
                "cluster parameters",
                cluster_params,
            );
            self.push(cpg);
            let cluster = self
                .res(ids::DB_CLUSTER, Kind::DbCluster)
                .with("identifier", self.names.db_identifier())
                .with("engine", engine)
                .with("engine_version", db.engine_version())
                .with("db_subnet_group_name", id_ref(ids::DB_SUBNET_GROUP))
                .with(
                    "cluster_parameter_group_name",
                    id_ref(ids::DB_CLUSTER_PARAMETER_GROUP),
                )
                .with("vpc_security_group_ids", sgs)
                .with("master_username", db.username.as_str())
                .with("database_name", db.db_name.as_str())
                .with("port", db.engine.port())
                .with("backup_retention_period", db.backup_retention_days)
                .with("deletion_protection", db.deletion_protection)
                .with("storage_encrypted", true);
            self.push(restored(cluster, db.restore_from.as_deref()));
            let members = if db.multi_az { 2 } else { 1 };
            for i in 1..=members {
                let member = self
                    .res(&ids::db_member(i), Kind::DbInstance)
                    .with("identifier", self.names.db_member(i))
                    .with("engine", engine)
                    .with("instance_class", db.instance_class.as_str())
                    .with("cluster_identifier", id_ref(ids::DB_CLUSTER))
                    .with("db_subnet_group_name", id_ref(ids::DB_SUBNET_GROUP))
                    .with("parameter_group_name", id_ref(ids::DB_PARAMETER_GROUP))
                    .with("publicly_accessible", false);
                self.push(member);
            }
        } else {
            let mut instance = self
                .res(ids::DB_INSTANCE, Kind::DbInstance)
                .with("identifier", self.names.db_identifier())
                .with("engine", engine)
                .with("engine_version", db.engine_version())
                .with("instance_class", db.instance_class.as_str())
                .with("allocated_storage", db.storage_gb)
                .with("storage_type", "gp3")
                .with("storage_encrypted", true)
                .with("multi_az", db.multi_az)
                .with("backup_retention_period", db.backup_retention_days)
                .with("deletion_protection", db.deletion_protection)
                .with("db_subnet_group_name", id_ref(ids::DB_SUBNET_GROUP))
                .with("parameter_group_name", id_ref(ids::DB_PARAMETER_GROUP))
                .with("vpc_security_group_ids", sgs)
                .with("master_username", db.username.as_str())
                .with("db_name", db.db_name.as_str())
                .with("port", db.engine.port())
                .with("publicly_accessible", false);
            if db.max_storage_gb > 0 {
                instance = instance.with("max_allocated_storage", db.max_storage_gb);
            }
            self.push(restored(instance, db.restore_from.as_deref()));
        }
        self.code_snapshot();
    }

    /// The snapshot of the database that the code version's nodes wait for: named after the
    /// version, so a Moodle upgrade (a new `moodle.git_ref` or `moodle.php_version`) takes a new
    /// one, and waits for it, before any launch template or node changes (the launch templates
    /// depend on it).
    fn code_snapshot(&mut self) {
        let code = code_version(self.stack);
        let (field, db) = if self.stack.database.engine.is_aurora() {
            ("db_cluster_identifier", ids::DB_CLUSTER)
        } else {
            ("db_instance_identifier", ids::DB_INSTANCE)
        };
        let mut snapshot = self
            .res(ids::DB_SNAPSHOT, Kind::DbSnapshot)
            .with("identifier", self.names.code_snapshot(&code))
            .with(field, id_ref(db));
        if let Some(Value::Map(tags)) = snapshot.fields.get_mut("tags") {
            tags.insert(moodlestack_model::TAG_CODE.into(), Value::str(&code));
        }
        self.push(snapshot);
    }

    // ---- files ---------------------------------------------------------------------------

    fn files(&mut self, net: &Net) {
        let mut fs = self
            .res(ids::FILES_FS, Kind::EfsFileSystem)
            .with("creation_token", self.names.efs_creation_token())
            .with(
                "performance_mode",
                self.stack.files.performance_mode.as_str(),
            )
            .with("throughput_mode", self.stack.files.throughput_mode.as_str())
            .with("encrypted", true);
        if let Some(point) = &self.stack.files.restore_from {
            // Made by an AWS Backup restore of this recovery point (a new one replaces the
            // current file system), with the stack's backup role, which says so in its tag.
            fs = fs.with("restore_from", point.as_str()).with(
                "restore_role_arn",
                Value::reference(ids::BACKUP_ROLE, "arn"),
            );
            if let Some(Value::Map(tags)) = fs.fields.get_mut("tags") {
                tags.insert(
                    moodlestack_model::TAG_RESTORED_FROM.into(),
                    Value::str(point),
                );
            }
        }
        self.push(fs);
        for (z, subnet) in &net.private {
            // Mount targets cannot be tagged: no `tags` field.
            let mount = Resource::new(ids::files_mount(z), Kind::EfsMountTarget)
                .with("file_system_id", id_ref(ids::FILES_FS))
                .with("subnet_id", subnet.clone())
                .with("security_group_ids", Value::List(vec![id_ref(ids::SG_EFS)]));
            self.push(mount);
        }
    }

    // ---- backups -------------------------------------------------------------------------

    /// AWS Backup of the database and the file system (`backup`): the vault, the plan's one
    /// rule, the role AWS Backup assumes and the selection of the two by their ARNs (not by the
    /// stack's tag, which every resource of the stack carries: only these two hold data).
    fn backup(&mut self) {
        let b = &self.stack.backup;
        if !b.enabled {
            return;
        }
        let partition = moodlestack_model::cloud::partition(&self.stack.region);
        let vault = self
            .res(ids::BACKUP_VAULT, Kind::BackupVault)
            .with("name", self.names.backup_vault());
        self.push(vault);
        let schedule = moodlestack_stack::schedule::aws_backup_cron(&b.schedule)
            .unwrap_or_else(|_| b.schedule.clone());
        let plan = self
            .res(ids::BACKUP_PLAN, Kind::BackupPlan)
            .with("name", self.names.backup_plan())
            .with("rule_name", "scheduled")
            .with("vault_name", id_ref(ids::BACKUP_VAULT))
            .with("schedule", schedule)
            .with("schedule_time_zone", b.time_zone.as_str())
            .with("retention_days", b.retention_days);
        self.push(plan);
        let assume = assume_role_policy("backup.amazonaws.com");
        let policy = |name: &str| format!("arn:{partition}:iam::aws:policy/service-role/{name}");
        let role = self
            .res(ids::BACKUP_ROLE, Kind::IamRole)
            .with("role_name", self.names.backup_role())
            .with("path", "/")
            .with("assume_role_policy", assume)
            .with(
                "managed_policy_arns",
                Value::strs([
                    policy("AWSBackupServiceRolePolicyForBackup"),
                    policy("AWSBackupServiceRolePolicyForRestores"),
                ]),
            )
            .with("inline_policies", Value::Map(BTreeMap::new()));
        self.push(role);
        // Not taggable: no `tags` field.
        let selection = Resource::new(ids::BACKUP_SELECTION, Kind::BackupSelection)
            .with("plan_id", id_ref(ids::BACKUP_PLAN))
            .with("name", self.names.backup_selection())
            .with("iam_role_arn", Value::reference(ids::BACKUP_ROLE, "arn"))
            .with(
                "resources",
                Value::List(vec![
                    Value::reference(db_endpoint_resource(self.stack), "arn"),
                    Value::reference(ids::FILES_FS, "arn"),
                ]),
            );
        self.push(selection);
        self.code_backup();
    }

    /// The on-demand backup of moodledata that the code version's nodes wait for, beside the
    /// database snapshot ([`Builder::code_snapshot`]): named after the version as the snapshot is, so a Moodle upgrade backs the file system up into the stack's vault, and
    /// waits for it, before any launch template or node changes.
    fn code_backup(&mut self) {
        let code = code_version(self.stack);
        let name = self.names.code_snapshot(&code);
        let mut backup = self
            .res(ids::FILES_BACKUP, Kind::BackupRecoveryPoint)
            .with("name", name.as_str())
            .with("vault_name", id_ref(ids::BACKUP_VAULT))
            .with("resource_arn", Value::reference(ids::FILES_FS, "arn"))
            .with("iam_role_arn", Value::reference(ids::BACKUP_ROLE, "arn"));
        if let Some(Value::Map(tags)) = backup.fields.get_mut("tags") {
            tags.insert(moodlestack_model::TAG_CODE.into(), Value::str(&code));
        }
        self.push(backup);
    }

    // ---- cache ---------------------------------------------------------------------------

    fn cache(&mut self, net: &Net) {
        let c = &self.stack.cache;
        let sng = self.subnet_group(
            ids::CACHE_SUBNET_GROUP,
            Kind::CacheSubnetGroup,
            self.names.cache_subnet_group(),
            "cache",
            net,
        );
        self.push(sng);
        let mut rg = self
            .res(ids::CACHE_REDIS, Kind::CacheReplicationGroup)
            .with("replication_group_id", self.names.cache_replication_group())
            .with(
                "description",
                self.description("Moodle sessions and caches"),
            )
            .with("engine", "redis")
            .with("engine_version", c.engine_version.as_str())
            .with("node_type", c.node_type.as_str())
            .with("num_cache_clusters", 1 + c.replicas)
            .with("automatic_failover", c.automatic_failover)
            .with("multi_az", c.automatic_failover)
            .with("transit_encryption", c.transit_encryption)
            .with("at_rest_encryption", true)
            .with("cache_subnet_group_name", id_ref(ids::CACHE_SUBNET_GROUP))
            .with(
                "security_group_ids",
                Value::List(vec![id_ref(ids::SG_CACHE)]),
            )
            .with("port", REDIS_PORT);
        if c.auth {
            rg = rg.with(
                "auth_token_secret_arn",
                Value::reference(ids::CACHE_AUTH, "arn"),
            );
        }
        self.push(rg);
    }

    // ---- compute -------------------------------------------------------------------------

    fn compute(&mut self, net: &Net) -> Result<(), GraphError> {
        let endpoints = marker_endpoints(self.stack);
        let first_web_type = self.stack.web.instance_types.first().ok_or_else(|| {
            GraphError::unbuildable(
                "web.instance_types is empty",
                "list 3-6 instance types of one architecture",
            )
        })?;
        let templates = [
            (
                ids::WEB_LT,
                "web",
                Role::Web,
                first_web_type.as_str(),
                self.stack.web.root_volume_gb,
                ids::SG_WEB,
            ),
            (
                ids::STABLE_LT,
                "stable",
                Role::Stable,
                self.stack.stable.instance_type.as_str(),
                self.stack.stable.root_volume_gb,
                ids::SG_STABLE,
            ),
        ];
        for (id, role_name, role, instance_type, root_gb, sg) in templates {
            let text = (self.user_data)(self.stack, role, &endpoints)?;
            let user_data = interpolate(&text, &format!("{id} user_data"))?;
            check_user_data_size(id, &user_data)?;
            let lt = self
                .res(id, Kind::LaunchTemplate)
                .with("name", self.names.launch_template(role_name))
                .with("image_id", self.image.image_id.as_str())
                .with("instance_type", instance_type)
                .with(
                    "instance_profile_arn",
                    Value::reference(ids::IAM_PROFILE, "arn"),
                )
                .with("security_group_ids", Value::List(vec![id_ref(sg)]))
                .with("user_data", user_data)
                .with("http_tokens", "required")
                .with("root_device_name", self.image.root_device_name.as_str())
                .with("root_volume_size", root_gb)
                .with("root_volume_type", "gp3")
                .with("root_volume_encrypted", true)
                // No node changes before the database snapshot of its code version exists (nor,
                // with backups on, moodledata's backup).
                .after(ids::DB_SNAPSHOT);
            let lt = if self.stack.backup.enabled {
                lt.after(ids::FILES_BACKUP)
            } else {
                lt
            };
            self.push(lt);
        }

        // What a node needs at boot that its launch template does not reference: the EFS mount
        // targets (it mounts moodledata), the log groups (its agent writes there and may not
        // create them) and, in a network the stack creates, the routes to the internet (it
        // installs packages and clones Moodle). Ordering only.
        let boot_deps: Vec<String> = self
            .out
            .iter()
            .filter(|r| {
                matches!(
                    r.kind,
                    Kind::EfsMountTarget | Kind::RouteTable | Kind::LogGroup
                )
            })
            .map(|r| r.id.to_string())
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();

        let first_private = net.private.first().map(|(_, v)| v.clone()).ok_or_else(|| {
            GraphError::unbuildable("the network has no private subnet", "list at least 2")
        })?;
        let stable = self
            .res(ids::STABLE_INSTANCE, Kind::Instance)
            .with("launch_template_id", id_ref(ids::STABLE_LT))
            .with(
                "launch_template_version",
                Value::reference(ids::STABLE_LT, "version"),
            )
            .with("subnet_id", first_private)
            .with(
                "instance_profile_arn",
                Value::reference(ids::IAM_PROFILE, "arn"),
            )
            .with("http_tokens", "required");
        let stable = boot_deps.iter().fold(stable, |r, d| r.after(d.as_str()));
        self.push(stable);

        let web = &self.stack.web;
        let asg = self
            .res(ids::WEB_ASG, Kind::AutoScalingGroup)
            .with("name", self.names.autoscaling_group())
            .with("launch_template_id", id_ref(ids::WEB_LT))
            .with(
                "launch_template_version",
                Value::reference(ids::WEB_LT, "version"),
            )
            .with(
                "instance_types",
                Value::strs(web.instance_types.iter().cloned()),
            )
            .with("min_size", web.min)
            .with("max_size", web.max)
            .with("desired_capacity", web.min)
            .with("on_demand_base_capacity", web.on_demand_base)
            .with(
                "on_demand_percentage_above_base",
                web.on_demand_percentage_above_base,
            )
            .with(
                "spot_allocation_strategy",
                web.spot_allocation_strategy.as_str(),
            )
            .with("capacity_rebalance", web.capacity_rebalance)
            .with("subnet_ids", net.private_ids())
            .with(
                "target_group_arns",
                Value::List(vec![Value::reference(ids::LB_TG, "arn")]),
            )
            .with("health_check_type", "ELB")
            .with("health_check_grace_period", HEALTH_CHECK_GRACE_PERIOD)
            .with(
                "enabled_metrics",
                Value::strs(GROUP_METRICS.iter().copied()),
            );
        let asg = boot_deps.iter().fold(asg, |r, d| r.after(d.as_str()));
        self.push(asg);
        self.scaling();
        Ok(())
    }

    /// What moves the web fleet: the target-tracking policy, the scheduled actions and the
    /// drain hook. The group's min/max accept the sizes the schedule sets (compared one of
    /// several values), so a plan made during exam week does not undo the schedule.
    fn scaling(&mut self) {
        let web = &self.stack.web;
        let group = || id_ref(ids::WEB_ASG);
        if !web.schedule.is_empty() {
            let accepted =
                |own: i64, each: fn(&moodlestack_stack::ScheduledCapacity) -> Option<i64>| {
                    let mut v = vec![own];
                    for n in web.schedule.iter().filter_map(each) {
                        if !v.contains(&n) {
                            v.push(n);
                        }
                    }
                    (v.len() > 1).then(|| Value::List(v.into_iter().map(Value::Int).collect()))
                };
            let min = accepted(web.min, |a| Some(a.min));
            let max = accepted(web.max, |a| a.max);
            let asg = self
                .out
                .iter_mut()
                .find(|r| r.id.as_str() == ids::WEB_ASG)
                .expect("the group was just pushed");
            if let Some(min) = min {
                asg.fields.insert("min_size".into(), min);
            }
            if let Some(max) = max {
                asg.fields.insert("max_size".into(), max);
            }
        }
        let sc = &web.scaling;
        if sc.enabled {
            let (metric, label) = if sc.metric == "requests" {
                let label = Value::Interpolated(vec![
                    Segment::Ref(Ref::new(ids::LB_ALB, "arn_suffix")),
                    Segment::Lit("/".into()),
                    Segment::Ref(Ref::new(ids::LB_TG, "arn_suffix")),
                ]);
                ("ALBRequestCountPerTarget", label)
            } else {
                ("ASGAverageCPUUtilization", Value::str(""))
            };
            // Untaggable: no `tags` field.
            let policy = Resource::new(ids::WEB_SCALING, Kind::ScalingPolicy)
                .with("group_name", group())
                .with("name", self.names.scaling_policy())
                .with("metric", metric)
                .with("resource_label", label)
                .with("target_value", sc.target_value())
                .with("estimated_instance_warmup", sc.warmup)
                .with("disable_scale_in", !sc.scale_in);
            self.push(policy);
        }
        for a in &web.schedule {
            let mut action = Resource::new(ids::web_schedule(&a.name), Kind::ScheduledAction)
                .with("group_name", group())
                .with("name", a.name.as_str())
                .with("recurrence", a.recurrence.as_str())
                .with("time_zone", a.time_zone.as_str())
                .with("min_size", a.min)
                .with("desired_capacity", a.desired);
            if let Some(max) = a.max {
                action = action.with("max_size", max);
            }
            self.push(action);
        }
        let hook = Resource::new(ids::WEB_DRAIN, Kind::LifecycleHook)
            .with("group_name", group())
            .with("name", self.names.drain_hook())
            .with("transition", TERMINATING)
            .with("heartbeat_timeout", DRAIN_HOOK_TIMEOUT)
            .with("default_result", "CONTINUE");
        self.push(hook);
    }

    // ---- load balancer -------------------------------------------------------------------

    fn load_balancer(&mut self, net: &Net) {
        let lb = &self.stack.load_balancer;
        let mut alb = self
            .res(ids::LB_ALB, Kind::LoadBalancer)
            .with("name", self.names.load_balancer())
            .with("scheme", "internet-facing")
            .with("subnet_ids", net.public_ids())
            .with("security_group_ids", Value::List(vec![id_ref(ids::SG_ALB)]))
            .with("idle_timeout", lb.idle_timeout)
            // Headers with characters the RFCs do not allow never reach Apache.
            .with("drop_invalid_header_fields", true)
            // A stack whose database refuses deletes keeps its entry point too: destroy needs
            // --allow-data-loss for both.
            .with(
                "deletion_protection",
                self.stack.database.deletion_protection,
            );
        if self.stack.network.existing.is_none() {
            // An internet-facing ALB needs the internet gateway attached and routed (AWS:
            // "VPC has no internet gateway"), and on destroy the gateway can only be detached
            // once the ALB's public addresses are gone.
            alb = alb.after(ids::RT_PUBLIC);
        }
        self.push(alb);
        let tg = self
            .res(ids::LB_TG, Kind::TargetGroup)
            .with("name", self.names.target_group())
            .with("vpc_id", net.vpc.clone())
            .with("protocol", "HTTP")
            .with("port", HTTP_PORT)
            .with("target_type", "instance")
            .with("health_check_path", lb.health_check_path.as_str())
            .with("health_check_interval", lb.health_check_interval)
            .with("healthy_threshold", lb.healthy_threshold)
            .with("unhealthy_threshold", UNHEALTHY_THRESHOLD)
            .with("health_check_matcher", HEALTH_CHECK_MATCHER)
            .with("deregistration_delay", lb.deregistration_delay);
        self.push(tg);

        let forward = Value::Map(BTreeMap::from([
            ("type".to_string(), Value::str("forward")),
            (
                "target_group_arn".to_string(),
                Value::reference(ids::LB_TG, "arn"),
            ),
        ]));
        let listener = |me: &Self, id: &str, port: i64, protocol: &str, action: Value| {
            me.res(id, Kind::Listener)
                .with("load_balancer_arn", Value::reference(ids::LB_ALB, "arn"))
                .with("port", port)
                .with("protocol", protocol)
                .with("default_action", action)
        };
        match &lb.certificate_arn {
            Some(cert) => {
                let redirect = Value::Map(BTreeMap::from([
                    ("type".to_string(), Value::str("redirect")),
                    ("protocol".to_string(), Value::str("HTTPS")),
                    ("port".to_string(), Value::str(HTTPS_PORT.to_string())),
                    ("status_code".to_string(), Value::str("HTTP_301")),
                ]));
                let http = listener(self, ids::LB_LISTENER_HTTP, HTTP_PORT, "HTTP", redirect);
                self.push(http);
                let https = listener(self, ids::LB_LISTENER_HTTPS, HTTPS_PORT, "HTTPS", forward)
                    .with("certificate_arn", cert.as_str())
                    .with("ssl_policy", TLS_POLICY);
                self.push(https);
            }
            None => {
                let http = listener(self, ids::LB_LISTENER_HTTP, HTTP_PORT, "HTTP", forward);
                self.push(http);
            }
        }
    }
}

/// EC2's limit on user data, in bytes before base64 encoding (the user-data is sent
/// gzip-compressed: [`moodlestack_model::user_data`]).
pub const USER_DATA_LIMIT: usize = moodlestack_model::user_data::LIMIT;
/// Bytes allowed for one resolved reference in user data (the longest real values, Secrets
/// Manager ARNs and RDS/ElastiCache endpoints, are about 100; counted as if they did not
/// compress).
const REF_ALLOWANCE: usize = 128;

/// User data must fit EC2's limit once the endpoints are filled in.
fn check_user_data_size(id: &str, user_data: &Value) -> Result<(), GraphError> {
    let (literal, refs) = match user_data {
        Value::Interpolated(segs) => segs.iter().fold((String::new(), 0), |(l, r), s| match s {
            Segment::Lit(t) => (l + t, r),
            Segment::Ref(_) => (l, r + 1),
        }),
        Value::Str(s) => (s.clone(), 0),
        _ => (String::new(), 0),
    };
    let size = moodlestack_model::user_data::compress(&literal).len() + refs * REF_ALLOWANCE;
    if size > USER_DATA_LIMIT {
        return Err(GraphError::unbuildable(
            format!(
                "{id}: the rendered user-data is about {size} bytes gzip-compressed with its \
                 {refs} endpoint(s) filled in, over EC2's limit of {USER_DATA_LIMIT}"
            ),
            "remove entries from `moodle.config` (they are written into config.php inside the \
             user-data)",
        ));
    }
    Ok(())
}

/// Moodle's storage I/O defaults that Aurora MySQL does not let a parameter group set.
const AURORA_NOT_APPLICABLE: &[&str] = &[
    "innodb_flush_log_at_trx_commit",
    "innodb_io_capacity",
    "innodb_io_capacity_max",
    "innodb_read_io_threads",
    "innodb_write_io_threads",
];

/// One ingress rule map: `{protocol, from_port, to_port, description, cidr | source_group_id}`.
fn rule(port: i64, source: (&str, Value), description: String) -> Value {
    Value::Map(BTreeMap::from([
        ("protocol".to_string(), Value::str("tcp")),
        ("from_port".to_string(), Value::Int(port)),
        ("to_port".to_string(), Value::Int(port)),
        ("description".to_string(), Value::Str(description)),
        (source.0.to_string(), source.1),
    ]))
}

/// Compact JSON with object keys sorted, whatever serde_json's map features (the canonical form
/// of IAM policy documents in `kind.rs`).
pub fn canonical_json(v: &serde_json::Value) -> String {
    fn sort(v: &serde_json::Value) -> serde_json::Value {
        match v {
            serde_json::Value::Object(m) => {
                let mut keys: Vec<&String> = m.keys().collect();
                keys.sort();
                serde_json::Value::Object(
                    keys.into_iter().map(|k| (k.clone(), sort(&m[k]))).collect(),
                )
            }
            serde_json::Value::Array(a) => serde_json::Value::Array(a.iter().map(sort).collect()),
            other => other.clone(),
        }
    }
    serde_json::to_string(&sort(v)).expect("JSON values serialize")
}

/// The image must exist in a form a launch template can use, and every instance type the stack
/// names (when the instance type table knows it) must match its architecture.
fn check_image(stack: &Stack, image: &Image) -> Result<(), GraphError> {
    if image.image_id.is_empty() || image.root_device_name.is_empty() {
        return Err(GraphError::unbuildable(
            format!("the AMI `{}` has no id or root device name", image.image_id),
            "set `ami.id` to an EBS-backed image",
        ));
    }
    let types = stack
        .web
        .instance_types
        .iter()
        .map(|t| ("web.instance_types", t))
        .chain(std::iter::once((
            "stable.instance_type",
            &stack.stable.instance_type,
        )));
    for (field, t) in types {
        if let Some(info) = instance_types::lookup(t) {
            if info.arch.as_str() != image.architecture {
                return Err(GraphError::unbuildable(
                    format!(
                        "{field}: {t} is {} but the AMI {} is {}",
                        info.arch, image.image_id, image.architecture
                    ),
                    format!(
                        "choose {} instance types or an AMI of the types' architecture \
                         (`ami.ssm_parameter` .../{}/...)",
                        image.architecture,
                        if info.arch.as_str() == "arm64" {
                            "arm64"
                        } else {
                            "amd64"
                        }
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// The trust policy that lets `service` (e.g. `ec2.amazonaws.com`) assume a role, in canonical form.
fn assume_role_policy(service: &str) -> String {
    canonical_json(&serde_json::json!({
        "Statement": [{
            "Action": "sts:AssumeRole",
            "Effect": "Allow",
            "Principal": {"Service": service},
        }],
        "Version": "2012-10-17",
    }))
}
