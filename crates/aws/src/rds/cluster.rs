//! `AWS::RDS::DBCluster` (Aurora).

use super::{
    db_accessors, db_answered, db_observed, extended_support_off, final_snapshot, modified_now,
    pending_fields, pending_master_password, rds_tags, secret_arn, vpc_security_group_ids,
    with_shared_changes, Db, DbOps, Now,
};
use crate::fields::described_by;
use crate::fields::{
    answer, attrs_with_id, int, owned_id, reported, sent, tag_map, tags_value, Reader,
};
use crate::{Clients, Created, Cx};
use async_trait::async_trait;
use aws_sdk_rds::operation::restore_db_cluster_from_snapshot::builders::RestoreDBClusterFromSnapshotFluentBuilder;
use aws_sdk_rds::types::{DbCluster, MasterUserSecret, Tag};
use moodlestack_model::{
    CloudError, DeleteOptions, Kind, Observed, Scope, Value, TAG_RESTORED_FROM,
};

/// This file's kinds under their [`Kind`](moodlestack_model::Kind) names, for the registry
/// [`ops`](crate::ops).
pub(crate) mod kinds {
    /// `AWS::RDS::DBCluster`, keyed by its identifier.
    #[allow(non_upper_case_globals)]
    pub(crate) const DbCluster: super::DbOps<super::DbCluster> = super::DbOps::OPS;
}

#[async_trait]
impl Db for DbCluster {
    const KIND: Kind = Kind::DbCluster;
    const DELETE: &'static str = "rds:DeleteDBCluster";
    const EXISTS: &'static str = "DBClusterAlreadyExistsFault";
    const MODIFY: &'static [&'static str] = &[
        "engine_version",
        "cluster_parameter_group_name",
        "vpc_security_group_ids",
        "backup_retention_period",
        "deletion_protection",
    ];
    async fn describe(c: &Clients, ident: Option<&str>) -> Result<Vec<Self>, CloudError> {
        let req = c.rds.describe_db_clusters();
        let req = req.set_db_cluster_identifier(ident.map(str::to_string));
        described_by!("rds:DescribeDBClusters", ident, req).await
    }
    async fn modify_now(c: &Clients, ident: &str, now: Now) -> Result<Option<Self>, CloudError> {
        let req = c.rds.modify_db_cluster().db_cluster_identifier(ident);
        let req = modified_now!(req, now);
        Ok(answer("rds:ModifyDBCluster", req.send()).await?.db_cluster)
    }
    async fn create(cx: &Cx<'_>, r: &Reader<'_>) -> Result<Created, CloudError> {
        let ident = r.str("identifier")?;
        if let Some(snapshot) = r.opt_str("restore_from") {
            let res = restore(&cx.c.rds, cx.scope, r, snapshot)?.send().await;
            let operation = "rds:RestoreDBClusterFromSnapshot";
            return db_answered(cx, operation, ident, res, |out| out.db_cluster());
        }
        let req = with_stack_settings!(cx.c.rds.create_db_cluster(), cx.scope, r)
            .master_username(r.str("master_username")?)
            // The password is generated and kept by RDS in Secrets Manager: never sent from here.
            .manage_master_user_password(true)
            .set_database_name(r.opt_str("database_name").map(str::to_string))
            .storage_encrypted(r.opt_bool("storage_encrypted").unwrap_or(true));
        let res = req.send().await;
        db_answered(cx, "rds:CreateDBCluster", ident, res, |out| {
            out.db_cluster()
        })
    }
    async fn modify(
        cx: &Cx<'_>,
        current: &Observed,
        r: &Reader<'_>,
        changed: &[&str],
    ) -> Result<Option<Observed>, CloudError> {
        let has = |f: &str| changed.contains(&f);
        let req = cx.c.rds.modify_db_cluster();
        let mut req = with_shared_changes!(req.db_cluster_identifier(&current.physical_id), r, has);
        if has("cluster_parameter_group_name") {
            req = req.db_cluster_parameter_group_name(r.str("cluster_parameter_group_name")?);
        }
        let res = answer("rds:ModifyDBCluster", req.send()).await?;
        Ok(res.db_cluster().and_then(|cl| observed(cx.scope, cl)))
    }
    async fn delete(
        &self,
        c: &Clients,
        name: &str,
        options: &DeleteOptions,
    ) -> Result<(), CloudError> {
        let (snapshot, skip) = final_snapshot(options);
        sent(
            "rds:DeleteDBCluster",
            c.rds
                .delete_db_cluster()
                .db_cluster_identifier(name)
                .set_final_db_snapshot_identifier(snapshot)
                .skip_final_snapshot(skip)
                .send(),
        )
        .await
    }
    fn ident(&self) -> Option<&str> {
        self.db_cluster_identifier()
    }
    fn status(&self) -> Option<&str> {
        self.status()
    }
    db_accessors!();
}

