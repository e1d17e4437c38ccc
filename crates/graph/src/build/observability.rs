//! Observability (`observability`): the KMS key, the nodes' log groups and their metric filters,
//! the alert topic and its e-mail subscriptions, the alarms and the dashboard.
//!
//! Names all parts of moodlestack share (the nodes' CloudWatch agent, the cron heartbeat, the
//! `status` and `logs` commands): log groups `/moodlestack/<stack>/<source>` for
//! [`LOG_SOURCES`], one stream per instance id; metrics in the namespace `Moodlestack/<stack>`
//! without dimensions: [`CRON_HEARTBEAT`] (the stable node, value 1 after each successful cron
//! run), [`FPM_MAX_CHILDREN`] and [`SLOW_REQUESTS`] (metric filters); alarms `<stack>-<what>`.

use super::{canonical_json, id_ref, ids, Builder};
use crate::interp::{interpolate, marker};
use moodlestack_model::{Kind, Resource, Value};
use serde_json::json;
use std::collections::BTreeMap;

/// The nodes' log sources (each a group `/moodlestack/<stack>/<source>`) and the cron heartbeat
/// metric, named once in the stack crate (the nodes' files use them too).
pub use moodlestack_stack::names::{CRON_HEARTBEAT, LOG_SOURCES};
/// The metric of PHP-FPM's "server reached pm.max_children" warnings (a metric filter).
pub const FPM_MAX_CHILDREN: &str = "FpmMaxChildrenReached";
/// The metric of PHP-FPM's slow-log entries (a metric filter).
pub const SLOW_REQUESTS: &str = "SlowRequests";

/// CloudWatch Logs filter patterns: a quoted term matches lines containing it.
const FPM_MAX_CHILDREN_PATTERN: &str = "\"reached pm.max_children\"";
/// Every slow-log entry names its script once (`script_filename = /var/www/...`).
const SLOW_REQUEST_PATTERN: &str = "\"script_filename\"";

const ALB: &str = "AWS/ApplicationELB";
const RDS: &str = "AWS/RDS";
const REDIS: &str = "AWS/ElastiCache";
const GIB: f64 = 1024.0 * 1024.0 * 1024.0;
const MIB: f64 = 1024.0 * 1024.0;

/// The group metrics the web fleet publishes each minute (Auto Scaling's group metrics are
/// free at 1-minute granularity; none are published unless enabled).
pub const GROUP_METRICS: &[&str] = &[
    "GroupDesiredCapacity",
    "GroupInServiceInstances",
    "GroupMaxSize",
    "GroupMinSize",
    "GroupPendingInstances",
    "GroupTerminatingInstances",
];

/// The logical id of the log group of `source` (`logs.php_fpm_slow`).
pub fn log_group_id(source: &str) -> String {
    format!("logs.{}", source.replace('-', "_"))
}

/// What one alarm watches.
enum Watch<'a> {
    /// One metric of `namespace` with `dimensions`, its `statistic` over `period` seconds.
    Metric {
        namespace: String,
        name: &'a str,
        dimensions: Vec<(&'a str, Value)>,
        statistic: &'a str,
        period: i64,
    },
    /// Metric math: the MetricDataQuery list (JSON, with reference markers).
    Math(serde_json::Value),
}

/// One alarm: `what` (its name is `<stack>-<what>`), the metric, and when it fires.
struct Alarm<'a> {
    what: &'a str,
    description: String,
    watch: Watch<'a>,
    /// Periods evaluated; all must breach.
    periods: i64,
    threshold: f64,
    comparison: &'a str,
    missing: &'a str,
}

/// One query of metric math: a metric's statistic over `period`, not returned.
fn stat(
    id: &str,
    namespace: &str,
    name: &str,
    dims: serde_json::Value,
    stat: &str,
    period: i64,
) -> serde_json::Value {
    json!({"Id": id, "MetricStat": {"Dimensions": dims, "MetricName": name,
        "Namespace": namespace, "Period": period, "Stat": stat}, "ReturnData": false})
}

