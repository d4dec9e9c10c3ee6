//! Signed download links: [`LinkClaims`] ⇄ `/d/<token>/<name>`. Pure: no I/O, no clock.
//!
//! A link carries everything needed to serve it (self-contained: no catalog write
//! to issue it, no catalog read to check it), and every field that changes what is
//! served is covered by an HMAC-SHA256 under a signing key named by id. There is
//! exactly one encoding of a given link; any other spelling is refused, never
//! reinterpreted. The claims are signed, **not encrypted**: whoever holds a link can
//! read its file id, expiry, address binding, tag and so on.
//!
//! # Format, version 1
//!
//! A link is the path (no scheme, no host)
//!
//! ```text
//! /d/TOKEN/NAME
//! ```
//!
//! with **no query string** (not even an empty `?`), no fragment, no trailing slash.
//!
//! **NAME** is the file's name, UTF-8, percent-encoded byte by byte: the bytes
//! `A-Z a-z 0-9 - . _ ~` (RFC 3986 "unreserved") stand for themselves; every other
//! byte is `%` followed by two **upper-case** hex digits. It is the last path
//! segment, so `curl -O`, wget and browsers save the download under this name. The
//! name is 1..=[`MAX_NAME_BYTES`] bytes and is neither `.` nor `..` (clients would
//! collapse those as dot-segments). The MAC covers NAME *as encoded*, so another
//! spelling of the same name (`%c3%a9`, `%41` for `A`, a raw `é`) fails the MAC.
//!
//! **TOKEN** is base64url (RFC 4648 §5 alphabet `A-Z a-z 0-9 - _`) **without
//! padding**, with the unused low bits of the last character zero (the only
//! canonical form; padded or non-zero-trailing-bit spellings are refused), of
//!
//! ```text
//! TOKEN bytes = BODY ‖ TAG
//! TAG         = HMAC-SHA256(secret of key KID,
//!                           "filegate-link-v1" 0x00 ‖ u16be(len(BODY)) ‖ BODY ‖ NAME)
//! ```
//!
//! where NAME is the encoded segment exactly as it appears in the path (ASCII bytes)
//! and TAG is the **full 32-byte (256-bit)** HMAC output, compared in constant time.
//!
//! BODY, all integers big-endian:
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0  | 1  | version, `0x01` |
//! | 1  | 1  | method class: `0x01` = GET (HEAD is also served), `0x02` = HEAD only |
//! | 2  | 1  | flags, see below |
//! | 3  | 4  | KID: signing key id (u32) |
//! | 7  | 12 | file id (the 24 hex characters of the id, as 12 bytes) |
//! | 19 | 8  | issued at, **milliseconds** since the Unix epoch (i64, two's complement) |
//! | 27 | 8  | expires at, **seconds** since the Unix epoch (i64, two's complement) |
//! | 35 | …  | optional fields, each present iff its flag is set, in this order: |
//! |    | 4 or 16 | client address: IPv4 (flag `0x04`) or IPv6 (flag `0x08`), network order |
//! |    | 2 + n | archive entry path: u16 length n (≤ [`MAX_ITEM_BYTES`]), then UTF-8 (flag `0x10`) |
//! |    | 2 + n | AutoGraph tag: u16 length n (≤ [`MAX_TAG_BYTES`]), then UTF-8 (flag `0x20`) |
//! |    | 4  | max_parallel_downloads (u32) (flag `0x40`) |
//! |    | 12 | application id, 12 bytes like the file id (flag `0x80`) |
//!
//! Flags: `0x01` Content-Disposition `inline` (else `attachment`); `0x02` anti_fraud;
//! `0x04`/`0x08`/`0x10`/`0x20`/`0x40`/`0x80` as in the table. `0x04` and `0x08`
//! together are invalid. BODY must end exactly after the last present field.
//!
//! # Verification
//!
//! In this order, every failure being [`LinkError::InvalidSignature`] unless noted:
//! the path starts with `/d/`; it has no `?` or `#`; TOKEN and NAME are non-empty,
//! NAME holds no `/` and both are within their length bounds; TOKEN decodes as
//! canonical base64url to at least 35 + 32 bytes; the version is 1; the key KID is in
//! the [`KeyRing`] (else [`LinkError::UnknownKey`], answered like a bad signature);
//! the TAG matches (constant time); only then is BODY parsed, strictly (known method,
//! no contradictory flags, lengths within bounds, valid UTF-8, no trailing bytes);
//! then the expiry: a link is valid while `now_secs < expires_at` and
//! [`LinkError::Expired`] from the second `expires_at` on (valid at `expires_at - 1`,
//! refused at `expires_at`); NAME is decoded last. Policy that needs the request or
//! the catalog — method class, client address, revocation, anti-fraud, parallelism —
//! is checked by the caller with [`LinkClaims`]' helpers.
//!
//! Issued-at is in milliseconds so that per-file revocation ("links issued before
//! `revoked_before_ms` die") does not blur within a second: with whole seconds, a link
//! issued just before a revocation and one issued just after it could not be told apart.
//!
//! Behind a reverse proxy the path must be passed through unchanged (nginx:
//! `proxy_pass http://backend;` without a URI part), since decoding or re-encoding it
//! breaks the MAC by design.

