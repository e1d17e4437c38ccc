//! ElastiCache: the cache subnet group and the Redis replication group (cluster mode disabled:
//! one primary plus replicas).
//!
//! Finding the stack's resources: DescribeCacheSubnetGroups and DescribeReplicationGroups have no
//! tag filter. Each is listed with one paginated describe; only names that start with `<stack>-`
//! (or that a desired resource declares) are candidates, and their tags are read with
//! ListTagsForResource on the ARN (ElastiCache has no batch tag read).
//!
//! The replication group itself does not report its engine version, subnet group or security
//! groups: those are read from its member cache clusters, listed with one paginated
//! DescribeCacheClusters.
//!
//! The AUTH token is read from the Secrets Manager secret named by `auth_token_secret_arn` at
//! creation, sent as `AuthToken` and never logged or returned. AWS does not report which secret a
//! token came from, so the ARN is also written as the tag `moodlestack:auth-secret-arn` on the
//! create call and read back from there.

use crate::fields::{
    api_err, canonical_version, is_not_found, owned_id, sorted_strs, subnet_group_observed,
    tags_value, Reader,
};
use crate::Clients;
use aws_sdk_elasticache::types::{
    AutomaticFailoverStatus, CacheCluster, CacheSubnetGroup, MultiAzStatus, ReplicationGroup, Tag,
};
use moodlestack_model::{
    CloudError, DeleteOptions, Fields, Kind, Observed, Readiness, Resource, ResourceId, Scope,
    Value, Want, TAG_ID, TAG_STACK,
};
use std::collections::{BTreeMap, BTreeSet};

/// Tag holding the ARN of the secret the AUTH token was read from.
pub const TAG_AUTH_SECRET: &str = "moodlestack:auth-secret-arn";

fn tag_map(tags: &[Tag]) -> BTreeMap<String, String> {
    tags.iter()
        .filter_map(|t| {
            Some((
                t.key()?.to_string(),
                t.value().unwrap_or_default().to_string(),
            ))
        })
        .collect()
}

fn to_tags(tags: BTreeMap<String, String>) -> Vec<Tag> {
    tags.into_iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect()
}

fn candidates(
    scope: &Scope,
    desired: &[Resource],
    kind: Kind,
    name_field: &str,
) -> impl Fn(&str) -> bool {
    let prefix = format!("{}-", scope.stack);
    let names: BTreeSet<String> = desired
        .iter()
        .filter(|r| r.kind == kind)
        .filter_map(|r| {
            r.fields
                .get(name_field)
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .collect();
    move |n: &str| n.starts_with(&prefix) || names.contains(n)
}

async fn list_tags(c: &Clients, arn: &str) -> Result<BTreeMap<String, String>, CloudError> {
    let out = c
        .elasticache
        .list_tags_for_resource()
        .resource_name(arn)
        .send()
        .await
        .map_err(|e| api_err("elasticache:ListTagsForResource", e))?;
    Ok(tag_map(out.tag_list()))
}

// ---------------------------------------------------------------------------------------------
// observe

async fn describe_subnet_groups(
    c: &Clients,
    name: Option<&str>,
) -> Result<Vec<CacheSubnetGroup>, CloudError> {
    let mut out = Vec::new();
    let mut pages = c
        .elasticache
        .describe_cache_subnet_groups()
        .set_cache_subnet_group_name(name.map(str::to_string))
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        match page {
            Ok(p) => out.extend(p.cache_subnet_groups().iter().cloned()),
            Err(e) => {
                let err = api_err("elasticache:DescribeCacheSubnetGroups", e);
                if name.is_some() && is_not_found(&err) {
                    return Ok(Vec::new());
                }
                return Err(err);
            }
        }
    }
    Ok(out)
}

async fn observe_subnet_group(
    c: &Clients,
    scope: &Scope,
    g: &CacheSubnetGroup,
) -> Result<Option<Observed>, CloudError> {
    let (Some(name), Some(arn)) = (g.cache_subnet_group_name(), g.arn()) else {
        return Ok(None);
    };
    let tags = list_tags(c, arn).await?;
    let Some(id) = owned_id(scope, &tags) else {
        return Ok(None);
    };
    Ok(Some(subnet_group_observed(
        Kind::CacheSubnetGroup,
        id,
        name,
        arn,
        g.cache_subnet_group_description().unwrap_or_default(),
        g.subnets().iter().filter_map(|s| s.subnet_identifier()),
        tags,
        "available",
    )))
}

async fn describe_replication_groups(
    c: &Clients,
    id: Option<&str>,
) -> Result<Vec<ReplicationGroup>, CloudError> {
    let mut out = Vec::new();
    let mut pages = c
        .elasticache
        .describe_replication_groups()
        .set_replication_group_id(id.map(str::to_string))
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        match page {
            Ok(p) => out.extend(p.replication_groups().iter().cloned()),
            Err(e) => {
                let err = api_err("elasticache:DescribeReplicationGroups", e);
                if id.is_some() && is_not_found(&err) {
                    return Ok(Vec::new());
                }
                return Err(err);
            }
        }
    }
    Ok(out)
}

