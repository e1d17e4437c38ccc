//! The stack model: one high-availability Moodle deployment on AWS.
//!
//! Every field is documented here; the documentation becomes the JSON Schema's descriptions
//! (`moodlestack schema`) and the stack file reference in the README. Defaults make a minimal stack
//! about 15 lines.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One Moodle deployment.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Stack {
    /// Stack name: lower-case letters, digits and single hyphens, starting with a letter, at most
    /// 28 characters (the load balancer and target group names `<name>-alb` / `<name>-web` must
    /// fit AWS's 32). Prefix of every resource name and value of the `moodlestack:stack` tag.
    pub name: String,
    /// AWS region, e.g. `eu-west-1`.
    pub region: String,
    /// Extra tags applied to every resource (on the create call itself).
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// The network: a VPC moodlestack creates, or an existing one.
    #[serde(default)]
    pub network: Network,
    /// The machine image of every node (Ubuntu 24.04 LTS).
    #[serde(default)]
    pub ami: Ami,
    /// The RDS database.
    pub database: Database,
    /// The EFS file system that holds moodledata.
    #[serde(default)]
    pub files: Files,
    /// Backups of the database and of moodledata by AWS Backup: a vault, a plan (schedule,
    /// retention) and its selection of the database and the file system. On by default.
    #[serde(default)]
    pub backup: Backup,
    /// The ElastiCache Redis replication group for MUC and sessions.
    #[serde(default)]
    pub cache: Cache,
    /// The On-Demand instance that alone runs cron, install/upgrade and async backups.
    #[serde(default)]
    pub stable: Stable,
    /// The Spot web fleet (Auto Scaling group with a mixed instances policy).
    #[serde(default)]
    pub web: Web,
    /// The Application Load Balancer.
    pub load_balancer: LoadBalancer,
    /// Moodle itself.
    pub moodle: Moodle,
    /// Logs, metrics, alarms and the dashboard: the nodes' logs in CloudWatch Logs, alarms that
    /// e-mail `alert_emails` through the stack's SNS topic. Always on; every value has a default.
    #[serde(default)]
    pub observability: Observability,
}

/// The VPC. Either moodlestack creates one (`cidr`, `zones`), or it uses an existing one
/// (`existing`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Network {
    /// CIDR of the VPC moodlestack creates.
    #[serde(default = "default_vpc_cidr")]
    pub cidr: String,
    /// Availability zones (at least 2, all in the stack's region). Default: the region's `a` and
    /// `b` zones.
    #[serde(default)]
    pub zones: Vec<String>,
    /// CIDRs of the public subnets (ALB, NAT), one per zone. Default: carved from `cidr`.
    #[serde(default)]
    pub public_subnets: Vec<String>,
    /// CIDRs of the private subnets (instances, database, cache, EFS), one per zone. Default:
    /// carved from `cidr`.
    #[serde(default)]
    pub private_subnets: Vec<String>,
    /// NAT gateways for the private subnets' outbound traffic.
    #[serde(default)]
    pub nat_gateways: NatGateways,
    /// Use an existing VPC instead of creating one.
    #[serde(default)]
    pub existing: Option<ExistingNetwork>,
    /// CIDRs allowed to reach the instances by SSH on port 22. Empty: no SSH at all (use SSM
    /// Session Manager).
    #[serde(default)]
    pub admin_cidrs: Vec<String>,
}

impl Default for Network {
    fn default() -> Self {
        Network {
            cidr: default_vpc_cidr(),
            zones: Vec::new(),
            public_subnets: Vec::new(),
            private_subnets: Vec::new(),
            nat_gateways: NatGateways::default(),
            existing: None,
            admin_cidrs: Vec::new(),
        }
    }
}

/// How many NAT gateways.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum NatGateways {
    /// No NAT: private subnets have no route to the internet.
    None,
    /// One NAT gateway in the first zone (cheaper; a zone outage cuts the others' egress).
    #[default]
    Single,
    /// One NAT gateway per zone (highly available).
    PerZone,
}

/// An existing VPC and its subnets.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExistingNetwork {
    /// `vpc-...`
    pub vpc_id: String,
    /// Public subnets for the ALB, in at least 2 zones.
    pub public_subnet_ids: Vec<String>,
    /// Private subnets for instances, database, cache and EFS, in at least 2 zones.
    pub private_subnet_ids: Vec<String>,
}

/// The AMI of every node: an explicit id, or an SSM public parameter resolved at plan time.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Ami {
    /// An explicit AMI id (`ami-...`). Takes precedence over `ssm_parameter`.
    #[serde(default)]
    pub id: Option<String>,
    /// SSM parameter holding the AMI id. Default: Canonical's Ubuntu 24.04 LTS amd64 image.
    #[serde(default = "default_ami_parameter")]
    pub ssm_parameter: String,
}

impl Default for Ami {
    fn default() -> Self {
        Ami {
            id: None,
            ssm_parameter: default_ami_parameter(),
        }
    }
}

