//! `GET /v1/files/downloads` and the links it hands out (SPEC §5, §6), in process with a
//! fixed clock.

mod common;

use actix_web::http::StatusCode;
use actix_web::test::{self, TestRequest};
use common::*;
use serde_json::Value;

const BASE: &str = "http://localhost:8080";

struct Fx {
    env: TestEnv,
    token: String,
    file: Value,
    data: Vec<u8>,
}

async fn fixture(name: &str, len: usize) -> Fx {
    fixture_with(name, len, |_| {}).await
}

async fn fixture_with(name: &str, len: usize, config: impl FnOnce(&mut filegate::config::Config)) -> Fx {
    let env = TestEnv::with_config(config);
    let token = env.token("mediahub,autograph");
    let data: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
    let file = env
        .upload(&token, "?object_key=media/clip.mp4", name, &data)
        .await;
    Fx {
        env,
        token,
        file,
        data,
    }
}

impl Fx {
    fn id(&self) -> String {
        self.file["id"].as_str().unwrap().to_string()
    }

    async fn call(&self, req: TestRequest) -> (StatusCode, actix_web::http::header::HeaderMap, Vec<u8>) {
        let app = self.env.service().await;
        let res = test::call_service(&app, req.to_request()).await;
        let status = res.status();
        let headers = res.headers().clone();
        let body = test::read_body(res).await.to_vec();
        (status, headers, body)
    }

    /// Asks for a link; returns (status, JSON answer).
    async fn ask(&self, query: &str) -> (StatusCode, Value) {
        let req = TestRequest::get()
            .uri(&format!("/v1/files/downloads/?{query}"))
            .insert_header(("Authorization", format!("Bearer {}", self.token)));
        let (s, _, b) = self.call(req).await;
        (s, serde_json::from_slice(&b).unwrap_or(Value::Null))
    }

    /// The path of a fresh link for `file_id=<this file>&extra`.
    async fn link(&self, extra: &str) -> String {
        let (s, v) = self.ask(&format!("file_id={}&{extra}", self.id())).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        v["download"]["url"]
            .as_str()
            .unwrap()
            .strip_prefix(BASE)
            .unwrap()
            .to_string()
    }

    async fn fetch(&self, path: &str) -> (StatusCode, actix_web::http::header::HeaderMap, Vec<u8>) {
        self.call(
            TestRequest::get()
                .uri(path)
                .peer_addr("192.0.2.50:1234".parse().unwrap()),
        )
        .await
    }
}

fn reason_of(body: &[u8]) -> String {
    let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    v["error"]["reason"].as_str().unwrap_or("").to_string()
}

#[actix_web::test]
async fn answer_carries_the_seed_fields_and_the_link_serves_the_bytes() {
    let fx = fixture("movie.mp4", 5000).await;
    let (s, v) = fx.ask(&format!("file_id={}", fx.id())).await;
    assert_eq!(s, StatusCode::OK);
    let d = &v["download"];
    assert_eq!(d["file"]["id"], fx.file["id"]);
    assert_eq!(d["file"]["href"], format!("{BASE}/v1/files/{}", fx.id()));
    assert_eq!(d["name"], "movie.mp4");
    assert_eq!(d["mime_type"], "video/mp4");
    assert_eq!(d["size"], 5000);
    assert_eq!(d["streaming"], false);
    assert_eq!(d["anti_fraud"], false);
    assert!(d["ip"].is_null() && d["autograph_tag"].is_null());
    assert_eq!(d["expiry_time"], NOW_MS / 1000 + 86400, "links.default_ttl");
    let url = d["url"].as_str().unwrap();
    assert!(
        url.starts_with(&format!("{BASE}/d/")) && url.ends_with("/movie.mp4"),
        "{url}"
    );

    let (s, h, body) = fx.fetch(url.strip_prefix(BASE).unwrap()).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(body, fx.data);
    assert_eq!(h.get("content-type").unwrap(), "video/mp4");
    assert_eq!(h.get("content-length").unwrap(), "5000");
    assert_eq!(h.get("accept-ranges").unwrap(), "bytes");
    assert_eq!(h.get("x-content-type-options").unwrap(), "nosniff");
    assert_eq!(h.get("cache-control").unwrap(), "private, max-age=86400");
    assert!(h.get("etag").unwrap().to_str().unwrap().starts_with('"'));
    assert!(h.get("last-modified").is_some());
    assert_eq!(
        h.get("content-disposition").unwrap(),
        "attachment; filename=\"movie.mp4\"; filename*=UTF-8''movie.mp4"
    );
}

