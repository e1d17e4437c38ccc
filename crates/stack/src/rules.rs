//! Semantic validation: the rules a structurally valid stack must also meet before any AWS call.
//! Each problem is located at the field it is about (or, for a defaulted field, at the section
//! that would hold it) and names the fix.
//!
//! Severity policy for the web fleet's instance types: fewer than 2 is an error (one Spot pool
//! is one reclaim away from an empty fleet); exactly 2, more than 6, or all of one class
//! (`m`, `c`, `t`, ...) are warnings (Spot capacity is deepest with 3-6 types across families);
//! more than 40 (the Auto Scaling limit) and duplicates are errors.

use crate::diag::{nearest, Diagnostic, Span};
use crate::instance_types::{self, Arch};
use crate::names::Names;
use crate::structure::PathMap;
use crate::{Engine, NatGateways, Stack};
use std::net::Ipv4Addr;

/// The Spot allocation strategies the Auto Scaling group accepts.
pub const SPOT_STRATEGIES: &[&str] = &[
    "price-capacity-optimized",
    "capacity-optimized",
    "lowest-price",
    "capacity-optimized-prioritized",
];
/// The metrics `web.scaling` tracks: `cpu` (ASGAverageCPUUtilization), `requests`
/// (ALBRequestCountPerTarget).
pub const SCALING_METRICS: &[&str] = &["cpu", "requests"];
/// PHP versions the node setup supports.
pub const PHP_VERSIONS: &[&str] = &["8.1", "8.2", "8.3", "8.4"];

pub(crate) struct Rules<'a> {
    pub stack: &'a Stack,
    pub paths: &'a PathMap,
    pub diags: Vec<Diagnostic>,
}

/// An IPv4 CIDR.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cidr {
    pub addr: u32,
    pub len: u32,
}

impl Cidr {
    pub fn parse(s: &str) -> Result<Cidr, String> {
        let Some((a, l)) = s.split_once('/') else {
            return Err(format!(
                "`{s}` is not a CIDR (expected `a.b.c.d/len`, e.g. `10.0.0.0/16`)"
            ));
        };
        let addr: Ipv4Addr = a
            .parse()
            .map_err(|_| format!("`{a}` in `{s}` is not an IPv4 address"))?;
        let len: u32 = l
            .parse()
            .ok()
            .filter(|l| *l <= 32)
            .ok_or_else(|| format!("`/{l}` in `{s}` is not a prefix length (0-32)"))?;
        Ok(Cidr {
            addr: u32::from(addr),
            len,
        })
    }
    fn mask(self) -> u32 {
        if self.len == 0 {
            0
        } else {
            u32::MAX << (32 - self.len)
        }
    }
    pub fn network(self) -> Cidr {
        Cidr {
            addr: self.addr & self.mask(),
            len: self.len,
        }
    }
    pub fn first(self) -> u64 {
        u64::from(self.addr & self.mask())
    }
    pub fn last(self) -> u64 {
        self.first() + (1u64 << (32 - self.len)) - 1
    }
    pub fn contains(self, other: Cidr) -> bool {
        other.first() >= self.first() && other.last() <= self.last()
    }
    pub fn overlaps(self, other: Cidr) -> bool {
        self.first() <= other.last() && other.first() <= self.last()
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", Ipv4Addr::from(self.addr), self.len)
    }
}

/// A service's naming rule for a derived name.
struct NameRule {
    what: &'static str,
    max: usize,
    /// RDS/ElastiCache style: letters, digits, hyphens; letter first; no `--`; no trailing `-`.
    rds_style: bool,
    /// ELB style: alphanumerics and hyphens, not starting or ending with `-`.
    elb_style: bool,
    /// ALB: must not start with `internal-`.
    no_internal_prefix: bool,
}

/// What is wrong with `name` under `rule` (empty: nothing).
fn name_violations(name: &str, rule: &NameRule) -> Vec<String> {
    let mut v = Vec::new();
    let len = name.chars().count();
    if len > rule.max {
        v.push(format!("{len} characters, at most {} allowed", rule.max));
    }
    if rule.rds_style {
        if !name.chars().next().is_some_and(|c| c.is_ascii_alphabetic()) {
            v.push("must start with a letter".into());
        }
        if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
            v.push("only letters, digits and hyphens are allowed".into());
        }
        if name.contains("--") {
            v.push("must not contain two consecutive hyphens".into());
        }
        if name.ends_with('-') {
            v.push("must not end with a hyphen".into());
        }
    }
    if rule.elb_style {
        if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
            v.push("only letters, digits and hyphens are allowed".into());
        }
        if name.starts_with('-') || name.ends_with('-') {
            v.push("must not start or end with a hyphen".into());
        }
    }
    if rule.no_internal_prefix && name.starts_with("internal-") {
        v.push("must not start with `internal-`".into());
    }
    v
}

/// A database or master user name RDS accepts: 1 to `max` letters, digits and underscores,
/// starting with a letter.
fn is_db_identifier(s: &str, max: usize) -> bool {
    !s.is_empty()
        && s.chars().count() <= max
        && s.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// A PHP identifier (a `$CFG` setting name): a letter or `_`, then letters, digits and `_`.
pub fn is_php_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// A plausible AWS region: `eu-west-1`, `us-gov-west-1`, `ap-southeast-2`.
pub fn is_region(r: &str) -> bool {
    let parts: Vec<&str> = r.split('-').collect();
    parts.len() >= 3
        && parts.len() <= 4
        && parts[0].len() == 2
        && parts[0].chars().all(|c| c.is_ascii_lowercase())
        && parts[1..parts.len() - 1]
            .iter()
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_lowercase()))
        && parts[parts.len() - 1].parse::<u8>().is_ok()
}

fn is_hex_id(s: &str, prefix: &str) -> bool {
    s.strip_prefix(prefix).is_some_and(|h| {
        (h.len() == 8 || h.len() == 17)
            && h.chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
    })
}

/// The retention periods CloudWatch Logs accepts (PutRetentionPolicy's `retentionInDays`).
pub const LOG_RETENTION_DAYS: &[i64] = &[
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922,
    3288, 3653,
];

/// A plausible e-mail address: one `@`, a local part, and a domain with a dot, no spaces.
fn is_email(s: &str) -> bool {
    let Some((local, domain)) = s.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !s.chars().any(|c| c.is_whitespace() || c.is_control())
}

