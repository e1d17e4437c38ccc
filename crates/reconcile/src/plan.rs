//! The plan: what `apply` will do, resource by resource, and why. Built by [`crate::diff`] from
//! the desired graph and the observed resources; printed by [`crate::print`]; executed by
//! [`crate::execute`]; saved as JSON by `plan --out` and re-checked by `apply plan.json`.
//!
//! The JSON form (`plan --json`, `plan --out`) is this module's serde shape, versioned by
//! [`FORMAT_VERSION`]; README documents it.

use moodlestack_model::{Kind, Observed, Resource, ResourceId, Value};
use serde::{Deserialize, Serialize};

/// Version of the JSON plan format. Bumped on any incompatible change.
pub const FORMAT_VERSION: u32 = 1;

/// What happens to one resource.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Declared and up to date: nothing to do (kept in the plan so that references to its
    /// attributes resolve during apply).
    NoOp,
    /// Declared, does not exist: create it.
    Create,
    /// Declared, exists, some in-place fields differ: update them.
    Update,
    /// Declared, exists, a field that forces replacement differs: delete it, then create it.
    Replace,
    /// Exists, tagged with the stack, not declared any more: delete it.
    Delete,
}

impl Action {
    /// True for every action but [`Action::NoOp`].
    pub fn is_change(self) -> bool {
        self != Action::NoOp
    }
}

/// One field that differs between the desired and the observed resource.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FieldChange {
    pub field: String,
    /// The observed value (None: the resource does not exist or AWS did not report the field).
    pub old: Option<Value>,
    /// The desired value, resolved as far as possible: [`Value::Unknown`] when it is known only
    /// after apply (None: the resource is being deleted).
    pub new: Option<Value>,
    /// This field's change forces the resource to be replaced.
    pub forces_replacement: bool,
}

/// One resource's entry in the plan.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Change {
    pub id: ResourceId,
    pub kind: Kind,
    pub action: Action,
    /// Create: every desired field (old None). Update: the in-place fields that differ. Replace:
    /// every differing field, those forcing replacement flagged. Delete: empty. NoOp: empty.
    pub fields: Vec<FieldChange>,
    /// The declared resource with its fields as written by the graph (references unresolved);
    /// None for deletes. The executor resolves references against attributes known at run time.
    pub desired: Option<Resource>,
    /// The observed resource; None for creates.
    pub current: Option<Observed>,
    /// Human notes shown under the resource: "applies in the next maintenance window",
    /// "a reboot is pending for static parameters", "starts an instance refresh (minimum healthy
    /// 90 %)", "holds data: guarded by --allow-data-loss".
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

impl Change {
    /// The fields forcing replacement (empty unless the action is Replace).
    pub fn replacement_reasons(&self) -> Vec<&str> {
        self.fields
            .iter()
            .filter(|f| f.forces_replacement)
            .map(|f| f.field.as_str())
            .collect()
    }
}

/// Counts for the summary line: `Plan: 3 to create, 1 to update, 0 to replace, 2 to delete.`
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    pub create: usize,
    pub update: usize,
    pub replace: usize,
    pub delete: usize,
    pub unchanged: usize,
}

/// The whole plan.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub format_version: u32,
    pub stack: String,
    pub region: String,
    /// Every declared or observed resource, in execution order: creates and updates in
    /// dependency order, deletes of undeclared resources last in reverse dependency order.
    pub changes: Vec<Change>,
    pub summary: Summary,
    /// SHA-256 of the observed state the plan was computed from (canonical JSON of the observed
    /// resources sorted by id). `apply plan.json` observes again and refuses when it differs.
    pub observed_digest: String,
}

impl Plan {
    pub fn has_changes(&self) -> bool {
        self.changes.iter().any(|c| c.action.is_change())
    }
}
