//! Turns the shell's streams into what a WASI instance can use: OS pipes go
//! through as files; in-process streams (here-documents, files the shell
//! opened, the step's log) are bridged by a pipe and a pump thread.

use crate::invocation::{Output as RunOutput, Stdin as RunStdin};
use crate::shell::{current_lineage, too_many_threads, Input, Output};
use std::fs::File;
use std::io::{self, PipeReader, PipeWriter, Read, Write};
use std::thread::JoinHandle;

/// A pump that must finish before the command counts as done (its output
/// has to reach the shell's stream in order).
pub(crate) struct Pump(Option<JoinHandle<()>>);

impl Pump {
    fn none() -> Pump {
        Pump(None)
    }

    /// Waits until everything the guest wrote has been forwarded.
    pub(crate) fn finish(mut self) {
        if let Some(h) = self.0.take() {
            let _ = h.join();
        }
    }
}

#[cfg(unix)]
fn reader_file(p: PipeReader) -> File {
    File::from(std::os::fd::OwnedFd::from(p))
}
#[cfg(unix)]
fn writer_file(p: PipeWriter) -> File {
    File::from(std::os::fd::OwnedFd::from(p))
}
#[cfg(windows)]
fn reader_file(p: PipeReader) -> File {
    File::from(std::os::windows::io::OwnedHandle::from(p))
}
#[cfg(windows)]
fn writer_file(p: PipeWriter) -> File {
    File::from(std::os::windows::io::OwnedHandle::from(p))
}

/// One pump thread out of the step's thread budget (see the shell's
/// nesting limits): each program started by a program may need its own.
fn pump_thread() -> io::Result<impl Send> {
    current_lineage()
        .threads
        .take(1)
        .ok_or_else(|| io::Error::other(too_many_threads()))
}

/// The guest's stdin for the shell's `input`. An in-process stream is fed
/// through a pipe by a thread that stops when the guest closes its end.
pub(crate) fn stdin(input: &Input) -> io::Result<RunStdin> {
    match input {
        Input::Null => Ok(RunStdin::Empty),
        Input::Pipe(p) => Ok(RunStdin::File(reader_file(p.try_clone()?))),
        Input::Stream(_) => {
            let ticket = pump_thread()?;
            let (r, mut w) = io::pipe()?;
            let source = input.clone();
            std::thread::Builder::new()
                .name("kiln-stdin".into())
                .spawn(move || {
                    let _ticket = ticket;
                    let mut buf = [0u8; 64 * 1024];
                    loop {
                        match source.read(&mut buf) {
                            Ok(0) => break,
                            Ok(n) => {
                                if w.write_all(&buf[..n]).is_err() {
                                    break;
                                }
                            }
                            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                            Err(_) => break,
                        }
                    }
                })?;
            Ok(RunStdin::File(reader_file(r)))
        }
    }
}

/// The guest's stdout or stderr for the shell's `output`, and the pump to
/// wait for after the guest has ended (and dropped its end).
pub(crate) fn output(out: &Output) -> io::Result<(RunOutput, Pump)> {
    match out {
        Output::Null => Ok((RunOutput::Discard, Pump::none())),
        Output::Pipe(p) => Ok((RunOutput::File(writer_file(p.try_clone()?)), Pump::none())),
        Output::Stream(_) => {
            let ticket = pump_thread()?;
            let (mut r, w) = io::pipe()?;
            let sink = out.clone();
            let handle = std::thread::Builder::new()
                .name("kiln-stdout".into())
                .spawn(move || {
                    let _ticket = ticket;
                    let mut buf = [0u8; 64 * 1024];
                    loop {
                        match r.read(&mut buf) {
                            Ok(0) => break,
                            Ok(n) => {
                                // Keep draining even if the sink fails, so
                                // the guest never blocks on a full pipe.
                                let _ = sink.write_all(&buf[..n]);
                            }
                            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                            Err(_) => break,
                        }
                    }
                })?;
            Ok((RunOutput::File(writer_file(w)), Pump(Some(handle))))
        }
    }
}
