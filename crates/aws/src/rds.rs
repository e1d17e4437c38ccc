//! RDS: DB subnet groups, DB and DB cluster parameter groups, DB instances (standalone engines
//! and Aurora members) and Aurora DB clusters.
//!
//! Finding the stack's resources: RDS describes take `Filters`, but no tag filters. Each kind is
//! listed with ONE paginated describe; only resources named like the stack's (`<stack>-...`, or a
//! name a desired resource of that kind declares) are considered, and of those only the ones
//! whose tags carry `moodlestack:stack` = the stack are returned. Instances and clusters report
//! their `TagList` in the describe; subnet and parameter groups do not, so their tags are read
//! with `ListTagsForResource` (RDS has no batch tag read) for those candidates only.
//!
//! Credentials: instances and clusters are always created with `ManageMasterUserPassword=true`;
//! no request built here ever carries a password. The secret's ARN is the `secret_arn` attr.
//!
//! Updates use `ApplyImmediately=true`: the stack file is the source of truth, `apply` reads every
//! managed field back afterwards, and a change parked until the maintenance window would leave the
//! stack out of sync for up to a week with nothing in the plan saying so. Static parameter group
//! values are the one exception RDS imposes: they are applied `pending-reboot`, and the instance
//! reports that as its `parameter_apply_status` attr.

use crate::fields::{
    api_err, canonical_version, is_not_found, owned_id, sorted_strs, subnet_group_observed,
    tags_value, Reader,
};
use crate::Clients;
use aws_sdk_rds::types::{ApplyMethod, DbCluster, DbInstance, DbSubnetGroup, Parameter, Tag};
use moodlestack_model::{
    CloudError, DeleteOptions, Fields, Kind, Observed, Readiness, Resource, ResourceId, Scope,
    Value, Want, TAG_ID, TAG_STACK,
};
use std::collections::{BTreeMap, BTreeSet};

/// RDS accepts at most 20 parameters per Modify*ParameterGroup call.
const PARAMETER_BATCH: usize = 20;

/// Instance and cluster states that will not resolve by themselves.
const FAILED_STATES: &[&str] = &[
    "failed",
    "incompatible-parameters",
    "incompatible-network",
    "incompatible-restore",
    "incompatible-option-group",
    "inaccessible-encryption-credentials",
    "inaccessible-encryption-credentials-recoverable",
    "restore-error",
];

// ---------------------------------------------------------------------------------------------
// shared helpers

/// The stack's tags plus the identity tags.
fn all_tags(
    scope: &Scope,
    id: &ResourceId,
    r: &Reader,
) -> Result<BTreeMap<String, String>, CloudError> {
    let mut tags = r.tags()?;
    tags.extend(moodlestack_model::identity_tags(scope, id));
    Ok(tags)
}

fn rds_tags(scope: &Scope, id: &ResourceId, r: &Reader) -> Result<Vec<Tag>, CloudError> {
    Ok(all_tags(scope, id, r)?
        .into_iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect())
}

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

/// Names that may belong to the stack: those the desired resources of `kind` declare in
/// `name_field`, and anything with the stack's name prefix (resources the stack no longer
/// declares are found this way, to be deleted).
struct Candidates {
    prefix: String,
    names: BTreeSet<String>,
}

impl Candidates {
    fn new(scope: &Scope, desired: &[Resource], kind: Kind, name_field: &str) -> Self {
        let names = desired
            .iter()
            .filter(|r| r.kind == kind)
            .filter_map(|r| {
                r.fields
                    .get(name_field)
                    .and_then(Value::as_str)
                    .map(str::to_string)
            })
            .collect();
        Candidates {
            prefix: format!("{}-", scope.stack),
            names,
        }
    }
    fn matches(&self, name: &str) -> bool {
        name.starts_with(&self.prefix) || self.names.contains(name)
    }
}

async fn list_tags(c: &Clients, arn: &str) -> Result<BTreeMap<String, String>, CloudError> {
    let out = c
        .rds
        .list_tags_for_resource()
        .resource_name(arn)
        .send()
        .await
        .map_err(|e| api_err("rds:ListTagsForResource", e))?;
    Ok(tag_map(out.tag_list()))
}

/// Adds or overwrites the tags the stack sets (tags are compared as a subset: others' tags stay).
async fn put_tags(c: &Clients, current: &Observed, fields: &Fields) -> Result<(), CloudError> {
    let r = Reader::new(current.kind, &current.id, fields);
    let arn = current.attrs.get("arn").ok_or_else(|| {
        CloudError::Other(format!(
            "{} {}: no ARN known to tag",
            current.kind, current.id
        ))
    })?;
    let mut tags = r.tags()?;
    tags.insert(TAG_ID.to_string(), current.id.to_string());
    c.rds
        .add_tags_to_resource()
        .resource_name(arn)
        .set_tags(Some(
            tags.into_iter()
                .map(|(k, v)| Tag::builder().key(k).value(v).build())
                .collect(),
        ))
        .send()
        .await
        .map_err(|e| api_err("rds:AddTagsToResource", e))?;
    Ok(())
}

fn desired_field<'a>(
    desired: &'a [Resource],
    kind: Kind,
    id: &ResourceId,
    field: &str,
) -> Option<&'a Value> {
    desired
        .iter()
        .find(|r| r.kind == kind && &r.id == id)
        .and_then(|r| r.fields.get(field))
}

fn exists_mismatch(
    kind: Kind,
    name: &str,
    scope: &Scope,
    tags: &BTreeMap<String, String>,
) -> CloudError {
    CloudError::Other(format!(
        "{kind} {name} already exists but is not tagged {TAG_STACK}={} (tags: {:?}); it belongs to \
         something else: rename the stack or delete that resource",
        scope.stack, tags
    ))
}

fn insert_opt(fields: &mut Fields, name: &str, v: Option<Value>) {
    if let Some(v) = v {
        fields.insert(name.to_string(), v);
    }
}

fn lift_or_refuse(
    kind: Kind,
    current: &Observed,
    options: &DeleteOptions,
) -> Result<bool, CloudError> {
    if options.lift_deletion_protection {
        Ok(true)
    } else {
        Err(CloudError::Other(format!(
            "{kind} {} ({}) has deletion protection enabled; deleting it loses its data. Run again \
             with --allow-data-loss to lift the protection and delete it",
            current.id, current.physical_id
        )))
    }
}

// ---------------------------------------------------------------------------------------------
// observe

pub async fn observe(
    c: &Clients,
    scope: &Scope,
    desired: &[Resource],
) -> Result<Vec<Observed>, CloudError> {
    let (a, b, d, e, f) = tokio::try_join!(
        observe_subnet_groups(c, scope, desired),
        observe_parameter_groups(c, scope, desired, Kind::DbParameterGroup),
        observe_parameter_groups(c, scope, desired, Kind::DbClusterParameterGroup),
        observe_clusters(c, scope, desired),
        observe_instances(c, scope, desired),
    )?;
    Ok([a, b, d, e, f].into_iter().flatten().collect())
}

