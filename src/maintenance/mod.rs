//! Operations on a whole data directory: consistent online backups, restores into an
//! empty directory, and verification (with repair) of the catalog against the blobs.

pub mod backup;
pub mod restore;
pub mod verify;

use std::fmt::Display;
use std::fs::{self, File};
use std::io::{self, Read};
use std::path::Path;

use crate::error::StartupError;
use crate::files::digest::{Digests, Hashes};

/// Written last into a backup directory: without it the directory is no backup.
pub const BACKUP_MARKER: &str = "BACKUP-COMPLETE";
/// Present in a data directory while `filegate restore` fills it; no command opens it then.
pub const RESTORE_MARKER: &str = "RESTORE-INCOMPLETE";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The operation will not run on these directories (named in the message).
    #[error("{0}")]
    Refused(String),
    #[error("{what}: {source}")]
    Io { what: String, source: io::Error },
    #[error("catalog: {0}")]
    Catalog(#[from] rusqlite::Error),
    #[error("catalog: {0}")]
    Pool(#[from] r2d2::Error),
}

impl From<Error> for StartupError {
    fn from(e: Error) -> Self {
        StartupError::Other(e.to_string())
    }
}

/// Wraps an I/O error with what was being done.
fn io_err(what: impl Display) -> impl FnOnce(io::Error) -> Error {
    move |source| Error::Io {
        what: what.to_string(),
        source,
    }
}

/// Refuses to open a data directory that a restore did not finish filling: its catalog
/// is absent or partial, and a server started on it would sweep the restored blobs
/// away as orphans.
pub fn check_not_restoring(data_dir: &Path) -> Result<(), String> {
    if data_dir.join(RESTORE_MARKER).exists() {
        return Err(format!(
            "{} holds {RESTORE_MARKER}: a `filegate restore` into it did not finish; empty the \
             directory and restore again",
            data_dir.display()
        ));
    }
    Ok(())
}

/// True when `p` is a directory without entries; `Ok(false)` when it has some; an error
/// when it is something else. `None` when it does not exist.
fn empty_dir(p: &Path) -> Result<Option<bool>, Error> {
    match fs::read_dir(p) {
        Ok(mut d) => Ok(Some(d.next().is_none())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_err(p.display())(e)),
    }
}

/// Creates directory `p` (and missing parents) with `mode`, and fsyncs its parent.
fn create_dir(p: &Path, mode: u32) -> Result<(), Error> {
    let mut b = fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        b.mode(mode);
    }
    #[cfg(not(unix))]
    let _ = mode;
    b.create(p).map_err(io_err(p.display()))?;
    sync_parent(p)
}

fn sync_parent(p: &Path) -> Result<(), Error> {
    let parent = match p.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    crate::store::sync_dir(parent).map_err(io_err(parent.display()))
}

/// Copies a file through a temp name, fsyncs it, renames it into place with `mode`.
fn copy_synced(src: &Path, dest: &Path, mode: u32) -> Result<(), Error> {
    let tmp = dest.with_extension("partial");
    let copied = (|| {
        fs::copy(src, &tmp)?;
        set_mode(&tmp, mode)?;
        File::open(&tmp)?.sync_all()?;
        fs::rename(&tmp, dest)
    })();
    if copied.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    copied.map_err(io_err(format!("copying {} to {}", src.display(), dest.display())))
}

fn set_mode(p: &Path, mode: u32) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(p, fs::Permissions::from_mode(mode))?;
    }
    #[cfg(not(unix))]
    let _ = (p, mode);
    Ok(())
}

/// SHA-256 and MD5 of a file's bytes, reporting each chunk read to `progress`.
fn hash_file(p: &Path, progress: &mut dyn FnMut(u64)) -> io::Result<Digests> {
    let mut f = File::open(p)?;
    let mut h = Hashes::default();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = match f.read(&mut buf) {
            Ok(0) => return Ok(h.finish()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        h.update(&buf[..n]);
        progress(n as u64);
    }
}

/// Removes everything in `dest`: what a failed backup or restore wrote into a directory
/// that was empty before it, so that it can be run again into the same directory.
fn clear(dest: &Path) {
    if let Ok(entries) = fs::read_dir(dest) {
        for e in entries.flatten() {
            let p = e.path();
            let _ = if p.is_dir() {
                fs::remove_dir_all(&p)
            } else {
                fs::remove_file(&p)
            };
        }
    }
}

/// Opens the catalog and the store of an existing data directory, refusing one without
/// a catalog (a typo in `--data-dir` must not create and "verify" an empty one).
pub fn open_existing(
    data_dir: &Path,
) -> Result<(crate::catalog::Catalog, crate::store::Store), StartupError> {
    check_not_restoring(data_dir).map_err(StartupError::Other)?;
    if !data_dir.join(crate::catalog::CATALOG_FILE).is_file() {
        return Err(StartupError::Other(format!(
            "{} holds no catalog ({}): not a filegate data directory",
            data_dir.display(),
            crate::catalog::CATALOG_FILE
        )));
    }
    let catalog = crate::catalog::Catalog::open(data_dir)?;
    let store = crate::store::Store::open(data_dir)
        .map_err(|e| StartupError::Store(format!("{}: {e}", data_dir.display())))?;
    Ok((catalog, store))
}
