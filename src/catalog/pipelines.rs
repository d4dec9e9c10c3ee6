//! Pipelines: namespaces for object keys (and for the jobs that write into them).

use rusqlite::{params, Connection, OptionalExtension, Row};

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

const COLS: &str = "id, name, description, mode, default_object_timeout, created_at, updated_at";

fn from_row(r: &Row) -> rusqlite::Result<PipelineRow> {
    Ok(PipelineRow {
        id: r.get(0)?,
        name: r.get(1)?,
        description: r.get(2)?,
        mode: r.get(3)?,
        default_object_timeout: r.get(4)?,
        created_at: r.get(5)?,
        updated_at: r.get(6)?,
    })
}

pub fn get(conn: &Connection, id: &str) -> rusqlite::Result<Option<PipelineRow>> {
    conn.query_row(
        &format!("SELECT {COLS} FROM pipelines WHERE id = ?1"),
        [id],
        from_row,
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

/// Deletes the pipeline row; false when there was none. Fails (foreign key) while files
/// or jobs still name it.
pub fn delete(conn: &Connection, id: &str) -> rusqlite::Result<bool> {
    Ok(conn.execute("DELETE FROM pipelines WHERE id = ?1", [id])? == 1)
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum SortKey {
    #[default]
    CreatedAt,
    UpdatedAt,
    Name,
}

impl SortKey {
    pub fn parse(s: &str) -> Option<SortKey> {
        match s {
            "created_at" => Some(SortKey::CreatedAt),
            "updated_at" => Some(SortKey::UpdatedAt),
            "name" => Some(SortKey::Name),
            _ => None,
        }
    }
    fn column(self) -> &'static str {
        match self {
            SortKey::CreatedAt => "created_at",
            SortKey::UpdatedAt => "updated_at",
            SortKey::Name => "name",
        }
    }
}

/// One page of pipelines and how many there are.
pub fn list(
    conn: &Connection,
    sort: SortKey,
    ascending: bool,
    start: u64,
    limit: u64,
) -> rusqlite::Result<(Vec<PipelineRow>, u64)> {
    let total: i64 = conn.query_row("SELECT count(*) FROM pipelines", [], |r| r.get(0))?;
    let dir = if ascending { "ASC" } else { "DESC" };
    let mut st = conn.prepare(&format!(
        "SELECT {COLS} FROM pipelines ORDER BY {col} {dir}, id {dir} LIMIT ?1 OFFSET ?2",
        col = sort.column()
    ))?;
    let rows = st.query_map(
        params![
            i64::try_from(limit).unwrap_or(i64::MAX),
            i64::try_from(start).unwrap_or(i64::MAX)
        ],
        from_row,
    )?;
    Ok((rows.collect::<rusqlite::Result<_>>()?, total as u64))
}
