//! Uploads: the three forms, chunk resume, checksums, limits, object keys (SPEC §3).

mod common;

use actix_web::http::StatusCode;
use actix_web::test::{self, TestRequest};
use common::*;
use filegate::catalog;
use filegate::clock::Clock;
use serde_json::{json, Value};

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

/// Path and query of an absolute URL from an answer.
fn path_of(url: &str) -> String {
    let rest = url.split_once("://").map(|(_, r)| r).unwrap_or(url);
    rest[rest.find('/').unwrap()..].to_string()
}

async fn one_shot(env: &TestEnv, tok: &str, query: &str, name: &str, data: &[u8]) -> (StatusCode, Value) {
    let req = bearer(
        TestRequest::post().uri(&format!("/v1/files/uploads/{query}")),
        tok,
    );
    call(env, multipart(req, form(&[], Some((name, data)), &[]))).await
}

async fn open_upload(env: &TestEnv, tok: &str, query: &str) -> Value {
    let req = bearer(
        TestRequest::post().uri(&format!("/v1/files/uploads/{query}")),
        tok,
    );
    let (s, v) = call(env, req).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(v["upload"]["status"], "UPLOADING");
    v["upload"].clone()
}

/// Posts chunk `chunk` of `chunks` to the upload's form_post_url with its params.
async fn post_chunk(
    env: &TestEnv,
    up: &Value,
    chunk: usize,
    chunks: usize,
    data: &[u8],
) -> (StatusCode, Value) {
    let p = &up["form_post_params"];
    let (c, n) = (chunk.to_string(), chunks.to_string());
    let fields = [
        ("upload_id", p["upload_id"].as_str().unwrap()),
        ("upload_token", p["upload_token"].as_str().unwrap()),
        ("chunk", c.as_str()),
        ("chunks", n.as_str()),
    ];
    let url = path_of(up["form_post_url"].as_str().unwrap());
    call(
        env,
        multipart(
            TestRequest::post().uri(&url),
            form(&fields, Some(("movie.mp4", data)), &[]),
        ),
    )
    .await
}

async fn put_complete(env: &TestEnv, tok: &str, id: &str, body: Value) -> (StatusCode, Value) {
    let req = bearer(TestRequest::put().uri(&format!("/v1/files/uploads/{id}")), tok).set_json(body);
    call(env, req).await
}

fn file_count(env: &TestEnv) -> i64 {
    let c = env.state.catalog.conn().unwrap();
    c.query_row("SELECT count(*) FROM files", [], |r| r.get(0))
        .unwrap()
}

/// Number of blob files on disk.
fn blob_files(env: &TestEnv) -> usize {
    env.state.store.list_blobs().unwrap().len()
}

fn assert_nothing_kept(env: &TestEnv) {
    assert_eq!(file_count(env), 0, "no file row");
    assert_eq!(blob_files(env), 0, "no blob");
    assert_eq!(env.state.store.temp_count().unwrap(), 0, "no temp file");
}

fn add_pipeline(env: &TestEnv, mode: &str, timeout: i64) -> String {
    let id = filegate::ids::new_id(NOW_MS / 1000);
    let c = env.state.catalog.conn().unwrap();
    catalog::pipelines::insert(
        &c,
        &catalog::pipelines::PipelineRow {
            id: id.clone(),
            name: "p".into(),
            description: String::new(),
            mode: mode.into(),
            default_object_timeout: timeout,
            created_at: NOW_MS,
            updated_at: NOW_MS,
        },
    )
    .unwrap();
    id
}

