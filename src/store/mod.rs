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
//! - `locks/blob-NN`: empty files whose `flock` makes [`Store::lock_blob`] hold across
//!   processes (the server and `filegate verify --repair`).
//!
//! Blobs being served are kept open for a moment ([`Store::open_shared`]), like nginx's
//! `open_file_cache`: a blob id names its bytes (it is their SHA-256), so an open handle
//! can only go stale by the blob being deleted, which this process does through
//! [`Store::delete`] (that forgets the handle at once) and another process
//! (`filegate verify --repair`) is seen within [`OPEN_TTL`].
//!
//! Blob files are shared by identical uploads. Whoever adds or drops a reference to a
//! blob holds [`Store::lock_blob`] across "bytes on disk" and "row committed" (or
//! "row committed" and "bytes unlinked"), so a delete never unlinks bytes that a
//! concurrent upload of the same content is about to reference.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::SystemTime;
use std::time::{Duration, Instant};

use crate::ids;

const LOCK_STRIPES: usize = 64;
/// How long a blob opened for serving is reused before it is opened again.
pub const OPEN_TTL: Duration = Duration::from_secs(1);
/// At most this many blobs are kept open for serving.
pub const OPEN_MAX: usize = 512;

/// Blob handles kept open for serving, by blob id, with when they were opened.
type OpenBlobs = RwLock<HashMap<String, (Arc<File>, Instant)>>;

#[derive(Clone, Debug)]
pub struct Store {
    blobs: PathBuf,
    tmp: PathBuf,
    uploads: PathBuf,
    lock_files: PathBuf,
    locks: Arc<[Mutex<()>; LOCK_STRIPES]>,
    open: Arc<OpenBlobs>,
}

/// Held while a blob's references and bytes change together; see [`Store::lock_blob`].
pub struct BlobLock<'a> {
    // Declared first so the flock is released (file closed) before the thread mutex.
    _file: File,
    _thread: MutexGuard<'a, ()>,
}

impl Store {
    pub fn open(data_dir: &Path) -> io::Result<Store> {
        let store = Store::at(data_dir);
        fs::create_dir_all(&store.blobs)?;
        fs::create_dir_all(&store.tmp)?;
        fs::create_dir_all(&store.uploads)?;
        fs::create_dir_all(&store.lock_files)?;
        // All stripes at once, by whoever opens the directory first: a lock file created
        // later by another user (root running a CLI command) could not be opened by the
        // service user. Opening one read-only is enough to lock it.
        for stripe in 0..LOCK_STRIPES {
            let p = store.lock_file(stripe);
            if !p.exists() {
                if let Err(e) = OpenOptions::new()
                    .write(true)
                    .create(true)
                    .truncate(false)
                    .open(&p)
                {
                    tracing::warn!(error = %e, path = %p.display(), "cannot create lock file");
                }
            }
        }
        Ok(store)
    }

    /// The store of `data_dir` as it is, creating nothing: for reading a backup, which
    /// may sit on read-only media. [`Store::lock_blob`] fails on it unless `locks/` exists.
    pub fn at(data_dir: &Path) -> Store {
        Store {
            blobs: data_dir.join("blobs"),
            tmp: data_dir.join("tmp"),
            uploads: data_dir.join("uploads"),
            lock_files: data_dir.join("locks"),
            locks: Arc::new(std::array::from_fn(|_| Mutex::new(()))),
            open: Arc::default(),
        }
    }

    fn lock_file(&self, stripe: usize) -> PathBuf {
        self.lock_files.join(format!("blob-{stripe:02}"))
    }

