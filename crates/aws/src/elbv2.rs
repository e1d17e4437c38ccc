//! Elastic Load Balancing v2: the [`Kind::LoadBalancer`], [`Kind::TargetGroup`] and
//! [`Kind::Listener`] kinds, one [`KindOps`] each.
//!
//! ELBv2 describes cannot filter by tag: load balancers and target groups are described by the
//! deterministic names of the desired resources (one call per kind with all names), their tags
//! read with DescribeTags (20 ARNs per call, every call in flight at once), only those tagged with
//! the stack kept, and their one attribute each (idle timeout, deregistration delay) read all at
//! once. A create whose name is taken is `DuplicateLoadBalancerName` / `DuplicateTargetGroupName`:
//! the generic code adopts the resource if it is ours. Listeners are found through the stack's
//! load balancers (all read at once) and tagged like the rest; one without `moodlestack:id` is
//! `untagged:<listener arn>` with its identity fields (`load_balancer_arn`, `port`): an earlier
//! version's listener is adopted by them (and tagged), any other is left alone. A second listener
//! on a port is `DuplicateListener`.

use crate::fields::delete_by;
use crate::fields::{
    all_pages, answer, api_err, desired_names, int, is_code, is_not_found, not_found_is_none,
    owned_id, reported, sent, sorted_strs, tag_map, tags_value, Reader,
};
use crate::{Clients, Created, Cx, KindOps, Query, Update};
use async_trait::async_trait;
use aws_sdk_elasticloadbalancingv2::types::{
    Action, ActionTypeEnum, Certificate, Listener as SdkListener, LoadBalancer as SdkLoadBalancer,
    LoadBalancerAttribute, LoadBalancerSchemeEnum, LoadBalancerStateEnum, LoadBalancerTypeEnum,
    Matcher, ProtocolEnum, RedirectActionConfig, RedirectActionStatusCodeEnum, Tag,
    TargetGroup as SdkTargetGroup, TargetGroupAttribute, TargetTypeEnum,
};
use futures::future::try_join_all;
use moodlestack_model::{
    CloudError, Fields, Kind, Lifecycle, Observed, ObservedId, ResourceId, Scope, Value,
};
use std::collections::BTreeMap;
use std::future::Future;

/// A managed attribute of a load balancer or target group: its field, AWS's key, and whether it is
/// a boolean (else a number).
struct Attr {
    field: &'static str,
    key: &'static str,
    boolean: bool,
}

/// The load balancer's managed attributes. `drop_invalid_header_fields`: HTTP headers with
/// characters the RFCs do not allow are dropped at the ALB, not passed to Apache (request
/// smuggling and header-injection hardening; AWS's default is off). `deletion_protection`
/// follows the database's.
const LB_ATTRIBUTES: &[Attr] = &[
    Attr {
        field: "deletion_protection",
        key: "deletion_protection.enabled",
        boolean: true,
    },
    Attr {
        field: "idle_timeout",
        key: "idle_timeout.timeout_seconds",
        boolean: false,
    },
    Attr {
        field: "drop_invalid_header_fields",
        key: "routing.http.drop_invalid_header_fields.enabled",
        boolean: true,
    },
];
const TG_ATTRIBUTES: &[Attr] = &[Attr {
    field: "deregistration_delay",
    key: "deregistration_delay.timeout_seconds",
    boolean: false,
}];
/// DescribeTags takes at most 20 ARNs per call.
const TAGS_PER_CALL: usize = 20;

type Tags = BTreeMap<String, String>;

fn in_place_only(r: &Reader<'_>, field: &str, what: &str) -> CloudError {
    CloudError::Field {
        kind: r.kind,
        id: r.id.clone(),
        field: field.to_string(),
        problem: format!("cannot be changed in place (the {what} must be replaced)"),
    }
}

fn sdk_tags(tags: &Tags) -> Vec<Tag> {
    tags.iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect()
}

fn all_tags(r: &Reader<'_>, scope: &Scope) -> Result<Tags, CloudError> {
    let tags = r.stack_tags(scope)?;
    Ok(tags)
}

/// Tags of every ARN, with ONE DescribeTags call per 20 ARNs.
/// Tags of every ARN: one DescribeTags per 20 ARNs, all in flight at once.
async fn describe_tags(c: &Clients, arns: &[String]) -> Result<BTreeMap<String, Tags>, CloudError> {
    let answers = try_join_all(arns.chunks(TAGS_PER_CALL).map(|chunk| {
        c.elbv2
            .describe_tags()
            .set_resource_arns(Some(chunk.to_vec()))
            .send()
    }))
    .await
    .map_err(|e| api_err("elasticloadbalancing:DescribeTags", e))?;
    Ok(answers
        .iter()
        .flat_map(|a| a.tag_descriptions())
        .map(|d| {
            let tags = tag_map(d.tags());
            (d.resource_arn().unwrap_or_default().to_string(), tags)
        })
        .collect())
}

/// The items (load balancers or target groups) tagged with the stack, with their ARN, logical id
/// and tags.
async fn tagged<'t, T>(
    cx: &Cx<'_>,
    items: &'t [T],
    arn_of: impl Fn(&T) -> Option<&str>,
) -> Result<Vec<(&'t T, String, ResourceId, Tags)>, CloudError> {
    let arns: Vec<String> = items
        .iter()
        .filter_map(&arn_of)
        .map(str::to_string)
        .collect();
    if arns.is_empty() {
        return Ok(Vec::new());
    }
    let tags = describe_tags(cx.c, &arns).await?;
    Ok(keep_ours(cx.scope, items, arn_of, tags))
}