mod keys;

pub use keys::{KeyRing, SigningKey, SECRET_LEN};

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::Mac;
use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

use crate::ids;

/// Every link path starts with this.
pub const PREFIX: &str = "/d/";
/// Longest file name (UTF-8 bytes, before percent-encoding).
pub const MAX_NAME_BYTES: usize = 1024;
/// Longest archive entry path (UTF-8 bytes).
pub const MAX_ITEM_BYTES: usize = 1024;
/// Longest AutoGraph tag (UTF-8 bytes; the API allows 128 characters).
pub const MAX_TAG_BYTES: usize = 512;

const VERSION: u8 = 1;
const TAG_LEN: usize = 32;
const FIXED_LEN: usize = 35;
const MAX_BODY_LEN: usize = FIXED_LEN + 16 + 2 + MAX_ITEM_BYTES + 2 + MAX_TAG_BYTES + 4 + 12;
const MIN_TOKEN_CHARS: usize = ((FIXED_LEN + TAG_LEN) * 4).div_ceil(3);
const MAX_TOKEN_CHARS: usize = ((MAX_BODY_LEN + TAG_LEN) * 4).div_ceil(3);
const MAX_NAME_SEGMENT: usize = MAX_NAME_BYTES * 3;
/// Tokens up to this many decoded bytes are decoded on the stack (the common case:
/// no item path, a short tag).
const STACK_TOKEN: usize = 192;

const F_INLINE: u8 = 0x01;
const F_ANTI_FRAUD: u8 = 0x02;
const F_IPV4: u8 = 0x04;
const F_IPV6: u8 = 0x08;
const F_ITEM: u8 = 0x10;
const F_TAG: u8 = 0x20;
const F_MAX_PARALLEL: u8 = 0x40;
const F_APP: u8 = 0x80;

/// RFC 3986 unreserved characters stay; everything else is `%XX` (upper case).
const NAME_ENCODE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// How the served file is presented: `Content-Disposition: inline` or `attachment`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Disposition {
    #[default]
    Attachment,
    /// MediaHub's `streaming=true`: plays in a browser tab.
    Inline,
}

impl Disposition {
    pub fn as_str(self) -> &'static str {
        match self {
            Disposition::Attachment => "attachment",
            Disposition::Inline => "inline",
        }
    }
}

/// Which request methods a link serves. Links handed out by the API are
/// [`MethodClass::Get`]; a HEAD-only link can never be used to download.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MethodClass {
    /// GET, and HEAD (which asks for the same answer without the body).
    #[default]
    Get,
    /// HEAD only: size and validators, never the content.
    HeadOnly,
}

impl MethodClass {
    /// True when a request with this method (upper case, as on the wire) may use the link.
    pub fn allows(self, method: &str) -> bool {
        match self {
            MethodClass::Get => method == "GET" || method == "HEAD",
            MethodClass::HeadOnly => method == "HEAD",
        }
    }
    fn code(self) -> u8 {
        match self {
            MethodClass::Get => 1,
            MethodClass::HeadOnly => 2,
        }
    }
    fn from_code(c: u8) -> Option<MethodClass> {
        match c {
            1 => Some(MethodClass::Get),
            2 => Some(MethodClass::HeadOnly),
            _ => None,
        }
    }
}

