//! The contract between the layers of moodlestack.
//!
//! Data flows one way: a validated `Stack` is compiled (crate `moodlestack-graph`) into a list of
//! desired [`Resource`]s; a [`Cloud`] (crate `moodlestack-aws`, or the in-memory fake in
//! `moodlestack-reconcile`) reports the [`Observed`] resources of the stack; the generic diff in
//! `moodlestack-reconcile` compares the two field by field using the per-kind descriptors
//! ([`KindSpec`], one file per AWS service under `kind/`), and the executor calls back into the
//! [`Cloud`] to converge.
//!
//! Nothing here knows an AWS SDK type. Every kind's managed properties are a canonical
//! [`Fields`] map whose keys are listed in [`kind::spec`]; the graph builder writes those keys and
//! the service modules read and report exactly those keys (a test of `moodlestack-aws` checks
//! every kind's observation against its descriptor).
#![deny(missing_docs)]

pub mod change;
pub mod cloud;
pub mod cost;
pub mod kind;
pub mod order;
pub mod resource;
pub mod retry;
pub mod user_data;
pub mod value;

pub use change::{Action, ChangeView, Delta, FieldChange, KeyChange, Note, NoteKind};
pub use cloud::{
    identity_tags, BoxError, Cloud, CloudError, DeleteOptions, Hint, ImageInfo, LeaseInfo,
    NetworkInfo, Readiness, RestorePoint, Scope, SubnetInfo, VpcInfo, Want,
};
pub use cost::{Price, PriceQuery, Priced, Pricing, Usage, UsageCx, HOURS_PER_MONTH};
pub use kind::{
    spec, version_satisfies, Compare, DeletePolicy, DeleteRisk, FieldSpec, Kind, KindSpec,
    OnChange, PhysicalId, ReplaceOrder, TAG_CODE, TAG_CODE_BEFORE, TAG_NAME, TAG_RESTORED_FROM,
};
pub use order::{topo, OrderError};
pub use resource::{
    Lifecycle, Observed, ObservedId, Resource, ResourceId, TAG_EXPIRES, TAG_ID, TAG_STACK,
};
pub use value::{Fields, Ref, Segment, Value};
