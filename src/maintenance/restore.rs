//! `filegate restore DIR`: checks a backup, then fills an empty data directory from it.
//!
//! The target carries [`RESTORE_MARKER`] from the first write to the last, and the
//! catalog is moved into place just before the marker goes: a restore cut short leaves
//! a directory that no filegate command opens (a server started on a directory with
//! blobs but no catalog would sweep them away as orphans).

use std::collections::HashMap;
use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use rusqlite::{Connection, OpenFlags};

use super::{
    copy_synced, create_dir, empty_dir, hash_file, io_err, sync_parent, Error, BACKUP_MARKER, RESTORE_MARKER,
};
use crate::auth::secrets::{self, KEY_FILE};
use crate::catalog::maintenance as m;
use crate::catalog::{CATALOG_FILE, SCHEMA_VERSION};
use crate::store::{BlobCopier, Carried, Store};

const PAGE: usize = 500;

#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// Recompute every blob's SHA-256 and MD5 before restoring.
    pub checksums: bool,
    /// Copy every blob, even where a hard link into the backup would do.
    pub copy: bool,
}

/// What checking a backup found.
#[derive(Debug, Default)]
pub struct Check {
    pub files: u64,
    pub blobs: u64,
    pub bytes: u64,
    /// Files the backup's catalog marks missing (their bytes were gone when it was taken).
    pub known_missing: u64,
    /// Why the backup cannot be restored; empty when it can.
    pub problems: Vec<String>,
    /// From the marker.
    pub created_at_ms: Option<i64>,
}

/// How far checksumming has got: (bytes hashed, bytes to hash).
pub type Progress<'a> = &'a mut dyn FnMut(u64, u64);

/// Checks the backup in `dir`: marker, key file, catalog (checksum against the marker,
/// schema version, integrity), every referenced blob present with its size and, with
/// `checksums`, its digests. Read only.
pub fn check(dir: &Path, checksums: bool, progress: Progress) -> Result<Check, Error> {
    let marker = read_marker(dir)?;
    let mut c = Check {
        created_at_ms: marker.get("created_at_ms").and_then(|v| v.parse().ok()),
        ..Check::default()
    };
    match fs::metadata(dir.join(KEY_FILE)) {
        Ok(k) if k.len() == 32 => {}
        Ok(_) => c.problems.push(format!("{KEY_FILE} does not hold 32 bytes")),
        Err(e) => c.problems.push(format!("{KEY_FILE}: {e}")),
    }
    let cat = dir.join(CATALOG_FILE);
    let sha = hash_file(&cat, &mut |_| {})
        .map_err(io_err(cat.display()))?
        .sha256;
    if marker.get("catalog_sha256") != Some(&sha) {
        c.problems
            .push(format!("{CATALOG_FILE} differs from the one the backup wrote"));
        return Ok(c);
    }
    let conn = Connection::open_with_flags(
        &cat,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    let version = m::schema_version(&conn)?;
    if version > SCHEMA_VERSION as i64 {
        c.problems.push(format!(
            "the catalog has schema version {version}, made by a newer filegate (this one knows {SCHEMA_VERSION})"
        ));
        return Ok(c);
    }
    for p in m::integrity_problems(&conn)? {
        c.problems.push(format!("catalog: {p}"));
    }
    let blobs = Store::at(dir);
    let total = if checksums { m::total_blob_bytes(&conn)? } else { 0 };
    let mut hashed = 0u64;
    let mut after = String::new();
    loop {
        let page = m::blob_page(&conn, &after, PAGE)?;
        let Some(last) = page.last() else { break };
        after = last.id.clone();
        for b in page {
            c.files += b.files.len() as u64;
            if b.all_marked() {
                c.known_missing += b.files.len() as u64;
                continue;
            }
            let files: Vec<&str> = b.files.iter().map(|f| f.id.as_str()).collect();
            let who = format!("blob {} (file {})", b.id, files.join(", "));
            let size = blobs.blob_size(&b.id).map_err(io_err(&b.id))?;
            if size != Some(b.size as u64) {
                c.problems.push(match size {
                    None => format!("{who}: missing"),
                    Some(n) => format!("{who}: {n} bytes, the catalog says {}", b.size),
                });
                continue;
            }
            c.blobs += 1;
            c.bytes += b.size as u64;
            if checksums {
                let path = blobs
                    .path(&b.id)
                    .ok_or_else(|| Error::Refused(format!("bad blob id {}", b.id)))?;
                let mut tick = |n: u64| {
                    hashed += n;
                    progress(hashed, total);
                };
                let d = hash_file(&path, &mut tick).map_err(io_err(&b.id))?;
                if d.sha256 != b.id
                    || d.md5 != b.md5
                    || b.files.iter().any(|f| f.sha256 != d.sha256 || f.md5 != d.md5)
                {
                    c.problems.push(format!("{who}: checksum mismatch"));
                }
            }
        }
    }
    if checksums {
        // Done, even where blobs of files marked missing left bytes unread.
        progress(total, total);
    }
    Ok(c)
}

/// The marker's `key = value` lines; refuses a directory without one.
fn read_marker(dir: &Path) -> Result<HashMap<String, String>, Error> {
    let text = match fs::read_to_string(dir.join(BACKUP_MARKER)) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Error::Refused(format!(
                "{} is not a complete filegate backup: {BACKUP_MARKER} is missing (an interrupted backup?)",
                dir.display()
            )))
        }
        Err(e) => return Err(io_err(BACKUP_MARKER)(e)),
    };
    Ok(text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect())
}

