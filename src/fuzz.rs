//! Entry points of the fuzz targets (`fuzz/`), also replayed over the committed corpus
//! by `tests/fuzz_corpus.rs`: each takes arbitrary bytes, runs one parser or verifier on
//! them and panics only when an invariant breaks (never on bad input itself).
//!
//! Not part of the API: the functions exist so that a finding of the fuzzer and its
//! regression test run exactly the same code.

use std::io::Write;
use std::net::IpAddr;

use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue};

use crate::archive::{self, names, Format, Limits};
use crate::auth::signed_url;
use crate::delivery::range::{self, RangeAnswer};
use crate::fraud::client;
use crate::links::{self, Disposition, KeyRing, LinkClaims, MethodClass, SigningKey};

/// A fuzz target: arbitrary bytes in, a panic when an invariant breaks.
pub type Target = fn(&[u8]);

/// The targets, by the name of their directory under `fuzz/corpus/`.
pub const TARGETS: &[(&str, Target)] = &[
    ("link_verify", link_verify),
    ("signed_url", signed_url),
    ("range", range),
    ("client_addr", client_addr),
    ("archive_index", archive_index),
];

/// "Now" for every target, seconds: 2026-01-01T00:00:00Z.
pub const NOW: i64 = 1_767_225_600;
const FILE: &str = "54820cec18bac397e161aebc";
const APP: &str = "65a1b2c3d4e5f60718293a4b";

fn ring() -> KeyRing {
    KeyRing::new([
        SigningKey::new(1, b"fuzz key one, thirty-two bytes.."),
        SigningKey::new(7, b"fuzz key seven, thirty-two bytes"),
    ])
}

/// A valid link with every optional field, for mutation.
pub fn sample_link() -> String {
    let claims = LinkClaims {
        file_id: FILE.into(),
        item: Some("dir/entry one.txt".into()),
        issued_at_ms: NOW * 1000,
        expires_at: NOW + 3600,
        ip: Some("192.0.2.7".parse().expect("literal address")),
        disposition: Disposition::Inline,
        autograph_tag: Some("tag-1".into()),
        anti_fraud: true,
        max_parallel_downloads: Some(2),
        app_id: Some(APP.into()),
        method: MethodClass::Get,
    };
    links::sign(&claims, "résumé 1.pdf", ring().current().expect("ring has keys")).expect("valid claims")
}

/// `edits` as (position, xor byte) pairs applied to `s`'s bytes.
fn mutate(s: &str, edits: &[u8]) -> Vec<u8> {
    let mut b = s.as_bytes().to_vec();
    for pair in edits.chunks_exact(2) {
        let i = pair[0] as usize % b.len();
        b[i] ^= pair[1];
    }
    b
}

/// The link verifier. First byte 0: the rest are edits of [`sample_link`], which must
/// verify iff the edits cancel out. Otherwise the bytes are a path as received. Either
/// way: no panic, and whatever verifies is exactly what `sign` makes of its claims
/// (one encoding per link: nothing else is accepted).
pub fn link_verify(data: &[u8]) {
    let ring = ring();
    let (path, original) = match data.split_first() {
        Some((0, edits)) => {
            let sample = sample_link();
            let m = mutate(&sample, edits);
            let same = m == sample.as_bytes();
            (String::from_utf8_lossy(&m).into_owned(), same.then_some(sample))
        }
        _ => (String::from_utf8_lossy(data).into_owned(), None),
    };
    let verified = links::verify(&path, &ring, NOW);
    if let Some(orig) = &original {
        assert!(verified.is_ok(), "the untouched sample link must verify: {orig}");
    }
    if let Ok(v) = verified {
        let key = ring.get(v.key_id).expect("verified under a key of the ring");
        let again = links::sign(&v.claims, &v.name, key).expect("verified claims sign");
        assert_eq!(again, path, "a link verified that sign() would not have made");
        assert!(v.claims.expires_at > NOW);
    }
}

const URL_KEY: &[u8] = b"client secret bytes, 32 of them.";

