//! [`Cloud`] implemented with the AWS SDK for Rust: one module per service, all clients built
//! from one shared `SdkConfig` by aws-config, so profiles, SSO, environment credentials and
//! `AWS_ENDPOINT_URL` (emulators) work unchanged.
//!
//! Each kind has one [`KindOps`] implementation in the module of its service, registered in the
//! exhaustive [`ops`]; this file holds what is written once for every kind: observe (every kind
//! listed at once), adoption after a crash, refusal of what is not the stack's, client-side
//! verification of every list, polling.
//! Field names and shapes are those of [`moodlestack_model::kind`].

mod autoscaling;
mod backup;
mod cloudwatch;
mod ec2;
mod efs;
mod elasticache;
mod elbv2;
mod fields;
mod iam;
mod kms;
mod log_groups;
pub mod logs;
#[cfg(test)]
mod permissions;
mod pricing;
mod rds;
pub mod run;
mod s3;
mod scaling;
mod secrets;
mod sns;
mod ssm;
pub mod stats;
pub mod status;
mod sts;
pub mod tagging;

pub use stats::{RequestCount, RequestStats};

use async_trait::async_trait;
use fields::Reader;
use moodlestack_model::{
    spec, Cloud, CloudError, DeleteOptions, FieldSpec, Fields, ImageInfo, Kind, LeaseInfo,
    Lifecycle, NetworkInfo, Observed, ObservedId, OnChange, Readiness, Resource, ResourceId, Scope,
    Value, Want, TAG_ID, TAG_STACK,
};
use std::time::Duration;

/// One client per service, all from the same `SdkConfig`.
#[derive(Clone, Debug)]
pub struct Clients {
    pub ec2: aws_sdk_ec2::Client,
    pub rds: aws_sdk_rds::Client,
    pub efs: aws_sdk_efs::Client,
    pub elasticache: aws_sdk_elasticache::Client,
    pub elbv2: aws_sdk_elasticloadbalancingv2::Client,
    pub autoscaling: aws_sdk_autoscaling::Client,
    pub iam: aws_sdk_iam::Client,
    pub secrets: aws_sdk_secretsmanager::Client,
    pub ssm: aws_sdk_ssm::Client,
    pub sts: aws_sdk_sts::Client,
    pub s3: aws_sdk_s3::Client,
    pub tagging: aws_sdk_resourcegroupstagging::Client,
    pub backup: aws_sdk_backup::Client,
    /// The Price List API: its endpoint is in us-east-1, whatever the stack's region.
    pub pricing: aws_sdk_pricing::Client,
    pub kms: aws_sdk_kms::Client,
    pub logs: aws_sdk_cloudwatchlogs::Client,
    pub cloudwatch: aws_sdk_cloudwatch::Client,
    pub sns: aws_sdk_sns::Client,
}

impl Clients {
    /// Every client from `config`, each counting its requests into `stats` and retrying as
    /// [`moodlestack_model::retry::SDK`] says. The SDK's own variables choose otherwise:
    /// `AWS_RETRY_MODE=adaptive` (client-side rate limiting) and `AWS_MAX_ATTEMPTS=N`.
    pub fn new(config: &aws_types::SdkConfig, stats: &RequestStats) -> Self {
        let policy = moodlestack_model::retry::SDK;
        let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let retry = match env("AWS_RETRY_MODE").as_deref() {
            Some("adaptive") => aws_smithy_types::retry::RetryConfig::adaptive(),
            _ => aws_smithy_types::retry::RetryConfig::standard(),
        }
        .with_max_attempts(
            env("AWS_MAX_ATTEMPTS")
                .and_then(|n| n.parse().ok())
                .unwrap_or(policy.max_attempts),
        )
        .with_initial_backoff(policy.initial_backoff)
        .with_max_backoff(policy.max_backoff);
        // A service's client, its configuration built with the settings `$set` adds.
        macro_rules! client {
            ($krate:ident $(.$set:ident($value:expr))*) => {
                $krate::Client::from_conf(
                    $krate::config::Builder::from(config)
                        .interceptor(stats.clone())
                        .retry_config(retry.clone())
                        $(.$set($value))*
                        .build(),
                )
            };
        }
        Clients {
            ec2: client!(aws_sdk_ec2),
            rds: client!(aws_sdk_rds),
            efs: client!(aws_sdk_efs),
            elasticache: client!(aws_sdk_elasticache),
            elbv2: client!(aws_sdk_elasticloadbalancingv2),
            autoscaling: client!(aws_sdk_autoscaling),
            iam: client!(aws_sdk_iam),
            secrets: client!(aws_sdk_secretsmanager),
            ssm: client!(aws_sdk_ssm),
            sts: client!(aws_sdk_sts),
            tagging: client!(aws_sdk_resourcegroupstagging),
            backup: client!(aws_sdk_backup),
            pricing: client!(
                aws_sdk_pricing.region(aws_types::region::Region::from_static(PRICING_REGION))
            ),
            kms: client!(aws_sdk_kms),
            logs: client!(aws_sdk_cloudwatchlogs),
            cloudwatch: client!(aws_sdk_cloudwatch),
            sns: client!(aws_sdk_sns),
            // An endpoint of its own (the local emulator) has no per-bucket DNS names: buckets go
            // in the path there.
            s3: client!(aws_sdk_s3.force_path_style(config.endpoint_url().is_some())),
        }
    }
}

