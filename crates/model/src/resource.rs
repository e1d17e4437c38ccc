//! Desired and observed resources.

use crate::{Fields, Kind, Value};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Tag naming the stack a resource belongs to. Applied on the create call itself.
pub const TAG_STACK: &str = "moodlestack:stack";
/// Tag holding the resource's logical id (e.g. `db.instance`). Applied on the create call itself.
pub const TAG_ID: &str = "moodlestack:id";

/// A stable logical id such as `net.subnet.private.a`, `db.instance` or `web.asg`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ResourceId(pub String);

impl ResourceId {
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
    pub id: ResourceId,
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
    pub fn after(mut self, dep: impl Into<ResourceId>) -> Self {
        self.extra_deps.push(dep.into());
        self
    }
    /// Every resource this one depends on: referenced ones plus `extra_deps`, sorted, unique.
    pub fn deps(&self) -> Vec<ResourceId> {
        let mut deps: Vec<ResourceId> = self
            .fields
            .values()
            .flat_map(|v| v.refs().into_iter().map(|r| r.resource.clone()))
            .chain(self.extra_deps.iter().cloned())
            .filter(|d| d != &self.id)
            .collect();
        deps.sort();
        deps.dedup();
        deps
    }
}

/// A resource of the stack as it exists in the cloud.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Observed {
    /// The logical id, read from the `moodlestack:id` tag (or derived from the deterministic name
    /// for resources AWS cannot tag).
    pub id: ResourceId,
    pub kind: Kind,
    /// What AWS calls it: `vpc-0abc…`, an ARN, or a name, whichever the service's API takes.
    pub physical_id: String,
    /// The kind's managed fields as read back, concrete values only. A field the API did not
    /// report is absent (and then shows as a change if the stack manages it).
    pub fields: Fields,
    /// Attributes other resources reference: always `id`; plus per kind e.g. `arn`, `endpoint`,
    /// `port`, `secret_arn`, `dns_name`, `version`.
    pub attrs: BTreeMap<String, String>,
    /// The service's own status word (`available`, `creating`, `running`, ...), for display.
    #[serde(default)]
    pub status: String,
}
