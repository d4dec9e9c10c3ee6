//! Writing an incoming stream to a temp file while hashing it (blocking side).
//!
//! The async handler reads the request body and hands buffers over a bounded channel to
//! [`Ingest::run`], which runs on the blocking pool: memory stays at the channel's few
//! buffers whatever the upload's size, and no async worker waits on the disk.

use std::io::{self, Read, Write};

use super::digest::{Digests, Hashes};
use super::sniff::HEAD_LEN;
use crate::store::{Store, TempBlob};

/// Buffers in flight between the network and the disk.
pub const CHANNEL_DEPTH: usize = 16;

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

    /// Drains `rx` into a new temp file until the sender is dropped. Blocking.
    pub fn run(
        store: &Store,
        mut rx: tokio::sync::mpsc::Receiver<actix_web::web::Bytes>,
    ) -> io::Result<Ingested> {
        let mut ing = Ingest::new(store)?;
        while let Some(buf) = rx.blocking_recv() {
            ing.write(&buf)?;
        }
        ing.finish()
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
