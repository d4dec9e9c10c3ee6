//! Files: turning uploaded bytes into durable, visible files, and removing them again.
//!
//! Order for durability (SPEC §3): bytes to a temp file (hashed on the way), digests
//! verified, bytes fsynced and renamed into the blob store, THEN the catalog row
//! committed. A crash in between leaves an unreferenced blob at worst, never a row
//! without bytes. Blobs are content-addressed (sha256) and shared by identical files;
//! `blobs.refs` changes in the same transaction as the file row, under
//! [`Store::lock_blob`] so that a delete cannot unlink bytes an upload is adopting.

pub mod digest;
pub mod ingest;
pub mod object_key;
pub mod sniff;
pub mod sweep;
pub mod uploads;

use std::io::Read;

use rusqlite::Connection;

use crate::archive;
use crate::catalog::archives;
use crate::catalog::files::{self, FileRow};
use crate::catalog::pipelines::{self, PipelineRow};
use crate::catalog::write_tx;
use crate::error::ApiError;
use crate::store::{Store, TempBlob};
use digest::Digests;

/// Where a new file goes and what it is called.
#[derive(Debug, Clone)]
pub struct Placement {
    pub file_id: String,
    /// Display name, as given.
    pub name: String,
    pub object_key: String,
    pub pipeline_id: Option<String>,
    pub job_id: Option<String>,
    pub app_id: Option<String>,
    pub autograph: bool,
    /// ms; 0 = never.
    pub expires_at: i64,
    /// Caps for indexing the file if it turns out to be an archive.
    pub archives: archive::Limits,
}

/// Where the bytes of a new file are now.
pub enum Source {
    /// A fsynced temp file.
    Temp(TempBlob),
    /// A persisted chunk of an upload (a one-chunk upload is adopted without a copy).
    Chunk { upload_id: String, data_id: String },
}

/// The bytes of a new file: where they are, their digests, their first bytes.
pub struct Content {
    pub source: Source,
    pub digests: Digests,
    pub head: Vec<u8>,
}

/// 400 `invalid_object_key` unless `key` is acceptable.
pub fn check_object_key(key: &str) -> Result<(), ApiError> {
    object_key::validate(key).map_err(|_| ApiError::invalid("invalid_object_key", "object_key"))
}

/// Checks that the pipeline exists (404 `pipeline_not_found`), the key is free
/// (409 `object_key_exists`) and not claimed by a failed job only (409 `job_failed`);
/// returns the pipeline. The insert checks all this again in its transaction.
pub fn check_placement(
    conn: &Connection,
    pipeline_id: Option<&str>,
    object_key: Option<&str>,
) -> Result<Option<PipelineRow>, ApiError> {
    let pipeline = match pipeline_id {
        Some(id) => Some(pipelines::get(conn, id)?.ok_or_else(pipeline_not_found)?),
        None => None,
    };
    if let Some(key) = object_key {
        if files::by_key(conn, pipeline_id, key)?.is_some() {
            return Err(key_exists());
        }
        if let Some(pid) = pipeline_id {
            crate::jobs::owner_for_upload(conn, pid, key)?;
        }
    }
    Ok(pipeline)
}

fn pipeline_not_found() -> ApiError {
    ApiError::not_found("pipeline").with_param("pipeline_id")
}

fn key_exists() -> ApiError {
    ApiError::conflict("object_key_exists").with_param("object_key")
}

/// The file's `expires_at` (ms, 0 = never). In a temporary pipeline: its
/// `default_object_timeout` from now, or the requested instant when that is sooner (a
/// temporary pipeline keeps nothing longer, `0` = never included). Elsewhere: as
/// requested, else `default_ttl_secs` from now (0 = never).
pub fn expiry(
    requested: Option<i64>,
    pipeline: Option<&PipelineRow>,
    default_ttl_secs: u64,
    now_ms: i64,
) -> i64 {
    let temporary = pipeline
        .filter(|p| p.mode == crate::pipelines::TEMPORARY && p.default_object_timeout > 0)
        .map(|p| now_ms.saturating_add(p.default_object_timeout.saturating_mul(1000)));
    match (requested, temporary) {
        (Some(ms), Some(cap)) if ms > 0 => ms.min(cap),
        (_, Some(cap)) => cap,
        (Some(ms), None) => ms,
        (None, None) if default_ttl_secs == 0 => 0,
        (None, None) => now_ms.saturating_add((default_ttl_secs as i64).saturating_mul(1000)),
    }
}

