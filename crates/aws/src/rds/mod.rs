//! RDS: DB subnet groups, DB and DB cluster parameter groups, DB instances (standalone engines
//! and Aurora members) and Aurora DB clusters, one [`crate::KindOps`] each (the two parameter
//! group kinds share one implementation, parameterized by the kind).
//!
//! Finding the stack's resources: RDS describes take `Filters`, but no tag filters. Every kind is
//! keyed by a deterministic name, so each is listed with ONE paginated describe (or one describe
//! of the name asked for); only resources named like the stack's ([`Names`]: `<stack>-...`, or a
//! name a desired resource of that kind declares) are considered, and of those only the ones
//! whose tags carry `moodlestack:stack` = the stack are returned. Instances and clusters report
//! their `TagList` in the describe; subnet and parameter groups do not, so their tags are read
//! with `ListTagsForResource` (RDS has no batch tag read) for those candidates only, all in
//! flight at once.
//!
//! Credentials: instances and clusters are always created with `ManageMasterUserPassword=true`;
//! no request built here ever carries a password. A restore from a snapshot cannot ask for it
//! (Aurora, and every standalone engine but Oracle): the restored database gets it from one
//! modification once it is available ([`Db::settle`]) and is not ready until then. The secret's
//! ARN is the `secret_arn` attr.
//!
//! Updates use `ApplyImmediately=true`: the stack file is the source of truth, `apply` reads every
//! managed field back afterwards, and a change parked until the maintenance window would leave the
//! stack out of sync for up to a week with nothing in the plan saying so. Static parameter group
//! values are the one exception RDS imposes: they are applied `pending-reboot`, and the instance
//! reports that as its `parameter_apply_status` attr.
//!
//! Instances and clusters are ready when they serve with every applied change in effect: a
//! modification applied immediately shows as pending modified values for a while (the status can
//! still read `available`); such a resource is [`Lifecycle::Modifying`] and its status says what
//! it is applying.

mod cluster;
mod instance;
mod parameter_group;
mod snapshot;
mod subnet_group;

/// The service's kinds under their [`Kind`](moodlestack_model::Kind) names, for the registry
/// [`ops`](crate::ops).
pub(crate) mod kinds {
    pub(crate) use super::{
        cluster::kinds::*, instance::kinds::*, parameter_group::kinds::*, snapshot::kinds::*,
        subnet_group::kinds::*,
    };
}

use crate::fields::{
    answer, exists_or_err, retag, sent, sorted_strs, tag_map, tagged, Names, Reader, Sdk, SdkFault,
    SdkRaw,
};
use crate::{lifecycle_readiness, Clients, Created, Cx, KindOps, Query, Update};
use async_trait::async_trait;
use aws_sdk_rds::types::{MasterUserSecret, Tag, VpcSecurityGroupMembership};
use moodlestack_model::{
    CloudError, DeleteOptions, Fields, Kind, Lifecycle, Observed, Readiness, ResourceId, Scope,
    Value, Want, TAG_RESTORED_FROM,
};
use std::collections::BTreeMap;
use std::marker::PhantomData;

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

fn to_tags(tags: BTreeMap<String, String>) -> Vec<Tag> {
    tags.into_iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect()
}

/// Every tag a create call carries.
fn rds_tags(scope: &Scope, id: &ResourceId, r: &Reader) -> Result<Vec<Tag>, CloudError> {
    Ok(to_tags(all_tags(scope, id, r)?))
}

async fn list_tags(c: &Clients, arn: &str) -> Result<BTreeMap<String, String>, CloudError> {
    let req = c.rds.list_tags_for_resource().resource_name(arn);
    let out = answer("rds:ListTagsForResource", req.send()).await?;
    Ok(tag_map(out.tag_list()))
}

/// Adds or overwrites the tags the stack sets (tags are compared as a subset: others' tags stay).
async fn put_tags(c: &Clients, current: &Observed, r: &Reader<'_>) -> Result<(), CloudError> {
    let operation = "rds:AddTagsToResource";
    let (arn, tags) = retag(operation, current, r)?;
    sent(
        operation,
        c.rds
            .add_tags_to_resource()
            .resource_name(arn)
            .set_tags(Some(to_tags(tags)))
            .send(),
    )
    .await
}

