//! S3: the [`Kind::CodeBucket`] kind (the stack's bucket of Moodle code artefacts).
//!
//! The bucket's name is `<stack>-<region>-<account>-code` (S3 names are global). It is created
//! with the stack's tags in the CreateBucket call itself, so a bucket is never ours without them,
//! and with every public access block on. Found by ListBuckets (one call, the stack's name prefix
//! and region) and GetBucketTagging per bucket listed, kept only when tagged with the stack; by
//! name with GetBucketTagging. A create whose name is ours already answers
//! `BucketAlreadyOwnedByYou`: the generic code adopts it if its tags say it is the stack's. A name
//! taken by another account (`BucketAlreadyExists`) cannot be ours: the error says so.
//!
//! The objects are code artefacts the stable node builds from the pinned refs (nothing a user
//! made), so delete empties the bucket (every version, 1,000 keys a request) before DeleteBucket.

use crate::fields::by_name;
use crate::fields::{
    all_at_once, answer, api_err, as_current, in_place_only, is_code, owned_id, sent, tag_map,
    tags_value, unexpected, usable, Reader,
};
use crate::{Clients, Created, Cx, KindOps, Query, Update};
use async_trait::async_trait;
use aws_sdk_s3::types::{
    BucketLocationConstraint, CreateBucketConfiguration, Delete, ObjectIdentifier,
    PublicAccessBlockConfiguration, Tag, Tagging,
};
use moodlestack_model::{cloud::partition, CloudError, Fields, Kind, Observed, Scope, Value};
use moodlestack_stack::names::Names;
use std::collections::BTreeMap;

type Tags = BTreeMap<String, String>;

fn sdk_tags(tags: &Tags) -> Result<Vec<Tag>, CloudError> {
    tags.iter()
        .map(|(k, v)| {
            Tag::builder()
                .key(k)
                .value(v)
                .build()
                .map_err(|e| unexpected("s3:CreateBucket", format!("tag {k}: {e}")))
        })
        .collect()
}

/// Every public access block setting `on` (the artefacts are read by the nodes' role only), or
/// every one off.
fn blocked(on: bool) -> PublicAccessBlockConfiguration {
    PublicAccessBlockConfiguration::builder()
        .block_public_acls(on)
        .ignore_public_acls(on)
        .block_public_policy(on)
        .restrict_public_buckets(on)
        .build()
}

/// True when S3 answered that the bucket does not exist.
fn no_bucket(e: &CloudError) -> bool {
    is_code(e, "NoSuchBucket") || matches!(e, CloudError::Api { code, .. } if code == "NotFound")
}

/// The bucket `name` as the stack sees it: None when it does not exist, belongs to another
/// account (S3 answers AccessDenied or 301 for a name it keeps elsewhere) or is not tagged with
/// the stack. Its tags and its public access block are read at once.
async fn describe(c: &Clients, scope: &Scope, name: &str) -> Result<Option<Observed>, CloudError> {
    let tagging = answer(
        "s3:GetBucketTagging",
        c.s3.get_bucket_tagging().bucket(name).send(),
    );
    let pab = answer(
        "s3:GetPublicAccessBlock",
        c.s3.get_public_access_block().bucket(name).send(),
    );
    let (tagging, pab) = tokio::join!(tagging, pab);
    let tags = match tagging {
        Ok(t) => tag_map(t.tag_set()),
        // Untagged: not the stack's (moodlestack tags a bucket on CreateBucket itself).
        Err(e) if is_code(&e, "NoSuchTagSet") => return Ok(None),
        Err(e) if no_bucket(&e) || is_code(&e, "AccessDenied") => return Ok(None),
        Err(e) => return Err(e),
    };
    let Some(id) = owned_id(scope, &tags) else {
        return Ok(None);
    };
    let blocked = match pab {
        Ok(p) => p.public_access_block_configuration().is_some_and(|c| {
            [
                c.block_public_acls(),
                c.ignore_public_acls(),
                c.block_public_policy(),
                c.restrict_public_buckets(),
            ]
            .iter()
            .all(|b| *b == Some(true))
        }),
        Err(e) if is_code(&e, "NoSuchPublicAccessBlockConfiguration") => false,
        Err(e) if no_bucket(&e) => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut fields = Fields::new();
    fields.insert("bucket".into(), Value::str(name));
    fields.insert("block_public_access".into(), Value::Bool(blocked));
    fields.insert("tags".into(), tags_value(tags));
    let arn = format!("arn:{}:s3:::{name}", partition(&scope.region));
    Ok(Some(usable(Kind::CodeBucket, id, name, &arn, fields)))
}

/// The stack's buckets: ONE ListBuckets of the stack's name prefix in its region, then each
/// listed bucket's tags and public access block, all at once.
async fn list_stack(c: &Clients, scope: &Scope) -> Result<Vec<Observed>, CloudError> {
    let prefix = Names::for_stack(&scope.stack, &scope.region).code_bucket_prefix();
    let mut names = Vec::new();
    let mut pages =
        c.s3.list_buckets()
            .prefix(&prefix)
            .bucket_region(&scope.region)
            .into_paginator()
            .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| api_err("s3:ListBuckets", e))?;
        names.extend(
            page.buckets()
                .iter()
                .filter_map(|b| b.name())
                // The prefix is checked here too: an S3 that ignored it cannot leak another
                // stack's buckets into this one's (their tags are checked as well).
                .filter(|n| n.starts_with(&prefix) && n.ends_with("-code"))
                .map(str::to_string),
        );
    }
    all_at_once(names.iter().map(|n| describe(c, scope, n))).await
}