/// Where the Price List API answers (its endpoints are in us-east-1, eu-central-1 and
/// ap-south-1; they serve the prices of every region).
pub const PRICING_REGION: &str = "us-east-1";

/// The AWS implementation of [`Cloud`].
#[derive(Clone, Debug)]
pub struct AwsCloud {
    clients: Clients,
    stats: RequestStats,
}

impl AwsCloud {
    /// Loads the shared configuration the usual way (environment, profiles, SSO, IMDS) for
    /// `region`.
    pub async fn from_env(region: &str) -> Self {
        let config = aws_config::from_env()
            .region(aws_config::Region::new(region.to_string()))
            .load()
            .await;
        Self::from_config(&config)
    }

    pub fn from_config(config: &aws_types::SdkConfig) -> Self {
        let stats = RequestStats::new();
        AwsCloud {
            clients: Clients::new(config, &stats),
            stats,
        }
    }

    pub fn clients(&self) -> &Clients {
        &self.clients
    }

    /// The requests sent so far, by service and operation.
    pub fn stats(&self) -> &RequestStats {
        &self.stats
    }
}

// ---------------------------------------------------------------------------------------------
// One implementation per kind.

/// Which resources of a kind a [`KindOps::list`] asks for.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Query<'a> {
    /// Every resource of the stack (found by its tag, or by the deterministic names of the desired
    /// graph where the API cannot filter by tag). Resources AWS keeps visible after deleting them
    /// for good (terminated instances, deleted NAT gateways) are left out; ones still being
    /// deleted are kept (the executor waits for them).
    Stack,
    /// The stack's resource with this logical id: by its `moodlestack:id` tag, its deterministic
    /// name (the kind's [`moodlestack_model::KindSpec::name_field`] in `fields`) or, for
    /// untaggable kinds, its identity fields.
    Logical {
        /// The logical id asked for.
        id: &'a ResourceId,
        /// The desired (resolved) fields.
        fields: &'a Fields,
    },
    /// One resource by its physical id (a NotFound answer is an empty result).
    Physical(&'a str),
}

/// What a create call did.
#[derive(Debug)]
pub(crate) enum Created {
    /// Made (or, for APIs with an idempotency token, the one an earlier identical call made).
    New(Observed),
    /// The API refused because the name (or identity) is taken: whose it is, the generic code
    /// finds out with a [`Query::Logical`] list.
    Exists,
}

impl Created {
    /// `o` made for the desired resource `r`: under `r`'s logical id (what a read of an untagged
    /// kind cannot know by itself).
    fn made(r: &Reader<'_>, mut o: Observed) -> Self {
        o.id = r.id.clone().into();
        Created::New(o)
    }
}