async fn observe_subnet_groups(
    c: &Clients,
    scope: &Scope,
    desired: &[Resource],
) -> Result<Vec<Observed>, CloudError> {
    let cand = Candidates::new(scope, desired, Kind::DbSubnetGroup, "name");
    let mut groups = Vec::new();
    let mut pages = c.rds.describe_db_subnet_groups().into_paginator().send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| api_err("rds:DescribeDBSubnetGroups", e))?;
        groups.extend(
            page.db_subnet_groups()
                .iter()
                .filter(|g| g.db_subnet_group_name().is_some_and(|n| cand.matches(n)))
                .cloned(),
        );
    }
    let mut out = Vec::new();
    for g in groups {
        if let Some(o) = observe_subnet_group(c, scope, &g).await? {
            out.push(o);
        }
    }
    Ok(out)
}

async fn observe_subnet_group(
    c: &Clients,
    scope: &Scope,
    g: &DbSubnetGroup,
) -> Result<Option<Observed>, CloudError> {
    let (Some(name), Some(arn)) = (g.db_subnet_group_name(), g.db_subnet_group_arn()) else {
        return Ok(None);
    };
    let tags = list_tags(c, arn).await?;
    let Some(id) = owned_id(scope, &tags) else {
        return Ok(None);
    };
    Ok(Some(subnet_group_observed(
        Kind::DbSubnetGroup,
        id,
        name,
        arn,
        g.db_subnet_group_description().unwrap_or_default(),
        g.subnets().iter().filter_map(|s| s.subnet_identifier()),
        tags,
        g.subnet_group_status().unwrap_or("Complete"),
    )))
}

/// A DB or DB cluster parameter group as one shape.
struct ParamGroup {
    name: String,
    family: String,
    description: String,
    arn: String,
}

async fn describe_parameter_groups(
    c: &Clients,
    kind: Kind,
    name: Option<&str>,
) -> Result<Vec<ParamGroup>, CloudError> {
    let mut out = Vec::new();
    if kind == Kind::DbParameterGroup {
        let mut pages = c
            .rds
            .describe_db_parameter_groups()
            .set_db_parameter_group_name(name.map(str::to_string))
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| api_err("rds:DescribeDBParameterGroups", e))?;
            out.extend(page.db_parameter_groups().iter().map(|g| {
                ParamGroup {
                    name: g.db_parameter_group_name().unwrap_or_default().to_string(),
                    family: g
                        .db_parameter_group_family()
                        .unwrap_or_default()
                        .to_string(),
                    description: g.description().unwrap_or_default().to_string(),
                    arn: g.db_parameter_group_arn().unwrap_or_default().to_string(),
                }
            }));
        }
    } else {
        let mut pages = c
            .rds
            .describe_db_cluster_parameter_groups()
            .set_db_cluster_parameter_group_name(name.map(str::to_string))
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| api_err("rds:DescribeDBClusterParameterGroups", e))?;
            out.extend(page.db_cluster_parameter_groups().iter().map(|g| {
                ParamGroup {
                    name: g
                        .db_cluster_parameter_group_name()
                        .unwrap_or_default()
                        .to_string(),
                    family: g
                        .db_parameter_group_family()
                        .unwrap_or_default()
                        .to_string(),
                    description: g.description().unwrap_or_default().to_string(),
                    arn: g
                        .db_cluster_parameter_group_arn()
                        .unwrap_or_default()
                        .to_string(),
                }
            }));
        }
    }
    Ok(out)
}

/// The parameters of a group. `user_only`: only those set by the user (`Source=user`; the
/// emulator ignores that and returns what it has, so callers also filter by name).
async fn describe_parameters(
    c: &Clients,
    kind: Kind,
    group: &str,
    user_only: bool,
) -> Result<Vec<Parameter>, CloudError> {
    let source = user_only.then(|| "user".to_string());
    let mut out = Vec::new();
    if kind == Kind::DbParameterGroup {
        let mut pages = c
            .rds
            .describe_db_parameters()
            .db_parameter_group_name(group)
            .set_source(source)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| api_err("rds:DescribeDBParameters", e))?;
            out.extend(page.parameters().iter().cloned());
        }
    } else {
        let mut pages = c
            .rds
            .describe_db_cluster_parameters()
            .db_cluster_parameter_group_name(group)
            .set_source(source)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| api_err("rds:DescribeDBClusterParameters", e))?;
            out.extend(page.parameters().iter().cloned());
        }
    }
    Ok(out)
}

async fn observe_parameter_groups(
    c: &Clients,
    scope: &Scope,
    desired: &[Resource],
    kind: Kind,
) -> Result<Vec<Observed>, CloudError> {
    let cand = Candidates::new(scope, desired, kind, "name");
    let groups: Vec<ParamGroup> = describe_parameter_groups(c, kind, None)
        .await?
        .into_iter()
        .filter(|g| cand.matches(&g.name))
        .collect();
    let mut out = Vec::new();
    for g in groups {
        if let Some(o) = parameter_group_observed(c, scope, desired, kind, &g).await? {
            out.push(o);
        }
    }
    Ok(out)
}

async fn parameter_group_observed(
    c: &Clients,
    scope: &Scope,
    desired: &[Resource],
    kind: Kind,
    g: &ParamGroup,
) -> Result<Option<Observed>, CloudError> {
    let tags = list_tags(c, &g.arn).await?;
    let Some(id) = owned_id(scope, &tags) else {
        return Ok(None);
    };
    // Only the names the desired resource manages are compared (Subset); report those. A group the
    // stack no longer declares reports every user-set parameter.
    let managed: Option<BTreeSet<String>> = desired_field(desired, kind, &id, "parameters")
        .and_then(Value::as_map)
        .map(|m| m.keys().cloned().collect());
    let params = describe_parameters(c, kind, &g.name, true).await?;
    let parameters: BTreeMap<String, Value> = params
        .iter()
        .filter(|p| p.source().is_none_or(|s| s == "user"))
        .filter_map(|p| {
            Some((
                p.parameter_name()?.to_string(),
                p.parameter_value()?.to_string(),
            ))
        })
        .filter(|(n, _)| managed.as_ref().is_none_or(|m| m.contains(n)))
        .map(|(n, v)| (n, Value::Str(v)))
        .collect();
    let mut fields = Fields::new();
    fields.insert("name".into(), Value::str(&g.name));
    fields.insert("family".into(), Value::str(&g.family));
    fields.insert("description".into(), Value::str(&g.description));
    fields.insert("parameters".into(), Value::Map(parameters));
    fields.insert("tags".into(), tags_value(tags));
    Ok(Some(Observed {
        id: id.into(),
        kind,
        physical_id: g.name.clone(),
        fields,
        attrs: BTreeMap::from([("id".into(), g.name.clone()), ("arn".into(), g.arn.clone())]),
        status: "available".into(),
        lifecycle: moodlestack_model::Lifecycle::Ready,
    }))
}

async fn observe_clusters(
    c: &Clients,
    scope: &Scope,
    desired: &[Resource],
) -> Result<Vec<Observed>, CloudError> {
    let cand = Candidates::new(scope, desired, Kind::DbCluster, "identifier");
    let mut out = Vec::new();
    let mut pages = c.rds.describe_db_clusters().into_paginator().send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| api_err("rds:DescribeDBClusters", e))?;
        for cl in page.db_clusters() {
            if !cl.db_cluster_identifier().is_some_and(|n| cand.matches(n)) {
                continue;
            }
            if matches!(cl.status(), Some("deleting" | "deleted")) {
                continue;
            }
            if let Some(o) = cluster_observed(scope, desired, cl) {
                out.push(o);
            }
        }
    }
    Ok(out)
}

