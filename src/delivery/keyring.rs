//! The live link-signing keys: created, rotated and retired in the catalog, held in
//! memory as a [`KeyRing`], and reloaded so that a running server follows the CLI.
//!
//! Secrets are 32 random bytes, stored sealed with the data directory's `secret.key`
//! ([`SecretBox`], bound to `signing-key:<id>`), like application secrets: a copy of
//! the catalog alone (a backup, a support bundle) is not enough to forge links.
//!
//! How a running server picks up `filegate keys rotate` / `retire` (which write the
//! catalog directly, from another process):
//! - it reloads the active keys every [`RELOAD_EVERY_SECS`] seconds (one small query
//!   and a few decryptions), so a retired key stops verifying within
//!   `RELOAD_EVERY_SECS` seconds plus one reload's time, and a new key becomes the
//!   signing key within the same bound;
//! - when a link names a key *newer* than the newest it holds (a link signed by
//!   another process right after a rotation), it reloads at once and verifies again,
//!   at most once per [`MISS_RELOAD_GAP_MS`]: forged links naming random key ids
//!   cannot turn into a flood of catalog reads. Older unknown ids (retired keys) never
//!   trigger a reload: they are refused from memory.
//!
//! Until it reloads, a server keeps signing with its previous current key, which is
//! still active, so links it hands out stay valid.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{RwLock, RwLockReadGuard};

use rusqlite::Connection;

use crate::auth::secrets::SecretBox;
use crate::catalog::{self, keys, Catalog};
use crate::error::{ApiError, StartupError};
use crate::ids;
use crate::links::{self, KeyRing, LinkClaims, LinkError, SignError, SigningKey, VerifiedLink, SECRET_LEN};

/// A running server re-reads the active keys this often.
pub const RELOAD_EVERY_SECS: u64 = 10;
/// Least time between two reloads caused by links naming an unknown, newer key.
pub const MISS_RELOAD_GAP_MS: i64 = 1000;

fn context(id: u32) -> String {
    format!("signing-key:{id}")
}

/// The ring of every active key that decrypts, and the ids of active keys that do not
/// (a `secret.key` that is not the one they were sealed with).
pub fn load(conn: &Connection, secrets: &SecretBox) -> rusqlite::Result<(KeyRing, Vec<u32>)> {
    let mut unreadable = Vec::new();
    let mut ring = Vec::new();
    for row in keys::active(conn)? {
        match secrets.open(&context(row.id), &row.secret_enc) {
            Some(secret) => ring.push(SigningKey::new(row.id, &secret)),
            None => unreadable.push(row.id),
        }
    }
    Ok((KeyRing::new(ring), unreadable))
}

/// Creates a new active key, which becomes current; returns its id.
pub fn create(conn: &mut Connection, secrets: &SecretBox, now_ms: i64) -> rusqlite::Result<u32> {
    catalog::write_tx(conn, |tx| insert_new(tx, secrets, now_ms))
}

fn insert_new(tx: &Connection, secrets: &SecretBox, now_ms: i64) -> rusqlite::Result<u32> {
    let id = keys::next_id(tx)?;
    let mut secret = [0u8; SECRET_LEN];
    ids::random_bytes(&mut secret);
    keys::insert(tx, id, &secrets.seal(&context(id), &secret), now_ms)?;
    Ok(id)
}

/// Creates the first key when there is no active one; returns its id if it did.
pub fn ensure_current(
    conn: &mut Connection,
    secrets: &SecretBox,
    now_ms: i64,
) -> rusqlite::Result<Option<u32>> {
    if !keys::active(conn)?.is_empty() {
        return Ok(None);
    }
    catalog::write_tx(conn, |tx| {
        if keys::active(tx)?.is_empty() {
            insert_new(tx, secrets, now_ms).map(Some)
        } else {
            Ok(None)
        }
    })
}

/// What `retire` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retired {
    /// Retired; when it was the current key, a new key was created in the same
    /// transaction (its id here), so that there is always a key to sign with.
    Done {
        replaced_by: Option<u32>,
    },
    AlreadyRetired,
    NotFound,
}

/// Retires key `id`: links signed with it stop working.
pub fn retire(conn: &mut Connection, secrets: &SecretBox, id: u32, now_ms: i64) -> rusqlite::Result<Retired> {
    catalog::write_tx(conn, |tx| {
        let Some(row) = keys::get(tx, id)? else {
            return Ok(Retired::NotFound);
        };
        if row.state == keys::KeyState::Retired {
            return Ok(Retired::AlreadyRetired);
        }
        let was_current = keys::active(tx)?.last().map(|k| k.id) == Some(id);
        keys::retire(tx, id, now_ms)?;
        let replaced_by = if was_current {
            Some(insert_new(tx, secrets, now_ms)?)
        } else {
            None
        };
        Ok(Retired::Done { replaced_by })
    })
}