/// Everything a kind implementation works with.
pub(crate) struct Cx<'a> {
    pub c: &'a Clients,
    pub scope: &'a Scope,
    /// The desired graph (empty outside observe): kinds listed by deterministic names read them
    /// here.
    pub desired: &'a [Resource],
    /// The stack's resources per kind, listed at most once per observe (a kind whose resources
    /// hang off another's, like mount targets off file systems, reads its parent's list here).
    lists: Vec<tokio::sync::OnceCell<Vec<Observed>>>,
    /// Set for [`Cloud::create_absent`]: the plan, made under the stack's lease, saw the resource
    /// absent and the resources it hangs off (its parents) as the stack's, so a create need not
    /// check either again.
    pub planned: bool,
    /// What a [`KindOps::delete`] is asked to do besides deleting (a final snapshot, lifting
    /// deletion protection); the defaults outside [`Cloud::delete`].
    pub delete: DeleteOptions,
}

/// An in-place update a [`KindOps::update`] is asked for: the resource as it is (`current`), the
/// desired fields (`r`) and the names of the fields that differ (`changed`).
#[derive(Clone, Copy)]
pub(crate) struct Update<'a> {
    pub current: &'a Observed,
    pub r: &'a Reader<'a>,
    pub changed: &'a [&'a str],
}

impl<'a> Update<'a> {
    /// `(current, r, changed)`: what an implementation reads first.
    pub(crate) fn parts(self) -> (&'a Observed, &'a Reader<'a>, &'a [&'a str]) {
        (self.current, self.r, self.changed)
    }
}

impl<'a> Cx<'a> {
    fn new(c: &'a Clients, scope: &'a Scope, desired: &'a [Resource]) -> Self {
        Cx {
            c,
            scope,
            desired,
            lists: (0..Kind::COUNT)
                .map(|_| tokio::sync::OnceCell::new())
                .collect(),
            planned: false,
            delete: DeleteOptions::default(),
        }
    }

    /// The stack's resources of `kind` ([`Query::Stack`], verified), listed once per `Cx`.
    pub async fn listed(&self, kind: Kind) -> Result<&[Observed], CloudError> {
        let ops = ops(kind);
        self.lists[kind as usize]
            .get_or_try_init(|| async {
                let found = ops.list(self, Query::Stack).await?;
                Ok(verified(self.scope, kind, Query::Stack, found))
            })
            .await
            .map(Vec::as_slice)
    }
}

/// The operations of one resource kind on AWS. Every kind has exactly one implementation, in the
/// module of its service, registered in [`ops`]. The generic code around it (this file) adopts
/// what an interrupted run made, refuses what is not the stack's, never duplicates, verifies
/// every list client-side and turns a list by physical id into a readiness poll.
#[async_trait]
pub(crate) trait KindOps: Send + Sync {
    /// The resources of the kind that `q` asks for, with the kind's managed fields, attributes,
    /// status word and lifecycle (exactly the descriptor's field names). The generic caller
    /// drops what is not tagged with the stack (and the logical id asked for).
    async fn list(&self, cx: &Cx<'_>, q: Query<'_>) -> Result<Vec<Observed>, CloudError>;

    /// ONE create call carrying every tag (and an idempotency token where the API has one),
    /// plus the strictly necessary follow-up calls. Returns at once with what is known.
    async fn create(&self, cx: &Cx<'_>, r: &Reader<'_>) -> Result<Created, CloudError>;

    /// Changes the `changed` fields in place to the values in `r`; returns the resource as it
    /// is now known.
    async fn update(&self, cx: &Cx<'_>, u: Update<'_>) -> Result<Observed, CloudError>;

