//! `AWS::RDS::DBCluster` (Aurora).

use super::{
    db_created, db_observed, extended_support_off, final_snapshot, pending_fields, rds_tags,
    secret_arn, vpc_security_group_ids, Db, DbOps,
};
use crate::fields::described_by;
use crate::fields::{
    answer, attrs_with_id, int, owned_id, reported, sent, tag_map, tags_value, Reader,
};
use crate::{Clients, Created, Cx};
use async_trait::async_trait;
use aws_sdk_rds::types::DbCluster;
use moodlestack_model::{CloudError, DeleteOptions, Kind, Observed, Scope, Value};

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
    async fn unprotect(c: &Clients, ident: &str) -> Result<(), CloudError> {
        sent(
            "rds:ModifyDBCluster",
            c.rds
                .modify_db_cluster()
                .db_cluster_identifier(ident)
                .deletion_protection(false)
                .apply_immediately(true)
                .send(),
        )
        .await
    }
    async fn create(cx: &Cx<'_>, r: &Reader<'_>) -> Result<Created, CloudError> {
        let ident = r.str("identifier")?;
        let res =
            cx.c.rds
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
                // The password is generated and kept by RDS in Secrets Manager: never sent from
                // here.
                .manage_master_user_password(true)
                .set_engine_lifecycle_support(extended_support_off(r.opt_str("engine")))
                .set_database_name(r.opt_str("database_name").map(str::to_string))
                .set_port(r.opt_int("port").map(|p| p as i32))
                .set_backup_retention_period(r.opt_int("backup_retention_period").map(|p| p as i32))
                .set_deletion_protection(r.opt_bool("deletion_protection"))
                .storage_encrypted(r.opt_bool("storage_encrypted").unwrap_or(true))
                .set_tags(Some(rds_tags(cx.scope, &r.id, r)?))
                .send()
                .await;
        let created = res.map(|out| out.db_cluster().and_then(|cl| observed(cx.scope, cl)));
        db_created(
            "rds:CreateDBCluster",
            ident,
            created,
            "DBClusterAlreadyExists",
        )
    }
    async fn modify(
        cx: &Cx<'_>,
        current: &Observed,
        r: &Reader<'_>,
        changed: &[&str],
    ) -> Result<Option<Observed>, CloudError> {
        let has = |f: &str| changed.contains(&f);
        let mut req =
            cx.c.rds
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
            req = req.db_cluster_parameter_group_name(r.str("cluster_parameter_group_name")?);
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
    fn deletion_protection(&self) -> Option<bool> {
        self.deletion_protection()
    }
    fn observed(&self, scope: &Scope) -> Option<Observed> {
        observed(scope, self)
    }
}

/// The managed fields a modification applied immediately has not reached yet.
fn pending_changes(cl: &DbCluster) -> Vec<&'static str> {
    cl.pending_modified_values().map_or_else(Vec::new, |p| {
        pending_fields([
            ("engine_version", p.engine_version().is_some()),
            (
                "backup_retention_period",
                p.backup_retention_period().is_some(),
            ),
        ])
    })
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
    use super::super::{test_scope, test_tags};
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
        assert_ready_as(&o, "db.cluster", &[]);
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
}
