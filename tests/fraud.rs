//! Anti-fraud links, the lists and the download audit trail, in process with a fixed
//! clock and explicit peers (SPEC §5 `anti_fraud`, §8; issue 8).

mod common;

use actix_web::body::MessageBody;
use actix_web::http::StatusCode;
use actix_web::test::{self, TestRequest};
use common::*;
use filegate::clock::Clock;
use filegate::config::Config;
use filegate::fraud::lists::{self, List};
use serde_json::Value;

const BASE: &str = "http://localhost:8080";

struct Fx {
    env: TestEnv,
    token: String,
    id: String,
    data: Vec<u8>,
}

async fn fixture_with(config: impl FnOnce(&mut Config)) -> Fx {
    let env = TestEnv::with_config(config);
    let token = env.token("mediahub,autograph");
    let data: Vec<u8> = (0..100_000u32).map(|i| (i * 13 % 251) as u8).collect();
    let file = env
        .upload(&token, "?object_key=clip.mp4&autograph=true", "clip.mp4", &data)
        .await;
    Fx {
        id: file["id"].as_str().unwrap().to_string(),
        env,
        token,
        data,
    }
}

async fn fixture() -> Fx {
    fixture_with(|_| {}).await
}

/// True when the link carries an AutoGraph tag (its claims are signed, not hidden).
fn link_is_tagged(link: &str) -> bool {
    use base64::Engine;
    let token = link.trim_start_matches("/d/").split('/').next().unwrap_or("");
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .unwrap_or_default();
    raw.get(2).is_some_and(|flags| flags & 0x20 != 0)
}

fn reason_of(body: &[u8]) -> String {
    let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    v["error"]["reason"].as_str().unwrap_or("").to_string()
}

impl Fx {
    async fn call(&self, req: TestRequest) -> (StatusCode, Vec<u8>) {
        let app = self.env.service().await;
        let res = test::call_service(&app, req.to_request()).await;
        let status = res.status();
        (status, test::read_body(res).await.to_vec())
    }

    async fn api(&self, uri: &str) -> (StatusCode, Value) {
        let (s, b) = self
            .call(
                TestRequest::get()
                    .uri(uri)
                    .insert_header(("Authorization", format!("Bearer {}", self.token))),
            )
            .await;
        (s, serde_json::from_slice(&b).unwrap_or(Value::Null))
    }

    /// A fresh link (the clock moves 1 ms first: links with equal claims issued in the
    /// same millisecond are the same link).
    async fn link(&self, extra: &str) -> String {
        self.env.clock.set_ms(self.env.clock.now_ms() + 1);
        let (s, v) = self
            .api(&format!("/v1/files/downloads/?file_id={}&{extra}", self.id))
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        v["download"]["url"]
            .as_str()
            .unwrap()
            .strip_prefix(BASE)
            .unwrap()
            .to_string()
    }

    /// GET `link` from `peer` (an address, port 4000) with extra headers: (status, reason).
    async fn get(&self, link: &str, peer: &str, headers: &[(&str, &str)]) -> (u16, String) {
        let peer: std::net::IpAddr = peer.parse().unwrap();
        let mut req = TestRequest::get()
            .uri(link)
            .peer_addr(std::net::SocketAddr::new(peer, 4000));
        for (k, v) in headers {
            req = req.insert_header((*k, *v));
        }
        let (s, b) = self.call(req).await;
        if s == StatusCode::OK {
            // A tagged link's copy is the file with an AutoGraph mark after it (a trailer:
            // these bytes are no real MP4).
            assert!(b.starts_with(&self.data), "a delivery carries the file");
            assert_eq!(b.len() == self.data.len(), !link_is_tagged(link), "{link}");
        }
        (s.as_u16(), reason_of(&b))
    }

    fn import(&self, list: List, source: &str, text: &str) {
        let mut c = self.env.state.catalog.conn().unwrap();
        lists::import(&mut c, list, source, text, NOW_MS).unwrap();
        self.env.state.fraud.lists.reload_blocking().unwrap();
    }

    fn audit_flush(&self) {
        self.env.state.audit.flush();
    }
}

