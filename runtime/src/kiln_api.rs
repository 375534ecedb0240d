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

use crate::fs::wasi::{guest_str, put, slice};
use crate::fs::Errno;
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
}
