//! Auto Scaling, what hangs off the group: the [`Kind::ScalingPolicy`] (target tracking), the
//! [`Kind::ScheduledAction`]s and the [`Kind::LifecycleHook`] (termination drain).
//!
//! None of them can be tagged: they are the stack's because they hang off one of the stack's
//! groups, and they are matched to the declared ones by their identity (group name, own name).
//! Their physical id is `<group name>/<own name>`.
//!
//! Listing costs no round of its own: each kind reads with ONE describe per group
//! (DescribePolicies, DescribeScheduledActions, DescribeLifecycleHooks all take the group's
//! name), and the names of the declared groups are deterministic, so these reads go out together
//! with the group list itself; only a listed group the stack no longer declares (a rename) is
//! read after the list. A read of a group that does not exist yet is an empty answer.
//!
//! A create looks at the group first (the generic create has already listed it by identity, which
//! reads the group too): a Put on another stack's group would take over what is there.
//!
//! Each create is also the update: PutScalingPolicy, PutScheduledUpdateGroupAction and
//! PutLifecycleHook create the named thing or replace its settings, all of them in one call.

use crate::autoscaling::{describe as describe_group, group_missing, group_tags};
use crate::fields::{all_pages, answer, desired_names, in_place_only, int, reported, sent, Reader};
use crate::{Created, Cx, KindOps, Query, Update};
use async_trait::async_trait;
use aws_sdk_autoscaling::types::{
    LifecycleHook as SdkHook, MetricType, PredefinedMetricSpecification,
    ScalingPolicy as SdkPolicy, ScheduledUpdateGroupAction, TargetTrackingConfiguration,
};
use futures::future::try_join_all;
use moodlestack_model::{
    CloudError, Fields, Kind, Lifecycle, Observed, ObservedId, Value, TAG_STACK,
};
use std::collections::BTreeMap;
use std::future::Future;

/// This file's kinds under their [`Kind`] names, for the registry [`ops`](crate::ops).
#[allow(non_upper_case_globals)]
pub(crate) mod kinds {
    use super::{Hook, OnGroupOps, Policy, Schedule};
    pub(crate) const ScalingPolicy: OnGroupOps<Policy> = OnGroupOps::OPS;
    pub(crate) const ScheduledAction: OnGroupOps<Schedule> = OnGroupOps::OPS;
    pub(crate) const LifecycleHook: OnGroupOps<Hook> = OnGroupOps::OPS;
}

/// The physical id of a thing named `name` on group `group`.
fn physical(group: &str, name: &str) -> String {
    format!("{group}/{name}")
}

/// (group, name) of a physical id. The group's name is the stack's (`<stack>-web`, no `/`); the
/// thing's own name may hold `/`.
fn split(physical: &str) -> Option<(&str, &str)> {
    physical.split_once('/')
}

/// An untaggable observation: always ready (these have no status of their own).
fn observation(kind: Kind, group: &str, name: &str, mut fields: Fields) -> Observed {
    let id = physical(group, name);
    fields.insert("group_name".into(), Value::str(group));
    fields.insert("name".into(), Value::str(name));
    Observed {
        id: ObservedId::Untagged(id.clone()),
        kind,
        physical_id: id.clone(),
        fields,
        attrs: BTreeMap::from([("id".to_string(), id)]),
        status: "active".into(),
        lifecycle: Lifecycle::Ready,
    }
}

/// What one group holds of a kind, as observations: `read(group, name)` with an optional name.
/// A missing group holds nothing.
async fn held<F, Fut>(
    read: &F,
    group: String,
    name: Option<String>,
) -> Result<Vec<Observed>, CloudError>
where
    F: Fn(String, Option<String>) -> Fut,
    Fut: Future<Output = Result<Vec<Observed>, CloudError>>,
{
    match read(group, name).await {
        Err(e) if group_missing(&e) => Ok(Vec::new()),
        other => other,
    }
}

