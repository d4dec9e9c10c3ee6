//! Structured logs: human-readable text on a terminal, JSON lines for collectors.
//! `RUST_LOG` overrides the configured filter. Never log secrets, tokens or signed URLs.

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use tracing::Instrument;
use tracing_subscriber::EnvFilter;

use crate::error::ApiError;
use crate::state::AppState;

/// The route label of links in metrics.
pub const LINK_ROUTE: &str = "/d/{token}/{name}";

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

/// One span, one log line and one metrics observation per request: method, route,
/// status, duration. Logs the path, never the query (it may carry tokens and signatures).
pub async fn observe(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let start = Instant::now();
    let metrics = req
        .app_data::<actix_web::web::Data<AppState>>()
        .map(|s| s.metrics.clone());
    let method = req.method().clone();
    let span = tracing::info_span!("request", method = %method, path = %req.path());
    let res = next.call(req).instrument(span.clone()).await;
    let _e = span.enter();
    let secs = start.elapsed().as_secs_f64();
    match &res {
        Ok(r) => {
            let status = r.status().as_u16();
            let reason = r
                .response()
                .extensions()
                .get::<ApiError>()
                .map(|e| e.reason.clone());
            if let Some(m) = &metrics {
                let route = r.request().match_pattern().map(|mut p| {
                    // `/x` and `/x/` are one route (see `slashed` in lib.rs).
                    if p.len() > 1 && p.ends_with('/') {
                        p.pop();
                    }
                    p
                });
                let route = route.unwrap_or_else(|| {
                    // Links are served by the `/d` scope's default service (see `configure`).
                    if r.request().path().starts_with("/d/") {
                        LINK_ROUTE.into()
                    } else {
                        "unmatched".into()
                    }
                });
                m.observe_request(&route, method.as_str(), status, secs);
                if let Some(reason) = &reason {
                    m.refused(reason);
                }
            }
            match reason {
                Some(reason) => {
                    tracing::info!(status, reason = %reason, ms = (secs * 1e4).round() / 10.0, "refused")
                }
                None => tracing::info!(status, ms = (secs * 1e4).round() / 10.0, "answered"),
            }
        }
        Err(e) => tracing::warn!(error = %e, "failed"),
    }
    res
}
