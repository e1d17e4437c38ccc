//! EFS: the file system (moodledata) and its mount targets, one [`KindOps`] each.
//!
//! File systems carry the stack's tags (set on CreateFileSystem) and are found with one paginated
//! DescribeFileSystems, kept when tagged with the stack. The creation token is the stack's
//! deterministic `creation_token` field, so a create repeated after a crash answers
//! `FileSystemAlreadyExists` and the existing file system is adopted.
//!
//! A file system with `restore_from` (an AWS Backup recovery point) is made by a restore job
//! instead: StartRestoreJob into a new file system (`newFileSystem`, the same creation token,
//! encryption and performance mode), made with the stack's backup role. Until the job is
//! COMPLETED the created resource's physical id is the restore job's id: the executor's poll
//! (`Query::Physical`) reads the job (DescribeRestoreJob) and, once it is done, the new file
//! system (`CreatedResourceArn`), which is then given what CreateFileSystem would have set: its
//! throughput mode, EFS's automatic backups (PutBackupPolicy) and, last, the stack's tags
//! (TagResource; with them it is the stack's). AWS Backup has no tags for it: the source's tags
//! (`CopySourceTagsToRestoredResource`) would name the source's stack.
//!
//! Mount targets cannot be tagged: they are listed per file system of the stack (DescribeMountTargets
//! takes one file system) and returned untagged with their identity fields (`file_system_id`,
//! `subnet_id`) filled in; their security groups come from DescribeMountTargetSecurityGroups (EFS
//! has no batch form), all in flight at once.

use crate::fields::described_by;
use crate::fields::{
    again_while, all_at_once, answer, attrs_with_id, built_tags, collected, is_code,
    not_found_is_none, owned_id, sent, sorted_strs, tag_map, tags_value, unexpected, unless_taken,
    Reader,
};
use crate::{Clients, Created, Cx, KindOps, Query, Update};
use async_trait::async_trait;
use aws_sdk_backup::types::RestoreJobStatus;
use aws_sdk_efs::types::{
    BackupPolicy, FileSystemDescription, LifeCycleState, MountTargetDescription, PerformanceMode,
    Status, Tag, ThroughputMode,
};
use moodlestack_model::{
    CloudError, Fields, Kind, Lifecycle, Observed, ObservedId, Scope, Value, TAG_ID,
    TAG_RESTORED_FROM,
};
use std::collections::BTreeMap;

fn lifecycle(s: &LifeCycleState) -> Lifecycle {
    match s {
        LifeCycleState::Creating => Lifecycle::Creating,
        LifeCycleState::Updating => Lifecycle::Modifying,
        LifeCycleState::Deleting | LifeCycleState::Deleted => Lifecycle::Deleting,
        LifeCycleState::Error => Lifecycle::Failed,
        _ => Lifecycle::Ready,
    }
}

/// Every tag `r` sets, in EFS's shape.
fn efs_tags(r: &Reader<'_>, tags: &BTreeMap<String, String>) -> Result<Vec<Tag>, CloudError> {
    built_tags(r, tags, |k, v| Tag::builder().key(k).value(v).build())
}

async fn describe_file_systems(
    c: &Clients,
    id: Option<&str>,
    token: Option<&str>,
) -> Result<Vec<FileSystemDescription>, CloudError> {
    let req = c.efs.describe_file_systems();
    let req = req.set_file_system_id(id.map(str::to_string));
    let req = req.set_creation_token(token.map(str::to_string));
    described_by!("efs:DescribeFileSystems", id, req).await
}

/// A file system as observed; None when it is not tagged with the stack.
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
    if let Some(point) = tags.get(TAG_RESTORED_FROM) {
        fields.insert("restore_from".into(), Value::str(point));
    }
    fields.insert("tags".into(), tags_value(tags));
    let mut attrs = BTreeMap::from([("id".to_string(), fs.file_system_id().to_string())]);
    if let Some(arn) = fs.file_system_arn() {
        attrs.insert("arn".into(), arn.to_string());
    }
    Some(Observed {
        id: id.into(),
        kind: Kind::EfsFileSystem,
        physical_id: fs.file_system_id().to_string(),
        fields,
        attrs,
        status: fs.life_cycle_state().as_str().to_string(),
        lifecycle: lifecycle(fs.life_cycle_state()),
    })
}

