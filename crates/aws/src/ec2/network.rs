//! VPC, internet gateway, subnets, Elastic IPs and NAT gateways.

use super::{
    available, client_token, create_tags, created_id, described, filter, filters, made,
    made_fields, no_answer, none_if_not_found, not_in_place, observed, physical, retag, settled,
    tag_map, tag_spec, Ec2Kind,
};
use crate::fields::delete_by;
use crate::fields::{answer, is_code, not_found_is_none, reported, sent, Reader};
use crate::{Clients, Created, Cx, Query, Update};
use async_trait::async_trait;
use aws_sdk_ec2::types::{
    Address, AttributeBooleanValue, DomainType, InternetGateway as SdkInternetGateway,
    NatGateway as SdkNatGateway, NatGatewayState, ResourceType, Subnet as SdkSubnet, SubnetState,
    Vpc as SdkVpc, VpcAttributeName, VpcState,
};
use moodlestack_model::{
    spec, CloudError, Fields, Kind, Lifecycle, NetworkInfo, Observed, SubnetInfo, Value, VpcInfo,
};
use std::collections::BTreeMap;

fn attr_bool(b: bool) -> AttributeBooleanValue {
    AttributeBooleanValue::builder().value(b).build()
}

// ---------------------------------------------------------------------------------------- VPC

/// A VPC or a subnet as observed: EC2 reports both `pending`, then `available` (usable). `state`
/// is the state word the describe or the create answered, `absent` when it answered none.
fn staged(
    kind: Kind,
    id: &str,
    tags: BTreeMap<String, String>,
    fields: Fields,
    state: Option<&str>,
    absent: &str,
) -> Observed {
    let status = state.unwrap_or(absent);
    let lifecycle = match status {
        "pending" => Lifecycle::Creating,
        _ => Lifecycle::Ready,
    };
    observed(kind, id, tags, fields, BTreeMap::new(), status, lifecycle)
}

/// A VPC as DescribeVpcs reports it (its DNS attributes are read apart).
fn vpc_observed(vpc: &SdkVpc) -> Option<Observed> {
    let fields = reported([("cidr_block", vpc.cidr_block().map(Value::str))]);
    let (state, tags) = (vpc.state().map(VpcState::as_str), tag_map(vpc.tags()));
    Some(staged(Kind::Vpc, vpc.vpc_id()?, tags, fields, state, ""))
}

async fn vpc_dns(c: &Clients, vpc_id: &str) -> Result<(bool, bool), CloudError> {
    let get = |attr: VpcAttributeName| async move {
        answer(
            "ec2:DescribeVpcAttribute",
            c.ec2
                .describe_vpc_attribute()
                .vpc_id(vpc_id)
                .attribute(attr)
                .send(),
        )
        .await
    };
    let (h, s) = tokio::try_join!(
        get(VpcAttributeName::EnableDnsHostnames),
        get(VpcAttributeName::EnableDnsSupport)
    )?;
    Ok((
        h.enable_dns_hostnames()
            .and_then(|v| v.value())
            .unwrap_or(false),
        s.enable_dns_support()
            .and_then(|v| v.value())
            .unwrap_or(true),
    ))
}

/// This file's kinds under their [`Kind`](moodlestack_model::Kind) names, for the registry
/// [`ops`](crate::ops).
pub(crate) mod kinds {
    pub(crate) use super::{ElasticIp, InternetGateway, NatGateway, Subnet, Vpc};
}

/// `AWS::EC2::VPC`.
pub(crate) struct Vpc;

