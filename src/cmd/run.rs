//! `moodlestack run <stack.yaml> -- admin/cli/<script>.php [args]`: runs a Moodle CLI script on the
//! stable node through SSM Run Command (no SSH) and ends with its exit code. The command
//! (`moodlestack_render::cli_command`) runs the stack's PHP as the web server user in
//! `moodle.dirroot`, as cron and the upgrade script do. Output is printed as
//! `GetCommandInvocation` reports it (polled, each new part once), standard error to standard
//! error.

use super::common::{self, fail, Exit, Outcome};
use crate::Global;
use moodlestack_aws::run::Invocation;
use std::io::Write;
use std::path::Path;
use std::time::Duration;

pub struct Options {
    /// The script (relative to `moodle.dirroot`) and its arguments.
    pub command: Vec<String>,
    /// `executionTimeout` of the command, seconds.
    pub timeout: u64,
}

/// The logical id of the stable node (see docs/resources.md).
const STABLE: &str = moodlestack_graph::ids::STABLE_INSTANCE;

/// Checks the script path: relative to the Moodle directory, a `.php` file, no `..`.
fn check_script(script: &str) -> anyhow::Result<()> {
    let bad = script.starts_with('/')
        || script.split('/').any(|p| p == ".." || p.is_empty())
        || !script.ends_with(".php");
    if bad {
        return Err(fail(
            format!("`{script}` is not a Moodle CLI script path"),
            "give a .php path relative to the Moodle directory, e.g. `moodlestack run \
             stack.yaml -- admin/cli/purge_caches.php` or `-- admin/cli/cron.php --keep-alive=0`",
        ));
    }
    Ok(())
}

/// What is new in `now` since `before` was printed (SSM reports the output so far each time).
fn new_part<'a>(before: &str, now: &'a str) -> &'a str {
    now.strip_prefix(before).unwrap_or(now)
}

/// The process's exit code for an ended invocation, or the error saying what happened.
pub fn outcome(inv: &Invocation, timeout: u64) -> anyhow::Result<Exit> {
    match inv.status.as_str() {
        "Success" => Ok(Exit::Code(u8::try_from(inv.response_code).unwrap_or(0))),
        "Failed" if (1..=255).contains(&inv.response_code) => {
            Ok(Exit::Code(u8::try_from(inv.response_code).unwrap_or(1)))
        }
        "TimedOut" => Err(fail(
            format!(
                "the script did not finish within {timeout} s (SSM: {})",
                inv.status_details
            ),
            "run it again with a longer --timeout SECONDS",
        )),
        "Undeliverable" | "Terminated" | "DeliveryTimedOut" => Err(fail(
            format!(
                "SSM could not run the command on the stable node ({}: {})",
                inv.status, inv.status_details
            ),
            "check that the stable node is running and its SSM agent is online (`aws ssm \
             describe-instance-information`); it needs outbound HTTPS (the NAT gateway) and the \
             node role's AmazonSSMManagedInstanceCore",
        )),
        other => Err(fail(
            format!(
                "the command ended as {other} (exit code {}): {}",
                inv.response_code, inv.status_details
            ),
            "look at the output above; run it again",
        )),
    }
}

pub fn run(g: &Global, path: &Path, o: Options) -> Outcome {
    let stack = common::load_stack(g, path)?;
    let Some((script, args)) = o.command.split_first() else {
        return Err(fail(
            "no script to run",
            "name one after `--`: `moodlestack run stack.yaml -- admin/cli/purge_caches.php`",
        ));
    };
    check_script(script)?;
    if o.timeout == 0 {
        return Err(fail(
            "--timeout 0",
            "give the script some seconds: --timeout 3600",
        ));
    }
    let command = moodlestack_render::cli_command(&stack, script, args);
    common::with_cloud(&stack, async |cloud, scope| {
        let found = cloud
            .running_instances(scope, STABLE)
            .await
            .map_err(|e| anyhow::Error::new(e).context("cannot find the stack's stable node"))?;
        let instance =
            match found.as_slice() {
                [one] => one.clone(),
                [] => return Err(fail(
                    format!(
                        "stack `{}` has no running stable node in {}",
                        scope.stack, scope.region
                    ),
                    "apply the stack (`moodlestack apply`), or wait for a replaced node to start",
                )),
                many => many.iter().min().cloned().expect("not empty"),
            };
        if !g.quiet {
            eprintln!("Running on {instance} (stack `{}`): {command}", scope.stack);
        }
        let comment = format!("moodlestack run {script}");
        let command_id = cloud
            .send_shell_command(&instance, &command, &comment, o.timeout)
            .await?;
        let mut shown = Invocation::default();
        let mut wait = Duration::from_millis(200);
        loop {
            let now = cloud.command_invocation(&command_id, &instance).await?;
            if let Some(inv) = now {
                print!("{}", new_part(&shown.stdout, &inv.stdout));
                eprint!("{}", new_part(&shown.stderr, &inv.stderr));
                let _ = std::io::stdout().flush();
                if !inv.running() {
                    return outcome(&inv, o.timeout);
                }
                shown = inv;
            }
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(Duration::from_secs(2));
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_relative_php_paths_are_scripts() {
        assert!(check_script("admin/cli/purge_caches.php").is_ok());
        assert!(check_script("auth/ldap/cli/sync_users.php").is_ok());
        for bad in [
            "/etc/passwd.php",
            "../x.php",
            "admin/cli/cron",
            "admin//x.php",
        ] {
            assert!(check_script(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ended_invocations_map_to_exit_codes() {
        let inv = |status: &str, code: i32| Invocation {
            status: status.into(),
            response_code: code,
            ..Invocation::default()
        };
        assert_eq!(outcome(&inv("Success", 0), 60).unwrap(), Exit::Code(0));
        assert_eq!(outcome(&inv("Failed", 3), 60).unwrap(), Exit::Code(3));
        assert!(outcome(&inv("TimedOut", -1), 60).is_err());
        assert!(outcome(&inv("Undeliverable", -1), 60).is_err());
        assert_eq!(new_part("ab", "abcd"), "cd");
    }
}
