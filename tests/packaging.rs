//! The systemd unit, the default configuration, and the .deb (SPEC §9, issue 11).

mod common;

use std::path::Path;
use std::process::Command;

use common::*;

fn run(cmd: &str, args: &[&str]) -> (bool, String) {
    let out = Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{cmd}: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn systemd_unit_passes_systemd_analyze_verify() {
    let dir = tempfile::tempdir().unwrap();
    let unit = std::fs::read_to_string("packaging/filegate.service").unwrap();
    assert!(unit.contains("Type=notify") && unit.contains("ProtectSystem=strict"));
    // Point ExecStart at the binary under test so verify can check it is executable.
    let unit = unit.replace("/usr/bin/filegate", binary().to_str().unwrap());
    let path = dir.path().join("filegate.service");
    std::fs::write(&path, unit).unwrap();
    let (ok, text) = run("systemd-analyze", &["verify", path.to_str().unwrap()]);
    let complaints: Vec<&str> = text.lines().filter(|l| l.contains("filegate.service")).collect();
    assert!(ok && complaints.is_empty(), "systemd-analyze verify: {text}");
}

#[test]
fn default_config_file_is_accepted_as_shipped() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(binary())
        .args(["app", "list", "--config", "packaging/filegate.toml", "--data-dir"])
        .arg(dir.path().join("d"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

/// Installs the package built by `scripts/test` (CI) with dpkg, checks its files, then
/// purges it. Needs root and a built .deb; says why when it cannot run.
#[test]
fn deb_installs_its_files_and_purges_cleanly() {
    let Some(deb) = std::fs::read_dir("target/debian").ok().and_then(|d| {
        d.filter_map(Result::ok)
            .map(|e| e.path())
            .find(|p| p.extension().is_some_and(|x| x == "deb"))
    }) else {
        eprintln!("SKIPPED: no target/debian/*.deb (scripts/test builds it when CI=true)");
        return;
    };
    if std::env::var("FILEGATE_TEST_DPKG").as_deref() != Ok("1") {
        eprintln!(
            "SKIPPED: set FILEGATE_TEST_DPKG=1 (as root) to install {} on this machine",
            deb.display()
        );
        return;
    }
    let (ok, text) = run("dpkg", &["-i", deb.to_str().unwrap()]);
    assert!(ok, "dpkg -i: {text}");
    let unit = [
        "/lib/systemd/system/filegate.service",
        "/usr/lib/systemd/system/filegate.service",
    ]
    .into_iter()
    .find(|p| Path::new(p).exists())
    .expect("unit installed");
    for f in [
        "/usr/bin/filegate",
        "/etc/filegate/filegate.toml",
        "/usr/lib/sysusers.d/filegate.conf",
        "/usr/lib/tmpfiles.d/filegate.conf",
        "/usr/share/doc/filegate/README.md",
    ] {
        assert!(Path::new(f).exists(), "{f} missing after dpkg -i");
    }
    let (ok, text) = run("getent", &["passwd", "filegate"]);
    assert!(ok, "user filegate: {text}");
    assert!(Path::new("/var/lib/filegate").is_dir());
    let (ok, text) = run("/usr/bin/filegate", &["--version"]);
    assert!(ok && text.starts_with("filegate "), "{text}");
    let (ok, text) = run("systemd-analyze", &["verify", unit]);
    assert!(ok, "installed unit: {text}");
    let (ok, text) = run("dpkg", &["--purge", "filegate"]);
    assert!(ok, "dpkg --purge: {text}");
    assert!(!Path::new("/usr/bin/filegate").exists());
    assert!(!Path::new("/var/lib/filegate").exists());
}
