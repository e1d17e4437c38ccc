//! Shared helpers of the service modules: reading resolved fields, building tags, and turning SDK
//! errors into [`CloudError`]s that name the operation and AWS's error code.

use crate::{Clients, Created, Cx, KindOps, Query, Update};
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::display::DisplayErrorContext;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use moodlestack_model::{
    CloudError, Fields, Kind, Lifecycle, Observed, Resource, ResourceId, Scope, Value, TAG_ID,
    TAG_STACK,
};
use std::collections::{BTreeMap, BTreeSet};

/// Reads fields of one resource, with errors that name the resource and the field.
pub struct Reader<'a> {
    pub kind: Kind,
    pub id: ResourceId,
    pub fields: &'a Fields,
}

impl<'a> Reader<'a> {
    pub fn new(kind: Kind, id: impl Into<ResourceId>, fields: &'a Fields) -> Self {
        Reader {
            kind,
            id: id.into(),
            fields,
        }
    }
    pub(crate) fn err(&self, field: &str, problem: &str) -> CloudError {
        CloudError::Field {
            kind: self.kind,
            id: self.id.clone(),
            field: field.to_string(),
            problem: problem.to_string(),
        }
    }
    pub fn has(&self, field: &str) -> bool {
        !matches!(self.fields.get(field), None | Some(Value::Null))
    }
    /// The field read as `read` reads it; an error saying it is missing or not `what` otherwise.
    fn read<T>(
        &self,
        field: &str,
        read: impl Fn(&'a Value) -> Option<T>,
        what: &str,
    ) -> Result<T, CloudError> {
        self.fields
            .get(field)
            .and_then(read)
            .ok_or_else(|| self.err(field, &format!("missing or not {what}")))
    }
    pub fn str(&self, field: &str) -> Result<&'a str, CloudError> {
        self.read(field, Value::as_str, "a string")
    }
    pub fn opt_str(&self, field: &str) -> Option<&'a str> {
        self.fields.get(field).and_then(Value::as_str)
    }
    pub fn int(&self, field: &str) -> Result<i64, CloudError> {
        self.read(field, Value::as_i64, "an integer")
    }
    pub fn opt_int(&self, field: &str) -> Option<i64> {
        self.fields.get(field).and_then(Value::as_i64)
    }
    pub fn int32(&self, field: &str) -> Result<i32, CloudError> {
        let v = self.int(field)?;
        i32::try_from(v).map_err(|_| self.err(field, "out of range"))
    }
    pub fn bool(&self, field: &str) -> Result<bool, CloudError> {
        self.read(field, Value::as_bool, "a boolean")
    }
    pub fn opt_bool(&self, field: &str) -> Option<bool> {
        self.fields.get(field).and_then(Value::as_bool)
    }
    pub fn strs(&self, field: &str) -> Result<Vec<String>, CloudError> {
        self.list(field)?
            .iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| self.err(field, "list item is not a string"))
            })
            .collect()
    }
    pub fn list(&self, field: &str) -> Result<&'a [Value], CloudError> {
        self.read(field, Value::as_list, "a list")
    }
    pub fn map(&self, field: &str) -> Result<&'a BTreeMap<String, Value>, CloudError> {
        self.read(field, Value::as_map, "a map")
    }
    /// A map of strings (`tags`, `parameters`); empty when absent.
    pub fn string_map(&self, field: &str) -> Result<BTreeMap<String, String>, CloudError> {
        let Some(v) = self.fields.get(field) else {
            return Ok(BTreeMap::new());
        };
        let m = v.as_map().ok_or_else(|| self.err(field, "not a map"))?;
        m.iter()
            .map(|(k, v)| match v {
                Value::Str(s) => Ok((k.clone(), s.clone())),
                Value::Int(i) => Ok((k.clone(), i.to_string())),
                Value::Bool(b) => Ok((k.clone(), b.to_string())),
                _ => Err(self.err(field, "map value is not a string")),
            })
            .collect()
    }
    /// The `tags` field.
    pub fn tags(&self) -> Result<BTreeMap<String, String>, CloudError> {
        self.string_map("tags")
    }
    /// Every tag the resource carries in `scope`'s stack: the `tags` field and the stack's
    /// identity tags ([`moodlestack_model::identity_tags`], which win).
    pub fn stack_tags(&self, scope: &Scope) -> Result<BTreeMap<String, String>, CloudError> {
        let mut tags = self.tags()?;
        tags.extend(moodlestack_model::identity_tags(scope, &self.id));
        Ok(tags)
    }
    /// [`Reader::stack_tags`] in the shape of an SDK whose tag builder can refuse one (IAM, KMS,
    /// SNS): see [`built_tags`].
    pub fn built_stack_tags<T, E: std::fmt::Display>(
        &self,
        scope: &Scope,
        build: impl Fn(&str, &str) -> Result<T, E>,
    ) -> Result<Vec<T>, CloudError> {
        built_tags(self, &self.stack_tags(scope)?, build)
    }
}