/// Sets the bucket's tags to `tags` (PutBucketTagging replaces the whole set).
async fn put_tags(c: &Clients, bucket: &str, tags: &Tags) -> Result<(), CloudError> {
    let tagging = Tagging::builder()
        .set_tag_set(Some(sdk_tags(tags)?))
        .build()
        .map_err(|e| CloudError::UnexpectedAnswer {
            operation: "s3:PutBucketTagging".into(),
            what: e.to_string(),
        })?;
    let req = c.s3.put_bucket_tagging().bucket(bucket).tagging(tagging);
    sent("s3:PutBucketTagging", req.send()).await
}

/// Deletes every object version and delete marker in `bucket`, 1,000 a request.
async fn empty(c: &Clients, bucket: &str) -> Result<(), CloudError> {
    loop {
        let page = answer(
            "s3:ListObjectVersions",
            c.s3.list_object_versions()
                .bucket(bucket)
                .max_keys(1000)
                .send(),
        )
        .await;
        let page = match page {
            Ok(p) => p,
            Err(e) if no_bucket(&e) => return Ok(()),
            Err(e) => return Err(e),
        };
        let versions = page.versions().iter().map(|v| (v.key(), v.version_id()));
        let markers = page
            .delete_markers()
            .iter()
            .map(|m| (m.key(), m.version_id()));
        let objects: Vec<ObjectIdentifier> = versions
            .chain(markers)
            .filter_map(|(key, version)| {
                ObjectIdentifier::builder()
                    .set_key(key.map(str::to_string))
                    .set_version_id(version.filter(|v| *v != "null").map(str::to_string))
                    .build()
                    .ok()
            })
            .collect();
        if objects.is_empty() {
            return Ok(());
        }
        let delete = Delete::builder()
            .set_objects(Some(objects))
            .quiet(true)
            .build()
            .map_err(|e| CloudError::UnexpectedAnswer {
                operation: "s3:DeleteObjects".into(),
                what: e.to_string(),
            })?;
        let out = answer(
            "s3:DeleteObjects",
            c.s3.delete_objects().bucket(bucket).delete(delete).send(),
        )
        .await?;
        if let Some(err) = out.errors().first() {
            return Err(CloudError::Api {
                operation: "s3:DeleteObjects".into(),
                code: err.code().unwrap_or("Unknown").to_string(),
                message: format!(
                    "{}: {}",
                    err.key().unwrap_or_default(),
                    err.message().unwrap_or_default()
                ),
                source: None,
            });
        }
    }
}

/// This file's kinds under their [`Kind`](moodlestack_model::Kind) names, for the registry
/// [`ops`](crate::ops).
pub(crate) mod kinds {
    pub(crate) use super::Bucket as CodeBucket;
}

/// `AWS::S3::Bucket`.
pub(crate) struct Bucket;

