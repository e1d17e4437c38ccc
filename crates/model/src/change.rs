//! The vocabulary of a planned change, shared by the diff (which computes it), the kind
//! descriptors (whose notes read it), the printer (which renders it) and the JSON plan format.

use crate::{Resource, Value};
use serde::{Deserialize, Serialize};

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
    /// The field's name.
    pub field: String,
    /// The observed value (None: the resource does not exist or AWS did not report the field).
    pub old: Option<Value>,
    /// The desired value, resolved as far as possible: [`Value::Unknown`] when it is known only
    /// after apply (None: the resource is being deleted).
    pub new: Option<Value>,
    /// This field's change forces the resource to be replaced.
    pub forces_replacement: bool,
    /// For maps and sets: what changed inside (None for scalar values and creates).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delta: Option<Delta>,
}

impl FieldChange {
    /// The old and the new value, each shown short ([`Value::display_short`]) or `(absent)`.
    pub fn short_values(&self) -> (String, String) {
        let short = |v: &Option<Value>| v.as_ref().map_or("(absent)".into(), Value::display_short);
        (short(&self.old), short(&self.new))
    }
}

/// What changed inside a map or set-valued field, computed by the diff so that renderers only
/// render.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum Delta {
    /// A map: the keys that changed, in key order (keys the desired map sets first, then, unless
    /// the field is compared as a subset, keys only the observed map has).
    Map {
        /// One entry per differing key.
        keys: Vec<KeyChange>,
    },
    /// A list compared as a set: the elements added and removed.
    Set {
        /// Desired elements the observed list lacks.
        added: Vec<Value>,
        /// Observed elements the desired list lacks.
        removed: Vec<Value>,
    },
}

/// One key of a map-valued field that differs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct KeyChange {
    /// The map key.
    pub key: String,
    /// The observed value (None: added).
    pub old: Option<Value>,
    /// The desired value (None: removed).
    pub new: Option<Value>,
}

/// What a plan note is about; renderers style notes by it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NoteKind {
    /// The change deletes data (refused without `--allow-data-loss`).
    DataLoss,
    /// Nodes are replaced with new code or configuration.
    Rollout,
    /// A service restarts (downtime or failover).
    Restart,
    /// A change that takes effect only at the next reboot.
    RebootPending,
    /// How or when the change is applied.
    Applied,
}

/// A human note shown under a change.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Note {
    /// What the note is about.
    pub kind: NoteKind,
    /// The note itself.
    pub text: String,
}

impl Note {
    /// A note of `kind`.
    pub fn new(kind: NoteKind, text: impl Into<String>) -> Self {
        Note {
            kind,
            text: text.into(),
        }
    }
}

impl std::fmt::Display for Note {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

/// What a kind's note function sees of a change.
#[derive(Clone, Copy, Debug)]
pub struct ChangeView<'a> {
    /// What happens to the resource.
    pub action: Action,
    /// The fields that differ (every desired field for a create).
    pub fields: &'a [FieldChange],
    /// The declared resource (None for deletes).
    pub desired: Option<&'a Resource>,
}

impl<'a> ChangeView<'a> {
    /// The change of field `name`, if it changes.
    pub fn changed(&self, name: &str) -> Option<&'a FieldChange> {
        self.fields.iter().find(|f| f.field == name)
    }
    /// True when the only field that changes is `tags`.
    pub fn only_tags(&self) -> bool {
        self.fields.iter().all(|f| f.field == "tags")
    }
    /// An in-place update of more than tags.
    pub fn is_real_update(&self) -> bool {
        self.action == Action::Update && !self.only_tags()
    }
    /// The declared value of field `name` (as written by the graph, references unresolved).
    pub fn desired_field(&self, name: &str) -> Option<&'a Value> {
        self.desired.and_then(|d| d.fields.get(name))
    }
}
