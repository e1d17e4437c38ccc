//! [`Cloud`] implemented with the AWS SDK for Rust: one module per service, all clients built
//! from one shared `SdkConfig` by aws-config, so profiles, SSO, environment credentials and
//! `AWS_ENDPOINT_URL` (emulators) work unchanged.
//!
//! Each service module exposes, for the kinds it owns, `observe`, `create`, `update`, `delete`
//! and `poll` with the shapes of the [`Cloud`] methods; this file only dispatches by kind.
//! Field names and shapes are those of [`moodlestack_model::kind`].

mod autoscaling;
mod ec2;
mod efs;
mod elasticache;
mod elbv2;
mod fields;
mod iam;
mod rds;
mod secrets;
mod ssm;
pub mod stats;

pub use stats::{RequestCount, RequestStats};

use async_trait::async_trait;
use moodlestack_model::{
    Cloud, CloudError, DeleteOptions, Fields, ImageInfo, Kind, LeaseInfo, Observed, Readiness,
    Resource, ResourceId, Scope, Want,
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
}

impl Clients {
    /// Every client from `config`, each counting its requests into `stats`.
    pub fn new(config: &aws_types::SdkConfig, stats: &RequestStats) -> Self {
        macro_rules! client {
            ($krate:ident) => {
                $krate::Client::from_conf(
                    $krate::config::Builder::from(config)
                        .interceptor(stats.clone())
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
        }
    }
}

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

/// The service module that owns `kind`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Service {
    Ec2,
    Iam,
    Secrets,
    Rds,
    Efs,
    ElastiCache,
    Elbv2,
    AutoScaling,
}

fn service(kind: Kind) -> Service {
    use Kind::*;
    match kind {
        Vpc | InternetGateway | Subnet | ElasticIp | NatGateway | RouteTable | SecurityGroup
        | LaunchTemplate | Instance => Service::Ec2,
        IamRole | InstanceProfile => Service::Iam,
        Secret => Service::Secrets,
        DbSubnetGroup | DbParameterGroup | DbClusterParameterGroup | DbCluster | DbInstance => {
            Service::Rds
        }
        EfsFileSystem | EfsMountTarget => Service::Efs,
        CacheSubnetGroup | CacheReplicationGroup => Service::ElastiCache,
        LoadBalancer | TargetGroup | Listener => Service::Elbv2,
        AutoScalingGroup => Service::AutoScaling,
    }
}

macro_rules! dispatch {
    ($kind:expr, $f:ident ( $($arg:expr),* )) => {
        match service($kind) {
            Service::Ec2 => ec2::$f($($arg),*).await,
            Service::Iam => iam::$f($($arg),*).await,
            Service::Secrets => secrets::$f($($arg),*).await,
            Service::Rds => rds::$f($($arg),*).await,
            Service::Efs => efs::$f($($arg),*).await,
            Service::ElastiCache => elasticache::$f($($arg),*).await,
            Service::Elbv2 => elbv2::$f($($arg),*).await,
            Service::AutoScaling => autoscaling::$f($($arg),*).await,
        }
    };
}

#[async_trait]
impl Cloud for AwsCloud {
    async fn observe(
        &self,
        scope: &Scope,
        desired: &[Resource],
    ) -> Result<Vec<Observed>, CloudError> {
        let c = &self.clients;
        // Every service is observed concurrently; within a service, one paginated describe per
        // kind (see each module).
        let (ec2, iam, secrets, rds, efs, cache, elbv2, asg) = tokio::try_join!(
            ec2::observe(c, scope, desired),
            iam::observe(c, scope, desired),
            secrets::observe(c, scope, desired),
            rds::observe(c, scope, desired),
            efs::observe(c, scope, desired),
            elasticache::observe(c, scope, desired),
            elbv2::observe(c, scope, desired),
            autoscaling::observe(c, scope, desired),
        )?;
        Ok([ec2, iam, secrets, rds, efs, cache, elbv2, asg]
            .into_iter()
            .flatten()
            .collect())
    }

    async fn create(
        &self,
        scope: &Scope,
        id: &ResourceId,
        kind: Kind,
        fields: &Fields,
    ) -> Result<Observed, CloudError> {
        dispatch!(kind, create(&self.clients, scope, id, kind, fields))
    }

    async fn update(
        &self,
        scope: &Scope,
        current: &Observed,
        fields: &Fields,
        changed: &[String],
    ) -> Result<Observed, CloudError> {
        dispatch!(
            current.kind,
            update(&self.clients, scope, current, fields, changed)
        )
    }

    async fn delete(
        &self,
        scope: &Scope,
        current: &Observed,
        options: &DeleteOptions,
    ) -> Result<(), CloudError> {
        dispatch!(current.kind, delete(&self.clients, scope, current, options))
    }

    async fn poll(
        &self,
        scope: &Scope,
        current: &Observed,
        want: Want,
    ) -> Result<Readiness, CloudError> {
        dispatch!(current.kind, poll(&self.clients, scope, current, want))
    }

    async fn resolve_parameter(&self, name: &str) -> Result<String, CloudError> {
        ssm::get_parameter(&self.clients, name).await
    }

    async fn image(&self, image_id: &str) -> Result<Option<ImageInfo>, CloudError> {
        ec2::image(&self.clients, image_id).await
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
}
