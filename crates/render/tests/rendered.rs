//! The rendered files of real stacks: valid shell and PHP, the role differences, no secrets,
//! IMDSv2 everywhere, and snapshots for review.

use moodlestack_render::{all_files, pool, user_data, Endpoints, RenderedFile, Role};
use moodlestack_stack::Stack;
use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A stack file of `stacks/`.
fn stack(name: &str) -> Stack {
    let path = repo().join("stacks").join(format!("{name}.yaml"));
    moodlestack_stack::load_file(&path, &Default::default())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn from_yaml(yaml: &str) -> Stack {
    serde_saphyr::from_str(yaml).expect("test stack parses")
}

/// Endpoints as a live stack reports them.
fn live(stack: &Stack) -> Endpoints {
    Endpoints {
        region: stack.region.clone(),
        db_host: format!("{}-db.c9akciq32.{}.rds.amazonaws.com", stack.name, stack.region),
        db_port: stack.database.engine.port().to_string(),
        db_secret_arn: format!(
            "arn:aws:secretsmanager:{}:123456789012:secret:rds!db-3f9c2a51-5e1b-4c5e-9d7a-0e1f2a3b4c5d-AbCdEf",
            stack.region
        ),
        redis_host: format!("master.{}-redis.abc123.euw1.cache.amazonaws.com", stack.name),
        redis_port: "6379".into(),
        redis_auth_secret_arn: stack.cache.auth.then(|| {
            format!(
                "arn:aws:secretsmanager:{}:123456789012:secret:{}/redis-auth-XyZ123",
                stack.region, stack.name
            )
        }),
        efs_id: "fs-0123456789abcdef0".into(),
        code_bucket: format!("{}-{}-123456789012-code", stack.name, stack.region),
    }
}

/// Endpoints as the graph passes them: reference markers.
fn markers(stack: &Stack) -> Endpoints {
    let db = if stack.database.engine.is_aurora() {
        "db.cluster"
    } else {
        "db.instance"
    };
    Endpoints {
        region: stack.region.clone(),
        db_host: format!("@@ref:{db}:endpoint@@"),
        db_port: format!("@@ref:{db}:port@@"),
        db_secret_arn: format!("@@ref:{db}:secret_arn@@"),
        redis_host: "@@ref:cache.redis:primary_endpoint@@".into(),
        redis_port: "@@ref:cache.redis:port@@".into(),
        redis_auth_secret_arn: stack
            .cache
            .auth
            .then(|| "@@ref:cache.auth:arn@@".to_string()),
        efs_id: "@@ref:files.fs:id@@".into(),
        code_bucket: "@@ref:code.bucket:id@@".into(),
    }
}

/// The stacks every check runs on: the repository's demo and production stacks, and variants
/// covering every engine, PHP from the PPA, plain HTTP and Redis without TLS or AUTH.
fn stacks() -> Vec<(String, Stack)> {
    let mut out = vec![
        ("demo".to_string(), stack("demo")),
        ("production".to_string(), stack("production")),
    ];
    let base = stack("demo");
    for (label, yaml) in [
        (
            "postgres-php82-plain",
            r#"
name: pgplain
region: eu-central-1
database: { engine: postgres }
cache: { transit_encryption: false, auth: false, replicas: 0, automatic_failover: false }
load_balancer: {}
web: { instance_types: [c6i.large, t3.medium, m6i.large], capacity_rebalance: false }
stable: { instance_type: t3.medium }
moodle:
  wwwroot: http://moodle.example.org
  admin_email: admin@example.org
  php_version: "8.2"
  config:
    theme: boost
    noreplyaddress: "no'reply@example.org"
    debug: 0
    cachejs: true
    customfrontpageinclude: 'C:\path\with\backslash'
"#,
        ),
        (
            "aurora",
            r#"
name: aurora
region: us-east-1
database: { engine: aurora-mysql }
load_balancer: { certificate_arn: "arn:aws:acm:us-east-1:123456789012:certificate/abc" }
moodle: { wwwroot: https://lms.example.edu, admin_email: ops@example.edu }
"#,
        ),
    ] {
        out.push((label.to_string(), from_yaml(yaml)));
    }
    let mut mariadb = base;
    mariadb.name = "maria".into();
    mariadb.database.engine = moodlestack_stack::Engine::Mariadb;
    out.push(("mariadb".into(), mariadb));
    out
}

fn write_temp(dir: &Path, name: &str, content: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(&p, content).unwrap();
    p
}

fn tool(name: &str, install: &str) -> String {
    match Command::new(name).arg("--version").output() {
        Ok(_) => name.to_string(),
        Err(_) => panic!("{name} is required by these tests and was not found: {install}"),
    }
}

/// Runs `cmd`, asserting that it succeeds (showing `what` and its output otherwise); its stdout.
#[track_caller]
fn run_ok(cmd: &mut Command, what: &str) -> Vec<u8> {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{what}:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn temp_dir(label: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("moodlestack-render-{label}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn is_shell(f: &RenderedFile) -> bool {
    f.content.starts_with("#!/bin/bash") || f.path.ends_with(".sh")
}

#[test]
fn shell_files_pass_bash_n_and_shellcheck() {
    let shellcheck = tool(
        "shellcheck",
        "apt-get install shellcheck (CI: .ci/run installs it)",
    );
    let dir = temp_dir("sh");
    let mut checked = 0;
    for (label, stack) in stacks() {
        for (kind, e) in [
            ("live", live(&stack)),
            ("markers", markers(&stack)),
            ("offline", Endpoints::placeholders(&stack)),
        ] {
            for f in all_files(&stack, &e)
                .unwrap()
                .iter()
                .filter(|f| is_shell(f))
            {
                let p = write_temp(&dir, &format!("{label}/{kind}/{}", f.path), &f.content);
                run_ok(
                    Command::new("bash").arg("-n").arg(&p),
                    &format!("bash -n {}", f.path),
                );
                run_ok(
                    Command::new(&shellcheck)
                        .args(["-s", "bash", "-S", "style"])
                        .arg(&p),
                    &format!("shellcheck {label} {kind} {}", f.path),
                );
                checked += 1;
            }
        }
    }
    // Per stack and endpoint kind: 2 user-data, moodle-secrets, moodle-gate and
    // moodledata-restored twice, imds.sh, spot watcher, install-upgrade, the cron wrapper, the
    // smoke test.
    assert_eq!(checked, stacks().len() * 3 * 13);
}

#[test]
fn config_php_is_valid_php_and_starts_with_the_open_tag() {
    let php = tool("php", "apt-get install php-cli (CI: .ci/run installs it)");
    let dir = temp_dir("php");
    for (label, stack) in stacks() {
        for (kind, e) in [
            ("live", live(&stack)),
            ("markers", markers(&stack)),
            ("offline", Endpoints::placeholders(&stack)),
        ] {
            let files = all_files(&stack, &e).unwrap();
            let configs: Vec<_> = files
                .iter()
                .filter(|f| f.path.ends_with("/config.php"))
                .collect();
            assert_eq!(configs.len(), 2, "one config.php per role");
            assert_eq!(
                configs[0].content, configs[1].content,
                "web and stable share config.php"
            );
            let c = &configs[0].content;
            assert!(
                c.as_bytes().starts_with(b"<?php"),
                "{label}: config.php must start with <?php"
            );
            assert!(
                c.trim_end()
                    .ends_with("require_once(__DIR__ . '/lib/setup.php');"),
                "{label}"
            );
            let p = write_temp(&dir, &format!("{label}/{kind}/config.php"), c);
            run_ok(
                Command::new(&php).arg("-l").arg(&p),
                &format!("php -l {label}"),
            );
        }
    }
}

/// Runs config.php with a stand-in lib/setup.php that prints $CFG as JSON. The secrets files it
/// reads are moved into `dir` (hermetic: nothing of the machine's /etc is read).
fn evaluate_config(php: &str, dir: &Path, config: &str) -> serde_json::Value {
    let secrets = dir.join("secrets");
    std::fs::create_dir_all(&secrets).unwrap();
    let config = config.replace("'/etc/moodle/", &format!("'{}/", secrets.display()));
    assert!(!config.contains("/etc/moodle"), "every secrets file moved");
    write_temp(dir, "config.php", &config);
    write_temp(
        dir,
        "lib/setup.php",
        "<?php echo json_encode(get_object_vars($CFG));\n",
    );
    let out = run_ok(Command::new(php).arg(dir.join("config.php")), "php");
    serde_json::from_slice(&out)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out)))
}

#[test]
fn config_php_settings_per_engine_and_options() {
    let php = tool("php", "apt-get install php-cli (CI: .ci/run installs it)");
    for (label, stack) in stacks() {
        let e = live(&stack);
        let config = all_files(&stack, &e)
            .unwrap()
            .into_iter()
            .find(|f| f.path == "web/var/www/moodle/config.php");
        let config = config.unwrap_or_else(|| panic!("{label}: no web/var/www/moodle/config.php"));
        let cfg = evaluate_config(&php, &temp_dir(&format!("eval-{label}")), &config.content);
        let engine = stack.database.engine;
        assert_eq!(cfg["dbtype"], engine.moodle_dbtype(), "{label}");
        assert_eq!(cfg["dbhost"], e.db_host.as_str());
        assert_eq!(cfg["dbname"], stack.database.db_name.as_str());
        assert_eq!(cfg["dbuser"], stack.database.username.as_str());
        assert_eq!(
            cfg["dbpass"], "",
            "the password is only read from the secrets file"
        );
        assert_eq!(cfg["dboptions"]["dbport"], e.db_port.as_str());
        assert_eq!(
            cfg["dboptions"].get("dbcollation").is_some(),
            engine.is_mysql_family()
        );
        assert_eq!(cfg["wwwroot"], stack.moodle.wwwroot.as_str());
        assert_eq!(cfg["dataroot"], stack.moodle.dataroot.as_str());
        assert_eq!(cfg["cachedir"], format!("{}/cache", stack.moodle.dataroot));
        assert_eq!(cfg["tempdir"], format!("{}/temp", stack.moodle.dataroot));
        assert_eq!(cfg["localcachedir"], "/var/cache/moodle");
        assert_eq!(cfg["localrequestdir"], "/var/cache/moodle-request");
        assert_eq!(cfg["directorypermissions"], 0o2775);
        assert_eq!(cfg["enableasyncbackup"], 1);
        assert_eq!(cfg["xsendfile"], "X-Sendfile");
        assert!(
            cfg.get("xsendfilealiases").is_none(),
            "Apache takes real paths"
        );
        assert_eq!(
            cfg["getremoteaddrconf"], 1,
            "the client's address from the ALB"
        );
        assert_eq!(cfg["pathtogs"], "/usr/bin/gs");
        assert_eq!(cfg["pathtopdftoppm"], "/usr/bin/pdftoppm");
        // No key file in the temp dir: a random key, different on every request.
        let key = cfg["upgradekey"].as_str().unwrap();
        assert_eq!(key.len(), 48, "{key}");
        assert_eq!(
            cfg.get("sslproxy").is_some(),
            stack.https(),
            "{label}: sslproxy only behind HTTPS"
        );
        assert_eq!(cfg["session_handler_class"], "\\core\\session\\redis");
        assert_eq!(cfg["session_redis_host"], e.redis_host.as_str());
        assert_eq!(cfg["session_redis_port"], 6379);
        assert!(cfg["session_redis_prefix"].is_string());
        assert!(cfg["session_redis_acquire_lock_timeout"].is_number());
        assert!(cfg["session_redis_lock_expire"].is_number());
        assert_eq!(
            cfg.get("session_redis_encrypt").is_some(),
            stack.cache.transit_encryption,
            "{label}"
        );
        assert_eq!(
            cfg.get("session_redis_auth").is_some(),
            stack.cache.auth,
            "{label}"
        );
        let lock = if engine.is_mysql_family() {
            "mysql_lock_factory"
        } else {
            "postgres_lock_factory"
        };
        assert_eq!(cfg["lock_factory"], format!("\\core\\lock\\{lock}"));
        assert_eq!(
            cfg["alternative_cache_factory_class"],
            "tool_forcedcache_cache_factory"
        );
        let muc = &cfg["tool_forcedcache_config_array"];
        assert_eq!(muc["stores"]["redis"]["type"], "redis");
        assert_eq!(
            muc["stores"]["redis"]["config"]["server"],
            format!("{}:6379", e.redis_host)
        );
        assert_eq!(
            muc["rules"]["application"]
                .as_array()
                .unwrap()
                .last()
                .unwrap()["stores"][0],
            "redis"
        );
        assert_eq!(muc["rules"]["session"][0]["stores"][0], "redis");
        // moodle.config extras come out as the same values.
        for (k, v) in &stack.moodle.config {
            assert_eq!(&cfg[k], v, "{label}: moodle.config.{k}");
        }
    }
}

#[test]
fn web_has_no_cron_and_stable_exactly_one_entry() {
    let cron_line = |s: &str| {
        s.lines()
            .filter(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                f.len() > 6
                    && f[..5]
                        .iter()
                        .all(|x| x.chars().all(|c| "0123456789*/,-".contains(c)))
            })
            .count()
    };
    for (label, stack) in stacks() {
        let e = live(&stack);
        let web = user_data(&stack, Role::Web, &e).unwrap();
        let stable = user_data(&stack, Role::Stable, &e).unwrap();
        assert_eq!(
            cron_line(&web),
            0,
            "{label}: web user-data has a cron entry"
        );
        assert!(
            !web.contains("cron.d") && !web.contains("crontab") && !web.contains("cron.php"),
            "{label}"
        );
        assert_eq!(
            cron_line(&stable),
            1,
            "{label}: stable user-data needs exactly one cron entry"
        );
        assert!(stable.contains("/etc/cron.d/moodle"));
        assert!(stable.contains("* * * * * www-data /usr/local/sbin/moodle-cron\n"));
        // The wrapper: only while the database is current, the stack's PHP, a heartbeat after a
        // successful run only.
        assert!(stable.contains("[[ -f '/run/moodle/current' ]] || exit 0"));
        assert!(stable.contains(&format!(
            "'/usr/bin/php{}' '{}/admin/cli/cron.php' \"$@\"",
            stack.moodle.php_version, stack.moodle.dirroot
        )));
        assert!(stable.contains(&format!(
            "--namespace 'Moodlestack/{}' --metric-name 'CronHeartbeat' --value 1",
            stack.name
        )));
        assert!(!web.contains("CronHeartbeat"), "{label}");
        // Install/upgrade runs on stable only, under a lock; the Spot watcher on web only.
        assert!(
            stable.contains("flock -w")
                && stable.contains("admin/cli/upgrade.php\" --non-interactive")
                && stable
                    .contains("systemctl enable --now --no-block moodle-install-upgrade.service")
        );
        // Both roles serve only while the database matches their code.
        for ud in [&web, &stable] {
            assert!(
                ud.contains("upgrade.php --is-pending")
                    && ud.contains("enable --now moodle-gate.timer")
            );
        }
        assert!(
            !web.contains("upgrade.php\" --non-interactive")
                && !web.contains("install_database.php")
        );
        assert!(web.contains("meta-data/spot/instance-action"));
        assert!(web.contains("meta-data/events/recommendations/rebalance"));
        assert!(web.contains("sleep 5"));
        assert!(!stable.contains("spot/instance-action"));
    }
}

