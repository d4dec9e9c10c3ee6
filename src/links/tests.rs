use std::net::IpAddr;

use base64::engine::general_purpose::{STANDARD, URL_SAFE, URL_SAFE_NO_PAD};
use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use super::*;

const FILE: &str = "54820cec18bac397e161aebc";
const APP: &str = "65a1b2c3d4e5f60718293a4b";
const NOW: i64 = 1_767_225_600; // 2026-01-01T00:00:00Z
const EXP: i64 = NOW + 3600;

fn key(id: u32) -> SigningKey {
    SigningKey::new(id, format!("secret number {id} of thirty-two!").as_bytes())
}

fn ring() -> KeyRing {
    KeyRing::new([key(1), key(2)])
}

fn plain() -> LinkClaims {
    LinkClaims::new(FILE, NOW * 1000 + 123, EXP)
}

fn full() -> LinkClaims {
    LinkClaims {
        file_id: FILE.into(),
        item: Some("season 1/épisode 01.mkv".into()),
        issued_at_ms: NOW * 1000 + 999,
        expires_at: EXP,
        ip: Some("2001:db8::7".parse().unwrap()),
        disposition: Disposition::Inline,
        autograph_tag: Some("customer-4711 ☃".into()),
        anti_fraud: true,
        max_parallel_downloads: Some(3),
        app_id: Some(APP.into()),
        method: MethodClass::HeadOnly,
    }
}

fn link(c: &LinkClaims, name: &str) -> String {
    sign(c, name, ring().current().unwrap()).unwrap()
}

fn ok(url: &str) -> VerifiedLink {
    verify(url, &ring(), NOW).unwrap_or_else(|e| panic!("{url}: {e:?}"))
}

fn refused(url: &str) {
    match verify(url, &ring(), NOW) {
        Err(LinkError::InvalidSignature) | Err(LinkError::UnknownKey(_)) => {}
        other => panic!("{url:?} should be refused, got {other:?}"),
    }
}

/// (token bytes, encoded name) of a link.
fn parts(url: &str) -> (Vec<u8>, String) {
    let rest = url.strip_prefix("/d/").unwrap();
    let (t, n) = rest.split_once('/').unwrap();
    (URL_SAFE_NO_PAD.decode(t).unwrap(), n.to_string())
}

fn assemble(raw: &[u8], name: &str) -> String {
    format!("/d/{}/{}", URL_SAFE_NO_PAD.encode(raw), name)
}

/// The MAC of an arbitrary body, computed from the module docs alone (not with the
/// module's own code), so that a body our encoder never makes can be made authentic.
fn doc_mac(secret: &[u8], body: &[u8], name: &str) -> Vec<u8> {
    let mut m = <Hmac<Sha256> as KeyInit>::new_from_slice(secret).unwrap();
    m.update(b"filegate-link-v1\0");
    m.update(&(body.len() as u16).to_be_bytes());
    m.update(body);
    m.update(name.as_bytes());
    m.finalize().into_bytes().to_vec()
}

fn authentic(body: &[u8], name: &str) -> String {
    let mut raw = body.to_vec();
    raw.extend(doc_mac(b"secret number 2 of thirty-two!", body, name));
    assemble(&raw, name)
}

#[test]
fn a_plain_link_round_trips() {
    let url = link(&plain(), "movie.mp4");
    assert!(url.starts_with("/d/") && url.ends_with("/movie.mp4"), "{url}");
    assert!(!url.contains('?'));
    let v = ok(&url);
    assert_eq!(v.claims, plain());
    assert_eq!(v.name, "movie.mp4");
    assert_eq!(v.key_id, 2);
    // 35 bytes of body + 32 of MAC = 67 bytes = 90 base64 characters.
    assert_eq!(url.len(), "/d/".len() + 90 + "/movie.mp4".len());
}

