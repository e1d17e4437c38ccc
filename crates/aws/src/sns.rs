//! SNS: the stack's alert topic ([`Kind::SnsTopic`]) and its e-mail subscriptions
//! ([`Kind::SnsSubscription`]).
//!
//! SNS lists topics by ARN only: the stack's are those whose name (the ARN's last part) the
//! stack declares or starts with `<stack>-` (one paginated ListTopics), each read with
//! GetTopicAttributes and ListTagsForResource at once and kept when tagged with the stack.
//! CreateTopic answers with the existing topic when the name is taken, so a create reads the
//! topic back and, when it is not the stack's, leaves it alone (`Created::Exists`: the generic
//! code refuses it). Subscriptions cannot be tagged or changed: they are read per topic of the
//! stack (ListSubscriptionsByTopic, all topics at once), matched by (topic, protocol, endpoint)
//! and replaced on any change.

use crate::fields::delete_by;
use crate::fields::{
    all_at_once, answer, collected, deleted, in_place_only, not_found_is_none, owned_id, read_back,
    sent, tag_map, tags_value, untagged, usable, Names, Reader,
};
use crate::{Clients, Created, Cx, KindOps, Query, Update};
use async_trait::async_trait;
use aws_sdk_sns::types::{Subscription as SdkSubscription, Tag};
use moodlestack_model::{CloudError, Fields, Kind, Observed, ObservedId, Scope, Value};
use std::collections::BTreeMap;

/// The name of a topic (the last part of its ARN).
fn topic_name(arn: &str) -> &str {
    arn.rsplit(':').next().unwrap_or(arn)
}

/// Every topic ARN of the region (one paginated ListTopics).
async fn topic_arns(c: &Clients) -> Result<Vec<String>, CloudError> {
    let req = c.sns.list_topics();
    let topics = collected(
        "sns:ListTopics",
        req.into_paginator().items().send().try_collect(),
    )
    .await?;
    Ok(topics
        .iter()
        .filter_map(|t| t.topic_arn().map(str::to_string))
        .collect())
}

/// The topic `arn` as the stack sees it (None: missing or not the stack's): its attributes and
/// tags at once.
async fn topic(c: &Clients, scope: &Scope, arn: &str) -> Result<Option<Observed>, CloudError> {
    let attrs = answer(
        "sns:GetTopicAttributes",
        c.sns.get_topic_attributes().topic_arn(arn).send(),
    );
    let tags = answer(
        "sns:ListTagsForResource",
        c.sns.list_tags_for_resource().resource_arn(arn).send(),
    );
    let Some((attrs, tags)) = not_found_is_none(tokio::try_join!(attrs, tags))? else {
        return Ok(None);
    };
    let attrs: BTreeMap<String, String> = attrs
        .attributes()
        .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default();
    Ok(topic_observed(scope, arn, &attrs, tag_map(tags.tags())))
}

fn topic_observed(
    scope: &Scope,
    arn: &str,
    attrs: &BTreeMap<String, String>,
    tags: BTreeMap<String, String>,
) -> Option<Observed> {
    let id = owned_id(scope, &tags)?;
    let attr = |k: &str| {
        attrs
            .get(k)
            .filter(|v| !v.is_empty())
            .map_or(Value::Null, Value::str)
    };
    let fields = Fields::from([
        ("name".to_string(), Value::str(topic_name(arn))),
        ("display_name".to_string(), attr("DisplayName")),
        ("kms_key_id".to_string(), attr("KmsMasterKeyId")),
        ("tags".to_string(), tags_value(tags)),
    ]);
    Some(usable(Kind::SnsTopic, id, arn, arn, fields))
}

/// The stack's topics among the region's whose names `names` asks for.
async fn topics(c: &Clients, scope: &Scope, names: &Names) -> Result<Vec<Observed>, CloudError> {
    let arns = topic_arns(c).await?;
    all_at_once(
        arns.iter()
            .filter(|a| names.matches(topic_name(a)))
            .map(|a| topic(c, scope, a)),
    )
    .await
}

/// `AWS::SNS::Topic`.
pub(crate) struct Topic;

#[async_trait]
impl KindOps for Topic {
    async fn list(&self, cx: &Cx<'_>, q: Query<'_>) -> Result<Vec<Observed>, CloudError> {
        match q {
            Query::Physical(arn) => Ok(topic(cx.c, cx.scope, arn).await?.into_iter().collect()),
            q => topics(cx.c, cx.scope, &Names::new(cx, Kind::SnsTopic, q)).await,
        }
    }

