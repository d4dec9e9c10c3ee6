//! Archives (issue 7): ZIP and TAR uploads are indexed, each entry gets its own signed
//! link, entries serve with Range, and hostile archives are kept as plain files. Archives
//! are built here by the `zip` and `tar` crates and, as independent writers, by Python's
//! `zipfile` and the `tar` command.

mod common;

use std::io::Write;
use std::process::Command;
use std::time::Instant;

use actix_web::http::header::HeaderMap;
use actix_web::http::StatusCode;
use actix_web::test::{self, TestRequest};
use common::*;
use filegate::archive::{self, Format, IndexError, Limits};
use serde_json::Value;

const BASE: &str = "http://localhost:8080";
/// How a link's last segment encodes a name (RFC 3986 unreserved characters stay).
const UNRESERVED: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

struct Fx {
    env: TestEnv,
    token: String,
}

impl Fx {
    fn new() -> Fx {
        Self::with(|_| {})
    }

    fn with(f: impl FnOnce(&mut filegate::config::Config)) -> Fx {
        let env = TestEnv::with_config(f);
        let token = env.token("mediahub");
        Fx { env, token }
    }

    async fn upload(&self, name: &str, data: &[u8]) -> Value {
        self.env
            .upload(&self.token, &format!("?object_key={}", ids()), name, data)
            .await
    }

    async fn call(&self, req: TestRequest) -> (StatusCode, HeaderMap, Vec<u8>) {
        let app = self.env.service().await;
        let res = test::call_service(&app, req.to_request()).await;
        let status = res.status();
        let headers = res.headers().clone();
        let body = test::read_body(res).await.to_vec();
        (status, headers, body)
    }

    async fn ask(&self, query: &str) -> (StatusCode, Value) {
        let req = TestRequest::get()
            .uri(&format!("/v1/files/downloads/?{query}"))
            .insert_header(("Authorization", format!("Bearer {}", self.token)));
        let (s, _, b) = self.call(req).await;
        (s, serde_json::from_slice(&b).unwrap_or(Value::Null))
    }

    /// The `items` of the download answer for a whole archive.
    async fn items(&self, file_id: &str) -> Vec<Value> {
        let (s, v) = self.ask(&format!("file_id={file_id}")).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert!(v["download"].get("url").is_none(), "no url for an archive: {v}");
        v["download"]["items"].as_array().unwrap().clone()
    }

    async fn fetch(&self, url: &str, headers: &[(&str, &str)]) -> (StatusCode, HeaderMap, Vec<u8>) {
        let mut req = TestRequest::get().uri(url.strip_prefix(BASE).unwrap_or(url));
        for (k, v) in headers {
            req = req.insert_header((*k, *v));
        }
        self.call(req).await
    }

    async fn file(&self, id: &str) -> Value {
        let req = TestRequest::get()
            .uri(&format!("/v1/files/{id}"))
            .insert_header(("Authorization", format!("Bearer {}", self.token)));
        let (s, _, b) = self.call(req).await;
        assert_eq!(s, StatusCode::OK);
        serde_json::from_slice::<Value>(&b).unwrap()["file"].clone()
    }
}

/// A fresh object key.
fn ids() -> String {
    filegate::ids::new_id(NOW_MS / 1000)
}

/// Text-like bytes: deflate shrinks them, but not to nothing.
fn text(n: usize, seed: u32) -> Vec<u8> {
    let mut x = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            b"etaoinshrdlu \n.,"[(x % 16) as usize]
        })
        .collect()
}

fn zip_of(entries: &[(&str, &[u8], bool)]) -> Vec<u8> {
    use zip::write::SimpleFileOptions;
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for (name, data, deflate) in entries {
        let method = if *deflate {
            zip::CompressionMethod::Deflated
        } else {
            zip::CompressionMethod::Stored
        };
        w.start_file(*name, SimpleFileOptions::default().compression_method(method))
            .unwrap();
        w.write_all(data).unwrap();
    }
    w.finish().unwrap().into_inner()
}

fn python(code: &str, out: &std::path::Path) {
    let st = Command::new("python3")
        .arg("-c")
        .arg(code)
        .arg(out)
        .status()
        .expect("python3 is installed");
    assert!(st.success(), "python3 failed");
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(data).unwrap();
    gz.finish().unwrap()
}

/// Downloads every item and checks its bytes, size, type and name against `want`
/// (name → bytes), in order.
async fn check_items(fx: &Fx, file_id: &str, want: &[(&str, Vec<u8>)]) {
    let items = fx.items(file_id).await;
    let names: Vec<&str> = items.iter().map(|i| i["name"].as_str().unwrap()).collect();
    let want_names: Vec<&str> = want.iter().map(|w| w.0).collect();
    assert_eq!(names, want_names);
    let mut etags = std::collections::HashSet::new();
    for (item, (name, bytes)) in items.iter().zip(want) {
        assert_eq!(item["size"], bytes.len() as u64, "{name}");
        let url = item["url"].as_str().unwrap();
        let base = name.rsplit('/').next().unwrap();
        let segment = percent_encoding::utf8_percent_encode(base, UNRESERVED).to_string();
        assert!(url.ends_with(&format!("/{segment}")), "{url} for {name}");
        let (s, h, body) = fx.fetch(url, &[]).await;
        assert_eq!(s, StatusCode::OK, "{name}");
        assert!(body == *bytes, "bytes of {name}");
        assert_eq!(h.get("content-length").unwrap(), &bytes.len().to_string());
        assert_eq!(
            h.get("content-type").unwrap().to_str().unwrap(),
            item["mime_type"].as_str().unwrap()
        );
        assert!(
            etags.insert(h.get("etag").unwrap().clone()),
            "ETag differs per entry"
        );
    }
}