/// What a link grants. The signing key id is not a claim one chooses: [`sign`] takes
/// it from the key and [`verify`] reports it in [`VerifiedLink::key_id`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkClaims {
    /// The file (24 lowercase hex characters).
    pub file_id: String,
    /// For an archive: the path of the one entry this link serves.
    pub item: Option<String>,
    /// When the link was issued, milliseconds since the Unix epoch (for revocation).
    pub issued_at_ms: i64,
    /// Seconds since the Unix epoch; the link works while `now < expires_at`.
    pub expires_at: i64,
    /// Only this client address may use the link.
    pub ip: Option<IpAddr>,
    pub disposition: Disposition,
    /// Serve a copy carrying this AutoGraph tag, and record the download.
    pub autograph_tag: Option<String>,
    pub anti_fraud: bool,
    /// Refuse (429) when this many downloads of the link or tag are running.
    pub max_parallel_downloads: Option<u32>,
    /// The application that asked for the link (24 hex), for per-app revocation and audit.
    pub app_id: Option<String>,
    pub method: MethodClass,
}

impl LinkClaims {
    /// A plain GET link to `file_id`: attachment, no binding, no tag.
    pub fn new(file_id: impl Into<String>, issued_at_ms: i64, expires_at: i64) -> LinkClaims {
        LinkClaims {
            file_id: file_id.into(),
            item: None,
            issued_at_ms,
            expires_at,
            ip: None,
            disposition: Disposition::Attachment,
            autograph_tag: None,
            anti_fraud: false,
            max_parallel_downloads: None,
            app_id: None,
            method: MethodClass::Get,
        }
    }

    /// True when `client` may use the link. IPv4-mapped IPv6 addresses
    /// (`::ffff:192.0.2.1`) count as the IPv4 address they carry, on both sides.
    pub fn ip_allows(&self, client: IpAddr) -> bool {
        match self.ip {
            None => true,
            Some(bound) => bound.to_canonical() == client.to_canonical(),
        }
    }

    /// True when the file was revoked after this link was issued: links issued
    /// strictly before `revoked_before_ms` die.
    pub fn is_revoked(&self, revoked_before_ms: Option<i64>) -> bool {
        revoked_before_ms.is_some_and(|r| self.issued_at_ms < r)
    }

    /// Seconds of life left at `now_secs` (0 once expired): the bound for
    /// `Cache-Control: private, max-age`.
    pub fn remaining_secs(&self, now_secs: i64) -> u64 {
        u64::try_from(self.expires_at.saturating_sub(now_secs)).unwrap_or(0)
    }
}

/// A link that checked out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedLink {
    pub claims: LinkClaims,
    /// The file name from the last path segment, decoded.
    pub name: String,
    /// The key that signed it.
    pub key_id: u32,
}

/// Why a link was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    /// Tampered, truncated, extended, non-canonical, or not a link at all.
    #[error("invalid signature")]
    InvalidSignature,
    /// Signed by a key this ring does not hold (unknown, or retired). Answered
    /// exactly like [`LinkError::InvalidSignature`]; kept apart so that a server can
    /// reload its keys when a link names a key newer than any it knows.
    #[error("invalid signature (unknown key {0})")]
    UnknownKey(u32),
    /// Authentic, but `now >= expires_at`. Only reported once the MAC checked out.
    #[error("link expired at {expired_at}")]
    Expired { expired_at: i64 },
}

impl LinkError {
    /// The stable `reason` of the API error.
    pub fn reason(self) -> &'static str {
        match self {
            LinkError::InvalidSignature | LinkError::UnknownKey(_) => "invalid_signature",
            LinkError::Expired { .. } => "link_expired",
        }
    }
}

/// Why claims could not be signed (the API validates its input before, so these
/// point at a bug or at a limit of the format).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignError {
    #[error("file id is not 24 lowercase hex characters")]
    BadFileId,
    #[error("application id is not 24 lowercase hex characters")]
    BadAppId,
    #[error("file name is empty, `.` or `..`, or longer than {MAX_NAME_BYTES} bytes")]
    BadName,
    #[error("archive entry path longer than {MAX_ITEM_BYTES} bytes")]
    ItemTooLong,
    #[error("autograph tag longer than {MAX_TAG_BYTES} bytes")]
    TagTooLong,
    #[error("no signing key")]
    NoKey,
}