#[test]
fn secrets_are_only_read_from_secrets_manager() {
    for (label, stack) in stacks() {
        let e = live(&stack);
        for f in all_files(&stack, &e).unwrap() {
            let c = &f.content;
            // No literal password or token assigned anywhere.
            for needle in [
                "dbpass = '",
                "dbpass='",
                "session_redis_auth = '",
                "'password' => '",
                "adminpass='",
                "--adminpass=\"$p\"",
                "upgradekey = '",
            ] {
                if needle == "'password' => '" && !stack.cache.auth {
                    continue; // Redis without AUTH: the empty password literal.
                }
                assert!(!c.contains(needle), "{label} {}: `{needle}`", f.path);
            }
            // Secrets Manager is read by moodle-secrets only, and only the two secrets' ARNs.
            if c.contains("secretsmanager") {
                assert!(
                    f.path.ends_with("user-data.sh") || f.path.ends_with("/moodle-secrets"),
                    "{}",
                    f.path
                );
            }
            if f.path.ends_with("/moodle-secrets") {
                assert!(c.contains("aws secretsmanager get-secret-value"));
                assert!(c.contains(&format!("db=$(get '{}')", e.db_secret_arn)));
                assert!(c.contains("jq -er .password"));
                assert!(c.contains("chown root:www-data") && c.contains("chmod 0640"));
                assert_eq!(c.contains("redis-auth"), stack.cache.auth, "{label}");
                // Values are never echoed.
                assert!(!c.contains("echo \"${db_password}") && !c.contains("set -x"));
            }
            if f.path.ends_with("config.php") {
                assert!(c.contains("@file_get_contents('/etc/moodle/db-password')"));
                assert_eq!(
                    c.contains("@file_get_contents('/etc/moodle/redis-auth')"),
                    stack.cache.auth
                );
            }
        }
    }
    // A secret in moodle.config is refused.
    let mut s = stack("demo");
    s.moodle.config.insert("smtppass".into(), "hunter2".into());
    let err = all_files(&s, &live(&s)).unwrap_err().to_string();
    assert!(err.contains("smtppass") && err.contains("secret"), "{err}");
    let mut s = stack("demo");
    s.moodle.config.insert("dbhost".into(), "elsewhere".into());
    assert!(all_files(&s, &live(&s))
        .unwrap_err()
        .to_string()
        .contains("written by moodlestack"));
}