#[actix_web::test]
async fn one_shot_multipart_answers_201_completed_with_the_file() {
    let env = TestEnv::new();
    let tok = env.token("mediahub");
    let (s, v) = one_shot(
        &env,
        &tok,
        "?object_key=docs/r.pdf",
        "report.pdf",
        b"%PDF-1.4 hello",
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let u = &v["upload"];
    assert_eq!(u["status"], "COMPLETED");
    let f = &u["file"];
    assert_eq!(f["name"], "report.pdf");
    assert_eq!(f["title"], "report.pdf");
    assert_eq!(f["type"], "file");
    assert_eq!(f["object_key"], "docs/r.pdf");
    assert_eq!(f["size"], 14);
    assert_eq!(f["mime_type"], "application/pdf");
    assert_eq!(f["sha256"], sha256_hex(b"%PDF-1.4 hello"));
    assert_eq!(f["md5_checksum"].as_str().unwrap().len(), 32);
    assert_eq!(f["expires_at"], Value::Null);
    assert_eq!(f["created_at"], NOW_MS);
    let id = f["id"].as_str().unwrap();
    assert_eq!(f["href"], format!("http://localhost:8080/v1/files/{id}"));
    assert_eq!(
        f["uri"],
        format!("http://localhost:8080/v1/files/downloads/?file_id={id}")
    );
    // Durable and visible: the row and its bytes.
    let (s, g) = get(&env, &tok, &format!("/v1/files/{id}")).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(g["file"]["sha256"], f["sha256"]);
    let row = {
        let c = env.state.catalog.conn().unwrap();
        catalog::files::get(&c, id).unwrap().unwrap()
    };
    let bytes = std::fs::read(env.state.store.path(&row.blob_id).unwrap()).unwrap();
    assert_eq!(bytes, b"%PDF-1.4 hello");
    // The upload itself can be polled.
    let (s, p) = get(
        &env,
        &tok,
        &format!("/v1/files/uploads/{}", u["id"].as_str().unwrap()),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{p}");
    assert_eq!(p["upload"]["status"], "COMPLETED");
    assert_eq!(p["upload"]["file"]["id"], id);
    assert_eq!(env.state.store.temp_count().unwrap(), 0);
}

#[actix_web::test]
async fn uploads_around_the_batch_size_keep_every_byte_and_both_digests() {
    use filegate::files::digest::HELPER_MIN;
    use filegate::files::ingest::BATCH;
    let env = TestEnv::new();
    let tok = env.token("mediahub");
    let sizes = [
        HELPER_MIN - 1,
        HELPER_MIN + 1,
        BATCH - 1,
        BATCH,
        BATCH + 1,
        3 * BATCH + HELPER_MIN + 3,
    ];
    for (i, &len) in sizes.iter().enumerate() {
        let data = lumpy_bytes(len, i as u64 + 1);
        let (s, v) = one_shot(&env, &tok, "", "blob.bin", &data).await;
        assert_eq!(s, StatusCode::CREATED, "{len} bytes: {v}");
        let f = &v["upload"]["file"];
        assert_eq!(f["size"], len, "{len} bytes");
        assert_eq!(f["sha256"], sha256_hex(&data), "{len} bytes");
        assert_eq!(f["md5_checksum"], md5_hex(&data), "{len} bytes");
        let row = {
            let c = env.state.catalog.conn().unwrap();
            catalog::files::get(&c, f["id"].as_str().unwrap())
                .unwrap()
                .unwrap()
        };
        let stored = std::fs::read(env.state.store.path(&row.blob_id).unwrap()).unwrap();
        assert!(stored == data, "{len} bytes: the stored bytes differ");
    }
    // Chunks of a three-step upload, assembled (copied in batches) on completion.
    let a = lumpy_bytes(BATCH + 1, 100);
    let b = lumpy_bytes(2 * BATCH - 1, 101);
    let up = open_upload(&env, &tok, "").await;
    for (i, part) in [&a, &b].into_iter().enumerate() {
        let (s, v) = post_chunk(&env, &up, i, 2, part).await;
        assert_eq!(s, StatusCode::OK, "{v}");
    }
    let id = up["id"].as_str().unwrap();
    let (s, v) = put_complete(&env, &tok, id, json!({"upload": {"nb_chunks": 2}})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let whole = [a, b].concat();
    let f = &v["upload"]["file"];
    assert_eq!(f["size"], whole.len());
    assert_eq!(f["sha256"], sha256_hex(&whole));
    assert_eq!(f["md5_checksum"], md5_hex(&whole));
    assert_eq!(env.state.store.temp_count().unwrap(), 0);
}

#[actix_web::test]
async fn one_shot_takes_options_from_form_fields_and_keeps_the_utf8_name() {
    let env = TestEnv::new();
    let tok = env.token("mediahub_write");
    let body = form(
        &[
            ("object_key", "clips/é.bin"),
            ("autograph", "true"),
            ("expires_at", &(NOW_MS + 60_000).to_string()),
        ],
        Some(("Ünïcødé ファイル.mp4", b"\0\0\0\x18ftypisom\0\0\0\0")),
        &[],
    );
    let req = bearer(TestRequest::post().uri("/v1/files/uploads/"), &tok);
    let (s, v) = call(&env, multipart(req, body)).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let f = &v["upload"]["file"];
    assert_eq!(f["name"], "Ünïcødé ファイル.mp4");
    assert_eq!(f["object_key"], "clips/é.bin");
    assert_eq!(f["autograph"], true);
    assert_eq!(f["expires_at"], NOW_MS + 60_000);
    assert_eq!(f["mime_type"], "video/mp4");
    // A typo among the fields is refused, like one in the query.
    let body = form(&[("objectkey", "x")], Some(("a", b"a")), &[]);
    let req = bearer(TestRequest::post().uri("/v1/files/uploads/"), &tok);
    let (s, v) = call(&env, multipart(req, body)).await;
    assert_eq!((s, reason(&v)), (StatusCode::BAD_REQUEST, "unknown_parameter"));
    assert_eq!(v["error"]["param"], "objectkey");
    // The same option twice (query and field) is refused.
    let body = form(&[("object_key", "x")], Some(("a", b"a")), &[]);
    let req = bearer(TestRequest::post().uri("/v1/files/uploads/?object_key=y"), &tok);
    let (s, v) = call(&env, multipart(req, body)).await;
    assert_eq!((s, reason(&v)), (StatusCode::BAD_REQUEST, "duplicate_parameter"));
}

#[actix_web::test]
async fn without_object_key_the_file_id_is_the_key_and_a_form_without_file_is_refused() {
    let env = TestEnv::new();
    let tok = env.token("mediahub");
    let (s, v) = one_shot(&env, &tok, "", "a.txt", b"one").await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(v["upload"]["file"]["object_key"], v["upload"]["file"]["id"]);
    let req = bearer(TestRequest::post().uri("/v1/files/uploads/"), &tok);
    let (s, v) = call(&env, multipart(req, form(&[("object_key", "k")], None, &[]))).await;
    assert_eq!((s, reason(&v)), (StatusCode::BAD_REQUEST, "missing_file"));
}

#[actix_web::test]
async fn uploads_need_mediahub_write_and_a_token() {
    let env = TestEnv::new();
    let tok = env.token("mediahub_read");
    let (s, v) = one_shot(&env, &tok, "", "a.txt", b"x").await;
    assert_eq!((s, reason(&v)), (StatusCode::FORBIDDEN, "insufficient_scope"));
    let (s, v) = call(&env, TestRequest::post().uri("/v1/files/uploads/")).await;
    assert_eq!((s, reason(&v)), (StatusCode::FORBIDDEN, "missing_token"));
    assert_nothing_kept(&env);
}

#[actix_web::test]
async fn three_step_flow_create_form_post_then_put_completes() {
    let env = TestEnv::new();
    let tok = env.token("mediahub");
    let up = open_upload(
        &env,
        &tok,
        "?object_key=out/movie.mp4&ip=3232236033&autograph=false",
    )
    .await;
    let id = up["id"].as_str().unwrap().to_string();
    assert_eq!(up["nb_chunks"], 0);
    assert_eq!(up["object_key"], "out/movie.mp4");
    assert_eq!(
        up["form_post_url"],
        format!("http://localhost:8080/v1/files/uploads/{id}/form")
    );
    let params = &up["form_post_params"];
    assert_eq!(params["chunk"], "0");
    assert_eq!(params["chunks"], "1");
    assert_eq!(params["upload_id"], id.as_str());
    assert!(params["upload_token"].as_str().unwrap().len() >= 32);
    let file_id = up["file"]["id"].as_str().unwrap().to_string();

    let data = b"\0\0\0\x18ftypisom some movie bytes".repeat(100);
    let (s, v) = post_chunk(&env, &up, 0, 1, &data).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["upload"]["status"], "UPLOADING");
    assert_eq!(v["upload"]["chunks_received"], json!([0]));
    // Not visible before completion.
    let (s, _) = get(&env, &tok, &format!("/v1/files/{file_id}")).await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    let (s, v) = put_complete(&env, &tok, &id, json!({"upload": {"nb_chunks": 1}})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["upload"]["status"], "COMPLETED");
    let f = &v["upload"]["file"];
    assert_eq!(f["id"], file_id.as_str());
    assert_eq!(f["name"], "movie.mp4");
    assert_eq!(f["size"], data.len());
    assert_eq!(f["sha256"], sha256_hex(&data));
    assert_eq!(f["mime_type"], "video/mp4");
    // Polling shows the result; completing again is harmless.
    let (s, p) = get(&env, &tok, &format!("/v1/files/uploads/{id}/")).await;
    assert_eq!(
        (s, p["upload"]["status"].as_str()),
        (StatusCode::OK, Some("COMPLETED"))
    );
    let (s, again) = put_complete(&env, &tok, &id, json!({"nb_chunks": "1"})).await;
    assert_eq!(
        (s, &again["upload"]["file"]["id"]),
        (StatusCode::OK, &json!(file_id))
    );
    // A closed upload takes no more data.
    let (s, v) = post_chunk(&env, &up, 0, 1, b"more").await;
    assert_eq!((s, reason(&v)), (StatusCode::CONFLICT, "upload_not_open"));
    assert_eq!(file_count(&env), 1);
    assert_eq!(env.state.store.temp_count().unwrap(), 0);
    assert!(
        !env.data_dir().join("uploads").join(&id).exists(),
        "chunk files removed"
    );
}

#[actix_web::test]
async fn form_post_is_authorised_by_the_upload_token_only() {
    let env = TestEnv::new();
    let tok = env.token("mediahub");
    let up = open_upload(&env, &tok, "").await;
    let url = path_of(up["form_post_url"].as_str().unwrap());
    let id = up["id"].as_str().unwrap();
    for (fields, status, why) in [
        (vec![], StatusCode::FORBIDDEN, "missing_upload_token"),
        (
            vec![("upload_token", "0".repeat(48))],
            StatusCode::FORBIDDEN,
            "invalid_upload_token",
        ),
        (
            vec![
                (
                    "upload_token",
                    up["form_post_params"]["upload_token"]
                        .as_str()
                        .unwrap()
                        .to_string(),
                ),
                ("upload_id", "000000000000000000000000".to_string()),
            ],
            StatusCode::BAD_REQUEST,
            "upload_id_mismatch",
        ),
    ] {
        let f: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let (s, v) = call(
            &env,
            multipart(TestRequest::post().uri(&url), form(&f, Some(("a", b"abc")), &[])),
        )
        .await;
        assert_eq!((s, reason(&v)), (status, why), "{fields:?}");
    }
    // Another application does not see the upload.
    let other = env.token("mediahub");
    let (s, _) = get(&env, &other, &format!("/v1/files/uploads/{id}")).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = put_complete(&env, &other, id, json!({"nb_chunks": 1})).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, v) = get(&env, &tok, "/v1/files/uploads/000000000000000000000000").await;
    assert_eq!((s, reason(&v)), (StatusCode::NOT_FOUND, "upload_not_found"));
    assert_eq!(env.state.store.temp_count().unwrap(), 0);
}

#[actix_web::test]
async fn chunked_upload_resumes_after_a_dropped_connection_by_reposting_missing_chunks() {
    let env = TestEnv::new();
    let tok = env.token("mediahub");
    let up = open_upload(&env, &tok, "?object_key=big.bin").await;
    let id = up["id"].as_str().unwrap().to_string();
    let parts: Vec<Vec<u8>> = (0..3u8).map(|i| vec![b'a' + i; 1000 + i as usize]).collect();
    let whole: Vec<u8> = parts.concat();

    assert_eq!(post_chunk(&env, &up, 0, 3, &parts[0]).await.0, StatusCode::OK);
    assert_eq!(post_chunk(&env, &up, 2, 3, &parts[2]).await.0, StatusCode::OK);
    // Chunk 1's connection drops half-way: the body ends without its closing boundary.
    let p = &up["form_post_params"];
    let fields = [
        ("upload_token", p["upload_token"].as_str().unwrap()),
        ("chunk", "1"),
        ("chunks", "3"),
    ];
    let mut cut = form(&fields, Some(("big.bin", &parts[1])), &[]);
    cut.truncate(cut.len() - 600);
    let url = path_of(up["form_post_url"].as_str().unwrap());
    let (s, v) = call(&env, multipart(TestRequest::post().uri(&url), cut)).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    assert_eq!(
        env.state.store.temp_count().unwrap(),
        0,
        "the partial chunk is not kept"
    );

    // Completing now says what is missing, and the upload stays open.
    let (s, v) = put_complete(&env, &tok, &id, json!({"upload": {"nb_chunks": 3}})).await;
    assert_eq!((s, reason(&v)), (StatusCode::BAD_REQUEST, "missing_chunks"));
    let (_, p) = get(&env, &tok, &format!("/v1/files/uploads/{id}")).await;
    assert_eq!(p["upload"]["status"], "UPLOADING");
    assert_eq!(p["upload"]["chunks_received"], json!([0, 2]));
    assert_eq!(p["upload"]["bytes_received"], 2002);

    // Re-post the missing chunk (and chunk 0 again, which replaces the first copy).
    assert_eq!(post_chunk(&env, &up, 1, 3, &parts[1]).await.0, StatusCode::OK);
    assert_eq!(post_chunk(&env, &up, 0, 3, &parts[0]).await.0, StatusCode::OK);
    let (s, v) = put_complete(&env, &tok, &id, json!({"upload": {"nb_chunks": 3}})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let f = &v["upload"]["file"];
    assert_eq!(f["size"], whole.len());
    assert_eq!(f["sha256"], sha256_hex(&whole));
    let blob = f["sha256"].as_str().unwrap();
    assert_eq!(std::fs::read(env.state.store.path(blob).unwrap()).unwrap(), whole);
    assert_eq!(env.state.store.temp_count().unwrap(), 0);
    assert!(!env.data_dir().join("uploads").join(&id).exists());
}

#[actix_web::test]
async fn completion_refuses_wrong_chunk_counts() {
    let env = TestEnv::new();
    let tok = env.token("mediahub");
    let up = open_upload(&env, &tok, "").await;
    let id = up["id"].as_str().unwrap();
    assert_eq!(post_chunk(&env, &up, 0, 2, b"aa").await.0, StatusCode::OK);
    assert_eq!(post_chunk(&env, &up, 1, 2, b"bb").await.0, StatusCode::OK);
    for (body, why) in [
        (json!({"upload": {"nb_chunks": 1}}), "chunk_count_mismatch"),
        (json!({"upload": {"nb_chunks": 0}}), "invalid_nb_chunks"),
        (json!({"upload": {}}), "missing_parameter"),
    ] {
        let (s, v) = put_complete(&env, &tok, id, body.clone()).await;
        assert_eq!((s, reason(&v)), (StatusCode::BAD_REQUEST, why), "{body}");
    }
    let (s, v) = post_chunk(&env, &up, 2, 2, b"cc").await;
    assert_eq!((s, reason(&v)), (StatusCode::BAD_REQUEST, "invalid_chunk"));
    let (s, _) = put_complete(&env, &tok, id, json!({"upload": {"nb_chunks": 2}})).await;
    assert_eq!(s, StatusCode::OK);
}

#[actix_web::test]
async fn checksums_are_verified_and_a_mismatch_keeps_nothing() {
    let env = TestEnv::new();
    let tok = env.token("mediahub");
    let data = b"hello world";
    let good_md5 = "XrY7u+Ae7tCTyyK7j1rNww==";
    let good_sha = sha256_hex(data);
    let bad_sha = sha256_hex(b"something else");
    let send = |hdrs: Vec<(&'static str, String)>, part: Vec<(&'static str, String)>| {
        let p: Vec<(&str, &str)> = part.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let mut req = bearer(TestRequest::post().uri("/v1/files/uploads/"), &tok);
        for (k, v) in hdrs {
            req = req.insert_header((k, v));
        }
        multipart(req, form(&[], Some(("h.txt", data)), &p))
    };
    for (hdrs, part, which) in [
        (
            vec![("Content-MD5", "AAAAAAAAAAAAAAAAAAAAAA==".to_string())],
            vec![],
            "Content-MD5",
        ),
        (
            vec![("X-Checksum-SHA256", bad_sha.clone())],
            vec![],
            "X-Checksum-SHA256",
        ),
        (
            vec![],
            vec![("X-Checksum-SHA256", bad_sha.clone())],
            "X-Checksum-SHA256",
        ),
        (
            vec![],
            vec![("Content-MD5", "00000000000000000000000000000000".to_string())],
            "Content-MD5",
        ),
    ] {
        let (s, v) = call(&env, send(hdrs, part)).await;
        assert_eq!((s, reason(&v)), (StatusCode::BAD_REQUEST, "bad_digest"), "{v}");
        assert_eq!(v["error"]["param"], which);
        assert_nothing_kept(&env);
    }
    let (s, v) = call(&env, send(vec![("Content-MD5", "not a digest".into())], vec![])).await;
    assert_eq!((s, reason(&v)), (StatusCode::BAD_REQUEST, "invalid_digest"));
    assert_nothing_kept(&env);
    let (s, v) = call(
        &env,
        send(
            vec![("Content-MD5", good_md5.into())],
            vec![("X-Checksum-SHA256", good_sha.to_uppercase())],
        ),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");

    // As form fields before `file` (S3 POST style), and conflicting with a header.
    let req = bearer(TestRequest::post().uri("/v1/files/uploads/?object_key=f"), &tok);
    let body = form(
        &[("X-Checksum-SHA256", bad_sha.as_str())],
        Some(("h.txt", data)),
        &[],
    );
    let (s, v) = call(&env, multipart(req, body)).await;
    assert_eq!((s, reason(&v)), (StatusCode::BAD_REQUEST, "bad_digest"));
    let req = bearer(TestRequest::post().uri("/v1/files/uploads/?object_key=f"), &tok)
        .insert_header(("X-Checksum-SHA256", good_sha.clone()));
    let body = form(
        &[("x-checksum-sha256", bad_sha.as_str())],
        Some(("h.txt", data)),
        &[],
    );
    let (s, v) = call(&env, multipart(req, body)).await;
    assert_eq!((s, reason(&v)), (StatusCode::BAD_REQUEST, "conflicting_digests"));
    let req = bearer(TestRequest::post().uri("/v1/files/uploads/?object_key=f"), &tok);
    let body = form(&[("Content-MD5", good_md5)], Some(("h.txt", data)), &[]);
    assert_eq!(call(&env, multipart(req, body)).await.0, StatusCode::CREATED);

    // On a chunk, and on completion (digests of the whole file).
    let up = open_upload(&env, &tok, "?object_key=c").await;
    let id = up["id"].as_str().unwrap();
    let p = &up["form_post_params"];
    let fields = [("upload_token", p["upload_token"].as_str().unwrap())];
    let url = path_of(up["form_post_url"].as_str().unwrap());
    let body = form(&fields, Some(("c", b"chunk")), &[("X-Checksum-SHA256", &bad_sha)]);
    let (s, v) = call(&env, multipart(TestRequest::post().uri(&url), body)).await;
    assert_eq!((s, reason(&v)), (StatusCode::BAD_REQUEST, "bad_digest"));
    assert_eq!(post_chunk(&env, &up, 0, 1, b"chunk").await.0, StatusCode::OK);
    let req = bearer(TestRequest::put().uri(&format!("/v1/files/uploads/{id}")), &tok)
        .insert_header(("X-Checksum-SHA256", bad_sha.clone()))
        .set_json(json!({"upload": {"nb_chunks": 1}}));
    let (s, v) = call(&env, req).await;
    assert_eq!((s, reason(&v)), (StatusCode::BAD_REQUEST, "bad_digest"));
    let (_, p) = get(&env, &tok, &format!("/v1/files/uploads/{id}")).await;
    assert_eq!(p["upload"]["status"], "FAILED");
    assert_eq!(p["upload"]["failure_reason"], "bad_digest");
    assert_eq!(file_count(&env), 2, "only the good one-shot files");
    assert!(!env.data_dir().join("uploads").join(id).exists());
}

#[actix_web::test]
async fn size_limit_answers_413_and_keeps_nothing() {
    let env = TestEnv::with_config(|c| c.storage.max_upload_size = 1000);
    let tok = env.token("mediahub");
    let (s, v) = one_shot(&env, &tok, "", "big", &[7u8; 1001]).await;
    assert_eq!(
        (s, reason(&v)),
        (StatusCode::PAYLOAD_TOO_LARGE, "upload_too_large")
    );
    assert_nothing_kept(&env);
    // A declared length far over the limit is refused before any byte is read.
    let req = bearer(TestRequest::post().uri("/v1/files/uploads/"), &tok)
        .insert_header((
            "Content-Type",
            format!("multipart/form-data; boundary={BOUNDARY}"),
        ))
        .insert_header(("Content-Length", "999999999"));
    let (s, v) = call(&env, req).await;
    assert_eq!(
        (s, reason(&v)),
        (StatusCode::PAYLOAD_TOO_LARGE, "upload_too_large")
    );
    let (s, _) = one_shot(&env, &tok, "", "fits", &[7u8; 1000]).await;
    assert_eq!(s, StatusCode::CREATED);

    // Chunks count together.
    let up = open_upload(&env, &tok, "").await;
    assert_eq!(post_chunk(&env, &up, 0, 2, &[1u8; 600]).await.0, StatusCode::OK);
    let (s, v) = post_chunk(&env, &up, 1, 2, &[2u8; 600]).await;
    assert_eq!(
        (s, reason(&v)),
        (StatusCode::PAYLOAD_TOO_LARGE, "upload_too_large")
    );
    assert_eq!(post_chunk(&env, &up, 1, 2, &[2u8; 400]).await.0, StatusCode::OK);
    assert_eq!(env.state.store.temp_count().unwrap(), 0);
}

#[actix_web::test]
async fn object_key_rules_each_answer_400_invalid_object_key() {
    let env = TestEnv::new();
    let tok = env.token("mediahub");
    let long = "k".repeat(1025);
    for key in [
        "",
        "/abs",
        "a/../b",
        "..",
        "a%00b",
        "a%0Ab",
        "a%1Fb",
        long.as_str(),
    ] {
        let (s, v) = one_shot(&env, &tok, &format!("?object_key={key}"), "f", b"x").await;
        assert_eq!(
            (s, reason(&v)),
            (StatusCode::BAD_REQUEST, "invalid_object_key"),
            "{key:?}"
        );
        assert_eq!(v["error"]["param"], "object_key");
        let req = bearer(
            TestRequest::post().uri(&format!("/v1/files/uploads/?object_key={key}")),
            &tok,
        );
        let (s, v) = call(&env, req).await;
        assert_eq!(
            (s, reason(&v)),
            (StatusCode::BAD_REQUEST, "invalid_object_key"),
            "{key:?}"
        );
    }
    assert_nothing_kept(&env);
    let ok = "k".repeat(1024);
    let (s, _) = one_shot(&env, &tok, &format!("?object_key={ok}"), "f", b"x").await;
    assert_eq!(s, StatusCode::CREATED);
}

#[actix_web::test]
async fn pipeline_and_object_key_are_unique_together() {
    let env = TestEnv::new();
    let tok = env.token("mediahub");
    let p1 = add_pipeline(&env, "permanent", 0);
    let (s, _) = one_shot(&env, &tok, "?object_key=out.mp4", "a", b"1").await;
    assert_eq!(s, StatusCode::CREATED);
    let (s, v) = one_shot(&env, &tok, "?object_key=out.mp4", "b", b"2").await;
    assert_eq!((s, reason(&v)), (StatusCode::CONFLICT, "object_key_exists"));
    assert_eq!(v["error"]["param"], "object_key");
    let (s, v) = one_shot(
        &env,
        &tok,
        &format!("?object_key=out.mp4&pipeline_id={p1}"),
        "c",
        b"3",
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(v["upload"]["file"]["pipeline"]["id"], p1.as_str());
    assert_eq!(
        v["upload"]["file"]["pipeline"]["href"],
        format!("http://localhost:8080/v1/pipelines/{p1}")
    );
    let (s, v) = one_shot(
        &env,
        &tok,
        &format!("?object_key=out.mp4&pipeline_id={p1}"),
        "d",
        b"4",
    )
    .await;
    assert_eq!((s, reason(&v)), (StatusCode::CONFLICT, "object_key_exists"));
    let (s, v) = one_shot(&env, &tok, "?pipeline_id=000000000000000000000000", "e", b"5").await;
    assert_eq!((s, reason(&v)), (StatusCode::NOT_FOUND, "pipeline_not_found"));
    // Three-step: refused at creation, and at completion when another upload got there first.
    let req = bearer(
        TestRequest::post().uri("/v1/files/uploads/?object_key=out.mp4"),
        &tok,
    );
    assert_eq!(call(&env, req).await.0, StatusCode::CONFLICT);
    let up = open_upload(&env, &tok, "?object_key=late.mp4").await;
    assert_eq!(post_chunk(&env, &up, 0, 1, b"late").await.0, StatusCode::OK);
    assert_eq!(
        one_shot(&env, &tok, "?object_key=late.mp4", "f", b"first")
            .await
            .0,
        StatusCode::CREATED
    );
    let (s, v) = put_complete(&env, &tok, up["id"].as_str().unwrap(), json!({"nb_chunks": 1})).await;
    assert_eq!((s, reason(&v)), (StatusCode::CONFLICT, "object_key_exists"));
    let (_, p) = get(
        &env,
        &tok,
        &format!("/v1/files/uploads/{}", up["id"].as_str().unwrap()),
    )
    .await;
    assert_eq!(p["upload"]["status"], "FAILED");
    assert_eq!(file_count(&env), 3);
    let c = env.state.catalog.conn().unwrap();
    for b in catalog::files::blob_ids(&c).unwrap() {
        assert!(env.state.store.exists(&b));
    }
    assert_eq!(blob_files(&env), 3, "the refused upload's bytes are gone");
}

#[actix_web::test]
async fn expires_at_is_validated_defaulted_and_taken_from_temporary_pipelines() {
    let env = TestEnv::with_config(|c| c.storage.default_file_ttl = 3600);
    let tok = env.token("mediahub");
    let (s, v) = one_shot(&env, &tok, &format!("?expires_at={NOW_MS}"), "a", b"a").await;
    assert_eq!((s, reason(&v)), (StatusCode::BAD_REQUEST, "expires_at_in_past"));
    let (s, v) = one_shot(&env, &tok, "?expires_at=soon", "a", b"a").await;
    assert_eq!((s, reason(&v)), (StatusCode::BAD_REQUEST, "invalid_expires_at"));
    let (_, v) = one_shot(&env, &tok, "", "a", b"a").await;
    assert_eq!(v["upload"]["file"]["expires_at"], NOW_MS + 3_600_000);
    let (_, v) = one_shot(&env, &tok, "?expires_at=0", "b", b"b").await;
    assert_eq!(v["upload"]["file"]["expires_at"], Value::Null);
    let tmp = add_pipeline(&env, "temporary", 60);
    let (_, v) = one_shot(&env, &tok, &format!("?pipeline_id={tmp}"), "c", b"c").await;
    assert_eq!(v["upload"]["file"]["expires_at"], NOW_MS + 60_000);
    let up = open_upload(&env, &tok, &format!("?expires_at={}", NOW_MS + 5000)).await;
    assert_eq!(up["expires_at"], NOW_MS + 5000);
}

#[actix_web::test]
async fn identical_content_shares_one_blob_and_deleting_one_file_keeps_the_other() {
    let env = TestEnv::new();
    let tok = env.token("mediahub");
    let (_, a) = one_shot(&env, &tok, "?object_key=a", "a", b"same bytes").await;
    let (_, b) = one_shot(&env, &tok, "?object_key=b", "b", b"same bytes").await;
    let blob = a["upload"]["file"]["sha256"].as_str().unwrap().to_string();
    assert_eq!(b["upload"]["file"]["sha256"], blob.as_str());
    assert_eq!(blob_files(&env), 1);
    let del = |id: &str| bearer(TestRequest::delete().uri(&format!("/v1/files/{id}")), &tok);
    let (s, _) = call(&env, del(a["upload"]["file"]["id"].as_str().unwrap())).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    assert!(env.state.store.exists(&blob), "still used by b");
    let (s, _) = get(
        &env,
        &tok,
        &format!("/v1/files/{}", b["upload"]["file"]["id"].as_str().unwrap()),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = call(&env, del(b["upload"]["file"]["id"].as_str().unwrap())).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    assert!(
        !env.state.store.exists(&blob),
        "the last reference took the bytes"
    );
    let c = env.state.catalog.conn().unwrap();
    assert!(catalog::files::blob_ids(&c).unwrap().is_empty());
}

#[test]
fn concurrent_identical_uploads_and_deletes_never_leave_a_row_without_its_blob() {
    use filegate::files::{self, Content, Placement, Source};
    let env = TestEnv::new();
    let state = env.state.clone();
    let now = env.clock.now_ms();
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let state = state.clone();
            std::thread::spawn(move || {
                for i in 0..40 {
                    let mut ing = files::ingest::Ingest::new(&state.store).unwrap();
                    ing.write(b"shared content").unwrap();
                    let done = ing.finish().unwrap();
                    let p = Placement {
                        file_id: filegate::ids::new_id(now / 1000),
                        name: "s".into(),
                        object_key: format!("t{t}/{i}"),
                        pipeline_id: None,
                        job_id: None,
                        app_id: None,
                        autograph: false,
                        expires_at: 0,
                        archives: Default::default(),
                    };
                    let content = Content {
                        source: Source::Temp(done.temp),
                        digests: done.digests,
                        head: done.head,
                    };
                    let mut c = state.catalog.conn().unwrap();
                    let row = files::store_file(&mut c, &state.store, &p, content, now, |_| Ok(())).unwrap();
                    assert!(state.store.exists(&row.blob_id));
                    if i % 2 == 0 {
                        files::delete_file(&mut c, &state.store, &row.id)
                            .unwrap()
                            .unwrap();
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let c = state.catalog.conn().unwrap();
    let (rows, total) = catalog::files::list(
        &c,
        &catalog::files::ListQuery {
            limit: 1000,
            ascending: true,
            now_ms: now,
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(total, 80);
    for r in rows {
        assert!(state.store.exists(&r.blob_id), "row {} lacks its blob", r.id);
    }
    let refs: i64 = c.query_row("SELECT refs FROM blobs", [], |r| r.get(0)).unwrap();
    assert_eq!(refs, 80);
}

#[actix_web::test]
async fn the_sweep_removes_expired_files_and_abandoned_uploads() {
    let env = TestEnv::new();
    let tok = env.token("mediahub");
    let (_, v) = one_shot(
        &env,
        &tok,
        &format!("?expires_at={}", NOW_MS + 10_000),
        "e",
        b"expiring",
    )
    .await;
    let expiring = v["upload"]["file"]["id"].as_str().unwrap().to_string();
    let (_, v) = one_shot(&env, &tok, "", "k", b"kept").await;
    let kept = v["upload"]["file"]["id"].as_str().unwrap().to_string();
    let up = open_upload(&env, &tok, "").await;
    assert_eq!(post_chunk(&env, &up, 0, 2, b"half").await.0, StatusCode::OK);
    let upload_dir = env.data_dir().join("uploads").join(up["id"].as_str().unwrap());
    assert!(upload_dir.exists());

    env.clock.advance_secs(11);
    // Expired files are gone for readers at once, before any sweep.
    let (s, _) = get(&env, &tok, &format!("/v1/files/{expiring}")).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let sweep = || {
        let mut c = env.state.catalog.conn().unwrap();
        filegate::files::sweep::run(&mut c, &env.state.store, env.clock.now_ms()).unwrap()
    };
    let r = sweep();
    assert_eq!((r.expired_files, r.stale_uploads), (1, 0));
    assert_eq!(blob_files(&env), 1);
    assert!(upload_dir.exists(), "an upload touched within 24 h stays");

    env.clock.advance_secs(24 * 3600);
    let r = sweep();
    assert_eq!(
        (r.expired_files, r.stale_uploads),
        (0, 3),
        "the open one and the two one-shot records"
    );
    assert!(!upload_dir.exists());
    let tok = env.token("mediahub");
    let (s, _) = get(&env, &tok, &format!("/v1/files/{kept}")).await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = get(
        &env,
        &tok,
        &format!("/v1/files/uploads/{}", up["id"].as_str().unwrap()),
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

#[actix_web::test]
async fn recovery_removes_crash_leftovers_and_reopens_completing_uploads() {
    let env = TestEnv::new();
    let tok = env.token("mediahub");
    let up = open_upload(&env, &tok, "").await;
    let id = up["id"].as_str().unwrap().to_string();
    assert_eq!(post_chunk(&env, &up, 0, 1, b"chunk").await.0, StatusCode::OK);
    let (_, kept) = one_shot(&env, &tok, "", "k", b"kept").await;
    let d = env.data_dir();
    std::fs::write(d.join("tmp/0123.part"), b"partial").unwrap();
    std::fs::write(
        d.join("uploads").join(&id).join("aaaaaaaaaaaaaaaaaaaaaaaa"),
        b"orphan chunk",
    )
    .unwrap();
    let orphan = sha256_hex(b"orphan blob");
    let p = env.state.store.path(&orphan).unwrap();
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(&p, b"orphan blob").unwrap();
    {
        let c = env.state.catalog.conn().unwrap();
        c.execute("UPDATE uploads SET status = 'COMPLETING' WHERE id = ?1", [&id])
            .unwrap();
    }
    let r = {
        let mut c = env.state.catalog.conn().unwrap();
        filegate::files::sweep::recover(&mut c, &env.state.store, NOW_MS).unwrap()
    };
    assert_eq!(
        (r.temp_files, r.reopened_uploads, r.orphan_chunks, r.orphan_blobs),
        (1, 1, 1, 1)
    );
    assert!(!p.exists());
    assert!(env
        .state
        .store
        .exists(kept["upload"]["file"]["sha256"].as_str().unwrap()));
    let (s, v) = put_complete(&env, &tok, &id, json!({"nb_chunks": 1})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["upload"]["file"]["sha256"], sha256_hex(b"chunk"));
}

#[actix_web::test]
async fn upload_answers_and_refusals_render_as_xml() {
    let env = TestEnv::with_config(|c| c.storage.max_upload_size = 10);
    let tok = env.token("mediahub");
    let app = env.service().await;
    let req = bearer(
        TestRequest::post().uri("/v1/files/uploads/?format=xml&object_key=a"),
        &tok,
    );
    let res = test::call_service(
        &app,
        multipart(req, form(&[], Some(("a.txt", b"tiny")), &[])).to_request(),
    )
    .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let xml = String::from_utf8(test::read_body(res).await.to_vec()).unwrap();
    assert!(
        xml.contains("<upload><id>") && xml.contains("<status>COMPLETED</status>"),
        "{xml}"
    );
    assert!(
        xml.contains("<file><id>") && xml.contains("<name>a.txt</name>"),
        "{xml}"
    );
    let req = bearer(TestRequest::post().uri("/v1/files/uploads/?format=xml"), &tok);
    let res = test::call_service(
        &app,
        multipart(req, form(&[], Some(("b", &[1u8; 11])), &[])).to_request(),
    )
    .await;
    assert_eq!(res.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let xml = String::from_utf8(test::read_body(res).await.to_vec()).unwrap();
    assert!(xml.contains("<reason>upload_too_large</reason>"), "{xml}");
}
