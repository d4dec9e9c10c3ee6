//! Load and hostile connections against the real binary, on loopback and bounded in
//! time: slowloris heads and bodies are cut by the timeouts while a normal client is
//! served; oversized heads get 431; request-smuggling shapes are refused and never
//! answered as two requests; 1 000 concurrent downloads plus uploads for a fixed time
//! (10 s; `FILEGATE_LONG_TESTS=1`: 60 s) with zero errors and flat memory.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

fn json(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

fn addr(s: &Server) -> String {
    s.base.trim_start_matches("http://").to_string()
}

/// Sends `raw` on a new connection and reads until the server closes it (or `wait`).
/// Returns (everything read, whether the server closed the connection).
fn exchange(s: &Server, raw: &[u8], wait: Duration) -> (String, bool) {
    let mut c = TcpStream::connect(addr(s)).unwrap();
    c.set_read_timeout(Some(wait)).unwrap();
    let _ = c.write_all(raw);
    let mut out = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    let closed = loop {
        match c.read(&mut buf) {
            Ok(0) => break true,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break true,
            Err(_) => break false,
        }
    };
    (String::from_utf8_lossy(&out).into_owned(), closed)
}

/// The status lines in a stream of answers (an answer may follow a body on its line).
fn status_lines(answer: &str) -> Vec<&str> {
    answer
        .match_indices("HTTP/1.")
        .map(|(i, _)| answer[i..].lines().next().unwrap_or(""))
        .collect()
}

fn healthy(s: &Server) {
    let (code, body) = curl(&["--max-time", "10", &s.url("/healthz")]);
    assert_eq!(code, 200, "the server stopped serving: {body}");
}

/// A client that sends `head` (and `body` if any), then trickles one more byte every
/// 200 ms. Returns (seconds until the server closed the connection, what it answered),
/// or None if it was still open after `limit`.
fn trickle(addr: String, head: Vec<u8>, filler: u8, limit: Duration) -> Option<(f64, String)> {
    let start = Instant::now();
    let mut c = TcpStream::connect(addr).unwrap();
    c.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    c.write_all(&head).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while start.elapsed() < limit {
        if c.write_all(&[filler]).is_err() {
            // Reset: read what was answered before.
            let _ = c.read_to_end(&mut got);
            return Some((
                start.elapsed().as_secs_f64(),
                String::from_utf8_lossy(&got).into_owned(),
            ));
        }
        match c.read(&mut buf) {
            Ok(0) => {
                return Some((
                    start.elapsed().as_secs_f64(),
                    String::from_utf8_lossy(&got).into_owned(),
                ))
            }
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                return Some((
                    start.elapsed().as_secs_f64(),
                    String::from_utf8_lossy(&got).into_owned(),
                ))
            }
            Err(_) => {}
        }
    }
    None
}

