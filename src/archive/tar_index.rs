//! TAR (ustar, GNU, pax; plain or gzip-compressed): one pass over the headers.
//!
//! The walk is ours, with the `tar` crate parsing each header block: the crate's own
//! iterator reads GNU long names and pax records into memory whatever size they claim,
//! which a hostile archive would use to exhaust memory. Here they are capped at
//! [`MAX_EXTENSION`]. File data is read once, to compute the CRC-32 that serving checks
//! (TAR has none) and the first bytes for type sniffing.

use std::fs::File;
use std::io::{self, BufReader, Read};

use flate2::bufread::MultiGzDecoder;
use tar::{Header, PaxExtensions};

use super::reader::Pread;
use super::{mime_type, names, Entry, Found, IndexError, Limits, Method};
use crate::files::sniff::HEAD_LEN;

pub(super) const BLOCK: usize = 512;
/// Longest GNU long name or pax record block read.
const MAX_EXTENSION: u64 = 1 << 20;

/// True when `b` is a tar header block: not all zeros, a checksum that adds up (unsigned
/// or, as some old writers did, signed) and a size that parses.
pub(super) fn is_header(b: &[u8]) -> bool {
    if b.len() != BLOCK || b.iter().all(|&x| x == 0) {
        return false;
    }
    let h = Header::from_byte_slice(b);
    let Ok(want) = h.cksum() else { return false };
    let rest = b[..148].iter().chain(&b[156..]);
    let unsigned: u32 = rest.clone().map(|&x| u32::from(x)).sum::<u32>() + 8 * 32;
    let signed: i64 = rest.map(|&x| i64::from(x as i8)).sum::<i64>() + 8 * 32;
    (want == unsigned || i64::from(want) == signed) && h.entry_size().is_ok()
}

/// Where the bytes come from, with the position in the (decompressed) stream and a cap
/// on how much of it may be read.
struct Stream {
    src: Src,
    pos: u64,
    limit: u64,
    over: bool,
}

enum Src {
    Plain(Pread<File>),
    Gz(Box<MultiGzDecoder<BufReader<Pread<File>>>>),
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let room = self.limit.saturating_sub(self.pos).saturating_add(1);
        let n = (buf.len() as u64).min(room) as usize;
        let got = match &mut self.src {
            Src::Plain(r) => r.read(&mut buf[..n])?,
            Src::Gz(r) => r.read(&mut buf[..n])?,
        };
        self.pos += got as u64;
        if self.pos > self.limit {
            self.over = true;
            return Err(io::Error::other("over the archive's budget"));
        }
        Ok(got)
    }
}

