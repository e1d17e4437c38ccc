//! After an `apply` (or `rollback`) that changed the code version, the rest of the upgrade runs
//! on the new stable node: maintenance mode, `admin/cli/upgrade.php`, maintenance mode off, the
//! smoke test. This follows that node's install/upgrade log in CloudWatch Logs (the stack's
//! `install-upgrade` group, which its agent ships) and reports each line as it comes, until the
//! smoke test's result or a state the node does not retry, or until `--upgrade-timeout`.
//! What the lines mean is [`UpgradeLine`], beside the scripts that print them.

use super::common::{fail, Exit, Outcome};
use super::status::STABLE;
use crate::Global;
use moodlestack_aws::logs::{Cursor, LogQuery, Streams};
use moodlestack_aws::AwsCloud;
use moodlestack_model::cloud::human_duration;
use moodlestack_model::TAG_CODE;
use moodlestack_reconcile::Plan;
use moodlestack_render::upgrade_log::UpgradeLine;
use moodlestack_stack::names::{Names, INSTALL_UPGRADE};
use std::io::Write;
use std::time::{Duration, Instant};

/// How often the log is read.
const EVERY: Duration = Duration::from_secs(3);

/// The default `--upgrade-timeout`: what a large Moodle site's upgrade may take.
pub const DEFAULT_TIMEOUT: &str = "60m";

/// The code versions (`v4.5.5 php8.3`) a plan changes from and to, if it changes one: a
/// replaced resource whose `moodlestack:code` tag changes (the code version's snapshot).
pub fn code_change(plan: &Plan) -> Option<(String, String)> {
    plan.changes.iter().find_map(|c| {
        let tags = c.fields.iter().find(|f| f.field == "tags")?;
        let code = |v: Option<&moodlestack_model::Value>| {
            v?.as_map()?.get(TAG_CODE)?.as_str().map(str::to_string)
        };
        let (old, new) = (code(tags.old.as_ref())?, code(tags.new.as_ref())?);
        (old != new).then_some((old, new))
    })
}

/// What to follow and how long.
pub struct Follow<'a> {
    pub stack: &'a str,
    pub region: &'a str,
    pub from: &'a str,
    pub to: &'a str,
    /// Lines from this time on (milliseconds since the epoch): the apply's start.
    pub since_ms: i64,
    pub timeout: Duration,
    /// `<stack.yaml> [--name N]` as the user gave them, for the hints.
    pub file_args: String,
}

/// Follows the new stable node's install/upgrade log until its final line.
pub async fn follow(g: &Global, cloud: &AwsCloud, f: &Follow<'_>) -> Outcome {
    let names = Names::for_stack(f.stack, f.region);
    let group = names.log_group(INSTALL_UPGRADE);
    let later = format!(
        "`moodlestack logs {} --node stable --source upgrade --follow`",
        f.file_args
    );
    let rollback = format!("`moodlestack rollback {} --allow-data-loss`", f.file_args);
    let nodes = cloud
        .instance_ids(f.stack, STABLE, &["pending", "running"])
        .await
        .map_err(|e| anyhow::Error::new(e).context("cannot find the stack's stable node"))?;
    if nodes.is_empty() {
        return Err(fail(
            format!(
                "stack `{}` has no running stable node to upgrade Moodle's database",
                f.stack
            ),
            "run apply again: it replaces a stable node that is gone",
        ));
    }
    println!(
        "\nMoodle upgrade {} -> {}: the stable node {} upgrades the database now. Following its \
         log ({group}) until the smoke test, at most {} (--upgrade-timeout; Ctrl-C stops \
         following, not the upgrade):",
        f.from,
        f.to,
        nodes.join(", "),
        human_duration(f.timeout.as_secs())
    );
    let q = LogQuery {
        groups: vec![(INSTALL_UPGRADE.to_string(), group.clone())],
        streams: Streams::Only(nodes.clone()),
        pattern: None,
    };
    let mut cursor = Cursor::new(f.since_ms);
    let deadline = Instant::now() + f.timeout;
    loop {
        let read = cloud
            .log_events(&q, &mut cursor)
            .await
            .map_err(|e| anyhow::Error::new(e).context("cannot read the stable node's log"))?;
        for e in &read.events {
            if !g.quiet {
                println!("  {}", super::logs::line(e, &nodes));
                let _ = std::io::stdout().flush();
            }
            match UpgradeLine::of(&e.message) {
                UpgradeLine::Step => {}
                UpgradeLine::AttemptFailed => eprintln!(
                    "note: this attempt failed on the stable node; the site stays in maintenance \
                     mode and systemd retries in a minute (Moodle resumes from its last \
                     savepoint). Still following; fix the cause meanwhile, or stop and run \
                     {rollback}."
                ),
                UpgradeLine::Passed => {
                    if !g.quiet {
                        println!(
                            "\nUpgrade to {} done: the database is upgraded, maintenance mode is \
                             off and the smoke test passed on the stable node {}.",
                            f.to, e.node
                        );
                    }
                    return Ok(Exit::Ok);
                }
                UpgradeLine::SkippedInMaintenance => {
                    eprintln!(
                        "note: the database is at {} but maintenance mode that was on before the \
                         upgrade (set by hand) is still on, and the smoke test was skipped. \
                         Turn it off when ready: `moodlestack run {} -- \
                         admin/cli/maintenance.php --disable`.",
                        f.to, f.file_args
                    );
                    return Ok(Exit::Ok);
                }
                UpgradeLine::SmokeFailed => {
                    return Err(fail(
                        format!(
                            "the upgrade to {} is done, but the smoke test failed on the stable \
                             node {} (its lines above)",
                            f.to, e.node
                        ),
                        format!(
                            "fix what failed (the login page, the health check or cron), then \
                             run the test again on the stable node: `sudo moodle-smoke-test`; or \
                             go back: {rollback}"
                        ),
                    ));
                }
                UpgradeLine::Stopped => {
                    return Err(fail(
                        format!(
                            "the stable node {} stopped the upgrade to {}: {}",
                            e.node, f.to, e.message
                        ),
                        format!(
                            "it is not retried: a person must look ({later}); then `systemctl \
                             restart moodle-install-upgrade` on the node, or {rollback}"
                        ),
                    ));
                }
            }
        }
        if Instant::now() >= deadline {
            return Err(fail(
                format!(
                    "no result from the stable node after {}: the upgrade may still be running \
                     (the site is in maintenance mode meanwhile)",
                    human_duration(f.timeout.as_secs())
                ),
                format!(
                    "follow it with {later}; next time pass a longer --upgrade-timeout \
                     (or --upgrade-timeout 0s not to wait)"
                ),
            ));
        }
        tokio::select! {
            () = tokio::time::sleep(EVERY) => {}
            _ = tokio::signal::ctrl_c() => {
                eprintln!(
                    "\nStopped following; the upgrade goes on on the stable node. Follow it with \
                     {later}."
                );
                return Ok(Exit::Interrupted);
            }
        }
    }
}
