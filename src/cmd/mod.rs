//! One module per command. Each returns the process exit code.

use crate::{Cli, Command};
use std::process::ExitCode;

pub fn run(cli: Cli) -> ExitCode {
    let global = cli.global;
    let code: u8 = match cli.command {
        Command::Validate { stack } => validate(&global, &stack),
        Command::Schema => 1,
        Command::Render { .. } => 1,
        Command::Plan { .. } => 1,
        Command::Apply { .. } => 1,
        Command::Destroy { .. } => 1,
        Command::Outputs { .. } => 1,
    };
    ExitCode::from(code)
}

fn validate(global: &crate::Global, path: &std::path::Path) -> u8 {
    let options =
        moodlestack_stack::LoadOptions { name: global.name.clone(), set: global.set.clone() };
    match moodlestack_stack::load_file(path, &options) {
        Ok(stack) => {
            if !global.quiet {
                println!("{}: stack `{}` is valid", path.display(), stack.name);
            }
            0
        }
        Err(e) => {
            eprintln!("{e}");
            1
        }
    }
}
