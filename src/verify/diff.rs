//! Comparing two opened images down to the cause: index, manifest and
//! config fields, then layer by layer (named by the Dockerfile step that
//! made it) compression, file and tar-level differences.

use super::fields;
pub use super::fields::FieldDiff;
use super::layer::{scan, FileEntry, LayerScan};
use super::source::{Image, LayerRef, PlatformImage, SourceError, SourceKind};
use super::text::{first_difference, looks_like_text, LineDiff};
use serde::Serialize;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};

/// One side of a comparison.
#[derive(Clone, Debug, Serialize)]
pub struct Side {
    pub reference: String,
    pub kind: SourceKind,
    /// The digest of what the reference names (index or manifest).
    pub digest: Option<String>,
}

/// Everything found; see the [`super`] module doc for the JSON shape.
#[derive(Clone, Debug, Serialize)]
pub struct DiffReport {
    pub identical: bool,
    pub a: Side,
    pub b: Side,
    /// Differences and remarks that belong to no field.
    pub notes: Vec<String>,
    /// Fields of the top index (its `manifests` list is compared per platform).
    pub index: Vec<FieldDiff>,
    pub platforms: Vec<PlatformDiff>,
}

#[derive(Clone, Debug, Serialize)]
pub struct PlatformDiff {
    pub platform: String,
    /// `"a"` or `"b"` when only that image has this platform.
    pub only_in: Option<String>,
    pub manifest_digest: Option<FieldDiff>,
    pub manifest: Vec<FieldDiff>,
    pub config_digest: Option<FieldDiff>,
    pub config: Vec<FieldDiff>,
    pub layers: Vec<LayerDiff>,
}

impl PlatformDiff {
    pub fn differs(&self) -> bool {
        self.only_in.is_some()
            || self.manifest_digest.is_some()
            || !self.manifest.is_empty()
            || self.config_digest.is_some()
            || !self.config.is_empty()
            || !self.layers.is_empty()
    }
}