/// The request `req` (a CreateDBCluster or a RestoreDBClusterFromSnapshot: their builders have
/// these setters) with what both take from the stack: the identifier, engine and version,
/// network, parameter group, port, backups, deletion protection, extended support off, every
/// tag. In a function returning `Result<_, CloudError>` (a field `r` cannot read is its error).
macro_rules! with_stack_settings {
    ($req:expr, $scope:expr, $r:expr) => {
        $req.db_cluster_identifier($r.str("identifier")?)
            .engine($r.str("engine")?)
            .set_engine_version($r.opt_str("engine_version").map(str::to_string))
            .db_subnet_group_name($r.str("db_subnet_group_name")?)
            .set_db_cluster_parameter_group_name(
                $r.opt_str("cluster_parameter_group_name")
                    .map(str::to_string),
            )
            .set_vpc_security_group_ids(Some($r.strs("vpc_security_group_ids")?))
            .set_port($r.opt_int("port").map(|p| p as i32))
            .set_backup_retention_period($r.opt_int("backup_retention_period").map(|p| p as i32))
            .set_deletion_protection($r.opt_bool("deletion_protection"))
            .set_engine_lifecycle_support(extended_support_off($r.opt_str("engine")))
            .set_tags(Some(rds_tags($scope, &$r.id, $r)?))
    };
}
use with_stack_settings;

/// The cluster `r` restored from the DB cluster snapshot `snapshot`: ONE
/// RestoreDBClusterFromSnapshot with every tag (`moodlestack:restored-from` among them). The
/// snapshot gives the data, the master user, the database name and the storage encryption (and
/// its KMS key); the rest is the stack's, as on a create, the backup retention included (a
/// restore parameter: "Valid for Cluster Type: Aurora DB clusters", RestoreDBClusterFromSnapshot
/// API reference). A restore cannot ask RDS to manage the master password: Aurora takes it into
/// Secrets Manager when a cluster is created, modified or restored from Amazon S3, not from a
/// snapshot (<https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/rds-secrets-manager.html>),
/// so [`Db::settle`] turns it on once the cluster is available.
fn restore(
    rds: &aws_sdk_rds::Client,
    scope: &Scope,
    r: &Reader<'_>,
    snapshot: &str,
) -> Result<RestoreDBClusterFromSnapshotFluentBuilder, CloudError> {
    let req = rds.restore_db_cluster_from_snapshot();
    Ok(with_stack_settings!(req, scope, r).snapshot_identifier(snapshot))
}

/// The managed fields a modification applied immediately has not reached yet, and the managed
/// master password of a restored cluster until it has one.
fn pending_changes(cl: &DbCluster) -> Vec<&'static str> {
    let pending = cl.pending_modified_values().map_or_else(Vec::new, |p| {
        pending_fields([
            ("engine_version", p.engine_version().is_some()),
            (
                "backup_retention_period",
                p.backup_retention_period().is_some(),
            ),
        ])
    });
    pending_master_password(pending, cl.tag_list(), cl.master_user_secret())
}