/// Tags in the shape of an SDK whose tag builder can refuse one (IAM, EFS): `build` makes one of
/// a key and a value; a refused tag is a problem of `r`'s `tags` field.
pub fn built_tags<T, E: std::fmt::Display>(
    r: &Reader<'_>,
    tags: &BTreeMap<String, String>,
    build: impl Fn(&str, &str) -> Result<T, E>,
) -> Result<Vec<T>, CloudError> {
    tags.iter()
        .map(|(k, v)| build(k, v).map_err(|e| r.err("tags", &format!("tag {k}: {e}"))))
        .collect()
}

/// What an SDK builder that can refuse (a missing required member) built, or the refusal as the
/// answer of `operation` about `what`.
pub fn built<T, E: std::fmt::Display>(
    operation: &str,
    what: &str,
    r: Result<T, E>,
) -> Result<T, CloudError> {
    r.map_err(|e| CloudError::UnexpectedAnswer {
        operation: operation.into(),
        what: format!("{what}: {e}"),
    })
}

/// Tags as the `tags` field value.
pub fn tags_value<I, K, V>(tags: I) -> Value
where
    I: IntoIterator<Item = (K, V)>,
    K: Into<String>,
    V: Into<String>,
{
    Value::Map(
        tags.into_iter()
            .map(|(k, v)| (k.into(), Value::Str(v.into())))
            .collect(),
    )
}

/// A sorted list of strings as a field value.
pub fn sorted_strs<I, S>(items: I) -> Value
where
    I: IntoIterator<Item = S>,
    S: Into<String>,
{
    let mut v: Vec<String> = items.into_iter().map(Into::into).collect();
    v.sort();
    Value::strs(v)
}

/// The service error of an SDK error: its code and message readable ([`api_err`]), sendable.
pub trait SdkFault: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static {}
impl<E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static> SdkFault for E {}

/// The raw response of an SDK error: printable, sendable.
pub trait SdkRaw: std::fmt::Debug + Send + Sync + 'static {}
impl<R: std::fmt::Debug + Send + Sync + 'static> SdkRaw for R {}

/// The answer of an SDK request: `T`, or the SDK's error.
pub type Sdk<T, E, R> = Result<T, SdkError<E, R>>;

/// Converts an SDK error into a [`CloudError`] naming the operation (`ec2:CreateVpc`), keeping the
/// SDK's error as the source.
pub fn api_err<E: SdkFault, R: SdkRaw>(operation: &str, err: SdkError<E, R>) -> CloudError {
    match &err {
        SdkError::ServiceError(service) => {
            let e = service.err();
            CloudError::Api {
                operation: operation.to_string(),
                code: e.code().unwrap_or("Unknown").to_string(),
                message: e.message().unwrap_or_default().to_string(),
                source: Some(Box::new(err)),
            }
        }
        _ => CloudError::Transport {
            operation: operation.to_string(),
            detail: DisplayErrorContext(&err).to_string(),
            source: Box::new(err),
        },
    }
}

/// True when the error is AWS's "does not exist" for the resource (codes vary per service).
pub fn is_not_found(err: &CloudError) -> bool {
    match err {
        CloudError::NotFound(_) => true,
        CloudError::Api { code, .. } => {
            code.contains("NotFound") || code.ends_with(".NotFound") || code == "NoSuchEntity"
        }
        _ => false,
    }
}

/// Canonical JSON text (keys sorted, compact) of a policy document, for comparing IAM policies.
pub fn canonical_json(text: &str) -> String {
    match serde_json::from_str::<serde_json::Value>(text) {
        Ok(v) => v.to_string(),
        Err(_) => text.to_string(),
    }
}

/// The logical id of a resource whose tags say it belongs to `scope`'s stack (None: not ours).
pub fn owned_id(scope: &Scope, tags: &BTreeMap<String, String>) -> Option<ResourceId> {
    if tags.get(TAG_STACK) != Some(&scope.stack) {
        return None;
    }
    tags.get(TAG_ID).map(|id| ResourceId(id.clone()))
}

/// True when `e` is the service error `want`.
pub fn is_code(e: &CloudError, want: &str) -> bool {
    matches!(e, CloudError::Api { code, .. } if code == want)
}

/// `Ok(None)` for "does not exist", the value or the error otherwise.
pub fn not_found_is_none<T>(r: Result<T, CloudError>) -> Result<Option<T>, CloudError> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(e) if is_not_found(&e) => Ok(None),
        Err(e) => Err(e),
    }
}