fn cluster_observed(scope: &Scope, desired: &[Resource], cl: &DbCluster) -> Option<Observed> {
    let tags = tag_map(cl.tag_list());
    let id = owned_id(scope, &tags)?;
    let ident = cl.db_cluster_identifier()?.to_string();
    let want_version =
        desired_field(desired, Kind::DbCluster, &id, "engine_version").and_then(Value::as_str);
    let mut fields = Fields::new();
    fields.insert("identifier".into(), Value::str(&ident));
    insert_opt(&mut fields, "engine", cl.engine().map(Value::str));
    insert_opt(
        &mut fields,
        "engine_version",
        cl.engine_version()
            .map(|v| Value::Str(canonical_version(v, want_version))),
    );
    insert_opt(
        &mut fields,
        "db_subnet_group_name",
        cl.db_subnet_group().map(Value::str),
    );
    insert_opt(
        &mut fields,
        "cluster_parameter_group_name",
        cl.db_cluster_parameter_group().map(Value::str),
    );
    fields.insert(
        "vpc_security_group_ids".into(),
        sorted_strs(
            cl.vpc_security_groups()
                .iter()
                .filter_map(|g| g.vpc_security_group_id()),
        ),
    );
    insert_opt(
        &mut fields,
        "master_username",
        cl.master_username().map(Value::str),
    );
    insert_opt(
        &mut fields,
        "database_name",
        cl.database_name().map(Value::str),
    );
    insert_opt(&mut fields, "port", cl.port().map(|p| Value::Int(p.into())));
    insert_opt(
        &mut fields,
        "backup_retention_period",
        cl.backup_retention_period().map(|p| Value::Int(p.into())),
    );
    insert_opt(
        &mut fields,
        "deletion_protection",
        cl.deletion_protection().map(Value::Bool),
    );
    insert_opt(
        &mut fields,
        "storage_encrypted",
        cl.storage_encrypted().map(Value::Bool),
    );
    fields.insert("tags".into(), tags_value(tags));
    let mut attrs = BTreeMap::from([("id".to_string(), ident.clone())]);
    let mut put = |k: &str, v: Option<String>| {
        if let Some(v) = v {
            attrs.insert(k.to_string(), v);
        }
    };
    put("arn", cl.db_cluster_arn().map(str::to_string));
    put("endpoint", cl.endpoint().map(str::to_string));
    put("reader_endpoint", cl.reader_endpoint().map(str::to_string));
    put("port", cl.port().map(|p| p.to_string()));
    put(
        "secret_arn",
        cl.master_user_secret()
            .and_then(|s| s.secret_arn())
            .map(str::to_string),
    );
    Some(Observed {
        id: id.into(),
        kind: Kind::DbCluster,
        physical_id: ident,
        fields,
        attrs,
        status: cl.status().unwrap_or_default().to_string(),
        lifecycle: moodlestack_model::Lifecycle::Ready,
    })
}

async fn observe_instances(
    c: &Clients,
    scope: &Scope,
    desired: &[Resource],
) -> Result<Vec<Observed>, CloudError> {
    let cand = Candidates::new(scope, desired, Kind::DbInstance, "identifier");
    let mut out = Vec::new();
    let mut pages = c.rds.describe_db_instances().into_paginator().send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| api_err("rds:DescribeDBInstances", e))?;
        for db in page.db_instances() {
            if !db.db_instance_identifier().is_some_and(|n| cand.matches(n)) {
                continue;
            }
            if matches!(db.db_instance_status(), Some("deleting" | "deleted")) {
                continue;
            }
            if let Some(o) = instance_observed(scope, desired, db) {
                out.push(o);
            }
        }
    }
    Ok(out)
}

fn instance_observed(scope: &Scope, desired: &[Resource], db: &DbInstance) -> Option<Observed> {
    let tags = tag_map(db.tag_list());
    let id = owned_id(scope, &tags)?;
    let ident = db.db_instance_identifier()?.to_string();
    let want_version =
        desired_field(desired, Kind::DbInstance, &id, "engine_version").and_then(Value::as_str);
    let int = |v: Option<i32>| v.map(|v| Value::Int(v.into()));
    let mut fields = Fields::new();
    fields.insert("identifier".into(), Value::str(&ident));
    insert_opt(&mut fields, "engine", db.engine().map(Value::str));
    insert_opt(
        &mut fields,
        "engine_version",
        db.engine_version()
            .map(|v| Value::Str(canonical_version(v, want_version))),
    );
    insert_opt(
        &mut fields,
        "instance_class",
        db.db_instance_class().map(Value::str),
    );
    insert_opt(
        &mut fields,
        "cluster_identifier",
        db.db_cluster_identifier().map(Value::str),
    );
    let member = db.db_cluster_identifier().is_some();
    if !member {
        // Aurora members have no storage, backup or credential settings of their own (the cluster
        // holds them), so those fields are reported for standalone instances only.
        insert_opt(
            &mut fields,
            "allocated_storage",
            int(db.allocated_storage()),
        );
        insert_opt(
            &mut fields,
            "max_allocated_storage",
            int(db.max_allocated_storage()),
        );
        insert_opt(
            &mut fields,
            "storage_type",
            db.storage_type().map(Value::str),
        );
        insert_opt(
            &mut fields,
            "storage_encrypted",
            db.storage_encrypted().map(Value::Bool),
        );
        insert_opt(&mut fields, "multi_az", db.multi_az().map(Value::Bool));
        insert_opt(
            &mut fields,
            "backup_retention_period",
            int(db.backup_retention_period()),
        );
        insert_opt(
            &mut fields,
            "deletion_protection",
            db.deletion_protection().map(Value::Bool),
        );
        fields.insert(
            "vpc_security_group_ids".into(),
            sorted_strs(
                db.vpc_security_groups()
                    .iter()
                    .filter_map(|g| g.vpc_security_group_id()),
            ),
        );
        insert_opt(
            &mut fields,
            "master_username",
            db.master_username().map(Value::str),
        );
        insert_opt(&mut fields, "db_name", db.db_name().map(Value::str));
        insert_opt(
            &mut fields,
            "port",
            int(db
                .endpoint()
                .and_then(|e| e.port())
                .or(db.db_instance_port().filter(|p| *p != 0))),
        );
    }
    insert_opt(
        &mut fields,
        "db_subnet_group_name",
        db.db_subnet_group()
            .and_then(|g| g.db_subnet_group_name())
            .map(Value::str),
    );
    insert_opt(
        &mut fields,
        "parameter_group_name",
        db.db_parameter_groups()
            .first()
            .and_then(|g| g.db_parameter_group_name())
            .map(Value::str),
    );
    insert_opt(
        &mut fields,
        "publicly_accessible",
        db.publicly_accessible().map(Value::Bool),
    );
    fields.insert("tags".into(), tags_value(tags));
    let mut attrs = BTreeMap::from([("id".to_string(), ident.clone())]);
    let mut put = |k: &str, v: Option<String>| {
        if let Some(v) = v {
            attrs.insert(k.to_string(), v);
        }
    };
    put("arn", db.db_instance_arn().map(str::to_string));
    put(
        "endpoint",
        db.endpoint().and_then(|e| e.address()).map(str::to_string),
    );
    put(
        "port",
        db.endpoint().and_then(|e| e.port()).map(|p| p.to_string()),
    );
    put(
        "secret_arn",
        db.master_user_secret()
            .and_then(|s| s.secret_arn())
            .map(str::to_string),
    );
    put(
        "parameter_apply_status",
        db.db_parameter_groups()
            .first()
            .and_then(|g| g.parameter_apply_status())
            .map(str::to_string),
    );
    Some(Observed {
        id: id.into(),
        kind: Kind::DbInstance,
        physical_id: ident,
        fields,
        attrs,
        status: db.db_instance_status().unwrap_or_default().to_string(),
        lifecycle: moodlestack_model::Lifecycle::Ready,
    })
}

