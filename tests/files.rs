//! The Files resource: list filters and paging, get, delete (SPEC §3).

mod common;

use actix_web::http::StatusCode;
use actix_web::test::{self, TestRequest};
use common::*;
use filegate::catalog::files::{self, FileRow};
use filegate::catalog::pipelines::{self, PipelineRow};
use serde_json::Value;

async fn call(env: &TestEnv, req: TestRequest) -> (StatusCode, Value, String) {
    let app = env.service().await;
    let res = test::call_service(&app, req.to_request()).await;
    let status = res.status();
    let bytes = test::read_body(res).await;
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let v = serde_json::from_str(&text).unwrap_or(Value::Null);
    (status, v, text)
}

fn get(path: &str, tok: &str) -> TestRequest {
    TestRequest::get()
        .uri(path)
        .insert_header(("Authorization", format!("Bearer {tok}")))
}

fn pipeline(env: &TestEnv, n: u8) -> String {
    let id = format!("{:024x}", 0xabc000 + n as u64);
    let c = env.state.catalog.conn().unwrap();
    pipelines::insert(
        &c,
        &PipelineRow {
            id: id.clone(),
            name: format!("p{n}"),
            description: String::new(),
            mode: "permanent".into(),
            default_object_timeout: 0,
            created_at: NOW_MS,
            updated_at: NOW_MS,
        },
    )
    .unwrap();
    id
}

/// Inserts a file row (and its blob row) directly; `n` orders creation and size.
fn row(env: &TestEnv, n: i64, kind: &str, pipeline: Option<&str>, job: Option<&str>) -> String {
    let id = format!("{:024x}", 0x100 + n);
    let blob = format!("{:064x}", 0x200 + n);
    let c = env.state.catalog.conn().unwrap();
    files::insert(
        &c,
        &FileRow {
            id: id.clone(),
            name: format!("name{}", 9 - n),
            title: format!("name{}", 9 - n),
            kind: kind.into(),
            subtype: None,
            mime_type: "application/octet-stream".into(),
            size: 100 + n,
            md5: "0".repeat(32),
            sha256: blob.clone(),
            blob_id: blob,
            autograph: false,
            object_key: format!("k{n}"),
            pipeline_id: pipeline.map(str::to_string),
            job_id: job.map(str::to_string),
            app_id: None,
            created_at: NOW_MS + n,
            updated_at: NOW_MS + n,
            expires_at: 0,
            revoked_before: 0,
            missing_since: 0,
        },
    )
    .unwrap();
    id
}

fn ids(v: &Value) -> Vec<&str> {
    v["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["id"].as_str().unwrap())
        .collect()
}

#[actix_web::test]
async fn list_filters_by_type_pipeline_and_job_and_pages() {
    let env = TestEnv::new();
    let tok = env.token("mediahub_read");
    let p = pipeline(&env, 1);
    let job = "0000000000000000000000aa";
    let a = row(&env, 1, "file", None, None);
    let b = row(&env, 2, "archive", Some(&p), None);
    let c = row(&env, 3, "file", Some(&p), Some(job));
    let d = row(&env, 4, "file", None, None);

    let (s, v, _) = call(&env, get("/v1/files/", &tok)).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(ids(&v), [&a, &b, &c, &d].map(String::as_str));
    assert_eq!(
        (v["total"].as_u64(), v["start"].as_u64(), v["limit"].as_u64()),
        (Some(4), Some(0), Some(1000))
    );

    let cases: Vec<(String, Vec<&str>, u64)> = vec![
        ("type=archive".into(), vec![b.as_str()], 1),
        ("type=file".into(), vec![a.as_str(), c.as_str(), d.as_str()], 3),
        (format!("pipeline.id={p}"), vec![b.as_str(), c.as_str()], 2),
        (format!("job.id={job}"), vec![c.as_str()], 1),
        (format!("pipeline.id={p}&type=file"), vec![c.as_str()], 1),
        (
            "direction=-1".into(),
            vec![d.as_str(), c.as_str(), b.as_str(), a.as_str()],
            4,
        ),
        (
            "sort=name".into(),
            vec![d.as_str(), c.as_str(), b.as_str(), a.as_str()],
            4,
        ),
        (
            "sort=size&direction=-1&start=1&limit=2".into(),
            vec![c.as_str(), b.as_str()],
            4,
        ),
        ("start=3".into(), vec![d.as_str()], 4),
        ("start=10".into(), vec![], 4),
        ("limit=0".into(), vec![], 4),
    ];
    for (q, want, total) in cases {
        let (s, v, _) = call(&env, get(&format!("/v1/files?{q}"), &tok)).await;
        assert_eq!(s, StatusCode::OK, "{q}: {v}");
        assert_eq!(ids(&v), want, "{q}");
        assert_eq!(v["total"], total, "{q}");
    }
    let b_file = &call(
        &env,
        get(&format!("/v1/files/?pipeline.id={p}&type=archive"), &tok),
    )
    .await
    .1["files"][0];
    assert_eq!(b_file["elements"], serde_json::json!([]));
    assert_eq!(b_file["pipeline"]["id"], p.as_str());
}

#[actix_web::test]
async fn list_refuses_bad_filters_and_unknown_parameters() {
    let env = TestEnv::new();
    let tok = env.token("mediahub");
    for (q, why, param) in [
        ("type=movie", "invalid_type", "type"),
        ("sort=colour", "invalid_sort", "sort"),
        ("direction=up", "invalid_direction", "direction"),
        ("limit=5001", "invalid_limit", "limit"),
        ("pipeline.id=nope", "invalid_id", "pipeline.id"),
        ("pipeline_id=x", "unknown_parameter", "pipeline_id"),
    ] {
        let (s, v, _) = call(&env, get(&format!("/v1/files/?{q}"), &tok)).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{q}");
        assert_eq!(
            (reason(&v), v["error"]["param"].as_str()),
            (why, Some(param)),
            "{q}"
        );
    }
    let (s, v, _) = call(&env, TestRequest::get().uri("/v1/files/")).await;
    assert_eq!((s, reason(&v)), (StatusCode::FORBIDDEN, "missing_token"));
    let w = env.token("mediahub_write");
    let (s, v, _) = call(&env, get("/v1/files/", &w)).await;
    assert_eq!((s, reason(&v)), (StatusCode::FORBIDDEN, "insufficient_scope"));
}

#[actix_web::test]
async fn list_and_get_leave_out_expired_files_and_render_xml() {
    let env = TestEnv::new();
    let tok = env.token("mediahub");
    let a = row(&env, 1, "file", None, None);
    let b = row(&env, 2, "file", None, None);
    {
        let c = env.state.catalog.conn().unwrap();
        c.execute(
            "UPDATE files SET expires_at = ?2 WHERE id = ?1",
            rusqlite::params![b, NOW_MS],
        )
        .unwrap();
    }
    let (_, v, _) = call(&env, get("/v1/files/", &tok)).await;
    assert_eq!(ids(&v), [a.as_str()]);
    let (s, _, _) = call(&env, get(&format!("/v1/files/{b}"), &tok)).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _, xml) = call(&env, get("/v1/files/?format=xml", &tok)).await;
    assert_eq!(s, StatusCode::OK);
    assert!(xml.contains(&format!("<files><file><id>{a}</id>")), "{xml}");
    assert!(xml.contains("<total>1</total>"), "{xml}");
}

