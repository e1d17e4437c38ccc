//! CloudWatch Logs: the stack's log groups ([`Kind::LogGroup`]) and their metric filters
//! ([`Kind::MetricFilter`]).
//!
//! The stack's log groups are under `/moodlestack/<stack>/`: one paginated DescribeLogGroups by
//! that prefix (or by the one name asked for), then the tags of each (ListTagsForResource, all
//! at once) say which are the stack's. A group is made with its KMS key and every tag on
//! CreateLogGroup, then given its retention (PutRetentionPolicy: CreateLogGroup takes none).
//! Metric filters cannot be tagged: they are read per log group of the stack
//! (DescribeMetricFilters, all groups at once) and matched by (group, name); PutMetricFilter
//! both creates and replaces one.

use crate::fields::delete_by;
use crate::fields::{
    all_at_once, answer, by_name, deleted, described_by, in_place_only, not_found_is_none,
    owned_id, read_back, sent, tagged, tags_value, unless_taken, untagged, usable, Reader,
};
use crate::{Clients, Created, Cx, KindOps, Query, Update};
use async_trait::async_trait;
use aws_sdk_cloudwatchlogs::types::{LogGroup, MetricFilter, MetricTransformation};
use moodlestack_model::{CloudError, Fields, Kind, Observed, Scope, Value};
use moodlestack_stack::names::{Names, LOG_SOURCES};
use std::collections::{BTreeMap, HashMap};

/// A group's ARN without the `:*` DescribeLogGroups appends (what the tagging calls take).
fn group_arn(g: &LogGroup) -> String {
    match g.log_group_arn() {
        Some(a) => a.to_string(),
        None => g
            .arn()
            .unwrap_or_default()
            .trim_end_matches(":*")
            .to_string(),
    }
}

/// The log groups named `prefix...` (every group of the stack, or the one asked for).
async fn groups(c: &Clients, prefix: &str) -> Result<Vec<LogGroup>, CloudError> {
    let req = c.logs.describe_log_groups().log_group_name_prefix(prefix);
    described_by!("logs:DescribeLogGroups", Some(prefix), req).await
}

/// `g` as the stack sees it, its tags read with one more call (None: not the stack's).
async fn group_observed(
    c: &Clients,
    scope: &Scope,
    g: &LogGroup,
) -> Result<Option<Observed>, CloudError> {
    let arn = group_arn(g);
    let req = c.logs.list_tags_for_resource().resource_arn(&arn);
    let out = not_found_is_none(answer("logs:ListTagsForResource", req.send()).await)?;
    let Some(tags) = out.map(|t| t.tags().cloned().unwrap_or_default()) else {
        return Ok(None);
    };
    Ok(observed_group(scope, g, tags.into_iter().collect()))
}

fn observed_group(scope: &Scope, g: &LogGroup, tags: BTreeMap<String, String>) -> Option<Observed> {
    let id = owned_id(scope, &tags)?;
    let name = g.log_group_name().unwrap_or_default();
    let fields = Fields::from([
        ("name".to_string(), Value::str(name)),
        (
            "retention_days".to_string(),
            g.retention_in_days()
                .map_or(Value::Null, |d| Value::Int(d.into())),
        ),
        (
            "kms_key_arn".to_string(),
            g.kms_key_id().map_or(Value::Null, Value::str),
        ),
        ("tags".to_string(), tags_value(tags)),
    ]);
    Some(usable(Kind::LogGroup, id, name, &group_arn(g), fields))
}

/// The stack's groups among those named `prefix...`, exactly `only` when given.
async fn observe_groups(
    c: &Clients,
    scope: &Scope,
    prefix: &str,
    only: Option<&str>,
) -> Result<Vec<Observed>, CloudError> {
    let found = groups(c, prefix).await?;
    all_at_once(
        found
            .iter()
            .filter(|g| only.is_none_or(|n| g.log_group_name() == Some(n)))
            .map(|g| group_observed(c, scope, g)),
    )
    .await
}

/// `AWS::Logs::LogGroup`.
pub(crate) struct Group;

