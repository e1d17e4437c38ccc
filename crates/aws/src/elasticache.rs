//! ElastiCache: the cache subnet group and the Redis replication group (cluster mode disabled:
//! one primary plus replicas), one [`KindOps`] each.
//!
//! Finding the stack's resources: DescribeCacheSubnetGroups and DescribeReplicationGroups have no
//! tag filter, and both kinds are keyed by a deterministic name. Each is listed with one
//! paginated describe (or one describe of the name asked for); only the names [`Names`] asks for
//! (`<stack>-...`, or one a desired resource declares) are candidates, and their tags are read
//! with ListTagsForResource on the ARN (ElastiCache has no batch tag read), all in flight at once.
//!
//! The replication group itself does not report its engine version, subnet group or security
//! groups: those are read from its member cache clusters, listed with one paginated
//! DescribeCacheClusters for the whole stack, or one describe of its first member for one group.
//!
//! The AUTH token is read from the Secrets Manager secret named by `auth_token_secret_arn` at
//! creation, sent as `AuthToken` and never logged or returned. AWS does not report which secret a
//! token came from, so the ARN is also written as the tag `moodlestack:auth-secret-arn` on the
//! create call and read back from there.

use crate::fields::{
    again_while, all_at_once, answer, attrs_with_id, collected, exists_or_err, is_code,
    not_found_is_none, owned_id, retag, sent, sorted_strs, tag_map, tagged, tags_value, unexpected,
    Names, Reader, SubnetGroupOps,
};
use crate::fields::{described_by, subnet_group_api};
use crate::{Clients, Created, Cx, KindOps, Query, Update};
use async_trait::async_trait;
use aws_sdk_elasticache::types::{
    AutomaticFailoverStatus, CacheCluster, CacheSubnetGroup, MultiAzStatus, ReplicationGroup, Tag,
};
use moodlestack_model::{CloudError, Fields, Kind, Lifecycle, Observed, Scope, Value};
use std::collections::BTreeMap;

/// Tag holding the ARN of the secret the AUTH token was read from.
pub const TAG_AUTH_SECRET: &str = "moodlestack:auth-secret-arn";

fn to_tags(tags: BTreeMap<String, String>) -> Vec<Tag> {
    tags.into_iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect()
}

/// The tags of a group or subnet group. ElastiCache answers `InvalidReplicationGroupState`
/// while a group is being created or modified; the read is tried again for up to a minute
/// (reading tags is how moodlestack knows the group is the stack's), then the error stands.
async fn list_tags(c: &Clients, arn: &str) -> Result<BTreeMap<String, String>, CloudError> {
    let busy = |e: &CloudError| is_code(e, "InvalidReplicationGroupState");
    let out = again_while(busy, std::time::Duration::from_secs(60), || {
        answer(
            "elasticache:ListTagsForResource",
            c.elasticache
                .list_tags_for_resource()
                .resource_name(arn)
                .send(),
        )
    })
    .await?;
    Ok(tag_map(out.tag_list()))
}

/// Adds or overwrites the tags the stack sets (tags are compared as a subset: others' tags stay).
async fn put_tags(c: &Clients, current: &Observed, r: &Reader<'_>) -> Result<(), CloudError> {
    let operation = "elasticache:AddTagsToResource";
    let (arn, tags) = retag(operation, current, r)?;
    let req = c.elasticache.add_tags_to_resource().resource_name(arn);
    sent(operation, req.set_tags(Some(to_tags(tags))).send()).await
}

/// Sets on the request `$req`, for every `$field` that `$differs`, its member `$member` to the
/// desired value (`$r.$read($field)`, wrapped in `[Some]` where the member takes an option), and
/// `$any` when there was one.
macro_rules! set_differing {
    ($req:ident, $r:ident, $differs:ident, $any:ident:
        $($field:literal => $member:ident$([$some:ident])?($read:ident)),* $(,)?) => {
        $(
            if $differs($field) {
                $req = $req.$member($($some)?($r.$read($field)?));
                $any = true;
            }
        )*
    };
}

