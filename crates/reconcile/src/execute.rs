//! The executor: runs a [`Plan`] (or a destroy) against a [`Cloud`].
//!
//! - Walks the dependency graph and runs independent changes concurrently, at most
//!   [`Options::parallelism`] at once. Creates and updates wait for the resources they depend on
//!   (`Resource::deps()`); a replace deletes the old resource (waiting until it is gone), then
//!   creates the new one; deletes wait until every resource that uses the deleted one (by the
//!   declared graph, or because its observed fields name it) is gone or no longer uses it. A
//!   policy document that only names a resource ([`moodlestack_model::KindSpec::names_only`])
//!   does not use it.
//! - References are resolved just before each call from the attributes gathered so far
//!   (observed attributes of unchanged resources, results of completed creates and updates).
//! - After each call it polls the resource until it is usable (or gone), starting at
//!   [`Backoff::initial`] and doubling up to [`Backoff::max`], within the kind's
//!   [`moodlestack_model::KindSpec::ready_timeout`]. Transient errors are retried as
//!   [`moodlestack_model::retry`] defines: throttling a bounded number of times (after the
//!   SDK's own attempts), state conflicts until the kind's timeout.
//! - When a change fails, the changes that depend on it are skipped, running ones finish and
//!   the [`Report`] says what was done, what failed and why, and what was not attempted.
//! - The stack's lease is taken before the first mutating call, renewed while running and
//!   released at the end (also on failure and on cancel).

use crate::plan::{Action, Plan};
use futures::stream::{FuturesUnordered, StreamExt};
use moodlestack_model::retry::Transient;
use moodlestack_model::{
    spec, Cloud, CloudError, DeleteOptions, DeletePolicy, Hint, Kind, LeaseInfo, Lifecycle,
    Observed, Readiness, Ref, Resource, ResourceId, Scope, Value, Want,
};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio::time::Instant;

/// Exponential back-off: `initial`, doubling, capped at `max`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    pub initial: Duration,
    pub max: Duration,
}

impl Backoff {
    fn next(&self, d: Duration) -> Duration {
        (d * 2).min(self.max)
    }
}

/// What happens while the executor runs (the CLI prints it: a progress line on a terminal,
/// plain lines otherwise).
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    /// The executor took the lease.
    LeaseTaken { owner: String, expires_at: u64 },
    /// Work on a resource starts.
    Started {
        id: ResourceId,
        kind: Kind,
        step: Step,
    },
    /// Still waiting for the resource (its status word), `elapsed` since it started.
    Waiting {
        id: ResourceId,
        status: String,
        elapsed: Duration,
    },
    /// A retryable error; retrying after `delay`.
    Retrying {
        id: ResourceId,
        error: String,
        attempt: u32,
        delay: Duration,
    },
    Finished {
        id: ResourceId,
        kind: Kind,
        step: Step,
        elapsed: Duration,
    },
    Failed {
        id: ResourceId,
        kind: Kind,
        step: Step,
        error: String,
        elapsed: Duration,
    },
    Skipped {
        id: ResourceId,
        kind: Kind,
        reason: String,
    },
    /// Something worth telling that is not about one resource (lease renewal trouble).
    Note(String),
}

/// Receives [`Event`]s.
pub trait Progress: Send + Sync {
    fn event(&self, event: &Event);
}

/// Ignores every event.
pub struct Silent;
impl Progress for Silent {
    fn event(&self, _: &Event) {}
}

/// A cancel signal (Ctrl-C): nothing new starts, waits in progress are abandoned (the calls made
/// stand; a re-run converges), and the lease is released.
#[derive(Clone, Default)]
pub struct Cancel(Arc<(AtomicBool, Notify)>);

impl Cancel {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn cancel(&self) {
        self.0 .0.store(true, Ordering::SeqCst);
        self.0 .1.notify_waiters();
    }
    pub fn is_cancelled(&self) -> bool {
        self.0 .0.load(Ordering::SeqCst)
    }
    pub async fn cancelled(&self) {
        loop {
            let notified = self.0 .1.notified();
            if self.is_cancelled() {
                return;
            }
            notified.await;
        }
    }
}

/// How to run.
#[derive(Clone)]
pub struct Options {
    /// How many changes run at once (at least 1).
    pub parallelism: usize,
    /// Lease owner, `user@host pid N` (see [`lease_owner`]).
    pub owner: String,
    /// Lease duration; renewed every third of it while running.
    pub lease_ttl: Duration,
    /// Polling for readiness.
    pub poll: Backoff,
    /// Back-off for retryable errors, and how many retries.
    pub retry: Backoff,
    pub retries: u32,
    /// Allows deleting and replacing stateful resources (database, file system, cache), and
    /// lifts deletion protection on deletes.
    pub allow_data_loss: bool,
    /// Final snapshot id for deleted databases (standalone instances and Aurora clusters); None
    /// skips the final snapshot.
    pub final_snapshot_id: Option<String>,
    pub progress: Arc<dyn Progress>,
    pub cancel: Cancel,
    /// Once the lease is held, observe again and refuse if the stack changed since the plan (or
    /// the destroy listing) was made.
    pub verify: Verify,
    /// The stack's lease as the caller took it with [`take_lease`] before it observed the stack
    /// (a destroy that asks nothing first): the run does not take it again nor observe again
    /// (the observation was made under it), and releases it at the end.
    pub held: Option<LeaseInfo>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            parallelism: 10,
            owner: lease_owner(),
            lease_ttl: LEASE_TTL,
            poll: Backoff {
                initial: Duration::from_millis(50),
                max: Duration::from_secs(15),
            },
            retry: Backoff {
                initial: Duration::from_secs(1),
                max: Duration::from_secs(20),
            },
            retries: moodlestack_model::retry::STEP_RETRIES,
            allow_data_loss: false,
            final_snapshot_id: None,
            progress: Arc::new(Silent),
            cancel: Cancel::new(),
            verify: Verify::SamePlan,
            held: None,
        }
    }
}

/// How long a lease lasts unless renewed; the holder renews it every third of that, so a holder
/// that died stops holding the stack within a minute.
pub const LEASE_TTL: Duration = Duration::from_secs(60);

/// `user@host pid N` for the lease.
pub fn lease_owner() -> String {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("USERNAME"))
        .unwrap_or_else(|_| "unknown".into());
    format!("{user}@{} pid {}", host_name(), std::process::id())
}

/// Whether a lease owner (`user@host pid N`) names a process of this host that no longer runs.
/// Unknown (another host, an unreadable owner, no way to tell) is false: such a lease expires.
pub fn holder_is_gone(owner: &str) -> bool {
    let Some((who, pid)) = owner.rsplit_once(" pid ") else {
        return false;
    };
    let Some((_, host)) = who.rsplit_once('@') else {
        return false;
    };
    let Ok(pid) = pid.parse::<u32>() else {
        return false;
    };
    let here = host_name();
    host == here && here != "localhost" && pid != std::process::id() && !process_runs(pid)
}

/// How long AWS may take to list a resource it has just created. EC2 is eventually consistent: "if
/// you run a command to modify or describe the resource that you just created, its ID might not
/// have propagated throughout the system" (EC2 API guide, "Eventual consistency"); AWS gives no
/// bound, and it is seconds in practice (Terraform's AWS provider keeps re-reading a new resource
/// for up to two minutes before it calls it missing).
pub const CREATE_PROPAGATION: Duration = Duration::from_secs(10);

/// How long to wait before reading the stack, given its lease as read at the start of a run. A
/// lease left by a run that stopped without finishing (its process gone from this host, or the
/// lease expired unreleased) means that run may have created resources AWS does not list yet: a
/// look right away would miss them and create them a second time (VPCs, subnets and internet
/// gateways take no idempotency token). The crashed run was gone at the latest when it next
/// failed to renew, a third of `ttl` after its last renewal; the wait lasts until
/// [`CREATE_PROPAGATION`] after that moment (or after `now`, whichever is earlier). A live holder,
/// or none, means no wait (apply waits for or refuses a live holder later anyway).
pub fn settle_after_crash(
    lease: Option<&moodlestack_model::LeaseInfo>,
    ttl: Duration,
    now: u64,
) -> Duration {
    let Some(l) = lease else {
        return Duration::ZERO;
    };
    if !(holder_is_gone(&l.owner) || l.expires_at <= now) {
        return Duration::ZERO;
    }
    let renewed = l.expires_at.saturating_sub(ttl.as_secs());
    let last_active = (renewed + ttl.as_secs() / 3).min(now);
    Duration::from_secs((last_active + CREATE_PROPAGATION.as_secs()).saturating_sub(now))
}

