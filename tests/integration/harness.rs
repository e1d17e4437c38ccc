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
use std::time::{Duration, Instant};

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