/// The lifecycle of a replication group from its status word.
fn lifecycle(status: &str) -> Lifecycle {
    match status {
        "creating" => Lifecycle::Creating,
        "available" => Lifecycle::Ready,
        "deleting" | "deleted" => Lifecycle::Deleting,
        "create-failed" => Lifecycle::Failed,
        // modifying, snapshotting
        _ => Lifecycle::Modifying,
    }
}

// ---------------------------------------------------------------------------------------------
// The subnet group.

/// This file's kinds under their [`Kind`](moodlestack_model::Kind) names, for the registry
/// [`ops`](crate::ops).
pub(crate) mod kinds {
    pub(crate) use super::ReplicationGroupOps as CacheReplicationGroup;
    /// `AWS::ElastiCache::SubnetGroup`, keyed by its name.
    #[allow(non_upper_case_globals)]
    pub(crate) const CacheSubnetGroup: super::SubnetGroupOps<super::SubnetGroup> =
        super::SubnetGroupOps::OPS;
}

subnet_group_api! {
    /// The calls of `AWS::ElastiCache::SubnetGroup`.
    SubnetGroup: Kind::CacheSubnetGroup, CacheSubnetGroup, client elasticache,
    name: cache_subnet_group_name, description: cache_subnet_group_description,
    arn: arn, status(_g) => "available",
    describe: describe_cache_subnet_groups
        .set_cache_subnet_group_name("elasticache:DescribeCacheSubnetGroups"),
    observe(c, scope, g) => subnet_group_with_tags(c, scope, &g).await,
    create(cx, r, name, out):
        create_cache_subnet_group(
            "elasticache:CreateCacheSubnetGroup",
            exists "CacheSubnetGroupAlreadyExists"
        ),
        tags => to_tags(r.stack_tags(cx.scope)?),
        // Read back with its tags (the answer has none).
        made => {
            let o = match out.cache_subnet_group() {
                Some(g) => subnet_group_with_tags(cx.c, cx.scope, g).await?,
                None => None,
            };
            tagged("elasticache:CreateCacheSubnetGroup", name, o).map(Created::New)
        },
    modify: modify_cache_subnet_group("elasticache:ModifyCacheSubnetGroup"),
    put_tags: put_tags,
    delete: delete_cache_subnet_group("elasticache:DeleteCacheSubnetGroup"),
}

/// `g` as observed, its tags read with one more call.
async fn subnet_group_with_tags(
    c: &Clients,
    scope: &Scope,
    g: &CacheSubnetGroup,
) -> Result<Option<Observed>, CloudError> {
    let Some(arn) = g.arn() else {
        return Ok(None);
    };
    Ok(SubnetGroup::observed(scope, g, list_tags(c, arn).await?))
}

// ---------------------------------------------------------------------------------------------
// The replication group.

/// `AWS::ElastiCache::ReplicationGroup`, keyed by its id.
pub(crate) struct ReplicationGroupOps;

/// Waits until the replication group is `available` again: ElastiCache takes one change at a
/// time and refuses the next (and tag calls) with `InvalidReplicationGroupState` while it is
/// `modifying`. Bounded by the kind's timeout.
async fn until_available(c: &Clients, id: &str) -> Result<(), CloudError> {
    let deadline = std::time::Instant::now()
        + moodlestack_model::spec(Kind::CacheReplicationGroup).ready_timeout;
    let mut delay = std::time::Duration::from_millis(250);
    loop {
        let status = describe_replication_groups(c, Some(id))
            .await?
            .first()
            .and_then(|g| g.status().map(str::to_string));
        match status.as_deref() {
            Some("available") => return Ok(()),
            None => return Err(CloudError::NotFound(format!("replication group {id}"))),
            Some(s) if std::time::Instant::now() >= deadline => {
                return Err(CloudError::Api {
                    operation: "elasticache:DescribeReplicationGroups".into(),
                    code: "InvalidReplicationGroupState".into(),
                    message: format!("replication group {id} is still {s}"),
                    source: None,
                })
            }
            Some(_) => {
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(std::time::Duration::from_secs(15));
            }
        }
    }
}

