//! OAuth2 tokens, bearer checks and scopes (SPEC §2).

mod common;

use actix_web::http::StatusCode;
use actix_web::test::{self, TestRequest};
use base64::Engine;
use common::*;

fn token_req(body: &str) -> TestRequest {
    TestRequest::post()
        .uri("/v1/oauth2/token")
        .insert_header(("Content-Type", "application/x-www-form-urlencoded"))
        .set_payload(body.to_string())
}

fn enc(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[actix_web::test]
async fn token_issued_for_both_grant_spellings_with_numeric_expires_in() {
    let env = TestEnv::new();
    let (id, secret) = env.app("mediahub");
    let app = env.service().await;
    for grant in ["client_credential", "client_credentials"] {
        let body = format!("grant_type={grant}&client_id={id}&client_secret={}", enc(&secret));
        let res = test::call_service(&app, token_req(&body).to_request()).await;
        assert_eq!(res.status(), StatusCode::OK, "{grant}");
        assert_eq!(res.headers().get("cache-control").unwrap(), "no-store");
        let v = json_body(res).await;
        assert_eq!(v["token_type"], "Bearer");
        assert_eq!(v["expires_in"], 7200, "a JSON number");
        assert!(v["access_token"].as_str().unwrap().len() >= 43, "≥ 256 bits");
        assert_eq!(v["scope"], "mediahub");
    }
}

#[actix_web::test]
async fn token_issued_with_http_basic_and_requested_subset_of_scopes() {
    let env = TestEnv::new();
    let (id, secret) = env.app("mediahub,autograph");
    let app = env.service().await;
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"));
    let req = token_req("grant_type=client_credentials&scope=mediahub_read%20autograph&expires_in=60")
        .insert_header(("Authorization", format!("Basic {basic}")))
        .to_request();
    let res = test::call_service(&app, req).await;
    assert_eq!(res.status(), StatusCode::OK);
    let v = json_body(res).await;
    assert_eq!(v["scope"], "mediahub_read autograph");
    assert_eq!(v["expires_in"], 60);
}

#[actix_web::test]
async fn wrong_secret_unknown_client_and_disabled_app_get_403_invalid_token() {
    let env = TestEnv::new();
    let (id, secret) = env.app("mediahub");
    let app = env.service().await;
    let cases = [
        (
            format!("grant_type=client_credentials&client_id={id}&client_secret=wrong"),
            "invalid_client",
        ),
        (
            format!(
                "grant_type=client_credentials&client_id=000000000000000000000000&client_secret={}",
                enc(&secret)
            ),
            "invalid_client",
        ),
        (
            format!("grant_type=client_credentials&client_id={id}"),
            "missing_client_credentials",
        ),
    ];
    for (body, why) in cases {
        let res = test::call_service(&app, token_req(&body).to_request()).await;
        assert_eq!(res.status(), StatusCode::FORBIDDEN, "{body}");
        assert_eq!(
            res.headers().get("www-authenticate").unwrap(),
            r#"Bearer error="invalid_token""#
        );
        let v = json_body(res).await;
        assert_eq!(v["error"]["error_code"], "0x0000003");
        assert_eq!(v["error"]["error_message"], "Invalid access token");
        assert_eq!(reason(&v), why);
    }
    let conn = env.state.catalog.conn().unwrap();
    filegate::catalog::apps::set_enabled(&conn, &id, false, NOW_MS).unwrap();
    let body = format!(
        "grant_type=client_credentials&client_id={id}&client_secret={}",
        enc(&secret)
    );
    let res = test::call_service(&app, token_req(&body).to_request()).await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert_eq!(reason(&json_body(res).await), "app_disabled");
}

#[actix_web::test]
async fn bad_grant_scope_and_expires_in_are_400_with_reasons() {
    let env = TestEnv::new();
    let (id, secret) = env.app("mediahub_read");
    let app = env.service().await;
    let base = format!("client_id={id}&client_secret={}", enc(&secret));
    let cases = [
        (base.to_string(), 400, "missing_parameter", Some("grant_type")),
        (
            format!("grant_type=password&{base}"),
            400,
            "unsupported_grant_type",
            Some("grant_type"),
        ),
        (
            format!("grant_type=client_credentials&scope=root&{base}"),
            400,
            "invalid_scope",
            Some("scope"),
        ),
        (
            format!("grant_type=client_credentials&expires_in=0&{base}"),
            400,
            "invalid_expires_in",
            Some("expires_in"),
        ),
        (
            format!("grant_type=client_credentials&expires_in=9999999999&{base}"),
            400,
            "invalid_expires_in",
            Some("expires_in"),
        ),
        (
            format!("grant_type=client_credentials&scope=mediahub_write&{base}"),
            403,
            "scope_not_granted",
            Some("scope"),
        ),
    ];
    for (body, status, why, param) in cases {
        let res = test::call_service(&app, token_req(&body).to_request()).await;
        assert_eq!(res.status().as_u16(), status, "{body}");
        let v = json_body(res).await;
        assert_eq!(reason(&v), why, "{body}");
        assert_eq!(v["error"]["param"].as_str(), param);
    }
}

#[actix_web::test]
async fn issued_token_is_stored_only_as_a_hash() {
    let env = TestEnv::new();
    let token = env.token("mediahub");
    let conn = env.state.catalog.conn().unwrap();
    let stored: Vec<u8> = conn
        .query_row("SELECT hash FROM tokens", [], |r| r.get(0))
        .unwrap();
    assert_eq!(stored.len(), 32);
    assert!(!String::from_utf8_lossy(&stored).contains(&token));
    let raw: i64 = conn
        .query_row(
            "SELECT count(*) FROM tokens WHERE CAST(hash AS TEXT) = ?1",
            [&token],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(raw, 0);
}

mod bearer {
    use super::*;
    use actix_web::{web, App, HttpRequest, HttpResponse};
    use filegate::api::params::Params;
    use filegate::auth::{authenticate, Scope};
    use filegate::error::ApiError;
    use filegate::state::AppState;

    /// A probe route that needs `mediahub_write`, so the bearer check can be tested
    /// before any resource uses it.
    async fn probe(state: web::Data<AppState>, req: HttpRequest) -> Result<HttpResponse, ApiError> {
        let params = Params::parse(req.query_string(), &[])?;
        let who = authenticate(&state, &req, &params).await?;
        who.require(Scope::MediahubWrite)?;
        Ok(HttpResponse::Ok().body(who.app_id))
    }

    async fn call(env: &TestEnv, req: TestRequest) -> (StatusCode, serde_json::Value) {
        let state = env.state.clone();
        let app = test::init_service(
            App::new()
                .app_data(web::Data::new(state))
                .route("/probe", web::get().to(probe)),
        )
        .await;
        let res = test::call_service(&app, req.to_request()).await;
        let status = res.status();
        let body = test::read_body(res).await;
        (
            status,
            serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null),
        )
    }

    #[actix_web::test]
    async fn header_and_query_tokens_work_and_scopes_are_enforced() {
        let env = TestEnv::new();
        let write = env.token("mediahub");
        let (s, _) = call(
            &env,
            TestRequest::get()
                .uri("/probe")
                .insert_header(("Authorization", format!("Bearer {write}"))),
        )
        .await;
        assert_eq!(s, StatusCode::OK);
        let (s, _) = call(
            &env,
            TestRequest::get().uri(&format!("/probe?access_token={write}")),
        )
        .await;
        assert_eq!(s, StatusCode::OK);
        let read = env.token("mediahub_read");
        let (s, v) = call(
            &env,
            TestRequest::get().uri(&format!("/probe?access_token={read}")),
        )
        .await;
        assert_eq!(s, StatusCode::FORBIDDEN);
        assert_eq!(v["error"]["error_code"], "0x0000004");
        assert_eq!(v["error"]["param"], "mediahub_write");
    }

    #[actix_web::test]
    async fn missing_unknown_expired_and_disabled_tokens_are_refused() {
        let env = TestEnv::new();
        let (s, v) = call(&env, TestRequest::get().uri("/probe")).await;
        assert_eq!((s, reason(&v)), (StatusCode::FORBIDDEN, "missing_token"));
        let (s, v) = call(&env, TestRequest::get().uri("/probe?access_token=nope")).await;
        assert_eq!((s, reason(&v)), (StatusCode::FORBIDDEN, "invalid_token"));
        assert_eq!(v["error"]["error_code"], "0x0000003");

        let token = env.token("mediahub");
        env.clock.advance_secs(3599);
        let (s, _) = call(
            &env,
            TestRequest::get().uri(&format!("/probe?access_token={token}")),
        )
        .await;
        assert_eq!(s, StatusCode::OK, "valid one second before expiry");
        env.clock.advance_secs(1);
        let (s, v) = call(
            &env,
            TestRequest::get().uri(&format!("/probe?access_token={token}")),
        )
        .await;
        assert_eq!((s, reason(&v)), (StatusCode::FORBIDDEN, "token_expired"));

        let token = env.token("mediahub");
        let conn = env.state.catalog.conn().unwrap();
        conn.execute("UPDATE apps SET enabled = 0", []).unwrap();
        let (s, v) = call(
            &env,
            TestRequest::get().uri(&format!("/probe?access_token={token}")),
        )
        .await;
        assert_eq!((s, reason(&v)), (StatusCode::FORBIDDEN, "app_disabled"));
    }

    #[actix_web::test]
    async fn a_token_in_use_stops_working_when_its_app_is_disabled() {
        let env = TestEnv::new();
        let token = env.token("mediahub");
        let probe = || TestRequest::get().uri(&format!("/probe?access_token={token}"));
        assert_eq!(call(&env, probe()).await.0, StatusCode::OK, "now cached");
        let conn = env.state.catalog.conn().unwrap();
        conn.execute("UPDATE apps SET enabled = 0", []).unwrap();

        // Disabled by another process (`filegate app disable`): within a second.
        env.clock
            .set_ms(filegate::clock::Clock::now_ms(&*env.clock) + filegate::delivery::cache::TTL_MS);
        let (s, v) = call(&env, probe()).await;
        assert_eq!((s, reason(&v)), (StatusCode::FORBIDDEN, "app_disabled"));

        // Disabled in this process (the console): at once.
        conn.execute("UPDATE apps SET enabled = 1", []).unwrap();
        env.clock
            .set_ms(filegate::clock::Clock::now_ms(&*env.clock) + filegate::delivery::cache::TTL_MS);
        assert_eq!(call(&env, probe()).await.0, StatusCode::OK, "cached again");
        conn.execute("UPDATE apps SET enabled = 0", []).unwrap();
        let app_id: String = conn.query_row("SELECT id FROM apps", [], |r| r.get(0)).unwrap();
        env.state.cache.invalidate_app(&app_id);
        let (s, v) = call(&env, probe()).await;
        assert_eq!((s, reason(&v)), (StatusCode::FORBIDDEN, "app_disabled"));
    }
}
