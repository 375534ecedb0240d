//! A minimal Docker registry token server (the `Bearer realm=...` flow of
//! distribution's token auth) for the token-auth registry tests.
//!
//! It listens on 127.0.0.1 in a background thread, checks HTTP Basic
//! credentials against one fixed user, and answers every `GET` with a JWT
//! granting the requested `repository:NAME:ACTIONS` scopes to that user.
//! Anonymous callers get a valid token with no access, as real token
//! servers do, so the registry itself refuses them. The JWT is RS256,
//! signed by the `openssl` CLI with a key and self-signed certificate made
//! at start; the certificate travels in the `x5c` header and is the
//! registry's `rootcertbundle`. Every request is recorded for assertions.

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The `service` the registry is configured with (the token's audience).
pub const SERVICE: &str = "kiln-test-registry";
/// The `issuer` the registry trusts.
pub const ISSUER: &str = "kiln-test-token-server";

/// One scope a client asked for: `TYPE:NAME:ACTIONS`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    pub kind: String,
    pub name: String,
    pub actions: Vec<String>,
}

/// What one call to the token endpoint asked for and was answered.
#[derive(Debug, Clone)]
pub struct TokenRequest {
    /// The Basic user name sent, if any.
    pub user: Option<String>,
    /// HTTP status answered (200, or 401 for wrong credentials).
    pub status: u16,
    pub service: Option<String>,
    pub scopes: Vec<Scope>,
}

pub struct TokenServer {
    port: u16,
    dir: tempfile::TempDir,
    requests: Arc<Mutex<Vec<TokenRequest>>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// What the handler threads share.
struct Shared {
    user: String,
    pass: String,
    key: PathBuf,
    /// The certificate, base64 DER (the `x5c` entry).
    cert_b64: String,
    requests: Arc<Mutex<Vec<TokenRequest>>>,
}

impl TokenServer {
    /// Generates a key and certificate and starts serving for `user`/`pass`.
    pub fn start(user: &str, pass: &str) -> TokenServer {
        let dir = tempfile::tempdir().expect("token server tempdir");
        let key = dir.path().join("key.pem");
        let cert = dir.path().join("cert.pem");
        super::run_ok(Command::new("openssl").args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-sha256",
            "-days",
            "2",
            "-subj",
            "/CN=kiln-test-token-server",
            "-keyout",
            key.to_str().unwrap(),
            "-out",
            cert.to_str().unwrap(),
        ]));
        let cert_b64 = pem_body(&std::fs::read_to_string(&cert).unwrap());
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind token server");
        let port = listener.local_addr().unwrap().port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let shared = Arc::new(Shared {
            user: user.into(),
            pass: pass.into(),
            key,
            cert_b64,
            requests: requests.clone(),
        });
        let stop2 = stop.clone();
        let thread = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stop2.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let shared = shared.clone();
                std::thread::spawn(move || {
                    if let Err(e) = serve(conn, &shared) {
                        eprintln!("token server: {e}");
                    }
                });
            }
        });
        TokenServer {
            port,
            dir,
            requests,
            stop,
            thread: Some(thread),
        }
    }

    /// The URL the registry sends clients to (`realm`).
    pub fn realm(&self) -> String {
        format!("http://127.0.0.1:{}/token", self.port)
    }

    /// The PEM certificate whose key signs the tokens.
    pub fn cert_path(&self) -> PathBuf {
        self.dir.path().join("cert.pem")
    }

    /// Every request served so far.
    pub fn requests(&self) -> Vec<TokenRequest> {
        self.requests.lock().unwrap().clone()
    }
}

impl Drop for TokenServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The base64 body of a one-block PEM file (= base64 of the DER).
fn pem_body(pem: &str) -> String {
    pem.lines()
        .filter(|l| !l.starts_with("-----"))
        .map(str::trim)
        .collect()
}