#[test]
fn slowloris_heads_and_bodies_are_cut_by_timeouts_while_normal_clients_are_served() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let s = Server::start_in(
        &data,
        &[
            ("FILEGATE_SERVER__REQUEST_TIMEOUT", "1"),
            ("FILEGATE_SERVER__BODY_TIMEOUT", "1"),
            ("FILEGATE_SERVER__BODY_MIN_RATE", "1000"),
        ],
    );
    let tok = s.token();
    let limit = Duration::from_secs(30);
    let mut slow = Vec::new();
    for i in 0..40 {
        // Heads that never end: one more header byte every 200 ms.
        let head = format!("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow-{i}: ").into_bytes();
        let a = addr(&s);
        slow.push(("head", std::thread::spawn(move || trickle(a, head, b'a', limit))));
    }
    for i in 0..20 {
        // Upload bodies that trickle: a complete head, then 5 bytes a second.
        let boundary = "slow-boundary";
        let head = format!(
            "POST /v1/files/uploads/?object_key=slow/{i} HTTP/1.1\r\nHost: x\r\n\
             Authorization: Bearer {tok}\r\nContent-Type: multipart/form-data; boundary={boundary}\r\n\
             Content-Length: 1000000\r\n\r\n--{boundary}\r\n\
             Content-Disposition: form-data; name=\"file\"; filename=\"s.bin\"\r\n\r\n"
        )
        .into_bytes();
        let a = addr(&s);
        slow.push(("body", std::thread::spawn(move || trickle(a, head, b'b', limit))));
    }
    // Meanwhile a normal client uploads, gets a link and downloads, again and again.
    let files = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let mut served = 0;
    while started.elapsed() < Duration::from_secs(4) {
        let mut bytes = vec![0u8; 100_000];
        filegate::ids::random_bytes(&mut bytes);
        let path = files.path().join("n.bin");
        std::fs::write(&path, &bytes).unwrap();
        let (code, body) = curl(&[
            "--max-time",
            "10",
            "-H",
            &format!("Authorization: Bearer {tok}"),
            "-F",
            &format!("file=@{}", path.display()),
            &s.url(&format!("/v1/files/uploads/?object_key=normal/{served}")),
        ]);
        assert_eq!(code, 201, "a normal upload during the slowloris: {body}");
        let id = json(&body)["upload"]["file"]["id"].as_str().unwrap().to_string();
        let (code, body) = curl(&[
            "--max-time",
            "10",
            "-H",
            &format!("Authorization: Bearer {tok}"),
            &s.url(&format!("/v1/files/downloads/?file_id={id}")),
        ]);
        assert_eq!(code, 200, "{body}");
        let url = json(&body)["download"]["url"].as_str().unwrap().to_string();
        let got = files.path().join("got");
        let (code, _) = curl(&["--max-time", "10", "-o", got.to_str().unwrap(), &url]);
        assert_eq!(code, 200);
        assert_eq!(sha256_file(&got), sha256_hex(&bytes));
        served += 1;
    }
    let mut cut = Vec::new();
    for (kind, t) in slow {
        let (secs, answer) = t
            .join()
            .unwrap()
            .unwrap_or_else(|| panic!("a slowloris {kind} connection was still open after {limit:?}"));
        match kind {
            "head" => assert!(
                answer.is_empty() || answer.starts_with("HTTP/1.1 408"),
                "{answer}"
            ),
            _ => {
                assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
                assert!(answer.contains("\"reason\":\"body_too_slow\""), "{answer}");
            }
        }
        cut.push(secs);
    }
    healthy(&s);
    assert_eq!(tmp_entries(&data), 0, "the cut uploads' temp files are gone");
    let worst = cut.iter().cloned().fold(0.0, f64::max);
    eprintln!(
        "slowloris: 40 heads and 20 bodies cut (slowest after {worst:.1}s); {served} normal upload+download rounds served meanwhile"
    );
}

#[test]
fn oversized_heads_are_refused_with_431_and_the_server_keeps_serving() {
    let s = Server::start();
    // Over server.max_header_bytes (32 KiB): our 431, in the API's error shape.
    let (answer, _) = exchange(
        &s,
        format!(
            "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
            "a".repeat(40_000)
        )
        .as_bytes(),
        Duration::from_secs(5),
    );
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer}");
    assert!(answer.contains("\"reason\":\"headers_too_large\""), "{answer}");
    // The same through many fields, and through a long URI.
    let many: String = (0..60)
        .map(|i| format!("X-F{i}: {}\r\n", "b".repeat(600)))
        .collect();
    let (answer, _) = exchange(
        &s,
        format!("GET /healthz HTTP/1.1\r\nHost: x\r\n{many}\r\n").as_bytes(),
        Duration::from_secs(5),
    );
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer}");
    let (answer, _) = exchange(
        &s,
        format!("GET /healthz?{} HTTP/1.1\r\nHost: x\r\n\r\n", "q".repeat(40_000)).as_bytes(),
        Duration::from_secs(5),
    );
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer}");
    // Past what the HTTP parser buffers (128 KiB), or more than 96 fields: 431 and closed.
    for raw in [
        format!(
            "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Huge: {}\r\n\r\n",
            "c".repeat(300_000)
        ),
        format!(
            "GET /healthz HTTP/1.1\r\nHost: x\r\n{}\r\n",
            (0..120).map(|i| format!("X-N{i}: v\r\n")).collect::<String>()
        ),
    ] {
        let (answer, closed) = exchange(&s, raw.as_bytes(), Duration::from_secs(5));
        assert!(answer.starts_with("HTTP/1.1 431"), "{answer}");
        assert!(closed, "the connection is closed after a 431 from the parser");
    }
    // Just under the limit is served.
    let (answer, _) = exchange(
        &s,
        format!(
            "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Ok: {}\r\n\r\n",
            "d".repeat(30_000)
        )
        .as_bytes(),
        Duration::from_secs(5),
    );
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    healthy(&s);
}