/// Whether `held` runs out within one lease period (plus a margin) of now: a lease of this
/// version's length that its holder stops renewing. Longer ones are refused at once.
fn expires_soon(held: &moodlestack_model::LeaseInfo, ttl: Duration, now: u64) -> bool {
    held.expires_at <= now + ttl.as_secs() + 5
}

/// Whether process `pid` exists on this host (`/proc` where there is one, `kill -0` elsewhere);
/// true when it cannot be told.
fn process_runs(pid: u32) -> bool {
    let proc = std::path::Path::new("/proc");
    if proc.join("self").exists() {
        return proc.join(pid.to_string()).exists();
    }
    std::process::Command::new("kill")
        .args(["-0", &pid.to_string()])
        .stderr(std::process::Stdio::null())
        .status()
        .map_or(true, |s| s.success())
}

fn host_name() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|h| h.trim().to_string())
        })
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

/// Why nothing was done.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    /// The lease is held by someone else (the message names the holder), or could not be taken.
    #[error("cannot take the stack's lease: {0}")]
    Lease(CloudError),
    /// The plan (or destroy) would lose data without `--allow-data-loss`: one line per refused
    /// change.
    #[error("{}:{}", if *.destroy { "refusing to destroy data without --allow-data-loss" } else { "refusing to apply a plan that would lose data" }, bullets(.refused))]
    DataLoss { destroy: bool, refused: Vec<String> },
    /// The stack changed between planning (or listing) and taking the lease: one line per
    /// resource that changed.
    #[error("the stack changed since {}:{}", .since, bullets(.changes))]
    Stale { since: Since, changes: Vec<String> },
    /// Observing the stack again (once the lease is held) failed.
    #[error("cannot observe the stack again: {0}")]
    Observe(CloudError),
    /// Diffing the stack again failed.
    #[error("cannot diff the stack again: {0}")]
    Diff(#[from] crate::diff::DiffError),
    /// A change of a saved plan lacks what its action needs (an edited or corrupt plan file).
    #[error("the plan's change for {id} ({action:?}) lacks its desired or current resource")]
    MalformedPlan { id: ResourceId, action: Action },
}

/// What a stale plan or listing was made from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Since {
    /// `apply <stack.yaml>`: the plan shown a moment ago.
    Plan,
    /// `apply plan.json`: the saved plan.
    SavedPlan,
    /// `destroy`: the listing shown.
    Listing,
}

impl std::fmt::Display for Since {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Since::Plan => "the plan was made (did another apply run?)",
            Since::SavedPlan => "this plan was made",
            Since::Listing => "it was listed (did an apply run?)",
        })
    }
}

fn bullets(lines: &[String]) -> String {
    lines.iter().map(|l| format!("\n  - {l}")).collect()
}

impl Hint for ExecError {
    fn hint(&self) -> Option<String> {
        match self {
            ExecError::Lease(e) | ExecError::Observe(e) => e.hint(),
            ExecError::DataLoss { destroy: false, .. } => {
                Some("run again with --allow-data-loss if losing this data is intended".into())
            }
            ExecError::DataLoss { destroy: true, .. } => Some(
                "run again with --allow-data-loss if losing this data is intended (the database \
                 still takes a final snapshot unless --skip-final-snapshot)"
                    .into(),
            ),
            ExecError::Stale { since, .. } => Some(
                match since {
                    Since::Plan => "run apply again and review the new plan",
                    Since::SavedPlan => {
                        "make a new plan (moodlestack plan --out FILE, or run apply with the \
                         stack file) and review it"
                    }
                    Since::Listing => "run destroy again and review the new listing",
                }
                .into(),
            ),
            ExecError::Diff(e) => e.hint(),
            ExecError::MalformedPlan { .. } => {
                Some("make the plan again with `moodlestack plan <stack> --out FILE`".into())
            }
        }
    }
}

/// Why one step failed.
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    /// A call to the cloud failed (after the retries it allows).
    #[error(transparent)]
    Cloud(#[from] CloudError),
    /// Waiting for the resource failed.
    #[error("while waiting: {0}")]
    Waiting(CloudError),
    /// The resource did not reach the state waited for in time.
    #[error(
        "{physical_id} did not become {} within {} (last status: {last_status}); it may still \
         get there",
        if *.want == Want::Ready { "ready" } else { "gone" },
        fmt_elapsed(*.after)
    )]
    Timeout {
        physical_id: String,
        want: Want,
        after: Duration,
        last_status: String,
    },
    /// The resource reached a state it will not leave by itself.
    #[error("{physical_id} reached state `{status}`, which it will not leave by itself")]
    EndState {
        physical_id: String,
        status: String,
        /// The kind's advice, when it has one.
        fix: Option<String>,
    },
    /// The resource vanished while being waited for.
    #[error("{physical_id} disappeared while waiting for it to become ready")]
    Disappeared { physical_id: String },
    /// A field references attributes no resource has yet.
    #[error(
        "field `{field}` cannot be resolved: {} unknown (the referenced resource has no such \
         attribute yet)",
        if .refs.is_empty() { "a value is".to_string() } else { .refs.join(", ") }
    )]
    Unresolved { field: String, refs: Vec<String> },
}

impl Hint for StepError {
    fn hint(&self) -> Option<String> {
        match self {
            StepError::Cloud(e) | StepError::Waiting(e) => e.hint(),
            StepError::Timeout { .. } => {
                Some("check it in the AWS console, then run the same command again".into())
            }
            StepError::EndState { fix: Some(fix), .. } => Some(fix.clone()),
            StepError::EndState { fix: None, .. } => Some(
                "look at the resource's events in the AWS console; delete it by hand if it \
                 cannot recover, then run again"
                    .into(),
            ),
            StepError::Disappeared { .. } => Some(
                "something else deleted it (another apply, a person, AWS): run the same command \
                 again"
                    .into(),
            ),
            StepError::Unresolved { .. } => Some(
                "run the same command again once the referenced resource exists; if it \
                 repeats, please report it"
                    .into(),
            ),
        }
    }
}

/// An error with its hint, as one line for reports and progress.
fn with_hint(e: &(impl std::fmt::Display + Hint)) -> String {
    match e.hint() {
        Some(h) => format!("{e}; fix: {h}"),
        None => e.to_string(),
    }
}

/// What became of one resource.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    Done { elapsed: Duration },
    Failed { error: String },
    NotAttempted { reason: String },
}

/// One resource's line in the report.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    pub id: ResourceId,
    pub kind: Kind,
    pub action: Action,
    pub outcome: Outcome,
}

/// The result of an apply or destroy.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Report {
    /// One entry per change (unchanged resources appear only if reading them failed).
    pub entries: Vec<Entry>,
    /// Attributes of every declared resource known at the end (by logical id).
    pub attrs: BTreeMap<ResourceId, BTreeMap<String, String>>,
    /// Cancelled before the end.
    pub interrupted: bool,
    pub elapsed: Duration,
    /// The stack observed again while the lease was released (in the same round), when a run
    /// that took the lease did every step: what the caller's read-back checks. None otherwise,
    /// or when that read failed (the caller then reads the stack itself, and sees the error).
    /// While AWS still listed any of [`Report::deleted`], it was read again, for at most
    /// [`STALE_LISTINGS`].
    pub observed_after: Option<Vec<Observed>>,
    /// What this run deleted and did not make again, by kind and physical id. AWS may list a
    /// deleted resource for a moment longer (EC2's describes are eventually consistent): a
    /// listing of one of these is stale ([`Report::is_stale`]).
    pub deleted: BTreeSet<(Kind, String)>,
}

