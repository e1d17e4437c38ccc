//! The generic diff: desired resources against observed ones, field by field, using only the
//! per-kind table ([`moodlestack_model::spec`]). Nothing here knows an AWS service.
//!
//! - Observed resources are matched to desired ones by logical id; untaggable kinds
//!   ([`moodlestack_model::KindSpec::identity`]) arrive as `untagged:<physical id>` and are matched
//!   by the resolved values of their identity fields.
//! - Desired references are resolved against the observed attributes of the referenced resource,
//!   in dependency order: a reference to a resource that will be created or replaced, or to an
//!   attribute that its planned update changes, is [`Value::Unknown`] ("known after apply"), and
//!   that propagates to the resources that reference it.
//! - Only the fields the stack sets are compared, per the field's [`Compare`] mode; `CreateOnly`
//!   fields never differ. An unknown desired value counts as a change.
//! - Resources tagged with the stack that it no longer declares are deleted, after everything
//!   else, in reverse tier order.

use crate::plan::{Action, Change, FieldChange, Plan, Summary, FORMAT_VERSION};
use moodlestack_model::{
    spec, Compare, Kind, Observed, OnChange, Ref, Resource, ResourceId, Scope, Value,
};
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap};

/// Prefix of the ids that observe gives resources AWS cannot tag.
pub const UNTAGGED_PREFIX: &str = "untagged:";

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
        "{count} resources in the cloud carry the tag moodlestack:id={id} ({physical}); keep one \
         and delete the others by hand (they were probably created by an interrupted run)",
        count = .physical.len()
    )]
    DuplicateObserved { id: ResourceId, physical: String },
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
        for r in &self.refused {
            writeln!(f, "  - {r}")?;
        }
        write!(
            f,
            "  fix: change the stack file back, or if losing this data is intended, run again \
             with --allow-data-loss"
        )
    }
}

impl std::error::Error for GuardError {}

