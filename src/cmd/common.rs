//! What several commands share: loading the stack with the global overrides, colors, and the
//! cloud client.

use crate::{ColorChoice, Global};
use moodlestack_model::{CloudError, Hint, Observed, Resource, Scope};
use moodlestack_reconcile::diff::{DiffError, GuardError};
use moodlestack_reconcile::execute::{ExecError, StepError};
use moodlestack_reconcile::print::ReadPlanError;
use moodlestack_stack::{LoadError, LoadOptions, Stack};
use std::io::IsTerminal;
use std::path::Path;

/// How a command ended when it did not fail with an error (exit codes: README "Commands").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// Done.
    Ok,
    /// `plan --detailed-exitcode`: the plan has changes.
    Changes,
    /// Did not succeed, and the command already said why (a declined confirmation, a report
    /// listing the changes that failed).
    Reported,
    /// Ctrl-C or SIGTERM.
    Interrupted,
    /// This exit code (`run`: the remote script's).
    Code(u8),
}

impl Exit {
    /// The process exit code.
    pub fn code(self) -> u8 {
        match self {
            Exit::Ok => 0,
            Exit::Reported => 1,
            Exit::Changes => 2,
            Exit::Interrupted => EXIT_INTERRUPTED,
            Exit::Code(c) => c,
        }
    }
}

/// Exit code of any error.
pub const EXIT_ERROR: u8 = 1;
/// Exit code after Ctrl-C.
pub const EXIT_INTERRUPTED: u8 = 130;

/// What every command returns: how it ended, or the error `main` renders (once, with its fix).
pub type Outcome = anyhow::Result<Exit>;

/// A failure found by the CLI itself, with its fix.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Failure {
    /// What went wrong.
    pub message: String,
    /// What to do about it.
    pub fix: String,
}

/// A [`Failure`] as an error.
pub fn fail(message: impl Into<String>, fix: impl Into<String>) -> anyhow::Error {
    Failure {
        message: message.into(),
        fix: fix.into(),
    }
    .into()
}

/// A [`Failure`] whose message is `head` followed by `items`, each on a line of its own after
/// `  - `.
pub fn fail_listing<T: std::fmt::Display>(
    head: &str,
    items: impl IntoIterator<Item = T>,
    fix: impl Into<String>,
) -> anyhow::Error {
    let list: String = items.into_iter().map(|i| format!("\n  - {i}")).collect();
    fail(format!("{head}{list}"), fix)
}