/// The values of `field` (names) of the desired resources of `kind`, sorted and unique.
pub fn desired_names(desired: &[Resource], kind: Kind, field: &str) -> Vec<String> {
    let mut names: Vec<String> = desired
        .iter()
        .filter(|r| r.kind == kind)
        .filter_map(|r| {
            r.fields
                .get(field)
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .collect();
    names.sort();
    names.dedup();
    names
}

/// The names a list asks for, for kinds AWS keys by a deterministic name whose describes take no
/// tag filter (RDS, ElastiCache): every name the desired graph declares for the kind plus anything
/// with the stack's prefix (what the stack no longer declares is found this way, to be deleted)
/// for [`Query::Stack`]; the desired name for [`Query::Logical`]; the physical id for
/// [`Query::Physical`]. The tags of the candidates decide what is the stack's.
#[derive(Debug)]
pub enum Names {
    /// Names with the prefix or among the declared ones.
    Stack {
        /// `<stack>-`.
        prefix: String,
        /// The names the desired resources of the kind declare.
        declared: BTreeSet<String>,
    },
    /// Exactly this name.
    One(String),
    /// Nothing (a logical query without the name field).
    Nothing,
}

impl Names {
    pub fn new(cx: &Cx<'_>, kind: Kind, q: Query<'_>) -> Self {
        let Some(field) = moodlestack_model::spec(kind).name_field else {
            return Names::Nothing;
        };
        match q {
            Query::Stack => Names::Stack {
                prefix: format!("{}-", cx.scope.stack),
                declared: desired_names(cx.desired, kind, field).into_iter().collect(),
            },
            Query::Logical { fields, .. } => match fields.get(field).and_then(Value::as_str) {
                Some(name) => Names::One(name.to_string()),
                None => Names::Nothing,
            },
            Query::Physical(name) => Names::One(name.to_string()),
        }
    }
    /// [`Names::new`], or None when the query can ask for nothing (a list then finds nothing).
    pub fn asked(cx: &Cx<'_>, kind: Kind, q: Query<'_>) -> Option<Self> {
        match Names::new(cx, kind, q) {
            Names::Nothing => None,
            names => Some(names),
        }
    }
    /// The one name to describe, if the query asks for one.
    pub fn one(&self) -> Option<&str> {
        match self {
            Names::One(n) => Some(n),
            _ => None,
        }
    }
    /// Whether `name` is asked for.
    pub fn matches(&self, name: &str) -> bool {
        match self {
            Names::Stack { prefix, declared } => {
                name.starts_with(prefix.as_str()) || declared.contains(name)
            }
            Names::One(n) => n == name,
            Names::Nothing => false,
        }
    }
}

/// The desired fields of resource `id` of `kind`, for kinds that report values as the stack spells
/// them (engine versions, the managed parameter names): the query's own for [`Query::Logical`],
/// the desired graph's otherwise.
pub fn desired_fields<'a>(
    desired: &'a [Resource],
    q: Query<'a>,
    kind: Kind,
    id: &ResourceId,
) -> Option<&'a Fields> {
    match q {
        Query::Logical { fields, .. } => Some(fields),
        _ => desired
            .iter()
            .find(|r| r.kind == kind && &r.id == id)
            .map(|r| &r.fields),
    }
}

/// An answer of `operation` that is not what it should be (`what`).
pub fn unexpected(operation: &str, what: impl Into<String>) -> CloudError {
    CloudError::UnexpectedAnswer {
        operation: operation.into(),
        what: what.into(),
    }
}

/// `Err(UnexpectedAnswer)` naming `operation` when a resource just made or changed is not (any
/// more) tagged with the stack.
pub fn tagged(operation: &str, name: &str, o: Option<Observed>) -> Result<Observed, CloudError> {
    o.ok_or_else(|| CloudError::UnexpectedAnswer {
        operation: operation.to_string(),
        what: format!("{name}: the answer lacks the resource or its tags"),
    })
}

/// A subnet group (RDS or ElastiCache: the same managed fields) as observed: [`usable`], with
/// its name as the physical id, and the service's status word.
#[allow(clippy::too_many_arguments)]
pub fn subnet_group_observed<'a>(
    kind: Kind,
    id: ResourceId,
    name: &str,
    arn: &str,
    description: &str,
    subnet_ids: impl IntoIterator<Item = &'a str>,
    tags: BTreeMap<String, String>,
    status: &str,
) -> Observed {
    let fields = Fields::from([
        ("name".to_string(), Value::str(name)),
        ("description".to_string(), Value::str(description)),
        ("subnet_ids".to_string(), sorted_strs(subnet_ids)),
        ("tags".to_string(), tags_value(tags)),
    ]);
    Observed {
        status: status.to_string(),
        ..usable(kind, id, name, arn, fields)
    }
}

/// Test support: checks an observation against its kind's descriptor, the contract every
/// [`crate::KindOps::list`] keeps: the observed field names are exactly the descriptor's fields
/// (less `absent`, the fields this sample legitimately lacks, e.g. the storage fields of an
/// Aurora member), every attribute is one the descriptor offers, `id` is among them.
#[cfg(test)]
pub(crate) fn assert_matches_spec(o: &Observed, absent: &[&str]) {
    let s = moodlestack_model::spec(o.kind);
    let want: std::collections::BTreeSet<&str> = s
        .fields
        .iter()
        .map(|f| f.name)
        .filter(|n| !absent.contains(n))
        .collect();
    let have: std::collections::BTreeSet<&str> = o.fields.keys().map(String::as_str).collect();
    assert_eq!(have, want, "{} observed fields vs its descriptor", o.kind);
    for a in o.attrs.keys() {
        assert!(
            s.has_attr(a),
            "{} reports attribute `{a}` its descriptor lacks",
            o.kind
        );
    }
    assert!(o.attrs.contains_key("id"), "{} reports no `id`", o.kind);
}

