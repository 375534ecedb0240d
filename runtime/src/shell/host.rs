//! The shell's only window on the outside: a `Host` that runs external
//! commands and answers filesystem questions about *image* paths.
//!
//! The shell always passes absolute image paths (the shell's cwd joined with
//! the word, `/`-separated, not normalised: resolving `..` and symlinks is the
//! host's job, with chroot semantics). The sandbox implements this over the
//! stage rootfs and WASI instances; tests implement it in memory.

use std::io::{self, Read, Write};
use std::io::{PipeReader, PipeWriter};
use std::sync::{Arc, Mutex};

/// What a path is, as far as `test` and globbing need to know.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    File,
    Dir,
    Symlink,
    Other,
}

/// Metadata of an image path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileInfo {
    pub kind: FileKind,
    pub size: u64,
    /// Permission bits as kiln records them (e.g. 0o755).
    pub mode: u32,
}

/// How a redirection opens a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenMode {
    Read,
    /// Create or truncate.
    Write,
    /// Create or append.
    Append,
}

/// A readable stream shared between the shell and its children.
pub type SharedReader = Arc<Mutex<Box<dyn Read + Send>>>;
/// A writable stream shared between the shell and its children.
pub type SharedWriter = Arc<Mutex<Box<dyn Write + Send>>>;

/// A command's standard input.
#[derive(Clone)]
pub enum Input {
    /// Reads as empty (`< /dev/null`, or nothing given).
    Null,
    /// An OS pipe (pipelines); the reader sees EOF once every writer is dropped.
    Pipe(Arc<PipeReader>),
    /// Any other stream: a file opened through the host, a here-document.
    Stream(SharedReader),
}

/// A command's standard output or error.
#[derive(Clone)]
pub enum Output {
    /// Discards everything (`> /dev/null`).
    Null,
    Pipe(Arc<PipeWriter>),
    Stream(SharedWriter),
}

impl Input {
    pub fn from_reader(r: impl Read + Send + 'static) -> Input {
        Input::Stream(Arc::new(Mutex::new(Box::new(r))))
    }

    /// Reads into `buf`; 0 means end of input.
    pub fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Input::Null => Ok(0),
            Input::Pipe(p) => (&**p).read(buf),
            Input::Stream(s) => s
                .lock()
                .map_err(|_| io::Error::other("input stream poisoned"))?
                .read(buf),
        }
    }

    /// Reads everything that is left.
    pub fn read_to_end(&self) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        let mut buf = [0u8; 8192];
        loop {
            match self.read(&mut buf) {
                Ok(0) => return Ok(out),
                Ok(n) => out.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
}

impl Read for Input {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        Input::read(self, buf)
    }
}

impl Output {
    pub fn from_writer(w: impl Write + Send + 'static) -> Output {
        Output::Stream(Arc::new(Mutex::new(Box::new(w))))
    }

    pub fn write_all(&self, bytes: &[u8]) -> io::Result<()> {
        match self {
            Output::Null => Ok(()),
            Output::Pipe(p) => (&**p).write_all(bytes),
            Output::Stream(s) => {
                let mut w = s
                    .lock()
                    .map_err(|_| io::Error::other("output stream poisoned"))?;
                w.write_all(bytes)?;
                w.flush()
            }
        }
    }
}

impl Write for Output {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_all(buf)?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Standard streams handed to a spawned command.
#[derive(Clone)]
pub struct Stdio {
    pub stdin: Input,
    pub stdout: Output,
    pub stderr: Output,
}

/// A running external command.
pub trait Child: Send {
    /// Waits for the command and returns its exit status (0-255).
    fn wait(self: Box<Self>) -> i32;
}

/// A command that has already finished (for hosts that run synchronously).
pub struct Finished(pub i32);

impl Child for Finished {
    fn wait(self: Box<Self>) -> i32 {
        self.0
    }
}

/// Everything the shell needs from the outside world.
///
/// Methods take `&self` and the host is `Sync` because pipeline stages run
/// on separate threads at the same time.
pub trait Host: Send + Sync {
    /// Starts an external command. `argv[0]` is the name as written; the host
    /// looks it up in `PATH` from `env`. Return `io::ErrorKind::NotFound` for
    /// an unknown command (the shell then reports `sh: NAME: not found`, 127).
    /// The host must drop `stdio` when the command ends so readers see EOF.
    /// During the call, a [`Shell`](super::Shell) created on the calling
    /// thread continues the calling shell's nesting count and thread budget
    /// (a shell run as a command counts as one more level).
    fn spawn(
        &self,
        argv: &[String],
        env: &[(String, String)],
        cwd: &str,
        stdio: Stdio,
    ) -> io::Result<Box<dyn Child>>;

    /// Where `name` would be found on `PATH` (for `command -v` and `type`).
    fn find_program(&self, name: &str, env: &[(String, String)]) -> Option<String>;

    /// Opens an image file for a redirection.
    fn open_read(&self, path: &str) -> io::Result<Box<dyn Read + Send>>;
    fn open_write(&self, path: &str, mode: OpenMode) -> io::Result<Box<dyn Write + Send>>;

    /// Metadata following symlinks (`None` if it does not exist).
    fn metadata(&self, path: &str) -> Option<FileInfo>;
    /// Metadata of the path itself (for `test -h`).
    fn symlink_metadata(&self, path: &str) -> Option<FileInfo>;

    /// The identity of the file `path` names, following symlinks (in
    /// kiln: the step filesystem's virtual inode number), for `test -ef`:
    /// hard links to one file have the same. `None` if it does not exist or
    /// the host cannot tell; the shell then compares normalised paths.
    fn file_id(&self, path: &str) -> Option<u64> {
        let _ = path;
        None
    }

    /// Names in a directory (not `.`/`..`), in any order: the shell sorts.
    fn read_dir(&self, path: &str) -> io::Result<Vec<String>>;

    /// The descriptor (0, 1 or 2) the image path `path` stands for when it
    /// names the standard input, output or error (`/dev/stdout`, or a
    /// symlink to it), so that redirections to it reach the shell's own.
    fn stdio_alias(&self, path: &str) -> Option<usize> {
        match path {
            "/dev/stdin" => Some(0),
            "/dev/stdout" => Some(1),
            "/dev/stderr" => Some(2),
            _ => None,
        }
    }

    /// Why the script must stop now (the step's time is up), checked at
    /// every loop iteration so a loop of builtins cannot run forever.
    fn interrupted(&self) -> Option<String> {
        None
    }
}