impl Report {
    pub fn is_success(&self) -> bool {
        !self.interrupted
            && self
                .entries
                .iter()
                .all(|e| matches!(e.outcome, Outcome::Done { .. }))
    }
    pub fn done(&self) -> impl Iterator<Item = &Entry> {
        self.with(|o| matches!(o, Outcome::Done { .. }))
    }
    pub fn failed(&self) -> impl Iterator<Item = &Entry> {
        self.with(|o| matches!(o, Outcome::Failed { .. }))
    }
    pub fn not_attempted(&self) -> impl Iterator<Item = &Entry> {
        self.with(|o| matches!(o, Outcome::NotAttempted { .. }))
    }
    /// The entries whose outcome passes `pred`, in order.
    fn with(&self, pred: fn(&Outcome) -> bool) -> impl Iterator<Item = &Entry> {
        self.entries.iter().filter(move |e| pred(&e.outcome))
    }
    pub fn entry(&self, id: &str) -> Option<&Entry> {
        self.entries.iter().find(|e| e.id.as_str() == id)
    }
    /// Whether `o` is a listing of a resource this run deleted (AWS has not caught up).
    pub fn is_stale(&self, o: &Observed) -> bool {
        self.deleted.contains(&(o.kind, o.physical_id.clone()))
    }
}

/// How long the read after a run waits for AWS to stop listing what the run deleted (then the
/// caller's read-back reports what is still listed): Terraform's `ec2PropagationTimeout`, which its
/// security group delete waits for the group to be not found
/// (terraform-provider-aws `internal/service/ec2/vpc_security_group.go`).
pub const STALE_LISTINGS: Duration = Duration::from_secs(120);

fn past(action: Action) -> &'static str {
    match action {
        Action::NoOp => "read",
        Action::Create => "created",
        Action::Update => "updated",
        Action::Replace => "replaced",
        Action::Delete => "deleted",
    }
}

/// Human-readable seconds: `0.4s`, `12s`, `3m05s`.
pub fn fmt_elapsed(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s < 10.0 {
        format!("{s:.1}s")
    } else if s < 60.0 {
        format!("{}s", s.round() as u64)
    } else {
        let t = s.round() as u64;
        format!("{}m{:02}s", t / 60, t % 60)
    }
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (d, x, n) = (
            self.done().count(),
            self.failed().count(),
            self.not_attempted().count(),
        );
        let head = if self.interrupted {
            "Interrupted"
        } else if self.is_success() {
            "Done"
        } else {
            "Failed"
        };
        writeln!(
            f,
            "{head} after {}: {d} done, {x} failed, {n} not attempted.",
            fmt_elapsed(self.elapsed)
        )?;
        if d > 0 && !self.is_success() {
            writeln!(f, "Done:")?;
            for e in self.done() {
                if let Outcome::Done { elapsed } = &e.outcome {
                    writeln!(
                        f,
                        "  {} ({}) {} in {}",
                        e.id,
                        e.kind,
                        past(e.action),
                        fmt_elapsed(*elapsed)
                    )?;
                }
            }
        }
        if x > 0 {
            writeln!(f, "Failed:")?;
            for e in self.failed() {
                if let Outcome::Failed { error } = &e.outcome {
                    writeln!(f, "  {} ({}): {error}", e.id, e.kind)?;
                }
            }
        }
        if n > 0 {
            writeln!(f, "Not attempted:")?;
            for e in self.not_attempted() {
                if let Outcome::NotAttempted { reason } = &e.outcome {
                    writeln!(f, "  {} ({}, {:?}): {reason}", e.id, e.kind, e.action)?;
                }
            }
        }
        if !self.is_success() {
            write!(
                f,
                "Everything done so far is tagged and found again: fix the cause and run the \
                 same command again to finish."
            )?;
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// The graph of steps.

/// One step of the executor's graph: what it does to one resource.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Read an unchanged resource's attributes (waiting if it is still being created).
    Refresh,
    /// Create a resource.
    Create,
    /// Update a resource in place.
    Update,
    /// Delete a resource.
    Delete,
    /// Replace, phase 1: delete the old resource.
    DeleteOld,
    /// Replace, phase 2: create the new one.
    CreateNew,
}

impl Step {
    /// What the step does, as progress lines say it (`replace: delete old`).
    pub fn verb(self) -> &'static str {
        match self {
            Step::Refresh => "read",
            Step::Create => "create",
            Step::Update => "update",
            Step::Delete => "delete",
            Step::DeleteOld => "replace: delete old",
            Step::CreateNew => "replace: create new",
        }
    }
    /// While it runs (`creating`).
    pub fn doing(self) -> &'static str {
        match self {
            Step::Refresh => "reading",
            Step::Create | Step::CreateNew => "creating",
            Step::Update => "updating",
            Step::Delete | Step::DeleteOld => "deleting",
        }
    }
    /// When it is done (`old one deleted`).
    pub fn done(self) -> &'static str {
        match self {
            Step::Refresh => "read",
            Step::Create => "created",
            Step::Update => "updated",
            Step::Delete => "deleted",
            Step::DeleteOld => "old one deleted",
            Step::CreateNew => "replaced",
        }
    }
    /// Only reads (nothing to show the user).
    pub fn is_read(self) -> bool {
        self == Step::Refresh
    }
    /// Finishing it finishes a change of the plan (a replace finishes with its second step).
    pub fn ends_a_change(self) -> bool {
        !matches!(self, Step::Refresh | Step::DeleteOld)
    }
    fn is_delete(self) -> bool {
        matches!(self, Step::Delete | Step::DeleteOld)
    }
}

impl std::fmt::Display for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.verb())
    }
}

/// What a step works on: the payload each kind of step needs, and nothing it does not.
enum Work {
    Refresh {
        current: Observed,
    },
    Create {
        desired: Resource,
    },
    Update {
        desired: Resource,
        current: Observed,
        changed: Vec<String>,
    },
    Delete {
        current: Observed,
    },
    /// The old copy of a replaced resource; `desired` is what replaces it.
    DeleteOld {
        desired: Resource,
        current: Observed,
    },
    CreateNew {
        desired: Resource,
    },
}

impl Work {
    fn step(&self) -> Step {
        match self {
            Work::Refresh { .. } => Step::Refresh,
            Work::Create { .. } => Step::Create,
            Work::Update { .. } => Step::Update,
            Work::Delete { .. } => Step::Delete,
            Work::DeleteOld { .. } => Step::DeleteOld,
            Work::CreateNew { .. } => Step::CreateNew,
        }
    }
    fn desired(&self) -> Option<&Resource> {
        match self {
            Work::Create { desired }
            | Work::Update { desired, .. }
            | Work::DeleteOld { desired, .. }
            | Work::CreateNew { desired } => Some(desired),
            Work::Refresh { .. } | Work::Delete { .. } => None,
        }
    }
    fn current(&self) -> Option<&Observed> {
        match self {
            Work::Refresh { current }
            | Work::Update { current, .. }
            | Work::Delete { current }
            | Work::DeleteOld { current, .. } => Some(current),
            Work::Create { .. } | Work::CreateNew { .. } => None,
        }
    }
}

struct Node {
    /// Index of the report entry this step belongs to.
    entry: usize,
    step: Step,
    id: ResourceId,
    kind: Kind,
    work: Work,
    deps: BTreeSet<usize>,
}

