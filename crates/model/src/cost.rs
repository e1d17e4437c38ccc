//! What a resource is billed for, as each kind's descriptor says it ([`crate::KindSpec::usage`]):
//! the prices to look up, as queries of the AWS Price List or of the Spot price history, and how
//! much of each a month. The AWS implementation answers the queries ([`Pricing`]); the plan's
//! estimate multiplies and adds (crate `moodlestack-reconcile`, `cost`). Nothing here knows a
//! service: the descriptors fill in the service codes and attributes.

use crate::{CloudError, Fields, Value};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Hours in the estimate's month (365 days x 24 hours / 12, as AWS's own calculator counts).
pub const HOURS_PER_MONTH: f64 = 730.0;

/// A count or a size in GB (small numbers, bounded by the stack rules) as a quantity.
pub fn quantity(n: i64) -> f64 {
    f64::from(i32::try_from(n).unwrap_or(i32::MAX))
}

/// Where a price comes from.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "source")]
pub enum PriceQuery {
    /// An On-Demand price of the AWS Price List (GetProducts): the products of `service` whose
    /// attributes equal every one of `filters`; of those, when `usage_type` is set, only the ones
    /// whose `usagetype` is it (after the region's prefix, `EUW1-`); the price dimension in
    /// `unit` when set. Several products with one price are one price; with different prices it
    /// is unknown (the filters do not say which).
    List {
        /// The service code (`AmazonEC2`).
        service: String,
        /// Product attributes (`instanceType`, `regionCode`, ...), matched exactly.
        filters: BTreeMap<String, String>,
        /// The `usagetype` without its region prefix (`LoadBalancerUsage`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        usage_type: Option<String>,
        /// The price dimension's unit (`Hrs`, `GB-Mo`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        unit: Option<String>,
    },
    /// The recent average Spot price of Linux/UNIX instances of `instance_types` in `zones` (all
    /// zones of the region when empty): each type's and zone's price averaged over the window
    /// (weighted by how long each price held), then the mean over the types and zones that have
    /// a history (capacity spread evenly over them).
    Spot {
        /// Instance types.
        instance_types: Vec<String>,
        /// Availability zones.
        zones: Vec<String>,
    },
    /// No price can be looked up: why (a storage type the descriptor cannot name).
    Unpriced {
        /// Why.
        why: String,
    },
}

impl PriceQuery {
    /// A Price List query of `service` in `region` (its `regionCode`) with these attributes.
    pub fn list(service: &str, region: &str, filters: &[(&str, &str)]) -> PriceQuery {
        let mut map: BTreeMap<String, String> = filters
            .iter()
            .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
            .collect();
        map.insert("regionCode".into(), region.to_string());
        PriceQuery::List {
            service: service.to_string(),
            filters: map,
            usage_type: None,
            unit: None,
        }
    }

    /// The same query, only products of this `usagetype` (without the region prefix).
    pub fn usage_type(mut self, want: &str) -> PriceQuery {
        if let PriceQuery::List { usage_type, .. } = &mut self {
            *usage_type = Some(want.to_string());
        }
        self
    }

    /// The same query, only the price dimension in `want` (`Hrs`, `GB-Mo`).
    pub fn unit(mut self, want: &str) -> PriceQuery {
        if let PriceQuery::List { unit, .. } = &mut self {
            *unit = Some(want.to_string());
        }
        self
    }
}

/// One thing a resource is billed for.
#[derive(Clone, Debug, PartialEq)]
pub struct Usage {
    /// Which of the resource's usages it is, stable across changes of the resource (`instance`,
    /// `storage`, `spot`): the estimate sets the desired usage beside the current one by it.
    pub key: &'static str,
    /// What it is, for people (`db.t4g.micro MySQL, Single-AZ`).
    pub item: String,
    /// How much a month, in the price's unit. None: it depends on use (a file system's size): the
    /// estimate shows the unit price and leaves it out of the totals.
    pub quantity: Option<f64>,
    /// The unit of `quantity` for people (`h`, `GB-month`, `secret-month`).
    pub unit: &'static str,
    /// Its price.
    pub price: PriceQuery,
}

impl Usage {
    /// `hours` hours a month of `price`.
    pub fn hours(
        key: &'static str,
        item: impl Into<String>,
        hours: f64,
        price: PriceQuery,
    ) -> Self {
        Usage {
            key,
            item: item.into(),
            quantity: Some(hours),
            unit: "h",
            price,
        }
    }