/// Joins backslash-continued lines.
fn logical_lines(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    for l in s.lines() {
        if let Some(x) = l.strip_suffix('\\') {
            cur.push_str(x);
        } else {
            cur.push_str(l);
            out.push(std::mem::take(&mut cur));
        }
    }
    out
}

#[test]
fn every_metadata_call_uses_an_imdsv2_token() {
    for (label, stack) in stacks() {
        for f in all_files(&stack, &live(&stack)).unwrap() {
            for l in logical_lines(&f.content) {
                if !l.contains("169.254.169.254") {
                    continue;
                }
                let token_put = l.contains("-X PUT")
                    && l.contains("/latest/api/token")
                    && l.contains("X-aws-ec2-metadata-token-ttl-seconds");
                let with_token = l.contains("X-aws-ec2-metadata-token: ${IMDS_TOKEN}");
                assert!(
                    token_put || with_token,
                    "{label} {}: metadata call without a token: {l}",
                    f.path
                );
            }
        }
    }
}

#[test]
fn user_data_embeds_every_file_verbatim_with_quoted_heredocs() {
    for (label, stack) in stacks() {
        let files = all_files(&stack, &markers(&stack)).unwrap();
        for role in ["web", "stable"] {
            let ud = &files
                .iter()
                .find(|f| f.path == format!("{role}/user-data.sh"))
                .unwrap()
                .content;
            assert!(ud.starts_with("#!/bin/bash\n"), "{label} {role}");
            assert!(ud.contains("\nset -euo pipefail\n"));
            let node_files: Vec<_> = files
                .iter()
                .filter(|f| {
                    f.path.starts_with(&format!("{role}/")) && !f.path.ends_with("user-data.sh")
                })
                .collect();
            assert!(node_files.len() >= 8, "{label} {role}");
            for f in node_files {
                let node_path = &f.path[role.len()..];
                let head = format!("put '{node_path}' ");
                let block = format!(" <<'MOODLESTACK_EOF'\n{}MOODLESTACK_EOF\n", f.content);
                let at = ud
                    .find(&head)
                    .unwrap_or_else(|| panic!("{label} {role}: no put of {node_path}"));
                let line_end = at + ud[at..].find('\n').unwrap();
                let owner_mode = &ud[at + head.len()..line_end - " <<'MOODLESTACK_EOF'".len()];
                assert!(
                    owner_mode.contains(':') && owner_mode.contains(" 0"),
                    "{owner_mode}"
                );
                assert!(
                    ud.contains(&block),
                    "{label} {role}: {node_path} not embedded verbatim"
                );
            }
            // Every heredoc is quoted: nothing in an embedded file is expanded by the shell.
            for l in ud.lines().filter(|l| l.contains("<<")) {
                assert!(
                    l.ends_with("<<'MOODLESTACK_EOF'"),
                    "{label} {role}: unquoted heredoc: {l}"
                );
            }
        }
    }
}