/// The keys a process signs and verifies with, kept in step with the catalog.
pub struct LiveKeys {
    catalog: Catalog,
    secrets: SecretBox,
    ring: RwLock<KeyRing>,
    /// When the ring was last loaded (ms), for the miss-reload rate limit.
    loaded_at_ms: AtomicI64,
    unreadable: RwLock<Vec<u32>>,
}

impl LiveKeys {
    /// Loads the keys, creating the first one on the first start of a data directory.
    pub fn open(catalog: &Catalog, secrets: &SecretBox, now_ms: i64) -> Result<LiveKeys, StartupError> {
        let mut conn = catalog.conn()?;
        if let Some(id) = ensure_current(&mut conn, secrets, now_ms)? {
            tracing::info!(key_id = id, "created the first link signing key");
        }
        let (ring, unreadable) = load(&conn, secrets)?;
        warn_unreadable(&unreadable);
        Ok(LiveKeys {
            catalog: catalog.clone(),
            secrets: secrets.clone(),
            ring: RwLock::new(ring),
            loaded_at_ms: AtomicI64::new(now_ms),
            unreadable: RwLock::new(unreadable),
        })
    }

    /// The ring as loaded last (a read lock: hold it only for a verification).
    pub fn ring(&self) -> RwLockReadGuard<'_, KeyRing> {
        self.ring.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Active keys whose secret did not decrypt at the last load.
    pub fn unreadable(&self) -> Vec<u32> {
        self.unreadable.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Signs with the current key.
    pub fn sign(&self, claims: &LinkClaims, name: &str) -> Result<String, SignError> {
        let ring = self.ring();
        links::sign(claims, name, ring.current().ok_or(SignError::NoKey)?)
    }

    /// Verifies from memory only (the hot path; never waits for the catalog).
    pub fn verify_cached(&self, path_and_query: &str, now_ms: i64) -> Result<VerifiedLink, LinkError> {
        links::verify(path_and_query, &self.ring(), now_ms.div_euclid(1000))
    }

    /// Verifies; when the link names a key newer than any held, reloads once (rate
    /// limited) and tries again.
    pub async fn verify(&self, path_and_query: &str, now_ms: i64) -> Result<VerifiedLink, LinkError> {
        match self.verify_cached(path_and_query, now_ms) {
            Err(LinkError::UnknownKey(id)) if self.claim_miss_reload(id, now_ms) => {
                if let Err(e) = self.reload(now_ms).await {
                    tracing::warn!(error = %e, "reloading signing keys failed");
                    return Err(LinkError::UnknownKey(id));
                }
                self.verify_cached(path_and_query, now_ms)
            }
            other => other,
        }
    }

    /// True when a link under unknown key `id` should cause a reload now; claims the slot.
    fn claim_miss_reload(&self, id: u32, now_ms: i64) -> bool {
        let newer = self.ring().current().is_none_or(|k| id > k.id());
        if !newer {
            return false;
        }
        let last = self.loaded_at_ms.load(Ordering::Acquire);
        now_ms.saturating_sub(last) >= MISS_RELOAD_GAP_MS
            && self
                .loaded_at_ms
                .compare_exchange(last, now_ms, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
    }

    /// Re-reads the active keys from the catalog (off the async workers).
    pub async fn reload(&self, now_ms: i64) -> Result<(), ApiError> {
        let secrets = self.secrets.clone();
        let loaded = self.catalog.call(move |c| Ok(load(c, &secrets)?)).await?;
        self.install(loaded, now_ms);
        Ok(())
    }

    /// [`LiveKeys::reload`] for code that may block (CLI, tests).
    pub fn reload_blocking(&self, now_ms: i64) -> Result<(), ApiError> {
        let conn = self.catalog.conn()?;
        let loaded = load(&conn, &self.secrets)?;
        self.install(loaded, now_ms);
        Ok(())
    }

    fn install(&self, (ring, unreadable): (KeyRing, Vec<u32>), now_ms: i64) {
        warn_unreadable(&unreadable);
        *self.ring.write().unwrap_or_else(|e| e.into_inner()) = ring;
        *self.unreadable.write().unwrap_or_else(|e| e.into_inner()) = unreadable;
        self.loaded_at_ms.fetch_max(now_ms, Ordering::AcqRel);
    }
}

fn warn_unreadable(ids: &[u32]) {
    for id in ids {
        tracing::error!(
            key_id = id,
            "signing key does not decrypt with secret.key; its links fail (retire it: filegate keys retire {id})"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW_MS: i64 = 1_767_225_600_000;

    struct Dir {
        _tmp: tempfile::TempDir,
        catalog: Catalog,
        secrets: SecretBox,
    }

    fn dir() -> Dir {
        let tmp = tempfile::tempdir().unwrap();
        let catalog = Catalog::open(tmp.path()).unwrap();
        let secrets = SecretBox::load_or_create(tmp.path()).unwrap();
        Dir {
            _tmp: tmp,
            catalog,
            secrets,
        }
    }

    fn claims() -> LinkClaims {
        LinkClaims::new("54820cec18bac397e161aebc", NOW_MS, NOW_MS / 1000 + 3600)
    }

    /// A link signed by key `id` as another process (the CLI) would.
    fn signed_by(d: &Dir, id: u32) -> String {
        let conn = d.catalog.conn().unwrap();
        let (ring, _) = load(&conn, &d.secrets).unwrap();
        links::sign(&claims(), "f.bin", ring.get(id).unwrap()).unwrap()
    }

    #[test]
    fn the_first_key_is_created_once() {
        let d = dir();
        let a = LiveKeys::open(&d.catalog, &d.secrets, NOW_MS).unwrap();
        assert_eq!(a.ring().ids().collect::<Vec<_>>(), vec![1]);
        let b = LiveKeys::open(&d.catalog, &d.secrets, NOW_MS).unwrap();
        assert_eq!(b.ring().ids().collect::<Vec<_>>(), vec![1]);
        assert!(b.unreadable().is_empty());
        let link = a.sign(&claims(), "f.bin").unwrap();
        assert_eq!(b.verify_cached(&link, NOW_MS).unwrap().key_id, 1);
    }

    #[test]
    fn secrets_are_sealed_and_bound_to_their_id() {
        let d = dir();
        let _k = LiveKeys::open(&d.catalog, &d.secrets, NOW_MS).unwrap();
        let mut conn = d.catalog.conn().unwrap();
        create(&mut conn, &d.secrets, NOW_MS).unwrap();
        let rows = keys::list(&conn).unwrap();
        assert_eq!(rows.len(), 2);
        for r in &rows {
            assert_eq!(r.secret_enc.len(), 12 + SECRET_LEN + 16, "nonce, ciphertext, tag");
            assert!(d.secrets.open(&context(r.id), &r.secret_enc).is_some());
        }
        assert!(d.secrets.open(&context(2), &rows[0].secret_enc).is_none());
        // Swapping sealed secrets between rows makes both unreadable, not swapped.
        conn.execute(
            "UPDATE signing_keys SET secret_enc = ?1 WHERE id = 2",
            [&rows[0].secret_enc],
        )
        .unwrap();
        let (ring, unreadable) = load(&conn, &d.secrets).unwrap();
        assert_eq!(unreadable, vec![2]);
        assert_eq!(ring.ids().collect::<Vec<_>>(), vec![1]);
    }

    #[test]
    fn another_secret_key_file_reports_every_key_unreadable() {
        let d = dir();
        LiveKeys::open(&d.catalog, &d.secrets, NOW_MS).unwrap();
        let other = tempfile::tempdir().unwrap();
        let wrong = SecretBox::load_or_create(other.path()).unwrap();
        let k = LiveKeys::open(&d.catalog, &wrong, NOW_MS).unwrap();
        assert_eq!(k.unreadable(), vec![1]);
        assert!(k.ring().is_empty());
        assert_eq!(k.sign(&claims(), "f"), Err(SignError::NoKey));
    }

    #[test]
    fn rotation_signs_with_the_new_key_and_keeps_the_old_one_verifying() {
        let d = dir();
        let live = LiveKeys::open(&d.catalog, &d.secrets, NOW_MS).unwrap();
        let old = live.sign(&claims(), "f.bin").unwrap();
        let mut conn = d.catalog.conn().unwrap();
        assert_eq!(create(&mut conn, &d.secrets, NOW_MS).unwrap(), 2);
        // Before the reload the server still signs with key 1, which stays valid.
        assert_eq!(
            live.verify_cached(&live.sign(&claims(), "f").unwrap(), NOW_MS)
                .unwrap()
                .key_id,
            1
        );
        live.reload_blocking(NOW_MS).unwrap();
        let new = live.sign(&claims(), "f.bin").unwrap();
        assert_eq!(live.verify_cached(&new, NOW_MS).unwrap().key_id, 2);
        assert_eq!(live.verify_cached(&old, NOW_MS).unwrap().key_id, 1);
    }

    #[test]
    fn retiring_stops_a_key_and_retiring_the_current_one_replaces_it() {
        let d = dir();
        let live = LiveKeys::open(&d.catalog, &d.secrets, NOW_MS).unwrap();
        let mut conn = d.catalog.conn().unwrap();
        create(&mut conn, &d.secrets, NOW_MS).unwrap(); // 2, current
        let by1 = signed_by(&d, 1);
        let by2 = signed_by(&d, 2);
        live.reload_blocking(NOW_MS).unwrap();

        assert_eq!(
            retire(&mut conn, &d.secrets, 1, NOW_MS).unwrap(),
            Retired::Done { replaced_by: None }
        );
        assert_eq!(
            retire(&mut conn, &d.secrets, 1, NOW_MS).unwrap(),
            Retired::AlreadyRetired
        );
        assert_eq!(
            retire(&mut conn, &d.secrets, 9, NOW_MS).unwrap(),
            Retired::NotFound
        );
        // Until the next reload the running process still accepts key 1 ...
        assert!(live.verify_cached(&by1, NOW_MS).is_ok());
        live.reload_blocking(NOW_MS + 10_000).unwrap();
        // ... and from it on, never again.
        assert_eq!(live.verify_cached(&by1, NOW_MS), Err(LinkError::UnknownKey(1)));
        assert!(live.verify_cached(&by2, NOW_MS).is_ok());

        assert_eq!(
            retire(&mut conn, &d.secrets, 2, NOW_MS).unwrap(),
            Retired::Done { replaced_by: Some(3) }
        );
        live.reload_blocking(NOW_MS + 20_000).unwrap();
        assert_eq!(live.ring().ids().collect::<Vec<_>>(), vec![3]);
        assert_eq!(live.verify_cached(&by2, NOW_MS), Err(LinkError::UnknownKey(2)));
        assert_eq!(ensure_current(&mut conn, &d.secrets, NOW_MS).unwrap(), None);
    }

    #[actix_web::test]
    async fn a_link_under_a_newer_key_reloads_once_per_gap() {
        let d = dir();
        let live = LiveKeys::open(&d.catalog, &d.secrets, NOW_MS).unwrap();
        let mut conn = d.catalog.conn().unwrap();

        // Another process rotates and signs with key 2 right away.
        create(&mut conn, &d.secrets, NOW_MS).unwrap();
        let by2 = signed_by(&d, 2);
        let t = NOW_MS + MISS_RELOAD_GAP_MS;
        assert_eq!(live.verify(&by2, t).await.unwrap().key_id, 2);
        assert_eq!(live.loaded_at_ms.load(Ordering::Acquire), t);

        // Again, within the gap: key 3 is not seen until the gap has passed.
        create(&mut conn, &d.secrets, NOW_MS).unwrap();
        let by3 = signed_by(&d, 3);
        assert_eq!(live.verify(&by3, t + 500).await, Err(LinkError::UnknownKey(3)));
        assert_eq!(live.loaded_at_ms.load(Ordering::Acquire), t, "no reload");
        let t2 = t + MISS_RELOAD_GAP_MS;
        assert_eq!(live.verify(&by3, t2).await.unwrap().key_id, 3);

        // A forged link naming a huge key id costs one reload per gap, no more.
        let forged = links::sign(&claims(), "f.bin", &SigningKey::new(u32::MAX, b"forged")).unwrap();
        let t3 = t2 + MISS_RELOAD_GAP_MS;
        assert_eq!(
            live.verify(&forged, t3).await,
            Err(LinkError::UnknownKey(u32::MAX))
        );
        assert_eq!(live.loaded_at_ms.load(Ordering::Acquire), t3);
        for dt in [1, 10, MISS_RELOAD_GAP_MS - 1] {
            assert!(live.verify(&forged, t3 + dt).await.is_err());
            assert_eq!(live.loaded_at_ms.load(Ordering::Acquire), t3);
        }
    }

    #[actix_web::test]
    async fn old_unknown_keys_never_cause_a_reload() {
        let d = dir();
        let live = LiveKeys::open(&d.catalog, &d.secrets, NOW_MS).unwrap();
        let mut conn = d.catalog.conn().unwrap();
        create(&mut conn, &d.secrets, NOW_MS).unwrap(); // 2
        let by1 = signed_by(&d, 1);
        retire(&mut conn, &d.secrets, 1, NOW_MS).unwrap();
        live.reload(NOW_MS).await.unwrap();
        // Key 1 is older than the current key 2: refused from memory, no catalog read.
        assert_eq!(
            live.verify(&by1, NOW_MS + 60_000).await,
            Err(LinkError::UnknownKey(1))
        );
        assert_eq!(live.loaded_at_ms.load(Ordering::Acquire), NOW_MS);
    }
}
