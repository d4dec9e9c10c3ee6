//! The console's admin password: argon2id (PHC string) in the catalog's meta table.

use argon2::{Argon2, PasswordHasher, PasswordVerifier};
use rusqlite::Connection;

use crate::catalog::meta;
use crate::ids;

const KEY: &str = "admin_password";
pub const MIN_LEN: usize = 10;

pub fn set(conn: &Connection, password: &str) -> Result<(), String> {
    if password.chars().count() < MIN_LEN {
        return Err(format!("the password must have at least {MIN_LEN} characters"));
    }
    let mut salt = [0u8; 16];
    ids::random_bytes(&mut salt);
    let phc = Argon2::default()
        .hash_password_with_salt(password.as_bytes(), &salt)
        .map_err(|e| e.to_string())?
        .to_string();
    meta::set(conn, KEY, &phc).map_err(|e| e.to_string())
}

pub fn is_set(conn: &Connection) -> rusqlite::Result<bool> {
    Ok(meta::get(conn, KEY)?.is_some())
}

/// True when `password` matches; false when none is set.
pub fn verify(conn: &Connection, password: &str) -> rusqlite::Result<bool> {
    let Some(phc) = meta::get(conn, KEY)? else {
        return Ok(false);
    };
    Ok(Argon2::default()
        .verify_password(password.as_bytes(), phc.as_str())
        .is_ok())
}
