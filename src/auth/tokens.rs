//! Issuing OAuth2 access tokens: 256 random bits, stored only as SHA-256.

use base64::Engine;
use rusqlite::Connection;
use sha2::{Digest, Sha256};

use super::scopes::Scopes;
use crate::catalog::tokens;
use crate::ids;

pub fn hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

/// Creates a token for `app_id` valid for `ttl_secs`; returns the token text.
pub fn issue(
    conn: &Connection,
    app_id: &str,
    scopes: Scopes,
    now_ms: i64,
    ttl_secs: u64,
) -> rusqlite::Result<String> {
    let mut raw = [0u8; 32];
    ids::random_bytes(&mut raw);
    let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw);
    let expires_at = now_ms + (ttl_secs as i64) * 1000;
    tokens::insert(
        conn,
        &hash(&token),
        app_id,
        &scopes.to_string(),
        now_ms,
        expires_at,
    )?;
    Ok(token)
}
