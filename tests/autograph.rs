//! AutoGraph level 1 and backtraces (SPEC §7): tags are checked, a tagged link serves an
//! individual marked copy whose size, ETag and byte ranges are consistent, every format's
//! copy stays valid for independent tools, and a backtrace finds the right download,
//! refuses forged marks and reports unmarked files.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use actix_web::http::StatusCode;
use actix_web::test::{self, TestRequest};
use common::*;
use filegate::clock::Clock;
use serde_json::Value;

const BASE: &str = "http://localhost:8080";

// ---------------------------------------------------------------------------------
// Samples made in the test (PNG, PDF, ZIP, gzip) or with Debian's ffmpeg (MP4, WebM,
// JPEG).

fn png_chunk(out: &mut Vec<u8>, kind: &[u8], data: &[u8]) {
    out.extend((data.len() as u32).to_be_bytes());
    out.extend(kind);
    out.extend(data);
    let mut h = crc32fast::Hasher::new();
    h.update(kind);
    h.update(data);
    out.extend(h.finalize().to_be_bytes());
}

/// A `w`×`h` RGB PNG of noise-like pixels (so it compresses badly and can be large).
fn png(w: u32, h: u32) -> Vec<u8> {
    let mut raw = Vec::with_capacity(((w * 3 + 1) * h) as usize);
    let mut x = 0x1234_5678u32;
    for _ in 0..h {
        // Each row: filter type 0 (none), then its pixels.
        let row = (0..w * 3).map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        });
        raw.extend(std::iter::once(0u8).chain(row));
    }
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
    z.write_all(&raw).unwrap();
    let idat = z.finish().unwrap();
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::new();
    ihdr.extend(w.to_be_bytes());
    ihdr.extend(h.to_be_bytes());
    ihdr.extend([8, 2, 0, 0, 0]);
    png_chunk(&mut out, b"IHDR", &ihdr);
    for part in idat.chunks(8192) {
        png_chunk(&mut out, b"IDAT", part);
    }
    png_chunk(&mut out, b"IEND", b"");
    out
}

/// A one-page PDF with a correct cross-reference table.
fn pdf() -> Vec<u8> {
    let content = b"BT /F1 24 Tf 20 100 Td (filegate) Tj ET";
    let objs: Vec<Vec<u8>> = vec![
        b"<< /Type /Catalog /Pages 2 0 R >>".to_vec(),
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_vec(),
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 200] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>".to_vec(),
        [
            format!("<< /Length {} >>\nstream\n", content.len()).as_bytes(),
            content,
            b"\nendstream",
        ]
        .concat(),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>".to_vec(),
    ];
    let mut out = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n".to_vec();
    let mut offsets = Vec::new();
    for (i, o) in objs.iter().enumerate() {
        offsets.push(out.len());
        out.extend(format!("{} 0 obj\n", i + 1).as_bytes());
        out.extend(o);
        out.extend(b"\nendobj\n");
    }
    let xref = out.len();
    out.extend(format!("xref\n0 {}\n0000000000 65535 f \n", objs.len() + 1).as_bytes());
    for o in offsets {
        out.extend(format!("{o:010} 00000 n \n").as_bytes());
    }
    out.extend(
        format!(
            "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
            objs.len() + 1
        )
        .as_bytes(),
    );
    out
}

/// A ZIP with a stored and a deflated entry and an archive comment of its own.
fn zip() -> Vec<u8> {
    use zip::write::SimpleFileOptions;
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    w.start_file(
        "docs/readme.txt",
        SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored),
    )
    .unwrap();
    w.write_all(b"read me, then trace me\n").unwrap();
    w.start_file(
        "data.txt",
        SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated),
    )
    .unwrap();
    w.write_all(&b"filegate ".repeat(500)).unwrap();
    w.set_comment("made by the autograph test").unwrap();
    w.finish().unwrap().into_inner()
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut z = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    z.write_all(data).unwrap();
    z.finish().unwrap()
}

