//! One connection to one registry: the oci-client `Client` configured with
//! kiln's transport policy, a current-thread tokio runtime to drive it from
//! synchronous code, credentials, and retries of transient failures.

use super::auth::Credentials;
use super::RegistryOptions;
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::errors::{OciDistributionError, OciErrorCode};
use oci_client::secrets::RegistryAuth;
use std::time::Duration;

/// Tries per request (the first and two retries).
const TRIES: u32 = 3;
const BACKOFF: Duration = Duration::from_millis(250);

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("registry {registry}: authentication failed ({how}){detail}")]
    AuthFailed {
        registry: String,
        how: String,
        detail: String,
    },
    #[error("registry {registry}: {what}: {source}")]
    Request {
        registry: String,
        what: String,
        #[source]
        source: OciDistributionError,
    },
    #[error("registry {registry}: {what}")]
    Invalid { registry: String, what: String },
    #[error("registry {registry}: {what} does not match its digest: expected {expected} ({expected_size} bytes), the registry sent {actual} ({actual_size} bytes)")]
    DigestMismatch {
        registry: String,
        what: String,
        expected: String,
        expected_size: u64,
        actual: String,
        actual_size: u64,
    },
    #[error("registry {registry}: cannot start the network runtime: {source}")]
    Runtime {
        registry: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Auth(#[from] super::auth::AuthError),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

impl RegistryError {
    /// The registry could not be reached at all (DNS, refused, timeout).
    pub fn is_unreachable(&self) -> bool {
        matches!(self, RegistryError::Request { source: OciDistributionError::RequestError(r), .. }
            if r.is_connect() || r.is_timeout())
    }
}

/// Whether plain HTTP may be used for `host` (`name[:port]`): loopback
/// registries (`localhost`, 127.0.0.0/8, `::1`, as Docker allows), or hosts
/// the user listed with `--insecure-registry`.
pub fn allows_http(host: &str, insecure: &[String]) -> bool {
    let name = if let Some(rest) = host.strip_prefix('[') {
        rest.split(']').next().unwrap_or(rest)
    } else {
        host.rsplit_once(':').map_or(host, |(n, _)| n)
    };
    if name.eq_ignore_ascii_case("localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
    {
        return true;
    }
    insecure.iter().any(|i| {
        let i = i.trim().trim_end_matches('/');
        let i = i
            .strip_prefix("http://")
            .or_else(|| i.strip_prefix("https://"))
            .unwrap_or(i);
        // `HOST` allows every port of HOST; `HOST:PORT` that port only.
        i.eq_ignore_ascii_case(host) || (!is_host_port(i) && i.eq_ignore_ascii_case(name))
    })
}

fn is_host_port(s: &str) -> bool {
    if s.starts_with('[') {
        return s.contains("]:");
    }
    s.matches(':').count() == 1
}

/// A client for one registry host.
pub struct Connection {
    pub registry: String,
    pub scheme: &'static str,
    client: oci_client::Client,
    auth: RegistryAuth,
    has_credentials: bool,
    rt: tokio::runtime::Runtime,
}

impl Connection {
    pub fn new(
        host: &str,
        creds: Credentials,
        opts: &RegistryOptions,
    ) -> Result<Connection, RegistryError> {
        let http = allows_http(host, &opts.insecure_registries);
        let config = ClientConfig {
            protocol: if http {
                ClientProtocol::Http
            } else {
                ClientProtocol::Https
            },
            // The platform is chosen by kiln, never by the client.
            platform_resolver: None,
            connect_timeout: Some(Duration::from_secs(30)),
            read_timeout: Some(Duration::from_secs(300)),
            user_agent: concat!("kiln/", env!("CARGO_PKG_VERSION")),
            ..ClientConfig::default()
        };
        let client = oci_client::Client::try_from(config).map_err(|e| RegistryError::Request {
            registry: host.into(),
            what: "setting up the HTTP client".into(),
            source: e,
        })?;
        let has_credentials = creds != Credentials::Anonymous;
        let auth = match creds {
            Credentials::Anonymous => RegistryAuth::Anonymous,
            Credentials::Basic { username, password } => RegistryAuth::Basic(username, password),
        };
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| RegistryError::Runtime {
                registry: host.into(),
                source: e,
            })?;
        Ok(Connection {
            registry: host.into(),
            scheme: if http { "http" } else { "https" },
            client,
            auth,
            has_credentials,
            rt,
        })
    }

    /// A connection to `reference`'s registry, authenticated with what the
    /// Docker config holds for it (anonymous when nothing).
    pub fn open(
        reference: &super::ImageRef,
        opts: &RegistryOptions,
    ) -> Result<Connection, RegistryError> {
        let creds = super::auth::lookup(reference.registry(), opts)?;
        let conn = Connection::new(reference.api_host(), creds, opts)?;
        conn.block_on(
            conn.client()
                .store_auth_if_needed(reference.api_host(), conn.auth()),
        );
        Ok(conn)
    }

    pub fn client(&self) -> &oci_client::Client {
        &self.client
    }

    pub fn auth(&self) -> &RegistryAuth {
        &self.auth
    }

    /// Runs `fut` to completion on this connection's runtime.
    pub fn block_on<F: std::future::Future>(&self, fut: F) -> F::Output {
        self.rt.block_on(fut)
    }

    /// Runs `attempt` up to [`TRIES`] times while it fails transiently,
    /// then maps the error to one that names the registry and `what`.
    pub fn retry<T>(
        &self,
        what: &str,
        mut attempt: impl FnMut(&Connection) -> Result<T, Failure>,
    ) -> Result<T, RegistryError> {
        let mut tries = 0;
        loop {
            tries += 1;
            match attempt(self) {
                Ok(v) => return Ok(v),
                Err(Failure::Oci(e)) if tries < TRIES && is_transient(&e) => {}
                Err(Failure::Oci(e)) => return Err(self.error(what, e)),
                Err(Failure::Kiln(e)) => return Err(e),
            }
            std::thread::sleep(BACKOFF * tries);
        }
    }

    /// Turns a client error into kiln's, recognising refused credentials.
    pub fn error(&self, what: &str, e: OciDistributionError) -> RegistryError {
        if is_auth_failure(&e) {
            return RegistryError::AuthFailed {
                registry: self.registry.clone(),
                how: if self.has_credentials {
                    "the registry refused the credentials from the Docker config".into()
                } else {
                    "no credentials for it in the Docker config; run `kiln login` or `docker login`"
                        .into()
                },
                detail: format!(" while {what}"),
            };
        }
        if let OciDistributionError::DigestError(d) = &e {
            return RegistryError::Invalid {
                registry: self.registry.clone(),
                what: format!("{what}: content does not match its digest ({d})"),
            };
        }
        let what = if matches!(&e, OciDistributionError::RequestError(r) if r.is_connect()) {
            format!("{what} over {}", self.scheme)
        } else {
            what.to_string()
        };
        RegistryError::Request {
            registry: self.registry.clone(),
            what,
            source: e,
        }
    }
}

/// What one attempt of a request can fail with.
pub enum Failure {
    /// A client error, retried when transient.
    Oci(OciDistributionError),
    /// A final error (a digest mismatch, a full disk).
    Kiln(RegistryError),
}

impl From<OciDistributionError> for Failure {
    fn from(e: OciDistributionError) -> Self {
        Failure::Oci(e)
    }
}

impl From<RegistryError> for Failure {
    fn from(e: RegistryError) -> Self {
        Failure::Kiln(e)
    }
}

fn is_auth_failure(e: &OciDistributionError) -> bool {
    match e {
        OciDistributionError::UnauthorizedError { .. }
        | OciDistributionError::AuthenticationFailure(_) => true,
        OciDistributionError::RegistryError { envelope, .. } => envelope
            .errors
            .iter()
            .any(|e| matches!(e.code, OciErrorCode::Unauthorized | OciErrorCode::Denied)),
        OciDistributionError::ServerError { code, .. } => *code == 401,
        _ => false,
    }
}

/// The registry has no such manifest or blob (404, MANIFEST_UNKNOWN, ...).
pub fn is_not_found(e: &OciDistributionError) -> bool {
    match e {
        OciDistributionError::ImageManifestNotFoundError(_) => true,
        OciDistributionError::RegistryError { envelope, .. } => envelope.errors.iter().any(|e| {
            matches!(
                e.code,
                OciErrorCode::ManifestUnknown | OciErrorCode::BlobUnknown | OciErrorCode::NotFound
            )
        }),
        OciDistributionError::ServerError { code, .. } => *code == 404,
        OciDistributionError::RequestError(r) => r.status().is_some_and(|s| s.as_u16() == 404),
        _ => false,
    }
}

/// Connection failures, timeouts, 5xx and 429 are worth another try.
pub fn is_transient(e: &OciDistributionError) -> bool {
    match e {
        OciDistributionError::RequestError(r) => {
            r.is_connect()
                || r.is_timeout()
                || r.is_body()
                || r.is_request()
                || r.status()
                    .is_some_and(|s| s.is_server_error() || s.as_u16() == 429)
        }
        OciDistributionError::ServerError { code, .. } => *code >= 500 || *code == 429,
        OciDistributionError::RegistryError { envelope, .. } => envelope
            .errors
            .iter()
            .any(|e| e.code == OciErrorCode::Toomanyrequests),
        OciDistributionError::IoError(_) => true,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_only_for_loopback_or_listed_hosts() {
        let none: Vec<String> = vec![];
        for ok in [
            "localhost",
            "localhost:5000",
            "127.0.0.1:1234",
            "[::1]:5000",
            "LOCALHOST",
            "127.1.2.3",
        ] {
            assert!(allows_http(ok, &none), "{ok}");
        }
        for no in [
            "docker.io",
            "example.com:5000",
            "[2001:db8::1]:5000",
            "localhost.example.com",
            "10.0.0.1",
        ] {
            assert!(!allows_http(no, &none), "{no}");
        }
        let listed = vec!["reg.lan:5000".to_string(), "other.lan".into()];
        assert!(allows_http("reg.lan:5000", &listed));
        assert!(
            !allows_http("reg.lan:5001", &listed),
            "a listed port is that port only"
        );
        assert!(!allows_http("reg.lan", &listed));
        assert!(allows_http("other.lan", &listed));
        assert!(
            allows_http("other.lan:8080", &listed),
            "a listed host allows any port"
        );
        assert!(allows_http("x.lan:1", &["http://x.lan:1/".to_string()]));
    }

    #[test]
    fn transient_and_auth_errors_are_recognised() {
        let server = |code| OciDistributionError::ServerError {
            code,
            url: "u".into(),
            message: String::new(),
        };
        assert!(is_transient(&server(503)));
        assert!(is_transient(&server(429)));
        assert!(!is_transient(&server(404)));
        let unauth = OciDistributionError::UnauthorizedError { url: "u".into() };
        assert!(!is_transient(&unauth));
        assert!(is_auth_failure(&unauth));
        assert!(!is_auth_failure(&server(500)));
    }
}
