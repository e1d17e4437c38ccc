//! RDS kinds: subnet and parameter groups, Aurora clusters and DB instances.

use super::{
    at_least, create_only, f, mins, repl, set, subset, version, DeletePolicy, KindSpec,
    ReplaceOrder, DEFAULT, NAMED, TAGS,
};
use crate::change::{Action, ChangeView, Note, NoteKind};
use crate::cost::{quantity, PriceQuery, Usage, UsageCx, HOURS_PER_MONTH};
use crate::{Kind, Value};

// The RDS kinds, as rows of the kind table in `mod.rs`.
kind_list! { $ rds_kinds [
    /// An RDS DB subnet group.
    DbSubnetGroup("db_subnet_group", "AWS::RDS::DBSubnetGroup") => rds::SUBNET_GROUP,
    /// An RDS DB parameter group.
    DbParameterGroup("db_parameter_group", "AWS::RDS::DBParameterGroup") => rds::PARAMETER_GROUP,
    /// An RDS DB cluster parameter group (Aurora): the same descriptor.
    DbClusterParameterGroup("db_cluster_parameter_group", "AWS::RDS::DBClusterParameterGroup")
        => rds::PARAMETER_GROUP,
    /// An Aurora DB cluster.
    DbCluster("db_cluster", "AWS::RDS::DBCluster") => rds::CLUSTER,
    /// An RDS DB instance (standalone, or an Aurora cluster member).
    DbInstance("db_instance", "AWS::RDS::DBInstance") => rds::INSTANCE,
    /// A manual snapshot of the database taken before nodes run a new code version.
    DbSnapshot("db_snapshot", "AWS::RDS::DBSnapshot") => rds::SNAPSHOT,
] }

/// A subnet group of RDS or of ElastiCache (the descriptor of both kinds: the same fields and
/// attributes). `id` is the name.
pub(super) const SUBNET_GROUP: KindSpec = KindSpec {
    tier: 2,
    fields: &[repl("name"), f("description"), set("subnet_ids"), TAGS],
    ..NAMED
};

/// parameters: map name -> value (strings); applied with the `pending-reboot` method for static
/// parameters and `immediate` for dynamic ones. `id` is the name.
pub(super) const PARAMETER_GROUP: KindSpec = KindSpec {
    fields: &[
        repl("name"),
        repl("family"),
        // Fixed at creation; a group in use cannot be deleted, so a reworded description is not
        // compared (never a replacement).
        create_only("description"),
        subset("parameters"),
        TAGS,
    ],
    notes: parameter_group_notes,
    // A new engine family (8.0 -> 8.4) names a new group: the database moves to it before the
    // old one, which RDS will not delete while it is in use, goes.
    replace: ReplaceOrder::CreateFirstWhenRenamed,
    ..NAMED
};

/// What clusters and instances share: stateful, named by their identifier, up to 40 minutes to
/// become ready, the database notes of the plan.
const DATABASE: KindSpec = KindSpec {
    stateful: true,
    name_field: Some("identifier"),
    ready_timeout: mins(40),
    notes: database_notes,
    ..DEFAULT
};

/// Aurora. Always created with ManageMasterUserPassword (the password lives in Secrets Manager;
/// a cluster restored from a snapshot is given it once it is available). `id` is the identifier.
pub(super) const CLUSTER: KindSpec = KindSpec {
    tier: 3,
    on_delete: DeletePolicy::FinalSnapshot { member_of: None },
    fields: &[
        repl("identifier"),
        repl("engine"),
        version("engine_version"),
        repl("db_subnet_group_name"),
        f("cluster_parameter_group_name"),
        set("vpc_security_group_ids"),
        repl("master_username"),
        repl("database_name"),
        repl("port"),
        f("backup_retention_period"),
        f("deletion_protection"),
        repl("storage_encrypted"),
        // The cluster snapshot it was restored from (its `moodlestack:restored-from` tag), as the
        // instance's: a new one replaces the cluster, and with it its members (their
        // `cluster_identifier` names the replaced cluster), by one restored from that snapshot.
        repl("restore_from"),
        TAGS,
    ],
    attrs: &[
        "id",
        "arn",
        "endpoint",
        "reader_endpoint",
        "port",
        "secret_arn",
    ],
    usage: cluster_usage,
    ..DATABASE
};

/// An Aurora cluster's storage, billed by the GB its data takes (and I/O requests, not counted):
/// the unit price only.
fn cluster_usage(cx: &UsageCx<'_>) -> Vec<Usage> {
    Usage::storage_by_use(
        "Aurora storage, by the size of the data (I/O requests not counted)",
        PriceQuery::list(
            "AmazonRDS",
            cx.region,
            &[("productFamily", "Database Storage")],
        )
        .usage_type("Aurora:StorageUsage"),
    )
}

