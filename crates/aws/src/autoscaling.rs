//! Auto Scaling: the [`Kind::AutoScalingGroup`] kind (the web fleet).
//!
//! The group always runs a MixedInstancesPolicy (launch template id + version, one override per
//! instance type, the on-demand/spot distribution). It is found with ONE paginated
//! DescribeAutoScalingGroups filtered by the `moodlestack:stack` tag.
//!
//! Updates send the WHOLE MixedInstancesPolicy whenever any part of it changed (valid on AWS, and
//! moto answers HTTP 500 for an update carrying only the InstancesDistribution). The desired
//! capacity is sent on creation only: autoscaling owns it afterwards. A new launch template version
//! starts an instance refresh (new instances first: minimum healthy 100 %, maximum 200 %); if a refresh is already running the update
//! stops before changing anything and says so.

use crate::fields::{
    all_pages, answer, api_err, desired_names, int, owned_id, reported, sent, sorted_strs, tag_map,
    tags_value, Reader,
};
use crate::{lifecycle_readiness, Clients, Created, Cx, KindOps, Query, Update};
use async_trait::async_trait;
use aws_sdk_autoscaling::types::{
    AutoScalingGroup, Filter, InstancesDistribution, LaunchTemplate, LaunchTemplateOverrides,
    LaunchTemplateSpecification, MixedInstancesPolicy, RefreshPreferences, StandbyInstances, Tag,
};
use futures::future::try_join_all;
use moodlestack_model::{
    identity_tags, CloudError, Fields, Kind, Lifecycle, Observed, Readiness, Scope, Value, Want,
    TAG_ID, TAG_STACK,
};
use std::collections::{BTreeMap, BTreeSet};

/// Minimum and maximum healthy percentage of the instance refresh a rollout starts: new
/// instances are launched (and healthy behind the load balancer) before old ones stop, so a
/// two-node fleet never drops to one (with a minimum of 90 % and no maximum, AWS rounds the
/// batch up and stops one of two nodes first).
pub const REFRESH_MIN_HEALTHY_PERCENTAGE: i32 = 100;
/// See [`REFRESH_MIN_HEALTHY_PERCENTAGE`].
pub const REFRESH_MAX_HEALTHY_PERCENTAGE: i32 = 200;

/// The status AWS reports while a group is being deleted.
const DELETING: &str = "Delete in progress";

/// How the status of a polled group that is rolling out a new launch template version begins:
/// it is not ready until the instance refresh ends.
const REFRESHING: &str = "instance refresh";

/// Fields sent inside the MixedInstancesPolicy: a change to any of them sends the whole policy.
const POLICY_FIELDS: [&str; 6] = [
    "launch_template_id",
    "launch_template_version",
    "instance_types",
    "on_demand_base_capacity",
    "on_demand_percentage_above_base",
    "spot_allocation_strategy",
];

type Tags = BTreeMap<String, String>;

pub(crate) fn group_tags(g: &AutoScalingGroup) -> Tags {
    tag_map(g.tags())
}

fn sdk_tags(name: &str, tags: &Tags) -> Vec<Tag> {
    tags.iter()
        .map(|(k, v)| {
            Tag::builder()
                .resource_id(name)
                .resource_type("auto-scaling-group")
                .key(k)
                .value(v)
                // The instances are the group's, not the resource `moodlestack:id` names: they
                // get every tag but that one.
                .propagate_at_launch(k != TAG_ID)
                .build()
        })
        .collect()
}

fn api_code(e: &CloudError) -> Option<(&str, &str)> {
    match e {
        CloudError::Api { code, message, .. } => Some((code, message)),
        _ => None,
    }
}

/// Auto Scaling reports a missing group as a ValidationError "... not found".
pub(crate) fn group_missing(e: &CloudError) -> bool {
    matches!(api_code(e), Some((code, msg)) if code.contains("NotFound")
        || (code == "ValidationError" && msg.to_ascii_lowercase().contains("not found")))
}

/// Turns on the group metrics `r` lists (each minute; none: nothing to send).
async fn enable_metrics(c: &Clients, name: &str, r: &Reader<'_>) -> Result<(), CloudError> {
    let metrics = r.strs_or_empty("enabled_metrics")?;
    if metrics.is_empty() {
        return Ok(());
    }
    let req = c
        .autoscaling
        .enable_metrics_collection()
        .auto_scaling_group_name(name)
        .granularity("1Minute")
        .set_metrics(Some(metrics));
    sent("autoscaling:EnableMetricsCollection", req.send()).await
}

