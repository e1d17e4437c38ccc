//! `moodlestack status`: the live state of a stack on one screen, read-only. Every read goes out
//! at once (the target health after its target group's ARN): the stack's instances (EC2, by the
//! stack's tag), the web fleet's group and its instance refreshes (Auto Scaling), the launch
//! templates' latest versions, the target health (ELBv2), the database (RDS), Redis
//! (ElastiCache), moodledata (EFS), the alarms firing (CloudWatch, `DescribeAlarms` with the
//! stack's prefix and state `ALARM`, kept when tagged with the stack) and the last cron heartbeat (CloudWatch,
//! `GetMetricStatistics` of `CronHeartbeat`).

use crate::fields::{
    all_pages, answer, api_err, described_by, is_code, is_not_found, not_found_is_none, tag_map,
    unix_secs,
};
use crate::AwsCloud;
use aws_sdk_ec2::types::Filter;
use moodlestack_model::{CloudError, TAG_ID, TAG_STACK};
use moodlestack_stack::names::{Names, CRON_HEARTBEAT};
use moodlestack_stack::Stack;
use serde::Serialize;
use std::collections::BTreeMap;

/// How far back `status` looks for the cron heartbeat (one datapoint a minute: 1,440, the most
/// one GetMetricStatistics answer holds).
pub const HEARTBEAT_WINDOW_SECS: i64 = 24 * 3600;

/// One node of the stack.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Node {
    pub instance_id: String,
    /// `web` or `stable`.
    pub role: String,
    pub instance_type: String,
    pub zone: String,
    /// `spot` or `on-demand`.
    pub market: String,
    /// Web nodes: the Auto Scaling lifecycle state (`InService`, `Pending`,
    /// `Terminating:Wait`, ...); the stable node: the EC2 state (`running`, ...).
    pub state: String,
    /// Web nodes: the target group's health (`healthy`, `unhealthy`, `draining`, `initial`,
    /// `unused`), or `not registered`; the stable node is not a target (empty).
    pub health: String,
    /// Why the target is not healthy, as ELBv2 says.
    pub health_reason: String,
    /// The launch template version the node was launched from (its code and configuration).
    pub template_version: String,
    /// The launch template's latest version: a node on an older one runs older code or
    /// configuration until it is replaced.
    pub latest_version: String,
    /// Launch time (Unix seconds).
    pub launched_at: u64,
}

/// The web fleet's Auto Scaling group.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Fleet {
    pub name: String,
    pub min: i32,
    pub max: i32,
    pub desired: i32,
}

/// An instance refresh of the web fleet (the newest first).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Refresh {
    pub id: String,
    /// `Pending`, `InProgress`, `Successful`, `Failed`, `Cancelling`, `Cancelled`,
    /// `RollbackInProgress`, ...
    pub status: String,
    pub percent_complete: Option<i32>,
    pub instances_to_update: Option<i32>,
    pub started_at: u64,
    pub reason: String,
}

/// A managed service of the stack (database, Redis, file system).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Service {
    /// Its name or id.
    pub id: String,
    /// What it is (`mysql 8.0.40, db.t4g.medium, Multi-AZ`).
    pub detail: String,
    /// As the service says (`available`, `modifying`, ...); `absent` when it does not exist.
    pub status: String,
}

/// An alarm of the stack in state ALARM.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Alarm {
    pub name: String,
    pub reason: String,
    /// When it went into ALARM (Unix seconds).
    pub since: u64,
}

/// The live state of a stack.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Status {
    pub stack: String,
    pub region: String,
    /// The web fleet's group (None: it does not exist).
    pub fleet: Option<Fleet>,
    pub web: Vec<Node>,
    pub stable: Vec<Node>,
    pub refreshes: Vec<Refresh>,
    pub database: Service,
    pub cache: Service,
    pub files: Service,
    pub alarms: Vec<Alarm>,
    /// The last `CronHeartbeat` datapoint within [`HEARTBEAT_WINDOW_SECS`] (Unix seconds).
    pub last_heartbeat: Option<u64>,
    /// When this was read (Unix seconds).
    pub read_at: u64,
}