/// A layer's descriptor and what its tar hashes to.
#[derive(Clone, Debug, Serialize)]
pub struct LayerSummary {
    pub digest: String,
    pub size: u64,
    pub media_type: String,
    pub diff_id: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct LayerDiff {
    /// 1-based position in the manifest.
    pub layer: usize,
    /// The history entry (Dockerfile step) that made the layer, from A's
    /// config, else B's.
    pub created_by: Option<String>,
    /// B's, when it says something else.
    pub created_by_b: Option<String>,
    pub a: Option<LayerSummary>,
    pub b: Option<LayerSummary>,
    /// Media type, gzip header fields, compressed size.
    pub compression: Vec<FieldDiff>,
    /// True when the uncompressed tars are identical.
    pub compression_only: bool,
    pub files: Vec<FileDiff>,
    /// Entry order, and remarks on the tar stream as a whole.
    pub tar: Vec<FieldDiff>,
}

#[derive(Clone, Debug, Serialize)]
pub struct FileDiff {
    pub path: String,
    /// `added` (only in B), `removed` (only in A) or `changed`.
    pub change: &'static str,
    pub fields: Vec<FieldDiff>,
    pub first_difference: Option<LineDiff>,
}

fn fd(field: &str, a: impl Into<Value>, b: impl Into<Value>) -> FieldDiff {
    FieldDiff {
        field: field.into(),
        a: a.into(),
        b: b.into(),
    }
}

fn side(img: &Image) -> Side {
    Side {
        reference: img.reference.clone(),
        kind: img.kind,
        digest: img.digest.as_ref().map(ToString::to_string),
    }
}

/// Compares `a` with `b`.
pub fn diff(a: &Image, b: &Image) -> Result<DiffReport, SourceError> {
    let mut report = DiffReport {
        identical: false,
        a: side(a),
        b: side(b),
        notes: Vec::new(),
        index: Vec::new(),
        platforms: Vec::new(),
    };
    if a.digest.is_some() && a.digest == b.digest {
        report.identical = true;
        return Ok(report);
    }
    for (img, name) in [(a, "A"), (b, "B")] {
        if img.kind == SourceKind::DockerArchive {
            report.notes.push(format!(
                "{name} is a docker archive, which keeps no manifest: manifests are not compared, \
                 config and layers are (by content, whatever their compression)"
            ));
        }
    }
    match (&a.index, &b.index) {
        (Some(ia), Some(ib)) => {
            let (va, vb) = (json_of(&ia.bytes), json_of(&ib.bytes));
            report.index = fields::diff(&va, &vb, &["manifests"]);
        }
        (Some(_), None) => report
            .notes
            .push("A is an index (multi-platform), B a single image".into()),
        (None, Some(_)) => report
            .notes
            .push("A is a single image, B an index (multi-platform)".into()),
        (None, None) => {}
    }
    let archive = [a.kind, b.kind].contains(&SourceKind::DockerArchive);
    for (pa, pb) in pair_platforms(a, b) {
        let p = match (pa, pb) {
            (Some(x), Some(y)) => {
                let mut p = compare_platform(a, x, b, y)?;
                // Docker archives conventionally hold uncompressed layers:
                // the same tar compressed otherwise is the same content.
                if archive {
                    p.layers.retain(|l| {
                        if l.compression_only {
                            report.notes.push(format!(
                                "layer {}: same tar, stored with other compression (docker archive)",
                                l.layer
                            ));
                        }
                        !l.compression_only
                    });
                }
                p
            }
            (Some(x), None) => only(&x.platform, "a"),
            (None, Some(y)) => only(&y.platform, "b"),
            (None, None) => continue,
        };
        if p.differs() {
            report.platforms.push(p);
        }
    }
    report.identical = report.index.is_empty()
        && report.platforms.is_empty()
        && !report.notes.iter().any(|n| n.contains("index"));
    Ok(report)
}

fn json_of(b: &[u8]) -> Value {
    serde_json::from_slice(b).unwrap_or(Value::Null)
}

fn only(platform: &str, which: &str) -> PlatformDiff {
    PlatformDiff {
        platform: platform.into(),
        only_in: Some(which.into()),
        manifest_digest: None,
        manifest: Vec::new(),
        config_digest: None,
        config: Vec::new(),
        layers: Vec::new(),
    }
}

/// Single images pair up whatever their platform (a changed architecture
/// is then a config difference); several pair by platform.
fn pair_platforms<'a>(
    a: &'a Image,
    b: &'a Image,
) -> Vec<(Option<&'a PlatformImage>, Option<&'a PlatformImage>)> {
    if let ([x], [y]) = (a.images.as_slice(), b.images.as_slice()) {
        return vec![(Some(x), Some(y))];
    }
    let mut out = Vec::new();
    for x in &a.images {
        out.push((Some(x), b.images.iter().find(|y| y.platform == x.platform)));
    }
    for y in &b.images {
        if !a.images.iter().any(|x| x.platform == y.platform) {
            out.push((None, Some(y)));
        }
    }
    out
}

/// `created_by` of the history entries that made layers, in layer order.
fn layer_steps(config: &Value) -> Vec<Option<String>> {
    config
        .get("history")
        .and_then(Value::as_array)
        .map(|h| {
            h.iter()
                .filter(|e| e.get("empty_layer").and_then(Value::as_bool) != Some(true))
                .map(|e| {
                    e.get("created_by")
                        .and_then(Value::as_str)
                        .map(str::to_string)
                })
                .collect()
        })
        .unwrap_or_default()
}

