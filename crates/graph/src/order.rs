//! Checks of a built graph (every reference resolves inside it, ids are unique, no cycles) and its
//! deterministic creation order.

use crate::GraphError;
use moodlestack_model::{spec, topo, OrderError, Resource, ResourceId};
use std::collections::HashMap;

/// Checks `resources` and returns them in creation order ([`moodlestack_model::topo`]): every
/// reference points at a declared resource and at an attribute its kind offers
/// ([`moodlestack_model::KindSpec::attrs`]), ids are unique, there is no cycle.
pub fn check_and_order(resources: Vec<Resource>) -> Result<Vec<Resource>, GraphError> {
    let order = topo(&resources).map_err(|e| {
        GraphError::Invalid(match e {
            OrderError::Duplicate(id) => {
                format!("internal error: resource id {id} is declared twice")
            }
            OrderError::Dangling(pairs) => format!(
                "internal error: references to resources the graph does not declare: {}",
                pairs
                    .iter()
                    .map(|(r, d)| format!("{r} -> {d}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            OrderError::Cycle(stuck) => format!(
                "internal error: dependency cycle among: {}",
                stuck
                    .iter()
                    .map(|(id, deps)| {
                        let deps: Vec<&str> = deps.iter().map(ResourceId::as_str).collect();
                        format!("{id} (waits for {})", deps.join(", "))
                    })
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
        })
    })?;
    let kinds: HashMap<&ResourceId, _> = resources.iter().map(|r| (&r.id, r.kind)).collect();
    let mut unknown = Vec::new();
    for r in &resources {
        for (field, v) in &r.fields {
            for re in v.refs() {
                let target = kinds[&re.resource];
                if !spec(target).has_attr(&re.attr) {
                    unknown.push(format!(
                        "{}.{field} -> {}.{} ({target} has only {})",
                        r.id,
                        re.resource,
                        re.attr,
                        spec(target).attrs.join(", ")
                    ));
                }
            }
        }
    }
    if !unknown.is_empty() {
        return Err(GraphError::Invalid(format!(
            "internal error: references to attributes the resources do not have: {}",
            unknown.join("; ")
        )));
    }
    let mut slots: Vec<Option<Resource>> = resources.into_iter().map(Some).collect();
    Ok(order.into_iter().filter_map(|i| slots[i].take()).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use moodlestack_model::order::fixtures::{sg, tiers_and_deps};
    use moodlestack_model::{Kind, Value};

    #[test]
    fn orders_by_tier_then_id_and_respects_same_tier_deps() {
        let out = check_and_order(tiers_and_deps()).unwrap();
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
        let bad = Resource::new("sg.b", Kind::SecurityGroup).with(
            "ingress",
            Value::List(vec![Value::reference("sg.a", "arn")]),
        );
        let e = check_and_order(vec![sg("sg.a", &[]), bad]).unwrap_err();
        assert!(
            e.to_string()
                .contains("sg.b.ingress -> sg.a.arn (security_group has only id)"),
            "{e}"
        );
    }
}