#[async_trait]
impl KindOps for Group {
    async fn list(&self, cx: &Cx<'_>, q: Query<'_>) -> Result<Vec<Observed>, CloudError> {
        let prefix = Names::for_stack(&cx.scope.stack, &cx.scope.region).log_group_prefix();
        let stack = observe_groups(cx.c, cx.scope, &prefix, None);
        by_name(cx, Kind::LogGroup, q, stack, |name| async move {
            observe_groups(cx.c, cx.scope, &name, Some(&name)).await
        })
        .await
    }

    async fn create(&self, cx: &Cx<'_>, r: &Reader<'_>) -> Result<Created, CloudError> {
        let name = r.str("name")?;
        let tags = r.stack_tags(cx.scope)?;
        let req =
            cx.c.logs
                .create_log_group()
                .log_group_name(name)
                .set_kms_key_id(r.opt_str("kms_key_arn").map(str::to_string))
                .set_tags(Some(tags.into_iter().collect::<HashMap<_, _>>()));
        let taken = "ResourceAlreadyExistsException";
        if unless_taken("logs:CreateLogGroup", taken, req.send())
            .await?
            .is_none()
        {
            return Ok(Created::Exists);
        }
        if let Some(days) = r.opt_int32("retention_days")? {
            put_retention(cx.c, name, days).await?;
        }
        let found = observe_groups(cx.c, cx.scope, name, Some(name)).await?;
        tagged("logs:CreateLogGroup", name, found.into_iter().next()).map(Created::New)
    }

    async fn update(&self, cx: &Cx<'_>, u: Update<'_>) -> Result<Observed, CloudError> {
        let (current, r, changed) = u.parts();
        let name = current.physical_id.as_str();
        let c = cx.c;
        let calls = changed.iter().map(|field| async move {
            match *field {
                "retention_days" => match r.opt_int32("retention_days")? {
                    Some(days) => put_retention(c, name, days).await,
                    None => {
                        let req = c.logs.delete_retention_policy().log_group_name(name);
                        sent("logs:DeleteRetentionPolicy", req.send()).await
                    }
                },
                "kms_key_arn" => match r.opt_str("kms_key_arn") {
                    Some(key) => {
                        let req = c
                            .logs
                            .associate_kms_key()
                            .log_group_name(name)
                            .kms_key_id(key);
                        sent("logs:AssociateKmsKey", req.send()).await
                    }
                    None => {
                        let req = c.logs.disassociate_kms_key().log_group_name(name);
                        sent("logs:DisassociateKmsKey", req.send()).await
                    }
                },
                "tags" => {
                    let (arn, tags) = crate::fields::retag("logs:TagResource", current, r)?;
                    let req = c.logs.tag_resource().resource_arn(arn);
                    let req = req.set_tags(Some(tags.into_iter().collect()));
                    sent("logs:TagResource", req.send()).await
                }
                other => Err(in_place_only(current.kind, r, other, "log group")),
            }
        });
        futures::future::try_join_all(calls).await?;
        let found = observe_groups(c, cx.scope, name, Some(name)).await?;
        read_back(found.into_iter().next(), current, "logs:DescribeLogGroups")
    }

    async fn delete(&self, cx: &Cx<'_>, current: &Observed) -> Result<(), CloudError> {
        delete_by!(deleted "logs:DeleteLogGroup":
            cx.c.logs.delete_log_group().log_group_name(current))
    }
    crate::fields::settled_at_once!();
}

async fn put_retention(c: &Clients, name: &str, days: i32) -> Result<(), CloudError> {
    let req = c
        .logs
        .put_retention_policy()
        .log_group_name(name)
        .retention_in_days(days);
    sent("logs:PutRetentionPolicy", req.send()).await
}

// ---- metric filters -------------------------------------------------------------------------

/// The physical id of a filter: `<log group>:<name>` (neither may hold a colon).
fn filter_id(group: &str, name: &str) -> String {
    format!("{group}:{name}")
}

