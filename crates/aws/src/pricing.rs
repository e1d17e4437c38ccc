//! Prices for `plan --cost` ([`Pricing`]): On-Demand prices from the AWS Price List API
//! (`pricing:GetProducts`, whose endpoint is in us-east-1 whatever the stack's region) and Spot
//! prices from the EC2 Spot price history (`ec2:DescribeSpotPriceHistory`, in the stack's
//! region). Every query goes out at once, each distinct one once.

use crate::fields::{built, described_by};
use crate::AwsCloud;
use async_trait::async_trait;
use aws_sdk_ec2::types::{Filter as Ec2Filter, InstanceType};
use aws_sdk_pricing::types::{Filter, FilterType};
use aws_smithy_types::DateTime;
use moodlestack_model::cloud::{rfc3339, unix_now};
use moodlestack_model::{CloudError, Price, PriceQuery, Priced, Pricing};
use std::collections::{BTreeMap, BTreeSet};

/// How far back the Spot price history is averaged.
pub const SPOT_WINDOW_SECS: u64 = 7 * 86_400;

#[async_trait]
impl Pricing for AwsCloud {
    async fn prices(
        &self,
        queries: &[PriceQuery],
    ) -> Result<BTreeMap<PriceQuery, Priced>, CloudError> {
        let unique: BTreeSet<&PriceQuery> = queries.iter().collect();
        let end = unix_now();
        let answers = futures::future::try_join_all(unique.into_iter().map(|q| async move {
            let priced = match q {
                PriceQuery::List {
                    service,
                    filters,
                    usage_type,
                    unit,
                } => {
                    let found = self.products(service, filters).await?;
                    list_price(service, &found, usage_type.as_deref(), unit.as_deref())
                }
                PriceQuery::Spot {
                    instance_types,
                    zones,
                } => {
                    let start = end.saturating_sub(SPOT_WINDOW_SECS);
                    let history = self.spot_history(instance_types, zones, start, end).await?;
                    spot_price(&history, start, end)
                }
                PriceQuery::Unpriced { why } => Err(why.clone()),
            };
            Ok::<_, CloudError>((q.clone(), priced))
        }))
        .await?;
        Ok(answers.into_iter().collect())
    }
}

impl AwsCloud {
    /// Every product of the Price List of `service` whose attributes equal `filters`
    /// (`TERM_MATCH`), as the JSON documents GetProducts answers.
    async fn products(
        &self,
        service: &str,
        filters: &BTreeMap<String, String>,
    ) -> Result<Vec<String>, CloudError> {
        let terms = filters.iter().map(|(k, v)| {
            let term = Filter::builder().r#type(FilterType::TermMatch);
            term.field(k).value(v).build()
        });
        let filters: Vec<Filter> = built(
            "pricing:GetProducts",
            "a filter",
            terms.collect::<Result<_, _>>(),
        )?;
        let request = self
            .clients
            .pricing
            .get_products()
            .service_code(service)
            .format_version("aws_v1")
            .set_filters(Some(filters));
        described_by!("pricing:GetProducts", None, request).await
    }

    /// The Linux/UNIX Spot price history of `types` in `zones` (all zones when empty) from
    /// `start` to `end` (seconds since the epoch): the changes in the window and, as AWS answers,
    /// the last change before it (the price at its start).
    async fn spot_history(
        &self,
        types: &[String],
        zones: &[String],
        start: u64,
        end: u64,
    ) -> Result<Vec<SpotPoint>, CloudError> {
        let mut request = self
            .clients
            .ec2
            .describe_spot_price_history()
            .set_instance_types(Some(
                types
                    .iter()
                    .map(|t| InstanceType::from(t.as_str()))
                    .collect(),
            ))
            .product_descriptions("Linux/UNIX")
            .start_time(DateTime::from_secs(start as i64))
            .end_time(DateTime::from_secs(end as i64));
        if !zones.is_empty() {
            request = request.filters(
                Ec2Filter::builder()
                    .name("availability-zone")
                    .set_values(Some(zones.to_vec()))
                    .build(),
            );
        }
        let items = described_by!("ec2:DescribeSpotPriceHistory", None, request).await?;
        Ok(items
            .iter()
            .filter_map(|p| {
                Some(SpotPoint {
                    instance_type: p.instance_type()?.as_str().to_string(),
                    zone: p.availability_zone()?.to_string(),
                    usd: p.spot_price()?.parse().ok()?,
                    at: u64::try_from(p.timestamp()?.secs()).ok()?,
                })
            })
            .collect())
    }
}