#[async_trait]
impl Ec2Kind for Vpc {
    async fn list(&self, cx: &Cx<'_>, q: Query<'_>) -> Result<Vec<Observed>, CloudError> {
        let req =
            cx.c.ec2
                .describe_vpcs()
                .set_filters(Some(filters(cx.scope, q)))
                .set_vpc_ids(physical(q));
        // DescribeVpcs does not report the DNS attributes; DescribeVpcAttribute takes one VPC and
        // one attribute per call (a stack has one VPC): all in flight at once, and beside
        // DescribeVpcs when the id is known (a poll after the create: one round, not two).
        let asked = async {
            match q {
                Query::Physical(id) => Some(vpc_dns(cx.c, id).await),
                _ => None,
            }
        };
        let (found, asked) = tokio::join!(described!("ec2:DescribeVpcs", req), asked);
        let mut out: Vec<Observed> = found?.iter().filter_map(vpc_observed).collect();
        // By id, `out` holds that VPC or nothing (not listed yet: EC2 lags); an early read that
        // failed with the same lag is made again. A listed VPC whose attributes are not found is
        // reported without them: EC2 lists a deleted VPC for a moment longer (a read after a
        // run waits for that to pass), and a new one may be listed before its attributes can be
        // read (absent fields show as a change, never as a second VPC to create).
        let dns = futures::future::try_join_all(out.iter().map(|o| async {
            match &asked {
                Some(Ok(dns)) => Ok(Some(*dns)),
                _ => not_found_is_none(vpc_dns(cx.c, &o.physical_id).await),
            }
        }))
        .await?;
        for (o, dns) in out.iter_mut().zip(dns) {
            if let Some((hostnames, support)) = dns {
                o.fields
                    .insert("enable_dns_hostnames".into(), Value::Bool(hostnames));
                o.fields
                    .insert("enable_dns_support".into(), Value::Bool(support));
            }
        }
        Ok(out)
    }

    async fn create(&self, cx: &Cx<'_>, r: &Reader<'_>) -> Result<Created, CloudError> {
        let tags = create_tags(cx.scope, &r.id, r)?;
        let out = answer(
            "ec2:CreateVpc",
            cx.c.ec2
                .create_vpc()
                .cidr_block(r.str("cidr_block")?)
                .tag_specifications(tag_spec(ResourceType::Vpc, &tags))
                .send(),
        )
        .await?;
        let (vpc, vpc_id) = made("ec2:CreateVpc", "VPC", out.vpc(), |v| v.vpc_id())?;
        let state = vpc.state().map(VpcState::as_str);
        let o = staged(Kind::Vpc, vpc_id, tags, made_fields(r), state, "pending");
        // AWS defaults: DNS support on, DNS hostnames off; only differences need a call.
        let mut changed = Vec::new();
        if r.opt_bool("enable_dns_support") == Some(false) {
            changed.push("enable_dns_support");
        }
        if r.opt_bool("enable_dns_hostnames") == Some(true) {
            changed.push("enable_dns_hostnames");
        }
        self.update_made(cx, &o, r, &changed).await?;
        Ok(Created::New(o))
    }

    async fn update_rest(&self, cx: &Cx<'_>, u: Update<'_>) -> Result<(), CloudError> {
        let (current, r, rest) = u.parts();
        for f in rest {
            let req = cx.c.ec2.modify_vpc_attribute().vpc_id(&current.physical_id);
            let req = match *f {
                "enable_dns_hostnames" => req.enable_dns_hostnames(attr_bool(r.bool(f)?)),
                "enable_dns_support" => req.enable_dns_support(attr_bool(r.bool(f)?)),
                other => return Err(not_in_place(r, other)),
            };
            sent("ec2:ModifyVpcAttribute", req.send()).await?;
        }
        Ok(())
    }

    async fn delete(&self, cx: &Cx<'_>, current: &Observed) -> Result<(), CloudError> {
        delete_by!(sent "ec2:DeleteVpc": cx.c.ec2.delete_vpc().vpc_id(current))
    }
}

// --------------------------------------------------------------------------- internet gateway

/// A gateway as observed: `vpc_id` is the VPC it is attached to (absent while detached).
fn igw_observed(igw: &SdkInternetGateway) -> Option<Observed> {
    let id = igw.internet_gateway_id()?;
    let mut fields = Fields::new();
    let attachment = igw.attachments().iter().find(|a| a.vpc_id().is_some());
    if let Some(vpc) = attachment.and_then(|a| a.vpc_id()) {
        fields.insert("vpc_id".into(), Value::str(vpc));
    }
    let status = match attachment.and_then(|a| a.state()) {
        Some(s) => s.as_str(),
        None => "detached",
    };
    // Usable whatever its attachment state: the routes to it only need its id.
    Some(observed(
        Kind::InternetGateway,
        id,
        tag_map(igw.tags()),
        fields,
        BTreeMap::new(),
        status,
        Lifecycle::Ready,
    ))
}

async fn describe_igws(
    c: &Clients,
    cx: &Cx<'_>,
    q: Query<'_>,
) -> Result<Vec<Observed>, CloudError> {
    let req = c
        .ec2
        .describe_internet_gateways()
        .set_filters(Some(filters(cx.scope, q)))
        .set_internet_gateway_ids(physical(q));
    let found = described!("ec2:DescribeInternetGateways", req).await?;
    Ok(found.iter().filter_map(igw_observed).collect())
}