#[test]
fn endpoint_markers_are_copied_verbatim() {
    for (label, stack) in stacks() {
        let e = markers(&stack);
        for role in [Role::Web, Role::Stable] {
            let ud = user_data(&stack, role, &e).unwrap();
            for m in [
                &e.db_host,
                &e.db_port,
                &e.db_secret_arn,
                &e.redis_host,
                &e.redis_port,
                &e.efs_id,
                &e.code_bucket,
            ] {
                assert!(ud.contains(m.as_str()), "{label} {role:?}: {m} missing");
            }
            assert!(ud.contains("@@ref:files.fs:id@@.efs."), "{label}");
            if let Some(arn) = &e.redis_auth_secret_arn {
                assert!(ud.contains(arn.as_str()));
            }
            // Nothing else looks like a marker.
            let count = ud.matches("@@ref:").count();
            let closed = ud.matches("@@").count();
            assert_eq!(closed, count * 2, "{label}: unbalanced markers");
        }
    }
}

#[test]
fn packages_follow_php_version_and_engine() {
    for (label, stack) in stacks() {
        let ud = user_data(&stack, Role::Web, &live(&stack)).unwrap();
        let v = &stack.moodle.php_version;
        // The package list is a brace expansion: let bash expand it.
        let line = ud
            .lines()
            .find(|l| l.trim_start().starts_with(&format!("php{v}-{{")))
            .unwrap();
        let out = Command::new("bash")
            .arg("-c")
            .arg(format!("echo {line}"))
            .output()
            .unwrap();
        let packages: Vec<String> = String::from_utf8(out.stdout)
            .unwrap()
            .split_whitespace()
            .map(String::from)
            .collect();
        let db_ext = if stack.database.engine.is_mysql_family() {
            "mysql"
        } else {
            "pgsql"
        };
        for ext in [
            "fpm", "bcmath", "bz2", "curl", "gd", "intl", "mbstring", "soap", "xml", "zip",
            "opcache", db_ext,
        ] {
            let p = format!("php{v}-{ext}");
            assert!(packages.contains(&p), "{label}: {p} in {packages:?}");
        }
        let redis = if v == "8.3" {
            "php-redis".to_string()
        } else {
            format!("php{v}-redis")
        };
        assert!(packages.contains(&redis), "{label}: {redis}");
        assert_eq!(ud.contains("ppa:ondrej/php"), v != "8.3", "{label}");
        assert!(ud.contains("nfs-common"));
        let fstab = format!(
            "{}.efs.{}.amazonaws.com:/ {} nfs4 nfsvers=4.1,rsize=1048576,wsize=1048576,hard,timeo=600,retrans=2,noresvport,_netdev 0 0",
            live(&stack).efs_id, stack.region, stack.moodle.dataroot
        );
        assert!(ud.contains(&fstab), "{label}: fstab line");
        assert!(ud.contains("chmod 02775"));
    }
}

