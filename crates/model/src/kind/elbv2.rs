//! Elastic Load Balancing v2 kinds: the ALB, its target group and listeners.

use super::{f, mins, repl, set, KindSpec, PhysicalId, ReplaceOrder, DEFAULT, TAGS};
use crate::cost::{PriceQuery, Usage, UsageCx, HOURS_PER_MONTH};

// The ELBv2 kinds, as rows of the kind table in `mod.rs`.
kind_list! { $ elbv2_kinds [
    /// An application load balancer.
    LoadBalancer("load_balancer", "AWS::ElasticLoadBalancingV2::LoadBalancer")
        => elbv2::LOAD_BALANCER,
    /// A target group.
    TargetGroup("target_group", "AWS::ElasticLoadBalancingV2::TargetGroup") => elbv2::TARGET_GROUP,
    /// A load balancer listener.
    Listener("listener", "AWS::ElasticLoadBalancingV2::Listener") => elbv2::LISTENER,
] }

/// idle_timeout: the `idle_timeout.timeout_seconds` attribute. `id` is the ARN. Waits for
/// `active`.
pub(super) const LOAD_BALANCER: KindSpec = KindSpec {
    physical_id: PhysicalId::Arn,
    tier: 2,
    fields: &[
        repl("name"),
        repl("scheme"),
        set("subnet_ids"),
        set("security_group_ids"),
        f("idle_timeout"),
        f("drop_invalid_header_fields"),
        f("deletion_protection"),
        TAGS,
    ],
    name_field: Some("name"),
    // arn_suffix: `app/<name>/<id>`, what the scaling policy's request metric names.
    attrs: &["id", "arn", "arn_suffix", "dns_name", "zone_id"],
    ready_timeout: mins(10),
    usage: load_balancer_usage,
    ..DEFAULT
};

/// LCUs the estimate assumes the load balancer uses on average, each hour of the month (one LCU
/// is 25 new connections a second, 3,000 active connections, 1 GB of traffic an hour or 1,000
/// rule evaluations a second, whichever is highest: a Moodle site of a few hundred concurrent
/// users).
pub const ASSUMED_LCUS: f64 = 1.0;

/// Hours of the load balancer, its assumed LCUs and, internet-facing, a public IPv4 address per
/// zone (one per subnet).
fn load_balancer_usage(cx: &UsageCx<'_>) -> Vec<Usage> {
    let elb = |usage_type: &str| {
        PriceQuery::list(
            "AWSELB",
            cx.region,
            &[("productFamily", "Load Balancer-Application")],
        )
        .usage_type(usage_type)
    };
    let mut out = vec![
        Usage::hours(
            "hours",
            "application load balancer hours",
            HOURS_PER_MONTH,
            elb("LoadBalancerUsage"),
        ),
        Usage {
            unit: "LCU-h",
            ..Usage::hours(
                "lcu",
                format!("LCU-hours, {ASSUMED_LCUS} LCU assumed on average"),
                ASSUMED_LCUS * HOURS_PER_MONTH,
                elb("LCUUsage"),
            )
        },
    ];
    if cx.str("scheme") != Some("internal") {
        let zones = cx.count("subnet_ids") as i64;
        out.push(super::ec2::public_ipv4(
            "public ipv4",
            &format!("{zones} public IPv4 addresses (one per zone)"),
            zones,
            cx.region,
        ));
    }
    out
}

/// deregistration_delay: the `deregistration_delay.timeout_seconds` attribute. `id` is the ARN.
pub(super) const TARGET_GROUP: KindSpec = KindSpec {
    physical_id: PhysicalId::Arn,
    tier: 1,
    fields: &[
        repl("name"),
        repl("vpc_id"),
        repl("protocol"),
        repl("port"),
        repl("target_type"),
        f("health_check_path"),
        f("health_check_interval"),
        f("healthy_threshold"),
        f("unhealthy_threshold"),
        f("health_check_matcher"),
        f("deregistration_delay"),
        TAGS,
    ],
    name_field: Some("name"),
    // arn_suffix: `targetgroup/<name>/<id>`, what the scaling policy's request metric names.
    attrs: &["id", "arn", "arn_suffix"],
    replace: ReplaceOrder::CreateFirstWhenRenamed,
    ..DEFAULT
};

/// default_action: {type: "redirect", protocol, port, status_code} or {type: "forward",
/// target_group_arn}. Tagged like the rest; a listener without `moodlestack:id` (created by a
/// version before listeners were tagged) is matched by (load_balancer_arn, port) and tagged.
/// `id` is the ARN.
pub(super) const LISTENER: KindSpec = KindSpec {
    physical_id: PhysicalId::Arn,
    tier: 3,
    fields: &[
        repl("load_balancer_arn"),
        repl("port"),
        f("protocol"),
        f("certificate_arn"),
        f("ssl_policy"),
        f("default_action"),
        TAGS,
    ],
    identity: &["load_balancer_arn", "port"],
    attrs: &["id", "arn"],
    ..DEFAULT
};
