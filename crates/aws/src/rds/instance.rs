//! `AWS::RDS::DBInstance`: standalone engines and Aurora members.

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
use aws_sdk_rds::operation::restore_db_instance_from_db_snapshot::builders::RestoreDBInstanceFromDBSnapshotFluentBuilder as Restore;
use aws_sdk_rds::types::{DbInstance, MasterUserSecret, Tag};
use aws_sdk_rds::Client as Rds;
use moodlestack_model::{
    CloudError, DeleteOptions, Kind, Observed, Scope, Value, TAG_RESTORED_FROM,
};

/// This file's kinds under their [`Kind`](moodlestack_model::Kind) names, for the registry
/// [`ops`](crate::ops).
pub(crate) mod kinds {
    /// `AWS::RDS::DBInstance`, keyed by its identifier.
    #[allow(non_upper_case_globals)]
    pub(crate) const DbInstance: super::DbOps<super::DbInstance> = super::DbOps::OPS;
}

#[async_trait]
impl Db for DbInstance {
    const KIND: Kind = Kind::DbInstance;
    const DELETE: &'static str = "rds:DeleteDBInstance";
    const EXISTS: &'static str = "DBInstanceAlreadyExists";
    const MODIFY: &'static [&'static str] = &[
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
    async fn describe(c: &Clients, ident: Option<&str>) -> Result<Vec<Self>, CloudError> {
        let req = c.rds.describe_db_instances();
        let req = req.set_db_instance_identifier(ident.map(str::to_string));
        described_by!("rds:DescribeDBInstances", ident, req).await
    }
    async fn modify_now(c: &Clients, ident: &str, now: Now) -> Result<Option<Self>, CloudError> {
        let req = c.rds.modify_db_instance().db_instance_identifier(ident);
        let req = modified_now!(req, now);
        Ok(answer("rds:ModifyDBInstance", req.send())
            .await?
            .db_instance)
    }
    async fn create(cx: &Cx<'_>, r: &Reader<'_>) -> Result<Created, CloudError> {
        let ident = r.str("identifier")?;
        if let Some(snapshot) = r.opt_str("restore_from") {
            let res = restore(&cx.c.rds, cx.scope, r, snapshot)?.send().await;
            let operation = "rds:RestoreDBInstanceFromDBSnapshot";
            return db_answered(cx, operation, ident, res, |out| out.db_instance());
        }
        let member = r.has("cluster_identifier");
        let mut req =
            cx.c.rds
                .create_db_instance()
                .db_instance_identifier(ident)
                .engine(r.str("engine")?)
                .set_engine_version(r.opt_str("engine_version").map(str::to_string))
                .db_instance_class(r.str("instance_class")?)
                .set_db_subnet_group_name(r.opt_str("db_subnet_group_name").map(str::to_string))
                .set_db_parameter_group_name(r.opt_str("parameter_group_name").map(str::to_string))
                .publicly_accessible(r.opt_bool("publicly_accessible").unwrap_or(false))
                .set_tags(Some(rds_tags(cx.scope, &r.id, r)?));
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
                .set_port(r.opt_int("port").map(|p| p as i32))
                .set_engine_lifecycle_support(extended_support_off(r.opt_str("engine")));
        }
        let res = req.send().await;
        db_answered(cx, "rds:CreateDBInstance", ident, res, |out| {
            out.db_instance()
        })
    }
    async fn modify(
        cx: &Cx<'_>,
        current: &Observed,
        r: &Reader<'_>,
        changed: &[&str],
    ) -> Result<Option<Observed>, CloudError> {
        let has = |f: &str| changed.contains(&f);
        let req = cx.c.rds.modify_db_instance();
        let mut req =
            with_shared_changes!(req.db_instance_identifier(&current.physical_id), r, has);
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
        if has("parameter_group_name") {
            req = req.db_parameter_group_name(r.str("parameter_group_name")?);
        }
        if has("publicly_accessible") {
            req = req.publicly_accessible(r.bool("publicly_accessible")?);
        }
        let res = answer("rds:ModifyDBInstance", req.send()).await?;
        Ok(res.db_instance().and_then(|db| observed(cx.scope, db)))
    }
    async fn delete(
        &self,
        c: &Clients,
        name: &str,
        options: &DeleteOptions,
    ) -> Result<(), CloudError> {
        let mut req = c.rds.delete_db_instance().db_instance_identifier(name);
        if self.db_cluster_identifier().is_none() {
            // Members are snapshotted with their cluster; RDS refuses snapshot options on them.
            let (snapshot, skip) = final_snapshot(options);
            req = req
                .set_final_db_snapshot_identifier(snapshot)
                .skip_final_snapshot(skip);
        }
        sent("rds:DeleteDBInstance", req.send()).await
    }
    fn ident(&self) -> Option<&str> {
        self.db_instance_identifier()
    }
    fn status(&self) -> Option<&str> {
        self.db_instance_status()
    }
    db_accessors!();
}

