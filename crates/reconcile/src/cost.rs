//! The plan's cost estimate (`plan --cost`): what every resource of the plan is billed for, as
//! its kind's descriptor says ([`moodlestack_model::KindSpec::usage`]), on both sides of the
//! plan (as the stack file wants it, and as it exists now), multiplied by the prices the cloud
//! found ([`moodlestack_model::Pricing`]) and added up. No kind is named here.

use crate::plan::Plan;
use moodlestack_model::{
    spec, Fields, Kind, PriceQuery, Priced, ResourceId, Usage, UsageCx, Value, HOURS_PER_MONTH,
};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// What the plan's resources are billed for: the desired side (the stack file's resources) and
/// the current side (what exists now), in plan order.
#[derive(Clone, Debug, PartialEq)]
pub struct Usages {
    /// (resource, kind, usage) as desired.
    pub desired: Vec<(ResourceId, Kind, Usage)>,
    /// (resource, kind, usage) as it exists.
    pub current: Vec<(ResourceId, Kind, Usage)>,
}

impl Usages {
    /// Every price to look up, once each.
    pub fn queries(&self) -> Vec<PriceQuery> {
        let all: BTreeSet<&PriceQuery> = self
            .desired
            .iter()
            .chain(&self.current)
            .map(|(_, _, u)| &u.price)
            .collect();
        all.into_iter().cloned().collect()
    }
}

/// The usages of every resource of `plan`: a desired resource's fields follow its references to
/// other desired resources (its launch template, its subnets); an observed one's follow physical
/// ids to other observed resources.
pub fn usages(plan: &Plan) -> Usages {
    let desired: BTreeMap<&ResourceId, &Fields> = plan
        .changes
        .iter()
        .filter_map(|c| c.desired.as_ref())
        .map(|r| (&r.id, &r.fields))
        .collect();
    let observed: Vec<_> = plan
        .changes
        .iter()
        .filter_map(|c| c.current.as_ref())
        .collect();
    let follow_desired = |v: &Value| match v {
        Value::Ref(r) => desired.get(&r.resource).copied(),
        _ => None,
    };
    let follow_current = |v: &Value| {
        let id = v.as_str()?;
        observed
            .iter()
            .find(|o| o.physical_id == id || o.attrs.get("id").map(String::as_str) == Some(id))
            .map(|o| &o.fields)
    };
    let mut out = Usages {
        desired: Vec::new(),
        current: Vec::new(),
    };
    for c in &plan.changes {
        let usage = spec(c.kind).usage;
        if let Some(d) = &c.desired {
            let cx = UsageCx::new(&plan.region, &d.fields, &follow_desired);
            out.desired
                .extend(usage(&cx).into_iter().map(|u| (c.id.clone(), c.kind, u)));
        }
        if let Some(o) = &c.current {
            let cx = UsageCx::new(&plan.region, &o.fields, &follow_current);
            out.current
                .extend(usage(&cx).into_iter().map(|u| (c.id.clone(), c.kind, u)));
        }
    }
    out
}

/// One usage priced.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Cost {
    /// What it is.
    pub item: String,
    /// How much a month (None: it depends on use; not counted).
    pub quantity: Option<f64>,
    /// The unit of the quantity (`h`, `GB-month`).
    pub unit: String,
    /// US dollars per unit (None: unknown).
    pub unit_price: Option<f64>,
    /// US dollars a month, rounded to the cent (None: unknown price, or a quantity that depends
    /// on use).
    pub monthly: Option<f64>,
    /// Why the price is unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unknown: Option<String>,
}

/// One line of the estimate: a usage of a resource as desired and as it exists.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CostLine {
    /// The resource.
    pub id: ResourceId,
    /// Its kind.
    pub kind: Kind,
    /// Which of its usages (`instance`, `storage`).
    pub usage: String,
    /// As the stack file wants it (None: the plan deletes it).
    pub desired: Option<Cost>,
    /// As it exists now (None: the plan creates it).
    pub current: Option<Cost>,
    /// `desired - current` a month (a missing side counts as nothing); None when a side's price
    /// is unknown.
    pub change: Option<f64>,
}

