//! OAuth2 access tokens, stored only as their SHA-256.

use rusqlite::{params, Connection, OptionalExtension};

#[derive(Debug, Clone)]
pub struct TokenRow {
    pub app_id: String,
    pub scopes: String,
    pub expires_at: i64,
    pub app_enabled: bool,
}

pub fn insert(
    conn: &Connection,
    hash: &[u8],
    app_id: &str,
    scopes: &str,
    created_at: i64,
    expires_at: i64,
) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO tokens(hash, app_id, scopes, created_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![hash, app_id, scopes, created_at, expires_at],
    )?;
    Ok(())
}

/// The token with this hash, with its application's enabled flag.
pub fn lookup(conn: &Connection, hash: &[u8]) -> rusqlite::Result<Option<TokenRow>> {
    conn.query_row(
        "SELECT t.app_id, t.scopes, t.expires_at, a.enabled
         FROM tokens t JOIN apps a ON a.id = t.app_id WHERE t.hash = ?1",
        [hash],
        |r| {
            Ok(TokenRow {
                app_id: r.get(0)?,
                scopes: r.get(1)?,
                expires_at: r.get(2)?,
                app_enabled: r.get(3)?,
            })
        },
    )
    .optional()
}

/// Deletes tokens that expired before `now_ms`; returns how many.
pub fn sweep_expired(conn: &Connection, now_ms: i64) -> rusqlite::Result<usize> {
    conn.execute("DELETE FROM tokens WHERE expires_at < ?1", [now_ms])
}

/// How many tokens are still valid at `now_ms`.
pub fn count_active(conn: &Connection, now_ms: i64) -> rusqlite::Result<u64> {
    let n: i64 = conn.query_row(
        "SELECT count(*) FROM tokens WHERE expires_at > ?1",
        [now_ms],
        |r| r.get(0),
    )?;
    Ok(n.max(0) as u64)
}
