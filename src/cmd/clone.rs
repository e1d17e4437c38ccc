//! `moodlestack clone`: a staging copy of a stack through the one data flow. It reads the source
//! stack's restore points (what `moodlestack backups` lists), picks a database snapshot of it, and
//! applies the same stack file as a new stack (`--name`) with overrides, as `rollback` does:
//! `database.restore_from` (the new database is restored from the source's snapshot, with its own
//! master secret), `files.restore_from` (moodledata restored from the source's newest backup of
//! it, when it has one), its own `moodle.wwwroot`, and outgoing e-mail off
//! (`moodle.config.noemailever`). Every name and tag derives from the new name, so nothing of the
//! source is in the copy's plan, and destroying the copy never touches the source.

use super::apply;
use super::common::{self, fail, Exit, Outcome};
use crate::Global;
use moodlestack_model::{cloud::utc_date, RestorePoint};
use std::path::Path;

pub struct Options {
    /// The source's database snapshot to restore (its identifier), or `latest`.
    pub snapshot: String,
    /// The source stack's name when it was applied with `--name` (default: the file's `name`).
    pub source_name: Option<String>,
    pub apply: apply::Options,
}

/// What a copy restores from the source, chosen from its restore points.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Chosen {
    /// The database snapshot.
    pub snapshot: RestorePoint,
    /// The newest backup of moodledata the source has: what `files.restore_from` restores.
    pub files: Option<RestorePoint>,
}

/// An RDS snapshot of the source's database (a DB snapshot of a standalone instance, a DB cluster
/// snapshot of an Aurora cluster: the stack's database has one of the two only), not a vault's
/// recovery point: what `database.restore_from` restores.
fn is_db_snapshot(p: &RestorePoint) -> bool {
    p.data == "database"
        && (p.source.starts_with("rds snapshot") || p.source.starts_with("rds cluster snapshot"))
}

/// Picks the snapshot `want` (an identifier, or `latest`: the newest available one) among the
/// source stack's restore points, and its newest backup of moodledata.
pub fn choose(source: &str, points: &[RestorePoint], want: &str) -> anyhow::Result<Chosen> {
    let listed = "`moodlestack backups` on the source lists its snapshots";
    let snapshot = if want == "latest" {
        points
            .iter()
            .filter(|p| is_db_snapshot(p) && p.is_available())
            .max_by_key(|p| p.created_at)
            .ok_or_else(|| {
                fail(
                    format!("stack `{source}` has no available database snapshot to clone"),
                    format!(
                        "apply the source stack first (its first apply takes a snapshot), or take \
                         one (`aws rds create-db-snapshot --db-instance-identifier {source}-db \
                         --db-snapshot-identifier {source}-for-staging`; Aurora: \
                         `aws rds create-db-cluster-snapshot --db-cluster-identifier {source}-db \
                         --db-cluster-snapshot-identifier {source}-for-staging`) and pass \
                         --snapshot {source}-for-staging"
                    ),
                )
            })?
    } else {
        let p = points.iter().find(|p| p.id == want).ok_or_else(|| {
            fail(
                format!("stack `{source}` has no restore point `{want}`"),
                format!("pass --snapshot latest or a snapshot identifier ({listed})"),
            )
        })?;
        if !is_db_snapshot(p) {
            return Err(fail(
                format!(
                    "`{want}` is {} ({}), not an RDS snapshot of the database",
                    p.data, p.source
                ),
                format!("pass an `rds snapshot` of the database ({listed})"),
            ));
        }
        if !p.is_available() {
            return Err(fail(
                format!("snapshot `{want}` is {}, not available", p.status),
                "wait until it is available (`moodlestack backups` shows its status), or pass \
                 --snapshot latest",
            ));
        }
        p
    };
    let files = points
        .iter()
        .filter(|p| p.data == "files" && p.is_available())
        .max_by_key(|p| p.created_at)
        .cloned();
    Ok(Chosen {
        snapshot: snapshot.clone(),
        files,
    })
}

/// The copy's site URL: the source's with the copy's name as the host's first label when the
/// host has three labels or more (`https://moodle.example.org` -> `https://staging.example.org`,
/// a sibling a wildcard certificate of the source's domain covers), before the host otherwise
/// (`https://example.org` -> `https://staging.example.org`); scheme, port and path kept. None for
/// a host that is an IP address.
pub fn wwwroot(source: &str, name: &str) -> Option<String> {
    let (scheme, rest) = source.split_once("://")?;
    let end = rest.find(['/', ':']).unwrap_or(rest.len());
    let (host, tail) = rest.split_at(end);
    if host.parse::<std::net::IpAddr>().is_ok() {
        return None;
    }
    let host = match host.split_once('.') {
        Some((_, parent)) if parent.contains('.') => format!("{name}.{parent}"),
        _ => format!("{name}.{host}"),
    };
    Some(format!("{scheme}://{host}{tail}"))
}

