//! Short-lived in-memory copies of what serving a link reads from the catalog (file
//! rows, whether an application is enabled), so the hot path makes no catalog read.
//!
//! Entries live `TTL_MS` at most — a bound on how long a change made by another process
//! (`filegate app disable` on the command line) takes to show — and this process
//! invalidates them at once when it deletes, revokes or disables something itself.
//!
//! The bytes of small blobs served within the last `TTL_MS` are kept too (at most
//! [`SMALL_BLOBS_BYTES`] in all), so that a small file fetched many times a second is
//! read once a second. A blob id names its bytes (their SHA-256), so kept bytes are never
//! another version of the blob; they are only served after the link and the file's row
//! have been checked as on every request.
//!
//! Bearer tokens are cached the same way, keyed by their SHA-256 (never the token
//! itself), so that an API call such as issuing a link reads the catalog once per token
//! per second rather than on every request.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use actix_web::web::Bytes;

use super::source::Marked;
use crate::archive::Entry;
use crate::autograph::MarkId;
use crate::catalog::files::FileRow;
use crate::catalog::tokens::TokenRow;

pub const TTL_MS: i64 = 1000;
/// Past this many entries the cache starts over (a crude but allocation-bounded policy).
const MAX_ENTRIES: usize = 100_000;
/// At most this many tagged copies' layouts are kept (each holds its mark, up to ~1 KiB).
const MAX_MARKED: usize = 4096;
/// At most this many bytes of small blobs are kept.
pub const SMALL_BLOBS_BYTES: usize = 8 << 20;

/// A tagged copy's key: the file id and the mark id (its link's key).
type MarkedKey = (String, MarkId);

/// Bytes of small blobs by blob id, with when they were read, and their total size.
#[derive(Default)]
struct SmallBlobs {
    map: HashMap<String, (Bytes, i64)>,
    bytes: usize,
}

#[derive(Default)]
pub struct Cache {
    files: RwLock<HashMap<String, (Arc<FileRow>, i64)>>,
    apps: RwLock<HashMap<String, (bool, i64)>>,
    /// Archive entries by `file_id/name` (a file id holds no `/`).
    entries: RwLock<HashMap<String, (Arc<Entry>, i64)>>,
    tokens: RwLock<HashMap<Vec<u8>, (TokenRow, i64)>>,
    small_blobs: RwLock<SmallBlobs>,
    /// Tagged copies by `file_id` and mark id.
    marked: RwLock<HashMap<MarkedKey, (Arc<Marked>, i64)>>,
}

fn fresh<K, Q, T>(m: &RwLock<HashMap<K, (T, i64)>>, key: &Q, now_ms: i64) -> Option<T>
where
    K: std::borrow::Borrow<Q> + std::hash::Hash + Eq,
    Q: std::hash::Hash + Eq + ?Sized,
    T: Clone,
{
    let m = m.read().unwrap_or_else(|e| e.into_inner());
    m.get(key)
        .filter(|(_, at)| now_ms - at < TTL_MS && now_ms >= *at)
        .map(|(v, _)| v.clone())
}

fn put<K: std::hash::Hash + Eq, T>(m: &RwLock<HashMap<K, (T, i64)>>, key: K, v: T, now_ms: i64) {
    put_capped(m, key, v, now_ms, MAX_ENTRIES)
}

/// Inserts; at `cap` entries, the stale ones go first, then all (see below).
fn put_capped<K: std::hash::Hash + Eq, T>(
    m: &RwLock<HashMap<K, (T, i64)>>,
    key: K,
    v: T,
    now_ms: i64,
    cap: usize,
) {
    let mut m = m.write().unwrap_or_else(|e| e.into_inner());
    if m.len() >= cap {
        m.retain(|_, (_, at)| now_ms - *at < TTL_MS && now_ms >= *at);
        // Unless a quarter went, start over: each pass over the map frees at least a
        // quarter of it, so inserting stays O(1) on average when entries expire one by one.
        if m.len() * 4 > cap * 3 {
            m.clear();
        }
    }
    m.insert(key, (v, now_ms));
}

