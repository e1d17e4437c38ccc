//! Secrets Manager kinds.

use super::{f, repl, spec_of, KindSpec, PhysicalId, TAGS};
use crate::Kind;

/// The Secrets Manager kinds, as rows of the kind table in `mod.rs`.
macro_rules! secrets_kinds {
    ([$($acc:tt)*] $($rest:ident)*) => { table! { [$($acc)*
        /// A Secrets Manager secret whose value moodlestack generates.
        Secret => secrets::SECRET,
    ] $($rest)* } };
}

/// A secret whose value moodlestack generates at creation (random, 32 characters, no
/// punctuation) and never prints. Deleted without a recovery window. `id` is the ARN.
pub(super) const SECRET: KindSpec = KindSpec {
    physical_id: PhysicalId::Arn,
    fields: &[repl("name"), f("description"), TAGS],
    name_field: Some("name"),
    attrs: &["id", "arn"],
    ..spec_of(Kind::Secret, "secret", "AWS::SecretsManager::Secret")
};
