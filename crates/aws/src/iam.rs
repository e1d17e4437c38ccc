//! IAM: the [`Kind::IamRole`] and [`Kind::InstanceProfile`] kinds.
//!
//! IAM has no tag-filtered list, so both kinds are found by the deterministic names of the desired
//! resources (one GetRole / GetInstanceProfile per desired name; a stack has one of each) and kept
//! only when tagged with the stack. Policy documents are compared as canonical JSON
//! ([`canonical_json`]): IAM returns them URL-encoded, so they are decoded first.
//!
//! Instance profiles take a few seconds after creation before EC2 accepts them on real AWS (IAM is
//! eventually consistent); `poll` can only see that the profile exists, so the first launch that
//! uses it may need the executor's retry.

use crate::fields::{
    api_err, canonical_json, desired_names, is_code, is_not_found, not_found_is_none, owned_id,
    sorted_strs, tags_value, Reader,
};
use crate::Clients;
use aws_sdk_iam::types::Tag;
use futures::future::try_join_all;
use moodlestack_model::{
    identity_tags, CloudError, DeleteOptions, Fields, Kind, Observed, Readiness, Resource,
    ResourceId, Scope, Value, Want, TAG_ID, TAG_STACK,
};
use std::collections::{BTreeMap, BTreeSet};

fn tag_map(tags: &[Tag]) -> BTreeMap<String, String> {
    tags.iter()
        .map(|t| (t.key().to_string(), t.value().to_string()))
        .collect()
}

fn sdk_tags(tags: &BTreeMap<String, String>) -> Result<Vec<Tag>, CloudError> {
    tags.iter()
        .map(|(k, v)| {
            Tag::builder()
                .key(k)
                .value(v)
                .build()
                .map_err(|e| CloudError::Other(format!("iam: tag {k}: {e}")))
        })
        .collect()
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

fn field_err(current: &Observed, field: &str, problem: &str) -> CloudError {
    CloudError::Field {
        kind: current.kind,
        id: current.id.to_resource_id(),
        field: field.to_string(),
        problem: problem.to_string(),
    }
}

pub async fn observe(
    c: &Clients,
    scope: &Scope,
    desired: &[Resource],
) -> Result<Vec<Observed>, CloudError> {
    let roles = desired_names(desired, Kind::IamRole, "role_name");
    let profiles = desired_names(desired, Kind::InstanceProfile, "name");
    let (roles, profiles) = tokio::try_join!(
        try_join_all(roles.iter().map(|n| observe_role(c, scope, n))),
        try_join_all(profiles.iter().map(|n| observe_profile(c, scope, n))),
    )?;
    Ok(roles.into_iter().chain(profiles).flatten().collect())
}

// ---------------------------------------------------------------------------------------------
// Roles

/// The role named `name` with its policies, if it exists and is the stack's.
async fn observe_role(
    c: &Clients,
    scope: &Scope,
    name: &str,
) -> Result<Option<Observed>, CloudError> {
    let got = not_found_is_none(
        c.iam
            .get_role()
            .role_name(name)
            .send()
            .await
            .map_err(|e| api_err("iam:GetRole", e)),
    )?;
    let Some(role) = got.as_ref().and_then(|g| g.role()) else {
        return Ok(None);
    };
    let tags = tag_map(role.tags());
    let Some(id) = owned_id(scope, &tags) else {
        return Ok(None);
    };

    let (managed, inline) = tokio::try_join!(attached_policies(c, name), inline_policies(c, name))?;
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
    Ok(Some(Observed {
        id: id.into(),
        kind: Kind::IamRole,
        physical_id: role.role_name().to_string(),
        fields,
        attrs: BTreeMap::from([
            ("id".into(), role.role_name().to_string()),
            ("arn".into(), role.arn().to_string()),
        ]),
        status: "available".into(),
        lifecycle: moodlestack_model::Lifecycle::Ready,
    }))
}

async fn attached_policies(c: &Clients, role: &str) -> Result<Vec<String>, CloudError> {
    let mut out = Vec::new();
    let mut pages = c
        .iam
        .list_attached_role_policies()
        .role_name(role)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| api_err("iam:ListAttachedRolePolicies", e))?;
        out.extend(
            page.attached_policies()
                .iter()
                .filter_map(|p| p.policy_arn())
                .map(str::to_string),
        );
    }
    Ok(out)
}

