//! A real Moodle 4.5 on the node's files as `moodlestack render --offline` writes them, once per
//! database engine (MariaDB and PostgreSQL, in parallel): Redis with TLS and a password, Apache
//! with mod_xsendfile and php-fpm, all on 127.0.0.1 on free ports, under a temp dir, started and
//! stopped here. The Moodle tree and tool_forcedcache come from `../shared/moodle/` beside the
//! project (never committed). What is substituted in the rendered files is listed in
//! [`substitutions`]: endpoints, secrets' and the node's directories, PHP 8.2 of Debian 12 for
//! Ubuntu's 8.3, and the vhost's port. Then it checks what an operator checks by hand.
//!
//! `MOODLESTACK_ENGINES=mariadb` (or `postgres`) runs one engine only; `MOODLESTACK_KEEP=1` keeps
//! the temp dir. `MOODLESTACK_RENDERED=DIR` uses files rendered elsewhere (`DIR/mariadb/`, `DIR/postgres/`, e.g.
//! by an older moodlestack, with `--set moodle.wwwroot=https://127.0.0.1:PORTX`; `PORTX` becomes
//! the test's port) instead of rendering them: how the old templates were shown to fail.

use moodlestack_render::upgrade_log::UpgradeLine;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const FIXTURES: &str = "../shared/moodle";
const MOODLE_TGZ: &str = "moodle-4.5.5.tar.gz";
const FORCEDCACHE_TGZ: &str = "tool_forcedcache-MOODLE_405_STABLE.tar.gz";
const INSTALL: &str = "apt-get install mariadb-server postgresql redis-server apache2 \
    libapache2-mod-xsendfile php-fpm php-cli php-{bcmath,bz2,curl,gd,intl,mbstring,mysql,pgsql,soap,xml,zip,redis} \
    ghostscript poppler-utils openssl curl (scripts/test installs them)";
const DB_PASSWORD: &str = "Db-pass-for-tests-1";
const REDIS_TOKEN: &str = "Redis-token-for-tests-1";
const CLIENT_IP: &str = "203.0.113.7";
/// A core upgrade step for the bumped version, added to lib/db/upgrade.php: it fails while
/// HOLD/fail exists, else holds the upgrade (and its maintenance window) until HOLD/go exists.
const UPGRADE_STEP: &str = r#"    if ($oldversion < 2024100705.02) {
        $hold = 'HOLD';
        if (file_exists("$hold/fail")) {
            throw new coding_exception('moodlestack test: this upgrade step fails');
        }
        touch("$hold/reached");
        for ($i = 0; $i < 900 && !file_exists("$hold/go"); $i++) {
            usleep(200000);
        }
        upgrade_main_savepoint(true, 2024100705.02);
    }
"#;
/// The ALB's health check path of stacks/production.yaml: the nodes' own endpoint.
const HEALTH_PATH: &str = "/moodlestack-health";

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn is_root() -> bool {
    String::from_utf8_lossy(&Command::new("id").arg("-u").output().unwrap().stdout).trim() == "0"
}

/// The PHP of this machine (`8.2` on Debian 12).
fn php_version() -> String {
    let out = Command::new("php")
        .args(["-r", "echo PHP_MAJOR_VERSION . '.' . PHP_MINOR_VERSION;"])
        .output()
        .unwrap_or_else(|e| panic!("php: {e}: {INSTALL}"));
    String::from_utf8(out.stdout).unwrap()
}

fn need(path: &str) -> PathBuf {
    let p = PathBuf::from(path);
    assert!(p.exists(), "{path} is missing: {INSTALL}");
    p
}

fn postgres_bin() -> PathBuf {
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .unwrap_or_else(|_| panic!("PostgreSQL is missing: {INSTALL}"))
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|p| p.join("initdb").exists())
        .collect();
    found.sort();
    found
        .pop()
        .unwrap_or_else(|| panic!("PostgreSQL's initdb is missing: {INSTALL}"))
}

/// Every process the test started, killed (by pid) and the temp dir removed when dropped, also
/// when an assertion fails.
struct Site {
    root: PathBuf,
    children: Vec<(String, Child)>,
}

