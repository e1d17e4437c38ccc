//! Renders what runs on every node: user-data (web and stable), config.php, the Apache vhost,
//! the php-fpm pool, php.ini overrides and the drain watcher, from the Handlebars templates in
//! `templates/` (strict mode, no HTML escaping).
//!
//! Every file a node needs is rendered on its own (for `moodlestack render --out DIR`) and
//! embedded verbatim, in a quoted heredoc, in that node's user-data: user-data is the only thing
//! a launch template carries, so any change to config.php, the pool or the vhost changes
//! user-data and rolls the fleet.

pub mod pool;
pub mod quote;
mod templates;
pub mod upgrade_log;

use moodlestack_stack::model::HEALTH_ENDPOINT;
use moodlestack_stack::{Names, Stack};
use serde_json::{json, Value};

/// Values known only once the stack's services exist. `moodlestack render` fills them from the
/// live stack or with placeholders; the graph builder fills them with markers that become
/// references (`Value::Interpolated`) in the launch templates.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoints {
    pub region: String,
    /// Database writer endpoint (host name).
    pub db_host: String,
    pub db_port: String,
    /// ARN of the RDS-managed master user secret (JSON with `username` and `password`).
    pub db_secret_arn: String,
    /// Redis primary endpoint (host name).
    pub redis_host: String,
    pub redis_port: String,
    /// ARN of the secret holding the Redis AUTH token (None when `cache.auth` is off).
    pub redis_auth_secret_arn: Option<String>,
    /// EFS file system id (`fs-...`).
    pub efs_id: String,
    /// The stack's code bucket (artefacts of the Moodle code, `code/<version>.tar.gz`).
    pub code_bucket: String,
}

impl Endpoints {
    /// Clear placeholders for everything known only after apply (`moodlestack render --offline`,
    /// or a stack that does not exist yet). Ports are the engines' defaults, which moodlestack
    /// always uses.
    pub fn placeholders(stack: &Stack) -> Endpoints {
        Endpoints {
            region: stack.region.clone(),
            db_host: "<db endpoint: known after apply>".into(),
            db_port: stack.database.engine.port().to_string(),
            db_secret_arn: "<db secret arn: known after apply>".into(),
            redis_host: "<redis endpoint: known after apply>".into(),
            redis_port: "6379".into(),
            redis_auth_secret_arn: stack
                .cache
                .auth
                .then(|| "<redis auth secret arn: known after apply>".to_string()),
            efs_id: "<efs id: known after apply>".into(),
            code_bucket: "<code bucket: known after apply>".into(),
        }
    }
}

/// Which node a user-data script is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Spot web fleet: serves requests, never runs cron.
    Web,
    /// The On-Demand instance: runs cron, install/upgrade and async backups.
    Stable,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Web => "web",
            Role::Stable => "stable",
        }
    }
}

/// One rendered file: its path relative to the output directory, and its content.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RenderedFile {
    pub path: String,
    pub content: String,
}

#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("template {template}: {message}")]
    Template { template: String, message: String },
    /// A stack or endpoint value that cannot be written safely into a node's files.
    #[error("{message}")]
    Input { message: String },
}

/// EC2's limit on user-data (raw, before base64). It is sent gzip-compressed
/// ([`moodlestack_model::user_data`]), so the limit is on the compressed size.
pub const MAX_USER_DATA: usize = moodlestack_model::user_data::LIMIT;
/// Rendered user-data may use this much, gzip-compressed: the rest is headroom for the endpoint
/// values that replace the graph's markers (counted as if they did not compress). Real values add about 200 bytes to the markers' length (a secret
/// ARN of about 100 characters replaces a 30-character marker twice, host names are 30 longer);
/// `user_data_fits_ec2s_limit_with_real_endpoints` checks realistic values.
pub const USER_DATA_BUDGET: usize = MAX_USER_DATA - 512;

/// The heredoc delimiter of every file embedded in user-data.
pub const HEREDOC_DELIMITER: &str = "MOODLESTACK_EOF";

