//! Guest side of kiln's `kiln` import module (see kiln-runtime's
//! `kiln_api`): what WASI preview 1 lacks. Each wrapper turns the errno into
//! an `io::Error`.

use std::io;

#[link(wasm_import_module = "kiln")]
extern "C" {
    #[link_name = "cwd_get"]
    fn kiln_cwd_get(buf: *mut u8, buf_len: usize, len_out: *mut u32) -> u32;
    #[link_name = "spawn"]
    fn kiln_spawn(
        argv: *const u8,
        argv_len: usize,
        env: *const u8,
        env_len: usize,
        cwd: *const u8,
        cwd_len: usize,
        status_out: *mut u32,
    ) -> u32;
    #[link_name = "owner_get"]
    fn kiln_owner_get(path: *const u8, path_len: usize, follow: u32, out: *mut u8) -> u32;
    #[link_name = "owner_set"]
    fn kiln_owner_set(
        path: *const u8,
        path_len: usize,
        follow: u32,
        mode: i32,
        uid: i64,
        gid: i64,
    ) -> u32;
    #[link_name = "user_get"]
    fn kiln_user_get(out: *mut u8) -> u32;
}

/// Mode bits (`0o7777`) and owner of an entry, as kiln keeps them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Owner {
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

fn le32(b: &[u8]) -> u32 {
    let mut w = [0u8; 4];
    w.copy_from_slice(&b[..4]);
    u32::from_le_bytes(w)
}

/// Mode and owner of `path` (absolute image path); `follow` follows a final
/// symlink.
pub fn owner_get(path: &str, follow: bool) -> io::Result<Owner> {
    let mut b = [0u8; 12];
    // SAFETY: path is valid for its length, b for 12 bytes.
    check(unsafe { kiln_owner_get(path.as_ptr(), path.len(), follow.into(), b.as_mut_ptr()) })?;
    Ok(Owner {
        mode: le32(&b[0..4]),
        uid: le32(&b[4..8]),
        gid: le32(&b[8..12]),
    })
}

/// Sets what is `Some` of mode, uid and gid of `path` (absolute).
pub fn owner_set(
    path: &str,
    follow: bool,
    mode: Option<u32>,
    uid: Option<u32>,
    gid: Option<u32>,
) -> io::Result<()> {
    let mode = mode.map_or(-1, |m| (m & 0o7777) as i32);
    let uid = uid.map_or(-1, i64::from);
    let gid = gid.map_or(-1, i64::from);
    // SAFETY: path is valid for its length.
    check(unsafe { kiln_owner_set(path.as_ptr(), path.len(), follow.into(), mode, uid, gid) })
}

/// `(uid, gid)` this command runs as.
pub fn user_get() -> io::Result<(u32, u32)> {
    let mut b = [0u8; 8];
    // SAFETY: b is valid for 8 bytes.
    check(unsafe { kiln_user_get(b.as_mut_ptr()) })?;
    Ok((le32(&b[0..4]), le32(&b[4..8])))
}

fn check(errno: u32) -> io::Result<()> {
    if errno == 0 {
        Ok(())
    } else {
        Err(io::Error::from_raw_os_error(errno as i32))
    }
}

/// The working directory kiln started this command in.
pub fn cwd() -> io::Result<String> {
    let mut buf = vec![0u8; 256];
    loop {
        let mut len = 0u32;
        // SAFETY: buf is valid for buf.len() bytes and len for 4.
        check(unsafe { kiln_cwd_get(buf.as_mut_ptr(), buf.len(), &mut len) })?;
        let len = len as usize;
        if len <= buf.len() {
            buf.truncate(len);
            return String::from_utf8(buf)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e));
        }
        buf.resize(len, 0);
    }
}

/// Runs a command through kiln (PATH lookup, then the toolbox) with this
/// program's stdin, stdout and stderr; returns its exit status.
pub fn spawn(argv: &[String], env: &[(String, String)], cwd: &str) -> io::Result<u8> {
    let mut args = Vec::new();
    for a in argv {
        args.extend_from_slice(a.as_bytes());
        args.push(0);
    }
    let mut vars = Vec::new();
    for (k, v) in env {
        vars.extend_from_slice(k.as_bytes());
        vars.push(b'=');
        vars.extend_from_slice(v.as_bytes());
        vars.push(0);
    }
    let mut status = 0u32;
    // SAFETY: every pointer is valid for the length passed with it.
    check(unsafe {
        kiln_spawn(
            args.as_ptr(),
            args.len(),
            vars.as_ptr(),
            vars.len(),
            cwd.as_ptr(),
            cwd.len(),
            &mut status,
        )
    })?;
    Ok(status as u8)
}

/// Moves to the directory kiln started this command in (WASI programs
/// otherwise start in `/`).
pub fn enter_cwd() {
    if let Ok(dir) = cwd() {
        if dir != "/" {
            let _ = std::env::set_current_dir(dir);
        }
    }
}
