//! Compiles a validated [`Stack`] into the desired resource graph: every resource the stack
//! should have, with its managed fields and dependencies (references).
//!
//! Field names and shapes follow `moodlestack_model::kind` exactly; logical ids follow the list in
//! the project brief (`net.vpc`, `sg.web`, `db.instance`, ...); every AWS name comes from
//! [`Names`].

mod build;
pub mod interp;
mod network;
mod order;

use moodlestack_model::Resource;
use moodlestack_render::{Endpoints, RenderError, Role};
use moodlestack_stack::Stack;

pub use build::{
    code_version, ids, log_group_id, CRON_HEARTBEAT, FPM_MAX_CHILDREN, GROUP_METRICS, LOG_SOURCES,
    SLOW_REQUESTS,
};
pub use interp::{interpolate, marker};
pub use network::{check_existing_network, existing_network_problems};

/// The AMI every node boots, resolved at plan time (SSM parameter or explicit id).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Image {
    pub image_id: String,
    /// `x86_64` or `arm64`.
    pub architecture: String,
    /// e.g. `/dev/sda1`.
    pub root_device_name: String,
    /// The AWS account the stack is built in (12 digits), resolved beside the AMI: part of the
    /// code bucket's name, which AWS keeps global.
    pub account_id: String,
}

#[derive(Debug, thiserror::Error)]
pub enum GraphError {
    #[error(transparent)]
    Render(#[from] moodlestack_render::RenderError),
    /// The graph is inconsistent: a bug in the builder.
    #[error("{0}")]
    Invalid(String),
    /// The stack cannot be built as it is (checks the stack file's rules cannot make alone).
    #[error("{problem}")]
    Unbuildable { problem: String, fix: String },
}

impl GraphError {
    fn unbuildable(problem: impl Into<String>, fix: impl Into<String>) -> Self {
        GraphError::Unbuildable {
            problem: problem.into(),
            fix: fix.into(),
        }
    }
}

impl moodlestack_model::Hint for GraphError {
    fn hint(&self) -> Option<String> {
        match self {
            GraphError::Render(_) => None,
            GraphError::Invalid(_) => Some(
                "this is a bug in moodlestack's graph builder: please report it with the stack \
                 file"
                    .into(),
            ),
            GraphError::Unbuildable { fix, .. } => Some(fix.clone()),
        }
    }
}

/// The desired resources of `stack`, in a deterministic order (creation order): by tier, then
/// id, with every resource after the ones it references. Every reference points at a resource
/// of the returned graph and the graph has no cycle (checked; a failure is an internal error).
pub fn build(stack: &Stack, image: &Image) -> Result<Vec<Resource>, GraphError> {
    build_with(stack, image, &moodlestack_render::user_data)
}

/// A renderer of user-data: `moodlestack_render::user_data` or, in tests, a stand-in.
pub type UserDataFn = dyn Fn(&Stack, Role, &Endpoints) -> Result<String, RenderError>;

/// [`build`] with the user-data renderer given.
pub fn build_with(
    stack: &Stack,
    image: &Image,
    user_data: &UserDataFn,
) -> Result<Vec<Resource>, GraphError> {
    let resources = build::Builder::new(stack, image, user_data)?.build()?;
    order::check_and_order(resources)
}

/// The [`Endpoints`] the graph passes to the renderer: every value known only after apply is a
/// [`marker`] of the attribute it stands for; the region and the ports (set by the stack) are
/// literal.
pub fn marker_endpoints(stack: &Stack) -> Endpoints {
    let db = build::db_endpoint_resource(stack);
    Endpoints {
        region: stack.region.clone(),
        db_host: marker(db, "endpoint"),
        db_port: stack.database.engine.port().to_string(),
        db_secret_arn: marker(db, "secret_arn"),
        redis_host: marker(build::ids::CACHE_REDIS, "primary_endpoint"),
        redis_port: build::REDIS_PORT.to_string(),
        redis_auth_secret_arn: stack
            .cache
            .auth
            .then(|| marker(build::ids::CACHE_AUTH, "arn")),
        efs_id: marker(build::ids::FILES_FS, "id"),
        code_bucket: marker(build::ids::CODE_BUCKET, "id"),
    }
}

#[cfg(test)]
mod tests;

/// Puts the expiry tag ([`moodlestack_model::TAG_EXPIRES`] = `expires_at`, RFC 3339 UTC) on every
/// resource of `desired` that has tags (`apply --ttl`). Untaggable resources go with their parent.
pub fn set_expiry(desired: &mut [Resource], expires_at: &str) {
    for r in desired {
        if let Some(moodlestack_model::Value::Map(tags)) = r.fields.get_mut("tags") {
            tags.insert(
                moodlestack_model::TAG_EXPIRES.to_string(),
                moodlestack_model::Value::str(expires_at),
            );
        }
    }
}