#[actix_web::test]
async fn zip_entries_are_listed_and_each_link_serves_its_bytes() {
    let fx = Fx::new();
    let readme = b"hello from inside a zip\n".to_vec();
    let big = text(300_000, 1);
    let mut img = b"\x89PNG\r\n\x1a\n".to_vec();
    img.extend_from_slice(&text(1000, 2));
    let mut data = zip_of(&[
        ("docs/readme.txt", &readme, false),
        ("data/big.log", &big, true),
        ("noext", &img, true),
    ]);
    // A directory and a symlink: never listed.
    {
        use zip::write::SimpleFileOptions;
        let mut w = zip::ZipWriter::new_append(std::io::Cursor::new(data)).unwrap();
        w.add_directory("empty/", SimpleFileOptions::default()).unwrap();
        w.add_symlink("docs/link", "/etc/passwd", SimpleFileOptions::default())
            .unwrap();
        data = w.finish().unwrap().into_inner();
    }
    let f = fx.upload("bundle.zip", &data).await;
    assert_eq!(f["type"], "archive");
    assert_eq!(f["subtype"], "zip");
    assert_eq!(f["size"], data.len() as u64);
    let elements = f["elements"].as_array().unwrap();
    assert_eq!(elements.len(), 3, "{elements:?}");
    assert_eq!(
        elements[0],
        serde_json::json!({"name": "docs/readme.txt", "size": readme.len(), "mime_type": "text/plain"})
    );
    assert_eq!(
        elements[2]["mime_type"], "image/png",
        "sniffed when the name says nothing"
    );
    let id = f["id"].as_str().unwrap();
    assert_eq!(fx.file(id).await["elements"], f["elements"]);

    let (s, v) = fx.ask(&format!("file_id={id}")).await;
    assert_eq!(s, StatusCode::OK);
    let d = &v["download"];
    assert_eq!(d["name"], "bundle.zip");
    assert_eq!(d["file"]["id"], id);
    assert!(d["expiry_time"].is_i64());
    check_items(
        &fx,
        id,
        &[("docs/readme.txt", readme), ("data/big.log", big), ("noext", img)],
    )
    .await;

    // The entry's own name in Content-Disposition, and HEAD has the GET's length.
    let items = fx.items(id).await;
    let url = items[1]["url"].as_str().unwrap();
    let (_, h, _) = fx.fetch(url, &[]).await;
    assert_eq!(
        h.get("content-disposition").unwrap(),
        "attachment; filename=\"big.log\"; filename*=UTF-8''big.log"
    );
    let (s, h, body) = fx
        .call(
            TestRequest::default()
                .method(actix_web::http::Method::HEAD)
                .uri(url.strip_prefix(BASE).unwrap()),
        )
        .await;
    assert_eq!((s, body.len()), (StatusCode::OK, 0));
    assert_eq!(h.get("content-length").unwrap(), "300000");

    // The list shows the elements too, and `type=archive` finds it.
    let req = TestRequest::get()
        .uri("/v1/files/?type=archive")
        .insert_header(("Authorization", format!("Bearer {}", fx.token)));
    let (_, _, b) = fx.call(req).await;
    let list: Value = serde_json::from_slice(&b).unwrap();
    assert_eq!(list["total"], 1);
    assert_eq!(list["files"][0]["elements"], f["elements"]);
}

#[actix_web::test]
async fn item_selects_one_entry_redirect_works_for_it_and_unknown_items_are_404() {
    let fx = Fx::new();
    let a = text(5000, 3);
    let data = zip_of(&[("dir/a.txt", &a, true), ("b.txt", b"bee", false)]);
    let f = fx.upload("x.zip", &data).await;
    let id = f["id"].as_str().unwrap();

    let (s, v) = fx.ask(&format!("file_id={id}&item=dir/a.txt")).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let d = &v["download"];
    assert!(d.get("items").is_none());
    assert_eq!(d["name"], "dir/a.txt");
    assert_eq!(d["size"], 5000);
    assert_eq!(d["mime_type"], "text/plain");
    let url = d["url"].as_str().unwrap();
    assert!(url.ends_with("/a.txt"), "{url}");
    assert_eq!(fx.fetch(url, &[]).await.2, a);

    let req = TestRequest::get()
        .uri(&format!(
            "/v1/files/downloads/?file_id={id}&item=b.txt&redirect=true"
        ))
        .insert_header(("Authorization", format!("Bearer {}", fx.token)));
    let (s, h, _) = fx.call(req).await;
    assert_eq!(s, StatusCode::FOUND);
    let loc = h.get("location").unwrap().to_str().unwrap().to_string();
    assert_eq!(fx.fetch(&loc, &[]).await.2, b"bee");

    let (s, v) = fx.ask(&format!("file_id={id}&redirect=true")).await;
    assert_eq!((s, reason(&v)), (StatusCode::BAD_REQUEST, "redirect_archive"));
    for missing in ["nope.txt", "dir", "a.txt", "/b.txt"] {
        let (s, v) = fx.ask(&format!("file_id={id}&item={}", urlencode(missing))).await;
        assert_eq!(
            (s, reason(&v)),
            (StatusCode::NOT_FOUND, "item_not_found"),
            "{missing}"
        );
        assert_eq!(v["error"]["param"], "item");
    }

    // XML: `<items><item>…</item></items>`.
    let req = TestRequest::get()
        .uri(&format!("/v1/files/downloads/?file_id={id}&format=xml"))
        .insert_header(("Authorization", format!("Bearer {}", fx.token)));
    let (_, _, b) = fx.call(req).await;
    let xml = String::from_utf8(b).unwrap();
    assert!(xml.contains("<items><item><name>dir/a.txt</name>"), "{xml}");
    assert!(
        !xml.contains("<url>http") || xml.matches("<url>").count() == 2,
        "{xml}"
    );

    // A plain file has no items.
    let empty = fx.upload("empty.bin", b"").await;
    let (_, v) = fx
        .ask(&format!("file_id={}", empty["id"].as_str().unwrap()))
        .await;
    let (s, h, b) = fx.fetch(v["download"]["url"].as_str().unwrap(), &[]).await;
    assert_eq!(
        (s, b.len()),
        (StatusCode::OK, 0),
        "an empty plain file downloads too"
    );
    assert_eq!(h.get("content-length").unwrap(), "0");
    // An HTML entry never renders inline: attachment and a sandbox, as for files.
    let html = fx
        .upload(
            "site.zip",
            &zip_of(&[("index.html", b"<script>alert(1)</script>", false)]),
        )
        .await;
    let (_, v) = fx
        .ask(&format!(
            "file_id={}&item=index.html&streaming=true",
            html["id"].as_str().unwrap()
        ))
        .await;
    let (_, h, _) = fx.fetch(v["download"]["url"].as_str().unwrap(), &[]).await;
    assert_eq!(h.get("content-type").unwrap(), "text/html");
    assert!(h
        .get("content-disposition")
        .unwrap()
        .to_str()
        .unwrap()
        .starts_with("attachment"));
    assert!(h.get("content-security-policy").is_some());
    let plain = fx.upload("plain.txt", b"just text").await;
    let (s, v) = fx
        .ask(&format!("file_id={}&item=a", plain["id"].as_str().unwrap()))
        .await;
    assert_eq!((s, reason(&v)), (StatusCode::BAD_REQUEST, "not_an_archive"));
    assert!(plain["elements"].is_null());
}

