//! Short-lived in-memory copies of what serving a link reads from the catalog (file
//! rows, whether an application is enabled), so the hot path makes no catalog read.
//!
//! Entries live `TTL_MS` at most — a bound on how long a change made by another process
//! (`filegate app disable` on the command line) takes to show — and this process
//! invalidates them at once when it deletes, revokes or disables something itself.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use crate::archive::Entry;
use crate::catalog::files::FileRow;

pub const TTL_MS: i64 = 1000;
/// Past this many entries the cache starts over (a crude but allocation-bounded policy).
const MAX_ENTRIES: usize = 100_000;

#[derive(Default)]
pub struct Cache {
    files: RwLock<HashMap<String, (Arc<FileRow>, i64)>>,
    apps: RwLock<HashMap<String, (bool, i64)>>,
    /// Archive entries by `file_id/name` (a file id holds no `/`).
    entries: RwLock<HashMap<String, (Arc<Entry>, i64)>>,
}

fn fresh<T: Clone>(m: &RwLock<HashMap<String, (T, i64)>>, key: &str, now_ms: i64) -> Option<T> {
    let m = m.read().unwrap_or_else(|e| e.into_inner());
    m.get(key)
        .filter(|(_, at)| now_ms - at < TTL_MS && now_ms >= *at)
        .map(|(v, _)| v.clone())
}

fn put<T>(m: &RwLock<HashMap<String, (T, i64)>>, key: &str, v: T, now_ms: i64) {
    let mut m = m.write().unwrap_or_else(|e| e.into_inner());
    if m.len() >= MAX_ENTRIES {
        m.clear();
    }
    m.insert(key.to_string(), (v, now_ms));
}

impl Cache {
    pub fn file(&self, id: &str, now_ms: i64) -> Option<Arc<FileRow>> {
        fresh(&self.files, id, now_ms)
    }
    pub fn put_file(&self, row: Arc<FileRow>, now_ms: i64) {
        put(&self.files, &row.id.clone(), row, now_ms)
    }
    /// Forget a file (deleted, revoked, expired, its job failed).
    pub fn invalidate_file(&self, id: &str) {
        self.files.write().unwrap_or_else(|e| e.into_inner()).remove(id);
    }
    pub fn app_enabled(&self, id: &str, now_ms: i64) -> Option<bool> {
        fresh(&self.apps, id, now_ms)
    }
    pub fn put_app(&self, id: &str, enabled: bool, now_ms: i64) {
        put(&self.apps, id, enabled, now_ms)
    }
    pub fn entry(&self, file_id: &str, name: &str, now_ms: i64) -> Option<Arc<Entry>> {
        fresh(&self.entries, &format!("{file_id}/{name}"), now_ms)
    }
    pub fn put_entry(&self, file_id: &str, entry: Arc<Entry>, now_ms: i64) {
        let key = format!("{file_id}/{}", entry.name);
        put(&self.entries, &key, entry, now_ms)
    }
    pub fn invalidate_app(&self, id: &str) {
        self.apps.write().unwrap_or_else(|e| e.into_inner()).remove(id);
    }
}