/// The observation of one group (None when it is not the stack's).
fn observed(scope: &Scope, g: &AutoScalingGroup) -> Option<Observed> {
    let tags = group_tags(g);
    let id = owned_id(scope, &tags)?;
    let name = g.auto_scaling_group_name().unwrap_or_default().to_string();
    let policy = g.mixed_instances_policy();
    let spec = policy
        .and_then(|p| p.launch_template())
        .and_then(|lt| lt.launch_template_specification())
        .or(g.launch_template());
    let types = policy.map(|p| {
        let types: Vec<&str> = p
            .launch_template()
            .map(|lt| {
                lt.overrides()
                    .iter()
                    .filter_map(|o| o.instance_type())
                    .collect()
            })
            .unwrap_or_default();
        Value::strs(types)
    });
    let dist = policy.and_then(|p| p.instances_distribution());
    let subnets: Vec<String> = g
        .vpc_zone_identifier()
        .map(|v| {
            v.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    let fields = reported([
        ("name", Some(Value::str(&name))),
        (
            "launch_template_id",
            spec.and_then(|s| s.launch_template_id()).map(Value::str),
        ),
        (
            "launch_template_version",
            spec.and_then(|s| s.version()).map(Value::str),
        ),
        ("instance_types", types),
        (
            "on_demand_base_capacity",
            dist.and_then(|d| d.on_demand_base_capacity()).map(int),
        ),
        (
            "on_demand_percentage_above_base",
            dist.and_then(|d| d.on_demand_percentage_above_base_capacity())
                .map(int),
        ),
        (
            "spot_allocation_strategy",
            dist.and_then(|d| d.spot_allocation_strategy())
                .map(Value::str),
        ),
        ("min_size", g.min_size().map(int)),
        ("max_size", g.max_size().map(int)),
        ("desired_capacity", g.desired_capacity().map(int)),
        (
            "capacity_rebalance",
            Some(Value::Bool(g.capacity_rebalance().unwrap_or(false))),
        ),
        ("subnet_ids", Some(sorted_strs(subnets))),
        (
            "target_group_arns",
            Some(sorted_strs(g.target_group_arns().iter().cloned())),
        ),
        ("health_check_type", g.health_check_type().map(Value::str)),
        (
            "health_check_grace_period",
            g.health_check_grace_period().map(int),
        ),
        (
            "enabled_metrics",
            (!g.enabled_metrics().is_empty())
                .then(|| sorted_strs(g.enabled_metrics().iter().filter_map(|m| m.metric()))),
        ),
        ("tags", Some(tags_value(tags))),
    ]);
    let mut attrs = BTreeMap::from([("id".to_string(), name.clone())]);
    if let Some(arn) = g.auto_scaling_group_arn() {
        attrs.insert("arn".into(), arn.to_string());
    }
    Some(Observed {
        id: id.into(),
        kind: Kind::AutoScalingGroup,
        physical_id: name,
        fields,
        attrs,
        status: g.status().unwrap_or("active").to_string(),
        lifecycle: lifecycle(g.status()),
    })
}

/// Auto Scaling's only status word is the one of a group being deleted.
fn lifecycle(status: Option<&str>) -> Lifecycle {
    match status {
        Some(DELETING) => Lifecycle::Deleting,
        _ => Lifecycle::Ready,
    }
}

/// The stack's groups (ones being deleted left out): ONE paginated DescribeAutoScalingGroups
/// filtered by the stack tag.
async fn list_stack(c: &Clients, scope: &Scope) -> Result<Vec<Observed>, CloudError> {
    let stack = Filter::builder()
        .name(format!("tag:{TAG_STACK}"))
        .values(&scope.stack)
        .build();
    let req = c.autoscaling.describe_auto_scaling_groups().filters(stack);
    let groups = all_pages(
        "autoscaling:DescribeAutoScalingGroups",
        req.into_paginator().send().collect().await,
        |p| p.auto_scaling_groups(),
    )?;
    Ok(groups
        .iter()
        .filter(|g| g.status() != Some(DELETING))
        .filter_map(|g| observed(scope, g))
        .collect())
}

/// One DescribeAutoScalingGroups for a group name.
pub(crate) async fn describe(
    c: &Clients,
    name: &str,
) -> Result<Option<AutoScalingGroup>, CloudError> {
    let req = c.autoscaling.describe_auto_scaling_groups();
    let req = req.auto_scaling_group_names(name);
    match answer("autoscaling:DescribeAutoScalingGroups", req.send()).await {
        Ok(r) => Ok(r.auto_scaling_groups().first().cloned()),
        Err(e) if group_missing(&e) => Ok(None),
        Err(e) => Err(e),
    }
}

/// A size of the group to send: the field's number or, when the stack's scheduled actions move
/// it (compared one of several values), the first of its accepted values, which is the stack's
/// own (`web.min`, `web.max`).
fn size(r: &Reader<'_>, field: &str) -> Result<i32, CloudError> {
    match r.list(field) {
        Ok([first, ..]) => Reader::new(
            Kind::AutoScalingGroup,
            r.id.clone(),
            &Fields::from([(field.to_string(), first.clone())]),
        )
        .int32(field),
        _ => r.int32(field),
    }
}

/// The whole MixedInstancesPolicy from the fields.
fn mixed_policy(r: &Reader<'_>) -> Result<MixedInstancesPolicy, CloudError> {
    let spec = LaunchTemplateSpecification::builder()
        .launch_template_id(r.str("launch_template_id")?)
        .version(r.str("launch_template_version")?)
        .build();
    let overrides: Vec<LaunchTemplateOverrides> = r
        .strs("instance_types")?
        .into_iter()
        .map(|t| LaunchTemplateOverrides::builder().instance_type(t).build())
        .collect();
    let mut dist = InstancesDistribution::builder()
        .on_demand_base_capacity(r.int32("on_demand_base_capacity")?)
        .on_demand_percentage_above_base_capacity(r.int32("on_demand_percentage_above_base")?);
    if let Some(s) = r.opt_str("spot_allocation_strategy") {
        dist = dist.spot_allocation_strategy(s);
    }
    Ok(MixedInstancesPolicy::builder()
        .launch_template(
            LaunchTemplate::builder()
                .launch_template_specification(spec)
                .set_overrides(Some(overrides))
                .build(),
        )
        .instances_distribution(dist.build())
        .build())
}

/// The newest instance refresh of a group.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Refresh {
    id: String,
    status: String,
    reason: String,
}

/// Where a refresh is: running, done, or ended without rolling the whole fleet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum RefreshState {
    Running,
    Successful,
    /// Failed, Cancelled, RollbackSuccessful or RollbackFailed: the fleet may run old and new
    /// launch template versions side by side.
    Unfinished,
}