async fn describe_replication_groups(
    c: &Clients,
    id: Option<&str>,
) -> Result<Vec<ReplicationGroup>, CloudError> {
    let req = c.elasticache.describe_replication_groups();
    let req = req.set_replication_group_id(id.map(str::to_string));
    described_by!("elasticache:DescribeReplicationGroups", id, req).await
}

/// Member cache clusters by replication group id (one paginated describe of all clusters).
async fn member_clusters(c: &Clients) -> Result<BTreeMap<String, Vec<CacheCluster>>, CloudError> {
    let clusters: Vec<CacheCluster> = collected(
        "elasticache:DescribeCacheClusters",
        c.elasticache
            .describe_cache_clusters()
            .into_paginator()
            .items()
            .send()
            .try_collect(),
    )
    .await?;
    let mut out: BTreeMap<String, Vec<CacheCluster>> = BTreeMap::new();
    for cc in clusters {
        if let Some(rg) = cc.replication_group_id() {
            out.entry(rg.to_string()).or_default().push(cc);
        }
    }
    Ok(out)
}

/// The group's first member cluster (one describe of one cluster), for a single group's fields;
/// none when it cannot be described.
async fn first_member(c: &Clients, rg: &ReplicationGroup) -> Result<Vec<CacheCluster>, CloudError> {
    let Some(id) = rg.member_clusters().first() else {
        return Ok(Vec::new());
    };
    let req = c.elasticache.describe_cache_clusters().cache_cluster_id(id);
    let described = answer("elasticache:DescribeCacheClusters", req.send()).await;
    Ok(not_found_is_none(described)?
        .map(|out| out.cache_clusters().iter().take(1).cloned().collect())
        .unwrap_or_default())
}

/// A replication group as observed from its description, its tags and its member clusters
/// (which carry what the group does not report); None when it is not tagged with the stack.
fn replication_group_observed(
    scope: &Scope,
    rg: &ReplicationGroup,
    tags: BTreeMap<String, String>,
    members: &[CacheCluster],
) -> Option<Observed> {
    let id = owned_id(scope, &tags)?;
    let rg_id = rg.replication_group_id()?.to_string();
    let mut fields = Fields::new();
    fields.insert("replication_group_id".into(), Value::str(&rg_id));
    if let Some(d) = rg.description() {
        fields.insert("description".into(), Value::str(d));
    }
    fields.insert("engine".into(), Value::str(rg.engine().unwrap_or("redis")));
    if let Some(t) = rg.cache_node_type() {
        fields.insert("node_type".into(), Value::str(t));
    }
    fields.insert(
        "num_cache_clusters".into(),
        Value::Int(rg.member_clusters().len() as i64),
    );
    if let Some(f) = rg.automatic_failover() {
        let on = matches!(
            f,
            AutomaticFailoverStatus::Enabled | AutomaticFailoverStatus::Enabling
        );
        fields.insert("automatic_failover".into(), Value::Bool(on));
    }
    if let Some(m) = rg.multi_az() {
        fields.insert("multi_az".into(), Value::Bool(*m == MultiAzStatus::Enabled));
    }
    if let Some(t) = rg.transit_encryption_enabled() {
        fields.insert("transit_encryption".into(), Value::Bool(t));
    }
    if let Some(a) = rg.at_rest_encryption_enabled() {
        fields.insert("at_rest_encryption".into(), Value::Bool(a));
    }
    if rg.auth_token_enabled() == Some(true) {
        if let Some(arn) = tags.get(TAG_AUTH_SECRET) {
            fields.insert("auth_token_secret_arn".into(), Value::str(arn));
        }
    }
    // The member clusters carry what the group does not report.
    if let Some(m) = members.first() {
        if let Some(v) = m.engine_version() {
            fields.insert("engine_version".into(), Value::str(v));
        }
        if let Some(g) = m.cache_subnet_group_name() {
            fields.insert("cache_subnet_group_name".into(), Value::str(g));
        }
        fields.insert(
            "security_group_ids".into(),
            sorted_strs(
                m.security_groups()
                    .iter()
                    .filter_map(|s| s.security_group_id()),
            ),
        );
    }
    let group = rg.node_groups().first();
    let primary = group.and_then(|g| g.primary_endpoint());
    let reader = group.and_then(|g| g.reader_endpoint());
    let port = primary.and_then(|e| e.port()).filter(|p| *p != 0);
    if let Some(p) = port {
        fields.insert("port".into(), Value::Int(p.into()));
    }
    fields.insert("tags".into(), tags_value(tags));
    let attrs = attrs_with_id(
        &rg_id,
        [
            ("arn", rg.arn().map(str::to_string)),
            (
                "primary_endpoint",
                primary.and_then(|e| e.address()).map(str::to_string),
            ),
            (
                "reader_endpoint",
                reader.and_then(|e| e.address()).map(str::to_string),
            ),
            ("port", port.map(|p| p.to_string())),
        ],
    );
    Some(Observed {
        id: id.into(),
        kind: Kind::CacheReplicationGroup,
        physical_id: rg_id,
        fields,
        attrs,
        status: rg.status().unwrap_or_default().to_string(),
        lifecycle: lifecycle(rg.status().unwrap_or_default()),
    })
}