/// The fix of `e`, if it is one of moodlestack's errors that knows one.
fn hint_of(e: &(dyn std::error::Error + 'static)) -> Option<Option<String>> {
    if let Some(f) = e.downcast_ref::<Failure>() {
        return Some(Some(f.fix.clone()));
    }
    macro_rules! typed {
        ($($t:ty),*) => {
            $(if let Some(x) = e.downcast_ref::<$t>() {
                return Some(x.hint());
            })*
        };
    }
    typed!(
        CloudError,
        ExecError,
        StepError,
        GuardError,
        DiffError,
        ReadPlanError,
        moodlestack_graph::GraphError
    );
    None
}

/// Prints a command's error once: `error: <context>: ...: <error>`, down to the first of
/// moodlestack's own errors (whose text is complete; with `-v` the causes below it follow), then
/// `  fix: <hint>` from the outermost error that knows one. A stack file's report (every
/// problem, located, each with its fix) is printed as it is.
pub fn render_error(g: &Global, e: &anyhow::Error) {
    if let Some(report) = e.downcast_ref::<LoadError>() {
        eprint!("{}", report.render(color_stderr(g)));
        return;
    }
    let mut message = String::new();
    let mut fix = None;
    let mut below = Vec::new();
    let mut complete = false;
    for cause in e.chain() {
        if complete {
            below.push(cause.to_string());
            continue;
        }
        if !message.is_empty() {
            message.push_str(": ");
        }
        message.push_str(&cause.to_string());
        if let Some(h) = hint_of(cause) {
            complete = true;
            if fix.is_none() {
                fix = h;
            }
        }
    }
    eprintln!("error: {message}");
    if g.verbose > 0 {
        for b in below {
            eprintln!("  caused by: {b}");
        }
    }
    if let Some(fix) = fix {
        eprintln!("  fix: {fix}");
    }
}

/// Loads and validates the stack file with `--name`/`--set`. Warnings go to stderr (unless
/// `-q`); a failure is the full report (every problem, located, with its fix).
pub fn load_stack(g: &Global, path: &Path) -> anyhow::Result<Stack> {
    load_stack_sourced(g, path).map(|loaded| loaded.stack)
}

/// [`load_stack`], keeping where each field came from (for checks that point into the file
/// later, e.g. [`moodlestack_stack::check_image_architecture`]).
pub fn load_stack_sourced(g: &Global, path: &Path) -> anyhow::Result<moodlestack_stack::Loaded> {
    let options = LoadOptions {
        name: g.name.clone(),
        set: g.set.clone(),
    };
    let loaded = moodlestack_stack::load(path, &options)?;
    if !g.quiet {
        eprint!("{}", loaded.warnings_report(color_stderr(g)));
    }
    Ok(loaded)
}

/// The stack's resources as they exist (one observe, timed for `--stats`).
pub async fn observe(
    cloud: &dyn moodlestack_model::Cloud,
    scope: &Scope,
    desired: &[Resource],
) -> anyhow::Result<Vec<Observed>> {
    let observed = super::stats::timed("observe", cloud.observe(scope, desired)).await;
    Ok(observed.map_err(|e| {
        anyhow::Error::new(e).context(format!(
            "cannot read the stack's resources in {}",
            scope.region
        ))
    })?)
}

/// Waits, when the stack's `lease` shows a run that stopped without finishing a moment ago,
/// until AWS lists what that run created
/// ([`moodlestack_reconcile::execute::settle_after_crash`]); then an observation sees it and
/// adopts it instead of creating it twice. Returns whether it waited. A lease that cannot be read
/// is left to the lease step of apply, which reports it.
pub async fn settle_after_crash(
    cloud: &dyn moodlestack_model::Cloud,
    lease: Result<Option<moodlestack_model::LeaseInfo>, moodlestack_model::CloudError>,
) -> bool {
    let Ok(Some(held)) = lease else { return false };
    let wait = moodlestack_reconcile::execute::settle_after_crash(
        Some(&held),
        moodlestack_reconcile::execute::LEASE_TTL,
        cloud.now_unix(),
    );
    if wait.is_zero() {
        return false;
    }
    eprintln!(
        "note: the last run of this stack ({}) stopped without finishing; waiting {} s for \
         AWS to list what it created before reading the stack",
        held.owner,
        wait.as_secs()
    );
    tokio::time::sleep(wait).await;
    true
}

/// Observes the stack's resources in the same round as the lease read: when the lease shows a
/// run that crashed a moment ago ([`settle_after_crash`]), that first observation may miss what
/// the run created, so it is dropped and the stack read again after the wait. The common case
/// (no crash) costs no round for the lease.
pub async fn observe_settled(
    cloud: &dyn moodlestack_model::Cloud,
    scope: &Scope,
    desired: &[moodlestack_model::Resource],
) -> anyhow::Result<Vec<Observed>> {
    let (lease, early) = tokio::join!(cloud.lease(scope), observe(cloud, scope, desired));
    if settle_after_crash(cloud, lease).await {
        return observe(cloud, scope, desired).await;
    }
    early
}

/// The graph an observation reads: the resources' names and identities, which depend on neither
/// the AMI nor the account (the code bucket, the one name with the account in it, is listed by
/// its stack prefix). Built from [`stand_in_image`], so reading a stack costs no request for the
/// AMI or the account first. Nor does it render the nodes' user-data (no observation reads it:
/// a launch template is found by its name, and its user-data is compared by the plan's own graph),
/// which in a debug build costs more CPU than the rest of the graph and would hold back the
/// first requests.
pub fn names_graph(stack: &Stack) -> anyhow::Result<Vec<moodlestack_model::Resource>> {
    let image = stand_in_image(stack, STAND_IN_AMI, STAND_IN_ACCOUNT);
    moodlestack_graph::build_with(stack, &image, &|_, _, _| Ok(String::new()))
        .map_err(|e| anyhow::anyhow!("cannot build the stack's resource graph: {e}"))
}

/// The AMI id of [`names_graph`] (never launched).
pub const STAND_IN_AMI: &str = "ami-00000000000000000";
/// The account of [`names_graph`] (never used in a request).
pub const STAND_IN_ACCOUNT: &str = "000000000000";

/// Whether to color output written to stdout.
pub fn color_stdout(g: &Global) -> bool {
    match g.color {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => {
            std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none()
        }
    }
}

/// Whether to color output written to stderr.
pub fn color_stderr(g: &Global) -> bool {
    match g.color {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => {
            std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none()
        }
    }
}

/// The stack's scope for cloud calls.
pub fn scope(stack: &Stack) -> moodlestack_model::Scope {
    moodlestack_model::Scope {
        stack: stack.name.clone(),
        region: stack.region.clone(),
    }
}

/// The AWS cloud for the stack's region (credentials, profiles and `AWS_ENDPOINT_URL` from the
/// environment).
pub async fn cloud(stack: &Stack) -> moodlestack_aws::AwsCloud {
    let cloud = moodlestack_aws::AwsCloud::from_env(&stack.region).await;
    super::stats::register(cloud.stats());
    cloud
}

/// Runs `work` with the stack's cloud and scope on a new runtime: how every command that talks to
/// the stack's resources starts.
pub fn with_cloud<T>(
    stack: &Stack,
    work: impl AsyncFnOnce(&moodlestack_aws::AwsCloud, &Scope) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    let scope = scope(stack);
    runtime().block_on(async {
        let cloud = cloud(stack).await;
        work(&cloud, &scope).await
    })
}

/// Every restore point of the stack's data, oldest first (`moodlestack backups`: its database's
/// snapshots and its vault's recovery points).
pub fn restore_points(stack: &Stack) -> anyhow::Result<Vec<moodlestack_model::RestorePoint>> {
    use anyhow::Context as _;
    with_cloud(stack, async |cloud, scope| {
        let points = moodlestack_model::Cloud::restore_points(cloud, scope).await;
        points.context("cannot list the stack's restore points")
    })
}

/// A tokio runtime for the commands that talk to AWS.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// An image that is never launched: `image_id`, the architecture the stack's instance types imply
/// (from the instance type table) and a common root device. Enough to build the graph for
/// observing, which needs the resources' names and identities only.
pub fn stand_in_image(stack: &Stack, image_id: &str, account_id: &str) -> moodlestack_graph::Image {
    let arch = moodlestack_stack::instance_types::lookup(&stack.stable.instance_type)
        .map_or("x86_64", |t| t.arch.as_str());
    moodlestack_graph::Image {
        image_id: image_id.into(),
        architecture: arch.into(),
        root_device_name: "/dev/sda1".into(),
        account_id: account_id.into(),
    }
}

/// The AMI's id: the explicit `ami.id`, or the SSM parameter's value.
pub async fn ami_id(stack: &Stack, cloud: &dyn moodlestack_model::Cloud) -> anyhow::Result<String> {
    match &stack.ami.id {
        Some(id) => Ok(id.clone()),
        None => cloud
            .resolve_parameter(&stack.ami.ssm_parameter)
            .await
            .map_err(|e| {
                fail(
                    format!(
                        "cannot resolve the AMI from SSM parameter {}: {e}",
                        stack.ami.ssm_parameter
                    ),
                    "set `ami.id` in the stack file, or check the parameter name and region",
                )
            }),
    }
}

/// What EC2 says about the AMI `image_id` (architecture, root device).
pub async fn image_info(
    stack: &Stack,
    cloud: &dyn moodlestack_model::Cloud,
    image_id: &str,
) -> anyhow::Result<moodlestack_model::ImageInfo> {
    cloud.image(image_id).await?.ok_or_else(|| {
        fail(
            format!("AMI {image_id} does not exist in {}", stack.region),
            "set `ami.id` to an image of this region",
        )
    })
}

/// The graph's image from EC2's facts and the account.
pub fn with_account(
    info: moodlestack_model::ImageInfo,
    account_id: Result<String, moodlestack_model::CloudError>,
) -> anyhow::Result<moodlestack_graph::Image> {
    Ok(moodlestack_graph::Image {
        image_id: info.image_id,
        architecture: info.architecture,
        root_device_name: info.root_device_name,
        account_id: account_id?,
    })
}

/// What the cloud says about the stack's existing network (`network.existing`: its VPC and
/// subnet ids), None when the stack makes its own. Checked by
/// [`moodlestack_graph::existing_network_problems`].
pub async fn existing_network(
    stack: &Stack,
    cloud: &dyn moodlestack_model::Cloud,
) -> anyhow::Result<Option<moodlestack_model::NetworkInfo>> {
    let Some(existing) = &stack.network.existing else {
        return Ok(None);
    };
    let ids: Vec<String> = existing
        .public_subnet_ids
        .iter()
        .chain(&existing.private_subnet_ids)
        .cloned()
        .collect();
    let found = cloud.network(&existing.vpc_id, &ids).await.map_err(|e| {
        anyhow::Error::new(e).context(format!(
            "cannot read the existing network (`network.existing`: {}) in {}",
            existing.vpc_id, stack.region
        ))
    })?;
    Ok(Some(found))
}
