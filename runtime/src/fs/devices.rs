//! The device files a RUN step finds under `/dev`, as Docker's `/dev` mount
//! provides them: `null`, `zero`, `full`, `random`, `urandom`, `stdin`,
//! `stdout` and `stderr`. WASI p1 has no devices, and the rootfs must not
//! get real ones (they cannot be made without privileges and must not
//! reach a layer), so kiln serves them itself: a path that names one opens
//! a descriptor kiln answers (`wasi_devices`), whether or not the image
//! has a `/dev` directory. Like a mount, a device hides any file the image
//! has at its path. `random` and `urandom` read from the step's seeded
//! generator, so what a step draws from them is the same on every run.

use super::owner::Owner;
use super::{FileKind, Stat, Times};
use std::time::Duration;

/// One device file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Device {
    /// Reads end at once; writes vanish.
    Null,
    /// Reads give zero bytes; writes vanish.
    Zero,
    /// Reads give zero bytes; writes fail with ENOSPC.
    Full,
    /// `random` and `urandom`: reads give the step's seeded bytes.
    Random,
    /// The opening program's standard input, output or error (0, 1, 2).
    Stdio(u32),
}

/// The device number devices show (the rootfs shows 1).
pub(crate) const DEVICES_DEV: u64 = 2;

impl Device {
    /// The device at canonical image path `path`, if any.
    pub fn at(path: &str) -> Option<Device> {
        Some(match path.strip_prefix("/dev/")? {
            "null" => Device::Null,
            "zero" => Device::Zero,
            "full" => Device::Full,
            "random" | "urandom" => Device::Random,
            "stdin" | "fd/0" => Device::Stdio(0),
            "stdout" | "fd/1" => Device::Stdio(1),
            "stderr" | "fd/2" => Device::Stdio(2),
            _ => return None,
        })
    }

    /// What `stat` shows: a character device, empty, with the step's epoch
    /// as its times.
    pub fn stat(self, epoch: Duration) -> Stat {
        let ino = match self {
            Device::Null => 1,
            Device::Zero => 2,
            Device::Full => 3,
            Device::Random => 4,
            Device::Stdio(fd) => 5 + u64::from(fd),
        };
        Stat {
            ino,
            kind: FileKind::CharDevice,
            nlink: 1,
            size: 0,
            times: Times::all(epoch),
        }
    }

    /// Mode and owner, as on Linux: everybody may read and write, root owns.
    pub fn owner(self) -> Owner {
        Owner {
            mode: 0o666,
            uid: 0,
            gid: 0,
        }
    }
}

/// `path` relative to the directory at canonical `start` (or absolute),
/// with `.` and `..` applied by name: a device is found even when the image
/// has no `/dev` for the real resolution to walk through.
pub fn lexical(start: &str, path: &str) -> String {
    crate::image_path::join_normalised(start, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_are_found_by_canonical_path_only() {
        assert_eq!(Device::at("/dev/null"), Some(Device::Null));
        assert_eq!(Device::at("/dev/urandom"), Some(Device::Random));
        assert_eq!(Device::at("/dev/fd/1"), Some(Device::Stdio(1)));
        assert_eq!(Device::at("/dev/sda"), None);
        assert_eq!(Device::at("/tmp/dev/null"), None);
        assert_eq!(Device::at("/dev"), None);
    }

    #[test]
    fn devices_are_character_devices_with_distinct_inodes() {
        let all = [
            Device::Null,
            Device::Zero,
            Device::Full,
            Device::Random,
            Device::Stdio(0),
            Device::Stdio(1),
            Device::Stdio(2),
        ];
        let mut inos: Vec<u64> = all.iter().map(|d| d.stat(Duration::ZERO).ino).collect();
        inos.dedup();
        assert_eq!(inos.len(), all.len());
        assert!(all
            .iter()
            .all(|d| d.stat(Duration::ZERO).kind == FileKind::CharDevice));
    }
}