/// Test support: [`assert_matches_spec`], and the observation is ready and of logical id `id`.
#[cfg(test)]
pub(crate) fn assert_ready_as(o: &Observed, id: &str, absent: &[&str]) {
    assert_matches_spec(o, absent);
    assert_eq!(o.lifecycle, moodlestack_model::Lifecycle::Ready, "{id}");
    assert_eq!(o.id, id);
}

/// The items of a paginated list (`paginator.items().send().try_collect()`), its error naming
/// `operation`.
pub async fn collected<T, E: SdkFault, R: SdkRaw>(
    operation: &str,
    items: impl std::future::Future<Output = Sdk<Vec<T>, E, R>>,
) -> Result<Vec<T>, CloudError> {
    items.await.map_err(|e| api_err(operation, e))
}

/// The items of a paginated describe by `name` (or of all, without one): a NotFound answer to a
/// describe by name is an empty result.
pub async fn described<T, E: SdkFault, R: SdkRaw>(
    operation: &str,
    name: Option<&str>,
    items: impl std::future::Future<Output = Sdk<Vec<T>, E, R>>,
) -> Result<Vec<T>, CloudError> {
    match collected(operation, items).await {
        Err(e) if name.is_some() && is_not_found(&e) => Ok(Vec::new()),
        other => other,
    }
}

/// [`described`] over a paginated describe: sends `$request` (a fluent builder, its name or id
/// filter set from `$name`) through its paginator and collects the items.
macro_rules! described_by {
    ($operation:literal, $name:expr, $request:expr) => {
        $crate::fields::described(
            $operation,
            $name,
            $request.into_paginator().items().send().try_collect(),
        )
    };
}
pub(crate) use described_by;

/// The physical ids of what a list found that is not being deleted.
pub fn live_ids(found: &[Observed]) -> Vec<&str> {
    found
        .iter()
        .filter(|o| o.lifecycle != Lifecycle::Deleting)
        .map(|o| o.physical_id.as_str())
        .collect()
}

/// Awaits a request whose answer the caller does not need (deletes, attribute and tag writes):
/// `Ok(())`, or the error naming `operation`.
pub async fn sent<T, E: SdkFault, R: SdkRaw>(
    operation: &str,
    request: impl std::future::Future<Output = Sdk<T, E, R>>,
) -> Result<(), CloudError> {
    answer(operation, request).await.map(drop)
}

/// The whole of a `delete` that is one request naming the resource by its physical id:
/// `delete_by!(sent "ec2:DeleteVpc": cx.c.ec2.delete_vpc().vpc_id(current))` sends
/// `cx.c.ec2.delete_vpc().vpc_id(&current.physical_id)` through [`sent`] (or [`deleted`], where a
/// resource already gone counts as deleted).
macro_rules! delete_by {
    ($via:ident $operation:literal: $cx:ident.c.$svc:ident.$call:ident().$id:ident($current:ident)) => {
        $crate::fields::$via(
            $operation,
            $cx.c.$svc.$call().$id(&$current.physical_id).send(),
        )
        .await
    };
}
pub(crate) use delete_by;

/// Awaits a delete: done, also when AWS answers that the resource is already gone.
pub async fn deleted<T, E: SdkFault, R: SdkRaw>(
    operation: &str,
    request: impl std::future::Future<Output = Sdk<T, E, R>>,
) -> Result<(), CloudError> {
    match sent(operation, request).await {
        Err(e) if is_not_found(&e) => Ok(()),
        other => other,
    }
}

/// [`as_current`] for a read (named `operation`) right after an update: nothing found is an
/// unexpected answer naming the resource.
pub fn read_back(
    found: Option<Observed>,
    current: &Observed,
    operation: &str,
) -> Result<Observed, CloudError> {
    as_current(found, current, || CloudError::UnexpectedAnswer {
        operation: operation.to_string(),
        what: format!(
            "{} {} is gone after an update",
            current.kind, current.physical_id
        ),
    })
}

/// A resource of a kind AWS cannot tag (found through its parent, matched by its identity
/// fields), usable once listed. Its attributes are `id` and, when the kind offers one, `arn`
/// (both its physical id).
pub fn untagged(kind: Kind, physical_id: String, fields: Fields, status: &str) -> Observed {
    let mut attrs = BTreeMap::from([("id".to_string(), physical_id.clone())]);
    if moodlestack_model::spec(kind).has_attr("arn") {
        attrs.insert("arn".into(), physical_id.clone());
    }
    Observed {
        id: moodlestack_model::ObservedId::Untagged(physical_id.clone()),
        kind,
        physical_id,
        fields,
        attrs,
        status: status.into(),
        lifecycle: moodlestack_model::Lifecycle::Ready,
    }
}

