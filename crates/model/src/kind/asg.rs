//! Auto Scaling kinds: the web fleet's group, its target-tracking scaling policy, its scheduled
//! actions and its termination lifecycle hook. The last three cannot be tagged: they are the
//! stack's because they hang off the stack's group, and are matched to the declared ones by
//! (group name, own name).

use super::{create_only, f, mins, one_of, repl, set, KindSpec, DEFAULT, NAMED, TAGS};
use crate::change::{ChangeView, Note, NoteKind};
use crate::cost::{quantity, PriceQuery, Usage, UsageCx, HOURS_PER_MONTH};

// The Auto Scaling kinds, as rows of the kind table in `mod.rs`.
kind_list! { $ asg_kinds [
    /// An Auto Scaling group (the web fleet).
    AutoScalingGroup("autoscaling_group", "AWS::AutoScaling::AutoScalingGroup") => asg::GROUP,
    /// A target-tracking scaling policy of the group (untaggable).
    ScalingPolicy("scaling_policy", "AWS::AutoScaling::ScalingPolicy") => asg::POLICY,
    /// A scheduled action of the group (untaggable).
    ScheduledAction("scheduled_action", "AWS::AutoScaling::ScheduledAction")
        => asg::SCHEDULED_ACTION,
    /// A lifecycle hook of the group (untaggable).
    LifecycleHook("lifecycle_hook", "AWS::AutoScaling::LifecycleHook") => asg::LIFECYCLE_HOOK,
] }

/// Mixed instances policy: instance_types (ordered overrides), on_demand_base_capacity,
/// on_demand_percentage_above_base, spot_allocation_strategy; always sent whole. A change of
/// launch_template_version starts an instance refresh (new instances first: healthy capacity stays
/// between 100 % and 200 %). desired_capacity is
/// set at creation only: scaling policies and scheduled actions own it. min_size and max_size are
/// compared [`one_of`](super::Compare::OneOf) the values the stack's scheduled actions set, so a
/// schedule holding the group at exam-week sizes is no change. `enabled_metrics`: the group
/// metrics Auto Scaling publishes to CloudWatch each minute (`GroupInServiceInstances`, ...; the
/// fleet-below-minimum alarm reads them; none are published unless enabled). `id` is the name.
pub(super) const GROUP: KindSpec = KindSpec {
    tier: 8,
    fields: &[
        repl("name"),
        f("launch_template_id"),
        f("launch_template_version"),
        f("instance_types"),
        one_of("min_size"),
        one_of("max_size"),
        create_only("desired_capacity"),
        f("on_demand_base_capacity"),
        f("on_demand_percentage_above_base"),
        f("spot_allocation_strategy"),
        f("capacity_rebalance"),
        set("subnet_ids"),
        set("target_group_arns"),
        f("health_check_type"),
        f("health_check_grace_period"),
        set("enabled_metrics"),
        TAGS,
    ],
    // A rollout waits for its instance refresh: new nodes launch together (healthy 100-200 %)
    // and each is in warm-up for the health check grace period (15 min) before the old ones go.
    ready_timeout: mins(45),
    notes: group_notes,
    usage: group_usage,
    ..NAMED
};

