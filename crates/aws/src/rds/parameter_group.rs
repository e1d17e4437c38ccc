//! `AWS::RDS::DBParameterGroup` and `AWS::RDS::DBClusterParameterGroup`: the same shape and the
//! same calls with `Cluster` in their names, so one implementation serves both.

use super::{list_tags, put_tags, rds_tags};
use crate::fields::described_by;
use crate::fields::{
    already_exists, collected, desired_fields, desired_names, observe_named, owned_id, sent,
    tagged, tags_value, usable, Names, Reader,
};
use crate::{Clients, Created, Cx, KindOps, Query, Update};
use async_trait::async_trait;
use aws_sdk_rds::types::{ApplyMethod, DbClusterParameterGroup, DbParameterGroup, Parameter};
use moodlestack_model::{CloudError, Fields, Kind, Observed, Scope, Value};
use std::collections::{BTreeMap, BTreeSet};

/// RDS accepts at most 20 parameters per Modify*ParameterGroup call.
const PARAMETER_BATCH: usize = 20;

/// `AWS::RDS::DBParameterGroup` (`ParameterGroup(Kind::DbParameterGroup)`) or
/// `AWS::RDS::DBClusterParameterGroup` (`ParameterGroup(Kind::DbClusterParameterGroup)`), keyed
/// by its name.
pub(crate) struct ParameterGroup(pub Kind);

/// This file's kinds under their [`Kind`] names, for the registry [`ops`](crate::ops).
#[allow(non_upper_case_globals)]
pub(crate) mod kinds {
    use super::{Kind, ParameterGroup};
    pub(crate) const DbParameterGroup: ParameterGroup = ParameterGroup(Kind::DbParameterGroup);
    pub(crate) const DbClusterParameterGroup: ParameterGroup =
        ParameterGroup(Kind::DbClusterParameterGroup);
}

/// A DB or DB cluster parameter group as one shape.
#[derive(Debug)]
struct Group {
    name: String,
    family: String,
    description: String,
    arn: String,
}

/// `$then` on the request `$cluster_call` of the cluster API or `$db_call` of the instance API
/// (named `op`, for the group `$group`): the two APIs' requests differ only in their names.
macro_rules! on_group_api {
    (
        $cluster:expr, $c:expr, $group:expr,
        $cluster_call:ident / $db_call:ident,
        $cluster_op:literal / $db_op:literal,
        |$op:ident, $req:ident| $then:expr
    ) => {
        if $cluster {
            let ($op, $req) = ($cluster_op, $c.rds.$cluster_call());
            let $req = $req.db_cluster_parameter_group_name($group);
            $then
        } else {
            let ($op, $req) = ($db_op, $c.rds.$db_call());
            let $req = $req.db_parameter_group_name($group);
            $then
        }
    };
}

impl ParameterGroup {
    fn cluster(&self) -> bool {
        self.0 == Kind::DbClusterParameterGroup
    }

    /// The groups named `name`, or all of them.
    async fn describe(&self, c: &Clients, name: Option<&str>) -> Result<Vec<Group>, CloudError> {
        Ok(if self.cluster() {
            let req = c.rds.describe_db_cluster_parameter_groups();
            let req = req.set_db_cluster_parameter_group_name(name.map(str::to_string));
            let found = described_by!("rds:DescribeDBClusterParameterGroups", name, req).await?;
            let of = |g: &DbClusterParameterGroup| {
                let names = (
                    g.db_cluster_parameter_group_name(),
                    g.db_parameter_group_family(),
                );
                Group::of(names, g.description(), g.db_cluster_parameter_group_arn())
            };
            found.iter().map(of).collect()
        } else {
            let req = c.rds.describe_db_parameter_groups();
            let req = req.set_db_parameter_group_name(name.map(str::to_string));
            let found = described_by!("rds:DescribeDBParameterGroups", name, req).await?;
            let of = |g: &DbParameterGroup| {
                let names = (g.db_parameter_group_name(), g.db_parameter_group_family());
                Group::of(names, g.description(), g.db_parameter_group_arn())
            };
            found.iter().map(of).collect()
        })
    }

