//! kiln's own import module, `kiln`: what WASI preview 1 lacks and kiln's
//! tools need. Programs that do not import it run unchanged.
//!
//! ABI (all pointers and lengths are `i32` offsets into the guest's
//! exported `memory`; every function returns a WASI errno, 0 on success):
//!
//! - `cwd_get(buf, buf_len, len_out) -> errno`: the working directory the
//!   command was started in (WORKDIR, or the shell's `cd`), an absolute
//!   image path. Writes `min(len, buf_len)` bytes at `buf` and the full
//!   length as a `u32` at `len_out`. WASI p1 has no working directory, so
//!   wasi-libc starts every program in `/`; the toolbox calls this at
//!   start-up and `chdir`s.
//! - `spawn(argv, argv_len, env, env_len, cwd, cwd_len, status_out) -> errno`:
//!   runs a command the way the shell would (PATH lookup in the image, then
//!   the toolbox) with the caller's stdin, stdout and stderr, and waits for
//!   it. `argv` and `env` are sequences of NUL-terminated strings (`env`
//!   entries are `NAME=VALUE`). Writes the exit status (0-255; 127: not
//!   found, 126: cannot run) as a `u32` at `status_out`. `ENOSYS` when the
//!   invocation has no spawner (a bare `Runtime::run`).
//! - `owner_get(path, path_len, follow, out) -> errno`: mode and owner of
//!   the entry at `path` (an absolute image path, UTF-8, resolved with
//!   chroot semantics; `follow != 0` follows a final symlink). Writes 12
//!   bytes at `out`: mode (the `0o7777` bits), uid, gid, each a
//!   little-endian `u32`. WASI p1 has no modes or owners: kiln keeps them.
//! - `owner_set(path, path_len, follow, mode: i32, uid: i64, gid: i64) ->
//!   errno`: chmod and chown in one; `-1` keeps that part. `EINVAL` for a
//!   relative path, a mode outside `0o7777` or an id outside `u32`;
//!   `ENOTSUP` for the mode of a symlink (not followed). Changing uid or
//!   gid of a regular file clears setuid (and setgid when group-executable)
//!   unless a mode is given in the same call, as Linux's chown does.
//! - `user_get(out) -> errno`: the uid and gid the command runs as (the
//!   step's USER), two little-endian `u32` at `out`.
//!
//! `owner_get` and `owner_set` return `ENOSYS` when the run has no
//! filesystem.

use crate::fs::wasi::{guest_str, put, slice, FsView};
use crate::fs::{Errno, SetOwner};
use crate::invocation::{SpawnRequest, Spawner};
use wasmtime::{AsContextMut, Caller, Extern, Linker};

/// The import module's name.
pub const MODULE: &str = "kiln";

/// What an instance's store offers the `kiln` functions.
pub(crate) trait KilnHost: Send + 'static {
    /// The command's working directory.
    fn cwd(&self) -> &str;
    /// Who runs commands for the guest, if anyone.
    fn spawner(&self) -> Option<Spawner>;
    /// The step's filesystem, if the run has one.
    fn fs(&self) -> Option<&FsView>;
    /// `(uid, gid)` the command runs as.
    fn user(&self) -> (u32, u32);
}

type Ret = wasmtime::Result<i32>;

fn memory<'a, T: KilnHost>(
    caller: &'a mut Caller<'_, T>,
) -> wasmtime::Result<(&'a mut [u8], &'a mut T)> {
    let Some(Extern::Memory(mem)) = caller.get_export("memory") else {
        return Err(wasmtime::Error::msg("missing required memory export"));
    };
    Ok(mem.data_and_store_mut(caller.as_context_mut()))
}

fn errno(r: Result<(), Errno>) -> Ret {
    Ok(match r {
        Ok(()) => 0,
        Err(e) => e.code(),
    })
}

/// Splits a buffer of NUL-terminated strings.
fn nul_strings(bytes: &[u8]) -> Result<Vec<String>, Errno> {
    if bytes.is_empty() {
        return Ok(Vec::new());
    }
    let Some(body) = bytes.strip_suffix(&[0]) else {
        return Err(Errno::INVAL);
    };
    body.split(|&b| b == 0)
        .map(|s| String::from_utf8(s.to_vec()).map_err(|_| Errno::ILSEQ))
        .collect()
}

fn spawn_request(
    data: &[u8],
    (argv, argv_len): (i32, i32),
    (env, env_len): (i32, i32),
    (cwd, cwd_len): (i32, i32),
) -> Result<SpawnRequest, Errno> {
    let argv = nul_strings(slice(data, argv, argv_len)?)?;
    if argv.is_empty() {
        return Err(Errno::INVAL);
    }
    let env = nul_strings(slice(data, env, env_len)?)?
        .into_iter()
        .map(|e| match e.split_once('=') {
            Some((k, v)) => Ok((k.to_owned(), v.to_owned())),
            None => Err(Errno::INVAL),
        })
        .collect::<Result<Vec<_>, _>>()?;
    let cwd = guest_str(data, cwd, cwd_len)?;
    if !cwd.starts_with('/') {
        return Err(Errno::INVAL);
    }
    Ok(SpawnRequest { argv, env, cwd })
}

