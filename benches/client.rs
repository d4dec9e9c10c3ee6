//! Client-address resolution behind trusted proxies, timed with `Instant` (no harness):
//! `cargo bench --bench client`. (CIDR lookup at 100 000 ranges waits for the CIDR-list
//! module; there is none in this tree yet.)

use std::hint::black_box;
use std::net::IpAddr;
use std::time::Instant;

use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue};
use filegate::fraud::client::client_addr;
use ipnet::IpNet;

const N: u32 = 500_000;

fn time(label: &str, mut f: impl FnMut()) {
    for _ in 0..N / 10 {
        f(); // warm-up
    }
    let t = Instant::now();
    for _ in 0..N {
        f();
    }
    let ns = t.elapsed().as_nanos() as f64 / f64::from(N);
    println!("{label:<50} {ns:>8.1} ns/op");
}

fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        h.append(HeaderName::from_static(k), HeaderValue::from_static(v));
    }
    h
}

fn main() {
    let peer: IpAddr = "10.0.0.2".parse().unwrap();
    let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
    let none: Vec<IpNet> = Vec::new();
    let trusted: Vec<IpNet> = ["10.0.0.0/8", "192.168.0.0/16", "::1/128"]
        .iter()
        .map(|s| s.parse().unwrap())
        .collect();
    let empty = HeaderMap::new();
    let xff = headers(&[("x-forwarded-for", "203.0.113.9, 192.168.1.4, 10.0.0.7")]);
    let fwd = headers(&[(
        "forwarded",
        "for=203.0.113.9;proto=https, for=\"[2001:db8::1]:443\", for=192.168.1.4",
    )]);

    time("no trusted proxies (the TCP peer)", || {
        black_box(client_addr(black_box(peer), &empty, &none));
    });
    time("IPv4-mapped peer, no proxies", || {
        black_box(client_addr(black_box(mapped), &empty, &none));
    });
    time("trusted peer, X-Forwarded-For with 3 hops", || {
        black_box(client_addr(black_box(peer), &xff, &trusted));
    });
    time("trusted peer, Forwarded with 3 elements", || {
        black_box(client_addr(black_box(peer), &fwd, &trusted));
    });
}
