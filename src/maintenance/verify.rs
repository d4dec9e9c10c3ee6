//! `filegate verify`: the catalog against the blobs, also while a server runs; with
//! `repair`, removes what nothing uses, fixes reference counts and marks files whose
//! bytes are gone.
//!
//! A running server changes things while the check reads them, so every finding about
//! a blob is confirmed again under [`Store::lock_blob`] (which a server holds across
//! "bytes on disk" and "row committed") before it is reported or repaired.

use std::collections::HashSet;
use std::time::{Duration, SystemTime};

use rusqlite::Connection;

use super::{hash_file, Error};
use crate::catalog::maintenance::{self as m, BlobUse};
use crate::catalog::{files, uploads, write_tx, Catalog};
use crate::store::Store;

/// Unclaimed chunk files younger than this may belong to a chunk being committed.
pub const LEFTOVER_GRACE: Duration = Duration::from_secs(600);

const PAGE: usize = 500;

#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// Recompute every blob's SHA-256 and MD5.
    pub checksums: bool,
    pub repair: bool,
    /// The instant recorded on files marked missing (ms).
    pub now_ms: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Files not marked missing whose blob is not in the store.
    Missing,
    /// Files not marked missing whose blob has the wrong size or checksum.
    Damaged,
    /// Files marked missing whose blob is still absent or damaged: known, not a problem.
    KnownMissing,
    /// Files marked missing whose blob is back and intact.
    Back,
    /// A blob file no catalog row references.
    Orphan,
    /// Something under `blobs/` that is no blob.
    Stray,
    /// A blob row no file uses.
    Unused,
    /// A blob row whose `refs` disagrees with the number of files using it.
    Refs,
    /// A chunk file or upload directory in `uploads/` no upload claims.
    Leftover,
}

impl Kind {
    pub fn is_problem(self) -> bool {
        self != Kind::KnownMissing
    }
    /// The word that starts a report line.
    pub fn label(self) -> &'static str {
        match self {
            Kind::Missing => "MISSING",
            Kind::Damaged => "DAMAGED",
            Kind::KnownMissing => "KNOWN",
            Kind::Back => "BACK",
            Kind::Orphan => "ORPHAN",
            Kind::Stray => "STRAY",
            Kind::Unused => "UNUSED",
            Kind::Refs => "REFS",
            Kind::Leftover => "LEFTOVER",
        }
    }
}

/// One thing found: a blob id or a path, the files concerned, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub kind: Kind,
    pub subject: String,
    pub files: Vec<String>,
    pub detail: String,
    /// What `repair` did about it; `None` when nothing (not asked, or not possible).
    pub repaired: Option<String>,
}

#[derive(Debug, Default)]
pub struct Report {
    /// What the catalog's own checks object to (not repairable here).
    pub catalog: Vec<String>,
    pub findings: Vec<Finding>,
    /// Repairs that were attempted and failed.
    pub repair_errors: Vec<String>,
    pub files: u64,
    pub blobs: u64,
    pub bytes: u64,
    /// Unclaimed chunk entries left alone because they are recent.
    pub young_leftovers: usize,
    /// Files in `tmp/`: uploads being received, or leftovers the next start removes.
    pub temp_files: usize,
}

impl Report {
    /// Problems found and not repaired; known missing files are no problem.
    pub fn problems_left(&self) -> usize {
        self.catalog.len()
            + self
                .findings
                .iter()
                .filter(|f| f.kind.is_problem() && f.repaired.is_none())
                .count()
    }

    pub fn count(&self, kind: Kind) -> usize {
        self.findings.iter().filter(|f| f.kind == kind).count()
    }

    fn add(&mut self, kind: Kind, subject: &str, files: Vec<String>, detail: String) -> usize {
        self.findings.push(Finding {
            kind,
            subject: subject.to_string(),
            files,
            detail,
            repaired: None,
        });
        self.findings.len() - 1
    }

    /// Records the outcome of repairing finding `i`.
    fn repaired(&mut self, i: usize, outcome: Result<String, Error>) {
        match outcome {
            Ok(done) => self.findings[i].repaired = Some(done),
            Err(e) => self.repair_errors.push(format!(
                "{} {}: {e}",
                self.findings[i].kind.label(),
                self.findings[i].subject
            )),
        }
    }
}

/// How far checksumming has got: (bytes hashed, bytes to hash).
pub type Progress<'a> = &'a mut dyn FnMut(u64, u64);

