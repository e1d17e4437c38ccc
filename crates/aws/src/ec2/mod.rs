//! EC2: VPC, internet gateway, subnets, Elastic IPs, NAT gateways, route tables, security groups,
//! launch templates and the stable instance; plus AMI lookups.
//!
//! Every kind follows the same shape:
//! - `observe`: one paginated describe per kind with the server-side `tag:moodlestack:stack`
//!   filter (all kinds concurrently).
//! - `create`: first a describe by the `moodlestack:id` tag, so a create repeated after a crash
//!   or a lost response adopts what the earlier call made (the EC2 ClientToken does the same on
//!   AWS for the calls that take one; VPCs, subnets, gateways, addresses and security groups have
//!   no token); then ONE create call carrying every tag (TagSpecifications) and the ClientToken
//!   where the API takes one; then the strictly necessary follow-up calls (attributes, routes,
//!   rules, attachment).
//! - `poll`: one describe by physical id.

mod lt;
mod network;
mod routes;
mod sg;

use crate::fields::{api_err, tags_value, Reader};
use crate::Clients;
use aws_sdk_ec2::types::{Filter, ResourceType, Tag, TagSpecification};
use moodlestack_model::{
    spec, value::sha256_hex, CloudError, Compare, DeleteOptions, Fields, ImageInfo, Kind, Observed,
    Readiness, Resource, ResourceId, Scope, Value, Want, TAG_ID, TAG_STACK,
};
use std::collections::BTreeMap;

/// The EC2 kinds, in the order they are observed.
const KINDS: [Kind; 9] = [
    Kind::Vpc,
    Kind::InternetGateway,
    Kind::Subnet,
    Kind::ElasticIp,
    Kind::NatGateway,
    Kind::RouteTable,
    Kind::SecurityGroup,
    Kind::LaunchTemplate,
    Kind::Instance,
];

/// Which resources a describe asks for.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Query<'a> {
    /// Every resource tagged with the stack.
    Stack(&'a Scope),
    /// The resource of the stack tagged with this logical id.
    Logical(&'a Scope, &'a ResourceId),
    /// One resource by its physical id (a NotFound answer is an empty result).
    Physical(&'a str),
}

impl Query<'_> {
    /// Tag filters of the query (empty for [`Query::Physical`]).
    pub(crate) fn filters(&self) -> Vec<Filter> {
        match self {
            Query::Stack(scope) => vec![tag_filter(TAG_STACK, &scope.stack)],
            Query::Logical(scope, id) => {
                vec![
                    tag_filter(TAG_STACK, &scope.stack),
                    tag_filter(TAG_ID, id.as_str()),
                ]
            }
            Query::Physical(_) => Vec::new(),
        }
    }
    /// The physical id, for [`Query::Physical`].
    pub(crate) fn physical(&self) -> Option<String> {
        match self {
            Query::Physical(id) => Some(id.to_string()),
            _ => None,
        }
    }
}

pub(crate) fn tag_filter(key: &str, value: &str) -> Filter {
    Filter::builder()
        .name(format!("tag:{key}"))
        .values(value)
        .build()
}

pub(crate) fn filter(name: &str, values: &[&str]) -> Filter {
    let mut f = Filter::builder().name(name);
    for v in values {
        f = f.values(*v);
    }
    f.build()
}

/// The tags of the create call: the `tags` field (which carries `moodlestack:stack`,
/// `moodlestack:id` and `Name`), plus the identity tags in case the field lacks them.
pub(crate) fn create_tags(
    scope: &Scope,
    id: &impl std::fmt::Display,
    r: &Reader<'_>,
) -> Result<BTreeMap<String, String>, CloudError> {
    let mut tags = moodlestack_model::identity_tags(scope, id);
    tags.extend(r.tags()?);
    Ok(tags)
}

pub(crate) fn sdk_tags(tags: &BTreeMap<String, String>) -> Vec<Tag> {
    tags.iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect()
}

pub(crate) fn tag_spec(
    resource_type: ResourceType,
    tags: &BTreeMap<String, String>,
) -> TagSpecification {
    TagSpecification::builder()
        .resource_type(resource_type)
        .set_tags(Some(sdk_tags(tags)))
        .build()
}

/// Tags as a map (AWS reports them as a list).
pub(crate) fn tag_map(tags: &[Tag]) -> BTreeMap<String, String> {
    tags.iter()
        .filter_map(|t| {
            Some((
                t.key()?.to_string(),
                t.value().unwrap_or_default().to_string(),
            ))
        })
        .collect()
}

