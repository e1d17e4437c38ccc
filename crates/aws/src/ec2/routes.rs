//! Route tables: routes (the local route excluded) and subnet associations.
//!
//! `routes` is a set of maps `{destination_cidr, gateway_id | nat_gateway_id}`; routes to other
//! targets (added outside moodlestack) are reported with their target's key so that the diff
//! shows them and an update removes them.

use super::{
    available, client_token, create_tags, created_id, described, filter, filters, made_fields,
    not_in_place, ok_if_not_found, physical, settled, tag_map, tag_spec, Ec2Kind,
};
use crate::fields::{answer, sent, sorted_strs, Reader};
use crate::{Clients, Created, Cx, Query, Update};
use async_trait::async_trait;
use aws_sdk_ec2::types::{ResourceType, Route, RouteTable as SdkRouteTable};
use futures::future::try_join_all;
use moodlestack_model::{CloudError, Fields, Kind, Observed, Scope, Value};
use std::collections::BTreeMap;

/// The target keys a route map may carry, in the order they are looked for.
const TARGETS: [&str; 6] = [
    "gateway_id",
    "nat_gateway_id",
    "transit_gateway_id",
    "vpc_peering_connection_id",
    "network_interface_id",
    "instance_id",
];

/// One route as (destination, target key, target id); None for the local route, IPv6 and
/// prefix-list routes.
fn route_entry(r: &Route) -> Option<(String, &'static str, String)> {
    let dest = r.destination_cidr_block()?;
    let targets = [
        r.gateway_id(),
        r.nat_gateway_id(),
        r.transit_gateway_id(),
        r.vpc_peering_connection_id(),
        r.network_interface_id(),
        r.instance_id(),
    ];
    let (key, target) = TARGETS
        .iter()
        .zip(targets)
        .find_map(|(k, t)| Some((*k, t?)))?;
    if target == "local" {
        return None;
    }
    Some((dest.to_string(), key, target.to_string()))
}

fn route_value(dest: &str, key: &str, target: &str) -> Value {
    Value::Map(BTreeMap::from([
        ("destination_cidr".to_string(), Value::str(dest)),
        (key.to_string(), Value::str(target)),
    ]))
}

/// Desired routes by destination: (target key, target id).
fn desired_routes(r: &Reader<'_>) -> Result<BTreeMap<String, (String, String)>, CloudError> {
    let bad = |problem: &str| CloudError::Field {
        kind: r.kind,
        id: r.id.clone(),
        field: "routes".into(),
        problem: problem.into(),
    };
    let mut out = BTreeMap::new();
    for v in r.list_or_empty("routes")? {
        let m = v.as_map().ok_or_else(|| bad("a route is not a map"))?;
        let dest = m
            .get("destination_cidr")
            .and_then(Value::as_str)
            .ok_or_else(|| bad("a route has no destination_cidr"))?;
        let (key, target) = TARGETS
            .iter()
            .find_map(|k| Some((*k, m.get(*k)?.as_str()?)))
            .ok_or_else(|| bad("a route has no gateway_id or nat_gateway_id"))?;
        out.insert(dest.to_string(), (key.to_string(), target.to_string()));
    }
    Ok(out)
}

/// Subnet associations (not the main one): subnet id -> association id.
fn associations(t: &SdkRouteTable) -> BTreeMap<String, String> {
    t.associations()
        .iter()
        .filter(|a| !a.main().unwrap_or(false))
        .filter(|a| {
            a.association_state()
                .and_then(|s| s.state())
                .is_none_or(|s| matches!(s.as_str(), "associated" | "associating"))
        })
        .filter_map(|a| {
            Some((
                a.subnet_id()?.to_string(),
                a.route_table_association_id()?.to_string(),
            ))
        })
        .collect()
}

async fn describe(
    c: &Clients,
    scope: &Scope,
    q: Query<'_>,
) -> Result<Vec<SdkRouteTable>, CloudError> {
    let req = c
        .ec2
        .describe_route_tables()
        .set_filters(Some(filters(scope, q)))
        .set_route_table_ids(physical(q));
    described!("ec2:DescribeRouteTables", req).await
}

/// A route table as observed: its routes (the local one left out) and associated subnets.
fn table_observed(t: &SdkRouteTable) -> Option<Observed> {
    let id = t.route_table_id()?;
    let mut fields = Fields::new();
    if let Some(v) = t.vpc_id() {
        fields.insert("vpc_id".into(), Value::str(v));
    }
    let mut routes: Vec<Value> = t
        .routes()
        .iter()
        .filter_map(route_entry)
        .map(|(d, k, t)| route_value(&d, k, &t))
        .collect();
    routes.sort_by_key(|v| v.to_json().to_string());
    fields.insert("routes".into(), Value::List(routes));
    fields.insert(
        "subnet_ids".into(),
        sorted_strs(associations(t).into_keys()),
    );
    Some(available(Kind::RouteTable, id, tag_map(t.tags()), fields))
}

