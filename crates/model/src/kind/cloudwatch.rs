//! CloudWatch kinds: the stack's metric alarms and its dashboard.

use super::{f, repl, set, KindSpec, DEFAULT, NAMED, TAGS};

// The CloudWatch kinds, as rows of the kind table in `mod.rs`.
kind_list! { $ cloudwatch_kinds [
    /// A CloudWatch metric alarm (`<stack>-<what>`).
    MetricAlarm("metric_alarm", "AWS::CloudWatch::Alarm") => cloudwatch::ALARM,
    /// A CloudWatch dashboard (untaggable).
    Dashboard("dashboard", "AWS::CloudWatch::Dashboard") => cloudwatch::DASHBOARD,
] }

/// A metric alarm: one metric (`namespace`, `metric_name`, `dimensions` (a map), `statistic`,
/// `period` seconds) or, instead, metric math (`metrics`: the MetricDataQuery list as compact
/// JSON, keys sorted), compared with `threshold` (a decimal number as text, `2.5`) by
/// `comparison` over `evaluation_periods` (of which `datapoints_to_alarm` must breach), with
/// `treat_missing_data`; `alarm_actions` and `ok_actions` are the topics it notifies. Every
/// field but the name changes in place (PutMetricAlarm rewrites the alarm). `id` is the alarm
/// name.
pub(super) const ALARM: KindSpec = KindSpec {
    tier: 10,
    fields: &[
        repl("name"),
        f("description"),
        f("namespace"),
        f("metric_name"),
        f("dimensions"),
        f("statistic"),
        f("period"),
        f("metrics"),
        f("evaluation_periods"),
        f("datapoints_to_alarm"),
        f("threshold"),
        f("comparison"),
        f("treat_missing_data"),
        set("alarm_actions"),
        set("ok_actions"),
        TAGS,
    ],
    ..NAMED
};

/// A dashboard: its `body` (CloudWatch's dashboard JSON, compact, keys sorted). Dashboards
/// cannot be tagged: one is the stack's by its deterministic name, and PutDashboard both
/// creates and updates it. `id` is the dashboard name.
pub(super) const DASHBOARD: KindSpec = KindSpec {
    tier: 10,
    fields: &[repl("name"), f("body")],
    name_field: Some("name"),
    identity: &["name"],
    attrs: &["id", "arn"],
    ..DEFAULT
};
