//! Throw-away stacks: `apply --ttl`, `list` and `gc` (stacks that expire, collected without their
//! stack file), and `run` (a Moodle CLI script on the stable node through SSM Run Command), on
//! the emulator; end states checked with plain AWS SDK clients.

use crate::e2e::{assert_nothing_left, clients, ms, ms_ok, Clients};
use crate::harness::{strs_of, Emulator};
use serde_json::Value as J;
use std::collections::BTreeMap;

/// Applies the demo stack (the quickest to apply) as `name` with `extra` arguments.
fn apply(emu: &Emulator, name: &str, extra: &[&str]) -> String {
    let mut args = vec![
        "apply",
        "stacks/demo.yaml",
        "--name",
        name,
        "--auto-approve",
        "-q",
    ];
    args.extend_from_slice(extra);
    ms_ok(emu, &args, 0)
}

/// `list --json` by stack name.
fn listed(emu: &Emulator) -> BTreeMap<String, J> {
    let out = ms_ok(emu, &["list", "--json"], 0);
    let v: J = serde_json::from_str(&out).unwrap_or_else(|e| panic!("list JSON: {e}\n{out}"));
    v["stacks"]
        .as_array()
        .expect("stacks")
        .iter()
        .map(|s| (s["name"].as_str().unwrap().to_string(), s.clone()))
        .collect()
}

/// Whether the stack's database instance exists (a plain RDS client).
async fn db_exists(c: &Clients, stack: &str) -> bool {
    c.rds
        .describe_db_instances()
        .db_instance_identifier(format!("{stack}-db"))
        .send()
        .await
        .is_ok()
}

