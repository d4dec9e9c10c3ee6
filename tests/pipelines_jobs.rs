//! Pipelines and jobs: the resources, every job move, outputs joining their job, the
//! download gate, key resolution across pipelines, temporary expiry, forced deletes,
//! scopes, and the MediaHub client's job listing (SPEC §4).

mod common;

use actix_web::http::StatusCode;
use actix_web::test::TestRequest;
use common::*;
use filegate::catalog::files::{self as catalog_files, FileRow};
use filegate::clock::Clock;
use filegate::jobs::download_gate;
use serde_json::{json, Value};

const BOUNDARY: &str = "XyZboundary42";

fn form(file_name: &str, data: &[u8]) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(
        format!(
            "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{file_name}\"\r\n\
             Content-Type: application/octet-stream\r\n\r\n"
        )
        .as_bytes(),
    );
    b.extend_from_slice(data);
    b.extend_from_slice(format!("\r\n--{BOUNDARY}--\r\n").as_bytes());
    b
}

async fn put(env: &TestEnv, tok: &str, path: &str, body: Value) -> (StatusCode, Value) {
    call(env, bearer(TestRequest::put().uri(path), tok).set_json(body)).await
}

async fn delete(env: &TestEnv, tok: &str, path: &str) -> (StatusCode, Value) {
    call(env, bearer(TestRequest::delete().uri(path), tok)).await
}

/// One-shot upload of `data` named `name` with `query`; returns (status, body).
async fn upload(env: &TestEnv, tok: &str, query: &str, name: &str, data: &[u8]) -> (StatusCode, Value) {
    let req = bearer(
        TestRequest::post().uri(&format!("/v1/files/uploads/{query}")),
        tok,
    )
    .insert_header((
        "Content-Type",
        format!("multipart/form-data; boundary={BOUNDARY}"),
    ))
    .set_payload(form(name, data));
    call(env, req).await
}

/// Uploads and returns the new file.
async fn upload_ok(env: &TestEnv, tok: &str, query: &str, name: &str, data: &[u8]) -> Value {
    let (s, v) = upload(env, tok, query, name, data).await;
    assert_eq!(s, StatusCode::CREATED, "{query}: {v}");
    v["upload"]["file"].clone()
}

async fn pipeline(env: &TestEnv, tok: &str, body: Value) -> String {
    let (s, v) = post(env, tok, "/v1/pipelines/", body).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    v["pipeline"]["id"].as_str().unwrap().to_string()
}

async fn permanent(env: &TestEnv, tok: &str) -> String {
    pipeline(env, tok, json!({"pipeline": {"name": "conversions"}})).await
}

/// A job in `pipeline` with these outputs and the default prefix; returns the job.
async fn job(env: &TestEnv, tok: &str, pipeline: &str, outputs: &[&str], input: Option<&str>) -> Value {
    let outputs: Vec<Value> = outputs.iter().map(|o| json!({"output_name": o})).collect();
    let mut body = json!({"job": {"pipeline": {"id": pipeline}, "outputs": outputs}});
    if let Some(f) = input {
        body["job"]["input"] = json!({"input_name": "source", "file": {"id": f}});
    }
    let (s, v) = post(env, tok, "/v1/jobs/", body).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    v["job"].clone()
}

async fn move_job(env: &TestEnv, tok: &str, id: &str, status: &str) -> (StatusCode, Value) {
    put(
        env,
        tok,
        &format!("/v1/jobs/{id}"),
        json!({"job": {"status": status}}),
    )
    .await
}

fn id(v: &Value) -> String {
    v["id"].as_str().unwrap().to_string()
}

fn file_row(env: &TestEnv, id: &str) -> FileRow {
    let c = env.state.catalog.conn().unwrap();
    catalog_files::get(&c, id).unwrap().unwrap()
}

/// The gate's answer for file `id`: `Ok` or the error's (status, reason).
fn gate(env: &TestEnv, id: &str) -> Result<(), (u16, String)> {
    let c = env.state.catalog.conn().unwrap();
    download_gate(&c, &file_row(env, id)).map_err(|e| (e.status().as_u16(), e.reason.to_string()))
}

fn not_finished() -> Result<(), (u16, String)> {
    Err((409, "job_not_finished".into()))
}

fn failed() -> Result<(), (u16, String)> {
    Err((409, "job_failed".into()))
}

#[actix_web::test]
async fn pipelines_are_created_listed_read_and_rendered_as_xml() {
    let env = TestEnv::new();
    let tok = env.token("mediahub");
    let (s, v) = post(
        &env,
        &tok,
        "/v1/pipelines",
        json!({"pipeline": {"name": "previews", "description": "short-lived",
                            "store_options": {"mode": "temporary"}}}),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let tmp = &v["pipeline"];
    assert_eq!(tmp["store_options"]["mode"], "temporary");
    assert_eq!(tmp["default_object_timeout"], 604_800, "7 days by default");
    assert_eq!(
        (tmp["created_at"].as_i64(), tmp["description"].as_str()),
        (Some(NOW_MS), Some("short-lived"))
    );
    env.clock.advance_secs(1);
    let perm = permanent(&env, &tok).await;
    let (s, v) = get(&env, &tok, &format!("/v1/pipelines/{perm}/")).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        (
            v["pipeline"]["store_options"]["mode"].as_str(),
            v["pipeline"]["default_object_timeout"].as_i64()
        ),
        (Some("permanent"), Some(0))
    );
    let (s, v) = get(&env, &tok, "/v1/pipelines/?direction=-1").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        (v["total"].as_u64(), v["start"].as_u64(), v["limit"].as_u64()),
        (Some(2), Some(0), Some(1000))
    );
    assert_eq!(v["pipelines"][0]["id"], perm.as_str(), "newest first");
    let (_, v) = get(&env, &tok, "/v1/pipelines?start=1&limit=1").await;
    assert_eq!(v["pipelines"].as_array().unwrap().len(), 1);
    assert_eq!(v["pipelines"][0]["id"], perm.as_str());
    let (s, v) = call(
        &env,
        bearer(TestRequest::get().uri("/v1/pipelines/?format=xml"), &tok),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let xml = v.as_str().unwrap();
    assert!(xml.contains("<pipelines><pipeline><id>"), "{xml}");
    assert!(
        xml.contains("<store_options><mode>temporary</mode></store_options>"),
        "{xml}"
    );
    assert!(xml.contains("<total>2</total>"), "{xml}");

    let (s, v) = get(&env, &tok, "/v1/pipelines/0123456789abcdef01234567").await;
    assert_eq!((s, reason(&v)), (StatusCode::NOT_FOUND, "pipeline_not_found"));
    assert_eq!(v["error"]["error_message"], "Requested pipeline does not exist");
    for (body, why, param) in [
        (json!({"pipeline": {}}), "missing_parameter", "name"),
        (
            json!({"pipeline": {"name": "x", "store_options": {"mode": "forever"}}}),
            "invalid_mode",
            "store_options.mode",
        ),
        (
            json!({"pipeline": {"name": "x", "store_options": {"mode": "temporary"}, "default_object_timeout": 0}}),
            "invalid_default_object_timeout",
            "default_object_timeout",
        ),
        (
            json!({"pipeline": {"name": "x", "default_object_timeout": "soon"}}),
            "invalid_default_object_timeout",
            "default_object_timeout",
        ),
        (
            json!({"pipeline": {"name": "x", "modes": 1}}),
            "unknown_field",
            "modes",
        ),
    ] {
        let (s, v) = post(&env, &tok, "/v1/pipelines/", body.clone()).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(
            (reason(&v), v["error"]["param"].as_str()),
            (why, Some(param)),
            "{body}"
        );
    }
    let (s, v) = get(&env, &tok, "/v1/pipelines/?sort=size").await;
    assert_eq!((s, reason(&v)), (StatusCode::BAD_REQUEST, "invalid_sort"));
}