/// The EC2 ClientToken of a create: a hash of the stack, the logical id and the fields (64 hex
/// characters, the API's maximum), so a retried call returns what the first one made.
pub(crate) fn client_token(
    scope: &Scope,
    id: &impl std::fmt::Display,
    fields: &Fields,
    salt: &str,
) -> String {
    let json = serde_json::to_string(&Value::Map(fields.clone())).unwrap_or_default();
    sha256_hex(format!("{}\n{}\n{}\n{}", scope.stack, id, json, salt).as_bytes())
}

/// An observation assembled from a describe: the logical id from the `moodlestack:id` tag.
pub(crate) fn observed(
    kind: Kind,
    physical_id: &str,
    tags: BTreeMap<String, String>,
    mut fields: Fields,
    mut attrs: BTreeMap<String, String>,
    status: &str,
) -> Observed {
    let id = match tags.get(TAG_ID) {
        Some(id) => ResourceId(id.clone()).into(),
        None => moodlestack_model::ObservedId::Untagged(physical_id.to_string()),
    };
    fields.insert("tags".into(), tags_value(tags));
    attrs.insert("id".into(), physical_id.to_string());
    Observed {
        id,
        kind,
        physical_id: physical_id.to_string(),
        fields,
        attrs,
        status: status.to_string(),
        lifecycle: moodlestack_model::Lifecycle::Ready,
    }
}

/// Runs a follow-up call on a resource made a moment ago (attributes, attachment, routes, rules),
/// again while EC2 answers NotFound: EC2 is eventually consistent, and a new id can be unknown
/// to the next call for a few seconds. Gives up after about 6 s with the last answer.
pub(crate) async fn settled<T, F, Fut>(mut call: F) -> Result<T, CloudError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, CloudError>>,
{
    let mut delay = std::time::Duration::from_millis(200);
    for _ in 0..5 {
        match call().await {
            Err(e) if crate::fields::is_not_found(&e) => {
                tokio::time::sleep(delay).await;
                delay *= 2;
            }
            other => return other,
        }
    }
    call().await
}

/// Maps an AWS "does not exist" answer of a describe by physical id to an empty result.
pub(crate) fn none_if_not_found<T: Default>(r: Result<T, CloudError>) -> Result<T, CloudError> {
    match r {
        Err(e) if crate::fields::is_not_found(&e) => Ok(T::default()),
        other => other,
    }
}

/// Ok for "already gone" answers of a delete.
pub(crate) fn ok_if_not_found(r: Result<(), CloudError>) -> Result<(), CloudError> {
    match r {
        Err(e) if crate::fields::is_not_found(&e) => Ok(()),
        other => other,
    }
}

/// States in which a resource is on its way out (observe skips them).
fn is_leaving(kind: Kind, status: &str) -> bool {
    match kind {
        // A failed gateway never becomes usable; AWS deletes it by itself after a while.
        Kind::NatGateway => {
            matches!(status, "deleting" | "deleted") || status.starts_with("failed")
        }
        Kind::Instance => matches!(status, "shutting-down" | "terminated"),
        _ => false,
    }
}

/// Describes resources of `kind`.
async fn list(
    c: &Clients,
    kind: Kind,
    q: Query<'_>,
    full: bool,
) -> Result<Vec<Observed>, CloudError> {
    match kind {
        Kind::Vpc => network::list_vpcs(c, q, full).await,
        Kind::InternetGateway => network::list_igws(c, q).await,
        Kind::Subnet => network::list_subnets(c, q).await,
        Kind::ElasticIp => network::list_eips(c, q).await,
        Kind::NatGateway => network::list_nats(c, q).await,
        Kind::RouteTable => routes::list(c, q).await,
        Kind::SecurityGroup => sg::list(c, q).await,
        Kind::LaunchTemplate => lt::list_templates(c, q).await,
        Kind::Instance => lt::list_instances(c, q).await,
        other => Err(CloudError::Other(format!("ec2 does not manage {other}"))),
    }
}

pub async fn observe(
    c: &Clients,
    scope: &Scope,
    _desired: &[Resource],
) -> Result<Vec<Observed>, CloudError> {
    let lists = futures::future::try_join_all(
        KINDS
            .iter()
            .map(|&kind| list(c, kind, Query::Stack(scope), true)),
    )
    .await?;
    Ok(lists
        .into_iter()
        .flatten()
        .filter(|o| !is_leaving(o.kind, &o.status))
        .collect())
}