/// The plan of `name` has no change (`--detailed-exitcode` exits 0): everything is there as
/// declared, and the expiry tag shows as no change.
fn plans_clean(emu: &Emulator, name: &str) {
    ms_ok(
        emu,
        &[
            "plan",
            "stacks/demo.yaml",
            "--name",
            name,
            "--detailed-exitcode",
        ],
        0,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gc_destroys_exactly_the_expired_stacks() {
    let emu = Emulator::start();
    let c = clients(&emu).await;
    // pr-1 expires at once; pr-2 is made with a day and shortened to 2 s by a second apply (an
    // in-place tag update of every resource); pr-3 has a day left; keep has no expiry.
    apply(&emu, "pr-1", &["--ttl", "2s"]);
    apply(&emu, "pr-2", &["--ttl", "1d"]);
    apply(&emu, "pr-3", &["--ttl", "1d"]);
    apply(&emu, "keep", &[]);
    // A plain plan shows the expiry as no change; `--ttl` on an existing stack changes the tags
    // of every taggable resource and nothing else.
    plans_clean(&emu, "pr-2");
    let (code, out, err) = ms(
        &emu,
        &[
            "plan",
            "stacks/demo.yaml",
            "--name",
            "pr-2",
            "--ttl",
            "2s",
            "--json",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let plan: J = serde_json::from_str(&out).unwrap();
    let changed: Vec<&J> = plan["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|ch| ch["action"] != "no_op")
        .collect();
    assert!(changed.len() >= 20, "{out}");
    for ch in &changed {
        assert_eq!(ch["action"], "update", "{ch}");
        let fields = strs_of(&ch["fields"], "field");
        assert_eq!(fields, ["tags"], "{ch}");
    }
    apply(&emu, "pr-2", &["--ttl", "2s"]);
    plans_clean(&emu, "pr-2");
    std::thread::sleep(std::time::Duration::from_secs(3));

    let stacks = listed(&emu);
    assert_eq!(
        stacks.keys().collect::<Vec<_>>(),
        ["keep", "pr-1", "pr-2", "pr-3"],
        "{stacks:?}"
    );
    let count = stacks["keep"]["resources"].as_u64().unwrap();
    assert!(count >= 20, "{stacks:?}");
    for (name, s) in &stacks {
        assert_eq!(s["resources"].as_u64().unwrap(), count, "{name}: {s}");
        assert!(s["created_at"].is_string(), "{name}: {s}");
        assert!(s["age_seconds"].as_u64().unwrap() < 600, "{name}: {s}");
        assert_eq!(
            s["resources_without_expiry"],
            if name == "keep" { count } else { 0 }
        );
    }
    assert_eq!(stacks["pr-1"]["expired"], true);
    assert_eq!(stacks["pr-2"]["expired"], true);
    assert_eq!(stacks["pr-3"]["expired"], false);
    assert!(stacks["pr-3"]["expires_at"]
        .as_str()
        .unwrap()
        .ends_with('Z'));
    assert_eq!(stacks["keep"]["expired"], false);
    assert!(stacks["keep"]["expires_at"].is_null());
    let text = ms_ok(&emu, &["list"], 0);
    assert!(text.contains("STACK") && text.contains("EXPIRES"), "{text}");
    let line = |name: &str| {
        text.lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .unwrap_or_else(|| panic!("no line for {name}:\n{text}"))
            .to_string()
    };
    assert!(line("keep").ends_with("never"), "{text}");
    assert!(line("pr-1").contains("(passed "), "{text}");
    assert!(
        // Applied with --ttl 1d a while ago (minutes, on a loaded machine).
        line("pr-3").contains("(in 23h") || line("pr-3").contains("(in 1d00h"),
        "{text}"
    );

    // --dry-run names exactly the expired two and deletes nothing.
    let dry = ms_ok(&emu, &["gc", "--dry-run"], 0);
    assert!(
        dry.contains("Dry run: would destroy 2 stacks: pr-1, pr-2."),
        "{dry}"
    );
    for name in ["pr-1", "pr-2", "pr-3", "keep"] {
        assert!(db_exists(&c, name).await, "{name}");
    }
    // Without a terminal and without --auto-approve gc asks and, unanswered, deletes nothing.
    let (code, _, err) = ms(&emu, &["gc"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("--auto-approve"), "{err}");
    assert!(db_exists(&c, "pr-1").await);

    let out = ms_ok(&emu, &["gc", "--auto-approve"], 0);
    assert!(out.contains("gc: destroyed 2 stacks: pr-1, pr-2"), "{out}");
    assert_nothing_left(&c, "pr-1").await;
    assert_nothing_left(&c, "pr-2").await;
    // Their databases took a final snapshot, as destroy does.
    let snaps = c.rds.describe_db_snapshots().send().await.unwrap();
    for name in ["pr-1", "pr-2"] {
        assert!(
            snaps.db_snapshots().iter().any(|s| s
                .db_snapshot_identifier()
                .is_some_and(|i| i.starts_with(&format!("{name}-db-final-")))),
            "{name}: {snaps:?}"
        );
    }
    // The others are whole and unchanged.
    plans_clean(&emu, "pr-3");
    plans_clean(&emu, "keep");
    assert_eq!(listed(&emu).keys().collect::<Vec<_>>(), ["keep", "pr-3"]);

    // An expired stack with deletion protection is refused (with the fix) unless
    // --allow-data-loss.
    apply(
        &emu,
        "prot",
        &["--ttl", "2s", "--set", "database.deletion_protection=true"],
    );
    std::thread::sleep(std::time::Duration::from_secs(3));
    let (code, out, err) = ms(&emu, &["gc", "--auto-approve"]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        out.contains("refused: deletion protection is on for db.instance")
            && out.contains("fix: `moodlestack gc --allow-data-loss`"),
        "{out}"
    );
    assert!(out.contains("gc: destroyed 0 stacks"), "{out}");
    assert!(db_exists(&c, "prot").await);
    let out = ms_ok(&emu, &["gc", "--auto-approve", "--allow-data-loss"], 0);
    assert!(out.contains("gc: destroyed 1 stack: prot"), "{out}");
    assert_nothing_left(&c, "prot").await;
    plans_clean(&emu, "pr-3");
    plans_clean(&emu, "keep");

    // A plain apply keeps the stack's expiry, also on what it creates: the code bucket, deleted
    // by hand, comes back with the expiry the rest of pr-3 carries.
    let bucket = format!("pr-3-{}-123456789012-code", crate::harness::REGION);
    c.s3.delete_bucket().bucket(&bucket).send().await.unwrap();
    apply(&emu, "pr-3", &[]);
    let expiry = c
        .bucket_tags(&bucket)
        .await
        .remove("moodlestack:expires-at");
    assert_eq!(expiry.as_deref(), stacks["pr-3"]["expires_at"].as_str(),);
    plans_clean(&emu, "pr-3");
}

#[test]
fn ttls_are_checked_before_any_aws_call() {
    let emu = Emulator::start();
    let (code, _, err) = ms(
        &emu,
        &["apply", "stacks/demo.yaml", "--ttl", "3w", "--auto-approve"],
    );
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("error: --ttl `3w`: unknown unit `w`") && err.contains("fix: write a whole"),
        "{err}"
    );
}

/// The PHP binary the test machine has, as a stack's `moodle.php_version`.
fn local_php() -> &'static str {
    ["8.3", "8.2", "8.1"]
        .into_iter()
        .find(|v| std::path::Path::new(&format!("/usr/bin/php{v}")).exists())
        .expect("no /usr/bin/php8.x: install PHP (scripts/test does) to test `moodlestack run`")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_executes_a_cli_script_as_the_web_user_and_returns_its_exit_code() {
    // The emulator's opt-in Run Command hook runs AWS-RunShellScript's commands with bash on this
    // host (moto alone runs nothing and answers success): the command moodlestack sends really
    // runs, as root like the SSM agent, so `runuser -u www-data` and the stack's PHP are real.
    let emu = Emulator::start_with(&[("MOODLESTACK_EMULATOR_RUN_COMMAND", "bash")]);
    let dir = std::env::temp_dir().join(format!("moodlestack-run-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("admin/cli")).unwrap();
    std::fs::write(
        dir.join("admin/cli/echo.php"),
        "<?php\ndefine('CLI_SCRIPT', true);\n\
         echo 'user=', trim(shell_exec('id -un')), ' cwd=', getcwd(), ' args=', \
         json_encode(array_slice($argv, 1)), \"\\n\";\n\
         fwrite(STDERR, \"note on stderr\\n\");\nexit((int)($argv[1] ?? 0));\n",
    )
    .unwrap();
    let dirroot = format!("moodle.dirroot={}", dir.display());
    let php = format!("moodle.php_version=\"{}\"", local_php());
    let set = ["--set", &dirroot, "--set", &php];
    let mut args = vec!["apply", "stacks/demo.yaml", "--auto-approve", "-q"];
    args.extend(set);
    ms_ok(&emu, &args, 0);

    // Not `ms`: it adds `--color never` at the end, which would go to the script.
    let run = |tail: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_moodlestack"))
            .args(["--color", "never", "run", "stacks/demo.yaml"])
            .args(set)
            .arg("--")
            .args(tail)
            .envs(emu.env())
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).to_string(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    let (code, out, err) = run(&["admin/cli/echo.php", "3", "it's a \"test\""]);
    assert_eq!(code, 3, "{out}{err}");
    assert_eq!(
        out,
        format!(
            "user=www-data cwd={} args=[\"3\",\"it's a \\\"test\\\"\"]\n",
            dir.display()
        ),
        "{err}"
    );
    assert!(err.contains("note on stderr"), "{err}");
    assert!(err.contains("Running on i-"), "{err}");
    let (code, out, err) = run(&["admin/cli/echo.php", "0"]);
    assert_eq!(code, 0, "{out}{err}");
    // A path that is not a script under the Moodle directory is refused before any call.
    let (code, _, err) = run(&["../etc/passwd.php"]);
    assert_eq!(code, 1);
    assert!(err.contains("fix: give a .php path relative"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}