/// The [`KindOps`] methods of a kind whose create answers with the resource usable (read back,
/// or stored synchronously by a put) and whose delete is done when it answers: the executor
/// polls neither ([`moodlestack_model::Cloud::settled`]).
macro_rules! settled_at_once {
    () => {
        fn ready_when_created(&self) -> bool {
            true
        }

        fn gone_when_deleted(&self) -> bool {
            true
        }
    };
}
pub(crate) use settled_at_once;

/// A resource of a kind without a status word (IAM entities, secrets, parameter groups): one that
/// can be read is usable. Its attributes are `id` (the physical id) and `arn`.
pub fn usable(
    kind: Kind,
    id: ResourceId,
    physical_id: &str,
    arn: &str,
    fields: Fields,
) -> Observed {
    Observed {
        id: id.into(),
        kind,
        physical_id: physical_id.to_string(),
        fields,
        attrs: BTreeMap::from([
            ("id".into(), physical_id.to_string()),
            ("arn".into(), arn.to_string()),
        ]),
        status: "available".into(),
        lifecycle: moodlestack_model::Lifecycle::Ready,
    }
}

/// The refusal of an update to `field`, which only replacing the `what` could change.
pub fn in_place_only(kind: Kind, r: &Reader<'_>, field: &str, what: &str) -> CloudError {
    CloudError::Field {
        kind,
        id: r.id.clone(),
        field: field.to_string(),
        problem: format!("cannot be changed in place (the {what} must be replaced)"),
    }
}

/// A tag of one service's SDK, read as a key and a value (None: no key, skipped).
pub trait SdkTag {
    fn key_value(&self) -> Option<(&str, &str)>;
}

/// SDK tag types whose key and value are optional.
macro_rules! optional_key_tags {
    ($($t:ty),*) => {$(
        impl SdkTag for $t {
            fn key_value(&self) -> Option<(&str, &str)> {
                Some((self.key()?, self.value().unwrap_or_default()))
            }
        }
    )*};
}
optional_key_tags!(
    aws_sdk_ec2::types::Tag,
    aws_sdk_rds::types::Tag,
    aws_sdk_elasticache::types::Tag,
    aws_sdk_elasticloadbalancingv2::types::Tag,
    aws_sdk_autoscaling::types::TagDescription,
    aws_sdk_secretsmanager::types::Tag,
    aws_sdk_cloudwatch::types::Tag
);

/// SDK tag types whose key and value are always there (IAM, S3, EFS, SNS).
macro_rules! required_key_tags {
    ($($t:ty),*) => {$(
        impl SdkTag for $t {
            fn key_value(&self) -> Option<(&str, &str)> {
                Some((self.key(), self.value()))
            }
        }
    )*};
}
required_key_tags!(
    aws_sdk_iam::types::Tag,
    aws_sdk_s3::types::Tag,
    aws_sdk_efs::types::Tag,
    aws_sdk_sns::types::Tag
);

/// An SDK's tag list as a map.
pub fn tag_map<T: SdkTag>(tags: &[T]) -> BTreeMap<String, String> {
    tags.iter()
        .filter_map(SdkTag::key_value)
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// What re-tagging `current` by its ARN takes (for services that tag by ARN, RDS and
/// ElastiCache): the ARN (an error naming `operation` when none is known) and the tags the stack
/// sets, its own plus the logical id (tags are compared as a subset: others' tags stay).
pub fn retag<'a>(
    operation: &str,
    current: &'a Observed,
    r: &Reader<'_>,
) -> Result<(&'a str, BTreeMap<String, String>), CloudError> {
    let arn = current
        .attrs
        .get("arn")
        .ok_or_else(|| CloudError::UnexpectedAnswer {
            operation: operation.into(),
            what: format!("{} {}: no ARN known to tag", current.kind, current.id),
        })?;
    let mut tags = r.tags()?;
    tags.insert(TAG_ID.to_string(), current.id.to_string());
    Ok((arn, tags))
}

/// `current` with the `changed` fields set to `r`'s values, for updates after which the executor
/// polls (lists by id) anyway: no read.
pub fn with_changes(current: &Observed, r: &Reader<'_>, changed: &[&str]) -> Observed {
    let mut out = current.clone();
    for f in changed {
        if let Some(v) = r.fields.get(*f) {
            out.fields.insert((*f).to_string(), v.clone());
        }
    }
    out
}

/// Test support: the scope of the stack `stack` in the test region.
#[cfg(test)]
pub(crate) fn test_scope(stack: &str) -> Scope {
    Scope {
        stack: stack.into(),
        region: "eu-west-1".into(),
    }
}

