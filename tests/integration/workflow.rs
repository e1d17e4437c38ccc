//! The GitHub Actions workflow to copy (examples/github-actions/moodlestack.yml): actionlint and
//! shellcheck pass, and its moodlestack steps, run as GitHub would run them (bash, the workflow's
//! environment, `$GITHUB_STEP_SUMMARY` and `$GITHUB_OUTPUT` files), plan, apply and destroy a
//! `pr-42` review stack on the emulator and deploy the stack under its own name.

use crate::e2e::{assert_nothing_left, clients};
use crate::harness::Emulator;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

const WORKFLOW: &str = "examples/github-actions/moodlestack.yml";

fn workflow() -> Value {
    let text = std::fs::read_to_string(repo().join(WORKFLOW)).unwrap();
    serde_saphyr::from_str(&text).expect("the workflow is YAML")
}

/// The `run` script of the step `id` of `job`.
fn step(wf: &Value, job: &str, id: &str) -> String {
    wf["jobs"][job]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == id)
        .and_then(|s| s["run"].as_str())
        .unwrap_or_else(|| panic!("{job}: no step {id} with a run script"))
        .to_string()
}

struct Runner {
    dir: PathBuf,
    env: Vec<(String, String)>,
}

impl Runner {
    /// Runs `script` with bash as GitHub does (`bash -e {0}`); returns its exit code.
    fn run(&self, script: &str, extra: &[(&str, &str)]) -> i32 {
        let out = Command::new("bash")
            .args(["--noprofile", "--norc", "-eo", "pipefail", "-c", script])
            .current_dir(&self.dir)
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .envs(extra.iter().copied())
            .output()
            .unwrap();
        if !out.status.success() {
            eprintln!(
                "step failed:\n{script}\n--- stdout\n{}\n--- stderr\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        out.status.code().unwrap_or(-1)
    }
    fn file(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.join(name)).unwrap_or_default()
    }
    fn clear(&self, name: &str) {
        std::fs::write(self.dir.join(name), "").unwrap();
    }
}

#[test]
fn the_workflow_passes_actionlint_and_shellcheck() {
    let out = Command::new(repo().join("scripts/actionlint"))
        .arg("examples/github-actions/*.yml")
        .current_dir(repo())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let wf = workflow();
    for (job, body) in wf["jobs"].as_object().unwrap() {
        for s in body["steps"].as_array().unwrap() {
            let Some(script) = s["run"].as_str() else {
                continue;
            };
            // No expression in a script: values reach it through `env` (no injection).
            assert!(!script.contains("${{"), "{job}: {script}");
            let mut sc = Command::new("shellcheck")
                .args(["-s", "bash", "-"])
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .spawn()
                .expect("shellcheck runs (scripts/test installs it)");
            use std::io::Write as _;
            sc.stdin
                .take()
                .unwrap()
                .write_all(script.as_bytes())
                .unwrap();
            let done = sc.wait_with_output().unwrap();
            assert!(
                done.status.success(),
                "{job}: {script}\n{}",
                String::from_utf8_lossy(&done.stdout)
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_workflow_plans_applies_and_destroys_a_review_stack_on_the_emulator() {
    let emu = Emulator::start();
    let c = clients(&emu).await;
    let wf = workflow();
    let dir = std::env::temp_dir().join(format!("moodlestack-workflow-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();

    // The workflow's environment, with the demo stack (it runs on the emulator) and the
    // binary under test on PATH, as the install step leaves it.
    let bin = Path::new(env!("CARGO_BIN_EXE_moodlestack"));
    let mut env: BTreeMap<String, String> = wf["env"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
        .collect();
    env.insert(
        "STACK_FILE".into(),
        repo().join("stacks/demo.yaml").display().to_string(),
    );
    env.insert(
        "PATH".into(),
        format!(
            "{}:{}",
            bin.parent().unwrap().display(),
            std::env::var("PATH").unwrap_or_default()
        ),
    );
    env.insert(
        "GITHUB_STEP_SUMMARY".into(),
        dir.join("summary.md").display().to_string(),
    );
    env.insert(
        "GITHUB_OUTPUT".into(),
        dir.join("output").display().to_string(),
    );
    env.extend(emu.env());
    let r = Runner {
        dir: dir.clone(),
        env: env.into_iter().collect(),
    };
    let pr = [("STACK_NAME", "pr-42")];

    // Pull request opened: the plan creates the review stack; exit code 2 is passed on.
    assert_eq!(r.run(&step(&wf, "review", "plan"), &pr), 0);
    assert_eq!(r.file("output"), "exitcode=2\n");
    let summary = r.file("summary.md");
    assert!(
        summary.starts_with("### moodlestack plan: `pr-42` (eu-west-1)\n\n**Plan: "),
        "{summary}"
    );
    assert_eq!(summary, r.file("plan.md"), "the comment is the summary");
    // With the cost before apply (the emulator's sample prices).
    assert!(
        summary.contains("\n#### Estimated monthly cost\n"),
        "{summary}"
    );

    // Labelled: apply, and the outputs in the summary.
    r.clear("summary.md");
    assert_eq!(r.run(&step(&wf, "review", "apply"), &pr), 0);
    assert!(
        r.file("summary.md")
            .contains("load balancer DNS name   pr-42-alb"),
        "{}",
        r.file("summary.md")
    );
    // Pushed again without changes: a clean plan.
    r.clear("output");
    assert_eq!(r.run(&step(&wf, "review", "plan"), &pr), 0);
    assert_eq!(r.file("output"), "exitcode=0\n");
    assert!(r.file("plan.md").contains("**No changes.**"));

    // Closed: the review stack is gone.
    assert_eq!(r.run(&step(&wf, "cleanup", "destroy"), &pr), 0);
    assert_nothing_left(&c, "pr-42").await;

    // Merged: the stack under its own name, planned and applied exactly as planned.
    r.clear("summary.md");
    assert_eq!(r.run(&step(&wf, "deploy", "deploy"), &[]), 0);
    assert!(r
        .file("summary.md")
        .contains("### moodlestack plan: `demo`"));
    let plan = Command::new(bin)
        .args(["plan", "stacks/demo.yaml", "--detailed-exitcode", "-q"])
        .current_dir(repo())
        .envs(emu.env())
        .status()
        .unwrap();
    assert_eq!(plan.code(), Some(0), "deployed as planned");
    let gone = Command::new(bin)
        .args([
            "destroy",
            "stacks/demo.yaml",
            "--auto-approve",
            "--skip-final-snapshot",
            "--allow-data-loss",
            "-q",
        ])
        .current_dir(repo())
        .envs(emu.env())
        .status()
        .unwrap();
    assert!(gone.success());
    let _ = std::fs::remove_dir_all(&dir);
}
