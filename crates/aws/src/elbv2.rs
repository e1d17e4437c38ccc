//! Elastic Load Balancing v2: the [`Kind::LoadBalancer`], [`Kind::TargetGroup`] and
//! [`Kind::Listener`] kinds.
//!
//! ELBv2 describes cannot filter by tag: load balancers and target groups are described by the
//! deterministic names of the desired resources (one call per kind with all names), their tags
//! read with ONE DescribeTags call for all candidates (20 ARNs per call), and only those tagged
//! with the stack are kept. Listeners are untaggable in moodlestack's model: the listeners of the
//! stack's load balancers are returned as `untagged:<listener arn>` with their identity fields
//! (`load_balancer_arn`, `port`) filled in.

use crate::fields::{
    api_err, desired_names, is_code, is_not_found, not_found_is_none, owned_id, sorted_strs,
    tags_value, Reader,
};
use crate::Clients;
use aws_sdk_elasticloadbalancingv2::types::{
    Action, ActionTypeEnum, Certificate, Listener, LoadBalancer, LoadBalancerAttribute,
    LoadBalancerSchemeEnum, LoadBalancerStateEnum, LoadBalancerTypeEnum, Matcher, ProtocolEnum,
    RedirectActionConfig, RedirectActionStatusCodeEnum, Tag, TargetGroup, TargetGroupAttribute,
    TargetTypeEnum,
};
use futures::future::try_join_all;
use moodlestack_model::{
    identity_tags, CloudError, DeleteOptions, Fields, Kind, Observed, Readiness, Resource,
    ResourceId, Scope, Value, Want, TAG_ID, TAG_STACK,
};
use std::collections::BTreeMap;

const IDLE_TIMEOUT: &str = "idle_timeout.timeout_seconds";
const DEREGISTRATION_DELAY: &str = "deregistration_delay.timeout_seconds";
/// DescribeTags takes at most 20 ARNs per call.
const TAGS_PER_CALL: usize = 20;

type Tags = BTreeMap<String, String>;

fn field_err(kind: Kind, id: &ResourceId, field: &str, problem: &str) -> CloudError {
    CloudError::Field {
        kind,
        id: id.clone(),
        field: field.to_string(),
        problem: problem.to_string(),
    }
}

fn sdk_tags(tags: &Tags) -> Vec<Tag> {
    tags.iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect()
}

fn all_tags(r: &Reader<'_>, scope: &Scope) -> Result<Tags, CloudError> {
    let mut tags = r.tags()?;
    tags.extend(identity_tags(scope, &r.id));
    Ok(tags)
}

/// Tags of every ARN, with ONE DescribeTags call per 20 ARNs.
async fn describe_tags(c: &Clients, arns: &[String]) -> Result<BTreeMap<String, Tags>, CloudError> {
    let mut out = BTreeMap::new();
    for chunk in arns.chunks(TAGS_PER_CALL) {
        let resp = c
            .elbv2
            .describe_tags()
            .set_resource_arns(Some(chunk.to_vec()))
            .send()
            .await
            .map_err(|e| api_err("elasticloadbalancing:DescribeTags", e))?;
        for d in resp.tag_descriptions() {
            let tags = d
                .tags()
                .iter()
                .filter_map(|t| {
                    Some((
                        t.key()?.to_string(),
                        t.value().unwrap_or_default().to_string(),
                    ))
                })
                .collect();
            out.insert(d.resource_arn().unwrap_or_default().to_string(), tags);
        }
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// Describes

/// Load balancers by name. DescribeLoadBalancers fails for the whole call when one name does not
/// exist, so a failing multi-name call is retried name by name.
async fn lbs_by_names(c: &Clients, names: &[String]) -> Result<Vec<LoadBalancer>, CloudError> {
    if names.is_empty() {
        return Ok(Vec::new());
    }
    match lbs_call(c, Some(names.to_vec()), None).await {
        Err(e) if is_not_found(&e) && names.len() > 1 => {
            let each = try_join_all(names.iter().map(|n| async move {
                not_found_is_none(lbs_call(c, Some(vec![n.clone()]), None).await)
            }))
            .await?;
            Ok(each.into_iter().flatten().flatten().collect())
        }
        other => Ok(not_found_is_none(other)?.unwrap_or_default()),
    }
}

async fn lbs_call(
    c: &Clients,
    names: Option<Vec<String>>,
    arns: Option<Vec<String>>,
) -> Result<Vec<LoadBalancer>, CloudError> {
    let mut out = Vec::new();
    let mut pages = c
        .elbv2
        .describe_load_balancers()
        .set_names(names)
        .set_load_balancer_arns(arns)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| api_err("elasticloadbalancing:DescribeLoadBalancers", e))?;
        out.extend(page.load_balancers().iter().cloned());
    }
    Ok(out)
}