// ---------------------------------------------------------------------------------------------
// create

pub async fn create(
    c: &Clients,
    scope: &Scope,
    id: &ResourceId,
    kind: Kind,
    fields: &Fields,
) -> Result<Observed, CloudError> {
    match kind {
        Kind::DbSubnetGroup => create_subnet_group(c, scope, id, fields).await,
        Kind::DbParameterGroup | Kind::DbClusterParameterGroup => {
            create_parameter_group(c, scope, id, kind, fields).await
        }
        Kind::DbCluster => create_cluster(c, scope, id, fields).await,
        Kind::DbInstance => create_instance(c, scope, id, fields).await,
        other => Err(CloudError::Other(format!(
            "rds module does not handle {other}"
        ))),
    }
}

/// Adopts a resource that already exists under its deterministic name (a crash between create
/// and the next observe) when it carries the stack's tags and the same logical id.
fn adopt(
    kind: Kind,
    scope: &Scope,
    id: &ResourceId,
    name: &str,
    o: Option<Observed>,
    tags: &BTreeMap<String, String>,
) -> Result<Observed, CloudError> {
    match o {
        Some(o) if &o.id == id => Ok(o),
        _ => Err(exists_mismatch(kind, name, scope, tags)),
    }
}

async fn create_subnet_group(
    c: &Clients,
    scope: &Scope,
    id: &ResourceId,
    fields: &Fields,
) -> Result<Observed, CloudError> {
    let r = Reader::new(Kind::DbSubnetGroup, id, fields);
    let name = r.str("name")?;
    let res = c
        .rds
        .create_db_subnet_group()
        .db_subnet_group_name(name)
        .db_subnet_group_description(r.str("description")?)
        .set_subnet_ids(Some(r.strs("subnet_ids")?))
        .set_tags(Some(rds_tags(scope, id, &r)?))
        .send()
        .await;
    match res {
        Ok(out) => {
            let g = out.db_subnet_group();
            let arn = g
                .and_then(|g| g.db_subnet_group_arn())
                .unwrap_or_default()
                .to_string();
            let mut fields = fields.clone();
            fields.insert("tags".into(), tags_value(all_tags(scope, id, &r)?));
            Ok(Observed {
                id: id.clone().into(),
                kind: Kind::DbSubnetGroup,
                physical_id: name.to_string(),
                fields,
                attrs: BTreeMap::from([("id".into(), name.to_string()), ("arn".into(), arn)]),
                status: g
                    .and_then(|g| g.subnet_group_status())
                    .unwrap_or("Complete")
                    .to_string(),
                lifecycle: moodlestack_model::Lifecycle::Ready,
            })
        }
        Err(e) => {
            let err = api_err("rds:CreateDBSubnetGroup", e);
            if !matches!(&err, CloudError::Api { code, .. } if code.starts_with("DBSubnetGroupAlreadyExists"))
            {
                return Err(err);
            }
            let g = describe_subnet_group(c, name).await?.ok_or(err)?;
            let tags = list_tags(c, g.db_subnet_group_arn().unwrap_or_default()).await?;
            let o = observe_subnet_group(c, scope, &g).await?;
            adopt(Kind::DbSubnetGroup, scope, id, name, o, &tags)
        }
    }
}

async fn describe_subnet_group(
    c: &Clients,
    name: &str,
) -> Result<Option<DbSubnetGroup>, CloudError> {
    match c
        .rds
        .describe_db_subnet_groups()
        .db_subnet_group_name(name)
        .send()
        .await
    {
        Ok(out) => Ok(out.db_subnet_groups().first().cloned()),
        Err(e) => {
            let err = api_err("rds:DescribeDBSubnetGroups", e);
            if is_not_found(&err) {
                Ok(None)
            } else {
                Err(err)
            }
        }
    }
}

async fn create_parameter_group(
    c: &Clients,
    scope: &Scope,
    id: &ResourceId,
    kind: Kind,
    fields: &Fields,
) -> Result<Observed, CloudError> {
    let r = Reader::new(kind, id, fields);
    let name = r.str("name")?;
    let tags = rds_tags(scope, id, &r)?;
    let (res, op) = if kind == Kind::DbParameterGroup {
        let res = c
            .rds
            .create_db_parameter_group()
            .db_parameter_group_name(name)
            .db_parameter_group_family(r.str("family")?)
            .description(r.str("description")?)
            .set_tags(Some(tags))
            .send()
            .await
            .map(|o| {
                o.db_parameter_group()
                    .and_then(|g| g.db_parameter_group_arn())
                    .map(str::to_string)
            })
            .map_err(|e| api_err("rds:CreateDBParameterGroup", e));
        (res, "DBParameterGroupAlreadyExists")
    } else {
        let res = c
            .rds
            .create_db_cluster_parameter_group()
            .db_cluster_parameter_group_name(name)
            .db_parameter_group_family(r.str("family")?)
            .description(r.str("description")?)
            .set_tags(Some(tags))
            .send()
            .await
            .map(|o| {
                o.db_cluster_parameter_group()
                    .and_then(|g| g.db_cluster_parameter_group_arn())
                    .map(str::to_string)
            })
            .map_err(|e| api_err("rds:CreateDBClusterParameterGroup", e));
        (res, "DBParameterGroupAlreadyExists")
    };
    match res {
        Ok(_) => {}
        Err(CloudError::Api { code, .. }) if code.starts_with(op) => {
            // Adopt only a group of ours; then set its parameters as below (idempotent).
            let g = describe_parameter_groups(c, kind, Some(name)).await?;
            let g = g.first().ok_or_else(|| {
                CloudError::Other(format!("{kind} {name} exists but cannot be described"))
            })?;
            let tags = list_tags(c, &g.arn).await?;
            if owned_id(scope, &tags).as_ref() != Some(id) {
                return Err(exists_mismatch(kind, name, scope, &tags));
            }
        }
        Err(e) => return Err(e),
    }
    let wanted = r.string_map("parameters")?;
    set_parameters(c, kind, name, &wanted).await?;
    let g = describe_parameter_groups(c, kind, Some(name)).await?;
    let g = g
        .first()
        .ok_or_else(|| CloudError::Other(format!("{kind} {name} vanished right after creation")))?;
    let desired = [Resource {
        id: id.clone(),
        kind,
        fields: fields.clone(),
        extra_deps: vec![],
    }];
    parameter_group_observed(c, scope, &desired, kind, g)
        .await?
        .ok_or_else(|| CloudError::Other(format!("{kind} {name} was created without its tags")))
}