fn urlencode(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

#[actix_web::test]
async fn python_zipfile_archives_zip64_and_data_descriptors_serve_byte_for_byte() {
    let fx = Fx::new();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("py.zip");
    let code = r#"
import sys, zipfile
def text(n, seed):
    x = seed * 2654435761 % 2**32 + 1
    out = bytearray()
    for _ in range(n):
        x ^= (x << 13) & 0xffffffff; x ^= x >> 17; x ^= (x << 5) & 0xffffffff
        out.append(b"etaoinshrdlu \n.,"[x % 16])
    return bytes(out)
class Unseekable:
    # Written to a pipe-like stream, zipfile puts CRC and sizes in data descriptors.
    def __init__(self, f): self.f = f
    def write(self, b): return self.f.write(b)
    def flush(self): self.f.flush()
raw = open(sys.argv[1], "wb")
out = raw if sys.argv[2] == "seekable" else Unseekable(raw)
with zipfile.ZipFile(out, "w") as z:
    z.writestr(zipfile.ZipInfo("stored.txt"), text(70000, 11), compress_type=zipfile.ZIP_STORED)
    z.writestr("deflated.txt", text(90000, 12), compress_type=zipfile.ZIP_DEFLATED)
    with z.open("zip64.txt", "w", force_zip64=True) as f:
        f.write(text(50000, 13))
    z.writestr("empty.txt", b"")
    z.writestr("ünïcödé/名前.txt", "ok".encode())
raw.close()
"#;
    for mode in ["seekable", "unseekable"] {
        let st = Command::new("python3")
            .args(["-c", code])
            .arg(&out)
            .arg(mode)
            .status()
            .unwrap();
        assert!(st.success());
        let data = std::fs::read(&out).unwrap();
        let descriptors = zip::ZipArchive::new(std::io::Cursor::new(&data))
            .unwrap()
            .by_index_data(0)
            .unwrap()
            .flags()
            .is_using_data_descriptor();
        assert_eq!(descriptors, mode == "unseekable");
        let f = fx.upload("py.zip", &data).await;
        assert_eq!(
            (f["type"].as_str(), f["subtype"].as_str()),
            (Some("archive"), Some("zip")),
            "{mode}"
        );
        check_items(
            &fx,
            f["id"].as_str().unwrap(),
            &[
                ("stored.txt", text(70000, 11)),
                ("deflated.txt", text(90000, 12)),
                ("zip64.txt", text(50000, 13)),
                ("empty.txt", Vec::new()),
                ("ünïcödé/名前.txt", b"ok".to_vec()),
            ],
        )
        .await;
    }
}

fn tar_of(build: impl FnOnce(&mut tar::Builder<Vec<u8>>)) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    build(&mut b);
    b.into_inner().unwrap()
}

fn tar_file(b: &mut tar::Builder<Vec<u8>>, path: &str, data: &[u8]) {
    let mut h = tar::Header::new_gnu();
    h.set_size(data.len() as u64);
    h.set_mode(0o644);
    h.set_entry_type(tar::EntryType::Regular);
    b.append_data(&mut h, path, data).unwrap();
}

fn tar_link(b: &mut tar::Builder<Vec<u8>>, kind: tar::EntryType, path: &str, target: &str) {
    let mut h = tar::Header::new_gnu();
    h.set_size(0);
    h.set_mode(0o777);
    h.set_entry_type(kind);
    b.append_link(&mut h, path, target).unwrap();
}

#[actix_web::test]
async fn tar_and_tar_gz_from_the_tar_crate_serve_every_entry() {
    let fx = Fx::new();
    let long = format!("{}/deep.bin", "very-long-directory-name".repeat(6));
    let (a, b, c) = (text(1000, 4), text(200_000, 5), vec![0u8; 513]);
    let data = tar_of(|t| {
        tar_file(t, "a.txt", &a);
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_size(0);
        h.set_mode(0o755);
        t.append_data(&mut h, "dir/", &[][..]).unwrap();
        tar_file(t, "dir/b.log", &b);
        tar_link(t, tar::EntryType::Symlink, "dir/passwd", "/etc/passwd");
        tar_link(t, tar::EntryType::Link, "hard", "a.txt");
        tar_file(t, &long, &c);
    });
    let want = [("a.txt", a), ("dir/b.log", b), (long.as_str(), c)];
    let f = fx.upload("t.tar", &data).await;
    assert_eq!(
        (f["type"].as_str(), f["subtype"].as_str()),
        (Some("archive"), Some("tar"))
    );
    check_items(&fx, f["id"].as_str().unwrap(), &want).await;

    let f = fx.upload("t.tar.gz", &gzip(&data)).await;
    assert_eq!(
        (f["type"].as_str(), f["subtype"].as_str()),
        (Some("archive"), Some("tar.gz"))
    );
    check_items(&fx, f["id"].as_str().unwrap(), &want).await;

    // Content, not the name, decides: a .tgz named "backup" is still a tar.gz.
    let f = fx.upload("backup", &gzip(&data)).await;
    assert_eq!(f["subtype"], "tar.gz");
    // A gzip that holds no tar is a plain file.
    let f = fx.upload("notes.gz", &gzip(b"just some text")).await;
    assert_eq!((f["type"].as_str(), f["subtype"].as_str()), (Some("file"), None));
}

