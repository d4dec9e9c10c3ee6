//! Signing and verifying links, timed with `Instant` (no harness): `cargo bench --bench links`.

use std::hint::black_box;
use std::time::Instant;

use filegate::links::{self, Disposition, KeyRing, LinkClaims, SigningKey};

const N: u32 = 200_000;
const NOW: i64 = 1_767_225_600;

fn time(label: &str, mut f: impl FnMut(u32)) {
    for i in 0..N / 10 {
        f(i); // warm-up
    }
    let t = Instant::now();
    for i in 0..N {
        f(i);
    }
    let ns = t.elapsed().as_nanos() as f64 / f64::from(N);
    println!("{label:<40} {ns:>8.1} ns/op");
}

fn main() {
    let ring = KeyRing::new([SigningKey::new(1, &[1; 32]), SigningKey::new(2, &[2; 32])]);
    let key = ring.current().unwrap();
    let plain = LinkClaims::new("54820cec18bac397e161aebc", NOW * 1000, NOW + 3600);
    let mut full = plain.clone();
    full.ip = Some("192.168.2.1".parse().unwrap());
    full.disposition = Disposition::Inline;
    full.autograph_tag = Some("customer-4711".into());
    full.anti_fraud = true;
    full.max_parallel_downloads = Some(2);
    full.app_id = Some("65a1b2c3d4e5f60718293a4b".into());

    let plain_link = links::sign(&plain, "file-4k.bin", key).unwrap();
    let full_link = links::sign(&full, "Épisode 01.mp4", key).unwrap();
    let mut bad = plain_link.clone().into_bytes();
    let i = bad.len() - 20;
    bad[i] ^= 1;
    let bad = String::from_utf8(bad).unwrap();

    time("sign (plain)", |i| {
        black_box(links::sign(black_box(&plain), "file-4k.bin", key).unwrap());
        black_box(i);
    });
    time("verify (plain, 4k file name)", |_| {
        black_box(links::verify(black_box(&plain_link), &ring, NOW).unwrap());
    });
    time("verify (ip, tag, app, inline, UTF-8 name)", |_| {
        black_box(links::verify(black_box(&full_link), &ring, NOW).unwrap());
    });
    time("verify (tampered, refused)", |_| {
        black_box(links::verify(black_box(&bad), &ring, NOW).unwrap_err());
    });
    println!("plain link: {} bytes: {plain_link}", plain_link.len());
}