/// The Price List's `databaseEngine` of an RDS engine.
fn price_list_engine(engine: &str) -> Option<&'static str> {
    Some(match engine {
        "mysql" => "MySQL",
        "mariadb" => "MariaDB",
        "postgres" => "PostgreSQL",
        "aurora-mysql" => "Aurora MySQL",
        "aurora-postgresql" => "Aurora PostgreSQL",
        _ => return None,
    })
}

/// An instance's hours by class, engine and deployment (Multi-AZ is its own, doubled, price),
/// and for a standalone instance its allocated storage by type.
fn instance_usage(cx: &UsageCx<'_>) -> Vec<Usage> {
    let engine = cx.str("engine").unwrap_or_default();
    let class = cx.str("instance_class").unwrap_or_default();
    let member = cx.has("cluster_identifier");
    let deployment = if !member && cx.flag("multi_az") {
        "Multi-AZ"
    } else {
        "Single-AZ"
    };
    let Some(name) = price_list_engine(engine) else {
        return vec![Usage::hours(
            "instance",
            format!("{class} {engine}"),
            HOURS_PER_MONTH,
            PriceQuery::Unpriced {
                why: format!("the engine `{engine}` has no Price List name here"),
            },
        )];
    };
    let mut out = vec![Usage::hours(
        "instance",
        format!("{class} {name}, {deployment}"),
        HOURS_PER_MONTH,
        PriceQuery::list(
            "AmazonRDS",
            cx.region,
            &[
                ("instanceType", class),
                ("databaseEngine", name),
                ("deploymentOption", deployment),
            ],
        )
        .unit("Hrs"),
    )];
    if let (false, Some(gb)) = (member, cx.int("allocated_storage")) {
        let kind = cx.str("storage_type").unwrap_or("gp2");
        let volume = match kind {
            "gp3" => Some("General Purpose-GP3"),
            "gp2" => Some("General Purpose"),
            "io1" => Some("Provisioned IOPS"),
            _ => None,
        };
        let item = format!("{gb} GB {kind} storage, {deployment} (baseline IOPS)");
        let price = match volume {
            Some(volume) => PriceQuery::list(
                "AmazonRDS",
                cx.region,
                &[
                    ("productFamily", "Database Storage"),
                    ("volumeType", volume),
                    ("databaseEngine", name),
                    ("deploymentOption", deployment),
                ],
            )
            .unit("GB-Mo"),
            None => PriceQuery::Unpriced {
                why: format!("the storage type `{kind}` has no Price List name here"),
            },
        };
        out.push(Usage::gb_month("storage", item, Some(quantity(gb)), price));
    }
    out
}

/// A standalone instance (MySQL, MariaDB, PostgreSQL) or an Aurora cluster member (then
/// cluster_identifier is set and the storage, backup and credential fields are absent).
/// Standalone instances are created with ManageMasterUserPassword. `id` is the identifier;
/// `secret_arn` exists for standalone instances only.
pub(super) const INSTANCE: KindSpec = KindSpec {
    tier: 4,
    on_delete: DeletePolicy::FinalSnapshot {
        member_of: Some("cluster_identifier"),
    },
    fields: &[
        repl("identifier"),
        repl("engine"),
        version("engine_version"),
        f("instance_class"),
        repl("cluster_identifier"),
        at_least("allocated_storage"),
        f("max_allocated_storage"),
        f("storage_type"),
        repl("storage_encrypted"),
        f("multi_az"),
        f("backup_retention_period"),
        f("deletion_protection"),
        repl("db_subnet_group_name"),
        f("parameter_group_name"),
        set("vpc_security_group_ids"),
        repl("master_username"),
        repl("db_name"),
        repl("port"),
        f("publicly_accessible"),
        // The snapshot it was restored from (its `moodlestack:restored-from` tag): a new one
        // replaces the database by one restored from that snapshot. Compared only when the stack
        // names one.
        repl("restore_from"),
        TAGS,
    ],
    // parameter_apply_status: `pending-reboot` while static parameters wait for a reboot.
    attrs: &[
        "id",
        "arn",
        "endpoint",
        "port",
        "secret_arn",
        "parameter_apply_status",
    ],
    usage: instance_usage,
    ..DATABASE
};

