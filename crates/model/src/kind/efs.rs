//! EFS kinds: the file system (moodledata) and its mount targets.

use super::{f, repl, set, spec_of, KindSpec, PhysicalId, TAGS};
use crate::cost::{PriceQuery, Usage};
use crate::Kind;

// The EFS kinds, as rows of the kind table in `mod.rs`.
kind_list! { $ efs_kinds [
    /// An EFS file system (moodledata).
    EfsFileSystem => efs::FILE_SYSTEM,
    /// An EFS mount target (untaggable).
    EfsMountTarget => efs::MOUNT_TARGET,
] }

/// The file system keyed by its creation token (the stack's deterministic name for it).
pub(super) const FILE_SYSTEM: KindSpec = KindSpec {
    physical_id: PhysicalId::Generated("fs"),
    stateful: true,
    fields: &[
        repl("creation_token"),
        repl("performance_mode"),
        f("throughput_mode"),
        repl("encrypted"),
        TAGS,
    ],
    name_field: Some("creation_token"),
    attrs: &["id", "arn"],
    // Billed by the GB stored (Standard storage class); elastic throughput by the GB read and
    // written, not counted.
    usage: |cx| {
        vec![Usage::gb_month(
            "storage",
            "Standard storage, by the size of moodledata (throughput not counted)",
            None,
            PriceQuery::list(
                "AmazonEFS",
                cx.region,
                &[
                    ("productFamily", "Storage"),
                    ("storageClass", "General Purpose"),
                ],
            )
            .unit("GB-Mo"),
        )]
    },
    ..spec_of(
        Kind::EfsFileSystem,
        "efs_file_system",
        "AWS::EFS::FileSystem",
    )
};

/// Mount targets cannot be tagged: matched by (file_system_id, subnet_id).
pub(super) const MOUNT_TARGET: KindSpec = KindSpec {
    physical_id: PhysicalId::Generated("fsmt"),
    tier: 3,
    fields: &[
        repl("file_system_id"),
        repl("subnet_id"),
        set("security_group_ids"),
    ],
    identity: &["file_system_id", "subnet_id"],
    attrs: &["id", "ip_address"],
    ..spec_of(
        Kind::EfsMountTarget,
        "efs_mount_target",
        "AWS::EFS::MountTarget",
    )
};