pub async fn create(
    c: &Clients,
    scope: &Scope,
    id: &ResourceId,
    kind: Kind,
    fields: &Fields,
) -> Result<Observed, CloudError> {
    // A create repeated after a crash or a lost answer adopts what the first one made.
    let existing = list(c, kind, Query::Logical(scope, id), true).await?;
    if let Some(found) = existing.into_iter().find(|o| !is_leaving(kind, &o.status)) {
        return adopt(c, scope, found, fields).await;
    }
    let r = Reader::new(kind, id, fields);
    match kind {
        Kind::Vpc => network::create_vpc(c, scope, id, &r).await,
        Kind::InternetGateway => network::create_igw(c, scope, id, &r).await,
        Kind::Subnet => network::create_subnet(c, scope, id, &r).await,
        Kind::ElasticIp => network::create_eip(c, scope, id, &r).await,
        Kind::NatGateway => network::create_nat(c, scope, id, &r).await,
        Kind::RouteTable => routes::create(c, scope, id, &r).await,
        Kind::SecurityGroup => sg::create(c, scope, id, &r).await,
        Kind::LaunchTemplate => lt::create_template(c, scope, id, &r).await,
        Kind::Instance => lt::create_instance(c, scope, id, &r).await,
        other => Err(CloudError::Other(format!("ec2 does not manage {other}"))),
    }
}

/// Takes over a resource of the stack that an earlier, interrupted create made: brings its
/// in-place fields to the desired values; a field that would force replacement is an error.
async fn adopt(
    c: &Clients,
    scope: &Scope,
    found: Observed,
    fields: &Fields,
) -> Result<Observed, CloudError> {
    let changed = differing_fields(found.kind, fields, &found.fields);
    if changed.is_empty() {
        return Ok(found);
    }
    update(c, scope, &found, fields, &changed).await
}

/// The fields of `desired` whose observed value differs (by the kind's comparison rules).
pub(crate) fn differing_fields(kind: Kind, desired: &Fields, observed: &Fields) -> Vec<String> {
    let spec = spec(kind);
    desired
        .iter()
        .filter(|(name, want)| {
            let Some(fs) = spec.field(name) else {
                return false;
            };
            let have = observed.get(*name);
            match (fs.compare, want, have) {
                (_, _, None) => true,
                (Compare::Set, Value::List(w), Some(Value::List(h))) => {
                    let mut w: Vec<String> = w.iter().map(|v| v.to_json().to_string()).collect();
                    let mut h: Vec<String> = h.iter().map(|v| v.to_json().to_string()).collect();
                    w.sort();
                    h.sort();
                    w != h
                }
                (Compare::Subset, Value::Map(w), Some(Value::Map(h))) => {
                    w.iter().any(|(k, v)| h.get(k) != Some(v))
                }
                (_, w, Some(h)) => *w != h,
            }
        })
        .map(|(name, _)| name.clone())
        .collect()
}

pub async fn update(
    c: &Clients,
    scope: &Scope,
    current: &Observed,
    fields: &Fields,
    changed: &[String],
) -> Result<Observed, CloudError> {
    let r = Reader::new(current.kind, &current.id, fields);
    let mut changed: Vec<&str> = changed.iter().map(String::as_str).collect();
    if current.kind == Kind::LaunchTemplate {
        // A new version also rewrites the template's tags (content hash).
        return lt::update_template(c, scope, current, &r, &changed).await;
    }
    if let Some(i) = changed.iter().position(|f| *f == "tags") {
        changed.remove(i);
        let mut tags = moodlestack_model::identity_tags(scope, &current.id);
        tags.extend(r.tags()?);
        c.ec2
            .create_tags()
            .resources(&current.physical_id)
            .set_tags(Some(sdk_tags(&tags)))
            .send()
            .await
            .map_err(|e| api_err("ec2:CreateTags", e))?;
    }
    let mut out = current.clone();
    for f in &changed {
        if let Some(v) = fields.get(*f) {
            out.fields.insert(f.to_string(), v.clone());
        }
    }
    if let Some(v) = fields.get("tags") {
        out.fields.insert("tags".into(), v.clone());
    }
    if changed.is_empty() {
        return Ok(out);
    }
    match current.kind {
        Kind::Vpc => network::update_vpc(c, current, &r, &changed).await?,
        Kind::InternetGateway => network::update_igw(c, current, &r, &changed).await?,
        Kind::Subnet => network::update_subnet(c, current, &r, &changed).await?,
        Kind::RouteTable => routes::update(c, current, &r, &changed).await?,
        Kind::SecurityGroup => sg::update(c, current, &r, &changed).await?,
        _ => return Err(not_in_place(&r, changed[0])),
    }
    Ok(out)
}