/// Where the boot-time secrets live on a node (root:www-data 0640).
pub const SECRETS_DIR: &str = "/etc/moodle";
pub const DB_PASSWORD_FILE: &str = "/etc/moodle/db-password";
pub const REDIS_AUTH_FILE: &str = "/etc/moodle/redis-auth";
/// config.php's `$CFG->upgradekey`: random per node, written once by moodle-secrets.
pub const UPGRADE_KEY_FILE: &str = "/etc/moodle/upgrade-key";
/// Present while Moodle's database is installed and matches the node's code (moodle-gate); the
/// vhost answers 503 without it, and the stable node's cron does not run.
pub const CURRENT_FLAG: &str = "/run/moodle/current";
/// How often moodle-gate checks the database against the node's code (its timer).
pub const GATE_EVERY_SECS: u32 = 15;
/// Node-local Moodle directories (root volume, not shared).
pub const LOCAL_CACHE_DIR: &str = "/var/cache/moodle";
pub const LOCAL_REQUEST_DIR: &str = "/var/cache/moodle-request";
/// Present while a web node drains before a Spot reclaim; the vhost then fails ALB health checks.
pub const DRAIN_FLAG: &str = "/run/moodle/draining";
/// The logs a node ships to CloudWatch Logs (the CloudWatch agent, configured from
/// [`agent_config`]); the vhost, the php-fpm pool and the cron wrapper write them here.
pub const APACHE_ACCESS_LOG: &str = "/var/log/apache2/moodle-access.log";
pub const APACHE_ERROR_LOG: &str = "/var/log/apache2/moodle-error.log";
/// Moodle's cron output on the stable node (written by `/usr/local/sbin/moodle-cron`).
pub const CRON_LOG: &str = "/var/log/moodle/cron.log";
/// The stable node's install/upgrade and smoke-test lines (`moodle-install-upgrade`,
/// `moodle-smoke-test`, also in the journal); `apply` follows them after a code change
/// ([`upgrade_line`]).
pub const INSTALL_UPGRADE_LOG: &str = "/var/log/moodle/install-upgrade.log";
/// cloud-init's copy of the user-data script's output: the boot log.
pub const BOOT_LOG: &str = "/var/log/cloud-init-output.log";
/// Where the CloudWatch agent's configuration goes on a node.
pub const AGENT_CONFIG: &str = "/opt/aws/amazon-cloudwatch-agent/etc/moodlestack.json";
/// The ALB's health check script (the vhost's Alias at `HEALTH_ENDPOINT`).
pub const HEALTH_SCRIPT: &str = "/usr/local/lib/moodlestack/health.php";
/// The tool_forcedcache plugin (MUC configuration from config.php).
pub const FORCEDCACHE_GIT_URL: &str = "https://github.com/catalyst/moodle-tool_forcedcache.git";

/// A file a node needs: where it goes, who owns it, and which template renders it.
struct NodeFile {
    /// Key in the user-data template's `files` object.
    key: &'static str,
    template: &'static str,
    path: String,
    owner: &'static str,
    mode: &'static str,
}

