//! `kiln login` / `kiln logout`: check credentials against a registry the
//! way `docker login` does (GET /v2/, then the challenge it answers with:
//! HTTP basic, or a bearer token from the realm), and keep them in the
//! Docker config file.

use super::auth::{config_path, server_key, DockerConfig};
use super::client::allows_http;
use super::RegistryOptions;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    #[error("registry {registry}: authentication failed: {detail}")]
    Rejected { registry: String, detail: String },
    #[error("registry {registry}: {what}")]
    Unreachable { registry: String, what: String },
    #[error("invalid registry {0:?}: expected HOST[:PORT]")]
    BadRegistry(String),
    #[error(transparent)]
    Auth(#[from] super::auth::AuthError),
}

/// The registry host a `kiln login` argument names (`https://r.io/v2/` → `r.io`).
pub fn registry_host(arg: &str) -> Result<String, LoginError> {
    let rest = arg
        .strip_prefix("https://")
        .or_else(|| arg.strip_prefix("http://"))
        .unwrap_or(arg);
    let host = rest
        .split('/')
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    if host.is_empty()
        || !host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-.:[]_".contains(&b))
    {
        return Err(LoginError::BadRegistry(arg.to_string()));
    }
    Ok(match host.as_str() {
        "index.docker.io" | "registry-1.docker.io" => "docker.io".into(),
        _ => host,
    })
}

/// Checks `username`/`password` against `host`, then stores them; returns
/// the config file written.
pub fn login(
    host: &str,
    username: &str,
    password: &str,
    opts: &RegistryOptions,
) -> Result<PathBuf, LoginError> {
    verify(host, username, password, opts)?;
    let path = match &opts.docker_config {
        Some(p) => p.clone(),
        None => config_path()?,
    };
    let mut config = DockerConfig::load(&path)?;
    config.set_auth(host, username, password);
    config.save()?;
    Ok(path)
}

/// Forgets the stored credentials for `host`; whether there were any.
pub fn logout(host: &str, opts: &RegistryOptions) -> Result<bool, LoginError> {
    let path = match &opts.docker_config {
        Some(p) => p.clone(),
        None => config_path()?,
    };
    let mut config = DockerConfig::load(&path)?;
    let removed = config.remove_auth(host);
    if removed {
        config.save()?;
    }
    Ok(removed)
}

fn verify(
    host: &str,
    username: &str,
    password: &str,
    opts: &RegistryOptions,
) -> Result<(), LoginError> {
    let api = if host == "docker.io" {
        "registry-1.docker.io"
    } else {
        host
    };
    let scheme = if allows_http(api, &opts.insecure_registries) {
        "http"
    } else {
        "https"
    };
    let unreachable = |what: String| LoginError::Unreachable {
        registry: host.to_string(),
        what,
    };
    let rejected = |detail: String| LoginError::Rejected {
        registry: host.to_string(),
        detail,
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| unreachable(format!("cannot start the network runtime: {e}")))?;
    let client = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(30))
        .timeout(Duration::from_secs(60))
        .user_agent(concat!("kiln/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| unreachable(format!("setting up the HTTP client: {e}")))?;
    let url = format!("{scheme}://{api}/v2/");
    rt.block_on(async {
        let res = client
            .get(&url)
            .send()
            .await
            .map_err(|e| unreachable(format!("GET {url}: {e}")))?;
        if res.status().is_success() {
            // No authentication at all; like docker, accept the login.
            return Ok(());
        }
        if res.status() != reqwest::StatusCode::UNAUTHORIZED {
            return Err(unreachable(format!("GET {url} answered {}", res.status())));
        }
        let challenge = res
            .headers()
            .get(reqwest::header::WWW_AUTHENTICATE)
            .and_then(|v| v.to_str().ok())
            .map(Challenge::parse)
            .unwrap_or_default();
        let res = if challenge.scheme.eq_ignore_ascii_case("bearer") {
            let realm = challenge
                .params
                .iter()
                .find(|(k, _)| k == "realm")
                .map(|(_, v)| v.clone())
                .ok_or_else(|| unreachable("bearer challenge without a realm".into()))?;
            let mut token_url = reqwest::Url::parse(&realm)
                .map_err(|e| unreachable(format!("bad token realm {realm:?}: {e}")))?;
            if let Some((_, service)) = challenge.params.iter().find(|(k, _)| k == "service") {
                token_url.query_pairs_mut().append_pair("service", service);
            }
            client
                .get(token_url.clone())
                .basic_auth(username, Some(password))
                .send()
                .await
                .map_err(|e| unreachable(format!("GET {token_url}: {e}")))?
        } else {
            client
                .get(&url)
                .basic_auth(username, Some(password))
                .send()
                .await
                .map_err(|e| unreachable(format!("GET {url}: {e}")))?
        };
        let status = res.status();
        if status.is_success() {
            Ok(())
        } else if status == reqwest::StatusCode::UNAUTHORIZED
            || status == reqwest::StatusCode::FORBIDDEN
        {
            Err(rejected(format!(
                "the registry refused the credentials for {username:?} ({status})"
            )))
        } else {
            Err(unreachable(format!("checking the credentials: {status}")))
        }
    })
}

/// A parsed `WWW-Authenticate` header: scheme and `key="value"` params.
#[derive(Debug, Default, PartialEq)]
struct Challenge {
    scheme: String,
    params: Vec<(String, String)>,
}

impl Challenge {
    fn parse(header: &str) -> Challenge {
        let header = header.trim();
        let (scheme, mut rest) = header.split_once(' ').unwrap_or((header, ""));
        let mut params = Vec::new();
        loop {
            rest = rest.trim_start_matches([' ', ',']);
            let Some((key, after)) = rest.split_once('=') else {
                break;
            };
            let (value, next) = if let Some(quoted) = after.strip_prefix('"') {
                match quoted.find('"') {
                    Some(end) => (&quoted[..end], &quoted[end + 1..]),
                    None => (quoted, ""),
                }
            } else {
                after.split_once(',').unwrap_or((after, ""))
            };
            params.push((key.trim().to_ascii_lowercase(), value.to_string()));
            rest = next;
        }
        Challenge {
            scheme: scheme.to_string(),
            params,
        }
    }
}

/// The `auths` key `kiln login HOST` writes.
pub fn stored_key(host: &str) -> String {
    server_key(host)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges_parse_scheme_and_params() {
        let c = Challenge::parse(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:a:pull""#,
        );
        assert_eq!(c.scheme, "Bearer");
        assert_eq!(
            c.params[0],
            ("realm".into(), "https://auth.docker.io/token".into())
        );
        assert_eq!(c.params[1], ("service".into(), "registry.docker.io".into()));
        assert_eq!(c.params.len(), 3);
        let c = Challenge::parse(r#"Basic realm="Registry Realm""#);
        assert_eq!(c.scheme, "Basic");
        assert_eq!(c.params, vec![("realm".into(), "Registry Realm".into())]);
    }

    #[test]
    fn login_arguments_name_hosts() {
        assert_eq!(registry_host("localhost:5000").unwrap(), "localhost:5000");
        assert_eq!(registry_host("https://R.io/v2/").unwrap(), "r.io");
        assert_eq!(registry_host("index.docker.io").unwrap(), "docker.io");
        assert!(registry_host("").is_err());
        assert!(registry_host("a b").is_err());
        assert_eq!(stored_key("docker.io"), super::super::auth::DOCKER_HUB_KEY);
    }
}