impl Drop for Site {
    fn drop(&mut self) {
        for (_, c) in self.children.iter_mut().rev() {
            let _ = Command::new("kill")
                .args(["-TERM", &c.id().to_string()])
                .status();
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        for (_, c) in self.children.iter_mut().rev() {
            while Instant::now() < deadline && matches!(c.try_wait(), Ok(None)) {
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
        if std::env::var_os("MOODLESTACK_KEEP").is_none() {
            let _ = std::fs::remove_dir_all(&self.root);
        }
    }
}

fn run(cmd: &mut Command) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e}: {INSTALL}"));
    out
}

fn ok(cmd: &mut Command) -> String {
    let out = run(cmd);
    crate::harness::succeeded(&format!("{cmd:?}"), &out)
}

fn wait_port(port: u16, what: &str, child: &mut Child, log: &Path) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Ok(Some(st)) = child.try_wait() {
            panic!(
                "{what} exited with {st}: {}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        assert!(Instant::now() < deadline, "{what} did not listen on {port}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// An HTTP response from curl: status, headers (lower-case names) and body.
struct Resp {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Resp {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// What a test checks: failures are collected so one run reports every one.
#[derive(Default)]
struct Findings(Vec<String>);

impl Findings {
    fn check(&mut self, ok: bool, what: impl Into<String>) {
        if !ok {
            self.0.push(what.into());
        }
    }
}

struct Ports {
    db: u16,
    redis: u16,
    http: u16,
}

impl Site {
    fn path(&self, p: &str) -> PathBuf {
        self.root.join(p)
    }

    fn spawn(&mut self, name: &str, cmd: &mut Command) -> usize {
        let log = self.path(&format!("log/{name}.log"));
        let f = std::fs::File::create(&log).unwrap();
        let child = cmd
            .stdout(f.try_clone().unwrap())
            .stderr(f)
            .spawn()
            .unwrap_or_else(|e| panic!("{name}: {e}: {INSTALL}"));
        self.children.push((name.to_string(), child));
        self.children.len() - 1
    }

    /// A command as the web server's user (`runuser -u www-data` when root, as the nodes do).
    fn as_www(&self, prog: &str) -> Command {
        let mut c = if is_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "www-data", "--", prog]);
            c
        } else {
            Command::new(prog)
        };
        c.env("PHP_INI_SCAN_DIR", self.php_ini_scan_dir());
        c
    }

    /// Debian's own ini directory plus the rendered moodle.ini (phpenmod on the nodes).
    fn php_ini_scan_dir(&self) -> String {
        format!(":{}", self.path("php-conf.d").display())
    }

    fn php(&self, code: &str) -> Output {
        let script = self.path("tmp-php.php");
        std::fs::write(&script, code).unwrap();
        run(self.as_www("php").arg(&script))
    }

    fn curl(&self, port: u16, path: &str, args: &[&str]) -> Resp {
        let out = run(Command::new("curl")
            .args(["-s", "-S", "-m", "120", "-D", "-"])
            .args(args)
            .arg(format!("http://127.0.0.1:{port}{path}")));
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or((text.as_str(), ""));
        let mut lines = head.lines();
        let status = lines
            .next()
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        Resp {
            status,
            headers,
            body: body.to_string(),
        }
    }
}

/// The substitutions from the rendered node files to this test's machine: each is an endpoint, a
/// secret's or node directory's location, Debian 12's PHP 8.2 for Ubuntu 24.04's 8.3, or the
/// vhost's port. Nothing else in the rendered files changes.
fn substitutions(root: &Path, engine: &str, php: &str, p: &Ports) -> Vec<(String, String)> {
    let r = |s: &str| root.join(s).display().to_string();
    let default_db_port = if engine == "postgres" { "5432" } else { "3306" };
    vec![
        (
            "<db endpoint: known after apply>".into(),
            "127.0.0.1".into(),
        ),
        (
            format!("'dbport' => '{default_db_port}'"),
            format!("'dbport' => '{}'", p.db),
        ),
        (
            "<redis endpoint: known after apply>:6379".into(),
            format!("127.0.0.1:{}", p.redis),
        ),
        (
            "<redis endpoint: known after apply>".into(),
            "127.0.0.1".into(),
        ),
        ("(int) '6379'".into(), format!("(int) '{}'", p.redis)),
        ("/etc/ssl/certs/ca-certificates.crt".into(), r("tls/ca.crt")),
        ("/etc/moodle/".into(), r("etc") + "/"),
        ("/var/www/moodle".into(), r("moodle")),
        ("/var/moodledata".into(), r("data")),
        ("/var/cache/moodle".into(), r("cache")),
        ("/run/moodle/".into(), r("run") + "/"),
        ("/usr/local/sbin/moodle-gate".into(), r("bin/moodle-gate")),
        (
            "/usr/local/sbin/moodle-smoke-test".into(),
            r("bin/moodle-smoke-test"),
        ),
        ("/usr/local/lib/moodlestack".into(), r("lib")),
        (
            "http://127.0.0.1:80".into(),
            format!("http://127.0.0.1:{}", p.http),
        ),
        ("/run/php/php8.3-fpm-moodle.sock".into(), r("run/fpm.sock")),
        (
            "/var/log/php8.3-fpm-moodle-slow.log".into(),
            r("log/fpm-slow.log"),
        ),
        ("/var/log/apache2/".into(), r("log") + "/"),
        ("/var/log/moodle/cron.log".into(), r("log/cron.log")),
        (
            "/var/log/moodle/install-upgrade.log".into(),
            r("log/shipped-install-upgrade.log"),
        ),
        ("/usr/local/sbin/moodle-cron".into(), r("bin/moodle-cron")),
        ("/usr/bin/php8.3".into(), format!("/usr/bin/php{php}")),
        (
            "<VirtualHost *:80>".into(),
            format!("<VirtualHost *:{}>", p.http),
        ),
    ]
}

fn rendered(dir: &Path, role: &str, path: &str) -> String {
    let p = dir.join(role).join(path.trim_start_matches('/'));
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("rendered file {}: {e}", p.display()))
}

fn substitute(s: &str, subs: &[(String, String)]) -> String {
    subs.iter()
        .fold(s.to_string(), |acc, (a, b)| acc.replace(a, b))
}

#[test]
fn moodle_on_the_rendered_node_files() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join(FIXTURES);
    for f in [MOODLE_TGZ, FORCEDCACHE_TGZ] {
        assert!(
            fixtures.join(f).exists(),
            "{} is missing: the Moodle 4.5 fixtures live beside the project (see {}/README.md)",
            fixtures.join(f).display(),
            FIXTURES
        );
    }
    for tool in [
        "curl",
        "openssl",
        "redis-server",
        "redis-cli",
        "gs",
        "pdftoppm",
        "tar",
    ] {
        assert!(
            Command::new("sh")
                .args(["-c", &format!("command -v {tool}")])
                .output()
                .map(|o| o.status.success())
                .unwrap_or(false),
            "{tool} is missing: {INSTALL}"
        );
    }
    let started = Instant::now();
    let results: Vec<(String, Result<Vec<String>, String>, Duration)> = std::thread::scope(|s| {
        let only = std::env::var("MOODLESTACK_ENGINES").unwrap_or_default();
        let handles: Vec<_> = ["mariadb", "postgres"]
            .into_iter()
            .filter(|e| only.is_empty() || only.split(',').any(|o| o == *e))
            .map(|engine| {
                let fixtures = fixtures.clone();
                s.spawn(move || {
                    let t = Instant::now();
                    let r = std::panic::catch_unwind(|| one_site(engine, &fixtures));
                    let r = r.map_err(|e| {
                        e.downcast_ref::<String>()
                            .cloned()
                            .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                            .unwrap_or_default()
                    });
                    (engine.to_string(), r, t.elapsed())
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut report = String::new();
    for (engine, r, took) in &results {
        eprintln!("moodle test: {engine} took {:.0} s", took.as_secs_f64());
        match r {
            Ok(f) if f.is_empty() => {}
            Ok(f) => report.push_str(&format!("{engine}:\n  - {}\n", f.join("\n  - "))),
            Err(e) => report.push_str(&format!("{engine}: stopped: {e}\n")),
        }
    }
    eprintln!(
        "moodle test: {:.0} s in all",
        started.elapsed().as_secs_f64()
    );
    assert!(report.is_empty(), "real Moodle:\n{report}");
}

fn one_site(engine: &str, fixtures: &Path) -> Vec<String> {
    let php = php_version();
    let fpm = need(&format!("/usr/sbin/php-fpm{php}"));
    let root = std::env::temp_dir().join(format!(
        "moodlestack-moodle-{engine}-{}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root).unwrap();
    let mut site = Site {
        root: root.clone(),
        children: Vec::new(),
    };
    for d in [
        "log",
        "etc",
        "run",
        "tls",
        "bin",
        "php-conf.d",
        "data",
        "cache",
        "cache-request",
        "db",
        "redis",
        "lib",
        "hold",
    ] {
        std::fs::create_dir_all(site.path(d)).unwrap();
    }
    let ports = Ports {
        db: free_port(),
        redis: free_port(),
        http: free_port(),
    };
    let mut f = Findings::default();
    let mut last = Instant::now();
    let mut lap = |what: &str| {
        eprintln!(
            "moodle test: {engine}: {what}: {:.1} s",
            last.elapsed().as_secs_f64()
        );
        last = Instant::now();
    };

    // --- The code, and the node's files ---
    ok(Command::new("tar")
        .args(["xzf"])
        .arg(fixtures.join(MOODLE_TGZ))
        .arg("-C")
        .arg(&root));
    ok(Command::new("tar")
        .args(["xzf"])
        .arg(fixtures.join(FORCEDCACHE_TGZ))
        .arg("-C")
        .arg(site.path("moodle/admin/tool")));
    let out_dir = match std::env::var_os("MOODLESTACK_RENDERED") {
        Some(d) => PathBuf::from(d).join(engine),
        None => {
            let out = site.path("rendered");
            let (engine_set, version) = if engine == "postgres" {
                ("postgres", "16")
            } else {
                ("mariadb", "10.11")
            };
            ok(Command::new(env!("CARGO_BIN_EXE_moodlestack"))
                .arg("render")
                .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("stacks/production.yaml"))
                .arg("--out")
                .arg(&out)
                .arg("--offline")
                .args(["-q", "--set"])
                .arg(format!("database.engine={engine_set}"))
                .arg("--set")
                .arg(format!("database.version={version}"))
                .arg("--set")
                .arg(format!("moodle.wwwroot=https://127.0.0.1:{}", ports.http)));
            out
        }
    };
    let mut subs = substitutions(&root, engine, &php, &ports);
    if std::env::var_os("MOODLESTACK_RENDERED").is_some() {
        subs.push((
            "127.0.0.1:PORTX".into(),
            format!("127.0.0.1:{}", ports.http),
        ));
    }
    let node = |role: &str, path: &str| substitute(&rendered(&out_dir, role, path), &subs);
    let config = node("web", "/var/www/moodle/config.php");
    assert_eq!(config, node("stable", "/var/www/moodle/config.php"));
    std::fs::write(site.path("moodle/config.php"), &config).unwrap();
    for (dest, role, path) in [
        (
            "php-conf.d/90-moodle.ini",
            "web",
            "/etc/php/8.3/mods-available/moodle.ini",
        ),
        ("pool.conf", "web", "/etc/php/8.3/fpm/pool.d/moodle.conf"),
        (
            "vhost.conf",
            "web",
            "/etc/apache2/sites-available/moodle.conf",
        ),
        (
            "lib/health.php",
            "web",
            "/usr/local/lib/moodlestack/health.php",
        ),
        (
            "bin/moodle-smoke-test",
            "stable",
            "/usr/local/sbin/moodle-smoke-test",
        ),
    ] {
        std::fs::write(site.path(dest), node(role, path)).unwrap();
    }
    let stable_file = |path: &str| {
        let p = out_dir.join("stable").join(path.trim_start_matches('/'));
        p.exists().then(|| node("stable", path))
    };
    let install_script = site.path("bin/moodle-install-upgrade");
    std::fs::write(
        &install_script,
        node("stable", "/usr/local/sbin/moodle-install-upgrade"),
    )
    .unwrap();
    // The stable node's moodle-install-upgrade, as systemd starts it.
    let ini_dir = site.php_ini_scan_dir();
    let install_upgrade = || {
        let mut c = Command::new("bash");
        c.arg(&install_script).env("PHP_INI_SCAN_DIR", &ini_dir);
        c
    };
    // 0755, as user-data's `put` writes it.
    let executable = |rel: &str| ok(Command::new("chmod").arg("0755").arg(site.path(rel)));
    let gate = stable_file("/usr/local/sbin/moodle-gate");
    if let Some(g) = &gate {
        std::fs::write(site.path("bin/moodle-gate"), g).unwrap();
        executable("bin/moodle-gate");
    }
    f.check(
        gate.is_some(),
        "no moodle-gate: nothing keeps an out-of-date site from serving",
    );
    executable("bin/moodle-smoke-test");
    let cron_line = stable_file("/etc/cron.d/moodle").unwrap_or_default();
    let cron_wrapper = stable_file("/usr/local/sbin/moodle-cron");
    if let Some(w) = &cron_wrapper {
        std::fs::write(site.path("bin/moodle-cron"), w).unwrap();
        executable("bin/moodle-cron");
    }
    std::fs::write(site.path("etc/db-password"), DB_PASSWORD).unwrap();
    std::fs::write(site.path("etc/redis-auth"), REDIS_TOKEN).unwrap();
    // What moodle-secrets does for the upgrade key, when the rendered script has it.
    let secrets = node("stable", "/usr/local/sbin/moodle-secrets");
    if secrets.contains("upgrade-key") {
        std::fs::write(
            site.path("etc/upgrade-key"),
            "k3y-n0body-types-0123456789abcdef",
        )
        .unwrap();
    }
    std::fs::create_dir_all(site.path("data/moodlestack")).unwrap();

    // TLS for Redis: a CA and a server certificate for 127.0.0.1.
    let tls = site.path("tls");
    ok(Command::new("openssl")
        .current_dir(&tls)
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=test CA",
        ])
        .args(["-keyout", "ca.key", "-out", "ca.crt"]));
    ok(Command::new("openssl").current_dir(&tls).args([
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=127.0.0.1",
        "-keyout",
        "redis.key",
        "-out",
        "redis.csr",
    ]));
    std::fs::write(tls.join("san.ext"), "subjectAltName=IP:127.0.0.1\n").unwrap();
    ok(Command::new("openssl").current_dir(&tls).args([
        "x509",
        "-req",
        "-in",
        "redis.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        "san.ext",
        "-out",
        "redis.crt",
    ]));

    if is_root() {
        ok(Command::new("chown")
            .args(["-R", "www-data:www-data"])
            .arg(&root));
        // Root-only, as on the node (efs.sh): the lock and the admin password.
        ok(Command::new("chown")
            .args(["root:root"])
            .arg(site.path("data/moodlestack")));
        ok(Command::new("chmod")
            .args(["0700"])
            .arg(site.path("data/moodlestack")));
        // The code is root's and read-only for the web server, as on the node.
        ok(Command::new("chown")
            .args(["-R", "root:root"])
            .arg(site.path("moodle")));
        ok(Command::new("chmod")
            .args(["-R", "go-w"])
            .arg(site.path("moodle")));
        ok(Command::new("chmod").args(["0755"]).arg(&root));
    }

    lap("setup");
    // --- Servers ---
    let db_ready = start_database(&mut site, engine, ports.db);
    assert!(db_ready, "{engine} did not start");
    let redis_conf = site.path("redis/redis.conf");
    std::fs::write(
        &redis_conf,
        format!(
            "bind 127.0.0.1\nport 0\ntls-port {}\ntls-cert-file {t}/redis.crt\ntls-key-file {t}/redis.key\n\
             tls-ca-cert-file {t}/ca.crt\ntls-auth-clients no\nrequirepass {REDIS_TOKEN}\ndir {}\nsave \"\"\nappendonly no\n",
            ports.redis,
            site.path("redis").display(),
            t = tls.display()
        ),
    )
    .unwrap();
    let i = site.spawn("redis", site.as_www("redis-server").arg(&redis_conf));
    let log = site.path("log/redis.log");
    wait_port(ports.redis, "redis", &mut site.children[i].1, &log);

    let fpm_conf = site.path("php-fpm.conf");
    std::fs::write(
        &fpm_conf,
        format!(
            "[global]\npid = {r}/run/fpm.pid\nerror_log = {r}/log/fpm-error.log\ndaemonize = no\ninclude = {r}/pool.conf\n",
            r = root.display()
        ),
    )
    .unwrap();
    let mut fpm_cmd = Command::new(&fpm);
    fpm_cmd
        .args(["-F", "-y"])
        .arg(&fpm_conf)
        .env("PHP_INI_SCAN_DIR", site.php_ini_scan_dir());
    if !is_root() {
        fpm_cmd.arg("-d").arg("user=");
    }
    site.spawn("php-fpm", &mut fpm_cmd);

    let modules = [
        "mpm_event",
        "authz_core",
        "authz_host",
        "mime",
        "dir",
        "alias",
        "rewrite",
        "proxy",
        "proxy_fcgi",
        "setenvif",
        "xsendfile",
    ];
    let mut httpd = format!(
        "ServerRoot /etc/apache2\nDefine APACHE_LOG_DIR {r}/log\nListen 127.0.0.1:{port}\nServerName 127.0.0.1\n\
         PidFile {r}/run/apache.pid\nDefaultRuntimeDir {r}/run\nMutex file:{r}/run default\nErrorLog {r}/log/apache-error.log\n\
         LogFormat \"%h %l %u %t \\\"%r\\\" %>s %b \\\"%{{Referer}}i\\\" \\\"%{{User-Agent}}i\\\"\" combined\n\
         TypesConfig /etc/mime.types\n",
        r = root.display(),
        port = ports.http
    );
    if is_root() {
        httpd.push_str("User www-data\nGroup www-data\n");
    }
    for m in modules {
        httpd.push_str(&format!(
            "LoadModule {m}_module /usr/lib/apache2/modules/mod_{m}.so\n"
        ));
    }
    httpd.push_str(&format!("Include {}/vhost.conf\n", root.display()));
    std::fs::write(site.path("httpd.conf"), httpd).unwrap();
    let i = site.spawn(
        "apache",
        Command::new(need("/usr/sbin/apache2"))
            .args(["-DFOREGROUND", "-f"])
            .arg(site.path("httpd.conf")),
    );
    let log = site.path("log/apache.log");
    wait_port(ports.http, "apache", &mut site.children[i].1, &log);
    let sock = site.path("run/fpm.sock");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !sock.exists() {
        assert!(
            Instant::now() < deadline,
            "php-fpm did not start: {}",
            std::fs::read_to_string(site.path("log/php-fpm.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let http = ports.http;
    let health = |site: &Site| site.curl(http, HEALTH_PATH, &["-A", "ELB-HealthChecker/2.0"]);
    let run_gate = |site: &Site| {
        if site.path("bin/moodle-gate").exists() {
            ok(Command::new("bash")
                .arg(site.path("bin/moodle-gate"))
                .env("PHP_INI_SCAN_DIR", site.php_ini_scan_dir()));
        }
    };
    // Runs the gate, then the load balancer's health check must answer `want`.
    let check_health = |f: &mut Findings, site: &Site, want: u16, when: &str| {
        run_gate(site);
        let status = health(site).status;
        f.check(
            status == want,
            format!("{when} the health check answered {status} ({want} expected)"),
        );
    };

    lap("servers");
    // --- Before the install: nothing serves, the installer least of all ---
    check_health(&mut f, &site, 503, "before the install");
    // Only pages that show the installer: `?agreelicense=1&confirmrelease=1` would run it (the old
    // files let an anonymous request install the database, and the stable node's install failed).
    for path in ["/admin/index.php", "/install.php", "/"] {
        let r = site.curl(http, path, &[]);
        f.check(
            r.status == 503 || r.status == 404,
            format!(
                "before the install {path} answered {} (the installer must never be reachable): {}",
                r.status,
                r.body.chars().take(200).collect::<String>()
            ),
        );
    }

    // --- The stable node's install ---
    let t = Instant::now();
    let out = run(&mut install_upgrade());
    let install_log = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "moodle-install-upgrade failed: {install_log}"
    );
    eprintln!(
        "moodle test: {engine}: install took {:.0} s",
        t.elapsed().as_secs_f64()
    );
    let admin_password = std::fs::read_to_string(site.path("data/moodlestack/admin-password"))
        .unwrap()
        .trim()
        .to_string();
    f.check(
        !install_log.contains(&admin_password),
        "the install printed the admin password",
    );
    check_health(&mut f, &site, 200, "after the install");
    // What the CloudWatch agent ships to the install-upgrade group, and what `apply` makes of
    // it: each line the scripts logged, the last final one deciding. Emptied after each check.
    let shipped_log = site.path("log/shipped-install-upgrade.log");
    let shipped = |f: &mut Findings, stderr: &str, when: &str, want: Option<UpgradeLine>| {
        let text = std::fs::read_to_string(&shipped_log).unwrap_or_default();
        let kinds: Vec<UpgradeLine> = text.lines().map(UpgradeLine::of).collect();
        let last_final = kinds.iter().copied().rfind(|k| k.is_final());
        f.check(
            !text.is_empty() && text.lines().all(|l| stderr.contains(l)),
            format!("{when}, the shipped log is not the scripts' lines: {text:?}"),
        );
        f.check(
            last_final == want,
            format!("{when}, apply would read {last_final:?} ({want:?} expected) from {text:?}"),
        );
        let _ = std::fs::remove_file(&shipped_log);
        kinds
    };
    shipped(
        &mut f,
        &install_log,
        "after the install",
        Some(UpgradeLine::Passed),
    );
    let smoke = |f: &mut Findings, when: &str| {
        let report =
            std::fs::read_to_string(site.path("data/moodlestack/smoke-test")).unwrap_or_default();
        for line in [
            &format!("health check {HEALTH_PATH}: ok (200 serving"),
            "login page: ok (200)",
            "cron run: ok",
            "passed (v4.5.5 php8.3)",
        ] {
            f.check(
                report.contains(line),
                format!("{when}, the smoke test's report lacks {line:?}: {report}"),
            );
        }
        let _ = std::fs::remove_file(site.path("data/moodlestack/smoke-test"));
    };
    smoke(&mut f, "after the install");

    lap("install");
    // --- A login from a client behind the ALB ---
    let r = site.curl(
        http,
        "/login/index.php",
        &["-H", &format!("X-Forwarded-For: {CLIENT_IP}")],
    );
    let cookie = |r: &Resp| {
        r.headers
            .iter()
            .filter(|(n, _)| n == "set-cookie")
            .filter_map(|(_, v)| v.split(';').next())
            .rfind(|c| c.starts_with("MoodleSession="))
            .map(str::to_string)
    };
    let session = cookie(&r).expect("the login page sets MoodleSession");
    let token = r
        .body
        .split("name=\"logintoken\" value=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .expect("the login page has a logintoken")
        .to_string();
    let r = site.curl(
        http,
        "/login/index.php",
        &[
            "-H",
            &format!("Cookie: {session}"),
            "-H",
            &format!("X-Forwarded-For: {CLIENT_IP}"),
            "--data-urlencode",
            "username=admin",
            "--data-urlencode",
            &format!("password={admin_password}"),
            "--data-urlencode",
            &format!("logintoken={token}"),
        ],
    );
    let session = cookie(&r).unwrap_or(session);
    f.check(
        r.status == 303,
        format!("login answered {} (303 expected)", r.status),
    );
    let r = site.curl(
        http,
        "/user/profile.php",
        &[
            "-H",
            &format!("Cookie: {session}"),
            "-H",
            &format!("X-Forwarded-For: {CLIENT_IP}"),
        ],
    );
    f.check(
        r.status == 200 && r.body.contains("Admin User"),
        format!("logged in, the profile page answered {}", r.status),
    );
    let lastip = site.php(&format!(
        "<?php define('CLI_SCRIPT', true); require '{}/moodle/config.php'; echo $DB->get_field('user', 'lastip', ['username' => 'admin']);",
        root.display()
    ));
    let lastip = String::from_utf8_lossy(&lastip.stdout).trim().to_string();
    f.check(
        lastip == CLIENT_IP,
        format!("Moodle recorded the client's address as {lastip:?} ({CLIENT_IP} sent as X-Forwarded-For, as the ALB does)"),
    );

    lap("login");
    // --- Sessions and MUC in Redis (TLS, AUTH) ---
    let keys = |pattern: &str| {
        let out = run(Command::new("redis-cli")
            .args(["--tls", "--cacert"])
            .arg(tls.join("ca.crt"))
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &ports.redis.to_string(),
                "--no-auth-warning",
                "-a",
                REDIS_TOKEN,
                "--scan",
                "--pattern",
                pattern,
            ]));
        String::from_utf8_lossy(&out.stdout).lines().count()
    };
    f.check(keys("moodle-prod_sess_*") > 0, "no session in Redis");
    f.check(keys("moodle-prod_muc_*") > 0, "no MUC cache in Redis");

    lap("redis");
    // --- Cron: the stable node's entry, and runs of its wrapper against the emulator ---
    let cron_php = cron_line
        .lines()
        .find(|l| l.contains("moodle-cron") && !l.starts_with('#'))
        .is_some_and(|l| l.contains(&format!("{}/bin/moodle-cron", root.display())))
        && cron_wrapper
            .as_deref()
            .is_some_and(|w| w.contains(&format!("{}/moodle/admin/cli/cron.php", root.display())));
    f.check(
        cron_php,
        "the stable node's cron entry runs its wrapper, which runs admin/cli/cron.php",
    );
    // The wrapper as www-data, with the AWS CLI on its PATH and the emulator as its CloudWatch.
    let emu = crate::harness::Emulator::start();
    let aws_dir = if is_root() {
        // www-data cannot run the AWS CLI of the emulator's virtualenv under /root (0700): the
        // wrapper gets an `aws` that sends the same PutMetricData to the emulator over HTTP (the
        // real CLI runs the wrapper in node_code::the_cron_wrapper_puts_a_heartbeat_...).
        let dir = site.path("aws-shim");
        std::fs::create_dir_all(&dir).unwrap();
        let shim = dir.join("aws");
        std::fs::write(&shim, AWS_PUT_METRIC_DATA_SHIM).unwrap();
        std::fs::set_permissions(&shim, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        dir
    } else {
        crate::harness::aws_cli().parent().unwrap().to_path_buf()
    };
    let cron_run = |args: &[&str]| {
        let mut c = site.as_www("env");
        c.arg(format!(
            "PATH={}:/usr/local/bin:/usr/bin:/bin",
            aws_dir.display()
        ))
        .arg("bash")
        .arg(site.path("bin/moodle-cron"))
        .args(args)
        .envs(emu.env())
        .env("AWS_DEFAULT_REGION", crate::harness::REGION);
        run(&mut c)
    };
    let cron_log = || std::fs::read_to_string(site.path("log/cron.log")).unwrap_or_default();
    // The last `n` lines of a log, newest first, on one line.
    let last = |log: &str, n: usize| log.lines().rev().take(n).collect::<Vec<_>>().join(" | ");
    // A run Moodle fails (an unknown option: cli_error, exit 1) puts no heartbeat.
    let failed = cron_run(&["--no-such-option"]);
    f.check(
        !failed.status.success() && crate::node_code::heartbeats(&emu, "moodle-prod") == 0,
        format!(
            "a failed cron run ({}) put a heartbeat, or succeeded: {}",
            failed.status,
            last(&cron_log(), 3)
        ),
    );
    // One run, without the 3 minutes the entry's run keeps polling for new tasks.
    let out = cron_run(&["--keep-alive=0"]);
    let log_text = cron_log();
    f.check(
        out.status.success() && log_text.contains("Cron run completed correctly"),
        format!("cron ({}): {}", out.status, last(&log_text, 5)),
    );
    let beats = crate::node_code::heartbeats(&emu, "moodle-prod");
    f.check(
        beats == 1,
        format!(
            "{beats} CronHeartbeat datapoints after one successful cron run, not 1: {}",
            last(&cron_log(), 3)
        ),
    );
    drop(emu);

    lap("cron");
    // --- Locks die with their holder (a killed stable node's cron) ---
    let lock_php = site.path("lock.php");
    std::fs::write(
        &lock_php,
        format!(
            "<?php define('CLI_SCRIPT', true); require '{}/moodle/config.php';\n\
         $f = \\core\\lock\\lock_config::get_lock_factory('cron');\n\
         $l = $f->get_lock('moodlestack_test', 1, 86400);\n\
         echo $l ? 'locked' : 'busy', \"\\n\";\n\
         if ($argv[1] === 'hold') {{ sleep(120); }}\n",
            root.display()
        ),
    )
    .unwrap();
    let mut holder = site
        .as_www("php")
        .arg(&lock_php)
        .arg("hold")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(holder.stdout.as_mut().unwrap())
        .read_line(&mut first)
        .unwrap();
    f.check(first.trim() == "locked", format!("the first lock: {first}"));
    // The PHP process (under `runuser` when root), then its parent, by pid.
    let pid = holder.id();
    let children =
        std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap_or_default();
    for p in children
        .split_whitespace()
        .chain([pid.to_string().as_str()])
    {
        let _ = Command::new("kill").args(["-KILL", p]).status();
    }
    let _ = holder.wait();
    let mut second = String::new();
    let _ = site
        .as_www("php")
        .arg(&lock_php)
        .arg("try")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap()
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut second);
    f.check(
        second.trim() == "locked",
        format!(
            "a lock of a killed process is still held ({}): cron would wait a day",
            second.trim()
        ),
    );

    lap("locks");
    // --- Moodle's own checks ---
    let out = run(site
        .as_www("php")
        .arg(site.path("moodle/admin/cli/checks.php"))
        .arg("-v"));
    let checks = String::from_utf8_lossy(&out.stdout).into_owned();
    let bad: Vec<&str> = checks
        .lines()
        .filter(|l| l.contains("ERROR") || l.contains("CRITICAL"))
        // Requested at https://127.0.0.1:<port> (the ALB's TLS is not here): checked below.
        .filter(|l| {
            !l.contains("publicpaths")
                && !l.contains("public paths")
                && !l.contains("internal paths")
        })
        .collect();
    f.check(bad.is_empty(), format!("admin/cli/checks.php: {bad:?}"));

    lap("checks.php");
    // --- The paths Moodle's public-paths check requests ---
    let sets = site.php(&format!(
        "<?php define('CLI_SCRIPT', true); require '{}/moodle/config.php'; \
         echo json_encode((new \\core\\check\\environment\\publicpaths())->get_pathsets());",
        root.display()
    ));
    let sets: serde_json::Value =
        serde_json::from_slice(&sets.stdout).expect("publicpaths pathsets");
    let mut requested = 0;
    for set in sets.as_array().unwrap() {
        for p in set["404"].as_array().into_iter().flatten() {
            let p = p.as_str().unwrap();
            let r = site.curl(http, &format!("/{p}"), &["-I"]);
            requested += 1;
            // Moodle's check: 404 expected, 403 accepted (INFO).
            f.check(
                r.status == 404 || r.status == 403,
                format!("public path /{p} answered {}", r.status),
            );
        }
    }
    f.check(requested > 20, "the public paths were requested");

    lap("public paths");
    // --- X-Sendfile as a troubleshooting guide tests it ---
    let content = "xsendfile works\n";
    std::fs::write(site.path("data/xsend-test.txt"), content).unwrap();
    let probe = site.path("moodle/xsend-test.php");
    std::fs::write(
        &probe,
        format!(
        "<?php header('X-Sendfile: {}/data/xsend-test.txt'); header('Content-Type: text/plain');\n",
        root.display()
    ),
    )
    .unwrap();
    let r = site.curl(http, "/xsend-test.php", &[]);
    f.check(
        r.status == 200 && r.body == content && r.header("x-sendfile").is_none(),
        format!(
            "X-Sendfile of a dataroot file: {} {:?} header {:?}",
            r.status,
            r.body,
            r.header("x-sendfile")
        ),
    );
    // Moodle's send_stored_file(): the header it emits, and what Apache makes of it.
    let stored = site.path("moodle/xsend-stored.php");
    std::fs::write(&stored, format!(
        "<?php require __DIR__ . '/config.php';\n\
         $fs = get_file_storage(); $ctx = context_system::instance();\n\
         $rec = ['contextid' => $ctx->id, 'component' => 'moodlestack', 'filearea' => 'test', 'itemid' => 0, 'filepath' => '/', 'filename' => 'stored.txt'];\n\
         $file = $fs->get_file($ctx->id, 'moodlestack', 'test', 0, '/', 'stored.txt') ?: $fs->create_file_from_string($rec, 'stored file body');\n\
         register_shutdown_function(function () {{ file_put_contents('{}', implode(\"\\n\", headers_list())); }});\n\
         send_stored_file($file, 0, 0, true);\n",
        site.path("data/stored-headers.txt").display()
    )).unwrap();
    let r = site.curl(http, "/xsend-stored.php", &[]);
    let emitted = std::fs::read_to_string(site.path("data/stored-headers.txt")).unwrap_or_default();
    f.check(
        emitted.contains(&format!("X-Sendfile: {}/data/filedir/", root.display())),
        format!("send_stored_file() did not emit X-Sendfile for the stored file: {emitted}"),
    );
    f.check(
        r.status == 200 && r.body == "stored file body" && r.header("x-sendfile").is_none(),
        format!(
            "a stored file through Apache: {} {:?}",
            r.status,
            r.body.chars().take(100).collect::<String>()
        ),
    );

    lap("x-sendfile");
    // --- A newer code than the database (a weekly build): no web upgrade, and no serving ---
    let version_php = site.path("moodle/version.php");
    let v = std::fs::read_to_string(&version_php).unwrap();
    let db_version = |site: &Site| {
        let o = site.php(&format!(
            "<?php define('CLI_SCRIPT', true); define('NO_UPGRADE_CHECK', true); require '{}/moodle/config.php'; echo $DB->get_field('config', 'value', ['name' => 'version']);",
            root.display()
        ));
        String::from_utf8_lossy(&o.stdout).trim().to_string()
    };
    let before = db_version(&site);
    let bumped = v.replace("$version  = 2024100705.01;", "$version  = 2024100705.02;");
    assert_ne!(bumped, v, "version.php's $version line");
    if is_root() {
        ok(Command::new("chmod").args(["u+w"]).arg(&version_php));
    }
    std::fs::write(&version_php, bumped).unwrap();
    // The core upgrade step of the new version: it fails while hold/fail exists, and holds the
    // maintenance window open until hold/go exists (real upgrade code: admin/cli/upgrade.php runs
    // it through upgrade_core() and its savepoint).
    let hold = site.path("hold");
    let upgrade_php = site.path("moodle/lib/db/upgrade.php");
    let steps = std::fs::read_to_string(&upgrade_php).unwrap();
    let (head, tail) = steps
        .rsplit_once("    return true;\n}")
        .expect("lib/db/upgrade.php ends with `return true; }`");
    let step = UPGRADE_STEP.replace("HOLD", &hold.display().to_string());
    std::fs::write(
        &upgrade_php,
        format!("{head}{step}    return true;\n}}{tail}"),
    )
    .unwrap();
    ok(Command::new("php").arg("-l").arg(&upgrade_php));
    std::fs::write(hold.join("fail"), "").unwrap();
    if is_root() {
        ok(Command::new("chown")
            .args(["-R", "www-data:www-data"])
            .arg(&hold));
    }
    check_health(&mut f, &site, 503, "with newer code than the database");
    let upgrade_url =
        "/admin/index.php?confirmupgrade=1&confirmrelease=1&confirmplugincheck=1&cache=0";
    site.curl(http, upgrade_url, &[]);
    f.check(
        db_version(&site) == before,
        "an anonymous request upgraded the database (the site was serving)",
    );
    // Defence in depth: even a serving node refuses the web upgrade (upgrade key, UI lock).
    std::fs::write(site.path("run/current"), "").unwrap();
    let r = site.curl(http, upgrade_url, &[]);
    f.check(
        db_version(&site) == before,
        format!(
            "an anonymous request upgraded the database past the gate ({})",
            r.status
        ),
    );
    let _ = std::fs::remove_file(site.path("run/current"));
    // --- The stable node's upgrade, in maintenance mode ---
    let maintenance = site.path("data/climaintenance.html");
    let mark = site.path("data/moodlestack/maintenance-for-upgrade");
    // In maintenance mode every request gets Moodle's page (503) and the ALB's check stays healthy.
    let check_maintenance = |f: &mut Findings, site: &Site, when: &str| {
        run_gate(site);
        f.check(
            !site.path("run/current").exists(),
            format!("{when} the gate is open (the database does not match the code)"),
        );
        for path in ["/", "/login/index.php", "/course/view.php?id=1"] {
            let r = site.curl(http, path, &[]);
            f.check(
                r.status == 503
                    && r.body.contains("The site is undergoing maintenance")
                    && r.header("retry-after") == Some("300"),
                format!(
                    "{when} {path} answered {} (503 with the maintenance page expected): {}",
                    r.status,
                    r.body.chars().take(200).collect::<String>()
                ),
            );
        }
        let r = health(site);
        f.check(
            r.status == 200 && r.body.trim() == "maintenance",
            format!(
                "{when} the health check answered {} {:?} (200 expected: no node is replaced)",
                r.status, r.body
            ),
        );
    };
    // A failing upgrade: maintenance stays on, loudly.
    let out = run(&mut install_upgrade());
    let log = String::from_utf8_lossy(&out.stderr).into_owned();
    eprintln!("moodle test: {engine}: the failed upgrade's log lines:\n{log}");
    f.check(
        !out.status.success() && log.contains("UPGRADE FAILED: the site stays in maintenance mode"),
        format!(
            "a failing upgrade exited {:?}: {}",
            out.status.code(),
            log.lines().rev().take(5).collect::<Vec<_>>().join(" | ")
        ),
    );
    let kinds = shipped(&mut f, &log, "after a failed upgrade", None);
    f.check(
        kinds.contains(&UpgradeLine::AttemptFailed),
        "after a failed upgrade, apply would not say the attempt failed",
    );
    f.check(
        maintenance.exists() && mark.exists(),
        "after a failed upgrade, maintenance mode is off",
    );
    f.check(
        db_version(&site) == before,
        format!(
            "the failed upgrade left the database at {}",
            db_version(&site)
        ),
    );
    check_maintenance(&mut f, &site, "after a failed upgrade");
    // The retry (systemd restarts the service), held in the middle of the upgrade step.
    std::fs::remove_file(hold.join("fail")).unwrap();
    let script_log = site.path("log/install-upgrade.log");
    let mut retry = install_upgrade()
        .stdout(std::fs::File::create(&script_log).unwrap())
        .stderr(std::fs::File::create(site.path("log/install-upgrade.err")).unwrap())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(180);
    while !hold.join("reached").exists() {
        if let Ok(Some(st)) = retry.try_wait() {
            panic!(
                "the upgrade ended ({st}) before its step: {}",
                std::fs::read_to_string(site.path("log/install-upgrade.err")).unwrap_or_default()
            );
        }
        assert!(
            Instant::now() < deadline,
            "the upgrade step was not reached"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    check_maintenance(&mut f, &site, "during the upgrade");
    std::fs::write(hold.join("go"), "").unwrap();
    let st = retry.wait().unwrap();
    let log = std::fs::read_to_string(site.path("log/install-upgrade.err")).unwrap_or_default();
    eprintln!("moodle test: {engine}: the upgrade's log lines:\n{log}");
    f.check(
        st.success(),
        format!("moodle-install-upgrade (upgrade) exited {st}: {log}"),
    );
    shipped(&mut f, &log, "after the upgrade", Some(UpgradeLine::Passed));
    for line in [
        "moodle-install-upgrade: maintenance mode on for the upgrade",
        "moodle-install-upgrade: maintenance mode off",
    ] {
        f.check(
            log.contains(line),
            format!("the upgrade did not log {line:?}"),
        );
    }
    f.check(
        db_version(&site) == "2024100705.02",
        format!("after the upgrade the database is at {}", db_version(&site)),
    );
    f.check(
        !maintenance.exists() && !mark.exists(),
        "after the upgrade, maintenance mode is still on",
    );
    check_health(&mut f, &site, 200, "after the upgrade");
    let r = site.curl(http, "/login/index.php", &[]);
    f.check(
        r.status == 200 && r.body.contains("logintoken"),
        format!("after the upgrade the login page answered {}", r.status),
    );
    smoke(&mut f, "after the upgrade");
    // Maintenance mode set by an operator is theirs: a run of the script leaves it on.
    let by_hand = |arg: &str| {
        ok(site
            .as_www("php")
            .arg(site.path("moodle/admin/cli/maintenance.php"))
            .arg(arg))
    };
    by_hand("--enable");
    let out = run(&mut install_upgrade());
    shipped(
        &mut f,
        &String::from_utf8_lossy(&out.stderr),
        "with maintenance mode set by hand",
        Some(UpgradeLine::SkippedInMaintenance),
    );
    f.check(
        out.status.success()
            && maintenance.exists()
            && String::from_utf8_lossy(&out.stderr)
                .contains("skipped: the site is in maintenance mode"),
        format!(
            "with maintenance mode set by hand the script exited {:?}, maintenance {}: {}",
            out.status.code(),
            maintenance.exists(),
            String::from_utf8_lossy(&out.stderr)
        ),
    );
    by_hand("--disable");
    check_health(&mut f, &site, 200, "after maintenance mode by hand");
    // The health check needs PHP: without php-fpm Apache itself answers 503 (why the matcher
    // does not accept 503), in maintenance mode too.
    by_hand("--enable");
    let fpm_pid = site
        .children
        .iter()
        .find(|(n, _)| n == "php-fpm")
        .map(|(_, c)| c.id())
        .unwrap();
    ok(Command::new("kill").args(["-TERM", &fpm_pid.to_string()]));
    let deadline = Instant::now() + Duration::from_secs(20);
    while sock.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
    let r = health(&site);
    f.check(
        r.status == 503,
        format!(
            "with php-fpm stopped the health check answered {} {:?} (503 expected)",
            r.status, r.body
        ),
    );

    lap("upgrade");
    drop(site);
    f.0
}

/// Starts MariaDB or PostgreSQL on 127.0.0.1:`port` with the stack's database and user.
fn start_database(site: &mut Site, engine: &str, port: u16) -> bool {
    let data = site.path("db/data");
    let sock_dir = site.path("db");
    let as_db = |prog: &Path| -> Command {
        if is_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "www-data", "--"]).arg(prog);
            c
        } else {
            Command::new(prog)
        }
    };
    let users: BTreeMap<&str, &str> = [("name", "moodle"), ("user", "moodleadmin")].into();
    if engine == "postgres" {
        let bin = postgres_bin();
        std::fs::write(site.path("db/pw"), DB_PASSWORD).unwrap();
        ok(as_db(&bin.join("initdb"))
            .args(["-D"])
            .arg(&data)
            .args([
                "-U",
                users["user"],
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "--pwfile",
            ])
            .arg(site.path("db/pw")));
        let i = site.spawn(
            "postgres",
            as_db(&bin.join("postgres"))
                .arg("-D")
                .arg(&data)
                .args([
                    "-p",
                    &port.to_string(),
                    "-c",
                    "listen_addresses=127.0.0.1",
                    // A test database: commits need not wait for the disk.
                    "-c",
                    "synchronous_commit=off",
                    "-k",
                ])
                .arg(&sock_dir),
        );
        let log = site.path("log/postgres.log");
        wait_port(port, "postgres", &mut site.children[i].1, &log);
        // The port opens before the server accepts connections ("starting up"): wait for it.
        let deadline = Instant::now() + Duration::from_secs(60);
        while !run(as_db(&bin.join("pg_isready"))
            .arg("-h")
            .arg(&sock_dir)
            .args(["-p", &port.to_string()]))
        .status
        .success()
        {
            assert!(Instant::now() < deadline, "postgres did not get ready");
            std::thread::sleep(Duration::from_millis(300));
        }
        ok(as_db(&bin.join("createdb"))
            .args(["-h"])
            .arg(&sock_dir)
            .args([
                "-p",
                &port.to_string(),
                "-U",
                users["user"],
                "-E",
                "UTF8",
                users["name"],
            ]));
    } else {
        let sock = site.path("db/mysql.sock");
        ok(as_db(Path::new("/usr/bin/mariadb-install-db"))
            .args([
                "--no-defaults",
                "--auth-root-authentication-method=normal",
                "--skip-test-db",
            ])
            .arg(format!("--datadir={}", data.display())));
        let i = site.spawn(
            "mariadb",
            as_db(Path::new("/usr/sbin/mariadbd"))
                .arg("--no-defaults")
                .arg(format!("--datadir={}", data.display()))
                .arg(format!("--socket={}", sock.display()))
                .arg(format!("--port={port}"))
                // As the stack's parameter group (innodb_flush_log_at_trx_commit=2).
                .args([
                    "--bind-address=127.0.0.1",
                    "--skip-log-bin",
                    "--innodb-flush-log-at-trx-commit=2",
                ])
                .arg(format!(
                    "--pid-file={}",
                    site.path("db/mariadb.pid").display()
                )),
        );
        let log = site.path("log/mariadb.log");
        wait_port(port, "mariadb", &mut site.children[i].1, &log);
        ok(Command::new("mariadb")
            .arg("--no-defaults")
            .arg(format!("--socket={}", sock.display()))
            .args(["-u", "root", "-e"])
            .arg(format!(
                "CREATE DATABASE {n} DEFAULT CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci; \
                 CREATE USER '{u}'@'127.0.0.1' IDENTIFIED BY '{DB_PASSWORD}'; \
                 GRANT ALL ON {n}.* TO '{u}'@'127.0.0.1';",
                n = users["name"],
                u = users["user"]
            )));
    }
    true
}

/// `aws cloudwatch put-metric-data --region R --namespace N --metric-name M --value V --unit U
/// ...` as the AWS CLI sends it (the Query protocol), to the emulator, for a user that cannot run
/// the CLI itself. The emulator reads the region from the credential scope and checks no
/// signature.
const AWS_PUT_METRIC_DATA_SHIM: &str = r#"#!/usr/bin/python3
import os, sys, urllib.parse, urllib.request
args = sys.argv[1:]
if args[:2] != ["cloudwatch", "put-metric-data"]:
    sys.exit("aws (test shim): only cloudwatch put-metric-data, not %s" % args[:2])
opts = {}
for i, a in enumerate(args):
    if a.startswith("--") and i + 1 < len(args) and not args[i + 1].startswith("--"):
        opts[a[2:]] = args[i + 1]
body = urllib.parse.urlencode({
    "Action": "PutMetricData", "Version": "2010-08-01", "Namespace": opts["namespace"],
    "MetricData.member.1.MetricName": opts["metric-name"],
    "MetricData.member.1.Value": opts["value"],
    "MetricData.member.1.Unit": opts.get("unit", "None"),
}).encode()
url = os.environ.get("AWS_ENDPOINT_URL_CLOUDWATCH") or os.environ["AWS_ENDPOINT_URL"]
auth = ("AWS4-HMAC-SHA256 Credential=%s/20260101/%s/monitoring/aws4_request, "
        "SignedHeaders=host, Signature=0" % (os.environ.get("AWS_ACCESS_KEY_ID", "test"), opts["region"]))
req = urllib.request.Request(url + "/", data=body, headers={
    "Content-Type": "application/x-www-form-urlencoded", "Authorization": auth})
urllib.request.urlopen(req, timeout=10).read()
"#;