#[test]
fn pool_file_shows_the_arithmetic_and_boot_sizing_agrees() {
    let dir = temp_dir("pool");
    for (label, stack) in stacks() {
        let files = all_files(&stack, &live(&stack)).unwrap();
        let pool_path = format!(
            "etc/php/{}/fpm/pool.d/moodle.conf",
            stack.moodle.php_version
        );
        let web_pool = &files
            .iter()
            .find(|f| f.path == format!("web/{pool_path}"))
            .unwrap()
            .content;
        let stable_pool = &files
            .iter()
            .find(|f| f.path == format!("stable/{pool_path}"))
            .unwrap()
            .content;
        // The stable node's one type.
        let s = pool::size_for_type(&stack.stable.instance_type, Role::Stable).unwrap();
        assert!(
            stable_pool.contains(&format!("pm.max_children = {}\n", s.max_children)),
            "{label}"
        );
        assert!(stable_pool
            .contains(&pool::explain(&format!("{} ", stack.stable.instance_type), &s)[..0]));
        assert!(
            stable_pool.contains("pm.status_path = /fpm-status")
                && stable_pool.contains("slowlog = ")
        );
        // Web: one line per configured type; the file's own numbers are the smallest type's.
        let sizes: Vec<_> = stack
            .web
            .instance_types
            .iter()
            .map(|t| pool::size_for_type(t, Role::Web).unwrap())
            .collect();
        for (t, p) in stack.web.instance_types.iter().zip(&sizes) {
            assert!(web_pool.contains(&format!(";   {t} ")), "{label}: {t} line");
            assert!(
                web_pool.contains(&format!("= {};", p.max_children)),
                "{label}: {t} value"
            );
        }
        let min = sizes.iter().map(|p| p.max_children).min().unwrap();
        assert!(
            web_pool.contains(&format!("pm.max_children = {min}\n")),
            "{label}"
        );
        // User-data applies the numbers of the type the node boots as.
        let ud = &files
            .iter()
            .find(|f| f.path == "web/user-data.sh")
            .unwrap()
            .content;
        for (t, p) in stack.web.instance_types.iter().zip(&sizes) {
            let line = format!(
                "  {t}) pm=({} {} {} {}) ;;",
                p.max_children, p.start_servers, p.min_spare_servers, p.max_spare_servers
            );
            assert!(ud.contains(&line), "{label}: {line}");
        }
        let begin = ud.find("case \"$(imds meta-data/instance-type").unwrap();
        let end = begin + ud[begin..].find("\nfi\n").unwrap() + 4;
        let live_pool = format!(
            "/etc/php/{}/fpm/pool.d/moodle.conf",
            stack.moodle.php_version
        );
        for (t, p) in stack
            .web
            .instance_types
            .iter()
            .zip(&sizes)
            .chain([(&"x9.unknown".to_string(), &sizes[0])])
        {
            let pool_file = write_temp(&dir, &format!("{label}/{t}.conf"), web_pool);
            let script = format!(
                "set -euo pipefail\nimds() {{ echo {t}; }}\n{}",
                ud[begin..end].replace(&live_pool, &pool_file.display().to_string())
            );
            run_ok(Command::new("bash").arg("-c").arg(&script), "bash");
            let resized = std::fs::read_to_string(&pool_file).unwrap();
            // An unknown type keeps the file's own numbers: the smallest type's.
            let want = if t == "x9.unknown" {
                sizes.iter().min_by_key(|p| p.max_children).unwrap()
            } else {
                p
            };
            for (k, v) in [
                ("max_children", want.max_children),
                ("start_servers", want.start_servers),
                ("min_spare_servers", want.min_spare_servers),
                ("max_spare_servers", want.max_spare_servers),
            ] {
                assert!(
                    resized.contains(&format!("\npm.{k} = {v}\n")),
                    "{label} {t}: pm.{k} = {v}\n{resized}"
                );
            }
        }
    }
}

