//! Reading blob bytes for an answer: straight from the page cache on the async worker
//! when the bytes are there, on the blocking pool only when the disk must be waited for.
//!
//! A trip to the blocking pool and back costs two thread wake-ups, which dominated the
//! profile of small answers (4 KiB files, 64 KiB ranges) and of large files read in
//! 64 KiB pieces. `preadv2(RWF_NOWAIT)` (Linux ≥ 4.14) reads what the page cache holds
//! and answers `EAGAIN` instead of waiting for the disk, so a cached read never blocks
//! the worker and a cold one still goes to the pool (what nginx's `aio threads` does).

use std::fs::File;
use std::io::{self, IoSliceMut};
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use actix_web::web::{self, Bytes};
use rustix::io::{preadv2, Errno, ReadWriteFlags};

/// Reads what the page cache holds of `buf.len()` bytes at `pos`, without waiting for
/// the disk: `Ok(0)` when nothing is cached there (or the file system can't tell).
fn read_cached(file: &File, buf: &mut [u8], pos: u64) -> io::Result<usize> {
    loop {
        match preadv2(file, &mut [IoSliceMut::new(buf)], pos, ReadWriteFlags::NOWAIT) {
            Ok(n) => return Ok(n),
            Err(Errno::INTR) => continue,
            // Not cached; or a kernel / file system without RWF_NOWAIT for reads.
            Err(Errno::AGAIN | Errno::OPNOTSUPP | Errno::NOSYS) => return Ok(0),
            Err(e) => return Err(e.into()),
        }
    }
}

/// Exactly `len` bytes at `pos` of `file`: the cached part read here, the rest (if
/// any) on the blocking pool. A file shorter than `pos + len` is an `UnexpectedEof`.
pub async fn read_exact_at(file: &Arc<File>, pos: u64, len: usize) -> io::Result<Vec<u8>> {
    let mut buf = vec![0u8; len];
    let mut done = 0;
    while done < len {
        match read_cached(file, &mut buf[done..], pos + done as u64)? {
            0 => break,
            n => done += n,
        }
    }
    if done == len {
        return Ok(buf);
    }
    let f = file.clone();
    web::block(move || {
        f.read_exact_at(&mut buf[done..], pos + done as u64)?;
        Ok(buf)
    })
    .await
    .map_err(|e| io::Error::other(e.to_string()))?
}

/// True when the page cache holds all of bytes `pos..pos + len` of `file` (checked by
/// reading them without waiting for the disk, in pieces of at most 64 KiB).
pub fn is_cached(file: &File, pos: u64, len: u64) -> bool {
    let mut buf = vec![0u8; len.min(64 * 1024) as usize];
    let mut done = 0u64;
    while done < len {
        let want = (len - done).min(buf.len() as u64) as usize;
        match read_cached(file, &mut buf[..want], pos + done) {
            Ok(0) | Err(_) => return false,
            Ok(n) => done += n as u64,
        }
    }
    true
}

/// [`read_exact_at`] as `Bytes`.
pub async fn read_bytes(file: &Arc<File>, pos: u64, len: usize) -> io::Result<Bytes> {
    read_exact_at(file, pos, len).await.map(Bytes::from)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn file_with(data: &[u8]) -> Arc<File> {
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(data).unwrap();
        Arc::new(f)
    }

    #[actix_web::test]
    async fn reads_exactly_the_range_asked() {
        let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let f = file_with(&data);
        for (pos, len) in [
            (0, 0),
            (0, 1),
            (7, 4096),
            (65_536, 65_536),
            (199_999, 1),
            (0, 200_000),
        ] {
            let got = read_exact_at(&f, pos as u64, len).await.unwrap();
            assert_eq!(got, &data[pos..pos + len], "pos {pos} len {len}");
        }
    }

    #[test]
    fn cached_means_readable_now() {
        let f = file_with(&[7u8; 10_000]);
        assert!(is_cached(&f, 0, 10_000), "just written: in the page cache");
        assert!(is_cached(&f, 9_999, 1));
        assert!(is_cached(&f, 0, 0));
        assert!(!is_cached(&f, 5_000, 10_000), "past the end is not cached");
    }

    #[actix_web::test]
    async fn reading_past_the_end_is_an_error_not_short_data() {
        let f = file_with(b"0123456789");
        let e = read_exact_at(&f, 5, 10).await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof);
    }
}
