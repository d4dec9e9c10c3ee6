//! AutoGraph level 1 (SPEC §7): the mark that makes each tagged download an individual
//! copy — the tag, the mark id (which names the tagged link, see below) and a MAC over
//! them — how it is placed in each container ([`containers`]), the copy it yields as a
//! list of segments served with `Range` ([`copy`]), and finding marks again in a
//! suspect copy ([`scan`]). Pure: no catalog, no HTTP.
//!
//! # The mark
//!
//! The mark is ASCII text, so that every container can carry it as is (PNG `tEXt`
//! must be Latin-1, a PDF comment must not hold a line break):
//!
//! ```text
//! filegate-autograph:1:<mark id, 32 hex>:<file id, 24 hex>:<MAC, 64 hex>:<tag, base64url>;
//! ```
//!
//! `MAC = HMAC-SHA256(K, "filegate-autograph-v1" 0x00 ‖ mark id (16 bytes) ‖ file id
//! (24 ASCII) ‖ u16be(len(tag)) ‖ tag (UTF-8))`, full length, compared in constant time.
//! `K` is derived from the data directory's `secret.key` with its own label
//! ([`MARK_KEY_LABEL`]), so rotating or retiring link signing keys never breaks an old
//! backtrace, and a mark cannot be made without the server's key.
//!
//! The **mark id** is the link's key (`delivery::policy::link_key`: the first 16 bytes
//! of the SHA-256 of the link's token). It is the same on every request of a link, so
//! the copy's bytes are the same on every request (a `Range`-resumed download equals
//! the whole one), it is what the audit trail records every delivery of the link under,
//! and it is what the catalog's `autograph_links` row written when the link was issued is
//! keyed by.
//!
//! # Level 2
//!
//! A watermark in the picture itself is another [`containers::Marker`]: it gets the same
//! mark bytes and produces a [`copy::Copy`], whose segments may then also name generated
//! (re-encoded) stretches. Nothing else in delivery or backtraces needs to change.

pub mod containers;
pub mod copy;
pub mod scan;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{KeyInit, Mac};

use crate::ids;

/// Every mark starts with these bytes (and a backtrace looks for them).
pub const MAGIC: &[u8] = b"filegate-autograph:1:";
/// Label deriving the mark key from `secret.key`.
pub const MARK_KEY_LABEL: &str = "filegate-autograph-mark-key-v1";
/// Longest tag in a mark (bytes; the same bound as in a link).
pub const MAX_TAG_BYTES: usize = crate::links::MAX_TAG_BYTES;
/// Longest mark text, terminator included.
pub const MAX_TEXT: usize = MAGIC.len() + 32 + 1 + 24 + 1 + 64 + 1 + (MAX_TAG_BYTES * 4).div_ceil(3) + 1;

const MAC_LABEL: &[u8] = b"filegate-autograph-v1\0";

/// The id a mark names its download by: the tagged link's key.
pub type MarkId = [u8; 16];

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

/// The server's key for marks.
#[derive(Clone)]
pub struct MarkKey([u8; 32]);

impl std::fmt::Debug for MarkKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MarkKey(..)")
    }
}

impl MarkKey {
    pub fn new(key: [u8; 32]) -> MarkKey {
        MarkKey(key)
    }

    fn mac(&self, id: &MarkId, file_id: &str, tag: &str) -> HmacSha256 {
        let mut m = <HmacSha256 as KeyInit>::new_from_slice(&self.0).expect("HMAC takes any key length");
        m.update(MAC_LABEL);
        m.update(id);
        m.update(file_id.as_bytes());
        m.update(&(tag.len() as u16).to_be_bytes());
        m.update(tag.as_bytes());
        m
    }

