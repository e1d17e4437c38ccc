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
        // Asked nothing (--auto-approve): the lease first, then one observation under it, where
        // a destroy that asks reads the stack, asks, takes the lease and reads it again.
        let held = if o.auto_approve {
            Some(take_lease(g, cloud, scope).await?)
        } else {
            None
        };
        let outcome = async {
            let observed = observe_stack(cloud, scope, &desired, held.is_some()).await?;
            if observed.is_empty() {
                println!(
                    "Nothing to destroy: stack `{}` has no resources in {}.",
                    scope.stack, scope.region
                );
                return Ok(None);
            }
            delete_observed(g, cloud, scope, &desired, observed, &o, held.clone())
                .await
                .map(Some)
        }
        .await;
        match outcome {
            // The run released the lease.
            Ok(Some(exit)) => Ok(exit),
            stopped => {
                if held.is_some() {
                    release_held(cloud, scope).await;
                }
                stopped.map(|exit| exit.unwrap_or(Exit::Ok))
            }
        }
    })
}

/// Takes the stack's lease before anything is read ([`execute::take_lease`]); when it lifted
/// the lease of a run whose process is gone, waits until AWS lists what that run created.
async fn take_lease(
    g: &Global,
    cloud: &dyn Cloud,
    scope: &moodlestack_model::Scope,
) -> anyhow::Result<moodlestack_model::LeaseInfo> {
    // The printer shows the notes of a lease that is waited for or taken over.
    let printer = Printer::start(g, 0);
    let opts = execute::Options {
        progress: printer.clone(),
        ..execute::Options::default()
    };
    let taken = execute::take_lease(cloud, scope, &opts).await;
    printer.finish();
    let (lease, lifted) = taken?;
    if let Some(lifted) = lifted {
        common::settle_after_crash(cloud, Ok(Some(lifted))).await;
    }
    Ok(lease)
}

/// Releases the lease [`take_lease`] took, when the destroy stopped before its run (which
/// releases it): nothing to delete, a refusal, an error.
async fn release_held(cloud: &dyn Cloud, scope: &moodlestack_model::Scope) {
    if let Err(e) = cloud.release_lease(scope, &execute::lease_owner()).await {
        eprintln!(
            "note: could not release the stack's lease ({e}); it expires by itself within a minute"
        );
    }
}

/// The stack's resources, found by observation with `desired` (the stack file's graph, or for
/// `gc` a stand-in built from the stack's name: every name the observation asks for derives from
/// the stack's name and region). `under_lease` (this run holds the lease, see [`take_lease`]):
/// one observation; otherwise beside the lease read ([`common::observe_settled`]: read again
/// after a wait when the lease shows a run that stopped a moment ago). Resources that carry the
/// stack's tag but no `moodlestack:id` are listed (never deleted) and left out.
pub(super) async fn observe_stack(
    cloud: &dyn Cloud,
    scope: &moodlestack_model::Scope,
    desired: &[moodlestack_model::Resource],
    under_lease: bool,
) -> anyhow::Result<Vec<Observed>> {
    // Held: a crashed holder was settled when the lease was taken.
    let all = if under_lease {
        common::observe(cloud, scope, desired).await?
    } else {
        common::observe_settled(cloud, scope, desired).await?
    };
    let (foreign, observed): (Vec<_>, Vec<_>) = all.into_iter().partition(Observed::is_foreign);
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
    held: Option<moodlestack_model::LeaseInfo>,
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
            held,
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
        // Read back: nothing of the stack is left. The read is the one made beside the lease's
        // release, which has waited for AWS to stop listing what the run deleted (EC2's
        // describes are eventually consistent); or, when that read failed, one made now.
        let seen = match report.observed_after {
            Some(seen) => seen,
            None => cloud
                .observe(scope, desired)
                .await
                .map_err(|e| anyhow::Error::new(e).context("read-back after destroy failed"))?,
        };
        let left: Vec<Observed> = seen.into_iter().filter(|r| !r.is_foreign()).collect();
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
