//! `filegate backup DIR` and `filegate restore DIR`: the command-line side of
//! [`crate::maintenance::backup`] and [`crate::maintenance::restore`].

use std::io::IsTerminal;

use super::progress::{human, Progress};
use crate::cli::{BackupArgs, RestoreArgs};
use crate::clock::Clock;
use crate::config::Config;
use crate::delivery::validators::http_date;
use crate::error::StartupError;
use crate::maintenance::{self, backup, restore};

pub fn run(config: &Config, args: BackupArgs, clock: &dyn Clock) -> Result<(), StartupError> {
    let data_dir = config.data_dir();
    let (catalog, store) = maintenance::open_existing(data_dir)?;
    let opts = backup::Options {
        copy: args.copy,
        now_ms: clock.now_ms(),
    };
    let r = backup::run(&catalog, &store, data_dir, &args.dir, opts)?;
    println!("backup complete: {}", args.dir.display());
    println!("files: {}", r.files);
    println!(
        "blobs: {} ({} hard-linked, {} copied)",
        r.blobs, r.linked, r.copied
    );
    println!("bytes: {} ({})", r.bytes, human(r.bytes as f64));
    println!("catalog: {} bytes", r.catalog_bytes);
    println!("time: {:.2} s", r.elapsed.as_secs_f64());
    if !r.deleted_meanwhile.is_empty() {
        println!(
            "deleted during the backup, left out: {} file(s)",
            r.deleted_meanwhile.len()
        );
    }
    if r.uploads_left_out > 0 {
        println!("uploads in progress, left out: {}", r.uploads_left_out);
    }
    if r.linked > 0 {
        eprintln!(
            "Blobs are hard links into the data directory: this backup survives deletes and a \
             damaged catalog, not the loss of the disk (use --copy, or a DIR on another disk)."
        );
    }
    if r.missing.is_empty() {
        return Ok(());
    }
    for (blob, files) in &r.missing {
        eprintln!(
            "MISSING blob {blob} (file {}): gone from the data directory; marked missing in the backup",
            files.join(", ")
        );
    }
    Err(StartupError::Other(format!(
        "the backup is complete, but {} blob(s) are missing from the data directory: run `filegate verify`",
        r.missing.len()
    )))
}

pub fn restore(config: &Config, args: RestoreArgs) -> Result<(), StartupError> {
    let target = config.data_dir();
    let on = std::io::stderr().is_terminal();
    let mut bar: Option<Progress> = None;
    let mut progress =
        |done: u64, total: u64| bar.get_or_insert_with(|| Progress::new(total, on)).update(done);
    let opts = restore::Options {
        checksums: args.verify_checksums,
        copy: args.copy,
    };
    let result = restore::run(&args.dir, target, opts, &mut progress);
    if let Some(b) = &bar {
        b.finish();
    }
    let r = result?;
    let c = &r.check;
    let taken = c
        .created_at_ms
        .map(|ms| format!(" (taken {})", http_date(ms.div_euclid(1000))))
        .unwrap_or_default();
    println!(
        "backup {}{taken} checked: {} files, {} blobs, {}{}",
        args.dir.display(),
        c.files,
        c.blobs,
        human(c.bytes as f64),
        if args.verify_checksums {
            ", checksums ok"
        } else {
            ""
        }
    );
    println!("restored into: {}", target.display());
    println!("files: {}", c.files);
    println!(
        "blobs: {} ({} hard-linked, {} copied)",
        c.blobs, r.linked, r.copied
    );
    println!("bytes: {}", c.bytes);
    println!("time: {:.2} s", r.elapsed.as_secs_f64());
    if c.known_missing > 0 {
        println!("files marked missing in the backup: {}", c.known_missing);
    }
    eprintln!(
        "The server's user must own the restored files (e.g. chown -R filegate: {}).",
        target.display()
    );
    Ok(())
}