/// The expression a metric math alarm compares.
fn expression(expr: &str, label: &str) -> serde_json::Value {
    json!({"Expression": expr, "Id": "result", "Label": label, "ReturnData": true})
}

impl Builder<'_> {
    /// The KMS key and the log groups (before the nodes: they write there from their first
    /// boot), and the metric filters.
    pub(super) fn logs(&mut self) {
        let o = &self.stack.observability;
        let region = self.stack.region.as_str();
        let partition = moodlestack_model::cloud::partition(region);
        let account = self.image.account_id.as_str();
        let root = format!("arn:{partition}:iam::{account}:root");
        let groups = format!(
            "arn:{partition}:logs:{region}:{account}:log-group:{}*",
            self.names.log_group_prefix()
        );
        let policy = json!({
            "Statement": [
                {
                    "Action": "kms:*",
                    "Effect": "Allow",
                    "Principal": {"AWS": root},
                    "Resource": "*",
                    "Sid": "Account",
                },
                {
                    "Action": ["kms:Decrypt*", "kms:Describe*", "kms:Encrypt*",
                        "kms:GenerateDataKey*", "kms:ReEncrypt*"],
                    "Condition": {"ArnLike": {"kms:EncryptionContext:aws:logs:arn": groups}},
                    "Effect": "Allow",
                    "Principal": {"Service": format!("logs.{region}.amazonaws.com")},
                    "Resource": "*",
                    "Sid": "StackLogGroups",
                },
                {
                    // Alarms publish to the encrypted alert topic.
                    "Action": ["kms:Decrypt", "kms:GenerateDataKey*"],
                    "Effect": "Allow",
                    "Principal": {"Service": "cloudwatch.amazonaws.com"},
                    "Resource": "*",
                    "Sid": "AlarmsToAlertTopic",
                },
            ],
            "Version": "2012-10-17",
        });
        let key = self
            .res(ids::OBSERVE_KEY, Kind::KmsKey)
            .with("alias", self.names.kms_alias())
            .with("description", self.description("logs and alerts"))
            .with("policy", canonical_json(&policy))
            .with("rotation", true);
        self.push(key);
        for source in LOG_SOURCES {
            let group = self
                .res(&log_group_id(source), Kind::LogGroup)
                .with("name", self.names.log_group(source))
                .with("retention_days", o.log_retention_days)
                .with("kms_key_arn", Value::reference(ids::OBSERVE_KEY, "arn"));
            self.push(group);
        }
        let namespace = self.names.metric_namespace();
        for (id, source, name, metric, pattern) in [
            (
                ids::FILTER_FPM_MAX_CHILDREN,
                "php-fpm",
                "fpm-max-children",
                FPM_MAX_CHILDREN,
                FPM_MAX_CHILDREN_PATTERN,
            ),
            (
                ids::FILTER_SLOW_REQUESTS,
                "php-fpm-slow",
                "slow-requests",
                SLOW_REQUESTS,
                SLOW_REQUEST_PATTERN,
            ),
        ] {
            // Not taggable: no `tags` field.
            let filter = Resource::new(id, Kind::MetricFilter)
                .with("log_group_name", id_ref(&log_group_id(source)))
                .with("name", self.names.alarm(name))
                .with("pattern", pattern)
                .with("metric_namespace", namespace.as_str())
                .with("metric_name", metric)
                .with("metric_value", "1");
            self.push(filter);
        }
    }

    /// The alert topic and its subscriptions, the alarms and the dashboard (after the load
    /// balancer, the fleet, the database, the cache and the file system they watch).
    pub(super) fn alerts(&mut self) -> Result<(), crate::GraphError> {
        let o = &self.stack.observability;
        let topic = self
            .res(ids::ALERTS_TOPIC, Kind::SnsTopic)
            .with("name", self.names.alert_topic())
            .with("display_name", format!("moodlestack {}", self.stack.name))
            .with("kms_key_id", Value::reference(ids::OBSERVE_KEY, "arn"));
        self.push(topic);
        for (i, email) in o.alert_emails.iter().enumerate() {
            // Not taggable: no `tags` field.
            let sub = Resource::new(ids::alert_email(i), Kind::SnsSubscription)
                .with("topic_arn", Value::reference(ids::ALERTS_TOPIC, "arn"))
                .with("protocol", "email")
                .with("endpoint", email.as_str());
            self.push(sub);
        }
        for alarm in self.alarm_list() {
            let r = self.alarm(alarm)?;
            self.push(r);
        }
        let body = self.dashboard_body();
        let body = interpolate(&canonical_json(&body), "dashboard body")?;
        let dashboard = Resource::new(ids::DASHBOARD, Kind::Dashboard)
            .with("name", self.names.dashboard())
            .with("body", body);
        self.push(dashboard);
        Ok(())
    }

    fn alarm(&self, a: Alarm<'_>) -> Result<Resource, crate::GraphError> {
        let topic = || Value::List(vec![Value::reference(ids::ALERTS_TOPIC, "arn")]);
        let mut r = self
            .res(
                &format!("alarm.{}", a.what.replace('-', "_")),
                Kind::MetricAlarm,
            )
            .with("name", self.names.alarm(a.what))
            .with("description", a.description)
            .with("evaluation_periods", a.periods)
            .with("datapoints_to_alarm", a.periods)
            .with("threshold", format!("{}", a.threshold))
            .with("comparison", a.comparison)
            .with("treat_missing_data", a.missing)
            .with("alarm_actions", topic())
            .with("ok_actions", topic());
        match a.watch {
            Watch::Metric {
                namespace,
                name,
                dimensions,
                statistic,
                period,
            } => {
                r = r
                    .with("namespace", namespace.as_str())
                    .with("metric_name", name)
                    .with("statistic", statistic)
                    .with("period", period);
                if !dimensions.is_empty() {
                    let dims: BTreeMap<String, Value> = dimensions
                        .into_iter()
                        .map(|(k, v)| (k.to_string(), v))
                        .collect();
                    r = r.with("dimensions", Value::Map(dims));
                }
            }
            Watch::Math(queries) => {
                let what = format!("alarm {} metrics", a.what);
                r = r.with("metrics", interpolate(&canonical_json(&queries), &what)?);
            }
        }
        Ok(r)
    }

    /// The database's dimension: the cluster for Aurora, the instance otherwise.
    fn db_dimension(&self) -> (&'static str, Value) {
        let name = self.names.db_identifier();
        if self.stack.database.engine.is_aurora() {
            ("DBClusterIdentifier", Value::str(name))
        } else {
            ("DBInstanceIdentifier", Value::str(name))
        }
    }

    /// The Redis members' cluster ids (`<group>-001`, ...): ElastiCache reports memory and
    /// evictions per member, and the primary moves on a failover.
    fn redis_members(&self) -> Vec<String> {
        let group = self.names.cache_replication_group();
        (1..=1 + self.stack.cache.replicas)
            .map(|i| format!("{group}-{i:03}"))
            .collect()
    }

    /// The largest of a Redis metric over the members.
    fn redis_max(&self, metric: &str, statistic: &str, label: &str) -> serde_json::Value {
        let members = self.redis_members();
        let mut queries: Vec<serde_json::Value> = members
            .iter()
            .enumerate()
            .map(|(i, m)| {
                stat(
                    &format!("member{}", i + 1),
                    REDIS,
                    metric,
                    json!({"CacheClusterId": m}),
                    statistic,
                    300,
                )
            })
            .collect();
        let ids: Vec<String> = (1..=members.len()).map(|i| format!("member{i}")).collect();
        queries.push(expression(&format!("MAX([{}])", ids.join(",")), label));
        serde_json::Value::Array(queries)
    }

    fn alarm_list(&self) -> Vec<Alarm<'static>> {
        let t = &self.stack.observability.thresholds;
        let lb = || Value::reference(ids::LB_ALB, "arn_suffix");
        let lb_marker = marker(ids::LB_ALB, "arn_suffix");
        let alb = |id: &str, metric: &str| {
            stat(
                id,
                ALB,
                metric,
                json!({"LoadBalancer": lb_marker}),
                "Sum",
                300,
            )
        };
        let own = |name: &'static str| Watch::Metric {
            namespace: self.names.metric_namespace(),
            name,
            dimensions: Vec::new(),
            statistic: "Sum",
            period: 300,
        };
        let db = || vec![self.db_dimension()];
        let rds = |name: &'static str, statistic: &'static str| Watch::Metric {
            namespace: RDS.into(),
            name,
            dimensions: db(),
            statistic,
            period: 300,
        };
        let mut out = vec![
            Alarm {
                what: "alb-5xx",
                description: format!(
                    "More than {}% of the load balancer's requests answered 5xx (by the nodes or \
                     the load balancer) for 10 minutes",
                    t.alb_5xx_percent
                ),
                watch: Watch::Math(json!([
                    alb("requests", "RequestCount"),
                    alb("target5xx", "HTTPCode_Target_5XX_Count"),
                    alb("elb5xx", "HTTPCode_ELB_5XX_Count"),
                    expression(
                        "100*(FILL(target5xx,0)+FILL(elb5xx,0))/FILL(requests,1)",
                        "5xx %"
                    ),
                ])),
                periods: 2,
                threshold: t.alb_5xx_percent,
                comparison: "GreaterThanThreshold",
                missing: "notBreaching",
            },
            Alarm {
                what: "response-time",
                description: format!(
                    "The nodes' 95th percentile response time above {} s for 15 minutes",
                    t.response_time_seconds
                ),
                watch: Watch::Metric {
                    namespace: ALB.into(),
                    name: "TargetResponseTime",
                    dimensions: vec![("LoadBalancer", lb())],
                    statistic: "p95",
                    period: 300,
                },
                periods: 3,
                threshold: t.response_time_seconds,
                comparison: "GreaterThanThreshold",
                missing: "notBreaching",
            },
            Alarm {
                what: "unhealthy-hosts",
                description: format!(
                    "{} or more web nodes failing the load balancer's health check for 5 minutes",
                    t.unhealthy_hosts
                ),
                watch: Watch::Metric {
                    namespace: ALB.into(),
                    name: "UnHealthyHostCount",
                    dimensions: vec![
                        ("LoadBalancer", lb()),
                        ("TargetGroup", Value::reference(ids::LB_TG, "arn_suffix")),
                    ],
                    statistic: "Maximum",
                    period: 60,
                },
                periods: 5,
                threshold: count(t.unhealthy_hosts),
                comparison: "GreaterThanOrEqualToThreshold",
                missing: "notBreaching",
            },
        ];
        let min = self.stack.web.min;
        if min > 0 {
            out.push(Alarm {
                what: "fleet-below-min",
                description: format!(
                    "Fewer than {min} web nodes in service (the fleet's minimum) for 10 minutes: \
                     Spot capacity is not being replaced"
                ),
                watch: Watch::Metric {
                    namespace: "AWS/AutoScaling".into(),
                    name: "GroupInServiceInstances",
                    dimensions: vec![(
                        "AutoScalingGroupName",
                        Value::str(self.names.autoscaling_group()),
                    )],
                    statistic: "Minimum",
                    period: 60,
                },
                periods: 10,
                threshold: count(min),
                comparison: "LessThanThreshold",
                missing: "missing",
            });
        }
        out.push(Alarm {
            what: "db-cpu",
            description: format!(
                "The database's CPU above {}% for 15 minutes",
                t.db_cpu_percent
            ),
            watch: rds("CPUUtilization", "Average"),
            periods: 3,
            threshold: t.db_cpu_percent,
            comparison: "GreaterThanThreshold",
            missing: "missing",
        });
        if !self.stack.database.engine.is_aurora() {
            out.push(Alarm {
                what: "db-free-storage",
                description: format!(
                    "The database's free storage below {} GiB for 10 minutes",
                    t.db_free_storage_gb
                ),
                watch: rds("FreeStorageSpace", "Minimum"),
                periods: 2,
                threshold: t.db_free_storage_gb * GIB,
                comparison: "LessThanThreshold",
                missing: "missing",
            });
        }
        out.push(Alarm {
            what: "db-memory",
            description: format!(
                "The database's freeable memory below {} MiB for 15 minutes",
                t.db_freeable_memory_mb
            ),
            watch: rds("FreeableMemory", "Average"),
            periods: 3,
            threshold: t.db_freeable_memory_mb * MIB,
            comparison: "LessThanThreshold",
            missing: "missing",
        });
        out.push(Alarm {
            what: "db-connections",
            description: format!(
                "More than {} database connections for 10 minutes",
                t.db_connections
            ),
            watch: rds("DatabaseConnections", "Maximum"),
            periods: 2,
            threshold: count(t.db_connections),
            comparison: "GreaterThanThreshold",
            missing: "missing",
        });
        out.push(Alarm {
            what: "redis-memory",
            description: format!(
                "Redis memory above {}% for 15 minutes (evictions follow)",
                t.redis_memory_percent
            ),
            watch: Watch::Math(self.redis_max(
                "DatabaseMemoryUsagePercentage",
                "Maximum",
                "memory %",
            )),
            periods: 3,
            threshold: t.redis_memory_percent,
            comparison: "GreaterThanThreshold",
            missing: "missing",
        });
        out.push(Alarm {
            what: "redis-evictions",
            description: format!(
                "Redis evicted more than {} keys in 5 minutes (sessions may be lost)",
                t.redis_evictions
            ),
            watch: Watch::Math(self.redis_max("Evictions", "Sum", "evictions")),
            periods: 1,
            threshold: count(t.redis_evictions),
            comparison: "GreaterThanThreshold",
            missing: "notBreaching",
        });
        let fs = json!({"FileSystemId": marker(ids::FILES_FS, "id")});
        out.push(Alarm {
            what: "efs-throughput",
            description: format!(
                "moodledata uses more than {}% of its permitted throughput for 15 minutes",
                t.efs_throughput_percent
            ),
            // EFS's own formula: metered I/O per second over the permitted throughput.
            watch: Watch::Math(json!([
                stat("io", "AWS/EFS", "MeteredIOBytes", fs.clone(), "Sum", 60),
                stat(
                    "permitted",
                    "AWS/EFS",
                    "PermittedThroughput",
                    fs,
                    "Average",
                    60
                ),
                expression("100*(io/PERIOD(io))/permitted", "throughput %"),
            ])),
            periods: 15,
            threshold: t.efs_throughput_percent,
            comparison: "GreaterThanThreshold",
            missing: "notBreaching",
        });
        out.push(Alarm {
            what: "cron-heartbeat",
            description: format!(
                "No successful Moodle cron run on the stable node for {} minutes",
                t.cron_heartbeat_minutes
            ),
            watch: own(CRON_HEARTBEAT),
            periods: (t.cron_heartbeat_minutes / 5).max(1),
            threshold: 1.0,
            comparison: "LessThanThreshold",
            // A stopped node sends nothing: silence is the failure.
            missing: "breaching",
        });
        out.push(Alarm {
            what: "fpm-max-children",
            description: format!(
                "PHP-FPM reached pm.max_children {} times or more in 5 minutes: requests queue",
                t.fpm_max_children_warnings
            ),
            watch: own(FPM_MAX_CHILDREN),
            periods: 1,
            threshold: count(t.fpm_max_children_warnings),
            comparison: "GreaterThanOrEqualToThreshold",
            missing: "notBreaching",
        });
        out.push(Alarm {
            what: "slow-requests",
            description: format!(
                "{} or more PHP-FPM slow-log entries in 5 minutes",
                t.slow_requests
            ),
            watch: own(SLOW_REQUESTS),
            periods: 1,
            threshold: count(t.slow_requests),
            comparison: "GreaterThanOrEqualToThreshold",
            missing: "notBreaching",
        });
        out
    }

    /// The dashboard: the load balancer, the fleet, the database, Redis, EFS, cron and PHP-FPM
    /// on one screen, and the latest PHP-FPM log lines.
    fn dashboard_body(&self) -> serde_json::Value {
        let region = self.stack.region.as_str();
        let lb = marker(ids::LB_ALB, "arn_suffix");
        let tg = marker(ids::LB_TG, "arn_suffix");
        let asg = self.names.autoscaling_group();
        let (db_dim, db) = self.db_dimension();
        let db = db.as_str().unwrap_or_default().to_string();
        let fs = marker(ids::FILES_FS, "id");
        let ns = self.names.metric_namespace();
        let redis: Vec<serde_json::Value> = self
            .redis_members()
            .iter()
            .map(|m| json!([REDIS, "DatabaseMemoryUsagePercentage", "CacheClusterId", m]))
            .collect();
        let metric = |title: &str, stat: &str, metrics: serde_json::Value| {
            json!({"type": "metric", "width": 8, "height": 6, "properties": {
                "metrics": metrics, "period": 300, "region": region, "stat": stat,
                "title": title, "view": "timeSeries"}})
        };
        let fpm_group = self.names.log_group("php-fpm");
        let widgets = vec![
            metric(
                "Requests and 5xx",
                "Sum",
                json!([
                    [ALB, "RequestCount", "LoadBalancer", lb],
                    [ALB, "HTTPCode_Target_5XX_Count", "LoadBalancer", lb],
                    [ALB, "HTTPCode_ELB_5XX_Count", "LoadBalancer", lb],
                ]),
            ),
            metric(
                "Response time (p95, s)",
                "p95",
                json!([[ALB, "TargetResponseTime", "LoadBalancer", lb],]),
            ),
            metric(
                "Web nodes",
                "Average",
                json!([
                    [
                        "AWS/AutoScaling",
                        "GroupInServiceInstances",
                        "AutoScalingGroupName",
                        asg
                    ],
                    [
                        "AWS/AutoScaling",
                        "GroupDesiredCapacity",
                        "AutoScalingGroupName",
                        asg
                    ],
                    [
                        ALB,
                        "HealthyHostCount",
                        "TargetGroup",
                        tg,
                        "LoadBalancer",
                        lb
                    ],
                    [
                        ALB,
                        "UnHealthyHostCount",
                        "TargetGroup",
                        tg,
                        "LoadBalancer",
                        lb
                    ],
                ]),
            ),
            metric(
                "Database CPU % and connections",
                "Average",
                json!([
                    [RDS, "CPUUtilization", db_dim, db],
                    [RDS, "DatabaseConnections", db_dim, db, {"yAxis": "right"}],
                ]),
            ),
            metric(
                "Database memory and storage (bytes)",
                "Minimum",
                json!([
                    [RDS, "FreeableMemory", db_dim, db],
                    [RDS, "FreeStorageSpace", db_dim, db],
                ]),
            ),
            metric("Redis memory %", "Maximum", json!(redis)),
            metric(
                "moodledata throughput (bytes)",
                "Sum",
                json!([["AWS/EFS", "MeteredIOBytes", "FileSystemId", fs],]),
            ),
            metric(
                "Cron runs, FPM max_children, slow requests",
                "Sum",
                json!([
                    [ns, CRON_HEARTBEAT],
                    [ns, FPM_MAX_CHILDREN],
                    [ns, SLOW_REQUESTS],
                ]),
            ),
            json!({"type": "log", "width": 24, "height": 6, "properties": {
                "query": format!(
                    "SOURCE '{fpm_group}' | fields @timestamp, @logStream, @message \
                     | sort @timestamp desc | limit 50"
                ),
                "region": region, "title": "PHP-FPM log", "view": "table"}}),
        ];
        json!({"widgets": widgets})
    }
}

/// A count threshold (hosts, connections, evictions, warnings) as CloudWatch's number: the stack
/// rules keep these far below 2^52, so the conversion is exact.
#[allow(clippy::cast_precision_loss)]
fn count(n: i64) -> f64 {
    n as f64
}
