//! WASI preview-1 error numbers, and the mapping from host I/O errors. The
//! guest sees only these numbers, never a host-specific code.

use std::io;

/// A WASI `errno` value (witx `errno`, preview 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Errno(pub u16);

#[allow(missing_docs)]
impl Errno {
    pub const ACCES: Errno = Errno(2);
    pub const BADF: Errno = Errno(8);
    pub const BUSY: Errno = Errno(10);
    pub const EXIST: Errno = Errno(20);
    pub const FAULT: Errno = Errno(21);
    pub const ILSEQ: Errno = Errno(25);
    pub const INVAL: Errno = Errno(28);
    pub const IO: Errno = Errno(29);
    pub const ISDIR: Errno = Errno(31);
    pub const LOOP: Errno = Errno(32);
    pub const MLINK: Errno = Errno(34);
    pub const NAMETOOLONG: Errno = Errno(37);
    pub const NOENT: Errno = Errno(44);
    pub const NOMEM: Errno = Errno(48);
    pub const NOSPC: Errno = Errno(51);
    pub const NOSYS: Errno = Errno(52);
    pub const NOTDIR: Errno = Errno(54);
    pub const NOTEMPTY: Errno = Errno(55);
    pub const NOTSUP: Errno = Errno(58);
    pub const OVERFLOW: Errno = Errno(61);
    pub const PERM: Errno = Errno(63);
    pub const ROFS: Errno = Errno(69);
    pub const XDEV: Errno = Errno(75);
}

impl Errno {
    /// The value a WASI function returns.
    pub fn code(self) -> i32 {
        i32::from(self.0)
    }

    /// A short name for messages ("ENOENT").
    pub fn name(self) -> &'static str {
        match self {
            Errno::ACCES => "EACCES",
            Errno::BADF => "EBADF",
            Errno::EXIST => "EEXIST",
            Errno::FAULT => "EFAULT",
            Errno::ILSEQ => "EILSEQ",
            Errno::INVAL => "EINVAL",
            Errno::ISDIR => "EISDIR",
            Errno::LOOP => "ELOOP",
            Errno::NOENT => "ENOENT",
            Errno::NOTDIR => "ENOTDIR",
            Errno::NOTEMPTY => "ENOTEMPTY",
            Errno::PERM => "EPERM",
            Errno::XDEV => "EXDEV",
            Errno::BUSY => "EBUSY",
            Errno::IO => "EIO",
            Errno::MLINK => "EMLINK",
            Errno::NAMETOOLONG => "ENAMETOOLONG",
            Errno::NOMEM => "ENOMEM",
            Errno::NOSPC => "ENOSPC",
            Errno::NOSYS => "ENOSYS",
            Errno::NOTSUP => "ENOTSUP",
            Errno::OVERFLOW => "EOVERFLOW",
            Errno::ROFS => "EROFS",
            _ => "E?",
        }
    }
}

impl std::fmt::Display for Errno {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (WASI errno {})", self.name(), self.0)
    }
}

impl From<io::Error> for Errno {
    fn from(e: io::Error) -> Errno {
        #[cfg(unix)]
        if let Some(code) = e.raw_os_error() {
            if let Some(errno) = from_raw(code) {
                return errno;
            }
        }
        use io::ErrorKind as K;
        match e.kind() {
            K::NotFound => Errno::NOENT,
            K::PermissionDenied => Errno::PERM,
            K::AlreadyExists => Errno::EXIST,
            K::NotADirectory => Errno::NOTDIR,
            K::IsADirectory => Errno::ISDIR,
            K::DirectoryNotEmpty => Errno::NOTEMPTY,
            K::InvalidInput => Errno::INVAL,
            K::InvalidFilename => Errno::NAMETOOLONG,
            K::CrossesDevices => Errno::XDEV,
            K::ReadOnlyFilesystem => Errno::ROFS,
            K::StorageFull => Errno::NOSPC,
            K::ResourceBusy => Errno::BUSY,
            K::TooManyLinks => Errno::MLINK,
            K::OutOfMemory => Errno::NOMEM,
            K::Unsupported => Errno::NOTSUP,
            _ => Errno::IO,
        }
    }
}

/// Linux/BSD errno numbers that need a precise WASI counterpart.
#[cfg(unix)]
fn from_raw(code: i32) -> Option<Errno> {
    // Values shared by Linux, macOS and the BSDs.
    Some(match code {
        1 => Errno::PERM,
        2 => Errno::NOENT,
        13 => Errno::ACCES,
        17 => Errno::EXIST,
        18 => Errno::XDEV,
        20 => Errno::NOTDIR,
        21 => Errno::ISDIR,
        22 => Errno::INVAL,
        #[cfg(any(target_os = "linux", target_os = "android"))]
        40 => Errno::LOOP,
        #[cfg(any(target_os = "macos", target_os = "ios", target_os = "freebsd"))]
        62 => Errno::LOOP,
        _ => return None,
    })
}

impl From<Errno> for io::Error {
    /// For host-side callers (the shell's redirections): the kind where one
    /// fits, and the errno's text.
    fn from(e: Errno) -> io::Error {
        use io::ErrorKind as K;
        let (kind, text) = match e {
            Errno::NOENT => (K::NotFound, "No such file or directory"),
            Errno::ACCES | Errno::PERM => (K::PermissionDenied, "Permission denied"),
            Errno::EXIST => (K::AlreadyExists, "File exists"),
            Errno::NOTDIR => (K::NotADirectory, "Not a directory"),
            Errno::ISDIR => (K::IsADirectory, "Is a directory"),
            Errno::LOOP => (K::Other, "Too many levels of symbolic links"),
            Errno::NOTEMPTY => (K::DirectoryNotEmpty, "Directory not empty"),
            Errno::ROFS => (K::ReadOnlyFilesystem, "Read-only file system"),
            _ => return io::Error::other(e.to_string()),
        };
        io::Error::new(kind, text)
    }
}
