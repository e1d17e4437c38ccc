//! `moodlestack gc`: destroys the region's stacks whose expiry (`apply --ttl`) has passed. Needs no
//! stack file (a branch's file may be gone): stacks are found by their tags
//! ([`super::list::stacks`]), and each expired one is observed in full with a stand-in graph built
//! from its name and region (every name observation asks for derives from those two), checked
//! again on that observation, then destroyed like `destroy` does.
//!
//! Never destroyed: a stack without an expiry tag, or with any taggable resource that lacks one;
//! a stack whose expiry has not passed; a stack with deletion protection on (its database, and
//! the load balancer that follows it) unless `--allow-data-loss`: that one is reported as refused,
//! with the fix. The expiry is the consent to delete the file system and the cache (their data
//! goes with the stack, as the stack's owner asked with `--ttl`); the database takes its final
//! snapshot `<stack>-db-final-<unix time>` as with `destroy`.

use super::apply::{check_parallelism, confirm};
use super::common::{self, Exit, Outcome};
use super::destroy::{delete_observed, observe_stack};
use super::list::{expiry_text, StackInfo};
use crate::Global;
use moodlestack_model::cloud::unix_now;
use moodlestack_model::{spec, Cloud, Observed, Resource, Scope};

pub struct Options {
    pub region: Option<String>,
    pub dry_run: bool,
    pub auto_approve: bool,
    pub allow_data_loss: bool,
    pub parallelism: usize,
}

/// A graph of `name`'s resources good enough to observe them without the stack file: a default
/// stack of that name and region with every optional part (the cache), built with a stand-in
/// image. Observation finds resources by the stack's tag, or by names derived from the stack's
/// name and region alone (and, for RDS and ElastiCache, anything with the `<stack>-` prefix).
fn stand_in(name: &str, region: &str) -> anyhow::Result<Vec<Resource>> {
    let q = |s: &str| serde_json::to_string(s).expect("JSON string");
    let text = format!(
        "name: {}\nregion: {}\ndatabase: {{}}\ncache: {{}}\nload_balancer: {{}}\nmoodle:\n  \
         wwwroot: http://gc.example\n  admin_email: gc@example.org\n",
        q(name),
        q(region)
    );
    let loaded = moodlestack_stack::load_str(
        &format!("<stack {name}>"),
        &text,
        &moodlestack_stack::LoadOptions::default(),
    )?;
    common::names_graph(&loaded.stack)
}

/// Why the full observation of a stack the tags said was expired does not let gc destroy it.
fn not_collectable(observed: &[Observed], now: u64, allow_data_loss: bool) -> Option<String> {
    let untagged: Vec<String> = observed
        .iter()
        .filter(|o| spec(o.kind).taggable() && super::expiry::tag_of(o).is_none())
        .map(|o| format!("{} ({})", o.id, o.physical_id))
        .collect();
    if !untagged.is_empty() {
        return Some(format!(
            "not destroyed: {} resource{} without an expiry tag ({}); fix: `moodlestack apply \
             <stack.yaml> --name <stack> --ttl <duration>` tags them all, or `moodlestack \
             destroy` destroys it",
            untagged.len(),
            if untagged.len() == 1 { "" } else { "s" },
            untagged.join(", ")
        ));
    }
    match super::expiry::observed(observed) {
        Some(at) if at <= now => {}
        _ => return Some("not destroyed: its expiry has not passed (extended meanwhile)".into()),
    }
    let protected: Vec<String> = observed
        .iter()
        .filter(|o| spec(o.kind).delete_risk(&o.fields).protected)
        .map(|o| format!("{} ({})", o.id, o.physical_id))
        .collect();
    if !protected.is_empty() && !allow_data_loss {
        return Some(format!(
            "refused: deletion protection is on for {}; fix: `moodlestack gc --allow-data-loss` \
             lifts it (the database still takes its final snapshot), or turn it off \
             (`database.deletion_protection: false`) and apply",
            protected.join(", ")
        ));
    }
    None
}