impl Chosen {
    /// The overrides that make the source's stack file the copy (before the user's `--set`, which
    /// win).
    pub fn overrides(&self, wwwroot: Option<&str>) -> Vec<String> {
        let mut out: Vec<String> = wwwroot
            .map(|w| format!("moodle.wwwroot={w}"))
            .into_iter()
            .collect();
        out.push(format!("database.restore_from={}", self.snapshot.id));
        if let Some(files) = &self.files {
            out.push(format!("files.restore_from={}", files.id));
        }
        out.push("moodle.config.noemailever=true".into());
        out
    }

    /// What will happen, before the plan.
    pub fn text(&self, source: &str, copy: &moodlestack_stack::Stack) -> String {
        let s = &self.snapshot;
        let mut out = format!(
            "Clone of stack `{source}` as `{}` in {}:\n  the database is a new one restored from \
             snapshot {} ({}, {}), with its own master secret\n  wwwroot: {} (point that name \
             at the clone's load balancer: `moodlestack outputs`)\n",
            copy.name,
            copy.region,
            s.id,
            s.source,
            utc_date(s.created_at),
            copy.moodle.wwwroot,
        );
        let mail = copy.moodle.config.get("noemailever");
        if mail == Some(&serde_json::Value::Bool(true)) {
            out.push_str("  outgoing e-mail is off ($CFG->noemailever); ");
        } else {
            out.push_str("  outgoing e-mail is ON (--set moodle.config.noemailever); ");
        }
        out.push_str("cron runs on the stable node as usual\n");
        match &self.files {
            Some(p) => out.push_str(&format!(
                "  moodledata is a new file system restored from the source's newest backup of \
                 it, {} ({})\n",
                p.id,
                utc_date(p.created_at)
            )),
            None => out.push_str(
                "  moodledata starts empty: the source has no completed backup of it (its vault \
                 lists none; `moodlestack backups` on the source)\n",
            ),
        }
        out.push_str(&format!(
            "  nothing of `{source}` changes; destroying `{}` never touches it\n",
            copy.name
        ));
        out
    }
}

