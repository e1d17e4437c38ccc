//! The resource kinds moodlestack manages and, per kind, the fields it manages: how each is
//! compared, and whether a change updates in place or forces replacement.
//!
//! This table is the contract between the graph builder (which writes these field names) and the
//! cloud service modules (which read them on create/update and report them on observe). Field
//! conventions shared by every kind:
//! - `tags` (Map, compared on the keys the stack sets): every tag, including `moodlestack:stack`,
//!   `moodlestack:id` and `Name`; applied on the create call itself.
//! - ids of other resources are strings (`vpc_id`, `subnet_ids`, ...); lists of ids are sets.
//! - durations are integer seconds, sizes integer GiB, booleans are booleans.

use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Every kind of resource moodlestack creates.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Vpc,
    InternetGateway,
    Subnet,
    ElasticIp,
    NatGateway,
    RouteTable,
    SecurityGroup,
    IamRole,
    InstanceProfile,
    Secret,
    DbSubnetGroup,
    DbParameterGroup,
    DbClusterParameterGroup,
    DbCluster,
    DbInstance,
    EfsFileSystem,
    EfsMountTarget,
    CacheSubnetGroup,
    CacheReplicationGroup,
    LaunchTemplate,
    Instance,
    LoadBalancer,
    TargetGroup,
    Listener,
    AutoScalingGroup,
}

impl Kind {
    pub const ALL: [Kind; 25] = [
        Kind::Vpc,
        Kind::InternetGateway,
        Kind::Subnet,
        Kind::ElasticIp,
        Kind::NatGateway,
        Kind::RouteTable,
        Kind::SecurityGroup,
        Kind::IamRole,
        Kind::InstanceProfile,
        Kind::Secret,
        Kind::DbSubnetGroup,
        Kind::DbParameterGroup,
        Kind::DbClusterParameterGroup,
        Kind::DbCluster,
        Kind::DbInstance,
        Kind::EfsFileSystem,
        Kind::EfsMountTarget,
        Kind::CacheSubnetGroup,
        Kind::CacheReplicationGroup,
        Kind::LaunchTemplate,
        Kind::Instance,
        Kind::LoadBalancer,
        Kind::TargetGroup,
        Kind::Listener,
        Kind::AutoScalingGroup,
    ];

    /// The snake_case name used in plans and JSON (`db_instance`).
    pub fn name(self) -> &'static str {
        spec(self).name
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// What a change to a field does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnChange {
    /// The service updates it in place.
    InPlace,
    /// The resource must be deleted and created again.
    Replace,
    /// Set at creation only and never compared afterwards (the ASG's desired capacity: autoscaling
    /// owns it).
    CreateOnly,
}

/// How an observed value is compared with the desired one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Compare {
    /// Equal values.
    Exact,
    /// Lists compared without regard to order (ids, rules).
    Set,
    /// Maps compared only on the keys the stack sets: AWS-side defaults and tags that others add
    /// never show up as changes. A key the stack sets that is missing or different is a change.
    Subset,
}

/// One managed field of a kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FieldSpec {
    pub name: &'static str,
    pub on_change: OnChange,
    pub compare: Compare,
}

/// Everything the generic diff, plan and executor know about a kind.
#[derive(Clone, Copy, Debug)]
pub struct KindSpec {
    pub kind: Kind,
    /// snake_case name.
    pub name: &'static str,
    /// The AWS resource type, for messages (`AWS::RDS::DBInstance`).
    pub aws_type: &'static str,
    pub fields: &'static [FieldSpec],
    /// Holds data that a delete or replace would lose: guarded by `--allow-data-loss`.
    pub stateful: bool,
    /// Creation tier: a kind only depends on kinds of a lower tier. Deletes of resources the stack
    /// no longer declares run in reverse tier order.
    pub tier: u8,
    /// Resources AWS cannot tag are matched to desired ones by these fields (resolved values);
    /// empty for kinds found by the `moodlestack:id` tag.
    pub identity: &'static [&'static str],
    /// Attributes that an in-place update changes (refs to them are unknown while an update of
    /// this resource is planned; e.g. a launch template's `version`).
    pub attrs_changed_by_update: &'static [&'static str],
    /// How long the executor waits for a created/updated resource to become usable on AWS.
    pub ready_timeout: Duration,
}

