//! Where each container carries the mark, so that the copy stays valid and plays or
//! opens as before. Every place is chosen so that no offset inside the file moves that
//! anything points at (MP4 chunk offsets, ZIP central directory, PDF xref):
//!
//! | container | detected by | the mark |
//! |---|---|---|
//! | MP4/MOV/M4A | `ftyp` (or `moov`, `mdat`, `free`, `wide`, `skip`) at offset 4 | a top-level `uuid` box appended after the last box (a last box of size 0, "to the end of the file", gets its real size) |
//! | Matroska/WebM | EBML magic `1A 45 DF A3` | an EBML `Void` element appended at the end (Void is allowed at every level) |
//! | PDF | `%PDF-` | after the last `%%EOF`, an incremental update made of a comment and the same `startxref` again, ending in `%%EOF` |
//! | PNG | PNG signature | a `tEXt` chunk (keyword `filegate`) just before `IEND` |
//! | JPEG | `FF D8 FF` | a `COM` segment after the leading `APPn` segments (JFIF/Exif stay first) |
//! | ZIP (and DOCX, EPUB, JAR…) | `PK\3\4` / `PK\5\6` | the archive comment (kept, the mark appended after a newline; its length field rewritten) |
//! | gzip (and `.tar.gz`) | `1F 8B 08` | one more, empty gzip member whose `FCOMMENT` is the mark (members concatenate) |
//! | anything else | | a trailer: a line break, the mark, a line break |
//!
//! A file that does not have the structure its first bytes announce gets the trailer
//! too: the mark is never refused, and a copy never misrepresents what it is. Walking a
//! structure is bounded ([`MAX_STEPS`]); reading happens through [`ReadAt`], a few small
//! reads per request.

use std::io;

use super::copy::{Copy, Edit, ReadAt};

/// Most boxes, chunks or segments walked before giving up on a structure (→ trailer).
pub const MAX_STEPS: usize = 100_000;

/// The `uuid` box's user type: filegate's AutoGraph mark.
pub const MP4_UUID: [u8; 16] = *b"filegate:agmark1";
/// The PNG `tEXt` keyword.
pub const PNG_KEYWORD: &[u8] = b"filegate";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Container {
    Mp4,
    Matroska,
    Pdf,
    Png,
    Jpeg,
    Zip,
    Gzip,
    Trailer,
}

impl Container {
    /// From the file's first bytes (16 are enough).
    pub fn detect(head: &[u8]) -> Container {
        let at = |off: usize, m: &[u8]| head.get(off..off + m.len()) == Some(m);
        if [&b"ftyp"[..], b"moov", b"mdat", b"free", b"wide", b"skip"]
            .iter()
            .any(|t| at(4, t))
        {
            Container::Mp4
        } else if at(0, &[0x1a, 0x45, 0xdf, 0xa3]) {
            Container::Matroska
        } else if at(0, b"%PDF-") {
            Container::Pdf
        } else if at(0, b"\x89PNG\r\n\x1a\n") {
            Container::Png
        } else if at(0, &[0xff, 0xd8, 0xff]) {
            Container::Jpeg
        } else if at(0, b"PK\x03\x04") || at(0, b"PK\x05\x06") {
            Container::Zip
        } else if at(0, &[0x1f, 0x8b, 0x08]) {
            Container::Gzip
        } else {
            Container::Trailer
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Container::Mp4 => "mp4",
            Container::Matroska => "matroska",
            Container::Pdf => "pdf",
            Container::Png => "png",
            Container::Jpeg => "jpeg",
            Container::Zip => "zip",
            Container::Gzip => "gzip",
            Container::Trailer => "trailer",
        }
    }
}

/// How one kind of container carries a mark. Level 1 places the mark text in the
/// container; a level-2 marker (a watermark in the picture) implements the same trait.
pub trait Marker {
    /// The edits that turn the `size`-byte original read through `src` into a copy
    /// carrying `mark`; None when the original is not what this marker expects.
    fn edits(&self, src: &dyn ReadAt, size: u64, mark: &[u8]) -> io::Result<Option<Vec<Edit>>>;
}

