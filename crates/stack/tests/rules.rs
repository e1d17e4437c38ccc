//! Every validation rule: its message and its `line:column` (or `--set` argument).

use moodlestack_stack::{
    check_image_architecture, load_str, Diagnostic, LoadOptions, Severity, SourceKind,
};

/// A valid stack with every section written out, so edits keep the line numbers.
const BASE: &str = "\
name: demo
region: eu-west-1
network:
  cidr: 10.0.0.0/16
  zones: [eu-west-1a, eu-west-1b]
ami:
  id: ami-785db401
database:
  engine: mysql
  version: \"8.0\"
  backup_retention_days: 7
  storage_gb: 50
cache:
  replicas: 1
  automatic_failover: true
web:
  instance_types: [m6i.large, c6i.xlarge, t3.large]
  min: 1
  max: 4
load_balancer:
  deregistration_delay: 120
moodle:
  wwwroot: http://moodle.example.org
  admin_email: admin@example.org
";

/// BASE with `line` (1-based) replaced by `text` (which may hold several lines).
fn with(line: usize, text: &str) -> String {
    let mut lines: Vec<String> = BASE.lines().map(str::to_string).collect();
    lines[line - 1] = text.to_string();
    lines.join("\n") + "\n"
}

fn diagnostics(yaml: &str, options: &LoadOptions) -> (Vec<Diagnostic>, moodlestack_stack::Sources) {
    match load_str("test.yaml", yaml, options) {
        Ok(l) => (l.warnings, l.sources),
        Err(e) => (e.diagnostics, e.sources),
    }
}

/// Asserts a problem with exactly `message` at `line:column` of the file, and returns its fix.
#[track_caller]
fn assert_at(yaml: &str, severity: Severity, message: &str, line: usize, column: usize) -> String {
    let (diags, sources) = diagnostics(yaml, &LoadOptions::default());
    let found = diags.iter().find(|d| d.message == message);
    let Some(d) = found else {
        panic!(
            "no problem `{message}`; got:\n{}",
            diags
                .iter()
                .map(|d| format!("  {} @ {:?}", d.message, d.span))
                .collect::<Vec<_>>()
                .join("\n")
        )
    };
    assert_eq!(d.severity, severity, "{message}");
    assert_eq!(
        d.location(&sources),
        format!("test.yaml:{line}:{column}"),
        "{message}"
    );
    assert!(!d.fix.is_empty(), "{message}: no fix");
    d.fix.clone()
}

#[track_caller]
fn error_at(yaml: &str, message: &str, line: usize, column: usize) -> String {
    assert_at(yaml, Severity::Error, message, line, column)
}

#[test]
fn base_is_valid() {
    let (diags, _) = diagnostics(BASE, &LoadOptions::default());
    assert!(diags.is_empty(), "{diags:?}");
}

// ---- structure ----

#[test]
fn unknown_key_suggests_the_closest() {
    let y = with(18, "  mni: 1");
    let fix = error_at(&y, "unknown key `mni` in `web`", 18, 3);
    assert_eq!(fix, "did you mean `min`?");
    let y = with(1, "nmae: demo\nname: demo");
    assert_eq!(
        error_at(&y, "unknown key `nmae` at the top level", 1, 1),
        "did you mean `name`?"
    );
}

#[test]
fn wrong_types() {
    let y = with(19, "  max: many");
    let fix = error_at(&y, "`web.max` must be a whole number, found `many`", 19, 8);
    assert_eq!(fix, "write a whole number, e.g. `max: 2`");
    let y = with(19, "  max: \"4\"");
    assert_eq!(
        error_at(
            &y,
            "`web.max` must be a whole number, found the string \"4\"",
            19,
            8
        ),
        "remove the quotes: `max: 4`"
    );
    let y = with(15, "  automatic_failover: yes");
    assert_eq!(
        error_at(
            &y,
            "`cache.automatic_failover` must be true or false, found `yes`",
            15,
            23
        ),
        "write `automatic_failover: true`"
    );
    let y = with(17, "  instance_types: m6i.large");
    error_at(
        &y,
        "`web.instance_types` must be a list, found `m6i.large`",
        17,
        19,
    );
    let y = with(12, "  storage_gb: 50\nfiles: 3");
    error_at(
        &y,
        "`files` must be a mapping of keys to values, found the number 3",
        13,
        8,
    );
    let y = with(9, "  engine: mysq");
    assert!(error_at(
        &y,
        "`database.engine` is `mysq`, which is not an allowed value",
        9,
        11
    )
    .starts_with("did you mean `mysql`?"));
}

#[test]
fn missing_required_key() {
    let y = with(24, "");
    error_at(&y, "missing required key `moodle.admin_email`", 22, 1);
}

#[test]
fn every_problem_is_reported_at_once() {
    let y = with(18, "  mni: 1")
        .replace("cidr: 10.0.0.0/16", "cidr: 10.0.0/16")
        .replace("max: 4", "max: 0");
    let (diags, _) = diagnostics(&y, &LoadOptions::default());
    let errors: Vec<&str> = diags
        .iter()
        .filter(|d| d.is_error())
        .map(|d| d.message.as_str())
        .collect();
    assert_eq!(
        errors,
        vec![
            "unknown key `mni` in `web`",
            "`10.0.0` in `10.0.0/16` is not an IPv4 address",
            "`web.max` is 0; the fleet needs at least 1 instance",
        ]
    );
}

#[test]
fn syntax_errors_are_located() {
    let y = with(17, "  instance_types: [m6i.large, c6i.xlarge");
    let (diags, sources) = diagnostics(&y, &LoadOptions::default());
    assert_eq!(diags.len(), 1);
    assert!(
        diags[0].message.starts_with("YAML syntax error"),
        "{}",
        diags[0].message
    );
    assert!(
        diags[0].location(&sources).starts_with("test.yaml:18:"),
        "{}",
        diags[0].location(&sources)
    );
}

// ---- name and region ----

