//! `moodlestack status` and `moodlestack logs` on an applied stack on the emulator. What only
//! the nodes and the observability resources would make (alarms, the cron heartbeat, log groups
//! and their events) is made here with plain clients, under the names they agree on
//! (`<stack>-*` alarms, `Moodlestack/<stack>` `CronHeartbeat`, `/moodlestack/<stack>/<source>`
//! groups with a stream per instance id).

use crate::e2e::{ms, ms_ok};
use crate::harness::{strs_of, Emulator};
use serde_json::Value as J;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

/// Ids, dates and ages replaced by same-width placeholders (moto's instance ids are random).
fn redact(text: &str) -> String {
    fn trim(w: &str) -> &str {
        w.trim_matches(|c: char| "(),:`".contains(c))
    }
    let hex_id = |t: &str, prefix: &str| {
        t.strip_prefix(prefix)
            .is_some_and(|h| h.len() >= 8 && h.chars().all(|c| c.is_ascii_hexdigit()))
    };
    text.lines()
        .map(|line| {
            let words: Vec<&str> = line.split(' ').collect();
            let mut out = Vec::new();
            for (i, w) in words.iter().enumerate() {
                let core = trim(w);
                let next = |k: usize| words.get(i + k).copied().map(trim);
                let shape = |c: char| if c.is_ascii_digit() { '0' } else { c };
                let replaced = if hex_id(core, "i-") || hex_id(core, "fs-") {
                    let (p, h) = core.split_once('-').unwrap();
                    w.replace(core, &format!("{p}-{}", "x".repeat(h.len())))
                } else if (next(1) == Some("ago")
                    || (next(1) == Some("s") && next(2) == Some("ago")))
                    && core.chars().next().is_some_and(|c| c.is_ascii_digit())
                {
                    w.replace(core, "<age>")
                } else if core.len() >= 8
                    && core.chars().filter(char::is_ascii_digit).count() >= 6
                    && core
                        .chars()
                        .all(|c| c.is_ascii_digit() || "-:.TZ".contains(c))
                {
                    w.chars().map(shape).collect()
                } else {
                    (*w).to_string()
                };
                out.push(replaced);
            }
            out.join(" ")
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_and_logs_read_the_live_stack() {
    let emu = Emulator::start();
    let config = emu.sdk_config().await;
    let cw = aws_sdk_cloudwatch::Client::new(&config);
    let logs = aws_sdk_cloudwatchlogs::Client::new(&config);
    ms_ok(
        &emu,
        &["apply", "stacks/demo.yaml", "--auto-approve", "-q"],
        0,
    );

    // --- status: before any heartbeat or alarm ---
    let before = ms_ok(&emu, &["status", "stacks/demo.yaml"], 0);
    assert!(
        before.contains("Alarms firing: none (of demo-*)"),
        "{before}"
    );
    assert!(
        before.contains("Cron heartbeat: none in the last 24 h"),
        "{before}"
    );

    // An alarm of the stack firing, one of the stack that is OK, one of another stack firing.
    // And one of stack `demo-2`, whose alarm names start with `demo-` too.
    for (name, stack) in [
        ("demo-cron-heartbeat", "demo"),
        ("demo-alb-5xx", "demo"),
        ("other-cron-heartbeat", "other"),
        ("demo-2-cron-heartbeat", "demo-2"),
    ] {
        cw.put_metric_alarm()
            .alarm_name(name)
            .tags(
                aws_sdk_cloudwatch::types::Tag::builder()
                    .key("moodlestack:stack")
                    .value(stack)
                    .build(),
            )
            .namespace("Moodlestack/demo")
            .metric_name("CronHeartbeat")
            .statistic(aws_sdk_cloudwatch::types::Statistic::SampleCount)
            .period(300)
            .evaluation_periods(3)
            .threshold(1.0)
            .comparison_operator(aws_sdk_cloudwatch::types::ComparisonOperator::LessThanThreshold)
            .send()
            .await
            .unwrap();
    }
    for name in [
        "demo-cron-heartbeat",
        "other-cron-heartbeat",
        "demo-2-cron-heartbeat",
    ] {
        cw.set_alarm_state()
            .alarm_name(name)
            .state_value(aws_sdk_cloudwatch::types::StateValue::Alarm)
            .state_reason("Threshold Crossed: no datapoint for 15 minutes")
            .send()
            .await
            .unwrap();
    }
    // What the stable node's cron wrapper puts after a run.
    cw.put_metric_data()
        .namespace("Moodlestack/demo")
        .metric_data(
            aws_sdk_cloudwatch::types::MetricDatum::builder()
                .metric_name("CronHeartbeat")
                .value(1.0)
                .unit(aws_sdk_cloudwatch::types::StandardUnit::Count)
                .build(),
        )
        .send()
        .await
        .unwrap();

    let json: J = serde_json::from_str(&ms_ok(&emu, &["status", "stacks/demo.yaml", "--json"], 0))
        .expect("status --json is JSON");
    let web = json["web"].as_array().unwrap();
    assert_eq!(
        web.len(),
        1,
        "the demo fleet's minimum (web.min: 1): {json:#}"
    );
    for n in web {
        assert!(n["instance_id"].as_str().unwrap().starts_with("i-"));
        assert_eq!(n["state"], "InService");
        assert_eq!(n["health"], "healthy", "moto's targets are healthy: {n}");
        assert_eq!(n["template_version"], n["latest_version"]);
        assert!(["spot", "on-demand"].contains(&n["market"].as_str().unwrap()));
    }
    let stable = json["stable"].as_array().unwrap();
    assert_eq!(stable.len(), 1, "{json:#}");
    assert_eq!(stable[0]["market"], "on-demand");
    assert_eq!(stable[0]["state"], "running");
    assert_eq!(json["database"]["status"], "available");
    assert_eq!(json["cache"]["status"], "available");
    assert_eq!(json["files"]["status"], "available");
    let alarms = strs_of(&json["alarms"], "name");
    assert_eq!(
        alarms,
        ["demo-cron-heartbeat"],
        "only the stack's alarms in ALARM (not demo-2's, whose names share the prefix)"
    );
    let beat = json["last_heartbeat"].as_u64().expect("a heartbeat");
    let read_at = json["read_at"].as_u64().unwrap();
    assert!(
        read_at >= beat && read_at - beat < 180,
        "{beat} vs {read_at}"
    );

    let text = ms_ok(&emu, &["status", "stacks/demo.yaml"], 0);
    insta::assert_snapshot!("status", redact(&text));

    // --- logs ---
    let stable_id = stable[0]["instance_id"].as_str().unwrap().to_string();
    let web_id = web[0]["instance_id"].as_str().unwrap().to_string();
    // A Spot node reclaimed since: its streams outlive it.
    let gone = "i-0feedfacefeedface".to_string();
    let t0 = now_ms() - 10 * 60 * 1000;
    let events: Vec<(&str, &str, i64, &str)> = vec![
        ("boot", &stable_id, 0, "moodlestack: stable node ready"),
        ("apache-access", &web_id, 1_000, "10.0.1.5 - - \"GET /login/index.php HTTP/1.1\" 200 5120"),
        ("php-fpm", &gone, 2_000, "WARNING: [pool moodle] server reached pm.max_children setting (5), consider raising it"),
        ("cron", &stable_id, 3_000, "Cron run completed correctly"),
        ("apache-error", &web_id, 4_000, "[proxy_fcgi:error] AH01071: Got error 'PHP message: PHP Warning: ...'"),
        ("php-fpm-slow", &gone, 5_000, "[pool moodle] pid 4242\nscript_filename = /var/www/moodle/pluginfile.php\n[0x00007f] readfile_accel() /var/www/moodle/lib/filelib.php:2440"),
        ("cron", &stable_id, 9 * 60 * 1000, "Scheduled task complete: Cleanup old sessions"),
    ];
    for (source, stream, offset, message) in &events {
        let group = format!("/moodlestack/demo/{source}");
        let _ = logs.create_log_group().log_group_name(&group).send().await;
        let _ = logs
            .create_log_stream()
            .log_group_name(&group)
            .log_stream_name(*stream)
            .send()
            .await;
        logs.put_log_events()
            .log_group_name(&group)
            .log_stream_name(*stream)
            .log_events(
                aws_sdk_cloudwatchlogs::types::InputLogEvent::builder()
                    .timestamp(t0 + offset)
                    .message(*message)
                    .build()
                    .unwrap(),
            )
            .send()
            .await
            .unwrap();
    }
    let named = |text: &str| {
        text.replace(&stable_id, "<stable>")
            .replace(&web_id, "<web>")
            .lines()
            .map(|l| {
                if l.starts_with(' ') {
                    l.to_string()
                } else {
                    format!("<time>{}", &l[24..])
                }
            })
            .collect::<Vec<_>>()
            .join("\n")
            + "\n"
    };
    let all = ms_ok(&emu, &["logs", "stacks/demo.yaml"], 0);
    insta::assert_snapshot!("logs_all", named(&all));
    let entries: Vec<&str> = all.lines().filter(|l| !l.starts_with(' ')).collect();
    assert_eq!(entries.len(), events.len(), "{all}");
    let times: Vec<&str> = entries.iter().map(|l| &l[..24]).collect();
    assert!(
        times.windows(2).all(|w| w[0] <= w[1]),
        "not in time order:\n{all}"
    );

    let stable_only = ms_ok(&emu, &["logs", "stacks/demo.yaml", "--node", "stable"], 0);
    assert!(
        stable_only.lines().count() == 3 && stable_only.lines().all(|l| l.contains(&stable_id)),
        "{stable_only}"
    );
    let web_only = ms_ok(&emu, &["logs", "stacks/demo.yaml", "--node", "web"], 0);
    assert!(
        !web_only.contains(&stable_id) && web_only.contains(&gone) && web_only.contains(&web_id),
        "{web_only}"
    );
    let one = ms_ok(
        &emu,
        &[
            "logs",
            "stacks/demo.yaml",
            "--node",
            &gone,
            "--source",
            "slow",
        ],
        0,
    );
    insta::assert_snapshot!("logs_gone_node_slow", named(&one));
    let apache = ms_ok(&emu, &["logs", "stacks/demo.yaml", "--source", "apache"], 0);
    assert_eq!(apache.lines().count(), 2, "{apache}");
    assert!(
        apache.contains(" apache-access ") && apache.contains(" apache-error "),
        "{apache}"
    );
    let grep = ms_ok(
        &emu,
        &["logs", "stacks/demo.yaml", "--grep", "max_children"],
        0,
    );
    assert_eq!(grep.lines().count(), 1, "{grep}");
    assert!(grep.contains(" php-fpm ") && grep.contains(&gone), "{grep}");
    let recent = ms_ok(&emu, &["logs", "stacks/demo.yaml", "--since", "3m"], 0);
    assert_eq!(recent.lines().count(), 1, "{recent}");
    assert!(recent.contains("Cleanup old sessions"), "{recent}");
    let (code, out, err) = ms(&emu, &["logs", "stacks/demo.yaml", "--source", "nginx"]);
    assert_eq!((code, out.as_str()), (1, ""), "{err}");
    assert!(
        err.contains("fix: use one of apache, fpm, slow, cron, boot"),
        "{err}"
    );

    // --follow: what is there, then each new event once, as it arrives.
    let mut follow = Command::new(env!("CARGO_BIN_EXE_moodlestack"))
        .args(["logs", "stacks/demo.yaml", "--source", "cron", "--follow"])
        .envs(emu.env())
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let stdout = follow.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            if tx.send(line.unwrap()).is_err() {
                break;
            }
        }
    });
    let next = |what: &str| {
        rx.recv_timeout(Duration::from_secs(20))
            .unwrap_or_else(|_| panic!("--follow did not print {what}"))
    };
    assert!(next("the first cron event").contains("Cron run completed correctly"));
    assert!(next("the second cron event").contains("Cleanup old sessions"));
    logs.put_log_events()
        .log_group_name("/moodlestack/demo/cron")
        .log_stream_name(&stable_id)
        .log_events(
            aws_sdk_cloudwatchlogs::types::InputLogEvent::builder()
                .timestamp(now_ms())
                .message("Cron run completed correctly (after)")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let new = next("the new event");
    assert!(new.contains("(after)") && new.contains(&stable_id), "{new}");
    // Nothing more: no event twice.
    let again = rx.recv_timeout(Duration::from_secs(5));
    follow.kill().unwrap();
    let _ = follow.wait();
    assert!(again.is_err(), "printed again: {again:?}");
}
