//! Structured logs: human-readable text on a terminal, JSON lines for collectors.
//! `RUST_LOG` overrides the configured filter. Never log secrets, tokens or signed URLs.

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use tracing::Instrument;
use tracing_subscriber::EnvFilter;

pub fn init(format: &str, level: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // A second init (tests calling main paths twice) is harmless; ignore it.
    let _ = if format == "json" {
        builder.json().flatten_event(true).try_init()
    } else {
        builder.try_init()
    };
}

/// One span and one line per request: method, path (never the query: it may carry
/// tokens and signatures), status, duration.
pub async fn log_requests(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let start = Instant::now();
    let span = tracing::info_span!("request", method = %req.method(), path = %req.path());
    let res = next.call(req).instrument(span.clone()).await;
    let _e = span.enter();
    match &res {
        Ok(r) => tracing::info!(
            status = r.status().as_u16(),
            ms = start.elapsed().as_secs_f64() * 1e3,
            "answered"
        ),
        Err(e) => tracing::warn!(error = %e, "failed"),
    }
    res
}
