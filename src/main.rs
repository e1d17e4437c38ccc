//! `moodlestack`: plan, apply and keep in sync a high-availability Moodle deployment on AWS.
//!
//! Exit codes: 0 success; 1 error (invalid stack file, AWS error, refused plan, usage error); 2 `plan
//! --detailed-exitcode` found changes; 130 interrupted.

mod cmd;

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser, Debug)]
#[command(name = "moodlestack", version, about, long_about = None)]
#[command(
    after_help = "Exit codes: 0 success (a stack with only warnings is valid); 1 error \
(invalid stack file, AWS error, refused plan, command-line usage error); 2 changes present \
(plan --detailed-exitcode); 130 interrupted."
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command takes.
#[derive(Args, Debug, Clone)]
pub struct Global {
    /// Override the stack's `name` (e.g. one stack per CI branch: `--name pr-142`). Every AWS
    /// name derives from it, so it must stay short enough for them (at most 28 characters);
    /// problems are reported against this argument.
    #[arg(long, global = true, value_name = "NAME")]
    pub name: Option<String>,
    /// Override any field of the stack file before validation: a dotted path with list indexes
    /// and a YAML value, e.g. `--set web.max=4`, `--set web.instance_types=[m6i.large,c6i.large,t3.large]`,
    /// `--set web.instance_types[0]=m7i.large`, `--set load_balancer.certificate_arn=arn:aws:acm:...`.
    /// Repeatable; applied in order. An unknown path is an error naming the closest one.
    #[arg(long = "set", global = true, value_name = "PATH=VALUE")]
    pub set: Vec<String>,
    /// More output: `validate -v` also prints a summary of the stack (network, database, fleet,
    /// derived names). Repeat for more.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Only errors: no progress, no warnings, no success message (the exit code tells).
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// When to color output: `auto` colors a terminal unless `NO_COLOR` is set.
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,
    /// After the command, print the AWS requests made (by service and operation) and the wall
    /// time of each phase.
    #[arg(long, global = true)]
    pub stats: bool,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    /// Color when writing to a terminal and `NO_COLOR` is not set.
    Auto,
    /// Always color (e.g. CI logs that render ANSI colors).
    Always,
    /// Never color.
    Never,
}