async fn describe_mount_targets(
    c: &Clients,
    fs_id: Option<&str>,
    mt_id: Option<&str>,
) -> Result<Vec<MountTargetDescription>, CloudError> {
    let found = collected(
        "efs:DescribeMountTargets",
        c.efs
            .describe_mount_targets()
            .set_file_system_id(fs_id.map(str::to_string))
            .set_mount_target_id(mt_id.map(str::to_string))
            .into_paginator()
            .items()
            .send()
            .try_collect(),
    )
    .await;
    Ok(not_found_is_none(found)?.unwrap_or_default())
}

/// A mount target as observed, its security groups read with one more call. One that is still
/// being created answers `IncorrectMountTargetState` until it is available (about a minute on
/// AWS): the read is tried again for up to two minutes, so that a plan made meanwhile compares
/// its real security groups, then the error stands.
async fn mount_target_observed(
    c: &Clients,
    mt: &MountTargetDescription,
) -> Result<Observed, CloudError> {
    let creating = |e: &CloudError| is_code(e, "IncorrectMountTargetState");
    let sgs = again_while(creating, std::time::Duration::from_secs(120), || {
        answer(
            "efs:DescribeMountTargetSecurityGroups",
            c.efs
                .describe_mount_target_security_groups()
                .mount_target_id(mt.mount_target_id())
                .send(),
        )
    })
    .await?;
    Ok(mount_target(
        ObservedId::Untagged(mt.mount_target_id().to_string()),
        mt,
        Some(sorted_strs(sgs.security_groups().iter().cloned())),
        mt.ip_address(),
    ))
}

/// A mount target as observed: its identity fields, its security group ids when known, its IP
/// address attribute when given.
fn mount_target(
    id: ObservedId,
    mt: &MountTargetDescription,
    security_group_ids: Option<Value>,
    ip_address: Option<&str>,
) -> Observed {
    let mut fields = Fields::from([
        ("file_system_id".into(), Value::str(mt.file_system_id())),
        ("subnet_id".into(), Value::str(mt.subnet_id())),
    ]);
    if let Some(sgs) = security_group_ids {
        fields.insert("security_group_ids".into(), sgs);
    }
    Observed {
        id,
        kind: Kind::EfsMountTarget,
        physical_id: mt.mount_target_id().to_string(),
        fields,
        attrs: attrs_with_id(
            mt.mount_target_id(),
            [("ip_address", ip_address.map(str::to_string))],
        ),
        status: mt.life_cycle_state().as_str().to_string(),
        lifecycle: lifecycle(mt.life_cycle_state()),
    }
}

/// Mount targets as observed, all security-group reads in flight at once; ones on their way out
/// are left out.
async fn mount_targets_observed(
    c: &Clients,
    mts: Vec<MountTargetDescription>,
) -> Result<Vec<Observed>, CloudError> {
    futures::future::try_join_all(
        mts.iter()
            .filter(|m| !going(m.life_cycle_state()))
            .map(|m| mount_target_observed(c, m)),
    )
    .await
}

/// A mount target with its security groups once it is available; before, AWS answers
/// `IncorrectMountTargetState` to reading them, so it is reported without them (for polls,
/// which only wait for `available`).
async fn mount_target_known(
    c: &Clients,
    mt: &MountTargetDescription,
) -> Result<Observed, CloudError> {
    if *mt.life_cycle_state() == LifeCycleState::Available {
        mount_target_observed(c, mt).await
    } else {
        let id = ObservedId::Untagged(mt.mount_target_id().to_string());
        Ok(mount_target(id, mt, None, None))
    }
}

fn going(s: &LifeCycleState) -> bool {
    matches!(s, LifeCycleState::Deleting | LifeCycleState::Deleted)
}

// ---------------------------------------------------------------------------------------------
// A file system made by an AWS Backup restore.

/// The restore job's id stands for the file system until the job is done: an EFS id is `fs-…`.
fn is_restore_job(physical_id: &str) -> bool {
    !physical_id.starts_with("fs-")
}