#[test]
fn stack_name_rules() {
    let y = with(1, "name: Demo_1");
    error_at(
        &y,
        "stack name `Demo_1` is not valid: it must start with a lower-case letter; only lower-case letters, digits and hyphens are allowed",
        1,
        7,
    );
    let y = with(1, "name: demo-");
    error_at(
        &y,
        "stack name `demo-` is not valid: it must not end with a hyphen",
        1,
        7,
    );
    let y = with(1, "name: de--mo");
    error_at(
        &y,
        "stack name `de--mo` is not valid: it must not contain two consecutive hyphens",
        1,
        7,
    );
}

#[test]
fn derived_names_aws_would_reject() {
    let y = with(1, "name: moodle-staging-feature-branch-x");
    let fix = error_at(
        &y,
        "stack name `moodle-staging-feature-branch-x` makes names AWS would reject: \
         load balancer name `moodle-staging-feature-branch-x-alb`: 35 characters, at most 32 allowed, \
         target group name `moodle-staging-feature-branch-x-web`: 35 characters, at most 32 allowed",
        1,
        7,
    );
    assert_eq!(
        fix,
        "use a stack name of at most 28 characters, e.g. `--name moodle-staging-feature`"
    );
    let y = with(1, "name: internal-moodle");
    let fix = error_at(
        &y,
        "stack name `internal-moodle` makes names AWS would reject: load balancer name `internal-moodle-alb`: must not start with `internal-`",
        1,
        7,
    );
    assert_eq!(fix, "choose another stack name, e.g. `--name moodle`");
    // The ElastiCache limit (40) binds first for longer names.
    let y = with(1, "name: abcdefghijklmnopqrstuvwxyzabcdefghij");
    let (diags, _) = diagnostics(&y, &LoadOptions::default());
    let d = diags
        .iter()
        .find(|d| d.message.contains("ElastiCache replication group id"))
        .unwrap();
    assert!(d.message.contains(
        "`abcdefghijklmnopqrstuvwxyzabcdefghij-redis`: 42 characters, at most 40 allowed"
    ));
}

#[test]
fn region_format() {
    let y = with(2, "region: eu-west").replace("eu-west-1a, eu-west-1b", "eu-westa, eu-westb");
    error_at(&y, "`eu-west` is not an AWS region name", 2, 9);
}

// ---- network ----

#[test]
fn invalid_vpc_cidr() {
    let y = with(4, "  cidr: 10.0.0.0/33");
    error_at(
        &y,
        "`/33` in `10.0.0.0/33` is not a prefix length (0-32)",
        4,
        9,
    );
    let y = with(4, "  cidr: 10.0.0.0/8");
    error_at(
        &y,
        "the VPC CIDR `10.0.0.0/8` is a /8; AWS allows /16 to /28",
        4,
        9,
    );
    let y = with(4, "  cidr: 10.0.1.0/16");
    assert_eq!(
        error_at(&y, "the VPC CIDR `10.0.1.0/16` has host bits set", 4, 9),
        "write the network address: `10.0.0.0/16`"
    );
}

#[test]
fn subnets_outside_the_vpc_and_overlapping() {
    let y = with(
        5,
        "  zones: [eu-west-1a, eu-west-1b]\n  public_subnets: [10.0.0.0/24, 10.1.0.0/24]\n  private_subnets: [10.0.0.128/25, 10.0.32.0/20]",
    );
    error_at(
        &y,
        "subnet `10.1.0.0/24` is outside the VPC `10.0.0.0/16`",
        6,
        33,
    );
    error_at(&y, "subnet `10.0.0.128/25` overlaps `10.0.0.0/24`", 7, 21);
}

#[test]
fn subnet_count_must_match_zones() {
    let y = with(
        5,
        "  zones: [eu-west-1a, eu-west-1b]\n  public_subnets: [10.0.0.0/24]",
    );
    assert_eq!(
        error_at(
            &y,
            "1 public_subnets for 2 zones; there must be one per zone",
            6,
            19
        ),
        "give exactly 2 CIDRs in `public_subnets`, in the order of `zones`"
    );
}

#[test]
fn zones() {
    let y = with(5, "  zones: [eu-west-1a]");
    error_at(
        &y,
        "one availability zone given; a highly available stack needs at least 2",
        5,
        10,
    );
    let y = with(5, "  zones: [eu-west-1a, us-east-1b]");
    error_at(
        &y,
        "zone `us-east-1b` is not in the stack's region `eu-west-1`",
        5,
        23,
    );
    let y = with(5, "  zones: [eu-west-1a, eu-west-1]");
    error_at(
        &y,
        "zone `eu-west-1` is not in the stack's region `eu-west-1`",
        5,
        23,
    );
}

#[test]
fn existing_network_needs_two_subnets_each() {
    let y = with(
        4,
        "  existing:\n    vpc_id: vpc-0123456789abcdef0\n    public_subnet_ids: [subnet-0123456789abcdef0]\n    private_subnet_ids: [subnet-1123456789abcdef0, subnet-2123456789abcdef0]",
    )
    .replace("  zones: [eu-west-1a, eu-west-1b]\n", "");
    error_at(
        &y,
        "`network.existing.public_subnet_ids` lists 1 subnet(s); the ALB, database and cache need subnets in at least 2 zones",
        6,
        24,
    );
}

// ---- load balancer ----

#[test]
fn deregistration_delay_range() {
    let y = with(21, "  deregistration_delay: 4000");
    error_at(
        &y,
        "`load_balancer.deregistration_delay` is 4000 seconds; it must be between 0 and 3600",
        21,
        25,
    );
    let y = with(21, "  deregistration_delay: -1");
    error_at(
        &y,
        "`load_balancer.deregistration_delay` is -1 seconds; it must be between 0 and 3600",
        21,
        25,
    );
}

#[test]
fn certificate_and_wwwroot_scheme() {
    let y = with(
        21,
        "  deregistration_delay: 120\n  certificate_arn: arn:aws:acm:eu-west-1:123456789012:certificate/abc",
    );
    assert_eq!(
        error_at(
            &y,
            "`moodle.wwwroot` is `http://moodle.example.org` (http) but the load balancer has a certificate",
            24,
            12
        ),
        "write `https://moodle.example.org`"
    );
    let y = with(23, "  wwwroot: https://moodle.example.org");
    error_at(
        &y,
        "`moodle.wwwroot` is `https://moodle.example.org` (https) but the load balancer has no certificate, so it serves HTTP only",
        23,
        12,
    );
    let y = with(
        21,
        "  deregistration_delay: 120\n  certificate_arn: arn:aws:acm:us-east-1:123456789012:certificate/abc",
    )
    .replace("http://", "https://");
    error_at(
        &y,
        "the certificate is in `us-east-1`, the stack in `eu-west-1`; an ALB uses certificates of its own region",
        22,
        20,
    );
}

