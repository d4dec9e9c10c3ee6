//! The anti-fraud lookup cost per request with 100 000 ranges loaded, timed with
//! `Instant` (no harness): `cargo bench --bench fraud`.

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Instant;

use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue};
use filegate::fraud::client;
use filegate::fraud::lists::Sets;
use filegate::fraud::ranges::{bounds, RangeSet};
use ipnet::IpNet;

const RANGES: usize = 100_000;
const N: usize = 2_000_000;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// 90 % IPv4 /16–/32, 10 % IPv6 /32–/64.
fn nets(rng: &mut Rng) -> Vec<IpNet> {
    (0..RANGES)
        .map(|_| {
            let r = rng.next();
            if r.is_multiple_of(10) {
                let hi = u128::from(rng.next()) << 64;
                IpNet::new(IpAddr::V6(Ipv6Addr::from(hi)), 32 + (r % 33) as u8).unwrap()
            } else {
                IpNet::new(
                    IpAddr::V4(Ipv4Addr::from((r >> 16) as u32)),
                    16 + ((r >> 50) % 17) as u8,
                )
                .unwrap()
            }
        })
        .collect()
}

fn time(label: &str, n: usize, mut f: impl FnMut(usize)) {
    for i in 0..n / 10 {
        f(i); // warm-up
    }
    let t = Instant::now();
    for i in 0..n {
        f(i);
    }
    let ns = t.elapsed().as_nanos() as f64 / n as f64;
    println!("{label:<58} {ns:>9.1} ns/op");
}

fn main() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let list = nets(&mut rng);
    let t = Instant::now();
    let set = RangeSet::from_nets(&list);
    println!(
        "built a set of {RANGES} ranges ({} after merging) in {:.1} ms",
        set.len(),
        t.elapsed().as_secs_f64() * 1e3
    );
    let anon = RangeSet::from_nets(&nets(&mut rng));
    let sets = std::sync::Arc::new(Sets {
        blocklist: set.clone(),
        anonymizers: anon,
        generation: 1,
    });

    // Probes: random IPv4 and IPv6 addresses, and addresses known to be inside.
    let v4: Vec<IpAddr> = (0..4096)
        .map(|_| IpAddr::V4(Ipv4Addr::from(rng.next() as u32)))
        .collect();
    let v6: Vec<IpAddr> = (0..4096)
        .map(|_| {
            IpAddr::V6(Ipv6Addr::from(
                u128::from(rng.next()) << 64 | u128::from(rng.next()),
            ))
        })
        .collect();
    let inside: Vec<IpAddr> = list.iter().step_by(24).take(4096).map(|n| n.network()).collect();
    let hits = v4.iter().filter(|ip| set.contains(**ip)).count();
    println!("random IPv4 probes on the list: {hits} of {}", v4.len());

    time("RangeSet::contains, random IPv4 (100 000 ranges)", N, |i| {
        black_box(set.contains(black_box(v4[i & 4095])));
    });
    time("RangeSet::contains, random IPv6 (100 000 ranges)", N, |i| {
        black_box(set.contains(black_box(v6[i & 4095])));
    });
    time("RangeSet::contains, listed addresses (100 000 ranges)", N, |i| {
        black_box(set.contains(black_box(inside[i & 4095])));
    });

    // What an anti_fraud request pays for the lists: resolve the client (no proxy
    // headers, untrusted peer), clone the live sets' Arc, two lookups.
    let mut headers = HeaderMap::new();
    for (k, v) in [
        ("host", "files.example.com"),
        ("user-agent", "curl/8.5.0"),
        ("accept", "*/*"),
        ("range", "bytes=0-1023"),
    ] {
        headers.insert(HeaderName::from_static(k), HeaderValue::from_static(v));
    }
    let live = std::sync::RwLock::new(sets.clone());
    let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
    time(
        "per request: resolve + Arc clone + blocklist + anonymizers",
        N,
        |i| {
            let c = client::resolve(v4[i & 4095], &headers, &trusted);
            let s = live.read().unwrap().clone();
            black_box((
                c.proxied,
                s.blocklist.contains(c.addr),
                s.anonymizers.contains(c.addr),
            ));
        },
    );

    // For scale: the same question answered by scanning the 100 000 entries.
    let flat: Vec<(u128, u128)> = list.iter().map(bounds).collect();
    time("linear scan of the 100 000 entries (for comparison)", 2000, |i| {
        let p = filegate::fraud::ranges::point(v4[i & 4095]);
        black_box(flat.iter().any(|(lo, hi)| *lo <= p && p <= *hi));
    });
}
