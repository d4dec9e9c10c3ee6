//! Property tests (proptest) over the pure parts: links and MediaHub signed URLs (a
//! mutation anywhere never verifies; sign then verify round-trips for any field values),
//! Content-Disposition (never CR, LF or an unbalanced quote), and the parsers of `ip`,
//! `Range`, `X-Forwarded-For`/`Forwarded`, object keys and archive names (never panic,
//! and what they accept stays in its canonical form).
//!
//! 256 cases per property; `FILEGATE_LONG_TESTS=1` runs 4096 (or `PROPTEST_CASES=N`).

mod common;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use filegate::api::downloads::parse_ip;
use filegate::archive::names;
use filegate::auth::signed_url;
use filegate::delivery::disposition::{content_disposition, Disposition};
use filegate::delivery::range::{self, RangeAnswer};
use filegate::files::object_key;
use filegate::fraud::client;
use filegate::links::{self, KeyRing, LinkClaims, MethodClass, SigningKey};
use proptest::prelude::*;

const NOW: i64 = 1_767_225_600;

fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if common::long_tests() { 4096 } else { 256 });
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

fn ring() -> KeyRing {
    KeyRing::new([
        SigningKey::new(3, b"property key three"),
        SigningKey::new(9, b"property key nine"),
    ])
}

fn hex_id() -> impl Strategy<Value = String> {
    proptest::collection::vec(any::<u8>(), 12).prop_map(|b| filegate::ids::hex(&b))
}

fn ip() -> impl Strategy<Value = IpAddr> {
    prop_oneof![
        any::<u32>().prop_map(|n| IpAddr::V4(Ipv4Addr::from(n))),
        any::<u128>().prop_map(|n| IpAddr::V6(Ipv6Addr::from(n))),
        // IPv4-mapped IPv6 (`::ffff:a.b.c.d`), which must come out as the IPv4 address.
        any::<u32>().prop_map(|n| IpAddr::V6(Ipv4Addr::from(n).to_ipv6_mapped())),
    ]
}

