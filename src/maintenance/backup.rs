//! `filegate backup DIR`: a consistent copy of a data directory that a server keeps
//! writing to: the catalog as of one instant, exactly the blobs that copy references,
//! and the key file, with a marker written last.
//!
//! Order: the catalog snapshot first, the blobs after. Blobs are immutable and
//! content-addressed, so every blob the snapshot references is on disk unless its last
//! file was deleted after the snapshot. Linking or opening a blob is atomic against its
//! unlinking, so such a blob is either carried whole or found gone; when gone, the check
//! is repeated under [`Store::lock_blob`] and against the live catalog: files deleted
//! since the snapshot are deleted from the copy too (the backup then shows those deletes,
//! which happened while it ran), files still in the live catalog are marked missing in
//! the copy and reported (their bytes are gone from the data directory itself).

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rusqlite::Connection;

use super::{create_dir, empty_dir, hash_file, io_err, set_mode, sync_parent, Error, BACKUP_MARKER};
use crate::auth::secrets::{self, KEY_FILE};
use crate::catalog::maintenance::{self as m, BlobUse};
use crate::catalog::{files, Catalog, CATALOG_FILE};
use crate::store::{BlobCopier, Carried, Store};

const PAGE: usize = 500;

#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// Copy every blob, even where a hard link would do (a backup on the same disk).
    pub copy: bool,
    /// The instant recorded on files marked missing in the copy (ms).
    pub now_ms: i64,
}

#[derive(Debug, Default)]
pub struct Report {
    pub files: u64,
    pub blobs: u64,
    pub bytes: u64,
    pub linked: u64,
    pub copied: u64,
    pub catalog_bytes: u64,
    /// Files deleted from the live catalog after the snapshot, left out of the backup.
    pub deleted_meanwhile: Vec<String>,
    /// Uploads in progress at the snapshot: their chunks are not carried, so they are
    /// left out (a client starts them again).
    pub uploads_left_out: usize,
    /// Blobs (with their files) missing or damaged in the data directory itself: marked
    /// missing in the backup. Files marked missing before are not listed.
    pub missing: Vec<(String, Vec<String>)>,
    pub elapsed: Duration,
}

/// A backup whose catalog snapshot is taken; [`Snapshot::finish`] carries the blobs.
pub struct Snapshot {
    dest: PathBuf,
    copy: Connection,
    started: Instant,
    uploads_left_out: usize,
}

/// Takes the catalog snapshot (and the key file) of `data_dir` into `dest`, which must
/// be empty or absent and outside the data directory.
pub fn snapshot(catalog: &Catalog, data_dir: &Path, dest: &Path) -> Result<Snapshot, Error> {
    let started = Instant::now();
    if resolve(dest).starts_with(resolve(data_dir)) {
        return Err(Error::Refused(format!(
            "{} is inside the data directory {}",
            dest.display(),
            data_dir.display()
        )));
    }
    match empty_dir(dest)? {
        Some(true) => {}
        Some(false) => {
            return Err(Error::Refused(format!(
                "{} is not empty: back up into a new or empty directory",
                dest.display()
            )))
        }
        // A backup holds the secrets' key: readable by its owner only.
        None => create_dir(dest, 0o700)?,
    }
    let result = (|| {
        let cat = dest.join(CATALOG_FILE);
        m::snapshot_into(&*catalog.conn()?, &cat)?;
        set_mode(&cat, 0o600).map_err(io_err(cat.display()))?;
        let key = fs::read(data_dir.join(KEY_FILE)).map_err(io_err(format!("reading {KEY_FILE}")))?;
        secrets::write_private(&dest.join(KEY_FILE), &key).map_err(io_err(format!("writing {KEY_FILE}")))?;
        let copy = Connection::open(&cat)?;
        copy.pragma_update(None, "foreign_keys", "ON")?;
        let uploads_left_out = m::seal_snapshot(&copy)?;
        Ok(Snapshot {
            dest: dest.to_path_buf(),
            copy,
            started,
            uploads_left_out,
        })
    })();
    if result.is_err() {
        super::clear(dest);
    }
    result
}

impl Snapshot {
    /// Carries the blobs the snapshot references from `store`, writes the marker.
    pub fn finish(self, catalog: &Catalog, store: &Store, opts: Options) -> Result<Report, Error> {
        let dest = self.dest.clone();
        let result = self.carry_and_seal(catalog, store, opts);
        if result.is_err() {
            super::clear(&dest);
        }
        result
    }

