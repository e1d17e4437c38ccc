//! `moodlestack rollback`: undoes a Moodle upgrade through the one data flow. It reads the stack's
//! restore points, picks the database snapshot taken before the upgrade from the version rolled
//! back to (and that upgrade's backup of moodledata), and applies the stack file with overrides:
//! the previous code version (`moodle.git_ref`, `moodle.php_version`) and `database.restore_from`
//! (and `files.restore_from`). The plan says what is replaced; the data-loss guard asks for
//! `--allow-data-loss`; the executor orders it (the nodes change only once the data is back).

use super::apply;
use super::common::{self, fail, Exit, Outcome};
use crate::Global;
use moodlestack_model::{RestorePoint, TAG_CODE, TAG_CODE_BEFORE, TAG_ID, TAG_NAME, TAG_STACK};
use std::path::Path;

pub struct Options {
    /// The code version to go back to (`v4.5.5 php8.3`, or the release alone: `v4.5.5`); by
    /// default the one the current version upgraded from.
    pub to: Option<String>,
    pub apply: apply::Options,
}

/// What a rollback restores, chosen from the restore points.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// The code version the stack runs.
    pub from: String,
    /// The code version it goes back to.
    pub to: String,
    /// The database snapshot taken before the upgrade from `to`.
    pub snapshot: String,
    /// That upgrade's backup of moodledata (a recovery point ARN), if there is one.
    pub files: Option<String>,
}

impl Target {
    /// The overrides that say it in the stack file's terms.
    pub fn overrides(&self) -> anyhow::Result<Vec<String>> {
        let (git_ref, php) = self.to.rsplit_once(" php").ok_or_else(|| {
            fail(
                format!(
                    "`{}` is not a code version (`<git_ref> php<version>`)",
                    self.to
                ),
                "pass --to with a version `moodlestack backups` lists (`code=...`)",
            )
        })?;
        let mut out = vec![
            format!("moodle.git_ref={git_ref}"),
            format!("moodle.php_version=\"{php}\""),
            format!("database.restore_from={}", self.snapshot),
        ];
        if let Some(point) = &self.files {
            out.push(format!("files.restore_from={point}"));
        }
        Ok(out)
    }

    /// What will happen, before the plan.
    pub fn text(&self, stack: &str) -> String {
        let mut out = format!(
            "Rollback of stack `{stack}` from {} to {}:\n  the database is restored from snapshot \
             {} (taken before the upgrade from {})\n",
            self.from, self.to, self.snapshot, self.to
        );
        match &self.files {
            Some(point) => out.push_str(&format!(
                "  moodledata is restored from that upgrade's backup of it, {point}, into a new \
                 file system\n"
            )),
            None => out.push_str(
                "  moodledata is left as it is: no backup of it was taken with that upgrade\n",
            ),
        }
        out.push_str(&format!("  the nodes run {} again\n", self.to));
        out
    }
}

fn tag<'a>(p: &'a RestorePoint, key: &str) -> Option<&'a str> {
    p.tags.get(key).map(String::as_str)
}

/// Whether the code version `version` is `want` (`v4.5.5 php8.3`) or of the release `want`
/// (`v4.5.5`).
fn is_version(version: &str, want: &str) -> bool {
    version == want || version.rsplit_once(" php").is_some_and(|(r, _)| r == want)
}

/// Picks what to restore from the stack's restore points (`moodlestack backups`): the stack's
/// current code version is its current snapshot's (`moodlestack:id`); the database snapshot is
/// the newest one taken before an upgrade from `to` (tag `moodlestack:code-before`); moodledata's
/// backup is that upgrade's (the recovery point of the same name).
pub fn choose(stack: &str, points: &[RestorePoint], to: Option<&str>) -> anyhow::Result<Target> {
    let ours = |p: &&RestorePoint| tag(p, TAG_STACK) == Some(stack);
    let current = points
        .iter()
        .filter(ours)
        .filter(|p| p.data == "database" && tag(p, TAG_ID) == Some("db.snapshot"))
        .max_by_key(|p| p.created_at)
        .ok_or_else(|| {
            fail(
                format!("stack `{stack}` has no snapshot of its code version"),
                "apply the stack first: each code version's snapshot is what a rollback \
                 restores (`moodlestack backups` lists them)",
            )
        })?;
    let from = tag(current, TAG_CODE).unwrap_or_default().to_string();
    let want = match to {
        Some(v) => v.to_string(),
        None => match tag(current, TAG_CODE_BEFORE) {
            Some(v) if v != "none" => v.to_string(),
            _ => {
                return Err(fail(
                    format!("stack `{stack}` runs {from}, its first code version: there is no upgrade to undo"),
                    "pass --to VERSION to restore the snapshot taken before an upgrade from VERSION \
                     (`moodlestack backups` lists them)",
                ))
            }
        },
    };
    if is_version(&from, &want) {
        return Err(fail(
            format!("stack `{stack}` already runs {from}"),
            "pass --to with an earlier version (`moodlestack backups` lists them)",
        ));
    }
    let snapshot = points
        .iter()
        .filter(ours)
        .filter(|p| p.data == "database" && p.is_available())
        .filter(|p| tag(p, TAG_CODE_BEFORE).is_some_and(|v| is_version(v, &want)))
        .max_by_key(|p| p.created_at)
        .ok_or_else(|| {
            fail(
                format!("no database snapshot of stack `{stack}` was taken before an upgrade from {want}"),
                "`moodlestack backups` lists the snapshots and the versions they were taken \
                 before (`code-before=`); restore another one with `--set \
                 database.restore_from=<snapshot>` and apply",
            )
        })?;
    let to = tag(snapshot, TAG_CODE_BEFORE).unwrap_or(&want).to_string();
    let files = points
        .iter()
        .filter(ours)
        .filter(|p| p.data == "files" && p.is_available())
        // Named like the snapshot: its name tag when it was taken under a suffixed name.
        .filter(|p| tag(p, TAG_NAME) == Some(tag(snapshot, TAG_NAME).unwrap_or(&snapshot.id)))
        .max_by_key(|p| p.created_at)
        .map(|p| p.id.clone());
    Ok(Target {
        from,
        to,
        snapshot: snapshot.id.clone(),
        files,
    })
}

