//! EC2 kinds: the network, security groups, launch templates and the stable instance.

use super::{create_only, f, mins, repl, set, KindSpec, PhysicalId, ReplaceOrder, DEFAULT, TAGS};
use crate::change::{Action, ChangeView, Note, NoteKind};
use crate::cost::{quantity, PriceQuery, Usage, UsageCx, HOURS_PER_MONTH};

// The EC2 kinds, as rows of the kind table in `mod.rs`.
kind_list! { $ ec2_kinds [
    /// A VPC.
    Vpc("vpc", "AWS::EC2::VPC") => ec2::VPC,
    /// An internet gateway attached to the VPC.
    InternetGateway("internet_gateway", "AWS::EC2::InternetGateway") => ec2::INTERNET_GATEWAY,
    /// A subnet.
    Subnet("subnet", "AWS::EC2::Subnet") => ec2::SUBNET,
    /// An Elastic IP address (for a NAT gateway).
    ElasticIp("elastic_ip", "AWS::EC2::EIP") => ec2::ELASTIC_IP,
    /// A NAT gateway.
    NatGateway("nat_gateway", "AWS::EC2::NatGateway") => ec2::NAT_GATEWAY,
    /// A route table with its routes and subnet associations.
    RouteTable("route_table", "AWS::EC2::RouteTable") => ec2::ROUTE_TABLE,
    /// A security group with its ingress rules.
    SecurityGroup("security_group", "AWS::EC2::SecurityGroup") => ec2::SECURITY_GROUP,
    /// An EC2 launch template.
    LaunchTemplate("launch_template", "AWS::EC2::LaunchTemplate") => ec2::LAUNCH_TEMPLATE,
    /// An EC2 instance (the stable node).
    Instance("instance", "AWS::EC2::Instance") => ec2::INSTANCE,
] }

pub(super) const VPC: KindSpec = KindSpec {
    physical_id: PhysicalId::Generated("vpc"),
    fields: &[
        repl("cidr_block"),
        f("enable_dns_hostnames"),
        f("enable_dns_support"),
        TAGS,
    ],
    ..DEFAULT
};

pub(super) const INTERNET_GATEWAY: KindSpec = KindSpec {
    physical_id: PhysicalId::Generated("igw"),
    tier: 1,
    fields: &[repl("vpc_id"), TAGS],
    ..DEFAULT
};

pub(super) const SUBNET: KindSpec = KindSpec {
    physical_id: PhysicalId::Generated("subnet"),
    tier: 1,
    fields: &[
        repl("vpc_id"),
        repl("cidr_block"),
        repl("availability_zone"),
        f("map_public_ip_on_launch"),
        TAGS,
    ],
    ..DEFAULT
};

/// `id` is the allocation id.
pub(super) const ELASTIC_IP: KindSpec = KindSpec {
    physical_id: PhysicalId::Generated("eipalloc"),
    tier: 1,
    fields: &[TAGS],
    attrs: &["id", "public_ip"],
    usage: |cx| vec![public_ipv4("address", "public IPv4 address", 1, cx.region)],
    ..DEFAULT
};

/// `count` public IPv4 addresses in use for the month (AWS bills each one by the hour).
pub(super) fn public_ipv4(key: &'static str, item: &str, count: i64, region: &str) -> Usage {
    Usage::hours(
        key,
        item,
        quantity(count) * HOURS_PER_MONTH,
        PriceQuery::list("AmazonVPC", region, &[]).usage_type("PublicIPv4:InUseAddress"),
    )
}

/// Waits for `available`.
pub(super) const NAT_GATEWAY: KindSpec = KindSpec {
    physical_id: PhysicalId::Generated("nat"),
    tier: 2,
    fields: &[repl("subnet_id"), repl("allocation_id"), TAGS],
    ready_timeout: mins(10),
    usage: |cx| {
        vec![Usage::hours(
            "gateway",
            "NAT gateway hours (data processed not counted)",
            HOURS_PER_MONTH,
            PriceQuery::list("AmazonEC2", cx.region, &[("productFamily", "NAT Gateway")])
                .usage_type("NatGateway-Hours"),
        )]
    },
    ..DEFAULT
};

/// routes: list of maps {destination_cidr, gateway_id | nat_gateway_id}; the local route is not
/// listed. subnet_ids: the associated subnets.
pub(super) const ROUTE_TABLE: KindSpec = KindSpec {
    physical_id: PhysicalId::Generated("rtb"),
    tier: 3,
    fields: &[repl("vpc_id"), set("routes"), set("subnet_ids"), TAGS],
    ..DEFAULT
};

