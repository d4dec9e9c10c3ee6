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
    resolve(peer, headers, trusted).addr
}

/// Headers that proxies add (or that clients add to look like one). `anti_fraud` links
/// refuse a request that carries any of them from an untrusted peer.
pub const PROXY_HEADERS: &[&str] = &[
    "via",
    "forwarded",
    "x-forwarded-for",
    "x-forwarded-host",
    "x-forwarded-proto",
    "x-forwarded-server",
    "x-forwarded",
    "forwarded-for",
    "x-real-ip",
    "x-client-ip",
    "client-ip",
    "x-originating-ip",
    "x-remote-ip",
    "x-remote-addr",
    "x-cluster-client-ip",
    "x-proxyuser-ip",
    "true-client-ip",
    "cf-connecting-ip",
    "fastly-client-ip",
    "x-bluecoat-via",
    "proxy-connection",
];

/// Who the client is, and whether it came through a proxy of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Client {
    /// The address every policy uses (see [`client_addr`]).
    pub addr: IpAddr,
    /// The request shows a proxy that is not ours: from an untrusted peer, any of
    /// [`PROXY_HEADERS`]; behind a trusted proxy, hops written *before* the client
    /// address (the client, or something in front of it, added them), or a hop that
    /// is not an address at all (we cannot tell who the client is).
    pub proxied: bool,
}

