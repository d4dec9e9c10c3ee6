//! The admin console in process: login, session cookie, CSRF protection, and every
//! page and form (each refuses without a session or its CSRF token, and changes what
//! the API would change). Browser-driven tests live in tests/browser.

mod common;

use actix_web::http::StatusCode;
use actix_web::test::{self, TestRequest};
use common::*;

const PASSWORD: &str = "correct horse battery";

fn env_with_password() -> TestEnv {
    let env = TestEnv::new();
    filegate::admin::password::set(&env.state.catalog.conn().unwrap(), PASSWORD).unwrap();
    env
}

fn set_cookie<B>(res: &actix_web::dev::ServiceResponse<B>, name: &str) -> Option<String> {
    res.headers()
        .get_all("set-cookie")
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .map(str::to_string)
}

fn cookie_value(header: &str) -> String {
    header
        .split(';')
        .next()
        .unwrap()
        .split_once('=')
        .unwrap()
        .1
        .to_string()
}

fn hidden_csrf(html: &str) -> String {
    let i = html.find("name=\"csrf\" value=\"").expect("a csrf field") + 19;
    html[i..].split('"').next().unwrap().to_string()
}

async fn body_text<B: actix_web::body::MessageBody>(res: actix_web::dev::ServiceResponse<B>) -> String {
    String::from_utf8(test::read_body(res).await.to_vec()).unwrap()
}

fn form_post(uri: &str, body: String) -> TestRequest {
    TestRequest::post()
        .uri(uri)
        .insert_header(("Content-Type", "application/x-www-form-urlencoded"))
        .peer_addr("192.0.2.10:5000".parse().unwrap())
        .set_payload(body)
}