fn node_files(stack: &Stack, role: Role) -> Vec<NodeFile> {
    let v = &stack.moodle.php_version;
    let f = |key, template, path: String, owner, mode| NodeFile {
        key,
        template,
        path,
        owner,
        mode,
    };
    let mut files = vec![
        f(
            "php_ini",
            "files/php.ini",
            format!("/etc/php/{v}/mods-available/moodle.ini"),
            "root:root",
            "0644",
        ),
        f(
            "fpm_pool",
            "files/php-fpm-pool.conf",
            format!("/etc/php/{v}/fpm/pool.d/moodle.conf"),
            "root:root",
            "0644",
        ),
        f(
            "fpm_dropin",
            "files/php-fpm-dropin.conf",
            format!("/etc/systemd/system/php{v}-fpm.service.d/moodlestack.conf"),
            "root:root",
            "0644",
        ),
        f(
            "apache_vhost",
            "files/apache-vhost.conf",
            "/etc/apache2/sites-available/moodle.conf".into(),
            "root:root",
            "0644",
        ),
        f(
            "secrets_script",
            "files/moodle-secrets.sh",
            "/usr/local/sbin/moodle-secrets".into(),
            "root:root",
            "0755",
        ),
        f(
            "secrets_service",
            "files/moodle-secrets.service",
            "/etc/systemd/system/moodle-secrets.service".into(),
            "root:root",
            "0644",
        ),
        f(
            "secrets_timer",
            "files/moodle-secrets.timer",
            "/etc/systemd/system/moodle-secrets.timer".into(),
            "root:root",
            "0644",
        ),
        f(
            "gate_script",
            "files/moodle-gate.sh",
            "/usr/local/sbin/moodle-gate".into(),
            "root:root",
            "0755",
        ),
        f(
            "gate_service",
            "files/moodle-gate.service",
            "/etc/systemd/system/moodle-gate.service".into(),
            "root:root",
            "0644",
        ),
        f(
            "gate_timer",
            "files/moodle-gate.timer",
            "/etc/systemd/system/moodle-gate.timer".into(),
            "root:root",
            "0644",
        ),
        f(
            "cloudwatch_agent",
            "files/cloudwatch-agent.json",
            AGENT_CONFIG.into(),
            "root:root",
            "0644",
        ),
        f(
            "logrotate",
            "files/logrotate",
            "/etc/logrotate.d/moodlestack".into(),
            "root:root",
            "0644",
        ),
        f(
            "health",
            "files/moodle-health.php",
            HEALTH_SCRIPT.into(),
            "root:root",
            "0644",
        ),
        f(
            "data_restored",
            "files/moodledata-restored.sh",
            "/usr/local/sbin/moodledata-restored".into(),
            "root:root",
            "0755",
        ),
        f(
            "config_php",
            "files/config.php",
            format!("{}/config.php", stack.moodle.dirroot),
            "root:www-data",
            "0640",
        ),
    ];
    match role {
        Role::Web => files.extend([
            f(
                "imds",
                "files/imds.sh",
                "/usr/local/lib/moodlestack/imds.sh".into(),
                "root:root",
                "0644",
            ),
            f(
                "spot_watcher",
                "files/moodle-spot-watcher.sh",
                "/usr/local/sbin/moodle-spot-watcher".into(),
                "root:root",
                "0755",
            ),
            f(
                "spot_watcher_unit",
                "files/moodle-spot-watcher.service",
                "/etc/systemd/system/moodle-spot-watcher.service".into(),
                "root:root",
                "0644",
            ),
        ]),
        Role::Stable => files.extend([
            f(
                "smoke_test",
                "files/moodle-smoke-test.sh",
                "/usr/local/sbin/moodle-smoke-test".into(),
                "root:root",
                "0755",
            ),
            f(
                "install_upgrade",
                "files/moodle-install-upgrade.sh",
                "/usr/local/sbin/moodle-install-upgrade".into(),
                "root:root",
                "0755",
            ),
            f(
                "install_upgrade_unit",
                "files/moodle-install-upgrade.service",
                "/etc/systemd/system/moodle-install-upgrade.service".into(),
                "root:root",
                "0644",
            ),
            f(
                "cron_script",
                "files/moodle-cron.sh",
                "/usr/local/sbin/moodle-cron".into(),
                "root:root",
                "0755",
            ),
            f(
                "cron",
                "files/moodle-cron",
                "/etc/cron.d/moodle".into(),
                "root:root",
                "0644",
            ),
        ]),
    }
    files
}

/// The user-data script of a node.
pub fn user_data(stack: &Stack, role: Role, e: &Endpoints) -> Result<String, RenderError> {
    Ok(render_node(stack, role, e)?.0)
}

/// Every rendered file, for `moodlestack render --out DIR`: per node role, the user-data script
/// (`web/user-data.sh`) and each file it writes, at its path on the node (`web/etc/...`).
pub fn all_files(stack: &Stack, e: &Endpoints) -> Result<Vec<RenderedFile>, RenderError> {
    let mut out = Vec::new();
    for role in [Role::Web, Role::Stable] {
        let (user_data, files) = render_node(stack, role, e)?;
        out.push(RenderedFile {
            path: format!("{}/user-data.sh", role.as_str()),
            content: user_data,
        });
        for (path, content) in files {
            out.push(RenderedFile {
                path: format!("{}/{}", role.as_str(), path.trim_start_matches('/')),
                content,
            });
        }
    }
    Ok(out)
}

