//! The shadowed p1 functions. wasmtime-wasi keeps the descriptor table and
//! all file I/O; these wrappers resolve paths with chroot semantics, keep a
//! descriptor -> image path map, answer metadata and listings themselves, and
//! hand wasmtime-wasi's `path_open` only canonical paths relative to the
//! root preopen (through a scratch memory, since the guest's memory has no
//! room for a path the host made up).

use super::devices::{self, Device};
use super::errno::Errno;
use super::ops::{DirItem, SetOwner, SetTimes};
use super::{Inner, Rootfs, Stat};
use crate::clock::VirtualClock;
use chacha20::ChaCha20Rng;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use wasmtime::{AsContextMut, Caller, Extern, Linker};
use wasmtime_wasi::p1::wasi_snapshot_preview1 as p1;
use wasmtime_wasi::p1::wasi_snapshot_preview1::WasiSnapshotPreview1;
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::runtime::in_tokio;
use wiggle::GuestMemory;

pub(super) const MODULE: &str = "wasi_snapshot_preview1";

/// Rights that mean "this descriptor may change the file's bytes".
const WRITE_RIGHTS: i64 = (1 << 6) | (1 << 8) | (1 << 22);
const OFLAG_CREAT: i32 = 1;
const OFLAG_EXCL: i32 = 4;
const OFLAG_TRUNC: i32 = 8;
const OFLAG_DIRECTORY: i32 = 2;
const LOOKUP_FOLLOW: i32 = 1;
const FST_ATIM: i32 = 1;
const FST_ATIM_NOW: i32 = 2;
const FST_MTIM: i32 = 4;
const FST_MTIM_NOW: i32 = 8;
/// The one device number the guest sees.
const DEV: u64 = 1;

/// Store state that carries a WASI context and, when the run has a
/// filesystem, its view of it.
pub(crate) trait FsHost: Send + 'static {
    fn parts(&mut self) -> (&mut WasiP1Ctx, Option<&mut FsView>);
}

/// One descriptor the guest opened through kiln.
struct FdEntry {
    path: String,
    ino: u64,
    dir: bool,
    /// The listing `fd_readdir` serves cookies from (taken at cookie 0).
    listing: Option<Vec<DirItem>>,
}

/// One instance's view of the step's rootfs.
pub(crate) struct FsView {
    fs: Arc<Inner>,
    clock: VirtualClock,
    root_fd: u32,
    fds: HashMap<u32, FdEntry>,
    /// Descriptors of device files (`wasi_devices`).
    devices: HashMap<u32, Device>,
    /// What `/dev/random` and `/dev/urandom` read: the step's seeded bytes.
    random: ChaCha20Rng,
}

impl FsView {
    /// The view of an instance whose root preopen is descriptor `root_fd`;
    /// `random` feeds the random devices.
    pub(crate) fn new(
        fs: &Rootfs,
        clock: VirtualClock,
        root_fd: u32,
        random: ChaCha20Rng,
    ) -> FsView {
        let inner = fs.inner().clone();
        let ino = inner.stat("/", "/", false).map_or(1, |s| s.ino);
        let mut fds = HashMap::new();
        fds.insert(
            root_fd,
            FdEntry {
                path: "/".into(),
                ino,
                dir: true,
                listing: None,
            },
        );
        FsView {
            fs: inner,
            clock,
            root_fd,
            fds,
            devices: HashMap::new(),
            random,
        }
    }

    /// The device descriptor `fd` stands for, if it is one.
    pub(super) fn device(&self, fd: u32) -> Option<Device> {
        self.devices.get(&fd).copied()
    }

    /// The generator the random devices read.
    pub(super) fn device_random(&mut self) -> &mut ChaCha20Rng {
        &mut self.random
    }

    fn device_fd(&self, fd: i32) -> Option<Device> {
        u32::try_from(fd).ok().and_then(|fd| self.device(fd))
    }

