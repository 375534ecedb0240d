//! Filesystem probe: performs the operations given on its command line, in
//! order, and prints one line per operation (`err=N` is a WASI errno).
//!
//! Operations: write P TEXT, append P TEXT, read P, touch P, mkdir P, rm P,
//! rmdir P, mv A B, ln A B, symlink TARGET P, readlink P, stat P, lstat P,
//! fstat P, ls P, settime P SECS, rmtree P, heldmv A B.

use std::fs;
use std::io::Write;
use std::os::fd::AsRawFd;

#[link(wasm_import_module = "wasi_snapshot_preview1")]
extern "C" {
    fn fd_readdir(fd: u32, buf: *mut u8, len: u32, cookie: u64, used: *mut u32) -> u16;
    fn path_filestat_get(fd: u32, flags: u32, path: *const u8, len: u32, out: *mut u8) -> u16;
    fn fd_filestat_get(fd: u32, out: *mut u8) -> u16;
    fn path_open(
        fd: u32,
        dirflags: u32,
        path: *const u8,
        len: u32,
        oflags: u16,
        base: u64,
        inheriting: u64,
        fdflags: u16,
        out: *mut u32,
    ) -> u16;
    fn fd_close(fd: u32) -> u16;
    fn path_symlink(old: *const u8, old_len: u32, fd: u32, new: *const u8, new_len: u32) -> u16;
}

/// The root preopen.
const ROOT: u32 = 3;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    let mut out = String::new();
    while i < args.len() {
        let op = args[i].as_str();
        let arity = match op {
            "write" | "append" | "mv" | "ln" | "symlink" | "settime" | "heldmv" => 2,
            _ => 1,
        };
        let a: Vec<&str> = args[i + 1..(i + 1 + arity).min(args.len())]
            .iter()
            .map(String::as_str)
            .collect();
        i += 1 + arity;
        let line = match run(op, &a) {
            Ok(s) => s,
            Err(e) => format!("err={}", e.raw_os_error().unwrap_or(-1)),
        };
        out.push_str(&format!("{op} {}: {line}\n", a.join(" ")));
    }
    std::io::stdout().write_all(out.as_bytes()).unwrap();
}

fn run(op: &str, a: &[&str]) -> std::io::Result<String> {
    Ok(match op {
        "write" => {
            fs::write(a[0], a[1])?;
            "ok".into()
        }
        "append" => {
            let mut f = fs::OpenOptions::new().append(true).create(true).open(a[0])?;
            f.write_all(a[1].as_bytes())?;
            "ok".into()
        }
        "read" => fs::read_to_string(a[0])?
            .trim_end_matches('\n')
            .replace('\n', "\\n"),
        "touch" => {
            fs::OpenOptions::new().append(true).create(true).open(a[0])?;
            "ok".into()
        }
        "mkdir" => {
            fs::create_dir(a[0])?;
            "ok".into()
        }
        "rm" => {
            fs::remove_file(a[0])?;
            "ok".into()
        }
        "rmdir" => {
            fs::remove_dir(a[0])?;
            "ok".into()
        }
        "mv" => {
            fs::rename(a[0], a[1])?;
            "ok".into()
        }
        "ln" => {
            fs::hard_link(a[0], a[1])?;
            "ok".into()
        }
        "symlink" => {
            let p = rel(a[1]);
            errno(unsafe { path_symlink(a[0].as_ptr(), a[0].len() as u32, ROOT, p.as_ptr(), p.len() as u32) })?;
            "ok".into()
        }
        "readlink" => fs::read_link(a[0])?.display().to_string(),
        "stat" | "lstat" => {
            let p = rel(a[0]);
            let mut buf = [0u8; 64];
            let flags = u32::from(op == "stat");
            let e = unsafe { path_filestat_get(ROOT, flags, p.as_ptr(), p.len() as u32, buf.as_mut_ptr()) };
            errno(e)?;
            filestat(&buf)
        }
        "fstat" => {
            let f = fs::File::open(a[0])?;
            let mut buf = [0u8; 64];
            errno(unsafe { fd_filestat_get(f.as_raw_fd() as u32, buf.as_mut_ptr()) })?;
            filestat(&buf)
        }
        "ls" => ls(a[0])?,
        "rmtree" => {
            fs::remove_dir_all(a[0])?;
            "ok".into()
        }
        "heldmv" => {
            // Holds directory A open, renames it to B, then creates `child`
            // relative to the held descriptor: it must land in B.
            let dir = fs::File::open(a[0])?;
            fs::rename(a[0], a[1])?;
            let mut fd = 0u32;
            let name = "child";
            let write = (1u64 << 6) | (1 << 1);
            errno(unsafe {
                path_open(dir.as_raw_fd() as u32, 0, name.as_ptr(), name.len() as u32, 1, write, 0, 0, &mut fd)
            })?;
            errno(unsafe { fd_close(fd) })?;
            "ok".into()
        }
        "settime" => {
            let secs: u64 = a[1].parse().map_err(|_| std::io::Error::other("bad secs"))?;
            let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs);
            fs::File::options().write(true).open(a[0])?.set_modified(t)?;
            "ok".into()
        }
        _ => return Err(std::io::Error::other(format!("unknown op {op}"))),
    })
}

/// An absolute guest path relative to the root preopen.
fn rel(p: &str) -> &str {
    let p = p.trim_start_matches('/');
    if p.is_empty() {
        "."
    } else {
        p
    }
}

fn errno(e: u16) -> std::io::Result<()> {
    if e == 0 {
        Ok(())
    } else {
        Err(std::io::Error::from_raw_os_error(i32::from(e)))
    }
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}

fn filestat(b: &[u8; 64]) -> String {
    let ns = |at| {
        let t = u64_at(b, at);
        format!("{}.{:09}", t / 1_000_000_000, t % 1_000_000_000)
    };
    format!(
        "dev={} ino={} type={} nlink={} size={} atime={} mtime={} ctime={}",
        u64_at(b, 0),
        u64_at(b, 8),
        b[16],
        u64_at(b, 24),
        u64_at(b, 32),
        ns(40),
        ns(48),
        ns(56)
    )
}

/// Lists with a small buffer, so cookies must carry the listing across calls.
fn ls(path: &str) -> std::io::Result<String> {
    let dir = fs::File::open(path)?;
    let fd = dir.as_raw_fd() as u32;
    let mut names = Vec::new();
    let mut cookie = 0u64;
    let mut cap = 64usize;
    loop {
        let mut buf = vec![0u8; cap];
        let mut used = 0u32;
        errno(unsafe { fd_readdir(fd, buf.as_mut_ptr(), cap as u32, cookie, &mut used) })?;
        let used = used as usize;
        let mut at = 0;
        let mut progressed = false;
        while at + 24 <= used {
            let next = u64_at(&buf, at);
            let ino = u64_at(&buf, at + 8);
            let len = u32::from_le_bytes(buf[at + 16..at + 20].try_into().unwrap()) as usize;
            if at + 24 + len > used {
                break;
            }
            let name = String::from_utf8_lossy(&buf[at + 24..at + 24 + len]).into_owned();
            names.push(format!("{name}={ino}"));
            cookie = next;
            at += 24 + len;
            progressed = true;
        }
        if used < cap {
            break;
        }
        if !progressed {
            cap *= 2;
        }
    }
    Ok(names.join(" "))
}