#[actix_web::test]
async fn get_shows_mediahub_fields_and_unknown_ids_are_404() {
    let env = TestEnv::with_config(|c| c.server.public_url = "https://dl.example.com/".into());
    let tok = env.token("mediahub");
    let p = pipeline(&env, 1);
    let id = row(&env, 1, "file", Some(&p), Some("0000000000000000000000aa"));
    let (s, v, _) = call(&env, get(&format!("/v1/files/{id}/"), &tok)).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let f = &v["file"];
    let keys: Vec<&str> = f.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "id",
            "name",
            "title",
            "type",
            "subtype",
            "mime_type",
            "size",
            "md5_checksum",
            "sha256",
            "autograph",
            "object_key",
            "pipeline",
            "job",
            "elements",
            "created_at",
            "updated_at",
            "expires_at",
            "uri"
        ]
    );
    assert_eq!(
        f["uri"],
        format!("https://dl.example.com/v1/files/downloads/?file_id={id}")
    );
    assert_eq!(
        f["job"]["href"],
        "https://dl.example.com/v1/jobs/0000000000000000000000aa"
    );
    assert_eq!(
        f["pipeline"]["href"],
        format!("https://dl.example.com/v1/pipelines/{p}")
    );
    for path in ["/v1/files/ffffffffffffffffffffffff", "/v1/files/nothex"] {
        let (s, v, _) = call(&env, get(path, &tok)).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(v["error"]["error_code"], "0x0230002");
    }
    let (_, v, _) = call(&env, get("/v1/files/ffffffffffffffffffffffff", &tok)).await;
    assert_eq!(reason(&v), "file_not_found");
    assert_eq!(v["error"]["error_message"], "Requested file does not exist");
}

#[actix_web::test]
async fn delete_needs_write_removes_the_file_and_answers_404_after() {
    let env = TestEnv::new();
    let id = row(&env, 1, "file", None, None);
    let del = |tok: &str| {
        TestRequest::delete()
            .uri(&format!("/v1/files/{id}"))
            .insert_header(("Authorization", format!("Bearer {tok}")))
    };
    let r = env.token("mediahub_read");
    let (s, v, _) = call(&env, del(&r)).await;
    assert_eq!((s, reason(&v)), (StatusCode::FORBIDDEN, "insufficient_scope"));
    let w = env.token("mediahub_write");
    let (s, _, body) = call(&env, del(&w)).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    assert!(body.is_empty());
    let (s, v, _) = call(&env, del(&w)).await;
    assert_eq!((s, reason(&v)), (StatusCode::NOT_FOUND, "file_not_found"));
    let c = env.state.catalog.conn().unwrap();
    assert!(files::get(&c, &id).unwrap().is_none());
    assert!(
        files::blob_ids(&c).unwrap().is_empty(),
        "the blob row went with its last file"
    );
}

#[actix_web::test]
async fn a_file_marked_missing_says_so_in_get_and_list_and_can_be_deleted() {
    let env = TestEnv::new();
    let tok = env.token("mediahub");
    let gone = row(&env, 1, "file", None, None);
    let kept = row(&env, 2, "file", None, None);
    let blob = format!("{:064x}", 0x201);
    {
        let c = env.state.catalog.conn().unwrap();
        filegate::catalog::maintenance::mark_missing(&c, &blob, NOW_MS).unwrap();
    }
    let (s, v, _) = call(&env, get(&format!("/v1/files/{gone}"), &tok)).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["file"]["missing"], true);
    let (_, v, _) = call(&env, get("/v1/files/", &tok)).await;
    let listed: Vec<(&str, bool)> = v["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["id"].as_str().unwrap(), f.get("missing").is_some()))
        .collect();
    assert_eq!(listed, [(gone.as_str(), true), (kept.as_str(), false)]);
    let (s, _, _) = call(
        &env,
        TestRequest::delete()
            .uri(&format!("/v1/files/{gone}"))
            .insert_header(("Authorization", format!("Bearer {tok}"))),
    )
    .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
}
