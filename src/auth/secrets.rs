//! Application secrets at rest: ChaCha20-Poly1305 under a key file kept outside the
//! catalog (`secret.key` in the data directory, mode 0600). HMAC verification of
//! MediaHub signed URLs needs the secret itself, so a one-way hash will not do.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::Path;

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::ChaCha20Poly1305;

use crate::ids;

pub const KEY_FILE: &str = "secret.key";

#[derive(Clone)]
pub struct SecretBox {
    cipher: ChaCha20Poly1305,
    /// The key file's bytes, for [`SecretBox::derive`].
    key: [u8; 32],
}

impl std::fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretBox(..)")
    }
}

impl SecretBox {
    /// Reads the key file in `data_dir`, creating it (mode 0600) on first use.
    pub fn load_or_create(data_dir: &Path) -> io::Result<SecretBox> {
        let path = data_dir.join(KEY_FILE);
        let key = match fs::read(&path) {
            Ok(k) => k,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let mut k = [0u8; 32];
                ids::random_bytes(&mut k);
                write_private(&path, &k)?;
                k.to_vec()
            }
            Err(e) => return Err(e),
        };
        if key.len() != 32 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{} must hold exactly 32 bytes", path.display()),
            ));
        }
        let cipher = ChaCha20Poly1305::new_from_slice(&key)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "bad key length"))?;
        let key: [u8; 32] = key
            .try_into()
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "bad key length"))?;
        Ok(SecretBox { cipher, key })
    }

    /// A key of its own for another purpose, derived from the key file with a label
    /// (HMAC-SHA256(key file, "filegate-derive" 0x00 ‖ label)): it lives and dies with
    /// `secret.key`, is in every backup, and tells nothing about the sealing key.
    pub fn derive(&self, label: &str) -> [u8; 32] {
        use hmac::{KeyInit as _, Mac};
        let mut m = <hmac::Hmac<sha2::Sha256>>::new_from_slice(&self.key).expect("HMAC takes any key length");
        m.update(b"filegate-derive\0");
        m.update(label.as_bytes());
        m.finalize().into_bytes().into()
    }

    /// nonce (12 bytes) ‖ ciphertext+tag; `context` (the client id) is bound as AAD so a
    /// ciphertext moved to another row does not decrypt.
    pub fn seal(&self, context: &str, plaintext: &[u8]) -> Vec<u8> {
        let mut nonce = [0u8; 12];
        ids::random_bytes(&mut nonce);
        let ct = self
            .cipher
            .encrypt(
                &nonce.into(),
                Payload {
                    msg: plaintext,
                    aad: context.as_bytes(),
                },
            )
            .expect("ChaCha20-Poly1305 encryption cannot fail for in-memory buffers");
        let mut out = nonce.to_vec();
        out.extend_from_slice(&ct);
        out
    }

    pub fn open(&self, context: &str, sealed: &[u8]) -> Option<Vec<u8>> {
        if sealed.len() < 12 + 16 {
            return None;
        }
        let nonce: [u8; 12] = sealed[..12].try_into().ok()?;
        self.cipher
            .decrypt(
                &nonce.into(),
                Payload {
                    msg: &sealed[12..],
                    aad: context.as_bytes(),
                },
            )
            .ok()
    }
}

/// Writes a new file readable only by its owner; fails if it exists.
pub fn write_private(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut opts = OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_file_is_private_and_reused() {
        let d = tempfile::tempdir().unwrap();
        let a = SecretBox::load_or_create(d.path()).unwrap();
        let sealed = a.seal("app1", b"s3cret");
        let b = SecretBox::load_or_create(d.path()).unwrap();
        assert_eq!(b.open("app1", &sealed).unwrap(), b"s3cret");
        assert!(b.open("app2", &sealed).is_none(), "bound to its row");
        assert_eq!(
            a.derive("x"),
            b.derive("x"),
            "derived keys live with the key file"
        );
        assert_ne!(a.derive("x"), a.derive("y"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(d.path().join(KEY_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
