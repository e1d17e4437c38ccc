//! `AWS::RDS::DBSubnetGroup`.

use super::{all_tags, list_tags, put_tags, rds_tags};
use crate::fields::described_by;
use crate::fields::{
    exists_or_err, owned_id, sent, subnet_group_observed, Reader, SubnetGroupApi, SubnetGroupOps,
};
use crate::{Clients, Created, Cx};
use async_trait::async_trait;
use aws_sdk_rds::types::DbSubnetGroup;
use moodlestack_model::{CloudError, Kind, Observed, Scope};
use std::collections::BTreeMap;

/// This file's kinds under their [`Kind`](moodlestack_model::Kind) names, for the registry
/// [`ops`](crate::ops).
pub(crate) mod kinds {
    /// `AWS::RDS::DBSubnetGroup`, keyed by its name.
    #[allow(non_upper_case_globals)]
    pub(crate) const DbSubnetGroup: super::SubnetGroupOps<super::SubnetGroup> =
        super::SubnetGroupOps::OPS;
}

/// The calls of `AWS::RDS::DBSubnetGroup`.
pub(crate) struct SubnetGroup;

#[async_trait]
impl SubnetGroupApi for SubnetGroup {
    const KIND: Kind = Kind::DbSubnetGroup;
    type Group = DbSubnetGroup;
    async fn describe(c: &Clients, name: Option<&str>) -> Result<Vec<DbSubnetGroup>, CloudError> {
        let req = c.rds.describe_db_subnet_groups();
        let req = req.set_db_subnet_group_name(name.map(str::to_string));
        described_by!("rds:DescribeDBSubnetGroups", name, req).await
    }
    fn name(g: &DbSubnetGroup) -> Option<&str> {
        g.db_subnet_group_name()
    }
    async fn observe(
        c: &Clients,
        scope: &Scope,
        g: DbSubnetGroup,
    ) -> Result<Option<Observed>, CloudError> {
        let Some(arn) = g.db_subnet_group_arn() else {
            return Ok(None);
        };
        Ok(observed(scope, &g, list_tags(c, arn).await?))
    }
    async fn create(cx: &Cx<'_>, r: &Reader<'_>) -> Result<Created, CloudError> {
        let name = r.str("name")?;
        let res =
            cx.c.rds
                .create_db_subnet_group()
                .db_subnet_group_name(name)
                .db_subnet_group_description(r.str("description")?)
                .set_subnet_ids(Some(r.strs("subnet_ids")?))
                .set_tags(Some(rds_tags(cx.scope, &r.id, r)?))
                .send()
                .await;
        match res {
            Ok(out) => {
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
            Err(e) => exists_or_err("rds:CreateDBSubnetGroup", e, "DBSubnetGroupAlreadyExists"),
        }
    }
    async fn modify(
        c: &Clients,
        name: &str,
        description: &str,
        subnet_ids: Vec<String>,
    ) -> Result<(), CloudError> {
        let req = c.rds.modify_db_subnet_group().db_subnet_group_name(name);
        let req = req.db_subnet_group_description(description);
        sent(
            "rds:ModifyDBSubnetGroup",
            req.set_subnet_ids(Some(subnet_ids)).send(),
        )
        .await
    }
    async fn put_tags(c: &Clients, current: &Observed, r: &Reader<'_>) -> Result<(), CloudError> {
        put_tags(c, current, r).await
    }
    async fn delete(c: &Clients, name: &str) -> Result<(), CloudError> {
        sent(
            "rds:DeleteDBSubnetGroup",
            c.rds
                .delete_db_subnet_group()
                .db_subnet_group_name(name)
                .send(),
        )
        .await
    }
}

/// A subnet group as observed, with its tags; None when it is not tagged with the stack.
fn observed(scope: &Scope, g: &DbSubnetGroup, tags: BTreeMap<String, String>) -> Option<Observed> {
    let (name, arn) = (g.db_subnet_group_name()?, g.db_subnet_group_arn()?);
    let id = owned_id(scope, &tags)?;
    Some(subnet_group_observed(
        Kind::DbSubnetGroup,
        id,
        name,
        arn,
        g.db_subnet_group_description().unwrap_or_default(),
        g.subnets().iter().filter_map(|s| s.subnet_identifier()),
        tags,
        g.subnet_group_status().unwrap_or("Complete"),
    ))
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
        let o = observed(&test_scope(), &g, tags.clone()).unwrap();
        assert_ready_as(&o, "db.subnet_group", &[]);
        assert_eq!(o.physical_id, "demo-db");
        assert!(observed(&crate::fields::test_scope("other"), &g, tags).is_none());
    }
}
