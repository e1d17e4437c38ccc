//! `moodlestack validate`.

use super::common::{load_stack, EXIT_OK};
use crate::Global;
use std::path::Path;

pub fn run(g: &Global, path: &Path) -> u8 {
    match load_stack(g, path) {
        Ok(stack) => {
            if !g.quiet {
                println!("{}: stack `{}` is valid", path.display(), stack.name);
            }
            EXIT_OK
        }
        Err(code) => code,
    }
}