fn alarm(
    name: Option<&str>,
    reason: Option<&str>,
    since: Option<&aws_smithy_types::DateTime>,
) -> Alarm {
    Alarm {
        name: name.unwrap_or_default().to_string(),
        reason: reason.unwrap_or_default().to_string(),
        since: unix_secs(since),
    }
}

fn absent(id: String) -> Service {
    Service {
        id,
        detail: String::new(),
        status: "absent".into(),
    }
}

/// What EC2 says of one instance of the stack.
pub(crate) struct Ec2Instance {
    pub id: String,
    /// Its `moodlestack:id` tag (empty for the web fleet's, which Auto Scaling launches).
    pub logical: String,
    instance_type: String,
    zone: String,
    market: String,
    state: String,
    template_version: String,
    launched_at: u64,
}

impl AwsCloud {
    /// The stack's instances in one of `states` (any state EC2 still reports when empty), found
    /// by the stack's tag.
    pub(crate) async fn stack_instances(
        &self,
        stack: &str,
        states: &[&str],
    ) -> Result<Vec<Ec2Instance>, CloudError> {
        let filter = |name: &str, values: &[&str]| {
            Filter::builder()
                .name(name)
                .set_values(Some(values.iter().map(|v| v.to_string()).collect()))
                .build()
        };
        let mut req = self
            .clients()
            .ec2
            .describe_instances()
            .filters(filter(&format!("tag:{TAG_STACK}"), &[stack]));
        if !states.is_empty() {
            req = req.filters(filter("instance-state-name", states));
        }
        let pages = req
            .into_paginator()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await
            .map_err(|e| api_err("ec2:DescribeInstances", e))?;
        Ok(pages
            .iter()
            .flat_map(|p| p.reservations())
            .flat_map(|r| r.instances())
            .filter_map(|i| {
                let tags = tag_map(i.tags());
                if tags.get(TAG_STACK).map(String::as_str) != Some(stack) {
                    return None;
                }
                Some(Ec2Instance {
                    id: i.instance_id()?.to_string(),
                    logical: tags.get(TAG_ID).cloned().unwrap_or_default(),
                    instance_type: i
                        .instance_type()
                        .map(|t| t.as_str().to_string())
                        .unwrap_or_default(),
                    zone: i
                        .placement()
                        .and_then(|p| p.availability_zone())
                        .unwrap_or_default()
                        .to_string(),
                    market: match i.instance_lifecycle().map(|l| l.as_str()) {
                        Some("spot") => "spot".into(),
                        _ => "on-demand".into(),
                    },
                    state: i
                        .state()
                        .and_then(|s| s.name())
                        .map(|s| s.as_str().to_string())
                        .unwrap_or_default(),
                    template_version: tags
                        .get("aws:ec2launchtemplate:version")
                        .cloned()
                        .unwrap_or_default(),
                    launched_at: unix_secs(i.launch_time()),
                })
            })
            .collect())
    }

    /// The ids of the stack's instances with logical id `id` (tag `moodlestack:id`) in one of
    /// `states` (any state EC2 still reports when empty: `moodlestack logs --node stable` reads
    /// the streams of a stable node replaced within the hour too).
    pub async fn instance_ids(
        &self,
        stack: &str,
        id: &str,
        states: &[&str],
    ) -> Result<Vec<String>, CloudError> {
        Ok(self
            .stack_instances(stack, states)
            .await?
            .into_iter()
            .filter(|i| i.logical == id)
            .map(|i| i.id)
            .collect())
    }