/// An absolute image path from guest memory.
fn abs_path(data: &[u8], ptr: i32, len: i32) -> Result<String, Errno> {
    let path = guest_str(data, ptr, len)?;
    if path.starts_with('/') {
        Ok(path)
    } else {
        Err(Errno::INVAL)
    }
}

/// `-1` keeps; anything else must fit the type.
fn keep_or<T: TryFrom<i64>>(v: i64) -> Result<Option<T>, Errno> {
    if v == -1 {
        return Ok(None);
    }
    T::try_from(v).map(Some).map_err(|_| Errno::INVAL)
}

fn owner_set_args(mode: i32, uid: i64, gid: i64) -> Result<SetOwner, Errno> {
    Ok(SetOwner {
        mode: keep_or(i64::from(mode))?,
        uid: keep_or(uid)?,
        gid: keep_or(gid)?,
    })
}

/// Adds the `kiln` functions to the linker.
pub(crate) fn add_to_linker<T: KilnHost>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    linker.func_wrap(
        MODULE,
        "cwd_get",
        |mut caller: Caller<'_, T>, buf: i32, buf_len: i32, len_out: i32| -> Ret {
            let (data, host) = memory(&mut caller)?;
            let cwd = host.cwd().as_bytes().to_vec();
            let shown = &cwd[..cwd.len().min(buf_len.max(0) as usize)];
            errno(
                put(data, buf, shown)
                    .and_then(|()| put(data, len_out, &(cwd.len() as u32).to_le_bytes())),
            )
        },
    )?;
    linker.func_wrap(
        MODULE,
        "spawn",
        |mut caller: Caller<'_, T>,
         argv: i32,
         argv_len: i32,
         env: i32,
         env_len: i32,
         cwd: i32,
         cwd_len: i32,
         status_out: i32|
         -> Ret {
            let (data, host) = memory(&mut caller)?;
            let Some(spawner) = host.spawner() else {
                return errno(Err(Errno::NOSYS));
            };
            let request =
                match spawn_request(data, (argv, argv_len), (env, env_len), (cwd, cwd_len)) {
                    Ok(r) => r,
                    Err(e) => return errno(Err(e)),
                };
            // The child runs to completion on this thread, in its own store;
            // the caller's memory is not borrowed meanwhile.
            let status = spawner(request);
            let (data, _) = memory(&mut caller)?;
            errno(put(data, status_out, &u32::from(status).to_le_bytes()))
        },
    )?;
    linker.func_wrap(
        MODULE,
        "owner_get",
        |mut caller: Caller<'_, T>, path: i32, path_len: i32, follow: i32, out: i32| -> Ret {
            let (data, host) = memory(&mut caller)?;
            let Some(fs) = host.fs() else {
                return errno(Err(Errno::NOSYS));
            };
            errno((|| {
                let p = abs_path(data, path, path_len)?;
                let o = fs.owner(&p, follow != 0)?;
                let mut b = [0u8; 12];
                b[0..4].copy_from_slice(&o.mode.to_le_bytes());
                b[4..8].copy_from_slice(&o.uid.to_le_bytes());
                b[8..12].copy_from_slice(&o.gid.to_le_bytes());
                put(data, out, &b)
            })())
        },
    )?;
    linker.func_wrap(
        MODULE,
        "owner_set",
        |mut caller: Caller<'_, T>,
         path: i32,
         path_len: i32,
         follow: i32,
         mode: i32,
         uid: i64,
         gid: i64|
         -> Ret {
            let (data, host) = memory(&mut caller)?;
            let Some(fs) = host.fs() else {
                return errno(Err(Errno::NOSYS));
            };
            errno((|| {
                let p = abs_path(data, path, path_len)?;
                let set = owner_set_args(mode, uid, gid)?;
                fs.set_owner(&p, follow != 0, set)
            })())
        },
    )?;
    linker.func_wrap(
        MODULE,
        "user_get",
        |mut caller: Caller<'_, T>, out: i32| -> Ret {
            let (data, host) = memory(&mut caller)?;
            let (uid, gid) = host.user();
            let mut b = [0u8; 8];
            b[0..4].copy_from_slice(&uid.to_le_bytes());
            b[4..8].copy_from_slice(&gid.to_le_bytes());
            errno(put(data, out, &b))
        },
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nul_strings_split_and_reject_unterminated() {
        assert_eq!(nul_strings(b"a\0bc\0").unwrap(), vec!["a", "bc"]);
        assert_eq!(nul_strings(b"").unwrap(), Vec::<String>::new());
        assert_eq!(nul_strings(b"a\0b"), Err(Errno::INVAL));
    }

    #[test]
    fn owner_set_args_keep_and_range() {
        let s = owner_set_args(-1, -1, 5).unwrap();
        assert_eq!((s.mode, s.uid, s.gid), (None, None, Some(5)));
        let s = owner_set_args(0o4755, 4_294_967_295, -1).unwrap();
        assert_eq!((s.mode, s.uid), (Some(0o4755), Some(u32::MAX)));
        assert!(owner_set_args(-2, -1, -1).is_err());
        assert!(owner_set_args(-1, 1 << 32, -1).is_err());
        assert!(owner_set_args(-1, -1, -7).is_err());
    }

    #[test]
    fn paths_must_be_absolute() {
        assert_eq!(abs_path(b"etc/x", 0, 5), Err(Errno::INVAL));
        assert_eq!(abs_path(b"/etc", 0, 4).unwrap(), "/etc");
    }
}
