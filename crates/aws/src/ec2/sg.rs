//! Security groups. `ingress` is a set of maps, one per (protocol, port range, single source):
//! `{protocol, from_port, to_port, description, cidr | source_group_id}`. AWS groups rules into
//! IpPermissions with several sources; observe splits them into that canonical shape, and an
//! update authorizes and revokes exactly the difference. Egress stays the AWS default.

use super::{
    available, create_tags, described, filters, made_fields, no_answer, not_in_place, physical,
    settled, tag_map, tag_spec, Ec2Kind,
};
use crate::fields::delete_by;
use crate::fields::{answer, is_code, reported, sent, Reader};
use crate::{Clients, Created, Cx, Query, Update};
use async_trait::async_trait;
use aws_sdk_ec2::types::{
    IpPermission, IpRange, Ipv6Range, PrefixListId, ResourceType,
    SecurityGroup as SdkSecurityGroup, UserIdGroupPair,
};
use moodlestack_model::{CloudError, Kind, Observed, Scope, Value};
use std::collections::{BTreeMap, BTreeSet};

/// The source keys a rule map may carry.
const SOURCES: [&str; 4] = ["cidr", "source_group_id", "ipv6_cidr", "prefix_list_id"];

/// One ingress rule in canonical form.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Rule {
    pub protocol: String,
    pub from_port: i64,
    pub to_port: i64,
    /// One of [`SOURCES`].
    pub source_kind: &'static str,
    pub source: String,
    pub description: String,
}

impl Rule {
    /// The rule without its description (what AWS matches on when revoking).
    fn key(&self) -> (String, i64, i64, &'static str, String) {
        (
            self.protocol.clone(),
            self.from_port,
            self.to_port,
            self.source_kind,
            self.source.clone(),
        )
    }

    pub(crate) fn to_value(&self) -> Value {
        Value::Map(BTreeMap::from([
            ("protocol".to_string(), Value::str(&self.protocol)),
            ("from_port".to_string(), Value::Int(self.from_port)),
            ("to_port".to_string(), Value::Int(self.to_port)),
            ("description".to_string(), Value::str(&self.description)),
            (self.source_kind.to_string(), Value::str(&self.source)),
        ]))
    }

    fn from_value(v: &Value) -> Result<Rule, String> {
        let m = v.as_map().ok_or("a rule is not a map")?;
        let s = |k: &str| m.get(k).and_then(Value::as_str).map(str::to_string);
        let i = |k: &str| m.get(k).and_then(Value::as_i64);
        let (source_kind, source) = SOURCES
            .iter()
            .find_map(|k| Some((*k, s(k)?)))
            .ok_or("a rule has none of cidr, source_group_id")?;
        Ok(Rule {
            protocol: s("protocol").ok_or("a rule has no protocol")?,
            from_port: i("from_port").ok_or("a rule has no from_port")?,
            to_port: i("to_port").ok_or("a rule has no to_port")?,
            source_kind,
            source,
            description: s("description").unwrap_or_default(),
        })
    }

    /// The rule as an IpPermission with its one source.
    fn to_permission(&self) -> IpPermission {
        self.permission(true)
    }

    /// The rule as AWS matches it when revoking: without its description.
    fn to_revoke(&self) -> IpPermission {
        self.permission(false)
    }

    fn permission(&self, with_description: bool) -> IpPermission {
        let desc =
            (with_description && !self.description.is_empty()).then(|| self.description.clone());
        let p = IpPermission::builder()
            .ip_protocol(&self.protocol)
            .from_port(self.from_port as i32)
            .to_port(self.to_port as i32);
        match self.source_kind {
            "cidr" => p.ip_ranges(
                IpRange::builder()
                    .cidr_ip(&self.source)
                    .set_description(desc)
                    .build(),
            ),
            "ipv6_cidr" => p.ipv6_ranges(
                Ipv6Range::builder()
                    .cidr_ipv6(&self.source)
                    .set_description(desc)
                    .build(),
            ),
            "prefix_list_id" => p.prefix_list_ids(
                PrefixListId::builder()
                    .prefix_list_id(&self.source)
                    .set_description(desc)
                    .build(),
            ),
            _ => p.user_id_group_pairs(
                UserIdGroupPair::builder()
                    .group_id(&self.source)
                    .set_description(desc)
                    .build(),
            ),
        }
        .build()
    }
}

