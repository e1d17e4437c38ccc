//! The account's stacks in a region, for `moodlestack list` and `moodlestack gc`: one paginated
//! `tag:GetResources` asking for every resource with the `moodlestack:stack` tag key (any value),
//! with `s3:ListBuckets` beside it for the code buckets' creation dates (the stack's age), and two
//! EC2 describes of the stacks' terminated instances and deleted NAT gateways, which AWS keeps
//! listing for a while after they are gone, as the tagging API does (those are left out). One
//! round of requests per page of 500 tags, whatever kinds the stacks have; observing each kind per
//! stack (`Query::Stack`) would take a stack name to start from and ~40 requests per stack.
//!
//! The Resource Groups Tagging API reports the resources of the services it supports with their
//! tags (on the emulator: not IAM, Auto Scaling, launch templates, Elastic IPs, RDS subnet and
//! parameter groups): it finds the stacks, their expiry tags and a count of their resources; `gc`
//! then observes each stack it destroys in full, so nothing depends on what the API covers.

use crate::fields::api_err;
use crate::AwsCloud;
use aws_sdk_ec2::types::{Filter, Instance, InstanceStateName, NatGateway, NatGatewayState};
use aws_sdk_resourcegroupstagging::types::TagFilter;
use moodlestack_model::{CloudError, TAG_STACK};
use std::collections::BTreeMap;

/// A resource the tagging API reports: its ARN and tags.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaggedResource {
    /// The resource's ARN.
    pub arn: String,
    /// Every tag it carries.
    pub tags: BTreeMap<String, String>,
}

/// An S3 bucket of the region and when it was created (seconds since the epoch).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bucket {
    pub name: String,
    pub created: Option<u64>,
}

/// Whether `arn` is of a resource AWS made with a copy of one of the stack's resource's tags (the
/// stable instance's root volume, from the instance's tag specifications; the database's
/// RDS-managed master secret, `rds!...`) rather than one moodlestack manages. Their tags are the
/// ones of the creation and do not follow later tag updates (`apply --ttl` on an existing
/// stack), so they are left out.
fn on_our_behalf(arn: &str) -> bool {
    let mut parts = arn.splitn(6, ':');
    let service = parts.nth(2).unwrap_or_default();
    let resource = parts.nth(2).unwrap_or_default();
    (service == "ec2" && resource.starts_with("volume/"))
        || (service == "secretsmanager" && resource.starts_with("secret:rds!"))
}

impl AwsCloud {
    /// Every resource of the region carrying the `moodlestack:stack` tag (whatever its value),
    /// and the region's S3 buckets with their creation dates: both requests at once.
    pub async fn stack_resources(
        &self,
        region: &str,
    ) -> Result<(Vec<TaggedResource>, Vec<Bucket>), CloudError> {
        let c = self.clients();
        let tagged = async {
            let filter = TagFilter::builder().key(TAG_STACK).build();
            let mut pages = c
                .tagging
                .get_resources()
                .tag_filters(filter)
                // The most AWS allows (100 by default): fewer pages, which follow each other.
                .tags_per_page(500)
                .into_paginator()
                .send();
            let mut out = Vec::new();
            while let Some(page) = pages.next().await {
                let page = page.map_err(|e| api_err("tag:GetResources", e))?;
                for m in page.resource_tag_mapping_list() {
                    let Some(arn) = m.resource_arn() else {
                        continue;
                    };
                    out.push(TaggedResource {
                        arn: arn.to_string(),
                        tags: m
                            .tags()
                            .iter()
                            .map(|t| (t.key().to_string(), t.value().to_string()))
                            .collect(),
                    });
                }
            }
            Ok::<_, CloudError>(out)
        };
        let buckets = async {
            let mut pages =
                c.s3.list_buckets()
                    .bucket_region(region)
                    .into_paginator()
                    .send();
            let mut out = Vec::new();
            while let Some(page) = pages.next().await {
                let page = page.map_err(|e| api_err("s3:ListBuckets", e))?;
                out.extend(page.buckets().iter().filter_map(|b| {
                    Some(Bucket {
                        name: b.name()?.to_string(),
                        created: b.creation_date().and_then(|d| u64::try_from(d.secs()).ok()),
                    })
                }));
            }
            Ok::<_, CloudError>(out)
        };
        // What AWS still lists after deleting it: terminated instances, deleted NAT gateways.
        let filter = |name: &str, values: &[&str]| {
            Filter::builder()
                .name(name)
                .set_values(Some(values.iter().map(|v| (*v).to_string()).collect()))
                .build()
        };
        let instances = async {
            let req = c
                .ec2
                .describe_instances()
                .filters(filter("tag-key", &[TAG_STACK]));
            let req = req.filters(filter(
                "instance-state-name",
                &["shutting-down", "terminated"],
            ));
            let found = crate::ec2::described!("ec2:DescribeInstances", req).await?;
            let gone = |i: &&Instance| {
                let state = i.state().and_then(|s| s.name());
                matches!(
                    state,
                    Some(InstanceStateName::ShuttingDown | InstanceStateName::Terminated)
                )
            };
            let instances = found.iter().flat_map(|r| r.instances()).filter(gone);
            Ok::<_, CloudError>(
                instances
                    .filter_map(|i| i.instance_id().map(str::to_string))
                    .collect::<Vec<_>>(),
            )
        };
        let nats = async {
            let req = c
                .ec2
                .describe_nat_gateways()
                .filter(filter("tag-key", &[TAG_STACK]));
            let req = req.filter(filter("state", &["deleting", "deleted"]));
            let found = crate::ec2::described!("ec2:DescribeNatGateways", req).await?;
            // Checked here too: moto ignores DescribeNatGateways' filters.
            let gone = |n: &&NatGateway| {
                matches!(
                    n.state(),
                    Some(NatGatewayState::Deleting | NatGatewayState::Deleted)
                )
            };
            let ids = found.iter().filter(gone).filter_map(|n| n.nat_gateway_id());
            Ok::<_, CloudError>(ids.map(str::to_string).collect::<Vec<_>>())
        };
        let (tagged, buckets, instances, nats) = tokio::join!(tagged, buckets, instances, nats);
        let gone: std::collections::BTreeSet<String> =
            instances?.into_iter().chain(nats?).collect();
        let tagged = tagged?
            .into_iter()
            .filter(|r| {
                let last = r.arn.rsplit('/').next().unwrap_or_default();
                !gone.contains(last) && !on_our_behalf(&r.arn)
            })
            .collect();
        Ok((tagged, buckets?))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn copies_of_tags_made_by_aws_are_recognised() {
        use super::on_our_behalf;
        assert!(on_our_behalf(
            "arn:aws:ec2:eu-west-1:123456789012:volume/vol-1"
        ));
        assert!(on_our_behalf(
            "arn:aws:secretsmanager:eu-west-1:123456789012:secret:rds!db-1a2b-AbCdEf"
        ));
        assert!(!on_our_behalf(
            "arn:aws:ec2:eu-west-1:123456789012:instance/i-1"
        ));
        assert!(!on_our_behalf(
            "arn:aws:secretsmanager:eu-west-1:123456789012:secret:demo/redis-auth-AbCdEf"
        ));
    }
}
