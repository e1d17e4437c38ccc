//! `moodlestack apply`: plan, show, confirm, execute, read back, print the outputs. Also applies
//! a saved plan (`moodlestack apply plan.json`) exactly, after checking that the world did not
//! change since it was made.
//!
//! The progress printer and the confirmation prompt here are shared with `destroy`.

use super::common::{self, fail, Exit, Outcome};
use crate::Global;
use moodlestack_model::{Cloud, Resource, Scope};
use moodlestack_reconcile::execute::{self, Event, Progress};
use moodlestack_reconcile::{diff, print, Plan};
use std::collections::BTreeMap;
use std::io::{BufRead, IsTerminal, Write};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub struct Options {
    pub auto_approve: bool,
    pub allow_data_loss: bool,
    pub parallelism: usize,
    /// `--ttl`, in seconds.
    pub ttl: Option<u64>,
    /// `--upgrade-timeout`: after a change of the code version, how long to follow the upgrade
    /// on the new stable node (None: not at all).
    pub upgrade_timeout: Option<Duration>,
}

/// Refuses `--parallelism 0`.
pub(super) fn check_parallelism(n: usize) -> anyhow::Result<()> {
    if n == 0 {
        return Err(fail(
            "--parallelism must be at least 1",
            "pass --parallelism N with N >= 1 (default 10)",
        ));
    }
    Ok(())
}

pub fn run(g: &Global, target: &Path, o: Options) -> Outcome {
    check_parallelism(o.parallelism)?;
    if is_saved_plan(target) {
        return run_saved(g, target, &o);
    }
    let loaded = super::plan::load(g, target)?;
    let stack = &loaded.stack;
    let rt = common::runtime();
    let started_ms = unix_now_ms();
    rt.block_on(async {
        let cloud = common::cloud(stack).await;
        let planned = super::plan::make_plan(&loaded, &cloud, o.ttl).await?;
        for (phase, d) in &planned.phases {
            super::stats::record(phase, *d);
        }
        let plan = planned.plan;
        let desired = plan.desired();
        let question = format!(
            "Apply these changes to stack `{}` in {}? Only `yes` is accepted: ",
            plan.stack, plan.region
        );
        if let Some(exit) = show_and_confirm(g, &o, &plan, &question)? {
            return Ok(exit);
        }
        let final_snapshot =
            moodlestack_stack::names::Names::of(stack).db_final_snapshot(unix_now());
        let exit = execute_and_report(
            g,
            &cloud,
            &common::scope(stack),
            &plan,
            &desired,
            &o,
            final_snapshot,
            execute::Verify::SamePlan,
        )
        .await?;
        follow_upgrade(g, &cloud, &plan, &o, target, started_ms, exit).await
    })
}

/// After an apply that changed the code version: the upgrade on the stable node, followed
/// ([`super::follow`]); otherwise `exit` as it is.
async fn follow_upgrade(
    g: &Global,
    cloud: &moodlestack_aws::AwsCloud,
    plan: &Plan,
    o: &Options,
    target: &Path,
    since_ms: i64,
    exit: Exit,
) -> Outcome {
    let Some((from, to)) = super::follow::code_change(plan) else {
        return Ok(exit);
    };
    let file_args = match &g.name {
        Some(n) => format!("{} --name {n}", target.display()),
        None => target.display().to_string(),
    };
    match (exit, o.upgrade_timeout) {
        (Exit::Ok, Some(timeout)) => {
            super::follow::follow(
                g,
                cloud,
                &super::follow::Follow {
                    stack: &plan.stack,
                    region: &plan.region,
                    from: &from,
                    to: &to,
                    since_ms,
                    timeout,
                    file_args,
                },
            )
            .await
        }
        (Exit::Ok, None) => {
            if !g.quiet {
                println!(
                    "\nMoodle upgrade {from} -> {to}: the stable node upgrades the database now \
                     (not followed: --upgrade-timeout 0s). Follow it with `moodlestack logs \
                     {file_args} --node stable --source upgrade --follow`."
                );
            }
            Ok(exit)
        }
        _ => Ok(exit),
    }
}

/// Now, in milliseconds since the epoch (CloudWatch Logs' times).
fn unix_now_ms() -> i64 {
    i64::try_from(unix_now().saturating_mul(1000)).unwrap_or(i64::MAX)
}