/// The RDS database. Its master password is generated and kept by RDS in Secrets Manager; it
/// never appears in a stack file, user-data or launch template.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Database {
    /// Database engine.
    #[serde(default)]
    pub engine: Engine,
    /// Engine version. Default per engine: mysql `8.4`, aurora-mysql `8.0` (AWS's default minor),
    /// mariadb `10.11`, postgres `16`.
    #[serde(default)]
    pub version: Option<String>,
    /// Instance class, e.g. `db.t4g.medium`, `db.r7g.large`.
    #[serde(default = "default_db_class")]
    pub instance_class: String,
    /// Allocated storage in GiB (not used by Aurora).
    #[serde(default = "default_storage")]
    pub storage_gb: i64,
    /// Storage autoscaling ceiling in GiB (0: no autoscaling).
    #[serde(default)]
    pub max_storage_gb: i64,
    /// A standby in a second zone (Aurora: one replica instance).
    #[serde(default = "yes")]
    pub multi_az: bool,
    /// Days of automated backups (1-35).
    #[serde(default = "default_backup_days")]
    pub backup_retention_days: i64,
    /// Refuse deletes on the AWS side too.
    #[serde(default = "yes")]
    pub deletion_protection: bool,
    /// Name of the Moodle database.
    #[serde(default = "default_db_name")]
    pub db_name: String,
    /// Master user name (its password is managed by RDS in Secrets Manager).
    #[serde(default = "default_db_user")]
    pub username: String,
    /// Parameters merged over the Moodle-tuned defaults of the engine family.
    #[serde(default)]
    pub parameters: BTreeMap<String, String>,
    /// Restore the database from this RDS DB snapshot (its identifier; for Aurora a DB cluster
    /// snapshot): the database is replaced by a new one of the same name restored from it (an
    /// Aurora cluster with its instances), and the current one is deleted with a final snapshot,
    /// so only `apply --allow-data-loss` does it. A new stack's database is created by the
    /// restore. `moodlestack rollback` sets it to the snapshot taken before the upgrade it
    /// undoes, `moodlestack clone` to the source's snapshot. A database already restored from it
    /// is left as it is; leaving the field out later changes nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore_from: Option<String>,
}

/// Database engines.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Engine {
    /// RDS for MySQL (8.0 or 8.4).
    #[default]
    Mysql,
    /// Aurora MySQL 3 (MySQL 8.0 compatible): a cluster with one instance, two when `multi_az`.
    AuroraMysql,
    /// RDS for MariaDB (10.6 or newer).
    Mariadb,
    /// RDS for PostgreSQL (13 to 17).
    Postgres,
}

/// EFS file system for moodledata (always encrypted at rest).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Files {
    /// `generalPurpose` or `maxIO`.
    #[serde(default = "default_performance_mode")]
    pub performance_mode: String,
    /// `elastic` (scales with demand, pay per use) or `bursting`.
    #[serde(default = "default_throughput_mode")]
    pub throughput_mode: String,
    /// Restore moodledata from this AWS Backup recovery point of a file system (its ARN, as
    /// `moodlestack backups` lists it): the file system is replaced by a new one that AWS Backup
    /// restores from it (StartRestoreJob, with the stack's backup role; needs `backup.enabled`),
    /// and the current one is deleted, so only `apply --allow-data-loss` does it. A new stack's
    /// file system is created by the restore. AWS Backup puts the files in a directory
    /// `aws-backup-restore_<time>` of the new file system; the first node that mounts it moves
    /// them to moodledata's root. `moodlestack rollback` sets it to the backup taken before the
    /// upgrade it undoes, `moodlestack clone` to the source's newest backup. A file system
    /// already restored from it is left as it is; leaving the field out later changes nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore_from: Option<String>,
}

impl Default for Files {
    fn default() -> Self {
        Files {
            performance_mode: default_performance_mode(),
            throughput_mode: default_throughput_mode(),
            restore_from: None,
        }
    }
}

/// AWS Backup of the stack's data: every `schedule`, a backup of the database and of the file
/// system (moodledata) into the stack's vault, each kept `retention_days`. The database's own
/// automated backups (`database.backup_retention_days`) are kept as well.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Backup {
    /// Make the vault, the plan and its selection. `false` leaves moodledata without backups.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// When the backups start: Unix cron, five fields `minute hour day-of-month month
    /// day-of-week`, in `time_zone` (default `0 3 * * *`, daily at 03:00). AWS Backup's rules
    /// apply: the minute is one number (at most one backup an hour), and at most one of
    /// day-of-month and day-of-week is restricted. Each backup starts within 8 hours of its time.
    #[serde(default = "default_backup_schedule")]
    pub schedule: String,
    /// IANA time zone of the schedule (e.g. `Europe/Madrid`).
    #[serde(default = "default_time_zone")]
    pub time_zone: String,
    /// Days each backup is kept (1-36500; default 35).
    #[serde(default = "default_backup_retention")]
    pub retention_days: i64,
}

impl Default for Backup {
    fn default() -> Self {
        Backup {
            enabled: true,
            schedule: default_backup_schedule(),
            time_zone: default_time_zone(),
            retention_days: default_backup_retention(),
        }
    }
}