/// The engine version the stack asked for (`desired`'s), to report AWS's more precise one as it.
/// `EngineLifecycleSupport` for a new database: RDS enrols MySQL and PostgreSQL databases (Aurora
/// included) whose major version reaches its end of standard support in paid RDS Extended
/// Support unless they are created with it disabled; moodlestack never opts anyone into a
/// charge. (Not an option for other engines.)
fn extended_support_off(engine: Option<&str>) -> Option<String> {
    matches!(
        engine,
        Some("mysql" | "postgres" | "aurora-mysql" | "aurora-postgresql")
    )
    .then(|| "open-source-rds-extended-support-disabled".to_string())
}

// ---------------------------------------------------------------------------------------------
// Instances and clusters: status words, readiness, deletion protection.

/// What DB instances and DB clusters share, for the code written once for both ([`DbOps`]): a
/// describe by identifier, a status word, deletion protection that a modification lifts, a tag
/// list, one modification call for the fields that change in place.
#[async_trait]
trait Db: Sized + Send + Sync {
    const KIND: Kind;
    /// The delete call's operation, e.g. `rds:DeleteDBCluster`.
    const DELETE: &'static str;
    /// The error code of a create (or restore) whose identifier is taken.
    const EXISTS: &'static str;
    /// The fields the modification call changes (all managed fields but the tags that change in
    /// place).
    const MODIFY: &'static [&'static str];
    /// The resources named `ident`, or all of them.
    async fn describe(c: &Clients, ident: Option<&str>) -> Result<Vec<Self>, CloudError>;
    /// The one modification `now` of the resource named `ident`, applied immediately (a
    /// ModifyDBCluster or ModifyDBInstance with [`modified_now!`]); the resource as the answer
    /// reports it.
    async fn modify_now(c: &Clients, ident: &str, now: Now) -> Result<Option<Self>, CloudError>;
    /// [`crate::KindOps::create`].
    async fn create(cx: &Cx<'_>, r: &Reader<'_>) -> Result<Created, CloudError>;
    /// The modification of the `changed` fields of [`Db::MODIFY`] (at least one), applied
    /// immediately; the resource as the answer reports it.
    async fn modify(
        cx: &Cx<'_>,
        current: &Observed,
        r: &Reader<'_>,
        changed: &[&str],
    ) -> Result<Option<Observed>, CloudError>;
    /// Deletes this resource (its deletion protection already lifted), with the final snapshot
    /// `options` ask for where the resource takes one.
    async fn delete(
        &self,
        c: &Clients,
        name: &str,
        options: &DeleteOptions,
    ) -> Result<(), CloudError>;
    /// What a restore could not ask for, asked for once a poll finds the resource able to take
    /// it: the managed master password of a restored database ([`needs_managed_password`]),
    /// turned on once it is `available`; the resource as it is then (the answer's, with the
    /// tags it had when the answer reports none).
    async fn settle(c: &Clients, db: Self) -> Result<Self, CloudError> {
        let waiting = db.status() == Some("available")
            && needs_managed_password(db.tags(), db.master_user_secret());
        let Some(ident) = db.ident().filter(|_| waiting) else {
            return Ok(db);
        };
        let Some(mut now) = Self::modify_now(c, ident, Now::ManagedPassword).await? else {
            return Ok(db);
        };
        if now.tags().is_empty() {
            now.set_tags(db.tags().to_vec());
        }
        Ok(now)
    }
    fn ident(&self) -> Option<&str>;
    fn status(&self) -> Option<&str>;
    /// The tags the describe reports (`TagList`).
    fn tags(&self) -> &[Tag];
    fn set_tags(&mut self, tags: Vec<Tag>);
    /// The secret RDS keeps the master password in, when it manages it.
    fn master_user_secret(&self) -> Option<&MasterUserSecret>;
    fn deletion_protection(&self) -> Option<bool>;
    /// The resource as observed (the engine version as AWS reports it: `Compare::Version`
    /// compares it with the stack's); None when it is not tagged with the stack.
    fn observed(&self, scope: &Scope) -> Option<Observed>;
}