#[async_trait]
impl KindOps for Bucket {
    async fn list(&self, cx: &Cx<'_>, q: Query<'_>) -> Result<Vec<Observed>, CloudError> {
        let stack = list_stack(cx.c, cx.scope);
        by_name(cx, Kind::CodeBucket, q, stack, |name| async move {
            describe(cx.c, cx.scope, &name).await
        })
        .await
    }

    async fn create(&self, cx: &Cx<'_>, r: &Reader<'_>) -> Result<Created, CloudError> {
        let name = r.str("bucket")?;
        let tags = r.stack_tags(cx.scope)?;
        let mut config = CreateBucketConfiguration::builder().set_tags(Some(sdk_tags(&tags)?));
        // us-east-1 is the one region named by no location constraint.
        if cx.scope.region != "us-east-1" {
            config = config
                .location_constraint(BucketLocationConstraint::from(cx.scope.region.as_str()));
        }
        let req = cx.c.s3.create_bucket().bucket(name);
        match answer(
            "s3:CreateBucket",
            req.create_bucket_configuration(config.build()).send(),
        )
        .await
        {
            Ok(_) => {}
            // Ours already (an earlier run crashed before its observe): the generic code adopts it
            // if its tags say it is the stack's.
            Err(e) if is_code(&e, "BucketAlreadyOwnedByYou") => return Ok(Created::Exists),
            Err(e) if is_code(&e, "BucketAlreadyExists") => {
                return Err(CloudError::Field {
                    kind: Kind::CodeBucket,
                    id: r.id.clone(),
                    field: "bucket".into(),
                    problem: format!(
                        "the S3 bucket name `{name}` belongs to another AWS account (bucket \
                         names are global); it holds this account's id, so check that the \
                         credentials are for the account you meant"
                    ),
                })
            }
            Err(e) => return Err(e),
        }
        if r.opt_bool("block_public_access").unwrap_or(true) {
            let req = cx.c.s3.put_public_access_block().bucket(name);
            sent(
                "s3:PutPublicAccessBlock",
                req.public_access_block_configuration(blocked(true)).send(),
            )
            .await?;
        }
        let mut found = describe(cx.c, cx.scope, name).await?;
        if found.is_none() {
            // An S3 that ignored the tags of CreateBucket (older S3-compatible APIs, and moto
            // without the launcher's behaviour): tagged now, before anything else uses it.
            put_tags(cx.c, name, &tags).await?;
            found = describe(cx.c, cx.scope, name).await?;
        }
        found.map(Created::New).ok_or_else(|| {
            unexpected(
                "s3:CreateBucket",
                format!("{name}: created without the stack's tags"),
            )
        })
    }

    async fn update(&self, cx: &Cx<'_>, u: Update<'_>) -> Result<Observed, CloudError> {
        let (current, r, changed) = u.parts();
        let name = current.physical_id.as_str();
        for field in changed {
            match *field {
                "block_public_access" => {
                    let req = cx.c.s3.put_public_access_block().bucket(name);
                    let config = blocked(r.bool("block_public_access")?);
                    sent(
                        "s3:PutPublicAccessBlock",
                        req.public_access_block_configuration(config).send(),
                    )
                    .await?;
                }
                "tags" => {
                    // PutBucketTagging replaces the set: others' tags on the bucket are kept.
                    let mut tags = Reader::new(current.kind, r.id.clone(), &current.fields)
                        .tags()
                        .unwrap_or_default();
                    tags.extend(r.stack_tags(cx.scope)?);
                    put_tags(cx.c, name, &tags).await?;
                }
                other => return Err(in_place_only(current.kind, r, other, "bucket")),
            }
        }
        as_current(describe(cx.c, cx.scope, name).await?, current, || {
            unexpected(
                "s3:GetBucketTagging",
                format!("bucket {name} is gone or lost the stack's tags after an update"),
            )
        })
    }

    async fn delete(&self, cx: &Cx<'_>, current: &Observed) -> Result<(), CloudError> {
        let name = current.physical_id.as_str();
        empty(cx.c, name).await?;
        match sent(
            "s3:DeleteBucket",
            cx.c.s3.delete_bucket().bucket(name).send(),
        )
        .await
        {
            Err(e) if no_bucket(&e) => Ok(()),
            other => other,
        }
    }
}
