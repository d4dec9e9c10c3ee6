//! Test fixtures: an in-process app on a temp data dir with a fixed clock, and a
//! spawned `filegate serve` on a free port driven by real clients (curl).
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::body::MessageBody;
use actix_web::dev::{Service, ServiceResponse};
use actix_web::{test, App};
use filegate::auth::{apps, tokens, Scopes};
use filegate::clock::FixedClock;
use filegate::config::Config;
use filegate::state::AppState;

/// 2026-01-01T00:00:00Z, a fixed "now" for in-process tests.
pub const NOW_MS: i64 = 1_767_225_600_000;

pub struct TestEnv {
    pub dir: tempfile::TempDir,
    pub state: AppState,
    pub clock: Arc<FixedClock>,
}

impl TestEnv {
    pub fn new() -> TestEnv {
        Self::with_config(|_| {})
    }

    pub fn with_config(f: impl FnOnce(&mut Config)) -> TestEnv {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config::default();
        config.storage.data_dir = dir.path().join("data");
        f(&mut config);
        config.validate().unwrap();
        let clock = FixedClock::new(NOW_MS);
        let state = AppState::open(config, clock.clone()).unwrap();
        TestEnv { dir, state, clock }
    }

    pub fn data_dir(&self) -> &Path {
        self.state.config.data_dir()
    }

    /// A new application with these scopes: (client_id, client_secret).
    pub fn app(&self, scopes: &str) -> (String, String) {
        let conn = self.state.catalog.conn().unwrap();
        let a = apps::create(
            &conn,
            &self.state.secrets,
            "test",
            Scopes::parse(scopes).unwrap(),
            self.clock.now_ms(),
        )
        .unwrap();
        (a.client_id, a.client_secret)
    }

    /// A bearer token of a new application with these scopes.
    pub fn token(&self, scopes: &str) -> String {
        let (id, _) = self.app(scopes);
        let conn = self.state.catalog.conn().unwrap();
        tokens::issue(
            &conn,
            &id,
            Scopes::parse(scopes).unwrap(),
            self.clock.now_ms(),
            3600,
        )
        .unwrap()
    }

    pub async fn service(
        &self,
    ) -> impl Service<actix_http::Request, Response = ServiceResponse<impl MessageBody>, Error = actix_web::Error>
    {
        let state = self.state.clone();
        test::init_service(App::new().configure(move |c| filegate::configure(c, state))).await
    }
}

use filegate::clock::Clock;

/// The parsed JSON body of a response.
/// One in-process request to `env`'s app: the status and the body as JSON (`Null` when
/// empty, a JSON string when it is not JSON).
pub async fn call(env: &TestEnv, req: test::TestRequest) -> (actix_web::http::StatusCode, serde_json::Value) {
    let app = env.service().await;
    let res = test::call_service(&app, req.to_request()).await;
    let status = res.status();
    let bytes = test::read_body(res).await;
    let v = if bytes.is_empty() {
        serde_json::Value::Null
    } else {
        serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| serde_json::Value::String(String::from_utf8_lossy(&bytes).into()))
    };
    (status, v)
}

/// `req` with `Authorization: Bearer <tok>`.
pub fn bearer(req: test::TestRequest, tok: &str) -> test::TestRequest {
    req.insert_header(("Authorization", format!("Bearer {tok}")))
}

/// `GET path` with a bearer token, through [`call`].
pub async fn get(env: &TestEnv, tok: &str, path: &str) -> (actix_web::http::StatusCode, serde_json::Value) {
    call(env, bearer(test::TestRequest::get().uri(path), tok)).await
}

/// `POST path` of a JSON body with a bearer token, through [`call`].
pub async fn post(
    env: &TestEnv,
    tok: &str,
    path: &str,
    body: serde_json::Value,
) -> (actix_web::http::StatusCode, serde_json::Value) {
    call(
        env,
        bearer(test::TestRequest::post().uri(path), tok).set_json(body),
    )
    .await
}

pub async fn json_body<B: MessageBody>(res: ServiceResponse<B>) -> serde_json::Value {
    let bytes = test::read_body(res).await;
    serde_json::from_slice(&bytes)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&bytes)))
}

/// The `error.reason` of an error answer.
pub fn reason(v: &serde_json::Value) -> &str {
    v["error"]["reason"].as_str().unwrap_or("")
}

pub fn binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_filegate"))
}

/// A running `filegate serve` on a free loopback port and its own temp data dir.
pub struct Server {
    pub child: Child,
    pub base: String,
    /// Lines printed on stdout before "filegate listening on".
    pub banner: Vec<String>,
    pub data_dir: PathBuf,
    _dir: Option<tempfile::TempDir>,
}

