//! `moodlestack destroy`: deletes every resource tagged with the stack (and the untaggable mount
//! targets of its file system), a resource after everything that uses it. A resource with the
//! stack's tag but no `moodlestack:id` is not the stack's: listed, never deleted.
//!
//! Data: the database (standalone instance or Aurora cluster) takes a final snapshot
//! `<stack>-db-final-<unix time>` unless `--skip-final-snapshot`. `--allow-data-loss` is needed
//! to delete the EFS file system and the Redis cache (no snapshot keeps them), to skip the final
//! snapshot, and to lift deletion protection; without it destroy refuses before any change.

use super::apply::{check_parallelism, confirm, unfinished, unix_now, watch_ctrl_c, Printer};
use super::common::{self, Exit, Outcome};
use crate::Global;
use moodlestack_model::{spec, Cloud, Observed, Value};
use moodlestack_reconcile::{execute, print};
use std::path::Path;

pub struct Options {
    pub auto_approve: bool,
    pub skip_final_snapshot: bool,
    pub allow_data_loss: bool,
    pub parallelism: usize,
}

pub fn run(g: &Global, path: &Path, o: Options) -> Outcome {
    check_parallelism(o.parallelism)?;
    let loaded = super::plan::load(g, path)?;
    let stack = &loaded.stack;
    common::with_cloud(stack, async |cloud, scope| {
        let desired = common::names_graph(stack)?;
        let observed = observe_stack(cloud, scope, &desired).await?;
        if observed.is_empty() {
            println!(
                "Nothing to destroy: stack `{}` has no resources in {}.",
                scope.stack, scope.region
            );
            return Ok(Exit::Ok);
        }
        delete_observed(g, cloud, scope, &desired, observed, &o).await
    })
}

/// The stack's resources, found by observation with `desired` (the stack file's graph, or for
/// `gc` a stand-in built from the stack's name: every name the observation asks for derives from
/// the stack's name and region), beside the lease read ([`common::observe_settled`]: read again
/// after a wait when the lease shows a run that stopped a moment ago). Resources that carry the
/// stack's tag but no `moodlestack:id` are listed (never deleted) and left out.
pub(super) async fn observe_stack(
    cloud: &dyn Cloud,
    scope: &moodlestack_model::Scope,
    desired: &[moodlestack_model::Resource],
) -> anyhow::Result<Vec<Observed>> {
    let (foreign, observed): (Vec<_>, Vec<_>) = common::observe_settled(cloud, scope, desired)
        .await?
        .into_iter()
        .partition(Observed::is_foreign);
    if !foreign.is_empty() {
        println!(
            "Left alone: {} resource{} tagged moodlestack:stack={} without moodlestack:id \
             (not created by moodlestack; a VPC or subnet they are in cannot be deleted \
             until they are gone):\n{}",
            foreign.len(),
            if foreign.len() == 1 { "" } else { "s" },
            scope.stack,
            print::foreign_lines(&foreign).trim_end()
        );
    }
    Ok(observed)
}

