//! Compiles a validated [`Stack`] into the desired resource graph: every resource the stack
//! should have, with its managed fields and dependencies (references).

use moodlestack_model::Resource;
use moodlestack_stack::Stack;

/// The AMI every node boots, resolved at plan time (SSM parameter or explicit id).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Image {
    pub image_id: String,
    /// `x86_64` or `arm64`.
    pub architecture: String,
    /// e.g. `/dev/sda1`.
    pub root_device_name: String,
}

#[derive(Debug, thiserror::Error)]
pub enum GraphError {
    #[error(transparent)]
    Render(#[from] moodlestack_render::RenderError),
    #[error("{0}")]
    Invalid(String),
}

/// The desired resources of `stack`, in a deterministic order (creation order).
// TODO(issue 4): build the whole graph.
pub fn build(_stack: &Stack, _image: &Image) -> Result<Vec<Resource>, GraphError> {
    Err(GraphError::Invalid("not written yet".into()))
}
