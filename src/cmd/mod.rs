//! One module per command. Each returns how it ended ([`common::Exit`]) or the error, which
//! [`run`] renders once, with its fix ([`common::render_error`]).

mod apply;
mod backups;
mod clone;
mod common;
mod destroy;
mod expiry;
mod follow;
mod gc;
mod list;
mod logs;
mod outputs;
mod plan;
mod render;
mod rollback;
mod run;
mod schema;
mod stats;
mod status;
mod unlock;
mod validate;

use crate::{Cli, Command};
use std::process::ExitCode;

pub fn run(cli: Cli) -> ExitCode {
    let g = cli.global;
    let started = std::time::Instant::now();
    let outcome: common::Outcome = match cli.command {
        Command::Validate { stack } => validate::run(&g, &stack),
        Command::Schema => schema::run(&g),
        Command::Render {
            stack,
            out,
            offline,
        } => render::run(&g, &stack, &out, offline),
        Command::Plan {
            stack,
            format,
            json,
            detailed_exitcode,
            out,
            allow_data_loss,
            ttl,
            cost,
        } => expiry::parse_opt(ttl.as_deref()).and_then(|ttl| {
            plan::run(
                &g,
                &stack,
                plan::Options {
                    format: if json {
                        crate::PlanFormat::Json
                    } else {
                        format
                    },
                    detailed_exitcode,
                    out,
                    allow_data_loss,
                    ttl,
                    cost,
                },
            )
        }),
        Command::Apply {
            target,
            auto_approve,
            allow_data_loss,
            parallelism,
            ttl,
            upgrade_timeout,
        } => expiry::parse_opt(ttl.as_deref())
            .and_then(|ttl| Ok((ttl, upgrade_wait(&upgrade_timeout)?)))
            .and_then(|(ttl, upgrade_timeout)| {
                apply::run(
                    &g,
                    &target,
                    apply::Options {
                        auto_approve,
                        allow_data_loss,
                        parallelism,
                        ttl,
                        upgrade_timeout,
                    },
                )
            }),
        Command::Destroy {
            stack,
            auto_approve,
            skip_final_snapshot,
            allow_data_loss,
            parallelism,
        } => destroy::run(
            &g,
            &stack,
            destroy::Options {
                auto_approve,
                skip_final_snapshot,
                allow_data_loss,
                parallelism,
            },
        ),
        Command::List { region, json } => list::run(&g, region.as_deref(), json),
        Command::Gc {
            region,
            dry_run,
            auto_approve,
            allow_data_loss,
            parallelism,
        } => gc::run(
            &g,
            gc::Options {
                region,
                dry_run,
                auto_approve,
                allow_data_loss,
                parallelism,
            },
        ),
        Command::Run {
            stack,
            timeout,
            command,
        } => run::run(&g, &stack, run::Options { command, timeout }),
        Command::Outputs { stack, json } => outputs::run(&g, &stack, json),
        Command::Completions { shell } => {
            let mut cmd = <crate::Cli as clap::CommandFactory>::command();
            clap_complete::generate(shell, &mut cmd, "moodlestack", &mut std::io::stdout());
            Ok(common::Exit::Ok)
        }
        Command::Man => {
            let cmd = <crate::Cli as clap::CommandFactory>::command();
            clap_mangen::Man::new(cmd)
                .render(&mut std::io::stdout())
                .map(|()| common::Exit::Ok)
                .map_err(|e| {
                    common::fail(
                        format!("cannot write the manual page: {e}"),
                        "write it to a file or a pipe that accepts it",
                    )
                })
        }
        Command::Unlock { stack, yes } => unlock::run(&g, &stack, yes),
        Command::Backups { stack, json } => backups::run(&g, &stack, json),
        Command::Rollback {
            stack,
            to,
            auto_approve,
            allow_data_loss,
            parallelism,
            upgrade_timeout,
        } => upgrade_wait(&upgrade_timeout).and_then(|upgrade_timeout| {
            rollback::run(
                &g,
                &stack,
                rollback::Options {
                    to,
                    apply: apply::Options {
                        auto_approve,
                        allow_data_loss,
                        parallelism,
                        ttl: None,
                        upgrade_timeout,
                    },
                },
            )
        }),
        Command::Status { stack, json } => status::run(&g, &stack, json),
        Command::Logs {
            stack,
            node,
            source,
            since,
            follow,
            grep,
        } => logs::run(
            &g,
            &stack,
            logs::Options {
                node,
                source,
                since,
                follow,
                grep,
            },
        ),
        Command::Clone {
            stack,
            snapshot,
            source_name,
            auto_approve,
            parallelism,
            ttl,
        } => expiry::parse_opt(ttl.as_deref()).and_then(|ttl| {
            clone::run(
                &g,
                &stack,
                clone::Options {
                    snapshot,
                    source_name,
                    apply: apply::Options {
                        auto_approve,
                        allow_data_loss: false,
                        parallelism,
                        ttl,
                        upgrade_timeout: upgrade_wait(follow::DEFAULT_TIMEOUT)?,
                    },
                },
            )
        }),
    };
    let code = match outcome {
        Ok(exit) => exit.code(),
        Err(e) => {
            common::render_error(&g, &e);
            common::EXIT_ERROR
        }
    };
    if g.stats {
        eprintln!("{}", stats::report(started.elapsed()));
    }
    ExitCode::from(code)
}

/// `--upgrade-timeout`: how long to follow an upgrade on the stable node (None: `0s`, not at all).
fn upgrade_wait(text: &str) -> anyhow::Result<Option<std::time::Duration>> {
    let secs = expiry::parse_duration("--upgrade-timeout", text)?;
    Ok((secs > 0).then(|| std::time::Duration::from_secs(secs)))
}