#[test]
fn every_field_round_trips() {
    let name = "Épisode 1 — \"final\" cut (v2).mkv";
    let v = ok(&link(&full(), name));
    assert_eq!(v.claims, full());
    assert_eq!(v.name, name);
    let mut c = full();
    c.ip = Some("192.168.2.1".parse().unwrap());
    c.item = Some(String::new());
    c.method = MethodClass::Get;
    c.issued_at_ms = -5;
    assert_eq!(ok(&link(&c, name)).claims, c);
}

#[test]
fn the_documented_format_is_what_sign_produces() {
    // Build the body by hand from the table in the module docs.
    let c = full();
    let mut body = vec![1u8, 2, 0x01 | 0x02 | 0x08 | 0x10 | 0x20 | 0x40 | 0x80];
    body.extend(2u32.to_be_bytes());
    body.extend(crate::ids::unhex(FILE).unwrap());
    body.extend(c.issued_at_ms.to_be_bytes());
    body.extend(c.expires_at.to_be_bytes());
    body.extend("2001:db8::7".parse::<std::net::Ipv6Addr>().unwrap().octets());
    for s in [c.item.as_ref().unwrap(), c.autograph_tag.as_ref().unwrap()] {
        body.extend((s.len() as u16).to_be_bytes());
        body.extend(s.as_bytes());
    }
    body.extend(3u32.to_be_bytes());
    body.extend(crate::ids::unhex(APP).unwrap());
    let name = "caf%C3%A9%20%26%20co.mp4";
    assert_eq!(link(&c, "café & co.mp4"), authentic(&body, name));
}

#[test]
fn names_are_percent_encoded_canonically_as_the_last_segment() {
    let url = link(&plain(), "a b/c?d#e%f+g~h-i.j_k\"l'm\\ñ.txt");
    let (_, n) = parts(&url);
    assert_eq!(n, "a%20b%2Fc%3Fd%23e%25f%2Bg~h-i.j_k%22l%27m%5C%C3%B1.txt");
    assert_eq!(ok(&url).name, "a b/c?d#e%f+g~h-i.j_k\"l'm\\ñ.txt");
    // Upper case hex only, unreserved characters never encoded.
    assert!(!n.contains("%c3") && !n.contains("%7E"));
}

#[test]
fn another_spelling_of_the_same_name_is_refused() {
    let url = link(&plain(), "café ~x.mp4");
    let (raw, n) = parts(&url);
    assert_eq!(n, "caf%C3%A9%20~x.mp4");
    ok(&url);
    for other in [
        "caf%c3%a9%20~x.mp4",   // lower-case hex
        "caf%C3%a9%20~x.mp4",   // mixed case
        "caf%C3%A9+~x.mp4",     // form-style space
        "caf%C3%A9%20%7Ex.mp4", // unreserved ~ encoded
        "%63af%C3%A9%20~x.mp4", // unreserved c encoded
        "caf%C3%A9%20~x%2Emp4", // unreserved . encoded
        "café%20~x.mp4",        // raw UTF-8
        "caf%C3%A9 ~x.mp4",     // raw space
        "caf%C3%A9%20~x.MP4",   // other case of the name itself
        "caf%C3%A9%20~x.mp4%00",
    ] {
        refused(&assemble(&raw, other));
    }
}

#[test]
fn flipping_any_bit_of_the_token_is_refused() {
    let url = link(&full(), "f.bin");
    let (raw, n) = parts(&url);
    for i in 0..raw.len() {
        for bit in 0..8 {
            let mut t = raw.clone();
            t[i] ^= 1 << bit;
            refused(&assemble(&t, &n));
        }
    }
}

#[test]
fn every_byte_of_the_signature_matters() {
    let url = link(&plain(), "f.bin");
    let (raw, n) = parts(&url);
    let sig = raw.len() - 32;
    for i in sig..raw.len() {
        for v in [0u8, 0xff, raw[i].wrapping_add(1)] {
            if v == raw[i] {
                continue;
            }
            let mut t = raw.clone();
            t[i] = v;
            refused(&assemble(&t, &n));
        }
    }
    // A truncated signature (e.g. the 128-bit prefix) is not accepted either.
    refused(&assemble(&raw[..sig + 16], &n));
    refused(&assemble(&raw[..sig], &n));
}

