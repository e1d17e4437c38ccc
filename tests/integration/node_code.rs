//! The nodes' code step, run for real: the "Moodle code" section of the rendered user-data, with
//! the AWS CLI against the emulator's S3 and git against local repositories on disk. A web node
//! that boots first waits for the artefact; the stable node builds it from the pinned refs and
//! puts it once; a later stable node and the web node boot from the bucket's copy without git.

use crate::harness::{aws_cli, succeeded, Emulator, REGION};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

const MOODLE_URL: &str = "https://github.com/moodle/moodle.git";
const FORCEDCACHE_URL: &str = "https://github.com/catalyst/moodle-tool_forcedcache.git";

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["-c", "user.name=t", "-c", "user.email=t@example.org"])
        .args(args)
        .output()
        .expect("git runs");
    succeeded(&format!("git {args:?}"), &out).trim().to_string()
}

/// A repository at `dir` with `files`, committed; returns the commit id.
fn repo(dir: &Path, files: &[(&str, &str)]) -> String {
    std::fs::create_dir_all(dir).unwrap();
    git(dir, &["init", "-q"]);
    for (path, text) in files {
        let p = dir.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
    git(dir, &["add", "-A"]);
    git(dir, &["commit", "-q", "-m", "code"]);
    git(dir, &["rev-parse", "HEAD"])
}

/// The code step of the rendered user-data of `role`: the `retry` helper of its header, then the
/// "Moodle code" section up to the ownership change (which needs root).
fn code_step(user_data: &str) -> String {
    let retry_start = user_data
        .find("retry() {")
        .expect("user-data defines retry");
    let retry_end = retry_start + user_data[retry_start..].find("\n}\n").unwrap() + 3;
    let start = user_data
        .find("# --- Moodle code")
        .expect("user-data has the code section");
    let end = start
        + user_data[start..]
            .find("chown -R root:root")
            .expect("the code section ends with the ownership change");
    format!(
        "set -euo pipefail\n{}\n{}",
        &user_data[retry_start..retry_end],
        &user_data[start..end]
    )
}

struct Node {
    script: String,
}

impl Node {
    fn command(&self, emu: &Emulator, home: &Path) -> Command {
        let bin = aws_cli();
        let path = format!(
            "{}:{}",
            bin.parent().unwrap().display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let mut cmd = Command::new("bash");
        cmd.arg("-c").arg(&self.script);
        cmd.envs(emu.env())
            .env("PATH", path)
            .env("HOME", home)
            .env("AWS_DEFAULT_REGION", REGION)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .stdin(Stdio::null());
        cmd
    }
    fn run(&self, emu: &Emulator, home: &Path) -> Output {
        self.command(emu, home).output().expect("bash runs")
    }
    fn spawn(&self, emu: &Emulator, home: &Path) -> Child {
        self.command(emu, home)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("bash runs")
    }
}

fn render(out: &Path, forcedcache_ref: &str, dirroot: &str) {
    let done = Command::new(env!("CARGO_BIN_EXE_moodlestack"))
        .arg("render")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("stacks/demo.yaml"))
        .arg("--out")
        .arg(out)
        .args(["--offline", "-q"])
        .args([
            "--set",
            &format!("moodle.forcedcache_ref={forcedcache_ref}"),
        ])
        .args(["--set", &format!("moodle.dirroot={dirroot}")])
        .output()
        .expect("moodlestack runs");
    succeeded("render", &done);
}

fn ok(what: &str, out: &Output) {
    succeeded(what, out);
}

fn aws(emu: &Emulator, args: &[&str]) -> Output {
    Command::new(aws_cli())
        .args(args)
        .envs(emu.env())
        .env("AWS_DEFAULT_REGION", REGION)
        .output()
        .expect("the AWS CLI runs")
}

fn etag(emu: &Emulator, bucket: &str, key: &str) -> String {
    let out = aws(
        emu,
        &[
            "s3api",
            "head-object",
            "--bucket",
            bucket,
            "--key",
            key,
            "--query",
            "ETag",
        ],
    );
    ok("head-object", &out);
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A fresh scratch directory `moodlestack-node-<name>-<pid>`, and the `home` made inside it.
fn scratch(name: &str) -> (PathBuf, PathBuf) {
    let root = std::env::temp_dir().join(format!("moodlestack-node-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let home = root.join("home");
    std::fs::create_dir_all(&home).unwrap();
    (root, home)
}

#[test]
fn nodes_boot_from_the_code_artefact_the_stable_node_puts_once() {
    let emu = Emulator::start();
    let (root, home) = scratch("code");
    let root = &root;

    // The pinned code: a Moodle tag and a tool_forcedcache commit, in repositories on disk.
    let moodle = root.join("git/moodle");
    repo(
        &moodle,
        &[
            (
                "version.php",
                "<?php $version = 2024100705.00; $release = '4.5.5';\n",
            ),
            ("lib/setup.php", "<?php // setup\n"),
        ],
    );
    git(&moodle, &["tag", "v4.5.5"]);
    let forcedcache = root.join("git/forcedcache");
    let fc_ref = repo(
        &forcedcache,
        &[(
            "version.php",
            "<?php $plugin->component = 'tool_forcedcache';\n",
        )],
    );
    let moodle_url = format!("file://{}", moodle.display());

    let bucket = format!("demo-{REGION}-123456789012-code");
    ok(
        "create-bucket",
        &aws(
            &emu,
            &[
                "s3api",
                "create-bucket",
                "--bucket",
                &bucket,
                "--create-bucket-configuration",
                &format!("LocationConstraint={REGION}"),
            ],
        ),
    );

    // Each node renders with its own code directory (on a node it is /var/www/moodle).
    let node = |name: &str, role: &str| -> (Node, PathBuf) {
        let dirroot = root.join("nodes").join(name);
        let out = root.join("rendered").join(name);
        render(&out, &fc_ref, &dirroot.display().to_string());
        let user_data = std::fs::read_to_string(out.join(role).join("user-data.sh")).unwrap();
        let script = code_step(&user_data)
            .replace("<code bucket: known after apply>", &bucket)
            .replace(
                FORCEDCACHE_URL,
                &format!("file://{}", forcedcache.display()),
            )
            .replace(MOODLE_URL, &moodle_url);
        (Node { script }, dirroot)
    };
    let key = format!("code/moodle-v4.5.5-forcedcache-{fc_ref}.tar.gz");

    // A web node that boots before the stable node waits for the artefact.
    let (web, web_dir) = node("web-1", "web");
    assert!(!web.script.contains("git "), "web nodes never use git");
    let waiting = web.spawn(&emu, &home);

    // The stable node finds none, builds it from the pinned refs and puts it.
    let (stable, stable_dir) = node("stable-1", "stable");
    ok("stable node", &stable.run(&emu, &home));
    for f in [
        "version.php",
        "lib/setup.php",
        "admin/tool/forcedcache/version.php",
    ] {
        assert!(stable_dir.join(f).is_file(), "stable node: {f} missing");
    }
    assert!(
        !stable_dir.join(".git").exists(),
        "no repository on the node"
    );
    assert!(!stable_dir.join("admin/tool/forcedcache/.git").exists());
    let first = etag(&emu, &bucket, &key);

    // The web node picks it up on its next try.
    ok("waiting web node", &waiting.wait_with_output().unwrap());
    assert_eq!(
        std::fs::read(web_dir.join("admin/tool/forcedcache/version.php")).unwrap(),
        std::fs::read(stable_dir.join("admin/tool/forcedcache/version.php")).unwrap()
    );

    // With the repositories gone (GitHub down), a replaced stable node boots from the bucket,
    // which is never written again.
    std::fs::rename(root.join("git"), root.join("git-gone")).unwrap();
    let (stable2, stable2_dir) = node("stable-2", "stable");
    ok("second stable node", &stable2.run(&emu, &home));
    assert!(stable2_dir.join("version.php").is_file());
    assert_eq!(
        etag(&emu, &bucket, &key),
        first,
        "the artefact was put again"
    );

    // A put over the existing artefact is refused (If-None-Match), so no node can change the
    // bytes of a version.
    let other = root.join("other.tar.gz");
    std::fs::write(&other, b"not the code").unwrap();
    let refused = aws(
        &emu,
        &[
            "s3api",
            "put-object",
            "--bucket",
            &bucket,
            "--key",
            &key,
            "--body",
            &other.display().to_string(),
            "--if-none-match",
            "*",
        ],
    );
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("PreconditionFailed"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    assert_eq!(etag(&emu, &bucket, &key), first);
    let _ = std::fs::remove_dir_all(root);
}

/// How many `CronHeartbeat` datapoints of stack `stack` the emulator holds (a plain client: the
/// AWS CLI's `get-metric-statistics`, SampleCount over the last hour by the minute).
pub(crate) fn heartbeats(emu: &Emulator, stack: &str) -> u32 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let out = aws(
        emu,
        &[
            "cloudwatch",
            "get-metric-statistics",
            "--namespace",
            &format!("Moodlestack/{stack}"),
            "--metric-name",
            "CronHeartbeat",
            "--start-time",
            &(now - 3600).to_string(),
            "--end-time",
            &(now + 60).to_string(),
            "--period",
            "60",
            "--statistics",
            "SampleCount",
            "--output",
            "json",
        ],
    );
    ok("get-metric-statistics", &out);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let total: f64 = v["Datapoints"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["SampleCount"].as_f64().unwrap_or(0.0))
        .sum();
    // Sample counts are whole numbers.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let n = total.round() as u32;
    n
}

/// The PHP of this machine (`/usr/bin/php8.2` on Debian 12).
fn local_php() -> String {
    ["8.4", "8.3", "8.2", "8.1"]
        .into_iter()
        .map(|v| format!("/usr/bin/php{v}"))
        .find(|p| Path::new(p).exists())
        .expect("no /usr/bin/php8.x: install PHP (scripts/test does)")
}

#[test]
fn the_cron_wrapper_puts_a_heartbeat_after_a_successful_run_only() {
    let emu = Emulator::start();
    let (root, home) = scratch("cron");
    let root = &root;
    std::fs::create_dir_all(root.join("run")).unwrap();
    std::fs::create_dir_all(root.join("log")).unwrap();
    let dirroot = root.join("moodle");
    std::fs::create_dir_all(dirroot.join("admin/cli")).unwrap();
    let out = root.join("rendered");
    render(
        &out,
        "0123456789abcdef0123456789abcdef01234567",
        &dirroot.display().to_string(),
    );
    let crontab = std::fs::read_to_string(out.join("stable/etc/cron.d/moodle")).unwrap();
    assert!(
        crontab.contains("* * * * * www-data /usr/local/sbin/moodle-cron"),
        "{crontab}"
    );
    let flag = root.join("run/current");
    let log = root.join("log/cron.log");
    let wrapper = std::fs::read_to_string(out.join("stable/usr/local/sbin/moodle-cron"))
        .unwrap()
        .replace("/run/moodle/current", &flag.display().to_string())
        .replace("/var/log/moodle/cron.log", &log.display().to_string())
        .replace("/usr/bin/php8.3", &local_php());
    assert!(wrapper.contains(&format!("{}/admin/cli/cron.php", dirroot.display())));
    let script = root.join("moodle-cron");
    std::fs::write(&script, &wrapper).unwrap();
    // cron.php: ends with the exit code in `exit-code` (Moodle's own is in the real-Moodle test).
    std::fs::write(
        dirroot.join("admin/cli/cron.php"),
        "<?php\necho \"Cron run: \", implode(' ', array_slice($argv, 1)), \"\\n\";\n\
         exit((int) trim(file_get_contents(__DIR__ . '/exit-code')));\n",
    )
    .unwrap();
    let cron = |exit: i32, endpoint: Option<&str>| {
        std::fs::write(dirroot.join("admin/cli/exit-code"), exit.to_string()).unwrap();
        let mut node = Node {
            script: format!("bash {} --keep-alive=0", script.display()),
        }
        .command(&emu, &home);
        if let Some(e) = endpoint {
            node.env("AWS_ENDPOINT_URL", e);
        }
        let started = std::time::Instant::now();
        let done = node.output().expect("bash runs");
        (done.status.code().unwrap_or(-1), started.elapsed())
    };
    let log_text = || std::fs::read_to_string(&log).unwrap_or_default();

    // While the database is not current (no flag) nothing runs.
    assert_eq!(cron(0, None).0, 0);
    assert_eq!(log_text(), "", "cron ran without the current flag");
    std::fs::write(&flag, "").unwrap();

    // A failed run: its exit code, its output in the log, no heartbeat.
    assert_eq!(cron(3, None).0, 3);
    assert!(
        log_text().contains("Cron run: --keep-alive=0"),
        "{}",
        log_text()
    );
    assert!(
        log_text().contains("cron.php failed (exit 3): no heartbeat"),
        "{}",
        log_text()
    );
    assert_eq!(
        heartbeats(&emu, "demo"),
        0,
        "a heartbeat after a failed run"
    );

    // A successful run puts one.
    assert_eq!(cron(0, None).0, 0);
    assert_eq!(
        heartbeats(&emu, "demo"),
        1,
        "no heartbeat after a successful run:\n{}",
        log_text()
    );

    // A CloudWatch that never answers holds cron up 20 s at most, and the run still succeeds.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", silent.local_addr().unwrap());
    let (code, took) = cron(0, Some(&endpoint));
    assert_eq!(code, 0, "{}", log_text());
    assert!(took < std::time::Duration::from_secs(27), "took {took:?}");
    assert!(
        log_text().contains("the heartbeat was not put"),
        "{}",
        log_text()
    );
    drop(silent);
    assert_eq!(heartbeats(&emu, "demo"), 1);
    let _ = std::fs::remove_dir_all(root);
}

/// The rendered `moodledata-restored` of a node, run for real on a directory standing for
/// moodledata: a file system AWS Backup restored (its files under `aws-backup-restore_<time>`,
/// with the source's own marker and lock) gets them at its root, once; a file system in use, or
/// one the step has run on, is never touched; an empty one is only marked.
#[test]
fn a_restored_file_systems_files_are_moved_to_moodledatas_root_once() {
    let root = &std::env::temp_dir().join(format!("moodlestack-restored-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(root);
    let data = root.join("moodledata");
    let out = root.join("rendered");
    let done = Command::new(env!("CARGO_BIN_EXE_moodlestack"))
        .arg("render")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("stacks/demo.yaml"))
        .arg("--out")
        .arg(&out)
        .args(["--offline", "-q"])
        .args(["--set", &format!("moodle.dataroot={}", data.display())])
        .output()
        .expect("moodlestack runs");
    succeeded("render", &done);
    for role in ["stable", "web"] {
        let user_data = std::fs::read_to_string(out.join(role).join("user-data.sh")).unwrap();
        let mounted = user_data.find("retry 30 10 mnt").expect("the mount");
        let runs = user_data
            .find("\n/usr/local/sbin/moodledata-restored\n")
            .expect("the step runs");
        let writes = user_data
            .find("chown www-data:www-data \"$d\"")
            .expect("moodledata's owner");
        assert!(
            mounted < runs && runs < writes,
            "{role}: after the mount, before any write"
        );
    }
    let script = out.join("stable/usr/local/sbin/moodledata-restored");
    let run = || {
        let done = Command::new("bash")
            .arg(&script)
            .stdin(Stdio::null())
            .output()
            .expect("bash runs");
        succeeded("moodledata-restored", &done);
        String::from_utf8_lossy(&done.stdout).to_string()
    };
    let write = |path: &Path, text: &str| {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    };
    let read = |path: PathBuf| std::fs::read_to_string(path).unwrap();
    let names = |dir: &Path| {
        let mut n: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
            .collect();
        n.sort();
        n
    };

    // A new file system restored from a backup of a moodledata that had been restored itself.
    let restore = data.join("aws-backup-restore_2026-12-01T10-15-00-000Z");
    write(&restore.join("filedir/ab/cd/abcd1234"), "a course file");
    write(&restore.join("moodlestack/admin-password"), "secret");
    write(&restore.join(".hidden"), "dot file");
    write(
        &restore.join(".moodlestack-restored"),
        "the source's marker",
    );
    write(&restore.join(".moodlestack-restore.lock"), "");
    let said = run();
    assert!(
        said.contains("moved the restored files from aws-backup-restore_2026-12-01T10-15-00-000Z"),
        "{said}"
    );
    assert_eq!(
        names(&data),
        [
            ".hidden",
            ".moodlestack-restore.lock",
            ".moodlestack-restored",
            "filedir",
            "moodlestack"
        ]
    );
    assert_eq!(read(data.join("filedir/ab/cd/abcd1234")), "a course file");
    assert_eq!(read(data.join("moodlestack/admin-password")), "secret");
    assert!(read(data.join(".moodlestack-restored")).contains("moved the restored files"));

    // Once: a later restore directory (an item restored by hand) stays where AWS Backup put it.
    write(
        &data.join("aws-backup-restore_2026-12-02T08-00-00-000Z/filedir/x"),
        "restored by hand",
    );
    assert_eq!(run(), "");
    assert!(data
        .join("aws-backup-restore_2026-12-02T08-00-00-000Z/filedir/x")
        .is_file());
    assert_eq!(read(data.join("filedir/ab/cd/abcd1234")), "a course file");

    // A file system in use that the step never ran on (a stack made before it): left as it is.
    std::fs::remove_file(data.join(".moodlestack-restored")).unwrap();
    let said = run();
    assert!(
        said.contains("left 1 aws-backup-restore_* directories as they are"),
        "{said}"
    );
    assert!(data
        .join("aws-backup-restore_2026-12-02T08-00-00-000Z/filedir/x")
        .is_file());
    assert!(!data.join("x").exists());

    // A new, empty file system: only marked.
    std::fs::remove_dir_all(&data).unwrap();
    std::fs::create_dir_all(&data).unwrap();
    assert!(run().contains("nothing to move"));
    assert_eq!(
        names(&data),
        [".moodlestack-restore.lock", ".moodlestack-restored"]
    );
    let _ = std::fs::remove_dir_all(root);
}