/// Renders a node's files, then its user-data embedding them. Returns the user-data and the
/// files as (absolute path on the node, content).
fn render_node(
    stack: &Stack,
    role: Role,
    e: &Endpoints,
) -> Result<(String, Vec<(String, String)>), RenderError> {
    let hb = templates::registry()?;
    let mut ctx = context(stack, role, e)?;
    let mut embedded = serde_json::Map::new();
    let mut rendered = Vec::new();
    for nf in node_files(stack, role) {
        let content = templates::render(hb, nf.template, &ctx)?;
        if content.lines().any(|l| l == HEREDOC_DELIMITER) {
            return Err(RenderError::Template {
                template: nf.template.into(),
                message: format!("a line equal to the heredoc delimiter {HEREDOC_DELIMITER}"),
            });
        }
        if !content.ends_with('\n') {
            return Err(RenderError::Template {
                template: nf.template.into(),
                message: "does not end with a newline".into(),
            });
        }
        let dir = nf
            .path
            .rsplit_once('/')
            .map(|(d, _)| d.to_string())
            .unwrap_or_default();
        embedded.insert(
            nf.key.into(),
            json!({
                "path": nf.path, "dir": dir, "owner": nf.owner, "mode": nf.mode,
                "content": content, "delimiter": HEREDOC_DELIMITER,
            }),
        );
        rendered.push((nf.path, content));
    }
    ctx["files"] = Value::Object(embedded);
    let template = match role {
        Role::Web => "user-data/web.sh",
        Role::Stable => "user-data/stable.sh",
    };
    let user_data = templates::render(hb, template, &ctx)?;
    let compressed = moodlestack_model::user_data::compress(&user_data).len();
    if compressed > USER_DATA_BUDGET {
        return Err(input(format!(
            "the {} user-data is {} bytes, {compressed} gzip-compressed; EC2 takes at most \
             {MAX_USER_DATA} and endpoint values need up to {} more: shorten moodle.config or \
             the templates",
            role.as_str(),
            user_data.len(),
            MAX_USER_DATA - USER_DATA_BUDGET
        )));
    }
    Ok((user_data, rendered))
}

fn input(message: String) -> RenderError {
    RenderError::Input { message }
}

/// A path written into shell, Apache, systemd and cron files: absolute, and only characters
/// none of them treats specially.
fn check_path(field: &str, p: &str) -> Result<(), RenderError> {
    let ok = p.starts_with('/')
        && p.len() > 1
        && !p.ends_with('/')
        && p.chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-".contains(c));
    if ok {
        Ok(())
    } else {
        Err(input(format!(
            "{field} `{p}` must be an absolute path of letters, digits and `/._-` without a \
             trailing slash, e.g. `/var/moodledata`"
        )))
    }
}

/// Endpoint values are copied verbatim into single-quoted shell and PHP strings and heredocs.
fn check_endpoint(field: &str, v: &str) -> Result<(), RenderError> {
    if v.is_empty() || v.contains(['\'', '\\', '\n', '\r', '"', '`']) {
        return Err(input(format!(
            "endpoint {field} `{v}` is empty or contains a quote, backslash or newline"
        )));
    }
    Ok(())
}

/// The host of `wwwroot` (`moodle.example.org` of `https://moodle.example.org/`).
fn server_name(wwwroot: &str) -> Result<String, RenderError> {
    let rest = wwwroot
        .strip_prefix("https://")
        .or_else(|| wwwroot.strip_prefix("http://"))
        .ok_or_else(|| {
            input(format!(
                "moodle.wwwroot `{wwwroot}` must start with https:// or http://"
            ))
        })?;
    let host_port = rest.split('/').next().unwrap_or_default();
    let host = host_port.split(':').next().unwrap_or_default();
    if host.is_empty()
        || !host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || ".-".contains(c))
    {
        return Err(input(format!(
            "moodle.wwwroot `{wwwroot}` must name a host, e.g. https://moodle.example.org"
        )));
    }
    if wwwroot.ends_with('/') {
        return Err(input(format!(
            "moodle.wwwroot `{wwwroot}` must not end with a slash (Moodle requires it)"
        )));
    }
    Ok(host.to_string())
}

