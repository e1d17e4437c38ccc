//! The boundary to the cloud: one trait, implemented by the AWS SDK service modules
//! (`moodlestack-aws`) and by the in-memory fake (`moodlestack-reconcile::fake`).
//!
//! The executor drives it: `create`/`update`/`delete` start a change and return promptly with
//! what is known; `poll` is called with back-off until the resource is usable (or gone). Calls
//! never sleep on their own.

use crate::{Fields, Kind, Observed, Resource, ResourceId};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

/// Which stack a call is for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Scope {
    /// The stack name (value of the `moodlestack:stack` tag, prefix of every name).
    pub stack: String,
    /// The AWS region.
    pub region: String,
}

impl Scope {
    /// The SSM parameter that holds the stack's apply lease (`/moodlestack/<stack>/lease`).
    pub fn lease_parameter(&self) -> String {
        format!("/moodlestack/{}/lease", self.stack)
    }
}

/// Where a resource is, as seen by `poll`.
#[derive(Clone, Debug, PartialEq)]
pub enum Readiness {
    /// Usable; the observation carries the final attributes (endpoints, ARNs).
    Ready(Observed),
    /// Still being created, modified or deleted; the service's status word.
    Pending(String),
    /// It no longer exists.
    Gone,
    /// It reached a state it will not leave by itself (`failed`, `incompatible-parameters`).
    Failed(String),
}

/// What `poll` waits for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Want {
    /// Usable.
    Ready,
    /// Deleted.
    Gone,
}

/// Options for deletes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeleteOptions {
    /// Databases: take a final snapshot with this identifier (None: skip the final snapshot).
    pub final_snapshot_id: Option<String>,
    /// Lift deletion protection before deleting (only with `--allow-data-loss`).
    pub lift_deletion_protection: bool,
}

/// Facts about an AMI used for validation and launch templates.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageInfo {
    /// `ami-...`.
    pub image_id: String,
    /// `x86_64` or `arm64`.
    pub architecture: String,
    /// e.g. `/dev/sda1` (Ubuntu) or `/dev/xvda`.
    pub root_device_name: String,
}

/// Who holds the stack's apply lease.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseInfo {
    /// `user@host pid N`.
    pub owner: String,
    /// Seconds since the Unix epoch.
    pub acquired_at: u64,
    /// When the lease runs out unless renewed (seconds since the Unix epoch).
    pub expires_at: u64,
}

/// An error from below, kept as the source of a [`CloudError`].
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// What went wrong talking to the cloud. Each variant carries the facts; [`Hint::hint`] says
/// what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum CloudError {
    /// The resource does not exist (any more).
    #[error("{0} not found")]
    NotFound(String),
    /// Another apply holds the stack's lease.
    #[error("stack is locked by {} since {} (lease expires at {})", .0.owner, .0.acquired_at, .0.expires_at)]
    LeaseHeld(LeaseInfo),
    /// The service refused the request; `operation` is e.g. `rds:CreateDBInstance`, `code` the
    /// AWS error code, `message` its text.
    #[error("{operation}: {code}: {message}")]
    Api {
        /// `service:Operation`.
        operation: String,
        /// AWS's error code (`DependencyViolation`).
        code: String,
        /// AWS's message.
        message: String,
        /// The SDK's error, when there is one.
        #[source]
        source: Option<BoxError>,
    },
    /// No answer: the request did not reach the service or the answer was unreadable (network,
    /// credentials, endpoint, timeout).
    #[error("{operation}: {detail}")]
    Transport {
        /// `service:Operation`.
        operation: String,
        /// The SDK's account of it, causes included.
        detail: String,
        /// The SDK's error.
        #[source]
        source: BoxError,
    },
    /// A field the kind needs is missing or has the wrong shape (a bug in the graph builder).
    #[error("{kind} {id}: field {field}: {problem}")]
    Field {
        /// The resource's kind.
        kind: Kind,
        /// The resource.
        id: ResourceId,
        /// The field.
        field: String,
        /// What is wrong with it.
        problem: String,
    },
    /// The deterministic name moodlestack would give a resource is taken by one that is not
    /// this resource of this stack (another stack's, a hand-made one, or one being deleted).
    #[error("{kind} `{name}` already exists and {holder}")]
    NameTaken {
        /// The kind of the resource being created.
        kind: Kind,
        /// The name it needs.
        name: String,
        /// Whose it is, or why it cannot be taken over (`belongs to stack x`, ...).
        holder: String,
        /// What to do.
        fix: String,
    },
    /// The service answered, but not as documented (a create that returns no id, a resource
    /// that loses its tags right after creation).
    #[error("{operation}: {what}")]
    UnexpectedAnswer {
        /// `service:Operation`.
        operation: String,
        /// What was missing or wrong.
        what: String,
    },
}