/// ElastiCache Redis replication group.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Cache {
    /// Node type, e.g. `cache.t4g.small`.
    #[serde(default = "default_cache_node")]
    pub node_type: String,
    /// Redis engine version.
    #[serde(default = "default_cache_version")]
    pub engine_version: String,
    /// Read replicas besides the primary (0-5).
    #[serde(default = "one")]
    pub replicas: i64,
    /// Promote a replica when the primary fails (needs at least 1 replica).
    #[serde(default = "yes")]
    pub automatic_failover: bool,
    /// TLS between the nodes and Redis.
    #[serde(default = "yes")]
    pub transit_encryption: bool,
    /// Require a Redis AUTH token (generated, kept in Secrets Manager, read by nodes at boot;
    /// needs `transit_encryption`).
    #[serde(default = "yes")]
    pub auth: bool,
}

impl Default for Cache {
    fn default() -> Self {
        Cache {
            node_type: default_cache_node(),
            engine_version: default_cache_version(),
            replicas: 1,
            automatic_failover: true,
            transit_encryption: true,
            auth: true,
        }
    }
}

/// The stable On-Demand instance.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Stable {
    /// Instance type.
    #[serde(default = "default_stable_type")]
    pub instance_type: String,
    /// Root volume size in GiB (gp3, encrypted).
    #[serde(default = "default_root_gb")]
    pub root_volume_gb: i64,
}

impl Default for Stable {
    fn default() -> Self {
        Stable {
            instance_type: default_stable_type(),
            root_volume_gb: default_root_gb(),
        }
    }
}

/// The Spot web fleet.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Web {
    /// 3-6 instance types across families (t, m, c, ...) of one CPU architecture, in order of
    /// preference.
    #[serde(default = "default_web_types")]
    pub instance_types: Vec<String>,
    /// Minimum number of web instances.
    #[serde(default = "two")]
    pub min: i64,
    /// Maximum number of web instances.
    #[serde(default = "default_web_max")]
    pub max: i64,
    /// On-Demand instances always kept (the rest is Spot).
    #[serde(default)]
    pub on_demand_base: i64,
    /// Percentage of On-Demand above the base (0: all Spot).
    #[serde(default)]
    pub on_demand_percentage_above_base: i64,
    /// Spot allocation strategy.
    #[serde(default = "default_spot_strategy")]
    pub spot_allocation_strategy: String,
    /// Launch a replacement when AWS signals a Spot instance is at elevated risk of reclaim.
    #[serde(default = "yes")]
    pub capacity_rebalance: bool,
    /// Root volume size in GiB (gp3, encrypted).
    #[serde(default = "default_root_gb")]
    pub root_volume_gb: i64,
    /// Target tracking: the scaling policy that owns the fleet's desired capacity between
    /// `web.min` and `web.max`. On by default (average CPU of the group at 50 %); `enabled: false`
    /// turns it off (the fleet then stays at the capacity the schedule or an operator sets).
    #[serde(default)]
    pub scaling: Scaling,
    /// Scheduled capacity (exam weeks, term starts): named actions that set the group's
    /// minimum, maximum and desired capacity on a cron recurrence, inside `web.min`..`web.max`.
    #[serde(default)]
    pub schedule: Vec<ScheduledCapacity>,
}

/// The target-tracking scaling policy of the web fleet.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Scaling {
    /// Whether the policy exists. `false` removes it.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// What is tracked: `cpu` (average CPU utilization of the group, percent) or `requests`
    /// (ALB requests per target per minute).
    #[serde(default = "default_scaling_metric")]
    pub metric: String,
    /// The value the policy keeps the metric at: percent for `cpu` (1-100; default 50),
    /// requests per target per minute for `requests` (default 600).
    #[serde(default)]
    pub target: Option<i64>,
    /// Seconds a new node takes to count in the metric (estimated instance warm-up): how long a
    /// node takes from launch to healthy behind the ALB (docs/nodes.md measures it from the
    /// user-data's steps: 420).
    #[serde(default = "default_warmup")]
    pub warmup: i64,
    /// Whether the policy may remove nodes when the metric falls below the target. `false`: it
    /// only adds them (the schedule or an operator brings the fleet back down).
    #[serde(default = "yes")]
    pub scale_in: bool,
}

impl Default for Scaling {
    fn default() -> Self {
        Scaling {
            enabled: true,
            metric: default_scaling_metric(),
            target: None,
            warmup: default_warmup(),
            scale_in: true,
        }
    }
}

impl Scaling {
    /// The target value: the given one, or the metric's default.
    pub fn target_value(&self) -> i64 {
        self.target.unwrap_or(if self.metric == "requests" {
            DEFAULT_REQUESTS_TARGET
        } else {
            DEFAULT_CPU_TARGET
        })
    }
}

/// The default target of the `cpu` metric, percent.
pub const DEFAULT_CPU_TARGET: i64 = 50;
/// The default target of the `requests` metric, requests per target per minute.
pub const DEFAULT_REQUESTS_TARGET: i64 = 600;

