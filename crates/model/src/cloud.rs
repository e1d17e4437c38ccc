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

/// The AWS partition of a region (`aws`, `aws-cn`, `aws-us-gov`): the second field of its ARNs.
pub fn partition(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "aws-cn"
    } else if region.starts_with("us-gov-") {
        "aws-us-gov"
    } else {
        "aws"
    }
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
    /// It reached a state it will not leave by itself (`failed`, `incompatible-parameters`, an
    /// instance refresh that ended unfinished): the status, and what to do when the kind knows.
    Failed {
        /// The service's status word (and reason).
        status: String,
        /// What the user can do about it; None for the generic advice.
        fix: Option<String>,
    },
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

/// What the cloud says about an existing VPC and subnets (a stack's `network.existing`), read at
/// plan time. What does not exist is left out; it is not an error.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NetworkInfo {
    /// The VPC, None when it does not exist (in this account and region).
    pub vpc: Option<VpcInfo>,
    /// The subnets asked for that exist, in any VPC.
    pub subnets: Vec<SubnetInfo>,
}

/// A VPC's DNS attributes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VpcInfo {
    /// `vpc-...`.
    pub vpc_id: String,
    /// `enableDnsSupport`: the Amazon DNS server answers in the VPC (on by default).
    pub enable_dns_support: bool,
    /// `enableDnsHostnames`: instances get DNS hostnames (off by default in a VPC that is not
    /// the account's default VPC).
    pub enable_dns_hostnames: bool,
}

/// Where a subnet is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubnetInfo {
    /// `subnet-...`.
    pub subnet_id: String,
    /// The VPC it belongs to.
    pub vpc_id: String,
    /// Its availability zone (`eu-west-1a`).
    pub availability_zone: String,
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

impl LeaseInfo {
    /// Who holds it, since when and for how much longer, as of `now` (seconds since the epoch):
    /// `ci@runner-7 pid 4242 for 3m12s (since 2026-11-30 20:41:03 UTC), expires in 41 s`.
    pub fn describe(&self, now: u64) -> String {
        let expiry = if self.expires_at > now {
            format!("expires in {}", human_duration(self.expires_at - now))
        } else {
            format!("expired {} ago", human_duration(now - self.expires_at))
        };
        format!(
            "{} for {} (since {}), {expiry}",
            self.owner,
            human_duration(now.saturating_sub(self.acquired_at)),
            utc_date(self.acquired_at),
        )
    }

    /// [`LeaseInfo::describe`] as of the system clock.
    pub fn describe_now(&self) -> String {
        self.describe(unix_now())
    }
}

/// The system clock in seconds since the Unix epoch (0 before it).
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// `41 s`, `3m12s`, `2h05m`, `3d04h`.
pub fn human_duration(secs: u64) -> String {
    match secs {
        s if s < 60 => format!("{s} s"),
        s if s < 3600 => format!("{}m{:02}s", s / 60, s % 60),
        s if s < 86_400 => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
        s => format!("{}d{:02}h", s / 86_400, s % 86_400 / 3600),
    }
}

/// `2026-11-30 20:41:03 UTC` for seconds since the Unix epoch.
pub fn utc_date(secs: u64) -> String {
    // Days to a civil date (Howard Hinnant's algorithm, proleptic Gregorian calendar).
    let days = i64::try_from(secs / 86_400).unwrap_or(i64::MAX);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let t = secs % 86_400;
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        t / 3600,
        t % 3600 / 60,
        t % 60
    )
}

/// `2026-11-30T20:41:03Z` (RFC 3339, UTC) for seconds since the Unix epoch.
pub fn rfc3339(secs: u64) -> String {
    let d = utc_date(secs);
    // `YYYY-MM-DD HH:MM:SS UTC` -> `YYYY-MM-DDTHH:MM:SSZ`.
    format!("{}T{}Z", &d[..10], &d[11..19])
}

