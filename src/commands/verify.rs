//! `filegate verify [--checksums] [--repair]`: prints what
//! [`crate::maintenance::verify`] found, one line each, and fails when problems are left.

use std::io::IsTerminal;

use super::progress::{human, Progress};
use crate::cli::VerifyArgs;
use crate::clock::Clock;
use crate::config::Config;
use crate::error::StartupError;
use crate::maintenance::{self, verify};

pub fn run(config: &Config, args: VerifyArgs, clock: &dyn Clock) -> Result<(), StartupError> {
    let (catalog, store) = maintenance::open_existing(config.data_dir())?;
    let opts = verify::Options {
        checksums: args.checksums,
        repair: args.repair,
        now_ms: clock.now_ms(),
    };
    let on = std::io::stderr().is_terminal();
    let mut bar: Option<Progress> = None;
    let mut progress =
        |done: u64, total: u64| bar.get_or_insert_with(|| Progress::new(total, on)).update(done);
    let result = verify::run(&catalog, &store, opts, &mut progress);
    if let Some(b) = &bar {
        b.finish();
    }
    let r = result?;

    if r.catalog.is_empty() {
        println!("catalog: ok");
    }
    for p in &r.catalog {
        println!("CATALOG {p}");
    }
    for f in &r.findings {
        let files = match f.files.len() {
            0 => String::new(),
            _ => format!(" (file {})", f.files.join(", ")),
        };
        let repaired = f
            .repaired
            .as_deref()
            .map(|d| format!(" -> {d}"))
            .unwrap_or_default();
        println!(
            "{:<8} {}{files}: {}{repaired}",
            f.kind.label(),
            f.subject,
            f.detail
        );
    }
    for e in &r.repair_errors {
        println!("REPAIR FAILED {e}");
    }
    println!(
        "checked: {} files, {} blobs, {} ({})",
        r.files,
        r.blobs,
        human(r.bytes as f64),
        if args.checksums {
            "sizes and checksums"
        } else {
            "sizes"
        }
    );
    if r.young_leftovers > 0 {
        println!(
            "skipped: {} recent unclaimed chunk(s) in uploads/ (maybe being written)",
            r.young_leftovers
        );
    }
    let known = r.count(verify::Kind::KnownMissing);
    if known > 0 {
        println!("known: {known} blob(s) marked missing (not counted as problems)");
    }
    match r.problems_left() {
        0 => {
            println!("result: ok");
            Ok(())
        }
        n => {
            println!("result: {n} problem(s){}", if args.repair { " left" } else { "" });
            Err(StartupError::Other(format!(
                "verify: {n} problem(s) {}",
                if args.repair {
                    "could not be repaired"
                } else {
                    "found (see above; --repair fixes most)"
                }
            )))
        }
    }
}