async fn attach_igw(c: &Clients, igw_id: &str, vpc_id: &str) -> Result<(), CloudError> {
    let req = c
        .ec2
        .attach_internet_gateway()
        .internet_gateway_id(igw_id)
        .vpc_id(vpc_id);
    sent("ec2:AttachInternetGateway", req.send()).await
}

/// The gateway of `r` that an interrupted create left attached nowhere, attached to `vpc_id` now
/// (and its tags brought to the stack's). None when there is none, or when the one listed is
/// gone: EC2 lists a deleted gateway for a moment, and its attach answers that the gateway is not
/// found. A gateway made a moment ago can answer the same while EC2 catches up, so the attach is
/// tried for EC2's few seconds first ([`settled`]).
async fn attach_unattached(
    cx: &Cx<'_>,
    r: &Reader<'_>,
    vpc_id: &str,
) -> Result<Option<Observed>, CloudError> {
    let logical = Query::Logical {
        id: &r.id,
        fields: r.fields,
    };
    let unattached = crate::verified(
        cx.scope,
        Kind::InternetGateway,
        logical,
        describe_igws(cx.c, cx, logical).await?,
    )
    .into_iter()
    .find(|o| !o.fields.contains_key("vpc_id"));
    let Some(mut o) = unattached else {
        return Ok(None);
    };
    match settled(|| attach_igw(cx.c, &o.physical_id, vpc_id)).await {
        Ok(()) => {}
        Err(e) if is_code(&e, "InvalidInternetGatewayID.NotFound") => return Ok(None),
        Err(e) => return Err(e),
    }
    o.fields.insert("vpc_id".into(), Value::str(vpc_id));
    let tags_differ = spec(Kind::InternetGateway)
        .field("tags")
        .zip(r.fields.get("tags"))
        .is_some_and(|(f, want)| f.differs(want, o.fields.get("tags")));
    if tags_differ {
        o = retag(cx, &o, r, &["tags"]).await?.0;
    }
    Ok(Some(o))
}

/// `AWS::EC2::InternetGateway`. A gateway is made, then attached: a create interrupted in
/// between leaves a gateway of the stack that is attached nowhere. Moving a gateway to another
/// VPC is a replacement, but attaching that one is finishing its create: a list by logical id
/// leaves it out (the generic adoption would refuse the missing `vpc_id`) and `create` attaches
/// it.
pub(crate) struct InternetGateway;

#[async_trait]
impl Ec2Kind for InternetGateway {
    async fn list(&self, cx: &Cx<'_>, q: Query<'_>) -> Result<Vec<Observed>, CloudError> {
        let found = describe_igws(cx.c, cx, q).await?;
        Ok(match q {
            Query::Logical { .. } => found
                .into_iter()
                .filter(|o| o.fields.contains_key("vpc_id"))
                .collect(),
            _ => found,
        })
    }

    async fn create(&self, cx: &Cx<'_>, r: &Reader<'_>) -> Result<Created, CloudError> {
        let tags = create_tags(cx.scope, &r.id, r)?;
        let vpc_id = r.str("vpc_id")?;
        let fields = Fields::from([("vpc_id".to_string(), Value::str(vpc_id))]);
        // A gateway of this resource left detached by an interrupted create: attach it. Not
        // when the plan saw the stack under the lease (`cx.planned`): it saw no such gateway, or
        // planned its replacement, whose delete has just gone out (and EC2 may list the deleted
        // gateway for a moment longer).
        if !cx.planned {
            if let Some(o) = attach_unattached(cx, r, vpc_id).await? {
                return Ok(Created::New(o));
            }
        }
        let igw_id = created_id(
            "ec2:CreateInternetGateway",
            cx.c.ec2
                .create_internet_gateway()
                .tag_specifications(tag_spec(ResourceType::InternetGateway, &tags))
                .send(),
            "id",
            |out| Some(out.internet_gateway()?.internet_gateway_id()?.to_string()),
        )
        .await?;
        settled(|| attach_igw(cx.c, &igw_id, vpc_id)).await?;
        let o = available(Kind::InternetGateway, &igw_id, tags, fields);
        Ok(Created::New(o))
    }