impl Marker for Container {
    fn edits(&self, src: &dyn ReadAt, size: u64, mark: &[u8]) -> io::Result<Option<Vec<Edit>>> {
        match self {
            Container::Mp4 => mp4(src, size, mark),
            Container::Matroska => Ok(Some(vec![Edit::insert(size, ebml_void(mark))])),
            Container::Pdf => pdf(src, size, mark),
            Container::Png => png(src, size, mark),
            Container::Jpeg => jpeg(src, size, mark),
            Container::Zip => zip(src, size, mark),
            Container::Gzip => Ok(Some(vec![Edit::insert(size, gzip_member(mark))])),
            Container::Trailer => Ok(Some(trailer(size, mark))),
        }
    }
}

/// The marked copy of a `size`-byte original: the container's place, else a trailer.
pub fn mark_copy(src: &dyn ReadAt, size: u64, mark: &[u8]) -> io::Result<(Container, Copy)> {
    let mut head = [0u8; 16];
    let n = size.min(16) as usize;
    src.read_exact_at(&mut head[..n], 0)?;
    let container = Container::detect(&head[..n]);
    let (container, edits) = match container.edits(src, size, mark)? {
        Some(e) => (container, e),
        None => (Container::Trailer, trailer(size, mark)),
    };
    let copy = Copy::new(size, &edits)
        .ok_or_else(|| io::Error::other(format!("{} marker made bad edits", container.as_str())))?;
    Ok((container, copy))
}

fn trailer(size: u64, mark: &[u8]) -> Vec<Edit> {
    let mut t = Vec::with_capacity(mark.len() + 2);
    t.push(b'\n');
    t.extend_from_slice(mark);
    t.push(b'\n');
    vec![Edit::insert(size, t)]
}

fn read_at(src: &dyn ReadAt, off: u64, len: usize) -> io::Result<Vec<u8>> {
    let mut b = vec![0u8; len];
    src.read_exact_at(&mut b, off)?;
    Ok(b)
}

fn mp4(src: &dyn ReadAt, size: u64, mark: &[u8]) -> io::Result<Option<Vec<Edit>>> {
    let mut pos = 0u64;
    let mut to_end = None;
    for _ in 0..MAX_STEPS {
        if pos == size {
            break;
        }
        if size - pos < 8 {
            return Ok(None);
        }
        let h = read_at(src, pos, 8)?;
        let small = u32::from_be_bytes([h[0], h[1], h[2], h[3]]) as u64;
        let len = match small {
            0 => {
                to_end = Some(pos);
                size - pos
            }
            1 if size - pos >= 16 => {
                let l = read_at(src, pos + 8, 8)?;
                u64::from_be_bytes(l.try_into().unwrap_or([0; 8]))
            }
            n => n,
        };
        if len < 8 || len > size - pos {
            return Ok(None);
        }
        pos += len;
    }
    if pos != size {
        return Ok(None);
    }
    let total = 8 + 16 + mark.len();
    let mut b = Vec::with_capacity(total);
    b.extend_from_slice(&(total as u32).to_be_bytes());
    b.extend_from_slice(b"uuid");
    b.extend_from_slice(&MP4_UUID);
    b.extend_from_slice(mark);
    let mut edits = Vec::new();
    if let Some(at) = to_end {
        // "Size 0: to the end of the file" would swallow our box; give it its real size
        // when that fits, else our box simply becomes part of its payload.
        if let Ok(real) = u32::try_from(size - at) {
            edits.push(Edit::overwrite(at, real.to_be_bytes().to_vec()));
        }
    }
    edits.push(Edit::insert(size, b));
    Ok(Some(edits))
}

/// An EBML Void element (ID `EC`) holding `mark`, with an 8-byte size.
fn ebml_void(mark: &[u8]) -> Vec<u8> {
    let mut b = Vec::with_capacity(9 + mark.len());
    b.push(0xec);
    let mut size = (mark.len() as u64).to_be_bytes();
    size[0] = 0x01; // 8-byte vint marker; the length fits in the other 7 bytes.
    b.extend_from_slice(&size);
    b.extend_from_slice(mark);
    b
}