fn filter_observed(group: &str, f: &MetricFilter) -> Observed {
    let name = f.filter_name().unwrap_or_default();
    let t = f.metric_transformations().first();
    let id = filter_id(group, name);
    let fields = Fields::from([
        ("log_group_name".to_string(), Value::str(group)),
        ("name".to_string(), Value::str(name)),
        (
            "pattern".to_string(),
            Value::str(f.filter_pattern().unwrap_or_default()),
        ),
        (
            "metric_namespace".to_string(),
            t.map_or(Value::Null, |t| Value::str(t.metric_namespace())),
        ),
        (
            "metric_name".to_string(),
            t.map_or(Value::Null, |t| Value::str(t.metric_name())),
        ),
        (
            "metric_value".to_string(),
            t.map_or(Value::Null, |t| Value::str(t.metric_value())),
        ),
    ]);
    untagged(Kind::MetricFilter, id, fields, "available")
}

/// The filters of the log group `group` (named `name` only, when given).
async fn filters(
    c: &Clients,
    group: &str,
    name: Option<&str>,
) -> Result<Vec<Observed>, CloudError> {
    let req = c
        .logs
        .describe_metric_filters()
        .log_group_name(group)
        .set_filter_name_prefix(name.map(str::to_string));
    let found = described_by!("logs:DescribeMetricFilters", Some(group), req).await?;
    Ok(found
        .iter()
        .filter(|f| name.is_none_or(|n| f.filter_name() == Some(n)))
        .map(|f| filter_observed(group, f))
        .collect())
}

/// The filters of every one of `groups`, all read at once.
async fn filters_of<'a>(
    c: &Clients,
    groups: impl Iterator<Item = &'a str>,
    name: Option<&str>,
) -> Result<Vec<Observed>, CloudError> {
    all_at_once(groups.map(|g| filters(c, g, name))).await
}

/// `AWS::Logs::MetricFilter`, untaggable: found through the stack's log groups.
pub(crate) struct Filter;

#[async_trait]
impl KindOps for Filter {
    async fn list(&self, cx: &Cx<'_>, q: Query<'_>) -> Result<Vec<Observed>, CloudError> {
        match q {
            Query::Stack => {
                // The stack's groups have deterministic names: their filters are read beside the
                // groups' list and tags (not after them, a round later), then kept only for the
                // groups the list says are the stack's; a group of the stack's outside the nodes'
                // sources (none today) is read after.
                let names = Names::for_stack(&cx.scope.stack, &cx.scope.region);
                let named: Vec<String> = LOG_SOURCES.iter().map(|s| names.log_group(s)).collect();
                let (groups, found) = tokio::try_join!(
                    cx.listed(Kind::LogGroup),
                    filters_of(cx.c, named.iter().map(String::as_str), None)
                )?;
                let ours = |group: &str| groups.iter().any(|g| g.physical_id == group);
                let others = groups.iter().map(|g| g.physical_id.as_str());
                let rest = filters_of(cx.c, others.filter(|g| !named.iter().any(|n| n == g)), None);
                let mut all: Vec<Observed> = found
                    .into_iter()
                    .filter(|f| {
                        f.fields
                            .get("log_group_name")
                            .and_then(Value::as_str)
                            .is_some_and(ours)
                    })
                    .collect();
                all.extend(rest.await?);
                Ok(all)
            }
            Query::Logical { fields, .. } => {
                let (Some(group), Some(name)) = (
                    fields.get("log_group_name").and_then(Value::as_str),
                    fields.get("name").and_then(Value::as_str),
                ) else {
                    return Ok(Vec::new());
                };
                filters(cx.c, group, Some(name)).await
            }
            Query::Physical(id) => match id.split_once(':') {
                Some((group, name)) => filters(cx.c, group, Some(name)).await,
                None => Ok(Vec::new()),
            },
        }
    }

    async fn create(&self, cx: &Cx<'_>, r: &Reader<'_>) -> Result<Created, CloudError> {
        put_filter(cx.c, r).await?;
        let o = filter_observed(r.str("log_group_name")?, &filter_of(r)?);
        Ok(Created::made(r, o))
    }

    /// PutMetricFilter with every field: it replaces the filter of that name.
    async fn update(&self, cx: &Cx<'_>, u: Update<'_>) -> Result<Observed, CloudError> {
        let (current, r, changed) = u.parts();
        if let Some(field) = changed
            .iter()
            .find(|f| matches!(**f, "log_group_name" | "name"))
        {
            return Err(in_place_only(current.kind, r, field, "metric filter"));
        }
        put_filter(cx.c, r).await?;
        let mut o = filter_observed(r.str("log_group_name")?, &filter_of(r)?);
        o.id = current.id.clone();
        Ok(o)
    }