#[test]
fn wwwroot_must_be_a_url() {
    let y = with(23, "  wwwroot: moodle.example.org");
    error_at(&y, "`moodle.example.org` is not an http(s) URL", 23, 12);
    let y = with(23, "  wwwroot: http://moodle.example.org/");
    assert_eq!(
        error_at(
            &y,
            "`http://moodle.example.org/` ends with `/`; Moodle's wwwroot must not",
            23,
            12
        ),
        "write `http://moodle.example.org`"
    );
    let y = with(23, "  wwwroot: http://bad host");
    error_at(&y, "`http://bad host` is not a valid site URL", 23, 12);
}

// ---- web fleet ----

#[test]
fn web_capacity_bounds() {
    let y = with(18, "  min: 5");
    assert_eq!(
        error_at(&y, "`web.min` (5) is larger than `web.max` (4)", 18, 8),
        "lower `web.min` to at most 4 or raise `web.max` to at least 5"
    );
    let y = with(18, "  min: -1");
    error_at(&y, "`web.min` is -1; it cannot be negative", 18, 8);
    let y = with(19, "  max: -2");
    error_at(
        &y,
        "`web.max` is -2; the fleet needs at least 1 instance",
        19,
        8,
    );
    let y = with(19, "  max: 4\n  on_demand_base: 5");
    error_at(
        &y,
        "`web.on_demand_base` (5) is larger than `web.max` (4)",
        20,
        19,
    );
    let y = with(19, "  max: 4\n  on_demand_percentage_above_base: 150");
    error_at(
        &y,
        "`web.on_demand_percentage_above_base` is 150 %; it must be between 0 and 100",
        20,
        36,
    );
}

#[test]
fn web_instance_type_count_and_families() {
    let y = with(17, "  instance_types: [m6i.large]");
    error_at(
        &y,
        "the web fleet has 1 instance type(s); Spot needs at least 2 (3-6 across families is best)",
        17,
        19,
    );
    let y = with(17, "  instance_types: [m6i.large, c6i.xlarge]");
    assert_at(
        &y,
        Severity::Warning,
        "the web fleet has only 2 instance types; Spot capacity is more reliable with 3-6",
        17,
        19,
    );
    let y = with(17, "  instance_types: [m6i.large, m5.large, m7i.large]");
    assert_at(
        &y,
        Severity::Warning,
        "every web instance type is of the `m` class; one class shares Spot capacity pools",
        17,
        19,
    );
    let y = with(17, "  instance_types: [m6i.large, c6i.large, t3.large, m5.large, c5.large, t3a.large, m6a.large]");
    assert_at(
        &y,
        Severity::Warning,
        "7 instance types; 3-6 are enough for deep Spot capacity",
        17,
        19,
    );
    let y = with(17, "  instance_types: [m6i.large, c6i.large, m6i.large]");
    error_at(&y, "instance type `m6i.large` is listed twice", 17, 42);
}

#[test]
fn unknown_instance_type_suggests_the_closest() {
    let y = with(17, "  instance_types: [m6i.large, c6i.xlarg, t3.large]");
    assert_eq!(
        error_at(&y, "unknown instance type `c6i.xlarg`", 17, 31),
        "did you mean `c6i.xlarge`? (known types are listed in crates/stack/src/instance_types.rs)"
    );
    let y = with(16, "stable:\n  instance_type: m6i.larg\nweb:");
    error_at(&y, "unknown instance type `m6i.larg`", 17, 18);
}

#[test]
fn mixed_architectures() {
    let y = with(17, "  instance_types: [m6i.large, c7g.large, t3.large]");
    assert_eq!(
        error_at(
            &y,
            "instance type `c7g.large` is arm64, the other web types are x86_64; one AMI cannot boot both",
            17,
            31
        ),
        "replace `c7g.large` with an x86_64 type"
    );
    // The stable instance boots the same AMI as the fleet.
    let y = with(17, "  instance_types: [m7g.large, c7g.large, t4g.large]")
        .replace("ami:\n  id: ami-785db401\n", "ami:\n  ssm_parameter: /aws/service/canonical/ubuntu/server/24.04/stable/current/arm64/hvm/ebs-gp3/ami-id\n");
    error_at(
        &y,
        "the stable instance type `m6i.large` (default) is x86_64, the web fleet is arm64; both boot the same AMI",
        1,
        1,
    );
}

#[test]
fn default_ami_parameter_must_match_the_fleet() {
    let y = with(
        17,
        "  instance_types: [m7g.large, c7g.large, t4g.large]\nstable:\n  instance_type: m7g.large",
    )
    .replace("ami:\n  id: ami-785db401\n", "");
    let fix = error_at(
        &y,
        "the AMI parameter (default) names an x86_64 image, but the instance types are arm64",
        1,
        1,
    );
    assert!(fix.contains("/arm64/hvm/"), "{fix}");
}

#[test]
fn image_architecture_is_checked_at_plan_time() {
    let loaded = load_str("test.yaml", BASE, &LoadOptions::default()).unwrap();
    check_image_architecture(&loaded, "x86_64").unwrap();
    let err = check_image_architecture(&loaded, "arm64").unwrap_err();
    let got: Vec<(String, String)> = err
        .diagnostics
        .iter()
        .map(|d| (d.message.clone(), d.location(&err.sources)))
        .collect();
    assert_eq!(
        got,
        vec![
            ("web instance type `m6i.large` is x86_64, but the AMI (ami-785db401) is arm64".into(), "test.yaml:17:20".into()),
            ("web instance type `c6i.xlarge` is x86_64, but the AMI (ami-785db401) is arm64".into(), "test.yaml:17:31".into()),
            ("web instance type `t3.large` is x86_64, but the AMI (ami-785db401) is arm64".into(), "test.yaml:17:43".into()),
            // Not in the file: reported at the top of the document.
            ("stable instance type `m6i.large` (default) is x86_64, but the AMI (ami-785db401) is arm64".into(), "test.yaml:1:1".into()),
        ]
    );
    assert!(
        err.diagnostics[0]
            .fix
            .starts_with("use arm64 instance types, e.g. `m6g.large`"),
        "{}",
        err.diagnostics[0].fix
    );
}

