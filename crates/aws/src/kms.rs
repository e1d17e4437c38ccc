//! KMS: the stack's customer managed key ([`Kind::KmsKey`]), which encrypts its log groups and
//! its alert topic.
//!
//! A key has no name of its own: it is found by its alias (`alias/moodlestack/<stack>/...`).
//! The stack's keys are the targets of the aliases under the stack's prefix (one paginated
//! ListAliases), each read with DescribeKey, ListResourceTags, GetKeyPolicy and
//! GetKeyRotationStatus at once, and kept only when tagged with the stack. A key pending
//! deletion is no longer the stack's. A create is CreateKey (policy, description and every tag
//! on the call), then CreateAlias; when the alias is taken (another run raced this one) the new
//! key is scheduled for deletion and the generic code adopts or refuses the alias's key. A
//! delete removes the key's `moodlestack:id` tag (the tagging API lists keys pending deletion),
//! then the alias, and schedules the key's deletion with KMS's shortest window (7 days): KMS
//! never deletes a key at once.

use crate::fields::{
    all_at_once, answer, canonical_json, deleted, in_place_only, is_code, is_not_found,
    not_found_is_none, owned_id, read_back, sent, tags_value, unexpected, unless_taken, usable,
    Reader,
};
use crate::{Clients, Created, Cx, KindOps, Query, Update};
use async_trait::async_trait;
use aws_sdk_kms::types::{KeyState, Tag};
use moodlestack_model::{CloudError, Fields, Kind, Observed, Scope, Value};
use moodlestack_stack::names::Names;
use std::collections::BTreeMap;

/// Days before a deleted key is gone (KMS's minimum).
const DELETION_WINDOW_DAYS: i32 = 7;

type Tags = BTreeMap<String, String>;

/// Every tag of the key `r` describes, the stack's identity tags included, in KMS's shape.
fn sdk_tags(cx: &Cx<'_>, r: &Reader<'_>) -> Result<Vec<Tag>, CloudError> {
    r.built_stack_tags(cx.scope, |k, v| {
        Tag::builder().tag_key(k).tag_value(v).build()
    })
}

/// The key `key_id` under `alias` as the stack sees it (None: missing, pending deletion or not
/// the stack's): four reads at once.
async fn key(
    c: &Clients,
    scope: &Scope,
    key_id: &str,
    alias: &str,
) -> Result<Option<Observed>, CloudError> {
    let describe = answer(
        "kms:DescribeKey",
        c.kms.describe_key().key_id(key_id).send(),
    );
    let tags = answer(
        "kms:ListResourceTags",
        c.kms.list_resource_tags().key_id(key_id).send(),
    );
    let policy = answer(
        "kms:GetKeyPolicy",
        c.kms
            .get_key_policy()
            .key_id(key_id)
            .policy_name("default")
            .send(),
    );
    let rotation = answer(
        "kms:GetKeyRotationStatus",
        c.kms.get_key_rotation_status().key_id(key_id).send(),
    );
    let all = not_found_is_none(tokio::try_join!(describe, tags, policy, rotation))?;
    let Some((describe, tags, policy, rotation)) = all else {
        return Ok(None);
    };
    let Some(meta) = describe.key_metadata() else {
        return Ok(None);
    };
    if matches!(
        meta.key_state(),
        Some(KeyState::PendingDeletion | KeyState::PendingReplicaDeletion)
    ) {
        return Ok(None);
    }
    let tags: Tags = tags
        .tags()
        .iter()
        .map(|t| (t.tag_key().to_string(), t.tag_value().to_string()))
        .collect();
    Ok(observed(
        scope,
        meta.key_id(),
        meta.arn().unwrap_or_default(),
        alias,
        meta.description().unwrap_or_default(),
        policy.policy().unwrap_or_default(),
        rotation.key_rotation_enabled(),
        tags,
    ))
}

#[allow(clippy::too_many_arguments)]
fn observed(
    scope: &Scope,
    key_id: &str,
    arn: &str,
    alias: &str,
    description: &str,
    policy: &str,
    rotation: bool,
    tags: Tags,
) -> Option<Observed> {
    let id = owned_id(scope, &tags)?;
    let fields = Fields::from([
        ("alias".to_string(), Value::str(alias)),
        ("description".to_string(), Value::str(description)),
        ("policy".to_string(), Value::str(canonical_json(policy))),
        ("rotation".to_string(), Value::Bool(rotation)),
        ("tags".to_string(), tags_value(tags)),
    ]);
    Some(usable(Kind::KmsKey, id, key_id, arn, fields))
}