/// ingress: list of maps {protocol ("tcp"), from_port, to_port, description, and one of cidr |
/// source_group_id}. Egress stays the AWS default (all). `description` cannot change in place, and
/// a group in use cannot be deleted (`DependencyViolation`): a reworded description is never
/// compared, so it never plans a replacement of a group in use.
pub(super) const SECURITY_GROUP: KindSpec = KindSpec {
    physical_id: PhysicalId::Generated("sg"),
    tier: 1,
    fields: &[
        repl("vpc_id"),
        repl("group_name"),
        create_only("description"),
        set("ingress"),
        TAGS,
    ],
    name_field: Some("group_name"),
    replace: ReplaceOrder::CreateFirstWhenRenamed,
    ..DEFAULT
};

/// An update writes a new version with the full data (never SourceVersion), makes it the default,
/// and tags the template with `moodlestack:content-hash`. user_data is the plain text (the module
/// base64-encodes it). http_tokens is "required" (IMDSv2). `version` is the latest version
/// number, as a string.
pub(super) const LAUNCH_TEMPLATE: KindSpec = KindSpec {
    physical_id: PhysicalId::Generated("lt"),
    tier: 7,
    fields: &[
        repl("name"),
        f("image_id"),
        f("instance_type"),
        f("instance_profile_arn"),
        set("security_group_ids"),
        f("user_data"),
        f("http_tokens"),
        f("root_device_name"),
        f("root_volume_size"),
        f("root_volume_type"),
        f("root_volume_encrypted"),
        TAGS,
    ],
    name_field: Some("name"),
    attrs: &["id", "name", "version"],
    attrs_changed_by_update: &["version"],
    notes: launch_template_notes,
    ..DEFAULT
};

fn launch_template_notes(c: &ChangeView<'_>) -> Vec<Note> {
    if !c.is_real_update() {
        return Vec::new();
    }
    vec![if c.changed("user_data").is_some() {
        Note::new(
            NoteKind::Rollout,
            "rollout: new launch template version (rendered user-data or config.php changed)",
        )
    } else {
        Note::new(NoteKind::Rollout, "new launch template version")
    }]
}

/// The stable On-Demand instance, launched from its launch template. Profile and metadata options
/// are also passed on RunInstances.
pub(super) const INSTANCE: KindSpec = KindSpec {
    physical_id: PhysicalId::Generated("i"),
    tier: 8,
    fields: &[
        repl("launch_template_id"),
        repl("launch_template_version"),
        repl("subnet_id"),
        repl("instance_profile_arn"),
        repl("http_tokens"),
        TAGS,
    ],
    attrs: &["id", "private_ip"],
    ready_timeout: mins(10),
    notes: instance_notes,
    usage: instance_usage,
    ..DEFAULT
};

/// The stable instance: On-Demand hours of its launch template's type, and its root volume.
fn instance_usage(cx: &UsageCx<'_>) -> Vec<Usage> {
    let Some(lt) = cx.via("launch_template_id") else {
        return vec![Usage::hours(
            "instance",
            "instance (its launch template is not known)",
            HOURS_PER_MONTH,
            PriceQuery::Unpriced {
                why: "the instance type is in a launch template that was not found".into(),
            },
        )];
    };
    let mut out = Vec::new();
    if let Some(t) = lt.str("instance_type") {
        out.push(on_demand("instance", t, 1, cx.region));
    }
    out.extend(root_volumes(&lt, 1));
    out
}

/// `count` Linux instances of `instance_type` On-Demand for the month.
pub(super) fn on_demand(key: &'static str, instance_type: &str, count: i64, region: &str) -> Usage {
    Usage::hours(
        key,
        format!("{count} x {instance_type} On-Demand, Linux"),
        quantity(count) * HOURS_PER_MONTH,
        PriceQuery::list(
            "AmazonEC2",
            region,
            &[
                ("instanceType", instance_type),
                ("operatingSystem", "Linux"),
                ("tenancy", "Shared"),
                ("preInstalledSw", "NA"),
                ("capacitystatus", "Used"),
                ("licenseModel", "No License required"),
            ],
        )
        .unit("Hrs"),
    )
}

/// The EBS root volumes of `count` instances launched from the launch template `lt`.
pub(super) fn root_volumes(lt: &UsageCx<'_>, count: i64) -> Option<Usage> {
    let size = lt.int("root_volume_size")?;
    let kind = lt.str("root_volume_type").unwrap_or("gp3");
    Some(Usage::gb_month(
        "root volume",
        format!("{count} x {size} GB {kind} root volume (baseline IOPS and throughput)"),
        Some(quantity(count * size)),
        PriceQuery::list(
            "AmazonEC2",
            lt.region,
            &[("productFamily", "Storage"), ("volumeApiName", kind)],
        )
        .unit("GB-Mo"),
    ))
}

fn instance_notes(c: &ChangeView<'_>) -> Vec<Note> {
    if c.action != Action::Replace {
        return Vec::new();
    }
    vec![Note::new(
        NoteKind::Rollout,
        "rollout: the instance is terminated and launched again from the new launch template \
         version (its local disk is lost; shared state lives in the database and EFS)",
    )]
}
