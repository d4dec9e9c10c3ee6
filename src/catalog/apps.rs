//! Applications: client ids, encrypted secrets, scopes, enabled flag.

use rusqlite::{params, Connection, OptionalExtension, Row};

#[derive(Debug, Clone)]
pub struct AppRow {
    pub id: String,
    pub name: String,
    pub secret_enc: Vec<u8>,
    pub scopes: String,
    pub enabled: bool,
    pub created_at: i64,
    pub updated_at: i64,
}

fn from_row(r: &Row) -> rusqlite::Result<AppRow> {
    Ok(AppRow {
        id: r.get(0)?,
        name: r.get(1)?,
        secret_enc: r.get(2)?,
        scopes: r.get(3)?,
        enabled: r.get(4)?,
        created_at: r.get(5)?,
        updated_at: r.get(6)?,
    })
}

const COLS: &str = "id, name, secret_enc, scopes, enabled, created_at, updated_at";

pub fn insert(conn: &Connection, a: &AppRow) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO apps(id, name, secret_enc, scopes, enabled, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            a.id,
            a.name,
            a.secret_enc,
            a.scopes,
            a.enabled,
            a.created_at,
            a.updated_at
        ],
    )?;
    Ok(())
}

pub fn get(conn: &Connection, id: &str) -> rusqlite::Result<Option<AppRow>> {
    conn.query_row(&format!("SELECT {COLS} FROM apps WHERE id = ?1"), [id], from_row)
        .optional()
}

pub fn list(conn: &Connection) -> rusqlite::Result<Vec<AppRow>> {
    let mut st = conn.prepare(&format!("SELECT {COLS} FROM apps ORDER BY created_at, id"))?;
    let rows = st.query_map([], from_row)?;
    rows.collect()
}

/// Returns false when no such application exists.
pub fn set_enabled(conn: &Connection, id: &str, enabled: bool, now_ms: i64) -> rusqlite::Result<bool> {
    let n = conn.execute(
        "UPDATE apps SET enabled = ?2, updated_at = ?3 WHERE id = ?1",
        params![id, enabled, now_ms],
    )?;
    Ok(n == 1)
}