#[test]
fn unsafe_inputs_are_refused_with_the_fix() {
    let base = stack("demo");
    // An unsafe edit of the stack, with what the error names.
    type Edit = fn(&mut Stack);
    let edits: [(Edit, &str); 4] = [
        (
            |s| s.moodle.dataroot = "/var/moodle data".into(),
            "moodle.dataroot",
        ),
        (
            |s| s.moodle.php_version = "8.3; rm -rf /".into(),
            "php_version",
        ),
        (
            |s| s.moodle.wwwroot = "moodle.example.org".into(),
            "https://",
        ),
        (
            |s| s.web.instance_types = vec!["m9z.huge".into()],
            "instance_types.rs",
        ),
    ];
    for (edit, named) in edits {
        let mut s = base.clone();
        edit(&mut s);
        let e = all_files(&s, &live(&s)).unwrap_err().to_string();
        assert!(e.contains(named), "{e}");
    }
    let mut e = live(&base);
    e.db_host = "x'; DROP".into();
    assert!(all_files(&base, &e)
        .unwrap_err()
        .to_string()
        .contains("db_host"));
    // Shell-quoted stack values survive quotes.
    let mut s = base;
    s.moodle.forcedcache_ref = Some("it's".into());
    let ud = user_data(&s, Role::Stable, &live(&s)).unwrap();
    assert!(
        ud.contains(r"fetch 'https://github.com/catalyst/moodle-tool_forcedcache.git' 'it'\''s'")
    );
}

