//! Snapshots of the full report for broken stacks (plain text, as `moodlestack validate` prints
//! it with `--color never`).

use moodlestack_stack::{load, load_str, LoadOptions};
use std::path::Path;

/// The report for `path` (relative to the repository root, which is how it is shown).
fn report(path: &str, options: &LoadOptions) -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let text = std::fs::read_to_string(root.join(path)).unwrap();
    match load_str(path, &text, options) {
        Ok(_) => panic!("{path} should not validate"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn typos_report() {
    insta::assert_snapshot!(report(
        "crates/stack/tests/data/typos.yaml",
        &LoadOptions::default()
    ));
}

#[test]
fn network_report() {
    insta::assert_snapshot!(report(
        "crates/stack/tests/data/network.yaml",
        &LoadOptions::default()
    ));
}

#[test]
fn fleet_report() {
    insta::assert_snapshot!(report(
        "crates/stack/tests/data/fleet.yaml",
        &LoadOptions::default()
    ));
}

#[test]
fn overrides_report() {
    let options = LoadOptions {
        name: Some("Feature_42".into()),
        set: vec![
            "web.maxx=3".into(),
            "web.min=-1".into(),
            "web.instance_types=[m6i.large, c6i.large, m7g.large]".into(),
            "load_balancer.deregistration_delay=[1".into(),
        ],
    };
    insta::assert_snapshot!(report("stacks/demo.yaml", &options));
}

#[test]
fn missing_file_report() {
    let e = load(
        Path::new("stacks/does-not-exist.yaml"),
        &LoadOptions::default(),
    )
    .unwrap_err();
    insta::assert_snapshot!(e.to_string());
}
