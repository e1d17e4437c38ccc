//! AWS Backup kinds: the stack's vault, its backup plan and the plan's selection of the
//! database and the file system, and the on-demand backup of the file system a code version
//! waits for.

use super::{
    create_only, f, mins, repl, set, DeletePolicy, KindSpec, PhysicalId, ReplaceOrder, DEFAULT,
    NAMED, TAGS,
};

/// The tag that holds a recovery point's name (the `name` of a
/// [`BackupRecoveryPoint`](crate::Kind::BackupRecoveryPoint)).
pub const TAG_NAME: &str = "moodlestack:name";

// The AWS Backup kinds, as rows of the kind table in `mod.rs`.
kind_list! { $ backup_kinds [
    /// An AWS Backup vault (holds the recovery points).
    BackupVault("backup_vault", "AWS::Backup::BackupVault") => backup::VAULT,
    /// An AWS Backup plan (one rule: schedule, retention, vault).
    BackupPlan("backup_plan", "AWS::Backup::BackupPlan") => backup::PLAN,
    /// An AWS Backup selection of a plan (untaggable): the resources it backs up.
    BackupSelection("backup_selection", "AWS::Backup::BackupSelection") => backup::SELECTION,
    /// An on-demand AWS Backup recovery point (moodledata before a new code version).
    BackupRecoveryPoint("backup_recovery_point", "AWS::Backup::RecoveryPoint")
        => backup::RECOVERY_POINT,
] }

/// The vault that holds the stack's recovery points (database and moodledata backups). It holds
/// data: destroying it deletes every recovery point in it, so the data-loss guard keeps it
/// (`--allow-data-loss`). `id` is the vault name.
pub(super) const VAULT: KindSpec = KindSpec {
    stateful: true,
    fields: &[repl("name"), TAGS],
    ..NAMED
};

/// A backup plan of one rule: `rule_name`, `schedule` (AWS Backup's `cron(...)`),
/// `schedule_time_zone` (IANA), `retention_days` and the target `vault_name`; all changed in place
/// (UpdateBackupPlan makes a new version of the plan). `id` is the plan id AWS generates.
pub(super) const PLAN: KindSpec = KindSpec {
    physical_id: PhysicalId::Generated(""),
    tier: 1,
    fields: &[
        repl("name"),
        f("rule_name"),
        f("vault_name"),
        f("schedule"),
        f("schedule_time_zone"),
        f("retention_days"),
        TAGS,
    ],
    name_field: Some("name"),
    attrs: &["id", "arn", "version_id"],
    attrs_changed_by_update: &["version_id"],
    ..DEFAULT
};

/// What a plan backs up: the listed resource ARNs (the database and the file system), with the
/// role AWS Backup assumes. AWS Backup cannot tag or update a selection: it is matched by
/// (plan_id, name) and every change replaces it. `id` is the selection id.
pub(super) const SELECTION: KindSpec = KindSpec {
    physical_id: PhysicalId::Generated(""),
    tier: 6,
    fields: &[
        repl("plan_id"),
        repl("name"),
        repl("iam_role_arn"),
        // Replaced, never updated (AWS Backup has no update of a selection); compared as a set.
        super::FieldSpec {
            on_change: super::OnChange::Replace,
            ..set("resources")
        },
    ],
    identity: &["plan_id", "name"],
    ..DEFAULT
};

/// An on-demand backup (StartBackupJob) of `resource_arn` (the moodledata file system) into the
/// vault `vault_name`, made with the role `iam_role_arn`, before the nodes run a new code
/// version: the launch templates depend on it, as on the database snapshot. AWS Backup gives a
/// recovery point no name: `name` is its `moodlestack:name` tag (the create adds it), named after
/// the code version like the database snapshot (`<stack>-code-v4-5-5-php8-3`), so a new version
/// names a new backup, made first and waited for (COMPLETED); the previous one is then released
/// (its `moodlestack:id` tag removed), never deleted: a restore point `moodlestack backups`
/// lists, of the same name as the database snapshot of that upgrade. `id` is the recovery point's
/// ARN.
pub(super) const RECOVERY_POINT: KindSpec = KindSpec {
    physical_id: PhysicalId::Arn,
    tier: 6,
    fields: &[
        repl("name"),
        repl("vault_name"),
        repl("resource_arn"),
        // The role only makes the backup: a later change of it is no reason for another.
        create_only("iam_role_arn"),
        TAGS,
    ],
    // A first backup of a large file system takes hours; later ones are incremental.
    ready_timeout: mins(8 * 60),
    on_delete: DeletePolicy::Release,
    notes: super::rds::backup_notes,
    replace: ReplaceOrder::CreateFirstWhenRenamed,
    ..NAMED
};
