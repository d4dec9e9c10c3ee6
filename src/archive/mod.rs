//! ZIP and TAR archives: recognising them by content, indexing their entries once when an
//! upload completes, and reading one entry back (see [`reader`]).
//!
//! Entry names are data, never paths: nothing here touches the filesystem except to read
//! the archive's own bytes. Every archive is bounded before it costs memory or CPU:
//! [`Limits`] caps the number of entries, their total uncompressed size and the ratio of
//! that size to the archive's; a ZIP whose entries overlap (the "overlapping-entry" bomb)
//! or whose local headers disagree with its central directory is refused.

pub mod names;
pub mod reader;
mod tar_index;
mod zip_index;

use std::fs::File;
use std::io;

use crate::files::sniff;

/// The three kinds of archive we index (`subtype` of the file).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Zip,
    Tar,
    TarGz,
}

impl Format {
    pub fn subtype(self) -> &'static str {
        match self {
            Format::Zip => "zip",
            Format::Tar => "tar",
            Format::TarGz => "tar.gz",
        }
    }
}

/// How an entry's bytes sit in the archive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// A plain byte range of the blob (stored ZIP entries, plain TAR): `offset` is where
    /// the entry's first byte is.
    Stored,
    /// A raw deflate stream (ZIP): `offset` is where the compressed stream starts,
    /// `compressed_size` its length.
    Deflated,
    /// Inside the gzip-compressed stream of a `.tar.gz`: `offset` is the position of the
    /// entry's first byte in the *decompressed* stream.
    Gzip,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Stored => "stored",
            Method::Deflated => "deflated",
            Method::Gzip => "gzip",
        }
    }

    pub fn parse(s: &str) -> Option<Method> {
        Some(match s {
            "stored" => Method::Stored,
            "deflated" => Method::Deflated,
            "gzip" => Method::Gzip,
            _ => return None,
        })
    }
}

/// One listed entry of an archive (directories, links, encrypted entries and entries
/// whose names are unsafe are never listed; see the README's "Archives").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Position in the archive, counting every entry (listed or not) from 0.
    pub idx: u32,
    /// The name exactly as stored in the archive (bytes; may be anything).
    pub path: Vec<u8>,
    /// The cleaned display name ([`names::clean`]), unique within the archive. This is
    /// what the API shows, what `item=` selects and what a link's claims carry.
    pub name: String,
    /// Uncompressed size in bytes.
    pub size: u64,
    pub compressed_size: u64,
    pub method: Method,
    /// See [`Method`].
    pub offset: u64,
    /// CRC-32 of the uncompressed bytes (from the ZIP directory; computed while indexing
    /// for TAR, which has none of its own).
    pub crc32: u32,
    pub mime_type: String,
}

impl Entry {
    /// The last component of the name: the file name a link saves under.
    pub fn base_name(&self) -> &str {
        self.name.rsplit('/').next().unwrap_or(&self.name)
    }
}

/// Caps that bound what one archive can cost (configuration `[archives]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most entries (every kind, listed or not).
    pub max_entries: u64,
    /// Most bytes all file entries hold uncompressed (for `.tar.gz`: the whole
    /// decompressed stream).
    pub max_total_size: u64,
    /// Most uncompressed bytes per byte of archive, once past [`RATIO_FLOOR`].
    pub max_ratio: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_entries: 10_000,
            max_total_size: 16 << 30,
            max_ratio: 250,
        }
    }
}

/// Archives that expand to no more than this are never refused for their ratio: a small
/// text file of zeros is not a bomb.
pub const RATIO_FLOOR: u64 = 16 << 20;

impl Limits {
    /// The most uncompressed bytes an archive of `archive_len` bytes may hold, and whether
    /// it is the ratio (rather than the total size) that sets it.
    fn budget(&self, archive_len: u64) -> (u64, bool) {
        let by_ratio = archive_len.saturating_mul(self.max_ratio).max(RATIO_FLOOR);
        if by_ratio < self.max_total_size {
            (by_ratio, true)
        } else {
            (self.max_total_size, false)
        }
    }

    fn over_budget(&self, archive_len: u64) -> IndexError {
        match self.budget(archive_len) {
            (_, true) => IndexError::Ratio(self.max_ratio),
            (n, false) => IndexError::TooLarge(n),
        }
    }
}