/// The tag that names the code version (Moodle release and PHP) a snapshot was taken for: the
/// nodes start that code only after the snapshot is available.
pub const TAG_CODE: &str = "moodlestack:code";
/// The tag a snapshot taken before an upgrade gets with the code version it upgrades from.
pub const TAG_CODE_BEFORE: &str = "moodlestack:code-before";
/// The tag of a database restored from a snapshot (`database.restore_from`): the snapshot.
pub const TAG_RESTORED_FROM: &str = "moodlestack:restored-from";

/// A manual snapshot of the database (`db_instance_identifier`) or of the Aurora cluster
/// (`db_cluster_identifier`), named after the code version the nodes are about to run. The
/// launch templates depend on it, so a new code version (a Moodle upgrade) changes no node before
/// the snapshot is available. A new version names a new snapshot: it is created first, and the
/// previous one is then released, never deleted: it loses its `moodlestack:id` tag and stays, a
/// restore point (`moodlestack backups` lists it), as a destroy leaves the current one. `id` is
/// the identifier.
pub(super) const SNAPSHOT: KindSpec = KindSpec {
    tier: 5,
    fields: &[
        repl("identifier"),
        repl("db_instance_identifier"),
        repl("db_cluster_identifier"),
        TAGS,
    ],
    name_field: Some("identifier"),
    attrs: &["id", "arn"],
    ready_timeout: mins(120),
    on_delete: DeletePolicy::Release,
    notes: snapshot_notes,
    replace: ReplaceOrder::CreateFirstWhenRenamed,
    ..DEFAULT
};

/// The code version a snapshot's tags name (`v4.5.5 php8.3`).
fn code_of(tags: Option<&Value>) -> Option<&str> {
    tags?.as_map()?.get(TAG_CODE)?.as_str()
}

fn snapshot_notes(c: &ChangeView<'_>) -> Vec<Note> {
    code_notes(c, "this snapshot of the database")
}

/// The notes of the file system's backup a code version waits for
/// ([`BackupRecoveryPoint`](crate::Kind::BackupRecoveryPoint)).
pub(super) fn backup_notes(c: &ChangeView<'_>) -> Vec<Note> {
    code_notes(
        c,
        "this backup of moodledata (the file system, into the stack's vault)",
    )
}

/// What a restore point taken for a code version (`what`) says in a plan: on a new version, that
/// this is a Moodle upgrade and its steps in order; on a create, that it is waited for.
fn code_notes(c: &ChangeView<'_>, what: &str) -> Vec<Note> {
    let tags = c.changed("tags");
    let new = code_of(tags.and_then(|t| t.new.as_ref()))
        .or_else(|| code_of(c.desired_field("tags")))
        .unwrap_or("the new code");
    let old = code_of(tags.and_then(|t| t.old.as_ref()));
    match (c.action, old) {
        (Action::Replace, Some(old)) if old != new => vec![Note::new(
            NoteKind::Rollout,
            format!(
                "Moodle upgrade: {old} -> {new}. In order: (1) {what} is taken and waited for, \
                 before any node changes; (2) the launch templates get the new code; (3) the \
                 stable node is replaced, puts the site in maintenance mode (every node answers \
                 503 with Moodle's page; the health check stays healthy), upgrades the database \
                 on the new code (admin/cli/upgrade.php; web nodes serve only once their code \
                 matches the database), leaves maintenance mode and smoke-tests the site (health \
                 check, login page, a cron run; a failed upgrade stays in maintenance mode); (4) \
                 the web fleet rolls to the new code (instance refresh). The one \
                 of {old} is kept (`moodlestack backups` lists it; `moodlestack rollback` \
                 restores it)"
            ),
        )],
        (Action::Create | Action::Replace, _) => vec![Note::new(
            NoteKind::Applied,
            format!("taken and waited for before any node runs {new}"),
        )],
        _ => Vec::new(),
    }
}