/// AWS's IpPermissions split into canonical rules (one per source).
pub(crate) fn rules_of(perms: &[IpPermission]) -> Vec<Rule> {
    let mut out = Vec::new();
    for p in perms {
        // Each source of a permission, with its kind: (source_kind, source, description).
        let sources = p
            .ip_ranges()
            .iter()
            .map(|r| ("cidr", r.cidr_ip(), r.description()))
            .chain(
                p.ipv6_ranges()
                    .iter()
                    .map(|r| ("ipv6_cidr", r.cidr_ipv6(), r.description())),
            )
            .chain(
                p.prefix_list_ids()
                    .iter()
                    .map(|r| ("prefix_list_id", r.prefix_list_id(), r.description())),
            )
            .chain(
                p.user_id_group_pairs()
                    .iter()
                    .map(|g| ("source_group_id", g.group_id(), g.description())),
            );
        out.extend(sources.map(|(source_kind, source, description)| Rule {
            protocol: p.ip_protocol().unwrap_or("-1").to_string(),
            from_port: p.from_port().map(i64::from).unwrap_or(-1),
            to_port: p.to_port().map(i64::from).unwrap_or(-1),
            source_kind,
            source: source.unwrap_or_default().to_string(),
            description: description.unwrap_or_default().to_string(),
        }));
    }
    out.sort();
    out
}

fn desired_rules(r: &Reader<'_>) -> Result<Vec<Rule>, CloudError> {
    let mut rules = r
        .list_or_empty("ingress")?
        .iter()
        .map(Rule::from_value)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|problem| CloudError::Field {
            kind: r.kind,
            id: r.id.clone(),
            field: "ingress".into(),
            problem,
        })?;
    rules.sort();
    rules.dedup();
    Ok(rules)
}

/// The changes that turn `have` into `want`: rules to authorize, rules to revoke, and rules
/// whose description alone changes.
pub(crate) fn rule_changes(have: &[Rule], want: &[Rule]) -> (Vec<Rule>, Vec<Rule>, Vec<Rule>) {
    let have_keys: BTreeMap<_, &Rule> = have.iter().map(|r| (r.key(), r)).collect();
    let want_keys: BTreeSet<_> = want.iter().map(Rule::key).collect();
    let mut add = Vec::new();
    let mut describe = Vec::new();
    for w in want {
        match have_keys.get(&w.key()) {
            None => add.push(w.clone()),
            Some(h) if h.description != w.description => describe.push(w.clone()),
            Some(_) => {}
        }
    }
    let remove = have
        .iter()
        .filter(|h| !want_keys.contains(&h.key()))
        .cloned()
        .collect();
    (add, remove, describe)
}

fn group_observed(g: &SdkSecurityGroup) -> Option<Observed> {
    let id = g.group_id()?;
    let mut fields = reported([
        ("vpc_id", g.vpc_id().map(Value::str)),
        ("group_name", g.group_name().map(Value::str)),
        ("description", g.description().map(Value::str)),
    ]);
    let rules = rules_of(g.ip_permissions())
        .iter()
        .map(Rule::to_value)
        .collect();
    fields.insert("ingress".into(), Value::List(rules));
    let tags = tag_map(g.tags());
    Some(available(Kind::SecurityGroup, id, tags, fields))
}