/// Checks (and with `opts.repair`, repairs) the data directory of `catalog` and `store`.
/// Blocking; safe while a server runs on the same directory.
pub fn run(catalog: &Catalog, store: &Store, opts: Options, progress: Progress) -> Result<Report, Error> {
    let mut conn = catalog.conn()?;
    let mut r = Report {
        catalog: m::integrity_problems(&conn)?,
        ..Report::default()
    };
    let mut hashed = 0u64;
    let to_hash = if opts.checksums {
        m::total_blob_bytes(&conn)?
    } else {
        0
    };

    let mut wrong_refs = Vec::new();
    for mm in m::refs_mismatches(&conn)? {
        if mm.actual == 0 {
            unused_row(&mut r, &mut conn, store, &mm.blob_id, opts)?;
        } else {
            wrong_refs.push(r.add(
                Kind::Refs,
                &mm.blob_id,
                vec![],
                format!("refs is {}, but {} file(s) use it", mm.recorded, mm.actual),
            ));
        }
    }
    if opts.repair && !wrong_refs.is_empty() {
        // One statement recounts them all; a server keeps counts right in every commit.
        match write_tx(&mut conn, |tx| m::fix_refs(tx).map_err(Error::from)) {
            Ok(_) => wrong_refs.iter().for_each(|&i| r.repaired(i, Ok("fixed".into()))),
            Err(e) => r.repair_errors.push(format!("REFS: {e}")),
        }
    }

    // Blob rows page by page, each with its files: are the bytes there, whole, right?
    let mut referenced: HashSet<String> = HashSet::new();
    let mut after = String::new();
    loop {
        let page = m::blob_page(&conn, &after, PAGE)?;
        let Some(last) = page.last() else { break };
        after = last.id.clone();
        for b in page {
            referenced.insert(b.id.clone());
            if b.files.is_empty() {
                continue; // an unused row, reported above
            }
            r.files += b.files.len() as u64;
            r.blobs += 1;
            let mut tick = |n: u64| {
                // Blobs of marked files are hashed without --checksums too, quietly.
                if opts.checksums {
                    hashed += n;
                    progress(hashed, to_hash);
                }
            };
            check_blob(&mut r, &mut conn, store, &b, opts, &mut tick)?;
        }
    }

    if opts.checksums {
        // Done, even if missing blobs left bytes unread.
        progress(to_hash, to_hash);
    }

    // Blob files nothing references, and whatever else sits in blobs/.
    let scan = store.scan_blobs().map_err(super::io_err("listing blobs"))?;
    for id in scan.blobs.iter().filter(|id| !referenced.contains(*id)) {
        orphan(&mut r, &conn, store, id, opts)?;
    }
    for s in &scan.strays {
        let i = r.add(Kind::Stray, &s.name, vec![], "not a blob".into());
        if opts.repair {
            let removed = store.remove_stray(s).map_err(super::io_err(&s.name));
            r.repaired(i, removed.map(|_| "removed".into()));
        }
    }

    // Chunk files and upload directories that no upload in the catalog claims.
    let known: HashSet<String> = m::upload_ids(&conn)?.into_iter().collect();
    let chunks: HashSet<(String, String)> = uploads::all_chunk_data(&conn)?.into_iter().collect();
    let before = SystemTime::now() - LEFTOVER_GRACE;
    let (old, young) = store
        .chunk_leftovers(
            |u| known.contains(u),
            |u, d| chunks.contains(&(u.to_string(), d.to_string())),
            before,
        )
        .map_err(super::io_err("listing uploads"))?;
    r.young_leftovers = young;
    for s in &old {
        let i = r.add(Kind::Leftover, &s.name, vec![], "no upload claims it".into());
        if opts.repair {
            let removed = store.remove_stray(s).map_err(super::io_err(&s.name));
            r.repaired(i, removed.map(|_| "removed".into()));
        }
    }
    r.temp_files = store.temp_count().map_err(super::io_err("listing tmp"))?;
    Ok(r)
}

/// What is wrong with a blob's bytes, if anything.
fn damage(
    store: &Store,
    b: &BlobUse,
    hash: bool,
    tick: &mut dyn FnMut(u64),
) -> Result<Option<(Kind, String)>, Error> {
    let Some(size) = store.blob_size(&b.id).map_err(super::io_err(&b.id))? else {
        return Ok(Some((Kind::Missing, "not in the store".into())));
    };
    let want = u64::try_from(b.size).unwrap_or(u64::MAX);
    if size != want || b.files.iter().any(|f| f.size != b.size) {
        return Ok(Some((
            Kind::Damaged,
            format!("{size} bytes on disk, {} in the catalog", b.size),
        )));
    }
    if !hash {
        return Ok(None);
    }
    let path = store
        .path(&b.id)
        .ok_or_else(|| Error::Refused(format!("bad blob id {}", b.id)))?;
    let d = match hash_file(&path, tick) {
        Ok(d) => d,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(Some((Kind::Missing, "not in the store".into())))
        }
        Err(e) => return Err(super::io_err(&b.id)(e)),
    };
    if d.sha256 != b.id || b.files.iter().any(|f| f.sha256 != d.sha256) {
        return Ok(Some((Kind::Damaged, format!("sha256 is {}", d.sha256))));
    }
    if d.md5 != b.md5 || b.files.iter().any(|f| f.md5 != d.md5) {
        return Ok(Some((Kind::Damaged, format!("md5 is {}", d.md5))));
    }
    Ok(None)
}

