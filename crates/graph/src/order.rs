//! Checks of a built graph (every reference resolves inside it, ids are unique, no cycles) and its
//! deterministic creation order.

use crate::GraphError;
use moodlestack_model::{spec, Resource, ResourceId};
use std::collections::{BTreeMap, BTreeSet};

/// Checks `resources` and returns them in creation order: a topological order of the
/// dependencies that, among the resources ready at each step, takes the lowest (tier, id) first.
/// When no resource depends on one of the same tier this is exactly "by tier, then id".
pub fn check_and_order(resources: Vec<Resource>) -> Result<Vec<Resource>, GraphError> {
    let mut by_id: BTreeMap<ResourceId, Resource> = BTreeMap::new();
    for r in resources {
        if let Some(prev) = by_id.insert(r.id.clone(), r) {
            return Err(GraphError::Invalid(format!(
                "internal error: resource id {} is declared twice",
                prev.id
            )));
        }
    }
    let mut dangling = Vec::new();
    for r in by_id.values() {
        for d in r.deps() {
            if !by_id.contains_key(&d) {
                dangling.push(format!("{} -> {d}", r.id));
            }
        }
    }
    if !dangling.is_empty() {
        return Err(GraphError::Invalid(format!(
            "internal error: references to resources the graph does not declare: {}",
            dangling.join(", ")
        )));
    }

    // Kahn's algorithm with a (tier, id)-ordered ready set.
    let mut pending: BTreeMap<ResourceId, BTreeSet<ResourceId>> = by_id
        .values()
        .map(|r| (r.id.clone(), r.deps().into_iter().collect()))
        .collect();
    let key = |id: &ResourceId| (spec(by_id[id].kind).tier, id.clone());
    let mut ready: BTreeSet<(u8, ResourceId)> = pending
        .iter()
        .filter(|(_, d)| d.is_empty())
        .map(|(id, _)| key(id))
        .collect();
    let mut order: Vec<ResourceId> = Vec::with_capacity(by_id.len());
    while let Some(next) = ready.pop_first() {
        let id = next.1;
        pending.remove(&id);
        for (other, deps) in pending.iter_mut() {
            if deps.remove(&id) && deps.is_empty() {
                ready.insert(key(other));
            }
        }
        order.push(id);
    }
    if !pending.is_empty() {
        let stuck: Vec<String> = pending
            .iter()
            .map(|(id, deps)| {
                let deps: Vec<&str> = deps.iter().map(ResourceId::as_str).collect();
                format!("{id} (waits for {})", deps.join(", "))
            })
            .collect();
        return Err(GraphError::Invalid(format!(
            "internal error: dependency cycle among: {}",
            stuck.join("; ")
        )));
    }
    Ok(order
        .into_iter()
        .map(|id| by_id.remove(&id).expect("ordered ids exist"))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use moodlestack_model::{Kind, Value};

    fn sg(id: &str, refs: &[&str]) -> Resource {
        let rules: Vec<Value> = refs.iter().map(|r| Value::reference(*r, "id")).collect();
        Resource::new(id, Kind::SecurityGroup).with("ingress", Value::List(rules))
    }

    #[test]
    fn orders_by_tier_then_id_and_respects_same_tier_deps() {
        let out = check_and_order(vec![
            sg("sg.b", &["sg.c"]),
            sg("sg.a", &[]),
            sg("sg.c", &[]),
            Resource::new("net.vpc", Kind::Vpc),
        ])
        .unwrap();
        let ids: Vec<&str> = out.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids, ["net.vpc", "sg.a", "sg.c", "sg.b"]);
    }

    #[test]
    fn dangling_refs_and_cycles_are_errors() {
        let e = check_and_order(vec![sg("sg.a", &["sg.missing"])]).unwrap_err();
        assert!(e.to_string().contains("sg.a -> sg.missing"), "{e}");
        let e = check_and_order(vec![sg("sg.a", &["sg.b"]), sg("sg.b", &["sg.a"])]).unwrap_err();
        assert!(e.to_string().contains("cycle"), "{e}");
        assert!(e.to_string().contains("sg.a (waits for sg.b)"), "{e}");
        let e = check_and_order(vec![sg("sg.a", &[]), sg("sg.a", &[])]).unwrap_err();
        assert!(e.to_string().contains("twice"), "{e}");
    }
}