fn database_notes(c: &ChangeView<'_>) -> Vec<Note> {
    if let (Action::Replace, Some(Value::Str(snapshot))) = (
        c.action,
        c.changed("restore_from").and_then(|f| f.new.as_ref()),
    ) {
        let (what, call) = match c.desired.map(|d| d.kind) {
            Some(Kind::DbCluster) => (
                "the Aurora cluster is replaced by a new one of the same name restored from \
                 cluster snapshot",
                "RestoreDBClusterFromSnapshot, then ModifyDBCluster for its managed master \
                 password; its instances are made again in it",
            ),
            _ => (
                "the database is replaced by a new one of the same name restored from snapshot",
                "RestoreDBInstanceFromDBSnapshot, then ModifyDBInstance for its managed master \
                 password",
            ),
        };
        return vec![Note::new(
            NoteKind::DataLoss,
            format!(
                "holds data: restore: {what} {snapshot} ({call}); what was written since that \
                 snapshot is lost. The current database is deleted first, with its final \
                 snapshot (kept: `moodlestack backups` lists it); the nodes reach the restored \
                 one at the same endpoint, with a new master secret. Refused without \
                 --allow-data-loss"
            ),
        )];
    }
    if let (Action::Replace, Some(_)) = (c.action, c.changed("cluster_identifier")) {
        return vec![Note::new(
            NoteKind::DataLoss,
            "an Aurora cluster member, replaced with its cluster: it holds no data of its own (the \
             cluster's storage does); it is deleted before the cluster is replaced and made again \
             in the new one. Refused without --allow-data-loss",
        )];
    }
    if !c.is_real_update() {
        return Vec::new();
    }
    let mut notes = vec![Note::new(
        NoteKind::Applied,
        "applied immediately, not in the maintenance window (moodlestack sends ApplyImmediately)",
    )];
    if c.changed("instance_class").is_some() || c.changed("engine_version").is_some() {
        let multi_az = c
            .desired_field("multi_az")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        notes.push(Note::new(
            NoteKind::Restart,
            if multi_az {
                "the database restarts: Multi-AZ fails over to the standby (about a minute of \
                 interruption)"
            } else {
                "the database restarts: expect several minutes of downtime"
            },
        ));
    }
    if c.changed("parameter_group_name").is_some()
        || c.changed("cluster_parameter_group_name").is_some()
    {
        notes.push(Note::new(
            NoteKind::RebootPending,
            "reboot pending: a new parameter group takes effect at the next reboot of the \
             database",
        ));
    }
    notes
}

fn parameter_group_notes(c: &ChangeView<'_>) -> Vec<Note> {
    if !c.is_real_update() {
        return Vec::new();
    }
    let Some(change) = c.changed("parameters") else {
        return Vec::new();
    };
    let family = c
        .desired_field("family")
        .and_then(Value::as_str)
        .unwrap_or("");
    let statics = static_parameters(family);
    let old = change.old.as_ref().and_then(Value::as_map);
    let names: Vec<&str> = change
        .new
        .as_ref()
        .and_then(Value::as_map)
        .into_iter()
        .flatten()
        .filter(|(k, v)| old.and_then(|o| o.get(*k)) != Some(*v))
        .map(|(k, _)| k.as_str())
        .filter(|k| statics.contains(k))
        .collect();
    if names.is_empty() {
        return Vec::new();
    }
    vec![Note::new(
        NoteKind::RebootPending,
        format!(
            "reboot pending: static parameter(s) {} take effect at the next reboot of the \
             database (moodlestack does not reboot it)",
            names.join(", ")
        ),
    )]
}

/// Static parameters of the engines moodlestack supports, by parameter group family prefix:
/// RDS applies them (`pending-reboot`) only at the next reboot of the database. Any parameter not
/// listed is treated as dynamic (applied at once); RDS's `DescribeEngineDefaultParameters` lists
/// each parameter's `ApplyType`.
const STATIC_PARAMETERS: &[(&str, &[&str])] = &[
    (
        "mysql",
        &[
            "innodb_buffer_pool_instances",
            "innodb_log_buffer_size",
            "innodb_log_file_size",
            "innodb_open_files",
            "innodb_read_io_threads",
            "innodb_write_io_threads",
            "innodb_page_size",
            "innodb_purge_threads",
            "innodb_sort_buffer_size",
            "lower_case_table_names",
            "performance_schema",
            "skip_name_resolve",
        ],
    ),
    (
        "postgres",
        &[
            "autovacuum_max_workers",
            "max_connections",
            "max_locks_per_transaction",
            "max_prepared_transactions",
            "max_wal_senders",
            "max_worker_processes",
            "shared_buffers",
            "shared_preload_libraries",
            "track_activity_query_size",
            "wal_buffers",
        ],
    ),
];

/// The static parameters of a parameter group family (`mysql8.0`, `aurora-mysql8.0`,
/// `mariadb10.11`, `postgres16`).
pub fn static_parameters(family: &str) -> &'static [&'static str] {
    let family = family.strip_prefix("aurora-").unwrap_or(family);
    let family = if family.starts_with("mariadb") {
        "mysql"
    } else {
        family
    };
    STATIC_PARAMETERS
        .iter()
        .find(|(prefix, _)| family.starts_with(prefix))
        .map_or(&[], |(_, names)| names)
}