fn check_blob(
    r: &mut Report,
    conn: &mut Connection,
    store: &Store,
    b: &BlobUse,
    opts: Options,
    tick: &mut dyn FnMut(u64),
) -> Result<(), Error> {
    let marked: Vec<String> = b
        .files
        .iter()
        .filter(|f| f.missing_since > 0)
        .map(|f| f.id.clone())
        .collect();
    // Files marked missing are only unmarked on a full checksum, even without --checksums.
    let hash = opts.checksums || !marked.is_empty();
    let found = damage(store, b, hash, tick)?;
    if !matches!(found, Some((Kind::Missing, _))) {
        r.bytes += u64::try_from(b.size).unwrap_or(0);
    }
    let Some((kind, detail)) = found else {
        if !marked.is_empty() {
            let i = r.add(
                Kind::Back,
                &b.id,
                marked,
                "marked missing, but present and intact".into(),
            );
            if opts.repair {
                let done = write_tx(conn, |tx| m::unmark_missing(tx, &b.id).map_err(Error::from));
                r.repaired(i, done.map(|n| format!("unmarked {n} file(s)")));
            }
        }
        return Ok(());
    };
    if b.all_marked() {
        r.add(Kind::KnownMissing, &b.id, marked, detail);
        return Ok(());
    }
    // Confirm under the blob's lock: the files may have been deleted (and the bytes with
    // them) since the page was read, or the same content uploaded again.
    let _guard = store.lock_blob(&b.id).map_err(super::io_err("locking a blob"))?;
    let now = m::blob_files(conn, &b.id)?;
    let unmarked: Vec<String> = now
        .iter()
        .filter(|f| f.missing_since == 0)
        .map(|f| f.id.clone())
        .collect();
    if unmarked.is_empty() {
        if !now.is_empty() {
            r.add(
                Kind::KnownMissing,
                &b.id,
                now.into_iter().map(|f| f.id).collect(),
                detail,
            );
        }
        return Ok(());
    }
    if kind == Kind::Missing && store.exists(&b.id) {
        return Ok(()); // uploaded again meanwhile; the next run checks its bytes
    }
    let i = r.add(kind, &b.id, unmarked, detail);
    if opts.repair {
        let done = write_tx(conn, |tx| {
            m::mark_missing(tx, &b.id, opts.now_ms).map_err(Error::from)
        });
        r.repaired(i, done.map(|n| format!("marked {n} file(s) missing")));
    }
    Ok(())
}

/// A blob file with no row, unless an upload committed one since the listing.
fn orphan(r: &mut Report, conn: &Connection, store: &Store, id: &str, opts: Options) -> Result<(), Error> {
    let _guard = store.lock_blob(id).map_err(super::io_err("locking a blob"))?;
    if files::blob_in_use(conn, id)? || !store.exists(id) {
        return Ok(());
    }
    let i = r.add(Kind::Orphan, id, vec![], "no catalog row references it".into());
    if opts.repair {
        // Under the lock, with no row: no upload can be adopting these bytes.
        let removed = store.delete(id).map_err(super::io_err(id));
        r.repaired(i, removed.map(|_| "removed".into()));
    }
    Ok(())
}

/// A blob row no file uses: with repair, the row goes, then its bytes.
fn unused_row(
    r: &mut Report,
    conn: &mut Connection,
    store: &Store,
    id: &str,
    opts: Options,
) -> Result<(), Error> {
    let i = r.add(Kind::Unused, id, vec![], "blob row no file uses".into());
    if !opts.repair {
        return Ok(());
    }
    let done = (|| {
        let _guard = store.lock_blob(id).map_err(super::io_err("locking a blob"))?;
        if write_tx(conn, |tx| m::drop_unused_blob(tx, id).map_err(Error::from))? {
            store.delete(id).map_err(super::io_err(id))?;
            Ok("removed row and bytes".to_string())
        } else {
            Ok("in use again".to_string())
        }
    })();
    r.repaired(i, done);
    Ok(())
}
