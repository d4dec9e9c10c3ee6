//! The crash harness: the real binary SIGKILLed at random moments while clients upload
//! (one-shot and three-step) and issue and follow download links, over ≥ 50 rounds
//! (`FILEGATE_LONG_TESTS=1`: 200). After every restart no temp file survives the
//! start-up sweep; after the last crash the catalog passes `PRAGMA integrity_check`
//! and `foreign_key_check`; after the last restart every upload answered 201/COMPLETED
//! is there and intact by SHA-256, every link handed out still serves those bytes, no
//! row lacks its blob, no blob lacks a row, and `filegate verify --checksums` is clean.

mod common;

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;
use sha2::Digest;

fn json(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

fn random_u32() -> u32 {
    let mut r = [0u8; 4];
    filegate::ids::random_bytes(&mut r);
    u32::from_le_bytes(r)
}

/// GET `url` into `out`; the status when the whole answer arrived, None otherwise.
fn fetch(url: &str, out: &Path) -> Option<u16> {
    let o = std::process::Command::new("curl")
        .args(["-s", "--max-time", "20", "-w", "%{http_code}", "-o"])
        .arg(out)
        .arg(url)
        .output()
        .expect("curl is installed");
    o.status
        .success()
        .then(|| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .flatten()
}

type Acked = Arc<Mutex<Vec<(String, String)>>>;

/// One client's loop: uploads random content until the server goes away; records
/// (file id, sha256) of every upload that was answered as stored.
fn uploader(
    base: String,
    tok: String,
    tag: String,
    acked: Arc<Mutex<Vec<(String, String)>>>,
    stop: Arc<AtomicBool>,
) {
    let dir = tempfile::tempdir().unwrap();
    let auth = format!("Authorization: Bearer {tok}");
    let mut i = 0;
    while !stop.load(Ordering::SeqCst) {
        i += 1;
        let mut r = [0u8; 4];
        filegate::ids::random_bytes(&mut r);
        let size = u32::from_le_bytes(r) as usize % (768 * 1024);
        let mut bytes = vec![0u8; size];
        filegate::ids::random_bytes(&mut bytes);
        let sha: String = sha2::Sha256::digest(&bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let path = dir.path().join(format!("f{i}"));
        std::fs::write(&path, &bytes).unwrap();
        let key = format!("{tag}/{i}");
        let stored = if i % 3 == 0 {
            three_step(&base, &auth, &key, &path)
        } else {
            let (code, body) = curl(&[
                "--max-time",
                "20",
                "-H",
                &auth,
                "-F",
                &format!("file=@{}", path.display()),
                &format!("{base}/v1/files/uploads/?object_key={key}"),
            ]);
            (code == 201).then(|| json(&body)["upload"]["file"]["id"].as_str().unwrap().to_string())
        };
        match stored {
            Some(id) => acked.lock().unwrap().push((id, sha)),
            None => {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
            }
        }
        let _ = std::fs::remove_file(&path);
    }
}

/// The three-step flow; `Some(file id)` when the PUT answered COMPLETED.
fn three_step(base: &str, auth: &str, key: &str, path: &Path) -> Option<String> {
    let (code, body) = curl(&[
        "--max-time",
        "20",
        "-X",
        "POST",
        "-H",
        auth,
        &format!("{base}/v1/files/uploads/?object_key={key}"),
    ]);
    if code != 201 {
        return None;
    }
    let up = json(&body)["upload"].clone();
    let (code, _) = curl(&[
        "--max-time",
        "20",
        "-F",
        &field("upload_token", up["form_post_params"]["upload_token"].as_str()?),
        "-F",
        &format!("file=@{}", path.display()),
        up["form_post_url"].as_str()?,
    ]);
    if code != 200 {
        return None;
    }
    let (code, body) = curl(&[
        "--max-time",
        "20",
        "-X",
        "PUT",
        "-H",
        auth,
        "-d",
        "{\"upload\":{\"nb_chunks\":1}}",
        &format!("{base}/v1/files/uploads/{}", up["id"].as_str()?),
    ]);
    if code != 200 || json(&body)["upload"]["status"] != "COMPLETED" {
        return None;
    }
    Some(json(&body)["upload"]["file"]["id"].as_str()?.to_string())
}

/// One client's loop: asks for links to files already acknowledged (plain, streaming,
/// anti_fraud, max_parallel_downloads), follows each and checks the bytes; records
/// (link, sha256) of every link it was handed.
fn issuer(base: String, tok: String, acked: Acked, issued: Acked, stop: Arc<AtomicBool>) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("got");
    let auth = format!("Authorization: Bearer {tok}");
    let options = [
        "",
        "&streaming=true",
        "&anti_fraud=true",
        "&max_parallel_downloads=8",
    ];
    let mut i = 0;
    while !stop.load(Ordering::SeqCst) {
        i += 1;
        let pick = {
            let a = acked.lock().unwrap();
            (!a.is_empty()).then(|| a[random_u32() as usize % a.len()].clone())
        };
        let Some((id, sha)) = pick else {
            std::thread::sleep(Duration::from_millis(20));
            continue;
        };
        let (code, body) = curl(&[
            "--max-time",
            "20",
            "-H",
            &auth,
            &format!(
                "{base}/v1/files/downloads/?file_id={id}{}",
                options[i % options.len()]
            ),
        ]);
        if code != 200 {
            continue;
        }
        let url = json(&body)["download"]["url"].as_str().unwrap().to_string();
        issued.lock().unwrap().push((url.clone(), sha.clone()));
        // Only a complete transfer counts: curl reports 200 for an answer cut by the kill.
        if fetch(&url, &out) == Some(200) {
            assert_eq!(sha256_file(&out), sha, "link {url} served other bytes");
        }
    }
}

#[test]
fn sigkill_during_uploads_and_link_issuance_loses_nothing_acknowledged_and_leaves_no_debris() {
    let rounds: usize = if long_tests() { 200 } else { 50 };
    const UPLOADERS: usize = 4;
    const ISSUERS: usize = 2;
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut server = Server::start_in(&data, &[]);
    let creds = server.credentials();
    let acked: Acked = Arc::new(Mutex::new(Vec::new()));
    let issued: Acked = Arc::new(Mutex::new(Vec::new()));
    for round in 0..rounds {
        let tok = server.token_with(&creds.0, &creds.1);
        let stop = Arc::new(AtomicBool::new(false));
        let mut clients = Vec::new();
        for c in 0..UPLOADERS {
            let (base, tok, acked, stop) = (server.base.clone(), tok.clone(), acked.clone(), stop.clone());
            clients.push(std::thread::spawn(move || {
                uploader(base, tok, format!("r{round}c{c}"), acked, stop)
            }));
        }
        for _ in 0..ISSUERS {
            let (base, tok, acked, issued, stop) = (
                server.base.clone(),
                tok.clone(),
                acked.clone(),
                issued.clone(),
                stop.clone(),
            );
            clients.push(std::thread::spawn(move || issuer(base, tok, acked, issued, stop)));
        }
        // A random moment: anywhere in a request, a write, a rename or a commit.
        std::thread::sleep(Duration::from_millis(100 + u64::from(random_u32() % 600)));
        stop.store(true, Ordering::SeqCst);
        server.kill(); // SIGKILL
        for c in clients {
            c.join().unwrap();
        }
        if round + 1 == rounds {
            // The catalog as the crash left it (SQLite replays its WAL on open).
            let c = rusqlite::Connection::open(data.join("catalog.sqlite3")).unwrap();
            let ok: String = c.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap();
            assert_eq!(ok, "ok", "integrity_check after the last crash");
            let fk: i64 = c
                .query_row("SELECT count(*) FROM pragma_foreign_key_check", [], |r| r.get(0))
                .unwrap();
            assert_eq!(fk, 0, "foreign_key_check after the last crash");
        }
        server = Server::start_in(&data, &[]);
        assert_eq!(
            tmp_entries(&data),
            0,
            "round {round}: temp files survived the start"
        );
    }

    // Every acknowledged upload is there, intact, through the API and on disk.
    let tok = server.token_with(&creds.0, &creds.1);
    let acked = acked.lock().unwrap().clone();
    assert!(
        acked.len() >= rounds,
        "only {} uploads were acknowledged",
        acked.len()
    );
    for (id, sha) in &acked {
        let (code, body) = curl(&[
            "-H",
            &format!("Authorization: Bearer {tok}"),
            &server.url(&format!("/v1/files/{id}")),
        ]);
        assert_eq!(code, 200, "acknowledged file {id} is missing: {body}");
        assert_eq!(json(&body)["file"]["sha256"], sha.as_str());
        assert_eq!(
            &sha256_file(&blob_path(&data, sha)),
            sha,
            "blob of {id} is damaged"
        );
    }
    // Links handed out before a crash keep serving the same bytes after it (a sample).
    let issued = issued.lock().unwrap().clone();
    assert!(!issued.is_empty(), "no link was issued");
    let got = dir.path().join("got");
    for (url, sha) in issued.iter().step_by(issued.len().div_ceil(150)) {
        // Each start listens on a new port: the link's path is what counts.
        let url = &server.url(&url[url.find("/d/").unwrap()..]);
        assert_eq!(fetch(url, &got), Some(200), "{url}");
        assert_eq!(&sha256_file(&got), sha, "{url}");
    }
    // No row lacks its blob, and no blob lacks a row (the start-up sweep removed orphans).
    let c = rusqlite::Connection::open(data.join("catalog.sqlite3")).unwrap();
    let mut st = c.prepare("SELECT id, blob_id, size FROM files").unwrap();
    let rows: Vec<(String, String, i64)> = st
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    for (id, blob, size) in &rows {
        let meta =
            std::fs::metadata(blob_path(&data, blob)).unwrap_or_else(|_| panic!("row {id} lacks its blob"));
        assert_eq!(meta.len() as i64, *size, "row {id}");
    }
    let blobs: i64 = c
        .query_row("SELECT count(*) FROM blobs", [], |r| r.get(0))
        .unwrap();
    assert_eq!(
        walk_blobs(&data.join("blobs")) as i64,
        blobs,
        "blob files and rows agree"
    );
    drop(st);
    drop(c);
    server.kill();
    let verify = std::process::Command::new(binary())
        .args(["verify", "--checksums", "--data-dir"])
        .arg(&data)
        .output()
        .unwrap();
    assert!(
        verify.status.success(),
        "filegate verify: {}{}",
        String::from_utf8_lossy(&verify.stdout),
        String::from_utf8_lossy(&verify.stderr)
    );
    eprintln!(
        "crash harness: {rounds} rounds, {} acknowledged uploads, {} rows, {} links issued, {:.0}s",
        acked.len(),
        rows.len(),
        issued.len(),
        started.elapsed().as_secs_f64()
    );
}
