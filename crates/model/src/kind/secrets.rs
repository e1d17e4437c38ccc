//! Secrets Manager kinds.

use super::{f, repl, KindSpec, PhysicalId, NAMED, TAGS};
use crate::cost::{PriceQuery, Usage};

// The Secrets Manager kinds, as rows of the kind table in `mod.rs`.
kind_list! { $ secrets_kinds [
    /// A Secrets Manager secret whose value moodlestack generates.
    Secret("secret", "AWS::SecretsManager::Secret") => secrets::SECRET,
] }

/// A secret whose value moodlestack generates at creation (random, 32 characters, no
/// punctuation) and never prints. Deleted without a recovery window. `id` is the ARN.
pub(super) const SECRET: KindSpec = KindSpec {
    physical_id: PhysicalId::Arn,
    fields: &[repl("name"), f("description"), TAGS],
    // A secret a month (API calls not counted).
    usage: |cx| {
        vec![Usage {
            key: "secret",
            item: "secret (API calls not counted)".into(),
            quantity: Some(1.0),
            unit: "secret-month",
            price: PriceQuery::list(
                "AWSSecretsManager",
                cx.region,
                &[("productFamily", "Secret")],
            ),
        }]
    },
    ..NAMED
};
