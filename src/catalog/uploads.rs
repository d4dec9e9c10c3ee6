//! Uploads in progress (MediaHub's three-step and chunked flows) and their chunks.
//!
//! A chunk row is written only after its bytes are durable in the store; the chunk files
//! are removed only after the rows that name them are gone.

use rusqlite::{params, Connection, OptionalExtension, Row};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Uploading,
    Completing,
    Completed,
    Failed,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Uploading => "UPLOADING",
            Status::Completing => "COMPLETING",
            Status::Completed => "COMPLETED",
            Status::Failed => "FAILED",
        }
    }
    fn parse(s: &str) -> Status {
        match s {
            "COMPLETING" => Status::Completing,
            "COMPLETED" => Status::Completed,
            "FAILED" => Status::Failed,
            _ => Status::Uploading,
        }
    }
}

#[derive(Debug, Clone)]
pub struct UploadRow {
    pub id: String,
    pub app_id: Option<String>,
    /// The form-post token, sealed with the installation's secret box.
    pub token_enc: Vec<u8>,
    pub status: Status,
    /// Why the upload failed (a stable reason word).
    pub failure: Option<String>,
    pub object_key: Option<String>,
    pub pipeline_id: Option<String>,
    pub autograph: bool,
    /// The file's expiry (ms, 0 = never).
    pub expires_at: i64,
    /// The id the file gets on completion, known from the start.
    pub file_id: String,
    pub nb_chunks: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

const COLS: &str = "id, app_id, token_enc, status, failure, object_key, pipeline_id, autograph, \
                    expires_at, file_id, nb_chunks, created_at, updated_at";

fn from_row(r: &Row) -> rusqlite::Result<UploadRow> {
    Ok(UploadRow {
        id: r.get(0)?,
        app_id: r.get(1)?,
        token_enc: r.get(2)?,
        status: Status::parse(&r.get::<_, String>(3)?),
        failure: r.get(4)?,
        object_key: r.get(5)?,
        pipeline_id: r.get(6)?,
        autograph: r.get(7)?,
        expires_at: r.get(8)?,
        file_id: r.get(9)?,
        nb_chunks: r.get(10)?,
        created_at: r.get(11)?,
        updated_at: r.get(12)?,
    })
}

pub fn insert(conn: &Connection, u: &UploadRow) -> rusqlite::Result<()> {
    conn.execute(
        &format!(
            "INSERT INTO uploads({COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)"
        ),
        params![
            u.id,
            u.app_id,
            u.token_enc,
            u.status.as_str(),
            u.failure,
            u.object_key,
            u.pipeline_id,
            u.autograph,
            u.expires_at,
            u.file_id,
            u.nb_chunks,
            u.created_at,
            u.updated_at
        ],
    )?;
    Ok(())
}

pub fn get(conn: &Connection, id: &str) -> rusqlite::Result<Option<UploadRow>> {
    conn.query_row(
        &format!("SELECT {COLS} FROM uploads WHERE id = ?1"),
        [id],
        from_row,
    )
    .optional()
}

pub fn set_status(
    conn: &Connection,
    id: &str,
    status: Status,
    failure: Option<&str>,
    nb_chunks: i64,
    now_ms: i64,
) -> rusqlite::Result<()> {
    conn.execute(
        "UPDATE uploads SET status = ?2, failure = ?3, nb_chunks = ?4, updated_at = ?5 WHERE id = ?1",
        params![id, status.as_str(), failure, nb_chunks, now_ms],
    )?;
    Ok(())
}

/// Marks the upload as touched (a chunk arrived), so the abandoned-upload sweep spares it.
pub fn touch(conn: &Connection, id: &str, now_ms: i64) -> rusqlite::Result<()> {
    conn.execute(
        "UPDATE uploads SET updated_at = ?2 WHERE id = ?1",
        params![id, now_ms],
    )?;
    Ok(())
}

/// Uploads left `COMPLETING` by a crash go back to `UPLOADING`: their chunks are intact
/// and the client may complete them again. Returns how many.
pub fn reset_completing(conn: &Connection, now_ms: i64) -> rusqlite::Result<usize> {
    conn.execute(
        "UPDATE uploads SET status = 'UPLOADING', updated_at = ?1 WHERE status = 'COMPLETING'",
        [now_ms],
    )
}

/// Uploads not touched since `before_ms` (abandoned, failed, or completed long ago).
pub fn stale(conn: &Connection, before_ms: i64, max: usize) -> rusqlite::Result<Vec<String>> {
    let mut st = conn.prepare(
        "SELECT id FROM uploads WHERE updated_at < ?1 AND status != 'COMPLETING'
         ORDER BY updated_at LIMIT ?2",
    )?;
    let rows = st.query_map(params![before_ms, max as i64], |r| r.get(0))?;
    rows.collect()
}

/// Deletes the upload and its chunk rows; returns the data ids of the chunks it had.
pub fn delete(conn: &Connection, id: &str) -> rusqlite::Result<Vec<String>> {
    let data = chunks(conn, id)?.into_iter().map(|c| c.data_id).collect();
    delete_chunks(conn, id)?;
    conn.execute("DELETE FROM uploads WHERE id = ?1", [id])?;
    Ok(data)
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkRow {
    pub upload_id: String,
    pub idx: i64,
    /// The number of chunks the client announced with this chunk.
    pub chunks: i64,
    /// Names the chunk's bytes in the store (uploads/<upload_id>/<data_id>).
    pub data_id: String,
    /// The file name the part carried, if any.
    pub name: Option<String>,
    pub size: i64,
    pub md5: String,
    pub sha256: String,
    pub created_at: i64,
}

pub fn chunks(conn: &Connection, upload_id: &str) -> rusqlite::Result<Vec<ChunkRow>> {
    let mut st = conn.prepare(
        "SELECT upload_id, idx, chunks, data_id, name, size, md5, sha256, created_at
         FROM upload_chunks WHERE upload_id = ?1 ORDER BY idx",
    )?;
    let rows = st.query_map([upload_id], |r| {
        Ok(ChunkRow {
            upload_id: r.get(0)?,
            idx: r.get(1)?,
            chunks: r.get(2)?,
            data_id: r.get(3)?,
            name: r.get(4)?,
            size: r.get(5)?,
            md5: r.get(6)?,
            sha256: r.get(7)?,
            created_at: r.get(8)?,
        })
    })?;
    rows.collect()
}

/// Records a chunk, replacing one with the same index; returns the replaced chunk's data id.
pub fn put_chunk(conn: &Connection, c: &ChunkRow) -> rusqlite::Result<Option<String>> {
    let old: Option<String> = conn
        .query_row(
            "SELECT data_id FROM upload_chunks WHERE upload_id = ?1 AND idx = ?2",
            params![c.upload_id, c.idx],
            |r| r.get(0),
        )
        .optional()?;
    conn.execute(
        "INSERT OR REPLACE INTO upload_chunks(upload_id, idx, chunks, data_id, name, size, md5, sha256, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        params![c.upload_id, c.idx, c.chunks, c.data_id, c.name, c.size, c.md5, c.sha256, c.created_at],
    )?;
    Ok(old)
}

/// Forgets an upload's chunks (their files are removed by the caller after the commit).
pub fn delete_chunks(conn: &Connection, upload_id: &str) -> rusqlite::Result<()> {
    conn.execute("DELETE FROM upload_chunks WHERE upload_id = ?1", [upload_id])?;
    Ok(())
}

/// Every (upload id, chunk data id) the catalog knows, to find orphaned chunk files.
pub fn all_chunk_data(conn: &Connection) -> rusqlite::Result<Vec<(String, String)>> {
    let mut st = conn.prepare("SELECT upload_id, data_id FROM upload_chunks")?;
    let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    rows.collect()
}
