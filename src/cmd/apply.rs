//! `moodlestack apply`.

use crate::Global;
use std::path::Path;

pub struct Options {
    pub auto_approve: bool,
    pub allow_data_loss: bool,
    pub parallelism: usize,
}

// TODO: owned by the apply work.
pub fn run(_g: &Global, _target: &Path, _o: Options) -> u8 {
    eprintln!("moodlestack apply: not built yet");
    1
}