    /// The live state of `stack`: its nodes (`stable_id`: the stable instance's logical id), the
    /// web fleet and its instance refreshes, its services, the alarms firing and the last cron
    /// heartbeat. All reads at once; a service that does not exist is `absent`, not an error.
    pub async fn status(&self, stack: &Stack, stable_id: &str) -> Result<Status, CloudError> {
        let c = self.clients();
        let names = Names::of(stack);
        let asg_name = names.autoscaling_group();
        let now = moodlestack_model::cloud::unix_now();

        let instances = self.stack_instances(
            &stack.name,
            &["pending", "running", "stopping", "stopped", "shutting-down"],
        );
        let group = async {
            described_by!(
                "autoscaling:DescribeAutoScalingGroups",
                Some(asg_name.as_str()),
                c.autoscaling
                    .describe_auto_scaling_groups()
                    .auto_scaling_group_names(&asg_name)
            )
            .await
        };
        let refreshes = async {
            // The newest first; the first page is enough to show the one running.
            let out = answer(
                "autoscaling:DescribeInstanceRefreshes",
                c.autoscaling
                    .describe_instance_refreshes()
                    .auto_scaling_group_name(&asg_name)
                    .send(),
            )
            .await;
            match out {
                Ok(o) => Ok(o.instance_refreshes().to_vec()),
                // No group (not created yet, or destroyed).
                Err(e) if is_not_found(&e) || is_code(&e, "ValidationError") => Ok(Vec::new()),
                Err(e) => Err(e),
            }
        };
        let templates = async {
            described_by!(
                "ec2:DescribeLaunchTemplates",
                None,
                c.ec2.describe_launch_templates().filters(
                    Filter::builder()
                        .name(format!("tag:{TAG_STACK}"))
                        .values(&stack.name)
                        .build()
                )
            )
            .await
        };
        let health = async {
            let tg = names.target_group();
            let groups = described_by!(
                "elasticloadbalancing:DescribeTargetGroups",
                Some(tg.as_str()),
                c.elbv2.describe_target_groups().names(&tg)
            )
            .await?;
            let Some(arn) = groups.first().and_then(|g| g.target_group_arn()) else {
                return Ok(BTreeMap::new());
            };
            let out = answer(
                "elasticloadbalancing:DescribeTargetHealth",
                c.elbv2
                    .describe_target_health()
                    .target_group_arn(arn)
                    .send(),
            )
            .await?;
            Ok::<_, CloudError>(
                out.target_health_descriptions()
                    .iter()
                    .filter_map(|d| {
                        let h = d.target_health();
                        Some((
                            d.target()?.id()?.to_string(),
                            (
                                h.and_then(|h| h.state())
                                    .map(|s| s.as_str().to_string())
                                    .unwrap_or_default(),
                                h.and_then(|h| h.description())
                                    .unwrap_or_default()
                                    .to_string(),
                            ),
                        ))
                    })
                    .collect(),
            )
        };
        let database = self.database_status(stack, &names);
        let cache = async {
            let id = names.cache_replication_group();
            let groups = described_by!(
                "elasticache:DescribeReplicationGroups",
                Some(id.as_str()),
                c.elasticache
                    .describe_replication_groups()
                    .replication_group_id(&id)
            )
            .await?;
            Ok::<_, CloudError>(groups.first().map_or_else(
                || absent(id.clone()),
                |g| Service {
                    id: id.clone(),
                    detail: format!(
                        "{}, {} node{}",
                        g.cache_node_type().unwrap_or("redis"),
                        g.member_clusters().len(),
                        if g.member_clusters().len() == 1 {
                            ""
                        } else {
                            "s"
                        }
                    ),
                    status: g.status().unwrap_or_default().to_string(),
                },
            ))
        };
        let files = async {
            let token = names.efs_creation_token();
            let found = described_by!(
                "efs:DescribeFileSystems",
                Some(token.as_str()),
                c.efs.describe_file_systems().creation_token(&token)
            )
            .await?;
            Ok::<_, CloudError>(found.first().map_or_else(
                || absent(token.clone()),
                |f| Service {
                    id: f.file_system_id().to_string(),
                    detail: format!(
                        "{}, {} throughput",
                        if f.encrypted() == Some(true) {
                            "encrypted"
                        } else {
                            "not encrypted"
                        },
                        f.throughput_mode().map(|t| t.as_str()).unwrap_or("bursting")
                    ),
                    status: f.life_cycle_state().as_str().to_string(),
                },
            ))
        };
        let alarms = async {
            let req = c
                .cloudwatch
                .describe_alarms()
                .alarm_types(aws_sdk_cloudwatch::types::AlarmType::MetricAlarm)
                .alarm_name_prefix(names.alarm_prefix())
                .state_value(aws_sdk_cloudwatch::types::StateValue::Alarm);
            let pages = req.into_paginator().send().try_collect().await;
            let firing = all_pages("cloudwatch:DescribeAlarms", pages, |p| p.metric_alarms())?;
            // A name prefix is no owner (`demo-` is also the start of stack `demo-2`'s alarms):
            // only alarms tagged with the stack are its own. The firing few, tags read at once.
            let ours = futures::future::try_join_all(firing.iter().map(|a| async move {
                let arn = a.alarm_arn().unwrap_or_default();
                let req = c.cloudwatch.list_tags_for_resource().resource_arn(arn);
                let tags = answer("cloudwatch:ListTagsForResource", req.send()).await?;
                Ok::<_, CloudError>(tag_map(tags.tags()).get(TAG_STACK) == Some(&stack.name))
            }))
            .await?;
            Ok::<_, CloudError>(
                firing
                    .iter()
                    .zip(ours)
                    .filter(|(_, ours)| *ours)
                    .map(|(a, _)| {
                        alarm(
                            a.alarm_name(),
                            a.state_reason(),
                            a.state_updated_timestamp(),
                        )
                    })
                    .collect::<Vec<_>>(),
            )
        };
        let heartbeat = async {
            // A minute ahead: CloudWatch's EndTime is exclusive and whole seconds, so a
            // heartbeat put in the current second would otherwise be left out.
            let end = aws_smithy_types::DateTime::from_secs(now as i64 + 60);
            let start = aws_smithy_types::DateTime::from_secs(now as i64 - HEARTBEAT_WINDOW_SECS);
            let out = answer(
                "cloudwatch:GetMetricStatistics",
                c.cloudwatch
                    .get_metric_statistics()
                    .namespace(names.metric_namespace())
                    .metric_name(CRON_HEARTBEAT)
                    .start_time(start)
                    .end_time(end)
                    .period(60)
                    .statistics(aws_sdk_cloudwatch::types::Statistic::SampleCount)
                    .send(),
            )
            .await?;
            Ok::<_, CloudError>(
                out.datapoints()
                    .iter()
                    .filter(|d| d.sample_count().unwrap_or(0.0) > 0.0)
                    .map(|d| unix_secs(d.timestamp()))
                    .max(),
            )
        };

        let (instances, group, refreshes, templates, health, database, cache, files, alarms, beat) =
            futures::try_join!(
                instances, group, refreshes, templates, health, database, cache, files, alarms,
                heartbeat
            )?;

        let latest: BTreeMap<String, String> = templates
            .iter()
            .filter_map(|t| {
                Some((
                    t.launch_template_name()?.to_string(),
                    t.latest_version_number()?.to_string(),
                ))
            })
            .collect();
        let group = group.into_iter().next();
        let by_id: BTreeMap<&str, &Ec2Instance> =
            instances.iter().map(|i| (i.id.as_str(), i)).collect();
        let web_latest = latest
            .get(&names.launch_template("web"))
            .cloned()
            .unwrap_or_default();
        let mut web: Vec<Node> = group
            .iter()
            .flat_map(|g| g.instances())
            .map(|gi| {
                let id = gi.instance_id().unwrap_or_default().to_string();
                let ec2 = by_id.get(id.as_str());
                let (health, reason) = health
                    .get(&id)
                    .cloned()
                    .unwrap_or_else(|| ("not registered".into(), String::new()));
                Node {
                    role: "web".into(),
                    instance_type: gi
                        .instance_type()
                        .map(str::to_string)
                        .or_else(|| ec2.map(|e| e.instance_type.clone()))
                        .unwrap_or_default(),
                    zone: gi.availability_zone().unwrap_or_default().to_string(),
                    market: ec2.map_or_else(|| "on-demand".into(), |e| e.market.clone()),
                    state: gi
                        .lifecycle_state()
                        .map(|s| s.as_str().to_string())
                        .unwrap_or_default(),
                    health,
                    health_reason: reason,
                    template_version: gi
                        .launch_template()
                        .and_then(|t| t.version())
                        .map(str::to_string)
                        .or_else(|| ec2.map(|e| e.template_version.clone()))
                        .unwrap_or_default(),
                    latest_version: web_latest.clone(),
                    launched_at: ec2.map_or(0, |e| e.launched_at),
                    instance_id: id,
                }
            })
            .collect();
        web.sort_by(|a, b| (&a.zone, &a.instance_id).cmp(&(&b.zone, &b.instance_id)));
        let stable_latest = latest
            .get(&names.launch_template("stable"))
            .cloned()
            .unwrap_or_default();
        let stable = instances
            .iter()
            .filter(|i| i.logical == stable_id)
            .map(|i| Node {
                instance_id: i.id.clone(),
                role: "stable".into(),
                instance_type: i.instance_type.clone(),
                zone: i.zone.clone(),
                market: i.market.clone(),
                state: i.state.clone(),
                health: String::new(),
                health_reason: String::new(),
                template_version: i.template_version.clone(),
                latest_version: stable_latest.clone(),
                launched_at: i.launched_at,
            })
            .collect();
        let mut refreshes: Vec<Refresh> = refreshes
            .iter()
            .map(|r| Refresh {
                id: r.instance_refresh_id().unwrap_or_default().to_string(),
                status: r
                    .status()
                    .map(|s| s.as_str().to_string())
                    .unwrap_or_default(),
                percent_complete: r.percentage_complete(),
                instances_to_update: r.instances_to_update(),
                started_at: unix_secs(r.start_time()),
                reason: r.status_reason().unwrap_or_default().to_string(),
            })
            .collect();
        refreshes.sort_by_key(|r| std::cmp::Reverse(r.started_at));
        let mut alarms = alarms;
        alarms.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(Status {
            stack: stack.name.clone(),
            region: stack.region.clone(),
            fleet: group.map(|g| Fleet {
                name: g.auto_scaling_group_name().unwrap_or_default().to_string(),
                min: g.min_size().unwrap_or(0),
                max: g.max_size().unwrap_or(0),
                desired: g.desired_capacity().unwrap_or(0),
            }),
            web,
            stable,
            refreshes,
            database,
            cache,
            files,
            alarms,
            last_heartbeat: beat,
            read_at: now,
        })
    }