/// The file system `r` restored from the recovery point `point` (ARN): ONE StartRestoreJob into
/// a new file system with the stack's creation token, encryption and performance mode (and
/// `file-system-id`, the backed-up one, which AWS Backup's EFS metadata asks for), made with the
/// stack's backup role. A file system of the creation token that exists already is
/// `Created::Exists` (adopted when it is the stack's). Returns the job, `creating`.
async fn start_restore(cx: &Cx<'_>, r: &Reader<'_>, point: &str) -> Result<Created, CloudError> {
    let token = r.str("creation_token")?;
    // A file system of this creation token already exists (the restore job would fail on it):
    // the generic code adopts it if it is the stack's, and refuses it otherwise.
    let (taken, found) = tokio::join!(
        describe_file_systems(cx.c, None, Some(token)),
        crate::backup::recovery_point_by_arn(cx.c, point)
    );
    if !taken?.is_empty() {
        return Ok(Created::Exists);
    }
    let found = found?;
    let source = found
        .as_ref()
        .and_then(|p| p.resource_arn())
        .unwrap_or_default();
    let Some(source_fs) = source
        .rsplit_once(":file-system/")
        .map(|(_, id)| id.to_string())
    else {
        return Err(r.err(
            "restore_from",
            &format!(
                "{point} is not a backup of an EFS file system in this account and region \
                 (no vault holds it, or it backs up {})",
                if source.is_empty() { "nothing" } else { source }
            ),
        ));
    };
    let encrypted = r.opt_bool("encrypted").unwrap_or(true);
    let req =
        cx.c.backup
            .start_restore_job()
            .recovery_point_arn(point)
            .iam_role_arn(r.str("restore_role_arn")?)
            .resource_type("EFS")
            .idempotency_token(format!("{}-{}-{}", cx.scope.stack, r.id, attempt()))
            .metadata("file-system-id", source_fs)
            .metadata("newFileSystem", "true")
            .metadata("CreationToken", token)
            .metadata("Encrypted", encrypted.to_string())
            .metadata(
                "PerformanceMode",
                r.opt_str("performance_mode").unwrap_or("generalPurpose"),
            );
    let out = answer("backup:StartRestoreJob", req.send()).await?;
    let job = out
        .restore_job_id()
        .ok_or_else(|| CloudError::UnexpectedAnswer {
            operation: "backup:StartRestoreJob".into(),
            what: format!("{point}: no restore job id"),
        })?;
    Ok(Created::New(restoring(
        r,
        job,
        "restore job PENDING".into(),
        Lifecycle::Creating,
    )))
}

/// This create's own idempotency token part: the SDK's retries of the one request share it; a
/// later create (the same restore after the file system was deleted: a clone destroyed and made
/// again) is a new job, never an earlier job's answer naming a file system that is gone.
fn attempt() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
}

/// The file system `r` while the restore job `job` runs: the job's id for its physical id, the
/// desired fields (nothing else exists yet).
fn restoring(r: &Reader<'_>, job: &str, status: String, lifecycle: Lifecycle) -> Observed {
    Observed {
        id: r.id.clone().into(),
        kind: Kind::EfsFileSystem,
        physical_id: job.to_string(),
        fields: r.fields.clone(),
        attrs: BTreeMap::new(),
        status,
        lifecycle,
    }
}

