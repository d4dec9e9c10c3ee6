//! MediaHub HMAC-signed request URLs (SPEC §2, issue 5): URLs signed by an independent
//! implementation (Python's `hmac`) are accepted; every tampering is refused; expiry,
//! scopes, disabled applications, single use (also under 50 concurrent first uses), the
//! sweep of used signatures, `filegate sign`, and the README's Python example.

mod common;

use std::process::Command;
use std::sync::{Arc, Barrier};

use actix_web::body::MessageBody;
use actix_web::dev::{Service, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::test::{self, TestRequest};
use common::*;
use filegate::auth::{tokens, Scopes};
use filegate::catalog;
use serde_json::Value;

/// `NOW_MS` in seconds: the fixed "now" of the in-process tests.
const NOW: i64 = NOW_MS / 1000;

/// HMAC-SHA256 by Python's standard library — an implementation independent of ours:
/// argv[1] is the client secret, argv[2] the bytes to sign.
const PY_HMAC: &str = "import base64, hashlib, hmac, sys\n\
print(hmac.new(base64.b64decode(sys.argv[1]), sys.argv[2].encode(), hashlib.sha256).hexdigest())";

fn py_hmac(secret: &str, msg: &str) -> String {
    let out = Command::new("python3")
        .args(["-c", PY_HMAC, secret, msg])
        .output()
        .expect("python3 is installed");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let sig = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert_eq!(sig.len(), 64, "{sig}");
    sig
}

/// `unsigned` with the signature Python computes appended, as the owners' scripts do.
fn py_signed(secret: &str, unsigned: &str) -> String {
    format!("{unsigned}&signature={}", py_hmac(secret, unsigned))
}

/// An answer read in full.
struct Answer {
    status: StatusCode,
    location: Option<String>,
    body: Vec<u8>,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
    fn reason(&self) -> String {
        reason(&self.json()).to_string()
    }
    fn code(&self) -> String {
        self.json()["error"]["error_code"]
            .as_str()
            .unwrap_or("")
            .to_string()
    }
    fn param(&self) -> String {
        self.json()["error"]["param"].as_str().unwrap_or("").to_string()
    }
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

async fn send<S, B>(app: &S, req: TestRequest) -> Answer
where
    S: Service<actix_http::Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    let res = test::call_service(app, req.to_request()).await;
    let status = res.status();
    let location = res
        .headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_string());
    let body = test::read_body(res).await.to_vec();
    Answer {
        status,
        location,
        body,
    }
}

async fn get<S, B>(app: &S, uri: &str) -> Answer
where
    S: Service<actix_http::Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    send(app, TestRequest::get().uri(uri)).await
}

/// Path and query of an absolute URL.
fn path_of(url: &str) -> String {
    let rest = url.split_once("://").map(|(_, r)| r).unwrap_or(url);
    rest[rest.find('/').unwrap()..].to_string()
}

/// Asserts a 403 "Invalid access token" with `reason`.
fn assert_refused(a: &Answer, reason: &str, what: &str) {
    assert_eq!(a.status, StatusCode::FORBIDDEN, "{what}: {}", a.text());
    assert_eq!(a.code(), "0x0000003", "{what}: {}", a.text());
    assert_eq!(a.reason(), reason, "{what}: {}", a.text());
}

const BOUNDARY: &str = "SignedUrlsBoundary7";

/// Uploads `data` in one multipart POST with a bearer token; returns the file id.
async fn upload<S, B>(app: &S, token: &str, query: &str, name: &str, data: &[u8]) -> String
where
    S: Service<actix_http::Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    let mut body = format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\n\
         Content-Type: application/octet-stream\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(data);
    body.extend_from_slice(format!("\r\n--{BOUNDARY}--\r\n").as_bytes());
    let req = TestRequest::post()
        .uri(&format!("/v1/files/uploads/{query}"))
        .insert_header(("Authorization", format!("Bearer {token}")))
        .insert_header((
            "Content-Type",
            format!("multipart/form-data; boundary={BOUNDARY}"),
        ))
        .set_payload(body);
    let a = send(app, req).await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.text());
    a.json()["upload"]["file"]["id"].as_str().unwrap().to_string()
}

/// A bearer token for the existing application `client_id`.
fn token_of(env: &TestEnv, client_id: &str, scopes: &str) -> String {
    let conn = env.state.catalog.conn().unwrap();
    tokens::issue(&conn, client_id, Scopes::parse(scopes).unwrap(), NOW_MS, 3600).unwrap()
}

fn used_signatures(env: &TestEnv) -> i64 {
    let conn = env.state.catalog.conn().unwrap();
    conn.query_row("SELECT COUNT(*) FROM used_signatures", [], |r| r.get(0))
        .unwrap()
}

const DATA: &[u8] = b"the bytes behind a signed download button\n";