impl Node {
    fn new(entry: usize, id: ResourceId, kind: Kind, work: Work) -> Self {
        Node {
            entry,
            step: work.step(),
            id,
            kind,
            work,
            deps: BTreeSet::new(),
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
enum State {
    Waiting,
    Running,
    Done(Duration),
    Failed(String),
    Skipped(String),
    Interrupted,
}

/// Strings that name `o` in other resources' fields: its physical id and id/arn/name attributes.
fn names_of(o: &Observed) -> Vec<&str> {
    let mut v = vec![o.physical_id.as_str()];
    for k in ["id", "arn", "name"] {
        if let Some(a) = o.attrs.get(k) {
            v.push(a.as_str());
        }
    }
    v.retain(|s| !s.is_empty());
    v
}

fn mentions(v: &Value, names: &[&str]) -> bool {
    match v {
        Value::Str(s) => names.contains(&s.as_str()),
        Value::List(l) => l.iter().any(|x| mentions(x, names)),
        Value::Map(m) => m.values().any(|x| mentions(x, names)),
        _ => false,
    }
}

/// Whether `user` uses `used`: the declared graph says so, or the observed fields of `user`
/// name `used`.
fn uses(user: &Node, used: &Node, declared: &HashMap<&ResourceId, BTreeSet<ResourceId>>) -> bool {
    if user.id == used.id {
        return false;
    }
    if declared.get(&user.id).is_some_and(|d| d.contains(&used.id)) {
        return true;
    }
    match (user.work.current(), used.work.current()) {
        (Some(u), Some(x)) => {
            // Names of `used`, except those that also name `user` itself (an RDS subnet group
            // and an instance may share a name).
            let own = names_of(u);
            let mut names = names_of(x);
            names.retain(|n| !own.contains(n));
            u.fields
                .iter()
                .filter(|(k, _)| spec(u.kind).orders_deletes(k))
                .any(|(_, v)| mentions(v, &names))
        }
        _ => false,
    }
}

/// Adds the delete-phase edges: a delete waits for the deletes of the resources that use it,
/// and (for undeclared resources) for the updates of declared resources that still use it.
fn add_delete_edges(nodes: &mut [Node], declared: &HashMap<&ResourceId, BTreeSet<ResourceId>>) {
    let n = nodes.len();
    for x in 0..n {
        if !nodes[x].step.is_delete() {
            continue;
        }
        let mut add = Vec::new();
        for y in 0..n {
            if x == y {
                continue;
            }
            let wait = match nodes[y].step {
                // A release deletes nothing (the snapshot of a database stays in AWS, and AWS
                // deletes a database that has snapshots): what it names need not wait for it.
                Step::Delete | Step::DeleteOld => {
                    spec(nodes[y].kind).on_delete != DeletePolicy::Release
                        && uses(&nodes[y], &nodes[x], declared)
                }
                Step::Update => {
                    nodes[x].step == Step::Delete && uses(&nodes[y], &nodes[x], declared)
                }
                _ => false,
            };
            if wait {
                add.push(y);
            }
        }
        nodes[x].deps.extend(add);
    }
}

struct Ctx<'a> {
    cloud: &'a dyn Cloud,
    scope: &'a Scope,
    opts: &'a Options,
}

type Attrs = HashMap<ResourceId, BTreeMap<String, String>>;

impl Ctx<'_> {
    fn event(&self, e: Event) {
        self.opts.progress.event(&e);
    }

    /// Runs `call`, retrying what the retry policy ([`moodlestack_model::retry`]) calls
    /// transient: a request the SDK gave up on for throttling `opts.retries` more times, a state
    /// conflict that clears by itself until the kind's timeout has passed.
    async fn retry<T, F, Fut>(
        &self,
        id: &ResourceId,
        kind: Kind,
        mut call: F,
    ) -> Result<T, CloudError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, CloudError>>,
    {
        let started = tokio::time::Instant::now();
        let settle = spec(kind).ready_timeout;
        let mut delay = self.opts.retry.initial;
        let mut throttled = 0;
        let mut attempt = 0;
        loop {
            match call().await {
                Err(e)
                    if match e.transient() {
                        Some(Transient::Throttled) => throttled < self.opts.retries,
                        Some(Transient::Settling) => started.elapsed() < settle,
                        None => false,
                    } =>
                {
                    attempt += 1;
                    if e.transient() == Some(Transient::Throttled) {
                        throttled += 1;
                    }
                    self.event(Event::Retrying {
                        id: id.clone(),
                        error: e.to_string(),
                        attempt,
                        delay,
                    });
                    tokio::time::sleep(delay).await;
                    delay = self.opts.retry.next(delay);
                }
                r => return r,
            }
        }
    }

    /// Polls until `want` (Ready: returns the final observation; Gone: None).
    async fn wait(
        &self,
        current: &Observed,
        want: Want,
        started: Instant,
    ) -> Result<Option<Observed>, StepError> {
        let timeout = spec(current.kind).ready_timeout;
        let deadline = Instant::now() + timeout;
        let mut delay = self.opts.poll.initial;
        let mut last = String::new();
        loop {
            let r = self
                .retry(&current.id.to_resource_id(), current.kind, || {
                    self.cloud.poll(self.scope, current, want)
                })
                .await
                .map_err(StepError::Waiting)?;
            match (r, want) {
                (Readiness::Ready(o), Want::Ready) => return Ok(Some(o)),
                (Readiness::Gone, Want::Gone) => return Ok(None),
                (Readiness::Gone, Want::Ready) => {
                    return Err(StepError::Disappeared {
                        physical_id: current.physical_id.clone(),
                    })
                }
                (Readiness::Failed { status, fix }, _) => {
                    return Err(StepError::EndState {
                        physical_id: current.physical_id.clone(),
                        status,
                        fix,
                    })
                }
                (Readiness::Pending(s), _) => {
                    if s != last {
                        self.event(Event::Waiting {
                            id: current.id.to_resource_id(),
                            status: s.clone(),
                            elapsed: started.elapsed(),
                        });
                        last = s;
                    }
                }
                (Readiness::Ready(_), Want::Gone) => {
                    if last != "exists" {
                        self.event(Event::Waiting {
                            id: current.id.to_resource_id(),
                            status: "still exists".into(),
                            elapsed: started.elapsed(),
                        });
                        last = "exists".into();
                    }
                }
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(StepError::Timeout {
                    physical_id: current.physical_id.clone(),
                    want,
                    after: timeout,
                    last_status: if last.is_empty() {
                        "unknown".into()
                    } else {
                        last
                    },
                });
            }
            tokio::time::sleep(delay.min(deadline - now)).await;
            delay = self.opts.poll.next(delay);
        }
    }

    fn delete_options(&self, o: &Observed) -> DeleteOptions {
        let snapshot = spec(o.kind).delete_risk(&o.fields).snapshots;
        DeleteOptions {
            final_snapshot_id: if snapshot {
                self.opts.final_snapshot_id.clone()
            } else {
                None
            },
            lift_deletion_protection: self.opts.allow_data_loss,
        }
    }

    async fn delete(&self, current: &Observed, started: Instant) -> Result<(), StepError> {
        // Already being deleted (an interrupted earlier run): asking again would only be refused
        // with "invalid state"; wait for it to go.
        if current.lifecycle == Lifecycle::Deleting {
            return self.wait(current, Want::Gone, started).await.map(|_| ());
        }
        let options = self.delete_options(current);
        match self
            .retry(&current.id.to_resource_id(), current.kind, || {
                self.cloud.delete(self.scope, current, &options)
            })
            .await
        {
            Ok(()) => {}
            // Already gone (a previous run deleted it): nothing to wait for.
            Err(CloudError::NotFound(_)) => return Ok(()),
            Err(e) => return Err(e.into()),
        }
        if self.cloud.settled(current, Want::Gone) {
            return Ok(());
        }
        self.wait(current, Want::Gone, started).await.map(|_| ())
    }

    fn resolve(&self, d: &Resource, attrs: &Attrs) -> Result<moodlestack_model::Fields, StepError> {
        let lookup = |r: &Ref| attrs.get(&r.resource).and_then(|a| a.get(&r.attr)).cloned();
        let mut out = moodlestack_model::Fields::new();
        for (k, v) in &d.fields {
            let rv = v.resolve(&lookup);
            if !rv.is_concrete() {
                let missing: Vec<String> = v
                    .refs()
                    .into_iter()
                    .filter(|r| lookup(r).is_none())
                    .map(|r| r.to_string())
                    .collect();
                return Err(StepError::Unresolved {
                    field: k.clone(),
                    refs: missing,
                });
            }
            out.insert(k.clone(), rv);
        }
        Ok(out)
    }

    async fn run(&self, node: &Node, attrs: Attrs) -> Result<Option<Observed>, StepError> {
        let started = Instant::now();
        match &node.work {
            Work::Refresh { current } => self.wait(current, Want::Ready, started).await,
            Work::Create { desired: d } | Work::CreateNew { desired: d } => {
                let want = Resource {
                    fields: self.resolve(d, &attrs)?,
                    ..Resource::new(&d.id, d.kind)
                };
                // The plan saw it absent (re-checked under the lease): the first attempt does
                // not look for it; a retry (the answer may have been lost) does.
                let first = std::cell::Cell::new(true);
                let created = self
                    .retry(&d.id, d.kind, || {
                        if first.replace(false) {
                            self.cloud.create_absent(self.scope, &want)
                        } else {
                            self.cloud.create(self.scope, &want)
                        }
                    })
                    .await?;
                let ready = if self.cloud.settled(&created, Want::Ready) {
                    None
                } else {
                    self.wait(&created, Want::Ready, started).await?
                };
                Ok(Some(merge(created, ready)))
            }
            Work::Update {
                desired: d,
                current,
                changed,
            } => {
                let fields = self.resolve(d, &attrs)?;
                let updated = self
                    .retry(&d.id, d.kind, || {
                        self.cloud.update(self.scope, current, &fields, changed)
                    })
                    .await?;
                let ready = self.wait(&updated, Want::Ready, started).await?;
                let mut out = merge(updated, ready);
                // Attributes the update did not report stay as they were.
                for (k, v) in &current.attrs {
                    out.attrs.entry(k.clone()).or_insert_with(|| v.clone());
                }
                Ok(Some(out))
            }
            Work::Delete { current } | Work::DeleteOld { current, .. } => {
                self.delete(current, started).await.map(|_| None)
            }
        }
    }
}

fn merge(first: Observed, ready: Option<Observed>) -> Observed {
    match ready {
        None => first,
        Some(mut r) => {
            for (k, v) in first.attrs {
                r.attrs.entry(k).or_insert(v);
            }
            r.id = first.id;
            r
        }
    }
}

/// Per step: its kind's ready timeout (a proxy for how long it takes) plus the largest rank of
/// the steps waiting for it, i.e. the slowest chain it heads.
fn ranks(nodes: &[Node], dependents: &[Vec<usize>]) -> Vec<u64> {
    fn rank(
        i: usize,
        nodes: &[Node],
        dependents: &[Vec<usize>],
        memo: &mut [Option<u64>],
        depth: usize,
    ) -> u64 {
        if let Some(r) = memo[i] {
            return r;
        }
        let own = match nodes[i].step {
            Step::Refresh => 0,
            _ => spec(nodes[i].kind).ready_timeout.as_secs(),
        };
        // Depth guard: a cycle (reported later as not attempted) must not recurse forever.
        let below = if depth > nodes.len() {
            0
        } else {
            dependents[i]
                .iter()
                .map(|&j| rank(j, nodes, dependents, memo, depth + 1))
                .max()
                .unwrap_or(0)
        };
        let r = own + below;
        memo[i] = Some(r);
        r
    }
    let mut memo = vec![None; nodes.len()];
    (0..nodes.len())
        .map(|i| rank(i, nodes, dependents, &mut memo, 0))
        .collect()
}

/// Runs the graph of `nodes`; `entries` are the report lines the nodes belong to.
async fn run_graph(
    ctx: &Ctx<'_>,
    nodes: Vec<Node>,
    mut entries: Vec<Entry>,
    mut attrs: Attrs,
    lease: bool,
) -> Report {
    let started = Instant::now();
    let n = nodes.len();
    let mut state = vec![State::Waiting; n];
    let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); n];
    let mut missing: Vec<usize> = vec![0; n];
    for (i, node) in nodes.iter().enumerate() {
        missing[i] = node.deps.len();
        for &d in &node.deps {
            dependents[d].push(i);
        }
    }
    // When more steps are ready than may run, the ones heading the longest chains of slow waits
    // go first (a database before a security group), then plan order.
    let rank = ranks(&nodes, &dependents);
    let key = |i: usize| (std::cmp::Reverse(rank[i]), i);
    let mut ready: BTreeSet<(std::cmp::Reverse<u64>, usize)> =
        (0..n).filter(|&i| missing[i] == 0).map(key).collect();
    let mut running = FuturesUnordered::new();
    let parallelism = ctx.opts.parallelism.max(1);
    let period = (ctx.opts.lease_ttl / 3).max(Duration::from_secs(1));
    let mut renew = tokio::time::interval_at(Instant::now() + period, period);
    let mut interrupted = false;
    let mut deleted = BTreeSet::new();
    let mut made = BTreeSet::new();

    loop {
        while running.len() < parallelism {
            let Some((_, i)) = ready.pop_first() else {
                break;
            };
            state[i] = State::Running;
            let node = &nodes[i];
            ctx.event(Event::Started {
                id: node.id.clone(),
                kind: node.kind,
                step: node.step,
            });
            let snapshot = attrs.clone();
            running.push(async move {
                let t0 = Instant::now();
                let r = ctx.run(node, snapshot).await;
                (i, r, t0.elapsed())
            });
        }
        if running.is_empty() {
            break;
        }
        tokio::select! {
            Some((i, result, elapsed)) = running.next() => {
                let node = &nodes[i];
                match result {
                    Ok(obs) => {
                        state[i] = State::Done(elapsed);
                        // A released resource (a snapshot) stays, untagged: not deleted.
                        if let Work::Delete { current } | Work::DeleteOld { current, .. } = &node.work {
                            if spec(current.kind).on_delete != DeletePolicy::Release {
                                deleted.insert((current.kind, current.physical_id.clone()));
                            }
                        }
                        if let Some(o) = obs {
                            made.insert((o.kind, o.physical_id.clone()));
                            attrs.insert(node.id.clone(), o.attrs);
                        } else if node.step.is_delete() {
                            attrs.remove(&node.id);
                        }
                        ctx.event(Event::Finished { id: node.id.clone(), kind: node.kind, step: node.step, elapsed });
                        for &j in &dependents[i] {
                            missing[j] -= 1;
                            if missing[j] == 0 && state[j] == State::Waiting {
                                ready.insert(key(j));
                            }
                        }
                    }
                    Err(error) => {
                        let error = with_hint(&error);
                        ctx.event(Event::Failed { id: node.id.clone(), kind: node.kind, step: node.step, error: error.clone(), elapsed });
                        state[i] = State::Failed(error);
                        // Skip everything downstream.
                        let mut queue: std::collections::VecDeque<(usize, usize)> = dependents[i].iter().map(|&j| (j, i)).collect();
                        while let Some((j, parent)) = queue.pop_front() {
                            if state[j] == State::Waiting {
                                let reason = if parent == i {
                                    format!("depends on {}, which failed", node.id)
                                } else {
                                    format!("depends on {}, which was not attempted ({} failed)", nodes[parent].id, node.id)
                                };
                                ctx.event(Event::Skipped { id: nodes[j].id.clone(), kind: nodes[j].kind, reason: reason.clone() });
                                state[j] = State::Skipped(reason);
                                ready.remove(&key(j));
                                queue.extend(dependents[j].iter().map(|&k| (k, j)));
                            }
                        }
                    }
                }
            }
            _ = renew.tick(), if lease => {
                match ctx.cloud.acquire_lease(ctx.scope, &ctx.opts.owner, ctx.opts.lease_ttl).await {
                    Ok(_) => {}
                    // Someone else holds the stack now: two applies must never mutate at once,
                    // so stop starting work (running changes finish) and say why.
                    Err(e @ CloudError::LeaseHeld(_)) => {
                        ctx.event(Event::Note(format!("lost the lease, stopping: {e}")));
                        ctx.opts.cancel.cancel();
                    }
                    Err(e) => ctx.event(Event::Note(format!("could not renew the lease: {e}"))),
                }
            }
            _ = ctx.opts.cancel.cancelled() => {
                interrupted = true;
                break;
            }
        }
    }
    drop(running);

    // Fold step states into the report entries (a replace has two steps).
    let mut per_entry: Vec<Vec<(Step, State)>> = vec![Vec::new(); entries.len()];
    for (i, node) in nodes.iter().enumerate() {
        let s = match &state[i] {
            State::Running => State::Interrupted,
            State::Waiting if interrupted => State::Interrupted,
            State::Waiting => {
                State::Skipped("waits for a dependency cycle (a bug: please report it)".into())
            }
            s => s.clone(),
        };
        per_entry[node.entry].push((node.step, s));
    }
    let mut keep = vec![true; entries.len()];
    for (k, steps) in per_entry.into_iter().enumerate() {
        let e = &mut entries[k];
        let failed = steps.iter().find_map(|(step, s)| match s {
            State::Failed(err) => Some(if e.action == Action::Replace {
                format!("{step}: {err}")
            } else {
                err.clone()
            }),
            _ => None,
        });
        let done_old = steps
            .iter()
            .any(|(st, s)| *st == Step::DeleteOld && matches!(s, State::Done(_)));
        e.outcome = if let Some(error) = failed {
            Outcome::Failed { error }
        } else if steps.iter().all(|(_, s)| matches!(s, State::Done(_))) {
            let elapsed = steps
                .iter()
                .map(|(_, s)| {
                    if let State::Done(d) = s {
                        *d
                    } else {
                        Duration::ZERO
                    }
                })
                .sum();
            Outcome::Done { elapsed }
        } else {
            let mut reason = steps
                .iter()
                .find_map(|(_, s)| match s {
                    State::Skipped(r) => Some(r.clone()),
                    State::Interrupted => Some("interrupted".to_string()),
                    _ => None,
                })
                .unwrap_or_default();
            if done_old {
                reason = format!("the old one was deleted, the new one not created: {reason}");
            }
            Outcome::NotAttempted { reason }
        };
        // Unchanged resources are listed only when reading them failed or was skipped.
        if e.action == Action::NoOp
            && matches!(
                e.outcome,
                Outcome::Done { .. } | Outcome::NotAttempted { .. }
            )
        {
            keep[k] = false;
        }
    }
    let entries = entries
        .into_iter()
        .zip(keep)
        .filter(|(_, k)| *k)
        .map(|(e, _)| e)
        .collect();
    Report {
        entries,
        attrs: attrs.into_iter().collect(),
        interrupted,
        elapsed: started.elapsed(),
        observed_after: None,
        // A name-keyed resource replaced under its name is made again: its listing is current.
        deleted: deleted.difference(&made).cloned().collect(),
    }
}