    fn now(&self) -> Duration {
        self.clock.wall_now()
    }

    /// Mode and owner of the image path `path` (absolute).
    pub(crate) fn owner(&self, path: &str, follow: bool) -> Result<super::Owner, Errno> {
        self.fs.owner("/", path, follow)
    }

    /// Sets mode and owner of the image path `path` (absolute).
    pub(crate) fn set_owner(&self, path: &str, follow: bool, set: SetOwner) -> Result<(), Errno> {
        self.fs.set_owner(("/", path, follow), set, self.now())
    }

    /// The image path of directory descriptor `fd`.
    fn dir(&self, fd: i32) -> Result<String, Errno> {
        let entry = u32::try_from(fd)
            .ok()
            .and_then(|fd| self.fds.get(&fd))
            .ok_or(Errno::BADF)?;
        if entry.dir {
            Ok(entry.path.clone())
        } else {
            Err(Errno::NOTDIR)
        }
    }

    fn has(&self, fd: i32) -> bool {
        u32::try_from(fd).is_ok_and(|fd| self.fds.contains_key(&fd))
    }

    fn entry(&mut self, fd: i32) -> Option<&mut FdEntry> {
        u32::try_from(fd).ok().and_then(|fd| self.fds.get_mut(&fd))
    }

    /// Descriptors under a renamed path follow it.
    fn renamed(&mut self, from: &str, to: &str) {
        for e in self.fds.values_mut() {
            if e.path == from {
                e.path = to.to_owned();
            } else if let Some(rest) = e.path.strip_prefix(from) {
                if rest.starts_with('/') {
                    e.path = format!("{to}{rest}");
                }
            }
        }
    }
}

/// What a wrapper body returns: a trap, or the guest's errno.
pub(super) type Ret = wasmtime::Result<i32>;

/// Runs `f` with the guest's memory and the store's WASI parts, with the
/// hostcall fuel wasmtime-wasi's own wrappers would set.
pub(super) fn with<T: FsHost>(
    caller: &mut Caller<'_, T>,
    f: impl FnOnce(&mut [u8], &mut WasiP1Ctx, Option<&mut FsView>) -> Ret,
) -> Ret {
    let fuel = caller.as_context_mut().hostcall_fuel();
    let Some(Extern::Memory(mem)) = caller.get_export("memory") else {
        return Err(wasmtime::Error::msg("missing required memory export"));
    };
    let (data, state) = mem.data_and_store_mut(caller);
    let (wasi, view) = state.parts();
    wasi.set_hostcall_fuel(fuel);
    f(data, wasi, view)
}

pub(super) fn code(r: Result<(), Errno>) -> Ret {
    Ok(match r {
        Ok(()) => 0,
        Err(e) => e.code(),
    })
}

pub(crate) fn guest_str(data: &[u8], ptr: i32, len: i32) -> Result<String, Errno> {
    let bytes = slice(data, ptr, len)?;
    std::str::from_utf8(bytes)
        .map(str::to_owned)
        .map_err(|_| Errno::ILSEQ)
}

pub(crate) fn slice(data: &[u8], ptr: i32, len: i32) -> Result<&[u8], Errno> {
    let start = ptr as u32 as usize;
    let end = start.checked_add(len as u32 as usize).ok_or(Errno::FAULT)?;
    data.get(start..end).ok_or(Errno::FAULT)
}

