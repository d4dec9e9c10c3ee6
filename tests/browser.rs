//! The admin console in a real browser: Debian's headless Chromium driven by
//! playwright-core (tests/browser/console.mjs) against a spawned server.
//! `scripts/test` installs Chromium and the npm package; screenshots of failing
//! steps go to target/browser-screenshots/.

mod common;

use std::path::Path;
use std::process::Command;

use common::*;

#[test]
fn console_works_in_headless_chromium() {
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    let ready =
        Path::new(&chromium).exists() && Path::new("tests/browser/node_modules/playwright-core").exists();
    if !ready {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI must have Chromium and playwright-core"
        );
        eprintln!("SKIPPED: run scripts/test (installs chromium and tests/browser/node_modules)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let password = "browser test passphrase";
    let mut set = Command::new(binary())
        .args(["admin", "set-password", "--password-stdin", "--data-dir"])
        .arg(&data)
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    set.stdin
        .take()
        .unwrap()
        .write_all(format!("{password}\n").as_bytes())
        .unwrap();
    assert!(set.wait().unwrap().success());
    // Audit rows in 10 ms batches, so the refusal shows on the audit page at once.
    let server = Server::start_in(&data, &[("FILEGATE_AUDIT__FLUSH_MS", "10")]);

    let shots = Path::new(env!("CARGO_TARGET_TMPDIR")).join("../browser-screenshots");
    let out = Command::new("node")
        .arg("tests/browser/console.mjs")
        .arg(&server.base)
        .arg(password)
        .arg(&shots)
        .env("CHROMIUM", &chromium)
        .output()
        .expect("node is installed");
    let text = String::from_utf8_lossy(&out.stdout);
    println!("{text}{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "browser checks failed:\n{text}");
    assert!(text.lines().any(|l| l.ends_with(" passed, 0 failed")));
}