/// One price change of the Spot price history.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct SpotPoint {
    pub instance_type: String,
    pub zone: String,
    pub usd: f64,
    /// When the price took effect (seconds since the epoch).
    pub at: u64,
}

/// A span of seconds (a window of days) as a number.
fn seconds(s: u64) -> f64 {
    f64::from(u32::try_from(s).unwrap_or(u32::MAX))
}

/// The average Spot price over `start..end`: per instance type and zone, each price weighted by
/// how long it held in the window (from its change, or the window's start, to the next change or
/// the window's end); then the mean over the types and zones with a history.
pub(crate) fn spot_price(history: &[SpotPoint], start: u64, end: u64) -> Priced {
    let mut series: BTreeMap<(&str, &str), Vec<&SpotPoint>> = BTreeMap::new();
    for p in history {
        series
            .entry((p.instance_type.as_str(), p.zone.as_str()))
            .or_default()
            .push(p);
    }
    let mut averages = Vec::new();
    for points in series.values_mut() {
        points.sort_by_key(|p| p.at);
        let (mut sum, mut span) = (0.0, 0u64);
        for (i, p) in points.iter().enumerate() {
            let from = p.at.clamp(start, end);
            let to = points.get(i + 1).map_or(end, |n| n.at.clamp(start, end));
            sum += p.usd * seconds(to - from);
            span += to - from;
        }
        if span > 0 {
            averages.push(sum / seconds(span));
        }
    }
    if averages.is_empty() {
        return Err("no Spot price history for these instance types and zones".into());
    }
    Ok(Price {
        usd: averages.iter().sum::<f64>()
            / f64::from(u32::try_from(averages.len()).unwrap_or(u32::MAX)),
        unit: "Hrs".into(),
        as_of: format!(
            "Spot: the average of the Spot price history from {} to {} ({} type-zone pairs)",
            rfc3339(start),
            rfc3339(end),
            averages.len()
        ),
    })
}