/// A cluster as observed; None when it is not tagged with the stack.
fn observed(scope: &Scope, cl: &DbCluster) -> Option<Observed> {
    let tags = tag_map(cl.tag_list());
    let id = owned_id(scope, &tags)?;
    let ident = cl.db_cluster_identifier()?.to_string();
    let fields = reported([
        ("identifier", Some(Value::str(&ident))),
        ("engine", cl.engine().map(Value::str)),
        ("engine_version", cl.engine_version().map(Value::str)),
        ("db_subnet_group_name", cl.db_subnet_group().map(Value::str)),
        (
            "cluster_parameter_group_name",
            cl.db_cluster_parameter_group().map(Value::str),
        ),
        (
            "vpc_security_group_ids",
            Some(vpc_security_group_ids(cl.vpc_security_groups())),
        ),
        ("master_username", cl.master_username().map(Value::str)),
        ("database_name", cl.database_name().map(Value::str)),
        ("port", cl.port().map(int)),
        (
            "backup_retention_period",
            cl.backup_retention_period().map(int),
        ),
        (
            "deletion_protection",
            cl.deletion_protection().map(Value::Bool),
        ),
        ("storage_encrypted", cl.storage_encrypted().map(Value::Bool)),
        ("restore_from", tags.get(TAG_RESTORED_FROM).map(Value::str)),
        ("tags", Some(tags_value(tags))),
    ]);
    let attrs = attrs_with_id(
        &ident,
        [
            ("arn", cl.db_cluster_arn().map(str::to_string)),
            ("endpoint", cl.endpoint().map(str::to_string)),
            ("reader_endpoint", cl.reader_endpoint().map(str::to_string)),
            ("port", cl.port().map(|p| p.to_string())),
            ("secret_arn", secret_arn(cl.master_user_secret())),
        ],
    );
    let status = cl.status().unwrap_or_default();
    Some(db_observed(
        Kind::DbCluster,
        id,
        ident,
        (fields, attrs),
        status,
        &pending_changes(cl),
    ))
}

#[cfg(test)]
mod tests {
    use super::super::{
        needs_managed_password, restored_fields, restored_tags, test_rds, test_scope, test_tags,
    };
    use super::*;
    use crate::fields::assert_ready_as;
    use crate::KindOps;
    use aws_sdk_rds::types::{
        ClusterPendingModifiedValues, MasterUserSecret, VpcSecurityGroupMembership,
    };
    use moodlestack_model::{Lifecycle, Readiness, Want};

    fn sample(status: &str) -> DbCluster {
        builder(status).build()
    }

    fn builder(status: &str) -> aws_sdk_rds::types::builders::DbClusterBuilder {
        DbCluster::builder()
            .db_cluster_identifier("demo-db")
            .db_cluster_arn("arn:aws:rds:eu-west-1:1:cluster:demo-db")
            .engine("aurora-mysql")
            .engine_version("8.0.mysql_aurora.3.08.0")
            .db_subnet_group("demo-db")
            .db_cluster_parameter_group("demo-aurora-mysql8-0-cluster")
            .vpc_security_groups(
                VpcSecurityGroupMembership::builder()
                    .vpc_security_group_id("sg-1")
                    .build(),
            )
            .master_username("moodle")
            .database_name("moodle")
            .port(3306)
            .backup_retention_period(7)
            .deletion_protection(true)
            .storage_encrypted(true)
            .endpoint("demo-db.cluster-x")
            .reader_endpoint("demo-db.cluster-ro-x")
            .master_user_secret(MasterUserSecret::builder().secret_arn("arn:secret").build())
            .status(status)
            .set_tag_list(Some(test_tags("db.cluster")))
    }

    #[test]
    fn a_cluster_is_observed_with_its_descriptors_fields() {
        let o = observed(&test_scope(), &sample("available")).unwrap();
        // Not restored: no `restore_from`.
        assert_ready_as(&o, "db.cluster", &["restore_from"]);
        assert_eq!(o.attrs["reader_endpoint"], "demo-db.cluster-ro-x");
        assert_eq!(
            observed(&test_scope(), &sample("creating"))
                .unwrap()
                .lifecycle,
            Lifecycle::Creating
        );
        assert_eq!(
            observed(&test_scope(), &sample("failed"))
                .unwrap()
                .lifecycle,
            Lifecycle::Failed
        );
        let pending = builder("available")
            .pending_modified_values(
                ClusterPendingModifiedValues::builder()
                    .backup_retention_period(14)
                    .build(),
            )
            .build();
        let o = observed(&test_scope(), &pending).unwrap();
        assert_eq!(o.lifecycle, Lifecycle::Modifying);
        assert_eq!(
            kinds::DbCluster.readiness(o, Want::Ready),
            Readiness::Pending("available, applying backup_retention_period".into())
        );
        let other = crate::fields::test_scope("other");
        assert!(observed(&other, &sample("available")).is_none());
    }

    /// A cluster restored from `snapshot` (its tag), as RDS reports it after the restore: no
    /// managed master secret.
    fn restored(status: &str, snapshot: &str) -> DbCluster {
        let tags = restored_tags("db.cluster", snapshot);
        builder(status)
            .set_master_user_secret(None)
            .set_tag_list(Some(tags))
            .build()
    }