/// Describes groups matching `q`.
async fn describe(
    c: &Clients,
    scope: &Scope,
    q: Query<'_>,
) -> Result<Vec<SdkSecurityGroup>, CloudError> {
    let filters = filters(scope, q);
    let req = c
        .ec2
        .describe_security_groups()
        .set_filters((!filters.is_empty()).then_some(filters))
        .set_group_ids(physical(q));
    described!("ec2:DescribeSecurityGroups", req).await
}

async fn authorize(c: &Clients, group_id: &str, rules: &[Rule]) -> Result<(), CloudError> {
    if rules.is_empty() {
        return Ok(());
    }
    let req = c
        .ec2
        .authorize_security_group_ingress()
        .group_id(group_id)
        .set_ip_permissions(Some(rules.iter().map(Rule::to_permission).collect()));
    sent("ec2:AuthorizeSecurityGroupIngress", req.send()).await
}

/// This file's kinds under their [`Kind`](moodlestack_model::Kind) names, for the registry
/// [`ops`](crate::ops).
pub(crate) mod kinds {
    pub(crate) use super::SecurityGroup;
}

/// `AWS::EC2::SecurityGroup`, keyed by its name within its VPC.
pub(crate) struct SecurityGroup;

#[async_trait]
impl Ec2Kind for SecurityGroup {
    async fn list(&self, cx: &Cx<'_>, q: Query<'_>) -> Result<Vec<Observed>, CloudError> {
        Ok(describe(cx.c, cx.scope, q)
            .await?
            .iter()
            .filter_map(group_observed)
            .collect())
    }

    async fn create(&self, cx: &Cx<'_>, r: &Reader<'_>) -> Result<Created, CloudError> {
        let c = cx.c;
        let tags = create_tags(cx.scope, &r.id, r)?;
        let rules = desired_rules(r)?;
        let out = answer(
            "ec2:CreateSecurityGroup",
            c.ec2
                .create_security_group()
                .group_name(r.str("group_name")?)
                .description(r.str("description")?)
                .vpc_id(r.str("vpc_id")?)
                .tag_specifications(tag_spec(ResourceType::SecurityGroup, &tags))
                .send(),
        )
        .await;
        let group_id = match out {
            Ok(out) => out
                .group_id()
                .ok_or_else(|| no_answer("ec2:CreateSecurityGroup", "id"))?
                .to_string(),
            // The name is taken in this VPC: the generic code adopts the group if it is this
            // resource of the stack.
            Err(e) if is_code(&e, "InvalidGroup.Duplicate") => return Ok(Created::Exists),
            Err(e) => return Err(e),
        };
        settled(|| authorize(c, &group_id, &rules)).await?;
        let mut fields = made_fields(r);
        fields.insert(
            "ingress".into(),
            Value::List(rules.iter().map(Rule::to_value).collect()),
        );
        let o = available(Kind::SecurityGroup, &group_id, tags, fields);
        Ok(Created::New(o))
    }

    async fn update_rest(&self, cx: &Cx<'_>, u: Update<'_>) -> Result<(), CloudError> {
        let (current, r, rest) = u.parts();
        let (c, scope, changed) = (cx.c, cx.scope, rest);
        let group_id = current.physical_id.as_str();
        for f in changed {
            if *f != "ingress" {
                return Err(not_in_place(r, f));
            }
            // The rules as they are now, so the calls are exactly the difference.
            let now = describe(c, scope, Query::Physical(group_id))
                .await?
                .into_iter()
                .next()
                .ok_or_else(|| CloudError::NotFound(format!("security group {group_id}")))?;
            let have = rules_of(now.ip_permissions());
            let want = desired_rules(r)?;
            let (add, remove, describe_only) = rule_changes(&have, &want);
            // Authorize first so that traffic allowed before and after never stops in between.
            authorize(c, group_id, &add).await?;
            if !remove.is_empty() {
                let req = c
                    .ec2
                    .revoke_security_group_ingress()
                    .group_id(group_id)
                    .set_ip_permissions(Some(remove.iter().map(Rule::to_revoke).collect()));
                sent("ec2:RevokeSecurityGroupIngress", req.send()).await?;
            }
            if !describe_only.is_empty() {
                let described = describe_only.iter().map(Rule::to_permission).collect();
                let req = c
                    .ec2
                    .update_security_group_rule_descriptions_ingress()
                    .group_id(group_id)
                    .set_ip_permissions(Some(described));
                sent("ec2:UpdateSecurityGroupRuleDescriptionsIngress", req.send()).await?;
            }
        }
        Ok(())
    }