/// One scheduled action of the web fleet.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ScheduledCapacity {
    /// The action's name (its name in Auto Scaling): letters, digits, hyphens and underscores,
    /// unique in the schedule.
    pub name: String,
    /// When it runs: Unix cron, five fields `minute hour day-of-month month day-of-week`
    /// (e.g. `0 6 * * 1`: Mondays at 06:00), in `time_zone`.
    pub recurrence: String,
    /// IANA time zone of the recurrence (e.g. `Europe/Madrid`), daylight saving time included.
    #[serde(default = "default_time_zone")]
    pub time_zone: String,
    /// The group's minimum size from then on (at least `web.min`).
    pub min: i64,
    /// The group's maximum size from then on (at most `web.max`). Best left out: the action then
    /// leaves the maximum as it is (`web.max`), and a later change of `web.max` always shows in
    /// the plan (while a scheduled maximum equal to the old `web.max` holds, moodlestack cannot
    /// tell the two apart: it accepts every size the schedule sets).
    #[serde(default)]
    pub max: Option<i64>,
    /// The desired capacity it sets (between `min` and `max`, or `web.max`; the scaling policy
    /// moves it from there).
    pub desired: i64,
}

impl Default for Web {
    fn default() -> Self {
        Web {
            instance_types: default_web_types(),
            min: 2,
            max: default_web_max(),
            on_demand_base: 0,
            on_demand_percentage_above_base: 0,
            spot_allocation_strategy: default_spot_strategy(),
            capacity_rebalance: true,
            root_volume_gb: default_root_gb(),
            scaling: Scaling::default(),
            schedule: Vec::new(),
        }
    }
}

/// The Application Load Balancer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LoadBalancer {
    /// ACM certificate for the HTTPS listener. Without one the ALB serves plain HTTP only (then
    /// `moodle.wwwroot` must be `http://`).
    #[serde(default)]
    pub certificate_arn: Option<String>,
    /// Seconds the ALB keeps sending in-flight requests to a deregistering target (0-3600), so
    /// Spot reclaims drain cleanly.
    #[serde(default = "default_dereg")]
    pub deregistration_delay: i64,
    /// Health check path: the nodes' own endpoint by default, which stays healthy in
    /// maintenance mode (a Moodle page such as `/login/index.php` answers 503 then).
    #[serde(default = "default_health_path")]
    pub health_check_path: String,
    /// Seconds between health checks.
    #[serde(default = "default_health_interval")]
    pub health_check_interval: i64,
    /// Consecutive successes before a target is healthy.
    #[serde(default = "two")]
    pub healthy_threshold: i64,
    /// Seconds an idle connection is kept open.
    #[serde(default = "default_idle")]
    pub idle_timeout: i64,
}

/// Moodle itself.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Moodle {
    /// The site's URL, e.g. `https://moodle.example.org` (https when the ALB has a certificate).
    pub wwwroot: String,
    /// Git repository of the Moodle code.
    #[serde(default = "default_git_url")]
    pub git_url: String,
    /// The exact code: a release tag such as `v4.5.5` (its Moodle branch, 4.5, is checked against
    /// `php_version` and chooses tool_forcedcache's ref) or a full 40-character commit id. Never
    /// a branch: a branch moves, and nodes booted a week apart would run different code.
    #[serde(default = "default_git_ref")]
    pub git_ref: String,
    /// tool_forcedcache (MUC from config.php): a full 40-character commit id or a tag. Default:
    /// the commit moodlestack pins for the Moodle branch of `git_ref` (4.5: `8d2ebe2...` of
    /// `MOODLE_405_STABLE`); required for other branches and for a commit `git_ref`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forcedcache_ref: Option<String>,
    /// PHP version installed on the nodes, e.g. `8.3`.
    #[serde(default = "default_php")]
    pub php_version: String,
    /// Where EFS is mounted: Moodle's dataroot.
    #[serde(default = "default_dataroot")]
    pub dataroot: String,
    /// Where the Moodle code is checked out.
    #[serde(default = "default_dirroot")]
    pub dirroot: String,
    /// Administrator's e-mail (install and notifications).
    pub admin_email: String,
    /// Database table prefix.
    #[serde(default = "default_prefix")]
    pub prefix: String,
    /// Extra `$CFG` settings written into config.php (strings, numbers, booleans).
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, ConfigValue>")]
    pub config: BTreeMap<String, serde_json::Value>,
}

/// A `$CFG` value (schema only): a string, a number or a boolean.
pub struct ConfigValue;

impl JsonSchema for ConfigValue {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "ConfigValue".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "A `$CFG` value: a string, a number or a boolean.",
            "type": ["string", "number", "boolean"]
        })
    }
}

/// The nodes' own health check (the vhost's Alias to moodlestack's `health.php`): 200 while the
/// node serves or the site is in maintenance mode, 503 otherwise (docs/nodes.md).
pub const HEALTH_ENDPOINT: &str = "/moodlestack-health";

