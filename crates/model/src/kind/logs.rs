//! CloudWatch Logs kinds: the stack's log groups and their metric filters.

use super::{f, repl, KindSpec, PhysicalId, DEFAULT, NAMED, TAGS};

// The CloudWatch Logs kinds, as rows of the kind table in `mod.rs`.
kind_list! { $ logs_kinds [
    /// A CloudWatch Logs log group (`/moodlestack/<stack>/<source>`).
    LogGroup("log_group", "AWS::Logs::LogGroup") => logs::LOG_GROUP,
    /// A metric filter of a log group (untaggable): log lines that count as a metric.
    MetricFilter("metric_filter", "AWS::Logs::MetricFilter") => logs::METRIC_FILTER,
] }

/// A log group the nodes' CloudWatch agent writes to (one stream per instance): its
/// `retention_days` and the KMS key (`kms_key_arn`) it is encrypted with, both changed in place.
/// It holds the logs of nodes that may be gone: deleting it loses them (`--allow-data-loss`).
/// `id` is the group name.
pub(super) const LOG_GROUP: KindSpec = KindSpec {
    tier: 1,
    stateful: true,
    fields: &[repl("name"), f("retention_days"), f("kms_key_arn"), TAGS],
    ..NAMED
};

/// A metric filter: the log lines of `log_group_name` matching `pattern` add `metric_value` to
/// the metric `metric_namespace`/`metric_name`. Filters cannot be tagged: one is matched by
/// (log group, name) and PutMetricFilter both creates and updates it. `id` is
/// `<log group>:<name>`.
pub(super) const METRIC_FILTER: KindSpec = KindSpec {
    physical_id: PhysicalId::Generated(""),
    tier: 2,
    fields: &[
        repl("log_group_name"),
        repl("name"),
        f("pattern"),
        f("metric_namespace"),
        f("metric_name"),
        f("metric_value"),
    ],
    identity: &["log_group_name", "name"],
    ..DEFAULT
};
