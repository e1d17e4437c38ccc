//! EFS kinds: the file system (moodledata) and its mount targets.

use super::{create_only, f, mins, repl, set, KindSpec, PhysicalId, DEFAULT, TAGS};
use crate::change::{Action, ChangeView, Note, NoteKind};
use crate::cost::{PriceQuery, Usage};
use crate::Value;

// The EFS kinds, as rows of the kind table in `mod.rs`.
kind_list! { $ efs_kinds [
    /// An EFS file system (moodledata).
    EfsFileSystem("efs_file_system", "AWS::EFS::FileSystem") => efs::FILE_SYSTEM,
    /// An EFS mount target (untaggable).
    EfsMountTarget("efs_mount_target", "AWS::EFS::MountTarget") => efs::MOUNT_TARGET,
] }

/// The file system keyed by its creation token (the stack's deterministic name for it). With
/// `restore_from` (an AWS Backup recovery point ARN, `files.restore_from`) it is created by a
/// restore job (StartRestoreJob into a new file system, made with the role `restore_role_arn`)
/// and tagged `moodlestack:restored-from`; a new recovery point replaces it by one restored from
/// that point, as `restore_from` does for the database.
pub(super) const FILE_SYSTEM: KindSpec = KindSpec {
    physical_id: PhysicalId::Generated("fs"),
    stateful: true,
    fields: &[
        repl("creation_token"),
        repl("performance_mode"),
        f("throughput_mode"),
        repl("encrypted"),
        // The recovery point it was restored from (its `moodlestack:restored-from` tag).
        // Compared only when the stack names one.
        repl("restore_from"),
        // The role AWS Backup assumes for the restore: it only makes the file system.
        create_only("restore_role_arn"),
        TAGS,
    ],
    name_field: Some("creation_token"),
    attrs: &["id", "arn"],
    // Billed by the GB stored (Standard storage class); elastic throughput by the GB read and
    // written, not counted.
    usage: |cx| {
        Usage::storage_by_use(
            "Standard storage, by the size of moodledata (throughput not counted)",
            PriceQuery::list(
                "AmazonEFS",
                cx.region,
                &[
                    ("productFamily", "Storage"),
                    ("storageClass", "General Purpose"),
                ],
            )
            .unit("GB-Mo"),
        )
    },
    // A restore of a large file system takes hours (AWS Backup copies every file back).
    ready_timeout: mins(8 * 60),
    notes: file_system_notes,
    ..DEFAULT
};

/// What a plan says of a file system made by a restore: on a replacement, the data-loss note of
/// the restore (instead of the generic "an empty one"); on a create, where its data comes from.
fn file_system_notes(c: &ChangeView<'_>) -> Vec<Note> {
    let point = c
        .changed("restore_from")
        .and_then(|f| f.new.as_ref())
        .or_else(|| c.desired_field("restore_from"));
    let Some(Value::Str(point)) = point else {
        return Vec::new();
    };
    match c.action {
        Action::Replace if c.changed("restore_from").is_some() => vec![Note::new(
            NoteKind::DataLoss,
            format!(
                "holds data: restore: moodledata is replaced by a new file system restored from \
                 recovery point {point} (AWS Backup StartRestoreJob); what was written since that \
                 backup is lost. The current file system is deleted first (its backups stay in \
                 the vault: `moodlestack backups` lists them); the nodes mount the restored one. \
                 Refused without --allow-data-loss"
            ),
        )],
        Action::Create => vec![Note::new(
            NoteKind::Applied,
            format!(
                "created by restoring recovery point {point} (AWS Backup StartRestoreJob into a \
                 new file system); waited for until the restore job is COMPLETED"
            ),
        )],
        _ => Vec::new(),
    }
}

/// Mount targets cannot be tagged: matched by (file_system_id, subnet_id).
pub(super) const MOUNT_TARGET: KindSpec = KindSpec {
    physical_id: PhysicalId::Generated("fsmt"),
    tier: 3,
    fields: &[
        repl("file_system_id"),
        repl("subnet_id"),
        set("security_group_ids"),
    ],
    identity: &["file_system_id", "subnet_id"],
    attrs: &["id", "ip_address"],
    ..DEFAULT
};
