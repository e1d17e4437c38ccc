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

/// The options of a run with `--name` and these `--set` arguments.
fn options(name: Option<&str>, set: &[&str]) -> LoadOptions {
    LoadOptions {
        name: name.map(str::to_string),
        set: set.iter().map(|s| s.to_string()).collect(),
    }
}

#[track_caller]
fn error_at(yaml: &str, message: &str, line: usize, column: usize) -> String {
    assert_at(yaml, Severity::Error, message, line, column)
}

/// The stack a case checks: BASE with one line replaced ([`with`]), then edited by replacing
/// each `(from, to)` in turn, BASE with more after it, or BASE with `web.max: 4` and these
/// scheduled actions.
enum Stack {
    Line(usize, &'static str),
    Edited(usize, &'static str, &'static [(&'static str, &'static str)]),
    After(&'static str),
    Schedule(&'static [&'static str]),
}
use Stack::*;

impl Stack {
    fn yaml(&self) -> String {
        match self {
            Line(line, text) => with(*line, text),
            Edited(line, text, edits) => edits
                .iter()
                .fold(with(*line, text), |y, (from, to)| y.replace(from, to)),
            After(more) => format!("{BASE}{more}"),
            Schedule(actions) => with(
                19,
                &format!("  max: 4\n  schedule:\n{}", actions.join("\n")),
            ),
        }
    }
}

/// What the stack must give: an error or a warning with exactly this message at `line:column`
/// and exactly this fix, or no problem at all.
enum Expect {
    Error(&'static str, usize, usize, &'static str),
    Warning(&'static str, usize, usize, &'static str),
    Clean,
}
use Expect::*;

impl Expect {
    #[track_caller]
    fn check(&self, yaml: &str) {
        let (severity, message, line, column, want) = match self {
            Error(m, l, c, f) => (Severity::Error, m, l, c, f),
            Warning(m, l, c, f) => (Severity::Warning, m, l, c, f),
            Clean => {
                let (diags, _) = diagnostics(yaml, &LoadOptions::default());
                assert!(diags.is_empty(), "{yaml}\n{diags:?}");
                return;
            }
        };
        let fix = assert_at(yaml, severity, message, *line, *column);
        assert_eq!(fix, *want, "{message}");
    }
}

/// Scheduled actions of `web.schedule` ([`Schedule`]).
const EXAM_WEEK: &str = "    - name: exam week\n      recurrence: \"0 6 * * MONDAY\"\n      time_zone: Europe/Madird\n      min: 3\n      max: 6\n      desired: 2";
const EXAM_END_UTC: &str = "    - name: exam-end\n      recurrence: \"0 20 * * 5\"\n      time_zone: UTC\n      min: 0\n      desired: 1";
const EXAM_END_UNBOUNDED: &str =
    "    - name: exam-end\n      recurrence: \"0 20 * * 5\"\n      min: 1\n      desired: 5";
const EXAMS: &str =
    "    - name: exams\n      recurrence: \"0 6 * JUN *\"\n      min: 3\n      desired: 3";
const AFTER_EXAMS: &str =
    "    - name: after-exams\n      recurrence: \"0 22 * JUN *\"\n      min: 1\n      desired: 1";
const QUIET: &str = "    - name: quiet\n      recurrence: \"0 0 * AUG *\"\n      min: 1\n      max: 2\n      desired: 1";
const TERM: &str =
    "    - name: term\n      recurrence: \"0 0 * SEP *\"\n      min: 1\n      desired: 1";

/// Every rule's cases, by section: the stack, and a problem it must give (or none).
#[rustfmt::skip]
const CASES: &[(Stack, Expect)] = &[
    // unknown key suggests the closest
    (Line(18, "  mni: 1"), Error("unknown key `mni` in `web`", 18, 3, "did you mean `min`?")),
    (Line(1, "nmae: demo\nname: demo"), Error("unknown key `nmae` at the top level", 1, 1, "did you mean `name`?")),
    // wrong types
    (Line(19, "  max: many"), Error("`web.max` must be a whole number, found `many`", 19, 8, "write a whole number, e.g. `max: 2`")),
    (Line(19, "  max: \"4\""), Error("`web.max` must be a whole number, found the string \"4\"", 19, 8, "remove the quotes: `max: 4`")),
    (Line(15, "  automatic_failover: yes"), Error("`cache.automatic_failover` must be true or false, found `yes`", 15, 23, "write `automatic_failover: true`")),
    (Line(17, "  instance_types: m6i.large"), Error("`web.instance_types` must be a list, found `m6i.large`", 17, 19, "write a list, e.g. `[a, b, c]` or one `- item` per line")),
    (Line(12, "  storage_gb: 50\nfiles: 3"), Error("`files` must be a mapping of keys to values, found the number 3", 13, 8, "write `files` as `key: value` lines indented below it")),
    (Line(9, "  engine: mysq"), Error("`database.engine` is `mysq`, which is not an allowed value", 9, 11, "did you mean `mysql`? The allowed values are `mysql`, `aurora-mysql`, `mariadb`, `postgres`")),
    // missing required key
    (Line(24, ""), Error("missing required key `moodle.admin_email`", 22, 1, "add `admin_email:` under `moodle` (Administrator's e-mail (install and notifications))")),
    // stack name rules
    (Line(1, "name: Demo_1"), Error("stack name `Demo_1` is not valid: it must start with a lower-case letter; only lower-case letters, digits and hyphens are allowed", 1, 7, "use lower-case letters, digits and single hyphens, starting with a letter, e.g. `demo-1` (or `--name demo-1`)")),
    (Line(1, "name: demo-"), Error("stack name `demo-` is not valid: it must not end with a hyphen", 1, 7, "use lower-case letters, digits and single hyphens, starting with a letter, e.g. `demo` (or `--name demo`)")),
    (Line(1, "name: de--mo"), Error("stack name `de--mo` is not valid: it must not contain two consecutive hyphens", 1, 7, "use lower-case letters, digits and single hyphens, starting with a letter, e.g. `de-mo` (or `--name de-mo`)")),
    // derived names aws would reject
    (Line(1, "name: moodle-staging-feature-branch-x"), Error("stack name `moodle-staging-feature-branch-x` makes names AWS would reject: \
         load balancer name `moodle-staging-feature-branch-x-alb`: 35 characters, at most 32 allowed, \
         target group name `moodle-staging-feature-branch-x-web`: 35 characters, at most 32 allowed", 1, 7, "use a stack name of at most 28 characters, e.g. `--name moodle-staging-feature`")),
    (Line(1, "name: internal-moodle"), Error("stack name `internal-moodle` makes names AWS would reject: load balancer name `internal-moodle-alb`: must not start with `internal-`", 1, 7, "choose another stack name, e.g. `--name moodle`")),
    // region format
    (Edited(2, "region: eu-west", &[("eu-west-1a, eu-west-1b", "eu-westa, eu-westb")]), Error("`eu-west` is not an AWS region name", 2, 9, "write a region code such as `eu-west-1` or `us-east-1`")),
    // invalid vpc cidr
    (Line(4, "  cidr: 10.0.0.0/33"), Error("`/33` in `10.0.0.0/33` is not a prefix length (0-32)", 4, 9, "write the VPC's IPv4 CIDR, e.g. `10.0.0.0/16`")),
    (Line(4, "  cidr: 10.0.0.0/8"), Error("the VPC CIDR `10.0.0.0/8` is a /8; AWS allows /16 to /28", 4, 9, "use a prefix between /16 and /28 (a /16 leaves room for every subnet)")),
    (Line(4, "  cidr: 10.0.1.0/16"), Error("the VPC CIDR `10.0.1.0/16` has host bits set", 4, 9, "write the network address: `10.0.0.0/16`")),
    // subnets outside the vpc and overlapping
    (Line(5, "  zones: [eu-west-1a, eu-west-1b]\n  public_subnets: [10.0.0.0/24, 10.1.0.0/24]\n  private_subnets: [10.0.0.128/25, 10.0.32.0/20]"), Error("subnet `10.1.0.0/24` is outside the VPC `10.0.0.0/16`", 6, 33, "pick a subnet inside `10.0.0.0/16`, or widen `network.cidr`")),
    (Line(5, "  zones: [eu-west-1a, eu-west-1b]\n  public_subnets: [10.0.0.0/24, 10.1.0.0/24]\n  private_subnets: [10.0.0.128/25, 10.0.32.0/20]"), Error("subnet `10.0.0.128/25` overlaps `10.0.0.0/24`", 7, 21, "give every subnet its own address range")),
    // subnet count must match zones
    (Line(5, "  zones: [eu-west-1a, eu-west-1b]\n  public_subnets: [10.0.0.0/24]"), Error("1 public_subnets for 2 zones; there must be one per zone", 6, 19, "give exactly 2 CIDRs in `public_subnets`, in the order of `zones`")),
    // zones
    (Line(5, "  zones: [eu-west-1a]"), Error("one availability zone given; a highly available stack needs at least 2", 5, 10, "list at least 2 zones of eu-west-1, e.g. `[eu-west-1a, eu-west-1b]`")),
    (Line(5, "  zones: [eu-west-1a, us-east-1b]"), Error("zone `us-east-1b` is not in the stack's region `eu-west-1`", 5, 23, "use a zone of eu-west-1: the region followed by a letter, e.g. `eu-west-1a`")),
    (Line(5, "  zones: [eu-west-1a, eu-west-1]"), Error("zone `eu-west-1` is not in the stack's region `eu-west-1`", 5, 23, "use a zone of eu-west-1: the region followed by a letter, e.g. `eu-west-1a`")),
    // existing network needs two subnets each
    (Edited(4, "  existing:\n    vpc_id: vpc-0123456789abcdef0\n    public_subnet_ids: [subnet-0123456789abcdef0]\n    private_subnet_ids: [subnet-1123456789abcdef0, subnet-2123456789abcdef0]", &[("  zones: [eu-west-1a, eu-west-1b]\n", "")]), Error("`network.existing.public_subnet_ids` lists 1 subnet(s); the ALB, database and cache need subnets in at least 2 zones", 6, 24, "list at least 2 subnets, each in a different availability zone")),
    // deregistration delay range
    (Line(21, "  deregistration_delay: 4000"), Error("`load_balancer.deregistration_delay` is 4000 seconds; it must be between 0 and 3600", 21, 25, "set `load_balancer.deregistration_delay` between 0 and 3600 (120 lets requests finish within a Spot reclaim's 2 minutes)")),
    (Line(21, "  deregistration_delay: -1"), Error("`load_balancer.deregistration_delay` is -1 seconds; it must be between 0 and 3600", 21, 25, "set `load_balancer.deregistration_delay` between 0 and 3600 (120 lets requests finish within a Spot reclaim's 2 minutes)")),
    // certificate and wwwroot scheme
    (Line(21, "  deregistration_delay: 120\n  certificate_arn: arn:aws:acm:eu-west-1:123456789012:certificate/abc"), Error("`moodle.wwwroot` is `http://moodle.example.org` (http) but the load balancer has a certificate", 24, 12, "write `https://moodle.example.org`")),
    (Line(23, "  wwwroot: https://moodle.example.org"), Error("`moodle.wwwroot` is `https://moodle.example.org` (https) but the load balancer has no certificate, so it serves HTTP only", 23, 12, "set `load_balancer.certificate_arn` to an ACM certificate of eu-west-1 (`--set load_balancer.certificate_arn=arn:aws:acm:...`), or use `http://moodle.example.org`")),
    (Edited(21, "  deregistration_delay: 120\n  certificate_arn: arn:aws:acm:us-east-1:123456789012:certificate/abc", &[("http://", "https://")]), Error("the certificate is in `us-east-1`, the stack in `eu-west-1`; an ALB uses certificates of its own region", 22, 20, "request or import the certificate in ACM in eu-west-1 and use that ARN")),
    // wwwroot must be a url
    (Line(23, "  wwwroot: moodle.example.org"), Error("`moodle.example.org` is not an http(s) URL", 23, 12, "write the site's URL with its scheme, e.g. `https://moodle.example.org`")),
    (Line(23, "  wwwroot: http://moodle.example.org/"), Error("`http://moodle.example.org/` ends with `/`; Moodle's wwwroot must not", 23, 12, "write `http://moodle.example.org`")),
    (Line(23, "  wwwroot: http://bad host"), Error("`http://bad host` is not a valid site URL", 23, 12, "write scheme and host name (and an optional path), e.g. `https://moodle.example.org`")),
    // web capacity bounds
    (Line(18, "  min: 5"), Error("`web.min` (5) is larger than `web.max` (4)", 18, 8, "lower `web.min` to at most 4 or raise `web.max` to at least 5")),
    (Line(18, "  min: -1"), Error("`web.min` is -1; it cannot be negative", 18, 8, "set `web.min` to 0 or more")),
    (Line(19, "  max: -2"), Error("`web.max` is -2; the fleet needs at least 1 instance", 19, 8, "set `web.max` to 1 or more")),
    (Line(19, "  max: 4\n  on_demand_base: 5"), Error("`web.on_demand_base` (5) is larger than `web.max` (4)", 20, 19, "set `web.on_demand_base` to at most 4")),
    (Line(19, "  max: 4\n  on_demand_percentage_above_base: 150"), Error("`web.on_demand_percentage_above_base` is 150 %; it must be between 0 and 100", 20, 36, "set `web.on_demand_percentage_above_base` between 0 and 100 (0: all Spot above the base)")),
    // web instance type count and families
    (Line(17, "  instance_types: [m6i.large]"), Error("the web fleet has 1 instance type(s); Spot needs at least 2 (3-6 across families is best)", 17, 19, "list 3-6 types of one architecture across families, e.g. `[m6i.large, c6i.xlarge, t3.large]`")),
    (Line(17, "  instance_types: [m6i.large, c6i.xlarge]"), Warning("the web fleet has only 2 instance types; Spot capacity is more reliable with 3-6", 17, 19, "add a type from another family, e.g. `t3.large` or `c6i.xlarge`")),
    (Line(17, "  instance_types: [m6i.large, m5.large, m7i.large]"), Warning("every web instance type is of the `m` class; one class shares Spot capacity pools", 17, 19, "mix families, e.g. `m`, `c` and `t` types of the same architecture")),
    (Line(17, "  instance_types: [m6i.large, c6i.large, t3.large, m5.large, c5.large, t3a.large, m6a.large]"), Warning("7 instance types; 3-6 are enough for deep Spot capacity", 17, 19, "keep the 3-6 types you prefer")),
    (Line(17, "  instance_types: [m6i.large, c6i.large, m6i.large]"), Error("instance type `m6i.large` is listed twice", 17, 42, "list each type once")),
    // unknown instance type suggests the closest
    (Line(17, "  instance_types: [m6i.large, c6i.xlarg, t3.large]"), Error("unknown instance type `c6i.xlarg`", 17, 31, "did you mean `c6i.xlarge`? (known types are listed in crates/stack/src/instance_types.rs)")),
    (Line(16, "stable:\n  instance_type: m6i.larg\nweb:"), Error("unknown instance type `m6i.larg`", 17, 18, "did you mean `m6i.large`? (known types are listed in crates/stack/src/instance_types.rs)")),
    // mixed architectures
    (Line(17, "  instance_types: [m6i.large, c7g.large, t3.large]"), Error("instance type `c7g.large` is arm64, the other web types are x86_64; one AMI cannot boot both", 17, 31, "replace `c7g.large` with an x86_64 type")),
    (Edited(17, "  instance_types: [m7g.large, c7g.large, t4g.large]", &[("ami:\n  id: ami-785db401\n", "ami:\n  ssm_parameter: /aws/service/canonical/ubuntu/server/24.04/stable/current/arm64/hvm/ebs-gp3/ami-id\n")]), Error("the stable instance type `m6i.large` (default) is x86_64, the web fleet is arm64; both boot the same AMI", 1, 1, "use an arm64 type for `stable.instance_type`")),
    // default ami parameter must match the fleet
    (Edited(17, "  instance_types: [m7g.large, c7g.large, t4g.large]\nstable:\n  instance_type: m7g.large", &[("ami:\n  id: ami-785db401\n", "")]), Error("the AMI parameter (default) names an x86_64 image, but the instance types are arm64", 1, 1, "set `ami.ssm_parameter: /aws/service/canonical/ubuntu/server/24.04/stable/current/arm64/hvm/ebs-gp3/ami-id`")),
    // spot allocation strategy values
    (Line(19, "  max: 4\n  spot_allocation_strategy: price-capacity-optimised"), Error("`price-capacity-optimised` is not a Spot allocation strategy", 20, 29, "did you mean `price-capacity-optimized`? Use one of `price-capacity-optimized`, `capacity-optimized`, `lowest-price`, `capacity-optimized-prioritized`")),
    // failover needs a replica
    (Line(14, "  replicas: 0"), Error("automatic failover needs a replica to promote, but `cache.replicas` is 0", 15, 23, "set `cache.replicas: 1` (or more), or `cache.automatic_failover: false`")),
    // replicas range
    (Line(14, "  replicas: 6"), Error("`cache.replicas` is 6; it must be between 0 and 5", 14, 13, "set `cache.replicas` between 0 and 5")),
    // auth needs transit encryption
    (Line(15, "  automatic_failover: true\n  transit_encryption: false"), Error("Redis AUTH needs TLS in transit, but `cache.transit_encryption` is false", 13, 1, "set `cache.transit_encryption: true`, or `cache.auth: false`")),
    (Line(15, "  automatic_failover: true\n  transit_encryption: false\n  auth: true"), Error("Redis AUTH needs TLS in transit, but `cache.transit_encryption` is false", 17, 9, "set `cache.transit_encryption: true`, or `cache.auth: false`")),
    // redis version
    (Line(15, "  automatic_failover: true\n  engine_version: \"5.0.6\""), Error("`5.0.6` is not a Redis version moodlestack supports", 16, 19, "use Redis 6.2 or 7.x (TLS with AUTH), e.g. `7.1`")),
    // backup retention range
    (Line(11, "  backup_retention_days: 0"), Error("`database.backup_retention_days` is 0 days; it must be between 1 and 35", 11, 26, "set `database.backup_retention_days` between 1 and 35 (7 is a good default)")),
    (Line(11, "  backup_retention_days: 36"), Error("`database.backup_retention_days` is 36 days; it must be between 1 and 35", 11, 26, "set `database.backup_retention_days` between 1 and 35 (7 is a good default)")),
    // storage bounds
    (Line(12, "  storage_gb: 10"), Error("`database.storage_gb` is 10 GiB; it must be between 20 and 65536", 12, 15, "set `database.storage_gb` between 20 and 65536")),
    (Line(12, "  storage_gb: 50\n  max_storage_gb: 40"), Error("`database.max_storage_gb` (40) must be at least 110 % of `database.storage_gb` (50: at least 55), or 0", 13, 19, "raise `max_storage_gb` to at least 110 % of `storage_gb` (RDS refuses less), or set it to 0 to turn storage autoscaling off")),
    (Line(12, "  storage_gb: 200\n  max_storage_gb: 210"), Error("`database.max_storage_gb` (210) must be at least 110 % of `database.storage_gb` (200: at least 220), or 0", 13, 19, "raise `max_storage_gb` to at least 110 % of `storage_gb` (RDS refuses less), or set it to 0 to turn storage autoscaling off")),
    // engine version matches the engine
    (Line(10, "  version: \"16\""), Error("`16` is not a mysql version moodlestack can run Moodle on", 10, 12, "set `database.version` to `8.0` or `8.4` (or a minor such as `8.0.39`), or change `database.engine`")),
    (Edited(9, "  engine: postgres", &[("version: \"8.0\"", "version: \"8.0\"  # wrong")]), Error("`8.0` is not a postgres version moodlestack can run Moodle on", 10, 12, "set `database.version` to `16` or `16.4` (13 to 17), or change `database.engine`")),
    (Edited(9, "  engine: mariadb", &[("version: \"8.0\"", "version: \"10.11\"")]), Clean),
    (Edited(9, "  engine: aurora-mysql", &[("version: \"8.0\"", "version: 8.0.mysql_aurora.3.08.0")]), Warning("`database.storage_gb` is ignored by Aurora (its storage grows automatically)", 12, 15, "remove `storage_gb`")),
    // db names
    (Line(12, "  storage_gb: 50\n  db_name: 1moodle\n  username: admin"), Error("database name `1moodle` is not valid for mysql", 13, 12, "use 1-64 letters, digits and underscores starting with a letter, e.g. `moodle`")),
    (Line(12, "  storage_gb: 50\n  db_name: 1moodle\n  username: admin"), Error("master user name `admin` is not valid for mysql", 14, 13, "use 1-16 letters, digits and underscores starting with a letter, not a reserved name, e.g. `moodleadmin`")),
    // efs modes
    (Line(12, "  storage_gb: 50\nfiles:\n  performance_mode: generalpurpose\n  throughput_mode: elasticc"), Error("`generalpurpose` is not an EFS performance mode", 14, 21, "did you mean `generalPurpose`? Use one of `generalPurpose`, `maxIO`")),
    (Line(12, "  storage_gb: 50\nfiles:\n  performance_mode: generalpurpose\n  throughput_mode: elasticc"), Error("`elasticc` is not an EFS throughput mode", 15, 20, "did you mean `elastic`? Use one of `elastic`, `bursting`")),
    (Line(12, "  storage_gb: 50\nfiles:\n  throughput_mode: provisioned"), Error("`provisioned` throughput needs a provisioned rate, which moodlestack does not manage", 14, 20, "use `elastic` (scales with demand, pay per use) or `bursting`")),
    (Line(12, "  storage_gb: 50\nfiles:\n  performance_mode: maxIO"), Error("elastic throughput is only available with the `generalPurpose` performance mode", 13, 1, "set `files.performance_mode: generalPurpose` (recommended for Moodle) or `files.throughput_mode: bursting`")),
    // backup schedule time zone and retention
    (Line(24, "  admin_email: admin@example.org\nbackup:\n  schedule: \"*/15 * * * *\"\n  time_zone: Europe/Madird\n  retention_days: 0"), Error("`*/15 * * * *` is not a backup schedule: the minute field `*/15` must be one number: AWS Backup runs a plan's rule at most once an hour", 26, 13, "write five fields, `minute hour day-of-month month day-of-week`, with one minute, e.g. `0 3 * * *` for every day at 03:00")),
    (Line(24, "  admin_email: admin@example.org\nbackup:\n  schedule: \"*/15 * * * *\"\n  time_zone: Europe/Madird\n  retention_days: 0"), Error("`Europe/Madird` is not an IANA time zone name", 27, 14, "did you mean `Europe/Madrid`? Use a name such as `Europe/Madrid` or `Etc/UTC`")),
    (Line(24, "  admin_email: admin@example.org\nbackup:\n  schedule: \"*/15 * * * *\"\n  time_zone: Europe/Madird\n  retention_days: 0"), Error("`backup.retention_days` is 0 days; it must be between 1 and 36500", 28, 19, "set `backup.retention_days` between 1 and 36500 (default 35)")),
    (Line(24, "  admin_email: admin@example.org\nbackup:\n  schedule: \"0 2 1 * MON\""), Error("`0 2 1 * MON` is not a backup schedule: both the day of month (`1`) and the day of week (`MON`) are restricted; AWS Backup takes one of them", 26, 13, "write five fields, `minute hour day-of-month month day-of-week`, with one minute, e.g. `0 3 * * *` for every day at 03:00")),
    (Line(24, "  admin_email: admin@example.org\nbackup:\n  enabled: false\n  schedule: nonsense"), Clean),
    // php version and git ref
    (Line(24, "  admin_email: admin@example.org\n  php_version: \"7.4\"\n  git_ref: \"\""), Error("PHP `7.4` is not supported", 25, 16, "use one of `8.1`, `8.2`, `8.3`, `8.4` (quote it: `php_version: \"8.3\"`)")),
    (Line(24, "  admin_email: admin@example.org\n  php_version: \"7.4\"\n  git_ref: \"\""), Error("`moodle.git_ref` `` is neither a release tag nor a commit id", 26, 12, "pin a release tag such as `v4.5.5` (or a full 40-character commit id)")),
    (Line(24, "  admin_email: admin@example.org\n  php_version: 8.10"), Error("PHP `8.10` is not supported", 25, 16, "use one of `8.1`, `8.2`, `8.3`, `8.4` (quote it: `php_version: \"8.3\"`)")),
    (Line(24, "  admin_email: admin@example.org\n  php_version: 8.4"), Error("Moodle 4.5 (`v4.5.5`) supports PHP 8.1 to 8.3, not 8.4", 25, 16, "use `8.1`, `8.2`, `8.3` (Ubuntu 24.04's own PHP is 8.3), or a Moodle release that supports PHP 8.4")),
    (Line(24, "  admin_email: admin@example.org\n  php_version: \"8.4\"\n  git_ref: v5.0.1\n  forcedcache_ref: 0123456789abcdef0123456789abcdef01234567"), Error("Moodle 5.0 (`v5.0.1`) needs mysql 8.4 or newer; the database is 8.0", 10, 12, "upgrade the database first (`database.version` to 8.4 or newer, applied before the Moodle upgrade), or stay on a Moodle release that supports 8.0")),
    (Edited(24, "  admin_email: admin@example.org\n  php_version: \"8.4\"\n  git_ref: v5.0.1\n  forcedcache_ref: 0123456789abcdef0123456789abcdef01234567", &[("version: \"8.0\"", "version: \"8.4\"")]), Clean),
    (Line(24, "  admin_email: admin@example.org\n  php_version: \"8.1\"\n  git_ref: v5.0.1\n  forcedcache_ref: 0123456789abcdef0123456789abcdef01234567"), Error("Moodle 5.0 (`v5.0.1`) supports PHP 8.2 to 8.4, not 8.1", 25, 16, "use `8.2`, `8.3`, `8.4` (Ubuntu 24.04's own PHP is 8.3), or a Moodle release that supports PHP 8.1")),
    (Line(24, "  admin_email: admin@example.org\n  git_ref: MOODLE_405_STABLE"), Error("`moodle.git_ref` `MOODLE_405_STABLE` is a branch: it moves (weekly builds), so nodes booted a week apart would run different code than the database", 25, 12, "pin a release tag such as `v4.5.5` (or a full 40-character commit id)")),
    (Line(24, "  admin_email: admin@example.org\n  git_ref: v4.4.3"), Error("moodle.forcedcache_ref: moodlestack pins tool_forcedcache only for Moodle 4.5 release tags; set the commit of the plugin's branch for `v4.4.3`", 25, 12, "set `moodle.forcedcache_ref`")),
    (Line(24, "  admin_email: admin@example.org\n  forcedcache_ref: MOODLE_405_STABLE"), Error("`moodle.forcedcache_ref` `MOODLE_405_STABLE` is not a tag or a full commit id", 25, 20, "pin a full 40-character commit id of the plugin's branch for your Moodle")),
    (Line(24, "  admin_email: admin@example.org\n  php_version: \"8.2\""), Clean),
    // moodle paths email and config
    (Line(24, "  admin_email: admin\n  dataroot: /var/www/moodle/data\n  config:\n    \"bad-key\": 1\n    theme: [a]"), Error("`admin` is not an e-mail address", 24, 16, "write an address such as `admin@example.org`")),
    (Line(24, "  admin_email: admin\n  dataroot: /var/www/moodle/data\n  config:\n    \"bad-key\": 1\n    theme: [a]"), Error("`moodle.dataroot` (`/var/www/moodle/data`) and `moodle.dirroot` (`/var/www/moodle`) overlap; Moodle refuses a dataroot reachable from the web", 25, 13, "keep them apart, e.g. `/var/moodledata` and `/var/www/moodle`")),
    (Line(24, "  admin_email: admin\n  dataroot: /var/www/moodle/data\n  config:\n    \"bad-key\": 1\n    theme: [a]"), Error("`bad-key` is not a `$CFG` setting name", 27, 5, "use a PHP identifier (letters, digits, underscores), e.g. `theme`")),
    (Line(24, "  admin_email: admin\n  dataroot: /var/www/moodle/data\n  config:\n    \"bad-key\": 1\n    theme: [a]"), Error("`moodle.config.theme` must be a string, a number or a boolean, found a list", 28, 12, "write a single value (a string, a number or a boolean) after `theme:`")),
    // reserved tags
    (Line(2, "region: eu-west-1\ntags:\n  moodlestack:stack: x"), Error("tag key `moodlestack:stack` is reserved (`aws:*` by AWS, `moodlestack:*` and `Name` by moodlestack)", 4, 3, "rename or remove this tag")),
    (Line(21, "  deregistration_delay: 120\n  health_check_interval: 2"), Error("`load_balancer.health_check_interval` is 2 seconds; it must be between 5 and 300", 22, 26, "set `load_balancer.health_check_interval` between 5 and 300")),
    (Line(21, "  deregistration_delay: 120\n  healthy_threshold: 11"), Error("`load_balancer.healthy_threshold` is 11; it must be between 2 and 10", 22, 22, "set `load_balancer.healthy_threshold` between 2 and 10")),
    (Line(21, "  deregistration_delay: 120\n  idle_timeout: 0"), Error("`load_balancer.idle_timeout` is 0 seconds; it must be between 1 and 4000", 22, 17, "set `load_balancer.idle_timeout` between 1 and 4000")),
    (Line(21, "  deregistration_delay: 120\n  health_check_path: login"), Error("`login` is not a URL path", 22, 22, "write a path starting with `/`, e.g. `/login/index.php`")),
    (Line(21, "  deregistration_delay: 120\n  certificate_arn: arn:aws:iam::123456789012:server-certificate/x"), Error("`arn:aws:iam::123456789012:server-certificate/x` is not an ACM certificate ARN", 22, 20, "write the ARN ACM shows, e.g. `arn:aws:acm:eu-west-1:123456789012:certificate/<id>`")),
    (Line(19, "  max: 4\n  root_volume_gb: 4"), Error("`web.root_volume_gb` is 4 GiB; it must be between 8 and 16384", 20, 19, "set `web.root_volume_gb` between 8 and 16384")),
    (Line(19, "  max: 4\n  on_demand_base: -1"), Error("`web.on_demand_base` is -1; it cannot be negative", 20, 19, "set it to 0 or more")),
    (Line(16, "stable:\n  instance_type: m6i.large\n  root_volume_gb: 5\nweb:"), Error("`stable.root_volume_gb` is 5 GiB; it must be between 8 and 16384", 18, 19, "set `stable.root_volume_gb` between 8 and 16384")),
    (Line(7, "  id: ami-12345"), Error("`ami-12345` is not an AMI id", 7, 7, "write an id such as `ami-0123456789abcdef0`, or remove `id` to use `ssm_parameter`")),
    (Line(7, "  ssm_parameter: aws/service/x"), Error("`aws/service/x` is not an SSM parameter path", 7, 18, "write a path starting with `/`, e.g. `/aws/service/canonical/ubuntu/server/24.04/stable/current/amd64/hvm/ebs-gp3/ami-id`")),
    (Line(14, "  replicas: 1\n  node_type: t4g.small"), Error("`t4g.small` is not an ElastiCache node type", 15, 14, "write a node type such as `cache.t4g.small` or `cache.r7g.large`")),
    (Line(10, "  version: \"8.0\"\n  instance_class: t4g.medium"), Error("`t4g.medium` is not an RDS instance class", 11, 19, "write a class such as `db.t4g.medium` or `db.r7g.large`")),
    (Line(12, "  storage_gb: 50\n  max_storage_gb: 70000"), Error("`database.max_storage_gb` is 70000 GiB; it must be between 0 and 65536", 13, 19, "set `database.max_storage_gb` between 0 and 65536")),
    (Line(12, "  storage_gb: 50\n  parameters:\n    \"max connections\": \"100\""), Error("`max connections` is not a database parameter name", 14, 5, "use the parameter's name as RDS lists it, e.g. `max_connections`")),
    (Line(24, "  admin_email: admin@example.org\n  git_url: ftp://example.org/moodle.git"), Error("`ftp://example.org/moodle.git` is not a git repository URL", 25, 12, "write an https URL, e.g. `https://github.com/moodle/moodle.git`")),
    (Line(24, "  admin_email: admin@example.org\n  prefix: MDL-"), Error("table prefix `MDL-` is not valid", 25, 11, "use 1-10 lower-case letters, digits and underscores, e.g. `mdl_`")),
    (Line(24, "  admin_email: admin@example.org\n  dirroot: var/www/moodle"), Error("`var/www/moodle` is not an absolute path", 25, 12, "write an absolute path without spaces or quotes, e.g. `/var/www/moodle`")),
    (Line(24, "  admin_email: admin@example.org\n  config:\n    wwwroot: http://x"), Error("`$CFG->wwwroot` is set by moodlestack", 26, 5, "remove it from `moodle.config`; set the matching stack field instead")),
    (Line(5, "  zones: [eu-west-1a, eu-west-1a]"), Error("zone `eu-west-1a` is listed twice", 5, 23, "list each zone once")),
    (Line(5, "  zones: [eu-west-1a, eu-west-1b]\n  public_subnets: [10.0.0.0/24, 10.0.1.1/24]"), Error("subnet `10.0.1.1/24` has host bits set", 6, 33, "write the network address: `10.0.1.0/24`")),
    (Line(5, "  zones: [eu-west-1a, eu-west-1b]\n  public_subnets: [10.0.0.0/24, 10.0.1.0/29]"), Error("subnet `10.0.1.0/29` is a /29; AWS allows /16 to /28", 6, 33, "use a subnet prefix between /16 and /28")),
    (Line(5, "  zones: [eu-west-1a, eu-west-1b]\n  admin_cidrs: [203.0.113.7]"), Error("`203.0.113.7` is not a CIDR (expected `a.b.c.d/len`, e.g. `10.0.0.0/16`)", 6, 17, "write an IPv4 CIDR such as `203.0.113.7/32`")),
    (Line(2, "region: eu-west-1\ntags:\n  aws:owner: me"), Error("tag key `aws:owner` is reserved (`aws:*` by AWS, `moodlestack:*` and `Name` by moodlestack)", 4, 3, "rename or remove this tag")),
    // existing network ids
    (Line(4, "  existing:\n    vpc_id: vpc1\n    public_subnet_ids: [subnet-0123456789abcdef0, subnet-0123456789abcdef0]\n    private_subnet_ids: [subnet-0123456789abcdef0, subnet-x]"), Error("`vpc1` is not a VPC id", 5, 13, "write the id of the VPC, e.g. `vpc-0123456789abcdef0`")),
    (Line(4, "  existing:\n    vpc_id: vpc1\n    public_subnet_ids: [subnet-0123456789abcdef0, subnet-0123456789abcdef0]\n    private_subnet_ids: [subnet-0123456789abcdef0, subnet-x]"), Error("subnet `subnet-0123456789abcdef0` is listed twice", 6, 51, "list each subnet once")),
    (Line(4, "  existing:\n    vpc_id: vpc1\n    public_subnet_ids: [subnet-0123456789abcdef0, subnet-0123456789abcdef0]\n    private_subnet_ids: [subnet-0123456789abcdef0, subnet-x]"), Error("subnet `subnet-0123456789abcdef0` is listed as both public and private", 7, 26, "use separate subnets: public ones route to an internet gateway, private ones do not")),
    (Line(4, "  existing:\n    vpc_id: vpc1\n    public_subnet_ids: [subnet-0123456789abcdef0, subnet-0123456789abcdef0]\n    private_subnet_ids: [subnet-0123456789abcdef0, subnet-x]"), Error("`subnet-x` is not a subnet id", 7, 52, "write a subnet id, e.g. `subnet-0123456789abcdef0`")),
    (Line(4, "  existing:\n    vpc_id: vpc1\n    public_subnet_ids: [subnet-0123456789abcdef0, subnet-0123456789abcdef0]\n    private_subnet_ids: [subnet-0123456789abcdef0, subnet-x]"), Warning("`network.zones` is ignored because `network.existing` is set", 8, 10, "remove `zones`; the existing VPC's own settings apply")),
    // scaling rules
    (Line(19, "  max: 4\n  scaling:\n    metric: memory\n    warmup: 7200"), Error("`memory` is not a scaling metric", 21, 13, "did you mean `cpu`? Use one of `cpu`, `requests`")),
    (Line(19, "  max: 4\n  scaling:\n    metric: memory\n    warmup: 7200"), Error("`web.scaling.warmup` is 7200 seconds; it must be between 0 and 3600", 22, 13, "set `web.scaling.warmup` between 0 and 3600 (how long a new node takes to become healthy, docs/nodes.md: 420)")),
    (Line(19, "  max: 4\n  scaling:\n    target: 150"), Error("`web.scaling.target` is 150 %; it must be between 1 and 100", 21, 13, "set `web.scaling.target` between 1 and 100 (average CPU of the group)")),
    (Line(19, "  max: 4\n  scaling:\n    metric: requests\n    target: 2000"), Clean),
    (Line(19, "  max: 4\n  scaling:\n    enabled: false"), Clean),
    // schedule rules
    (Schedule(&[EXAM_WEEK, EXAM_END_UTC, EXAM_END_UNBOUNDED]), Error("`exam week` is not a scheduled action name", 21, 13, "use 1 to 200 letters, digits, hyphens and underscores (e.g. `exam-week-start`)")),
    (Schedule(&[EXAM_WEEK, EXAM_END_UTC, EXAM_END_UNBOUNDED]), Error("`0 6 * * MONDAY` is not a cron recurrence: the day of week field `MONDAY`: `MONDAY` is \
         not a number or a name (SUN, MON, TUE, WED, THU, FRI, SAT)", 22, 19, "write five fields, `minute hour day-of-month month day-of-week`, e.g. `0 6 * * 1` for Mondays at 06:00")),
    (Schedule(&[EXAM_WEEK, EXAM_END_UTC, EXAM_END_UNBOUNDED]), Error("`Europe/Madird` is not an IANA time zone name", 23, 18, "did you mean `Europe/Madrid`? Use a name such as `Europe/Madrid` or `Etc/UTC`")),
    (Schedule(&[EXAM_WEEK, EXAM_END_UTC, EXAM_END_UNBOUNDED]), Error("scheduled action `exam week`: `min` is larger than `desired` (min 3, desired 2, max 6)", 24, 12, "make min <= desired <= max")),
    (Schedule(&[EXAM_WEEK, EXAM_END_UTC, EXAM_END_UNBOUNDED]), Error("scheduled action `exam week`: `max` (6) is above `web.max` (4)", 25, 12, "lower `max` to at most 4, or raise `web.max`: the schedule moves the group inside web.min..web.max")),
    (Schedule(&[EXAM_WEEK, EXAM_END_UTC, EXAM_END_UNBOUNDED]), Error("`UTC` is an alias; Auto Scaling takes canonical IANA time zone names", 29, 18, "write `Etc/UTC`")),
    (Schedule(&[EXAM_WEEK, EXAM_END_UTC, EXAM_END_UNBOUNDED]), Error("scheduled action `exam-end`: `min` (0) is below `web.min` (1)", 30, 12, "raise `min` to at least 1, or lower `web.min`: the schedule moves the group inside web.min..web.max")),
    (Schedule(&[EXAM_WEEK, EXAM_END_UTC, EXAM_END_UNBOUNDED]), Error("two scheduled actions are named `exam-end`", 32, 13, "give each action of `web.schedule` its own name")),
    (Schedule(&[EXAM_WEEK, EXAM_END_UTC, EXAM_END_UNBOUNDED]), Error("scheduled action `exam-end`: `desired` is larger than `web.max` (min 1, desired 5, max 4)", 35, 16, "make min <= desired <= max")),
    // a schedule that never comes back is a warning
    (Schedule(&[EXAMS]), Warning("scheduled action `exams` raises the group's minimum to 3, and no action brings it back \
         to `web.min` (1)", 23, 12, "add an action with `min: 1` for when the busy period ends (e.g. the evening of the last exam day)")),
    (Schedule(&[EXAMS, AFTER_EXAMS]), Clean),
    (Schedule(&[QUIET, TERM]), Warning("scheduled action `quiet` lowers the group's maximum to 2, and no action brings it back \
         to `web.max` (4)", 24, 12, "add `max: 4` to the action that ends the period, or leave `max` out of the actions")),
    // restore from names a snapshot of the database (a cluster snapshot for Aurora)
    (Line(12, "  storage_gb: 50\n  restore_from: demo-code-v4-5-6-php8-3"), Clean),
    (Line(12, "  storage_gb: 50\n  restore_from: rds:demo-db-2026-12-01-05-42"), Clean),
    (Line(12, "  storage_gb: 50\n  restore_from: 1-bad_name"), Error("`1-bad_name` is not an RDS DB snapshot identifier", 13, 17, "name a snapshot `moodlestack backups` lists (letters, digits and hyphens, a letter first)")),
    (Edited(9, "  engine: aurora-mysql", &[("version: \"8.0\"", "version: 8.0.mysql_aurora.3.08.0"), ("storage_gb: 50", "restore_from: demo-code-v4-5-6-php8-3")]), Clean),
    (Edited(9, "  engine: aurora-mysql", &[("version: \"8.0\"", "version: 8.0.mysql_aurora.3.08.0"), ("storage_gb: 50", "restore_from: 1-bad_name")]), Error("`1-bad_name` is not an RDS DB cluster snapshot identifier", 12, 17, "name a snapshot `moodlestack backups` lists (letters, digits and hyphens, a letter first)")),
    // log retention must be one cloudwatch offers
    (After("observability:\n  log_retention_days: 45\n"), Error("45 days is not a retention CloudWatch Logs offers", 26, 23, "did you mean 30? Use one of 1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653")),
    (After("observability:\n  log_retention_days: 90\n"), Clean),
    // alert emails and thresholds are checked where they are written
    (After("observability:\n  alert_emails: [ops@example.org, not-an-address, OPS@example.org]\n  \
         thresholds:\n    db_cpu_percent: 120\n    cron_heartbeat_minutes: 12\n"), Error("`not-an-address` is not an e-mail address", 26, 35, "write one address per item, e.g. `ops@example.org`")),
    (After("observability:\n  alert_emails: [ops@example.org, not-an-address, OPS@example.org]\n  \
         thresholds:\n    db_cpu_percent: 120\n    cron_heartbeat_minutes: 12\n"), Error("`OPS@example.org` is listed twice", 26, 51, "list each address once")),
    (After("observability:\n  alert_emails: [ops@example.org, not-an-address, OPS@example.org]\n  \
         thresholds:\n    db_cpu_percent: 120\n    cron_heartbeat_minutes: 12\n"), Error("`db_cpu_percent` is 120; a percentage must be above 0 and at most 100", 28, 21, "set `observability.thresholds.db_cpu_percent` between 0 and 100, or remove it for the default")),
    (After("observability:\n  alert_emails: [ops@example.org, not-an-address, OPS@example.org]\n  \
         thresholds:\n    db_cpu_percent: 120\n    cron_heartbeat_minutes: 12\n"), Error("12 minutes is not a whole number of the alarm's 5-minute periods", 29, 29, "use a multiple of 5, e.g. 10")),
];

#[test]
fn every_rule() {
    for (stack, expected) in CASES {
        expected.check(&stack.yaml());
    }
}

#[test]
fn base_is_valid() {
    let (diags, _) = diagnostics(BASE, &LoadOptions::default());
    assert!(diags.is_empty(), "{diags:?}");
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

/// The ElastiCache limit (40) binds first for longer names.
#[test]
fn derived_names_aws_would_reject() {
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
fn set_overrides_are_applied_and_checked() {
    let o = options(
        Some("ci-branch-42"),
        &[
            "web.max=8",
            "web.instance_types=[m6i.large, c6i.large, t3.large]",
        ],
    );
    let loaded = load_str("test.yaml", BASE, &o).unwrap();
    assert_eq!(loaded.stack.name, "ci-branch-42");
    assert_eq!(loaded.stack.web.max, 8);
    assert_eq!(
        loaded.stack.web.instance_types,
        vec!["m6i.large", "c6i.large", "t3.large"]
    );
    let o = options(None, &["web.instance_types[1]=c5.large", "tags.Team=lms"]);
    let loaded = load_str("test.yaml", BASE, &o).unwrap();
    assert_eq!(loaded.stack.web.instance_types[1], "c5.large");
    assert_eq!(loaded.stack.tags["Team"], "lms");
}

#[test]
fn problems_in_overrides_point_at_the_argument() {
    let o = options(None, &["web.max=-1"]);
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

    let o = options(Some("Bad_Name"), &[]);
    let (diags, sources) = diagnostics(BASE, &o);
    assert_eq!(
        diags[0].location(&sources),
        "argument `--name Bad_Name` (column 8)"
    );

    let o = options(
        None,
        &["web.instance_types=[m6i.large, c6i.large, m7g.large]"],
    );
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
    let o = options(None, &["web.maxx=3"]);
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
    let o = options(None, &["load_balancer.deregistration=3"]);
    let (diags, _) = diagnostics(BASE, &o);
    assert_eq!(
        diags[0].fix,
        "did you mean `load_balancer.deregistration_delay`?"
    );
    let o = options(None, &["web.max"]);
    let (diags, _) = diagnostics(BASE, &o);
    assert_eq!(diags[0].message, "`--set web.max` has no `=`");
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
