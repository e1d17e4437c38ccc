//! EC2: VPC, internet gateway, subnets, Elastic IPs, NAT gateways, route tables, security groups,
//! launch templates and the stable instance, one [`KindOps`](crate::KindOps) each; plus AMI
//! lookups.
//!
//! Every kind follows the same shape:
//! - `list`: one paginated describe with the server-side `tag:moodlestack:stack` (and, for one
//!   logical id, `tag:moodlestack:id`) filter; the generic caller checks the tags again
//!   client-side (moto's DescribeNatGateways ignores tag filters), so every observation carries
//!   its tags.
//! - `create`: ONE create call carrying every tag (TagSpecifications) and the ClientToken where
//!   the API takes one; then the strictly necessary follow-up calls (attributes, routes, rules,
//!   attachment). A create repeated after a crash or a lost answer adopts what the first one made
//!   (the generic code looks by the `moodlestack:id` tag first for kinds AWS names by id; security
//!   groups and launch templates answer "already exists").
//! - `poll`: the generic list by physical id.

mod lt;
mod network;
mod routes;
mod sg;

pub(crate) use network::existing_network;

/// The service's kinds under their [`Kind`](moodlestack_model::Kind) names, for the registry
/// [`ops`](crate::ops).
pub(crate) mod kinds {
    pub(crate) use super::{lt::kinds::*, network::kinds::*, routes::kinds::*, sg::kinds::*};
}

pub(crate) use crate::fields::tag_map;
use crate::fields::{answer, api_err, sent, tags_value, Reader, Sdk, SdkFault, SdkRaw};
use crate::{Clients, Created, Cx, KindOps, Query, Update};
use async_trait::async_trait;
use aws_sdk_ec2::types::{Filter, ResourceType, Tag, TagSpecification};
use moodlestack_model::{
    value::sha256_hex, CloudError, Fields, ImageInfo, Kind, Lifecycle, Observed, ObservedId,
    ResourceId, Scope, Value, TAG_ID, TAG_STACK,
};
use std::collections::BTreeMap;

/// An EC2 kind: the [`KindOps`] of every EC2 kind (EC2 lags behind its creates). An update
/// retags with CreateTags first, then [`Ec2Kind::update_rest`] changes the other fields, unless
/// the kind has its own [`Ec2Kind::update`] (the launch template, whose tags carry its content
/// hash).
#[async_trait]
pub(crate) trait Ec2Kind: Send + Sync {
    /// [`KindOps::list`].
    async fn list(&self, cx: &Cx<'_>, q: Query<'_>) -> Result<Vec<Observed>, CloudError>;

    /// [`KindOps::create`].
    async fn create(&self, cx: &Cx<'_>, r: &Reader<'_>) -> Result<Created, CloudError>;

    /// [`KindOps::update`]: [`retag`], then [`Ec2Kind::update_rest`].
    async fn update(&self, cx: &Cx<'_>, u: Update<'_>) -> Result<Observed, CloudError> {
        let (current, r, changed) = u.parts();
        let (out, rest) = retag(cx, current, r, changed).await?;
        let rest = Update {
            changed: &rest,
            ..u
        };
        self.update_rest(cx, rest).await.map(|()| out)
    }

    /// Changes the fields other than the tags (`rest`, after [`retag`]). The default: none of
    /// them changes in place.
    async fn update_rest(&self, _cx: &Cx<'_>, u: Update<'_>) -> Result<(), CloudError> {
        let (_, r, rest) = u.parts();
        match rest.first() {
            Some(f) => Err(not_in_place(r, f)),
            None => Ok(()),
        }
    }

    /// [`Ec2Kind::update_rest`] of the fields `changed` of `made`, a resource created a moment
    /// ago with what its create call cannot set, again while EC2 does not know its id yet
    /// ([`settled`]).
    async fn update_made(
        &self,
        cx: &Cx<'_>,
        made: &Observed,
        r: &Reader<'_>,
        changed: &[&str],
    ) -> Result<(), CloudError> {
        let u = || Update {
            current: made,
            r,
            changed,
        };
        settled(|| self.update_rest(cx, u())).await
    }