/// Inline policies: name -> canonical JSON document.
async fn inline_policies(c: &Clients, role: &str) -> Result<BTreeMap<String, String>, CloudError> {
    let mut names = Vec::new();
    let mut pages = c
        .iam
        .list_role_policies()
        .role_name(role)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| api_err("iam:ListRolePolicies", e))?;
        names.extend(page.policy_names().iter().cloned());
    }
    let docs = try_join_all(names.iter().map(|n| async move {
        let out = c
            .iam
            .get_role_policy()
            .role_name(role)
            .policy_name(n)
            .send()
            .await
            .map_err(|e| api_err("iam:GetRolePolicy", e))?;
        Ok::<_, CloudError>((n.clone(), policy_field(out.policy_document())))
    }))
    .await?;
    Ok(docs.into_iter().collect())
}

async fn create_role(
    c: &Clients,
    scope: &Scope,
    id: &ResourceId,
    fields: &Fields,
) -> Result<Observed, CloudError> {
    let r = Reader::new(Kind::IamRole, id, fields);
    let name = r.str("role_name")?;
    let mut tags = r.tags()?;
    tags.extend(identity_tags(scope, id));
    let created = c
        .iam
        .create_role()
        .role_name(name)
        .path(r.opt_str("path").unwrap_or("/"))
        .assume_role_policy_document(r.str("assume_role_policy")?)
        .set_tags(Some(sdk_tags(&tags)?))
        .send()
        .await
        .map_err(|e| api_err("iam:CreateRole", e));
    match created {
        Ok(_) => {}
        Err(e) if is_code(&e, "EntityAlreadyExists") => {
            // A crash between create and the next observe: adopt the role if it is ours; the
            // policy calls below are idempotent.
            let role = c
                .iam
                .get_role()
                .role_name(name)
                .send()
                .await
                .map_err(|e| api_err("iam:GetRole", e))?;
            let found = role.role().map(|r| tag_map(r.tags())).unwrap_or_default();
            if owned_id(scope, &found).as_ref() != Some(id) {
                return Err(CloudError::Other(format!(
                    "iam:CreateRole: a role named {name} already exists and is not tagged \
                     {TAG_STACK}={} {TAG_ID}={id}; it was not created by this stack: rename the \
                     stack or remove that role",
                    scope.stack
                )));
            }
            if let Some(doc) = role.role().and_then(|r| r.assume_role_policy_document()) {
                if policy_field(doc) != canonical_json(r.str("assume_role_policy")?) {
                    c.iam
                        .update_assume_role_policy()
                        .role_name(name)
                        .policy_document(r.str("assume_role_policy")?)
                        .send()
                        .await
                        .map_err(|e| api_err("iam:UpdateAssumeRolePolicy", e))?;
                }
            }
        }
        Err(e) => return Err(e),
    }
    for arn in r.strs("managed_policy_arns").unwrap_or_default() {
        attach(c, name, &arn).await?;
    }
    if r.has("inline_policies") {
        for (policy, doc) in r.string_map("inline_policies")? {
            put_inline(c, name, &policy, &doc).await?;
        }
    }
    observe_role(c, scope, name)
        .await?
        .ok_or_else(|| CloudError::Other(format!("iam: role {name} vanished after creation")))
}

async fn attach(c: &Clients, role: &str, arn: &str) -> Result<(), CloudError> {
    c.iam
        .attach_role_policy()
        .role_name(role)
        .policy_arn(arn)
        .send()
        .await
        .map_err(|e| api_err("iam:AttachRolePolicy", e))?;
    Ok(())
}

async fn put_inline(c: &Clients, role: &str, policy: &str, doc: &str) -> Result<(), CloudError> {
    c.iam
        .put_role_policy()
        .role_name(role)
        .policy_name(policy)
        .policy_document(doc)
        .send()
        .await
        .map_err(|e| api_err("iam:PutRolePolicy", e))?;
    Ok(())
}

