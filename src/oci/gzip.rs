//! Parallel gzip whose bytes do not depend on the thread count.
//!
//! The input is cut into fixed [`CHUNK`]-sized pieces. Each piece is
//! deflated on its own (primed with the previous piece's last 32 KiB as a
//! preset dictionary, as pigz does) and ends with a sync flush, so it stops
//! on a byte boundary; the pieces are concatenated in order, followed by an
//! empty final block, inside one gzip member whose CRC32 is combined from
//! the pieces' CRCs. What each piece compresses to depends only on its bytes
//! and its predecessor's, never on which thread or when, so 1 thread and N
//! threads give identical output.
//!
//! Header: no name, mtime 0, XFL 0, OS 255 ("unknown", what Go's
//! compress/gzip and so BuildKit write).

use crc32fast::Hasher as Crc;
use flate2::{Compress, Compression, FlushCompress};
use std::collections::BTreeMap;
use std::io::{self, Write};
use std::sync::mpsc::{channel, sync_channel, Receiver, Sender, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// Bytes per independently deflated piece.
pub const CHUNK: usize = 1 << 20;
/// Deflate's window: the most of the previous piece a dictionary can use.
const DICT: usize = 32 * 1024;
const HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255];
/// A final, empty, fixed-Huffman block: ends the deflate stream.
const FINAL_BLOCK: [u8; 2] = [0x03, 0x00];

struct Job {
    index: u64,
    data: Arc<Vec<u8>>,
    dict: Option<Arc<Vec<u8>>>,
}

struct Done {
    index: u64,
    deflated: io::Result<Vec<u8>>,
    crc: Crc,
    len: u64,
}

/// A `Write` that gzips into `W` on `threads` worker threads plus one
/// thread that writes the pieces out in order. Call [`GzipWriter::finish`].
pub struct GzipWriter<W: Write + Send + 'static> {
    buf: Vec<u8>,
    prev: Option<Arc<Vec<u8>>>,
    next_index: u64,
    jobs: Option<SyncSender<Job>>,
    tokens: Receiver<()>,
    workers: Vec<JoinHandle<()>>,
    collector: Option<JoinHandle<io::Result<W>>>,
}

impl<W: Write + Send + 'static> GzipWriter<W> {
    pub fn new(out: W, level: u32, threads: usize) -> GzipWriter<W> {
        let threads = threads.max(1);
        // Pieces in flight (queued, compressing, or waiting to be written in
        // order): bounds memory to a few MiB whatever the input size.
        let in_flight = 2 * threads + 2;
        let (job_tx, job_rx) = sync_channel::<Job>(threads);
        let job_rx = Arc::new(Mutex::new(job_rx));
        let (done_tx, done_rx) = channel::<Done>();
        let (token_tx, token_rx) = sync_channel::<()>(in_flight);
        for _ in 0..in_flight {
            let _ = token_tx.send(());
        }
        let workers = (0..threads)
            .map(|_| {
                let rx = Arc::clone(&job_rx);
                let tx = done_tx.clone();
                std::thread::spawn(move || worker(rx, tx, level))
            })
            .collect();
        drop(done_tx);
        let collector = std::thread::spawn(move || collect(out, done_rx, token_tx));
        GzipWriter {
            buf: Vec::with_capacity(CHUNK),
            prev: None,
            next_index: 0,
            jobs: Some(job_tx),
            tokens: token_rx,
            workers,
            collector: Some(collector),
        }
    }

    fn submit(&mut self) -> io::Result<()> {
        let data = Arc::new(std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK)));
        let stopped = || io::Error::other("gzip pipeline stopped");
        self.tokens.recv().map_err(|_| stopped())?;
        let job = Job {
            index: self.next_index,
            data: Arc::clone(&data),
            dict: self.prev.take(),
        };
        self.jobs
            .as_ref()
            .ok_or_else(stopped)?
            .send(job)
            .map_err(|_| stopped())?;
        self.next_index += 1;
        self.prev = Some(data);
        Ok(())
    }

    /// Flushes the last piece, waits for all threads and returns `W`.
    pub fn finish(mut self) -> io::Result<W> {
        let submitted = if self.buf.is_empty() {
            Ok(())
        } else {
            self.submit()
        };
        let out = self.shutdown();
        submitted?;
        out
    }

    fn shutdown(&mut self) -> io::Result<W> {
        self.jobs = None;
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
        match self.collector.take() {
            Some(c) => c
                .join()
                .unwrap_or_else(|_| Err(io::Error::other("gzip writer thread panicked"))),
            None => Err(io::Error::other("gzip writer already finished")),
        }
    }
}

impl<W: Write + Send + 'static> Drop for GzipWriter<W> {
    fn drop(&mut self) {
        if self.collector.is_some() {
            let _ = self.shutdown();
        }
    }
}

