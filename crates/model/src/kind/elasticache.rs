//! ElastiCache kinds: the subnet group and the Redis replication group.

use super::{f, mins, repl, set, spec_of, version, KindSpec, TAGS};
use crate::Kind;

/// The ElastiCache kinds, as rows of the kind table in `mod.rs`.
macro_rules! elasticache_kinds {
    ([$($acc:tt)*] $($rest:ident)*) => { table! { [$($acc)*
        /// An ElastiCache subnet group.
        CacheSubnetGroup => elasticache::SUBNET_GROUP,
        /// An ElastiCache (Redis) replication group.
        CacheReplicationGroup => elasticache::REPLICATION_GROUP,
    ] $($rest)* } };
}

pub(super) const SUBNET_GROUP: KindSpec = super::rds::subnet_group(
    Kind::CacheSubnetGroup,
    "cache_subnet_group",
    "AWS::ElastiCache::SubnetGroup",
);

/// auth_token_secret_arn: when set, the AUTH token is read from that secret at creation and sent
/// as AuthToken (never shown). num_cache_clusters = 1 primary + replicas.
pub(super) const REPLICATION_GROUP: KindSpec = KindSpec {
    tier: 3,
    stateful: true,
    fields: &[
        repl("replication_group_id"),
        f("description"),
        repl("engine"),
        version("engine_version"),
        f("node_type"),
        f("num_cache_clusters"),
        f("automatic_failover"),
        f("multi_az"),
        repl("transit_encryption"),
        repl("at_rest_encryption"),
        repl("auth_token_secret_arn"),
        repl("cache_subnet_group_name"),
        set("security_group_ids"),
        repl("port"),
        TAGS,
    ],
    name_field: Some("replication_group_id"),
    attrs: &["id", "arn", "primary_endpoint", "reader_endpoint", "port"],
    ready_timeout: mins(30),
    ..spec_of(
        Kind::CacheReplicationGroup,
        "cache_replication_group",
        "AWS::ElastiCache::ReplicationGroup",
    )
};