fn enc(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// Logs in; returns (session cookie value, the dashboard's CSRF token).
async fn log_in<S, B>(app: &S) -> (String, String)
where
    S: actix_web::dev::Service<
        actix_http::Request,
        Response = actix_web::dev::ServiceResponse<B>,
        Error = actix_web::Error,
    >,
    B: actix_web::body::MessageBody,
{
    let res = test::call_service(app, TestRequest::get().uri("/admin/login").to_request()).await;
    let login_cookie = cookie_value(&set_cookie(&res, "filegate_login").unwrap());
    let csrf = hidden_csrf(&body_text(res).await);
    let req = form_post(
        "/admin/login",
        format!("csrf={}&username=admin&password={}", enc(&csrf), enc(PASSWORD)),
    )
    .cookie(actix_web::cookie::Cookie::new("filegate_login", login_cookie));
    let res = test::call_service(app, req.to_request()).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let session = cookie_value(&set_cookie(&res, "filegate_session").unwrap());
    let res = test::call_service(
        app,
        TestRequest::get()
            .uri("/admin")
            .cookie(actix_web::cookie::Cookie::new(
                "filegate_session",
                session.clone(),
            ))
            .to_request(),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    let csrf = hidden_csrf(&body_text(res).await);
    (session, csrf)
}

fn with_session(req: TestRequest, session: &str) -> TestRequest {
    req.cookie(actix_web::cookie::Cookie::new(
        "filegate_session",
        session.to_string(),
    ))
}

#[actix_web::test]
async fn pages_redirect_to_login_without_a_session() {
    let env = env_with_password();
    let app = env.service().await;
    for uri in ["/admin", "/admin/apps", "/admin/downloads"] {
        let res = test::call_service(&app, TestRequest::get().uri(uri).to_request()).await;
        assert_eq!(res.status(), StatusCode::SEE_OTHER, "{uri}");
        assert_eq!(res.headers().get("location").unwrap(), "/admin/login");
    }
    let res = test::call_service(
        &app,
        with_session(TestRequest::get().uri("/admin"), "forged-session-value").to_request(),
    )
    .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
}

#[actix_web::test]
async fn login_sets_an_httponly_samesite_strict_session_cookie() {
    let env = env_with_password();
    let app = env.service().await;
    let res = test::call_service(&app, TestRequest::get().uri("/admin/login").to_request()).await;
    assert_eq!(res.headers().get("x-frame-options").unwrap(), "DENY");
    assert!(res
        .headers()
        .get("content-security-policy")
        .unwrap()
        .to_str()
        .unwrap()
        .contains("frame-ancestors 'none'"));
    let login_cookie = cookie_value(&set_cookie(&res, "filegate_login").unwrap());
    let csrf = hidden_csrf(&body_text(res).await);
    let req = form_post(
        "/admin/login",
        format!("csrf={}&username=admin&password={}", enc(&csrf), enc(PASSWORD)),
    )
    .cookie(actix_web::cookie::Cookie::new("filegate_login", login_cookie));
    let res = test::call_service(&app, req.to_request()).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let c = set_cookie(&res, "filegate_session").unwrap();
    assert!(
        c.contains("HttpOnly") && c.contains("SameSite=Strict") && c.contains("Path=/"),
        "{c}"
    );
    assert!(!c.contains("Secure"), "plain http on loopback: {c}");
}

#[actix_web::test]
async fn cookie_is_secure_behind_https() {
    let env = TestEnv::with_config(|c| c.server.public_url = "https://files.example.com".into());
    filegate::admin::password::set(&env.state.catalog.conn().unwrap(), PASSWORD).unwrap();
    let app = env.service().await;
    let res = test::call_service(&app, TestRequest::get().uri("/admin/login").to_request()).await;
    assert!(set_cookie(&res, "filegate_login").unwrap().contains("Secure"));
}

#[actix_web::test]
async fn login_needs_its_csrf_token_and_the_right_password_and_is_throttled() {
    let env = env_with_password();
    let app = env.service().await;
    let res = test::call_service(&app, TestRequest::get().uri("/admin/login").to_request()).await;
    let login_cookie = cookie_value(&set_cookie(&res, "filegate_login").unwrap());
    let csrf = hidden_csrf(&body_text(res).await);
    let attempt = |csrf: String, pw: &str| {
        form_post(
            "/admin/login",
            format!("csrf={}&username=admin&password={}", enc(&csrf), enc(pw)),
        )
        .cookie(actix_web::cookie::Cookie::new(
            "filegate_login",
            login_cookie.clone(),
        ))
        .to_request()
    };
    let res = test::call_service(&app, attempt("not-the-token".into(), PASSWORD)).await;
    assert_eq!(
        res.status(),
        StatusCode::FORBIDDEN,
        "CSRF token must match the cookie"
    );
    assert!(set_cookie(&res, "filegate_session").is_none());

    for _ in 0..5 {
        let res = test::call_service(&app, attempt(csrf.clone(), "wrong password!")).await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
        assert!(body_text(res).await.contains("Wrong user or password"));
    }
    let res = test::call_service(&app, attempt(csrf.clone(), PASSWORD)).await;
    assert_eq!(
        res.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "even the right password waits out the window"
    );
    env.clock.advance_secs(5 * 60);
    let res = test::call_service(&app, attempt(csrf, PASSWORD)).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
}

#[actix_web::test]
async fn applications_page_creates_shows_secret_once_and_disables() {
    let env = env_with_password();
    let app = env.service().await;
    let (session, csrf) = log_in(&app).await;

    let req = with_session(
        form_post(
            "/admin/apps",
            format!(
                "csrf={}&name=encoder&scope=mediahub_read&scope=autograph",
                enc(&csrf)
            ),
        ),
        &session,
    );
    let res = test::call_service(&app, req.to_request()).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let html = body_text(res).await;
    let secret_at = html.find("id=\"created-secret\">").expect("secret shown") + 20;
    let secret = html[secret_at..].split('<').next().unwrap().to_string();
    let id_at = html.find("id=\"created-id\">").unwrap() + 16;
    let id = html[id_at..].split('<').next().unwrap().to_string();
    assert_eq!(secret.len(), 44);

    // The secret works for a token, and is never shown again.
    let conn = env.state.catalog.conn().unwrap();
    let ok = filegate::auth::apps::verify_client(&conn, &env.state.secrets, &id, &secret).unwrap();
    assert!(ok.is_ok());
    let res = test::call_service(
        &app,
        with_session(TestRequest::get().uri("/admin/apps"), &session).to_request(),
    )
    .await;
    let html = body_text(res).await;
    assert!(html.contains(&id) && html.contains("mediahub_read autograph"));
    assert!(!html.contains(&secret));

    // A form without the CSRF token changes nothing.
    let req = with_session(
        form_post(&format!("/admin/apps/{id}/disable"), String::new()),
        &session,
    );
    let res = test::call_service(&app, req.to_request()).await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert!(filegate::catalog::apps::get(&conn, &id).unwrap().unwrap().enabled);

    let req = with_session(
        form_post(
            &format!("/admin/apps/{id}/disable"),
            format!("csrf={}", enc(&csrf)),
        ),
        &session,
    );
    let res = test::call_service(&app, req.to_request()).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert!(!filegate::catalog::apps::get(&conn, &id).unwrap().unwrap().enabled);
}

#[actix_web::test]
async fn a_foreign_origin_is_refused_even_with_the_token() {
    let env = env_with_password();
    let app = env.service().await;
    let (session, csrf) = log_in(&app).await;
    let req = with_session(
        form_post(
            "/admin/apps",
            format!("csrf={}&name=x&scope=mediahub", enc(&csrf)),
        ),
        &session,
    )
    .insert_header(("Origin", "https://evil.example"));
    let res = test::call_service(&app, req.to_request()).await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
}

#[actix_web::test]
async fn logout_needs_csrf_and_ends_the_session() {
    let env = env_with_password();
    let app = env.service().await;
    let (session, csrf) = log_in(&app).await;
    let res = test::call_service(
        &app,
        with_session(form_post("/admin/logout", String::new()), &session).to_request(),
    )
    .await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let req = with_session(
        form_post("/admin/logout", format!("csrf={}", enc(&csrf))),
        &session,
    );
    let res = test::call_service(&app, req.to_request()).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let res = test::call_service(
        &app,
        with_session(TestRequest::get().uri("/admin"), &session).to_request(),
    )
    .await;
    assert_eq!(
        res.status(),
        StatusCode::SEE_OTHER,
        "the old cookie no longer works"
    );
}

#[actix_web::test]
async fn login_page_says_how_to_set_a_password_when_none_is_set() {
    let env = TestEnv::new();
    let app = env.service().await;
    let res = test::call_service(&app, TestRequest::get().uri("/admin/login").to_request()).await;
    assert!(body_text(res).await.contains("filegate admin set-password"));
}

#[actix_web::test]
async fn stylesheet_is_embedded() {
    let env = TestEnv::new();
    let app = env.service().await;
    let res = test::call_service(&app, TestRequest::get().uri("/static/console.css").to_request()).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res
        .headers()
        .get("content-type")
        .unwrap()
        .to_str()
        .unwrap()
        .starts_with("text/css"));
}

#[actix_web::test]
async fn the_downloads_page_shows_deliveries_refusals_and_the_lists() {
    let env = env_with_password();
    let token = env.token("mediahub");
    let f = env.upload(&token, "", "a.bin", b"hello").await;
    {
        let mut c = env.state.catalog.conn().unwrap();
        filegate::fraud::lists::import(
            &mut c,
            filegate::fraud::lists::List::Blocklist,
            "manual",
            "203.0.113.0/24\n",
            NOW_MS,
        )
        .unwrap();
        env.state.fraud.lists.reload_blocking().unwrap();
    }
    let app = env.service().await;
    let req = TestRequest::get()
        .uri(&format!(
            "/v1/files/downloads/?file_id={}&anti_fraud=true",
            f["id"].as_str().unwrap()
        ))
        .insert_header(("Authorization", format!("Bearer {token}")));
    let v = json_body(test::call_service(&app, req.to_request()).await).await;
    let link = v["download"]["url"]
        .as_str()
        .unwrap()
        .strip_prefix("http://localhost:8080")
        .unwrap()
        .to_string();
    for peer in ["192.0.2.1:1", "203.0.113.5:1"] {
        let req = TestRequest::get().uri(&link).peer_addr(peer.parse().unwrap());
        let _ = test::read_body(test::call_service(&app, req.to_request()).await).await;
    }
    env.state.audit.flush();

    let (session, _) = log_in(&app).await;
    let res = test::call_service(
        &app,
        with_session(TestRequest::get().uri("/admin/downloads"), &session).to_request(),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    let page = body_text(res).await;
    assert!(page.contains("id=\"downloads\""), "{page}");
    assert!(
        page.contains("203.0.113.5") && page.contains("403 blocked_ip"),
        "{page}"
    );
    assert!(page.contains("192.0.2.1"));
    let res = test::call_service(
        &app,
        with_session(TestRequest::get().uri("/admin/fraud"), &session).to_request(),
    )
    .await;
    let lists = body_text(res).await;
    assert!(
        lists.contains("data-source=\"manual\"") && lists.contains("203.0.113.0/24"),
        "{lists}"
    );
    let res = test::call_service(
        &app,
        with_session(TestRequest::get().uri("/admin/downloads?refused=1"), &session).to_request(),
    )
    .await;
    let page = body_text(res).await;
    assert!(
        page.contains("blocked_ip") && !page.contains("192.0.2.1"),
        "{page}"
    );
}

/// A console GET with the session: (status, body, Location).
async fn view<S, B>(app: &S, session: &str, uri: &str) -> (StatusCode, String, String)
where
    S: actix_web::dev::Service<
        actix_http::Request,
        Response = actix_web::dev::ServiceResponse<B>,
        Error = actix_web::Error,
    >,
    B: actix_web::body::MessageBody,
{
    let res = test::call_service(
        app,
        with_session(TestRequest::get().uri(uri), session).to_request(),
    )
    .await;
    let status = res.status();
    let location = res
        .headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    (status, body_text(res).await, location)
}

/// A console form POST with the session (`body` already url-encoded): (status, body, Location).
async fn submit<S, B>(app: &S, session: &str, uri: &str, body: &str) -> (StatusCode, String, String)
where
    S: actix_web::dev::Service<
        actix_http::Request,
        Response = actix_web::dev::ServiceResponse<B>,
        Error = actix_web::Error,
    >,
    B: actix_web::body::MessageBody,
{
    let res = test::call_service(
        app,
        with_session(form_post(uri, body.to_string()), session).to_request(),
    )
    .await;
    let status = res.status();
    let location = res
        .headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    (status, body_text(res).await, location)
}

/// A multipart POST (upload and list import forms) with the session.
async fn submit_multipart<S, B>(
    app: &S,
    session: &str,
    uri: &str,
    fields: &[(&str, &str)],
    name: &str,
    data: &[u8],
) -> (StatusCode, String, String)
where
    S: actix_web::dev::Service<
        actix_http::Request,
        Response = actix_web::dev::ServiceResponse<B>,
        Error = actix_web::Error,
    >,
    B: actix_web::body::MessageBody,
{
    let (ct, body) = multipart_form(fields, name, data);
    let req = with_session(
        TestRequest::post()
            .uri(uri)
            .insert_header(("Content-Type", ct))
            .peer_addr("192.0.2.10:5000".parse().unwrap())
            .set_payload(body),
        session,
    );
    let res = test::call_service(app, req.to_request()).await;
    let status = res.status();
    let location = res
        .headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    (status, body_text(res).await, location)
}

/// The `value` of the input with this id.
fn input_value(html: &str, id: &str) -> String {
    let at = html
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no #{id} in {html}"));
    let rest = &html[at..];
    let v = rest.find("value=\"").unwrap() + 7;
    rest[v..].split('"').next().unwrap().replace("&amp;", "&")
}

/// Every state-changing route of the console, with a form body that would change something.
const FORMS: &[(&str, &str)] = &[
    ("/admin/apps", "name=x&scope=mediahub"),
    ("/admin/files/FILE/delete", "confirm=yes"),
    ("/admin/files/FILE/revoke", ""),
    ("/admin/links", "file_id=FILE"),
    ("/admin/pipelines", "name=p"),
    ("/admin/jobs", "pipeline_id=PIPE&outputs=a"),
    ("/admin/keys/rotate", ""),
    ("/admin/keys/1/retire", "confirm=yes"),
    ("/admin/fraud/add", "list=blocklist&source=s&entries=192.0.2.1"),
    (
        "/admin/fraud/remove-entry",
        "list=blocklist&source=keep&entry=198.51.100.1",
    ),
    ("/admin/fraud/remove-source", "list=blocklist&source=keep"),
    ("/admin/logout", ""),
];

#[actix_web::test]
async fn every_console_form_refuses_without_a_session_or_its_csrf_token_and_changes_nothing() {
    let env = env_with_password();
    let token = env.token("mediahub");
    let f = env.upload(&token, "", "kept.txt", b"kept").await;
    let file = f["id"].as_str().unwrap().to_string();
    let pipe = {
        let mut c = env.state.catalog.conn().unwrap();
        filegate::fraud::lists::import(
            &mut c,
            filegate::fraud::lists::List::Blocklist,
            "keep",
            "198.51.100.1\n",
            NOW_MS,
        )
        .unwrap();
        let p = filegate::pipelines::create(
            &mut c,
            &filegate::pipelines::NewPipeline {
                name: "kept".into(),
                ..Default::default()
            },
            NOW_MS,
        )
        .unwrap();
        p.id
    };
    let snapshot = |env: &TestEnv| {
        let c = env.state.catalog.conn().unwrap();
        let n = |sql: &str| c.query_row(sql, [], |r| r.get::<_, i64>(0)).unwrap();
        (
            n("SELECT count(*) FROM apps"),
            n("SELECT count(*) FROM files"),
            n("SELECT count(*) FROM signing_keys WHERE state = 'active'"),
            n("SELECT count(*) FROM pipelines"),
            n("SELECT count(*) FROM jobs"),
            n("SELECT count(*) FROM fraud_ranges"),
            n("SELECT coalesce(max(revoked_before), 0) FROM files"),
            n("SELECT count(*) FROM backtraces"),
        )
    };
    let before = snapshot(&env);
    let app = env.service().await;
    let (session, csrf) = log_in(&app).await;
    for (uri, body) in FORMS {
        let uri = uri.replace("FILE", &file);
        let body = body.replace("FILE", &file).replace("PIPE", &pipe);
        // No session: to the login page.
        let res = test::call_service(
            &app,
            form_post(&uri, format!("{body}&csrf={}", enc(&csrf))).to_request(),
        )
        .await;
        assert_eq!(res.status(), StatusCode::SEE_OTHER, "{uri} without a session");
        assert_eq!(res.headers().get("location").unwrap(), "/admin/login");
        // A session but no token, or a wrong one: refused.
        for extra in ["", "&csrf=", "&csrf=forged-token-value"] {
            let (status, page, _) = submit(&app, &session, &uri, &format!("{body}{extra}")).await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{uri} with {extra:?}");
            assert!(page.contains("Refused"), "{uri}: {page}");
        }
    }
    // The multipart forms check the token before reading the file.
    for uri in ["/admin/files/upload", "/admin/fraud/import", "/admin/backtraces"] {
        let (status, _, _) = submit_multipart(
            &app,
            &session,
            uri,
            &[("csrf", "forged"), ("list", "blocklist"), ("source", "x")],
            "x.txt",
            b"192.0.2.0/24\n",
        )
        .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{uri}");
    }
    assert_eq!(snapshot(&env), before, "nothing changed");
    let (status, _, _) = view(&app, &session, "/admin").await;
    assert_eq!(status, StatusCode::OK, "still logged in");
}

#[actix_web::test]
async fn every_console_page_needs_a_session() {
    let env = env_with_password();
    let app = env.service().await;
    for uri in [
        "/admin/files",
        "/admin/files/6b08f0fb1333542cfa08a2b5",
        "/admin/links",
        "/admin/pipelines",
        "/admin/jobs",
        "/admin/keys",
        "/admin/fraud",
        "/admin/audit",
        "/admin/backtraces",
        "/admin/backtraces/6b08f0fb1333542cfa08a2b5",
    ] {
        let res = test::call_service(&app, TestRequest::get().uri(uri).to_request()).await;
        assert_eq!(res.status(), StatusCode::SEE_OTHER, "{uri}");
        assert_eq!(res.headers().get("location").unwrap(), "/admin/login");
    }
}

#[actix_web::test]
async fn the_upload_form_stores_like_the_api_and_refuses_what_it_refuses() {
    let env = env_with_password();
    let app = env.service().await;
    let (session, csrf) = log_in(&app).await;
    let data = b"uploaded from the console\n".repeat(1000);
    let (status, _, location) = submit_multipart(
        &app,
        &session,
        "/admin/files/upload",
        &[
            ("csrf", &csrf),
            ("object_key", "docs/a.txt"),
            ("pipeline_id", ""),
            ("expires_in_days", "2"),
            ("autograph", "true"),
        ],
        "a.txt",
        &data,
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let id = location
        .strip_prefix("/admin/files/")
        .and_then(|l| l.strip_suffix("?done=uploaded"))
        .unwrap()
        .to_string();
    let row = filegate::catalog::files::get(&env.state.catalog.conn().unwrap(), &id)
        .unwrap()
        .unwrap();
    assert_eq!(row.sha256, sha256_hex(&data));
    assert_eq!((row.object_key.as_str(), row.autograph), ("docs/a.txt", true));
    assert_eq!(row.expires_at, NOW_MS + 2 * 86_400_000);
    assert_eq!(row.app_id, None, "the console is no application");
    assert!(env.state.store.exists(&row.blob_id));
    let (_, page, _) = view(&app, &session, &location).await;
    assert!(
        page.contains("File stored.") && page.contains(&row.sha256),
        "{page}"
    );

    // The API's refusals, shown readably; nothing is kept.
    for (fields, reason, status) in [
        (
            vec![("object_key", "docs/a.txt")],
            "object_key_exists",
            StatusCode::CONFLICT,
        ),
        (
            vec![("object_key", "../etc/passwd")],
            "invalid_object_key",
            StatusCode::BAD_REQUEST,
        ),
        (
            vec![("pipeline_id", "6b08f0fb1333542cfa08a2b5")],
            "pipeline_not_found",
            StatusCode::NOT_FOUND,
        ),
        (
            vec![("expires_in_days", "0")],
            "invalid_expires_at",
            StatusCode::BAD_REQUEST,
        ),
        (
            vec![("colour", "red")],
            "unknown_parameter",
            StatusCode::BAD_REQUEST,
        ),
    ] {
        let mut all = vec![("csrf", csrf.as_str())];
        all.extend(fields);
        let (got, page, _) =
            submit_multipart(&app, &session, "/admin/files/upload", &all, "b.txt", b"b").await;
        assert_eq!(got, status, "{reason}: {page}");
        assert!(page.contains(reason), "{reason}: {page}");
    }
    let c = env.state.catalog.conn().unwrap();
    let n: i64 = c
        .query_row("SELECT count(*) FROM files", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 1);
    let temps = std::fs::read_dir(env.data_dir().join("tmp"))
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(temps, 0, "no temp file left behind");
}

#[actix_web::test]
async fn files_are_found_by_name_or_key_filtered_and_paged() {
    let env = env_with_password();
    let token = env.token("mediahub");
    let a = env
        .upload(&token, "?object_key=films/Holiday_2025.mp4", "holiday.mp4", b"a")
        .await;
    let b = env
        .upload(&token, "?object_key=docs/report", "Report 100%.pdf", b"b")
        .await;
    for i in 0..55 {
        env.upload(
            &token,
            &format!("?object_key=bulk/{i}"),
            "bulk.bin",
            format!("{i}").as_bytes(),
        )
        .await;
    }
    let app = env.service().await;
    let (session, _) = log_in(&app).await;
    let ids = |page: &str| -> Vec<String> {
        page.split("<tr data-id=\"")
            .skip(1)
            .map(|s| s.split('"').next().unwrap().to_string())
            .collect()
    };
    let (_, page, _) = view(&app, &session, "/admin/files?q=holiday_").await;
    assert_eq!(ids(&page), vec![a["id"].as_str().unwrap().to_string()]);
    // `%` and `_` are literal, not wildcards.
    let (_, page, _) = view(&app, &session, "/admin/files?q=100%25").await;
    assert_eq!(ids(&page), vec![b["id"].as_str().unwrap().to_string()]);
    let (_, page, _) = view(&app, &session, "/admin/files?q=ho_iday").await;
    assert!(ids(&page).is_empty());
    let (_, page, _) = view(&app, &session, "/admin/files?q=bulk").await;
    assert_eq!(ids(&page).len(), 50);
    assert!(
        page.contains("1–50 of 55") && page.contains("/admin/files?q=bulk&amp;start=50"),
        "{page}"
    );
    let (_, page, _) = view(&app, &session, "/admin/files?q=bulk&start=50").await;
    assert_eq!(ids(&page).len(), 5);
    let (_, page, _) = view(&app, &session, "/admin/files?type=archive").await;
    assert!(ids(&page).is_empty());
}

#[actix_web::test]
async fn the_link_maker_issues_what_the_api_issues_and_refuses_what_it_refuses() {
    let env = env_with_password();
    let token = env.token("mediahub");
    let f = env
        .upload(&token, "?object_key=k/movie.mp4", "movie.mp4", b"0123456789")
        .await;
    let id = f["id"].as_str().unwrap();
    let app = env.service().await;
    let (session, csrf) = log_in(&app).await;
    let (status, page, _) = view(&app, &session, &format!("/admin/links?file_id={id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(input_value(&page, "link-file"), id);

    let body = format!(
        "csrf={}&file_id={id}&valid_for=600&expiry_time=&streaming=true&ip=192.0.2.7&max_parallel_downloads=2",
        enc(&csrf)
    );
    let (status, page, _) = submit(&app, &session, "/admin/links", &body).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let url = input_value(&page, "link-0");
    let path = url.strip_prefix("http://localhost:8080").unwrap().to_string();
    assert!(path.ends_with("/movie.mp4"));
    assert!(
        page.contains(&format!("data-expiry=\"{}\"", NOW_MS / 1000 + 600)),
        "{page}"
    );
    // Every parameter is in the link: inline, bound to its address.
    let res = test::call_service(
        &app,
        TestRequest::get()
            .uri(&path)
            .peer_addr("192.0.2.7:1".parse().unwrap())
            .to_request(),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res
        .headers()
        .get("content-disposition")
        .unwrap()
        .to_str()
        .unwrap()
        .starts_with("inline"));
    assert_eq!(test::read_body(res).await.as_ref(), b"0123456789");
    let res = test::call_service(
        &app,
        TestRequest::get()
            .uri(&path)
            .peer_addr("192.0.2.8:1".parse().unwrap())
            .to_request(),
    )
    .await;
    assert_eq!(reason(&json_body(res).await), "ip_not_allowed");

    // By key; and the API's refusals, with its reasons and statuses.
    let (status, page, _) = submit(
        &app,
        &session,
        "/admin/links",
        &format!("csrf={}&object_key=k%2Fmovie.mp4&valid_for=3600", enc(&csrf)),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    for (fields, why, status) in [
        (format!("file_id={id}&expiry_time=5"), "expiry_in_past", 400),
        (
            format!("file_id={id}&expiry_time=99999999999"),
            "expiry_too_far",
            400,
        ),
        (format!("file_id={id}&ip=999.1.1.1"), "invalid_ip", 400),
        (
            format!("file_id={id}&autograph_tag=t"),
            "autograph_not_enabled",
            400,
        ),
        (format!("file_id={id}&item=a"), "not_an_archive", 400),
        (
            format!("file_id={id}&max_parallel_downloads=0"),
            "invalid_max_parallel_downloads",
            400,
        ),
        (
            format!("file_id={id}&object_key=k"),
            "conflicting_file_selector",
            400,
        ),
        ("valid_for=60".to_string(), "missing_file_selector", 400),
        (
            "file_id=6b08f0fb1333542cfa08a2b5".to_string(),
            "file_not_found",
            404,
        ),
        (format!("file_id={id}&streaming=maybe"), "invalid_boolean", 400),
    ] {
        let (got, page, _) = submit(
            &app,
            &session,
            "/admin/links",
            &format!("csrf={}&{fields}", enc(&csrf)),
        )
        .await;
        assert_eq!(got.as_u16(), status, "{why}: {page}");
        assert!(
            page.contains(why) && !page.contains("id=\"issued\""),
            "{why}: {page}"
        );
    }
}

#[actix_web::test]
async fn revoke_and_delete_from_the_file_page() {
    let env = env_with_password();
    let token = env.token("mediahub");
    let f = env.upload(&token, "", "gone.txt", b"bye").await;
    let id = f["id"].as_str().unwrap().to_string();
    let app = env.service().await;
    let (session, csrf) = log_in(&app).await;
    let (_, page, _) = submit(
        &app,
        &session,
        "/admin/links",
        &format!("csrf={}&file_id={id}", enc(&csrf)),
    )
    .await;
    let link = input_value(&page, "link-0")
        .strip_prefix("http://localhost:8080")
        .unwrap()
        .to_string();
    env.clock.advance_secs(1);
    let (status, _, location) = submit(
        &app,
        &session,
        &format!("/admin/files/{id}/revoke"),
        &format!("csrf={}", enc(&csrf)),
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (_, page, _) = view(&app, &session, &location).await;
    assert!(page.contains("Links revoked"), "{page}");
    let res = test::call_service(&app, TestRequest::get().uri(&link).to_request()).await;
    assert_eq!(reason(&json_body(res).await), "link_revoked");

    let (status, _, _) = submit(
        &app,
        &session,
        &format!("/admin/files/{id}/delete"),
        &format!("csrf={}", enc(&csrf)),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "needs the confirmation");
    let (status, _, location) = submit(
        &app,
        &session,
        &format!("/admin/files/{id}/delete"),
        &format!("csrf={}&confirm=yes", enc(&csrf)),
    )
    .await;
    assert_eq!(
        (status, location.as_str()),
        (StatusCode::SEE_OTHER, "/admin/files?done=deleted")
    );
    assert!(
        filegate::catalog::files::get(&env.state.catalog.conn().unwrap(), &id)
            .unwrap()
            .is_none()
    );
    let (status, _, _) = view(&app, &session, &format!("/admin/files/{id}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[actix_web::test]
async fn keys_rotate_and_retire_take_effect_at_once() {
    let env = env_with_password();
    let token = env.token("mediahub");
    let f = env.upload(&token, "", "k.txt", b"key").await;
    let id = f["id"].as_str().unwrap().to_string();
    let app = env.service().await;
    let (session, csrf) = log_in(&app).await;
    let link_now = |page: &str| {
        input_value(page, "link-0")
            .strip_prefix("http://localhost:8080")
            .unwrap()
            .to_string()
    };
    let (_, page, _) = submit(
        &app,
        &session,
        "/admin/links",
        &format!("csrf={}&file_id={id}", enc(&csrf)),
    )
    .await;
    let by_key1 = link_now(&page);

    let (status, _, location) = submit(
        &app,
        &session,
        "/admin/keys/rotate",
        &format!("csrf={}", enc(&csrf)),
    )
    .await;
    assert_eq!(
        (status, location.as_str()),
        (StatusCode::SEE_OTHER, "/admin/keys?done=rotated")
    );
    let (_, page, _) = view(&app, &session, "/admin/keys").await;
    assert!(
        page.contains("data-id=\"2\" data-state=\"current\"")
            && page.contains("data-id=\"1\" data-state=\"active\""),
        "{page}"
    );
    let (_, page, _) = submit(
        &app,
        &session,
        "/admin/links",
        &format!("csrf={}&file_id={id}", enc(&csrf)),
    )
    .await;
    let by_key2 = link_now(&page);
    assert_ne!(by_key1, by_key2);

    // Retiring needs the confirmation; then key 1's links stop at once.
    let (status, _, _) = submit(
        &app,
        &session,
        "/admin/keys/1/retire",
        &format!("csrf={}", enc(&csrf)),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _, _) = submit(
        &app,
        &session,
        "/admin/keys/1/retire",
        &format!("csrf={}&confirm=yes", enc(&csrf)),
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let res = test::call_service(&app, TestRequest::get().uri(&by_key1).to_request()).await;
    assert_eq!(reason(&json_body(res).await), "invalid_signature");
    let res = test::call_service(&app, TestRequest::get().uri(&by_key2).to_request()).await;
    assert_eq!(res.status(), StatusCode::OK);
    let (status, _, _) = submit(
        &app,
        &session,
        "/admin/keys/9/retire",
        &format!("csrf={}&confirm=yes", enc(&csrf)),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[actix_web::test]
async fn the_fraud_page_imports_adds_removes_and_checks() {
    let env = env_with_password();
    let app = env.service().await;
    let (session, csrf) = log_in(&app).await;
    let (status, _, location) = submit_multipart(
        &app,
        &session,
        "/admin/fraud/import",
        &[("csrf", &csrf), ("list", "anonymizers"), ("source", "tor")],
        "exits.txt",
        b"# tor exits\n198.51.100.0/24\n2001:db8::/32\n",
    )
    .await;
    assert_eq!(
        (status, location.as_str()),
        (StatusCode::SEE_OTHER, "/admin/fraud?done=imported")
    );
    let sets = env.state.fraud.lists.current();
    assert!(
        sets.anonymizers.contains("198.51.100.7".parse().unwrap()),
        "in use at once"
    );

    // A file with a bad line changes nothing and says which line.
    let (status, page, _) = submit_multipart(
        &app,
        &session,
        "/admin/fraud/import",
        &[("csrf", &csrf), ("list", "anonymizers"), ("source", "tor")],
        "bad.txt",
        b"203.0.113.0/24\nnot an address\n",
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(page.contains("invalid_list_entry (line 2)"), "{page}");
    assert!(!env
        .state
        .fraud
        .lists
        .current()
        .anonymizers
        .contains("203.0.113.1".parse().unwrap()));

    let (status, _, _) = submit(
        &app,
        &session,
        "/admin/fraud/add",
        &format!(
            "csrf={}&list=blocklist&source=manual&entries=192.0.2.1%0A10.0.0.0%2F8",
            enc(&csrf)
        ),
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (_, page, _) = view(&app, &session, "/admin/fraud?ip=10.1.2.3").await;
    assert!(
        page.contains("10.1.2.3 is on: blocklist") && page.contains("10.0.0.0/8"),
        "{page}"
    );
    let (status, _, _) = submit(
        &app,
        &session,
        "/admin/fraud/remove-entry",
        &format!(
            "csrf={}&list=blocklist&source=manual&entry=10.0.0.0%2F8",
            enc(&csrf)
        ),
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (_, page, _) = view(&app, &session, "/admin/fraud?ip=10.1.2.3").await;
    assert!(page.contains("10.1.2.3 is on no list"), "{page}");
    let (status, page, _) = submit(
        &app,
        &session,
        "/admin/fraud/remove-entry",
        &format!(
            "csrf={}&list=blocklist&source=manual&entry=10.0.0.0%2F8",
            enc(&csrf)
        ),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{page}");
    let (_, page, _) = view(&app, &session, "/admin/fraud?ip=banana").await;
    assert!(page.contains("banana is not an IP address"), "{page}");
    // A list that is not one of ours is refused on the page by each form, and nothing changes.
    for (uri, rest) in [
        ("/admin/fraud/add", "source=manual&entries=192.0.2.9"),
        ("/admin/fraud/remove-entry", "source=manual&entry=192.0.2.1"),
        ("/admin/fraud/remove-source", "source=manual"),
    ] {
        let (status, page, _) = submit(
            &app,
            &session,
            uri,
            &format!("csrf={}&list=bogus&{rest}", enc(&csrf)),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}");
        assert!(page.contains("invalid_list"), "{uri}: {page}");
    }
    let (_, page, _) = view(&app, &session, "/admin/fraud?ip=192.0.2.1").await;
    assert!(page.contains("192.0.2.1 is on: blocklist"), "{page}");
    let (status, _, _) = submit(
        &app,
        &session,
        "/admin/fraud/remove-source",
        &format!("csrf={}&list=anonymizers&source=tor", enc(&csrf)),
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert!(!env
        .state
        .fraud
        .lists
        .current()
        .anonymizers
        .contains("198.51.100.7".parse().unwrap()));
}

#[actix_web::test]
async fn pipelines_and_jobs_are_created_moved_and_refused_like_the_api() {
    let env = env_with_password();
    let app = env.service().await;
    let (session, csrf) = log_in(&app).await;
    let (status, _, _) = submit(
        &app,
        &session,
        "/admin/pipelines",
        &format!(
            "csrf={}&name=transcodes&mode=temporary&default_object_timeout=0",
            enc(&csrf)
        ),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "a temporary pipeline needs a timeout"
    );
    let (status, _, _) = submit(
        &app,
        &session,
        "/admin/pipelines",
        &format!(
            "csrf={}&name=transcodes&description=hd&mode=permanent",
            enc(&csrf)
        ),
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (_, page, _) = view(&app, &session, "/admin/pipelines").await;
    let pipe = page
        .split("<tr data-id=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_string();

    let (status, _, _) = submit(
        &app,
        &session,
        "/admin/jobs",
        &format!("csrf={}&pipeline_id={pipe}&input_name=master&output_prefix=%7Bjob_id%7D%2F&outputs=hd.mp4%0Asd.mp4", enc(&csrf)),
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (_, page, _) = view(&app, &session, &format!("/admin/jobs?pipeline={pipe}")).await;
    let job = page
        .split("<tr data-id=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_string();
    assert!(page.contains("QUEUED") && page.contains("hd.mp4"), "{page}");
    let (status, page, _) = submit(
        &app,
        &session,
        &format!("/admin/jobs/{job}"),
        &format!("csrf={}&status=SUCCESS", enc(&csrf)),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "QUEUED → SUCCESS is no move");
    assert!(page.contains("invalid_transition"), "{page}");
    for step in ["status=RUNNING", "percentage_completed=40", "status=SUCCESS"] {
        let (status, _, _) = submit(
            &app,
            &session,
            &format!("/admin/jobs/{job}"),
            &format!("csrf={}&{step}", enc(&csrf)),
        )
        .await;
        assert_eq!(status, StatusCode::SEE_OTHER, "{step}");
    }
    let (_, page, _) = view(&app, &session, "/admin/jobs?status=SUCCESS").await;
    assert!(page.contains(&job) && page.contains("100%"), "{page}");

    // A pipeline holding files needs "with its files".
    let token = env.token("mediahub");
    env.upload(
        &token,
        &format!("?pipeline_id={pipe}&object_key={job}/hd.mp4"),
        "hd.mp4",
        b"hd",
    )
    .await;
    let (status, page, _) = submit(
        &app,
        &session,
        &format!("/admin/pipelines/{pipe}/delete"),
        &format!("csrf={}", enc(&csrf)),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(page.contains("pipeline_not_empty"), "{page}");
    let (status, _, _) = submit(
        &app,
        &session,
        &format!("/admin/pipelines/{pipe}/delete"),
        &format!("csrf={}&force=true", enc(&csrf)),
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let n: i64 = env
        .state
        .catalog
        .conn()
        .unwrap()
        .query_row("SELECT count(*) FROM files", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 0);
}

#[actix_web::test]
async fn the_audit_page_filters_like_the_api_and_the_dashboard_counts_today() {
    let env = env_with_password();
    let token = env.token("mediahub");
    let f = env.upload(&token, "", "a.bin", b"hello").await;
    let id = f["id"].as_str().unwrap().to_string();
    let app = env.service().await;
    let req = TestRequest::get()
        .uri(&format!("/v1/files/downloads/?file_id={id}&anti_fraud=true"))
        .insert_header(("Authorization", format!("Bearer {token}")));
    let v = json_body(test::call_service(&app, req.to_request()).await).await;
    let link = v["download"]["url"]
        .as_str()
        .unwrap()
        .strip_prefix("http://localhost:8080")
        .unwrap()
        .to_string();
    for peer in ["192.0.2.1:1", "192.0.2.2:1"] {
        let req = TestRequest::get().uri(&link).peer_addr(peer.parse().unwrap());
        let _ = test::read_body(test::call_service(&app, req.to_request()).await).await;
    }
    env.state.audit.flush();
    let (session, _) = log_in(&app).await;
    let rows = |page: &str| page.matches("<tr data-id=").count();
    let (_, page, _) = view(&app, &session, "/admin/audit").await;
    assert_eq!(rows(&page), 2);
    let (_, page, _) = view(&app, &session, "/admin/audit?reason=link_shared").await;
    assert!(rows(&page) == 1 && page.contains("192.0.2.2"), "{page}");
    let (_, page, _) = view(&app, &session, "/admin/audit?client=192.0.2.1&refused=false").await;
    assert!(rows(&page) == 1 && page.contains("192.0.2.1"), "{page}");
    let (_, page, _) = view(
        &app,
        &session,
        &format!("/admin/audit?file_id={id}&from=2026-01-01T00%3A00&to=2026-01-01T00%3A01"),
    )
    .await;
    assert_eq!(rows(&page), 2, "{page}");
    let (_, page, _) = view(&app, &session, "/admin/audit?from=2026-01-01T00%3A01").await;
    assert_eq!(rows(&page), 0, "{page}");
    // The API's checks: a bad filter is refused with its reason, not ignored.
    for (q, why) in [
        ("client=nope", "invalid_client"),
        ("file_id=x", "invalid_id"),
        ("from=soon", "invalid_time"),
        ("reason=Bad-Reason", "invalid_reason"),
    ] {
        let (status, page, _) = view(&app, &session, &format!("/admin/audit?{q}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{q}");
        assert!(page.contains(why), "{q}: {page}");
    }
    let (_, page, _) = view(&app, &session, "/admin").await;
    assert!(
        page.contains("<b id=\"stat-files\">1</b>") && page.contains("<b id=\"stat-served\">1</b>"),
        "{page}"
    );
    assert!(
        page.contains("<b id=\"stat-refused\">1</b>") && page.contains("link_shared"),
        "{page}"
    );
    assert!(page.contains("id=\"stat-disk-free\""), "{page}");
}

#[actix_web::test]
async fn cookie_is_secure_behind_a_trusted_https_proxy_only() {
    let env = TestEnv::with_config(|c| c.server.trusted_proxies = vec!["127.0.0.1".into()]);
    let app = env.service().await;
    let get = |peer: &str| {
        TestRequest::get()
            .uri("/admin/login")
            .peer_addr(peer.parse().unwrap())
            .insert_header(("X-Forwarded-Proto", "https"))
            .to_request()
    };
    let res = test::call_service(&app, get("127.0.0.1:4000")).await;
    assert!(set_cookie(&res, "filegate_login").unwrap().contains("Secure"));
    let res = test::call_service(&app, get("192.0.2.9:4000")).await;
    assert!(
        !set_cookie(&res, "filegate_login").unwrap().contains("Secure"),
        "spoofed header"
    );
}

#[actix_web::test]
async fn human_answers_in_a_browser_have_the_console_look() {
    let env = TestEnv::new();
    let token = env.token("mediahub");
    let f = env.upload(&token, "", "<b>x</b>.txt", b"x").await;
    let app = env.service().await;
    let res = test::call_service(
        &app,
        TestRequest::get()
            .uri(&format!("/v1/files/{}?human=true", f["id"].as_str().unwrap()))
            .insert_header(("Authorization", format!("Bearer {token}")))
            .insert_header(("Accept", "text/html,*/*;q=0.8"))
            .to_request(),
    )
    .await;
    let page = body_text(res).await;
    assert!(
        page.contains("/static/console.css") && page.contains("class=\"top\""),
        "{page}"
    );
    assert!(page.contains("&lt;b&gt;x&lt;/b&gt;.txt") && !page.contains("<b>x</b>"));
    assert!(
        !page.contains("id=\"logout\""),
        "no console chrome for API answers"
    );
}

#[actix_web::test]
async fn the_console_script_is_embedded() {
    let env = TestEnv::new();
    let app = env.service().await;
    let res = test::call_service(&app, TestRequest::get().uri("/static/console.js").to_request()).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res
        .headers()
        .get("content-type")
        .unwrap()
        .to_str()
        .unwrap()
        .contains("javascript"));
}

/// The ids of a listing's rows (`<tr data-id="…">`), in order.
fn row_ids(page: &str) -> Vec<String> {
    page.split("<tr data-id=\"")
        .skip(1)
        .map(|s| s.split('"').next().unwrap().to_string())
        .collect()
}

#[actix_web::test]
async fn the_backtrace_form_traces_like_the_api_and_shows_the_link_and_its_downloads() {
    let env = TestEnv::with_config(|c| c.storage.max_upload_size = 64 * 1024);
    filegate::admin::password::set(&env.state.catalog.conn().unwrap(), PASSWORD).unwrap();
    let token = env.token("mediahub,autograph");
    let data: Vec<u8> = (0..20_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let f = env
        .upload(&token, "?object_key=clip.bin&autograph=true", "clip.bin", &data)
        .await;
    let file_id = f["id"].as_str().unwrap().to_string();
    let app = env.service().await;
    let api = |uri: String| {
        TestRequest::get()
            .uri(&uri)
            .insert_header(("Authorization", format!("Bearer {token}")))
            .to_request()
    };
    let v = json_body(
        test::call_service(
            &app,
            api(format!(
                "/v1/files/downloads/?file_id={file_id}&autograph_tag=cust-4711"
            )),
        )
        .await,
    )
    .await;
    let link = v["download"]["url"]
        .as_str()
        .unwrap()
        .strip_prefix("http://localhost:8080")
        .unwrap()
        .to_string();
    let res = test::call_service(
        &app,
        TestRequest::get()
            .uri(&link)
            .peer_addr("192.0.2.44:4000".parse().unwrap())
            .to_request(),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    let copy = test::read_body(res).await.to_vec();
    assert!(copy.len() > data.len(), "a marked copy");
    env.state.audit.flush();

    let (session, csrf) = log_in(&app).await;
    let (status, page, _) = view(&app, &session, "/admin/backtraces").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        page.contains("id=\"backtrace-form\"") && page.contains("aria-current=\"page\""),
        "{page}"
    );

    // The marked copy: found, with the tag, the link as issued and its download.
    let (status, _, location) = submit_multipart(
        &app,
        &session,
        "/admin/backtraces",
        &[("csrf", &csrf)],
        "leak.bin",
        &copy,
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let found_id = location
        .strip_prefix("/admin/backtraces/")
        .and_then(|l| l.strip_suffix("?done=traced"))
        .unwrap()
        .to_string();
    let row = filegate::catalog::autograph::backtrace(&env.state.catalog.conn().unwrap(), &found_id)
        .unwrap()
        .unwrap();
    assert_eq!(row.outcome.as_str(), "found");
    assert_eq!(row.app_id, None, "the console is no application");
    assert_eq!(
        (row.name.as_deref(), row.size, row.sha256.as_str()),
        (Some("leak.bin"), copy.len() as u64, sha256_hex(&copy).as_str())
    );
    // The API answers the same backtrace.
    let v = json_body(test::call_service(&app, api(format!("/v1/backtraces/{found_id}"))).await).await;
    let b = &v["backtrace"];
    assert_eq!(
        (b["result"].as_str(), b["tag"].as_str()),
        (Some("found"), Some("cust-4711"))
    );
    let mark_id = b["mark_id"].as_str().unwrap().to_string();
    assert_eq!(b["downloads"][0]["client"], "192.0.2.44");
    let (status, page, _) = view(&app, &session, &location).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("id=\"notice\""), "{page}");
    assert!(page.contains("data-result=\"found\""), "{page}");
    assert!(page.contains("cust-4711") && page.contains(&mark_id), "{page}");
    assert!(
        page.contains(&format!("href=\"/admin/files/{file_id}\">clip.bin</a>")),
        "the file, linked to its page: {page}"
    );
    assert!(
        page.contains(&format!(
            "data-client=\"192.0.2.44\" data-bytes=\"{}\"",
            copy.len()
        )),
        "the download, with the bytes it got: {page}"
    );
    assert!(page.contains("class=\"ok\">200<"), "{page}");
    assert!(!page.contains("id=\"forged\""));

    // The original: no mark.
    env.clock.advance_secs(1);
    let (status, _, location) = submit_multipart(
        &app,
        &session,
        "/admin/backtraces",
        &[("csrf", &csrf)],
        "original.bin",
        &data,
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (_, page, _) = view(&app, &session, &location).await;
    assert!(
        page.contains("data-result=\"no_mark\"") && !page.contains("id=\"found-0\""),
        "{page}"
    );
    let unmarked_id = location
        .split('/')
        .nth(3)
        .unwrap()
        .split('?')
        .next()
        .unwrap()
        .to_string();

    // A forged mark: listed as a claim, nothing of it as fact.
    env.clock.advance_secs(1);
    let forged = forge(&copy, "evil-4711");
    let (status, _, location) = submit_multipart(
        &app,
        &session,
        "/admin/backtraces",
        &[("csrf", &csrf)],
        "forged.bin",
        &forged,
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (_, page, _) = view(&app, &session, &location).await;
    assert!(
        page.contains("data-result=\"forged_mark\"") && page.contains("id=\"forged\""),
        "{page}"
    );
    assert!(page.contains("evil-4711") && !page.contains("id=\"found-0\""));
    assert!(!page.contains(&format!("href=\"/admin/files/{file_id}\"")));
    let forged_id = location
        .split('/')
        .nth(3)
        .unwrap()
        .split('?')
        .next()
        .unwrap()
        .to_string();

    // The API's refusals, shown readably; nothing is recorded.
    for (fields, name, body, reason, status) in [
        (
            vec![("colour", "red")],
            "x.bin",
            b"x".to_vec(),
            "unknown_parameter",
            StatusCode::BAD_REQUEST,
        ),
        (
            vec![],
            "big.bin",
            vec![0u8; 70 * 1024],
            "upload_too_large",
            StatusCode::PAYLOAD_TOO_LARGE,
        ),
    ] {
        let mut all = vec![("csrf", csrf.as_str())];
        all.extend(fields);
        let (got, page, _) = submit_multipart(&app, &session, "/admin/backtraces", &all, name, &body).await;
        assert_eq!(got, status, "{reason}: {page}");
        assert!(
            page.contains(reason) && page.contains("id=\"backtrace-form\""),
            "{reason}: {page}"
        );
    }
    // Without a session: to the login page, nothing read.
    let (ct, body) = multipart_form(&[("csrf", &csrf)], "leak.bin", &copy);
    let res = test::call_service(
        &app,
        TestRequest::post()
            .uri("/admin/backtraces")
            .insert_header(("Content-Type", ct))
            .set_payload(body)
            .to_request(),
    )
    .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let count = || -> i64 {
        env.state
            .catalog
            .conn()
            .unwrap()
            .query_row("SELECT count(*) FROM backtraces", [], |r| r.get(0))
            .unwrap()
    };
    assert_eq!(count(), 3);

    // The list: newest first, filtered by result, each row opens its backtrace.
    let (_, page, _) = view(&app, &session, "/admin/backtraces").await;
    assert_eq!(
        row_ids(&page),
        vec![forged_id.clone(), unmarked_id.clone(), found_id.clone()]
    );
    assert!(page.contains(&format!("href=\"/admin/backtraces/{found_id}\"")));
    let (_, page, _) = view(&app, &session, "/admin/backtraces?result=found").await;
    assert_eq!(row_ids(&page), vec![found_id.clone()]);
    assert!(page.contains("cust-4711") && page.contains(&file_id), "{page}");
    let (status, _, _) = view(&app, &session, "/admin/backtraces/not-an-id").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _, _) = view(&app, &session, "/admin/backtraces/6b08f0fb1333542cfa08a2b5").await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Paging, 50 a page.
    {
        let c = env.state.catalog.conn().unwrap();
        for i in 0..55 {
            filegate::catalog::autograph::insert_backtrace(
                &c,
                &filegate::catalog::autograph::Backtrace {
                    id: format!("6a000000{i:016x}"),
                    app_id: None,
                    created_at: NOW_MS - 1000 - i,
                    name: Some(format!("old-{i}.bin")),
                    size: 1,
                    sha256: "00".into(),
                    outcome: filegate::catalog::autograph::Outcome::NoMark,
                    marks: Vec::new(),
                },
            )
            .unwrap();
        }
    }
    let (_, page, _) = view(&app, &session, "/admin/backtraces").await;
    assert_eq!(row_ids(&page).len(), 50);
    assert!(
        page.contains("1–50 of 58") && page.contains("/admin/backtraces?start=50"),
        "{page}"
    );
    let (_, page, _) = view(&app, &session, "/admin/backtraces?start=50").await;
    assert_eq!(row_ids(&page).len(), 8);
    let (_, page, _) = view(&app, &session, "/admin/backtraces?result=no_mark&start=50").await;
    assert_eq!(row_ids(&page).len(), 6);

    // The file deleted: the backtrace still names it, its tag and its downloads.
    let res = test::call_service(
        &app,
        TestRequest::delete()
            .uri(&format!("/v1/files/{file_id}"))
            .insert_header(("Authorization", format!("Bearer {token}")))
            .to_request(),
    )
    .await;
    assert!(res.status().is_success());
    let (_, page, _) = view(&app, &session, &format!("/admin/backtraces/{found_id}")).await;
    assert!(
        page.contains("(deleted or expired)")
            && page.contains("cust-4711")
            && page.contains("data-client=\"192.0.2.44\"")
            && !page.contains(&format!("href=\"/admin/files/{file_id}\"")),
        "{page}"
    );
}