#[actix_web::test]
async fn each_anti_fraud_refusal_has_its_reason() {
    let fx = fixture().await;
    fx.import(List::Blocklist, "manual", "203.0.113.0/24\n2001:db8:bad::/48\n");
    fx.import(List::Anonymizers, "tor", "# exits\n198.51.100.66\n");
    let link = fx.link("anti_fraud=true").await;

    assert_eq!(
        fx.get(&link, "203.0.113.9", &[]).await,
        (403, "blocked_ip".into())
    );
    assert_eq!(
        fx.get(&link, "2001:db8:bad::1", &[]).await,
        (403, "blocked_ip".into())
    );
    assert_eq!(
        fx.get(&link, "::ffff:203.0.113.9", &[]).await,
        (403, "blocked_ip".into()),
        "a mapped peer is its IPv4 address"
    );
    assert_eq!(
        fx.get(&link, "198.51.100.66", &[]).await,
        (403, "anonymizer".into())
    );
    for (h, v) in [
        ("Via", "1.1 squid"),
        ("X-Forwarded-For", "192.0.2.1"),
        ("Forwarded", "for=192.0.2.1"),
        ("X-Real-IP", "192.0.2.1"),
    ] {
        assert_eq!(
            fx.get(&link, "192.0.2.10", &[(h, v)]).await,
            (403, "proxy_detected".into()),
            "{h}"
        );
    }
    // None of those refusals claimed the link: the first clean client gets it ...
    assert_eq!(fx.get(&link, "192.0.2.10", &[]).await.0, 200);
    assert_eq!(
        fx.get(&link, "192.0.2.10", &[("Range", "bytes=0-9")]).await.0,
        206
    );
    // ... and keeps it; anybody else is refused.
    assert_eq!(
        fx.get(&link, "192.0.2.11", &[]).await,
        (403, "link_shared".into())
    );
    assert_eq!(
        fx.get(&link, "2001:db8::1", &[]).await,
        (403, "link_shared".into())
    );
    assert_eq!(fx.get(&link, "192.0.2.10", &[]).await.0, 200);
    // A browser gets a page saying why.
    let (s, b) = fx
        .call(
            TestRequest::get()
                .uri(&link)
                .peer_addr("192.0.2.11:1".parse().unwrap())
                .insert_header(("Accept", "text/html")),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert!(String::from_utf8_lossy(&b).contains("another network address"));

    // Without anti_fraud, the lists and sharing change nothing.
    let plain = fx.link("").await;
    for peer in ["203.0.113.9", "198.51.100.66", "192.0.2.11", "192.0.2.12"] {
        assert_eq!(
            fx.get(&plain, peer, &[("Via", "1.1 squid")]).await.0,
            200,
            "{peer}"
        );
    }
    // The answer says anti_fraud, and the refusals are counted by reason.
    let (_, v) = fx
        .api(&format!("/v1/files/downloads/?file_id={}&anti_fraud=true", fx.id))
        .await;
    assert_eq!(v["download"]["anti_fraud"], true);
    let res = test::call_service(
        &fx.env.service().await,
        TestRequest::get()
            .uri("/metrics")
            .peer_addr("127.0.0.1:1".parse().unwrap())
            .to_request(),
    )
    .await;
    let text = String::from_utf8(test::read_body(res).await.to_vec()).unwrap();
    for (reason, n) in [
        ("blocked_ip", 3),
        ("anonymizer", 1),
        ("proxy_detected", 4),
        ("link_shared", 3),
    ] {
        assert!(
            text.contains(&format!("filegate_refusals_total{{reason=\"{reason}\"}} {n}")),
            "{reason}: {text}"
        );
    }
}

/// Each refusal a browser can meet says why in words of its own, not "not valid".
#[actix_web::test]
async fn browsers_are_told_why_a_link_is_refused() {
    let fx = fixture().await;
    fx.import(List::Blocklist, "manual", "203.0.113.0/24\n");
    fx.import(List::Anonymizers, "tor", "198.51.100.66\n");
    let guarded = fx.link("anti_fraud=true").await;
    assert_eq!(fx.get(&guarded, "192.0.2.10", &[]).await.0, 200, "first client");
    let bound = fx.link("ip=192.0.2.7").await;
    let plain = fx.link("").await;
    let (token, name) = plain.trim_start_matches("/d/").split_once('/').unwrap();
    let flipped = if token.ends_with('A') { 'B' } else { 'A' };
    let tampered = format!("/d/{}{flipped}/{name}", &token[..token.len() - 1]);

    let page = |link: String, peer: &'static str, headers: Vec<(&'static str, &'static str)>| {
        let mut req = TestRequest::get()
            .uri(&link)
            .peer_addr(format!("{peer}:4000").parse().unwrap())
            .insert_header(("Accept", "text/html,application/xhtml+xml,*/*;q=0.8"));
        for h in headers {
            req = req.insert_header(h);
        }
        req
    };
    let cases = [
        (
            page(guarded.clone(), "203.0.113.9", vec![]),
            "blocked_ip",
            403,
            "are blocked",
        ),
        (
            page(guarded.clone(), "198.51.100.66", vec![]),
            "anonymizer",
            403,
            "anonymizing service",
        ),
        (
            page(guarded.clone(), "192.0.2.10", vec![("Via", "1.1 squid")]),
            "proxy_detected",
            403,
            "through a proxy",
        ),
        (
            page(guarded.clone(), "192.0.2.11", vec![]),
            "link_shared",
            403,
            "already in use",
        ),
        (
            page(bound.clone(), "192.0.2.8", vec![]),
            "ip_not_allowed",
            403,
            "bound to another",
        ),
        (
            page(tampered.clone(), "192.0.2.10", vec![]),
            "invalid_signature",
            403,
            "was altered",
        ),
    ];
    for (req, reason, status, words) in cases {
        let (s, body) = fx.call(req).await;
        let body = String::from_utf8_lossy(&body);
        assert_eq!(s.as_u16(), status, "{reason}: {body}");
        let sentence = filegate::delivery::serve::explain(reason);
        assert!(sentence.contains(words), "{reason}: {sentence}");
        assert!(
            body.contains("<h1>") && body.contains(sentence),
            "{reason}: {body}"
        );
        if reason != "invalid_signature" {
            assert!(!body.contains("not valid"), "{reason}: {body}");
        }
        assert!(!body.contains("cannot be used."), "{reason}: the fallback");
    }
    // Programs still get the JSON with the reason.
    assert_eq!(
        fx.get(&guarded, "198.51.100.66", &[]).await,
        (403, "anonymizer".into())
    );

    // Revoked, then deleted.
    let (s, _) = fx
        .call(
            TestRequest::post()
                .uri(&format!("/v1/files/{}/revoke", fx.id))
                .insert_header(("Authorization", format!("Bearer {}", fx.token))),
        )
        .await;
    assert!(s.is_success(), "{s}");
    let (s, body) = fx.call(page(plain.clone(), "192.0.2.10", vec![])).await;
    assert_eq!(s, StatusCode::GONE);
    assert!(String::from_utf8_lossy(&body).contains("has been revoked"));
    let fresh = fx.link("").await;
    let (s, _) = fx
        .call(
            TestRequest::delete()
                .uri(&format!("/v1/files/{}", fx.id))
                .insert_header(("Authorization", format!("Bearer {}", fx.token))),
        )
        .await;
    assert!(s.is_success(), "{s}");
    let (s, body) = fx.call(page(fresh, "192.0.2.10", vec![])).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert!(String::from_utf8_lossy(&body).contains("no longer exists"));
}

