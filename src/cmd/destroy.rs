//! `moodlestack destroy`: deletes every resource tagged with the stack (and the untaggable mount
//! targets and listeners of those), a resource after everything that uses it.
//!
//! Data: the database (standalone instance or Aurora cluster) takes a final snapshot
//! `<stack>-db-final-<unix time>` unless `--skip-final-snapshot`. `--allow-data-loss` is needed
//! to delete the EFS file system and the Redis cache (no snapshot keeps them), to skip the final
//! snapshot, and to lift deletion protection; without it destroy refuses before any change.

use super::apply::{
    confirm, desired_for_observe, unix_now, watch_ctrl_c, Printer, EXIT_INTERRUPTED,
};
use super::common::{self, EXIT_ERROR, EXIT_OK};
use crate::Global;
use moodlestack_model::{spec, Cloud, Value};
use moodlestack_reconcile::execute;
use std::path::Path;

pub struct Options {
    pub auto_approve: bool,
    pub skip_final_snapshot: bool,
    pub allow_data_loss: bool,
    pub parallelism: usize,
}

pub fn run(g: &Global, path: &Path, o: Options) -> u8 {
    if o.parallelism == 0 {
        eprintln!("error: --parallelism must be at least 1");
        return EXIT_ERROR;
    }
    let loaded = match super::plan::load(g, path) {
        Ok(l) => l,
        Err(code) => return code,
    };
    let stack = &loaded.stack;
    let scope = common::scope(stack);
    let names = moodlestack_stack::names::Names::of(stack);
    let rt = common::runtime();
    rt.block_on(async {
        let cloud = common::cloud(stack).await;
        let desired = match desired_for_observe(stack, &cloud).await {
            Ok(d) => d,
            Err(e) => {
                eprintln!("error: {e:#}");
                return EXIT_ERROR;
            }
        };
        let observed = match super::stats::timed("observe", cloud.observe(&scope, &desired)).await {
            Ok(o) => o,
            Err(e) => {
                eprintln!(
                    "error: cannot read the stack's resources in {}: {e}\n  fix: check the \
                         AWS credentials and region",
                    scope.region
                );
                return EXIT_ERROR;
            }
        };
        if observed.is_empty() {
            println!(
                "Nothing to destroy: stack `{}` has no resources in {}.",
                scope.stack, scope.region
            );
            return EXIT_OK;
        }
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
             moodlestack:stack={}, and the mount targets and listeners of those):",
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
            eprintln!("error: refusing to destroy data without --allow-data-loss:");
            for r in &refused {
                eprintln!("  - {r}");
            }
            eprintln!(
                "  fix: run again with --allow-data-loss if losing this data is intended (the \
                 database still takes a final snapshot unless --skip-final-snapshot)"
            );
            return EXIT_ERROR;
        }
        let question = format!(
            "Delete these {} resources of stack `{}` in {}? Only `yes` is accepted: ",
            listed.len(),
            scope.stack,
            scope.region
        );
        match confirm(o.auto_approve, &question, "destroy") {
            Ok(true) => {}
            Ok(false) => {
                printer.finish();
                eprintln!("Destroy cancelled; nothing was deleted.");
                return EXIT_ERROR;
            }
            Err(code) => {
                printer.finish();
                return code;
            }
        }
        watch_ctrl_c(cancel);
        let result = super::stats::timed(
            "execute",
            execute::destroy(&cloud, &scope, &observed, &desired, &opts),
        )
        .await;
        printer.finish();
        let report = match result {
            Ok(r) => r,
            Err(e) => {
                eprintln!("error: {e}");
                return EXIT_ERROR;
            }
        };
        eprintln!("{report}");
        if report.interrupted {
            eprintln!("Interrupted: run destroy again to finish.");
            return EXIT_INTERRUPTED;
        }
        if !report.is_success() {
            return EXIT_ERROR;
        }
        // Read back: nothing of the stack is left.
        match cloud.observe(&scope, &desired).await {
            Ok(left) if left.is_empty() => {
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
                EXIT_OK
            }
            Ok(left) => {
                eprintln!("error: after destroy, these resources of the stack still exist:");
                for r in &left {
                    eprintln!("  - {} ({}) {} [{}]", r.id, r.kind, r.physical_id, r.status);
                }
                eprintln!("  fix: run destroy again (a deletion may still be in progress)");
                EXIT_ERROR
            }
            Err(e) => {
                eprintln!("error: read-back after destroy failed: {e}");
                EXIT_ERROR
            }
        }
    })
}
