//! Registry credentials from Docker's client config
//! (`$DOCKER_CONFIG/config.json`, default `~/.docker/config.json`), so
//! `docker login` / `podman login --authfile`-style setups work unchanged.
//!
//! Lookup for a registry host: its `credHelpers` entry, then an `auths`
//! entry with credentials (base64 `auth` or `username`/`password`), then
//! `credsStore`; anonymous when none has any. Docker Hub's key is
//! `https://index.docker.io/v1/`.

use base64::Engine as _;
use serde_json::{Map, Value};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The key Docker uses for Docker Hub in `auths` and for credential helpers.
pub const DOCKER_HUB_KEY: &str = "https://index.docker.io/v1/";

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("Docker config {path}: {what}")]
    Config { path: PathBuf, what: String },
    #[error("credential helper docker-credential-{helper} for {server}: {what}")]
    Helper {
        helper: String,
        server: String,
        what: String,
    },
    #[error("no home directory to find ~/.docker/config.json in: set DOCKER_CONFIG")]
    NoHome,
}

/// What to authenticate to one registry with.
#[derive(Clone, PartialEq, Eq)]
pub enum Credentials {
    Anonymous,
    Basic { username: String, password: String },
}

impl std::fmt::Debug for Credentials {
    // Never print a password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credentials::Anonymous => write!(f, "Anonymous"),
            Credentials::Basic { username, .. } => write!(f, "Basic({username}, ***)"),
        }
    }
}

/// The config file: `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`.
pub fn config_path() -> Result<PathBuf, AuthError> {
    if let Some(dir) = std::env::var_os("DOCKER_CONFIG").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(dir).join("config.json"));
    }
    dirs::home_dir()
        .map(|h| h.join(".docker").join("config.json"))
        .ok_or(AuthError::NoHome)
}

/// The key a registry host has in config.json and for credential helpers.
pub fn server_key(host: &str) -> String {
    match normalise_host(host).as_str() {
        "docker.io" | "index.docker.io" | "registry-1.docker.io" => DOCKER_HUB_KEY.to_string(),
        h => h.to_string(),
    }
}

/// `https://host/v1/` and `host` name the same registry (Docker's
/// convertToHostname): scheme and path are dropped.
fn normalise_host(key: &str) -> String {
    let rest = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    let host = rest.split('/').next().unwrap_or(rest);
    match host {
        "index.docker.io" | "registry-1.docker.io" => "docker.io".into(),
        h => h.to_ascii_lowercase(),
    }
}

/// Docker's client config as JSON, keeping every key kiln does not know.
#[derive(Debug)]
pub struct DockerConfig {
    pub path: PathBuf,
    json: Map<String, Value>,
    /// PATH used to find credential helpers (tests); `None` = inherited.
    helper_path: Option<std::ffi::OsString>,
}