/// How a parameter change must be applied: static parameters only on reboot.
fn apply_method(apply_type: Option<&str>) -> ApplyMethod {
    match apply_type {
        Some(t) if t.eq_ignore_ascii_case("dynamic") => ApplyMethod::Immediate,
        // Static, or not known: `pending-reboot` is valid for both kinds (`immediate` is refused
        // for static parameters).
        _ => ApplyMethod::PendingReboot,
    }
}

/// Sets `wanted` on the group in batches of at most 20, each with the apply method its apply type
/// calls for (read from the group's own parameter list, which carries the engine defaults with
/// their `ApplyType`).
async fn set_parameters(
    c: &Clients,
    kind: Kind,
    group: &str,
    wanted: &BTreeMap<String, String>,
) -> Result<(), CloudError> {
    if wanted.is_empty() {
        return Ok(());
    }
    let known = describe_parameters(c, kind, group, false).await?;
    let apply_types: BTreeMap<&str, Option<&str>> = known
        .iter()
        .filter_map(|p| Some((p.parameter_name()?, p.apply_type())))
        .collect();
    let params: Vec<Parameter> = wanted
        .iter()
        .map(|(n, v)| {
            Parameter::builder()
                .parameter_name(n)
                .parameter_value(v)
                .apply_method(apply_method(apply_types.get(n.as_str()).copied().flatten()))
                .build()
        })
        .collect();
    for batch in params.chunks(PARAMETER_BATCH) {
        if kind == Kind::DbParameterGroup {
            c.rds
                .modify_db_parameter_group()
                .db_parameter_group_name(group)
                .set_parameters(Some(batch.to_vec()))
                .send()
                .await
                .map_err(|e| api_err("rds:ModifyDBParameterGroup", e))?;
        } else {
            c.rds
                .modify_db_cluster_parameter_group()
                .db_cluster_parameter_group_name(group)
                .set_parameters(Some(batch.to_vec()))
                .send()
                .await
                .map_err(|e| api_err("rds:ModifyDBClusterParameterGroup", e))?;
        }
    }
    Ok(())
}

async fn create_cluster(
    c: &Clients,
    scope: &Scope,
    id: &ResourceId,
    fields: &Fields,
) -> Result<Observed, CloudError> {
    let r = Reader::new(Kind::DbCluster, id, fields);
    let ident = r.str("identifier")?;
    let res = c
        .rds
        .create_db_cluster()
        .db_cluster_identifier(ident)
        .engine(r.str("engine")?)
        .set_engine_version(r.opt_str("engine_version").map(str::to_string))
        .db_subnet_group_name(r.str("db_subnet_group_name")?)
        .set_db_cluster_parameter_group_name(
            r.opt_str("cluster_parameter_group_name")
                .map(str::to_string),
        )
        .set_vpc_security_group_ids(Some(r.strs("vpc_security_group_ids")?))
        .master_username(r.str("master_username")?)
        // The password is generated and kept by RDS in Secrets Manager: never sent from here.
        .manage_master_user_password(true)
        .set_database_name(r.opt_str("database_name").map(str::to_string))
        .set_port(r.opt_int("port").map(|p| p as i32))
        .set_backup_retention_period(r.opt_int("backup_retention_period").map(|p| p as i32))
        .set_deletion_protection(r.opt_bool("deletion_protection"))
        .storage_encrypted(r.opt_bool("storage_encrypted").unwrap_or(true))
        .set_tags(Some(rds_tags(scope, id, &r)?))
        .send()
        .await;
    let desired = [Resource {
        id: id.clone(),
        kind: Kind::DbCluster,
        fields: fields.clone(),
        extra_deps: vec![],
    }];
    match res {
        Ok(out) => out
            .db_cluster()
            .and_then(|cl| cluster_observed(scope, &desired, cl))
            .ok_or_else(|| {
                CloudError::Other(format!(
                    "rds:CreateDBCluster {ident}: the answer has no cluster"
                ))
            }),
        Err(e) => {
            let err = api_err("rds:CreateDBCluster", e);
            if !matches!(&err, CloudError::Api { code, .. } if code.starts_with("DBClusterAlreadyExists"))
            {
                return Err(err);
            }
            let cl = describe_cluster(c, ident).await?.ok_or(err)?;
            adopt(
                Kind::DbCluster,
                scope,
                id,
                ident,
                cluster_observed(scope, &desired, &cl),
                &tag_map(cl.tag_list()),
            )
        }
    }
}

async fn describe_cluster(c: &Clients, ident: &str) -> Result<Option<DbCluster>, CloudError> {
    match c
        .rds
        .describe_db_clusters()
        .db_cluster_identifier(ident)
        .send()
        .await
    {
        Ok(out) => Ok(out.db_clusters().first().cloned()),
        Err(e) => {
            let err = api_err("rds:DescribeDBClusters", e);
            if is_not_found(&err) {
                Ok(None)
            } else {
                Err(err)
            }
        }
    }
}

async fn describe_instance(c: &Clients, ident: &str) -> Result<Option<DbInstance>, CloudError> {
    match c
        .rds
        .describe_db_instances()
        .db_instance_identifier(ident)
        .send()
        .await
    {
        Ok(out) => Ok(out.db_instances().first().cloned()),
        Err(e) => {
            let err = api_err("rds:DescribeDBInstances", e);
            if is_not_found(&err) {
                Ok(None)
            } else {
                Err(err)
            }
        }
    }
}

