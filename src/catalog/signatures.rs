//! Single-use MediaHub signed URLs: a signature is recorded at its first use.

use rusqlite::{params, Connection};

/// Records the first use of `signature`; false when it was used before. Atomic: of
/// any number of concurrent first uses exactly one gets true (the primary key decides).
pub fn record_use(conn: &Connection, signature: &[u8], expires_at_secs: i64) -> rusqlite::Result<bool> {
    let n = conn.execute(
        "INSERT INTO used_signatures(signature, expires_at) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
        params![signature, expires_at_secs],
    )?;
    Ok(n == 1)
}

/// True when `signature` was used before (and not yet swept).
pub fn is_used(conn: &Connection, signature: &[u8]) -> rusqlite::Result<bool> {
    conn.query_row(
        "SELECT EXISTS(SELECT 1 FROM used_signatures WHERE signature = ?1)",
        [signature],
        |r| r.get(0),
    )
}

/// Forgets signatures that expired before `now_secs` (they are refused as expired anyway).
pub fn sweep(conn: &Connection, now_secs: i64) -> rusqlite::Result<usize> {
    conn.execute("DELETE FROM used_signatures WHERE expires_at <= ?1", [now_secs])
}
