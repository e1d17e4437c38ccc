//! EFS: the file system (moodledata) and its mount targets.
//!
//! File systems carry the stack's tags (set on CreateFileSystem) and are found with one paginated
//! DescribeFileSystems, kept when tagged with the stack. The creation token is the stack's
//! deterministic `creation_token` field, so a create repeated after a crash answers
//! `FileSystemAlreadyExists` and the existing file system is adopted.
//!
//! Mount targets cannot be tagged: they are listed per file system of the stack (DescribeMountTargets
//! takes one file system) and returned as `untagged:<mount target id>` with their identity fields
//! (`file_system_id`, `subnet_id`) filled in; their security groups come from
//! DescribeMountTargetSecurityGroups (EFS has no batch form).

use crate::fields::{api_err, is_not_found, owned_id, sorted_strs, tags_value, Reader};
use crate::Clients;
use aws_sdk_efs::types::{
    FileSystemDescription, LifeCycleState, MountTargetDescription, PerformanceMode, Tag,
    ThroughputMode,
};
use moodlestack_model::{
    CloudError, DeleteOptions, Fields, Kind, Observed, Readiness, Resource, ResourceId, Scope,
    Value, Want, TAG_ID, TAG_STACK,
};
use std::collections::BTreeMap;

fn lifecycle(s: &LifeCycleState) -> &str {
    s.as_str()
}

fn tag_map(tags: &[Tag]) -> BTreeMap<String, String> {
    tags.iter()
        .map(|t| (t.key().to_string(), t.value().to_string()))
        .collect()
}

