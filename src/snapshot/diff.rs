//! The difference between two states of a root filesystem, as the entries
//! of one layer: what a RUN step changed.
//!
//! Works on kiln's records (path -> kind and metadata), never by rehashing
//! the tree: the runtime reports which files it wrote, and everything else
//! is compared by kind, metadata, size and link target.

use super::rootfs::{Node, NodeKind};
use super::{Content, Entry, EntryKind, ImagePath};
use std::collections::{BTreeMap, BTreeSet};

/// The layer entries that turn `before` into `after`.
///
/// - `written`: files whose bytes were written (their content differs even
///   if size and metadata do not).
/// - `content`: where the bytes of a file in `after` are, for the layer writer.
///
/// Deleted paths become whiteouts (one for a deleted directory, not one per
/// child); a path whose kind changed is written again; every parent of a
/// changed path is included with its current metadata, before its children.
pub fn diff(
    before: &BTreeMap<ImagePath, Node>,
    after: &BTreeMap<ImagePath, Node>,
    written: &BTreeSet<ImagePath>,
    content: impl Fn(&ImagePath) -> Content,
) -> Vec<Entry> {
    let mut out: BTreeMap<ImagePath, Entry> = BTreeMap::new();
    let mut changed: Vec<ImagePath> = Vec::new();

    for (path, node) in after {
        if path.is_root() {
            continue;
        }
        let differs = match before.get(path) {
            None => true,
            Some(old) => {
                old.meta != node.meta
                    || old.kind != node.kind
                    || (matches!(node.kind, NodeKind::File { .. }) && written.contains(path))
            }
        };
        if differs {
            out.insert(path.clone(), entry(path, node, &content));
            changed.push(path.clone());
        }
    }

    // Deletions: the topmost deleted path only, and nothing under a path
    // that `after` replaced with a non-directory (the new entry covers it).
    for path in before.keys() {
        if path.is_root() || after.contains_key(path) {
            continue;
        }
        let covered = path.ancestors().iter().any(|a| {
            !after.contains_key(a)
                || after.get(a).is_some_and(|n| {
                    n.kind != NodeKind::Dir
                        && before.get(a).is_some_and(|o| o.kind == NodeKind::Dir)
                })
        });
        if !covered {
            out.insert(
                path.clone(),
                Entry {
                    path: path.clone(),
                    kind: EntryKind::Whiteout,
                    meta: before[path].meta,
                },
            );
            changed.push(path.clone());
        }
    }

    // Parents first: unchanged ancestors join the layer as they are now.
    for path in changed {
        for parent in path.ancestors() {
            if out.contains_key(&parent) {
                continue;
            }
            if let Some(node) = after.get(&parent) {
                out.insert(parent.clone(), entry(&parent, node, &content));
            }
        }
    }
    out.into_values().collect()
}

/// Directories a step removed and made again (`rm -rf d && mkdir d`)
/// become opaque in the layer: the directory, its opaque marker and its
/// whole current subtree, instead of one whiteout per old child.
pub fn opaque_replaced(
    entries: Vec<Entry>,
    before: &BTreeMap<ImagePath, Node>,
    after: &BTreeMap<ImagePath, Node>,
    replaced: &BTreeSet<ImagePath>,
    content: impl Fn(&ImagePath) -> Content,
) -> Vec<Entry> {
    let is_dir = |t: &BTreeMap<ImagePath, Node>, p: &ImagePath| {
        t.get(p).is_some_and(|n| n.kind == NodeKind::Dir)
    };
    let mut dirs: Vec<&ImagePath> = Vec::new();
    for d in replaced {
        let outermost = !dirs.iter().any(|o| d.starts_with(o));
        if !d.is_root() && outermost && is_dir(before, d) && is_dir(after, d) {
            dirs.push(d);
        }
    }
    if dirs.is_empty() {
        return entries;
    }
    let under = |p: &ImagePath| dirs.iter().any(|d| p.starts_with(d) && p != *d);
    let mut out: Vec<Entry> = entries
        .into_iter()
        .filter(|e| !under(&e.path) && !dirs.contains(&&e.path))
        .collect();
    for d in dirs {
        let node = &after[d];
        out.push(entry(d, node, &content));
        out.push(Entry {
            path: d.clone(),
            kind: EntryKind::Opaque,
            meta: node.meta,
        });
        for (p, n) in after.range(d.clone()..).skip(1) {
            if !p.starts_with(d) {
                break;
            }
            out.push(entry(p, n, &content));
        }
    }
    // Parents before children, a directory before its opaque marker.
    out.sort_by(|a, b| {
        a.path
            .cmp(&b.path)
            .then(matches!(a.kind, EntryKind::Opaque).cmp(&matches!(b.kind, EntryKind::Opaque)))
    });
    out
}

