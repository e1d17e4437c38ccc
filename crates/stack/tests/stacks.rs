//! The stacks shipped in `stacks/` validate, and the committed schema is current.

use moodlestack_stack::{load, LoadOptions, Loaded};
use std::path::PathBuf;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `stacks/<file>`, checked to load without warnings and to suit an x86_64 image.
fn load_shipped(file: &str) -> Loaded {
    let loaded = load(&repo().join("stacks").join(file), &LoadOptions::default())
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        loaded.warnings.is_empty(),
        "{}",
        loaded.warnings_report(false)
    );
    moodlestack_stack::check_image_architecture(&loaded, "x86_64").unwrap();
    loaded
}

#[test]
fn demo_validates() {
    let loaded = load_shipped("demo.yaml");
    assert_eq!(loaded.stack.name, "demo");
    assert_eq!(loaded.stack.region, "eu-west-1");
    assert!(!loaded.stack.https());
    assert!(!loaded.stack.database.multi_az);
    assert!(!loaded.stack.database.deletion_protection);
    assert_eq!(loaded.stack.ami.id.as_deref(), Some("ami-785db401"));
    assert_eq!((loaded.stack.web.min, loaded.stack.web.max), (1, 2));
}

#[test]
fn production_validates() {
    let loaded = load_shipped("production.yaml");
    let s = &loaded.stack;
    assert!(s.https());
    assert!(s.database.multi_az);
    assert_eq!(s.load_balancer.deregistration_delay, 120);
    assert_eq!(s.web.on_demand_base, 1);
    assert!(s.web.instance_types.len() >= 3);
    assert_eq!(
        s.network.nat_gateways,
        moodlestack_stack::NatGateways::PerZone
    );
    assert!(s.network.admin_cidrs.is_empty());
}

#[test]
fn stacks_point_at_the_schema() {
    for f in ["demo.yaml", "production.yaml"] {
        let text = std::fs::read_to_string(repo().join("stacks").join(f)).unwrap();
        assert!(
            text.starts_with("# yaml-language-server: $schema=./moodlestack.schema.json\n"),
            "{f} must start with the yaml-language-server schema comment"
        );
    }
}

/// `stacks/moodlestack.schema.json` must equal the schema generated from the model. Regenerate
/// with `UPDATE_SCHEMA=1 cargo test -p moodlestack-stack --test stacks` or
/// `moodlestack schema > stacks/moodlestack.schema.json`.
#[test]
fn committed_schema_is_current() {
    let path = repo().join("stacks/moodlestack.schema.json");
    let generated = moodlestack_stack::json_schema_text();
    if std::env::var_os("UPDATE_SCHEMA").is_some() {
        std::fs::write(&path, &generated).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "stacks/moodlestack.schema.json is stale: regenerate it with \
         `UPDATE_SCHEMA=1 cargo test -p moodlestack-stack --test stacks` \
         (or `moodlestack schema > stacks/moodlestack.schema.json`) and commit it"
    );
}