#[actix_web::test]
async fn deny_blocklisted_always_covers_every_link() {
    let fx = fixture_with(|c| c.fraud.deny_blocklisted_always = true).await;
    fx.import(List::Blocklist, "default", "203.0.113.0/24\n");
    fx.import(List::Anonymizers, "default", "198.51.100.0/24\n");
    let plain = fx.link("").await;
    assert_eq!(
        fx.get(&plain, "203.0.113.200", &[]).await,
        (403, "blocked_ip".into())
    );
    assert_eq!(
        fx.get(&plain, "198.51.100.1", &[("Via", "x")]).await.0,
        200,
        "only the block list: anonymizers and proxies are anti_fraud matters"
    );
    assert_eq!(fx.get(&plain, "192.0.2.1", &[]).await.0, 200);
}

#[actix_web::test]
async fn same_client_is_a_configurable_prefix() {
    // Default: /32 for IPv4, /64 for IPv6.
    let fx = fixture().await;
    let link = fx.link("anti_fraud=true").await;
    assert_eq!(fx.get(&link, "192.0.2.10", &[]).await.0, 200);
    assert_eq!(
        fx.get(&link, "192.0.2.11", &[]).await,
        (403, "link_shared".into())
    );
    let v6 = fx.link("anti_fraud=true").await;
    assert_eq!(fx.get(&v6, "2001:db8:1:2::1", &[]).await.0, 200);
    assert_eq!(
        fx.get(&v6, "2001:db8:1:2:ffff:ffff:ffff:9", &[]).await.0,
        200,
        "same /64: a phone's privacy address changed"
    );
    assert_eq!(
        fx.get(&v6, "2001:db8:1:3::1", &[]).await,
        (403, "link_shared".into())
    );

    // /24: a phone moving inside its carrier's range is the same client.
    let fx = fixture_with(|c| {
        c.fraud.same_client_prefix_v4 = 24;
        c.fraud.same_client_prefix_v6 = 48;
    })
    .await;
    let link = fx.link("anti_fraud=true").await;
    assert_eq!(fx.get(&link, "192.0.2.10", &[]).await.0, 200);
    assert_eq!(fx.get(&link, "192.0.2.250", &[]).await.0, 200);
    assert_eq!(fx.get(&link, "::ffff:192.0.2.7", &[]).await.0, 200);
    assert_eq!(fx.get(&link, "192.0.3.1", &[]).await, (403, "link_shared".into()));
    let v6 = fx.link("anti_fraud=true").await;
    assert_eq!(fx.get(&v6, "2001:db8:1:2::1", &[]).await.0, 200);
    assert_eq!(fx.get(&v6, "2001:db8:1:ffff::1", &[]).await.0, 200);
    assert_eq!(
        fx.get(&v6, "2001:db8:2::1", &[]).await,
        (403, "link_shared".into())
    );
}

