//! `moodlestack outputs`: the stack's endpoints, read from the observed attributes of its
//! resources by logical id. Secrets are shown by ARN only, never by value.

use super::common::{self, fail, Exit, Outcome};
use crate::Global;
use moodlestack_model::ResourceId;
use std::collections::BTreeMap;
use std::path::Path;

/// Everything `outputs` shows; None: the resource does not exist (yet) or the stack has none.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Outputs {
    pub alb_dns_name: Option<String>,
    pub db_endpoint: Option<String>,
    pub db_port: Option<u16>,
    /// Secrets Manager secret with the database master password (RDS-managed).
    pub db_secret_arn: Option<String>,
    pub redis_endpoint: Option<String>,
    pub redis_port: Option<u16>,
    /// Secrets Manager secret with the Redis AUTH token (when `cache.auth`).
    pub redis_auth_secret_arn: Option<String>,
    pub efs_id: Option<String>,
}

impl Outputs {
    /// From attributes by logical id (observed, or gathered by an apply).
    pub fn from_attrs(attrs: &BTreeMap<ResourceId, BTreeMap<String, String>>) -> Outputs {
        let get = |id: &str, attr: &str| {
            attrs
                .get(&ResourceId::from(id))
                .and_then(|a| a.get(attr))
                .cloned()
        };
        // Aurora: the cluster holds the endpoint and the secret; standalone: the instance.
        let db = if attrs.contains_key(&ResourceId::from("db.cluster")) {
            "db.cluster"
        } else {
            "db.instance"
        };
        Outputs {
            alb_dns_name: get("lb.alb", "dns_name"),
            db_endpoint: get(db, "endpoint"),
            db_port: get(db, "port").and_then(|p| p.parse().ok()),
            db_secret_arn: get(db, "secret_arn"),
            redis_endpoint: get("cache.redis", "primary_endpoint"),
            redis_port: get("cache.redis", "port").and_then(|p| p.parse().ok()),
            redis_auth_secret_arn: get("cache.auth", "arn"),
            efs_id: get("files.fs", "id"),
        }
    }

    pub fn text(&self) -> String {
        let mut out = String::from("Outputs:\n");
        let mut line = |label: &str, v: Option<String>| {
            out.push_str(&format!(
                "  {label:<24} {}\n",
                v.unwrap_or_else(|| "(not created yet)".to_string())
            ));
        };
        line(
            "URL",
            self.alb_dns_name.as_ref().map(|d| format!("http://{d}/")),
        );
        line("load balancer DNS name", self.alb_dns_name.clone());
        line("database endpoint", self.db_endpoint.clone());
        line("database port", self.db_port.map(|p| p.to_string()));
        line("database secret ARN", self.db_secret_arn.clone());
        line("Redis endpoint", self.redis_endpoint.clone());
        line("Redis port", self.redis_port.map(|p| p.to_string()));
        if self.redis_auth_secret_arn.is_some() {
            line("Redis AUTH secret ARN", self.redis_auth_secret_arn.clone());
        }
        line("EFS file system", self.efs_id.clone());
        out
    }

    pub fn json(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).expect("outputs serialize");
        s.push('\n');
        s
    }
}

pub fn run(g: &Global, path: &Path, json: bool) -> Outcome {
    let loaded = super::plan::load(g, path)?;
    let stack = &loaded.stack;
    common::with_cloud(stack, async |cloud, scope| {
        let desired = common::names_graph(stack)?;
        let observed = common::observe(cloud, scope, &desired).await?;
        if observed.is_empty() {
            return Err(fail(
                format!(
                    "stack `{}` has no resources in {}",
                    scope.stack, scope.region
                ),
                format!(
                    "run `moodlestack apply {}` first (or check --name and the region)",
                    path.display()
                ),
            ));
        }
        let attrs: BTreeMap<ResourceId, BTreeMap<String, String>> = observed
            .iter()
            .map(|o| (o.id.to_resource_id(), o.attrs.clone()))
            .collect();
        let outputs = Outputs::from_attrs(&attrs);
        if json {
            print!("{}", outputs.json());
        } else {
            print!("{}", outputs.text());
        }
        Ok(Exit::Ok)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attrs(pairs: &[(&str, &[(&str, &str)])]) -> BTreeMap<ResourceId, BTreeMap<String, String>> {
        pairs
            .iter()
            .map(|(id, kv)| {
                (
                    ResourceId::from(*id),
                    kv.iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect(),
                )
            })
            .collect()
    }

    #[test]
    fn standalone_database_outputs() {
        let a = attrs(&[
            (
                "lb.alb",
                &[("dns_name", "demo-1.eu-west-1.elb.amazonaws.com")],
            ),
            (
                "db.instance",
                &[
                    ("endpoint", "demo-db.x.rds.amazonaws.com"),
                    ("port", "3306"),
                    (
                        "secret_arn",
                        "arn:aws:secretsmanager:eu-west-1:1:secret:rds!db-1",
                    ),
                ],
            ),
            (
                "cache.redis",
                &[
                    ("primary_endpoint", "master.demo.cache.amazonaws.com"),
                    ("port", "6379"),
                ],
            ),
            (
                "cache.auth",
                &[(
                    "arn",
                    "arn:aws:secretsmanager:eu-west-1:1:secret:demo-redis-auth",
                )],
            ),
            ("files.fs", &[("id", "fs-0123")]),
        ]);
        let o = Outputs::from_attrs(&a);
        assert_eq!(o.db_port, Some(3306));
        assert_eq!(o.redis_port, Some(6379));
        let j: serde_json::Value = serde_json::from_str(&o.json()).unwrap();
        assert_eq!(j["alb_dns_name"], "demo-1.eu-west-1.elb.amazonaws.com");
        assert_eq!(j["efs_id"], "fs-0123");
        assert_eq!(
            j["redis_auth_secret_arn"],
            "arn:aws:secretsmanager:eu-west-1:1:secret:demo-redis-auth"
        );
        let t = o.text();
        assert!(
            t.contains("http://demo-1.eu-west-1.elb.amazonaws.com/"),
            "{t}"
        );
        assert!(t.contains("master.demo.cache.amazonaws.com"), "{t}");
    }

    #[test]
    fn aurora_outputs_come_from_the_cluster() {
        let a = attrs(&[
            (
                "db.cluster",
                &[
                    ("endpoint", "demo-db.cluster-x.rds.amazonaws.com"),
                    ("port", "5432"),
                    ("secret_arn", "arn:s"),
                ],
            ),
            (
                "db.instance.1",
                &[
                    ("endpoint", "demo-db-1.x.rds.amazonaws.com"),
                    ("port", "5432"),
                ],
            ),
        ]);
        let o = Outputs::from_attrs(&a);
        assert_eq!(
            o.db_endpoint.as_deref(),
            Some("demo-db.cluster-x.rds.amazonaws.com")
        );
        assert_eq!(o.db_secret_arn.as_deref(), Some("arn:s"));
        assert_eq!(o.alb_dns_name, None);
        assert!(o.text().contains("(not created yet)"));
    }
}