async fn create_instance(
    c: &Clients,
    scope: &Scope,
    id: &ResourceId,
    fields: &Fields,
) -> Result<Observed, CloudError> {
    let r = Reader::new(Kind::DbInstance, id, fields);
    let ident = r.str("identifier")?;
    let member = r.has("cluster_identifier");
    let mut req = c
        .rds
        .create_db_instance()
        .db_instance_identifier(ident)
        .engine(r.str("engine")?)
        .set_engine_version(r.opt_str("engine_version").map(str::to_string))
        .db_instance_class(r.str("instance_class")?)
        .set_db_subnet_group_name(r.opt_str("db_subnet_group_name").map(str::to_string))
        .set_db_parameter_group_name(r.opt_str("parameter_group_name").map(str::to_string))
        .publicly_accessible(r.opt_bool("publicly_accessible").unwrap_or(false))
        .set_tags(Some(rds_tags(scope, id, &r)?));
    if member {
        // Storage, backups, credentials, network security and deletion protection belong to the
        // cluster; RDS refuses them on a member instance.
        req = req.db_cluster_identifier(r.str("cluster_identifier")?);
    } else {
        req = req
            .allocated_storage(r.int32("allocated_storage")?)
            // Storage autoscaling only when the stack sets a ceiling.
            .set_max_allocated_storage(
                r.opt_int("max_allocated_storage")
                    .filter(|m| *m > 0)
                    .map(|m| m as i32),
            )
            .storage_type(r.opt_str("storage_type").unwrap_or("gp3"))
            .storage_encrypted(r.opt_bool("storage_encrypted").unwrap_or(true))
            .multi_az(r.opt_bool("multi_az").unwrap_or(false))
            .set_backup_retention_period(r.opt_int("backup_retention_period").map(|p| p as i32))
            .set_deletion_protection(r.opt_bool("deletion_protection"))
            .set_vpc_security_group_ids(Some(r.strs("vpc_security_group_ids")?))
            .master_username(r.str("master_username")?)
            // The password is generated and kept by RDS in Secrets Manager: never sent from here.
            .manage_master_user_password(true)
            .set_db_name(r.opt_str("db_name").map(str::to_string))
            .set_port(r.opt_int("port").map(|p| p as i32));
    }
    let desired = [Resource {
        id: id.clone(),
        kind: Kind::DbInstance,
        fields: fields.clone(),
        extra_deps: vec![],
    }];
    match req.send().await {
        Ok(out) => out
            .db_instance()
            .and_then(|db| instance_observed(scope, &desired, db))
            .ok_or_else(|| {
                CloudError::Other(format!(
                    "rds:CreateDBInstance {ident}: the answer has no instance"
                ))
            }),
        Err(e) => {
            let err = api_err("rds:CreateDBInstance", e);
            if !matches!(&err, CloudError::Api { code, .. } if code.starts_with("DBInstanceAlreadyExists"))
            {
                return Err(err);
            }
            let db = describe_instance(c, ident).await?.ok_or(err)?;
            adopt(
                Kind::DbInstance,
                scope,
                id,
                ident,
                instance_observed(scope, &desired, &db),
                &tag_map(db.tag_list()),
            )
        }
    }
}

// ---------------------------------------------------------------------------------------------
// update

pub async fn update(
    c: &Clients,
    scope: &Scope,
    current: &Observed,
    fields: &Fields,
    changed: &[String],
) -> Result<Observed, CloudError> {
    let has = |f: &str| changed.iter().any(|c| c == f);
    let r = Reader::new(current.kind, &current.id, fields);
    let desired = [Resource {
        id: current.id.to_resource_id(),
        kind: current.kind,
        fields: fields.clone(),
        extra_deps: vec![],
    }];
    let mut out = current.clone();
    match current.kind {
        Kind::DbSubnetGroup => {
            if has("description") || has("subnet_ids") {
                c.rds
                    .modify_db_subnet_group()
                    .db_subnet_group_name(&current.physical_id)
                    .db_subnet_group_description(r.str("description")?)
                    .set_subnet_ids(Some(r.strs("subnet_ids")?))
                    .send()
                    .await
                    .map_err(|e| api_err("rds:ModifyDBSubnetGroup", e))?;
            }
            if has("tags") {
                put_tags(c, current, fields).await?;
            }
            if let Some(g) = describe_subnet_group(c, &current.physical_id).await? {
                if let Some(o) = observe_subnet_group(c, scope, &g).await? {
                    out = o;
                }
            }
        }
        Kind::DbParameterGroup | Kind::DbClusterParameterGroup => {
            if has("parameters") {
                let wanted = r.string_map("parameters")?;
                let have = current.fields.get("parameters").and_then(Value::as_map);
                let diff: BTreeMap<String, String> = wanted
                    .into_iter()
                    .filter(|(k, v)| {
                        have.and_then(|h| h.get(k)).and_then(Value::as_str) != Some(v.as_str())
                    })
                    .collect();
                set_parameters(c, current.kind, &current.physical_id, &diff).await?;
            }
            if has("tags") {
                put_tags(c, current, fields).await?;
            }
            let g = describe_parameter_groups(c, current.kind, Some(&current.physical_id)).await?;
            if let Some(g) = g.first() {
                if let Some(o) =
                    parameter_group_observed(c, scope, &desired, current.kind, g).await?
                {
                    out = o;
                }
            }
        }
        Kind::DbCluster => {
            let modify = [
                "engine_version",
                "cluster_parameter_group_name",
                "vpc_security_group_ids",
                "backup_retention_period",
                "deletion_protection",
            ];
            if modify.iter().any(|f| has(f)) {
                let mut req = c
                    .rds
                    .modify_db_cluster()
                    .db_cluster_identifier(&current.physical_id)
                    // See the module docs: changes are applied now, not in the maintenance window.
                    .apply_immediately(true);
                if has("engine_version") {
                    req = req
                        .engine_version(r.str("engine_version")?)
                        .allow_major_version_upgrade(true);
                }
                if has("cluster_parameter_group_name") {
                    req =
                        req.db_cluster_parameter_group_name(r.str("cluster_parameter_group_name")?);
                }
                if has("vpc_security_group_ids") {
                    req = req.set_vpc_security_group_ids(Some(r.strs("vpc_security_group_ids")?));
                }
                if has("backup_retention_period") {
                    req = req.backup_retention_period(r.int32("backup_retention_period")?);
                }
                if has("deletion_protection") {
                    req = req.deletion_protection(r.bool("deletion_protection")?);
                }
                let res = req
                    .send()
                    .await
                    .map_err(|e| api_err("rds:ModifyDBCluster", e))?;
                if let Some(o) = res
                    .db_cluster()
                    .and_then(|cl| cluster_observed(scope, &desired, cl))
                {
                    out = o;
                }
            }
            if has("tags") {
                put_tags(c, current, fields).await?;
            }
        }
        Kind::DbInstance => {
            let modify = [
                "engine_version",
                "instance_class",
                "allocated_storage",
                "max_allocated_storage",
                "storage_type",
                "multi_az",
                "backup_retention_period",
                "deletion_protection",
                "parameter_group_name",
                "vpc_security_group_ids",
                "publicly_accessible",
            ];
            if modify.iter().any(|f| has(f)) {
                let mut req = c
                    .rds
                    .modify_db_instance()
                    .db_instance_identifier(&current.physical_id)
                    // See the module docs: changes are applied now, not in the maintenance window.
                    .apply_immediately(true);
                if has("engine_version") {
                    req = req
                        .engine_version(r.str("engine_version")?)
                        .allow_major_version_upgrade(true);
                }
                if has("instance_class") {
                    req = req.db_instance_class(r.str("instance_class")?);
                }
                if has("allocated_storage") {
                    req = req.allocated_storage(r.int32("allocated_storage")?);
                }
                if has("max_allocated_storage") {
                    // 0 turns storage autoscaling off (the ceiling equal to the storage does too;
                    // RDS takes the storage size for that).
                    let max = r.opt_int("max_allocated_storage").filter(|m| *m > 0);
                    let max = match max {
                        Some(m) => m as i32,
                        None => r.int32("allocated_storage")?,
                    };
                    req = req.max_allocated_storage(max);
                }
                if has("storage_type") {
                    req = req.storage_type(r.str("storage_type")?);
                }
                if has("multi_az") {
                    req = req.multi_az(r.bool("multi_az")?);
                }
                if has("backup_retention_period") {
                    req = req.backup_retention_period(r.int32("backup_retention_period")?);
                }
                if has("deletion_protection") {
                    req = req.deletion_protection(r.bool("deletion_protection")?);
                }
                if has("parameter_group_name") {
                    req = req.db_parameter_group_name(r.str("parameter_group_name")?);
                }
                if has("vpc_security_group_ids") {
                    req = req.set_vpc_security_group_ids(Some(r.strs("vpc_security_group_ids")?));
                }
                if has("publicly_accessible") {
                    req = req.publicly_accessible(r.bool("publicly_accessible")?);
                }
                let res = req
                    .send()
                    .await
                    .map_err(|e| api_err("rds:ModifyDBInstance", e))?;
                if let Some(o) = res
                    .db_instance()
                    .and_then(|db| instance_observed(scope, &desired, db))
                {
                    out = o;
                }
            }
            if has("tags") {
                put_tags(c, current, fields).await?;
            }
        }
        other => {
            return Err(CloudError::Other(format!(
                "rds module does not handle {other}"
            )))
        }
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// delete

fn gone_ok(res: Result<(), CloudError>) -> Result<(), CloudError> {
    match res {
        Err(e) if is_not_found(&e) => Ok(()),
        other => other,
    }
}

pub async fn delete(
    c: &Clients,
    _scope: &Scope,
    current: &Observed,
    options: &DeleteOptions,
) -> Result<(), CloudError> {
    let name = current.physical_id.as_str();
    match current.kind {
        Kind::DbSubnetGroup => gone_ok(
            c.rds
                .delete_db_subnet_group()
                .db_subnet_group_name(name)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| api_err("rds:DeleteDBSubnetGroup", e)),
        ),
        Kind::DbParameterGroup => gone_ok(
            c.rds
                .delete_db_parameter_group()
                .db_parameter_group_name(name)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| api_err("rds:DeleteDBParameterGroup", e)),
        ),
        Kind::DbClusterParameterGroup => gone_ok(
            c.rds
                .delete_db_cluster_parameter_group()
                .db_cluster_parameter_group_name(name)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| api_err("rds:DeleteDBClusterParameterGroup", e)),
        ),
        Kind::DbInstance => {
            let Some(db) = describe_instance(c, name).await? else {
                return Ok(());
            };
            if matches!(db.db_instance_status(), Some("deleting")) {
                return Ok(());
            }
            let member = db.db_cluster_identifier().is_some();
            if db.deletion_protection() == Some(true)
                && lift_or_refuse(Kind::DbInstance, current, options)?
            {
                c.rds
                    .modify_db_instance()
                    .db_instance_identifier(name)
                    .deletion_protection(false)
                    .apply_immediately(true)
                    .send()
                    .await
                    .map_err(|e| api_err("rds:ModifyDBInstance", e))?;
            }
            let mut req = c.rds.delete_db_instance().db_instance_identifier(name);
            if !member {
                // Members are snapshotted with their cluster; RDS refuses snapshot options on them.
                req = match &options.final_snapshot_id {
                    Some(snap) => req
                        .final_db_snapshot_identifier(snap)
                        .skip_final_snapshot(false),
                    None => req.skip_final_snapshot(true),
                };
            }
            gone_ok(
                req.send()
                    .await
                    .map(|_| ())
                    .map_err(|e| api_err("rds:DeleteDBInstance", e)),
            )
        }
        Kind::DbCluster => {
            let Some(cl) = describe_cluster(c, name).await? else {
                return Ok(());
            };
            if matches!(cl.status(), Some("deleting")) {
                return Ok(());
            }
            if cl.deletion_protection() == Some(true)
                && lift_or_refuse(Kind::DbCluster, current, options)?
            {
                c.rds
                    .modify_db_cluster()
                    .db_cluster_identifier(name)
                    .deletion_protection(false)
                    .apply_immediately(true)
                    .send()
                    .await
                    .map_err(|e| api_err("rds:ModifyDBCluster", e))?;
            }
            let req = c.rds.delete_db_cluster().db_cluster_identifier(name);
            let req = match &options.final_snapshot_id {
                Some(snap) => req
                    .final_db_snapshot_identifier(snap)
                    .skip_final_snapshot(false),
                None => req.skip_final_snapshot(true),
            };
            gone_ok(
                req.send()
                    .await
                    .map(|_| ())
                    .map_err(|e| api_err("rds:DeleteDBCluster", e)),
            )
        }
        other => Err(CloudError::Other(format!(
            "rds module does not handle {other}"
        ))),
    }
}

