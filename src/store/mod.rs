//! The blob store: the only code that touches blob files.
//!
//! Layout under the data directory:
//! - `blobs/<h0h1>/<h2h3>/<id>`: one file per blob, its path derived from the blob id
//!   (lowercase hex) and never from anything a client sent;
//! - `tmp/`: files being written. A write becomes a blob only through
//!   [`TempBlob::persist`]: fsync the file, rename it into `blobs/` (same filesystem, so
//!   atomic), fsync the directory. Whatever is left in `tmp/` after a crash is swept at
//!   start-up.
//! - `uploads/<upload_id>/<data_id>`: chunks of uploads in progress, made durable the same
//!   way ([`TempBlob::persist_chunk`]) so that an upload can resume after a restart.
//!
//! Blob files are shared by identical uploads. Whoever adds or drops a reference to a
//! blob holds [`Store::lock_blob`] across "bytes on disk" and "row committed" (or
//! "row committed" and "bytes unlinked"), so a delete never unlinks bytes that a
//! concurrent upload of the same content is about to reference.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::ids;

const LOCK_STRIPES: usize = 64;

#[derive(Clone, Debug)]
pub struct Store {
    blobs: PathBuf,
    tmp: PathBuf,
    uploads: PathBuf,
    locks: Arc<[Mutex<()>; LOCK_STRIPES]>,
}

impl Store {
    pub fn open(data_dir: &Path) -> io::Result<Store> {
        let blobs = data_dir.join("blobs");
        let tmp = data_dir.join("tmp");
        let uploads = data_dir.join("uploads");
        fs::create_dir_all(&blobs)?;
        fs::create_dir_all(&tmp)?;
        fs::create_dir_all(&uploads)?;
        Ok(Store {
            blobs,
            tmp,
            uploads,
            locks: Arc::new(std::array::from_fn(|_| Mutex::new(()))),
        })
    }

    /// Serialises reference changes of blob `id` with its bytes appearing or going away.
    /// Blocking: call it off the async workers.
    pub fn lock_blob(&self, id: &str) -> MutexGuard<'_, ()> {
        let stripe = id
            .bytes()
            .take(4)
            .fold(0usize, |acc, b| acc.wrapping_mul(31).wrapping_add(b as usize))
            % LOCK_STRIPES;
        // A panic while holding the lock leaves nothing half-done that the lock protects.
        self.locks[stripe].lock().unwrap_or_else(|e| e.into_inner())
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

    /// The path of chunk `data_id` of upload `upload_id`; both must be ids.
    pub fn chunk_path(&self, upload_id: &str, data_id: &str) -> Option<PathBuf> {
        if !ids::is_id(upload_id) || !ids::is_id(data_id) {
            return None;
        }
        Some(self.uploads.join(upload_id).join(data_id))
    }

    pub fn open_chunk(&self, upload_id: &str, data_id: &str) -> io::Result<File> {
        File::open(self.chunk_path(upload_id, data_id).ok_or_else(bad_id)?)
    }

