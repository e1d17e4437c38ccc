//! IAM: the [`Kind::IamRole`] and [`Kind::InstanceProfile`] kinds, one [`KindOps`] each.
//!
//! IAM has no tag-filtered list, so both kinds are found by the deterministic names of the desired
//! resources (one GetRole / GetInstanceProfile per desired name, all in flight; a stack has one of
//! each) and kept only when tagged with the stack. Policy documents are compared as canonical JSON
//! ([`canonical_json`]): IAM returns them URL-encoded, so they are decoded first. A create whose
//! name is taken is `EntityAlreadyExists`: the generic code adopts the entity if it is ours.
//!
//! Instance profiles take a few seconds after creation before EC2 accepts them on real AWS (IAM is
//! eventually consistent); a poll can only see that the profile exists, so the first launch that
//! uses it may need the executor's retry.

use crate::fields::delete_by;
use crate::fields::{
    all_at_once, answer, as_current, canonical_json, collected, deleted, in_place_only, is_code,
    not_found_is_none, owned_id, sent, sorted_strs, tag_map, tags_value, unexpected, unless_taken,
    usable, Names, Reader,
};
use crate::{Clients, Created, Cx, KindOps, Query, Update};
use async_trait::async_trait;
use aws_sdk_iam::types::{InstanceProfile as SdkProfile, Role as SdkRole, Tag};
use futures::future::try_join_all;
use moodlestack_model::{CloudError, Fields, Kind, Observed, Scope, Value};
use std::collections::{BTreeMap, BTreeSet};

/// Every tag of the resource `r` describes, the stack's identity tags included, in IAM's shape.
fn sdk_tags(cx: &Cx<'_>, r: &Reader<'_>) -> Result<Vec<Tag>, CloudError> {
    r.built_stack_tags(cx.scope, |k, v| Tag::builder().key(k).value(v).build())
}

/// IAM's answer to a create whose name is taken.
const TAKEN: &str = "EntityAlreadyExists";

/// The entity `name` (`what`) as `get` read it right after its create: missing, or no longer
/// tagged with the stack, is an unexpected answer.
fn read_created(
    get: &str,
    what: &str,
    name: &str,
    found: Option<Observed>,
) -> Result<Created, CloudError> {
    found.map(Created::New).ok_or_else(|| {
        unexpected(
            get,
            format!("{what} {name} is gone or lost the stack's tags right after creation"),
        )
    })
}

/// The outcome of a call made for its effect: "does not exist" counts as done.
fn done<T>(r: Result<T, CloudError>) -> Result<(), CloudError> {
    not_found_is_none(r).map(|_| ())
}