fn list(items: &[&str]) -> String {
    items
        .iter()
        .map(|i| format!("`{i}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

impl<'a> Rules<'a> {
    pub fn new(stack: &'a Stack, paths: &'a PathMap) -> Self {
        Rules {
            stack,
            paths,
            diags: Vec::new(),
        }
    }

    /// Warns about each of `fields` of `section` the file gives: "`section.field` is ignored
    /// `why`", fixed by removing it (`and` says more).
    fn warn_ignored(&mut self, section: &str, fields: &[&str], why: &str, and: &str) {
        for field in fields {
            let path = format!("{section}.{field}");
            if self.paths.given(&path) {
                self.warn(
                    &path,
                    format!("`{path}` is ignored {why}"),
                    format!("remove `{field}`{and}"),
                );
            }
        }
    }

    /// Where the key of `path` is written, else where `fallback` is.
    fn key_span(&self, path: &str, fallback: &str) -> Option<Span> {
        self.paths
            .get(path)
            .and_then(|l| l.key)
            .or_else(|| self.paths.locate(fallback))
    }

    /// A located error about `path` (also involving `also`).
    fn error_at(&mut self, path: &str, span: Option<Span>, message: String, fix: String) {
        let mut d = Diagnostic::error(message, span, fix);
        d.paths.push(path.to_string());
        self.diags.push(d);
    }
    fn error(&mut self, path: &str, message: String, fix: String) {
        let span = self.paths.locate(path);
        self.error_at(path, span, message, fix);
    }
    fn warn(&mut self, path: &str, message: String, fix: String) {
        let mut d = Diagnostic::warning(message, self.paths.locate(path), fix);
        d.paths.push(path.to_string());
        self.diags.push(d);
    }
    fn range(&mut self, path: &str, value: i64, lo: i64, hi: i64, unit: &str, fix: &str) {
        if value < lo || value > hi {
            let unit = if unit.is_empty() {
                String::new()
            } else {
                format!(" {unit}")
            };
            self.error(
                path,
                format!("`{path}` is {value}{unit}; it must be between {lo} and {hi}"),
                format!("set `{path}` between {lo} and {hi}{fix}"),
            );
        }
    }
    /// `(default)` when `path` was not given.
    /// Errors unless `value` is one of `allowed`: "`value` is not {what}", suggesting the
    /// nearest and listing them all.
    fn one_of(&mut self, path: &str, value: &str, allowed: &[&str], what: &str) {
        if allowed.contains(&value) {
            return;
        }
        let s = nearest(value, allowed.iter().copied()).unwrap_or(allowed[0]);
        self.error(
            path,
            format!("`{value}` is not {what}"),
            format!("did you mean `{s}`? Use one of {}", list(allowed)),
        );
    }

    fn dflt(&self, path: &str) -> &'static str {
        if self.paths.given(path) {
            ""
        } else {
            " (default)"
        }
    }

    pub fn run(mut self) -> Vec<Diagnostic> {
        self.name();
        self.region();
        self.tags();
        self.network();
        self.ami();
        self.database();
        self.files();
        self.backup();
        self.cache();
        self.instances();
        self.scaling();
        self.load_balancer();
        self.moodle();
        self.observability();
        self.diags
    }

    fn name(&mut self) {
        let name = self.stack.name.clone();
        let mut problems = Vec::new();
        if name.is_empty() {
            problems.push("it is empty".to_string());
        } else {
            if !name.chars().next().is_some_and(|c| c.is_ascii_lowercase()) {
                problems.push("it must start with a lower-case letter".into());
            }
            if !name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            {
                problems.push("only lower-case letters, digits and hyphens are allowed".into());
            }
            if name.ends_with('-') {
                problems.push("it must not end with a hyphen".into());
            }
            if name.contains("--") {
                problems.push("it must not contain two consecutive hyphens".into());
            }
        }
        let charset_ok = problems.is_empty();
        if !charset_ok {
            let suggestion = suggest_name(&name, 28);
            self.error(
                "name",
                format!("stack name `{name}` is not valid: {}", problems.join("; ")),
                format!(
                    "use lower-case letters, digits and single hyphens, starting with a letter, \
                     e.g. `{suggestion}` (or `--name {suggestion}`)"
                ),
            );
        }
        // Every derived name, checked against the service that receives it.
        let n = Names::for_stack(&name, &self.stack.region);
        let rds = |what| NameRule {
            what,
            max: 63,
            rds_style: true,
            elb_style: false,
            no_internal_prefix: false,
        };
        let checks: Vec<(String, NameRule)> = vec![
            (
                n.db_identifier(),
                rds(if self.stack.database.engine.is_aurora() {
                    "RDS cluster identifier"
                } else {
                    "RDS instance identifier"
                }),
            ),
            (n.db_member(2), rds("Aurora member instance identifier")),
            (
                n.db_final_snapshot(9_999_999_999),
                NameRule {
                    max: 255,
                    ..rds("final DB snapshot identifier")
                },
            ),
            (
                n.db_parameter_group(&self.stack.database.parameter_family()),
                NameRule {
                    max: 255,
                    ..rds("DB parameter group name")
                },
            ),
            (
                n.cache_replication_group(),
                NameRule {
                    max: 40,
                    ..rds("ElastiCache replication group id")
                },
            ),
            (
                n.cache_subnet_group(),
                NameRule {
                    max: 255,
                    ..rds("ElastiCache subnet group name")
                },
            ),
            (
                n.load_balancer(),
                NameRule {
                    what: "load balancer name",
                    max: 32,
                    rds_style: false,
                    elb_style: true,
                    no_internal_prefix: true,
                },
            ),
            (
                n.target_group(),
                NameRule {
                    what: "target group name",
                    max: 32,
                    rds_style: false,
                    elb_style: true,
                    no_internal_prefix: false,
                },
            ),
            (
                n.node_role(),
                NameRule {
                    what: "IAM role name",
                    max: 64,
                    rds_style: false,
                    elb_style: false,
                    no_internal_prefix: false,
                },
            ),
            (
                // Account ids are always 12 digits.
                n.code_bucket("123456789012"),
                NameRule {
                    what: "S3 bucket name",
                    max: 63,
                    rds_style: false,
                    elb_style: false,
                    no_internal_prefix: false,
                },
            ),
            (
                n.efs_creation_token(),
                NameRule {
                    what: "EFS creation token",
                    max: 64,
                    rds_style: false,
                    elb_style: false,
                    no_internal_prefix: false,
                },
            ),
        ];
        let mut broken = Vec::new();
        let mut max_len = usize::MAX;
        for (derived, rule) in &checks {
            let mut v = name_violations(derived, rule);
            if !charset_ok {
                // The character problems are reported above; keep the length ones.
                v.retain(|p| p.contains("characters") || p.contains("internal-"));
            }
            if !v.is_empty() {
                broken.push(format!("{} `{derived}`: {}", rule.what, v.join("; ")));
                if derived.chars().count() > rule.max {
                    let suffix = derived.chars().count() - name.chars().count();
                    max_len = max_len.min(rule.max.saturating_sub(suffix));
                }
            }
        }
        if !broken.is_empty() {
            let fix = if max_len != usize::MAX {
                let s = suggest_name(&name, max_len);
                format!("use a stack name of at most {max_len} characters, e.g. `--name {s}`")
            } else {
                let s = suggest_name(name.trim_start_matches("internal-"), 28);
                format!("choose another stack name, e.g. `--name {s}`")
            };
            self.error(
                "name",
                format!(
                    "stack name `{name}` makes names AWS would reject: {}",
                    broken.join(", ")
                ),
                fix,
            );
        }
    }

    fn region(&mut self) {
        let r = self.stack.region.clone();
        if !is_region(&r) {
            self.error(
                "region",
                format!("`{r}` is not an AWS region name"),
                "write a region code such as `eu-west-1` or `us-east-1`".into(),
            );
        }
    }

    fn tags(&mut self) {
        let tags = self.stack.tags.clone();
        if tags.len() > 40 {
            self.error(
                "tags",
                format!(
                    "{} extra tags; AWS allows 50 per resource and moodlestack uses up to 10",
                    tags.len()
                ),
                "keep at most 40 extra tags".into(),
            );
        }
        for (k, v) in &tags {
            let path = format!("tags.{k}");
            let span = self.key_span(&path, "tags");
            if k.is_empty() || k.chars().count() > 128 {
                self.error_at(
                    &path,
                    span,
                    format!("tag key `{k}` must be 1-128 characters"),
                    "shorten the tag key".into(),
                );
            }
            if k.to_lowercase().starts_with("aws:") || k.starts_with("moodlestack:") || k == "Name"
            {
                self.error_at(
                    &path,
                    span,
                    format!("tag key `{k}` is reserved (`aws:*` by AWS, `moodlestack:*` and `Name` by moodlestack)"),
                    "rename or remove this tag".into(),
                );
            }
            if v.chars().count() > 256 {
                self.error(
                    &path,
                    format!("the value of tag `{k}` is longer than 256 characters"),
                    "shorten the tag value".into(),
                );
            }
        }
    }

    fn network(&mut self) {
        let net = self.stack.network.clone();
        for (i, c) in net.admin_cidrs.iter().enumerate() {
            let path = format!("network.admin_cidrs[{i}]");
            match Cidr::parse(c) {
                Err(e) => self.error(&path, e, "write an IPv4 CIDR such as `203.0.113.7/32`".into()),
                Ok(cidr) if cidr.len == 0 => self.warn(
                    &path,
                    format!("`{c}` opens SSH (port 22) to the whole internet"),
                    "allow only your office or VPN range, or leave `admin_cidrs` empty and use SSM Session Manager".into(),
                ),
                Ok(cidr) if cidr.network() != cidr => self.error(
                    &path,
                    format!("`{c}` has host bits set"),
                    format!("write the network address: `{}`", cidr.network()),
                ),
                Ok(_) => {}
            }
        }
        if let Some(ex) = &net.existing {
            let fields = [
                "cidr",
                "zones",
                "public_subnets",
                "private_subnets",
                "nat_gateways",
            ];
            self.warn_ignored(
                "network",
                &fields,
                "because `network.existing` is set",
                "; the existing VPC's own settings apply",
            );
            if !ex.vpc_id.starts_with("vpc-") || ex.vpc_id.len() < 8 {
                self.error(
                    "network.existing.vpc_id",
                    format!("`{}` is not a VPC id", ex.vpc_id),
                    "write the id of the VPC, e.g. `vpc-0123456789abcdef0`".into(),
                );
            }
            for (field, ids) in [
                ("public_subnet_ids", &ex.public_subnet_ids),
                ("private_subnet_ids", &ex.private_subnet_ids),
            ] {
                let path = format!("network.existing.{field}");
                if ids.len() < 2 {
                    self.error(
                        &path,
                        format!("`{path}` lists {} subnet(s); the ALB, database and cache need subnets in at least 2 zones", ids.len()),
                        "list at least 2 subnets, each in a different availability zone".into(),
                    );
                }
                for (i, id) in ids.iter().enumerate() {
                    let p = format!("{path}[{i}]");
                    if !id.starts_with("subnet-") || id.len() < 11 {
                        self.error(
                            &p,
                            format!("`{id}` is not a subnet id"),
                            "write a subnet id, e.g. `subnet-0123456789abcdef0`".into(),
                        );
                    }
                    if ids[..i].contains(id) {
                        self.error(
                            &p,
                            format!("subnet `{id}` is listed twice"),
                            "list each subnet once".into(),
                        );
                    }
                }
            }
            for (i, id) in ex.private_subnet_ids.iter().enumerate() {
                if ex.public_subnet_ids.contains(id) {
                    self.error(
                        &format!("network.existing.private_subnet_ids[{i}]"),
                        format!("subnet `{id}` is listed as both public and private"),
                        "use separate subnets: public ones route to an internet gateway, private ones do not".into(),
                    );
                }
            }
            return;
        }

        // The VPC moodlestack creates.
        let vpc = match Cidr::parse(&net.cidr) {
            Err(e) => {
                self.error(
                    "network.cidr",
                    e,
                    "write the VPC's IPv4 CIDR, e.g. `10.0.0.0/16`".into(),
                );
                None
            }
            Ok(c) if c.len < 16 || c.len > 28 => {
                self.error(
                    "network.cidr",
                    format!(
                        "the VPC CIDR `{}` is a /{}; AWS allows /16 to /28",
                        net.cidr, c.len
                    ),
                    "use a prefix between /16 and /28 (a /16 leaves room for every subnet)".into(),
                );
                None
            }
            Ok(c) if c.network() != c => {
                self.error(
                    "network.cidr",
                    format!("the VPC CIDR `{}` has host bits set", net.cidr),
                    format!("write the network address: `{}`", c.network()),
                );
                None
            }
            Ok(c) => Some(c),
        };

        let zones = self.stack.zones();
        let zpath = "network.zones";
        if net.zones.len() == 1 {
            self.error(
                zpath,
                "one availability zone given; a highly available stack needs at least 2".into(),
                format!(
                    "list at least 2 zones of {}, e.g. `[{r}a, {r}b]`",
                    self.stack.region,
                    r = self.stack.region
                ),
            );
        }
        for (i, z) in net.zones.iter().enumerate() {
            let p = format!("{zpath}[{i}]");
            let suffix = z.strip_prefix(self.stack.region.as_str());
            let ok =
                suffix.is_some_and(|s| s.len() == 1 && s.chars().all(|c| c.is_ascii_lowercase()));
            if !ok {
                self.error(
                    &p,
                    format!(
                        "zone `{z}` is not in the stack's region `{}`",
                        self.stack.region
                    ),
                    format!(
                        "use a zone of {r}: the region followed by a letter, e.g. `{r}a`",
                        r = self.stack.region
                    ),
                );
            }
            if net.zones[..i].contains(z) {
                self.error(
                    &p,
                    format!("zone `{z}` is listed twice"),
                    "list each zone once".into(),
                );
            }
        }

        let mut subnets: Vec<(String, Cidr)> = Vec::new();
        for (field, explicit, derived) in [
            (
                "public_subnets",
                &net.public_subnets,
                self.stack.public_subnet_cidrs(),
            ),
            (
                "private_subnets",
                &net.private_subnets,
                self.stack.private_subnet_cidrs(),
            ),
        ] {
            let path = format!("network.{field}");
            if !explicit.is_empty() && explicit.len() != zones.len() {
                self.error(
                    &path,
                    format!(
                        "{} {field} for {} zones{}; there must be one per zone",
                        explicit.len(),
                        zones.len(),
                        self.dflt(zpath)
                    ),
                    format!(
                        "give exactly {} CIDRs in `{field}`, in the order of `zones`",
                        zones.len()
                    ),
                );
            }
            if explicit.is_empty() && vpc.is_none() {
                // Carved from an invalid VPC CIDR: that problem is reported already.
                continue;
            }
            for (i, s) in derived.iter().enumerate() {
                let p = if explicit.is_empty() {
                    "network.cidr".to_string()
                } else {
                    format!("{path}[{i}]")
                };
                let c = match Cidr::parse(s) {
                    Ok(c) => c,
                    Err(e) => {
                        self.error(&p, e, "write an IPv4 CIDR such as `10.0.1.0/24`".into());
                        continue;
                    }
                };
                if c.len < 16 || c.len > 28 {
                    let fix = if explicit.is_empty() {
                        "use a VPC CIDR of /16 to /20 so the default subnets fit, or list the subnets explicitly".to_string()
                    } else {
                        "use a subnet prefix between /16 and /28".to_string()
                    };
                    self.error(
                        &p,
                        format!("subnet `{s}` is a /{}; AWS allows /16 to /28", c.len),
                        fix,
                    );
                    continue;
                }
                if c.network() != c {
                    self.error(
                        &p,
                        format!("subnet `{s}` has host bits set"),
                        format!("write the network address: `{}`", c.network()),
                    );
                    continue;
                }
                if let Some(v) = vpc {
                    if !v.contains(c) {
                        self.error(
                            &p,
                            format!("subnet `{s}` is outside the VPC `{v}`"),
                            format!("pick a subnet inside `{v}`, or widen `network.cidr`"),
                        );
                        continue;
                    }
                }
                if let Some((other, _)) = subnets.iter().find(|(_, o)| o.overlaps(c)) {
                    self.error(
                        &p,
                        format!("subnet `{s}` overlaps `{other}`"),
                        "give every subnet its own address range".into(),
                    );
                    continue;
                }
                subnets.push((s.clone(), c));
            }
        }
        if net.nat_gateways == NatGateways::None {
            self.warn(
                "network.nat_gateways",
                "without NAT gateways the instances cannot reach the internet (packages, Moodle code, AWS APIs)".into(),
                "use `single` or `per-zone` unless the VPC has endpoints and a package mirror".into(),
            );
        }
    }

    fn ami(&mut self) {
        let ami = self.stack.ami.clone();
        if let Some(id) = &ami.id {
            if !is_hex_id(id, "ami-") {
                self.error(
                    "ami.id",
                    format!("`{id}` is not an AMI id"),
                    "write an id such as `ami-0123456789abcdef0`, or remove `id` to use `ssm_parameter`".into(),
                );
            }
        } else if !ami.ssm_parameter.starts_with('/') {
            self.error(
                "ami.ssm_parameter",
                format!("`{}` is not an SSM parameter path", ami.ssm_parameter),
                "write a path starting with `/`, e.g. `/aws/service/canonical/ubuntu/server/24.04/stable/current/amd64/hvm/ebs-gp3/ami-id`".into(),
            );
        } else if let Some(arch) = self.fleet_arch() {
            let p = &ami.ssm_parameter;
            let param_arch = if p.contains("/amd64/") || p.contains("x86_64") {
                Some(Arch::X86_64)
            } else if p.contains("/arm64/") {
                Some(Arch::Arm64)
            } else {
                None
            };
            if let Some(pa) = param_arch.filter(|pa| *pa != arch) {
                let fixed = match arch {
                    Arch::Arm64 => p.replace("/amd64/", "/arm64/"),
                    Arch::X86_64 => p.replace("/arm64/", "/amd64/"),
                };
                self.error(
                    "ami.ssm_parameter",
                    format!("the AMI parameter{} names an {pa} image, but the instance types are {arch}", self.dflt("ami.ssm_parameter")),
                    format!("set `ami.ssm_parameter: {fixed}`"),
                );
            }
        }
    }

    /// The architecture of the web fleet (the first known web type).
    fn fleet_arch(&self) -> Option<Arch> {
        self.stack
            .web
            .instance_types
            .iter()
            .find_map(|t| instance_types::lookup(t))
            .map(|t| t.arch)
    }

    fn database(&mut self) {
        let db = self.stack.database.clone();
        let engine = db.engine;
        let version = db.engine_version();
        let vpath = "database.version";
        let ok = match engine {
            Engine::Mysql => {
                version == "8.0"
                    || version == "8.4"
                    || version.starts_with("8.0.")
                    || version.starts_with("8.4.")
            }
            // `8.0`: AWS's default minor of Aurora MySQL 3 (CreateDBCluster: "You can supply
            // either 5.7 or 8.0 to use the default engine version for Aurora MySQL version 2 or
            // version 3"); or a pinned one.
            Engine::AuroraMysql => version == "8.0" || version.starts_with("8.0.mysql_aurora.3."),
            Engine::Mariadb => {
                let mut p = version.split('.');
                let major = p.next().and_then(|m| m.parse::<u32>().ok());
                let minor = p.next().and_then(|m| m.parse::<u32>().ok());
                matches!((major, minor), (Some(10), Some(6..)) | (Some(11), Some(_)))
            }
            Engine::Postgres => {
                let major = version
                    .split('.')
                    .next()
                    .and_then(|m| m.parse::<u32>().ok());
                matches!(major, Some(13..=17)) && version.split('.').count() <= 2
            }
        };
        if !ok {
            let example = match engine {
                Engine::Mysql => "`8.0` or `8.4` (or a minor such as `8.0.39`)",
                Engine::AuroraMysql => "`8.0` (or a minor such as `8.0.mysql_aurora.3.08.0`)",
                Engine::Mariadb => "`10.11` or `11.4` (10.6 or newer)",
                Engine::Postgres => "`16` or `16.4` (13 to 17)",
            };
            self.error(
                vpath,
                format!(
                    "`{version}` is not a {} version moodlestack can run Moodle on",
                    engine.rds_name()
                ),
                format!("set `database.version` to {example}, or change `database.engine`"),
            );
        }
        if !db.instance_class.starts_with("db.") || db.instance_class.split('.').count() != 3 {
            self.error(
                "database.instance_class",
                format!("`{}` is not an RDS instance class", db.instance_class),
                "write a class such as `db.t4g.medium` or `db.r7g.large`".into(),
            );
        }
        if let Some(snapshot) = &db.restore_from {
            // RDS snapshot identifiers, of DB snapshots and (Aurora) DB cluster snapshots alike:
            // letters, digits and hyphens, a letter first (automated ones: `rds:` and such a
            // name).
            let name = snapshot.strip_prefix("rds:").unwrap_or(snapshot);
            let valid = name.starts_with(|c: char| c.is_ascii_alphabetic())
                && name.len() <= 255
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
            let what = if engine.is_aurora() {
                "DB cluster snapshot"
            } else {
                "DB snapshot"
            };
            if !valid {
                self.error(
                    "database.restore_from",
                    format!("`{snapshot}` is not an RDS {what} identifier"),
                    "name a snapshot `moodlestack backups` lists (letters, digits and hyphens, \
                     a letter first)"
                        .into(),
                );
            }
        }
        if !engine.is_aurora() {
            self.range("database.storage_gb", db.storage_gb, 20, 65536, "GiB", "");
            // RDS refuses a maximum below 110 % of the allocated storage ("at least 10% more than
            // the current allocated storage", RDS storage autoscaling).
            if db.max_storage_gb > 0 && db.max_storage_gb * 10 < db.storage_gb * 11 {
                self.error(
                    "database.max_storage_gb",
                    format!(
                        "`database.max_storage_gb` ({}) must be at least 110 % of `database.storage_gb` ({}: at least {}), or 0",
                        db.max_storage_gb,
                        db.storage_gb,
                        (db.storage_gb * 11 + 9) / 10
                    ),
                    "raise `max_storage_gb` to at least 110 % of `storage_gb` (RDS refuses less), or set it to 0 to turn storage autoscaling off".into(),
                );
            }
            if db.max_storage_gb > 65536 || db.max_storage_gb < 0 {
                self.range(
                    "database.max_storage_gb",
                    db.max_storage_gb,
                    0,
                    65536,
                    "GiB",
                    "",
                );
            }
        } else {
            self.warn_ignored(
                "database",
                &["storage_gb", "max_storage_gb"],
                "by Aurora (its storage grows automatically)",
                "",
            );
        }
        self.range(
            "database.backup_retention_days",
            db.backup_retention_days,
            1,
            35,
            "days",
            " (7 is a good default)",
        );
        let max_name = if engine == Engine::Postgres { 63 } else { 64 };
        if !is_db_identifier(&db.db_name, max_name) {
            self.error(
                "database.db_name",
                format!("database name `{}` is not valid for {}", db.db_name, engine.rds_name()),
                format!("use 1-{max_name} letters, digits and underscores starting with a letter, e.g. `moodle`"),
            );
        }
        let max_user = if engine == Engine::Postgres { 63 } else { 16 };
        let reserved = [
            "rdsadmin",
            "admin",
            "root",
            "postgres",
            "mysql",
            "rdsrepladmin",
        ];
        if !is_db_identifier(&db.username, max_user)
            || reserved.contains(&db.username.to_lowercase().as_str())
        {
            self.error(
                "database.username",
                format!("master user name `{}` is not valid for {}", db.username, engine.rds_name()),
                format!("use 1-{max_user} letters, digits and underscores starting with a letter, not a reserved name, e.g. `moodleadmin`"),
            );
        }
        for k in db.parameters.keys() {
            if k.is_empty()
                || !k
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
            {
                let p = format!("database.parameters.{k}");
                let span = self.key_span(&p, &p);
                self.error_at(
                    &p,
                    span,
                    format!("`{k}` is not a database parameter name"),
                    "use the parameter's name as RDS lists it, e.g. `max_connections`".into(),
                );
            }
        }
    }

    fn files(&mut self) {
        let f = self.stack.files.clone();
        let modes = ["generalPurpose", "maxIO"];
        self.one_of(
            "files.performance_mode",
            &f.performance_mode,
            &modes,
            "an EFS performance mode",
        );
        let throughput = ["elastic", "bursting"];
        if f.throughput_mode == "provisioned" {
            self.error(
                "files.throughput_mode",
                "`provisioned` throughput needs a provisioned rate, which moodlestack does not manage".into(),
                "use `elastic` (scales with demand, pay per use) or `bursting`".into(),
            );
        } else if !throughput.contains(&f.throughput_mode.as_str()) {
            self.one_of(
                "files.throughput_mode",
                &f.throughput_mode,
                &throughput,
                "an EFS throughput mode",
            );
        } else if f.throughput_mode == "elastic" && f.performance_mode == "maxIO" {
            self.error(
                "files.throughput_mode",
                "elastic throughput is only available with the `generalPurpose` performance mode".into(),
                "set `files.performance_mode: generalPurpose` (recommended for Moodle) or `files.throughput_mode: bursting`".into(),
            );
        }
        if let Some(point) = &f.restore_from {
            if !is_recovery_point_arn(point) {
                self.error(
                    "files.restore_from",
                    format!("`{point}` is not an AWS Backup recovery point ARN"),
                    "name a backup of moodledata `moodlestack backups` lists (`files`, an ARN \
                     `arn:aws:backup:<region>:<account>:recovery-point:<id>`)"
                        .into(),
                );
            } else if !self.stack.backup.enabled {
                self.error(
                    "files.restore_from",
                    "restoring moodledata needs the stack's AWS Backup role, and `backup.enabled` \
                     is false"
                        .into(),
                    "set `backup.enabled: true` (the restore job runs with the stack's backup \
                     role), or remove `files.restore_from`"
                        .into(),
                );
            }
        }
    }

    fn backup(&mut self) {
        let b = self.stack.backup.clone();
        if !b.enabled {
            return;
        }
        if let Err(problem) = crate::schedule::aws_backup_cron(&b.schedule) {
            self.error(
                "backup.schedule",
                format!("`{}` is not a backup schedule: {problem}", b.schedule),
                "write five fields, `minute hour day-of-month month day-of-week`, with one \
                 minute, e.g. `0 3 * * *` for every day at 03:00"
                    .into(),
            );
        }
        match crate::schedule::time_zone(&b.time_zone) {
            crate::schedule::TimeZone::Canonical => {}
            crate::schedule::TimeZone::Alias(canonical) => self.error(
                "backup.time_zone",
                format!(
                    "`{}` is an alias; AWS Backup takes canonical IANA time zone names",
                    b.time_zone
                ),
                format!("write `{canonical}`"),
            ),
            crate::schedule::TimeZone::Unknown => {
                let s = nearest(&b.time_zone, crate::schedule::canonical_time_zones())
                    .unwrap_or("Etc/UTC");
                self.error(
                    "backup.time_zone",
                    format!("`{}` is not an IANA time zone name", b.time_zone),
                    format!("did you mean `{s}`? Use a name such as `Europe/Madrid` or `Etc/UTC`"),
                );
            }
        }
        self.range(
            "backup.retention_days",
            b.retention_days,
            1,
            36_500,
            "days",
            " (default 35)",
        );
    }

    fn observability(&mut self) {
        let o = self.stack.observability.clone();
        let days = o.log_retention_days;
        if !LOG_RETENTION_DAYS.contains(&days) {
            let nearest = LOG_RETENTION_DAYS
                .iter()
                .min_by_key(|d| (**d - days).abs())
                .copied()
                .unwrap_or(30);
            let all: Vec<String> = LOG_RETENTION_DAYS.iter().map(i64::to_string).collect();
            self.error(
                "observability.log_retention_days",
                format!("{days} days is not a retention CloudWatch Logs offers"),
                format!("did you mean {nearest}? Use one of {}", all.join(", ")),
            );
        }
        let mut seen = std::collections::BTreeSet::new();
        for (i, email) in o.alert_emails.iter().enumerate() {
            let path = format!("observability.alert_emails[{i}]");
            if !is_email(email) {
                self.error(
                    &path,
                    format!("`{email}` is not an e-mail address"),
                    "write one address per item, e.g. `ops@example.org`".into(),
                );
            } else if !seen.insert(email.to_lowercase()) {
                self.error(
                    &path,
                    format!("`{email}` is listed twice"),
                    "list each address once".into(),
                );
            }
        }
        let t = &o.thresholds;
        let percents = [
            ("alb_5xx_percent", t.alb_5xx_percent),
            ("db_cpu_percent", t.db_cpu_percent),
            ("redis_memory_percent", t.redis_memory_percent),
            ("efs_throughput_percent", t.efs_throughput_percent),
        ];
        for (field, v) in percents {
            if !(v > 0.0 && v <= 100.0) {
                self.error(
                    &format!("observability.thresholds.{field}"),
                    format!("`{field}` is {v}; a percentage must be above 0 and at most 100"),
                    format!("set `observability.thresholds.{field}` between 0 and 100, or remove it for the default"),
                );
            }
        }
        let positive = [
            ("response_time_seconds", t.response_time_seconds),
            ("db_free_storage_gb", t.db_free_storage_gb),
            ("db_freeable_memory_mb", t.db_freeable_memory_mb),
        ];
        for (field, v) in positive {
            if !(v > 0.0 && v.is_finite()) {
                self.error(
                    &format!("observability.thresholds.{field}"),
                    format!("`{field}` is {v}; it must be above 0"),
                    format!("set `observability.thresholds.{field}` above 0, or remove it for the default"),
                );
            }
        }
        let counts = [
            ("unhealthy_hosts", t.unhealthy_hosts, 1, 1000),
            ("db_connections", t.db_connections, 1, 100_000),
            ("redis_evictions", t.redis_evictions, 0, 1_000_000),
            (
                "fpm_max_children_warnings",
                t.fpm_max_children_warnings,
                1,
                1_000_000,
            ),
            ("slow_requests", t.slow_requests, 1, 1_000_000),
        ];
        for (field, v, lo, hi) in counts {
            self.range(
                &format!("observability.thresholds.{field}"),
                v,
                lo,
                hi,
                "",
                ", or remove it for the default",
            );
        }
        // CloudWatch evaluates at most a day of periods (5-minute periods: 288).
        self.range(
            "observability.thresholds.cron_heartbeat_minutes",
            t.cron_heartbeat_minutes,
            5,
            1440,
            "minutes",
            " (default 15)",
        );
        if t.cron_heartbeat_minutes % 5 != 0 {
            self.error(
                "observability.thresholds.cron_heartbeat_minutes",
                format!(
                    "{} minutes is not a whole number of the alarm's 5-minute periods",
                    t.cron_heartbeat_minutes
                ),
                format!(
                    "use a multiple of 5, e.g. {}",
                    (t.cron_heartbeat_minutes / 5 * 5).max(5)
                ),
            );
        }
    }

    fn cache(&mut self) {
        let c = self.stack.cache.clone();
        if !c.node_type.starts_with("cache.") || c.node_type.split('.').count() != 3 {
            self.error(
                "cache.node_type",
                format!("`{}` is not an ElastiCache node type", c.node_type),
                "write a node type such as `cache.t4g.small` or `cache.r7g.large`".into(),
            );
        }
        let major = c
            .engine_version
            .split('.')
            .next()
            .and_then(|m| m.parse::<u32>().ok());
        let well_formed = c
            .engine_version
            .split('.')
            .all(|p| p.parse::<u32>().is_ok());
        if !well_formed || !matches!(major, Some(6 | 7)) {
            self.error(
                "cache.engine_version",
                format!(
                    "`{}` is not a Redis version moodlestack supports",
                    c.engine_version
                ),
                "use Redis 6.2 or 7.x (TLS with AUTH), e.g. `7.1`".into(),
            );
        }
        self.range("cache.replicas", c.replicas, 0, 5, "", "");
        if c.automatic_failover && c.replicas == 0 {
            self.error(
                "cache.automatic_failover",
                "automatic failover needs a replica to promote, but `cache.replicas` is 0".into(),
                "set `cache.replicas: 1` (or more), or `cache.automatic_failover: false`".into(),
            );
        }
        if c.auth && !c.transit_encryption {
            self.error(
                "cache.auth",
                "Redis AUTH needs TLS in transit, but `cache.transit_encryption` is false".into(),
                "set `cache.transit_encryption: true`, or `cache.auth: false`".into(),
            );
        }
    }

    fn instances(&mut self) {
        let web = self.stack.web.clone();
        let tpath = "web.instance_types";
        let mut arches: Vec<(usize, Arch)> = Vec::new();
        for (i, t) in web.instance_types.iter().enumerate() {
            let p = format!("{tpath}[{i}]");
            match instance_types::lookup(t) {
                Some(info) => arches.push((i, info.arch)),
                None => {
                    let s = nearest(t, instance_types::INSTANCE_TYPES.iter().map(|t| t.name))
                        .unwrap_or("m6i.large");
                    self.error(
                        &p,
                        format!("unknown instance type `{t}`"),
                        format!("did you mean `{s}`? (known types are listed in crates/stack/src/instance_types.rs)"),
                    );
                }
            }
            if web.instance_types[..i].contains(t) {
                self.error(
                    &p,
                    format!("instance type `{t}` is listed twice"),
                    "list each type once".into(),
                );
            }
        }
        let n = web.instance_types.len();
        if n < 2 {
            self.error(
                tpath,
                format!("the web fleet has {n} instance type(s); Spot needs at least 2 (3-6 across families is best)"),
                "list 3-6 types of one architecture across families, e.g. `[m6i.large, c6i.xlarge, t3.large]`".into(),
            );
        } else if n == 2 {
            self.warn(
                tpath,
                "the web fleet has only 2 instance types; Spot capacity is more reliable with 3-6"
                    .into(),
                "add a type from another family, e.g. `t3.large` or `c6i.xlarge`".into(),
            );
        } else if n > 40 {
            self.error(
                tpath,
                format!("{n} instance types; Auto Scaling accepts at most 40"),
                "list 3-6 types".into(),
            );
        } else if n > 6 {
            self.warn(
                tpath,
                format!("{n} instance types; 3-6 are enough for deep Spot capacity"),
                "keep the 3-6 types you prefer".into(),
            );
        }
        let classes: Vec<&str> = web
            .instance_types
            .iter()
            .filter_map(|t| instance_types::lookup(t))
            .map(|t| t.class())
            .collect();
        if classes.len() >= 2 && classes.iter().all(|c| *c == classes[0]) && n >= 2 {
            self.warn(
                tpath,
                format!("every web instance type is of the `{}` class; one class shares Spot capacity pools", classes[0]),
                "mix families, e.g. `m`, `c` and `t` types of the same architecture".into(),
            );
        }
        if let Some((_, first)) = arches.first().copied() {
            let x86 = arches.iter().filter(|(_, a)| *a == Arch::X86_64).count();
            let majority = if x86 * 2 >= arches.len() {
                Arch::X86_64
            } else {
                Arch::Arm64
            };
            if arches.iter().any(|(_, a)| *a != first) {
                for (i, a) in arches.iter().filter(|(_, a)| *a != majority) {
                    let t = &web.instance_types[*i];
                    self.error(
                        &format!("{tpath}[{i}]"),
                        format!("instance type `{t}` is {a}, the other web types are {majority}; one AMI cannot boot both"),
                        format!("replace `{t}` with an {majority} type"),
                    );
                }
            }
            let stable_t = self.stack.stable.instance_type.clone();
            if let Some(s) = instance_types::lookup(&stable_t) {
                if s.arch != majority {
                    self.error(
                        "stable.instance_type",
                        format!("the stable instance type `{stable_t}`{} is {}, the web fleet is {majority}; both boot the same AMI", self.dflt("stable.instance_type"), s.arch),
                        format!("use an {majority} type for `stable.instance_type`"),
                    );
                }
            }
        }
        let stable_t = self.stack.stable.instance_type.clone();
        if instance_types::lookup(&stable_t).is_none() {
            let s = nearest(
                &stable_t,
                instance_types::INSTANCE_TYPES.iter().map(|t| t.name),
            )
            .unwrap_or("m6i.large");
            self.error(
                "stable.instance_type",
                format!("unknown instance type `{stable_t}`"),
                format!("did you mean `{s}`? (known types are listed in crates/stack/src/instance_types.rs)"),
            );
        }
        self.range(
            "stable.root_volume_gb",
            self.stack.stable.root_volume_gb,
            8,
            16384,
            "GiB",
            "",
        );
        self.range(
            "web.root_volume_gb",
            web.root_volume_gb,
            8,
            16384,
            "GiB",
            "",
        );
        if web.min < 0 {
            self.error(
                "web.min",
                format!("`web.min` is {}; it cannot be negative", web.min),
                "set `web.min` to 0 or more".into(),
            );
        }
        if web.max < 1 {
            self.error(
                "web.max",
                format!(
                    "`web.max` is {}; the fleet needs at least 1 instance",
                    web.max
                ),
                "set `web.max` to 1 or more".into(),
            );
        } else if web.min > web.max {
            self.error(
                "web.min",
                format!(
                    "`web.min` ({}{}) is larger than `web.max` ({}{})",
                    web.min,
                    self.dflt("web.min"),
                    web.max,
                    self.dflt("web.max")
                ),
                format!(
                    "lower `web.min` to at most {} or raise `web.max` to at least {}",
                    web.max, web.min
                ),
            );
        }
        if web.on_demand_base < 0 {
            self.error(
                "web.on_demand_base",
                format!(
                    "`web.on_demand_base` is {}; it cannot be negative",
                    web.on_demand_base
                ),
                "set it to 0 or more".into(),
            );
        } else if web.max >= 1 && web.on_demand_base > web.max {
            self.error(
                "web.on_demand_base",
                format!(
                    "`web.on_demand_base` ({}) is larger than `web.max` ({})",
                    web.on_demand_base, web.max
                ),
                format!("set `web.on_demand_base` to at most {}", web.max),
            );
        }
        self.range(
            "web.on_demand_percentage_above_base",
            web.on_demand_percentage_above_base,
            0,
            100,
            "%",
            " (0: all Spot above the base)",
        );
        self.one_of(
            "web.spot_allocation_strategy",
            &web.spot_allocation_strategy,
            SPOT_STRATEGIES,
            "a Spot allocation strategy",
        );
    }

    /// `web.scaling` and `web.schedule`.
    fn scaling(&mut self) {
        let web = self.stack.web.clone();
        let sc = &web.scaling;
        self.one_of(
            "web.scaling.metric",
            &sc.metric,
            SCALING_METRICS,
            "a scaling metric",
        );
        if sc.metric == "requests" {
            self.range(
                "web.scaling.target",
                sc.target_value(),
                1,
                1_000_000,
                "requests per target per minute",
                "",
            );
        } else {
            self.range(
                "web.scaling.target",
                sc.target_value(),
                1,
                100,
                "%",
                " (average CPU of the group)",
            );
        }
        self.range(
            "web.scaling.warmup",
            sc.warmup,
            0,
            3600,
            "seconds",
            " (how long a new node takes to become healthy, docs/nodes.md: 420)",
        );
        // A schedule that raises the floor (or lowers the ceiling) and never puts it back keeps
        // the fleet there for good: the plan accepts the schedule's sizes.
        let raises = web.schedule.iter().position(|a| a.min > web.min);
        if let Some(i) = raises.filter(|_| web.schedule.iter().all(|b| b.min != web.min)) {
            let a = &web.schedule[i];
            self.warn(
                &format!("web.schedule[{i}].min"),
                format!(
                    "scheduled action `{}` raises the group's minimum to {}, and no action brings \
                     it back to `web.min` ({})",
                    a.name, a.min, web.min
                ),
                format!(
                    "add an action with `min: {}` for when the busy period ends (e.g. the evening \
                     of the last exam day)",
                    web.min
                ),
            );
        }
        let lowers = web
            .schedule
            .iter()
            .position(|a| a.max.is_some_and(|m| m < web.max));
        // An action without `max` leaves the group's maximum where it is.
        if let Some(i) = lowers.filter(|_| web.schedule.iter().all(|b| b.max != Some(web.max))) {
            let a = &web.schedule[i];
            self.warn(
                &format!("web.schedule[{i}].max"),
                format!(
                    "scheduled action `{}` lowers the group's maximum to {}, and no action brings \
                     it back to `web.max` ({})",
                    a.name,
                    a.max.unwrap_or(web.max),
                    web.max
                ),
                format!(
                    "add `max: {}` to the action that ends the period, or leave `max` out of the \
                     actions",
                    web.max
                ),
            );
        }
        let mut seen: Vec<&str> = Vec::new();
        for (i, a) in web.schedule.iter().enumerate() {
            let at = |f: &str| format!("web.schedule[{i}].{f}");
            let name = a.name.as_str();
            if name.is_empty()
                || name.len() > 200
                || !name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            {
                self.error(
                    &at("name"),
                    format!("`{name}` is not a scheduled action name"),
                    "use 1 to 200 letters, digits, hyphens and underscores (e.g. `exam-week-start`)"
                        .into(),
                );
            } else if seen.contains(&name) {
                self.error(
                    &at("name"),
                    format!("two scheduled actions are named `{name}`"),
                    "give each action of `web.schedule` its own name".into(),
                );
            }
            seen.push(name);
            if let Some(problem) = crate::schedule::cron_problem(&a.recurrence) {
                self.error(
                    &at("recurrence"),
                    format!("`{}` is not a cron recurrence: {problem}", a.recurrence),
                    "write five fields, `minute hour day-of-month month day-of-week`, e.g. \
                     `0 6 * * 1` for Mondays at 06:00"
                        .into(),
                );
            }
            match crate::schedule::time_zone(&a.time_zone) {
                crate::schedule::TimeZone::Canonical => {}
                crate::schedule::TimeZone::Alias(canonical) => self.error(
                    &at("time_zone"),
                    format!(
                        "`{}` is an alias; Auto Scaling takes canonical IANA time zone names",
                        a.time_zone
                    ),
                    format!("write `{canonical}`"),
                ),
                crate::schedule::TimeZone::Unknown => {
                    let s = nearest(&a.time_zone, crate::schedule::canonical_time_zones())
                        .unwrap_or("Etc/UTC");
                    self.error(
                        &at("time_zone"),
                        format!("`{}` is not an IANA time zone name", a.time_zone),
                        format!(
                            "did you mean `{s}`? Use a name such as `Europe/Madrid` or `Etc/UTC`"
                        ),
                    );
                }
            }
            let max = a.max.unwrap_or(web.max);
            if a.min > a.desired || a.desired > max {
                let (path, bound) = if a.min > a.desired {
                    (at("min"), "`min` is larger than `desired`")
                } else if a.max.is_some() {
                    (at("desired"), "`desired` is larger than `max`")
                } else {
                    (at("desired"), "`desired` is larger than `web.max`")
                };
                self.error(
                    &path,
                    format!(
                        "scheduled action `{name}`: {bound} (min {}, desired {}, max {max})",
                        a.min, a.desired
                    ),
                    "make min <= desired <= max".into(),
                );
            }
            if a.min < web.min {
                self.error(
                    &at("min"),
                    format!(
                        "scheduled action `{name}`: `min` ({}) is below `web.min` ({}{})",
                        a.min,
                        web.min,
                        self.dflt("web.min")
                    ),
                    format!(
                        "raise `min` to at least {}, or lower `web.min`: the schedule moves the \
                         group inside web.min..web.max",
                        web.min
                    ),
                );
            }
            if a.max.is_some_and(|m| m > web.max) {
                self.error(
                    &at("max"),
                    format!(
                        "scheduled action `{name}`: `max` ({}) is above `web.max` ({}{})",
                        max,
                        web.max,
                        self.dflt("web.max")
                    ),
                    format!(
                        "lower `max` to at most {}, or raise `web.max`: the schedule moves the \
                         group inside web.min..web.max",
                        web.max
                    ),
                );
            }
        }
    }

    fn load_balancer(&mut self) {
        let lb = self.stack.load_balancer.clone();
        self.range(
            "load_balancer.deregistration_delay",
            lb.deregistration_delay,
            0,
            3600,
            "seconds",
            " (120 lets requests finish within a Spot reclaim's 2 minutes)",
        );
        self.range(
            "load_balancer.health_check_interval",
            lb.health_check_interval,
            5,
            300,
            "seconds",
            "",
        );
        self.range(
            "load_balancer.healthy_threshold",
            lb.healthy_threshold,
            2,
            10,
            "",
            "",
        );
        self.range(
            "load_balancer.idle_timeout",
            lb.idle_timeout,
            1,
            4000,
            "seconds",
            "",
        );
        if !lb.health_check_path.starts_with('/')
            || lb.health_check_path.len() > 1024
            || lb.health_check_path.contains(char::is_whitespace)
        {
            self.error(
                "load_balancer.health_check_path",
                format!("`{}` is not a URL path", lb.health_check_path),
                "write a path starting with `/`, e.g. `/login/index.php`".into(),
            );
        }
        let https_root = self.stack.moodle.wwwroot.starts_with("https://");
        let http_root = self.stack.moodle.wwwroot.starts_with("http://");
        match &lb.certificate_arn {
            Some(arn) => {
                let parts: Vec<&str> = arn.splitn(6, ':').collect();
                let well_formed = parts.len() == 6
                    && parts[0] == "arn"
                    && parts[1].starts_with("aws")
                    && parts[2] == "acm"
                    && parts[4].len() == 12
                    && parts[4].chars().all(|c| c.is_ascii_digit())
                    && parts[5]
                        .strip_prefix("certificate/")
                        .is_some_and(|id| !id.is_empty());
                if !well_formed {
                    self.error(
                        "load_balancer.certificate_arn",
                        format!("`{arn}` is not an ACM certificate ARN"),
                        format!("write the ARN ACM shows, e.g. `arn:aws:acm:{}:123456789012:certificate/<id>`", self.stack.region),
                    );
                } else if parts[3] != self.stack.region {
                    self.error(
                        "load_balancer.certificate_arn",
                        format!("the certificate is in `{}`, the stack in `{}`; an ALB uses certificates of its own region", parts[3], self.stack.region),
                        format!("request or import the certificate in ACM in {} and use that ARN", self.stack.region),
                    );
                }
                if http_root {
                    self.error(
                        "moodle.wwwroot",
                        format!("`moodle.wwwroot` is `{}` (http) but the load balancer has a certificate", self.stack.moodle.wwwroot),
                        format!("write `{}`", self.stack.moodle.wwwroot.replacen("http://", "https://", 1)),
                    );
                }
            }
            None => {
                if https_root {
                    self.error(
                        "moodle.wwwroot",
                        format!("`moodle.wwwroot` is `{}` (https) but the load balancer has no certificate, so it serves HTTP only", self.stack.moodle.wwwroot),
                        format!(
                            "set `load_balancer.certificate_arn` to an ACM certificate of {} (`--set load_balancer.certificate_arn=arn:aws:acm:...`), or use `{}`",
                            self.stack.region,
                            self.stack.moodle.wwwroot.replacen("https://", "http://", 1)
                        ),
                    );
                }
            }
        }
    }

    fn moodle(&mut self) {
        let m = self.stack.moodle.clone();
        let w = &m.wwwroot;
        let rest = w
            .strip_prefix("https://")
            .or_else(|| w.strip_prefix("http://"));
        match rest {
            None => self.error(
                "moodle.wwwroot",
                format!("`{w}` is not an http(s) URL"),
                "write the site's URL with its scheme, e.g. `https://moodle.example.org`".into(),
            ),
            Some(rest) => {
                let host = rest.split(['/', ':']).next().unwrap_or("");
                let host_ok = !host.is_empty()
                    && host
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
                    && !host.starts_with('.')
                    && !host.ends_with('.');
                if !host_ok
                    || rest.contains(char::is_whitespace)
                    || rest.contains(['?', '#', '\'', '"', '\\'])
                {
                    self.error(
                        "moodle.wwwroot",
                        format!("`{w}` is not a valid site URL"),
                        "write scheme and host name (and an optional path), e.g. `https://moodle.example.org`".into(),
                    );
                } else if w.ends_with('/') {
                    self.error(
                        "moodle.wwwroot",
                        format!("`{w}` ends with `/`; Moodle's wwwroot must not"),
                        format!("write `{}`", w.trim_end_matches('/')),
                    );
                }
            }
        }
        let branch = m.branch();
        if branch.is_none() && !crate::is_commit_id(&m.git_ref) {
            let moving = m.git_ref.ends_with("_STABLE")
                || ["main", "master", "HEAD"].contains(&m.git_ref.as_str());
            self.error(
                "moodle.git_ref",
                if moving {
                    format!(
                        "`moodle.git_ref` `{}` is a branch: it moves (weekly builds), so nodes booted a \
                         week apart would run different code than the database",
                        m.git_ref
                    )
                } else {
                    format!(
                        "`moodle.git_ref` `{}` is neither a release tag nor a commit id",
                        m.git_ref
                    )
                },
                format!(
                    "pin a release tag such as `{}` (or a full 40-character commit id)",
                    crate::DEFAULT_MOODLE_REF
                ),
            );
        }
        if let Some(r) = &m.forcedcache_ref {
            let tag_ok = !r.is_empty()
                && r.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
                && !r.ends_with("_STABLE")
                && !["main", "master", "HEAD"].contains(&r.as_str());
            if !crate::is_commit_id(r) && !tag_ok {
                self.error(
                    "moodle.forcedcache_ref",
                    format!("`moodle.forcedcache_ref` `{r}` is not a tag or a full commit id"),
                    "pin a full 40-character commit id of the plugin's branch for your Moodle"
                        .into(),
                );
            }
        } else if branch.is_some() || crate::is_commit_id(&m.git_ref) {
            if let Err(e) = m.forcedcache_ref() {
                self.error("moodle.git_ref", e, "set `moodle.forcedcache_ref`".into());
            }
        }
        let url_ok = (m.git_url.starts_with("https://")
            || m.git_url.starts_with("git@")
            || m.git_url.starts_with("ssh://"))
            && !m.git_url.contains(char::is_whitespace);
        if !url_ok {
            self.error(
                "moodle.git_url",
                format!("`{}` is not a git repository URL", m.git_url),
                "write an https URL, e.g. `https://github.com/moodle/moodle.git`".into(),
            );
        }
        if !PHP_VERSIONS.contains(&m.php_version.as_str()) {
            self.error(
                "moodle.php_version",
                format!("PHP `{}` is not supported", m.php_version),
                format!(
                    "use one of {} (quote it: `php_version: \"8.3\"`)",
                    list(PHP_VERSIONS)
                ),
            );
        } else if let Some((major, minor)) = branch {
            let v = |s: &str| {
                let (a, b) = s.split_once('.').unwrap_or((s, "0"));
                (a.parse::<u32>().unwrap_or(0), b.parse::<u32>().unwrap_or(0))
            };
            match crate::MOODLE_PHP
                .iter()
                .find(|(b, _, _)| *b == (major, minor))
            {
                None => self.error(
                    "moodle.git_ref",
                    format!("moodlestack does not know which PHP Moodle {major}.{minor} supports"),
                    "use a Moodle 4.1 to 5.1 release tag, e.g. `v4.5.5`".into(),
                ),
                Some((_, lo, hi)) => {
                    let php = v(&m.php_version);
                    if php < v(lo) || php > v(hi) {
                        let ok: Vec<&str> = PHP_VERSIONS
                            .iter()
                            .copied()
                            .filter(|p| v(p) >= v(lo) && v(p) <= v(hi))
                            .collect();
                        self.error(
                            "moodle.php_version",
                            format!(
                                "Moodle {major}.{minor} (`{}`) supports PHP {lo} to {hi}, not {}",
                                m.git_ref, m.php_version
                            ),
                            format!(
                                "use {} (Ubuntu 24.04's own PHP is 8.3), or a Moodle release that supports PHP {}",
                                list(&ok),
                                m.php_version
                            ),
                        );
                    }
                }
            }
        }
        if let Some(branch) = branch {
            let db = &self.stack.database;
            let have = db.engine_version();
            let key = |s: &str| -> (u32, u32) {
                let mut p = s.split('.').map(|n| n.parse::<u32>().unwrap_or(0));
                (p.next().unwrap_or(0), p.next().unwrap_or(0))
            };
            // A version moodlestack cannot run at all is reported once, by the database's rule.
            let refused = self
                .diags
                .iter()
                .any(|d| d.paths.iter().any(|p| p == "database.version"));
            if let Some(min) =
                crate::moodle_database_minimum(branch, db.engine).filter(|_| !refused)
            {
                // PostgreSQL's versions are majors; the others compare on `major.minor`.
                let too_old = if db.engine == crate::Engine::Postgres {
                    key(&have).0 < key(min).0
                } else {
                    key(&have) < key(min)
                };
                if too_old {
                    self.error(
                        "database.version",
                        format!(
                            "Moodle {}.{} (`{}`) needs {} {min} or newer; the database is {have}",
                            branch.0,
                            branch.1,
                            m.git_ref,
                            db.engine.rds_name()
                        ),
                        format!(
                            "upgrade the database first (`database.version` to {min} or newer, \
                             applied before the Moodle upgrade), or stay on a Moodle release \
                             that supports {have}"
                        ),
                    );
                }
            }
        }
        for (field, v) in [("dataroot", &m.dataroot), ("dirroot", &m.dirroot)] {
            if !v.starts_with('/')
                || v.contains(char::is_whitespace)
                || v.contains(['\'', '"', '\\', '$'])
                || v.len() < 2
            {
                self.error(
                    &format!("moodle.{field}"),
                    format!("`{v}` is not an absolute path"),
                    format!(
                        "write an absolute path without spaces or quotes, e.g. `{}`",
                        if field == "dataroot" {
                            "/var/moodledata"
                        } else {
                            "/var/www/moodle"
                        }
                    ),
                );
            }
        }
        let (d, r) = (
            m.dataroot.trim_end_matches('/'),
            m.dirroot.trim_end_matches('/'),
        );
        if d == r || d.starts_with(&format!("{r}/")) || r.starts_with(&format!("{d}/")) {
            self.error(
                "moodle.dataroot",
                format!("`moodle.dataroot` (`{}`) and `moodle.dirroot` (`{}`) overlap; Moodle refuses a dataroot reachable from the web", m.dataroot, m.dirroot),
                "keep them apart, e.g. `/var/moodledata` and `/var/www/moodle`".into(),
            );
        }
        let email_ok = m.admin_email.split_once('@').is_some_and(|(u, d)| {
            !u.is_empty()
                && d.contains('.')
                && !d.starts_with('.')
                && !d.ends_with('.')
                && !d.contains('@')
        }) && !m.admin_email.contains(char::is_whitespace);
        if !email_ok {
            self.error(
                "moodle.admin_email",
                format!("`{}` is not an e-mail address", m.admin_email),
                "write an address such as `admin@example.org`".into(),
            );
        }
        if m.prefix.is_empty()
            || m.prefix.len() > 10
            || !m
                .prefix
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        {
            self.error(
                "moodle.prefix",
                format!("table prefix `{}` is not valid", m.prefix),
                "use 1-10 lower-case letters, digits and underscores, e.g. `mdl_`".into(),
            );
        }
        for (k, v) in &m.config {
            let p = format!("moodle.config.{k}");
            if !is_php_identifier(k) {
                let span = self.key_span(&p, &p);
                self.error_at(
                    &p,
                    span,
                    format!("`{k}` is not a `$CFG` setting name"),
                    "use a PHP identifier (letters, digits, underscores), e.g. `theme`".into(),
                );
            }
            let managed = [
                "wwwroot",
                "dataroot",
                "dirroot",
                "dbtype",
                "dbhost",
                "dbname",
                "dbuser",
                "dbpass",
                "prefix",
                "session_handler_class",
                "session_redis_host",
                "sslproxy",
            ];
            if managed.contains(&k.as_str()) {
                let span = self.key_span(&p, &p);
                self.error_at(
                    &p,
                    span,
                    format!("`$CFG->{k}` is set by moodlestack"),
                    "remove it from `moodle.config`; set the matching stack field instead".into(),
                );
            }
            if !(v.is_string() || v.is_number() || v.is_boolean()) {
                self.error(
                    &p,
                    format!("`moodle.config.{k}` must be a string, number or boolean"),
                    "write a single value".into(),
                );
            }
        }
    }
}

/// A stack name derived from `name` that meets the rules, at most `max` characters.
pub fn suggest_name(name: &str, max: usize) -> String {
    let mut s: String = name
        .to_lowercase()
        .chars()
        .map(|c| {
            if c.is_ascii_lowercase() || c.is_ascii_digit() {
                c
            } else {
                '-'
            }
        })
        .collect();
    while s.contains("--") {
        s = s.replace("--", "-");
    }
    let s = s
        .trim_start_matches(|c: char| c == '-' || c.is_ascii_digit())
        .to_string();
    let mut s: String = if s.chars().count() > max {
        // Cut at a hyphen when that keeps most of the name.
        let cut: String = s.chars().take(max.max(1)).collect();
        let next_is_boundary = s.chars().nth(max) == Some('-');
        match cut.rfind('-') {
            Some(i) if !next_is_boundary && i >= max / 2 => cut[..i].to_string(),
            _ => cut,
        }
    } else {
        s
    };
    while s.ends_with('-') {
        s.pop();
    }
    if s.is_empty() {
        "moodle".chars().take(max.max(1)).collect()
    } else {
        s
    }
}

/// An AWS Backup recovery point ARN of a file system's backup:
/// `arn:<partition>:backup:<region>:<12-digit account>:recovery-point:<id>`.
fn is_recovery_point_arn(arn: &str) -> bool {
    let parts: Vec<&str> = arn.splitn(7, ':').collect();
    matches!(
        parts.as_slice(),
        ["arn", partition, "backup", region, account, "recovery-point", id]
            if partition.starts_with("aws")
                && !region.is_empty()
                && account.len() == 12
                && account.chars().all(|c| c.is_ascii_digit())
                && !id.is_empty()
                && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidrs() {
        let v = Cidr::parse("10.0.0.0/16").unwrap();
        assert!(v.contains(Cidr::parse("10.0.5.0/24").unwrap()));
        assert!(!v.contains(Cidr::parse("10.1.0.0/24").unwrap()));
        assert!(Cidr::parse("10.0.0.0/24")
            .unwrap()
            .overlaps(Cidr::parse("10.0.0.128/25").unwrap()));
        assert!(Cidr::parse("10.0.0.0/33").is_err());
        assert!(Cidr::parse("10.0.0/16").is_err());
        assert_eq!(
            Cidr::parse("10.0.0.5/16").unwrap().network().to_string(),
            "10.0.0.0/16"
        );
    }

    #[test]
    fn regions_and_names() {
        for (r, ok) in [
            ("eu-west-1", true),
            ("us-gov-west-1", true),
            ("eu-west", false),
            ("EU-west-1", false),
        ] {
            assert_eq!(is_region(r), ok, "{r}");
        }
        assert_eq!(suggest_name("My_Stack--1", 28), "my-stack-1");
        assert_eq!(
            suggest_name("a-very-long-stack-name-for-a-branch", 10),
            "a-very"
        );
        assert_eq!(suggest_name("abcdefghijkl", 5), "abcde");
    }

    #[test]
    fn php_identifiers() {
        for (s, ok) in [
            ("theme", true),
            ("_x1", true),
            ("1x", false),
            ("a->b", false),
            ("", false),
        ] {
            assert_eq!(is_php_identifier(s), ok, "{s:?}");
        }
    }
}
