//! The upload lifecycle: MediaHub's three-step flow and chunked uploads.
//!
//! `UPLOADING` (chunks arrive, each made durable before its row) → `COMPLETING` (one
//! completion at a time) → `COMPLETED` (the file row committed in the same transaction)
//! or `FAILED` (with a reason; its chunks are dropped). A crash during `COMPLETING`
//! sends the upload back to `UPLOADING` at the next start, chunks intact.

use rusqlite::Connection;
use subtle::ConstantTimeEq;

use super::digest::{Digests, Expected};
use super::ingest::{Ingest, Ingested};
use super::{store_file, Content, Placement, Source};
use crate::auth::secrets::SecretBox;
use crate::catalog::files::FileRow;
use crate::catalog::uploads::{self, ChunkRow, Status, UploadRow};
use crate::catalog::write_tx;
use crate::error::{ApiError, ErrorKind};
use crate::ids;
use crate::store::Store;

/// Most chunks one upload may have.
pub const MAX_CHUNKS: i64 = 100_000;

/// What a new upload will produce.
#[derive(Debug, Clone)]
pub struct NewUpload {
    pub app_id: Option<String>,
    pub object_key: Option<String>,
    pub pipeline_id: Option<String>,
    pub autograph: bool,
    pub expires_at: i64,
}

/// Creates an upload in `UPLOADING`; returns it with its form-post token (shown to the client).
pub fn create(
    conn: &Connection,
    secrets: &SecretBox,
    u: &NewUpload,
    now_ms: i64,
) -> Result<(UploadRow, String), ApiError> {
    let (row, token) = new_row(secrets, u, now_ms);
    uploads::insert(conn, &row)?;
    Ok((row, token))
}

fn new_row(secrets: &SecretBox, u: &NewUpload, now_ms: i64) -> (UploadRow, String) {
    let id = ids::new_id(now_ms.div_euclid(1000));
    let mut raw = [0u8; 24];
    ids::random_bytes(&mut raw);
    let token = ids::hex(&raw);
    let row = UploadRow {
        id: id.clone(),
        app_id: u.app_id.clone(),
        token_enc: secrets.seal(&format!("upload:{id}"), token.as_bytes()),
        status: Status::Uploading,
        failure: None,
        object_key: u.object_key.clone(),
        pipeline_id: u.pipeline_id.clone(),
        autograph: u.autograph,
        expires_at: u.expires_at,
        file_id: ids::new_id(now_ms.div_euclid(1000)),
        nb_chunks: 0,
        created_at: now_ms,
        updated_at: now_ms,
    };
    (row, token)
}

/// Stores a one-shot upload's file and records the upload as `COMPLETED` in the same
/// transaction (so that `GET /v1/files/uploads/ID` answers for it too). Blocking.
pub fn store_one_shot(
    conn: &mut Connection,
    store: &Store,
    secrets: &SecretBox,
    p: &Placement,
    content: Content,
    now_ms: i64,
) -> Result<(UploadRow, FileRow), ApiError> {
    let spec = NewUpload {
        app_id: p.app_id.clone(),
        object_key: Some(p.object_key.clone()),
        pipeline_id: p.pipeline_id.clone(),
        autograph: p.autograph,
        expires_at: p.expires_at,
    };
    let (mut row, _) = new_row(secrets, &spec, now_ms);
    row.status = Status::Completed;
    row.nb_chunks = 1;
    row.file_id = p.file_id.clone();
    let f = store_file(conn, store, p, content, now_ms, |tx| {
        Ok(uploads::insert(tx, &row)?)
    })?;
    Ok((row, f))
}

/// The upload's form-post token.
pub fn token_of(secrets: &SecretBox, u: &UploadRow) -> Option<String> {
    secrets
        .open(&format!("upload:{}", u.id), &u.token_enc)
        .and_then(|b| String::from_utf8(b).ok())
}