    /// The parameters of a group. `user_only`: only those set by the user (`Source=user`; the
    /// emulator ignores that and returns what it has, so callers also filter by name).
    async fn parameters(
        &self,
        c: &Clients,
        group: &str,
        user_only: bool,
    ) -> Result<Vec<Parameter>, CloudError> {
        let source = user_only.then(|| "user".to_string());
        on_group_api!(
            self.cluster(),
            c,
            group,
            describe_db_cluster_parameters / describe_db_parameters,
            "rds:DescribeDBClusterParameters" / "rds:DescribeDBParameters",
            |op, req| {
                let items = req.set_source(source).into_paginator().items();
                collected(op, items.send().try_collect()).await
            }
        )
    }

    /// `g` as observed (tags, then the parameters of a group of ours); None when it is not tagged
    /// with the stack. Only the parameter names the desired resource manages are reported (they
    /// are compared as a subset); a group the stack no longer declares reports every user-set one.
    async fn observed(
        &self,
        cx: &Cx<'_>,
        q: Query<'_>,
        g: &Group,
    ) -> Result<Option<Observed>, CloudError> {
        // A group by the name the stack declares is read with its tags in one round; any other
        // (another stack's, one the stack no longer declares) after its tags show it is ours.
        let declared = desired_names(cx.desired, self.0, "name").contains(&g.name);
        let (tags, early) = if declared {
            let (tags, params) = tokio::join!(
                list_tags(cx.c, &g.arn),
                self.parameters(cx.c, &g.name, true)
            );
            (tags?, Some(params))
        } else {
            (list_tags(cx.c, &g.arn).await?, None)
        };
        let Some(id) = owned_id(cx.scope, &tags) else {
            return Ok(None);
        };
        let managed: Option<BTreeSet<String>> = desired_fields(cx.desired, q, self.0, &id)
            .and_then(|f| f.get("parameters"))
            .and_then(Value::as_map)
            .map(|m| m.keys().cloned().collect());
        let params = match early {
            Some(params) => params?,
            None => self.parameters(cx.c, &g.name, true).await?,
        };
        Ok(observed(
            cx.scope,
            self.0,
            g,
            tags,
            &params,
            managed.as_ref(),
        ))
    }

    /// Sets `wanted` on the group in batches of at most 20, each with the apply method its apply
    /// type calls for (read from the group's own parameter list, which carries the engine
    /// defaults with their `ApplyType`).
    async fn set(
        &self,
        c: &Clients,
        group: &str,
        wanted: &BTreeMap<String, String>,
    ) -> Result<(), CloudError> {
        if wanted.is_empty() {
            return Ok(());
        }
        let known = self.parameters(c, group, false).await?;
        let apply_types: BTreeMap<&str, Option<&str>> = known
            .iter()
            .filter_map(|p| Some((p.parameter_name()?, p.apply_type())))
            .collect();
        let params: Vec<Parameter> = wanted
            .iter()
            .map(|(n, v)| {
                Parameter::builder()
                    .parameter_name(n)
                    .parameter_value(v)
                    .apply_method(apply_method(apply_types.get(n.as_str()).copied().flatten()))
                    .build()
            })
            .collect();
        for batch in params.chunks(PARAMETER_BATCH) {
            on_group_api!(
                self.cluster(),
                c,
                group,
                modify_db_cluster_parameter_group / modify_db_parameter_group,
                "rds:ModifyDBClusterParameterGroup" / "rds:ModifyDBParameterGroup",
                |op, req| sent(op, req.set_parameters(Some(batch.to_vec())).send()).await?
            );
        }
        Ok(())
    }