/// The estimate of the plan's monthly cost.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Estimate {
    /// Always `USD`.
    pub currency: String,
    /// The hours of the estimate's month.
    pub hours_per_month: f64,
    /// Per resource and usage, in plan order.
    pub lines: Vec<CostLine>,
    /// The stack as desired, a month (known prices only).
    pub desired_monthly: f64,
    /// The stack as it exists now, a month (known prices only).
    pub current_monthly: f64,
    /// `desired_monthly - current_monthly`.
    pub change_monthly: f64,
    /// Lines whose price is unknown (left out of the totals).
    pub unknown_prices: usize,
    /// Which prices: the Price List's publication dates, the Spot history's window.
    pub prices: Vec<String>,
    /// What the estimate does not count.
    pub not_counted: Vec<String>,
}

/// What no estimate counts.
pub const NOT_COUNTED: &[&str] = &[
    "data transfer (between zones, to the internet) and data processed by gateways and load \
     balancers beyond the stated assumption",
    "usage that depends on size or traffic where a line shows only a unit price (stored data, \
     backups, code artefacts), requests and API calls",
    "Reserved Instances, Savings Plans, the free tier, credits, support and taxes",
];

fn cents(usd: f64) -> f64 {
    (usd * 100.0).round() / 100.0
}

fn cost(u: &Usage, prices: &BTreeMap<PriceQuery, Priced>, sources: &mut BTreeSet<String>) -> Cost {
    let found = prices
        .get(&u.price)
        .cloned()
        .unwrap_or_else(|| Err("not looked up".into()));
    let (unit_price, unknown) = match found {
        Ok(p) => {
            sources.insert(p.as_of);
            (Some(p.usd), None)
        }
        Err(why) => (None, Some(why)),
    };
    Cost {
        item: u.item.clone(),
        quantity: u.quantity,
        unit: u.unit.to_string(),
        unit_price,
        monthly: match (u.quantity, unit_price) {
            (Some(q), Some(p)) => Some(cents(q * p)),
            _ => None,
        },
        unknown,
    }
}