/// `apply plan.json`.
fn run_saved(g: &Global, path: &Path, o: &Options) -> Outcome {
    use anyhow::Context as _;
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let plan = print::read_json(&text).with_context(|| path.display().to_string())?;
    if let Some(name) = &g.name {
        if name != &plan.stack {
            return Err(fail(
                format!("the plan is for stack `{}`, not `{name}`", plan.stack),
                format!("drop --name, or make a plan for `{name}`"),
            ));
        }
    }
    if o.ttl.is_some() {
        return Err(fail(
            "--ttl does not apply to a saved plan (it is applied exactly as saved)",
            "pass --ttl to `moodlestack plan ... --out FILE` instead",
        ));
    }
    if !g.set.is_empty() {
        return Err(fail(
            "--set does not apply to a saved plan (it is applied exactly as saved)",
            "pass --set to `moodlestack plan ... --out FILE` instead",
        ));
    }
    let scope = Scope {
        stack: plan.stack.clone(),
        region: plan.region.clone(),
    };
    let desired = plan.desired();
    let rt = common::runtime();
    let started_ms = unix_now_ms();
    rt.block_on(async {
        let cloud = moodlestack_aws::AwsCloud::from_env(&scope.region).await;
        super::stats::register(cloud.stats());
        let observed = common::observe(&cloud, &scope, &desired).await?;
        execute::check_saved_plan(&plan, &observed).map_err(|e| {
            anyhow::Error::new(e).context(format!("refusing to apply {}", path.display()))
        })?;
        let question = format!(
            "Apply the saved plan {} to stack `{}` in {}? Only `yes` is accepted: ",
            path.display(),
            plan.stack,
            plan.region
        );
        if let Some(exit) = show_and_confirm(g, o, &plan, &question)? {
            return Ok(exit);
        }
        let final_snapshot = moodlestack_stack::names::Names::for_stack(&plan.stack, &plan.region)
            .db_final_snapshot(unix_now());
        let exit = execute_and_report(
            g,
            &cloud,
            &scope,
            &plan,
            &desired,
            o,
            final_snapshot,
            execute::Verify::SameObservation,
        )
        .await?;
        follow_upgrade(g, &cloud, &plan, o, path, started_ms, exit).await
    })
}

/// Shows `plan` (whenever the user is asked, even with -q: nobody approves a plan unseen),
/// refuses data loss unless allowed, and asks `question`. The exit when there is nothing to
/// apply or the user declines; None to go on.
fn show_and_confirm(
    g: &Global,
    o: &Options,
    plan: &Plan,
    question: &str,
) -> anyhow::Result<Option<Exit>> {
    if !g.quiet || !o.auto_approve {
        print!("{}", print::text(plan, common::color_stdout(g)));
    }
    diff::guard(plan, o.allow_data_loss)?;
    if !plan.has_changes() {
        return Ok(Some(Exit::Ok));
    }
    if !confirm(o.auto_approve, question, "apply", "--auto-approve")? {
        eprintln!("Apply cancelled; nothing was changed.");
        return Ok(Some(Exit::Reported));
    }
    Ok(None)
}

/// Prints `report`. The exit when the run stopped early (then prints `interrupted`) or something
/// failed; None when everything was done.
pub(super) fn unfinished(report: &execute::Report, interrupted: &str) -> Option<Exit> {
    eprintln!("{report}");
    if report.interrupted {
        eprintln!("{interrupted}");
        return Some(Exit::Interrupted);
    }
    (!report.is_success()).then_some(Exit::Reported)
}

/// A saved plan is JSON (`{` first); a stack file is YAML.
fn is_saved_plan(path: &Path) -> bool {
    if path.extension().is_some_and(|e| e == "json") {
        return true;
    }
    std::fs::read_to_string(path).is_ok_and(|t| t.trim_start().starts_with('{'))
}

pub(super) use moodlestack_model::cloud::unix_now;