    #[test]
    fn a_restored_cluster_is_ready_once_rds_manages_its_master_password() {
        let snapshot = "demo-code-v4-5-6-php8-3";
        let cl = restored("available", snapshot);
        assert!(needs_managed_password(
            cl.tag_list(),
            cl.master_user_secret()
        ));
        let o = observed(&test_scope(), &cl).unwrap();
        assert_eq!(o.fields["restore_from"], Value::str(snapshot));
        assert!(!o.attrs.contains_key("secret_arn"));
        assert_eq!(o.lifecycle, Lifecycle::Modifying);
        assert_eq!(
            kinds::DbCluster.readiness(o, Want::Ready),
            Readiness::Pending("available, applying the managed master password".into())
        );
        // Once ModifyDBCluster has turned it on: ready, with the new secret.
        let mut managed = cl.clone();
        managed.master_user_secret =
            Some(MasterUserSecret::builder().secret_arn("arn:new").build());
        assert!(!needs_managed_password(
            managed.tag_list(),
            managed.master_user_secret()
        ));
        let o = observed(&test_scope(), &managed).unwrap();
        assert_ready_as(&o, "db.cluster", &[]);
        assert_eq!(o.attrs["secret_arn"], "arn:new");
        // A cluster that was not restored is never asked to.
        let plain = builder("available").set_master_user_secret(None).build();
        assert!(!needs_managed_password(
            plain.tag_list(),
            plain.master_user_secret()
        ));
    }

    #[test]
    fn a_restore_sends_the_stacks_settings_and_every_tag() {
        let snapshot = "demo-code-v4-5-6-php8-3";
        let fields = restored_fields(
            snapshot,
            [
                ("engine", Value::str("aurora-mysql")),
                ("engine_version", Value::str("8.0")),
                (
                    "cluster_parameter_group_name",
                    Value::str("demo-aurora-mysql8-0-cluster"),
                ),
                ("master_username", Value::str("moodle")),
                ("database_name", Value::str("moodle")),
                ("port", Value::Int(3306)),
                ("backup_retention_period", Value::Int(7)),
                ("deletion_protection", Value::Bool(true)),
                ("storage_encrypted", Value::Bool(true)),
            ],
        );
        let r = Reader::new(Kind::DbCluster, "db.cluster", &fields);
        let req = restore(&test_rds(), &test_scope(), &r, snapshot).unwrap();
        let i = req.as_input();
        assert_eq!(i.get_db_cluster_identifier().as_deref(), Some("demo-db"));
        assert_eq!(i.get_snapshot_identifier().as_deref(), Some(snapshot));
        assert_eq!(i.get_engine().as_deref(), Some("aurora-mysql"));
        assert_eq!(i.get_engine_version().as_deref(), Some("8.0"));
        assert_eq!(i.get_db_subnet_group_name().as_deref(), Some("demo-db"));
        assert_eq!(
            i.get_db_cluster_parameter_group_name().as_deref(),
            Some("demo-aurora-mysql8-0-cluster")
        );
        assert_eq!(
            i.get_vpc_security_group_ids().as_deref(),
            Some(&["sg-1".to_string()][..])
        );
        assert_eq!(*i.get_port(), Some(3306));
        assert_eq!(*i.get_backup_retention_period(), Some(7));
        assert_eq!(*i.get_deletion_protection(), Some(true));
        assert_eq!(
            i.get_engine_lifecycle_support().as_deref(),
            Some("open-source-rds-extended-support-disabled")
        );
        // The master user, database name and encryption (its key) follow the snapshot.
        assert_eq!(*i.get_kms_key_id(), None);
        assert_eq!(*i.get_database_name(), None);
        let tags: std::collections::BTreeMap<_, _> = i
            .get_tags()
            .iter()
            .flatten()
            .filter_map(|t| Some((t.key()?, t.value()?)))
            .collect();
        assert_eq!(tags.get(TAG_RESTORED_FROM), Some(&snapshot));
        assert_eq!(tags.get(moodlestack_model::TAG_ID), Some(&"db.cluster"));
        assert_eq!(tags.get(moodlestack_model::TAG_STACK), Some(&"demo"));
    }
}
