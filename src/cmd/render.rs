//! `moodlestack render`: writes every file moodlestack renders for the nodes (user-data,
//! config.php, vhost, php-fpm pool, php.ini, secrets reader, Spot watcher, cron) into a
//! directory, for review and for diffs in CI. Endpoints come from the live stack when it exists;
//! whatever is not known yet is shown as a clear placeholder.

use super::common::{self, fail, Exit, Outcome};
use crate::Global;
use moodlestack_model::Cloud;
use moodlestack_render::Endpoints;
use moodlestack_stack::Stack;
use std::collections::BTreeMap;
use std::path::Path;

pub fn run(g: &Global, stack_path: &Path, out: &Path, offline: bool) -> Outcome {
    let stack = common::load_stack(g, stack_path)?;
    let endpoints = if offline {
        if !g.quiet {
            eprintln!(
                "offline: database, Redis and EFS endpoints are shown as placeholders \
                 (known after apply)"
            );
        }
        Endpoints::placeholders(&stack)
    } else {
        match live_attrs(&stack) {
            Ok(attrs) => {
                let (e, missing) = endpoints_from_attrs(&stack, &attrs);
                if !missing.is_empty() && !g.quiet {
                    eprintln!(
                        "not in the live stack yet (shown as placeholders, known after apply): {}",
                        missing.join(", ")
                    );
                }
                e
            }
            Err(e) => {
                return Err(fail(
                    format!(
                        "cannot read the live stack {} in {}: {e:#}",
                        stack.name, stack.region
                    ),
                    format!(
                        "check the AWS credentials and region (AWS_PROFILE, AWS_ENDPOINT_URL), \
                         or render without AWS: moodlestack render {} --out {} --offline",
                        stack_path.display(),
                        out.display()
                    ),
                ))
            }
        }
    };
    let files = moodlestack_render::all_files(&stack, &endpoints)?;
    write_files(out, &files)?;
    if !g.quiet {
        println!("Wrote {} files to {}:", files.len(), out.display());
        for f in &files {
            println!("  {:<64} {:>6} bytes", f.path, f.content.len());
        }
    }
    Ok(Exit::Ok)
}

/// The observed attributes of the stack's resources, by logical id.
fn live_attrs(stack: &Stack) -> anyhow::Result<BTreeMap<String, BTreeMap<String, String>>> {
    // `observe` takes the desired graph only for the names of what it cannot find by tag.
    // Rendering launches nothing, so the graph is built with a stand-in image instead of
    // resolving the AMI (two AWS calls and a permission render does not need).
    // (The account only names the code bucket, which is found by its name prefix and tags.)
    let desired = common::names_graph(stack)?;
    common::with_cloud(stack, async |cloud, scope| {
        let observed = cloud.observe(scope, &desired).await?;
        Ok(observed
            .into_iter()
            .map(|o| (o.id.to_string(), o.attrs))
            .collect())
    })
}

/// The endpoints from observed attributes (`db.instance` or, for Aurora, `db.cluster`:
/// `endpoint`, `port`, `secret_arn`; `cache.redis`: `primary_endpoint`, `port`; `cache.auth`:
/// `arn`; `files.fs` and `code.bucket`: `id`), with placeholders for what is missing, and the list of what is.
pub fn endpoints_from_attrs(
    stack: &Stack,
    attrs: &BTreeMap<String, BTreeMap<String, String>>,
) -> (Endpoints, Vec<String>) {
    let placeholders = Endpoints::placeholders(stack);
    let db = if stack.database.engine.is_aurora() {
        "db.cluster"
    } else {
        "db.instance"
    };
    let mut missing = Vec::new();
    let mut take = |id: &str, attr: &str, fallback: &str| -> String {
        match attrs.get(id).and_then(|a| a.get(attr)) {
            Some(v) if !v.is_empty() => v.clone(),
            _ => {
                missing.push(format!("{id}.{attr}"));
                fallback.to_string()
            }
        }
    };
    let e = Endpoints {
        region: stack.region.clone(),
        db_host: take(db, "endpoint", &placeholders.db_host),
        db_port: take(db, "port", &placeholders.db_port),
        db_secret_arn: take(db, "secret_arn", &placeholders.db_secret_arn),
        redis_host: take("cache.redis", "primary_endpoint", &placeholders.redis_host),
        redis_port: take("cache.redis", "port", &placeholders.redis_port),
        redis_auth_secret_arn: placeholders
            .redis_auth_secret_arn
            .as_ref()
            .map(|p| take("cache.auth", "arn", p)),
        efs_id: take("files.fs", "id", &placeholders.efs_id),
        code_bucket: take("code.bucket", "id", &placeholders.code_bucket),
    };
    (e, missing)
}

