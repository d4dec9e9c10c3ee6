//! ZIP (and ZIP64): the central directory, read with the `zip` crate, checked entry by
//! entry against its local header, then for overlaps and against the caps.

use std::borrow::Cow;
use std::fs::File;
use std::io::BufReader;
use std::os::unix::fs::FileExt;

use zip::result::ZipError;
use zip::{CompressionMethod, ZipArchive};

use super::{mime_type, names, reader, Entry, Found, IndexError, Limits, Method};

/// deflate's best case is about 1032:1; an entry that claims more lies about its size.
const DEFLATE_MAX_RATIO: u64 = 1032;

const LOCAL_SIG: &[u8] = b"PK\x03\x04";
const EOCD_SIG: &[u8] = b"PK\x05\x06";
const LOCATOR_SIG: &[u8] = b"PK\x06\x07";
const EOCD64_SIG: &[u8] = b"PK\x06\x06";
const FLAG_ENCRYPTED: u16 = 1;
const FLAG_DATA_DESCRIPTOR: u16 = 1 << 3;

pub(super) fn index(file: &File, len: u64, limits: &Limits) -> Result<Vec<Found>, IndexError> {
    // The zip crate holds the whole central directory in memory: refuse on the count the
    // end records declare before letting it read them.
    if declared_entries(file, len)? > limits.max_entries {
        return Err(IndexError::TooManyEntries(limits.max_entries));
    }
    let zip = ZipArchive::new(BufReader::new(file)).map_err(zip_error)?;
    if zip.len() as u64 > limits.max_entries {
        return Err(IndexError::TooManyEntries(limits.max_entries));
    }
    if zip.has_duplicate_names() {
        // Two entries of one name are how "ambiguous" ZIPs show different content to
        // different readers; no honest writer makes them (Python warns, zip refuses).
        return Err(IndexError::DuplicateNames);
    }
    let dir_start = zip.central_directory_start();
    let mut spans = Vec::with_capacity(zip.len());
    let mut found = Vec::with_capacity(zip.len());
    for i in 0..zip.len() {
        let e = zip.by_index_data(i).map_err(zip_error)?;
        let method = match e.compression() {
            CompressionMethod::Stored => Some(Method::Stored),
            CompressionMethod::Deflated => Some(Method::Deflated),
            _ => None,
        };
        let data_start = check_local_header(file, len, i as u64, &e, method)?;
        let data_end = data_start
            .checked_add(e.compressed_size())
            .ok_or(IndexError::Overlap)?;
        if data_end > len {
            return Err(IndexError::Truncated);
        }
        spans.push((e.header_start(), data_end));
        let listed = method.filter(|_| !e.is_dir() && !e.is_symlink() && !e.encrypted());
        let name = e
            .name()
            .map(|n| n.into_owned())
            .unwrap_or_else(|_| String::from_utf8_lossy(e.name_raw()).into_owned());
        let entry = match (listed, names::clean(&name)) {
            (Some(method), Some(name)) => Some(Entry {
                idx: i as u32,
                path: e.name_raw().to_vec(),
                name,
                size: e.size(),
                compressed_size: e.compressed_size(),
                method,
                offset: data_start,
                crc32: e.crc32(),
                mime_type: String::new(),
            }),
            _ => None,
        };
        found.push(Found { entry });
    }

    // Fifield's bomb: many directory entries whose data is the same (or nested) bytes.
    spans.sort_unstable();
    if spans.iter().any(|s| s.1 > dir_start) || spans.windows(2).any(|w| w[0].1 > w[1].0) {
        return Err(IndexError::Overlap);
    }

    let (budget, _) = limits.budget(len);
    let mut total: u64 = 0;
    for e in found.iter().filter_map(|f| f.entry.as_ref()) {
        match e.method {
            Method::Stored if e.size != e.compressed_size => {
                return Err(IndexError::Malformed(format!(
                    "stored entry {} has two sizes",
                    e.idx
                )))
            }
            Method::Deflated
                if e.size
                    > e.compressed_size
                        .saturating_mul(DEFLATE_MAX_RATIO)
                        .saturating_add(1024) =>
            {
                return Err(IndexError::Ratio(DEFLATE_MAX_RATIO));
            }
            _ => {}
        }
        total = total.saturating_add(e.size);
        if total > budget {
            return Err(limits.over_budget(len));
        }
    }

    for e in found.iter_mut().filter_map(|f| f.entry.as_mut()) {
        let ee = e.clone();
        e.mime_type = mime_type(&e.name, || reader::head(file, &ee)).map_err(IndexError::from_io)?;
    }
    Ok(found)
}

fn zip_error(e: ZipError) -> IndexError {
    match e {
        ZipError::Io(e) => IndexError::from_io(e),
        other => IndexError::Malformed(other.to_string()),
    }
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}
fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}
fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}

fn read_at(file: &File, len: u64, at: u64, n: usize) -> Result<Vec<u8>, IndexError> {
    if at.checked_add(n as u64).is_none_or(|end| end > len) {
        return Err(IndexError::Truncated);
    }
    let mut buf = vec![0u8; n];
    file.read_exact_at(&mut buf, at).map_err(IndexError::from_io)?;
    Ok(buf)
}

