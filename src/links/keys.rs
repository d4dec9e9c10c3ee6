//! Link signing keys held in memory: one pre-keyed HMAC state per key id.
//!
//! Pure: building a [`KeyRing`] from secrets is the caller's business (the catalog
//! holds them encrypted; `delivery::keyring` loads them). A ring holds only keys
//! that may verify: retired keys are simply absent, so their links fail exactly
//! like links under a key that never existed.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// Absorbed into every link MAC before anything else, so a key can never be made
/// to sign something that is not a version-1 link (domain separation).
pub(crate) const MAC_DOMAIN: &[u8] = b"filegate-link-v1\0";

/// The length of the random secret of a key created by filegate.
pub const SECRET_LEN: usize = 32;

/// One signing key: its id and an HMAC-SHA256 state that has already absorbed the
/// key (inner and outer pads) and the domain prefix `"filegate-link-v1" 0x00`; each
/// MAC starts from a clone of it, so the per-link cost is the hashing of the link itself.
#[derive(Clone)]
pub struct SigningKey {
    id: u32,
    state: Hmac<Sha256>,
}

impl SigningKey {
    /// A key with this id and secret (any length works for HMAC; filegate makes
    /// [`SECRET_LEN`] random bytes).
    pub fn new(id: u32, secret: &[u8]) -> SigningKey {
        // HMAC accepts keys of every length, so this cannot fail.
        let mut state =
            <Hmac<Sha256> as KeyInit>::new_from_slice(secret).expect("HMAC-SHA256 takes keys of any length");
        state.update(MAC_DOMAIN);
        SigningKey { id, state }
    }

    pub fn id(&self) -> u32 {
        self.id
    }

    /// A fresh MAC computation under this key, domain prefix already absorbed.
    pub(crate) fn mac(&self) -> Hmac<Sha256> {
        self.state.clone()
    }
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SigningKey({}, ..)", self.id)
    }
}

/// The keys that verify links, by id. The current key — the one that signs new
/// links — is the one with the highest id (the catalog only ever adds keys with a
/// higher id than any before, so "newest" and "highest" agree).
#[derive(Clone, Debug, Default)]
pub struct KeyRing {
    /// Sorted by id, ids unique.
    keys: Vec<SigningKey>,
}

impl KeyRing {
    /// A ring of these keys; when an id appears twice, the first one is kept.
    pub fn new(keys: impl IntoIterator<Item = SigningKey>) -> KeyRing {
        let mut keys: Vec<SigningKey> = keys.into_iter().collect();
        // Stable sort keeps the first of equal ids first; dedup keeps it.
        keys.sort_by_key(|k| k.id);
        keys.dedup_by_key(|k| k.id);
        KeyRing { keys }
    }

    /// The key that signs new links (highest id), if any.
    pub fn current(&self) -> Option<&SigningKey> {
        self.keys.last()
    }

    /// The key with this id, if it may still verify.
    pub fn get(&self, id: u32) -> Option<&SigningKey> {
        self.keys
            .binary_search_by_key(&id, |k| k.id)
            .ok()
            .map(|i| &self.keys[i])
    }

    /// Ids in ascending order.
    pub fn ids(&self) -> impl Iterator<Item = u32> + '_ {
        self.keys.iter().map(|k| k.id)
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn current_is_the_highest_id_and_lookups_find_each_key() {
        let ring = KeyRing::new([
            SigningKey::new(3, b"c"),
            SigningKey::new(1, b"a"),
            SigningKey::new(7, b"g"),
        ]);
        assert_eq!(ring.current().unwrap().id(), 7);
        assert_eq!(ring.ids().collect::<Vec<_>>(), vec![1, 3, 7]);
        for id in [1, 3, 7] {
            assert_eq!(ring.get(id).unwrap().id(), id);
        }
        assert!(ring.get(2).is_none());
        assert!(ring.get(8).is_none());
        assert!(KeyRing::default().current().is_none());
    }

    #[test]
    fn duplicate_ids_keep_the_first() {
        let a = SigningKey::new(1, b"first");
        let b = SigningKey::new(1, b"second");
        let ring = KeyRing::new([a.clone(), b]);
        assert_eq!(ring.len(), 1);
        let tag = |k: &SigningKey| {
            let mut m = k.mac();
            m.update(b"x");
            m.finalize().into_bytes()
        };
        assert_eq!(tag(ring.get(1).unwrap()), tag(&a));
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let k = SigningKey::new(5, b"topsecret");
        let s = format!("{k:?} {:?}", KeyRing::new([k.clone()]));
        assert!(!s.contains("topsecret"), "{s}");
        assert!(s.contains("SigningKey(5"), "{s}");
    }
}