/// An error that knows how to fix what it reports. Renderers print the hint after the message
/// (`  fix: ...`); the message never spells the fix itself.
pub trait Hint {
    /// What the user can do about it, if anything specific.
    fn hint(&self) -> Option<String>;
}

impl Hint for CloudError {
    fn hint(&self) -> Option<String> {
        match self {
            CloudError::NotFound(_) => None,
            CloudError::LeaseHeld(_) => {
                Some("wait for it to finish, or if it crashed wait for the lease to expire".into())
            }
            CloudError::Api {
                operation, code, ..
            } => api_hint(operation, code),
            CloudError::Transport { .. } => Some(
                "check the network, the AWS credentials and region (AWS_PROFILE, \
                 AWS_ACCESS_KEY_ID, AWS_REGION) and, for an emulator, AWS_ENDPOINT_URL"
                    .into(),
            ),
            CloudError::Field { .. } => Some(
                "this is a bug in moodlestack's graph builder: please report it with the stack \
                 file"
                    .into(),
            ),
            CloudError::NameTaken { fix, .. } => Some(fix.clone()),
            CloudError::UnexpectedAnswer { .. } => Some(
                "run the same command again; if it repeats, the service or emulator misbehaves: \
                 please report it"
                    .into(),
            ),
        }
    }
}

fn api_hint(operation: &str, code: &str) -> Option<String> {
    match code {
        "AccessDenied"
        | "AccessDeniedException"
        | "UnauthorizedOperation"
        | "AuthFailure"
        | "UnrecognizedClientException"
        | "InvalidClientTokenId"
        | "ExpiredToken"
        | "ExpiredTokenException" => Some(format!(
            "the credentials may not call {operation}: check them (expired session?) and grant \
             the actions listed in docs/aws.md"
        )),
        "Throttling" | "ThrottlingException" | "RequestLimitExceeded" => {
            Some("AWS is throttling this account: run the same command again in a minute".into())
        }
        c if c.ends_with("QuotaExceeded") || c.contains("LimitExceeded") => Some(format!(
            "an AWS quota was reached by {operation}: delete unused resources or ask AWS for a \
             higher quota (Service Quotas console)"
        )),
        _ => None,
    }
}

impl CloudError {
    /// The AWS error code, for [`CloudError::Api`].
    pub fn code(&self) -> Option<&str> {
        match self {
            CloudError::Api { code, .. } => Some(code),
            _ => None,
        }
    }

    /// Transient errors (throttling, dependency still settling) that the executor may retry.
    pub fn is_retryable(&self) -> bool {
        match self {
            // A new IAM instance profile takes seconds to become visible to EC2 and Auto
            // Scaling, which meanwhile call its ARN invalid: AWS gives this case no code of its
            // own, so the message tells it apart.
            CloudError::Api { code, message, .. }
                if matches!(code.as_str(), "InvalidParameterValue" | "ValidationError")
                    && (message.to_ascii_lowercase().contains("instance profile")
                        || message.contains("iamInstanceProfile")) =>
            {
                true
            }
            CloudError::Api { code, .. } => matches!(
                code.as_str(),
                "Throttling"
                    | "ThrottlingException"
                    | "RequestLimitExceeded"
                    | "DependencyViolation"
                    | "InvalidDBInstanceState"
                    | "InvalidCacheClusterState"
                    | "InvalidReplicationGroupState"
                    | "IncorrectFileSystemLifeCycleState"
                    | "ResourceInUse"
                    | "ResourceInUseFault"
                    | "ScalingActivityInProgress"
                    | "IncorrectState"
            ),
            _ => false,
        }
    }
}

