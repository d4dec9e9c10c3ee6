//! The binary as an operator runs it: first start, CLI, bad configuration.

mod common;

use std::process::Command;

use common::*;

#[test]
fn first_start_prints_credentials_that_get_a_token_with_curl_and_never_again() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut server = Server::start_in(&data, &[]);
    let id = server.banner_value("client_id").expect("client_id printed");
    let secret = server
        .banner_value("client_secret")
        .expect("client_secret printed");
    assert!(server
        .banner
        .iter()
        .any(|l| l.contains("curl -s -u") && l.contains("/v1/oauth2/token")));

    let (code, body) = curl(&[
        "-u",
        &format!("{id}:{secret}"),
        "-d",
        "grant_type=client_credentials",
        &server.url("/v1/oauth2/token"),
    ]);
    assert_eq!(code, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["token_type"], "Bearer");
    assert!(v["expires_in"].is_u64());
    assert!(v["scope"].as_str().unwrap().contains("mediahub_download_files"));

    // The MediaHub spelling, with form fields instead of Basic.
    let (code, _) = curl(&[
        "-d",
        "grant_type=client_credential",
        "-d",
        &format!("client_id={id}"),
        "--data-urlencode",
        &format!("client_secret={secret}"),
        &server.url("/v1/oauth2/token"),
    ]);
    assert_eq!(code, 200);

    let (code, body) = curl(&[&server.url("/healthz")]);
    assert_eq!(
        (code, body.as_str()),
        (200, r#"{"status":"ok","catalog":"ok","store":"ok"}"#)
    );

    server.kill();
    let server = Server::start_in(&data, &[]);
    assert!(
        server.banner_value("client_secret").is_none(),
        "printed again: {:?}",
        server.banner
    );
}

fn filegate(data: &std::path::Path, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(binary())
        .args(args)
        .arg("--data-dir")
        .arg(data)
        .env_remove("FILEGATE_CONFIG")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn app_commands_create_list_disable_enable_while_the_server_runs() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = Server::start_in(&data, &[]);

    let (ok, out, err) = filegate(
        &data,
        &["app", "create", "encoder", "--scopes", "mediahub_read,autograph"],
    );
    assert!(ok, "{err}");
    let line = |k: &str| {
        out.lines()
            .find_map(|l| l.strip_prefix(&format!("{k}: ")))
            .unwrap()
            .to_string()
    };
    let (id, secret) = (line("client_id"), line("client_secret"));
    assert_eq!(id.len(), 24);

    let (ok, out, _) = filegate(&data, &["app", "list"]);
    assert!(ok);
    assert!(
        out.lines()
            .any(|l| l.starts_with(&id) && l.contains("yes") && l.contains("encoder")),
        "{out}"
    );
    assert!(!out.contains(&secret), "list never shows secrets");

    let get_token = || {
        curl(&[
            "-u",
            &format!("{id}:{secret}"),
            "-d",
            "grant_type=client_credentials",
            &server.url("/v1/oauth2/token"),
        ])
    };
    let (code, body) = get_token();
    assert_eq!(code, 200, "{body}");
    assert!(body.contains(r#""scope":"mediahub_read autograph""#), "{body}");

    assert!(filegate(&data, &["app", "disable", &id]).0);
    let (code, body) = get_token();
    assert_eq!(code, 403);
    assert!(body.contains("app_disabled"), "{body}");
    assert!(filegate(&data, &["app", "enable", &id]).0);
    assert_eq!(get_token().0, 200);

    let (ok, _, err) = filegate(&data, &["app", "create", "x", "--scopes", "mediahub,root"]);
    assert!(!ok && err.contains("\"root\""), "{err}");
    let (ok, _, err) = filegate(&data, &["app", "disable", "000000000000000000000000"]);
    assert!(!ok && err.contains("no application"), "{err}");
}

#[test]
fn bad_configuration_stops_start_up_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("filegate.toml");
    std::fs::write(&cfg, "[server]\nlisten = \"127.0.0.1:0\"\n[links]\nmax_tll = 5\n").unwrap();
    let out = Command::new(binary())
        .args(["serve", "--config"])
        .arg(&cfg)
        .arg("--data-dir")
        .arg(dir.path().join("d"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("links.max_tll: unknown key"), "{err}");

    let out = Command::new(binary())
        .args(["serve", "--data-dir"])
        .arg(dir.path().join("d"))
        .env("FILEGATE_LISTEN", "not-an-address")
        .env_remove("FILEGATE_CONFIG")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("server.listen"), "{err}");
    assert!(
        !dir.path().join("d").exists(),
        "nothing created before the configuration is valid"
    );
}

#[test]
fn config_file_env_and_flags_layer_on_the_real_binary() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("filegate.toml");
    std::fs::write(&cfg, "[server]\nlisten = \"127.0.0.1:1\"\n").unwrap();
    // The file says port 1, the flag (in Server::start_in) says port 0: the flag wins.
    let server = Server::start_in(
        &dir.path().join("d"),
        &[("FILEGATE_CONFIG", cfg.to_str().unwrap())],
    );
    assert!(!server.base.ends_with(":1"), "{}", server.base);
}

#[test]
fn leftovers_of_interrupted_writes_are_swept_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut server = Server::start_in(&data, &[]);
    server.kill();
    std::fs::write(data.join("tmp/0123abcd.part"), b"half an upload").unwrap();
    let _server = Server::start_in(&data, &[]);
    assert_eq!(std::fs::read_dir(data.join("tmp")).unwrap().count(), 0);
}