impl DockerConfig {
    /// Reads the config at `path`; a missing file is an empty config.
    pub fn load(path: &Path) -> Result<DockerConfig, AuthError> {
        let err = |what: String| AuthError::Config {
            path: path.into(),
            what,
        };
        let json = match std::fs::read(path) {
            Ok(bytes) if bytes.iter().all(u8::is_ascii_whitespace) => Map::new(),
            Ok(bytes) => match serde_json::from_slice::<Value>(&bytes) {
                Ok(Value::Object(m)) => m,
                Ok(_) => return Err(err("is not a JSON object".into())),
                Err(e) => return Err(err(format!("is not valid JSON: {e}"))),
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Map::new(),
            Err(e) => return Err(err(format!("cannot read: {e}"))),
        };
        Ok(DockerConfig {
            path: path.into(),
            json,
            helper_path: None,
        })
    }

    /// Credentials for registry `host` (as in an image reference).
    pub fn credentials(&self, host: &str) -> Result<Credentials, AuthError> {
        let want = normalise_host(host);
        if let Some(helper) = self.lookup("credHelpers", &want).and_then(Value::as_str) {
            return run_helper(helper, &server_key(host), self.helper_path.as_deref());
        }
        if let Some(entry) = self.lookup("auths", &want) {
            if let Some(c) = self.entry_credentials(entry, host)? {
                return Ok(c);
            }
        }
        if let Some(store) = self.json.get("credsStore").and_then(Value::as_str) {
            if !store.is_empty() {
                return run_helper(store, &server_key(host), self.helper_path.as_deref());
            }
        }
        Ok(Credentials::Anonymous)
    }

    /// The value under `section` whose key names the host `want`.
    fn lookup(&self, section: &str, want: &str) -> Option<&Value> {
        self.json
            .get(section)?
            .as_object()?
            .iter()
            .find(|(k, _)| normalise_host(k) == want)
            .map(|(_, v)| v)
    }

    fn entry_credentials(
        &self,
        entry: &Value,
        host: &str,
    ) -> Result<Option<Credentials>, AuthError> {
        let err = |what: String| AuthError::Config {
            path: self.path.clone(),
            what: format!("auths entry for {host}: {what}"),
        };
        let field = |k: &str| {
            entry
                .get(k)
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
        };
        if let Some(auth) = field("auth") {
            let raw = base64::engine::general_purpose::STANDARD
                .decode(auth.trim())
                .map_err(|_| err("\"auth\" is not base64".into()))?;
            let text = String::from_utf8(raw).map_err(|_| err("\"auth\" is not UTF-8".into()))?;
            let (u, p) = text
                .split_once(':')
                .ok_or_else(|| err("\"auth\" does not decode to username:password".into()))?;
            return Ok(Some(Credentials::Basic {
                username: u.into(),
                password: p.into(),
            }));
        }
        match (field("username"), field("password")) {
            (Some(u), Some(p)) => Ok(Some(Credentials::Basic {
                username: u.into(),
                password: p.into(),
            })),
            _ => Ok(None),
        }
    }

    /// Stores `username:password` for `host` under `auths` (replacing any
    /// other key naming the same registry).
    pub fn set_auth(&mut self, host: &str, username: &str, password: &str) {
        self.remove_auth(host);
        let auth =
            base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"));
        let auths = self
            .json
            .entry("auths")
            .or_insert_with(|| Value::Object(Map::new()));
        if !auths.is_object() {
            *auths = Value::Object(Map::new());
        }
        if let Some(m) = auths.as_object_mut() {
            let mut entry = Map::new();
            entry.insert("auth".into(), Value::String(auth));
            m.insert(server_key(host), Value::Object(entry));
        }
    }

    /// Removes every `auths` entry for `host`; whether there was one.
    pub fn remove_auth(&mut self, host: &str) -> bool {
        let want = normalise_host(host);
        let Some(auths) = self.json.get_mut("auths").and_then(Value::as_object_mut) else {
            return false;
        };
        let before = auths.len();
        auths.retain(|k, _| normalise_host(k) != want);
        auths.len() != before
    }

    /// Writes the config back atomically, readable by the owner only.
    pub fn save(&self) -> Result<(), AuthError> {
        let err = |what: String| AuthError::Config {
            path: self.path.clone(),
            what,
        };
        let dir = self
            .path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(|e| err(format!("cannot create directory: {e}")))?;
        let mut bytes = serde_json::to_vec_pretty(&Value::Object(self.json.clone()))
            .map_err(|e| err(format!("cannot serialise: {e}")))?;
        bytes.push(b'\n');
        // NamedTempFile is created 0600 on Unix; the rename keeps that mode.
        let mut tmp = tempfile::NamedTempFile::new_in(dir)
            .map_err(|e| err(format!("cannot create a temporary file: {e}")))?;
        tmp.write_all(&bytes)
            .and_then(|_| tmp.as_file().sync_all())
            .map_err(|e| err(format!("cannot write: {e}")))?;
        tmp.persist(&self.path)
            .map_err(|e| err(format!("cannot replace: {}", e.error)))?;
        Ok(())
    }
}

/// Credentials for `host` from the config file `opts` names, else the
/// user's (`$DOCKER_CONFIG` or `~/.docker`).
pub fn lookup(host: &str, opts: &super::RegistryOptions) -> Result<Credentials, AuthError> {
    let path = match &opts.docker_config {
        Some(path) => path.clone(),
        None => config_path()?,
    };
    DockerConfig::load(&path)?.credentials(host)
}

/// Runs `docker-credential-NAME get` with the server on stdin.
fn run_helper(
    helper: &str,
    server: &str,
    search_path: Option<&std::ffi::OsStr>,
) -> Result<Credentials, AuthError> {
    let err = |what: String| AuthError::Helper {
        helper: helper.into(),
        server: server.into(),
        what,
    };
    if helper.is_empty()
        || !helper
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
    {
        return Err(err("invalid helper name".into()));
    }
    let mut cmd = Command::new(format!("docker-credential-{helper}"));
    if let Some(p) = search_path {
        cmd.env("PATH", p);
    }
    let mut child = cmd
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| err(format!("cannot start it: {e}")))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A helper that exits without reading is judged by its status below.
        let _ = stdin.write_all(server.as_bytes());
    }
    let out = child
        .wait_with_output()
        .map_err(|e| err(format!("waiting for it: {e}")))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        let msg = format!(
            "{} {}",
            stdout.trim(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
        // The helpers' protocol for "nothing stored for this server".
        if msg.contains("credentials not found") {
            return Ok(Credentials::Anonymous);
        }
        return Err(err(format!("failed ({}): {}", out.status, msg.trim())));
    }
    #[derive(serde::Deserialize)]
    struct HelperOutput {
        #[serde(rename = "Username", default)]
        username: String,
        #[serde(rename = "Secret", default)]
        secret: String,
    }
    let parsed: HelperOutput = serde_json::from_str(stdout.trim())
        .map_err(|e| err(format!("output is not the expected JSON: {e}")))?;
    if parsed.username == "<token>" {
        return Err(err(
            "returned an identity token, which kiln cannot use yet; store a username and password"
                .into(),
        ));
    }
    if parsed.username.is_empty() && parsed.secret.is_empty() {
        return Ok(Credentials::Anonymous);
    }
    Ok(Credentials::Basic {
        username: parsed.username,
        password: parsed.secret,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(dir: &Path, json: &str) -> DockerConfig {
        let path = dir.join("config.json");
        std::fs::write(&path, json).unwrap();
        DockerConfig::load(&path).unwrap()
    }

    fn basic(u: &str, p: &str) -> Credentials {
        Credentials::Basic {
            username: u.into(),
            password: p.into(),
        }
    }

    #[test]
    fn auths_entries_give_basic_credentials_by_host() {
        let dir = tempfile::tempdir().unwrap();
        // "dXNlcjpwYXNz" is base64("user:pass").
        let c = config(
            dir.path(),
            r#"{"auths": {
                "https://index.docker.io/v1/": {"auth": "aHViOnNlY3JldA=="},
                "localhost:5000": {"auth": "dXNlcjpwYXNz"},
                "https://ghcr.io": {"username": "g", "password": "p:w"},
                "empty.example": {}
            }}"#,
        );
        assert_eq!(c.credentials("docker.io").unwrap(), basic("hub", "secret"));
        assert_eq!(
            c.credentials("index.docker.io").unwrap(),
            basic("hub", "secret")
        );
        assert_eq!(
            c.credentials("localhost:5000").unwrap(),
            basic("user", "pass")
        );
        assert_eq!(c.credentials("ghcr.io").unwrap(), basic("g", "p:w"));
        assert_eq!(
            c.credentials("empty.example").unwrap(),
            Credentials::Anonymous
        );
        assert_eq!(
            c.credentials("localhost:5001").unwrap(),
            Credentials::Anonymous
        );
    }

    #[test]
    fn missing_or_bad_config_files() {
        let dir = tempfile::tempdir().unwrap();
        let c = DockerConfig::load(&dir.path().join("nope.json")).unwrap();
        assert_eq!(c.credentials("x.io").unwrap(), Credentials::Anonymous);
        std::fs::write(dir.path().join("bad.json"), "{not json").unwrap();
        let e = DockerConfig::load(&dir.path().join("bad.json")).unwrap_err();
        assert!(e.to_string().contains("bad.json"), "{e}");
        let c = config(dir.path(), r#"{"auths": {"r.io": {"auth": "!!!"}}}"#);
        let e = c.credentials("r.io").unwrap_err().to_string();
        assert!(e.contains("r.io") && e.contains("base64"), "{e}");
    }

    #[test]
    fn set_and_remove_keep_other_keys_and_write_0600() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = config(
            dir.path(),
            r#"{"auths": {"https://r.io/v1/": {"auth": "b2xkOm9sZA=="}, "o.io": {"auth": "eDp5"}},
                "credsStore": "", "proxies": {"default": {"httpProxy": "x"}}}"#,
        );
        c.set_auth("r.io", "new", "pw");
        c.set_auth("docker.io", "hub", "h");
        c.save().unwrap();
        let c = DockerConfig::load(&c.path).unwrap();
        assert_eq!(c.credentials("r.io").unwrap(), basic("new", "pw"));
        assert_eq!(c.credentials("o.io").unwrap(), basic("x", "y"));
        let text = std::fs::read_to_string(&c.path).unwrap();
        assert!(
            text.contains("proxies") && text.contains(DOCKER_HUB_KEY),
            "{text}"
        );
        assert!(
            !text.contains("https://r.io/v1/"),
            "old key replaced: {text}"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&c.path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let mut c = c;
        assert!(c.remove_auth("https://r.io"));
        assert!(!c.remove_auth("r.io"));
        assert_eq!(c.credentials("r.io").unwrap(), Credentials::Anonymous);
        assert_eq!(c.credentials("o.io").unwrap(), basic("x", "y"));
    }

    #[test]
    fn save_creates_the_directory_and_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/config.json");
        let mut c = DockerConfig::load(&path).unwrap();
        c.set_auth("127.0.0.1:5000", "u", "p");
        c.save().unwrap();
        let c = DockerConfig::load(&path).unwrap();
        assert_eq!(c.credentials("127.0.0.1:5000").unwrap(), basic("u", "p"));
    }

    /// A fake `docker-credential-test` on PATH answers for one server only.
    #[cfg(unix)]
    #[test]
    fn cred_helpers_and_creds_store_run_the_helper_program() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("bin");
        std::fs::create_dir(&bin).unwrap();
        let script = bin.join("docker-credential-test");
        std::fs::write(
            &script,
            r#"#!/bin/sh
[ "$1" = get ] || exit 3
read server
case "$server" in
  helped.io) echo '{"ServerURL":"helped.io","Username":"hu","Secret":"hs"}' ;;
  https://index.docker.io/v1/) echo '{"ServerURL":"x","Username":"dock","Secret":"er"}' ;;
  broken.io) echo 'garbage' ;;
  failing.io) echo 'boom' >&2; exit 1 ;;
  *) echo 'credentials not found in native keychain'; exit 1 ;;