#[test]
fn spot_allocation_strategy_values() {
    let y = with(
        19,
        "  max: 4\n  spot_allocation_strategy: price-capacity-optimised",
    );
    assert!(error_at(
        &y,
        "`price-capacity-optimised` is not a Spot allocation strategy",
        20,
        29
    )
    .starts_with("did you mean `price-capacity-optimized`?"));
}

// ---- cache ----

#[test]
fn failover_needs_a_replica() {
    let y = with(14, "  replicas: 0");
    assert_eq!(
        error_at(
            &y,
            "automatic failover needs a replica to promote, but `cache.replicas` is 0",
            15,
            23
        ),
        "set `cache.replicas: 1` (or more), or `cache.automatic_failover: false`"
    );
}

#[test]
fn replicas_range() {
    let y = with(14, "  replicas: 6");
    error_at(
        &y,
        "`cache.replicas` is 6; it must be between 0 and 5",
        14,
        13,
    );
}

#[test]
fn auth_needs_transit_encryption() {
    let y = with(
        15,
        "  automatic_failover: true\n  transit_encryption: false",
    );
    error_at(
        &y,
        "Redis AUTH needs TLS in transit, but `cache.transit_encryption` is false",
        13,
        1,
    );
    let y = with(
        15,
        "  automatic_failover: true\n  transit_encryption: false\n  auth: true",
    );
    error_at(
        &y,
        "Redis AUTH needs TLS in transit, but `cache.transit_encryption` is false",
        17,
        9,
    );
}

#[test]
fn redis_version() {
    let y = with(
        15,
        "  automatic_failover: true\n  engine_version: \"5.0.6\"",
    );
    error_at(
        &y,
        "`5.0.6` is not a Redis version moodlestack supports",
        16,
        19,
    );
}

// ---- database ----

#[test]
fn backup_retention_range() {
    let y = with(11, "  backup_retention_days: 0");
    error_at(
        &y,
        "`database.backup_retention_days` is 0 days; it must be between 1 and 35",
        11,
        26,
    );
    let y = with(11, "  backup_retention_days: 36");
    error_at(
        &y,
        "`database.backup_retention_days` is 36 days; it must be between 1 and 35",
        11,
        26,
    );
}

#[test]
fn storage_bounds() {
    let y = with(12, "  storage_gb: 10");
    error_at(
        &y,
        "`database.storage_gb` is 10 GiB; it must be between 20 and 65536",
        12,
        15,
    );
    let y = with(12, "  storage_gb: 50\n  max_storage_gb: 40");
    error_at(
        &y,
        "`database.max_storage_gb` (40) must be at least 110 % of `database.storage_gb` (50: at least 55), or 0",
        13,
        19,
    );
    // Above the storage but below RDS's 110 %: refused by RDS, so by the validator.
    let y = with(12, "  storage_gb: 200\n  max_storage_gb: 210");
    error_at(
        &y,
        "`database.max_storage_gb` (210) must be at least 110 % of `database.storage_gb` (200: at least 220), or 0",
        13,
        19,
    );
}

#[test]
fn engine_version_matches_the_engine() {
    let y = with(10, "  version: \"16\"");
    error_at(
        &y,
        "`16` is not a mysql version moodlestack can run Moodle on",
        10,
        12,
    );
    let y = with(9, "  engine: postgres").replace("version: \"8.0\"", "version: \"8.0\"  # wrong");
    error_at(
        &y,
        "`8.0` is not a postgres version moodlestack can run Moodle on",
        10,
        12,
    );
    let y = with(9, "  engine: mariadb").replace("version: \"8.0\"", "version: \"10.11\"");
    let (d, _) = diagnostics(&y, &LoadOptions::default());
    assert!(d.is_empty(), "{d:?}");
    let y = with(9, "  engine: aurora-mysql")
        .replace("version: \"8.0\"", "version: 8.0.mysql_aurora.3.08.0");
    assert_at(
        &y,
        Severity::Warning,
        "`database.storage_gb` is ignored by Aurora (its storage grows automatically)",
        12,
        15,
    );
}

#[test]
fn db_names() {
    let y = with(
        12,
        "  storage_gb: 50\n  db_name: 1moodle\n  username: admin",
    );
    error_at(&y, "database name `1moodle` is not valid for mysql", 13, 12);
    error_at(
        &y,
        "master user name `admin` is not valid for mysql",
        14,
        13,
    );
}

// ---- files ----

#[test]
fn efs_modes() {
    let y = with(
        12,
        "  storage_gb: 50\nfiles:\n  performance_mode: generalpurpose\n  throughput_mode: elasticc",
    );
    assert!(error_at(
        &y,
        "`generalpurpose` is not an EFS performance mode",
        14,
        21
    )
    .starts_with("did you mean `generalPurpose`?"));
    assert!(
        error_at(&y, "`elasticc` is not an EFS throughput mode", 15, 20)
            .starts_with("did you mean `elastic`?")
    );
    let y = with(
        12,
        "  storage_gb: 50\nfiles:\n  throughput_mode: provisioned",
    );
    error_at(
        &y,
        "`provisioned` throughput needs a provisioned rate, which moodlestack does not manage",
        14,
        20,
    );
    let y = with(12, "  storage_gb: 50\nfiles:\n  performance_mode: maxIO");
    error_at(
        &y,
        "elastic throughput is only available with the `generalPurpose` performance mode",
        13,
        1,
    );
}

// ---- backup ----

