//! Uploads against the spawned binary with real clients: curl's multipart forms, the
//! size limit on a streamed body, resident memory during a 2 GiB upload. (Crashes in
//! the middle of many uploads: tests/crash.rs.)

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;
use sha2::Digest;

fn json(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

fn credentials(s: &Server) -> (String, String) {
    s.credentials()
}

fn token(s: &Server, creds: &(String, String)) -> String {
    s.token_with(&creds.0, &creds.1)
}

#[test]
fn curl_multipart_one_shot_three_step_and_chunked() {
    let s = Server::start();
    let tok = token(&s, &credentials(&s));
    let auth = format!("Authorization: Bearer {tok}");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("clip.bin");
    std::fs::write(&path, b"\x1aE\xdf\xa3 matroska-ish bytes").unwrap();
    let want = sha256_file(&path);

    // One-shot, with a UTF-8 display name and a digest.
    let (code, body) = curl(&[
        "-H",
        &auth,
        "-H",
        &format!("X-Checksum-SHA256: {want}"),
        "-F",
        &format!("file=@{};filename=Vidéo ファイル.mkv", path.display()),
        &s.url("/v1/files/uploads/?object_key=one/clip.mkv"),
    ]);
    assert_eq!(code, 201, "{body}");
    let v = json(&body);
    assert_eq!(v["upload"]["status"], "COMPLETED");
    assert_eq!(v["upload"]["file"]["name"], "Vidéo ファイル.mkv");
    assert_eq!(v["upload"]["file"]["sha256"], want.as_str());
    assert_eq!(v["upload"]["file"]["mime_type"], "video/x-matroska");
    assert!(v["upload"]["file"]["uri"].as_str().unwrap().starts_with(&s.base));

    // Three-step: create, post the form params then the data, complete with PUT.
    let (code, body) = curl(&[
        "-X",
        "POST",
        "-H",
        &auth,
        &s.url("/v1/files/uploads/?object_key=two/clip.mkv"),
    ]);
    assert_eq!(code, 201, "{body}");
    let up = json(&body)["upload"].clone();
    let url = up["form_post_url"].as_str().unwrap().to_string();
    assert!(url.starts_with(&s.base), "{url} points at this host");
    let p = &up["form_post_params"];
    let mut args: Vec<String> = Vec::new();
    for k in ["upload_id", "upload_token", "chunk", "chunks"] {
        args.push("-F".into());
        args.push(field(k, p[k].as_str().unwrap()));
    }
    args.extend(["-F".into(), format!("file=@{}", path.display()), url.clone()]);
    let (code, body) = curl(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(code, 200, "{body}");
    let id = up["id"].as_str().unwrap();
    let put = |n: usize| {
        curl(&[
            "-X",
            "PUT",
            "-H",
            &auth,
            "-H",
            "Content-Type: application/json",
            "-d",
            &format!("{{\"upload\":{{\"nb_chunks\":{n}}}}}"),
            &s.url(&format!("/v1/files/uploads/{id}")),
        ])
    };
    let (code, body) = put(1);
    assert_eq!(code, 200, "{body}");
    assert_eq!(json(&body)["upload"]["status"], "COMPLETED");
    let (code, body) = curl(&["-H", &auth, &s.url(&format!("/v1/files/uploads/{id}"))]);
    assert_eq!(
        (code, json(&body)["upload"]["status"].as_str()),
        (200, Some("COMPLETED"))
    );

    // Chunked: three parts posted separately, the last one twice (a retry after a drop).
    let (_, body) = curl(&[
        "-X",
        "POST",
        "-H",
        &auth,
        &s.url("/v1/files/uploads/?object_key=three.bin"),
    ]);
    let up = json(&body)["upload"].clone();
    let id = up["id"].as_str().unwrap().to_string();
    let token = up["form_post_params"]["upload_token"]
        .as_str()
        .unwrap()
        .to_string();
    let mut whole = Vec::new();
    for (i, idx) in [0usize, 1, 2, 2].iter().enumerate() {
        let part = dir.path().join(format!("part{i}"));
        let bytes = vec![b'0' + *idx as u8; 70_000];
        std::fs::write(&part, &bytes).unwrap();
        if i < 3 {
            whole.extend_from_slice(&bytes);
        }
        let (code, body) = curl(&[
            "-F",
            &field("upload_token", &token),
            "-F",
            &format!("chunk={idx}"),
            "-F",
            "chunks=3",
            "-F",
            &format!("file=@{}", part.display()),
            up["form_post_url"].as_str().unwrap(),
        ]);
        assert_eq!(code, 200, "{body}");
    }
    let id_ref = &id;
    let (code, body) = curl(&[
        "-X",
        "PUT",
        "-H",
        &auth,
        "-d",
        "{\"upload\":{\"nb_chunks\":3}}",
        &s.url(&format!("/v1/files/uploads/{id_ref}")),
    ]);
    assert_eq!(code, 200, "{body}");
    let f = &json(&body)["upload"]["file"];
    assert_eq!(f["size"], 210_000);
    let sha: String = sha2::Sha256::digest(&whole)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(f["sha256"], sha.as_str());
    assert_eq!(sha256_file(&blob_path(&s.data_dir, &sha)), sha);
    assert_eq!(tmp_entries(&s.data_dir), 0);
}

/// Sends a chunked multipart body that never ends (up to `cap` bytes, at most about
/// 64 MiB/s, a fast network rather than loopback) from one thread while reading the
/// answer on another. Returns (bytes sent when the answer arrived,
/// the answer's head, bytes sent in all, whether the server cut the connection).
fn endless_upload(base: &str, tok: &str, cap: u64) -> (u64, String, u64, bool) {
    use std::sync::atomic::AtomicU64;
    let addr = base.trim_start_matches("http://").to_string();
    let mut sock = TcpStream::connect(&addr).unwrap();
    sock.set_write_timeout(Some(Duration::from_secs(5))).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let head = format!(
        "POST /v1/files/uploads/ HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {tok}\r\n\
         Content-Type: multipart/form-data; boundary=B\r\nTransfer-Encoding: chunked\r\n\r\n"
    );
    sock.write_all(head.as_bytes()).unwrap();
    let preamble = "--B\r\nContent-Disposition: form-data; name=\"file\"; filename=\"x\"\r\n\r\n";
    sock.write_all(format!("{:x}\r\n{preamble}\r\n", preamble.len()).as_bytes())
        .unwrap();
    let sent = Arc::new(AtomicU64::new(0));
    let writer = {
        let (mut sock, sent) = (sock.try_clone().unwrap(), sent.clone());
        std::thread::spawn(move || {
            let block = vec![b'z'; 64 * 1024];
            let chunk_head = format!("{:x}\r\n", block.len());
            while sent.load(Ordering::SeqCst) < cap {
                let ok = sock
                    .write_all(chunk_head.as_bytes())
                    .and_then(|_| sock.write_all(&block))
                    .and_then(|_| sock.write_all(b"\r\n"));
                if ok.is_err() {
                    return true;
                }
                sent.fetch_add(block.len() as u64, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(1));
            }
            false
        })
    };
    let mut resp = vec![0u8; 4096];
    let n = sock.read(&mut resp).unwrap_or(0);
    let at_answer = sent.load(Ordering::SeqCst);
    let cut = writer.join().unwrap();
    (
        at_answer,
        String::from_utf8_lossy(&resp[..n]).into_owned(),
        sent.load(Ordering::SeqCst),
        cut,
    )
}

#[test]
fn size_limit_stops_reading_a_streamed_body_answers_413_and_leaves_no_temp_file() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let s = Server::start_in(&data, &[("FILEGATE_STORAGE__MAX_UPLOAD_SIZE", "1000000")]);
    let tok = token(&s, &credentials(&s));
    let start = Instant::now();
    let (at_answer, resp, total, cut) = endless_upload(&s.base, &tok, 4 << 30);
    assert!(resp.starts_with("HTTP/1.1 413"), "{resp}");
    assert!(resp.contains("upload_too_large"), "{resp}");
    assert!(resp.to_ascii_lowercase().contains("connection: close"), "{resp}");
    // The answer came once the limit was passed: what was sent by then is the limit plus
    // whatever the kernel's socket buffers took.
    assert!(at_answer < 64 << 20, "{at_answer} bytes sent before the answer");
    // Then the server closed the connection (after actix's lingering close, 1 s) instead
    // of reading the rest of the body.
    assert!(cut && total < 512 << 20, "the server kept reading: {total} bytes");
    eprintln!(
        "413 after {} KiB sent; connection cut after {} MiB, {:.1}s",
        at_answer >> 10,
        total >> 20,
        start.elapsed().as_secs_f64()
    );
    assert_eq!(tmp_entries(&data), 0);

    // curl with a declared length over the limit is refused before the body is sent.
    let big = dir.path().join("big");
    std::fs::File::create(&big).unwrap().set_len(5_000_000).unwrap();
    let start = Instant::now();
    let (code, body) = curl(&[
        "-H",
        &format!("Authorization: Bearer {tok}"),
        "-F",
        &format!("file=@{}", big.display()),
        &s.url("/v1/files/uploads/"),
    ]);
    assert_eq!(code, 413, "{body}");
    assert!(start.elapsed() < Duration::from_secs(10));
    assert_eq!(tmp_entries(&data), 0);
    let (code, _) = curl(&[
        "-H",
        &format!("Authorization: Bearer {tok}"),
        &s.url("/v1/files/"),
    ]);
    assert_eq!(code, 200, "the server is still serving");
}

#[test]
fn a_2_gib_upload_keeps_server_resident_memory_under_64_mib() {
    let s = Server::start();
    let tok = token(&s, &credentials(&s));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("two-gib.bin");
    std::fs::File::create(&path).unwrap().set_len(2 << 30).unwrap(); // sparse: no disk used
    let pid = s.child.id();
    let peak = Arc::new(Mutex::new(0u64));
    let done = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (peak, done) = (peak.clone(), done.clone());
        std::thread::spawn(move || {
            while !done.load(Ordering::SeqCst) {
                let rss = vm_kib(pid, "VmRSS:");
                let mut p = peak.lock().unwrap();
                *p = (*p).max(rss);
                drop(p);
                std::thread::sleep(Duration::from_millis(50));
            }
        })
    };
    let start = Instant::now();
    let (code, body) = curl(&[
        "-H",
        &format!("Authorization: Bearer {tok}"),
        "-F",
        &format!("file=@{}", path.display()),
        &s.url("/v1/files/uploads/?object_key=big.bin"),
    ]);
    let took = start.elapsed();
    done.store(true, Ordering::SeqCst);
    sampler.join().unwrap();
    assert_eq!(code, 201, "{body}");
    let f = &json(&body)["upload"]["file"];
    assert_eq!(f["size"], 2u64 << 30);
    assert_eq!(
        f["sha256"],
        "a7c744c13cc101ed66c29f672f92455547889cc586ce6d44fe76ae824958ea51"
    );
    let hwm = vm_kib(pid, "VmHWM:");
    eprintln!(
        "2 GiB upload: {:.1}s, peak VmRSS sampled {} KiB, VmHWM {} KiB",
        took.as_secs_f64(),
        *peak.lock().unwrap(),
        hwm
    );
    assert!(hwm < 64 * 1024, "VmHWM {hwm} KiB");
    let blob = blob_path(&s.data_dir, f["sha256"].as_str().unwrap());
    assert_eq!(std::fs::metadata(&blob).unwrap().len(), 2 << 30);
    assert_eq!(tmp_entries(&s.data_dir), 0);
}

