//! `moodlestack backups`: every restore point of the stack's data, oldest first: the database's
//! snapshots (automated, manual, the pre-upgrade and final ones) and the recovery points of the
//! stack's backup vault (database and moodledata), as the cloud reports them.

use super::common::{self, Exit, Outcome};
use crate::Global;
use moodlestack_model::{cloud::utc_date, RestorePoint};
use std::path::Path;

/// The text table: when, what, where from, status, id (and the tags an upgrade set).
pub fn text(scope: &moodlestack_model::Scope, points: &[RestorePoint]) -> String {
    if points.is_empty() {
        return format!(
            "Stack `{}` in {} has no restore points yet (the first scheduled backup runs at the \
             plan's next time; database snapshots appear once the database exists).\n",
            scope.stack, scope.region
        );
    }
    let mut out = format!(
        "{} restore point{} of stack `{}` in {}, oldest first:\n",
        points.len(),
        if points.len() == 1 { "" } else { "s" },
        scope.stack,
        scope.region
    );
    for p in points {
        let when = if p.created_at == 0 {
            "(time not reported)    ".to_string()
        } else {
            utc_date(p.created_at)
        };
        out.push_str(&format!(
            "  {when}  {:<8}  {:<28}  {:<10}  {}\n",
            p.data, p.source, p.status, p.id
        ));
        let versions: Vec<String> = p
            .tags
            .iter()
            .filter(|(k, _)| k.starts_with("moodlestack:code"))
            .map(|(k, v)| format!("{}={v}", k.trim_start_matches("moodlestack:")))
            .collect();
        if !versions.is_empty() {
            out.push_str(&format!("      {}\n", versions.join(", ")));
        }
    }
    out
}

pub fn run(g: &Global, path: &Path, json: bool) -> Outcome {
    let stack = common::load_stack(g, path)?;
    let points = common::restore_points(&stack)?;
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&points).expect("restore points serialize")
        );
    } else {
        print!("{}", text(&common::scope(&stack), &points));
    }
    Ok(Exit::Ok)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn restore_points_are_listed_with_time_kind_and_upgrade_versions() {
        let scope = moodlestack_model::Scope {
            stack: "demo".into(),
            region: "eu-west-1".into(),
        };
        assert!(text(&scope, &[]).contains("has no restore points yet"));
        let p = RestorePoint {
            data: "database".into(),
            source: "rds snapshot (manual)".into(),
            id: "demo-pre-v4-5-6".into(),
            resource: "demo-db".into(),
            created_at: 1_796_000_000,
            status: "available".into(),
            tags: BTreeMap::from([
                ("moodlestack:stack".into(), "demo".into()),
                ("moodlestack:code".into(), "v4.5.6 php8.3".into()),
                ("moodlestack:code-before".into(), "v4.5.5 php8.3".into()),
            ]),
        };
        let t = text(&scope, &[p]);
        assert!(
            t.starts_with("1 restore point of stack `demo` in eu-west-1"),
            "{t}"
        );
        assert!(
            t.contains("rds snapshot (manual)") && t.contains("demo-pre-v4-5-6"),
            "{t}"
        );
        assert!(
            t.contains("code=v4.5.6 php8.3, code-before=v4.5.5 php8.3"),
            "{t}"
        );
        assert!(t.contains(&utc_date(1_796_000_000)), "{t}");
    }
}