/// Defines the functions serde's `#[serde(default = "...")]` names, one `name: type = value;` a
/// default.
macro_rules! defaults {
    ($($name:ident: $ty:ty = $value:expr;)*) => {$(
        fn $name() -> $ty {
            $value
        }
    )*};
}

defaults! {
    yes: bool = true;
    one: i64 = 1;
    two: i64 = 2;
    default_vpc_cidr: String = "10.0.0.0/16".into();
    default_ami_parameter: String =
        "/aws/service/canonical/ubuntu/server/24.04/stable/current/amd64/hvm/ebs-gp3/ami-id".into();
    default_db_class: String = "db.t4g.medium".into();
    default_storage: i64 = 50;
    default_backup_days: i64 = 7;
    default_db_name: String = "moodle".into();
    default_db_user: String = "moodleadmin".into();
    default_performance_mode: String = "generalPurpose".into();
    default_throughput_mode: String = "elastic".into();
    default_cache_node: String = "cache.t4g.small".into();
    default_cache_version: String = "7.1".into();
    default_stable_type: String = "m6i.large".into();
    default_root_gb: i64 = 30;
    default_web_types: Vec<String> =
        vec!["m6i.large".into(), "c6i.xlarge".into(), "m5.large".into(), "t3.large".into()];
    default_scaling_metric: String = "cpu".into();
    default_warmup: i64 = 420;
    default_time_zone: String = "Etc/UTC".into();
    default_web_max: i64 = 6;
    default_spot_strategy: String = "price-capacity-optimized".into();
    default_dereg: i64 = 120;
    default_health_path: String = HEALTH_ENDPOINT.into();
    default_health_interval: i64 = 30;
    default_idle: i64 = 60;
    default_git_url: String = "https://github.com/moodle/moodle.git".into();
    default_git_ref: String = DEFAULT_MOODLE_REF.into();
    default_php: String = "8.3".into();
    default_dataroot: String = "/var/moodledata".into();
    default_dirroot: String = "/var/www/moodle".into();
    default_prefix: String = "mdl_".into();
    default_log_retention: i64 = 30;
    default_backup_schedule: String = "0 3 * * *".into();
    default_backup_retention: i64 = 35;
    default_alb_5xx_percent: f64 = 5.0;
    default_response_time: f64 = 3.0;
    default_unhealthy_hosts: i64 = 1;
    default_db_cpu: f64 = 80.0;
    default_db_free_storage: f64 = 5.0;
    default_db_memory: f64 = 256.0;
    default_db_connections: i64 = 300;
    default_redis_memory: f64 = 80.0;
    default_efs_throughput: f64 = 80.0;
    default_cron_minutes: i64 = 15;
    default_one: i64 = 1;
    default_slow_requests: i64 = 10;
}

/// The Moodle release a stack runs unless it says otherwise.
pub const DEFAULT_MOODLE_REF: &str = "v4.5.5";
/// tool_forcedcache's commit per Moodle branch: `MOODLE_405_STABLE` at 8d2ebe2 (plugin version
/// 2024093000, `supported = [405, 405]`).
pub const FORCEDCACHE_REFS: &[((u32, u32), &str)] =
    &[((4, 5), "8d2ebe20253f0968c626bd663d0a5a338da46771")];
/// PHP versions each Moodle branch supports (Moodle's PHP policy), lowest and highest.
pub const MOODLE_PHP: &[((u32, u32), &str, &str)] = &[
    ((4, 1), "7.4", "8.1"),
    ((4, 2), "8.0", "8.2"),
    ((4, 3), "8.0", "8.2"),
    ((4, 4), "8.1", "8.3"),
    ((4, 5), "8.1", "8.3"),
    ((5, 0), "8.2", "8.4"),
    ((5, 1), "8.2", "8.4"),
];

/// The oldest database version each Moodle branch installs and upgrades on (its release notes'
/// "Server requirements" at docs.moodle.org/dev/Moodle_<version>_release_notes): MySQL,
/// MariaDB, PostgreSQL, as `major.minor` (PostgreSQL: major). Aurora MySQL 3 is MySQL 8.0.
/// The one table of database requirements: validation (and so plan and apply) refuses a stack
/// whose database is older than its Moodle release needs. The PHP requirements are
/// [`MOODLE_PHP`].
pub const MOODLE_DATABASE: &[((u32, u32), &str, &str, &str)] = &[
    ((4, 1), "5.7", "10.4", "12"),
    ((4, 2), "8.0", "10.6", "13"),
    ((4, 3), "8.0", "10.6", "13"),
    ((4, 4), "8.0", "10.6", "13"),
    ((4, 5), "8.0", "10.6", "13"),
    ((5, 0), "8.4", "10.11", "14"),
    ((5, 1), "8.4", "10.11", "14"),
];

