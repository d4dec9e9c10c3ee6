//! The files table: one row per stored file, pointing at a content-addressed blob.
//!
//! Readers (downloads, links) go through [`get`] and [`by_key`]; rows are written only by
//! the upload path and removed only by [`delete`], both inside a write transaction that
//! also keeps `blobs.refs` right.

use rusqlite::{params, Connection, OptionalExtension, Row};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileRow {
    pub id: String,
    /// The display name as given (UTF-8); never part of a filesystem path.
    pub name: String,
    pub title: String,
    /// `file` or `archive`.
    pub kind: String,
    pub subtype: Option<String>,
    pub mime_type: String,
    pub size: i64,
    pub md5: String,
    pub sha256: String,
    pub blob_id: String,
    pub autograph: bool,
    pub object_key: String,
    pub pipeline_id: Option<String>,
    pub job_id: Option<String>,
    pub app_id: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    /// Milliseconds; 0 = never.
    pub expires_at: i64,
    /// Links issued before this instant (ms) are dead; 0 = none revoked.
    pub revoked_before: i64,
    /// When `filegate verify --repair` found the blob missing or damaged (ms); 0 = intact.
    pub missing_since: i64,
}

impl FileRow {
    /// True once `expires_at` has passed: the file is gone for readers even before the
    /// sweep removes it.
    pub fn is_expired(&self, now_ms: i64) -> bool {
        self.expires_at > 0 && self.expires_at <= now_ms
    }

    /// True when the bytes are known to be gone: the row stays visible (with
    /// `"missing": true`), but there is nothing to deliver (a download answers 410).
    pub fn is_missing(&self) -> bool {
        self.missing_since > 0
    }
}

const COLS: &str = "id, name, title, type, subtype, mime_type, size, md5, sha256, blob_id, autograph, \
                    object_key, pipeline_id, job_id, app_id, created_at, updated_at, expires_at, \
                    revoked_before, missing_since";

fn from_row(r: &Row) -> rusqlite::Result<FileRow> {
    Ok(FileRow {
        id: r.get(0)?,
        name: r.get(1)?,
        title: r.get(2)?,
        kind: r.get(3)?,
        subtype: r.get(4)?,
        mime_type: r.get(5)?,
        size: r.get(6)?,
        md5: r.get(7)?,
        sha256: r.get(8)?,
        blob_id: r.get(9)?,
        autograph: r.get(10)?,
        object_key: r.get(11)?,
        pipeline_id: r.get(12)?,
        job_id: r.get(13)?,
        app_id: r.get(14)?,
        created_at: r.get(15)?,
        updated_at: r.get(16)?,
        expires_at: r.get(17)?,
        revoked_before: r.get(18)?,
        missing_since: r.get(19)?,
    })
}

pub fn get(conn: &Connection, id: &str) -> rusqlite::Result<Option<FileRow>> {
    conn.query_row(&format!("SELECT {COLS} FROM files WHERE id = ?1"), [id], from_row)
        .optional()
}

/// The file stored under `object_key` in `pipeline_id` (or among files without a pipeline).
pub fn by_key(
    conn: &Connection,
    pipeline_id: Option<&str>,
    object_key: &str,
) -> rusqlite::Result<Option<FileRow>> {
    conn.query_row(
        &format!(
            "SELECT {COLS} FROM files WHERE ifnull(pipeline_id, '') = ifnull(?1, '') AND object_key = ?2"
        ),
        params![pipeline_id, object_key],
        from_row,
    )
    .optional()
}

/// Inserts the row and takes a reference on its blob (creating the blob row if needed).
/// Fails with a constraint error when `(pipeline_id, object_key)` is taken.
pub fn insert(conn: &Connection, f: &FileRow) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO blobs(id, size, md5, refs, created_at) VALUES (?1, ?2, ?3, 1, ?4)
         ON CONFLICT(id) DO UPDATE SET refs = refs + 1",
        params![f.blob_id, f.size, f.md5, f.created_at],
    )?;
    conn.execute(
        &format!("INSERT INTO files({COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20)"),
        params![
            f.id,
            f.name,
            f.title,
            f.kind,
            f.subtype,
            f.mime_type,
            f.size,
            f.md5,
            f.sha256,
            f.blob_id,
            f.autograph,
            f.object_key,
            f.pipeline_id,
            f.job_id,
            f.app_id,
            f.created_at,
            f.updated_at,
            f.expires_at,
            f.revoked_before,
            f.missing_since
        ],
    )?;
    Ok(())
}

