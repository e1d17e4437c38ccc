//! `moodlestack unlock`: lifts the stack's apply lease after showing who holds it and asking.
//! For a run that cannot lift it itself: a crashed apply on another machine, a cancelled CI job
//! (an apply on the same host takes over the lease of a process that is gone by itself, and any
//! lease that is not renewed expires within a minute).

use super::apply::confirm;
use super::common::{self, fail, Exit, Outcome};
use crate::Global;
use anyhow::Context as _;
use moodlestack_model::Cloud as _;
use std::path::Path;

pub fn run(g: &Global, path: &Path, yes: bool) -> Outcome {
    let stack = common::load_stack(g, path)?;
    common::with_cloud(&stack, async |cloud, scope| {
        let held = cloud
            .lease(scope)
            .await
            .context("cannot read the stack's lease")?;
        let Some(held) = held else {
            if !g.quiet {
                println!(
                    "Stack `{}` in {} is not locked: nothing to do.",
                    scope.stack, scope.region
                );
            }
            return Ok(Exit::Ok);
        };
        println!(
            "Stack `{}` in {} is locked by {}.",
            scope.stack,
            scope.region,
            held.describe_now()
        );
        if moodlestack_reconcile::execute::holder_is_gone(&held.owner) {
            println!("That process no longer runs on this host.");
        } else {
            println!(
                "If that run is still going, it takes the lease back at its next renewal \
                 (every 20 s) unless another run took it first; then it stops starting work."
            );
        }
        let question = format!(
            "Lift the lease of stack `{}`? Only `yes` is accepted: ",
            scope.stack
        );
        if !confirm(yes, &question, "unlock", "--yes")? {
            eprintln!("Not unlocked.");
            return Ok(Exit::Reported);
        }
        let lifted = cloud.break_lease(scope, &held).await;
        let lifted = lifted.context("cannot lift the stack's lease")?;
        if !lifted {
            return Err(fail(
                "the lease changed while you were asked: its holder renewed it, or another run \
                 took it over",
                format!(
                    "run `moodlestack unlock {}` again to see who holds it now",
                    path.display()
                ),
            ));
        }
        if !g.quiet {
            println!("Lease lifted: stack `{}` is unlocked.", scope.stack);
        }
        Ok(Exit::Ok)
    })
}