/// config.php settings moodlestack writes itself; `moodle.config` may not set them.
const MANAGED_CONFIG: &[&str] = &[
    "dbtype",
    "dblibrary",
    "dbhost",
    "dbname",
    "dbuser",
    "dbpass",
    "prefix",
    "dboptions",
    "wwwroot",
    "dataroot",
    "admin",
    "directorypermissions",
    "sslproxy",
    "cachedir",
    "tempdir",
    "localcachedir",
    "localrequestdir",
    "xsendfile",
    "lock_factory",
    "getremoteaddrconf",
    "pathtogs",
    "pathtopdftoppm",
    "alternative_cache_factory_class",
    "tool_forcedcache_config_array",
    "session_handler_class",
];
/// Settings that hold secrets: never in a stack file (they would land in user-data).
const SECRET_CONFIG: &[&str] = &[
    "smtppass",
    "proxypassword",
    "session_redis_auth",
    "upgradekey",
];

fn extra_config(stack: &Stack) -> Result<Vec<Value>, RenderError> {
    let mut out = Vec::new();
    for (key, value) in &stack.moodle.config {
        if !quote::is_php_identifier(key) {
            return Err(input(format!(
                "moodle.config.{key}: not a valid $CFG setting name (letters, digits, underscores)"
            )));
        }
        if SECRET_CONFIG.contains(&key.as_str()) {
            return Err(input(format!(
                "moodle.config.{key} holds a secret: secrets never go into a stack file (it would \
                 be readable in the launch template's user-data); set it in Moodle's admin pages"
            )));
        }
        if MANAGED_CONFIG.contains(&key.as_str()) || key.starts_with("session_redis_") {
            return Err(input(format!(
                "moodle.config.{key} is written by moodlestack itself (from the stack's database, \
                 cache, files and moodle settings); remove it from moodle.config"
            )));
        }
        out.push(json!({ "key": key, "value_php": quote::php_literal(value) }));
    }
    Ok(out)
}

/// The key of the code artefact of `m`'s code version in the stack's code bucket: named by the
/// pinned refs, so a new version is a new key and an artefact is never overwritten.
pub fn code_key(m: &moodlestack_stack::model::Moodle) -> Result<String, RenderError> {
    let forcedcache = m.forcedcache_ref().map_err(input)?;
    Ok(format!(
        "code/moodle-{}-forcedcache-{forcedcache}.tar.gz",
        m.git_ref
    ))
}