    /// Deletes one chunk's bytes; already gone is not an error.
    pub fn delete_chunk(&self, upload_id: &str, data_id: &str) -> io::Result<()> {
        let p = self.chunk_path(upload_id, data_id).ok_or_else(bad_id)?;
        match fs::remove_file(&p) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    /// Removes an upload's chunk directory and whatever is left in it.
    pub fn delete_upload(&self, upload_id: &str) -> io::Result<()> {
        if !ids::is_id(upload_id) {
            return Err(bad_id());
        }
        match fs::remove_dir_all(self.uploads.join(upload_id)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    /// Makes chunk `data_id` of `upload_id` also the blob `blob_id`, without copying: a
    /// hard link (the chunk was fsynced when it was persisted, and stays in place until its
    /// upload is done, so a failed completion can be retried). Hold [`Store::lock_blob`]
    /// around this and the catalog commit.
    pub fn adopt_chunk(&self, upload_id: &str, data_id: &str, blob_id: &str) -> io::Result<()> {
        let src = self.chunk_path(upload_id, data_id).ok_or_else(bad_id)?;
        let dest = self.path(blob_id).ok_or_else(bad_id)?;
        let parent = dest.parent().ok_or_else(bad_id)?;
        ensure_dir(parent, 2)?;
        fs::hard_link(&src, &dest)?;
        sync_dir(parent)?;
        Ok(())
    }

    /// Ids of every blob file on disk (for start-up consistency checks).
    pub fn list_blobs(&self) -> io::Result<Vec<String>> {
        let mut out = Vec::new();
        for a in fs::read_dir(&self.blobs)? {
            let a = a?;
            if !a.file_type()?.is_dir() {
                continue;
            }
            for b in fs::read_dir(a.path())? {
                let b = b?;
                if !b.file_type()?.is_dir() {
                    continue;
                }
                for f in fs::read_dir(b.path())? {
                    let name = f?.file_name().to_string_lossy().into_owned();
                    if self.path(&name).is_some() {
                        out.push(name);
                    }
                }
            }
        }
        Ok(out)
    }

    /// Removes chunk files and upload directories that `keep(upload_id, data_id)` does not
    /// claim: leftovers of a crash between a chunk's rename and its row. Returns how many.
    pub fn sweep_chunks(&self, keep: impl Fn(&str, &str) -> bool) -> io::Result<usize> {
        let mut n = 0;
        for dir in fs::read_dir(&self.uploads)? {
            let dir = dir?;
            let upload_id = dir.file_name().to_string_lossy().into_owned();
            if !dir.file_type()?.is_dir() || !ids::is_id(&upload_id) {
                remove_any(&dir.path())?;
                n += 1;
                continue;
            }
            let mut left = 0;
            for f in fs::read_dir(dir.path())? {
                let f = f?;
                let data_id = f.file_name().to_string_lossy().into_owned();
                if ids::is_id(&data_id) && keep(&upload_id, &data_id) {
                    left += 1;
                } else {
                    remove_any(&f.path())?;
                    n += 1;
                }
            }
            if left == 0 {
                let _ = fs::remove_dir(dir.path());
            }
        }
        Ok(n)
    }
}

fn remove_any(p: &Path) -> io::Result<()> {
    if p.is_dir() {
        fs::remove_dir_all(p)
    } else {
        fs::remove_file(p)
    }
}

/// Creates `dir` if needed and fsyncs the parents (up to `depth` levels) that gained an entry.
fn ensure_dir(dir: &Path, depth: usize) -> io::Result<()> {
    if dir.exists() {
        return Ok(());
    }
    fs::create_dir_all(dir)?;
    let mut p = dir.parent();
    for _ in 0..depth {
        let Some(d) = p else { break };
        sync_dir(d)?;
        p = d.parent();
    }
    Ok(())
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

    /// The bytes written so far, opened for reading (to index an archive before it is
    /// persisted).
    pub fn open_read(&self) -> io::Result<File> {
        File::open(&self.path)
    }

    /// Makes the bytes durable under blob `id`. If a blob with that id already exists
    /// (identical content, content-addressed ids) it is replaced by identical bytes.
    pub fn persist(self, id: &str) -> io::Result<()> {
        let dest = self.store.path(id).ok_or_else(bad_id)?;
        self.persist_to(&dest, 2)
    }

    /// Makes the bytes durable as chunk `data_id` of upload `upload_id`.
    pub fn persist_chunk(self, upload_id: &str, data_id: &str) -> io::Result<()> {
        let dest = self.store.chunk_path(upload_id, data_id).ok_or_else(bad_id)?;
        self.persist_to(&dest, 1)
    }

    /// fsync the file, rename it to `dest`, fsync `dest`'s directory.
    fn persist_to(mut self, dest: &Path, depth: usize) -> io::Result<()> {
        let file = self.file.take().ok_or_else(bad_id)?;
        if let Err(e) = file.sync_all() {
            let _ = fs::remove_file(&self.path);
            return Err(e);
        }
        drop(file);
        let parent = dest.parent().ok_or_else(bad_id)?;
        let moved = ensure_dir(parent, depth)
            .and_then(|_| fs::rename(&self.path, dest))
            .and_then(|_| sync_dir(parent));
        if moved.is_err() {
            let _ = fs::remove_file(&self.path);
        }
        moved
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
