//! `expand` and `expand_all` on every endpoint (SPEC §1): a file expands `pipeline` and
//! `job`, an upload `pipeline` (and `file`), an audit entry `file`; an endpoint whose
//! answer holds no links refuses any name. In process, with a fixed clock.

mod common;

use actix_web::http::StatusCode;
use actix_web::test::{self, TestRequest};
use common::*;
use serde_json::{json, Value};

const BASE: &str = "http://localhost:8080";

/// `GET path`, answered 200; the body.
async fn ok(env: &TestEnv, tok: &str, path: &str) -> Value {
    let (s, v) = get(env, tok, path).await;
    assert_eq!(s, StatusCode::OK, "{path}: {v}");
    v
}

/// Asserts a 400 `invalid_expand` on `param` for the answer `(s, v)`.
fn assert_refused(what: &str, (s, v): (StatusCode, Value), why: &str, param: &str) {
    assert_eq!(s, StatusCode::BAD_REQUEST, "{what}: {v}");
    assert_eq!(
        (reason(&v), v["error"]["param"].as_str()),
        (why, Some(param)),
        "{what}"
    );
}

fn id(v: &Value) -> String {
    v["id"].as_str().unwrap().to_string()
}

/// A `{id, href}` link to `kind/id`.
fn assert_link(v: &Value, kind: &str, id: &str) {
    assert_eq!(
        v,
        &json!({"id": id, "href": format!("{BASE}/v1/{kind}/{id}")}),
        "a link to {kind}/{id}"
    );
}

/// `whole` minus its `href`, which must point at `kind/id`.
fn without_href(whole: &Value, kind: &str) -> Value {
    let mut v = whole.clone();
    let href = v.as_object_mut().unwrap().remove("href").expect("an href");
    assert_eq!(href, format!("{BASE}/v1/{kind}/{}", id(whole)));
    v
}

/// A pipeline, a successful job in it with one output file, and a file of neither.
struct Fx {
    env: TestEnv,
    tok: String,
    pipeline: String,
    job: String,
    output: Value,
    plain: Value,
}