/// The attributes of a resource: `id`, plus those of `more` that are known.
pub fn attrs_with_id<'a>(
    id: &str,
    more: impl IntoIterator<Item = (&'a str, Option<String>)>,
) -> BTreeMap<String, String> {
    std::iter::once(("id".to_string(), id.to_string()))
        .chain(
            more.into_iter()
                .filter_map(|(k, v)| Some((k.to_string(), v?))),
        )
        .collect()
}

/// Every one of `requests` in flight at once (independent reads), their answers joined: each
/// answers none, one (`Option`) or many (`Vec`) resources; the first error is the answer.
pub async fn all_at_once<I, F>(
    requests: impl IntoIterator<Item = F>,
) -> Result<Vec<I::Item>, CloudError>
where
    I: IntoIterator,
    F: std::future::Future<Output = Result<I, CloudError>>,
{
    let each = futures::future::try_join_all(requests).await?;
    Ok(each.into_iter().flatten().collect())
}

/// The stack's resources among `found`, a describe's answer for `names` (see [`Names`]): `observe`
/// on every one whose `name` is asked for, all in flight at once.
pub async fn observe_named<T, O>(
    names: &Names,
    found: Vec<T>,
    name: impl Fn(&T) -> Option<&str>,
    observe: impl FnMut(T) -> O,
) -> Result<Vec<Observed>, CloudError>
where
    O: std::future::Future<Output = Result<Option<Observed>, CloudError>>,
{
    all_at_once(
        found
            .into_iter()
            .filter(|g| name(g).is_some_and(|n| names.matches(n)))
            .map(observe),
    )
    .await
}

/// True when `e` is an "already exists" answer whose code starts with `code` (RDS and ElastiCache
/// answer `DBInstanceAlreadyExists`, `DBInstanceAlreadyExistsFault`, ...).
pub fn already_exists(e: &CloudError, code: &str) -> bool {
    matches!(e, CloudError::Api { code: c, .. } if c.starts_with(code))
}