#[actix_web::test]
async fn archives_written_by_the_tar_command_serve_byte_for_byte() {
    let fx = Fx::new();
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    std::fs::create_dir_all(src.join("sub/deeper")).unwrap();
    let files = [
        ("one.txt", text(12_345, 6)),
        ("sub/two.csv", text(70_000, 7)),
        ("sub/deeper/three.bin", text(3, 8)),
    ];
    for (p, d) in &files {
        std::fs::write(src.join(p), d).unwrap();
    }
    std::os::unix::fs::symlink("/etc/passwd", src.join("sub/evil")).unwrap();
    for (flags, out, subtype) in [
        ("-cf", "gnu.tar", "tar"),
        ("-czf", "gnu.tgz", "tar.gz"),
        ("--format=pax -cf", "pax.tar", "tar"),
    ] {
        let path = dir.path().join(out);
        let mut cmd = Command::new("tar");
        cmd.args(flags.split(' ')).arg(&path).arg("-C").arg(&src);
        for (p, _) in &files {
            cmd.arg(p);
        }
        cmd.arg("sub/evil");
        assert!(cmd.status().expect("tar is installed").success());
        let f = fx.upload(out, &std::fs::read(&path).unwrap()).await;
        assert_eq!(f["subtype"], subtype, "{out}");
        let want: Vec<(&str, Vec<u8>)> = files.iter().map(|(p, d)| (*p, d.clone())).collect();
        check_items(&fx, f["id"].as_str().unwrap(), &want).await;
    }
}

/// `Range` on an entry: (status, Content-Range, body).
async fn ranged(fx: &Fx, url: &str, range: &str) -> (StatusCode, Option<String>, Vec<u8>) {
    let (s, h, b) = fx.fetch(url, &[("Range", range)]).await;
    let cr = h.get("content-range").map(|v| v.to_str().unwrap().to_string());
    (s, cr, b)
}

#[actix_web::test]
async fn range_works_on_stored_deflated_and_gzipped_entries() {
    let fx = Fx::new();
    let body = text(400_000, 9);
    let n = body.len();
    let zip = zip_of(&[("s.txt", &body, false), ("d.txt", &body, true)]);
    let tgz = gzip(&tar_of(|t| {
        tar_file(t, "pad.bin", &text(100_000, 10));
        tar_file(t, "g.txt", &body);
    }));
    let fz = fx.upload("r.zip", &zip).await;
    let fg = fx.upload("r.tgz", &tgz).await;
    let mut urls = Vec::new();
    for (f, item) in [(&fz, "s.txt"), (&fz, "d.txt"), (&fg, "g.txt")] {
        let (_, v) = fx
            .ask(&format!("file_id={}&item={item}", f["id"].as_str().unwrap()))
            .await;
        urls.push(v["download"]["url"].as_str().unwrap().to_string());
    }
    for url in &urls {
        let (s, cr, b) = ranged(&fx, url, "bytes=1000-1999").await;
        assert_eq!(s, StatusCode::PARTIAL_CONTENT, "{url}");
        assert_eq!(cr.as_deref(), Some(format!("bytes 1000-1999/{n}").as_str()));
        assert_eq!(b, &body[1000..2000]);

        let (s, _, b) = ranged(&fx, url, "bytes=-70000").await;
        assert_eq!(s, StatusCode::PARTIAL_CONTENT);
        assert_eq!(b, &body[n - 70000..], "suffix range, streamed");

        let (s, _, b) = ranged(&fx, url, "bytes=399990-").await;
        assert_eq!((s, b.as_slice()), (StatusCode::PARTIAL_CONTENT, &body[399_990..]));

        let (s, cr, _) = ranged(&fx, url, &format!("bytes={n}-")).await;
        assert_eq!(s, StatusCode::RANGE_NOT_SATISFIABLE);
        assert_eq!(cr.as_deref(), Some(format!("bytes */{n}").as_str()));

        // Several ranges, out of order: multipart/byteranges with each part right.
        let (s, h, b) = fx
            .fetch(url, &[("Range", "bytes=300000-300009,5-14,200000-200009")])
            .await;
        assert_eq!(s, StatusCode::PARTIAL_CONTENT);
        let ct = h.get("content-type").unwrap().to_str().unwrap();
        assert!(ct.starts_with("multipart/byteranges; boundary="), "{ct}");
        assert_eq!(h.get("content-length").unwrap(), &b.len().to_string());
        let mp = String::from_utf8_lossy(&b);
        let order: Vec<usize> = ["bytes 300000-300009", "bytes 5-14", "bytes 200000-200009"]
            .iter()
            .map(|p| mp.find(p).expect(p))
            .collect();
        assert!(order[0] < order[1] && order[1] < order[2]);
        for start in [300_000usize, 5, 200_000] {
            let want = String::from_utf8_lossy(&body[start..start + 10]).into_owned();
            assert!(mp.contains(&format!("/{n}\r\n\r\n{want}\r\n")), "part at {start}");
        }

        // If-Range with the entry's ETag honours the range; a stale one sends all.
        let (_, h, _) = fx.fetch(url, &[]).await;
        let etag = h.get("etag").unwrap().to_str().unwrap().to_string();
        let (s, _, b) = fx
            .fetch(url, &[("Range", "bytes=0-9"), ("If-Range", &etag)])
            .await;
        assert_eq!((s, b.as_slice()), (StatusCode::PARTIAL_CONTENT, &body[..10]));
        let (s, _, b) = fx
            .fetch(url, &[("Range", "bytes=0-9"), ("If-Range", "\"other\"")])
            .await;
        assert_eq!((s, b.len()), (StatusCode::OK, n));
        let (s, _, _) = fx.fetch(url, &[("If-None-Match", &etag)]).await;
        assert_eq!(s, StatusCode::NOT_MODIFIED);
    }
}