/// Why an archive was not indexed (it is then stored as a plain file).
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    /// Not an archive after all (a gzip file that holds no tar, say): nothing to report.
    #[error("not an archive")]
    NotAnArchive,
    #[error("more than {0} entries")]
    TooManyEntries(u64),
    #[error("entries hold more than {0} bytes uncompressed")]
    TooLarge(u64),
    #[error("expands more than {0} times its size")]
    Ratio(u64),
    #[error("entries overlap each other or the central directory")]
    Overlap,
    #[error("entry {0}: local header disagrees with the central directory ({1})")]
    HeaderMismatch(u64, &'static str),
    #[error("the central directory repeats a name")]
    DuplicateNames,
    #[error("truncated archive")]
    Truncated,
    #[error("malformed archive: {0}")]
    Malformed(String),
    #[error("reading the archive: {0}")]
    Io(#[from] io::Error),
}

impl IndexError {
    /// A stable word for logs.
    pub fn reason(&self) -> &'static str {
        match self {
            IndexError::NotAnArchive => "not_an_archive",
            IndexError::TooManyEntries(_) => "too_many_entries",
            IndexError::TooLarge(_) => "too_large",
            IndexError::Ratio(_) => "compression_ratio",
            IndexError::Overlap => "overlapping_entries",
            IndexError::HeaderMismatch(..) => "header_mismatch",
            IndexError::DuplicateNames => "duplicate_names",
            IndexError::Truncated => "truncated",
            IndexError::Malformed(_) => "malformed",
            IndexError::Io(_) => "io_error",
        }
    }

    /// A read that ran past the end of the file means the archive is cut short; bad
    /// compressed data is a malformed archive; anything else is the disk's fault.
    fn from_io(e: io::Error) -> IndexError {
        match e.kind() {
            io::ErrorKind::UnexpectedEof => IndexError::Truncated,
            io::ErrorKind::InvalidData | io::ErrorKind::InvalidInput => IndexError::Malformed(e.to_string()),
            _ => IndexError::Io(e),
        }
    }
}

/// What indexing found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Index {
    pub format: Format,
    /// The listed entries, in archive order.
    pub entries: Vec<Entry>,
    /// Entries not listed (directories, links, unsafe names, earlier duplicates, …).
    pub left_out: u64,
}

/// Types a file's *name* may announce and still be indexed as an archive. A name that
/// announces another type keeps the file a plain file even when its bytes are a ZIP:
/// `report.docx`, `book.epub` and `app.jar` are ZIPs that their users want whole.
const ARCHIVE_NAME_TYPES: &[&str] = &[
    "application/zip",
    "application/x-zip-compressed",
    "application/x-tar",
    "application/gzip",
    "application/x-gzip",
    "application/x-gtar",
    "application/x-compressed",
    "application/x-compressed-tar",
    "application/tar",
    "application/tar+gzip",
    "application/octet-stream",
];

/// The archive format `head` (the file's first bytes) announces, unless the file's name
/// says it is something else (see [`ARCHIVE_NAME_TYPES`]). `TarGz` is a candidate only:
/// indexing finds out whether the gzip stream holds a tar.
pub fn detect(name: &str, head: &[u8]) -> Option<Format> {
    if let Some(t) = mime_guess::from_path(name).first_raw() {
        if !ARCHIVE_NAME_TYPES.contains(&t) {
            return None;
        }
    }
    if head.starts_with(b"PK\x03\x04") || head.starts_with(b"PK\x05\x06") {
        return Some(Format::Zip);
    }
    if head.starts_with(&[0x1f, 0x8b, 8]) {
        return Some(Format::TarGz);
    }
    if head.len() >= tar_index::BLOCK && tar_index::is_header(&head[..tar_index::BLOCK]) {
        return Some(Format::Tar);
    }
    None
}

/// Indexes the archive in `file` (`len` bytes). Blocking; memory and CPU are bounded by
/// `limits` whatever the bytes are.
pub fn index(file: &File, len: u64, format: Format, limits: &Limits) -> Result<Index, IndexError> {
    let found = match format {
        Format::Zip => zip_index::index(file, len, limits)?,
        Format::Tar => tar_index::index(file, len, false, limits)?,
        Format::TarGz => tar_index::index(file, len, true, limits)?,
    };
    let total = found.len() as u64;
    let entries = finish(found);
    Ok(Index {
        format,
        left_out: total - entries.len() as u64,
        entries,
    })
}