#[derive(Debug, Default)]
pub struct Report {
    pub check: Check,
    pub linked: u64,
    pub copied: u64,
    pub elapsed: Duration,
}

/// Restores the backup in `backup` into `target`, which must be empty or absent.
pub fn run(backup: &Path, target: &Path, opts: Options, progress: Progress) -> Result<Report, Error> {
    let started = Instant::now();
    let created = match empty_dir(target)? {
        Some(true) => false,
        Some(false) => {
            return Err(Error::Refused(format!(
                "{} is not empty (a data directory in use?): restore only into an empty or new directory",
                target.display()
            )))
        }
        None => true,
    };
    let check = check(backup, opts.checksums, progress)?;
    if !check.problems.is_empty() {
        let mut msg = format!("{} cannot be restored:", backup.display());
        for p in check.problems.iter().take(20) {
            msg.push_str("\n  ");
            msg.push_str(p);
        }
        if check.problems.len() > 20 {
            msg.push_str(&format!("\n  … and {} more", check.problems.len() - 20));
        }
        return Err(Error::Refused(msg));
    }
    if created {
        create_dir(target, 0o750)?;
    }
    let filled = fill(backup, target, opts, check);
    if filled.is_err() {
        // The directory was empty: what is in it now is this restore's, half done.
        super::clear(target);
    }
    let mut r = filled?;
    r.elapsed = started.elapsed();
    Ok(r)
}

fn fill(backup: &Path, target: &Path, opts: Options, check: Check) -> Result<Report, Error> {
    let marker = target.join(RESTORE_MARKER);
    secrets::write_private(&marker, b"filegate restore is filling this directory\n")
        .map_err(io_err(marker.display()))?;
    crate::store::sync_dir(target).map_err(io_err(target.display()))?;

    let mut r = Report {
        check,
        ..Report::default()
    };
    let key = fs::read(backup.join(KEY_FILE)).map_err(io_err(KEY_FILE))?;
    secrets::write_private(&target.join(KEY_FILE), &key).map_err(io_err(KEY_FILE))?;

    let conn = Connection::open_with_flags(
        backup.join(CATALOG_FILE),
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    let from = Store::at(backup);
    let mut copier = BlobCopier::new(target, !opts.copy);
    let mut after = String::new();
    loop {
        let page = m::blob_page(&conn, &after, PAGE)?;
        let Some(last) = page.last() else { break };
        after = last.id.clone();
        for b in page {
            match copier.carry(&from, &b.id) {
                Ok(Carried::Linked(_)) => r.linked += 1,
                Ok(Carried::Copied(_)) => r.copied += 1,
                // Only blobs whose files are all marked missing may be absent (checked).
                Err(e) if e.kind() == std::io::ErrorKind::NotFound && b.all_marked() => {}
                Err(e) => return Err(io_err(format!("blob {}", b.id))(e)),
            }
        }
    }
    drop(conn);
    copier.finish().map_err(io_err("syncing the blob directories"))?;
    copy_synced(&backup.join(CATALOG_FILE), &target.join(CATALOG_FILE), 0o600)?;
    crate::store::sync_dir(target).map_err(io_err(target.display()))?;
    fs::remove_file(&marker).map_err(io_err(marker.display()))?;
    crate::store::sync_dir(target).map_err(io_err(target.display()))?;
    sync_parent(target)?;
    Ok(r)
}
