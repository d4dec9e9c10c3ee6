//! Links end to end on the real binary with real clients: `curl -O -J` saves under the
//! real name, `curl -C -` resumes, bytes match the upload by sha256.

mod common;

use std::process::Command;

use common::*;

#[test]
fn curl_downloads_by_name_and_resumes_and_the_bytes_match() {
    let server = Server::start();
    let tok = server.token();
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("source.bin");
    let data: Vec<u8> = (0..3_000_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(&src, &data).unwrap();

    let (code, body) = curl(&[
        "-H",
        &format!("Authorization: Bearer {tok}"),
        "-F",
        &format!("file=@{};filename=Concert 2026 (final cut).mkv", src.display()),
        &server.url("/v1/files/uploads/?object_key=concerts/final.mkv"),
    ]);
    assert_eq!(code, 201, "{body}");
    let up: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(up["upload"]["file"]["sha256"], sha256_hex(&data));

    let (code, body) = curl(&[
        "-H",
        &format!("Authorization: Bearer {tok}"),
        &server.url("/v1/files/downloads/?object_key=concerts/final.mkv&redirect=false"),
    ]);
    assert_eq!(code, 200, "{body}");
    let url = serde_json::from_str::<serde_json::Value>(&body).unwrap()["download"]["url"]
        .as_str()
        .unwrap()
        .to_string();

    // curl -O -J: the file lands under its real name (curl reads `filename=`; browsers
    // take the UTF-8 `filename*`, which the in-process tests check).
    let out = dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let st = Command::new("curl")
        .args(["-s", "-f", "-O", "-J", &url])
        .current_dir(&out)
        .status()
        .unwrap();
    assert!(st.success());
    let saved = out.join("Concert 2026 (final cut).mkv");
    assert_eq!(sha256_hex(&std::fs::read(&saved).unwrap()), sha256_hex(&data));

    // curl -C -: resume a download cut after 1 MB.
    let partial = dir.path().join("partial.mkv");
    std::fs::write(&partial, &data[..1_000_000]).unwrap();
    let st = Command::new("curl")
        .args(["-s", "-f", "-C", "-", "-o"])
        .arg(&partial)
        .arg(&url)
        .status()
        .unwrap();
    assert!(st.success());
    assert_eq!(sha256_hex(&std::fs::read(&partial).unwrap()), sha256_hex(&data));

    // The redirect form, as MediaHub clients use it: read Location, do not follow.
    let out = Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code} %{redirect_url}",
            "-H",
        ])
        .arg(format!("Authorization: Bearer {tok}"))
        .arg(server.url("/v1/files/downloads/?object_key=concerts/final.mkv&redirect=true"))
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let (code, location) = text.split_once(' ').unwrap();
    assert_eq!(code, "302");
    assert!(location.starts_with(&server.url("/d/")), "{location}");

    // HEAD through a real client carries the length.
    let out = Command::new("curl").args(["-s", "-I", &url]).output().unwrap();
    let head = String::from_utf8_lossy(&out.stdout).to_lowercase();
    assert!(head.contains("content-length: 3000000"), "{head}");
}

#[test]
fn sigterm_lets_a_running_download_finish() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start_in(&dir.path().join("data"), &[]);
    let tok = server.token();
    let src = dir.path().join("big.bin");
    let data: Vec<u8> = (0..8_000_000u32).map(|i| (i % 253) as u8).collect();
    std::fs::write(&src, &data).unwrap();
    let (code, body) = curl(&[
        "-H",
        &format!("Authorization: Bearer {tok}"),
        "-F",
        &format!("file=@{}", src.display()),
        &server.url("/v1/files/uploads/?object_key=big.bin"),
    ]);
    assert_eq!(code, 201, "{body}");
    let (_, body) = curl(&[
        "-H",
        &format!("Authorization: Bearer {tok}"),
        &server.url("/v1/files/downloads/?object_key=big.bin"),
    ]);
    let url = serde_json::from_str::<serde_json::Value>(&body).unwrap()["download"]["url"]
        .as_str()
        .unwrap()
        .to_string();

    // A slow reader: 1 MB/s for an 8 MB file takes ~8 s.
    let dest = dir.path().join("slow.bin");
    let mut slow = Command::new("curl")
        .args(["-s", "-f", "--limit-rate", "1M", "-o"])
        .arg(&dest)
        .arg(&url)
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let pid = server.child.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    // New connections are refused while the running one finishes.
    std::thread::sleep(std::time::Duration::from_millis(300));
    let (code, _) = curl(&["--max-time", "2", &server.url("/healthz")]);
    assert_ne!(code, 200, "no new requests after SIGTERM");
    assert!(slow.wait().unwrap().success(), "the running download completed");
    assert_eq!(sha256_hex(&std::fs::read(&dest).unwrap()), sha256_hex(&data));
    assert!(server.child.wait().unwrap().success());
}