/// The oldest `database.version` (as `major.minor`) Moodle `branch` needs on `engine`, None when
/// the table does not know the branch.
pub fn moodle_database_minimum(branch: (u32, u32), engine: Engine) -> Option<&'static str> {
    let (_, mysql, mariadb, postgres) = MOODLE_DATABASE.iter().find(|(b, ..)| *b == branch)?;
    Some(match engine {
        Engine::Mysql | Engine::AuroraMysql => mysql,
        Engine::Mariadb => mariadb,
        Engine::Postgres => postgres,
    })
}

/// A full 40-character hexadecimal commit id.
pub fn is_commit_id(r: &str) -> bool {
    r.len() == 40 && r.chars().all(|c| c.is_ascii_hexdigit())
}

/// The Moodle branch of a release tag: `(4, 5)` of `v4.5.5`, `v4.5`, `v4.5.5-rc1`.
pub fn moodle_branch_of_tag(r: &str) -> Option<(u32, u32)> {
    let rest = r.strip_prefix('v')?;
    let core = rest.split(['-', '+']).next()?;
    let mut parts = core.split('.');
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    match parts.next() {
        None => {}
        Some(p) if p.parse::<u32>().is_ok() => {}
        Some(_) => return None,
    }
    parts.next().is_none().then_some((major, minor))
}

impl Moodle {
    /// The Moodle branch of `git_ref` when it is a release tag.
    pub fn branch(&self) -> Option<(u32, u32)> {
        moodle_branch_of_tag(&self.git_ref)
    }

    /// tool_forcedcache's ref: the stack's, or the one pinned for the Moodle branch.
    pub fn forcedcache_ref(&self) -> Result<String, String> {
        if let Some(r) = &self.forcedcache_ref {
            return Ok(r.clone());
        }
        let branch = self.branch();
        FORCEDCACHE_REFS
            .iter()
            .find(|(b, _)| Some(*b) == branch)
            .map(|(_, r)| r.to_string())
            .ok_or_else(|| {
                format!(
                    "moodle.forcedcache_ref: moodlestack pins tool_forcedcache only for Moodle 4.5 \
                     release tags; set the commit of the plugin's branch for `{}`",
                    self.git_ref
                )
            })
    }
}
impl Engine {
    /// The RDS engine name.
    pub fn rds_name(self) -> &'static str {
        match self {
            Engine::Mysql => "mysql",
            Engine::AuroraMysql => "aurora-mysql",
            Engine::Mariadb => "mariadb",
            Engine::Postgres => "postgres",
        }
    }
    /// Moodle's `$CFG->dbtype`.
    pub fn moodle_dbtype(self) -> &'static str {
        match self {
            Engine::Mysql => "mysqli",
            Engine::AuroraMysql => "auroramysql",
            Engine::Mariadb => "mariadb",
            Engine::Postgres => "pgsql",
        }
    }
    pub fn default_version(self) -> &'static str {
        match self {
            Engine::Mysql => "8.4",
            // AWS's current minor of Aurora MySQL 3 at creation; later minors satisfy it.
            Engine::AuroraMysql => "8.0",
            Engine::Mariadb => "10.11",
            Engine::Postgres => "16",
        }
    }
    pub fn port(self) -> i64 {
        match self {
            Engine::Postgres => 5432,
            _ => 3306,
        }
    }
    pub fn is_mysql_family(self) -> bool {
        !matches!(self, Engine::Postgres)
    }
    /// True for Aurora (a cluster with instances instead of one instance).
    pub fn is_aurora(self) -> bool {
        matches!(self, Engine::AuroraMysql)
    }
}

impl Database {
    /// The engine version, explicit or the engine's default.
    pub fn engine_version(&self) -> String {
        self.version
            .clone()
            .unwrap_or_else(|| self.engine.default_version().to_string())
    }

    /// The parameter group family: `mysql8.0`, `aurora-mysql8.0`, `mariadb10.11`, `postgres16`.
    pub fn parameter_family(&self) -> String {
        let v = self.engine_version();
        let mut parts = v.split('.');
        let major = parts.next().unwrap_or_default();
        let minor = parts.next().unwrap_or_default();
        match self.engine {
            Engine::Mysql => format!("mysql{major}.{minor}"),
            Engine::AuroraMysql => format!("aurora-mysql{major}.{minor}"),
            Engine::Mariadb => format!("mariadb{major}.{minor}"),
            Engine::Postgres => format!("postgres{major}"),
        }
    }

    /// The Moodle-tuned defaults of the engine family, with the stack's `parameters` merged over
    /// them.
    pub fn effective_parameters(&self) -> BTreeMap<String, String> {
        let defaults: &[(&str, &str)] = if self.engine.is_mysql_family() {
            &[
                ("character_set_server", "utf8mb4"),
                ("collation_server", "utf8mb4_unicode_ci"),
                ("max_allowed_packet", "268435456"),
                ("innodb_flush_log_at_trx_commit", "2"),
                ("innodb_io_capacity", "1000"),
                ("innodb_io_capacity_max", "2000"),
                ("innodb_read_io_threads", "4"),
                ("innodb_write_io_threads", "4"),
            ]
        } else {
            // PostgreSQL: Moodle's recommendations for a dedicated server. Memory-sized settings
            // use RDS formulas so they follow the instance class.
            &[
                ("client_encoding", "UTF8"),
                ("synchronous_commit", "off"),
                ("random_page_cost", "1.1"),
                ("effective_io_concurrency", "200"),
                ("work_mem", "16384"),
                ("max_parallel_workers_per_gather", "2"),
            ]
        };
        let mut params: BTreeMap<String, String> = defaults
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        params.extend(self.parameters.clone());
        params
    }
}

