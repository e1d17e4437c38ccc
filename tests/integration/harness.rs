//! Starts and stops the local AWS emulators for a test.
//!
//! moto (the default, every service): a fresh server per test, through
//! `localstack/moto_server.py` (moto's server plus the calls moto lacks and the AWS-behaviour
//! layer, see localstack/README.md) with the Python of moto's virtualenv, found in this order:
//! `$MOTO_PYTHON`; the `python` beside `$MOTO_SERVER`; the virtualenv that
//! `localstack/emulator.sh install` creates (`$MOODLESTACK_CACHE/moto-venv`, default
//! `~/.cache/moodlestack`); then `python3` on `PATH`.
//!
//! LocalStack's free edition (EC2, IAM, SSM, Secrets Manager, STS): one server for the whole
//! test binary, through `localstack/localstack_server.py`, with `$LOCALSTACK_PYTHON` or the
//! virtualenv that `localstack/localstack.sh install` creates (`$MOODLESTACK_CACHE/localstack-venv`).
//! Each test gets an AWS account of its own (a 12-digit access key id is an account there), so
//! tests see only their own resources, as with a server each. The server ends when the test
//! binary does (it stops when its standard input closes). moodlestack's observe lists every
//! kind of every service, and LocalStack's free edition answers RDS, EFS, ElastiCache, ELBv2
//! and Auto Scaling with HTTP 501, so those five go to one moto server, also kept for the
//! whole binary, through service-specific endpoints (`AWS_ENDPOINT_URL_RDS`, ...): the tests on
//! LocalStack make nothing there, it answers observe's lists of those kinds, empty.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener as AsyncListener, TcpStream as AsyncStream};

/// Which emulator a test runs against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// moto 5.2.5 through `localstack/moto_server.py`: every service moodlestack uses.
    Moto,
    /// LocalStack's free edition (localstack-core): EC2, IAM, SSM, Secrets Manager and STS.
    LocalStack,
}

/// A running emulator (moto: stopped, killed, when dropped), or an account of its own on the
/// shared LocalStack server.
pub struct Emulator {
    pub endpoint: String,
    pub backend: Backend,
    /// The access key id: LocalStack takes a 12-digit one as the account.
    access_key: String,
    child: Option<Child>,
    /// On LocalStack: the moto server that answers the services LocalStack does not serve.
    rest: Option<&'static str>,
}

/// The services LocalStack's free edition does not serve, or that its server here does not
/// enable (only the EC2, IAM, SSM, Secrets Manager and STS tests run against it): (the SDK's
/// service id, the suffix of its `AWS_ENDPOINT_URL_...` variable). They go to moto.
const NOT_IN_LOCALSTACK: &[(&str, &str)] = &[
    ("RDS", "RDS"),
    ("EFS", "EFS"),
    ("ElastiCache", "ELASTICACHE"),
    ("Elastic Load Balancing v2", "ELASTIC_LOAD_BALANCING_V2"),
    ("Auto Scaling", "AUTO_SCALING"),
    ("Backup", "BACKUP"),
    ("CloudWatch", "CLOUDWATCH"),
    ("CloudWatch Logs", "CLOUDWATCH_LOGS"),
    ("SNS", "SNS"),
    ("KMS", "KMS"),
    ("Pricing", "PRICING"),
];

/// Service-specific endpoints for an SDK configuration: `endpoint` for the services LocalStack
/// does not serve, none (the configuration's own endpoint) for the others.
#[derive(Debug)]
struct RestEndpoints {
    endpoint: &'static str,
}

impl aws_types::service_config::LoadServiceConfig for RestEndpoints {
    fn load_config(&self, key: aws_types::service_config::ServiceConfigKey<'_>) -> Option<String> {
        let rest = NOT_IN_LOCALSTACK
            .iter()
            .any(|(id, _)| *id == key.service_id());
        (rest && key.env() == "AWS_ENDPOINT_URL").then(|| self.endpoint.to_string())
    }
}

pub const REGION: &str = "eu-west-1";

/// The standard output of a command that must have succeeded; else the test fails showing
/// `what`, the exit status and both outputs.
pub fn succeeded(what: &str, out: &Output) -> String {
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The string `key` of every object in the JSON array `list` (a test fails on anything else).
pub fn strs_of<'a>(list: &'a serde_json::Value, key: &str) -> Vec<&'a str> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|item| item[key].as_str().unwrap())
        .collect()
}

fn cache_dir() -> PathBuf {
    std::env::var_os("MOODLESTACK_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/moodlestack")
        })
}

