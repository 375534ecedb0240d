//! A real OCI registry for the push and pull tests: Debian's
//! `docker-registry` (distribution 2.8) on a loopback address with
//! filesystem storage in a temporary directory, optionally behind htpasswd
//! (bcrypt) basic auth or behind a token server (the Bearer challenge flow
//! of distribution's `auth: token:`). Killed on drop.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const REGISTRY_BIN: &str = "/usr/bin/docker-registry";

pub struct TestRegistry {
    child: Option<Child>,
    ip: String,
    port: u16,
    dir: tempfile::TempDir,
}

/// Whether the registry binary (and, for auth, `htpasswd`) is installed.
/// Missing tools fail the test in CI and skip it elsewhere.
pub fn registry_available(with_auth: bool) -> bool {
    if !Path::new(REGISTRY_BIN).is_file() {
        if std::env::var_os("CI").is_some() {
            panic!("{REGISTRY_BIN} is required in CI (.ci/run installs docker-registry) but is missing");
        }
        eprintln!("SKIP: {REGISTRY_BIN} not installed (apt-get install docker-registry)");
        return false;
    }
    !with_auth || super::require_tool("htpasswd")
}

/// A port nothing listens on right now (bind port 0, read it, release it).
pub fn free_port() -> u16 {
    free_port_on("127.0.0.1")
}

/// This machine's IPv4 address on its default route, when it has one that
/// is not loopback (found by connecting a UDP socket: nothing is sent).
pub fn non_loopback_ip() -> Option<String> {
    let s = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
    s.connect("192.0.2.255:9").ok()?;
    let ip = s.local_addr().ok()?.ip();
    (!ip.is_loopback() && !ip.is_unspecified()).then(|| ip.to_string())
}