#[test]
fn changing_adding_removing_or_repeating_a_field_is_refused() {
    let url = link(&full(), "f.bin");
    let (raw, n) = parts(&url);
    let (body, tag) = raw.split_at(raw.len() - 32);
    let with = |b: Vec<u8>| {
        let mut t = b;
        t.extend_from_slice(tag);
        assemble(&t, &n)
    };
    // Change: each fixed field and each flag.
    for (off, len) in [(1, 1), (3, 4), (7, 12), (19, 8), (27, 8)] {
        let mut b = body.to_vec();
        b[off + len - 1] ^= 1;
        refused(&with(b));
    }
    for bit in 0..8 {
        let mut b = body.to_vec();
        b[2] ^= 1 << bit;
        refused(&with(b));
    }
    // Remove: the app id at the end (flag cleared too) and the ip in the middle.
    let mut b = body[..body.len() - 12].to_vec();
    b[2] &= !0x80;
    refused(&with(b));
    let mut b = body.to_vec();
    b.drain(35..51);
    b[2] &= !0x08;
    refused(&with(b));
    // Add: a field our format does not have, or bytes at the end.
    let mut b = body.to_vec();
    b.extend([0, 1, b'x']);
    refused(&with(b));
    // Repeat: the max_parallel_downloads field twice.
    let mut b = body.to_vec();
    let mp = body.len() - 12 - 4;
    b.splice(mp..mp, body[mp..mp + 4].to_vec());
    refused(&with(b));
    // Later expiry, other file.
    let mut b = body.to_vec();
    b[27..35].copy_from_slice(&(EXP + 86400).to_be_bytes());
    refused(&with(b));
}

#[test]
fn only_the_strict_body_is_accepted_even_when_authentic() {
    let base = {
        let (raw, _) = parts(&link(&plain(), "f"));
        raw[..raw.len() - 32].to_vec()
    };
    // The helper makes what sign makes.
    assert_eq!(authentic(&base, "f"), link(&plain(), "f"));
    ok(&authentic(&base, "f"));

    let mut cases: Vec<Vec<u8>> = Vec::new();
    let mut b = base.clone();
    b.push(0); // trailing byte
    cases.push(b);
    let mut b = base.clone();
    b[2] |= 0x04 | 0x08; // both address families
    b.extend([0u8; 20]);
    cases.push(b);
    for m in [0u8, 3, 255] {
        let mut b = base.clone();
        b[1] = m; // unknown method class
        cases.push(b);
    }
    let mut b = base.clone();
    b[0] = 2; // unknown version
    cases.push(b);
    let mut b = base.clone();
    b[2] |= 0x10; // item longer than allowed
    b.extend(((MAX_ITEM_BYTES + 1) as u16).to_be_bytes());
    b.extend(vec![b'a'; MAX_ITEM_BYTES + 1]);
    cases.push(b);
    let mut b = base.clone();
    b[2] |= 0x20; // tag that is not UTF-8
    b.extend([0, 2, 0xc3, 0x28]);
    cases.push(b);
    let mut b = base.clone();
    b[2] |= 0x20; // tag length beyond the body
    b.extend([0, 9, b'a']);
    cases.push(b);
    let mut b = base.clone();
    b[2] |= 0x40; // truncated max_parallel_downloads
    b.extend([0, 0, 1]);
    cases.push(b);
    let mut b = base.clone();
    b[2] |= 0x80; // truncated app id
    b.extend([1u8; 11]);
    cases.push(b);
    cases.push(base[..34].to_vec()); // body shorter than the fixed part
    for b in cases {
        refused(&authentic(&b, "f"));
    }
    // An authentic name segment that is not UTF-8 once decoded.
    refused(&authentic(&base, "%FF"));
}

