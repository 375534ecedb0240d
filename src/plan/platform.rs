//! Target platforms (`os/arch[/variant]`) and the predefined platform ARGs.
//!
//! kiln's default platform is `linux/amd64` on every host, not the host's
//! own: RUN steps are WebAssembly, so the host architecture never matters,
//! and a host-dependent default would make the same Dockerfile produce
//! different digests on a laptop and on CI.

use std::fmt;
use std::str::FromStr;

#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    pub variant: Option<String>,
}

impl Platform {
    pub fn default_target() -> Platform {
        Platform {
            os: "linux".into(),
            architecture: "amd64".into(),
            variant: None,
        }
    }

    /// The predefined ARGs BuildKit offers for this platform, with the given
    /// prefix (`TARGET` or `BUILD`).
    pub fn args(&self, prefix: &str) -> Vec<(String, String)> {
        vec![
            (format!("{prefix}PLATFORM"), self.to_string()),
            (format!("{prefix}OS"), self.os.clone()),
            (format!("{prefix}ARCH"), self.architecture.clone()),
            (
                format!("{prefix}VARIANT"),
                self.variant.clone().unwrap_or_default(),
            ),
        ]
    }
}

impl Platform {
    /// How well an image's platform (`os`, `architecture`, `variant`, as an
    /// index entry or config states it) fits this one: `None` when it does
    /// not, 2 for an exact fit, 1 when this one names no variant and the
    /// image's is not the default. A missing variant equals the default one
    /// (arm64 v8, arm v7), as in containerd.
    pub fn match_score(&self, os: &str, architecture: &str, variant: Option<&str>) -> Option<u8> {
        if os != self.os || architecture != self.architecture {
            return None;
        }
        let default = match self.architecture.as_str() {
            "arm64" => Some("v8"),
            "arm" => Some("v7"),
            _ => None,
        };
        let norm = |v: Option<&str>| v.or(default).map(str::to_string);
        let have = norm(variant);
        match &self.variant {
            Some(_) if norm(self.variant.as_deref()) == have => Some(2),
            Some(_) => None,
            None if have == norm(None) => Some(2),
            None => Some(1),
        }
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
#[error(
    "invalid platform {0:?}: expected os/arch[/variant], for example linux/amd64 or linux/arm64/v8"
)]
pub struct InvalidPlatform(pub String);

impl FromStr for Platform {
    type Err = InvalidPlatform;

    /// Parses like containerd's platforms.Parse for the forms users write,
    /// normalising architecture aliases (x86_64 -> amd64, aarch64 -> arm64).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let lower = s.trim().to_ascii_lowercase();
        let parts: Vec<&str> = lower.split('/').collect();
        let bad = || InvalidPlatform(s.to_string());
        if parts.iter().any(|p| p.is_empty()) || parts.len() < 2 || parts.len() > 3 {
            return Err(bad());
        }
        let os = parts[0].to_string();
        if !os.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(bad());
        }
        let (architecture, mut variant) = match parts[1] {
            "x86_64" | "x86-64" | "amd64" => ("amd64", None),
            "aarch64" | "arm64" => ("arm64", None),
            "armhf" => ("arm", Some("v7".to_string())),
            "armel" => ("arm", Some("v6".to_string())),
            "i386" | "i686" | "386" => ("386", None),
            other if other.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') => (other, None),
            _ => return Err(bad()),
        };
        if let Some(v) = parts.get(2) {
            variant = Some(v.to_string());
        }
        // arm64/v8 is the default variant and is not written out.
        if architecture == "arm64" && variant.as_deref() == Some("v8") {
            variant = None;
        }
        Ok(Platform {
            os,
            architecture: architecture.to_string(),
            variant,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn match_scores_prefer_exact_variants() {
        let amd64: Platform = "linux/amd64".parse().unwrap();
        let arm64: Platform = "linux/arm64".parse().unwrap();
        let armv6: Platform = "linux/arm/v6".parse().unwrap();
        assert_eq!(amd64.match_score("linux", "amd64", None), Some(2));
        assert_eq!(amd64.match_score("linux", "arm64", None), None);
        assert_eq!(arm64.match_score("linux", "arm64", Some("v8")), Some(2));
        assert_eq!(arm64.match_score("linux", "arm64", Some("v9")), Some(1));
        assert_eq!(amd64.match_score("windows", "amd64", None), None);
        assert_eq!(armv6.match_score("linux", "arm", Some("v7")), None);
        assert_eq!(armv6.match_score("linux", "arm", Some("v6")), Some(2));
    }

    #[test]
    fn parses_and_normalises_common_forms() {
        let p: Platform = "linux/x86_64".parse().unwrap();
        assert_eq!(p.to_string(), "linux/amd64");
        let p: Platform = "linux/arm64/v8".parse().unwrap();
        assert_eq!(p.to_string(), "linux/arm64");
        let p: Platform = "linux/arm/v7".parse().unwrap();
        assert_eq!(p.variant.as_deref(), Some("v7"));
        for bad in [
            "linux",
            "",
            "linux//amd64",
            "linux/amd64/v1/x",
            "li nux/amd64",
        ] {
            assert!(bad.parse::<Platform>().is_err(), "{bad}");
        }
    }

    #[test]
    fn predefined_args_follow_buildkit_names() {
        let p: Platform = "linux/arm/v7".parse().unwrap();
        let args = p.args("TARGET");
        assert!(args.contains(&("TARGETPLATFORM".into(), "linux/arm/v7".into())));
        assert!(args.contains(&("TARGETARCH".into(), "arm".into())));
        assert!(args.contains(&("TARGETVARIANT".into(), "v7".into())));
    }
}
