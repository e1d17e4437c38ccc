//! `moodlestack logs`: the nodes' logs from the stack's CloudWatch Logs groups
//! (`/moodlestack/<stack>/<source>`, one log stream per instance, named by its id), read with
//! `FilterLogEvents` on every group asked for at once, merged in time order. A [`Cursor`] makes
//! `--follow` a loop of such reads: each asks from the last event's time on and drops the events
//! it has already returned (AWS's start time is inclusive).

use crate::fields::{api_err, is_not_found};
use crate::AwsCloud;
use moodlestack_model::CloudError;
use serde::Serialize;
use std::collections::BTreeSet;

/// Which nodes' streams to read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Streams {
    /// Every stream of the groups.
    All,
    /// Only these streams (instance ids).
    Only(Vec<String>),
    /// Every stream but these (the web fleet: every node but the stable one, including Spot nodes
    /// that are gone, whose logs are the point of shipping them).
    Except(Vec<String>),
}

/// What to read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogQuery {
    /// (source, log group name), e.g. (`apache-error`, `/moodlestack/demo/apache-error`).
    pub groups: Vec<(String, String)>,
    pub streams: Streams,
    /// A CloudWatch Logs filter pattern (`--grep`).
    pub pattern: Option<String>,
}

/// One log event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LogEvent {
    /// Milliseconds since the Unix epoch (the event's own time).
    pub time_ms: i64,
    /// The log stream: the instance id of the node that wrote it.
    pub node: String,
    /// The source (`apache-error`, `cron`, ...).
    pub source: String,
    pub message: String,
    #[serde(skip)]
    event_id: String,
}

/// Where a read starts: the time of the newest event returned so far, and the events returned
/// at that time.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Cursor {
    pub since_ms: i64,
    seen: BTreeSet<(String, String)>,
}

impl Cursor {
    pub fn new(since_ms: i64) -> Self {
        Cursor {
            since_ms,
            seen: BTreeSet::new(),
        }
    }

    /// Keeps the events not returned before, sorted by time (then source and node), and moves
    /// the cursor past them.
    fn advance(&mut self, mut events: Vec<LogEvent>) -> Vec<LogEvent> {
        events.retain(|e| {
            e.time_ms >= self.since_ms
                && !self.seen.contains(&(e.source.clone(), e.event_id.clone()))
        });
        events.sort_by(|a, b| {
            (a.time_ms, &a.source, &a.node, &a.event_id).cmp(&(
                b.time_ms,
                &b.source,
                &b.node,
                &b.event_id,
            ))
        });
        if let Some(last) = events.last().map(|e| e.time_ms) {
            if last > self.since_ms {
                self.seen.clear();
                self.since_ms = last;
            }
            self.seen.extend(
                events
                    .iter()
                    .filter(|e| e.time_ms == last)
                    .map(|e| (e.source.clone(), e.event_id.clone())),
            );
        }
        events
    }
}

/// What one read found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LogRead {
    /// The new events, oldest first.
    pub events: Vec<LogEvent>,
    /// The groups that do not exist (the stack's logs are not set up, or not yet).
    pub missing: Vec<String>,
}

impl AwsCloud {
    /// The events of `q` from `cursor` on, every group read at once (each through all its
    /// pages); moves the cursor past them.
    pub async fn log_events(
        &self,
        q: &LogQuery,
        cursor: &mut Cursor,
    ) -> Result<LogRead, CloudError> {
        let c = &self.clients().logs;
        let start = cursor.since_ms;
        let reads = q.groups.iter().map(|(source, group)| async move {
            let mut req = c
                .filter_log_events()
                .log_group_name(group)
                .start_time(start)
                .set_filter_pattern(q.pattern.clone());
            if let Streams::Only(ids) = &q.streams {
                req = req.set_log_stream_names(Some(ids.clone()));
            }
            let pages = req
                .into_paginator()
                .send()
                .collect::<Result<Vec<_>, _>>()
                .await
                .map_err(|e| api_err("logs:FilterLogEvents", e));
            let pages = match pages {
                Ok(p) => p,
                Err(e) if is_not_found(&e) => return Ok((Some(group.clone()), Vec::new())),
                Err(e) => return Err(e),
            };
            let events = pages
                .iter()
                .flat_map(|p| p.events())
                .filter_map(|e| {
                    let node = e.log_stream_name()?.to_string();
                    if let Streams::Except(ids) = &q.streams {
                        if ids.contains(&node) {
                            return None;
                        }
                    }
                    Some(LogEvent {
                        time_ms: e.timestamp()?,
                        node,
                        source: source.clone(),
                        message: e.message().unwrap_or_default().trim_end().to_string(),
                        event_id: e.event_id().unwrap_or_default().to_string(),
                    })
                })
                .collect::<Vec<_>>();
            Ok::<_, CloudError>((None, events))
        });
        let mut read = LogRead::default();
        let mut all = Vec::new();
        for (missing, events) in futures::future::try_join_all(reads).await? {
            read.missing.extend(missing);
            all.extend(events);
        }
        read.events = cursor.advance(all);
        Ok(read)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(t: i64, id: &str) -> LogEvent {
        LogEvent {
            time_ms: t,
            node: "i-1".into(),
            source: "cron".into(),
            message: id.into(),
            event_id: id.into(),
        }
    }

    #[test]
    fn the_cursor_returns_each_event_once_in_time_order() {
        let mut c = Cursor::new(100);
        let first = c.advance(vec![
            ev(300, "c"),
            ev(100, "a"),
            ev(300, "b"),
            ev(50, "old"),
        ]);
        let ids: Vec<&str> = first.iter().map(|e| e.event_id.as_str()).collect();
        assert_eq!(ids, ["a", "b", "c"]);
        assert_eq!(c.since_ms, 300);
        // The next read starts at 300 (inclusive): b and c come again and are dropped; d at the
        // same millisecond is new.
        let next = c.advance(vec![ev(300, "b"), ev(300, "c"), ev(300, "d"), ev(400, "e")]);
        let ids: Vec<&str> = next.iter().map(|e| e.event_id.as_str()).collect();
        assert_eq!(ids, ["d", "e"]);
        assert!(c.advance(vec![ev(400, "e")]).is_empty());
    }
}