impl Refresh {
    fn state(&self) -> RefreshState {
        match self.status.as_str() {
            "Successful" => RefreshState::Successful,
            "Failed" | "Cancelled" | "RollbackSuccessful" | "RollbackFailed" => {
                RefreshState::Unfinished
            }
            // Pending, InProgress, Cancelling, RollbackInProgress, Baking (and any new word).
            _ => RefreshState::Running,
        }
    }

    /// `instance refresh <id> <status>[: <reason>]`.
    fn describe(&self) -> String {
        let mut s = format!("{REFRESHING} {} {}", self.id, self.status);
        if !self.reason.is_empty() {
            s.push_str(": ");
            s.push_str(&self.reason);
        }
        s
    }
}

/// The newest instance refresh of the group (None: never refreshed, or no such group). AWS lists
/// the refreshes of the last six weeks; the newest is the one with the latest start time.
async fn latest_refresh(c: &Clients, name: &str) -> Result<Option<Refresh>, CloudError> {
    let req = c.autoscaling.describe_instance_refreshes();
    let req = req.auto_scaling_group_name(name);
    let resp = match answer("autoscaling:DescribeInstanceRefreshes", req.send()).await {
        Err(e) if group_missing(&e) => return Ok(None),
        other => other?,
    };
    let newest = resp
        .instance_refreshes()
        .iter()
        .enumerate()
        // Newest start time first; AWS lists newest first, so ties keep the first.
        .max_by_key(|(i, r)| (r.start_time().map(|t| t.secs()), std::cmp::Reverse(*i)))
        .map(|(_, r)| r);
    Ok(newest.map(|r| Refresh {
        id: r.instance_refresh_id().unwrap_or_default().to_string(),
        status: r
            .status()
            .map(|s| s.as_str().to_string())
            .unwrap_or_default(),
        reason: r.status_reason().unwrap_or_default().to_string(),
    }))
}

/// A running instance refresh of the group, as (id, status).
async fn running_refresh(c: &Clients, name: &str) -> Result<Option<(String, String)>, CloudError> {
    Ok(latest_refresh(c, name)
        .await?
        .filter(|r| r.state() == RefreshState::Running)
        .map(|r| (r.id, r.status)))
}