/// A free port on another address (`127.0.0.2`, ...).
pub fn free_port_on(ip: &str) -> u16 {
    TcpListener::bind((ip, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind a free loopback port")
}

impl TestRegistry {
    /// Starts an anonymous registry.
    pub fn start() -> TestRegistry {
        TestRegistry::start_on("127.0.0.1", None)
    }

    /// Starts a registry that requires `user`/`pass` (basic auth).
    pub fn start_with_auth(user: &str, pass: &str) -> TestRegistry {
        TestRegistry::start_on("127.0.0.1", Some((user, pass)))
    }

    /// Starts a registry that sends clients to `server` for a bearer token
    /// and trusts the tokens it signs.
    pub fn start_with_token(server: &super::token_server::TokenServer) -> TestRegistry {
        let auth = format!(
            "auth:\n  token:\n    realm: {}\n    service: {}\n    issuer: {}\n    rootcertbundle: {}\n",
            server.realm(),
            super::token_server::SERVICE,
            super::token_server::ISSUER,
            server.cert_path().display()
        );
        TestRegistry::start_configured("127.0.0.1", |_| auth.clone())
    }

    /// Starts a registry listening on `ip` (any loopback address).
    pub fn start_on(ip: &str, auth: Option<(&str, &str)>) -> TestRegistry {
        TestRegistry::start_configured(ip, |dir| match auth {
            None => String::new(),
            Some((user, pass)) => {
                let htpasswd = dir.join("htpasswd");
                let out = Command::new("htpasswd")
                    .args(["-Bbn", user, pass])
                    .output()
                    .expect("run htpasswd");
                assert!(out.status.success(), "htpasswd failed: {out:?}");
                std::fs::write(&htpasswd, &out.stdout).unwrap();
                format!(
                    "auth:\n  htpasswd:\n    realm: kiln-test\n    path: {}\n",
                    htpasswd.display()
                )
            }
        })
    }

    /// Starts a registry on `ip` whose config ends with the `auth:` section
    /// `auth(dir)` returns (empty for none); `dir` is the registry's tempdir.
    fn start_configured(ip: &str, auth: impl Fn(&Path) -> String) -> TestRegistry {
        let dir = tempfile::tempdir().expect("registry tempdir");
        let storage = dir.path().join("storage");
        std::fs::create_dir_all(&storage).unwrap();
        // The port may be taken between probing and binding; retry a few.
        let mut last_err = String::new();
        for _ in 0..5 {
            let port = free_port_on(ip);
            // Info-level logs record each request (tests count them).
            let config = format!(
                "version: 0.1\nlog:\n  level: info\n  formatter: text\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {ip}:{port}\n  secret: kiln-test-secret\n{}",
                storage.display(),
                auth(dir.path())
            );
            let config_path = dir.path().join("config.yml");
            std::fs::write(&config_path, config).unwrap();
            let log = std::fs::File::create(dir.path().join("registry.log")).unwrap();
            let child = Command::new(REGISTRY_BIN)
                .arg("serve")
                .arg(&config_path)
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .expect("start docker-registry");
            let mut child = child;
            match wait_ready(&mut child, ip, port, Duration::from_secs(20)) {
                Ok(()) => {
                    return TestRegistry {
                        child: Some(child),
                        ip: ip.to_string(),
                        port,
                        dir,
                    }
                }
                Err(e) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    let log = std::fs::read_to_string(dir.path().join("registry.log"));
                    last_err = format!("{e}; log:\n{}", log.unwrap_or_default());
                }
            }
        }
        panic!("test registry did not start: {last_err}");
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `IP:PORT`, the registry part of references.
    pub fn host(&self) -> String {
        format!("{}:{}", self.ip, self.port)
    }

    /// The HTTP status of `GET /v2/`, if the registry answers.
    pub fn v2_status(&self) -> Option<u16> {
        http_status_on(&self.ip, self.port, "/v2/")
    }

    /// The data file of a blob in the registry's storage.
    pub fn blob_data(&self, digest: &str) -> PathBuf {
        let hex = digest.strip_prefix("sha256:").expect("sha256 digest");
        self.storage()
            .join("docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
    }

    /// Copies an OCI layout into the registry as `repo:tag` with skopeo
    /// (`--all`, so an index keeps every platform).
    pub fn push_layout(&self, layout: &Path, repo: &str, tag: &str, creds: Option<(&str, &str)>) {
        let mut cmd = Command::new("skopeo");
        cmd.args(["copy", "--all", "--dest-tls-verify=false"]);
        if let Some((u, p)) = creds {
            cmd.arg(format!("--dest-creds={u}:{p}"));
        }
        cmd.arg(format!("oci:{}", layout.display()))
            .arg(format!("docker://{}/{repo}:{tag}", self.host()));
        super::run_ok(&mut cmd);
    }

    /// Stops the registry now (it is also stopped on drop).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// The registry's storage directory.
    pub fn storage(&self) -> PathBuf {
        self.dir.path().join("storage")
    }

    /// What the registry logged (for failure messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }
}

impl Drop for TestRegistry {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Polls `GET /v2/` until it answers 200 (open) or 401 (auth).
fn wait_ready(child: &mut Child, ip: &str, port: u16, limit: Duration) -> Result<(), String> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("registry exited with {status}"));
        }
        if let Some(code) = http_status_on(ip, port, "/v2/") {
            if code == 200 || code == 401 {
                return Ok(());
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Err("timed out waiting for /v2/".into())
}

/// The status code of a plain `GET path` on 127.0.0.1:port, or None when
/// nothing answers.
pub fn http_status(port: u16, path: &str) -> Option<u16> {
    http_status_on("127.0.0.1", port, path)
}

fn http_status_on(ip: &str, port: u16, path: &str) -> Option<u16> {
    let mut s = TcpStream::connect((ip, port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {ip}:{port}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut head = [0u8; 32];
    let n = s.read(&mut head).ok()?;
    let line = std::str::from_utf8(&head[..n]).ok()?;
    line.split_whitespace().nth(1)?.parse().ok()
}