impl KindSpec {
    pub fn field(&self, name: &str) -> Option<&FieldSpec> {
        self.fields.iter().find(|f| f.name == name)
    }
}

const fn f(name: &'static str) -> FieldSpec {
    FieldSpec {
        name,
        on_change: OnChange::InPlace,
        compare: Compare::Exact,
    }
}
const fn set(name: &'static str) -> FieldSpec {
    FieldSpec {
        name,
        on_change: OnChange::InPlace,
        compare: Compare::Set,
    }
}
const fn repl(name: &'static str) -> FieldSpec {
    FieldSpec {
        name,
        on_change: OnChange::Replace,
        compare: Compare::Exact,
    }
}
const fn subset(name: &'static str) -> FieldSpec {
    FieldSpec {
        name,
        on_change: OnChange::InPlace,
        compare: Compare::Subset,
    }
}
const TAGS: FieldSpec = subset("tags");
const fn mins(m: u64) -> Duration {
    Duration::from_secs(m * 60)
}

macro_rules! kinds {
    ($($kind:ident => $spec:expr;)*) => {
        static SPECS: &[KindSpec] = &[$($spec,)*];
        /// The spec of `kind`.
        pub fn spec(kind: Kind) -> &'static KindSpec {
            match kind { $(Kind::$kind => &SPECS[Kind::$kind as usize],)* }
        }
    };
}

const DEFAULT: KindSpec = KindSpec {
    kind: Kind::Vpc,
    name: "",
    aws_type: "",
    fields: &[],
    stateful: false,
    tier: 0,
    identity: &[],
    attrs_changed_by_update: &[],
    ready_timeout: mins(5),
};