async fn update_role(
    c: &Clients,
    scope: &Scope,
    current: &Observed,
    fields: &Fields,
    changed: &[String],
) -> Result<Observed, CloudError> {
    let r = Reader::new(current.kind, &current.id, fields);
    let name = current.physical_id.as_str();
    let cur = Reader::new(current.kind, &current.id, &current.fields);
    for field in changed {
        match field.as_str() {
            "assume_role_policy" => {
                c.iam
                    .update_assume_role_policy()
                    .role_name(name)
                    .policy_document(r.str("assume_role_policy")?)
                    .send()
                    .await
                    .map_err(|e| api_err("iam:UpdateAssumeRolePolicy", e))?;
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
                    let res = c
                        .iam
                        .detach_role_policy()
                        .role_name(name)
                        .policy_arn(arn)
                        .send()
                        .await
                        .map_err(|e| api_err("iam:DetachRolePolicy", e));
                    not_found_is_none(res)?;
                }
            }
            "inline_policies" => {
                let want = r.string_map("inline_policies")?;
                let have = cur.string_map("inline_policies").unwrap_or_default();
                for (policy, doc) in &want {
                    if have.get(policy).map(|h| canonical_json(h)) != Some(canonical_json(doc)) {
                        put_inline(c, name, policy, doc).await?;
                    }
                }
                for policy in have.keys().filter(|k| !want.contains_key(*k)) {
                    let res = c
                        .iam
                        .delete_role_policy()
                        .role_name(name)
                        .policy_name(policy)
                        .send()
                        .await
                        .map_err(|e| api_err("iam:DeleteRolePolicy", e));
                    not_found_is_none(res)?;
                }
            }
            "tags" => {
                let mut tags = r.tags()?;
                tags.extend(identity_tags(scope, &current.id));
                c.iam
                    .tag_role()
                    .role_name(name)
                    .set_tags(Some(sdk_tags(&tags)?))
                    .send()
                    .await
                    .map_err(|e| api_err("iam:TagRole", e))?;
            }
            other => {
                return Err(field_err(
                    current,
                    other,
                    "cannot be changed in place (the role must be replaced)",
                ))
            }
        }
    }
    observe_role(c, scope, name)
        .await?
        .ok_or_else(|| CloudError::NotFound(format!("IAM role {name}")))
}

async fn delete_role(c: &Clients, name: &str) -> Result<(), CloudError> {
    let gone = |r: Result<(), CloudError>| not_found_is_none(r).map(|_| ());
    // Policies and instance profiles first: IAM refuses to delete a role that has any.
    let managed = match not_found_is_none(attached_policies(c, name).await)? {
        Some(m) => m,
        None => return Ok(()),
    };
    for arn in managed {
        gone(
            c.iam
                .detach_role_policy()
                .role_name(name)
                .policy_arn(&arn)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| api_err("iam:DetachRolePolicy", e)),
        )?;
    }
    let inline = not_found_is_none(inline_policies(c, name).await)?.unwrap_or_default();
    for policy in inline.keys() {
        gone(
            c.iam
                .delete_role_policy()
                .role_name(name)
                .policy_name(policy)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| api_err("iam:DeleteRolePolicy", e)),
        )?;
    }
    let mut profiles = Vec::new();
    let mut pages = c
        .iam
        .list_instance_profiles_for_role()
        .role_name(name)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        match page.map_err(|e| api_err("iam:ListInstanceProfilesForRole", e)) {
            Ok(p) => profiles.extend(
                p.instance_profiles()
                    .iter()
                    .map(|p| p.instance_profile_name().to_string()),
            ),
            Err(e) if is_not_found(&e) => return Ok(()),
            Err(e) => return Err(e),
        }
    }
    for profile in profiles {
        gone(
            c.iam
                .remove_role_from_instance_profile()
                .instance_profile_name(&profile)
                .role_name(name)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| api_err("iam:RemoveRoleFromInstanceProfile", e)),
        )?;
    }
    gone(
        c.iam
            .delete_role()
            .role_name(name)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| api_err("iam:DeleteRole", e)),
    )
}