/// What an observation of a group says about its newest refresh. Running: a poll reports it as
/// the status (the group is not ready until it ends). Unfinished: the launch template version the
/// group names is not what its whole fleet runs, so the observed version says so (the plan then
/// shows the rollout again and `apply` starts a new refresh), and a poll reports the group as
/// failed, with the refresh's reason.
fn with_refresh(mut o: Observed, refresh: Option<&Refresh>, poll: bool) -> Observed {
    let Some(r) = refresh else { return o };
    match r.state() {
        RefreshState::Running if poll && o.lifecycle == Lifecycle::Ready => {
            o.status = format!("{REFRESHING} {} {}", r.id, r.status);
        }
        RefreshState::Unfinished => {
            if let Some(v) = o
                .fields
                .get("launch_template_version")
                .and_then(Value::as_str)
            {
                let v = format!("{v} (not rolled out: {REFRESHING} {} {})", r.id, r.status);
                o.fields
                    .insert("launch_template_version".into(), Value::Str(v));
            }
            if poll && o.lifecycle == Lifecycle::Ready {
                o.lifecycle = Lifecycle::Failed;
                o.status = r.describe();
            }
        }
        _ => {}
    }
    o
}

/// The group `name` (none when it is gone or not the stack's) with its latest instance refresh;
/// `poll` as for [`with_refresh`] (a readiness poll asks by physical id).
async fn one_group(cx: &Cx<'_>, name: &str, poll: bool) -> Result<Vec<Observed>, CloudError> {
    let (g, refresh) = tokio::try_join!(describe(cx.c, name), latest_refresh(cx.c, name))?;
    Ok(g.and_then(|g| observed(cx.scope, &g))
        .map(|o| with_refresh(o, refresh.as_ref(), poll))
        .into_iter()
        .collect())
}

/// What to do after a rollout that did not finish.
fn refresh_fix(name: &str) -> String {
    format!(
        "the fleet may run old and new nodes side by side. Find why the new nodes did not become \
         healthy (the refresh's reason above; `aws autoscaling describe-instance-refreshes \
         --auto-scaling-group-name {name}`; a new node's boot log, /var/log/cloud-init-output.log), \
         fix the stack file, then run apply again: the plan shows the rollout again and apply \
         starts a new instance refresh"
    )
}

fn refresh_running_error(name: &str, refresh: &str, status: &str) -> CloudError {
    CloudError::Api {
        operation: "autoscaling:StartInstanceRefresh".into(),
        code: "InstanceRefreshInProgress".into(),
        message: format!(
            "an instance refresh of group {name} is already running ({refresh}, {status}); the \
             new launch template version cannot be rolled out until it ends: wait for it \
             (aws autoscaling describe-instance-refreshes --auto-scaling-group-name {name}) or \
             cancel it (aws autoscaling cancel-instance-refresh --auto-scaling-group-name \
             {name}), then run apply again"
        ),
        source: None,
    }
}

// ---------------------------------------------------------------------------------------------
// The group.

/// This file's kinds under their [`Kind`](moodlestack_model::Kind) names, for the registry
/// [`ops`](crate::ops).
pub(crate) mod kinds {
    pub(crate) use super::Group as AutoScalingGroup;
}

/// `AWS::AutoScaling::AutoScalingGroup`. A poll also reads the group's running instance refresh:
/// a group rolling out a new launch template version is not ready until it ends.
pub(crate) struct Group;

#[async_trait]
impl KindOps for Group {
    // The create describes the group it made (a new group runs no instance refresh).
    fn ready_when_created(&self) -> bool {
        true
    }

    async fn list(&self, cx: &Cx<'_>, q: Query<'_>) -> Result<Vec<Observed>, CloudError> {
        match q {
            Query::Stack => {
                // The refreshes of the declared groups, read alongside the list.
                let names = desired_names(cx.desired, Kind::AutoScalingGroup, "name");
                let refreshes = try_join_all(names.iter().map(|n| latest_refresh(cx.c, n)));
                let (groups, refreshes) = tokio::try_join!(list_stack(cx.c, cx.scope), refreshes)?;
                let by_name: BTreeMap<&str, Refresh> = names
                    .iter()
                    .map(String::as_str)
                    .zip(refreshes)
                    .filter_map(|(n, r)| Some((n, r?)))
                    .collect();
                Ok(groups
                    .into_iter()
                    .map(|o| {
                        let r = by_name.get(o.physical_id.as_str());
                        with_refresh(o, r, false)
                    })
                    .collect())
            }
            Query::Logical { fields, .. } => match fields.get("name").and_then(Value::as_str) {
                Some(name) => one_group(cx, name, false).await,
                None => Ok(Vec::new()),
            },
            Query::Physical(name) => one_group(cx, name, true).await,
        }
    }