/// One look at a restore: the job while it runs or when it failed; once it is COMPLETED, the
/// restored file system, given (once, the tags last) what a create would have set.
async fn restore_progress(cx: &Cx<'_>, job: &str) -> Result<Vec<Observed>, CloudError> {
    let Some(want) = cx.desired.iter().find(|d| d.kind == Kind::EfsFileSystem) else {
        return Ok(Vec::new());
    };
    let r = Reader::new(Kind::EfsFileSystem, want.id.clone(), &want.fields);
    let req = cx.c.backup.describe_restore_job().restore_job_id(job);
    let out = match answer("backup:DescribeRestoreJob", req.send()).await {
        Ok(out) => out,
        Err(e) if is_code(&e, "ResourceNotFoundException") => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let status = out.status().map_or("PENDING", RestoreJobStatus::as_str);
    let lifecycle = match out.status() {
        Some(RestoreJobStatus::Completed) => None,
        Some(RestoreJobStatus::Failed | RestoreJobStatus::Aborted) => Some(Lifecycle::Failed),
        _ => Some(Lifecycle::Creating),
    };
    if let Some(lifecycle) = lifecycle {
        let mut said = format!("restore job {status}");
        if let Some(p) = out.percent_done().filter(|p| !p.is_empty()) {
            said.push_str(&format!(" ({p} %)"));
        }
        if let Some(m) = out.status_message().filter(|m| !m.is_empty()) {
            said.push_str(&format!(": {m}"));
        }
        return Ok(vec![restoring(&r, job, said, lifecycle)]);
    }
    let created = out.created_resource_arn().unwrap_or_default();
    let Some((_, fs_id)) = created.rsplit_once(":file-system/") else {
        return Err(CloudError::UnexpectedAnswer {
            operation: "backup:DescribeRestoreJob".into(),
            what: format!("restore job {job} is COMPLETED without a file system ({created})"),
        });
    };
    let found = describe_file_systems(cx.c, Some(fs_id), None).await?;
    let Some(fs) = found.first() else {
        return Ok(Vec::new());
    };
    if let Some(o) = file_system_observed(cx.scope, fs) {
        return Ok(vec![o]);
    }
    if *fs.life_cycle_state() != LifeCycleState::Available {
        let said = format!("restored into {fs_id}, {}", fs.life_cycle_state().as_str());
        return Ok(vec![restoring(&r, job, said, Lifecycle::Creating)]);
    }
    let mode = r.opt_str("throughput_mode");
    if mode.is_some_and(|m| fs.throughput_mode().map(ThroughputMode::as_str) != Some(m)) {
        let req = cx.c.efs.update_file_system().file_system_id(fs_id);
        let req = req.set_throughput_mode(mode.map(ThroughputMode::from));
        sent("efs:UpdateFileSystem", req.send()).await?;
    }
    // AWS Backup's daily EFS backups, as CreateFileSystem's `Backup` sets them.
    let policy = BackupPolicy::builder().status(Status::Enabled).build();
    let policy = policy.map_err(|e| r.err("tags", &e.to_string()))?;
    let req = cx.c.efs.put_backup_policy().file_system_id(fs_id);
    sent("efs:PutBackupPolicy", req.backup_policy(policy).send()).await?;
    let mut tags = r.stack_tags(cx.scope)?;
    if let Some(point) = r.opt_str("restore_from") {
        tags.insert(TAG_RESTORED_FROM.into(), point.to_string());
    }
    let req = cx.c.efs.tag_resource().resource_id(fs_id);
    sent(
        "efs:TagResource",
        req.set_tags(Some(efs_tags(&r, &tags)?)).send(),
    )
    .await?;
    let found = describe_file_systems(cx.c, Some(fs_id), None).await?;
    Ok(found
        .iter()
        .filter_map(|fs| file_system_observed(cx.scope, fs))
        .collect())
}

// ---------------------------------------------------------------------------------------------
// The file system.

/// This file's kinds under their [`Kind`](moodlestack_model::Kind) names, for the registry
/// [`ops`](crate::ops).
pub(crate) mod kinds {
    pub(crate) use super::{FileSystem as EfsFileSystem, MountTarget as EfsMountTarget};
}

/// `AWS::EFS::FileSystem`.
pub(crate) struct FileSystem;

#[async_trait]
impl KindOps for FileSystem {
    async fn list(&self, cx: &Cx<'_>, q: Query<'_>) -> Result<Vec<Observed>, CloudError> {
        let found = match q {
            Query::Stack => describe_file_systems(cx.c, None, None).await?,
            Query::Logical { fields, .. } => {
                let token = fields.get("creation_token").and_then(Value::as_str);
                match token {
                    Some(t) => describe_file_systems(cx.c, None, Some(t)).await?,
                    None => Vec::new(),
                }
            }
            Query::Physical(job) if is_restore_job(job) => return restore_progress(cx, job).await,
            Query::Physical(id) => describe_file_systems(cx.c, Some(id), None).await?,
        };
        Ok(found
            .iter()
            .filter(|fs| matches!(q, Query::Physical(_)) || !going(fs.life_cycle_state()))
            .filter_map(|fs| file_system_observed(cx.scope, fs))
            .collect())
    }

    async fn create(&self, cx: &Cx<'_>, r: &Reader<'_>) -> Result<Created, CloudError> {
        if let Some(point) = r.opt_str("restore_from") {
            return start_restore(cx, r, point).await;
        }
        let token = r.str("creation_token")?;
        let tags = r.stack_tags(cx.scope)?;
        let res =
            cx.c.efs
                .create_file_system()
                .creation_token(token)
                .performance_mode(PerformanceMode::from(
                    r.opt_str("performance_mode").unwrap_or("generalPurpose"),
                ))
                .set_throughput_mode(r.opt_str("throughput_mode").map(ThroughputMode::from))
                .encrypted(r.opt_bool("encrypted").unwrap_or(true))
                // AWS Backup's daily EFS backups (35 days), as the console's default: moodledata
                // is backed up like the database.
                .backup(true)
                .set_tags(Some(efs_tags(r, &tags)?));
        const OP: &str = "efs:CreateFileSystem";
        // The same creation token was used before (a crash between create and the next
        // observe): the generic code adopts it if it is ours.
        let Some(out) = unless_taken(OP, "FileSystemAlreadyExists", res.send()).await? else {
            return Ok(Created::Exists);
        };
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
            .map_err(|e| unexpected(OP, e.to_string()))?;
        file_system_observed(cx.scope, &fs)
            .map(Created::New)
            .ok_or_else(|| unexpected(OP, format!("{token}: created without its tags")))
    }

    async fn update(&self, cx: &Cx<'_>, u: Update<'_>) -> Result<Observed, CloudError> {
        let (current, r, changed) = u.parts();
        let mut out = current.clone();
        if changed.contains(&"throughput_mode") {
            let mode = r.str("throughput_mode")?;
            let req = cx.c.efs.update_file_system();
            let req = req.file_system_id(&current.physical_id);
            let req = req.throughput_mode(ThroughputMode::from(mode));
            sent("efs:UpdateFileSystem", req.send()).await?;
            out.fields
                .insert("throughput_mode".into(), Value::str(mode));
        }
        if changed.contains(&"tags") {
            let mut tags = r.tags()?;
            tags.insert(TAG_ID.to_string(), r.id.to_string());
            let req = cx.c.efs.tag_resource().resource_id(&current.physical_id);
            let req = req.set_tags(Some(efs_tags(r, &tags)?));
            sent("efs:TagResource", req.send()).await?;
            out.fields.insert(
                "tags".into(),
                r.fields.get("tags").cloned().unwrap_or_default(),
            );
        }
        Ok(out)
    }

    async fn delete(&self, cx: &Cx<'_>, current: &Observed) -> Result<(), CloudError> {
        // EFS refuses to delete a file system that still has mount targets; the executor
        // deletes them first (they are of a higher tier). Say so while they are going away
        // (DependencyViolation: the executor retries).
        let left: Vec<String> = describe_mount_targets(cx.c, Some(&current.physical_id), None)
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
                source: None,
            });
        }
        let req = cx.c.efs.delete_file_system();
        let req = req.file_system_id(&current.physical_id);
        sent("efs:DeleteFileSystem", req.send()).await
    }
}