/// How `plan` prints the plan.
#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum PlanFormat {
    /// For a terminal (colored when it is one).
    Text,
    /// For a pull-request comment or a CI job summary.
    Markdown,
    /// For programs (the format `plan --out` saves).
    Json,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Check a stack file and report every problem with its location.
    Validate {
        /// The stack file (YAML).
        stack: PathBuf,
    },
    /// Print the JSON Schema of stack files (for editors' YAML language servers).
    Schema,
    /// Write every rendered file (user-data, config.php, vhost, php-fpm pool, php.ini, Spot
    /// watcher) for review. Endpoints come from the live stack when it exists.
    Render {
        /// The stack file (YAML).
        stack: PathBuf,
        /// Directory to write into (created if missing).
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// Do not look at AWS: show placeholders for values known only after provisioning.
        #[arg(long)]
        offline: bool,
    },
    /// Show what apply would change.
    Plan {
        /// The stack file (YAML).
        stack: PathBuf,
        /// How to print the plan: `text` (the terminal), `markdown` (a pull-request comment or a
        /// CI job summary: data loss first, a table of changes, every change in a collapsed
        /// block) or `json` (format documented in README).
        #[arg(long, value_enum, default_value_t = PlanFormat::Text)]
        format: PlanFormat,
        /// The same as `--format json`.
        #[arg(long, conflicts_with = "format")]
        json: bool,
        /// Exit 0 when there are no changes, 1 on error, 2 when there are changes.
        #[arg(long)]
        detailed_exitcode: bool,
        /// Save the plan to FILE for `moodlestack apply FILE`.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        /// Allow a plan that deletes or replaces the database, the file system or the cache.
        #[arg(long)]
        allow_data_loss: bool,
        /// Make the stack expire after this long (`2s`, `90m`, `12h`, `3d`): every resource is
        /// tagged `moodlestack:expires-at` (RFC 3339 UTC), on creation or as an in-place tag
        /// update; `moodlestack gc` destroys it once that has passed. Without it the stack keeps
        /// the expiry it has (none for a stack never applied with --ttl).
        #[arg(long, value_name = "DURATION")]
        ttl: Option<String>,
        /// Add an estimate of the stack's monthly cost, as desired and as it exists, and of the
        /// change: list prices from the AWS Price List API (On-Demand) and the Spot price
        /// history (the web fleet), every line with its quantity and unit price.
        #[arg(long)]
        cost: bool,
    },
    /// Make AWS match the stack (or apply a saved plan exactly).
    Apply {
        /// A stack file (YAML) or a plan saved by `plan --out`.
        target: PathBuf,
        /// Do not ask for confirmation (CI).
        #[arg(long)]
        auto_approve: bool,
        /// Allow deleting or replacing the database, the file system or the cache.
        #[arg(long)]
        allow_data_loss: bool,
        /// How many changes run at once.
        #[arg(long, default_value_t = 10, value_name = "N")]
        parallelism: usize,
        /// Make the stack expire after this long (`2s`, `90m`, `12h`, `3d`): every resource is
        /// tagged `moodlestack:expires-at` (RFC 3339 UTC), on creation or as an in-place tag
        /// update; `moodlestack gc` destroys it once that has passed. Without it the stack keeps
        /// the expiry it has (none for a stack never applied with --ttl).
        #[arg(long, value_name = "DURATION")]
        ttl: Option<String>,
        /// After a change of the code version (a Moodle upgrade or a rollback), report the
        /// upgrade on the new stable node (maintenance mode, admin/cli/upgrade.php, the smoke
        /// test) from its log in CloudWatch Logs, waiting at most this long (`90m`, `2h`); `0s`:
        /// do not wait. A failed upgrade or smoke test fails the command.
        #[arg(long, value_name = "DURATION", default_value = "60m")]
        upgrade_timeout: String,
    },
    /// Delete every resource of the stack, in reverse dependency order.
    Destroy {
        /// The stack file (YAML).
        stack: PathBuf,
        /// Do not ask for confirmation (CI).
        #[arg(long)]
        auto_approve: bool,
        /// Do not take a final database snapshot.
        #[arg(long)]
        skip_final_snapshot: bool,
        /// Lift deletion protection on the database and delete the file system and cache.
        #[arg(long)]
        allow_data_loss: bool,
        /// How many deletes run at once.
        #[arg(long, default_value_t = 10, value_name = "N")]
        parallelism: usize,
    },
    /// List the account's stacks in a region, found by their tags: name, age (since its code
    /// bucket was created), resource count (what the Resource Groups Tagging API reports of it)
    /// and expiry (`apply --ttl`).
    List {
        /// The region (default: AWS_REGION, then AWS_DEFAULT_REGION).
        #[arg(long, value_name = "REGION")]
        region: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Destroy the region's stacks whose expiry (`apply --ttl`) has passed; no stack file needed.
    /// Never a stack without an expiry tag on every resource, never one with deletion protection
    /// on unless --allow-data-loss. Each database takes a final snapshot; file systems and caches
    /// are deleted (the expiry is the consent).
    Gc {
        /// The region (default: AWS_REGION, then AWS_DEFAULT_REGION).
        #[arg(long, value_name = "REGION")]
        region: Option<String>,
        /// Only show which stacks would be destroyed.
        #[arg(long)]
        dry_run: bool,
        /// Do not ask for confirmation (CI, a schedule).
        #[arg(long)]
        auto_approve: bool,
        /// Also destroy expired stacks with deletion protection on (lifted; the database still
        /// takes its final snapshot).
        #[arg(long)]
        allow_data_loss: bool,
        /// How many deletes run at once (per stack).
        #[arg(long, default_value_t = 10, value_name = "N")]
        parallelism: usize,
    },
    /// Show the stack's endpoints: ALB DNS name, database and Redis endpoints, EFS id, and the
    /// database secret's ARN (never its value).
    Outputs {
        /// The stack file (YAML).
        stack: PathBuf,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Run a Moodle CLI script on the stable node through SSM Run Command (no SSH), print its
    /// output and end with its exit code: `moodlestack run stack.yaml --
    /// admin/cli/purge_caches.php`, `-- admin/cli/maintenance.php --enable`. It runs as the web
    /// server user (www-data) in `moodle.dirroot` with the stack's PHP.
    Run {
        /// The stack file (YAML).
        stack: PathBuf,
        /// Stop the script after this many seconds (SSM's executionTimeout).
        #[arg(long, default_value_t = 3600, value_name = "SECONDS")]
        timeout: u64,
        /// The script, relative to the Moodle directory, then its arguments (after `--`).
        #[arg(last = true, required = true, value_name = "SCRIPT [ARGS]")]
        command: Vec<String>,
    },
    /// The live state of the stack on one screen: each web node (instance, type, zone, Spot or
    /// On-Demand, lifecycle state, target health, launch template version), the stable node,
    /// any instance refresh and its progress, the database, Redis and the file system, the
    /// alarms firing (`<stack>-*` in ALARM) and the last cron heartbeat.
    Status {
        /// The stack file (YAML).
        stack: PathBuf,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Print the nodes' logs from the stack's CloudWatch Logs groups, oldest first, each line
    /// with its time, node and source: `moodlestack logs stack.yaml --node stable --source cron
    /// --since 2h`.
    Logs {
        /// The stack file (YAML).
        stack: PathBuf,
        /// Only this node: an instance id (a node that is gone too), `stable` or `web` (every
        /// node but the stable one, gone Spot nodes included).
        #[arg(long, value_name = "ID|stable|web")]
        node: Option<String>,
        /// Only this source: `apache` (access and error logs), `fpm` (PHP-FPM's log), `slow`
        /// (PHP-FPM's slow log), `cron` (Moodle's cron output), `boot` (user-data) or `upgrade`
        /// (the stable node's install/upgrade and smoke test).
        #[arg(long, value_name = "apache|fpm|slow|cron|boot|upgrade")]
        source: Option<String>,
        /// From this long ago (`30s`, `15m`, `1h`, `2d`).
        #[arg(long, default_value = "1h", value_name = "DURATION")]
        since: String,
        /// Keep printing new events (every 2 seconds) until Ctrl-C.
        #[arg(long)]
        follow: bool,
        /// Only events matching this CloudWatch Logs filter pattern (a term: events containing
        /// it; `"a phrase"`; `?a ?b`: either).
        #[arg(long, value_name = "PATTERN")]
        grep: Option<String>,
    },
    /// List the restore points of the stack's data, oldest first: the database's snapshots
    /// (automated, manual, pre-upgrade, final) and the recovery points of its backup vault
    /// (database and moodledata).
    Backups {
        /// The stack file (YAML).
        stack: PathBuf,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Undo a Moodle upgrade: restore the database from the snapshot taken before the upgrade
    /// from the version rolled back to (a new database of the same name replaces the current
    /// one, which is deleted with a final snapshot) and moodledata from that upgrade's backup (a
    /// new file system replaces the current one), and run that version's code again. Shows
    /// the plan and asks first; the replacements need --allow-data-loss.
    Rollback {
        /// The stack file (YAML).
        stack: PathBuf,
        /// The code version to go back to (`v4.5.5`, or `"v4.5.5 php8.3"`); default: the one
        /// the running version upgraded from.
        #[arg(long, value_name = "VERSION")]
        to: Option<String>,
        /// Do not ask for confirmation (CI).
        #[arg(long)]
        auto_approve: bool,
        /// Allow replacing the database and moodledata by the restored ones (required: what was
        /// written since the snapshot and the backup is lost; the current database is kept as a
        /// final snapshot, moodledata's backups stay in the vault).
        #[arg(long)]
        allow_data_loss: bool,
        /// How many changes run at once.
        #[arg(long, default_value_t = 10, value_name = "N")]
        parallelism: usize,
        /// After a change of the code version (a Moodle upgrade or a rollback), report the
        /// upgrade on the new stable node (maintenance mode, admin/cli/upgrade.php, the smoke
        /// test) from its log in CloudWatch Logs, waiting at most this long (`90m`, `2h`); `0s`:
        /// do not wait. A failed upgrade or smoke test fails the command.
        #[arg(long, value_name = "DURATION", default_value = "60m")]
        upgrade_timeout: String,
    },
    /// Make a staging copy of a stack: a new stack (`--name NEW`, required) of the same stack
    /// file whose database is restored from a snapshot of the source's database (`--snapshot`,
    /// default the newest), with its own wwwroot (the source's host with the new name as its
    /// first label), its own secrets, outgoing e-mail off (`$CFG->noemailever`) and cron
    /// running; moodledata restored from the source's newest backup of it (empty when it has
    /// none). `--set` changes the
    /// clone only (e.g. cheaper sizes). Shows the plan and asks first; nothing of the source
    /// changes, and destroying the clone never touches it.
    Clone {
        /// The source stack's file (YAML).
        stack: PathBuf,
        /// The source's database snapshot to restore: an identifier `moodlestack backups` lists,
        /// or `latest` (the newest available one).
        #[arg(long, default_value = "latest", value_name = "ID|latest")]
        snapshot: String,
        /// The source stack's name, when it was applied with `--name` (default: the file's
        /// `name`).
        #[arg(long, value_name = "NAME")]
        source_name: Option<String>,
        /// Do not ask for confirmation (CI).
        #[arg(long)]
        auto_approve: bool,
        /// How many changes run at once.
        #[arg(long, default_value_t = 10, value_name = "N")]
        parallelism: usize,
        /// Make the clone expire after this long (`2s`, `90m`, `12h`, `3d`), as `apply --ttl`:
        /// `moodlestack gc` destroys it once that has passed.
        #[arg(long, value_name = "DURATION")]
        ttl: Option<String>,
    },
    /// Print a shell completion script: `moodlestack completions bash > \
    /// /etc/bash_completion.d/moodlestack` (zsh: into a directory of `$fpath` as `_moodlestack`;
    /// fish: `~/.config/fish/completions/moodlestack.fish`; PowerShell: `. (moodlestack completions
    /// powershell | Out-String)` in the profile).
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff): `moodlestack man > /usr/local/share/man/man1/moodlestack.1`.
    Man,
    /// Lift the stack's apply lease (after a crashed run on another machine or a cancelled CI
    /// job): shows who holds it, asks, then lifts it. Runs on the same host take over the lease of
    /// a process that is gone by themselves, and a lease nobody renews expires within a minute.
    Unlock {
        /// The stack file (YAML).
        stack: PathBuf,
        /// Do not ask for confirmation (scripts).
        #[arg(long)]
        yes: bool,
    },
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            // --help and --version succeed; a usage error is an error (1), never 2, which
            // `plan --detailed-exitcode` reserves for "changes present".
            return ExitCode::from(if e.use_stderr() { 1 } else { 0 });
        }
    };
    cmd::run(cli)
}