/// The list of a kind for `q`, from `read(group, name)`: for [`Query::Stack`], one read per group
/// of the stack, those of the declared groups in flight together with the group list.
async fn list_with<F, Fut>(cx: &Cx<'_>, q: Query<'_>, read: F) -> Result<Vec<Observed>, CloudError>
where
    F: Fn(String, Option<String>) -> Fut,
    Fut: Future<Output = Result<Vec<Observed>, CloudError>>,
{
    match q {
        Query::Stack => {
            let declared = desired_names(cx.desired, Kind::AutoScalingGroup, "name");
            let early = try_join_all(declared.iter().map(|g| held(&read, g.clone(), None)));
            let (groups, early) = tokio::try_join!(cx.listed(Kind::AutoScalingGroup), early)?;
            let listed = crate::fields::live_ids(groups);
            let mut out: Vec<Observed> = declared
                .iter()
                .zip(early)
                .filter(|(g, _)| listed.contains(&g.as_str()))
                .flat_map(|(_, found)| found)
                .collect();
            let late = listed
                .iter()
                .filter(|g| !declared.iter().any(|d| d == *g))
                .map(|g| held(&read, (*g).to_string(), None));
            out.extend(try_join_all(late).await?.into_iter().flatten());
            Ok(out)
        }
        Query::Logical { fields, .. } => {
            let group = fields.get("group_name").and_then(Value::as_str);
            let name = fields.get("name").and_then(Value::as_str);
            match (group, name) {
                // Only what hangs off one of the stack's groups is the stack's.
                (Some(g), Some(n)) => {
                    let (ours, found) = tokio::try_join!(
                        group_is_ours(cx, g),
                        held(&read, g.into(), Some(n.into()))
                    )?;
                    Ok(if ours { found } else { Vec::new() })
                }
                _ => Ok(Vec::new()),
            }
        }
        Query::Physical(id) => match split(id) {
            Some((g, n)) => held(&read, g.into(), Some(n.into())).await,
            None => Ok(Vec::new()),
        },
    }
}

/// Whether the group `name` exists and carries the stack's tag.
async fn group_is_ours(cx: &Cx<'_>, name: &str) -> Result<bool, CloudError> {
    Ok(describe_group(cx.c, name)
        .await?
        .is_some_and(|g| group_tags(&g).get(TAG_STACK) == Some(&cx.scope.stack)))
}

/// A Put call on group `group` creates or overwrites: on a group that is not the stack's it is
/// refused before it is sent ([`Created::Exists`]: the generic create then finds nothing of the
/// stack's there and names who holds it).
async fn refuse_foreign(cx: &Cx<'_>, r: &Reader<'_>) -> Result<Option<Created>, CloudError> {
    // An apply's plan saw the group as the stack's (or made it in this run): no second look.
    if cx.planned {
        return Ok(None);
    }
    let group = r.str("group_name")?;
    match describe_group(cx.c, group).await? {
        Some(g) if group_tags(&g).get(TAG_STACK) != Some(&cx.scope.stack) => {
            Ok(Some(Created::Exists))
        }
        _ => Ok(None),
    }
}

/// Refuses an update of what names the thing (its group, its own name): the Put call would make
/// another one beside it.
fn in_place(kind: Kind, r: &Reader<'_>, changed: &[&str], what: &str) -> Result<(), CloudError> {
    match changed
        .iter()
        .find(|f| matches!(**f, "group_name" | "name"))
    {
        Some(f) => Err(in_place_only(kind, r, f, what)),
        None => Ok(()),
    }
}

/// The current observation with the changed fields set to their desired values (a Put call
/// answers nothing to read back).
fn put_result(current: &Observed, r: &Reader<'_>) -> Observed {
    let mut o = current.clone();
    for (k, v) in r.fields {
        o.fields.insert(k.clone(), v.clone());
    }
    o
}

/// The observation a Put call made (the desired fields, under the physical id it has now).
fn made(kind: Kind, r: &Reader<'_>) -> Result<Created, CloudError> {
    let (group, name) = (r.str("group_name")?, r.str("name")?);
    let fields: Fields = r
        .fields
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let o = observation(kind, group, name, fields);
    Ok(Created::made(r, o))
}

/// A delete whose "not found" (group or thing gone) is done.
async fn deleted<T, E, R>(
    operation: &str,
    request: impl Future<Output = Result<T, aws_sdk_autoscaling::error::SdkError<E, R>>>,
) -> Result<(), CloudError>
where
    E: aws_sdk_autoscaling::error::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    match sent(operation, request).await {
        Err(e) if group_missing(&e) => Ok(()),
        other => other,
    }
}