/// Makes `content` the file described by `p`: bytes into the blob store, then the row
/// (and whatever `also` writes in the same transaction). Blocking. On failure nothing
/// of this upload stays visible, and its bytes are removed unless another file uses them.
pub fn store_file(
    conn: &mut Connection,
    store: &Store,
    p: &Placement,
    content: Content,
    now_ms: i64,
    also: impl FnOnce(&rusqlite::Transaction) -> Result<(), ApiError>,
) -> Result<FileRow, ApiError> {
    let blob_id = content.digests.sha256.clone();
    // Before the blob lock: indexing a big archive must not hold up other uploads.
    let index = index_archive(store, p, &content);
    let row = FileRow {
        id: p.file_id.clone(),
        name: p.name.clone(),
        title: p.name.clone(),
        kind: if index.is_some() { "archive" } else { "file" }.into(),
        subtype: index.as_ref().map(|i| i.format.subtype().to_string()),
        mime_type: sniff::mime_type(&p.name, &content.head),
        size: content.digests.size as i64,
        md5: content.digests.md5.clone(),
        sha256: content.digests.sha256.clone(),
        blob_id: blob_id.clone(),
        autograph: p.autograph,
        object_key: p.object_key.clone(),
        pipeline_id: p.pipeline_id.clone(),
        job_id: p.job_id.clone(),
        app_id: p.app_id.clone(),
        created_at: now_ms,
        updated_at: now_ms,
        expires_at: p.expires_at,
        revoked_before: 0,
        missing_since: 0,
    };

    let _guard = store.lock_blob(&blob_id)?;
    let existed = store.exists(&blob_id);
    if !existed {
        match content.source {
            Source::Temp(t) => t.persist(&blob_id)?,
            Source::Chunk { upload_id, data_id } => store.adopt_chunk(&upload_id, &data_id, &blob_id)?,
        }
    }
    // else: identical bytes are already there; a temp file is removed when dropped, a
    // chunk with its upload.
    let committed = write_tx(conn, |tx| {
        let mut row = row;
        if let Some(pid) = &p.pipeline_id {
            if pipelines::get(tx, pid)?.is_none() {
                return Err(pipeline_not_found());
            }
            // A key under a job's output prefix makes the file one of that job's outputs,
            // decided under the same lock as the job's status moves.
            if row.job_id.is_none() {
                row.job_id = crate::jobs::owner_for_upload(tx, pid, &row.object_key)?;
            }
        }
        files::insert(tx, &row).map_err(|e| {
            if files::is_key_conflict(&e) {
                key_exists()
            } else {
                ApiError::from(e)
            }
        })?;
        if let Some(index) = &index {
            archives::insert(tx, &row.id, &index.entries)?;
        }
        also(tx)?;
        Ok(row)
    });
    match committed {
        Ok(row) => Ok(row),
        Err(e) => {
            // Still under the lock: nobody else can have started using these bytes.
            if !existed && matches!(files::blob_in_use(conn, &blob_id), Ok(false)) {
                let _ = store.delete(&blob_id);
            }
            Err(e)
        }
    }
}

/// Indexes the new file's bytes when they are a ZIP or TAR archive (SPEC §3). The bytes
/// are already durable (fsynced temp file or persisted chunk). An archive that cannot be
/// indexed — malformed, hostile, past a cap — is still the user's file: it is stored as a
/// plain file and the log says why. Blocking.
fn index_archive(store: &Store, p: &Placement, content: &Content) -> Option<archive::Index> {
    let format = archive::detect(&p.name, &content.head)?;
    let opened = match &content.source {
        Source::Temp(t) => t.open_read(),
        Source::Chunk { upload_id, data_id } => store.open_chunk(upload_id, data_id),
    };
    let started = std::time::Instant::now();
    let result = opened
        .map_err(archive::IndexError::from)
        .and_then(|f| archive::index(&f, content.digests.size, format, &p.archives));
    match result {
        Ok(index) => {
            tracing::info!(
                file_id = %p.file_id,
                subtype = format.subtype(),
                entries = index.entries.len(),
                left_out = index.left_out,
                ms = started.elapsed().as_millis() as u64,
                "archive indexed"
            );
            Some(index)
        }
        Err(archive::IndexError::NotAnArchive) => None,
        Err(e) => {
            tracing::warn!(
                file_id = %p.file_id,
                subtype = format.subtype(),
                reason = e.reason(),
                error = %e,
                "archive not indexed, stored as a plain file"
            );
            None
        }
    }
}

/// Deletes file `id`; its bytes go when no other file shares them. Blocking.
pub fn delete_file(conn: &mut Connection, store: &Store, id: &str) -> Result<Option<FileRow>, ApiError> {
    let Some(row) = files::get(conn, id)? else {
        return Ok(None);
    };
    let _guard = store.lock_blob(&row.blob_id)?;
    let deleted = write_tx(conn, |tx| files::delete(tx, id))?;
    let Some(deleted) = deleted else {
        return Ok(None);
    };
    if deleted.blob_unused {
        // After the commit: a crash before this line leaves an orphan blob, never a row
        // without bytes. Under the lock, no upload can be adopting these bytes meanwhile.
        if let Err(e) = store.delete(&deleted.row.blob_id) {
            tracing::warn!(error = %e, blob = %deleted.row.blob_id, "could not remove unused blob");
        }
    }
    Ok(Some(deleted.row))
}

/// The first bytes of a reader, for type sniffing.
pub fn read_head(r: &mut impl Read) -> std::io::Result<Vec<u8>> {
    let mut head = Vec::with_capacity(sniff::HEAD_LEN);
    r.take(sniff::HEAD_LEN as u64).read_to_end(&mut head)?;
    Ok(head)
}
