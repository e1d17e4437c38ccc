//! IAM kinds: the nodes' role and instance profile.

use super::{f, repl, set, KindSpec, DEFAULT, NAMED, TAGS};

// The IAM kinds, as rows of the kind table in `mod.rs`.
kind_list! { $ iam_kinds [
    /// An IAM role with its policies.
    IamRole("iam_role", "AWS::IAM::Role") => iam::ROLE,
    /// An IAM instance profile.
    InstanceProfile("instance_profile", "AWS::IAM::InstanceProfile") => iam::INSTANCE_PROFILE,
] }

/// assume_role_policy and the values of inline_policies: compact JSON, keys sorted (serde_json
/// re-serialization of the parsed document). `id` is the role name.
pub(super) const ROLE: KindSpec = KindSpec {
    tier: 5,
    fields: &[
        repl("role_name"),
        repl("path"),
        f("assume_role_policy"),
        set("managed_policy_arns"),
        f("inline_policies"),
        TAGS,
    ],
    name_field: Some("role_name"),
    attrs: &["id", "arn"],
    names_only: &["assume_role_policy", "inline_policies"],
    ..DEFAULT
};

/// `id` is the profile name. `role_name` names the role it carries (a reference, not its own
/// name).
pub(super) const INSTANCE_PROFILE: KindSpec = KindSpec {
    tier: 6,
    fields: &[repl("name"), repl("path"), repl("role_name"), TAGS],
    ..NAMED
};