/// The id of the key `alias` points to (None: no such alias). The other reads of a key take its
/// id, not an alias.
async fn key_of(c: &Clients, alias: &str) -> Result<Option<String>, CloudError> {
    let d = answer("kms:DescribeKey", c.kms.describe_key().key_id(alias).send()).await;
    let key = not_found_is_none(d)?.and_then(|d| d.key_metadata().map(|m| m.key_id().to_string()));
    Ok(key)
}

/// The aliases (name, target key id) under `prefix`, or the one of `key_id`: one paginated
/// ListAliases.
async fn aliases(
    c: &Clients,
    prefix: &str,
    key_id: Option<&str>,
) -> Result<Vec<(String, String)>, CloudError> {
    let mut out = Vec::new();
    let mut pages = c
        .kms
        .list_aliases()
        .set_key_id(key_id.map(str::to_string))
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| crate::fields::api_err("kms:ListAliases", e))?;
        for a in page.aliases() {
            if let (Some(name), Some(target)) = (a.alias_name(), a.target_key_id()) {
                if name.starts_with(prefix) {
                    out.push((name.to_string(), target.to_string()));
                }
            }
        }
    }
    Ok(out)
}

/// The keys of `aliases`, read all at once.
async fn keys(
    c: &Clients,
    scope: &Scope,
    aliases: &[(String, String)],
) -> Result<Vec<Observed>, CloudError> {
    all_at_once(
        aliases
            .iter()
            .map(|(alias, target)| key(c, scope, target, alias)),
    )
    .await
}

/// `AWS::KMS::Key`.
pub(crate) struct Key;

#[async_trait]
impl KindOps for Key {
    async fn list(&self, cx: &Cx<'_>, q: Query<'_>) -> Result<Vec<Observed>, CloudError> {
        let prefix = Names::for_stack(&cx.scope.stack, &cx.scope.region).kms_alias_prefix();
        match q {
            Query::Stack => keys(cx.c, cx.scope, &aliases(cx.c, &prefix, None).await?).await,
            Query::Logical { fields, .. } => match fields.get("alias").and_then(Value::as_str) {
                Some(alias) => match key_of(cx.c, alias).await? {
                    Some(key_id) => Ok(key(cx.c, cx.scope, &key_id, alias)
                        .await?
                        .into_iter()
                        .collect()),
                    None => Ok(Vec::new()),
                },
                None => Ok(Vec::new()),
            },
            Query::Physical(key_id) => {
                keys(
                    cx.c,
                    cx.scope,
                    &aliases(cx.c, "alias/", Some(key_id)).await?,
                )
                .await
            }
        }
    }

    async fn create(&self, cx: &Cx<'_>, r: &Reader<'_>) -> Result<Created, CloudError> {
        let alias = r.str("alias")?;
        let req =
            cx.c.kms
                .create_key()
                .description(r.str("description")?)
                .policy(r.str("policy")?)
                .set_tags(Some(sdk_tags(cx, r)?));
        let made = answer("kms:CreateKey", req.send()).await?;
        let key_id = made
            .key_metadata()
            .map(|m| m.key_id().to_string())
            .ok_or_else(|| unexpected("kms:CreateKey", "no key id"))?;
        let req =
            cx.c.kms
                .create_alias()
                .alias_name(alias)
                .target_key_id(&key_id);
        let aliased = unless_taken("kms:CreateAlias", "AlreadyExistsException", req.send()).await?;
        if aliased.is_none() {
            schedule_deletion(cx.c, &key_id).await?;
            return Ok(Created::Exists);
        }
        if r.bool("rotation")? {
            let req = cx.c.kms.enable_key_rotation().key_id(&key_id);
            sent("kms:EnableKeyRotation", req.send()).await?;
        }
        let found = key(cx.c, cx.scope, &key_id, alias).await?;
        crate::fields::tagged("kms:CreateKey", alias, found).map(Created::New)
    }