impl Stream {
    /// Moves `n` bytes ahead: a seek for a plain tar, decompressing for a gzipped one.
    fn skip(&mut self, n: u64) -> io::Result<()> {
        if let Src::Plain(r) = &mut self.src {
            r.skip(n);
            self.pos = r.position();
            return Ok(());
        }
        let got = io::copy(&mut self.by_ref().take(n), &mut io::sink())?;
        if got < n {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        Ok(())
    }

    /// Fills `buf`; Ok(false) on a clean end of stream before its first byte.
    fn block(&mut self, buf: &mut [u8; BLOCK]) -> io::Result<bool> {
        let mut at = 0;
        while at < BLOCK {
            match self.read(&mut buf[at..]) {
                Ok(0) if at == 0 => return Ok(false),
                Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
                Ok(n) => at += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(true)
    }

    /// Reads an extension header's data (GNU long name, pax records), padding included.
    fn extension(&mut self, size: u64) -> Result<Vec<u8>, IndexError> {
        if size > MAX_EXTENSION {
            return Err(IndexError::Malformed(format!(
                "an extension header of {size} bytes"
            )));
        }
        let mut v = vec![0u8; size as usize];
        self.read_exact(&mut v).map_err(IndexError::from_io)?;
        self.skip(padding(size)).map_err(IndexError::from_io)?;
        Ok(v)
    }
}

fn padding(size: u64) -> u64 {
    (BLOCK as u64 - size % BLOCK as u64) % BLOCK as u64
}

pub(super) fn index(file: &File, len: u64, gz: bool, limits: &Limits) -> Result<Vec<Found>, IndexError> {
    let own = file.try_clone()?;
    let (src, limit) = if gz {
        let raw = BufReader::with_capacity(64 * 1024, Pread::new(own, 0, len));
        (Src::Gz(Box::new(MultiGzDecoder::new(raw))), limits.budget(len).0)
    } else {
        (Src::Plain(Pread::new(own, 0, len)), u64::MAX)
    };
    let mut s = Stream {
        src,
        pos: 0,
        limit,
        over: false,
    };
    let walked = walk(&mut s, gz, limits);
    match walked {
        Err(_) if s.over => Err(limits.over_budget(len)),
        other => other,
    }
}

fn walk(s: &mut Stream, gz: bool, limits: &Limits) -> Result<Vec<Found>, IndexError> {
    let mut found = Vec::new();
    let mut block = [0u8; BLOCK];
    let mut long_name: Option<Vec<u8>> = None;
    let mut pax_path: Option<Vec<u8>> = None;
    let mut pax_size: Option<u64> = None;
    let mut total: u64 = 0;
    let mut first = true;
    loop {
        match s.block(&mut block) {
            Ok(true) => {}
            // A missing end-of-archive marker is tolerated, as GNU tar does.
            Ok(false) if !first => break,
            Ok(false) => return Err(IndexError::NotAnArchive),
            // A gzip file that is not a tar (or not even gzip) is simply not an archive.
            Err(_) if first && gz && !s.over => return Err(IndexError::NotAnArchive),
            Err(e) => return Err(IndexError::from_io(e)),
        }
        if block.iter().all(|&b| b == 0) {
            if first {
                return Err(IndexError::NotAnArchive);
            }
            break;
        }
        if !is_header(&block) {
            return Err(if first {
                IndexError::NotAnArchive
            } else {
                IndexError::Malformed("a header's checksum does not add up".into())
            });
        }
        first = false;
        let h = Header::from_byte_slice(&block);
        let header_size = h.entry_size().map_err(|e| IndexError::Malformed(e.to_string()))?;
        let t = h.entry_type();
        if t.is_gnu_longname() {
            if long_name.is_some() {
                return Err(IndexError::Malformed("two long names for one entry".into()));
            }
            let mut v = s.extension(header_size)?;
            while v.last() == Some(&0) {
                v.pop();
            }
            long_name = Some(v);
            continue;
        }
        if t.is_gnu_longlink() {
            s.extension(header_size)?;
            continue;
        }
        if t.is_pax_local_extensions() {
            if pax_path.is_some() || pax_size.is_some() {
                return Err(IndexError::Malformed("two pax headers for one entry".into()));
            }
            let data = s.extension(header_size)?;
            for ext in PaxExtensions::new(&data) {
                let ext = ext.map_err(|e| IndexError::Malformed(e.to_string()))?;
                match ext.key_bytes() {
                    b"path" => pax_path = Some(ext.value_bytes().to_vec()),
                    b"size" => {
                        let v = ext
                            .value()
                            .ok()
                            .and_then(|v| v.parse::<u64>().ok())
                            .ok_or_else(|| IndexError::Malformed("pax size".into()))?;
                        pax_size = Some(v);
                    }
                    _ => {}
                }
            }
            continue;
        }

        // A real entry (pax global headers count as one, to bound the walk).
        let idx = found.len() as u64;
        if idx >= limits.max_entries {
            return Err(IndexError::TooManyEntries(limits.max_entries));
        }
        if t.is_pax_global_extensions() {
            s.extension(header_size)?;
            found.push(Found { entry: None });
            continue;
        }
        let size = pax_size.take().unwrap_or(header_size);
        let path = pax_path
            .take()
            .or(long_name.take())
            .unwrap_or_else(|| h.path_bytes().into_owned());
        let data_at = s.pos;
        let is_file = (t.is_file() || t.is_contiguous()) && !path.ends_with(b"/");
        let name = is_file
            .then(|| names::clean(&String::from_utf8_lossy(&path)))
            .flatten();
        let Some(name) = name else {
            s.skip(size).map_err(IndexError::from_io)?;
            s.skip(padding(size)).map_err(IndexError::from_io)?;
            found.push(Found { entry: None });
            continue;
        };
        total = total.saturating_add(size);
        if total > limits.max_total_size {
            return Err(IndexError::TooLarge(limits.max_total_size));
        }
        let (crc, head) = digest(s, size).map_err(IndexError::from_io)?;
        s.skip(padding(size)).map_err(IndexError::from_io)?;
        let mime = mime_type(&name, || Ok(head)).map_err(IndexError::from_io)?;
        found.push(Found {
            entry: Some(Entry {
                idx: idx as u32,
                path,
                name,
                size,
                compressed_size: size,
                method: if gz { Method::Gzip } else { Method::Stored },
                offset: data_at,
                crc32: crc,
                mime_type: mime,
            }),
        });
    }
    Ok(found)
}

/// Reads `size` bytes: their CRC-32 and their first bytes.
fn digest(s: &mut Stream, size: u64) -> io::Result<(u32, Vec<u8>)> {
    let mut h = crc32fast::Hasher::new();
    let mut head = Vec::new();
    let mut buf = vec![0u8; (size.min(256 * 1024) as usize).max(1)];
    let mut left = size;
    while left > 0 {
        let n = (buf.len() as u64).min(left) as usize;
        s.read_exact(&mut buf[..n])?;
        if head.len() < HEAD_LEN {
            let take = (HEAD_LEN - head.len()).min(n);
            head.extend_from_slice(&buf[..take]);
        }
        h.update(&buf[..n]);
        left -= n as u64;
    }
    Ok((h.finalize(), head))
}
