//! The entries of archive files (`archive_entries`): written once with the file's row,
//! removed with it (`ON DELETE CASCADE`), read by the downloads endpoint and delivery.

use std::collections::HashMap;

use rusqlite::{params, Connection, OptionalExtension, Row};

use crate::archive::{Entry, Method};

const COLS: &str = "idx, path, name, size, compressed_size, method, data_offset, crc32, mime_type";

fn from_row(r: &Row) -> rusqlite::Result<Entry> {
    let method: String = r.get(5)?;
    let int = |i: usize| -> rusqlite::Result<u64> {
        let v: i64 = r.get(i)?;
        u64::try_from(v).map_err(|_| rusqlite::Error::IntegralValueOutOfRange(i, v))
    };
    Ok(Entry {
        idx: r.get(0)?,
        path: r.get(1)?,
        name: r.get(2)?,
        size: int(3)?,
        compressed_size: int(4)?,
        method: Method::parse(&method).ok_or_else(|| {
            rusqlite::Error::FromSqlConversionFailure(5, rusqlite::types::Type::Text, method.into())
        })?,
        offset: int(6)?,
        crc32: r.get(7)?,
        mime_type: r.get(8)?,
    })
}

fn i64_of(v: u64) -> rusqlite::Result<i64> {
    i64::try_from(v).map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))
}

/// Writes the entries of file `file_id` (inside the transaction that inserts the file).
pub fn insert(conn: &Connection, file_id: &str, entries: &[Entry]) -> rusqlite::Result<()> {
    let mut st = conn.prepare_cached(&format!(
        "INSERT INTO archive_entries(file_id, {COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"
    ))?;
    for e in entries {
        st.execute(params![
            file_id,
            e.idx,
            e.path,
            e.name,
            i64_of(e.size)?,
            i64_of(e.compressed_size)?,
            e.method.as_str(),
            i64_of(e.offset)?,
            e.crc32,
            e.mime_type
        ])?;
    }
    Ok(())
}

/// Every entry of file `file_id`, in archive order.
pub fn list(conn: &Connection, file_id: &str) -> rusqlite::Result<Vec<Entry>> {
    let mut st = conn.prepare_cached(&format!(
        "SELECT {COLS} FROM archive_entries WHERE file_id = ?1 ORDER BY idx"
    ))?;
    let rows = st.query_map([file_id], from_row)?;
    rows.collect()
}

/// The entries of several files at once, by file id (files without entries are absent).
pub fn list_many(conn: &Connection, file_ids: &[&str]) -> rusqlite::Result<HashMap<String, Vec<Entry>>> {
    let mut out = HashMap::new();
    for id in file_ids {
        let entries = list(conn, id)?;
        if !entries.is_empty() {
            out.insert(id.to_string(), entries);
        }
    }
    Ok(out)
}

/// The entry of file `file_id` whose display name is `name`.
pub fn by_name(conn: &Connection, file_id: &str, name: &str) -> rusqlite::Result<Option<Entry>> {
    conn.prepare_cached(&format!(
        "SELECT {COLS} FROM archive_entries WHERE file_id = ?1 AND name = ?2"
    ))?
    .query_row(params![file_id, name], from_row)
    .optional()
}
