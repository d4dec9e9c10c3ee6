//! Pipelines: namespaces for object keys. Uploads only look them up; their API comes later.

use rusqlite::{Connection, OptionalExtension};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PipelineRow {
    pub id: String,
    pub name: String,
    pub description: String,
    /// `permanent` or `temporary`.
    pub mode: String,
    /// Seconds a temporary pipeline keeps its objects; 0 = no default.
    pub default_object_timeout: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

pub fn get(conn: &Connection, id: &str) -> rusqlite::Result<Option<PipelineRow>> {
    conn.query_row(
        "SELECT id, name, description, mode, default_object_timeout, created_at, updated_at
         FROM pipelines WHERE id = ?1",
        [id],
        |r| {
            Ok(PipelineRow {
                id: r.get(0)?,
                name: r.get(1)?,
                description: r.get(2)?,
                mode: r.get(3)?,
                default_object_timeout: r.get(4)?,
                created_at: r.get(5)?,
                updated_at: r.get(6)?,
            })
        },
    )
    .optional()
}

pub fn insert(conn: &Connection, p: &PipelineRow) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO pipelines(id, name, description, mode, default_object_timeout, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        rusqlite::params![
            p.id,
            p.name,
            p.description,
            p.mode,
            p.default_object_timeout,
            p.created_at,
            p.updated_at
        ],
    )?;
    Ok(())
}
