//! Replays the fuzzers' committed inputs in the normal test run (no nightly needed):
//! every file of `fuzz/corpus/<target>/` (the seeds, kept small by `scripts/fuzz`) and
//! of `tests/regressions/<target>/` (inputs that once broke an invariant) goes through
//! the same `filegate::fuzz` function the fuzz target calls.

use std::path::Path;

fn replay(dir: &Path, run: fn(&[u8])) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    let mut n = 0;
    for e in entries {
        let path = e.unwrap().path();
        if !path.is_file()
            || path
                .file_name()
                .is_some_and(|f| f.to_string_lossy().starts_with('.'))
        {
            continue;
        }
        let data = std::fs::read(&path).unwrap();
        if std::panic::catch_unwind(|| run(&data)).is_err() {
            panic!("{} breaks an invariant", path.display());
        }
        n += 1;
    }
    n
}

#[test]
fn every_committed_fuzz_input_and_regression_passes_its_target() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for (target, run) in filegate::fuzz::TARGETS {
        let seeds = replay(&root.join("fuzz/corpus").join(target), *run);
        let regressions = replay(&root.join("tests/regressions").join(target), *run);
        assert!(seeds > 0, "fuzz/corpus/{target} has no seed");
        eprintln!("{target}: {seeds} seeds, {regressions} regressions");
    }
}

#[test]
fn each_target_holds_on_its_built_in_cases() {
    // The untouched sample link and signed URL verify; every single-bit flip of them
    // does not (the targets assert both).
    for target in [filegate::fuzz::link_verify, filegate::fuzz::signed_url] {
        target(&[0]);
        for pos in 0..=255u8 {
            for bit in [1u8, 0x20, 0x80] {
                target(&[0, pos, bit]);
            }
        }
    }
    filegate::fuzz::range(b"");
    filegate::fuzz::client_addr(b"");
    filegate::fuzz::archive_index(b"");
}