/// The template context of a node of `role`.
fn context(stack: &Stack, role: Role, e: &Endpoints) -> Result<Value, RenderError> {
    let m = &stack.moodle;
    let v = &m.php_version;
    let mut parts = v.split('.');
    let version_ok = matches!((parts.next(), parts.next(), parts.next()), (Some(a), Some(b), None)
        if !a.is_empty() && !b.is_empty() && (a.to_owned() + b).chars().all(|c| c.is_ascii_digit()));
    if !version_ok {
        return Err(input(format!(
            "moodle.php_version `{v}` must look like `8.3`"
        )));
    }
    check_path("moodle.dataroot", &m.dataroot)?;
    check_path("moodle.dirroot", &m.dirroot)?;
    let host = server_name(&m.wwwroot)?;
    for (field, value) in [
        ("region", &e.region),
        ("db_host", &e.db_host),
        ("db_port", &e.db_port),
        ("db_secret_arn", &e.db_secret_arn),
        ("redis_host", &e.redis_host),
        ("redis_port", &e.redis_port),
        ("efs_id", &e.efs_id),
        ("code_bucket", &e.code_bucket),
    ] {
        check_endpoint(field, value)?;
    }
    let redis_auth_arn = match (stack.cache.auth, &e.redis_auth_secret_arn) {
        (true, Some(arn)) => {
            check_endpoint("redis_auth_secret_arn", arn)?;
            arn.clone()
        }
        (true, None) => {
            return Err(input(
                "cache.auth is on but no Redis AUTH secret ARN was given to the renderer".into(),
            ))
        }
        (false, _) => String::new(),
    };

    let engine = stack.database.engine;
    let ubuntu_php = v == "8.3";
    let mut ext = vec![
        "fpm", "cli", "bcmath", "bz2", "curl", "gd", "intl", "mbstring",
    ];
    ext.push(if engine.is_mysql_family() {
        "mysql"
    } else {
        "pgsql"
    });
    ext.extend(["soap", "xml", "zip", "opcache", "readline"]);
    // Ubuntu 24.04 ships the Redis extension for its PHP 8.3 as `php-redis`; the ondrej/php PPA
    // has one package per PHP version. The list is a shell brace expansion: `php8.3-{fpm,cli,...}`.
    if !ubuntu_php {
        ext.push("redis");
    }
    let mut php_packages = format!("php{v}-{{{}}}", ext.join(","));
    if ubuntu_php {
        php_packages.push_str(" php-redis");
    }

    let pool_ctx = pool_context(stack, role)?;
    let logs = log_files(stack, role);
    let agent = serde_json::to_string_pretty(&agent_config(stack, role, &e.region))
        .expect("the agent configuration serializes");
    let code_key = code_key(m)?;
    let names = Names::of(stack);
    let idle = stack.load_balancer.idle_timeout.max(1);

    Ok(json!({
        "stack_name": stack.name,
        "region": e.region,
        "role": role.as_str(),
        "web": role == Role::Web,
        "stable": role == Role::Stable,
        "php": {
            "version": v,
            "ppa": !ubuntu_php,
            "packages": php_packages,
            "bin": format!("/usr/bin/php{v}"),
            "fpm_service": format!("php{v}-fpm"),
            "socket": format!("/run/php/php{v}-fpm-moodle.sock"),
            "upload_max_mb": 512,
            "post_max_mb": 520,
            "max_execution_time": 300,
            "memory_limit_mb": 256,
            "max_input_vars": 5000,
            "opcache_mb": pool::OPCACHE_MIB,
        },
        "db": {
            "dbtype": engine.moodle_dbtype(),
            "engine": engine.rds_name(),
            "mysql_family": engine.is_mysql_family(),
            "host": e.db_host,
            "port": e.db_port,
            "name": stack.database.db_name,
            "user": stack.database.username,
            "secret_arn": e.db_secret_arn,
            "password_file": DB_PASSWORD_FILE,
            // Locks that end with the database connection: a killed cron's locks do not
            // outlive it (db_record_lock_factory would keep them for 24 hours).
            "lock_factory": if engine.is_mysql_family() {
                "\\core\\lock\\mysql_lock_factory"
            } else {
                "\\core\\lock\\postgres_lock_factory"
            },
        },
        "redis": {
            "host": e.redis_host,
            "port": e.redis_port,
            "tls": stack.cache.transit_encryption,
            "auth": stack.cache.auth,
            "auth_secret_arn": redis_auth_arn,
            "auth_file": REDIS_AUTH_FILE,
            "session_prefix": format!("{}_sess_", stack.name),
            "muc_prefix": format!("{}_muc_", stack.name),
            // Waiting longer for a session lock than the ALB keeps the connection is pointless.
            "acquire_lock_timeout": idle.min(120),
            // A reclaimed Spot node cannot release its session locks: let them expire soon after
            // the longest request could have ended instead of Moodle's default 2 hours.
            "lock_expire": 300 + 60,
        },
        "efs": {
            "id": e.efs_id,
            "dns": format!("{}.efs.{}.amazonaws.com", e.efs_id, e.region),
        },
        "moodle": {
            "wwwroot": m.wwwroot,
            "server_name": host,
            // The Host header of a request to wwwroot (host and port).
            "http_host": m.wwwroot.split("://").nth(1).and_then(|r| r.split('/').next()).unwrap_or_default(),
            "sslproxy": stack.https(),
            "git_url": m.git_url,
            "git_ref": m.git_ref,
            "dataroot": m.dataroot,
            "dirroot": m.dirroot,
            "admin_email": m.admin_email,
            "prefix": m.prefix,
            "localcachedir": LOCAL_CACHE_DIR,
            "localrequestdir": LOCAL_REQUEST_DIR,
            "forcedcache_git_url": FORCEDCACHE_GIT_URL,
            "forcedcache_ref": m.forcedcache_ref().map_err(input)?,
            "state_dir": format!("{}/moodlestack", m.dataroot),
        },
        "code": {
            "bucket": e.code_bucket,
            "url": format!("s3://{}/{code_key}", e.code_bucket),
            "key": code_key,
        },
        "config_extra": extra_config(stack)?,
        "pool": pool_ctx,
        "secrets_dir": SECRETS_DIR,
        "upgrade_key_file": UPGRADE_KEY_FILE,
        "current_flag": CURRENT_FLAG,
        "gate_every_secs": GATE_EVERY_SECS,
        // After an upgrade the stable node waits one gate period and a margin before it lifts
        // maintenance mode, so every old node's gate has closed on the new database.
        "gate_settle_secs": GATE_EVERY_SECS + 5,
        "drain_flag": DRAIN_FLAG,
        // Moodle's CLI maintenance mode (admin/cli/maintenance.php --enable).
        "maintenance_file": format!("{}/climaintenance.html", m.dataroot),
        "health_path": stack.load_balancer.health_check_path,
        "health_endpoint": HEALTH_ENDPOINT,
        "health_script": HEALTH_SCRIPT,
        "health_dir": HEALTH_SCRIPT.rsplit_once('/').map(|(d, _)| d).unwrap_or_default(),
        "health_file": HEALTH_SCRIPT.rsplit_once('/').map(|(_, f)| f).unwrap_or_default(),
        "asg_name": names.autoscaling_group(),
        "drain_hook": names.drain_hook(),
        "capacity_rebalance": stack.web.capacity_rebalance,
        "logs": logs.iter().map(|l| (l.key.to_string(), Value::from(l.path.clone()))).collect::<serde_json::Map<_, _>>(),
        "cloudwatch_agent": agent,
        "metrics": {
            "namespace": names.metric_namespace(),
            "cron_heartbeat": moodlestack_stack::names::CRON_HEARTBEAT,
        },
    }))
}