/// A modification of an instance or cluster made outside a stack's update ([`Db::modify_now`]).
#[derive(Clone, Copy)]
enum Now {
    /// Deletion protection lifted, before a delete that may lift it ([`lift_protection`]).
    Unprotect,
    /// The master password managed by RDS in Secrets Manager (`ManageMasterUserPassword=true`:
    /// RDS makes a new secret), for a restored database ([`Db::settle`]). ModifyDBCluster and
    /// ModifyDBInstance both turn it on for a database without it ("If the DB cluster doesn't
    /// manage the master user password with Amazon Web Services Secrets Manager, you can turn
    /// on this management",
    /// <https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_ModifyDBCluster.html>;
    /// the same words for the DB instance,
    /// <https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_ModifyDBInstance.html>).
    ManagedPassword,
}

/// The request `$req` (a ModifyDBCluster or a ModifyDBInstance of one resource: their builders
/// have these setters) making the modification `$now` ([`Now`]), applied immediately.
macro_rules! modified_now {
    ($req:expr, $now:expr) => {
        match $now {
            Now::Unprotect => $req.deletion_protection(false),
            Now::ManagedPassword => $req.manage_master_user_password(true),
        }
        .apply_immediately(true)
    };
}
use modified_now;

/// The request `$req` (a ModifyDBCluster or a ModifyDBInstance of one resource: their builders
/// have these setters), applied immediately (see the module docs: not in the maintenance
/// window), with the fields both kinds change in place alike among those `$has` says changed:
/// the engine version (a major upgrade allowed: the stack asked for that version), the security
/// groups, the backup retention and deletion protection. In a function returning
/// `Result<_, CloudError>` (a field `$r` cannot read is its error).
macro_rules! with_shared_changes {
    ($req:expr, $r:expr, $has:expr) => {{
        let (mut req, r, has) = ($req.apply_immediately(true), $r, $has);
        if has("engine_version") {
            req = req
                .engine_version(r.str("engine_version")?)
                .allow_major_version_upgrade(true);
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
        req
    }};
}
use with_shared_changes;

/// The accessors of [`Db`] that both SDK types answer alike, from their getters and fields of
/// the same names (in an `impl Db for` of a module with `observed(scope, self)`).
macro_rules! db_accessors {
    () => {
        fn deletion_protection(&self) -> Option<bool> {
            self.deletion_protection()
        }
        fn tags(&self) -> &[Tag] {
            self.tag_list()
        }
        fn set_tags(&mut self, tags: Vec<Tag>) {
            self.tag_list = Some(tags);
        }
        fn master_user_secret(&self) -> Option<&MasterUserSecret> {
            self.master_user_secret()
        }
        fn observed(&self, scope: &Scope) -> Option<Observed> {
            observed(scope, self)
        }
    };
}
use db_accessors;

/// The [`KindOps`] of an instance or cluster kind, over its calls `T`.
pub(crate) struct DbOps<T>(PhantomData<T>);

impl<T> DbOps<T> {
    /// The implementation, for the registry.
    pub(crate) const OPS: Self = Self(PhantomData);
}

#[async_trait]
impl<T: Db> KindOps for DbOps<T> {
    async fn list(&self, cx: &Cx<'_>, q: Query<'_>) -> Result<Vec<Observed>, CloudError> {
        db_list::<T>(cx, q).await
    }

    async fn create(&self, cx: &Cx<'_>, r: &Reader<'_>) -> Result<Created, CloudError> {
        T::create(cx, r).await
    }

    async fn update(&self, cx: &Cx<'_>, u: Update<'_>) -> Result<Observed, CloudError> {
        let (current, r, changed) = u.parts();
        let modified = if T::MODIFY.iter().any(|f| changed.contains(f)) {
            T::modify(cx, current, r, changed).await?
        } else {
            None
        };
        if changed.contains(&"tags") {
            put_tags(cx.c, current, r).await?;
        }
        Ok(modified.unwrap_or_else(|| current.clone()))
    }

    async fn delete(&self, cx: &Cx<'_>, current: &Observed) -> Result<(), CloudError> {
        let options = &cx.delete;
        match db_to_delete::<T>(cx.c, current, options, T::DELETE).await? {
            Some(db) => db.delete(cx.c, &current.physical_id, options).await,
            None => Ok(()),
        }
    }

    fn readiness(&self, found: Observed, want: Want) -> Readiness {
        db_readiness(found, want)
    }
}

/// The outcome of a create call of an instance or cluster: the resource its answer reports
/// (`created`), or [`Created::Exists`] when the name is taken (a code starting with `exists`).
fn db_created<E: SdkFault, R: SdkRaw>(
    operation: &str,
    ident: &str,
    created: Sdk<Option<Observed>, E, R>,
    exists: &str,
) -> Result<Created, CloudError> {
    match created {
        Ok(o) => tagged(operation, ident, o).map(Created::New),
        Err(e) => exists_or_err(operation, e, exists),
    }
}

/// The outcome of a call that creates the instance or cluster `ident` (a create or a restore),
/// whose answer holds it as `pick(answer)`.
fn db_answered<T: Db, O, E: SdkFault, R: SdkRaw>(
    cx: &Cx<'_>,
    operation: &str,
    ident: &str,
    res: Sdk<O, E, R>,
    pick: impl FnOnce(&O) -> Option<&T>,
) -> Result<Created, CloudError> {
    let created = res.map(|out| pick(&out).and_then(|db| db.observed(cx.scope)));
    db_created(operation, ident, created, T::EXISTS)
}

/// [`crate::KindOps::list`] of instances and clusters: ONE describe (of the identifier asked for,
/// or of all), keeping the names asked for, the stack's, and unless one is asked for by its
/// physical id, what is not being deleted. A poll (by physical id) also [settles](Db::settle)
/// what it finds.
async fn db_list<T: Db>(cx: &Cx<'_>, q: Query<'_>) -> Result<Vec<Observed>, CloudError> {
    let Some(names) = Names::asked(cx, T::KIND, q) else {
        return Ok(Vec::new());
    };
    let mut found = T::describe(cx.c, names.one()).await?;
    if matches!(q, Query::Physical(_)) {
        let settled = found.into_iter().map(|db| T::settle(cx.c, db));
        found = futures::future::try_join_all(settled).await?;
    }
    Ok(found
        .iter()
        .filter(|db| db.ident().is_some_and(|n| names.matches(n)))
        .filter(|db| {
            matches!(q, Query::Physical(_)) || !matches!(db.status(), Some("deleting" | "deleted"))
        })
        .filter_map(|db| db.observed(cx.scope))
        .collect())
}

/// The steps before deleting an instance or cluster: None when it is gone or already being
/// deleted; its deletion protection lifted first when it has one (only when `options` allow it,
/// refused naming `operation` otherwise).
async fn db_to_delete<T: Db>(
    c: &Clients,
    current: &Observed,
    options: &DeleteOptions,
    operation: &str,
) -> Result<Option<T>, CloudError> {
    let name = current.physical_id.as_str();
    let Some(db) = T::describe(c, Some(name)).await?.into_iter().next() else {
        return Ok(None);
    };
    if matches!(db.status(), Some("deleting")) {
        return Ok(None);
    }
    if db.deletion_protection() == Some(true) {
        lift_protection(operation, current, options)?;
        T::modify_now(c, name, Now::Unprotect).await?;
    }
    Ok(Some(db))
}

/// The ids of the VPC security groups of an instance or cluster, as a field value.
fn vpc_security_group_ids(groups: &[VpcSecurityGroupMembership]) -> Value {
    sorted_strs(groups.iter().filter_map(|g| g.vpc_security_group_id()))
}

/// States in which the database serves clients with every applied setting: `available`, and
/// `storage-optimization` (after a storage change: the new size is in effect, RDS reorganizes in
/// the background for up to hours).
fn serving(status: &str) -> bool {
    matches!(status, "available" | "storage-optimization")
}

/// The status (AWS's word, plus what it is applying while modifications are pending) and the
/// lifecycle of an instance or cluster.
fn db_status(status: &str, pending: &[&str]) -> (String, Lifecycle) {
    let lifecycle = match status {
        "creating" => Lifecycle::Creating,
        "deleting" | "deleted" => Lifecycle::Deleting,
        s if FAILED_STATES.contains(&s) => Lifecycle::Failed,
        s if serving(s) && pending.is_empty() => Lifecycle::Ready,
        // Modifying, backing-up, rebooting, upgrading, ... and serving with changes pending.
        _ => Lifecycle::Modifying,
    };
    if serving(status) && !pending.is_empty() {
        (
            format!("{status}, applying {}", pending.join(", ")),
            lifecycle,
        )
    } else {
        (status.to_string(), lifecycle)
    }
}

/// The names of the managed fields whose pending modified value is set, in the order given.
fn pending_fields<const N: usize>(set: [(&'static str, bool); N]) -> Vec<&'static str> {
    set.into_iter()
        .filter_map(|(name, pending)| pending.then_some(name))
        .collect()
}

/// Whether a database is restored from a snapshot (its `moodlestack:restored-from` tag among
/// `tags`) and RDS does not manage its master password yet (no `secret`): a restore cannot ask
/// for it (see the restores of the cluster and the instance), [`Db::settle`] turns it on once
/// the database is available, and until then the database is not ready
/// ([`pending_master_password`]).
fn needs_managed_password(tags: &[Tag], secret: Option<&MasterUserSecret>) -> bool {
    let restored = tags.iter().any(|t| t.key() == Some(TAG_RESTORED_FROM));
    restored && secret.is_none()
}

/// The pending changes `pending` of a database, and its managed master password while a restored
/// one has none ([`needs_managed_password`]).
fn pending_master_password(
    mut pending: Vec<&'static str>,
    tags: &[Tag],
    secret: Option<&MasterUserSecret>,
) -> Vec<&'static str> {
    if needs_managed_password(tags, secret) {
        pending.push("the managed master password");
    }
    pending
}

/// The ARN of the secret RDS keeps the master password in.
fn secret_arn(secret: Option<&MasterUserSecret>) -> Option<String> {
    secret.and_then(|s| s.secret_arn()).map(str::to_string)
}

/// An instance or cluster as observed: its fields and attrs, and the status and lifecycle of its
/// status word and pending modifications ([`db_status`]).
fn db_observed(
    kind: Kind,
    id: ResourceId,
    ident: String,
    (fields, attrs): (Fields, BTreeMap<String, String>),
    status: &str,
    pending: &[&str],
) -> Observed {
    let (status, lifecycle) = db_status(status, pending);
    Observed {
        id: id.into(),
        kind,
        physical_id: ident,
        fields,
        attrs,
        status,
        lifecycle,
    }
}

/// [`crate::KindOps::readiness`] of instances and clusters: their lifecycle (pending modifications
/// and the failed states included, see [`db_status`]), and gone once RDS reports them `deleted`.
fn db_readiness(found: Observed, want: Want) -> Readiness {
    match want {
        Want::Gone if found.status == "deleted" => Readiness::Gone,
        _ => lifecycle_readiness(found, want),
    }
}

/// Whether deletion protection may be lifted to delete `current`: only when the delete options
/// say so (`--allow-data-loss`), refused otherwise.
fn lift_protection(
    operation: &str,
    current: &Observed,
    options: &DeleteOptions,
) -> Result<(), CloudError> {
    if options.lift_deletion_protection {
        Ok(())
    } else {
        Err(CloudError::Api {
            operation: operation.to_string(),
            code: "InvalidParameterCombination".into(),
            message: format!(
                "{} {} ({}) has deletion protection enabled and deleting it loses its data; \
                 the protection is lifted only when data loss is allowed (--allow-data-loss)",
                current.kind, current.id, current.physical_id
            ),
            source: None,
        })
    }
}

/// The delete options of a resource that may be snapshotted: a final snapshot when one is asked
/// for, none otherwise.
fn final_snapshot(options: &DeleteOptions) -> (Option<String>, bool) {
    match &options.final_snapshot_id {
        Some(snap) => (Some(snap.clone()), false),
        None => (None, true),
    }
}

#[cfg(test)]
fn test_scope() -> Scope {
    crate::fields::test_scope("demo")
}

/// An RDS client that sends nothing, to build requests with (`as_input`).
#[cfg(test)]
fn test_rds() -> aws_sdk_rds::Client {
    let config = aws_sdk_rds::Config::builder()
        .behavior_version(aws_sdk_rds::config::BehaviorVersion::latest())
        .region(aws_sdk_rds::config::Region::new("eu-west-1"));
    aws_sdk_rds::Client::from_conf(config.build())
}

/// The fields of a database `demo-db` restored from `snapshot` (`restore_from` and its tag), in
/// the subnet group `demo-db` and the security group `sg-1`, and `more`.
#[cfg(test)]
fn restored_fields<const N: usize>(snapshot: &str, more: [(&str, Value); N]) -> Fields {
    let tags = BTreeMap::from([(TAG_RESTORED_FROM.to_string(), Value::str(snapshot))]);
    let mut fields = Fields::from([
        ("identifier".into(), Value::str("demo-db")),
        ("db_subnet_group_name".into(), Value::str("demo-db")),
        ("vpc_security_group_ids".into(), Value::strs(["sg-1"])),
        ("restore_from".into(), Value::str(snapshot)),
        ("tags".into(), Value::Map(tags)),
    ]);
    fields.extend(more.map(|(k, v)| (k.to_string(), v)));
    fields
}

/// The tags of the resource `id` restored from `snapshot`.
#[cfg(test)]
fn restored_tags(id: &str, snapshot: &str) -> Vec<Tag> {
    let mut tags = test_tags(id);
    tags.push(
        Tag::builder()
            .key(TAG_RESTORED_FROM)
            .value(snapshot)
            .build(),
    );
    tags
}

#[cfg(test)]
fn test_tags(id: &str) -> Vec<Tag> {
    vec![
        Tag::builder()
            .key(moodlestack_model::TAG_STACK)
            .value("demo")
            .build(),
        Tag::builder()
            .key(moodlestack_model::TAG_ID)
            .value(id)
            .build(),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn ready_only_when_serving_with_nothing_pending() {
        let o = |status: &str, pending: &[&str]| {
            let (status, lifecycle) = db_status(status, pending);
            Observed {
                id: "db.instance".into(),
                kind: Kind::DbInstance,
                physical_id: "t-db".into(),
                fields: Fields::new(),
                attrs: BTreeMap::new(),
                status,
                lifecycle,
            }
        };
        assert!(matches!(
            db_readiness(o("available", &[]), Want::Ready),
            Readiness::Ready(_)
        ));
        assert!(matches!(
            db_readiness(o("storage-optimization", &[]), Want::Ready),
            Readiness::Ready(_)
        ));
        assert_eq!(
            db_readiness(o("available", &["instance_class"]), Want::Ready),
            Readiness::Pending("available, applying instance_class".into())
        );
        assert_eq!(
            db_readiness(o("modifying", &[]), Want::Ready),
            Readiness::Pending("modifying".into())
        );
        assert_eq!(
            db_readiness(o("incompatible-parameters", &[]), Want::Ready),
            Readiness::Failed {
                status: "incompatible-parameters".into(),
                fix: None,
            }
        );
        assert_eq!(
            db_readiness(o("deleting", &[]), Want::Gone),
            Readiness::Pending("deleting".into())
        );
        assert_eq!(db_readiness(o("deleted", &[]), Want::Gone), Readiness::Gone);
    }

    #[test]
    fn deletion_protection_is_lifted_only_when_data_loss_is_allowed() {
        let o = Observed {
            id: "db.instance".into(),
            kind: Kind::DbInstance,
            physical_id: "t-db".into(),
            fields: Fields::new(),
            attrs: BTreeMap::new(),
            status: "available".into(),
            lifecycle: Lifecycle::Ready,
        };
        let err =
            lift_protection("rds:DeleteDBInstance", &o, &DeleteOptions::default()).unwrap_err();
        assert!(err.to_string().contains("deletion protection"), "{err}");
        let allow = DeleteOptions {
            lift_deletion_protection: true,
            ..DeleteOptions::default()
        };
        assert!(lift_protection("rds:DeleteDBInstance", &o, &allow).is_ok());
    }
}
