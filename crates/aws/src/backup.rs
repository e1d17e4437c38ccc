//! AWS Backup: the stack's vault, its backup plan and the plan's selection, one [`KindOps`] each,
//! plus the on-demand backup of the file system a code version waits for (a recovery point made
//! by StartBackupJob) and the reads of `moodlestack backups` (recovery points).
//!
//! Vaults and plans carry the stack's tags from their create call (`BackupVaultTags`,
//! `BackupPlanTags`). AWS Backup has no tag filter on its lists: the stack's vaults are the
//! vaults named with the stack's prefix whose tags (ListTags, all at once) say they are the
//! stack's; plans likewise. Selections cannot be tagged or updated: they are listed per plan of
//! the stack (ListBackupSelections, then GetBackupSelection for the resources, all at once),
//! matched by (plan, name), and replaced on any change.

use crate::fields::by_name;
use crate::fields::{
    all_at_once, all_pages, answer, api_err, as_current, is_code, is_not_found, owned_id, sent,
    tag_map, tagged, tags_value, unexpected, unix_secs, unless_taken, usable, Reader, Sdk,
    SdkFault, SdkRaw,
};
use crate::{Clients, Created, Cx, KindOps, Query, Update};
use async_trait::async_trait;
use aws_sdk_backup::types::{BackupPlanInput, BackupRuleInput, BackupSelection, Lifecycle as Keep};
use moodlestack_model::{
    CloudError, Fields, Kind, Lifecycle, Observed, ObservedId, RestorePoint, Scope, Value,
    TAG_CODE, TAG_CODE_BEFORE, TAG_ID, TAG_NAME, TAG_STACK,
};
use moodlestack_stack::names::Names;
use std::collections::{BTreeMap, HashMap};

type Tags = BTreeMap<String, String>;