#[actix_web::test]
async fn a_python_signed_download_url_redirects_to_a_link_that_serves_the_bytes() {
    let env = TestEnv::new();
    let app = env.service().await;
    let uploader = env.token("mediahub");
    let file_id = upload(&app, &uploader, "?object_key=films/movie.mp4", "movie.mp4", DATA).await;
    let (client_id, secret) = env.app("mediahub_download_files");

    // Exactly the issue's URL shape (without autograph_tag, see the scope test).
    let exp = NOW + 600;
    let url = py_signed(
        &secret,
        &format!(
            "/v1/files/downloads/?file_id={file_id}&redirect=true&multi_use=true\
             &client_id={client_id}&expiry_time={exp}"
        ),
    );
    let a = get(&app, &url).await;
    assert_eq!(a.status, StatusCode::FOUND, "{}", a.text());
    let link = path_of(a.location.as_deref().unwrap());
    assert!(link.starts_with("/d/") && link.ends_with("/movie.mp4"), "{link}");
    let served = get(&app, &link).await;
    assert_eq!(served.status, StatusCode::OK);
    assert_eq!(served.body, DATA);
    // multi_use=true: it keeps working.
    assert_eq!(get(&app, &url).await.status, StatusCode::FOUND);

    // Without the trailing slash, and without multi_use (it defaults to true).
    let url = py_signed(
        &secret,
        &format!("/v1/files/downloads?file_id={file_id}&client_id={client_id}&expiry_time={exp}"),
    );
    let a = get(&app, &url).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text());
    assert_eq!(a.json()["download"]["file"]["id"], file_id.as_str());

    // The raw bytes as sent are what is signed: a percent-encoded key signed as such
    // works, and the same request spelled with a plain `/` is another request.
    let encoded = py_signed(
        &secret,
        &format!("/v1/files/downloads/?object_key=films%2Fmovie.mp4&client_id={client_id}&expiry_time={exp}"),
    );
    let a = get(&app, &encoded).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text());
    assert_eq!(a.json()["download"]["file"]["id"], file_id.as_str());
    assert_refused(
        &get(&app, &encoded.replace("%2F", "/")).await,
        "invalid_signature",
        "decoded spelling",
    );
}

#[actix_web::test]
async fn every_files_get_accepts_a_signature_and_only_then_its_parameters() {
    let env = TestEnv::new();
    let app = env.service().await;
    let uploader = env.token("mediahub");
    let file_id = upload(&app, &uploader, "", "a.txt", DATA).await;
    let (client_id, secret) = env.app("mediahub_read mediahub_write");
    let exp = NOW + 600;
    let auth = format!("client_id={client_id}&expiry_time={exp}");

    let a = get(&app, &py_signed(&secret, &format!("/v1/files/{file_id}?{auth}"))).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text());
    assert_eq!(a.json()["file"]["id"], file_id.as_str());

    for list in ["/v1/files/", "/v1/files"] {
        let a = get(
            &app,
            &py_signed(&secret, &format!("{list}?limit=1&sort=name&{auth}")),
        )
        .await;
        assert_eq!(a.status, StatusCode::OK, "{list}: {}", a.text());
        assert_eq!(a.json()["files"][0]["id"], file_id.as_str());
        assert_eq!(a.json()["limit"], 1);
    }
    // Other parameters are still judged once the signature holds.
    let a = get(
        &app,
        &py_signed(&secret, &format!("/v1/files/?limit=9999&{auth}")),
    )
    .await;
    assert_eq!(
        (a.status, a.reason()),
        (StatusCode::BAD_REQUEST, "invalid_limit".into())
    );

    // GET /v1/files/uploads/ID: the application's own upload.
    let own = token_of(&env, &client_id, "mediahub_write");
    let opened = send(
        &app,
        TestRequest::post()
            .uri("/v1/files/uploads/?object_key=later.bin")
            .insert_header(("Authorization", format!("Bearer {own}"))),
    )
    .await;
    assert_eq!(opened.status, StatusCode::CREATED, "{}", opened.text());
    let upload_id = opened.json()["upload"]["id"].as_str().unwrap().to_string();
    let a = get(
        &app,
        &py_signed(&secret, &format!("/v1/files/uploads/{upload_id}?{auth}")),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text());
    assert_eq!(a.json()["upload"]["status"], "UPLOADING");

    // With a token, the signed-URL names mean nothing and are refused, never ignored.
    let tok = token_of(&env, &client_id, "mediahub_read");
    for extra in [format!("client_id={client_id}"), "multi_use=false".to_string()] {
        let a = send(
            &app,
            TestRequest::get()
                .uri(&format!("/v1/files/{file_id}?{extra}"))
                .insert_header(("Authorization", format!("Bearer {tok}"))),
        )
        .await;
        assert_eq!(
            (a.status, a.reason()),
            (StatusCode::BAD_REQUEST, "unknown_parameter".into()),
            "{extra}"
        );
    }
    // A signature is for GETs only.
    let a = send(
        &app,
        TestRequest::delete().uri(&py_signed(&secret, &format!("/v1/files/{file_id}?{auth}"))),
    )
    .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST, "{}", a.text());
    assert_eq!(a.reason(), "unknown_parameter");
}

