//! The plan: what `apply` will do, resource by resource, and why. Built by [`crate::diff`] from
//! the desired graph and the observed resources; printed by [`crate::print`]; executed by
//! [`crate::execute`]; saved as JSON by `plan --out` and re-checked by `apply plan.json`.
//!
//! The JSON form (`plan --json`, `plan --out`) is this module's serde shape, versioned by
//! [`FORMAT_VERSION`]; README documents it.

pub use moodlestack_model::{Action, Delta, FieldChange, KeyChange, Note, NoteKind};
use moodlestack_model::{ChangeView, Kind, Observed, Resource, ResourceId};
use serde::{Deserialize, Serialize};

/// Version of the JSON plan format. Bumped on any incompatible change. Version 2: notes are
/// `{kind, text}` objects, observed resources carry their `lifecycle`, map and set fields carry
/// their `delta`.
pub const FORMAT_VERSION: u32 = 2;

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
    pub notes: Vec<Note>,
}

impl Change {
    /// What the kind's note function sees of this change.
    pub fn view(&self) -> ChangeView<'_> {
        ChangeView {
            action: self.action,
            fields: &self.fields,
            desired: self.desired.as_ref(),
        }
    }

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
    /// Resources of taggable kinds without `moodlestack:id` that match nothing the stack declares
    /// ([`Observed::is_foreign`], or an untagged listener on the stack's load balancer):
    /// somebody else's, reported and left alone.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ignored: Vec<Observed>,
    /// The estimated monthly cost of the stack as desired, as it exists and of the change
    /// (`plan --cost`; [`crate::cost`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost: Option<crate::cost::Estimate>,
}

impl Plan {
    pub fn has_changes(&self) -> bool {
        self.changes.iter().any(|c| c.action.is_change())
    }

    /// The resources the plan declares (the desired side of its changes), in plan order.
    pub fn desired(&self) -> Vec<Resource> {
        self.changes
            .iter()
            .filter_map(|c| c.desired.clone())
            .collect()
    }
}
