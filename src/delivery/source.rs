//! What a link serves: the whole blob, one entry of an archive (SPEC §5 `item`), or an
//! AutoGraph copy of the blob (SPEC §7).
//!
//! An entry has its own size, type and entity-tag, so validators, `Range`, `HEAD` and
//! multipart answers work on it exactly as on a file. Its bytes come from
//! [`crate::archive::reader`]: a byte range of the blob for stored ZIP entries and TAR,
//! decompressed as they stream for deflated ZIP entries and `.tar.gz` (a range there is
//! served by decompressing and skipping what comes before it). A whole entry is checked
//! against its CRC-32; on a mismatch the answer is cut short (or is a 500 when small
//! enough to be checked before sending), never completed with bad bytes.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, Read};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use actix_web::web::{self, Bytes};
use actix_web::{HttpResponse, HttpResponseBuilder};
use futures_util::stream;

use super::range::ByteRange;
use super::read;
use super::validators;
use crate::archive::reader::EntryReader;
use crate::archive::{Entry, Method};
use crate::autograph::{self, copy::Copy, MarkId};
use crate::catalog::{self, files::FileRow};
use crate::error::ApiError;
use crate::metrics::Metrics;
use crate::state::AppState;

/// Files, entries and answers up to this size are produced at once from memory (an
/// entry's fully checked before sending) and their bytes kept a second
/// ([`small_blob`], [`small_entry`]); serving decides by it too.
pub const SMALL: u64 = 64 * 1024;
/// Piece size of a streamed entry.
const CHUNK: u64 = 256 * 1024;

/// What a link serves.
#[derive(Debug, Clone)]
pub enum Source {
    /// The file's blob, whole.
    Blob,
    /// One entry of an archive file.
    Entry(Arc<Entry>),
    /// An AutoGraph copy: the blob with a mark (`crate::autograph`).
    Marked(Arc<Marked>),
}

/// A marked copy of a blob, the same on every request of its link.
#[derive(Debug)]
pub struct Marked {
    pub copy: Copy,
    pub mark_id: MarkId,
    pub tag: String,
}

impl Source {
    pub fn size(&self, file: &FileRow) -> u64 {
        match self {
            Source::Blob => u64::try_from(file.size).unwrap_or(0),
            Source::Entry(e) => e.size,
            Source::Marked(m) => m.copy.size(),
        }
    }

    /// Strong, and different for each entry of an archive.
    pub fn etag(&self, file: &FileRow) -> String {
        match self {
            Source::Blob => validators::strong_etag(&file.sha256, self.size(file), None),
            Source::Entry(e) => validators::strong_etag(&file.sha256, e.size, Some(&e.name)),
            // Differs per tag and per link (the mark id), and per marking version.
            Source::Marked(m) => validators::strong_etag(
                &file.sha256,
                m.copy.size(),
                Some(&format!("autograph:1:{}:{}", crate::ids::hex(&m.mark_id), m.tag)),
            ),
        }
    }

    pub fn mime_type<'a>(&'a self, file: &'a FileRow) -> &'a str {
        match self {
            Source::Blob | Source::Marked(_) => &file.mime_type,
            Source::Entry(e) => &e.mime_type,
        }
    }
}

/// The copy of `file`'s blob that the tagged link `mark_id` serves: the mark is made
/// under the server's key, placed by its container (`autograph::containers`). The same
/// link always serves the same copy, so its layout is kept for a second
/// ([`super::cache::Cache::marked`]) for the many requests of one download.
pub async fn marked(
    state: &AppState,
    file: &FileRow,
    mark_id: MarkId,
    tag: &str,
    now_ms: i64,
) -> Result<Arc<Marked>, ApiError> {
    if let Some(m) = state.cache.marked(&file.id, &mark_id, now_ms) {
        return Ok(m);
    }
    let mark = state.marks.mark(&mark_id, &file.id, tag);
    let size = u64::try_from(file.size).unwrap_or(0);
    let tag = tag.to_string();
    let make = move |src: &dyn autograph::copy::ReadAt| -> Result<Marked, ApiError> {
        let (container, copy) = autograph::containers::mark_copy(src, size, &mark)?;
        tracing::debug!(container = container.as_str(), "marked copy");
        Ok(Marked { copy, mark_id, tag })
    };
    // A small file is laid out from its bytes in memory; anything else on the
    // blocking pool (its container reads may wait for the disk).
    let m = if size <= SMALL {
        make(&small_blob(state, file, size, now_ms).await?)?
    } else {
        let f = open_blob(state, file)?;
        web::block(move || make(&*f)).await??
    };
    let m = Arc::new(m);
    state.cache.put_marked(&file.id, m.clone(), now_ms);
    Ok(m)
}