    async fn delete(&self, cx: &Cx<'_>, current: &Observed) -> Result<(), CloudError> {
        delete_by!(sent "ec2:DeleteSecurityGroup":
            cx.c.ec2.delete_security_group().group_id(current))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use moodlestack_model::Lifecycle;

    fn rule(from: i64, kind: &'static str, source: &str, desc: &str) -> Rule {
        Rule {
            protocol: "tcp".into(),
            from_port: from,
            to_port: from,
            source_kind: kind,
            source: source.into(),
            description: desc.into(),
        }
    }

    #[test]
    fn permissions_split_into_one_rule_per_source() {
        let perm = IpPermission::builder()
            .ip_protocol("tcp")
            .from_port(443)
            .to_port(443)
            .ip_ranges(
                IpRange::builder()
                    .cidr_ip("0.0.0.0/0")
                    .description("https")
                    .build(),
            )
            .user_id_group_pairs(UserIdGroupPair::builder().group_id("sg-1").build())
            .build();
        let rules = rules_of(&[perm]);
        assert_eq!(
            rules,
            [
                rule(443, "cidr", "0.0.0.0/0", "https"),
                rule(443, "source_group_id", "sg-1", "")
            ]
        );
        let v = rules[0].to_value();
        assert_eq!(Rule::from_value(&v).unwrap(), rules[0]);
        assert_eq!(
            v.to_json().to_string(),
            r#"{"cidr":"0.0.0.0/0","description":"https","from_port":443,"protocol":"tcp","to_port":443}"#
        );
    }

    #[test]
    fn changes_are_exactly_the_difference() {
        let have = [
            rule(80, "source_group_id", "sg-a", "web"),
            rule(22, "cidr", "10.0.0.0/8", "ssh"),
        ];
        let want = [
            rule(80, "source_group_id", "sg-a", "http from alb"),
            rule(443, "cidr", "0.0.0.0/0", ""),
        ];
        let (add, remove, describe) = rule_changes(&have, &want);
        assert_eq!(add, [rule(443, "cidr", "0.0.0.0/0", "")]);
        assert_eq!(remove, [rule(22, "cidr", "10.0.0.0/8", "ssh")]);
        assert_eq!(
            describe,
            [rule(80, "source_group_id", "sg-a", "http from alb")]
        );
        let (a, r, d) = rule_changes(&want, &want);
        assert!(a.is_empty() && r.is_empty() && d.is_empty());
    }

    #[test]
    fn a_security_group_is_observed_with_its_rules() {
        use crate::ec2::check::{observation, tags};
        let g = SdkSecurityGroup::builder()
            .group_id("sg-1")
            .group_name("demo-web")
            .description("web servers")
            .vpc_id("vpc-1")
            .ip_permissions(
                IpPermission::builder()
                    .ip_protocol("tcp")
                    .from_port(80)
                    .to_port(80)
                    .user_id_group_pairs(UserIdGroupPair::builder().group_id("sg-alb").build())
                    .build(),
            )
            .set_tags(Some(tags("sg.web")))
            .build();
        let o = group_observed(&g).unwrap();
        observation(&o, &[], Lifecycle::Ready, "sg.web");
        assert_eq!(
            o.fields["ingress"],
            Value::List(vec![rule(80, "source_group_id", "sg-alb", "").to_value()])
        );
    }
}
