//! The generic diff: desired resources against observed ones, field by field, using only the
//! per-kind descriptors ([`moodlestack_model::spec`]). Nothing here knows an AWS service or names
//! a kind.
//!
//! - Observed resources are matched to desired ones by logical id; untaggable kinds
//!   ([`moodlestack_model::KindSpec::identity`]) arrive as [`ObservedId::Untagged`] and are
//!   matched by the resolved values of their identity fields.
//! - Desired references are resolved against the observed attributes of the referenced resource,
//!   in dependency order: a reference to a resource that will be created or replaced, or to an
//!   attribute that its planned update changes, is [`Value::Unknown`] ("known after apply"), and
//!   that propagates to the resources that reference it.
//! - Only the fields the stack sets are compared, per the field's [`Compare`] mode; `CreateOnly`
//!   fields never differ. An unknown desired value counts as a change.
//! - Resources tagged with the stack that it no longer declares are deleted, after everything
//!   else, in reverse tier order. A resource of a taggable kind without `moodlestack:id` that
//!   nothing matched ([`Observed::is_foreign`], or an untagged listener on the stack's load
//!   balancer) is listed in [`Plan::ignored`] and never deleted.

use crate::plan::{Action, Change, FieldChange, Plan, Summary, FORMAT_VERSION};
use moodlestack_model::{
    spec, topo, Compare, DeletePolicy, Delta, FieldSpec, Hint, KeyChange, Kind, Note, NoteKind,
    Observed, ObservedId, OnChange, OrderError, Ref, Resource, ResourceId, Scope, Value,
};
use std::collections::{BTreeMap, HashMap};

/// The stack graph is inconsistent (a bug in the graph builder) or the observed state is
/// ambiguous; each message names what to fix.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DiffError {
    #[error("resource {0} is declared twice in the desired graph (a bug in the graph builder)")]
    DuplicateDesired(ResourceId),
    #[error(
        "{kind} {id}: field `{field}` is not a managed field of this kind (see \
         moodlestack_model::kind); a bug in the graph builder"
    )]
    UnknownField {
        id: ResourceId,
        kind: Kind,
        field: String,
    },
    #[error(
        "resource {id} depends on {dep}, which the stack does not declare (a bug in the graph \
         builder)"
    )]
    UnknownDependency { id: ResourceId, dep: ResourceId },
    #[error("the desired graph has a dependency cycle through: {}", ids(.0))]
    Cycle(Vec<ResourceId>),
    #[error(
        "{count} resources in the cloud carry the tag moodlestack:id={id} ({}); keep one and \
         delete the others by hand (they were probably created by an interrupted run)",
        .physical.join(", "),
        count = .physical.len()
    )]
    DuplicateObserved {
        id: ResourceId,
        physical: Vec<String>,
    },
    #[error(
        "{id} exists as a {observed} ({physical_id}) but the stack declares it as a {desired}; \
         delete the {observed} by hand or rename the resource"
    )]
    KindMismatch {
        id: ResourceId,
        desired: Kind,
        observed: Kind,
        physical_id: String,
    },
}

impl Hint for DiffError {
    fn hint(&self) -> Option<String> {
        None
    }
}

fn ids(v: &[ResourceId]) -> String {
    v.iter().map(|i| i.as_str()).collect::<Vec<_>>().join(", ")
}

/// A plan that would delete or replace resources holding data, without `--allow-data-loss`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuardError {
    /// One line per refused change: the resource, its kind and what forces it.
    pub refused: Vec<String>,
}

impl std::fmt::Display for GuardError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "refusing a plan that would lose data:")?;
        let last = self.refused.len().saturating_sub(1);
        for (i, r) in self.refused.iter().enumerate() {
            write!(f, "  - {r}")?;
            if i != last {
                writeln!(f)?;
            }
        }
        Ok(())
    }
}

impl std::error::Error for GuardError {}

impl Hint for GuardError {
    fn hint(&self) -> Option<String> {
        Some(
            "change the stack file back, or if losing this data is intended, run again with \
             --allow-data-loss"
                .into(),
        )
    }
}