/// The web fleet at its minimum size (what it runs unless scaled out): the On-Demand base and
/// share above it on the first instance type (Auto Scaling's `prioritized` On-Demand strategy),
/// the rest on Spot, spread evenly over the types and the group's zones; a root volume each.
fn group_usage(cx: &UsageCx<'_>) -> Vec<Usage> {
    let types = cx.strs("instance_types");
    let size = cx.int("min_size").unwrap_or(0).max(0);
    let base = cx
        .int("on_demand_base_capacity")
        .unwrap_or(0)
        .clamp(0, size);
    let above = cx.int("on_demand_percentage_above_base").unwrap_or(100);
    // Auto Scaling rounds the On-Demand share above the base up.
    let on_demand = base + ((size - base) * above + 99) / 100;
    let spot = size - on_demand;
    let mut zones: Vec<String> = cx
        .via_each("subnet_ids")
        .iter()
        .filter_map(|s| s.str("availability_zone").map(str::to_string))
        .collect();
    zones.sort();
    zones.dedup();
    let mut out = Vec::new();
    if on_demand > 0 {
        if let Some(first) = types.first() {
            let mut u = super::ec2::on_demand("on-demand", first, on_demand, cx.region);
            u.item
                .push_str(&format!(" (of the fleet at its minimum size, {size})"));
            out.push(u);
        }
    }
    if spot > 0 {
        let zones_text = if zones.is_empty() {
            "the region's zones".to_string()
        } else {
            zones.join(", ")
        };
        out.push(Usage::hours(
            "spot",
            format!(
                "{spot} x Spot {}, Linux (of the fleet at its minimum size, {size}; the average \
                 over the types and {zones_text}: capacity assumed spread evenly)",
                types.join("/"),
            ),
            quantity(spot) * HOURS_PER_MONTH,
            PriceQuery::Spot {
                instance_types: types.iter().map(|t| (*t).to_string()).collect(),
                zones,
            },
        ));
    }
    if let Some(lt) = cx.via("launch_template_id") {
        out.extend(super::ec2::root_volumes(&lt, size));
    }
    out
}

fn group_notes(c: &ChangeView<'_>) -> Vec<Note> {
    if c.is_real_update() && c.changed("launch_template_version").is_some() {
        vec![Note::new(
            NoteKind::Rollout,
            "starts an instance refresh (new instances first, healthy capacity 100-200%): \
             instances are replaced with the new launch template version",
        )]
    } else {
        Vec::new()
    }
}

/// What the group's untaggable parts (policy, scheduled action, lifecycle hook) share: created
/// after the group, keyed by their `name` within it, matched by (group name, own name).
const GROUP_PART: KindSpec = KindSpec {
    tier: 9,
    name_field: Some("name"),
    identity: &["group_name", "name"],
    ..DEFAULT
};

/// A target-tracking scaling policy (PutScalingPolicy creates and updates it). `metric` is a
/// predefined metric type (`ASGAverageCPUUtilization`, `ALBRequestCountPerTarget`);
/// `resource_label` names the load balancer and target group for the latter (empty otherwise);
/// `target_value` is an integer (percent, or requests per target per minute);
/// `estimated_instance_warmup` is seconds. `id` is `<group name>/<policy name>`.
pub(super) const POLICY: KindSpec = KindSpec {
    fields: &[
        repl("group_name"),
        repl("name"),
        f("metric"),
        f("resource_label"),
        f("target_value"),
        f("estimated_instance_warmup"),
        f("disable_scale_in"),
    ],
    attrs: &["id", "arn"],
    ..GROUP_PART
};

/// A recurring scheduled action (PutScheduledUpdateGroupAction creates and updates it):
/// `recurrence` is Unix cron, `time_zone` an IANA name, and the sizes the group takes when it
/// runs. `id` is `<group name>/<action name>`.
pub(super) const SCHEDULED_ACTION: KindSpec = KindSpec {
    fields: &[
        repl("group_name"),
        repl("name"),
        f("recurrence"),
        f("time_zone"),
        f("min_size"),
        f("max_size"),
        f("desired_capacity"),
    ],
    ..GROUP_PART
};

/// A lifecycle hook (PutLifecycleHook creates and updates it): `transition` is
/// `autoscaling:EC2_INSTANCE_TERMINATING` or `..._LAUNCHING`, `heartbeat_timeout` seconds,
/// `default_result` `CONTINUE` or `ABANDON`. `id` is `<group name>/<hook name>`.
pub(super) const LIFECYCLE_HOOK: KindSpec = KindSpec {
    fields: &[
        repl("group_name"),
        repl("name"),
        f("transition"),
        f("heartbeat_timeout"),
        f("default_result"),
    ],
    ..GROUP_PART
};
