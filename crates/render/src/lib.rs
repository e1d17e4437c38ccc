//! Renders what runs on every node: user-data (web and stable), config.php, the Apache vhost,
//! the php-fpm pool, php.ini overrides and the Spot watcher, from the Handlebars templates in
//! `templates/` (strict mode, no HTML escaping).

use moodlestack_stack::Stack;

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
}

/// Which node a user-data script is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Spot web fleet: serves requests, never runs cron.
    Web,
    /// The On-Demand instance: runs cron, install/upgrade and async backups.
    Stable,
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
}

/// The user-data script of a node.
// TODO(issue 3): implement with the templates.
pub fn user_data(_stack: &Stack, _role: Role, _e: &Endpoints) -> Result<String, RenderError> {
    Err(RenderError::Template { template: "user-data".into(), message: "not written yet".into() })
}

/// Every rendered file, for `moodlestack render --out DIR`.
// TODO(issue 3): implement with the templates.
pub fn all_files(_stack: &Stack, _e: &Endpoints) -> Result<Vec<RenderedFile>, RenderError> {
    Err(RenderError::Template { template: "all".into(), message: "not written yet".into() })
}
