//! Answer forms (JSON, XML, human, HTML), the error shape, unknown parameters (SPEC §1).

mod common;

use actix_web::http::StatusCode;
use actix_web::test::{self, TestRequest};
use common::*;

async fn get(env: &TestEnv, req: TestRequest) -> (StatusCode, String, String) {
    let app = env.service().await;
    let res = test::call_service(&app, req.to_request()).await;
    let status = res.status();
    let ct = res
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let body = String::from_utf8(test::read_body(res).await.to_vec()).unwrap();
    (status, ct, body)
}

fn token_body(env: &TestEnv) -> String {
    let (id, secret) = env.app("mediahub");
    let s: String = form_urlencoded::byte_serialize(secret.as_bytes()).collect();
    format!("grant_type=client_credentials&client_id={id}&client_secret={s}")
}

fn post_token(env: &TestEnv, query: &str) -> TestRequest {
    TestRequest::post()
        .uri(&format!("/v1/oauth2/token{query}"))
        .insert_header(("Content-Type", "application/x-www-form-urlencoded"))
        .set_payload(token_body(env))
}

#[actix_web::test]
async fn format_xml_overrides_accept_and_parses() {
    let env = TestEnv::new();
    let (s, ct, body) = get(
        &env,
        post_token(&env, "?format=xml").insert_header(("Accept", "application/json")),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert!(ct.starts_with("application/xml"), "{ct}");
    let mut r = quick_xml::Reader::from_str(&body);
    let mut names = Vec::new();
    loop {
        match r.read_event().expect("well-formed XML") {
            quick_xml::events::Event::Start(e) => {
                names.push(String::from_utf8(e.name().as_ref().to_vec()).unwrap())
            }
            quick_xml::events::Event::Eof => break,
            _ => {}
        }
    }
    assert_eq!(
        names,
        ["token", "access_token", "expires_in", "token_type", "scope"]
    );
}

#[actix_web::test]
async fn accept_header_chooses_xml_and_json_is_the_default() {
    let env = TestEnv::new();
    let (_, ct, body) = get(&env, post_token(&env, "").insert_header(("Accept", "text/xml"))).await;
    assert!(
        ct.starts_with("application/xml") && body.contains("<token>"),
        "{ct} {body}"
    );
    let (_, ct, _) = get(
        &env,
        post_token(&env, "").insert_header(("Accept", "application/xml;q=0.5, application/json")),
    )
    .await;
    assert!(ct.starts_with("application/json"), "{ct}");
    let (_, ct, _) = get(&env, post_token(&env, "")).await;
    assert!(ct.starts_with("application/json"), "{ct}");
}

#[actix_web::test]
async fn human_indents_json_and_xml() {
    let env = TestEnv::new();
    let (_, _, body) = get(&env, post_token(&env, "?human=true")).await;
    assert!(body.starts_with("{\n  \""), "{body}");
    let (_, _, body) = get(&env, post_token(&env, "?human=true&format=xml")).await;
    assert!(body.contains("\n  <access_token>"), "{body}");
}

#[actix_web::test]
async fn human_in_a_browser_gets_an_html_table() {
    let env = TestEnv::new();
    let (s, ct, body) = get(
        &env,
        post_token(&env, "?human=true")
            .insert_header(("Accept", "text/html,application/xhtml+xml,*/*;q=0.8")),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert!(ct.starts_with("text/html"), "{ct}");
    assert!(
        body.contains("<th scope=\"row\">token_type</th><td>Bearer</td>"),
        "{body}"
    );
    // Without human=true the same browser gets JSON.
    let (_, ct, _) = get(
        &env,
        post_token(&env, "").insert_header(("Accept", "text/html,*/*;q=0.8")),
    )
    .await;
    assert!(ct.starts_with("application/json"), "{ct}");
}

#[actix_web::test]
async fn unknown_parameter_is_refused_by_name_in_the_error_shape() {
    let env = TestEnv::new();
    let (s, ct, body) = get(&env, post_token(&env, "?anti_frad=true")).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(ct.starts_with("application/json"));
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        v,
        serde_json::json!({"error":{"error_code":"0x0230001","error_message":"Invalid Input",
            "reason":"unknown_parameter","param":"anti_frad"}})
    );
}

#[actix_web::test]
async fn bad_format_and_booleans_are_400_and_errors_follow_the_asked_form() {
    let env = TestEnv::new();
    let (s, _, body) = get(&env, post_token(&env, "?format=yaml")).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(
        body.contains("\"invalid_format\"") && body.contains("\"param\":\"format\""),
        "{body}"
    );
    let (s, _, body) = get(&env, post_token(&env, "?human=yes")).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(body.contains("invalid_boolean"), "{body}");
    let (s, ct, body) = get(&env, post_token(&env, "?format=xml&bogus=1")).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(ct.starts_with("application/xml"), "{ct}");
    assert!(
        body.contains("<error><error_code>0x0230001</error_code>"),
        "{body}"
    );
    assert!(
        body.contains("<reason>unknown_parameter</reason><param>bogus</param>"),
        "{body}"
    );
}

#[actix_web::test]
async fn unknown_route_is_404_in_the_error_shape_and_trailing_slash_works() {
    let env = TestEnv::new();
    let (s, _, body) = get(&env, TestRequest::get().uri("/v1/nothing/here")).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert!(body.contains("\"error_code\":\"0x0230002\""), "{body}");
    let (s, _, _) = get(&env, post_token(&env, "").uri("/v1/oauth2/token/")).await;
    assert_eq!(s, StatusCode::OK);
    let (s, _, body) = get(&env, TestRequest::get().uri("/v1/oauth2/token")).await;
    assert_eq!(s, StatusCode::METHOD_NOT_ALLOWED);
    assert!(body.contains("method_not_allowed"));
}

#[actix_web::test]
async fn healthz_reports_catalog_and_store() {
    let env = TestEnv::new();
    let (s, _, body) = get(&env, TestRequest::get().uri("/healthz")).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(body, r#"{"status":"ok","catalog":"ok","store":"ok"}"#);
    std::fs::remove_dir_all(env.data_dir().join("tmp")).unwrap();
    let (s, _, body) = get(&env, TestRequest::get().uri("/healthz")).await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE);
    assert!(body.contains(r#""store":"failing""#), "{body}");
}