// ---------------------------------------------------------------------------------------------
// Instance profiles

async fn observe_profile(
    c: &Clients,
    scope: &Scope,
    name: &str,
) -> Result<Option<Observed>, CloudError> {
    let got = not_found_is_none(
        c.iam
            .get_instance_profile()
            .instance_profile_name(name)
            .send()
            .await
            .map_err(|e| api_err("iam:GetInstanceProfile", e)),
    )?;
    let Some(p) = got.as_ref().and_then(|g| g.instance_profile()) else {
        return Ok(None);
    };
    let tags = tag_map(p.tags());
    let Some(id) = owned_id(scope, &tags) else {
        return Ok(None);
    };
    let mut fields = Fields::new();
    fields.insert("name".into(), Value::str(p.instance_profile_name()));
    fields.insert("path".into(), Value::str(p.path()));
    if let Some(role) = p.roles().first() {
        fields.insert("role_name".into(), Value::str(role.role_name()));
    }
    fields.insert("tags".into(), tags_value(tags));
    Ok(Some(Observed {
        id: id.into(),
        kind: Kind::InstanceProfile,
        physical_id: p.instance_profile_name().to_string(),
        fields,
        attrs: BTreeMap::from([
            ("id".into(), p.instance_profile_name().to_string()),
            ("arn".into(), p.arn().to_string()),
        ]),
        status: "available".into(),
        lifecycle: moodlestack_model::Lifecycle::Ready,
    }))
}

async fn create_profile(
    c: &Clients,
    scope: &Scope,
    id: &ResourceId,
    fields: &Fields,
) -> Result<Observed, CloudError> {
    let r = Reader::new(Kind::InstanceProfile, id, fields);
    let name = r.str("name")?;
    let role = r.str("role_name")?;
    let mut tags = r.tags()?;
    tags.extend(identity_tags(scope, id));
    let created = c
        .iam
        .create_instance_profile()
        .instance_profile_name(name)
        .path(r.opt_str("path").unwrap_or("/"))
        .set_tags(Some(sdk_tags(&tags)?))
        .send()
        .await
        .map_err(|e| api_err("iam:CreateInstanceProfile", e));
    let existing_roles: Vec<String> = match created {
        Ok(_) => Vec::new(),
        Err(e) if is_code(&e, "EntityAlreadyExists") => {
            let got = c
                .iam
                .get_instance_profile()
                .instance_profile_name(name)
                .send()
                .await
                .map_err(|e| api_err("iam:GetInstanceProfile", e))?;
            let p = got.instance_profile();
            let found = p.map(|p| tag_map(p.tags())).unwrap_or_default();
            if owned_id(scope, &found).as_ref() != Some(id) {
                return Err(CloudError::Other(format!(
                    "iam:CreateInstanceProfile: an instance profile named {name} already exists \
                     and is not tagged {TAG_STACK}={} {TAG_ID}={id}; it was not created by this \
                     stack: rename the stack or remove that instance profile",
                    scope.stack
                )));
            }
            p.map(|p| {
                p.roles()
                    .iter()
                    .map(|r| r.role_name().to_string())
                    .collect()
            })
            .unwrap_or_default()
        }
        Err(e) => return Err(e),
    };
    if !existing_roles.iter().any(|r| r == role) {
        c.iam
            .add_role_to_instance_profile()
            .instance_profile_name(name)
            .role_name(role)
            .send()
            .await
            .map_err(|e| api_err("iam:AddRoleToInstanceProfile", e))?;
    }
    observe_profile(c, scope, name).await?.ok_or_else(|| {
        CloudError::Other(format!(
            "iam: instance profile {name} vanished after creation"
        ))
    })
}