/// One log file a node ships: its key in the templates' `logs` object, its path on the node, the
/// source (its group is [`Names::log_group`]) and, for entries that span lines, the pattern that
/// starts one.
struct LogFile {
    key: &'static str,
    path: String,
    source: &'static str,
    multi_line: Option<&'static str>,
}

/// The log files of a node of `role`: each of [`moodlestack_stack::names::LOG_SOURCES`] (cron on the
/// stable node only), at the paths the vhost, the pool and the cron wrapper write.
fn log_files(stack: &Stack, role: Role) -> Vec<LogFile> {
    let v = &stack.moodle.php_version;
    // PHP-FPM's entries (and a slow request's stack trace) start with `[01-Dec-2026 10:00:00]`.
    let fpm_entry = Some(r"^\[\d{2}-\w{3}-\d{4} ");
    let mut files = vec![
        LogFile {
            key: "apache_access",
            path: APACHE_ACCESS_LOG.into(),
            source: "apache-access",
            multi_line: None,
        },
        LogFile {
            key: "apache_error",
            path: APACHE_ERROR_LOG.into(),
            source: "apache-error",
            multi_line: None,
        },
        LogFile {
            key: "fpm",
            path: format!("/var/log/php{v}-fpm.log"),
            source: "php-fpm",
            multi_line: fpm_entry,
        },
        LogFile {
            key: "fpm_slow",
            path: format!("/var/log/php{v}-fpm-moodle-slow.log"),
            source: "php-fpm-slow",
            multi_line: fpm_entry,
        },
        LogFile {
            key: "boot",
            path: BOOT_LOG.into(),
            source: "boot",
            multi_line: None,
        },
    ];
    if role == Role::Stable {
        files.extend([
            LogFile {
                key: "cron",
                path: CRON_LOG.into(),
                source: "cron",
                multi_line: None,
            },
            LogFile {
                key: "install_upgrade",
                path: INSTALL_UPGRADE_LOG.into(),
                source: moodlestack_stack::names::INSTALL_UPGRADE,
                multi_line: None,
            },
        ]);
    }
    files
}

