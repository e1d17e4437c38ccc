//! CloudWatch: the stack's metric alarms ([`Kind::MetricAlarm`]) and its dashboard
//! ([`Kind::Dashboard`]).
//!
//! The stack's alarms are named `<stack>-...`: one paginated DescribeAlarms by that prefix (or by
//! the one name asked for), then the tags of each candidate (ListTagsForResource, all at once)
//! say which are the stack's. PutMetricAlarm both creates and rewrites an alarm and says nothing
//! when the name is taken, so a create looks first and leaves an alarm of that name alone
//! (`Created::Exists`: the generic code adopts ours, refuses another's). Tags travel on the
//! create; PutMetricAlarm ignores them on an update, so changed tags go with TagResource.
//!
//! Dashboards cannot be tagged: the stack's is the one of its deterministic name
//! (`moodlestack-<stack>`), read with GetDashboard and written whole with PutDashboard.

use crate::fields::delete_by;
use crate::fields::{
    all_pages, answer, canonical_json, in_place_only, int, not_found_is_none, owned_id, read_back,
    sent, tag_map, tagged, tags_value, unexpected, usable, Names, Reader,
};
use crate::{Clients, Created, Cx, KindOps, Query, Update};
use async_trait::async_trait;
use aws_sdk_cloudwatch::types::{
    AlarmType, ComparisonOperator, Dimension, Metric, MetricAlarm, MetricDataQuery, MetricStat,
    Statistic, Tag,
};
use moodlestack_model::{CloudError, Fields, Kind, Observed, ObservedId, Scope, Value};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

// ---- metric math in the `metrics` field -----------------------------------------------------

/// One query of an alarm's metric math, as the `metrics` field spells it: CloudWatch's
/// MetricDataQuery in its API's own names, so the JSON reads like the documentation.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
struct MathQuery {
    id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    expression: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    label: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    metric_stat: Option<Stat>,
    return_data: bool,
}

#[derive(Debug, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
#[allow(clippy::struct_field_names)] // `Stat` is AWS's name for the statistic
struct Stat {
    namespace: String,
    metric_name: String,
    #[serde(default)]
    dimensions: BTreeMap<String, String>,
    period: i32,
    stat: String,
}

/// The `metrics` field of what AWS reports (Null: a single-metric alarm).
fn metrics_value(queries: &[MetricDataQuery]) -> Value {
    if queries.is_empty() {
        return Value::Null;
    }
    let ours: Vec<MathQuery> = queries
        .iter()
        .map(|q| MathQuery {
            id: q.id().unwrap_or_default().to_string(),
            expression: q.expression().map(str::to_string),
            label: q.label().map(str::to_string),
            metric_stat: q.metric_stat().map(|s| Stat {
                namespace: s
                    .metric()
                    .and_then(|m| m.namespace())
                    .unwrap_or_default()
                    .to_string(),
                metric_name: s
                    .metric()
                    .and_then(|m| m.metric_name())
                    .unwrap_or_default()
                    .to_string(),
                dimensions: s
                    .metric()
                    .map(|m| dimension_map(m.dimensions()))
                    .unwrap_or_default(),
                period: s.period().unwrap_or_default(),
                stat: s.stat().unwrap_or_default().to_string(),
            }),
            return_data: q.return_data().unwrap_or(true),
        })
        .collect();
    Value::str(canonical_json(
        &serde_json::to_string(&ours).unwrap_or_default(),
    ))
}

/// The SDK's queries from the `metrics` field.
fn metric_queries(r: &Reader<'_>) -> Result<Option<Vec<MetricDataQuery>>, CloudError> {
    let Some(text) = r.opt_str("metrics") else {
        return Ok(None);
    };
    let parsed: Vec<MathQuery> = serde_json::from_str(text).map_err(|e| CloudError::Field {
        kind: r.kind,
        id: r.id.clone(),
        field: "metrics".into(),
        problem: format!("not a list of metric queries: {e}"),
    })?;
    let queries = parsed
        .into_iter()
        .map(|q| {
            let stat = q.metric_stat.map(|s| {
                let metric = Metric::builder()
                    .namespace(s.namespace)
                    .metric_name(s.metric_name)
                    .set_dimensions(Some(dimensions(&s.dimensions)))
                    .build();
                MetricStat::builder()
                    .metric(metric)
                    .period(s.period)
                    .stat(s.stat)
                    .build()
            });
            MetricDataQuery::builder()
                .id(q.id)
                .set_expression(q.expression)
                .set_label(q.label)
                .set_metric_stat(stat)
                .return_data(q.return_data)
                .build()
        })
        .collect();
    Ok(Some(queries))
}