/// Reads one request head and answers it; the connection is then closed.
fn serve(conn: TcpStream, shared: &Shared) -> Result<(), String> {
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    let mut reader = BufReader::new(conn.try_clone().map_err(|e| e.to_string())?);
    let mut request_line = String::new();
    reader
        .read_line(&mut request_line)
        .map_err(|e| format!("reading request line: {e}"))?;
    if request_line.is_empty() {
        return Ok(()); // the wake-up connection of Drop, or a probe
    }
    let mut authorization = None;
    loop {
        let mut line = String::new();
        let n = reader
            .read_line(&mut line)
            .map_err(|e| format!("reading headers: {e}"))?;
        let line = line.trim_end();
        if n == 0 || line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            if name.trim().eq_ignore_ascii_case("authorization") {
                authorization = Some(value.trim().to_string());
            }
        }
    }
    let target = request_line.split_whitespace().nth(1).unwrap_or("/");
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let params = parse_query(query);
    let service = params
        .iter()
        .find(|(k, _)| k == "service")
        .map(|(_, v)| v.clone());
    // `scope` may repeat, and one value may hold several space-separated.
    let scopes: Vec<Scope> = params
        .iter()
        .filter(|(k, _)| k == "scope")
        .flat_map(|(_, v)| v.split(' ').filter_map(parse_scope).collect::<Vec<_>>())
        .collect();
    let user = authorization.as_deref().and_then(basic_credentials);
    let (status, body) = if path != "/token" {
        (404, r#"{"errors":[{"code":"NOT_FOUND"}]}"#.to_string())
    } else {
        match &user {
            Some((u, p)) if *u == shared.user && *p == shared.pass => {
                (200, token_response(shared, u, &scopes)?)
            }
            Some(_) => (
                401,
                r#"{"details":"incorrect username or password"}"#.to_string(),
            ),
            // Anonymous: a token, but one that grants nothing.
            None => (200, token_response(shared, "", &[])?),
        }
    };
    shared.requests.lock().unwrap().push(TokenRequest {
        user: user.map(|(u, _)| u),
        status,
        service,
        scopes,
    });
    let reason = match status {
        200 => "OK",
        401 => "Unauthorized",
        _ => "Not Found",
    };
    let mut conn = conn;
    let extra = if status == 401 {
        "WWW-Authenticate: Basic realm=\"kiln-test-token-server\"\r\n"
    } else {
        ""
    };
    write!(
        conn,
        "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n{extra}Connection: close\r\n\r\n{body}",
        body.len()
    )
    .map_err(|e| format!("writing response: {e}"))
}

/// `user:pass` of an `Authorization: Basic ...` header.
fn basic_credentials(header: &str) -> Option<(String, String)> {
    let (scheme, value) = header.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(STANDARD.decode(value.trim()).ok()?).ok()?;
    let (u, p) = decoded.split_once(':')?;
    Some((u.to_string(), p.to_string()))
}

/// `k=v&k=v` with percent-decoding (and `+` as space).
fn parse_query(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' => match s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
            {
                Some(v) => {
                    out.push(v);
                    i += 2;
                }
                None => out.push(b'%'),
            },
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `repository:NAME:pull,push` (the name may itself hold colons).
fn parse_scope(s: &str) -> Option<Scope> {
    let (kind, rest) = s.split_once(':')?;
    let (name, actions) = rest.rsplit_once(':')?;
    Some(Scope {
        kind: kind.to_string(),
        name: name.to_string(),
        actions: actions.split(',').map(str::to_string).collect(),
    })
}

/// The JSON answer: the same JWT as `token` and `access_token`.
fn token_response(shared: &Shared, subject: &str, scopes: &[Scope]) -> Result<String, String> {
    let jwt = sign_jwt(shared, subject, scopes)?;
    Ok(serde_json::json!({
        "token": jwt,
        "access_token": jwt,
        "expires_in": 300,
    })
    .to_string())
}

fn sign_jwt(shared: &Shared, subject: &str, scopes: &[Scope]) -> Result<String, String> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_err(|e| e.to_string())?
        .as_secs();
    let header = serde_json::json!({
        "typ": "JWT",
        "alg": "RS256",
        "x5c": [shared.cert_b64],
    });
    let access: Vec<serde_json::Value> = scopes
        .iter()
        .map(|s| serde_json::json!({"type": s.kind, "name": s.name, "actions": s.actions}))
        .collect();
    static JTI: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let claims = serde_json::json!({
        "iss": ISSUER,
        "sub": subject,
        "aud": SERVICE,
        "exp": now + 300,
        "nbf": now - 10,
        "iat": now,
        "jti": format!("kiln-{now}-{}", JTI.fetch_add(1, Ordering::SeqCst)),
        "access": access,
    });
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let signature = openssl_sign(&shared.key, signing_input.as_bytes())?;
    Ok(format!(
        "{signing_input}.{}",
        URL_SAFE_NO_PAD.encode(signature)
    ))
}

/// RSASSA-PKCS1-v1_5 with SHA-256 (RS256) by `openssl dgst`.
fn openssl_sign(key: &Path, data: &[u8]) -> Result<Vec<u8>, String> {
    let mut child = Command::new("openssl")
        .args(["dgst", "-sha256", "-binary", "-sign"])
        .arg(key)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("starting openssl: {e}"))?;
    child
        .stdin
        .take()
        .ok_or("openssl stdin")?
        .write_all(data)
        .map_err(|e| format!("writing to openssl: {e}"))?;
    let out = child
        .wait_with_output()
        .map_err(|e| format!("waiting for openssl: {e}"))?;
    if !out.status.success() || out.stdout.is_empty() {
        return Err(format!(
            "openssl dgst -sign failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(out.stdout)
}
