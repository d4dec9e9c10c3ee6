//! The admin console's login, session cookie, CSRF protection and applications page,
//! in process. (Browser-driven tests live in tests/browser.)

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
    assert!(page.contains("id=\"fraud-lists\"") && page.contains("manual"));
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