/// Runs the plan, prints the report, reads back, prints the outputs; the exit code.
#[allow(clippy::too_many_arguments)]
async fn execute_and_report(
    g: &Global,
    cloud: &dyn Cloud,
    scope: &Scope,
    plan: &Plan,
    desired: &[Resource],
    o: &Options,
    final_snapshot: String,
    verify: execute::Verify,
) -> Outcome {
    let printer = Printer::start(
        g,
        plan.changes.iter().filter(|c| c.action.is_change()).count(),
    );
    let cancel = execute::Cancel::new();
    watch_ctrl_c(cancel.clone());
    let opts = execute::Options {
        parallelism: o.parallelism,
        allow_data_loss: o.allow_data_loss,
        final_snapshot_id: Some(final_snapshot),
        progress: printer.clone(),
        cancel,
        verify,
        ..execute::Options::default()
    };
    let result = super::stats::timed("execute", execute::apply(cloud, scope, plan, &opts)).await;
    printer.finish();
    let report = result?;
    let interrupted = "Interrupted: calls already made stand (every resource is tagged); \
                       run apply again to finish.";
    if let Some(exit) = unfinished(&report, interrupted) {
        return Ok(exit);
    }
    // Read back: every managed field took (from the observation made beside the lease's
    // release, or, when no lease was taken, one made now).
    let problems = match &report.observed_after {
        Some(observed) => execute::read_back_of(scope, desired, observed),
        None => super::stats::timed("read back", execute::read_back(cloud, scope, desired)).await,
    }
    .map_err(|e| anyhow::Error::new(e).context("read-back after apply failed"))?;
    if !problems.is_empty() {
        return Err(common::fail_listing(
            "read-back after apply: these managed fields did not take:",
            &problems,
            "run apply again; if the same fields show up, AWS changes them back (a service \
             default or a value it normalizes): adjust the stack file",
        ));
    }
    if !g.quiet {
        println!(
            "\nApply complete: stack `{}` matches its stack file.",
            scope.stack
        );
        let outputs = super::outputs::Outputs::from_attrs(&report.attrs);
        print!("{}", outputs.text());
    }
    Ok(Exit::Ok)
}

/// First Ctrl-C (or SIGTERM, as CI systems send on cancel): cancel (nothing new starts, the
/// lease is released); second: exit at once.
pub(super) fn watch_ctrl_c(cancel: execute::Cancel) {
    tokio::spawn(async move {
        if interrupted().await {
            eprintln!(
                "\nInterrupted: stopping (nothing new starts; the lease is released). Press \
                 Ctrl-C again to quit at once."
            );
            cancel.cancel();
            if interrupted().await {
                std::process::exit(i32::from(common::EXIT_INTERRUPTED));
            }
        }
    });
}

/// Waits for Ctrl-C or SIGTERM; false if signals cannot be watched.
async fn interrupted() -> bool {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let Ok(mut term) = signal(SignalKind::terminate()) else {
            return tokio::signal::ctrl_c().await.is_ok();
        };
        tokio::select! {
            r = tokio::signal::ctrl_c() => r.is_ok(),
            r = term.recv() => r.is_some(),
        }
    }
    #[cfg(not(unix))]
    {
        tokio::signal::ctrl_c().await.is_ok()
    }
}

/// Asks `question` on the terminal. An error when there is no terminal to ask and no
/// `--auto-approve`.
/// Asks `question` on a terminal (only `yes` confirms); `approved` (the command's `flag`) skips
/// the question. Without a terminal and without the flag: an error naming the flag.
pub(super) fn confirm(
    approved: bool,
    question: &str,
    command: &str,
    flag: &str,
) -> anyhow::Result<bool> {
    if approved {
        return Ok(true);
    }
    if !std::io::stdin().is_terminal() {
        return Err(fail(
            format!("{command} needs confirmation, but standard input is not a terminal"),
            format!("review what is shown above and pass {flag} (CI), or run it in a terminal"),
        ));
    }
    eprint!("\n{question}");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    if std::io::stdin().lock().read_line(&mut answer).is_err() {
        return Ok(false);
    }
    Ok(answer.trim() == "yes")
}

/// Prints executor events: on a terminal, a status line (`[3/14] running: db.instance creating
/// 2m10s, ...`) redrawn every second under the event lines; otherwise one plain line per event.
#[derive(Clone)]
pub(super) struct Printer(Arc<PrinterInner>);

pub(super) struct PrinterInner {
    tty: bool,
    quiet: bool,
    verbose: bool,
    color: bool,
    state: Mutex<PrinterState>,
}

#[derive(Default)]
struct PrinterState {
    total: usize,
    finished: usize,
    /// id -> (step, started, status)
    running: BTreeMap<String, (execute::Step, Instant, String)>,
    stopped: bool,
    line_shown: bool,
}

impl Printer {
    pub(super) fn start(g: &Global, total: usize) -> Arc<Printer> {
        let tty = std::io::stderr().is_terminal() && std::env::var_os("CI").is_none();
        let p = Arc::new(Printer(Arc::new(PrinterInner {
            tty,
            quiet: g.quiet,
            verbose: g.verbose > 0,
            color: common::color_stderr(g),
            state: Mutex::new(PrinterState {
                total,
                ..Default::default()
            }),
        })));
        if tty && !g.quiet {
            let inner = p.0.clone();
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    let mut st = inner.state.lock().unwrap_or_else(|e| e.into_inner());
                    if st.stopped {
                        break;
                    }
                    inner.redraw(&mut st);
                }
            });
        }
        p
    }

    pub(super) fn finish(&self) {
        let mut st = self.0.state.lock().unwrap_or_else(|e| e.into_inner());
        st.stopped = true;
        self.0.clear(&mut st);
    }
}

