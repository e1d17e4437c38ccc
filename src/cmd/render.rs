//! `moodlestack render`.

#[allow(unused_imports)]
use crate::Global;
#[allow(unused_imports)]
use std::path::Path;

// TODO: owned by the render work.
pub fn run(_g: &Global, _stack: &Path, _out: &Path, _offline: bool) -> u8 {
    eprintln!("moodlestack render: not built yet");
    1
}
