//! SNS kinds: the stack's alert topic and its subscriptions.

use super::{f, repl, KindSpec, PhysicalId, DEFAULT, NAMED, TAGS};

// The SNS kinds, as rows of the kind table in `mod.rs`.
kind_list! { $ sns_kinds [
    /// An SNS topic (the stack's alarms notify it).
    SnsTopic("sns_topic", "AWS::SNS::Topic") => sns::TOPIC,
    /// A subscription of an SNS topic (untaggable): an e-mail address that gets the alerts.
    SnsSubscription("sns_subscription", "AWS::SNS::Subscription") => sns::SUBSCRIPTION,
] }

/// The topic every alarm of the stack notifies, encrypted with the KMS key `kms_key_id`
/// (changed in place). `id` is the topic ARN.
pub(super) const TOPIC: KindSpec = KindSpec {
    physical_id: PhysicalId::Arn,
    tier: 1,
    fields: &[repl("name"), f("display_name"), f("kms_key_id"), TAGS],
    ..NAMED
};

/// A subscription of `topic_arn` for `endpoint` over `protocol` (`email`). SNS cannot tag or
/// change a subscription: it is matched by (topic, protocol, endpoint) and every change replaces
/// it. An e-mail subscription waits for its owner to confirm it (`pending confirmation`); it
/// still counts as made. `id` is the subscription ARN.
pub(super) const SUBSCRIPTION: KindSpec = KindSpec {
    physical_id: PhysicalId::Arn,
    tier: 2,
    fields: &[repl("topic_arn"), repl("protocol"), repl("endpoint")],
    identity: &["topic_arn", "protocol", "endpoint"],
    attrs: &["id", "arn"],
    ..DEFAULT
};