#[actix_web::test]
async fn selection_by_object_key_trailing_slash_and_xml() {
    let fx = fixture("a.bin", 10).await;
    for uri in [
        "/v1/files/downloads?object_key=media/clip.mp4",
        "/v1/files/downloads/?object_key=media/clip.mp4&format=xml",
    ] {
        let req = TestRequest::get()
            .uri(uri)
            .insert_header(("Authorization", format!("Bearer {}", fx.token)));
        let (s, _, b) = fx.call(req).await;
        assert_eq!(s, StatusCode::OK, "{uri}");
        let text = String::from_utf8(b).unwrap();
        assert!(text.contains(&fx.id()), "{text}");
        if uri.contains("xml") {
            assert!(
                text.contains("<download><url>") && text.contains("<file><id>"),
                "{text}"
            );
            assert!(!text.contains("<ip"), "null fields are left out of XML");
        }
    }
    let (s, v) = fx
        .ask("object_key=media/clip.mp4&pipeline_id=0123456789abcdef01234567")
        .await;
    assert_eq!(
        (s, v["error"]["reason"].as_str()),
        (StatusCode::NOT_FOUND, Some("file_not_found"))
    );
}

#[actix_web::test]
async fn every_bad_parameter_has_its_reason() {
    let fx = fixture("a.bin", 10).await;
    let id = fx.id();
    let now = NOW_MS / 1000;
    let cases: Vec<(String, u16, &str, Option<&str>)> = vec![
        (
            "redirect=true".into(),
            400,
            "missing_file_selector",
            Some("file_id"),
        ),
        (
            format!("file_id={id}&object_key=x"),
            400,
            "conflicting_file_selector",
            Some("object_key"),
        ),
        (
            format!("file_id={id}&expiry_time={now}"),
            400,
            "expiry_in_past",
            Some("expiry_time"),
        ),
        (
            format!("file_id={id}&expiry_time={}", now + 30 * 86400 + 1),
            400,
            "expiry_too_far",
            Some("expiry_time"),
        ),
        (
            format!("file_id={id}&expiry_time=soon"),
            400,
            "invalid_expiry_time",
            Some("expiry_time"),
        ),
        (
            format!("file_id={id}&ip=4294967296"),
            400,
            "invalid_ip",
            Some("ip"),
        ),
        (format!("file_id={id}&ip=1.2.3"), 400, "invalid_ip", Some("ip")),
        (
            format!("file_id={id}&redirect=maybe"),
            400,
            "invalid_boolean",
            Some("redirect"),
        ),
        (
            format!("file_id={id}&streaming=2"),
            400,
            "invalid_boolean",
            Some("streaming"),
        ),
        (
            format!("file_id={id}&anti_fraud=yes"),
            400,
            "invalid_boolean",
            Some("anti_fraud"),
        ),
        (
            format!("file_id={id}&autograph_tag=T1"),
            400,
            "autograph_not_enabled",
            Some("autograph_tag"),
        ),
        (
            format!("file_id={id}&item=a.txt"),
            400,
            "not_an_archive",
            Some("item"),
        ),
        (
            format!("file_id={id}&max_parallel_downloads=0"),
            400,
            "invalid_max_parallel_downloads",
            Some("max_parallel_downloads"),
        ),
        (
            format!("file_id={id}&anti_frad=true"),
            400,
            "unknown_parameter",
            Some("anti_frad"),
        ),
        (
            format!("file_id={id}&format=yaml"),
            400,
            "invalid_format",
            Some("format"),
        ),
        (
            "file_id=0123456789abcdef01234567".into(),
            404,
            "file_not_found",
            None,
        ),
        ("file_id=not-an-id".into(), 404, "file_not_found", None),
    ];
    for (q, status, why, param) in cases {
        let (s, v) = fx.ask(&q).await;
        assert_eq!(s.as_u16(), status, "{q}: {v}");
        assert_eq!(v["error"]["reason"], why, "{q}");
        assert_eq!(v["error"]["param"].as_str(), param, "{q}");
    }
    // The edges that are allowed.
    assert_eq!(
        fx.ask(&format!("file_id={id}&expiry_time={}", now + 1)).await.0,
        StatusCode::OK
    );
    assert_eq!(
        fx.ask(&format!("file_id={id}&expiry_time={}", now + 30 * 86400))
            .await
            .0,
        StatusCode::OK
    );
}