/// The calls of a subnet group kind in its service (RDS or ElastiCache: the same managed fields,
/// the same calls under other names), for the [`SubnetGroupOps`] written once for both.
#[async_trait::async_trait]
pub(crate) trait SubnetGroupApi: Send + Sync {
    const KIND: Kind;
    type Group: Send + Sync;
    /// The groups named `name`, or all of them.
    async fn describe(c: &Clients, name: Option<&str>) -> Result<Vec<Self::Group>, CloudError>;
    fn name(g: &Self::Group) -> Option<&str>;
    /// `g` as observed, its tags read with one more call; None when it is not the stack's.
    async fn observe(
        c: &Clients,
        scope: &Scope,
        g: Self::Group,
    ) -> Result<Option<Observed>, CloudError>;
    /// [`crate::KindOps::create`].
    async fn create(cx: &Cx<'_>, r: &Reader<'_>) -> Result<Created, CloudError>;
    /// Sets the description and the subnets of the group named `name`.
    async fn modify(
        c: &Clients,
        name: &str,
        description: &str,
        subnet_ids: Vec<String>,
    ) -> Result<(), CloudError>;
    /// Adds or overwrites the tags the stack sets (others' tags stay).
    async fn put_tags(c: &Clients, current: &Observed, r: &Reader<'_>) -> Result<(), CloudError>;
    /// Deletes the group named `name`.
    async fn delete(c: &Clients, name: &str) -> Result<(), CloudError>;
}

/// The [`SubnetGroupApi`] `$api` of one service (its client `$svc`): RDS and ElastiCache make the
/// same calls under other names, given here (`$name`: the request member and the getter of the
/// group's name, `$desc`: of its description, `$arn`: the getter of its ARN). What the services
/// do differently is given as expressions: `$status` (the status word of the group `$sg`),
/// `$observe` (the group `$g` as observed, its tags read), `$tags` (every tag of the create, in
/// the service's shape) and `$made` (the create's answer `$out` as [`Created`]).
macro_rules! subnet_group_api {
    (
        $(#[$doc:meta])*
        $api:ident: $kind:expr, $group:ty, client $svc:ident,
        name: $name:ident, description: $desc:ident, arn: $arn:ident,
        status($sg:ident) => $status:expr,
        describe: $describe:ident.$set_name:ident($describe_op:literal),
        observe($c:ident, $scope:ident, $g:ident) => $observe:expr,
        create($cx:ident, $r:ident, $nm:ident, $out:ident):
            $create:ident($create_op:literal, exists $taken:literal),
            tags => $tags:expr,
            made => $made:expr,
        modify: $modify:ident($modify_op:literal),
        put_tags: $put_tags:path,
        delete: $delete:ident($delete_op:literal),
    ) => {
        $(#[$doc])*
        pub(crate) struct $api;

        impl $api {
            /// A group as observed, with its tags; None when it is not tagged with the stack.
            fn observed(
                scope: &Scope,
                $sg: &$group,
                tags: std::collections::BTreeMap<String, String>,
            ) -> Option<Observed> {
                let (name, arn) = ($sg.$name()?, $sg.$arn()?);
                let id = $crate::fields::owned_id(scope, &tags)?;
                Some($crate::fields::subnet_group_observed(
                    $kind,
                    id,
                    name,
                    arn,
                    $sg.$desc().unwrap_or_default(),
                    $sg.subnets().iter().filter_map(|s| s.subnet_identifier()),
                    tags,
                    $status,
                ))
            }
        }

        #[async_trait]
        impl $crate::fields::SubnetGroupApi for $api {
            const KIND: Kind = $kind;
            type Group = $group;
            async fn describe(c: &Clients, name: Option<&str>) -> Result<Vec<$group>, CloudError> {
                let req = c.$svc.$describe().$set_name(name.map(str::to_string));
                $crate::fields::described_by!($describe_op, name, req).await
            }
            fn name(g: &$group) -> Option<&str> {
                g.$name()
            }
            async fn observe(
                $c: &Clients,
                $scope: &Scope,
                $g: $group,
            ) -> Result<Option<Observed>, CloudError> {
                $observe
            }
            async fn create($cx: &Cx<'_>, $r: &Reader<'_>) -> Result<Created, CloudError> {
                let $nm = $r.str("name")?;
                let res = $cx
                    .c
                    .$svc
                    .$create()
                    .$name($nm)
                    .$desc($r.str("description")?)
                    .set_subnet_ids(Some($r.strs("subnet_ids")?))
                    .set_tags(Some($tags))
                    .send()
                    .await;
                match res {
                    Ok($out) => $made,
                    Err(e) => $crate::fields::exists_or_err($create_op, e, $taken),
                }
            }
            async fn modify(
                c: &Clients,
                name: &str,
                description: &str,
                subnet_ids: Vec<String>,
            ) -> Result<(), CloudError> {
                let req = c.$svc.$modify().$name(name).$desc(description);
                let req = req.set_subnet_ids(Some(subnet_ids));
                $crate::fields::sent($modify_op, req.send()).await
            }
            async fn put_tags(
                c: &Clients,
                current: &Observed,
                r: &Reader<'_>,
            ) -> Result<(), CloudError> {
                $put_tags(c, current, r).await
            }
            async fn delete(c: &Clients, name: &str) -> Result<(), CloudError> {
                $crate::fields::sent($delete_op, c.$svc.$delete().$name(name).send()).await
            }
        }
    };
}
pub(crate) use subnet_group_api;

/// The [`KindOps`] of a subnet group kind, over its service's calls `A`.
pub(crate) struct SubnetGroupOps<A>(std::marker::PhantomData<A>);

impl<A> SubnetGroupOps<A> {
    /// The implementation, for the registry.
    pub(crate) const OPS: Self = Self(std::marker::PhantomData);
}

#[async_trait::async_trait]
impl<A: SubnetGroupApi> KindOps for SubnetGroupOps<A> {
    /// ONE describe (of the name asked for, or of all), the tags of the candidates [`Names`] asks
    /// for read all at once.
    async fn list(&self, cx: &Cx<'_>, q: Query<'_>) -> Result<Vec<Observed>, CloudError> {
        let Some(names) = Names::asked(cx, A::KIND, q) else {
            return Ok(Vec::new());
        };
        let groups = A::describe(cx.c, names.one()).await?;
        observe_named(&names, groups, A::name, |g| A::observe(cx.c, cx.scope, g)).await
    }

    async fn create(&self, cx: &Cx<'_>, r: &Reader<'_>) -> Result<Created, CloudError> {
        A::create(cx, r).await
    }

    /// One modification of the description and the subnets, the tags, and no read (the
    /// executor polls right after an update).
    async fn update(&self, cx: &Cx<'_>, u: Update<'_>) -> Result<Observed, CloudError> {
        let (current, r, changed) = u.parts();
        if changed.contains(&"description") || changed.contains(&"subnet_ids") {
            let (description, subnet_ids) = (r.str("description")?, r.strs("subnet_ids")?);
            A::modify(cx.c, &current.physical_id, description, subnet_ids).await?;
        }
        if changed.contains(&"tags") {
            A::put_tags(cx.c, current, r).await?;
        }
        Ok(with_changes(current, r, changed))
    }

    async fn delete(&self, cx: &Cx<'_>, current: &Observed) -> Result<(), CloudError> {
        A::delete(cx.c, &current.physical_id).await
    }
}

/// The outcome of a create call that failed with `err`: [`Created::Exists`] when AWS answers that
/// the name is taken (a code starting with `code`, see [`already_exists`]), the error otherwise.
pub fn exists_or_err<E: SdkFault, R: SdkRaw>(
    operation: &str,
    err: SdkError<E, R>,
    code: &str,
) -> Result<crate::Created, CloudError> {
    match api_err(operation, err) {
        err if already_exists(&err, code) => Ok(crate::Created::Exists),
        err => Err(err),
    }
}

/// A resource as read back after an update (`found`), under `current`'s logical id; `gone`'s error
/// when the read found nothing.
pub fn as_current(
    found: Option<Observed>,
    current: &Observed,
    gone: impl FnOnce() -> CloudError,
) -> Result<Observed, CloudError> {
    let mut o = found.ok_or_else(gone)?;
    o.id = current.id.clone();
    Ok(o)
}

/// Awaits a create call: its answer, or None when AWS answers that the name is taken (the
/// service error `taken`; the create is then [`Created::Exists`]), or the error naming
/// `operation`.
pub async fn unless_taken<T, E: SdkFault, R: SdkRaw>(
    operation: &str,
    taken: &str,
    request: impl std::future::Future<Output = Sdk<T, E, R>>,
) -> Result<Option<T>, CloudError> {
    match answer(operation, request).await {
        Ok(out) => Ok(Some(out)),
        Err(e) if is_code(&e, taken) => Ok(None),
        Err(e) => Err(e),
    }
}

/// [`KindOps::list`] of a kind found by its name ([`Names`]): the stack's resources as `stack`
/// lists them (a future, awaited only for a stack query), the one name a logical or physical
/// query asks for as `one` reads it, nothing for a logical query without the name.
pub async fn by_name<S, O, I>(
    cx: &Cx<'_>,
    kind: Kind,
    q: Query<'_>,
    stack: S,
    one: impl FnOnce(String) -> O,
) -> Result<Vec<Observed>, CloudError>
where
    S: std::future::Future<Output = Result<Vec<Observed>, CloudError>>,
    O: std::future::Future<Output = Result<I, CloudError>>,
    I: IntoIterator<Item = Observed>,
{
    match Names::new(cx, kind, q) {
        Names::Stack { .. } => stack.await,
        Names::One(name) => Ok(one(name).await?.into_iter().collect()),
        Names::Nothing => Ok(Vec::new()),
    }
}

/// Awaits a request: its answer, or the error naming `operation`.
pub async fn answer<T, E: SdkFault, R: SdkRaw>(
    operation: &str,
    request: impl std::future::Future<Output = Sdk<T, E, R>>,
) -> Result<T, CloudError> {
    request.await.map_err(|e| api_err(operation, e))
}

/// Optional fields: absent (or null) reads as `None` or empty, present ones as their plain reads.
impl<'a> Reader<'a> {
    pub fn opt_int32(&self, field: &str) -> Result<Option<i32>, CloudError> {
        if self.has(field) {
            self.int32(field).map(Some)
        } else {
            Ok(None)
        }
    }
    pub fn strs_or_empty(&self, field: &str) -> Result<Vec<String>, CloudError> {
        if self.has(field) {
            self.strs(field)
        } else {
            Ok(Vec::new())
        }
    }
    pub fn list_or_empty(&self, field: &str) -> Result<&'a [Value], CloudError> {
        if self.has(field) {
            self.list(field)
        } else {
            Ok(&[])
        }
    }
}

/// Every item of a paginated list, from its collected pages, or the error naming `operation`.
pub fn all_pages<P, T: Clone, E: SdkFault, R: SdkRaw>(
    operation: &str,
    pages: Sdk<Vec<P>, E, R>,
    items: impl Fn(&P) -> &[T],
) -> Result<Vec<T>, CloudError> {
    let pages = pages.map_err(|e| api_err(operation, e))?;
    Ok(pages.iter().flat_map(items).cloned().collect())
}

/// The fields of an observation from what a describe reported, by name: a value AWS left out
/// (`None`) is left out.
pub fn reported<'n>(values: impl IntoIterator<Item = (&'n str, Option<Value>)>) -> Fields {
    values
        .into_iter()
        .filter_map(|(name, v)| Some((name.to_string(), v?)))
        .collect()
}

