//! Housekeeping of files and uploads: the periodic sweep (expired files, abandoned
//! uploads) and the start-up recovery after a crash.

use std::collections::HashSet;

use rusqlite::Connection;

use crate::catalog::{files, uploads};
use crate::error::ApiError;
use crate::store::Store;

/// Uploads untouched for this long are removed (abandoned, failed, or long completed).
pub const STALE_UPLOAD_MS: i64 = 24 * 3600 * 1000;

const BATCH: usize = 500;

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SweepReport {
    pub expired_files: usize,
    pub stale_uploads: usize,
}

/// Deletes files whose `expires_at` has passed and uploads untouched for
/// [`STALE_UPLOAD_MS`], with their bytes. Blocking; `now_ms` comes from the caller's clock.
pub fn run(conn: &mut Connection, store: &Store, now_ms: i64) -> Result<SweepReport, ApiError> {
    let mut report = SweepReport::default();
    loop {
        let ids = files::expired(conn, now_ms, BATCH)?;
        for id in &ids {
            if super::delete_file(conn, store, id)?.is_some() {
                report.expired_files += 1;
            }
        }
        if ids.len() < BATCH {
            break;
        }
    }
    loop {
        let ids = uploads::stale(conn, now_ms - STALE_UPLOAD_MS, BATCH)?;
        for id in &ids {
            super::uploads::remove(conn, store, id)?;
            report.stale_uploads += 1;
        }
        if ids.len() < BATCH {
            break;
        }
    }
    Ok(report)
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RecoverReport {
    pub temp_files: usize,
    pub reopened_uploads: usize,
    pub orphan_chunks: usize,
    pub orphan_blobs: usize,
}

/// Run once before serving: removes leftovers of writes a crash interrupted (temp
/// files, chunk files without rows, blob files no row references) and reopens uploads
/// that were being completed. Blocking.
pub fn recover(conn: &mut Connection, store: &Store, now_ms: i64) -> Result<RecoverReport, ApiError> {
    let temp_files = store.sweep_temp()?;
    let reopened_uploads = uploads::reset_completing(conn, now_ms)?;
    let known: HashSet<(String, String)> = uploads::all_chunk_data(conn)?.into_iter().collect();
    let orphan_chunks = store.sweep_chunks(|u, d| known.contains(&(u.to_string(), d.to_string())))?;
    let referenced: HashSet<String> = files::blob_ids(conn)?.into_iter().collect();
    let mut orphan_blobs = 0;
    for id in store.list_blobs()? {
        if !referenced.contains(&id) {
            store.delete(&id)?;
            orphan_blobs += 1;
        }
    }
    Ok(RecoverReport {
        temp_files,
        reopened_uploads,
        orphan_chunks,
        orphan_blobs,
    })
}