pub(crate) fn put(data: &mut [u8], ptr: i32, bytes: &[u8]) -> Result<(), Errno> {
    let start = ptr as u32 as usize;
    let end = start.checked_add(bytes.len()).ok_or(Errno::FAULT)?;
    data.get_mut(start..end)
        .ok_or(Errno::FAULT)?
        .copy_from_slice(bytes);
    Ok(())
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// The 64-byte p1 `filestat`.
fn filestat(s: &Stat) -> [u8; 64] {
    let mut b = [0u8; 64];
    // Only kiln's device files are character devices (`devices`). Guests
    // see them as empty regular files on their own device: uutils built for
    // WASI refuse to read any other kind (`cat: unknown filetype`).
    let (dev, kind) = match s.kind {
        super::FileKind::CharDevice => (devices::DEVICES_DEV, super::FileKind::Regular),
        kind => (DEV, kind),
    };
    b[0..8].copy_from_slice(&dev.to_le_bytes());
    b[8..16].copy_from_slice(&s.ino.to_le_bytes());
    b[16] = kind.wasi();
    b[24..32].copy_from_slice(&s.nlink.to_le_bytes());
    b[32..40].copy_from_slice(&s.size.to_le_bytes());
    b[40..48].copy_from_slice(&nanos(s.times.atime).to_le_bytes());
    b[48..56].copy_from_slice(&nanos(s.times.mtime).to_le_bytes());
    b[56..64].copy_from_slice(&nanos(s.times.ctime).to_le_bytes());
    b
}

/// Offset of the host-made path inside a scratch memory (non-zero, aligned).
const SCRATCH_PATH: usize = 8;

/// wasmtime-wasi's `path_open` on the root preopen with a canonical path.
/// Ok(Ok(fd)), Ok(Err(errno)) or a trap.
fn delegate_open(
    wasi: &mut WasiP1Ctx,
    root_fd: u32,
    rel: &str,
    (oflags, rights_base, rights_inheriting, fdflags): (i32, i64, i64, i32),
) -> wasmtime::Result<Result<u32, Errno>> {
    let out = (SCRATCH_PATH + rel.len()).next_multiple_of(8);
    let mut scratch = vec![0u8; out + 8];
    scratch[SCRATCH_PATH..SCRATCH_PATH + rel.len()].copy_from_slice(rel.as_bytes());
    let len = i32::try_from(rel.len()).map_err(|_| wasmtime::Error::msg("path too long"))?;
    let errno = in_tokio(p1::path_open(
        wasi,
        &mut GuestMemory::Unshared(&mut scratch),
        root_fd as i32,
        0, // resolved already: follow nothing
        SCRATCH_PATH as i32,
        len,
        oflags,
        rights_base,
        rights_inheriting,
        fdflags,
        out as i32,
    ))?;
    if errno != 0 {
        return Ok(Err(Errno(errno as u16)));
    }
    let mut fd = [0u8; 4];
    fd.copy_from_slice(&scratch[out..out + 4]);
    Ok(Ok(u32::from_le_bytes(fd)))
}

/// wasmtime-wasi's `fd_filestat_get` into a scratch memory.
fn delegate_fd_filestat(
    wasi: &mut WasiP1Ctx,
    fd: i32,
) -> wasmtime::Result<Result<[u8; 64], Errno>> {
    let mut scratch = vec![0u8; 8 + 64];
    let errno = in_tokio(p1::fd_filestat_get(
        wasi,
        &mut GuestMemory::Unshared(&mut scratch),
        fd,
        8,
    ))?;
    if errno != 0 {
        return Ok(Err(Errno(errno as u16)));
    }
    let mut b = [0u8; 64];
    b.copy_from_slice(&scratch[8..72]);
    Ok(Ok(b))
}

fn set_times_arg(atim: i64, mtim: i64, fst: i32, now: Duration) -> Result<SetTimes, Errno> {
    if (fst & FST_ATIM != 0 && fst & FST_ATIM_NOW != 0)
        || (fst & FST_MTIM != 0 && fst & FST_MTIM_NOW != 0)
    {
        return Err(Errno::INVAL);
    }
    let pick = |set: i32, set_now: i32, t: i64| {
        if fst & set_now != 0 {
            Some(now)
        } else if fst & set != 0 {
            Some(Duration::from_nanos(t as u64))
        } else {
            None
        }
    };
    Ok(SetTimes {
        atime: pick(FST_ATIM, FST_ATIM_NOW, atim),
        mtime: pick(FST_MTIM, FST_MTIM_NOW, mtim),
    })
}

/// Serialises `items[cookie..]` as p1 dirents into at most `cap` bytes.
fn dirents(items: &[DirItem], cookie: u64, cap: usize) -> Vec<u8> {
    let mut out = Vec::new();
    let skip = usize::try_from(cookie).unwrap_or(usize::MAX);
    for (i, item) in items.iter().enumerate().skip(skip) {
        let mut head = [0u8; 24];
        head[0..8].copy_from_slice(&(i as u64 + 1).to_le_bytes());
        head[8..16].copy_from_slice(&item.ino.to_le_bytes());
        head[16..20].copy_from_slice(&(item.name.len() as u32).to_le_bytes());
        head[20] = item.kind.wasi();
        out.extend_from_slice(&head);
        out.extend_from_slice(&item.name);
        if out.len() >= cap {
            out.truncate(cap);
            break;
        }
    }
    out
}

/// Adds the shadowing wrappers; the caller has added wasmtime-wasi's p1
/// functions and turned shadowing on.
pub(crate) fn add_to_linker<T: FsHost>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    linker.func_wrap(
        MODULE,
        "path_open",
        |mut caller: Caller<'_, T>,
         fd: i32,
         dirflags: i32,
         path: i32,
         path_len: i32,
         oflags: i32,
         rights_base: i64,
         rights_inheriting: i64,
         fdflags: i32,
         fd_out: i32|
         -> Ret {
            with(&mut caller, |data, wasi, view| {
                let Some(view) = view else {
                    return in_tokio(p1::path_open(
                        wasi,
                        &mut GuestMemory::Unshared(data),
                        fd,
                        dirflags,
                        path,
                        path_len,
                        oflags,
                        rights_base,
                        rights_inheriting,
                        fdflags,
                        fd_out,
                    ));
                };
                let inner = view.fs.clone();
                let now = view.now();
                let start = match view.dir(fd) {
                    Ok(s) => s,
                    Err(e) => return code(Err(e)),
                };
                let p = match guest_str(data, path, path_len) {
                    Ok(p) => p,
                    Err(e) => return code(Err(e)),
                };
                let create = oflags & OFLAG_CREAT != 0;
                let exclusive = oflags & OFLAG_EXCL != 0;
                let target = match inner.open_target_or_device(
                    &start,
                    &p,
                    dirflags & LOOKUP_FOLLOW != 0,
                    (create, exclusive),
                ) {
                    Ok(Ok(t)) => t,
                    Err(e) => return code(Err(e)),
                    Ok(Err(device)) => {
                        let r = open_device(wasi, view, device, oflags);
                        return code(r.and_then(|fd| put(data, fd_out, &fd.to_le_bytes())));
                    }
                };
                let writes = create || oflags & OFLAG_TRUNC != 0 || rights_base & WRITE_RIGHTS != 0;
                if writes && target.meta.as_ref().is_none_or(|m| !m.is_dir()) {
                    if let Err(e) = inner.check_writable(&target.path) {
                        return code(Err(e));
                    }
                }
                let flags = (oflags, rights_base, rights_inheriting, fdflags);
                let new_fd = match delegate_open(wasi, view.root_fd, target.relative(), flags)? {
                    Ok(fd) => fd,
                    Err(e) => return code(Err(e)),
                };
                let write = rights_base & WRITE_RIGHTS != 0 || oflags & OFLAG_TRUNC != 0;
                let (ino, dir) = match inner.opened(&target, write, now) {
                    Ok(x) => x,
                    Err(e) => {
                        let _ = in_tokio(
                            wasi.fd_close(&mut GuestMemory::Unshared(&mut []), new_fd.into()),
                        );
                        return code(Err(e));
                    }
                };
                view.fds.insert(
                    new_fd,
                    FdEntry {
                        path: target.path.clone(),
                        ino,
                        dir,
                        listing: None,
                    },
                );
                code(put(data, fd_out, &new_fd.to_le_bytes()))
            })
        },
    )?;

    linker.func_wrap(
        MODULE,
        "path_filestat_get",
        |mut caller: Caller<'_, T>, fd: i32, flags: i32, path: i32, len: i32, buf: i32| -> Ret {
            with(&mut caller, |data, wasi, view| {
                let Some(view) = view else {
                    return in_tokio(p1::path_filestat_get(
                        wasi,
                        &mut GuestMemory::Unshared(data),
                        fd,
                        flags,
                        path,
                        len,
                        buf,
                    ));
                };
                code((|| {
                    let start = view.dir(fd)?;
                    let p = guest_str(data, path, len)?;
                    let stat = view.fs.stat(&start, &p, flags & LOOKUP_FOLLOW != 0)?;
                    put(data, buf, &filestat(&stat))
                })())
            })
        },
    )?;

    linker.func_wrap(
        MODULE,
        "fd_filestat_get",
        |mut caller: Caller<'_, T>, fd: i32, buf: i32| -> Ret {
            with(&mut caller, |data, wasi, view| {
                if let Some(d) = view.as_deref().and_then(|v| v.device_fd(fd)) {
                    let epoch = view.as_deref().map(|v| v.fs.epoch).unwrap_or_default();
                    return code(put(data, buf, &filestat(&d.stat(epoch))));
                }
                let entry = view.and_then(|v| {
                    let fs = v.fs.clone();
                    v.entry(fd).map(|e| (fs, e.path.clone(), e.ino, e.dir))
                });
                let Some((fs, path, ino, dir)) = entry else {
                    return in_tokio(p1::fd_filestat_get(
                        wasi,
                        &mut GuestMemory::Unshared(data),
                        fd,
                        buf,
                    ));
                };
                let mut b = match delegate_fd_filestat(wasi, fd)? {
                    Ok(b) => b,
                    Err(e) => return code(Err(e)),
                };
                let times = fs.fd_times(ino, &path);
                b[0..8].copy_from_slice(&DEV.to_le_bytes());
                b[8..16].copy_from_slice(&ino.to_le_bytes());
                if dir {
                    b[24..32].copy_from_slice(&1u64.to_le_bytes());
                    b[32..40].copy_from_slice(&4096u64.to_le_bytes());
                }
                b[40..48].copy_from_slice(&nanos(times.atime).to_le_bytes());
                b[48..56].copy_from_slice(&nanos(times.mtime).to_le_bytes());
                b[56..64].copy_from_slice(&nanos(times.ctime).to_le_bytes());
                code(put(data, buf, &b))
            })
        },
    )?;

    linker.func_wrap(
        MODULE,
        "fd_readdir",
        |mut caller: Caller<'_, T>,
         fd: i32,
         buf: i32,
         buf_len: i32,
         cookie: i64,
         used: i32|
         -> Ret {
            with(&mut caller, |data, wasi, view| {
                if view.as_deref().is_some_and(|v| v.device_fd(fd).is_some()) {
                    return code(Err(Errno::NOTDIR));
                }
                let Some(view) = view.filter(|v| v.has(fd)) else {
                    return in_tokio(p1::fd_readdir(
                        wasi,
                        &mut GuestMemory::Unshared(data),
                        fd,
                        buf,
                        buf_len,
                        cookie,
                        used,
                    ));
                };
                let fs = view.fs.clone();
                code((|| {
                    let entry = view.entry(fd).ok_or(Errno::BADF)?;
                    if !entry.dir {
                        return Err(Errno::NOTDIR);
                    }
                    if cookie == 0 || entry.listing.is_none() {
                        entry.listing = Some(fs.list(&entry.path)?);
                    }
                    let items = entry.listing.as_deref().unwrap_or_default();
                    let bytes = dirents(items, cookie as u64, buf_len as u32 as usize);
                    put(data, buf, &bytes)?;
                    put(data, used, &(bytes.len() as u32).to_le_bytes())
                })())
            })
        },
    )?;

    linker.func_wrap(
        MODULE,
        "path_create_directory",
        |mut caller: Caller<'_, T>, fd: i32, path: i32, len: i32| -> Ret {
            path_op(
                &mut caller,
                (fd, path, len),
                |w, m| in_tokio(p1::path_create_directory(w, m, fd, path, len)),
                |fs, start, p, now| fs.mkdir(start, p, now),
            )
        },
    )?;
    linker.func_wrap(
        MODULE,
        "path_unlink_file",
        |mut caller: Caller<'_, T>, fd: i32, path: i32, len: i32| -> Ret {
            path_op(
                &mut caller,
                (fd, path, len),
                |w, m| in_tokio(p1::path_unlink_file(w, m, fd, path, len)),
                |fs, start, p, now| fs.unlink(start, p, now),
            )
        },
    )?;
    linker.func_wrap(
        MODULE,
        "path_remove_directory",
        |mut caller: Caller<'_, T>, fd: i32, path: i32, len: i32| -> Ret {
            path_op(
                &mut caller,
                (fd, path, len),
                |w, m| in_tokio(p1::path_remove_directory(w, m, fd, path, len)),
                |fs, start, p, now| fs.rmdir(start, p, now),
            )
        },
    )?;

    linker.func_wrap(
        MODULE,
        "path_rename",
        |mut caller: Caller<'_, T>,
         fd: i32,
         old: i32,
         old_len: i32,
         new_fd: i32,
         new: i32,
         new_len: i32|
         -> Ret {
            with(&mut caller, |data, wasi, view| {
                let Some(view) = view else {
                    return in_tokio(p1::path_rename(
                        wasi,
                        &mut GuestMemory::Unshared(data),
                        fd,
                        old,
                        old_len,
                        new_fd,
                        new,
                        new_len,
                    ));
                };
                code((|| {
                    let (s1, s2) = (view.dir(fd)?, view.dir(new_fd)?);
                    let (p1, p2) = (
                        guest_str(data, old, old_len)?,
                        guest_str(data, new, new_len)?,
                    );
                    let now = view.now();
                    let (from, to) = view.fs.rename((&s1, &p1), (&s2, &p2), now)?;
                    view.renamed(&from, &to);
                    Ok(())
                })())
            })
        },
    )?;

    linker.func_wrap(
        MODULE,
        "path_link",
        |mut caller: Caller<'_, T>,
         fd: i32,
         flags: i32,
         old: i32,
         old_len: i32,
         new_fd: i32,
         new: i32,
         new_len: i32|
         -> Ret {
            with(&mut caller, |data, wasi, view| {
                let Some(view) = view else {
                    return in_tokio(p1::path_link(
                        wasi,
                        &mut GuestMemory::Unshared(data),
                        fd,
                        flags,
                        old,
                        old_len,
                        new_fd,
                        new,
                        new_len,
                    ));
                };
                code((|| {
                    let (s1, s2) = (view.dir(fd)?, view.dir(new_fd)?);
                    let (p1, p2) = (
                        guest_str(data, old, old_len)?,
                        guest_str(data, new, new_len)?,
                    );
                    let follow = flags & LOOKUP_FOLLOW != 0;
                    view.fs.link((&s1, &p1, follow), (&s2, &p2), view.now())
                })())
            })
        },
    )?;

    linker.func_wrap(
        MODULE,
        "path_symlink",
        |mut caller: Caller<'_, T>,
         old: i32,
         old_len: i32,
         fd: i32,
         new: i32,
         new_len: i32|
         -> Ret {
            with(&mut caller, |data, wasi, view| {
                let Some(view) = view else {
                    return in_tokio(p1::path_symlink(
                        wasi,
                        &mut GuestMemory::Unshared(data),
                        old,
                        old_len,
                        fd,
                        new,
                        new_len,
                    ));
                };
                code((|| {
                    let start = view.dir(fd)?;
                    let target = guest_str(data, old, old_len)?;
                    let p = guest_str(data, new, new_len)?;
                    view.fs.symlink(&target, &start, &p, view.now())
                })())
            })
        },
    )?;

    linker.func_wrap(
        MODULE,
        "path_readlink",
        |mut caller: Caller<'_, T>,
         fd: i32,
         path: i32,
         len: i32,
         buf: i32,
         buf_len: i32,
         used: i32|
         -> Ret {
            with(&mut caller, |data, wasi, view| {
                let Some(view) = view else {
                    return in_tokio(p1::path_readlink(
                        wasi,
                        &mut GuestMemory::Unshared(data),
                        fd,
                        path,
                        len,
                        buf,
                        buf_len,
                        used,
                    ));
                };
                code((|| {
                    let start = view.dir(fd)?;
                    let p = guest_str(data, path, len)?;
                    let mut target = view.fs.readlink(&start, &p)?;
                    target.truncate(buf_len as u32 as usize);
                    put(data, buf, &target)?;
                    put(data, used, &(target.len() as u32).to_le_bytes())
                })())
            })
        },
    )?;

    linker.func_wrap(
        MODULE,
        "path_filestat_set_times",
        |mut caller: Caller<'_, T>,
         fd: i32,
         flags: i32,
         path: i32,
         len: i32,
         atim: i64,
         mtim: i64,
         fst: i32|
         -> Ret {
            with(&mut caller, |data, wasi, view| {
                let Some(view) = view else {
                    return in_tokio(p1::path_filestat_set_times(
                        wasi,
                        &mut GuestMemory::Unshared(data),
                        fd,
                        flags,
                        path,
                        len,
                        atim,
                        mtim,
                        fst,
                    ));
                };
                code((|| {
                    let start = view.dir(fd)?;
                    let p = guest_str(data, path, len)?;
                    let now = view.now();
                    let set = set_times_arg(atim, mtim, fst, now)?;
                    view.fs
                        .set_times((&start, &p, flags & LOOKUP_FOLLOW != 0), set, now)
                })())
            })
        },
    )?;

    linker.func_wrap(
        MODULE,
        "fd_filestat_set_times",
        |mut caller: Caller<'_, T>, fd: i32, atim: i64, mtim: i64, fst: i32| -> Ret {
            with(&mut caller, |data, wasi, view| {
                if view.as_deref().is_some_and(|v| v.device_fd(fd).is_some()) {
                    return Ok(0);
                }
                let Some(view) = view.filter(|v| v.has(fd)) else {
                    return in_tokio(p1::fd_filestat_set_times(
                        wasi,
                        &mut GuestMemory::Unshared(data),
                        fd,
                        atim,
                        mtim,
                        fst,
                    ));
                };
                let now = view.now();
                let fs = view.fs.clone();
                code((|| {
                    let set = set_times_arg(atim, mtim, fst, now)?;
                    let e = view.entry(fd).ok_or(Errno::BADF)?;
                    fs.set_fd_times(e.ino, &e.path, set, now);
                    Ok(())
                })())
            })
        },
    )?;

    linker.func_wrap(
        MODULE,
        "fd_filestat_set_size",
        |mut caller: Caller<'_, T>, fd: i32, size: i64| -> Ret {
            with(&mut caller, |data, wasi, view| {
                if view.as_deref().is_some_and(|v| v.device_fd(fd).is_some()) {
                    return Ok(0);
                }
                let errno = in_tokio(p1::fd_filestat_set_size(
                    wasi,
                    &mut GuestMemory::Unshared(data),
                    fd,
                    size,
                ))?;
                if let (0, Some(view)) = (errno, view) {
                    let now = view.now();
                    let fs = view.fs.clone();
                    if let Some(e) = view.entry(fd) {
                        fs.wrote_fd(e.ino, &e.path, now);
                    }
                }
                Ok(errno)
            })
        },
    )?;

    linker.func_wrap(
        MODULE,
        "fd_close",
        |mut caller: Caller<'_, T>, fd: i32| -> Ret {
            with(&mut caller, |data, wasi, view| {
                if let Some(v) = view.as_deref() {
                    if fd as u32 == v.root_fd {
                        // kiln's path_open needs the root preopen; the guest
                        // cannot tell it stayed open.
                        return Ok(0);
                    }
                }
                let errno = in_tokio(p1::fd_close(wasi, &mut GuestMemory::Unshared(data), fd))?;
                if let (0, Some(v)) = (errno, view) {
                    v.fds.remove(&(fd as u32));
                    v.devices.remove(&(fd as u32));
                }
                Ok(errno)
            })
        },
    )?;

    linker.func_wrap(
        MODULE,
        "fd_renumber",
        |mut caller: Caller<'_, T>, from: i32, to: i32| -> Ret {
            with(&mut caller, |data, wasi, view| {
                if let Some(v) = view.as_deref() {
                    if from as u32 == v.root_fd || to as u32 == v.root_fd {
                        return code(Err(Errno::NOTSUP));
                    }
                }
                let errno = in_tokio(p1::fd_renumber(
                    wasi,
                    &mut GuestMemory::Unshared(data),
                    from,
                    to,
                ))?;
                if let (0, Some(v)) = (errno, view) {
                    v.fds.remove(&(to as u32));
                    v.devices.remove(&(to as u32));
                    if let Some(e) = v.fds.remove(&(from as u32)) {
                        v.fds.insert(to as u32, e);
                    }
                    if let Some(d) = v.devices.remove(&(from as u32)) {
                        v.devices.insert(to as u32, d);
                    }
                }
                Ok(errno)
            })
        },
    )?;
    Ok(())
}

