//! `moodlestack list`: the account's stacks in a region, found by their tags: name, age, expiry
//! and resource count, from one round of requests (`tag:GetResources` for every resource with the
//! `moodlestack:stack` tag, `s3:ListBuckets` beside it for the code buckets' creation dates; see
//! `moodlestack_aws::tagging`).

use super::common::{self, fail, Exit, Outcome};
use crate::Global;
use moodlestack_model::cloud::{human_duration, parse_rfc3339, rfc3339, unix_now};
use moodlestack_model::{TAG_EXPIRES, TAG_ID, TAG_STACK};
use std::collections::BTreeMap;

/// One stack as the tagging API shows it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StackInfo {
    /// The `moodlestack:stack` tag's value.
    pub name: String,
    /// Its resources the tagging API reports: distinct `moodlestack:id` values (an instance's
    /// volume carries its instance's; the web fleet's instances carry none).
    pub resources: usize,
    /// Those ids.
    pub ids: std::collections::BTreeSet<String>,
    /// The latest `moodlestack:expires-at` among them (seconds since the epoch).
    pub expires: Option<u64>,
    /// How many of them (distinct ids) carry no (readable) expiry tag.
    pub without_expiry: usize,
    /// Those ids.
    pub ids_without_expiry: std::collections::BTreeSet<String>,
    /// When its code bucket was created (seconds since the epoch), the stack's age.
    pub created: Option<u64>,
}

impl StackInfo {
    /// Whether the expiry has passed at `now`; a stack with any resource without an expiry tag
    /// never counts as expired.
    pub fn expired(&self, now: u64) -> bool {
        self.without_expiry == 0 && self.expires.is_some_and(|at| at <= now)
    }
}

/// The region `--region` names, or the environment's (`AWS_REGION`, `AWS_DEFAULT_REGION`).
pub fn region(arg: Option<&str>) -> anyhow::Result<String> {
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    arg.map(str::to_string)
        .or_else(|| env("AWS_REGION"))
        .or_else(|| env("AWS_DEFAULT_REGION"))
        .ok_or_else(|| {
            fail(
                "no region: stacks are listed per region",
                "pass --region (e.g. --region eu-west-1) or set AWS_REGION",
            )
        })
}

/// The stacks of the region, by name.
pub async fn stacks(
    cloud: &moodlestack_aws::AwsCloud,
    region: &str,
) -> anyhow::Result<Vec<StackInfo>> {
    let (tagged, buckets) = cloud.stack_resources(region).await.map_err(|e| {
        anyhow::Error::new(e).context(format!("cannot list the stacks in {region}"))
    })?;
    let mut by_name: BTreeMap<String, StackInfo> = BTreeMap::new();
    for r in &tagged {
        // Only moodlestack's own resources: the stack's tag and a logical id (a resource with the
        // stack's tag alone is somebody else's; the apply lease's parameter has no id either).
        let (Some(name), Some(id)) = (r.tags.get(TAG_STACK), r.tags.get(TAG_ID)) else {
            continue;
        };
        let s = by_name.entry(name.clone()).or_insert_with(|| StackInfo {
            name: name.clone(),
            ..StackInfo::default()
        });
        s.ids.insert(id.clone());
        match r.tags.get(TAG_EXPIRES).and_then(|v| parse_rfc3339(v)) {
            Some(at) => s.expires = s.expires.max(Some(at)),
            None => {
                s.ids_without_expiry.insert(id.clone());
            }
        }
    }
    for s in by_name.values_mut() {
        s.resources = s.ids.len();
        s.without_expiry = s.ids_without_expiry.len();
        // `<stack>-<region>-<12-digit account>-code` (moodlestack_stack::Names::code_bucket).
        let prefix = moodlestack_stack::Names::for_stack(&s.name, region).code_bucket_prefix();
        s.created = buckets
            .iter()
            .filter(|b| {
                b.name
                    .strip_prefix(&prefix)
                    .and_then(|rest| rest.strip_suffix("-code"))
                    .is_some_and(|acct| {
                        acct.len() == 12 && acct.bytes().all(|c| c.is_ascii_digit())
                    })
            })
            .filter_map(|b| b.created)
            .min();
    }
    Ok(by_name.into_values().collect())
}

/// `expires` as shown: `2026-12-04T05:00:00Z (in 2d23h)`, `... (passed 3m10s ago)`, `never`.
pub fn expiry_text(s: &StackInfo, now: u64) -> String {
    let mut text = match s.expires {
        Some(at) if at > now => format!("{} (in {})", rfc3339(at), human_duration(at - now)),
        Some(at) => format!("{} (passed {} ago)", rfc3339(at), human_duration(now - at)),
        None => "never".to_string(),
    };
    if s.expires.is_some() && s.without_expiry > 0 {
        text.push_str(&format!(
            ", but {} resource{} without it",
            s.without_expiry,
            if s.without_expiry == 1 { "" } else { "s" }
        ));
    }
    text
}

pub fn run(g: &Global, region_arg: Option<&str>, json: bool) -> Outcome {
    let region = region(region_arg)?;
    let rt = common::runtime();
    let found = rt.block_on(async {
        let cloud = moodlestack_aws::AwsCloud::from_env(&region).await;
        super::stats::register(cloud.stats());
        stacks(&cloud, &region).await
    })?;
    let now = unix_now();
    if json {
        let items: Vec<serde_json::Value> = found
            .iter()
            .map(|s| {
                serde_json::json!({
                    "name": s.name,
                    "region": region,
                    "resources": s.resources,
                    "created_at": s.created.map(rfc3339),
                    "age_seconds": s.created.map(|c| now.saturating_sub(c)),
                    "expires_at": s.expires.map(rfc3339),
                    "expired": s.expired(now),
                    "resources_without_expiry": s.without_expiry,
                })
            })
            .collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({ "stacks": items })).expect("JSON")
        );
        return Ok(Exit::Ok);
    }
    if found.is_empty() {
        if !g.quiet {
            println!("No stacks in {region}.");
        }
        return Ok(Exit::Ok);
    }
    let rows: Vec<[String; 4]> = found
        .iter()
        .map(|s| {
            [
                s.name.clone(),
                s.created
                    .map_or("-".into(), |c| human_duration(now.saturating_sub(c))),
                s.resources.to_string(),
                expiry_text(s, now),
            ]
        })
        .collect();
    let head = ["STACK", "AGE", "RESOURCES", "EXPIRES"];
    let width = |i: usize| {
        rows.iter()
            .map(|r| r[i].len())
            .chain([head[i].len()])
            .max()
            .unwrap_or(0)
    };
    let (w0, w1, w2) = (width(0), width(1), width(2));
    println!("Stacks in {region}:");
    for r in std::iter::once(head.map(str::to_string)).chain(rows) {
        println!("  {:w0$}  {:w1$}  {:>w2$}  {}", r[0], r[1], r[2], r[3]);
    }
    Ok(Exit::Ok)
}
