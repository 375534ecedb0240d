//! Image references (`name[:tag][@digest]`) with Docker Hub's naming rules:
//! `alpine` is `docker.io/library/alpine:latest`, `user/app` is
//! `docker.io/user/app:latest`, and the first component is a registry host
//! only when it contains `.` or `:` or is `localhost`.
//!
//! Parsing is oci-spec's (the grammar of the distribution reference); this
//! wrapper adds kiln's digest type and errors that say what was wrong.

use crate::digest::Digest;
use oci_client::Reference;
use std::fmt;

/// The host Docker Hub's images are named under.
pub const DOCKER_HUB: &str = "docker.io";

#[derive(Debug, thiserror::Error)]
pub enum ReferenceError {
    #[error("invalid image reference {input:?}: {why}")]
    Invalid { input: String, why: String },
}

/// A parsed, normalised image reference.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageRef {
    inner: Reference,
    digest: Option<Digest>,
}

impl ImageRef {
    pub fn parse(input: &str) -> Result<ImageRef, ReferenceError> {
        let bad = |why: String| ReferenceError::Invalid {
            input: input.to_string(),
            why,
        };
        if input.is_empty() {
            return Err(bad("empty reference".into()));
        }
        if input.contains("://") {
            return Err(bad(
                "a reference has no scheme (write registry.example/repo:tag)".into(),
            ));
        }
        if input.trim() != input || input.chars().any(char::is_whitespace) {
            return Err(bad("references contain no whitespace".into()));
        }
        let inner: Reference = input.parse().map_err(|e| bad(format!("{e}")))?;
        if inner.repository().bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(bad("repository names must be lowercase".into()));
        }
        let digest = match inner.digest() {
            None => None,
            Some(d) => Some(d.parse::<Digest>().map_err(|_| {
                bad(format!(
                    "digest {d:?} is not a sha256 digest (sha256:<64 hex digits>)"
                ))
            })?),
        };
        Ok(ImageRef { inner, digest })
    }

    /// The registry host as written (`docker.io` for Docker Hub).
    pub fn registry(&self) -> &str {
        self.inner.registry()
    }

    /// The host kiln connects to (`index.docker.io` for Docker Hub).
    pub fn api_host(&self) -> &str {
        self.inner.resolve_registry()
    }

    pub fn repository(&self) -> &str {
        self.inner.repository()
    }

    /// The tag; `latest` is implied only when there is no digest either.
    pub fn tag(&self) -> Option<&str> {
        self.inner.tag()
    }

    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }

    /// The same repository at another digest (a platform's manifest).
    pub fn with_digest(&self, digest: &Digest) -> ImageRef {
        ImageRef {
            inner: self.inner.clone_with_digest(digest.to_string()),
            digest: Some(digest.clone()),
        }
    }

    pub(crate) fn oci(&self) -> &Reference {
        &self.inner
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.inner.whole())
    }
}

impl std::str::FromStr for ImageRef {
    type Err = ReferenceError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ImageRef::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn p(s: &str) -> ImageRef {
        ImageRef::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn docker_hub_names_are_normalised() {
        let r = p("alpine");
        assert_eq!(
            (r.registry(), r.repository(), r.tag()),
            ("docker.io", "library/alpine", Some("latest"))
        );
        assert_eq!(r.api_host(), "index.docker.io");
        assert_eq!(r.to_string(), "docker.io/library/alpine:latest");
        let r = p("user/app:1.2");
        assert_eq!(
            (r.registry(), r.repository(), r.tag()),
            ("docker.io", "user/app", Some("1.2"))
        );
        let r = p("docker.io/library/debian:bookworm");
        assert_eq!(r.repository(), "library/debian");
    }

    #[test]
    fn the_first_component_is_a_host_only_with_a_dot_colon_or_localhost() {
        let r = p("localhost/app");
        assert_eq!((r.registry(), r.repository()), ("localhost", "app"));
        let r = p("localhost:5000/x/y:t");
        assert_eq!(
            (r.registry(), r.repository(), r.tag()),
            ("localhost:5000", "x/y", Some("t"))
        );
        let r = p("ghcr.io/o/r");
        assert_eq!((r.registry(), r.repository()), ("ghcr.io", "o/r"));
        let r = p("127.0.0.1:5000/repo");
        assert_eq!(r.api_host(), "127.0.0.1:5000");
        // No dot, colon or localhost: a Docker Hub user.
        let r = p("myhost/app");
        assert_eq!((r.registry(), r.repository()), ("docker.io", "myhost/app"));
    }

    #[test]
    fn digests_are_kept_and_pin_the_image() {
        let r = p(&format!("localhost:5000/x@{D}"));
        assert_eq!(r.digest().map(|d| d.to_string()).as_deref(), Some(D));
        assert_eq!(r.tag(), None);
        let r = p(&format!("alpine:3.20@{D}"));
        assert_eq!(r.tag(), Some("3.20"));
        assert!(r.digest().is_some());
        let other = Digest::of(b"x");
        assert_eq!(r.with_digest(&other).digest(), Some(&other));
    }

    #[test]
    fn bad_references_are_refused_with_the_input_named() {
        for bad in [
            "",
            "UPPER/case",
            "alpine:",
            "a b",
            "https://example.com/x",
            "x@sha256:short",
            "x@md5:0123456789abcdef0123456789abcdef",
            ":tag",
            "repo//double",
        ] {
            let err = ImageRef::parse(bad).expect_err(bad).to_string();
            assert!(err.contains("invalid image reference"), "{bad}: {err}");
            assert!(err.contains(&format!("{bad:?}")), "{bad}: {err}");
        }
    }
}
