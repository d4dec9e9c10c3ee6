//! The anti-fraud lists over the API (for the admin console and scripts):
//! `GET /v1/fraud/lists/`, `PUT`/`DELETE /v1/fraud/lists/NAME/?source=S`,
//! `GET /v1/fraud/check/?ip=IP`. Reading needs `mediahub_read`; changing needs the
//! full `mediahub` scope.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use futures_util::StreamExt;
use serde_json::{json, Value};

use super::downloads::parse_ip;
use super::expand::Expand;
use super::params::Params;
use super::render::Rendering;
use crate::auth::{authenticate, Scope};
use crate::catalog::fraud as table;
use crate::error::{ApiError, ErrorKind};
use crate::fraud::lists::{self, List, Sets, DEFAULT_SOURCE};
use crate::fraud::ranges;
use crate::state::AppState;

/// Largest list file accepted over the API (about two million IPv4 lines).
pub const MAX_LIST_BYTES: usize = 64 << 20;

fn list_json(l: List, sets: &Sets, sources: &[table::SourceRow]) -> Value {
    let mine: Vec<Value> = sources
        .iter()
        .filter(|s| s.list == l.as_str())
        .map(|s| json!({"name": s.source, "entries": s.entries, "imported_at": s.imported_at}))
        .collect();
    json!({
        "name": l.as_str(),
        "ranges": sets.get(l).len(),
        "sources": mine,
    })
}

fn list_name(name: &str) -> Result<List, ApiError> {
    List::parse(name).ok_or_else(|| ApiError::not_found("list"))
}

async fn sources(state: &AppState) -> Result<Vec<table::SourceRow>, ApiError> {
    state.catalog.call(|c| Ok(table::sources(c)?)).await
}

pub async fn lists(state: web::Data<AppState>, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let params = Params::parse(req.query_string(), &[])?;
    let rendering = Rendering::negotiate(&req, &params)?;
    Expand::nothing(&params)?;
    authenticate(&state, &req, &params)
        .await?
        .require(Scope::MediahubRead)?;
    let rows = sources(&state).await?;
    let sets = state.fraud.lists.current();
    let all: Vec<Value> = List::ALL.iter().map(|l| list_json(*l, &sets, &rows)).collect();
    Ok(rendering.ok(json!({ "lists": all, "generation": sets.generation })))
}

/// `PUT /v1/fraud/lists/NAME/?source=S` with the list file as the body: replaces that
/// source atomically; the running server uses it at once.
pub async fn import(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
    mut body: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let params = Params::parse(req.query_string(), &[&["source"]])?;
    let rendering = Rendering::negotiate(&req, &params)?;
    Expand::nothing(&params)?;
    authenticate(&state, &req, &params)
        .await?
        .require(Scope::Mediahub)?;
    let list = list_name(&path)?;
    let source = params.get("source").unwrap_or(DEFAULT_SOURCE).to_string();
    if !lists::valid_source(&source) {
        return Err(ApiError::invalid("invalid_source", "source"));
    }
    let mut buf = web::BytesMut::new();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|_| ApiError::bad_request("body_unreadable"))?;
        if buf.len() + chunk.len() > MAX_LIST_BYTES {
            return Err(ApiError::new(ErrorKind::PayloadTooLarge, "body_too_large"));
        }
        buf.extend_from_slice(&chunk);
    }
    let text = String::from_utf8(buf.to_vec()).map_err(|_| ApiError::bad_request("body_not_utf8"))?;
    let now = state.clock.now_ms();
    let src = source.clone();
    let imported = state
        .catalog
        .call(move |c| Ok(lists::import(c, list, &src, &text, now)?))
        .await?;
    state.fraud.lists.reload_if_changed().await?;
    tracing::info!(list = list.as_str(), source = %source, entries = imported.entries, "anti-fraud list imported");
    let rows = sources(&state).await?;
    let sets = state.fraud.lists.current();
    Ok(rendering.ok(json!({ "list": list_json(list, &sets, &rows) })))
}

/// `DELETE /v1/fraud/lists/NAME/?source=S`: removes a source (every source without `source`).
pub async fn remove(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let params = Params::parse(req.query_string(), &[&["source"]])?;
    Rendering::negotiate(&req, &params)?;
    Expand::nothing(&params)?;
    authenticate(&state, &req, &params)
        .await?
        .require(Scope::Mediahub)?;
    let list = list_name(&path)?;
    let source = params.get("source").map(str::to_string);
    let n = state
        .catalog
        .call(move |c| {
            Ok(crate::catalog::write_tx(c, |tx| {
                table::remove(tx, list.as_str(), source.as_deref())
            })?)
        })
        .await?;
    if n == 0 {
        return Err(ApiError::not_found("source"));
    }
    state.fraud.lists.reload_if_changed().await?;
    Ok(HttpResponse::build(StatusCode::NO_CONTENT).finish())
}

/// `GET /v1/fraud/check/?ip=IP`: which lists hold the address, and by which entries.
pub async fn check(state: web::Data<AppState>, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let params = Params::parse(req.query_string(), &[&["ip"]])?;
    let rendering = Rendering::negotiate(&req, &params)?;
    Expand::nothing(&params)?;
    authenticate(&state, &req, &params)
        .await?
        .require(Scope::MediahubRead)?;
    let ip = parse_ip(
        params
            .get("ip")
            .ok_or_else(|| ApiError::invalid("missing_ip", "ip"))?,
    )?;
    let sets = state.fraud.lists.current();
    let p = ranges::point(ip);
    let entries = state
        .catalog
        .call(move |c| Ok(table::entries_containing(c, p)?))
        .await?;
    Ok(rendering.ok(json!({ "check": check_json(ip, &sets, &entries) })))
}

pub fn check_json(ip: std::net::IpAddr, sets: &Sets, entries: &[(String, String, String)]) -> Value {
    json!({
        "ip": ip.to_string(),
        "blocklist": sets.blocklist.contains(ip),
        "anonymizers": sets.anonymizers.contains(ip),
        "entries": entries
            .iter()
            .map(|(l, s, c)| json!({"list": l, "source": s, "range": c}))
            .collect::<Vec<_>>(),
    })
}