/// Runs a tool; (success, stdout, stderr).
fn run(cmd: &mut Command) -> (bool, String, String) {
    let out = cmd.stdin(Stdio::null()).output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn ffmpeg_sample(dir: &Path, name: &str, args: &[&str]) -> PathBuf {
    let out = dir.join(name);
    let (ok, _, err) = run(Command::new("ffmpeg")
        .args([
            "-v",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            "testsrc=duration=1:size=64x64:rate=10",
        ])
        .args(args)
        .arg(&out));
    assert!(ok, "ffmpeg {name}: {err}");
    out
}

/// The same, written to a pipe: the muxer cannot seek back, so sizes stay unknown
/// (Matroska) or the file is fragmented (MP4) — the layouts of live streams.
fn ffmpeg_piped(dir: &Path, name: &str, args: &[&str]) -> PathBuf {
    let out = dir.join(name);
    let o = Command::new("ffmpeg")
        .args([
            "-v",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            "testsrc=duration=1:size=64x64:rate=10",
        ])
        .args(args)
        .arg("pipe:1")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "ffmpeg {name}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    std::fs::write(&out, o.stdout).unwrap();
    out
}

// ---------------------------------------------------------------------------------
// In process.

struct Fx {
    env: TestEnv,
    token: String,
}

impl Fx {
    fn new() -> Fx {
        let env = TestEnv::new();
        let token = env.token("mediahub,autograph");
        Fx { env, token }
    }

    async fn call(&self, req: TestRequest) -> (StatusCode, actix_web::http::header::HeaderMap, Vec<u8>) {
        let app = self.env.service().await;
        let res = test::call_service(&app, req.to_request()).await;
        let status = res.status();
        let headers = res.headers().clone();
        (status, headers, test::read_body(res).await.to_vec())
    }

    async fn ask(&self, token: &str, query: &str) -> (StatusCode, Value) {
        let req = TestRequest::get()
            .uri(&format!("/v1/files/downloads/?{query}"))
            .insert_header(("Authorization", format!("Bearer {token}")));
        let (s, _, b) = self.call(req).await;
        (s, serde_json::from_slice(&b).unwrap_or(Value::Null))
    }

    async fn link(&self, query: &str) -> String {
        let (s, v) = self.ask(&self.token, query).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        v["download"]["url"]
            .as_str()
            .unwrap()
            .strip_prefix(BASE)
            .unwrap()
            .to_string()
    }

    async fn fetch(
        &self,
        path: &str,
        headers: &[(&str, &str)],
    ) -> (StatusCode, actix_web::http::header::HeaderMap, Vec<u8>) {
        let mut req = TestRequest::get()
            .uri(path)
            .peer_addr("192.0.2.50:1234".parse().unwrap());
        for h in headers {
            req = req.insert_header(*h);
        }
        self.call(req).await
    }

    async fn backtrace(&self, name: &str, data: &[u8]) -> (StatusCode, Value) {
        // One millisecond apart, as they would be for real (the list is by time).
        self.env.clock.set_ms(self.env.clock.now_ms() + 1);
        let (ct, body) = multipart_file(name, data);
        let req = TestRequest::post()
            .uri("/v1/backtraces/")
            .insert_header(("Authorization", format!("Bearer {}", self.token)))
            .insert_header(("Content-Type", ct))
            .set_payload(body);
        let (s, _, b) = self.call(req).await;
        (s, serde_json::from_slice(&b).unwrap_or(Value::Null))
    }
}

fn header<'a>(h: &'a actix_web::http::header::HeaderMap, name: &str) -> &'a str {
    h.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
}

