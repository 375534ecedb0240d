//! Times kiln's layer writer against `tar --sort=name -cf - DIR | gzip -n -6 |
//! sha256sum` on a generated, deterministic ~200 MB mixed tree.
//!
//! Run: `reproducibility/bench-layer.sh [--runs N] [--levels 1,2,4,6] [--dir D]`
//! (or `cargo bench --bench bench_layer -- ...`). Each kiln run uses a fresh
//! store (cold: nothing cached); the page cache is warmed for both sides
//! first, so the comparison is CPU, not disk.

use kiln::oci::layer::{write_layer_tuned, LayerOptions, LEVEL};
use kiln::snapshot::{Content, Entry, EntryKind, ImagePath, Meta};
use kiln::store::BlobStore;
use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// xorshift64*: a fixed generator, so every run builds the same tree.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const WORDS: &[&str] = &[
    "fn", "let", "mut", "return", "struct", "impl", "self", "match", "Some", "None", "Ok", "Err",
    "if", "else", "for", "in", "while", "loop", "pub", "use", "crate", "mod", "const", "static",
    "the", "layer", "image", "digest", "config", "build", "value", "index", "data", "buffer",
    "error", "result", "string", "vector", "path", "file", "=", "{", "}", "(", ")", ";", "->", "&",
    "0", "1", "42", "0x1f", "//", "TODO",
];

fn text(rng: &mut Rng, size: usize) -> Vec<u8> {
    let mut v = Vec::with_capacity(size + 16);
    while v.len() < size {
        let indent = rng.below(4) as usize * 4;
        v.extend(std::iter::repeat_n(b' ', indent));
        for _ in 0..3 + rng.below(9) {
            v.extend_from_slice(WORDS[rng.below(WORDS.len() as u64) as usize].as_bytes());
            v.push(b' ');
        }
        v.push(b'\n');
    }
    v.truncate(size);
    v
}

/// Binary-like: runs of text (1/2), of low-entropy bytes (1/3), of noise
/// (1/6).
fn mixed(rng: &mut Rng, size: usize) -> Vec<u8> {
    let mut v = Vec::with_capacity(size + 8192);
    while v.len() < size {
        let run = 512 + rng.below(8192) as usize;
        match rng.below(6) {
            0..=2 => v.extend(text(rng, run)),
            3 | 4 => v.extend((0..run).map(|_| (rng.next() & 0x0f) as u8)),
            _ => v.extend((0..run / 8).flat_map(|_| rng.next().to_le_bytes())),
        }
    }
    v.truncate(size);
    v
}

/// About 200 MB: 20,000 small text files (~55 MB), 240 medium mixed files
/// (~80 MB), 3 large semi-compressible ones (~72 MB).
fn generate(root: &Path) -> std::io::Result<()> {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for i in 0..20_000u32 {
        let dir = root.join(format!("src/m{:02}/p{:02}", i % 40, (i / 40) % 25));
        fs::create_dir_all(&dir)?;
        let size = 200 + rng.below(5200) as usize;
        fs::write(dir.join(format!("f{i:05}.rs")), text(&mut rng, size))?;
    }
    fs::create_dir_all(root.join("lib"))?;
    for i in 0..240u32 {
        let size = 64 * 1024 + rng.below(600 * 1024) as usize;
        let f = root.join(format!("lib/lib{i:03}.so"));
        fs::write(&f, mixed(&mut rng, size))?;
        fs::set_permissions(&f, fs::Permissions::from_mode(0o755))?;
    }
    fs::create_dir_all(root.join("data"))?;
    for i in 0..3u32 {
        let mut f = fs::File::create(root.join(format!("data/blob{i}.bin")))?;
        for _ in 0..24 {
            f.write_all(&mixed(&mut rng, 1 << 20))?;
        }
    }
    Ok(())
}