/// Seconds since the Unix epoch of an RFC 3339 time (`2026-11-30T20:41:03Z`, fractions of a
/// second and numeric offsets accepted); None if it is not one.
pub fn parse_rfc3339(text: &str) -> Option<u64> {
    let t = text.trim();
    let num = |a: usize, b: usize| -> Option<i64> {
        let s = t.get(a..b)?;
        s.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| s.parse().ok())?
    };
    let (year, month, day) = (num(0, 4)?, num(5, 7)?, num(8, 10)?);
    let (hour, min, sec) = (num(11, 13)?, num(14, 16)?, num(17, 19)?);
    let bytes = t.as_bytes();
    if bytes.get(4) != Some(&b'-')
        || bytes.get(7) != Some(&b'-')
        || !matches!(bytes.get(10), Some(b'T' | b't' | b' '))
        || bytes.get(13) != Some(&b':')
        || bytes.get(16) != Some(&b':')
        || !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || min > 59
        || sec > 60
    {
        return None;
    }
    let mut rest = &t[19..];
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        rest = &frac[digits..];
    }
    let offset = match rest {
        "Z" | "z" => 0,
        o if o.len() == 6 && (o.starts_with('+') || o.starts_with('-')) && &o[3..4] == ":" => {
            let h: i64 = o[1..3].parse().ok()?;
            let m: i64 = o[4..6].parse().ok()?;
            let s = (h * 60 + m) * 60;
            if o.starts_with('-') {
                -s
            } else {
                s
            }
        }
        _ => return None,
    };
    // Civil date to days (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + hour * 3600 + min * 60 + sec - offset;
    u64::try_from(secs).ok()
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
    #[error("stack is locked by {}", .0.describe_now())]
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
            CloudError::LeaseHeld(_) => Some(
                "wait for that run to finish: it renews its lease while it runs (a lease nobody \
                 renews expires within a minute, and apply waits for that by itself). If that \
                 run is gone, lift its lease: `moodlestack unlock <stack.yaml>`"
                    .into(),
            ),
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
        c if crate::retry::is_settling(c) => Some(format!(
            "the resource (or one it depends on) is busy: being created, modified or backed up, \
             and {operation} waits for that; run the same command again once it is available"
        )),
        // A load balancer's deletion protection (it follows the database's).
        "OperationNotPermitted" if operation.ends_with(":DeleteLoadBalancer") => Some(
            "the load balancer's deletion protection is on (it follows \
             database.deletion_protection): run again with --allow-data-loss to lift it"
                .into(),
        ),
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
    async fn create(&self, scope: &Scope, want: &Resource) -> Result<Observed, CloudError>;

    /// [`Cloud::create`] of a resource the caller has just seen absent while holding the stack's
    /// lease (the plan's observation, re-checked under the lease), on a first attempt: it need
    /// not look for one that an interrupted run or a lost answer made, which saves a round on
    /// every chain of dependent creates. A retry after an error calls [`Cloud::create`], which
    /// looks first.
    async fn create_absent(&self, scope: &Scope, want: &Resource) -> Result<Observed, CloudError> {
        self.create(scope, want).await
    }

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

    /// Whether `o`, as a create just answered it (`Want::Ready`), or a delete call's success for
    /// it (`Want::Gone`), already says what a [`Cloud::poll`] would: then the executor does not
    /// poll (a round saved on every chain of dependent creates or deletes). False unless the
    /// kind's API makes it so: a create that answers only once the resource is usable, with a
    /// complete read of it; a delete that is done when it answers.
    fn settled(&self, o: &Observed, want: Want) -> bool {
        let _ = (o, want);
        false
    }

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

    /// The AWS account the credentials act in (12 digits): part of the names AWS keeps global
    /// per partition (the code bucket's).
    async fn account_id(&self) -> Result<String, CloudError>;

    /// Facts about an AMI, or None if it does not exist.
    async fn image(&self, image_id: &str) -> Result<Option<ImageInfo>, CloudError>;

    /// The VPC `vpc_id` (its DNS attributes) and which of `subnet_ids` exist, in which VPC and
    /// zone: the facts the plan checks an existing network (`network.existing`) against. Every
    /// request goes out at once. Absent ones are left out of the answer.
    async fn network(&self, vpc_id: &str, subnet_ids: &[String])
        -> Result<NetworkInfo, CloudError>;

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

    /// The cloud's clock, seconds since the Unix epoch (lease times are in it): the system clock
    /// unless the implementation keeps its own (the in-memory fake's paused clock).
    fn now_unix(&self) -> u64 {
        unix_now()
    }

    /// The stack's lease as stored (expired or not), None when there is none.
    async fn lease(&self, scope: &Scope) -> Result<Option<LeaseInfo>, CloudError>;

    /// Lifts `held`, whoever holds it, if it is still the stack's lease (a lease renewed or taken
    /// over since it was read is left alone): true if it was lifted. For `moodlestack unlock`
    /// and for a holder whose process is gone.
    async fn break_lease(&self, scope: &Scope, held: &LeaseInfo) -> Result<bool, CloudError>;

    /// Every restore point of the stack's data, oldest first: the snapshots of its database
    /// (automated, manual, final) and the recovery points in its backup vault (database and file
    /// system), all read at once. What does not exist is left out; it is not an error.
    async fn restore_points(&self, scope: &Scope) -> Result<Vec<RestorePoint>, CloudError>;
}