    /// The database: the Aurora cluster or the DB instance of the stack's identifier.
    async fn database_status(&self, stack: &Stack, names: &Names) -> Result<Service, CloudError> {
        let c = self.clients();
        let id = names.db_identifier();
        let engine = stack.database.engine;
        if engine.is_aurora() {
            let found = described_by!(
                "rds:DescribeDBClusters",
                Some(id.as_str()),
                c.rds.describe_db_clusters().db_cluster_identifier(&id)
            )
            .await?;
            return Ok(found.first().map_or_else(
                || absent(id.clone()),
                |d| Service {
                    id: id.clone(),
                    detail: format!(
                        "{} {}, {} member{}",
                        d.engine().unwrap_or_default(),
                        d.engine_version().unwrap_or_default(),
                        d.db_cluster_members().len(),
                        if d.db_cluster_members().len() == 1 {
                            ""
                        } else {
                            "s"
                        }
                    ),
                    status: d.status().unwrap_or_default().to_string(),
                },
            ));
        }
        let found = described_by!(
            "rds:DescribeDBInstances",
            Some(id.as_str()),
            c.rds.describe_db_instances().db_instance_identifier(&id)
        )
        .await;
        let found = not_found_is_none(found)?.unwrap_or_default();
        Ok(found.first().map_or_else(
            || absent(id.clone()),
            |d| Service {
                id: id.clone(),
                detail: format!(
                    "{} {}, {}{}",
                    d.engine().unwrap_or_default(),
                    d.engine_version().unwrap_or_default(),
                    d.db_instance_class().unwrap_or_default(),
                    if d.multi_az() == Some(true) {
                        ", Multi-AZ"
                    } else {
                        ""
                    }
                ),
                status: d.db_instance_status().unwrap_or_default().to_string(),
            },
        ))
    }
}
