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

#[test]
fn nodes_boot_from_the_code_artefact_the_stable_node_puts_once() {
    let emu = Emulator::start();
    let root = &std::env::temp_dir().join(format!("moodlestack-node-code-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(root);
    let home = root.join("home");
    std::fs::create_dir_all(&home).unwrap();

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