    async fn create(&self, cx: &Cx<'_>, r: &Reader<'_>) -> Result<Created, CloudError> {
        let c = cx.c;
        let name = r.str("name")?;
        let mut tags = r.tags()?;
        tags.extend(identity_tags(cx.scope, &r.id));
        let subnets = r.strs("subnet_ids")?;
        let target_groups = r.strs_or_empty("target_group_arns")?;
        let created = c
            .autoscaling
            .create_auto_scaling_group()
            .auto_scaling_group_name(name)
            .mixed_instances_policy(mixed_policy(r)?)
            .min_size(size(r, "min_size")?)
            .max_size(size(r, "max_size")?)
            .set_desired_capacity(r.opt_int32("desired_capacity")?)
            .set_capacity_rebalance(r.opt_bool("capacity_rebalance"))
            .vpc_zone_identifier(subnets.join(","))
            .set_target_group_arns((!target_groups.is_empty()).then_some(target_groups))
            .set_health_check_type(r.opt_str("health_check_type").map(str::to_string))
            .set_health_check_grace_period(r.opt_int32("health_check_grace_period")?)
            .set_tags(Some(sdk_tags(name, &tags)))
            .send()
            .await
            .map_err(|e| api_err("autoscaling:CreateAutoScalingGroup", e));
        match created {
            Ok(_) => {}
            // A crash between create and the next observe, or another's group: the generic code
            // adopts it if it is ours.
            Err(e) if matches!(api_code(&e), Some((code, _)) if code == "AlreadyExists") => {
                return Ok(Created::Exists)
            }
            Err(e) => return Err(e),
        }
        // The group's read (for its ARN and what AWS filled in) goes out beside the metrics'
        // enabling, which is stored when it answers: its metrics are the ones just enabled.
        let (enabled, g) = tokio::join!(enable_metrics(c, name, r), describe(c, name));
        enabled?;
        let unexpected = |what: &str| {
            crate::fields::unexpected(
                "autoscaling:DescribeAutoScalingGroups",
                format!("group {name} {what} right after creation"),
            )
        };
        let g = g?.ok_or_else(|| unexpected("is not described"))?;
        let mut o = observed(cx.scope, &g).ok_or_else(|| unexpected("lost the stack's tags"))?;
        let metrics = r.strs_or_empty("enabled_metrics")?;
        if !metrics.is_empty() {
            o.fields
                .insert("enabled_metrics".into(), sorted_strs(metrics));
        }
        Ok(Created::New(o))
    }