impl PrinterInner {
    fn clear(&self, st: &mut PrinterState) {
        if st.line_shown {
            eprint!("\r\x1b[2K");
            st.line_shown = false;
        }
    }

    fn redraw(&self, st: &mut PrinterState) {
        if !self.tty || self.quiet || st.stopped {
            return;
        }
        self.clear(st);
        if st.running.is_empty() {
            return;
        }
        let width = terminal_width();
        let mut line = format!("[{}/{}] running:", st.finished, st.total);
        for (shown, (id, (_, started, status))) in st.running.iter().enumerate() {
            let item = format!(" {id} {status} {}", execute::fmt_elapsed(started.elapsed()));
            if line.len() + item.len() + 12 > width && shown > 0 {
                line.push_str(&format!(" (+{} more)", st.running.len() - shown));
                break;
            }
            line.push_str(&item);
            line.push(',');
        }
        if line.ends_with(',') {
            line.pop();
        }
        eprint!("{line}");
        let _ = std::io::stderr().flush();
        st.line_shown = true;
    }

    fn line(&self, st: &mut PrinterState, text: &str) {
        self.clear(st);
        eprintln!("{text}");
        self.redraw(st);
    }

    fn paint(&self, code: &str, s: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_string()
        }
    }
}

fn terminal_width() -> usize {
    std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(100)
}

impl Progress for Printer {
    fn event(&self, event: &Event) {
        let p = &self.0;
        let mut st = p.state.lock().unwrap_or_else(|e| e.into_inner());
        match event {
            Event::LeaseTaken { owner, .. } => {
                if p.verbose {
                    p.line(&mut st, &format!("Took the stack's lease as {owner}."));
                }
            }
            Event::Started { id, kind, step } => {
                st.running
                    .insert(id.to_string(), (*step, Instant::now(), step.doing().into()));
                if !p.quiet && !step.is_read() {
                    p.line(&mut st, &format!("  {id} ({kind}): {step}..."));
                }
            }
            Event::Waiting {
                id,
                status,
                elapsed,
            } => {
                if let Some(r) = st.running.get_mut(id.as_str()) {
                    r.2 = status.clone();
                }
                if !p.quiet && !p.tty {
                    p.line(
                        &mut st,
                        &format!("  {id}: {status} ({})", execute::fmt_elapsed(*elapsed)),
                    );
                }
            }
            Event::Retrying {
                id,
                error,
                attempt,
                delay,
            } => {
                if !p.quiet {
                    p.line(
                        &mut st,
                        &format!(
                            "  {id}: {error}; retry {attempt} in {}",
                            execute::fmt_elapsed(*delay)
                        ),
                    );
                }
            }
            Event::Finished {
                id,
                kind,
                step,
                elapsed,
            } => {
                st.running.remove(id.as_str());
                if step.ends_a_change() {
                    st.finished += 1;
                }
                if !p.quiet && !step.is_read() {
                    // A kind that is never deleted (a database snapshot) is released instead.
                    let released = moodlestack_model::spec(*kind).on_delete
                        == moodlestack_model::DeletePolicy::Release;
                    let done = match step.done() {
                        "deleted" if released => "released (kept in AWS)",
                        "old one deleted" if released => "old one released (kept in AWS)",
                        other => other,
                    };
                    let text = format!(
                        "  {id} ({kind}): {done} in {}",
                        execute::fmt_elapsed(*elapsed)
                    );
                    p.line(&mut st, &p.paint("32", &text));
                }
            }
            Event::Failed {
                id,
                kind,
                step,
                error,
                elapsed,
            } => {
                st.running.remove(id.as_str());
                st.finished += 1;
                let text = format!(
                    "  {id} ({kind}): {step} FAILED after {}: {error}",
                    execute::fmt_elapsed(*elapsed)
                );
                p.line(&mut st, &p.paint("31", &text));
            }
            Event::Skipped { id, reason, .. } => {
                st.finished += 1;
                if !p.quiet {
                    p.line(
                        &mut st,
                        &p.paint("33", &format!("  {id}: skipped: {reason}")),
                    );
                }
            }
            Event::Note(text) => p.line(&mut st, &format!("note: {text}")),
        }
    }
}