/// A standalone instance restored from the DB snapshot `snapshot` (RestoreDBInstanceFromDBSnapshot,
/// ONE call with every tag): the snapshot gives the engine, its version, the storage, the master
/// user and the data; the rest is the stack's, as on a create. The storage ceiling
/// (`max_allocated_storage`) cannot be given to a restore: the next apply sets it in place.
///
/// Nor can the managed master password: RestoreDBInstanceFromDBSnapshot's
/// `ManageMasterUserPassword` "Constraints: Applies to RDS for Oracle only"
/// (<https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_RestoreDBInstanceFromDBSnapshot.html>;
/// the same in the SDK reference,
/// <https://docs.aws.amazon.com/sdk-for-kotlin/api/latest/rds/aws.sdk.kotlin.services.rds.model/-restore-db-instance-from-db-snapshot-request/manage-master-user-password.html>),
/// and for MySQL, MariaDB and PostgreSQL AWS restores the instance with the snapshot's password
/// and no managed secret (<https://github.com/hashicorp/terraform-provider-aws/issues/31509>;
/// <https://github.com/aws/aws-cdk/pull/38210> refuses it for those engines). The old instance's
/// secret went with it, so [`Db::settle`] turns the managed password on (a new secret) once the
/// restored instance is available; it is not ready until then.
fn restore(
    rds: &Rds,
    scope: &Scope,
    r: &Reader<'_>,
    snapshot: &str,
) -> Result<Restore, CloudError> {
    let req = rds
        .restore_db_instance_from_db_snapshot()
        .db_instance_identifier(r.str("identifier")?)
        .db_snapshot_identifier(snapshot)
        .db_instance_class(r.str("instance_class")?)
        .set_db_subnet_group_name(r.opt_str("db_subnet_group_name").map(str::to_string))
        .set_db_parameter_group_name(r.opt_str("parameter_group_name").map(str::to_string))
        .publicly_accessible(r.opt_bool("publicly_accessible").unwrap_or(false))
        .storage_type(r.opt_str("storage_type").unwrap_or("gp3"))
        .multi_az(r.opt_bool("multi_az").unwrap_or(false))
        .set_backup_retention_period(r.opt_int("backup_retention_period").map(|p| p as i32))
        .set_deletion_protection(r.opt_bool("deletion_protection"))
        .set_vpc_security_group_ids(Some(r.strs("vpc_security_group_ids")?))
        .set_port(r.opt_int("port").map(|p| p as i32))
        .set_engine_lifecycle_support(extended_support_off(r.opt_str("engine")))
        .set_tags(Some(rds_tags(scope, &r.id, r)?));
    Ok(req)
}

/// The managed fields a modification applied immediately has not reached yet. Right after
/// ModifyDBInstance the status can still read `available` while these are set; the instance is
/// not ready (a read-back would see the old values) until they are applied. And the managed
/// master password of a restored instance until it has one.
fn pending_changes(db: &DbInstance) -> Vec<&'static str> {
    let pending = db.pending_modified_values().map_or_else(Vec::new, |p| {
        pending_fields([
            ("instance_class", p.db_instance_class().is_some()),
            ("allocated_storage", p.allocated_storage().is_some()),
            ("storage_type", p.storage_type().is_some()),
            ("multi_az", p.multi_az().is_some()),
            (
                "backup_retention_period",
                p.backup_retention_period().is_some(),
            ),
            ("engine_version", p.engine_version().is_some()),
            ("db_subnet_group_name", p.db_subnet_group_name().is_some()),
        ])
    });
    pending_master_password(pending, db.tag_list(), db.master_user_secret())
}