#[test]
fn other_encodings_of_the_token_are_refused() {
    let url = link(&plain(), "m.mp4");
    let (raw, n) = parts(&url);
    let token = URL_SAFE_NO_PAD.encode(&raw);
    assert_eq!(token.len() % 4, 2, "the test needs a token with trailing bits");
    ok(&format!("/d/{token}/{n}"));
    // Padding.
    refused(&format!("/d/{}/{n}", URL_SAFE.encode(&raw)));
    refused(&format!("/d/{token}=/{n}"));
    // Non-zero unused bits in the last character (same bytes otherwise).
    let last = token.as_bytes()[token.len() - 1];
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let idx = alphabet.iter().position(|&c| c == last).unwrap();
    for low in 1..16 {
        let c = alphabet[(idx & !15) | ((idx & 15) ^ low)] as char;
        refused(&format!("/d/{}{c}/{n}", &token[..token.len() - 1]));
    }
    // Standard alphabet, percent-encoded characters, other case.
    let std = STANDARD.encode(&raw).trim_end_matches('=').to_string();
    if std != token {
        refused(&format!("/d/{std}/{n}"));
    }
    refused(&format!("/d/%{:02X}{}/{n}", token.as_bytes()[0], &token[1..]));
    refused(&format!("/d/{}/{n}", token.to_ascii_uppercase()));
    // Leading zero byte in front of the token bytes.
    let mut z = vec![0u8];
    z.extend(&raw);
    refused(&assemble(&z, &n));
}

#[test]
fn queries_fragments_and_other_paths_are_refused() {
    let url = link(&plain(), "m.mp4");
    ok(&url);
    for suffix in [
        "?",
        "?a=b",
        "?file_id=x",
        "#",
        "#x",
        "/",
        "/x",
        "%20",
        "&a=b",
        ";a",
    ] {
        refused(&format!("{url}{suffix}"));
    }
    let (raw, n) = parts(&url);
    let t = URL_SAFE_NO_PAD.encode(&raw);
    for p in [
        format!("/D/{t}/{n}"),
        format!("//d/{t}/{n}"),
        format!("/d//{t}/{n}"),
        format!("/d/{t}//{n}"),
        format!("/d/{t}"),
        format!("/d/{t}/"),
        format!("d/{t}/{n}"),
        format!("/x/d/{t}/{n}"),
        format!("/d/{t}/x/{n}"),
        format!("/d/{t}/./{n}"),
        format!("/d/{t}x/{n}"),
        "/d/".to_string(),
        String::new(),
    ] {
        refused(&p);
    }
}

#[test]
fn any_single_character_edit_of_a_link_never_verifies() {
    let url = link(&full(), "report final.pdf");
    let chars: Vec<char> = "AZaz09-_%./?#=+ ~2Fé".chars().collect();
    let mut tried = 0;
    for i in 0..=url.len() {
        if !url.is_char_boundary(i) {
            continue;
        }
        let (a, b) = url.split_at(i);
        let mut edits = Vec::new();
        if let Some(c) = b.chars().next() {
            edits.push(format!("{a}{}", &b[c.len_utf8()..])); // delete
            for &r in &chars {
                edits.push(format!("{a}{r}{}", &b[c.len_utf8()..])); // replace
            }
        }
        for &r in &chars {
            edits.push(format!("{a}{r}{b}")); // insert
        }
        for e in edits {
            if e != url {
                tried += 1;
                assert!(verify(&e, &ring(), NOW).is_err(), "{e}");
            }
        }
    }
    assert!(tried > 5000, "{tried}");
}