/// The cloud as moodlestack sees it. Every method takes resolved fields: no [`crate::Value::Ref`],
/// [`crate::Value::Interpolated`] or [`crate::Value::Unknown`] remains in them.
#[async_trait]
pub trait Cloud: Send + Sync {
    /// Every resource of the stack that exists: found by the `moodlestack:stack` tag (one
    /// paginated describe per kind, with tag filters where the API has them) or, for kinds whose
    /// describe cannot filter by tag, by the deterministic names in `desired` (all names start
    /// with `<stack>-`). Untaggable kinds (see [`crate::KindSpec::identity`]: EFS mount targets of
    /// the stack's file systems, listeners of the stack's load balancers) are returned with the id
    /// [`crate::ObservedId::Untagged`] and their identity fields filled in; the reconciler matches them
    /// to desired resources by the resolved identity fields (unmatched ones are deleted).
    async fn observe(
        &self,
        scope: &Scope,
        desired: &[Resource],
    ) -> Result<Vec<Observed>, CloudError>;

    /// Starts creating the resource, with all its tags on the create call itself and an
    /// idempotency token where the API has one. Returns at once with what is known.
    async fn create(
        &self,
        scope: &Scope,
        id: &ResourceId,
        kind: Kind,
        fields: &Fields,
    ) -> Result<Observed, CloudError>;

    /// Changes the listed fields in place (names from the kind's spec) to the values in `fields`.
    async fn update(
        &self,
        scope: &Scope,
        current: &Observed,
        fields: &Fields,
        changed: &[String],
    ) -> Result<Observed, CloudError>;

    /// Starts deleting the resource.
    async fn delete(
        &self,
        scope: &Scope,
        current: &Observed,
        options: &DeleteOptions,
    ) -> Result<(), CloudError>;

    /// One look at the resource (no sleeping): ready, still pending, gone or failed.
    async fn poll(
        &self,
        scope: &Scope,
        current: &Observed,
        want: Want,
    ) -> Result<Readiness, CloudError>;

    /// Reads an SSM parameter (AMI ids from public parameters such as
    /// `/aws/service/canonical/ubuntu/server/24.04/stable/current/amd64/hvm/ebs-gp3/ami-id`).
    async fn resolve_parameter(&self, name: &str) -> Result<String, CloudError>;

    /// Facts about an AMI, or None if it does not exist.
    async fn image(&self, image_id: &str) -> Result<Option<ImageInfo>, CloudError>;

    /// Takes the stack's apply lease for `ttl`, or fails with [`CloudError::LeaseHeld`] naming the
    /// holder. An expired lease is taken over.
    async fn acquire_lease(
        &self,
        scope: &Scope,
        owner: &str,
        ttl: Duration,
    ) -> Result<LeaseInfo, CloudError>;

    /// Releases the lease if `owner` holds it.
    async fn release_lease(&self, scope: &Scope, owner: &str) -> Result<(), CloudError>;
}

/// Tags every resource of `scope` carries, plus its logical id.
pub fn identity_tags(scope: &Scope, id: &impl std::fmt::Display) -> BTreeMap<String, String> {
    BTreeMap::from([
        (crate::TAG_STACK.to_string(), scope.stack.clone()),
        (crate::TAG_ID.to_string(), id.to_string()),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(code: &str, message: &str) -> CloudError {
        CloudError::Api {
            operation: "x".into(),
            code: code.into(),
            message: message.into(),
            source: None,
        }
    }

    #[test]
    fn instance_profile_propagation_is_retried() {
        assert!(api(
            "InvalidParameterValue",
            "Invalid IAM Instance Profile ARN: arn:..."
        )
        .is_retryable());
        assert!(api(
            "ValidationError",
            "You are not authorized to use iamInstanceProfile.arn"
        )
        .is_retryable());
        assert!(!api(
            "InvalidParameterValue",
            "Value (x) for parameter cidrBlock is invalid"
        )
        .is_retryable());
        assert!(api("DependencyViolation", "resource has a dependent object").is_retryable());
        assert!(!api("ValidationError", "bad name").is_retryable());
    }
}