fn dimension_map(d: &[Dimension]) -> BTreeMap<String, String> {
    d.iter()
        .filter_map(|d| Some((d.name()?.to_string(), d.value()?.to_string())))
        .collect()
}

fn dimensions(m: &BTreeMap<String, String>) -> Vec<Dimension> {
    m.iter()
        .map(|(k, v)| Dimension::builder().name(k).value(v).build())
        .collect()
}

// ---- alarms ---------------------------------------------------------------------------------

/// A threshold as the `threshold` field spells it: the shortest decimal (`5`, `2.5`).
fn threshold_text(v: f64) -> String {
    format!("{v}")
}

fn alarm_observed(
    scope: &Scope,
    a: &MetricAlarm,
    tags: BTreeMap<String, String>,
) -> Option<Observed> {
    let id = owned_id(scope, &tags)?;
    let name = a.alarm_name().unwrap_or_default();
    let opt_str = |v: Option<&str>| v.map_or(Value::Null, Value::str);
    let opt_int = |v: Option<i32>| v.map_or(Value::Null, int);
    let dims = dimension_map(a.dimensions());
    let statistic = a
        .extended_statistic()
        .map(str::to_string)
        .or_else(|| a.statistic().map(|s| s.as_str().to_string()));
    let fields = Fields::from([
        ("name".to_string(), Value::str(name)),
        ("description".to_string(), opt_str(a.alarm_description())),
        ("namespace".to_string(), opt_str(a.namespace())),
        ("metric_name".to_string(), opt_str(a.metric_name())),
        (
            "dimensions".to_string(),
            if dims.is_empty() {
                Value::Null
            } else {
                tags_value(dims)
            },
        ),
        ("statistic".to_string(), opt_str(statistic.as_deref())),
        ("period".to_string(), opt_int(a.period())),
        ("metrics".to_string(), metrics_value(a.metrics())),
        (
            "evaluation_periods".to_string(),
            opt_int(a.evaluation_periods()),
        ),
        (
            "datapoints_to_alarm".to_string(),
            opt_int(a.datapoints_to_alarm()),
        ),
        (
            "threshold".to_string(),
            a.threshold()
                .map_or(Value::Null, |t| Value::str(threshold_text(t))),
        ),
        (
            "comparison".to_string(),
            opt_str(a.comparison_operator().map(ComparisonOperator::as_str)),
        ),
        (
            "treat_missing_data".to_string(),
            opt_str(a.treat_missing_data()),
        ),
        ("alarm_actions".to_string(), Value::strs(a.alarm_actions())),
        ("ok_actions".to_string(), Value::strs(a.ok_actions())),
        ("tags".to_string(), tags_value(tags)),
    ]);
    Some(usable(
        Kind::MetricAlarm,
        id,
        name,
        a.alarm_arn().unwrap_or_default(),
        fields,
    ))
}

/// The metric alarms named `name`, or all whose names start with `prefix`.
async fn alarms(
    c: &Clients,
    prefix: &str,
    name: Option<&str>,
) -> Result<Vec<MetricAlarm>, CloudError> {
    let req = c
        .cloudwatch
        .describe_alarms()
        .alarm_types(AlarmType::MetricAlarm)
        .set_alarm_names(name.map(|n| vec![n.to_string()]))
        .set_alarm_name_prefix(name.is_none().then(|| prefix.to_string()));
    let pages = req.into_paginator().send().try_collect().await;
    all_pages("cloudwatch:DescribeAlarms", pages, |p| p.metric_alarms())
}