/// The plan that takes the `observed` state of the stack to the `desired` one.
pub fn plan(scope: &Scope, desired: &[Resource], observed: &[Observed]) -> Result<Plan, DiffError> {
    check_desired(desired)?;
    let order = topo(desired).map_err(|e| match e {
        OrderError::Duplicate(id) => DiffError::DuplicateDesired(id),
        OrderError::Dangling(mut pairs) => {
            let (id, dep) = pairs.swap_remove(0);
            DiffError::UnknownDependency { id, dep }
        }
        OrderError::Cycle(stuck) => DiffError::Cycle(stuck.into_iter().map(|(id, _)| id).collect()),
    })?;

    // Observed, by logical id (tagged) and per kind (untagged).
    let mut tagged: BTreeMap<&ResourceId, &Observed> = BTreeMap::new();
    let mut untagged: Vec<&Observed> = Vec::new();
    for o in observed {
        match &o.id {
            ObservedId::Untagged(_) => untagged.push(o),
            ObservedId::Tagged(id) => {
                if tagged.insert(id, o).is_some() {
                    let mut physical: Vec<String> = observed
                        .iter()
                        .filter(|x| x.id.logical() == Some(id))
                        .map(|x| x.physical_id.clone())
                        .collect();
                    physical.sort();
                    return Err(DiffError::DuplicateObserved {
                        id: id.clone(),
                        physical,
                    });
                }
            }
        }
    }
    let mut untagged_used = vec![false; untagged.len()];

    let mut actions: HashMap<ResourceId, (Action, Option<&Observed>)> = HashMap::new();
    let mut changes = Vec::new();
    for &i in &order {
        let d = &desired[i];
        let kspec = spec(d.kind);
        let lookup = |r: &Ref| -> Option<String> {
            let (action, current) = actions.get(&r.resource)?;
            let current = (*current)?;
            match action {
                Action::Create | Action::Replace | Action::Delete => None,
                Action::Update
                    if spec(current.kind)
                        .attrs_changed_by_update
                        .contains(&r.attr.as_str()) =>
                {
                    None
                }
                _ => current.attrs.get(&r.attr).cloned(),
            }
        };
        let resolved: BTreeMap<&str, Value> = d
            .fields
            .iter()
            .map(|(k, v)| (k.as_str(), v.resolve(&lookup)))
            .collect();

        // Find the observed counterpart.
        let mut current: Option<&Observed> = tagged.remove(&d.id);
        if current.is_none() && !kspec.identity.is_empty() {
            let key: Option<Vec<&Value>> = kspec
                .identity
                .iter()
                .map(|f| resolved.get(f).filter(|v| v.is_concrete()))
                .collect();
            if let Some(key) = key {
                let found = untagged.iter().enumerate().find(|(n, o)| {
                    !untagged_used[*n]
                        && o.kind == d.kind
                        && kspec
                            .identity
                            .iter()
                            .zip(&key)
                            .all(|(f, v)| o.fields.get(*f) == Some(v))
                });
                if let Some((n, o)) = found {
                    untagged_used[n] = true;
                    current = Some(o);
                }
            }
        }
        if let Some(o) = current {
            if o.kind != d.kind {
                return Err(DiffError::KindMismatch {
                    id: d.id.clone(),
                    desired: d.kind,
                    observed: o.kind,
                    physical_id: o.physical_id.clone(),
                });
            }
        }

        let change = match current {
            None => {
                let fields = kspec
                    .fields
                    .iter()
                    .filter_map(|fs| {
                        resolved.get(fs.name).map(|v| FieldChange {
                            field: fs.name.to_string(),
                            old: None,
                            new: Some(v.clone()),
                            forces_replacement: false,
                            delta: None,
                        })
                    })
                    .collect();
                Change {
                    id: d.id.clone(),
                    kind: d.kind,
                    action: Action::Create,
                    fields,
                    desired: Some(d.clone()),
                    current: None,
                    notes: Vec::new(),
                }
            }
            Some(o) => {
                let mut fields = Vec::new();
                for fs in kspec.fields {
                    if fs.on_change == OnChange::CreateOnly {
                        continue;
                    }
                    let Some(want) = resolved.get(fs.name) else {
                        continue;
                    };
                    let have = o.fields.get(fs.name);
                    if !fs.differs(want, have) {
                        continue;
                    }
                    fields.push(FieldChange {
                        field: fs.name.to_string(),
                        old: have.cloned(),
                        new: Some(want.clone()),
                        forces_replacement: fs.on_change == OnChange::Replace,
                        delta: have.and_then(|h| delta(fs, h, want)),
                    });
                }
                let action = if fields.iter().any(|f| f.forces_replacement) {
                    Action::Replace
                } else if fields.is_empty() {
                    Action::NoOp
                } else {
                    Action::Update
                };
                // The current resource keeps its physical id; its logical id is the declared one
                // (untagged resources were matched by identity).
                let mut current = o.clone();
                current.id = d.id.clone().into();
                Change {
                    id: d.id.clone(),
                    kind: d.kind,
                    action,
                    fields,
                    desired: Some(d.clone()),
                    current: Some(current),
                    notes: Vec::new(),
                }
            }
        };
        // A change of tags only changes no attribute others reference (no new launch template
        // version): for references, the resource is as it is.
        let for_refs = if change.action == Action::Update && change.view().only_tags() {
            Action::NoOp
        } else {
            change.action
        };
        actions.insert(d.id.clone(), (for_refs, current));
        changes.push(change);
    }

    // Everything observed and not declared: delete, in reverse tier order. A resource of a
    // taggable kind without `moodlestack:id` that nothing matched (a foreign one, or a listener
    // somebody added to the stack's load balancer) is not the stack's: reported, never deleted.
    let mut deletes: Vec<&Observed> = tagged.into_values().collect();
    let mut ignored = Vec::new();
    for (o, _) in untagged
        .iter()
        .zip(&untagged_used)
        .filter(|(_, used)| !**used)
    {
        if spec(o.kind).taggable() {
            ignored.push((*o).clone());
        } else {
            deletes.push(o);
        }
    }
    ignored.sort_by(|a, b| (a.kind, &a.physical_id).cmp(&(b.kind, &b.physical_id)));
    deletes.sort_by(|a, b| {
        spec(b.kind)
            .tier
            .cmp(&spec(a.kind).tier)
            .then_with(|| a.id.cmp(&b.id))
    });
    for o in deletes {
        changes.push(Change {
            id: o.id.to_resource_id(),
            kind: o.kind,
            action: Action::Delete,
            fields: Vec::new(),
            desired: None,
            current: Some(o.clone()),
            notes: Vec::new(),
        });
    }

    for c in &mut changes {
        c.notes = notes(c);
    }

    let mut summary = Summary::default();
    for c in &changes {
        match c.action {
            Action::NoOp => summary.unchanged += 1,
            Action::Create => summary.create += 1,
            Action::Update => summary.update += 1,
            Action::Replace => summary.replace += 1,
            Action::Delete => summary.delete += 1,
        }
    }

    Ok(Plan {
        format_version: FORMAT_VERSION,
        stack: scope.stack.clone(),
        region: scope.region.clone(),
        changes,
        summary,
        observed_digest: observed_digest(observed),
        ignored,
        cost: None,
    })
}