async fn delete_profile(c: &Clients, name: &str) -> Result<(), CloudError> {
    let got = not_found_is_none(
        c.iam
            .get_instance_profile()
            .instance_profile_name(name)
            .send()
            .await
            .map_err(|e| api_err("iam:GetInstanceProfile", e)),
    )?;
    let Some(p) = got.as_ref().and_then(|g| g.instance_profile()) else {
        return Ok(());
    };
    for role in p.roles() {
        not_found_is_none(
            c.iam
                .remove_role_from_instance_profile()
                .instance_profile_name(name)
                .role_name(role.role_name())
                .send()
                .await
                .map_err(|e| api_err("iam:RemoveRoleFromInstanceProfile", e)),
        )?;
    }
    not_found_is_none(
        c.iam
            .delete_instance_profile()
            .instance_profile_name(name)
            .send()
            .await
            .map_err(|e| api_err("iam:DeleteInstanceProfile", e)),
    )?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Dispatch

pub async fn create(
    c: &Clients,
    scope: &Scope,
    id: &ResourceId,
    kind: Kind,
    fields: &Fields,
) -> Result<Observed, CloudError> {
    match kind {
        Kind::IamRole => create_role(c, scope, id, fields).await,
        Kind::InstanceProfile => create_profile(c, scope, id, fields).await,
        other => Err(CloudError::Other(format!(
            "iam: kind {other} is not an IAM kind"
        ))),
    }
}

pub async fn update(
    c: &Clients,
    scope: &Scope,
    current: &Observed,
    fields: &Fields,
    changed: &[String],
) -> Result<Observed, CloudError> {
    match current.kind {
        Kind::IamRole => update_role(c, scope, current, fields, changed).await,
        Kind::InstanceProfile => {
            let r = Reader::new(current.kind, &current.id, fields);
            let name = current.physical_id.as_str();
            for field in changed {
                if field != "tags" {
                    return Err(field_err(
                        current,
                        field,
                        "cannot be changed in place (the instance profile must be replaced)",
                    ));
                }
                let mut tags = r.tags()?;
                tags.extend(identity_tags(scope, &current.id));
                c.iam
                    .tag_instance_profile()
                    .instance_profile_name(name)
                    .set_tags(Some(sdk_tags(&tags)?))
                    .send()
                    .await
                    .map_err(|e| api_err("iam:TagInstanceProfile", e))?;
            }
            observe_profile(c, scope, name)
                .await?
                .ok_or_else(|| CloudError::NotFound(format!("instance profile {name}")))
        }
        other => Err(CloudError::Other(format!(
            "iam: kind {other} is not an IAM kind"
        ))),
    }
}

pub async fn delete(
    c: &Clients,
    _scope: &Scope,
    current: &Observed,
    _options: &DeleteOptions,
) -> Result<(), CloudError> {
    match current.kind {
        Kind::IamRole => delete_role(c, &current.physical_id).await,
        Kind::InstanceProfile => delete_profile(c, &current.physical_id).await,
        other => Err(CloudError::Other(format!(
            "iam: kind {other} is not an IAM kind"
        ))),
    }
}

pub async fn poll(
    c: &Clients,
    scope: &Scope,
    current: &Observed,
    want: Want,
) -> Result<Readiness, CloudError> {
    let name = current.physical_id.as_str();
    let found = match current.kind {
        Kind::IamRole => {
            // Existence only: one GetRole (the policies are read by observe).
            let got = not_found_is_none(
                c.iam
                    .get_role()
                    .role_name(name)
                    .send()
                    .await
                    .map_err(|e| api_err("iam:GetRole", e)),
            )?;
            got.is_some_and(|g| g.role().is_some())
        }
        Kind::InstanceProfile => {
            let got = not_found_is_none(
                c.iam
                    .get_instance_profile()
                    .instance_profile_name(name)
                    .send()
                    .await
                    .map_err(|e| api_err("iam:GetInstanceProfile", e)),
            )?;
            got.is_some_and(|g| g.instance_profile().is_some())
        }
        other => {
            return Err(CloudError::Other(format!(
                "iam: kind {other} is not an IAM kind"
            )))
        }
    };
    match (found, want) {
        (false, _) => Ok(Readiness::Gone),
        (true, Want::Gone) => Ok(Readiness::Pending("deleting".into())),
        (true, Want::Ready) => {
            let o = match current.kind {
                Kind::IamRole => observe_role(c, scope, name).await?,
                _ => observe_profile(c, scope, name).await?,
            };
            Ok(o.map(Readiness::Ready).unwrap_or(Readiness::Gone))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