    /// [`KindOps::delete`] (EC2 deletes take no options).
    async fn delete(&self, cx: &Cx<'_>, current: &Observed) -> Result<(), CloudError>;

    /// [`KindOps::gone_when_deleted`]. The default, true: the delete call answers once the
    /// resource is gone (VPCs, subnets, gateways, addresses, groups, route tables, launch
    /// templates); the NAT gateway and the instance, which go through `deleting`/`shutting-down`,
    /// say false. A describe may still list a deleted resource for a moment (EC2 is eventually
    /// consistent), so polling it proves nothing a later call needs: a VPC whose subnet or group
    /// is not quite gone answers `DependencyViolation`, which the executor retries. The read
    /// after the run waits until what it deleted is no longer listed (`execute::observe_after`).
    fn gone_when_deleted(&self) -> bool {
        true
    }
}

#[async_trait]
impl<K: Ec2Kind> KindOps for K {
    fn lags(&self) -> bool {
        true
    }

    async fn list(&self, cx: &Cx<'_>, q: Query<'_>) -> Result<Vec<Observed>, CloudError> {
        Ec2Kind::list(self, cx, q).await
    }

    async fn create(&self, cx: &Cx<'_>, r: &Reader<'_>) -> Result<Created, CloudError> {
        Ec2Kind::create(self, cx, r).await
    }

    async fn update(&self, cx: &Cx<'_>, u: Update<'_>) -> Result<Observed, CloudError> {
        Ec2Kind::update(self, cx, u).await
    }

    async fn delete(&self, cx: &Cx<'_>, current: &Observed) -> Result<(), CloudError> {
        Ec2Kind::delete(self, cx, current).await
    }