// ---------------------------------------------------------------------------------------------
// Mount targets.

/// `AWS::EFS::MountTarget`, untaggable: found through the stack's file systems.
pub(crate) struct MountTarget;

#[async_trait]
impl KindOps for MountTarget {
    async fn list(&self, cx: &Cx<'_>, q: Query<'_>) -> Result<Vec<Observed>, CloudError> {
        match q {
            Query::Stack => {
                let file_systems = cx.listed(Kind::EfsFileSystem).await?;
                all_at_once(
                    file_systems
                        .iter()
                        .filter(|fs| fs.lifecycle != Lifecycle::Deleting)
                        .map(|fs| async {
                            let mts =
                                describe_mount_targets(cx.c, Some(&fs.physical_id), None).await?;
                            mount_targets_observed(cx.c, mts).await
                        }),
                )
                .await
            }
            Query::Logical { fields, .. } => {
                let Some(fs_id) = fields.get("file_system_id").and_then(Value::as_str) else {
                    return Ok(Vec::new());
                };
                let mts = describe_mount_targets(cx.c, Some(fs_id), None).await?;
                mount_targets_observed(cx.c, mts).await
            }
            Query::Physical(id) => {
                let mts = describe_mount_targets(cx.c, None, Some(id)).await?;
                futures::future::try_join_all(mts.iter().map(|mt| mount_target_known(cx.c, mt)))
                    .await
            }
        }
    }