impl<W: Write + Send + 'static> Write for GzipWriter<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let n = data.len().min(CHUNK - self.buf.len());
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() == CHUNK {
            self.submit()?;
        }
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn worker(jobs: Arc<Mutex<Receiver<Job>>>, done: Sender<Done>, level: u32) {
    loop {
        let job = match jobs.lock() {
            Ok(rx) => match rx.recv() {
                Ok(job) => job,
                Err(_) => return,
            },
            Err(_) => return,
        };
        let mut crc = Crc::new();
        crc.update(&job.data);
        let deflated = deflate_piece(level, &job.data, job.dict.as_deref().map(|d| &d[..]));
        let msg = Done {
            index: job.index,
            deflated,
            crc,
            len: job.data.len() as u64,
        };
        if done.send(msg).is_err() {
            return;
        }
    }
}

/// Raw deflate of one piece, ending with a sync flush (byte-aligned, not
/// final).
fn deflate_piece(level: u32, data: &[u8], dict: Option<&[u8]>) -> io::Result<Vec<u8>> {
    let mut c = Compress::new(Compression::new(level), false);
    if let Some(d) = dict {
        c.set_dictionary(&d[d.len().saturating_sub(DICT)..])
            .map_err(io::Error::other)?;
    }
    let mut out = Vec::with_capacity(data.len() + data.len() / 8 + 64);
    loop {
        let consumed = usize::try_from(c.total_in()).map_err(io::Error::other)?;
        let rest = data.get(consumed..).unwrap_or_default();
        c.compress_vec(rest, &mut out, FlushCompress::Sync)
            .map_err(io::Error::other)?;
        if c.total_in() == data.len() as u64 && out.len() < out.capacity() {
            return Ok(out);
        }
        out.reserve(out.capacity().max(1024));
    }
}

fn collect<W: Write>(mut out: W, done: Receiver<Done>, tokens: SyncSender<()>) -> io::Result<W> {
    out.write_all(&HEADER)?;
    let mut pending = BTreeMap::new();
    let mut next = 0u64;
    let mut crc = Crc::new();
    let mut total = 0u64;
    for d in done {
        pending.insert(d.index, d);
        while let Some(d) = pending.remove(&next) {
            out.write_all(&d.deflated?)?;
            crc.combine(&d.crc);
            total += d.len;
            next += 1;
            let _ = tokens.send(());
        }
    }
    if !pending.is_empty() {
        return Err(io::Error::other("gzip piece lost: a worker stopped early"));
    }
    out.write_all(&FINAL_BLOCK)?;
    out.write_all(&crc.finalize().to_le_bytes())?;
    // ISIZE is the input length modulo 2^32, as RFC 1952 defines it.
    out.write_all(&(total as u32).to_le_bytes())?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn sample(n: usize) -> Vec<u8> {
        // Semi-compressible: text with a counter, some pseudo-random bytes.
        let mut v = Vec::with_capacity(n);
        let mut x = 0x1234_5678u32;
        while v.len() < n {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            if x.is_multiple_of(3) {
                v.extend_from_slice(&x.to_le_bytes());
            } else {
                v.extend_from_slice(format!("line {} of text\n", x % 1000).as_bytes());
            }
        }
        v.truncate(n);
        v
    }

    fn gz(data: &[u8], threads: usize, split_writes: usize) -> Vec<u8> {
        let mut w = GzipWriter::new(Vec::new(), 6, threads);
        for part in data.chunks(split_writes.max(1)) {
            w.write_all(part).unwrap();
        }
        w.finish().unwrap()
    }

    #[test]
    fn output_is_identical_for_any_thread_count_and_decompresses() {
        let data = sample(3 * CHUNK + 12345);
        let one = gz(&data, 1, 7777);
        let four = gz(&data, 4, 1 << 16);
        assert_eq!(one, four);
        assert_eq!(&one[..10], &HEADER);
        let mut back = Vec::new();
        flate2::read::GzDecoder::new(&one[..])
            .read_to_end(&mut back)
            .unwrap();
        assert_eq!(back, data);
        assert!(one.len() < data.len(), "it compresses");
    }

    #[test]
    fn empty_input_is_a_valid_gzip_of_nothing() {
        let out = gz(b"", 2, 1);
        let mut back = Vec::new();
        flate2::read::GzDecoder::new(&out[..])
            .read_to_end(&mut back)
            .unwrap();
        assert!(back.is_empty());
        assert_eq!(out.len(), 10 + 2 + 8);
    }

    #[test]
    fn a_failing_sink_is_an_error_not_a_hang() {
        struct Broken;
        impl Write for Broken {
            fn write(&mut self, _: &[u8]) -> io::Result<usize> {
                Err(io::Error::other("disk full"))
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let mut w = GzipWriter::new(Broken, 1, 2);
        let data = sample(CHUNK);
        let mut failed = false;
        for _ in 0..20 {
            if w.write_all(&data).is_err() {
                failed = true;
                break;
            }
        }
        let err = w.finish().err();
        assert!(failed || err.is_some());
    }
}