kinds! {
    // attrs: id
    Vpc => KindSpec { kind: Kind::Vpc, name: "vpc", aws_type: "AWS::EC2::VPC", tier: 0,
        fields: &[repl("cidr_block"), f("enable_dns_hostnames"), f("enable_dns_support"), TAGS],
        ..DEFAULT };
    // attrs: id
    InternetGateway => KindSpec { kind: Kind::InternetGateway, name: "internet_gateway",
        aws_type: "AWS::EC2::InternetGateway", tier: 1,
        fields: &[repl("vpc_id"), TAGS], ..DEFAULT };
    // attrs: id
    Subnet => KindSpec { kind: Kind::Subnet, name: "subnet", aws_type: "AWS::EC2::Subnet", tier: 1,
        fields: &[repl("vpc_id"), repl("cidr_block"), repl("availability_zone"),
                  f("map_public_ip_on_launch"), TAGS], ..DEFAULT };
    // attrs: id (allocation id), public_ip
    ElasticIp => KindSpec { kind: Kind::ElasticIp, name: "elastic_ip", aws_type: "AWS::EC2::EIP",
        tier: 1, fields: &[TAGS], ..DEFAULT };
    // attrs: id. Waits for `available`.
    NatGateway => KindSpec { kind: Kind::NatGateway, name: "nat_gateway",
        aws_type: "AWS::EC2::NatGateway", tier: 2,
        fields: &[repl("subnet_id"), repl("allocation_id"), TAGS], ready_timeout: mins(10),
        ..DEFAULT };
    // routes: list of maps {destination_cidr, gateway_id | nat_gateway_id}; the local route is
    // not listed. subnet_ids: the associated subnets. attrs: id
    RouteTable => KindSpec { kind: Kind::RouteTable, name: "route_table",
        aws_type: "AWS::EC2::RouteTable", tier: 3,
        fields: &[repl("vpc_id"), set("routes"), set("subnet_ids"), TAGS], ..DEFAULT };
    // ingress: list of maps {protocol ("tcp"), from_port, to_port, description, and one of
    // cidr | source_group_id}. Egress stays the AWS default (all). attrs: id
    SecurityGroup => KindSpec { kind: Kind::SecurityGroup, name: "security_group",
        aws_type: "AWS::EC2::SecurityGroup", tier: 1,
        fields: &[repl("vpc_id"), repl("group_name"), repl("description"), set("ingress"), TAGS],
        ..DEFAULT };
    // assume_role_policy and the values of inline_policies: compact JSON, keys sorted (serde_json
    // re-serialization of the parsed document). attrs: id (role name), arn
    IamRole => KindSpec { kind: Kind::IamRole, name: "iam_role", aws_type: "AWS::IAM::Role",
        tier: 5,
        fields: &[repl("role_name"), repl("path"), f("assume_role_policy"),
                  set("managed_policy_arns"), f("inline_policies"), TAGS], ..DEFAULT };
    // attrs: id (name), arn
    InstanceProfile => KindSpec { kind: Kind::InstanceProfile, name: "instance_profile",
        aws_type: "AWS::IAM::InstanceProfile", tier: 6,
        fields: &[repl("name"), repl("path"), repl("role_name"), TAGS], ..DEFAULT };
    // A Secrets Manager secret whose value moodlestack generates at creation (random, 32
    // characters, no punctuation) and never prints. Deleted without a recovery window.
    // attrs: id (arn), arn
    Secret => KindSpec { kind: Kind::Secret, name: "secret",
        aws_type: "AWS::SecretsManager::Secret", tier: 0,
        fields: &[repl("name"), f("description"), TAGS], ..DEFAULT };
    // attrs: id (name)
    DbSubnetGroup => KindSpec { kind: Kind::DbSubnetGroup, name: "db_subnet_group",
        aws_type: "AWS::RDS::DBSubnetGroup", tier: 2,
        fields: &[repl("name"), f("description"), set("subnet_ids"), TAGS], ..DEFAULT };
    // parameters: map name -> value (strings); applied with the `pending-reboot` method for static
    // parameters and `immediate` for dynamic ones. attrs: id (name)
    DbParameterGroup => KindSpec { kind: Kind::DbParameterGroup, name: "db_parameter_group",
        aws_type: "AWS::RDS::DBParameterGroup", tier: 0,
        fields: &[repl("name"), repl("family"), repl("description"), subset("parameters"), TAGS],
        ..DEFAULT };
    DbClusterParameterGroup => KindSpec { kind: Kind::DbClusterParameterGroup,
        name: "db_cluster_parameter_group", aws_type: "AWS::RDS::DBClusterParameterGroup",
        tier: 0,
        fields: &[repl("name"), repl("family"), repl("description"), subset("parameters"), TAGS],
        ..DEFAULT };
    // Aurora. Always created with ManageMasterUserPassword (the password lives in Secrets
    // Manager). attrs: id (identifier), arn, endpoint, reader_endpoint, port, secret_arn
    DbCluster => KindSpec { kind: Kind::DbCluster, name: "db_cluster",
        aws_type: "AWS::RDS::DBCluster", tier: 3, stateful: true,
        fields: &[repl("identifier"), repl("engine"), f("engine_version"),
                  repl("db_subnet_group_name"), f("cluster_parameter_group_name"),
                  set("vpc_security_group_ids"), repl("master_username"),
                  repl("database_name"), repl("port"), f("backup_retention_period"),
                  f("deletion_protection"), repl("storage_encrypted"), TAGS],
        ready_timeout: mins(40), ..DEFAULT };
    // A standalone instance (MySQL, MariaDB, PostgreSQL) or an Aurora cluster member (then
    // cluster_identifier is set and the storage, backup and credential fields are absent).
    // Standalone instances are created with ManageMasterUserPassword.
    // attrs: id (identifier), arn, endpoint, port, secret_arn (standalone only)
    DbInstance => KindSpec { kind: Kind::DbInstance, name: "db_instance",
        aws_type: "AWS::RDS::DBInstance", tier: 4, stateful: true,
        fields: &[repl("identifier"), repl("engine"), f("engine_version"), f("instance_class"),
                  repl("cluster_identifier"), f("allocated_storage"), f("max_allocated_storage"),
                  f("storage_type"), repl("storage_encrypted"), f("multi_az"),
                  f("backup_retention_period"), f("deletion_protection"),
                  repl("db_subnet_group_name"), f("parameter_group_name"),
                  set("vpc_security_group_ids"), repl("master_username"), repl("db_name"),
                  repl("port"), f("publicly_accessible"), TAGS],
        ready_timeout: mins(40), ..DEFAULT };
    // attrs: id, arn
    EfsFileSystem => KindSpec { kind: Kind::EfsFileSystem, name: "efs_file_system",
        aws_type: "AWS::EFS::FileSystem", tier: 0, stateful: true,
        fields: &[repl("creation_token"), repl("performance_mode"), f("throughput_mode"),
                  repl("encrypted"), TAGS], ..DEFAULT };
    // Mount targets cannot be tagged: matched by (file_system_id, subnet_id). attrs: id, ip_address
    EfsMountTarget => KindSpec { kind: Kind::EfsMountTarget, name: "efs_mount_target",
        aws_type: "AWS::EFS::MountTarget", tier: 3,
        fields: &[repl("file_system_id"), repl("subnet_id"), set("security_group_ids")],
        identity: &["file_system_id", "subnet_id"], ..DEFAULT };
    // attrs: id (name)
    CacheSubnetGroup => KindSpec { kind: Kind::CacheSubnetGroup, name: "cache_subnet_group",
        aws_type: "AWS::ElastiCache::SubnetGroup", tier: 2,
        fields: &[repl("name"), f("description"), set("subnet_ids"), TAGS], ..DEFAULT };
    // auth_token_secret_arn: when set, the AUTH token is read from that secret at creation and
    // sent as AuthToken (never shown). num_cache_clusters = 1 primary + replicas.
    // attrs: id, arn, primary_endpoint, reader_endpoint, port
    CacheReplicationGroup => KindSpec { kind: Kind::CacheReplicationGroup,
        name: "cache_replication_group", aws_type: "AWS::ElastiCache::ReplicationGroup",
        tier: 3, stateful: true,
        fields: &[repl("replication_group_id"), f("description"), repl("engine"),
                  f("engine_version"), f("node_type"), f("num_cache_clusters"),
                  f("automatic_failover"), f("multi_az"), repl("transit_encryption"),
                  repl("at_rest_encryption"), repl("auth_token_secret_arn"),
                  repl("cache_subnet_group_name"), set("security_group_ids"), repl("port"),
                  TAGS],
        ready_timeout: mins(30), ..DEFAULT };
    // An update writes a new version with the full data (never SourceVersion), makes it the
    // default, and tags the template with `moodlestack:content-hash`. user_data is the plain text
    // (the module base64-encodes it). http_tokens is "required" (IMDSv2).
    // attrs: id, name, version (latest version number, as a string)
    LaunchTemplate => KindSpec { kind: Kind::LaunchTemplate, name: "launch_template",
        aws_type: "AWS::EC2::LaunchTemplate", tier: 7,
        fields: &[repl("name"), f("image_id"), f("instance_type"), f("instance_profile_arn"),
                  set("security_group_ids"), f("user_data"), f("http_tokens"),
                  f("root_device_name"), f("root_volume_size"), f("root_volume_type"),
                  f("root_volume_encrypted"), TAGS],
        attrs_changed_by_update: &["version"], ..DEFAULT };
    // The stable On-Demand instance, launched from its launch template. Profile and metadata
    // options are also passed on RunInstances. attrs: id, private_ip
    Instance => KindSpec { kind: Kind::Instance, name: "instance",
        aws_type: "AWS::EC2::Instance", tier: 8,
        fields: &[repl("launch_template_id"), repl("launch_template_version"),
                  repl("subnet_id"), repl("instance_profile_arn"), repl("http_tokens"), TAGS],
        ready_timeout: mins(10), ..DEFAULT };
    // idle_timeout: the `idle_timeout.timeout_seconds` attribute. attrs: id (arn), arn, dns_name,
    // zone_id. Waits for `active`.
    LoadBalancer => KindSpec { kind: Kind::LoadBalancer, name: "load_balancer",
        aws_type: "AWS::ElasticLoadBalancingV2::LoadBalancer", tier: 2,
        fields: &[repl("name"), repl("scheme"), set("subnet_ids"), set("security_group_ids"),
                  f("idle_timeout"), TAGS], ready_timeout: mins(10), ..DEFAULT };
    // deregistration_delay: the `deregistration_delay.timeout_seconds` attribute.
    // attrs: id (arn), arn
    TargetGroup => KindSpec { kind: Kind::TargetGroup, name: "target_group",
        aws_type: "AWS::ElasticLoadBalancingV2::TargetGroup", tier: 1,
        fields: &[repl("name"), repl("vpc_id"), repl("protocol"), repl("port"),
                  repl("target_type"), f("health_check_path"), f("health_check_interval"),
                  f("healthy_threshold"), f("unhealthy_threshold"), f("health_check_matcher"),
                  f("deregistration_delay"), TAGS], ..DEFAULT };
    // default_action: {type: "redirect", protocol, port, status_code} or
    // {type: "forward", target_group_arn}. Matched by (load_balancer_arn, port).
    // attrs: id (arn), arn
    Listener => KindSpec { kind: Kind::Listener, name: "listener",
        aws_type: "AWS::ElasticLoadBalancingV2::Listener", tier: 3,
        fields: &[repl("load_balancer_arn"), repl("port"), f("protocol"), f("certificate_arn"),
                  f("ssl_policy"), f("default_action")],
        identity: &["load_balancer_arn", "port"], ..DEFAULT };
    // Mixed instances policy: instance_types (ordered overrides), on_demand_base_capacity,
    // on_demand_percentage_above_base, spot_allocation_strategy; always sent whole. A change of
    // launch_template_version starts an instance refresh (minimum healthy 90 %).
    // desired_capacity is set at creation only. attrs: id (name), arn
    AutoScalingGroup => KindSpec { kind: Kind::AutoScalingGroup, name: "autoscaling_group",
        aws_type: "AWS::AutoScaling::AutoScalingGroup", tier: 8,
        fields: &[repl("name"), f("launch_template_id"), f("launch_template_version"),
                  f("instance_types"), f("min_size"), f("max_size"),
                  FieldSpec { name: "desired_capacity", on_change: OnChange::CreateOnly,
                              compare: Compare::Exact },
                  f("on_demand_base_capacity"), f("on_demand_percentage_above_base"),
                  f("spot_allocation_strategy"), f("capacity_rebalance"), set("subnet_ids"),
                  set("target_group_arns"), f("health_check_type"),
                  f("health_check_grace_period"), TAGS],
        ready_timeout: mins(15), ..DEFAULT };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_indexed_by_kind() {
        for k in Kind::ALL {
            assert_eq!(spec(k).kind, k, "SPECS out of order at {k:?}");
            assert!(!spec(k).name.is_empty());
        }
    }

    #[test]
    fn identity_fields_are_fields() {
        for k in Kind::ALL {
            for id in spec(k).identity {
                assert!(spec(k).field(id).is_some(), "{k:?}.{id}");
            }
        }
    }
}