/// Member cache clusters by replication group id (one paginated describe of all clusters).
async fn member_clusters(c: &Clients) -> Result<BTreeMap<String, Vec<CacheCluster>>, CloudError> {
    let mut out: BTreeMap<String, Vec<CacheCluster>> = BTreeMap::new();
    let mut pages = c
        .elasticache
        .describe_cache_clusters()
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| api_err("elasticache:DescribeCacheClusters", e))?;
        for cc in page.cache_clusters() {
            if let Some(rg) = cc.replication_group_id() {
                out.entry(rg.to_string()).or_default().push(cc.clone());
            }
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
    match c
        .elasticache
        .describe_cache_clusters()
        .cache_cluster_id(id)
        .send()
        .await
    {
        Ok(out) => Ok(out.cache_clusters().iter().take(1).cloned().collect()),
        Err(e) => {
            let err = api_err("elasticache:DescribeCacheClusters", e);
            if is_not_found(&err) {
                Ok(Vec::new())
            } else {
                Err(err)
            }
        }
    }
}

fn replication_group_observed(
    scope: &Scope,
    desired_version: Option<&str>,
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
            fields.insert(
                "engine_version".into(),
                Value::Str(canonical_version(v, desired_version)),
            );
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
    let mut attrs = BTreeMap::from([("id".to_string(), rg_id.clone())]);
    let mut put = |k: &str, v: Option<String>| {
        if let Some(v) = v {
            attrs.insert(k.to_string(), v);
        }
    };
    put("arn", rg.arn().map(str::to_string));
    put(
        "primary_endpoint",
        primary.and_then(|e| e.address()).map(str::to_string),
    );
    put(
        "reader_endpoint",
        reader.and_then(|e| e.address()).map(str::to_string),
    );
    put("port", port.map(|p| p.to_string()));
    Some(Observed {
        id: id.into(),
        kind: Kind::CacheReplicationGroup,
        physical_id: rg_id,
        fields,
        attrs,
        status: rg.status().unwrap_or_default().to_string(),
        lifecycle: moodlestack_model::Lifecycle::Ready,
    })
}

fn desired_version<'a>(desired: &'a [Resource], id: &ResourceId) -> Option<&'a str> {
    desired
        .iter()
        .find(|r| r.kind == Kind::CacheReplicationGroup && &r.id == id)
        .and_then(|r| r.fields.get("engine_version"))
        .and_then(Value::as_str)
}

async fn observe_one_group(
    c: &Clients,
    scope: &Scope,
    desired: &[Resource],
    rg: &ReplicationGroup,
    members: &BTreeMap<String, Vec<CacheCluster>>,
) -> Result<Option<Observed>, CloudError> {
    let Some(arn) = rg.arn() else { return Ok(None) };
    let tags = list_tags(c, arn).await?;
    let Some(id) = owned_id(scope, &tags) else {
        return Ok(None);
    };
    let m = rg
        .replication_group_id()
        .and_then(|n| members.get(n))
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    Ok(replication_group_observed(
        scope,
        desired_version(desired, &id),
        rg,
        tags,
        m,
    ))
}

