//! `moodlestack logs`: the nodes' logs from the stack's CloudWatch Logs groups, without the
//! console: one line per event, oldest first, with its time, node and source; `--follow` keeps
//! reading every two seconds. moodlestack_aws reads them ([`AwsCloud::log_events`]); this picks
//! the groups and streams and prints.
//!
//! [`AwsCloud::log_events`]: moodlestack_aws::AwsCloud::log_events

use super::common::{self, fail, Exit, Outcome};
use super::status::STABLE;
use crate::Global;
use moodlestack_aws::logs::{Cursor, LogEvent, LogQuery, Streams};
use moodlestack_model::cloud::{rfc3339, unix_now};
use moodlestack_stack::names::{Names, LOG_SOURCES};
use std::io::Write;
use std::path::Path;
use std::time::Duration;

/// `--source` values and the sources (log groups) each reads.
pub const SOURCES: &[(&str, &[&str])] = &[
    ("apache", &["apache-access", "apache-error"]),
    ("fpm", &["php-fpm"]),
    ("slow", &["php-fpm-slow"]),
    ("cron", &["cron"]),
    ("boot", &["boot"]),
    ("upgrade", &["install-upgrade"]),
];

/// How often `--follow` reads.
const FOLLOW_EVERY: Duration = Duration::from_secs(2);

pub struct Options {
    pub node: Option<String>,
    pub source: Option<String>,
    pub since: String,
    pub follow: bool,
    pub grep: Option<String>,
}