pub fn run(g: &Global, path: &Path, o: Options) -> Outcome {
    let Some(name) = g.name.clone() else {
        return Err(fail(
            "`moodlestack clone` needs the clone's name",
            "pass --name NEW, e.g. --name staging",
        ));
    };
    // Both stacks are loaded quietly here: apply loads the copy again and shows its warnings.
    let quiet = |name: Option<String>, set: Vec<String>| Global {
        name,
        set,
        quiet: true,
        ..g.clone()
    };
    let source = common::load_stack(&quiet(o.source_name.clone(), Vec::new()), path)?;
    if name == source.name {
        return Err(fail(
            format!("`--name {name}` is the source stack's name: a clone is a new stack"),
            format!("pass another name, e.g. --name {name}-staging"),
        ));
    }
    let derived = wwwroot(&source.moodle.wwwroot, &name);
    let own_wwwroot = g.set.iter().any(|s| s.starts_with("moodle.wwwroot="));
    if derived.is_none() && !own_wwwroot {
        return Err(fail(
            format!(
                "the source's wwwroot `{}` has no host name to derive the clone's from",
                source.moodle.wwwroot
            ),
            "pass the copy's URL: --set moodle.wwwroot=https://staging.example.org",
        ));
    }
    let points = common::restore_points(&source)?;
    let chosen = choose(&source.name, &points, &o.snapshot)?;
    let mut with = g.clone();
    with.set = chosen.overrides(derived.as_deref());
    with.set.extend(g.set.iter().cloned());
    let copy = common::load_stack(&quiet(Some(name.clone()), with.set.clone()), path)?;
    if copy.region != source.region {
        return Err(fail(
            format!(
                "the clone would be in {}, the source's snapshot is in {}",
                copy.region, source.region
            ),
            "drop `--set region=...`: a clone is made in the source's region (copy the snapshot \
             first with `aws rds copy-db-snapshot` for another one)",
        ));
    }
    if copy.moodle.wwwroot == source.moodle.wwwroot {
        return Err(fail(
            format!(
                "the clone's wwwroot is the source's ({})",
                source.moodle.wwwroot
            ),
            "pass the clone's own URL: --set moodle.wwwroot=...",
        ));
    }
    if !g.quiet {
        println!("{}", chosen.text(&source.name, &copy));
    }
    let exit = apply::run(&with, path, o.apply).map_err(|e| {
        match e.downcast_ref::<moodlestack_reconcile::diff::GuardError>() {
            // Only an existing stack of that name has data to lose: a copy never replaces it.
            Some(guard) => fail(
                format!(
                    "stack `{name}` exists and is not a clone of snapshot {}: {guard}",
                    chosen.snapshot.id
                ),
                format!(
                    "pass --snapshot with the one `{name}` was restored from (its database's \
                     `moodlestack:restored-from` tag), or destroy it first for a fresh clone \
                     (`moodlestack destroy {} --name {name}`), or pick another --name",
                    path.display()
                ),
            ),
            None => e,
        }
    })?;
    if matches!(exit, Exit::Ok) && !g.quiet {
        println!(
            "Cloned `{}` as `{name}`: the stack file {} with these overrides (a later plan or apply \
             of the clone passes them too):\n  --name {name} {}",
            source.name,
            path.display(),
            with.set
                .iter()
                .map(|s| format!("--set '{s}'"))
                .collect::<Vec<_>>()
                .join(" ")
        );
    }
    Ok(exit)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(data: &str, source: &str, id: &str, at: u64, status: &str) -> RestorePoint {
        RestorePoint {
            data: data.into(),
            source: source.into(),
            id: id.into(),
            resource: "demo-db".into(),
            created_at: at,
            status: status.into(),
            tags: Default::default(),
        }
    }

    fn points() -> Vec<RestorePoint> {
        let manual = "rds snapshot (manual)";
        let (on_demand, scheduled) = ("aws backup (on demand)", "aws backup (scheduled)");
        [
            (
                "database",
                manual,
                "demo-code-v4-5-5-php8-3",
                1,
                "available",
            ),
            ("files", on_demand, "arn:rp-1", 2, "COMPLETED"),
            (
                "database",
                "rds snapshot (automated)",
                "rds:demo-db-2026-12-01",
                3,
                "available",
            ),
            ("files", scheduled, "arn:rp-2", 4, "COMPLETED"),
            (
                "database",
                scheduled,
                "arn:aws:rds:snapshot:awsbackup:job-1",
                5,
                "COMPLETED",
            ),
            ("database", manual, "demo-by-hand", 6, "creating"),
            ("files", on_demand, "arn:rp-3", 7, "CREATING"),
        ]
        .into_iter()
        .map(|(data, source, id, at, status)| point(data, source, id, at, status))
        .collect()
    }

    #[test]
    fn latest_is_the_newest_available_rds_snapshot_and_an_id_names_one() {
        let c = choose("demo", &points(), "latest").unwrap();
        assert_eq!(c.snapshot.id, "rds:demo-db-2026-12-01");
        assert_eq!(c.files.as_ref().map(|p| p.id.as_str()), Some("arn:rp-2"));
        assert_eq!(
            c.overrides(Some("http://staging.moodlestack.test")),
            [
                "moodle.wwwroot=http://staging.moodlestack.test",
                "database.restore_from=rds:demo-db-2026-12-01",
                "files.restore_from=arn:rp-2",
                "moodle.config.noemailever=true",
            ]
        );
        let named = choose("demo", &points(), "demo-code-v4-5-5-php8-3").unwrap();
        assert_eq!(named.snapshot.id, "demo-code-v4-5-5-php8-3");
        // A source without a completed backup of moodledata: the clone's starts empty.
        let no_files: Vec<RestorePoint> =
            points().into_iter().filter(|p| p.data != "files").collect();
        let bare = choose("demo", &no_files, "latest").unwrap();
        assert_eq!(bare.files, None);
        assert!(!bare
            .overrides(None)
            .iter()
            .any(|o| o.starts_with("files.restore_from")));
    }

    /// An Aurora source's snapshots are DB cluster snapshots (its vault's recovery points are not
    /// restored by `database.restore_from`).
    #[test]
    fn an_aurora_sources_cluster_snapshot_is_cloned() {
        let cluster = "rds cluster snapshot (manual)";
        let points = [
            point(
                "database",
                cluster,
                "demo-code-v4-5-5-php8-3",
                1,
                "available",
            ),
            point(
                "database",
                "aws backup (scheduled)",
                "arn:aws:rds:eu-west-1:1:cluster-snapshot:awsbackup:job-1",
                2,
                "COMPLETED",
            ),
        ];
        let c = choose("demo", &points, "latest").unwrap();
        assert_eq!(c.snapshot.id, "demo-code-v4-5-5-php8-3");
        assert_eq!(
            choose("demo", &points, "demo-code-v4-5-5-php8-3").unwrap(),
            c
        );
    }

    #[test]
    fn what_cannot_be_copied_is_refused_with_the_fix() {
        let err = |points: &[RestorePoint], want: &str| {
            choose("demo", points, want).unwrap_err().to_string()
        };
        assert!(err(&[], "latest").contains("has no available database snapshot"));
        assert!(err(&points(), "nope").contains("has no restore point `nope`"));
        assert!(err(&points(), "arn:rp-2").contains("not an RDS snapshot"));
        assert!(
            err(&points(), "arn:aws:rds:snapshot:awsbackup:job-1").contains("not an RDS snapshot")
        );
        assert!(err(&points(), "demo-by-hand").contains("is creating, not available"));
    }

    #[test]
    fn the_clone_gets_a_sibling_host_name() {
        for (source, want) in [
            (
                "https://moodle.example.org",
                Some("https://staging.example.org"),
            ),
            ("https://example.org", Some("https://staging.example.org")),
            (
                "http://demo.moodlestack.test:8080/moodle",
                Some("http://staging.moodlestack.test:8080/moodle"),
            ),
            ("http://localhost", Some("http://staging.localhost")),
            ("http://10.0.0.5/moodle", None),
        ] {
            assert_eq!(wwwroot(source, "staging").as_deref(), want, "{source}");
        }
    }
}
