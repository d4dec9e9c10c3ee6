//! Reading one entry of an archive: a byte range of the blob (stored ZIP entries, TAR),
//! an inflated raw deflate stream (ZIP), or a slice of a gunzipped stream (`.tar.gz`).
//!
//! Positioned reads (`pread`) only, so one open blob can serve many readers at once.
//! Reading from an offset into a compressed entry decompresses and throws away what
//! comes before it: the CPU cost of a `Range` on a deflated entry is the entry up to the
//! range's end; on a `.tar.gz` entry, the archive up to there.

use std::borrow::Borrow;
use std::fs::File;
use std::io::{self, BufReader, Read};
use std::os::unix::fs::FileExt;

use flate2::bufread::{DeflateDecoder, MultiGzDecoder};

use super::{Entry, Method};
use crate::files::sniff::HEAD_LEN;

/// Reads `file` from `pos` up to `end` (exclusive) with positioned reads.
pub struct Pread<F> {
    file: F,
    pos: u64,
    end: u64,
}

impl<F: Borrow<File>> Pread<F> {
    pub fn new(file: F, pos: u64, end: u64) -> Pread<F> {
        Pread { file, pos, end }
    }

    /// The position of the next byte read.
    pub fn position(&self) -> u64 {
        self.pos
    }

    /// Moves `n` bytes ahead without reading them.
    pub fn skip(&mut self, n: u64) {
        self.pos = self.pos.saturating_add(n).min(self.end);
    }
}

impl<F: Borrow<File>> Read for Pread<F> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = (buf.len() as u64).min(self.end.saturating_sub(self.pos)) as usize;
        if n == 0 {
            return Ok(0);
        }
        let got = self.file.borrow().read_at(&mut buf[..n], self.pos)?;
        self.pos += got as u64;
        Ok(got)
    }
}

const INPUT_BUFFER: usize = 64 * 1024;

enum Inner<F> {
    Stored(Pread<F>),
    Deflated(Box<DeflateDecoder<BufReader<Pread<F>>>>),
    Gzip(Box<MultiGzDecoder<BufReader<Pread<F>>>>),
}

impl<F: Borrow<File>> Read for Inner<F> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Inner::Stored(r) => r.read(buf),
            Inner::Deflated(r) => r.read(buf),
            Inner::Gzip(r) => r.read(buf),
        }
    }
}

/// The uncompressed bytes of one entry from some offset to its end. Fails with
/// `UnexpectedEof` when the data ends before the entry's declared size, and — when it was
/// opened at offset 0 — with `InvalidData` on its last read if the CRC-32 of the whole
/// entry is not the one recorded (that last chunk is never handed out).
pub struct EntryReader<F> {
    inner: Inner<F>,
    left: u64,
    crc: Option<(crc32fast::Hasher, u32)>,
}

impl<F: Borrow<File>> EntryReader<F> {
    /// Opens `entry` of the archive in `file`, positioned `start` bytes into the entry.
    /// For compressed entries this decompresses everything before `start` (blocking).
    pub fn open(file: F, entry: &Entry, start: u64) -> io::Result<EntryReader<F>> {
        let start = start.min(entry.size);
        let (inner, skip) = match entry.method {
            Method::Stored => {
                let at = entry.offset.saturating_add(start);
                let end = entry.offset.saturating_add(entry.size);
                (Inner::Stored(Pread::new(file, at, end)), 0)
            }
            Method::Deflated => {
                let end = entry.offset.saturating_add(entry.compressed_size);
                let raw = BufReader::with_capacity(INPUT_BUFFER, Pread::new(file, entry.offset, end));
                (Inner::Deflated(Box::new(DeflateDecoder::new(raw))), start)
            }
            Method::Gzip => {
                let raw = BufReader::with_capacity(INPUT_BUFFER, Pread::new(file, 0, u64::MAX));
                (
                    Inner::Gzip(Box::new(MultiGzDecoder::new(raw))),
                    entry.offset.saturating_add(start),
                )
            }
        };
        let mut r = EntryReader {
            inner,
            left: entry.size - start,
            crc: (start == 0).then(|| (crc32fast::Hasher::new(), entry.crc32)),
        };
        if skip > 0 {
            let skipped = io::copy(&mut (&mut r.inner).take(skip), &mut io::sink())?;
            if skipped < skip {
                return Err(short());
            }
        }
        Ok(r)
    }

