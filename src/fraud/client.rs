//! The client's address and the public origin of a request, believing forwarding
//! headers only from `server.trusted_proxies` (SPEC §5, §8). Pure: no I/O.
//!
//! The client is the TCP peer, unless the peer is a trusted proxy; then it is the
//! right-most address of `Forwarded` (RFC 7239 `for=`) or, when that header is absent,
//! `X-Forwarded-For`, that is not itself trusted. A malformed or obfuscated entry stops
//! the walk: the last address known for certain (a trusted proxy) is used instead, so
//! garbage can never make us believe an address a proxy did not write.
//! IPv4-mapped IPv6 addresses (`::ffff:a.b.c.d`) are the IPv4 address.

use std::net::{IpAddr, SocketAddr};

use actix_web::http::header::HeaderMap;
use ipnet::IpNet;

/// `::ffff:a.b.c.d` → `a.b.c.d`; anything else unchanged.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

pub fn is_trusted(ip: IpAddr, trusted: &[IpNet]) -> bool {
    trusted.iter().any(|n| n.contains(&ip))
}

/// The client address of a request from `peer` carrying `headers`.
pub fn client_addr(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
    let peer = canonical(peer);
    if trusted.is_empty() || !is_trusted(peer, trusted) {
        return peer;
    }
    let hops = forwarded_for(headers);
    let mut current = peer;
    for hop in hops.iter().rev() {
        match hop {
            Some(ip) => {
                current = canonical(*ip);
                if !is_trusted(current, trusted) {
                    return current;
                }
            }
            None => return current,
        }
    }
    current
}

/// The `for` chain in order (left = farthest), `None` for entries that are not addresses.
fn forwarded_for(headers: &HeaderMap) -> Vec<Option<IpAddr>> {
    let forwarded: Vec<&str> = headers
        .get_all("forwarded")
        .filter_map(|v| v.to_str().ok())
        .collect();
    if !forwarded.is_empty() {
        let mut out = Vec::new();
        for line in forwarded {
            for element in line.split(',') {
                let for_value = element
                    .split(';')
                    .filter_map(|pair| pair.split_once('='))
                    .find(|(k, _)| k.trim().eq_ignore_ascii_case("for"))
                    .map(|(_, v)| v.trim());
                out.push(for_value.and_then(parse_node));
            }
        }
        return out;
    }
    let mut out = Vec::new();
    for line in headers.get_all("x-forwarded-for") {
        let Ok(line) = line.to_str() else {
            out.push(None);
            continue;
        };
        for entry in line.split(',') {
            out.push(parse_node(entry.trim()));
        }
    }
    out
}

/// An address as proxies write it: `1.2.3.4`, `1.2.3.4:80`, `2001:db8::1`,
/// `[2001:db8::1]:80`, optionally in double quotes. `unknown` and `_obfuscated` → None.
pub fn parse_node(s: &str) -> Option<IpAddr> {
    let s = s.trim();
    let s = s.strip_prefix('"').and_then(|x| x.strip_suffix('"')).unwrap_or(s);
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Ok(sa) = s.parse::<SocketAddr>() {
        return Some(sa.ip());
    }
    let inner = s.strip_prefix('[')?.split(']').next()?;
    inner.parse::<std::net::Ipv6Addr>().ok().map(IpAddr::V6)
}

/// Scheme and host of the request as its client sent it: `X-Forwarded-Proto`/
/// `X-Forwarded-Host` (or `Forwarded: proto=…;host=…`) only from a trusted peer, the
/// value closest to us (right-most) winning; otherwise `http` and the `Host` header.
pub fn origin(peer: Option<IpAddr>, headers: &HeaderMap, host: &str, trusted: &[IpNet]) -> (String, String) {
    let mut scheme = "http".to_string();
    let mut host = host.to_string();
    if peer.map(canonical).is_some_and(|p| is_trusted(p, trusted)) {
        let last = |name: &str| -> Option<String> {
            headers
                .get_all(name)
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(','))
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
                .last()
        };
        let mut fwd_proto = last("x-forwarded-proto");
        let mut fwd_host = last("x-forwarded-host");
        for line in headers.get_all("forwarded").filter_map(|v| v.to_str().ok()) {
            for element in line.split(',') {
                for (k, v) in element.split(';').filter_map(|p| p.split_once('=')) {
                    let v = v.trim().trim_matches('"').to_string();
                    match k.trim().to_ascii_lowercase().as_str() {
                        "proto" => fwd_proto = Some(v),
                        "host" => fwd_host = Some(v),
                        _ => {}
                    }
                }
            }
        }
        if let Some(p) = fwd_proto
            .map(|p| p.to_ascii_lowercase())
            .filter(|p| p == "http" || p == "https")
        {
            scheme = p;
        }
        if let Some(h) = fwd_host.filter(|h| valid_host(h)) {
            host = h;
        }
    }
    if !valid_host(&host) {
        host = "localhost".into();
    }
    (scheme, host)
}