/// `rg` as observed: its tags read with one more call, its members from `members` (the whole
/// stack's) or, when not given, with one describe of its first member.
async fn replication_group_with_tags(
    cx: &Cx<'_>,
    rg: &ReplicationGroup,
    members: Option<&BTreeMap<String, Vec<CacheCluster>>>,
) -> Result<Option<Observed>, CloudError> {
    let Some(arn) = rg.arn() else { return Ok(None) };
    let (tags, first) = match members {
        Some(_) => (list_tags(cx.c, arn).await?, Vec::new()),
        None => tokio::try_join!(list_tags(cx.c, arn), first_member(cx.c, rg))?,
    };
    let m = match members {
        Some(all) => rg
            .replication_group_id()
            .and_then(|n| all.get(n))
            .map(Vec::as_slice)
            .unwrap_or(&[]),
        None => first.as_slice(),
    };
    Ok(replication_group_observed(cx.scope, rg, tags, m))
}

async fn auth_token(c: &Clients, secret_arn: &str) -> Result<String, CloudError> {
    let req = c.secrets.get_secret_value().secret_id(secret_arn);
    let out = answer("secretsmanager:GetSecretValue", req.send()).await?;
    out.secret_string().map(str::to_string).ok_or_else(|| {
        unexpected(
            "secretsmanager:GetSecretValue",
            format!("secret {secret_arn} holds no string value to use as the Redis AUTH token"),
        )
    })
}

/// Equal values; lists (security group ids) compared as sets.
#[async_trait]
impl KindOps for ReplicationGroupOps {
    async fn list(&self, cx: &Cx<'_>, q: Query<'_>) -> Result<Vec<Observed>, CloudError> {
        let Some(names) = Names::asked(cx, Kind::CacheReplicationGroup, q) else {
            return Ok(Vec::new());
        };
        let (rgs, members) = match names.one() {
            Some(one) => (describe_replication_groups(cx.c, Some(one)).await?, None),
            None => {
                let (rgs, members) = tokio::try_join!(
                    describe_replication_groups(cx.c, None),
                    member_clusters(cx.c)
                )?;
                (rgs, Some(members))
            }
        };
        all_at_once(
            rgs.iter()
                .filter(|rg| rg.replication_group_id().is_some_and(|n| names.matches(n)))
                .filter(|rg| {
                    matches!(q, Query::Physical(_))
                        || !matches!(rg.status(), Some("deleting" | "deleted"))
                })
                .map(|rg| replication_group_with_tags(cx, rg, members.as_ref())),
        )
        .await
    }

