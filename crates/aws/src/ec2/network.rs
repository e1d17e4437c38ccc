//! VPC, internet gateway, subnets, Elastic IPs and NAT gateways.

use super::{client_token, create_tags, none_if_not_found, observed, tag_map, tag_spec, Query};
use crate::fields::{api_err, Reader};
use crate::Clients;
use aws_sdk_ec2::types::{AttributeBooleanValue, DomainType, ResourceType, VpcAttributeName};
use moodlestack_model::{CloudError, Fields, Kind, Observed, ResourceId, Scope, Value};
use std::collections::BTreeMap;

fn attr_bool(b: bool) -> AttributeBooleanValue {
    AttributeBooleanValue::builder().value(b).build()
}

// ---------------------------------------------------------------------------------------- VPC

pub(super) async fn list_vpcs(
    c: &Clients,
    q: Query<'_>,
    full: bool,
) -> Result<Vec<Observed>, CloudError> {
    let req = c
        .ec2
        .describe_vpcs()
        .set_filters(Some(q.filters()))
        .set_vpc_ids(q.physical().map(|p| vec![p]));
    let pages: Result<Vec<_>, _> = req.into_paginator().send().collect().await;
    let pages = none_if_not_found(pages.map_err(|e| api_err("ec2:DescribeVpcs", e)))?;
    let mut out = Vec::new();
    for vpc in pages.iter().flat_map(|p| p.vpcs()) {
        let Some(id) = vpc.vpc_id() else { continue };
        let mut fields = Fields::new();
        if let Some(cidr) = vpc.cidr_block() {
            fields.insert("cidr_block".into(), Value::str(cidr));
        }
        let status = vpc.state().map(|s| s.as_str()).unwrap_or_default();
        out.push(observed(
            Kind::Vpc,
            id,
            tag_map(vpc.tags()),
            fields,
            BTreeMap::new(),
            status,
        ));
    }
    if full {
        // DescribeVpcs does not report the DNS attributes; DescribeVpcAttribute takes one VPC and
        // one attribute per call (a stack has one VPC).
        let attrs =
            futures::future::try_join_all(out.iter().map(|o| vpc_dns(c, &o.physical_id))).await?;
        for (o, (hostnames, support)) in out.iter_mut().zip(attrs) {
            o.fields
                .insert("enable_dns_hostnames".into(), Value::Bool(hostnames));
            o.fields
                .insert("enable_dns_support".into(), Value::Bool(support));
        }
    }
    Ok(out)
}

