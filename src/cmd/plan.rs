//! `moodlestack plan`: load the stack, resolve the AMI, check an existing network, build the
//! desired graph, observe the stack's resources, diff, guard, print.

use super::common::{self, fail, Exit, Outcome};
use crate::Global;
use moodlestack_model::{Cloud, Pricing};
use moodlestack_reconcile::cost::{self, Estimate};
use moodlestack_reconcile::{diff, print, Plan};
use moodlestack_stack::{LoadError, Loaded};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub struct Options {
    pub format: crate::PlanFormat,
    pub detailed_exitcode: bool,
    pub out: Option<PathBuf>,
    pub allow_data_loss: bool,
    /// `--ttl`, in seconds.
    pub ttl: Option<u64>,
    /// `--cost`: add the cost estimate.
    pub cost: bool,
}

/// A plan and how long each phase of making it took (for `--stats`).
pub struct Planned {
    pub plan: Plan,
    /// (phase, wall time): `resolve` (the AMI, and the existing network if the stack uses one),
    /// `graph`, `diff` (`observe` is recorded as it runs).
    pub phases: Vec<(&'static str, Duration)>,
}

/// The plan that takes the stack's resources as they exist to what `loaded` declares: resolves
/// the AMI and checks the instance types against its architecture, checks an existing network
/// (`network.existing`) against what the cloud says about it, builds the desired graph,
/// observes the stack's resources through `cloud` and diffs. The data-loss guard is NOT applied
/// (callers run [`diff::guard`] with their `--allow-data-loss`).
///
/// `ttl` (seconds, `--ttl`) tags every resource with the expiry now + `ttl`; without it the
/// stack keeps the expiry it has ([`super::expiry`]).
pub async fn make_plan(
    loaded: &Loaded,
    cloud: &dyn Cloud,
    ttl: Option<u64>,
) -> anyhow::Result<Planned> {
    let stack = &loaded.stack;
    let mut phases = Vec::new();
    let t = Instant::now();
    // One round: the AMI (SSM's parameter when the stack names none, then EC2's facts), the
    // account, the existing network's describes, the lease, and the observation. Observing needs
    // the resources' names and identities only, which depend on neither the AMI nor the account
    // (`common::names_graph`); the plan's graph is built below with what EC2 says, and checked
    // against it.
    let scope = common::scope(stack);
    let names = common::names_graph(stack).ok();
    let image =
        async { common::image_info(stack, cloud, &common::ami_id(stack, cloud).await?).await };
    // Records its own `observe` phase.
    let early = async {
        match &names {
            Some(d) => Some(common::observe_settled(cloud, &scope, d).await),
            None => None,
        }
    };
    // The AMI, the account and the network checked, the plan's graph is built (rendering every
    // node's files: CPU, on a blocking thread) while the observation's later rounds are in flight.
    let graph = async {
        let (info, account, network) = tokio::join!(
            image,
            cloud.account_id(),
            common::existing_network(stack, cloud)
        );
        let (info, network) = (info?, network?);
        let image = common::with_account(info, account)?;
        // What only the cloud knows, checked against the stack file: one report of every
        // problem, each at its place in the file, before anything is observed or changed.
        let mut problems = Vec::new();
        if let Err(e) = moodlestack_stack::check_image_architecture(loaded, &image.architecture) {
            problems.extend(e.diagnostics);
        }
        if let Some(found) = &network {
            problems.extend(moodlestack_graph::existing_network_problems(loaded, found));
        }
        if !problems.is_empty() {
            return Err(anyhow::Error::from(LoadError {
                diagnostics: problems,
                sources: loaded.sources.clone(),
            }));
        }
        let resolved = t.elapsed();
        let t = Instant::now();
        let owned = stack.clone();
        let desired =
            tokio::task::spawn_blocking(move || moodlestack_graph::build(&owned, &image)).await??;
        Ok((desired, resolved, t.elapsed()))
    };
    let (graph, early) = tokio::join!(graph, early);
    let (mut desired, resolved, built) = graph?;
    phases.push(("resolve", resolved));
    phases.push(("graph", built));

    let observed = match early {
        Some(observed) => observed?,
        None => common::observe_settled(cloud, &scope, &desired).await?,
    };
    super::expiry::tag_desired(&mut desired, ttl, &observed);

    let t = Instant::now();
    let plan = diff::plan(&scope, &desired, &observed)?;
    phases.push(("diff", t.elapsed()));
    Ok(Planned { plan, phases })
}

/// Loads and validates the stack file with `--name`/`--set`, keeping where each field came from
/// (the AMI architecture check points into the file); see [`common::load_stack_sourced`].
pub fn load(g: &Global, path: &Path) -> anyhow::Result<Loaded> {
    common::load_stack_sourced(g, path)
}

pub fn run(g: &Global, path: &Path, o: Options) -> Outcome {
    let loaded = load(g, path)?;
    let rt = common::runtime();
    let planned = rt.block_on(async {
        let cloud = common::cloud(&loaded.stack).await;
        let mut planned = make_plan(&loaded, &cloud, o.ttl).await?;
        if o.cost {
            let t = Instant::now();
            planned.plan.cost = Some(estimate(&planned.plan, &cloud).await?);
            planned.phases.push(("cost", t.elapsed()));
        }
        anyhow::Ok(planned)
    })?;
    for (phase, d) in &planned.phases {
        super::stats::record(phase, *d);
    }
    report(g, &o, &planned.plan)
}

/// The plan's cost estimate: what each resource is billed for (its kind's descriptor says),
/// priced in one round of requests (every Price List and Spot history query at once).
pub async fn estimate(plan: &Plan, pricing: &dyn Pricing) -> anyhow::Result<Estimate> {
    let usages = cost::usages(plan);
    let prices = pricing.prices(&usages.queries()).await?;
    Ok(cost::estimate(&usages, &prices))
}

/// Prints the plan (text, Markdown or JSON), applies the data-loss guard, saves `--out`.
fn report(g: &Global, o: &Options, plan: &Plan) -> Outcome {
    match o.format {
        crate::PlanFormat::Json => print!("{}", print::json(plan)),
        crate::PlanFormat::Markdown => print!("{}", print::markdown(plan)),
        crate::PlanFormat::Text if !g.quiet => {
            print!("{}", print::text(plan, common::color_stdout(g)))
        }
        crate::PlanFormat::Text => {}
    }
    if let Err(refused) = diff::guard(plan, o.allow_data_loss) {
        if o.out.is_some() {
            eprintln!("(the plan was not saved)");
        }
        return Err(refused.into());
    }
    if let Some(out) = &o.out {
        std::fs::write(out, print::json(plan)).map_err(|e| {
            fail(
                format!("cannot write the plan to {}: {e}", out.display()),
                "choose a writable path for --out",
            )
        })?;
        if !g.quiet {
            eprintln!(
                "Saved the plan to {0}. Apply exactly this plan with `moodlestack apply {0}`.",
                out.display()
            );
        }
    }
    Ok(if o.detailed_exitcode && plan.has_changes() {
        Exit::Changes
    } else {
        Exit::Ok
    })
}
