//! HTTP handlers, one module per resource; `render` shapes every answer.

pub mod assets;
pub mod audit;
pub mod backtraces;
pub mod body;
pub mod downloads;
pub mod expand;
pub mod files;
pub mod fraud;
pub mod health;
pub mod jobs;
pub mod multipart;
pub mod oauth2;
pub mod params;
pub mod pipelines;
pub mod render;
pub mod uploads;

use actix_web::http::header;
use actix_web::HttpRequest;

use crate::config::Config;
use crate::fraud::client;

/// The base of absolute URLs in answers: `server.public_url` when set, else the scheme
/// and host the client used — `X-Forwarded-Proto`/`-Host` (or `Forwarded`) believed only
/// from `server.trusted_proxies`, otherwise `http://` and the `Host` header. A malformed
/// host falls back to the address we serve on.
pub fn base_url(req: &HttpRequest, config: &Config) -> String {
    let public = config.server.public_url.trim_end_matches('/');
    if !public.is_empty() {
        return public.to_string();
    }
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .filter(|h| client::valid_host(h))
        .map(str::to_string)
        .unwrap_or_else(|| req.app_config().host().to_string());
    let peer = req.peer_addr().map(|a| a.ip());
    let (scheme, host) = client::origin(peer, req.headers(), &host, &config.trusted_proxies());
    format!("{scheme}://{host}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    #[test]
    fn base_url_prefers_public_url_then_a_sane_host() {
        let mut c = Config::default();
        let req = TestRequest::default()
            .insert_header(("Host", "files.example:8080"))
            .to_http_request();
        assert_eq!(base_url(&req, &c), "http://files.example:8080");
        let evil = TestRequest::default()
            .insert_header(("Host", "a/b?c"))
            .to_http_request();
        assert_eq!(
            base_url(&evil, &c),
            "http://localhost:8080",
            "falls back to the served address"
        );
        c.server.public_url = "https://dl.example.com/".into();
        assert_eq!(base_url(&req, &c), "https://dl.example.com");
    }

    #[test]
    fn forwarded_scheme_and_host_only_from_trusted_proxies() {
        let mut c = Config::default();
        c.server.trusted_proxies = vec!["127.0.0.1".into()];
        let from = |peer: &str| {
            TestRequest::default()
                .peer_addr(peer.parse().unwrap())
                .insert_header(("Host", "10.0.0.5:8080"))
                .insert_header(("X-Forwarded-Proto", "https"))
                .insert_header(("X-Forwarded-Host", "files.example.com"))
                .to_http_request()
        };
        assert_eq!(base_url(&from("127.0.0.1:5000"), &c), "https://files.example.com");
        assert_eq!(base_url(&from("192.0.2.9:5000"), &c), "http://10.0.0.5:8080");
    }
}