#[test]
fn backup_schedule_time_zone_and_retention() {
    let y = with(
        24,
        "  admin_email: admin@example.org\nbackup:\n  schedule: \"*/15 * * * *\"\n  time_zone: Europe/Madird\n  retention_days: 0",
    );
    assert!(error_at(
        &y,
        "`*/15 * * * *` is not a backup schedule: the minute field `*/15` must be one number: AWS Backup runs a plan's rule at most once an hour",
        26,
        13
    )
    .contains("`0 3 * * *`"));
    assert!(
        error_at(&y, "`Europe/Madird` is not an IANA time zone name", 27, 14)
            .contains("`Europe/Madrid`")
    );
    error_at(
        &y,
        "`backup.retention_days` is 0 days; it must be between 1 and 36500",
        28,
        19,
    );
    let y = with(
        24,
        "  admin_email: admin@example.org\nbackup:\n  schedule: \"0 2 1 * MON\"",
    );
    error_at(
        &y,
        "`0 2 1 * MON` is not a backup schedule: both the day of month (`1`) and the day of week (`MON`) are restricted; AWS Backup takes one of them",
        26,
        13,
    );
    // Off: nothing of it is checked.
    let y = with(
        24,
        "  admin_email: admin@example.org\nbackup:\n  enabled: false\n  schedule: nonsense",
    );
    let (d, _) = diagnostics(&y, &LoadOptions::default());
    assert!(d.is_empty(), "{d:?}");
}

// ---- moodle ----

#[test]
fn php_version_and_git_ref() {
    let y = with(
        24,
        "  admin_email: admin@example.org\n  php_version: \"7.4\"\n  git_ref: \"\"",
    );
    assert!(error_at(&y, "PHP `7.4` is not supported", 25, 16)
        .starts_with("use one of `8.1`, `8.2`, `8.3`, `8.4`"));
    error_at(
        &y,
        "`moodle.git_ref` `` is neither a release tag nor a commit id",
        26,
        12,
    );
    // A plain 8.10 keeps its text (it is not the float 8.1).
    let y = with(24, "  admin_email: admin@example.org\n  php_version: 8.10");
    error_at(&y, "PHP `8.10` is not supported", 25, 16);
    // PHP against the Moodle branch of the release tag (default v4.5.5: 8.1 to 8.3).
    let y = with(24, "  admin_email: admin@example.org\n  php_version: 8.4");
    assert_eq!(
        error_at(
            &y,
            "Moodle 4.5 (`v4.5.5`) supports PHP 8.1 to 8.3, not 8.4",
            25,
            16
        ),
        "use `8.1`, `8.2`, `8.3` (Ubuntu 24.04's own PHP is 8.3), or a Moodle release that supports PHP 8.4"
    );
    let y = with(
        24,
        "  admin_email: admin@example.org\n  php_version: \"8.4\"\n  git_ref: v5.0.1\n  forcedcache_ref: 0123456789abcdef0123456789abcdef01234567",
    );
    // Moodle 5.0 needs MySQL 8.4 (the table of database requirements): BASE's 8.0 is refused
    // at `database.version`, with the fix.
    assert!(error_at(
        &y,
        "Moodle 5.0 (`v5.0.1`) needs mysql 8.4 or newer; the database is 8.0",
        10,
        12
    )
    .starts_with("upgrade the database first"));
    let y = y.replace("version: \"8.0\"", "version: \"8.4\"");
    let (d, _) = diagnostics(&y, &LoadOptions::default());
    assert!(d.is_empty(), "{d:?}");
    let y = with(
        24,
        "  admin_email: admin@example.org\n  php_version: \"8.1\"\n  git_ref: v5.0.1\n  forcedcache_ref: 0123456789abcdef0123456789abcdef01234567",
    );
    error_at(
        &y,
        "Moodle 5.0 (`v5.0.1`) supports PHP 8.2 to 8.4, not 8.1",
        25,
        16,
    );
    // A branch moves: refused, with the tag to pin.
    let y = with(
        24,
        "  admin_email: admin@example.org\n  git_ref: MOODLE_405_STABLE",
    );
    assert_eq!(
        error_at(
            &y,
            "`moodle.git_ref` `MOODLE_405_STABLE` is a branch: it moves (weekly builds), so nodes booted a week apart would run different code than the database",
            25,
            12
        ),
        "pin a release tag such as `v4.5.5` (or a full 40-character commit id)"
    );
    // tool_forcedcache is pinned for 4.5 only: other branches name their own.
    let y = with(24, "  admin_email: admin@example.org\n  git_ref: v4.4.3");
    error_at(
        &y,
        "moodle.forcedcache_ref: moodlestack pins tool_forcedcache only for Moodle 4.5 release tags; set the commit of the plugin's branch for `v4.4.3`",
        25,
        12,
    );
    let y = with(
        24,
        "  admin_email: admin@example.org\n  forcedcache_ref: MOODLE_405_STABLE",
    );
    error_at(
        &y,
        "`moodle.forcedcache_ref` `MOODLE_405_STABLE` is not a tag or a full commit id",
        25,
        20,
    );
    let y = with(
        24,
        "  admin_email: admin@example.org\n  php_version: \"8.2\"",
    );
    let (d, _) = diagnostics(&y, &LoadOptions::default());
    assert!(d.is_empty(), "{d:?}");
}

#[test]
fn moodle_paths_email_and_config() {
    let y = with(
        24,
        "  admin_email: admin\n  dataroot: /var/www/moodle/data\n  config:\n    \"bad-key\": 1\n    theme: [a]",
    );
    error_at(&y, "`admin` is not an e-mail address", 24, 16);
    error_at(
        &y,
        "`moodle.dataroot` (`/var/www/moodle/data`) and `moodle.dirroot` (`/var/www/moodle`) overlap; Moodle refuses a dataroot reachable from the web",
        25,
        13,
    );
    error_at(&y, "`bad-key` is not a `$CFG` setting name", 27, 5);
    error_at(
        &y,
        "`moodle.config.theme` must be a string, a number or a boolean, found a list",
        28,
        12,
    );
}

// ---- overrides ----