impl Cache {
    pub fn file(&self, id: &str, now_ms: i64) -> Option<Arc<FileRow>> {
        fresh(&self.files, id, now_ms)
    }
    pub fn put_file(&self, row: Arc<FileRow>, now_ms: i64) {
        put(&self.files, row.id.clone(), row, now_ms)
    }
    /// Forget a file (deleted, revoked, expired, its job failed).
    pub fn invalidate_file(&self, id: &str) {
        self.files.write().unwrap_or_else(|e| e.into_inner()).remove(id);
    }
    /// Forget every file (a pipeline deleted with its files).
    pub fn invalidate_files(&self) {
        self.files.write().unwrap_or_else(|e| e.into_inner()).clear();
        self.marked.write().unwrap_or_else(|e| e.into_inner()).clear();
        self.entries.write().unwrap_or_else(|e| e.into_inner()).clear();
    }
    pub fn app_enabled(&self, id: &str, now_ms: i64) -> Option<bool> {
        fresh(&self.apps, id, now_ms)
    }
    pub fn put_app(&self, id: &str, enabled: bool, now_ms: i64) {
        put(&self.apps, id.to_string(), enabled, now_ms)
    }
    pub fn entry(&self, file_id: &str, name: &str, now_ms: i64) -> Option<Arc<Entry>> {
        fresh(&self.entries, &format!("{file_id}/{name}"), now_ms)
    }
    pub fn put_entry(&self, file_id: &str, entry: Arc<Entry>, now_ms: i64) {
        let key = format!("{file_id}/{}", entry.name);
        put(&self.entries, key, entry, now_ms)
    }
    /// Forget an application (disabled or enabled here) and every token of it.
    pub fn invalidate_app(&self, id: &str) {
        self.apps.write().unwrap_or_else(|e| e.into_inner()).remove(id);
        self.tokens
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|_, (row, _)| row.app_id != id);
    }
    /// The copy the tagged link `mark_id` serves of file `file_id`, if laid out within
    /// the last `TTL_MS`.
    pub fn marked(&self, file_id: &str, mark_id: &MarkId, now_ms: i64) -> Option<Arc<Marked>> {
        let m = self.marked.read().unwrap_or_else(|e| e.into_inner());
        m.get(&(file_id.to_string(), *mark_id))
            .filter(|(_, at)| now_ms - at < TTL_MS && now_ms >= *at)
            .map(|(v, _)| v.clone())
    }
    pub fn put_marked(&self, file_id: &str, m: Arc<Marked>, now_ms: i64) {
        put_capped(
            &self.marked,
            (file_id.to_string(), m.mark_id),
            m,
            now_ms,
            MAX_MARKED,
        )
    }
    /// The bytes of blob `id` if they were read within the last `TTL_MS`.
    pub fn small_blob(&self, id: &str, now_ms: i64) -> Option<Bytes> {
        let m = self.small_blobs.read().unwrap_or_else(|e| e.into_inner());
        m.map
            .get(id)
            .filter(|(_, at)| now_ms - at < TTL_MS && now_ms >= *at)
            .map(|(b, _)| b.clone())
    }
    /// Keeps `bytes`, all of blob `id`, for `TTL_MS`; past [`SMALL_BLOBS_BYTES`] in all,
    /// stale ones go first, then all unless a quarter of the budget is then free.
    pub fn put_small_blob(&self, id: &str, bytes: Bytes, now_ms: i64) {
        if bytes.len() > SMALL_BLOBS_BYTES {
            return;
        }
        let mut m = self.small_blobs.write().unwrap_or_else(|e| e.into_inner());
        if let Some((old, _)) = m.map.remove(id) {
            m.bytes -= old.len();
        }
        if m.bytes + bytes.len() > SMALL_BLOBS_BYTES {
            m.map.retain(|_, (_, at)| now_ms - *at < TTL_MS && now_ms >= *at);
            m.bytes = m.map.values().map(|(b, _)| b.len()).sum();
            // As in `put_capped`: unless a quarter of the budget is free, start over.
            if (m.bytes + bytes.len()) * 4 > SMALL_BLOBS_BYTES * 3 {
                m.map.clear();
                m.bytes = 0;
            }
        }
        m.bytes += bytes.len();
        m.map.insert(id.to_string(), (bytes, now_ms));
    }
    /// Bytes of small blobs kept (for tests).
    pub fn small_blobs_bytes(&self) -> usize {
        self.small_blobs.read().unwrap_or_else(|e| e.into_inner()).bytes
    }
    /// The token whose SHA-256 is `hash`, as the catalog said within the last `TTL_MS`.
    pub fn token(&self, hash: &[u8], now_ms: i64) -> Option<TokenRow> {
        fresh(&self.tokens, hash, now_ms)
    }
    pub fn put_token(&self, hash: Vec<u8>, row: TokenRow, now_ms: i64) {
        put(&self.tokens, hash, row, now_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(app: &str) -> TokenRow {
        TokenRow {
            app_id: app.into(),
            scopes: "mediahub".into(),
            expires_at: 10_000,
            app_enabled: true,
        }
    }

    #[test]
    fn a_cached_token_lives_one_ttl() {
        let c = Cache::default();
        c.put_token(vec![1; 32], row("a"), 1000);
        assert!(c.token(&[1; 32], 1000 + TTL_MS - 1).is_some());
        assert!(c.token(&[1; 32], 1000 + TTL_MS).is_none());
        assert!(
            c.token(&[1; 32], 999).is_none(),
            "a clock set back is not trusted"
        );
        assert!(c.token(&[2; 32], 1000).is_none());
    }

    #[test]
    fn a_full_map_lets_stale_entries_go_first_then_all() {
        let m: RwLock<HashMap<u32, (u32, i64)>> = RwLock::default();
        put_capped(&m, 1, 1, 1000, 3);
        put_capped(&m, 2, 2, 1100, 3);
        put_capped(&m, 3, 3, 2000, 3);
        put_capped(&m, 4, 4, 2200, 3);
        let keys = |m: &RwLock<HashMap<u32, (u32, i64)>>| {
            let mut k: Vec<u32> = m.read().unwrap().keys().copied().collect();
            k.sort();
            k
        };
        assert_eq!(keys(&m), [3, 4], "1 and 2 were stale at 2200");
        put_capped(&m, 5, 5, 2300, 3);
        put_capped(&m, 6, 6, 2400, 3);
        assert_eq!(keys(&m), [6], "all fresh at the cap: start over");

        // Each pass frees at least a quarter: one stale entry of eight is not enough.
        for (stale, kept) in [(1, 1), (2, 7)] {
            let m: RwLock<HashMap<u32, (u32, i64)>> = RwLock::default();
            for k in 0..8u32 {
                let at = if k < stale { 1000 } else { 1900 };
                put_capped(&m, k, k, at, 8);
            }
            put_capped(&m, 100, 100, 2100, 8);
            assert_eq!(keys(&m).len(), kept, "{stale} stale of 8");
            assert!(keys(&m).contains(&100));
        }
    }

    #[test]
    fn small_blobs_live_one_ttl_within_their_budget() {
        let c = Cache::default();
        c.put_small_blob("a", Bytes::from_static(b"hello"), 1000);
        assert_eq!(
            c.small_blob("a", 1000 + TTL_MS - 1).as_deref(),
            Some(&b"hello"[..])
        );
        assert!(c.small_blob("a", 1000 + TTL_MS).is_none());
        assert!(
            c.small_blob("a", 999).is_none(),
            "a clock set back is not trusted"
        );
        c.put_small_blob("a", Bytes::from_static(b"hi"), 1000);
        assert_eq!(c.small_blobs_bytes(), 2, "a blob read again replaces its bytes");
        let big = Bytes::from(vec![0u8; SMALL_BLOBS_BYTES / 2]);
        c.put_small_blob("b", big.clone(), 1000);
        c.put_small_blob("c", big.clone(), 1500);
        assert!(c.small_blobs_bytes() <= SMALL_BLOBS_BYTES);
        assert!(c.small_blob("c", 1500).is_some(), "the newest is kept");
        c.put_small_blob("d", big.clone(), 2600);
        assert!(c.small_blobs_bytes() <= SMALL_BLOBS_BYTES);
        assert!(c.small_blob("d", 2600).is_some());
        assert!(c.small_blob("c", 2600).is_none());
        c.put_small_blob("e", Bytes::from(vec![0u8; SMALL_BLOBS_BYTES + 1]), 2600);
        assert!(
            c.small_blob("e", 2600).is_none(),
            "more than the budget is never kept"
        );
        assert!(c.small_blobs_bytes() <= SMALL_BLOBS_BYTES);
    }

    #[test]
    fn invalidating_an_app_forgets_its_tokens_only() {
        let c = Cache::default();
        c.put_token(vec![1; 32], row("a"), 1000);
        c.put_token(vec![2; 32], row("b"), 1000);
        c.invalidate_app("a");
        assert!(c.token(&[1; 32], 1000).is_none());
        assert!(c.token(&[2; 32], 1000).is_some());
    }
}