/// The tags of the Backup resource `arn` (None: it does not exist).
async fn tags_of(c: &Clients, arn: &str) -> Result<Option<Tags>, CloudError> {
    let req = c.backup.list_tags().resource_arn(arn);
    let out = missing_is_none(answer("backup:ListTags", req.send()).await)?;
    Ok(out.map(|out| {
        out.tags()
            .map(|t| t.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default()
    }))
}

/// AWS Backup's "does not exist" (it answers `ResourceNotFoundException`, and for a vault whose
/// name another account holds `AccessDeniedException`).
fn is_missing(e: &CloudError) -> bool {
    is_code(e, "ResourceNotFoundException") || is_code(e, "AccessDeniedException")
}

/// `Ok(None)` for AWS Backup's "does not exist" ([`is_missing`]), the value or the error
/// otherwise.
fn missing_is_none<T>(r: Result<T, CloudError>) -> Result<Option<T>, CloudError> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(e) if is_missing(&e) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Awaits a delete (or an untag): done, also when AWS Backup answers that the resource is
/// already gone.
async fn gone<T, E: SdkFault, R: SdkRaw>(
    operation: &str,
    request: impl std::future::Future<Output = Sdk<T, E, R>>,
) -> Result<(), CloudError> {
    missing_is_none(sent(operation, request).await).map(drop)
}

/// Every item (`items`) of the collected pages of a list, or none when a page answers that what
/// it lists does not exist (`missing`), or the first other error, naming `operation`.
fn pages_or_none<P, T, E: SdkFault, R: SdkRaw, I: IntoIterator<Item = T>>(
    operation: &str,
    pages: Vec<Sdk<P, E, R>>,
    missing: impl Fn(&CloudError) -> bool,
    items: impl Fn(P) -> I,
) -> Result<Vec<T>, CloudError> {
    let mut out = Vec::new();
    for page in pages {
        match page.map_err(|e| api_err(operation, e)) {
            Ok(p) => out.extend(items(p)),
            Err(e) if missing(&e) => return Ok(Vec::new()),
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

/// A create of a vault, plan or selection: its `creator_request_id` names the stack and the
/// logical id (a repeated call answers with what the first one made); None when AWS answers
/// that the name is taken (the create is then [`Created::Exists`]).
async fn create_call<T, E: SdkFault, R: SdkRaw>(
    operation: &str,
    request: impl std::future::Future<Output = Sdk<T, E, R>>,
) -> Result<Option<T>, CloudError> {
    unless_taken(operation, "AlreadyExistsException", request).await
}

/// The `creator_request_id` of the create of `r` (see [`create_call`]).
fn request_id(cx: &Cx<'_>, r: &Reader<'_>) -> String {
    format!("{}-{}", cx.scope.stack, r.id)
}

// ---- vaults ---------------------------------------------------------------------------------

/// The vault `name`, `arn` as the stack sees it (None: not the stack's).
async fn vault_observed(
    c: &Clients,
    scope: &Scope,
    name: &str,
    arn: &str,
) -> Result<Option<Observed>, CloudError> {
    let Some(tags) = tags_of(c, arn).await? else {
        return Ok(None);
    };
    let Some(id) = owned_id(scope, &tags) else {
        return Ok(None);
    };
    let mut fields = Fields::new();
    fields.insert("name".into(), Value::str(name));
    fields.insert("tags".into(), tags_value(tags));
    Ok(Some(usable(Kind::BackupVault, id, name, arn, fields)))
}

/// The vault `name` (None when it does not exist or is not the stack's).
async fn vault(c: &Clients, scope: &Scope, name: &str) -> Result<Option<Observed>, CloudError> {
    let req = c.backup.describe_backup_vault().backup_vault_name(name);
    let Some(v) = missing_is_none(answer("backup:DescribeBackupVault", req.send()).await)? else {
        return Ok(None);
    };
    vault_observed(c, scope, name, v.backup_vault_arn().unwrap_or_default()).await
}

/// Every vault of the account, by (name, ARN): one paginated ListBackupVaults.
async fn all_vaults(c: &Clients) -> Result<Vec<(String, String)>, CloudError> {
    let req = c.backup.list_backup_vaults().into_paginator();
    let pages = req.send().try_collect().await;
    let vaults = all_pages("backup:ListBackupVaults", pages, |p| p.backup_vault_list())?;
    Ok(vaults
        .iter()
        .filter_map(|v| Some((v.backup_vault_name()?.into(), v.backup_vault_arn()?.into())))
        .collect())
}

/// The stack's vaults: ListBackupVaults, then the tags of those named with the stack's prefix.
async fn vaults(c: &Clients, scope: &Scope) -> Result<Vec<Observed>, CloudError> {
    let prefix = format!("{}-", scope.stack);
    let named = all_vaults(c).await?;
    let named = named.iter().filter(|(n, _)| n.starts_with(&prefix));
    all_at_once(named.map(|(n, a)| vault_observed(c, scope, n, a))).await
}

/// The recovery points in the vault `name`.
pub async fn recovery_points(
    c: &Clients,
    vault: &str,
) -> Result<Vec<aws_sdk_backup::types::RecoveryPointByBackupVault>, CloudError> {
    let pages: Vec<_> = c
        .backup
        .list_recovery_points_by_backup_vault()
        .backup_vault_name(vault)
        .into_paginator()
        .send()
        .collect::<Vec<_>>()
        .await;
    pages_or_none(
        "backup:ListRecoveryPointsByBackupVault",
        pages,
        is_missing,
        |p| p.recovery_points().to_vec(),
    )
}

/// `AWS::Backup::BackupVault`.
pub(crate) struct Vault;

#[async_trait]
impl KindOps for Vault {
    async fn list(&self, cx: &Cx<'_>, q: Query<'_>) -> Result<Vec<Observed>, CloudError> {
        let stack = vaults(cx.c, cx.scope);
        by_name(cx, Kind::BackupVault, q, stack, |name| async move {
            vault(cx.c, cx.scope, &name).await
        })
        .await
    }

    async fn create(&self, cx: &Cx<'_>, r: &Reader<'_>) -> Result<Created, CloudError> {
        let name = r.str("name")?;
        let tags = r.stack_tags(cx.scope)?;
        let req =
            cx.c.backup
                .create_backup_vault()
                .backup_vault_name(name)
                .set_backup_vault_tags(Some(tags.into_iter().collect::<HashMap<_, _>>()))
                .creator_request_id(request_id(cx, r));
        let Some(out) = create_call("backup:CreateBackupVault", req.send()).await? else {
            return Ok(Created::Exists);
        };
        let arn = out.backup_vault_arn().unwrap_or_default();
        let found = vault_observed(cx.c, cx.scope, name, arn).await?;
        tagged("backup:CreateBackupVault", name, found).map(Created::New)
    }

    async fn update(&self, cx: &Cx<'_>, u: Update<'_>) -> Result<Observed, CloudError> {
        let (current, r, changed) = u.parts();
        retag(cx, current, r, changed, Some("backup vault")).await?;
        let found = vault(cx.c, cx.scope, &current.physical_id).await?;
        as_current(found, current, || {
            unexpected("backup:ListTags", "the vault is gone after an update")
        })
    }

    /// Reached only with `--allow-data-loss` (the vault is stateful): every recovery point in
    /// it goes first (AWS refuses to delete a vault that holds any), then the vault.
    async fn delete(&self, cx: &Cx<'_>, current: &Observed) -> Result<(), CloudError> {
        let name = current.physical_id.as_str();
        let points = recovery_points(cx.c, name).await?;
        futures::future::try_join_all(points.iter().filter_map(|p| p.recovery_point_arn()).map(
            |arn| async move {
                let req =
                    cx.c.backup
                        .delete_recovery_point()
                        .backup_vault_name(name)
                        .recovery_point_arn(arn);
                gone("backup:DeleteRecoveryPoint", req.send()).await
            },
        ))
        .await?;
        let req = cx.c.backup.delete_backup_vault().backup_vault_name(name);
        gone("backup:DeleteBackupVault", req.send()).await
    }
}

/// Tags `current` (by its ARN) with the stack's tags when `tags` changed; an error for any
/// other field of a kind (`only_tags`: what it is) whose only in-place field is `tags`.
async fn retag(
    cx: &Cx<'_>,
    current: &Observed,
    r: &Reader<'_>,
    changed: &[&str],
    only_tags: Option<&str>,
) -> Result<(), CloudError> {
    if let (Some(what), Some(field)) = (only_tags, changed.iter().find(|f| **f != "tags")) {
        return Err(crate::fields::in_place_only(current.kind, r, field, what));
    }
    if !changed.contains(&"tags") {
        return Ok(());
    }
    let (arn, _) = crate::fields::retag("backup:TagResource", current, r)?;
    let tags = r.stack_tags(cx.scope)?;
    let req =
        cx.c.backup
            .tag_resource()
            .resource_arn(arn)
            .set_tags(Some(tags.into_iter().collect()));
    sent("backup:TagResource", req.send()).await
}

// ---- plans ----------------------------------------------------------------------------------

/// The plan's one rule from the desired fields.
fn plan_input(r: &Reader<'_>) -> Result<BackupPlanInput, CloudError> {
    let rule = BackupRuleInput::builder()
        .rule_name(r.str("rule_name")?)
        .target_backup_vault_name(r.str("vault_name")?)
        .schedule_expression(r.str("schedule")?)
        .schedule_expression_timezone(r.str("schedule_time_zone")?)
        .lifecycle(
            Keep::builder()
                .delete_after_days(r.int("retention_days")?)
                .build(),
        )
        .build()
        .map_err(|e| unexpected("backup:CreateBackupPlan", e.to_string()))?;
    BackupPlanInput::builder()
        .backup_plan_name(r.str("name")?)
        .rules(rule)
        .build()
        .map_err(|e| unexpected("backup:CreateBackupPlan", e.to_string()))
}

/// The plan `id` as the stack sees it (None: deleted, missing or not the stack's). With its ARN
/// known (listed), GetBackupPlan and ListTags go out together; without it, one after the other.
async fn plan(
    c: &Clients,
    scope: &Scope,
    id: &str,
    arn: Option<&str>,
) -> Result<Option<Observed>, CloudError> {
    let get = async {
        let req = c.backup.get_backup_plan().backup_plan_id(id);
        missing_is_none(answer("backup:GetBackupPlan", req.send()).await)
    };
    let (got, tags) = match arn {
        Some(arn) => {
            let (got, tags) = tokio::join!(get, tags_of(c, arn));
            (got?, tags?)
        }
        None => {
            let got = get.await?;
            let tags = match got.as_ref().and_then(|g| g.backup_plan_arn()) {
                Some(arn) => tags_of(c, arn).await?,
                None => None,
            };
            (got, tags)
        }
    };
    let Some(got) = got else {
        return Ok(None);
    };
    if got.deletion_date().is_some() {
        return Ok(None);
    }
    let arn = got.backup_plan_arn().unwrap_or_default();
    let Some(tags) = tags else {
        return Ok(None);
    };
    let Some(logical) = owned_id(scope, &tags) else {
        return Ok(None);
    };
    let body = got
        .backup_plan()
        .ok_or_else(|| unexpected("backup:GetBackupPlan", format!("plan {id} without a body")))?;
    let mut fields = Fields::new();
    fields.insert("name".into(), Value::str(body.backup_plan_name()));
    if let Some(rule) = body.rules().first() {
        fields.insert("rule_name".into(), Value::str(rule.rule_name()));
        fields.insert(
            "vault_name".into(),
            Value::str(rule.target_backup_vault_name()),
        );
        if let Some(s) = rule.schedule_expression() {
            fields.insert("schedule".into(), Value::str(s));
        }
        if let Some(tz) = rule.schedule_expression_timezone() {
            fields.insert("schedule_time_zone".into(), Value::str(tz));
        }
        if let Some(days) = rule.lifecycle().and_then(|l| l.delete_after_days()) {
            fields.insert("retention_days".into(), Value::Int(days));
        }
    }
    fields.insert("tags".into(), tags_value(tags));
    let mut o = usable(Kind::BackupPlan, logical, id, arn, fields);
    if let Some(v) = got.version_id() {
        o.attrs.insert("version_id".into(), v.to_string());
    }
    Ok(Some(o))
}

/// The stack's plans: ListBackupPlans (live ones), then each one named with the stack's prefix
/// read (GetBackupPlan and its tags), all at once.
async fn plans(c: &Clients, scope: &Scope) -> Result<Vec<Observed>, CloudError> {
    let ids = named_plans(c, scope).await?;
    all_at_once(
        ids.iter()
            .map(|(id, arn)| plan(c, scope, id, arn.as_deref())),
    )
    .await
}

/// The live plans named with the stack's prefix (ListBackupPlans): id and ARN. Not yet known to
/// be the stack's (their tags say that).
async fn named_plans(
    c: &Clients,
    scope: &Scope,
) -> Result<Vec<(String, Option<String>)>, CloudError> {
    let prefix = format!("{}-", scope.stack);
    let pages: Vec<_> = c
        .backup
        .list_backup_plans()
        .into_paginator()
        .send()
        .collect::<Vec<_>>()
        .await;
    let mut ids = Vec::new();
    for page in pages {
        let page = page.map_err(|e| api_err("backup:ListBackupPlans", e))?;
        for p in page.backup_plans_list() {
            if p.deletion_date().is_some() {
                continue;
            }
            if let (Some(n), Some(id)) = (p.backup_plan_name(), p.backup_plan_id()) {
                if n.starts_with(&prefix) {
                    ids.push((id.to_string(), p.backup_plan_arn().map(str::to_string)));
                }
            }
        }
    }
    Ok(ids)
}

/// `AWS::Backup::BackupPlan`.
pub(crate) struct Plan;

#[async_trait]
impl KindOps for Plan {
    async fn list(&self, cx: &Cx<'_>, q: Query<'_>) -> Result<Vec<Observed>, CloudError> {
        match q {
            Query::Stack => plans(cx.c, cx.scope).await,
            Query::Logical { fields, .. } => {
                let name = fields.get("name").and_then(Value::as_str);
                Ok(plans(cx.c, cx.scope)
                    .await?
                    .into_iter()
                    .filter(|p| p.fields.get("name").and_then(Value::as_str) == name)
                    .collect())
            }
            Query::Physical(id) => Ok(plan(cx.c, cx.scope, id, None).await?.into_iter().collect()),
        }
    }

    async fn create(&self, cx: &Cx<'_>, r: &Reader<'_>) -> Result<Created, CloudError> {
        let tags = r.stack_tags(cx.scope)?;
        let req =
            cx.c.backup
                .create_backup_plan()
                .backup_plan(plan_input(r)?)
                .set_backup_plan_tags(Some(tags.into_iter().collect()))
                .creator_request_id(request_id(cx, r));
        let Some(out) = create_call("backup:CreateBackupPlan", req.send()).await? else {
            return Ok(Created::Exists);
        };
        let id = out.backup_plan_id().unwrap_or_default();
        tagged(
            "backup:CreateBackupPlan",
            id,
            plan(cx.c, cx.scope, id, None).await?,
        )
        .map(Created::New)
    }

    /// The rule's fields with one UpdateBackupPlan (a new version of the plan), the tags with
    /// TagResource.
    async fn update(&self, cx: &Cx<'_>, u: Update<'_>) -> Result<Observed, CloudError> {
        let (current, r, changed) = u.parts();
        if changed.contains(&"name") {
            return Err(crate::fields::in_place_only(
                current.kind,
                r,
                "name",
                "backup plan",
            ));
        }
        if changed.iter().any(|f| *f != "tags") {
            let req =
                cx.c.backup
                    .update_backup_plan()
                    .backup_plan_id(&current.physical_id)
                    .backup_plan(plan_input(r)?);
            sent("backup:UpdateBackupPlan", req.send()).await?;
        }
        retag(cx, current, r, changed, None).await?;
        let found = plan(cx.c, cx.scope, &current.physical_id, None).await?;
        as_current(found, current, || {
            unexpected("backup:GetBackupPlan", "the plan is gone after an update")
        })
    }

    async fn delete(&self, cx: &Cx<'_>, current: &Observed) -> Result<(), CloudError> {
        let req =
            cx.c.backup
                .delete_backup_plan()
                .backup_plan_id(&current.physical_id);
        gone("backup:DeleteBackupPlan", req.send()).await
    }
}

// ---- selections -----------------------------------------------------------------------------

/// The selections of the plan `plan_id`, each read with GetBackupSelection (all at once).
async fn selections(c: &Clients, plan_id: &str) -> Result<Vec<Observed>, CloudError> {
    let req = c.backup.list_backup_selections().backup_plan_id(plan_id);
    let pages: Vec<_> = req.into_paginator().send().collect::<Vec<_>>().await;
    let ids = pages_or_none("backup:ListBackupSelections", pages, is_missing, |p| {
        p.backup_selections_list()
            .iter()
            .filter_map(|s| s.selection_id())
            .map(str::to_string)
            .collect::<Vec<_>>()
    })?;
    all_at_once(ids.iter().map(|id| selection(c, plan_id, id))).await
}

/// One selection, untagged with its identity fields (None: it does not exist).
async fn selection(c: &Clients, plan_id: &str, id: &str) -> Result<Option<Observed>, CloudError> {
    let req = c
        .backup
        .get_backup_selection()
        .backup_plan_id(plan_id)
        .selection_id(id);
    let got = missing_is_none(answer("backup:GetBackupSelection", req.send()).await)?;
    Ok(got
        .as_ref()
        .and_then(|g| g.backup_selection())
        .map(|s| selection_observed(plan_id, id, s)))
}

fn selection_observed(plan_id: &str, id: &str, s: &BackupSelection) -> Observed {
    let mut resources: Vec<String> = s.resources().to_vec();
    resources.sort();
    let mut fields = Fields::new();
    fields.insert("plan_id".into(), Value::str(plan_id));
    fields.insert("name".into(), Value::str(s.selection_name()));
    fields.insert("iam_role_arn".into(), Value::str(s.iam_role_arn()));
    fields.insert("resources".into(), Value::strs(resources));
    crate::fields::untagged(Kind::BackupSelection, id.to_string(), fields, "available")
}

/// `AWS::Backup::BackupSelection`, untaggable: found through the stack's plans.
pub(crate) struct Selection;

#[async_trait]
impl KindOps for Selection {
    async fn list(&self, cx: &Cx<'_>, q: Query<'_>) -> Result<Vec<Observed>, CloudError> {
        match q {
            // The selections of every plan named like the stack's are read while the plans'
            // tags are (one ListBackupPlans more, two levels of requests fewer); only those of
            // the plans that are the stack's are kept.
            Query::Stack => {
                let read = async {
                    let named = named_plans(cx.c, cx.scope).await?;
                    let per_plan = futures::future::try_join_all(
                        named.iter().map(|(id, _)| selections(cx.c, id)),
                    )
                    .await?;
                    Ok::<_, CloudError>(per_plan.into_iter().flatten().collect::<Vec<_>>())
                };
                let (ours, found) = tokio::try_join!(cx.listed(Kind::BackupPlan), read)?;
                Ok(found
                    .into_iter()
                    .filter(|s| {
                        let plan = s.fields.get("plan_id").and_then(Value::as_str);
                        ours.iter().any(|p| Some(p.physical_id.as_str()) == plan)
                    })
                    .collect())
            }
            Query::Logical { fields, .. } => match fields.get("plan_id").and_then(Value::as_str) {
                Some(plan_id) => selections(cx.c, plan_id).await,
                None => Ok(Vec::new()),
            },
            Query::Physical(id) => {
                let plans = cx.listed(Kind::BackupPlan).await?;
                all_at_once(plans.iter().map(|p| selection(cx.c, &p.physical_id, id))).await
            }
        }
    }

    async fn create(&self, cx: &Cx<'_>, r: &Reader<'_>) -> Result<Created, CloudError> {
        let plan_id = r.str("plan_id")?;
        let body = BackupSelection::builder()
            .selection_name(r.str("name")?)
            .iam_role_arn(r.str("iam_role_arn")?)
            .set_resources(Some(r.strs("resources")?))
            .build()
            .map_err(|e| unexpected("backup:CreateBackupSelection", e.to_string()))?;
        let req =
            cx.c.backup
                .create_backup_selection()
                .backup_plan_id(plan_id)
                .backup_selection(body.clone())
                .creator_request_id(request_id(cx, r));
        Ok(
            match create_call("backup:CreateBackupSelection", req.send()).await? {
                Some(out) => {
                    let o =
                        selection_observed(plan_id, out.selection_id().unwrap_or_default(), &body);
                    Created::made(r, o)
                }
                None => Created::Exists,
            },
        )
    }

    async fn update(&self, _cx: &Cx<'_>, u: Update<'_>) -> Result<Observed, CloudError> {
        let (current, r, changed) = u.parts();
        match changed.first() {
            Some(field) => Err(crate::fields::in_place_only(
                current.kind,
                r,
                field,
                "backup selection",
            )),
            None => Ok(current.clone()),
        }
    }

    async fn delete(&self, cx: &Cx<'_>, current: &Observed) -> Result<(), CloudError> {
        let plan_id = current
            .fields
            .get("plan_id")
            .and_then(Value::as_str)
            .ok_or_else(|| unexpected("backup:DeleteBackupSelection", "no plan id observed"))?;
        let req =
            cx.c.backup
                .delete_backup_selection()
                .backup_plan_id(plan_id)
                .selection_id(&current.physical_id);
        gone("backup:DeleteBackupSelection", req.send()).await
    }
}

// ---- the code version's backup of the file system -------------------------------------------

/// A recovery point's status word as a [`Lifecycle`]: `CREATING` while its backup job runs,
/// `COMPLETED` (`AVAILABLE` in the newer API model) once it can be restored.
fn point_lifecycle(status: &str) -> Lifecycle {
    match status {
        "COMPLETED" | "AVAILABLE" => Lifecycle::Ready,
        "DELETING" => Lifecycle::Deleting,
        "PARTIAL" | "EXPIRED" | "STOPPED" => Lifecycle::Failed,
        _ => Lifecycle::Creating,
    }
}

/// What a recovery point reports, as read by a list or a describe.
struct Point<'a> {
    arn: &'a str,
    resource: &'a str,
    role: &'a str,
    status: &'a str,
    created: i64,
}

/// The recovery point `p` of the vault `vault` as the stack sees it (None: not the stack's, or
/// released from it). Its `name` is its `moodlestack:name` tag.
fn point_observed(scope: &Scope, vault: &str, p: &Point<'_>, tags: Tags) -> Option<Observed> {
    let id = owned_id(scope, &tags)?;
    let mut fields = Fields::new();
    if let Some(name) = tags.get(TAG_NAME) {
        fields.insert("name".into(), Value::str(name));
    }
    fields.insert("vault_name".into(), Value::str(vault));
    fields.insert("resource_arn".into(), Value::str(p.resource));
    fields.insert("iam_role_arn".into(), Value::str(p.role));
    fields.insert("tags".into(), tags_value(tags));
    let mut o = usable(Kind::BackupRecoveryPoint, id, p.arn, p.arn, fields);
    o.status = p.status.to_string();
    o.lifecycle = point_lifecycle(p.status);
    Some(o)
}

/// The stack's on-demand recovery points in the vault `vault` (the scheduled ones, made by a
/// backup plan, are never a resource of the stack: their tags are not read), each with its
/// creation time: one list, then every one's tags at once.
async fn on_demand_points(
    c: &Clients,
    scope: &Scope,
    vault: &str,
) -> Result<Vec<(i64, Observed)>, CloudError> {
    Ok(on_demand_tagged(c, scope, vault).await?.0)
}

/// [`on_demand_points`], and the names (`moodlestack:name`) of the on-demand points the stack
/// released, once for each.
async fn on_demand_tagged(
    c: &Clients,
    scope: &Scope,
    vault: &str,
) -> Result<(Vec<(i64, Observed)>, Vec<String>), CloudError> {
    let points = recovery_points(c, vault).await?;
    let on_demand: Vec<_> = points
        .iter()
        .filter(|p| p.created_by().and_then(|b| b.backup_plan_id()).is_none())
        .collect();
    let tags = futures::future::try_join_all(
        on_demand
            .iter()
            .map(|p| tags_of(c, p.recovery_point_arn().unwrap_or_default())),
    )
    .await?;
    let released = tags
        .iter()
        .flatten()
        .filter(|t| t.get(TAG_STACK) == Some(&scope.stack) && !t.contains_key(TAG_ID))
        .filter_map(|t| t.get(TAG_NAME).cloned())
        .collect();
    let observed = on_demand
        .iter()
        .zip(tags)
        .filter_map(|(p, tags)| {
            let point = Point {
                arn: p.recovery_point_arn().unwrap_or_default(),
                resource: p.resource_arn().unwrap_or_default(),
                role: p.iam_role_arn().unwrap_or_default(),
                status: p.status().map_or("", |s| s.as_str()),
                created: p.creation_date().map_or(0, |d| d.secs()),
            };
            Some((point.created, point_observed(scope, vault, &point, tags?)?))
        })
        .collect();
    Ok((observed, released))
}

/// The vault a query of recovery points reads: the one the desired resource names (a poll's
/// stand-in carries the resolved name), else the stack's.
fn points_vault(cx: &Cx<'_>) -> String {
    cx.desired
        .iter()
        .filter(|d| d.kind == Kind::BackupRecoveryPoint)
        .find_map(|d| d.fields.get("vault_name").and_then(Value::as_str))
        .map_or_else(
            || Names::for_stack(&cx.scope.stack, &cx.scope.region).backup_vault(),
            str::to_string,
        )
}

/// `AWS::Backup::RecoveryPoint`: an on-demand backup (StartBackupJob) the code version waits for.
pub(crate) struct RecoveryPoint;

#[async_trait]
impl KindOps for RecoveryPoint {
    async fn list(&self, cx: &Cx<'_>, q: Query<'_>) -> Result<Vec<Observed>, CloudError> {
        match q {
            Query::Stack => {
                let found = on_demand_points(cx.c, cx.scope, &points_vault(cx)).await?;
                Ok(found.into_iter().map(|(_, o)| o).collect())
            }
            // The one of this name (code version): an earlier version's is another resource.
            Query::Logical { fields, .. } => {
                let (Some(vault), Some(name)) = (
                    fields.get("vault_name").and_then(Value::as_str),
                    fields.get("name"),
                ) else {
                    return Ok(Vec::new());
                };
                let found = on_demand_points(cx.c, cx.scope, vault).await?;
                Ok(found
                    .into_iter()
                    .map(|(_, o)| o)
                    .filter(|o| o.fields.get("name") == Some(name))
                    .collect())
            }
            Query::Physical(arn) => {
                let vault = points_vault(cx);
                let req =
                    cx.c.backup
                        .describe_recovery_point()
                        .backup_vault_name(&vault)
                        .recovery_point_arn(arn);
                let (described, tags) = tokio::join!(
                    answer("backup:DescribeRecoveryPoint", req.send()),
                    tags_of(cx.c, arn)
                );
                let described = match described {
                    Ok(d) => d,
                    Err(e) if is_missing(&e) => return Ok(Vec::new()),
                    Err(e) => return Err(e),
                };
                let point = Point {
                    arn,
                    resource: described.resource_arn().unwrap_or_default(),
                    role: described.iam_role_arn().unwrap_or_default(),
                    status: described.status().map_or("", |s| s.as_str()),
                    created: 0,
                };
                Ok(tags?
                    .and_then(|t| point_observed(cx.scope, &vault, &point, t))
                    .into_iter()
                    .collect())
            }
        }
    }

    /// ONE StartBackupJob carrying every tag (`RecoveryPointTags`), plus its name
    /// (`moodlestack:name`) and `moodlestack:code-before`: the code version of the stack's current backup (`none` on a
    /// new stack). Its idempotency token names the stack, the logical id, the version and how
    /// many backups of that name the stack released before (the first attempt at this version,
    /// before a rollback; the stack destroyed and made again): a repeated create gets the same
    /// backup, a new attempt a new one of moodledata as it is now.
    async fn create(&self, cx: &Cx<'_>, r: &Reader<'_>) -> Result<Created, CloudError> {
        let vault = r.str("vault_name")?;
        let name = r.str("name")?;
        let mut tags = r.stack_tags(cx.scope)?;
        let (earlier, released) = on_demand_tagged(cx.c, cx.scope, vault).await?;
        let attempt = released.iter().filter(|n| *n == name).count();
        let before = earlier
            .iter()
            .filter(|(_, o)| o.id == ObservedId::Tagged(r.id.clone()))
            .filter(|(_, o)| o.fields.get("name").and_then(Value::as_str) != Some(name))
            .max_by_key(|(created, _)| *created)
            .and_then(|(_, o)| o.tag(TAG_CODE))
            .unwrap_or("none")
            .to_string();
        tags.insert(TAG_CODE_BEFORE.into(), before);
        tags.insert(TAG_NAME.into(), name.to_string());
        let req =
            cx.c.backup
                .start_backup_job()
                .backup_vault_name(vault)
                .resource_arn(r.str("resource_arn")?)
                .iam_role_arn(r.str("iam_role_arn")?)
                .idempotency_token(match attempt {
                    0 => format!("{}-{}-{name}", cx.scope.stack, r.id),
                    n => format!("{}-{}-{name}-{}", cx.scope.stack, r.id, n + 1),
                })
                .set_recovery_point_tags(Some(tags.clone().into_iter().collect()));
        let out = answer("backup:StartBackupJob", req.send()).await?;
        let arn = out
            .recovery_point_arn()
            .ok_or_else(|| unexpected("backup:StartBackupJob", "no recovery point ARN"))?;
        if let Some(held) = tags_of(cx.c, arn).await? {
            if !held.contains_key(TAG_ID) {
                let req =
                    cx.c.backup
                        .tag_resource()
                        .resource_arn(arn)
                        .tags(TAG_ID, r.id.to_string());
                sent("backup:TagResource", req.send()).await?;
            }
        }
        let mut fields = r.fields.clone();
        fields.insert("tags".into(), tags_value(tags));
        let mut o = usable(Kind::BackupRecoveryPoint, r.id.clone(), arn, arn, fields);
        o.status = "CREATING".into();
        o.lifecycle = Lifecycle::Creating;
        Ok(Created::New(o))
    }

    async fn update(&self, cx: &Cx<'_>, u: Update<'_>) -> Result<Observed, CloudError> {
        let (current, r, changed) = u.parts();
        retag(cx, current, r, changed, Some("backup of the file system")).await?;
        Ok(crate::fields::with_changes(current, r, changed))
    }

    /// Never deletes the recovery point (a restore point): releases it from the stack by removing
    /// its `moodlestack:id` tag. It keeps `moodlestack:stack` and its code versions.
    async fn delete(&self, cx: &Cx<'_>, current: &Observed) -> Result<(), CloudError> {
        let req =
            cx.c.backup
                .untag_resource()
                .resource_arn(&current.physical_id)
                .tag_key_list(TAG_ID);
        gone("backup:UntagResource", req.send()).await
    }
}

/// This file's kinds under their [`Kind`](moodlestack_model::Kind) names, for the registry
/// [`ops`](crate::ops).
pub(crate) mod kinds {
    pub(crate) use super::{
        Plan as BackupPlan, RecoveryPoint as BackupRecoveryPoint, Selection as BackupSelection,
        Vault as BackupVault,
    };
}

/// A recovery point found by its ARN alone (a restore names only that): the vault that holds
/// it, the resource it backs up, its type and status. Every vault of the account is asked at
/// once (DescribeRecoveryPoint needs the vault's name); None when none holds it.
pub(crate) async fn recovery_point_by_arn(
    c: &Clients,
    arn: &str,
) -> Result<
    Option<aws_sdk_backup::operation::describe_recovery_point::DescribeRecoveryPointOutput>,
    CloudError,
> {
    let names = all_vaults(c).await?;
    let found = futures::future::try_join_all(names.iter().map(|(vault, _)| async move {
        let req = c.backup.describe_recovery_point();
        let req = req.backup_vault_name(vault).recovery_point_arn(arn);
        match answer("backup:DescribeRecoveryPoint", req.send()).await {
            Ok(p) => Ok(Some(p)),
            Err(e) if is_missing(&e) || is_code(&e, "InvalidParameterValueException") => Ok(None),
            Err(e) => Err(e),
        }
    }))
    .await?;
    Ok(found.into_iter().flatten().next())
}

// ---- restore points (`moodlestack backups`) -------------------------------------------------

/// The snapshots of the database `$db` as restore points: one paginated describe
/// (`$describe`, by `$by`; NotFound: none). Instance and cluster snapshots have the same members
/// but for the names of the list (`$list`), of their id (`$id`) and of their database's
/// (`$resource`); `$source` says which they are.
macro_rules! db_points {
    (
        $c:ident, $db:expr, $describe:ident($operation:literal).$by:ident => $list:ident,
        $source:literal, $id:ident, $resource:ident
    ) => {
        async {
            let req = $c.rds.$describe().$by($db);
            let pages: Vec<_> = req.into_paginator().send().collect::<Vec<_>>().await;
            pages_or_none($operation, pages, is_not_found, |p| {
                p.$list()
                    .iter()
                    .map(|s| RestorePoint {
                        data: "database".into(),
                        source: format!("{} ({})", $source, s.snapshot_type().unwrap_or("manual")),
                        id: s.$id().unwrap_or_default().to_string(),
                        resource: s.$resource().unwrap_or_default().to_string(),
                        created_at: unix_secs(s.snapshot_create_time()),
                        status: s.status().unwrap_or_default().to_string(),
                        tags: tag_map(s.tag_list()),
                    })
                    .collect::<Vec<_>>()
            })
        }
    };
}

/// Every restore point of the stack's data, oldest first: the database's snapshots (instance and
/// cluster snapshots of the stack's database identifier: automated, manual and final) and the
/// recovery points in the stack's vault (only when the vault is tagged with the stack), the
/// three reads at once.
pub(crate) async fn restore_points(
    c: &Clients,
    scope: &Scope,
) -> Result<Vec<RestorePoint>, CloudError> {
    let names = Names::for_stack(&scope.stack, &scope.region);
    let db = names.db_identifier();
    let instance = db_points!(
        c, &db, describe_db_snapshots("rds:DescribeDBSnapshots").db_instance_identifier
            => db_snapshots,
        "rds snapshot", db_snapshot_identifier, db_instance_identifier
    );
    let cluster = db_points!(
        c, &db, describe_db_cluster_snapshots("rds:DescribeDBClusterSnapshots")
            .db_cluster_identifier => db_cluster_snapshots,
        "rds cluster snapshot", db_cluster_snapshot_identifier, db_cluster_identifier
    );
    let vaulted = async {
        let name = names.backup_vault();
        if vault(c, scope, &name).await?.is_none() {
            return Ok(Vec::new());
        }
        let points = recovery_points(c, &name).await?;
        let tags = futures::future::try_join_all(
            points
                .iter()
                .map(|p| tags_of(c, p.recovery_point_arn().unwrap_or_default())),
        )
        .await?;
        Ok::<_, CloudError>(
            points
                .iter()
                .zip(tags)
                .map(|(p, tags)| RestorePoint {
                    data: match p.resource_type() {
                        Some("EFS") => "files",
                        _ => "database",
                    }
                    .into(),
                    source: match p.created_by().and_then(|b| b.backup_plan_id()) {
                        Some(_) => "aws backup (scheduled)",
                        None => "aws backup (on demand)",
                    }
                    .into(),
                    id: p.recovery_point_arn().unwrap_or_default().to_string(),
                    resource: p.resource_arn().unwrap_or_default().to_string(),
                    created_at: unix_secs(p.creation_date()),
                    status: p
                        .status()
                        .map(|s| s.as_str().to_string())
                        .unwrap_or_default(),
                    tags: tags.unwrap_or_default(),
                })
                .collect(),
        )
    };
    let (instance, cluster, vaulted) = tokio::join!(instance, cluster, vaulted);
    let mut all: Vec<RestorePoint> = [instance?, cluster?, vaulted?].concat();
    all.sort_by(|a, b| {
        a.created_at
            .cmp(&b.created_at)
            .then_with(|| a.id.cmp(&b.id))
    });
    Ok(all)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fields::assert_matches_spec;

    #[test]
    fn a_selection_is_observed_with_exactly_its_descriptors_fields() {
        let s = BackupSelection::builder()
            .selection_name("demo-data")
            .iam_role_arn("arn:aws:iam::123456789012:role/demo-eu-west-1-backup")
            .resources("arn:aws:rds:eu-west-1:123456789012:db:demo-db")
            .resources("arn:aws:elasticfilesystem:eu-west-1:123456789012:file-system/fs-1")
            .build()
            .unwrap();
        let o = selection_observed("plan-1", "sel-1", &s);
        assert_matches_spec(&o, &[]);
        assert_eq!(
            o.id,
            moodlestack_model::ObservedId::Untagged("sel-1".into())
        );
        assert_eq!(
            o.fields["resources"],
            Value::strs([
                "arn:aws:elasticfilesystem:eu-west-1:123456789012:file-system/fs-1",
                "arn:aws:rds:eu-west-1:123456789012:db:demo-db"
            ])
        );
    }
}