    /// Detaches the gateway from the VPC its observation saw it in, without a read first, then
    /// deletes it. Should AWS refuse the delete because it is still attached (to a VPC it was
    /// attached to since), it reads where, detaches it there and deletes it.
    async fn delete(&self, cx: &Cx<'_>, current: &Observed) -> Result<(), CloudError> {
        let igw_id = current.physical_id.as_str();
        detach_igw(cx.c, igw_id, std::slice::from_ref(current)).await?;
        let delete = || {
            sent(
                "ec2:DeleteInternetGateway",
                cx.c.ec2
                    .delete_internet_gateway()
                    .internet_gateway_id(igw_id)
                    .send(),
            )
        };
        match delete().await {
            Err(e) if is_code(&e, "DependencyViolation") => {
                let found = describe_igws(cx.c, cx, Query::Physical(igw_id)).await?;
                detach_igw(cx.c, igw_id, &found).await?;
                delete().await
            }
            other => other,
        }
    }
}

/// Detaches the gateway `igw_id` from the VPCs that `seen` (its observations) name; one it is no
/// longer attached to is no error.
async fn detach_igw(c: &Clients, igw_id: &str, seen: &[Observed]) -> Result<(), CloudError> {
    for vpc in seen
        .iter()
        .filter_map(|o| o.fields.get("vpc_id").and_then(Value::as_str))
    {
        let r = sent(
            "ec2:DetachInternetGateway",
            c.ec2
                .detach_internet_gateway()
                .internet_gateway_id(igw_id)
                .vpc_id(vpc)
                .send(),
        )
        .await;
        match r {
            Err(e) if is_code(&e, "Gateway.NotAttached") => {}
            other => other?,
        }
    }
    Ok(())
}

// ------------------------------------------------------------------------------------ subnets

fn subnet_observed(s: &SdkSubnet) -> Option<Observed> {
    let id = s.subnet_id()?;
    let fields = reported([
        ("vpc_id", s.vpc_id().map(Value::str)),
        ("cidr_block", s.cidr_block().map(Value::str)),
        ("availability_zone", s.availability_zone().map(Value::str)),
        (
            "map_public_ip_on_launch",
            Some(Value::Bool(s.map_public_ip_on_launch().unwrap_or(false))),
        ),
    ]);
    let state = s.state().map(SubnetState::as_str);
    Some(staged(
        Kind::Subnet,
        id,
        tag_map(s.tags()),
        fields,
        state,
        "",
    ))
}

/// `AWS::EC2::Subnet`.
pub(crate) struct Subnet;

#[async_trait]
impl Ec2Kind for Subnet {
    async fn list(&self, cx: &Cx<'_>, q: Query<'_>) -> Result<Vec<Observed>, CloudError> {
        let req =
            cx.c.ec2
                .describe_subnets()
                .set_filters(Some(filters(cx.scope, q)))
                .set_subnet_ids(physical(q));
        let found = described!("ec2:DescribeSubnets", req).await?;
        Ok(found.iter().filter_map(subnet_observed).collect())
    }

    async fn create(&self, cx: &Cx<'_>, r: &Reader<'_>) -> Result<Created, CloudError> {
        let tags = create_tags(cx.scope, &r.id, r)?;
        let out = answer(
            "ec2:CreateSubnet",
            cx.c.ec2
                .create_subnet()
                .vpc_id(r.str("vpc_id")?)
                .cidr_block(r.str("cidr_block")?)
                .availability_zone(r.str("availability_zone")?)
                .tag_specifications(tag_spec(ResourceType::Subnet, &tags))
                .send(),
        )
        .await?;
        let (s, subnet_id) = made("ec2:CreateSubnet", "subnet", out.subnet(), |s| {
            s.subnet_id()
        })?;
        let state = s.state().map(SubnetState::as_str);
        let o = staged(
            Kind::Subnet,
            subnet_id,
            tags,
            made_fields(r),
            state,
            "pending",
        );
        if r.opt_bool("map_public_ip_on_launch") == Some(true) {
            let changed = ["map_public_ip_on_launch"];
            self.update_made(cx, &o, r, &changed).await?;
        }
        Ok(Created::New(o))
    }