/// The CloudWatch agent's configuration on a node of `role`: each of its [`log_files`] to its
/// group of the stack (`/moodlestack/<stack>/<source>`), in a log stream named by the instance
/// id. The groups (their retention and encryption) are the stack's resources; the agent only
/// writes to them.
pub fn agent_config(stack: &Stack, role: Role, region: &str) -> Value {
    let names = Names::of(stack);
    let collect: Vec<Value> = log_files(stack, role)
        .into_iter()
        .map(|l| {
            let mut entry = json!({
                "file_path": l.path,
                "log_group_name": names.log_group(l.source),
                "log_stream_name": "{instance_id}",
            });
            if let Some(p) = l.multi_line {
                entry["multi_line_start_pattern"] = p.into();
            }
            entry
        })
        .collect();
    json!({
        "agent": { "region": region },
        "logs": {
            "logs_collected": { "files": { "collect_list": collect } },
            "force_flush_interval": 5,
        },
    })
}

/// The pool numbers of a node of `role`, with the arithmetic for the rendered comment. Web nodes
/// carry one line per configured type (the numbers user-data applies for the type it boots as) and the
/// smallest type's values as the file's own (safe should the boot-time sizing not run).
fn pool_context(stack: &Stack, role: Role) -> Result<Value, RenderError> {
    let types: Vec<String> = match role {
        Role::Web => stack.web.instance_types.clone(),
        Role::Stable => vec![stack.stable.instance_type.clone()],
    };
    if types.is_empty() {
        return Err(input(
            "web.instance_types is empty: list 3-6 instance types".into(),
        ));
    }
    let mut sized = Vec::new();
    for t in &types {
        sized.push((t.clone(), pool::size_for_type(t, role)?));
    }
    let width = types.iter().map(|t| t.len()).max().unwrap_or(0);
    let lines: Vec<String> = sized
        .iter()
        .map(|(t, p)| {
            pool::explain(
                &format!("{t:<width$} {:>6} MiB {:>2} vCPU", p.memory_mib, p.vcpus),
                p,
            )
        })
        .collect();
    let (chosen_type, chosen) = sized
        .iter()
        .min_by_key(|(_, p)| p.max_children)
        .cloned()
        .expect("at least one type");
    let by_type: Vec<Value> = sized
        .iter()
        .map(|(t, p)| json!({ "instance_type": t, "size": p }))
        .collect();
    Ok(json!({
        "instance_type": chosen_type,
        "size": chosen,
        "lines": lines,
        "sizes": by_type,
        "os_mib": pool::OS_RESERVE_MIB,
        "apache_mib": pool::APACHE_RESERVE_MIB,
        "opcache_mib": pool::OPCACHE_MIB,
        "cron_mib": pool::CRON_RESERVE_MIB,
        "reserve_mib": pool::reserve_mib(role),
        "avg_mib": pool::AVG_PROCESS_MIB,
        "margin_pct": pool::MARGIN_PCT,
        "min_children": pool::MIN_CHILDREN,
        "per_vcpu": pool::PER_VCPU,
    }))
}

/// The user Moodle runs as on every node (Apache and the PHP-FPM pool; cron and install/upgrade
/// run as it too, see `templates/files/moodle-cron.hbs`).
pub const WEB_USER: &str = "www-data";

/// The shell command `moodlestack run` sends to the stable node (SSM Run Command,
/// `AWS-RunShellScript`, which runs as root): Moodle's CLI script `script` (a path relative to
/// `moodle.dirroot`, e.g. `admin/cli/purge_caches.php`) with `args`, run by the stack's PHP as the
/// web server user in the Moodle directory, as cron and the upgrade script run. Every word is
/// quoted; the command's exit code is the script's.
pub fn cli_command(stack: &Stack, script: &str, args: &[String]) -> String {
    let php = format!("/usr/bin/php{}", stack.moodle.php_version);
    let mut words = vec![
        "runuser".to_string(),
        "-u".into(),
        WEB_USER.into(),
        "--".into(),
        quote::sh(&php),
        quote::sh(script),
    ];
    words.extend(args.iter().map(|a| quote::sh(a)));
    format!(
        "cd {} && exec {}",
        quote::sh(&stack.moodle.dirroot),
        words.join(" ")
    )
}