fn efs_tags(tags: BTreeMap<String, String>) -> Result<Vec<Tag>, CloudError> {
    tags.into_iter()
        .map(|(k, v)| {
            Tag::builder()
                .key(k)
                .value(v)
                .build()
                .map_err(|e| CloudError::Other(format!("efs tag: {e}")))
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// observe

async fn describe_file_systems(
    c: &Clients,
    id: Option<&str>,
) -> Result<Vec<FileSystemDescription>, CloudError> {
    let mut out = Vec::new();
    let mut pages = c
        .efs
        .describe_file_systems()
        .set_file_system_id(id.map(str::to_string))
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        match page {
            Ok(page) => out.extend(page.file_systems().iter().cloned()),
            Err(e) => {
                let err = api_err("efs:DescribeFileSystems", e);
                if id.is_some() && is_not_found(&err) {
                    return Ok(Vec::new());
                }
                return Err(err);
            }
        }
    }
    Ok(out)
}

fn file_system_observed(scope: &Scope, fs: &FileSystemDescription) -> Option<Observed> {
    let tags = tag_map(fs.tags());
    let id = owned_id(scope, &tags)?;
    let mut fields = Fields::new();
    fields.insert("creation_token".into(), Value::str(fs.creation_token()));
    fields.insert(
        "performance_mode".into(),
        Value::str(fs.performance_mode().as_str()),
    );
    if let Some(t) = fs.throughput_mode() {
        fields.insert("throughput_mode".into(), Value::str(t.as_str()));
    }
    if let Some(e) = fs.encrypted() {
        fields.insert("encrypted".into(), Value::Bool(e));
    }
    fields.insert("tags".into(), tags_value(tags));
    let mut attrs = BTreeMap::from([("id".to_string(), fs.file_system_id().to_string())]);
    if let Some(arn) = fs.file_system_arn() {
        attrs.insert("arn".into(), arn.to_string());
    }
    Some(Observed {
        id,
        kind: Kind::EfsFileSystem,
        physical_id: fs.file_system_id().to_string(),
        fields,
        attrs,
        status: lifecycle(fs.life_cycle_state()).to_string(),
    })
}

async fn describe_mount_targets(
    c: &Clients,
    fs_id: Option<&str>,
    mt_id: Option<&str>,
) -> Result<Vec<MountTargetDescription>, CloudError> {
    let mut out = Vec::new();
    let mut pages = c
        .efs
        .describe_mount_targets()
        .set_file_system_id(fs_id.map(str::to_string))
        .set_mount_target_id(mt_id.map(str::to_string))
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        match page {
            Ok(page) => out.extend(page.mount_targets().iter().cloned()),
            Err(e) => {
                let err = api_err("efs:DescribeMountTargets", e);
                if is_not_found(&err) {
                    return Ok(Vec::new());
                }
                return Err(err);
            }
        }
    }
    Ok(out)
}

async fn mount_target_observed(
    c: &Clients,
    mt: &MountTargetDescription,
) -> Result<Observed, CloudError> {
    let sgs = c
        .efs
        .describe_mount_target_security_groups()
        .mount_target_id(mt.mount_target_id())
        .send()
        .await
        .map_err(|e| api_err("efs:DescribeMountTargetSecurityGroups", e))?;
    let mut fields = Fields::new();
    fields.insert("file_system_id".into(), Value::str(mt.file_system_id()));
    fields.insert("subnet_id".into(), Value::str(mt.subnet_id()));
    fields.insert(
        "security_group_ids".into(),
        sorted_strs(sgs.security_groups().iter().cloned()),
    );
    let mut attrs = BTreeMap::from([("id".to_string(), mt.mount_target_id().to_string())]);
    if let Some(ip) = mt.ip_address() {
        attrs.insert("ip_address".into(), ip.to_string());
    }
    Ok(Observed {
        id: ResourceId(format!("untagged:{}", mt.mount_target_id())),
        kind: Kind::EfsMountTarget,
        physical_id: mt.mount_target_id().to_string(),
        fields,
        attrs,
        status: lifecycle(mt.life_cycle_state()).to_string(),
    })
}

fn going(s: &LifeCycleState) -> bool {
    matches!(s, LifeCycleState::Deleting | LifeCycleState::Deleted)
}

pub async fn observe(
    c: &Clients,
    scope: &Scope,
    _desired: &[Resource],
) -> Result<Vec<Observed>, CloudError> {
    let mut out = Vec::new();
    let mut fs_ids = Vec::new();
    for fs in describe_file_systems(c, None).await? {
        if going(fs.life_cycle_state()) {
            continue;
        }
        if let Some(o) = file_system_observed(scope, &fs) {
            fs_ids.push(o.physical_id.clone());
            out.push(o);
        }
    }
    for fs_id in fs_ids {
        for mt in describe_mount_targets(c, Some(&fs_id), None).await? {
            if going(mt.life_cycle_state()) {
                continue;
            }
            out.push(mount_target_observed(c, &mt).await?);
        }
    }
    Ok(out)
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
    let r = Reader::new(kind, id, fields);
    match kind {
        Kind::EfsFileSystem => {
            let token = r.str("creation_token")?;
            let mut tags = r.tags()?;
            tags.extend(moodlestack_model::identity_tags(scope, id));
            let res = c
                .efs
                .create_file_system()
                .creation_token(token)
                .performance_mode(PerformanceMode::from(
                    r.opt_str("performance_mode").unwrap_or("generalPurpose"),
                ))
                .set_throughput_mode(r.opt_str("throughput_mode").map(ThroughputMode::from))
                .encrypted(r.opt_bool("encrypted").unwrap_or(true))
                .set_tags(Some(efs_tags(tags)?))
                .send()
                .await;
            match res {
                Ok(out) => {
                    let fs = FileSystemDescription::builder()
                        .owner_id(out.owner_id())
                        .creation_token(out.creation_token())
                        .file_system_id(out.file_system_id())
                        .set_file_system_arn(out.file_system_arn().map(str::to_string))
                        .creation_time(*out.creation_time())
                        .life_cycle_state(out.life_cycle_state().clone())
                        .number_of_mount_targets(out.number_of_mount_targets())
                        .performance_mode(out.performance_mode().clone())
                        .set_encrypted(out.encrypted())
                        .set_throughput_mode(out.throughput_mode().cloned())
                        .set_tags(Some(out.tags().to_vec()))
                        .build()
                        .map_err(|e| {
                            CloudError::Other(format!("efs:CreateFileSystem answer: {e}"))
                        })?;
                    file_system_observed(scope, &fs).ok_or_else(|| {
                        CloudError::Other(format!(
                            "efs:CreateFileSystem {token}: created without its tags"
                        ))
                    })
                }
                Err(e) => {
                    let err = api_err("efs:CreateFileSystem", e);
                    if !matches!(&err, CloudError::Api { code, .. } if code == "FileSystemAlreadyExists")
                    {
                        return Err(err);
                    }
                    // The same creation token was used before (a crash between create and the
                    // next observe): adopt that file system if it is ours.
                    let existing = c
                        .efs
                        .describe_file_systems()
                        .creation_token(token)
                        .send()
                        .await
                        .map_err(|e| api_err("efs:DescribeFileSystems", e))?;
                    let fs = existing
                        .file_systems()
                        .iter()
                        .find(|f| f.creation_token() == token)
                        .ok_or(err)?;
                    match file_system_observed(scope, fs) {
                        Some(o) if &o.id == id => Ok(o),
                        _ => Err(CloudError::Other(format!(
                            "EFS file system {} with creation token {token} already exists but is not \
                             tagged {TAG_STACK}={} {TAG_ID}={id}; it belongs to something else",
                            fs.file_system_id(),
                            scope.stack
                        ))),
                    }
                }
            }
        }
        Kind::EfsMountTarget => {
            let fs_id = r.str("file_system_id")?;
            let subnet = r.str("subnet_id")?;
            let res = c
                .efs
                .create_mount_target()
                .file_system_id(fs_id)
                .subnet_id(subnet)
                .set_security_groups(Some(r.strs("security_group_ids")?))
                .send()
                .await;
            let mt = match res {
                Ok(out) => MountTargetDescription::builder()
                    .mount_target_id(out.mount_target_id())
                    .file_system_id(out.file_system_id())
                    .subnet_id(out.subnet_id())
                    .life_cycle_state(out.life_cycle_state().clone())
                    .set_ip_address(out.ip_address().map(str::to_string))
                    .build()
                    .map_err(|e| CloudError::Other(format!("efs:CreateMountTarget answer: {e}")))?,
                Err(e) => {
                    let err = api_err("efs:CreateMountTarget", e);
                    if !matches!(&err, CloudError::Api { code, .. } if code == "MountTargetConflict")
                    {
                        return Err(err);
                    }
                    // One mount target per zone and file system: after a crash it is the one we
                    // made. Adopt it when it is in this subnet.
                    describe_mount_targets(c, Some(fs_id), None)
                        .await?
                        .into_iter()
                        .find(|m| m.subnet_id() == subnet && !going(m.life_cycle_state()))
                        .ok_or(err)?
                }
            };
            let mut o = mount_target_observed(c, &mt).await?;
            o.id = id.clone();
            Ok(o)
        }
        other => Err(CloudError::Other(format!(
            "efs module does not handle {other}"
        ))),
    }
}

// ---------------------------------------------------------------------------------------------
// update

pub async fn update(
    c: &Clients,
    _scope: &Scope,
    current: &Observed,
    fields: &Fields,
    changed: &[String],
) -> Result<Observed, CloudError> {
    let has = |f: &str| changed.iter().any(|c| c == f);
    let r = Reader::new(current.kind, &current.id, fields);
    let mut out = current.clone();
    match current.kind {
        Kind::EfsFileSystem => {
            if has("throughput_mode") {
                let mode = r.str("throughput_mode")?;
                c.efs
                    .update_file_system()
                    .file_system_id(&current.physical_id)
                    .throughput_mode(ThroughputMode::from(mode))
                    .send()
                    .await
                    .map_err(|e| api_err("efs:UpdateFileSystem", e))?;
                out.fields
                    .insert("throughput_mode".into(), Value::str(mode));
            }
            if has("tags") {
                let mut tags = r.tags()?;
                tags.insert(TAG_ID.to_string(), current.id.to_string());
                c.efs
                    .tag_resource()
                    .resource_id(&current.physical_id)
                    .set_tags(Some(efs_tags(tags)?))
                    .send()
                    .await
                    .map_err(|e| api_err("efs:TagResource", e))?;
                out.fields.insert(
                    "tags".into(),
                    fields.get("tags").cloned().unwrap_or_default(),
                );
            }
        }
        Kind::EfsMountTarget => {
            if has("security_group_ids") {
                let sgs = r.strs("security_group_ids")?;
                c.efs
                    .modify_mount_target_security_groups()
                    .mount_target_id(&current.physical_id)
                    .set_security_groups(Some(sgs.clone()))
                    .send()
                    .await
                    .map_err(|e| api_err("efs:ModifyMountTargetSecurityGroups", e))?;
                out.fields
                    .insert("security_group_ids".into(), sorted_strs(sgs));
            }
        }
        other => {
            return Err(CloudError::Other(format!(
                "efs module does not handle {other}"
            )))
        }
    }
    Ok(out)
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
        Kind::EfsFileSystem => {
            // EFS refuses to delete a file system that still has mount targets; the executor
            // deletes them first (they are of a higher tier). Say so while they are going away
            // (DependencyViolation: the executor retries).
            let left: Vec<String> = describe_mount_targets(c, Some(&current.physical_id), None)
                .await?
                .iter()
                .filter(|m| *m.life_cycle_state() != LifeCycleState::Deleted)
                .map(|m| {
                    format!(
                        "{} ({})",
                        m.mount_target_id(),
                        m.life_cycle_state().as_str()
                    )
                })
                .collect();
            if !left.is_empty() {
                return Err(CloudError::Api {
                    operation: "efs:DeleteFileSystem".into(),
                    code: "DependencyViolation".into(),
                    message: format!(
                        "file system {} still has mount targets {}; it is deleted once they are gone",
                        current.physical_id,
                        left.join(", ")
                    ),
                });
            }
            c.efs
                .delete_file_system()
                .file_system_id(&current.physical_id)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| api_err("efs:DeleteFileSystem", e))
        }
        Kind::EfsMountTarget => c
            .efs
            .delete_mount_target()
            .mount_target_id(&current.physical_id)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| api_err("efs:DeleteMountTarget", e)),
        other => {
            return Err(CloudError::Other(format!(
                "efs module does not handle {other}"
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

fn readiness(
    state: &LifeCycleState,
    want: Want,
    observed: impl FnOnce() -> Option<Observed>,
) -> Readiness {
    match (state, want) {
        (LifeCycleState::Deleted, _) => Readiness::Gone,
        (LifeCycleState::Error, Want::Ready) => Readiness::Failed("error".into()),
        (LifeCycleState::Available, Want::Ready) => match observed() {
            Some(o) => Readiness::Ready(o),
            None => Readiness::Failed("available but no longer tagged with the stack".into()),
        },
        (s, _) => Readiness::Pending(s.as_str().to_string()),
    }
}

pub async fn poll(
    c: &Clients,
    scope: &Scope,
    current: &Observed,
    want: Want,
) -> Result<Readiness, CloudError> {
    match current.kind {
        Kind::EfsFileSystem => {
            let fss = describe_file_systems(c, Some(&current.physical_id)).await?;
            let Some(fs) = fss.first() else {
                return Ok(Readiness::Gone);
            };
            Ok(readiness(fs.life_cycle_state(), want, || {
                file_system_observed(scope, fs)
            }))
        }
        Kind::EfsMountTarget => {
            let mts = describe_mount_targets(c, None, Some(&current.physical_id)).await?;
            let Some(mt) = mts.first() else {
                return Ok(Readiness::Gone);
            };
            if *mt.life_cycle_state() == LifeCycleState::Available && want == Want::Ready {
                let mut o = mount_target_observed(c, mt).await?;
                o.id = current.id.clone();
                return Ok(Readiness::Ready(o));
            }
            Ok(readiness(mt.life_cycle_state(), want, || None))
        }
        other => Err(CloudError::Other(format!(
            "efs module does not handle {other}"
        ))),
    }
}