/// A time AWS reports, in Unix seconds (0 when absent or before 1970).
pub fn unix_secs(t: Option<&aws_smithy_types::DateTime>) -> u64 {
    t.and_then(|d| u64::try_from(d.secs()).ok()).unwrap_or(0)
}

/// A 32-bit integer AWS reports, as a field value.
pub fn int(v: i32) -> Value {
    Value::Int(v.into())
}

/// Runs `call` again while its error is one that clears by itself (`passing`: a resource made a
/// moment ago that EC2 does not know yet, one still being created or modified), with back-off
/// from 200 ms doubling up to 10 s, until `limit` has been waited; then its answer stands. For
/// reads and follow-up calls that cannot wait for the executor's step retry (a read inside a
/// list, the second call of a create).
pub async fn again_while<T, F, Fut>(
    passing: impl Fn(&CloudError) -> bool,
    limit: std::time::Duration,
    mut call: F,
) -> Result<T, CloudError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, CloudError>>,
{
    let mut delay = std::time::Duration::from_millis(200);
    let mut waited = std::time::Duration::ZERO;
    loop {
        match call().await {
            Err(e) if passing(&e) && waited < limit => {
                tokio::time::sleep(delay).await;
                waited += delay;
                delay = (delay * 2).min(std::time::Duration::from_secs(10));
            }
            other => return other,
        }
    }
}