/// A kind that hangs off a group and is written with one Put call that creates it or replaces
/// its settings: its describe (by group, and optionally by name), its Put and its delete. The
/// rest (list, the foreign-group refusal, create, update, delete) is written once, in
/// [`KindOps`] for every such kind.
#[async_trait]
pub(crate) trait OnGroup: Send + Sync {
    const KIND: Kind;
    /// What a refusal names it ("scaling policy").
    const WHAT: &'static str;
    async fn describe(
        cx: &Cx<'_>,
        group: String,
        name: Option<String>,
    ) -> Result<Vec<Observed>, CloudError>;
    async fn put(cx: &Cx<'_>, r: &Reader<'_>) -> Result<(), CloudError>;
    async fn remove(cx: &Cx<'_>, group: &str, name: &str) -> Result<(), CloudError>;
}

/// The [`KindOps`] of an [`OnGroup`] kind.
pub(crate) struct OnGroupOps<T>(std::marker::PhantomData<T>);

impl<T> OnGroupOps<T> {
    /// The implementation, for the registry.
    pub(crate) const OPS: Self = OnGroupOps(std::marker::PhantomData);
}

#[async_trait]
impl<T: OnGroup> KindOps for OnGroupOps<T> {
    // Auto Scaling stores a Put or a Delete before it answers.
    fn ready_when_created(&self) -> bool {
        true
    }
    fn gone_when_deleted(&self) -> bool {
        true
    }

    async fn list(&self, cx: &Cx<'_>, q: Query<'_>) -> Result<Vec<Observed>, CloudError> {
        list_with(cx, q, |g, n| T::describe(cx, g, n)).await
    }

    async fn create(&self, cx: &Cx<'_>, r: &Reader<'_>) -> Result<Created, CloudError> {
        if let Some(refused) = refuse_foreign(cx, r).await? {
            return Ok(refused);
        }
        T::put(cx, r).await?;
        made(T::KIND, r)
    }

    async fn update(&self, cx: &Cx<'_>, u: Update<'_>) -> Result<Observed, CloudError> {
        let (current, r, changed) = u.parts();
        in_place(T::KIND, r, changed, T::WHAT)?;
        T::put(cx, r).await?;
        Ok(put_result(current, r))
    }