/// The error for a field that only a replacement can change.
pub(crate) fn not_in_place(r: &Reader<'_>, field: &str) -> CloudError {
    CloudError::Field {
        kind: r.kind,
        id: r.id.clone(),
        field: field.to_string(),
        problem: "cannot be changed in place (plan a replacement)".to_string(),
    }
}

pub async fn delete(
    c: &Clients,
    _scope: &Scope,
    current: &Observed,
    _options: &DeleteOptions,
) -> Result<(), CloudError> {
    let id = current.physical_id.as_str();
    let r = match current.kind {
        Kind::Vpc => c
            .ec2
            .delete_vpc()
            .vpc_id(id)
            .send()
            .await
            .map(drop)
            .map_err(|e| api_err("ec2:DeleteVpc", e)),
        Kind::InternetGateway => network::delete_igw(c, id).await,
        Kind::Subnet => c
            .ec2
            .delete_subnet()
            .subnet_id(id)
            .send()
            .await
            .map(drop)
            .map_err(|e| api_err("ec2:DeleteSubnet", e)),
        Kind::ElasticIp => c
            .ec2
            .release_address()
            .allocation_id(id)
            .send()
            .await
            .map(drop)
            .map_err(|e| api_err("ec2:ReleaseAddress", e)),
        Kind::NatGateway => c
            .ec2
            .delete_nat_gateway()
            .nat_gateway_id(id)
            .send()
            .await
            .map(drop)
            .map_err(|e| api_err("ec2:DeleteNatGateway", e)),
        Kind::RouteTable => routes::delete(c, id).await,
        Kind::SecurityGroup => c
            .ec2
            .delete_security_group()
            .group_id(id)
            .send()
            .await
            .map(drop)
            .map_err(|e| api_err("ec2:DeleteSecurityGroup", e)),
        Kind::LaunchTemplate => c
            .ec2
            .delete_launch_template()
            .launch_template_id(id)
            .send()
            .await
            .map(drop)
            .map_err(|e| api_err("ec2:DeleteLaunchTemplate", e)),
        Kind::Instance => c
            .ec2
            .terminate_instances()
            .instance_ids(id)
            .send()
            .await
            .map(drop)
            .map_err(|e| api_err("ec2:TerminateInstances", e)),
        other => Err(CloudError::Other(format!("ec2 does not manage {other}"))),
    };
    ok_if_not_found(r)
}

pub async fn poll(
    c: &Clients,
    _scope: &Scope,
    current: &Observed,
    want: Want,
) -> Result<Readiness, CloudError> {
    let found = list(
        c,
        current.kind,
        Query::Physical(&current.physical_id),
        false,
    )
    .await?;
    let Some(mut o) = found.into_iter().next() else {
        // EC2 is eventually consistent: right after a create, a describe by id may not find the
        // resource yet. While waiting for it to be ready that is "not yet", not "gone" (the
        // executor's per-kind timeout ends a wait for something really deleted meanwhile).
        return Ok(match want {
            Want::Gone => Readiness::Gone,
            Want::Ready => Readiness::Pending("not visible yet".into()),
        });
    };
    // Fields a single describe does not report (VPC DNS attributes) keep their known values.
    for (k, v) in &current.fields {
        o.fields.entry(k.clone()).or_insert_with(|| v.clone());
    }
    Ok(readiness(o, want))
}

/// Where a resource is, from its status word.
fn readiness(o: Observed, want: Want) -> Readiness {
    let status = o.status.clone();
    match (o.kind, status.as_str()) {
        (Kind::NatGateway, "deleted") | (Kind::Instance, "terminated") => Readiness::Gone,
        (_, _) if want == Want::Gone => Readiness::Pending(status),
        (Kind::NatGateway, s) if s.starts_with("failed") => Readiness::Failed(status),
        (Kind::NatGateway, "available") => Readiness::Ready(o),
        (Kind::NatGateway, _) => Readiness::Pending(status),
        (Kind::Instance, "running") => Readiness::Ready(o),
        (Kind::Instance, "pending") => Readiness::Pending(status),
        (Kind::Instance, _) => Readiness::Failed(format!(
            "instance {} is {status}: it will not become running by itself",
            o.physical_id
        )),
        (Kind::Vpc | Kind::Subnet, "pending") => Readiness::Pending(status),
        _ => Readiness::Ready(o),
    }
}

