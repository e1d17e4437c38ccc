//! The database snapshot a new code version waits for ([`Kind::DbSnapshot`]): a manual snapshot of
//! the stack's DB instance (CreateDBSnapshot) or Aurora cluster (CreateDBClusterSnapshot), tagged
//! on the create call with the stack, its logical id and the code version; the implementation adds
//! the code version of the snapshot it follows (`moodlestack:code-before`), read from the stack's
//! current snapshot, so a pre-upgrade snapshot names both versions.
//!
//! Listed with ONE describe of the manual snapshots of the stack's database identifier ([`Names`]:
//! instances and clusters share it), the tags from the describe's `TagList`. A released snapshot
//! (the one a newer version's snapshot replaced, or the one a destroy let go) has no
//! `moodlestack:id` tag: it is not the stack's resource any more, only a restore point, and never
//! taken back: a later snapshot for the same code version gets a name of its own (`<name>-2`,
//! [`Snapshot::create`]).

use super::{all_tags, to_tags};
use crate::fields::{answer, described_by, owned_id, tag_map, tagged, tags_value, Reader};
use crate::{Clients, Created, Cx, KindOps, Query, Update};
use async_trait::async_trait;
use moodlestack_model::{
    CloudError, Fields, Kind, Lifecycle, Observed, Scope, Value, TAG_CODE, TAG_CODE_BEFORE, TAG_ID,
    TAG_NAME, TAG_STACK,
};
use moodlestack_stack::names::Names;
use std::collections::BTreeMap;

pub(crate) mod kinds {
    pub(crate) use super::Snapshot as DbSnapshot;
}

/// One snapshot as both describes report it.
#[derive(Clone)]
struct Found {
    identifier: String,
    arn: String,
    instance: Option<String>,
    cluster: Option<String>,
    status: String,
    created: i64,
    tags: BTreeMap<String, String>,
}

fn lifecycle(status: &str) -> Lifecycle {
    match status {
        "available" => Lifecycle::Ready,
        "creating" | "copying" => Lifecycle::Creating,
        "deleting" => Lifecycle::Deleting,
        "failed" | "incompatible-restore" => Lifecycle::Failed,
        _ => Lifecycle::Creating,
    }
}

/// The stack's snapshot `f` as observed (None: released, or not the stack's). Only a snapshot
/// named like a code version's (`<stack>-code-...`) is one: an automated or a final snapshot may
/// carry the database's own tags (`CopyTagsToSnapshot`), `moodlestack:id` included.
fn observed(scope: &Scope, f: &Found) -> Option<Observed> {
    let prefix = format!("{}-code-", scope.stack);
    if !f.identifier.starts_with(&prefix) {
        return None;
    }
    let id = owned_id(scope, &f.tags)?;
    let mut fields = Fields::new();
    // A snapshot taken under a suffixed name (`<name>-2`: the name was taken by one the stack
    // released) is the stack's `name` all the same.
    let name = f.tags.get(TAG_NAME).unwrap_or(&f.identifier);
    fields.insert("identifier".into(), Value::str(name));
    if let Some(i) = &f.instance {
        fields.insert("db_instance_identifier".into(), Value::str(i));
    }
    if let Some(c) = &f.cluster {
        fields.insert("db_cluster_identifier".into(), Value::str(c));
    }
    fields.insert("tags".into(), tags_value(f.tags.clone()));
    Some(Observed {
        id: id.into(),
        kind: Kind::DbSnapshot,
        physical_id: f.identifier.clone(),
        fields,
        attrs: BTreeMap::from([
            ("id".into(), f.identifier.clone()),
            ("arn".into(), f.arn.clone()),
        ]),
        status: f.status.clone(),
        lifecycle: lifecycle(&f.status),
    })
}