async fn fixture() -> Fx {
    let env = TestEnv::new();
    let tok = env.token("mediahub");
    let (s, v) = post(
        &env,
        &tok,
        "/v1/pipelines/",
        json!({"pipeline": {"name": "conversions", "description": "to <mp4> & more"}}),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let pipeline = id(&v["pipeline"]);
    let (s, v) = post(
        &env,
        &tok,
        "/v1/jobs/",
        json!({"job": {"pipeline": {"id": pipeline}, "outputs": [{"output_name": "hd.mp4"}]}}),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let job = id(&v["job"]);
    let prefix = v["job"]["output_prefix"].as_str().unwrap().to_string();
    let output = env
        .upload(
            &tok,
            &format!("?pipeline_id={pipeline}&object_key={prefix}hd.mp4"),
            "hd.mp4",
            b"the output",
        )
        .await;
    for status in ["RUNNING", "SUCCESS"] {
        let (s, v) = call(
            &env,
            bearer(TestRequest::put().uri(&format!("/v1/jobs/{job}")), &tok)
                .set_json(json!({"job": {"status": status}})),
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{v}");
    }
    env.clock.advance_secs(1);
    let plain = env
        .upload(&tok, "?object_key=plain.bin", "plain.bin", b"plain")
        .await;
    Fx {
        env,
        tok,
        pipeline,
        job,
        output,
        plain,
    }
}

impl Fx {
    async fn ok(&self, path: &str) -> Value {
        ok(&self.env, &self.tok, path).await
    }

    /// The pipeline as `GET /v1/pipelines/ID` shows it.
    async fn pipeline_resource(&self) -> Value {
        self.ok(&format!("/v1/pipelines/{}", self.pipeline)).await["pipeline"].clone()
    }

    /// The job as `GET /v1/jobs/ID` shows it.
    async fn job_resource(&self) -> Value {
        self.ok(&format!("/v1/jobs/{}", self.job)).await["job"].clone()
    }
}

#[actix_web::test]
async fn a_files_pipeline_and_job_expand_to_the_whole_resources() {
    let fx = fixture().await;
    let out = id(&fx.output);
    assert_eq!(
        fx.output["job"]["id"],
        fx.job.as_str(),
        "the output joined its job"
    );

    // Without expand: links.
    let f = &fx.ok(&format!("/v1/files/{out}")).await["file"];
    assert_link(&f["pipeline"], "pipelines", &fx.pipeline);
    assert_link(&f["job"], "jobs", &fx.job);

    let pipeline = fx.pipeline_resource().await;
    let job = fx.job_resource().await;
    for q in [
        "expand=pipeline,job",
        "expand=%20job%20,,pipeline",
        "expand_all=true",
        "expand_all=1&expand=job",
    ] {
        let f = &fx.ok(&format!("/v1/files/{out}?{q}")).await["file"];
        let p = &f["pipeline"];
        assert_eq!(p["name"], "conversions", "{q}");
        assert_eq!(p["description"], "to <mp4> & more", "{q}");
        assert!(p["store_options"].is_object(), "{q}: {p}");
        assert_eq!(
            without_href(p, "pipelines"),
            pipeline,
            "{q}: as GET /v1/pipelines/ID"
        );
        let j = &f["job"];
        assert_eq!(j["status"], "SUCCESS", "{q}");
        assert_eq!(j["outputs"][0]["output_name"], "hd.mp4", "{q}");
        // The job's own links stay links.
        assert_link(&j["outputs"][0]["file"], "files", &out);
        assert_link(&j["pipeline"], "pipelines", &fx.pipeline);
        assert_eq!(without_href(j, "jobs"), job, "{q}: as GET /v1/jobs/ID");
        // The rest of the file is untouched.
        assert_eq!(f["id"], out.as_str());
        assert_eq!(f["name"], "hd.mp4");
    }

    // One of the two.
    let f = &fx.ok(&format!("/v1/files/{out}?expand=pipeline")).await["file"];
    assert_eq!(f["pipeline"]["name"], "conversions");
    assert_link(&f["job"], "jobs", &fx.job);

    // A null link stays null.
    let f = &fx
        .ok(&format!("/v1/files/{}?expand_all=true", id(&fx.plain)))
        .await["file"];
    assert!(f["pipeline"].is_null() && f["job"].is_null(), "{f}");

    // The revoke answer is the file resource too.
    let (s, v) = post(
        &fx.env,
        &fx.tok,
        &format!("/v1/files/{out}/revoke?expand=job"),
        Value::Null,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["file"]["job"]["status"], "SUCCESS");
    assert_link(&v["file"]["pipeline"], "pipelines", &fx.pipeline);
}

#[actix_web::test]
async fn the_file_list_expands_in_every_row() {
    let fx = fixture().await;
    let other = fx
        .env
        .upload(
            &fx.tok,
            &format!("?pipeline_id={}&object_key=other.bin", fx.pipeline),
            "other.bin",
            b"other",
        )
        .await;
    let pipeline = fx.pipeline_resource().await;

    let v = fx.ok("/v1/files/?expand=pipeline").await;
    let rows = v["files"].as_array().unwrap();
    assert_eq!(rows.len(), 3, "{v}");
    for f in rows {
        if f["id"] == fx.plain["id"] {
            assert!(f["pipeline"].is_null(), "{f}");
        } else {
            assert_eq!(without_href(&f["pipeline"], "pipelines"), pipeline, "{f}");
        }
        if f["id"] == fx.output["id"] {
            assert_link(&f["job"], "jobs", &fx.job);
        } else {
            assert!(f["job"].is_null(), "{f}");
        }
    }
    assert!(rows.iter().any(|f| f["id"] == other["id"]));

    let v = fx
        .ok(&format!("/v1/files/?expand_all=true&pipeline.id={}", fx.pipeline))
        .await;
    let rows = v["files"].as_array().unwrap();
    assert_eq!(rows.len(), 2, "{v}");
    let out = rows.iter().find(|f| f["id"] == fx.output["id"]).unwrap();
    assert_eq!(out["job"]["status"], "SUCCESS");
    assert_eq!(out["job"]["outputs"][0]["file"]["id"], fx.output["id"]);
    assert!(rows.iter().all(|f| f["pipeline"]["name"] == "conversions"));

    // Without expand: links in every row.
    let v = fx.ok("/v1/files/").await;
    for f in v["files"].as_array().unwrap() {
        assert!(
            f["pipeline"].is_null() || f["pipeline"].as_object().unwrap().len() == 2,
            "{f}"
        );
    }
}

#[actix_web::test]
async fn an_expanded_file_in_xml_is_well_formed() {
    let fx = fixture().await;
    let (s, x) = get(
        &fx.env,
        &fx.tok,
        &format!("/v1/files/{}?expand=pipeline,job&format=xml", id(&fx.output)),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{x}");
    let xml = x.as_str().unwrap();
    let mut r = quick_xml::Reader::from_str(xml);
    let mut open = Vec::new();
    let mut texts = Vec::new();
    loop {
        match r.read_event().expect("well-formed XML") {
            quick_xml::events::Event::Start(e) => {
                open.push(String::from_utf8(e.name().as_ref().to_vec()).unwrap())
            }
            quick_xml::events::Event::End(e) => {
                assert_eq!(open.pop().as_deref().map(str::as_bytes), Some(e.name().as_ref()));
            }
            quick_xml::events::Event::Text(t) => texts.push(t.decode().unwrap().into_owned()),
            quick_xml::events::Event::Eof => break,
            _ => {}
        }
    }
    assert!(open.is_empty(), "{xml}");
    assert!(xml.starts_with("<?xml") || xml.starts_with("<file>"), "{xml}");
    assert!(xml.contains("<pipeline><id>"), "{xml}");
    assert!(xml.contains("<name>conversions</name>"), "{xml}");
    assert!(xml.contains("<status>SUCCESS</status>"), "{xml}");
    assert!(
        xml.contains("to &lt;mp4&gt; &amp; more"),
        "the pipeline's description escaped: {xml}"
    );
    assert!(texts.iter().any(|t| t == "conversions"));
}

#[actix_web::test]
async fn files_refuse_names_they_cannot_expand() {
    let fx = fixture().await;
    let out = id(&fx.output);
    for q in [
        "expand=bogus",
        "expand=pipeline,bogus",
        "expand=file",
        "expand=Pipeline",
    ] {
        for path in [format!("/v1/files/{out}?{q}"), format!("/v1/files/?{q}")] {
            assert_refused(
                &path,
                get(&fx.env, &fx.tok, &path).await,
                "invalid_expand",
                "expand",
            );
        }
    }
    let path = format!("/v1/files/{out}?expand_all=yes");
    assert_refused(
        &path,
        get(&fx.env, &fx.tok, &path).await,
        "invalid_boolean",
        "expand_all",
    );
    // An empty expand is nothing to expand.
    let f = &fx.ok(&format!("/v1/files/{out}?expand=")).await["file"];
    assert_link(&f["pipeline"], "pipelines", &fx.pipeline);
}

#[actix_web::test]
async fn an_uploads_pipeline_expands_and_other_names_are_refused() {
    let fx = fixture().await;
    let pipeline = fx.pipeline_resource().await;
    let p = &fx.pipeline;

    // A three-step upload, opened with and without expand.
    let (s, v) = call(
        &fx.env,
        bearer(
            TestRequest::post().uri(&format!(
                "/v1/files/uploads/?pipeline_id={p}&object_key=a.bin&expand=pipeline"
            )),
            &fx.tok,
        ),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let u = &v["upload"];
    assert_eq!(u["status"], "UPLOADING");
    assert_eq!(without_href(&u["pipeline"], "pipelines"), pipeline);
    let upload = id(u);
    let v = fx.ok(&format!("/v1/files/uploads/{upload}")).await;
    assert_link(&v["upload"]["pipeline"], "pipelines", p);
    let v = fx
        .ok(&format!("/v1/files/uploads/{upload}?expand_all=true"))
        .await;
    assert_eq!(v["upload"]["pipeline"]["name"], "conversions");
    // Its file does not exist yet: still the link.
    assert_eq!(v["upload"]["file"].as_object().unwrap().len(), 2, "{v}");

    // A one-shot upload: the file is whole, the pipeline too when asked.
    let (ct, body) = multipart_file("b.bin", b"bee");
    let (s, v) = call(
        &fx.env,
        bearer(
            TestRequest::post().uri(&format!(
                "/v1/files/uploads/?pipeline_id={p}&object_key=b.bin&expand=file,pipeline"
            )),
            &fx.tok,
        )
        .insert_header(("Content-Type", ct))
        .set_payload(body),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(v["upload"]["status"], "COMPLETED");
    assert_eq!(v["upload"]["pipeline"]["name"], "conversions");
    assert_eq!(v["upload"]["file"]["name"], "b.bin");
    // The file's own links stay links.
    assert_link(&v["upload"]["file"]["pipeline"], "pipelines", p);

    let path = format!("/v1/files/uploads/{upload}?expand=job");
    assert_refused(
        &path,
        get(&fx.env, &fx.tok, &path).await,
        "invalid_expand",
        "expand",
    );
    let (s, v) = call(
        &fx.env,
        bearer(
            TestRequest::post().uri("/v1/files/uploads/?object_key=c.bin&expand=bogus"),
            &fx.tok,
        ),
    )
    .await;
    assert_refused("create", (s, v), "invalid_expand", "expand");
}

#[actix_web::test]
async fn an_audit_entrys_file_expands_until_the_file_is_deleted() {
    let env = TestEnv::new();
    let tok = env.token("mediahub");
    let file = env
        .upload(&tok, "?object_key=media/clip.mp4", "clip.mp4", b"0123456789")
        .await;
    let fid = id(&file);
    // The link answer's file expands too.
    let v = ok(&env, &tok, &format!("/v1/files/downloads/?file_id={fid}")).await;
    assert_link(&v["download"]["file"], "files", &fid);
    let v = ok(
        &env,
        &tok,
        &format!("/v1/files/downloads/?file_id={fid}&expand=file"),
    )
    .await;
    assert_eq!(v["download"]["file"]["name"], "clip.mp4");
    assert_eq!(v["download"]["file"]["size"], 10);
    assert_eq!(v["download"]["file"]["href"], format!("{BASE}/v1/files/{fid}"));
    let path = v["download"]["url"]
        .as_str()
        .unwrap()
        .strip_prefix(BASE)
        .unwrap()
        .to_string();
    let (s, _) = call(
        &env,
        TestRequest::get()
            .uri(&path)
            .peer_addr("192.0.2.50:1234".parse().unwrap()),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    env.state.audit.flush();

    let v = ok(&env, &tok, "/v1/downloads/").await;
    assert_eq!(v["total"], 1, "{v}");
    let entry = v["downloads"][0]["id"].clone();
    assert_link(&v["downloads"][0]["file"], "files", &fid);
    let v = ok(&env, &tok, "/v1/downloads/?expand=file").await;
    let f = &v["downloads"][0]["file"];
    assert_eq!(f, &file, "as the upload answered it (with its href)");
    let v = ok(&env, &tok, &format!("/v1/downloads/{entry}?expand_all=true")).await;
    assert_eq!(v["download"]["file"]["name"], "clip.mp4");
    assert_eq!(v["download"]["events"].as_array().unwrap().len(), 1);

    for path in [
        "/v1/downloads/?expand=pipeline".to_string(),
        format!("/v1/downloads/{entry}?expand=files"),
    ] {
        assert_refused(&path, get(&env, &tok, &path).await, "invalid_expand", "expand");
    }
    let path = format!("/v1/files/downloads/?file_id={fid}&expand=job");
    assert_refused(&path, get(&env, &tok, &path).await, "invalid_expand", "expand");

    // Deleted since: the link stays.
    let (s, _) = call(
        &env,
        bearer(TestRequest::delete().uri(&format!("/v1/files/{fid}")), &tok),
    )
    .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let v = ok(&env, &tok, "/v1/downloads/?expand=file").await;
    assert_link(&v["downloads"][0]["file"], "files", &fid);
    let v = ok(&env, &tok, &format!("/v1/downloads/{entry}?expand=file")).await;
    assert_link(&v["download"]["file"], "files", &fid);
}

#[actix_web::test]
async fn endpoints_without_links_refuse_any_name_to_expand() {
    let fx = fixture().await;
    let (env, tok) = (&fx.env, fx.tok.as_str());
    let p = &fx.pipeline;
    let out = id(&fx.output);
    for path in [
        "/v1/pipelines/?expand=file".to_string(),
        format!("/v1/pipelines/{p}?expand=pipeline"),
        "/v1/fraud/lists?expand=file".to_string(),
        "/v1/fraud/check?ip=192.0.2.1&expand=file".to_string(),
    ] {
        assert_refused(&path, get(env, tok, &path).await, "invalid_expand", "expand");
    }
    let (s, v) = post(
        env,
        tok,
        "/v1/pipelines/?expand=file",
        json!({"pipeline": {"name": "x"}}),
    )
    .await;
    assert_refused("create pipeline", (s, v), "invalid_expand", "expand");
    let (s, v) = call(
        env,
        bearer(
            TestRequest::delete().uri(&format!("/v1/pipelines/{p}?expand=file")),
            tok,
        ),
    )
    .await;
    assert_refused("delete pipeline", (s, v), "invalid_expand", "expand");
    let (s, v) = call(
        env,
        bearer(
            TestRequest::delete().uri(&format!("/v1/files/{out}?expand=file")),
            tok,
        ),
    )
    .await;
    assert_refused("delete file", (s, v), "invalid_expand", "expand");
    ok(env, tok, &format!("/v1/files/{out}")).await;
    let (client_id, secret) = env.app("mediahub");
    let (s, v) = call(
        env,
        TestRequest::post().uri("/v1/oauth2/token?expand=file").set_form([
            ("grant_type", "client_credentials"),
            ("client_id", client_id.as_str()),
            ("client_secret", secret.as_str()),
        ]),
    )
    .await;
    assert_refused("token", (s, v), "invalid_expand", "expand");

    // An empty expand, and expand_all, are fine.
    for path in [
        "/v1/pipelines/?expand=".to_string(),
        format!("/v1/pipelines/{p}?expand_all=true"),
        "/v1/fraud/lists?expand_all=true&expand=".to_string(),
    ] {
        ok(env, tok, &path).await;
    }
    let path = "/v1/pipelines/?expand_all=maybe";
    assert_refused(path, get(env, tok, path).await, "invalid_boolean", "expand_all");
}

#[actix_web::test]
async fn a_backtraces_file_links_expand() {
    let env = TestEnv::new();
    let tok = env.token("mediahub,autograph");
    let data = b"plain text, any other type gets a trailer\n".repeat(10);
    let file = env
        .upload(&tok, "?object_key=notes.txt&autograph=true", "notes.txt", &data)
        .await;
    let fid = id(&file);
    let v = ok(
        &env,
        &tok,
        &format!("/v1/files/downloads/?file_id={fid}&autograph_tag=bob"),
    )
    .await;
    let path = v["download"]["url"]
        .as_str()
        .unwrap()
        .strip_prefix(BASE)
        .unwrap()
        .to_string();
    let app = env.service().await;
    let res = test::call_service(
        &app,
        TestRequest::get()
            .uri(&path)
            .peer_addr("192.0.2.50:1234".parse().unwrap())
            .to_request(),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    let copy = test::read_body(res).await.to_vec();
    env.state.audit.flush();

    let trace = |q: &'static str| {
        let (ct, body) = multipart_file("leak.txt", &copy);
        bearer(TestRequest::post().uri(&format!("/v1/backtraces/{q}")), &tok)
            .insert_header(("Content-Type", ct))
            .set_payload(body)
    };
    let (s, v) = call(&env, trace("?expand=file")).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let b = &v["backtrace"];
    assert_eq!(b["result"], "found");
    assert_eq!(b["file"], file, "the whole file, as uploaded");
    assert_eq!(b["marks"][0]["file"]["name"], "notes.txt");
    assert_eq!(b["downloads"][0]["file"]["name"], "notes.txt", "{b}");
    let bid = id(b);

    let v = ok(&env, &tok, &format!("/v1/backtraces/{bid}")).await;
    assert_link(&v["backtrace"]["file"], "files", &fid);
    assert_link(&v["backtrace"]["downloads"][0]["file"], "files", &fid);
    let v = ok(&env, &tok, &format!("/v1/backtraces/{bid}?expand_all=true")).await;
    assert_eq!(v["backtrace"]["file"]["size"], data.len());
    let v = ok(&env, &tok, "/v1/backtraces/?expand=file").await;
    assert_eq!(v["backtraces"][0]["file"]["name"], "notes.txt");
    assert_eq!(v["backtraces"][0]["marks"][0]["file"]["name"], "notes.txt");

    let (s, v) = call(&env, trace("?expand=pipeline")).await;
    assert_refused("trace", (s, v), "invalid_expand", "expand");
    let path = format!("/v1/backtraces/{bid}?expand=job");
    assert_refused(&path, get(&env, &tok, &path).await, "invalid_expand", "expand");
}