pub async fn observe(
    c: &Clients,
    scope: &Scope,
    desired: &[Resource],
) -> Result<Vec<Observed>, CloudError> {
    let mut out = Vec::new();
    let sg_cand = candidates(scope, desired, Kind::CacheSubnetGroup, "name");
    let rg_cand = candidates(
        scope,
        desired,
        Kind::CacheReplicationGroup,
        "replication_group_id",
    );
    let (groups, rgs, members) = tokio::try_join!(
        describe_subnet_groups(c, None),
        describe_replication_groups(c, None),
        member_clusters(c)
    )?;
    for g in groups
        .iter()
        .filter(|g| g.cache_subnet_group_name().is_some_and(&sg_cand))
    {
        if let Some(o) = observe_subnet_group(c, scope, g).await? {
            out.push(o);
        }
    }
    for rg in rgs
        .iter()
        .filter(|g| g.replication_group_id().is_some_and(&rg_cand))
    {
        if matches!(rg.status(), Some("deleting" | "deleted")) {
            continue;
        }
        if let Some(o) = observe_one_group(c, scope, desired, rg, &members).await? {
            out.push(o);
        }
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// create

async fn auth_token(c: &Clients, secret_arn: &str) -> Result<String, CloudError> {
    let out = c
        .secrets
        .get_secret_value()
        .secret_id(secret_arn)
        .send()
        .await
        .map_err(|e| api_err("secretsmanager:GetSecretValue", e))?;
    out.secret_string().map(str::to_string).ok_or_else(|| {
        CloudError::Other(format!(
            "secret {secret_arn} holds no string value to use as the Redis AUTH token"
        ))
    })
}

fn not_ours(kind: Kind, name: &str, scope: &Scope, id: &ResourceId) -> CloudError {
    CloudError::Other(format!(
        "{kind} {name} already exists but is not tagged {TAG_STACK}={} {TAG_ID}={id}; it belongs to \
         something else: rename the stack or delete it",
        scope.stack
    ))
}

pub async fn create(
    c: &Clients,
    scope: &Scope,
    id: &ResourceId,
    kind: Kind,
    fields: &Fields,
) -> Result<Observed, CloudError> {
    let r = Reader::new(kind, id, fields);
    let mut tags = r.tags()?;
    tags.extend(moodlestack_model::identity_tags(scope, id));
    match kind {
        Kind::CacheSubnetGroup => {
            let name = r.str("name")?;
            let res = c
                .elasticache
                .create_cache_subnet_group()
                .cache_subnet_group_name(name)
                .cache_subnet_group_description(r.str("description")?)
                .set_subnet_ids(Some(r.strs("subnet_ids")?))
                .set_tags(Some(to_tags(tags)))
                .send()
                .await;
            let g = match res {
                Ok(out) => out.cache_subnet_group().cloned(),
                Err(e) => {
                    let err = api_err("elasticache:CreateCacheSubnetGroup", e);
                    if !matches!(&err, CloudError::Api { code, .. } if code.starts_with("CacheSubnetGroupAlreadyExists"))
                    {
                        return Err(err);
                    }
                    describe_subnet_groups(c, Some(name))
                        .await?
                        .into_iter()
                        .next()
                }
            };
            let g = g.ok_or_else(|| {
                CloudError::Other(format!("cache subnet group {name}: not found after create"))
            })?;
            match observe_subnet_group(c, scope, &g).await? {
                Some(o) if &o.id == id => Ok(o),
                _ => Err(not_ours(kind, name, scope, id)),
            }
        }
        Kind::CacheReplicationGroup => {
            let rg_id = r.str("replication_group_id")?;
            let secret = r.opt_str("auth_token_secret_arn");
            let token = match secret {
                Some(arn) => {
                    tags.insert(TAG_AUTH_SECRET.to_string(), arn.to_string());
                    Some(auth_token(c, arn).await?)
                }
                None => None,
            };
            let res = c
                .elasticache
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
                .set_tags(Some(to_tags(tags)))
                .send()
                .await;
            let version = r.opt_str("engine_version");
            match res {
                Ok(out) => {
                    let rg = out.replication_group().ok_or_else(|| {
                        CloudError::Other(format!(
                            "elasticache:CreateReplicationGroup {rg_id}: no group in the answer"
                        ))
                    })?;
                    let mut all = r.tags()?;
                    all.extend(moodlestack_model::identity_tags(scope, id));
                    if let Some(arn) = secret {
                        all.insert(TAG_AUTH_SECRET.to_string(), arn.to_string());
                    }
                    replication_group_observed(scope, version, rg, all, &[]).ok_or_else(|| {
                        CloudError::Other(format!(
                            "replication group {rg_id}: not tagged after create"
                        ))
                    })
                }
                Err(e) => {
                    let err = api_err("elasticache:CreateReplicationGroup", e);
                    if !matches!(&err, CloudError::Api { code, .. } if code.starts_with("ReplicationGroupAlreadyExists"))
                    {
                        return Err(err);
                    }
                    let rg = describe_replication_groups(c, Some(rg_id))
                        .await?
                        .into_iter()
                        .next()
                        .ok_or(err)?;
                    let tags = list_tags(c, rg.arn().unwrap_or_default()).await?;
                    match replication_group_observed(scope, version, &rg, tags, &[]) {
                        Some(o) if &o.id == id => Ok(o),
                        _ => Err(not_ours(kind, rg_id, scope, id)),
                    }
                }
            }
        }
        other => Err(CloudError::Other(format!(
            "elasticache module does not handle {other}"
        ))),
    }
}

// ---------------------------------------------------------------------------------------------
// update

/// Equal values; lists (security group ids) compared as sets.
fn same_value(a: Option<&Value>, b: Option<&Value>) -> bool {
    match (a, b) {
        (Some(Value::List(x)), Some(Value::List(y))) => {
            let set = |l: &[Value]| l.iter().map(|v| format!("{v:?}")).collect::<BTreeSet<_>>();
            set(x) == set(y)
        }
        _ => a == b,
    }
}

async fn put_tags(c: &Clients, current: &Observed, r: &Reader<'_>) -> Result<(), CloudError> {
    let arn = current.attrs.get("arn").ok_or_else(|| {
        CloudError::Other(format!(
            "{} {}: no ARN known to tag",
            current.kind, current.id
        ))
    })?;
    let mut tags = r.tags()?;
    tags.insert(TAG_ID.to_string(), current.id.to_string());
    c.elasticache
        .add_tags_to_resource()
        .resource_name(arn)
        .set_tags(Some(to_tags(tags)))
        .send()
        .await
        .map_err(|e| api_err("elasticache:AddTagsToResource", e))?;
    Ok(())
}

pub async fn update(
    c: &Clients,
    scope: &Scope,
    current: &Observed,
    fields: &Fields,
    changed: &[String],
) -> Result<Observed, CloudError> {
    let has = |f: &str| changed.iter().any(|c| c == f);
    let r = Reader::new(current.kind, &current.id, fields);
    match current.kind {
        Kind::CacheSubnetGroup => {
            if has("description") || has("subnet_ids") {
                c.elasticache
                    .modify_cache_subnet_group()
                    .cache_subnet_group_name(&current.physical_id)
                    .cache_subnet_group_description(r.str("description")?)
                    .set_subnet_ids(Some(r.strs("subnet_ids")?))
                    .send()
                    .await
                    .map_err(|e| api_err("elasticache:ModifyCacheSubnetGroup", e))?;
            }
            if has("tags") {
                put_tags(c, current, &r).await?;
            }
            let g = describe_subnet_groups(c, Some(&current.physical_id)).await?;
            match g.first() {
                Some(g) => Ok(observe_subnet_group(c, scope, g)
                    .await?
                    .unwrap_or_else(|| current.clone())),
                None => Ok(current.clone()),
            }
        }
        Kind::CacheReplicationGroup => {
            // Compare against what the group is now, not what the plan saw: a retried update
            // (the group was busy with the previous step) sends only what is still missing.
            let rg = describe_replication_groups(c, Some(&current.physical_id))
                .await?
                .into_iter()
                .next()
                .ok_or_else(|| {
                    CloudError::NotFound(format!("replication group {}", current.physical_id))
                })?;
            let tags = list_tags(c, rg.arn().unwrap_or_default()).await?;
            let members = first_member(c, &rg).await?;
            let now =
                replication_group_observed(scope, r.opt_str("engine_version"), &rg, tags, &members)
                    .unwrap_or_else(|| current.clone());
            let differs = |f: &str| has(f) && !same_value(now.fields.get(f), fields.get(f));
            let modify = [
                "description",
                "node_type",
                "engine_version",
                "automatic_failover",
                "multi_az",
                "security_group_ids",
            ];
            if modify.iter().any(|f| differs(f)) {
                // Applied now rather than in the maintenance window (see the rds module docs).
                let mut req = c
                    .elasticache
                    .modify_replication_group()
                    .replication_group_id(&current.physical_id)
                    .apply_immediately(true);
                if differs("description") {
                    req = req.replication_group_description(r.str("description")?);
                }
                if differs("node_type") {
                    req = req.cache_node_type(r.str("node_type")?);
                }
                if differs("engine_version") {
                    req = req.engine_version(r.str("engine_version")?);
                }
                if differs("automatic_failover") {
                    req = req.automatic_failover_enabled(r.bool("automatic_failover")?);
                }
                if differs("multi_az") {
                    req = req.multi_az_enabled(r.bool("multi_az")?);
                }
                if differs("security_group_ids") {
                    req = req.set_security_group_ids(Some(r.strs("security_group_ids")?));
                }
                req.send()
                    .await
                    .map_err(|e| api_err("elasticache:ModifyReplicationGroup", e))?;
            }
            if differs("num_cache_clusters") {
                let want = r.int32("num_cache_clusters")?;
                let have = now
                    .fields
                    .get("num_cache_clusters")
                    .and_then(Value::as_i64)
                    .unwrap_or(0) as i32;
                // Replicas = clusters - 1 (the primary).
                if want > have {
                    c.elasticache
                        .increase_replica_count()
                        .replication_group_id(&current.physical_id)
                        .new_replica_count(want - 1)
                        .apply_immediately(true)
                        .send()
                        .await
                        .map_err(|e| api_err("elasticache:IncreaseReplicaCount", e))?;
                } else {
                    c.elasticache
                        .decrease_replica_count()
                        .replication_group_id(&current.physical_id)
                        .new_replica_count(want - 1)
                        .apply_immediately(true)
                        .send()
                        .await
                        .map_err(|e| api_err("elasticache:DecreaseReplicaCount", e))?;
                }
            }
            if has("tags") {
                put_tags(c, current, &r).await?;
            }
            let mut out = now;
            out.id = current.id.clone();
            Ok(out)
        }
        other => Err(CloudError::Other(format!(
            "elasticache module does not handle {other}"
        ))),
    }
}

// ---------------------------------------------------------------------------------------------
// delete

pub async fn delete(
    c: &Clients,
    _scope: &Scope,
    current: &Observed,
    _options: &DeleteOptions,
) -> Result<(), CloudError> {
    let res = match current.kind {
        Kind::CacheSubnetGroup => c
            .elasticache
            .delete_cache_subnet_group()
            .cache_subnet_group_name(&current.physical_id)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| api_err("elasticache:DeleteCacheSubnetGroup", e)),
        Kind::CacheReplicationGroup => {
            // The cache holds sessions and application caches that Moodle rebuilds: no final
            // snapshot (the database's final snapshot option does not apply to it).
            let res = c
                .elasticache
                .delete_replication_group()
                .replication_group_id(&current.physical_id)
                .retain_primary_cluster(false)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| api_err("elasticache:DeleteReplicationGroup", e));
            match res {
                // Already being deleted.
                Err(CloudError::Api { code, .. }) if code == "InvalidReplicationGroupState" => {
                    let rgs = describe_replication_groups(c, Some(&current.physical_id)).await?;
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
        other => {
            return Err(CloudError::Other(format!(
                "elasticache module does not handle {other}"
            )))
        }
    };
    match res {
        Err(e) if is_not_found(&e) => Ok(()),
        other => other,
    }
}

// ---------------------------------------------------------------------------------------------
// poll

pub async fn poll(
    c: &Clients,
    scope: &Scope,
    current: &Observed,
    want: Want,
) -> Result<Readiness, CloudError> {
    match current.kind {
        Kind::CacheSubnetGroup => {
            let g = describe_subnet_groups(c, Some(&current.physical_id)).await?;
            match (g.first(), want) {
                (None, _) => Ok(Readiness::Gone),
                (Some(_), Want::Gone) => Ok(Readiness::Pending("deleting".into())),
                (Some(g), Want::Ready) => Ok(match observe_subnet_group(c, scope, g).await? {
                    Some(o) => Readiness::Ready(o),
                    None => Readiness::Failed("exists but is not tagged with the stack".into()),
                }),
            }
        }
        Kind::CacheReplicationGroup => {
            let rgs = describe_replication_groups(c, Some(&current.physical_id)).await?;
            let Some(rg) = rgs.first() else {
                return Ok(Readiness::Gone);
            };
            let status = rg.status().unwrap_or_default().to_string();
            match want {
                Want::Gone => Ok(Readiness::Pending(status)),
                Want::Ready if status == "available" => {
                    let tags = list_tags(c, rg.arn().unwrap_or_default()).await?;
                    let m = first_member(c, rg).await?;
                    let version = current.fields.get("engine_version").and_then(Value::as_str);
                    Ok(
                        match replication_group_observed(scope, version, rg, tags, &m) {
                            Some(o) => Readiness::Ready(o),
                            None => Readiness::Failed(
                                "available but no longer tagged with the stack".into(),
                            ),
                        },
                    )
                }
                Want::Ready if status == "create-failed" => Ok(Readiness::Failed(status)),
                Want::Ready => Ok(Readiness::Pending(status)),
            }
        }
        other => Err(CloudError::Other(format!(
            "elasticache module does not handle {other}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redis_versions_compare_on_what_the_stack_asked_for() {
        assert_eq!(canonical_version("7.1.0", Some("7.1")), "7.1");
        assert_eq!(canonical_version("7.1.0", Some("7.0")), "7.1.0");
        assert_eq!(canonical_version("7.1.0", None), "7.1.0");
    }

    #[test]
    fn group_fields_come_from_the_group_its_members_and_tags() {
        use aws_sdk_elasticache::types::{Endpoint, NodeGroup, SecurityGroupMembership};
        let scope = Scope {
            stack: "demo".into(),
            region: "eu-west-1".into(),
        };
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
        let tags = BTreeMap::from([
            (TAG_STACK.to_string(), "demo".to_string()),
            (TAG_ID.to_string(), "cache.redis".to_string()),
            (TAG_AUTH_SECRET.to_string(), "arn:secret".to_string()),
        ]);
        let o =
            replication_group_observed(&scope, Some("7.1"), &rg, tags.clone(), &[member]).unwrap();
        assert_eq!(o.id, "cache.redis");
        assert_eq!(o.fields["engine_version"], Value::str("7.1"));
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
        assert!(replication_group_observed(&scope, None, &rg, other, &[]).is_none());
    }

    #[test]
    fn security_groups_compare_as_sets() {
        let a = Value::strs(["sg-1", "sg-2"]);
        let b = Value::strs(["sg-2", "sg-1"]);
        assert!(same_value(Some(&a), Some(&b)));
        assert!(!same_value(Some(&a), Some(&Value::strs(["sg-1"]))));
        assert!(!same_value(None, Some(&a)));
        assert!(same_value(Some(&Value::Int(2)), Some(&Value::Int(2))));
    }

    #[test]
    fn candidates_need_the_stack_prefix() {
        let scope = Scope {
            stack: "demo".into(),
            region: "eu-west-1".into(),
        };
        let m = candidates(
            &scope,
            &[],
            Kind::CacheReplicationGroup,
            "replication_group_id",
        );
        assert!(m("demo-redis"));
        assert!(!m("demoredis"));
        assert!(!m("other-redis"));
    }
}
