//! `moodlestack status`: the live state of the stack on one screen (or as JSON): each web node
//! and the stable node, any instance refresh, the database, Redis and the file system, the
//! alarms firing and the last cron heartbeat. moodlestack_aws reads it ([`AwsCloud::status`]);
//! this only renders.
//!
//! [`AwsCloud::status`]: moodlestack_aws::AwsCloud::status

use super::common::{self, Exit, Outcome};
use crate::Global;
use moodlestack_aws::status::{Node, Service, Status, HEARTBEAT_WINDOW_SECS};
use moodlestack_model::cloud::utc_date;
use std::path::Path;

/// The logical id of the stable instance (its `moodlestack:id` tag).
pub const STABLE: &str = moodlestack_graph::ids::STABLE_INSTANCE;

/// `3m12s ago`, `45 s ago`.
pub fn ago(now: u64, then: u64) -> String {
    let d = now.saturating_sub(then);
    match d {
        0..=59 => format!("{d} s ago"),
        60..=3599 => format!("{}m{:02}s ago", d / 60, d % 60),
        3600..=86_399 => format!("{}h{:02}m ago", d / 3600, (d % 3600) / 60),
        _ => format!("{}d{:02}h ago", d / 86_400, (d % 86_400) / 3600),
    }
}

fn version(n: &Node) -> String {
    match (n.template_version.as_str(), n.latest_version.as_str()) {
        ("", _) => "?".into(),
        (v, l) if v == l || l.is_empty() => format!("v{v} (latest)"),
        (v, l) => format!("v{v} (latest is v{l}: replaced by a refresh)"),
    }
}

/// A column of a node table: its heading and how a node fills it.
type Column = (&'static str, fn(&Node) -> String);
fn nodes_table(out: &mut String, nodes: &[Node], health: bool) {
    let w = |f: fn(&Node) -> String, head: &str| {
        nodes
            .iter()
            .map(|n| f(n).len())
            .chain([head.len()])
            .max()
            .unwrap_or(0)
    };
    let cols: Vec<Column> = {
        let mut c: Vec<Column> = vec![
            ("INSTANCE", |n| n.instance_id.clone()),
            ("TYPE", |n| n.instance_type.clone()),
            ("ZONE", |n| n.zone.clone()),
            ("MARKET", |n| n.market.clone()),
            ("STATE", |n| n.state.clone()),
        ];
        if health {
            c.push(("TARGET", |n| n.health.clone()));
        }
        c.push(("TEMPLATE", version));
        c
    };
    let widths: Vec<usize> = cols.iter().map(|(h, f)| w(*f, h)).collect();
    let line = |cells: Vec<String>| {
        let mut l = String::from("   ");
        for (i, c) in cells.iter().enumerate() {
            l.push(' ');
            if i + 1 == cells.len() {
                l.push_str(c);
            } else {
                l.push_str(&format!("{c:<w$}", w = widths[i]));
            }
        }
        l.trim_end().to_string() + "\n"
    };
    out.push_str(&line(cols.iter().map(|(h, _)| h.to_string()).collect()));
    for n in nodes {
        out.push_str(&line(cols.iter().map(|(_, f)| f(n)).collect()));
        if health && !n.health_reason.is_empty() && n.health != "healthy" {
            out.push_str(&format!("      {}: {}\n", n.instance_id, n.health_reason));
        }
    }
}

fn service(out: &mut String, label: &str, s: &Service) {
    if s.status == "absent" {
        out.push_str(&format!("{label:<9} {}: absent (not created yet)\n", s.id));
    } else {
        out.push_str(&format!(
            "{label:<9} {}: {} ({})\n",
            s.id, s.status, s.detail
        ));
    }
}

/// The screen.
pub fn text(s: &Status, path: &Path) -> String {
    let mut out = format!(
        "Stack `{}` in {}, {}\n\n",
        s.stack,
        s.region,
        utc_date(s.read_at)
    );
    match &s.fleet {
        None => out.push_str("Web fleet: none (not created yet)\n"),
        Some(f) => {
            out.push_str(&format!(
                "Web fleet {}: {} node{} (min {}, max {}, desired {})\n",
                f.name,
                s.web.len(),
                if s.web.len() == 1 { "" } else { "s" },
                f.min,
                f.max,
                f.desired
            ));
            if !s.web.is_empty() {
                nodes_table(&mut out, &s.web, true);
            }
        }
    }
    match s.refreshes.first() {
        Some(r) if !matches!(r.status.as_str(), "Successful" | "Cancelled" | "Failed") => {
            out.push_str(&format!(
                "  instance refresh {}: {}, {}% done{}, started {}\n",
                r.id,
                r.status,
                r.percent_complete.unwrap_or(0),
                r.instances_to_update
                    .map(|n| format!(", {n} to update"))
                    .unwrap_or_default(),
                ago(s.read_at, r.started_at)
            ));
        }
        Some(r) => out.push_str(&format!(
            "  last instance refresh {}: {}{}, started {}\n",
            r.id,
            r.status,
            if r.reason.is_empty() {
                String::new()
            } else {
                format!(" ({})", r.reason)
            },
            ago(s.read_at, r.started_at)
        )),
        None => out.push_str("  no instance refresh\n"),
    }
    if s.stable.is_empty() {
        out.push_str("Stable node: none running\n");
    } else {
        out.push_str("Stable node:\n");
        nodes_table(&mut out, &s.stable, false);
    }
    out.push('\n');
    service(&mut out, "Database", &s.database);
    service(&mut out, "Redis", &s.cache);
    service(&mut out, "Files", &s.files);
    out.push('\n');
    if s.alarms.is_empty() {
        out.push_str(&format!("Alarms firing: none (of {}-*)\n", s.stack));
    } else {
        out.push_str(&format!("Alarms firing: {}\n", s.alarms.len()));
        for a in &s.alarms {
            out.push_str(&format!(
                "  {} since {}: {}\n",
                a.name,
                ago(s.read_at, a.since),
                a.reason
            ));
        }
    }
    match s.last_heartbeat {
        Some(t) => out.push_str(&format!(
            "Cron heartbeat: {} ({})\n",
            utc_date(t),
            ago(s.read_at, t)
        )),
        None => out.push_str(&format!(
            "Cron heartbeat: none in the last {} h (cron is not running on the stable node, or \
             failing: `moodlestack logs {} --source cron`)\n",
            HEARTBEAT_WINDOW_SECS / 3600,
            path.display()
        )),
    }
    out
}

pub fn run(g: &Global, path: &Path, json: bool) -> Outcome {
    let stack = common::load_stack(g, path)?;
    let rt = common::runtime();
    rt.block_on(async {
        let cloud = common::cloud(&stack).await;
        let status = cloud
            .status(&stack, STABLE)
            .await
            .map_err(|e| anyhow::Error::new(e).context("cannot read the stack's status"))?;
        if json {
            println!(
                "{}",
                serde_json::to_string_pretty(&status).expect("the status serializes")
            );
        } else {
            print!("{}", text(&status, path));
        }
        Ok(Exit::Ok)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_read_at_a_glance() {
        assert_eq!(ago(100, 100), "0 s ago");
        assert_eq!(ago(200, 100), "1m40s ago");
        assert_eq!(ago(100 + 7200 + 180, 100), "2h03m ago");
        assert_eq!(ago(100 + 2 * 86_400 + 3600, 100), "2d01h ago");
    }
}
