//! S3 kinds.

use super::{f, repl, KindSpec, DEFAULT, TAGS};
use crate::cost::{PriceQuery, Usage};

// The S3 kinds, as rows of the kind table in `mod.rs`.
kind_list! { $ s3_kinds [
    /// The stack's code bucket: the Moodle code artefacts the nodes boot from.
    CodeBucket("s3_bucket", "AWS::S3::Bucket") => s3::CODE_BUCKET,
] }

/// The stack's private bucket of code artefacts (`code/<artefact>.tar.gz`), written once per code
/// version by the stable node and read by every node at boot, so a web node never boots from
/// GitHub and every node of a version runs the same bytes. Its content is rebuilt from the pinned
/// refs whenever it is missing, so it holds no data: delete empties it first. `id` is the bucket
/// name (global, so it holds the account id and region).
pub(super) const CODE_BUCKET: KindSpec = KindSpec {
    fields: &[repl("bucket"), f("block_public_access"), TAGS],
    name_field: Some("bucket"),
    attrs: &["id", "arn"],
    // Standard storage by the GB (a code artefact per Moodle version, about 100 MB each);
    // requests not counted.
    usage: |cx| {
        Usage::storage_by_use(
            "Standard storage, by the size of the code artefacts (requests not counted)",
            PriceQuery::list(
                "AmazonS3",
                cx.region,
                &[("productFamily", "Storage"), ("volumeType", "Standard")],
            )
            .usage_type("TimedStorage-ByteHrs")
            .unit("GB-Mo"),
        )
    },
    ..DEFAULT
};