/// The stack observed after `report`'s run: while AWS still lists a resource the run deleted,
/// read again (the executor's poll back-off), at most [`STALE_LISTINGS`] and until cancelled.
/// What it still lists then stays in the observation, for the caller's read-back to report (a
/// delete that answered "not found" may have met EC2's lag, not the resource's end), with a
/// note. None when a read fails.
async fn observe_after(
    ctx: &Ctx<'_>,
    desired: &[Resource],
    report: &Report,
) -> Option<Vec<Observed>> {
    let started = Instant::now();
    let deadline = started + STALE_LISTINGS;
    let mut delay = ctx.opts.poll.initial;
    let mut told = false;
    loop {
        let seen = ctx.cloud.observe(ctx.scope, desired).await.ok()?;
        let stale: Vec<&Observed> = seen.iter().filter(|o| report.is_stale(o)).collect();
        if stale.is_empty() {
            return Some(seen);
        }
        let now = Instant::now();
        if now >= deadline || ctx.opts.cancel.is_cancelled() {
            let listed: Vec<String> = stale
                .iter()
                .map(|o| format!("{} {}", o.kind, o.physical_id))
                .collect();
            ctx.event(Event::Note(format!(
                "AWS still lists {} {:.0} s after this run deleted {}",
                listed.join(", "),
                (now - started).as_secs_f64(),
                if listed.len() == 1 { "it" } else { "them" }
            )));
            return Some(seen);
        }
        if !told {
            told = true;
            let n = stale.len();
            ctx.event(Event::Note(format!(
                "AWS still lists {n} resource{} this run deleted (its describes lag behind its \
                 deletes): reading the stack again until it does not",
                if n == 1 { "" } else { "s" }
            )));
        }
        tokio::select! {
            _ = tokio::time::sleep(delay.min(deadline - now)) => {}
            _ = ctx.opts.cancel.cancelled() => {}
        }
        delay = ctx.opts.poll.next(delay);
    }
}

