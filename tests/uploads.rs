//! Uploads: the three forms, chunk resume, checksums, limits, object keys (SPEC §3).

mod common;

use actix_web::http::StatusCode;
use actix_web::test::{self, TestRequest};
use common::*;
use serde_json::Value;

const BOUNDARY: &str = "XyZboundary42";

/// A multipart body: text fields, then `file` (with an optional file name and part headers).
fn form(fields: &[(&str, &str)], file: Option<(&str, &[u8])>, part_headers: &[(&str, &str)]) -> Vec<u8> {
    let mut b = Vec::new();
    for (k, v) in fields {
        b.extend_from_slice(
            format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n").as_bytes(),
        );
    }
    if let Some((name, data)) = file {
        b.extend_from_slice(
            format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\n")
                .as_bytes(),
        );
        for (k, v) in part_headers {
            b.extend_from_slice(format!("{k}: {v}\r\n").as_bytes());
        }
        b.extend_from_slice(b"Content-Type: application/octet-stream\r\n\r\n");
        b.extend_from_slice(data);
        b.extend_from_slice(b"\r\n");
    }
    b.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    b
}

fn multipart(req: TestRequest, body: Vec<u8>) -> TestRequest {
    req.insert_header((
        "Content-Type",
        format!("multipart/form-data; boundary={BOUNDARY}"),
    ))
    .set_payload(body)
}

async fn call(env: &TestEnv, req: TestRequest) -> (StatusCode, Value) {
    let app = env.service().await;
    let res = test::call_service(&app, req.to_request()).await;
    let status = res.status();
    let bytes = test::read_body(res).await;
    let v = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()))
    };
    (status, v)
}

fn bearer(req: TestRequest, token: &str) -> TestRequest {
    req.insert_header(("Authorization", format!("Bearer {token}")))
}

#[actix_web::test]
async fn one_shot_multipart_answers_201_completed_with_the_file() {
    let env = TestEnv::new();
    let tok = env.token("mediahub");
    let body = form(&[], Some(("report.pdf", b"%PDF-1.4 hello")), &[]);
    let req = bearer(
        TestRequest::post().uri("/v1/files/uploads/?object_key=docs/r.pdf"),
        &tok,
    );
    let (s, v) = call(&env, multipart(req, body)).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let u = &v["upload"];
    assert_eq!(u["status"], "COMPLETED");
    let f = &u["file"];
    assert_eq!(f["name"], "report.pdf");
    assert_eq!(f["object_key"], "docs/r.pdf");
    assert_eq!(f["size"], 14);
    assert_eq!(f["mime_type"], "application/pdf");
}