#[actix_web::test]
async fn behind_a_trusted_proxy_the_forwarded_client_is_checked() {
    let fx = fixture_with(|c| c.server.trusted_proxies = vec!["10.0.0.0/8".into(), "fd00::/8".into()]).await;
    fx.import(List::Blocklist, "default", "203.0.113.0/24\n");
    let link = fx.link("anti_fraud=true").await;
    let via = |client: &'static str| [("X-Forwarded-For", client)];
    assert_eq!(
        fx.get(&link, "10.0.0.2", &via("203.0.113.5")).await,
        (403, "blocked_ip".into())
    );
    assert_eq!(
        fx.get(&link, "10.0.0.2", &via("203.0.113.5, 192.0.2.10")).await,
        (403, "proxy_detected".into()),
        "the client (or something in front of it) wrote a hop of its own"
    );
    assert_eq!(
        fx.get(&link, "10.0.0.2", &via("banana")).await,
        (403, "proxy_detected".into()),
        "garbage: the client is unknown"
    );
    assert_eq!(fx.get(&link, "10.0.0.2", &via("192.0.2.10")).await.0, 200);
    assert_eq!(
        fx.get(&link, "fd00::1", &via("192.0.2.10, 10.0.0.9")).await.0,
        200,
        "a chain of trusted proxies, the same client"
    );
    assert_eq!(
        fx.get(&link, "10.0.0.3", &[("Forwarded", "for=192.0.2.10;proto=https")])
            .await
            .0,
        200
    );
    assert_eq!(
        fx.get(&link, "10.0.0.2", &via("192.0.2.99")).await,
        (403, "link_shared".into())
    );
    assert_eq!(
        fx.get(&link, "192.0.2.99", &via("192.0.2.10")).await,
        (403, "proxy_detected".into()),
        "a spoofed header from an untrusted peer is never believed"
    );
}

#[actix_web::test]
async fn of_two_first_uses_at_once_exactly_one_wins() {
    let fx = fixture().await;
    for round in 0..8 {
        let link = fx.link("anti_fraud=true").await;
        let a = fx.get(&link, "192.0.2.1", &[]);
        let b = fx.get(&link, "198.51.100.1", &[]);
        let c = fx.get(&link, "2001:db8::1", &[]);
        let (a, b, c) = futures_util::future::join3(a, b, c).await;
        let mut codes = [a.0, b.0, c.0];
        codes.sort();
        assert_eq!(codes, [200, 403, 403], "round {round}: {a:?} {b:?} {c:?}");
        for r in [a, b, c] {
            assert!(r.0 == 200 || r.1 == "link_shared");
        }
    }
}