/// The file's blob, opened for serving (kept open a moment: [`crate::store::Store::open_shared`]).
pub fn open_blob(state: &AppState, file: &FileRow) -> Result<Arc<File>, ApiError> {
    state.store.open_shared(&file.blob_id).map_err(|e| {
        if e.kind() == io::ErrorKind::NotFound {
            tracing::error!(file = %file.id, "blob missing for a catalog row");
            ApiError::not_found("file")
        } else {
            ApiError::from(e)
        }
    })
}

/// All `total` bytes of a small file's blob: kept from a read within the last second
/// ([`super::cache::Cache::small_blob`]), or read now and kept.
pub async fn small_blob(
    state: &AppState,
    file: &FileRow,
    total: u64,
    now_ms: i64,
) -> Result<Bytes, ApiError> {
    if let Some(b) = state.cache.small_blob(&file.blob_id, now_ms) {
        if b.len() as u64 == total {
            return Ok(b);
        }
    }
    let f = open_blob(state, file)?;
    let b = Bytes::from(read::read_exact_at(&f, 0, total as usize).await?);
    state.cache.put_small_blob(&file.blob_id, b.clone(), now_ms);
    Ok(b)
}

/// All bytes of a small archive entry (checked against its CRC-32), kept for a second
/// like a small blob's: the many range requests of one entry decompress it once.
pub async fn small_entry(
    state: &AppState,
    file: &FileRow,
    entry: &Arc<Entry>,
    now_ms: i64,
) -> Result<Bytes, ApiError> {
    // Blob ids are hex: this key is never a blob's.
    let key = format!("{}/{}", file.blob_id, entry.name);
    if let Some(b) = state.cache.small_blob(&key, now_ms) {
        if b.len() as u64 == entry.size {
            return Ok(b);
        }
    }
    let f = open_blob(state, file)?;
    // A stored entry whose bytes the page cache holds is read here; a compressed one,
    // or one the disk must be waited for, on the blocking pool.
    let here = entry.method == Method::Stored && read::is_cached(&f, entry.offset, entry.size);
    let e = entry.clone();
    let read_all = move || -> io::Result<Vec<u8>> {
        let mut out = vec![0u8; e.size as usize];
        EntryReader::open(f, &e, 0)?.read_exact(&mut out)?;
        Ok(out)
    };
    let out = if here {
        read_all()
    } else {
        web::block(read_all).await?
    };
    let out = out.map_err(|e| {
        tracing::error!(entry = %entry.name, error = %e, "archive entry could not be served");
        ApiError::from(e)
    })?;
    let b = Bytes::from(out);
    state.cache.put_small_blob(&key, b.clone(), now_ms);
    Ok(b)
}

/// Entry `name` of archive `file_id`, from the delivery cache or the catalog; 404
/// `item_not_found` when there is none (the link was signed for it, so this means the
/// archive was replaced or indexed differently — it cannot be guessed into existence).
pub async fn entry(state: &AppState, file_id: &str, name: &str, now_ms: i64) -> Result<Arc<Entry>, ApiError> {
    if let Some(e) = state.cache.entry(file_id, name, now_ms) {
        return Ok(e);
    }
    let (id, n) = (file_id.to_string(), name.to_string());
    let found = state
        .catalog
        .call(move |c| Ok(catalog::archives::by_name(c, &id, &n)?))
        .await?;
    let e = Arc::new(found.ok_or_else(|| ApiError::not_found("item"))?);
    state.cache.put_entry(file_id, e.clone(), now_ms);
    Ok(e)
}