/// The link for `claims` and file `name`, signed with `key`: path only (prepend the
/// public base URL), see the module docs for the format.
pub fn sign(claims: &LinkClaims, name: &str, key: &SigningKey) -> Result<String, SignError> {
    if name.is_empty() || name.len() > MAX_NAME_BYTES || name == "." || name == ".." {
        return Err(SignError::BadName);
    }
    let mut body = Vec::with_capacity(FIXED_LEN + 64);
    encode_body(claims, key.id(), &mut body)?;
    let encoded_name = utf8_percent_encode(name, NAME_ENCODE).to_string();
    let tag = mac(key, &body, encoded_name.as_bytes());

    body.extend_from_slice(&tag);
    let mut out = String::with_capacity(PREFIX.len() + body.len() * 4 / 3 + 4 + encoded_name.len());
    out.push_str(PREFIX);
    URL_SAFE_NO_PAD.encode_string(&body, &mut out);
    out.push('/');
    out.push_str(&encoded_name);
    Ok(out)
}

/// Checks a link's path (`req.uri().path_and_query()`, exactly as received) against
/// `keys` at `now_secs`; see the module docs for the order of the checks.
pub fn verify(path_and_query: &str, keys: &KeyRing, now_secs: i64) -> Result<VerifiedLink, LinkError> {
    use LinkError::InvalidSignature as Bad;
    let rest = path_and_query.strip_prefix(PREFIX).ok_or(Bad)?;
    let (token, name_seg) = rest.split_once('/').ok_or(Bad)?;
    if token.len() < MIN_TOKEN_CHARS
        || token.len() > MAX_TOKEN_CHARS
        || name_seg.is_empty()
        || name_seg.len() > MAX_NAME_SEGMENT
        || name_seg.bytes().any(|b| matches!(b, b'/' | b'?' | b'#'))
    {
        return Err(Bad);
    }

    let mut stack = [0u8; STACK_TOKEN];
    let mut heap = Vec::new();
    let buf: &mut [u8] = if base64::decoded_len_estimate(token.len()) <= STACK_TOKEN {
        &mut stack
    } else {
        heap.resize(base64::decoded_len_estimate(token.len()), 0);
        &mut heap
    };
    let n = URL_SAFE_NO_PAD.decode_slice(token, buf).map_err(|_| Bad)?;
    let raw = &buf[..n];
    if raw.len() < FIXED_LEN + TAG_LEN {
        return Err(Bad);
    }
    let (body, tag) = raw.split_at(raw.len() - TAG_LEN);
    if body[0] != VERSION {
        return Err(Bad);
    }
    let key_id = u32::from_be_bytes([body[3], body[4], body[5], body[6]]);
    let key = keys.get(key_id).ok_or(LinkError::UnknownKey(key_id))?;

    let mut m = key.mac();
    absorb(&mut m, body, name_seg.as_bytes());
    m.verify_slice(tag).map_err(|_| Bad)?;

    // Authentic from here on: what follows only refuses what our own signer never makes.
    let claims = decode_body(body).ok_or(Bad)?;
    if now_secs >= claims.expires_at {
        return Err(LinkError::Expired {
            expired_at: claims.expires_at,
        });
    }
    let name = percent_decode_str(name_seg)
        .decode_utf8()
        .map_err(|_| Bad)?
        .into_owned();
    Ok(VerifiedLink { claims, name, key_id })
}

fn absorb(m: &mut hmac::Hmac<sha2::Sha256>, body: &[u8], name_seg: &[u8]) {
    // MAX_BODY_LEN < 65536, checked by the encoder and by the token length bound.
    m.update(&(body.len() as u16).to_be_bytes());
    m.update(body);
    m.update(name_seg);
}

fn mac(key: &SigningKey, body: &[u8], name_seg: &[u8]) -> [u8; TAG_LEN] {
    let mut m = key.mac();
    absorb(&mut m, body, name_seg);
    m.finalize().into_bytes().into()
}

fn parse_id(s: &str) -> Option<[u8; 12]> {
    if !ids::is_id(s) {
        return None;
    }
    let nib = |c: u8| {
        if c.is_ascii_digit() {
            c - b'0'
        } else {
            c - b'a' + 10
        }
    };
    let mut out = [0u8; 12];
    for (o, p) in out.iter_mut().zip(s.as_bytes().chunks_exact(2)) {
        *o = nib(p[0]) << 4 | nib(p[1]);
    }
    Some(out)
}