// ---------------------------------------------------------------------------------------------
// poll

/// The managed fields a modification applied immediately has not reached yet. Right after
/// ModifyDBInstance the status can still read `available` while these are set; the instance is
/// not ready (a read-back would see the old values) until they are applied.
fn pending_instance_changes(db: &DbInstance) -> Vec<&'static str> {
    let Some(p) = db.pending_modified_values() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    if p.db_instance_class().is_some() {
        out.push("instance_class");
    }
    if p.allocated_storage().is_some() {
        out.push("allocated_storage");
    }
    if p.storage_type().is_some() {
        out.push("storage_type");
    }
    if p.multi_az().is_some() {
        out.push("multi_az");
    }
    if p.backup_retention_period().is_some() {
        out.push("backup_retention_period");
    }
    if p.engine_version().is_some() {
        out.push("engine_version");
    }
    if p.db_subnet_group_name().is_some() {
        out.push("db_subnet_group_name");
    }
    out
}

fn pending_cluster_changes(cl: &DbCluster) -> Vec<&'static str> {
    let Some(p) = cl.pending_modified_values() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    if p.engine_version().is_some() {
        out.push("engine_version");
    }
    if p.backup_retention_period().is_some() {
        out.push("backup_retention_period");
    }
    out
}

/// States in which the database serves clients with every applied setting: `available`, and
/// `storage-optimization` (after a storage change: the new size is in effect, RDS reorganizes in
/// the background for up to hours).
fn serving(status: &str) -> bool {
    matches!(status, "available" | "storage-optimization")
}

fn readiness(status: &str, pending: &[&str], want: Want, observed: Option<Observed>) -> Readiness {
    match want {
        Want::Gone => match status {
            "deleted" => Readiness::Gone,
            s => Readiness::Pending(s.to_string()),
        },
        Want::Ready => {
            if FAILED_STATES.contains(&status) {
                Readiness::Failed(status.to_string())
            } else if serving(status) && !pending.is_empty() {
                Readiness::Pending(format!("{status}, applying {}", pending.join(", ")))
            } else if serving(status) {
                match observed {
                    Some(o) => Readiness::Ready(o),
                    None => {
                        Readiness::Failed("available but no longer tagged with the stack".into())
                    }
                }
            } else {
                Readiness::Pending(status.to_string())
            }
        }
    }
}

