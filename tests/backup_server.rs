//! `filegate backup`, `restore` and `verify` as an operator runs them, against a spawned
//! server that keeps taking uploads and deletes meanwhile.

mod common;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::Output;
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

fn hex_sha256(bytes: &[u8]) -> String {
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn blob_path(data: &Path, sha: &str) -> PathBuf {
    data.join("blobs").join(&sha[0..2]).join(&sha[2..4]).join(sha)
}

/// Runs `filegate ARGS --data-dir DATA`.
fn filegate(data: &Path, args: &[&str]) -> Output {
    std::process::Command::new(binary())
        .args(args)
        .arg("--data-dir")
        .arg(data)
        .env_remove("FILEGATE_CONFIG")
        .env("RUST_LOG", "warn")
        .output()
        .unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "status {:?}\n--- stdout\n{}--- stderr\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// The number after `key: ` on a line of the command's stdout.
fn value(o: &Output, key: &str) -> f64 {
    let out = String::from_utf8_lossy(&o.stdout);
    out.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}: ")))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {key}: in\n{}", text(o)))
}

/// One-shot upload with curl; `Some(file id)` on 201.
fn upload(base: &str, auth: &str, key: &str, path: &Path) -> Option<String> {
    let (code, body) = curl(&[
        "--max-time",
        "20",
        "-H",
        auth,
        "-F",
        &format!("file=@{}", path.display()),
        &format!("{base}/v1/files/uploads/?object_key={key}"),
    ]);
    (code == 201).then(|| json(&body)["upload"]["file"]["id"].as_str().unwrap().to_string())
}

/// Acknowledged uploads: file id → sha256 of what was sent.
type Acked = Arc<Mutex<Vec<(String, String)>>>;

/// Uploads random content (every fourth upload the same bytes, to share a blob) until
/// `stop`.
fn uploader(base: String, auth: String, tag: String, acked: Acked, stop: Arc<AtomicBool>) {
    let dir = tempfile::tempdir().unwrap();
    let mut i = 0;
    while !stop.load(Ordering::SeqCst) {
        i += 1;
        let bytes = if i % 4 == 0 {
            b"the same bytes, uploaded again and again".to_vec()
        } else {
            let mut r = [0u8; 4];
            filegate::ids::random_bytes(&mut r);
            let mut b = vec![0u8; 1 + u32::from_le_bytes(r) as usize % (1024 * 1024)];
            filegate::ids::random_bytes(&mut b);
            b
        };
        let path = dir.path().join(format!("f{i}"));
        std::fs::write(&path, &bytes).unwrap();
        if let Some(id) = upload(&base, &auth, &format!("{tag}/{i}"), &path) {
            acked.lock().unwrap().push((id, hex_sha256(&bytes)));
        }
    }
}

/// Deletes every third acknowledged file until `stop`; records each id before its
/// DELETE is sent.
fn deleter(
    base: String,
    auth: String,
    acked: Acked,
    deleting: Arc<Mutex<HashSet<String>>>,
    stop: Arc<AtomicBool>,
) {
    let mut next = 0;
    while !stop.load(Ordering::SeqCst) {
        let pick = acked.lock().unwrap().get(next).map(|(id, _)| id.clone());
        let Some(id) = pick else {
            std::thread::sleep(Duration::from_millis(20));
            continue;
        };
        next += 3;
        deleting.lock().unwrap().insert(id.clone());
        let (code, body) = curl(&["-X", "DELETE", "-H", &auth, &format!("{base}/v1/files/{id}")]);
        assert_eq!(code, 204, "{body}");
    }
}

/// (file id, sha256, blob id) of every file in a backup's catalog.
fn backup_files(dir: &Path) -> Vec<(String, String, String)> {
    let c = rusqlite::Connection::open_with_flags(
        dir.join("catalog.sqlite3"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    let mut st = c.prepare("SELECT id, sha256, blob_id FROM files").unwrap();
    let rows = st
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap();
    rows.collect::<Result<_, _>>().unwrap()
}

fn sha256_file(p: &Path) -> String {
    hex_sha256(&std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display())))
}