/// Takes the stack's lease for a run that observes the stack only once it holds it (a destroy
/// that asks nothing first: one observation instead of one before the lease and one under it).
/// Pass it in [`Options::held`]; the run releases it. Also returns the lease it lifted from a
/// holder whose process is gone, if it did: AWS may not list yet what that run created, so wait
/// [`settle_after_crash`] of it before observing. A caller that stops before the run releases
/// the lease with [`Cloud::release_lease`].
pub async fn take_lease(
    cloud: &dyn Cloud,
    scope: &Scope,
    opts: &Options,
) -> Result<(LeaseInfo, Option<LeaseInfo>), ExecError> {
    acquire(&Ctx { cloud, scope, opts }).await
}

/// Takes the lease (see [`with_lease`]); also the lease it lifted from a gone holder.
async fn acquire(ctx: &Ctx<'_>) -> Result<(LeaseInfo, Option<LeaseInfo>), ExecError> {
    let acquire = || {
        ctx.cloud
            .acquire_lease(ctx.scope, &ctx.opts.owner, ctx.opts.lease_ttl)
    };
    let mut lifted = None;
    let lease = match acquire().await {
        // The holder ran on this host and its process is gone (killed, crashed, a cancelled CI
        // job on a reused runner): its lease is lifted at once rather than left to expire.
        Err(CloudError::LeaseHeld(held)) if holder_is_gone(&held.owner) => {
            ctx.event(Event::Note(format!(
                "taking over the lease of {}: no such process on this host",
                held.owner
            )));
            ctx.cloud
                .break_lease(ctx.scope, &held)
                .await
                .map_err(ExecError::Lease)?;
            lifted = Some(held);
            acquire().await
        }
        // Held elsewhere, and due to expire within one lease period: its holder died (a crashed
        // laptop, a cancelled CI job on another runner) or is about to renew it. Wait for it to
        // expire, released or renewed, whichever comes first.
        Err(CloudError::LeaseHeld(held))
            if expires_soon(&held, ctx.opts.lease_ttl, ctx.cloud.now_unix()) =>
        {
            ctx.event(Event::Note(format!(
                "the stack is locked by {}; waiting for that lease to expire (a running apply \
                 renews it every {} s)",
                held.describe_now(),
                (ctx.opts.lease_ttl / 3).as_secs()
            )));
            let deadline = Instant::now() + ctx.opts.lease_ttl + Duration::from_secs(5);
            lifted = Some(held.clone());
            loop {
                tokio::time::sleep(Duration::from_secs(5)).await;
                match acquire().await {
                    Err(CloudError::LeaseHeld(now))
                        if now.owner == held.owner
                            && now.expires_at <= held.expires_at
                            && Instant::now() < deadline => {}
                    other => break other,
                }
            }
        }
        other => other,
    }
    .map_err(ExecError::Lease)?;
    ctx.event(Event::LeaseTaken {
        owner: lease.owner.clone(),
        expires_at: lease.expires_at,
    });
    Ok((lease, lifted))
}

/// Takes the lease (unless the caller holds it: [`Options::held`]), runs `f`, releases the lease.
async fn with_lease<F, Fut>(ctx: &Ctx<'_>, recheck: Recheck<'_>, f: F) -> Result<Report, ExecError>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = Report>,
{
    let lease = match &ctx.opts.held {
        Some(held) => held.clone(),
        None => acquire(ctx).await?.0,
    };
    // Observed under a lease the caller took: nothing to check again.
    let checked = match ctx.opts.held {
        Some(_) => Ok(()),
        None => recheck.run(ctx).await,
    };
    let mut report = match checked {
        Ok(()) => Ok(f().await),
        Err(e) => Err(e),
    };
    // The read-back goes out beside the release: two reads that wait for nothing of each other.
    let desired = recheck.desired();
    let read_back = async {
        match &report {
            Ok(r) if r.is_success() => observe_after(ctx, &desired, r).await,
            _ => None,
        }
    };
    let (released, observed_after) = tokio::join!(
        ctx.cloud.release_lease(ctx.scope, &ctx.opts.owner),
        read_back
    );
    if let Ok(r) = &mut report {
        r.observed_after = observed_after;
    }
    if let Err(e) = released {
        ctx.event(Event::Note(format!(
            "could not release the lease ({e}); it expires by itself at {}",
            moodlestack_model::cloud::utc_date(lease.expires_at)
        )));
    }
    report
}

/// What to check once the lease is held: the world is still the one the plan (or the destroy
/// listing) was made from. Another apply may have run between planning and taking the lease.
enum Recheck<'a> {
    Plan(&'a Plan),
    Observed(&'a [Observed], &'a [Resource]),
}

/// How strictly [`apply`] re-checks the world once it holds the lease.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verify {
    /// Do not observe again.
    Off,
    /// A fresh diff must give the same plan (the same changes to the same values); changes in
    /// fields the plan does not touch (an Auto Scaling group's current capacity) are fine.
    SamePlan,
    /// The observation must be identical ([`Plan::observed_digest`]): for saved plans.
    SameObservation,
}

