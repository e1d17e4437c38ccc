//! Faults: the production stack applied and destroyed through `localstack/faults.py` in front of
//! the emulator, with a share of requests answered by 5xx and throttling errors, and with the
//! process killed (SIGKILL) after its k-th mutating request for k spread over the whole apply.
//! The end states are checked with plain AWS clients (`e2e::assert_nothing_left`) and
//! moodlestack's own plan.

use crate::e2e::{assert_nothing_left, clients, owned, AMI, DESTROY};
use crate::harness::{Emulator, FaultProxy};
use serde_json::json;
use std::path::PathBuf;
use std::process::{Command, Output};

/// The production stack with the emulator's certificate and image.
fn stack_args(emu: &Emulator, name: &str) -> Vec<String> {
    vec![
        "stacks/production.yaml".into(),
        "--name".into(),
        name.into(),
        "--set".into(),
        format!("ami.id={AMI}"),
        "--set".into(),
        format!("load_balancer.certificate_arn={}", emu.import_certificate()),
    ]
}

/// Runs the binary with `endpoint` as AWS_ENDPOINT_URL; (exit code or -1 when killed, stdout,
/// stderr).
fn ms(emu: &Emulator, endpoint: &str, cmd: &[&str], stack: &[String]) -> (i32, String, String) {
    let out: Output = spawn(emu, endpoint, cmd, stack)
        .wait_with_output()
        .expect("run moodlestack");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

fn spawn(emu: &Emulator, endpoint: &str, cmd: &[&str], stack: &[String]) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_moodlestack"))
        .args(cmd)
        .args(stack)
        .args(["--color", "never"])
        .envs(emu.env())
        .env("AWS_ENDPOINT_URL", endpoint)
        .current_dir(PathBuf::from(env!("CARGO_MANIFEST_DIR")))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start moodlestack")
}

fn ok(what: &str, (code, out, err): (i32, String, String), want: i32) -> String {
    eprintln!("{what}: exit {code}");
    assert_eq!(
        code, want,
        "{what} exited {code}\n--- stdout\n{out}\n--- stderr\n{err}"
    );
    format!("{out}{err}")
}

/// With 20 % of requests failing (half HTTP 503, half the protocol's throttling error), apply and
/// destroy of the production stack succeed in one go, and the plan in between is clean.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn production_converges_through_throttling_and_5xx() {
    let emu = Emulator::start();
    let c = clients(&emu).await;
    let proxy = FaultProxy::start(
        &emu.endpoint,
        &[
            "--fault-rate",
            "0.2",
            "--faults",
            "503,throttle",
            "--seed",
            "11",
        ],
    );
    let stack = stack_args(&emu, "faults-20");
    let url = proxy.url.clone();
    ok(
        "apply",
        ms(&emu, &url, &["apply", "--auto-approve"], &stack),
        0,
    );
    let stats = proxy.stats();
    assert!(
        stats["faulted"].as_u64().unwrap_or(0) > 20,
        "the proxy failed requests: {stats}"
    );
    ok(
        "plan after apply",
        ms(&emu, &url, &["plan", "--detailed-exitcode"], &stack),
        0,
    );
    ok("destroy", ms(&emu, &url, &DESTROY, &stack), 0);
    assert_nothing_left(&c, "faults-20").await;
}