#[test]
fn set_overrides_are_applied_and_checked() {
    let o = LoadOptions {
        name: Some("ci-branch-42".into()),
        set: vec![
            "web.max=8".into(),
            "web.instance_types=[m6i.large, c6i.large, t3.large]".into(),
        ],
    };
    let loaded = load_str("test.yaml", BASE, &o).unwrap();
    assert_eq!(loaded.stack.name, "ci-branch-42");
    assert_eq!(loaded.stack.web.max, 8);
    assert_eq!(
        loaded.stack.web.instance_types,
        vec!["m6i.large", "c6i.large", "t3.large"]
    );
    let o = LoadOptions {
        name: None,
        set: vec![
            "web.instance_types[1]=c5.large".into(),
            "tags.Team=lms".into(),
        ],
    };
    let loaded = load_str("test.yaml", BASE, &o).unwrap();
    assert_eq!(loaded.stack.web.instance_types[1], "c5.large");
    assert_eq!(loaded.stack.tags["Team"], "lms");
}

#[test]
fn problems_in_overrides_point_at_the_argument() {
    let o = LoadOptions {
        name: None,
        set: vec!["web.max=-1".into()],
    };
    let (diags, sources) = diagnostics(BASE, &o);
    let d = diags
        .iter()
        .find(|d| d.message == "`web.max` is -1; the fleet needs at least 1 instance")
        .unwrap();
    let span = d.span.unwrap();
    assert_eq!(sources.get(span.source).unwrap().kind, SourceKind::Argument);
    assert_eq!(
        d.location(&sources),
        "argument `--set web.max=-1` (column 15)"
    );
    assert!(
        d.render(&sources, false)
            .contains("  | --set web.max=-1\n  |               ^^\n"),
        "{}",
        d.render(&sources, false)
    );

    let o = LoadOptions {
        name: Some("Bad_Name".into()),
        set: vec![],
    };
    let (diags, sources) = diagnostics(BASE, &o);
    assert_eq!(
        diags[0].location(&sources),
        "argument `--name Bad_Name` (column 8)"
    );

    let o = LoadOptions {
        name: None,
        set: vec!["web.instance_types=[m6i.large, c6i.large, m7g.large]".into()],
    };
    let (diags, sources) = diagnostics(BASE, &o);
    let d = diags
        .iter()
        .find(|d| d.message.starts_with("instance type `m7g.large` is arm64"))
        .unwrap();
    assert_eq!(
        d.location(&sources),
        "argument `--set web.instance_types=[m6i.large, c6i.large, m7g.large]` (column 49)"
    );
}

#[test]
fn unknown_set_path_names_the_closest() {
    let o = LoadOptions {
        name: None,
        set: vec!["web.maxx=3".into()],
    };
    let (diags, sources) = diagnostics(BASE, &o);
    assert_eq!(
        diags[0].message,
        "`--set web.maxx`: there is no field `web.maxx`"
    );
    assert_eq!(diags[0].fix, "did you mean `web.max`?");
    assert_eq!(
        diags[0].location(&sources),
        "argument `--set web.maxx=3` (column 7)"
    );
    let o = LoadOptions {
        name: None,
        set: vec!["load_balancer.deregistration=3".into()],
    };
    let (diags, _) = diagnostics(BASE, &o);
    assert_eq!(
        diags[0].fix,
        "did you mean `load_balancer.deregistration_delay`?"
    );
    let o = LoadOptions {
        name: None,
        set: vec!["web.max".into()],
    };
    let (diags, _) = diagnostics(BASE, &o);
    assert_eq!(diags[0].message, "`--set web.max` has no `=`");
}

// ---- tags and misc ----

#[test]
fn reserved_tags() {
    let y = with(2, "region: eu-west-1\ntags:\n  moodlestack:stack: x");
    error_at(&y, "tag key `moodlestack:stack` is reserved (`aws:*` by AWS, `moodlestack:*` and `Name` by moodlestack)", 4, 3);
}

#[test]
fn warnings_do_not_fail_the_load() {
    let y = with(5, "  zones: [eu-west-1a, eu-west-1b]\n  nat_gateways: none");
    let loaded = load_str("test.yaml", &y, &LoadOptions::default()).unwrap();
    assert_eq!(loaded.warnings.len(), 1);
    assert_eq!(
        loaded.warnings[0].location(&loaded.sources),
        "test.yaml:6:17"
    );
}

/// The remaining rules, one line each: (line to replace, its new text, message, line, column).
#[test]
fn remaining_rules_table() {
    let cases: &[(usize, &str, &str, usize, usize)] = &[
        (21, "  deregistration_delay: 120\n  health_check_interval: 2", "`load_balancer.health_check_interval` is 2 seconds; it must be between 5 and 300", 22, 26),
        (21, "  deregistration_delay: 120\n  healthy_threshold: 11", "`load_balancer.healthy_threshold` is 11; it must be between 2 and 10", 22, 22),
        (21, "  deregistration_delay: 120\n  idle_timeout: 0", "`load_balancer.idle_timeout` is 0 seconds; it must be between 1 and 4000", 22, 17),
        (21, "  deregistration_delay: 120\n  health_check_path: login", "`login` is not a URL path", 22, 22),
        (21, "  deregistration_delay: 120\n  certificate_arn: arn:aws:iam::123456789012:server-certificate/x", "`arn:aws:iam::123456789012:server-certificate/x` is not an ACM certificate ARN", 22, 20),
        (19, "  max: 4\n  root_volume_gb: 4", "`web.root_volume_gb` is 4 GiB; it must be between 8 and 16384", 20, 19),
        (19, "  max: 4\n  on_demand_base: -1", "`web.on_demand_base` is -1; it cannot be negative", 20, 19),
        (16, "stable:\n  instance_type: m6i.large\n  root_volume_gb: 5\nweb:", "`stable.root_volume_gb` is 5 GiB; it must be between 8 and 16384", 18, 19),
        (7, "  id: ami-12345", "`ami-12345` is not an AMI id", 7, 7),
        (7, "  ssm_parameter: aws/service/x", "`aws/service/x` is not an SSM parameter path", 7, 18),
        (14, "  replicas: 1\n  node_type: t4g.small", "`t4g.small` is not an ElastiCache node type", 15, 14),
        (10, "  version: \"8.0\"\n  instance_class: t4g.medium", "`t4g.medium` is not an RDS instance class", 11, 19),
        (12, "  storage_gb: 50\n  max_storage_gb: 70000", "`database.max_storage_gb` is 70000 GiB; it must be between 0 and 65536", 13, 19),
        (12, "  storage_gb: 50\n  parameters:\n    \"max connections\": \"100\"", "`max connections` is not a database parameter name", 14, 5),
        (24, "  admin_email: admin@example.org\n  git_url: ftp://example.org/moodle.git", "`ftp://example.org/moodle.git` is not a git repository URL", 25, 12),
        (24, "  admin_email: admin@example.org\n  prefix: MDL-", "table prefix `MDL-` is not valid", 25, 11),
        (24, "  admin_email: admin@example.org\n  dirroot: var/www/moodle", "`var/www/moodle` is not an absolute path", 25, 12),
        (24, "  admin_email: admin@example.org\n  config:\n    wwwroot: http://x", "`$CFG->wwwroot` is set by moodlestack", 26, 5),
        (5, "  zones: [eu-west-1a, eu-west-1a]", "zone `eu-west-1a` is listed twice", 5, 23),
        (5, "  zones: [eu-west-1a, eu-west-1b]\n  public_subnets: [10.0.0.0/24, 10.0.1.1/24]", "subnet `10.0.1.1/24` has host bits set", 6, 33),
        (5, "  zones: [eu-west-1a, eu-west-1b]\n  public_subnets: [10.0.0.0/24, 10.0.1.0/29]", "subnet `10.0.1.0/29` is a /29; AWS allows /16 to /28", 6, 33),
        (5, "  zones: [eu-west-1a, eu-west-1b]\n  admin_cidrs: [203.0.113.7]", "`203.0.113.7` is not a CIDR (expected `a.b.c.d/len`, e.g. `10.0.0.0/16`)", 6, 17),
        (2, "region: eu-west-1\ntags:\n  aws:owner: me", "tag key `aws:owner` is reserved (`aws:*` by AWS, `moodlestack:*` and `Name` by moodlestack)", 4, 3),
    ];
    for (line, text, message, l, c) in cases {
        error_at(&with(*line, text), message, *l, *c);
    }
}