/// The price of `service`'s products (GetProducts' documents) that have the `usage_type` (after
/// the region's prefix) and a price dimension in `unit`: their On-Demand price per unit (the
/// first tier of a tiered price), when they agree on one.
pub(crate) fn list_price(
    service: &str,
    products: &[String],
    usage_type: Option<&str>,
    unit: Option<&str>,
) -> Priced {
    let mut found: BTreeSet<String> = BTreeSet::new();
    let mut units = BTreeSet::new();
    let mut published = BTreeSet::new();
    for text in products {
        let Ok(doc) = serde_json::from_str::<serde_json::Value>(text) else {
            continue;
        };
        let attrs = &doc["product"]["attributes"];
        if let Some(want) = usage_type {
            let have = attrs["usagetype"].as_str().unwrap_or_default();
            let bare = have.split_once('-').map_or(have, |(_, rest)| rest);
            if have != want && bare != want {
                continue;
            }
        }
        let terms = doc["terms"]["OnDemand"].as_object().into_iter().flatten();
        for (_, term) in terms {
            let dims = term["priceDimensions"].as_object().into_iter().flatten();
            let dims: Vec<&serde_json::Value> = dims
                .map(|(_, d)| d)
                .filter(|d| {
                    unit.is_none_or(|u| {
                        d["unit"]
                            .as_str()
                            .is_some_and(|h| h.eq_ignore_ascii_case(u))
                    })
                })
                .collect();
            // A tiered price: the first tier.
            let first = dims
                .iter()
                .find(|d| d["beginRange"].as_str() == Some("0"))
                .or(dims.first());
            if let Some(d) = first {
                if let Some(usd) = d["pricePerUnit"]["USD"].as_str() {
                    found.insert(usd.to_string());
                    units.insert(d["unit"].as_str().unwrap_or_default().to_string());
                    if let Some(date) = doc["publicationDate"].as_str() {
                        published.insert(date.to_string());
                    }
                }
            }
        }
    }
    let prices: BTreeSet<u64> = found
        .iter()
        .filter_map(|p| p.parse::<f64>().ok())
        .map(|p| (p * 1e10).round() as u64)
        .collect();
    match (prices.len(), found.iter().next()) {
        (1, Some(usd)) => Ok(Price {
            usd: usd.parse().unwrap_or_default(),
            unit: units.into_iter().next().unwrap_or_default(),
            as_of: format!(
                "AWS Price List published {}",
                published
                    .iter()
                    .next_back()
                    .map_or("(no date)", String::as_str)
            ),
        }),
        (0, _) => Err(format!("no product of the {service} price list matches")),
        (n, _) => Err(format!(
            "{n} products of the {service} price list match with different prices"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn product(usage_type: &str, dims: &[(&str, &str, &str)]) -> String {
        let dims: serde_json::Map<String, serde_json::Value> = dims
            .iter()
            .enumerate()
            .map(|(i, (unit, begin, usd))| {
                (
                    format!("SKU.TERM.{i}"),
                    serde_json::json!({"unit": unit, "beginRange": begin, "pricePerUnit": {"USD": usd}}),
                )
            })
            .collect();
        serde_json::json!({
            "product": {"productFamily": "Storage", "attributes": {"usagetype": usage_type}},
            "serviceCode": "AmazonS3",
            "terms": {"OnDemand": {"SKU.TERM": {"priceDimensions": dims, "effectiveDate": "2026-11-01T00:00:00Z"}}},
            "publicationDate": "2026-11-20T10:00:00Z",
        })
        .to_string()
    }

    #[test]
    fn list_prices_take_the_usage_type_unit_and_first_tier() {
        let products = [
            product(
                "EUW1-TimedStorage-ByteHrs",
                &[
                    ("GB-Mo", "0", "0.0230000000"),
                    ("GB-Mo", "51200", "0.0220000000"),
                ],
            ),
            product("EUW1-TS-TimedStorage-ByteHrs", &[("GB-Mo", "0", "9.0")]),
            product("EUW1-Requests-Tier1", &[("Requests", "0", "0.000005")]),
        ];
        let p = list_price(
            "AmazonS3",
            &products,
            Some("TimedStorage-ByteHrs"),
            Some("GB-Mo"),
        )
        .expect("one price");
        assert_eq!(Some(p.usd), Some(0.023));
        assert_eq!(p.unit, "GB-Mo");
        assert_eq!(p.as_of, "AWS Price List published 2026-11-20T10:00:00Z");
        assert_eq!(
            list_price("AmazonS3", &products, None, Some("GB-Mo")),
            Err("2 products of the AmazonS3 price list match with different prices".into())
        );
        assert_eq!(
            list_price("AmazonS3", &products, Some("Nothing"), None),
            Err("no product of the AmazonS3 price list matches".into())
        );
    }

    #[test]
    fn spot_prices_are_averaged_over_the_window_by_time() {
        let point = |t: &str, z: &str, usd: f64, at: u64| SpotPoint {
            instance_type: t.into(),
            zone: z.into(),
            usd,
            at,
        };
        // m5.large in a: 0.04 from 0 until 100, then 0.06 (from 100 to 200): 0.05. In b: 0.03
        // from 50. c5.large in a: 0.02 from 150 (nothing before): 0.02.
        let history = [
            point("m5.large", "a", 0.06, 100),
            point("m5.large", "a", 0.04, 0),
            point("m5.large", "b", 0.03, 50),
            point("c5.large", "a", 0.02, 150),
        ];
        let p = spot_price(&history, 0, 200).expect("a price");
        // b held from 50 only: weighted over its own span, 0.03.
        assert!(
            (p.usd - (0.05 + 0.03 + 0.02) / 3.0).abs() < 1e-12,
            "{}",
            p.usd
        );
        let p = spot_price(&history[..1], 0, 200).expect("a price");
        assert!((p.usd - 0.06).abs() < 1e-12);
        // The change before the window holds from its start: (50 x 0.04 + 100 x 0.06) / 150.
        let p = spot_price(&history[..2], 50, 200).expect("a price");
        assert!((p.usd - 8.0 / 150.0).abs() < 1e-12, "{}", p.usd);
        assert_eq!(
            p.as_of,
            "Spot: the average of the Spot price history from 1970-01-01T00:00:50Z to \
             1970-01-01T00:03:20Z (1 type-zone pairs)"
        );
        assert!(spot_price(&[], 0, 200).is_err());
    }
}
