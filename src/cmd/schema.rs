//! `moodlestack schema`.

#[allow(unused_imports)]
use crate::Global;
#[allow(unused_imports)]
use std::path::Path;

// TODO: owned by the schema work.
pub fn run(_g: &Global) -> u8 {
    eprintln!("moodlestack schema: not built yet");
    1
}