/// Constant-time check of a presented form-post token.
pub fn token_matches(secrets: &SecretBox, u: &UploadRow, presented: &str) -> bool {
    match token_of(secrets, u) {
        Some(t) => bool::from(t.as_bytes().ct_eq(presented.as_bytes())),
        None => false,
    }
}

fn not_open(u: &UploadRow) -> ApiError {
    match u.status {
        Status::Completing => ApiError::conflict("upload_completing"),
        Status::Completed => ApiError::conflict("upload_completed"),
        Status::Failed => ApiError::conflict("upload_failed"),
        Status::Uploading => ApiError::internal("upload unexpectedly open"),
    }
}

pub fn not_found() -> ApiError {
    ApiError::not_found("upload")
}

/// Bytes already received for `upload_id`, not counting chunk `except_idx`.
pub fn received_bytes(conn: &Connection, upload_id: &str, except_idx: i64) -> Result<u64, ApiError> {
    Ok(uploads::chunks(conn, upload_id)?
        .iter()
        .filter(|c| c.idx != except_idx)
        .map(|c| c.size as u64)
        .sum())
}

/// Makes chunk `idx` (of `chunks`) durable and records it, replacing an earlier copy of
/// the same index. Blocking. 413 when the chunks together pass `max_size`.
#[allow(clippy::too_many_arguments)]
pub fn save_chunk(
    conn: &mut Connection,
    store: &Store,
    upload_id: &str,
    idx: i64,
    chunks: i64,
    name: Option<String>,
    data: Ingested,
    max_size: u64,
    now_ms: i64,
) -> Result<UploadRow, ApiError> {
    let data_id = ids::new_id(now_ms.div_euclid(1000));
    data.temp.persist_chunk(upload_id, &data_id)?;
    let result = write_tx(conn, |tx| {
        let u = uploads::get(tx, upload_id)?.ok_or_else(not_found)?;
        if u.status != Status::Uploading {
            return Err(not_open(&u));
        }
        if received_bytes(tx, upload_id, idx)? + data.digests.size > max_size {
            return Err(too_large());
        }
        let replaced = uploads::put_chunk(
            tx,
            &ChunkRow {
                upload_id: upload_id.to_string(),
                idx,
                chunks,
                data_id: data_id.clone(),
                name,
                size: data.digests.size as i64,
                md5: data.digests.md5.clone(),
                sha256: data.digests.sha256.clone(),
                created_at: now_ms,
            },
        )?;
        uploads::touch(tx, upload_id, now_ms)?;
        Ok((u, replaced))
    });
    match result {
        Ok((u, replaced)) => {
            if let Some(old) = replaced {
                let _ = store.delete_chunk(upload_id, &old);
            }
            Ok(u)
        }
        Err(e) => {
            let _ = store.delete_chunk(upload_id, &data_id);
            Err(e)
        }
    }
}

pub fn too_large() -> ApiError {
    ApiError::new(ErrorKind::PayloadTooLarge, "upload_too_large")
}

/// Claims the upload for completion with `nb_chunks` chunks: checks that chunks
/// `0..nb_chunks` are all there and agree on the count, then moves it to `COMPLETING`.
/// Returns the upload and its chunks in order. A completed upload is returned as is.
pub fn begin_complete(
    conn: &mut Connection,
    upload_id: &str,
    nb_chunks: i64,
    now_ms: i64,
) -> Result<(UploadRow, Vec<ChunkRow>), ApiError> {
    write_tx(conn, |tx| {
        let u = uploads::get(tx, upload_id)?.ok_or_else(not_found)?;
        if u.status == Status::Completed {
            return Ok((u, Vec::new()));
        }
        if u.status != Status::Uploading {
            return Err(not_open(&u));
        }
        if !(1..=MAX_CHUNKS).contains(&nb_chunks) {
            return Err(ApiError::invalid("invalid_nb_chunks", "nb_chunks"));
        }
        let chunks = uploads::chunks(tx, upload_id)?;
        let missing = (0..nb_chunks).any(|i| !chunks.iter().any(|c| c.idx == i));
        if missing {
            return Err(ApiError::invalid("missing_chunks", "nb_chunks"));
        }
        if chunks.iter().any(|c| c.idx >= nb_chunks || c.chunks != nb_chunks) {
            return Err(ApiError::invalid("chunk_count_mismatch", "nb_chunks"));
        }
        uploads::set_status(tx, upload_id, Status::Completing, None, nb_chunks, now_ms)?;
        let u = uploads::get(tx, upload_id)?.ok_or_else(not_found)?;
        Ok((u, chunks))
    })
}

