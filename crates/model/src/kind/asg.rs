//! Auto Scaling kinds: the web fleet's group.

use super::{create_only, f, mins, repl, set, KindSpec, DEFAULT, TAGS};
use crate::change::{ChangeView, Note, NoteKind};
use crate::Kind;

/// The Auto Scaling kinds, as rows of the kind table in `mod.rs`.
macro_rules! asg_kinds {
    ([$($acc:tt)*] $($rest:ident)*) => { table! { [$($acc)*
        /// An Auto Scaling group (the web fleet).
        AutoScalingGroup => asg::GROUP,
    ] $($rest)* } };
}

/// Mixed instances policy: instance_types (ordered overrides), on_demand_base_capacity,
/// on_demand_percentage_above_base, spot_allocation_strategy; always sent whole. A change of
/// launch_template_version starts an instance refresh (new instances first: healthy capacity stays
/// between 100 % and 200 %). desired_capacity is
/// set at creation only. `id` is the name.
pub(super) const GROUP: KindSpec = KindSpec {
    kind: Kind::AutoScalingGroup,
    name: "autoscaling_group",
    aws_type: "AWS::AutoScaling::AutoScalingGroup",
    tier: 8,
    fields: &[
        repl("name"),
        f("launch_template_id"),
        f("launch_template_version"),
        f("instance_types"),
        f("min_size"),
        f("max_size"),
        create_only("desired_capacity"),
        f("on_demand_base_capacity"),
        f("on_demand_percentage_above_base"),
        f("spot_allocation_strategy"),
        f("capacity_rebalance"),
        set("subnet_ids"),
        set("target_group_arns"),
        f("health_check_type"),
        f("health_check_grace_period"),
        TAGS,
    ],
    name_field: Some("name"),
    attrs: &["id", "arn"],
    // A rollout waits for its instance refresh: new nodes launch together (healthy 100-200 %)
    // and each is in warm-up for the health check grace period (15 min) before the old ones go.
    ready_timeout: mins(45),
    notes: group_notes,
    ..DEFAULT
};

fn group_notes(c: &ChangeView<'_>) -> Vec<Note> {
    if c.is_real_update() && c.changed("launch_template_version").is_some() {
        vec![Note::new(
            NoteKind::Rollout,
            "starts an instance refresh (new instances first, healthy capacity 100-200%): \
             instances are replaced with the new launch template version",
        )]
    } else {
        Vec::new()
    }
}