esac
"#,
        )
        .unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        let c = config(
            dir.path(),
            r#"{"credHelpers": {"helped.io": "test", "broken.io": "test", "failing.io": "test",
                                "missing.io": "nonexistent-kiln-helper"},
                "credsStore": "test",
                "auths": {"plain.io": {"auth": "dXNlcjpwYXNz"}}}"#,
        );
        // The helper is found on PATH (the script itself needs /bin/sh).
        let old = std::env::var_os("PATH").unwrap_or_default();
        let mut paths = vec![bin.clone()];
        paths.extend(std::env::split_paths(&old));
        let mut c = c;
        c.helper_path = Some(std::env::join_paths(paths).unwrap());
        let helped = c.credentials("helped.io");
        let hub = c.credentials("docker.io");
        let plain = c.credentials("plain.io");
        let unknown = c.credentials("other.io");
        let broken = c.credentials("broken.io");
        let failing = c.credentials("failing.io");
        let missing = c.credentials("missing.io");
        assert_eq!(helped.unwrap(), basic("hu", "hs"));
        assert_eq!(
            hub.unwrap(),
            basic("dock", "er"),
            "credsStore used for Docker Hub"
        );
        assert_eq!(
            plain.unwrap(),
            basic("user", "pass"),
            "auths before credsStore"
        );
        assert_eq!(unknown.unwrap(), Credentials::Anonymous);
        let e = broken.unwrap_err().to_string();
        assert!(
            e.contains("docker-credential-test") && e.contains("JSON"),
            "{e}"
        );
        let e = failing.unwrap_err().to_string();
        assert!(e.contains("boom") && e.contains("failing.io"), "{e}");
        let e = missing.unwrap_err().to_string();
        assert!(
            e.contains("docker-credential-nonexistent-kiln-helper"),
            "{e}"
        );
    }

    #[test]
    fn debug_output_hides_passwords() {
        let s = format!("{:?}", basic("u", "hunter2"));
        assert!(!s.contains("hunter2"));
    }
}