    async fn update(&self, cx: &Cx<'_>, u: Update<'_>) -> Result<Observed, CloudError> {
        let (current, r, changed) = u.parts();
        let c = cx.c;
        let cur = Reader::new(current.kind, r.id.clone(), &current.fields);
        let name = current.physical_id.as_str();
        let has = |f: &str| changed.contains(&f);
        let rollout = has("launch_template_version");
        if rollout {
            // Refuse before changing anything, so a re-run still sees the version change.
            if let Some((id, status)) = running_refresh(c, name).await? {
                return Err(refresh_running_error(name, &id, &status));
            }
        }

        let mut req = c
            .autoscaling
            .update_auto_scaling_group()
            .auto_scaling_group_name(name);
        // Every UpdateAutoScalingGroup carries the whole mixed instances policy, changed or not:
        // it is what the group should have anyway, and some implementations (moto) drop a group's
        // policy when an update omits it.
        req = req.mixed_instances_policy(mixed_policy(r)?);
        let mut send = POLICY_FIELDS.iter().any(|f| has(f));
        for field in changed {
            match *field {
                f if POLICY_FIELDS.contains(&f) => {}
                "min_size" => req = req.min_size(size(r, "min_size")?),
                "max_size" => req = req.max_size(size(r, "max_size")?),
                "capacity_rebalance" => req = req.capacity_rebalance(r.bool("capacity_rebalance")?),
                "subnet_ids" => req = req.vpc_zone_identifier(r.strs("subnet_ids")?.join(",")),
                "health_check_type" => req = req.health_check_type(r.str("health_check_type")?),
                "health_check_grace_period" => {
                    req = req.health_check_grace_period(r.int32("health_check_grace_period")?)
                }
                // Never sent on update: autoscaling owns the desired capacity.
                "desired_capacity" => continue,
                "target_group_arns" | "tags" | "enabled_metrics" => continue,
                other => {
                    return Err(CloudError::Field {
                        kind: current.kind,
                        id: r.id.clone(),
                        field: other.to_string(),
                        problem: "cannot be changed in place (the group must be replaced)".into(),
                    })
                }
            }
            send = true;
        }
        if send {
            sent("autoscaling:UpdateAutoScalingGroup", req.send()).await?;
        }

        if has("target_group_arns") {
            let want: BTreeSet<String> = r.strs("target_group_arns")?.into_iter().collect();
            let have: BTreeSet<String> = cur
                .strs("target_group_arns")
                .unwrap_or_default()
                .into_iter()
                .collect();
            let attach: Vec<String> = want.difference(&have).cloned().collect();
            let detach: Vec<String> = have.difference(&want).cloned().collect();
            if !attach.is_empty() {
                let req = c.autoscaling.attach_load_balancer_target_groups();
                let req = req
                    .auto_scaling_group_name(name)
                    .set_target_group_arns(Some(attach));
                sent("autoscaling:AttachLoadBalancerTargetGroups", req.send()).await?;
            }
            if !detach.is_empty() {
                let req = c.autoscaling.detach_load_balancer_target_groups();
                let req = req
                    .auto_scaling_group_name(name)
                    .set_target_group_arns(Some(detach));
                sent("autoscaling:DetachLoadBalancerTargetGroups", req.send()).await?;
            }
        }

        if has("enabled_metrics") {
            let want: BTreeSet<String> = r.strs_or_empty("enabled_metrics")?.into_iter().collect();
            let stale: Vec<String> = cur
                .strs_or_empty("enabled_metrics")?
                .into_iter()
                .filter(|m| !want.contains(m))
                .collect();
            if !stale.is_empty() {
                let req = c.autoscaling.disable_metrics_collection();
                let req = req.auto_scaling_group_name(name).set_metrics(Some(stale));
                sent("autoscaling:DisableMetricsCollection", req.send()).await?;
            }
            enable_metrics(c, name, r).await?;
        }

        if has("tags") {
            let mut want = r.tags()?;
            want.extend(identity_tags(cx.scope, &r.id));
            let req = c.autoscaling.create_or_update_tags();
            let req = req.set_tags(Some(sdk_tags(name, &want)));
            sent("autoscaling:CreateOrUpdateTags", req.send()).await?;
            // Tags only moodlestack writes (`moodlestack:*`) that the stack no longer sets are
            // removed; tags others add are left alone.
            let stale: Tags = cur
                .tags()
                .unwrap_or_default()
                .into_iter()
                .filter(|(k, _)| k.starts_with("moodlestack:") && !want.contains_key(k))
                .collect();
            if !stale.is_empty() {
                let req = c
                    .autoscaling
                    .delete_tags()
                    .set_tags(Some(sdk_tags(name, &stale)));
                sent("autoscaling:DeleteTags", req.send()).await?;
            }
        }

        if rollout {
            let started = c
                .autoscaling
                .start_instance_refresh()
                .auto_scaling_group_name(name)
                .preferences(
                    RefreshPreferences::builder()
                        .min_healthy_percentage(REFRESH_MIN_HEALTHY_PERCENTAGE)
                        .max_healthy_percentage(REFRESH_MAX_HEALTHY_PERCENTAGE)
                        // A node someone put in Standby runs the old code too: replaced like
                        // the others rather than left behind (or waited for).
                        .standby_instances(StandbyInstances::Terminate)
                        .build(),
                )
                .send()
                .await
                .map_err(|e| api_err("autoscaling:StartInstanceRefresh", e));
            match started {
                Ok(_) => {}
                Err(e) if matches!(api_code(&e), Some((code, _)) if code.contains("InstanceRefreshInProgress")) =>
                {
                    let (id, status) = running_refresh(c, name)
                        .await?
                        .unwrap_or_else(|| ("unknown id".into(), "running".into()));
                    return Err(refresh_running_error(name, &id, &status));
                }
                Err(e) => return Err(e),
            }
        }

        let g = describe(c, name)
            .await?
            .ok_or_else(|| CloudError::NotFound(format!("autoscaling group {name}")))?;
        let o = observed(cx.scope, &g).ok_or_else(|| {
            crate::fields::unexpected(
                "autoscaling:DescribeAutoScalingGroups",
                format!("group {name} lost the stack's tags"),
            )
        })?;
        Ok(Observed {
            id: current.id.clone(),
            ..o
        })
    }