impl Stack {
    /// The availability zones: explicit, or the region's `a` and `b` zones.
    pub fn zones(&self) -> Vec<String> {
        if self.network.zones.is_empty() {
            vec![format!("{}a", self.region), format!("{}b", self.region)]
        } else {
            self.network.zones.clone()
        }
    }

    /// Public subnet CIDRs, one per zone: explicit, or the `/24`s `x.y.0.0`, `x.y.1.0`, ... of a
    /// `/16` VPC (generally: the first subnets of size VPC prefix + 8).
    pub fn public_subnet_cidrs(&self) -> Vec<String> {
        if !self.network.public_subnets.is_empty() {
            return self.network.public_subnets.clone();
        }
        (0..self.zones().len())
            .map(|i| carve(&self.network.cidr, 8, i as u32))
            .collect()
    }

    /// Private subnet CIDRs, one per zone: explicit, or the subnets of size VPC prefix + 4 after
    /// the first (`x.y.16.0/20`, `x.y.32.0/20`, ... of a `/16`).
    pub fn private_subnet_cidrs(&self) -> Vec<String> {
        if !self.network.private_subnets.is_empty() {
            return self.network.private_subnets.clone();
        }
        (0..self.zones().len())
            .map(|i| carve(&self.network.cidr, 4, i as u32 + 1))
            .collect()
    }

    /// True when the ALB terminates HTTPS (a certificate is given).
    pub fn https(&self) -> bool {
        self.load_balancer.certificate_arn.is_some()
    }
}

/// The `index`-th subnet of `vpc_cidr` whose prefix is `extra_bits` longer. Returns the input
/// unchanged when it is not an IPv4 CIDR (validation reports that).
pub fn carve(vpc_cidr: &str, extra_bits: u32, index: u32) -> String {
    let Some((addr, len)) = vpc_cidr.split_once('/') else {
        return vpc_cidr.to_string();
    };
    let (Ok(addr), Ok(len)) = (addr.parse::<std::net::Ipv4Addr>(), len.parse::<u32>()) else {
        return vpc_cidr.to_string();
    };
    if len > 32 {
        return vpc_cidr.to_string();
    }
    let new_len = (len + extra_bits).min(32);
    let base = u32::from(addr) & if len == 0 { 0 } else { u32::MAX << (32 - len) };
    let step = 1u64 << (32 - new_len);
    let net = (base as u64 + step * index as u64) as u32;
    format!("{}/{}", std::net::Ipv4Addr::from(net), new_len)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn carve_splits_a_slash_16() {
        assert_eq!(carve("10.20.0.0/16", 8, 1), "10.20.1.0/24");
        assert_eq!(carve("10.20.0.0/16", 4, 1), "10.20.16.0/20");
        assert_eq!(carve("10.20.0.0/16", 4, 2), "10.20.32.0/20");
    }

    #[test]
    fn parameter_family_per_engine() {
        let mut db: Database = serde_json::from_str("{}").unwrap();
        assert_eq!(db.parameter_family(), "mysql8.4");
        db.engine = Engine::Postgres;
        assert_eq!(db.parameter_family(), "postgres16");
        db.engine = Engine::AuroraMysql;
        assert_eq!(db.parameter_family(), "aurora-mysql8.0");
        db.engine = Engine::Mariadb;
        db.version = Some("11.4.3".into());
        assert_eq!(db.parameter_family(), "mariadb11.4");
    }
}

/// What the stack ships and watches: every node's Apache, PHP-FPM, cron and boot logs go to the
/// log groups `/moodlestack/<stack>/<source>` (encrypted with the stack's KMS key, kept
/// `log_retention_days`); alarms on the load balancer, the fleet, the database, Redis, EFS, cron
/// and PHP-FPM notify the topic `<stack>-alerts`, which e-mails `alert_emails`; the dashboard
/// `moodlestack-<stack>` shows them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Observability {
    /// Days CloudWatch Logs keeps the nodes' logs (default 30: a month of history to compare a
    /// problem with, at the cost of a month of storage). One of CloudWatch Logs' values: 1, 3, 5,
    /// 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288,
    /// 3653.
    #[serde(default = "default_log_retention")]
    pub log_retention_days: i64,
    /// E-mail addresses the alarms notify (each is subscribed to the stack's topic and must
    /// confirm the subscription from the e-mail AWS sends). Empty: the alarms still change state
    /// and show on the dashboard, but nobody is told.
    #[serde(default)]
    pub alert_emails: Vec<String>,
    /// When each alarm fires. Every threshold has a default, explained with it.
    #[serde(default)]
    pub thresholds: Thresholds,
}