    /// The mark text for the download `id` of `file_id` with `tag` (see the module docs).
    /// Deterministic: the same inputs give the same bytes.
    pub fn mark(&self, id: &MarkId, file_id: &str, tag: &str) -> Vec<u8> {
        let mac = self.mac(id, file_id, tag).finalize().into_bytes();
        let mut out = Vec::with_capacity(MAX_TEXT);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(ids::hex(id).as_bytes());
        out.push(b':');
        out.extend_from_slice(file_id.as_bytes());
        out.push(b':');
        out.extend_from_slice(ids::hex(&mac).as_bytes());
        out.push(b':');
        out.extend_from_slice(URL_SAFE_NO_PAD.encode(tag.as_bytes()).as_bytes());
        out.push(b';');
        out
    }

    /// True when the candidate's MAC is ours (constant-time comparison).
    pub fn check(&self, c: &Candidate) -> bool {
        self.mac(&c.id, &c.file_id, &c.tag).verify_slice(&c.mac).is_ok()
    }
}

/// Something shaped like a mark, found in a suspect copy; [`MarkKey::check`] says
/// whether it is authentic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub id: MarkId,
    pub file_id: String,
    pub tag: String,
    mac: [u8; 32],
}

/// Parses a mark at the start of `text` (which starts with [`MAGIC`]); None when it is
/// not shaped like one (cut off, bad hex, a tag that is not base64url UTF-8, …).
pub fn parse(text: &[u8]) -> Option<Candidate> {
    let rest = text.strip_prefix(MAGIC)?;
    let end = rest.iter().take(MAX_TEXT).position(|&b| b == b';')?;
    let body = std::str::from_utf8(&rest[..end]).ok()?;
    let mut parts = body.split(':');
    let (id, file_id, mac, tag) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || id.len() != 32 || mac.len() != 64 || !ids::is_id(file_id) {
        return None;
    }
    let id: MarkId = ids::unhex(id)?.try_into().ok()?;
    let mac: [u8; 32] = ids::unhex(mac)?.try_into().ok()?;
    let tag = URL_SAFE_NO_PAD.decode(tag).ok()?;
    if tag.is_empty() || tag.len() > MAX_TAG_BYTES {
        return None;
    }
    Some(Candidate {
        id,
        file_id: file_id.to_string(),
        tag: String::from_utf8(tag).ok()?,
        mac,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "6b08ff8271f7fb127f98db8d";

    #[test]
    fn a_mark_parses_back_and_checks_only_under_its_key() {
        let k = MarkKey::new([7; 32]);
        let id = [0xab; 16];
        let m = k.mark(&id, FILE, "cust-1 ☃");
        assert!(m.starts_with(MAGIC) && m.ends_with(b";") && m.is_ascii());
        assert_eq!(m, k.mark(&id, FILE, "cust-1 ☃"), "deterministic");
        let c = parse(&m).unwrap();
        assert_eq!((c.id, c.file_id.as_str(), c.tag.as_str()), (id, FILE, "cust-1 ☃"));
        assert!(k.check(&c));
        assert!(!MarkKey::new([8; 32]).check(&c), "another server's key");
        let mut forged = c.clone();
        forged.tag = "cust-2 ☃".into();
        assert!(!k.check(&forged));
        let mut forged = c.clone();
        forged.id[0] ^= 1;
        assert!(!k.check(&forged));
        let longest = k.mark(&id, FILE, &"é".repeat(256));
        assert_eq!(longest.len(), MAX_TEXT);
        assert!(k.check(&parse(&longest).unwrap()));
    }

    #[test]
    fn misshapen_marks_do_not_parse() {
        let k = MarkKey::new([7; 32]);
        let m = k.mark(&[1; 16], FILE, "t");
        assert!(parse(&m[..m.len() - 1]).is_none(), "no terminator");
        let s = String::from_utf8(m.clone()).unwrap();
        for bad in [
            s.replacen(FILE, "6B08FF8271F7FB127F98DB8D", 1),
            s.replacen(":dA;", ":;", 1),
            s.replacen(":dA;", ":d A;", 1),
            s.replacen(":dA;", ":dA:x;", 1),
            s.replacen(":0101", ":01", 1),
        ] {
            assert!(parse(bad.as_bytes()).is_none(), "{bad}");
        }
    }
}