#[test]
fn user_data_fits_ec2s_limit_with_real_endpoints() {
    for (label, stack) in stacks() {
        for role in [Role::Web, Role::Stable] {
            let ud = user_data(&stack, role, &live(&stack)).unwrap();
            let sent = moodlestack_model::user_data::compress(&ud).len();
            assert!(
                sent <= moodlestack_render::MAX_USER_DATA,
                "{label} {role:?}: {sent} bytes gzip-compressed"
            );
        }
    }
    // A stack whose extra settings push user-data past the budget is refused with the reason.
    // (Text that does not compress: the limit is on the gzip-compressed size.)
    let mut s = stack("demo");
    let mut x: u64 = 1;
    let noise: String = (0..24_000)
        .map(|_| {
            x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            char::from(b'a' + (x >> 59) as u8 % 26)
        })
        .collect();
    s.moodle
        .config
        .insert("additionalhtmlhead".into(), noise.into());
    let err = user_data(&s, Role::Web, &markers(&s))
        .unwrap_err()
        .to_string();
    assert!(err.contains("EC2 takes at most 16384"), "{err}");
}

#[test]
fn snapshots() {
    for name in ["demo", "production"] {
        let s = stack(name);
        for f in all_files(&s, &markers(&s)).unwrap() {
            let snap = format!("{name}__{}", f.path.replace('/', "__"));
            insta::assert_snapshot!(snap, f.content);
        }
    }
}