/// The plan that takes the `observed` state of the stack to the `desired` one.
pub fn plan(scope: &Scope, desired: &[Resource], observed: &[Observed]) -> Result<Plan, DiffError> {
    let by_id = check_desired(desired)?;
    let order = topo_order(desired, &by_id)?;

    // Observed, by logical id (tagged) and per kind (untagged).
    let mut tagged: BTreeMap<&ResourceId, &Observed> = BTreeMap::new();
    let mut untagged: Vec<&Observed> = Vec::new();
    for o in observed {
        if o.id.as_str().starts_with(UNTAGGED_PREFIX) {
            untagged.push(o);
        } else if let Some(prev) = tagged.insert(&o.id, o) {
            return Err(DiffError::DuplicateObserved {
                id: o.id.clone(),
                physical: format!("{}, {}", prev.physical_id, o.physical_id),
            });
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
                    if !differs(fs.compare, want, have) {
                        continue;
                    }
                    fields.push(FieldChange {
                        field: fs.name.to_string(),
                        old: have.cloned(),
                        new: Some(want.clone()),
                        forces_replacement: fs.on_change == OnChange::Replace,
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
                current.id = d.id.clone();
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
        let for_refs = if change.action == Action::Update && only_tags(&change) {
            Action::NoOp
        } else {
            change.action
        };
        actions.insert(d.id.clone(), (for_refs, current));
        changes.push(change);
    }

    // Everything observed and not declared: delete, in reverse tier order.
    let mut deletes: Vec<&Observed> = tagged.into_values().collect();
    deletes.extend(
        untagged
            .iter()
            .zip(&untagged_used)
            .filter(|(_, used)| !**used)
            .map(|(o, _)| *o),
    );
    deletes.sort_by(|a, b| {
        spec(b.kind)
            .tier
            .cmp(&spec(a.kind).tier)
            .then_with(|| a.id.cmp(&b.id))
    });
    for o in deletes {
        changes.push(Change {
            id: o.id.clone(),
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
    })
}

/// SHA-256 of the canonical JSON of `observed` sorted by id (then physical id). The status word
/// is left out: it moves on its own (`available` -> `backing-up`) without changing what a plan
/// would do; so is the order of set-valued fields (AWS may list subnets or rules in any order).
/// `apply plan.json` compares this with a fresh observation.
pub fn observed_digest(observed: &[Observed]) -> String {
    let mut sorted: Vec<Observed> = observed
        .iter()
        .map(|o| {
            let mut o = Observed {
                status: String::new(),
                ..o.clone()
            };
            for fs in spec(o.kind)
                .fields
                .iter()
                .filter(|f| f.compare == Compare::Set)
            {
                if let Some(Value::List(items)) = o.fields.get_mut(fs.name) {
                    items.sort_by_cached_key(|v| serde_json::to_string(v).unwrap_or_default());
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
/// unless `allow_data_loss`.
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
                        format!(
                            "`{}` ({} -> {})",
                            f.field,
                            f.old
                                .as_ref()
                                .map_or("(absent)".into(), Value::display_short),
                            f.new
                                .as_ref()
                                .map_or("(absent)".into(), Value::display_short)
                        )
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

/// Whether the desired value `want` differs from the observed `have` under `compare`.
/// Unknown or unresolved parts of `want` always differ ("known after apply").
pub fn differs(compare: Compare, want: &Value, have: Option<&Value>) -> bool {
    let Some(have) = have else {
        // AWS not reporting a field is the same as it being empty/null.
        return !matches!(want, Value::Null);
    };
    if !want.is_concrete() {
        return true;
    }
    match (compare, want, have) {
        (Compare::Set, Value::List(w), Value::List(h)) => canonical_set(w) != canonical_set(h),
        (Compare::Subset, Value::Map(w), Value::Map(h)) => {
            w.iter().any(|(k, v)| h.get(k).is_none_or(|hv| hv != v))
        }
        _ => want != have,
    }
}

fn canonical_set(items: &[Value]) -> BTreeSet<String> {
    items
        .iter()
        .map(|v| serde_json::to_string(v).unwrap_or_default())
        .collect()
}

/// Every desired id must be unique and every field a managed field of its kind.
fn check_desired(desired: &[Resource]) -> Result<HashMap<&ResourceId, usize>, DiffError> {
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
    Ok(by_id)
}

/// Indices of `desired` in dependency order; among resources ready at the same time, lower tier
/// first, then by id.
fn topo_order(
    desired: &[Resource],
    by_id: &HashMap<&ResourceId, usize>,
) -> Result<Vec<usize>, DiffError> {
    let n = desired.len();
    let mut indegree = vec![0usize; n];
    let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (i, r) in desired.iter().enumerate() {
        for dep in r.deps() {
            let Some(&j) = by_id.get(&dep) else {
                return Err(DiffError::UnknownDependency {
                    id: r.id.clone(),
                    dep,
                });
            };
            indegree[i] += 1;
            dependents[j].push(i);
        }
    }
    let key = |i: usize| std::cmp::Reverse((spec(desired[i].kind).tier, desired[i].id.clone(), i));
    let mut ready: BinaryHeap<_> = (0..n).filter(|&i| indegree[i] == 0).map(key).collect();
    let mut order = Vec::with_capacity(n);
    while let Some(std::cmp::Reverse((_, _, i))) = ready.pop() {
        order.push(i);
        for &k in &dependents[i] {
            indegree[k] -= 1;
            if indegree[k] == 0 {
                ready.push(key(k));
            }
        }
    }
    if order.len() < n {
        let mut stuck: Vec<ResourceId> = (0..n)
            .filter(|&i| indegree[i] > 0)
            .map(|i| desired[i].id.clone())
            .collect();
        stuck.sort();
        return Err(DiffError::Cycle(stuck));
    }
    Ok(order)
}

/// Static parameters of the engines moodlestack supports, by parameter group family prefix:
/// RDS applies them (`pending-reboot`) only at the next reboot of the database. Any parameter not
/// listed is treated as dynamic (applied at once); RDS's `DescribeEngineDefaultParameters` lists
/// each parameter's `ApplyType`.
const STATIC_PARAMETERS: &[(&str, &[&str])] = &[
    (
        "mysql",
        &[
            "innodb_buffer_pool_instances",
            "innodb_log_buffer_size",
            "innodb_log_file_size",
            "innodb_open_files",
            "innodb_read_io_threads",
            "innodb_write_io_threads",
            "innodb_page_size",
            "innodb_purge_threads",
            "innodb_sort_buffer_size",
            "lower_case_table_names",
            "performance_schema",
            "skip_name_resolve",
        ],
    ),
    (
        "postgres",
        &[
            "autovacuum_max_workers",
            "max_connections",
            "max_locks_per_transaction",
            "max_prepared_transactions",
            "max_wal_senders",
            "max_worker_processes",
            "shared_buffers",
            "shared_preload_libraries",
            "track_activity_query_size",
            "wal_buffers",
        ],
    ),
];

fn static_parameters(family: &str) -> &'static [&'static str] {
    let family = family.strip_prefix("aurora-").unwrap_or(family);
    let family = if family.starts_with("mariadb") {
        "mysql"
    } else {
        family
    };
    STATIC_PARAMETERS
        .iter()
        .find(|(prefix, _)| family.starts_with(prefix))
        .map_or(&[], |(_, names)| names)
}

/// True when the only field that changes is `tags`.
fn only_tags(c: &Change) -> bool {
    c.fields.iter().all(|f| f.field == "tags")
}

/// Human notes for one change: rollouts, restarts, reboots and data loss.
fn notes(c: &Change) -> Vec<String> {
    let s = spec(c.kind);
    let changed = |name: &str| c.fields.iter().find(|f| f.field == name);
    let mut notes = Vec::new();
    match c.action {
        Action::Delete if s.stateful => notes.push(format!(
            "holds data: deleting it loses the data ({} keeps no copy unless a final snapshot \
             is taken); refused without --allow-data-loss",
            s.aws_type
        )),
        Action::Replace if s.stateful => notes.push(format!(
            "holds data: replacing it deletes it and creates an empty one (forced by {}); \
             refused without --allow-data-loss",
            c.replacement_reasons().join(", ")
        )),
        _ => {}
    }
    if c.action == Action::Replace && c.kind == Kind::Instance {
        notes.push(
            "rollout: the instance is terminated and launched again from the new launch template \
             version (its local disk is lost; shared state lives in the database and EFS)"
                .into(),
        );
    }
    if c.action == Action::Update && !only_tags(c) {
        match c.kind {
            Kind::DbInstance | Kind::DbCluster => {
                notes.push(
                    "applied immediately, not in the maintenance window (moodlestack sends \
                     ApplyImmediately)"
                        .into(),
                );
                if changed("instance_class").is_some() || changed("engine_version").is_some() {
                    let multi_az = c
                        .desired
                        .as_ref()
                        .and_then(|d| d.fields.get("multi_az"))
                        .and_then(Value::as_bool)
                        .unwrap_or(false);
                    notes.push(if multi_az {
                        "the database restarts: Multi-AZ fails over to the standby (about a \
                         minute of interruption)"
                            .into()
                    } else {
                        "the database restarts: expect several minutes of downtime".into()
                    });
                }
                if changed("parameter_group_name").is_some()
                    || changed("cluster_parameter_group_name").is_some()
                {
                    notes.push(
                        "reboot pending: a new parameter group takes effect at the next reboot \
                         of the database"
                            .into(),
                    );
                }
            }
            Kind::DbParameterGroup | Kind::DbClusterParameterGroup => {
                if let Some(f) = changed("parameters") {
                    let family = c
                        .desired
                        .as_ref()
                        .and_then(|d| d.fields.get("family"))
                        .and_then(Value::as_str)
                        .unwrap_or("");
                    let statics = static_parameters(family);
                    let old = f.old.as_ref().and_then(Value::as_map);
                    let new_params = f.new.as_ref().and_then(Value::as_map);
                    let names: Vec<&str> = new_params
                        .into_iter()
                        .flatten()
                        .filter(|(k, v)| old.and_then(|o| o.get(*k)) != Some(*v))
                        .map(|(k, _)| k.as_str())
                        .filter(|k| statics.contains(k))
                        .collect();
                    if !names.is_empty() {
                        notes.push(format!(
                            "reboot pending: static parameter(s) {} take effect at the next \
                             reboot of the database (moodlestack does not reboot it)",
                            names.join(", ")
                        ));
                    }
                }
            }
            Kind::LaunchTemplate => {
                if changed("user_data").is_some() {
                    notes.push(
                        "rollout: new launch template version (rendered user-data or config.php \
                         changed)"
                            .into(),
                    );
                } else {
                    notes.push("new launch template version".into());
                }
            }
            Kind::AutoScalingGroup if changed("launch_template_version").is_some() => notes.push(
                "starts an instance refresh (minimum healthy 90%): instances are replaced in \
                 batches with the new launch template version"
                    .into(),
            ),
            _ => {}
        }
    }
    notes
}

#[cfg(test)]
#[path = "diff_tests.rs"]
mod tests;