impl Recheck<'_> {
    /// The declared graph the run works towards (what an observation of the stack asks for).
    fn desired(&self) -> Vec<Resource> {
        match self {
            Recheck::Plan(plan) => plan.desired(),
            Recheck::Observed(_, desired) => desired.to_vec(),
        }
    }

    async fn run(&self, ctx: &Ctx<'_>) -> Result<(), ExecError> {
        if ctx.opts.verify == Verify::Off {
            return Ok(());
        }
        let desired = self.desired();
        let fresh = ctx
            .cloud
            .observe(ctx.scope, &desired)
            .await
            .map_err(ExecError::Observe)?;
        match self {
            Recheck::Plan(plan) if ctx.opts.verify == Verify::SameObservation => {
                check_saved_plan(plan, &fresh)
            }
            Recheck::Plan(plan) => {
                let again = crate::diff::plan(ctx.scope, &desired, &fresh)?;
                if signature(plan) == signature(&again) {
                    Ok(())
                } else {
                    Err(ExecError::Stale {
                        since: Since::Plan,
                        changes: what_changed(
                            plan.changes.iter().filter_map(|c| c.current.as_ref()),
                            &fresh,
                        ),
                    })
                }
            }
            Recheck::Observed(before, _) => {
                let known: HashSet<(Kind, &str)> = before
                    .iter()
                    .map(|o| (o.kind, o.physical_id.as_str()))
                    .collect();
                let appeared: Vec<String> = fresh
                    .iter()
                    .filter(|o| !o.is_foreign())
                    .filter(|o| !known.contains(&(o.kind, o.physical_id.as_str())))
                    .map(|o| format!("{} ({}, {}) appeared", o.id, o.kind, o.physical_id))
                    .collect();
                if appeared.is_empty() {
                    Ok(())
                } else {
                    Err(ExecError::Stale {
                        since: Since::Listing,
                        changes: appeared,
                    })
                }
            }
        }
    }
}

/// What a plan would do: (id, action, changed fields with their new values).
type Signature = Vec<(String, Action, Vec<(String, String)>)>;