    async fn create(&self, cx: &Cx<'_>, r: &Reader<'_>) -> Result<Created, CloudError> {
        let mut tags = r.stack_tags(cx.scope)?;
        let rg_id = r.str("replication_group_id")?;
        let secret = r.opt_str("auth_token_secret_arn");
        let token = match secret {
            Some(arn) => {
                tags.insert(TAG_AUTH_SECRET.to_string(), arn.to_string());
                Some(auth_token(cx.c, arn).await?)
            }
            None => None,
        };
        let res =
            cx.c.elasticache
                .create_replication_group()
                .replication_group_id(rg_id)
                .replication_group_description(r.str("description")?)
                .engine(r.opt_str("engine").unwrap_or("redis"))
                .set_engine_version(r.opt_str("engine_version").map(str::to_string))
                .cache_node_type(r.str("node_type")?)
                .num_cache_clusters(r.int32("num_cache_clusters")?)
                .automatic_failover_enabled(r.opt_bool("automatic_failover").unwrap_or(false))
                .multi_az_enabled(r.opt_bool("multi_az").unwrap_or(false))
                .transit_encryption_enabled(r.opt_bool("transit_encryption").unwrap_or(true))
                .at_rest_encryption_enabled(r.opt_bool("at_rest_encryption").unwrap_or(true))
                .set_auth_token(token)
                .cache_subnet_group_name(r.str("cache_subnet_group_name")?)
                .set_security_group_ids(Some(r.strs("security_group_ids")?))
                .set_port(r.opt_int("port").map(|p| p as i32))
                .set_tags(Some(to_tags(tags.clone())))
                .send()
                .await;
        match res {
            Ok(out) => {
                let o = out
                    .replication_group()
                    .and_then(|rg| replication_group_observed(cx.scope, rg, tags, &[]));
                tagged("elasticache:CreateReplicationGroup", rg_id, o).map(Created::New)
            }
            Err(e) => exists_or_err(
                "elasticache:CreateReplicationGroup",
                e,
                "ReplicationGroupAlreadyExists",
            ),
        }
    }