    async fn create(&self, cx: &Cx<'_>, r: &Reader<'_>) -> Result<Created, CloudError> {
        let res =
            cx.c.efs
                .create_mount_target()
                .file_system_id(r.str("file_system_id")?)
                .subnet_id(r.str("subnet_id")?)
                .set_security_groups(Some(r.strs("security_group_ids")?));
        const OP: &str = "efs:CreateMountTarget";
        // One mount target per zone and file system: after a crash it is the one we made; the
        // generic code adopts it by its identity (file system, subnet).
        let Some(out) = unless_taken(OP, "MountTargetConflict", res.send()).await? else {
            return Ok(Created::Exists);
        };
        let mt = MountTargetDescription::builder()
            .mount_target_id(out.mount_target_id())
            .file_system_id(out.file_system_id())
            .subnet_id(out.subnet_id())
            .life_cycle_state(out.life_cycle_state().clone())
            .set_ip_address(out.ip_address().map(str::to_string))
            .build()
            .map_err(|e| unexpected(OP, e.to_string()))?;
        // Just made: its security groups are the ones asked for (they cannot be read until it
        // is available).
        Ok(Created::New(mount_target(
            r.id.clone().into(),
            &mt,
            Some(sorted_strs(r.strs("security_group_ids")?)),
            mt.ip_address(),
        )))
    }

    async fn update(&self, cx: &Cx<'_>, u: Update<'_>) -> Result<Observed, CloudError> {
        let (current, r, changed) = u.parts();
        let mut out = current.clone();
        if changed.contains(&"security_group_ids") {
            let sgs = r.strs("security_group_ids")?;
            let req = cx.c.efs.modify_mount_target_security_groups();
            let req = req.mount_target_id(&current.physical_id);
            let req = req.set_security_groups(Some(sgs.clone()));
            sent("efs:ModifyMountTargetSecurityGroups", req.send()).await?;
            out.fields
                .insert("security_group_ids".into(), sorted_strs(sgs));
        }
        Ok(out)
    }

    async fn delete(&self, cx: &Cx<'_>, current: &Observed) -> Result<(), CloudError> {
        let req = cx.c.efs.delete_mount_target();
        let req = req.mount_target_id(&current.physical_id);
        sent("efs:DeleteMountTarget", req.send()).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fields::{assert_matches_spec, test_scope};

    #[test]
    fn a_file_system_is_observed_with_its_descriptors_fields() {
        let scope = test_scope("demo");
        let fs = FileSystemDescription::builder()
            .owner_id("123456789012")
            .creation_token("demo-files")
            .file_system_id("fs-1")
            .file_system_arn("arn:aws:elasticfilesystem:eu-west-1:123456789012:file-system/fs-1")
            .creation_time(aws_smithy_types::DateTime::from_secs(0))
            .life_cycle_state(LifeCycleState::Creating)
            .number_of_mount_targets(0)
            .size_in_bytes(
                aws_sdk_efs::types::FileSystemSize::builder()
                    .value(0)
                    .build(),
            )
            .performance_mode(PerformanceMode::GeneralPurpose)
            .throughput_mode(ThroughputMode::Elastic)
            .encrypted(true)
            .tags(
                Tag::builder()
                    .key("moodlestack:stack")
                    .value("demo")
                    .build()
                    .unwrap(),
            )
            .tags(
                Tag::builder()
                    .key("moodlestack:id")
                    .value("files.fs")
                    .build()
                    .unwrap(),
            )
            .build()
            .unwrap();
        let o = file_system_observed(&scope, &fs).unwrap();
        // Not restored: no `restore_from`; the restore's role is never read back.
        assert_matches_spec(&o, &["restore_from", "restore_role_arn"]);
        assert_eq!(o.lifecycle, Lifecycle::Creating);
        assert_eq!(o.id, "files.fs");
        assert!(file_system_observed(&test_scope("other"), &fs).is_none());
        // Restored: the recovery point its tag names.
        let point = "arn:aws:backup:eu-west-1:123456789012:recovery-point:1";
        let mut fs = fs;
        fs.tags.push(
            Tag::builder()
                .key(TAG_RESTORED_FROM)
                .value(point)
                .build()
                .unwrap(),
        );
        let o = file_system_observed(&scope, &fs).unwrap();
        assert_matches_spec(&o, &["restore_role_arn"]);
        assert_eq!(o.fields["restore_from"], Value::str(point));
    }

    #[test]
    fn a_restore_job_stands_for_the_file_system_until_it_is_done() {
        assert!(!is_restore_job("fs-0123456789abcdef0"));
        assert!(is_restore_job("1EB3B5E7-9EB0-435A-A80B-108B488B0D45"));
    }
}