/// The stack's alarms among those `names` asks for, their tags read all at once.
async fn observe_alarms(
    c: &Clients,
    scope: &Scope,
    names: &Names,
) -> Result<Vec<Observed>, CloudError> {
    let prefix = format!("{}-", scope.stack);
    let found = alarms(c, &prefix, names.one()).await?;
    crate::fields::observe_named(
        names,
        found,
        |a| a.alarm_name(),
        |a| async move {
            let arn = a.alarm_arn().unwrap_or_default();
            let req = c.cloudwatch.list_tags_for_resource().resource_arn(arn);
            let tags =
                not_found_is_none(answer("cloudwatch:ListTagsForResource", req.send()).await)?;
            Ok(tags.and_then(|t| alarm_observed(scope, &a, tag_map(t.tags()))))
        },
    )
    .await
}

/// PutMetricAlarm with every field of `r` (and `tags`, which only a create applies).
async fn put_alarm(c: &Clients, r: &Reader<'_>, tags: Vec<Tag>) -> Result<(), CloudError> {
    let threshold: f64 = r.str("threshold")?.parse().map_err(|_| CloudError::Field {
        kind: r.kind,
        id: r.id.clone(),
        field: "threshold".into(),
        problem: "not a number".into(),
    })?;
    let (statistic, extended) = match r.opt_str("statistic") {
        Some(s) if s.starts_with('p') => (None, Some(s.to_string())),
        Some(s) => (Some(Statistic::from(s)), None),
        None => (None, None),
    };
    let dims = match r.fields.get("dimensions") {
        Some(Value::Map(_)) => Some(dimensions(&r.string_map("dimensions")?)),
        _ => None,
    };
    let req = c
        .cloudwatch
        .put_metric_alarm()
        .alarm_name(r.str("name")?)
        .set_alarm_description(r.opt_str("description").map(str::to_string))
        .set_namespace(r.opt_str("namespace").map(str::to_string))
        .set_metric_name(r.opt_str("metric_name").map(str::to_string))
        .set_dimensions(dims)
        .set_statistic(statistic)
        .set_extended_statistic(extended)
        .set_period(r.opt_int32("period")?)
        .set_metrics(metric_queries(r)?)
        .evaluation_periods(r.int32("evaluation_periods")?)
        .set_datapoints_to_alarm(r.opt_int32("datapoints_to_alarm")?)
        .threshold(threshold)
        .comparison_operator(ComparisonOperator::from(r.str("comparison")?))
        .set_treat_missing_data(r.opt_str("treat_missing_data").map(str::to_string))
        .set_alarm_actions(Some(r.strs_or_empty("alarm_actions")?))
        .set_ok_actions(Some(r.strs_or_empty("ok_actions")?))
        .set_tags((!tags.is_empty()).then_some(tags));
    sent("cloudwatch:PutMetricAlarm", req.send()).await
}

fn sdk_tags(tags: &BTreeMap<String, String>) -> Vec<Tag> {
    tags.iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect()
}

/// `AWS::CloudWatch::Alarm`.
pub(crate) struct Alarm;

#[async_trait]
impl KindOps for Alarm {
    async fn list(&self, cx: &Cx<'_>, q: Query<'_>) -> Result<Vec<Observed>, CloudError> {
        let Some(names) = Names::asked(cx, Kind::MetricAlarm, q) else {
            return Ok(Vec::new());
        };
        observe_alarms(cx.c, cx.scope, &names).await
    }

    async fn create(&self, cx: &Cx<'_>, r: &Reader<'_>) -> Result<Created, CloudError> {
        let name = r.str("name")?;
        // PutMetricAlarm would silently rewrite an alarm of that name, ours or not.
        if !alarms(cx.c, "", Some(name)).await?.is_empty() {
            return Ok(Created::Exists);
        }
        let tags = r.stack_tags(cx.scope)?;
        put_alarm(cx.c, r, sdk_tags(&tags)).await?;
        // Read back for its ARN and its fields as CloudWatch keeps them; its tags are those the
        // create just applied (no ListTagsForResource round).
        let found = alarms(cx.c, "", Some(name)).await?;
        let made = found
            .first()
            .and_then(|a| alarm_observed(cx.scope, a, tags));
        tagged("cloudwatch:PutMetricAlarm", name, made).map(Created::New)
    }

