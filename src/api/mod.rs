//! HTTP handlers, one module per resource; `render` shapes every answer.

pub mod assets;
pub mod body;
pub mod files;
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

/// The base of absolute URLs in answers: `server.public_url` when set, else `http://`
/// and the request's `Host` (a malformed Host falls back to the address we serve on).
/// Forwarded headers from trusted proxies are a later addition.
pub fn base_url(req: &HttpRequest, config: &Config) -> String {
    let public = config.server.public_url.trim_end_matches('/');
    if !public.is_empty() {
        return public.to_string();
    }
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .filter(|h| is_plain_host(h))
        .map(str::to_string)
        .unwrap_or_else(|| req.app_config().host().to_string());
    format!("http://{host}")
}

/// A host[:port] made only of characters a host name or address literal can have.
fn is_plain_host(h: &str) -> bool {
    !h.is_empty()
        && h.len() <= 255
        && h.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']'))
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
}
