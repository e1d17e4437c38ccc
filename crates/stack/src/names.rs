//! Deterministic names of the stack's AWS resources. Every name starts with the stack name, so a
//! re-run after a crash finds what the first run created, and validation can check each name
//! against the rules of the service that will receive it before any call is made.

use crate::Stack;

/// The names of one stack. Build with [`Names::of`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Names {
    stack: String,
    region: String,
}

impl Names {
    pub fn of(stack: &Stack) -> Names {
        Names::for_stack(&stack.name, &stack.region)
    }
    pub fn for_stack(name: &str, region: &str) -> Names {
        Names {
            stack: name.to_string(),
            region: region.to_string(),
        }
    }
    fn n(&self, suffix: &str) -> String {
        format!("{}-{suffix}", self.stack)
    }
    /// `Name` tag of a resource whose logical id is `id`: `<stack>-` and the id's dots as hyphens
    /// (`demo-net-subnet-private-a`).
    pub fn name_tag(&self, id: &str) -> String {
        self.n(&id.replace('.', "-"))
    }
    /// Security group names: `<stack>-alb`, `-web`, `-stable`, `-db`, `-cache`, `-efs`.
    pub fn security_group(&self, role: &str) -> String {
        self.n(role)
    }
    /// IAM role of the nodes (also the instance profile's name): `<stack>-<region>-node`. IAM is
    /// global, so the region keeps one stack name in two regions of an account from sharing (and
    /// destroying) one role.
    pub fn node_role(&self) -> String {
        self.n(&format!("{}-node", self.region))
    }
    /// The code bucket: `<stack>-<region>-<account>-code`. S3 bucket names are global across
    /// accounts, so the account id keeps two accounts' `demo` stacks apart, and the region one
    /// stack name in two regions of an account.
    pub fn code_bucket(&self, account_id: &str) -> String {
        self.n(&format!("{}-{account_id}-code", self.region))
    }
    /// Where the stack's code bucket names start (what ListBuckets is asked for).
    pub fn code_bucket_prefix(&self) -> String {
        self.n(&format!("{}-", self.region))
    }
    /// Secrets Manager name of the Redis AUTH token.
    pub fn redis_auth_secret(&self) -> String {
        format!("{}/redis-auth", self.stack)
    }
    /// RDS DB subnet group.
    pub fn db_subnet_group(&self) -> String {
        self.n("db")
    }
    /// RDS parameter group, named after its family so an engine upgrade gets a new group
    /// (`demo-mysql8-0`).
    pub fn db_parameter_group(&self, family: &str) -> String {
        self.n(&family.replace('.', "-"))
    }
    /// RDS cluster parameter group (Aurora).
    pub fn db_cluster_parameter_group(&self, family: &str) -> String {
        self.n(&format!("{}-cluster", family.replace('.', "-")))
    }
    /// The DB instance identifier (standalone engines) or the Aurora cluster identifier.
    pub fn db_identifier(&self) -> String {
        self.n("db")
    }
    /// Aurora member instance `index` (1-based).
    pub fn db_member(&self, index: usize) -> String {
        self.n(&format!("db-{index}"))
    }
    /// Final snapshot taken by `destroy` (unless `--skip-final-snapshot`).
    pub fn db_final_snapshot(&self, unix_time: u64) -> String {
        self.n(&format!("db-final-{unix_time}"))
    }
    /// EFS creation token (idempotency).
    pub fn efs_creation_token(&self) -> String {
        self.n("moodledata")
    }
    /// ElastiCache subnet group.
    pub fn cache_subnet_group(&self) -> String {
        self.n("cache")
    }
    /// ElastiCache replication group id.
    pub fn cache_replication_group(&self) -> String {
        self.n("redis")
    }
    /// Launch templates: `<stack>-web`, `<stack>-stable`.
    pub fn launch_template(&self, role: &str) -> String {
        self.n(role)
    }
    /// Application Load Balancer.
    pub fn load_balancer(&self) -> String {
        self.n("alb")
    }
    /// Target group of the web fleet.
    pub fn target_group(&self) -> String {
        self.n("web")
    }
    /// Auto Scaling group of the web fleet.
    pub fn autoscaling_group(&self) -> String {
        self.n("web")
    }
    /// The web fleet's target-tracking scaling policy (named within the group).
    pub fn scaling_policy(&self) -> String {
        self.n("web-tracking")
    }
    /// The web fleet's termination lifecycle hook (named within the group), which the node's
    /// watcher completes.
    pub fn drain_hook(&self) -> String {
        self.n("web-drain")
    }
    /// AWS Backup vault of the stack's recovery points: `<stack>-backups` (vault names are per
    /// account and region).
    pub fn backup_vault(&self) -> String {
        self.n("backups")
    }
    /// AWS Backup plan of the stack (plan names are per account and region).
    pub fn backup_plan(&self) -> String {
        self.n("backup")
    }
    /// The plan's one selection (named within the plan): the database and the file system.
    pub fn backup_selection(&self) -> String {
        self.n("data")
    }
    /// IAM role AWS Backup assumes to back up and restore the stack's data:
    /// `<stack>-<region>-backup` (IAM is global, as for [`Names::node_role`]).
    pub fn backup_role(&self) -> String {
        self.n(&format!("{}-backup", self.region))
    }
    /// The database snapshot taken before the nodes run the code version `code` (`v4.5.5
    /// php8.3`): `<stack>-code-v4-5-5-php8-3` (RDS snapshot identifiers: letters, digits and
    /// single hyphens, at most 255).
    pub fn code_snapshot(&self, code: &str) -> String {
        let mut slug = String::new();
        for c in code.chars() {
            let c = if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            };
            if !(c == '-' && (slug.is_empty() || slug.ends_with('-'))) {
                slug.push(c);
            }
        }
        let mut out = self.n(&format!("code-{}", slug.trim_end_matches('-')));
        out.truncate(255);
        out.trim_end_matches('-').to_string()
    }
    /// Where the stack's log groups are: `/moodlestack/<stack>/` (the nodes' role may write
    /// only under it).
    pub fn log_group_prefix(&self) -> String {
        format!("/moodlestack/{}/", self.stack)
    }
    /// The log group of one log `source` of the nodes (`apache-access`, `php-fpm`, ...):
    /// `/moodlestack/<stack>/<source>`; a stream per instance id.
    pub fn log_group(&self, source: &str) -> String {
        format!("{}{source}", self.log_group_prefix())
    }
    /// The namespace of the stack's own metrics (cron heartbeat, metric filters):
    /// `Moodlestack/<stack>`.
    pub fn metric_namespace(&self) -> String {
        format!("Moodlestack/{}", self.stack)
    }
    /// Where the stack's KMS key aliases are: `alias/moodlestack/<stack>/`.
    pub fn kms_alias_prefix(&self) -> String {
        format!("alias/moodlestack/{}/", self.stack)
    }
    /// The alias of the KMS key of the stack's logs and alerts.
    pub fn kms_alias(&self) -> String {
        format!("{}observability", self.kms_alias_prefix())
    }
    /// The SNS topic the stack's alarms notify: `<stack>-alerts`.
    pub fn alert_topic(&self) -> String {
        self.n("alerts")
    }
    /// A metric alarm of the stack: `<stack>-<what>` (`demo-alb-5xx`).
    pub fn alarm(&self, what: &str) -> String {
        self.n(what)
    }
    /// Where the stack's alarm names start: `<stack>-`.
    pub fn alarm_prefix(&self) -> String {
        self.n("")
    }
    /// The stack's CloudWatch dashboard: `moodlestack-<stack>` (dashboards cannot be tagged:
    /// the name alone says it is the stack's, so it is not under the `<stack>-` prefix users'
    /// own dashboards may share).
    pub fn dashboard(&self) -> String {
        format!("moodlestack-{}", self.stack)
    }
    /// SSM parameter that holds the apply lease.
    pub fn lease_parameter(&self) -> String {
        format!("/moodlestack/{}/lease", self.stack)
    }
}

