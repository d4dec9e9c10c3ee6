//! MD5 and SHA-256 computed while bytes stream past, and the digests a client may send.

use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use base64::Engine;
use bytes::Bytes;
use md5::Md5;
use sha2::{Digest, Sha256};

use crate::ids;

/// Both digests of a byte stream, and its length.
#[derive(Clone, Default)]
pub struct Hashes {
    md5: Md5,
    sha256: Sha256,
    size: u64,
}

impl Hashes {
    pub fn update(&mut self, buf: &[u8]) {
        self.md5.update(buf);
        self.sha256.update(buf);
        self.size += buf.len() as u64;
    }

    pub fn finish(self) -> Digests {
        Digests {
            size: self.size,
            md5: ids::hex(self.md5.finalize().as_slice()),
            sha256: ids::hex(self.sha256.finalize().as_slice()),
        }
    }
}

/// Both digests of a stream that arrives in large shared buffers (an upload's batches):
/// MD5 on a helper thread fed through a short queue, SHA-256 on the caller's thread.
///
/// MD5 is a chain no SIMD can split and the slowest step of storing an upload (~1.5 ms
/// per MiB here; SHA-256 with SHA-NI ~0.6 ms, the page-cache write ~0.35 ms). On its own
/// thread it runs while the caller writes and hashes with SHA-256, and with a batch or
/// two queued it never waits for the caller to come back, so the two cores share the
/// work instead of one doing it all in turn. The queue holds at most [`QUEUE`] batches
/// (memory stays flat: a slow MD5 blocks [`StreamHashes::update`], which holds back the
/// network). The helper is spawned at the first batch of [`HELPER_MIN`] bytes or more,
/// so a small upload hashes on the caller's thread; it sleeps while its upload stalls,
/// and ends when the hashes are finished or dropped. With [`MAX_HELPERS`] alive, or if
/// a thread cannot be spawned, MD5 runs on the caller's thread (same digests, slower).
pub struct StreamHashes {
    md5: Md5Side,
    sha256: Sha256,
    size: u64,
    limit: &'static HelperLimit,
}

/// Buffers queued for the MD5 helper, beyond the one it is hashing.
pub const QUEUE: usize = 2;
/// Smallest buffer that spawns the MD5 helper.
pub const HELPER_MIN: usize = 256 * 1024;
/// Most MD5 helpers alive at once. Past it, uploads hash MD5 on the writer's thread (the
/// machine's cores are busy by then anyway): many concurrent or stalled uploads cannot
/// make the process spawn threads without end.
pub const MAX_HELPERS: usize = 64;

/// A count of live MD5 helpers, with its maximum.
pub struct HelperLimit {
    live: AtomicUsize,
    max: usize,
}

impl HelperLimit {
    pub const fn new(max: usize) -> HelperLimit {
        HelperLimit {
            live: AtomicUsize::new(0),
            max,
        }
    }

    fn take(&'static self) -> Option<HelperSlot> {
        self.live
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.max).then_some(n + 1)
            })
            .ok()
            .map(|_| HelperSlot(self))
    }
}

/// The process's MD5 helpers.
static HELPERS: HelperLimit = HelperLimit::new(MAX_HELPERS);