/// Killed after its k-th mutating request (AWS did the work, the process never heard), an apply
/// run again at once takes over the dead process's lease, converges (a clean plan: no duplicate,
/// nothing missing), and destroy leaves nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_apply_is_rerun_at_once_and_converges() {
    let emu = Emulator::start();
    let c = clients(&emu).await;
    let proxy = FaultProxy::start(&emu.endpoint, &[]);
    let url = proxy.url.clone();
    // A clean apply counts the mutating requests of the whole apply.
    let clean = stack_args(&emu, "kill-clean");
    proxy.configure(&json!({ "kill_after": 0 }));
    ok(
        "clean apply",
        ms(&emu, &url, &["apply", "--auto-approve"], &clean),
        0,
    );
    let total = proxy.stats()["mutating"].as_u64().expect("mutating count");
    assert!(total > 30, "a production apply mutates more: {total}");
    ok("clean destroy", ms(&emu, &url, &DESTROY, &clean), 0);

    // k spread over the apply: the lease, the first creates, the middle, the last requests.
    for k in [1, total / 4, total / 2, total * 3 / 4, total - 1] {
        let name = format!("kill-{k}");
        let stack = stack_args(&emu, &name);
        let child = spawn(&emu, &url, &["apply", "--auto-approve"], &stack);
        proxy.configure(&json!({ "kill_pid": child.id(), "kill_after": k }));
        let out = child.wait_with_output().expect("wait for the apply");
        assert!(
            proxy.stats()["killed"].as_bool().unwrap_or(false),
            "k={k}: the apply was not killed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        proxy.configure(&json!({ "kill_pid": 0, "kill_after": 0 }));
        let rerun = ok(
            &format!("k={k}: apply again"),
            ms(&emu, &url, &["apply", "--auto-approve"], &stack),
            0,
        );
        // The killed run held the lease unless it had nothing left to do (then the rerun has
        // no changes and takes no lease).
        assert!(
            rerun.contains("No changes")
                || (rerun.contains("taking over the lease of")
                    && rerun.contains("no such process")),
            "k={k}: the dead process's lease was not taken over at once:\n{rerun}"
        );
        ok(
            &format!("k={k}: plan after the rerun"),
            ms(&emu, &url, &["plan", "--detailed-exitcode"], &stack),
            0,
        );
        ok(
            &format!("k={k}: destroy"),
            ms(&emu, &url, &DESTROY, &stack),
            0,
        );
        assert_nothing_left(&c, &name).await;
    }
}

/// `unlock` shows who holds the lease (dates and durations, not epoch seconds), refuses to ask
/// without a terminal unless `--yes`, lifts it, and says when there is nothing to lift. An apply
/// meanwhile is refused with the holder and the fix.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unlock_shows_the_holder_and_lifts_the_lease() {
    let emu = Emulator::start();
    let c = clients(&emu).await;
    let stack = owned(&["stacks/demo.yaml", "--name", "unlock-demo"]);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let held = json!({ "owner": "ci@runner-7 pid 4242", "acquired_at": now - 192, "expires_at": now + 3600 });
    c.ssm
        .put_parameter()
        .name("/moodlestack/unlock-demo/lease")
        .value(held.to_string())
        .r#type(aws_sdk_ssm::types::ParameterType::String)
        .send()
        .await
        .unwrap();
    let url = emu.endpoint.clone();

    let refused = ms(&emu, &url, &["apply", "--auto-approve"], &stack);
    let text = ok("apply while locked", refused, 1);
    assert!(
        // 3m12s when written; a loaded machine may take a while to get there (not a timing test).
        text.contains("stack is locked by ci@runner-7 pid 4242 for 3m")
            && !text.contains(&(now - 192).to_string())
            && text.contains("expires in 59m")
            && text.contains("moodlestack unlock"),
        "{text}"
    );
    let asked = ok(
        "unlock without a terminal",
        ms(&emu, &url, &["unlock"], &stack),
        1,
    );
    assert!(
        asked.contains("ci@runner-7 pid 4242") && asked.contains("--yes"),
        "{asked}"
    );
    let lifted = ok(
        "unlock --yes",
        ms(&emu, &url, &["unlock", "--yes"], &stack),
        0,
    );
    assert!(lifted.contains("Lease lifted"), "{lifted}");
    let gone = c
        .ssm
        .get_parameter()
        .name("/moodlestack/unlock-demo/lease")
        .send()
        .await;
    assert!(gone.is_err(), "the lease parameter is gone");
    let again = ok(
        "unlock again",
        ms(&emu, &url, &["unlock", "--yes"], &stack),
        0,
    );
    assert!(again.contains("is not locked"), "{again}");
}