fn diff_ids(config: &Value) -> Vec<String> {
    config
        .pointer("/rootfs/diff_ids")
        .and_then(Value::as_array)
        .map(|v| {
            v.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

fn compare_platform(
    ia: &Image,
    a: &PlatformImage,
    ib: &Image,
    b: &PlatformImage,
) -> Result<PlatformDiff, SourceError> {
    let mut p = only(&a.platform, "");
    p.only_in = None;
    if a.platform != b.platform {
        p.platform = format!("{} vs {}", a.platform, b.platform);
    }
    if let (Some(ma), Some(mb)) = (&a.manifest, &b.manifest) {
        if ma.digest == mb.digest {
            return Ok(p);
        }
        p.manifest_digest = Some(fd(
            "manifest digest",
            ma.digest.to_string(),
            mb.digest.to_string(),
        ));
        let (va, vb) = (json_of(&ma.bytes), json_of(&mb.bytes));
        let mut skip: Vec<String> = vec!["config.digest".into(), "config.size".into()];
        let (na, nb) = (a.layers.len(), b.layers.len());
        if na == nb {
            for i in 0..na {
                skip.push(format!("layers[{i}].digest"));
                skip.push(format!("layers[{i}].size"));
            }
        } else {
            skip.push("layers".into());
            p.manifest.push(fd("layers (count)", na, nb));
        }
        let skip: Vec<&str> = skip.iter().map(String::as_str).collect();
        p.manifest.extend(fields::diff(&va, &vb, &skip));
    }
    let (ca, cb) = (json_of(&a.config.bytes), json_of(&b.config.bytes));
    if a.config.digest != b.config.digest {
        p.config_digest = Some(fd(
            "config digest",
            a.config.digest.to_string(),
            b.config.digest.to_string(),
        ));
        p.config = fields::diff(&ca, &cb, &["rootfs.diff_ids"]);
        let (da, db) = (diff_ids(&ca), diff_ids(&cb));
        if da.len() != db.len() {
            p.config
                .push(fd("rootfs.diff_ids (count)", da.len(), db.len()));
        }
    }
    let (sa, sb) = (layer_steps(&ca), layer_steps(&cb));
    let (da, db) = (diff_ids(&ca), diff_ids(&cb));
    for i in 0..a.layers.len().max(b.layers.len()) {
        let (la, lb) = (a.layers.get(i), b.layers.get(i));
        if let (Some(x), Some(y)) = (la, lb) {
            if x.digest == y.digest {
                continue;
            }
        }
        let step_a = sa.get(i).cloned().flatten();
        let step_b = sb.get(i).cloned().flatten();
        let mut d = LayerDiff {
            layer: i + 1,
            created_by: step_a.clone().or(step_b.clone()),
            created_by_b: step_b.filter(|s| step_a.as_ref().is_some_and(|a| a != s)),
            a: la.map(|l| summary(l, da.get(i))),
            b: lb.map(|l| summary(l, db.get(i))),
            compression: Vec::new(),
            compression_only: false,
            files: Vec::new(),
            tar: Vec::new(),
        };
        if let (Some(x), Some(y)) = (la, lb) {
            compare_layer(ia, x, ib, y, &mut d)?;
            // Unequal compressed bytes with nothing else to show are still
            // a difference (e.g. the same tar and header, another encoder).
        }
        p.layers.push(d);
    }
    Ok(p)
}

fn summary(l: &LayerRef, diff_id: Option<&String>) -> LayerSummary {
    LayerSummary {
        digest: l.digest.to_string(),
        size: l.size,
        media_type: l.media_type.clone(),
        diff_id: diff_id.cloned(),
    }
}

fn scan_layer(
    img: &Image,
    l: &LayerRef,
    keep: &BTreeSet<String>,
) -> Result<LayerScan, SourceError> {
    let r = img.open_layer(l)?;
    scan(r, keep).map_err(|e| SourceError {
        reference: img.reference.clone(),
        what: format!("reading layer {}: {e}", l.digest),
    })
}

fn compare_layer(
    ia: &Image,
    la: &LayerRef,
    ib: &Image,
    lb: &LayerRef,
    d: &mut LayerDiff,
) -> Result<(), SourceError> {
    let none = BTreeSet::new();
    let sa = scan_layer(ia, la, &none)?;
    let sb = scan_layer(ib, lb, &none)?;
    for (s, sum, which) in [(&sa, &mut d.a, "A"), (&sb, &mut d.b, "B")] {
        if let Some(sum) = sum {
            if let Some(declared) = &sum.diff_id {
                if *declared != s.diff_id.to_string() {
                    d.tar.push(fd(
                        &format!("{which}: config diff_id vs the layer's tar"),
                        declared.clone(),
                        s.diff_id.to_string(),
                    ));
                }
            }
            sum.diff_id = Some(s.diff_id.to_string());
        }
    }
    if sa.tar_error.is_some() || sb.tar_error.is_some() {
        d.tar.push(fd(
            "tar stream error (entries after it are not compared)",
            sa.tar_error.clone(),
            sb.tar_error.clone(),
        ));
    }
    if !la.media_type.is_empty() && !lb.media_type.is_empty() && la.media_type != lb.media_type {
        d.compression.push(fd(
            "media type",
            la.media_type.clone(),
            lb.media_type.clone(),
        ));
    }
    if sa.compression != sb.compression {
        d.compression
            .push(fd("compression", sa.compression, sb.compression));
    }
    if let (Some(ga), Some(gb)) = (&sa.gzip, &sb.gzip) {
        d.compression.extend(fields::diff(
            &json!({"gzip": ga}),
            &json!({"gzip": gb}),
            &[],
        ));
    }
    if sa.compressed_size != sb.compressed_size {
        d.compression.push(fd(
            "compressed size",
            sa.compressed_size,
            sb.compressed_size,
        ));
    }
    if sa.diff_id == sb.diff_id {
        d.compression_only = true;
        if d.compression.is_empty() {
            d.compression.push(fd(
                "compressed bytes (same header and size, another encoder or level)",
                la.digest.to_string(),
                lb.digest.to_string(),
            ));
        }
        return Ok(());
    }
    d.files = compare_entries(&sa.entries, &sb.entries);
    d.tar.extend(order_difference(&sa.entries, &sb.entries));
    let keep: BTreeSet<String> = d
        .files
        .iter()
        .filter(|f| f.change == "changed" && f.fields.iter().any(|x| x.field == "content"))
        .map(|f| f.path.clone())
        .collect();
    if !keep.is_empty() {
        let ka = scan_layer(ia, la, &keep)?;
        let kb = scan_layer(ib, lb, &keep)?;
        let content = |s: &LayerScan| -> BTreeMap<String, Vec<u8>> {
            s.entries
                .iter()
                .filter_map(|e| e.content.clone().map(|c| (e.path.clone(), c)))
                .collect()
        };
        let (ca, cb) = (content(&ka), content(&kb));
        for f in &mut d.files {
            if let (Some(x), Some(y)) = (ca.get(&f.path), cb.get(&f.path)) {
                if looks_like_text(x) && looks_like_text(y) {
                    f.first_difference =
                        first_difference(&String::from_utf8_lossy(x), &String::from_utf8_lossy(y));
                }
            }
        }
    }
    if d.files.is_empty() && d.tar.is_empty() {
        d.tar.push(fd(
            "uncompressed tar (every entry's fields are equal: header encoding, padding or end blocks differ)",
            sa.diff_id.to_string(),
            sb.diff_id.to_string(),
        ));
    }
    Ok(())
}

fn by_path(entries: &[FileEntry]) -> BTreeMap<&str, &FileEntry> {
    entries.iter().map(|e| (e.path.as_str(), e)).collect()
}

/// Added, removed and changed entries, in path order.
pub fn compare_entries(a: &[FileEntry], b: &[FileEntry]) -> Vec<FileDiff> {
    let (ma, mb) = (by_path(a), by_path(b));
    let paths: BTreeSet<&str> = ma.keys().chain(mb.keys()).copied().collect();
    let mut out = Vec::new();
    for p in paths {
        let (change, fields) = match (ma.get(p), mb.get(p)) {
            (Some(x), Some(y)) => ("changed", entry_fields(x, y)),
            (Some(x), None) => ("removed", vec![fd("kind", x.kind, Value::Null)]),
            (None, Some(y)) => ("added", vec![fd("kind", Value::Null, y.kind)]),
            (None, None) => continue,
        };
        if !fields.is_empty() {
            out.push(FileDiff {
                path: p.to_string(),
                change,
                fields,
                first_difference: None,
            });
        }
    }
    out
}

fn entry_fields(a: &FileEntry, b: &FileEntry) -> Vec<FieldDiff> {
    let mut out = Vec::new();
    if a.kind != b.kind {
        out.push(fd("kind", a.kind, b.kind));
    }
    if a.sha256 != b.sha256 || (a.kind == "file" && a.size != b.size) {
        let c = |e: &FileEntry| json!({"size": e.size, "sha256": e.sha256.as_ref().map(ToString::to_string)});
        out.push(fd("content", c(a), c(b)));
    }
    if a.mode != b.mode {
        out.push(fd(
            "mode",
            format!("{:04o}", a.mode),
            format!("{:04o}", b.mode),
        ));
    }
    for (name, x, y) in [
        ("uid", a.uid, b.uid),
        ("gid", a.gid, b.gid),
        ("mtime", a.mtime, b.mtime),
    ] {
        if x != y {
            out.push(fd(name, x, y));
        }
    }
    if a.uname != b.uname {
        out.push(fd("uname", a.uname.clone(), b.uname.clone()));
    }
    if a.gname != b.gname {
        out.push(fd("gname", a.gname.clone(), b.gname.clone()));
    }
    if a.link != b.link {
        out.push(fd("link", a.link.clone(), b.link.clone()));
    }
    if a.format != b.format {
        out.push(fd(
            "header format",
            a.format.to_string(),
            b.format.to_string(),
        ));
    }
    out.extend(fields::diff(
        &json!({"pax": a.pax}),
        &json!({"pax": b.pax}),
        &[],
    ));
    out
}

/// Where the order of the entries both tars have first differs.
pub fn order_difference(a: &[FileEntry], b: &[FileEntry]) -> Option<FieldDiff> {
    let (ma, mb) = (by_path(a), by_path(b));
    let common_a: Vec<&str> = a
        .iter()
        .map(|e| e.path.as_str())
        .filter(|p| mb.contains_key(p))
        .collect();
    let common_b: Vec<&str> = b
        .iter()
        .map(|e| e.path.as_str())
        .filter(|p| ma.contains_key(p))
        .collect();
    let i = common_a.iter().zip(&common_b).position(|(x, y)| x != y)?;
    Some(fd(
        &format!("entry order (first difference at common entry {})", i + 1),
        common_a[i],
        common_b[i],
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verify::layer::HeaderFormat;

    fn e(path: &str, mode: u32, content: &[u8]) -> FileEntry {
        FileEntry {
            path: path.into(),
            kind: "file",
            mode,
            uid: 0,
            gid: 0,
            uname: String::new(),
            gname: String::new(),
            mtime: 0,
            link: None,
            size: content.len() as u64,
            sha256: Some(crate::digest::Digest::of(content)),
            format: HeaderFormat::Ustar,
            pax: BTreeMap::new(),
            content: None,
        }
    }

    #[test]
    fn entries_are_added_removed_and_changed() {
        let a = [
            e("/a", 0o644, b"1"),
            e("/b", 0o644, b"x"),
            e("/c", 0o644, b""),
        ];
        let b = [
            e("/a", 0o755, b"1"),
            e("/b", 0o644, b"y"),
            e("/d", 0o644, b""),
        ];
        let d = compare_entries(&a, &b);
        let got: Vec<(&str, &str)> = d.iter().map(|f| (f.path.as_str(), f.change)).collect();
        assert_eq!(
            got,
            [
                ("/a", "changed"),
                ("/b", "changed"),
                ("/c", "removed"),
                ("/d", "added")
            ]
        );
        assert_eq!(d[0].fields[0].field, "mode");
        assert_eq!(d[0].fields[0].a, json!("0644"));
        assert_eq!(d[1].fields[0].field, "content");
    }

    #[test]
    fn order_differences_name_the_first_swapped_entry() {
        let a = [e("/a", 0, b""), e("/b", 0, b""), e("/c", 0, b"")];
        let b = [e("/a", 0, b""), e("/c", 0, b""), e("/b", 0, b"")];
        let d = order_difference(&a, &b).unwrap();
        assert_eq!((d.a, d.b), (json!("/b"), json!("/c")));
        assert!(order_difference(&a, &a).is_none());
    }
}