/// CreateRoute, or ReplaceRoute when `replace`.
async fn put_route(
    c: &Clients,
    rt: &str,
    dest: &str,
    key: &str,
    target: &str,
    replace: bool,
) -> Result<(), CloudError> {
    macro_rules! send {
        ($req:expr, $op:literal) => {{
            let req = $req.route_table_id(rt).destination_cidr_block(dest);
            let req = match key {
                "gateway_id" => req.gateway_id(target),
                "nat_gateway_id" => req.nat_gateway_id(target),
                "transit_gateway_id" => req.transit_gateway_id(target),
                "vpc_peering_connection_id" => req.vpc_peering_connection_id(target),
                "network_interface_id" => req.network_interface_id(target),
                _ => req.instance_id(target),
            };
            sent($op, req.send()).await
        }};
    }
    if replace {
        send!(c.ec2.replace_route(), "ec2:ReplaceRoute")
    } else {
        send!(c.ec2.create_route(), "ec2:CreateRoute")
    }
}

/// Associates the subnets with the table: a subnet associated with another table is moved to
/// this one (ReplaceRouteTableAssociation), the others are associated. One describe finds the
/// current associations of all of them.
async fn associate_all(c: &Clients, rt: &str, subnets: &[String]) -> Result<(), CloudError> {
    if subnets.is_empty() {
        return Ok(());
    }
    let names: Vec<&str> = subnets.iter().map(String::as_str).collect();
    let tables = answer(
        "ec2:DescribeRouteTables",
        c.ec2
            .describe_route_tables()
            .filters(filter("association.subnet-id", &names))
            .send(),
    )
    .await?;
    // subnet -> (table, association) for the subnets' explicit associations.
    let existing: BTreeMap<String, (String, String)> = tables
        .route_tables()
        .iter()
        .flat_map(|t| {
            let table = t.route_table_id().unwrap_or_default().to_string();
            associations(t)
                .into_iter()
                .map(move |(s, a)| (s, (table.clone(), a)))
        })
        .collect();
    // Each subnet's association is its own: all of them at once.
    let existing = &existing;
    try_join_all(subnets.iter().map(|subnet| async move {
        match existing.get(subnet) {
            Some((table, _)) if table == rt => Ok(()),
            // Moved from the table it is associated with.
            Some((_, assoc)) => {
                let req = c.ec2.replace_route_table_association();
                let req = req.association_id(assoc).route_table_id(rt);
                sent("ec2:ReplaceRouteTableAssociation", req.send()).await
            }
            None => {
                let req = c.ec2.associate_route_table().route_table_id(rt);
                sent("ec2:AssociateRouteTable", req.subnet_id(subnet).send()).await
            }
        }
    }))
    .await?;
    Ok(())
}

/// Ends the associations `assocs` (ids), all at once; one already gone is no error.
async fn disassociate_all<'a>(
    c: &Clients,
    assocs: impl IntoIterator<Item = &'a String>,
) -> Result<(), CloudError> {
    try_join_all(assocs.into_iter().map(|assoc| async move {
        let req = c.ec2.disassociate_route_table().association_id(assoc);
        ok_if_not_found(sent("ec2:DisassociateRouteTable", req.send()).await)
    }))
    .await?;
    Ok(())
}

/// This file's kinds under their [`Kind`](moodlestack_model::Kind) names, for the registry
/// [`ops`](crate::ops).
pub(crate) mod kinds {
    pub(crate) use super::RouteTable;
}

/// `AWS::EC2::RouteTable`.
pub(crate) struct RouteTable;

#[async_trait]
impl Ec2Kind for RouteTable {
    async fn list(&self, cx: &Cx<'_>, q: Query<'_>) -> Result<Vec<Observed>, CloudError> {
        Ok(describe(cx.c, cx.scope, q)
            .await?
            .iter()
            .filter_map(table_observed)
            .collect())
    }

    async fn create(&self, cx: &Cx<'_>, r: &Reader<'_>) -> Result<Created, CloudError> {
        let (c, scope) = (cx.c, cx.scope);
        let tags = create_tags(scope, &r.id, r)?;
        let routes = desired_routes(r)?;
        let subnets = r.strs_or_empty("subnet_ids")?;
        let rt_id = created_id(
            "ec2:CreateRouteTable",
            c.ec2
                .create_route_table()
                .vpc_id(r.str("vpc_id")?)
                .client_token(client_token(scope, &r.id, r.fields, ""))
                .tag_specifications(tag_spec(ResourceType::RouteTable, &tags))
                .send(),
            "id",
            |out| Some(out.route_table()?.route_table_id()?.to_string()),
        )
        .await?;
        // The routes and the associations are independent: all at once.
        let routes = try_join_all(routes.iter().map(|(dest, (key, target))| {
            settled(|| put_route(c, &rt_id, dest, key, target, false))
        }));
        tokio::try_join!(routes, settled(|| associate_all(c, &rt_id, &subnets)))?;
        let fields = made_fields(r);
        let o = available(Kind::RouteTable, &rt_id, tags, fields);
        Ok(Created::New(o))
    }