/// What a request with one changed byte must get: refused by the signature check while
/// it is still a signed `/v1/files` GET; otherwise it is no longer a signed request at
/// all and is refused for that (no route, or signed-URL names without a signature).
fn expected_refusal(changed: &str) -> (StatusCode, &'static str) {
    let Some((path, query)) = changed.split_once('?') else {
        return (StatusCode::NOT_FOUND, "no_such_route");
    };
    if !path.starts_with("/v1/files/") {
        return (StatusCode::NOT_FOUND, "no_such_route");
    }
    let signed = query
        .split('&')
        .any(|p| p == "signature" || p.starts_with("signature="));
    if signed {
        (StatusCode::FORBIDDEN, "invalid_signature")
    } else {
        (StatusCode::BAD_REQUEST, "unknown_parameter")
    }
}

#[actix_web::test]
async fn every_changed_byte_of_path_query_or_signature_is_refused() {
    let env = TestEnv::new();
    let app = env.service().await;
    let uploader = env.token("mediahub");
    let file_id = upload(&app, &uploader, "", "a.bin", DATA).await;
    let (client_id, secret) = env.app("mediahub");
    let url = py_signed(
        &secret,
        &format!(
            "/v1/files/downloads/?file_id={file_id}&redirect=true&multi_use=true\
             &client_id={client_id}&expiry_time={}",
            NOW + 600
        ),
    );
    assert_eq!(get(&app, &url).await.status, StatusCode::FOUND);

    let mut tally = std::collections::BTreeMap::new();
    // Byte 0 is the `/` that starts every request target; HTTP has no request without it.
    for i in 1..url.len() {
        // Two replacements per byte, both valid in a URL and both lowercase hex digits,
        // so that in the signature they test the MAC, not the syntax.
        for with in [b'0', b'f'] {
            let mut b = url.clone().into_bytes();
            b[i] = if b[i] == with { b'7' } else { with };
            let changed = String::from_utf8(b).unwrap();
            let a = get(&app, &changed).await;
            assert!(
                a.status.is_client_error(),
                "byte {i} changed, answered {}: {changed}",
                a.status
            );
            let (status, reason) = expected_refusal(&changed);
            assert_eq!(
                (a.status, a.reason()),
                (status, reason.to_string()),
                "byte {i}: {changed}"
            );
            if status == StatusCode::FORBIDDEN {
                assert_eq!(a.code(), "0x0000003");
            }
            *tally.entry(reason).or_insert(0) += 1;
        }
    }
    // Only the changes that leave `/v1/files/` (its 9 bytes after the leading `/`, and
    // the `?`) or that unname `&signature=` (11 bytes) are refused for something else.
    assert_eq!(tally["no_such_route"], 2 * 10, "{tally:?}");
    assert_eq!(tally["unknown_parameter"], 2 * 11, "{tally:?}");
    assert_eq!(
        tally["invalid_signature"],
        2 * (url.len() - 1 - 10 - 11),
        "{tally:?}"
    );
    // The original still works: nothing above was mistaken for it.
    assert_eq!(get(&app, &url).await.status, StatusCode::FOUND);
}

#[actix_web::test]
async fn reordered_misplaced_uppercase_and_incomplete_signatures_are_refused() {
    let env = TestEnv::new();
    let app = env.service().await;
    let uploader = env.token("mediahub");
    let file_id = upload(&app, &uploader, "", "a.bin", DATA).await;
    let (client_id, secret) = env.app("mediahub");
    let exp = NOW + 600;
    let unsigned = format!(
        "/v1/files/downloads/?file_id={file_id}&redirect=true&client_id={client_id}&expiry_time={exp}"
    );
    let sig = py_hmac(&secret, &unsigned);
    assert_eq!(
        get(&app, &format!("{unsigned}&signature={sig}")).await.status,
        StatusCode::FOUND
    );

    let cases = [
        (
            "reordered",
            format!(
                "/v1/files/downloads/?redirect=true&file_id={file_id}&client_id={client_id}\
                 &expiry_time={exp}&signature={sig}"
            ),
        ),
        (
            "signature not last",
            format!(
                "/v1/files/downloads/?file_id={file_id}&client_id={client_id}&expiry_time={exp}\
                 &signature={sig}&redirect=true"
            ),
        ),
        (
            "signature first",
            format!(
                "/v1/files/downloads/?signature={sig}&file_id={file_id}&redirect=true\
                 &client_id={client_id}&expiry_time={exp}"
            ),
        ),
        (
            "uppercase hex",
            format!("{unsigned}&signature={}", sig.to_uppercase()),
        ),
        (
            "signature twice",
            format!("{unsigned}&signature={sig}&signature={sig}"),
        ),
        ("empty signature", format!("{unsigned}&signature=")),
        ("short signature", format!("{unsigned}&signature={}", &sig[..62])),
        ("other secret", py_signed("b3RoZXI=", &unsigned)),
        // Correctly signed by Python, but lacking what the scheme requires.
        (
            "no client_id",
            py_signed(
                &secret,
                &format!("/v1/files/downloads/?file_id={file_id}&expiry_time={exp}"),
            ),
        ),
        (
            "no expiry_time",
            py_signed(
                &secret,
                &format!("/v1/files/downloads/?file_id={file_id}&client_id={client_id}"),
            ),
        ),
        (
            "expiry_time not a number",
            py_signed(
                &secret,
                &format!("/v1/files/downloads/?file_id={file_id}&client_id={client_id}&expiry_time=soon"),
            ),
        ),
        (
            "client_id twice",
            py_signed(
                &secret,
                &format!(
                    "/v1/files/downloads/?file_id={file_id}&client_id={client_id}\
                     &client_id={client_id}&expiry_time={exp}"
                ),
            ),
        ),
        (
            "unknown client",
            py_signed(
                &secret,
                &format!(
                    "/v1/files/downloads/?file_id={file_id}&client_id=000000000000000000000000\
                     &expiry_time={exp}"
                ),
            ),
        ),
    ];
    for (what, url) in &cases {
        assert_refused(&get(&app, url).await, "invalid_signature", what);
    }
    // Refusals of the signature check are rendered like every other error.
    let a = send(
        &app,
        TestRequest::get()
            .uri(&cases[0].1)
            .insert_header(("Accept", "application/xml")),
    )
    .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    assert!(
        a.text().contains("<reason>invalid_signature</reason>"),
        "{}",
        a.text()
    );
}

