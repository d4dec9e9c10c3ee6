//! Whole-catalog queries for backup, restore and verify: integrity, the snapshot,
//! blobs with the files that use them, reference counts, and files marked missing.

use std::path::Path;

use rusqlite::{params, Connection};

/// What `PRAGMA integrity_check` and `PRAGMA foreign_key_check` object to; empty when
/// the catalog is sound.
pub fn integrity_problems(conn: &Connection) -> rusqlite::Result<Vec<String>> {
    let mut out = Vec::new();
    let mut st = conn.prepare("PRAGMA integrity_check")?;
    for msg in st.query_map([], |r| r.get::<_, String>(0))? {
        let msg = msg?;
        if msg != "ok" {
            out.push(msg);
        }
    }
    let mut st = conn.prepare("PRAGMA foreign_key_check")?;
    let rows = st.query_map([], |r| {
        Ok(format!(
            "{} row {} refers to a missing {} row",
            r.get::<_, String>(0)?,
            r.get::<_, Option<i64>>(1)?.unwrap_or(0),
            r.get::<_, String>(2)?
        ))
    })?;
    for row in rows {
        out.push(row?);
    }
    Ok(out)
}

/// The schema version recorded in the catalog (`PRAGMA user_version`).
pub fn schema_version(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row("PRAGMA user_version", [], |r| r.get(0))
}

/// Writes a consistent copy of the whole catalog to `dest` (which must not exist):
/// `VACUUM INTO` reads everything inside one read transaction, so the copy is the
/// catalog as of one instant, however many writers commit meanwhile.
pub fn snapshot_into(conn: &Connection, dest: &Path) -> rusqlite::Result<()> {
    let dest = dest
        .to_str()
        .ok_or_else(|| rusqlite::Error::InvalidParameterName(format!("{} is not UTF-8", dest.display())))?;
    conn.execute("VACUUM INTO ?1", [dest])?;
    Ok(())
}

/// Prepares a fresh snapshot to be a backup: one self-contained file (no WAL), and
/// without uploads in progress, whose chunk files a backup does not carry. Returns how
/// many uploads were left out.
pub fn seal_snapshot(conn: &Connection) -> rusqlite::Result<usize> {
    conn.pragma_update(None, "journal_mode", "DELETE")?;
    conn.execute("DELETE FROM upload_chunks", [])?;
    conn.execute("DELETE FROM uploads WHERE status != 'COMPLETED'", [])
}

/// A file row, as far as its bytes are concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileRef {
    pub id: String,
    pub size: i64,
    pub sha256: String,
    pub md5: String,
    /// ms; 0 = not marked missing.
    pub missing_since: i64,
}

/// A blob row and the files that reference it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobUse {
    pub id: String,
    pub size: i64,
    pub md5: String,
    pub refs: i64,
    pub files: Vec<FileRef>,
}

impl BlobUse {
    /// True when every file using the blob is already marked missing.
    pub fn all_marked(&self) -> bool {
        !self.files.is_empty() && self.files.iter().all(|f| f.missing_since > 0)
    }
}

/// Up to `limit` blob rows with ids after `after` (in id order), with their files. Paged
/// so that checking a large store holds no read transaction (which would keep the WAL
/// from being checkpointed) for longer than one page.
pub fn blob_page(conn: &Connection, after: &str, limit: usize) -> rusqlite::Result<Vec<BlobUse>> {
    let mut st = conn.prepare(
        "SELECT b.id, b.size, b.md5, b.refs, f.id, f.size, f.sha256, f.md5, f.missing_since
         FROM (SELECT * FROM blobs WHERE id > ?1 ORDER BY id LIMIT ?2) b
         LEFT JOIN files f ON f.blob_id = b.id
         ORDER BY b.id, f.id",
    )?;
    let mut rows = st.query(params![after, limit as i64])?;
    let mut out: Vec<BlobUse> = Vec::new();
    while let Some(r) = rows.next()? {
        let id: String = r.get(0)?;
        if out.last().is_none_or(|b| b.id != id) {
            out.push(BlobUse {
                id,
                size: r.get(1)?,
                md5: r.get(2)?,
                refs: r.get(3)?,
                files: Vec::new(),
            });
        }
        if let (Some(fid), Some(last)) = (r.get::<_, Option<String>>(4)?, out.last_mut()) {
            last.files.push(FileRef {
                id: fid,
                size: r.get(5)?,
                sha256: r.get(6)?,
                md5: r.get(7)?,
                missing_since: r.get(8)?,
            });
        }
    }
    Ok(out)
}

