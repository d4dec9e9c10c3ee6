//! Writing an incoming stream to a temp file while hashing it (the blocking side).
//!
//! The async handler gathers the request body into batches of [`BATCH`] bytes (the
//! network's pieces, not copied) and hands each to [`Ingest::write`] on the blocking
//! pool, one batch in flight while the next is read. MD5 runs on a helper thread of the
//! upload's own (see [`StreamHashes`]), in parallel with the write and SHA-256, and the
//! disk is flushed in the background as the data arrives (see [`FLUSH_EVERY`]). Memory
//! stays at a few batches whatever the upload's size, no async worker waits on the disk
//! or on hashing, and a stalled client holds no pool thread (only its MD5 helper, asleep).

use std::io::{self, IoSlice, Read, Write};
use std::sync::Arc;

use bytes::Bytes;

use super::digest::{batch_len, Batch, Digests, StreamHashes};
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

    /// Writes a copy of `buf` (see [`Ingest::write_pieces`]).
    pub fn write(&mut self, buf: &[u8]) -> io::Result<()> {
        self.write_pieces(vec![Bytes::copy_from_slice(buf)])
    }

    /// Writes the pieces in one `writev` (as the network delivered them: no copy into a
    /// batch buffer) and hashes them (MD5 on the hashes' helper thread, in parallel).
    pub fn write_pieces(&mut self, pieces: Vec<Bytes>) -> io::Result<()> {
        for b in &pieces {
            if self.head.len() >= HEAD_LEN {
                break;
            }
            let take = (HEAD_LEN - self.head.len()).min(b.len());
            self.head.extend_from_slice(&b[..take]);
        }
        let batch: Batch = Arc::new(pieces);
        self.hashes.update(Arc::clone(&batch))?;
        write_all_vectored(self.temp.file(), &batch)?;
        self.written += batch_len(&batch) as u64;
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
            self.write_pieces(vec![Bytes::from(buf)])?;
        }
    }
}

/// Writes all of `pieces`, in as few `writev` calls as the kernel allows.
fn write_all_vectored(f: &mut impl Write, pieces: &[Bytes]) -> io::Result<()> {
    let mut slices: Vec<IoSlice> = pieces
        .iter()
        .filter(|b| !b.is_empty())
        .map(|b| IoSlice::new(b))
        .collect();
    let mut rest = &mut slices[..];
    while !rest.is_empty() {
        match f.write_vectored(rest) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => IoSlice::advance_slices(&mut rest, n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::files::digest::{noise, Hashes};

    fn expected(data: &[u8]) -> Digests {
        let mut h = Hashes::default();
        h.update(data);
        h.finish()
    }

    fn stored(store: &Store, done: Ingested) -> Vec<u8> {
        let mut f = done.temp.open_read().unwrap();
        let mut back = Vec::new();
        f.read_to_end(&mut back).unwrap();
        drop(done);
        assert_eq!(
            store.temp_count().unwrap(),
            0,
            "the temp file goes with its Ingested"
        );
        back
    }

    #[test]
    fn batches_of_pieces_are_written_and_hashed_as_one_stream() {
        let d = tempfile::tempdir().unwrap();
        let store = Store::open(d.path()).unwrap();
        // Crosses two background flushes; batches of uneven pieces, some empty.
        let data = noise(2 * FLUSH_EVERY as usize + BATCH + 3, 11);
        let mut ing = Ingest::new(&store).unwrap();
        let mut at = 0;
        let mut k = 0;
        while at < data.len() {
            let len = [BATCH, 1, BATCH + 4097, 300_000, 0][k % 5].min(data.len() - at);
            let b = Bytes::copy_from_slice(&data[at..at + len]);
            let mid = len / 3;
            ing.write_pieces(vec![b.slice(..mid), Bytes::new(), b.slice(mid..)])
                .unwrap();
            at += len;
            k += 1;
        }
        let done = ing.finish().unwrap();
        assert_eq!(done.digests, expected(&data));
        assert_eq!(done.head, data[..HEAD_LEN]);
        assert_eq!(stored(&store, done), data);
    }

    #[test]
    fn copies_of_sizes_around_the_batch_are_exact() {
        let d = tempfile::tempdir().unwrap();
        let store = Store::open(d.path()).unwrap();
        for len in [0, 1, HEAD_LEN - 1, BATCH - 1, BATCH, BATCH + 1, 3 * BATCH + 7] {
            let data = noise(len, len as u64 + 5);
            let mut ing = Ingest::new(&store).unwrap();
            ing.copy_from(&mut &data[..]).unwrap();
            let done = ing.finish().unwrap();
            assert_eq!(done.digests, expected(&data), "{len} bytes");
            assert_eq!(done.head, data[..len.min(HEAD_LEN)], "{len} bytes");
            assert_eq!(stored(&store, done), data, "{len} bytes");
        }
    }

    #[test]
    fn a_dropped_ingest_leaves_no_temp_file() {
        let d = tempfile::tempdir().unwrap();
        let store = Store::open(d.path()).unwrap();
        let mut ing = Ingest::new(&store).unwrap();
        ing.write(&noise(2 * BATCH, 1)).unwrap();
        assert_eq!(store.temp_count().unwrap(), 1);
        drop(ing);
        assert_eq!(store.temp_count().unwrap(), 0);
    }
}
