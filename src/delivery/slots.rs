//! `max_parallel_downloads`: how many responses of a link, and of an AutoGraph tag,
//! are streaming right now.
//!
//! A response takes one slot of its link and, when the link carries a tag, one of its
//! tag (tags are counted per application: two applications may use the same word). The
//! slots are held by a [`Held`] that lives inside the response body, so they are freed
//! the moment the body ends or actix drops it (finished, or the client went away).
//! In memory only: a restart frees every slot, which is right since it ends every
//! transfer too.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SlotKey {
    /// A link, by its key (hash of its token).
    Link([u8; 16]),
    /// An AutoGraph tag of an application: (application id or "", tag).
    Tag(String, String),
}

#[derive(Default)]
pub struct Slots {
    running: Mutex<HashMap<SlotKey, u32>>,
}

impl Slots {
    /// Takes one slot of every key, or none when any key already has `limit` running.
    pub fn acquire(self: &Arc<Self>, keys: Vec<SlotKey>, limit: u32) -> Option<Held> {
        let mut m = self.running.lock().unwrap_or_else(|e| e.into_inner());
        if keys.iter().any(|k| m.get(k).copied().unwrap_or(0) >= limit) {
            return None;
        }
        for k in &keys {
            *m.entry(k.clone()).or_default() += 1;
        }
        Some(Held {
            slots: self.clone(),
            keys,
        })
    }

    /// Responses running for `key`.
    pub fn running(&self, key: &SlotKey) -> u32 {
        let m = self.running.lock().unwrap_or_else(|e| e.into_inner());
        m.get(key).copied().unwrap_or(0)
    }
}

/// Slots taken by one response; dropping it gives them back.
pub struct Held {
    slots: Arc<Slots>,
    keys: Vec<SlotKey>,
}

impl Drop for Held {
    fn drop(&mut self) {
        let mut m = self.slots.running.lock().unwrap_or_else(|e| e.into_inner());
        for k in &self.keys {
            if let Some(n) = m.get_mut(k) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    m.remove(k);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_link_and_its_tag_are_limited_and_freed_on_drop() {
        let s = Arc::new(Slots::default());
        let link_a = SlotKey::Link([1; 16]);
        let link_b = SlotKey::Link([2; 16]);
        let tag = SlotKey::Tag("app".into(), "customer-1".into());
        let a1 = s.acquire(vec![link_a.clone(), tag.clone()], 2).unwrap();
        let _a2 = s.acquire(vec![link_a.clone(), tag.clone()], 2).unwrap();
        assert!(s.acquire(vec![link_a.clone()], 2).is_none(), "link full");
        assert!(
            s.acquire(vec![link_b.clone(), tag.clone()], 2).is_none(),
            "another link with the same tag: the tag is full"
        );
        assert_eq!(s.running(&link_b), 0, "a refused acquire takes nothing");
        let _b = s.acquire(vec![link_b.clone()], 2).unwrap();
        drop(a1);
        assert_eq!(s.running(&tag), 1);
        let _c = s.acquire(vec![link_b.clone(), tag.clone()], 2).unwrap();
        assert_eq!(s.running(&link_b), 2);
        drop((_a2, _b, _c));
        assert!(s.running.lock().unwrap().is_empty(), "no key left behind");
    }
}