#[actix_web::test]
async fn scopes_download_files_and_autograph() {
    let fx = fixture("a.bin", 10).await;
    let reader = fx.env.token("mediahub_read");
    let req = TestRequest::get()
        .uri(&format!("/v1/files/downloads/?file_id={}", fx.id()))
        .insert_header(("Authorization", format!("Bearer {reader}")));
    let (s, _, b) = fx.call(req).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let v: Value = serde_json::from_slice(&b).unwrap();
    assert_eq!(
        (v["error"]["error_code"].as_str(), v["error"]["param"].as_str()),
        (Some("0x0000004"), Some("mediahub_download_files"))
    );

    let tagged = fx
        .env
        .upload(&fx.token, "?object_key=ag.mp4&autograph=true", "ag.mp4", b"data")
        .await;
    let dl_only = fx.env.token("mediahub_download_files");
    let req = TestRequest::get()
        .uri(&format!(
            "/v1/files/downloads/?file_id={}&autograph_tag=T1",
            tagged["id"].as_str().unwrap()
        ))
        .insert_header(("Authorization", format!("Bearer {dl_only}")));
    let (s, _, b) = fx.call(req).await;
    assert_eq!(
        s,
        StatusCode::FORBIDDEN,
        "autograph_tag needs the autograph scope"
    );
    assert!(String::from_utf8_lossy(&b).contains("\"param\":\"autograph\""));
    let (s, v) = fx
        .ask(&format!(
            "file_id={}&autograph_tag=T1",
            tagged["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["download"]["autograph_tag"], "T1");
}

#[actix_web::test]
async fn redirect_answers_302_with_location_and_no_store() {
    let fx = fixture("a.bin", 10).await;
    let req = TestRequest::get()
        .uri(&format!("/v1/files/downloads/?file_id={}&redirect=true", fx.id()))
        .insert_header(("Authorization", format!("Bearer {}", fx.token)));
    let (s, h, _) = fx.call(req).await;
    assert_eq!(s, StatusCode::FOUND);
    assert_eq!(h.get("cache-control").unwrap(), "no-store");
    let loc = h.get("location").unwrap().to_str().unwrap();
    let (s, _, b) = fx.fetch(loc.strip_prefix(BASE).unwrap()).await;
    assert_eq!((s, b), (StatusCode::OK, fx.data.clone()));
}

#[actix_web::test]
async fn streaming_is_inline_but_never_for_script_capable_types() {
    let fx = fixture("clip.mp4", 10).await;
    let (_, h, _) = fx.fetch(&fx.link("streaming=true").await).await;
    assert!(h
        .get("content-disposition")
        .unwrap()
        .to_str()
        .unwrap()
        .starts_with("inline;"));
    assert!(h.get("content-security-policy").is_none());

    let page = fx
        .env
        .upload(
            &fx.token,
            "?object_key=p.html",
            "page.html",
            b"<script>alert(1)</script>",
        )
        .await;
    let (_, v) = fx
        .ask(&format!(
            "file_id={}&streaming=true",
            page["id"].as_str().unwrap()
        ))
        .await;
    let (_, h, _) = fx
        .fetch(v["download"]["url"].as_str().unwrap().strip_prefix(BASE).unwrap())
        .await;
    assert!(h
        .get("content-disposition")
        .unwrap()
        .to_str()
        .unwrap()
        .starts_with("attachment;"));
    assert_eq!(h.get("content-security-policy").unwrap(), "sandbox");
}

#[actix_web::test]
async fn any_change_to_a_link_is_refused() {
    let fx = fixture("report.pdf", 100).await;
    let link = fx.link("").await;
    assert_eq!(fx.fetch(&link).await.0, StatusCode::OK);
    let bytes = link.as_bytes();
    // Every byte after "/d/", flipped to another URL-safe character.
    for i in 3..bytes.len() {
        let mut b = bytes.to_vec();
        b[i] = if b[i] == b'A' { b'B' } else { b'A' };
        let changed = String::from_utf8(b).unwrap();
        let (s, _, body) = fx.fetch(&changed).await;
        assert!(
            s == StatusCode::FORBIDDEN || s == StatusCode::NOT_FOUND,
            "byte {i}: {s} for {changed}"
        );
        assert!(
            body.len() < 1000 && body != fx.data,
            "a refusal never carries file bytes"
        );
        if s == StatusCode::FORBIDDEN {
            assert_eq!(reason_of(&body), "invalid_signature", "byte {i}");
        }
    }
    let (token, name) = link.strip_prefix("/d/").unwrap().split_once('/').unwrap();
    for variant in [
        format!("{link}?x=1"),
        format!("{link}?"),
        format!("{link}/"),
        format!("/d/{token}/{name}/{name}"),
        format!("/d/{token}{token}/{name}"),
        format!("/d/{token}/{}", name.replace("report", "Report")),
        format!("/d/{token}/{}", name.replace('.', "%2E")),
        format!("/d/{}/{name}", &token[..token.len() - 1]),
        format!("/d/{token}=/{name}"),
    ] {
        let (s, _, _) = fx.fetch(&variant).await;
        assert!(
            s == StatusCode::FORBIDDEN || s == StatusCode::NOT_FOUND,
            "{variant}: {s}"
        );
    }
}

#[actix_web::test]
async fn only_get_and_head_of_link_shaped_paths_reach_a_link() {
    let fx = fixture("a.bin", 10).await;
    let link = fx.link("").await;
    let (s, _, b) = fx
        .call(
            TestRequest::post()
                .uri(&link)
                .peer_addr("192.0.2.50:1234".parse().unwrap()),
        )
        .await;
    assert_eq!(
        (s, reason_of(&b).as_str()),
        (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed")
    );
    for path in ["/d", "/d/", "/d/abc", "/d/abc/", "/d//name", "/dx/abc/name"] {
        let (s, _, b) = fx.fetch(path).await;
        assert_eq!(
            (s, reason_of(&b).as_str()),
            (StatusCode::NOT_FOUND, "no_such_route"),
            "{path}"
        );
    }
    let (s, _, b) = fx.fetch(&link).await;
    assert_eq!((s, b), (StatusCode::OK, fx.data.clone()));
    // Every answer under /d is counted under the one route label of links.
    let metrics = fx.env.state.metrics.render(&Default::default());
    for status in ["200", "404", "405"] {
        assert!(
            metrics.contains(&format!(
                "filegate_http_requests_total{{route=\"/d/{{token}}/{{name}}\",method=\"{}\",status=\"{status}\"}}",
                if status == "405" { "POST" } else { "GET" }
            )),
            "{status}: {metrics}"
        );
    }
}

#[actix_web::test]
async fn expiry_holds_to_the_second() {
    let fx = fixture("a.bin", 10).await;
    let exp = NOW_MS / 1000 + 100;
    let link = fx.link(&format!("expiry_time={exp}")).await;
    fx.env.clock.set_ms((exp - 1) * 1000 + 999);
    let (s, h, _) = fx.fetch(&link).await;
    assert_eq!(s, StatusCode::OK, "valid during its last second");
    assert_eq!(h.get("cache-control").unwrap(), "private, max-age=1");
    fx.env.clock.set_ms(exp * 1000);
    let (s, _, b) = fx.fetch(&link).await;
    assert_eq!((s, reason_of(&b).as_str()), (StatusCode::GONE, "link_expired"));
}

#[actix_web::test]
async fn ip_binding_uses_the_tcp_peer_not_forwarded_headers() {
    let fx = fixture("a.bin", 10).await;
    let link = fx.link("ip=3232236033").await;
    let from = |peer: &str| {
        TestRequest::get()
            .uri(&link)
            .peer_addr(format!("{peer}:5000").parse().unwrap())
    };
    let (s, _, _) = fx.call(from("192.168.2.1")).await;
    assert_eq!(s, StatusCode::OK);
    let (s, _, b) = fx.call(from("192.168.2.2")).await;
    assert_eq!(
        (s, reason_of(&b).as_str()),
        (StatusCode::FORBIDDEN, "ip_not_allowed")
    );
    let (s, _, _) = fx
        .call(from("192.168.2.2").insert_header(("X-Forwarded-For", "192.168.2.1")))
        .await;
    assert_eq!(
        s,
        StatusCode::FORBIDDEN,
        "a spoofed header from an untrusted peer changes nothing"
    );
    let (s, _, _) = fx.call(from("[::ffff:192.168.2.1]")).await;
    assert_eq!(s, StatusCode::OK, "IPv4-mapped IPv6 peer is the IPv4 address");

    let v6 = fx.link("ip=2001:db8::7").await;
    let (s, _, _) = fx
        .call(
            TestRequest::get()
                .uri(&v6)
                .peer_addr("[2001:db8::7]:80".parse().unwrap()),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
}

#[actix_web::test]
async fn ip_binding_believes_forwarded_for_from_a_trusted_proxy() {
    let env = TestEnv::with_config(|c| c.server.trusted_proxies = vec!["10.0.0.0/8".into()]);
    let token = env.token("mediahub");
    let f = env.upload(&token, "", "a.bin", b"abc").await;
    let fx = Fx {
        env,
        token,
        file: f,
        data: b"abc".to_vec(),
    };
    let link = fx.link("ip=192.0.2.10").await;
    let req = TestRequest::get()
        .uri(&link)
        .peer_addr("10.0.0.2:80".parse().unwrap())
        .insert_header(("X-Forwarded-For", "6.6.6.6, 192.0.2.10"));
    assert_eq!(fx.call(req).await.0, StatusCode::OK);
}

async fn ranged(
    fx: &Fx,
    link: &str,
    headers: &[(&str, &str)],
) -> (StatusCode, actix_web::http::header::HeaderMap, Vec<u8>) {
    let mut req = TestRequest::get()
        .uri(link)
        .peer_addr("192.0.2.50:1".parse().unwrap());
    for (k, v) in headers {
        req = req.insert_header((*k, *v));
    }
    fx.call(req).await
}

#[actix_web::test]
async fn range_checklist() {
    let fx = fixture("big.bin", 200_000).await;
    let link = fx.link("").await;
    let total = fx.data.len();

    let (s, h, b) = ranged(&fx, &link, &[("Range", "bytes=10-19")]).await;
    assert_eq!(s, StatusCode::PARTIAL_CONTENT);
    assert_eq!(h.get("content-range").unwrap(), &format!("bytes 10-19/{total}"));
    assert_eq!(b, &fx.data[10..20]);

    let (s, h, b) = ranged(&fx, &link, &[("Range", "bytes=-500")]).await;
    assert_eq!(
        (s, b.as_slice()),
        (StatusCode::PARTIAL_CONTENT, &fx.data[total - 500..])
    );
    assert_eq!(h.get("content-length").unwrap(), "500");

    let (s, _, b) = ranged(&fx, &link, &[("Range", "bytes=150000-")]).await;
    assert_eq!(
        (s, b.as_slice()),
        (StatusCode::PARTIAL_CONTENT, &fx.data[150_000..]),
        "open-ended, streamed"
    );

    let (s, h, b) = ranged(&fx, &link, &[("Range", "bytes=0-0,100000-100009")]).await;
    assert_eq!(s, StatusCode::PARTIAL_CONTENT);
    let ct = h.get("content-type").unwrap().to_str().unwrap().to_string();
    let boundary = ct
        .strip_prefix("multipart/byteranges; boundary=")
        .expect("multipart");
    assert_eq!(
        h.get("content-length").unwrap().to_str().unwrap(),
        b.len().to_string()
    );
    let text = String::from_utf8_lossy(&b);
    assert_eq!(text.matches(&format!("--{boundary}\r\n")).count(), 2);
    assert!(text.contains(&format!("Content-Range: bytes 0-0/{total}")));
    assert!(text.contains(&format!("Content-Range: bytes 100000-100009/{total}")));
    assert!(text.ends_with(&format!("--{boundary}--\r\n")));
    let part2 = &b[b.len() - (10 + boundary.len() + 8)..b.len() - (boundary.len() + 8)];
    assert_eq!(part2, &fx.data[100_000..100_010]);

    let (s, h, b) = ranged(&fx, &link, &[("Range", &format!("bytes={total}-"))]).await;
    assert_eq!(s, StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(h.get("content-range").unwrap(), &format!("bytes */{total}"));
    assert!(b.len() < 1000);

    let (s, _, b) = ranged(&fx, &link, &[("Range", "bytes=nonsense")]).await;
    assert_eq!(
        (s, b.len()),
        (StatusCode::OK, total),
        "a malformed Range is ignored"
    );
    let many = (0..40)
        .map(|i| format!("{}-{}", i * 10, i * 10 + 1))
        .collect::<Vec<_>>()
        .join(",");
    let (s, _, _) = ranged(&fx, &link, &[("Range", &format!("bytes={many}"))]).await;
    assert_eq!(s, StatusCode::OK, "too many ranges: the whole file instead");

    let (_, h, _) = ranged(&fx, &link, &[]).await;
    let etag = h.get("etag").unwrap().to_str().unwrap().to_string();
    let lm = h.get("last-modified").unwrap().to_str().unwrap().to_string();
    let (s, _, _) = ranged(&fx, &link, &[("Range", "bytes=0-9"), ("If-Range", &etag)]).await;
    assert_eq!(s, StatusCode::PARTIAL_CONTENT, "If-Range with the current ETag");
    let (s, _, b) = ranged(&fx, &link, &[("Range", "bytes=0-9"), ("If-Range", "\"other\"")]).await;
    assert_eq!(
        (s, b.len()),
        (StatusCode::OK, total),
        "stale If-Range: whole file"
    );
    let (s, _, b) = ranged(&fx, &link, &[("If-None-Match", &etag)]).await;
    assert_eq!((s, b.len()), (StatusCode::NOT_MODIFIED, 0));
    let (s, _, _) = ranged(&fx, &link, &[("If-Modified-Since", &lm)]).await;
    assert_eq!(s, StatusCode::NOT_MODIFIED);
    let (s, _, _) = ranged(&fx, &link, &[("If-Match", "\"nope\"")]).await;
    assert_eq!(s, StatusCode::PRECONDITION_FAILED);
}

#[actix_web::test]
async fn head_has_the_get_headers_and_no_body() {
    let fx = fixture("big.bin", 100_000).await;
    let link = fx.link("").await;
    let (s, h, b) = fx
        .call(
            TestRequest::default()
                .method(actix_web::http::Method::HEAD)
                .uri(&link),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(h.get("content-length").unwrap(), "100000");
    assert!(b.is_empty());
}

#[actix_web::test]
async fn content_disposition_survives_hostile_names() {
    let env = TestEnv::new();
    let token = env.token("mediahub");
    let long = format!("{}.txt", "ä".repeat(148));
    for name in [
        "say \"hi\" \\ there.txt",
        "Ünïcødé – 東京.mp4",
        long.as_str(),
        "semi;colon,comma.txt",
    ] {
        let f = env.upload(&token, "", name, b"x").await;
        let app = env.service().await;
        let req = TestRequest::get()
            .uri(&format!(
                "/v1/files/downloads/?file_id={}",
                f["id"].as_str().unwrap()
            ))
            .insert_header(("Authorization", format!("Bearer {token}")));
        let v = json_body(test::call_service(&app, req.to_request()).await).await;
        assert_eq!(v["download"]["name"], name);
        let url = v["download"]["url"]
            .as_str()
            .unwrap()
            .strip_prefix(BASE)
            .unwrap()
            .to_string();
        let last = url.rsplit('/').next().unwrap();
        let decoded = percent_encoding::percent_decode_str(last).decode_utf8().unwrap();
        assert_eq!(decoded, name, "the last path segment is the name");
        let res = test::call_service(&app, TestRequest::get().uri(&url).to_request()).await;
        assert_eq!(res.status(), StatusCode::OK, "{name}");
        let cd = res
            .headers()
            .get("content-disposition")
            .unwrap()
            .to_str()
            .unwrap()
            .to_string();
        let (fallback, star) = cd.split_once("; filename*=UTF-8''").unwrap();
        let fallback = fallback
            .strip_prefix("attachment; filename=\"")
            .unwrap()
            .strip_suffix('"')
            .unwrap();
        assert!(
            fallback.is_ascii() && !fallback.contains(['"', '\r', '\n', '\\']),
            "{cd}"
        );
        assert_eq!(
            percent_encoding::percent_decode_str(star).decode_utf8().unwrap(),
            name
        );
    }
    // Control characters never reach the name at all.
    let f = env.upload(&token, "", "evil\r\nSet-Cookie: x=1.txt", b"x").await;
    assert!(!f["name"].as_str().unwrap().contains(['\r', '\n']));
}

#[actix_web::test]
async fn key_rotation_keeps_old_links_until_their_key_is_retired() {
    let fx = fixture("a.bin", 10).await;
    let old = fx.link("").await;
    let st = &fx.env.state;
    let new_id = {
        let mut c = st.catalog.conn().unwrap();
        filegate::delivery::keyring::create(&mut c, &st.secrets, NOW_MS).unwrap()
    };
    st.keys.reload_blocking(NOW_MS).unwrap();
    let new = fx.link("").await;
    assert_ne!(old, new);
    assert_eq!(fx.fetch(&old).await.0, StatusCode::OK, "old key still verifies");
    assert_eq!(fx.fetch(&new).await.0, StatusCode::OK);
    {
        let mut c = st.catalog.conn().unwrap();
        filegate::delivery::keyring::retire(&mut c, &st.secrets, new_id - 1, NOW_MS).unwrap();
    }
    st.keys.reload_blocking(NOW_MS).unwrap();
    let (s, _, b) = fx.fetch(&old).await;
    assert_eq!(
        (s, reason_of(&b).as_str()),
        (StatusCode::FORBIDDEN, "invalid_signature")
    );
    assert_eq!(fx.fetch(&new).await.0, StatusCode::OK);
}

#[actix_web::test]
async fn revoking_a_file_kills_earlier_links_only() {
    let fx = fixture("a.bin", 10).await;
    let before = fx.link("").await;
    let req = TestRequest::post()
        .uri(&format!("/v1/files/{}/revoke", fx.id()))
        .insert_header(("Authorization", format!("Bearer {}", fx.token)));
    let (s, _, b) = fx.call(req).await;
    assert_eq!(s, StatusCode::OK, "{}", String::from_utf8_lossy(&b));
    let (s, _, b) = fx.fetch(&before).await;
    assert_eq!((s, reason_of(&b).as_str()), (StatusCode::GONE, "link_revoked"));
    fx.env.clock.advance_secs(1);
    let after = fx.link("").await;
    assert_eq!(fx.fetch(&after).await.0, StatusCode::OK);
}

#[actix_web::test]
async fn deleting_a_file_or_disabling_its_application_stops_links_at_once() {
    let fx = fixture("a.bin", 10).await;
    let link = fx.link("").await;
    assert_eq!(fx.fetch(&link).await.0, StatusCode::OK);
    assert_eq!(fx.env.state.store.open_count(), 1, "the served blob is kept open");
    let req = TestRequest::delete()
        .uri(&format!("/v1/files/{}", fx.id()))
        .insert_header(("Authorization", format!("Bearer {}", fx.token)));
    assert_eq!(fx.call(req).await.0, StatusCode::NO_CONTENT);
    assert_eq!(
        fx.env.state.store.open_count(),
        0,
        "deleting the file closes its blob at once (its disk space is freed)"
    );
    let (s, _, b) = fx.fetch(&link).await;
    assert_eq!(
        (s, reason_of(&b).as_str()),
        (StatusCode::NOT_FOUND, "file_not_found")
    );

    let fx = fixture("b.bin", 10).await;
    let link = fx.link("").await;
    assert_eq!(fx.fetch(&link).await.0, StatusCode::OK);
    let conn = fx.env.state.catalog.conn().unwrap();
    conn.execute("UPDATE apps SET enabled = 0", []).unwrap();
    fx.env.state.cache.invalidate_app(
        &conn
            .query_row("SELECT id FROM apps", [], |r| r.get::<_, String>(0))
            .unwrap(),
    );
    let (s, _, b) = fx.fetch(&link).await;
    assert_eq!((s, reason_of(&b).as_str()), (StatusCode::GONE, "link_revoked"));
}

#[actix_web::test]
async fn a_small_file_is_read_once_a_second_however_often_it_is_fetched() {
    let fx = fixture("a.bin", 5000).await;
    let link = fx.link("").await;
    let (s, _, b) = fx.fetch(&link).await;
    assert_eq!((s, b.as_slice()), (StatusCode::OK, fx.data.as_slice()));
    assert_eq!(fx.env.state.cache.small_blobs_bytes(), 5000, "its bytes are kept");
    // The bytes on disk change behind the server's back (same length): within the
    // second, the kept bytes are served, whole and in ranges.
    let blob = fx
        .env
        .state
        .store
        .path(fx.file["sha256"].as_str().unwrap())
        .unwrap();
    std::fs::write(&blob, vec![b'x'; 5000]).unwrap();
    let ranged = |r: &'static str| TestRequest::get().uri(&link).insert_header(("Range", r));
    let (s, h, b) = fx.call(ranged("bytes=100-199")).await;
    assert_eq!(s, StatusCode::PARTIAL_CONTENT);
    assert_eq!(h.get("content-range").unwrap(), "bytes 100-199/5000");
    assert_eq!(b.as_slice(), &fx.data[100..200]);
    let (s, h, b) = fx.call(ranged("bytes=-1")).await;
    assert_eq!(
        (s, h.get("content-length").unwrap().to_str().unwrap()),
        (StatusCode::PARTIAL_CONTENT, "1")
    );
    assert_eq!(b.as_slice(), &fx.data[4999..]);
    assert_eq!(fx.fetch(&link).await.2, fx.data);
    // A second later the file is read again.
    fx.env.clock.advance_secs(1);
    assert_eq!(fx.fetch(&link).await.2, vec![b'x'; 5000]);
    // A HEAD reads nothing; a file bigger than 64 KiB is streamed, never kept.
    let big = fixture("b.bin", 64 * 1024 + 1).await;
    let link = big.link("").await;
    let (s, _, b) = big
        .call(
            TestRequest::default()
                .method(actix_web::http::Method::HEAD)
                .uri(&link),
        )
        .await;
    assert_eq!((s, b.len()), (StatusCode::OK, 0));
    assert_eq!(big.fetch(&link).await.2, big.data);
    assert_eq!(big.env.state.cache.small_blobs_bytes(), 0);
}

#[actix_web::test]
async fn browsers_get_a_small_html_refusal() {
    let fx = fixture("a.bin", 10).await;
    let link = fx.link(&format!("expiry_time={}", NOW_MS / 1000 + 5)).await;
    fx.env.clock.advance_secs(10);
    let (s, h, b) = fx
        .call(
            TestRequest::get()
                .uri(&link)
                .insert_header(("Accept", "text/html")),
        )
        .await;
    assert_eq!(s, StatusCode::GONE);
    assert!(h
        .get("content-type")
        .unwrap()
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    assert!(String::from_utf8_lossy(&b).contains("expired"));
}

#[actix_web::test]
async fn serving_a_plain_link_writes_to_the_catalog_only_through_the_batched_audit_trail() {
    // Batches wait up to a minute here: anything written while serving would be a
    // write of the request itself.
    let fx = fixture_with("a.bin", 10, |c| {
        c.audit.flush_ms = 60_000;
        c.audit.batch_size = 100_000;
    })
    .await;
    let version = |env: &TestEnv| -> i64 {
        // total_changes on a fresh connection is 0; compare the WAL frame count instead.
        let c = env.state.catalog.conn().unwrap();
        c.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| r.get::<_, i64>(1))
            .unwrap()
    };
    let before = version(&fx.env);
    let link = fx.link("").await;
    for _ in 0..5 {
        assert_eq!(fx.fetch(&link).await.0, StatusCode::OK);
    }
    assert_eq!(
        version(&fx.env),
        before,
        "no WAL frames were written while serving"
    );
    let c = fx.env.state.catalog.conn().unwrap();
    let queued: i64 = c
        .query_row("SELECT count(*) FROM downloads", [], |r| r.get(0))
        .unwrap();
    assert_eq!(queued, 0, "the audit rows wait for their batch");
    fx.env.state.audit.flush();
    let (rows, requests): (i64, i64) = c
        .query_row("SELECT count(*), sum(requests) FROM downloads", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    assert_eq!(
        (rows, requests),
        (1, 5),
        "one client, one link: one download of 5 requests"
    );
}

#[actix_web::test]
async fn a_file_marked_missing_by_verify_repair_answers_410() {
    let fx = fixture("a.bin", 10).await;
    let link = fx.link("").await;
    let conn = fx.env.state.catalog.conn().unwrap();
    conn.execute("UPDATE files SET missing_since = ?1", [NOW_MS])
        .unwrap();
    fx.env.state.cache.invalidate_file(&fx.id());
    let (s, v) = fx.ask(&format!("file_id={}", fx.id())).await;
    assert_eq!(
        (s, v["error"]["reason"].as_str()),
        (StatusCode::GONE, Some("file_missing"))
    );
    let (s, _, b) = fx.fetch(&link).await;
    assert_eq!((s, reason_of(&b).as_str()), (StatusCode::GONE, "file_missing"));
}