    async fn update_rest(&self, cx: &Cx<'_>, u: Update<'_>) -> Result<(), CloudError> {
        let (current, r, rest) = u.parts();
        for f in rest {
            match *f {
                "map_public_ip_on_launch" => {
                    let req = cx.c.ec2.modify_subnet_attribute();
                    let req = req
                        .subnet_id(&current.physical_id)
                        .map_public_ip_on_launch(attr_bool(r.bool(f)?));
                    sent("ec2:ModifySubnetAttribute", req.send()).await?;
                }
                other => return Err(not_in_place(r, other)),
            }
        }
        Ok(())
    }

    async fn delete(&self, cx: &Cx<'_>, current: &Observed) -> Result<(), CloudError> {
        delete_by!(sent "ec2:DeleteSubnet": cx.c.ec2.delete_subnet().subnet_id(current))
    }
}

// -------------------------------------------------------------------------------- Elastic IPs

fn eip_observed(a: &Address) -> Option<Observed> {
    Some(eip(a.allocation_id()?, tag_map(a.tags()), a.public_ip()))
}

/// An address as described or as allocated: its allocation id, its `public_ip` when AWS reports
/// it.
fn eip(allocation_id: &str, tags: BTreeMap<String, String>, public_ip: Option<&str>) -> Observed {
    let attrs = public_ip
        .map(|ip| ("public_ip".to_string(), ip.to_string()))
        .into_iter()
        .collect();
    observed(
        Kind::ElasticIp,
        allocation_id,
        tags,
        Fields::new(),
        attrs,
        "allocated",
        Lifecycle::Ready,
    )
}

/// `AWS::EC2::EIP`.
pub(crate) struct ElasticIp;

#[async_trait]
impl Ec2Kind for ElasticIp {
    async fn list(&self, cx: &Cx<'_>, q: Query<'_>) -> Result<Vec<Observed>, CloudError> {
        // DescribeAddresses is not paginated: one call answers for every address.
        let out = answer(
            "ec2:DescribeAddresses",
            cx.c.ec2
                .describe_addresses()
                .set_filters(Some(filters(cx.scope, q)))
                .set_allocation_ids(physical(q))
                .send(),
        )
        .await
        .map(Some);
        Ok(match none_if_not_found(out)? {
            Some(out) => out.addresses().iter().filter_map(eip_observed).collect(),
            None => Vec::new(),
        })
    }

    async fn create(&self, cx: &Cx<'_>, r: &Reader<'_>) -> Result<Created, CloudError> {
        let tags = create_tags(cx.scope, &r.id, r)?;
        let out = answer(
            "ec2:AllocateAddress",
            cx.c.ec2
                .allocate_address()
                .domain(DomainType::Vpc)
                .tag_specifications(tag_spec(ResourceType::ElasticIp, &tags))
                .send(),
        )
        .await?;
        let alloc = out
            .allocation_id()
            .ok_or_else(|| no_answer("ec2:AllocateAddress", "allocation id"))?;
        Ok(Created::New(eip(alloc, tags, out.public_ip())))
    }

    async fn delete(&self, cx: &Cx<'_>, current: &Observed) -> Result<(), CloudError> {
        delete_by!(sent "ec2:ReleaseAddress": cx.c.ec2.release_address().allocation_id(current))
    }
}

// ------------------------------------------------------------------------------- NAT gateways

/// A NAT gateway as observed, with its tags (the generic caller checks them: moto's
/// DescribeNatGateways ignores tag filters, so the list holds every gateway of the account).
/// A failed gateway reports its failure message in its status.
fn nat_observed(n: &SdkNatGateway) -> Option<Observed> {
    let id = n.nat_gateway_id()?;
    let allocation = n
        .nat_gateway_addresses()
        .iter()
        .find_map(|a| a.allocation_id());
    let fields = reported([
        ("subnet_id", n.subnet_id().map(Value::str)),
        ("allocation_id", allocation.map(Value::str)),
    ]);
    let mut status = n
        .state()
        .map(|s| s.as_str())
        .unwrap_or_default()
        .to_string();
    if status == "failed" {
        if let Some(m) = n.failure_message() {
            status = format!("failed: {m}");
        }
    }
    Some(observed(
        Kind::NatGateway,
        id,
        tag_map(n.tags()),
        fields,
        BTreeMap::new(),
        &status,
        nat_lifecycle(n.state()),
    ))
}

fn nat_lifecycle(s: Option<&NatGatewayState>) -> Lifecycle {
    match s {
        Some(NatGatewayState::Pending) => Lifecycle::Creating,
        Some(NatGatewayState::Deleting | NatGatewayState::Deleted) => Lifecycle::Deleting,
        Some(NatGatewayState::Failed) => Lifecycle::Failed,
        _ => Lifecycle::Ready,
    }
}