/// The (source, group) pairs `--source` asks for (every source without it).
pub fn groups(names: &Names, source: Option<&str>) -> anyhow::Result<Vec<(String, String)>> {
    let sources: Vec<&str> = match source {
        None => LOG_SOURCES.to_vec(),
        Some(s) => SOURCES
            .iter()
            .find(|(name, _)| *name == s)
            .map(|(_, sources)| sources.to_vec())
            .ok_or_else(|| {
                fail(
                    format!("--source `{s}` is not a log source"),
                    format!(
                        "use one of {} (or leave --source out for all)",
                        SOURCES
                            .iter()
                            .map(|(n, _)| *n)
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                )
            })?,
    };
    Ok(sources
        .into_iter()
        .map(|s| (s.to_string(), names.log_group(s)))
        .collect())
}

fn is_instance_id(s: &str) -> bool {
    s.strip_prefix("i-").is_some_and(|hex| {
        (8..=17).contains(&hex.len()) && hex.chars().all(|c| c.is_ascii_hexdigit())
    })
}

/// The streams `--node` asks for, given the stable node's instance ids.
pub fn streams(node: Option<&str>, stable: &[String]) -> anyhow::Result<Streams> {
    Ok(match node {
        None => Streams::All,
        Some("stable") => Streams::Only(stable.to_vec()),
        Some("web") => Streams::Except(stable.to_vec()),
        Some(id) if is_instance_id(id) => Streams::Only(vec![id.to_string()]),
        Some(other) => {
            return Err(fail(
                format!("--node `{other}` is neither an instance id, `stable` nor `web`"),
                "give an instance id (`i-0123456789abcdef0`, see `moodlestack status`), `stable` \
                 or `web`",
            ))
        }
    })
}

/// One event's line: UTC time with milliseconds, the node (its instance id, and `stable` for
/// the stable node), the source, the message.
pub fn line(e: &LogEvent, stable: &[String]) -> String {
    let secs = u64::try_from(e.time_ms.div_euclid(1000)).unwrap_or(0);
    let time = rfc3339(secs);
    let time = format!(
        "{}.{:03}Z",
        time.trim_end_matches('Z'),
        e.time_ms.rem_euclid(1000)
    );
    let role = if stable.contains(&e.node) {
        "stable"
    } else {
        "web"
    };
    // An entry of several lines (a slow request's stack trace): the lines after its first
    // indented, so every line that starts with a time starts an event.
    let message = e.message.replace('\n', "\n    ");
    format!("{time} {} {role:<6} {:<13} {message}", e.node, e.source)
}

pub fn run(g: &Global, path: &Path, o: Options) -> Outcome {
    let stack = common::load_stack(g, path)?;
    let names = Names::of(&stack);
    let groups = groups(&names, o.source.as_deref())?;
    // Checked before any request.
    streams(o.node.as_deref(), &[])?;
    let since = super::expiry::parse_duration("--since", &o.since)?;
    if o.grep.as_deref().is_some_and(str::is_empty) {
        return Err(fail("--grep is empty", "give a term, or leave --grep out"));
    }
    let rt = common::runtime();
    rt.block_on(async {
        let cloud = common::cloud(&stack).await;
        let stable = cloud
            .instance_ids(&stack.name, STABLE, &[])
            .await
            .map_err(|e| anyhow::Error::new(e).context("cannot find the stack's stable node"))?;
        let q = LogQuery {
            groups,
            streams: streams(o.node.as_deref(), &stable)?,
            pattern: o.grep.clone(),
        };
        if matches!(&q.streams, Streams::Only(ids) if ids.is_empty()) {
            return Err(fail(
                format!(
                    "stack `{}` has no stable node in {}",
                    stack.name, stack.region
                ),
                "give the instance id of a former one (--node i-...): its logs outlive it",
            ));
        }
        let start = (unix_now().saturating_sub(since) * 1000) as i64;
        let mut cursor = Cursor::new(start);
        let mut printed = 0usize;
        loop {
            let read = cloud
                .log_events(&q, &mut cursor)
                .await
                .map_err(|e| anyhow::Error::new(e).context("cannot read the stack's logs"))?;
            let mut out = std::io::stdout().lock();
            for e in &read.events {
                let _ = writeln!(out, "{}", line(e, &stable));
            }
            let _ = out.flush();
            drop(out);
            printed += read.events.len();
            if !o.follow {
                if !g.quiet && !read.missing.is_empty() {
                    eprintln!(
                        "note: no log group {} (the stack's logs are set up by `apply`)",
                        read.missing.join(", ")
                    );
                }
                if !g.quiet && printed == 0 {
                    eprintln!(
                        "No log events in the last {} of stack `{}`.",
                        o.since, stack.name
                    );
                }
                return Ok(Exit::Ok);
            }
            tokio::select! {
                () = tokio::time::sleep(FOLLOW_EVERY) => {}
                _ = tokio::signal::ctrl_c() => return Ok(Exit::Ok),
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_name_the_agreed_groups() {
        let n = Names::for_stack("demo", "eu-west-1");
        let g = groups(&n, Some("apache")).unwrap();
        assert_eq!(
            g,
            [
                (
                    "apache-access".into(),
                    "/moodlestack/demo/apache-access".into()
                ),
                (
                    "apache-error".into(),
                    "/moodlestack/demo/apache-error".into()
                )
            ]
        );
        assert_eq!(groups(&n, None).unwrap().len(), LOG_SOURCES.len());
        assert_eq!(
            groups(&n, Some("slow")).unwrap()[0].1,
            "/moodlestack/demo/php-fpm-slow"
        );
        let e = groups(&n, Some("nginx")).unwrap_err().to_string();
        assert!(e.contains("nginx"), "{e}");
        // Every source of the nodes is reachable through one --source value.
        for s in LOG_SOURCES {
            assert!(SOURCES.iter().any(|(_, v)| v.contains(s)), "{s}");
        }
    }

    #[test]
    fn nodes_are_ids_stable_or_web() {
        let stable = vec!["i-0aaaaaaaaaaaaaaaa".to_string()];
        assert_eq!(
            streams(Some("stable"), &stable).unwrap(),
            Streams::Only(stable.clone())
        );
        assert_eq!(
            streams(Some("web"), &stable).unwrap(),
            Streams::Except(stable.clone())
        );
        assert_eq!(
            streams(Some("i-0123abcd"), &stable).unwrap(),
            Streams::Only(vec!["i-0123abcd".into()])
        );
        assert!(streams(Some("web-1"), &stable).is_err());
        assert_eq!(streams(None, &stable).unwrap(), Streams::All);
    }
}
