//! MD5 and SHA-256 computed while bytes stream past, and the digests a client may send.

use std::io;
use std::sync::Arc;

use base64::Engine;
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
/// MD5 cannot use SIMD and is the slowest step of storing an upload (~1.4 ms per MiB;
/// SHA-256 with SHA-NI and a page-cache write take ~0.6 ms each). On its own thread it
/// runs while the caller writes and hashes with SHA-256, and with a batch or two queued
/// it never waits for the caller to come back, so an upload is bound by MD5 alone rather
/// than by the sum. The queue holds at most [`QUEUE`] buffers (memory stays flat: a slow
/// MD5 blocks [`StreamHashes::update`], which holds back the network). The helper is
/// spawned at the first buffer of [`HELPER_MIN`] bytes or more, so a small upload hashes
/// on the caller's thread; it sleeps while its upload stalls, and ends when the hashes
/// are finished or dropped. If it cannot be spawned, MD5 runs on the caller's thread.
pub struct StreamHashes {
    md5: Md5Side,
    sha256: Sha256,
    size: u64,
}

/// Buffers queued for the MD5 helper, beyond the one it is hashing.
pub const QUEUE: usize = 2;
/// Smallest buffer that spawns the MD5 helper.
pub const HELPER_MIN: usize = 256 * 1024;

enum Md5Side {
    Here(Md5),
    Helper {
        tx: std::sync::mpsc::SyncSender<Arc<Vec<u8>>>,
        done: std::thread::JoinHandle<Md5>,
    },
}

impl Default for StreamHashes {
    fn default() -> Self {
        StreamHashes {
            md5: Md5Side::Here(Md5::default()),
            sha256: Sha256::default(),
            size: 0,
        }
    }
}

impl StreamHashes {
    pub fn update(&mut self, buf: Arc<Vec<u8>>) -> io::Result<()> {
        self.size += buf.len() as u64;
        if buf.len() >= HELPER_MIN {
            if let Md5Side::Here(md5) = &mut self.md5 {
                if let Some(helper) = spawn_md5(md5.clone()) {
                    self.md5 = helper;
                }
            }
        }
        match &mut self.md5 {
            Md5Side::Here(md5) => md5.update(&buf[..]),
            Md5Side::Helper { tx, .. } => tx.send(Arc::clone(&buf)).map_err(|_| helper_lost())?,
        }
        self.sha256.update(&buf[..]);
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

fn spawn_md5(mut md5: Md5) -> Option<Md5Side> {
    let (tx, rx) = std::sync::mpsc::sync_channel::<Arc<Vec<u8>>>(QUEUE);
    let done = std::thread::Builder::new()
        .name("filegate-md5".into())
        .spawn(move || {
            // Ends when the sender is dropped: finished, or the upload failed.
            for buf in rx {
                md5.update(&buf[..]);
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

#[cfg(test)]
mod tests {
    use super::*;

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
