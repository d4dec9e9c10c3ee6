//! `GET /v1/downloads/` and `GET /v1/downloads/ID`: the download audit trail — every
//! delivery and every refusal of a link, one entry per link × client × outcome (so a
//! client's many Range requests are one download), with its requests.

use std::collections::HashMap;

use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::{json, Value};

use super::base_url;
use super::downloads::parse_ip;
use super::expand::Expand;
use super::files::{expanded_file, file_link, load_files};
use super::params::{Params, LIST};
use super::render::Rendering;
use crate::archive::Entry;
use crate::auth::{authenticate, Scope};
use crate::catalog::audit::{self as table, DownloadRow, Query, RequestRow};
use crate::catalog::files::FileRow;
use crate::error::ApiError;
use crate::ids;
use crate::state::AppState;

/// The filters of `GET /v1/downloads/`.
pub const FILTERS: &[&str] = &[
    "file_id",
    "client_id",
    "application",
    "tag",
    "client",
    "reason",
    "refused",
    "from",
    "to",
];

/// An audit entry's expandable link.
const EXPANDABLE: &[&str] = &["file"];

/// The files of `rows` when `x` expands them (none otherwise). Blocking.
fn files_of(
    c: &rusqlite::Connection,
    rows: &[DownloadRow],
    x: Expand,
    now_ms: i64,
) -> Result<HashMap<String, (FileRow, Vec<Entry>)>, ApiError> {
    if !x.has("file") {
        return Ok(HashMap::new());
    }
    let mut ids: Vec<String> = rows.iter().filter_map(|d| d.file_id.clone()).collect();
    ids.sort();
    ids.dedup();
    load_files(c, &ids, now_ms)
}

/// [`download_json`] with its file whole when it is in `files` (a file deleted since
/// stays the link).
fn expanded_json(d: &DownloadRow, files: &HashMap<String, (FileRow, Vec<Entry>)>, base: &str) -> Value {
    let mut v = download_json(d, base);
    if let Some((f, entries)) = d.file_id.as_ref().and_then(|id| files.get(id)) {
        v["file"] = expanded_file(f, entries, base);
    }
    v
}

/// Requests shown with one download.
const MAX_EVENTS: u64 = 1000;

/// One entry of the audit trail (without its wrapper).
pub fn download_json(d: &DownloadRow, base: &str) -> Value {
    json!({
        "id": d.id,
        "file": d.file_id.as_deref().map(|f| file_link(f, base)),
        "client_id": d.app_id,
        "autograph_tag": d.tag,
        "item": d.item,
        "client": d.client,
        "reason": if d.outcome.is_empty() { Value::Null } else { json!(d.outcome) },
        "status": d.status,
        "requests": d.requests,
        "bytes": d.bytes,
        "first_at": d.first_at,
        "last_at": d.last_at,
        "link": {
            "key": ids::hex(&d.link),
            "expiry_time": d.link_expires_at,
            "anti_fraud": d.anti_fraud,
        },
    })
}

fn event_json(r: &RequestRow) -> Value {
    json!({
        "at": r.at,
        "method": r.method,
        "status": r.status,
        "range": r.range,
        "bytes": r.bytes,
        "completed": r.completed,
        "ms": r.ms,
    })
}

fn millis(p: &Params, name: &str) -> Result<Option<i64>, ApiError> {
    Ok(p.u64_in(name, 0, i64::MAX as u64, "invalid_time")?
        .map(|v| v as i64))
}

/// The filters of a listing, checked.
pub fn query(p: &Params) -> Result<Query, ApiError> {
    let paging = p.paging(-1)?;
    match p.get("sort") {
        None | Some("last_at") => {}
        Some(_) => return Err(ApiError::invalid("invalid_sort", "sort")),
    }
    let id = |name: &str| -> Result<Option<String>, ApiError> {
        match p.get(name) {
            None => Ok(None),
            Some(v) if ids::is_id(v) => Ok(Some(v.to_string())),
            Some(_) => Err(ApiError::invalid("invalid_id", name)),
        }
    };
    let app_id = match (id("client_id")?, id("application")?) {
        (Some(_), Some(_)) => return Err(ApiError::invalid("duplicate_parameter", "application")),
        (a, b) => a.or(b),
    };
    let client = match p.get("client") {
        None => None,
        Some(v) => Some(
            parse_ip(v)
                .map_err(|_| ApiError::invalid("invalid_client", "client"))?
                .to_string(),
        ),
    };
    let reason = match p.get("reason") {
        None => None,
        Some(r)
            if !r.is_empty() && r.len() <= 64 && r.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') =>
        {
            Some(r.to_string())
        }
        Some(_) => return Err(ApiError::invalid("invalid_reason", "reason")),
    };
    let tag = p.get("tag").map(str::to_string);
    Ok(Query {
        file_id: id("file_id")?,
        app_id,
        tag,
        client,
        outcome: reason,
        refused: p.bool("refused")?,
        from: millis(p, "from")?,
        to: millis(p, "to")?,
        start: paging.start,
        limit: paging.limit,
        ascending: paging.direction > 0,
    })
}

pub async fn list(state: web::Data<AppState>, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let params = Params::parse(req.query_string(), &[LIST, FILTERS])?;
    let rendering = Rendering::negotiate(&req, &params)?;
    let x = Expand::parse(&params, EXPANDABLE)?;
    authenticate(&state, &req, &params)
        .await?
        .require(Scope::MediahubRead)?;
    let q = query(&params)?;
    let (start, limit) = (q.start, q.limit);
    let now = state.clock.now_ms();
    let (rows, total, files) = state
        .catalog
        .call(move |c| {
            let (rows, total) = table::list(c, &q)?;
            let files = files_of(c, &rows, x, now)?;
            Ok((rows, total, files))
        })
        .await?;
    let base = base_url(&req, &state.config);
    let downloads: Vec<Value> = rows.iter().map(|d| expanded_json(d, &files, &base)).collect();
    Ok(rendering.ok(json!({
        "downloads": downloads,
        "total": total,
        "start": start,
        "limit": limit,
    })))
}

pub async fn get(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let params = Params::parse(req.query_string(), &[])?;
    let rendering = Rendering::negotiate(&req, &params)?;
    let x = Expand::parse(&params, EXPANDABLE)?;
    authenticate(&state, &req, &params)
        .await?
        .require(Scope::MediahubRead)?;
    let id: i64 = path.parse().map_err(|_| ApiError::not_found("download"))?;
    let now = state.clock.now_ms();
    let found = state
        .catalog
        .call(move |c| {
            let Some((d, events)) = table::get(c, id, MAX_EVENTS)? else {
                return Ok(None);
            };
            let files = files_of(c, std::slice::from_ref(&d), x, now)?;
            Ok(Some((d, events, files)))
        })
        .await?;
    let (d, events, files) = found.ok_or_else(|| ApiError::not_found("download"))?;
    let base = base_url(&req, &state.config);
    let mut v = expanded_json(&d, &files, &base);
    v["events"] = Value::Array(events.iter().map(event_json).collect());
    Ok(rendering.ok(json!({ "download": v })))
}