/// An instance as observed; None when it is not tagged with the stack.
fn observed(scope: &Scope, db: &DbInstance) -> Option<Observed> {
    let tags = tag_map(db.tag_list());
    let id = owned_id(scope, &tags)?;
    let ident = db.db_instance_identifier()?.to_string();
    let parameter_group = db.db_parameter_groups().first();
    let mut fields = reported([
        ("identifier", Some(Value::str(&ident))),
        ("engine", db.engine().map(Value::str)),
        ("engine_version", db.engine_version().map(Value::str)),
        ("instance_class", db.db_instance_class().map(Value::str)),
        (
            "cluster_identifier",
            db.db_cluster_identifier().map(Value::str),
        ),
        (
            "db_subnet_group_name",
            db.db_subnet_group()
                .and_then(|g| g.db_subnet_group_name())
                .map(Value::str),
        ),
        (
            "parameter_group_name",
            parameter_group
                .and_then(|g| g.db_parameter_group_name())
                .map(Value::str),
        ),
        (
            "publicly_accessible",
            db.publicly_accessible().map(Value::Bool),
        ),
        ("restore_from", tags.get(TAG_RESTORED_FROM).map(Value::str)),
        ("tags", Some(tags_value(tags))),
    ]);
    if db.db_cluster_identifier().is_none() {
        // Aurora members have no storage, backup or credential settings of their own (the cluster
        // holds them), so those fields are reported for standalone instances only.
        fields.extend(reported([
            ("allocated_storage", db.allocated_storage().map(int)),
            ("max_allocated_storage", db.max_allocated_storage().map(int)),
            ("storage_type", db.storage_type().map(Value::str)),
            ("storage_encrypted", db.storage_encrypted().map(Value::Bool)),
            ("multi_az", db.multi_az().map(Value::Bool)),
            (
                "backup_retention_period",
                db.backup_retention_period().map(int),
            ),
            (
                "deletion_protection",
                db.deletion_protection().map(Value::Bool),
            ),
            (
                "vpc_security_group_ids",
                Some(vpc_security_group_ids(db.vpc_security_groups())),
            ),
            ("master_username", db.master_username().map(Value::str)),
            ("db_name", db.db_name().map(Value::str)),
            (
                "port",
                db.endpoint()
                    .and_then(|e| e.port())
                    .or(db.db_instance_port().filter(|p| *p != 0))
                    .map(int),
            ),
        ]));
    }
    let attrs = attrs_with_id(
        &ident,
        [
            ("arn", db.db_instance_arn().map(str::to_string)),
            (
                "endpoint",
                db.endpoint().and_then(|e| e.address()).map(str::to_string),
            ),
            (
                "port",
                db.endpoint().and_then(|e| e.port()).map(|p| p.to_string()),
            ),
            ("secret_arn", secret_arn(db.master_user_secret())),
            (
                "parameter_apply_status",
                parameter_group
                    .and_then(|g| g.parameter_apply_status())
                    .map(str::to_string),
            ),
        ],
    );
    let status = db.db_instance_status().unwrap_or_default();
    Some(db_observed(
        Kind::DbInstance,
        id,
        ident,
        (fields, attrs),
        status,
        &pending_changes(db),
    ))
}

#[cfg(test)]
mod tests {
    use super::super::{restored_fields, restored_tags, test_rds, test_scope, test_tags};
    use super::*;
    use crate::fields::assert_ready_as;
    use crate::KindOps;
    use aws_sdk_rds::types::{
        DbParameterGroupStatus, DbSubnetGroup, Endpoint, PendingModifiedValues,
        VpcSecurityGroupMembership,
    };
    use moodlestack_model::{Lifecycle, Readiness, Want};

    fn standalone(status: &str) -> aws_sdk_rds::types::builders::DbInstanceBuilder {
        DbInstance::builder()
            .db_instance_identifier("demo-db")
            .db_instance_arn("arn:aws:rds:eu-west-1:1:db:demo-db")
            .db_instance_status(status)
            .engine("mysql")
            .engine_version("8.0.39")
            .db_instance_class("db.t4g.medium")
            .allocated_storage(20)
            .max_allocated_storage(100)
            .storage_type("gp3")
            .storage_encrypted(true)
            .multi_az(true)
            .backup_retention_period(7)
            .deletion_protection(true)
            .vpc_security_groups(
                VpcSecurityGroupMembership::builder()
                    .vpc_security_group_id("sg-1")
                    .build(),
            )
            .db_subnet_group(
                DbSubnetGroup::builder()
                    .db_subnet_group_name("demo-db")
                    .build(),
            )
            .publicly_accessible(false)
            .master_username("moodle")
            .db_name("moodle")
            .endpoint(Endpoint::builder().address("demo-db.x").port(3306).build())
            .master_user_secret(MasterUserSecret::builder().secret_arn("arn:secret").build())
            .db_parameter_groups(
                DbParameterGroupStatus::builder()
                    .db_parameter_group_name("demo-mysql8-0")
                    .parameter_apply_status("pending-reboot")
                    .build(),
            )
            .set_tag_list(Some(test_tags("db.instance")))
    }