/// The largest entry count any end-of-central-directory record near the end of the file
/// declares (ZIP64 records included): what the zip crate would go on to read.
fn declared_entries(file: &File, len: u64) -> Result<u64, IndexError> {
    let tail_len = len.min(22 + 65_535 + 20);
    let tail = read_at(file, len, len - tail_len, tail_len as usize)?;
    let mut most = 0u64;
    let mut at = tail.len();
    while let Some(p) = find_back(&tail[..at], EOCD_SIG) {
        at = p;
        if p + 22 > tail.len() {
            continue;
        }
        let (on_disk, total) = (u16_at(&tail, p + 8), u16_at(&tail, p + 10));
        most = most.max(u64::from(on_disk.max(total)));
        if (on_disk == 0xffff || total == 0xffff || u32_at(&tail, p + 16) == 0xffff_ffff)
            && p >= 20
            && &tail[p - 20..p - 16] == LOCATOR_SIG
        {
            let at64 = u64_at(&tail, p - 20 + 8);
            if let Ok(rec) = read_at(file, len, at64, 56) {
                if &rec[..4] == EOCD64_SIG {
                    most = most.max(u64_at(&rec, 24)).max(u64_at(&rec, 32));
                }
            }
        }
    }
    Ok(most)
}

fn find_back(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).rposition(|w| w == needle)
}

/// Checks the local header of entry `i` against its central directory record and returns
/// where the entry's data starts. Readers that trust the local headers (streaming
/// unzippers) must see the same entry as we do, or the archive is refused.
fn check_local_header(
    file: &File,
    len: u64,
    i: u64,
    e: &zip::read::ZipFileEntry<'_>,
    method: Option<Method>,
) -> Result<u64, IndexError> {
    let mismatch = |what| IndexError::HeaderMismatch(i, what);
    let at = e.header_start();
    let h = read_at(file, len, at, 30)?;
    if &h[..4] != LOCAL_SIG {
        return Err(mismatch("no local header there"));
    }
    let flags = u16_at(&h, 6);
    let local_method = u16_at(&h, 8);
    let (crc, csize, usize_) = (u32_at(&h, 14), u32_at(&h, 18), u32_at(&h, 22));
    let (name_len, extra_len) = (u16_at(&h, 26) as usize, u16_at(&h, 28) as usize);
    let var = read_at(file, len, at + 30, name_len + extra_len)?;
    let (raw_name, extra) = var.split_at(name_len);

    let expected_method = match method {
        Some(Method::Stored) => Some(0),
        Some(Method::Deflated) => Some(8),
        _ => None,
    };
    if expected_method.is_some_and(|m| m != local_method) {
        return Err(mismatch("compression method"));
    }
    if (flags & FLAG_ENCRYPTED != 0) != e.encrypted() {
        return Err(mismatch("encryption flag"));
    }
    let descriptor = flags & FLAG_DATA_DESCRIPTOR != 0;
    if descriptor != e.flags().is_using_data_descriptor() {
        return Err(mismatch("data descriptor flag"));
    }
    if effective_name(raw_name, extra).as_ref() != e.name_raw() {
        return Err(mismatch("name"));
    }
    let (local_usize, local_csize) = if csize == 0xffff_ffff || usize_ == 0xffff_ffff {
        zip64_sizes(extra).ok_or(mismatch("ZIP64 sizes"))?
    } else {
        (u64::from(usize_), u64::from(csize))
    };
    // With a data descriptor the local header may leave CRC and sizes at zero.
    let agrees = |local: u64, central: u64| local == central || (descriptor && local == 0);
    if !agrees(u64::from(crc), u64::from(e.crc32())) {
        return Err(mismatch("CRC-32"));
    }
    if !agrees(local_csize, e.compressed_size()) || !agrees(local_usize, e.size()) {
        return Err(mismatch("sizes"));
    }
    Ok(at + 30 + (name_len + extra_len) as u64)
}

/// Extra fields: (id, data) pairs.
fn extra_fields(mut extra: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    std::iter::from_fn(move || {
        if extra.len() < 4 {
            return None;
        }
        let id = u16_at(extra, 0);
        let n = (u16_at(extra, 2) as usize).min(extra.len() - 4);
        let data = &extra[4..4 + n];
        extra = &extra[4 + n..];
        Some((id, data))
    })
}

/// The local name as the zip crate reads the central one: the Info-ZIP Unicode Path
/// field (0x7075) replaces the raw name when its CRC matches it.
fn effective_name<'a>(raw: &'a [u8], extra: &'a [u8]) -> Cow<'a, [u8]> {
    for (id, data) in extra_fields(extra) {
        if id == 0x7075
            && data.len() >= 5
            && data[0] == 1
            && u32_at(data, 1) == crc32fast::hash(raw)
            && std::str::from_utf8(&data[5..]).is_ok()
        {
            return Cow::Borrowed(&data[5..]);
        }
    }
    Cow::Borrowed(raw)
}

/// (uncompressed, compressed) from a local header's ZIP64 extra field, which holds both.
fn zip64_sizes(extra: &[u8]) -> Option<(u64, u64)> {
    extra_fields(extra)
        .find(|(id, d)| *id == 1 && d.len() >= 16)
        .map(|(_, d)| (u64_at(d, 0), u64_at(d, 8)))
}