    fn gone_when_deleted(&self) -> bool {
        Ec2Kind::gone_when_deleted(self)
    }
}

/// Tag filters of a list (empty for [`Query::Physical`]).
pub(crate) fn filters(scope: &Scope, q: Query<'_>) -> Vec<Filter> {
    match q {
        Query::Stack => vec![tag_filter(TAG_STACK, &scope.stack)],
        Query::Logical { id, .. } => vec![
            tag_filter(TAG_STACK, &scope.stack),
            tag_filter(TAG_ID, id.as_str()),
        ],
        Query::Physical(_) => Vec::new(),
    }
}

/// The physical id of a [`Query::Physical`], as the id list of a describe.
pub(crate) fn physical(q: Query<'_>) -> Option<Vec<String>> {
    match q {
        Query::Physical(id) => Some(vec![id.to_string()]),
        _ => None,
    }
}

pub(crate) fn tag_filter(key: &str, value: &str) -> Filter {
    Filter::builder()
        .name(format!("tag:{key}"))
        .values(value)
        .build()
}

pub(crate) fn filter(name: &str, values: &[&str]) -> Filter {
    let mut f = Filter::builder().name(name);
    for v in values {
        f = f.values(*v);
    }
    f.build()
}

/// The tags of the create call: the `tags` field (which carries `moodlestack:stack`,
/// `moodlestack:id` and `Name`), plus the identity tags in case the field lacks them.
pub(crate) fn create_tags(
    scope: &Scope,
    id: &impl std::fmt::Display,
    r: &Reader<'_>,
) -> Result<BTreeMap<String, String>, CloudError> {
    let mut tags = moodlestack_model::identity_tags(scope, id);
    tags.extend(r.tags()?);
    Ok(tags)
}

pub(crate) fn sdk_tags(tags: &BTreeMap<String, String>) -> Vec<Tag> {
    tags.iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect()
}

pub(crate) fn tag_spec(
    resource_type: ResourceType,
    tags: &BTreeMap<String, String>,
) -> TagSpecification {
    TagSpecification::builder()
        .resource_type(resource_type)
        .set_tags(Some(sdk_tags(tags)))
        .build()
}

/// The EC2 ClientToken of a create: a hash of the stack, the logical id and the fields (64 hex
/// characters, the API's maximum), so a retried call returns what the first one made.
pub(crate) fn client_token(
    scope: &Scope,
    id: &impl std::fmt::Display,
    fields: &Fields,
    salt: &str,
) -> String {
    let json = serde_json::to_string(&Value::Map(fields.clone())).unwrap_or_default();
    sha256_hex(format!("{}\n{}\n{}\n{}", scope.stack, id, json, salt).as_bytes())
}

/// An observation assembled from a describe: the logical id from the `moodlestack:id` tag (the
/// generic caller checks it and the stack tag), the tags as the `tags` field.
pub(crate) fn observed(
    kind: Kind,
    physical_id: &str,
    tags: BTreeMap<String, String>,
    mut fields: Fields,
    mut attrs: BTreeMap<String, String>,
    status: &str,
    lifecycle: Lifecycle,
) -> Observed {
    let id = match tags.get(TAG_ID) {
        Some(id) => ResourceId(id.clone()).into(),
        None => ObservedId::Untagged(physical_id.to_string()),
    };
    fields.insert("tags".into(), tags_value(tags));
    attrs.insert("id".into(), physical_id.to_string());
    Observed {
        id,
        kind,
        physical_id: physical_id.to_string(),
        fields,
        attrs,
        status: status.to_string(),
        lifecycle,
    }
}

/// The observation of a resource whose kind AWS reports no state for: usable once described,
/// its id its one attr.
pub(crate) fn available(
    kind: Kind,
    physical_id: &str,
    tags: BTreeMap<String, String>,
    fields: Fields,
) -> Observed {
    let attrs = BTreeMap::new();
    observed(
        kind,
        physical_id,
        tags,
        fields,
        attrs,
        "available",
        Lifecycle::Ready,
    )
}

/// Runs a follow-up call on a resource made a moment ago (attributes, attachment, routes, rules),
/// again while EC2 answers NotFound: EC2 is eventually consistent, and a new id can be unknown
/// to the next call for a few seconds. Gives up after about 6 s with the last answer.
pub(crate) async fn settled<T, F, Fut>(call: F) -> Result<T, CloudError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, CloudError>>,
{
    crate::fields::again_while(
        crate::fields::is_not_found,
        std::time::Duration::from_secs(6),
        call,
    )
    .await
}

/// Maps an AWS "does not exist" answer of a describe by physical id to an empty result.
pub(crate) fn none_if_not_found<T: Default>(r: Result<T, CloudError>) -> Result<T, CloudError> {
    match r {
        Err(e) if crate::fields::is_not_found(&e) => Ok(T::default()),
        other => other,
    }
}

/// The items of a paginated EC2 describe (`$request`: its filters and ids set) through its
/// paginator: none for an AWS "does not exist" answer (a describe by physical id), or the error
/// naming `$operation`.
macro_rules! described {
    ($operation:literal, $request:expr) => {
        async {
            let items = $request.into_paginator().items().send().try_collect();
            $crate::ec2::none_if_not_found($crate::fields::collected($operation, items).await)
        }
    };
}
pub(crate) use described;

/// The fields a create reports as made: the desired ones, less the tags (the observation carries
/// the tags sent).
pub(crate) fn made_fields(r: &Reader<'_>) -> Fields {
    let mut fields = r.fields.clone();
    fields.remove("tags");
    fields
}

/// Ok for "already gone" answers of a delete.
pub(crate) fn ok_if_not_found(r: Result<(), CloudError>) -> Result<(), CloudError> {
    match r {
        Err(e) if crate::fields::is_not_found(&e) => Ok(()),
        other => other,
    }
}

/// The in-place tag change every EC2 kind shares: CreateTags when `tags` changed. Returns the
/// resource with the changed fields at their new values, and the changed fields other than the
/// tags (for the kind's own calls).
pub(crate) async fn retag<'c>(
    cx: &Cx<'_>,
    current: &Observed,
    r: &Reader<'_>,
    changed: &[&'c str],
) -> Result<(Observed, Vec<&'c str>), CloudError> {
    let rest: Vec<&str> = changed.iter().copied().filter(|f| *f != "tags").collect();
    if rest.len() != changed.len() {
        let mut tags = moodlestack_model::identity_tags(cx.scope, &current.id);
        tags.extend(r.tags()?);
        let req =
            cx.c.ec2
                .create_tags()
                .resources(&current.physical_id)
                .set_tags(Some(sdk_tags(&tags)));
        sent("ec2:CreateTags", req.send()).await?;
    }
    let mut out = current.clone();
    for f in changed {
        if let Some(v) = r.fields.get(*f) {
            out.fields.insert(f.to_string(), v.clone());
        }
    }
    if let Some(v) = r.fields.get("tags") {
        out.fields.insert("tags".into(), v.clone());
    }
    Ok((out, rest))
}

/// The error for a field that only a replacement can change.
pub(crate) fn not_in_place(r: &Reader<'_>, field: &str) -> CloudError {
    CloudError::Field {
        kind: r.kind,
        id: r.id.clone(),
        field: field.to_string(),
        problem: "cannot be changed in place (plan a replacement)".to_string(),
    }
}

/// A create answer without what it should carry.
pub(crate) fn no_answer(operation: &str, what: &str) -> CloudError {
    CloudError::UnexpectedAnswer {
        operation: operation.into(),
        what: format!("returned no {what}"),
    }
}

/// Sends the create `request` (`operation`) and reads the new resource's id (`what`: `id`,
/// `version`) from its answer with `id`: the id, or the error naming `operation`.
pub(crate) async fn created_id<T, E: SdkFault, R: SdkRaw>(
    operation: &str,
    request: impl std::future::Future<Output = Sdk<T, E, R>>,
    what: &str,
    id: impl FnOnce(&T) -> Option<String>,
) -> Result<String, CloudError> {
    let out = answer(operation, request).await?;
    id(&out).ok_or_else(|| no_answer(operation, what))
}

/// The resource a create answered (`out.vpc()`, called `what` in the error when it is missing)
/// and its id (`|v| v.vpc_id()`, `<what> id`), or the error naming `operation`.
pub(crate) fn made<'a, T>(
    operation: &str,
    what: &str,
    made: Option<&'a T>,
    id: impl FnOnce(&'a T) -> Option<&'a str>,
) -> Result<(&'a T, &'a str), CloudError> {
    let item = made.ok_or_else(|| no_answer(operation, what))?;
    let id = id(item).ok_or_else(|| no_answer(operation, &format!("{what} id")))?;
    Ok((item, id))
}

/// Facts about an AMI, or None if it does not exist.
pub async fn image(c: &Clients, image_id: &str) -> Result<Option<ImageInfo>, CloudError> {
    let out = c.ec2.describe_images().image_ids(image_id).send().await;
    let out = match out.map_err(|e| api_err("ec2:DescribeImages", e)) {
        Ok(out) => out,
        Err(CloudError::Api { code, .. })
            if code.starts_with("InvalidAMIID") || code == "InvalidParameterValue" =>
        {
            return Ok(None)
        }
        Err(e) => return Err(e),
    };
    Ok(out
        .images()
        .iter()
        .find(|i| i.image_id() == Some(image_id))
        .map(|i| ImageInfo {
            image_id: image_id.to_string(),
            architecture: i
                .architecture()
                .map(|a| a.as_str().to_string())
                .unwrap_or_default(),
            root_device_name: i.root_device_name().unwrap_or_default().to_string(),
        }))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Only the EC2 kinds whose delete goes through a state of its own are polled until gone.
    /// `Ec2Kind::gone_when_deleted` defaults to true, so a new EC2 kind fails here until someone
    /// has decided whether its delete is done when the call answers.
    #[test]
    fn only_the_nat_gateway_and_the_instance_are_polled_until_gone() {
        let ec2: Vec<Kind> = Kind::ALL
            .into_iter()
            .filter(|k| {
                moodlestack_model::spec(*k)
                    .aws_type
                    .starts_with("AWS::EC2::")
            })
            .collect();
        assert_eq!(
            ec2,
            [
                Kind::Vpc,
                Kind::InternetGateway,
                Kind::Subnet,
                Kind::ElasticIp,
                Kind::NatGateway,
                Kind::RouteTable,
                Kind::SecurityGroup,
                Kind::LaunchTemplate,
                Kind::Instance,
            ],
            "a new EC2 kind: decide whether its delete is done when the call answers \
             (`Ec2Kind::gone_when_deleted`), then add it here"
        );
        let polled: Vec<Kind> = ec2
            .into_iter()
            .filter(|k| !crate::ops(*k).gone_when_deleted())
            .collect();
        assert_eq!(polled, [Kind::NatGateway, Kind::Instance]);
    }

    #[test]
    fn client_token_is_64_hex_and_depends_on_everything() {
        let scope = Scope {
            stack: "demo".into(),
            region: "eu-west-1".into(),
        };
        let f: Fields = [("cidr_block".to_string(), Value::str("10.0.0.0/16"))].into();
        let t = client_token(&scope, &ResourceId::from("net.vpc"), &f, "");
        assert_eq!(t.len(), 64);
        assert!(t.chars().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(
            t,
            client_token(&scope, &ResourceId::from("net.vpc"), &f, "")
        );
        assert_ne!(
            t,
            client_token(&scope, &ResourceId::from("net.vpc2"), &f, "")
        );
        assert_ne!(
            t,
            client_token(&scope, &ResourceId::from("net.vpc"), &Fields::new(), "")
        );
        assert_ne!(
            t,
            client_token(&scope, &ResourceId::from("net.vpc"), &f, "x")
        );
    }

    #[tokio::test]
    async fn settled_retries_not_found_only() {
        let calls = std::sync::atomic::AtomicUsize::new(0);
        let r = settled(|| async {
            match calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst) {
                0 => Err(CloudError::Api {
                    operation: "ec2:AttachInternetGateway".into(),
                    code: "InvalidInternetGatewayID.NotFound".into(),
                    message: "not yet".into(),
                    source: None,
                }),
                n => Ok(n),
            }
        })
        .await;
        assert_eq!(r.unwrap(), 1);
        let calls = std::sync::atomic::AtomicUsize::new(0);
        let r: Result<(), _> = settled(|| async {
            calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Err(CloudError::Api {
                operation: "ec2:AttachInternetGateway".into(),
                code: "Resource.AlreadyAssociated".into(),
                message: "refused".into(),
                source: None,
            })
        })
        .await;
        assert!(r.is_err());
        assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 1);
    }
}