    #[test]
    fn an_instance_is_observed_with_its_descriptors_fields() {
        let o = observed(&test_scope(), &standalone("available").build()).unwrap();
        // Only Aurora members have a cluster.
        assert_ready_as(&o, "db.instance", &["cluster_identifier", "restore_from"]);
        // As AWS reports it; the descriptor's version rule finds it satisfies the stack's `8.0`.
        assert_eq!(o.fields["engine_version"], Value::str("8.0.39"));
        let v = moodlestack_model::spec(Kind::DbInstance)
            .field("engine_version")
            .unwrap();
        assert!(!v.differs(&Value::str("8.0"), o.fields.get("engine_version")));
        assert_eq!(o.fields["allocated_storage"], Value::Int(20));
        assert_eq!(o.fields["port"], Value::Int(3306));
        assert_eq!(
            o.fields["parameter_group_name"],
            Value::str("demo-mysql8-0")
        );
        assert_eq!(o.attrs["secret_arn"], "arn:secret");
        assert_eq!(o.attrs["endpoint"], "demo-db.x");
        assert_eq!(o.attrs["parameter_apply_status"], "pending-reboot");
        let other = crate::fields::test_scope("other");
        assert!(observed(&other, &standalone("available").build()).is_none());
    }

    #[test]
    fn an_instance_with_pending_modifications_is_not_ready() {
        let db = standalone("available")
            .pending_modified_values(
                PendingModifiedValues::builder()
                    .db_instance_class("db.r7g.large")
                    .multi_az(true)
                    .build(),
            )
            .build();
        assert_eq!(pending_changes(&db), ["instance_class", "multi_az"]);
        let o = observed(&test_scope(), &db).unwrap();
        assert_eq!(o.lifecycle, Lifecycle::Modifying);
        assert_eq!(
            kinds::DbInstance.readiness(o, Want::Ready),
            Readiness::Pending("available, applying instance_class, multi_az".into())
        );
        let o = observed(&test_scope(), &standalone("creating").build()).unwrap();
        assert_eq!(o.lifecycle, Lifecycle::Creating);
        let o = observed(&test_scope(), &standalone("incompatible-network").build()).unwrap();
        assert_eq!(o.lifecycle, Lifecycle::Failed);
        assert_eq!(
            kinds::DbInstance.readiness(o, Want::Ready),
            Readiness::Failed {
                status: "incompatible-network".into(),
                fix: None,
            }
        );
        assert!(pending_changes(&DbInstance::builder().build()).is_empty());
    }