/// The MediaHub HMAC URL verifier. First byte 0: edits of a valid signed URL (must
/// verify iff unchanged). Otherwise a path and query as received. No panic; a URL that
/// verifies carries exactly the signature `sign` computes over its signed part.
pub fn signed_url(data: &[u8]) {
    let sample = signed_url::sign_url(
        "/v1/files/downloads/?file_id=54820cec18bac397e161aebc&redirect=true",
        APP,
        URL_KEY,
        NOW + 60,
        true,
    );
    let (path, original) = match data.split_first() {
        Some((0, edits)) => {
            let m = mutate(&sample, edits);
            let same = m == sample.as_bytes();
            (String::from_utf8_lossy(&m).into_owned(), same)
        }
        _ => (String::from_utf8_lossy(data).into_owned(), false),
    };
    let _ = signed_url::has_signature(&path);
    let parsed = signed_url::parse(&path);
    if original {
        let p = parsed.as_ref().expect("the sample signed URL parses");
        assert!(!p.multi_use);
        assert_eq!(signed_url::verify(p, URL_KEY, NOW), Ok(()));
    }
    if let Ok(p) = parsed {
        assert!(
            path.starts_with(p.signed),
            "the signed part is a prefix of the URL"
        );
        assert_eq!(p.signature.len(), 32);
        if signed_url::verify(&p, URL_KEY, NOW).is_ok() {
            assert_eq!(
                format!("{}&signature={}", p.signed, signed_url::sign(p.signed, URL_KEY)),
                path,
                "a URL verified that sign() would not have made"
            );
            assert!(p.expiry_time > NOW);
        }
    }
}

/// The `Range` parser: the first 8 bytes are the representation's length (big-endian,
/// kept below 2^40), the rest the header value. Every range answered lies inside the
/// representation, a multipart answer has 2..=MAX_RANGES parts that neither overlap
/// nor touch, and never adds up to more bytes than the file.
pub fn range(data: &[u8]) {
    let (len, value) = if data.len() >= 8 {
        let (a, b) = data.split_at(8);
        (u64::from_be_bytes(a.try_into().expect("8 bytes")) % (1 << 40), b)
    } else {
        (1000, data)
    };
    let value = String::from_utf8_lossy(value);
    let check = |answer: RangeAnswer| match answer {
        RangeAnswer::Full => {}
        RangeAnswer::Unsatisfiable => assert!(len > 0, "a zero-length file is always served whole"),
        RangeAnswer::Partial(r) => {
            assert!(r.start <= r.end && r.end < len, "{r:?} outside 0..{len}");
            assert_eq!(r.content_range(len), format!("bytes {}-{}/{len}", r.start, r.end));
        }
        RangeAnswer::Multipart(rs) => {
            assert!((2..=range::MAX_RANGES).contains(&rs.len()), "{} parts", rs.len());
            let mut sorted = rs.clone();
            sorted.sort_by_key(|r| r.start);
            for r in &rs {
                assert!(r.start <= r.end && r.end < len, "{r:?} outside 0..{len}");
            }
            for w in sorted.windows(2) {
                assert!(
                    w[1].start > w[0].end + 1,
                    "{:?} and {:?} overlap or touch",
                    w[0],
                    w[1]
                );
            }
            let total: u64 = rs.iter().map(|r| r.len()).sum();
            assert!(total <= len);
        }
    };
    check(range::parse(&value, len));
    check(range::evaluate(Some(&value), Some(&value), len, "\"e\"", NOW));
    let _ = range::if_range_holds(&value, "\"e\"", NOW);
}