/// True when `e` is the unique `(pipeline_id, object_key)` index refusing a row.
pub fn is_key_conflict(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _)
        if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
            || f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY)
}

/// What deleting a file left behind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deleted {
    pub row: FileRow,
    /// True when no file references the blob any more: its bytes may be removed once
    /// the transaction has committed.
    pub blob_unused: bool,
}

/// Deletes the row and drops its blob reference; the blob row goes with its last reference.
pub fn delete(conn: &Connection, id: &str) -> rusqlite::Result<Option<Deleted>> {
    let Some(row) = get(conn, id)? else {
        return Ok(None);
    };
    conn.execute("DELETE FROM files WHERE id = ?1", [id])?;
    conn.execute("UPDATE blobs SET refs = refs - 1 WHERE id = ?1", [&row.blob_id])?;
    let n = conn.execute("DELETE FROM blobs WHERE id = ?1 AND refs <= 0", [&row.blob_id])?;
    Ok(Some(Deleted {
        row,
        blob_unused: n == 1,
    }))
}

/// True when a blob row exists (some file references it).
pub fn blob_in_use(conn: &Connection, blob_id: &str) -> rusqlite::Result<bool> {
    conn.query_row("SELECT 1 FROM blobs WHERE id = ?1", [blob_id], |_| Ok(()))
        .optional()
        .map(|o| o.is_some())
}

/// Filters and order of a file listing.
#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    pub kind: Option<String>,
    pub pipeline_id: Option<String>,
    pub job_id: Option<String>,
    /// Case-insensitive substring of the name or the object key (the console's search).
    pub search: Option<String>,
    pub sort: SortKey,
    /// true = ascending.
    pub ascending: bool,
    pub start: u64,
    pub limit: u64,
    /// Files that expired at or before this instant are left out.
    pub now_ms: i64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum SortKey {
    #[default]
    CreatedAt,
    UpdatedAt,
    Name,
    Size,
    ExpiresAt,
}

impl SortKey {
    pub fn parse(s: &str) -> Option<SortKey> {
        Some(match s {
            "created_at" => SortKey::CreatedAt,
            "updated_at" => SortKey::UpdatedAt,
            "name" => SortKey::Name,
            "size" => SortKey::Size,
            "expires_at" => SortKey::ExpiresAt,
            _ => return None,
        })
    }
    fn column(self) -> &'static str {
        match self {
            SortKey::CreatedAt => "created_at",
            SortKey::UpdatedAt => "updated_at",
            SortKey::Name => "name",
            SortKey::Size => "size",
            SortKey::ExpiresAt => "expires_at",
        }
    }
}

/// One page of files and the total number matching the filters.
pub fn list(conn: &Connection, q: &ListQuery) -> rusqlite::Result<(Vec<FileRow>, u64)> {
    let mut cond = vec!["(expires_at = 0 OR expires_at > :now)"];
    if q.kind.is_some() {
        cond.push("type = :kind");
    }
    if q.pipeline_id.is_some() {
        cond.push("pipeline_id = :pipeline");
    }
    if q.job_id.is_some() {
        cond.push("job_id = :job");
    }
    let search = q.search.as_deref().map(like_pattern);
    if search.is_some() {
        cond.push("(name LIKE :search ESCAPE '\\' OR object_key LIKE :search ESCAPE '\\')");
    }
    let filter = cond.join(" AND ");
    let mut named: Vec<(&str, &dyn rusqlite::ToSql)> = vec![(":now", &q.now_ms)];
    if let Some(k) = &q.kind {
        named.push((":kind", k));
    }
    if let Some(p) = &q.pipeline_id {
        named.push((":pipeline", p));
    }
    if let Some(j) = &q.job_id {
        named.push((":job", j));
    }
    if let Some(p) = &search {
        named.push((":search", p));
    }
    let window = super::Window {
        column: q.sort.column(),
        ascending: q.ascending,
        start: q.start,
        limit: q.limit,
    };
    super::page(conn, "files", COLS, &filter, &named, window, from_row)
}

/// `%text%` for `LIKE … ESCAPE '\'`, with the wildcards of `text` taken literally.
fn like_pattern(text: &str) -> String {
    let mut p = String::with_capacity(text.len() + 2);
    p.push('%');
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            p.push('\\');
        }
        p.push(c);
    }
    p.push('%');
    p
}

