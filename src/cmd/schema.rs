//! `moodlestack schema`: print the JSON Schema of stack files (generated from the model; the doc
//! comments are its descriptions). `stacks/moodlestack.schema.json` is this output, committed.

use super::common::{Exit, Outcome};
use crate::Global;

pub fn run(_g: &Global) -> Outcome {
    print!("{}", moodlestack_stack::json_schema_text());
    Ok(Exit::Ok)
}