/// The logs every node ships to CloudWatch Logs, one group each ([`Names::log_group`]): Apache's
/// access and error logs, PHP-FPM's log and slow log, Moodle's cron output and the install/upgrade
/// log (the stable node only), and the boot (user-data) log.
pub const LOG_SOURCES: &[&str] = &[
    "apache-access",
    "apache-error",
    "php-fpm",
    "php-fpm-slow",
    "cron",
    "boot",
    INSTALL_UPGRADE,
];

/// The log source of the stable node's install/upgrade and smoke-test lines
/// (`moodle-install-upgrade`, `moodle-smoke-test`): what `apply` follows after a code change.
pub const INSTALL_UPGRADE: &str = "install-upgrade";

/// The metric (value 1, no dimensions, in [`Names::metric_namespace`]) the stable node puts after
/// each successful Moodle cron run.
pub const CRON_HEARTBEAT: &str = "CronHeartbeat";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_start_with_the_stack() {
        let n = Names::for_stack("demo", "eu-west-1");
        assert_eq!(n.db_parameter_group("mysql8.0"), "demo-mysql8-0");
        assert_eq!(
            n.name_tag("net.subnet.private.a"),
            "demo-net-subnet-private-a"
        );
        assert_eq!(n.load_balancer(), "demo-alb");
        assert_eq!(n.code_snapshot("v4.5.5 php8.3"), "demo-code-v4-5-5-php8-3");
        assert_eq!(
            n.code_snapshot("v5.0.0-rc1 php8.4"),
            "demo-code-v5-0-0-rc1-php8-4"
        );
        assert_eq!(n.node_role(), "demo-eu-west-1-node");
        assert_ne!(
            Names::for_stack("demo", "us-east-1").node_role(),
            n.node_role(),
            "IAM is global: one stack name in two regions needs two roles"
        );
        assert_eq!(n.lease_parameter(), "/moodlestack/demo/lease");
        assert_eq!(
            n.log_group("php-fpm-slow"),
            "/moodlestack/demo/php-fpm-slow"
        );
        assert_eq!(n.metric_namespace(), "Moodlestack/demo");
    }
}