/// What a list keeps of the gateways described: a deleted gateway stays visible for about an
/// hour and is left out (a list by id that finds only it means gone); a failed one never becomes
/// usable and AWS deletes it by itself, so only a list by id (a poll) reports it.
fn nat_kept(q: Query<'_>, n: &SdkNatGateway) -> bool {
    match n.state() {
        Some(NatGatewayState::Deleted) => false,
        Some(NatGatewayState::Failed) => matches!(q, Query::Physical(_)),
        _ => true,
    }
}

/// `AWS::EC2::NatGateway`.
pub(crate) struct NatGateway;

#[async_trait]
impl Ec2Kind for NatGateway {
    async fn list(&self, cx: &Cx<'_>, q: Query<'_>) -> Result<Vec<Observed>, CloudError> {
        let req =
            cx.c.ec2
                .describe_nat_gateways()
                .set_filter(Some(filters(cx.scope, q)))
                .set_nat_gateway_ids(physical(q));
        let found = described!("ec2:DescribeNatGateways", req).await?;
        Ok(found
            .iter()
            .filter(|n| nat_kept(q, n))
            .filter_map(nat_observed)
            .collect())
    }

    async fn create(&self, cx: &Cx<'_>, r: &Reader<'_>) -> Result<Created, CloudError> {
        let tags = create_tags(cx.scope, &r.id, r)?;
        let mut salt = String::new();
        loop {
            let out = answer(
                "ec2:CreateNatGateway",
                cx.c.ec2
                    .create_nat_gateway()
                    .subnet_id(r.str("subnet_id")?)
                    .allocation_id(r.str("allocation_id")?)
                    .client_token(client_token(cx.scope, &r.id, r.fields, &salt))
                    .tag_specifications(tag_spec(ResourceType::Natgateway, &tags))
                    .send(),
            )
            .await?;
            let (n, nat_id) = made("ec2:CreateNatGateway", "gateway", out.nat_gateway(), |n| {
                n.nat_gateway_id()
            })?;
            // The token of an earlier gateway with the same fields that failed or was deleted
            // since returns that gateway: derive a new token from it (deterministic, so a rerun
            // derives the same one).
            let gone = n.state().is_some_and(|s| {
                matches!(
                    s,
                    NatGatewayState::Deleting | NatGatewayState::Deleted | NatGatewayState::Failed
                )
            });
            if gone && salt.len() < 400 {
                salt.push_str(nat_id);
                continue;
            }
            let fields = made_fields(r);
            let status = n.state().map(|s| s.as_str()).unwrap_or("pending");
            let lifecycle = match n.state() {
                None => Lifecycle::Creating,
                s => nat_lifecycle(s),
            };
            return Ok(Created::New(observed(
                Kind::NatGateway,
                nat_id,
                tags,
                fields,
                BTreeMap::new(),
                status,
                lifecycle,
            )));
        }
    }

    async fn delete(&self, cx: &Cx<'_>, current: &Observed) -> Result<(), CloudError> {
        delete_by!(sent "ec2:DeleteNatGateway":
            cx.c.ec2.delete_nat_gateway().nat_gateway_id(current))
    }

    // Goes through `deleting` before it is `deleted`.
    fn gone_when_deleted(&self) -> bool {
        false
    }
}

// --------------------------------------------------------------------- an existing network

/// [`Cloud::network`](moodlestack_model::Cloud::network): the VPC's two DNS attributes
/// (`DescribeVpcAttribute` takes one attribute per call; a VPC that does not exist answers
/// `InvalidVpcID.NotFound`, so no `DescribeVpcs` is needed to know it exists) and the subnets
/// (one `DescribeSubnets` filtered by `subnet-id`: ids that do not exist are not listed, where
/// asking by `SubnetIds` fails the whole call at the first missing one). All three requests are
/// in flight at once: one round.
pub(crate) async fn existing_network(
    c: &Clients,
    vpc_id: &str,
    subnet_ids: &[String],
) -> Result<NetworkInfo, CloudError> {
    let vpc = async {
        match vpc_dns(c, vpc_id).await {
            Ok((hostnames, support)) => Ok(Some(VpcInfo {
                vpc_id: vpc_id.to_string(),
                enable_dns_support: support,
                enable_dns_hostnames: hostnames,
            })),
            // `InvalidVpcID.NotFound`, or `InvalidVpcID.Malformed` for an id that cannot exist.
            Err(CloudError::Api { code, .. }) if code.starts_with("InvalidVpcID.") => Ok(None),
            Err(e) => Err(e),
        }
    };
    let subnets = async {
        if subnet_ids.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<&str> = subnet_ids.iter().map(String::as_str).collect();
        let req = c.ec2.describe_subnets().filters(filter("subnet-id", &ids));
        let found = described!("ec2:DescribeSubnets", req).await?;
        Ok(found.iter().filter_map(subnet_info).collect())
    };
    let (vpc, subnets) = tokio::try_join!(vpc, subnets)?;
    Ok(NetworkInfo { vpc, subnets })
}