#[test]
fn request_smuggling_shapes_are_refused_and_never_answered_as_two_requests() {
    let s = Server::start();
    let smuggled = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
    let shapes = [
        // CL.TE: Content-Length and Transfer-Encoding together.
        format!("POST /v1/oauth2/token HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n{smuggled}"),
        format!("POST /v1/oauth2/token HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 40\r\n\r\n0\r\n\r\n{smuggled}"),
        // Two Content-Lengths that disagree, and a list of them.
        format!("POST /v1/oauth2/token HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nContent-Length: 36\r\n\r\n{smuggled}"),
        format!("POST /v1/oauth2/token HTTP/1.1\r\nHost: x\r\nContent-Length: 0, 36\r\n\r\n{smuggled}"),
        // Transfer-Encodings a front end may read differently.
        format!("POST /v1/oauth2/token HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n0\r\n\r\n{smuggled}"),
        format!("POST /v1/oauth2/token HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n{smuggled}"),
        format!("POST /v1/oauth2/token HTTP/1.1\r\nHost: x\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n{smuggled}"),
        format!("POST /v1/oauth2/token HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n{smuggled}"),
        format!("POST /v1/oauth2/token HTTP/1.0\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n{smuggled}"),
        // A Content-Length that is not a plain number.
        format!("POST /v1/oauth2/token HTTP/1.1\r\nHost: x\r\nContent-Length: +0\r\n\r\n{smuggled}"),
        format!("POST /v1/oauth2/token HTTP/1.1\r\nHost: x\r\nContent-Length: 0x0\r\n\r\n{smuggled}"),
    ];
    for raw in &shapes {
        let (answer, closed) = exchange(&s, raw.as_bytes(), Duration::from_secs(5));
        let lines = status_lines(&answer);
        assert_eq!(lines.len(), 1, "{raw:?} was answered as {lines:?}");
        assert!(lines[0].starts_with("HTTP/1.1 400"), "{raw:?} → {}", lines[0]);
        assert!(
            closed,
            "{raw:?}: the connection stays open after a refused framing"
        );
    }
    // The harness itself counts answers right: two honest pipelined requests, two answers.
    let (answer, _) = exchange(
        &s,
        format!("{smuggled}GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
        Duration::from_secs(5),
    );
    assert_eq!(status_lines(&answer).len(), 2, "{answer}");
    healthy(&s);
}

/// Open-file limit of this process (soft), from /proc.
fn nofile() -> u64 {
    std::fs::read_to_string("/proc/self/limits")
        .unwrap()
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(3).and_then(|v| v.parse().ok()))
        .unwrap_or(1024)
}

/// One keep-alive download loop; returns (downloads, errors).
fn downloader(
    addr: String,
    path: String,
    want: Arc<Vec<u8>>,
    stop: Arc<AtomicBool>,
    errors: Arc<Mutex<Vec<String>>>,
) -> u64 {
    let mut done = 0;
    let mut conn: Option<BufReader<TcpStream>> = None;
    while !stop.load(Ordering::Relaxed) {
        let r = (|| -> Result<(), String> {
            if conn.is_none() {
                let c = TcpStream::connect(&addr).map_err(|e| format!("connect: {e}"))?;
                c.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
                conn = Some(BufReader::with_capacity(64 * 1024, c));
            }
            let c = conn.as_mut().unwrap();
            c.get_mut()
                .write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
                .map_err(|e| format!("write: {e}"))?;
            let mut line = String::new();
            c.read_line(&mut line).map_err(|e| format!("status: {e}"))?;
            if !line.starts_with("HTTP/1.1 200") {
                return Err(format!("status {line:?}"));
            }
            let mut len = None;
            loop {
                line.clear();
                c.read_line(&mut line).map_err(|e| format!("header: {e}"))?;
                if line == "\r\n" || line.is_empty() {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    len = v.trim().parse::<usize>().ok();
                }
            }
            let len = len.ok_or("no content-length")?;
            let mut body = vec![0u8; len];
            c.read_exact(&mut body).map_err(|e| format!("body: {e}"))?;
            if body != *want {
                return Err("other bytes".into());
            }
            Ok(())
        })();
        match r {
            Ok(()) => done += 1,
            Err(e) => {
                conn = None;
                if !stop.load(Ordering::Relaxed) {
                    errors.lock().unwrap().push(e);
                }
            }
        }
    }
    done
}