/// The manual snapshots of the database `db` (instance and cluster ones, both describes at
/// once), or the one named `snapshot` (none when it does not exist).
async fn describe(
    c: &Clients,
    db: Option<&str>,
    snapshot: Option<&str>,
) -> Result<Vec<Found>, CloudError> {
    let by = snapshot.or(db);
    let instance = async {
        let req = c.rds.describe_db_snapshots().snapshot_type("manual");
        let req = req
            .set_db_instance_identifier(db.map(str::to_string))
            .set_db_snapshot_identifier(snapshot.map(str::to_string));
        let found = described_by!("rds:DescribeDBSnapshots", by, req).await?;
        Ok::<Vec<Found>, CloudError>(
            found
                .iter()
                .map(|s| Found {
                    identifier: s.db_snapshot_identifier().unwrap_or_default().to_string(),
                    arn: s.db_snapshot_arn().unwrap_or_default().to_string(),
                    instance: s.db_instance_identifier().map(str::to_string),
                    cluster: None,
                    status: s.status().unwrap_or_default().to_string(),
                    created: s.snapshot_create_time().map_or(0, |t| t.secs()),
                    tags: tag_map(s.tag_list()),
                })
                .collect(),
        )
    };
    let cluster = async {
        let req = c
            .rds
            .describe_db_cluster_snapshots()
            .snapshot_type("manual");
        let req = req
            .set_db_cluster_identifier(db.map(str::to_string))
            .set_db_cluster_snapshot_identifier(snapshot.map(str::to_string));
        let found = described_by!("rds:DescribeDBClusterSnapshots", by, req).await?;
        Ok::<Vec<Found>, CloudError>(
            found
                .iter()
                .map(|s| Found {
                    identifier: s
                        .db_cluster_snapshot_identifier()
                        .unwrap_or_default()
                        .to_string(),
                    arn: s.db_cluster_snapshot_arn().unwrap_or_default().to_string(),
                    instance: None,
                    cluster: s.db_cluster_identifier().map(str::to_string),
                    status: s.status().unwrap_or_default().to_string(),
                    created: s.snapshot_create_time().map_or(0, |t| t.secs()),
                    tags: tag_map(s.tag_list()),
                })
                .collect(),
        )
    };
    let (a, b) = tokio::join!(instance, cluster);
    Ok([a?, b?].concat())
}

/// The first of `name-2`, `name-3`, ... not in `taken`.
fn next_free(name: &str, taken: &[&str]) -> String {
    // At most `taken.len()` names are taken: one of the first `taken.len() + 1` is free.
    (2..=taken.len() + 2)
        .map(|n| format!("{name}-{n}"))
        .find(|c| !taken.contains(&c.as_str()))
        .unwrap_or_else(|| name.to_string())
}

/// One CreateDBSnapshot (of the DB instance) or CreateDBClusterSnapshot (of the cluster `db`)
/// named `identifier`, with `tags`; the snapshot as the answer reports it.
async fn snap(
    cx: &Cx<'_>,
    r: &Reader<'_>,
    identifier: &str,
    db: &str,
    tags: BTreeMap<String, String>,
) -> Result<Option<Found>, CloudError> {
    if let Some(instance) = r.opt_str("db_instance_identifier") {
        let req =
            cx.c.rds
                .create_db_snapshot()
                .db_snapshot_identifier(identifier)
                .db_instance_identifier(instance)
                .set_tags(Some(to_tags(tags)));
        answer("rds:CreateDBSnapshot", req.send()).await.map(|o| {
            o.db_snapshot().map(|s| Found {
                identifier: identifier.to_string(),
                arn: s.db_snapshot_arn().unwrap_or_default().to_string(),
                instance: Some(instance.to_string()),
                cluster: None,
                status: s.status().unwrap_or("creating").to_string(),
                created: 0,
                tags: tag_map(s.tag_list()),
            })
        })
    } else {
        let req =
            cx.c.rds
                .create_db_cluster_snapshot()
                .db_cluster_snapshot_identifier(identifier)
                .db_cluster_identifier(db)
                .set_tags(Some(to_tags(tags)));
        answer("rds:CreateDBClusterSnapshot", req.send())
            .await
            .map(|o| {
                o.db_cluster_snapshot().map(|s| Found {
                    identifier: identifier.to_string(),
                    arn: s.db_cluster_snapshot_arn().unwrap_or_default().to_string(),
                    instance: None,
                    cluster: Some(db.to_string()),
                    status: s.status().unwrap_or("creating").to_string(),
                    created: 0,
                    tags: tag_map(s.tag_list()),
                })
            })
    }
}

/// `AWS::RDS::DBSnapshot` (and cluster snapshots).
pub(crate) struct Snapshot;

#[async_trait]
impl KindOps for Snapshot {
    async fn list(&self, cx: &Cx<'_>, q: Query<'_>) -> Result<Vec<Observed>, CloudError> {
        let found = match q {
            Query::Stack => {
                let db = Names::for_stack(&cx.scope.stack, &cx.scope.region).db_identifier();
                describe(cx.c, Some(&db), None).await?
            }
            Query::Logical { fields, .. } => {
                let db = ["db_instance_identifier", "db_cluster_identifier"]
                    .iter()
                    .find_map(|f| fields.get(*f).and_then(Value::as_str));
                match (fields.get("identifier").and_then(Value::as_str), db) {
                    // The database's snapshots: one of this name may have a suffixed one's
                    // (`<name>-2`, named by its tag).
                    (Some(name), Some(db)) => {
                        let all = describe(cx.c, Some(db), None).await?;
                        return Ok(all
                            .iter()
                            .filter_map(|f| observed(cx.scope, f))
                            .filter(|o| o.fields.get("identifier") == Some(&Value::str(name)))
                            .collect());
                    }
                    (Some(name), None) => describe(cx.c, None, Some(name)).await?,
                    (None, _) => Vec::new(),
                }
            }
            Query::Physical(name) => describe(cx.c, None, Some(name)).await?,
        };
        Ok(found.iter().filter_map(|f| observed(cx.scope, f)).collect())
    }