fn pdf(src: &dyn ReadAt, size: u64, mark: &[u8]) -> io::Result<Option<Vec<Edit>>> {
    let n = size.min(4096);
    let tail = read_at(src, size - n, n as usize)?;
    let Some(sx) = memchr::memmem::rfind(&tail, b"startxref") else {
        return Ok(None);
    };
    let after = &tail[sx + 9..];
    let digits: Vec<u8> = after
        .iter()
        .skip_while(|b| b.is_ascii_whitespace())
        .take_while(|b| b.is_ascii_digit())
        .copied()
        .collect();
    if digits.is_empty() || digits.len() > 19 || memchr::memmem::find(after, b"%%EOF").is_none() {
        return Ok(None);
    }
    let mut b = Vec::with_capacity(mark.len() + 48);
    b.extend_from_slice(b"\n%");
    b.extend_from_slice(mark);
    b.extend_from_slice(b"\nstartxref\n");
    b.extend_from_slice(&digits);
    b.extend_from_slice(b"\n%%EOF\n");
    Ok(Some(vec![Edit::insert(size, b)]))
}

const PNG_IEND: [u8; 12] = [0, 0, 0, 0, b'I', b'E', b'N', b'D', 0xae, 0x42, 0x60, 0x82];

fn png(src: &dyn ReadAt, size: u64, mark: &[u8]) -> io::Result<Option<Vec<Edit>>> {
    let iend = if size >= 20 && read_at(src, size - 12, 12)? == PNG_IEND {
        size - 12
    } else {
        // Bytes after IEND: walk the chunks to find it.
        let mut pos = 8u64;
        let mut found = None;
        for _ in 0..MAX_STEPS {
            if size < pos + 12 {
                break;
            }
            let h = read_at(src, pos, 8)?;
            if &h[4..8] == b"IEND" {
                found = Some(pos);
                break;
            }
            pos += 12 + u32::from_be_bytes([h[0], h[1], h[2], h[3]]) as u64;
        }
        match found {
            Some(p) => p,
            None => return Ok(None),
        }
    };
    let mut data = Vec::with_capacity(PNG_KEYWORD.len() + 1 + mark.len());
    data.extend_from_slice(PNG_KEYWORD);
    data.push(0);
    data.extend_from_slice(mark);
    let mut crc = crc32fast::Hasher::new();
    crc.update(b"tEXt");
    crc.update(&data);
    let mut chunk = Vec::with_capacity(12 + data.len());
    chunk.extend_from_slice(&(data.len() as u32).to_be_bytes());
    chunk.extend_from_slice(b"tEXt");
    chunk.extend_from_slice(&data);
    chunk.extend_from_slice(&crc.finalize().to_be_bytes());
    Ok(Some(vec![Edit::insert(iend, chunk)]))
}

fn jpeg(src: &dyn ReadAt, size: u64, mark: &[u8]) -> io::Result<Option<Vec<Edit>>> {
    let mut pos = 2u64;
    for _ in 0..MAX_STEPS {
        if size < pos + 4 {
            break;
        }
        let h = read_at(src, pos, 4)?;
        if h[0] != 0xff || !(0xe0..=0xef).contains(&h[1]) {
            break;
        }
        let len = u16::from_be_bytes([h[2], h[3]]) as u64;
        if len < 2 || pos + 2 + len > size {
            return Ok(None);
        }
        pos += 2 + len;
    }
    let len = u16::try_from(2 + mark.len()).map_err(|_| io::Error::other("mark too long for COM"))?;
    let mut b = Vec::with_capacity(4 + mark.len());
    b.extend_from_slice(&[0xff, 0xfe]);
    b.extend_from_slice(&len.to_be_bytes());
    b.extend_from_slice(mark);
    Ok(Some(vec![Edit::insert(pos, b)]))
}

fn zip(src: &dyn ReadAt, size: u64, mark: &[u8]) -> io::Result<Option<Vec<Edit>>> {
    const EOCD: usize = 22;
    let n = size.min((EOCD + 0xffff) as u64) as usize;
    if n < EOCD {
        return Ok(None);
    }
    let tail = read_at(src, size - n as u64, n)?;
    // The end record whose comment runs exactly to the end of the file, searched from
    // the end (a comment could itself contain the signature).
    let mut end = tail.len() - EOCD;
    let at = loop {
        let Some(i) = memchr::memmem::rfind(&tail[..end + 4], b"PK\x05\x06") else {
            return Ok(None);
        };
        let comment = u16::from_le_bytes([tail[i + 20], tail[i + 21]]) as usize;
        if i + EOCD + comment == tail.len() {
            break i;
        }
        if i == 0 {
            return Ok(None);
        }
        end = i - 1;
    };
    let old = u16::from_le_bytes([tail[at + 20], tail[at + 21]]) as usize;
    let sep = usize::from(old > 0);
    let Ok(new_len) = u16::try_from(old + sep + mark.len()) else {
        return Ok(None);
    };
    let eocd = size - n as u64 + at as u64;
    let mut add = Vec::with_capacity(sep + mark.len());
    if sep == 1 {
        add.push(b'\n');
    }
    add.extend_from_slice(mark);
    Ok(Some(vec![
        Edit::overwrite(eocd + 20, new_len.to_le_bytes().to_vec()),
        Edit::insert(size, add),
    ]))
}

