//! Writing an incoming stream to a temp file while hashing it (the blocking side).
//!
//! The async handler gathers the request body into batches of [`BATCH`] bytes and hands
//! each to [`Ingest::write`] on the blocking pool, one batch in flight while the next is
//! read: memory stays at about two batches whatever the upload's size, no async worker
//! waits on the disk, and a stalled client holds no thread.

use std::io::{self, Read, Write};
use std::sync::Arc;

use super::digest::{Digests, StreamHashes};
use super::sniff::HEAD_LEN;
use crate::store::{Store, TempBlob};

/// Bytes gathered from the network before one blocking write.
pub const BATCH: usize = 1 << 20;

/// Bytes stored in a temp file, with their digests and first bytes.
pub struct Ingested {
    pub temp: TempBlob,
    pub digests: Digests,
    /// The first [`HEAD_LEN`] bytes, for type sniffing.
    pub head: Vec<u8>,
}

/// Bytes written between two background flushes (see [`Ingest::write`]).
pub const FLUSH_EVERY: u64 = 64 << 20;

/// A temp file being filled.
pub struct Ingest {
    temp: TempBlob,
    hashes: StreamHashes,
    head: Vec<u8>,
    written: u64,
    /// `written` when the last background flush began.
    flushed_at: u64,
    /// The background flush in progress (or done, its result not yet read).
    flush: Option<std::thread::JoinHandle<io::Result<()>>>,
}

impl Ingest {
    pub fn new(store: &Store) -> io::Result<Ingest> {
        Ok(Ingest {
            temp: store.create_temp()?,
            hashes: StreamHashes::default(),
            head: Vec::with_capacity(HEAD_LEN),
            written: 0,
            flushed_at: 0,
            flush: None,
        })
    }

    /// Writes `buf` and hashes it (MD5 on the hashes' helper thread, in parallel).
    pub fn write(&mut self, buf: Vec<u8>) -> io::Result<()> {
        if self.head.len() < HEAD_LEN {
            let take = (HEAD_LEN - self.head.len()).min(buf.len());
            self.head.extend_from_slice(&buf[..take]);
        }
        let buf = Arc::new(buf);
        self.hashes.update(Arc::clone(&buf))?;
        self.temp.write_all(&buf)?;
        self.written += buf.len() as u64;
        if self.written - self.flushed_at >= FLUSH_EVERY {
            self.start_flush()?;
        }
        Ok(())
    }

    /// Starts writing what is in the page cache out to disk on a short-lived thread
    /// (`fdatasync` of a second handle), unless a flush is still running. Without it,
    /// the fsync before the 201 would write the whole upload out after its last byte
    /// (~0.4 s per GiB here); with it, the disk works while the data arrives and the
    /// last fsync has at most [`FLUSH_EVERY`] bytes (and the metadata) left. A flush's
    /// error is returned (by the next call or by [`Ingest::finish`]), never dropped:
    /// Linux reports a failed writeback to one fsync only.
    fn start_flush(&mut self) -> io::Result<()> {
        if self.flush.as_ref().is_some_and(|f| !f.is_finished()) {
            return Ok(());
        }
        self.join_flush()?;
        let file = self.temp.file().try_clone()?;
        self.flushed_at = self.written;
        // Not spawned: the final fsync does it all, as it would without this.
        self.flush = std::thread::Builder::new()
            .name("filegate-flush".into())
            .spawn(move || file.sync_data())
            .ok();
        Ok(())
    }

    fn join_flush(&mut self) -> io::Result<()> {
        match self.flush.take() {
            Some(f) => f
                .join()
                .map_err(|_| io::Error::other("the flush thread ended early"))?,
            None => Ok(()),
        }
    }

    /// fsyncs the bytes (so that persisting later, under a lock, is quick) and hands them over.
    pub fn finish(mut self) -> io::Result<Ingested> {
        self.join_flush()?;
        self.temp.file().sync_all()?;
        Ok(Ingested {
            temp: self.temp,
            digests: self.hashes.finish()?,
            head: self.head,
        })
    }

    /// Copies `src` into this temp file in buffers of [`BATCH`] bytes. Blocking.
    pub fn copy_from(&mut self, src: &mut impl Read) -> io::Result<()> {
        loop {
            let mut buf = Vec::with_capacity(BATCH);
            // `read_to_end` retries on `Interrupted` and reads into the spare capacity.
            src.by_ref().take(BATCH as u64).read_to_end(&mut buf)?;
            if buf.is_empty() {
                return Ok(());
            }
            self.write(buf)?;
        }
    }
}