/// SHA-256 of the canonical JSON of `observed` sorted by id (then physical id). The status word
/// is left out: it moves on its own (`available` -> `backing-up`) without changing what a plan
/// would do; so is the order of set-valued fields (AWS may list subnets or rules in any order),
/// and so are fields AWS raises on its own ([`Compare::moves_on_its_own`]: grown storage, a
/// minor upgrade). `apply plan.json` compares this with a fresh observation.
pub fn observed_digest(observed: &[Observed]) -> String {
    let mut sorted: Vec<Observed> = observed
        .iter()
        .map(|o| {
            let mut o = Observed {
                status: String::new(),
                ..o.clone()
            };
            for fs in spec(o.kind).fields {
                if fs.compare == Compare::Set {
                    if let Some(Value::List(items)) = o.fields.get_mut(fs.name) {
                        items.sort_by_cached_key(|v| serde_json::to_string(v).unwrap_or_default());
                    }
                }
                // Values AWS changes on its own (storage autoscaling, minor upgrades) do not
                // make a saved plan stale.
                if fs.compare.moves_on_its_own() {
                    o.fields.remove(fs.name);
                }
            }
            o
        })
        .collect();
    sorted.sort_by(|a, b| {
        a.id.cmp(&b.id)
            .then_with(|| a.physical_id.cmp(&b.physical_id))
    });
    let json = serde_json::to_string(&sorted).expect("observed resources serialize");
    moodlestack_model::value::sha256_hex(json.as_bytes())
}

/// Refuses a plan that deletes or replaces a stateful resource (database, file system, cache)
/// unless `allow_data_loss`. The one data-loss rule for plans: `plan` and `apply` both ask it.
pub fn guard(plan: &Plan, allow_data_loss: bool) -> Result<(), GuardError> {
    if allow_data_loss {
        return Ok(());
    }
    let refused: Vec<String> = plan
        .changes
        .iter()
        .filter(|c| spec(c.kind).stateful)
        .filter_map(|c| match c.action {
            Action::Delete => Some(format!(
                "{} ({}, {}): delete: the stack no longer declares it",
                c.id,
                spec(c.kind).aws_type,
                physical(c)
            )),
            Action::Replace => {
                let why: Vec<String> = c
                    .fields
                    .iter()
                    .filter(|f| f.forces_replacement)
                    .map(|f| {
                        let (old, new) = f.short_values();
                        format!("`{}` ({old} -> {new})", f.field)
                    })
                    .collect();
                Some(format!(
                    "{} ({}, {}): replace, forced by {}",
                    c.id,
                    spec(c.kind).aws_type,
                    physical(c),
                    why.join(", ")
                ))
            }
            _ => None,
        })
        .collect();
    if refused.is_empty() {
        Ok(())
    } else {
        Err(GuardError { refused })
    }
}