#[actix_web::test]
async fn an_expired_signature_is_refused_as_signature_expired() {
    let env = TestEnv::new();
    let app = env.service().await;
    let uploader = env.token("mediahub");
    let file_id = upload(&app, &uploader, "", "a.bin", DATA).await;
    let (client_id, secret) = env.app("mediahub");
    let url = py_signed(
        &secret,
        &format!(
            "/v1/files/downloads/?file_id={file_id}&client_id={client_id}&expiry_time={}",
            NOW + 60
        ),
    );
    env.clock.advance_secs(59);
    assert_eq!(get(&app, &url).await.status, StatusCode::OK);
    env.clock.advance_secs(1);
    assert_refused(&get(&app, &url).await, "signature_expired", "at expiry_time");
    env.clock.advance_secs(86_400);
    assert_refused(&get(&app, &url).await, "signature_expired", "a day later");
}

#[actix_web::test]
async fn a_disabled_applications_signatures_stop_at_once() {
    let env = TestEnv::new();
    let app = env.service().await;
    let uploader = env.token("mediahub");
    let file_id = upload(&app, &uploader, "", "a.bin", DATA).await;
    let (client_id, secret) = env.app("mediahub");
    let url = py_signed(
        &secret,
        &format!(
            "/v1/files/downloads/?file_id={file_id}&redirect=true&client_id={client_id}&expiry_time={}",
            NOW + 600
        ),
    );
    let a = get(&app, &url).await;
    assert_eq!(a.status, StatusCode::FOUND);
    let link = path_of(a.location.as_deref().unwrap());

    let set = |on: bool| {
        let conn = env.state.catalog.conn().unwrap();
        assert!(catalog::apps::set_enabled(&conn, &client_id, on, NOW_MS).unwrap());
    };
    set(false);
    // No clock movement: the very next request is refused.
    assert_refused(&get(&app, &url).await, "app_disabled", "disabled");
    // A tampered URL of a disabled app says nothing about the app.
    let tampered = format!("{}0", &url[..url.len() - 1]);
    let tampered = if tampered == url {
        format!("{}1", &url[..url.len() - 1])
    } else {
        tampered
    };
    assert_refused(&get(&app, &tampered).await, "invalid_signature", "tampered");
    // The links it yielded die with it (SPEC §6).
    let served = get(&app, &link).await;
    assert_eq!(served.status, StatusCode::GONE, "{}", served.text());

    set(true);
    assert_eq!(get(&app, &url).await.status, StatusCode::FOUND);
}

#[actix_web::test]
async fn the_applications_scopes_apply_to_its_signatures() {
    let env = TestEnv::new();
    let app = env.service().await;
    let uploader = env.token("mediahub");
    let file_id = upload(&app, &uploader, "?autograph=true", "tagged.mp4", DATA).await;
    let exp = NOW + 600;
    let download = |client_id: &str, extra: &str| {
        format!(
            "/v1/files/downloads/?file_id={file_id}{extra}&redirect=true&multi_use=true\
             &client_id={client_id}&expiry_time={exp}"
        )
    };
    let insufficient = |a: &Answer, scope: &str, what: &str| {
        assert_eq!(a.status, StatusCode::FORBIDDEN, "{what}: {}", a.text());
        assert_eq!(
            (a.code(), a.reason(), a.param()),
            ("0x0000004".into(), "insufficient_scope".into(), scope.to_string()),
            "{what}"
        );
    };

    let (reader, reader_secret) = env.app("mediahub_read");
    insufficient(
        &get(&app, &py_signed(&reader_secret, &download(&reader, ""))).await,
        "mediahub_download_files",
        "read-only app",
    );
    let read = py_signed(
        &reader_secret,
        &format!("/v1/files/{file_id}?client_id={reader}&expiry_time={exp}"),
    );
    assert_eq!(get(&app, &read).await.status, StatusCode::OK);

    let (dl, dl_secret) = env.app("mediahub_download_files");
    assert_eq!(
        get(&app, &py_signed(&dl_secret, &download(&dl, ""))).await.status,
        StatusCode::FOUND
    );
    insufficient(
        &get(
            &app,
            &py_signed(&dl_secret, &download(&dl, "&autograph_tag=customer-42")),
        )
        .await,
        "autograph",
        "tag without autograph",
    );
    let read = py_signed(
        &dl_secret,
        &format!("/v1/files/{file_id}?client_id={dl}&expiry_time={exp}"),
    );
    insufficient(
        &get(&app, &read).await,
        "mediahub_read",
        "download-only app reads",
    );

    // The issue's full URL, autograph_tag included, for an app that has both scopes.
    let (both, both_secret) = env.app("mediahub_download_files autograph");
    let a = get(
        &app,
        &py_signed(&both_secret, &download(&both, "&autograph_tag=customer-42")),
    )
    .await;
    assert_eq!(a.status, StatusCode::FOUND, "{}", a.text());
}