/// The client address of a request from `peer` carrying `headers`, and whether it
/// shows a proxy that is not one of `trusted`.
pub fn resolve(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> Client {
    let peer = canonical(peer);
    if trusted.is_empty() || !is_trusted(peer, trusted) {
        // One pass over the request's few headers (names are lower case already).
        let proxied = headers.keys().any(|k| PROXY_HEADERS.contains(&k.as_str()));
        return Client { addr: peer, proxied };
    }
    let hops = forwarded_for(headers);
    let mut current = peer;
    for (i, hop) in hops.iter().enumerate().rev() {
        match hop {
            Some(ip) => {
                current = canonical(*ip);
                if !is_trusted(current, trusted) {
                    return Client {
                        addr: current,
                        proxied: i > 0,
                    };
                }
            }
            None => {
                return Client {
                    addr: current,
                    proxied: true,
                }
            }
        }
    }
    Client {
        addr: current,
        proxied: false,
    }
}

/// The network that counts as "the same client" as `ip`: `ip` cut to `v4` bits for
/// IPv4, `v6` bits for IPv6 (a phone moving inside its carrier's /64 stays one client).
pub fn same_client_net(ip: IpAddr, v4: u32, v6: u32) -> IpNet {
    let ip = canonical(ip);
    let len = if ip.is_ipv4() { v4.min(32) } else { v6.min(128) } as u8;
    IpNet::new(ip, len)
        .map(|n| n.trunc())
        .unwrap_or_else(|_| IpNet::from(ip))
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
    // `[v6]` without a port (RFC 7239 quotes it so); the closing bracket is required.
    let (inner, rest) = s.strip_prefix('[')?.split_once(']')?;
    if !rest.is_empty() {
        return None;
    }
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
    fn a_chain_of_trusted_proxies_is_walked_to_the_first_untrusted_hop() {
        let t = nets(&["10.0.0.0/8", "2001:db8:ffff::/48"]);
        // client → CDN edge (untrusted, so it *is* the client for us) → LB → nginx → us
        let hd = h(&[("x-forwarded-for", "203.0.113.5, 198.51.100.7, 10.1.1.1, 10.2.2.2")]);
        let c = resolve(ip("10.0.0.1"), &hd, &t);
        assert_eq!(c.addr, ip("198.51.100.7"));
        assert!(c.proxied, "203.0.113.5 was written before the client address");
        // Every hop trusted: the left-most one is all we know.
        let hd = h(&[("x-forwarded-for", "10.9.9.9, 10.2.2.2")]);
        assert_eq!(
            resolve(ip("10.0.0.1"), &hd, &t),
            Client {
                addr: ip("10.9.9.9"),
                proxied: false
            }
        );
        // IPv6 proxies, IPv6 client, mixed families in one chain.
        let hd = h(&[("x-forwarded-for", "2001:db8:1::5, 2001:db8:ffff::2")]);
        let c = resolve(ip("2001:db8:ffff::1"), &hd, &t);
        assert_eq!(
            c,
            Client {
                addr: ip("2001:db8:1::5"),
                proxied: false
            }
        );
        let hd = h(&[("forwarded", "for=192.0.2.8, for=\"[2001:db8:ffff::9]\"")]);
        assert_eq!(resolve(ip("10.0.0.1"), &hd, &t).addr, ip("192.0.2.8"));
    }

    #[test]
    fn garbage_from_a_trusted_proxy_marks_the_request_proxied() {
        let t = nets(&["10.0.0.0/8"]);
        for garbage in ["banana", "", "1.2.3.4.5", "999.1.1.1", "for=1.2.3.4", "[::1"] {
            let hd = h(&[("x-forwarded-for", garbage)]);
            let c = resolve(ip("10.0.0.1"), &hd, &t);
            assert_eq!(c.addr, ip("10.0.0.1"), "{garbage:?}");
            assert!(c.proxied, "{garbage:?}");
        }
        let hd = h(&[("forwarded", "for=_hidden;proto=https")]);
        assert!(resolve(ip("10.0.0.1"), &hd, &t).proxied);
        // Garbage left of a good client hop changes nothing about the address.
        let hd = h(&[("x-forwarded-for", "banana, 198.51.100.7")]);
        let c = resolve(ip("10.0.0.1"), &hd, &t);
        assert_eq!((c.addr, c.proxied), (ip("198.51.100.7"), true));
        // Headers that are not even UTF-8 are garbage too.
        let mut m = HeaderMap::new();
        m.append(
            HeaderName::from_static("x-forwarded-for"),
            HeaderValue::from_bytes(b"\xff\xfe").unwrap(),
        );
        assert_eq!(client_addr(ip("10.0.0.1"), &m, &t), ip("10.0.0.1"));
        assert_eq!(client_addr(ip("192.0.2.1"), &m, &t), ip("192.0.2.1"));
    }

    #[test]
    fn proxy_headers_from_an_untrusted_peer_are_noticed_but_never_believed() {
        let t = nets(&["10.0.0.0/8"]);
        for name in [
            "via",
            "forwarded",
            "x-forwarded-for",
            "x-real-ip",
            "client-ip",
            "true-client-ip",
        ] {
            let hd = h(&[(name, "1.1 squid, for=6.6.6.6, 6.6.6.6")]);
            let c = resolve(ip("203.0.113.9"), &hd, &t);
            assert_eq!((c.addr, c.proxied), (ip("203.0.113.9"), true), "{name}");
            let c = resolve(ip("203.0.113.9"), &hd, &[]);
            assert_eq!(
                (c.addr, c.proxied),
                (ip("203.0.113.9"), true),
                "{name}, no proxies configured"
            );
        }
        let plain = h(&[("user-agent", "curl/8"), ("accept", "*/*")]);
        assert!(!resolve(ip("203.0.113.9"), &plain, &t).proxied);
        // A trusted proxy writing only the client itself is no sign of another proxy.
        let hd = h(&[("x-forwarded-for", "198.51.100.7"), ("via", "1.1 nginx")]);
        assert!(!resolve(ip("10.0.0.1"), &hd, &t).proxied);
        // A mapped IPv6 peer is trusted as the IPv4 address it carries.
        assert_eq!(resolve(ip("::ffff:10.0.0.1"), &hd, &t).addr, ip("198.51.100.7"));
    }

    #[test]
    fn same_client_is_a_prefix_of_the_address() {
        assert_eq!(
            same_client_net(ip("192.0.2.77"), 32, 64).to_string(),
            "192.0.2.77/32"
        );
        assert_eq!(
            same_client_net(ip("192.0.2.77"), 24, 64).to_string(),
            "192.0.2.0/24"
        );
        assert_eq!(
            same_client_net(ip("::ffff:192.0.2.77"), 24, 64).to_string(),
            "192.0.2.0/24"
        );
        assert_eq!(
            same_client_net(ip("2001:db8:1:2:3:4:5:6"), 32, 64).to_string(),
            "2001:db8:1:2::/64"
        );
        assert_eq!(
            same_client_net(ip("2001:db8::1"), 32, 200).to_string(),
            "2001:db8::1/128"
        );
        assert_eq!(same_client_net(ip("10.1.2.3"), 0, 64).to_string(), "0.0.0.0/0");
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