#[test]
fn existing_network_ids() {
    let y = with(
        4,
        "  existing:\n    vpc_id: vpc1\n    public_subnet_ids: [subnet-0123456789abcdef0, subnet-0123456789abcdef0]\n    private_subnet_ids: [subnet-0123456789abcdef0, subnet-x]",
    );
    error_at(&y, "`vpc1` is not a VPC id", 5, 13);
    error_at(
        &y,
        "subnet `subnet-0123456789abcdef0` is listed twice",
        6,
        51,
    );
    error_at(
        &y,
        "subnet `subnet-0123456789abcdef0` is listed as both public and private",
        7,
        26,
    );
    error_at(&y, "`subnet-x` is not a subnet id", 7, 52);
    // The network settings it replaces are ignored, with a warning.
    assert_at(
        &y,
        Severity::Warning,
        "`network.zones` is ignored because `network.existing` is set",
        8,
        10,
    );
}

#[test]
fn too_many_instance_types() {
    use moodlestack_stack::instance_types::{Arch, INSTANCE_TYPES};
    // Repeats are errors too; the count is reported on its own.
    let types: Vec<&str> = INSTANCE_TYPES
        .iter()
        .filter(|t| t.arch == Arch::X86_64)
        .map(|t| t.name)
        .cycle()
        .take(41)
        .collect();
    assert_eq!(types.len(), 41);
    let y = with(17, &format!("  instance_types: [{}]", types.join(", ")));
    error_at(
        &y,
        "41 instance types; Auto Scaling accepts at most 40",
        17,
        19,
    );
}

#[test]
fn scaling_rules() {
    let yaml = with(
        19,
        "  max: 4\n  scaling:\n    metric: memory\n    warmup: 7200",
    );
    let fix = error_at(&yaml, "`memory` is not a scaling metric", 21, 13);
    assert!(fix.contains("`cpu`") && fix.contains("`requests`"), "{fix}");
    error_at(
        &yaml,
        "`web.scaling.warmup` is 7200 seconds; it must be between 0 and 3600",
        22,
        13,
    );
    let yaml = with(19, "  max: 4\n  scaling:\n    target: 150");
    error_at(
        &yaml,
        "`web.scaling.target` is 150 %; it must be between 1 and 100",
        21,
        13,
    );
    // Requests per target have their own range; off is explicit and valid.
    let yaml = with(
        19,
        "  max: 4\n  scaling:\n    metric: requests\n    target: 2000",
    );
    assert!(diagnostics(&yaml, &LoadOptions::default()).0.is_empty());
    let yaml = with(19, "  max: 4\n  scaling:\n    enabled: false");
    assert!(diagnostics(&yaml, &LoadOptions::default()).0.is_empty());
}

#[test]
fn schedule_rules() {
    let yaml = with(
        19,
        "  max: 4
  schedule:
    - name: exam week
      recurrence: \"0 6 * * MONDAY\"
      time_zone: Europe/Madird
      min: 3
      max: 6
      desired: 2
    - name: exam-end
      recurrence: \"0 20 * * 5\"
      time_zone: UTC
      min: 0
      desired: 1
    - name: exam-end
      recurrence: \"0 20 * * 5\"
      min: 1
      desired: 5",
    );
    error_at(&yaml, "`exam week` is not a scheduled action name", 21, 13);
    let fix = error_at(
        &yaml,
        "`0 6 * * MONDAY` is not a cron recurrence: the day of week field `MONDAY`: `MONDAY` is \
         not a number or a name (SUN, MON, TUE, WED, THU, FRI, SAT)",
        22,
        19,
    );
    assert!(fix.contains("`0 6 * * 1`"), "{fix}");
    let fix = error_at(
        &yaml,
        "`Europe/Madird` is not an IANA time zone name",
        23,
        18,
    );
    assert!(fix.contains("`Europe/Madrid`"), "{fix}");
    error_at(
        &yaml,
        "scheduled action `exam week`: `min` is larger than `desired` (min 3, desired 2, max 6)",
        24,
        12,
    );
    error_at(
        &yaml,
        "scheduled action `exam week`: `max` (6) is above `web.max` (4)",
        25,
        12,
    );
    let fix = error_at(
        &yaml,
        "`UTC` is an alias; Auto Scaling takes canonical IANA time zone names",
        29,
        18,
    );
    assert_eq!(fix, "write `Etc/UTC`");
    error_at(
        &yaml,
        "scheduled action `exam-end`: `min` (0) is below `web.min` (1)",
        30,
        12,
    );
    error_at(&yaml, "two scheduled actions are named `exam-end`", 32, 13);
    // Without its own max, desired is bounded by web.max.
    error_at(
        &yaml,
        "scheduled action `exam-end`: `desired` is larger than `web.max` (min 1, desired 5, max 4)",
        35,
        16,
    );
}