    async fn delete(&self, cx: &Cx<'_>, current: &Observed) -> Result<(), CloudError> {
        match split(&current.physical_id) {
            Some((group, name)) => T::remove(cx, group, name).await,
            None => Ok(()),
        }
    }
}

/// An [`OnGroup`] kind `$ty`: its describe by group (and optionally by name: `$set_names`) read
/// by `$found` and observed by `$observed`, its Put of the group, its own name (`$name`) and the
/// settings `$settings` adds, and its delete by group and name. The three kinds differ only in
/// these names; the calls are the same.
macro_rules! on_group {
    (
        $(#[$doc:meta])*
        $ty:ident: $kind:expr, $what:literal,
        describe: $describe:ident.$set_names:ident($req:ident) => $found:expr,
        observed: $observed:path,
        name: $name:ident,
        put: $put:ident($put_op:literal, $preq:ident, $r:ident) => $settings:expr,
        remove: $remove:ident($remove_op:literal),
    ) => {
        $(#[$doc])*
        pub(crate) struct $ty;

        #[async_trait]
        impl OnGroup for $ty {
            const KIND: Kind = $kind;
            const WHAT: &'static str = $what;

            async fn describe(
                cx: &Cx<'_>,
                group: String,
                name: Option<String>,
            ) -> Result<Vec<Observed>, CloudError> {
                let $req = cx.c.autoscaling.$describe();
                let $req = $req
                    .auto_scaling_group_name(&group)
                    .$set_names(name.map(|n| vec![n]));
                let found = $found?;
                Ok(found.iter().filter_map($observed).collect())
            }

            async fn put(cx: &Cx<'_>, $r: &Reader<'_>) -> Result<(), CloudError> {
                let $preq = cx.c.autoscaling.$put();
                let $preq = $preq
                    .auto_scaling_group_name($r.str("group_name")?)
                    .$name($r.str("name")?);
                let req = $settings;
                sent($put_op, req.send()).await
            }

            async fn remove(cx: &Cx<'_>, group: &str, name: &str) -> Result<(), CloudError> {
                let req = cx.c.autoscaling.$remove();
                let req = req.auto_scaling_group_name(group).$name(name);
                deleted($remove_op, req.send()).await
            }
        }
    };
}

// ---------------------------------------------------------------------------------------------
// The target-tracking scaling policy.

/// The observation of a policy. A policy of another type (step, simple, predictive) is reported
/// with its type as the metric, so it never passes for the declared one.
fn policy_observed(p: &SdkPolicy) -> Option<Observed> {
    let group = p.auto_scaling_group_name()?;
    let name = p.policy_name()?;
    let tt = p.target_tracking_configuration();
    let predefined = tt.and_then(|t| t.predefined_metric_specification());
    let metric = match (p.policy_type(), predefined) {
        (Some("TargetTrackingScaling") | None, Some(m)) => {
            m.predefined_metric_type().map(|t| Value::str(t.as_str()))
        }
        (Some("TargetTrackingScaling") | None, None) => Some(Value::str("custom metric")),
        (Some(other), _) => Some(Value::str(other)),
    };
    let target = tt.and_then(|t| t.target_value()).map(|v| {
        if v.fract() == 0.0 && v.abs() < 1e15 {
            Value::Int(v as i64)
        } else {
            // A fractional target someone set by hand differs from every integer one.
            Value::Str(v.to_string())
        }
    });
    let fields = reported([
        ("metric", metric),
        (
            "resource_label",
            Some(Value::str(
                predefined
                    .and_then(|m| m.resource_label())
                    .unwrap_or_default(),
            )),
        ),
        ("target_value", target),
        (
            "estimated_instance_warmup",
            p.estimated_instance_warmup().map(int),
        ),
        (
            "disable_scale_in",
            Some(Value::Bool(
                tt.and_then(|t| t.disable_scale_in()).unwrap_or(false),
            )),
        ),
    ]);
    let mut o = observation(Kind::ScalingPolicy, group, name, fields);
    if let Some(arn) = p.policy_arn() {
        o.attrs.insert("arn".into(), arn.to_string());
    }
    Some(o)
}

on_group! {
    /// `AWS::AutoScaling::ScalingPolicy` (target tracking), untaggable: found through the group.
    Policy: Kind::ScalingPolicy, "scaling policy",
    describe: describe_policies.set_policy_names(req) => all_pages(
        "autoscaling:DescribePolicies",
        req.into_paginator().send().collect().await,
        |p| p.scaling_policies(),
    ),
    observed: policy_observed,
    name: policy_name,
    // One PutScalingPolicy with every setting.
    put: put_scaling_policy("autoscaling:PutScalingPolicy", req, r) => {
        let mut metric = PredefinedMetricSpecification::builder()
            .predefined_metric_type(MetricType::from(r.str("metric")?));
        if let Some(label) = r.opt_str("resource_label").filter(|l| !l.is_empty()) {
            metric = metric.resource_label(label);
        }
        let metric = metric.build();
        let tracking = TargetTrackingConfiguration::builder()
            .predefined_metric_specification(metric)
            .target_value(f64::from(r.int32("target_value")?))
            .disable_scale_in(r.bool("disable_scale_in")?)
            .build();
        req.policy_type("TargetTrackingScaling")
            .set_estimated_instance_warmup(r.opt_int32("estimated_instance_warmup")?)
            .target_tracking_configuration(tracking)
    },
    remove: delete_policy("autoscaling:DeletePolicy"),
}

// ---------------------------------------------------------------------------------------------
// Scheduled actions.

fn schedule_observed(a: &ScheduledUpdateGroupAction) -> Option<Observed> {
    let group = a.auto_scaling_group_name()?;
    let name = a.scheduled_action_name()?;
    let fields = reported([
        ("recurrence", a.recurrence().map(Value::str)),
        // AWS reads an action without a time zone in UTC.
        (
            "time_zone",
            Some(Value::str(a.time_zone().unwrap_or("Etc/UTC"))),
        ),
        ("min_size", a.min_size().map(int)),
        ("max_size", a.max_size().map(int)),
        ("desired_capacity", a.desired_capacity().map(int)),
    ]);
    Some(observation(Kind::ScheduledAction, group, name, fields))
}

on_group! {
    /// `AWS::AutoScaling::ScheduledAction`, untaggable: found through the group.
    Schedule: Kind::ScheduledAction, "scheduled action",
    describe: describe_scheduled_actions.set_scheduled_action_names(req) => all_pages(
        "autoscaling:DescribeScheduledActions",
        req.into_paginator().send().collect().await,
        |p| p.scheduled_update_group_actions(),
    ),
    observed: schedule_observed,
    name: scheduled_action_name,
    // One PutScheduledUpdateGroupAction with every setting.
    put: put_scheduled_update_group_action("autoscaling:PutScheduledUpdateGroupAction", req, r) => req
        .recurrence(r.str("recurrence")?)
        .time_zone(r.str("time_zone")?)
        .min_size(r.int32("min_size")?)
        .set_max_size(r.opt_int32("max_size")?)
        .desired_capacity(r.int32("desired_capacity")?),
    remove: delete_scheduled_action("autoscaling:DeleteScheduledAction"),
}

// ---------------------------------------------------------------------------------------------
// The lifecycle hook.

fn hook_observed(h: &SdkHook) -> Option<Observed> {
    let group = h.auto_scaling_group_name()?;
    let name = h.lifecycle_hook_name()?;
    let fields = reported([
        ("transition", h.lifecycle_transition().map(Value::str)),
        ("heartbeat_timeout", h.heartbeat_timeout().map(int)),
        ("default_result", h.default_result().map(Value::str)),
    ]);
    Some(observation(Kind::LifecycleHook, group, name, fields))
}

on_group! {
    /// `AWS::AutoScaling::LifecycleHook`, untaggable: found through the group.
    Hook: Kind::LifecycleHook, "lifecycle hook",
    describe: describe_lifecycle_hooks.set_lifecycle_hook_names(req) => answer(
        "autoscaling:DescribeLifecycleHooks",
        req.send(),
    )
    .await
    .map(|out| out.lifecycle_hooks().to_vec()),
    observed: hook_observed,
    name: lifecycle_hook_name,
    // One PutLifecycleHook with every setting.
    put: put_lifecycle_hook("autoscaling:PutLifecycleHook", req, r) => req
        .lifecycle_transition(r.str("transition")?)
        .heartbeat_timeout(r.int32("heartbeat_timeout")?)
        .default_result(r.str("default_result")?),
    remove: delete_lifecycle_hook("autoscaling:DeleteLifecycleHook"),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fields::assert_matches_spec;

    #[test]
    fn a_target_tracking_policy_is_observed_with_its_descriptors_fields() {
        let p = SdkPolicy::builder()
            .auto_scaling_group_name("demo-web")
            .policy_name("demo-web-cpu")
            .policy_arn("arn:policy")
            .policy_type("TargetTrackingScaling")
            .estimated_instance_warmup(300)
            .target_tracking_configuration(
                TargetTrackingConfiguration::builder()
                    .predefined_metric_specification(
                        PredefinedMetricSpecification::builder()
                            .predefined_metric_type(MetricType::AsgAverageCpuUtilization)
                            .build(),
                    )
                    .target_value(50.0)
                    .build(),
            )
            .build();
        let o = policy_observed(&p).unwrap();
        assert_matches_spec(&o, &[]);
        assert_eq!(o.physical_id, "demo-web/demo-web-cpu");
        assert_eq!(o.fields["metric"], Value::str("ASGAverageCPUUtilization"));
        assert_eq!(o.fields["target_value"], Value::Int(50));
        assert_eq!(o.fields["disable_scale_in"], Value::Bool(false));
        assert_eq!(o.fields["resource_label"], Value::str(""));
        assert_eq!(o.attrs["arn"], "arn:policy");
        // A step policy of the same name is not the declared target-tracking one.
        let step = SdkPolicy::builder()
            .auto_scaling_group_name("demo-web")
            .policy_name("demo-web-cpu")
            .policy_type("StepScaling")
            .build();
        assert_eq!(
            policy_observed(&step).unwrap().fields["metric"],
            Value::str("StepScaling")
        );
    }

    #[test]
    fn a_scheduled_action_and_a_hook_are_observed_with_their_descriptors_fields() {
        let a = ScheduledUpdateGroupAction::builder()
            .auto_scaling_group_name("demo-web")
            .scheduled_action_name("exam-week")
            .recurrence("0 7 * * 1-5")
            .time_zone("Europe/Madrid")
            .min_size(4)
            .max_size(8)
            .desired_capacity(4)
            .build();
        let o = schedule_observed(&a).unwrap();
        assert_matches_spec(&o, &[]);
        assert_eq!(o.physical_id, "demo-web/exam-week");
        let h = SdkHook::builder()
            .auto_scaling_group_name("demo-web")
            .lifecycle_hook_name("demo-web-drain")
            .lifecycle_transition("autoscaling:EC2_INSTANCE_TERMINATING")
            .heartbeat_timeout(300)
            .default_result("CONTINUE")
            .build();
        let o = hook_observed(&h).unwrap();
        assert_matches_spec(&o, &[]);
        assert_eq!(split(&o.physical_id), Some(("demo-web", "demo-web-drain")));
    }
}