/// The estimate: every usage priced, desired and current side by side (matched by resource and
/// usage key), and the totals.
pub fn estimate(u: &Usages, prices: &BTreeMap<PriceQuery, Priced>) -> Estimate {
    let mut sources = BTreeSet::new();
    let mut lines: Vec<CostLine> = Vec::new();
    for (id, kind, usage) in &u.desired {
        lines.push(CostLine {
            id: id.clone(),
            kind: *kind,
            usage: usage.key.to_string(),
            desired: Some(cost(usage, prices, &mut sources)),
            current: None,
            change: None,
        });
    }
    for (id, kind, usage) in &u.current {
        let priced = cost(usage, prices, &mut sources);
        match lines
            .iter_mut()
            .find(|l| &l.id == id && l.usage == usage.key && l.current.is_none())
        {
            Some(line) => line.current = Some(priced),
            None => lines.push(CostLine {
                id: id.clone(),
                kind: *kind,
                usage: usage.key.to_string(),
                desired: None,
                current: Some(priced),
                change: None,
            }),
        }
    }
    let counted = |c: &Option<Cost>| -> Option<f64> {
        match c {
            None => Some(0.0),
            Some(c) if c.unknown.is_some() => None,
            Some(c) => Some(c.monthly.unwrap_or(0.0)),
        }
    };
    let mut unknown_prices = 0;
    let (mut desired, mut current) = (0.0, 0.0);
    for l in &mut lines {
        let (d, c) = (counted(&l.desired), counted(&l.current));
        unknown_prices += usize::from(d.is_none()) + usize::from(c.is_none());
        desired += d.unwrap_or(0.0);
        current += c.unwrap_or(0.0);
        l.change = match (d, c) {
            (Some(d), Some(c)) => Some(cents(d - c)),
            _ => None,
        };
    }
    let (desired, current) = (cents(desired), cents(current));
    Estimate {
        currency: "USD".into(),
        hours_per_month: HOURS_PER_MONTH,
        lines,
        desired_monthly: desired,
        current_monthly: current,
        change_monthly: cents(desired - current),
        unknown_prices,
        prices: sources.into_iter().collect(),
        not_counted: NOT_COUNTED.iter().map(|s| (*s).to_string()).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{observed_as, r, rf, scope};
    use moodlestack_model::{Price, Resource};

    /// The usages of a stack with a subnet per zone, the web fleet on a launch template, a
    /// database whose class the stack raises, a file system, a cache whose price is unknown and a
    /// NAT gateway the stack no longer declares.
    fn plan() -> Plan {
        let subnet = |id: &str, zone: &str| {
            r(id, Kind::Subnet)
                .with("cidr_block", "10.0.0.0/24")
                .with("availability_zone", zone)
        };
        let lt = r("web.lt", Kind::LaunchTemplate)
            .with("name", "demo-web")
            .with("instance_type", "m5.large")
            .with("root_volume_size", 30i64)
            .with("root_volume_type", "gp3");
        let asg = r("web.asg", Kind::AutoScalingGroup)
            .with("name", "demo-web")
            .with("launch_template_id", rf("web.lt", "id"))
            .with("instance_types", Value::strs(["m5.large", "c5.large"]))
            .with("min_size", 3i64)
            .with("on_demand_base_capacity", 1i64)
            .with("on_demand_percentage_above_base", 0i64)
            .with(
                "subnet_ids",
                Value::List(vec![rf("net.a", "id"), rf("net.b", "id")]),
            );
        let db = |class: &str| {
            r("db.instance", Kind::DbInstance)
                .with("identifier", "demo-db")
                .with("engine", "mysql")
                .with("instance_class", class)
                .with("allocated_storage", 20i64)
                .with("storage_type", "gp3")
                .with("multi_az", true)
        };
        let fs = r("files.fs", Kind::EfsFileSystem).with("creation_token", "demo-files");
        let cache = r("cache.redis", Kind::CacheReplicationGroup)
            .with("replication_group_id", "demo-redis")
            .with("engine", "redis")
            .with("node_type", "cache.t4g.micro")
            .with("num_cache_clusters", 2i64);
        let nat = r("net.nat.a", Kind::NatGateway).with("subnet_id", "subnet-a");
        let known = [
            ("net.a", "subnet-a"),
            ("net.b", "subnet-b"),
            ("web.lt", "lt-1"),
        ];
        let (a, b) = (subnet("net.a", "eu-west-1a"), subnet("net.b", "eu-west-1b"));
        let observed = vec![
            observed_as(&a, "subnet-a", &known, &[]),
            observed_as(&b, "subnet-b", &known, &[]),
            observed_as(&lt, "lt-1", &known, &[]),
            observed_as(&asg, "demo-web", &known, &[]),
            observed_as(&db("db.t4g.micro"), "demo-db", &known, &[]),
            observed_as(&fs, "fs-1", &known, &[]),
            observed_as(&nat, "nat-1", &known, &[]),
        ];
        let desired: Vec<Resource> = vec![a, b, lt, asg, db("db.t4g.small"), fs, cache];
        crate::diff::plan(&scope(), &desired, &observed).expect("a plan")
    }

    /// Known prices by what the query asks for.
    fn price(q: &PriceQuery) -> Priced {
        let usd = match q {
            PriceQuery::Spot { .. } => 0.04,
            PriceQuery::List { filters, .. } => {
                let f = |k: &str| filters.get(k).map(String::as_str);
                match (f("instanceType"), f("productFamily"), f("volumeApiName")) {
                    (Some("m5.large"), _, _) => 0.107,
                    (Some("db.t4g.small"), _, _) => 0.072,
                    (Some("db.t4g.micro"), _, _) => 0.036,
                    (Some(_), _, _) => return Err("no product of the price list matches".into()),
                    (None, Some("Storage"), Some("gp3")) => 0.088,
                    (None, Some("Database Storage"), _) => 0.254,
                    (None, Some("Storage"), None) => 0.33,
                    (None, Some("NAT Gateway"), _) => 0.048,
                    other => panic!("unexpected query {other:?}"),
                }
            }
            PriceQuery::Unpriced { why } => return Err(why.clone()),
        };
        Ok(Price {
            usd,
            unit: "Hrs".into(),
            as_of: "test prices".into(),
        })
    }

    #[test]
    fn the_estimate_multiplies_adds_and_sets_desired_beside_current() {
        let plan = plan();
        let u = usages(&plan);
        let queries = u.queries();
        let prices: BTreeMap<PriceQuery, Priced> =
            queries.iter().map(|q| (q.clone(), price(q))).collect();
        let e = estimate(&u, &prices);
        let line = |id: &str, usage: &str| {
            e.lines
                .iter()
                .find(|l| l.id.as_str() == id && l.usage == usage)
                .unwrap_or_else(|| panic!("no line {id} {usage}"))
        };
        let monthly = |c: &Option<Cost>| c.as_ref().and_then(|c| c.monthly);
        // The fleet at its minimum (3): the On-Demand base (1) on the first type, 2 on Spot over
        // both types and zones, 3 root volumes of 30 GB.
        let od = line("web.asg", "on-demand");
        assert_eq!(
            od.desired.as_ref().unwrap().item,
            "1 x m5.large On-Demand, Linux (of the fleet at its minimum size, 3)"
        );
        assert_eq!(monthly(&od.desired), Some(78.11)); // 730 h x 0.107
        assert_eq!(od.change, Some(0.0));
        let spot = line("web.asg", "spot");
        assert_eq!(monthly(&spot.desired), Some(58.4)); // 2 x 730 h x 0.04
        assert!(spot
            .desired
            .as_ref()
            .unwrap()
            .item
            .contains("eu-west-1a, eu-west-1b"));
        assert_eq!(monthly(&line("web.asg", "root volume").desired), Some(7.92)); // 90 GB x 0.088
                                                                                  // The database's new class beside its old one; the storage is unchanged.
        let db = line("db.instance", "instance");
        assert_eq!(monthly(&db.desired), Some(52.56)); // 730 x 0.072
        assert_eq!(monthly(&db.current), Some(26.28)); // 730 x 0.036
        assert_eq!(db.change, Some(26.28));
        assert_eq!(
            db.current.as_ref().unwrap().item,
            "db.t4g.micro MySQL, Multi-AZ"
        );
        assert_eq!(line("db.instance", "storage").change, Some(0.0)); // 20 GB x 0.254 = 5.08
                                                                      // By size: the unit price only, not in the totals.
        let fs = line("files.fs", "storage").desired.clone().unwrap();
        assert_eq!(
            (fs.unit_price, fs.quantity, fs.monthly),
            (Some(0.33), None, None)
        );
        // Unknown: said, and left out.
        let cache = line("cache.redis", "nodes");
        assert_eq!(
            cache.desired.as_ref().unwrap().unknown.as_deref(),
            Some("no product of the price list matches")
        );
        assert_eq!(cache.change, None);
        assert_eq!(e.unknown_prices, 1);
        // The NAT gateway goes: its cost goes with it.
        let nat = line("net.nat.a", "gateway");
        assert!(nat.desired.is_none());
        assert_eq!(nat.change, Some(-35.04)); // 730 x 0.048
                                              // 78.11 + 58.40 + 7.92 + 52.56 + 5.08; now the same fleet, 26.28, 5.08 and 35.04.
        let totals = [e.desired_monthly, e.current_monthly, e.change_monthly].map(Some);
        assert_eq!(totals, [Some(202.07), Some(210.83), Some(-8.76)]);
        assert_eq!(e.prices, vec!["test prices".to_string()]);
        // Every query once: the fleet's and the database's On-Demand, Spot, gp3, two database
        // classes, database storage, EFS, the cache, NAT.
        assert_eq!(queries.len(), 9);
    }
}