    /// ONE create call with every tag, plus `moodlestack:code-before`: the code version of the
    /// stack's current snapshot (the newest one with the stack's tags; `none` on a new stack).
    ///
    /// A snapshot of that name this stack released earlier (the first attempt at this code
    /// version, before a rollback; or the stack destroyed and made again) holds the database as
    /// it was then, not as it is now: it is never taken back as this version's snapshot. A new
    /// one is taken under the next free name (`<name>-2`, `-3`, ...: RDS names are unique and
    /// cannot be changed), tagged `moodlestack:name` with the stack's name for it. Another
    /// stack's snapshot of that name is left alone.
    async fn create(&self, cx: &Cx<'_>, r: &Reader<'_>) -> Result<Created, CloudError> {
        let name = r.str("identifier")?;
        let mut tags = all_tags(cx.scope, &r.id, r)?;
        let db = r
            .opt_str("db_instance_identifier")
            .or_else(|| r.opt_str("db_cluster_identifier"))
            .ok_or_else(|| CloudError::Field {
                kind: Kind::DbSnapshot,
                id: r.id.clone(),
                field: "db_instance_identifier".into(),
                problem: "neither a DB instance nor a DB cluster to snapshot".into(),
            })?;
        let earlier = describe(cx.c, Some(db), None).await?;
        let before = earlier
            .iter()
            .filter(|f| f.tags.get(TAG_STACK) == Some(&cx.scope.stack))
            .filter(|f| f.tags.get(TAG_ID).map(String::as_str) == Some(r.id.as_str()))
            .filter(|f| f.identifier != name)
            .max_by_key(|f| f.created)
            .and_then(|f| f.tags.get(TAG_CODE).cloned())
            .unwrap_or_else(|| "none".into());
        tags.insert(TAG_CODE_BEFORE.into(), before);
        // The database's snapshots, read above, say whether the stack released one of this name.
        let released = earlier.iter().any(|f| {
            f.identifier == name
                && f.tags.get(TAG_STACK) == Some(&cx.scope.stack)
                && !f.tags.contains_key(TAG_ID)
        });
        let taken = if released {
            let taken: Vec<&str> = earlier.iter().map(|f| f.identifier.as_str()).collect();
            let next = next_free(name, &taken);
            tags.insert(TAG_NAME.into(), name.to_string());
            snap(cx, r, &next, db, tags).await
        } else {
            snap(cx, r, name, db, tags).await
        };
        let taken = match taken {
            // Ours and tagged (a repeated create), or another's: the generic code finds out.
            Err(e)
                if crate::fields::already_exists(&e, "DBSnapshotAlreadyExists")
                    || crate::fields::already_exists(&e, "DBClusterSnapshotAlreadyExists") =>
            {
                return Ok(Created::Exists)
            }
            other => other,
        };
        match taken? {
            Some(f) => {
                let o = tagged("rds:CreateDBSnapshot", name, observed(cx.scope, &f))?;
                Ok(Created::made(r, o))
            }
            None => Err(CloudError::UnexpectedAnswer {
                operation: "rds:CreateDBSnapshot".into(),
                what: format!("no snapshot in the answer for {name}"),
            }),
        }
    }

    async fn update(&self, cx: &Cx<'_>, u: Update<'_>) -> Result<Observed, CloudError> {
        let (current, r, changed) = u.parts();
        for field in changed {
            if *field != "tags" {
                return Err(crate::fields::in_place_only(
                    current.kind,
                    r,
                    field,
                    "database snapshot",
                ));
            }
        }
        if changed.contains(&"tags") {
            super::put_tags(cx.c, current, r).await?;
        }
        Ok(crate::fields::with_changes(current, r, changed))
    }

    /// Never deletes the snapshot (a restore point): releases it from the stack by removing its
    /// `moodlestack:id` tag. It keeps `moodlestack:stack` and its code versions.
    async fn delete(&self, cx: &Cx<'_>, current: &Observed) -> Result<(), CloudError> {
        let Some(arn) = current.attrs.get("arn") else {
            return Ok(());
        };
        let req =
            cx.c.rds
                .remove_tags_from_resource()
                .resource_name(arn)
                .tag_keys(TAG_ID);
        crate::fields::sent("rds:RemoveTagsFromResource", req.send()).await
    }
}