    async fn update(&self, cx: &Cx<'_>, u: Update<'_>) -> Result<Observed, CloudError> {
        let (current, r, changed) = u.parts();
        if changed.contains(&"name") {
            return Err(in_place_only(current.kind, r, "name", "alarm"));
        }
        if changed.iter().any(|f| *f != "tags") {
            put_alarm(cx.c, r, Vec::new()).await?;
        }
        if changed.contains(&"tags") {
            let (arn, tags) = crate::fields::retag("cloudwatch:TagResource", current, r)?;
            let req = cx.c.cloudwatch.tag_resource().resource_arn(arn);
            let req = req.set_tags(Some(sdk_tags(&tags)));
            sent("cloudwatch:TagResource", req.send()).await?;
        }
        let name = current.physical_id.as_str();
        let found = observe_alarms(cx.c, cx.scope, &Names::One(name.to_string())).await?;
        read_back(
            found.into_iter().next(),
            current,
            "cloudwatch:DescribeAlarms",
        )
    }

    async fn delete(&self, cx: &Cx<'_>, current: &Observed) -> Result<(), CloudError> {
        delete_by!(deleted "cloudwatch:DeleteAlarms":
            cx.c.cloudwatch.delete_alarms().alarm_names(current))
    }
    crate::fields::settled_at_once!();
}

// ---- dashboards -----------------------------------------------------------------------------

fn dashboard_observed(name: &str, arn: &str, body: &str) -> Observed {
    let fields = Fields::from([
        ("name".to_string(), Value::str(name)),
        ("body".to_string(), Value::str(canonical_json(body))),
    ]);
    Observed {
        id: ObservedId::Untagged(name.to_string()),
        ..usable(Kind::Dashboard, name.into(), name, arn, fields)
    }
}

/// The dashboard `name` (None: it does not exist).
async fn dashboard(c: &Clients, name: &str) -> Result<Option<Observed>, CloudError> {
    let req = c.cloudwatch.get_dashboard().dashboard_name(name);
    let d = not_found_is_none(answer("cloudwatch:GetDashboard", req.send()).await)?;
    Ok(d.map(|d| {
        let body = d.dashboard_body().unwrap_or_default();
        dashboard_observed(name, d.dashboard_arn().unwrap_or_default(), body)
    }))
}

/// The name of the stack's dashboard.
fn own_dashboard(scope: &Scope) -> String {
    moodlestack_stack::names::Names::for_stack(&scope.stack, &scope.region).dashboard()
}

/// `AWS::CloudWatch::Dashboard`, untaggable: the stack's is the one of its deterministic name.
pub(crate) struct Dashboard;

#[async_trait]
impl KindOps for Dashboard {
    async fn list(&self, cx: &Cx<'_>, q: Query<'_>) -> Result<Vec<Observed>, CloudError> {
        let own = own_dashboard(cx.scope);
        let name = match q {
            Query::Stack => own,
            // Only the stack's own name is the stack's: another stack asking for it finds
            // nothing (and its create is refused as the name being taken).
            Query::Logical { fields, .. } => match fields.get("name").and_then(Value::as_str) {
                Some(n) if n == own => own,
                _ => return Ok(Vec::new()),
            },
            Query::Physical(name) => name.to_string(),
        };
        Ok(dashboard(cx.c, &name).await?.into_iter().collect())
    }

    /// PutDashboard with the whole body (when no dashboard has the name: PutDashboard would
    /// overwrite it), then its ARN read back.
    async fn create(&self, cx: &Cx<'_>, r: &Reader<'_>) -> Result<Created, CloudError> {
        let name = r.str("name")?;
        if dashboard(cx.c, name).await?.is_some() {
            return Ok(Created::Exists);
        }
        put_dashboard(cx.c, r).await?;
        let o = dashboard(cx.c, name)
            .await?
            .ok_or_else(|| unexpected("cloudwatch:PutDashboard", format!("{name} is not there")))?;
        Ok(Created::made(r, o))
    }

    async fn update(&self, cx: &Cx<'_>, u: Update<'_>) -> Result<Observed, CloudError> {
        let (current, r, changed) = u.parts();
        if changed.contains(&"name") {
            return Err(in_place_only(current.kind, r, "name", "dashboard"));
        }
        put_dashboard(cx.c, r).await?;
        Ok(crate::fields::with_changes(current, r, changed))
    }