    async fn update(&self, cx: &Cx<'_>, u: Update<'_>) -> Result<Observed, CloudError> {
        let (current, r, changed) = u.parts();
        let key_id = current.physical_id.as_str();
        let c = cx.c;
        let calls = changed.iter().map(|field| async move {
            match *field {
                "description" => {
                    let req = c.kms.update_key_description().key_id(key_id);
                    sent(
                        "kms:UpdateKeyDescription",
                        req.description(r.str("description")?).send(),
                    )
                    .await
                }
                "policy" => {
                    let req = c.kms.put_key_policy().key_id(key_id).policy_name("default");
                    sent("kms:PutKeyPolicy", req.policy(r.str("policy")?).send()).await
                }
                "rotation" => {
                    if r.bool("rotation")? {
                        let req = c.kms.enable_key_rotation().key_id(key_id);
                        sent("kms:EnableKeyRotation", req.send()).await
                    } else {
                        let req = c.kms.disable_key_rotation().key_id(key_id);
                        sent("kms:DisableKeyRotation", req.send()).await
                    }
                }
                "tags" => {
                    let req = c.kms.tag_resource().key_id(key_id);
                    let req = req.set_tags(Some(sdk_tags(cx, r)?));
                    sent("kms:TagResource", req.send()).await
                }
                other => Err(in_place_only(current.kind, r, other, "KMS key")),
            }
        });
        futures::future::try_join_all(calls).await?;
        let alias = r.str("alias")?;
        read_back(
            key(c, cx.scope, key_id, alias).await?,
            current,
            "kms:DescribeKey",
        )
    }

    /// The alias goes at once, the key in 7 days (KMS's shortest window); neither is the
    /// stack's any more when this answers.
    async fn delete(&self, cx: &Cx<'_>, current: &Observed) -> Result<(), CloudError> {
        let alias = current.fields.get("alias").and_then(Value::as_str);
        let unalias = async {
            match alias {
                Some(alias) => {
                    let req = cx.c.kms.delete_alias().alias_name(alias);
                    deleted("kms:DeleteAlias", req.send()).await
                }
                None => Ok(()),
            }
        };
        // The key stays for 7 days with its tags, and the tagging API (`moodlestack list`,
        // `gc`) lists a key pending deletion like any other: its logical id goes first, so the
        // stack has nothing left once this answers (a key without it is not the stack's).
        let untag = cx.c.kms.untag_resource().key_id(&current.physical_id);
        let untag = untag.tag_keys(moodlestack_model::TAG_ID);
        deleted("kms:UntagResource", untag.send()).await?;
        tokio::try_join!(unalias, schedule_deletion(cx.c, &current.physical_id))?;
        Ok(())
    }
    crate::fields::settled_at_once!();
}

/// Schedules the deletion of `key_id` (already scheduled, or gone: done).
async fn schedule_deletion(c: &Clients, key_id: &str) -> Result<(), CloudError> {
    let req = c
        .kms
        .schedule_key_deletion()
        .key_id(key_id)
        .pending_window_in_days(DELETION_WINDOW_DAYS);
    match sent("kms:ScheduleKeyDeletion", req.send()).await {
        Err(e) if is_not_found(&e) || is_code(&e, "KMSInvalidStateException") => Ok(()),
        other => other,
    }
}

/// This file's kinds under their [`Kind`](moodlestack_model::Kind) names, for the registry
/// [`ops`](crate::ops).
pub(crate) mod kinds {
    pub(crate) use super::Key as KmsKey;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fields::{assert_matches_spec, test_scope};
    use moodlestack_model::{identity_tags, TAG_STACK};

    #[test]
    fn a_key_is_observed_with_exactly_its_descriptors_fields() {
        let tags = identity_tags(&test_scope("demo"), &"observe.key");
        let policy = "{\n  \"Version\" : \"2012-10-17\",\n  \"Statement\" : [ ]\n}";
        let o = observed(
            &test_scope("demo"),
            "k-1",
            "arn:aws:kms:eu-west-1:123456789012:key/k-1",
            "alias/moodlestack/demo/observability",
            "logs",
            policy,
            true,
            tags.clone(),
        )
        .unwrap();
        assert_matches_spec(&o, &[]);
        assert_eq!(o.physical_id, "k-1");
        assert_eq!(
            o.fields["policy"],
            Value::str(r#"{"Statement":[],"Version":"2012-10-17"}"#)
        );
        let other = Tags::from([(TAG_STACK.to_string(), "other".to_string())]);
        assert!(observed(&test_scope("demo"), "k", "a", "x", "", "{}", false, other).is_none());
    }
}