pub fn run(g: &Global, path: &Path, o: Options) -> Outcome {
    let stack = common::load_stack(g, path)?;
    let scope = common::scope(&stack);
    let points = common::restore_points(&stack)?;
    let target = choose(&scope.stack, &points, o.to.as_deref())?;
    if !g.quiet {
        println!("{}", target.text(&scope.stack));
    }
    let (git_ref, php) = target.to.rsplit_once(" php").unwrap_or((&target.to, ""));
    let mut with = g.clone();
    with.set.extend(target.overrides()?);
    let exit = apply::run(&with, path, o.apply)?;
    let file_says = moodlestack_graph::code_version(&stack);
    if matches!(exit, Exit::Ok) && !g.quiet && file_says != target.to {
        println!(
            "Rolled back to {}. Now set `moodle.git_ref: {git_ref}` and `moodle.php_version: \
             \"{php}\"` in {}: an apply of the file as it is ({file_says}) would upgrade again.",
            target.to,
            path.display()
        );
    }
    Ok(exit)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn point(data: &str, id: &str, at: u64, tags: &[(&str, &str)]) -> RestorePoint {
        RestorePoint {
            data: data.into(),
            source: "rds snapshot (manual)".into(),
            id: id.into(),
            resource: "demo-db".into(),
            created_at: at,
            status: if data == "files" {
                "COMPLETED"
            } else {
                "available"
            }
            .into(),
            tags: tags
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .chain([("moodlestack:stack".to_string(), "demo".to_string())])
                .collect::<BTreeMap<_, _>>(),
        }
    }

    fn upgraded() -> Vec<RestorePoint> {
        let v1 = "v4.5.5 php8.3";
        let v2 = "v4.5.6 php8.3";
        vec![
            point("database", "rds:demo-db-2026-12-01", 1, &[]),
            point(
                "database",
                "demo-code-v4-5-5-php8-3",
                2,
                &[(TAG_CODE, v1), (TAG_CODE_BEFORE, "none")],
            ),
            point(
                "files",
                "arn:rp-1",
                3,
                &[(TAG_NAME, "demo-code-v4-5-5-php8-3"), (TAG_CODE, v1)],
            ),
            point(
                "database",
                "demo-code-v4-5-6-php8-3",
                10,
                &[
                    (TAG_CODE, v2),
                    (TAG_CODE_BEFORE, v1),
                    (TAG_ID, "db.snapshot"),
                ],
            ),
            point(
                "files",
                "arn:rp-2",
                11,
                &[(TAG_NAME, "demo-code-v4-5-6-php8-3"), (TAG_CODE, v2)],
            ),
        ]
    }

    #[test]
    fn a_rollback_restores_the_snapshot_taken_before_the_upgrade_it_undoes() {
        let t = choose("demo", &upgraded(), None).unwrap();
        assert_eq!(
            t,
            Target {
                from: "v4.5.6 php8.3".into(),
                to: "v4.5.5 php8.3".into(),
                snapshot: "demo-code-v4-5-6-php8-3".into(),
                files: Some("arn:rp-2".into()),
            }
        );
        assert_eq!(
            t.overrides().unwrap(),
            [
                "moodle.git_ref=v4.5.5",
                "moodle.php_version=\"8.3\"",
                "database.restore_from=demo-code-v4-5-6-php8-3",
                "files.restore_from=arn:rp-2"
            ]
        );
        // --to names the version, or only its release.
        assert_eq!(choose("demo", &upgraded(), Some("v4.5.5")).unwrap(), t);
        assert_eq!(
            choose("demo", &upgraded(), Some("v4.5.5 php8.3")).unwrap(),
            t
        );
    }

    #[test]
    fn what_cannot_be_rolled_back_is_refused_with_the_fix() {
        let err = |points: &[RestorePoint], to: Option<&str>| {
            choose("demo", points, to).unwrap_err().to_string()
        };
        assert!(err(&[], None).contains("has no snapshot of its code version"));
        assert!(err(&upgraded(), Some("v4.5.6")).contains("already runs v4.5.6 php8.3"));
        assert!(err(&upgraded(), Some("v4.4.0")).contains(
            "no database snapshot of stack `demo` was taken before an upgrade from v4.4.0"
        ));
        // Another stack's snapshots are not this one's.
        assert!(choose("other", &upgraded(), None).is_err());
        let first: Vec<RestorePoint> = upgraded()
            .into_iter()
            .take(2)
            .map(|mut p| {
                p.tags.insert(TAG_ID.into(), "db.snapshot".into());
                p
            })
            .collect();
        assert!(err(&first, None).contains("its first code version"));
    }
}
