//! One module per command. Each returns the process exit code (see `main.rs`).

mod apply;
mod common;
mod destroy;
mod outputs;
mod plan;
mod render;
mod schema;
mod stats;
mod validate;

use crate::{Cli, Command};
use std::process::ExitCode;

pub fn run(cli: Cli) -> ExitCode {
    let g = cli.global;
    let started = std::time::Instant::now();
    let code: u8 = match cli.command {
        Command::Validate { stack } => validate::run(&g, &stack),
        Command::Schema => schema::run(&g),
        Command::Render {
            stack,
            out,
            offline,
        } => render::run(&g, &stack, &out, offline),
        Command::Plan {
            stack,
            json,
            detailed_exitcode,
            out,
            allow_data_loss,
        } => plan::run(
            &g,
            &stack,
            plan::Options {
                json,
                detailed_exitcode,
                out,
                allow_data_loss,
            },
        ),
        Command::Apply {
            target,
            auto_approve,
            allow_data_loss,
            parallelism,
        } => apply::run(
            &g,
            &target,
            apply::Options {
                auto_approve,
                allow_data_loss,
                parallelism,
            },
        ),
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
        Command::Outputs { stack, json } => outputs::run(&g, &stack, json),
    };
    if g.stats {
        eprintln!("{}", stats::report(started.elapsed()));
    }
    ExitCode::from(code)
}
