//! A marked copy as segments — stretches of the original file and bytes held in memory —
//! so that its size is known before sending and any byte range of it can be served by
//! reading only the original's matching stretches. Pure.

use std::io;

use actix_web::web::Bytes;

/// Reads at an offset without moving a cursor (the blob, or a buffer in tests).
pub trait ReadAt {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()>;
}

impl ReadAt for std::fs::File {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        std::os::unix::fs::FileExt::read_exact_at(self, buf, offset)
    }
}

impl ReadAt for [u8] {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        let start = usize::try_from(offset).map_err(|_| io::ErrorKind::UnexpectedEof)?;
        let src = start
            .checked_add(buf.len())
            .and_then(|end| self.get(start..end))
            .ok_or(io::ErrorKind::UnexpectedEof)?;
        buf.copy_from_slice(src);
        Ok(())
    }
}

impl ReadAt for actix_web::web::Bytes {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        self[..].read_exact_at(buf, offset)
    }
}

impl ReadAt for Vec<u8> {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        self.as_slice().read_exact_at(buf, offset)
    }
}

/// One stretch of the copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    /// `len` bytes of the original from `start`.
    File { start: u64, len: u64 },
    /// Bytes of the mark (or of a field rewritten around it).
    Bytes(Bytes),
}

impl Segment {
    fn len(&self) -> u64 {
        match self {
            Segment::File { len, .. } => *len,
            Segment::Bytes(b) => b.len() as u64,
        }
    }
}

/// A change to the original: at offset `at`, drop `remove` bytes and put `insert`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edit {
    pub at: u64,
    pub remove: u64,
    pub insert: Bytes,
}

impl Edit {
    pub fn insert(at: u64, bytes: impl Into<Bytes>) -> Edit {
        Edit {
            at,
            remove: 0,
            insert: bytes.into(),
        }
    }

    /// Overwrites bytes in place (same length).
    pub fn overwrite(at: u64, bytes: impl Into<Bytes>) -> Edit {
        let insert: Bytes = bytes.into();
        Edit {
            at,
            remove: insert.len() as u64,
            insert,
        }
    }
}

/// The copy: the original of `original` bytes with edits applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Copy {
    segments: Vec<Segment>,
    size: u64,
}

impl Copy {
    /// Applies `edits` (sorted by offset, not overlapping, within the original) to an
    /// original of `original` bytes; None if they are not.
    pub fn new(original: u64, edits: &[Edit]) -> Option<Copy> {
        let mut segments = Vec::with_capacity(edits.len() * 2 + 1);
        let mut pos = 0u64;
        for e in edits {
            if e.at < pos || e.at.checked_add(e.remove)? > original {
                return None;
            }
            if e.at > pos {
                segments.push(Segment::File {
                    start: pos,
                    len: e.at - pos,
                });
            }
            if !e.insert.is_empty() {
                segments.push(Segment::Bytes(e.insert.clone()));
            }
            pos = e.at + e.remove;
        }
        if pos < original {
            segments.push(Segment::File {
                start: pos,
                len: original - pos,
            });
        }
        let size = segments.iter().map(Segment::len).sum();
        Some(Copy { segments, size })
    }

    /// The copy's size in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }

    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }

    /// What makes up bytes `start..=end` of the copy, in order.
    pub fn pieces(&self, start: u64, end: u64) -> Vec<Segment> {
        let mut out = Vec::new();
        let mut at = 0u64;
        for s in &self.segments {
            let len = s.len();
            let (s_start, s_end) = (at, at + len);
            at = s_end;
            if s_end <= start || s_start > end {
                continue;
            }
            let from = start.max(s_start) - s_start;
            let to = (end + 1).min(s_end) - s_start;
            out.push(match s {
                Segment::File { start: fs, .. } => Segment::File {
                    start: fs + from,
                    len: to - from,
                },
                Segment::Bytes(b) => Segment::Bytes(b.slice(from as usize..to as usize)),
            });
        }
        out
    }

    /// The whole copy in memory (tests, small answers).
    pub fn read_all(&self, src: &(impl ReadAt + ?Sized)) -> io::Result<Vec<u8>> {
        let mut out = Vec::with_capacity(self.size as usize);
        for s in &self.segments {
            match s {
                Segment::File { start, len } => {
                    let at = out.len();
                    out.resize(at + *len as usize, 0);
                    src.read_exact_at(&mut out[at..], *start)?;
                }
                Segment::Bytes(b) => out.extend_from_slice(b),
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edits_make_segments_and_any_range_maps_back() {
        let orig: Vec<u8> = (0..100u8).collect();
        let c = Copy::new(
            100,
            &[
                Edit::insert(10, &b"MARK"[..]),
                Edit::overwrite(50, &b"xy"[..]),
                Edit::insert(100, &b"END"[..]),
            ],
        )
        .unwrap();
        assert_eq!(c.size(), 107);
        let all = c.read_all(&orig[..]).unwrap();
        let mut want = orig[..10].to_vec();
        want.extend(b"MARK");
        want.extend(&orig[10..50]);
        want.extend(b"xy");
        want.extend(&orig[52..]);
        want.extend(b"END");
        assert_eq!(all, want);
        for start in 0..107u64 {
            for end in start..107u64 {
                let mut got = Vec::new();
                for p in c.pieces(start, end) {
                    match p {
                        Segment::File { start, len } => {
                            got.extend(&orig[start as usize..(start + len) as usize])
                        }
                        Segment::Bytes(b) => got.extend_from_slice(&b),
                    }
                }
                assert_eq!(got, want[start as usize..=end as usize], "{start}-{end}");
            }
        }
    }

    #[test]
    fn bad_edits_are_refused() {
        assert!(Copy::new(10, &[Edit::insert(11, &b"x"[..])]).is_none());
        assert!(Copy::new(10, &[Edit::overwrite(9, &b"xy"[..])]).is_none());
        assert!(Copy::new(10, &[Edit::insert(5, &b"x"[..]), Edit::insert(4, &b"x"[..])]).is_none());
        assert_eq!(Copy::new(0, &[Edit::insert(0, &b"x"[..])]).unwrap().size(), 1);
    }
}