#[test]
fn a_schedule_that_never_comes_back_is_a_warning() {
    let yaml = with(
        19,
        "  max: 4
  schedule:
    - name: exams
      recurrence: \"0 6 * JUN *\"
      min: 3
      desired: 3",
    );
    let fix = assert_at(
        &yaml,
        Severity::Warning,
        "scheduled action `exams` raises the group's minimum to 3, and no action brings it back \
         to `web.min` (1)",
        23,
        12,
    );
    assert!(fix.contains("`min: 1`"), "{fix}");
    // With an action that ends the period, nothing to say.
    let yaml = with(
        19,
        "  max: 4
  schedule:
    - name: exams
      recurrence: \"0 6 * JUN *\"
      min: 3
      desired: 3
    - name: after-exams
      recurrence: \"0 22 * JUN *\"
      min: 1
      desired: 1",
    );
    assert!(diagnostics(&yaml, &LoadOptions::default()).0.is_empty());
    // A lowered maximum that an action without `max` does not restore.
    let yaml = with(
        19,
        "  max: 4
  schedule:
    - name: quiet
      recurrence: \"0 0 * AUG *\"
      min: 1
      max: 2
      desired: 1
    - name: term
      recurrence: \"0 0 * SEP *\"
      min: 1
      desired: 1",
    );
    assert_at(
        &yaml,
        Severity::Warning,
        "scheduled action `quiet` lowers the group's maximum to 2, and no action brings it back \
         to `web.max` (4)",
        24,
        12,
    );
}

#[test]
fn restore_from_names_a_snapshot_of_a_standalone_database() {
    let y = with(
        12,
        "  storage_gb: 50\n  restore_from: demo-code-v4-5-6-php8-3",
    );
    let (d, _) = diagnostics(&y, &LoadOptions::default());
    assert!(d.is_empty(), "{d:?}");
    let y = with(
        12,
        "  storage_gb: 50\n  restore_from: rds:demo-db-2026-12-01-05-42",
    );
    let (d, _) = diagnostics(&y, &LoadOptions::default());
    assert!(d.is_empty(), "{d:?}");
    let y = with(12, "  storage_gb: 50\n  restore_from: 1-bad_name");
    error_at(
        &y,
        "`1-bad_name` is not an RDS DB snapshot identifier",
        13,
        17,
    );
    let y = with(9, "  engine: aurora-mysql")
        .replace("version: \"8.0\"", "version: 8.0.mysql_aurora.3.08.0")
        .replace("storage_gb: 50", "restore_from: demo-code-v4-5-6-php8-3");
    error_at(
        &y,
        "restoring an Aurora cluster from a snapshot is not supported yet",
        12,
        17,
    );
}

#[test]
fn files_restore_from_names_a_recovery_point_and_needs_the_backup_role() {
    let arn =
        "arn:aws:backup:eu-west-1:123456789012:recovery-point:1EB3B5E7-9EB0-435A-A80B-108B488B0D45";
    let y = format!("{BASE}files:\n  restore_from: {arn}\n");
    let (d, _) = diagnostics(&y, &LoadOptions::default());
    assert!(d.is_empty(), "{d:?}");
    // A database snapshot's name is not a backup of moodledata, nor is a malformed ARN; the
    // restore job runs with the stack's backup role.
    let not_arn = "is not an AWS Backup recovery point ARN";
    for (value, more, message, fix) in [
        (
            "demo-code-v4-5-6-php8-3",
            "",
            not_arn,
            "moodlestack backups",
        ),
        (
            "arn:aws:backup:eu-west-1:1234:recovery-point:x",
            "",
            not_arn,
            "an ARN",
        ),
        (
            arn,
            "backup:\n  enabled: false\n",
            "restoring moodledata needs the stack's AWS Backup role, and `backup.enabled` is false",
            "set `backup.enabled: true`",
        ),
    ] {
        let y = format!("{BASE}files:\n  restore_from: {value}\n{more}");
        let message = if message == not_arn {
            format!("`{value}` {not_arn}")
        } else {
            message.to_string()
        };
        let got = error_at(&y, &message, 26, 17);
        assert!(got.contains(fix), "{got}");
    }
}

// ---- observability ----

#[test]
fn log_retention_must_be_one_cloudwatch_offers() {
    let y = format!("{BASE}observability:\n  log_retention_days: 45\n");
    let fix = error_at(
        &y,
        "45 days is not a retention CloudWatch Logs offers",
        26,
        23,
    );
    assert!(
        fix.starts_with("did you mean 30? Use one of 1, 3, 5,"),
        "{fix}"
    );
    let y = format!("{BASE}observability:\n  log_retention_days: 90\n");
    let (diags, _) = diagnostics(&y, &LoadOptions::default());
    assert!(diags.is_empty(), "{diags:?}");
}

#[test]
fn alert_emails_and_thresholds_are_checked_where_they_are_written() {
    let y = format!(
        "{BASE}observability:\n  alert_emails: [ops@example.org, not-an-address, OPS@example.org]\n  \
         thresholds:\n    db_cpu_percent: 120\n    cron_heartbeat_minutes: 12\n"
    );
    error_at(&y, "`not-an-address` is not an e-mail address", 26, 35);
    error_at(&y, "`OPS@example.org` is listed twice", 26, 51);
    error_at(
        &y,
        "`db_cpu_percent` is 120; a percentage must be above 0 and at most 100",
        28,
        21,
    );
    let fix = error_at(
        &y,
        "12 minutes is not a whole number of the alarm's 5-minute periods",
        29,
        29,
    );
    assert_eq!(fix, "use a multiple of 5, e.g. 10");
}