/// Controls and bidirectional overrides: never in a name we show.
fn spoofing_char(c: char) -> bool {
    c.is_control() || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// Strings that mix path pieces with what must never pass: C0 and C1 controls, DEL,
/// bidirectional overrides, separators and dots (`any::<String>()` has no controls).
fn hostile_text() -> impl Strategy<Value = String> {
    r"[a-zé./\\:\x00-\x1f\x7f\u{80}-\u{9f}\u{202a}-\u{202e}\u{2066}-\u{2069}]{0,24}"
}

/// Any claims the format can carry.
fn claims() -> impl Strategy<Value = LinkClaims> {
    (
        hex_id(),
        proptest::option::of(".{0,40}"),
        any::<i64>(),
        NOW + 1..i64::MAX,
        proptest::option::of(ip()),
        any::<bool>(),
        proptest::option::of(".{0,40}"),
        any::<bool>(),
        proptest::option::of(any::<u32>()),
        proptest::option::of(hex_id()),
        any::<bool>(),
    )
        .prop_map(
            |(file_id, item, issued_at_ms, expires_at, ip, inline, tag, anti_fraud, max, app, head)| {
                LinkClaims {
                    file_id,
                    item,
                    issued_at_ms,
                    expires_at,
                    ip,
                    disposition: if inline {
                        Disposition::Inline
                    } else {
                        Disposition::Attachment
                    },
                    autograph_tag: tag,
                    anti_fraud,
                    max_parallel_downloads: max,
                    app_id: app,
                    method: if head {
                        MethodClass::HeadOnly
                    } else {
                        MethodClass::Get
                    },
                }
            },
        )
}

fn file_name() -> impl Strategy<Value = String> {
    ".{1,60}".prop_filter("not a dot segment", |n| n != "." && n != "..")
}

/// Up to four edits of a byte string: (position, kind, byte).
fn edits() -> impl Strategy<Value = Vec<(usize, u8, u8)>> {
    proptest::collection::vec((any::<usize>(), 0u8..3, any::<u8>()), 1..5)
}

fn apply(original: &[u8], edits: &[(usize, u8, u8)]) -> Vec<u8> {
    let mut m = original.to_vec();
    for &(pos, kind, byte) in edits {
        match kind {
            0 if !m.is_empty() => {
                let i = pos % m.len();
                m[i] = if m[i] == byte { byte.wrapping_add(1) } else { byte };
            }
            1 => {
                let i = pos % (m.len() + 1);
                m.insert(i, byte);
            }
            _ if !m.is_empty() => {
                let i = pos % m.len();
                m.remove(i);
            }
            _ => {}
        }
    }
    m
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn sign_then_verify_round_trips_for_any_claims_and_name(c in claims(), name in file_name()) {
        let ring = ring();
        let link = links::sign(&c, &name, ring.current().unwrap()).unwrap();
        let v = links::verify(&link, &ring, NOW).unwrap();
        prop_assert_eq!(&v.claims, &c);
        prop_assert_eq!(&v.name, &name);
        prop_assert_eq!(v.key_id, 9);
        prop_assert!(!link.contains('?') && !link.contains('#'));
        prop_assert!(link.rsplit('/').next().unwrap().bytes().all(|b| b.is_ascii_graphic()));
    }

    #[test]
    fn a_link_mutated_anywhere_never_verifies(c in claims(), name in file_name(), e in edits()) {
        let ring = ring();
        let link = links::sign(&c, &name, ring.current().unwrap()).unwrap();
        let m = apply(link.as_bytes(), &e);
        let mutated = String::from_utf8_lossy(&m);
        if mutated != link {
            prop_assert!(links::verify(&mutated, &ring, NOW).is_err(), "{} verified", mutated);
        }
    }

    #[test]
    fn a_link_under_another_key_never_verifies(c in claims(), name in file_name()) {
        let other = KeyRing::new([SigningKey::new(9, b"not the key nine")]);
        let link = links::sign(&c, &name, other.current().unwrap()).unwrap();
        prop_assert!(links::verify(&link, &ring(), NOW).is_err());
    }

    #[test]
    fn signed_urls_round_trip_and_any_mutation_is_refused(
        query in "[a-z_]{1,8}=[A-Za-z0-9._~-]{0,12}(&[a-z_]{1,8}=[A-Za-z0-9._~-]{0,12}){0,3}",
        client_id in hex_id(),
        secret in proptest::collection::vec(any::<u8>(), 1..64),
        expiry in NOW + 1..NOW + 100_000_000,
        single_use in any::<bool>(),
        e in edits(),
    ) {
        prop_assume!(!query.split('&').any(|p| p.starts_with("signature=")
            || p.starts_with("client_id=") || p.starts_with("expiry_time=") || p.starts_with("multi_use=")));
        let url = signed_url::sign_url(&format!("/v1/files/downloads/?{query}"), &client_id, &secret, expiry, single_use);
        let p = signed_url::parse(&url).unwrap();
        prop_assert_eq!(&p.client_id, &client_id);
        prop_assert_eq!(p.expiry_time, expiry);
        prop_assert_eq!(p.multi_use, !single_use);
        prop_assert_eq!(signed_url::verify(&p, &secret, NOW), Ok(()));

        let m = apply(url.as_bytes(), &e);
        let mutated = String::from_utf8_lossy(&m);
        if mutated != url {
            let ok = signed_url::parse(&mutated)
                .map(|p| signed_url::verify(&p, &secret, NOW).is_ok())
                .unwrap_or(false);
            prop_assert!(!ok, "{} verified", mutated);
        }
    }

    #[test]
    fn content_disposition_never_breaks_out_of_its_header(name in prop_oneof![any::<String>(), hostile_text()], inline in any::<bool>()) {
        let d = if inline { Disposition::Inline } else { Disposition::Attachment };
        let v = content_disposition(d, &name);
        prop_assert!(!v.contains('\r') && !v.contains('\n'), "{:?}", v);
        prop_assert!(v.bytes().all(|b| (0x20..0x7f).contains(&b)), "not visible ASCII: {:?}", v);
        prop_assert_eq!(v.matches('"').count(), 2, "{:?}", v);
        prop_assert!(actix_web::http::header::HeaderValue::from_str(&v).is_ok());
        let star = v.split("filename*=UTF-8''").nth(1).unwrap();
        let decoded = percent_encoding::percent_decode_str(star).decode_utf8().unwrap();
        prop_assert_eq!(decoded, if name.is_empty() { "download" } else { name.as_str() });
    }

    #[test]
    fn content_disposition_of_hostile_names(name in r#"[\r\n"\\%; =a-zé\x00\x7f]{0,30}"#) {
        let v = content_disposition(Disposition::Attachment, &name);
        prop_assert!(!v.contains('\r') && !v.contains('\n') && !v.contains('\0'));
        prop_assert_eq!(v.matches('"').count(), 2, "{:?}", v);
    }

    #[test]
    fn the_ip_parameter_never_panics_and_its_answers_are_fixed_points(s in prop_oneof![any::<String>(), "[0-9a-fA-F:.]{0,45}", ip().prop_map(|a| a.to_string())]) {
        if let Ok(ip) = parse_ip(&s) {
            prop_assert_eq!(parse_ip(&ip.to_string()).unwrap(), ip);
            prop_assert_eq!(client::canonical(ip), ip);
        }
    }

    #[test]
    fn the_ip_parameter_reads_every_32_bit_integer_and_address(n in any::<u32>(), a in ip()) {
        prop_assert_eq!(parse_ip(&n.to_string()).unwrap(), IpAddr::V4(Ipv4Addr::from(n)));
        prop_assert_eq!(parse_ip(&a.to_string()).unwrap(), client::canonical(a));
        prop_assert!(parse_ip(&(u64::from(u32::MAX) + 1 + u64::from(n)).to_string()).is_err());
    }

    #[test]
    fn range_answers_stay_inside_the_file(
        specs in proptest::collection::vec((proptest::option::of(0u64..5000), proptest::option::of(0u64..5000)), 1..20),
        len in 0u64..4000,
    ) {
        let set: Vec<String> = specs.iter().map(|(a, b)| format!(
            "{}-{}", a.map(|a| a.to_string()).unwrap_or_default(), b.map(|b| b.to_string()).unwrap_or_default()
        )).collect();
        let value = format!("bytes={}", set.join(","));
        let mut data = len.to_be_bytes().to_vec();
        data.extend_from_slice(value.as_bytes());
        filegate::fuzz::range(&data); // the invariants, shared with the fuzz target
        // A single well-formed range is answered exactly as RFC 9110 computes it.
        if let [(Some(a), b)] = specs.as_slice() {
            if b.is_none_or(|b| b >= *a) && len > 0 {
                let want = if *a < len {
                    RangeAnswer::Partial(range::ByteRange { start: *a, end: b.map_or(len - 1, |b| b.min(len - 1)) })
                } else {
                    RangeAnswer::Unsatisfiable
                };
                prop_assert_eq!(range::parse(&value, len), want);
            }
        }
    }

    #[test]
    fn range_parser_never_panics_on_any_header(value in any::<String>(), len in any::<u64>()) {
        let mut data = len.to_be_bytes().to_vec();
        data.extend_from_slice(value.as_bytes());
        filegate::fuzz::range(&data);
    }

    #[test]
    fn forwarding_headers_yield_the_right_most_untrusted_hop(
        chain in proptest::collection::vec((ip(), any::<bool>()), 0..6),
        peer_trusted in any::<bool>(),
        forwarded in any::<bool>(),
    ) {
        use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue};
        let trusted: Vec<ipnet::IpNet> = vec!["10.0.0.0/8".parse().unwrap(), "fd00::/8".parse().unwrap()];
        // A hop flagged `true` is moved into a trusted range.
        let hops: Vec<IpAddr> = chain.iter().map(|(a, t)| match (a, t) {
            (IpAddr::V4(v), true) => IpAddr::V4(Ipv4Addr::new(10, v.octets()[1], v.octets()[2], v.octets()[3])),
            (IpAddr::V6(v), true) => { let mut o = v.octets(); o[0] = 0xfd; IpAddr::V6(Ipv6Addr::from(o)) }
            (a, false) => client::canonical(*a),
        }).map(client::canonical).collect();
        let peer: IpAddr = if peer_trusted { "10.0.0.1".parse().unwrap() } else { "198.51.100.1".parse().unwrap() };
        let mut headers = HeaderMap::new();
        if !hops.is_empty() {
            let (name, value) = if forwarded {
                ("forwarded", hops.iter().map(|h| match h {
                    IpAddr::V6(v) => format!("for=\"[{v}]:443\""),
                    v4 => format!("for={v4}"),
                }).collect::<Vec<_>>().join(", "))
            } else {
                ("x-forwarded-for", hops.iter().map(|h| h.to_string()).collect::<Vec<_>>().join(", "))
            };
            headers.insert(HeaderName::from_static(name), HeaderValue::from_str(&value).unwrap());
        }
        let got = client::resolve(peer, &headers, &trusted);
        let want = if !peer_trusted {
            peer
        } else {
            hops.iter().rev().find(|h| !client::is_trusted(**h, &trusted)).copied()
                .or_else(|| hops.first().copied())
                .unwrap_or(peer)
        };
        prop_assert_eq!(got.addr, want);
        prop_assert_eq!(got.proxied, !hops.is_empty() && !peer_trusted
            || peer_trusted && hops.iter().rposition(|h| !client::is_trusted(*h, &trusted)).is_some_and(|i| i > 0));
    }

    #[test]
    fn forwarding_header_garbage_never_panics_nor_moves_an_untrusted_peer(data in proptest::collection::vec(any::<u8>(), 0..300)) {
        filegate::fuzz::client_addr(&data);
    }

    #[test]
    fn proxy_nodes_parse_to_a_canonical_form(a in ip(), port in any::<u16>(), s in any::<String>()) {
        prop_assert_eq!(client::parse_node(&a.to_string()), Some(a));
        let with_port = match a { IpAddr::V6(v) => format!("[{v}]:{port}"), v4 => format!("{v4}:{port}") };
        prop_assert_eq!(client::parse_node(&with_port), Some(a));
        prop_assert_eq!(client::parse_node(&format!("\"{with_port}\"")), Some(a));
        if let Some(ip) = client::parse_node(&s) {
            prop_assert_eq!(client::parse_node(&ip.to_string()), Some(ip));
        }
    }

    #[test]
    fn object_keys_accepted_are_relative_and_clean(key in prop_oneof![any::<String>(), hostile_text()]) {
        if object_key::validate(&key).is_ok() {
            prop_assert!(!key.is_empty() && key.len() <= object_key::MAX_LEN);
            prop_assert!(!key.starts_with('/') && !key.starts_with('\\'));
            prop_assert!(!key.chars().any(char::is_control));
            prop_assert!(!key.split(['/', '\\']).any(|s| s == ".."));
        }
    }

    #[test]
    fn object_keys_built_from_path_pieces(parts in proptest::collection::vec(r"[a-z.é\\]{0,5}|\.\.", 1..6), lead in "/?") {
        let key = format!("{lead}{}", parts.join("/"));
        let ok = !key.is_empty() && !key.starts_with('/') && !key.starts_with('\\')
            && !key.split(['/', '\\']).any(|s| s == "..");
        prop_assert_eq!(object_key::validate(&key).is_ok(), ok, "{:?}", key);
    }

    #[test]
    fn archive_names_clean_to_a_fixed_point(raw in prop_oneof![any::<String>(), hostile_text()]) {
        if let Some(n) = names::clean(&raw) {
            prop_assert_eq!(names::clean(&n), Some(n.clone()));
            prop_assert!(!n.is_empty() && n.len() <= names::MAX_NAME_BYTES);
            prop_assert!(!n.starts_with('/') && !n.contains('\\') && !n.contains("//"));
            prop_assert!(!n.split('/').any(|c| c == ".." || c == "." || c.is_empty()));
            prop_assert!(!n.chars().any(spoofing_char), "{:?}", n);
        }
    }

    #[test]
    fn archive_names_from_path_pieces(parts in proptest::collection::vec(r"([a-z]{1,3}|\.|\.\.)?", 1..6), sep in r"[/\\]", lead in r"(/|[A-Za-z]:)?") {
        let raw = format!("{lead}{}", parts.join(&sep));
        let got = names::clean(&raw);
        if parts.iter().any(|p| p == "..") {
            prop_assert_eq!(got, None);
        } else {
            let want: Vec<&str> = parts.iter().map(String::as_str).filter(|p| !p.is_empty() && *p != ".").collect();
            let want = want.join("/");
            prop_assert_eq!(got, (!want.is_empty()).then_some(want));
        }
    }
}
