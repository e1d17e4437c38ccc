//! AWS Backup kinds: the stack's vault, its backup plan and the plan's selection of the
//! database and the file system.

use super::{f, repl, set, spec_of, KindSpec, PhysicalId, TAGS};
use crate::Kind;

/// The AWS Backup kinds, as rows of the kind table in `mod.rs`.
macro_rules! backup_kinds {
    ([$($acc:tt)*] $($rest:ident)*) => { table! { [$($acc)*
        /// An AWS Backup vault (holds the recovery points).
        BackupVault => backup::VAULT,
        /// An AWS Backup plan (one rule: schedule, retention, vault).
        BackupPlan => backup::PLAN,
        /// An AWS Backup selection of a plan (untaggable): the resources it backs up.
        BackupSelection => backup::SELECTION,
    ] $($rest)* } };
}

/// The vault that holds the stack's recovery points (database and moodledata backups). It holds
/// data: destroying it deletes every recovery point in it, so the data-loss guard keeps it
/// (`--allow-data-loss`). `id` is the vault name.
pub(super) const VAULT: KindSpec = KindSpec {
    stateful: true,
    fields: &[repl("name"), TAGS],
    name_field: Some("name"),
    attrs: &["id", "arn"],
    ..spec_of(
        Kind::BackupVault,
        "backup_vault",
        "AWS::Backup::BackupVault",
    )
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
    ..spec_of(Kind::BackupPlan, "backup_plan", "AWS::Backup::BackupPlan")
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
    ..spec_of(
        Kind::BackupSelection,
        "backup_selection",
        "AWS::Backup::BackupSelection",
    )
};