impl Server {
    pub fn start() -> Server {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let mut s = Self::start_in(&data, &[]);
        s._dir = Some(dir);
        s
    }

    /// Starts on `data_dir` (kept by the caller) with extra arguments and `FILEGATE_*` env.
    // The child moves into `Server`, whose Drop kills and waits for it.
    #[allow(clippy::zombie_processes)]
    pub fn start_in(data_dir: &Path, env: &[(&str, &str)]) -> Server {
        let mut cmd = Command::new(binary());
        cmd.arg("serve")
            .arg("--listen")
            .arg("127.0.0.1:0")
            .arg("--data-dir")
            .arg(data_dir)
            .env("RUST_LOG", "warn")
            .env_remove("FILEGATE_CONFIG")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn filegate");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut banner = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let Ok(line) = rx.recv_timeout(left) else {
                let _ = child.kill();
                let _ = child.wait();
                panic!("server did not start; printed {banner:?}");
            };
            if let Some(addr) = line.strip_prefix("filegate listening on ") {
                // Keep draining stdout so the server never blocks on a full pipe.
                std::thread::spawn(move || while rx.recv().is_ok() {});
                return Server {
                    child,
                    base: addr.trim().to_string(),
                    banner,
                    data_dir: data_dir.to_path_buf(),
                    _dir: None,
                };
            }
            banner.push(line);
        }
    }

    /// The value printed after `key:` in the start-up banner.
    pub fn banner_value(&self, key: &str) -> Option<String> {
        self.banner.iter().find_map(|l| {
            l.trim()
                .strip_prefix(&format!("{key}:"))
                .map(|v| v.trim().to_string())
        })
    }

    /// The first-start application's (client_id, client_secret) from the banner.
    pub fn credentials(&self) -> (String, String) {
        (
            self.banner_value("client_id").unwrap(),
            self.banner_value("client_secret").unwrap(),
        )
    }

    /// A bearer token for these credentials, got with curl.
    pub fn token_with(&self, id: &str, secret: &str) -> String {
        let (code, body) = curl(&[
            "-u",
            &format!("{id}:{secret}"),
            "-d",
            "grant_type=client_credentials",
            &self.url("/v1/oauth2/token"),
        ]);
        assert_eq!(code, 200, "{body}");
        serde_json::from_str::<serde_json::Value>(&body).unwrap()["access_token"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// A bearer token of the first-start application.
    pub fn token(&self) -> String {
        let (id, secret) = self.credentials();
        self.token_with(&id, &secret)
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Runs curl with `args`; returns (status code, body).
pub fn curl(args: &[&str]) -> (u16, String) {
    let out = Command::new("curl")
        .args(["-s", "-S", "-w", "\n%{http_code}"])
        .args(args)
        .output()
        .expect("curl is installed");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (code.trim().parse().unwrap_or(0), body.to_string())
}

/// A multipart/form-data body with one `file` part.
pub fn multipart_file(name: &str, data: &[u8]) -> (String, Vec<u8>) {
    let boundary = "----filegate-test-boundary-7d3f";
    let mut body = Vec::new();
    body.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"upload.bin\"; filename*=UTF-8''{}\r\nContent-Type: application/octet-stream\r\n\r\n",
            percent_encoding::utf8_percent_encode(name, percent_encoding::NON_ALPHANUMERIC)
        )
        .as_bytes(),
    );
    body.extend_from_slice(data);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

/// A multipart/form-data body with text `fields` first, then a `file` part named `name`
/// (what a browser's upload form sends).
pub fn multipart_form(fields: &[(&str, &str)], name: &str, data: &[u8]) -> (String, Vec<u8>) {
    let (ct, file) = multipart_file(name, data);
    let boundary = ct.split("boundary=").nth(1).unwrap().to_string();
    let mut body = Vec::new();
    for (k, v) in fields {
        body.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n").as_bytes(),
        );
    }
    body.extend_from_slice(&file);
    (ct, body)
}

impl TestEnv {
    /// Uploads `data` as `name` through the API (one-shot form); returns the file object.
    pub async fn upload(&self, token: &str, query: &str, name: &str, data: &[u8]) -> serde_json::Value {
        let (ct, body) = multipart_file(name, data);
        let app = self.service().await;
        let req = test::TestRequest::post()
            .uri(&format!("/v1/files/uploads/{query}"))
            .insert_header(("Authorization", format!("Bearer {token}")))
            .insert_header(("Content-Type", ct))
            .set_payload(body)
            .to_request();
        let res = test::call_service(&app, req).await;
        assert_eq!(res.status().as_u16(), 201, "upload of {name}");
        let v = json_body(res).await;
        v["upload"]["file"].clone()
    }
}

pub fn sha256_hex(b: &[u8]) -> String {
    use sha2::Digest;
    filegate::ids::hex(&sha2::Sha256::digest(b))
}

/// True when the command-line tool `name` is installed. When it is not: under CI
/// (`CI=true`, where scripts/test installs it) the test fails; elsewhere it prints why
/// it skips and the caller returns.
pub fn tool(name: &str) -> bool {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {name}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        assert_ne!(
            std::env::var("CI").as_deref(),
            Ok("true"),
            "{name} is missing (scripts/test installs it)"
        );
        eprintln!("skipping: {name} is not installed (scripts/test installs it)");
    }
    found
}