    async fn delete(&self, cx: &Cx<'_>, current: &Observed) -> Result<(), CloudError> {
        let (group, name) = current
            .physical_id
            .split_once(':')
            .unwrap_or((current.physical_id.as_str(), ""));
        let req =
            cx.c.logs
                .delete_metric_filter()
                .log_group_name(group)
                .filter_name(name);
        deleted("logs:DeleteMetricFilter", req.send()).await
    }
    crate::fields::settled_at_once!();
}

/// The filter `r` describes, in the SDK's shape.
fn filter_of(r: &Reader<'_>) -> Result<MetricFilter, CloudError> {
    Ok(MetricFilter::builder()
        .filter_name(r.str("name")?)
        .filter_pattern(r.str("pattern")?)
        .log_group_name(r.str("log_group_name")?)
        .metric_transformations(transformation(r)?)
        .build())
}

fn transformation(r: &Reader<'_>) -> Result<MetricTransformation, CloudError> {
    MetricTransformation::builder()
        .metric_name(r.str("metric_name")?)
        .metric_namespace(r.str("metric_namespace")?)
        .metric_value(r.str("metric_value")?)
        .build()
        .map_err(|e| CloudError::UnexpectedAnswer {
            operation: "logs:PutMetricFilter".into(),
            what: e.to_string(),
        })
}

async fn put_filter(c: &Clients, r: &Reader<'_>) -> Result<(), CloudError> {
    let req = c
        .logs
        .put_metric_filter()
        .log_group_name(r.str("log_group_name")?)
        .filter_name(r.str("name")?)
        .filter_pattern(r.str("pattern")?)
        .metric_transformations(transformation(r)?);
    sent("logs:PutMetricFilter", req.send()).await
}

/// This file's kinds under their [`Kind`](moodlestack_model::Kind) names, for the registry
/// [`ops`](crate::ops).
pub(crate) mod kinds {
    pub(crate) use super::{Filter as MetricFilter, Group as LogGroup};
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fields::{assert_matches_spec, test_scope};
    use moodlestack_model::{identity_tags, ObservedId};

    #[test]
    fn a_log_group_is_observed_with_exactly_its_descriptors_fields() {
        let g = LogGroup::builder()
            .log_group_name("/moodlestack/demo/php-fpm")
            .arn("arn:aws:logs:eu-west-1:123456789012:log-group:/moodlestack/demo/php-fpm:*")
            .retention_in_days(30)
            .kms_key_id("arn:aws:kms:eu-west-1:123456789012:key/k-1")
            .build();
        let tags = identity_tags(&test_scope("demo"), &"logs.php-fpm");
        let o = observed_group(&test_scope("demo"), &g, tags).unwrap();
        assert_matches_spec(&o, &[]);
        assert_eq!(o.fields["retention_days"], Value::Int(30));
        assert_eq!(
            o.attrs["arn"],
            "arn:aws:logs:eu-west-1:123456789012:log-group:/moodlestack/demo/php-fpm"
        );
        assert!(observed_group(&test_scope("other"), &g, BTreeMap::new()).is_none());
    }

    #[test]
    fn a_metric_filter_is_observed_untagged_under_its_group_and_name() {
        let f = MetricFilter::builder()
            .filter_name("demo-fpm-max-children")
            .filter_pattern("\"reached pm.max_children\"")
            .metric_transformations(
                MetricTransformation::builder()
                    .metric_name("FpmMaxChildrenReached")
                    .metric_namespace("Moodlestack/demo")
                    .metric_value("1")
                    .build()
                    .unwrap(),
            )
            .build();
        let o = filter_observed("/moodlestack/demo/php-fpm", &f);
        assert_matches_spec(&o, &[]);
        assert_eq!(
            o.id,
            ObservedId::Untagged("/moodlestack/demo/php-fpm:demo-fpm-max-children".into())
        );
        assert_eq!(o.fields["metric_value"], Value::str("1"));
    }
}
