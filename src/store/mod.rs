//! The blob store: the only code that touches blob files.
//!
//! Layout under the data directory:
//! - `blobs/<h0h1>/<h2h3>/<id>`: one file per blob, its path derived from the blob id
//!   (lowercase hex) and never from anything a client sent;
//! - `tmp/`: files being written. A write becomes a blob only through
//!   [`TempBlob::persist`]: fsync the file, rename it into `blobs/` (same filesystem, so
//!   atomic), fsync the directory. Whatever is left in `tmp/` after a crash is swept at
//!   start-up.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::ids;

#[derive(Clone, Debug)]
pub struct Store {
    blobs: PathBuf,
    tmp: PathBuf,
}

impl Store {
    pub fn open(data_dir: &Path) -> io::Result<Store> {
        let blobs = data_dir.join("blobs");
        let tmp = data_dir.join("tmp");
        fs::create_dir_all(&blobs)?;
        fs::create_dir_all(&tmp)?;
        Ok(Store { blobs, tmp })
    }

    /// Removes every leftover of interrupted writes; run once before serving.
    pub fn sweep_temp(&self) -> io::Result<usize> {
        let mut n = 0;
        for entry in fs::read_dir(&self.tmp)? {
            let entry = entry?;
            let p = entry.path();
            if entry.file_type()?.is_dir() {
                fs::remove_dir_all(&p)?;
            } else {
                fs::remove_file(&p)?;
            }
            n += 1;
        }
        Ok(n)
    }

    /// Number of entries in `tmp/` (for health checks and tests).
    pub fn temp_count(&self) -> io::Result<usize> {
        Ok(fs::read_dir(&self.tmp)?.count())
    }

    /// The path of blob `id`; `None` unless `id` is plain lowercase hex of a sane length.
    pub fn path(&self, id: &str) -> Option<PathBuf> {
        if id.len() < 8 || id.len() > 128 || ids::unhex(id).is_none() {
            return None;
        }
        Some(self.blobs.join(&id[0..2]).join(&id[2..4]).join(id))
    }

    pub fn open_blob(&self, id: &str) -> io::Result<File> {
        let p = self.path(id).ok_or_else(bad_id)?;
        File::open(p)
    }

    pub fn exists(&self, id: &str) -> bool {
        self.path(id).is_some_and(|p| p.is_file())
    }

    /// Deletes blob `id`; a blob already gone is not an error.
    pub fn delete(&self, id: &str) -> io::Result<()> {
        let p = self.path(id).ok_or_else(bad_id)?;
        match fs::remove_file(&p) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    /// A new temporary file in `tmp/`, removed on drop unless persisted.
    pub fn create_temp(&self) -> io::Result<TempBlob> {
        let mut r = [0u8; 12];
        ids::random_bytes(&mut r);
        let path = self.tmp.join(format!("{}.part", ids::hex(&r)));
        let file = OpenOptions::new().write(true).create_new(true).open(&path)?;
        Ok(TempBlob {
            file: Some(file),
            path,
            store: self.clone(),
        })
    }

    /// Checks that blobs and temp files can be created (for `/healthz`).
    pub fn check_writable(&self) -> io::Result<()> {
        let t = self.create_temp()?;
        drop(t);
        fs::metadata(&self.blobs).map(|_| ())
    }

    pub fn blobs_dir(&self) -> &Path {
        &self.blobs
    }
}

fn bad_id() -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, "not a blob id")
}

fn sync_dir(p: &Path) -> io::Result<()> {
    File::open(p)?.sync_all()
}

/// A file being written; dropping it without [`TempBlob::persist`] removes it.
pub struct TempBlob {
    file: Option<File>,
    path: PathBuf,
    store: Store,
}

impl TempBlob {
    pub fn file(&mut self) -> &mut File {
        self.file.as_mut().expect("temp blob used after persist")
    }

    /// Makes the bytes durable under blob `id`. If a blob with that id already exists
    /// (identical content, content-addressed ids) the existing one is kept.
    pub fn persist(mut self, id: &str) -> io::Result<()> {
        let file = self.file.take().expect("temp blob persisted twice");
        file.sync_all()?;
        drop(file);
        let dest = self.store.path(id).ok_or_else(bad_id)?;
        let parent = dest.parent().ok_or_else(bad_id)?;
        if !parent.exists() {
            fs::create_dir_all(parent)?;
            if let Some(gp) = parent.parent() {
                sync_dir(gp)?;
                if let Some(ggp) = gp.parent() {
                    sync_dir(ggp)?;
                }
            }
        }
        fs::rename(&self.path, &dest)?;
        sync_dir(parent)?;
        Ok(())
    }
}

impl Write for TempBlob {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.file().write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.file().flush()
    }
}

impl Drop for TempBlob {
    fn drop(&mut self) {
        if self.file.take().is_some() {
            let _ = fs::remove_file(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn persisted_blob_is_readable_and_temp_is_gone() {
        let d = tempfile::tempdir().unwrap();
        let s = Store::open(d.path()).unwrap();
        let mut t = s.create_temp().unwrap();
        t.write_all(b"hello").unwrap();
        assert_eq!(s.temp_count().unwrap(), 1);
        t.persist("0123456789abcdef").unwrap();
        assert_eq!(s.temp_count().unwrap(), 0);
        let mut buf = String::new();
        s.open_blob("0123456789abcdef")
            .unwrap()
            .read_to_string(&mut buf)
            .unwrap();
        assert_eq!(buf, "hello");
        assert!(s
            .path("0123456789abcdef")
            .unwrap()
            .starts_with(d.path().join("blobs/01/23")));
    }

    #[test]
    fn dropped_temp_leaves_nothing_and_sweep_clears_leftovers() {
        let d = tempfile::tempdir().unwrap();
        let s = Store::open(d.path()).unwrap();
        let t = s.create_temp().unwrap();
        drop(t);
        assert_eq!(s.temp_count().unwrap(), 0);
        std::fs::write(d.path().join("tmp/crash.part"), b"x").unwrap();
        assert_eq!(s.sweep_temp().unwrap(), 1);
        assert_eq!(s.temp_count().unwrap(), 0);
    }

    #[test]
    fn paths_come_only_from_hex_ids() {
        let d = tempfile::tempdir().unwrap();
        let s = Store::open(d.path()).unwrap();
        assert!(s.path("../../etc/passwd").is_none());
        assert!(s.path("ABCDEF0123456789").is_none());
        assert!(s.path("abc").is_none());
    }
}