/// The files that reference blob `blob_id` now.
pub fn blob_files(conn: &Connection, blob_id: &str) -> rusqlite::Result<Vec<FileRef>> {
    let mut st = conn
        .prepare("SELECT id, size, sha256, md5, missing_since FROM files WHERE blob_id = ?1 ORDER BY id")?;
    let rows = st.query_map([blob_id], |r| {
        Ok(FileRef {
            id: r.get(0)?,
            size: r.get(1)?,
            sha256: r.get(2)?,
            md5: r.get(3)?,
            missing_since: r.get(4)?,
        })
    })?;
    rows.collect()
}

/// A blob row whose `refs` disagrees with the number of files using it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefsMismatch {
    pub blob_id: String,
    pub recorded: i64,
    pub actual: i64,
}

pub fn refs_mismatches(conn: &Connection) -> rusqlite::Result<Vec<RefsMismatch>> {
    let mut st = conn.prepare(
        "SELECT b.id, b.refs, (SELECT count(*) FROM files f WHERE f.blob_id = b.id) AS n
         FROM blobs b WHERE b.refs != n ORDER BY b.id",
    )?;
    let rows = st.query_map([], |r| {
        Ok(RefsMismatch {
            blob_id: r.get(0)?,
            recorded: r.get(1)?,
            actual: r.get(2)?,
        })
    })?;
    rows.collect()
}

/// Sets `refs` to the number of files using the blob, where some file does (a blob row
/// no file uses goes with [`drop_unused_blob`]). Returns how many rows changed.
pub fn fix_refs(conn: &Connection) -> rusqlite::Result<usize> {
    conn.execute(
        "UPDATE blobs SET refs = (SELECT count(*) FROM files f WHERE f.blob_id = blobs.id)
         WHERE refs != (SELECT count(*) FROM files f WHERE f.blob_id = blobs.id)
           AND EXISTS (SELECT 1 FROM files f WHERE f.blob_id = blobs.id)",
        [],
    )
}

/// Deletes the row of blob `blob_id` if no file uses it; true when it did (the bytes
/// may then be removed, under the blob's lock).
pub fn drop_unused_blob(conn: &Connection, blob_id: &str) -> rusqlite::Result<bool> {
    let n = conn.execute(
        "DELETE FROM blobs WHERE id = ?1 AND NOT EXISTS (SELECT 1 FROM files WHERE blob_id = ?1)",
        [blob_id],
    )?;
    Ok(n == 1)
}

/// Marks every file of blob `blob_id` not marked yet as missing since `now_ms`;
/// returns how many.
pub fn mark_missing(conn: &Connection, blob_id: &str, now_ms: i64) -> rusqlite::Result<usize> {
    conn.execute(
        "UPDATE files SET missing_since = ?2 WHERE blob_id = ?1 AND missing_since = 0",
        params![blob_id, now_ms.max(1)],
    )
}

/// Clears the mark of every file of blob `blob_id` (its bytes are back and intact).
pub fn unmark_missing(conn: &Connection, blob_id: &str) -> rusqlite::Result<usize> {
    conn.execute(
        "UPDATE files SET missing_since = 0 WHERE blob_id = ?1 AND missing_since != 0",
        [blob_id],
    )
}

/// The size of every blob row together (what a checksum pass reads).
pub fn total_blob_bytes(conn: &Connection) -> rusqlite::Result<u64> {
    conn.query_row("SELECT ifnull(sum(size), 0) FROM blobs", [], |r| {
        r.get::<_, i64>(0)
    })
    .map(|n| n.max(0) as u64)
}

/// Number of file rows.
pub fn count_files(conn: &Connection) -> rusqlite::Result<u64> {
    conn.query_row("SELECT count(*) FROM files", [], |r| r.get::<_, i64>(0))
        .map(|n| n as u64)
}