#[actix_web::test]
async fn zip_slip_names_are_cleaned_or_left_out_and_links_never_resolve_paths() {
    let fx = Fx::new();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("slip.zip");
    python(
        r#"
import sys, zipfile
with zipfile.ZipFile(sys.argv[1], "w") as z:
    for name, data in [
        ("../../etc/evil.txt", b"slip"),
        ("/abs/path.txt", b"abs"),
        ("C:\\win\\drive.txt", b"drive"),
        ("ok/../../up.txt", b"up"),
        ("ctl\x1b[31m.txt", b"ctl"),
        ("safe/file.txt", b"safe"),
    ]:
        z.writestr(zipfile.ZipInfo(name), data)
    link = zipfile.ZipInfo("link-to-passwd")
    link.external_attr = (0o120777 << 16)
    z.writestr(link, "/etc/passwd")
"#,
        &out,
    );
    let f = fx.upload("slip.zip", &std::fs::read(&out).unwrap()).await;
    assert_eq!(f["type"], "archive", "{f}");
    let id = f["id"].as_str().unwrap();
    check_items(
        &fx,
        id,
        &[
            ("abs/path.txt", b"abs".to_vec()),
            ("win/drive.txt", b"drive".to_vec()),
            ("safe/file.txt", b"safe".to_vec()),
        ],
    )
    .await;
    for item in [
        "../../etc/evil.txt",
        "etc/evil.txt",
        "link-to-passwd",
        "/abs/path.txt",
    ] {
        let (s, v) = fx.ask(&format!("file_id={id}&item={}", urlencode(item))).await;
        assert_eq!(
            (s, reason(&v)),
            (StatusCode::NOT_FOUND, "item_not_found"),
            "{item}"
        );
    }
    // Nothing was written outside the data directory (or anywhere but the blob).
    assert!(!std::path::Path::new("/etc/evil.txt").exists());
}

#[actix_web::test]
async fn duplicate_names_resolve_the_same_way_every_time() {
    let fx = Fx::new();
    // TAR: appending a newer copy is normal (tar -r); the last one wins, as on extraction.
    let data = tar_of(|t| {
        tar_file(t, "dup.txt", b"first");
        tar_file(t, "other.txt", b"other");
        tar_file(t, "dup.txt", b"second");
        // The tar crate refuses to write an absolute name; write the header by hand.
        let mut h = tar::Header::new_gnu();
        h.as_gnu_mut().unwrap().name[..8].copy_from_slice(b"/dup.txt");
        h.set_size(21);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        h.set_cksum();
        t.append(&h, &b"third, after cleaning"[..]).unwrap();
    });
    for _ in 0..2 {
        let f = fx.upload("dups.tar", &data).await;
        check_items(
            &fx,
            f["id"].as_str().unwrap(),
            &[
                ("other.txt", b"other".to_vec()),
                ("dup.txt", b"third, after cleaning".to_vec()),
            ],
        )
        .await;
    }
    // ZIP: a central directory that repeats a name is the "ambiguous ZIP" trick: refused.
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("dup.zip");
    python(
        r#"
import sys, zipfile, warnings
warnings.simplefilter("ignore")
with zipfile.ZipFile(sys.argv[1], "w") as z:
    z.writestr("dup.txt", b"one")
    z.writestr("dup.txt", b"two")
"#,
        &out,
    );
    let bytes = std::fs::read(&out).unwrap();
    let f = fx.upload("dup.zip", &bytes).await;
    assert_eq!(f["type"], "file");
    let r = index_bytes(&bytes, Format::Zip, &Limits::default());
    assert!(matches!(r, Err(IndexError::DuplicateNames)), "{r:?}");
}

/// Indexes `bytes` as `format` directly (to see which refusal a hostile archive gets).
fn index_bytes(bytes: &[u8], format: Format, limits: &Limits) -> Result<archive::Index, IndexError> {
    let mut f = tempfile::tempfile().unwrap();
    f.write_all(bytes).unwrap();
    archive::index(&f, bytes.len() as u64, format, limits)
}

/// Fifield's overlapping-entry construction: `n` local headers back to back, then one
/// kernel; every entry's data runs from its header's end to the kernel's end, so each
/// entry contains all the later ones. Headers and directory agree; only overlap betrays it.
fn overlap_bomb(n: usize, kernel: usize) -> Vec<u8> {
    let names: Vec<String> = (0..n).map(|i| format!("{i:05}")).collect();
    let lh = |name: &str| 30 + name.len();
    let offsets: Vec<usize> = (0..n).map(|i| names[..i].iter().map(|s| lh(s)).sum()).collect();
    let end = offsets[n - 1] + lh(&names[n - 1]) + kernel;
    // Lay out headers with placeholder CRCs, then compute each entry's CRC over its data.
    let mut out = vec![0u8; end];
    out[end - kernel..].fill(b'A');
    let mut crcs = vec![0u32; n];
    let header = |name: &str, crc: u32, size: u32| {
        let mut h = Vec::new();
        h.extend_from_slice(b"PK\x03\x04");
        h.extend_from_slice(&[20, 0, 0, 0, 0, 0, 0, 0, 0x21, 0]);
        h.extend_from_slice(&crc.to_le_bytes());
        h.extend_from_slice(&size.to_le_bytes());
        h.extend_from_slice(&size.to_le_bytes());
        h.extend_from_slice(&(name.len() as u16).to_le_bytes());
        h.extend_from_slice(&[0, 0]);
        h.extend_from_slice(name.as_bytes());
        h
    };
    // Later headers are inside earlier entries' data: fill from the last one back.
    for i in (0..n).rev() {
        let data_start = offsets[i] + lh(&names[i]);
        crcs[i] = crc32fast::hash(&out[data_start..end]);
        let h = header(&names[i], crcs[i], (end - data_start) as u32);
        out[offsets[i]..data_start].copy_from_slice(&h);
    }
    let cd_start = out.len();
    for i in 0..n {
        let size = (end - offsets[i] - lh(&names[i])) as u32;
        out.extend_from_slice(b"PK\x01\x02");
        out.extend_from_slice(&[20, 3, 20, 0, 0, 0, 0, 0, 0, 0, 0x21, 0]);
        out.extend_from_slice(&crcs[i].to_le_bytes());
        out.extend_from_slice(&size.to_le_bytes());
        out.extend_from_slice(&size.to_le_bytes());
        out.extend_from_slice(&(names[i].len() as u16).to_le_bytes());
        out.extend_from_slice(&[0; 12]);
        out.extend_from_slice(&(offsets[i] as u32).to_le_bytes());
        out.extend_from_slice(names[i].as_bytes());
    }
    let cd_len = out.len() - cd_start;
    out.extend_from_slice(b"PK\x05\x06\0\0\0\0");
    out.extend_from_slice(&(n as u16).to_le_bytes());
    out.extend_from_slice(&(n as u16).to_le_bytes());
    out.extend_from_slice(&(cd_len as u32).to_le_bytes());
    out.extend_from_slice(&(cd_start as u32).to_le_bytes());
    out.extend_from_slice(&[0, 0]);
    out
}