/// The tree as layer entries: sorted, 0644/0755 by the exec bit, mtime 0.
fn entries(root: &Path) -> std::io::Result<Vec<Entry>> {
    fn walk(host: &Path, at: &ImagePath, out: &mut Vec<Entry>) -> std::io::Result<()> {
        let mut names: Vec<_> = fs::read_dir(host)?
            .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
            .collect::<Result<_, _>>()?;
        names.sort();
        for name in names {
            let h = host.join(&name);
            let p = at.join(&name);
            let md = fs::symlink_metadata(&h)?;
            if md.is_dir() {
                out.push(Entry {
                    path: p.clone(),
                    kind: EntryKind::Dir,
                    meta: Meta::new(0o755),
                });
                walk(&h, &p, out)?;
            } else {
                let exec = md.permissions().mode() & 0o111 != 0;
                out.push(Entry {
                    path: p,
                    kind: EntryKind::File {
                        size: md.len(),
                        content: Content::Host(h),
                    },
                    meta: Meta::new(if exec { 0o755 } else { 0o644 }),
                });
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    walk(root, &ImagePath::root(), &mut out)?;
    Ok(out)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn peak_rss_kib() -> Option<u64> {
    let s = fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let runs: usize = arg("--runs").map_or(Ok(3), |s| s.parse())?;
    let levels: Vec<u32> = match arg("--levels") {
        Some(s) => s.split(',').map(str::parse).collect::<Result<_, _>>()?,
        None => vec![LEVEL],
    };
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let work = tempfile::tempdir()?;
    let tree: PathBuf = match arg("--dir") {
        Some(d) => PathBuf::from(d),
        None => work.path().join("tree"),
    };
    if !tree.join("data/blob2.bin").exists() {
        eprintln!("generating tree in {} ...", tree.display());
        generate(&tree)?;
    }
    let list = entries(&tree)?;
    let bytes: u64 = list
        .iter()
        .map(|e| match e.kind {
            EntryKind::File { size, .. } => size,
            _ => 0,
        })
        .sum();
    println!(
        "tree: {} entries, {:.1} MB, {threads} cores",
        list.len(),
        bytes as f64 / 1e6
    );

    let parent = tree.parent().ok_or("tree has no parent")?;
    let name = tree
        .file_name()
        .ok_or("tree has no name")?
        .to_string_lossy()
        .into_owned();
    let pipeline = format!("tar --sort=name -cf - {name} | gzip -n -6 | sha256sum");
    let baseline = |warm: bool| -> Result<Duration, Box<dyn std::error::Error>> {
        let t = Instant::now();
        let cmd = if warm {
            format!("tar -cf - {name} > /dev/null")
        } else {
            pipeline.clone()
        };
        let st = Command::new("bash")
            .args(["-c", &cmd])
            .current_dir(parent)
            .stdout(std::process::Stdio::null())
            .status()?;
        if !st.success() {
            return Err(format!("`{cmd}` failed").into());
        }
        Ok(t.elapsed())
    };
    baseline(true)?; // warm the page cache

    let base = median(
        (0..runs)
            .map(|_| baseline(false))
            .collect::<Result<_, _>>()?,
    );
    println!(
        "baseline `{pipeline}`: {:.2} s (median of {runs})",
        base.as_secs_f64()
    );
    for level in levels {
        let mut times = Vec::new();
        let mut size = 0;
        for i in 0..runs {
            let store = BlobStore::open(&work.path().join(format!("store-{level}-{i}")))?;
            let t = Instant::now();
            let blob = write_layer_tuned(
                &store,
                list.clone(),
                &LayerOptions {
                    source_date_epoch: 0,
                },
                threads,
                level,
            )?;
            times.push(t.elapsed());
            size = blob.size;
            fs::remove_dir_all(store.root())?;
        }
        let t = median(times);
        println!(
            "kiln layer level {level}: {:.2} s, {:.1} MB gzip; ratio kiln/baseline = {:.2}",
            t.as_secs_f64(),
            size as f64 / 1e6,
            t.as_secs_f64() / base.as_secs_f64()
        );
    }
    let gz_size = Command::new("bash")
        .args([
            "-c",
            &format!("tar --sort=name -cf - {name} | gzip -n -6 | wc -c"),
        ])
        .current_dir(parent)
        .output()?;
    println!(
        "baseline gzip size: {} bytes",
        String::from_utf8_lossy(&gz_size.stdout).trim()
    );
    if let Some(kib) = peak_rss_kib() {
        println!("peak RSS of this process: {:.1} MB", kib as f64 / 1024.0);
    }
    Ok(())
}