    /// Bytes left to read.
    pub fn remaining(&self) -> u64 {
        self.left
    }
}

fn short() -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        "archive entry ends before its declared size",
    )
}

impl<F: Borrow<File>> Read for EntryReader<F> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 || buf.is_empty() {
            return Ok(0);
        }
        let want = (buf.len() as u64).min(self.left) as usize;
        let n = self.inner.read(&mut buf[..want])?;
        if n == 0 {
            return Err(short());
        }
        self.left -= n as u64;
        if let Some((h, expected)) = &mut self.crc {
            h.update(&buf[..n]);
            if self.left == 0 && h.clone().finalize() != *expected {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "archive entry fails its CRC-32 check",
                ));
            }
        }
        Ok(n)
    }
}

/// The first bytes of an entry, for type sniffing.
pub fn head(file: &File, entry: &Entry) -> io::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(HEAD_LEN);
    EntryReader::open(file, entry, 0)?
        .take(HEAD_LEN as u64)
        .read_to_end(&mut out)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn entry(method: Method, offset: u64, size: u64, csize: u64, crc: u32) -> Entry {
        Entry {
            idx: 0,
            path: b"x".to_vec(),
            name: "x".into(),
            size,
            compressed_size: csize,
            method,
            offset,
            crc32: crc,
            mime_type: "application/octet-stream".into(),
        }
    }

    fn read_all(file: &File, e: &Entry, start: u64) -> io::Result<Vec<u8>> {
        let mut v = Vec::new();
        EntryReader::open(file, e, start)?.read_to_end(&mut v)?;
        Ok(v)
    }

    #[test]
    fn stored_deflated_and_gzip_entries_read_from_any_offset() {
        let data: Vec<u8> = (0..100_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let crc = crc32fast::hash(&data);
        let mut deflated = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::fast());
        deflated.write_all(&data).unwrap();
        let deflated = deflated.finish().unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(b"0123456789").unwrap();
        gz.write_all(&data).unwrap();
        let gz = gz.finish().unwrap();

        let mut f = tempfile::tempfile().unwrap();
        f.write_all(b"HEAD").unwrap();
        f.write_all(&data).unwrap();
        f.write_all(&deflated).unwrap();
        let gz_file = {
            let mut g = tempfile::tempfile().unwrap();
            g.write_all(&gz).unwrap();
            g
        };
        let n = data.len() as u64;
        let stored = entry(Method::Stored, 4, n, n, crc);
        let infl = entry(Method::Deflated, 4 + n, n, deflated.len() as u64, crc);
        let gzip = entry(Method::Gzip, 10, n, n, crc);
        for (file, e) in [(&f, &stored), (&f, &infl), (&gz_file, &gzip)] {
            assert_eq!(read_all(file, e, 0).unwrap(), data, "{:?}", e.method);
            assert_eq!(
                read_all(file, e, 12_345).unwrap(),
                &data[12_345..],
                "{:?}",
                e.method
            );
            assert_eq!(read_all(file, e, n).unwrap(), b"", "{:?}", e.method);
        }
        assert_eq!(head(&f, &infl).unwrap(), &data[..HEAD_LEN]);

        let bad = entry(Method::Deflated, 4 + n, n, deflated.len() as u64, crc ^ 1);
        let err = read_all(&f, &bad, 0).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        assert!(read_all(&f, &bad, 1).is_ok(), "no CRC check on a part");
        let long = entry(Method::Deflated, 4 + n, n + 1, deflated.len() as u64, crc);
        assert_eq!(
            read_all(&f, &long, 0).unwrap_err().kind(),
            io::ErrorKind::UnexpectedEof
        );
    }
}