    fn carry_and_seal(self, catalog: &Catalog, store: &Store, opts: Options) -> Result<Report, Error> {
        let mut r = Report {
            uploads_left_out: self.uploads_left_out,
            ..Report::default()
        };
        let live = catalog.conn()?;
        let mut copier = BlobCopier::new(&self.dest, !opts.copy);
        let mut after = String::new();
        loop {
            let page = m::blob_page(&self.copy, &after, PAGE)?;
            let Some(last) = page.last() else { break };
            after = last.id.clone();
            for b in page {
                if b.files.is_empty() {
                    m::drop_unused_blob(&self.copy, &b.id)?;
                    continue;
                }
                match copier.carry(store, &b.id) {
                    Ok(c) if c.size() == b.size as u64 => count(&mut r, c),
                    Ok(_) => {
                        copier.discard(&b.id).map_err(io_err(&b.id))?;
                        self.lost(
                            &mut r,
                            &live,
                            &b,
                            &b.files.iter().map(|f| f.id.clone()).collect::<Vec<_>>(),
                            opts,
                        )?;
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                        self.vanished(&mut r, &live, store, &mut copier, &b, opts)?
                    }
                    Err(e) => return Err(io_err(format!("blob {}", b.id))(e)),
                }
            }
        }
        copier
            .finish()
            .map_err(io_err("syncing the backup's directories"))?;
        r.files = m::count_files(&self.copy)?;

        let dest = self.dest;
        drop(self.copy);
        let cat = dest.join(CATALOG_FILE);
        fs::File::open(&cat)
            .and_then(|f| f.sync_all())
            .map_err(io_err(cat.display()))?;
        r.catalog_bytes = fs::metadata(&cat).map_err(io_err(cat.display()))?.len();
        let sha = hash_file(&cat, &mut |_| {})
            .map_err(io_err(cat.display()))?
            .sha256;
        r.elapsed = self.started.elapsed();
        let marker = format!(
            "# A complete filegate backup. Restore it with `filegate restore DIR`.\n\
             # It holds secret.key: keep it as private as the data directory.\n\
             format = 1\n\
             filegate_version = {}\n\
             created_at_ms = {}\n\
             schema_version = {}\n\
             files = {}\n\
             blobs = {}\n\
             bytes = {}\n\
             catalog_sha256 = {sha}\n",
            env!("CARGO_PKG_VERSION"),
            opts.now_ms,
            crate::catalog::SCHEMA_VERSION,
            r.files,
            r.blobs,
            r.bytes,
        );
        let tmp = dest.join(format!("{BACKUP_MARKER}.partial"));
        secrets::write_private(&tmp, marker.as_bytes()).map_err(io_err(tmp.display()))?;
        fs::rename(&tmp, dest.join(BACKUP_MARKER)).map_err(io_err(tmp.display()))?;
        crate::store::sync_dir(&dest).map_err(io_err(dest.display()))?;
        sync_parent(&dest)?;
        Ok(r)
    }

    /// Blob `b` was not found: deleted since the snapshot, or gone from the data dir.
    fn vanished(
        &self,
        r: &mut Report,
        live: &Connection,
        store: &Store,
        copier: &mut BlobCopier,
        b: &BlobUse,
        opts: Options,
    ) -> Result<(), Error> {
        if b.all_marked() {
            return Ok(()); // known missing; the copy says so already
        }
        // Under the lock nothing adds or drops this blob's bytes or references.
        let _guard = store.lock_blob(&b.id).map_err(io_err("locking a blob"))?;
        match copier.carry(store, &b.id) {
            // The same content was uploaded again meanwhile.
            Ok(c) if c.size() == b.size as u64 => {
                count(r, c);
                return Ok(());
            }
            Ok(_) => copier.discard(&b.id).map_err(io_err(&b.id))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err(format!("blob {}", b.id))(e)),
        }
        let live_files: HashSet<String> = m::blob_files(live, &b.id)?.into_iter().map(|f| f.id).collect();
        let mut kept = Vec::new();
        for f in &b.files {
            if live_files.contains(&f.id) {
                kept.push(f.id.clone());
            } else {
                files::delete(&self.copy, &f.id)?;
                r.deleted_meanwhile.push(f.id.clone());
            }
        }
        self.lost(r, live, b, &kept, opts)
    }

    /// The bytes of `b` are missing or wrong in the data directory: files `ids` are
    /// marked missing in the copy, and reported unless the live catalog knew already.
    fn lost(
        &self,
        r: &mut Report,
        live: &Connection,
        b: &BlobUse,
        ids: &[String],
        opts: Options,
    ) -> Result<(), Error> {
        if ids.is_empty() {
            return Ok(());
        }
        m::mark_missing(&self.copy, &b.id, opts.now_ms)?;
        let news: Vec<String> = m::blob_files(live, &b.id)?
            .into_iter()
            .filter(|f| f.missing_since == 0 && ids.contains(&f.id))
            .map(|f| f.id)
            .collect();
        if !news.is_empty() {
            r.missing.push((b.id.clone(), news));
        }
        Ok(())
    }
}

fn count(r: &mut Report, c: Carried) {
    r.blobs += 1;
    r.bytes += c.size();
    match c {
        Carried::Linked(_) => r.linked += 1,
        Carried::Copied(_) => r.copied += 1,
    }
}

/// Takes a backup of `data_dir` into `dest`: [`snapshot`], then [`Snapshot::finish`].
pub fn run(
    catalog: &Catalog,
    store: &Store,
    data_dir: &Path,
    dest: &Path,
    opts: Options,
) -> Result<Report, Error> {
    snapshot(catalog, data_dir, dest)?.finish(catalog, store, opts)
}

/// `p` made absolute with symlinks resolved, for paths that may not exist yet: the
/// nearest existing ancestor is canonicalized and the rest appended.
fn resolve(p: &Path) -> PathBuf {
    let abs = std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
    let mut head = abs.as_path();
    let mut tail = Vec::new();
    loop {
        if let Ok(c) = head.canonicalize() {
            return tail.iter().rev().fold(c, |acc: PathBuf, part| acc.join(part));
        }
        match (head.parent(), head.file_name()) {
            (Some(parent), Some(name)) => {
                tail.push(name.to_os_string());
                head = parent;
            }
            _ => return abs,
        }
    }
}