/// Test support: the checks every EC2 kind's observation passes.
#[cfg(test)]
pub(crate) mod check {
    use moodlestack_model::{Lifecycle, Observed, Scope};

    pub(crate) fn scope(stack: &str) -> Scope {
        Scope {
            stack: stack.into(),
            region: "eu-west-1".into(),
        }
    }

    /// The stack's tags (`demo`) for `id`.
    pub(crate) fn tags(id: &str) -> Vec<aws_sdk_ec2::types::Tag> {
        [("moodlestack:stack", "demo"), ("moodlestack:id", id)]
            .iter()
            .map(|(k, v)| aws_sdk_ec2::types::Tag::builder().key(*k).value(*v).build())
            .collect()
    }

    /// `o` has exactly its descriptor's fields (less `absent`), the lifecycle `lifecycle`, is
    /// kept by the generic verification for stack `demo` and its logical id `id`, and dropped
    /// for another stack or another logical id.
    pub(crate) fn observation(o: &Observed, absent: &[&str], lifecycle: Lifecycle, id: &str) {
        crate::fields::assert_matches_spec(o, absent);
        assert_eq!(o.lifecycle, lifecycle, "{} lifecycle", o.kind);
        assert_eq!(o.id, id);
        let demo = scope("demo");
        let keep = |s: &Scope, q| crate::verified(s, o.kind, q, vec![o.clone()]);
        assert_eq!(keep(&demo, crate::Query::Stack).len(), 1);
        assert!(keep(&scope("other"), crate::Query::Stack).is_empty());
        let fields = moodlestack_model::Fields::new();
        let want = moodlestack_model::ResourceId::from(id);
        let other = moodlestack_model::ResourceId::from("some.other");
        assert_eq!(
            keep(
                &demo,
                crate::Query::Logical {
                    id: &want,
                    fields: &fields
                }
            )
            .len(),
            1
        );
        assert!(keep(
            &demo,
            crate::Query::Logical {
                id: &other,
                fields: &fields
            }
        )
        .is_empty());
    }
}
