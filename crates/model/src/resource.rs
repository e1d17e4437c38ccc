//! Desired and observed resources.

use crate::{Fields, Kind, Value};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Tag naming the stack a resource belongs to. Applied on the create call itself.
pub const TAG_STACK: &str = "moodlestack:stack";
/// Tag holding the resource's logical id (e.g. `db.instance`). Applied on the create call itself.
pub const TAG_ID: &str = "moodlestack:id";
/// Tag holding when the stack expires (RFC 3339 UTC, `2026-12-04T05:00:00Z`), set by `apply --ttl`
/// on every taggable resource; `moodlestack gc` destroys a stack once it has passed. A stack
/// without it never expires.
pub const TAG_EXPIRES: &str = "moodlestack:expires-at";

/// A stable logical id such as `net.subnet.private.a`, `db.instance` or `web.asg`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ResourceId(pub String);

impl ResourceId {
    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}
impl std::fmt::Display for ResourceId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}
impl From<&str> for ResourceId {
    fn from(s: &str) -> Self {
        ResourceId(s.to_string())
    }
}
impl From<String> for ResourceId {
    fn from(s: String) -> Self {
        ResourceId(s)
    }
}
impl From<&ResourceId> for ResourceId {
    fn from(s: &ResourceId) -> Self {
        s.clone()
    }
}

/// A resource the stack declares: what should exist.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Resource {
    /// The logical id.
    pub id: ResourceId,
    /// The resource's kind.
    pub kind: Kind,
    /// The managed properties, keyed by the kind's field names ([`crate::spec`]). Values may hold
    /// references to other resources; those are this resource's dependencies.
    pub fields: Fields,
    /// Dependencies that no field references (ordering only, e.g. the NAT gateway waits for the
    /// internet gateway).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extra_deps: Vec<ResourceId>,
}

impl Resource {
    /// A resource of `kind` with these `fields`.
    pub fn with_fields(id: impl Into<ResourceId>, kind: Kind, fields: Fields) -> Self {
        Resource {
            fields,
            ..Resource::new(id, kind)
        }
    }

    /// A resource of `kind` with no fields yet.
    pub fn new(id: impl Into<ResourceId>, kind: Kind) -> Self {
        Resource {
            id: id.into(),
            kind,
            fields: Fields::new(),
            extra_deps: Vec::new(),
        }
    }
    /// Builder-style field setter.
    pub fn with(mut self, field: &str, value: impl Into<Value>) -> Self {
        debug_assert!(
            crate::spec(self.kind).field(field).is_some(),
            "{:?} has no field {field}",
            self.kind
        );
        self.fields.insert(field.to_string(), value.into());
        self
    }
    /// Builder-style: depend on `dep` without referencing it.
    pub fn after(mut self, dep: impl Into<ResourceId>) -> Self {
        self.extra_deps.push(dep.into());
        self
    }
    /// Every resource this one depends on: referenced ones plus `extra_deps`, sorted, unique.
    pub fn deps(&self) -> Vec<ResourceId> {
        self.deps_of(|_| true)
    }

    /// The resources this one uses, which are deleted after it: [`Self::deps`] but for those its
    /// policy documents only name ([`crate::KindSpec::names_only`]).
    pub fn delete_deps(&self) -> Vec<ResourceId> {
        let names_only = crate::spec(self.kind).names_only;
        self.deps_of(|field| !names_only.contains(&field))
    }

    fn deps_of(&self, field: impl Fn(&str) -> bool) -> Vec<ResourceId> {
        let mut deps: Vec<ResourceId> = self
            .fields
            .iter()
            .filter(|(k, _)| field(k))
            .flat_map(|(_, v)| v.refs().into_iter().map(|r| r.resource.clone()))
            .chain(self.extra_deps.iter().cloned())
            .filter(|d| d != &self.id)
            .collect();
        deps.sort();
        deps.dedup();
        deps
    }
}

/// Prefix that marks an untagged resource's id in the JSON plan format.
const UNTAGGED_PREFIX: &str = "untagged:";

/// Who an observed resource is: the logical id from its `moodlestack:id` tag, or its physical id:
/// for kinds AWS cannot tag ([`crate::KindSpec::identity`]) until the diff matches it to a
/// declared resource by identity fields; for taggable kinds, a resource that carries the stack's
/// tag but no `moodlestack:id` (see [`Observed::is_foreign`]) or, with an identity, one an
/// earlier version created untagged.
///
/// In JSON and text it is one string: the logical id, or `untagged:<physical id>`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ObservedId {
    /// Found by its `moodlestack:id` tag (or matched to a declared resource by identity).
    Tagged(ResourceId),
    /// A resource without `moodlestack:id`, not matched (yet): its physical id.
    Untagged(String),
}