    /// The `storage` of a resource billed by the GB it stores, a size that depends on use: the
    /// unit price of `price` only.
    pub fn storage_by_use(item: impl Into<String>, price: PriceQuery) -> Vec<Self> {
        vec![Usage::gb_month("storage", item, None, price)]
    }

    /// `gb` GB for the month of `price` (None: depends on use).
    pub fn gb_month(
        key: &'static str,
        item: impl Into<String>,
        gb: Option<f64>,
        price: PriceQuery,
    ) -> Self {
        Usage {
            key,
            item: item.into(),
            quantity: gb,
            unit: "GB-month",
            price,
        }
    }
}

/// A price found.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Price {
    /// US dollars per unit.
    pub usd: f64,
    /// The unit, as the source says it (`Hrs`, `GB-Mo`).
    pub unit: String,
    /// Which prices these are: the Price List's publication date, or the Spot history's window
    /// and where (`Spot price history 2026-11-24T10:00:00Z to 2026-12-01T10:00:00Z`).
    pub as_of: String,
}

/// A query's answer: the price, or why it is unknown.
pub type Priced = Result<Price, String>;

/// Prices, from the AWS Price List and the Spot price history.
#[async_trait]
pub trait Pricing: Send + Sync {
    /// The answer to every query, each asked once, all in flight at once. A query nothing
    /// answers is `Err(why)`; a refused or failed request is the error.
    async fn prices(
        &self,
        queries: &[PriceQuery],
    ) -> Result<BTreeMap<PriceQuery, Priced>, CloudError>;
}

/// What a kind's usage function reads: a resource's fields (desired or observed), the region,
/// and the resources its fields point to (a launch template, subnets).
#[derive(Clone, Copy)]
pub struct UsageCx<'a> {
    /// The stack's region.
    pub region: &'a str,
    /// The resource's fields.
    pub fields: &'a Fields,
    follow: &'a dyn Fn(&Value) -> Option<&'a Fields>,
}

impl<'a> UsageCx<'a> {
    /// The context of `fields`; `follow` finds the fields of the resource a value points to (a
    /// reference in a desired graph, a physical id among observed resources).
    pub fn new(
        region: &'a str,
        fields: &'a Fields,
        follow: &'a dyn Fn(&Value) -> Option<&'a Fields>,
    ) -> Self {
        UsageCx {
            region,
            fields,
            follow,
        }
    }

    /// A string field.
    pub fn str(&self, field: &str) -> Option<&'a str> {
        self.fields.get(field)?.as_str()
    }

    /// An integer field; for a list of accepted values ([`crate::Compare::OneOf`]), the first.
    pub fn int(&self, field: &str) -> Option<i64> {
        match self.fields.get(field)? {
            Value::List(l) => l.first()?.as_i64(),
            v => v.as_i64(),
        }
    }

    /// A boolean field (absent: false).
    pub fn flag(&self, field: &str) -> bool {
        self.fields
            .get(field)
            .and_then(Value::as_bool)
            .unwrap_or(false)
    }

    /// Whether the field is set (to anything but null, a reference included).
    pub fn has(&self, field: &str) -> bool {
        self.fields
            .get(field)
            .is_some_and(|v| !matches!(v, Value::Null))
    }

    /// How many elements the list field has (references included).
    pub fn count(&self, field: &str) -> usize {
        self.fields
            .get(field)
            .and_then(Value::as_list)
            .map_or(0, <[Value]>::len)
    }

    /// The strings of a list field.
    pub fn strs(&self, field: &str) -> Vec<&'a str> {
        self.fields
            .get(field)
            .and_then(Value::as_list)
            .map(|l| l.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default()
    }

    /// The resource `field` points to.
    pub fn via(&self, field: &str) -> Option<UsageCx<'a>> {
        let fields = (self.follow)(self.fields.get(field)?)?;
        Some(UsageCx { fields, ..*self })
    }

    /// The resources the list `field` points to (those that can be found).
    pub fn via_each(&self, field: &str) -> Vec<UsageCx<'a>> {
        self.fields
            .get(field)
            .and_then(Value::as_list)
            .into_iter()
            .flatten()
            .filter_map(|v| (self.follow)(v))
            .map(|fields| UsageCx { fields, ..*self })
            .collect()
    }
}

/// Usages of a kind that is not billed (networks, security groups, IAM, templates).
pub fn no_usage(_: &UsageCx<'_>) -> Vec<Usage> {
    Vec::new()
}