/// The AWS CLI installed beside moto (`localstack/emulator.sh install`).
pub fn aws_cli() -> PathBuf {
    let bin = python().with_file_name("aws");
    assert!(
        bin.exists(),
        "no AWS CLI at {}: install it with `localstack/emulator.sh install` (or run \
         `scripts/test`, which does)",
        bin.display()
    );
    bin
}

fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("MOTO_PYTHON") {
        return PathBuf::from(p);
    }
    if let Some(server) = std::env::var_os("MOTO_SERVER") {
        let beside = PathBuf::from(server).with_file_name("python");
        if beside.exists() {
            return beside;
        }
    }
    let venv = cache_dir().join("moto-venv/bin/python");
    if venv.exists() {
        return venv;
    }
    PathBuf::from("python3")
}

/// Fails at once, saying how to fix it, when `bin` cannot import moto (rather than timing out
/// or failing later on an unanswered request).
fn check_moto(bin: &PathBuf) {
    static CHECKED: std::sync::OnceLock<Result<(), String>> = std::sync::OnceLock::new();
    let fix = "install it with `localstack/emulator.sh install` (or run `scripts/test`, which \
               does), or point MOTO_PYTHON at a Python that has moto[server]";
    let result = CHECKED.get_or_init(|| {
        match Command::new(bin)
            .args(["-c", "import moto.server"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output()
        {
            Err(e) => Err(format!("cannot run {}: {e}", bin.display())),
            Ok(o) if !o.status.success() => Err(format!(
                "{} cannot import moto: {}",
                bin.display(),
                String::from_utf8_lossy(&o.stderr)
                    .lines()
                    .last()
                    .unwrap_or("")
            )),
            Ok(_) => Ok(()),
        }
    });
    if let Err(problem) = result {
        panic!("the AWS emulator (moto) is missing: {problem}\n{fix}");
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind 127.0.0.1:0")
        .local_addr()
        .unwrap()
        .port()
}

impl Emulator {
    /// An emulator of `backend`: a fresh moto server, or a fresh account on LocalStack.
    pub fn on(backend: Backend) -> Emulator {
        match backend {
            Backend::Moto => Emulator::start(),
            Backend::LocalStack => Emulator::localstack(),
        }
    }

    /// Starts a fresh moto server on 127.0.0.1 and waits until it answers.
    pub fn start() -> Emulator {
        Emulator::start_with(&[])
    }

    /// [`Emulator::start`] with `env` added to the server's environment (opt-in hooks such as
    /// `MOODLESTACK_EMULATOR_RUN_COMMAND`, localstack/README.md).
    pub fn start_with(env: &[(&str, &str)]) -> Emulator {
        let bin = python();
        check_moto(&bin);
        let launcher = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("localstack/moto_server.py");
        let port = free_port();
        let child = Command::new(&bin)
            .arg(&launcher)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .env("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start the emulator {}: {e}\n\
                     install it with `localstack/emulator.sh install` or set MOTO_PYTHON",
                    bin.display()
                )
            });
        let endpoint = format!("http://127.0.0.1:{port}");
        let mut emulator = Emulator {
            endpoint,
            backend: Backend::Moto,
            access_key: "testing".into(),
            child: Some(child),
            rest: None,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            let child = emulator.child.as_mut().expect("moto's child");
            if let Ok(Some(status)) = child.try_wait() {
                panic!(
                    "the emulator ({} {}) exited with {status}: is moto installed? \
                     run `localstack/emulator.sh install` or set MOTO_PYTHON",
                    bin.display(),
                    launcher.display()
                );
            }
            assert!(
                Instant::now() < deadline,
                "emulator did not answer on port {port} in 30 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        emulator
    }

    /// A fresh AWS account on the shared LocalStack server, with the shared moto server for the
    /// services LocalStack does not serve (both started on first use).
    pub fn localstack() -> Emulator {
        static NEXT: AtomicU64 = AtomicU64::new(100_000_000_001);
        Emulator {
            endpoint: localstack_server().to_string(),
            backend: Backend::LocalStack,
            access_key: format!("{:012}", NEXT.fetch_add(1, Ordering::SeqCst)),
            child: None,
            rest: Some(rest_server()),
        }
    }

    /// Environment for running the `moodlestack` binary against this emulator.
    pub fn env(&self) -> Vec<(String, String)> {
        let mut env: Vec<(String, String)> = [
            ("AWS_ENDPOINT_URL", self.endpoint.clone()),
            ("AWS_ACCESS_KEY_ID", self.access_key.clone()),
            ("AWS_SECRET_ACCESS_KEY", "testing".into()),
            ("AWS_REGION", REGION.into()),
            ("AWS_EC2_METADATA_DISABLED", "true".into()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        if let Some(rest) = self.rest {
            for (_, var) in NOT_IN_LOCALSTACK {
                env.push((format!("AWS_ENDPOINT_URL_{var}"), rest.to_string()));
            }
        }
        env
    }

    /// Imports a self-signed certificate into the emulator's ACM and returns its ARN (HTTPS
    /// listeners need one that exists there), with `localstack/import_certificate.py` and the
    /// emulator's own Python: the test binary does not link aws-sdk-acm.
    pub fn import_certificate(&self) -> String {
        let script =
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("localstack/import_certificate.py");
        let out = Command::new(python())
            .arg(&script)
            .envs(self.env())
            .output()
            .expect("run python to import a certificate");
        succeeded("import certificate", &out).trim().to_string()
    }

    /// A plain SDK configuration pointing at this emulator (for checking end states with a
    /// client that is not moodlestack's).
    pub async fn sdk_config(&self) -> aws_config::SdkConfig {
        let cfg = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new(REGION))
            .endpoint_url(&self.endpoint)
            .credentials_provider(aws_sdk_ec2::config::Credentials::new(
                &self.access_key,
                "testing",
                None,
                None,
                "moodlestack-tests",
            ))
            .load()
            .await;
        match self.rest {
            None => cfg,
            Some(rest) => {
                // As if from AWS_ENDPOINT_URL and AWS_ENDPOINT_URL_RDS, ...: a service-specific
                // endpoint wins over the shared one only when that one was not set in code.
                let mut b = cfg
                    .to_builder()
                    .service_config(RestEndpoints { endpoint: rest });
                b.insert_origin(
                    "endpoint_url",
                    aws_types::origin::Origin::shared_environment_variable(),
                );
                b.build()
            }
        }
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The Python of LocalStack's virtualenv: `$LOCALSTACK_PYTHON`, else the one
/// `localstack/localstack.sh install` creates.
fn localstack_python() -> PathBuf {
    std::env::var_os("LOCALSTACK_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| cache_dir().join("localstack-venv/bin/python"))
}

/// A server kept for the whole test binary: started with its standard input a pipe that stays
/// open for the life of the process, so that it stops (`--exit-on-stdin-eof`) when the binary
/// exits, however it exits. Its output goes to `log`. Returns once `ready(port)` says so.
fn shared_server(
    what: &str,
    cmd: &mut Command,
    log: &std::path::Path,
    fix: &str,
    ready: impl Fn(u16) -> bool,
) -> (String, Child) {
    let out =
        std::fs::File::create(log).unwrap_or_else(|e| panic!("create {}: {e}", log.display()));
    let port = free_port();
    let mut child = cmd
        .args(["-p", &port.to_string(), "--exit-on-stdin-eof"])
        .env("PYTHONUNBUFFERED", "1")
        .stdin(Stdio::piped())
        .stdout(out.try_clone().expect("log file"))
        .stderr(out)
        .spawn()
        .unwrap_or_else(|e| panic!("{what} is missing: cannot run {cmd:?}: {e}\n{fix}"));
    let deadline = Instant::now() + Duration::from_secs(60);
    while !ready(port) {
        if let Ok(Some(status)) = child.try_wait() {
            let said = std::fs::read_to_string(log).unwrap_or_default();
            let last = said.lines().last().unwrap_or("").to_string();
            panic!(
                "{what} ({cmd:?}) exited with {status}: {last}\n{fix}\nlog: {}",
                log.display()
            );
        }
        assert!(
            Instant::now() < deadline,
            "{what} did not start on port {port} in 60 s; log: {}",
            log.display()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    (format!("http://127.0.0.1:{port}"), child)
}

/// Where a shared server of this test binary writes its output (the last run's).
fn shared_log(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("{name}.log"))
}

/// The endpoint of the one LocalStack server of this test binary, started on first use and
/// ready once it has printed `Ready.`.
fn localstack_server() -> &'static str {
    static SERVER: OnceLock<(String, Child)> = OnceLock::new();
    &SERVER
        .get_or_init(|| {
            let log = shared_log("localstack");
            let launcher =
                PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("localstack/localstack_server.py");
            shared_server(
                "LocalStack",
                Command::new(localstack_python()).arg(launcher),
                &log,
                "install it with `localstack/localstack.sh install` (or run `scripts/test`, \
                 which does), or point LOCALSTACK_PYTHON at a Python that has localstack-core",
                |_| {
                    std::fs::read_to_string(&log)
                        .unwrap_or_default()
                        .lines()
                        .any(|l| l == "Ready.")
                },
            )
        })
        .0
}

/// The endpoint of the moto server that answers, for every test on LocalStack, the services
/// LocalStack does not serve (nothing is made there: it answers observe's lists, empty).
fn rest_server() -> &'static str {
    static SERVER: OnceLock<(String, Child)> = OnceLock::new();
    &SERVER
        .get_or_init(|| {
            let bin = python();
            check_moto(&bin);
            let launcher =
                PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("localstack/moto_server.py");
            shared_server(
                "moto",
                Command::new(bin).arg(launcher).args(["-H", "127.0.0.1"]),
                &shared_log("moto-rest"),
                "install it with `localstack/emulator.sh install` or set MOTO_PYTHON",
                |port| std::net::TcpStream::connect(("127.0.0.1", port)).is_ok(),
            )
        })
        .0
}

/// A TCP proxy in front of the emulator that keeps every byte the SDK sends, so the tests can
/// check the requests themselves (which action carried which parameters).
pub struct Wire {
    pub endpoint: String,
    sent: Arc<Mutex<Vec<u8>>>,
}

impl Wire {
    pub async fn start(target: &str) -> Wire {
        let target = target.trim_start_matches("http://").to_string();
        let listener = AsyncListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let sent = Arc::new(Mutex::new(Vec::new()));
        let log = sent.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let server = AsyncStream::connect(&target).await.unwrap();
                let log = log.clone();
                tokio::spawn(async move {
                    let (mut cr, mut cw) = client.into_split();
                    let (mut sr, mut sw) = server.into_split();
                    let up = async move {
                        let mut buf = vec![0u8; 65536];
                        loop {
                            let n = match cr.read(&mut buf).await {
                                Ok(0) | Err(_) => break,
                                Ok(n) => n,
                            };
                            log.lock().unwrap().extend_from_slice(&buf[..n]);
                            if sw.write_all(&buf[..n]).await.is_err() {
                                break;
                            }
                        }
                        let _ = sw.shutdown().await;
                    };
                    let down = async move {
                        let _ = tokio::io::copy(&mut sr, &mut cw).await;
                    };
                    tokio::join!(up, down);
                });
            }
        });
        Wire { endpoint, sent }
    }

    /// Query-protocol request bodies sent so far (`Action=...&...`), URL-decoded.
    pub fn requests(&self) -> Vec<String> {
        let raw = String::from_utf8_lossy(&self.sent.lock().unwrap()).to_string();
        raw.split("Action=")
            .skip(1)
            .map(|r| {
                let body = r.split("POST /").next().unwrap_or(r);
                format!("Action={}", decode(body))
            })
            .collect()
    }

    pub fn clear(&self) {
        self.sent.lock().unwrap().clear();
    }
}

fn decode(s: &str) -> String {
    let mut out = Vec::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => {
                let hex = std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(v) => {
                        out.push(v);
                        i += 3;
                    }
                    Err(_) => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).to_string()
}

/// `localstack/faults.py` in front of an endpoint: answers a share of requests with 5xx or
/// throttling errors, and can SIGKILL a process after its k-th mutating request. Stopped when
/// dropped.
pub struct FaultProxy {
    pub url: String,
    child: Child,
}

impl FaultProxy {
    /// Starts the proxy in front of `upstream` with `args` (`--fault-rate 0.2`, `--seed 7`, ...).
    pub fn start(upstream: &str, args: &[&str]) -> FaultProxy {
        use std::io::BufRead;
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("localstack/faults.py");
        let mut child = Command::new(python())
            .arg(&script)
            .args(["--upstream", upstream])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start localstack/faults.py");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("read the proxy's URL");
        assert!(line.starts_with("http://127.0.0.1:"), "proxy said {line:?}");
        FaultProxy {
            url: line.trim().to_string(),
            child,
        }
    }

    /// Sends a control request (`POST /__faults/config` with a JSON body, `GET /__faults/stats`)
    /// and returns the answer's JSON.
    fn control(&self, method: &str, path: &str, body: &str) -> serde_json::Value {
        use std::io::{Read, Write};
        let addr = self.url.trim_start_matches("http://");
        let mut s = std::net::TcpStream::connect(addr).expect("connect to the proxy");
        write!(
            s,
            "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .expect("send to the proxy");
        let mut answer = String::new();
        s.read_to_string(&mut answer)
            .expect("read the proxy's answer");
        let json = answer.split("\r\n\r\n").nth(1).unwrap_or("");
        serde_json::from_str(json).unwrap_or_else(|e| panic!("proxy answered {answer:?}: {e}"))
    }

    /// Changes the proxy's settings (fault_rate, kill_pid, kill_after, latency_ms, faults).
    pub fn configure(&self, settings: &serde_json::Value) {
        self.control("POST", "/__faults/config", &settings.to_string());
    }

    /// Requests, faults and mutating requests so far (mutating: since kill_after was last set).
    pub fn stats(&self) -> serde_json::Value {
        self.control("GET", "/__faults/stats", "")
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