/// Decodes `%XX` escapes (RFC 3986, as IAM encodes policy documents). Text that is already JSON is
/// returned unchanged, so a document with a literal `%` is never mangled.
fn decode_policy(text: &str) -> String {
    if serde_json::from_str::<serde_json::Value>(text).is_ok() {
        return text.to_string();
    }
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
            if let Some(b) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A policy document as IAM returned it, in the canonical form of the kind's fields.
fn policy_field(text: &str) -> String {
    canonical_json(&decode_policy(text))
}

/// The names the stack gives the resources of `kind` (the names its desired resources declare:
/// [`Names`]), or the one a [`Query`] names: an IAM kind's list reads each, all at once. A
/// stack's list also looks for `<stack>-node`, the name versions before the region was in it
/// gave the node role and profile: found (by its tags) it is planned as replaced by the new one,
/// and destroy deletes it, instead of leaving it behind.
fn queried_names(cx: &Cx<'_>, q: Query<'_>, kind: Kind) -> Vec<String> {
    match Names::new(cx, kind, q) {
        Names::Stack { declared, .. } => {
            let mut names: Vec<String> = declared.into_iter().collect();
            let legacy = format!("{}-node", cx.scope.stack);
            if !names.contains(&legacy) {
                names.push(legacy);
            }
            names
        }
        Names::One(name) => vec![name],
        Names::Nothing => Vec::new(),
    }
}

// ---------------------------------------------------------------------------------------------
// Roles

async fn get_role(c: &Clients, name: &str) -> Result<Option<SdkRole>, CloudError> {
    let got =
        not_found_is_none(answer("iam:GetRole", c.iam.get_role().role_name(name).send()).await)?;
    Ok(got.and_then(|g| g.role().cloned()))
}

/// A role as observed, with its attached and inline policies; None when it is not the stack's.
fn role_observed(
    scope: &Scope,
    role: &SdkRole,
    managed: Vec<String>,
    inline: BTreeMap<String, String>,
) -> Option<Observed> {
    let tags = tag_map(role.tags());
    let id = owned_id(scope, &tags)?;
    let mut fields = Fields::new();
    fields.insert("role_name".into(), Value::str(role.role_name()));
    fields.insert("path".into(), Value::str(role.path()));
    if let Some(doc) = role.assume_role_policy_document() {
        fields.insert("assume_role_policy".into(), Value::str(policy_field(doc)));
    }
    fields.insert("managed_policy_arns".into(), sorted_strs(managed));
    fields.insert(
        "inline_policies".into(),
        Value::Map(
            inline
                .into_iter()
                .map(|(k, v)| (k, Value::Str(v)))
                .collect(),
        ),
    );
    fields.insert("tags".into(), tags_value(tags));
    // IAM entities have no status: one that can be read is usable.
    Some(usable(
        Kind::IamRole,
        id,
        role.role_name(),
        role.arn(),
        fields,
    ))
}

/// The role named `name` with its policies (both lists in flight at once), if it exists and is
/// the stack's.
async fn observe_role(
    c: &Clients,
    scope: &Scope,
    name: &str,
) -> Result<Option<Observed>, CloudError> {
    // The name is known, so the policy lists go out beside the role's read, not after it (read
    // for nothing when the role is not the stack's: a read that costs no round).
    let policies = async { tokio::try_join!(attached_policies(c, name), inline_policies(c, name)) };
    let (role, policies) = tokio::join!(get_role(c, name), policies);
    let Some(role) = role? else {
        return Ok(None);
    };
    if owned_id(scope, &tag_map(role.tags())).is_none() {
        return Ok(None);
    }
    // A role deleted between the calls is no role.
    let Some((managed, inline)) = not_found_is_none(policies)? else {
        return Ok(None);
    };
    Ok(role_observed(scope, &role, managed, inline))
}

async fn attached_policies(c: &Clients, role: &str) -> Result<Vec<String>, CloudError> {
    let policies = collected(
        "iam:ListAttachedRolePolicies",
        c.iam
            .list_attached_role_policies()
            .role_name(role)
            .into_paginator()
            .items()
            .send()
            .try_collect(),
    )
    .await?;
    Ok(policies
        .iter()
        .filter_map(|p| p.policy_arn())
        .map(str::to_string)
        .collect())
}

/// The names of the role's inline policies.
async fn inline_policy_names(c: &Clients, role: &str) -> Result<Vec<String>, CloudError> {
    collected(
        "iam:ListRolePolicies",
        c.iam
            .list_role_policies()
            .role_name(role)
            .into_paginator()
            .items()
            .send()
            .try_collect(),
    )
    .await
}

/// Inline policies: name -> canonical JSON document, every document read at once.
async fn inline_policies(c: &Clients, role: &str) -> Result<BTreeMap<String, String>, CloudError> {
    let names = inline_policy_names(c, role).await?;
    let docs = try_join_all(names.iter().map(|n| async move {
        let out = answer(
            "iam:GetRolePolicy",
            c.iam
                .get_role_policy()
                .role_name(role)
                .policy_name(n)
                .send(),
        )
        .await?;
        Ok::<_, CloudError>((n.clone(), policy_field(out.policy_document())))
    }))
    .await?;
    Ok(docs.into_iter().collect())
}

async fn attach(c: &Clients, role: &str, arn: &str) -> Result<(), CloudError> {
    let req = c.iam.attach_role_policy().role_name(role).policy_arn(arn);
    sent("iam:AttachRolePolicy", req.send()).await
}

async fn detach(c: &Clients, role: &str, arn: &str) -> Result<(), CloudError> {
    let req = c.iam.detach_role_policy().role_name(role).policy_arn(arn);
    done(sent("iam:DetachRolePolicy", req.send()).await)
}

async fn put_inline(c: &Clients, role: &str, policy: &str, doc: &str) -> Result<(), CloudError> {
    let req = c.iam.put_role_policy().role_name(role).policy_name(policy);
    sent("iam:PutRolePolicy", req.policy_document(doc).send()).await
}

async fn delete_inline(c: &Clients, role: &str, policy: &str) -> Result<(), CloudError> {
    let req = c
        .iam
        .delete_role_policy()
        .role_name(role)
        .policy_name(policy);
    done(sent("iam:DeleteRolePolicy", req.send()).await)
}

async fn remove_role(c: &Clients, profile: &str, role: &str) -> Result<(), CloudError> {
    let req = c
        .iam
        .remove_role_from_instance_profile()
        .instance_profile_name(profile)
        .role_name(role);
    done(sent("iam:RemoveRoleFromInstanceProfile", req.send()).await)
}

/// This file's kinds under their [`Kind`](moodlestack_model::Kind) names, for the registry
/// [`ops`](crate::ops).
pub(crate) mod kinds {
    pub(crate) use super::{InstanceProfile, Role as IamRole};
}

/// `AWS::IAM::Role`, with its attached and inline policies.
pub(crate) struct Role;

#[async_trait]
impl KindOps for Role {
    // IAM answers a create or delete once it is stored; the create's answer is the role.
    crate::fields::settled_at_once!();

    async fn list(&self, cx: &Cx<'_>, q: Query<'_>) -> Result<Vec<Observed>, CloudError> {
        let names = queried_names(cx, q, Kind::IamRole);
        all_at_once(names.iter().map(|n| observe_role(cx.c, cx.scope, n))).await
    }

    async fn create(&self, cx: &Cx<'_>, r: &Reader<'_>) -> Result<Created, CloudError> {
        let name = r.str("role_name")?;
        let created = unless_taken(
            "iam:CreateRole",
            TAKEN,
            cx.c.iam
                .create_role()
                .role_name(name)
                .path(r.opt_str("path").unwrap_or("/"))
                .assume_role_policy_document(r.str("assume_role_policy")?)
                .set_tags(Some(sdk_tags(cx, r)?))
                .send(),
        )
        .await?;
        let Some(created) = created else {
            // A crash between create and the next observe, or another's role: the generic code
            // adopts it (the policies below then come with the update) if it is ours.
            return Ok(Created::Exists);
        };
        // Every policy at once.
        let managed = r.strs("managed_policy_arns").unwrap_or_default();
        let inline = if r.has("inline_policies") {
            r.string_map("inline_policies")?
        } else {
            Default::default()
        };
        tokio::try_join!(
            try_join_all(managed.iter().map(|arn| attach(cx.c, name, arn))),
            try_join_all(
                inline
                    .iter()
                    .map(|(policy, doc)| put_inline(cx.c, name, policy, doc))
            ),
        )?;
        // IAM stores a create or a put before it answers: the create's answer with the policies
        // just set is the role as IAM holds it, with no round to read it back (apply's read-back
        // compares every field). Read when the answer lacks what an observation needs.
        let canonical = inline.iter().map(|(p, doc)| (p.clone(), policy_field(doc)));
        if let Some(o) = created
            .role()
            .and_then(|role| role_observed(cx.scope, role, managed, canonical.collect()))
        {
            return Ok(Created::New(o));
        }
        let found = observe_role(cx.c, cx.scope, name).await?;
        read_created("iam:GetRole", "role", name, found)
    }

    async fn update(&self, cx: &Cx<'_>, u: Update<'_>) -> Result<Observed, CloudError> {
        let (current, r, changed) = u.parts();
        let c = cx.c;
        let name = current.physical_id.as_str();
        let cur = Reader::new(current.kind, r.id.clone(), &current.fields);
        for field in changed {
            match *field {
                "assume_role_policy" => {
                    let req = c.iam.update_assume_role_policy().role_name(name);
                    let req = req.policy_document(r.str("assume_role_policy")?);
                    sent("iam:UpdateAssumeRolePolicy", req.send()).await?;
                }
                "managed_policy_arns" => {
                    let want: BTreeSet<String> = r
                        .strs("managed_policy_arns")
                        .unwrap_or_default()
                        .into_iter()
                        .collect();
                    let have: BTreeSet<String> = cur
                        .strs("managed_policy_arns")
                        .unwrap_or_default()
                        .into_iter()
                        .collect();
                    for arn in want.difference(&have) {
                        attach(c, name, arn).await?;
                    }
                    for arn in have.difference(&want) {
                        detach(c, name, arn).await?;
                    }
                }
                "inline_policies" => {
                    let want = r.string_map("inline_policies")?;
                    let have = cur.string_map("inline_policies").unwrap_or_default();
                    for (policy, doc) in &want {
                        if have.get(policy).map(|h| canonical_json(h)) != Some(canonical_json(doc))
                        {
                            put_inline(c, name, policy, doc).await?;
                        }
                    }
                    for policy in have.keys().filter(|k| !want.contains_key(*k)) {
                        delete_inline(c, name, policy).await?;
                    }
                }
                "tags" => {
                    let req = c.iam.tag_role().role_name(name);
                    sent("iam:TagRole", req.set_tags(Some(sdk_tags(cx, r)?)).send()).await?;
                }
                other => return Err(in_place_only(current.kind, r, other, "role")),
            }
        }
        as_current(observe_role(c, cx.scope, name).await?, current, || {
            CloudError::NotFound(format!("IAM role {name}"))
        })
    }

    async fn delete(&self, cx: &Cx<'_>, current: &Observed) -> Result<(), CloudError> {
        let c = cx.c;
        let name = current.physical_id.as_str();
        // Policies and instance profiles first: IAM refuses to delete a role that has any. What
        // the observation saw on it goes at once, then the role: two rounds (the stack's profile
        // is deleted before its role). When IAM refuses (`DeleteConflict`: a policy attached or a
        // profile added since), three more: what hangs on the role (all three lists at once),
        // every detach, inline delete and removal from a profile at once, then the role.
        let seen = |field: &str| current.fields.get(field);
        let managed: Vec<&str> = seen("managed_policy_arns")
            .and_then(Value::as_list)
            .map(|l| l.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let inline: Vec<&String> = seen("inline_policies")
            .and_then(Value::as_map)
            .map(|m| m.keys().collect())
            .unwrap_or_default();
        tokio::try_join!(
            try_join_all(managed.iter().map(|arn| detach(c, name, arn))),
            try_join_all(inline.iter().map(|policy| delete_inline(c, name, policy))),
        )?;
        match deleted("iam:DeleteRole", c.iam.delete_role().role_name(name).send()).await {
            Err(e) if is_code(&e, "DeleteConflict") => {}
            other => return other,
        }
        let profiles = collected(
            "iam:ListInstanceProfilesForRole",
            c.iam
                .list_instance_profiles_for_role()
                .role_name(name)
                .into_paginator()
                .items()
                .send()
                .try_collect(),
        );
        let hanging = async {
            tokio::try_join!(
                attached_policies(c, name),
                inline_policy_names(c, name),
                profiles
            )
        };
        let Some((managed, inline, profiles)) = not_found_is_none(hanging.await)? else {
            return Ok(());
        };
        tokio::try_join!(
            try_join_all(managed.iter().map(|arn| detach(c, name, arn))),
            try_join_all(inline.iter().map(|policy| delete_inline(c, name, policy))),
            try_join_all(
                profiles
                    .iter()
                    .map(|p| remove_role(c, p.instance_profile_name(), name))
            ),
        )?;
        sent("iam:DeleteRole", c.iam.delete_role().role_name(name).send()).await
    }
}

// ---------------------------------------------------------------------------------------------
// Instance profiles

async fn get_profile(c: &Clients, name: &str) -> Result<Option<SdkProfile>, CloudError> {
    let got = not_found_is_none(
        answer(
            "iam:GetInstanceProfile",
            c.iam
                .get_instance_profile()
                .instance_profile_name(name)
                .send(),
        )
        .await,
    )?;
    Ok(got.and_then(|g| g.instance_profile().cloned()))
}

/// An instance profile as observed; None when it is not the stack's.
fn profile_observed(scope: &Scope, p: &SdkProfile) -> Option<Observed> {
    let tags = tag_map(p.tags());
    let id = owned_id(scope, &tags)?;
    let mut fields = Fields::new();
    fields.insert("name".into(), Value::str(p.instance_profile_name()));
    fields.insert("path".into(), Value::str(p.path()));
    if let Some(role) = p.roles().first() {
        fields.insert("role_name".into(), Value::str(role.role_name()));
    }
    fields.insert("tags".into(), tags_value(tags));
    Some(usable(
        Kind::InstanceProfile,
        id,
        p.instance_profile_name(),
        p.arn(),
        fields,
    ))
}

async fn observe_profile(
    c: &Clients,
    scope: &Scope,
    name: &str,
) -> Result<Option<Observed>, CloudError> {
    Ok(get_profile(c, name)
        .await?
        .and_then(|p| profile_observed(scope, &p)))
}

async fn add_role(c: &Clients, profile: &str, role: &str) -> Result<(), CloudError> {
    let req = c
        .iam
        .add_role_to_instance_profile()
        .instance_profile_name(profile)
        .role_name(role);
    sent("iam:AddRoleToInstanceProfile", req.send()).await
}

/// `AWS::IAM::InstanceProfile`, carrying the stack's role.
pub(crate) struct InstanceProfile;

#[async_trait]
impl KindOps for InstanceProfile {
    // As for roles: stored when answered, and the create's answer is the profile.
    crate::fields::settled_at_once!();

    async fn list(&self, cx: &Cx<'_>, q: Query<'_>) -> Result<Vec<Observed>, CloudError> {
        let names = queried_names(cx, q, Kind::InstanceProfile);
        all_at_once(names.iter().map(|n| observe_profile(cx.c, cx.scope, n))).await
    }

    async fn create(&self, cx: &Cx<'_>, r: &Reader<'_>) -> Result<Created, CloudError> {
        let name = r.str("name")?;
        let role = r.str("role_name")?;
        let created = unless_taken(
            "iam:CreateInstanceProfile",
            TAKEN,
            cx.c.iam
                .create_instance_profile()
                .instance_profile_name(name)
                .path(r.opt_str("path").unwrap_or("/"))
                .set_tags(Some(sdk_tags(cx, r)?))
                .send(),
        )
        .await?;
        let Some(created) = created else {
            // Made in two calls: an earlier run may have crashed between them. Our profile
            // without its role gets it (the generic code adopts it next); another's is left
            // alone and refused there.
            let q = Query::Logical {
                id: &r.id,
                fields: r.fields,
            };
            let ours = crate::list(self, cx, Kind::InstanceProfile, q).await?;
            if let Some(p) = ours.iter().find(|p| !p.fields.contains_key("role_name")) {
                add_role(cx.c, &p.physical_id, role).await?;
            }
            return Ok(Created::Exists);
        };
        add_role(cx.c, name, role).await?;
        // As for roles: the create's answer, with the role just added, is the profile as IAM
        // holds it.
        let made = created
            .instance_profile()
            .and_then(|p| profile_observed(cx.scope, p));
        if let Some(mut o) = made {
            o.fields.insert("role_name".into(), Value::str(role));
            return Ok(Created::New(o));
        }
        let found = observe_profile(cx.c, cx.scope, name).await?;
        read_created("iam:GetInstanceProfile", "instance profile", name, found)
    }

    async fn update(&self, cx: &Cx<'_>, u: Update<'_>) -> Result<Observed, CloudError> {
        let (current, r, changed) = u.parts();
        let name = current.physical_id.as_str();
        for field in changed {
            if *field != "tags" {
                return Err(in_place_only(current.kind, r, field, "instance profile"));
            }
            let req = cx.c.iam.tag_instance_profile().instance_profile_name(name);
            let req = req.set_tags(Some(sdk_tags(cx, r)?));
            sent("iam:TagInstanceProfile", req.send()).await?;
        }
        as_current(
            observe_profile(cx.c, cx.scope, name).await?,
            current,
            || CloudError::NotFound(format!("instance profile {name}")),
        )
    }

    async fn delete(&self, cx: &Cx<'_>, current: &Observed) -> Result<(), CloudError> {
        let name = current.physical_id.as_str();
        // The role the observation saw in it is removed at once, then the profile: two rounds.
        // When IAM refuses (`DeleteConflict`: another role in it since), the profile is read,
        // emptied and deleted.
        if let Some(role) = current.fields.get("role_name").and_then(Value::as_str) {
            remove_role(cx.c, name, role).await?;
        }
        match delete_by!(deleted "iam:DeleteInstanceProfile":
            cx.c.iam.delete_instance_profile().instance_profile_name(current))
        {
            Err(e) if is_code(&e, "DeleteConflict") => {}
            other => return other,
        }
        let Some(p) = get_profile(cx.c, name).await? else {
            return Ok(());
        };
        for role in p.roles() {
            remove_role(cx.c, name, role.role_name()).await?;
        }
        delete_by!(deleted "iam:DeleteInstanceProfile":
            cx.c.iam.delete_instance_profile().instance_profile_name(current))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fields::{assert_matches_spec, test_scope};
    use moodlestack_model::{Lifecycle, TAG_ID, TAG_STACK};

    fn tags(id: &str) -> [Tag; 2] {
        [
            Tag::builder().key(TAG_STACK).value("demo").build().unwrap(),
            Tag::builder().key(TAG_ID).value(id).build().unwrap(),
        ]
    }

    /// The node role as IAM describes it, without its policy and tags.
    fn node_role() -> aws_sdk_iam::types::builders::RoleBuilder {
        SdkRole::builder()
            .path("/")
            .role_name("demo-eu-west-1-node")
            .role_id("AROA1")
            .arn("arn:aws:iam::123456789012:role/demo-node")
            .create_date(aws_smithy_types::DateTime::from_secs(0))
    }

    #[test]
    fn a_role_is_observed_with_its_descriptors_fields() {
        let role = node_role()
            .assume_role_policy_document("%7B%22Version%22%3A%222012-10-17%22%7D")
            .set_tags(Some(tags("iam.role").to_vec()))
            .build()
            .unwrap();
        let inline = BTreeMap::from([("logs".to_string(), "{}".to_string())]);
        let o = role_observed(
            &test_scope("demo"),
            &role,
            vec!["arn:p".into()],
            inline.clone(),
        )
        .unwrap();
        crate::fields::assert_ready_as(&o, "iam.role", &[]);
        assert_eq!(
            o.fields["assume_role_policy"],
            Value::str(r#"{"Version":"2012-10-17"}"#)
        );
        assert!(role_observed(&test_scope("other"), &role, Vec::new(), inline).is_none());
    }

    #[test]
    fn an_instance_profile_is_observed_with_its_role() {
        let role = node_role().build().unwrap();
        let p = SdkProfile::builder()
            .path("/")
            .instance_profile_name("demo-eu-west-1-node")
            .instance_profile_id("AIPA1")
            .arn("arn:aws:iam::123456789012:instance-profile/demo-node")
            .create_date(aws_smithy_types::DateTime::from_secs(0))
            .roles(role)
            .set_tags(Some(tags("iam.profile").to_vec()))
            .build()
            .unwrap();
        let o = profile_observed(&test_scope("demo"), &p).unwrap();
        assert_matches_spec(&o, &[]);
        assert_eq!(o.lifecycle, Lifecycle::Ready);
        assert_eq!(o.fields["role_name"], Value::str("demo-eu-west-1-node"));
        assert!(profile_observed(&test_scope("other"), &p).is_none());
    }

    #[test]
    fn policies_are_decoded_and_canonical() {
        let encoded = "%7B%22Version%22%3A%20%222012-10-17%22%2C%20%22Statement%22%3A%20%5B%5D%7D";
        assert_eq!(
            policy_field(encoded),
            r#"{"Statement":[],"Version":"2012-10-17"}"#
        );
        let plain = r#"{ "Version": "2012-10-17", "Statement": [] }"#;
        assert_eq!(
            policy_field(plain),
            r#"{"Statement":[],"Version":"2012-10-17"}"#
        );
        // A literal % in plain JSON is left alone.
        assert_eq!(policy_field(r#"{"a":"100%25"}"#), r#"{"a":"100%25"}"#);
    }

    #[test]
    fn decoding_stops_at_a_truncated_escape() {
        assert_eq!(decode_policy("%7B%2"), "{%2");
    }
}