#[actix_web::test]
async fn the_signed_expiry_bounds_the_link_within_links_max_ttl() {
    let env = TestEnv::with_config(|c| {
        c.links.max_ttl = 3600;
        c.links.default_ttl = 600;
    });
    let app = env.service().await;
    let uploader = env.token("mediahub");
    let file_id = upload(&app, &uploader, "", "a.bin", DATA).await;
    let (client_id, secret) = env.app("mediahub");
    let signed_for = |exp: i64| {
        py_signed(
            &secret,
            &format!("/v1/files/downloads/?file_id={file_id}&client_id={client_id}&expiry_time={exp}"),
        )
    };

    // The link lives exactly as long as the signed URL.
    let exp = NOW + 300;
    let a = get(&app, &signed_for(exp)).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text());
    assert_eq!(a.json()["download"]["expiry_time"], exp);
    let link = path_of(a.json()["download"]["url"].as_str().unwrap());
    env.clock.set_ms((exp - 1) * 1000 + 999);
    assert_eq!(get(&app, &link).await.status, StatusCode::OK);
    env.clock.set_ms(exp * 1000);
    let dead = get(&app, &link).await;
    assert_eq!(
        (dead.status, dead.reason()),
        (StatusCode::GONE, "link_expired".into())
    );

    // A signed URL valid for a day yields a link capped at links.max_ttl.
    env.clock.set_ms(NOW_MS);
    let a = get(&app, &signed_for(NOW + 86_400)).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text());
    assert_eq!(a.json()["download"]["expiry_time"], NOW + 3600);
    let link = path_of(a.json()["download"]["url"].as_str().unwrap());
    env.clock.set_ms((NOW + 3599) * 1000);
    assert_eq!(get(&app, &link).await.status, StatusCode::OK);
    env.clock.set_ms((NOW + 3600) * 1000);
    assert_eq!(get(&app, &link).await.status, StatusCode::GONE);
    // … while the signed URL itself still works and yields a fresh link.
    let a = get(&app, &signed_for(NOW + 86_400)).await;
    assert_eq!(a.json()["download"]["expiry_time"], NOW + 3600 + 3600);
}

#[actix_web::test]
async fn a_token_and_a_signature_on_one_request_are_refused() {
    let env = TestEnv::new();
    let app = env.service().await;
    let uploader = env.token("mediahub");
    let file_id = upload(&app, &uploader, "", "a.bin", DATA).await;
    let (client_id, secret) = env.app("mediahub");
    let tok = token_of(&env, &client_id, "mediahub");
    let unsigned = format!(
        "/v1/files/downloads/?file_id={file_id}&redirect=true&multi_use=false\
         &client_id={client_id}&expiry_time={}",
        NOW + 600
    );
    let url = py_signed(&secret, &unsigned);

    let a = send(
        &app,
        TestRequest::get()
            .uri(&url)
            .insert_header(("Authorization", format!("Bearer {tok}"))),
    )
    .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST, "{}", a.text());
    assert_eq!(
        (a.reason(), a.param()),
        ("conflicting_credentials".into(), "signature".into())
    );
    // In the query too, signed or not, valid token or not.
    for access in [
        py_signed(&secret, &format!("{unsigned}&access_token={tok}")),
        format!("{url}&access_token={tok}"),
        py_signed(&secret, &format!("{unsigned}&access_token=nonsense")),
    ] {
        let a = get(&app, &access).await;
        assert_eq!(
            (a.status, a.reason()),
            (StatusCode::BAD_REQUEST, "conflicting_credentials".into()),
            "{access}"
        );
    }
    // The refusals did not use up the single-use URL.
    assert_eq!(used_signatures(&env), 0);
    assert_eq!(get(&app, &url).await.status, StatusCode::FOUND);
}