    async fn create(&self, cx: &Cx<'_>, r: &Reader<'_>) -> Result<Created, CloudError> {
        let name = r.str("name")?;
        let tags = r.built_stack_tags(cx.scope, |k, v| Tag::builder().key(k).value(v).build())?;
        let mut req = cx.c.sns.create_topic().name(name).set_tags(Some(tags));
        for (field, attribute) in TOPIC_ATTRIBUTES {
            if let Some(v) = r.opt_str(field) {
                req = req.attributes(*attribute, v);
            }
        }
        let out = match answer("sns:CreateTopic", req.send()).await {
            Ok(out) => out,
            // AWS refuses a create whose tags or attributes differ from the existing topic's.
            Err(CloudError::Api { code, message, .. })
                if code == "InvalidParameter" && message.contains("already exists") =>
            {
                return Ok(Created::Exists)
            }
            Err(e) => return Err(e),
        };
        let arn = out.topic_arn().unwrap_or_default();
        // CreateTopic answers with the topic of that name if there is one: only one tagged with
        // the stack (and this resource) is ours.
        let mine: ObservedId = r.id.clone().into();
        match topic(cx.c, cx.scope, arn).await? {
            Some(o) if o.id == mine => Ok(Created::New(o)),
            _ => Ok(Created::Exists),
        }
    }

    async fn update(&self, cx: &Cx<'_>, u: Update<'_>) -> Result<Observed, CloudError> {
        let (current, r, changed) = u.parts();
        let arn = current.physical_id.as_str();
        let c = cx.c;
        let calls = changed.iter().map(|field| async move {
            if let Some((_, attribute)) = TOPIC_ATTRIBUTES.iter().find(|(f, _)| f == field) {
                let req = c.sns.set_topic_attributes().topic_arn(arn);
                let req = req
                    .attribute_name(*attribute)
                    .attribute_value(r.opt_str(field).unwrap_or_default());
                return sent("sns:SetTopicAttributes", req.send()).await;
            }
            match *field {
                "tags" => {
                    let (_, tags) = crate::fields::retag("sns:TagResource", current, r)?;
                    let tags = crate::fields::built_tags(r, &tags, |k, v| {
                        Tag::builder().key(k).value(v).build()
                    })?;
                    let req = c.sns.tag_resource().resource_arn(arn).set_tags(Some(tags));
                    sent("sns:TagResource", req.send()).await
                }
                other => Err(in_place_only(current.kind, r, other, "topic")),
            }
        });
        futures::future::try_join_all(calls).await?;
        read_back(
            topic(c, cx.scope, arn).await?,
            current,
            "sns:GetTopicAttributes",
        )
    }

    /// DeleteTopic deletes its subscriptions with it.
    async fn delete(&self, cx: &Cx<'_>, current: &Observed) -> Result<(), CloudError> {
        delete_by!(deleted "sns:DeleteTopic": cx.c.sns.delete_topic().topic_arn(current))
    }
    crate::fields::settled_at_once!();
}

/// The topic's fields that are SNS topic attributes, with the attribute's name.
const TOPIC_ATTRIBUTES: &[(&str, &str)] = &[
    ("display_name", "DisplayName"),
    ("kms_key_id", "KmsMasterKeyId"),
];

// ---- subscriptions --------------------------------------------------------------------------

/// The ARN SNS lists for a subscription its owner has not confirmed yet.
const PENDING: &str = "PendingConfirmation";

/// A subscription as observed. One waiting for confirmation has no ARN in SNS's lists: its
/// physical id is then `<topic ARN>|<protocol>|<endpoint>`, which nothing can unsubscribe
/// (SNS deletes unconfirmed subscriptions after 3 days).
fn subscription_observed(topic_arn: &str, s: &SdkSubscription) -> Observed {
    let protocol = s.protocol().unwrap_or_default();
    let endpoint = s.endpoint().unwrap_or_default();
    let (id, status) = match s.subscription_arn() {
        Some(arn) if arn.starts_with("arn:") => (arn.to_string(), "confirmed"),
        _ => (
            format!("{topic_arn}|{protocol}|{endpoint}"),
            "pending confirmation",
        ),
    };
    let fields = Fields::from([
        ("topic_arn".to_string(), Value::str(topic_arn)),
        ("protocol".to_string(), Value::str(protocol)),
        ("endpoint".to_string(), Value::str(endpoint)),
    ]);
    untagged(Kind::SnsSubscription, id, fields, status)
}

/// The subscriptions of the topic `topic_arn` (none when the topic is gone).
async fn subscriptions(c: &Clients, topic_arn: &str) -> Result<Vec<Observed>, CloudError> {
    let req = c.sns.list_subscriptions_by_topic().topic_arn(topic_arn);
    let found = crate::fields::described(
        "sns:ListSubscriptionsByTopic",
        Some(topic_arn),
        req.into_paginator().items().send().try_collect(),
    )
    .await?;
    Ok(found
        .iter()
        .map(|s| subscription_observed(topic_arn, s))
        .collect())
}