    /// Starts deleting the resource (a NotFound answer counts as done).
    async fn delete(&self, cx: &Cx<'_>, current: &Observed) -> Result<(), CloudError>;

    /// True for kinds whose describes lag behind their creates (EC2 is eventually consistent: a
    /// describe by a new id may answer NotFound for a few seconds). A poll for readiness that does
    /// not find such a resource waits instead of calling it gone; the kind's timeout bounds it.
    fn lags(&self) -> bool {
        false
    }

    /// True for kinds whose create answers only once the resource is usable and returns a
    /// complete observation of it (read back, or the request's fields for a Put that stores
    /// synchronously): a Ready one is not polled ([`Cloud::settled`]). Never for kinds that
    /// [`lag`](KindOps::lags).
    fn ready_when_created(&self) -> bool {
        false
    }

    /// True for kinds whose delete is done when the call answers (IAM, Auto Scaling's policies,
    /// actions and hooks): nothing is polled after it ([`Cloud::settled`]).
    fn gone_when_deleted(&self) -> bool {
        false
    }

    /// Whether a freshly listed resource is what `want` waits for. The default reads its
    /// [`Lifecycle`]; kinds with more to wait for (pending modifications) override it.
    fn readiness(&self, found: Observed, want: Want) -> Readiness {
        lifecycle_readiness(found, want)
    }
}

/// [`KindOps::readiness`] from the lifecycle alone.
pub(crate) fn lifecycle_readiness(found: Observed, want: Want) -> Readiness {
    match (found.lifecycle, want) {
        (Lifecycle::Ready, Want::Ready) => Readiness::Ready(found),
        (Lifecycle::Failed, Want::Ready) => Readiness::Failed {
            status: found.status,
            fix: None,
        },
        (_, Want::Gone) => Readiness::Pending(if found.lifecycle == Lifecycle::Deleting {
            found.status
        } else {
            "still exists".into()
        }),
        _ => Readiness::Pending(found.status),
    }
}

/// Every kind's implementation under the kind's own name: each service module exports its
/// implementations in a `kinds` module (`pub(crate) use super::Group as AutoScalingGroup;`).
mod impls {
    pub(crate) use crate::{
        autoscaling::kinds::*, backup::kinds::*, cloudwatch::kinds::*, ec2::kinds::*,
        efs::kinds::*, elasticache::kinds::*, elbv2::kinds::*, iam::kinds::*, kms::kinds::*,
        log_groups::kinds::*, rds::kinds::*, s3::kinds::*, scaling::kinds::*, secrets::kinds::*,
        sns::kinds::*,
    };
}

/// Generates [`ops`] from the kind table of `moodlestack_model`.
macro_rules! registry {
    ($($kind:ident)*) => {
        /// The implementation of `kind`: one exhaustive registry generated from the kind table,
        /// so a kind without an implementation (`impls::<Kind>`) does not compile.
        fn ops(kind: Kind) -> &'static dyn KindOps {
            match kind {
                $(Kind::$kind => &impls::$kind,)*
            }
        }
    };
}
moodlestack_model::with_kinds!(registry);

/// Keeps what `q` asked for: resources tagged with the stack (and the logical id asked for), or,
/// for untaggable kinds, matching the identity fields asked for. APIs that ignore tag filters
/// (moto's DescribeNatGateways) cannot leak another stack's or another resource's resources.
fn verified(scope: &Scope, kind: Kind, q: Query<'_>, found: Vec<Observed>) -> Vec<Observed> {
    let s = spec(kind);
    found
        .into_iter()
        .filter(|o| o.kind == kind)
        .filter(|o| match (&o.id, q) {
            (_, Query::Physical(_)) => true,
            (ObservedId::Untagged(_), Query::Stack) => true,
            (ObservedId::Untagged(_), Query::Logical { fields, .. }) => {
                !s.identity.is_empty()
                    && s.identity
                        .iter()
                        .all(|f| o.fields.get(*f).is_some() && o.fields.get(*f) == fields.get(*f))
            }
            (ObservedId::Tagged(id), q) => {
                o.tag(TAG_STACK) == Some(scope.stack.as_str())
                    && o.tag(TAG_ID) == Some(id.as_str())
                    && match q {
                        Query::Logical { id: want, .. } => id == want,
                        _ => true,
                    }
            }
        })
        .collect()
}

/// Lists with `q` and keeps what it asked for.
async fn list(
    ops: &dyn KindOps,
    cx: &Cx<'_>,
    kind: Kind,
    q: Query<'_>,
) -> Result<Vec<Observed>, CloudError> {
    let found = ops.list(cx, q).await?;
    Ok(verified(cx.scope, kind, q, found))
}

/// Create, written once for every kind: adopt ours, refuse another's, never duplicate.
async fn create(
    ops: &dyn KindOps,
    cx: &Cx<'_>,
    id: &ResourceId,
    kind: Kind,
    fields: &Fields,
) -> Result<Observed, CloudError> {
    let s = spec(kind);
    let r = Reader::new(kind, id, fields);
    let logical = Query::Logical { id, fields };
    // Look first (unless the caller has just seen it absent, `Cloud::create_absent`): a create
    // repeated after a crash or a lost answer adopts what the first one made. (AWS refuses a
    // second resource of the same name or identity for most kinds, which the `Created::Exists`
    // arm below handles when two runs race; but not every API does, and the emulator accepts a
    // second load balancer or listener, so looking is what never duplicates.)
    if !cx.planned {
        if let Some(found) = list(ops, cx, kind, logical)
            .await?
            .into_iter()
            .find(|o| o.lifecycle != Lifecycle::Deleting)
        {
            return adopt(ops, cx, found, &r).await;
        }
    }
    match ops.create(cx, &r).await? {
        Created::New(mut o) => {
            o.id = id.into();
            Ok(o)
        }
        Created::Exists => {
            let found = list(ops, cx, kind, logical).await?;
            match found
                .into_iter()
                .find(|o| o.lifecycle != Lifecycle::Deleting)
            {
                Some(o) => adopt(ops, cx, o, &r).await,
                None => Err(CloudError::NameTaken {
                    kind,
                    name: s
                        .name_field
                        .and_then(|f| fields.get(f))
                        .map_or_else(|| id.to_string(), Value::display_short),
                    holder: format!(
                        "is not {id} of stack `{}` (it has other tags, or is being deleted)",
                        cx.scope.stack
                    ),
                    fix: "choose another stack name (--name), or delete the other resource by \
                          hand if it is a leftover"
                        .into(),
                }),
            }
        }
    }
}

/// Takes over a resource of the stack that an earlier, interrupted run made: brings its in-place
/// fields to the desired values. A field only a replacement could change means it is not what
/// this run would make: refused.
async fn adopt(
    ops: &dyn KindOps,
    cx: &Cx<'_>,
    mut found: Observed,
    r: &Reader<'_>,
) -> Result<Observed, CloudError> {
    found.id = r.id.clone().into();
    let s = spec(found.kind);
    let changed: Vec<&FieldSpec> = s
        .fields
        .iter()
        .filter(|f| f.on_change != OnChange::CreateOnly)
        .filter(|f| {
            r.fields
                .get(f.name)
                .is_some_and(|want| f.differs(want, found.fields.get(f.name)))
        })
        .collect();
    if let Some(bad) = changed.iter().find(|f| f.on_change == OnChange::Replace) {
        return Err(CloudError::NameTaken {
            kind: found.kind,
            name: found.physical_id.clone(),
            holder: format!(
                "carries the tags of {} but its `{}` differs from the stack's, which only a \
                 replacement could change",
                r.id, bad.name
            ),
            fix: "delete it by hand (it was made by an interrupted run with other settings), \
                  then run again"
                .into(),
        });
    }
    if changed.is_empty() {
        return Ok(found);
    }
    let names: Vec<&str> = changed.iter().map(|f| f.name).collect();
    let u = Update {
        current: &found,
        r,
        changed: &names,
    };
    ops.update(cx, u).await
}

/// One look at a resource: listed by physical id, then the kind's readiness.
async fn poll(
    ops: &dyn KindOps,
    cx: &Cx<'_>,
    current: &Observed,
    want: Want,
) -> Result<Readiness, CloudError> {
    let found = list(ops, cx, current.kind, Query::Physical(&current.physical_id)).await?;
    Ok(match found.into_iter().next() {
        None if want == Want::Ready && ops.lags() => Readiness::Pending("not visible yet".into()),
        None => Readiness::Gone,
        Some(mut o) => {
            o.id = current.id.clone();
            ops.readiness(o, want)
        }
    })
}

#[async_trait]
impl Cloud for AwsCloud {
    async fn observe(
        &self,
        scope: &Scope,
        desired: &[Resource],
    ) -> Result<Vec<Observed>, CloudError> {
        let c = &self.clients;
        let cx = Cx::new(c, scope, desired);
        // Every kind is listed at once; a kind that needs another's list waits for it alone.
        let lists = futures::future::try_join_all(Kind::ALL.iter().map(|&k| cx.listed(k))).await?;
        Ok(lists.into_iter().flat_map(|l| l.iter().cloned()).collect())
    }