    /// The group named `name` as observed now, `r`'s parameters the managed ones.
    async fn read_back(
        &self,
        cx: &Cx<'_>,
        r: &Reader<'_>,
        name: &str,
        operation: &str,
    ) -> Result<Observed, CloudError> {
        let q = Query::Logical {
            id: &r.id,
            fields: r.fields,
        };
        let g = self.describe(cx.c, Some(name)).await?;
        let o = match g.first() {
            Some(g) => self.observed(cx, q, g).await?,
            None => None,
        };
        tagged(operation, name, o)
    }
}

/// An optional string of a description, empty when absent.
fn owned(s: Option<&str>) -> String {
    s.unwrap_or_default().to_string()
}

impl Group {
    /// A group from its description's (name, family), description and ARN.
    fn of(
        (name, family): (Option<&str>, Option<&str>),
        description: Option<&str>,
        arn: Option<&str>,
    ) -> Self {
        Group {
            name: owned(name),
            family: owned(family),
            description: owned(description),
            arn: owned(arn),
        }
    }
}

/// A group as observed from its description, tags and user-set parameters (only the `managed`
/// names when known); None when it is not tagged with the stack.
fn observed(
    scope: &Scope,
    kind: Kind,
    g: &Group,
    tags: BTreeMap<String, String>,
    params: &[Parameter],
    managed: Option<&BTreeSet<String>>,
) -> Option<Observed> {
    let id = owned_id(scope, &tags)?;
    let parameters: BTreeMap<String, Value> = params
        .iter()
        .filter(|p| p.source().is_none_or(|s| s == "user"))
        .filter_map(|p| {
            Some((
                p.parameter_name()?.to_string(),
                p.parameter_value()?.to_string(),
            ))
        })
        .filter(|(n, _)| managed.is_none_or(|m| m.contains(n)))
        .map(|(n, v)| (n, Value::Str(v)))
        .collect();
    let mut fields = Fields::new();
    fields.insert("name".into(), Value::str(&g.name));
    fields.insert("family".into(), Value::str(&g.family));
    fields.insert("description".into(), Value::str(&g.description));
    fields.insert("parameters".into(), Value::Map(parameters));
    fields.insert("tags".into(), tags_value(tags));
    Some(usable(kind, id, &g.name, &g.arn, fields))
}

/// How a parameter change must be applied: static parameters only on reboot.
fn apply_method(apply_type: Option<&str>) -> ApplyMethod {
    match apply_type {
        Some(t) if t.eq_ignore_ascii_case("dynamic") => ApplyMethod::Immediate,
        // Static, or not known: `pending-reboot` is valid for both kinds (`immediate` is refused
        // for static parameters).
        _ => ApplyMethod::PendingReboot,
    }
}

#[async_trait]
impl KindOps for ParameterGroup {
    async fn list(&self, cx: &Cx<'_>, q: Query<'_>) -> Result<Vec<Observed>, CloudError> {
        let Some(names) = Names::asked(cx, self.0, q) else {
            return Ok(Vec::new());
        };
        let groups = self.describe(cx.c, names.one()).await?;
        observe_named(
            &names,
            groups,
            |g| Some(&g.name),
            |g| async move { self.observed(cx, q, &g).await },
        )
        .await
    }

    async fn create(&self, cx: &Cx<'_>, r: &Reader<'_>) -> Result<Created, CloudError> {
        let name = r.str("name")?;
        let tags = rds_tags(cx.scope, &r.id, r)?;
        let (res, operation) = on_group_api!(
            self.cluster(),
            cx.c,
            name,
            create_db_cluster_parameter_group / create_db_parameter_group,
            "rds:CreateDBClusterParameterGroup" / "rds:CreateDBParameterGroup",
            |op, req| {
                let req = req
                    .db_parameter_group_family(r.str("family")?)
                    .description(r.str("description")?)
                    .set_tags(Some(tags));
                (sent(op, req.send()).await, op)
            }
        );
        match res {
            Ok(()) => {}
            // Both kinds answer with the same code.
            Err(e) if already_exists(&e, "DBParameterGroupAlreadyExists") => {
                return Ok(Created::Exists)
            }
            Err(e) => return Err(e),
        }
        self.set(cx.c, name, &r.string_map("parameters")?).await?;
        self.read_back(cx, r, name, operation)
            .await
            .map(Created::New)
    }

