//! `filegate keys rotate|list|retire` on a data directory, also while a server runs.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::{binary, Server};

fn keys(data: &Path, args: &[&str]) -> Output {
    Command::new(binary())
        .arg("keys")
        .args(args)
        .arg("--data-dir")
        .arg(data)
        .env("RUST_LOG", "warn")
        .env_remove("FILEGATE_CONFIG")
        .output()
        .expect("run filegate")
}

fn stdout(o: &Output) -> String {
    assert!(
        o.status.success(),
        "failed: {}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// (id, state) per line of `keys list`.
fn listed(data: &Path) -> Vec<(String, String)> {
    stdout(&keys(data, &["list"]))
        .lines()
        .skip(1)
        .map(|l| {
            let mut w = l.split_whitespace();
            (w.next().unwrap().to_string(), w.next().unwrap().to_string())
        })
        .collect()
}

fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
    v.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect()
}

#[test]
fn rotate_list_and_retire_keys() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // The first key exists from the first use on.
    assert_eq!(listed(&data), pairs(&[("1", "current")]));

    let out = stdout(&keys(&data, &["rotate"]));
    assert!(out.contains("created signing key 2"), "{out}");
    assert_eq!(listed(&data), pairs(&[("1", "active"), ("2", "current")]));

    let out = stdout(&keys(&data, &["retire", "1"]));
    assert!(out.contains("retired signing key 1"), "{out}");
    assert!(!out.contains("created"), "{out}");
    assert_eq!(listed(&data), pairs(&[("1", "retired"), ("2", "current")]));
    let out = stdout(&keys(&data, &["retire", "1"]));
    assert!(out.contains("already retired"), "{out}");

    // Retiring the current key leaves a key to sign with.
    let out = stdout(&keys(&data, &["retire", "2"]));
    assert!(out.contains("created signing key 3"), "{out}");
    assert_eq!(
        listed(&data),
        pairs(&[("1", "retired"), ("2", "retired"), ("3", "current")])
    );

    let o = keys(&data, &["retire", "99"]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("no signing key 99"));
    let o = keys(&data, &["retire", "x"]);
    assert!(!o.status.success());
}

#[test]
fn keys_commands_work_while_the_server_runs() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let _server = Server::start_in(&data, &[]);
    let out = stdout(&keys(&data, &["rotate"]));
    assert!(out.contains("created signing key 2"), "{out}");
    stdout(&keys(&data, &["retire", "1"]));
    assert_eq!(listed(&data), pairs(&[("1", "retired"), ("2", "current")]));
}

#[test]
fn serve_refuses_to_start_when_a_key_does_not_decrypt() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    assert_eq!(listed(&data).len(), 1);
    // Another secret.key than the one the keys were sealed with.
    std::fs::remove_file(data.join("secret.key")).unwrap();
    std::fs::write(data.join("secret.key"), [7u8; 32]).unwrap();
    let out = Command::new(binary())
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&data)
        .env("RUST_LOG", "off")
        .env_remove("FILEGATE_CONFIG")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("signing key 1 does not decrypt"), "{err}");
    // The way out the message names works, and then the server starts.
    let out = stdout(&keys(&data, &["retire", "1"]));
    assert!(out.contains("created signing key 2"), "{out}");
    let _server = Server::start_in(&data, &[]);
}