fn encode_body(c: &LinkClaims, key_id: u32, out: &mut Vec<u8>) -> Result<(), SignError> {
    let file = parse_id(&c.file_id).ok_or(SignError::BadFileId)?;
    let app = match &c.app_id {
        Some(a) => Some(parse_id(a).ok_or(SignError::BadAppId)?),
        None => None,
    };
    if c.item.as_ref().is_some_and(|s| s.len() > MAX_ITEM_BYTES) {
        return Err(SignError::ItemTooLong);
    }
    if c.autograph_tag.as_ref().is_some_and(|s| s.len() > MAX_TAG_BYTES) {
        return Err(SignError::TagTooLong);
    }

    let mut flags = 0u8;
    if c.disposition == Disposition::Inline {
        flags |= F_INLINE;
    }
    if c.anti_fraud {
        flags |= F_ANTI_FRAUD;
    }
    match c.ip {
        Some(IpAddr::V4(_)) => flags |= F_IPV4,
        Some(IpAddr::V6(_)) => flags |= F_IPV6,
        None => {}
    }
    if c.item.is_some() {
        flags |= F_ITEM;
    }
    if c.autograph_tag.is_some() {
        flags |= F_TAG;
    }
    if c.max_parallel_downloads.is_some() {
        flags |= F_MAX_PARALLEL;
    }
    if app.is_some() {
        flags |= F_APP;
    }

    out.push(VERSION);
    out.push(c.method.code());
    out.push(flags);
    out.extend_from_slice(&key_id.to_be_bytes());
    out.extend_from_slice(&file);
    out.extend_from_slice(&c.issued_at_ms.to_be_bytes());
    out.extend_from_slice(&c.expires_at.to_be_bytes());
    match c.ip {
        Some(IpAddr::V4(a)) => out.extend_from_slice(&a.octets()),
        Some(IpAddr::V6(a)) => out.extend_from_slice(&a.octets()),
        None => {}
    }
    for s in [&c.item, &c.autograph_tag].into_iter().flatten() {
        out.extend_from_slice(&(s.len() as u16).to_be_bytes());
        out.extend_from_slice(s.as_bytes());
    }
    if let Some(n) = c.max_parallel_downloads {
        out.extend_from_slice(&n.to_be_bytes());
    }
    if let Some(a) = app {
        out.extend_from_slice(&a);
    }
    Ok(())
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take<const N: usize>(&mut self) -> Option<[u8; N]> {
        let (head, rest) = self.0.split_first_chunk::<N>()?;
        self.0 = rest;
        Some(*head)
    }
    fn string(&mut self, max: usize) -> Option<String> {
        let len = u16::from_be_bytes(self.take::<2>()?) as usize;
        if len > max || len > self.0.len() {
            return None;
        }
        let (s, rest) = self.0.split_at(len);
        self.0 = rest;
        String::from_utf8(s.to_vec()).ok()
    }
}

fn decode_body(body: &[u8]) -> Option<LinkClaims> {
    let mut r = Reader(body);
    let [version, method, flags] = r.take::<3>()?;
    if version != VERSION || flags & (F_IPV4 | F_IPV6) == F_IPV4 | F_IPV6 {
        return None;
    }
    let method = MethodClass::from_code(method)?;
    let _key_id = r.take::<4>()?;
    let file = r.take::<12>()?;
    let issued_at_ms = i64::from_be_bytes(r.take::<8>()?);
    let expires_at = i64::from_be_bytes(r.take::<8>()?);
    let ip = if flags & F_IPV4 != 0 {
        Some(IpAddr::V4(Ipv4Addr::from(r.take::<4>()?)))
    } else if flags & F_IPV6 != 0 {
        Some(IpAddr::V6(Ipv6Addr::from(r.take::<16>()?)))
    } else {
        None
    };
    let item = if flags & F_ITEM != 0 {
        Some(r.string(MAX_ITEM_BYTES)?)
    } else {
        None
    };
    let autograph_tag = if flags & F_TAG != 0 {
        Some(r.string(MAX_TAG_BYTES)?)
    } else {
        None
    };
    let max_parallel_downloads = if flags & F_MAX_PARALLEL != 0 {
        Some(u32::from_be_bytes(r.take::<4>()?))
    } else {
        None
    };
    let app_id = if flags & F_APP != 0 {
        Some(ids::hex(&r.take::<12>()?))
    } else {
        None
    };
    if !r.0.is_empty() {
        return None;
    }
    Some(LinkClaims {
        file_id: ids::hex(&file),
        item,
        issued_at_ms,
        expires_at,
        ip,
        disposition: if flags & F_INLINE != 0 {
            Disposition::Inline
        } else {
            Disposition::Attachment
        },
        autograph_tag,
        anti_fraud: flags & F_ANTI_FRAUD != 0,
        max_parallel_downloads,
        app_id,
        method,
    })
}

#[cfg(test)]
mod tests;