    /// Serialises reference changes of blob `id` with its bytes appearing or going away,
    /// among the threads of this process (a mutex) and with other processes on the same
    /// data directory (an exclusive `flock` on the stripe's lock file), so that
    /// `filegate verify --repair` never removes bytes a running server is adopting.
    /// Blocking: call it off the async workers.
    pub fn lock_blob(&self, id: &str) -> io::Result<BlobLock<'_>> {
        let stripe = id
            .bytes()
            .take(4)
            .fold(0usize, |acc, b| acc.wrapping_mul(31).wrapping_add(b as usize))
            % LOCK_STRIPES;
        // A panic while holding the lock leaves nothing half-done that the lock protects.
        let thread = self.locks[stripe].lock().unwrap_or_else(|e| e.into_inner());
        // Opened per use: an flock belongs to the open file, and closing it releases the
        // lock even if this process dies, so a crashed holder never wedges the others.
        let file = File::open(self.lock_file(stripe))?;
        file.lock()?;
        Ok(BlobLock {
            _file: file,
            _thread: thread,
        })
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

    /// Blob `id` opened for serving: the handle opened within the last [`OPEN_TTL`] if
    /// there is one, so that a blob served many times a second is opened once.
    pub fn open_shared(&self, id: &str) -> io::Result<Arc<File>> {
        let now = Instant::now();
        let fresh = |at: Instant| now.saturating_duration_since(at) < OPEN_TTL;
        if let Some((f, _)) = self
            .open
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
            .filter(|(_, at)| fresh(*at))
        {
            return Ok(f.clone());
        }
        let f = Arc::new(self.open_blob(id)?);
        let mut open = self.open.write().unwrap_or_else(|e| e.into_inner());
        if open.len() >= OPEN_MAX && !open.contains_key(id) {
            open.retain(|_, (_, at)| fresh(*at));
            // Unless a quarter went, start over, so that each pass frees at least that.
            if open.len() * 4 > OPEN_MAX * 3 {
                open.clear();
            }
        }
        open.insert(id.to_string(), (f.clone(), now));
        Ok(f)
    }

