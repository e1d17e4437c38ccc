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
    let observed: Vec<_> = plan.changes.iter().filter_map(|c| c.current.as_ref()).collect();
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
