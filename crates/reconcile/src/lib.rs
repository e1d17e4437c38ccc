//! observe -> diff -> plan -> execute. Generic over [`moodlestack_model::Cloud`] and the per-kind
//! descriptors ([`moodlestack_model::KindSpec`]): nothing here knows an AWS service or names a
//! kind outside tests.

pub mod plan;

pub use plan::{Action, Change, FieldChange, Plan, Summary, FORMAT_VERSION};
pub mod cost;
pub mod diff;
pub mod execute;
/// The in-memory cloud of the executor tests: only in test builds (feature `fake`, like tokio's
/// `test-util`), never in the binary.
#[cfg(any(test, feature = "fake"))]
pub mod fake;
pub mod print;
#[cfg(test)]
mod test_support;