#[actix_web::test]
async fn the_first_use_survives_a_restart_and_head_claims_nothing() {
    let fx = fixture().await;
    let link = fx.link("anti_fraud=true").await;
    let head = |peer: &str| {
        TestRequest::default()
            .method(actix_web::http::Method::HEAD)
            .uri(&link)
            .peer_addr(format!("{peer}:1").parse().unwrap())
    };
    assert_eq!(
        fx.call(head("198.51.100.1")).await.0,
        StatusCode::OK,
        "a link preview"
    );
    assert_eq!(
        fx.get(&link, "192.0.2.10", &[]).await.0,
        200,
        "HEAD claimed nothing"
    );
    let (s, b) = fx.call(head("198.51.100.1")).await;
    assert_eq!((s, reason_of(&b)), (StatusCode::FORBIDDEN, "link_shared".into()));

    // Another process on the same data directory (a restarted server) knows the owner.
    let again =
        filegate::state::AppState::open((*fx.env.state.config).clone(), fx.env.clock.clone()).unwrap();
    let app =
        test::init_service(actix_web::App::new().configure(move |c| filegate::configure(c, again))).await;
    let res = test::call_service(
        &app,
        TestRequest::get()
            .uri(&link)
            .peer_addr("198.51.100.1:1".parse().unwrap())
            .to_request(),
    )
    .await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let res = test::call_service(
        &app,
        TestRequest::get()
            .uri(&link)
            .peer_addr("192.0.2.10:1".parse().unwrap())
            .to_request(),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);

    // Expired links' records are swept.
    fx.env.clock.advance_secs(86_400 + 1);
    let n = fx
        .env
        .state
        .fraud
        .first_use
        .sweep(fx.env.clock.now_ms())
        .await
        .unwrap();
    assert_eq!(n, 1);
}