#[actix_web::test]
async fn a_single_use_url_succeeds_once_and_failed_attempts_do_not_use_it_up() {
    let env = TestEnv::new();
    let app = env.service().await;
    let uploader = env.token("mediahub");
    let (client_id, secret) = env.app("mediahub");
    // Names a file that does not exist yet.
    let url = py_signed(
        &secret,
        &format!(
            "/v1/files/downloads/?object_key=report.pdf&redirect=true&multi_use=false\
             &client_id={client_id}&expiry_time={}",
            NOW + 600
        ),
    );
    for _ in 0..2 {
        let a = get(&app, &url).await;
        assert_eq!(a.status, StatusCode::NOT_FOUND, "{}", a.text());
    }
    assert_eq!(used_signatures(&env), 0, "a 404 does not use the URL up");

    upload(&app, &uploader, "?object_key=report.pdf", "report.pdf", DATA).await;
    let a = get(&app, &url).await;
    assert_eq!(a.status, StatusCode::FOUND, "{}", a.text());
    let served = get(&app, &path_of(a.location.as_deref().unwrap())).await;
    assert_eq!(served.body, DATA);
    assert_eq!(used_signatures(&env), 1);
    for _ in 0..3 {
        assert_refused(&get(&app, &url).await, "signature_used", "second use");
    }
    // multi_use=0 is the same as false; a multi-use URL of the same request is another URL.
    let zero = py_signed(
        &secret,
        &format!(
            "/v1/files/downloads/?object_key=report.pdf&multi_use=0&client_id={client_id}&expiry_time={}",
            NOW + 600
        ),
    );
    assert_eq!(get(&app, &zero).await.status, StatusCode::OK);
    assert_refused(&get(&app, &zero).await, "signature_used", "multi_use=0");
}

#[actix_web::test]
async fn concurrent_first_uses_in_process_yield_exactly_one_success() {
    let env = TestEnv::new();
    let app = env.service().await;
    let uploader = env.token("mediahub");
    let file_id = upload(&app, &uploader, "", "a.bin", DATA).await;
    let (client_id, secret) = env.app("mediahub");
    let url = py_signed(
        &secret,
        &format!(
            "/v1/files/downloads/?file_id={file_id}&redirect=true&multi_use=false\
             &client_id={client_id}&expiry_time={}",
            NOW + 600
        ),
    );
    let issued = || {
        env.state
            .metrics
            .links_issued
            .load(std::sync::atomic::Ordering::Relaxed)
    };
    let before = issued();
    let answers = futures_util::future::join_all((0..50).map(|_| get(&app, &url))).await;
    let statuses: Vec<_> = answers.iter().map(|a| (a.status.as_u16(), a.reason())).collect();
    assert_eq!(
        statuses.iter().filter(|(s, _)| *s == 302).count(),
        1,
        "{statuses:?}"
    );
    for a in answers.iter().filter(|a| a.status != StatusCode::FOUND) {
        assert_refused(a, "signature_used", "concurrent use");
    }
    // Several requests got past the early check and built an answer; only the one
    // that recorded the signature first kept it.
    eprintln!("links built for 50 concurrent first uses: {}", issued() - before);
    assert_eq!(used_signatures(&env), 1);
}

/// The losing side of a race, made deterministic: while the request runs, another use
/// of the same single-use URL is recorded (the handler plays that other request). The
/// answer already built must then be replaced by 403 `signature_used`.
#[actix_web::test]
async fn an_answer_built_while_another_use_won_becomes_signature_used() {
    use actix_web::middleware::from_fn;
    use actix_web::{web, App, HttpRequest, HttpResponse};

    async fn rival(req: HttpRequest, state: web::Data<filegate::state::AppState>) -> HttpResponse {
        let sig = req.query_string().rsplit_once("signature=").unwrap().1;
        let sig = filegate::ids::unhex(sig).unwrap();
        let conn = state.catalog.conn().unwrap();
        assert!(catalog::signatures::record_use(&conn, &sig, NOW + 600).unwrap());
        HttpResponse::Ok().body("built")
    }
    async fn plain() -> HttpResponse {
        HttpResponse::Ok().body("built")
    }

    let env = TestEnv::new();
    let app = test::init_service(
        App::new().app_data(web::Data::new(env.state.clone())).service(
            web::scope("/v1")
                .wrap(from_fn(filegate::auth::signed::check))
                .route("/files/rival", web::get().to(rival))
                .route("/files/plain", web::get().to(plain)),
        ),
    )
    .await;
    let (client_id, secret) = env.app("mediahub");
    let once = |path: &str| {
        py_signed(
            &secret,
            &format!(
                "{path}?multi_use=false&client_id={client_id}&expiry_time={}",
                NOW + 600
            ),
        )
    };
    assert_refused(
        &get(&app, &once("/v1/files/rival")).await,
        "signature_used",
        "lost the race",
    );
    // Without a rival the same middleware lets the answer through, once.
    let url = once("/v1/files/plain");
    let a = get(&app, &url).await;
    assert_eq!((a.status, a.text()), (StatusCode::OK, "built".to_string()));
    assert_refused(&get(&app, &url).await, "signature_used", "second use");
}