/// Assembles the chunks into the file, verifies `expected` digests of the whole, stores
/// it and marks the upload `COMPLETED` in the same transaction. Blocking.
///
/// On a refusal that retrying cannot fix (digest mismatch, key taken, pipeline gone) the
/// upload becomes `FAILED` and its chunks are dropped; on other errors it goes back to
/// `UPLOADING` with its chunks, to be completed again.
pub fn complete(
    conn: &mut Connection,
    store: &Store,
    u: &UploadRow,
    chunks: &[ChunkRow],
    placement: &Placement,
    expected: &Expected,
    now_ms: i64,
) -> Result<FileRow, ApiError> {
    let result = assemble(store, u, chunks).and_then(|content| {
        if let Err(h) = expected.verify(&content.digests) {
            return Err(ApiError::invalid("bad_digest", h));
        }
        let uid = u.id.clone();
        let nb = u.nb_chunks;
        store_file(conn, store, placement, content, now_ms, |tx| {
            uploads::set_status(tx, &uid, Status::Completed, None, nb, now_ms)?;
            uploads::delete_chunks(tx, &uid)?;
            Ok(())
        })
    });
    match result {
        Ok(row) => {
            let _ = store.delete_upload(&u.id);
            Ok(row)
        }
        Err(e) => {
            let fatal = matches!(
                e.reason.as_ref(),
                "bad_digest" | "object_key_exists" | "pipeline_not_found" | "job_failed"
            );
            let outcome = write_tx(conn, |tx| {
                if fatal {
                    uploads::set_status(tx, &u.id, Status::Failed, Some(&e.reason), u.nb_chunks, now_ms)?;
                    uploads::delete_chunks(tx, &u.id)?;
                } else {
                    uploads::set_status(tx, &u.id, Status::Uploading, None, u.nb_chunks, now_ms)?;
                }
                Ok::<_, ApiError>(())
            });
            if fatal && outcome.is_ok() {
                let _ = store.delete_upload(&u.id);
            }
            Err(e)
        }
    }
}

/// The whole content of an upload: a single chunk as it is (no copy), several chunks
/// concatenated into a temp file with fresh digests.
fn assemble(store: &Store, u: &UploadRow, chunks: &[ChunkRow]) -> Result<Content, ApiError> {
    if let [only] = chunks {
        let head = super::read_head(&mut store.open_chunk(&u.id, &only.data_id)?)?;
        return Ok(Content {
            source: Source::Chunk {
                upload_id: u.id.clone(),
                data_id: only.data_id.clone(),
            },
            digests: Digests {
                size: only.size as u64,
                md5: only.md5.clone(),
                sha256: only.sha256.clone(),
            },
            head,
        });
    }
    let mut ing = Ingest::new(store)?;
    for c in chunks {
        ing.copy_from(&mut store.open_chunk(&u.id, &c.data_id)?)?;
    }
    let done = ing.finish()?;
    Ok(Content {
        source: Source::Temp(done.temp),
        digests: done.digests,
        head: done.head,
    })
}

/// Removes upload `id` and its chunk files. Blocking.
pub fn remove(conn: &mut Connection, store: &Store, id: &str) -> Result<(), ApiError> {
    write_tx(conn, |tx| uploads::delete(tx, id))?;
    store.delete_upload(id)?;
    Ok(())
}
