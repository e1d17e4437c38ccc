//! `moodlestack outputs`.

#[allow(unused_imports)]
use crate::Global;
#[allow(unused_imports)]
use std::path::Path;

// TODO: owned by the outputs work.
pub fn run(_g: &Global, _stack: &Path, _json: bool) -> u8 {
    eprintln!("moodlestack outputs: not built yet");
    1
}
