//! Link signing keys: sealed secrets, active or retired. Rows are never deleted.

use rusqlite::{params, Connection, OptionalExtension, Row};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyState {
    /// Verifies links; the active key with the highest id also signs new ones.
    Active,
    /// Verifies nothing any more.
    Retired,
}

impl KeyState {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyState::Active => "active",
            KeyState::Retired => "retired",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRow {
    pub id: u32,
    pub secret_enc: Vec<u8>,
    pub state: KeyState,
    /// Milliseconds since the epoch.
    pub created_at: i64,
    pub retired_at: Option<i64>,
}

const COLS: &str = "id, secret_enc, state, created_at, retired_at";

fn from_row(r: &Row) -> rusqlite::Result<KeyRow> {
    let state: String = r.get(2)?;
    Ok(KeyRow {
        id: r.get(0)?,
        secret_enc: r.get(1)?,
        state: if state == "retired" {
            KeyState::Retired
        } else {
            KeyState::Active
        },
        created_at: r.get(3)?,
        retired_at: r.get(4)?,
    })
}

/// The id the next key gets: one more than any key ever made. Call it inside the
/// write transaction that inserts the key.
pub fn next_id(conn: &Connection) -> rusqlite::Result<u32> {
    let max: Option<u32> = conn.query_row("SELECT MAX(id) FROM signing_keys", [], |r| r.get(0))?;
    match max {
        None => Ok(1),
        Some(u32::MAX) => Err(rusqlite::Error::IntegralValueOutOfRange(
            0,
            i64::from(u32::MAX) + 1,
        )),
        Some(m) => Ok(m + 1),
    }
}

/// Inserts an active key.
pub fn insert(conn: &Connection, id: u32, secret_enc: &[u8], created_at: i64) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO signing_keys(id, secret_enc, state, created_at) VALUES (?1, ?2, 'active', ?3)",
        params![id, secret_enc, created_at],
    )?;
    Ok(())
}

pub fn get(conn: &Connection, id: u32) -> rusqlite::Result<Option<KeyRow>> {
    conn.query_row(
        &format!("SELECT {COLS} FROM signing_keys WHERE id = ?1"),
        [id],
        from_row,
    )
    .optional()
}

/// Every key, oldest first.
pub fn list(conn: &Connection) -> rusqlite::Result<Vec<KeyRow>> {
    let mut st = conn.prepare(&format!("SELECT {COLS} FROM signing_keys ORDER BY id"))?;
    let rows = st.query_map([], from_row)?;
    rows.collect()
}

/// The active keys, oldest first (the last one is current).
pub fn active(conn: &Connection) -> rusqlite::Result<Vec<KeyRow>> {
    let mut st = conn.prepare(&format!(
        "SELECT {COLS} FROM signing_keys WHERE state = 'active' ORDER BY id"
    ))?;
    let rows = st.query_map([], from_row)?;
    rows.collect()
}

/// Marks an active key retired; false when no active key has this id.
pub fn retire(conn: &Connection, id: u32, now_ms: i64) -> rusqlite::Result<bool> {
    let n = conn.execute(
        "UPDATE signing_keys SET state = 'retired', retired_at = ?2 WHERE id = ?1 AND state = 'active'",
        params![id, now_ms],
    )?;
    Ok(n == 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db() -> Connection {
        let c = Connection::open_in_memory().unwrap();
        super::super::migrations::run(&c).unwrap();
        c
    }

    #[test]
    fn ids_grow_and_are_never_reused() {
        let c = db();
        assert_eq!(next_id(&c).unwrap(), 1);
        insert(&c, 1, b"a", 10).unwrap();
        insert(&c, 2, b"b", 20).unwrap();
        assert!(retire(&c, 2, 30).unwrap());
        assert_eq!(next_id(&c).unwrap(), 3, "a retired key keeps its id");
        assert!(insert(&c, 2, b"c", 40).is_err());
    }

    #[test]
    fn retire_only_touches_active_keys() {
        let c = db();
        insert(&c, 1, b"a", 10).unwrap();
        insert(&c, 2, b"b", 20).unwrap();
        assert!(retire(&c, 1, 30).unwrap());
        assert!(!retire(&c, 1, 40).unwrap(), "already retired");
        assert!(!retire(&c, 9, 40).unwrap(), "no such key");
        let k = get(&c, 1).unwrap().unwrap();
        assert_eq!((k.state, k.retired_at), (KeyState::Retired, Some(30)));
        assert_eq!(
            active(&c).unwrap().iter().map(|k| k.id).collect::<Vec<_>>(),
            vec![2]
        );
        assert_eq!(list(&c).unwrap().len(), 2);
        assert!(get(&c, 9).unwrap().is_none());
    }

    #[test]
    fn the_largest_id_is_the_last() {
        let c = db();
        insert(&c, u32::MAX, b"a", 10).unwrap();
        assert_eq!(get(&c, u32::MAX).unwrap().unwrap().id, u32::MAX);
        assert!(next_id(&c).is_err());
    }
}
