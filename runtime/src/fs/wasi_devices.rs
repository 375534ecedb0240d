//! Descriptors of device files ([`Device`]). `path_open` of a device
//! reserves a descriptor number in wasmtime-wasi's table (an extra,
//! rights-less handle on the root directory, never used for I/O) and
//! records the device; the functions here answer for those descriptors
//! and hand every other descriptor to wasmtime-wasi untouched. A stdio
//! device forwards to the program's own descriptor 0, 1 or 2.

use super::devices::Device;
use super::errno::Errno;
use super::wasi::{code, put, with, FsHost, FsView, Ret, MODULE};
use chacha20::rand_core::Rng;
use wasmtime::{Caller, Linker};
use wasmtime_wasi::p1::wasi_snapshot_preview1 as p1;
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::runtime::in_tokio;
use wiggle::GuestMemory;

/// Rights a device descriptor reports (`fdstat`): the p1 rights bits 0-8
/// (datasync, read, seek, fdstat_set_flags, sync, tell, write, advise,
/// allocate), 21-23 (filestat get, set_size, set_times) and 27
/// (poll_fd_readwrite).
const DEVICE_RIGHTS: u64 = 0x1FF | 0b111 << 21 | 1 << 27;

/// What a function does with the descriptor it was given.
enum Target {
    /// Not a device: wasmtime-wasi's own function.
    Plain,
    /// A stdio device: wasmtime-wasi's function on descriptor 0, 1 or 2.
    Forward(i32),
    /// A device kiln answers.
    Device(Device),
}

impl FsView {
    fn target(&self, fd: i32) -> Target {
        match u32::try_from(fd).ok().and_then(|fd| self.device(fd)) {
            None => Target::Plain,
            Some(Device::Stdio(n)) => Target::Forward(n as i32),
            Some(d) => Target::Device(d),
        }
    }
}