/// The body of an answer about `entry`: for each (header, range of the entry) the header
/// then those bytes of the entry, then `tail`; `len` bytes in all.
pub async fn entry_body(
    mut res: HttpResponseBuilder,
    file: Arc<File>,
    entry: Arc<Entry>,
    parts: Vec<(Bytes, ByteRange)>,
    len: u64,
    tail: Bytes,
    metrics: Arc<Metrics>,
) -> Result<HttpResponse, ApiError> {
    let stored_and_cached = entry.method == Method::Stored
        && len <= SMALL
        && parts
            .iter()
            .all(|(_, r)| read::is_cached(&file, entry.offset + r.start, r.len()));
    let mut p = Producer {
        file,
        entry,
        parts: parts.into(),
        tail,
        reader: None,
        left: 0,
        metrics,
    };
    if len <= SMALL {
        let mut produce = move || -> io::Result<Vec<u8>> {
            let mut out = Vec::with_capacity(len as usize);
            while let Some(piece) = p.next_piece() {
                out.extend_from_slice(&piece?);
            }
            Ok(out)
        };
        // A stored entry's bytes are a plain range of the blob: when the page cache
        // holds them, read here rather than on the blocking pool.
        let buf = if stored_and_cached {
            produce()?
        } else {
            web::block(produce).await??
        };
        return Ok(res.no_chunking(len).body(buf));
    }
    let pieces = stream::unfold(Some(p), |p| async move {
        let mut p = p?;
        let (p, piece) = web::block(move || {
            let piece = p.next_piece();
            (p, piece)
        })
        .await
        .ok()?;
        let piece = piece?;
        // After an error the stream ends: the client sees a short body, never bad bytes.
        let next = piece.is_ok().then_some(p);
        Some((piece, next))
    });
    Ok(res.no_chunking(len).streaming(pieces))
}

/// Produces the body piece by piece on the blocking pool. Ascending ranges of a
/// compressed entry reuse one decompressor (skipping forward); going back reopens.
struct Producer {
    file: Arc<File>,
    entry: Arc<Entry>,
    parts: VecDeque<(Bytes, ByteRange)>,
    tail: Bytes,
    /// The open reader and the entry offset of its next byte.
    reader: Option<(EntryReader<Arc<File>>, u64)>,
    /// Bytes of the current range still to send.
    left: u64,
    metrics: Arc<Metrics>,
}

impl Producer {
    /// The next piece of the body; None when done. Blocking.
    fn next_piece(&mut self) -> Option<io::Result<Bytes>> {
        let piece = self.produce();
        if let Some(Err(e)) = &piece {
            tracing::error!(entry = %self.entry.name, error = %e, "archive entry could not be served");
            self.parts.clear();
            self.tail = Bytes::new();
            self.left = 0;
        }
        piece
    }

    fn produce(&mut self) -> Option<io::Result<Bytes>> {
        loop {
            if self.left > 0 {
                let (r, pos) = self.reader.as_mut()?;
                let n = self.left.min(CHUNK) as usize;
                let mut buf = vec![0u8; n];
                if let Err(e) = r.read_exact(&mut buf) {
                    return Some(Err(e));
                }
                *pos += n as u64;
                self.left -= n as u64;
                self.metrics.bytes_served.fetch_add(n as u64, Ordering::Relaxed);
                return Some(Ok(Bytes::from(buf)));
            }
            if let Some((head, r)) = self.parts.pop_front() {
                if let Err(e) = self.seek(r.start) {
                    return Some(Err(e));
                }
                self.left = r.len();
                if !head.is_empty() {
                    return Some(Ok(head));
                }
                continue;
            }
            if !self.tail.is_empty() {
                return Some(Ok(std::mem::take(&mut self.tail)));
            }
            return None;
        }
    }

    fn seek(&mut self, start: u64) -> io::Result<()> {
        if let Some((r, pos)) = &mut self.reader {
            if self.entry.method != Method::Stored && *pos <= start {
                let gap = start - *pos;
                if io::copy(&mut r.by_ref().take(gap), &mut io::sink())? < gap {
                    return Err(io::ErrorKind::UnexpectedEof.into());
                }
                *pos = start;
                return Ok(());
            }
        }
        let r = EntryReader::open(self.file.clone(), &self.entry, start)?;
        self.reader = Some((r, start));
        Ok(())
    }
}