pub async fn poll(
    c: &Clients,
    scope: &Scope,
    current: &Observed,
    want: Want,
) -> Result<Readiness, CloudError> {
    let name = current.physical_id.as_str();
    // The current fields stand in for the desired ones (engine version canonicalization).
    let desired = [Resource {
        id: current.id.to_resource_id(),
        kind: current.kind,
        fields: current.fields.clone(),
        extra_deps: vec![],
    }];
    match current.kind {
        Kind::DbSubnetGroup => match describe_subnet_group(c, name).await? {
            None => Ok(Readiness::Gone),
            Some(_) if want == Want::Gone => Ok(Readiness::Pending("deleting".into())),
            Some(g) => Ok(match observe_subnet_group(c, scope, &g).await? {
                Some(o) => Readiness::Ready(o),
                None => Readiness::Failed("exists but is not tagged with the stack".into()),
            }),
        },
        Kind::DbParameterGroup | Kind::DbClusterParameterGroup => {
            let groups = match describe_parameter_groups(c, current.kind, Some(name)).await {
                Ok(g) => g,
                Err(e) if is_not_found(&e) => Vec::new(),
                Err(e) => return Err(e),
            };
            match groups.first() {
                None => Ok(Readiness::Gone),
                Some(_) if want == Want::Gone => Ok(Readiness::Pending("deleting".into())),
                Some(g) => Ok(
                    match parameter_group_observed(c, scope, &desired, current.kind, g).await? {
                        Some(o) => Readiness::Ready(o),
                        None => Readiness::Failed("exists but is not tagged with the stack".into()),
                    },
                ),
            }
        }
        Kind::DbCluster => match describe_cluster(c, name).await? {
            None => Ok(Readiness::Gone),
            Some(cl) => Ok(readiness(
                cl.status().unwrap_or_default(),
                &pending_cluster_changes(&cl),
                want,
                cluster_observed(scope, &desired, &cl),
            )),
        },
        Kind::DbInstance => match describe_instance(c, name).await? {
            None => Ok(Readiness::Gone),
            Some(db) => Ok(readiness(
                db.db_instance_status().unwrap_or_default(),
                &pending_instance_changes(&db),
                want,
                instance_observed(scope, &desired, &db),
            )),
        },
        other => Err(CloudError::Other(format!(
            "rds module does not handle {other}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_versions_compare_on_what_the_stack_asked_for() {
        assert_eq!(canonical_version("8.0.39", Some("8.0")), "8.0");
        assert_eq!(canonical_version("8.0", Some("8.0")), "8.0");
        assert_eq!(canonical_version("8.4.3", Some("8.0")), "8.4.3");
        assert_eq!(canonical_version("8.01", Some("8.0")), "8.01");
        assert_eq!(canonical_version("16.4", None), "16.4");
    }

    #[test]
    fn ready_only_when_serving_with_nothing_pending() {
        let o = Observed {
            id: "db.instance".into(),
            kind: Kind::DbInstance,
            physical_id: "t-db".into(),
            fields: Fields::new(),
            attrs: BTreeMap::new(),
            status: "available".into(),
            lifecycle: moodlestack_model::Lifecycle::Ready,
        };
        assert!(matches!(
            readiness("available", &[], Want::Ready, Some(o.clone())),
            Readiness::Ready(_)
        ));
        assert!(matches!(
            readiness("storage-optimization", &[], Want::Ready, Some(o.clone())),
            Readiness::Ready(_)
        ));
        assert_eq!(
            readiness(
                "available",
                &["instance_class"],
                Want::Ready,
                Some(o.clone())
            ),
            Readiness::Pending("available, applying instance_class".into())
        );
        assert_eq!(
            readiness("modifying", &[], Want::Ready, Some(o.clone())),
            Readiness::Pending("modifying".into())
        );
        assert_eq!(
            readiness("incompatible-parameters", &[], Want::Ready, Some(o.clone())),
            Readiness::Failed("incompatible-parameters".into())
        );
        assert_eq!(
            readiness("deleting", &[], Want::Gone, Some(o)),
            Readiness::Pending("deleting".into())
        );
        let db = DbInstance::builder()
            .pending_modified_values(
                aws_sdk_rds::types::PendingModifiedValues::builder()
                    .db_instance_class("db.r7g.large")
                    .multi_az(true)
                    .build(),
            )
            .build();
        assert_eq!(
            pending_instance_changes(&db),
            ["instance_class", "multi_az"]
        );
        assert!(pending_instance_changes(&DbInstance::builder().build()).is_empty());
    }

    #[test]
    fn members_report_no_storage_backup_or_credential_fields() {
        use aws_sdk_rds::types::{DbParameterGroupStatus, Endpoint, MasterUserSecret};
        let scope = Scope {
            stack: "demo".into(),
            region: "eu-west-1".into(),
        };
        let tags = |id: &str| {
            vec![
                Tag::builder().key(TAG_STACK).value("demo").build(),
                Tag::builder().key(TAG_ID).value(id).build(),
            ]
        };
        let standalone = DbInstance::builder()
            .db_instance_identifier("demo-db")
            .engine("mysql")
            .engine_version("8.0.39")
            .allocated_storage(20)
            .master_username("moodle")
            .endpoint(Endpoint::builder().address("demo-db.x").port(3306).build())
            .master_user_secret(MasterUserSecret::builder().secret_arn("arn:secret").build())
            .db_parameter_groups(
                DbParameterGroupStatus::builder()
                    .db_parameter_group_name("demo-mysql8-0")
                    .parameter_apply_status("pending-reboot")
                    .build(),
            )
            .set_tag_list(Some(tags("db.instance")))
            .build();
        let desired =
            [Resource::new("db.instance", Kind::DbInstance).with("engine_version", "8.0")];
        let o = instance_observed(&scope, &desired, &standalone).unwrap();
        assert_eq!(o.fields["engine_version"], Value::str("8.0"));
        assert_eq!(o.fields["allocated_storage"], Value::Int(20));
        assert_eq!(o.fields["port"], Value::Int(3306));
        assert_eq!(
            o.fields["parameter_group_name"],
            Value::str("demo-mysql8-0")
        );
        assert_eq!(o.attrs["secret_arn"], "arn:secret");
        assert_eq!(o.attrs["endpoint"], "demo-db.x");
        assert_eq!(o.attrs["parameter_apply_status"], "pending-reboot");

        let member = DbInstance::builder()
            .db_instance_identifier("demo-db-1")
            .engine("aurora-mysql")
            .db_cluster_identifier("demo-db")
            .allocated_storage(1)
            .backup_retention_period(7)
            .master_username("moodle")
            .set_tag_list(Some(tags("db.instance.1")))
            .build();
        let o = instance_observed(&scope, &[], &member).unwrap();
        assert_eq!(o.fields["cluster_identifier"], Value::str("demo-db"));
        for absent in [
            "allocated_storage",
            "backup_retention_period",
            "master_username",
            "port",
        ] {
            assert!(!o.fields.contains_key(absent), "{absent}");
        }
    }

    #[test]
    fn static_or_unknown_parameters_wait_for_a_reboot() {
        assert_eq!(apply_method(Some("dynamic")), ApplyMethod::Immediate);
        assert_eq!(apply_method(Some("static")), ApplyMethod::PendingReboot);
        assert_eq!(apply_method(None), ApplyMethod::PendingReboot);
    }

    #[test]
    fn candidates_are_the_stack_prefix_or_desired_names() {
        let scope = Scope {
            stack: "demo".into(),
            region: "eu-west-1".into(),
        };
        let desired =
            vec![Resource::new("db.subnet_group", Kind::DbSubnetGroup).with("name", "custom")];
        let cand = Candidates::new(&scope, &desired, Kind::DbSubnetGroup, "name");
        assert!(cand.matches("demo-db"));
        assert!(cand.matches("custom"));
        assert!(!cand.matches("demoX-db"));
        assert!(!cand.matches("other-db"));
    }
}