/// Runs `plain` with the descriptor to use (the given one, or the stdio one
/// a stdio device stands for), or `dev` for a device kiln answers.
fn dispatch<T: FsHost>(
    caller: &mut Caller<'_, T>,
    fd: i32,
    plain: impl FnOnce(&mut WasiP1Ctx, &mut GuestMemory<'_>, i32) -> Ret,
    dev: impl FnOnce(Device, &mut [u8], &mut FsView) -> Result<(), Errno>,
) -> Ret {
    with(caller, |data, wasi, view| {
        let target = view.as_deref().map_or(Target::Plain, |v| v.target(fd));
        match (target, view) {
            (Target::Device(d), Some(v)) => code(dev(d, data, v)),
            (Target::Forward(n), _) => plain(wasi, &mut GuestMemory::Unshared(data), n),
            _ => plain(wasi, &mut GuestMemory::Unshared(data), fd),
        }
    })
}

/// The `(ptr, len)` pairs of a guest iovec array.
fn iovecs(data: &[u8], iovs: i32, count: i32) -> Result<Vec<(usize, usize)>, Errno> {
    let count = usize::try_from(count).map_err(|_| Errno::INVAL)?;
    let table = super::wasi::slice(data, iovs, (count * 8) as i32)?;
    let out: Vec<(usize, usize)> = table
        .chunks_exact(8)
        .map(|c| {
            let word = |b: &[u8]| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize;
            (word(&c[..4]), word(&c[4..]))
        })
        .collect();
    for &(ptr, len) in &out {
        ptr.checked_add(len)
            .filter(|end| *end <= data.len())
            .ok_or(Errno::FAULT)?;
    }
    Ok(out)
}

/// A read of `device` into the guest buffers; the count goes to `out`.
fn read(
    device: Device,
    view: &mut FsView,
    data: &mut [u8],
    (iovs, count, out): (i32, i32, i32),
) -> Result<(), Errno> {
    let mut total = 0usize;
    for (ptr, len) in iovecs(data, iovs, count)? {
        let buf = &mut data[ptr..ptr + len];
        match device {
            Device::Null | Device::Stdio(_) => break,
            Device::Zero | Device::Full => buf.fill(0),
            Device::Random => view.device_random().fill_bytes(buf),
        }
        total += len;
    }
    put(data, out, &(total as u32).to_le_bytes())
}

/// A write to `device` from the guest buffers; the count goes to `out`.
fn write(
    device: Device,
    data: &mut [u8],
    (iovs, count, out): (i32, i32, i32),
) -> Result<(), Errno> {
    if device == Device::Full {
        return Err(Errno::NOSPC);
    }
    let total: usize = iovecs(data, iovs, count)?.iter().map(|(_, len)| len).sum();
    put(data, out, &(total as u32).to_le_bytes())
}

/// The 24-byte p1 `fdstat` of a device descriptor: a regular file, as in
/// its `filestat` (see `wasi::filestat`).
fn fdstat() -> [u8; 24] {
    let mut b = [0u8; 24];
    b[0] = super::FileKind::Regular.wasi();
    b[8..16].copy_from_slice(&DEVICE_RIGHTS.to_le_bytes());
    b
}

/// Adds the device-aware fd functions; the caller has added wasmtime-wasi's
/// p1 functions and turned shadowing on.
pub(crate) fn add_to_linker<T: FsHost>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    linker.func_wrap(
        MODULE,
        "fd_read",
        |mut caller: Caller<'_, T>, fd: i32, iovs: i32, n: i32, out: i32| -> Ret {
            dispatch(
                &mut caller,
                fd,
                |w, m, fd| in_tokio(p1::fd_read(w, m, fd, iovs, n, out)),
                |d, data, v| read(d, v, data, (iovs, n, out)),
            )
        },
    )?;
    linker.func_wrap(
        MODULE,
        "fd_pread",
        |mut caller: Caller<'_, T>, fd: i32, iovs: i32, n: i32, off: i64, out: i32| -> Ret {
            dispatch(
                &mut caller,
                fd,
                |w, m, fd| in_tokio(p1::fd_pread(w, m, fd, iovs, n, off, out)),
                |d, data, v| read(d, v, data, (iovs, n, out)),
            )
        },
    )?;
    linker.func_wrap(
        MODULE,
        "fd_write",
        |mut caller: Caller<'_, T>, fd: i32, iovs: i32, n: i32, out: i32| -> Ret {
            dispatch(
                &mut caller,
                fd,
                |w, m, fd| in_tokio(p1::fd_write(w, m, fd, iovs, n, out)),
                |d, data, _| write(d, data, (iovs, n, out)),
            )
        },
    )?;
    linker.func_wrap(
        MODULE,
        "fd_pwrite",
        |mut caller: Caller<'_, T>, fd: i32, iovs: i32, n: i32, off: i64, out: i32| -> Ret {
            dispatch(
                &mut caller,
                fd,
                |w, m, fd| in_tokio(p1::fd_pwrite(w, m, fd, iovs, n, off, out)),
                |d, data, _| write(d, data, (iovs, n, out)),
            )
        },
    )?;
    linker.func_wrap(
        MODULE,
        "fd_seek",
        |mut caller: Caller<'_, T>, fd: i32, offset: i64, whence: i32, out: i32| -> Ret {
            dispatch(
                &mut caller,
                fd,
                |w, m, fd| in_tokio(p1::fd_seek(w, m, fd, offset, whence, out)),
                // Devices stay at offset 0, as Linux's do.
                |_, data, _| put(data, out, &0u64.to_le_bytes()),
            )
        },
    )?;
    linker.func_wrap(
        MODULE,
        "fd_tell",
        |mut caller: Caller<'_, T>, fd: i32, out: i32| -> Ret {
            dispatch(
                &mut caller,
                fd,
                |w, m, fd| p1::fd_tell(w, m, fd, out),
                |_, data, _| put(data, out, &0u64.to_le_bytes()),
            )
        },
    )?;
    linker.func_wrap(
        MODULE,
        "fd_fdstat_get",
        |mut caller: Caller<'_, T>, fd: i32, out: i32| -> Ret {
            dispatch(
                &mut caller,
                fd,
                |w, m, fd| in_tokio(p1::fd_fdstat_get(w, m, fd, out)),
                |_, data, _| put(data, out, &fdstat()),
            )
        },
    )?;
    linker.func_wrap(
        MODULE,
        "fd_fdstat_set_flags",
        |mut caller: Caller<'_, T>, fd: i32, flags: i32| -> Ret {
            dispatch(
                &mut caller,
                fd,
                |w, m, fd| p1::fd_fdstat_set_flags(w, m, fd, flags),
                |_, _, _| Ok(()),
            )
        },
    )?;
    linker.func_wrap(
        MODULE,
        "fd_advise",
        |mut caller: Caller<'_, T>, fd: i32, off: i64, len: i64, advice: i32| -> Ret {
            dispatch(
                &mut caller,
                fd,
                |w, m, fd| in_tokio(p1::fd_advise(w, m, fd, off, len, advice)),
                |_, _, _| Ok(()),
            )
        },
    )?;
    linker.func_wrap(
        MODULE,
        "fd_allocate",
        |mut caller: Caller<'_, T>, fd: i32, off: i64, len: i64| -> Ret {
            dispatch(
                &mut caller,
                fd,
                |w, m, fd| p1::fd_allocate(w, m, fd, off, len),
                |_, _, _| Err(Errno::NOTSUP),
            )
        },
    )?;
    linker.func_wrap(
        MODULE,
        "fd_sync",
        |mut caller: Caller<'_, T>, fd: i32| -> Ret {
            dispatch(
                &mut caller,
                fd,
                |w, m, fd| in_tokio(p1::fd_sync(w, m, fd)),
                |_, _, _| Ok(()),
            )
        },
    )?;
    linker.func_wrap(
        MODULE,
        "fd_datasync",
        |mut caller: Caller<'_, T>, fd: i32| -> Ret {
            dispatch(
                &mut caller,
                fd,
                |w, m, fd| in_tokio(p1::fd_datasync(w, m, fd)),
                |_, _, _| Ok(()),
            )
        },
    )?;
    Ok(())
}