/// Where a described subnet is (None without an id, VPC or zone).
fn subnet_info(s: &SdkSubnet) -> Option<SubnetInfo> {
    Some(SubnetInfo {
        subnet_id: s.subnet_id()?.to_string(),
        vpc_id: s.vpc_id()?.to_string(),
        availability_zone: s.availability_zone()?.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ec2::check::{observation, scope, tags};
    use aws_sdk_ec2::types::{AttachmentStatus, InternetGatewayAttachment, NatGatewayAddress};

    #[test]
    fn a_vpc_is_observed_with_its_descriptors_fields() {
        let vpc = SdkVpc::builder()
            .vpc_id("vpc-1")
            .cidr_block("10.0.0.0/16")
            .state(VpcState::Pending)
            .set_tags(Some(tags("net.vpc")))
            .build();
        let o = vpc_observed(&vpc).unwrap();
        // The DNS attributes are read with DescribeVpcAttribute.
        observation(
            &o,
            &["enable_dns_hostnames", "enable_dns_support"],
            Lifecycle::Creating,
            "net.vpc",
        );
    }

    #[test]
    fn a_described_subnet_says_which_vpc_and_zone_it_is_in() {
        let s = SdkSubnet::builder()
            .subnet_id("subnet-1")
            .vpc_id("vpc-1")
            .availability_zone("eu-west-1a")
            .cidr_block("10.0.0.0/24")
            .build();
        assert_eq!(
            subnet_info(&s),
            Some(SubnetInfo {
                subnet_id: "subnet-1".into(),
                vpc_id: "vpc-1".into(),
                availability_zone: "eu-west-1a".into(),
            })
        );
        // An answer without a zone says nothing the check could use.
        let no_zone = SdkSubnet::builder()
            .subnet_id("subnet-2")
            .vpc_id("vpc-1")
            .build();
        assert_eq!(subnet_info(&no_zone), None);
    }

    #[test]
    fn an_internet_gateway_is_observed_with_its_vpc() {
        let igw = SdkInternetGateway::builder()
            .internet_gateway_id("igw-1")
            .attachments(
                InternetGatewayAttachment::builder()
                    .vpc_id("vpc-1")
                    .state(AttachmentStatus::Attached)
                    .build(),
            )
            .set_tags(Some(tags("net.igw")))
            .build();
        let o = igw_observed(&igw).unwrap();
        observation(&o, &[], Lifecycle::Ready, "net.igw");
        // Detached (an interrupted create): no vpc_id.
        let bare = SdkInternetGateway::builder()
            .internet_gateway_id("igw-2")
            .set_tags(Some(tags("net.igw")))
            .build();
        let o = igw_observed(&bare).unwrap();
        observation(&o, &["vpc_id"], Lifecycle::Ready, "net.igw");
        assert_eq!(o.status, "detached");
    }

    #[test]
    fn a_subnet_is_observed_with_its_descriptors_fields() {
        let s = SdkSubnet::builder()
            .subnet_id("subnet-1")
            .vpc_id("vpc-1")
            .cidr_block("10.0.0.0/24")
            .availability_zone("eu-west-1a")
            .map_public_ip_on_launch(true)
            .state(SubnetState::Available)
            .set_tags(Some(tags("net.subnet.public.a")))
            .build();
        let o = subnet_observed(&s).unwrap();
        observation(&o, &[], Lifecycle::Ready, "net.subnet.public.a");
        assert_eq!(o.fields["map_public_ip_on_launch"], Value::Bool(true));
    }

    #[test]
    fn an_elastic_ip_is_observed_with_its_address() {
        let a = Address::builder()
            .allocation_id("eipalloc-1")
            .public_ip("203.0.113.7")
            .set_tags(Some(tags("net.eip.nat.a")))
            .build();
        let o = eip_observed(&a).unwrap();
        observation(&o, &[], Lifecycle::Ready, "net.eip.nat.a");
        assert_eq!(o.attrs["public_ip"], "203.0.113.7");
    }

    fn nat(id: &str, logical: &str, alloc: &str, state: NatGatewayState) -> SdkNatGateway {
        SdkNatGateway::builder()
            .nat_gateway_id(id)
            .subnet_id("subnet-1")
            .nat_gateway_addresses(NatGatewayAddress::builder().allocation_id(alloc).build())
            .state(state)
            .set_tags(Some(tags(logical)))
            .build()
    }

    #[test]
    fn a_nat_gateway_is_observed_with_its_tags_and_lifecycle() {
        let o = nat_observed(&nat(
            "nat-1",
            "net.nat.a",
            "eipalloc-1",
            NatGatewayState::Pending,
        ))
        .unwrap();
        observation(&o, &[], Lifecycle::Creating, "net.nat.a");
        let failed = SdkNatGateway::builder()
            .nat_gateway_id("nat-2")
            .state(NatGatewayState::Failed)
            .failure_message("no capacity")
            .set_tags(Some(tags("net.nat.a")))
            .build();
        let o = nat_observed(&failed).unwrap();
        assert_eq!(o.lifecycle, Lifecycle::Failed);
        assert_eq!(o.status, "failed: no capacity");
        // A failed gateway is only reported to a poll; a deleted one never.
        assert!(nat_kept(Query::Physical("nat-2"), &failed));
        assert!(!nat_kept(Query::Stack, &failed));
        let deleted = nat("nat-3", "net.nat.a", "eipalloc-1", NatGatewayState::Deleted);
        assert!(!nat_kept(Query::Physical("nat-3"), &deleted));
        let deleting = nat(
            "nat-4",
            "net.nat.a",
            "eipalloc-1",
            NatGatewayState::Deleting,
        );
        assert!(nat_kept(Query::Stack, &deleting));
        assert_eq!(
            nat_observed(&deleting).unwrap().lifecycle,
            Lifecycle::Deleting
        );
    }

    /// moto's DescribeNatGateways ignores tag filters: asked for `net.nat.b` it answers with
    /// every gateway, `net.nat.a` included. The generic verification keeps only the one asked
    /// for, so creating `net.nat.b` can never adopt `net.nat.a` (which failed with "field
    /// allocation_id: cannot be changed in place").
    #[test]
    fn a_list_for_one_nat_gateway_keeps_only_that_one_whatever_the_api_answers() {
        let answer = [
            nat(
                "nat-a",
                "net.nat.a",
                "eipalloc-a",
                NatGatewayState::Available,
            ),
            nat(
                "nat-b",
                "net.nat.b",
                "eipalloc-b",
                NatGatewayState::Available,
            ),
        ];
        let q_id = moodlestack_model::ResourceId::from("net.nat.b");
        let fields = Fields::from([
            ("subnet_id".to_string(), Value::str("subnet-1")),
            ("allocation_id".to_string(), Value::str("eipalloc-b")),
        ]);
        let q = Query::Logical {
            id: &q_id,
            fields: &fields,
        };
        let listed: Vec<Observed> = answer
            .iter()
            .filter(|n| nat_kept(q, n))
            .filter_map(nat_observed)
            .collect();
        assert_eq!(listed.len(), 2);
        let kept = crate::verified(&scope("demo"), Kind::NatGateway, q, listed.clone());
        assert_eq!(kept.len(), 1);
        assert_eq!(kept[0].physical_id, "nat-b");
        // Only net.nat.a exists yet: nothing to adopt, so net.nat.b is created.
        let only_a = listed
            .into_iter()
            .filter(|o| o.physical_id == "nat-a")
            .collect();
        assert!(crate::verified(&scope("demo"), Kind::NatGateway, q, only_a).is_empty());
        // Another stack's gateway with the same logical id is not ours either.
        let theirs: Vec<Observed> = answer.iter().filter_map(nat_observed).collect();
        assert!(crate::verified(&scope("other"), Kind::NatGateway, q, theirs).is_empty());
    }
}
