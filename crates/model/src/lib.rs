//! The contract between the layers of moodlestack.
//!
//! Data flows one way: a validated `Stack` is compiled (crate `moodlestack-graph`) into a list of
//! desired [`Resource`]s; a [`Cloud`] (crate `moodlestack-aws`, or the in-memory fake in
//! `moodlestack-reconcile`) reports the [`Observed`] resources of the stack; the generic diff in
//! `moodlestack-reconcile` compares the two field by field using the per-kind [`KindSpec`] table,
//! and the executor calls back into the [`Cloud`] to converge.
//!
//! Nothing here knows an AWS SDK type. Every kind's managed properties are a canonical
//! [`Fields`] map whose keys are listed in [`kind::spec`]; the graph builder writes those keys and
//! the service modules read and report exactly those keys.

pub mod cloud;
pub mod kind;
pub mod resource;
pub mod value;

pub use cloud::{
    identity_tags, Cloud, CloudError, DeleteOptions, ImageInfo, LeaseInfo, Readiness, Scope, Want,
};
pub use kind::{spec, Compare, FieldSpec, Kind, KindSpec, OnChange};
pub use resource::{Observed, Resource, ResourceId, TAG_ID, TAG_STACK};
pub use value::{Fields, Ref, Segment, Value};