/// A file entry as the format readers find it, before names are cleaned and duplicates
/// resolved. `name` is the decoded name (UTF-8, CP437 or lossy); `None` entries are left
/// out (directories, links, …) but still counted.
#[derive(Debug)]
struct Found {
    entry: Option<Entry>,
}

/// Cleans names, resolves duplicates (the last entry with a name wins: what extracting
/// the archive would leave on disk), keeps archive order.
fn finish(found: Vec<Found>) -> Vec<Entry> {
    use std::collections::HashMap;
    let mut entries: Vec<Option<Entry>> = found.into_iter().map(|f| f.entry).collect();
    let mut seen: HashMap<String, usize> = HashMap::new();
    for i in 0..entries.len() {
        let Some(e) = &entries[i] else { continue };
        if let Some(earlier) = seen.insert(e.name.clone(), i) {
            entries[earlier] = None;
        }
    }
    entries.into_iter().flatten().collect()
}

/// The media type of an entry: from its name, else from its first bytes (read only then).
fn mime_type(name: &str, head: impl FnOnce() -> io::Result<Vec<u8>>) -> io::Result<String> {
    let by_name = mime_guess::from_path(name)
        .first_raw()
        .filter(|m| *m != "application/octet-stream");
    if let Some(m) = by_name {
        return Ok(m.to_string());
    }
    Ok(sniff::mime_type(name, &head()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_decides_the_format_unless_the_name_says_otherwise() {
        let mut tar = vec![0u8; 512];
        tar[..5].copy_from_slice(b"a.txt");
        tar[100..107].copy_from_slice(b"000644\0");
        tar[124..136].copy_from_slice(b"00000000005\0");
        tar[156] = b'0';
        tar[257..263].copy_from_slice(b"ustar\0");
        tar[263..265].copy_from_slice(b"00");
        let sum: u32 = tar.iter().map(|&b| b as u32).sum::<u32>() + 8 * 32;
        tar[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
        assert_eq!(detect("x.zip", b"PK\x03\x04rest"), Some(Format::Zip));
        assert_eq!(detect("noext", b"PK\x03\x04rest"), Some(Format::Zip));
        assert_eq!(detect("data.bin", b"PK\x05\x06"), Some(Format::Zip));
        assert_eq!(detect("report.docx", b"PK\x03\x04rest"), None);
        assert_eq!(detect("app.jar", b"PK\x03\x04rest"), None);
        assert_eq!(detect("x.tar.gz", &[0x1f, 0x8b, 8, 0]), Some(Format::TarGz));
        assert_eq!(detect("x.tgz", &[0x1f, 0x8b, 8, 0]), Some(Format::TarGz));
        assert_eq!(detect("x.tar", &tar), Some(Format::Tar));
        assert_eq!(detect("x", &tar), Some(Format::Tar));
        assert_eq!(detect("movie.mp4", &tar), None);
        tar[0] ^= 1;
        assert_eq!(detect("x.tar", &tar), None, "bad checksum");
        assert_eq!(detect("x.zip", b"hello"), None);
    }

    #[test]
    fn the_last_entry_with_a_name_wins_and_order_is_kept() {
        let e = |idx: u32, name: &str| Found {
            entry: Some(Entry {
                idx,
                path: name.as_bytes().to_vec(),
                name: name.into(),
                size: 0,
                compressed_size: 0,
                method: Method::Stored,
                offset: 0,
                crc32: 0,
                mime_type: "text/plain".into(),
            }),
        };
        let out = finish(vec![
            e(0, "a"),
            e(1, "b"),
            Found { entry: None },
            e(3, "a"),
            e(4, "c"),
        ]);
        let got: Vec<(u32, &str)> = out.iter().map(|e| (e.idx, e.name.as_str())).collect();
        assert_eq!(got, vec![(1, "b"), (3, "a"), (4, "c")]);
    }

    #[test]
    fn budget_is_the_smaller_of_ratio_and_total() {
        let l = Limits {
            max_entries: 10,
            max_total_size: 1 << 30,
            max_ratio: 100,
        };
        assert_eq!(l.budget(1000), (RATIO_FLOOR, true));
        assert_eq!(l.budget(1 << 20), (100 << 20, true));
        assert_eq!(l.budget(1 << 30), (1 << 30, false));
    }
}