/// The client-address resolver: the first byte picks the peer, the rest are header
/// lines `name: value`. The answer is the peer when the peer is not a trusted proxy
/// (whatever the headers say), and otherwise the peer or an address written in a
/// forwarding header. Every node the parser reads is in canonical form: printing and
/// parsing it again gives the same address.
pub fn client_addr(data: &[u8]) {
    let trusted: Vec<ipnet::IpNet> = ["10.0.0.0/8", "2001:db8::/32", "127.0.0.1/32"]
        .iter()
        .map(|s| s.parse().expect("literal CIDR"))
        .collect();
    let peers: [IpAddr; 4] = [
        "10.1.2.3".parse().expect("literal"),
        "203.0.113.9".parse().expect("literal"),
        "::ffff:10.9.9.9".parse().expect("literal"),
        "2001:db8::1".parse().expect("literal"),
    ];
    let (peer, rest) = match data.split_first() {
        Some((b, rest)) => (peers[*b as usize % peers.len()], rest),
        None => (peers[0], data),
    };
    let text = String::from_utf8_lossy(rest);
    let mut headers = HeaderMap::new();
    let mut written = Vec::new();
    for line in text.split('\n') {
        let node = client::parse_node(line);
        if let Some(ip) = node {
            assert_eq!(client::parse_node(&ip.to_string()), Some(ip), "{line:?}");
        }
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.trim().as_bytes()),
            HeaderValue::from_str(value.trim()),
        ) else {
            continue;
        };
        headers.append(name, value);
    }
    for (_, v) in headers.iter() {
        for piece in String::from_utf8_lossy(v.as_bytes()).split([',', ';', '=', ' ']) {
            let piece = piece.trim();
            for cand in [piece, piece.trim_start_matches("for").trim_start_matches('=')] {
                if let Some(ip) = client::parse_node(cand) {
                    written.push(client::canonical(ip));
                }
            }
        }
    }
    let got = client::resolve(peer, &headers, &trusted);
    let peer_c = client::canonical(peer);
    if !client::is_trusted(peer_c, &trusted) {
        assert_eq!(
            got.addr, peer_c,
            "a header from an untrusted peer changed the address"
        );
    } else {
        assert!(
            got.addr == peer_c || written.contains(&got.addr),
            "{:?} is neither the peer nor written in a header",
            got.addr
        );
    }
    assert_eq!(got.addr, client::canonical(got.addr), "not canonical");
    let (scheme, host) = client::origin(Some(peer), &headers, "files.example", &trusted);
    assert!(scheme == "http" || scheme == "https");
    assert!(client::valid_host(&host), "{host:?}");
}

/// The archive indexer over arbitrary bytes, as ZIP, TAR and gzip'd TAR, under small
/// caps: no panic, the caps hold, every listed name is clean (cleaning it again changes
/// nothing) and unique, and a stored entry lies inside the archive.
pub fn archive_index(data: &[u8]) {
    let Ok(file) = scratch_file(data) else {
        return; // no scratch space: nothing to test
    };
    let limits = Limits {
        max_entries: 64,
        max_total_size: 1 << 20,
        max_ratio: 250,
    };
    let len = data.len() as u64;
    let _ = archive::detect("x.zip", data);
    for format in [Format::Zip, Format::Tar, Format::TarGz] {
        let Ok(index) = archive::index(&file, len, format, &limits) else {
            continue;
        };
        assert!(index.entries.len() as u64 <= limits.max_entries);
        let mut seen = std::collections::HashSet::new();
        let mut total = 0u64;
        for e in &index.entries {
            assert_eq!(
                names::clean(&e.name).as_deref(),
                Some(e.name.as_str()),
                "unclean name"
            );
            assert!(seen.insert(e.name.clone()), "duplicate name {:?}", e.name);
            total = total.saturating_add(e.size);
            if e.method == archive::Method::Stored {
                assert!(
                    e.offset.saturating_add(e.size) <= len,
                    "stored entry past the end"
                );
            }
        }
        if format != Format::TarGz {
            assert!(total <= limits.max_total_size);
        }
    }
}

/// `data` in an unlinked file (the indexer reads a `File`).
fn scratch_file(data: &[u8]) -> std::io::Result<std::fs::File> {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let dir = if std::path::Path::new("/dev/shm").is_dir() {
        std::path::PathBuf::from("/dev/shm")
    } else {
        std::env::temp_dir()
    };
    let path = dir.join(format!(
        "filegate-fuzz-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&path)?;
    let _ = std::fs::remove_file(&path);
    f.write_all(data)?;
    Ok(f)
}