#[actix_web::test]
async fn the_sweep_forgets_used_signatures_once_they_expire() {
    let env = TestEnv::new();
    let app = env.service().await;
    let uploader = env.token("mediahub");
    let file_id = upload(&app, &uploader, "", "a.bin", DATA).await;
    let (client_id, secret) = env.app("mediahub");
    let once = |exp: i64| {
        py_signed(
            &secret,
            &format!(
                "/v1/files/downloads/?file_id={file_id}&multi_use=false&client_id={client_id}&expiry_time={exp}"
            ),
        )
    };
    let short = once(NOW + 60);
    let long = once(NOW + 3600);
    assert_eq!(get(&app, &short).await.status, StatusCode::OK);
    assert_eq!(get(&app, &long).await.status, StatusCode::OK);
    assert_eq!(used_signatures(&env), 2);

    // Before expiry the sweep keeps the record, and the URL stays used.
    env.clock.advance_secs(59);
    filegate::server::sweep_once(&env.state).await;
    assert_eq!(used_signatures(&env), 2);
    assert_refused(&get(&app, &short).await, "signature_used", "before expiry");

    // From its expiry_time on, the sweep removes it; the URL is refused as expired.
    env.clock.advance_secs(1);
    filegate::server::sweep_once(&env.state).await;
    assert_eq!(used_signatures(&env), 1, "only the expired record goes");
    assert_refused(&get(&app, &short).await, "signature_expired", "after the sweep");
    assert_refused(&get(&app, &long).await, "signature_used", "the other one");
    assert_eq!(used_signatures(&env), 1, "refusals record nothing");
}

// ---- spawned binary, real clients ----

/// A running server with its bootstrap application, and one uploaded file.
struct Live {
    server: Server,
    client_id: String,
    secret: String,
    file_id: String,
}

