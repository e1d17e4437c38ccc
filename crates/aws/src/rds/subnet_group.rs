//! `AWS::RDS::DBSubnetGroup`.

use super::{all_tags, list_tags, put_tags, rds_tags};
use crate::fields::{subnet_group_api, subnet_group_observed, Reader, SubnetGroupOps};
use crate::{Clients, Created, Cx};
use async_trait::async_trait;
use aws_sdk_rds::operation::create_db_subnet_group::CreateDbSubnetGroupOutput;
use aws_sdk_rds::types::DbSubnetGroup;
use moodlestack_model::{CloudError, Kind, Observed, Scope};

/// This file's kinds under their [`Kind`](moodlestack_model::Kind) names, for the registry
/// [`ops`](crate::ops).
pub(crate) mod kinds {
    /// `AWS::RDS::DBSubnetGroup`, keyed by its name.
    #[allow(non_upper_case_globals)]
    pub(crate) const DbSubnetGroup: super::SubnetGroupOps<super::SubnetGroup> =
        super::SubnetGroupOps::OPS;
}

subnet_group_api! {
    /// The calls of `AWS::RDS::DBSubnetGroup`.
    SubnetGroup: Kind::DbSubnetGroup, DbSubnetGroup, client rds,
    name: db_subnet_group_name, description: db_subnet_group_description,
    arn: db_subnet_group_arn, status(g) => g.subnet_group_status().unwrap_or("Complete"),
    describe: describe_db_subnet_groups.set_db_subnet_group_name("rds:DescribeDBSubnetGroups"),
    observe(c, scope, g) => match g.db_subnet_group_arn() {
        Some(arn) => Ok(SubnetGroup::observed(scope, &g, list_tags(c, arn).await?)),
        None => Ok(None),
    },
    create(cx, r, name, out):
        create_db_subnet_group("rds:CreateDBSubnetGroup", exists "DBSubnetGroupAlreadyExists"),
        tags => rds_tags(cx.scope, &r.id, r)?,
        made => made(cx, r, name, &out),
    modify: modify_db_subnet_group("rds:ModifyDBSubnetGroup"),
    put_tags: put_tags,
    delete: delete_db_subnet_group("rds:DeleteDBSubnetGroup"),
}

/// The group a create answered with, as observed: from the answer and the request (the
/// create call carries every tag).
fn made(
    cx: &Cx<'_>,
    r: &Reader<'_>,
    name: &str,
    out: &CreateDbSubnetGroupOutput,
) -> Result<Created, CloudError> {
    let g = out.db_subnet_group();
    let arn = g.and_then(|g| g.db_subnet_group_arn()).unwrap_or_default();
    let status = g
        .and_then(|g| g.subnet_group_status())
        .unwrap_or("Complete");
    Ok(Created::New(subnet_group_observed(
        Kind::DbSubnetGroup,
        r.id.clone(),
        name,
        arn,
        r.str("description")?,
        r.strs("subnet_ids")?.iter().map(String::as_str),
        all_tags(cx.scope, &r.id, r)?,
        status,
    )))
}

#[cfg(test)]
mod tests {
    use super::super::{test_scope, test_tags};
    use super::*;
    use crate::fields::assert_ready_as;
    use crate::fields::tag_map;
    use aws_sdk_rds::types::Subnet;

    #[test]
    fn a_subnet_group_is_observed_with_its_descriptors_fields() {
        let g = DbSubnetGroup::builder()
            .db_subnet_group_name("demo-db")
            .db_subnet_group_arn("arn:aws:rds:eu-west-1:1:subgrp:demo-db")
            .db_subnet_group_description("database")
            .subnet_group_status("Complete")
            .subnets(Subnet::builder().subnet_identifier("subnet-2").build())
            .subnets(Subnet::builder().subnet_identifier("subnet-1").build())
            .build();
        let tags = tag_map(&test_tags("db.subnet_group"));
        let o = SubnetGroup::observed(&test_scope(), &g, tags.clone()).unwrap();
        assert_ready_as(&o, "db.subnet_group", &[]);
        assert_eq!(o.physical_id, "demo-db");
        assert!(SubnetGroup::observed(&crate::fields::test_scope("other"), &g, tags).is_none());
    }
}