#[test]
fn backup_during_concurrent_uploads_restores_into_a_dir_that_verifies_and_serves() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let s = Server::start_in(&data, &[]);
    let creds = credentials(&s);
    let auth = format!("Authorization: Bearer {}", token(&s, &creds));
    // An upload left open: in progress at the backup, so left out of it.
    let (code, body) = curl(&[
        "-X",
        "POST",
        "-H",
        &auth,
        &s.url("/v1/files/uploads/?object_key=open"),
    ]);
    assert_eq!(code, 201, "{body}");

    let acked: Acked = Arc::default();
    let deleting: Arc<Mutex<HashSet<String>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let mut threads = Vec::new();
    for t in 0..3 {
        let (base, auth, acked, stop) = (s.base.clone(), auth.clone(), acked.clone(), stop.clone());
        threads.push(std::thread::spawn(move || {
            uploader(base, auth, format!("t{t}"), acked, stop)
        }));
    }
    {
        let (base, auth, acked, deleting, stop) = (
            s.base.clone(),
            auth.clone(),
            acked.clone(),
            deleting.clone(),
            stop.clone(),
        );
        threads.push(std::thread::spawn(move || {
            deleter(base, auth, acked, deleting, stop)
        }));
    }
    let deadline = Instant::now() + Duration::from_secs(90);
    while acked.lock().unwrap().len() < 100 {
        assert!(Instant::now() < deadline, "uploads too slow");
        std::thread::sleep(Duration::from_millis(50));
    }

    // Two backups while uploads and deletes go on: copied, then hard-linked.
    let mut taken = Vec::new();
    for copy in [true, false] {
        let dest = dir
            .path()
            .join(if copy { "backup-copied" } else { "backup-linked" });
        let before: Vec<String> = acked.lock().unwrap().iter().map(|(id, _)| id.clone()).collect();
        let started = Instant::now();
        let mut args = vec!["backup", dest.to_str().unwrap()];
        if copy {
            args.insert(1, "--copy");
        }
        let out = filegate(&data, &args);
        let wall = started.elapsed();
        assert!(out.status.success(), "{}", text(&out));
        let during = acked.lock().unwrap().len() - before.len();
        let deleted_by_end: HashSet<String> = deleting.lock().unwrap().clone();
        eprintln!(
            "backup{} during uploads: {} files, {} blobs, {} bytes in {:.2} s (CLI wall {:.2} s); \
             {} uploads acknowledged before it, {} while it ran",
            if copy { " --copy" } else { "" },
            value(&out, "files"),
            value(&out, "blobs"),
            value(&out, "bytes"),
            value(&out, "time"),
            wall.as_secs_f64(),
            before.len(),
            during,
        );
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(stdout.contains("uploads in progress, left out: 1"), "{stdout}");
        let (linked, copied) = (stdout.contains("0 copied)"), stdout.contains("(0 hard-linked"));
        assert!(if copy { copied } else { linked }, "{stdout}");
        taken.push((dest, out, before, deleted_by_end));
        std::thread::sleep(Duration::from_millis(300));
    }
    stop.store(true, Ordering::SeqCst);
    for t in threads {
        t.join().unwrap();
    }
    let sent: HashMap<String, String> = acked.lock().unwrap().iter().cloned().collect();
    eprintln!("{} files acknowledged in all", sent.len());

    for (dest, out, before, deleted_by_end) in &taken {
        let files = backup_files(dest);
        assert_eq!(files.len() as f64, value(out, "files"));
        // Everything acknowledged before the backup and not deleted meanwhile is in it;
        // nothing is in it that was not uploaded; each file's bytes are what was sent.
        let in_backup: HashSet<&str> = files.iter().map(|(id, _, _)| id.as_str()).collect();
        for id in before {
            assert!(
                in_backup.contains(id.as_str()) || deleted_by_end.contains(id),
                "acknowledged file {id} missing from {}",
                dest.display()
            );
        }
        for (id, sha, blob) in &files {
            assert_eq!(
                sent.get(id),
                Some(sha),
                "file {id} in the backup was never acknowledged"
            );
            assert_eq!(blob, sha);
            assert_eq!(&sha256_file(&blob_path(dest, blob)), sha, "blob of {id}");
        }

        // Restore into an empty directory; it verifies, and a server on it serves every file.
        let restored = dir.path().join(format!(
            "restored-{}",
            dest.file_name().unwrap().to_string_lossy()
        ));
        let out = filegate(
            &restored,
            &["restore", "--verify-checksums", dest.to_str().unwrap()],
        );
        assert!(out.status.success(), "{}", text(&out));
        assert_eq!(value(&out, "files") as usize, files.len());
        let out = filegate(&restored, &["verify", "--checksums"]);
        assert!(out.status.success(), "{}", text(&out));
        assert!(String::from_utf8_lossy(&out.stdout).contains("result: ok"));

        let s2 = Server::start_in(&restored, &[]);
        assert!(
            s2.banner_value("client_id").is_none(),
            "the restored catalog has its application"
        );
        let auth2 = format!("Authorization: Bearer {}", token(&s2, &creds));
        let (code, body) = curl(&["-H", &auth2, &s2.url("/v1/files/")]);
        assert_eq!(code, 200, "{body}");
        assert_eq!(json(&body)["total"].as_u64(), Some(files.len() as u64));
        for (id, sha, blob) in &files {
            let (code, body) = curl(&["-H", &auth2, &s2.url(&format!("/v1/files/{id}"))]);
            assert_eq!(code, 200, "{body}");
            let f = &json(&body)["file"];
            assert_eq!(f["sha256"].as_str(), Some(sha.as_str()));
            assert!(f.get("missing").is_none());
            assert_eq!(&sha256_file(&blob_path(&restored, blob)), sha);
        }
    }

    // The live data dir is still sound after all this.
    let out = filegate(&data, &["verify", "--checksums"]);
    assert!(out.status.success(), "{}", text(&out));
}