    /// Closes the kept-open blobs not used within [`OPEN_TTL`] (the periodic sweep), so
    /// that a blob another process deleted does not keep its disk space for long.
    pub fn close_idle(&self) {
        let now = Instant::now();
        self.open
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|_, (_, at)| now.saturating_duration_since(*at) < OPEN_TTL);
    }

    /// Number of blobs kept open for serving (for tests).
    pub fn open_count(&self) -> usize {
        self.open.read().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub fn exists(&self, id: &str) -> bool {
        self.path(id).is_some_and(|p| p.is_file())
    }

    /// Deletes blob `id`; a blob already gone is not an error.
    pub fn delete(&self, id: &str) -> io::Result<()> {
        let p = self.path(id).ok_or_else(bad_id)?;
        let removed = fs::remove_file(&p);
        // After the unlink, so that no request can open it again and keep it.
        self.open.write().unwrap_or_else(|e| e.into_inner()).remove(id);
        match removed {
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

/// What a walk of `blobs/` found: blob ids at their proper paths, and everything else.
#[derive(Debug, Default)]
pub struct BlobScan {
    pub blobs: Vec<String>,
    pub strays: Vec<Stray>,
}

/// An entry in `blobs/` or `uploads/` that is no blob or chunk the store would write
/// there, or that nothing claims. Only the store builds one, from a directory walk.
#[derive(Debug, Clone)]
pub struct Stray {
    path: PathBuf,
    /// The path relative to the data directory, for reports.
    pub name: String,
}

impl Store {
    /// Walks `blobs/`: ids of blob files at the path [`Store::path`] gives them, and
    /// strays (other names, misplaced blobs, non-files). Blocking.
    pub fn scan_blobs(&self) -> io::Result<BlobScan> {
        let mut scan = BlobScan::default();
        let shard = |name: &str| name.len() == 2 && ids::unhex(name).is_some();
        for a in fs::read_dir(&self.blobs)? {
            let a = a?;
            let a_name = a.file_name().to_string_lossy().into_owned();
            if !a.file_type()?.is_dir() || !shard(&a_name) {
                scan.strays.push(self.stray(a.path()));
                continue;
            }
            for b in fs::read_dir(a.path())? {
                let b = b?;
                let b_name = b.file_name().to_string_lossy().into_owned();
                if !b.file_type()?.is_dir() || !shard(&b_name) {
                    scan.strays.push(self.stray(b.path()));
                    continue;
                }
                for f in fs::read_dir(b.path())? {
                    let f = f?;
                    let name = f.file_name().to_string_lossy().into_owned();
                    let proper = self.path(&name).is_some_and(|p| p == f.path());
                    if proper && f.file_type()?.is_file() {
                        scan.blobs.push(name);
                    } else {
                        scan.strays.push(self.stray(f.path()));
                    }
                }
            }
        }
        Ok(scan)
    }

    fn stray(&self, path: PathBuf) -> Stray {
        let root = self.blobs.parent().unwrap_or(&self.blobs);
        let name = path
            .strip_prefix(root)
            .unwrap_or(&path)
            .to_string_lossy()
            .into_owned();
        Stray { path, name }
    }

    /// Removes a stray found by [`Store::scan_blobs`] or [`Store::chunk_leftovers`].
    pub fn remove_stray(&self, s: &Stray) -> io::Result<()> {
        match remove_any(&s.path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    /// The size of blob `id` on disk; `None` when there is no such file.
    pub fn blob_size(&self, id: &str) -> io::Result<Option<u64>> {
        let p = self.path(id).ok_or_else(bad_id)?;
        match fs::metadata(p) {
            Ok(m) => Ok(Some(m.len())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Entries of `uploads/` no upload claims (`keep_upload(upload_id)` for a directory,
    /// `keep_chunk(upload_id, data_id)` for a chunk file), last modified before `before`.
    /// Younger unclaimed entries are only counted: a chunk is renamed into place just
    /// before its row commits, so a running server may be about to claim them.
    pub fn chunk_leftovers(
        &self,
        keep_upload: impl Fn(&str) -> bool,
        keep_chunk: impl Fn(&str, &str) -> bool,
        before: SystemTime,
    ) -> io::Result<(Vec<Stray>, usize)> {
        let mut old = Vec::new();
        let mut young = 0;
        let mut judge = |path: PathBuf, modified: io::Result<SystemTime>| {
            // An unreadable time counts as old: nothing writes there any more.
            if modified.is_ok_and(|t| t >= before) {
                young += 1;
            } else {
                old.push(self.stray(path));
            }
        };
        for dir in fs::read_dir(&self.uploads)? {
            let dir = dir?;
            let meta = dir.metadata()?;
            let upload_id = dir.file_name().to_string_lossy().into_owned();
            if !meta.is_dir() || !ids::is_id(&upload_id) || !keep_upload(&upload_id) {
                // A directory's time changes when a chunk is added or removed in it.
                judge(dir.path(), meta.modified());
                continue;
            }
            for f in fs::read_dir(dir.path())? {
                let f = f?;
                let data_id = f.file_name().to_string_lossy().into_owned();
                if !(ids::is_id(&data_id) && keep_chunk(&upload_id, &data_id)) {
                    judge(f.path(), f.metadata().and_then(|m| m.modified()));
                }
            }
        }
        Ok((old, young))
    }
}

/// Puts blobs into another data directory tree (a backup, a data directory being
/// restored) at their usual paths: hard links while both trees are on one filesystem
/// (blobs are never modified in place, so sharing an inode is safe), else fsynced copies.
pub struct BlobCopier {
    dest: Store,
    link: bool,
    /// Directories that gained entries, to fsync once at the end.
    dirty: std::collections::BTreeSet<PathBuf>,
}

/// How a blob reached the other tree, and its size there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Carried {
    Linked(u64),
    Copied(u64),
}

impl Carried {
    pub fn size(self) -> u64 {
        match self {
            Carried::Linked(n) | Carried::Copied(n) => n,
        }
    }
}

impl BlobCopier {
    /// Into the tree rooted at `dest_dir`; `try_link` false always copies.
    pub fn new(dest_dir: &Path, try_link: bool) -> BlobCopier {
        BlobCopier {
            dest: Store::at(dest_dir),
            link: try_link,
            dirty: Default::default(),
        }
    }

    /// Carries blob `id` of `from` over. `NotFound` when `from` has no such blob (it may
    /// have been deleted meanwhile); nothing is left behind on failure.
    pub fn carry(&mut self, from: &Store, id: &str) -> io::Result<Carried> {
        let src = from.path(id).ok_or_else(bad_id)?;
        let dst = self.dest.path(id).ok_or_else(bad_id)?;
        let parent = dst.parent().ok_or_else(bad_id)?.to_path_buf();
        if !parent.is_dir() {
            fs::create_dir_all(&parent)?;
            let mut d = parent.clone();
            while d != self.dest.blobs {
                let Some(up) = d.parent() else { break };
                self.dirty.insert(up.to_path_buf());
                d = up.to_path_buf();
            }
            if let Some(root) = self.dest.blobs.parent() {
                self.dirty.insert(root.to_path_buf());
            }
        }
        self.dirty.insert(parent);
        if self.link {
            match fs::hard_link(&src, &dst) {
                Ok(()) => return Ok(Carried::Linked(fs::metadata(&dst)?.len())),
                // Another filesystem, or one without hard links, or links refused for
                // files of another owner (fs.protected_hardlinks): copy from now on.
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::CrossesDevices
                            | io::ErrorKind::PermissionDenied
                            | io::ErrorKind::Unsupported
                    ) =>
                {
                    self.link = false;
                }
                Err(e) => return Err(e),
            }
        }
        // Read through one open file: a concurrent unlink of the name cannot cut the copy.
        let mut input = File::open(&src)?;
        let copied = (|| {
            let mut out = OpenOptions::new().write(true).create_new(true).open(&dst)?;
            let n = io::copy(&mut input, &mut out)?;
            out.sync_all()?;
            Ok(n)
        })();
        match copied {
            Ok(n) => Ok(Carried::Copied(n)),
            Err(e) => {
                let _ = fs::remove_file(&dst);
                Err(e)
            }
        }
    }

    /// Takes back a blob carried over (its bytes turned out wrong).
    pub fn discard(&mut self, id: &str) -> io::Result<()> {
        self.dest.delete(id)
    }

    /// Makes the new directory entries durable.
    pub fn finish(self) -> io::Result<()> {
        for d in &self.dirty {
            sync_dir(d)?;
        }
        Ok(())
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

/// fsyncs directory `p`, so that entries created or removed in it survive a crash.
pub fn sync_dir(p: &Path) -> io::Result<()> {
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
    fn a_blob_served_again_within_the_ttl_is_not_opened_again() {
        let d = tempfile::tempdir().unwrap();
        let s = Store::open(d.path()).unwrap();
        put(&s, "0123456789abcdef", b"hello");
        let a = s.open_shared("0123456789abcdef").unwrap();
        let b = s.open_shared("0123456789abcdef").unwrap();
        assert!(Arc::ptr_eq(&a, &b), "the second use reuses the open handle");
        assert_eq!(s.open_count(), 1);
        // A clone of the store (every worker holds one) shares the handles.
        assert!(Arc::ptr_eq(
            &a,
            &s.clone().open_shared("0123456789abcdef").unwrap()
        ));
        std::thread::sleep(OPEN_TTL);
        let c = s.open_shared("0123456789abcdef").unwrap();
        assert!(!Arc::ptr_eq(&a, &c), "past the TTL the blob is opened again");
        assert_eq!(s.open_count(), 1, "and the old handle is let go");
        assert!(s
            .open_shared("00000000000000ff")
            .is_err_and(|e| e.kind() == io::ErrorKind::NotFound));
        assert_eq!(s.open_count(), 1, "a failed open keeps nothing");
    }

    #[test]
    fn deleting_a_blob_closes_its_kept_handle_and_idle_ones_close_in_the_sweep() {
        let d = tempfile::tempdir().unwrap();
        let s = Store::open(d.path()).unwrap();
        put(&s, "0123456789abcdef", b"hello");
        put(&s, "fedcba9876543210", b"world");
        let a = s.open_shared("0123456789abcdef").unwrap();
        s.open_shared("fedcba9876543210").unwrap();
        s.delete("0123456789abcdef").unwrap();
        assert_eq!(s.open_count(), 1);
        assert_eq!(
            Arc::strong_count(&a),
            1,
            "only the answer being sent still holds it"
        );
        assert!(
            s.open_shared("0123456789abcdef").is_err(),
            "a deleted blob is not served from a kept handle"
        );
        s.close_idle();
        assert_eq!(s.open_count(), 1, "a handle used within the TTL stays");
        std::thread::sleep(OPEN_TTL);
        s.close_idle();
        assert_eq!(s.open_count(), 0);
    }

    #[test]
    fn at_most_open_max_blobs_are_kept_open() {
        let d = tempfile::tempdir().unwrap();
        let s = Store::open(d.path()).unwrap();
        for i in 0..OPEN_MAX + 10 {
            let id = format!("{i:016x}");
            put(&s, &id, b"x");
            s.open_shared(&id).unwrap();
            assert!(s.open_count() <= OPEN_MAX);
        }
        assert!(s.open_count() >= 1);
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
    fn blob_lock_excludes_another_store_on_the_same_directory() {
        // Two `Store`s have separate mutexes, like two processes: only the flock on the
        // lock file can keep them apart.
        use std::sync::atomic::{AtomicBool, Ordering};
        let d = tempfile::tempdir().unwrap();
        let a = Store::open(d.path()).unwrap();
        let b = Store::open(d.path()).unwrap();
        let held = a.lock_blob("0123456789abcdef").unwrap();
        let got = Arc::new(AtomicBool::new(false));
        let t = {
            let got = got.clone();
            std::thread::spawn(move || {
                let _g = b.lock_blob("0123456789abcdef").unwrap();
                got.store(true, Ordering::SeqCst);
            })
        };
        std::thread::sleep(std::time::Duration::from_millis(300));
        assert!(!got.load(Ordering::SeqCst), "second store took a held lock");
        drop(held);
        t.join().unwrap();
        assert!(got.load(Ordering::SeqCst));
        // Another stripe is not blocked by a held one.
        let _x = a.lock_blob("0123456789abcdef").unwrap();
        let _y = a.lock_blob("fedcba9876543210").unwrap();
    }

    fn put(s: &Store, id: &str, bytes: &[u8]) {
        let mut t = s.create_temp().unwrap();
        t.write_all(bytes).unwrap();
        t.persist(id).unwrap();
    }

    #[test]
    fn scan_tells_blobs_from_strays() {
        let d = tempfile::tempdir().unwrap();
        let s = Store::open(d.path()).unwrap();
        put(&s, "0123456789abcdef", b"x");
        std::fs::write(d.path().join("blobs/stray.txt"), b"?").unwrap();
        std::fs::write(d.path().join("blobs/01/23/not-hex"), b"?").unwrap();
        std::fs::create_dir_all(d.path().join("blobs/ff/ee")).unwrap();
        // A blob id at the wrong path is no blob either.
        std::fs::write(d.path().join("blobs/ff/ee/0123456789abcdee"), b"?").unwrap();
        let scan = s.scan_blobs().unwrap();
        assert_eq!(scan.blobs, ["0123456789abcdef"]);
        let mut strays: Vec<&str> = scan.strays.iter().map(|x| x.name.as_str()).collect();
        strays.sort();
        assert_eq!(
            strays,
            [
                "blobs/01/23/not-hex",
                "blobs/ff/ee/0123456789abcdee",
                "blobs/stray.txt"
            ]
        );
        for x in &scan.strays {
            s.remove_stray(x).unwrap();
        }
        assert!(s.scan_blobs().unwrap().strays.is_empty());
        assert_eq!(s.blob_size("0123456789abcdef").unwrap(), Some(1));
        assert_eq!(s.blob_size("0123456789abcdee").unwrap(), None);
    }

    #[test]
    fn chunk_leftovers_spare_claimed_and_young_entries() {
        let d = tempfile::tempdir().unwrap();
        let s = Store::open(d.path()).unwrap();
        let (u1, u2, c1, c2) = ("a".repeat(24), "b".repeat(24), "c".repeat(24), "d".repeat(24));
        for (u, c) in [(&u1, &c1), (&u1, &c2), (&u2, &c1)] {
            let mut t = s.create_temp().unwrap();
            t.write_all(b"chunk").unwrap();
            t.persist_chunk(u, c).unwrap();
        }
        let keep_u = |u: &str| u == u1;
        let keep_c = |u: &str, c: &str| u == u1 && c == c1;
        let past = SystemTime::now() - std::time::Duration::from_secs(3600);
        let (old, young) = s.chunk_leftovers(keep_u, keep_c, past).unwrap();
        assert_eq!((old.len(), young), (0, 2), "everything is fresh");
        let (old, young) = s
            .chunk_leftovers(
                keep_u,
                keep_c,
                SystemTime::now() + std::time::Duration::from_secs(1),
            )
            .unwrap();
        let mut names: Vec<String> = old.iter().map(|x| x.name.clone()).collect();
        names.sort();
        assert_eq!(names, [format!("uploads/{u1}/{c2}"), format!("uploads/{u2}")]);
        assert_eq!(young, 0);
    }

    #[test]
    fn copier_links_or_copies_and_reports_a_vanished_blob() {
        let d = tempfile::tempdir().unwrap();
        let s = Store::open(&d.path().join("live")).unwrap();
        put(&s, "0123456789abcdef", b"hello");
        for link in [true, false] {
            let dest = d.path().join(format!("copy-{link}"));
            let mut c = BlobCopier::new(&dest, link);
            let got = c.carry(&s, "0123456789abcdef").unwrap();
            assert_eq!(
                got,
                if link {
                    Carried::Linked(5)
                } else {
                    Carried::Copied(5)
                }
            );
            let e = c.carry(&s, "00000000000000aa").unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::NotFound);
            c.finish().unwrap();
            let copy = Store::at(&dest);
            assert_eq!(copy.blob_size("0123456789abcdef").unwrap(), Some(5));
            assert_eq!(copy.blob_size("00000000000000aa").unwrap(), None);
        }
    }

    #[cfg(unix)]
    #[test]
    fn copier_falls_back_to_copying_across_filesystems() {
        use std::os::unix::fs::MetadataExt;
        let d = tempfile::tempdir().unwrap();
        let Ok(other) = tempfile::tempdir_in("/dev/shm") else {
            eprintln!("skipped: no /dev/shm");
            return;
        };
        let dev = |p: &Path| std::fs::metadata(p).unwrap().dev();
        if dev(d.path()) == dev(other.path()) {
            eprintln!("skipped: /dev/shm is on the temp dir's filesystem");
            return;
        }
        let s = Store::open(d.path()).unwrap();
        put(&s, "0123456789abcdef", b"hello");
        put(&s, "0123456789abcdee", b"world!");
        let mut c = BlobCopier::new(other.path(), true);
        assert_eq!(c.carry(&s, "0123456789abcdef").unwrap(), Carried::Copied(5));
        assert_eq!(c.carry(&s, "0123456789abcdee").unwrap(), Carried::Copied(6));
        c.finish().unwrap();
        assert_eq!(
            Store::at(other.path()).blob_size("0123456789abcdee").unwrap(),
            Some(6)
        );
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
