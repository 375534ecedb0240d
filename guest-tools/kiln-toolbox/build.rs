//! Generates the dispatch table from `applets.txt`, the one list of applets
//! that kiln-runtime also reads, and checks that it names exactly the applet
//! crates `Cargo.toml` depends on, so the list and the binary cannot drift.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::Path;

/// Dependencies that are not applets but libraries the applets use.
const LIBRARIES: &[&str] = &["uucore", "tempfile", "libc", "tar", "flate2", "regex"];

fn main() {
    let dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let dir = Path::new(&dir);
    println!("cargo:rerun-if-changed=applets.txt");
    println!("cargo:rerun-if-changed=Cargo.toml");
    let list = read(&dir.join("applets.txt"));
    let manifest = read(&dir.join("Cargo.toml"));

    let mut applets = Vec::new();
    let mut wrapped = Vec::new();
    for (n, line) in list.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (name, module, locale, wraps) = match fields[..] {
            [name, module, locale] => (name, module, locale, None),
            [name, module, locale, wraps] => (name, module, locale, Some(wraps)),
            _ => panic!(
                "applets.txt:{}: want NAME MODULE LOCALE [WRAPS], got {line:?}",
                n + 1
            ),
        };
        applets.push((name, module, locale));
        if let Some(w) = wraps {
            wrapped.push(w);
        }
    }
    applets.sort();

    // The toolbox's own applets (`crate::...`) are no dependency; the crates
    // they wrap are.
    let listed: BTreeSet<&str> = applets
        .iter()
        .map(|(_, module, _)| module.split("::").next().unwrap_or(module))
        .filter(|c| *c != "crate")
        .chain(wrapped.iter().copied())
        .collect();
    let depended: BTreeSet<&str> = dependencies(&manifest)
        .into_iter()
        .filter(|c| !LIBRARIES.contains(c))
        .collect();
    if listed != depended {
        panic!(
            "applets.txt and Cargo.toml disagree: only in applets.txt {:?}, only in Cargo.toml {:?}",
            listed.difference(&depended).collect::<Vec<_>>(),
            depended.difference(&listed).collect::<Vec<_>>()
        );
    }

    let mut out =
        String::from("/// Every applet, sorted by name.\nstatic APPLETS: &[Applet] = &[\n");
    for (name, module, locale) in &applets {
        let locale = if *locale == "-" {
            "None".to_owned()
        } else {
            format!("Some({locale:?})")
        };
        writeln!(
            out,
            "    Applet {{ name: {name:?}, locale: {locale}, run: |args| {module}::uumain(args.into_iter()) }},"
        )
        .expect("writing to a String");
    }
    out.push_str("];\n");
    let out_dir = std::env::var("OUT_DIR").expect("cargo sets OUT_DIR");
    std::fs::write(Path::new(&out_dir).join("applets.rs"), out).expect("cannot write applets.rs");
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// Crate names of the `[dependencies]` table (`name = ...` lines).
fn dependencies(manifest: &str) -> Vec<&str> {
    let mut in_deps = false;
    let mut deps = Vec::new();
    for line in manifest.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_deps = line == "[dependencies]";
        } else if in_deps && !line.starts_with('#') {
            if let Some((name, _)) = line.split_once('=') {
                deps.push(name.trim());
            }
        }
    }
    deps
}