async fn tgs_by_names(c: &Clients, names: &[String]) -> Result<Vec<TargetGroup>, CloudError> {
    if names.is_empty() {
        return Ok(Vec::new());
    }
    match tgs_call(c, Some(names.to_vec()), None).await {
        Err(e) if is_not_found(&e) && names.len() > 1 => {
            let each = try_join_all(names.iter().map(|n| async move {
                not_found_is_none(tgs_call(c, Some(vec![n.clone()]), None).await)
            }))
            .await?;
            Ok(each.into_iter().flatten().flatten().collect())
        }
        other => Ok(not_found_is_none(other)?.unwrap_or_default()),
    }
}

async fn tgs_call(
    c: &Clients,
    names: Option<Vec<String>>,
    arns: Option<Vec<String>>,
) -> Result<Vec<TargetGroup>, CloudError> {
    let mut out = Vec::new();
    let mut pages = c
        .elbv2
        .describe_target_groups()
        .set_names(names)
        .set_target_group_arns(arns)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| api_err("elasticloadbalancing:DescribeTargetGroups", e))?;
        out.extend(page.target_groups().iter().cloned());
    }
    Ok(out)
}

async fn listeners_of(c: &Clients, lb_arn: &str) -> Result<Vec<Listener>, CloudError> {
    let mut out = Vec::new();
    let mut pages = c
        .elbv2
        .describe_listeners()
        .load_balancer_arn(lb_arn)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| api_err("elasticloadbalancing:DescribeListeners", e))?;
        out.extend(page.listeners().iter().cloned());
    }
    Ok(out)
}

async fn listener_by_arn(c: &Clients, arn: &str) -> Result<Option<Listener>, CloudError> {
    let resp = not_found_is_none(
        c.elbv2
            .describe_listeners()
            .listener_arns(arn)
            .send()
            .await
            .map_err(|e| api_err("elasticloadbalancing:DescribeListeners", e)),
    )?;
    Ok(resp.and_then(|r| r.listeners().first().cloned()))
}

/// An integer attribute of a load balancer or target group.
fn int_attr<'a>(
    mut kv: impl Iterator<Item = (Option<&'a str>, Option<&'a str>)>,
    key: &str,
) -> Option<i64> {
    kv.find(|(k, _)| *k == Some(key))
        .and_then(|(_, v)| v?.parse().ok())
}

async fn lb_idle_timeout(c: &Clients, arn: &str) -> Result<Option<i64>, CloudError> {
    let resp = c
        .elbv2
        .describe_load_balancer_attributes()
        .load_balancer_arn(arn)
        .send()
        .await
        .map_err(|e| api_err("elasticloadbalancing:DescribeLoadBalancerAttributes", e))?;
    Ok(int_attr(
        resp.attributes().iter().map(|a| (a.key(), a.value())),
        IDLE_TIMEOUT,
    ))
}

async fn tg_deregistration_delay(c: &Clients, arn: &str) -> Result<Option<i64>, CloudError> {
    let resp = c
        .elbv2
        .describe_target_group_attributes()
        .target_group_arn(arn)
        .send()
        .await
        .map_err(|e| api_err("elasticloadbalancing:DescribeTargetGroupAttributes", e))?;
    Ok(int_attr(
        resp.attributes().iter().map(|a| (a.key(), a.value())),
        DEREGISTRATION_DELAY,
    ))
}

// ---------------------------------------------------------------------------------------------
// Observations

fn lb_status(lb: &LoadBalancer) -> String {
    lb.state()
        .and_then(|s| s.code())
        .map(|c| c.as_str().to_string())
        .unwrap_or_else(|| "unknown".into())
}