/// The items whose tags (by ARN) say they are the stack's.
fn keep_ours<'t, T>(
    scope: &Scope,
    items: &'t [T],
    arn_of: impl Fn(&T) -> Option<&str>,
    mut tags: BTreeMap<String, Tags>,
) -> Vec<(&'t T, String, ResourceId, Tags)> {
    items
        .iter()
        .filter_map(|i| {
            let arn = arn_of(i)?.to_string();
            let t = tags.remove(&arn)?;
            let id = owned_id(scope, &t)?;
            Some((i, arn, id, t))
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Describes

/// A describe by names (load balancers, target groups). ELBv2 fails the whole call when one name
/// does not exist, so a failing multi-name call is retried name by name, all at once.
async fn by_names<T, F, Fut>(names: &[String], call: F) -> Result<Vec<T>, CloudError>
where
    F: Fn(Vec<String>) -> Fut,
    Fut: Future<Output = Result<Vec<T>, CloudError>>,
{
    if names.is_empty() {
        return Ok(Vec::new());
    }
    match call(names.to_vec()).await {
        Err(e) if is_not_found(&e) && names.len() > 1 => {
            let each = try_join_all(
                names
                    .iter()
                    .map(|n| async { not_found_is_none(call(vec![n.clone()]).await) }),
            )
            .await?;
            Ok(each.into_iter().flatten().flatten().collect())
        }
        other => Ok(not_found_is_none(other)?.unwrap_or_default()),
    }
}

/// The names a [`Query`] asks for: the desired resources' of `kind`, or the one named.
fn queried_names(cx: &Cx<'_>, q: Query<'_>, kind: Kind) -> Vec<String> {
    match q {
        Query::Stack => desired_names(cx.desired, kind, "name"),
        Query::Logical { fields, .. } => fields
            .get("name")
            .and_then(Value::as_str)
            .map(str::to_string)
            .into_iter()
            .collect(),
        Query::Physical(_) => Vec::new(),
    }
}

/// The listeners of a load balancer (none when it does not exist).
async fn listeners_of(c: &Clients, lb_arn: &str) -> Result<Vec<SdkListener>, CloudError> {
    let req = c.elbv2.describe_listeners().load_balancer_arn(lb_arn);
    let listeners = all_pages(
        "elasticloadbalancing:DescribeListeners",
        req.into_paginator().send().collect().await,
        |p| p.listeners(),
    );
    Ok(not_found_is_none(listeners)?.unwrap_or_default())
}

async fn listener_by_arn(c: &Clients, arn: &str) -> Result<Option<SdkListener>, CloudError> {
    let req = c.elbv2.describe_listeners().listener_arns(arn);
    let resp =
        not_found_is_none(answer("elasticloadbalancing:DescribeListeners", req.send()).await)?;
    Ok(resp.and_then(|r| r.listeners().first().cloned()))
}

/// The managed attributes among AWS's (key, value) pairs, as fields.
fn attr_fields<'a>(
    attrs: &[Attr],
    kv: impl Iterator<Item = (Option<&'a str>, Option<&'a str>)> + Clone,
) -> Fields {
    attrs
        .iter()
        .filter_map(|a| {
            let (_, v) = kv.clone().find(|(k, _)| *k == Some(a.key))?;
            let v = v?;
            let value = if a.boolean {
                Value::Bool(v == "true")
            } else {
                Value::Int(v.parse().ok()?)
            };
            Some((a.field.to_string(), value))
        })
        .collect()
}

/// AWS's (key, value) of the attribute fields `fields` that `r` sets.
fn attr_values(
    attrs: &[Attr],
    r: &Reader<'_>,
    fields: &[&str],
) -> Result<Vec<(String, String)>, CloudError> {
    let mut out = Vec::new();
    for a in attrs
        .iter()
        .filter(|a| fields.contains(&a.field) && r.has(a.field))
    {
        let v = if a.boolean {
            r.bool(a.field)?.to_string()
        } else {
            r.int(a.field)?.to_string()
        };
        out.push((a.key.to_string(), v));
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// Observations

fn lb_status(lb: &SdkLoadBalancer) -> String {
    lb.state()
        .and_then(|s| s.code())
        .map(|c| c.as_str().to_string())
        .unwrap_or_else(|| "unknown".into())
}

fn lb_lifecycle(lb: &SdkLoadBalancer) -> Lifecycle {
    match lb.state().and_then(|s| s.code()) {
        Some(LoadBalancerStateEnum::Active | LoadBalancerStateEnum::ActiveImpaired) => {
            Lifecycle::Ready
        }
        Some(LoadBalancerStateEnum::Failed) => Lifecycle::Failed,
        // provisioning, or a state this SDK does not know yet
        _ => Lifecycle::Creating,
    }
}

/// What CloudWatch and the ALBRequestCountPerTarget resource label call a load balancer or a
/// target group: the resource part of its ARN (`app/<name>/<id>`, `targetgroup/<name>/<id>`).
fn arn_suffix(arn: &str) -> String {
    let resource = arn.splitn(6, ':').nth(5).unwrap_or(arn);
    resource
        .strip_prefix("loadbalancer/")
        .unwrap_or(resource)
        .to_string()
}

fn lb_observed(id: ResourceId, lb: &SdkLoadBalancer, tags: Tags, attributes: Fields) -> Observed {
    let arn = lb.load_balancer_arn().unwrap_or_default().to_string();
    let subnets = lb.availability_zones().iter().filter_map(|z| z.subnet_id());
    let mut fields = reported([
        (
            "name",
            Some(Value::str(lb.load_balancer_name().unwrap_or_default())),
        ),
        ("scheme", lb.scheme().map(|s| Value::str(s.as_str()))),
        ("subnet_ids", Some(sorted_strs(subnets))),
        (
            "security_group_ids",
            Some(sorted_strs(lb.security_groups().iter().cloned())),
        ),
        ("tags", Some(tags_value(tags))),
    ]);
    fields.extend(attributes);
    let mut attrs = BTreeMap::from([
        ("id".to_string(), arn.clone()),
        ("arn".to_string(), arn.clone()),
        ("arn_suffix".to_string(), arn_suffix(&arn)),
    ]);
    if let Some(d) = lb.dns_name() {
        attrs.insert("dns_name".into(), d.to_string());
    }
    if let Some(z) = lb.canonical_hosted_zone_id() {
        attrs.insert("zone_id".into(), z.to_string());
    }
    Observed {
        id: id.into(),
        kind: Kind::LoadBalancer,
        physical_id: arn,
        fields,
        attrs,
        status: lb_status(lb),
        lifecycle: lb_lifecycle(lb),
    }
}

fn tg_observed(id: ResourceId, tg: &SdkTargetGroup, tags: Tags, attributes: Fields) -> Observed {
    let arn = tg.target_group_arn().unwrap_or_default().to_string();
    let matcher = tg.matcher().and_then(|m| m.http_code());
    let mut fields = reported([
        (
            "name",
            Some(Value::str(tg.target_group_name().unwrap_or_default())),
        ),
        ("vpc_id", tg.vpc_id().map(Value::str)),
        ("protocol", tg.protocol().map(|p| Value::str(p.as_str()))),
        ("port", tg.port().map(int)),
        (
            "target_type",
            tg.target_type().map(|t| Value::str(t.as_str())),
        ),
        ("health_check_path", tg.health_check_path().map(Value::str)),
        (
            "health_check_interval",
            tg.health_check_interval_seconds().map(int),
        ),
        ("healthy_threshold", tg.healthy_threshold_count().map(int)),
        (
            "unhealthy_threshold",
            tg.unhealthy_threshold_count().map(int),
        ),
        ("health_check_matcher", matcher.map(Value::str)),
        ("tags", Some(tags_value(tags))),
    ]);
    fields.extend(attributes);
    Observed {
        id: id.into(),
        kind: Kind::TargetGroup,
        physical_id: arn.clone(),
        fields,
        attrs: BTreeMap::from([
            ("id".to_string(), arn.clone()),
            ("arn_suffix".to_string(), arn_suffix(&arn)),
            ("arn".to_string(), arn),
        ]),
        // Target groups and listeners have no status: one that is described is usable.
        status: "available".into(),
        lifecycle: Lifecycle::Ready,
    }
}

/// The `default_action` field of a listener's first default action.
fn action_value(a: &Action) -> Value {
    let mut m = BTreeMap::new();
    let ty = a
        .r#type()
        .map(|t| t.as_str().to_string())
        .unwrap_or_default();
    match a.r#type() {
        Some(ActionTypeEnum::Redirect) => {
            if let Some(r) = a.redirect_config() {
                if let Some(p) = r.protocol() {
                    m.insert("protocol".to_string(), Value::str(p));
                }
                if let Some(p) = r.port() {
                    m.insert("port".to_string(), Value::str(p));
                }
                if let Some(s) = r.status_code() {
                    m.insert("status_code".to_string(), Value::str(s.as_str()));
                }
            }
        }
        Some(ActionTypeEnum::Forward) => {
            let tg = a.target_group_arn().or_else(|| {
                a.forward_config()
                    .and_then(|f| f.target_groups().first())
                    .and_then(|t| t.target_group_arn())
            });
            if let Some(tg) = tg {
                m.insert("target_group_arn".to_string(), Value::str(tg));
            }
        }
        _ => {}
    }
    m.insert("type".to_string(), Value::Str(ty));
    Value::Map(m)
}

fn listener_observed(id: ObservedId, l: &SdkListener, tags: Tags) -> Observed {
    let arn = l.listener_arn().unwrap_or_default().to_string();
    let mut actions: Vec<&Action> = l.default_actions().iter().collect();
    actions.sort_by_key(|a| a.order().unwrap_or(i32::MAX));
    let certificate = l.certificates().iter().find_map(|c| c.certificate_arn());
    let fields = reported([
        ("load_balancer_arn", l.load_balancer_arn().map(Value::str)),
        ("port", l.port().map(int)),
        ("protocol", l.protocol().map(|p| Value::str(p.as_str()))),
        ("certificate_arn", certificate.map(Value::str)),
        ("ssl_policy", l.ssl_policy().map(Value::str)),
        ("default_action", actions.first().map(|a| action_value(a))),
        ("tags", Some(tags_value(tags))),
    ]);
    Observed {
        id,
        kind: Kind::Listener,
        physical_id: arn.clone(),
        fields,
        attrs: BTreeMap::from([("id".to_string(), arn.clone()), ("arn".to_string(), arn)]),
        status: "active".into(),
        lifecycle: Lifecycle::Ready,
    }
}

/// Listeners with their tags (one DescribeTags per 20, all at once): the stack's by their
/// `moodlestack:id`; one without it is [`ObservedId::Untagged`] (an earlier version's listener,
/// adopted by its identity, or somebody else's, left alone).
async fn listeners_observed(cx: &Cx<'_>, ls: &[SdkListener]) -> Result<Vec<Observed>, CloudError> {
    let arns: Vec<String> = ls
        .iter()
        .filter_map(|l| l.listener_arn().map(str::to_string))
        .collect();
    let mut tags = if arns.is_empty() {
        BTreeMap::new()
    } else {
        describe_tags(cx.c, &arns).await?
    };
    Ok(ls
        .iter()
        .map(|l| {
            let arn = l.listener_arn().unwrap_or_default();
            let t = tags.remove(arn).unwrap_or_default();
            let id = match owned_id(cx.scope, &t) {
                Some(id) => id.into(),
                None => ObservedId::Untagged(arn.to_string()),
            };
            listener_observed(id, l, t)
        })
        .collect())
}

/// Full observations (tags with ONE DescribeTags for all, then attributes) of the load balancers
/// and target groups that carry the stack's tags.
/// The resource a create by name (load balancer, target group) answered with, with its ARN and
/// tags. AWS answers a create identical to an earlier one with the existing resource, so its tags
/// are read back: None (for [`Created::Exists`], the generic code then adopts or refuses) when it
/// is not this resource of the stack, or when the name is taken (`duplicate`).
async fn made<T: Clone>(
    cx: &Cx<'_>,
    r: &Reader<'_>,
    operation: &str,
    duplicate: &str,
    answer: Result<Vec<T>, CloudError>,
    arn_of: impl Fn(&T) -> Option<&str>,
) -> Result<Option<(T, String, Tags)>, CloudError> {
    let items = match answer {
        Ok(items) => items,
        Err(e) if is_code(&e, duplicate) => return Ok(None),
        Err(e) => return Err(e),
    };
    let name = r.str("name")?;
    if items.iter().all(|i| arn_of(i).is_none()) {
        return Err(CloudError::UnexpectedAnswer {
            operation: operation.into(),
            what: format!("{name} was not returned"),
        });
    }
    Ok(tagged(cx, &items, &arn_of)
        .await?
        .into_iter()
        .find(|(_, _, id, _)| *id == r.id)
        .map(|(i, arn, _, tags)| (i.clone(), arn, tags)))
}

// ---------------------------------------------------------------------------------------------
// Load balancers and target groups

/// What load balancers and target groups share: described by names (the desired resources') or
/// by ARN, kept when DescribeTags says they are the stack's, observed with the one integer
/// attribute each manages (read apart, all at once), made by a create that answers with the
/// resource, changed in place by the field.
#[async_trait]
trait Named: Sync {
    /// The SDK's description of one.
    type Sdk: Clone + Send + Sync;
    /// The kind.
    const KIND: Kind;
    /// What errors call it.
    const WHAT: &'static str;
    /// The managed attributes (`idle_timeout`, `deregistration_delay`, ...).
    const ATTRIBUTES: &'static [Attr];

    fn arn(item: &Self::Sdk) -> Option<&str>;

    /// One paginated describe, by names or by ARNs.
    async fn describe(
        c: &Clients,
        names: Option<Vec<String>>,
        arns: Option<Vec<String>>,
    ) -> Result<Vec<Self::Sdk>, CloudError>;

    /// The managed attributes' values, read with their own describe.
    async fn attributes(c: &Clients, arn: &str) -> Result<Fields, CloudError>;

    /// Sets attributes by AWS's (key, value).
    async fn set_attributes(
        c: &Clients,
        arn: &str,
        kv: Vec<(String, String)>,
    ) -> Result<(), CloudError>;

    fn observed(id: ResourceId, item: &Self::Sdk, tags: Tags, attributes: Fields) -> Observed;
}

/// The [`Named`] implementation of a load balancer or a target group: both are described, and
/// their attributes read and set, by calls of one shape that differ only in the SDK's names (the
/// operation, its `service:Action` label, the ARN setter, the attribute type).
macro_rules! named {
    (
        $ty:ident: $sdk:ty, $kind:expr, $what:literal, $attrs:expr, $observed:path,
        arn: $arn:ident,
        describe: $describe:ident($describe_op:literal), $set_arns:ident, $items:ident,
        read: $read:ident($read_op:literal),
        write: $write:ident($write_op:literal), $attr:ident,
    ) => {
        #[async_trait]
        impl Named for $ty {
            type Sdk = $sdk;
            const KIND: Kind = $kind;
            const WHAT: &'static str = $what;
            const ATTRIBUTES: &'static [Attr] = $attrs;

            fn arn(item: &$sdk) -> Option<&str> {
                item.$arn()
            }

            async fn describe(
                c: &Clients,
                names: Option<Vec<String>>,
                arns: Option<Vec<String>>,
            ) -> Result<Vec<$sdk>, CloudError> {
                let req = c.elbv2.$describe().set_names(names).$set_arns(arns);
                let pages = req.into_paginator().send().collect().await;
                all_pages($describe_op, pages, |p| p.$items())
            }

            async fn attributes(c: &Clients, arn: &str) -> Result<Fields, CloudError> {
                let req = c.elbv2.$read().$arn(arn);
                let resp = answer($read_op, req.send()).await?;
                let kv = resp.attributes().iter().map(|a| (a.key(), a.value()));
                Ok(attr_fields($attrs, kv))
            }

            async fn set_attributes(
                c: &Clients,
                arn: &str,
                kv: Vec<(String, String)>,
            ) -> Result<(), CloudError> {
                let attributes = kv
                    .into_iter()
                    .map(|(k, v)| $attr::builder().key(k).value(v).build())
                    .collect();
                let req = c.elbv2.$write().$arn(arn).set_attributes(Some(attributes));
                sent($write_op, req.send()).await
            }

            fn observed(id: ResourceId, item: &$sdk, tags: Tags, attributes: Fields) -> Observed {
                $observed(id, item, tags, attributes)
            }
        }
    };
}

/// The ones tagged with the stack, observed with their attributes (all read at once).
async fn observed_all<K: Named>(
    cx: &Cx<'_>,
    items: &[K::Sdk],
) -> Result<Vec<Observed>, CloudError> {
    let ours = tagged(cx, items, K::arn).await?;
    try_join_all(ours.into_iter().map(|(item, arn, id, tags)| async move {
        let attributes = K::attributes(cx.c, &arn).await?;
        Ok::<_, CloudError>(K::observed(id, item, tags, attributes))
    }))
    .await
}

async fn by_arn<K: Named>(c: &Clients, arn: &str) -> Result<Vec<K::Sdk>, CloudError> {
    Ok(
        not_found_is_none(K::describe(c, None, Some(vec![arn.to_string()])).await)?
            .unwrap_or_default(),
    )
}

/// [`KindOps::list`] of either.
async fn list_named<K: Named>(cx: &Cx<'_>, q: Query<'_>) -> Result<Vec<Observed>, CloudError> {
    let items = match q {
        Query::Physical(arn) => by_arn::<K>(cx.c, arn).await?,
        q => {
            let names = queried_names(cx, q, K::KIND);
            by_names(&names, |n| K::describe(cx.c, Some(n), None)).await?
        }
    };
    observed_all::<K>(cx, &items).await
}

/// The rest of a create whose answer `made` read: the attribute, when the stack sets it.
async fn create_named<K: Named>(
    cx: &Cx<'_>,
    r: &Reader<'_>,
    made: Option<(K::Sdk, String, Tags)>,
) -> Result<Created, CloudError> {
    let Some((item, arn, tags)) = made else {
        return Ok(Created::Exists);
    };
    let fields: Vec<&str> = K::ATTRIBUTES.iter().map(|a| a.field).collect();
    let kv = attr_values(K::ATTRIBUTES, r, &fields)?;
    let set: Fields = fields
        .iter()
        .filter_map(|f| Some(((*f).to_string(), r.fields.get(*f)?.clone())))
        .collect();
    if !kv.is_empty() {
        K::set_attributes(cx.c, &arn, kv).await?;
    }
    Ok(Created::New(K::observed(r.id.clone(), &item, tags, set)))
}

/// The in-place change of a field both kinds change the same way (the attribute, the tags); any
/// other field is refused.
async fn update_shared<K: Named>(
    cx: &Cx<'_>,
    arn: &str,
    r: &Reader<'_>,
    field: &str,
) -> Result<(), CloudError> {
    match field {
        f if K::ATTRIBUTES.iter().any(|a| a.field == f) => {
            K::set_attributes(cx.c, arn, attr_values(K::ATTRIBUTES, r, &[f])?).await
        }
        "tags" => add_tags(cx.c, arn, &all_tags(r, cx.scope)?).await,
        other => Err(in_place_only(r, other, K::WHAT)),
    }
}

/// The resource as it is after an update.
async fn reread<K: Named>(cx: &Cx<'_>, current: &Observed) -> Result<Observed, CloudError> {
    let arn = current.physical_id.as_str();
    let items = by_arn::<K>(cx.c, arn).await?;
    let mut o = observed_all::<K>(cx, &items)
        .await?
        .pop()
        .ok_or_else(|| CloudError::NotFound(format!("{} {arn}", K::WHAT)))?;
    o.id = current.id.clone();
    Ok(o)
}

async fn add_tags(c: &Clients, arn: &str, tags: &Tags) -> Result<(), CloudError> {
    let req = c.elbv2.add_tags().resource_arns(arn);
    sent(
        "elasticloadbalancing:AddTags",
        req.set_tags(Some(sdk_tags(tags))).send(),
    )
    .await
}

/// This file's kinds under their [`Kind`](moodlestack_model::Kind) names, for the registry
/// [`ops`](crate::ops).
pub(crate) mod kinds {
    pub(crate) use super::{Listener, LoadBalancer, TargetGroup};
}

/// `AWS::ElasticLoadBalancingV2::LoadBalancer` (an internet-facing ALB).
pub(crate) struct LoadBalancer;

named! {
    LoadBalancer: SdkLoadBalancer, Kind::LoadBalancer, "load balancer", LB_ATTRIBUTES, lb_observed,
    arn: load_balancer_arn,
    describe: describe_load_balancers("elasticloadbalancing:DescribeLoadBalancers"),
        set_load_balancer_arns, load_balancers,
    read: describe_load_balancer_attributes("elasticloadbalancing:DescribeLoadBalancerAttributes"),
    write: modify_load_balancer_attributes("elasticloadbalancing:ModifyLoadBalancerAttributes"),
        LoadBalancerAttribute,
}

#[async_trait]
impl KindOps for LoadBalancer {
    async fn list(&self, cx: &Cx<'_>, q: Query<'_>) -> Result<Vec<Observed>, CloudError> {
        list_named::<Self>(cx, q).await
    }

    async fn create(&self, cx: &Cx<'_>, r: &Reader<'_>) -> Result<Created, CloudError> {
        const OP: &str = "elasticloadbalancing:CreateLoadBalancer";
        let answer = answer(
            OP,
            cx.c.elbv2
                .create_load_balancer()
                .name(r.str("name")?)
                .r#type(LoadBalancerTypeEnum::Application)
                .scheme(LoadBalancerSchemeEnum::from(
                    r.opt_str("scheme").unwrap_or("internet-facing"),
                ))
                .set_subnets(Some(r.strs("subnet_ids")?))
                .set_security_groups(Some(r.strs("security_group_ids")?))
                .set_tags(Some(sdk_tags(&all_tags(r, cx.scope)?)))
                .send(),
        )
        .await
        .map(|out| out.load_balancers().to_vec());
        let made = made(cx, r, OP, "DuplicateLoadBalancerName", answer, Self::arn).await?;
        create_named::<Self>(cx, r, made).await
    }

    async fn update(&self, cx: &Cx<'_>, u: Update<'_>) -> Result<Observed, CloudError> {
        let (current, r, changed) = u.parts();
        let elbv2 = &cx.c.elbv2;
        let arn = current.physical_id.as_str();
        for field in changed {
            match *field {
                "subnet_ids" => {
                    let req = elbv2.set_subnets().load_balancer_arn(arn);
                    let req = req.set_subnets(Some(r.strs("subnet_ids")?));
                    sent("elasticloadbalancing:SetSubnets", req.send()).await?;
                }
                "security_group_ids" => {
                    let req = elbv2.set_security_groups().load_balancer_arn(arn);
                    let req = req.set_security_groups(Some(r.strs("security_group_ids")?));
                    sent("elasticloadbalancing:SetSecurityGroups", req.send()).await?;
                }
                other => update_shared::<Self>(cx, arn, r, other).await?,
            }
        }
        reread::<Self>(cx, current).await
    }

    async fn delete(&self, cx: &Cx<'_>, current: &Observed) -> Result<(), CloudError> {
        let options = &cx.delete;
        // Deletion protection (it follows the database's) is lifted only with
        // --allow-data-loss; without it AWS refuses the delete (OperationNotPermitted, whose
        // hint says so).
        let arn = current.physical_id.as_str();
        let protected = current.fields.get("deletion_protection") == Some(&Value::Bool(true));
        if protected && options.lift_deletion_protection {
            let off = vec![(
                "deletion_protection.enabled".to_string(),
                "false".to_string(),
            )];
            Self::set_attributes(cx.c, arn, off).await?;
        }
        delete_by!(sent "elasticloadbalancing:DeleteLoadBalancer":
            cx.c.elbv2.delete_load_balancer().load_balancer_arn(current))
    }
}

/// The request `$req` (CreateTargetGroup or ModifyTargetGroup: the same members) with the
/// health check settings of `HEALTH_FIELDS` the stack sets (`$r`).
macro_rules! health_check {
    ($req:expr, $r:expr) => {
        $req.set_health_check_path($r.opt_str("health_check_path").map(str::to_string))
            .set_health_check_interval_seconds($r.opt_int32("health_check_interval")?)
            .set_healthy_threshold_count($r.opt_int32("healthy_threshold")?)
            .set_unhealthy_threshold_count($r.opt_int32("unhealthy_threshold")?)
            .set_matcher(
                $r.opt_str("health_check_matcher")
                    .map(|m| Matcher::builder().http_code(m).build()),
            )
    };
}

const HEALTH_FIELDS: [&str; 5] = [
    "health_check_path",
    "health_check_interval",
    "healthy_threshold",
    "unhealthy_threshold",
    "health_check_matcher",
];

/// `AWS::ElasticLoadBalancingV2::TargetGroup`.
pub(crate) struct TargetGroup;

named! {
    TargetGroup: SdkTargetGroup, Kind::TargetGroup, "target group", TG_ATTRIBUTES, tg_observed,
    arn: target_group_arn,
    describe: describe_target_groups("elasticloadbalancing:DescribeTargetGroups"),
        set_target_group_arns, target_groups,
    read: describe_target_group_attributes("elasticloadbalancing:DescribeTargetGroupAttributes"),
    write: modify_target_group_attributes("elasticloadbalancing:ModifyTargetGroupAttributes"),
        TargetGroupAttribute,
}

#[async_trait]
impl KindOps for TargetGroup {
    async fn list(&self, cx: &Cx<'_>, q: Query<'_>) -> Result<Vec<Observed>, CloudError> {
        list_named::<Self>(cx, q).await
    }

    async fn create(&self, cx: &Cx<'_>, r: &Reader<'_>) -> Result<Created, CloudError> {
        const OP: &str = "elasticloadbalancing:CreateTargetGroup";
        let req =
            cx.c.elbv2
                .create_target_group()
                .name(r.str("name")?)
                .protocol(ProtocolEnum::from(r.opt_str("protocol").unwrap_or("HTTP")))
                .port(r.int32("port")?)
                .vpc_id(r.str("vpc_id")?)
                .target_type(TargetTypeEnum::from(
                    r.opt_str("target_type").unwrap_or("instance"),
                ))
                .set_tags(Some(sdk_tags(&all_tags(r, cx.scope)?)));
        let req = health_check!(req, r);
        let answer = answer(OP, req.send())
            .await
            .map(|out| out.target_groups().to_vec());
        let made = made(cx, r, OP, "DuplicateTargetGroupName", answer, Self::arn).await?;
        create_named::<Self>(cx, r, made).await
    }

    async fn update(&self, cx: &Cx<'_>, u: Update<'_>) -> Result<Observed, CloudError> {
        let (current, r, changed) = u.parts();
        let arn = current.physical_id.as_str();
        if changed.iter().any(|f| HEALTH_FIELDS.contains(f)) {
            // One ModifyTargetGroup with every health check setting the stack manages.
            let req = cx.c.elbv2.modify_target_group().target_group_arn(arn);
            let req = health_check!(req, r);
            answer("elasticloadbalancing:ModifyTargetGroup", req.send()).await?;
        }
        for field in changed.iter().filter(|f| !HEALTH_FIELDS.contains(f)) {
            update_shared::<Self>(cx, arn, r, field).await?;
        }
        reread::<Self>(cx, current).await
    }

    async fn delete(&self, cx: &Cx<'_>, current: &Observed) -> Result<(), CloudError> {
        delete_by!(sent "elasticloadbalancing:DeleteTargetGroup":
            cx.c.elbv2.delete_target_group().target_group_arn(current))
    }
}

// ---------------------------------------------------------------------------------------------
// Listeners

/// The default action of a listener from its `default_action` field.
fn sdk_action(r: &Reader<'_>) -> Result<Action, CloudError> {
    let m = r.map("default_action")?;
    let get = |k: &str| -> Option<String> {
        match m.get(k)? {
            Value::Str(s) => Some(s.clone()),
            Value::Int(i) => Some(i.to_string()),
            _ => None,
        }
    };
    let bad = |problem: &str| CloudError::Field {
        kind: r.kind,
        id: r.id.clone(),
        field: "default_action".into(),
        problem: problem.to_string(),
    };
    match get("type").as_deref() {
        Some("redirect") => Ok(Action::builder()
            .r#type(ActionTypeEnum::Redirect)
            .redirect_config(
                RedirectActionConfig::builder()
                    .protocol(get("protocol").unwrap_or_else(|| "HTTPS".into()))
                    .port(get("port").unwrap_or_else(|| "443".into()))
                    .status_code(RedirectActionStatusCodeEnum::from(
                        get("status_code")
                            .unwrap_or_else(|| "HTTP_301".into())
                            .as_str(),
                    ))
                    .build(),
            )
            .build()),
        Some("forward") => {
            let tg = get("target_group_arn")
                .ok_or_else(|| bad("a forward action needs target_group_arn"))?;
            Ok(Action::builder()
                .r#type(ActionTypeEnum::Forward)
                .target_group_arn(tg)
                .build())
        }
        Some(other) => Err(bad(&format!(
            "unknown action type {other:?} (redirect or forward)"
        ))),
        None => Err(bad("missing type (redirect or forward)")),
    }
}

fn certificates(r: &Reader<'_>) -> Option<Vec<Certificate>> {
    r.opt_str("certificate_arn")
        .map(|a| vec![Certificate::builder().certificate_arn(a).build()])
}

async fn modify_listener(c: &Clients, r: &Reader<'_>, arn: &str) -> Result<(), CloudError> {
    let req = c
        .elbv2
        .modify_listener()
        .listener_arn(arn)
        .port(r.int32("port")?)
        .protocol(ProtocolEnum::from(r.str("protocol")?))
        .set_certificates(certificates(r))
        .set_ssl_policy(r.opt_str("ssl_policy").map(str::to_string))
        .default_actions(sdk_action(r)?);
    sent("elasticloadbalancing:ModifyListener", req.send()).await
}

/// `AWS::ElasticLoadBalancingV2::Listener`: found through the stack's load balancers, tagged
/// like every other kind; only listeners that carry the stack's tags are ever deleted.
pub(crate) struct Listener;

#[async_trait]
impl KindOps for Listener {
    async fn list(&self, cx: &Cx<'_>, q: Query<'_>) -> Result<Vec<Observed>, CloudError> {
        match q {
            Query::Stack => {
                // The declared load balancers' listeners are read as soon as a describe of
                // their names answers (this kind's own, beside the load balancers' list), not
                // after that list has read their tags and attributes; listeners of a load
                // balancer that turns out not to be the stack's (or to be deleting) are dropped
                // at the end. One more request, two rounds fewer.
                let names = queried_names(cx, Query::Stack, Kind::LoadBalancer);
                let early = async {
                    let lbs =
                        by_names(&names, |n| LoadBalancer::describe(cx.c, Some(n), None)).await?;
                    let per_lb = try_join_all(
                        lbs.iter()
                            .filter_map(|lb| lb.load_balancer_arn())
                            .map(|arn| listeners_of(cx.c, arn)),
                    )
                    .await?;
                    listeners_observed(cx, &per_lb.concat()).await
                };
                let (lbs, found) = tokio::try_join!(cx.listed(Kind::LoadBalancer), early)?;
                let ours = crate::fields::live_ids(lbs);
                Ok(found
                    .into_iter()
                    .filter(|l| {
                        l.fields
                            .get("load_balancer_arn")
                            .and_then(Value::as_str)
                            .is_some_and(|arn| ours.contains(&arn))
                    })
                    .collect())
            }
            Query::Logical { fields, .. } => {
                match fields.get("load_balancer_arn").and_then(Value::as_str) {
                    Some(lb) => listeners_observed(cx, &listeners_of(cx.c, lb).await?).await,
                    None => Ok(Vec::new()),
                }
            }
            Query::Physical(arn) => {
                listeners_observed(cx, listener_by_arn(cx.c, arn).await?.as_slice()).await
            }
        }
    }

    async fn create(&self, cx: &Cx<'_>, r: &Reader<'_>) -> Result<Created, CloudError> {
        const OP: &str = "elasticloadbalancing:CreateListener";
        let tags = all_tags(r, cx.scope)?;
        let created = answer(
            OP,
            cx.c.elbv2
                .create_listener()
                .load_balancer_arn(r.str("load_balancer_arn")?)
                .port(r.int32("port")?)
                .protocol(ProtocolEnum::from(r.str("protocol")?))
                .set_certificates(certificates(r))
                .set_ssl_policy(r.opt_str("ssl_policy").map(str::to_string))
                .default_actions(sdk_action(r)?)
                .set_tags(Some(sdk_tags(&tags)))
                .send(),
        )
        .await;
        match created {
            Ok(out) => {
                let l = out
                    .listeners()
                    .first()
                    .ok_or_else(|| CloudError::UnexpectedAnswer {
                        operation: OP.into(),
                        what: "no listener returned".into(),
                    })?;
                Ok(Created::New(listener_observed(
                    r.id.clone().into(),
                    l,
                    tags,
                )))
            }
            // The load balancer already has a listener on this port (a crash between create and
            // the next observe): the generic code adopts it by its identity.
            Err(e) if is_code(&e, "DuplicateListener") => Ok(Created::Exists),
            Err(e) => Err(e),
        }
    }

    async fn update(&self, cx: &Cx<'_>, u: Update<'_>) -> Result<Observed, CloudError> {
        let (current, r, changed) = u.parts();
        let arn = current.physical_id.as_str();
        let in_place = [
            "protocol",
            "certificate_arn",
            "ssl_policy",
            "default_action",
        ];
        if let Some(other) = changed
            .iter()
            .find(|f| !in_place.contains(f) && **f != "tags")
        {
            return Err(in_place_only(r, other, "listener"));
        }
        if changed.iter().any(|f| in_place.contains(f)) {
            modify_listener(cx.c, r, arn).await?;
        }
        // A listener an earlier version created untagged gets the stack's tags here.
        if changed.contains(&"tags") {
            add_tags(cx.c, arn, &all_tags(r, cx.scope)?).await?;
        }
        let l = listener_by_arn(cx.c, arn)
            .await?
            .ok_or_else(|| CloudError::NotFound(format!("listener {arn}")))?;
        let mut o = listeners_observed(cx, std::slice::from_ref(&l))
            .await?
            .pop()
            .ok_or_else(|| CloudError::NotFound(format!("listener {arn}")))?;
        o.id = current.id.clone();
        Ok(o)
    }

    async fn delete(&self, cx: &Cx<'_>, current: &Observed) -> Result<(), CloudError> {
        delete_by!(sent "elasticloadbalancing:DeleteListener":
            cx.c.elbv2.delete_listener().listener_arn(current))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fields::assert_matches_spec;
    use aws_sdk_elasticloadbalancingv2::types::{
        AvailabilityZone, ForwardActionConfig, LoadBalancerState, TargetGroupTuple,
    };
    use moodlestack_model::Fields;

    #[test]
    fn a_provisioning_or_failed_load_balancer_is_not_ready() {
        let lb = |code| {
            SdkLoadBalancer::builder()
                .load_balancer_arn("arn:lb")
                .state(LoadBalancerState::builder().code(code).build())
                .build()
        };
        assert_eq!(
            lb_lifecycle(&lb(LoadBalancerStateEnum::Provisioning)),
            Lifecycle::Creating
        );
        assert_eq!(
            lb_lifecycle(&lb(LoadBalancerStateEnum::Failed)),
            Lifecycle::Failed
        );
        assert_eq!(
            lb_lifecycle(&lb(LoadBalancerStateEnum::ActiveImpaired)),
            Lifecycle::Ready
        );
    }

    #[test]
    fn only_resources_tagged_with_the_stack_are_kept() {
        let scope = Scope {
            stack: "demo".into(),
            region: "eu-west-1".into(),
        };
        let tgs: Vec<SdkTargetGroup> = ["arn:ours", "arn:other", "arn:untagged"]
            .iter()
            .map(|a| SdkTargetGroup::builder().target_group_arn(*a).build())
            .collect();
        let tags = BTreeMap::from([
            (
                "arn:ours".to_string(),
                Tags::from([
                    (moodlestack_model::TAG_STACK.to_string(), "demo".to_string()),
                    (moodlestack_model::TAG_ID.to_string(), "lb.tg".to_string()),
                ]),
            ),
            (
                "arn:other".to_string(),
                Tags::from([
                    (
                        moodlestack_model::TAG_STACK.to_string(),
                        "other".to_string(),
                    ),
                    (moodlestack_model::TAG_ID.to_string(), "lb.tg".to_string()),
                ]),
            ),
        ]);
        let kept = keep_ours(&scope, &tgs, SdkTargetGroup::target_group_arn, tags);
        assert_eq!(kept.len(), 1);
        assert_eq!(
            (kept[0].1.as_str(), kept[0].2.as_str()),
            ("arn:ours", "lb.tg")
        );
    }

    #[test]
    fn a_load_balancer_answer_fills_every_field_and_attr() {
        let lb = SdkLoadBalancer::builder()
            .load_balancer_arn("arn:lb")
            .load_balancer_name("demo-alb")
            .dns_name("demo-alb-1.eu-west-1.elb.amazonaws.com")
            .canonical_hosted_zone_id("Z32O12XQLNTSW2")
            .scheme(LoadBalancerSchemeEnum::InternetFacing)
            .state(
                LoadBalancerState::builder()
                    .code(LoadBalancerStateEnum::Active)
                    .build(),
            )
            .availability_zones(AvailabilityZone::builder().subnet_id("subnet-b").build())
            .availability_zones(AvailabilityZone::builder().subnet_id("subnet-a").build())
            .security_groups("sg-1")
            .build();
        let tags = Tags::from([("moodlestack:id".to_string(), "lb.alb".to_string())]);
        let attributes = attr_fields(
            LB_ATTRIBUTES,
            [
                (Some("idle_timeout.timeout_seconds"), Some("60")),
                (
                    Some("routing.http.drop_invalid_header_fields.enabled"),
                    Some("true"),
                ),
                (Some("deletion_protection.enabled"), Some("false")),
            ]
            .into_iter(),
        );
        let o = lb_observed("lb.alb".into(), &lb, tags, attributes);
        assert_matches_spec(&o, &[]);
        assert_eq!(o.lifecycle, Lifecycle::Ready);
        assert_eq!(
            o.fields["subnet_ids"],
            Value::strs(["subnet-a", "subnet-b"])
        );
        assert_eq!(o.fields["scheme"], Value::str("internet-facing"));
        assert_eq!(o.fields["idle_timeout"], Value::Int(60));
        assert_eq!(o.fields["drop_invalid_header_fields"], Value::Bool(true));
        assert_eq!(
            o.attrs["dns_name"],
            "demo-alb-1.eu-west-1.elb.amazonaws.com"
        );
        assert_eq!(o.attrs["zone_id"], "Z32O12XQLNTSW2");
        assert_eq!(
            (o.attrs["id"].as_str(), o.status.as_str()),
            ("arn:lb", "active")
        );
    }

    #[test]
    fn a_target_group_answer_fills_every_field() {
        let tg = SdkTargetGroup::builder()
            .target_group_arn("arn:tg")
            .target_group_name("demo-web")
            .vpc_id("vpc-1")
            .protocol(ProtocolEnum::Http)
            .port(80)
            .target_type(TargetTypeEnum::Instance)
            .health_check_path("/login/index.php")
            .health_check_interval_seconds(30)
            .healthy_threshold_count(2)
            .unhealthy_threshold_count(3)
            .matcher(Matcher::builder().http_code("200-399").build())
            .build();
        let attributes = attr_fields(
            TG_ATTRIBUTES,
            [(Some("deregistration_delay.timeout_seconds"), Some("30"))].into_iter(),
        );
        let o = tg_observed("lb.tg".into(), &tg, Tags::new(), attributes);
        assert_matches_spec(&o, &[]);
        assert_eq!(o.lifecycle, Lifecycle::Ready);
        assert_eq!(o.fields["protocol"], Value::str("HTTP"));
        assert_eq!(o.fields["target_type"], Value::str("instance"));
        assert_eq!(o.fields["deregistration_delay"], Value::Int(30));
    }

    #[test]
    fn an_https_listener_answer_fills_every_field_and_reads_forward_configs() {
        // AWS reports a forward action with a ForwardConfig (and sometimes no TargetGroupArn).
        let l = SdkListener::builder()
            .listener_arn("arn:listener")
            .load_balancer_arn("arn:lb")
            .port(443)
            .protocol(ProtocolEnum::Https)
            .certificates(Certificate::builder().certificate_arn("arn:cert").build())
            .ssl_policy("ELBSecurityPolicy-TLS13-1-2-2021-06")
            .default_actions(
                Action::builder()
                    .r#type(ActionTypeEnum::Forward)
                    .forward_config(
                        ForwardActionConfig::builder()
                            .target_groups(
                                TargetGroupTuple::builder()
                                    .target_group_arn("arn:tg")
                                    .build(),
                            )
                            .build(),
                    )
                    .build(),
            )
            .build();
        let id = moodlestack_model::ObservedId::Untagged("arn:listener".into());
        let o = listener_observed(id.clone(), &l, Tags::new());
        assert_eq!(o.id, id);
        assert_matches_spec(&o, &[]);
        assert_eq!(o.lifecycle, Lifecycle::Ready);
        assert_eq!(
            o.fields["default_action"],
            Value::Map(BTreeMap::from([
                ("target_group_arn".to_string(), Value::str("arn:tg")),
                ("type".to_string(), Value::str("forward")),
            ]))
        );
    }

    fn reader_of(fields: &Fields) -> Reader<'_> {
        static ID: std::sync::OnceLock<ResourceId> = std::sync::OnceLock::new();
        Reader::new(
            Kind::Listener,
            ID.get_or_init(|| "lb.listener.http".into()),
            fields,
        )
    }

    #[test]
    fn redirect_action_round_trips_through_the_field_shape() {
        let action = Value::Map(BTreeMap::from([
            ("type".to_string(), Value::str("redirect")),
            ("protocol".to_string(), Value::str("HTTPS")),
            ("port".to_string(), Value::str("443")),
            ("status_code".to_string(), Value::str("HTTP_301")),
        ]));
        let fields = Fields::from([("default_action".to_string(), action.clone())]);
        let sdk = sdk_action(&reader_of(&fields)).unwrap();
        assert_eq!(action_value(&sdk), action);
    }

    #[test]
    fn forward_action_round_trips_and_an_integer_port_is_accepted() {
        let action = Value::Map(BTreeMap::from([
            ("type".to_string(), Value::str("forward")),
            ("target_group_arn".to_string(), Value::str("arn:tg")),
        ]));
        let fields = Fields::from([("default_action".to_string(), action.clone())]);
        assert_eq!(
            action_value(&sdk_action(&reader_of(&fields)).unwrap()),
            action
        );

        let int_port = Value::Map(BTreeMap::from([
            ("type".to_string(), Value::str("redirect")),
            ("port".to_string(), Value::Int(443)),
        ]));
        let fields = Fields::from([("default_action".to_string(), int_port)]);
        let sdk = sdk_action(&reader_of(&fields)).unwrap();
        assert_eq!(sdk.redirect_config().unwrap().port(), Some("443"));
    }

    #[test]
    fn unknown_action_types_name_the_field() {
        let fields = Fields::from([(
            "default_action".to_string(),
            Value::Map(BTreeMap::from([(
                "type".to_string(),
                Value::str("fixed-response"),
            )])),
        )]);
        let err = sdk_action(&reader_of(&fields)).unwrap_err().to_string();
        assert!(
            err.contains("default_action") && err.contains("fixed-response"),
            "{err}"
        );
    }
}