/// Facts about an AMI, or None if it does not exist.
pub async fn image(c: &Clients, image_id: &str) -> Result<Option<ImageInfo>, CloudError> {
    let out = c.ec2.describe_images().image_ids(image_id).send().await;
    let out = match out.map_err(|e| api_err("ec2:DescribeImages", e)) {
        Ok(out) => out,
        Err(CloudError::Api { code, .. })
            if code.starts_with("InvalidAMIID") || code == "InvalidParameterValue" =>
        {
            return Ok(None)
        }
        Err(e) => return Err(e),
    };
    Ok(out
        .images()
        .iter()
        .find(|i| i.image_id() == Some(image_id))
        .map(|i| ImageInfo {
            image_id: image_id.to_string(),
            architecture: i
                .architecture()
                .map(|a| a.as_str().to_string())
                .unwrap_or_default(),
            root_device_name: i.root_device_name().unwrap_or_default().to_string(),
        }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_token_is_64_hex_and_depends_on_everything() {
        let scope = Scope {
            stack: "demo".into(),
            region: "eu-west-1".into(),
        };
        let f: Fields = [("cidr_block".to_string(), Value::str("10.0.0.0/16"))].into();
        let t = client_token(&scope, &ResourceId::from("net.vpc"), &f, "");
        assert_eq!(t.len(), 64);
        assert!(t.chars().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(
            t,
            client_token(&scope, &ResourceId::from("net.vpc"), &f, "")
        );
        assert_ne!(
            t,
            client_token(&scope, &ResourceId::from("net.vpc2"), &f, "")
        );
        assert_ne!(
            t,
            client_token(&scope, &ResourceId::from("net.vpc"), &Fields::new(), "")
        );
        assert_ne!(
            t,
            client_token(&scope, &ResourceId::from("net.vpc"), &f, "x")
        );
    }

    #[test]
    fn differing_fields_follow_the_compare_rules() {
        let desired: Fields = [
            ("subnet_ids".to_string(), Value::strs(["a", "b"])),
            ("tags".to_string(), tags_value([("k", "v")])),
            ("vpc_id".to_string(), Value::str("vpc-1")),
        ]
        .into();
        let observed: Fields = [
            ("subnet_ids".to_string(), Value::strs(["b", "a"])),
            ("tags".to_string(), tags_value([("k", "v"), ("other", "x")])),
            ("vpc_id".to_string(), Value::str("vpc-1")),
        ]
        .into();
        assert!(differing_fields(Kind::RouteTable, &desired, &observed).is_empty());
        let mut o2 = observed.clone();
        o2.insert("subnet_ids".into(), Value::strs(["a"]));
        o2.remove("vpc_id");
        assert_eq!(
            differing_fields(Kind::RouteTable, &desired, &o2),
            ["subnet_ids", "vpc_id"]
        );
    }

    #[tokio::test]
    async fn settled_retries_not_found_only() {
        let calls = std::sync::atomic::AtomicUsize::new(0);
        let r = settled(|| async {
            match calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst) {
                0 => Err(CloudError::Api {
                    operation: "ec2:AttachInternetGateway".into(),
                    code: "InvalidInternetGatewayID.NotFound".into(),
                    message: "not yet".into(),
                    source: None,
                }),
                n => Ok(n),
            }
        })
        .await;
        assert_eq!(r.unwrap(), 1);
        let calls = std::sync::atomic::AtomicUsize::new(0);
        let r: Result<(), _> = settled(|| async {
            calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Err(CloudError::Other("refused".into()))
        })
        .await;
        assert!(r.is_err());
        assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 1);
    }

    #[test]
    fn readiness_by_status() {
        let o = observed(
            Kind::Instance,
            "i-1",
            BTreeMap::new(),
            Fields::new(),
            BTreeMap::new(),
            "running",
        );
        assert!(matches!(
            readiness(o.clone(), Want::Ready),
            Readiness::Ready(_)
        ));
        assert_eq!(
            readiness(o.clone(), Want::Gone),
            Readiness::Pending("running".into())
        );
        let mut t = o.clone();
        t.status = "terminated".into();
        assert_eq!(readiness(t, Want::Gone), Readiness::Gone);
        let mut s = o;
        s.status = "stopped".into();
        assert!(matches!(readiness(s, Want::Ready), Readiness::Failed(_)));
        let mut n = observed(
            Kind::NatGateway,
            "nat-1",
            BTreeMap::new(),
            Fields::new(),
            BTreeMap::new(),
            "failed: no capacity",
        );
        assert!(matches!(
            readiness(n.clone(), Want::Ready),
            Readiness::Failed(_)
        ));
        assert!(is_leaving(Kind::NatGateway, &n.status));
        n.status = "pending".into();
        assert_eq!(
            readiness(n, Want::Ready),
            Readiness::Pending("pending".into())
        );
    }
}