#[test]
fn a_thousand_concurrent_downloads_plus_uploads_for_a_fixed_time_have_no_errors_and_flat_memory() {
    const CLIENTS: usize = 1000;
    let secs = if long_tests() { 60 } else { 10 };
    if nofile() < 4 * CLIENTS as u64 {
        let _ = std::process::Command::new("prlimit")
            .args(["--pid", &std::process::id().to_string(), "--nofile=8192:8192"])
            .status();
    }
    if nofile() < 4 * CLIENTS as u64 {
        assert!(!in_ci(), "CI must allow {} open files", 4 * CLIENTS);
        eprintln!(
            "SKIPPED: the open-file limit is {} (need {})",
            nofile(),
            4 * CLIENTS
        );
        return;
    }
    let s = Server::start(); // inherits the raised limit
    let tok = s.token();
    let mut want = vec![0u8; 64 * 1024];
    filegate::ids::random_bytes(&mut want);
    let files = tempfile::tempdir().unwrap();
    let src = files.path().join("served.bin");
    std::fs::write(&src, &want).unwrap();
    let (code, body) = curl(&[
        "-H",
        &format!("Authorization: Bearer {tok}"),
        "-F",
        &format!("file=@{}", src.display()),
        &s.url("/v1/files/uploads/?object_key=served.bin"),
    ]);
    assert_eq!(code, 201, "{body}");
    let id = json(&body)["upload"]["file"]["id"].as_str().unwrap().to_string();
    let (code, body) = curl(&[
        "-H",
        &format!("Authorization: Bearer {tok}"),
        &s.url(&format!("/v1/files/downloads/?file_id={id}")),
    ]);
    assert_eq!(code, 200, "{body}");
    let url = json(&body)["download"]["url"].as_str().unwrap().to_string();
    let path = url[url.find("/d/").unwrap()..].to_string();

    let want = Arc::new(want);
    let stop = Arc::new(AtomicBool::new(false));
    let errors = Arc::new(Mutex::new(Vec::new()));
    let mut downloaders = Vec::new();
    for _ in 0..CLIENTS {
        let (a, p, w, st, e) = (addr(&s), path.clone(), want.clone(), stop.clone(), errors.clone());
        downloaders.push(
            std::thread::Builder::new()
                .stack_size(256 * 1024)
                .spawn(move || downloader(a, p, w, st, e))
                .unwrap(),
        );
    }
    let uploads = Arc::new(AtomicU64::new(0));
    let mut uploaders = Vec::new();
    for u in 0..4 {
        let (base, tok, stop, errors, uploads) = (
            s.base.clone(),
            tok.clone(),
            stop.clone(),
            errors.clone(),
            uploads.clone(),
        );
        let dir = files.path().to_path_buf();
        uploaders.push(std::thread::spawn(move || {
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                i += 1;
                let mut bytes = vec![0u8; 256 * 1024];
                filegate::ids::random_bytes(&mut bytes);
                let p = dir.join(format!("u{u}-{i}"));
                std::fs::write(&p, &bytes).unwrap();
                let (code, body) = curl(&[
                    "--max-time",
                    "60",
                    "-H",
                    &format!("Authorization: Bearer {tok}"),
                    "-F",
                    &format!("file=@{}", p.display()),
                    &format!("{base}/v1/files/uploads/?object_key=load/{u}/{i}"),
                ]);
                if code == 201 && json(&body)["upload"]["file"]["sha256"] == sha256_hex(&bytes).as_str() {
                    uploads.fetch_add(1, Ordering::Relaxed);
                } else {
                    errors.lock().unwrap().push(format!("upload: {code} {body}"));
                }
                let _ = std::fs::remove_file(&p);
            }
        }));
    }
    // Resident memory, sampled: the first quarter warms up; the rest must stay flat.
    let pid = s.child.id();
    let start = Instant::now();
    let mut samples: Vec<(f64, u64)> = Vec::new();
    while start.elapsed() < Duration::from_secs(secs) {
        samples.push((start.elapsed().as_secs_f64(), vm_kib(pid, "VmRSS:")));
        std::thread::sleep(Duration::from_millis(250));
    }
    stop.store(true, Ordering::SeqCst);
    let downloads: u64 = downloaders.into_iter().map(|t| t.join().unwrap()).sum();
    for u in uploaders {
        u.join().unwrap();
    }
    let errors = errors.lock().unwrap();
    assert!(
        errors.is_empty(),
        "{} errors, first: {:?}",
        errors.len(),
        &errors[..errors.len().min(5)]
    );
    let quarter = secs as f64 / 4.0;
    let warm = samples
        .iter()
        .filter(|(t, _)| *t <= quarter)
        .map(|s| s.1)
        .max()
        .unwrap();
    let half: Vec<u64> = samples
        .iter()
        .filter(|(t, _)| *t > secs as f64 / 2.0)
        .map(|s| s.1)
        .collect();
    let late_max = *half.iter().max().unwrap();
    let hwm = vm_kib(pid, "VmHWM:");
    eprintln!(
        "load: {CLIENTS} concurrent downloaders for {secs}s: {downloads} downloads of 64 KiB ({:.0}/s), {} uploads of 256 KiB, 0 errors; RSS after warm-up {} KiB, max in the second half {} KiB, VmHWM {} KiB",
        downloads as f64 / secs as f64,
        uploads.load(Ordering::Relaxed),
        warm,
        late_max,
        hwm
    );
    assert!(downloads >= CLIENTS as u64, "only {downloads} downloads");
    assert!(uploads.load(Ordering::Relaxed) > 0, "no upload completed");
    assert!(
        late_max <= warm + 32 * 1024,
        "memory grew under a steady load: {warm} KiB after warm-up, {late_max} KiB later"
    );
    healthy(&s);
}
