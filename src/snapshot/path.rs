//! Normalised image paths and their depth-first order.

use std::cmp::Ordering;
use std::fmt;

/// A path inside an image, relative to `/`: no leading or trailing `/`, no
/// empty, `.` or `..` components. The root is the empty path.
///
/// Ordering is depth-first with children sorted bytewise by name, which is
/// the order entries appear in kiln's layers: `a` < `a/b` < `a.txt`.
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub struct ImagePath(String);

#[derive(Debug, thiserror::Error)]
#[error("invalid path {0:?} in image: {1}")]
pub struct InvalidImagePath(pub String, pub &'static str);

impl ImagePath {
    pub fn root() -> ImagePath {
        ImagePath(String::new())
    }

    /// Resolves `path` lexically against `base` the way a Linux process with
    /// working directory `base` would, except that `..` stops at `/` (chroot
    /// semantics). Absolute paths ignore `base`.
    pub fn resolve(base: &ImagePath, path: &str) -> ImagePath {
        let mut parts: Vec<&str> = if path.starts_with('/') {
            Vec::new()
        } else {
            base.components().collect()
        };
        for part in path.split('/') {
            match part {
                "" | "." => {}
                ".." => {
                    parts.pop();
                }
                p => parts.push(p),
            }
        }
        ImagePath(parts.join("/"))
    }

    /// Parses an already-normalised relative path (as found in kiln's own
    /// records); rejects anything that is not.
    pub fn parse(s: &str) -> Result<ImagePath, InvalidImagePath> {
        if s.is_empty() {
            return Ok(ImagePath::root());
        }
        if s.contains('\0') {
            return Err(InvalidImagePath(s.into(), "contains a NUL byte"));
        }
        if s.split('/').any(|c| c.is_empty() || c == "." || c == "..") {
            return Err(InvalidImagePath(
                s.into(),
                "not normalised (empty, '.' or '..' component, or leading/trailing '/')",
            ));
        }
        Ok(ImagePath(s.to_string()))
    }

    pub fn is_root(&self) -> bool {
        self.0.is_empty()
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The path with a leading `/`, as users write it.
    pub fn to_absolute(&self) -> String {
        format!("/{}", self.0)
    }

    pub fn components(&self) -> impl Iterator<Item = &str> {
        self.0.split('/').filter(|c| !c.is_empty())
    }

    pub fn file_name(&self) -> Option<&str> {
        if self.is_root() {
            None
        } else {
            self.0.rsplit('/').next()
        }
    }

    pub fn parent(&self) -> Option<ImagePath> {
        if self.is_root() {
            return None;
        }
        Some(match self.0.rfind('/') {
            Some(i) => ImagePath(self.0[..i].to_string()),
            None => ImagePath::root(),
        })
    }

    /// Appends one component (which must not contain `/`).
    pub fn join(&self, name: &str) -> ImagePath {
        debug_assert!(!name.is_empty() && !name.contains('/') && name != "." && name != "..");
        if self.is_root() {
            ImagePath(name.to_string())
        } else {
            ImagePath(format!("{}/{}", self.0, name))
        }
    }

    /// Every proper ancestor from the first component down, root excluded:
    /// `a/b/c` gives `a`, `a/b`.
    pub fn ancestors(&self) -> Vec<ImagePath> {
        let mut out = Vec::new();
        let mut cur = self.parent();
        while let Some(p) = cur {
            if p.is_root() {
                break;
            }
            cur = p.parent();
            out.push(p);
        }
        out.reverse();
        out
    }

    pub fn starts_with(&self, prefix: &ImagePath) -> bool {
        prefix.is_root()
            || self.0 == prefix.0
            || (self.0.starts_with(&prefix.0) && self.0.as_bytes()[prefix.0.len()] == b'/')
    }
}

impl Ord for ImagePath {
    fn cmp(&self, other: &Self) -> Ordering {
        // '/' sorts before every other byte: that is depth-first order.
        let key = |b: &u8| if *b == b'/' { 0u8 } else { *b };
        self.0
            .as_bytes()
            .iter()
            .map(key)
            .cmp(other.0.as_bytes().iter().map(key))
    }
}

impl PartialOrd for ImagePath {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for ImagePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "/{}", self.0)
    }
}

impl fmt::Debug for ImagePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.to_absolute())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> ImagePath {
        ImagePath::parse(s).unwrap()
    }

    #[test]
    fn order_is_depth_first_with_bytewise_children() {
        let mut v = [p("a.txt"), p("a/b"), p("a"), p("B"), p("a/b/c"), p("a-")];
        v.sort();
        let got: Vec<_> = v.iter().map(|x| x.as_str()).collect();
        assert_eq!(got, ["B", "a", "a/b", "a/b/c", "a-", "a.txt"]);
    }

    #[test]
    fn resolve_stops_dotdot_at_root() {
        let base = p("usr/src");
        assert_eq!(
            ImagePath::resolve(&base, "../../../etc/x").as_str(),
            "etc/x"
        );
        assert_eq!(
            ImagePath::resolve(&base, "app/./y/").as_str(),
            "usr/src/app/y"
        );
        assert_eq!(ImagePath::resolve(&base, "/").as_str(), "");
    }

    #[test]
    fn parse_rejects_unnormalised_paths() {
        for bad in ["/a", "a/", "a//b", "./a", "a/../b"] {
            assert!(ImagePath::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ancestors_and_prefixes() {
        let x = p("a/b/c");
        let anc: Vec<_> = x.ancestors().into_iter().map(|a| a.0).collect();
        assert_eq!(anc, ["a", "a/b"]);
        assert!(x.starts_with(&p("a/b")));
        assert!(!p("a/bc").starts_with(&p("a/b")));
    }
}
