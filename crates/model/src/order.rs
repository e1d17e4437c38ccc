//! The one dependency order of a resource graph, used by the graph builder (to check and sort
//! what it built) and by the diff (to resolve references in dependency order).

use crate::{spec, Resource, ResourceId};
use std::collections::{BTreeSet, HashMap};

/// Why a graph has no dependency order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OrderError {
    /// Two resources share an id.
    Duplicate(ResourceId),
    /// References to resources the graph does not declare: (resource, missing dependency), in
    /// the order of the input.
    Dangling(Vec<(ResourceId, ResourceId)>),
    /// Resources that wait for each other: each with the dependencies it still waits for, sorted
    /// by id.
    Cycle(Vec<(ResourceId, Vec<ResourceId>)>),
}

/// Indices of `resources` in dependency order (Kahn's algorithm): every resource after the ones
/// it depends on ([`Resource::deps`]); among the resources ready at the same time, the lowest
/// (tier, id) first. When no resource depends on one of the same tier this is exactly "by tier,
/// then id".
pub fn topo(resources: &[Resource]) -> Result<Vec<usize>, OrderError> {
    let mut by_id: HashMap<&ResourceId, usize> = HashMap::with_capacity(resources.len());
    for (i, r) in resources.iter().enumerate() {
        if by_id.insert(&r.id, i).is_some() {
            return Err(OrderError::Duplicate(r.id.clone()));
        }
    }
    let n = resources.len();
    let mut waits: Vec<BTreeSet<usize>> = vec![BTreeSet::new(); n];
    let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); n];
    let mut dangling = Vec::new();
    for (i, r) in resources.iter().enumerate() {
        for dep in r.deps() {
            match by_id.get(&dep) {
                Some(&j) => {
                    waits[i].insert(j);
                    dependents[j].push(i);
                }
                None => dangling.push((r.id.clone(), dep)),
            }
        }
    }
    if !dangling.is_empty() {
        return Err(OrderError::Dangling(dangling));
    }
    let key = |i: usize| (spec(resources[i].kind).tier, &resources[i].id, i);
    let mut ready: BTreeSet<_> = (0..n).filter(|&i| waits[i].is_empty()).map(key).collect();
    let mut order = Vec::with_capacity(n);
    while let Some((_, _, i)) = ready.pop_first() {
        order.push(i);
        for &k in &dependents[i] {
            waits[k].remove(&i);
            if waits[k].is_empty() {
                ready.insert(key(k));
            }
        }
    }
    if order.len() < n {
        let mut stuck: Vec<(ResourceId, Vec<ResourceId>)> = (0..n)
            .filter(|&i| !waits[i].is_empty())
            .map(|i| {
                let mut deps: Vec<ResourceId> =
                    waits[i].iter().map(|&j| resources[j].id.clone()).collect();
                deps.sort();
                (resources[i].id.clone(), deps)
            })
            .collect();
        stuck.sort();
        return Err(OrderError::Cycle(stuck));
    }
    Ok(order)
}

/// Small graphs for the tests of the order and of the graph builder's check (feature `fixtures`).
#[cfg(any(test, feature = "fixtures"))]
pub mod fixtures {
    use crate::{Kind, Resource, Value};

    /// A security group `id` whose ingress references the groups `refs`.
    pub fn sg(id: &str, refs: &[&str]) -> Resource {
        let rules: Vec<Value> = refs.iter().map(|r| Value::reference(*r, "id")).collect();
        Resource::new(id, Kind::SecurityGroup).with("ingress", Value::List(rules))
    }

    /// Three security groups (`sg.b` references `sg.c`) and a VPC, out of order; in dependency
    /// order: `net.vpc`, `sg.a`, `sg.c`, `sg.b`.
    pub fn tiers_and_deps() -> Vec<Resource> {
        vec![
            sg("sg.b", &["sg.c"]),
            sg("sg.a", &[]),
            sg("sg.c", &[]),
            Resource::new("net.vpc", Kind::Vpc),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::fixtures::{sg, tiers_and_deps};
    use super::*;

    #[test]
    fn by_tier_then_id_and_dependencies_first() {
        let rs = tiers_and_deps();
        let ids: Vec<&str> = topo(&rs)
            .unwrap()
            .into_iter()
            .map(|i| rs[i].id.as_str())
            .collect();
        assert_eq!(ids, ["net.vpc", "sg.a", "sg.c", "sg.b"]);
    }

    #[test]
    fn errors_name_what_is_wrong() {
        assert_eq!(
            topo(&[sg("sg.a", &[]), sg("sg.a", &[])]),
            Err(OrderError::Duplicate("sg.a".into()))
        );
        assert_eq!(
            topo(&[sg("sg.a", &["sg.x"])]),
            Err(OrderError::Dangling(vec![("sg.a".into(), "sg.x".into())]))
        );
        assert_eq!(
            topo(&[
                sg("sg.a", &["sg.b"]),
                sg("sg.b", &["sg.a"]),
                sg("sg.c", &[])
            ]),
            Err(OrderError::Cycle(vec![
                ("sg.a".into(), vec!["sg.b".into()]),
                ("sg.b".into(), vec!["sg.a".into()]),
            ]))
        );
    }
}
