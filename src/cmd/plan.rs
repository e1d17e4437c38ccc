//! `moodlestack plan`.

use crate::Global;
use std::path::{Path, PathBuf};

pub struct Options {
    pub json: bool,
    pub detailed_exitcode: bool,
    pub out: Option<PathBuf>,
    pub allow_data_loss: bool,
}

// TODO: owned by the plan work.
pub fn run(_g: &Global, _stack: &Path, _o: Options) -> u8 {
    eprintln!("moodlestack plan: not built yet");
    1
}