fn entry(path: &ImagePath, node: &Node, content: &impl Fn(&ImagePath) -> Content) -> Entry {
    node.to_entry(path, || content(path))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::Meta;
    use std::sync::Arc;

    fn p(s: &str) -> ImagePath {
        ImagePath::parse(s).unwrap()
    }

    fn dir() -> Node {
        Node {
            kind: NodeKind::Dir,
            meta: Meta::new(0o755),
        }
    }

    fn file(size: u64) -> Node {
        Node {
            kind: NodeKind::File { size },
            meta: Meta::new(0o644),
        }
    }

    fn tree(items: &[(&str, Node)]) -> BTreeMap<ImagePath, Node> {
        let mut t: BTreeMap<ImagePath, Node> =
            items.iter().map(|(k, n)| (p(k), n.clone())).collect();
        t.insert(ImagePath::root(), dir());
        t
    }

    fn summary(entries: &[Entry]) -> Vec<String> {
        entries
            .iter()
            .map(|e| {
                let k = match &e.kind {
                    EntryKind::Dir => "dir",
                    EntryKind::File { .. } => "file",
                    EntryKind::Symlink { .. } => "link",
                    EntryKind::Whiteout => "whiteout",
                    _ => "other",
                };
                format!("{k} {}", e.path.as_str())
            })
            .collect()
    }

    fn no_content(_: &ImagePath) -> Content {
        Content::Inline(Arc::from(&b""[..]))
    }

    #[test]
    fn unchanged_tree_gives_an_empty_layer() {
        let t = tree(&[("etc", dir()), ("etc/passwd", file(10))]);
        assert!(diff(&t, &t, &BTreeSet::new(), no_content).is_empty());
    }

    #[test]
    fn additions_changes_and_parents() {
        let before = tree(&[("etc", dir()), ("etc/passwd", file(10)), ("usr", dir())]);
        let mut chmodded = file(10);
        chmodded.meta.mode = 0o600;
        let after = tree(&[
            ("etc", dir()),
            ("etc/passwd", chmodded),
            ("usr", dir()),
            ("usr/bin", dir()),
            ("usr/bin/tool", file(3)),
        ]);
        let got = summary(&diff(&before, &after, &BTreeSet::new(), no_content));
        assert_eq!(
            got,
            [
                "dir etc",
                "file etc/passwd",
                "dir usr",
                "dir usr/bin",
                "file usr/bin/tool"
            ]
        );
    }

    #[test]
    fn content_writes_count_even_with_the_same_size_and_metadata() {
        let t = tree(&[("a", file(5)), ("b", file(5))]);
        let written: BTreeSet<_> = [p("b")].into();
        assert_eq!(summary(&diff(&t, &t, &written, no_content)), ["file b"]);
    }

    #[test]
    fn deletions_are_whiteouts_of_the_topmost_path_only() {
        let before = tree(&[
            ("keep", dir()),
            ("keep/gone.txt", file(1)),
            ("tmp", dir()),
            ("tmp/a", dir()),
            ("tmp/a/b", file(1)),
        ]);
        let after = tree(&[("keep", dir())]);
        let got = summary(&diff(&before, &after, &BTreeSet::new(), no_content));
        assert_eq!(got, ["dir keep", "whiteout keep/gone.txt", "whiteout tmp"]);
    }

    #[test]
    fn a_directory_replaced_by_a_file_needs_no_whiteouts_below_it() {
        let before = tree(&[("x", dir()), ("x/child", file(1))]);
        let after = tree(&[("x", file(2))]);
        let got = summary(&diff(&before, &after, &BTreeSet::new(), no_content));
        assert_eq!(got, ["file x"]);
    }

    #[test]
    fn a_replaced_directory_becomes_opaque_with_its_new_subtree() {
        let before = tree(&[
            ("d", dir()),
            ("d/old", file(1)),
            ("d/keep", file(2)),
            ("e", file(3)),
        ]);
        let after = tree(&[
            ("d", dir()),
            ("d/keep", file(2)),
            ("d/new", dir()),
            ("e", file(3)),
        ]);
        let entries = diff(&before, &after, &BTreeSet::new(), |_| {
            Content::Inline(Arc::from(&b""[..]))
        });
        let replaced: BTreeSet<ImagePath> = [p("d")].into();
        let out = opaque_replaced(entries, &before, &after, &replaced, |_| {
            Content::Inline(Arc::from(&b""[..]))
        });
        let shown: Vec<(String, &str)> = out
            .iter()
            .map(|e| {
                let k = match e.kind {
                    EntryKind::Opaque => "opaque",
                    EntryKind::Whiteout => "whiteout",
                    EntryKind::Dir => "dir",
                    _ => "file",
                };
                (e.path.to_absolute(), k)
            })
            .collect();
        assert_eq!(
            shown,
            vec![
                ("/d".to_string(), "dir"),
                ("/d".to_string(), "opaque"),
                ("/d/keep".to_string(), "file"),
                ("/d/new".to_string(), "dir"),
            ]
        );
    }
}
