//! What storing an upload costs, per step, timed with `Instant` (no harness):
//! `cargo bench --bench ingest`. MiB/s of wall time and CPU seconds per GiB (all threads
//! of the process), over 256 MiB in 1 MiB batches: MD5 alone, SHA-256 alone, both in
//! turn on one thread (as before the MD5 helper), both with the helper, and the whole
//! ingest (write + hashes + background flushes + fsync) against a plain write + fsync.

use std::hint::black_box;
use std::io::Write;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use filegate::files::digest::{Hashes, StreamHashes};
use filegate::files::ingest::{Ingest, BATCH};
use filegate::store::Store;
use md5::Digest;

const TOTAL: usize = 256 << 20;

/// CPU seconds (user + system) the process has used, from /proc/self/stat.
fn cpu_s() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // Fields 14 and 15 of stat (utime, stime) are 12 and 13 after the command name.
    (ticks(11) + ticks(12)) / 100.0
}

fn time(label: &str, mut f: impl FnMut()) {
    f(); // warm-up (and page-cache / allocator state)
    let (c, t) = (cpu_s(), Instant::now());
    f();
    let (wall, cpu) = (t.elapsed().as_secs_f64(), cpu_s() - c);
    let gib = TOTAL as f64 / f64::from(1u32 << 30);
    println!(
        "{label:<44} {:>7.0} MiB/s {:>6.2} CPU s/GiB",
        TOTAL as f64 / wall / f64::from(1u32 << 20),
        cpu / gib
    );
}

fn main() {
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let data: Vec<Bytes> = (0..TOTAL / BATCH)
        .map(|_| {
            Bytes::from(
                (0..BATCH)
                    .map(|_| {
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        x as u8
                    })
                    .collect::<Vec<u8>>(),
            )
        })
        .collect();

    time("MD5 alone", || {
        let mut h = md5::Md5::new();
        data.iter().for_each(|b| h.update(b));
        black_box(h.finalize());
    });
    time("SHA-256 alone", || {
        let mut h = sha2::Sha256::new();
        data.iter().for_each(|b| h.update(b));
        black_box(h.finalize());
    });
    time("both, one thread (Hashes)", || {
        let mut h = Hashes::default();
        data.iter().for_each(|b| h.update(b));
        black_box(h.finish());
    });
    time("both, MD5 on a helper (StreamHashes)", || {
        let mut h = StreamHashes::default();
        data.iter()
            .for_each(|b| h.update(Arc::new(vec![b.clone()])).unwrap());
        black_box(h.finish().unwrap());
    });

    let dir = tempfile::tempdir_in(std::env::var_os("BENCH_DIR").unwrap_or_else(|| "target".into())).unwrap();
    let store = Store::open(dir.path()).unwrap();
    time("plain write + fsync (the cp + sync floor)", || {
        let mut t = store.create_temp().unwrap();
        data.iter().for_each(|b| t.write_all(b).unwrap());
        t.file().sync_all().unwrap();
    });
    time("ingest: write, hashes, flushes, fsync", || {
        let mut ing = Ingest::new(&store).unwrap();
        data.iter()
            .for_each(|b| ing.write_pieces(vec![b.clone()]).unwrap());
        black_box(ing.finish().unwrap().digests);
    });
}