    async fn update(&self, cx: &Cx<'_>, u: Update<'_>) -> Result<Observed, CloudError> {
        let (current, r, changed) = u.parts();
        let has = |f: &str| changed.contains(&f);
        // Compare against what the group is now, not what the plan saw: a retried update (the
        // group was busy with the previous step) sends only what is still missing.
        let rg = describe_replication_groups(cx.c, Some(&current.physical_id))
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| {
                CloudError::NotFound(format!("replication group {}", current.physical_id))
            })?;
        let now = replication_group_with_tags(cx, &rg, None)
            .await?
            .unwrap_or_else(|| current.clone());
        // The one comparison rule of the kind's descriptor.
        let s = moodlestack_model::spec(Kind::CacheReplicationGroup);
        let differs = |f: &str| {
            has(f)
                && r.fields
                    .get(f)
                    .zip(s.field(f))
                    .is_some_and(|(want, fs)| fs.differs(want, now.fields.get(f)))
        };
        // Applied now rather than in the maintenance window (see the rds module docs).
        let mut req =
            cx.c.elasticache
                .modify_replication_group()
                .replication_group_id(&current.physical_id)
                .apply_immediately(true);
        let mut modify = false;
        set_differing!(req, r, differs, modify:
            "description" => replication_group_description(str),
            "node_type" => cache_node_type(str),
            "engine_version" => engine_version(str),
            "automatic_failover" => automatic_failover_enabled(bool),
            "multi_az" => multi_az_enabled(bool),
            "security_group_ids" => set_security_group_ids[Some](strs),
        );
        if modify {
            sent("elasticache:ModifyReplicationGroup", req.send()).await?;
        }
        // One change at a time: the group is `modifying` after each.
        if differs("num_cache_clusters") {
            until_available(cx.c, &current.physical_id).await?;
            let want = r.int32("num_cache_clusters")?;
            let have = now
                .fields
                .get("num_cache_clusters")
                .and_then(Value::as_i64)
                .unwrap_or(0) as i32;
            // Replicas = clusters - 1 (the primary).
            if want > have {
                let req = cx.c.elasticache.increase_replica_count();
                let req = req.replication_group_id(&current.physical_id);
                let req = req.new_replica_count(want - 1).apply_immediately(true);
                sent("elasticache:IncreaseReplicaCount", req.send()).await?;
            } else {
                let req = cx.c.elasticache.decrease_replica_count();
                let req = req.replication_group_id(&current.physical_id);
                let req = req.new_replica_count(want - 1).apply_immediately(true);
                sent("elasticache:DecreaseReplicaCount", req.send()).await?;
            }
        }
        if has("tags") {
            until_available(cx.c, &current.physical_id).await?;
            put_tags(cx.c, current, r).await?;
        }
        let mut out = now;
        out.id = current.id.clone();
        Ok(out)
    }

    async fn delete(&self, cx: &Cx<'_>, current: &Observed) -> Result<(), CloudError> {
        // The cache holds sessions and application caches that Moodle rebuilds: no final
        // snapshot (the database's final snapshot option does not apply to it).
        let req = cx.c.elasticache.delete_replication_group();
        let req = req.replication_group_id(&current.physical_id);
        let res = sent(
            "elasticache:DeleteReplicationGroup",
            req.retain_primary_cluster(false).send(),
        )
        .await;
        match res {
            // Already being deleted.
            Err(CloudError::Api { code, .. }) if code == "InvalidReplicationGroupState" => {
                let rgs = describe_replication_groups(cx.c, Some(&current.physical_id)).await?;
                match rgs.first().and_then(|g| g.status()) {
                    None | Some("deleting") => Ok(()),
                    Some(s) => Err(CloudError::Api {
                        operation: "elasticache:DeleteReplicationGroup".into(),
                        code: "InvalidReplicationGroupState".into(),
                        message: format!("replication group {} is {s}", current.physical_id),
                        source: None,
                    }),
                }
            }
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fields::{assert_ready_as, test_scope};
    use moodlestack_model::{identity_tags, TAG_STACK};

    #[test]
    fn redis_versions_compare_on_what_the_stack_asked_for() {
        // Reported as AWS reports it; the descriptor's rule compares it with the stack's.
        let v = moodlestack_model::spec(Kind::CacheReplicationGroup)
            .field("engine_version")
            .unwrap();
        assert!(!v.differs(&Value::str("7.1"), Some(&Value::str("7.1.0"))));
        assert!(v.differs(&Value::str("7.0"), Some(&Value::str("7.1.0"))));
    }

    #[test]
    fn group_fields_come_from_the_group_its_members_and_tags() {
        use aws_sdk_elasticache::types::{Endpoint, NodeGroup, SecurityGroupMembership};
        let scope = test_scope("demo");
        let rg = ReplicationGroup::builder()
            .replication_group_id("demo-redis")
            .description("sessions")
            .status("available")
            .member_clusters("demo-redis-001")
            .member_clusters("demo-redis-002")
            .automatic_failover(AutomaticFailoverStatus::Enabled)
            .multi_az(MultiAzStatus::Enabled)
            .cache_node_type("cache.t4g.small")
            .transit_encryption_enabled(true)
            .at_rest_encryption_enabled(true)
            .auth_token_enabled(true)
            .engine("redis")
            .arn("arn:aws:elasticache:eu-west-1:1:replicationgroup:demo-redis")
            .node_groups(
                NodeGroup::builder()
                    .primary_endpoint(Endpoint::builder().address("master.x").port(6379).build())
                    .reader_endpoint(Endpoint::builder().address("replica.x").port(6379).build())
                    .build(),
            )
            .build();
        let member = CacheCluster::builder()
            .replication_group_id("demo-redis")
            .engine_version("7.1.0")
            .cache_subnet_group_name("demo-cache")
            .security_groups(
                SecurityGroupMembership::builder()
                    .security_group_id("sg-2")
                    .build(),
            )
            .security_groups(
                SecurityGroupMembership::builder()
                    .security_group_id("sg-1")
                    .build(),
            )
            .build();
        let mut tags = identity_tags(&scope, &"cache.redis");
        tags.insert(TAG_AUTH_SECRET.into(), "arn:secret".into());
        let o = replication_group_observed(&scope, &rg, tags.clone(), &[member]).unwrap();
        assert_ready_as(&o, "cache.redis", &[]);
        assert_eq!(o.fields["engine_version"], Value::str("7.1.0"));
        assert_eq!(o.fields["num_cache_clusters"], Value::Int(2));
        assert_eq!(o.fields["automatic_failover"], Value::Bool(true));
        assert_eq!(o.fields["multi_az"], Value::Bool(true));
        assert_eq!(
            o.fields["cache_subnet_group_name"],
            Value::str("demo-cache")
        );
        assert_eq!(
            o.fields["security_group_ids"],
            Value::strs(["sg-1", "sg-2"])
        );
        assert_eq!(o.fields["auth_token_secret_arn"], Value::str("arn:secret"));
        assert_eq!(o.fields["port"], Value::Int(6379));
        assert_eq!(o.attrs["primary_endpoint"], "master.x");
        assert_eq!(o.attrs["reader_endpoint"], "replica.x");
        // Another stack's group is not ours.
        let other = BTreeMap::from([(TAG_STACK.to_string(), "other".to_string())]);
        assert!(replication_group_observed(&scope, &rg, other, &[]).is_none());
    }

    #[test]
    fn security_groups_compare_as_sets() {
        let a = Value::strs(["sg-1", "sg-2"]);
        let b = Value::strs(["sg-2", "sg-1"]);
        let spec = moodlestack_model::spec(Kind::CacheReplicationGroup);
        let sgs = spec.field("security_group_ids").unwrap();
        assert!(!sgs.differs(&b, Some(&a)));
        assert!(sgs.differs(&Value::strs(["sg-1"]), Some(&a)));
        assert!(sgs.differs(&a, None));
        let n = spec.field("num_cache_clusters").unwrap();
        assert!(!n.differs(&Value::Int(2), Some(&Value::Int(2))));
    }

    #[test]
    fn names_are_the_stack_prefix_or_the_declared_ones() {
        let scope = test_scope("demo");
        let desired =
            [
                moodlestack_model::Resource::new("cache.redis", Kind::CacheReplicationGroup)
                    .with("replication_group_id", "custom"),
            ];
        let clients = crate::Clients::new(
            &aws_types::SdkConfig::builder()
                .behavior_version(aws_config::BehaviorVersion::latest())
                .build(),
            &crate::RequestStats::new(),
        );
        let cx = Cx::new(&clients, &scope, &desired);
        let m = Names::new(&cx, Kind::CacheReplicationGroup, Query::Stack);
        assert!(m.matches("demo-redis"));
        assert!(m.matches("custom"));
        assert!(!m.matches("demoredis"));
        assert!(!m.matches("other-redis"));
        assert_eq!(m.one(), None);
        let fields = Fields::from([("replication_group_id".into(), Value::str("demo-redis"))]);
        let id = moodlestack_model::ResourceId::from("cache.redis");
        let one = Names::new(
            &cx,
            Kind::CacheReplicationGroup,
            Query::Logical {
                id: &id,
                fields: &fields,
            },
        );
        assert_eq!(one.one(), Some("demo-redis"));
        assert!(!one.matches("demo-other"));
        let none = Names::new(
            &cx,
            Kind::CacheReplicationGroup,
            Query::Logical {
                id: &id,
                fields: &Fields::new(),
            },
        );
        assert!(matches!(none, Names::Nothing));
    }

    #[test]
    fn a_subnet_group_is_observed_with_its_descriptors_fields() {
        use aws_sdk_elasticache::types::Subnet;
        let scope = test_scope("demo");
        let g = CacheSubnetGroup::builder()
            .cache_subnet_group_name("demo-cache")
            .arn("arn:aws:elasticache:eu-west-1:1:subnetgroup:demo-cache")
            .cache_subnet_group_description("cache")
            .subnets(Subnet::builder().subnet_identifier("subnet-1").build())
            .build();
        let tags = identity_tags(&scope, &"cache.subnet_group");
        let o = SubnetGroup::observed(&scope, &g, tags.clone()).unwrap();
        assert_ready_as(&o, "cache.subnet_group", &[]);
        assert!(SubnetGroup::observed(&test_scope("other"), &g, tags).is_none());
    }
}
