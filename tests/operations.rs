//! Running it for real: readiness, graceful stop, metrics.

mod common;

use std::os::unix::net::UnixDatagram;
use std::process::Command;
use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::test::{self, TestRequest};
use common::*;

#[test]
fn readiness_reaches_notify_socket_and_sigterm_stops_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let sock_path = dir.path().join("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut server = Server::start_in(
        &dir.path().join("data"),
        &[("NOTIFY_SOCKET", sock_path.to_str().unwrap())],
    );

    let mut buf = [0u8; 512];
    let n = sock.recv(&mut buf).expect("a readiness datagram");
    let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
    assert!(msg.starts_with("READY=1\n"), "{msg}");
    assert!(
        msg.contains(&format!(
            "STATUS=listening on {}",
            server.base.trim_start_matches("http://")
        )),
        "{msg}"
    );

    let pid = server.child.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let n = sock.recv(&mut buf).expect("a stopping datagram");
    assert_eq!(&buf[..n], b"STOPPING=1");
    let status = server.child.wait().unwrap();
    assert!(status.success(), "exit status after SIGTERM: {status:?}");
}

/// Parses with the reference Python parser (prometheus_client, installed by scripts/test)
/// and prints `name{labels} value` lines in a stable form.
fn parse_prometheus(text: &str) -> Vec<String> {
    let script = r#"
import sys
from prometheus_client.parser import text_string_to_metric_families
for fam in text_string_to_metric_families(sys.stdin.read()):
    for s in fam.samples:
        labels = ",".join(f'{k}={v}' for k, v in sorted(s.labels.items()))
        # Parser versions differ on the _total suffix and int/float values: normalise.
        name = s.name[:-6] if s.name.endswith("_total") else s.name
        print(f"{fam.type} {name}{{{labels}}} {float(s.value)}")
"#;
    let mut child = Command::new("python3")
        .args(["-c", script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "prometheus_client refused the text: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn metrics_parse_with_a_prometheus_parser_and_count_requests_and_refusals() {
    let server = Server::start();
    let id = server.banner_value("client_id").unwrap();
    let secret = server.banner_value("client_secret").unwrap();
    let token_url = server.url("/v1/oauth2/token");
    assert_eq!(
        curl(&[
            "-u",
            &format!("{id}:{secret}"),
            "-d",
            "grant_type=client_credentials",
            &token_url
        ])
        .0,
        200
    );
    assert_eq!(
        curl(&[
            "-d",
            "grant_type=client_credentials",
            &format!("{token_url}?typo=1")
        ])
        .0,
        400
    );
    assert_eq!(curl(&[&server.url("/healthz")]).0, 200);
    // One upload and one download, for the byte counters and the gauges.
    let (_, body) = curl(&[
        "-u",
        &format!("{id}:{secret}"),
        "-d",
        "grant_type=client_credentials",
        &token_url,
    ]);
    let token = serde_json::from_str::<serde_json::Value>(&body).unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("m.bin");
    std::fs::write(&f, vec![7u8; 12345]).unwrap();
    let auth = format!("Authorization: Bearer {token}");
    let (code, _) = curl(&[
        "-H",
        &auth,
        "-F",
        &format!("file=@{}", f.display()),
        &server.url("/v1/files/uploads/?object_key=m"),
    ]);
    assert_eq!(code, 201);
    let (_, body) = curl(&["-H", &auth, &server.url("/v1/files/downloads/?object_key=m")]);
    let url = serde_json::from_str::<serde_json::Value>(&body).unwrap()["download"]["url"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(curl(&["-o", "/dev/null", &url]).0, 200);

    let (code, text) = curl(&[&server.url("/metrics")]);
    assert_eq!(code, 200);
    let samples = parse_prometheus(&text);
    let has = |s: &str| samples.iter().any(|l| l == s);
    assert!(
        has("counter filegate_http_requests{method=POST,route=/v1/oauth2/token,status=200} 2.0"),
        "{samples:#?}"
    );
    assert!(has(
        "counter filegate_http_requests{method=POST,route=/v1/oauth2/token,status=400} 1.0"
    ));
    assert!(
        has("counter filegate_refusals{reason=unknown_parameter} 1.0"),
        "{samples:#?}"
    );
    assert!(has(
        "histogram filegate_http_request_duration_seconds_count{route=/healthz} 1.0"
    ));
    assert!(has("gauge filegate_applications{} 1.0"));
    assert!(has("gauge filegate_files{} 1.0"), "{samples:#?}");
    assert!(has("gauge filegate_stored_bytes{} 12345.0"));
    assert!(has("counter filegate_bytes_uploaded{} 12345.0"));
    assert!(has("counter filegate_uploads_completed{} 1.0"));
    assert!(has("counter filegate_bytes_served{} 12345.0"));
    // The file served is kept open, and its bytes in memory (it is small).
    assert!(has("gauge filegate_open_blobs{} 1.0"), "{samples:#?}");
    assert!(has("gauge filegate_memory_cache_bytes{} 12345.0"));
    assert!(has("counter filegate_links_issued{} 1.0"));
    assert!(samples
        .iter()
        .any(|l| l.starts_with("gauge filegate_catalog_bytes{} ") && !l.ends_with(" 0.0")));
}

#[actix_web::test]
async fn metrics_are_loopback_only_unless_a_token_is_configured() {
    let env = TestEnv::new();
    let app = env.service().await;
    let far = "192.0.2.7:4000".parse().unwrap();
    let res = test::call_service(
        &app,
        TestRequest::get().uri("/metrics").peer_addr(far).to_request(),
    )
    .await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let near = "127.0.0.1:4000".parse().unwrap();
    let res = test::call_service(
        &app,
        TestRequest::get().uri("/metrics").peer_addr(near).to_request(),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);

    let env = TestEnv::with_config(|c| c.metrics.token = "scrape-me".into());
    let app = env.service().await;
    let res = test::call_service(
        &app,
        TestRequest::get().uri("/metrics").peer_addr(near).to_request(),
    )
    .await;
    assert_eq!(
        res.status(),
        StatusCode::FORBIDDEN,
        "a token is configured: loopback is not enough"
    );
    let req = TestRequest::get()
        .uri("/metrics")
        .peer_addr(far)
        .insert_header(("Authorization", "Bearer scrape-me"));
    let res = test::call_service(&app, req.to_request()).await;
    assert_eq!(res.status(), StatusCode::OK);
}

#[test]
fn json_logs_are_one_object_per_line_and_never_show_secrets_or_queries() {
    use std::io::{BufRead, BufReader};
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(binary())
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--log-format",
            "json",
            "--data-dir",
        ])
        .arg(dir.path().join("data"))
        .env("RUST_LOG", "info")
        .env_remove("FILEGATE_CONFIG")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let mut base = String::new();
    let mut creds = (String::new(), String::new());
    for line in stdout.lines() {
        let line = line.unwrap();
        if let Some(v) = line.trim().strip_prefix("client_id: ") {
            creds.0 = v.to_string();
        }
        if let Some(v) = line.trim().strip_prefix("client_secret: ") {
            creds.1 = v.to_string();
        }
        if let Some(a) = line.strip_prefix("filegate listening on ") {
            base = a.to_string();
            break;
        }
    }
    let (code, body) = curl(&[
        "-u",
        &format!("{}:{}", creds.0, creds.1),
        "-d",
        "grant_type=client_credentials",
        &format!("{base}/v1/oauth2/token"),
    ]);
    assert_eq!(code, 200);
    let token = serde_json::from_str::<serde_json::Value>(&body).unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let (code, _) = curl(&[&format!("{base}/v1/files/?access_token={token}")]);
    assert_eq!(code, 200);
    assert!(Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap()
        .success());
    let out = child.wait_with_output().unwrap();
    let logs = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = logs.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(lines.len() >= 3, "{logs}");
    for l in &lines {
        let v: serde_json::Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"));
        assert!(v["timestamp"].is_string() && v["level"].is_string(), "{l}");
    }
    assert!(
        lines
            .iter()
            .any(|l| l.contains("\"path\":\"/v1/files/\"") && l.contains("\"status\":200")),
        "{logs}"
    );
    assert!(!logs.contains(&token), "a token reached the log");
    assert!(!logs.contains(&creds.1), "a client secret reached the log");
    assert!(!logs.contains("access_token="), "a query string reached the log");
}