/// One restore point of a stack's data (`moodlestack backups`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestorePoint {
    /// What it restores: `database` or `files`.
    pub data: String,
    /// Where it is kept and how it was made (`rds snapshot (manual)`, `aws backup`).
    pub source: String,
    /// Its id: a snapshot identifier or a recovery point ARN.
    pub id: String,
    /// The resource it was taken of (a database identifier or an ARN).
    pub resource: String,
    /// When it was taken, seconds since the Unix epoch (0 when not reported).
    pub created_at: u64,
    /// The service's status word (`available`, `COMPLETED`, ...).
    pub status: String,
    /// Its tags (the stack's, and an upgrade's versions).
    pub tags: BTreeMap<String, String>,
}

impl RestorePoint {
    /// Whether it can be restored from now: an RDS snapshot `available`, an AWS Backup recovery
    /// point `COMPLETED` (or `AVAILABLE`, the status AWS Backup has been moving to).
    pub fn is_available(&self) -> bool {
        matches!(
            self.status.as_str(),
            "available" | "COMPLETED" | "AVAILABLE"
        )
    }
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

    #[test]
    fn leases_read_as_dates_and_durations() {
        let l = LeaseInfo {
            owner: "ci@runner-7 pid 4242".into(),
            acquired_at: 1_796_056_723,
            expires_at: 1_796_056_723 + 41 + 192,
        };
        assert_eq!(
            l.describe(1_796_056_723 + 192),
            "ci@runner-7 pid 4242 for 3m12s (since 2026-11-30 16:38:43 UTC), expires in 41 s"
        );
        assert_eq!(
            l.describe(1_796_056_723 + 260),
            "ci@runner-7 pid 4242 for 4m20s (since 2026-11-30 16:38:43 UTC), expired 27 s ago"
        );
        assert_eq!(utc_date(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc_date(951_782_400), "2000-02-29 00:00:00 UTC");
        assert_eq!(human_duration(7_500), "2h05m");
        assert_eq!(human_duration(273_600), "3d04h");
    }

    #[test]
    fn rfc3339_times_round_trip() {
        for secs in [0, 951_782_400, 1_796_056_723, 4_102_444_799] {
            assert_eq!(parse_rfc3339(&rfc3339(secs)), Some(secs), "{secs}");
        }
        assert_eq!(rfc3339(1_796_056_723), "2026-11-30T16:38:43Z");
        assert_eq!(
            parse_rfc3339("2026-11-30T17:38:43.250+01:00"),
            Some(1_796_056_723)
        );
        for bad in [
            "",
            "2026-11-30",
            "2026-13-01T00:00:00Z",
            "2026-11-30T16:38:43",
            "soon",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
    }
}