#[actix_web::test]
async fn parallel_limit_counts_running_bodies_of_a_link_and_of_a_tag() {
    let fx = fixture().await;
    let app = fx.env.service().await;
    let link = fx.link("max_parallel_downloads=2").await;
    let req = |l: &str| {
        TestRequest::get()
            .uri(l)
            .peer_addr("192.0.2.1:1".parse().unwrap())
            .to_request()
    };
    // Two answers whose bodies are not read yet are two running downloads.
    let r1 = test::call_service(&app, req(&link)).await;
    let r2 = test::call_service(&app, req(&link)).await;
    assert_eq!((r1.status(), r2.status()), (StatusCode::OK, StatusCode::OK));
    let r3 = test::call_service(&app, req(&link)).await;
    assert_eq!(r3.status(), StatusCode::TOO_MANY_REQUESTS);
    let v: Value = serde_json::from_slice(&test::read_body(r3).await).unwrap();
    assert_eq!(v["error"]["reason"], "too_many_parallel_downloads");
    assert_eq!(v["error"]["error_code"], "0x0230005");
    // HEAD takes no slot.
    let head = TestRequest::default()
        .method(actix_web::http::Method::HEAD)
        .uri(&link)
        .to_request();
    assert_eq!(test::call_service(&app, head).await.status(), StatusCode::OK);
    // Reading one body to its end frees its slot; dropping one unread frees it too.
    assert_eq!(test::read_body(r1).await.len(), fx.data.len());
    let r4 = test::call_service(&app, req(&link)).await;
    assert_eq!(r4.status(), StatusCode::OK);
    drop(r2);
    let r5 = test::call_service(&app, req(&link)).await;
    assert_eq!(r5.status(), StatusCode::OK);
    drop((r4, r5));

    // The same tag on two links shares one budget (per application).
    let t1 = fx.link("autograph_tag=customer-7&max_parallel_downloads=1").await;
    let t2 = fx.link("autograph_tag=customer-7&max_parallel_downloads=1").await;
    let other = fx.link("autograph_tag=customer-8&max_parallel_downloads=1").await;
    let a = test::call_service(&app, req(&t1)).await;
    assert_eq!(a.status(), StatusCode::OK);
    assert_eq!(
        test::call_service(&app, req(&t2)).await.status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    let b = test::call_service(&app, req(&other)).await;
    assert_eq!(b.status(), StatusCode::OK);
    drop(a);
    assert_eq!(test::call_service(&app, req(&t2)).await.status(), StatusCode::OK);
    drop(b);
}

#[actix_web::test]
async fn the_audit_trail_has_every_delivery_and_refusal_and_counts_range_requests_once() {
    let fx = fixture().await;
    fx.import(List::Blocklist, "default", "203.0.113.0/24\n");
    let link = fx.link("anti_fraud=true&autograph_tag=cust-1").await;
    // One client, a full GET and three Range requests: one download.
    assert_eq!(fx.get(&link, "192.0.2.10", &[]).await.0, 200);
    for r in ["bytes=0-99", "bytes=100-199", "bytes=-50"] {
        assert_eq!(fx.get(&link, "192.0.2.10", &[("Range", r)]).await.0, 206);
    }
    assert_eq!(fx.get(&link, "192.0.2.11", &[]).await.1, "link_shared");
    assert_eq!(fx.get(&link, "192.0.2.11", &[]).await.1, "link_shared");
    assert_eq!(fx.get(&link, "203.0.113.1", &[]).await.1, "blocked_ip");
    // The refusals serve() already had.
    let mut bad = link.clone().into_bytes();
    bad[5] = if bad[5] == b'A' { b'B' } else { b'A' };
    let bad = String::from_utf8(bad).unwrap();
    assert_eq!(fx.get(&bad, "192.0.2.20", &[]).await.1, "invalid_signature");
    let bound = fx.link("ip=192.0.2.30").await;
    assert_eq!(fx.get(&bound, "192.0.2.31", &[]).await.1, "ip_not_allowed");
    let short = fx.link(&format!("expiry_time={}", NOW_MS / 1000 + 10)).await;
    fx.env.clock.advance_secs(20);
    assert_eq!(fx.get(&short, "192.0.2.40", &[]).await.1, "link_expired");
    fx.audit_flush();

    let (s, v) = fx.api(&format!("/v1/downloads/?file_id={}", fx.id)).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    // file_id filter: the expired and tampered links name no file.
    assert_eq!(v["total"], 4, "{v}");
    assert_eq!((v["start"].as_u64(), v["limit"].as_u64()), (Some(0), Some(1000)));
    let downloads = v["downloads"].as_array().unwrap();
    let delivered: Vec<&Value> = downloads.iter().filter(|d| d["reason"].is_null()).collect();
    assert_eq!(delivered.len(), 1, "four requests of one client are one download");
    let d = delivered[0];
    assert_eq!(d["client"], "192.0.2.10");
    assert_eq!(d["requests"], 4);
    // The copy is the file and a 155-byte trailer: "\n", the mark for "cust-1", "\n".
    assert_eq!(d["bytes"], fx.data.len() + 155 + 100 + 100 + 50);
    assert_eq!(d["status"], 206);
    assert_eq!(d["autograph_tag"], "cust-1");
    assert_eq!(d["link"]["anti_fraud"], true);
    assert_eq!(d["file"]["id"], fx.id.as_str());
    assert!(d["client_id"].as_str().is_some_and(|a| a.len() == 24));
    let shared = downloads.iter().find(|d| d["reason"] == "link_shared").unwrap();
    assert_eq!(
        (shared["requests"].as_i64(), shared["status"].as_i64()),
        (Some(2), Some(403))
    );

    // Filters.
    let count = |q: String| {
        let fx = &fx;
        async move {
            let (s, v) = fx.api(&format!("/v1/downloads/?{q}")).await;
            assert_eq!(s, StatusCode::OK, "{q}: {v}");
            v["total"].as_u64().unwrap()
        }
    };
    // The tampered and the expired link carry no fields we could trust: no file, no app.
    assert_eq!(count("".into()).await, 6);
    assert_eq!(count("reason=invalid_signature".into()).await, 1);
    assert_eq!(count("reason=ip_not_allowed".into()).await, 1);
    assert_eq!(count("reason=link_expired".into()).await, 1);
    assert_eq!(count("refused=true".into()).await, 5);
    assert_eq!(count("refused=false".into()).await, 1);
    assert_eq!(count("tag=cust-1".into()).await, 3);
    assert_eq!(count("client=192.0.2.11".into()).await, 1);
    assert_eq!(count("client=::ffff:192.0.2.11".into()).await, 1);
    let app_id = d["client_id"].as_str().unwrap().to_string();
    assert_eq!(count(format!("client_id={app_id}")).await, 4);
    assert_eq!(count(format!("application={app_id}&reason=blocked_ip")).await, 1);
    assert_eq!(
        count(format!("from={}", NOW_MS + 10_000)).await,
        1,
        "only the expired-link refusal came later"
    );
    assert_eq!(count(format!("to={}", NOW_MS + 1000)).await, 5);
    for (q, reason) in [
        ("client=nope", "invalid_client"),
        ("file_id=xyz", "invalid_id"),
        ("reason=Bad-Word", "invalid_reason"),
        ("from=yesterday", "invalid_time"),
        ("sort=bytes", "invalid_sort"),
        ("refused=maybe", "invalid_boolean"),
        ("clients=1.2.3.4", "unknown_parameter"),
    ] {
        let (s, v) = fx.api(&format!("/v1/downloads/?{q}")).await;
        assert_eq!(
            (s.as_u16(), v["error"]["reason"].as_str()),
            (400, Some(reason)),
            "{q}"
        );
    }

    // One download with its requests.
    let (s, v) = fx.api(&format!("/v1/downloads/{}", d["id"])).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let events = v["download"]["events"].as_array().unwrap();
    assert_eq!(events.len(), 4);
    assert_eq!(events[1]["range"], "bytes=0-99");
    assert_eq!(events[1]["bytes"], 100);
    assert!(events
        .iter()
        .all(|e| e["completed"] == true && e["method"] == "GET"));
    assert_eq!(fx.api("/v1/downloads/999999").await.0, StatusCode::NOT_FOUND);

    // XML, scopes.
    let (s, b) = fx
        .call(
            TestRequest::get()
                .uri("/v1/downloads/?format=xml&reason=link_shared")
                .insert_header(("Authorization", format!("Bearer {}", fx.token))),
        )
        .await;
    let xml = String::from_utf8(b).unwrap();
    assert_eq!(s, StatusCode::OK);
    assert!(
        xml.contains("<downloads><download><id>") && xml.contains("<reason>link_shared</reason>"),
        "{xml}"
    );
    let writer = fx.env.token("mediahub_download_files");
    let (s, b) = fx
        .call(
            TestRequest::get()
                .uri("/v1/downloads/")
                .insert_header(("Authorization", format!("Bearer {writer}"))),
        )
        .await;
    assert_eq!(
        (s, reason_of(&b)),
        (StatusCode::FORBIDDEN, "insufficient_scope".into())
    );
}

#[actix_web::test]
async fn a_dropped_download_is_recorded_with_the_bytes_it_got() {
    let env = TestEnv::new();
    let token = env.token("mediahub");
    let data = vec![7u8; 2_000_000];
    let f = env.upload(&token, "", "big.bin", &data).await;
    let app = env.service().await;
    let req = TestRequest::get()
        .uri(&format!(
            "/v1/files/downloads/?file_id={}",
            f["id"].as_str().unwrap()
        ))
        .insert_header(("Authorization", format!("Bearer {token}")))
        .to_request();
    let v = json_body(test::call_service(&app, req).await).await;
    let link = v["download"]["url"]
        .as_str()
        .unwrap()
        .strip_prefix(BASE)
        .unwrap()
        .to_string();
    let res = test::call_service(
        &app,
        TestRequest::get()
            .uri(&link)
            .peer_addr("192.0.2.5:1".parse().unwrap())
            .to_request(),
    )
    .await;
    // Read one chunk, then go away.
    let mut body = Box::pin(res.into_body());
    let first = futures_util::future::poll_fn(|cx| body.as_mut().poll_next(cx)).await;
    assert!(first.is_some_and(|c| c.is_ok()));
    drop(body);
    env.state.audit.flush();
    let c = env.state.catalog.conn().unwrap();
    let (bytes, completed): (i64, bool) = c
        .query_row("SELECT bytes, completed FROM download_requests", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    assert!(bytes < data.len() as i64, "{bytes}");
    assert!(!completed);
}

#[actix_web::test]
async fn lists_over_the_api_import_check_and_remove() {
    let fx = fixture().await;
    let admin = fx.env.token("mediahub");
    let reader = fx.env.token("mediahub_read");
    let put = |list: &str, query: &str, body: &str, token: &str| {
        TestRequest::put()
            .uri(&format!("/v1/fraud/lists/{list}/{query}"))
            .insert_header(("Authorization", format!("Bearer {token}")))
            .insert_header(("Content-Type", "text/plain"))
            .set_payload(body.to_string())
    };
    // A file bigger than the API's default body limit goes through.
    let many: String = (0..20_000u32)
        .map(|i| format!("10.{}.{}.0/24\n", i >> 8, i & 255))
        .collect();
    assert!(many.len() > 64 * 1024);
    let (s, b) = fx.call(put("blocklist", "?source=feed", &many, &admin)).await;
    assert_eq!(s, StatusCode::OK, "{}", String::from_utf8_lossy(&b));
    let v: Value = serde_json::from_slice(&b).unwrap();
    assert_eq!(v["list"]["name"], "blocklist");
    assert_eq!(v["list"]["sources"][0]["entries"], 20_000);
    assert_eq!(v["list"]["ranges"], 1, "adjacent /24s merge into one range");
    let (s, _) = fx
        .call(put(
            "anonymizers",
            "",
            "# tor\n198.51.100.7\n2001:db8::/32\n",
            &admin,
        ))
        .await;
    assert_eq!(s, StatusCode::OK);

    // Used at once by the running server.
    let link = fx.link("anti_fraud=true").await;
    assert_eq!(fx.get(&link, "10.77.3.9", &[]).await, (403, "blocked_ip".into()));
    assert_eq!(
        fx.get(&link, "2001:db8::5", &[]).await,
        (403, "anonymizer".into())
    );

    let (s, v) = fx.api("/v1/fraud/check/?ip=10.77.3.9").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["check"]["blocklist"], true);
    assert_eq!(v["check"]["anonymizers"], false);
    assert_eq!(v["check"]["entries"][0]["range"], "10.77.3.0/24");
    assert_eq!(v["check"]["entries"][0]["source"], "feed");
    let (_, v) = fx.api("/v1/fraud/check/?ip=3232236033").await;
    assert_eq!(
        (v["check"]["ip"].as_str(), v["check"]["blocklist"].as_bool()),
        (Some("192.168.2.1"), Some(false))
    );
    let (_, v) = fx.api("/v1/fraud/lists/").await;
    assert_eq!(v["lists"][1]["name"], "anonymizers");
    assert_eq!(v["lists"][1]["sources"][0]["name"], "default");
    assert_eq!(v["lists"][1]["ranges"], 2);

    // Refusals: a bad line changes nothing, unknown list, bad source, scopes.
    let (s, b) = fx
        .call(put(
            "blocklist",
            "?source=feed",
            "10.0.0.0/8\nnot-an-ip\n",
            &admin,
        ))
        .await;
    let v: Value = serde_json::from_slice(&b).unwrap();
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(
        (v["error"]["reason"].as_str(), v["error"]["param"].as_str()),
        (Some("invalid_list_entry"), Some("line 2"))
    );
    assert_eq!(
        fx.get(&fx.link("anti_fraud=true").await, "10.200.0.1", &[])
            .await
            .0,
        200,
        "unchanged"
    );
    assert_eq!(
        fx.call(put("whitelist", "", "1.2.3.4", &admin)).await.0,
        StatusCode::NOT_FOUND
    );
    let (s, b) = fx.call(put("blocklist", "?source=a/b", "", &admin)).await;
    assert_eq!(
        (s, reason_of(&b)),
        (StatusCode::BAD_REQUEST, "invalid_source".into())
    );
    let (s, b) = fx.call(put("blocklist", "", "1.2.3.4", &reader)).await;
    assert_eq!(
        (s, reason_of(&b)),
        (StatusCode::FORBIDDEN, "insufficient_scope".into())
    );

    // Removing a source frees its addresses.
    let del = TestRequest::delete()
        .uri("/v1/fraud/lists/blocklist/?source=feed")
        .insert_header(("Authorization", format!("Bearer {admin}")));
    assert_eq!(fx.call(del).await.0, StatusCode::NO_CONTENT);
    let del = TestRequest::delete()
        .uri("/v1/fraud/lists/blocklist/?source=feed")
        .insert_header(("Authorization", format!("Bearer {admin}")));
    assert_eq!(fx.call(del).await.0, StatusCode::NOT_FOUND);
    assert_eq!(
        fx.get(&fx.link("anti_fraud=true").await, "10.77.3.9", &[])
            .await
            .0,
        200
    );
}