/// A helper's place in its [`HelperLimit`], given back when dropped (with the helper's
/// closure: when the thread ends, or if it could not be spawned).
struct HelperSlot(&'static HelperLimit);

impl Drop for HelperSlot {
    fn drop(&mut self) {
        self.0.live.fetch_sub(1, Ordering::AcqRel);
    }
}

enum Md5Side {
    Here(Md5),
    Helper {
        tx: std::sync::mpsc::SyncSender<Batch>,
        done: std::thread::JoinHandle<Md5>,
    },
}

impl Default for StreamHashes {
    fn default() -> Self {
        StreamHashes::limited(&HELPERS)
    }
}

/// Consecutive pieces of a stream, shared by the writer and the hashes.
pub type Batch = Arc<Vec<Bytes>>;

/// The length of a batch.
pub fn batch_len(b: &[Bytes]) -> usize {
    b.iter().map(Bytes::len).sum()
}

impl StreamHashes {
    /// Hashes whose MD5 helper counts against `limit` (the process's: [`Default`]).
    pub fn limited(limit: &'static HelperLimit) -> StreamHashes {
        StreamHashes {
            md5: Md5Side::Here(Md5::default()),
            sha256: Sha256::default(),
            size: 0,
            limit,
        }
    }

    pub fn update(&mut self, batch: Batch) -> io::Result<()> {
        let len = batch_len(&batch);
        self.size += len as u64;
        if len >= HELPER_MIN {
            if let Md5Side::Here(md5) = &mut self.md5 {
                if let Some(helper) = spawn_md5(md5.clone(), self.limit) {
                    self.md5 = helper;
                }
            }
        }
        match &mut self.md5 {
            Md5Side::Here(md5) => batch.iter().for_each(|b| md5.update(b)),
            Md5Side::Helper { tx, .. } => tx.send(Arc::clone(&batch)).map_err(|_| helper_lost())?,
        }
        batch.iter().for_each(|b| self.sha256.update(b));
        Ok(())
    }

    /// Waits for the MD5 helper to hash what is queued.
    pub fn finish(self) -> io::Result<Digests> {
        let md5 = match self.md5 {
            Md5Side::Here(md5) => md5,
            Md5Side::Helper { tx, done } => {
                drop(tx);
                done.join().map_err(|_| helper_lost())?
            }
        };
        Ok(Digests {
            size: self.size,
            md5: ids::hex(md5.finalize().as_slice()),
            sha256: ids::hex(self.sha256.finalize().as_slice()),
        })
    }
}

fn spawn_md5(mut md5: Md5, limit: &'static HelperLimit) -> Option<Md5Side> {
    let slot = limit.take()?;
    let (tx, rx) = std::sync::mpsc::sync_channel::<Batch>(QUEUE);
    let done = std::thread::Builder::new()
        .name("filegate-md5".into())
        .spawn(move || {
            let _slot = slot;
            // Ends when the sender is dropped: finished, or the upload failed.
            for batch in rx {
                batch.iter().for_each(|b| md5.update(b));
            }
            md5
        })
        .ok()?;
    Some(Md5Side::Helper { tx, done })
}

fn helper_lost() -> io::Error {
    io::Error::other("the MD5 helper thread ended early")
}

/// Lowercase hex digests and the length of some content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Digests {
    pub size: u64,
    pub md5: String,
    pub sha256: String,
}

/// What the client says the data hashes to (`Content-MD5`, `X-Checksum-SHA256`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Expected {
    pub md5: Option<Vec<u8>>,
    pub sha256: Option<Vec<u8>>,
}

impl Expected {
    /// Parses the header values; `Err(header name)` for one that is not a digest.
    pub fn parse(md5: Option<&str>, sha256: Option<&str>) -> Result<Expected, &'static str> {
        Ok(Expected {
            md5: md5.map(|v| decode(v, 16).ok_or("Content-MD5")).transpose()?,
            sha256: sha256
                .map(|v| decode(v, 32).ok_or("X-Checksum-SHA256"))
                .transpose()?,
        })
    }

    pub fn is_empty(&self) -> bool {
        self.md5.is_none() && self.sha256.is_none()
    }

    /// Merges digests sent in two places (request and part headers); both must agree.
    pub fn merge(self, other: Expected) -> Result<Expected, &'static str> {
        let pick = |a: Option<Vec<u8>>, b: Option<Vec<u8>>, name| match (a, b) {
            (Some(a), Some(b)) if a != b => Err(name),
            (a, b) => Ok(a.or(b)),
        };
        Ok(Expected {
            md5: pick(self.md5, other.md5, "Content-MD5")?,
            sha256: pick(self.sha256, other.sha256, "X-Checksum-SHA256")?,
        })
    }

    /// `Err(header name)` of the first digest that does not match.
    pub fn verify(&self, d: &Digests) -> Result<(), &'static str> {
        if let Some(m) = &self.md5 {
            if ids::hex(m) != d.md5 {
                return Err("Content-MD5");
            }
        }
        if let Some(s) = &self.sha256 {
            if ids::hex(s) != d.sha256 {
                return Err("X-Checksum-SHA256");
            }
        }
        Ok(())
    }
}

/// A digest of `len` bytes written as hex (either case) or base64 (RFC 1864's form).
fn decode(v: &str, len: usize) -> Option<Vec<u8>> {
    let v = v.trim();
    if v.len() == len * 2 {
        if let Some(b) = ids::unhex(&v.to_ascii_lowercase()) {
            return Some(b);
        }
    }
    let b = base64::engine::general_purpose::STANDARD.decode(v).ok()?;
    (b.len() == len).then_some(b)
}

