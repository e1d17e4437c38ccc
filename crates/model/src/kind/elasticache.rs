//! ElastiCache kinds: the subnet group and the Redis replication group.

use super::{f, mins, repl, set, version, KindSpec, DEFAULT, TAGS};
use crate::cost::{quantity, PriceQuery, Usage, UsageCx, HOURS_PER_MONTH};

// The ElastiCache kinds, as rows of the kind table in `mod.rs`.
kind_list! { $ elasticache_kinds [
    /// An ElastiCache subnet group (the descriptor of RDS's).
    CacheSubnetGroup("cache_subnet_group", "AWS::ElastiCache::SubnetGroup") => rds::SUBNET_GROUP,
    /// An ElastiCache (Redis) replication group.
    CacheReplicationGroup("cache_replication_group", "AWS::ElastiCache::ReplicationGroup")
        => elasticache::REPLICATION_GROUP,
] }

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
    usage: replication_group_usage,
    ..DEFAULT
};

/// Every node of the group (the primary and its replicas), by the hour.
fn replication_group_usage(cx: &UsageCx<'_>) -> Vec<Usage> {
    let nodes = cx.int("num_cache_clusters").unwrap_or(1);
    let node_type = cx.str("node_type").unwrap_or_default();
    let engine = match cx.str("engine").unwrap_or("redis") {
        "valkey" => "Valkey",
        "memcached" => "Memcached",
        _ => "Redis",
    };
    vec![Usage::hours(
        "nodes",
        format!("{nodes} x {node_type} {engine} node"),
        quantity(nodes) * HOURS_PER_MONTH,
        PriceQuery::list(
            "AmazonElastiCache",
            cx.region,
            &[("instanceType", node_type), ("cacheEngine", engine)],
        )
        .unit("Hrs"),
    )]
}
