//! The retry policy: what is retried, where, and for how long. The one place that defines it.
//!
//! Two layers, each retrying what it can see:
//! - **Every request** (the AWS SDK, configured from [`SDK`] by `moodlestack_aws`): throttling
//!   (`Throttling`, `ThrottlingException`, `RequestLimitExceeded`, HTTP 429), HTTP 5xx and
//!   transient network errors are retried up to [`SdkRetry::max_attempts`] times with jittered
//!   exponential back-off (the SDK's standard mode). Observe, plan, apply and destroy all go
//!   through it. The SDK's adaptive mode (`AWS_RETRY_MODE=adaptive`: after a throttling answer
//!   the client also slows its own sending rate) is not the default: with 20 % of requests
//!   failing at random, the apply, plan and destroy of the production stack on the emulator
//!   (`tests/integration/faults.rs`) took about 9.5 minutes (577 s) instead of 30 s, once each,
//!   2026-11-30. (Likely cause, not measured: the limiter slows the sending rate after each
//!   throttling answer, and injected throttling does not ease off as real throttling does.)
//! - **Every step** (the executor): what a request-level retry cannot fix by waiting seconds.
//!   [`Transient::Throttled`] (the SDK gave up: a throttling burst longer than its attempts) is
//!   retried [`STEP_RETRIES`] more times with the executor's back-off; [`Transient::Settling`]
//!   (a state conflict that clears by itself: the resource or one it depends on is still
//!   `modifying`, a deleted load balancer's network interfaces still hold the subnet, a new IAM
//!   instance profile is not visible to EC2 yet) is retried until the kind's
//!   [`crate::KindSpec::ready_timeout`] has passed.

use crate::CloudError;
use std::time::Duration;

/// The request-level retry of every AWS client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SdkRetry {
    /// Attempts per request, the first included (the SDK's default is 3; Terraform's AWS provider
    /// allows 25). With 10, a request fails only after 10 answers in a row were throttling or
    /// 5xx: at a 20 % failure rate, one request in ten million.
    pub max_attempts: u32,
    /// The first back-off (jittered: a random share of it, doubling per attempt).
    pub initial_backoff: Duration,
    /// The longest back-off between two attempts. The 9 back-offs of 10 attempts add up to 90 s
    /// at most (jittered: 45 s on average); each executor retry of the step starts them again.
    pub max_backoff: Duration,
}

/// The policy of every AWS client.
pub const SDK: SdkRetry = SdkRetry {
    max_attempts: 10,
    initial_backoff: Duration::from_millis(500),
    max_backoff: Duration::from_secs(20),
};

/// How many times the executor retries a step whose request the SDK gave up on for throttling or
/// a 5xx answer.
pub const STEP_RETRIES: u32 = 6;

/// Why a failed request may succeed if tried again later.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transient {
    /// Throttling or a service error (HTTP 5xx) that outlasted the SDK's attempts.
    Throttled,
    /// A state conflict that clears by itself: retried until the kind's timeout.
    Settling,
}

/// Error codes of throttling and of services answering 5xx.
const THROTTLED: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "RequestLimitExceeded",
    "TooManyRequestsException",
    "RequestThrottled",
    // S3's throttling (HTTP 503).
    "SlowDown",
    "ServiceUnavailable",
    "Unavailable",
    "InternalError",
    "InternalFailure",
];

/// Error codes of state conflicts that clear by themselves (AWS API references: each service's
/// "Errors" section).
const SETTLING: &[&str] = &[
    // EC2: a subnet, group or gateway still used by network interfaces AWS is removing.
    "DependencyViolation",
    "IncorrectState",
    // RDS: the instance, cluster or parameter group is being modified, backed up or created.
    "InvalidDBInstanceState",
    "InvalidDBInstanceStateFault",
    "InvalidDBClusterStateFault",
    "InvalidDBParameterGroupState",
    "InvalidDBSubnetGroupStateFault",
    // ElastiCache: the replication group or cluster is `modifying`.
    "InvalidCacheClusterState",
    "InvalidReplicationGroupState",
    // EFS: the file system or mount target is not `available` yet.
    "IncorrectFileSystemLifeCycleState",
    "IncorrectMountTargetState",
    // ELBv2, Auto Scaling: a load balancer, target group or group still in use or scaling.
    "ResourceInUse",
    "ResourceInUseFault",
    "ScalingActivityInProgress",
    // IAM: a concurrent change to the same entity.
    "ConcurrentModification",
];

/// Whether `code` is a state conflict that clears by itself ([`Transient::Settling`]).
pub fn is_settling(code: &str) -> bool {
    SETTLING.contains(&code)
}

impl CloudError {
    /// Whether, and how, the failed request may be retried (see the module's documentation).
    pub fn transient(&self) -> Option<Transient> {
        let CloudError::Api { code, message, .. } = self else {
            return None;
        };
        if THROTTLED.contains(&code.as_str()) {
            return Some(Transient::Throttled);
        }
        if SETTLING.contains(&code.as_str()) {
            return Some(Transient::Settling);
        }
        // A new IAM instance profile takes seconds to become visible to EC2 and Auto Scaling,
        // which meanwhile call its ARN invalid. AWS gives this case no code of its own (EC2
        // answers InvalidParameterValue, Auto Scaling ValidationError), so the message tells it
        // apart.
        let profile = message.to_ascii_lowercase().contains("instance profile")
            || message.contains("iamInstanceProfile");
        (matches!(code.as_str(), "InvalidParameterValue" | "ValidationError") && profile)
            .then_some(Transient::Settling)
    }

    /// Whether the failed request may succeed if tried again ([`CloudError::transient`]).
    pub fn is_retryable(&self) -> bool {
        self.transient().is_some()
    }
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
    fn errors_are_classified() {
        let cases = [
            ("Throttling", "Rate exceeded", Some(Transient::Throttled)),
            ("RequestLimitExceeded", "", Some(Transient::Throttled)),
            ("ServiceUnavailable", "", Some(Transient::Throttled)),
            ("SlowDown", "", Some(Transient::Throttled)),
            ("InvalidDBClusterStateFault", "", Some(Transient::Settling)),
            (
                "InvalidDBParameterGroupState",
                "",
                Some(Transient::Settling),
            ),
            (
                "InvalidReplicationGroupState",
                "",
                Some(Transient::Settling),
            ),
            ("IncorrectMountTargetState", "", Some(Transient::Settling)),
            (
                "DependencyViolation",
                "has a dependent object",
                Some(Transient::Settling),
            ),
            (
                "InvalidParameterValue",
                "Invalid IAM Instance Profile ARN: arn:...",
                Some(Transient::Settling),
            ),
            (
                "ValidationError",
                "You are not authorized to use iamInstanceProfile.arn",
                Some(Transient::Settling),
            ),
            (
                "InvalidParameterValue",
                "Value (x) for parameter cidrBlock is invalid",
                None,
            ),
            ("ValidationError", "bad name", None),
            ("AccessDenied", "", None),
        ];
        for (code, message, want) in cases {
            assert_eq!(api(code, message).transient(), want, "{code}: {message}");
        }
        assert_eq!(CloudError::NotFound("x".into()).transient(), None);
    }

    #[test]
    fn the_sdk_policy_rides_out_a_bad_minute() {
        // The back-offs of all attempts but the first, without jitter, cover more than a minute.
        let mut wait = Duration::ZERO;
        let mut b = SDK.initial_backoff;
        for _ in 1..SDK.max_attempts {
            wait += b;
            b = (b * 2).min(SDK.max_backoff);
        }
        assert!(wait > Duration::from_secs(60), "{wait:?}");
    }
}