#[actix_web::test]
async fn an_overlapping_entry_bomb_stops_fast_and_is_kept_as_a_plain_file() {
    let bomb = overlap_bomb(3000, 50_000);
    // It is a well-formed ZIP to a reader that trusts the directory: the zip crate lists
    // every entry, and they add up to gigabytes.
    let z = zip::ZipArchive::new(std::io::Cursor::new(&bomb)).unwrap();
    assert_eq!(z.len(), 3000);
    // A generous bound: unbounded work would take many minutes; a loaded CI machine must not flake.
    let started = Instant::now();
    let r = index_bytes(&bomb, Format::Zip, &Limits::default());
    assert!(matches!(r, Err(IndexError::Overlap)), "{r:?}");
    assert!(started.elapsed().as_secs() < 60, "{:?}", started.elapsed());

    let fx = Fx::new();
    let started = Instant::now();
    let f = fx.upload("bomb.zip", &bomb).await;
    assert!(started.elapsed().as_secs() < 60, "{:?}", started.elapsed());
    assert_eq!(f["type"], "file");
    assert!(f["elements"].is_null());
    // Still the user's file: downloadable whole.
    let (s, v) = fx.ask(&format!("file_id={}", f["id"].as_str().unwrap())).await;
    assert_eq!(s, StatusCode::OK);
    let (s, _, b) = fx.fetch(v["download"]["url"].as_str().unwrap(), &[]).await;
    assert_eq!((s, b.len()), (StatusCode::OK, bomb.len()));
}