pub fn run(g: &Global, o: Options) -> Outcome {
    check_parallelism(o.parallelism)?;
    let region = super::list::region(o.region.as_deref())?;
    let rt = common::runtime();
    rt.block_on(async {
        let cloud = moodlestack_aws::AwsCloud::from_env(&region).await;
        super::stats::register(cloud.stats());
        let found = super::list::stacks(&cloud, &region).await?;
        let now = unix_now();
        let (expired, kept): (Vec<StackInfo>, Vec<StackInfo>) =
            found.into_iter().partition(|s| s.expired(now));
        let without = kept.iter().filter(|s| s.expires.is_none()).count();
        println!(
            "{} stack{} in {region}: {} expired, {} not yet, {} without an expiry (never \
             collected).",
            expired.len() + kept.len(),
            if expired.len() + kept.len() == 1 {
                ""
            } else {
                "s"
            },
            expired.len(),
            kept.len() - without,
            without
        );
        for s in kept.iter().filter(|s| s.expires.is_some()) {
            println!("  kept: {}, expires {}", s.name, expiry_text(s, now));
        }
        if expired.is_empty() {
            return Ok(Exit::Ok);
        }
        for s in &expired {
            println!(
                "  expired: {}, {} resources, expired {}",
                s.name,
                s.resources,
                expiry_text(s, now)
            );
        }
        if o.dry_run {
            println!(
                "Dry run: would destroy {} stack{}: {}.",
                expired.len(),
                if expired.len() == 1 { "" } else { "s" },
                expired
                    .iter()
                    .map(|s| s.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            return Ok(Exit::Ok);
        }
        let question = format!(
            "Destroy these {} expired stacks in {region} (each database takes a final \
             snapshot; file systems and caches are deleted)? Only `yes` is accepted: ",
            expired.len()
        );
        if !confirm(o.auto_approve, &question, "gc", "--auto-approve")? {
            eprintln!("gc cancelled; nothing was deleted.");
            return Ok(Exit::Reported);
        }
        let mut done = Vec::new();
        let mut not_done = Vec::new();
        // One stack after another: each takes its own lease and reports on its own.
        for s in &expired {
            let scope = Scope {
                stack: s.name.clone(),
                region: region.clone(),
            };
            println!("\nStack `{}`:", s.name);
            let outcome = async {
                let desired = stand_in(&s.name, &region)?;
                let observed = observe_stack(&cloud, &scope, &desired, false).await?;
                if observed.is_empty() {
                    return Ok(Ok(None));
                }
                if let Some(why) = not_collectable(&observed, cloud.now_unix(), o.allow_data_loss) {
                    return Ok(Err(why));
                }
                let destroy = super::destroy::Options {
                    auto_approve: true,
                    skip_final_snapshot: false,
                    // Deletion protection was checked above; the expiry is the consent to
                    // delete the file system and the cache.
                    allow_data_loss: true,
                    parallelism: o.parallelism,
                };
                delete_observed(g, &cloud, &scope, &desired, observed, &destroy, None)
                    .await
                    .map(|exit| Ok(Some(exit)))
            }
            .await;
            match outcome {
                Ok(Ok(None)) => {
                    println!("  nothing of it is left (a deletion still listed by AWS)");
                    done.push(s.name.clone());
                }
                Ok(Ok(Some(Exit::Ok))) => done.push(s.name.clone()),
                Ok(Ok(Some(Exit::Interrupted))) => {
                    not_done.push(format!("{}: interrupted", s.name));
                    break;
                }
                Ok(Ok(_)) => not_done.push(format!("{}: destroy did not finish (above)", s.name)),
                Ok(Err(why)) => {
                    println!("  {why}");
                    not_done.push(format!("{}: {why}", s.name));
                }
                Err(e) => {
                    common::render_error(g, &e);
                    not_done.push(format!("{}: failed: {e}", s.name));
                }
            }
        }
        println!(
            "\ngc: destroyed {} stack{}{}{}",
            done.len(),
            if done.len() == 1 { "" } else { "s" },
            if done.is_empty() { "" } else { ": " },
            done.join(", ")
        );
        for n in &not_done {
            println!("gc: not destroyed: {n}");
        }
        Ok(if not_done.is_empty() {
            Exit::Ok
        } else {
            Exit::Reported
        })
    })
}