#[test]
fn random_multi_byte_mutations_never_verify() {
    // A fixed xorshift stream keeps this deterministic without a dev-dependency.
    let mut s: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        s
    };
    let bytes: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_%/?.=~";
    for (c, name) in [(plain(), "a.bin"), (full(), "ünï côdé.tar")] {
        let url = link(&c, name).into_bytes();
        for _ in 0..3000 {
            let mut m = url.clone();
            for _ in 0..1 + next() % 4 {
                let i = (next() % m.len() as u64) as usize;
                let r = bytes[(next() % bytes.len() as u64) as usize];
                match next() % 3 {
                    0 => m[i] = r,
                    1 => m.insert(i, r),
                    _ => {
                        m.remove(i);
                    }
                }
            }
            if m == url {
                continue;
            }
            if let Ok(s) = std::str::from_utf8(&m) {
                assert!(verify(s, &ring(), NOW).is_err(), "{s}");
            }
        }
    }
}

#[test]
fn expiry_boundary_is_exclusive() {
    let url = link(&plain(), "m.mp4");
    assert!(verify(&url, &ring(), EXP - 3600).is_ok());
    assert!(verify(&url, &ring(), EXP - 1).is_ok(), "valid in its last second");
    assert_eq!(
        verify(&url, &ring(), EXP),
        Err(LinkError::Expired { expired_at: EXP }),
        "refused from expires_at on"
    );
    assert_eq!(
        verify(&url, &ring(), EXP + 1),
        Err(LinkError::Expired { expired_at: EXP })
    );
    assert_eq!(LinkError::Expired { expired_at: EXP }.reason(), "link_expired");
}

#[test]
fn a_tampered_expired_link_is_a_bad_signature_not_expired() {
    let url = link(&plain(), "m.mp4");
    let (mut raw, n) = parts(&url);
    raw[10] ^= 1;
    assert_eq!(
        verify(&assemble(&raw, &n), &ring(), EXP + 10),
        Err(LinkError::InvalidSignature)
    );
    // Same for a link naming an unknown key.
    let other = sign(&plain(), "m.mp4", &key(9)).unwrap();
    assert_eq!(verify(&other, &ring(), EXP + 10), Err(LinkError::UnknownKey(9)));
}

#[test]
fn unknown_retired_and_wrong_keys_are_refused() {
    let k1 = sign(&plain(), "m.mp4", &key(1)).unwrap();
    let k2 = sign(&plain(), "m.mp4", &key(2)).unwrap();
    // After a rotation both verify.
    assert_eq!(ok(&k1).key_id, 1);
    assert_eq!(ok(&k2).key_id, 2);
    // Key 1 retired: absent from the ring.
    let retired = KeyRing::new([key(2), key(3)]);
    assert_eq!(verify(&k1, &retired, NOW), Err(LinkError::UnknownKey(1)));
    assert!(verify(&k2, &retired, NOW).is_ok());
    assert_eq!(LinkError::UnknownKey(1).reason(), "invalid_signature");
    // No keys at all.
    assert_eq!(
        verify(&k2, &KeyRing::default(), NOW),
        Err(LinkError::UnknownKey(2))
    );
    // Same id, another secret.
    let impostor = KeyRing::new([SigningKey::new(2, b"another secret")]);
    assert_eq!(verify(&k2, &impostor, NOW), Err(LinkError::InvalidSignature));
    // Changing the key id inside the token to another known key.
    let (mut raw, n) = parts(&k2);
    raw[6] = 1;
    assert_eq!(
        verify(&assemble(&raw, &n), &ring(), NOW),
        Err(LinkError::InvalidSignature)
    );
}