fn signature(plan: &Plan) -> Signature {
    let mut v: Vec<_> = plan
        .changes
        .iter()
        .filter(|c| c.action.is_change())
        .map(|c| {
            let fields = c
                .fields
                .iter()
                .map(|f| {
                    (
                        f.field.clone(),
                        f.new
                            .as_ref()
                            .map(|v| v.to_json().to_string())
                            .unwrap_or_default(),
                    )
                })
                .collect();
            (c.id.to_string(), c.action, fields)
        })
        .collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

/// Executes `plan`: takes the lease (only when there are changes), runs every change in
/// dependency order with bounded parallelism, releases the lease. Err only when nothing was
/// attempted (lease held, data loss refused); failures of single changes are in the [`Report`].
pub async fn apply(
    cloud: &dyn Cloud,
    scope: &Scope,
    plan: &Plan,
    opts: &Options,
) -> Result<Report, ExecError> {
    let ctx = Ctx { cloud, scope, opts };
    if let Err(guard) = crate::diff::guard(plan, opts.allow_data_loss) {
        return Err(ExecError::DataLoss {
            destroy: false,
            refused: guard.refused,
        });
    }

    // Entries and steps.
    let mut entries = Vec::new();
    let mut nodes: Vec<Node> = Vec::new();
    let mut attrs: Attrs = HashMap::new();
    let mut create_step: HashMap<ResourceId, usize> = HashMap::new();
    let mut created_first: Vec<(ResourceId, usize)> = Vec::new();
    for c in &plan.changes {
        if let Some(o) = &c.current {
            if c.action != Action::Delete {
                attrs.insert(c.id.clone(), o.attrs.clone());
            }
        }
        let entry = entries.len();
        entries.push(Entry {
            id: c.id.clone(),
            kind: c.kind,
            action: c.action,
            outcome: Outcome::NotAttempted {
                reason: String::new(),
            },
        });
        let malformed = || ExecError::MalformedPlan {
            id: c.id.clone(),
            action: c.action,
        };
        let desired = || c.desired.clone().ok_or_else(malformed);
        let current = || c.current.clone().ok_or_else(malformed);
        let mut push = |work: Work| {
            nodes.push(Node::new(entry, c.id.clone(), c.kind, work));
            nodes.len() - 1
        };
        match c.action {
            Action::NoOp => {
                if let Some(current) = &c.current {
                    let i = push(Work::Refresh {
                        current: current.clone(),
                    });
                    create_step.insert(c.id.clone(), i);
                }
            }
            Action::Create => {
                let i = push(Work::Create {
                    desired: desired()?,
                });
                create_step.insert(c.id.clone(), i);
            }
            Action::Update => {
                let i = push(Work::Update {
                    desired: desired()?,
                    current: current()?,
                    changed: c
                        .fields
                        .iter()
                        .filter(|f| !f.forces_replacement)
                        .map(|f| f.field.clone())
                        .collect(),
                });
                create_step.insert(c.id.clone(), i);
            }
            Action::Replace => {
                let old = push(Work::DeleteOld {
                    desired: desired()?,
                    current: current()?,
                });
                let new = push(Work::CreateNew {
                    desired: desired()?,
                });
                if crate::diff::creates_first(c) {
                    // The old one goes after the new one exists and its users moved (edges
                    // added below, once every user's step exists).
                    nodes[old].deps.insert(new);
                    created_first.push((c.id.clone(), old));
                } else {
                    nodes[new].deps.insert(old);
                }
                create_step.insert(c.id.clone(), new);
            }
            Action::Delete => {
                push(Work::Delete {
                    current: current()?,
                });
            }
        }
    }
    // Create-phase edges: after the create-phase steps of every dependency.
    for node in nodes.iter_mut() {
        if matches!(node.step, Step::Create | Step::Update | Step::CreateNew) {
            if let Some(d) = node.work.desired() {
                for dep in d.deps() {
                    if let Some(&j) = create_step.get(&dep) {
                        node.deps.insert(j);
                    }
                }
            }
        }
    }
    let declared: HashMap<&ResourceId, BTreeSet<ResourceId>> = plan
        .changes
        .iter()
        .filter_map(|c| {
            c.desired
                .as_ref()
                .map(|d| (&c.id, d.delete_deps().into_iter().collect()))
        })
        .collect();
    add_delete_edges(&mut nodes, &declared);
    // Replaced create-first: the old copy is deleted once every step that declares a use of the
    // resource (and so takes the new one) is done.
    for (id, old) in created_first {
        let users: Vec<usize> = (0..nodes.len())
            .filter(|&y| {
                y != old
                    && nodes[y]
                        .work
                        .desired()
                        .is_some_and(|d| d.deps().contains(&id))
            })
            .filter(|&y| !depends_on(&nodes, y, old))
            .collect();
        nodes[old].deps.extend(users);
    }
    // The old copy of a replaced resource stays until the updates of what it is re-created from
    // are done: the stable instance keeps running while its launch template gets a new version,
    // and is not deleted at all if that fails. (Skipped where it would make a cycle.)
    for x in 0..nodes.len() {
        if nodes[x].step != Step::DeleteOld {
            continue;
        }
        let deps = nodes[x]
            .work
            .desired()
            .map(Resource::deps)
            .unwrap_or_default();
        for dep in deps {
            if let Some(&j) = create_step.get(&dep) {
                if nodes[j].step == Step::Update && !depends_on(&nodes, j, x) {
                    nodes[x].deps.insert(j);
                }
            }
        }
    }

    // An unchanged resource is waited for only when a changing resource needs an attribute it
    // does not report yet (a database still being created after a crash has no endpoint) or it
    // is still being created; otherwise its observed attributes are used as they are (a database
    // that is `backing-up` does not hold anything up).
    let mut needed: HashSet<usize> = HashSet::new();
    for n in nodes.iter().filter(|n| n.step != Step::Refresh) {
        let refs: Vec<Ref> = n
            .work
            .desired()
            .map(|d| {
                d.fields
                    .values()
                    .flat_map(|v| v.refs().into_iter().cloned())
                    .collect()
            })
            .unwrap_or_default();
        for &j in &n.deps {
            let dep = &nodes[j];
            if dep.step != Step::Refresh {
                continue;
            }
            let Some(current) = dep.work.current() else {
                continue;
            };
            let missing_attr = refs
                .iter()
                .any(|r| r.resource == dep.id && !current.attrs.contains_key(&r.attr));
            let settling = current.lifecycle == Lifecycle::Creating;
            if missing_attr || settling {
                needed.insert(j);
            }
        }
    }
    let nodes = prune_refresh(nodes, &needed);

    if !plan.has_changes() {
        return Ok(Report {
            attrs: attrs.into_iter().collect(),
            ..Report::default()
        });
    }
    with_lease(&ctx, Recheck::Plan(plan), || {
        run_graph(&ctx, nodes, entries, attrs, true)
    })
    .await
}

/// Whether step `from` (transitively) waits for step `to`.
fn depends_on(nodes: &[Node], from: usize, to: usize) -> bool {
    let mut seen = vec![false; nodes.len()];
    let mut stack = vec![from];
    while let Some(i) = stack.pop() {
        if i == to {
            return true;
        }
        if !std::mem::replace(&mut seen[i], true) {
            stack.extend(nodes[i].deps.iter().copied());
        }
    }
    false
}

/// Drops Refresh steps no one needs, renumbering edges.
fn prune_refresh(nodes: Vec<Node>, needed: &HashSet<usize>) -> Vec<Node> {
    let keep: Vec<bool> = nodes
        .iter()
        .enumerate()
        .map(|(i, n)| n.step != Step::Refresh || needed.contains(&i))
        .collect();
    let mut new_index = vec![usize::MAX; nodes.len()];
    let mut k = 0;
    for (i, &kp) in keep.iter().enumerate() {
        if kp {
            new_index[i] = k;
            k += 1;
        }
    }
    nodes
        .into_iter()
        .enumerate()
        .filter(|(i, _)| keep[*i])
        .map(|(_, mut n)| {
            n.deps = n
                .deps
                .iter()
                .filter(|&&d| keep[d])
                .map(|&d| new_index[d])
                .collect();
            n
        })
        .collect()
}

/// Why a destroy is refused without `--allow-data-loss` (empty: allowed).
pub fn destroy_refusals(observed: &[Observed], opts: &Options) -> Vec<String> {
    if opts.allow_data_loss {
        return Vec::new();
    }
    let mut out = Vec::new();
    for o in observed {
        let risk = spec(o.kind).delete_risk(&o.fields);
        if risk.protected {
            out.push(format!(
                "{} ({}): deletion protection is on; --allow-data-loss lifts it",
                o.id, o.physical_id
            ));
        }
        if risk.snapshots && opts.final_snapshot_id.is_none() {
            out.push(format!(
                "{} ({}): --skip-final-snapshot deletes the database without any copy",
                o.id, o.physical_id
            ));
        }
        if risk.loses_data {
            out.push(format!(
                "{} ({}, {}): holds data that no snapshot keeps",
                o.id,
                spec(o.kind).aws_type,
                o.physical_id
            ));
        }
    }
    out
}

/// Deletes every resource in `observed` (the stack's resources, found by its tag): a resource
/// after everything that uses it (by the declared graph `desired`, or by its observed fields).
/// Databases take a final snapshot ([`Options::final_snapshot_id`]); deletion protection is
/// lifted only with [`Options::allow_data_loss`], which a destroy of a database without a
/// snapshot, of the file system or of the cache also needs.
pub async fn destroy(
    cloud: &dyn Cloud,
    scope: &Scope,
    observed: &[Observed],
    desired: &[Resource],
    opts: &Options,
) -> Result<Report, ExecError> {
    let ctx = Ctx { cloud, scope, opts };
    let refused = destroy_refusals(observed, opts);
    if !refused.is_empty() {
        return Err(ExecError::DataLoss {
            destroy: true,
            refused,
        });
    }
    if observed.is_empty() {
        return Ok(Report::default());
    }
    let mut entries = Vec::new();
    let mut nodes = Vec::new();
    for o in observed {
        entries.push(Entry {
            id: o.id.to_resource_id(),
            kind: o.kind,
            action: Action::Delete,
            outcome: Outcome::NotAttempted {
                reason: String::new(),
            },
        });
        nodes.push(Node::new(
            entries.len() - 1,
            o.id.to_resource_id(),
            o.kind,
            Work::Delete { current: o.clone() },
        ));
    }
    let declared: HashMap<&ResourceId, BTreeSet<ResourceId>> = desired
        .iter()
        .map(|d| (&d.id, d.delete_deps().into_iter().collect()))
        .collect();
    add_delete_edges(&mut nodes, &declared);
    with_lease(&ctx, Recheck::Observed(observed, desired), || {
        run_graph(&ctx, nodes, entries, HashMap::new(), true)
    })
    .await
}

/// After an apply: observes again and diffs against `desired`. Returns one line per managed
/// field that did not take (empty: everything matches).
pub async fn read_back(
    cloud: &dyn Cloud,
    scope: &Scope,
    desired: &[Resource],
) -> Result<Vec<String>, ExecError> {
    let observed = cloud
        .observe(scope, desired)
        .await
        .map_err(ExecError::Observe)?;
    read_back_of(scope, desired, &observed)
}

/// [`read_back`] of an observation already made ([`Report::observed_after`]).
pub fn read_back_of(
    scope: &Scope,
    desired: &[Resource],
    observed: &[Observed],
) -> Result<Vec<String>, ExecError> {
    let plan = crate::diff::plan(scope, desired, observed)?;
    let mut out = Vec::new();
    // Fields whose desired value is unknown only follow from another resource's mismatch (a
    // reference to a resource that would be replaced): counted, not listed.
    let mut consequences = 0;
    for c in &plan.changes {
        match c.action {
            Action::NoOp => {}
            Action::Create => out.push(format!("{} ({}): does not exist", c.id, c.kind)),
            Action::Delete => out.push(format!("{} ({}): still exists", c.id, c.kind)),
            Action::Update | Action::Replace => {
                for f in &c.fields {
                    if f.new.as_ref().is_some_and(|v| !v.is_concrete()) {
                        consequences += 1;
                        continue;
                    }
                    let (old, new) = f.short_values();
                    out.push(format!(
                        "{} ({}): `{}` is {old}, want {new}",
                        c.id, c.kind, f.field
                    ));
                }
            }
        }
    }
    if consequences > 0 {
        out.push(format!(
            "(and {consequences} field{} of other resources that reference these)",
            if consequences == 1 { "" } else { "s" }
        ));
    }
    Ok(out)
}

/// Before applying a saved plan: refuses when the stack's resources changed since the plan was
/// made (the digest of a fresh observation differs), naming what changed.
pub fn check_saved_plan(plan: &Plan, observed: &[Observed]) -> Result<(), ExecError> {
    if crate::diff::observed_digest(observed) == plan.observed_digest {
        return Ok(());
    }
    Err(ExecError::Stale {
        since: Since::SavedPlan,
        changes: what_changed(
            plan.changes.iter().filter_map(|c| c.current.as_ref()),
            observed,
        ),
    })
}

/// The logical id, or `(untagged)` for resources AWS cannot tag (their id repeats the physical).
fn shown_id(o: &Observed) -> String {
    if o.id.is_untagged() {
        "(untagged)".to_string()
    } else {
        o.id.to_string()
    }
}

/// One line per resource that appeared, disappeared or changed between `before` and `after`
/// (matched by kind and physical id).
fn what_changed<'a>(before: impl Iterator<Item = &'a Observed>, after: &[Observed]) -> Vec<String> {
    let before: BTreeMap<(Kind, &str), &Observed> = before
        .map(|o| ((o.kind, o.physical_id.as_str()), o))
        .collect();
    let after: BTreeMap<(Kind, &str), &Observed> = after
        .iter()
        .map(|o| ((o.kind, o.physical_id.as_str()), o))
        .collect();
    let mut lines = Vec::new();
    for ((kind, p), o) in &after {
        match before.get(&(*kind, *p)) {
            None => lines.push(format!("{} ({kind}, {p}) appeared", shown_id(o))),
            Some(b) => {
                let mut keys: BTreeSet<&String> = b.fields.keys().collect();
                keys.extend(o.fields.keys());
                let fields: Vec<&str> = keys
                    .into_iter()
                    .filter(|k| b.fields.get(*k) != o.fields.get(*k))
                    .map(|k| k.as_str())
                    .collect();
                if !fields.is_empty() {
                    lines.push(format!("{} ({p}): {} changed", b.id, fields.join(", ")));
                } else if b.attrs != o.attrs {
                    lines.push(format!("{} ({p}): attributes changed", b.id));
                }
            }
        }
    }
    for ((kind, p), b) in &before {
        if !after.contains_key(&(*kind, *p)) {
            lines.push(format!("{} ({kind}, {p}) disappeared", shown_id(b)));
        }
    }
    if lines.is_empty() {
        lines.push("the observed state differs from the one it was made from".into());
    }
    lines
}

#[cfg(test)]
#[path = "execute_tests.rs"]
mod tests;