/// Deterministic bytes for tests, without a dev-dependency (xorshift).
#[cfg(test)]
pub(crate) fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one_shot(data: &[u8]) -> Digests {
        let mut h = Hashes::default();
        h.update(data);
        h.finish()
    }

    /// `data` cut at `cuts` into batches, each batch cut into pieces of `piece` bytes.
    fn streamed(data: &[u8], cuts: &[usize], piece: usize) -> Digests {
        let mut h = StreamHashes::default();
        let mut at = 0;
        for &end in cuts.iter().chain(std::iter::once(&data.len())) {
            let b = Bytes::copy_from_slice(&data[at..end]);
            let pieces = (0..b.len())
                .step_by(piece.max(1))
                .map(|i| b.slice(i..(i + piece).min(b.len())))
                .collect();
            h.update(Arc::new(pieces)).unwrap();
            at = end;
        }
        h.finish().unwrap()
    }

    #[test]
    fn stream_hashes_match_one_shot_digests_around_the_helper_threshold() {
        let m = HELPER_MIN;
        let data = noise(4 * m + 12_345, 7);
        let full = data.len();
        // (what, length, batch ends, piece size)
        let cases: Vec<(&str, usize, Vec<usize>, usize)> = vec![
            ("empty stream", 0, vec![0], 1000),
            ("one small batch: no helper", m - 1, vec![], 4096),
            ("exactly the threshold", m, vec![], 4096),
            ("one byte past it", m + 1, vec![], 65_536),
            (
                "small, then large: the helper takes over a running MD5",
                full,
                vec![1, 100, m + 107],
                9_999,
            ),
            ("large, small, large", full, vec![m, m + 3, 3 * m], 61),
            (
                "odd pieces crossing every batch",
                full,
                vec![m / 3, m + m / 2, 2 * m + 1, 3 * m + 5],
                7_777,
            ),
            (
                "empty batches in between",
                full,
                vec![m, m, 2 * m, 2 * m],
                100_000,
            ),
            ("one batch of everything", full, vec![], 1 << 20),
        ];
        for (what, len, cuts, piece) in cases {
            let data = &data[..len];
            assert_eq!(streamed(data, &cuts, piece), one_shot(data), "{what}");
        }
    }

    #[test]
    fn past_the_helper_limit_md5_is_hashed_in_place_with_the_same_result() {
        static ONE: HelperLimit = HelperLimit::new(1);
        let data = noise(3 * HELPER_MIN, 9);
        let taken = ONE.take().unwrap();
        assert!(ONE.take().is_none());
        let mut h = StreamHashes::limited(&ONE);
        h.update(Arc::new(vec![Bytes::copy_from_slice(&data[..2 * HELPER_MIN])]))
            .unwrap();
        assert!(matches!(h.md5, Md5Side::Here(_)), "no slot, no helper");
        // The slot is given back: the next large batch hands the running MD5 to a helper.
        drop(taken);
        h.update(Arc::new(vec![Bytes::copy_from_slice(&data[2 * HELPER_MIN..])]))
            .unwrap();
        assert!(matches!(h.md5, Md5Side::Helper { .. }));
        assert!(ONE.take().is_none(), "the helper holds the slot");
        assert_eq!(h.finish().unwrap(), one_shot(&data));
        assert!(ONE.take().is_some(), "an ended helper gives its slot back");
    }

    #[test]
    fn dropping_stream_hashes_midway_ends_the_helper() {
        let mut h = StreamHashes::default();
        h.update(Arc::new(vec![Bytes::from(noise(HELPER_MIN, 3))]))
            .unwrap();
        assert!(matches!(h.md5, Md5Side::Helper { .. }), "a helper was spawned");
        let Md5Side::Helper { tx, done } = std::mem::replace(&mut h.md5, Md5Side::Here(Md5::default()))
        else {
            unreachable!()
        };
        // What a dropped upload does: the sender goes, and the helper returns.
        drop(tx);
        let md5 = done.join().unwrap();
        assert_eq!(
            ids::hex(md5.finalize().as_slice()),
            one_shot(&noise(HELPER_MIN, 3)).md5
        );
    }

    #[test]
    fn digests_of_known_content() {
        let mut h = Hashes::default();
        h.update(b"hello ");
        h.update(b"world");
        let d = h.finish();
        assert_eq!(d.size, 11);
        assert_eq!(d.md5, "5eb63bbbe01eeed093cb22bb8f5acdc3");
        assert_eq!(
            d.sha256,
            "b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9"
        );
    }

    #[test]
    fn expected_digests_in_hex_or_base64_and_verification() {
        let mut h = Hashes::default();
        h.update(b"hello world");
        let d = h.finish();
        let e = Expected::parse(Some("XrY7u+Ae7tCTyyK7j1rNww=="), None).unwrap();
        assert_eq!(e.verify(&d), Ok(()));
        let e = Expected::parse(
            None,
            Some("B94D27B9934D3E08A52E52D7DA7DABFAC484EFE37A5380EE9088F7ACE2EFCDE9"),
        )
        .unwrap();
        assert_eq!(e.verify(&d), Ok(()));
        let e = Expected::parse(Some("00000000000000000000000000000000"), None).unwrap();
        assert_eq!(e.verify(&d), Err("Content-MD5"));
        assert_eq!(Expected::parse(Some("nope"), None), Err("Content-MD5"));
        assert_eq!(Expected::parse(None, Some("abcd")), Err("X-Checksum-SHA256"));
    }
}