    async fn update(&self, cx: &Cx<'_>, u: Update<'_>) -> Result<Observed, CloudError> {
        let (current, r, changed) = u.parts();
        if changed.contains(&"parameters") {
            let wanted = r.string_map("parameters")?;
            let have = current.fields.get("parameters").and_then(Value::as_map);
            let diff: BTreeMap<String, String> = wanted
                .into_iter()
                .filter(|(k, v)| {
                    have.and_then(|h| h.get(k)).and_then(Value::as_str) != Some(v.as_str())
                })
                .collect();
            self.set(cx.c, &current.physical_id, &diff).await?;
        }
        if changed.contains(&"tags") {
            put_tags(cx.c, current, r).await?;
        }
        let q = Query::Logical {
            id: &r.id,
            fields: r.fields,
        };
        let g = self.describe(cx.c, Some(&current.physical_id)).await?;
        Ok(match g.first() {
            Some(g) => self.observed(cx, q, g).await?,
            None => None,
        }
        .unwrap_or_else(|| current.clone()))
    }

    async fn delete(&self, cx: &Cx<'_>, current: &Observed) -> Result<(), CloudError> {
        use crate::fields::delete_by;
        if self.cluster() {
            delete_by!(sent "rds:DeleteDBClusterParameterGroup":
                cx.c.rds.delete_db_cluster_parameter_group().db_cluster_parameter_group_name(current))
        } else {
            delete_by!(sent "rds:DeleteDBParameterGroup":
                cx.c.rds.delete_db_parameter_group().db_parameter_group_name(current))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{test_scope, test_tags};
    use super::*;
    use crate::fields::{assert_ready_as, tag_map};

    #[test]
    fn a_parameter_group_reports_only_the_managed_user_parameters() {
        for kind in [Kind::DbParameterGroup, Kind::DbClusterParameterGroup] {
            let g = Group {
                name: "demo-mysql8-0".into(),
                family: "mysql8.0".into(),
                description: "moodle".into(),
                arn: "arn:aws:rds:eu-west-1:1:pg:demo-mysql8-0".into(),
            };
            let p = |n: &str, v: &str, source: &str| {
                Parameter::builder()
                    .parameter_name(n)
                    .parameter_value(v)
                    .source(source)
                    .build()
            };
            let params = [
                p("max_allowed_packet", "67108864", "user"),
                p("wait_timeout", "100", "user"),
                p("innodb_buffer_pool_size", "1", "engine-default"),
            ];
            let managed = BTreeSet::from(["max_allowed_packet".to_string()]);
            let tags = tag_map(&test_tags("db.parameter_group"));
            let o = observed(
                &test_scope(),
                kind,
                &g,
                tags.clone(),
                &params,
                Some(&managed),
            )
            .unwrap();
            assert_ready_as(&o, "db.parameter_group", &[]);
            assert_eq!(
                o.fields["parameters"],
                Value::Map(BTreeMap::from([(
                    "max_allowed_packet".into(),
                    Value::str("67108864")
                )]))
            );
            let all = observed(&test_scope(), kind, &g, tags, &params, None).unwrap();
            let other = crate::fields::test_scope("other");
            assert!(observed(&other, kind, &g, tag_map(&test_tags("x")), &params, None).is_none());
            assert_eq!(
                all.fields["parameters"].as_map().map(BTreeMap::len),
                Some(2)
            );
        }
    }

    #[test]
    fn static_or_unknown_parameters_wait_for_a_reboot() {
        assert_eq!(apply_method(Some("dynamic")), ApplyMethod::Immediate);
        assert_eq!(apply_method(Some("static")), ApplyMethod::PendingReboot);
        assert_eq!(apply_method(None), ApplyMethod::PendingReboot);
    }
}
