//! A real OCI registry for push tests: Debian's `docker-registry`
//! (distribution 2.8) on 127.0.0.1 with filesystem storage in a temporary
//! directory, optionally behind htpasswd basic auth. Killed on drop.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const REGISTRY_BIN: &str = "/usr/bin/docker-registry";

pub struct TestRegistry {
    child: Child,
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
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind a free loopback port")
}

impl TestRegistry {
    /// Starts an anonymous registry.
    pub fn start() -> TestRegistry {
        TestRegistry::start_with(None)
    }

    /// Starts a registry that requires `user`/`pass` (basic auth).
    pub fn start_with_auth(user: &str, pass: &str) -> TestRegistry {
        TestRegistry::start_with(Some((user, pass)))
    }

    fn start_with(auth: Option<(&str, &str)>) -> TestRegistry {
        let dir = tempfile::tempdir().expect("registry tempdir");
        let storage = dir.path().join("storage");
        std::fs::create_dir_all(&storage).unwrap();
        // The port may be taken between probing and binding; retry a few.
        let mut last_err = String::new();
        for _ in 0..5 {
            let port = free_port();
            let mut config = format!(
                "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n",
                storage.display()
            );
            if let Some((user, pass)) = auth {
                let htpasswd = dir.path().join("htpasswd");
                let out = Command::new("htpasswd")
                    .args(["-Bbn", user, pass])
                    .output()
                    .expect("run htpasswd");
                assert!(out.status.success(), "htpasswd failed: {out:?}");
                std::fs::write(&htpasswd, &out.stdout).unwrap();
                config += &format!(
                    "auth:\n  htpasswd:\n    realm: kiln-test\n    path: {}\n",
                    htpasswd.display()
                );
            }
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
            match wait_ready(&mut child, port, Duration::from_secs(20)) {
                Ok(()) => return TestRegistry { child, port, dir },
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

    /// `127.0.0.1:PORT`, the registry part of references.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
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
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `GET /v2/` until it answers 200 (open) or 401 (auth).
fn wait_ready(child: &mut Child, port: u16, limit: Duration) -> Result<(), String> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("registry exited with {status}"));
        }
        if let Some(code) = http_status(port, "/v2/") {
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
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut head = [0u8; 32];
    let n = s.read(&mut head).ok()?;
    let line = std::str::from_utf8(&head[..n]).ok()?;
    line.split_whitespace().nth(1)?.parse().ok()
}
