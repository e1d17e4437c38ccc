//! KMS kinds: the stack's customer managed key, which encrypts its log groups and its alert
//! topic.

use super::{f, repl, KindSpec, PhysicalId, DEFAULT, TAGS};

// The KMS kinds, as rows of the kind table in `mod.rs`.
kind_list! { $ kms_kinds [
    /// A KMS customer managed key with its alias.
    KmsKey("kms_key", "AWS::KMS::Key") => kms::KEY,
] }

/// A symmetric customer managed key, found by its `alias` (`alias/moodlestack/<stack>/...`):
/// CloudWatch Logs encrypts with customer managed keys only (there is no AWS managed key for
/// Logs), and CloudWatch alarms can publish to a topic encrypted with a key whose `policy` lets
/// `cloudwatch.amazonaws.com` use it (never with the AWS managed `alias/aws/sns`). `policy` is
/// compact JSON, keys sorted; `rotation` is yearly automatic rotation. A delete schedules the
/// key's deletion (KMS's shortest window, 7 days) and removes the alias at once; a key pending
/// deletion is no longer the stack's. `id` is the key id.
pub(super) const KEY: KindSpec = KindSpec {
    physical_id: PhysicalId::Generated(""),
    fields: &[
        repl("alias"),
        f("description"),
        f("policy"),
        f("rotation"),
        TAGS,
    ],
    attrs: &["id", "arn"],
    names_only: &["policy"],
    ..DEFAULT
};