fn physical(c: &Change) -> &str {
    c.current.as_ref().map_or("", |o| o.physical_id.as_str())
}

/// Whether the desired value `want` differs from the observed `have` under `compare`: the one
/// rule, [`FieldSpec::differs`].
pub fn differs(compare: Compare, want: &Value, have: Option<&Value>) -> bool {
    FieldSpec {
        name: "",
        on_change: OnChange::InPlace,
        compare,
    }
    .differs(want, have)
}

/// What changed inside a map or set field (None for other values, or when something in `want` is
/// known only after apply).
fn delta(fs: &FieldSpec, have: &Value, want: &Value) -> Option<Delta> {
    match (have, want) {
        (Value::Map(old), Value::Map(new)) => {
            let mut keys: Vec<KeyChange> = new
                .iter()
                .filter(|(k, v)| !(old.get(*k) == Some(*v) && v.is_concrete()))
                .map(|(k, v)| KeyChange {
                    key: k.clone(),
                    old: old.get(k).cloned(),
                    new: Some(v.clone()),
                })
                .collect();
            if fs.compare != Compare::Subset {
                keys.extend(
                    old.iter()
                        .filter(|(k, _)| !new.contains_key(*k))
                        .map(|(k, o)| KeyChange {
                            key: k.clone(),
                            old: Some(o.clone()),
                            new: None,
                        }),
                );
            }
            Some(Delta::Map { keys })
        }
        (Value::List(old), Value::List(new))
            if fs.compare == Compare::Set && new.iter().all(Value::is_concrete) =>
        {
            Some(Delta::Set {
                added: new.iter().filter(|v| !old.contains(v)).cloned().collect(),
                removed: old.iter().filter(|v| !new.contains(v)).cloned().collect(),
            })
        }
        _ => None,
    }
}

/// Every desired id must be unique and every field a managed field of its kind.
fn check_desired(desired: &[Resource]) -> Result<(), DiffError> {
    let mut by_id = HashMap::new();
    for (i, r) in desired.iter().enumerate() {
        if by_id.insert(&r.id, i).is_some() {
            return Err(DiffError::DuplicateDesired(r.id.clone()));
        }
        let s = spec(r.kind);
        if let Some(field) = r.fields.keys().find(|k| s.field(k).is_none()) {
            return Err(DiffError::UnknownField {
                id: r.id.clone(),
                kind: r.kind,
                field: field.clone(),
            });
        }
    }
    Ok(())
}

/// Notes for one change: the data-loss notes of stateful kinds, then the kind's own
/// ([`moodlestack_model::KindSpec::notes`]). A kind's own data-loss note (a database restored from
/// a snapshot is not replaced by an empty one) stands instead of the generic one.
fn notes(c: &Change) -> Vec<Note> {
    let s = spec(c.kind);
    let own = (s.notes)(&c.view());
    let mut notes = Vec::new();
    match c.action {
        Action::Delete if s.stateful => notes.push(Note::new(
            NoteKind::DataLoss,
            format!(
                "holds data: deleting it loses the data ({} keeps no copy unless a final \
                 snapshot is taken); refused without --allow-data-loss",
                s.aws_type
            ),
        )),
        Action::Replace if s.stateful && !own.iter().any(|n| n.kind == NoteKind::DataLoss) => notes
            .push(Note::new(
                NoteKind::DataLoss,
                format!(
                    "holds data: replacing it deletes it and creates an empty one (forced by {}); \
                 refused without --allow-data-loss",
                    c.replacement_reasons().join(", ")
                ),
            )),
        _ => {}
    }
    if c.action == Action::Replace && creates_first(c) {
        notes.push(Note::new(
            NoteKind::Applied,
            if s.on_delete == DeletePolicy::Release {
                "the new one (a new name) is created first and everything that uses it waits \
                 for it; the old one is then released from the stack, not deleted (it stays in \
                 AWS)"
            } else {
                "the new one (a new name) is created first and everything that uses it moved to \
                 it; the old one is deleted last (AWS refuses to delete it while it is in use)"
            },
        ));
    }
    notes.extend(own);
    notes
}

/// Whether the replacement `c` creates the new resource before deleting the old one
/// ([`moodlestack_model::ReplaceOrder`]): the diff's note and the executor's order both ask this.
pub fn creates_first(c: &Change) -> bool {
    match (&c.desired, &c.current) {
        (Some(d), Some(o)) => spec(c.kind).creates_first(&d.fields, &o.fields),
        _ => false,
    }
}

#[cfg(test)]
#[path = "diff_tests.rs"]
mod tests;