#[test]
fn sign_refuses_what_the_format_cannot_carry() {
    let k = key(1);
    let mut c = plain();
    c.file_id = FILE.to_uppercase();
    assert_eq!(sign(&c, "a", &k), Err(SignError::BadFileId));
    c.file_id = "abc".into();
    assert_eq!(sign(&c, "a", &k), Err(SignError::BadFileId));
    let mut c = plain();
    c.app_id = Some("nope".into());
    assert_eq!(sign(&c, "a", &k), Err(SignError::BadAppId));
    for bad in ["", ".", ".."] {
        assert_eq!(sign(&plain(), bad, &k), Err(SignError::BadName), "{bad:?}");
    }
    assert_eq!(
        sign(&plain(), &"x".repeat(MAX_NAME_BYTES + 1), &k),
        Err(SignError::BadName)
    );
    let mut c = plain();
    c.item = Some("i".repeat(MAX_ITEM_BYTES + 1));
    assert_eq!(sign(&c, "a", &k), Err(SignError::ItemTooLong));
    let mut c = plain();
    c.autograph_tag = Some("t".repeat(MAX_TAG_BYTES + 1));
    assert_eq!(sign(&c, "a", &k), Err(SignError::TagTooLong));
    // "..." is an ordinary name, not a dot-segment.
    assert!(sign(&plain(), "...", &k).is_ok());
}

#[test]
fn the_largest_link_verifies() {
    let mut c = full();
    c.item = Some("é".repeat(MAX_ITEM_BYTES / 2));
    c.autograph_tag = Some("t".repeat(MAX_TAG_BYTES));
    let name = "ü".repeat(MAX_NAME_BYTES / 2);
    let url = link(&c, &name);
    let v = ok(&url);
    assert_eq!(v.claims, c);
    assert_eq!(v.name, name);
    // One more byte of token is past any link we sign.
    let (raw, n) = parts(&url);
    let mut longer = raw.clone();
    longer.extend([0u8; 3]);
    refused(&assemble(&longer, &n));
}

#[test]
fn claims_helpers_bind_address_revocation_and_cache_life() {
    let mut c = plain();
    assert!(c.ip_allows("10.0.0.1".parse().unwrap()));
    c.ip = Some("192.168.2.1".parse().unwrap());
    assert!(c.ip_allows("192.168.2.1".parse().unwrap()));
    assert!(c.ip_allows("::ffff:192.168.2.1".parse().unwrap()));
    assert!(!c.ip_allows("192.168.2.2".parse().unwrap()));
    assert!(!c.ip_allows("::1".parse().unwrap()));
    c.ip = Some("::ffff:10.1.2.3".parse().unwrap());
    assert!(c.ip_allows("10.1.2.3".parse::<IpAddr>().unwrap()));
    c.ip = Some("2001:db8::1".parse().unwrap());
    assert!(c.ip_allows("2001:db8:0:0::1".parse().unwrap()));
    assert!(!c.ip_allows("2001:db8::2".parse().unwrap()));

    let c = plain(); // issued at NOW*1000+123
    assert!(!c.is_revoked(None));
    assert!(c.is_revoked(Some(NOW * 1000 + 124)));
    assert!(
        !c.is_revoked(Some(NOW * 1000 + 123)),
        "issued at the revocation instant survives"
    );
    assert!(!c.is_revoked(Some(NOW * 1000)));

    assert_eq!(c.remaining_secs(NOW), 3600);
    assert_eq!(c.remaining_secs(EXP - 1), 1);
    assert_eq!(c.remaining_secs(EXP), 0);
    assert_eq!(c.remaining_secs(EXP + 100), 0);
    let mut far = plain();
    far.expires_at = i64::MAX;
    assert_eq!(far.remaining_secs(i64::MIN), i64::MAX as u64);
}

#[test]
fn get_links_serve_head_but_head_links_never_serve_get() {
    assert!(MethodClass::Get.allows("GET"));
    assert!(MethodClass::Get.allows("HEAD"));
    assert!(!MethodClass::Get.allows("POST"));
    assert!(!MethodClass::Get.allows("get"));
    assert!(MethodClass::HeadOnly.allows("HEAD"));
    assert!(!MethodClass::HeadOnly.allows("GET"));
    // And the class is signed: turning a HEAD link into a GET link breaks the MAC.
    let mut c = plain();
    c.method = MethodClass::HeadOnly;
    let (mut raw, n) = parts(&link(&c, "m"));
    assert_eq!(raw[1], 2);
    raw[1] = 1;
    refused(&assemble(&raw, &n));
}