/// A host[:port] we are willing to put into URLs we hand out.
pub fn valid_host(h: &str) -> bool {
    !h.is_empty()
        && h.len() <= 255
        && h.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']' | b'_'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::header::{HeaderName, HeaderValue};

    fn h(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut m = HeaderMap::new();
        for (k, v) in pairs {
            m.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        m
    }
    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }
    fn nets(s: &[&str]) -> Vec<IpNet> {
        s.iter().map(|x| x.parse().unwrap()).collect()
    }

    #[test]
    fn untrusted_peer_headers_change_nothing() {
        let t = nets(&["10.0.0.0/8"]);
        let hd = h(&[("x-forwarded-for", "1.1.1.1"), ("forwarded", "for=2.2.2.2")]);
        assert_eq!(client_addr(ip("203.0.113.9"), &hd, &t), ip("203.0.113.9"));
        assert_eq!(client_addr(ip("203.0.113.9"), &hd, &[]), ip("203.0.113.9"));
    }

    #[test]
    fn trusted_peer_gives_rightmost_untrusted_hop() {
        let t = nets(&["10.0.0.0/8"]);
        let hd = h(&[("x-forwarded-for", "6.6.6.6, 198.51.100.7, 10.0.0.3")]);
        assert_eq!(
            client_addr(ip("10.0.0.1"), &hd, &t),
            ip("198.51.100.7"),
            "spoofed left entry ignored"
        );
        let hd = h(&[
            ("x-forwarded-for", "6.6.6.6"),
            ("x-forwarded-for", "198.51.100.7:5555"),
        ]);
        assert_eq!(client_addr(ip("10.0.0.1"), &hd, &t), ip("198.51.100.7"));
    }

    #[test]
    fn forwarded_wins_over_x_forwarded_for_and_handles_ipv6_and_quotes() {
        let t = nets(&["10.0.0.0/8", "::1/128"]);
        let hd = h(&[
            (
                "forwarded",
                "for=192.0.2.60;proto=https, for=\"[2001:db8:cafe::17]:4711\"",
            ),
            ("x-forwarded-for", "9.9.9.9"),
        ]);
        assert_eq!(client_addr(ip("::1"), &hd, &t), ip("2001:db8:cafe::17"));
    }

    #[test]
    fn garbage_or_obfuscated_hops_stop_at_the_last_trusted_address() {
        let t = nets(&["10.0.0.0/8"]);
        let hd = h(&[("x-forwarded-for", "198.51.100.7, banana, 10.0.0.3")]);
        assert_eq!(client_addr(ip("10.0.0.1"), &hd, &t), ip("10.0.0.3"));
        let hd = h(&[("forwarded", "for=unknown")]);
        assert_eq!(client_addr(ip("10.0.0.1"), &hd, &t), ip("10.0.0.1"));
        let hd = h(&[]);
        assert_eq!(client_addr(ip("10.0.0.1"), &hd, &t), ip("10.0.0.1"));
    }

    #[test]
    fn ipv4_mapped_ipv6_is_ipv4() {
        let t = nets(&["10.0.0.0/8"]);
        assert_eq!(
            client_addr(
                ip("::ffff:10.0.0.1"),
                &h(&[("x-forwarded-for", "::ffff:192.0.2.1")]),
                &t
            ),
            ip("192.0.2.1")
        );
        assert_eq!(canonical(ip("::ffff:1.2.3.4")), ip("1.2.3.4"));
    }

    #[test]
    fn origin_believes_forwarded_proto_and_host_only_from_trusted_peers() {
        let t = nets(&["127.0.0.1/32"]);
        let hd = h(&[
            ("x-forwarded-proto", "https"),
            ("x-forwarded-host", "files.example.com"),
        ]);
        assert_eq!(
            origin(Some(ip("127.0.0.1")), &hd, "127.0.0.1:8080", &t),
            ("https".into(), "files.example.com".into())
        );
        assert_eq!(
            origin(Some(ip("192.0.2.1")), &hd, "127.0.0.1:8080", &t),
            ("http".into(), "127.0.0.1:8080".into())
        );
        let bad = h(&[("x-forwarded-host", "evil.com/\"><script>")]);
        assert_eq!(origin(Some(ip("127.0.0.1")), &bad, "a:1", &t).1, "a:1");
        assert_eq!(origin(None, &h(&[]), "bad host", &t).1, "localhost");
    }
}