    async fn create(&self, scope: &Scope, want: &Resource) -> Result<Observed, CloudError> {
        let cx = Cx::new(&self.clients, scope, &[]);
        create(ops(want.kind), &cx, &want.id, want.kind, &want.fields).await
    }

    async fn create_absent(&self, scope: &Scope, want: &Resource) -> Result<Observed, CloudError> {
        let cx = Cx {
            planned: true,
            ..Cx::new(&self.clients, scope, &[])
        };
        create(ops(want.kind), &cx, &want.id, want.kind, &want.fields).await
    }

    async fn update(
        &self,
        scope: &Scope,
        current: &Observed,
        fields: &Fields,
        changed: &[String],
    ) -> Result<Observed, CloudError> {
        let r = Reader::new(current.kind, &current.id, fields);
        let changed: Vec<&str> = changed.iter().map(String::as_str).collect();
        let u = Update {
            current,
            r: &r,
            changed: &changed,
        };
        ops(current.kind)
            .update(&Cx::new(&self.clients, scope, &[]), u)
            .await
    }

    async fn delete(
        &self,
        scope: &Scope,
        current: &Observed,
        options: &DeleteOptions,
    ) -> Result<(), CloudError> {
        let cx = Cx {
            delete: options.clone(),
            ..Cx::new(&self.clients, scope, &[])
        };
        match ops(current.kind).delete(&cx, current).await {
            Err(e) if fields::is_not_found(&e) => Ok(()),
            other => other,
        }
    }