    async fn update_rest(&self, cx: &Cx<'_>, u: Update<'_>) -> Result<(), CloudError> {
        let (current, r, rest) = u.parts();
        let (c, scope, changed) = (cx.c, cx.scope, rest);
        if changed.is_empty() {
            return Ok(());
        }
        let rt = current.physical_id.as_str();
        // The table as it is now (not as planned), so that the calls are exactly the difference.
        let now = describe(c, scope, Query::Physical(rt))
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| CloudError::NotFound(format!("route table {rt}")))?;
        for f in changed {
            match *f {
                "routes" => {
                    let want = desired_routes(r)?;
                    let have: BTreeMap<String, (String, String)> = now
                        .routes()
                        .iter()
                        .filter_map(route_entry)
                        .map(|(d, k, t)| (d, (k.to_string(), t)))
                        .collect();
                    for (dest, (key, target)) in &want {
                        match have.get(dest) {
                            Some(h) if h == &(key.clone(), target.clone()) => {}
                            Some(_) => put_route(c, rt, dest, key, target, true).await?,
                            None => put_route(c, rt, dest, key, target, false).await?,
                        }
                    }
                    for dest in have.keys().filter(|d| !want.contains_key(*d)) {
                        let req = c
                            .ec2
                            .delete_route()
                            .route_table_id(rt)
                            .destination_cidr_block(dest);
                        sent("ec2:DeleteRoute", req.send()).await?;
                    }
                }
                "subnet_ids" => {
                    let want = r.strs("subnet_ids")?;
                    let have = associations(&now);
                    let add: Vec<String> = want
                        .iter()
                        .filter(|s| !have.contains_key(*s))
                        .cloned()
                        .collect();
                    let gone = have
                        .iter()
                        .filter(|(s, _)| !want.contains(*s))
                        .map(|(_, assoc)| assoc);
                    tokio::try_join!(associate_all(c, rt, &add), disassociate_all(c, gone))?;
                }
                other => return Err(not_in_place(r, other)),
            }
        }
        Ok(())
    }

    /// Disassociates the table's subnets (all at once), then deletes it.
    async fn delete(&self, cx: &Cx<'_>, current: &Observed) -> Result<(), CloudError> {
        let rt = current.physical_id.as_str();
        let tables = describe(cx.c, cx.scope, Query::Physical(rt)).await?;
        let assocs: Vec<String> = tables
            .iter()
            .flat_map(|t| associations(t).into_values())
            .collect();
        disassociate_all(cx.c, &assocs).await?;
        sent(
            "ec2:DeleteRouteTable",
            cx.c.ec2.delete_route_table().route_table_id(rt).send(),
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use moodlestack_model::Lifecycle;

    #[test]
    fn the_local_route_is_not_reported_and_targets_keep_their_key() {
        let local = Route::builder()
            .destination_cidr_block("10.0.0.0/16")
            .gateway_id("local")
            .build();
        let igw = Route::builder()
            .destination_cidr_block("0.0.0.0/0")
            .gateway_id("igw-1")
            .build();
        let nat = Route::builder()
            .destination_cidr_block("0.0.0.0/0")
            .nat_gateway_id("nat-1")
            .build();
        let v6 = Route::builder()
            .destination_ipv6_cidr_block("::/0")
            .gateway_id("igw-1")
            .build();
        assert_eq!(route_entry(&local), None);
        assert_eq!(route_entry(&v6), None);
        assert_eq!(
            route_entry(&igw),
            Some(("0.0.0.0/0".to_string(), "gateway_id", "igw-1".to_string()))
        );
        let (d, k, t) = route_entry(&nat).unwrap();
        assert_eq!(
            route_value(&d, k, &t).to_json().to_string(),
            r#"{"destination_cidr":"0.0.0.0/0","nat_gateway_id":"nat-1"}"#
        );
    }

    #[test]
    fn a_route_table_is_observed_with_its_routes_and_subnets() {
        use crate::ec2::check::{observation, tags};
        use aws_sdk_ec2::types::RouteTableAssociation;
        let t = SdkRouteTable::builder()
            .route_table_id("rtb-1")
            .vpc_id("vpc-1")
            .routes(
                Route::builder()
                    .destination_cidr_block("10.0.0.0/16")
                    .gateway_id("local")
                    .build(),
            )
            .routes(
                Route::builder()
                    .destination_cidr_block("0.0.0.0/0")
                    .nat_gateway_id("nat-1")
                    .build(),
            )
            .associations(
                RouteTableAssociation::builder()
                    .main(true)
                    .route_table_association_id("rtbassoc-0")
                    .build(),
            )
            .associations(
                RouteTableAssociation::builder()
                    .main(false)
                    .subnet_id("subnet-1")
                    .route_table_association_id("rtbassoc-1")
                    .build(),
            )
            .set_tags(Some(tags("net.rt.private.a")))
            .build();
        let o = table_observed(&t).unwrap();
        observation(&o, &[], Lifecycle::Ready, "net.rt.private.a");
        assert_eq!(o.fields["subnet_ids"], Value::strs(["subnet-1"]));
        assert_eq!(
            o.fields["routes"],
            Value::List(vec![route_value("0.0.0.0/0", "nat_gateway_id", "nat-1")])
        );
    }
}