impl ObservedId {
    /// The logical id, if the resource is tagged or was matched.
    pub fn logical(&self) -> Option<&ResourceId> {
        match self {
            ObservedId::Tagged(id) => Some(id),
            ObservedId::Untagged(_) => None,
        }
    }
    /// True for a resource without `moodlestack:id` that no declared resource matched.
    pub fn is_untagged(&self) -> bool {
        matches!(self, ObservedId::Untagged(_))
    }
    /// The id plans, reports and progress lines show: the logical id, or `untagged:<physical>`
    /// (an undeclared untagged resource is deleted under this name).
    pub fn to_resource_id(&self) -> ResourceId {
        ResourceId(self.to_string())
    }
}

impl std::fmt::Display for ObservedId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ObservedId::Tagged(id) => f.write_str(id.as_str()),
            ObservedId::Untagged(p) => write!(f, "{UNTAGGED_PREFIX}{p}"),
        }
    }
}

impl From<ResourceId> for ObservedId {
    fn from(id: ResourceId) -> Self {
        ObservedId::Tagged(id)
    }
}
impl From<&ResourceId> for ObservedId {
    fn from(id: &ResourceId) -> Self {
        ObservedId::Tagged(id.clone())
    }
}
impl From<&str> for ObservedId {
    /// Parses the string form (`untagged:<physical>` or a logical id).
    fn from(s: &str) -> Self {
        match s.strip_prefix(UNTAGGED_PREFIX) {
            Some(p) => ObservedId::Untagged(p.to_string()),
            None => ObservedId::Tagged(ResourceId(s.to_string())),
        }
    }
}
impl From<&ObservedId> for ResourceId {
    /// [`ObservedId::to_resource_id`].
    fn from(id: &ObservedId) -> Self {
        id.to_resource_id()
    }
}
impl PartialEq<ResourceId> for ObservedId {
    fn eq(&self, other: &ResourceId) -> bool {
        self.logical() == Some(other)
    }
}
impl PartialEq<&str> for ObservedId {
    fn eq(&self, other: &&str) -> bool {
        match self {
            ObservedId::Tagged(id) => id.as_str() == *other,
            ObservedId::Untagged(p) => other.strip_prefix(UNTAGGED_PREFIX).is_some_and(|o| o == p),
        }
    }
}

impl Serialize for ObservedId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}
impl<'de> Deserialize<'de> for ObservedId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Ok(ObservedId::from(s.as_str()))
    }
}

/// Where an observed resource is in its life, as each service module reads its status word. The
/// executor decides on this, never on AWS's words.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Lifecycle {
    /// Usable (also while AWS backs it up or similar: nothing needs to wait for it).
    #[default]
    Ready,
    /// Being created: not usable yet, and its attributes may be missing.
    Creating,
    /// Usable, but a change is being applied.
    Modifying,
    /// On its way out (deleting, shutting down, terminated).
    Deleting,
    /// In a state it will not leave by itself.
    Failed,
}

/// A resource of the stack as it exists in the cloud.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Observed {
    /// The logical id, read from the `moodlestack:id` tag; untagged resources are known by their
    /// physical id until the diff matches them.
    pub id: ObservedId,
    /// The resource's kind.
    pub kind: Kind,
    /// What AWS calls it: `vpc-0abc…`, an ARN, or a name, whichever the service's API takes.
    pub physical_id: String,
    /// The kind's managed fields as read back, concrete values only. A field the API did not
    /// report is absent (and then shows as a change if the stack manages it).
    pub fields: Fields,
    /// Attributes other resources reference: always `id`; plus per kind e.g. `arn`, `endpoint`,
    /// `port`, `secret_arn`, `dns_name`, `version` ([`crate::KindSpec::attrs`]).
    pub attrs: BTreeMap<String, String>,
    /// The service's own status word (`available`, `creating`, `running`, ...), for display.
    #[serde(default)]
    pub status: String,
    /// Where it is in its life, read from the status by the service module.
    #[serde(default)]
    pub lifecycle: Lifecycle,
}

impl Observed {
    /// The value of tag `key` among the observed `tags` field, if it carries it.
    pub fn tag(&self, key: &str) -> Option<&str> {
        self.fields
            .get("tags")
            .and_then(Value::as_map)
            .and_then(|m| m.get(key))
            .and_then(Value::as_str)
    }

    /// True for a resource found by the stack's tag that carries no `moodlestack:id`: somebody
    /// else's resource with the stack's tag (a bastion or a security group tagged
    /// `moodlestack:stack` for cost allocation). moodlestack reports it and never changes or
    /// deletes it. Untagged resources found through a parent of the stack (kinds with an
    /// [`crate::KindSpec::identity`]: mount targets, listeners) are not foreign: the diff matches
    /// them by identity, and deleting the parent takes them along.
    pub fn is_foreign(&self) -> bool {
        let s = crate::spec(self.kind);
        self.id.is_untagged() && s.taggable() && s.identity.is_empty()
    }
}