fn live() -> Live {
    let server = Server::start();
    let client_id = server.banner_value("client_id").expect("bootstrap client_id");
    let secret = server
        .banner_value("client_secret")
        .expect("bootstrap client_secret");
    let (s, body) = curl(&[
        "-u",
        &format!("{client_id}:{secret}"),
        "-d",
        "grant_type=client_credentials",
        &server.url("/v1/oauth2/token"),
    ]);
    assert_eq!(s, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    let token = v["access_token"].as_str().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("movie.mp4");
    std::fs::write(&path, DATA).unwrap();
    let (s, body) = curl(&[
        "-H",
        &format!("Authorization: Bearer {token}"),
        "-F",
        &format!("file=@{}", path.display()),
        &server.url("/v1/files/uploads/?object_key=movie.mp4"),
    ]);
    assert_eq!(s, 201, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    let file_id = v["upload"]["file"]["id"].as_str().unwrap().to_string();
    Live {
        server,
        client_id,
        secret,
        file_id,
    }
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// GETs `url` with curl without following redirects: (status, body, Location).
fn curl_get(url: &str) -> (u16, String, String) {
    let out = Command::new("curl")
        .args(["-s", "-S", "-o", "-", "-w", "\n%{http_code} %{redirect_url}", url])
        .output()
        .expect("curl is installed");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, tail) = text.rsplit_once('\n').unwrap_or(("", "0 "));
    let (code, location) = tail.split_once(' ').unwrap_or((tail, ""));
    (
        code.parse().unwrap_or(0),
        body.to_string(),
        location.trim().to_string(),
    )
}

#[test]
fn fifty_simultaneous_first_uses_of_a_single_use_url_yield_exactly_one_success() {
    let l = live();
    let url = l.server.url(&py_signed(
        &l.secret,
        &format!(
            "/v1/files/downloads/?file_id={}&redirect=true&multi_use=false&client_id={}&expiry_time={}",
            l.file_id,
            l.client_id,
            unix_now() + 600
        ),
    ));
    let n = 50;
    let barrier = Arc::new(Barrier::new(n));
    let clients: Vec<_> = (0..n)
        .map(|_| {
            let (barrier, url) = (barrier.clone(), url.clone());
            std::thread::spawn(move || {
                barrier.wait();
                curl_get(&url)
            })
        })
        .collect();
    let answers: Vec<_> = clients.into_iter().map(|c| c.join().unwrap()).collect();
    let wins: Vec<_> = answers.iter().filter(|(s, _, _)| *s == 302).collect();
    assert_eq!(wins.len(), 1, "{answers:?}");
    let used = answers
        .iter()
        .filter(|(s, body, _)| {
            *s == 403
                && serde_json::from_str::<Value>(body).is_ok_and(|v| {
                    v["error"]["reason"] == "signature_used" && v["error"]["error_code"] == "0x0000003"
                })
        })
        .count();
    assert_eq!(used, n - 1, "{answers:?}");
    let (_, metrics) = curl(&[&l.server.url("/metrics")]);
    let built = metrics
        .lines()
        .find(|l| l.starts_with("filegate_links_issued_total"))
        .unwrap_or("?");
    eprintln!("50 concurrent first uses over HTTP: {built} (one kept)");

    // The one winner's link serves the file; the URL stays used.
    let (s, body, _) = curl_get(&wins[0].2);
    assert_eq!((s, body.as_bytes()), (200, DATA));
    let (s, body, _) = curl_get(&url);
    assert_eq!(s, 403, "{body}");
    assert!(body.contains("signature_used"), "{body}");
}

/// Runs `filegate sign` with `args`; returns its one line of output.
fn filegate_sign(args: &[&str]) -> String {
    let out = Command::new(binary())
        .arg("sign")
        .args(args)
        .env_remove("FILEGATE_CLIENT_ID")
        .env_remove("FILEGATE_CLIENT_SECRET")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(text.lines().count(), 1, "{text}");
    text.trim().to_string()
}

#[test]
fn filegate_sign_signs_like_python_and_the_server_accepts_it() {
    let l = live();
    let path = format!("/v1/files/downloads/?file_id={}&redirect=true", l.file_id);
    let before = unix_now();
    let url = filegate_sign(&[
        "--client-id",
        &l.client_id,
        "--client-secret",
        &l.secret,
        "--expires-in",
        "600",
        "--single-use",
        "--base-url",
        &l.server.base,
        &path,
    ]);

    // The owners' layout: the request, multi_use, client_id, expiry_time, signature last.
    let rest = url.strip_prefix(&l.server.base).expect("prefixed by --base-url");
    let (unsigned, sig) = rest.rsplit_once("&signature=").unwrap();
    let exp: i64 = unsigned.rsplit_once("&expiry_time=").unwrap().1.parse().unwrap();
    assert!((before + 600..=unix_now() + 600).contains(&exp), "{exp}");
    assert_eq!(
        unsigned,
        format!(
            "{path}&multi_use=false&client_id={}&expiry_time={exp}",
            l.client_id
        )
    );
    assert_eq!(sig, py_hmac(&l.secret, unsigned), "Python signs the same");

    let (s, body, location) = curl_get(&url);
    assert_eq!(s, 302, "{body}");
    let (s, body, _) = curl_get(&location);
    assert_eq!((s, body.as_bytes()), (200, DATA));
    let (s, body, _) = curl_get(&url);
    assert_eq!(s, 403, "{body}");
    assert!(body.contains("signature_used"), "{body}");

    // Credentials from the environment, no base: a path and query, multi-use.
    let out = Command::new(binary())
        .args(["sign", &format!("/v1/files/{}", l.file_id)])
        .env("FILEGATE_CLIENT_ID", &l.client_id)
        .env("FILEGATE_CLIENT_SECRET", &l.secret)
        .output()
        .unwrap();
    assert!(out.status.success());
    let signed = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert!(
        signed.starts_with(&format!("/v1/files/{}?client_id=", l.file_id)),
        "{signed}"
    );
    let (unsigned, sig) = signed.rsplit_once("&signature=").unwrap();
    assert_eq!(sig, py_hmac(&l.secret, unsigned));
    let (s, body) = curl(&[&l.server.url(&signed)]);
    assert_eq!(s, 200, "{body}");
    assert!(body.contains(&l.file_id));

    // What it refuses to sign.
    for (bad, says) in [
        ("v1/files/", "starting with '/'"),
        ("/v1/files/?client_id=x", "leave client_id out"),
        ("/v1/files/?access_token=x", "leave access_token out"),
    ] {
        let out = Command::new(binary())
            .args([
                "sign",
                "--client-id",
                &l.client_id,
                "--client-secret",
                &l.secret,
                bad,
            ])
            .output()
            .unwrap();
        assert!(!out.status.success(), "{bad}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(says), "{bad}: {err}");
    }
}

/// The Python example of README.md, between its markers.
fn readme_python() -> String {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let start = "<!-- signed-url-python:start -->";
    let end = "<!-- signed-url-python:end -->";
    let block = &readme
        [readme.find(start).expect("start marker") + start.len()..readme.find(end).expect("end marker")];
    let code = block
        .trim()
        .strip_prefix("```python")
        .and_then(|b| b.strip_suffix("```"))
        .expect("one ```python block between the markers");
    code.trim_start_matches('\n').to_string()
}

#[test]
fn the_readme_python_example_makes_a_url_the_server_accepts() {
    let code = readme_python();
    let lines = code.lines().filter(|l| !l.trim().is_empty()).count();
    assert!(lines <= 12, "the README promises about ten lines, it has {lines}");
    assert!(
        code.lines()
            .filter(|l| l.starts_with("import ") || l.starts_with("from "))
            .all(|l| l
                .trim_start_matches("import ")
                .split(',')
                .all(|m| ["base64", "hashlib", "hmac", "os", "time"].contains(&m.trim()))),
        "standard library only:\n{code}"
    );

    let l = live();
    let out = Command::new("python3")
        .args(["-c", &code])
        .env("FILEGATE_URL", &l.server.base)
        .env("CLIENT_ID", &l.client_id)
        .env("CLIENT_SECRET", &l.secret)
        .env("FILE_ID", &l.file_id)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let url = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert!(url.starts_with(&l.server.base), "{url}");
    let (s, body, location) = curl_get(&url);
    assert_eq!(s, 302, "{body}");
    let (s, body, _) = curl_get(&location);
    assert_eq!((s, body.as_bytes()), (200, DATA));
}