    async fn delete(&self, cx: &Cx<'_>, current: &Observed) -> Result<(), CloudError> {
        let req = cx.c.autoscaling.delete_auto_scaling_group();
        let req = req.auto_scaling_group_name(&current.physical_id);
        match sent(
            "autoscaling:DeleteAutoScalingGroup",
            req.force_delete(true).send(),
        )
        .await
        {
            Err(e) if group_missing(&e) => Ok(()),
            other => other,
        }
    }

    /// Ready once the group is and no instance refresh runs; failed when its newest refresh
    /// ended without rolling out the whole fleet.
    fn readiness(&self, found: Observed, want: Want) -> Readiness {
        if want == Want::Ready && found.status.starts_with(REFRESHING) {
            match found.lifecycle {
                Lifecycle::Ready => return Readiness::Pending(found.status),
                Lifecycle::Failed => {
                    return Readiness::Failed {
                        fix: Some(refresh_fix(&found.physical_id)),
                        status: found.status,
                    }
                }
                _ => {}
            }
        }
        lifecycle_readiness(found, want)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fields::assert_matches_spec;
    use moodlestack_model::ResourceId;

    fn fields() -> Fields {
        Fields::from([
            ("name".to_string(), Value::str("demo-web")),
            ("launch_template_id".to_string(), Value::str("lt-1")),
            ("launch_template_version".to_string(), Value::str("3")),
            (
                "instance_types".to_string(),
                Value::strs(["t3.medium", "t3a.medium"]),
            ),
            ("on_demand_base_capacity".to_string(), Value::Int(1)),
            (
                "on_demand_percentage_above_base".to_string(),
                Value::Int(25),
            ),
            (
                "spot_allocation_strategy".to_string(),
                Value::str("price-capacity-optimized"),
            ),
        ])
    }

    #[test]
    fn the_whole_mixed_policy_is_built_from_the_fields() {
        let f = fields();
        let id = ResourceId::from("web.asg");
        let p = mixed_policy(&Reader::new(Kind::AutoScalingGroup, &id, &f)).unwrap();
        let lt = p.launch_template().unwrap();
        let spec = lt.launch_template_specification().unwrap();
        assert_eq!(
            (spec.launch_template_id(), spec.version()),
            (Some("lt-1"), Some("3"))
        );
        let types: Vec<_> = lt
            .overrides()
            .iter()
            .filter_map(|o| o.instance_type())
            .collect();
        assert_eq!(types, ["t3.medium", "t3a.medium"]);
        let d = p.instances_distribution().unwrap();
        assert_eq!(d.on_demand_base_capacity(), Some(1));
        assert_eq!(d.on_demand_percentage_above_base_capacity(), Some(25));
        assert_eq!(
            d.spot_allocation_strategy(),
            Some("price-capacity-optimized")
        );
    }

    #[test]
    fn a_missing_group_is_recognised() {
        let e = CloudError::Api {
            operation: "autoscaling:DeleteAutoScalingGroup".into(),
            code: "ValidationError".into(),
            message: "AutoScalingGroup name not found - no such group".into(),
            source: None,
        };
        assert!(group_missing(&e));
        let other = CloudError::Api {
            operation: "x".into(),
            code: "ValidationError".into(),
            message: "max size must be >= min size".into(),
            source: None,
        };
        assert!(!group_missing(&other));
    }

    #[test]
    fn a_running_refresh_is_named_with_the_way_out() {
        let msg = refresh_running_error("demo-web", "r-1", "InProgress").to_string();
        assert!(
            msg.contains("already running") && msg.contains("cancel-instance-refresh"),
            "{msg}"
        );
    }

    #[test]
    fn a_group_answer_fills_every_field_and_keeps_only_the_stacks() {
        use aws_sdk_autoscaling::types::TagDescription;
        let tag = |k: &str, v: &str| TagDescription::builder().key(k).value(v).build();
        let f = fields();
        let id = ResourceId::from("web.asg");
        let g = AutoScalingGroup::builder()
            .auto_scaling_group_name("demo-web")
            .auto_scaling_group_arn("arn:asg")
            .mixed_instances_policy(
                mixed_policy(&Reader::new(Kind::AutoScalingGroup, &id, &f)).unwrap(),
            )
            .min_size(2)
            .max_size(6)
            .desired_capacity(3)
            .capacity_rebalance(true)
            .vpc_zone_identifier("subnet-b,subnet-a")
            .target_group_arns("arn:tg")
            .health_check_type("ELB")
            .health_check_grace_period(300)
            .enabled_metrics(
                aws_sdk_autoscaling::types::EnabledMetric::builder()
                    .metric("GroupInServiceInstances")
                    .granularity("1Minute")
                    .build(),
            )
            .tags(tag(TAG_STACK, "demo"))
            .tags(tag(TAG_ID, "web.asg"))
            .build();
        let scope = Scope {
            stack: "demo".into(),
            region: "eu-west-1".into(),
        };
        let o = observed(&scope, &g).unwrap();
        assert_matches_spec(&o, &[]);
        assert_eq!(o.lifecycle, Lifecycle::Ready);
        assert_eq!(
            o.fields["subnet_ids"],
            Value::strs(["subnet-a", "subnet-b"])
        );
        assert_eq!(
            o.fields["instance_types"],
            Value::strs(["t3.medium", "t3a.medium"])
        );
        assert_eq!(
            (o.attrs["id"].as_str(), o.attrs["arn"].as_str()),
            ("demo-web", "arn:asg")
        );
        let other = Scope {
            stack: "other".into(),
            region: "eu-west-1".into(),
        };
        assert!(observed(&other, &g).is_none());
    }

    #[test]
    fn a_group_is_not_ready_while_its_instance_refresh_runs() {
        let o = Observed {
            id: ResourceId::from("web.asg").into(),
            kind: Kind::AutoScalingGroup,
            physical_id: "demo-web".into(),
            fields: Fields::new(),
            attrs: BTreeMap::new(),
            status: format!("{REFRESHING} r-1 InProgress"),
            lifecycle: lifecycle(None),
        };
        assert!(matches!(
            Group.readiness(o.clone(), Want::Ready),
            Readiness::Pending(s) if s.contains("r-1")
        ));
        let done = Observed {
            status: "active".into(),
            ..o.clone()
        };
        assert!(matches!(
            Group.readiness(done, Want::Ready),
            Readiness::Ready(_)
        ));
        let deleting = Observed {
            status: DELETING.into(),
            lifecycle: lifecycle(Some(DELETING)),
            ..o
        };
        assert!(matches!(
            Group.readiness(deleting, Want::Gone),
            Readiness::Pending(_)
        ));
    }

    #[test]
    fn an_unfinished_refresh_fails_the_poll_with_its_reason_and_shows_the_rollout_again() {
        let o = Observed {
            id: ResourceId::from("web.asg").into(),
            kind: Kind::AutoScalingGroup,
            physical_id: "demo-web".into(),
            fields: Fields::from([("launch_template_version".to_string(), Value::str("7"))]),
            attrs: BTreeMap::new(),
            status: "active".into(),
            lifecycle: lifecycle(None),
        };
        let refresh = |status: &str| Refresh {
            id: "r-2".into(),
            status: status.into(),
            reason: "instances failed to become healthy".into(),
        };
        for status in [
            "Failed",
            "Cancelled",
            "RollbackSuccessful",
            "RollbackFailed",
        ] {
            // The plan's observation: the version is not what the whole fleet runs.
            let listed = with_refresh(o.clone(), Some(&refresh(status)), false);
            assert_eq!(
                listed.fields["launch_template_version"],
                Value::Str(format!("7 (not rolled out: instance refresh r-2 {status})"))
            );
            assert_eq!(listed.lifecycle, Lifecycle::Ready);
            // The poll after a rollout: failed, with the reason and what to do.
            let polled = with_refresh(o.clone(), Some(&refresh(status)), true);
            match Group.readiness(polled, Want::Ready) {
                Readiness::Failed {
                    status: s,
                    fix: Some(fix),
                } => {
                    assert_eq!(
                        s,
                        format!(
                            "instance refresh r-2 {status}: instances failed to become healthy"
                        )
                    );
                    assert!(fix.contains("run apply again"), "{fix}");
                }
                other => panic!("{status}: {other:?}"),
            }
        }
        // A finished refresh changes nothing; a running one keeps the poll waiting.
        let done = with_refresh(o.clone(), Some(&refresh("Successful")), true);
        assert_eq!(done, o);
        let running = with_refresh(o.clone(), Some(&refresh("InProgress")), true);
        assert!(matches!(
            Group.readiness(running, Want::Ready),
            Readiness::Pending(s) if s == "instance refresh r-2 InProgress"
        ));
        assert_eq!(with_refresh(o.clone(), None, true), o);
    }
}