#[test]
fn verify_names_missing_and_orphan_blobs_repair_fixes_them_and_the_api_shows_missing() {
    let s = Server::start();
    let creds = credentials(&s);
    let auth = format!("Authorization: Bearer {}", token(&s, &creds));
    let work = tempfile::tempdir().unwrap();
    let mut ids = Vec::new();
    for (i, content) in [&b"first file"[..], b"second file", b"third file"]
        .iter()
        .enumerate()
    {
        let p = work.path().join(format!("f{i}"));
        std::fs::write(&p, content).unwrap();
        ids.push((
            upload(&s.base, &auth, &format!("k{i}"), &p).unwrap(),
            hex_sha256(content),
        ));
    }
    let data = s.data_dir.clone();
    let (lost_file, lost_blob) = ids[0].clone();
    std::fs::remove_file(blob_path(&data, &lost_blob)).unwrap();
    let orphan = hex_sha256(b"nobody uploaded this");
    std::fs::create_dir_all(blob_path(&data, &orphan).parent().unwrap()).unwrap();
    std::fs::write(blob_path(&data, &orphan), b"nobody uploaded this").unwrap();
    std::fs::write(data.join("blobs/notes.txt"), b"not a blob").unwrap();
    let leftover = data.join("uploads/aaaaaaaaaaaaaaaaaaaaaaaa");
    std::fs::create_dir_all(&leftover).unwrap();
    std::fs::write(leftover.join("bbbbbbbbbbbbbbbbbbbbbbbb"), b"chunk").unwrap();
    let hour_ago = std::time::SystemTime::now() - Duration::from_secs(3600);
    std::fs::File::open(&leftover)
        .unwrap()
        .set_modified(hour_ago)
        .unwrap();

    let out = filegate(&data, &["verify"]);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let line = |label: &str, subject: &str| {
        stdout
            .lines()
            .find(|l| l.starts_with(label) && l.contains(subject))
            .map(str::to_string)
    };
    let missing = line("MISSING", &lost_blob).unwrap_or_else(|| panic!("{stdout}"));
    assert!(missing.contains(&lost_file), "{missing}");
    assert!(line("ORPHAN", &orphan).is_some(), "{stdout}");
    assert!(line("STRAY", "blobs/notes.txt").is_some(), "{stdout}");
    assert!(
        line("LEFTOVER", "uploads/aaaaaaaaaaaaaaaaaaaaaaaa").is_some(),
        "{stdout}"
    );
    assert!(stdout.contains("result: 4 problem(s)"), "{stdout}");
    assert!(blob_path(&data, &orphan).exists(), "verify alone changes nothing");

    // Repair while the server runs.
    let out = filegate(&data, &["verify", "--repair"]);
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(stdout.contains("marked 1 file(s) missing"), "{stdout}");
    assert!(!blob_path(&data, &orphan).exists());
    assert!(!data.join("blobs/notes.txt").exists());
    assert!(!leftover.exists());
    for (id, sha) in &ids {
        let (code, body) = curl(&["-H", &auth, &s.url(&format!("/v1/files/{id}"))]);
        assert_eq!(code, 200, "{body}");
        let f = &json(&body)["file"];
        if *id == lost_file {
            assert_eq!(f["missing"], true, "{body}");
        } else {
            assert!(f.get("missing").is_none(), "{body}");
            assert!(blob_path(&data, sha).exists());
        }
    }

    // Afterwards only the marked file is reported, as known, and that is no failure.
    let out = filegate(&data, &["verify", "--checksums"]);
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let reported: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with(|c: char| c.is_ascii_uppercase()))
        .collect();
    assert_eq!(reported.len(), 1, "{stdout}");
    assert!(
        reported[0].starts_with("KNOWN") && reported[0].contains(&lost_file),
        "{stdout}"
    );
    assert!(stdout.contains("result: ok"), "{stdout}");
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains('%'),
        "no bar into a pipe"
    );

    // On a terminal (`script` gives it one), --checksums draws a progress bar.
    let cmd = format!(
        "{} verify --checksums --data-dir {}",
        binary().display(),
        data.display()
    );
    let out = std::process::Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .env_remove("FILEGATE_CONFIG")
        .output()
        .unwrap();
    let tty = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{tty}");
    assert!(tty.contains("] 100%"), "{tty}");
}