impl Default for Observability {
    fn default() -> Self {
        Observability {
            log_retention_days: default_log_retention(),
            alert_emails: Vec::new(),
            thresholds: Thresholds::default(),
        }
    }
}

/// The alarms' thresholds. Each alarm fires when its condition holds for the periods named
/// here (a brief spike, a Spot replacement or a deploy does not page anyone).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Thresholds {
    /// `<stack>-alb-5xx`: percent of the load balancer's requests answered with a 5xx (by the
    /// nodes or the load balancer itself) over 5 minutes, 2 periods in a row (default 5: a
    /// healthy Moodle answers well under 1 %; 5 % is users seeing errors, not one failed
    /// request).
    #[serde(default = "default_alb_5xx_percent")]
    pub alb_5xx_percent: f64,
    /// `<stack>-response-time`: the 95th percentile of the nodes' response time, in seconds,
    /// over 5 minutes, 3 periods in a row (default 3: Moodle pages normally answer in well under
    /// a second; 3 s at p95 is a slow site; reports and backups run on the stable node, not
    /// here).
    #[serde(default = "default_response_time")]
    pub response_time_seconds: f64,
    /// `<stack>-unhealthy-hosts`: nodes failing the load balancer's health check, at least this
    /// many for 5 minutes in a row (default 1: a node that fails for 5 minutes is broken; a
    /// booting or draining node is not counted for that long).
    #[serde(default = "default_unhealthy_hosts")]
    pub unhealthy_hosts: i64,
    /// `<stack>-db-cpu`: the database's CPU percent, 15 minutes in a row (default 80: beyond it
    /// queries queue; short peaks during cron or backups are normal).
    #[serde(default = "default_db_cpu")]
    pub db_cpu_percent: f64,
    /// `<stack>-db-free-storage`: the database's free storage in GiB, below it for 10 minutes
    /// (default 5: storage autoscaling grows the volume well before this unless
    /// `database.max_storage_gb` is reached; Aurora has no such alarm, its storage grows by
    /// itself).
    #[serde(default = "default_db_free_storage")]
    pub db_free_storage_gb: f64,
    /// `<stack>-db-memory`: the database's freeable memory in MiB, below it for 15 minutes
    /// (default 256: less than that and the engine swaps or the buffer pool is starved).
    #[serde(default = "default_db_memory")]
    pub db_freeable_memory_mb: f64,
    /// `<stack>-db-connections`: open database connections, above it for 10 minutes (default
    /// 300: each PHP-FPM worker holds one; 300 is above what the default fleet uses and below
    /// the `max_connections` RDS gives a 4 GiB instance, about 340 for MySQL).
    #[serde(default = "default_db_connections")]
    pub db_connections: i64,
    /// `<stack>-redis-memory`: percent of Redis's memory in use, 15 minutes in a row (default
    /// 80: beyond it Redis evicts keys, and sessions live there).
    #[serde(default = "default_redis_memory")]
    pub redis_memory_percent: f64,
    /// `<stack>-redis-evictions`: keys Redis evicted in 5 minutes, above it (default 0: any
    /// eviction may be a user's session, which logs them out).
    #[serde(default)]
    pub redis_evictions: i64,
    /// `<stack>-efs-throughput`: percent of the file system's permitted throughput in use,
    /// 15 minutes in a row (default 80: at 100 % every file request of every node waits).
    #[serde(default = "default_efs_throughput")]
    pub efs_throughput_percent: f64,
    /// `<stack>-cron-heartbeat`: minutes without a successful cron run on the stable node
    /// (default 15: cron runs every minute; 15 minutes without one is cron stopped, not a
    /// long task). Missing data counts as breaching: a node that is gone sends nothing.
    #[serde(default = "default_cron_minutes")]
    pub cron_heartbeat_minutes: i64,
    /// `<stack>-fpm-max-children`: PHP-FPM's "server reached pm.max_children" warnings in 5
    /// minutes, at least this many (default 1: each one is requests queueing on a node).
    #[serde(default = "default_one")]
    pub fpm_max_children_warnings: i64,
    /// `<stack>-slow-requests`: entries of PHP-FPM's slow log in 5 minutes, at least this many
    /// (default 10: an occasional slow report is normal; ten is a pattern worth a look).
    #[serde(default = "default_slow_requests")]
    pub slow_requests: i64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            alb_5xx_percent: default_alb_5xx_percent(),
            response_time_seconds: default_response_time(),
            unhealthy_hosts: default_unhealthy_hosts(),
            db_cpu_percent: default_db_cpu(),
            db_free_storage_gb: default_db_free_storage(),
            db_freeable_memory_mb: default_db_memory(),
            db_connections: default_db_connections(),
            redis_memory_percent: default_redis_memory(),
            redis_evictions: 0,
            efs_throughput_percent: default_efs_throughput(),
            cron_heartbeat_minutes: default_cron_minutes(),
            fpm_max_children_warnings: default_one(),
            slow_requests: default_slow_requests(),
        }
    }
}