async fn vpc_dns(c: &Clients, vpc_id: &str) -> Result<(bool, bool), CloudError> {
    let get = |attr: VpcAttributeName| async move {
        c.ec2
            .describe_vpc_attribute()
            .vpc_id(vpc_id)
            .attribute(attr)
            .send()
            .await
            .map_err(|e| api_err("ec2:DescribeVpcAttribute", e))
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

pub(super) async fn create_vpc(
    c: &Clients,
    scope: &Scope,
    id: &ResourceId,
    r: &Reader<'_>,
) -> Result<Observed, CloudError> {
    let tags = create_tags(scope, id, r)?;
    let out = c
        .ec2
        .create_vpc()
        .cidr_block(r.str("cidr_block")?)
        .tag_specifications(tag_spec(ResourceType::Vpc, &tags))
        .send()
        .await
        .map_err(|e| api_err("ec2:CreateVpc", e))?;
    let vpc = out
        .vpc()
        .ok_or_else(|| CloudError::Other("ec2:CreateVpc returned no VPC".into()))?;
    let vpc_id = vpc.vpc_id().unwrap_or_default().to_string();
    let mut fields = r.fields.clone();
    fields.remove("tags");
    let status = vpc
        .state()
        .map(|s| s.as_str())
        .unwrap_or("pending")
        .to_string();
    let mut o = observed(Kind::Vpc, &vpc_id, tags, fields, BTreeMap::new(), &status);
    // AWS defaults: DNS support on, DNS hostnames off; only differences need a call.
    let mut changed = Vec::new();
    if r.opt_bool("enable_dns_support") == Some(false) {
        changed.push("enable_dns_support");
    }
    if r.opt_bool("enable_dns_hostnames") == Some(true) {
        changed.push("enable_dns_hostnames");
    }
    super::settled(|| update_vpc(c, &o, r, &changed)).await?;
    o.status = status;
    Ok(o)
}

pub(super) async fn update_vpc(
    c: &Clients,
    current: &Observed,
    r: &Reader<'_>,
    changed: &[&str],
) -> Result<(), CloudError> {
    for f in changed {
        let req = c.ec2.modify_vpc_attribute().vpc_id(&current.physical_id);
        let req = match *f {
            "enable_dns_hostnames" => req.enable_dns_hostnames(attr_bool(r.bool(f)?)),
            "enable_dns_support" => req.enable_dns_support(attr_bool(r.bool(f)?)),
            other => return Err(super::not_in_place(r, other)),
        };
        req.send()
            .await
            .map_err(|e| api_err("ec2:ModifyVpcAttribute", e))?;
    }
    Ok(())
}

// --------------------------------------------------------------------------- internet gateway

pub(super) async fn list_igws(c: &Clients, q: Query<'_>) -> Result<Vec<Observed>, CloudError> {
    let req = c
        .ec2
        .describe_internet_gateways()
        .set_filters(Some(q.filters()))
        .set_internet_gateway_ids(q.physical().map(|p| vec![p]));
    let pages: Result<Vec<_>, _> = req.into_paginator().send().collect().await;
    let pages = none_if_not_found(pages.map_err(|e| api_err("ec2:DescribeInternetGateways", e)))?;
    let mut out = Vec::new();
    for igw in pages.iter().flat_map(|p| p.internet_gateways()) {
        let Some(id) = igw.internet_gateway_id() else {
            continue;
        };
        let mut fields = Fields::new();
        let attachment = igw.attachments().iter().find(|a| a.vpc_id().is_some());
        if let Some(vpc) = attachment.and_then(|a| a.vpc_id()) {
            fields.insert("vpc_id".into(), Value::str(vpc));
        }
        let status = match attachment.and_then(|a| a.state()) {
            Some(s) => s.as_str(),
            None => "detached",
        };
        out.push(observed(
            Kind::InternetGateway,
            id,
            tag_map(igw.tags()),
            fields,
            BTreeMap::new(),
            status,
        ));
    }
    Ok(out)
}

pub(super) async fn create_igw(
    c: &Clients,
    scope: &Scope,
    id: &ResourceId,
    r: &Reader<'_>,
) -> Result<Observed, CloudError> {
    let tags = create_tags(scope, id, r)?;
    let vpc_id = r.str("vpc_id")?;
    let out = c
        .ec2
        .create_internet_gateway()
        .tag_specifications(tag_spec(ResourceType::InternetGateway, &tags))
        .send()
        .await
        .map_err(|e| api_err("ec2:CreateInternetGateway", e))?;
    let igw_id = out
        .internet_gateway()
        .and_then(|g| g.internet_gateway_id())
        .ok_or_else(|| CloudError::Other("ec2:CreateInternetGateway returned no id".into()))?
        .to_string();
    super::settled(|| attach_igw(c, &igw_id, vpc_id)).await?;
    let fields = Fields::from([("vpc_id".to_string(), Value::str(vpc_id))]);
    Ok(observed(
        Kind::InternetGateway,
        &igw_id,
        tags,
        fields,
        BTreeMap::new(),
        "available",
    ))
}

async fn attach_igw(c: &Clients, igw_id: &str, vpc_id: &str) -> Result<(), CloudError> {
    c.ec2
        .attach_internet_gateway()
        .internet_gateway_id(igw_id)
        .vpc_id(vpc_id)
        .send()
        .await
        .map_err(|e| api_err("ec2:AttachInternetGateway", e))?;
    Ok(())
}

/// Only an interrupted create leaves a gateway of the stack unattached: attaching it is the one
/// in-place change (moving it to another VPC is a replacement).
pub(super) async fn update_igw(
    c: &Clients,
    current: &Observed,
    r: &Reader<'_>,
    changed: &[&str],
) -> Result<(), CloudError> {
    for f in changed {
        match *f {
            "vpc_id" if !current.fields.contains_key("vpc_id") => {
                attach_igw(c, &current.physical_id, r.str("vpc_id")?).await?
            }
            other => return Err(super::not_in_place(r, other)),
        }
    }
    Ok(())
}

/// Detaches the gateway from every VPC, then deletes it.
pub(super) async fn delete_igw(c: &Clients, igw_id: &str) -> Result<(), CloudError> {
    let found = list_igws(c, Query::Physical(igw_id)).await?;
    for o in &found {
        if let Some(vpc) = o.fields.get("vpc_id").and_then(Value::as_str) {
            let r = c
                .ec2
                .detach_internet_gateway()
                .internet_gateway_id(igw_id)
                .vpc_id(vpc)
                .send()
                .await
                .map(drop)
                .map_err(|e| api_err("ec2:DetachInternetGateway", e));
            match r {
                Err(CloudError::Api { code, .. }) if code == "Gateway.NotAttached" => {}
                other => other?,
            }
        }
    }
    c.ec2
        .delete_internet_gateway()
        .internet_gateway_id(igw_id)
        .send()
        .await
        .map_err(|e| api_err("ec2:DeleteInternetGateway", e))?;
    Ok(())
}

// ------------------------------------------------------------------------------------ subnets

pub(super) async fn list_subnets(c: &Clients, q: Query<'_>) -> Result<Vec<Observed>, CloudError> {
    let req = c
        .ec2
        .describe_subnets()
        .set_filters(Some(q.filters()))
        .set_subnet_ids(q.physical().map(|p| vec![p]));
    let pages: Result<Vec<_>, _> = req.into_paginator().send().collect().await;
    let pages = none_if_not_found(pages.map_err(|e| api_err("ec2:DescribeSubnets", e)))?;
    let mut out = Vec::new();
    for s in pages.iter().flat_map(|p| p.subnets()) {
        let Some(id) = s.subnet_id() else { continue };
        let mut fields = Fields::new();
        if let Some(v) = s.vpc_id() {
            fields.insert("vpc_id".into(), Value::str(v));
        }
        if let Some(v) = s.cidr_block() {
            fields.insert("cidr_block".into(), Value::str(v));
        }
        if let Some(v) = s.availability_zone() {
            fields.insert("availability_zone".into(), Value::str(v));
        }
        fields.insert(
            "map_public_ip_on_launch".into(),
            Value::Bool(s.map_public_ip_on_launch().unwrap_or(false)),
        );
        let status = s.state().map(|s| s.as_str()).unwrap_or_default();
        out.push(observed(
            Kind::Subnet,
            id,
            tag_map(s.tags()),
            fields,
            BTreeMap::new(),
            status,
        ));
    }
    Ok(out)
}

pub(super) async fn create_subnet(
    c: &Clients,
    scope: &Scope,
    id: &ResourceId,
    r: &Reader<'_>,
) -> Result<Observed, CloudError> {
    let tags = create_tags(scope, id, r)?;
    let out = c
        .ec2
        .create_subnet()
        .vpc_id(r.str("vpc_id")?)
        .cidr_block(r.str("cidr_block")?)
        .availability_zone(r.str("availability_zone")?)
        .tag_specifications(tag_spec(ResourceType::Subnet, &tags))
        .send()
        .await
        .map_err(|e| api_err("ec2:CreateSubnet", e))?;
    let s = out
        .subnet()
        .ok_or_else(|| CloudError::Other("ec2:CreateSubnet returned no subnet".into()))?;
    let subnet_id = s.subnet_id().unwrap_or_default().to_string();
    let mut fields = r.fields.clone();
    fields.remove("tags");
    let status = s.state().map(|s| s.as_str()).unwrap_or("pending");
    let o = observed(
        Kind::Subnet,
        &subnet_id,
        tags,
        fields,
        BTreeMap::new(),
        status,
    );
    if r.opt_bool("map_public_ip_on_launch") == Some(true) {
        super::settled(|| update_subnet(c, &o, r, &["map_public_ip_on_launch"])).await?;
    }
    Ok(o)
}

pub(super) async fn update_subnet(
    c: &Clients,
    current: &Observed,
    r: &Reader<'_>,
    changed: &[&str],
) -> Result<(), CloudError> {
    for f in changed {
        match *f {
            "map_public_ip_on_launch" => {
                c.ec2
                    .modify_subnet_attribute()
                    .subnet_id(&current.physical_id)
                    .map_public_ip_on_launch(attr_bool(r.bool(f)?))
                    .send()
                    .await
                    .map_err(|e| api_err("ec2:ModifySubnetAttribute", e))?;
            }
            other => return Err(super::not_in_place(r, other)),
        }
    }
    Ok(())
}

// -------------------------------------------------------------------------------- Elastic IPs

pub(super) async fn list_eips(c: &Clients, q: Query<'_>) -> Result<Vec<Observed>, CloudError> {
    // DescribeAddresses is not paginated: one call answers for every address.
    let out = c
        .ec2
        .describe_addresses()
        .set_filters(Some(q.filters()))
        .set_allocation_ids(q.physical().map(|p| vec![p]))
        .send()
        .await
        .map(Some)
        .map_err(|e| api_err("ec2:DescribeAddresses", e));
    let Some(out) = none_if_not_found(out)? else {
        return Ok(Vec::new());
    };
    Ok(out
        .addresses()
        .iter()
        .filter_map(|a| {
            let id = a.allocation_id()?;
            let mut attrs = BTreeMap::new();
            if let Some(ip) = a.public_ip() {
                attrs.insert("public_ip".to_string(), ip.to_string());
            }
            Some(observed(
                Kind::ElasticIp,
                id,
                tag_map(a.tags()),
                Fields::new(),
                attrs,
                "allocated",
            ))
        })
        .collect())
}

pub(super) async fn create_eip(
    c: &Clients,
    scope: &Scope,
    id: &ResourceId,
    r: &Reader<'_>,
) -> Result<Observed, CloudError> {
    let tags = create_tags(scope, id, r)?;
    let out = c
        .ec2
        .allocate_address()
        .domain(DomainType::Vpc)
        .tag_specifications(tag_spec(ResourceType::ElasticIp, &tags))
        .send()
        .await
        .map_err(|e| api_err("ec2:AllocateAddress", e))?;
    let alloc = out
        .allocation_id()
        .ok_or_else(|| CloudError::Other("ec2:AllocateAddress returned no allocation id".into()))?;
    let mut attrs = BTreeMap::new();
    if let Some(ip) = out.public_ip() {
        attrs.insert("public_ip".to_string(), ip.to_string());
    }
    Ok(observed(
        Kind::ElasticIp,
        alloc,
        tags,
        Fields::new(),
        attrs,
        "allocated",
    ))
}

// ------------------------------------------------------------------------------- NAT gateways

pub(super) async fn list_nats(c: &Clients, q: Query<'_>) -> Result<Vec<Observed>, CloudError> {
    let req = c
        .ec2
        .describe_nat_gateways()
        .set_filter(Some(q.filters()))
        .set_nat_gateway_ids(q.physical().map(|p| vec![p]));
    let pages: Result<Vec<_>, _> = req.into_paginator().send().collect().await;
    let pages = none_if_not_found(pages.map_err(|e| api_err("ec2:DescribeNatGateways", e)))?;
    let mut out = Vec::new();
    for n in pages.iter().flat_map(|p| p.nat_gateways()) {
        let Some(id) = n.nat_gateway_id() else {
            continue;
        };
        let mut fields = Fields::new();
        if let Some(v) = n.subnet_id() {
            fields.insert("subnet_id".into(), Value::str(v));
        }
        if let Some(a) = n
            .nat_gateway_addresses()
            .iter()
            .find_map(|a| a.allocation_id())
        {
            fields.insert("allocation_id".into(), Value::str(a));
        }
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
        out.push(observed(
            Kind::NatGateway,
            id,
            tag_map(n.tags()),
            fields,
            BTreeMap::new(),
            &status,
        ));
    }
    Ok(out)
}

pub(super) async fn create_nat(
    c: &Clients,
    scope: &Scope,
    id: &ResourceId,
    r: &Reader<'_>,
) -> Result<Observed, CloudError> {
    let tags = create_tags(scope, id, r)?;
    let mut salt = String::new();
    let (out, nat_id) = loop {
        let out = c
            .ec2
            .create_nat_gateway()
            .subnet_id(r.str("subnet_id")?)
            .allocation_id(r.str("allocation_id")?)
            .client_token(client_token(scope, id, r.fields, &salt))
            .tag_specifications(tag_spec(ResourceType::Natgateway, &tags))
            .send()
            .await
            .map_err(|e| api_err("ec2:CreateNatGateway", e))?;
        let n = out
            .nat_gateway()
            .ok_or_else(|| CloudError::Other("ec2:CreateNatGateway returned no gateway".into()))?;
        let nat_id = n.nat_gateway_id().unwrap_or_default().to_string();
        // The token of an earlier gateway with the same fields that failed or was deleted
        // since returns that gateway: derive a new token from it (deterministic, so a rerun
        // derives the same one).
        let gone = n
            .state()
            .is_some_and(|s| matches!(s.as_str(), "deleting" | "deleted" | "failed"));
        if gone && salt.len() < 400 {
            salt.push_str(&nat_id);
            continue;
        }
        break (out, nat_id);
    };
    let n = out.nat_gateway().expect("checked above");
    let nat_id = nat_id.as_str();
    let mut fields = r.fields.clone();
    fields.remove("tags");
    let status = n.state().map(|s| s.as_str()).unwrap_or("pending");
    Ok(observed(
        Kind::NatGateway,
        nat_id,
        tags,
        fields,
        BTreeMap::new(),
        status,
    ))
}