    async fn delete(&self, cx: &Cx<'_>, current: &Observed) -> Result<(), CloudError> {
        delete_by!(deleted "cloudwatch:DeleteDashboards":
            cx.c.cloudwatch.delete_dashboards().dashboard_names(current))
    }
    crate::fields::settled_at_once!();
}

/// PutDashboard; CloudWatch's validation messages (a widget it cannot draw) are an error.
async fn put_dashboard(c: &Clients, r: &Reader<'_>) -> Result<(), CloudError> {
    let req = c
        .cloudwatch
        .put_dashboard()
        .dashboard_name(r.str("name")?)
        .dashboard_body(r.str("body")?);
    let out = answer("cloudwatch:PutDashboard", req.send()).await?;
    match out.dashboard_validation_messages().first() {
        Some(m) => Err(CloudError::Field {
            kind: r.kind,
            id: r.id.clone(),
            field: "body".into(),
            problem: format!(
                "{} (at {})",
                m.message().unwrap_or_default(),
                m.data_path().unwrap_or("the body")
            ),
        }),
        None => Ok(()),
    }
}

/// This file's kinds under their [`Kind`](moodlestack_model::Kind) names, for the registry
/// [`ops`](crate::ops).
pub(crate) mod kinds {
    pub(crate) use super::{Alarm as MetricAlarm, Dashboard};
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fields::{assert_matches_spec, test_scope};
    use moodlestack_model::identity_tags;

    #[test]
    fn an_alarm_is_observed_with_exactly_its_descriptors_fields() {
        let a = MetricAlarm::builder()
            .alarm_name("demo-db-cpu")
            .alarm_arn("arn:aws:cloudwatch:eu-west-1:123456789012:alarm:demo-db-cpu")
            .namespace("AWS/RDS")
            .metric_name("CPUUtilization")
            .dimensions(
                Dimension::builder()
                    .name("DBInstanceIdentifier")
                    .value("demo-db")
                    .build(),
            )
            .statistic(Statistic::Average)
            .period(300)
            .evaluation_periods(3)
            .datapoints_to_alarm(3)
            .threshold(80.0)
            .comparison_operator(ComparisonOperator::GreaterThanThreshold)
            .treat_missing_data("missing")
            .alarm_actions("arn:aws:sns:eu-west-1:123456789012:demo-alerts")
            .build();
        let tags = identity_tags(&test_scope("demo"), &"alarm.db-cpu");
        let o = alarm_observed(&test_scope("demo"), &a, tags).unwrap();
        assert_matches_spec(&o, &[]);
        assert_eq!(o.fields["threshold"], Value::str("80"));
        assert_eq!(o.fields["metrics"], Value::Null);
        assert_eq!(o.fields["statistic"], Value::str("Average"));
    }

    #[test]
    fn metric_math_round_trips_through_the_metrics_field() {
        let text = r#"[{"Id":"m1","MetricStat":{"Dimensions":{"FileSystemId":"fs-1"},"MetricName":"MeteredIOBytes","Namespace":"AWS/EFS","Period":300,"Stat":"Sum"},"ReturnData":false},{"Expression":"100*m1","Id":"e1","Label":"use","ReturnData":true}]"#;
        let fields = Fields::from([("metrics".to_string(), Value::str(text))]);
        let r = Reader::new(Kind::MetricAlarm, "alarm.efs", &fields);
        let queries = metric_queries(&r).unwrap().unwrap();
        assert_eq!(queries.len(), 2);
        assert_eq!(metrics_value(&queries), Value::str(text));
    }

    #[test]
    fn a_dashboard_is_observed_untagged_by_its_name() {
        let o = dashboard_observed("moodlestack-demo", "arn:d", r#"{"widgets": []}"#);
        assert_matches_spec(&o, &[]);
        assert_eq!(o.id, ObservedId::Untagged("moodlestack-demo".into()));
        assert_eq!(o.fields["body"], Value::str(r#"{"widgets":[]}"#));
    }
}