fn write_files(out: &Path, files: &[moodlestack_render::RenderedFile]) -> anyhow::Result<()> {
    use anyhow::Context as _;
    for f in files {
        let path = out.join(&f.path);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
        std::fs::write(&path, &f.content)
            .with_context(|| format!("cannot write {}", path.display()))?;
        #[cfg(unix)]
        if f.content.starts_with("#!") {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
                .with_context(|| format!("cannot make {} executable", path.display()))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stack(json: &str) -> Stack {
        serde_json::from_str(json).unwrap()
    }

    const BASE: &str = r#"{"name": "t", "region": "eu-west-1", "database": {},
        "load_balancer": {},
        "moodle": {"wwwroot": "https://m.example.org", "admin_email": "a@example.org"}}"#;

    fn attrs(pairs: &[(&str, &str, &str)]) -> BTreeMap<String, BTreeMap<String, String>> {
        let mut m: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
        for (id, k, v) in pairs {
            m.entry(id.to_string())
                .or_default()
                .insert(k.to_string(), v.to_string());
        }
        m
    }

    #[test]
    fn live_values_by_logical_id() {
        let s = stack(BASE);
        let (e, missing) = endpoints_from_attrs(
            &s,
            &attrs(&[
                ("db.instance", "endpoint", "t-db.x.rds.amazonaws.com"),
                ("db.instance", "port", "3306"),
                ("db.instance", "secret_arn", "arn:db"),
                (
                    "cache.redis",
                    "primary_endpoint",
                    "master.t-redis.x.cache.amazonaws.com",
                ),
                ("cache.redis", "port", "6379"),
                ("cache.auth", "arn", "arn:auth"),
                ("files.fs", "id", "fs-1"),
                ("code.bucket", "id", "t-eu-west-1-123456789012-code"),
            ]),
        );
        assert!(missing.is_empty(), "{missing:?}");
        assert_eq!(e.code_bucket, "t-eu-west-1-123456789012-code");
        assert_eq!(e.db_host, "t-db.x.rds.amazonaws.com");
        assert_eq!(e.redis_auth_secret_arn.as_deref(), Some("arn:auth"));
        assert_eq!(e.efs_id, "fs-1");
    }

    #[test]
    fn aurora_reads_the_cluster_and_missing_values_are_placeholders() {
        let s = stack(&BASE.replace(
            r#""database": {}"#,
            r#""database": {"engine": "aurora-mysql"}"#,
        ));
        let (e, missing) =
            endpoints_from_attrs(&s, &attrs(&[("db.cluster", "endpoint", "c.cluster-x.rds")]));
        assert_eq!(e.db_host, "c.cluster-x.rds");
        assert_eq!(e.db_secret_arn, "<db secret arn: known after apply>");
        assert_eq!(e.efs_id, "<efs id: known after apply>");
        assert_eq!(e.db_port, "3306");
        assert!(missing.contains(&"db.cluster.secret_arn".to_string()));
        assert!(missing.contains(&"files.fs.id".to_string()));
        assert!(missing.contains(&"cache.auth.arn".to_string()));
    }
}
