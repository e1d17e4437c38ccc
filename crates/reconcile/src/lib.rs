//! observe -> diff -> plan -> execute. Generic over [`moodlestack_model::Cloud`]: nothing here
//! knows an AWS service.

pub mod plan;

pub use plan::{Action, Change, FieldChange, Plan, Summary, FORMAT_VERSION};
pub mod diff;
pub mod execute;
pub mod fake;
pub mod print;