/// Opens `device`: a descriptor number reserved in wasmtime-wasi's table
/// (a rights-less handle on the root, which kiln never lets the guest use
/// for I/O) that `wasi_devices` answers for.
fn open_device(
    wasi: &mut WasiP1Ctx,
    view: &mut FsView,
    device: Device,
    oflags: i32,
) -> Result<u32, Errno> {
    if oflags & OFLAG_CREAT != 0 && oflags & OFLAG_EXCL != 0 {
        return Err(Errno::EXIST);
    }
    if oflags & OFLAG_DIRECTORY != 0 {
        return Err(Errno::NOTDIR);
    }
    let fd = delegate_open(wasi, view.root_fd, ".", (OFLAG_DIRECTORY, 0, 0, 0))
        .map_err(|_| Errno::IO)??;
    view.devices.insert(fd, device);
    Ok(fd)
}

/// A function of one directory descriptor and one path; `plain` serves
/// runs without a filesystem view.
fn path_op<T: FsHost>(
    caller: &mut Caller<'_, T>,
    (fd, path, len): (i32, i32, i32),
    plain: impl FnOnce(&mut WasiP1Ctx, &mut GuestMemory<'_>) -> Ret,
    op: impl FnOnce(&Inner, &str, &str, Duration) -> Result<(), Errno>,
) -> Ret {
    with(caller, |data, wasi, view| {
        let Some(view) = view else {
            return plain(wasi, &mut GuestMemory::Unshared(data));
        };
        code((|| {
            let start = view.dir(fd)?;
            let p = guest_str(data, path, len)?;
            op(&view.fs, &start, &p, view.now())
        })())
    })
}

impl Inner {
    /// Times of an open descriptor's inode.
    pub(crate) fn fd_times(&self, ino: u64, path: &str) -> super::Times {
        let st = self.state();
        self.times(&st, ino, path)
    }
}