#[actix_web::test]
async fn every_job_transition_is_allowed_or_refused_with_409_invalid_transition() {
    let env = TestEnv::new();
    let tok = env.token("mediahub");
    let p = permanent(&env, &tok).await;
    let j = job(&env, &tok, &p, &["out.mp4"], None).await;
    let path = format!("/v1/jobs/{}", id(&j));
    assert_eq!(
        (j["status"].as_str(), j["percentage_completed"].as_i64()),
        (Some("QUEUED"), Some(0))
    );

    let refused = |v: &Value| {
        (
            reason(v).to_string(),
            v["error"]["param"].as_str().map(String::from),
        )
    };
    // From QUEUED: only RUNNING; no progress before it runs.
    for to in ["SUCCESS", "FAILED"] {
        let (s, v) = move_job(&env, &tok, &id(&j), to).await;
        assert_eq!(s, StatusCode::CONFLICT, "QUEUED → {to}");
        assert_eq!(refused(&v), ("invalid_transition".into(), Some("status".into())));
    }
    let (s, v) = put(&env, &tok, &path, json!({"job": {"percentage_completed": 5}})).await;
    assert_eq!((s, reason(&v)), (StatusCode::CONFLICT, "invalid_transition"));
    let (s, v) = move_job(&env, &tok, &id(&j), "QUEUED").await;
    assert_eq!(
        (s, v["job"]["status"].as_str()),
        (StatusCode::OK, Some("QUEUED")),
        "a repeated report"
    );

    env.clock.advance_secs(10);
    let (s, v) = put(
        &env,
        &tok,
        &path,
        json!({"job": {"status": "RUNNING", "percentage_completed": 1}}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        (
            v["job"]["status"].as_str(),
            v["job"]["percentage_completed"].as_i64()
        ),
        (Some("RUNNING"), Some(1))
    );
    assert_eq!(v["job"]["started_at"], NOW_MS + 10_000);
    assert_eq!(v["job"]["updated_at"], NOW_MS + 10_000);
    // From RUNNING: progress, then SUCCESS or FAILED; never back to QUEUED.
    let (s, v) = move_job(&env, &tok, &id(&j), "QUEUED").await;
    assert_eq!((s, reason(&v)), (StatusCode::CONFLICT, "invalid_transition"));
    let (s, v) = put(&env, &tok, &path, json!({"percentage_completed": 40})).await;
    assert_eq!(
        (s, v["job"]["percentage_completed"].as_i64()),
        (StatusCode::OK, Some(40)),
        "unwrapped body works too"
    );
    assert_eq!(
        v["job"]["outputs"][0]["percentage_completed"], 40,
        "not stored yet: the job's"
    );
    for (body, why) in [
        (
            json!({"job": {"percentage_completed": 101}}),
            "invalid_percentage",
        ),
        (json!({"job": {"percentage_completed": -1}}), "invalid_percentage"),
        (
            json!({"job": {"percentage_completed": 5.5}}),
            "invalid_percentage",
        ),
        (json!({"job": {"status": "DONE"}}), "invalid_status"),
        (
            json!({"job": {"status": "SUCCESS", "percentage_completed": 90}}),
            "invalid_percentage",
        ),
        (json!({"job": {}}), "missing_parameter"),
        (
            json!({"job": {"status": "RUNNING", "progress": 3}}),
            "unknown_field",
        ),
    ] {
        let (s, v) = put(&env, &tok, &path, body.clone()).await;
        assert_eq!((s, reason(&v)), (StatusCode::BAD_REQUEST, why), "{body}");
    }
    let (s, v) = move_job(&env, &tok, &id(&j), "RUNNING").await;
    assert_eq!(
        (s, v["job"]["percentage_completed"].as_i64()),
        (StatusCode::OK, Some(40)),
        "RUNNING again: no change"
    );
    env.clock.advance_secs(5);
    let (s, v) = put(
        &env,
        &tok,
        &path,
        json!({"job": {"status": "SUCCESS", "percentage_completed": 100}}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        (
            v["job"]["status"].as_str(),
            v["job"]["percentage_completed"].as_i64()
        ),
        (Some("SUCCESS"), Some(100))
    );
    assert_eq!(v["job"]["finished_at"], NOW_MS + 15_000);
    // From SUCCESS: nothing but a repeat, or a retraction to FAILED.
    for to in ["QUEUED", "RUNNING"] {
        let (s, v) = move_job(&env, &tok, &id(&j), to).await;
        assert_eq!(
            (s, reason(&v)),
            (StatusCode::CONFLICT, "invalid_transition"),
            "SUCCESS → {to}"
        );
    }
    let (s, v) = put(&env, &tok, &path, json!({"job": {"percentage_completed": 50}})).await;
    assert_eq!((s, reason(&v)), (StatusCode::CONFLICT, "invalid_transition"));
    let (s, _) = put(
        &env,
        &tok,
        &path,
        json!({"job": {"status": "SUCCESS", "percentage_completed": 100}}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "a repeated SUCCESS report is harmless");
    let (s, v) = move_job(&env, &tok, &id(&j), "FAILED").await;
    assert_eq!((s, v["job"]["status"].as_str()), (StatusCode::OK, Some("FAILED")));
    // FAILED is final.
    for to in ["QUEUED", "RUNNING", "SUCCESS"] {
        let (s, v) = move_job(&env, &tok, &id(&j), to).await;
        assert_eq!(
            (s, reason(&v)),
            (StatusCode::CONFLICT, "invalid_transition"),
            "FAILED → {to}"
        );
    }
    let (s, _) = move_job(&env, &tok, &id(&j), "FAILED").await;
    assert_eq!(s, StatusCode::OK);

    // RUNNING → FAILED directly.
    let k = job(&env, &tok, &p, &["x"], None).await;
    assert_eq!(move_job(&env, &tok, &id(&k), "RUNNING").await.0, StatusCode::OK);
    let (s, v) = put(
        &env,
        &tok,
        &format!("/v1/jobs/{}/", id(&k)),
        json!({"job": {"status": "FAILED", "percentage_completed": 70}}),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        (
            v["job"]["status"].as_str(),
            v["job"]["percentage_completed"].as_i64()
        ),
        (Some("FAILED"), Some(70))
    );
    let (s, v) = get(&env, &tok, &format!("/v1/jobs/{}", id(&k))).await;
    assert_eq!((s, v["job"]["status"].as_str()), (StatusCode::OK, Some("FAILED")));

    let (s, v) = move_job(&env, &tok, "0123456789abcdef01234567", "RUNNING").await;
    assert_eq!((s, reason(&v)), (StatusCode::NOT_FOUND, "job_not_found"));
    assert_eq!(v["error"]["error_message"], "Requested job does not exist");
    let (s, _) = get(&env, &tok, "/v1/jobs/not-an-id").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

#[actix_web::test]
async fn outputs_join_their_job_and_the_gate_holds_them_until_success() {
    let env = TestEnv::new();
    let tok = env.token("mediahub");
    let p = permanent(&env, &tok).await;
    let j = job(&env, &tok, &p, &["hd.mp4", "sd.mp4"], None).await;
    let jid = id(&j);
    let prefix = j["output_prefix"].as_str().unwrap().to_string();
    assert_eq!(prefix, format!("{jid}/"), "the default prefix, expanded");
    assert_eq!(j["outputs"][0]["object_key"], format!("{jid}/hd.mp4"));
    assert_eq!(j["outputs"][0]["file"], Value::Null);

    let hd = upload_ok(
        &env,
        &tok,
        &format!("?pipeline_id={p}&object_key={prefix}hd.mp4"),
        "hd.mp4",
        b"hd bytes",
    )
    .await;
    assert_eq!(hd["job"]["id"], jid.as_str(), "the file links to its job");
    assert_eq!(hd["job"]["href"], format!("http://localhost:8080/v1/jobs/{jid}"));
    // Three-step uploads join their job too.
    let (s, up) = post(
        &env,
        &tok,
        &format!("/v1/files/uploads/?pipeline_id={p}&object_key={prefix}sd.mp4"),
        json!({}),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{up}");
    let form_url = up["upload"]["form_post_url"].as_str().unwrap();
    let form_path = &form_url[form_url.find("/v1/").unwrap()..];
    let token = up["upload"]["form_post_params"]["upload_token"].as_str().unwrap();
    let mut body =
        format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"upload_token\"\r\n\r\n{token}\r\n")
            .into_bytes();
    body.extend(form("sd.mp4", b"sd bytes"));
    let (s, v) = call(
        &env,
        TestRequest::post()
            .uri(form_path)
            .insert_header((
                "Content-Type",
                format!("multipart/form-data; boundary={BOUNDARY}"),
            ))
            .set_payload(body),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let upload_id = up["upload"]["id"].as_str().unwrap();
    let (s, v) = put(
        &env,
        &tok,
        &format!("/v1/files/uploads/{upload_id}"),
        json!({"upload": {"nb_chunks": 1}}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let sd = v["upload"]["file"].clone();
    assert_eq!(sd["job"]["id"], jid.as_str());
    // Outside the prefix, or without the pipeline: no job.
    let loose = upload_ok(
        &env,
        &tok,
        &format!("?pipeline_id={p}&object_key=other/hd.mp4"),
        "x",
        b"loose",
    )
    .await;
    assert_eq!(loose["job"], Value::Null);
    let plain = upload_ok(&env, &tok, &format!("?object_key={prefix}hd.mp4"), "x", b"plain").await;
    assert_eq!(plain["job"], Value::Null);

    let (_, v) = get(&env, &tok, &format!("/v1/jobs/{jid}")).await;
    let outs = &v["job"]["outputs"];
    assert_eq!(
        outs[0]["file"],
        json!({"id": hd["id"], "href": format!("http://localhost:8080/v1/files/{}", id(&hd))})
    );
    assert_eq!(outs[1]["file"]["id"], sd["id"]);
    assert_eq!(outs[0]["percentage_completed"], 100, "stored");
    let (_, v) = get(&env, &tok, &format!("/v1/files/?job.id={jid}")).await;
    assert_eq!(v["total"], 2);

    for f in [&hd, &sd] {
        assert_eq!(gate(&env, &id(f)), not_finished(), "QUEUED");
    }
    assert_eq!(gate(&env, &id(&loose)), Ok(()), "no job, no gate");
    assert_eq!(gate(&env, &id(&plain)), Ok(()));
    assert_eq!(move_job(&env, &tok, &jid, "RUNNING").await.0, StatusCode::OK);
    assert_eq!(gate(&env, &id(&hd)), not_finished(), "RUNNING");
    assert_eq!(move_job(&env, &tok, &jid, "SUCCESS").await.0, StatusCode::OK);
    for f in [&hd, &sd] {
        assert_eq!(gate(&env, &id(f)), Ok(()), "SUCCESS");
    }
    // Links issued now die when the job is retracted: delivery runs the same gate.
    assert_eq!(move_job(&env, &tok, &jid, "FAILED").await.0, StatusCode::OK);
    for f in [&hd, &sd] {
        assert_eq!(gate(&env, &id(f)), failed(), "FAILED");
    }
    // A job that fails while running.
    let k = job(&env, &tok, &p, &["a"], None).await;
    let a = upload_ok(
        &env,
        &tok,
        &format!(
            "?pipeline_id={p}&object_key={}a",
            k["output_prefix"].as_str().unwrap()
        ),
        "a",
        b"a",
    )
    .await;
    assert_eq!(move_job(&env, &tok, &id(&k), "RUNNING").await.0, StatusCode::OK);
    assert_eq!(move_job(&env, &tok, &id(&k), "FAILED").await.0, StatusCode::OK);
    assert_eq!(gate(&env, &id(&a)), failed());
    // A file naming a job that does not exist is held back (fail closed).
    let mut orphan = file_row(&env, &id(&plain));
    orphan.job_id = Some("0123456789abcdef01234567".into());
    let c = env.state.catalog.conn().unwrap();
    assert_eq!(download_gate(&c, &orphan).unwrap_err().reason, "job_not_finished");
}

#[actix_web::test]
async fn files_may_join_a_successful_job_but_never_a_failed_one() {
    let env = TestEnv::new();
    let tok = env.token("mediahub");
    let p = permanent(&env, &tok).await;
    let j = job(&env, &tok, &p, &["a", "late"], None).await;
    let prefix = j["output_prefix"].as_str().unwrap().to_string();
    assert_eq!(move_job(&env, &tok, &id(&j), "RUNNING").await.0, StatusCode::OK);
    assert_eq!(move_job(&env, &tok, &id(&j), "SUCCESS").await.0, StatusCode::OK);
    let late = upload_ok(
        &env,
        &tok,
        &format!("?pipeline_id={p}&object_key={prefix}late"),
        "late",
        b"late",
    )
    .await;
    assert_eq!(late["job"]["id"], id(&j).as_str());
    assert_eq!(gate(&env, &id(&late)), Ok(()), "downloadable at once");

    // A three-step upload opened while the job runs, completed after it failed.
    let k = job(&env, &tok, &p, &["a", "b"], None).await;
    let kp = k["output_prefix"].as_str().unwrap().to_string();
    assert_eq!(move_job(&env, &tok, &id(&k), "RUNNING").await.0, StatusCode::OK);
    let (s, up) = post(
        &env,
        &tok,
        &format!("/v1/files/uploads/?pipeline_id={p}&object_key={kp}b"),
        json!({}),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED);
    assert_eq!(move_job(&env, &tok, &id(&k), "FAILED").await.0, StatusCode::OK);
    let (s, v) = upload(
        &env,
        &tok,
        &format!("?pipeline_id={p}&object_key={kp}a"),
        "a",
        b"a",
    )
    .await;
    assert_eq!((s, reason(&v)), (StatusCode::CONFLICT, "job_failed"));
    assert_eq!(v["error"]["param"], "object_key");
    let (s, v) = post(
        &env,
        &tok,
        &format!("/v1/files/uploads/?pipeline_id={p}&object_key={kp}c"),
        json!({}),
    )
    .await;
    assert_eq!(
        (s, reason(&v)),
        (StatusCode::CONFLICT, "job_failed"),
        "refused when opened"
    );
    let token = up["upload"]["form_post_params"]["upload_token"].as_str().unwrap();
    let mut body =
        format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"upload_token\"\r\n\r\n{token}\r\n")
            .into_bytes();
    body.extend(form("b", b"b bytes"));
    let uid = up["upload"]["id"].as_str().unwrap();
    let (s, _) = call(
        &env,
        TestRequest::post()
            .uri(&format!("/v1/files/uploads/{uid}/form"))
            .insert_header((
                "Content-Type",
                format!("multipart/form-data; boundary={BOUNDARY}"),
            ))
            .set_payload(body),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let (s, v) = put(
        &env,
        &tok,
        &format!("/v1/files/uploads/{uid}"),
        json!({"upload": {"nb_chunks": 1}}),
    )
    .await;
    assert_eq!(
        (s, reason(&v)),
        (StatusCode::CONFLICT, "job_failed"),
        "refused when completed"
    );
    let (_, v) = get(&env, &tok, &format!("/v1/files/uploads/{uid}")).await;
    assert_eq!(
        (
            v["upload"]["status"].as_str(),
            v["upload"]["failure_reason"].as_str()
        ),
        (Some("FAILED"), Some("job_failed"))
    );
    let (_, v) = get(&env, &tok, &format!("/v1/files/?pipeline.id={p}")).await;
    assert_eq!(v["total"], 1, "only the late output is stored");
}

#[actix_web::test]
async fn output_prefixes_of_live_jobs_never_overlap_nor_cover_existing_files() {
    let env = TestEnv::new();
    let tok = env.token("mediahub");
    let p = permanent(&env, &tok).await;
    let q = permanent(&env, &tok).await;
    let with_prefix = |pipeline: &str, prefix: &str| json!({"job": {"pipeline": {"id": pipeline}, "output_prefix": prefix, "outputs": [{"output_name": "o"}]}});
    let (s, a) = post(&env, &tok, "/v1/jobs/", with_prefix(&p, "out/")).await;
    assert_eq!(s, StatusCode::CREATED);
    for prefix in ["out/", "out/x/", "ou", "o"] {
        let (s, v) = post(&env, &tok, "/v1/jobs/", with_prefix(&p, prefix)).await;
        assert_eq!(
            (s, reason(&v)),
            (StatusCode::CONFLICT, "output_prefix_in_use"),
            "{prefix}"
        );
        assert_eq!(v["error"]["param"], "output_prefix");
    }
    assert_eq!(
        post(&env, &tok, "/v1/jobs/", with_prefix(&p, "out2/")).await.0,
        StatusCode::CREATED
    );
    assert_eq!(
        post(&env, &tok, "/v1/jobs/", with_prefix(&q, "out/")).await.0,
        StatusCode::CREATED,
        "another pipeline"
    );
    // A failed job frees its prefix for a retry.
    assert_eq!(
        move_job(&env, &tok, &id(&a["job"]), "RUNNING").await.0,
        StatusCode::OK
    );
    assert_eq!(
        move_job(&env, &tok, &id(&a["job"]), "FAILED").await.0,
        StatusCode::OK
    );
    let (s, retry) = post(&env, &tok, "/v1/jobs/", with_prefix(&p, "out/")).await;
    assert_eq!(s, StatusCode::CREATED);
    let f = upload_ok(
        &env,
        &tok,
        &format!("?pipeline_id={p}&object_key=out/o"),
        "o",
        b"o",
    )
    .await;
    assert_eq!(
        f["job"]["id"],
        id(&retry["job"]).as_str(),
        "the live job, not the failed one"
    );
    // Files already under a prefix belong to nobody's job: the prefix is taken.
    upload_ok(
        &env,
        &tok,
        &format!("?pipeline_id={p}&object_key=pre/existing"),
        "e",
        b"e",
    )
    .await;
    let (s, v) = post(&env, &tok, "/v1/jobs/", with_prefix(&p, "pre/")).await;
    assert_eq!((s, reason(&v)), (StatusCode::CONFLICT, "output_prefix_in_use"));
    assert_eq!(
        post(&env, &tok, "/v1/jobs/", with_prefix(&p, "pre/x/")).await.0,
        StatusCode::CREATED
    );
    let (_, v) = post(&env, &tok, "/v1/jobs/", with_prefix(&p, "renders/{job_id}-")).await;
    let jid = id(&v["job"]);
    assert_eq!(v["job"]["output_prefix"], format!("renders/{jid}-"));
    assert_eq!(v["job"]["outputs"][0]["object_key"], format!("renders/{jid}-o"));
}

#[actix_web::test]
async fn job_creation_checks_its_body_and_keeps_user_data() {
    let env = TestEnv::new();
    let tok = env.token("mediahub");
    let p = permanent(&env, &tok).await;
    let input = upload_ok(&env, &tok, "?object_key=in/source.mov", "source.mov", b"source").await;
    let (s, v) = post(
        &env,
        &tok,
        "/v1/jobs",
        json!({"job": {"pipeline": {"id": p}, "input": {"input_name": "main", "file": {"id": input["id"]}},
                       "outputs": [{"output_name": "a.mp4"}], "user_data": {"ticket": 42, "tags": ["x", "y"]}}}),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let j = &v["job"];
    assert_eq!(j["user_data"], json!({"ticket": 42, "tags": ["x", "y"]}));
    assert_eq!(j["input"]["input_name"], "main");
    assert_eq!(j["input"]["file"]["id"], input["id"]);
    assert_eq!(
        j["pipeline"],
        json!({"id": p, "href": format!("http://localhost:8080/v1/pipelines/{p}")})
    );
    assert_eq!(
        (j["created_at"].as_i64(), j["started_at"].clone()),
        (Some(NOW_MS), Value::Null)
    );

    let missing = "0123456789abcdef01234567";
    let ok_outputs = json!([{"output_name": "a"}]);
    for (body, status, why, param) in [
        (
            json!({"job": {"outputs": ok_outputs}}),
            400,
            "missing_parameter",
            "pipeline.id",
        ),
        (
            json!({"job": {"pipeline": {"id": "zz"}, "outputs": ok_outputs}}),
            400,
            "invalid_id",
            "pipeline.id",
        ),
        (
            json!({"job": {"pipeline": {"id": missing}, "outputs": ok_outputs}}),
            404,
            "pipeline_not_found",
            "pipeline.id",
        ),
        (
            json!({"job": {"pipeline": {"id": p}, "input": {"file": {"id": missing}}, "outputs": ok_outputs}}),
            404,
            "file_not_found",
            "input.file.id",
        ),
        (
            json!({"job": {"pipeline": {"id": p}}}),
            400,
            "missing_outputs",
            "outputs",
        ),
        (
            json!({"job": {"pipeline": {"id": p}, "outputs": [{"output_name": "../a"}]}}),
            400,
            "invalid_output_name",
            "outputs.output_name",
        ),
        (
            json!({"job": {"pipeline": {"id": p}, "outputs": [{"name": "a"}]}}),
            400,
            "unknown_field",
            "outputs.name",
        ),
        (
            json!({"job": {"pipeline": {"id": p}, "output_prefix": "/abs/", "outputs": ok_outputs}}),
            400,
            "invalid_output_prefix",
            "output_prefix",
        ),
        (
            json!({"job": {"pipeline": {"id": p}, "outputs": ok_outputs, "priority": 1}}),
            400,
            "unknown_field",
            "priority",
        ),
        (
            json!({"job": {"pipeline": {"id": p}, "outputs": ok_outputs, "input": {"url": "x"}}}),
            400,
            "unknown_field",
            "input.url",
        ),
    ] {
        let (s, v) = post(&env, &tok, "/v1/jobs/", body.clone()).await;
        assert_eq!(s.as_u16(), status, "{body}: {v}");
        assert_eq!(
            (reason(&v), v["error"]["param"].as_str()),
            (why, Some(param)),
            "{body}"
        );
    }
    let (s, v) = call(
        &env,
        bearer(TestRequest::post().uri("/v1/jobs/"), &tok).set_payload("not json"),
    )
    .await;
    assert_eq!((s, reason(&v)), (StatusCode::BAD_REQUEST, "invalid_body"));
}

#[actix_web::test]
async fn the_same_key_in_two_pipelines_and_in_none_is_three_files() {
    let env = TestEnv::new();
    let tok = env.token("mediahub");
    let p1 = permanent(&env, &tok).await;
    let p2 = permanent(&env, &tok).await;
    let j = job(&env, &tok, &p1, &["movie.mp4"], None).await;
    let key = format!("{}movie.mp4", j["output_prefix"].as_str().unwrap());
    let in_p1 = upload_ok(
        &env,
        &tok,
        &format!("?pipeline_id={p1}&object_key={key}"),
        "movie.mp4",
        b"one",
    )
    .await;
    let in_p2 = upload_ok(
        &env,
        &tok,
        &format!("?pipeline_id={p2}&object_key={key}"),
        "movie.mp4",
        b"two",
    )
    .await;
    let nowhere = upload_ok(&env, &tok, &format!("?object_key={key}"), "movie.mp4", b"three").await;
    let ids = [id(&in_p1), id(&in_p2), id(&nowhere)];
    assert!(ids[0] != ids[1] && ids[1] != ids[2] && ids[0] != ids[2]);

    let c = env.state.catalog.conn().unwrap();
    let by_key = |pipeline: Option<&str>| catalog_files::by_key(&c, pipeline, &key).unwrap().unwrap();
    let (r1, r2, r0) = (by_key(Some(p1.as_str())), by_key(Some(p2.as_str())), by_key(None));
    assert_eq!(
        [r1.id.as_str(), r2.id.as_str(), r0.id.as_str()],
        [ids[0].as_str(), ids[1].as_str(), ids[2].as_str()]
    );
    assert_eq!((r1.size, r2.size, r0.size), (3, 3, 5));
    assert_eq!(
        r1.job_id.as_deref(),
        Some(id(&j).as_str()),
        "only the one in the job's pipeline"
    );
    assert_eq!((r2.job_id.clone(), r0.job_id.clone()), (None, None));
    assert!(catalog_files::by_key(&c, Some(p2.as_str()), "movie.mp4")
        .unwrap()
        .is_none());
    assert_eq!(download_gate(&c, &r1).unwrap_err().reason, "job_not_finished");
    assert!(download_gate(&c, &r2).is_ok() && download_gate(&c, &r0).is_ok());
}

#[actix_web::test]
async fn temporary_pipeline_files_expire_after_the_default_timeout_and_are_swept() {
    let env = TestEnv::new();
    let tok = env.token("mediahub");
    let week = pipeline(
        &env,
        &tok,
        json!({"pipeline": {"name": "t", "store_options": {"mode": "temporary"}}}),
    )
    .await;
    let minute = pipeline(
        &env,
        &tok,
        json!({"pipeline": {"name": "m", "store_options": {"mode": "temporary"}, "default_object_timeout": 60}}),
    )
    .await;
    let kept = upload_ok(&env, &tok, "?object_key=kept", "k", b"kept").await;
    let a = upload_ok(
        &env,
        &tok,
        &format!("?pipeline_id={week}&object_key=a"),
        "a",
        b"a",
    )
    .await;
    assert_eq!(a["expires_at"], NOW_MS + 604_800_000);
    let never = upload_ok(
        &env,
        &tok,
        &format!("?pipeline_id={week}&object_key=b&expires_at=0"),
        "b",
        b"b",
    )
    .await;
    assert_eq!(
        never["expires_at"],
        NOW_MS + 604_800_000,
        "a temporary pipeline keeps nothing longer"
    );
    let later = NOW_MS + 30 * 24 * 3600 * 1000;
    let (s, v) = upload(
        &env,
        &tok,
        &format!("?pipeline_id={week}&object_key=d&expires_at={later}"),
        "d",
        b"d",
    )
    .await;
    assert_eq!(
        (s, v["upload"]["file"]["expires_at"].as_i64()),
        (StatusCode::CREATED, Some(NOW_MS + 604_800_000))
    );
    let sooner = upload_ok(
        &env,
        &tok,
        &format!("?pipeline_id={week}&object_key=c&expires_at={}", NOW_MS + 1000),
        "c",
        b"c",
    )
    .await;
    assert_eq!(sooner["expires_at"], NOW_MS + 1000, "a sooner expiry is kept");
    let m = upload_ok(
        &env,
        &tok,
        &format!("?pipeline_id={minute}&object_key=m"),
        "m",
        b"m",
    )
    .await;
    assert_eq!(m["expires_at"], NOW_MS + 60_000);
    // Job outputs in a temporary pipeline expire like any of its files.
    let j = job(&env, &tok, &week, &["o"], None).await;
    let out = upload_ok(
        &env,
        &tok,
        &format!(
            "?pipeline_id={week}&object_key={}o",
            j["output_prefix"].as_str().unwrap()
        ),
        "o",
        b"o",
    )
    .await;
    assert_eq!(out["expires_at"], NOW_MS + 604_800_000);

    let sweep = || {
        let mut c = env.state.catalog.conn().unwrap();
        filegate::files::sweep::run(&mut c, &env.state.store, env.clock.now_ms()).unwrap()
    };
    env.clock.advance_secs(60);
    assert_eq!(sweep().expired_files, 2, "the minute one and the sooner one");
    env.clock.advance_secs(7 * 24 * 3600 - 61);
    let tok = env.token("mediahub");
    let (s, _) = get(&env, &tok, &format!("/v1/files/{}", id(&a))).await;
    assert_eq!(s, StatusCode::OK, "one second left");
    assert_eq!(sweep().expired_files, 0);
    env.clock.advance_secs(1);
    let (s, _) = get(&env, &tok, &format!("/v1/files/{}", id(&a))).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "gone for readers at once");
    let (_, v) = get(&env, &tok, &format!("/v1/jobs/{}", id(&j))).await;
    assert_eq!(
        v["job"]["outputs"][0]["file"],
        Value::Null,
        "an expired output is no output"
    );
    assert_eq!(sweep().expired_files, 4);
    let (s, _) = get(&env, &tok, &format!("/v1/files/{}", id(&kept))).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        env.state.store.list_blobs().unwrap().len(),
        1,
        "only the kept file's bytes remain"
    );
}

#[actix_web::test]
async fn deleting_a_pipeline_with_files_needs_force_and_keeps_shared_bytes() {
    let env = TestEnv::new();
    let tok = env.token("mediahub");
    let p = permanent(&env, &tok).await;
    let j = job(&env, &tok, &p, &["a", "b"], None).await;
    let prefix = j["output_prefix"].as_str().unwrap().to_string();
    let a = upload_ok(
        &env,
        &tok,
        &format!("?pipeline_id={p}&object_key={prefix}a"),
        "a",
        b"shared bytes",
    )
    .await;
    let b = upload_ok(
        &env,
        &tok,
        &format!("?pipeline_id={p}&object_key={prefix}b"),
        "b",
        b"only in p",
    )
    .await;
    let outside = upload_ok(&env, &tok, "?object_key=elsewhere", "e", b"shared bytes").await;
    assert_eq!(env.state.store.list_blobs().unwrap().len(), 2);

    let (s, v) = delete(&env, &tok, &format!("/v1/pipelines/{p}")).await;
    assert_eq!((s, reason(&v)), (StatusCode::CONFLICT, "pipeline_not_empty"));
    let (s, v) = delete(&env, &tok, &format!("/v1/pipelines/{p}?force=maybe")).await;
    assert_eq!((s, reason(&v)), (StatusCode::BAD_REQUEST, "invalid_boolean"));
    let (s, _) = get(&env, &tok, &format!("/v1/files/{}", id(&a))).await;
    assert_eq!(s, StatusCode::OK, "nothing deleted by the refusal");

    // Asking for a link reads (and caches) the file's row: the job is not done yet.
    let link = format!("/v1/files/downloads?file_id={}", id(&b));
    let (s, v) = get(&env, &tok, &link).await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    let (s, _) = delete(&env, &tok, &format!("/v1/pipelines/{p}/?force=true")).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    for f in [&a, &b] {
        let (s, _) = get(&env, &tok, &format!("/v1/files/{}", id(f))).await;
        assert_eq!(s, StatusCode::NOT_FOUND);
    }
    let (s, v) = get(&env, &tok, &link).await;
    assert_eq!(
        (s, reason(&v)),
        (StatusCode::NOT_FOUND, "file_not_found"),
        "no cached row outlives a forced delete"
    );
    let (s, _) = get(&env, &tok, &format!("/v1/files/{}", id(&outside))).await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        env.state.store.exists(outside["sha256"].as_str().unwrap()),
        "shared bytes stay"
    );
    assert_eq!(
        env.state.store.list_blobs().unwrap().len(),
        1,
        "unshared bytes go"
    );
    let c = env.state.catalog.conn().unwrap();
    assert_eq!(
        catalog_files::blob_ids(&c).unwrap(),
        [outside["sha256"].as_str().unwrap()]
    );
    let refs: i64 = c.query_row("SELECT refs FROM blobs", [], |r| r.get(0)).unwrap();
    assert_eq!(refs, 1);
    let (s, _) = get(&env, &tok, &format!("/v1/jobs/{}", id(&j))).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "its jobs went with it");
    let (s, v) = get(&env, &tok, &format!("/v1/pipelines/{p}")).await;
    assert_eq!((s, reason(&v)), (StatusCode::NOT_FOUND, "pipeline_not_found"));
    let (s, _) = delete(&env, &tok, &format!("/v1/pipelines/{p}")).await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // Empty (or holding only expired files, not yet swept): no force needed.
    let empty = permanent(&env, &tok).await;
    job(&env, &tok, &empty, &["x"], None).await;
    assert_eq!(
        delete(&env, &tok, &format!("/v1/pipelines/{empty}")).await.0,
        StatusCode::NO_CONTENT
    );
    let t = pipeline(&env, &tok, json!({"pipeline": {"name": "t", "store_options": {"mode": "temporary"}, "default_object_timeout": 5}})).await;
    upload_ok(
        &env,
        &tok,
        &format!("?pipeline_id={t}&object_key=gone"),
        "g",
        b"soon gone",
    )
    .await;
    env.clock.advance_secs(5);
    let tok = env.token("mediahub");
    assert_eq!(
        delete(&env, &tok, &format!("/v1/pipelines/{t}")).await.0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(env.state.store.list_blobs().unwrap().len(), 1);
}

#[actix_web::test]
async fn each_endpoint_needs_its_scope() {
    let env = TestEnv::new();
    let all = env.token("mediahub");
    let p = permanent(&env, &all).await;
    let j = job(&env, &all, &p, &["o"], None).await;
    let jp = format!("/v1/jobs/{}", id(&j));
    let pp = format!("/v1/pipelines/{p}");
    let new_job = json!({"job": {"pipeline": {"id": p}, "outputs": [{"output_name": "o"}]}});
    let new_pipeline = json!({"pipeline": {"name": "n"}});
    let running = json!({"job": {"status": "RUNNING"}});

    let read = env.token("mediahub_read");
    let write = env.token("mediahub_write");
    let submit = env.token("mediahub_submit_jobs");
    let insufficient = |s: StatusCode, v: &Value, scope: &str| {
        assert_eq!(
            (s, reason(v)),
            (StatusCode::FORBIDDEN, "insufficient_scope"),
            "{v}"
        );
        assert_eq!(v["error"]["param"], scope);
        assert_eq!(v["error"]["error_code"], "0x0000004");
    };
    // Pipelines: write to create and delete, read to read.
    let (s, v) = post(&env, &read, "/v1/pipelines/", new_pipeline.clone()).await;
    insufficient(s, &v, "mediahub_write");
    let (s, v) = post(&env, &submit, "/v1/pipelines/", new_pipeline.clone()).await;
    insufficient(s, &v, "mediahub_write");
    let (s, v) = delete(&env, &read, &pp).await;
    insufficient(s, &v, "mediahub_write");
    let (s, v) = get(&env, &write, &pp).await;
    insufficient(s, &v, "mediahub_read");
    let (s, v) = get(&env, &write, "/v1/pipelines/").await;
    insufficient(s, &v, "mediahub_read");
    assert_eq!(
        post(&env, &write, "/v1/pipelines/", new_pipeline.clone()).await.0,
        StatusCode::CREATED
    );
    assert_eq!(get(&env, &read, &pp).await.0, StatusCode::OK);
    assert_eq!(get(&env, &read, "/v1/pipelines/").await.0, StatusCode::OK);
    // Jobs: submit_jobs to create and report, read to read.
    for tok in [&read, &write] {
        let (s, v) = post(&env, tok, "/v1/jobs/", new_job.clone()).await;
        insufficient(s, &v, "mediahub_submit_jobs");
        let (s, v) = put(&env, tok, &jp, running.clone()).await;
        insufficient(s, &v, "mediahub_submit_jobs");
    }
    let (s, v) = get(&env, &submit, &jp).await;
    insufficient(s, &v, "mediahub_read");
    let (s, v) = get(&env, &submit, "/v1/jobs/").await;
    insufficient(s, &v, "mediahub_read");
    assert_eq!(
        post(&env, &submit, "/v1/jobs/", new_job.clone()).await.0,
        StatusCode::CREATED
    );
    assert_eq!(put(&env, &submit, &jp, running.clone()).await.0, StatusCode::OK);
    assert_eq!(get(&env, &read, &jp).await.0, StatusCode::OK);
    assert_eq!(get(&env, &read, "/v1/jobs/").await.0, StatusCode::OK);
    // No token at all; a token in the query works as anywhere else.
    let (s, v) = call(&env, TestRequest::get().uri("/v1/jobs/")).await;
    assert_eq!((s, reason(&v)), (StatusCode::FORBIDDEN, "missing_token"));
    let (s, _) = call(
        &env,
        TestRequest::get().uri(&format!("/v1/jobs/?access_token={read}")),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let (s, v) = call(&env, bearer(TestRequest::patch().uri(&jp), &all)).await;
    assert_eq!(
        (s, reason(&v)),
        (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed")
    );
}

/// What the public MediaHub client does: list the successful jobs with AutoGraph outputs,
/// newest first, with files expanded, and read the input's name and each output file.
#[actix_web::test]
async fn the_clients_exact_job_list_call_returns_every_field_it_reads() {
    let env = TestEnv::new();
    let tok = env.token("mediahub");
    let p = permanent(&env, &tok).await;
    let input1 = upload_ok(&env, &tok, "?object_key=src/1", "Holiday Movie.MOV", b"input one").await;
    let input2 = upload_ok(&env, &tok, "?object_key=src/2", "ÉTÉ à Nice.mov", b"input two").await;

    // `make` creates a job, stores its outputs (name, bytes, autograph) and moves it.
    async fn make(
        env: &TestEnv,
        tok: &str,
        p: &str,
        input: &Value,
        outputs: &[(&str, &[u8], bool)],
        to: &[&str],
    ) -> (Value, Vec<Value>) {
        let names: Vec<&str> = outputs.iter().map(|o| o.0).collect();
        let j = job(env, tok, p, &names, Some(&id(input))).await;
        let prefix = j["output_prefix"].as_str().unwrap();
        let mut files = Vec::new();
        for (name, data, autograph) in outputs {
            files.push(
                upload_ok(
                    env,
                    tok,
                    &format!("?pipeline_id={p}&object_key={prefix}{name}&autograph={autograph}"),
                    name,
                    data,
                )
                .await,
            );
        }
        for s in to {
            assert_eq!(move_job(env, tok, &id(&j), s).await.0, StatusCode::OK);
        }
        env.clock.advance_secs(1);
        (j, files)
    }
    let done = ["RUNNING", "SUCCESS"];
    let (old, old_files) = make(
        &env,
        &tok,
        &p,
        &input1,
        &[
            ("hd.mp4", b"old hd".as_slice(), true),
            ("preview.png", b"\x89PNG\r\n\x1a\n....".as_slice(), false),
        ],
        &done,
    )
    .await;
    let (_plain, _) = make(
        &env,
        &tok,
        &p,
        &input1,
        &[("hd.mp4", b"no tags".as_slice(), false)],
        &done,
    )
    .await;
    let (_running, _) = make(
        &env,
        &tok,
        &p,
        &input2,
        &[("hd.mp4", b"still running".as_slice(), true)],
        &["RUNNING"],
    )
    .await;
    let (_failed, _) = make(
        &env,
        &tok,
        &p,
        &input2,
        &[("hd.mp4", b"broken".as_slice(), true)],
        &["RUNNING", "FAILED"],
    )
    .await;
    let (new, new_files) = make(
        &env,
        &tok,
        &p,
        &input2,
        &[("sd.mp4", b"new sd output".as_slice(), true)],
        &done,
    )
    .await;

    let (s, v) = get(
        &env,
        &tok,
        "/v1/jobs/?status=SUCCESS&expand=file&autograph=true&start=0&limit=20&sort=created_at&direction=-1",
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["total"], 2);
    assert_eq!((v["start"].as_u64(), v["limit"].as_u64()), (Some(0), Some(20)));
    let jobs = v["jobs"].as_array().unwrap();
    assert_eq!(jobs.len(), 2);
    let expect = [(&new, &input2, &new_files), (&old, &input1, &old_files)];
    for (got, (job, input, files)) in jobs.iter().zip(expect) {
        assert_eq!(got["id"], job["id"], "newest first");
        assert_eq!(got["status"], "SUCCESS");
        assert_eq!(got["percentage_completed"], 100);
        assert_eq!(got["input"]["file"]["name"], input["name"]);
        assert_eq!(got["input"]["file"]["id"], input["id"]);
        let outs = got["outputs"].as_array().unwrap();
        assert_eq!(outs.len(), files.len());
        for (o, f) in outs.iter().zip(files.iter()) {
            assert_eq!(o["percentage_completed"], 100);
            for field in ["id", "name", "size", "mime_type"] {
                assert_eq!(o["file"][field], f[field], "outputs[].file.{field}");
                assert!(!o["file"][field].is_null(), "outputs[].file.{field}");
            }
            assert_eq!(
                o["file"]["href"],
                format!("http://localhost:8080/v1/files/{}", id(f))
            );
        }
        assert!(got["created_at"].is_i64() && got["updated_at"].is_i64());
        assert_eq!(got["pipeline"]["id"], p.as_str());
    }
    assert_eq!(jobs[0]["outputs"][0]["file"]["name"], "sd.mp4");
    assert_eq!(jobs[0]["outputs"][0]["file"]["size"], 13);
    assert_eq!(jobs[0]["outputs"][0]["file"]["mime_type"], "video/mp4");
    assert_eq!(jobs[1]["outputs"][1]["file"]["mime_type"], "image/png");
    assert_eq!(jobs[1]["input"]["file"]["name"], "Holiday Movie.MOV");

    // Paging, the search, and the other filters.
    let list = |q: &'static str| {
        let env = &env;
        let tok = tok.clone();
        async move {
            let (s, v) = get(env, &tok, &format!("/v1/jobs/?{q}")).await;
            assert_eq!(s, StatusCode::OK, "{q}: {v}");
            let ids: Vec<String> = v["jobs"].as_array().unwrap().iter().map(id).collect();
            (ids, v["total"].as_u64().unwrap())
        }
    };
    let (ids, total) =
        list("status=SUCCESS&expand=file&autograph=true&start=1&limit=1&sort=created_at&direction=-1").await;
    assert_eq!((ids, total), (vec![id(&old)], 2));
    let (ids, total) = list("status=SUCCESS&autograph=true&input.file.name=holiday").await;
    assert_eq!((ids, total), (vec![id(&old)], 1), "case-insensitive substring");
    let (ids, _) = list("input.file.name=%C3%A9t%C3%A9%20%C3%A0").await;
    assert_eq!(
        ids.len(),
        3,
        "été à matches ÉTÉ à Nice.mov (three jobs of input2)"
    );
    let (ids, _) = list("input.file.name=").await;
    assert_eq!(ids.len(), 5, "an empty search filters nothing");
    let (_, total) = list("input.file.name=nothing-like-this").await;
    assert_eq!(total, 0);
    let (_, total) = list("status=SUCCESS").await;
    assert_eq!(total, 3);
    let (_, total) = list("status=SUCCESS&autograph=false").await;
    assert_eq!(total, 1);
    let (_, total) = list("autograph=true").await;
    assert_eq!(total, 4);
    let (ids, _) = list("sort=updated_at&direction=-1&limit=1").await;
    assert_eq!(ids, [id(&new)]);
    let (_, total) = list("pipeline.id=0123456789abcdef01234567").await;
    assert_eq!(total, 0);
    let path = format!("/v1/jobs/?pipeline.id={p}");
    assert_eq!(get(&env, &tok, &path).await.1["total"], 5);

    // Without expand: links only. expand_all expands the pipeline too.
    let (_, v) = get(&env, &tok, "/v1/jobs/?status=SUCCESS&autograph=true&direction=-1").await;
    let f = &v["jobs"][0]["outputs"][0]["file"];
    assert_eq!(f.as_object().unwrap().len(), 2, "{f}");
    assert_eq!(f["id"], new_files[0]["id"]);
    let (_, v) = get(&env, &tok, &format!("/v1/jobs/{}?expand_all=true", id(&new))).await;
    assert_eq!(v["job"]["pipeline"]["name"], "conversions");
    assert_eq!(
        v["job"]["outputs"][0]["file"]["md5_checksum"],
        new_files[0]["md5_checksum"]
    );

    // XML: arrays of singular children.
    let (s, x) = call(
        &env,
        bearer(
            TestRequest::get().uri("/v1/jobs/?status=SUCCESS&expand=file&autograph=true&start=0&limit=20&sort=created_at&direction=-1&format=xml"),
            &tok,
        ),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let xml = x.as_str().unwrap();
    assert!(
        xml.contains(&format!("<jobs><job><id>{}</id>", id(&new))),
        "{xml}"
    );
    assert!(
        xml.contains("<outputs><output><output_name>sd.mp4</output_name>"),
        "{xml}"
    );
    assert!(xml.contains("<name>ÉTÉ à Nice.mov</name>"), "{xml}");
    assert!(xml.contains("<total>2</total>"), "{xml}");

    // Refusals.
    for (q, why, param) in [
        ("status=success", "invalid_status", "status"),
        ("autograph=yes", "invalid_boolean", "autograph"),
        ("sort=name", "invalid_sort", "sort"),
        ("direction=down", "invalid_direction", "direction"),
        ("limit=5001", "invalid_limit", "limit"),
        ("expand=files", "invalid_expand", "expand"),
        ("pipeline.id=p", "invalid_id", "pipeline.id"),
        ("statuss=SUCCESS", "unknown_parameter", "statuss"),
        ("input.name=x", "unknown_parameter", "input.name"),
    ] {
        let (s, v) = get(&env, &tok, &format!("/v1/jobs/?{q}")).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{q}");
        assert_eq!(
            (reason(&v), v["error"]["param"].as_str()),
            (why, Some(param)),
            "{q}"
        );
    }
}