/// Every upload id the catalog knows.
pub fn upload_ids(conn: &Connection) -> rusqlite::Result<Vec<String>> {
    let mut st = conn.prepare("SELECT id FROM uploads")?;
    let rows = st.query_map([], |r| r.get(0))?;
    rows.collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::files::{self, FileRow};

    fn file(id: u32, blob: &str, size: i64) -> FileRow {
        FileRow {
            id: format!("{id:024x}"),
            name: "n".into(),
            title: "n".into(),
            kind: "file".into(),
            subtype: None,
            mime_type: "application/octet-stream".into(),
            size,
            md5: "0".repeat(32),
            sha256: blob.into(),
            blob_id: blob.into(),
            autograph: false,
            object_key: format!("k{id}"),
            pipeline_id: None,
            job_id: None,
            app_id: None,
            created_at: 1,
            updated_at: 1,
            expires_at: 0,
            revoked_before: 0,
            missing_since: 0,
        }
    }

    fn catalog() -> Connection {
        let c = Connection::open_in_memory().unwrap();
        c.pragma_update(None, "foreign_keys", "ON").unwrap();
        super::super::migrations::run(&c).unwrap();
        c
    }

    #[test]
    fn pages_group_files_by_blob_and_refs_are_checked_and_fixed() {
        let c = catalog();
        let (a, b) = ("a".repeat(64), "b".repeat(64));
        files::insert(&c, &file(1, &a, 5)).unwrap();
        files::insert(&c, &file(2, &a, 5)).unwrap();
        files::insert(&c, &file(3, &b, 7)).unwrap();
        let page = blob_page(&c, "", 1).unwrap();
        assert_eq!(page.len(), 1);
        assert_eq!(
            (page[0].id.as_str(), page[0].files.len(), page[0].refs),
            (a.as_str(), 2, 2)
        );
        let page = blob_page(&c, &a, 10).unwrap();
        assert_eq!((page[0].id.as_str(), page[0].files.len()), (b.as_str(), 1));
        assert!(blob_page(&c, &b, 10).unwrap().is_empty());

        assert!(refs_mismatches(&c).unwrap().is_empty());
        c.execute_batch(&format!(
            "UPDATE blobs SET refs = 9 WHERE id = '{a}';
             INSERT INTO blobs(id, size, md5, refs, created_at) VALUES ('{}', 1, '', 1, 1);",
            "c".repeat(64)
        ))
        .unwrap();
        let m = refs_mismatches(&c).unwrap();
        assert_eq!(m.len(), 2);
        assert_eq!((m[0].recorded, m[0].actual), (9, 2));
        assert_eq!(fix_refs(&c).unwrap(), 1, "only blobs some file uses");
        assert!(!drop_unused_blob(&c, &a).unwrap());
        assert!(drop_unused_blob(&c, &"c".repeat(64)).unwrap());
        assert!(refs_mismatches(&c).unwrap().is_empty());
    }

    #[test]
    fn marking_missing_keeps_the_first_instant_and_unmarking_clears_it() {
        let c = catalog();
        let a = "a".repeat(64);
        files::insert(&c, &file(1, &a, 5)).unwrap();
        assert_eq!(mark_missing(&c, &a, 100).unwrap(), 1);
        assert_eq!(mark_missing(&c, &a, 200).unwrap(), 0);
        let f = files::get(&c, &format!("{:024x}", 1)).unwrap().unwrap();
        assert_eq!(f.missing_since, 100);
        assert!(f.is_missing());
        assert!(blob_page(&c, "", 10).unwrap()[0].all_marked());
        assert_eq!(unmark_missing(&c, &a).unwrap(), 1);
        assert_eq!(blob_files(&c, &a).unwrap()[0].missing_since, 0);
    }

    #[test]
    fn snapshot_is_a_sealed_copy_with_the_schema_version() {
        let d = tempfile::tempdir().unwrap();
        let live = Connection::open(d.path().join("live.sqlite3")).unwrap();
        live.pragma_update(None, "journal_mode", "WAL").unwrap();
        super::super::migrations::run(&live).unwrap();
        files::insert(&live, &file(1, &"a".repeat(64), 5)).unwrap();
        live.execute_batch(
            "INSERT INTO uploads(id, token_enc, status, file_id, created_at, updated_at)
             VALUES ('u1', x'00', 'UPLOADING', 'f', 1, 1), ('u2', x'00', 'COMPLETED', 'f', 1, 1)",
        )
        .unwrap();
        let dest = d.path().join("copy.sqlite3");
        snapshot_into(&live, &dest).unwrap();
        let copy = Connection::open(&dest).unwrap();
        assert_eq!(seal_snapshot(&copy).unwrap(), 1);
        assert_eq!(
            schema_version(&copy).unwrap(),
            super::super::migrations::LATEST as i64
        );
        assert!(integrity_problems(&copy).unwrap().is_empty());
        assert_eq!(count_files(&copy).unwrap(), 1);
        assert_eq!(upload_ids(&copy).unwrap(), ["u2"]);
        let mode: String = copy.query_row("PRAGMA journal_mode", [], |r| r.get(0)).unwrap();
        assert_eq!(mode, "delete");
    }
}