    #[test]
    fn members_report_no_storage_backup_or_credential_fields() {
        let member = DbInstance::builder()
            .db_instance_identifier("demo-db-1")
            .db_instance_status("available")
            .engine("aurora-mysql")
            .db_cluster_identifier("demo-db")
            .allocated_storage(1)
            .backup_retention_period(7)
            .master_username("moodle")
            .set_tag_list(Some(test_tags("db.instance.1")))
            .build();
        let o = observed(&test_scope(), &member).unwrap();
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

    /// A standalone instance restored from `snapshot` (its tag), as RDS reports it after the
    /// restore: no managed master secret.
    fn restored(status: &str, snapshot: &str) -> DbInstance {
        let mut db = standalone(status).build();
        db.master_user_secret = None;
        db.tag_list = Some(restored_tags("db.instance", snapshot));
        db
    }

    #[test]
    fn a_restore_does_not_ask_for_the_managed_password_it_cannot_have() {
        let class = ("instance_class", Value::str("db.t4g.medium"));
        let more = [
            ("engine", Value::str("mysql")),
            class,
            ("multi_az", true.into()),
        ];
        let fields = restored_fields("demo-code-1", more);
        let r = Reader::new(Kind::DbInstance, "db.instance", &fields);
        let req = restore(&test_rds(), &test_scope(), &r, "demo-code-1").unwrap();
        let i = req.as_input();
        assert_eq!(i.get_db_instance_identifier().as_deref(), Some("demo-db"));
        assert_eq!(
            i.get_db_snapshot_identifier().as_deref(),
            Some("demo-code-1")
        );
        assert_eq!(*i.get_multi_az(), Some(true));
        // Oracle only (RestoreDBInstanceFromDBSnapshot API reference): settle asks for it.
        assert_eq!(*i.get_manage_master_user_password(), None);
        let tags = i.get_tags().as_deref().unwrap_or_default();
        assert!(tags.iter().any(|t| t.key() == Some(TAG_RESTORED_FROM)));
    }

    #[test]
    fn a_restored_instance_is_ready_once_rds_manages_its_master_password() {
        let db = restored("available", "demo-code-1");
        assert_eq!(pending_changes(&db), ["the managed master password"]);
        let o = observed(&test_scope(), &db).unwrap();
        assert!(!o.attrs.contains_key("secret_arn"));
        assert_eq!(
            kinds::DbInstance.readiness(o, Want::Ready),
            Readiness::Pending("available, applying the managed master password".into())
        );
        // Ready with its new secret: see the settle test below. A created instance without a secret (not restored) is not held back.
        let plain = standalone("available").set_master_user_secret(None).build();
        assert!(pending_changes(&plain).is_empty());
    }

    /// An HTTP connector that records each request's body and answers ModifyDBInstance with
    /// `answer` (RDS's XML).
    #[derive(Debug, Clone)]
    struct Answers {
        sent: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
        answer: &'static str,
    }

    impl aws_smithy_runtime_api::client::http::HttpConnector for Answers {
        fn call(
            &self,
            request: aws_smithy_runtime_api::client::orchestrator::HttpRequest,
        ) -> aws_smithy_runtime_api::client::http::HttpConnectorFuture {
            let body = request.body().bytes().unwrap_or_default();
            self.sent
                .lock()
                .unwrap()
                .push(String::from_utf8_lossy(body).into_owned());
            let status = aws_smithy_runtime_api::http::StatusCode::try_from(200u16).unwrap();
            let body = aws_smithy_types::body::SdkBody::from(self.answer);
            let response = aws_smithy_runtime_api::http::Response::new(status, body);
            aws_smithy_runtime_api::client::http::HttpConnectorFuture::ready(Ok(response))
        }
    }

    #[tokio::test]
    async fn settle_turns_on_the_managed_password_of_an_available_restored_instance() {
        // What RDS answers: the instance with its new secret, no tag list.
        let answers = Answers {
            sent: Default::default(),
            answer: "<ModifyDBInstanceResponse><ModifyDBInstanceResult><DBInstance>\
                <DBInstanceIdentifier>demo-db</DBInstanceIdentifier>\
                <DBInstanceStatus>available</DBInstanceStatus>\
                <MasterUserSecret><SecretArn>arn:new</SecretArn>\
                <SecretStatus>creating</SecretStatus></MasterUserSecret>\
                </DBInstance></ModifyDBInstanceResult></ModifyDBInstanceResponse>",
        };
        let connector =
            aws_smithy_runtime_api::client::http::SharedHttpConnector::new(answers.clone());
        let config = aws_types::SdkConfig::builder()
            .behavior_version(aws_sdk_rds::config::BehaviorVersion::latest())
            .region(aws_types::region::Region::new("eu-west-1"))
            .credentials_provider(aws_types::sdk_config::SharedCredentialsProvider::new(
                aws_sdk_rds::config::Credentials::new("AKID", "SECRET", None, None, "test"),
            ))
            .http_client(aws_smithy_runtime_api::client::http::http_client_fn(
                move |_, _| connector.clone(),
            ))
            .build();
        let c = Clients::new(&config, &crate::RequestStats::new());
        // Not available yet, or not restored: left as it is, nothing sent.
        let creating = restored("creating", "demo-code-1");
        assert_eq!(Db::settle(&c, creating.clone()).await.unwrap(), creating);
        let plain = standalone("available").set_master_user_secret(None).build();
        assert_eq!(Db::settle(&c, plain.clone()).await.unwrap(), plain);
        assert!(answers.sent.lock().unwrap().is_empty());
        // Available without a secret: ONE ModifyDBInstance, applied immediately.
        let settled = Db::settle(&c, restored("available", "demo-code-1"))
            .await
            .unwrap();
        let sent = answers.sent.lock().unwrap().clone();
        assert_eq!(sent.len(), 1, "{sent:?}");
        for part in [
            "Action=ModifyDBInstance",
            "DBInstanceIdentifier=demo-db",
            "ManageMasterUserPassword=true",
            "ApplyImmediately=true",
        ] {
            assert!(sent[0].contains(part), "{part} in {}", sent[0]);
        }
        // The secret from the answer, the tags it had: observed ready with its new secret.
        let o = observed(&test_scope(), &settled).unwrap();
        assert_eq!(o.attrs["secret_arn"], "arn:new");
        assert_eq!(o.lifecycle, Lifecycle::Ready);
        assert_eq!(o.fields["restore_from"], Value::str("demo-code-1"));
    }
}