#[test]
fn restore_refuses_a_non_empty_target_and_an_incomplete_or_damaged_backup() {
    let s = Server::start();
    let creds = credentials(&s);
    let auth = format!("Authorization: Bearer {}", token(&s, &creds));
    let work = tempfile::tempdir().unwrap();
    let p = work.path().join("f");
    std::fs::write(&p, b"some bytes").unwrap();
    upload(&s.base, &auth, "k", &p).unwrap();
    let data = s.data_dir.clone();
    let bk = work.path().join("bk");
    let out = filegate(&data, &["backup", bk.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    let out = filegate(&data, &["backup", bk.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(text(&out).contains("is not empty"), "{}", text(&out));

    // The running server's data dir, and a directory with one stray file in it.
    let catalog_before = std::fs::metadata(data.join("catalog.sqlite3")).unwrap().len();
    let out = filegate(&data, &["restore", bk.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(text(&out).contains("is not empty"), "{}", text(&out));
    assert_eq!(
        std::fs::metadata(data.join("catalog.sqlite3")).unwrap().len(),
        catalog_before
    );
    let busy = work.path().join("busy");
    std::fs::create_dir(&busy).unwrap();
    std::fs::write(busy.join("README"), b"mine").unwrap();
    let out = filegate(&busy, &["restore", bk.to_str().unwrap()]);
    assert!(!out.status.success());
    assert_eq!(std::fs::read_dir(&busy).unwrap().count(), 1);

    // A backup without its marker, or with a blob gone, is refused before anything is written.
    let target = work.path().join("target");
    let sha = hex_sha256(b"some bytes");
    let blob = blob_path(&bk, &sha);
    std::fs::rename(&blob, work.path().join("aside")).unwrap();
    let out = filegate(&target, &["restore", bk.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(
        text(&out).contains(&format!("blob {sha}")) && text(&out).contains("missing"),
        "{}",
        text(&out)
    );
    assert!(!target.exists());
    std::fs::rename(work.path().join("aside"), &blob).unwrap();
    std::fs::rename(bk.join("BACKUP-COMPLETE"), work.path().join("marker")).unwrap();
    let out = filegate(&target, &["restore", bk.to_str().unwrap()]);
    assert!(
        text(&out).contains("BACKUP-COMPLETE is missing"),
        "{}",
        text(&out)
    );
    assert!(!target.exists());
    std::fs::rename(work.path().join("marker"), bk.join("BACKUP-COMPLETE")).unwrap();
    let out = filegate(&target, &["restore", bk.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));

    // A restore that never finished leaves a directory nothing opens.
    let half = work.path().join("half");
    std::fs::create_dir(&half).unwrap();
    std::fs::write(half.join("RESTORE-INCOMPLETE"), b"").unwrap();
    for args in [&["verify"][..], &["serve", "--listen", "127.0.0.1:0"]] {
        let out = filegate(&half, args);
        assert!(!out.status.success());
        assert!(text(&out).contains("did not finish"), "{}", text(&out));
    }
}
