//! Writing an incoming stream to a temp file while hashing it (the blocking side).
//!
//! The async handler gathers the request body into batches of [`BATCH`] bytes and hands
//! each to [`Ingest::write`] on the blocking pool, one batch in flight while the next is
//! read: memory stays at about two batches whatever the upload's size, no async worker
//! waits on the disk, and a stalled client holds no thread.

use std::io::{self, Read, Write};

use super::digest::{Digests, Hashes};
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

/// A temp file being filled.
pub struct Ingest {
    temp: TempBlob,
    hashes: Hashes,
    head: Vec<u8>,
}

impl Ingest {
    pub fn new(store: &Store) -> io::Result<Ingest> {
        Ok(Ingest {
            temp: store.create_temp()?,
            hashes: Hashes::default(),
            head: Vec::with_capacity(HEAD_LEN),
        })
    }

    pub fn write(&mut self, buf: &[u8]) -> io::Result<()> {
        if self.head.len() < HEAD_LEN {
            let take = (HEAD_LEN - self.head.len()).min(buf.len());
            self.head.extend_from_slice(&buf[..take]);
        }
        self.temp.write_all(buf)?;
        self.hashes.update(buf);
        Ok(())
    }

    /// fsyncs the bytes (so that persisting later, under a lock, is quick) and hands them over.
    pub fn finish(mut self) -> io::Result<Ingested> {
        self.temp.file().sync_all()?;
        Ok(Ingested {
            temp: self.temp,
            digests: self.hashes.finish(),
            head: self.head,
        })
    }

    /// Copies `src` into this temp file in large buffers. Blocking.
    pub fn copy_from(&mut self, src: &mut impl Read) -> io::Result<()> {
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            let n = match src.read(&mut buf) {
                Ok(0) => return Ok(()),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            self.write(&buf[..n])?;
        }
    }
}