/// The lines `apply` waits for after a code change ([`UpgradeLine`]) are the ones the stable
/// node's scripts print, to the log file its CloudWatch agent ships to the stack's
/// `install-upgrade` group; web nodes have none of it. (The real-Moodle test classifies what the
/// real scripts wrote.)
#[test]
fn the_stable_node_logs_the_upgrade_lines_apply_follows() {
    use moodlestack_render::upgrade_log::MARKERS;
    use moodlestack_render::INSTALL_UPGRADE_LOG;
    for (label, stack) in stacks() {
        let e = live(&stack);
        let stable = user_data(&stack, Role::Stable, &e).unwrap();
        let web = user_data(&stack, Role::Web, &e).unwrap();
        for who in ["moodle-install-upgrade", "moodle-smoke-test"] {
            assert!(
                stable.contains(&format!(
                    "echo \"{who}: $*\" | tee -a '{INSTALL_UPGRADE_LOG}' >&2"
                )),
                "{label}: {who} does not write its lines to {INSTALL_UPGRADE_LOG}"
            );
        }
        for (marker, _) in MARKERS {
            let (_, text) = marker.split_once(": ").unwrap();
            assert!(
                stable.contains(text),
                "{label}: no script prints {marker:?}"
            );
        }
        let group = format!("/moodlestack/{}/install-upgrade", stack.name);
        let agent: Vec<RenderedFile> = all_files(&stack, &e)
            .unwrap()
            .into_iter()
            .filter(|f| {
                f.path
                    .ends_with("amazon-cloudwatch-agent/etc/moodlestack.json")
            })
            .collect();
        let shipped = |role: &str| {
            agent
                .iter()
                .filter(|f| f.path.starts_with(role))
                .any(|f| f.content.contains(INSTALL_UPGRADE_LOG) && f.content.contains(&group))
        };
        assert!(
            shipped("stable"),
            "{label}: the stable node does not ship it"
        );
        assert!(!shipped("web"), "{label}");
        assert!(!web.contains(INSTALL_UPGRADE_LOG), "{label}");
    }
}