/// An empty gzip member (RFC 1952) whose comment is the mark: gunzip reads the
/// members one after the other, and this one adds no data.
fn gzip_member(mark: &[u8]) -> Vec<u8> {
    let mut b = Vec::with_capacity(10 + mark.len() + 1 + 10);
    // ID1 ID2 CM=deflate FLG=FCOMMENT MTIME=0 XFL=0 OS=unknown
    b.extend_from_slice(&[0x1f, 0x8b, 0x08, 0x10, 0, 0, 0, 0, 0, 0xff]);
    b.extend_from_slice(mark);
    b.push(0);
    // The shortest empty deflate stream (a final fixed-Huffman block holding only its
    // end-of-block code: 0x03 0x00), then CRC-32 = 0 and ISIZE = 0.
    b.extend_from_slice(&[0x03, 0x00, 0, 0, 0, 0, 0, 0, 0, 0]);
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    const MARK: &[u8] = b"filegate-autograph:1:MARK;";

    fn marked(orig: &[u8]) -> (Container, Vec<u8>) {
        let v = orig.to_vec();
        let (c, copy) = mark_copy(&v, v.len() as u64, MARK).unwrap();
        (c, copy.read_all(&v).unwrap())
    }

    fn mp4_box(kind: &[u8], payload: &[u8]) -> Vec<u8> {
        let mut b = ((8 + payload.len()) as u32).to_be_bytes().to_vec();
        b.extend_from_slice(kind);
        b.extend_from_slice(payload);
        b
    }

    #[test]
    fn mp4_gets_a_top_level_uuid_box_at_the_end() {
        let mut f = mp4_box(b"ftyp", b"isom\0\0\0\0");
        f.extend(mp4_box(b"moov", &[1; 20]));
        f.extend(mp4_box(b"mdat", &[2; 50]));
        let (c, out) = marked(&f);
        assert_eq!(c, Container::Mp4);
        assert_eq!(&out[..f.len()], &f[..]);
        let b = &out[f.len()..];
        assert_eq!(u32::from_be_bytes(b[..4].try_into().unwrap()) as usize, b.len());
        assert_eq!(&b[4..8], b"uuid");
        assert_eq!(&b[8..24], &MP4_UUID);
        assert_eq!(&b[24..], MARK);

        // A last box "to the end of the file" gets its real size.
        let mut g = mp4_box(b"ftyp", b"isom\0\0\0\0");
        let at = g.len();
        let mut mdat = mp4_box(b"mdat", &[2; 50]);
        mdat[..4].copy_from_slice(&[0; 4]);
        g.extend(&mdat);
        let (_, out) = marked(&g);
        assert_eq!(u32::from_be_bytes(out[at..at + 4].try_into().unwrap()), 58);
        assert_eq!(&out[g.len() + 4..g.len() + 8], b"uuid");

        // Boxes that do not tile the file: a trailer.
        let mut bad = f.clone();
        bad.extend(b"junk");
        assert_eq!(marked(&bad).0, Container::Trailer);
    }

    #[test]
    fn png_gets_a_text_chunk_before_iend() {
        let mut f = b"\x89PNG\r\n\x1a\n".to_vec();
        f.extend([0, 0, 0, 1, b'I', b'D', b'A', b'T', 0, 9, 9, 9, 9]);
        f.extend(PNG_IEND);
        let (c, out) = marked(&f);
        assert_eq!(c, Container::Png);
        assert!(out.ends_with(&PNG_IEND));
        let chunk = &out[f.len() - 12..out.len() - 12];
        assert_eq!(&chunk[4..8], b"tEXt");
        let data = &chunk[8..chunk.len() - 4];
        assert_eq!(data, [&b"filegate\0"[..], MARK].concat());
        let crc = crc32fast::hash(&chunk[4..chunk.len() - 4]);
        assert_eq!(chunk[chunk.len() - 4..], crc.to_be_bytes());
        // Data after IEND: found by walking the chunks.
        let mut g = f.clone();
        g.extend(b"after");
        let (c, out) = marked(&g);
        assert_eq!(c, Container::Png);
        assert!(out.ends_with(&[&PNG_IEND[..], b"after"].concat()));
    }

    #[test]
    fn jpeg_gets_a_com_segment_after_the_app_segments() {
        let mut f = vec![0xff, 0xd8, 0xff, 0xe0, 0, 4, 1, 2, 0xff, 0xe1, 0, 3, 7];
        let body = [0xff, 0xdb, 0, 3, 0, 0xff, 0xd9];
        f.extend(body);
        let (c, out) = marked(&f);
        assert_eq!(c, Container::Jpeg);
        assert_eq!(&out[..13], &f[..13]);
        assert_eq!(&out[13..15], &[0xff, 0xfe]);
        assert_eq!(u16::from_be_bytes([out[15], out[16]]) as usize, 2 + MARK.len());
        assert_eq!(&out[17..17 + MARK.len()], MARK);
        assert_eq!(&out[17 + MARK.len()..], &body);
    }

    #[test]
    fn zip_gets_the_mark_in_its_comment() {
        let mut f = b"PK\x03\x04 entries... PK\x01\x02 central".to_vec();
        let eocd = f.len();
        f.extend(b"PK\x05\x06");
        f.extend([0; 16]);
        f.extend(3u16.to_le_bytes());
        f.extend(b"abc");
        let (c, out) = marked(&f);
        assert_eq!(c, Container::Zip);
        let len = u16::from_le_bytes([out[eocd + 20], out[eocd + 21]]) as usize;
        assert_eq!(len, 3 + 1 + MARK.len());
        assert_eq!(&out[eocd + 22..], [&b"abc\n"[..], MARK].concat());
        // Without a comment, the mark is the comment.
        let mut g = f[..eocd + 20].to_vec();
        g.extend([0, 0]);
        let (_, out) = marked(&g);
        assert_eq!(&out[eocd + 22..], MARK);
    }

    #[test]
    fn pdf_gets_an_incremental_update_comment() {
        let f = b"%PDF-1.4\n1 0 obj\n<<>>\nendobj\nxref\n0 1\ntrailer\n<<>>\nstartxref\n29\n%%EOF\n";
        let (c, out) = marked(f);
        assert_eq!(c, Container::Pdf);
        let tail = String::from_utf8(out[f.len()..].to_vec()).unwrap();
        assert_eq!(
            tail,
            format!("\n%{}\nstartxref\n29\n%%EOF\n", String::from_utf8_lossy(MARK))
        );
        assert_eq!(marked(b"%PDF-1.4 truncated").0, Container::Trailer);
    }

    #[test]
    fn matroska_gzip_and_others() {
        let mkv = [0x1a, 0x45, 0xdf, 0xa3, 0x80];
        let (c, out) = marked(&mkv);
        assert_eq!(c, Container::Matroska);
        assert_eq!(out[5], 0xec);
        assert_eq!(out[6], 0x01);
        assert_eq!(
            u64::from_be_bytes([0, out[7], out[8], out[9], out[10], out[11], out[12], out[13]]),
            MARK.len() as u64
        );
        let gz = [0x1f, 0x8b, 0x08, 0, 0, 0, 0, 0, 0, 3];
        let (c, out) = marked(&gz);
        assert_eq!(c, Container::Gzip);
        assert_eq!(&out[10..14], &[0x1f, 0x8b, 0x08, 0x10]);
        let (c, out) = marked(b"hello");
        assert_eq!(c, Container::Trailer);
        assert_eq!(out, [&b"hello\n"[..], MARK, b"\n"].concat());
        let (c, out) = marked(b"");
        assert_eq!(c, Container::Trailer);
        assert_eq!(out.len(), MARK.len() + 2);
    }
}