/// Where `needle` first occurs in `hay`.
pub fn find_bytes(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// The AutoGraph mark in a copy: from its magic to its `;`.
pub fn mark_of(copy: &[u8]) -> &[u8] {
    let at = find_bytes(copy, filegate::autograph::MAGIC).expect("the copy carries a mark");
    let end = at + copy[at..].iter().position(|&b| b == b';').unwrap() + 1;
    &copy[at..end]
}

/// The copy with its mark's tag replaced by `tag` (same length), the MAC left as it was:
/// a forged mark.
pub fn forge(copy: &[u8], tag: &str) -> Vec<u8> {
    use base64::Engine;
    let mark = mark_of(copy);
    let at = find_bytes(copy, mark).unwrap();
    let colon = mark.iter().rposition(|&b| b == b':').unwrap();
    let forged_tag = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(tag);
    assert_eq!(forged_tag.len(), mark.len() - colon - 2, "same length");
    let mut out = copy.to_vec();
    out[at + colon + 1..at + mark.len() - 1].copy_from_slice(forged_tag.as_bytes());
    out
}

/// True when the long variants of the adversarial suite should run
/// (`FILEGATE_LONG_TESTS=1`): more rounds, more cases, longer load.
pub fn long_tests() -> bool {
    std::env::var("FILEGATE_LONG_TESTS").is_ok_and(|v| v == "1" || v == "true")
}

/// True in CI (`CI=true`), where a test must not skip for want of a tool or privilege.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// The SHA-256 (hex) of a file, read in 1 MiB pieces.
pub fn sha256_file(p: &Path) -> String {
    use sha2::Digest;
    use std::io::Read;
    let mut f = std::fs::File::open(p).unwrap();
    let mut h = sha2::Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    filegate::ids::hex(&h.finalize())
}

/// Where the store keeps the blob with this SHA-256 (`blobs/ab/cd/abcd…`).
pub fn blob_path(data: &Path, sha: &str) -> PathBuf {
    data.join("blobs").join(&sha[0..2]).join(&sha[2..4]).join(sha)
}

/// Entries in the data directory's `tmp/` (uploads in progress).
pub fn tmp_entries(data: &Path) -> usize {
    std::fs::read_dir(data.join("tmp"))
        .map(|d| d.count())
        .unwrap_or(0)
}

/// Files under `p`, recursively (blob files under `blobs/`).
pub fn walk_blobs(p: &Path) -> usize {
    let mut n = 0;
    for e in std::fs::read_dir(p).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            n += walk_blobs(&e.path());
        } else {
            n += 1;
        }
    }
    n
}

/// A field value for curl -F, quoted so that `;` and `,` in it are taken literally.
pub fn field(name: &str, value: &str) -> String {
    format!("{name}=\"{value}\"")
}

/// A `/proc/PID/status` value in KiB (`VmRSS:`, `VmHWM:`).
pub fn vm_kib(pid: u32, key: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

pub fn md5_hex(b: &[u8]) -> String {
    use md5::Digest;
    filegate::ids::hex(&md5::Md5::digest(b))
}

/// `len` deterministic bytes (xorshift) with a multipart delimiter look-alike
/// (`\r\n--`, `\r--`) every few KiB, so that a multipart parser hands the file over in
/// pieces of uneven sizes, as a network does.
pub fn lumpy_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let mut b: Vec<u8> = (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    let mut at = 0;
    while at + 4 <= len {
        let pat: &[u8] = if at % 2 == 0 { b"\r\n--" } else { b"\r--x" };
        b[at..at + 4].copy_from_slice(&pat[..4]);
        at += 1000 + (x as usize >> 3) % 7000 + at % 3;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
    }
    b
}
