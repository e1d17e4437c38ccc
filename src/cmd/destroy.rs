//! `moodlestack destroy`.

use crate::Global;
use std::path::Path;

pub struct Options {
    pub auto_approve: bool,
    pub skip_final_snapshot: bool,
    pub allow_data_loss: bool,
    pub parallelism: usize,
}

// TODO: owned by the apply work.
pub fn run(_g: &Global, _stack: &Path, _o: Options) -> u8 {
    eprintln!("moodlestack destroy: not built yet");
    1
}
