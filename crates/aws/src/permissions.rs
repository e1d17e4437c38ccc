//! The caller's IAM policy in `docs/aws.md`, checked against the code: every AWS call moodlestack
//! makes carries its `service:Action` label (the operation named in its errors), and the policy's
//! list is exactly those labels plus the permissions AWS checks on the caller's behalf.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Actions no call of moodlestack's names, that AWS checks on the caller when a call needs them.
const ON_BEHALF: &[&str] = &[
    // RunInstances, CreateLaunchTemplate(Version) and Auto Scaling pass the node role.
    "iam:PassRole",
    // The first RDS instance, ElastiCache group, load balancer or Auto Scaling group of an
    // account creates that service's service-linked role.
    "iam:CreateServiceLinkedRole",
    // The lease parameter is created with its tags.
    "ssm:AddTagsToResource",
    // The code bucket is created with its tags (CreateBucketConfiguration.Tags).
    "s3:TagResource",
    // DeleteObjects on object versions (emptying the code bucket).
    "s3:DeleteObjectVersion",
    // CreateBackupVault with the vault's default key (AWS Backup, "Backup vault creation and
    // deletion", Required permissions; also `backup-storage:MountCapsule`, which the policy in
    // docs/aws.md lists and the label scanner does not read: its service has a hyphen).
    "kms:CreateGrant",
    "kms:DescribeKey",
    "kms:RetireGrant",
    "kms:Decrypt",
    "kms:GenerateDataKey",
];

/// The IAM action of a label: the same, but for services whose IAM prefix is not the one their
/// errors use.
fn iam_action(label: &str) -> String {
    match label.split_once(':') {
        Some(("efs", action)) => format!("elasticfilesystem:{action}"),
        // S3's IAM actions are not named after its operations.
        Some(("s3", action)) => format!(
            "s3:{}",
            match action {
                "ListBuckets" => "ListAllMyBuckets",
                "ListObjectVersions" => "ListBucketVersions",
                "DeleteObjects" => "DeleteObject",
                "GetPublicAccessBlock" => "GetBucketPublicAccessBlock",
                "PutPublicAccessBlock" => "PutBucketPublicAccessBlock",
                other => other,
            }
        ),
        _ => label.to_string(),
    }
}

/// Accessors of SDK answers whose names look like operations (`tag_list()`).
const NOT_CALLS: &[&str] = &[
    "tag_list",
    "tag_descriptions",
    "start_time",
    "delete_markers",
    "tag_set",
    "delete_after_days",
    // KMS tags: `tag_key()`, `tag_value()`.
    "tag_key",
    "tag_value",
];

/// Verbs that start an operation's name.
const VERBS: &[&str] = &[
    "add",
    "allocate",
    "associate",
    "attach",
    "authorize",
    "create",
    "decrease",
    "delete",
    "describe",
    "detach",
    "disassociate",
    "get",
    "increase",
    "list",
    "modify",
    "put",
    "release",
    "remove",
    "replace",
    "revoke",
    "run",
    "set",
    "start",
    "tag",
    "terminate",
    "untag",
    "update",
];

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).expect("read crates/aws/src") {
        let p = e.expect("dir entry").path();
        if p.is_dir() {
            sources(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") && !p.ends_with("permissions.rs") {
            out.push(p);
        }
    }
}

/// The code of every source file of this crate, without its test module.
fn code() -> Vec<(PathBuf, String)> {
    let mut files = Vec::new();
    sources(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        &mut files,
    );
    files
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p).expect("read a source file");
            let code = text.split("#[cfg(test)]").next().unwrap_or("").to_string();
            (p, code)
        })
        .collect()
}

/// `"service:Action"` string literals.
fn labels(text: &str) -> BTreeSet<String> {
    text.split('"')
        .skip(1)
        .step_by(2)
        .filter(|s| {
            s.split_once(':').is_some_and(|(svc, action)| {
                !svc.is_empty()
                    && svc
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
                    && action.starts_with(|c: char| c.is_ascii_uppercase())
                    && action.chars().all(|c| c.is_ascii_alphanumeric())
            })
        })
        .map(str::to_string)
        .collect()
}

/// Operation calls of the fluent SDK clients: `.describe_vpcs()`.
fn calls(text: &str) -> BTreeSet<String> {
    text.split('.')
        .filter_map(|s| s.split_once("()"))
        .map(|(name, _)| name)
        .filter(|name| {
            name.chars()
                .all(|c| c.is_ascii_lowercase() || c == '_' || c.is_ascii_digit())
                && VERBS.iter().any(|v| name.starts_with(&format!("{v}_")))
                && !NOT_CALLS.contains(name)
        })
        .map(str::to_string)
        .collect()
}

fn squash(s: &str) -> String {
    s.replace('_', "").to_ascii_lowercase()
}

/// The actions of the policy between the markers of docs/aws.md.
fn documented() -> BTreeSet<String> {
    let doc =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/aws.md"))
            .expect("read docs/aws.md");
    let start = doc
        .find("<!-- policy: begin -->")
        .expect("docs/aws.md has the policy markers");
    let end = doc.find("<!-- policy: end -->").expect("end marker");
    labels(&doc[start..end])
}

#[test]
fn every_call_is_labelled_and_the_documented_policy_is_exactly_the_labels() {
    let code = code();
    let labelled: BTreeSet<String> = code.iter().flat_map(|(_, t)| labels(t)).collect();
    let actions: BTreeSet<String> = labelled
        .iter()
        .map(|l| squash(l.split_once(':').map_or("", |(_, a)| a)))
        .collect();
    for (path, text) in &code {
        for call in calls(text) {
            assert!(
                actions.contains(&squash(&call)),
                "{}: `.{call}()` has no \"service:Action\" label in the code; give its errors \
                 one (api_err), so the caller's policy in docs/aws.md lists it",
                path.display()
            );
        }
    }
    let mut want: BTreeSet<String> = labelled.iter().map(|l| iam_action(l)).collect();
    want.extend(ON_BEHALF.iter().map(|s| (*s).to_string()));
    let doc = documented();
    let missing: Vec<&String> = want.difference(&doc).collect();
    let extra: Vec<&String> = doc.difference(&want).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "docs/aws.md's policy differs from the code: add {missing:?}, remove {extra:?}"
    );
}

#[test]
fn the_scanners_find_labels_and_calls() {
    let text = r#"cx.c.ec2
            .release_address()
            .allocation_id(&id)
            .send()
            .map_err(|e| api_err("ec2:ReleaseAddress", e)); let t = out.tag_list();"#;
    assert_eq!(
        labels(text),
        BTreeSet::from(["ec2:ReleaseAddress".to_string()])
    );
    assert_eq!(calls(text), BTreeSet::from(["release_address".to_string()]));
}