/// The subscriptions of the stack's topics, all read at once.
async fn stack_subscriptions(cx: &Cx<'_>) -> Result<Vec<Observed>, CloudError> {
    let topics = cx.listed(Kind::SnsTopic).await?;
    all_at_once(topics.iter().map(|t| subscriptions(cx.c, &t.physical_id))).await
}

/// `AWS::SNS::Subscription`, untaggable: found through the stack's topics.
pub(crate) struct Subscription;

#[async_trait]
impl KindOps for Subscription {
    async fn list(&self, cx: &Cx<'_>, q: Query<'_>) -> Result<Vec<Observed>, CloudError> {
        match q {
            Query::Stack => stack_subscriptions(cx).await,
            Query::Logical { fields, .. } => {
                match fields.get("topic_arn").and_then(Value::as_str) {
                    Some(topic) => subscriptions(cx.c, topic).await,
                    None => Ok(Vec::new()),
                }
            }
            Query::Physical(id) => Ok(stack_subscriptions(cx)
                .await?
                .into_iter()
                .filter(|s| s.physical_id == id)
                .collect()),
        }
    }

    async fn create(&self, cx: &Cx<'_>, r: &Reader<'_>) -> Result<Created, CloudError> {
        let topic_arn = r.str("topic_arn")?;
        let req =
            cx.c.sns
                .subscribe()
                .topic_arn(topic_arn)
                .protocol(r.str("protocol")?)
                .endpoint(r.str("endpoint")?)
                .return_subscription_arn(true);
        let out = answer("sns:Subscribe", req.send()).await?;
        let made = SdkSubscription::builder()
            .topic_arn(topic_arn)
            .protocol(r.str("protocol")?)
            .endpoint(r.str("endpoint")?)
            .set_subscription_arn(out.subscription_arn().map(str::to_string))
            .build();
        let o = subscription_observed(topic_arn, &made);
        Ok(Created::made(r, o))
    }

    async fn update(&self, _cx: &Cx<'_>, u: Update<'_>) -> Result<Observed, CloudError> {
        let (current, r, changed) = u.parts();
        match changed.first() {
            Some(field) => Err(in_place_only(current.kind, r, field, "subscription")),
            None => Ok(current.clone()),
        }
    }

    /// Unsubscribe; a subscription still waiting for confirmation has no ARN to unsubscribe
    /// (SNS deletes it after 3 days, or with its topic).
    async fn delete(&self, cx: &Cx<'_>, current: &Observed) -> Result<(), CloudError> {
        let arn = current.physical_id.as_str();
        if !arn.starts_with("arn:") || arn.ends_with(PENDING) {
            return Ok(());
        }
        let req = cx.c.sns.unsubscribe().subscription_arn(arn);
        deleted("sns:Unsubscribe", req.send()).await
    }
    crate::fields::settled_at_once!();
}

/// This file's kinds under their [`Kind`](moodlestack_model::Kind) names, for the registry
/// [`ops`](crate::ops).
pub(crate) mod kinds {
    pub(crate) use super::{Subscription as SnsSubscription, Topic as SnsTopic};
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fields::{assert_matches_spec, test_scope};
    use moodlestack_model::identity_tags;

    #[test]
    fn a_topic_is_observed_with_exactly_its_descriptors_fields() {
        let arn = "arn:aws:sns:eu-west-1:123456789012:demo-alerts";
        let attrs = BTreeMap::from([
            ("DisplayName".to_string(), "demo alerts".to_string()),
            ("KmsMasterKeyId".to_string(), "arn:aws:kms:k".to_string()),
            ("Owner".to_string(), "123456789012".to_string()),
        ]);
        let tags = identity_tags(&test_scope("demo"), &"alerts.topic");
        let o = topic_observed(&test_scope("demo"), arn, &attrs, tags).unwrap();
        assert_matches_spec(&o, &[]);
        assert_eq!(o.fields["name"], Value::str("demo-alerts"));
        assert_eq!(o.physical_id, arn);
    }

    #[test]
    fn a_pending_subscription_is_observed_under_its_topic_and_endpoint() {
        let topic = "arn:aws:sns:eu-west-1:123456789012:demo-alerts";
        let s = SdkSubscription::builder()
            .topic_arn(topic)
            .protocol("email")
            .endpoint("ops@example.org")
            .subscription_arn(PENDING)
            .build();
        let o = subscription_observed(topic, &s);
        assert_matches_spec(&o, &[]);
        assert_eq!(o.physical_id, format!("{topic}|email|ops@example.org"));
        assert_eq!(o.status, "pending confirmation");
    }
}