/// Lists `observed` (the stack's resources, not empty) in the order they will go, refuses data
/// loss `o` does not allow, asks (unless `o.auto_approve`), deletes them, reads back.
pub(super) async fn delete_observed(
    g: &Global,
    cloud: &dyn Cloud,
    scope: &moodlestack_model::Scope,
    desired: &[moodlestack_model::Resource],
    observed: Vec<Observed>,
    o: &Options,
) -> Outcome {
    let names = moodlestack_stack::names::Names::for_stack(&scope.stack, &scope.region);
    {
        let snapshot = (!o.skip_final_snapshot).then(|| names.db_final_snapshot(unix_now()));
        let printer = Printer::start(g, observed.len());
        let cancel = execute::Cancel::new();
        let opts = execute::Options {
            parallelism: o.parallelism,
            allow_data_loss: o.allow_data_loss,
            final_snapshot_id: snapshot.clone(),
            progress: printer.clone(),
            cancel: cancel.clone(),
            ..execute::Options::default()
        };

        // What will be deleted, in the order it will go (users first).
        let mut listed = observed.clone();
        listed.sort_by(|a, b| {
            spec(b.kind)
                .tier
                .cmp(&spec(a.kind).tier)
                .then_with(|| a.id.cmp(&b.id))
        });
        println!(
            "Destroy will delete {} resource{} of stack `{}` in {} (only resources tagged \
             moodlestack:stack={} and moodlestack:id, and the mount targets of its file system):",
            listed.len(),
            if listed.len() == 1 { "" } else { "s" },
            scope.stack,
            scope.region,
            scope.stack
        );
        for r in &listed {
            let mut notes = Vec::new();
            let risk = spec(r.kind).delete_risk(&r.fields);
            if risk.snapshots {
                notes.push(match &snapshot {
                    Some(s) => format!("final snapshot {s}"),
                    None => "NO final snapshot".to_string(),
                });
            }
            if r.fields.get("deletion_protection") == Some(&Value::Bool(true)) {
                notes.push("deletion protection is on".into());
            }
            if risk.loses_data {
                notes.push("its data is lost".into());
            }
            if spec(r.kind).on_delete == moodlestack_model::DeletePolicy::Release {
                notes.push("kept: released from the stack, not deleted".into());
            }
            // Untaggable resources have no logical id of their own: show the kind and the
            // physical id once.
            let what = if r.id.is_untagged() {
                format!("(untagged {})", r.kind)
            } else {
                format!("{} ({})", r.id, r.kind)
            };
            let notes = if notes.is_empty() {
                String::new()
            } else {
                format!("  [{}]", notes.join("; "))
            };
            println!("  - {what} {}{notes}", r.physical_id);
        }
        let refused = execute::destroy_refusals(&observed, &opts);
        if !refused.is_empty() {
            printer.finish();
            return Err(execute::ExecError::DataLoss {
                destroy: true,
                refused,
            }
            .into());
        }
        let question = format!(
            "Delete these {} resources of stack `{}` in {}? Only `yes` is accepted: ",
            listed.len(),
            scope.stack,
            scope.region
        );
        let confirmed = confirm(o.auto_approve, &question, "destroy", "--auto-approve");
        if !matches!(confirmed, Ok(true)) {
            printer.finish();
        }
        if !confirmed? {
            eprintln!("Destroy cancelled; nothing was deleted.");
            return Ok(Exit::Reported);
        }
        watch_ctrl_c(cancel);
        let result = super::stats::timed(
            "execute",
            execute::destroy(cloud, scope, &observed, desired, &opts),
        )
        .await;
        printer.finish();
        let report = result?;
        if let Some(exit) = unfinished(&report, "Interrupted: run destroy again to finish.") {
            return Ok(exit);
        }
        // Read back: nothing of the stack is left.
        let left = cloud
            .observe(scope, desired)
            .await
            .map_err(|e| anyhow::Error::new(e).context("read-back after destroy failed"))?;
        let left: Vec<_> = left.into_iter().filter(|r| !r.is_foreign()).collect();
        if !left.is_empty() {
            let listed = left
                .iter()
                .map(|r| format!("{} ({}) {} [{}]", r.id, r.kind, r.physical_id, r.status));
            return Err(common::fail_listing(
                "after destroy, these resources of the stack still exist:",
                listed,
                "run destroy again (a deletion may still be in progress)",
            ));
        }
        if !g.quiet {
            println!("Destroyed: stack `{}` has no resources left.", scope.stack);
            if let Some(s) = &snapshot {
                if observed
                    .iter()
                    .any(|r| spec(r.kind).delete_risk(&r.fields).snapshots)
                {
                    println!("The database's final snapshot is {s}.");
                }
            }
        }
        Ok(Exit::Ok)
    }
}