/// `n` one-byte stored entries, written directly (Python takes seconds for this many),
/// with ZIP64 end records as `n` > 65 535 requires.
fn many_entries_zip(n: usize) -> Vec<u8> {
    let crc = crc32fast::hash(b"x").to_le_bytes();
    let mut out = Vec::with_capacity(n * 110);
    let mut offsets = Vec::with_capacity(n);
    for i in 0..n {
        offsets.push(out.len() as u32);
        out.extend_from_slice(b"PK\x03\x04\x0a\0\0\0\0\0\0\0\x21\0");
        out.extend_from_slice(&crc);
        out.extend_from_slice(&[1, 0, 0, 0, 1, 0, 0, 0, 11, 0, 0, 0]);
        out.extend_from_slice(format!("f{i:06}.txt").as_bytes());
        out.push(b'x');
    }
    let cd_start = out.len() as u64;
    for (i, off) in offsets.iter().enumerate() {
        out.extend_from_slice(b"PK\x01\x02\x14\x03\x0a\0\0\0\0\0\0\0\x21\0");
        out.extend_from_slice(&crc);
        out.extend_from_slice(&[1, 0, 0, 0, 1, 0, 0, 0, 11, 0]);
        out.extend_from_slice(&[0; 8]);
        out.extend_from_slice(&(0o100644u32 << 16).to_le_bytes()[..]);
        out.extend_from_slice(&off.to_le_bytes());
        out.extend_from_slice(format!("f{i:06}.txt").as_bytes());
    }
    let cd_len = out.len() as u64 - cd_start;
    let eocd64 = out.len() as u64;
    out.extend_from_slice(b"PK\x06\x06");
    out.extend_from_slice(&44u64.to_le_bytes());
    out.extend_from_slice(&[45, 3, 45, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    out.extend_from_slice(&(n as u64).to_le_bytes());
    out.extend_from_slice(&(n as u64).to_le_bytes());
    out.extend_from_slice(&cd_len.to_le_bytes());
    out.extend_from_slice(&cd_start.to_le_bytes());
    out.extend_from_slice(b"PK\x06\x07\0\0\0\0");
    out.extend_from_slice(&eocd64.to_le_bytes());
    out.extend_from_slice(&1u32.to_le_bytes());
    out.extend_from_slice(b"PK\x05\x06\0\0\0\0\xff\xff\xff\xff");
    out.extend_from_slice(&(cd_len as u32).to_le_bytes());
    out.extend_from_slice(&(cd_start as u32).to_le_bytes());
    out.extend_from_slice(&[0, 0]);
    out
}

#[actix_web::test]
async fn a_hundred_thousand_tiny_entries_hit_the_cap_fast_or_index_when_allowed() {
    let bytes = many_entries_zip(100_000);
    // Another reader agrees it is a well-formed ZIP64 archive of 100 000 entries.
    assert_eq!(
        zip::ZipArchive::new(std::io::Cursor::new(&bytes)).unwrap().len(),
        100_000
    );

    // Default cap (10 000): refused on the count the end record declares (ZIP64 here,
    // since 100 000 > 65 535), before the central directory is read.
    let started = Instant::now();
    let r = index_bytes(&bytes, Format::Zip, &Limits::default());
    assert!(matches!(r, Err(IndexError::TooManyEntries(10_000))), "{r:?}");
    // Speed is a benchmark's business; here only that the cap stops it, whatever the load.
    let _ = started;
    let fx = Fx::new();
    let f = fx.upload("many.zip", &bytes).await;
    assert_eq!(f["type"], "file");

    // With the cap raised, all of them are indexed in bounded time.
    let fx = Fx::with(|c| c.archives.max_entries = 200_000);
    let started = Instant::now();
    let f = fx.upload("many.zip", &bytes).await;
    let took = started.elapsed();
    assert_eq!(f["type"], "archive");
    assert_eq!(f["elements"].as_array().unwrap().len(), 100_000);
    assert_eq!(f["elements"][99_999]["name"], "f099999.txt");
    eprintln!("indexing 100 000 entries took {took:?}");
    let id = f["id"].as_str().unwrap();
    let (s, v) = fx.ask(&format!("file_id={id}&item=f054321.txt")).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        fx.fetch(v["download"]["url"].as_str().unwrap(), &[]).await.2,
        b"x"
    );
}

#[actix_web::test]
async fn truncated_and_inconsistent_archives_are_kept_as_plain_files() {
    let fx = Fx::new();
    let zip = zip_of(&[("a.txt", &text(5000, 1), true), ("b.txt", &text(5000, 2), false)]);
    let tar = tar_of(|t| {
        tar_file(t, "a.txt", &text(5000, 1));
        tar_file(t, "b.txt", &text(5000, 2));
    });
    let tgz = gzip(&tar);
    let cases: Vec<(&str, Vec<u8>, Format, &str)> = vec![
        ("cut.zip", zip[..zip.len() / 2].to_vec(), Format::Zip, "malformed"),
        ("cut.tar", tar[..3000].to_vec(), Format::Tar, "truncated"),
        (
            "cut.tgz",
            tgz[..tgz.len() / 2].to_vec(),
            Format::TarGz,
            "truncated",
        ),
    ];
    for (name, bytes, format, why) in cases {
        let r = index_bytes(&bytes, format, &Limits::default());
        assert_eq!(r.as_ref().map(|_| ()).unwrap_err().reason(), why, "{name}: {r:?}");
        let f = fx.upload(name, &bytes).await;
        assert_eq!(f["type"], "file", "{name}");
    }

    // The central directory says "b.txt"; the local header says "c.txt".
    let mut bad = zip.clone();
    let second = bad
        .windows(4)
        .enumerate()
        .filter(|(_, w)| *w == b"PK\x03\x04")
        .nth(1)
        .unwrap()
        .0;
    assert_eq!(&bad[second + 30..second + 35], b"b.txt");
    bad[second + 30] = b'c';
    let r = index_bytes(&bad, Format::Zip, &Limits::default());
    assert!(matches!(r, Err(IndexError::HeaderMismatch(1, "name"))), "{r:?}");
    assert_eq!(fx.upload("bad.zip", &bad).await["type"], "file");
}

#[actix_web::test]
async fn a_gzip_bomb_stops_at_the_ratio_cap() {
    // 40 MiB of zeros in a tar.gz of about 40 KiB: past 250:1.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let mut h = tar::Header::new_gnu();
    h.set_path("zeros.bin").unwrap();
    h.set_size(40 << 20);
    h.set_mode(0o644);
    h.set_cksum();
    gz.write_all(h.as_bytes()).unwrap();
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..41 {
        gz.write_all(&zeros).unwrap();
    }
    let bomb = gz.finish().unwrap();
    assert!(bomb.len() < 200_000, "{}", bomb.len());
    let started = Instant::now();
    let r = index_bytes(&bomb, Format::TarGz, &Limits::default());
    assert!(matches!(r, Err(IndexError::Ratio(250))), "{r:?}");
    assert!(started.elapsed().as_secs() < 60);
    let small = Limits {
        max_total_size: 1 << 20,
        ..Limits::default()
    };
    let r = index_bytes(&bomb, Format::TarGz, &small);
    assert!(matches!(r, Err(IndexError::TooLarge(_))), "{r:?}");
}

#[actix_web::test]
async fn a_corrupted_entry_fails_its_crc_when_served_whole_but_ranges_still_work() {
    let fx = Fx::new();
    let small = text(1000, 21);
    let large = text(500_000, 22);
    let zip = zip_of(&[("small.txt", &small, false), ("large.txt", &large, false)]);
    let f = fx.upload("c.zip", &zip).await;
    let sha = f["sha256"].as_str().unwrap();
    let blob = fx
        .env
        .data_dir()
        .join("blobs")
        .join(&sha[0..2])
        .join(&sha[2..4])
        .join(sha);
    let mut bytes = std::fs::read(&blob).unwrap();
    // Flip a byte in the middle of each entry's data.
    let at_small = bytes.windows(20).position(|w| w == &small[..20]).unwrap() + 500;
    let at_large = bytes.windows(20).position(|w| w == &large[..20]).unwrap() + 400_000;
    bytes[at_small] ^= 0x20;
    bytes[at_large] ^= 0x20;
    std::fs::write(&blob, &bytes).unwrap();

    let id = f["id"].as_str().unwrap();
    let items = fx.items(id).await;
    let (s, _, _) = fx.fetch(items[0]["url"].as_str().unwrap(), &[]).await;
    assert_eq!(
        s,
        StatusCode::INTERNAL_SERVER_ERROR,
        "small: checked before sending"
    );
    // Large: the answer starts, then stops short of its Content-Length.
    let app = fx.env.service().await;
    let url = items[1]["url"]
        .as_str()
        .unwrap()
        .strip_prefix(BASE)
        .unwrap()
        .to_string();
    let res = test::call_service(&app, TestRequest::get().uri(&url).to_request()).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(
        test::try_read_body(res).await.is_err(),
        "the body errors instead of ending"
    );
    // A range is not checked (there is no CRC of a part) and is served.
    let (s, _, b) = fx
        .fetch(items[1]["url"].as_str().unwrap(), &[("Range", "bytes=0-99")])
        .await;
    assert_eq!((s, b.as_slice()), (StatusCode::PARTIAL_CONTENT, &large[..100]));
    // A small entry is read whole for any answer (and kept a second), so its ranges are
    // checked too.
    let (s, _, _) = fx
        .fetch(items[0]["url"].as_str().unwrap(), &[("Range", "bytes=0-99")])
        .await;
    assert_eq!(s, StatusCode::INTERNAL_SERVER_ERROR, "small: ranges checked too");
}

#[actix_web::test]
async fn deleting_an_archive_removes_its_entries_and_kills_entry_links() {
    let fx = Fx::new();
    let f = fx.upload("d.zip", &zip_of(&[("a.txt", b"aaa", false)])).await;
    let id = f["id"].as_str().unwrap();
    let url = fx.items(id).await[0]["url"].as_str().unwrap().to_string();
    assert_eq!(fx.fetch(&url, &[]).await.0, StatusCode::OK);
    let req = TestRequest::delete()
        .uri(&format!("/v1/files/{id}"))
        .insert_header(("Authorization", format!("Bearer {}", fx.token)));
    assert_eq!(fx.call(req).await.0, StatusCode::NO_CONTENT);
    assert_eq!(fx.fetch(&url, &[]).await.0, StatusCode::NOT_FOUND);
    let conn = fx.env.state.catalog.conn().unwrap();
    let left: i64 = conn
        .query_row("SELECT count(*) FROM archive_entries", [], |r| r.get(0))
        .unwrap();
    assert_eq!(left, 0);
}

/// The real binary and curl: each entry of an uploaded zip saves under its own name with
/// `curl -O -J`, and an interrupted download of a deflated entry resumes with `curl -C -`.
#[test]
fn curl_saves_each_entry_under_its_name_and_resumes_a_deflated_one() {
    let server = Server::start();
    let (id, secret) = (
        server.banner_value("client_id").unwrap(),
        server.banner_value("client_secret").unwrap(),
    );
    let (code, body) = curl(&[
        "-u",
        &format!("{id}:{secret}"),
        "-d",
        "grant_type=client_credentials",
        &server.url("/v1/oauth2/token"),
    ]);
    assert_eq!(code, 200, "{body}");
    let tok = serde_json::from_str::<Value>(&body).unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let dir = tempfile::tempdir().unwrap();
    let big = text(2_000_000, 31);
    let small = b"small one\n".to_vec();
    let zip = zip_of(&[
        ("media/Big File (1).log", &big, true),
        ("small.txt", &small, false),
    ]);
    let src = dir.path().join("bundle.zip");
    std::fs::write(&src, &zip).unwrap();
    let (code, body) = curl(&[
        "-H",
        &format!("Authorization: Bearer {tok}"),
        "-F",
        &format!("file=@{};filename=bundle.zip", src.display()),
        &server.url("/v1/files/uploads/"),
    ]);
    assert_eq!(code, 201, "{body}");
    let up: Value = serde_json::from_str(&body).unwrap();
    let file_id = up["upload"]["file"]["id"].as_str().unwrap().to_string();
    assert_eq!(up["upload"]["file"]["type"], "archive");

    let (code, body) = curl(&[
        "-H",
        &format!("Authorization: Bearer {tok}"),
        &server.url(&format!("/v1/files/downloads/?file_id={file_id}")),
    ]);
    assert_eq!(code, 200, "{body}");
    let items = serde_json::from_str::<Value>(&body).unwrap()["download"]["items"].clone();
    let out = dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    for item in items.as_array().unwrap() {
        let st = Command::new("curl")
            .args(["-s", "-f", "-O", "-J", item["url"].as_str().unwrap()])
            .current_dir(&out)
            .status()
            .unwrap();
        assert!(st.success());
    }
    assert_eq!(std::fs::read(out.join("Big File (1).log")).unwrap(), big);
    assert_eq!(std::fs::read(out.join("small.txt")).unwrap(), small);

    // Resume the deflated entry after 700 000 bytes: a Range that inflates and skips.
    let partial = dir.path().join("partial.log");
    std::fs::write(&partial, &big[..700_000]).unwrap();
    let st = Command::new("curl")
        .args(["-s", "-f", "-C", "-", "-o"])
        .arg(&partial)
        .arg(items[0]["url"].as_str().unwrap())
        .status()
        .unwrap();
    assert!(st.success());
    assert_eq!(sha256_hex(&std::fs::read(&partial).unwrap()), sha256_hex(&big));
}

/// The three-step flow: an archive posted as one chunk (adopted as it is) or as two
/// (assembled) is indexed when the upload completes, like a one-shot upload.
#[actix_web::test]
async fn archives_uploaded_in_chunks_are_indexed_on_completion() {
    let fx = Fx::new();
    let a = text(150_000, 41);
    let zip = zip_of(&[("a.txt", &a, true), ("b.txt", b"bee", false)]);
    for pieces in [vec![&zip[..]], vec![&zip[..1000], &zip[1000..]]] {
        let req = TestRequest::post()
            .uri(&format!("/v1/files/uploads/?object_key={}", ids()))
            .insert_header(("Authorization", format!("Bearer {}", fx.token)));
        let (s, _, b) = fx.call(req).await;
        assert_eq!(s, StatusCode::CREATED);
        let up = serde_json::from_slice::<Value>(&b).unwrap()["upload"].clone();
        let p = &up["form_post_params"];
        for (i, piece) in pieces.iter().enumerate() {
            let boundary = "archive-test-boundary";
            let mut body = Vec::new();
            for (k, v) in [
                ("upload_id", p["upload_id"].as_str().unwrap().to_string()),
                ("upload_token", p["upload_token"].as_str().unwrap().to_string()),
                ("chunk", i.to_string()),
                ("chunks", pieces.len().to_string()),
            ] {
                body.extend_from_slice(
                    format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n")
                        .as_bytes(),
                );
            }
            body.extend_from_slice(
                format!(
                    "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"parts.zip\"\r\n\r\n"
                )
                .as_bytes(),
            );
            body.extend_from_slice(piece);
            body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
            let url = up["form_post_url"].as_str().unwrap().strip_prefix(BASE).unwrap();
            let req = TestRequest::post()
                .uri(url)
                .insert_header((
                    "Content-Type",
                    format!("multipart/form-data; boundary={boundary}"),
                ))
                .set_payload(body);
            let (s, _, b) = fx.call(req).await;
            assert_eq!(s, StatusCode::OK, "{}", String::from_utf8_lossy(&b));
        }
        let req = TestRequest::put()
            .uri(&format!("/v1/files/uploads/{}", up["id"].as_str().unwrap()))
            .insert_header(("Authorization", format!("Bearer {}", fx.token)))
            .set_json(serde_json::json!({"upload": {"nb_chunks": pieces.len()}}));
        let (s, _, b) = fx.call(req).await;
        assert_eq!(s, StatusCode::OK, "{}", String::from_utf8_lossy(&b));
        let f = serde_json::from_slice::<Value>(&b).unwrap()["upload"]["file"].clone();
        assert_eq!(
            (f["type"].as_str(), f["subtype"].as_str()),
            (Some("archive"), Some("zip"))
        );
        assert_eq!(f["elements"].as_array().unwrap().len(), 2);
        check_items(
            &fx,
            f["id"].as_str().unwrap(),
            &[("a.txt", a.clone()), ("b.txt", b"bee".to_vec())],
        )
        .await;
    }
}