fn lb_observed(id: ResourceId, lb: &LoadBalancer, tags: Tags, idle: Option<i64>) -> Observed {
    let arn = lb.load_balancer_arn().unwrap_or_default().to_string();
    let mut fields = Fields::new();
    fields.insert(
        "name".into(),
        Value::str(lb.load_balancer_name().unwrap_or_default()),
    );
    if let Some(s) = lb.scheme() {
        fields.insert("scheme".into(), Value::str(s.as_str()));
    }
    fields.insert(
        "subnet_ids".into(),
        sorted_strs(lb.availability_zones().iter().filter_map(|z| z.subnet_id())),
    );
    fields.insert(
        "security_group_ids".into(),
        sorted_strs(lb.security_groups().iter().cloned()),
    );
    if let Some(i) = idle {
        fields.insert("idle_timeout".into(), Value::Int(i));
    }
    fields.insert("tags".into(), tags_value(tags));
    let mut attrs = BTreeMap::from([
        ("id".to_string(), arn.clone()),
        ("arn".to_string(), arn.clone()),
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
        lifecycle: moodlestack_model::Lifecycle::Ready,
    }
}

fn tg_observed(id: ResourceId, tg: &TargetGroup, tags: Tags, delay: Option<i64>) -> Observed {
    let arn = tg.target_group_arn().unwrap_or_default().to_string();
    let mut fields = Fields::new();
    fields.insert(
        "name".into(),
        Value::str(tg.target_group_name().unwrap_or_default()),
    );
    if let Some(v) = tg.vpc_id() {
        fields.insert("vpc_id".into(), Value::str(v));
    }
    if let Some(p) = tg.protocol() {
        fields.insert("protocol".into(), Value::str(p.as_str()));
    }
    if let Some(p) = tg.port() {
        fields.insert("port".into(), Value::Int(p.into()));
    }
    if let Some(t) = tg.target_type() {
        fields.insert("target_type".into(), Value::str(t.as_str()));
    }
    if let Some(p) = tg.health_check_path() {
        fields.insert("health_check_path".into(), Value::str(p));
    }
    if let Some(i) = tg.health_check_interval_seconds() {
        fields.insert("health_check_interval".into(), Value::Int(i.into()));
    }
    if let Some(i) = tg.healthy_threshold_count() {
        fields.insert("healthy_threshold".into(), Value::Int(i.into()));
    }
    if let Some(i) = tg.unhealthy_threshold_count() {
        fields.insert("unhealthy_threshold".into(), Value::Int(i.into()));
    }
    if let Some(m) = tg.matcher().and_then(|m| m.http_code()) {
        fields.insert("health_check_matcher".into(), Value::str(m));
    }
    if let Some(d) = delay {
        fields.insert("deregistration_delay".into(), Value::Int(d));
    }
    fields.insert("tags".into(), tags_value(tags));
    Observed {
        id: id.into(),
        kind: Kind::TargetGroup,
        physical_id: arn.clone(),
        fields,
        attrs: BTreeMap::from([("id".to_string(), arn.clone()), ("arn".to_string(), arn)]),
        status: "available".into(),
        lifecycle: moodlestack_model::Lifecycle::Ready,
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

fn listener_observed(id: moodlestack_model::ObservedId, l: &Listener) -> Observed {
    let arn = l.listener_arn().unwrap_or_default().to_string();
    let mut fields = Fields::new();
    if let Some(lb) = l.load_balancer_arn() {
        fields.insert("load_balancer_arn".into(), Value::str(lb));
    }
    if let Some(p) = l.port() {
        fields.insert("port".into(), Value::Int(p.into()));
    }
    if let Some(p) = l.protocol() {
        fields.insert("protocol".into(), Value::str(p.as_str()));
    }
    if let Some(cert) = l.certificates().iter().find_map(|c| c.certificate_arn()) {
        fields.insert("certificate_arn".into(), Value::str(cert));
    }
    if let Some(p) = l.ssl_policy() {
        fields.insert("ssl_policy".into(), Value::str(p));
    }
    let mut actions: Vec<&Action> = l.default_actions().iter().collect();
    actions.sort_by_key(|a| a.order().unwrap_or(i32::MAX));
    if let Some(a) = actions.first() {
        fields.insert("default_action".into(), action_value(a));
    }
    Observed {
        id: id.into(),
        kind: Kind::Listener,
        physical_id: arn.clone(),
        fields,
        attrs: BTreeMap::from([("id".to_string(), arn.clone()), ("arn".to_string(), arn)]),
        status: "active".into(),
        lifecycle: moodlestack_model::Lifecycle::Ready,
    }
}

fn untagged(l: &Listener) -> moodlestack_model::ObservedId {
    moodlestack_model::ObservedId::Untagged(l.listener_arn().unwrap_or_default().to_string())
}

/// Full observations (tags with ONE DescribeTags for all, then attributes) of the load balancers
/// and target groups that carry the stack's tags.
async fn observe_found(
    c: &Clients,
    scope: &Scope,
    lbs: &[LoadBalancer],
    tgs: &[TargetGroup],
) -> Result<(Vec<Observed>, Vec<Observed>), CloudError> {
    let arns: Vec<String> = lbs
        .iter()
        .filter_map(|l| l.load_balancer_arn())
        .chain(tgs.iter().filter_map(|t| t.target_group_arn()))
        .map(str::to_string)
        .collect();
    if arns.is_empty() {
        return Ok((Vec::new(), Vec::new()));
    }
    let tags = describe_tags(c, &arns).await?;
    let lb_obs = try_join_all(lbs.iter().filter_map(|lb| {
        let arn = lb.load_balancer_arn()?;
        let t = tags.get(arn)?.clone();
        let id = owned_id(scope, &t)?;
        Some(async move {
            let idle = lb_idle_timeout(c, arn).await?;
            Ok::<_, CloudError>(lb_observed(id, lb, t, idle))
        })
    }))
    .await?;
    let tg_obs = try_join_all(tgs.iter().filter_map(|tg| {
        let arn = tg.target_group_arn()?;
        let t = tags.get(arn)?.clone();
        let id = owned_id(scope, &t)?;
        Some(async move {
            let delay = tg_deregistration_delay(c, arn).await?;
            Ok::<_, CloudError>(tg_observed(id, tg, t, delay))
        })
    }))
    .await?;
    Ok((lb_obs, tg_obs))
}

pub async fn observe(
    c: &Clients,
    scope: &Scope,
    desired: &[Resource],
) -> Result<Vec<Observed>, CloudError> {
    let lb_names = desired_names(desired, Kind::LoadBalancer, "name");
    let tg_names = desired_names(desired, Kind::TargetGroup, "name");
    let (lbs, tgs) = tokio::try_join!(lbs_by_names(c, &lb_names), tgs_by_names(c, &tg_names))?;
    let (lb_obs, tg_obs) = observe_found(c, scope, &lbs, &tgs).await?;
    let listeners = try_join_all(lb_obs.iter().map(|lb| listeners_of(c, &lb.physical_id))).await?;
    let listener_obs = listeners
        .iter()
        .flatten()
        .map(|l| listener_observed(untagged(l), l));
    Ok(lb_obs
        .into_iter()
        .chain(tg_obs)
        .chain(listener_obs)
        .collect())
}

// ---------------------------------------------------------------------------------------------
// Load balancers

async fn set_lb_idle_timeout(c: &Clients, arn: &str, seconds: i64) -> Result<(), CloudError> {
    c.elbv2
        .modify_load_balancer_attributes()
        .load_balancer_arn(arn)
        .attributes(
            LoadBalancerAttribute::builder()
                .key(IDLE_TIMEOUT)
                .value(seconds.to_string())
                .build(),
        )
        .send()
        .await
        .map_err(|e| api_err("elasticloadbalancing:ModifyLoadBalancerAttributes", e))?;
    Ok(())
}

/// Checks that an existing resource (found under our deterministic name) carries our tags.
async fn check_ours(
    c: &Clients,
    scope: &Scope,
    id: &ResourceId,
    arn: &str,
    what: &str,
    name: &str,
) -> Result<Tags, CloudError> {
    let tags = describe_tags(c, &[arn.to_string()])
        .await?
        .remove(arn)
        .unwrap_or_default();
    if owned_id(scope, &tags).as_ref() != Some(id) {
        return Err(CloudError::Other(format!(
            "elasticloadbalancing: a {what} named {name} already exists and is not tagged \
             {TAG_STACK}={} {TAG_ID}={id}; it was not created by this stack: rename the stack or \
             remove that {what}",
            scope.stack
        )));
    }
    Ok(tags)
}

async fn create_lb(
    c: &Clients,
    scope: &Scope,
    id: &ResourceId,
    fields: &Fields,
) -> Result<Observed, CloudError> {
    let r = Reader::new(Kind::LoadBalancer, id, fields);
    let name = r.str("name")?;
    let tags = all_tags(&r, scope)?;
    // Look first: a load balancer under our deterministic name (a crash between create and the
    // next observe) is adopted if it carries our tags, refused otherwise; never duplicated.
    let existing = lbs_by_names(c, &[name.to_string()])
        .await?
        .into_iter()
        .next();
    let created = match existing {
        Some(lb) => Ok(lb),
        None => create_lb_call(c, &r, name, &tags).await,
    };
    let lb = match created {
        Ok(lb) => Some(lb),
        Err(e) if is_code(&e, "DuplicateLoadBalancerName") => lbs_by_names(c, &[name.to_string()])
            .await?
            .into_iter()
            .next(),
        Err(e) => return Err(e),
    };
    let lb = lb.ok_or_else(|| {
        CloudError::Other(format!(
            "elasticloadbalancing:CreateLoadBalancer: {name} was not returned"
        ))
    })?;
    let arn = lb.load_balancer_arn().unwrap_or_default();
    let found_tags = check_ours(c, scope, id, arn, "load balancer", name).await?;
    let idle = r.opt_int("idle_timeout");
    if let Some(i) = idle {
        set_lb_idle_timeout(c, arn, i).await?;
    }
    Ok(lb_observed(id.clone(), &lb, found_tags, idle))
}

async fn create_lb_call(
    c: &Clients,
    r: &Reader<'_>,
    name: &str,
    tags: &Tags,
) -> Result<LoadBalancer, CloudError> {
    let out = c
        .elbv2
        .create_load_balancer()
        .name(name)
        .r#type(LoadBalancerTypeEnum::Application)
        .scheme(LoadBalancerSchemeEnum::from(
            r.opt_str("scheme").unwrap_or("internet-facing"),
        ))
        .set_subnets(Some(r.strs("subnet_ids")?))
        .set_security_groups(Some(r.strs("security_group_ids")?))
        .set_tags(Some(sdk_tags(tags)))
        .send()
        .await
        .map_err(|e| api_err("elasticloadbalancing:CreateLoadBalancer", e))?;
    // AWS answers a create racing with an identical one with the existing load balancer, and a
    // different one with DuplicateLoadBalancerName: either way its tags are checked.
    out.load_balancers().first().cloned().ok_or_else(|| {
        CloudError::Other(format!(
            "elasticloadbalancing:CreateLoadBalancer: {name} was not returned"
        ))
    })
}

async fn update_lb(
    c: &Clients,
    scope: &Scope,
    current: &Observed,
    fields: &Fields,
    changed: &[String],
) -> Result<Observed, CloudError> {
    let r = Reader::new(current.kind, &current.id, fields);
    let arn = current.physical_id.as_str();
    for field in changed {
        match field.as_str() {
            "subnet_ids" => {
                c.elbv2
                    .set_subnets()
                    .load_balancer_arn(arn)
                    .set_subnets(Some(r.strs("subnet_ids")?))
                    .send()
                    .await
                    .map_err(|e| api_err("elasticloadbalancing:SetSubnets", e))?;
            }
            "security_group_ids" => {
                c.elbv2
                    .set_security_groups()
                    .load_balancer_arn(arn)
                    .set_security_groups(Some(r.strs("security_group_ids")?))
                    .send()
                    .await
                    .map_err(|e| api_err("elasticloadbalancing:SetSecurityGroups", e))?;
            }
            "idle_timeout" => set_lb_idle_timeout(c, arn, r.int("idle_timeout")?).await?,
            "tags" => add_tags(c, arn, &all_tags(&r, scope)?).await?,
            other => {
                return Err(field_err(
                    current.kind,
                    &current.id.to_resource_id(),
                    other,
                    "cannot be changed in place (the load balancer must be replaced)",
                ))
            }
        }
    }
    let lbs = lbs_call(c, None, Some(vec![arn.to_string()])).await?;
    let (mut obs, _) = observe_found(c, scope, &lbs, &[]).await?;
    obs.pop()
        .ok_or_else(|| CloudError::NotFound(format!("load balancer {arn}")))
}

async fn add_tags(c: &Clients, arn: &str, tags: &Tags) -> Result<(), CloudError> {
    c.elbv2
        .add_tags()
        .resource_arns(arn)
        .set_tags(Some(sdk_tags(tags)))
        .send()
        .await
        .map_err(|e| api_err("elasticloadbalancing:AddTags", e))?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Target groups

async fn set_tg_deregistration_delay(
    c: &Clients,
    arn: &str,
    seconds: i64,
) -> Result<(), CloudError> {
    c.elbv2
        .modify_target_group_attributes()
        .target_group_arn(arn)
        .attributes(
            TargetGroupAttribute::builder()
                .key(DEREGISTRATION_DELAY)
                .value(seconds.to_string())
                .build(),
        )
        .send()
        .await
        .map_err(|e| api_err("elasticloadbalancing:ModifyTargetGroupAttributes", e))?;
    Ok(())
}

fn opt_i32(r: &Reader<'_>, field: &str) -> Result<Option<i32>, CloudError> {
    if r.has(field) {
        r.int32(field).map(Some)
    } else {
        Ok(None)
    }
}

async fn create_tg(
    c: &Clients,
    scope: &Scope,
    id: &ResourceId,
    fields: &Fields,
) -> Result<Observed, CloudError> {
    let r = Reader::new(Kind::TargetGroup, id, fields);
    let name = r.str("name")?;
    let tags = all_tags(&r, scope)?;
    // Look first, as for load balancers: adopt ours, refuse others', never duplicate.
    let existing = tgs_by_names(c, &[name.to_string()])
        .await?
        .into_iter()
        .next();
    let created = match existing {
        Some(tg) => Ok(tg),
        None => create_tg_call(c, &r, name, &tags).await,
    };
    let tg = match created {
        Ok(tg) => Some(tg),
        Err(e) if is_code(&e, "DuplicateTargetGroupName") => tgs_by_names(c, &[name.to_string()])
            .await?
            .into_iter()
            .next(),
        Err(e) => return Err(e),
    };
    let tg = tg.ok_or_else(|| {
        CloudError::Other(format!(
            "elasticloadbalancing:CreateTargetGroup: {name} was not returned"
        ))
    })?;
    let arn = tg.target_group_arn().unwrap_or_default();
    let found_tags = check_ours(c, scope, id, arn, "target group", name).await?;
    let delay = r.opt_int("deregistration_delay");
    if let Some(d) = delay {
        set_tg_deregistration_delay(c, arn, d).await?;
    }
    Ok(tg_observed(id.clone(), &tg, found_tags, delay))
}

async fn create_tg_call(
    c: &Clients,
    r: &Reader<'_>,
    name: &str,
    tags: &Tags,
) -> Result<TargetGroup, CloudError> {
    let out = c
        .elbv2
        .create_target_group()
        .name(name)
        .protocol(ProtocolEnum::from(r.opt_str("protocol").unwrap_or("HTTP")))
        .port(r.int32("port")?)
        .vpc_id(r.str("vpc_id")?)
        .target_type(TargetTypeEnum::from(
            r.opt_str("target_type").unwrap_or("instance"),
        ))
        .set_health_check_path(r.opt_str("health_check_path").map(str::to_string))
        .set_health_check_interval_seconds(opt_i32(r, "health_check_interval")?)
        .set_healthy_threshold_count(opt_i32(r, "healthy_threshold")?)
        .set_unhealthy_threshold_count(opt_i32(r, "unhealthy_threshold")?)
        .set_matcher(
            r.opt_str("health_check_matcher")
                .map(|m| Matcher::builder().http_code(m).build()),
        )
        .set_tags(Some(sdk_tags(tags)))
        .send()
        .await
        .map_err(|e| api_err("elasticloadbalancing:CreateTargetGroup", e))?;
    out.target_groups().first().cloned().ok_or_else(|| {
        CloudError::Other(format!(
            "elasticloadbalancing:CreateTargetGroup: {name} was not returned"
        ))
    })
}

const HEALTH_FIELDS: [&str; 5] = [
    "health_check_path",
    "health_check_interval",
    "healthy_threshold",
    "unhealthy_threshold",
    "health_check_matcher",
];

async fn update_tg(
    c: &Clients,
    scope: &Scope,
    current: &Observed,
    fields: &Fields,
    changed: &[String],
) -> Result<Observed, CloudError> {
    let r = Reader::new(current.kind, &current.id, fields);
    let arn = current.physical_id.as_str();
    if changed.iter().any(|f| HEALTH_FIELDS.contains(&f.as_str())) {
        // One ModifyTargetGroup with every health check setting the stack manages.
        c.elbv2
            .modify_target_group()
            .target_group_arn(arn)
            .set_health_check_path(r.opt_str("health_check_path").map(str::to_string))
            .set_health_check_interval_seconds(opt_i32(&r, "health_check_interval")?)
            .set_healthy_threshold_count(opt_i32(&r, "healthy_threshold")?)
            .set_unhealthy_threshold_count(opt_i32(&r, "unhealthy_threshold")?)
            .set_matcher(
                r.opt_str("health_check_matcher")
                    .map(|m| Matcher::builder().http_code(m).build()),
            )
            .send()
            .await
            .map_err(|e| api_err("elasticloadbalancing:ModifyTargetGroup", e))?;
    }
    for field in changed {
        match field.as_str() {
            f if HEALTH_FIELDS.contains(&f) => {}
            "deregistration_delay" => {
                set_tg_deregistration_delay(c, arn, r.int("deregistration_delay")?).await?
            }
            "tags" => add_tags(c, arn, &all_tags(&r, scope)?).await?,
            other => {
                return Err(field_err(
                    current.kind,
                    &current.id.to_resource_id(),
                    other,
                    "cannot be changed in place (the target group must be replaced)",
                ))
            }
        }
    }
    let tgs = tgs_call(c, None, Some(vec![arn.to_string()])).await?;
    let (_, mut obs) = observe_found(c, scope, &[], &tgs).await?;
    obs.pop()
        .ok_or_else(|| CloudError::NotFound(format!("target group {arn}")))
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
    let bad = |problem: &str| field_err(r.kind, &r.id, "default_action", problem);
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

async fn create_listener(
    c: &Clients,
    _scope: &Scope,
    id: &ResourceId,
    fields: &Fields,
) -> Result<Observed, CloudError> {
    let r = Reader::new(Kind::Listener, id, fields);
    let lb_arn = r.str("load_balancer_arn")?;
    let port = r.int32("port")?;
    // Look first: the stack's load balancer may already have a listener on this port (a crash
    // between create and the next observe); it is brought to the desired settings, never
    // duplicated.
    let existing = listeners_of(c, lb_arn).await?;
    if let Some(l) = existing.iter().find(|l| l.port() == Some(port)) {
        return adopt_listener(c, &r, l).await;
    }
    let created = c
        .elbv2
        .create_listener()
        .load_balancer_arn(lb_arn)
        .port(port)
        .protocol(ProtocolEnum::from(r.str("protocol")?))
        .set_certificates(certificates(&r))
        .set_ssl_policy(r.opt_str("ssl_policy").map(str::to_string))
        .default_actions(sdk_action(&r)?)
        .send()
        .await
        .map_err(|e| api_err("elasticloadbalancing:CreateListener", e));
    match created {
        Ok(out) => {
            let l = out.listeners().first().ok_or_else(|| {
                CloudError::Other("elasticloadbalancing:CreateListener returned no listener".into())
            })?;
            Ok(listener_observed(id.clone().into(), l))
        }
        Err(e) if is_code(&e, "DuplicateListener") => {
            let existing = listeners_of(c, lb_arn).await?;
            let l = existing.iter().find(|l| l.port() == Some(port)).ok_or(e)?;
            adopt_listener(c, &r, l).await
        }
        Err(e) => Err(e),
    }
}

async fn adopt_listener(c: &Clients, r: &Reader<'_>, l: &Listener) -> Result<Observed, CloudError> {
    let arn = l.listener_arn().unwrap_or_default();
    modify_listener(c, r, arn).await?;
    let l = listener_by_arn(c, arn)
        .await?
        .ok_or_else(|| CloudError::NotFound(format!("listener {arn}")))?;
    Ok(listener_observed(r.id.clone().into(), &l))
}

async fn modify_listener(c: &Clients, r: &Reader<'_>, arn: &str) -> Result<(), CloudError> {
    c.elbv2
        .modify_listener()
        .listener_arn(arn)
        .port(r.int32("port")?)
        .protocol(ProtocolEnum::from(r.str("protocol")?))
        .set_certificates(certificates(r))
        .set_ssl_policy(r.opt_str("ssl_policy").map(str::to_string))
        .default_actions(sdk_action(r)?)
        .send()
        .await
        .map_err(|e| api_err("elasticloadbalancing:ModifyListener", e))?;
    Ok(())
}

async fn update_listener(
    c: &Clients,
    current: &Observed,
    fields: &Fields,
    changed: &[String],
) -> Result<Observed, CloudError> {
    let r = Reader::new(current.kind, &current.id, fields);
    let arn = current.physical_id.as_str();
    for field in changed {
        if ![
            "protocol",
            "certificate_arn",
            "ssl_policy",
            "default_action",
        ]
        .contains(&field.as_str())
        {
            return Err(field_err(
                current.kind,
                &current.id.to_resource_id(),
                field,
                "cannot be changed in place (the listener must be replaced)",
            ));
        }
    }
    if !changed.is_empty() {
        modify_listener(c, &r, arn).await?;
    }
    let l = listener_by_arn(c, arn)
        .await?
        .ok_or_else(|| CloudError::NotFound(format!("listener {arn}")))?;
    Ok(listener_observed(current.id.clone(), &l))
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
        Kind::LoadBalancer => create_lb(c, scope, id, fields).await,
        Kind::TargetGroup => create_tg(c, scope, id, fields).await,
        Kind::Listener => create_listener(c, scope, id, fields).await,
        other => Err(CloudError::Other(format!(
            "elbv2: kind {other} is not an ELBv2 kind"
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
        Kind::LoadBalancer => update_lb(c, scope, current, fields, changed).await,
        Kind::TargetGroup => update_tg(c, scope, current, fields, changed).await,
        Kind::Listener => update_listener(c, current, fields, changed).await,
        other => Err(CloudError::Other(format!(
            "elbv2: kind {other} is not an ELBv2 kind"
        ))),
    }
}

pub async fn delete(
    c: &Clients,
    _scope: &Scope,
    current: &Observed,
    _options: &DeleteOptions,
) -> Result<(), CloudError> {
    let arn = current.physical_id.as_str();
    let res = match current.kind {
        Kind::LoadBalancer => c
            .elbv2
            .delete_load_balancer()
            .load_balancer_arn(arn)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| api_err("elasticloadbalancing:DeleteLoadBalancer", e)),
        Kind::TargetGroup => c
            .elbv2
            .delete_target_group()
            .target_group_arn(arn)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| api_err("elasticloadbalancing:DeleteTargetGroup", e)),
        Kind::Listener => c
            .elbv2
            .delete_listener()
            .listener_arn(arn)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| api_err("elasticloadbalancing:DeleteListener", e)),
        other => {
            return Err(CloudError::Other(format!(
                "elbv2: kind {other} is not an ELBv2 kind"
            )))
        }
    };
    not_found_is_none(res).map(|_| ())
}

pub async fn poll(
    c: &Clients,
    scope: &Scope,
    current: &Observed,
    want: Want,
) -> Result<Readiness, CloudError> {
    let arn = current.physical_id.as_str();
    match current.kind {
        Kind::LoadBalancer => {
            let lbs = not_found_is_none(lbs_call(c, None, Some(vec![arn.to_string()])).await)?
                .unwrap_or_default();
            let Some(lb) = lbs.first() else {
                return Ok(Readiness::Gone);
            };
            let status = lb_status(lb);
            match (want, lb.state().and_then(|s| s.code())) {
                (Want::Gone, _) => Ok(Readiness::Pending(status)),
                (_, Some(LoadBalancerStateEnum::Failed)) => Ok(Readiness::Failed(status)),
                (
                    _,
                    Some(LoadBalancerStateEnum::Active | LoadBalancerStateEnum::ActiveImpaired),
                ) => {
                    let (mut obs, _) = observe_found(c, scope, &lbs, &[]).await?;
                    match obs.pop() {
                        Some(mut o) => {
                            o.id = current.id.clone();
                            Ok(Readiness::Ready(o))
                        }
                        None => Ok(Readiness::Failed(format!(
                            "load balancer {arn} is not tagged {TAG_STACK}={}",
                            scope.stack
                        ))),
                    }
                }
                _ => Ok(Readiness::Pending(status)),
            }
        }
        Kind::TargetGroup => {
            let tgs = not_found_is_none(tgs_call(c, None, Some(vec![arn.to_string()])).await)?
                .unwrap_or_default();
            if tgs.is_empty() {
                return Ok(Readiness::Gone);
            }
            if want == Want::Gone {
                return Ok(Readiness::Pending("deleting".into()));
            }
            let (_, mut obs) = observe_found(c, scope, &[], &tgs).await?;
            Ok(match obs.pop() {
                Some(mut o) => {
                    o.id = current.id.clone();
                    Readiness::Ready(o)
                }
                None => Readiness::Failed(format!(
                    "target group {arn} is not tagged {TAG_STACK}={}",
                    scope.stack
                )),
            })
        }
        Kind::Listener => match listener_by_arn(c, arn).await? {
            None => Ok(Readiness::Gone),
            Some(_) if want == Want::Gone => Ok(Readiness::Pending("deleting".into())),
            Some(l) => Ok(Readiness::Ready(listener_observed(current.id.clone(), &l))),
        },
        other => Err(CloudError::Other(format!(
            "elbv2: kind {other} is not an ELBv2 kind"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_elasticloadbalancingv2::types::{
        AvailabilityZone, ForwardActionConfig, LoadBalancerState, TargetGroupTuple,
    };

    fn field_names(o: &Observed) -> Vec<&str> {
        o.fields.keys().map(String::as_str).collect()
    }

    fn spec_names(kind: Kind) -> Vec<&'static str> {
        let mut v: Vec<&str> = moodlestack_model::spec(kind)
            .fields
            .iter()
            .map(|f| f.name)
            .collect();
        v.sort();
        v
    }

    #[test]
    fn a_load_balancer_answer_fills_every_field_and_attr() {
        let lb = LoadBalancer::builder()
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
        let o = lb_observed("lb.alb".into(), &lb, tags, Some(60));
        assert_eq!(field_names(&o), spec_names(Kind::LoadBalancer));
        assert_eq!(
            o.fields["subnet_ids"],
            Value::strs(["subnet-a", "subnet-b"])
        );
        assert_eq!(o.fields["scheme"], Value::str("internet-facing"));
        assert_eq!(o.fields["idle_timeout"], Value::Int(60));
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
        let tg = TargetGroup::builder()
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
        let o = tg_observed("lb.tg".into(), &tg, Tags::new(), Some(30));
        assert_eq!(field_names(&o), spec_names(Kind::TargetGroup));
        assert_eq!(o.fields["protocol"], Value::str("HTTP"));
        assert_eq!(o.fields["target_type"], Value::str("instance"));
        assert_eq!(o.fields["deregistration_delay"], Value::Int(30));
    }

    #[test]
    fn an_https_listener_answer_fills_every_field_and_reads_forward_configs() {
        // AWS reports a forward action with a ForwardConfig (and sometimes no TargetGroupArn).
        let l = Listener::builder()
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
        let o = listener_observed(untagged(&l), &l);
        assert_eq!(
            o.id,
            moodlestack_model::ObservedId::Untagged("arn:listener".into())
        );
        assert_eq!(field_names(&o), spec_names(Kind::Listener));
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