    fn settled(&self, o: &Observed, want: Want) -> bool {
        let ops = ops(o.kind);
        match want {
            Want::Ready => {
                ops.ready_when_created()
                    && !ops.lags()
                    && matches!(ops.readiness(o.clone(), want), Readiness::Ready(_))
            }
            Want::Gone => ops.gone_when_deleted(),
        }
    }

    async fn poll(
        &self,
        scope: &Scope,
        current: &Observed,
        want: Want,
    ) -> Result<Readiness, CloudError> {
        // The current fields stand in for the desired ones: the parameter groups read the names
        // of the parameters the stack manages there.
        let desired = [Resource {
            id: current.id.to_resource_id(),
            kind: current.kind,
            fields: current.fields.clone(),
            extra_deps: vec![],
        }];
        poll(
            ops(current.kind),
            &Cx::new(&self.clients, scope, &desired),
            current,
            want,
        )
        .await
    }

    async fn resolve_parameter(&self, name: &str) -> Result<String, CloudError> {
        ssm::get_parameter(&self.clients, name).await
    }

    async fn account_id(&self) -> Result<String, CloudError> {
        sts::account_id(&self.clients).await
    }

    async fn image(&self, image_id: &str) -> Result<Option<ImageInfo>, CloudError> {
        ec2::image(&self.clients, image_id).await
    }

    async fn network(
        &self,
        vpc_id: &str,
        subnet_ids: &[String],
    ) -> Result<NetworkInfo, CloudError> {
        ec2::existing_network(&self.clients, vpc_id, subnet_ids).await
    }

    async fn acquire_lease(
        &self,
        scope: &Scope,
        owner: &str,
        ttl: Duration,
    ) -> Result<LeaseInfo, CloudError> {
        ssm::acquire_lease(&self.clients, scope, owner, ttl).await
    }

    async fn release_lease(&self, scope: &Scope, owner: &str) -> Result<(), CloudError> {
        ssm::release_lease(&self.clients, scope, owner).await
    }

    async fn lease(&self, scope: &Scope) -> Result<Option<LeaseInfo>, CloudError> {
        ssm::lease(&self.clients, scope).await
    }

    async fn break_lease(&self, scope: &Scope, held: &LeaseInfo) -> Result<bool, CloudError> {
        ssm::break_lease(&self.clients, scope, held).await
    }

    async fn restore_points(
        &self,
        scope: &Scope,
    ) -> Result<Vec<moodlestack_model::RestorePoint>, CloudError> {
        backup::restore_points(&self.clients, scope).await
    }
}
