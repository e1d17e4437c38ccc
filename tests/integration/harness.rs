//! Starts and stops the local AWS emulator (moto server) for a test.
//!
//! The server runs through `localstack/moto_server.py` (moto's server plus the one call moto
//! lacks, see localstack/README.md) with the Python of moto's virtualenv, found in this order:
//! `$MOTO_PYTHON`; the `python` beside `$MOTO_SERVER`; the virtualenv that
//! `localstack/emulator.sh install` creates (`$MOODLESTACK_CACHE/moto-venv`, default
//! `~/.cache/moodlestack`); then `python3` on `PATH`.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener as AsyncListener, TcpStream as AsyncStream};

/// A running emulator; stopped (killed) when dropped.
pub struct Emulator {
    pub endpoint: String,
    child: Child,
}

pub const REGION: &str = "eu-west-1";

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
    let cache = std::env::var_os("MOODLESTACK_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/moodlestack")
        });
    let venv = cache.join("moto-venv/bin/python");
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
    /// Starts a fresh moto server on 127.0.0.1 and waits until it answers.
    pub fn start() -> Emulator {
        let bin = python();
        check_moto(&bin);
        let launcher = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("localstack/moto_server.py");
        let port = free_port();
        let child = Command::new(&bin)
            .arg(&launcher)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .env("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")
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
        let mut emulator = Emulator { endpoint, child };
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = emulator.child.try_wait() {
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

    /// Environment for running the `moodlestack` binary against this emulator.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL", self.endpoint.clone()),
            ("AWS_ACCESS_KEY_ID", "testing".into()),
            ("AWS_SECRET_ACCESS_KEY", "testing".into()),
            ("AWS_REGION", REGION.into()),
            ("AWS_EC2_METADATA_DISABLED", "true".into()),
        ]
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
        assert!(
            out.status.success(),
            "import certificate: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// A plain SDK configuration pointing at this emulator (for checking end states with a
    /// client that is not moodlestack's).
    pub async fn sdk_config(&self) -> aws_config::SdkConfig {
        aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new(REGION))
            .endpoint_url(&self.endpoint)
            .credentials_provider(aws_sdk_ec2::config::Credentials::new(
                "testing",
                "testing",
                None,
                None,
                "moodlestack-tests",
            ))
            .load()
            .await
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
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
