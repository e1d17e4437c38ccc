//! `plan --cost` on the emulator: the estimate of the demo and production stacks from the
//! emulator's Price List and Spot price history (the sample in localstack/price-list.json), as
//! text (snapshots of the estimate), Markdown and JSON, before and after an apply, and the delta
//! of a change (a bigger database class).

use crate::e2e::{ms_ok, AMI};
use crate::harness::Emulator;
use serde_json::Value as J;

/// The estimate section of a text plan, the Spot history's window (it moves with the clock)
/// replaced by `[window]`.
fn estimate_section(out: &str) -> String {
    let start = out
        .find("Estimated monthly cost")
        .unwrap_or_else(|| panic!("no estimate in:\n{out}"));
    let mut text = out[start..].to_string();
    while let Some(from) = text.find("Spot price history from ") {
        let rest = from + "Spot price history from ".len();
        let end = text[rest..].find(" (").map_or(text.len(), |e| rest + e);
        text.replace_range(from..end, "Spot price history [window]");
    }
    text
}

/// `plan --cost --json`'s estimate.
fn estimate_json(emu: &Emulator, args: &[&str], exit: i32) -> J {
    let mut full = vec!["plan", "--cost", "--json"];
    full.extend_from_slice(args);
    let out = ms_ok(emu, &full, exit);
    let plan: J = serde_json::from_str(&out).unwrap_or_else(|e| panic!("plan JSON: {e}\n{out}"));
    plan["cost"].clone()
}

/// The line of `id`'s `usage`.
fn line<'a>(cost: &'a J, id: &str, usage: &str) -> &'a J {
    cost["lines"]
        .as_array()
        .expect("lines")
        .iter()
        .find(|l| l["id"] == id && l["usage"] == usage)
        .unwrap_or_else(|| panic!("no line {id} {usage} in {cost:#}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_cost_of_the_demo_stack_before_and_after_apply_and_of_a_change() {
    let emu = Emulator::start();
    let base = ["stacks/demo.yaml", "--name", "cost-demo"];
    let mut args = vec!["plan", "--cost"];
    args.extend(base);
    let text = ms_ok(&emu, &args, 0);
    insta::assert_snapshot!("demo_plan_cost", estimate_section(&text));

    // JSON: every figure, the totals of a stack that does not exist yet.
    let cost = estimate_json(&emu, &base, 0);
    assert_eq!(cost["currency"], "USD");
    assert_eq!(cost["hours_per_month"], 730.0);
    assert_eq!(cost["current_monthly"], 0.0);
    assert_eq!(cost["change_monthly"], cost["desired_monthly"]);
    assert_eq!(cost["unknown_prices"], 0);
    let db = line(&cost, "db.instance", "instance");
    assert_eq!(db["desired"]["item"], "db.t4g.micro MySQL, Single-AZ");
    assert_eq!(db["desired"]["unit_price"], 0.018);
    assert_eq!(db["desired"]["monthly"], 13.14);
    assert_eq!(db["current"], J::Null);
    let prices: Vec<&str> = cost["prices"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(J::as_str)
        .collect();
    assert!(
        prices.contains(&"AWS Price List published 2026-11-20T00:00:00Z"),
        "{prices:?}"
    );
    assert!(prices.iter().any(|p| p.starts_with("Spot: ")), "{prices:?}");
    // Markdown carries it too.
    let mut md = vec!["plan", "--cost", "--format", "markdown"];
    md.extend(base);
    let md = ms_ok(&emu, &md, 0);
    assert!(
        md.contains(
            "#### Estimated monthly cost\n\n**$172.46 a month** as desired, $0.00 as it exists now: \
             **change +$172.46 a month** (USD, 730 hours a month;"
        ),
        "{md}"
    );
    assert!(
        md.contains("| `db.instance` | db.t4g.micro MySQL, Single-AZ | 730 h x $0.018/h = $13.14 | - | +$13.14 |"),
        "{md}"
    );

    // Applied: what exists costs what the stack wants; no change.
    let mut apply = vec!["apply", "--auto-approve", "-q"];
    apply.extend(base);
    ms_ok(&emu, &apply, 0);
    let cost = estimate_json(&emu, &base, 0);
    assert_eq!(cost["current_monthly"], cost["desired_monthly"], "{cost:#}");
    assert_eq!(cost["change_monthly"], 0.0);

    // A bigger database class: a positive delta of exactly the class's difference.
    let mut bigger = base.to_vec();
    bigger.extend(["--set", "database.instance_class=db.t4g.small"]);
    let cost = estimate_json(&emu, &bigger, 0);
    let db = line(&cost, "db.instance", "instance");
    assert_eq!(db["desired"]["monthly"], 26.28); // 730 h x $0.036
    assert_eq!(db["current"]["monthly"], 13.14); // 730 h x $0.018
    assert_eq!(db["change"], 13.14);
    assert_eq!(cost["change_monthly"], 13.14);
    let mut text_args = vec!["plan", "--cost"];
    text_args.extend(&bigger);
    let text = ms_ok(&emu, &text_args, 0);
    let section = estimate_section(&text);
    assert!(
        section.contains("  db.instance        +$13.14  db.t4g.small MySQL, Single-AZ: 730 h x $0.036/h = $26.28\n"),
        "{section}"
    );
    assert!(
        section.contains("now: db.t4g.micro MySQL, Single-AZ: 730 h x $0.018/h = $13.14"),
        "{section}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_cost_of_the_production_stack() {
    let emu = Emulator::start();
    let cert = emu.import_certificate();
    let ami = format!("ami.id={AMI}");
    let cert = format!("load_balancer.certificate_arn={cert}");
    let args = [
        "plan",
        "--cost",
        "stacks/production.yaml",
        "--set",
        &ami,
        "--set",
        &cert,
    ];
    let text = ms_ok(&emu, &args, 0);
    insta::assert_snapshot!("production_plan_cost", estimate_section(&text));
    let cost = estimate_json(&emu, &args[2..], 0);
    // The fleet at its minimum of 2: the On-Demand base of 1 on the first type, 1 on Spot.
    let od = line(&cost, "web.asg", "on-demand");
    assert_eq!(
        od["desired"]["item"],
        "1 x m6i.large On-Demand, Linux (of the fleet at its minimum size, 2)"
    );
    assert_eq!(od["desired"]["monthly"], 78.11); // 730 h x $0.107
    let spot = line(&cost, "web.asg", "spot");
    assert_eq!(spot["desired"]["quantity"], 730.0);
    // Multi-AZ is its own price; storage by the GB-month of its deployment.
    let db = line(&cost, "db.instance", "instance");
    assert_eq!(db["desired"]["item"], "db.r7g.large MySQL, Multi-AZ");
    assert_eq!(db["desired"]["monthly"], 386.9); // 730 h x $0.53
    let storage = line(&cost, "db.instance", "storage");
    assert_eq!(storage["desired"]["monthly"], 50.8); // 200 GB x $0.254
                                                     // A NAT gateway per zone, the cache's two nodes, the AUTH token's secret.
    assert_eq!(
        line(&cost, "net.nat.a", "gateway")["desired"]["monthly"],
        35.04
    );
    assert_eq!(
        line(&cost, "net.nat.b", "gateway")["desired"]["monthly"],
        35.04
    );
    assert_eq!(
        line(&cost, "cache.redis", "nodes")["desired"]["monthly"],
        354.78
    ); // 2 x 730 h x $0.243
    assert_eq!(
        line(&cost, "cache.auth", "secret")["desired"]["monthly"],
        0.4
    );
    assert_eq!(cost["unknown_prices"], 0);
}
