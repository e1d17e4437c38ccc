//! The commands that need no cloud, through the binary: validate, schema, render --offline.

use std::path::PathBuf;
use std::process::Command;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn run(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_moodlestack"))
        .args(args)
        .args(["--color", "never"])
        .current_dir(repo())
        .output()
        .expect("run moodlestack");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

#[test]
fn validate_accepts_the_shipped_stacks() {
    for f in ["stacks/demo.yaml", "stacks/production.yaml"] {
        let (code, out, err) = run(&["validate", f]);
        assert_eq!(code, 0, "{f}: {out}{err}");
        assert!(out.contains("is valid"), "{out}");
    }
}

/// Output with this run's temporary directory replaced by `[TMP]`.
fn filtered(text: &str, dir: &std::path::Path) -> String {
    text.replace(&dir.display().to_string(), "[TMP]")
}

#[test]
fn validate_reports_every_problem_with_its_location_and_exits_1() {
    let dir = std::env::temp_dir().join(format!("moodlestack-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let demo = std::fs::read_to_string(repo().join("stacks/demo.yaml")).unwrap();
    let broken = demo
        .replace("deregistration_delay: 30", "deregistration_delay: 7200")
        .replace("  min: 1\n  max: 2", "  min: 3\n  max: 2")
        .replace("cache:\n", "cahce:\n");
    let path = dir.join("broken.yaml");
    std::fs::write(&path, &broken).unwrap();
    let (code, out, err) = run(&["validate", path.to_str().unwrap()]);
    assert_eq!(code, 1, "{out}{err}");
    let line_of = |needle: &str| broken.lines().position(|l| l.contains(needle)).unwrap() + 1;
    let report = format!("{out}{err}");
    assert!(
        report.contains(&format!("broken.yaml:{}:", line_of("deregistration_delay"))),
        "{report}"
    );
    assert!(
        report.contains(&format!("broken.yaml:{}:", line_of("min: 3"))),
        "{report}"
    );
    assert!(
        report.contains(&format!("broken.yaml:{}:1", line_of("cahce:"))),
        "{report}"
    );
    assert!(report.contains("did you mean `cache`"), "{report}");
    insta::assert_snapshot!("validate_broken", filtered(&report, &dir));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Errors are rendered once, by `main`: the message, then the fix on its own line.
#[test]
fn errors_are_rendered_once_with_their_fix() {
    let dir = std::env::temp_dir().join(format!("moodlestack-cli-err-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let old = dir.join("old-plan.json");
    std::fs::write(&old, r#"{"format_version": 1, "stack": "demo"}"#).unwrap();
    let garbage = dir.join("garbage.json");
    std::fs::write(&garbage, "{ not json").unwrap();
    let mut report = String::new();
    for args in [
        vec!["apply", old.to_str().unwrap()],
        vec!["apply", garbage.to_str().unwrap()],
        vec!["apply", "stacks/demo.yaml", "--parallelism", "0"],
    ] {
        let (code, out, err) = run(&args);
        report.push_str(&format!(
            "$ moodlestack {}\nexit {code}\n{out}{err}\n",
            args.join(" ")
        ));
    }
    insta::assert_snapshot!("errors_with_fixes", filtered(&report, &dir));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn schema_is_the_committed_one() {
    let (code, out, err) = run(&["schema"]);
    assert_eq!(code, 0, "{err}");
    let committed = std::fs::read_to_string(repo().join("stacks/moodlestack.schema.json")).unwrap();
    assert_eq!(
        out.trim(),
        committed.trim(),
        "regenerate with `moodlestack schema > stacks/moodlestack.schema.json`"
    );
}

#[test]
fn render_offline_writes_every_file_with_placeholders() {
    let out_dir = std::env::temp_dir().join(format!("moodlestack-render-{}", std::process::id()));
    let (code, out, err) = run(&[
        "render",
        "stacks/production.yaml",
        "--offline",
        "--out",
        out_dir.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{out}{err}");
    let config = std::fs::read(out_dir.join("web/var/www/moodle/config.php")).unwrap();
    assert!(config.starts_with(b"<?php"), "config.php starts with <?php");
    let web = std::fs::read_to_string(out_dir.join("web/user-data.sh")).unwrap();
    let stable = std::fs::read_to_string(out_dir.join("stable/user-data.sh")).unwrap();
    assert!(web.starts_with("#!/bin/bash"));
    assert!(
        !out_dir.join("web/etc/cron.d").exists(),
        "web nodes run no cron"
    );
    assert!(
        out_dir.join("stable/etc/cron.d/moodle").exists(),
        "the stable node runs cron"
    );
    assert!(stable.contains("/etc/cron.d/moodle"));
    assert!(
        err.contains("placeholders") || out.contains("placeholders"),
        "{out}{err}"
    );
    std::fs::remove_dir_all(&out_dir).unwrap();
}

#[test]
fn a_usage_error_exits_1_never_2_and_help_exits_0() {
    // 2 is reserved for `plan --detailed-exitcode` finding changes.
    let (code, _, err) = run(&["plan", "stacks/demo.yaml", "--detailed-exitcod"]);
    assert_eq!(code, 1, "{err}");
    insta::assert_snapshot!("usage_error", err);
    let (code, out, _) = run(&["--help"]);
    assert_eq!(code, 0);
    assert!(out.contains("Exit codes"), "{out}");
}

#[test]
fn completions_and_the_manual_page() {
    for shell in ["bash", "zsh", "fish", "powershell", "elvish"] {
        let (code, out, err) = run(&["completions", shell]);
        assert_eq!(code, 0, "{shell}: {err}");
        for sub in ["plan", "apply", "destroy", "unlock", "completions"] {
            assert!(out.contains(sub), "{shell}: no {sub}");
        }
    }
    // bash loads it and completes the subcommands and plan's formats.
    let (_, script, _) = run(&["completions", "bash"]);
    let probe = format!(
        "{script}\nCOMP_WORDS=(moodlestack pl); COMP_CWORD=1; _moodlestack moodlestack pl moodlestack; \
         echo \"${{COMPREPLY[@]}}\"; COMP_WORDS=(moodlestack plan --format ''); COMP_CWORD=3; \
         _moodlestack moodlestack '' --format; echo \"${{COMPREPLY[@]}}\""
    );
    let out = Command::new("bash").args(["-c", &probe]).output().unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    let mut lines = said.lines();
    assert_eq!(lines.next(), Some("plan"), "{said}");
    assert_eq!(lines.next(), Some("text markdown json"), "{said}");

    let (code, man, _) = run(&["man"]);
    assert_eq!(code, 0);
    assert!(man.contains(".TH moodlestack 1"), "{man}");
    assert!(man.contains("moodlestack\\-plan"), "{man}");
    // `--json` is `--format json`; asking for both is a usage error (1, never 2).
    let (code, _, err) = run(&["plan", "stacks/demo.yaml", "--json", "--format", "markdown"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("cannot be used with"), "{err}");
}