fn cli_upload(s: &Server, creds: &(String, String), args: &[&str]) -> std::process::Output {
    std::process::Command::new(binary())
        .arg("upload")
        .args(args)
        .arg("--server")
        .arg(&s.base)
        .env("FILEGATE_CLIENT_ID", &creds.0)
        .env("FILEGATE_CLIENT_SECRET", &creds.1)
        .env_remove("FILEGATE_CONFIG")
        .output()
        .unwrap()
}

#[test]
fn cli_upload_sends_a_file_with_credentials_from_the_environment() {
    let s = Server::start();
    let creds = credentials(&s);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notes é.pdf");
    std::fs::write(&path, b"%PDF-1.5 some pages").unwrap();
    let want = sha256_file(&path);
    let p = path.to_str().unwrap();
    let out = cli_upload(&s, &creds, &[p, "--object-key", "docs/notes.pdf"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains(&format!("sha256: {want}")), "{stdout}");
    assert!(stdout.contains("object_key: docs/notes.pdf"), "{stdout}");
    assert!(stdout.contains("name: notes é.pdf"), "{stdout}");
    assert!(stdout.contains("mime_type: application/pdf"), "{stdout}");
    assert!(
        !stderr.contains('%'),
        "no progress bar when stderr is not a terminal: {stderr}"
    );
    let id = stdout.lines().find_map(|l| l.strip_prefix("id: ")).unwrap();
    let tok = token(&s, &creds);
    let (code, body) = curl(&[
        "-H",
        &format!("Authorization: Bearer {tok}"),
        &s.url(&format!("/v1/files/{id}")),
    ]);
    assert_eq!(code, 200, "{body}");

    // Refusals are reported with their reason and a failing exit status.
    let out = cli_upload(&s, &creds, &[p, "--object-key", "docs/notes.pdf"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("409 object_key_exists (object_key)"), "{stderr}");
    let out = cli_upload(&s, &(creds.0.clone(), "wrong".into()), &[p]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid_client"));
    let out = std::process::Command::new(binary())
        .args(["upload", p, "--server", "https://example.invalid"])
        .env("FILEGATE_CLIENT_ID", &creds.0)
        .env("FILEGATE_CLIENT_SECRET", &creds.1)
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("https:// is not supported"));
}

#[test]
fn cli_upload_draws_a_progress_bar_on_a_terminal() {
    let s = Server::start();
    let creds = credentials(&s);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("blob.bin");
    std::fs::write(&path, vec![5u8; 3 << 20]).unwrap();
    // `script` gives the command a pseudo-terminal.
    let cmd = format!(
        "{} upload {} --server {}",
        binary().display(),
        path.display(),
        s.base
    );
    let out = std::process::Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .env("FILEGATE_CLIENT_ID", &creds.0)
        .env("FILEGATE_CLIENT_SECRET", &creds.1)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("100%  3.0 MiB / 3.0 MiB"), "{text}");
    assert!(text.contains("size: 3145728"), "{text}");
}

#[test]
fn a_chunk_cut_by_a_dropped_connection_is_discarded_and_can_be_posted_again() {
    let s = Server::start();
    let tok = token(&s, &credentials(&s));
    let auth = format!("Authorization: Bearer {tok}");
    let (_, body) = curl(&[
        "-X",
        "POST",
        "-H",
        &auth,
        &s.url("/v1/files/uploads/?object_key=cut.bin"),
    ]);
    let up = json(&body)["upload"].clone();
    let id = up["id"].as_str().unwrap().to_string();
    let ut = up["form_post_params"]["upload_token"]
        .as_str()
        .unwrap()
        .to_string();
    let data: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();

    // Half of the chunk, then the connection drops.
    let body_head = format!(
        "--B\r\nContent-Disposition: form-data; name=\"upload_token\"\r\n\r\n{ut}\r\n\
         --B\r\nContent-Disposition: form-data; name=\"file\"; filename=\"cut.bin\"\r\n\r\n"
    );
    let total = body_head.len() + data.len() + "\r\n--B--\r\n".len();
    let addr = s.base.trim_start_matches("http://");
    let mut sock = TcpStream::connect(addr).unwrap();
    let head = format!(
        "POST /v1/files/uploads/{id}/form HTTP/1.1\r\nHost: {addr}\r\n\
         Content-Type: multipart/form-data; boundary=B\r\nContent-Length: {total}\r\n\r\n"
    );
    sock.write_all(head.as_bytes()).unwrap();
    sock.write_all(body_head.as_bytes()).unwrap();
    sock.write_all(&data[..data.len() / 2]).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    drop(sock);

    let deadline = Instant::now() + Duration::from_secs(10);
    while tmp_entries(&s.data_dir) > 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(tmp_entries(&s.data_dir), 0, "the partial chunk was not kept");
    let (_, body) = curl(&["-H", &auth, &s.url(&format!("/v1/files/uploads/{id}"))]);
    let v = json(&body);
    assert_eq!(v["upload"]["status"], "UPLOADING");
    assert_eq!(v["upload"]["chunks_received"], serde_json::json!([]));

    // The client posts it again and completes.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cut.bin");
    std::fs::write(&path, &data).unwrap();
    let (code, body) = curl(&[
        "-F",
        &field("upload_token", &ut),
        "-F",
        &format!("file=@{}", path.display()),
        up["form_post_url"].as_str().unwrap(),
    ]);
    assert_eq!(code, 200, "{body}");
    let (code, body) = curl(&[
        "-X",
        "PUT",
        "-H",
        &auth,
        "-d",
        "{\"upload\":{\"nb_chunks\":1}}",
        &s.url(&format!("/v1/files/uploads/{id}")),
    ]);
    assert_eq!(code, 200, "{body}");
    assert_eq!(
        json(&body)["upload"]["file"]["sha256"],
        sha256_file(&path).as_str()
    );
}
