//! Applications: creation with a fresh secret, and client credential checks.

use base64::Engine;
use rusqlite::Connection;
use subtle::ConstantTimeEq;

use super::scopes::Scopes;
use super::secrets::SecretBox;
use crate::catalog::apps::{self, AppRow};
use crate::ids;

/// A new application's credentials; the secret is shown once and never again.
#[derive(Debug, Clone)]
pub struct NewApp {
    pub client_id: String,
    pub client_secret: String,
    pub name: String,
    pub scopes: Scopes,
}

pub fn create(
    conn: &Connection,
    secrets: &SecretBox,
    name: &str,
    scopes: Scopes,
    now_ms: i64,
) -> rusqlite::Result<NewApp> {
    let id = ids::new_id(now_ms / 1000);
    let mut raw = [0u8; 32];
    ids::random_bytes(&mut raw);
    let secret = base64::engine::general_purpose::STANDARD.encode(raw);
    apps::insert(
        conn,
        &AppRow {
            id: id.clone(),
            name: name.to_string(),
            secret_enc: secrets.seal(&id, secret.as_bytes()),
            scopes: scopes.to_string(),
            enabled: true,
            created_at: now_ms,
            updated_at: now_ms,
        },
    )?;
    Ok(NewApp {
        client_id: id,
        client_secret: secret,
        name: name.to_string(),
        scopes,
    })
}

/// Why client credentials were refused.
#[derive(Debug, PartialEq, Eq)]
pub enum CredentialError {
    UnknownClient,
    WrongSecret,
    Disabled,
}

/// The application's secret as stored (the base64 text handed out).
pub fn secret_of(secrets: &SecretBox, app: &AppRow) -> Option<Vec<u8>> {
    secrets.open(&app.id, &app.secret_enc)
}

/// Checks a client id and secret; compares the secret in constant time.
pub fn verify_client(
    conn: &Connection,
    secrets: &SecretBox,
    client_id: &str,
    client_secret: &str,
) -> Result<Result<AppRow, CredentialError>, rusqlite::Error> {
    if !ids::is_id(client_id) {
        return Ok(Err(CredentialError::UnknownClient));
    }
    let Some(app) = apps::get(conn, client_id)? else {
        return Ok(Err(CredentialError::UnknownClient));
    };
    let Some(stored) = secret_of(secrets, &app) else {
        return Ok(Err(CredentialError::WrongSecret));
    };
    if !bool::from(stored.ct_eq(client_secret.as_bytes())) {
        return Ok(Err(CredentialError::WrongSecret));
    }
    if !app.enabled {
        return Ok(Err(CredentialError::Disabled));
    }
    Ok(Ok(app))
}

pub fn app_scopes(app: &AppRow) -> Scopes {
    // Rows are written from a Scopes value; an unreadable one grants nothing.
    Scopes::parse(&app.scopes).unwrap_or_default()
}

/// On the very first start of a data directory: one application with every scope.
/// Returns `None` on every later start (the fact is recorded in the same transaction).
pub fn bootstrap(
    conn: &mut Connection,
    secrets: &SecretBox,
    now_ms: i64,
) -> rusqlite::Result<Option<NewApp>> {
    crate::catalog::write_tx(conn, |tx| {
        if !crate::catalog::meta::set_if_absent(tx, "bootstrapped_at", &now_ms.to_string())? {
            return Ok(None);
        }
        create(tx, secrets, "default", Scopes::all(), now_ms).map(Some)
    })
}
