//! Operations endpoints: `GET /healthz` (is the catalog answering and the store
//! writable?) and `GET /metrics` (Prometheus text).

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::json;
use subtle::ConstantTimeEq;

use crate::error::{ApiError, ErrorKind};
use crate::metrics::Gauges;
use crate::state::AppState;

pub async fn healthz(state: web::Data<AppState>) -> HttpResponse {
    let catalog = state
        .catalog
        .call(|c| Ok(c.query_row("SELECT 1", [], |r| r.get::<_, i64>(0))?))
        .await
        .is_ok();
    let store = {
        let s = state.store.clone();
        web::block(move || s.check_writable())
            .await
            .map(|r| r.is_ok())
            .unwrap_or(false)
    };
    let word = |ok: bool| if ok { "ok" } else { "failing" };
    let body = json!({"status": word(catalog && store), "catalog": word(catalog), "store": word(store)});
    if catalog && store {
        HttpResponse::Ok()
            .insert_header(("Cache-Control", "no-store"))
            .json(body)
    } else {
        HttpResponse::ServiceUnavailable()
            .insert_header(("Cache-Control", "no-store"))
            .json(body)
    }
}

/// Prometheus scrape. Allowed with `Authorization: Bearer <metrics.token>` when a token
/// is configured, else only from loopback clients.
pub async fn metrics(state: web::Data<AppState>, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let token = &state.config.metrics.token;
    let allowed = if token.is_empty() {
        req.peer_addr().is_some_and(|a| a.ip().is_loopback())
    } else {
        let sent = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("");
        bool::from(sent.as_bytes().ct_eq(token.as_bytes()))
    };
    if !allowed {
        return Err(ApiError::new(ErrorKind::Forbidden, "metrics_forbidden"));
    }
    let dir = state.config.data_dir().to_path_buf();
    let open_blobs = state.store.open_count() as u64;
    let memory_cache_bytes = state.cache.small_blobs_bytes() as u64;
    let gauges = state
        .catalog
        .call(move |c| {
            let catalog_bytes = ["catalog.sqlite3", "catalog.sqlite3-wal"]
                .iter()
                .filter_map(|f| std::fs::metadata(dir.join(f)).ok())
                .map(|m| m.len())
                .sum();
            let applications: i64 = c.query_row("SELECT count(*) FROM apps", [], |r| r.get(0))?;
            let (files, stored_bytes) = crate::catalog::files::totals(c)?;
            Ok(Gauges {
                catalog_bytes,
                applications: applications as u64,
                files,
                stored_bytes,
                open_blobs,
                memory_cache_bytes,
            })
        })
        .await?;
    Ok(HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(state.metrics.render(&gauges)))
}