#[actix_web::test]
async fn tags_need_an_autograph_file_the_scope_and_a_valid_tag() {
    let fx = Fx::new();
    let plain = fx
        .env
        .upload(&fx.token, "?object_key=plain.bin", "plain.bin", b"plain")
        .await;
    let (s, v) = fx
        .ask(
            &fx.token,
            &format!("file_id={}&autograph_tag=cust-1", plain["id"].as_str().unwrap()),
        )
        .await;
    assert_eq!(
        (s, reason(&v)),
        (StatusCode::BAD_REQUEST, "autograph_not_enabled")
    );
    assert_eq!(v["error"]["param"], "autograph_tag");

    let ag = fx
        .env
        .upload(
            &fx.token,
            "?object_key=ag.bin&autograph=true",
            "ag.bin",
            b"tagged",
        )
        .await;
    assert_eq!(ag["autograph"], true);
    assert_eq!(plain["autograph"], false);
    let id = ag["id"].as_str().unwrap();
    let long = "x".repeat(129);
    for bad in [
        "",
        long.as_str(),
        "a%0Ab",
        "tab%09",
        "del%7F",
        "c1%C2%85",
        "rtl%E2%80%AE",
    ] {
        let (s, v) = fx
            .ask(&fx.token, &format!("file_id={id}&autograph_tag={bad}"))
            .await;
        assert_eq!(
            (s, reason(&v)),
            (StatusCode::BAD_REQUEST, "invalid_autograph_tag"),
            "{bad:?}"
        );
    }
    let ok = "é".repeat(128);
    let (s, v) = fx
        .ask(
            &fx.token,
            &format!("file_id={id}&autograph_tag={}", "%C3%A9".repeat(128)),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["download"]["autograph_tag"], ok.as_str());

    let no_scope = fx.env.token("mediahub");
    let (s, v) = fx.ask(&no_scope, &format!("file_id={id}&autograph_tag=t")).await;
    assert_eq!((s, reason(&v)), (StatusCode::FORBIDDEN, "insufficient_scope"));
    let (ct, body) = multipart_file("x", b"x");
    let (s, _, b) = fx
        .call(
            TestRequest::post()
                .uri("/v1/backtraces/")
                .insert_header(("Authorization", format!("Bearer {no_scope}")))
                .insert_header(("Content-Type", ct))
                .set_payload(body),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{}", String::from_utf8_lossy(&b));
}

#[actix_web::test]
async fn a_tagged_link_serves_one_consistent_marked_copy_under_range_and_validators() {
    let fx = Fx::new();
    // Larger than what is answered from memory, so the copy streams; the mark goes in
    // before IEND, so the file is split around it.
    let data = png(200, 200);
    assert!(data.len() > 100_000);
    let f = fx
        .env
        .upload(&fx.token, "?object_key=pic.png&autograph=true", "pic.png", &data)
        .await;
    let id = f["id"].as_str().unwrap().to_string();
    let untagged = fx.link(&format!("file_id={id}")).await;
    let alice = fx.link(&format!("file_id={id}&autograph_tag=alice")).await;
    let alice2 = fx
        .link(&format!("file_id={id}&autograph_tag=alice&streaming=true"))
        .await;
    let bob = fx.link(&format!("file_id={id}&autograph_tag=bob")).await;

    let (s, h0, plain) = fx.fetch(&untagged, &[]).await;
    assert_eq!((s, plain.as_slice()), (StatusCode::OK, data.as_slice()));
    let (s, h, copy) = fx.fetch(&alice, &[]).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(header(&h, "content-length"), copy.len().to_string());
    assert_eq!(header(&h, "content-type"), "image/png");
    assert!(copy.len() > data.len());
    // The original's bytes, with one tEXt chunk inserted just before IEND.
    let iend = data.len() - 12;
    assert_eq!(&copy[..iend], &data[..iend]);
    assert_eq!(&copy[copy.len() - 12..], &data[iend..]);
    assert_eq!(&copy[iend + 4..iend + 8], b"tEXt");

    // The same link gives the same bytes every time; another link, another copy.
    let (_, h_again, again) = fx.fetch(&alice, &[]).await;
    assert_eq!(
        (again.as_slice(), header(&h_again, "etag")),
        (copy.as_slice(), header(&h, "etag"))
    );
    let (_, h2, copy2) = fx.fetch(&alice2, &[]).await;
    let (_, hb, copy_b) = fx.fetch(&bob, &[]).await;
    assert_ne!(copy2, copy);
    assert_ne!(copy_b, copy);
    let etags = [
        header(&h0, "etag"),
        header(&h, "etag"),
        header(&h2, "etag"),
        header(&hb, "etag"),
    ];
    for (i, a) in etags.iter().enumerate() {
        assert!(a.starts_with('"') && !a.starts_with("W/"), "strong: {a}");
        for b in &etags[i + 1..] {
            assert_ne!(a, b, "ETags differ per tag and per link");
        }
    }

    // HEAD, single ranges across the mark, suffix, multipart, If-Range, If-None-Match.
    let (s, hh, body) = fx
        .call(
            TestRequest::default()
                .method(actix_web::http::Method::HEAD)
                .uri(&alice)
                .peer_addr("192.0.2.50:1234".parse().unwrap()),
        )
        .await;
    assert_eq!((s, body.len()), (StatusCode::OK, 0));
    assert_eq!(header(&hh, "content-length"), copy.len().to_string());
    let n = copy.len();
    for (range, start, end) in [
        (format!("bytes={}-{}", iend - 5, iend + 40), iend - 5, iend + 40),
        (format!("bytes={}-", iend + 3), iend + 3, n - 1),
        ("bytes=-30".to_string(), n - 30, n - 1),
        ("bytes=0-70000".to_string(), 0, 70000),
    ] {
        let (s, h, part) = fx.fetch(&alice, &[("Range", range.as_str())]).await;
        assert_eq!(s, StatusCode::PARTIAL_CONTENT, "{range}");
        assert_eq!(header(&h, "content-range"), format!("bytes {start}-{end}/{n}"));
        assert_eq!(part, copy[start..=end], "{range}");
    }
    let (s, h, mp) = fx
        .fetch(&alice, &[("Range", &format!("bytes=0-9,{}-{}", iend, iend + 9))])
        .await;
    assert_eq!(s, StatusCode::PARTIAL_CONTENT);
    assert!(header(&h, "content-type").starts_with("multipart/byteranges"));
    assert_eq!(header(&h, "content-length"), mp.len().to_string());
    assert!(find_bytes(&mp, &copy[iend..iend + 10]).is_some());
    let etag = header(&h_again, "etag").to_string();
    let (s, _, part) = fx
        .fetch(&alice, &[("Range", "bytes=100-199"), ("If-Range", etag.as_str())])
        .await;
    assert_eq!(
        (s, part.as_slice()),
        (StatusCode::PARTIAL_CONTENT, &copy[100..200])
    );
    let (s, _, whole) = fx
        .fetch(
            &alice,
            &[("Range", "bytes=100-199"), ("If-Range", header(&h0, "etag"))],
        )
        .await;
    assert_eq!(
        (s, whole.len()),
        (StatusCode::OK, n),
        "the untagged ETag is another representation"
    );
    let (s, _, _) = fx.fetch(&alice, &[("If-None-Match", etag.as_str())]).await;
    assert_eq!(s, StatusCode::NOT_MODIFIED);
    let (s, h, _) = fx.fetch(&alice, &[("Range", &format!("bytes={n}-"))]).await;
    assert_eq!(s, StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(header(&h, "content-range"), format!("bytes */{n}"));

    // Every tagged delivery is in the audit trail, under the tag, with its bytes.
    fx.env.state.audit.flush();
    let (s, _, b) = fx
        .call(
            TestRequest::get()
                .uri(&format!("/v1/downloads/?tag=alice&file_id={id}"))
                .insert_header(("Authorization", format!("Bearer {}", fx.token))),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let v: Value = serde_json::from_slice(&b).unwrap();
    assert_eq!(v["total"], 2, "two links tagged alice: {v}");
    let sent: u64 = v["downloads"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["bytes"].as_u64().unwrap())
        .sum();
    assert!(sent >= 2 * n as u64, "{v}");

    // Metrics count the tagged links and the marked copies.
    let (_, _, m) = fx
        .call(
            TestRequest::get()
                .uri("/metrics")
                .peer_addr("127.0.0.1:9".parse().unwrap()),
        )
        .await;
    let m = String::from_utf8(m).unwrap();
    assert!(m.contains("filegate_autograph_links_issued_total 3"), "{m}");
    assert!(m.contains("filegate_autograph_copies_total "), "{m}");
}

#[actix_web::test]
async fn a_small_tagged_copy_from_memory_is_the_same_copy_whole_and_in_every_range() {
    let fx = Fx::new();
    let data = png(4, 4);
    assert!(data.len() < 64 * 1024, "answered from memory");
    let f = fx
        .env
        .upload(
            &fx.token,
            "?object_key=tiny.png&autograph=true",
            "tiny.png",
            &data,
        )
        .await;
    let id = f["id"].as_str().unwrap().to_string();
    let alice = fx.link(&format!("file_id={id}&autograph_tag=alice")).await;
    let bob = fx.link(&format!("file_id={id}&autograph_tag=bob")).await;
    let (s, h, copy) = fx.fetch(&alice, &[]).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(header(&h, "content-length"), copy.len().to_string());
    let iend = data.len() - 12;
    assert_eq!(&copy[..iend], &data[..iend]);
    assert_eq!(&copy[copy.len() - 12..], &data[iend..]);
    assert_eq!(&copy[iend + 4..iend + 8], b"tEXt");
    // Later requests (the layout and the bytes kept) give the same copy; the other
    // link its own.
    assert_eq!(fx.fetch(&alice, &[]).await.2, copy);
    let copy_b = fx.fetch(&bob, &[]).await.2;
    assert_ne!(copy_b, copy);
    assert_eq!(&copy_b[..iend], &data[..iend]);
    // Every range of the copy is that slice of the whole copy: before, across, inside
    // and after the mark.
    let n = copy.len();
    for (a, b) in [
        (0, 9),
        (iend - 3, iend + 20),
        (iend + 5, iend + 6),
        (n - 12, n - 1),
        (0, n - 1),
        (iend, n - 1),
    ] {
        let range = format!("bytes={a}-{b}");
        let (s, h, part) = fx.fetch(&alice, &[("Range", range.as_str())]).await;
        assert_eq!(s, StatusCode::PARTIAL_CONTENT, "{range}");
        assert_eq!(header(&h, "content-range"), format!("bytes {a}-{b}/{n}"));
        assert_eq!(part, &copy[a..=b], "{range}");
    }
    let (_, _, last) = fx.fetch(&alice, &[("Range", "bytes=-5")]).await;
    assert_eq!(last, &copy[n - 5..]);
    // A second later (kept bytes and layout gone) it is still the same copy.
    fx.env.clock.advance_secs(2);
    assert_eq!(fx.fetch(&alice, &[]).await.2, copy);
}

#[actix_web::test]
async fn backtraces_find_the_download_refuse_forgeries_and_report_unmarked_copies() {
    let fx = Fx::new();
    let data = b"plain text, any other type gets a trailer\n".repeat(10);
    let f = fx
        .env
        .upload(
            &fx.token,
            "?object_key=notes.txt&autograph=true",
            "notes.txt",
            &data,
        )
        .await;
    let id = f["id"].as_str().unwrap().to_string();
    let alice = fx.link(&format!("file_id={id}&autograph_tag=alice")).await;
    let bob = fx.link(&format!("file_id={id}&autograph_tag=bob")).await;
    let (_, _, copy_a) = fx.fetch(&alice, &[]).await;
    let (_, _, copy_b) = fx.fetch(&bob, &[]).await;
    assert!(copy_b.starts_with(&data) && copy_b.len() > data.len());
    fx.env.state.audit.flush();

    let (s, v) = fx.backtrace("leak.txt", &copy_b).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let b = &v["backtrace"];
    assert_eq!(b["result"], "found");
    assert_eq!(b["tag"], "bob");
    assert_eq!(b["file"]["id"], id.as_str());
    let mark_id = b["mark_id"].as_str().unwrap();
    assert_eq!(mark_id.len(), 32);
    assert!(b["link"]["client_id"].is_string());
    let downloads = b["downloads"].as_array().unwrap();
    assert_eq!(downloads.len(), 1, "{b}");
    assert_eq!(downloads[0]["autograph_tag"], "bob");
    assert_eq!(downloads[0]["link"]["key"], mark_id);
    assert_eq!(downloads[0]["client"], "192.0.2.50");
    assert_eq!(downloads[0]["bytes"], copy_b.len());
    assert_eq!(b["suspect"]["size"], copy_b.len());
    assert_eq!(b["suspect"]["sha256"], sha256_hex(&copy_b));
    assert_eq!(b["suspect"]["name"], "leak.txt");

    // Stored: GET answers it again.
    let bid = b["id"].as_str().unwrap();
    let (s, _, body) = fx
        .call(
            TestRequest::get()
                .uri(&format!("/v1/backtraces/{bid}"))
                .insert_header(("Authorization", format!("Bearer {}", fx.token))),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let again: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(again, v, "the same answer again");

    // The other copy names the other download.
    let (_, v) = fx.backtrace("a.txt", &copy_a).await;
    assert_eq!(v["backtrace"]["tag"], "alice");
    assert_ne!(v["backtrace"]["mark_id"], mark_id);

    // Tag edited, MAC left: forged, and nothing of the forgery is answered as fact.
    let forged = forge(&copy_b, "eve");
    let (s, v) = fx.backtrace("forged.txt", &forged).await;
    assert_eq!(s, StatusCode::CREATED);
    let b = &v["backtrace"];
    assert_eq!(b["result"], "forged_mark", "{b}");
    assert!(b["tag"].is_null() && b["file"].is_null() && b["mark_id"].is_null());
    assert_eq!(b["downloads"], serde_json::json!([]));
    assert_eq!(b["marks"][0]["authentic"], false);
    assert_eq!(b["marks"][0]["tag"], "eve");

    // The original, unmarked.
    let (s, v) = fx.backtrace("orig.txt", &data).await;
    assert_eq!(s, StatusCode::CREATED);
    assert_eq!(v["backtrace"]["result"], "no_mark");
    assert_eq!(v["backtrace"]["marks"], serde_json::json!([]));

    // A copy of a marked copy made by another server (another key) is forged here.
    let other = Fx::new();
    let f = other
        .env
        .upload(&other.token, "?object_key=n.txt&autograph=true", "n.txt", &data)
        .await;
    let l = other
        .link(&format!(
            "file_id={}&autograph_tag=bob",
            f["id"].as_str().unwrap()
        ))
        .await;
    let (_, _, foreign) = other.fetch(&l, &[]).await;
    let (_, v) = fx.backtrace("foreign.txt", &foreign).await;
    assert_eq!(v["backtrace"]["result"], "forged_mark");

    // The list, newest first, filtered by result.
    let list = |q: &'static str| {
        TestRequest::get()
            .uri(&format!("/v1/backtraces/{q}"))
            .insert_header(("Authorization", format!("Bearer {}", fx.token)))
    };
    let (s, _, body) = fx.call(list("")).await;
    assert_eq!(s, StatusCode::OK);
    let all: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(all["total"], 5, "{all}");
    assert_eq!(all["backtraces"][4]["id"], bid, "oldest last");
    assert_eq!(all["backtraces"][4]["tag"], "bob");
    let (_, _, body) = fx.call(list("?result=forged_mark")).await;
    let forged: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(forged["total"], 2);
    assert!(forged["backtraces"][0]["tag"].is_null());
    let (s, _, _) = fx.call(list("?result=maybe")).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);

    // Unknown backtrace, missing file part.
    let (s, _, body) = fx
        .call(
            TestRequest::get()
                .uri("/v1/backtraces/6b08ff8271f7fb127f98db8d")
                .insert_header(("Authorization", format!("Bearer {}", fx.token))),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(
        reason(&serde_json::from_slice(&body).unwrap()),
        "backtrace_not_found"
    );
    let (s, _, body) = fx
        .call(
            TestRequest::post()
                .uri("/v1/backtraces/")
                .insert_header(("Authorization", format!("Bearer {}", fx.token)))
                .set_payload("raw"),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(reason(&serde_json::from_slice(&body).unwrap()), "missing_file");
}

#[actix_web::test]
async fn a_tagged_archive_is_served_whole_and_its_entries_refuse_a_tag() {
    let fx = Fx::new();
    let data = zip();
    let f = fx
        .env
        .upload(
            &fx.token,
            "?object_key=bundle.zip&autograph=true",
            "bundle.zip",
            &data,
        )
        .await;
    assert_eq!(f["type"], "archive");
    let id = f["id"].as_str().unwrap();
    let (s, v) = fx.ask(&fx.token, &format!("file_id={id}")).await;
    assert_eq!(s, StatusCode::OK);
    assert!(v["download"]["items"].is_array());
    let (s, v) = fx
        .ask(&fx.token, &format!("file_id={id}&autograph_tag=t&item=data.txt"))
        .await;
    assert_eq!(
        (s, reason(&v)),
        (StatusCode::BAD_REQUEST, "autograph_item_not_supported")
    );
    let (s, v) = fx.ask(&fx.token, &format!("file_id={id}&autograph_tag=t")).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert!(v["download"]["items"].is_null());
    let url = v["download"]["url"].as_str().unwrap().strip_prefix(BASE).unwrap();
    let (s, _, copy) = fx.fetch(url, &[]).await;
    assert_eq!(s, StatusCode::OK);
    let z = zip::ZipArchive::new(std::io::Cursor::new(copy.clone())).unwrap();
    let comment = String::from_utf8_lossy(z.comment()).into_owned();
    assert!(
        comment.starts_with("made by the autograph test\nfilegate-autograph:1:"),
        "{comment}"
    );
    let (_, v) = fx.backtrace("bundle.zip", &copy).await;
    assert_eq!(v["backtrace"]["tag"], "t");
}

// ---------------------------------------------------------------------------------
// The real binary, curl, and independent tools.

struct Live {
    server: Server,
    token: String,
    dir: tempfile::TempDir,
}

impl Live {
    fn auth(&self) -> String {
        format!("Authorization: Bearer {}", self.token)
    }

    fn upload(&self, path: &Path, name: &str) -> String {
        let (code, body) = curl(&[
            "-H",
            &self.auth(),
            "-F",
            &format!("file=@{};filename={name}", path.display()),
            &self
                .server
                .url(&format!("/v1/files/uploads/?object_key={name}&autograph=true")),
        ]);
        assert_eq!(code, 201, "{body}");
        let v: Value = serde_json::from_str(&body).unwrap();
        v["upload"]["file"]["id"].as_str().unwrap().to_string()
    }

    /// A tagged link, asked for the way MediaHub clients do: redirect, read Location.
    fn tagged_link(&self, file_id: &str, tag: &str) -> String {
        let out = Command::new("curl")
            .args([
                "-s",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code} %{redirect_url}",
                "-H",
            ])
            .arg(self.auth())
            .arg(self.server.url(&format!(
                "/v1/files/downloads/?file_id={file_id}&autograph_tag={tag}&redirect=true"
            )))
            .output()
            .unwrap();
        let text = String::from_utf8(out.stdout).unwrap();
        let (code, url) = text.split_once(' ').unwrap();
        assert_eq!(code, "302", "{text}");
        url.to_string()
    }

    fn download(&self, url: &str, out: &Path) {
        let st = Command::new("curl")
            .args(["-s", "-f", "-o"])
            .arg(out)
            .arg(url)
            .status()
            .unwrap();
        assert!(st.success());
    }

    fn backtrace(&self, path: &Path) -> Value {
        let (code, body) = curl(&[
            "-H",
            &self.auth(),
            "-F",
            &format!("file=@{}", path.display()),
            &self.server.url("/v1/backtraces/"),
        ]);
        assert_eq!(code, 201, "{body}");
        serde_json::from_str::<Value>(&body).unwrap()["backtrace"].clone()
    }

    /// `GET /v1/backtraces/ID` until the audit trail has written `downloads` entries
    /// (its writer batches; the answer must come, however slow the machine).
    fn backtrace_with_downloads(&self, id: &str, downloads: usize) -> Value {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let (code, body) = curl(&[
                "-H",
                &self.auth(),
                &self.server.url(&format!("/v1/backtraces/{id}")),
            ]);
            assert_eq!(code, 200, "{body}");
            let v = serde_json::from_str::<Value>(&body).unwrap()["backtrace"].clone();
            if v["downloads"].as_array().map_or(0, Vec::len) >= downloads || Instant::now() > deadline {
                return v;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Checks a file with an independent tool for its format (`marked`: a copy, whose mark
/// the tool must see where the format keeps it, when it shows such things).
fn check_valid(kind: &str, path: &Path, marked: bool) {
    let p = path.to_str().unwrap();
    let clean = |(ok, out, err): (bool, String, String), what: &str| {
        assert!(ok, "{what} failed on {kind}: {out}{err}");
        assert!(err.trim().is_empty(), "{what} complained about {kind}: {err}");
    };
    match kind {
        "mp4" | "webm" | "jpeg" => {
            clean(
                run(Command::new("ffprobe").args(["-v", "error", "-show_format", "-show_streams", p])),
                "ffprobe",
            );
            clean(
                run(Command::new("ffmpeg").args(["-v", "error", "-i", p, "-f", "null", "-"])),
                "ffmpeg decode",
            );
        }
        "pdf" => {
            let (ok, out, err) = run(Command::new("qpdf").args(["--check", p]));
            assert!(ok, "qpdf --check: {out}{err}");
            assert!(out.contains("No syntax or stream encoding errors"), "{out}");
            assert!(!out.contains("WARNING") && !err.contains("WARNING"), "{out}{err}");
        }
        "png" => {
            let (ok, out, err) = run(Command::new("pngcheck").args(["-v", p]));
            assert!(ok, "pngcheck: {out}{err}");
            assert!(out.contains("No errors detected"), "{out}");
            assert_eq!(out.contains("chunk tEXt"), marked, "{out}");
        }
        "zip" => {
            let (ok, out, err) = run(Command::new("unzip").args(["-t", p]));
            assert!(ok, "unzip -t: {out}{err}");
            assert!(out.contains("No errors detected"), "{out}");
            assert!(!err.contains("warning"), "{err}");
            // unzip shows the archive comment, which carries the mark.
            assert_eq!(out.contains("filegate-autograph:1:"), marked, "{out}");
        }
        "gzip" => clean(run(Command::new("gzip").args(["-t", p])), "gzip -t"),
        _ => unreachable!(),
    }
}

/// The mark sits where its container keeps such things (not in a fallback trailer).
fn check_placed(kind: &str, copy: &[u8]) {
    let mark = mark_of(copy);
    let at = find_bytes(copy, mark).unwrap();
    let before = &copy[..at];
    let after = &copy[at + mark.len()..];
    let placed = match kind {
        "mp4" => before.ends_with(b"uuidfilegate:agmark1") && after.is_empty(),
        "webm" => before[before.len() - 9] == 0xec && after.is_empty(),
        "jpeg" => before[before.len() - 4..before.len() - 2] == [0xff, 0xfe],
        "pdf" => before.ends_with(b"%%EOF\n\n%") && after.ends_with(b"\n%%EOF\n"),
        "png" => before.ends_with(b"tEXtfilegate\0") && after.len() == 4 + 12,
        "zip" => before.ends_with(b"made by the autograph test\n") && after.is_empty(),
        "gzip" => before.ends_with(&[0x1f, 0x8b, 0x08, 0x10, 0, 0, 0, 0, 0, 0xff]) && after.len() == 11,
        _ => unreachable!(),
    };
    assert!(placed, "{kind}: the mark is not where its container keeps it");
}

#[test]
fn every_format_stays_valid_resumes_consistently_and_traces_back_to_its_download() {
    for t in ["ffmpeg", "ffprobe", "qpdf", "pngcheck", "unzip", "gzip"] {
        if !tool(t) {
            return;
        }
    }
    let server = Server::start();
    let token = server.token();
    let live = Live {
        server,
        token,
        dir: tempfile::tempdir().unwrap(),
    };
    let d = live.dir.path();
    let write = |name: &str, data: &[u8]| {
        let p = d.join(name);
        std::fs::write(&p, data).unwrap();
        p
    };
    let samples: Vec<(&str, PathBuf)> = vec![
        (
            "mp4",
            ffmpeg_sample(d, "clip.mp4", &["-pix_fmt", "yuv420p", "-movflags", "+faststart"]),
        ),
        (
            "webm",
            ffmpeg_sample(d, "clip.webm", &["-c:v", "libvpx", "-b:v", "100k"]),
        ),
        // QuickTime, the moov box after the media.
        ("mp4", ffmpeg_sample(d, "clip.mov", &["-pix_fmt", "yuv420p"])),
        (
            "mp4",
            ffmpeg_piped(
                d,
                "fragmented.mp4",
                &[
                    "-pix_fmt",
                    "yuv420p",
                    "-movflags",
                    "frag_keyframe+empty_moov",
                    "-f",
                    "mp4",
                ],
            ),
        ),
        (
            "webm",
            ffmpeg_piped(d, "live.webm", &["-c:v", "libvpx", "-b:v", "100k", "-f", "webm"]),
        ),
        ("jpeg", ffmpeg_sample(d, "photo.jpg", &["-frames:v", "1"])),
        ("pdf", write("report.pdf", &pdf())),
        ("png", write("image.png", &png(64, 48))),
        ("zip", write("bundle.zip", &zip())),
        (
            "gzip",
            write("log.txt.gz", &gzip(&b"line of a log\n".repeat(2000))),
        ),
    ];
    for (kind, orig) in &samples {
        // The samples themselves are valid to begin with.
        check_valid(kind, orig, false);
        let name = orig.file_name().unwrap().to_str().unwrap();
        let original = std::fs::read(orig).unwrap();
        let id = live.upload(orig, name);

        // Two customers, two copies.
        let url_a = live.tagged_link(&id, &format!("alice-{kind}"));
        let url_b = live.tagged_link(&id, &format!("bob-{kind}"));
        let copy_a = d.join(format!("alice-{name}"));
        let copy_b = d.join(format!("bob-{name}"));
        live.download(&url_a, &copy_a);
        live.download(&url_b, &copy_b);
        let bytes_a = std::fs::read(&copy_a).unwrap();
        let bytes_b = std::fs::read(&copy_b).unwrap();
        assert_ne!(bytes_a, original, "{kind}: the copy is marked");
        assert_ne!(bytes_a, bytes_b, "{kind}: one copy per tag");
        check_valid(kind, &copy_a, true);
        check_placed(kind, &bytes_a);
        check_valid(kind, &copy_b, true);

        // A download cut short and resumed with curl -C - equals the whole copy.
        let partial = d.join(format!("partial-{name}"));
        std::fs::write(&partial, &bytes_a[..bytes_a.len() * 2 / 3]).unwrap();
        let st = Command::new("curl")
            .args(["-s", "-f", "-C", "-", "-o"])
            .arg(&partial)
            .arg(&url_a)
            .status()
            .unwrap();
        assert!(st.success());
        assert_eq!(
            std::fs::read(&partial).unwrap(),
            bytes_a,
            "{kind}: resumed = whole"
        );
        // And a piece fetched with curl -r equals the same bytes of the whole copy.
        let (lo, hi) = (bytes_a.len() / 3, bytes_a.len() - 5);
        let piece = Command::new("curl")
            .args(["-s", "-f", "-r", &format!("{lo}-{hi}"), &url_a])
            .output()
            .unwrap()
            .stdout;
        assert_eq!(piece, bytes_a[lo..=hi], "{kind}: curl -r");

        // Backtraces name the right download for each copy.
        for (copy, tag) in [(&copy_a, "alice"), (&copy_b, "bob")] {
            let b = live.backtrace(copy);
            assert_eq!(b["result"], "found", "{kind}: {b}");
            assert_eq!(b["tag"], format!("{tag}-{kind}"));
            assert_eq!(b["file"]["id"], id.as_str());
            let b = live.backtrace_with_downloads(b["id"].as_str().unwrap(), 1);
            let downloads = b["downloads"].as_array().unwrap();
            assert_eq!(downloads.len(), 1, "{kind}: one client: {b}");
            let dl = &downloads[0];
            assert_eq!(dl["link"]["key"], b["mark_id"]);
            assert_eq!(dl["autograph_tag"], format!("{tag}-{kind}"));
            assert_eq!(dl["client"], "127.0.0.1");
            assert!(dl["requests"].as_u64().unwrap() >= 1);
        }

        // Forged (tag edited, MAC unchanged) and unmarked.
        let forged = d.join(format!("forged-{name}"));
        std::fs::write(&forged, forge(&bytes_a, &format!("carol-{kind}"))).unwrap();
        let b = live.backtrace(&forged);
        assert_eq!(b["result"], "forged_mark", "{kind}: {b}");
        assert!(b["tag"].is_null() && b["file"].is_null());
        let b = live.backtrace(orig);
        assert_eq!(b["result"], "no_mark", "{kind}: {b}");
    }
}