/// How many files the catalog holds and the bytes their (shared) blobs take on disk.
pub fn totals(conn: &Connection) -> rusqlite::Result<(u64, u64)> {
    let files: i64 = conn.query_row("SELECT count(*) FROM files", [], |r| r.get(0))?;
    let bytes: i64 = conn.query_row("SELECT coalesce(sum(size), 0) FROM blobs", [], |r| r.get(0))?;
    Ok((files.max(0) as u64, bytes.max(0) as u64))
}

/// How many files of `pipeline_id` are visible at `now_ms` (not expired).
pub fn count_visible_in_pipeline(conn: &Connection, pipeline_id: &str, now_ms: i64) -> rusqlite::Result<u64> {
    let n: i64 = conn.query_row(
        "SELECT count(*) FROM files
         WHERE ifnull(pipeline_id, '') = ?1 AND (expires_at = 0 OR expires_at > ?2)",
        params![pipeline_id, now_ms],
        |r| r.get(0),
    )?;
    Ok(n as u64)
}

/// Ids of files of `pipeline_id`, at most `max`: all of them, or with `expired_at =
/// Some(now)` only those expired at `now`.
pub fn ids_in_pipeline(
    conn: &Connection,
    pipeline_id: &str,
    expired_at: Option<i64>,
    max: usize,
) -> rusqlite::Result<Vec<String>> {
    let mut st = conn.prepare(
        "SELECT id FROM files WHERE ifnull(pipeline_id, '') = ?1
         AND (?2 IS NULL OR (expires_at > 0 AND expires_at <= ?2)) LIMIT ?3",
    )?;
    let rows = st.query_map(params![pipeline_id, expired_at, max as i64], |r| r.get(0))?;
    rows.collect()
}

/// The smallest object key `>= from` in the pipeline: if any key starts with `from`, this
/// one does (one index seek).
pub fn first_key_from(conn: &Connection, pipeline_id: &str, from: &str) -> rusqlite::Result<Option<String>> {
    conn.query_row(
        "SELECT object_key FROM files WHERE ifnull(pipeline_id, '') = ?1 AND object_key >= ?2
         ORDER BY object_key LIMIT 1",
        params![pipeline_id, from],
        |r| r.get(0),
    )
    .optional()
}

/// The files among `ids` that exist.
pub fn get_many(conn: &Connection, ids: &[String]) -> rusqlite::Result<Vec<FileRow>> {
    let ids = serde_json::to_string(ids).unwrap_or_else(|_| "[]".into());
    let mut st = conn.prepare(&format!(
        "SELECT {COLS} FROM files WHERE id IN (SELECT value FROM json_each(?1))"
    ))?;
    let rows = st.query_map([ids], from_row)?;
    rows.collect()
}

/// Every file belonging to one of `job_ids`.
pub fn of_jobs(conn: &Connection, job_ids: &[String]) -> rusqlite::Result<Vec<FileRow>> {
    let ids = serde_json::to_string(job_ids).unwrap_or_else(|_| "[]".into());
    let mut st = conn.prepare(&format!(
        "SELECT {COLS} FROM files WHERE job_id IN (SELECT value FROM json_each(?1))"
    ))?;
    let rows = st.query_map([ids], from_row)?;
    rows.collect()
}

/// Ids of files whose `expires_at` has passed, oldest first, at most `max`.
pub fn expired(conn: &Connection, now_ms: i64, max: usize) -> rusqlite::Result<Vec<String>> {
    let mut st = conn.prepare(
        "SELECT id FROM files WHERE expires_at > 0 AND expires_at <= ?1 ORDER BY expires_at LIMIT ?2",
    )?;
    let rows = st.query_map(params![now_ms, max as i64], |r| r.get(0))?;
    rows.collect()
}

/// Every blob id the catalog references (for consistency checks).
pub fn blob_ids(conn: &Connection) -> rusqlite::Result<Vec<String>> {
    let mut st = conn.prepare("SELECT id FROM blobs ORDER BY id")?;
    let rows = st.query_map([], |r| r.get(0))?;
    rows.collect()
}

/// Kills every link of file `id` issued before `before_ms`; false when no such file.
pub fn revoke(conn: &Connection, id: &str, before_ms: i64) -> rusqlite::Result<bool> {
    let n = conn.execute(
        "UPDATE files SET revoked_before = max(revoked_before, ?2), updated_at = ?2 WHERE id = ?1",
        params![id, before_ms],
    )?;
    Ok(n == 1)
}
