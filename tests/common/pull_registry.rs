//! A real registry for the pull tests: Debian's `docker-registry`
//! (distribution 2.x) on a free loopback port, storing into a temp dir,
//! optionally behind htpasswd (bcrypt) basic auth; killed on drop.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct TestRegistry {
    dir: tempfile::TempDir,
    child: Option<Child>,
    /// `127.0.0.1:PORT` (or whatever address it listens on).
    pub host: String,
}

impl TestRegistry {
    /// An open registry on 127.0.0.1.
    pub fn start() -> TestRegistry {
        Self::start_on("127.0.0.1", None)
    }

    /// A registry that requires `user`/`pass` (HTTP basic, bcrypt htpasswd).
    pub fn start_with_auth(user: &str, pass: &str) -> TestRegistry {
        Self::start_on("127.0.0.1", Some((user, pass)))
    }

    /// A registry listening on `ip` (any loopback address).
    pub fn start_on(ip: &str, auth: Option<(&str, &str)>) -> TestRegistry {
        let dir = tempfile::tempdir().expect("tempdir");
        let port = free_port(ip);
        let host = format!("{ip}:{port}");
        let storage = dir.path().join("storage");
        std::fs::create_dir_all(&storage).unwrap();
        let mut config = format!(
            "version: 0.1\nlog:\n  level: info\n  formatter: text\n\
             storage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n\
             http:\n  addr: {host}\n  secret: kiln-test-secret\n",
            storage.display()
        );
        if let Some((user, pass)) = auth {
            let out = Command::new("htpasswd")
                .args(["-Bbn", user, pass])
                .output()
                .expect("run htpasswd (apache2-utils)");
            assert!(out.status.success(), "htpasswd failed: {out:?}");
            let file = dir.path().join("htpasswd");
            std::fs::write(&file, &out.stdout).unwrap();
            config += &format!(
                "auth:\n  htpasswd:\n    realm: kiln-test\n    path: {}\n",
                file.display()
            );
        }
        let config_path = dir.path().join("config.yml");
        std::fs::write(&config_path, config).unwrap();
        let log = std::fs::File::create(dir.path().join("registry.log")).unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start docker-registry");
        let mut reg = TestRegistry {
            dir,
            child: Some(child),
            host,
        };
        reg.wait_ready();
        reg
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.v2_status() {
                if status == 200 || status == 401 {
                    return;
                }
            }
            if let Some(Ok(Some(st))) = self.child.as_mut().map(|c| c.try_wait()) {
                panic!("docker-registry exited ({st}):\n{}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "registry did not answer GET /v2/ in 30 s:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The HTTP status of `GET /v2/`, if the registry answers.
    pub fn v2_status(&self) -> Option<u16> {
        let mut s = TcpStream::connect(&self.host).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        write!(s, "GET /v2/ HTTP/1.0\r\nHost: {}\r\n\r\n", self.host).ok()?;
        let mut buf = String::new();
        s.read_to_string(&mut buf).ok()?;
        buf.split_whitespace().nth(1)?.parse().ok()
    }

    /// What the registry logged so far (requests included).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }

    /// The registry's storage root (`docker/registry/v2/...` below it).
    pub fn storage(&self) -> PathBuf {
        self.dir.path().join("storage")
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
            .arg(format!("docker://{}/{repo}:{tag}", self.host));
        super::run_ok(&mut cmd);
    }

    /// Stops the registry now (it is also stopped on drop).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for TestRegistry {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A port nothing listens on right now.
pub fn free_port(ip: &str) -> u16 {
    let l = TcpListener::bind((ip, 0)).expect("bind a free port");
    l.local_addr().unwrap().port()
}
