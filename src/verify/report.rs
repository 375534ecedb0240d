//! Rendering a [`DiffReport`]: short indented text, most important first
//! (digests, then config fields, then layers and their files), or JSON.

use super::diff::{DiffReport, FieldDiff, FileDiff, LayerDiff, PlatformDiff};
use serde_json::Value;
use std::fmt::Write as _;

/// Files listed per layer in text; JSON lists all.
const MAX_FILES: usize = 25;

/// The report as pretty JSON (field names are stable; see the module doc
/// of [`super`]).
pub fn json(r: &DiffReport) -> String {
    serde_json::to_string_pretty(r).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
}

fn val(v: &Value) -> String {
    match v {
        Value::Null => "(none)".into(),
        Value::String(s) if s.starts_with("sha256:") => s.clone(),
        Value::String(s) => format!("{s:?}"),
        other => {
            let s = other.to_string();
            if s.len() > 200 {
                format!("{}…", &s[..s.floor_char_boundary(200)])
            } else {
                s
            }
        }
    }
}

fn field_line(out: &mut String, indent: &str, prefix: &str, f: &FieldDiff) {
    let _ = writeln!(
        out,
        "{indent}{prefix}{}: {} vs {}",
        f.field,
        val(&f.a),
        val(&f.b)
    );
}

/// The human report.
pub fn text(r: &DiffReport) -> String {
    let mut out = String::new();
    let d = |s: &Option<String>| s.clone().unwrap_or_else(|| "no manifest digest".into());
    let _ = writeln!(out, "A: {} ({})", r.a.reference, d(&r.a.digest));
    let _ = writeln!(out, "B: {} ({})", r.b.reference, d(&r.b.digest));
    if r.identical {
        out += "identical\n";
        for n in &r.notes {
            let _ = writeln!(out, "  note: {n}");
        }
        return out;
    }
    out += "images differ:\n";
    if r.a.digest.is_some() && r.b.digest.is_some() {
        let _ = writeln!(out, "  digest: {} vs {}", d(&r.a.digest), d(&r.b.digest));
    }
    for n in &r.notes {
        let _ = writeln!(out, "  note: {n}");
    }
    for f in &r.index {
        field_line(&mut out, "  ", "index: ", f);
    }
    let many = r.platforms.len() > 1 || !r.index.is_empty();
    for p in &r.platforms {
        let indent = if many {
            let _ = writeln!(out, "  platform {}:", p.platform);
            "    "
        } else {
            "  "
        };
        platform(&mut out, indent, p);
    }
    out
}

fn platform(out: &mut String, indent: &str, p: &PlatformDiff) {
    if let Some(which) = &p.only_in {
        let _ = writeln!(out, "{indent}only in {}", which.to_uppercase());
        return;
    }
    if let Some(f) = &p.manifest_digest {
        field_line(out, indent, "", f);
    }
    for f in &p.manifest {
        field_line(out, indent, "manifest: ", f);
    }
    if let Some(f) = &p.config_digest {
        field_line(out, indent, "", f);
    }
    for f in &p.config {
        field_line(out, indent, "config: ", f);
    }
    for l in &p.layers {
        layer(out, indent, l);
    }
}

fn layer(out: &mut String, indent: &str, l: &LayerDiff) {
    let step = match (&l.created_by, &l.created_by_b) {
        (Some(a), Some(b)) => format!(" ({a} vs {b})"),
        (Some(a), None) => format!(" ({a})"),
        _ => String::new(),
    };
    let desc = |s: &Option<super::diff::LayerSummary>| match s {
        Some(s) => format!("{} ({} bytes)", s.digest, s.size),
        None => "(none)".into(),
    };
    let _ = writeln!(
        out,
        "{indent}layer {}{step}: {} vs {}",
        l.layer,
        desc(&l.a),
        desc(&l.b)
    );
    let inner = format!("{indent}  ");
    if l.compression_only {
        let _ = writeln!(
            out,
            "{inner}same uncompressed tar; only the compression differs:"
        );
    }
    for f in &l.compression {
        field_line(out, &inner, "", f);
    }
    for f in &l.tar {
        field_line(out, &inner, "tar: ", f);
    }
    for f in l.files.iter().take(MAX_FILES) {
        file(out, &inner, f);
    }
    if l.files.len() > MAX_FILES {
        let _ = writeln!(
            out,
            "{inner}... and {} more files (--format json lists all)",
            l.files.len() - MAX_FILES
        );
    }
}

fn file(out: &mut String, indent: &str, f: &FileDiff) {
    match f.change {
        "added" => {
            let _ = writeln!(out, "{indent}{}: only in B", f.path);
            return;
        }
        "removed" => {
            let _ = writeln!(out, "{indent}{}: only in A", f.path);
            return;
        }
        _ => {}
    }
    let parts: Vec<String> = f
        .fields
        .iter()
        .map(|x| {
            if x.field == "content" {
                let g = |v: &Value, k: &str| {
                    v.get(k)
                        .map(|x| x.to_string().trim_matches('"').to_string())
                        .unwrap_or_default()
                };
                format!(
                    "content differs ({} vs {} bytes, {} vs {})",
                    g(&x.a, "size"),
                    g(&x.b, "size"),
                    g(&x.a, "sha256"),
                    g(&x.b, "sha256")
                )
            } else {
                format!("{} {} vs {}", x.field, val(&x.a), val(&x.b))
            }
        })
        .collect();
    let _ = writeln!(out, "{indent}{}: {}", f.path, parts.join("; "));
    if let Some(ld) = &f.first_difference {
        let s = |x: &Option<String>| {
            x.as_ref()
                .map_or("(end of file)".to_string(), |l| format!("{l:?}"))
        };
        let _ = writeln!(
            out,
            "{indent}  first difference at line {}: {} vs {}",
            ld.line,
            s(&ld.a),
            s(&ld.b)
        );
    }
}
